/* Idempotent produce + consume round trip against a real Kafka broker
 * (suite 'integration'; skipped with 77 when GW_TEST_KAFKA_BROKERS is unset),
 * and topics that gw_kafka_ensure_topics creates are served by their
 * leaders when it returns. */
#include <librdkafka/rdkafka.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw/kafka.h"
#include "gw/log.h"
#include "ktest.h"

#define N 10

static uv_loop_t loop;
static int delivered, received;
static char seen[N];
static struct gw_kafka_consumer *cons;

static void on_dr(void *opaque, const struct gw_error *err)
{
    (void)opaque;
    if (err != NULL)
        fprintf(stderr, "delivery: %s\n", err->message);
    CHECK(err == NULL);
    delivered++;
}

static void on_batch(void *arg, struct gw_kafka_msg **msgs, size_t n)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        int v = atoi(msgs[i]->payload);
        CHECK(v >= 0 && v < N);
        CHECK(msgs[i]->key_len == 3 && memcmp(msgs[i]->key, "key", 3) == 0);
        seen[v]++;
        received++;
        gw_kafka_msg_done(cons, msgs[i]);
    }
}

static bool all_delivered(void *a)
{
    (void)a;
    return delivered == N;
}

/* Creates a topic of 8 partitions and asks each partition's leader for its
 * offsets at once, without a retry: every one must answer. CreateTopics
 * alone answers before the leaders have loaded the new logs, and a
 * produce in that window is refused and retried by librdkafka, a path on
 * which its 2.0.2 idempotent producer can report a message persisted that
 * the broker dropped (lib/kafka/admin.c, wait_writable). */
static void created_topics_are_served(const struct gw_kafka_config *cfg)
{
    char topic[96], errstr[256];
    struct gw_error err;
    snprintf(topic, sizeof(topic), "gw-test-served-%d-%ld", (int)getpid(), (long)time(NULL));
    const char *topics[] = {topic, NULL};
    CHECK(gw_kafka_ensure_topics(cfg, topics, 8, 1, 10000, &err) == 0);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    CHECK(rd_kafka_conf_set(conf, "bootstrap.servers", cfg->brokers, errstr, sizeof(errstr)) ==
          RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    CHECK(rk != NULL);
    for (int part = 0; part < 8; part++) {
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, part, &lo, &hi, 5000);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            fprintf(stderr, "%s [%d]: %s\n", topic, part, rd_kafka_err2str(e));
        CHECK(e == RD_KAFKA_RESP_ERR_NO_ERROR && lo == 0 && hi == 0);
    }
    rd_kafka_destroy(rk);
    CHECK(gw_kafka_delete_topics(cfg, topics, 10000, &err) == 0);
}

static bool all_received(void *a)
{
    (void)a;
    return received >= N;
}

int main(void)
{
    const char *brokers = getenv("GW_TEST_KAFKA_BROKERS");
    char topic[96], group[160];
    struct gw_error err;
    struct gw_kafka_producer *p;
    if (brokers == NULL || *brokers == '\0') {
        printf("GW_TEST_KAFKA_BROKERS unset: skipped\n");
        return 77;
    }
    gw_log_init("test", GW_LOG_WARN);
    snprintf(topic, sizeof(topic), "gw-test-kafka-%d-%ld", (int)getpid(), (long)time(NULL));
    snprintf(group, sizeof(group), "%s-group", topic);
    const char *topics[] = {topic, NULL};
    struct gw_kafka_config cfg = {.brokers = brokers};
    CHECK(uv_loop_init(&loop) == 0);
    created_topics_are_served(&cfg);
    if (gw_kafka_ensure_topics(&cfg, topics, 2, 1, 10000, &err) != 0) {
        fprintf(stderr, "ensure_topics: %s\n", err.message);
        return 1;
    }
    p = gw_kafka_producer_create(&loop, &cfg, &err);
    CHECK(p != NULL);
    for (int i = 0; i < N; i++) {
        char buf[16];
        int len = snprintf(buf, sizeof(buf), "%d", i);
        CHECK(gw_kafka_produce(p, topic, "key", 3, buf, (size_t)len, on_dr, NULL, &err) == 0);
    }
    CHECK(run_until(&loop, all_delivered, NULL, 30000));
    CHECK(gw_kafka_producer_healthy(p) || delivered == N);

    struct gw_kafka_consumer_options o = {
        .group_id = group, .topics = topics, .max_batch = 3, .max_in_flight = 5};
    cons = gw_kafka_consumer_create(&loop, &cfg, &o, on_batch, NULL, &err);
    CHECK(cons != NULL);
    CHECK(run_until(&loop, all_received, NULL, 60000));
    for (int i = 0; i < N; i++)
        CHECK(seen[i] == 1);
    gw_kafka_consumer_destroy(cons);
    gw_kafka_producer_destroy(p, 5000);
    close_loop(&loop);
    CHECK(gw_kafka_delete_topics(&cfg, topics, 10000, &err) == 0);
    printf("kafka real broker round trip passed (%s)\n", topic);
    return 0;
}
