/*
 * The worker runtime: one libuv loop consuming <prefix>gangway.runs.<type>,
 * claiming each run from the broker over HTTP, running it on a backend and
 * publishing its events to <prefix>gangway.events (docs/worker-protocol.md).
 *
 * Loop thread only. The process must ignore SIGPIPE and have called
 * gw_claim_global_init() before creating a worker.
 */
#ifndef GW_WORKERS_RUNTIME_H
#define GW_WORKERS_RUNTIME_H

#include <stdbool.h>
#include <uv.h>

#include "gw/error.h"
#include "gw/kafka.h"

/* What a drain (SIGTERM, a drain request on the control topic) does with
 * the runs in progress, once the worker has left its consumer group
 * (decision 0044). */
enum gw_drain_mode {
    GW_DRAIN_WAIT,    /* wait for them (up to grace_ms), then exit: the default */
    GW_DRAIN_HANDOFF, /* detach from their supervisors and exit at once */
};

/* "wait" or "handoff" -> the mode; -1 with `err` set for anything else or a
 * mode this build cannot do. */
int gw_worker_drain_mode_parse(const char *s, enum gw_drain_mode *out, struct gw_error *err);

struct gw_worker_options {
    const char *type;       /* worker type = backend name, e.g. "exec" */
    int concurrency;        /* runs executing at once, >= 1 */
    const char *broker_url; /* GW_BROKER_URL */
    const char *token;      /* GW_WORKER_TOKEN, may be NULL */
    struct gw_kafka_config kafka;
    const char *topic_prefix; /* GW_TOPIC_PREFIX, may be NULL */
    int heartbeat_ms;         /* used when the claim reply has no interval */
    int grace_ms;             /* shutdown: how long running runs may go on */
    const char *worker_id;    /* prefix of worker ids; NULL = "<host>-<pid>" */
    enum gw_drain_mode drain_mode;
    /* Test seam (GW_TEST_DIE_AFTER_SUCCESS=OPERATION): SIGKILL this process
     * when a backend reports success for a run of that operation ("create",
     * "teardown"...), before run.succeeded is published: a worker lost between
     * the work and its final event. NULL (always in production) = never. */
    const char *test_die_after_success;
    /* Test seam (GW_TEST_DRAIN_AT_START=1): begin the drain right after
     * the first run is started, in the same turn of the loop, before its
     * supervisor can hold the spec (the window a handoff must not strand a
     * run in). Never set outside tests. */
    bool test_drain_at_start;
    /* Supervision (docs/reattach.md): programs of backends that support it
     * run under `gangway supervise` and outlive the worker; a worker that
     * starts reattaches the runs of its group found under state_dir. */
    bool supervise;
    const char *state_dir; /* required with supervise */
    int linger_seconds;    /* a finished supervisor's wait for a worker; 0 = 3600 */
};

struct gw_worker_stats {
    unsigned long long runs_started, runs_succeeded, runs_failed, runs_timed_out, runs_cancelled,
        claims_refused, deadlettered;
    unsigned long long claim_calls, claim_batches; /* HTTP claim calls; of them, batches */
};

struct gw_worker;

/* Subscribes and starts working on `loop`. Installs SIGTERM/SIGINT handlers
 * on the loop that call gw_worker_shutdown(). */
struct gw_worker *gw_worker_create(uv_loop_t *loop, const struct gw_worker_options *o,
                                   struct gw_error *err);

/* Graceful stop, also called a drain: no new messages, and the worker
 * leaves its consumer group at once so that its partitions move to the other
 * workers without waiting for the session timeout (decision 0044); then, in
 * mode GW_DRAIN_WAIT, running runs get grace_ms to finish, then
 * their process groups are killed and they are reported failed with reason
 * "worker_shutdown"; then the consumer commits and leaves, the producer
 * flushes, every handle closes and uv_run() returns. Idempotent. */
void gw_worker_shutdown(struct gw_worker *w);

/* Whether gw_worker_shutdown() was called (the worker is draining). */
bool gw_worker_draining(const struct gw_worker *w);

void gw_worker_stats(const struct gw_worker *w, struct gw_worker_stats *out);

/* Frees a worker whose loop has returned from uv_run(). Accepts NULL. */
void gw_worker_destroy(struct gw_worker *w);

#endif
