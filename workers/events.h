/*
 * The CloudEvents of docs/worker-protocol.md: parsing run.requested and
 * building the worker's events. No I/O; any thread.
 */
#ifndef GW_WORKERS_EVENTS_H
#define GW_WORKERS_EVENTS_H

#include <jansson.h>
#include <stddef.h>

/* The data of a dev.gangway.run.requested event. The strings point into
 * `doc` (NULL when absent) and live until gw_run_request_finish(). */
struct gw_run_request {
    json_t *doc; /* the parsed event (owned) */
    const char *event_id;
    const char *run_id;
    int attempt;
    const char *action_id;
    const char *action_version;
    const char *worker_type;
    const char *key;
    int timeout_seconds;
};

/* Parses and checks one message. Returns 0, or -1 with `why` filled. */
int gw_run_request_parse(const char *payload, size_t len, struct gw_run_request *out, char *why,
                         size_t whysz);
void gw_run_request_finish(struct gw_run_request *r);

/* The data of a dev.gangway.run.cancel event on <prefix>gangway.control.
 * The strings point into `doc` and live until gw_cancel_request_finish();
 * worker_type, worker_id and reason may be NULL. */
struct gw_cancel_request {
    json_t *doc; /* the parsed event (owned) */
    const char *event_id;
    const char *run_id;
    int attempt;
    const char *worker_type;
    const char *worker_id;
    const char *reason;
};

/* Parses one control message. Returns 0, or -1 with `why` filled. Other
 * event types on the control topic are errors too: the caller logs and
 * ignores them. */
int gw_cancel_request_parse(const char *payload, size_t len, struct gw_cancel_request *out,
                            char *why, size_t whysz);
void gw_cancel_request_finish(struct gw_cancel_request *r);

/* The data of a dev.gangway.worker.drain event on <prefix>gangway.control:
 * the worker process named `worker_id` (its --worker-id, or its slot id)
 * drains (decision 0044). The strings point into `doc` and live until
 * gw_drain_request_finish(); reason and requested_by may be NULL. */
struct gw_drain_request {
    json_t *doc; /* the parsed event (owned) */
    const char *event_id;
    const char *worker_id;
    const char *reason;
    const char *requested_by;
};

/* Parses one control message as a drain request. Returns 0; -2 when it is
 * an event of another type (`why` filled: try the other parsers); -1 when it
 * is not an event, or a drain request without a worker_id. */
int gw_drain_request_parse(const char *payload, size_t len, struct gw_drain_request *out, char *why,
                           size_t whysz);
void gw_drain_request_finish(struct gw_drain_request *r);

/* Builds a worker event: type "dev.gangway.run.<kind>", id
 * "<run_id>/<attempt>/<seq>", source "gangway/worker/<worker_id>". `data`
 * is stolen (NULL = {}) and receives run_id, attempt, seq and worker_id.
 * Returns the compact JSON text (free()) or NULL. */
char *gw_event_build(const char *kind, const char *run_id, int attempt, long seq,
                     const char *worker_id, json_t *data);

/* A dead-letter record for a message the worker could not use. */
char *gw_event_deadletter(const char *worker_id, const char *topic, int partition, long long offset,
                          const char *payload, size_t len, const char *reason);

/* RFC 3339 UTC time with milliseconds into buf (>= 32 bytes). */
void gw_event_time_now(char *buf, size_t n);

/* A copy of `s` (len bytes) that is valid UTF-8 without NUL bytes: each
 * invalid byte becomes U+FFFD. free() it. */
char *gw_utf8_clean(const char *s, size_t len, size_t *out_len);

#endif
