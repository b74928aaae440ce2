/*
 * Server-Sent Events, the part both stream kinds share: the hub (its poll
 * and keepalive timers, the wake-ups from the event sink), the per-stream
 * state machine and the SSE writes. The contract is in stream.h, the state
 * table and the kinds' interface in stream_impl.h; the kinds are in
 * stream_logs.c and stream_events.c.
 */
#include "stream_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/log.h"
#include "gw/mem.h"
#include "policy.h"

#define POLL_MS      500
#define KEEPALIVE_MS 15000
#define SSE_HEADERS  "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"

struct gw_stream_hub {
    struct gw_broker *b;
    uv_timer_t poll;
    uv_timer_t keepalive;
    unsigned keepalive_ms;
    struct gw_list streams; /* newest first */
    size_t nopen;           /* streams in OPEN state: the timers run while > 0 */
    int handles_open;
    bool destroyed;
};

/* ------------------------------------------------------------ lifecycle */

static void hub_maybe_free(struct gw_stream_hub *h)
{
    if (h->destroyed && gw_list_empty(&h->streams) && h->handles_open == 0)
        free(h);
}

static void stream_free(struct stream *st)
{
    struct gw_stream_hub *h = st->hub;
    gw_list_remove(&st->link);
    if (st->kind->dispose != NULL)
        st->kind->dispose(st);
    for (size_t i = 0; i < ARRAY_SIZE(st->vis); i++)
        free(st->vis[i]);
    free(st);
    hub_maybe_free(h);
}

static void on_client_close(struct gw_http_req *req);
static void poll_tick(uv_timer_t *t);
static void keepalive_tick(uv_timer_t *t);

/* The transitions of the table in stream_impl.h. */
static bool stream_may_enter(enum stream_state from, enum stream_state to)
{
    return (from == ST_INIT && to == ST_OPEN) || (from != ST_DONE && to == ST_DONE);
}

/* The one place where a stream changes state. Returns false when the
 * stream is done (and possibly freed) on return. */
static bool stream_enter(struct stream *st, enum stream_state s)
{
    struct gw_stream_hub *h = st->hub;
    enum stream_state from = st->state;
    if (!stream_may_enter(from, s)) {
        /* A broken invariant: a bug in the stream files, not bad input. */
        gw_log_error("stream: no transition from state %d to %d", from, s);
        abort();
    }
    st->state = s;
    switch (s) {
    case ST_INIT:
        break;
    case ST_OPEN: {
        static const char hello[] = "retry: 1000\n\n";
        struct gw_http_req *req = st->ctx->req;
        req->user = st;
        h->nopen++;
        if (h->nopen == 1) {
            uv_timer_start(&h->poll, poll_tick, POLL_MS, POLL_MS);
            uv_timer_start(&h->keepalive, keepalive_tick, h->keepalive_ms, h->keepalive_ms);
        }
        if (gw_api_stream_begin(st->ctx, "text/event-stream", SSE_HEADERS, on_client_close) < 0)
            return stream_enter(st, ST_DONE);
        gw__stream_emit(st, hello, sizeof(hello) - 1);
        return true;
    }
    case ST_DONE:
        if (from == ST_OPEN && st->ctx != NULL) {
            gw_api_stream_end(st->ctx);
            st->ctx = NULL;
            h->nopen--;
            if (h->nopen == 0 && !h->destroyed) {
                uv_timer_stop(&h->poll);
                uv_timer_stop(&h->keepalive);
            }
        }
        if (!st->querying)
            stream_free(st);
        return false;
    }
    return true;
}

void gw__stream_finish(struct stream *st, int status, const char *code, const char *detail)
{
    if (st->state == ST_INIT && st->ctx != NULL) {
        gw_api_problem(st->ctx, status, code, NULL, "%s", detail);
        st->ctx = NULL;
    }
    if (st->state != ST_DONE)
        stream_enter(st, ST_DONE);
    else if (!st->querying)
        stream_free(st);
}

bool gw__stream_open(struct stream *st)
{
    return stream_enter(st, ST_OPEN);
}

static void on_client_close(struct gw_http_req *req)
{
    struct stream *st = req->user;
    if (st != NULL && st->state == ST_OPEN)
        gw__stream_finish(st, 0, NULL, NULL);
}

void gw__stream_emit(struct stream *st, const char *data, size_t len)
{
    if (st->state == ST_OPEN && len > 0)
        (void)gw_http_stream_write(st->ctx->req, data, len);
}

/* Queries now, or as soon as the query in flight is back. */
static void kick(struct stream *st)
{
    if (st->state != ST_OPEN)
        return;
    if (st->querying)
        st->dirty = true;
    else
        gw__stream_query(st);
}

static void poll_tick(uv_timer_t *t)
{
    struct gw_stream_hub *h = t->data;
    gw_list_foreach (it, &h->streams)
        kick(gw_list_entry(it, struct stream, link));
}

static void keepalive_tick(uv_timer_t *t)
{
    static const char ka[] = ": keepalive\n\n";
    struct gw_stream_hub *h = t->data;
    gw_list_foreach (it, &h->streams)
        gw__stream_emit(gw_list_entry(it, struct stream, link), ka, sizeof(ka) - 1);
}

/* ------------------------------------------------------------ queries */

void gw__stream_query(struct stream *st)
{
    st->querying = true;
    st->dirty = false;
    st->kind->query(st);
}

void gw__stream_query_not_sent(struct stream *st)
{
    st->querying = false;
    if (st->state == ST_INIT)
        gw__stream_finish(st, 503, "unavailable", "the broker is overloaded; retry later");
    else
        st->dirty = true;
}

bool gw__stream_query_back(struct stream *st, const struct gw_error *err)
{
    st->querying = false;
    if (st->state == ST_DONE) {
        stream_free(st);
        return false;
    }
    if (st->hub->destroyed) {
        gw__stream_finish(st, 503, "unavailable", "the broker is shutting down");
        return false;
    }
    if (err != NULL) {
        if (st->state == ST_INIT) {
            struct gw_api_ctx *ctx = st->ctx;
            st->ctx = NULL;
            stream_enter(st, ST_DONE);
            gw_api_pg_failed(ctx, err);
            return false;
        }
        /* An open stream waits for the next poll tick and tries again. */
        if (!st->warned)
            gw_log_warn("stream: query failed, retrying: %s", err->message);
        st->warned = true;
        return false;
    }
    st->warned = false;
    return true;
}

void gw__stream_again_if_dirty(struct stream *st, bool more)
{
    if (st->state != ST_OPEN)
        return;
    if (st->dirty || more)
        gw__stream_query(st);
}

uint64_t gw__stream_now(const struct stream *st)
{
    return uv_now(st->hub->b->loop);
}

void gw__stream_send(struct stream *st, const char *name, const char *sql, int nparams,
                     const char *const *params, gw_pg_cb cb)
{
    if (gw_pg_query(st->hub->b->pg, name, sql, nparams, params, cb, st) < 0)
        gw__stream_query_not_sent(st);
}

/* -------------------------------------------------------------- handlers */

/* Last-Event-ID, else ?after=. Returns 1 when given, 0 when not, -1 when
 * either is not an event id (answered 400 naming it): both are checked, so
 * a bad value is never ignored just because the other one wins. */
int gw__stream_resume_point(struct gw_api_ctx *ctx, long long *out)
{
    const char *v = gw_http_req_header(ctx->req, "last-event-id");
    long long after = 0;
    bool present;
    if (!gw_api_query_int(ctx, "after", 0, LLONG_MAX, &after, &present))
        return -1;
    if (v != NULL)
        return gw_api_param_int(ctx, "header", "Last-Event-ID", v, 0, LLONG_MAX, out) ? 1 : -1;
    if (present)
        *out = after;
    return present ? 1 : 0;
}

struct stream *gw__stream_new(struct gw_api_ctx *ctx, const struct stream_kind *kind, size_t size)
{
    struct gw_stream_hub *h = ctx->b->streams;
    struct gw_authz_filter f;
    const char *vis[5];
    if (h == NULL) {
        gw_api_problem(ctx, 503, "unavailable", NULL, "the broker is shutting down");
        return NULL;
    }
    if (!gw_authz_params(ctx, GW_PERM_READ_RUNS, &f, vis))
        return NULL;
    struct stream *st = calloc(1, size);
    bool ok = st != NULL;
    for (size_t i = 0; ok && i < ARRAY_SIZE(vis); i++)
        ok = vis[i] == NULL || (st->vis[i] = strdup(vis[i])) != NULL;
    gw_authz_filter_finish(&f);
    if (!ok) {
        if (st != NULL) {
            for (size_t i = 0; i < ARRAY_SIZE(st->vis); i++)
                free(st->vis[i]);
        }
        free(st);
        gw_api_problem(ctx, 503, "unavailable", NULL, "out of memory");
        return NULL;
    }
    st->hub = h;
    st->ctx = ctx;
    st->kind = kind;
    gw_list_insert(&h->streams, &st->link);
    return st;
}

/* ------------------------------------------------------------------- hub */

void gw_stream_events_applied(struct gw_stream_hub *h, const char *events_json)
{
    int cache = -1; /* the kinds' work shared by every stream of the batch */
    if (h == NULL || h->nopen == 0 || events_json == NULL)
        return;
    gw_list_foreach (it, &h->streams) {
        struct stream *st = gw_list_entry(it, struct stream, link);
        if (st->state == ST_OPEN && st->kind->woken(st, events_json, &cache))
            kick(st);
    }
}

static void hub_handle_closed(uv_handle_t *handle)
{
    struct gw_stream_hub *h = handle->data;
    h->handles_open--;
    hub_maybe_free(h);
}

struct gw_stream_hub *gw_stream_hub_create(struct gw_broker *b, struct gw_error *err)
{
    struct gw_stream_hub *h = gw_calloc(1, sizeof(*h), err);
    if (h == NULL)
        return NULL;
    h->b = b;
    gw_list_init(&h->streams);
    h->keepalive_ms = KEEPALIVE_MS;
    const char *ka = getenv("GW_SSE_KEEPALIVE_MS");
    if (ka != NULL && atoi(ka) > 0)
        h->keepalive_ms = (unsigned)atoi(ka);
    uv_timer_init(b->loop, &h->poll);
    uv_timer_init(b->loop, &h->keepalive);
    h->poll.data = h;
    h->keepalive.data = h;
    h->handles_open = 2;
    return h;
}

void gw_stream_hub_destroy(struct gw_stream_hub *h)
{
    if (h == NULL)
        return;
    h->destroyed = true;
    uv_timer_stop(&h->poll);
    uv_timer_stop(&h->keepalive);
    /* Streams still in INIT are answered when their query comes back. */
    gw_list_foreach_safe (it, next, &h->streams) {
        struct stream *st = gw_list_entry(it, struct stream, link);
        if (st->state == ST_OPEN)
            gw__stream_finish(st, 0, NULL, NULL);
    }
    uv_close((uv_handle_t *)&h->poll, hub_handle_closed);
    uv_close((uv_handle_t *)&h->keepalive, hub_handle_closed);
}
