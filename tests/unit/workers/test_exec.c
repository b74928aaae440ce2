/* The exec backend driven directly on a loop, without Kafka or a broker. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "backend_run.h"
#include "gw/log.h"
#include "wtest.h"

static const char *find_line(struct run_record *r, const char *stream, const char *prefix)
{
    for (int i = 0; i < r->nlines; i++)
        if (strcmp(r->stream[i], stream) == 0 && strncmp(r->line[i], prefix, strlen(prefix)) == 0)
            return r->line[i];
    return NULL;
}

/* Runs `config` to completion; cancel_after_ms > 0 cancels it then. */
static void run_exec(const char *config, const char *inputs, int timeout, int cancel_after_ms,
                     struct run_record *r)
{
    json_t *cfg = json_loads(config, 0, NULL), *in = json_loads(inputs, 0, NULL);
    struct gw_run run = {.attempt = 2,
                         .action_id = "test-action",
                         .action_version = "abc123",
                         .inputs = in,
                         .config = cfg,
                         .timeout_seconds = timeout};
    struct backend_run_options o = {.cancel_after_ms = cancel_after_ms, .max_lines = 64};
    CHECK(cfg != NULL && in != NULL);
    CHECK(backend_run("exec", &run, &o, r) == 0);
    json_decref(cfg);
    json_decref(in);
}

static bool pid_gone(pid_t pid)
{
    char path[64], buf[256];
    FILE *f;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return true;
    buf[0] = '\0';
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    const char *rp = strrchr(buf, ')');
    return rp != NULL && rp[1] == ' ' && rp[2] == 'Z'; /* a zombie is dead */
}

static void test_succeeded_with_outputs(void)
{
    struct run_record r;
    struct stat st;
    const char *wd;
    run_exec("{\"command\":[\"/bin/sh\",\"-c\","
             "\"cat > in.json; echo hello; echo oops >&2; echo WD=$GANGWAY_WORKDIR;"
             " printf '{\\\"x\\\":1,\\\"in\\\":%s}' \\\"$(cat in.json)\\\" > $GANGWAY_OUTPUTS\"]}",
             "{\"name\":\"svc\",\"n\":3}", 30, 0, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(json_integer_value(json_object_get(r.outputs, "x")) == 1);
    /* stdin received the inputs document. */
    CHECK(strcmp(json_string_value(json_object_get(json_object_get(r.outputs, "in"), "name")),
                 "svc") == 0);
    CHECK(find_line(&r, "stdout", "hello") != NULL);
    CHECK(find_line(&r, "stderr", "oops") != NULL);
    wd = find_line(&r, "stdout", "WD=");
    CHECK(wd != NULL && strlen(wd) > 3);
    CHECK(stat(wd + 3, &st) != 0 && errno == ENOENT); /* workdir removed */
    run_record_free(&r);

    /* No outputs file: {} */
    run_exec("{\"command\":[\"/bin/true\"]}", "{}", 30, 0, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED && json_object_size(r.outputs) == 0);
    run_record_free(&r);
}

static void test_failed_exit_code(void)
{
    struct run_record r;
    run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"echo bye; exit 3\"]}", "{}", 30, 0, &r);
    CHECK(r.outcome == GW_RUN_FAILED);
    CHECK(strcmp(r.reason, "exit_code") == 0 && r.exit_code == 3);
    CHECK(find_line(&r, "stdout", "bye") != NULL);
    run_record_free(&r);
}

static void test_bad_outputs(void)
{
    struct run_record r;
    run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"echo '[1,2]' > $GANGWAY_OUTPUTS\"]}", "{}", 30, 0,
             &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "bad_outputs") == 0);
    run_record_free(&r);
    run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"echo '{nope' > $GANGWAY_OUTPUTS\"]}", "{}", 30, 0,
             &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "bad_outputs") == 0);
    run_record_free(&r);
}

static void test_spawn_failed(void)
{
    struct run_record r;
    run_exec("{\"command\":[\"/nonexistent/program\"]}", "{}", 30, 0, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "spawn_failed") == 0);
    CHECK(strstr(r.message, "cannot start /nonexistent/program: no such file or directory") !=
          NULL);
    run_record_free(&r);

    /* A bare name is looked up in the PATH the program gets (absolute
     * entries only), and a script without #! is not handed to a shell. */
    char dir[] = "/tmp/gw-exec-path-XXXXXX", cfg[512], path[600];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/gw-hello", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("#!/bin/sh\necho found-on-path\n", f);
    fclose(f);
    chmod(path, 0755);
    snprintf(cfg, sizeof(cfg),
             "{\"command\":[\"gw-hello\"],\"env\":{\"PATH\":\"relative/bin::%s:/usr/bin\"}}", dir);
    run_exec(cfg, "{}", 30, 0, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED && find_line(&r, "stdout", "found-on-path") != NULL);
    run_record_free(&r);

    f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("echo no interpreter line\n", f);
    fclose(f);
    run_exec(cfg, "{}", 30, 0, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "spawn_failed") == 0 &&
          strstr(r.message, "exec format error (a script needs a #! line)") != NULL);
    run_record_free(&r);
    unlink(path);
    rmdir(dir);
}

static void check_grandchild_gone(struct run_record *r)
{
    const char *pidline = find_line(r, "stdout", "PID=");
    pid_t pid;
    CHECK(pidline != NULL);
    pid = (pid_t)atoi(pidline + 4);
    CHECK(pid > 1);
    for (int i = 0; i < 100 && !pid_gone(pid); i++)
        usleep(20000);
    CHECK(pid_gone(pid));
}

static void test_timeout_kills_group(void)
{
    struct run_record r;
    uint64_t t0 = uv_hrtime();
    /* The grandchild `sleep` must die with its group. */
    run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"sleep 300 & echo PID=$!; wait\"],"
             "\"kill_grace_seconds\":1}",
             "{}", 1, 0, &r);
    CHECK(r.outcome == GW_RUN_TIMED_OUT);
    CHECK(uv_hrtime() - t0 < 5000000000ull);
    check_grandchild_gone(&r);
    run_record_free(&r);

    /* SIGTERM ignored by the whole group: SIGKILL after the grace. */
    t0 = uv_hrtime();
    run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"trap '' TERM; sleep 300 & echo PID=$!; wait\"],"
             "\"kill_grace_seconds\":0.5}",
             "{}", 1, 0, &r);
    CHECK(r.outcome == GW_RUN_TIMED_OUT);
    CHECK(uv_hrtime() - t0 >= 1400000000ull);
    check_grandchild_gone(&r);
    run_record_free(&r);
}

static void test_cancel(void)
{
    struct run_record r;
    run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"sleep 300 & echo PID=$!; wait\"],"
             "\"kill_grace_seconds\":1}",
             "{}", 60, 300, &r);
    CHECK(r.outcome == GW_RUN_CANCELLED);
    check_grandchild_gone(&r);
    run_record_free(&r);
}

static void test_env_scrubbed(void)
{
    struct run_record r;
    static const char *allowed[] = {"PATH=", "LANG=", "HOME=", "FOO=", "GANGWAY_", NULL};
    setenv("GW_SECRET_FOR_TEST", "leak", 1);
    run_exec("{\"command\":[\"/usr/bin/env\"],\"env\":{\"FOO\":\"bar baz\"}}", "{}", 30, 0, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    for (int i = 0; i < r.nlines; i++) {
        bool ok = false;
        for (const char **a = allowed; *a != NULL; a++)
            ok = ok || strncmp(r.line[i], *a, strlen(*a)) == 0;
        if (!ok)
            fprintf(stderr, "unexpected env: %s\n", r.line[i]);
        CHECK(ok);
    }
    CHECK(find_line(&r, "stdout", "GW_SECRET_FOR_TEST") == NULL);
    CHECK(find_line(&r, "stdout", "PATH=/usr/local/bin:/usr/bin:/bin") != NULL);
    CHECK(find_line(&r, "stdout", "LANG=C.UTF-8") != NULL);
    CHECK(find_line(&r, "stdout", "FOO=bar baz") != NULL);
    CHECK(find_line(&r, "stdout", "GANGWAY_RUN_ID=11111111-2222-3333-4444-555555555555"));
    CHECK(find_line(&r, "stdout", "GANGWAY_ATTEMPT=2") != NULL);
    CHECK(find_line(&r, "stdout", "GANGWAY_ACTION_ID=test-action") != NULL);
    CHECK(find_line(&r, "stdout", "GANGWAY_ACTION_VERSION=abc123") != NULL);
    CHECK(find_line(&r, "stdout", "GANGWAY_REQUESTED_BY=alice") != NULL);
    CHECK(find_line(&r, "stdout", "GANGWAY_OUTPUTS=/") != NULL);
    CHECK(find_line(&r, "stdout", "GANGWAY_WORKDIR=/") != NULL);
    CHECK(find_line(&r, "stdout", "HOME=/") != NULL);
    run_record_free(&r);
}

static void test_long_line_split(void)
{
    struct run_record r;
    run_exec("{\"command\":[\"/bin/sh\",\"-c\","
             "\"head -c 40000 /dev/zero | tr '\\\\000' a; echo; printf 'short\\\\r\\\\nlast'\"]}",
             "{}", 30, 0, &r);
    CHECK(r.outcome == GW_RUN_SUCCEEDED);
    CHECK(r.nlines == 5);
    CHECK(r.len[0] == 16384 && r.len[1] == 16384 && r.len[2] == 40000 - 2 * 16384);
    CHECK(r.line[0][0] == 'a' && r.line[2][r.len[2] - 1] == 'a');
    CHECK(strcmp(r.line[3], "short") == 0); /* \r\n handled */
    CHECK(strcmp(r.line[4], "last") == 0);  /* no final newline */
    run_record_free(&r);
}

static void test_bad_config(void)
{
    const struct gw_backend_impl *be = gw_backend_lookup("exec");
    static const char *bad[] = {
        "{}",
        "{\"command\":[]}",
        "{\"command\":\"/bin/true\"}",
        "{\"command\":[\"\"]}",
        "{\"command\":[\"/bin/true\"],\"env\":{\"GANGWAY_RUN_ID\":\"x\"}}",
        "{\"command\":[\"/bin/true\"],\"env\":{\"A\":1}}",
        "{\"command\":[\"/bin/true\"],\"shell\":true}",
        NULL,
    };
    for (const char **b = bad; *b != NULL; b++) {
        struct gw_error err;
        json_t *cfg = json_loads(*b, 0, NULL);
        struct gw_run run = {.config = cfg};
        CHECK(be->create(&run, &err) == GW_EINVAL);
        CHECK(run.backend_data == NULL);
        json_decref(cfg);
    }
    CHECK(gw_backend_lookup("nope") == NULL);
}

static void test_schema_embedded(void)
{
    const struct gw_backend_impl *be = gw_backend_lookup("exec");
    const char *root = getenv("GW_SOURCE_ROOT");
    json_t *embedded = json_loads(be->config_schema, 0, NULL), *file;
    char path[1024];
    CHECK(embedded != NULL);
    CHECK(json_is_object(json_object_get(json_object_get(embedded, "properties"), "command")));
    if (root != NULL) {
        snprintf(path, sizeof(path), "%s/schemas/backends/exec.json", root);
        file = json_load_file(path, 0, NULL);
        CHECK(file != NULL && json_equal(file, embedded));
        json_decref(file);
    }
    json_decref(embedded);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    gw_log_init("test", getenv("WT_DEBUG") ? GW_LOG_DEBUG : GW_LOG_ERROR);
    test_bad_config();
    test_schema_embedded();
    test_succeeded_with_outputs();
    test_failed_exit_code();
    test_bad_outputs();
    test_spawn_failed();
    test_env_scrubbed();
    test_long_line_split();
    test_cancel();
    test_timeout_kills_group();
    printf("exec backend tests passed\n");
    return 0;
}
