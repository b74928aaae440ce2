/*
 * librdkafka on a libuv loop.
 *
 * Each handle's main queue (and the consumer queue) is woken through
 * rd_kafka_queue_io_event_enable() writing to a pipe watched by uv_poll_t,
 * so delivery reports and messages are served on the loop thread without
 * blocking it. Threading: loop thread only; callbacks run on the loop thread.
 */
#ifndef GW_KAFKA_H
#define GW_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gw/error.h"

struct gw_kafka_config {
    const char *brokers;            /* bootstrap.servers */
    const char *const *extra;       /* NULL-terminated "key=value" librdkafka props
                                       (SASL, TLS, fetch.wait.max.ms...) or NULL */
    const char *linger_ms;          /* producers: linger.ms unless `extra` sets it
                                       (or queue.buffering.max.ms); NULL = "5" */
    const char *message_timeout_ms; /* producers: message.timeout.ms unless
                                       `extra` sets it (or delivery.timeout.ms);
                                       NULL = librdkafka's (300 s) */
};

/* ---------------------------------------------------------------- producer */

struct gw_kafka_producer;

/* `err` is NULL when the message was acknowledged by all in-sync replicas. */
typedef void (*gw_kafka_dr_cb)(void *opaque, const struct gw_error *err);

/* Idempotent producer: enable.idempotence=true, acks=all. */
struct gw_kafka_producer *
gw_kafka_producer_create(uv_loop_t *loop, const struct gw_kafka_config *cfg, struct gw_error *err);

/* Copies key and payload. If it returns 0, `cb` (may be NULL) is called
 * exactly once from the loop with the delivery result; if < 0, never. */
int gw_kafka_produce(struct gw_kafka_producer *p, const char *topic, const void *key,
                     size_t key_len, const void *payload, size_t len, gw_kafka_dr_cb cb,
                     void *opaque, struct gw_error *err);

/* Same, to one partition (`partition` < 0: the partitioner picks by key). */
int gw_kafka_produce_to(struct gw_kafka_producer *p, const char *topic, int32_t partition,
                        const void *key, size_t key_len, const void *payload, size_t len,
                        gw_kafka_dr_cb cb, void *opaque, struct gw_error *err);

/* True when the producer currently reaches the cluster: the last metadata
 * request (every 5 s on the thread pool) or delivery succeeded and no
 * ALL_BROKERS_DOWN error came since. False until the first check answers.
 * Never blocks. */
bool gw_kafka_producer_healthy(const struct gw_kafka_producer *p);

/* Flushes for up to `timeout_ms` (delivery callbacks run), then frees.
 * Messages still undelivered are purged: their callbacks run with an error.
 * Blocks up to `timeout_ms`: shutdown only. The loop must run afterwards so
 * the internal handles close. Accepts NULL. Must not be called from inside a
 * delivery callback. */
void gw_kafka_producer_destroy(struct gw_kafka_producer *p, int timeout_ms);

struct gw_kafka_producer_stats {
    unsigned long long delivered;
    unsigned long long delivery_errors;
    unsigned long in_flight;
};
void gw_kafka_producer_stats(const struct gw_kafka_producer *p,
                             struct gw_kafka_producer_stats *out);

/* ---------------------------------------------------------------- consumer */

struct gw_kafka_consumer;

struct gw_kafka_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const char *payload; /* NUL-terminated copy */
    size_t len;
};

/* Called with up to `max_batch` messages. Each message stays valid (and its
 * offset uncommitted) until gw_kafka_msg_done() is called for it, which may
 * happen later, in any order. Offsets are committed only up to the first
 * message of each partition that is not done yet, so a crash never skips a
 * message that was not finished. */
typedef void (*gw_kafka_batch_cb)(void *arg, struct gw_kafka_msg **msgs, size_t n);

struct gw_kafka_consumer_options {
    const char *group_id;
    const char *const *topics;     /* NULL-terminated */
    size_t max_batch;              /* messages per callback, >= 1 */
    size_t max_in_flight;          /* messages handed out and not done; the
                                      consumer stops delivering at this bound */
    size_t max_backlog;            /* messages fetched and not handed out yet:
                                      fetching pauses at this bound and resumes
                                      at half of it; 0 = 8192, or
                                      2 x max_in_flight when that is
                                      larger (decision 0074) */
    const char *group_instance_id; /* static membership (KIP-345): a restarted
                                      member with the same id takes its
                                      partitions back at once. NULL = dynamic */
    const char *const *defaults;   /* NULL-terminated "k=v" librdkafka
                                      properties applied unless the config's
                                      `extra` sets the same key (the operator
                                      wins); NULL = none */
    const char *offset_reset;      /* where a group without a committed offset
                                      starts: "earliest" (NULL) or "latest"
                                      (a broadcast topic whose past does not
                                      matter, e.g. gangway.control) */
};

/* Consumer defaults for a work-sharing group whose members must not stall
 * each other (decision 0019): cooperative-sticky rebalancing, a 10 s session,
 * 1 s heartbeats. For gw_kafka_consumer_options.defaults. */
extern const char *const gw_kafka_shared_group_defaults[];

struct gw_kafka_consumer *gw_kafka_consumer_create(uv_loop_t *loop,
                                                   const struct gw_kafka_config *cfg,
                                                   const struct gw_kafka_consumer_options *opts,
                                                   gw_kafka_batch_cb cb, void *arg,
                                                   struct gw_error *err);

/* How far behind the consumer is, from librdkafka's cached state (never
 * blocks): partitions assigned, since when (uv_now ms, 0 when none), and
 * messages not handed out yet: those fetched and waiting in the backlog plus
 * those between the fetch positions and the high watermarks (-1 when a
 * watermark is not known yet). */
struct gw_kafka_consumer_health {
    int partitions;
    uint64_t assigned_since_ms;
    int64_t lag;
    size_t backlog; /* fetched, not handed out yet (part of lag) */
    bool paused;    /* fetching paused: the backlog reached max_backlog */
};
void gw_kafka_consumer_health(const struct gw_kafka_consumer *c,
                              struct gw_kafka_consumer_health *out);

/* Copies up to `max` assigned partitions into `topics`/`parts` (the topic
 * names stay valid until the next rebalance callback runs on the loop);
 * returns how many are assigned (may exceed `max`). Never blocks. */
int gw_kafka_consumer_assignment(const struct gw_kafka_consumer *c, const char **topics,
                                 int32_t *parts, int max);

/* Marks a message finished (its offset may be committed) and frees it. */
void gw_kafka_msg_done(struct gw_kafka_consumer *c, struct gw_kafka_msg *msg);

/* Lends a message's place in max_in_flight to the next one while the
 * message itself stays out (not done: its offset is not stored, and it
 * must still be passed to gw_kafka_msg_done). For work whose own part is
 * over but whose outcome is still being delivered, e.g. a worker's final
 * event waiting for its delivery report. At most max_in_flight messages can
 * be lent at once, so no more than 2 x max_in_flight are ever out. Lending
 * a message twice is a no-op. */
void gw_kafka_msg_lend(struct gw_kafka_consumer *c, struct gw_kafka_msg *msg);

/* Leaves the group now, without waiting for the messages still out: commits
 * the offsets stored so far (asynchronously) and unsubscribes, which makes
 * librdkafka send a LeaveGroup even for a static member (it skips it only
 * when the consumer terminates, KIP-345), so the group rebalances at once
 * instead of waiting out the session (decision 0044). Messages not done are
 * orphaned: their gw_kafka_msg_done() stores nothing and the partition's next
 * owner gets them again. Nothing new is delivered afterwards. Does not block
 * on the network; gw_kafka_consumer_destroy() is still owed. Idempotent. */
int gw_kafka_consumer_leave(struct gw_kafka_consumer *c, struct gw_error *err);

/* Commits what is done, leaves the group and frees. Messages not done are
 * freed without committing (they will be redelivered); the caller must not
 * touch them afterwards. Blocks briefly (rd_kafka_consumer_close() serves the
 * final revoke and commits synchronously): call it at shutdown only. The loop
 * must run afterwards so the internal handles close. Accepts NULL. */
void gw_kafka_consumer_destroy(struct gw_kafka_consumer *c);

/* ------------------------------------------------------------------- admin */

/* Creates the topics that do not exist yet through the Admin API (blocking
 * up to about timeout_ms + 1 s; start-up only, never on a running loop).
 * Existing topics are left as they are (TOPIC_ALREADY_EXISTS is success).
 * `replication` -1 = the broker's default. Does not work against the mock
 * cluster of librdkafka 2.0.2 (no controller): use gw_kafka_mock_create_topic
 * there. */
int gw_kafka_ensure_topics(const struct gw_kafka_config *cfg, const char *const *topics,
                           int partitions, int replication, int timeout_ms, struct gw_error *err);

/* Deletes topics (blocking; tests and tooling only). Missing topics are not
 * an error. */
int gw_kafka_delete_topics(const struct gw_kafka_config *cfg, const char *const *topics,
                           int timeout_ms, struct gw_error *err);

/* How many messages of `topic` consumer group `group` has not consumed yet:
 * the sum over its partitions of the high watermark minus the group's
 * committed offset (the low watermark where it has none: consumers start at
 * the earliest message). 0 when the topic does not exist. Blocks up to about
 * 2 * timeout_ms per partition in the worst case: call it off the loop
 * (the reaper uses a uv_work thread). */
int gw_kafka_group_backlog(const struct gw_kafka_config *cfg, const char *topic, const char *group,
                           int timeout_ms, int64_t *backlog, struct gw_error *err);

/* gw_kafka_group_backlog for several (topic, group) pairs over one client:
 * each ask gets its backlog, or `failed` and its own `err`. Returns < 0
 * (with `err`) only when no client could be made; blocks like the above,
 * for each ask in turn, except that once the cluster does not answer a
 * metadata request the asks left fail with that error without asking. */
struct gw_kafka_backlog_ask {
    const char *topic;
    const char *group;
    int64_t backlog;
    bool failed;
    struct gw_error err;
};
int gw_kafka_group_backlogs(const struct gw_kafka_config *cfg, struct gw_kafka_backlog_ask *asks,
                            size_t n, int timeout_ms, struct gw_error *err);

/* ------------------------------------------------------- embedded default */

/* librdkafka's in-process mock cluster, for `gangway dev` only. Its brokers
 * listen on loopback, so other processes can connect to the bootstrap list.
 * The mock does not wake a waiting fetch when data arrives: every consumer of
 * it must set a small fetch.wait.max.ms (clients of `gangway dev` pass
 * GW_KAFKA_PROPS=fetch.wait.max.ms=10), else each hop costs ~250 ms. Its
 * group coordinator also delays a (re)join by ~3 s. Create topics with
 * gw_kafka_mock_create_topic() (CreateTopics is not served). */
struct gw_kafka_mock;
struct gw_kafka_mock *gw_kafka_mock_create(int brokers, struct gw_error *err);
const char *gw_kafka_mock_bootstraps(const struct gw_kafka_mock *m);
int gw_kafka_mock_create_topic(struct gw_kafka_mock *m, const char *topic, int partitions,
                               struct gw_error *err);
void gw_kafka_mock_destroy(struct gw_kafka_mock *m);

#endif
