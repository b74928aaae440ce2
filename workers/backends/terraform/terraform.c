/*
 * The terraform backend: runs the Terraform (or OpenTofu) CLI on a module
 * copied into one working directory per resource, where local state stays
 * between runs so a later destroy finds it.
 *
 *   prepare (pool)  workdir <state_dir>/<sha256(action_id NUL resource_key)>,
 *                   module copied in, inputs -> gangway.auto.tfvars.json (0600)
 *   init            init -input=false -no-color
 *   plan            plan -input=false -no-color [-destroy] -out=<plan>
 *   show            show -json <plan>, stdout captured (never logged)
 *   digest (pool)   sha256 of the plan file, plan summary
 *   apply           apply -input=false -no-color <plan>: exactly that plan
 *   output          output -json, captured; sensitive outputs redacted
 *   cleanup (pool)  the applied plan file is removed (it holds the inputs)
 *
 * A reconcile step (the runtime's operation "reconcile", decision 0045) runs
 * plan with -detailed-exitcode against the same state, the -destroy one when
 * the config says destroy: exit 0 means nothing is left to do, 2 means drift
 * (both succeed, outputs.reconcile.changes says which); it stops after digest
 * and removes its plan. It never applies.
 *
 * Operation "plan" stops after digest and keeps the plan under its sha256;
 * an "apply" carrying plan_sha256 (config or top-level input) skips plan and
 * applies that file, or fails with reason "stale_plan".
 *
 * Inputs reach Terraform only through the JSON tfvars file; never argv, HCL or
 * environment. Every CLI call gets a scrubbed environment with
 * CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0. Stop (cancel, timeout):
 * SIGINT to the process group so Terraform releases its state lock, SIGTERM
 * after kill_grace_seconds, SIGKILL after as many again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "registry.h"
#include "gw/log.h"
#include "tf_checks.h"
#include "tf_prep.h"
#include "tf_spawn.h"

#define DEFAULT_GRACE_MS 20000
#define PENDING_PLAN     TF_PLANS_DIR "/pending.tfplan"

enum tf_op { OP_APPLY, OP_DESTROY, OP_PLAN };
enum tf_step { S_PREPARE, S_INIT, S_PLAN, S_SHOW, S_DIGEST, S_APPLY, S_OUTPUT, S_CLEANUP, S_END };

static const char *const step_names[] = {"prepare", "init",   "plan",    "show", "digest",
                                         "apply",   "output", "cleanup", "end"};

struct tf_run {
    struct gw_run *run;
    enum tf_op op;
    enum tf_step step;
    char *module_cfg, *binary_cfg, *state_cfg;
    char want_sha[65]; /* the saved plan to apply, "" when none */
    bool reconcile;    /* plan -detailed-exitcode only (decision 0045) */
    bool drift_check;  /* ... as a scheduled drift check (decision 0067) */
    bool drift;        /* ... and it exited 2: changes are left to do */
    uint64_t grace_ms;
    json_t *secrets; /* strings redacted from log lines */
    json_t *checks;  /* the config's plan_checks (a copy), NULL when none */

    /* Filled on the pool by prepare. */
    char module[PATH_MAX];
    char binary[PATH_MAX];
    char workdir[PATH_MAX];
    char plan_file[128]; /* relative to workdir: gangway-plans/<name>.tfplan */
    char **envp;

    struct tf_proc proc;
    bool proc_active;
    uv_timer_t timeout;
    uv_work_t work;
    bool work_active, ending, cancelled, timed_out;

    /* Outcome. */
    json_t *outputs;
    char plan_sha[65];
    bool failed;
    const char *reason;
    int exit_code;
    char msg[512];
    char *captured; /* stdout of show/output, taken from proc */
    char redact_buf[GW_RUN_LOG_LINE_MAX + 1];
};

static void next_step(struct tf_run *t);

/* ------------------------------------------------------------ config */

static bool env_name_ok(const char *k)
{
    if (k[0] == '\0' || (k[0] >= '0' && k[0] <= '9'))
        return false;
    for (const char *c = k; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '_'))
            return false;
    return strncmp(k, "GANGWAY_", 8) != 0 && strncmp(k, "GW_", 3) != 0 &&
           strncmp(k, "TF_VAR_", 7) != 0;
}

static bool sha_ok(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static const char *run_resource_key(const struct gw_run *run)
{
    if (run->resource_key != NULL)
        return run->resource_key;
    /* Without a resource key every run is its own resource. */
    return run->run_id != NULL ? run->run_id : "";
}

static json_t *run_secret_paths(const struct gw_run *run)
{
    return run->secret_paths;
}

/* A reconcile step (the runtime's operation) only plans; so does a
 * scheduled drift check (decision 0067), the same step on a timer. */
static bool run_is_reconcile(const struct gw_run *run)
{
    return run->operation != NULL &&
           (strcmp(run->operation, "reconcile") == 0 || strcmp(run->operation, "drift") == 0);
}

/* A teardown run (the runtime's operation) destroys whatever the config says. */
static bool run_is_teardown(const struct gw_run *run)
{
    return run->operation != NULL && strcmp(run->operation, "teardown") == 0;
}

int gw_terraform_backend_create(struct gw_run *run, struct gw_error *err)
{
    json_t *cfg = run->config, *v, *x;
    const char *k, *op = "apply", *want = NULL;
    struct tf_run *t;
    size_t i;

    if (!json_is_object(cfg))
        return gw_error_set(err, GW_EINVAL, false, "terraform: backend config is not an object");
    json_object_foreach(cfg, k, v)
    {
        static const char *const known[] = {
            "module", "binary",   "operation",        "plan_sha256",        "state_dir",
            "env",    "pass_env", "sensitive_inputs", "kill_grace_seconds", "plan_checks"};
        bool ok = false;
        for (i = 0; i < ARRAY_SIZE(known); i++)
            ok = ok || strcmp(k, known[i]) == 0;
        if (!ok)
            return gw_error_set(err, GW_EINVAL, false, "terraform: unknown config key '%s'", k);
    }
    v = json_object_get(cfg, "module");
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return gw_error_set(err, GW_EINVAL, false, "terraform: \"module\" must be a path");
    for (const char *f = "binary\0state_dir\0"; *f; f += strlen(f) + 1) {
        x = json_object_get(cfg, f);
        if (x != NULL && (!json_is_string(x) || json_string_length(x) == 0 ||
                          strlen(json_string_value(x)) != json_string_length(x)))
            return gw_error_set(err, GW_EINVAL, false, "terraform: \"%s\" must be a path", f);
    }
    x = json_object_get(cfg, "operation");
    if (x != NULL) {
        op = json_string_value(x);
        if (op == NULL ||
            (strcmp(op, "apply") != 0 && strcmp(op, "destroy") != 0 && strcmp(op, "plan") != 0))
            return gw_error_set(err, GW_EINVAL, false,
                                "terraform: \"operation\" must be apply, destroy or plan");
    }
    x = json_object_get(cfg, "env");
    if (x != NULL) {
        if (!json_is_object(x))
            return gw_error_set(err, GW_EINVAL, false, "terraform: \"env\" must be an object");
        json_object_foreach(x, k, v)
        {
            if (!json_is_string(v) || !env_name_ok(k))
                return gw_error_set(err, GW_EINVAL, false, "terraform: bad env entry '%s'", k);
        }
    }
    x = json_object_get(cfg, "pass_env");
    if (x != NULL) {
        if (!json_is_array(x))
            return gw_error_set(err, GW_EINVAL, false, "terraform: \"pass_env\" must be an array");
        json_array_foreach(x, i, v)
        {
            if (!json_is_string(v) || !env_name_ok(json_string_value(v)))
                return gw_error_set(err, GW_EINVAL, false, "terraform: bad pass_env[%zu]", i);
        }
    }
    x = json_object_get(cfg, "sensitive_inputs");
    if (x != NULL && !json_is_array(x))
        return gw_error_set(err, GW_EINVAL, false,
                            "terraform: \"sensitive_inputs\" must be an array");
    x = json_object_get(cfg, "plan_checks");
    if (x != NULL && !json_is_array(x))
        return gw_error_set(err, GW_EINVAL, false, "terraform: \"plan_checks\" must be an array");
    x = json_object_get(cfg, "kill_grace_seconds");
    if (x != NULL && (!json_is_number(x) || json_number_value(x) < 0 || json_number_value(x) > 600))
        return gw_error_set(err, GW_EINVAL, false, "terraform: bad kill_grace_seconds");
    /* A saved plan named by the config wins over one named by the inputs;
     * only an apply uses one (a teardown destroys whatever state holds). */
    v = json_object_get(cfg, TF_PLAN_INPUT);
    if (v == NULL)
        v = json_object_get(run->inputs, TF_PLAN_INPUT);
    if (run_is_teardown(run)) {
        op = "destroy";
        v = NULL;
    }
    if (run_is_reconcile(run)) {
        /* Checks what the run it reconciles did: a destroy stays a destroy. */
        if (strcmp(op, "plan") == 0)
            op = "apply";
        v = NULL;
    }
    if (v != NULL) {
        want = json_string_value(v);
        if (!sha_ok(want))
            return gw_error_set(err, GW_EINVAL, false,
                                "terraform: plan_sha256 must be 64 lower-case hex digits");
        if (strcmp(op, "apply") != 0)
            return gw_error_set(err, GW_EINVAL, false,
                                "terraform: plan_sha256 only goes with operation apply");
    }

    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    t->run = run;
    t->op = strcmp(op, "destroy") == 0 ? OP_DESTROY : strcmp(op, "plan") == 0 ? OP_PLAN : OP_APPLY;
    t->reconcile = run_is_reconcile(run);
    t->drift_check = t->reconcile && strcmp(run->operation, "drift") == 0;
    if (want != NULL)
        memcpy(t->want_sha, want, 65);
    x = json_object_get(cfg, "kill_grace_seconds");
    t->grace_ms = x ? (uint64_t)(json_number_value(x) * 1000.0) : DEFAULT_GRACE_MS;
    t->module_cfg = strdup(json_string_value(json_object_get(cfg, "module")));
    x = json_object_get(cfg, "binary");
    t->binary_cfg = x ? strdup(json_string_value(x)) : NULL;
    x = json_object_get(cfg, "state_dir");
    t->state_cfg = x ? strdup(json_string_value(x)) : NULL;
    t->secrets = gw_tf_secret_values(run->inputs, json_object_get(cfg, "sensitive_inputs"),
                                     run_secret_paths(run));
    t->outputs = json_object();
    x = json_object_get(cfg, "plan_checks");
    if (x != NULL && json_array_size(x) > 0)
        t->checks = json_deep_copy(x);
    if (t->module_cfg == NULL || t->secrets == NULL || t->outputs == NULL ||
        (json_object_get(cfg, "binary") && t->binary_cfg == NULL) ||
        (json_object_get(cfg, "state_dir") && t->state_cfg == NULL)) {
        run->backend_data = t;
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    }
    run->backend_data = t;
    return 0;
}

/* ------------------------------------------------------------ prepare (pool) */

static void fail(struct tf_run *t, const char *reason, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(struct tf_run *t, const char *reason, int code, const char *fmt, ...)
{
    va_list ap;
    if (t->failed)
        return;
    t->failed = true;
    t->reason = reason;
    t->exit_code = code;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof(t->msg), fmt, ap);
    va_end(ap);
}

/* An executable regular file named `name` in $PATH, into out. */
static bool path_lookup(const char *name, char *out, size_t cap)
{
    const char *path = getenv("PATH");
    char dir[PATH_MAX];
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < sizeof(dir)) {
            struct stat st;
            memcpy(dir, path, n);
            dir[n] = '\0';
            if (snprintf(out, cap, "%s/%s", dir, name) < (int)cap && stat(out, &st) == 0 &&
                S_ISREG(st.st_mode) && access(out, X_OK) == 0)
                return true;
        }
        path += n + (path[n] == ':');
    }
    return false;
}

static bool find_binary(struct tf_run *t)
{
    const char *b = t->binary_cfg ? t->binary_cfg : getenv("GW_TERRAFORM_BIN");
    if (b != NULL && *b != '\0') {
        if (strchr(b, '/') != NULL) {
            snprintf(t->binary, sizeof(t->binary), "%s", b);
            return access(t->binary, X_OK) == 0;
        }
        return path_lookup(b, t->binary, sizeof(t->binary));
    }
    return path_lookup("terraform", t->binary, sizeof(t->binary)) ||
           path_lookup("tofu", t->binary, sizeof(t->binary));
}

static bool resolve_module(struct tf_run *t)
{
    const char *root = getenv("GW_TERRAFORM_MODULES_DIR");
    char buf[PATH_MAX * 2];
    if (t->module_cfg[0] == '/') {
        snprintf(buf, sizeof(buf), "%s", t->module_cfg);
    } else {
        if (root == NULL || *root == '\0')
            root = getenv("GW_ACTIONS_DIR");
        if (root == NULL || *root == '\0') {
            fail(t, "backend_error", -1,
                 "module '%s' is relative and neither GW_TERRAFORM_MODULES_DIR nor "
                 "GW_ACTIONS_DIR is set",
                 t->module_cfg);
            return false;
        }
        snprintf(buf, sizeof(buf), "%s/%s", root, t->module_cfg);
    }
    if (realpath(buf, t->module) == NULL) {
        fail(t, "backend_error", -1, "module directory %s: %s", buf, strerror(errno));
        return false;
    }
    return true;
}

static int env_add(char ***e, size_t *n, size_t *cap, const char *k, const char *v)
{
    if (*n + 2 > *cap) {
        size_t c = *cap ? *cap * 2 : 32;
        char **ne = realloc(*e, c * sizeof(char *));
        if (ne == NULL)
            return -1;
        *e = ne;
        *cap = c;
    }
    for (size_t i = 0; i < *n; i++) /* later entries override earlier ones */
        if (strncmp((*e)[i], k, strlen(k)) == 0 && (*e)[i][strlen(k)] == '=') {
            free((*e)[i]);
            (*e)[i] = (*e)[--*n];
        }
    size_t len = strlen(k) + strlen(v) + 2;
    char *s = malloc(len);
    if (s == NULL)
        return -1;
    snprintf(s, len, "%s=%s", k, v);
    (*e)[(*n)++] = s;
    (*e)[*n] = NULL;
    return 0;
}

static const char *const passthrough[] = {
    "TF_PLUGIN_CACHE_DIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "http_proxy",          "https_proxy",   "no_proxy",     "TMPDIR",
};

/* The scrubbed environment: no GW_* (tokens), no TF_VAR_* from the worker. */
static char **build_env(struct tf_run *t)
{
    char **e = NULL;
    size_t n = 0, cap = 0, i;
    int rc = 0;
    const char *v, *k;
    json_t *x;
    struct stat st;

    v = getenv("PATH");
    rc |= env_add(&e, &n, &cap, "PATH", v ? v : "/usr/local/bin:/usr/bin:/bin");
    v = getenv("HOME");
    rc |= env_add(&e, &n, &cap, "HOME", v ? v : t->workdir);
    rc |= env_add(&e, &n, &cap, "LANG", "C.UTF-8");
    for (i = 0; i < ARRAY_SIZE(passthrough); i++)
        if ((v = getenv(passthrough[i])) != NULL)
            rc |= env_add(&e, &n, &cap, passthrough[i], v);
    /* A CLI config that does not exist only makes Terraform warn on every call. */
    if ((v = getenv("TF_CLI_CONFIG_FILE")) != NULL && stat(v, &st) == 0)
        rc |= env_add(&e, &n, &cap, "TF_CLI_CONFIG_FILE", v);
    json_array_foreach(json_object_get(t->run->config, "pass_env"), i, x)
    {
        if ((v = getenv(json_string_value(x))) != NULL)
            rc |= env_add(&e, &n, &cap, json_string_value(x), v);
    }
    json_object_foreach(json_object_get(t->run->config, "env"), k, x) rc |=
        env_add(&e, &n, &cap, k, json_string_value(x));
    rc |= env_add(&e, &n, &cap, "CHECKPOINT_DISABLE", "1");
    rc |= env_add(&e, &n, &cap, "TF_IN_AUTOMATION", "1");
    rc |= env_add(&e, &n, &cap, "TF_INPUT", "0");
    rc |= env_add(&e, &n, &cap, "GANGWAY_RUN_ID", t->run->run_id ? t->run->run_id : "");
    if (rc != 0) {
        for (i = 0; i < n; i++)
            free(e[i]);
        free(e);
        return NULL;
    }
    return e;
}

static void prepare_work(uv_work_t *req)
{
    struct tf_run *t = container_of(req, struct tf_run, work);
    const char *root = t->state_cfg ? t->state_cfg : getenv("GW_TERRAFORM_STATE_DIR");
    char name[65], rootbuf[PATH_MAX], plans[PATH_MAX + 32], msg[400];

    if (root == NULL || *root == '\0') {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg != NULL && *xdg != '\0')
            snprintf(rootbuf, sizeof(rootbuf), "%s/gangway/terraform-state", xdg);
        else
            snprintf(rootbuf, sizeof(rootbuf), "%s/.cache/gangway/terraform-state",
                     home && *home ? home : "/tmp");
        root = rootbuf;
    }
    if (!find_binary(t)) {
        fail(t, "spawn_failed", -1,
             "no terraform binary: set backend.binary or GW_TERRAFORM_BIN, or put terraform/tofu "
             "in PATH (deploy/install-terraform)");
        return;
    }
    if (!resolve_module(t))
        return;
    gw_tf_workdir_name(t->run->action_id ? t->run->action_id : "", run_resource_key(t->run), name);
    if (snprintf(t->workdir, sizeof(t->workdir), "%s/%s", root, name) >= (int)sizeof(t->workdir)) {
        fail(t, "backend_error", -1, "state_dir is too long");
        return;
    }
    snprintf(plans, sizeof(plans), "%s/%s", t->workdir, TF_PLANS_DIR);
    if (gw_tf_mkdirs(plans, msg, sizeof(msg)) != 0 ||
        gw_tf_workdir_sync(t->workdir, t->module, msg, sizeof(msg)) != 0 ||
        gw_tf_write_tfvars(t->workdir, t->run->inputs, msg, sizeof(msg)) != 0) {
        fail(t, "backend_error", -1, "prepare: %s", msg);
        return;
    }
    /* A failed run's unapplied plan holds its inputs; it goes now. */
    snprintf(plans, sizeof(plans), "%s/%s", t->workdir, PENDING_PLAN);
    unlink(plans);
    if (t->want_sha[0] != '\0') {
        char path[PATH_MAX + 256], got[65];
        snprintf(t->plan_file, sizeof(t->plan_file), "%s/%s.tfplan", TF_PLANS_DIR, t->want_sha);
        snprintf(path, sizeof(path), "%s/%s", t->workdir, t->plan_file);
        int rc = gw_tf_file_sha256(path, got, msg, sizeof(msg));
        if (rc != 0 || strcmp(got, t->want_sha) != 0) {
            fail(t, "stale_plan", -1, "saved plan %s %s", t->want_sha,
                 rc == 1  ? "does not exist for this resource"
                 : rc < 0 ? msg
                          : "was altered");
            return;
        }
    } else {
        snprintf(t->plan_file, sizeof(t->plan_file), "%s", PENDING_PLAN);
    }
    if ((t->envp = build_env(t)) == NULL)
        fail(t, "backend_error", -1, "out of memory");
}

/* ------------------------------------------------------------ digest (pool) */

/* Runs the plan_checks over the plan: outputs.plan_checks for a plan-first
 * plan (the broker decides: gw_finish_run), or a failed run with reason
 * policy_check_failed before an apply. Returns -1 when the run failed. */
static int run_checks(struct tf_run *t, json_t *show)
{
    char path[PATH_MAX + 256], msg[400];
    const char *base = getenv("GW_TERRAFORM_MODULES_DIR");
    json_t *checks, *res;
    FILE *f;
    int fd;

    if (base == NULL || base[0] == '\0')
        base = getenv("GW_ACTIONS_DIR");
    checks = gw_tf_checks_load(t->checks, base, msg, sizeof(msg));
    if (checks == NULL) {
        fail(t, "bad_config", -1, "plan_checks: %s", msg);
        return -1;
    }
    /* Exec checkers read the plan on stdin: a 0600 file, removed after. */
    snprintf(path, sizeof(path), "%s/%s/plan.json", t->workdir, TF_PLANS_DIR);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL || fputs(t->captured ? t->captured : "", f) < 0 || fclose(f) != 0) {
        if (f == NULL && fd >= 0)
            close(fd);
        json_decref(checks);
        unlink(path);
        fail(t, "backend_error", -1, "plan_checks: cannot write the plan JSON");
        return -1;
    }
    res = gw_tf_checks_run(checks, show, path, t->envp);
    unlink(path);
    json_decref(checks);
    if (res == NULL) {
        fail(t, "backend_error", -1, "plan_checks: out of memory");
        return -1;
    }
    bool passed = json_is_true(json_object_get(res, "passed"));
    size_t n = json_array_size(json_object_get(res, "findings"));
    json_object_set_new(t->outputs, "plan_checks", res);
    if (!passed && t->op != OP_PLAN) {
        json_t *first = json_array_get(json_object_get(res, "findings"), 0);
        fail(t, "policy_check_failed", -1, "%zu finding(s), first: %s %s: %s", n,
             json_string_value(json_object_get(first, "rule")),
             json_string_value(json_object_get(first, "address")),
             json_string_value(json_object_get(first, "message")));
        return -1;
    }
    return 0;
}

static void digest_work(uv_work_t *req)
{
    struct tf_run *t = container_of(req, struct tf_run, work);
    char path[PATH_MAX + 256], msg[400];
    json_error_t jerr;
    json_t *show = json_loads(t->captured ? t->captured : "", JSON_ALLOW_NUL, &jerr), *sum;

    if (show == NULL) {
        fail(t, "backend_error", -1, "show -json output is not JSON: %s", jerr.text);
        return;
    }
    sum = gw_tf_plan_summary(show);
    if (sum == NULL) {
        json_decref(show);
        fail(t, "backend_error", -1, "show -json output is not a plan object");
        return;
    }
    /* The compliance gate (decision 0066): on a fresh plan, never on a
     * reconcile or on the apply of a saved plan (checked when it was made). */
    if (t->checks != NULL && !t->reconcile && t->want_sha[0] == '\0' && run_checks(t, show) != 0) {
        json_decref(sum);
        json_decref(show);
        return;
    }
    json_object_set_new(t->outputs, "plan", sum);
    snprintf(path, sizeof(path), "%s/%s", t->workdir, t->plan_file);
    if (gw_tf_file_sha256(path, t->plan_sha, msg, sizeof(msg)) != 0) {
        json_decref(show);
        fail(t, "backend_error", -1, "plan file: %s", msg);
        return;
    }
    if (t->want_sha[0] != '\0' && strcmp(t->plan_sha, t->want_sha) != 0) {
        json_decref(show);
        fail(t, "stale_plan", -1, "saved plan %s changed before apply", t->want_sha);
        return;
    }
    if (t->reconcile) {
        /* Nothing will apply it, and it holds the inputs. A drift check
         * also names the addresses that would change (the drift's summary). */
        unlink(path);
        json_object_set_new(t->outputs, "reconcile", json_pack("{s:b}", "changes", t->drift));
        if (t->drift_check)
            json_object_set_new(json_object_get(t->outputs, "reconcile"), "resources",
                                gw_tf_plan_changes(show, 50));
        json_decref(show);
        return;
    }
    json_decref(show);
    json_object_set_new(t->outputs, "plan_sha256", json_string(t->plan_sha));
    if (t->op == OP_PLAN) {
        /* Kept under its hash for the apply an approval will bind to it. */
        char dst[PATH_MAX + 256];
        snprintf(dst, sizeof(dst), "%s/%s/%s.tfplan", t->workdir, TF_PLANS_DIR, t->plan_sha);
        if (rename(path, dst) != 0)
            fail(t, "backend_error", -1, "keep plan: %s", strerror(errno));
    }
}

static void cleanup_work(uv_work_t *req)
{
    struct tf_run *t = container_of(req, struct tf_run, work);
    char path[PATH_MAX + 256];
    json_error_t jerr;
    json_t *out, *pub;

    /* An applied plan holds the inputs (secrets too) and can never apply again. */
    snprintf(path, sizeof(path), "%s/%s", t->workdir, t->plan_file);
    unlink(path);
    if (t->op == OP_DESTROY)
        return;
    out = json_loads(t->captured ? t->captured : "", JSON_ALLOW_NUL, &jerr);
    pub = gw_tf_outputs_public(out);
    json_decref(out);
    if (pub == NULL) {
        fail(t, "bad_outputs", 0, "output -json is not a JSON object: %s", jerr.text);
        return;
    }
    json_object_set_new(t->outputs, "outputs", pub);
}

/* ------------------------------------------------------------ loop side */

static void log_line(void *ctx, const char *stream, const char *line, size_t len)
{
    struct tf_run *t = ctx;
    size_t n = gw_tf_redact(t->secrets, line, len, t->redact_buf, sizeof(t->redact_buf));
    gw_run_log(t->run, stream, t->redact_buf, n);
}

static void timeout_closed(uv_handle_t *h)
{
    struct tf_run *t = h->data;
    struct gw_run *r = t->run;
    char msg[600];
    if (t->timed_out) {
        snprintf(msg, sizeof(msg), "timed out after %d s during %s", r->timeout_seconds,
                 step_names[t->step]);
        gw_run_finish_timed_out(r, msg);
    } else if (t->cancelled) {
        snprintf(msg, sizeof(msg), "cancelled during %s", step_names[t->step]);
        gw_run_finish_cancelled(r, msg);
    } else if (t->failed) {
        gw_log(GW_LOG_WARN, r->run_id, "terraform: %s: %s", t->reason, t->msg);
        /* A plan that failed its checks: the findings go with the run. */
        json_t *pc = json_object_get(t->outputs, "plan_checks");
        gw_run_finish_failed_with(r, t->reason, t->exit_code, t->msg,
                                  pc != NULL ? json_pack("{s:O}", "plan_checks", pc) : NULL);
    } else {
        json_t *o = t->outputs;
        t->outputs = NULL;
        gw_run_finish_succeeded(r, o);
    }
}

static void end_run(struct tf_run *t)
{
    if (t->ending)
        return;
    t->ending = true;
    uv_timer_stop(&t->timeout);
    uv_close((uv_handle_t *)&t->timeout, timeout_closed);
}

static void work_done(uv_work_t *req, int status)
{
    struct tf_run *t = container_of(req, struct tf_run, work);
    (void)status;
    t->work_active = false;
    if (t->cancelled || t->timed_out || t->failed)
        end_run(t);
    else
        next_step(t);
}

static void queue(struct tf_run *t, enum tf_step s, uv_work_cb fn)
{
    t->step = s;
    t->work_active = true;
    if (uv_queue_work(t->run->loop, &t->work, fn, work_done) != 0) {
        t->work_active = false;
        fail(t, "backend_error", -1, "cannot queue %s", step_names[s]);
        end_run(t);
    }
}

static void proc_done(struct tf_proc *p, void *ctx)
{
    struct tf_run *t = ctx;
    t->proc_active = false;
    free(t->captured);
    t->captured = p->cap; /* taken over */
    p->cap = NULL;
    if (t->cancelled || t->timed_out) {
        /* finish says so */
    } else if (!p->spawned) {
        fail(t, "spawn_failed", -1, "cannot start %s: %s", t->binary, uv_strerror(p->spawn_rc));
    } else if (p->term_signal != 0) {
        fail(t, "exit_code", 128 + p->term_signal, "terraform %s killed by signal %d",
             step_names[t->step], p->term_signal);
    } else if (t->reconcile && t->step == S_PLAN && p->exit_status == 2) {
        t->drift = true; /* -detailed-exitcode: a plan with changes */
    } else if (p->exit_status != 0) {
        fail(t, "exit_code", (int)p->exit_status, "terraform %s exited with code %d",
             step_names[t->step], (int)p->exit_status);
    } else if (p->cap_overflow) {
        fail(t, "backend_error", -1, "terraform %s printed too much", step_names[t->step]);
    }
    gw_tf_proc_release(p);
    if (t->cancelled || t->timed_out || t->failed)
        end_run(t);
    else
        next_step(t);
}

static void spawn_step(struct tf_run *t, enum tf_step s)
{
    char out_arg[sizeof(((struct tf_run *)0)->plan_file) + 8];
    char *argv[10];
    int n = 0;
    bool capture = false;

    argv[n++] = t->binary;
    switch (s) {
    case S_INIT:
        argv[n++] = "init";
        argv[n++] = "-input=false";
        argv[n++] = "-no-color";
        break;
    case S_PLAN:
        argv[n++] = "plan";
        argv[n++] = "-input=false";
        argv[n++] = "-no-color";
        if (t->op == OP_DESTROY)
            argv[n++] = "-destroy";
        if (t->reconcile)
            argv[n++] = "-detailed-exitcode";
        snprintf(out_arg, sizeof(out_arg), "-out=%s", t->plan_file);
        argv[n++] = out_arg;
        break;
    case S_SHOW:
        argv[n++] = "show";
        argv[n++] = "-json";
        argv[n++] = "-no-color";
        argv[n++] = t->plan_file;
        capture = true;
        break;
    case S_APPLY:
        argv[n++] = "apply";
        argv[n++] = "-input=false";
        argv[n++] = "-no-color";
        argv[n++] = t->plan_file;
        break;
    default: /* S_OUTPUT */
        argv[n++] = "output";
        argv[n++] = "-json";
        argv[n++] = "-no-color";
        capture = true;
        break;
    }
    argv[n] = NULL;
    t->step = s;
    t->proc_active = true;
    gw_log(GW_LOG_INFO, t->run->run_id, "terraform: %s", step_names[s]);
    gw_tf_proc_start(&t->proc, t->run->loop, argv, t->envp, t->workdir, capture, log_line,
                     proc_done, t);
}

static void next_step(struct tf_run *t)
{
    bool saved = t->want_sha[0] != '\0';
    switch (t->step) {
    case S_PREPARE:
        spawn_step(t, S_INIT);
        break;
    case S_INIT:
        spawn_step(t, saved ? S_SHOW : S_PLAN);
        break;
    case S_PLAN:
        spawn_step(t, S_SHOW);
        break;
    case S_SHOW:
        queue(t, S_DIGEST, digest_work);
        break;
    case S_DIGEST:
        if (t->op == OP_PLAN || t->reconcile) {
            t->step = S_END;
            end_run(t);
        } else {
            spawn_step(t, S_APPLY);
        }
        break;
    case S_APPLY:
        if (t->op == OP_DESTROY)
            queue(t, S_CLEANUP, cleanup_work);
        else
            spawn_step(t, S_OUTPUT);
        break;
    case S_OUTPUT:
        queue(t, S_CLEANUP, cleanup_work);
        break;
    default:
        t->step = S_END;
        end_run(t);
        break;
    }
}

static void timeout_cb(uv_timer_t *h)
{
    struct tf_run *t = h->data;
    if (t->ending || t->cancelled)
        return;
    gw_log(GW_LOG_WARN, t->run->run_id, "terraform: timeout after %d s during %s",
           t->run->timeout_seconds, step_names[t->step]);
    t->timed_out = true;
    if (t->proc_active)
        gw_tf_proc_stop(&t->proc, t->grace_ms);
    /* Pool work ends on its own; work_done then ends the run. */
}

int gw_terraform_backend_start(struct gw_run *run, struct gw_error *err)
{
    struct tf_run *t = run->backend_data;
    (void)err;
    uv_timer_init(run->loop, &t->timeout);
    t->timeout.data = t;
    if (run->timeout_seconds > 0)
        uv_timer_start(&t->timeout, timeout_cb, (uint64_t)run->timeout_seconds * 1000, 0);
    queue(t, S_PREPARE, prepare_work);
    return 0;
}

int gw_terraform_backend_cancel(struct gw_run *run, enum gw_cancel_reason why)
{
    struct tf_run *t = run->backend_data;
    if (t == NULL || t->ending || t->cancelled || t->timed_out)
        return GW_ECONFLICT;
    gw_log(GW_LOG_INFO, run->run_id, "terraform: cancel during %s (%s)", step_names[t->step],
           why == GW_CANCEL_SHUTDOWN ? "shutdown" : "requested");
    t->cancelled = true;
    if (t->proc_active)
        gw_tf_proc_stop(&t->proc, why == GW_CANCEL_SHUTDOWN ? t->grace_ms / 4 : t->grace_ms);
    return 0;
}

void gw_terraform_backend_destroy(struct gw_run *run)
{
    struct tf_run *t = run->backend_data;
    if (t == NULL)
        return;
    free(t->module_cfg);
    free(t->binary_cfg);
    free(t->state_cfg);
    for (char **e = t->envp; e != NULL && *e != NULL; e++)
        free(*e);
    free(t->envp);
    json_decref(t->secrets);
    json_decref(t->checks);
    json_decref(t->outputs);
    free(t->captured);
    free(t);
    run->backend_data = NULL;
}
