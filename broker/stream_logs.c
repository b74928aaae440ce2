/*
 * The log stream of a run (GET /v1/runs/{id}/logs?follow=true, stream.h):
 * its lines after the client's position, then an "end" event once the run
 * is terminal and every line it logged was sent. The stream's state machine
 * and the hub are in stream.c (stream_impl.h); this kind has no states of
 * its own.
 */
#include "stream_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/crypto.h"
#include "gw/logpos.h"

#define LOG_BATCH 100

struct log_stream {
    struct stream base; /* first: a struct stream * is a struct log_stream * */
    char run_id[GW_UUID_LEN + 1];
    /* base.after: the last position sent, (attempt << 20) + seq */
};

static struct log_stream *log_stream(struct stream *st)
{
    return (struct log_stream *)st;
}

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
    if (!gw__stream_query_back(st, err))
        return;
    int n = PQntuples(res);
    if (n == 0) {
        char detail[128];
        snprintf(detail, sizeof(detail), "no run with id '%s'", log_stream(st)->run_id);
        gw__stream_finish(st, 404, "run_not_found", detail);
        return;
    }
    if (st->state == ST_INIT && !gw__stream_open(st))
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
        p += snprintf(p, cap - (size_t)(p - buf), "id: %lld\nevent: log\ndata: ", pos);
        size_t len = (size_t)PQgetlength(res, i, 3);
        memcpy(p, PQgetvalue(res, i, 3), len);
        p += len;
        memcpy(p, "\n\n", 2);
        p += 2;
        st->after = pos;
        lines++;
    }
    gw__stream_emit(st, buf, (size_t)(p - buf));
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
                gw__stream_emit(st, ev, (size_t)len);
            free(ev);
            free(data);
        }
        gw__stream_finish(st, 0, NULL, NULL);
        return;
    }
    gw__stream_again_if_dirty(st, lines == LOG_BATCH);
}

static void logs_query(struct stream *st)
{
    char attempt[24], seq[24];
    long long a, q;
    gw_log_pos_split(st->after, &a, &q);
    snprintf(attempt, sizeof(attempt), "%lld", a);
    snprintf(seq, sizeof(seq), "%lld", q);
    const char *params[] = {log_stream(st)->run_id,
                            attempt,
                            seq,
                            st->vis[0],
                            st->vis[1],
                            st->vis[2],
                            st->vis[3],
                            st->vis[4]};
    /* One statement, one snapshot: the run's status and the lines after the
     * client's position. The row comparison walks the primary key. */
    gw__stream_send(
        st, "stream_logs",
        "SELECT r.status, r.reason, l.pos, l.data FROM gw_runs r LEFT JOIN LATERAL ("
        " SELECT " GW_LOG_POS_SQL " AS pos, json_build_object("
        " 'attempt', w.attempt, 'seq', w.seq, 'stream', w.stream, 'line', w.line,"
        " 'at', gw_ts(w.received_at))::text AS data FROM gw_worker_events w"
        " WHERE w.run_id = r.id AND (w.attempt, w.seq) > ($2::int, $3::int) AND w.kind = 'log'"
        " ORDER BY w.attempt, w.seq LIMIT 100) l ON true WHERE r.id = $1::uuid"
        " AND gw_visible(r.requested_by, r.requested_teams, r.action_id, $4, $5, $6, $7, $8)"
        " ORDER BY l.pos",
        8, params, logs_done);
}

/* Woken by the worker events of its run. */
static bool logs_woken(struct stream *st, const char *events_json, int *cache)
{
    (void)cache;
    return strstr(events_json, log_stream(st)->run_id) != NULL;
}

static const struct stream_kind logs_kind = {
    .query = logs_query,
    .woken = logs_woken,
};

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
        gw__stream_resume_point(ctx, &after) < 0)
        return;
    struct log_stream *ls = (struct log_stream *)gw__stream_new(ctx, &logs_kind, sizeof(*ls));
    if (ls == NULL)
        return;
    memcpy(ls->run_id, ctx->id, GW_UUID_LEN); /* validated: exactly a uuid */
    ls->run_id[GW_UUID_LEN] = '\0';
    ls->base.after = after;
    gw__stream_query(&ls->base);
}
