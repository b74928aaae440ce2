/*
 * Group commit of accepts (docs/decisions/0049-group-commit.md).
 *
 * Every POST of a run hands its gw_submit_run arguments (one JSON object)
 * to the batcher instead of calling PostgreSQL itself. A submission that
 * finds fewer than `max_in_flight` batches in flight goes out at the end of
 * the current loop iteration (with whatever else arrived in that
 * iteration): no added latency when the broker is idle. Submissions that
 * arrive while the limit is reached wait and form the next batch, up to
 * `max_batch` of them, sent as one gw_submit_runs() call: one transaction,
 * one WAL flush for all of them.
 *
 * Each submission's callback gets its own row of the result. When the batch
 * fails with an SQL error (nothing of it committed), each element is retried
 * alone, so only the element at fault gets the error. When the connection is
 * lost mid-call (it may or may not have committed), every element gets the
 * retriable error, as a lone call would.
 *
 * Threading: loop thread only.
 */
#ifndef GW_BROKER_SUBMIT_BATCH_H
#define GW_BROKER_SUBMIT_BATCH_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "broker.h"

#define GW_SUBMIT_BATCH_MAX       256
#define GW_SUBMIT_BATCH_IN_FLIGHT 2

struct gw_submit_batch;

/* The answer to one submission: on success `res` (valid during the call)
 * and `row`, the row of this submission (columns 1-4: run, created,
 * conflict, refused as gw_submit_run returns them; column 5: the id of its
 * run.requested row when it was published with the commit, else NULL:
 * decision 0076), or row -1 when the result had no
 * row for it (a broken invariant: answer 500); on failure `err`. */
typedef void (*gw_submit_cb)(void *arg, const PGresult *res, int row, const struct gw_error *err);

struct gw_submit_batch *gw_submit_batch_create(struct gw_broker *b, int max_batch,
                                               int max_in_flight, struct gw_error *err);

/* Elements still waiting get GW_ECLOSED; batches in flight finish and are
 * answered, then the batcher is freed. Accepts NULL. */
void gw_submit_batch_destroy(struct gw_submit_batch *q);

/* Queues one submission. `args` (a JSON object, `len` bytes, not
 * NUL-terminated necessarily) is borrowed until `cb` runs. Returns 0 (cb
 * runs exactly once, never from inside this call) or GW_ECLOSED / GW_ENOMEM
 * (cb never runs). */
int gw_submit_batch_add(struct gw_submit_batch *q, const char *args, size_t len, gw_submit_cb cb,
                        void *arg);

/* Counters for /metrics. */
struct gw_submit_batch_stats {
    unsigned long long batches;  /* gw_submit_runs calls sent */
    unsigned long long elements; /* submissions sent in them */
    unsigned long long split;    /* batches retried element by element after an error */
    unsigned long max_size;      /* the largest batch sent */
};
void gw_submit_batch_stats(const struct gw_submit_batch *q, struct gw_submit_batch_stats *out);

#endif
