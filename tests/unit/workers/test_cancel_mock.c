/* Cancellation through <prefix>gangway.control, the whole worker against
 * librdkafka's mock cluster and the stand-in claim server:
 *   - the worker starts before its control topic exists (the mock cluster
 *     creates it on the first metadata request, so the real case, a topic
 *     created late, is in tests/integration/test_cancel.py);
 *   - a malformed control message is ignored;
 *   - cancel of a running exec run -> run.cancelled, its process group gone;
 *   - cancel for another attempt -> ignored, the run goes on;
 *   - cancel of a run waiting behind the key gate -> never claimed, never run;
 *   - cancel while the claim is in flight -> run.cancelled, nothing started.
 * The worker's log (INFO) goes to a file the test reads to know what the
 * worker has seen; it is printed if a check fails. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "claimsrv.h"
#include "gw/kafka.h"
#include "gw/log.h"
#include "runtime.h"
#include "worker_e2e.h"

#define RUN_A "00000000-0000-0000-0000-000000000ca1" /* running, cancelled */
#define RUN_B "00000000-0000-0000-0000-000000000cb1" /* wrong attempt, then cancelled */
#define RUN_C "00000000-0000-0000-0000-000000000cc1" /* behind B's key, cancelled */
#define RUN_D "00000000-0000-0000-0000-000000000d01" /* cancelled mid-claim */

static uv_loop_t loop;
static const char *extra[] = {"fetch.wait.max.ms=5", "session.timeout.ms=6000",
                              "heartbeat.interval.ms=200", NULL};
static struct gw_kafka_config kcfg = {.extra = extra};
static struct gw_kafka_consumer *events_c;
static struct gw_kafka_producer *prod;
static const char *prefix = "tc.";
static struct e2e_topics topics;
static char dir[128], logpath[160];
static int saved_stderr = -1;
static json_t *events;

/* A failed CHECK aborts: show the worker's log first. */
static void on_abort(int sig)
{
    char buf[4096];
    ssize_t n;
    int fd = open(logpath, O_RDONLY);
    (void)sig;
    while (fd >= 0 && saved_stderr >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
        if (write(saved_stderr, buf, (size_t)n) < 0)
            break;
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
}

static void on_events(void *arg, struct gw_kafka_msg **m, size_t n)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_loads(m[i]->payload, 0, NULL);
        CHECK(ev != NULL);
        json_array_append_new(events, ev);
        gw_kafka_msg_done(events_c, m[i]);
    }
}

static const char *type_of(json_t *ev)
{
    return e2e_type_of(ev);
}

static json_t *events_of(const char *run_id)
{
    return e2e_events_of(events, run_id);
}

/* The last event of a run if it is final, else NULL (borrowed from events). */
static json_t *final_of(const char *run_id)
{
    json_t *ev, *fin = NULL;
    size_t i;
    json_array_foreach(events, i, ev)
    {
        const char *t = type_of(ev);
        if (strcmp(json_string_value(json_object_get(ev, "subject")), run_id) == 0 &&
            (strcmp(t, "dev.gangway.run.succeeded") == 0 ||
             strcmp(t, "dev.gangway.run.failed") == 0 ||
             strcmp(t, "dev.gangway.run.timed_out") == 0 ||
             strcmp(t, "dev.gangway.run.cancelled") == 0))
            fin = ev;
    }
    return fin;
}

static bool never(const char *arg)
{
    (void)arg;
    return false;
}

static void spin(int ms)
{
    e2e_run_until(&loop, never, NULL, ms);
}

static bool has_final(const char *run_id)
{
    return final_of(run_id) != NULL;
}

static bool log_has(const char *needle)
{
    char buf[1 << 16];
    FILE *f = fopen(logpath, "r");
    bool found = false;
    if (f == NULL)
        return false;
    while (!found && fgets(buf, sizeof(buf), f) != NULL)
        found = strstr(buf, needle) != NULL;
    fclose(f);
    return found;
}

static bool logged(const char *needle)
{
    return log_has(needle);
}

static bool file_exists(const char *run_id, const char *ext)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s%s", dir, run_id, ext);
    return access(p, F_OK) == 0;
}

/* "started" is echoed after the pid files are written. */
static bool started(const char *run_id)
{
    json_t *evs = events_of(run_id), *ev;
    size_t i;
    bool ok = false;
    json_array_foreach(evs, i, ev)
    {
        const char *line = json_string_value(json_object_get(json_object_get(ev, "data"), "line"));
        if (line != NULL && strcmp(line, "started") == 0)
            ok = true;
    }
    json_decref(evs);
    return ok;
}

static bool marked(const char *run_id)
{
    return file_exists(run_id, "");
}

static long read_pid(const char *run_id, const char *ext)
{
    char p[256];
    long pid = -1;
    FILE *f;
    snprintf(p, sizeof(p), "%s/%s%s", dir, run_id, ext);
    f = fopen(p, "r");
    CHECK(f != NULL);
    CHECK(fscanf(f, "%ld", &pid) == 1);
    fclose(f);
    CHECK(pid > 1);
    return pid;
}

/* True when a live (non-zombie) process is in group `pgid` or is `pid`.
 * Zombies count as gone: orphans here may never be reaped. */
static bool alive(long pgid, long pid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool found = false;
    CHECK(d != NULL);
    while (!found && (e = readdir(d)) != NULL) {
        char p[300], buf[1024], state;
        long self, pgrp, ppid;
        FILE *f;
        char *rp;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(p, sizeof(p), "/proc/%s/stat", e->d_name);
        if ((f = fopen(p, "r")) == NULL)
            continue;
        if (fgets(buf, sizeof(buf), f) != NULL && (rp = strrchr(buf, ')')) != NULL &&
            sscanf(rp + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3) {
            self = atol(e->d_name);
            if (state != 'Z' && (pgrp == pgid || self == pid))
                found = true;
        }
        fclose(f);
    }
    closedir(d);
    return found;
}

static long gone_pgid, gone_pid;
static bool gone(const char *arg)
{
    (void)arg;
    return !alive(gone_pgid, gone_pid);
}

static void dr(void *opaque, const struct gw_error *err)
{
    (void)opaque;
    CHECK(err == NULL);
}

static void request(const char *run_id, const char *key)
{
    e2e_request(prod, &topics, run_id, key, "sleepy", 60);
}

/* The broker's message (sql/functions/gw_cancel_run.sql), worker_id null as it may be. */
static char *cancel_text(const char *run_id, int attempt)
{
    char *s = NULL;
    json_t *ev = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:i, s:s, s:n, s:s}}", "specversion", "1.0",
        "id", "c-1", "source", "gangway/broker", "type", "dev.gangway.run.cancel", "subject",
        run_id, "time", "2026-01-01T00:00:00.000Z", "datacontenttype", "application/json", "data",
        "run_id", run_id, "attempt", attempt, "worker_type", "exec", "worker_id", "reason", "test");
    CHECK(ev != NULL);
    s = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return s;
}

static void cancel(const char *run_id, int attempt)
{
    char *s = cancel_text(run_id, attempt);
    CHECK(gw_kafka_produce(prod, topics.control, run_id, strlen(run_id), s, strlen(s), dr, NULL,
                           NULL) == 0);
    free(s);
}

/* Events published match schemas/events/, and so does the cancel message. */
static void check_schemas(void)
{
    struct e2e_schema es;
    struct gw_schema *s;
    json_t *ev;
    size_t i;
    char *text;
    if (!e2e_schema_open(&es))
        return;
    s = es.envelope;
    json_array_foreach(events, i, ev)
    {
        CHECK(gw_schema_validate(s, ev, NULL));
    }
    text = cancel_text(RUN_A, 1);
    ev = json_loads(text, 0, NULL);
    free(text);
    CHECK(gw_schema_validate(s, ev, NULL));
    /* The schema does reject: no attempt, then a zero attempt. */
    json_object_del(json_object_get(ev, "data"), "attempt");
    CHECK(!gw_schema_validate(s, ev, NULL));
    json_object_set_new(json_object_get(ev, "data"), "attempt", json_integer(0));
    CHECK(!gw_schema_validate(s, ev, NULL));
    json_decref(ev);
    e2e_schema_close(&es);
}

/* seq 1..n without holes; the last event is run.cancelled with a message. */
static void check_cancelled(const char *run_id, bool expect_started)
{
    json_t *evs = events_of(run_id), *ev, *last;
    size_t i, n = json_array_size(evs);
    CHECK(n >= 1);
    json_array_foreach(evs, i, ev)
    {
        CHECK(json_integer_value(json_object_get(json_object_get(ev, "data"), "seq")) ==
              (json_int_t)(i + 1));
    }
    last = json_array_get(evs, n - 1);
    CHECK(strcmp(type_of(last), "dev.gangway.run.cancelled") == 0);
    CHECK(json_string_value(json_object_get(json_object_get(last, "data"), "message")) != NULL);
    CHECK((strcmp(type_of(json_array_get(evs, 0)), "dev.gangway.run.started") == 0) ==
          expect_started);
    json_decref(evs);
}

int main(void)
{
    struct gw_error err;
    struct claimsrv srv;
    struct gw_kafka_mock *m;
    struct gw_worker *w;
    char cmd[1024], needle[256];
    long pgid, pid;
    int fd;

    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/gw-test-cancel-%d", (int)getpid());
    CHECK(mkdir(dir, 0700) == 0);
    snprintf(logpath, sizeof(logpath), "%s/worker.log", dir);
    /* The worker's log lines are what this test watches. */
    saved_stderr = dup(2);
    fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && saved_stderr >= 0);
    dup2(fd, 2);
    close(fd);
    signal(SIGABRT, on_abort);
    gw_log_init("test", GW_LOG_INFO);

    snprintf(cmd, sizeof(cmd),
             "[\"/bin/sh\",\"-c\",\"echo $$ > \\\"$0/$GANGWAY_RUN_ID.pgid\\\"; sleep 60 & "
             "echo $! > \\\"$0/$GANGWAY_RUN_ID.child\\\"; echo started; wait\",\"%s\"]",
             dir);
    setenv("GW_TEST_CLAIM_COMMAND", cmd, 1);
    setenv("GW_TEST_CLAIM_MARK_DIR", dir, 1);
    e2e_start(&srv, &loop);
    events = json_array();
    e2e_topics_init(&topics, prefix);
    m = e2e_mock_create(&kcfg, &topics);

    w = e2e_worker_create(&loop, &kcfg, prefix, srv.url, 200);
    {
        const char *et[] = {topics.events, NULL};
        struct gw_kafka_consumer_options eo = {
            .group_id = "tc.test-events", .topics = et, .max_batch = 50, .max_in_flight = 500};
        events_c = gw_kafka_consumer_create(&loop, &kcfg, &eo, on_events, NULL, &err);
        CHECK(events_c != NULL);
    }
    prod = gw_kafka_producer_create(&loop, &kcfg, &err);
    CHECK(prod != NULL);

    spin(1500);
    CHECK(gw_kafka_mock_create_topic(m, topics.control, 2, NULL) == 0);
    CHECK(e2e_run_until(&loop, logged, "control: listening for cancels", 20000));

    /* 1. A running exec run. Until the control consumer has its partitions
     * (it starts at the end), cancels are lost: repeat until one lands. A
     * malformed message goes first each time and is only logged. */
    request(RUN_A, "key-a");
    CHECK(e2e_run_until(&loop, started, RUN_A, 30000));
    pgid = read_pid(RUN_A, ".pgid");
    pid = read_pid(RUN_A, ".child");
    CHECK(alive(pgid, pid));
    for (int i = 0; i < 60 && !has_final(RUN_A); i++) {
        CHECK(gw_kafka_produce(prod, topics.control, RUN_A, strlen(RUN_A), "{junk", 5, dr, NULL,
                               NULL) == 0);
        cancel(RUN_A, 1);
        e2e_run_until(&loop, has_final, RUN_A, 500);
    }
    CHECK(has_final(RUN_A));
    check_cancelled(RUN_A, true);
    CHECK(log_has("control message") && log_has("ignored: not JSON"));
    gone_pgid = pgid;
    gone_pid = pid;
    CHECK(e2e_run_until(&loop, gone, NULL, 10000)); /* SIGTERM, then SIGKILL after the grace */

    /* 2. Another attempt's cancel is ignored; 3. a run waiting behind the key
     * gate is dropped unclaimed when cancelled. */
    request(RUN_B, "key-b");
    CHECK(e2e_run_until(&loop, started, RUN_B, 20000));
    request(RUN_C, "key-b");
    CHECK(e2e_run_until(&loop, logged, "waiting for an earlier run of key key-b", 20000));
    cancel(RUN_B, 2);
    snprintf(needle, sizeof(needle), "cancel for attempt 2 ignored: this is attempt 1");
    CHECK(e2e_run_until(&loop, logged, needle, 20000));
    spin(300);
    CHECK(!has_final(RUN_B));
    pgid = read_pid(RUN_B, ".pgid");
    pid = read_pid(RUN_B, ".child");
    CHECK(alive(pgid, pid));
    cancel(RUN_C, 1);
    CHECK(e2e_run_until(&loop, logged, "never started", 20000));
    cancel(RUN_B, 1);
    CHECK(e2e_run_until(&loop, has_final, RUN_B, 20000));
    check_cancelled(RUN_B, true);
    gone_pgid = pgid;
    gone_pid = pid;
    CHECK(e2e_run_until(&loop, gone, NULL, 10000));
    spin(1000); /* key-b is free now: C must still not run */
    {
        json_t *evs = events_of(RUN_C);
        CHECK(json_array_size(evs) == 0);
        json_decref(evs);
    }
    CHECK(!file_exists(RUN_C, ".pgid"));
    CHECK(!marked(RUN_C)); /* never claimed either */

    /* 4. Cancelled while its claim is in flight (the stand-in answers d01
     * after 2 s): reported cancelled, never started. */
    request(RUN_D, "key-d");
    CHECK(e2e_run_until(&loop, marked, RUN_D, 20000));
    cancel(RUN_D, 1);
    CHECK(e2e_run_until(&loop, has_final, RUN_D, 20000));
    check_cancelled(RUN_D, false);
    {
        json_t *evs = events_of(RUN_D);
        CHECK(json_array_size(evs) == 1);
        json_decref(evs);
    }
    spin(500);
    CHECK(!file_exists(RUN_D, ".pgid"));

    check_schemas();
    {
        struct gw_worker_stats st;
        gw_worker_stats(w, &st);
        CHECK(st.runs_started == 2 && st.runs_cancelled == 3 && st.claims_refused == 1);
        CHECK(st.runs_failed == 0 && st.deadlettered == 0);
    }
    gw_worker_shutdown(w);
    gw_kafka_producer_destroy(prod, 2000);
    gw_kafka_consumer_destroy(events_c);
    uv_run(&loop, UV_RUN_DEFAULT);
    gw_worker_destroy(w);
    CHECK(uv_loop_close(&loop) == 0);
    json_decref(events);
    gw_kafka_mock_destroy(m);
    claimsrv_stop(&srv);
    {
        const char *names[] = {RUN_A ".pgid",  RUN_A ".child", RUN_B ".pgid",
                               RUN_B ".child", RUN_D,          "worker.log"};
        char p[300];
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
            unlink(p);
        }
        CHECK(rmdir(dir) == 0);
    }
    dup2(saved_stderr, 2);
    printf("worker cancellation on the mock cluster passed\n");
    return 0;
}
