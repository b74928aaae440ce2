/*
 * The broker-wide event feed (GET /v1/events, stream.h): run transitions
 * in id order, with the ids that were skipped (not committed yet) watched
 * as gaps for a while, and resource changes deduplicated over a lookback
 * window. The stream's state machine and the hub are in stream.c
 * (stream_impl.h); this kind has no states of its own.
 */
#include "stream_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/mem.h"
#include "gw/pg_array.h"

#define RUN_BATCH      200
#define MAX_GAPS       1024
#define GAP_MAX_AGE_MS 35000 /* the pool's statement timeout (30 s) and a margin */

struct gap {
    long long id;
    uint64_t since;
};

struct event_stream {
    struct stream base; /* first: a struct stream * is a struct event_stream * */
    bool has_after;     /* the client asked to resume */
    /* base.after: the highest run event id sent */
    struct gap *gaps;
    size_t ngaps;
    char res_cursor[40]; /* updated_at of the newest resource row sent */
    char **res_seen;     /* "id@updated_at" of rows in the lookback window */
    size_t nres_seen;
};

static struct event_stream *event_stream(struct stream *st)
{
    return (struct event_stream *)st;
}

static void gap_add(struct event_stream *st, long long id, uint64_t now)
{
    if (st->ngaps == MAX_GAPS) {
        memmove(st->gaps, st->gaps + 1, (MAX_GAPS - 1) * sizeof(st->gaps[0]));
        st->ngaps--;
    }
    st->gaps[st->ngaps++] = (struct gap){id, now};
}

static bool gap_take(struct event_stream *st, long long id)
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

static void gaps_expire(struct event_stream *st, uint64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < st->ngaps; i++)
        if (now - st->gaps[i].since < GAP_MAX_AGE_MS)
            st->gaps[k++] = st->gaps[i];
    st->ngaps = k;
}

static void res_seen_free(struct event_stream *st)
{
    for (size_t i = 0; i < st->nres_seen; i++)
        free(st->res_seen[i]);
    free(st->res_seen);
    st->res_seen = NULL;
    st->nres_seen = 0;
}

static bool res_seen(const struct event_stream *st, const char *key)
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
    if (gw_grow(&o->buf, &o->cap, need, 4096) < 0)
        return;
    memcpy(o->buf + o->len, head, hlen);
    memcpy(o->buf + o->len + hlen, data, dlen);
    memcpy(o->buf + o->len + hlen + dlen, "\n\n", 2);
    o->len += hlen + dlen + 2;
}

static void events_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct stream *st = arg;
    struct event_stream *es = event_stream(st);
    if (!gw__stream_query_back(st, err))
        return;
    if (st->state == ST_INIT && !gw__stream_open(st))
        return;

    uint64_t now = gw__stream_now(st);
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
                if (!gap_take(es, id))
                    continue;
            } else {
                if (id <= st->after)
                    continue;
                /* Ids skipped on the way up may still commit. */
                for (long long g = id - 1; g > st->after && g >= id - MAX_GAPS; g--)
                    gap_add(es, g, now);
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
            if (res_seen(es, key))
                continue;
            if (strcmp(ts, es->res_cursor) > 0)
                snprintf(es->res_cursor, sizeof(es->res_cursor), "%s", ts);
            out_add(&o, "event: resource\ndata: ", data, dlen);
        }
    }
    gaps_expire(es, now);
    /* The rows of the lookback window are what the next query may return
     * again: they are the whole dedupe set. */
    res_seen_free(es);
    es->res_seen = seen;
    es->nres_seen = nseen;
    gw__stream_emit(st, o.buf, o.len);
    free(o.buf);
    gw__stream_again_if_dirty(st, fresh == RUN_BATCH);
}

static void events_query(struct stream *st)
{
    struct event_stream *es = event_stream(st);
    char after[24];
    long long ids[MAX_GAPS];
    for (size_t i = 0; i < es->ngaps; i++)
        ids[i] = es->gaps[i].id;
    char *gaps = gw_pg_bigint_array(ids, es->ngaps);
    if (gaps == NULL) {
        gw__stream_query_not_sent(st);
        return;
    }
    snprintf(after, sizeof(after), "%lld", st->after);
    const char *params[] = {after,      gaps,       es->res_cursor, st->vis[0],
                            st->vis[1], st->vis[2], st->vis[3],     st->vis[4]};
    /* New run events, late commits of ids skipped earlier, and resources
     * changed after the cursor or within the 2 s before it (a change's
     * updated_at is taken before its commit). */
    gw__stream_send(
        st, "stream_events",
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
        8, params, events_done);
    free(gaps);
}

static void events_init_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct stream *st = arg;
    struct event_stream *es = event_stream(st);
    if (!gw__stream_query_back(st, err))
        return;
    st->after = atoll(PQgetvalue(res, 0, 0));
    snprintf(es->res_cursor, sizeof(es->res_cursor), "%s", PQgetvalue(res, 0, 1));
    /* A new feed starts at the newest id; ids just below it that are not
     * committed yet are watched like any other gap. */
    const char *g = PQgetvalue(res, 0, 2);
    uint64_t now = gw__stream_now(st);
    while (*g) {
        char *end;
        long long id = strtoll(g, &end, 10);
        if (end == g)
            break;
        gap_add(es, id, now);
        g = *end == ',' ? end + 1 : end;
    }
    if (!gw__stream_open(st))
        return;
    gw__stream_query(st);
}

static void events_init(struct stream *st)
{
    char after[24];
    snprintf(after, sizeof(after), "%lld", st->after);
    const char *params[] = {event_stream(st)->has_after ? after : NULL};
    gw__stream_send(
        st, "stream_events_init",
        "WITH m AS (SELECT coalesce($1::bigint, (SELECT max(id) FROM gw_run_events), 0) AS high)"
        " SELECT m.high, gw_ts(clock_timestamp()), CASE WHEN $1::bigint IS NULL THEN"
        " (SELECT coalesce(string_agg(g::text, ','), '') FROM generate_series(greatest(m.high - 63,"
        " 1), m.high) g WHERE NOT EXISTS (SELECT 1 FROM gw_run_events e WHERE e.id = g))"
        " ELSE '' END FROM m",
        1, params, events_init_done);
}

/* Woken when the batch may have changed a run's state. */
static bool events_woken(struct stream *st, const char *events_json, int *cache)
{
    static const char *const transitions[] = {"\"kind\":\"started\"", "\"kind\":\"succeeded\"",
                                              "\"kind\":\"failed\"", "\"kind\":\"timed_out\"",
                                              "\"kind\":\"cancelled\""};
    (void)st;
    if (*cache < 0) { /* once per batch */
        *cache = 0;
        for (size_t i = 0; i < ARRAY_SIZE(transitions) && !*cache; i++)
            *cache = strstr(events_json, transitions[i]) != NULL;
    }
    return *cache != 0;
}

static void events_dispose(struct stream *st)
{
    struct event_stream *es = event_stream(st);
    res_seen_free(es);
    free(es->gaps);
}

static const struct stream_kind events_kind = {
    .query = events_query,
    .woken = events_woken,
    .dispose = events_dispose,
};

void gw_stream_events(struct gw_api_ctx *ctx)
{
    long long after = 0;
    int given = gw__stream_resume_point(ctx, &after);
    if (given < 0)
        return;
    struct event_stream *es = (struct event_stream *)gw__stream_new(ctx, &events_kind, sizeof(*es));
    if (es == NULL)
        return;
    es->gaps = calloc(MAX_GAPS, sizeof(es->gaps[0]));
    if (es->gaps == NULL) {
        gw__stream_finish(&es->base, 503, "unavailable", "out of memory");
        return;
    }
    es->base.after = after;
    es->has_after = given == 1;
    es->base.querying = true;
    events_init(&es->base);
}
