/*
 * GET /v1/dashboard?days=N: the console's dashboard in one document,
 * computed by SQL aggregates over the runs the caller may see (the same
 * gw_visible filter as GET /v1/runs), never by shipping runs to the client.
 *
 * The window starts at 00:00 UTC N-1 days ago (so "14 days" is today and the
 * 13 before it). Durations are started_at -> finished_at of finished runs;
 * the approval wait is created_at -> the last decision of runs that needed
 * approval and got one; the queue is every queued run the caller may see
 * (not limited to the window). The range scan on created_at uses
 * gw_runs_by_time (sql/0001; sql/0022 says why it is the only one).
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "policy.h"

static const char dashboard_sql[] =
    "WITH v AS MATERIALIZED ("
    " SELECT r.id, r.status, r.action_id, r.requested_by, r.requested_teams, r.created_at,"
    " r.started_at, r.finished_at, r.approval_rule"
    " FROM gw_runs r"
    " WHERE r.created_at >= (date_trunc('day', now() AT TIME ZONE 'UTC')"
    " - make_interval(days => $1::int - 1)) AT TIME ZONE 'UTC'"
    " AND gw_visible(r.requested_by, r.requested_teams, r.action_id, $2, $3, $4, $5, $6))"
    " SELECT json_build_object("
    " 'days', $1::int,"
    " 'since', gw_ts((date_trunc('day', now() AT TIME ZONE 'UTC')"
    " - make_interval(days => $1::int - 1)) AT TIME ZONE 'UTC'),"
    " 'runs_per_day', coalesce((SELECT json_agg(json_build_object('day', d.day, 'status',"
    " d.status, 'count', d.n) ORDER BY d.day, d.status) FROM (SELECT to_char(created_at AT TIME"
    " ZONE 'UTC', 'YYYY-MM-DD') AS day, status, count(*) AS n FROM v GROUP BY 1, 2) d), '[]'),"
    " 'duration_percentiles', coalesce((SELECT json_agg(json_build_object('action', x.action_id,"
    " 'p50_ms', round(x.p50), 'p90_ms', round(x.p90), 'p99_ms', round(x.p99), 'count', x.n)"
    " ORDER BY x.action_id) FROM (SELECT action_id,"
    " percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,"
    " percentile_cont(0.9) WITHIN GROUP (ORDER BY ms) AS p90,"
    " percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99, count(*) AS n"
    " FROM (SELECT action_id, extract(epoch FROM finished_at - started_at) * 1000 AS ms FROM v"
    " WHERE started_at IS NOT NULL AND finished_at IS NOT NULL) f GROUP BY action_id) x), '[]'),"
    " 'failure_rate', coalesce((SELECT json_agg(json_build_object('action', y.action_id,"
    " 'total', y.total, 'failed', y.failed, 'rate', round(y.failed::numeric / y.total, 4))"
    " ORDER BY y.action_id) FROM (SELECT action_id, count(*) AS total,"
    " count(*) FILTER (WHERE status IN ('failed', 'timed_out')) AS failed FROM v"
    " WHERE status IN ('succeeded', 'failed', 'timed_out') GROUP BY action_id) y), '[]'),"
    " 'approval_wait', (SELECT json_build_object("
    " 'p50_ms', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY w.ms)),"
    " 'p90_ms', round(percentile_cont(0.9) WITHIN GROUP (ORDER BY w.ms)), 'count', count(*))"
    " FROM (SELECT extract(epoch FROM max(a.created_at) - v.created_at) * 1000 AS ms"
    " FROM v JOIN gw_approvals a ON a.run_id = v.id WHERE v.approval_rule IS NOT NULL"
    " AND v.status <> 'pending_approval' GROUP BY v.id, v.created_at) w),"
    " 'queue', (SELECT json_build_object('depth', count(*), 'oldest_queued_at',"
    " gw_ts(min(coalesce(q.queued_at, q.created_at)))) FROM gw_runs q WHERE q.status = 'queued'"
    " AND gw_visible(q.requested_by, q.requested_teams, q.action_id, $2, $3, $4, $5, $6)),"
    " 'top_requesters', coalesce((SELECT json_agg(json_build_object('team', t.team, 'subject',"
    " t.requested_by, 'count', t.n) ORDER BY t.team NULLS LAST, t.n DESC, t.requested_by)"
    " FROM (SELECT team, requested_by, n, row_number() OVER (PARTITION BY team ORDER BY n DESC,"
    " requested_by) AS rank FROM (SELECT tm.team, v.requested_by, count(*) AS n FROM v"
    " LEFT JOIN LATERAL unnest(CASE WHEN cardinality(v.requested_teams) > 0"
    " THEN v.requested_teams ELSE ARRAY[NULL::text] END) AS tm(team) ON true"
    " GROUP BY tm.team, v.requested_by) c) t WHERE t.rank <= 5), '[]')"
    ")::text";

static void dashboard_rows(struct gw_api_ctx *ctx, const PGresult *res)
{
    gw_api_reply(ctx, 200, "Cache-Control: no-store\r\n", PQgetvalue(res, 0, 0),
                 (size_t)PQgetlength(res, 0, 0));
}

void gw_api_dashboard(struct gw_api_ctx *ctx)
{
    long long days = 14;
    bool present;
    if (!gw_api_query_int(ctx, "days", 1, 90, &days, &present))
        return;
    char *d = gw_api_printf(ctx, "%lld", days);
    if (d == NULL) {
        gw_api_oom(ctx);
        return;
    }
    struct gw_authz_filter f;
    const char *params[6] = {d};
    if (!gw_authz_params(ctx, GW_PERM_READ_RUNS, &f, params + 1))
        return;
    gw_api_select(ctx, "dashboard", dashboard_sql, 6, params, dashboard_rows);
    gw_authz_filter_finish(&f);
}
