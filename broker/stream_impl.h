/*
 * Inside the live streams (stream.h): the part both kinds share, in
 * stream.c, and what each kind supplies, in stream_logs.c (a run's log
 * lines) and stream_events.c (the broker-wide feed).
 *
 * A stream is a small "subclass": struct stream first in the kind's own
 * struct, and a const table of the kind's operations. stream.c owns the
 * state machine, the hub's timers and the SSE writes; a kind owns its query,
 * what it does with the rows, and which applied worker events wake it.
 *
 * The state machine (stream_enter() in stream.c is the only place the state
 * changes):
 *
 *   INIT --first query back, headers sent--> OPEN
 *     |                                        | run over, client gone,
 *     | answered with a problem                | shutdown
 *     v                                        v
 *   DONE <-------------------------------------+
 *
 *   state  on entry (stream_enter)              leaves on
 *   INIT   - (gw__stream_new)                       the first query's answer
 *   OPEN   counted open (the hub's poll and     the end of the run's log, the
 *          keepalive timers run while any is),  client closing, the hub's
 *          the 200 and the headers sent         destroy
 *   DONE   an OPEN stream's body ended; freed   - (freed when its query in
 *          unless a query is in flight            flight comes back)
 *
 * Beside the state, `querying` (a query is in flight) and `dirty` (woken
 * while one was: run again when it is back) are not states of the stream:
 * a query can be in flight in every state, and DONE waits for it.
 *
 * Everything on the broker's loop thread.
 */
#ifndef GW_BROKER_STREAM_IMPL_H
#define GW_BROKER_STREAM_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "gw/list.h"
#include "stream.h"

#define SSE_EVENT_HEAD_MAX 64 /* "id: <n>\nevent: <name>\ndata: " */

enum stream_state { ST_INIT, ST_OPEN, ST_DONE };

struct stream;

/* What a kind supplies. */
struct stream_kind {
    /* Sends the kind's next query (st->querying is set, st->dirty cleared)
     * through gw__stream_send(), or calls gw__stream_query_not_sent(). */
    void (*query)(struct stream *st);
    /* Whether the batch of applied worker events (`events_json`, see
     * gw_stream_events_applied) concerns this stream. `cache` starts at -1
     * for each batch and is shared by every stream of the batch, so work
     * that does not depend on the stream is done once. */
    bool (*woken)(struct stream *st, const char *events_json, int *cache);
    /* Frees what the kind hangs on its struct (not the struct). May be NULL. */
    void (*dispose)(struct stream *st);
};

struct stream {
    struct gw_list link; /* in the hub's list of streams */
    struct gw_stream_hub *hub;
    const struct stream_kind *kind;
    struct gw_api_ctx *ctx; /* kept while the request lives (the principal) */
    enum stream_state state;
    bool querying;
    bool dirty;
    bool warned;     /* a failed query was logged; quiet until one succeeds */
    char *vis[5];    /* gw_visible's caller parameters, resolved at the start */
    long long after; /* where the client is: the kind says in what unit */
};

/* A new stream of `size` bytes (the kind's struct, struct stream first) in
 * INIT, or NULL with ctx answered. The caller's read_runs scope is resolved
 * once, here: a policy reload applies to later streams. */
struct stream *gw__stream_new(struct gw_api_ctx *ctx, const struct stream_kind *kind, size_t size);

/* Ends the stream (or answers `status` when it never began) and frees it
 * unless a query is still in flight. */
void gw__stream_finish(struct stream *st, int status, const char *code, const char *detail);

/* INIT -> OPEN: sends the 200 and the headers. False when the stream ended
 * instead (the client is gone). */
bool gw__stream_open(struct stream *st);

/* Writes SSE text while OPEN; a failed write means the client is going
 * away, and its close (which follows) ends the stream. */
void gw__stream_emit(struct stream *st, const char *data, size_t len);

/* Sends the kind's query now. */
void gw__stream_query(struct stream *st);

/* Sends a query of the stream on the broker's pool; `cb` gets `st`. When
 * it cannot be sent: gw__stream_query_not_sent(). */
void gw__stream_send(struct stream *st, const char *name, const char *sql, int nparams,
                     const char *const *params, gw_pg_cb cb);

/* A query that could not be sent: clears st->querying and ends an INIT
 * stream with a 503 (it may be freed on return), or has an OPEN one try
 * again on the next tick. */
void gw__stream_query_not_sent(struct stream *st);

/* In a query's callback, first: false when the callback must return at
 * once (the stream ended, was freed or the query failed, all handled). */
bool gw__stream_query_back(struct stream *st, const struct gw_error *err);

/* At the end of a query's callback: queries again when the stream was woken
 * meanwhile or `more` rows are waiting. */
void gw__stream_again_if_dirty(struct stream *st, bool more);

/* Last-Event-ID, else ?after=. Returns 1 when given, 0 when not, -1 when
 * either is not an event id (answered 400 naming it). */
int gw__stream_resume_point(struct gw_api_ctx *ctx, long long *out);

/* The loop's current time, for the kinds' bookkeeping. */
uint64_t gw__stream_now(const struct stream *st);

#endif
