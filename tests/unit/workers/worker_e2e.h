/*
 * The Kafka side of the whole-worker tests (test_worker_mock.c,
 * test_cancel_mock.c): the topic names under a prefix, a mock cluster that
 * has them, run.requested messages as the broker's outbox writes them, the
 * events the worker published, and the event schemas they must match.
 */
#ifndef GW_TEST_WORKER_E2E_H
#define GW_TEST_WORKER_E2E_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "gw/jsonschema.h"
#include "gw/kafka.h"

struct claimsrv;

/* Starts the stand-in claim server (claimsrv.h; without python3 the test
 * is skipped: exit 77), the claim client and `loop`. Aborts on failure. */
void e2e_start(struct claimsrv *srv, uv_loop_t *loop);

struct e2e_topics {
    char runs[128];    /* <prefix>gangway.runs.exec */
    char events[128];  /* <prefix>gangway.events */
    char dead[128];    /* <prefix>gangway.deadletter */
    char control[128]; /* <prefix>gangway.control */
};

void e2e_topics_init(struct e2e_topics *t, const char *prefix);

/* A one-broker mock cluster with the runs (2 partitions), events and dead
 * letter topics (1 each); kcfg->brokers points at it. The control topic is
 * left to the test. Aborts on failure. */
struct gw_kafka_mock *e2e_mock_create(struct gw_kafka_config *kcfg, const struct e2e_topics *t);

/* Produces a run.requested event (attempt 1, worker type exec) for `run_id`
 * keyed by `key` to t->runs; the delivery must succeed. */
void e2e_request(struct gw_kafka_producer *p, const struct e2e_topics *t, const char *run_id,
                 const char *key, const char *action_id, int timeout_seconds);

/* The events of `events` (an array) whose subject is `run_id`, in order
 * (a new array). */
json_t *e2e_events_of(json_t *events, const char *run_id);

/* The worker under test: type exec, concurrency 4, token "tok", a 300 ms
 * grace, claiming from `broker_url`, on the cluster of `kcfg` under `prefix`.
 * Aborts when it cannot be created. */
struct gw_worker *e2e_worker_create(uv_loop_t *loop, const struct gw_kafka_config *kcfg,
                                    const char *prefix, const char *broker_url, int heartbeat_ms);

/* Runs `loop`, woken every 10 ms, until pred(arg) holds or `ms` have
 * passed; whether it held. */
bool e2e_run_until(uv_loop_t *loop, bool (*pred)(const char *arg), const char *arg, int ms);

/* An event's type. */
const char *e2e_type_of(json_t *ev);

/* schemas/events/envelope.schema.json compiled with its registry. */
struct e2e_schema {
    struct gw_schema_registry *reg;
    json_t *doc;
    struct gw_schema *envelope;
};

/* Loads the envelope schema from $GW_SOURCE_ROOT: false (nothing to check)
 * when GW_SOURCE_ROOT is unset; aborts when the schemas do not compile. */
bool e2e_schema_open(struct e2e_schema *s);
void e2e_schema_close(struct e2e_schema *s);

#endif
