/* The Kafka adapter against librdkafka's mock cluster (suite 'unit'). */
#include <inttypes.h>
#include <string.h>

#include "gw/kafka.h"
#include "gw/log.h"
#include "ktest.h"

#define NMSG 20

/* The eager protocol ("range") for every group here: librdkafka 2.0.2's
 * mock coordinator takes 10-20 s per cooperative round and sometimes never
 * finishes one. The adapter's cooperative path is exercised against the
 * real Kafka (tests/chaos, the integration suite). The empty slot takes
 * KT_DEBUG when it names a property (KT_DEBUG=debug=cgrp,fetch). */
static const char *extra[] = {"fetch.wait.max.ms=5",
                              "auto.commit.interval.ms=50",
                              "topic.metadata.refresh.interval.ms=1000",
                              "session.timeout.ms=6000",
                              "heartbeat.interval.ms=200",
                              "partition.assignment.strategy=range",
                              NULL, /* KT_DEBUG */
                              NULL};
static struct gw_kafka_config cfg = {.extra = extra};
static uv_loop_t loop;

/* ------------------------------------------------------------ producer */

struct dr_state {
    int ok, failed;
    int seen[NMSG];
};

static void on_dr(void *opaque, const struct gw_error *err)
{
    struct dr_state *s = opaque;
    (void)err;
    if (err == NULL)
        s->ok++;
    else
        s->failed++;
}

static bool all_delivered(void *arg)
{
    struct dr_state *s = arg;
    return s->ok + s->failed >= NMSG;
}

static void produce_n(const char *topic, int n, const char *key)
{
    struct gw_error err;
    struct dr_state s = {0};
    struct gw_kafka_producer_stats st;
    struct gw_kafka_producer *p = gw_kafka_producer_create(&loop, &cfg, &err);
    CHECK(p != NULL);
    for (int i = 0; i < n; i++) {
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "m%d", i);
        CHECK(gw_kafka_produce(p, topic, key, key ? strlen(key) : 0, buf, (size_t)len, on_dr, &s,
                               &err) == 0);
    }
    s.ok += NMSG - n; /* reuse the NMSG predicate */
    CHECK(run_until(&loop, all_delivered, &s, 10000));
    CHECK(s.failed == 0);
    gw_kafka_producer_stats(p, &st);
    CHECK(st.delivered == (unsigned long long)n);
    CHECK(st.in_flight == 0);
    CHECK(gw_kafka_producer_healthy(p)); /* a delivery proves the cluster is reachable */
    gw_kafka_producer_destroy(p, 1000);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* ------------------------------------------------------------ consumer */

struct cons_state {
    struct gw_kafka_consumer *c;
    struct gw_kafka_msg *held[64];
    size_t nheld;
    size_t received;
    size_t max_batch_seen;
    bool auto_done;
    int64_t offsets[64]; /* of the first 64 messages delivered, in order */
};

static void on_batch(void *arg, struct gw_kafka_msg **msgs, size_t n)
{
    struct cons_state *s = arg;
    if (n > s->max_batch_seen)
        s->max_batch_seen = n;
    for (size_t i = 0; i < n; i++) {
        if (s->received < 64)
            s->offsets[s->received] = msgs[i]->offset;
        s->received++;
        CHECK(msgs[i]->payload[msgs[i]->len] == '\0');
        if (s->auto_done)
            gw_kafka_msg_done(s->c, msgs[i]);
        else
            s->held[s->nheld++] = msgs[i];
    }
}

static size_t want;
static bool received_want(void *arg)
{
    return ((struct cons_state *)arg)->received >= want;
}

/* What group `group` has not consumed of `topic`: the high watermark minus
 * its committed offset. Read with OffsetFetch, not by a second consumer
 * joining the group: librdkafka 2.0.2's group leader can rejoin again and
 * again against the mock coordinator ("subscription updated from metadata
 * change" after every JoinGroup, 5 s a round), which left such a consumer
 * without partitions for 30-45 s (kafka-mock failed 2 runs in 10 under
 * ASan that way; CI of stop 24). */
static int64_t group_backlog(const char *topic, const char *group)
{
    struct gw_error err;
    int64_t backlog = -1;
    if (gw_kafka_group_backlog(&cfg, topic, group, 5000, &backlog, &err) < 0) {
        fprintf(stderr, "group backlog of %s: %s\n", group, err.message);
        return -1;
    }
    return backlog;
}

static struct gw_kafka_consumer *consumer(struct cons_state *s, const char *topic,
                                          const char *group, size_t batch, size_t inflight)
{
    struct gw_error err;
    const char *topics[] = {topic, NULL};
    struct gw_kafka_consumer_options o = {
        .group_id = group, .topics = topics, .max_batch = batch, .max_in_flight = inflight};
    s->c = gw_kafka_consumer_create(&loop, &cfg, &o, on_batch, s, &err);
    if (s->c == NULL)
        fprintf(stderr, "consumer: %s\n", err.message);
    CHECK(s->c != NULL);
    return s->c;
}

static void test_produce_consume_batches(struct gw_kafka_mock *m)
{
    struct cons_state s = {.auto_done = true};
    CHECK(gw_kafka_mock_create_topic(m, "t.batches", 3, NULL) == 0);
    produce_n("t.batches", NMSG, NULL);
    consumer(&s, "t.batches", "g.batches", 4, 100);
    want = NMSG;
    CHECK(run_until(&loop, received_want, &s, 30000));
    CHECK(s.max_batch_seen <= 4);
    run_for(&loop, 100);
    CHECK(s.received == NMSG);
    gw_kafka_consumer_destroy(s.c);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_flow_control(struct gw_kafka_mock *m)
{
    struct cons_state s = {0};
    CHECK(gw_kafka_mock_create_topic(m, "t.flow", 1, NULL) == 0);
    produce_n("t.flow", 10, NULL);
    consumer(&s, "t.flow", "g.flow", 2, 3);
    want = 3;
    CHECK(run_until(&loop, received_want, &s, 30000));
    run_for(&loop, 500);
    CHECK(s.received == 3); /* stopped at max_in_flight */
    gw_kafka_msg_done(s.c, s.held[0]);
    want = 4;
    CHECK(run_until(&loop, received_want, &s, 5000));
    run_for(&loop, 300);
    CHECK(s.received == 4);
    /* Release everything: the rest flows. */
    s.auto_done = true;
    for (size_t i = 1; i < s.nheld; i++)
        gw_kafka_msg_done(s.c, s.held[i]);
    s.nheld = 0;
    want = 10;
    CHECK(run_until(&loop, received_want, &s, 10000));
    gw_kafka_consumer_destroy(s.c);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* Fetching pauses when the backlog reaches max_backlog, within one drain,
 * and resumes only when it is down to half (hysteresis: a resume has a
 * cost, decision 0074); the backlog counts in the lag. */
static void test_backlog_hysteresis(struct gw_kafka_mock *m)
{
    struct cons_state s = {0};
    struct gw_kafka_consumer_health h;
    struct gw_error err;
    const char *topics[] = {"t.hyst", NULL};
    struct gw_kafka_consumer_options o = {.group_id = "g.hyst",
                                          .topics = topics,
                                          .max_batch = 1,
                                          .max_in_flight = 1,
                                          .max_backlog = 6};
    CHECK(gw_kafka_mock_create_topic(m, "t.hyst", 1, NULL) == 0);
    /* Six taken from librdkafka (the bound: fetching pauses), then one of
     * them handed out. */
    produce_n("t.hyst", 6, NULL);
    s.c = gw_kafka_consumer_create(&loop, &cfg, &o, on_batch, &s, &err);
    CHECK(s.c != NULL);
    want = 1;
    CHECK(run_until(&loop, received_want, &s, 30000));
    run_for(&loop, 500);
    gw_kafka_consumer_health(s.c, &h);
    CHECK(s.received == 1);
    CHECK(h.backlog == 5);
    CHECK(h.paused); /* below the bound, above half: still paused */
    CHECK(h.lag == 5);
    /* Release one at a time: paused while more than 3 wait, resumed at 3. */
    while (h.backlog > 3) {
        CHECK(h.paused);
        gw_kafka_msg_done(s.c, s.held[--s.nheld]);
        run_for(&loop, 50);
        gw_kafka_consumer_health(s.c, &h);
    }
    CHECK(h.backlog == 3);
    CHECK(!h.paused);
    /* Ten more, fetched at once: the drain stops at the bound (the slot is
     * taken, so nothing is handed out), the rest stays in Kafka. */
    produce_n("t.hyst", 10, NULL);
    run_for(&loop, 1000);
    gw_kafka_consumer_health(s.c, &h);
    CHECK(h.backlog == 6);
    CHECK(h.paused);
    /* 16 made, 4 handed out, 6 waiting: the other 6 still count. 13 seen
     * with librdkafka 2.0.2's mock: its position after a pause may be one
     * before the first message it dropped (not documented either way). */
    CHECK(h.lag >= 12 && h.lag <= 13);
    /* Everything flows once the work is done. */
    s.auto_done = true;
    gw_kafka_msg_done(s.c, s.held[--s.nheld]);
    want = 16;
    CHECK(run_until(&loop, received_want, &s, 10000));
    gw_kafka_consumer_health(s.c, &h);
    CHECK(h.backlog == 0 && !h.paused);
    gw_kafka_consumer_destroy(s.c);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* A lent message frees its place for the next one but stays out: at most
 * max_in_flight lent at once, its offset stored only when it is done. */
static void test_lend(struct gw_kafka_mock *m)
{
    struct cons_state s = {0};
    CHECK(gw_kafka_mock_create_topic(m, "t.lend", 1, NULL) == 0);
    produce_n("t.lend", 10, NULL);
    consumer(&s, "t.lend", "g.lend", 2, 2);
    want = 2;
    CHECK(run_until(&loop, received_want, &s, 30000));
    run_for(&loop, 300);
    CHECK(s.received == 2); /* max_in_flight */
    gw_kafka_msg_lend(s.c, s.held[0]);
    want = 3;
    CHECK(run_until(&loop, received_want, &s, 5000));
    gw_kafka_msg_lend(s.c, s.held[0]); /* twice: a no-op */
    run_for(&loop, 300);
    CHECK(s.received == 3);
    gw_kafka_msg_lend(s.c, s.held[1]);
    want = 4;
    CHECK(run_until(&loop, received_want, &s, 5000));
    gw_kafka_msg_lend(s.c, s.held[2]); /* 2 lent already: refused */
    run_for(&loop, 300);
    CHECK(s.received == 4);
    gw_kafka_msg_done(s.c, s.held[0]); /* a lent one done: room to lend again */
    run_for(&loop, 300);
    CHECK(s.received == 4); /* held[2] and held[3] still count */
    gw_kafka_msg_lend(s.c, s.held[2]);
    want = 5;
    CHECK(run_until(&loop, received_want, &s, 5000));
    /* Offsets: held[1] (lent, not done) keeps the commit at 1. */
    for (size_t i = 2; i < s.nheld; i++)
        gw_kafka_msg_done(s.c, s.held[i]);
    run_for(&loop, 300);            /* auto commit interval is 50 ms */
    gw_kafka_consumer_destroy(s.c); /* commits what is stored, then leaves */
    uv_run(&loop, UV_RUN_NOWAIT);
    /* Committed at 1: offsets 1..9 are still the group's to consume. */
    CHECK(group_backlog("t.lend", "g.lend") == 9);
}

static void test_out_of_order_done(struct gw_kafka_mock *m)
{
    struct cons_state s = {0};
    CHECK(gw_kafka_mock_create_topic(m, "t.order", 1, NULL) == 0);
    produce_n("t.order", 5, "k");
    consumer(&s, "t.order", "g.order", 5, 10);
    want = 5;
    CHECK(run_until(&loop, received_want, &s, 30000));
    CHECK(s.nheld == 5);
    CHECK(s.held[0]->offset == 0 && s.held[4]->offset == 4);
    /* Everything but offset 2 is done: the commit must stop at 2. */
    gw_kafka_msg_done(s.c, s.held[0]);
    gw_kafka_msg_done(s.c, s.held[1]);
    gw_kafka_msg_done(s.c, s.held[3]);
    gw_kafka_msg_done(s.c, s.held[4]);
    run_for(&loop, 300);            /* auto commit interval is 50 ms */
    gw_kafka_consumer_destroy(s.c); /* commits what is stored, then leaves */
    uv_run(&loop, UV_RUN_NOWAIT);
    /* Committed at 2: offsets 2, 3 and 4 come back, 0 and 1 do not. */
    CHECK(group_backlog("t.order", "g.order") == 3);
}

/* A polled message the consumer could not keep (out of memory, injected
 * at offset 2): the partition is fetched again from it, so it is delivered
 * after all, in order, and the commit never passed it. Before, the messages
 * after it were delivered and done and the commit went past it: lost. */
static void test_dropped_message_fetched_again(struct gw_kafka_mock *m)
{
    struct cons_state s = {.auto_done = true};
    CHECK(gw_kafka_mock_create_topic(m, "t.hole", 1, NULL) == 0);
    produce_n("t.hole", 5, "k");
    CHECK(setenv("GW_TEST_KAFKA_OOM_OFFSET", "2", 1) == 0);
    consumer(&s, "t.hole", "g.hole", 5, 10);
    CHECK(unsetenv("GW_TEST_KAFKA_OOM_OFFSET") == 0);
    want = 5;
    CHECK(run_until(&loop, received_want, &s, 30000));
    run_for(&loop, 300); /* auto commit interval is 50 ms */
    CHECK(s.received == 5);
    for (int i = 0; i < 5; i++)
        CHECK(s.offsets[i] == i);
    gw_kafka_consumer_destroy(s.c);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(group_backlog("t.hole", "g.hole") == 0);
}

/* Several groups' backlogs over one client, as the reaper asks them: each
 * answer is its own, and a topic that does not exist holds nothing. */
static void test_backlogs_at_once(void)
{
    struct gw_error err;
    struct gw_kafka_backlog_ask asks[] = {
        {.topic = "t.lend", .group = "g.lend"},
        {.topic = "t.nosuch", .group = "g.nosuch"},
        {.topic = "t.order", .group = "g.order"},
        {.topic = "t.order", .group = "g.never"}, /* no commit: from the first offset */
    };
    CHECK(gw_kafka_group_backlogs(&cfg, asks, 4, 5000, &err) == 0);
    for (size_t i = 0; i < 4; i++)
        if (asks[i].failed)
            fprintf(stderr, "%s: %s\n", asks[i].group, asks[i].err.message);
    CHECK(!asks[0].failed && asks[0].backlog == 9);
    CHECK(!asks[1].failed && asks[1].backlog == 0);
    CHECK(!asks[2].failed && asks[2].backlog == 3);
    CHECK(!asks[3].failed && asks[3].backlog == 5);
}

static bool unassigned(void *arg)
{
    struct gw_kafka_consumer_health h;
    gw_kafka_consumer_health(((struct cons_state *)arg)->c, &h);
    return h.partitions == 0;
}

static bool has_partitions(void *arg)
{
    struct gw_kafka_consumer_health h;
    gw_kafka_consumer_health(((struct cons_state *)arg)->c, &h);
    return h.partitions == 2;
}

static bool partitions_lost(void *arg)
{
    struct gw_kafka_consumer_health h;
    gw_kafka_consumer_health(((struct cons_state *)arg)->c, &h);
    return h.partitions < 2;
}

/* Issue 10: a consumer paused at its in-flight bound loses partitions to a
 * rebalance, finishes its work while they are away (the pause flag flips
 * with nothing, or less, assigned) and gets them back. librdkafka keeps an
 * application pause across re-assignment, so unless the adapter sets the
 * pause state of every partition it is handed, nothing fetches them again.
 * `strategy` picks the protocol: "range" is eager (everything revoked). */
static void test_pause_survives_rebalance(struct gw_kafka_mock *m, const char *strategy)
{
    char topic[64], group[64], strat[80];
    const char *xs[] = {"fetch.wait.max.ms=5",
                        "auto.commit.interval.ms=50",
                        "session.timeout.ms=6000",
                        "heartbeat.interval.ms=200",
                        strat,
                        NULL};
    struct gw_kafka_config pcfg = {.brokers = cfg.brokers, .extra = xs};
    struct gw_kafka_config saved = cfg;
    struct cons_state a = {0}, b = {.auto_done = true};
    struct gw_error err;
    const char *topics[] = {topic, NULL};

    snprintf(topic, sizeof(topic), "t.repause.%s", strategy);
    snprintf(group, sizeof(group), "g.repause.%s", strategy);
    snprintf(strat, sizeof(strat), "partition.assignment.strategy=%s", strategy);
    CHECK(gw_kafka_mock_create_topic(m, topic, 2, NULL) == 0);
    produce_n(topic, 6, NULL);
    cfg = pcfg;
    {
        /* max_backlog 1: fetching pauses as soon as a message waits. */
        struct gw_kafka_consumer_options o = {.group_id = group,
                                              .topics = topics,
                                              .max_batch = 1,
                                              .max_in_flight = 1,
                                              .max_backlog = 1};
        a.c = gw_kafka_consumer_create(&loop, &cfg, &o, on_batch, &a, &err);
        CHECK(a.c != NULL);
    }
    want = 1;
    CHECK(run_until(&loop, received_want, &a, 30000));
    CHECK(run_until(&loop, has_partitions, &a, 10000));
    /* A holds one message: it is at its bound and has paused everything. */
    consumer(&b, topic, group, 4, 100);
    if (strcmp(strategy, "range") == 0)
        CHECK(run_until(&loop, unassigned, &a, 30000));
    else
        CHECK(run_until(&loop, partitions_lost, &a, 30000));
    /* Mid-rebalance: the work finishes, the pause is lifted. */
    gw_kafka_msg_done(a.c, a.held[0]);
    a.nheld = 0;
    a.auto_done = true;
    run_for(&loop, 300);
    gw_kafka_consumer_destroy(b.c);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(run_until(&loop, has_partitions, &a, 30000));
    /* Everything produced now must reach A, on both partitions. */
    a.received = 0;
    produce_n(topic, 10, NULL);
    want = 10;
    if (!run_until(&loop, received_want, &a, 20000))
        fprintf(stderr, "%s: A received %zu of 10 after getting its partitions back\n", strategy,
                a.received);
    CHECK(a.received >= 10);
    gw_kafka_consumer_destroy(a.c);
    uv_run(&loop, UV_RUN_NOWAIT);
    cfg = saved;
}

/* librdkafka 2.0.2's mock cluster reports no controller, so CreateTopics
 * cannot succeed against it (the real broker test covers success). Here:
 * an unreachable cluster yields an error within the timeout, never a hang. */
static void test_ensure_topics_unreachable(void)
{
    struct gw_error err;
    const char *topics[] = {"t.ensure.a", NULL};
    struct gw_kafka_config dead = {.brokers = "127.0.0.1:1"};
    uint64_t t0 = uv_hrtime();
    int rc = gw_kafka_ensure_topics(&dead, topics, 1, 1, 1000, &err);
    CHECK(rc < 0);
    CHECK(err.retriable);
    CHECK(uv_hrtime() - t0 < 5000000000ull);
    CHECK(gw_kafka_ensure_topics(&dead, (const char *[]){NULL}, 1, 1, 1000, &err) == 0);
}

/* An unreachable cluster: every ask fails, retriable, and only the first
 * waits for it (the others carry its error instead of another timeout). */
static void test_backlogs_unreachable(void)
{
    struct gw_error err;
    struct gw_kafka_config dead = {.brokers = "127.0.0.1:1"};
    struct gw_kafka_backlog_ask asks[] = {{.topic = "t.a", .group = "g.a"},
                                          {.topic = "t.b", .group = "g.b"},
                                          {.topic = "t.c", .group = "g.c"}};
    CHECK(gw_kafka_group_backlogs(&dead, asks, 3, 1000, &err) == 0);
    for (size_t i = 0; i < 3; i++) {
        CHECK(asks[i].failed && asks[i].err.retriable);
        CHECK(strcmp(asks[i].err.message, asks[0].err.message) == 0);
    }
    CHECK(strstr(asks[0].err.message, "metadata of t.a") != NULL);
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

/* A producer that cannot reach any broker is not healthy, and the check
 * never blocks the loop. */
static void test_unhealthy(void)
{
    struct gw_error err;
    struct gw_kafka_config dead = {.brokers = "127.0.0.1:1"};
    struct gw_kafka_producer *p = gw_kafka_producer_create(&loop, &dead, &err);
    uint64_t t0 = uv_hrtime();
    CHECK(p != NULL);
    CHECK(!gw_kafka_producer_healthy(p));
    run_until(&loop, never, NULL, 1500);
    CHECK(!gw_kafka_producer_healthy(p));
    CHECK(uv_hrtime() - t0 < 3000000000ull);
    gw_kafka_producer_destroy(p, 100);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_bad_config(void)
{
    struct gw_error err;
    const char *bad[] = {"no.such.property=1", NULL};
    struct gw_kafka_config bcfg = {.brokers = cfg.brokers, .extra = bad};
    CHECK(gw_kafka_producer_create(&loop, &bcfg, &err) == NULL);
    CHECK(err.code == GW_EINVAL);
}

int main(void)
{
    struct gw_error err;
    struct gw_kafka_mock *m;
    gw_log_init("test", getenv("KT_DEBUG") ? GW_LOG_DEBUG : GW_LOG_WARN);
    if (getenv("KT_DEBUG") && strchr(getenv("KT_DEBUG"), '=') != NULL)
        extra[6] = getenv("KT_DEBUG");
    CHECK(uv_loop_init(&loop) == 0);
    m = gw_kafka_mock_create(1, &err);
    CHECK(m != NULL);
    cfg.brokers = gw_kafka_mock_bootstraps(m);
    CHECK(cfg.brokers != NULL && strchr(cfg.brokers, ':') != NULL);

    test_bad_config();
    test_unhealthy();
    test_produce_consume_batches(m);
    test_flow_control(m);
    test_lend(m);
    test_backlog_hysteresis(m);
    test_out_of_order_done(m);
    test_dropped_message_fetched_again(m);
    test_backlogs_at_once();
    /* The eager protocol only (see `extra` above). */
    test_pause_survives_rebalance(m, "range");
    test_ensure_topics_unreachable();
    test_backlogs_unreachable();

    close_loop(&loop);
    gw_kafka_mock_destroy(m);
    printf("kafka mock tests passed\n");
    return 0;
}
