/*
 * The jenkins backend driven directly on a loop against the fake Jenkins
 * (tests/fakes/jenkins/fake_jenkins.py): results, console streaming, cancel,
 * timeout, idempotent retries, crumb and auth failures, and an injection
 * corpus in parameters and job names checked against the fake's request log.
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "backend_run.h"
#include "wtest.h"

#define TOKEN "s3cret-t0ken"

extern char **environ;

static char base[64];
static pid_t fake_pid;

static bool has_line(const struct run_record *r, const char *s)
{
    for (int i = 0; i < r->nlines; i++)
        if (strcmp(r->line[i], s) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------ the fake */

static void start_fake(void)
{
    const char *src = getenv("GW_SOURCE_ROOT");
    char script[1024], buf[64] = {0};
    int p[2];
    posix_spawn_file_actions_t fa;
    char *argv[] = {"python3", script,  "--user",        "alice", "--token",      TOKEN, "--job",
                    "hello",   "--job", "folder/deploy", "--job", "we?rd&#%/x y", NULL};
    snprintf(script, sizeof(script), "%s/tests/fakes/jenkins/fake_jenkins.py", src ? src : ".");
    CHECK(pipe(p) == 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    CHECK(posix_spawnp(&fake_pid, "python3", &fa, NULL, argv, environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    for (size_t n = 0; n + 1 < sizeof(buf) && strchr(buf, '\n') == NULL;) {
        ssize_t k = read(p[0], buf + n, sizeof(buf) - 1 - n);
        CHECK(k > 0);
        n += (size_t)k;
    }
    close(p[0]);
    CHECK(strncmp(buf, "PORT ", 5) == 0);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", atoi(buf + 5));
}

static void stop_fake(void)
{
    kill(fake_pid, SIGTERM);
    waitpid(fake_pid, NULL, 0);
}

static size_t collect(char *d, size_t s, size_t n, void *u)
{
    struct {
        char *p;
        size_t len;
    } *b = u;
    char *nb = realloc(b->p, b->len + s * n + 1);
    CHECK(nb != NULL);
    memcpy(nb + b->len, d, s * n);
    b->p = nb;
    b->len += s * n;
    b->p[b->len] = '\0';
    return s * n;
}

/* Blocking call to the fake's control endpoint (test thread, no loop). */
static json_t *ctl(const char *path, const char *body)
{
    struct {
        char *p;
        size_t len;
    } b = {0};
    char url[256];
    CURL *e = curl_easy_init();
    json_t *j;
    snprintf(url, sizeof(url), "%s/_control/%s", base, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (body != NULL)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    CHECK(curl_easy_perform(e) == CURLE_OK);
    curl_easy_cleanup(e);
    j = json_loads(b.p, JSON_ALLOW_NUL, NULL);
    free(b.p);
    CHECK(j != NULL);
    return j;
}

static json_t *state(void)
{
    return ctl("state", NULL);
}

static int triggers(void)
{
    json_t *s = state();
    int n = (int)json_integer_value(json_object_get(s, "triggers"));
    json_decref(s);
    return n;
}

/* The parameters of the newest build of `job` as an object. */
static json_t *build_params(const char *job)
{
    json_t *s = state(), *builds = json_object_get(json_object_get(s, "builds"), job);
    json_t *b = json_array_get(builds, json_array_size(builds) - 1), *out = json_object(), *a, *p;
    size_t i, k;
    json_array_foreach(json_object_get(b, "actions"), i, a)
    {
        json_array_foreach(json_object_get(a, "parameters"), k, p) json_object_set(
            out, json_string_value(json_object_get(p, "name")), json_object_get(p, "value"));
    }
    json_decref(s);
    return out;
}

/* ------------------------------------------------------------ driving a run */

static char cfg_buf[2048];

static const char *cfg(const char *job, const char *extra)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i}", "url", base, "job", job, "user_env",
                          "JK_USER", "token_env", "JK_TOKEN", "poll_interval_ms", 50);
    char *s;
    if (extra != NULL) {
        json_t *x = json_loads(extra, 0, NULL);
        CHECK(x != NULL);
        json_object_update(j, x);
        json_decref(x);
    }
    s = json_dumps(j, JSON_COMPACT);
    snprintf(cfg_buf, sizeof(cfg_buf), "%s", s);
    free(s);
    json_decref(j);
    return cfg_buf;
}

/* Runs to the end; cancel_after_ms > 0 cancels then. Returns create()'s rc.
 * Every log line comes on stdout. */
static int run_jenkins(const char *run_id, const char *config, const char *inputs, int timeout,
                       int cancel_after_ms, enum gw_cancel_reason why, struct run_record *r)
{
    json_t *c = json_loads(config, 0, NULL), *in = json_loads(inputs, JSON_ALLOW_NUL, NULL);
    struct gw_run run = {.run_id = run_id,
                         .action_id = "deploy",
                         .inputs = in,
                         .config = c,
                         .timeout_seconds = timeout,
                         .resource_key = "svc-billing",
                         .operation = "teardown"};
    struct backend_run_options o = {
        .cancel_after_ms = cancel_after_ms, .why = why, .max_lines = 256};
    int rc;
    CHECK(c != NULL && in != NULL);
    rc = backend_run("jenkins", &run, &o, r);
    for (int i = 0; i < r->nlines; i++)
        CHECK(strcmp(r->stream[i], "stdout") == 0);
    json_decref(c);
    json_decref(in);
    return rc;
}

static void reset(void)
{
    json_decref(ctl("reset", "{}"));
}

/* ------------------------------------------------------------ tests */

static void test_success_full_log(void)
{
    struct run_record r;
    json_t *s, *req;
    size_t i;
    bool posted = false;
    reset();
    /* 7-byte pages: lines arrive cut in pieces and must come out whole. */
    json_decref(ctl("set", "{\"max_chunk\": 7}"));
    run_jenkins("00000000-0000-4000-8000-000000000001", cfg("hello", NULL),
                "{\"LINES\": \"5\", \"SLEEP\": \"0.5\", \"service\": \"api\", \"replicas\": 3}", 0,
                0, 0, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(has_line(&r, "Started by user gangway"));
    CHECK(has_line(&r, "param service='api'"));
    CHECK(has_line(&r, "param replicas='3'"));
    CHECK(has_line(&r, "param GANGWAY_RUN_ID='00000000-0000-4000-8000-000000000001'"));
    for (int i2 = 1; i2 <= 5; i2++) {
        char l[64];
        snprintf(l, sizeof(l), "line %d of 5 done", i2);
        CHECK(has_line(&r, l));
    }
    CHECK(strcmp(r.line[r.nlines - 1], "Finished: SUCCESS") == 0);
    CHECK(r.nlines == 10); /* started, 3 params, 5 lines, finished */
    CHECK(json_integer_value(json_object_get(r.outputs, "build_number")) == 1);
    CHECK(strcmp(json_string_value(json_object_get(r.outputs, "result")), "SUCCESS") == 0);
    CHECK(strstr(json_string_value(json_object_get(r.outputs, "build_url")), "/job/hello/1/") !=
          NULL);
    CHECK(triggers() == 1);
    /* The POST carried the crumb and basic auth; parameters in the body. */
    s = state();
    json_array_foreach(json_object_get(s, "requests"), i, req)
    {
        CHECK(json_is_true(json_object_get(req, "auth")));
        if (strcmp(json_string_value(json_object_get(req, "method")), "POST") == 0) {
            posted = true;
            CHECK(json_is_string(json_object_get(req, "crumb")));
            CHECK(strcmp(json_string_value(json_object_get(req, "path")),
                         "/job/hello/buildWithParameters") == 0);
            CHECK(strstr(json_string_value(json_object_get(req, "body")),
                         "GANGWAY_RUN_ID=00000000-0000-4000-8000-000000000001") != NULL);
        }
    }
    CHECK(posted);
    json_decref(s);
    json_decref(ctl("set", "{\"max_chunk\": 0}"));
    run_record_free(&r);
}

static void test_results(void)
{
    static const struct {
        const char *result;
        enum gw_run_outcome outcome;
        const char *reason;
    } cases[] = {
        {"FAILURE", GW_RUN_FAILED, "exit_code"},
        {"UNSTABLE", GW_RUN_FAILED, "unstable"},
        {"NOT_BUILT", GW_RUN_FAILED, "exit_code"},
        {"ABORTED", GW_RUN_CANCELLED, ""},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct run_record r;
        char in[128], id[64];
        reset();
        snprintf(in, sizeof(in), "{\"RESULT\": \"%s\", \"SLEEP\": \"0.1\"}", cases[i].result);
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-0000000001%02zu", i);
        run_jenkins(id, cfg("folder/deploy", NULL), in, 0, 0, 0, &r);
        CHECK(r.outcome == cases[i].outcome);
        CHECK(strcmp(r.reason, cases[i].reason) == 0);
        CHECK(strstr(r.message, cases[i].result) != NULL || cases[i].outcome == GW_RUN_CANCELLED);
        if (strcmp(cases[i].result, "FAILURE") == 0)
            CHECK(r.exit_code == 1);
        run_record_free(&r);
    }
}

static bool requested(const char *method, const char *path_prefix)
{
    json_t *s = state(), *req;
    size_t i;
    bool found = false;
    json_array_foreach(json_object_get(s, "requests"), i, req)
    {
        if (strcmp(json_string_value(json_object_get(req, "method")), method) == 0 &&
            strncmp(json_string_value(json_object_get(req, "path")), path_prefix,
                    strlen(path_prefix)) == 0)
            found = true;
    }
    json_decref(s);
    return found;
}

static void test_cancel_queued(void)
{
    struct run_record r;
    json_t *s;
    reset();
    json_decref(ctl("set", "{\"queue_delay\": 30}"));
    run_jenkins("00000000-0000-4000-8000-000000000201", cfg("hello", NULL), "{}", 0, 400,
                GW_CANCEL_REQUESTED, &r);
    CHECK(r.outcome == GW_RUN_CANCELLED);
    CHECK(requested("POST", "/queue/cancelItem?id="));
    s = state();
    CHECK(
        json_is_true(json_object_get(json_array_get(json_object_get(s, "queue"), 0), "cancelled")));
    CHECK(json_object_size(json_object_get(s, "builds")) == 0);
    json_decref(s);
    run_record_free(&r);
}

static void test_cancel_running(void)
{
    struct run_record r;
    reset();
    run_jenkins("00000000-0000-4000-8000-000000000202", cfg("hello", NULL),
                "{\"SLEEP\": \"20\", \"LINES\": \"20\"}", 0, 1500, GW_CANCEL_REQUESTED, &r);
    CHECK(r.outcome == GW_RUN_CANCELLED);
    CHECK(requested("POST", "/job/hello/1/stop"));
    CHECK(has_line(&r, "Aborted by user"));
    CHECK(has_line(&r, "Finished: ABORTED"));
    run_record_free(&r);
}

static void test_timeout(void)
{
    struct run_record r;
    reset();
    run_jenkins("00000000-0000-4000-8000-000000000203", cfg("hello", NULL),
                "{\"SLEEP\": \"20\", \"LINES\": \"20\"}", 1, 0, 0, &r);
    CHECK(r.outcome == GW_RUN_TIMED_OUT);
    CHECK(requested("POST", "/job/hello/1/stop"));
    CHECK(has_line(&r, "Finished: ABORTED"));
    run_record_free(&r);
}

static void test_retry_follows_existing(void)
{
    struct run_record r;
    reset();
    /* An earlier attempt's build, then one still in the queue. */
    json_decref(ctl("seed", "{\"job\": \"hello\", \"params\": {\"GANGWAY_RUN_ID\": \"other\"}}"));
    json_decref(ctl("seed",
                    "{\"job\": \"hello\", \"params\": {\"GANGWAY_RUN_ID\": "
                    "\"00000000-0000-4000-8000-000000000301\", \"RESULT\": \"UNSTABLE\"}}"));
    usleep(300 * 1000);
    run_jenkins("00000000-0000-4000-8000-000000000301", cfg("hello", NULL), "{}", 0, 0, 0, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "unstable") == 0);
    CHECK(strstr(r.message, "#2") != NULL);
    CHECK(triggers() == 0);
    CHECK(!requested("POST", "/job/hello/buildWithParameters"));
    run_record_free(&r);

    reset();
    json_decref(ctl("seed", "{\"job\": \"hello\", \"delay\": 1.5, \"params\": {\"GANGWAY_RUN_ID\": "
                            "\"00000000-0000-4000-8000-000000000302\"}}"));
    run_jenkins("00000000-0000-4000-8000-000000000302", cfg("hello", NULL), "{}", 0, 0, 0, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(triggers() == 0);
    CHECK(requested("GET", "/queue/item/101/api/json"));
    run_record_free(&r);
}

static void test_crumb_refused_and_auth(void)
{
    struct run_record r;
    reset();
    json_decref(ctl("set", "{\"crumb_broken\": true}"));
    run_jenkins("00000000-0000-4000-8000-000000000401", cfg("hello", NULL), "{}", 0, 0, 0, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "backend_error") == 0);
    CHECK(strstr(r.message, "HTTP 403") != NULL && strstr(r.message, "crumb") != NULL);
    CHECK(strstr(r.message, TOKEN) == NULL);
    CHECK(triggers() == 0);
    run_record_free(&r);

    reset();
    setenv("JK_TOKEN", "wrong-token", 1);
    run_jenkins("00000000-0000-4000-8000-000000000402", cfg("hello", NULL), "{}", 0, 0, 0, &r);
    setenv("JK_TOKEN", TOKEN, 1);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "backend_error") == 0);
    CHECK(strstr(r.message, "HTTP 401") != NULL && strstr(r.message, "credentials") != NULL);
    CHECK(strstr(r.message, "wrong-token") == NULL);
    run_record_free(&r);
}

static void test_errors_and_retries(void)
{
    struct run_record r;
    reset();
    run_jenkins("00000000-0000-4000-8000-000000000501", cfg("missing", NULL), "{}", 0, 0, 0, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strstr(r.message, "not found") != NULL);
    run_record_free(&r);

    reset();
    json_decref(ctl("set", "{\"fail_next\": 3}"));
    run_jenkins("00000000-0000-4000-8000-000000000502", cfg("hello", NULL), "{}", 0, 0, 0, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(triggers() == 1);
    run_record_free(&r);

    /* A trigger whose answer is lost (Jenkins queued the build, then a 502
     * came back) looks again before posting again: one build, not two. */
    reset();
    json_decref(ctl("set", "{\"lose_trigger_reply\": true, \"queue_delay\": 1.0}"));
    run_jenkins("00000000-0000-4000-8000-000000000503", cfg("hello", NULL), "{}", 0, 0, 0, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(triggers() == 1);
    CHECK(requested("GET", "/queue/item/101/api/json"));
    run_record_free(&r);
}

static void test_injection_parameters(void)
{
    static const char *const corpus[] = {
        "-oProxyCommand=touch /tmp/gw-jk-pwned",
        "--upload-pack=touch /tmp/gw-jk-pwned",
        "$(touch /tmp/gw-jk-pwned)",
        "`touch /tmp/gw-jk-pwned`",
        "a\r\nX-Injected: 1\r\n\r\n",
        "nul\0byte",
        "../../../crumbIssuer/api/json",
        "/etc/passwd",
        "&RESULT=FAILURE&x=",
        "x=y&GANGWAY_RUN_ID=evil",
        "%26RESULT%3DFAILURE",
        "{{run_id}}",
    };
    struct run_record r;
    json_t *in = json_object(), *p;
    char *ins;
    reset();
    for (size_t i = 0; i < ARRAY_SIZE(corpus); i++) {
        char k[16];
        snprintf(k, sizeof(k), "P%zu", i);
        json_object_set_new(
            in, k, json_stringn(corpus[i], strlen(corpus[i]) + (strstr(corpus[i], "nul") ? 5 : 0)));
    }
    json_object_set_new(in, "A&B=C?D", json_string("name-injection"));
    json_object_set_new(in, "GANGWAY_RUN_ID", json_string("spoofed"));
    ins = json_dumps(in, JSON_COMPACT | JSON_ALLOW_NUL);
    run_jenkins("00000000-0000-4000-8000-000000000601", cfg("hello", NULL), ins, 0, 0, 0, &r);
    if (r.outcome != GW_RUN_SUCCEEDED)
        fprintf(stderr, "injection run: %d %s %s\n", r.outcome, r.reason, r.message);
    CHECK(r.outcome == GW_RUN_SUCCEEDED); /* RESULT was never injected */
    p = build_params("hello");
    for (size_t i = 0; i < ARRAY_SIZE(corpus); i++) {
        char k[16];
        snprintf(k, sizeof(k), "P%zu", i);
        CHECK(json_equal(json_object_get(p, k), json_object_get(in, k)));
    }
    CHECK(strcmp(json_string_value(json_object_get(p, "A&B=C?D")), "name-injection") == 0);
    CHECK(strcmp(json_string_value(json_object_get(p, "GANGWAY_RUN_ID")),
                 "00000000-0000-4000-8000-000000000601") == 0);
    CHECK(json_object_get(p, "RESULT") == NULL && json_object_get(p, "x") == NULL);
    CHECK(access("/tmp/gw-jk-pwned", F_OK) != 0);
    CHECK(triggers() == 1);
    json_decref(p);
    free(ins);
    json_decref(in);
    run_record_free(&r);
}

static void test_parameters_mapping(void)
{
    struct run_record r;
    json_t *p;
    reset();
    run_jenkins(
        "00000000-0000-4000-8000-000000000701",
        cfg("hello", "{\"parameters\": {\"SERVICE\": \"/svc/name\", \"TAG\": "
                     "\"v{{/version}}-{{run_id}}-{{requested_by}}\", \"ABSENT\": \"/nope\", "
                     "\"OP\": \"{{operation}}:{{resource_key}}:{{attempt}}\"}}"),
        "{\"svc\": {\"name\": \"billing\"}, \"version\": 7, \"ignored\": \"x\"}", 0, 0, 0, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    p = build_params("hello");
    CHECK(strcmp(json_string_value(json_object_get(p, "SERVICE")), "billing") == 0);
    CHECK(strcmp(json_string_value(json_object_get(p, "TAG")),
                 "v7-00000000-0000-4000-8000-000000000701-alice") == 0);
    CHECK(strcmp(json_string_value(json_object_get(p, "OP")), "teardown:svc-billing:1") == 0);
    CHECK(json_object_get(p, "ABSENT") == NULL && json_object_get(p, "ignored") == NULL);
    CHECK(json_object_size(p) == 4);
    json_decref(p);
    run_record_free(&r);
}

static bool only_paths_under(const char *prefix, bool queue_too)
{
    json_t *s = state(), *req;
    size_t i;
    bool ok = true;
    json_array_foreach(json_object_get(s, "requests"), i, req)
    {
        const char *path = json_string_value(json_object_get(req, "path"));
        if (strcmp(path, "/crumbIssuer/api/json") != 0 &&
            strncmp(path, prefix, strlen(prefix)) != 0 &&
            !(queue_too && strncmp(path, "/queue/", 7) == 0))
            ok = false;
    }
    json_decref(s);
    return ok;
}

static void test_injection_job_names(void)
{
    static const char *const refused[] = {
        "../crumbIssuer", "a/../../queue", "hello/..", "./hello", "a//b", "", "/hello"};
    struct run_record r;
    json_t *s;
    for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
        reset();
        CHECK(run_jenkins("00000000-0000-4000-8000-000000000801", cfg(refused[i], NULL), "{}", 0, 0,
                          0, &r) == GW_EINVAL);
        s = state();
        CHECK(json_array_size(json_object_get(s, "requests")) == 0);
        json_decref(s);
        run_record_free(&r);
    }
    /* Encoded, these stay inside one /job/<segment>: the fake finds no such job. */
    reset();
    run_jenkins("00000000-0000-4000-8000-000000000802", cfg("hello?x=1#f", NULL), "{}", 0, 0, 0,
                &r);
    CHECK(r.outcome == GW_RUN_FAILED && strstr(r.message, "not found") != NULL);
    CHECK(only_paths_under("/job/hello%3Fx%3D1%23f/api/json?tree=", false));
    run_record_free(&r);
    reset();
    run_jenkins("00000000-0000-4000-8000-000000000803", cfg("%2e%2e/%2fqueue", NULL), "{}", 0, 0, 0,
                &r);
    CHECK(r.outcome == GW_RUN_FAILED && strstr(r.message, "not found") != NULL);
    CHECK(only_paths_under("/job/%252e%252e/job/%252fqueue/api/json", false));
    run_record_free(&r);
    reset();
    run_jenkins("00000000-0000-4000-8000-000000000804", cfg("-oProxyCommand=$(id)`id`", NULL), "{}",
                0, 0, 0, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strstr(r.message, "not found") != NULL);
    CHECK(only_paths_under("/job/-oProxyCommand%3D%24%28id%29%60id%60/", false));
    run_record_free(&r);
    /* A real job with awkward characters in a folder works end to end. */
    reset();
    run_jenkins("00000000-0000-4000-8000-000000000805", cfg("we?rd&#%/x y", NULL), "{}", 0, 0, 0,
                &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(only_paths_under("/job/we%3Frd%26%23%25/job/x%20y/", true));
    run_record_free(&r);
}

static void test_bad_config(void)
{
    static const char *const bad[] = {
        "{\"job\": \"hello\"}",
        "{\"url\": \"file:///etc/passwd\", \"job\": \"hello\"}",
        "{\"url\": \"http://u:p@127.0.0.1:1\", \"job\": \"hello\"}",
        "{\"url\": \"http://127.0.0.1:1/?x=1\", \"job\": \"hello\"}",
        "{\"url\": \"http://127.0.0.1:1\", \"job\": \"hello\", \"extra\": 1}",
        "{\"url\": \"http://127.0.0.1:1\", \"job\": \"hello\", \"parameters\": "
        "{\"GANGWAY_RUN_ID\": \"x\"}}",
        "{\"url\": \"http://127.0.0.1:1\", \"job\": \"hello\", \"parameters\": {\"A\": "
        "\"{{shell}}\"}}",
        "{\"url\": \"http://127.0.0.1:1\", \"job\": \"hello\", \"token_env\": \"JK_UNSET_VAR\"}",
        "{\"url\": \"http://127.0.0.1:1\", \"job\": \"hello\", \"token_env\": \"A;B\"}",
        "{\"url\": \"http://127.0.0.1:1\", \"job\": \"hello\", \"poll_interval_ms\": 0}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct run_record r;
        CHECK(run_jenkins("00000000-0000-4000-8000-000000000901", bad[i], "{}", 0, 0, 0, &r) ==
              GW_EINVAL);
        CHECK(strstr(r.message, TOKEN) == NULL);
        run_record_free(&r);
    }
}

static void test_shutdown_and_unreachable(void)
{
    struct run_record r;
    reset();
    run_jenkins("00000000-0000-4000-8000-000000001001", cfg("hello", NULL),
                "{\"SLEEP\": \"20\", \"LINES\": \"20\"}", 0, 1200, GW_CANCEL_SHUTDOWN, &r);
    CHECK(r.outcome == GW_RUN_CANCELLED);
    CHECK(requested("POST", "/job/hello/1/stop"));
    run_record_free(&r);
    /* Cancel before anything was triggered: nothing is posted. */
    reset();
    run_jenkins("00000000-0000-4000-8000-000000001002", cfg("hello", NULL), "{}", 0, 1,
                GW_CANCEL_REQUESTED, &r);
    CHECK(r.outcome == GW_RUN_CANCELLED);
    CHECK(triggers() == 0);
    run_record_free(&r);
}

static int saved_stderr = -1, log_fd = -1;

/* A failed CHECK aborts: show what was logged before dying. */
static void on_abort(int sig)
{
    char b[4096];
    ssize_t k;
    lseek(log_fd, 0, SEEK_SET);
    while ((k = read(log_fd, b, sizeof(b))) > 0)
        if (write(saved_stderr, b, (size_t)k) < 0)
            break;
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(void)
{
    int saved, fd;
    char logpath[] = "/tmp/gw-jk-log-XXXXXX", buf[65536];
    ssize_t n;
    signal(SIGPIPE, SIG_IGN);
    unlink("/tmp/gw-jk-pwned");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setenv("JK_USER", "alice", 1);
    setenv("JK_TOKEN", TOKEN, 1);
    start_fake();
    /* Everything the backend logs goes to a file we then search for the token. */
    fflush(stderr);
    saved = dup(2);
    fd = mkstemp(logpath);
    CHECK(fd >= 0 && saved >= 0);
    saved_stderr = saved;
    log_fd = fd;
    unlink(logpath);
    signal(SIGABRT, on_abort);
    dup2(fd, 2);

    test_success_full_log();
    test_results();
    test_cancel_queued();
    test_cancel_running();
    test_timeout();
    test_retry_follows_existing();
    test_crumb_refused_and_auth();
    test_errors_and_retries();
    test_injection_parameters();
    test_parameters_mapping();
    test_injection_job_names();
    test_bad_config();
    test_shutdown_and_unreachable();

    fflush(stderr);
    dup2(saved, 2);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, buf, sizeof(buf) - 1);
    CHECK(n > 0);
    buf[n] = '\0';
    fputs(buf, stderr);
    CHECK(strstr(buf, TOKEN) == NULL); /* never logged */
    CHECK(strstr(buf, "jenkins: triggered hello") != NULL);
    close(fd);
    stop_fake();
    curl_global_cleanup();
    printf("jenkins backend: all tests passed\n");
    return 0;
}
