/*
 * The terraform backend driven directly on a loop against the real CLI that
 * deploy/install-terraform installed (skipped, exit 77, when there is none).
 * Modules: examples/terraform/hello and tests/unit/workers/terraform/modules/.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "backend_run.h"
#include "backends/terraform/tf_prep.h"
#include "wtest.h"

static char src[1024], state[600], tmp[512], binary[1024];

static bool has_line(struct run_record *r, const char *needle)
{
    for (int i = 0; i < r->nlines; i++)
        if (strstr(r->line[i], needle) != NULL)
            return true;
    return false;
}

static void dump(struct run_record *r)
{
    fprintf(stderr, "outcome %d reason '%s' message '%s'\n", (int)r->outcome, r->reason,
            r->message);
    for (int i = 0; i < r->nlines; i++)
        fprintf(stderr, "  | %s\n", r->line[i]);
}

/* Runs a config to the end. `cancel_on` non-NULL cancels once a log line
 * contains it. */
static const char *run_operation; /* the runtime's operation for run_tf; NULL = create */

static void run_tf(const char *config, json_t *in, const char *resource_key, int timeout,
                   const char *cancel_on, struct run_record *r)
{
    json_error_t jerr;
    json_t *cfg = json_loads(config, 0, &jerr);
    json_t *secret_paths = json_loads("[\"/api_token\"]", 0, NULL);
    struct gw_run run = {
        .action_id = "tf-test", .inputs = in, .config = cfg, .timeout_seconds = timeout};
    struct backend_run_options o = {.cancel_on_line = cancel_on};
    run.resource_key = resource_key;
    run.secret_paths = secret_paths;
    run.operation = run_operation;
    if (cfg == NULL)
        fprintf(stderr, "bad config in test: %s\n", jerr.text);
    CHECK(cfg != NULL && in != NULL);
    CHECK(backend_run("terraform", &run, &o, r) == 0);
    json_decref(cfg);
    json_decref(secret_paths);
}

static char *config(const char *module, const char *extra)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"module\":\"%s\",\"binary\":\"%s\",\"state_dir\":\"%s\","
             "\"kill_grace_seconds\":3%s%s}",
             module, binary, state, extra && *extra ? "," : "", extra ? extra : "");
    return buf;
}

static char *module_path(const char *rel)
{
    static char buf[2][1200];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", src, rel);
    return buf[k];
}

#define HELLO module_path("examples/terraform/hello")
#define MODS  "tests/unit/workers/terraform/modules/"

static int count_workdirs(void)
{
    DIR *d = opendir(state);
    struct dirent *e;
    int n = 0;
    CHECK(d != NULL);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        CHECK(strlen(e->d_name) == 64 && strspn(e->d_name, "0123456789abcdef") == 64);
        n++;
    }
    closedir(d);
    return n;
}

static void test_apply_then_destroy(void)
{
    struct run_record r;
    json_t *in = json_pack("{s:s,s:i,s:{s:s},s:s}", "name", "payments", "replicas", 2, "labels",
                           "team", "core", "api_token", "tok-very-secret-123");
    run_tf(config(HELLO, NULL), in, "env/payments", 120, NULL, &r);
    if (r.outcome != GW_RUN_SUCCEEDED)
        dump(&r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    json_t *plan = json_object_get(r.outputs, "plan");
    CHECK(json_integer_value(json_object_get(plan, "add")) == 3);
    CHECK(json_integer_value(json_object_get(plan, "destroy")) == 0);
    CHECK(json_integer_value(json_object_get(
              json_object_get(json_object_get(plan, "by_type"), "terraform_data"), "add")) == 3);
    CHECK(strlen(json_string_value(json_object_get(r.outputs, "plan_sha256"))) == 64);
    json_t *outs = json_object_get(r.outputs, "outputs");
    CHECK(strcmp(json_string_value(json_object_get(outs, "name")), "payments") == 0);
    CHECK(json_array_size(json_object_get(outs, "replicas")) == 2);
    CHECK(strcmp(json_string_value(json_object_get(outs, "token_fingerprint")), TF_REDACTED) == 0);
    CHECK(has_line(&r, "Apply complete! Resources: 3 added"));
    CHECK(!has_line(&r, "tok-very-secret-123"));
    char *all = json_dumps(r.outputs, 0);
    CHECK(strstr(all, "tok-very-secret-123") == NULL);
    free(all);
    CHECK(count_workdirs() == 1);
    run_record_free(&r);

    /* A secret the module prints (a non-sensitive variable in the plan) is
     * masked in every log line by the backend itself. */
    json_t *in_s = json_pack("{s:s,s:i}", "name", "hunter2-secret-name", "replicas", 0);
    run_tf(config(HELLO, "\"sensitive_inputs\":[\"name\"]"), in_s, "env/secret", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(!has_line(&r, "hunter2-secret-name") && has_line(&r, TF_REDACTED));
    run_record_free(&r);
    run_tf(config(HELLO, "\"operation\":\"destroy\""), in_s, "env/secret", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    run_record_free(&r);
    json_decref(in_s);

    /* Same resource again: nothing to do (state was kept). */
    run_tf(config(HELLO, NULL), in, "env/payments", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(json_integer_value(json_object_get(json_object_get(r.outputs, "plan"), "add")) == 0);
    run_record_free(&r);

    /* Destroy in the same directory finds the three resources. */
    run_tf(config(HELLO, "\"operation\":\"destroy\""), in, "env/payments", 120, NULL, &r);
    if (r.outcome != GW_RUN_SUCCEEDED)
        dump(&r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(json_integer_value(json_object_get(json_object_get(r.outputs, "plan"), "destroy")) == 3);
    CHECK(has_line(&r, "3 destroyed"));
    CHECK(count_workdirs() == 2);
    run_record_free(&r);
    json_decref(in);
}

/* The reconcile step (decision 0045): plan -detailed-exitcode on the same
 * state, never an apply; changes says whether anything is left to do. */
static bool reconcile_changes(const char *extra, json_t *in, const char *key, json_int_t *add,
                              json_int_t *destroy)
{
    struct run_record r;
    run_operation = "reconcile";
    run_tf(config(HELLO, extra), in, key, 120, NULL, &r);
    run_operation = NULL;
    if (r.outcome != GW_RUN_SUCCEEDED)
        dump(&r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(!has_line(&r, "Apply complete") && !has_line(&r, "Destroy complete"));
    CHECK(json_object_get(r.outputs, "plan_sha256") == NULL);
    json_t *c = json_object_get(json_object_get(r.outputs, "reconcile"), "changes");
    CHECK(json_is_boolean(c));
    *add = json_integer_value(json_object_get(json_object_get(r.outputs, "plan"), "add"));
    *destroy = json_integer_value(json_object_get(json_object_get(r.outputs, "plan"), "destroy"));
    bool changes = json_is_true(c);
    run_record_free(&r);
    return changes;
}

static void test_reconcile(void)
{
    struct run_record r;
    json_int_t add, destroy;
    json_t *in = json_pack("{s:s,s:i}", "name", "recon", "replicas", 1);

    /* Nothing applied yet: the apply's two resources are left to do. */
    CHECK(reconcile_changes(NULL, in, "env/recon", &add, &destroy) && add == 2);
    run_tf(config(HELLO, NULL), in, "env/recon", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    run_record_free(&r);
    /* Applied: nothing left; a destroy's step sees what a destroy would do. */
    CHECK(!reconcile_changes(NULL, in, "env/recon", &add, &destroy) && add == 0);
    CHECK(reconcile_changes("\"operation\":\"destroy\"", in, "env/recon", &add, &destroy) &&
          destroy == 2);
    /* A step never applies: asking again gives the same answer. */
    CHECK(!reconcile_changes(NULL, in, "env/recon", &add, &destroy));
    run_tf(config(HELLO, "\"operation\":\"destroy\""), in, "env/recon", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    run_record_free(&r);
    CHECK(!reconcile_changes("\"operation\":\"destroy\"", in, "env/recon", &add, &destroy));
    json_decref(in);
}

static void test_failures(void)
{
    struct run_record r;
    json_t *in = json_pack("{s:i}", "size", 42);
    run_tf(config(module_path(MODS "precondition"), NULL), in, "disk-1", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "exit_code") == 0);
    CHECK(r.exit_code != 0 && strstr(r.message, "terraform plan exited") != NULL);
    CHECK(has_line(&r, "size must be below 10."));
    run_record_free(&r);
    json_decref(in);

    in = json_object();
    run_tf(config(module_path(MODS "badref"), NULL), in, "x", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "exit_code") == 0);
    CHECK(strstr(r.message, "terraform ") != NULL);
    CHECK(has_line(&r, "Reference to undeclared resource"));
    run_record_free(&r);

    run_tf(config(module_path(MODS "nope"), NULL), in, "x", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "backend_error") == 0);
    run_record_free(&r);

    char cfg[2048];
    snprintf(cfg, sizeof(cfg), "{\"module\":\"%s\",\"binary\":\"/nonexistent/terraform\"}", HELLO);
    run_tf(cfg, in, "x", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "spawn_failed") == 0);
    run_record_free(&r);
    json_decref(in);
}

static void test_bad_config(void)
{
    static const char *const bad[] = {
        "{}",
        "{\"module\":\"/x\",\"operation\":\"explode\"}",
        "{\"module\":\"/x\",\"env\":{\"TF_VAR_x\":\"1\"}}",
        "{\"module\":\"/x\",\"env\":{\"GW_WORKER_TOKEN\":\"1\"}}",
        "{\"module\":\"/x\",\"pass_env\":[\"GW_WORKER_TOKEN\"]}",
        "{\"module\":\"/x\",\"plan_sha256\":\"../../etc/passwd\"}",
        "{\"module\":\"/x\",\"operation\":\"destroy\",\"plan_sha256\":"
        "\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"module\":\"/x\",\"bogus\":1}",
    };
    const struct gw_backend_impl *be = gw_backend_lookup("terraform");
    json_t *in = json_object();
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct gw_error err;
        struct gw_run run = {.run_id = "r", .action_id = "a", .inputs = in};
        run.config = json_loads(bad[i], 0, NULL);
        CHECK(run.config != NULL);
        CHECK(be->create(&run, &err) == GW_EINVAL);
        be->destroy(&run);
        json_decref(run.config);
    }
    /* The plan input is checked the same way. */
    json_object_set_new(in, "plan_sha256", json_string("$(id)"));
    struct gw_error err;
    struct gw_run run = {.run_id = "r", .action_id = "a", .inputs = in};
    run.config = json_loads("{\"module\":\"/x\"}", 0, NULL);
    CHECK(be->create(&run, &err) == GW_EINVAL);
    json_decref(run.config);
    json_decref(in);
}

static void test_timeout_and_cancel(void)
{
    struct run_record r;
    json_t *in = json_pack("{s:i}", "seconds", 60);
    uint64_t t0 = uv_hrtime();
    run_tf(config(module_path(MODS "slow"), NULL), in, "slow-1", 4, NULL, &r);
    if (r.outcome != GW_RUN_TIMED_OUT)
        dump(&r);
    CHECK(r.outcome == GW_RUN_TIMED_OUT);
    CHECK(strstr(r.message, "during apply") != NULL);
    CHECK((uv_hrtime() - t0) / 1000000000ull < 30);
    run_record_free(&r);

    t0 = uv_hrtime();
    run_tf(config(module_path(MODS "slow"), NULL), in, "slow-2", 120,
           "Provisioning with 'local-exec'", &r);
    if (r.outcome != GW_RUN_CANCELLED)
        dump(&r);
    CHECK(r.outcome == GW_RUN_CANCELLED);
    CHECK((uv_hrtime() - t0) / 1000000000ull < 30);
    /* SIGINT reached Terraform: it stopped gracefully (it says so). */
    CHECK(has_line(&r, "Interrupt received") || has_line(&r, "interrupt"));
    run_record_free(&r);

    /* The lock was released: destroying the same resource works at once. */
    run_tf(config(module_path(MODS "slow"), "\"operation\":\"destroy\""), in, "slow-2", 60, NULL,
           &r);
    if (r.outcome != GW_RUN_SUCCEEDED)
        dump(&r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    run_record_free(&r);
    json_decref(in);
}

static void test_saved_plan(void)
{
    struct run_record r;
    char extra[256], sha[65], path[2048];
    json_t *in = json_pack("{s:s,s:i}", "name", "orders", "replicas", 1);
    const char *zero = "0000000000000000000000000000000000000000000000000000000000000000";

    run_tf(config(HELLO, "\"operation\":\"plan\""), in, "env/orders", 120, NULL, &r);
    if (r.outcome != GW_RUN_SUCCEEDED)
        dump(&r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(json_integer_value(json_object_get(json_object_get(r.outputs, "plan"), "add")) == 2);
    CHECK(json_object_get(r.outputs, "outputs") == NULL); /* nothing applied */
    snprintf(sha, sizeof(sha), "%s", json_string_value(json_object_get(r.outputs, "plan_sha256")));
    CHECK(strlen(sha) == 64);
    run_record_free(&r);

    /* A hash nobody planned: refused. */
    snprintf(extra, sizeof(extra), "\"plan_sha256\":\"%s\"", zero);
    run_tf(config(HELLO, extra), in, "env/orders", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "stale_plan") == 0);
    run_record_free(&r);

    /* The plan of another resource is not this resource's. */
    snprintf(extra, sizeof(extra), "\"plan_sha256\":\"%s\"", sha);
    run_tf(config(HELLO, extra), in, "env/other", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "stale_plan") == 0);
    run_record_free(&r);

    /* A saved plan altered on disk: refused. */
    char name[65];
    gw_tf_workdir_name("tf-test", "env/orders", name);
    snprintf(path, sizeof(path), "%s/%s/%s/%s.tfplan", state, name, TF_PLANS_DIR, sha);
    FILE *f = fopen(path, "ab");
    CHECK(f != NULL);
    fputc('x', f);
    fclose(f);
    run_tf(config(HELLO, extra), in, "env/orders", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "stale_plan") == 0);
    run_record_free(&r);

    /* Plan again; the approved hash comes as an input this time, with
     * different inputs that must not change what is applied. */
    run_tf(config(HELLO, "\"operation\":\"plan\""), in, "env/orders", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    snprintf(sha, sizeof(sha), "%s", json_string_value(json_object_get(r.outputs, "plan_sha256")));
    run_record_free(&r);
    json_t *in2 = json_pack("{s:s,s:i,s:s}", "name", "changed", "replicas", 5, "plan_sha256", sha);
    run_tf(config(HELLO, NULL), in2, "env/orders", 120, NULL, &r);
    if (r.outcome != GW_RUN_SUCCEEDED)
        dump(&r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(strcmp(json_string_value(json_object_get(r.outputs, "plan_sha256")), sha) == 0);
    CHECK(strcmp(json_string_value(json_object_get(json_object_get(r.outputs, "outputs"), "name")),
                 "orders") == 0);
    CHECK(json_array_size(json_object_get(json_object_get(r.outputs, "outputs"), "replicas")) == 1);
    run_record_free(&r);

    /* Applied plans are consumed: the same hash again is stale. */
    run_tf(config(HELLO, NULL), in2, "env/orders", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "stale_plan") == 0);
    run_record_free(&r);
    json_decref(in2);

    run_tf(config(HELLO, "\"operation\":\"destroy\""), in, "env/orders", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    run_record_free(&r);
    json_decref(in);
}

static void test_injection(void)
{
    /* Hostile strings in every input and in the resource key: they reach
     * Terraform only as JSON values, come back unchanged, execute nothing. */
    char marker[600], s[1024];
    static const char *const corpus[][2] = {
        {"-oProxyCommand=touch ", ""},
        {"--upload-pack=touch ", ""},
        {"$(touch ", ")"},
        {"`touch ", "`"},
        {"x\r\nreplicas = 9\r\n", ""},
        {"../../../..", ""},
        {"${file(\"/etc/passwd\")}%{if true}", "%{endif}"},
    };
    struct run_record r;
    snprintf(marker, sizeof(marker), "%s/pwned", tmp);
    for (size_t i = 0; i < ARRAY_SIZE(corpus); i++) {
        snprintf(s, sizeof(s), "%s%s%s", corpus[i][0], marker, corpus[i][1]);
        json_t *in = json_pack("{s:s,s:i,s:{s:s}}", "name", s, "replicas", 1, "labels", s, s);
        run_tf(config(HELLO, NULL), in, s, 120, NULL, &r);
        if (r.outcome != GW_RUN_SUCCEEDED)
            dump(&r);
        CHECK(r.outcome == GW_RUN_SUCCEEDED);
        json_t *outs = json_object_get(r.outputs, "outputs");
        /* Terraform's template syntax in a variable's value is data, not code. */
        CHECK(strcmp(json_string_value(json_object_get(outs, "name")), s) == 0);
        CHECK(access(marker, F_OK) != 0);
        run_record_free(&r);
        json_decref(in);
    }
    /* A NUL inside a value survives the JSON round trip. */
    json_t *in = json_pack("{s:s%,s:i}", "name", "a\0b$(id)", (size_t)8, "replicas", 0);
    run_tf(config(HELLO, NULL), in, "nul", 120, NULL, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    json_t *name = json_object_get(json_object_get(r.outputs, "outputs"), "name");
    CHECK(json_string_length(name) == 8 && memcmp(json_string_value(name), "a\0b$(id)", 8) == 0);
    run_record_free(&r);
    json_decref(in);

    /* Resource keys with ../, absolute paths: every work dir is a 64-hex name
     * directly under state_dir, nothing was created beside it. */
    in = json_pack("{s:s,s:i}", "name", "k", "replicas", 0);
    static const char *const keys[] = {"../../escape", "/tmp/abs-escape", "a/../../b"};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        run_tf(config(HELLO, NULL), in, keys[i], 120, NULL, &r);
        CHECK(r.outcome == GW_RUN_SUCCEEDED);
        run_record_free(&r);
    }
    count_workdirs(); /* asserts the shape of every entry */
    snprintf(s, sizeof(s), "%s/../escape", state);
    CHECK(access(s, F_OK) != 0);
    CHECK(access("/tmp/abs-escape", F_OK) != 0);
    json_decref(in);
}

static bool find_binary(void)
{
    char cmd[1200];
    const char *root = getenv("GW_SOURCE_ROOT");
    snprintf(src, sizeof(src), "%s", root ? root : ".");
    snprintf(cmd, sizeof(cmd), "'%s/deploy/install-terraform' --no-install 2>/dev/null", src);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return false;
    if (fgets(binary, sizeof(binary), p) == NULL)
        binary[0] = '\0';
    pclose(p);
    binary[strcspn(binary, "\n")] = '\0';
    return binary[0] == '/';
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (!find_binary()) {
        printf("skipped: no terraform/tofu binary; run deploy/install-terraform\n");
        return 77;
    }
    printf("using %s\n", binary);
    snprintf(tmp, sizeof(tmp), "/tmp/gw-tftest-XXXXXX");
    CHECK(mkdtemp(tmp) != NULL);
    snprintf(state, sizeof(state), "%s/state", tmp);
    CHECK(mkdir(state, 0700) == 0);

    test_bad_config();
    test_apply_then_destroy();
    test_failures();
    test_saved_plan();
    test_reconcile();
    test_injection();
    test_timeout_and_cancel();

    remove_tree(tmp);
    printf("terraform backend: ok\n");
    return 0;
}
