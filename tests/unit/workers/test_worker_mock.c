/* The whole worker against librdkafka's mock cluster (or, with --real, the
 * Kafka broker in GW_TEST_KAFKA_BROKERS, in uniquely named topics) and the
 * stand-in claim server: run.requested in, claims, exec runs, events out in seq order,
 * same-key runs one after the other, dead-letters, refusals, and a graceful
 * shutdown that reports a killed run as failed/worker_shutdown. */
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "claimsrv.h"
#include "gw/kafka.h"
#include "gw/log.h"
#include "runtime.h"
#include "worker_e2e.h"

#define RUN(n) "00000000-0000-0000-0000-00000000000" #n

static uv_loop_t loop;
static const char *extra[] = {"fetch.wait.max.ms=5", "session.timeout.ms=6000",
                              "heartbeat.interval.ms=200", NULL};
static struct gw_kafka_config kcfg = {.extra = extra};
static struct gw_kafka_consumer *events_c, *dead_c;
static char prefix[64], g_events[128], g_dead[128];
static struct e2e_topics topics;
static json_t *events; /* array of every event */
static int deadletters;

static void on_events(void *arg, struct gw_kafka_msg **m, size_t n)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_loads(m[i]->payload, 0, NULL);
        CHECK(ev != NULL);
        /* Keyed by run id. */
        CHECK(m[i]->key_len == strlen(json_string_value(json_object_get(ev, "subject"))));
        json_array_append_new(events, ev);
        gw_kafka_msg_done(events_c, m[i]);
    }
}

static void on_dead(void *arg, struct gw_kafka_msg **m, size_t n)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_loads(m[i]->payload, 0, NULL);
        CHECK(ev != NULL);
        CHECK(strcmp(json_string_value(json_object_get(ev, "type")), "dev.gangway.deadletter") ==
              0);
        CHECK(json_string_value(json_object_get(json_object_get(ev, "data"), "reason")) != NULL);
        json_decref(ev);
        deadletters++;
        gw_kafka_msg_done(dead_c, m[i]);
    }
}

/* Events of one run, in arrival order. */
static json_t *events_of(const char *run_id)
{
    return e2e_events_of(events, run_id);
}

static const char *type_of(json_t *ev)
{
    return e2e_type_of(ev);
}

static bool has_final(const char *run_id)
{
    json_t *evs = events_of(run_id);
    size_t n = json_array_size(evs);
    bool fin = false;
    if (n > 0) {
        const char *t = type_of(json_array_get(evs, n - 1));
        fin =
            strcmp(t, "dev.gangway.run.succeeded") == 0 || strcmp(t, "dev.gangway.run.failed") == 0;
    }
    json_decref(evs);
    return fin;
}

static const char *wait_for[8];
/* The run has published two events: started and the "sleeping" log. */
static bool two_events(const char *run_id)
{
    json_t *evs = events_of(run_id);
    bool ok = json_array_size(evs) >= 2;
    json_decref(evs);
    return ok;
}

static bool all_final(const char *arg)
{
    (void)arg;
    for (int i = 0; wait_for[i] != NULL; i++)
        if (!has_final(wait_for[i]))
            return false;
    return true;
}

static void dr(void *opaque, const struct gw_error *err)
{
    (void)opaque;
    CHECK(err == NULL);
}

static void request(struct gw_kafka_producer *p, const char *run_id, const char *key)
{
    e2e_request(p, &topics, run_id, key, "echo", 30);
}

/* seq 1..n without holes, started first, one final last. */
static void check_run(const char *run_id, const char *final_type)
{
    json_t *evs = events_of(run_id), *ev;
    size_t i, n = json_array_size(evs);
    bool saw_log = false;
    CHECK(n >= 3);
    json_array_foreach(evs, i, ev)
    {
        json_t *d = json_object_get(ev, "data");
        CHECK(json_integer_value(json_object_get(d, "seq")) == (json_int_t)(i + 1));
        CHECK(json_integer_value(json_object_get(d, "attempt")) == 1);
        CHECK(strcmp(json_string_value(json_object_get(d, "run_id")), run_id) == 0);
        if (strcmp(type_of(ev), "dev.gangway.run.log") == 0)
            saw_log = true;
    }
    CHECK(strcmp(type_of(json_array_get(evs, 0)), "dev.gangway.run.started") == 0);
    CHECK(strcmp(type_of(json_array_get(evs, n - 1)), final_type) == 0);
    CHECK(saw_log);
    json_decref(evs);
}

/* Every event the worker published matches schemas/events/. */
static void check_schemas(void)
{
    struct e2e_schema es;
    struct gw_schema *s;
    json_t *ev;
    size_t i;
    if (!e2e_schema_open(&es))
        return;
    s = es.envelope;
    json_array_foreach(events, i, ev)
    {
        json_t *errors = NULL;
        bool ok = gw_schema_validate(s, ev, &errors);
        if (!ok) {
            char *t = json_dumps(ev, 0), *e = json_dumps(errors, 0);
            fprintf(stderr, "invalid event %s: %s\n", t, e);
            free(t);
            free(e);
        }
        json_decref(errors);
        CHECK(ok);
    }
    /* And the schemas do reject: a log event without its line. */
    ev = json_deep_copy(json_array_get(events, 0));
    json_object_set_new(ev, "type", json_string("dev.gangway.run.log"));
    CHECK(!gw_schema_validate(s, ev, NULL));
    json_decref(ev);
    e2e_schema_close(&es);
}

int main(int argc, char **argv)
{
    bool real = argc > 1 && strcmp(argv[1], "--real") == 0;
    const char *real_brokers = getenv("GW_TEST_KAFKA_BROKERS");
    struct gw_error err;
    struct claimsrv srv;
    struct gw_kafka_mock *m;
    struct gw_kafka_producer *p;
    struct gw_worker *w;
    char orderfile[128], cmd[512];
    FILE *f;

    if (real && (real_brokers == NULL || *real_brokers == '\0')) {
        printf("GW_TEST_KAFKA_BROKERS unset: skipped\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    gw_log_init("test", getenv("WT_DEBUG") ? GW_LOG_DEBUG : GW_LOG_ERROR);
    snprintf(orderfile, sizeof(orderfile), "/tmp/gw-test-order-%d.txt", (int)getpid());
    unlink(orderfile);
    snprintf(cmd, sizeof(cmd),
             "[\"/bin/sh\",\"-c\",\"echo begin $GANGWAY_RUN_ID >> \\\"$0\\\"; sleep 0.3; "
             "echo hello; echo end $GANGWAY_RUN_ID >> \\\"$0\\\"; "
             "printf '{\\\"ok\\\":true}' > $GANGWAY_OUTPUTS\",\"%s\"]",
             orderfile);
    setenv("GW_TEST_CLAIM_COMMAND", cmd, 1);
    e2e_start(&srv, &loop);
    events = json_array();
    if (real) {
        snprintf(prefix, sizeof(prefix), "gw-test-worker-%d-%ld.", (int)getpid(), (long)time(NULL));
        extra[0] = NULL; /* a real broker wakes fetches itself */
    } else {
        snprintf(prefix, sizeof(prefix), "t1.");
    }
    e2e_topics_init(&topics, prefix);
    snprintf(g_events, sizeof(g_events), "%stest-events", prefix);
    snprintf(g_dead, sizeof(g_dead), "%stest-dead", prefix);
    const char *all_topics[] = {topics.runs, topics.events, topics.dead, NULL};
    if (real) {
        m = NULL;
        kcfg.brokers = real_brokers;
        CHECK(gw_kafka_ensure_topics(&kcfg, all_topics, 2, 1, 10000, &err) == 0);
    } else {
        m = e2e_mock_create(&kcfg, &topics);
    }

    w = e2e_worker_create(&loop, &kcfg, prefix, srv.url, 100);
    {
        const char *et[] = {topics.events, NULL}, *dt[] = {topics.dead, NULL};
        struct gw_kafka_consumer_options eo = {
            .group_id = g_events, .topics = et, .max_batch = 50, .max_in_flight = 500};
        struct gw_kafka_consumer_options doo = {
            .group_id = g_dead, .topics = dt, .max_batch = 10, .max_in_flight = 10};
        events_c = gw_kafka_consumer_create(&loop, &kcfg, &eo, on_events, NULL, &err);
        dead_c = gw_kafka_consumer_create(&loop, &kcfg, &doo, on_dead, NULL, &err);
        CHECK(events_c != NULL && dead_c != NULL);
    }
    p = gw_kafka_producer_create(&loop, &kcfg, &err);
    CHECK(p != NULL);
    request(p, RUN(1), "res-1");
    request(p, RUN(2), "res-1");
    request(p, RUN(3), "res-1");
    request(p, RUN(4), "res-2");
    request(p, "00000000-0000-0000-0000-000000000a02", "res-3"); /* refused */
    CHECK(gw_kafka_produce(p, topics.runs, "junk", 4, "{not json", 9, dr, NULL, NULL) == 0);

    wait_for[0] = RUN(1);
    wait_for[1] = RUN(2);
    wait_for[2] = RUN(3);
    wait_for[3] = RUN(4);
    CHECK(e2e_run_until(&loop, all_final, NULL, 30000));
    for (int i = 0; i < 4; i++)
        check_run(wait_for[i], "dev.gangway.run.succeeded");
    {
        json_t *evs = events_of(RUN(1));
        json_t *last = json_array_get(evs, json_array_size(evs) - 1);
        CHECK(json_is_true(
            json_object_get(json_object_get(json_object_get(last, "data"), "outputs"), "ok")));
        json_decref(evs);
        evs = events_of("00000000-0000-0000-0000-000000000a02");
        CHECK(json_array_size(evs) == 0); /* refused: never executed */
        json_decref(evs);
    }
    /* res-1 runs never overlapped and kept their order. */
    f = fopen(orderfile, "r");
    CHECK(f != NULL);
    {
        char line[256];
        char seq1[6][256];
        int n = 0, k = 0;
        while (fgets(line, sizeof(line), f) != NULL)
            if (strstr(line, "-000000000004") == NULL && n < 6)
                snprintf(seq1[n++], sizeof(seq1[0]), "%s", line);
        CHECK(n == 6);
        for (int r = 1; r <= 3; r++, k += 2) {
            char b[64], e[64];
            snprintf(b, sizeof(b), "begin 00000000-0000-0000-0000-00000000000%d\n", r);
            snprintf(e, sizeof(e), "end 00000000-0000-0000-0000-00000000000%d\n", r);
            CHECK(strcmp(seq1[k], b) == 0 && strcmp(seq1[k + 1], e) == 0);
        }
    }
    fclose(f);
    unlink(orderfile);

    /* A long run, then SIGTERM-like shutdown: grace 300 ms, then killed. */
    request(p, "00000000-0000-0000-0000-000000000f01", "res-9");
    wait_for[0] = NULL;
    e2e_run_until(&loop, two_events, "00000000-0000-0000-0000-000000000f01", 20000);
    gw_worker_shutdown(w);
    wait_for[0] = "00000000-0000-0000-0000-000000000f01";
    wait_for[1] = NULL;
    CHECK(e2e_run_until(&loop, all_final, NULL, 20000));
    {
        json_t *evs = events_of(wait_for[0]);
        json_t *last = json_array_get(evs, json_array_size(evs) - 1);
        CHECK(strcmp(type_of(last), "dev.gangway.run.failed") == 0);
        CHECK(strcmp(json_string_value(json_object_get(json_object_get(last, "data"), "reason")),
                     "worker_shutdown") == 0);
        json_decref(evs);
    }
    CHECK(deadletters == 1);
    check_schemas();
    {
        struct gw_worker_stats st;
        gw_worker_stats(w, &st);
        CHECK(st.runs_started == 5 && st.runs_succeeded == 4 && st.runs_failed == 1);
        CHECK(st.claims_refused == 1 && st.deadlettered == 1);
    }
    gw_kafka_producer_destroy(p, 2000);
    gw_kafka_consumer_destroy(events_c);
    gw_kafka_consumer_destroy(dead_c);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once the worker has closed */
    gw_worker_destroy(w);
    CHECK(uv_loop_close(&loop) == 0);
    json_decref(events);
    gw_kafka_mock_destroy(m);
    if (real)
        CHECK(gw_kafka_delete_topics(&kcfg, all_topics, 10000, &err) == 0);
    claimsrv_stop(&srv);
    printf("worker end-to-end on the mock cluster passed\n");
    return 0;
}
