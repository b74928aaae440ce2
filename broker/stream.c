/*
 * Server-Sent Events: followed run logs and the broker-wide event feed.
 * The contract is in stream.h; this file is the per-stream state machine:
 *
 *   INIT  the first query is in flight; the request can still be answered
 *         with a problem (unknown run, database down)
 *   OPEN  the 200 and the headers are sent; events flow
 *   DONE  the stream has ended (run over, client gone, shutdown); the
 *         struct lives on only until its query in flight comes back
 */
#include "stream.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/crypto.h"
#include "gw/log.h"
#include "gw/logpos.h"
#include "gw/pg_array.h"
#include "policy.h"

#define POLL_MS        500
#define KEEPALIVE_MS   15000
#define LOG_BATCH      100
#define RUN_BATCH      200
#define MAX_GAPS       1024
#define GAP_MAX_AGE_MS 35000 /* the pool's statement timeout (30 s) and a margin */
#define SSE_HEADERS    "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"

enum stream_kind { KIND_LOGS, KIND_EVENTS };
enum stream_state { ST_INIT, ST_OPEN, ST_DONE };

struct gap {
    long long id;
    uint64_t since;
};

struct stream {
    struct stream *prev, *next;
    struct gw_stream_hub *hub;
    struct gw_api_ctx *ctx; /* kept while the request lives (the principal) */
    enum stream_kind kind;
    enum stream_state state;
    bool querying;
    bool dirty;
    bool has_after; /* the client asked to resume */
    bool warned;    /* a failed query was logged; quiet until one succeeds */
    char run_id[GW_UUID_LEN + 1];
    char *vis[5];    /* gw_visible's caller parameters, resolved at the start */
    long long after; /* logs: last pos sent; events: highest run event id sent */
    /* events only */
    struct gap *gaps;
    size_t ngaps;
    char res_cursor[40]; /* updated_at of the newest resource row sent */
    char **res_seen;     /* "id@updated_at" of rows in the lookback window */
    size_t nres_seen;
};

struct gw_stream_hub {
    struct gw_broker *b;
    uv_timer_t poll;
    uv_timer_t keepalive;
    unsigned keepalive_ms;
    struct stream *head;
    size_t nopen; /* streams in OPEN state: the timers run while > 0 */
    int handles_open;
    bool destroyed;
};

static void run_query(struct stream *st);

/* ------------------------------------------------------------ lifecycle */

static void hub_maybe_free(struct gw_stream_hub *h)
{
    if (h->destroyed && h->head == NULL && h->handles_open == 0)
        free(h);
}

static void stream_free(struct stream *st)
{
    struct gw_stream_hub *h = st->hub;
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        h->head = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    for (size_t i = 0; i < st->nres_seen; i++)
        free(st->res_seen[i]);
    free(st->res_seen);
    for (size_t i = 0; i < ARRAY_SIZE(st->vis); i++)
        free(st->vis[i]);
    free(st->gaps);
    free(st);
    hub_maybe_free(h);
}

/* Ends the stream (or answers `status` when it never began) and frees it
 * unless a query is still in flight. */
static void stream_finish(struct stream *st, int status, const char *code, const char *detail)
{
    struct gw_stream_hub *h = st->hub;
    if (st->state == ST_INIT && st->ctx != NULL) {
        gw_api_problem(st->ctx, status, code, NULL, "%s", detail);
        st->ctx = NULL;
    } else if (st->state == ST_OPEN && st->ctx != NULL) {
        gw_http_stream_end(st->ctx->req);
        gw_api_ctx_free(st->ctx);
        st->ctx = NULL;
        h->nopen--;
        if (h->nopen == 0 && !h->destroyed) {
            uv_timer_stop(&h->poll);
            uv_timer_stop(&h->keepalive);
        }
    }
    st->state = ST_DONE;
    if (!st->querying)
        stream_free(st);
}

static void on_client_close(struct gw_http_req *req)
{
    struct stream *st = req->user;
    if (st != NULL && st->state == ST_OPEN)
        stream_finish(st, 0, NULL, NULL);
}

/* Writes SSE text; a failed write means the client is going away, and
 * on_close (which follows) ends the stream. */
static void emit(struct stream *st, const char *data, size_t len)
{
    if (st->state == ST_OPEN && len > 0)
        (void)gw_http_stream_write(st->ctx->req, data, len);
}

static void poll_tick(uv_timer_t *t)
{
    struct gw_stream_hub *h = t->data;
    for (struct stream *st = h->head; st != NULL; st = st->next) {
        if (st->state != ST_OPEN)
            continue;
        if (st->querying)
            st->dirty = true;
        else
            run_query(st);
    }
}

static void keepalive_tick(uv_timer_t *t)
{
    static const char ka[] = ": keepalive\n\n";
    struct gw_stream_hub *h = t->data;
    for (struct stream *st = h->head; st != NULL; st = st->next)
        emit(st, ka, sizeof(ka) - 1);
}

static void kick(struct stream *st)
{
    if (st->state != ST_OPEN)
        return;
    if (st->querying)
        st->dirty = true;
    else
        run_query(st);
}

/* INIT -> OPEN: sends the 200 and the headers. */
static bool stream_open(struct stream *st)
{
    struct gw_stream_hub *h = st->hub;
    static const char hello[] = "retry: 1000\n\n";
    struct gw_http_req *req = st->ctx->req;

    req->user = st;
    st->state = ST_OPEN;
    h->nopen++;
    h->b->metrics.http_by_class[2]++;
    if (h->nopen == 1) {
        uv_timer_start(&h->poll, poll_tick, POLL_MS, POLL_MS);
        uv_timer_start(&h->keepalive, keepalive_tick, h->keepalive_ms, h->keepalive_ms);
    }
    if (gw_http_stream_begin(req, 200, "text/event-stream", SSE_HEADERS, on_client_close) < 0) {
        stream_finish(st, 0, NULL, NULL);
        return false;
    }
    emit(st, hello, sizeof(hello) - 1);
    return true;
}

/* After a query: end on error at start, run again when woken meanwhile. */
static bool query_back(struct stream *st, const struct gw_error *err)
{
    st->querying = false;
    if (st->state == ST_DONE) {
        stream_free(st);
        return false;
    }
    if (st->hub->destroyed) {
        stream_finish(st, 503, "unavailable", "the broker is shutting down");
        return false;
    }
    if (err != NULL) {
        if (st->state == ST_INIT) {
            struct gw_api_ctx *ctx = st->ctx;
            st->ctx = NULL;
            st->state = ST_DONE;
            stream_free(st);
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

static void again_if_dirty(struct stream *st, bool more)
{
    if (st->state != ST_OPEN)
        return;
    if (st->dirty || more) {
        st->dirty = false;
        run_query(st);
    }
}

/* ------------------------------------------------------------------ logs */

static bool terminal(const char *status)
{
    static const char *const t[] = {"succeeded", "failed",   "timed_out",
                                    "cancelled", "rejected", "expired"};
    for (size_t i = 0; i < ARRAY_SIZE(t); i++)
        if (strcmp(status, t[i]) == 0)
            return true;
    return false;
}

static void logs_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct stream *st = arg;
    if (!query_back(st, err))
        return;
    int n = PQntuples(res);
    if (n == 0) {
        char detail[128];
        snprintf(detail, sizeof(detail), "no run with id '%s'", st->run_id);
        stream_finish(st, 404, "run_not_found", detail);
        return;
    }
    if (st->state == ST_INIT && !stream_open(st))
        return;

    int lines = 0;
    size_t cap = 1;
    for (int i = 0; i < n; i++)
        if (!PQgetisnull(res, i, 2))
            cap += (size_t)PQgetlength(res, i, 3) + 64;
    char *buf = malloc(cap), *p = buf;
    if (buf == NULL) {
        st->dirty = true; /* try again on the next tick */
        return;
    }
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(res, i, 2))
            continue;
        long long pos = atoll(PQgetvalue(res, i, 2));
        p += sprintf(p, "id: %lld\nevent: log\ndata: ", pos);
        size_t len = (size_t)PQgetlength(res, i, 3);
        memcpy(p, PQgetvalue(res, i, 3), len);
        p += len;
        memcpy(p, "\n\n", 2);
        p += 2;
        st->after = pos;
        lines++;
    }
    emit(st, buf, (size_t)(p - buf));
    free(buf);

    const char *status = PQgetvalue(res, 0, 0);
    if (lines < LOG_BATCH && terminal(status)) {
        /* Status and lines come from one snapshot: the run's last line was
         * committed with (or before) its terminal event, so all is sent. */
        json_t *end = json_pack("{s:s}", "status", status);
        if (!PQgetisnull(res, 0, 1))
            json_object_set_new(end, "reason", json_string(PQgetvalue(res, 0, 1)));
        char *data = json_dumps(end, JSON_COMPACT);
        json_decref(end);
        if (data != NULL) {
            char *ev = NULL;
            int len = asprintf(&ev, "event: end\ndata: %s\n\n", data);
            if (len > 0)
                emit(st, ev, (size_t)len);
            free(ev);
            free(data);
        }
        stream_finish(st, 0, NULL, NULL);
        return;
    }
    again_if_dirty(st, lines == LOG_BATCH);
}

static void logs_query(struct stream *st)
{
    char attempt[24], seq[24];
    long long a, q;
    gw_log_pos_split(st->after, &a, &q);
    snprintf(attempt, sizeof(attempt), "%lld", a);
    snprintf(seq, sizeof(seq), "%lld", q);
    const char *params[] = {st->run_id, attempt,    seq,        st->vis[0],
                            st->vis[1], st->vis[2], st->vis[3], st->vis[4]};
    /* One statement, one snapshot: the run's status and the lines after the
     * client's position. The row comparison walks the primary key. */
    int rc = gw_pg_query(
        st->hub->b->pg, "stream_logs",
        "SELECT r.status, r.reason, l.pos, l.data FROM gw_runs r LEFT JOIN LATERAL ("
        " SELECT " GW_LOG_POS_SQL " AS pos, json_build_object("
        " 'attempt', w.attempt, 'seq', w.seq, 'stream', w.stream, 'line', w.line,"
        " 'at', gw_ts(w.received_at))::text AS data FROM gw_worker_events w"
        " WHERE w.run_id = r.id AND (w.attempt, w.seq) > ($2::int, $3::int) AND w.kind = 'log'"
        " ORDER BY w.attempt, w.seq LIMIT 100) l ON true WHERE r.id = $1::uuid"
        " AND gw_visible(r.requested_by, r.requested_teams, r.action_id, $4, $5, $6, $7, $8)"
        " ORDER BY l.pos",
        8, params, logs_done, st);
    if (rc < 0) {
        st->querying = false;
        if (st->state == ST_INIT)
            stream_finish(st, 503, "unavailable", "the broker is overloaded; retry later");
        else
            st->dirty = true;
    }
}

/* ---------------------------------------------------------------- events */

static void gap_add(struct stream *st, long long id, uint64_t now)
{
    if (st->ngaps == MAX_GAPS) {
        memmove(st->gaps, st->gaps + 1, (MAX_GAPS - 1) * sizeof(st->gaps[0]));
        st->ngaps--;
    }
    st->gaps[st->ngaps++] = (struct gap){id, now};
}

static bool gap_take(struct stream *st, long long id)
{
    for (size_t i = 0; i < st->ngaps; i++) {
        if (st->gaps[i].id == id) {
            memmove(st->gaps + i, st->gaps + i + 1, (st->ngaps - i - 1) * sizeof(st->gaps[0]));
            st->ngaps--;
            return true;
        }
    }
    return false;
}

static void gaps_expire(struct stream *st, uint64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < st->ngaps; i++)
        if (now - st->gaps[i].since < GAP_MAX_AGE_MS)
            st->gaps[k++] = st->gaps[i];
    st->ngaps = k;
}

static bool res_seen(const struct stream *st, const char *key)
{
    for (size_t i = 0; i < st->nres_seen; i++)
        if (strcmp(st->res_seen[i], key) == 0)
            return true;
    return false;
}

/* Appends one SSE event to a growing buffer. */
struct out {
    char *buf;
    size_t len, cap;
};

static void out_add(struct out *o, const char *head, const char *data, size_t dlen)
{
    size_t hlen = strlen(head), need = o->len + hlen + dlen + 3;
    if (need > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < need)
            cap *= 2;
        char *nb = realloc(o->buf, cap);
        if (nb == NULL)
            return;
        o->buf = nb;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, head, hlen);
    memcpy(o->buf + o->len + hlen, data, dlen);
    memcpy(o->buf + o->len + hlen + dlen, "\n\n", 2);
    o->len += hlen + dlen + 2;
}

static void events_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct stream *st = arg;
    if (!query_back(st, err))
        return;
    if (st->state == ST_INIT && !stream_open(st))
        return;

    uint64_t now = uv_now(st->hub->b->loop);
    struct out o = {0};
    int n = PQntuples(res), fresh = 0;
    char **seen = calloc((size_t)n + 1, sizeof(*seen));
    size_t nseen = 0;
    char head[64];

    /* Rows: kind ('r' new, 'g' late commit of a gap, 's' resource), id,
     * resource key, resource updated_at, data, visible to the caller; runs
     * in id order. Run events the caller may not see still move the
     * watermark (or they would look like gaps). */
    for (int i = 0; i < n; i++) {
        char kind = PQgetvalue(res, i, 0)[0];
        const char *data = PQgetvalue(res, i, 4);
        size_t dlen = (size_t)PQgetlength(res, i, 4);
        if (kind == 'r' || kind == 'g') {
            long long id = atoll(PQgetvalue(res, i, 1));
            if (kind == 'g') {
                if (!gap_take(st, id))
                    continue;
            } else {
                if (id <= st->after)
                    continue;
                /* Ids skipped on the way up may still commit. */
                for (long long g = id - 1; g > st->after && g >= id - MAX_GAPS; g--)
                    gap_add(st, g, now);
                st->after = id;
                fresh++;
            }
            if (PQgetvalue(res, i, 5)[0] != 't')
                continue;
            snprintf(head, sizeof(head), "id: %lld\nevent: run\ndata: ", st->after);
            out_add(&o, head, data, dlen);
        } else {
            const char *key = PQgetvalue(res, i, 2);
            const char *ts = PQgetvalue(res, i, 3);
            if (seen != NULL && (seen[nseen] = strdup(key)) != NULL)
                nseen++;
            if (res_seen(st, key))
                continue;
            if (strcmp(ts, st->res_cursor) > 0)
                snprintf(st->res_cursor, sizeof(st->res_cursor), "%s", ts);
            out_add(&o, "event: resource\ndata: ", data, dlen);
        }
    }
    gaps_expire(st, now);
    /* The rows of the lookback window are what the next query may return
     * again: they are the whole dedupe set. */
    for (size_t i = 0; i < st->nres_seen; i++)
        free(st->res_seen[i]);
    free(st->res_seen);
    st->res_seen = seen;
    st->nres_seen = nseen;
    emit(st, o.buf, o.len);
    free(o.buf);
    again_if_dirty(st, fresh == RUN_BATCH);
}

static void events_query(struct stream *st)
{
    char after[24];
    long long ids[MAX_GAPS];
    for (size_t i = 0; i < st->ngaps; i++)
        ids[i] = st->gaps[i].id;
    char *gaps = gw_pg_bigint_array(ids, st->ngaps);
    if (gaps == NULL) {
        st->querying = false;
        st->dirty = true;
        return;
    }
    snprintf(after, sizeof(after), "%lld", st->after);
    const char *params[] = {after,      gaps,       st->res_cursor, st->vis[0],
                            st->vis[1], st->vis[2], st->vis[3],     st->vis[4]};
    /* New run events, late commits of ids skipped earlier, and resources
     * changed after the cursor or within the 2 s before it (a change's
     * updated_at is taken before its commit). */
    int rc = gw_pg_query(
        st->hub->b->pg, "stream_events",
        "SELECT x.k, x.id, x.key, x.ts, d.data, x.k = 's' OR coalesce(gw_visible(r.requested_by,"
        " r.requested_teams, r.action_id, $4, $5, $6, $7, $8), false) FROM ("
        " (SELECT 'r' AS k, e.id, NULL::text AS key, NULL::text AS ts, e.run_id, e.attempt,"
        "  e.from_status, e.to_status, e.reason, e.created_at, NULL::text AS rdata"
        "  FROM gw_run_events e WHERE e.id > $1::bigint ORDER BY e.id LIMIT 200)"
        " UNION ALL"
        " (SELECT 'g', e.id, NULL, NULL, e.run_id, e.attempt, e.from_status, e.to_status,"
        "  e.reason, e.created_at, NULL FROM gw_run_events e"
        "  WHERE e.id = ANY($2::bigint[]) AND e.id <= $1::bigint)"
        " UNION ALL"
        " (SELECT 's', NULL, s.id::text || '@' || gw_ts(s.updated_at), gw_ts(s.updated_at),"
        "  NULL, NULL, NULL, NULL, NULL, NULL, gw_resource_json(s)::text FROM gw_resources s"
        "  WHERE s.updated_at > $3::timestamptz"
        "  AND gw_visible(s.owner_subject, s.owner_teams, s.action_id, $4, $5, $6, $7, $8)"
        "  ORDER BY s.updated_at LIMIT 200)"
        " UNION ALL"
        " (SELECT 's', NULL, s.id::text || '@' || gw_ts(s.updated_at), gw_ts(s.updated_at),"
        "  NULL, NULL, NULL, NULL, NULL, NULL, gw_resource_json(s)::text FROM gw_resources s"
        "  WHERE s.updated_at <= $3::timestamptz"
        "  AND s.updated_at > $3::timestamptz - interval '2 seconds'"
        "  AND gw_visible(s.owner_subject, s.owner_teams, s.action_id, $4, $5, $6, $7, $8))"
        ") x(k, id, key, ts, run_id, attempt, from_status, to_status, reason, created_at, rdata)"
        " LEFT JOIN gw_runs r ON r.id = x.run_id"
        " CROSS JOIN LATERAL (SELECT coalesce(x.rdata, json_build_object('id', x.id,"
        " 'run_id', x.run_id, 'action', r.action_id, 'attempt', x.attempt, 'from', x.from_status,"
        " 'to', x.to_status, 'reason', x.reason, 'at', gw_ts(x.created_at))::text) AS data) d"
        " ORDER BY x.k = 's', x.id, x.ts",
        8, params, events_done, st);
    free(gaps);
    if (rc < 0) {
        st->querying = false;
        st->dirty = true;
    }
}

static void events_init_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct stream *st = arg;
    if (!query_back(st, err))
        return;
    st->after = atoll(PQgetvalue(res, 0, 0));
    snprintf(st->res_cursor, sizeof(st->res_cursor), "%s", PQgetvalue(res, 0, 1));
    /* A new feed starts at the newest id; ids just below it that are not
     * committed yet are watched like any other gap. */
    const char *g = PQgetvalue(res, 0, 2);
    uint64_t now = uv_now(st->hub->b->loop);
    while (*g) {
        char *end;
        long long id = strtoll(g, &end, 10);
        if (end == g)
            break;
        gap_add(st, id, now);
        g = *end == ',' ? end + 1 : end;
    }
    if (!stream_open(st))
        return;
    run_query(st);
}

static void events_init(struct stream *st)
{
    char after[24];
    snprintf(after, sizeof(after), "%lld", st->after);
    const char *params[] = {st->has_after ? after : NULL};
    int rc = gw_pg_query(
        st->hub->b->pg, "stream_events_init",
        "WITH m AS (SELECT coalesce($1::bigint, (SELECT max(id) FROM gw_run_events), 0) AS high)"
        " SELECT m.high, gw_ts(clock_timestamp()), CASE WHEN $1::bigint IS NULL THEN"
        " (SELECT coalesce(string_agg(g::text, ','), '') FROM generate_series(greatest(m.high - 63,"
        " 1), m.high) g WHERE NOT EXISTS (SELECT 1 FROM gw_run_events e WHERE e.id = g))"
        " ELSE '' END FROM m",
        1, params, events_init_done, st);
    if (rc < 0) {
        st->querying = false;
        stream_finish(st, 503, "unavailable", "the broker is overloaded; retry later");
    }
}

static void run_query(struct stream *st)
{
    st->querying = true;
    st->dirty = false;
    if (st->kind == KIND_LOGS)
        logs_query(st);
    else
        events_query(st);
}

/* -------------------------------------------------------------- handlers */

/* Last-Event-ID, else ?after=. Returns 1 when given, 0 when not, -1 when
 * either is not an event id (answered 400 naming it): both are checked, so
 * a bad value is never ignored just because the other one wins. */
static int resume_point(struct gw_api_ctx *ctx, long long *out)
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

/* A new stream in INIT, or NULL with ctx answered. The caller's read_runs
 * scope is resolved once, here: a policy reload applies to later streams. */
static struct stream *stream_new(struct gw_api_ctx *ctx, enum stream_kind kind)
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
    struct stream *st = calloc(1, sizeof(*st));
    bool ok = st != NULL;
    for (size_t i = 0; ok && i < ARRAY_SIZE(vis); i++)
        ok = vis[i] == NULL || (st->vis[i] = strdup(vis[i])) != NULL;
    gw_authz_filter_finish(&f);
    if (ok && kind == KIND_EVENTS)
        ok = (st->gaps = calloc(MAX_GAPS, sizeof(st->gaps[0]))) != NULL;
    if (!ok) {
        if (st != NULL) {
            for (size_t i = 0; i < ARRAY_SIZE(st->vis); i++)
                free(st->vis[i]);
            free(st->gaps);
        }
        free(st);
        gw_api_problem(ctx, 503, "unavailable", NULL, "out of memory");
        return NULL;
    }
    st->hub = h;
    st->ctx = ctx;
    st->kind = kind;
    st->next = h->head;
    if (h->head != NULL)
        h->head->prev = st;
    h->head = st;
    return st;
}

void gw_stream_run_logs(struct gw_api_ctx *ctx)
{
    char follow[8] = "";
    bool too_long = false;
    long long after = 0;
    /* Last-Event-ID only means something to a stream, but a JSON request
     * that carries a bad one is told so rather than served as if it were
     * absent. */
    const char *leid = gw_http_req_header(ctx->req, "last-event-id");
    if (leid != NULL &&
        !gw_api_param_int(ctx, "header", "Last-Event-ID", leid, 0, LLONG_MAX, &after))
        return;
    if (gw_api_query(ctx, "follow", follow, sizeof(follow), &too_long) &&
        strcmp(follow, "true") != 0 && strcmp(follow, "1") != 0 && strcmp(follow, "false") != 0 &&
        strcmp(follow, "0") != 0)
        too_long = true; /* not a boolean: refused below like one that cannot be */
    if (too_long) {
        gw_api_problem(ctx, 400, "invalid_parameter",
                       gw_api_field_error("/query/follow", "type", "true, false, 1 or 0"),
                       "'follow' must be true or false");
        return;
    }
    if (strcmp(follow, "true") != 0 && strcmp(follow, "1") != 0) {
        gw_api_run_logs(ctx);
        return;
    }
    if (!gw_uuid_valid(ctx->id)) {
        gw_api_run_not_found(ctx);
        return;
    }
    /* A stream sends every line: `limit` is unused, but checked all the
     * same, like every parameter the operation lists. */
    long long limit;
    bool present;
    if (!gw_api_query_int(ctx, "limit", 1, 10000, &limit, &present) ||
        resume_point(ctx, &after) < 0)
        return;
    struct stream *st = stream_new(ctx, KIND_LOGS);
    if (st == NULL)
        return;
    memcpy(st->run_id, ctx->id, GW_UUID_LEN); /* validated: exactly a uuid */
    st->run_id[GW_UUID_LEN] = '\0';
    st->after = after;
    run_query(st);
}

void gw_stream_events(struct gw_api_ctx *ctx)
{
    long long after = 0;
    int given = resume_point(ctx, &after);
    if (given < 0)
        return;
    struct stream *st = stream_new(ctx, KIND_EVENTS);
    if (st == NULL)
        return;
    st->after = after;
    st->has_after = given == 1;
    st->querying = true;
    events_init(st);
}

/* ------------------------------------------------------------------- hub */

void gw_stream_events_applied(struct gw_stream_hub *h, const char *events_json)
{
    static const char *const transitions[] = {"\"kind\":\"started\"", "\"kind\":\"succeeded\"",
                                              "\"kind\":\"failed\"", "\"kind\":\"timed_out\"",
                                              "\"kind\":\"cancelled\""};
    int changed = -1; /* computed once, only if an events stream is open */
    if (h == NULL || h->nopen == 0 || events_json == NULL)
        return;
    for (struct stream *st = h->head; st != NULL; st = st->next) {
        if (st->state != ST_OPEN)
            continue;
        if (st->kind == KIND_LOGS) {
            if (strstr(events_json, st->run_id) != NULL)
                kick(st);
            continue;
        }
        if (changed < 0) {
            changed = 0;
            for (size_t i = 0; i < ARRAY_SIZE(transitions) && !changed; i++)
                changed = strstr(events_json, transitions[i]) != NULL;
        }
        if (changed)
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
    struct gw_stream_hub *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    h->b = b;
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
    struct stream *st = h->head;
    while (st != NULL) {
        struct stream *next = st->next;
        if (st->state == ST_OPEN)
            stream_finish(st, 0, NULL, NULL);
        st = next;
    }
    uv_close((uv_handle_t *)&h->poll, hub_handle_closed);
    uv_close((uv_handle_t *)&h->keepalive, hub_handle_closed);
}
