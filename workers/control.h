/*
 * The control channel of one worker process: a consumer of
 * <prefix>gangway.control (docs/worker-protocol.md, "Control topic"), in a
 * consumer group of its own, so that every process sees every message.
 * It starts at the end of the topic (a process only cares about runs it is
 * executing now), marks each message done at once, logs and ignores what it
 * cannot parse (the topic is a broadcast: nothing is dead-lettered) and
 * hands each cancel request to a callback, and each drain request addressed
 * to this process's worker id to another (gw_control_on_drain). It logs "control: listening for
 * cancels" once it has its partitions: cancels sent before are not seen.
 *
 * The topic may not exist yet: the consumer logs librdkafka's unknown-topic
 * error and picks the topic up when it appears (metadata is refreshed every
 * 10 s unless GW_KAFKA_PROPS sets topic.metadata.refresh.interval.ms).
 * Loop thread only.
 */
#ifndef GW_WORKERS_CONTROL_H
#define GW_WORKERS_CONTROL_H

#include <uv.h>

#include "events.h"
#include "gw/error.h"
#include "gw/kafka.h"

struct gw_control;

/* `req` is borrowed for the call. */
typedef void (*gw_control_cancel_cb)(void *arg, const struct gw_cancel_request *req);

/* `worker_id` names the process (it goes into the group name, with a random
 * suffix). Strings are copied. */
struct gw_control *gw_control_create(uv_loop_t *loop, const struct gw_kafka_config *kafka,
                                     const char *topic_prefix, const char *worker_id,
                                     gw_control_cancel_cb cb, void *arg, struct gw_error *err);

/* `req` is borrowed for the call. */
typedef void (*gw_control_drain_cb)(void *arg, const struct gw_drain_request *req);

/* Drain requests (dev.gangway.worker.drain) addressed to `worker_id` (the
 * one given to gw_control_create) go to `cb`; those for other workers are
 * skipped. Without a callback they are logged and ignored. */
void gw_control_on_drain(struct gw_control *c, gw_control_drain_cb cb, void *arg);

/* The consumer group, for logs and tests. */
const char *gw_control_group(const struct gw_control *c);

/* Leaves the group and frees. Blocks briefly (the consumer's close):
 * shutdown only, never from inside the callback. The loop must run
 * afterwards so the handles close (the last memory goes then). Accepts
 * NULL. */
void gw_control_destroy(struct gw_control *c);

#endif
