/*
 * Operations endpoints: health, readiness, metrics.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "submit_batch.h"

void gw_api_health(struct gw_api_ctx *ctx)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    gw_api_reply(ctx, 200, NULL, ok, sizeof(ok) - 1);
}

void gw_api_ready(struct gw_api_ctx *ctx)
{
    bool pg = gw_pg_pool_ready(ctx->b->pg);
    bool kafka = gw_kafka_producer_healthy(ctx->b->producer);
    char body[160];
    int n =
        snprintf(body, sizeof(body),
                 "{\"status\":\"%s\",\"checks\":{\"postgresql\":\"%s\",\"kafka\":\"%s\"}}",
                 pg && kafka ? "ready" : "not_ready", pg ? "up" : "down", kafka ? "up" : "down");
    gw_api_reply(ctx, pg && kafka ? 200 : 503, NULL, body, (size_t)n);
}

/* Appends printf output to a growing buffer. */
struct text {
    char *buf;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = t->cap - t->len;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t ncap = (t->cap + (size_t)n + 1) * 2;
        char *nb = realloc(t->buf, ncap);
        if (nb == NULL)
            return;
        t->buf = nb;
        t->cap = ncap;
    }
}

/* One histogram's series: cumulative buckets, sum and count, each line
 * with `labels` (label pairs without braces) before le. */
static void put_histo(struct text *t, const char *name, const char *labels,
                      const struct gw_histo *h)
{
    for (size_t i = 0; i <= GW_HISTO_BOUNDS; i++)
        put(t, "%s_bucket{%s,le=\"%s\"} %llu\n", name, labels,
            i < GW_HISTO_BOUNDS ? gw_histo_bound_labels[i] : "+Inf",
            (unsigned long long)gw_histo_cumulative(h, i));
    put(t, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, h->sum, name, labels,
        (unsigned long long)h->count);
}

void gw_api_metrics(struct gw_api_ctx *ctx)
{
    const struct gw_broker_metrics *m = &ctx->b->metrics;
    static const char *const active[] = {"accepted", "pending_approval", "queued", "running"};
    static const char *const drift_states[] = {"in_sync", "drifted", "check_failed"};
    struct gw_http_stats hs;
    struct gw_pg_stats ps;
    struct gw_kafka_producer_stats ks;
    struct text t = {0};

    gw_http_server_stats(ctx->b->http, &hs);
    gw_pg_pool_stats(ctx->b->pg, &ps);
    gw_kafka_producer_stats(ctx->b->producer, &ks);

    put(&t, "# HELP gangway_http_responses_total HTTP responses by status class.\n"
            "# TYPE gangway_http_responses_total counter\n");
    for (int c = 1; c <= 5; c++)
        put(&t, "gangway_http_responses_total{class=\"%dxx\"} %llu\n", c, m->http_by_class[c]);
    put(&t, "# TYPE gangway_http_requests_total counter\ngangway_http_requests_total %llu\n",
        hs.requests);
    put(&t,
        "# TYPE gangway_http_bad_requests_total counter\ngangway_http_bad_requests_total %llu\n",
        hs.bad_requests);
    put(&t, "# TYPE gangway_http_connections gauge\ngangway_http_connections %lu\n",
        hs.connections_open);
    /* Routes that served nothing yet are left out: a series appears with
     * its first request. The submit (POST /v1/actions/{id}/runs) and the
     * claims (POST /internal/v1/claims, and .../runs/{id}/claim for a lone
     * one) are the dispatch path's two hops through this broker
     * (docs/operations.md, "Latency"). */
    put(&t, "# HELP gangway_http_request_duration_seconds Request to answer, by route (streams "
            "not counted).\n"
            "# TYPE gangway_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < gw_api_route_count(); i++) {
        if (m->http_duration[i].count == 0)
            continue;
        char labels[160];
        snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\"", gw_api_route_method(i),
                 gw_api_route_pattern(i));
        put_histo(&t, "gangway_http_request_duration_seconds", labels, &m->http_duration[i]);
    }
    put(&t,
        "# HELP gangway_runs_submitted_total Run submissions by outcome.\n"
        "# TYPE gangway_runs_submitted_total counter\n"
        "gangway_runs_submitted_total{outcome=\"accepted\"} %llu\n"
        "gangway_runs_submitted_total{outcome=\"replayed\"} %llu\n"
        "gangway_runs_submitted_total{outcome=\"rejected\"} %llu\n",
        m->runs_accepted, m->runs_replayed, m->runs_rejected);
    struct gw_submit_batch_stats sb;
    gw_submit_batch_stats(ctx->b->submits, &sb);
    put(&t,
        "# HELP gangway_submit_batches_total Group-commit calls of gw_submit_runs (this replica).\n"
        "# TYPE gangway_submit_batches_total counter\ngangway_submit_batches_total %llu\n"
        "# TYPE gangway_submit_batched_runs_total counter\ngangway_submit_batched_runs_total %llu\n"
        "# HELP gangway_submit_batch_splits_total Batches retried submission by submission after "
        "an error.\n"
        "# TYPE gangway_submit_batch_splits_total counter\ngangway_submit_batch_splits_total %llu\n"
        "# TYPE gangway_submit_batch_max gauge\ngangway_submit_batch_max %lu\n",
        sb.batches, sb.elements, sb.split, sb.max_size);
    put(&t, "# HELP gangway_runs Runs in each non-terminal state (all replicas).\n"
            "# TYPE gangway_runs gauge\n");
    for (int i = 0; i < 4; i++)
        put(&t, "gangway_runs{status=\"%s\"} %lld\n", active[i], m->runs_active[i]);
    uint64_t now = uv_now(ctx->b->loop);
    if (m->stats_at_ms != 0)
        put(&t,
            "# HELP gangway_stats_age_seconds Age of the gauges marked (all replicas).\n"
            "# TYPE gangway_stats_age_seconds gauge\ngangway_stats_age_seconds %.3f\n"
            "# HELP gangway_stats_query_seconds How long their last refresh took in PostgreSQL; "
            "the next waits 100 times as long, at least 5 s.\n"
            "# TYPE gangway_stats_query_seconds gauge\ngangway_stats_query_seconds %.3f\n",
            (double)(now - m->stats_at_ms) / 1000.0, m->stats_query_s);
    put(&t, "# HELP gangway_resources_drift Live resources by the result of their last drift "
            "check (all replicas).\n"
            "# TYPE gangway_resources_drift gauge\n");
    for (int i = 0; i < 3; i++)
        put(&t, "gangway_resources_drift{status=\"%s\"} %lld\n", drift_states[i],
            m->resources_drift[i]);
    put(&t,
        "# TYPE gangway_claims_total counter\n"
        "gangway_claims_total{result=\"granted\"} %llu\n"
        "gangway_claims_total{result=\"refused\"} %llu\n",
        m->claims_granted, m->claims_refused);
    put(&t,
        "# TYPE gangway_worker_events_total counter\n"
        "gangway_worker_events_total{result=\"received\"} %llu\n"
        "gangway_worker_events_total{result=\"applied\"} %llu\n"
        "gangway_worker_events_total{result=\"dead_lettered\"} %llu\n",
        m->events_received, m->events_applied, m->events_deadlettered);
    put(&t,
        "# HELP gangway_worker_event_batches_total Transactions of the event sink that applied "
        "worker events (events applied / batches = events per commit).\n"
        "# TYPE gangway_worker_event_batches_total counter\n"
        "gangway_worker_event_batches_total %llu\n",
        m->events_apply_calls);
    put(&t,
        "# HELP gangway_worker_event_apply_retries_total Event sink calls that failed and go "
        "again: PostgreSQL unavailable for now, or a database that does not match this broker "
        "(SQLSTATE class 42: migrations not applied, rights revoked; events wait, none is "
        "dead-lettered).\n"
        "# TYPE gangway_worker_event_apply_retries_total counter\n"
        "gangway_worker_event_apply_retries_total{reason=\"unavailable\"} %llu\n"
        "gangway_worker_event_apply_retries_total{reason=\"database_mismatch\"} %llu\n",
        m->events_apply_retried, m->events_apply_mismatch);
    put(&t,
        "# HELP gangway_outbox_pending Outbox rows not yet acknowledged by Kafka.\n"
        "# TYPE gangway_outbox_pending gauge\ngangway_outbox_pending %lld\n"
        "# HELP gangway_outbox_lag_seconds Age of the oldest unsent outbox row.\n"
        "# TYPE gangway_outbox_lag_seconds gauge\ngangway_outbox_lag_seconds %.3f\n",
        m->outbox_pending, m->outbox_oldest_age_s);
    put(&t, "# TYPE gangway_outbox_published_total counter\ngangway_outbox_published_total %llu\n",
        m->outbox_published);
    put(&t,
        "# HELP gangway_kafka_delivery_errors_total Kafka produce failures.\n"
        "# TYPE gangway_kafka_delivery_errors_total counter\n"
        "gangway_kafka_delivery_errors_total %llu\n",
        ks.delivery_errors);
    put(&t, "# TYPE gangway_reaper_changes_total counter\ngangway_reaper_changes_total %llu\n",
        m->reaper_changed);
    put(&t,
        "# HELP gangway_webhooks_total Webhook delivery attempts by result (this replica).\n"
        "# TYPE gangway_webhooks_total counter\n"
        "gangway_webhooks_total{result=\"sent\"} %llu\n"
        "gangway_webhooks_total{result=\"failed\"} %llu\n"
        "gangway_webhooks_total{result=\"given_up\"} %llu\n",
        m->webhooks_sent, m->webhooks_failed, m->webhooks_given_up);
    put(&t,
        "# HELP gangway_catalog_reloads_total Action catalog reloads by outcome (this replica).\n"
        "# TYPE gangway_catalog_reloads_total counter\n"
        "gangway_catalog_reloads_total{result=\"applied\"} %llu\n"
        "gangway_catalog_reloads_total{result=\"failed\"} %llu\n",
        m->catalog_reloads_applied, m->catalog_reloads_failed);
    put(&t,
        "# TYPE gangway_pg_queries_total counter\n"
        "gangway_pg_queries_total{result=\"ok\"} %llu\n"
        "gangway_pg_queries_total{result=\"failed\"} %llu\n"
        "# TYPE gangway_pg_queue gauge\ngangway_pg_queue %lu\n"
        "# HELP gangway_pg_queue_expired_total Statements failed after waiting longer than "
        "GW_PG_QUEUE_TIMEOUT_MS for a connection.\n"
        "# TYPE gangway_pg_queue_expired_total counter\ngangway_pg_queue_expired_total %llu\n"
        "# TYPE gangway_pg_connections gauge\ngangway_pg_connections %d\n",
        ps.queries_ok, ps.queries_failed, ps.queued, ps.expired, ps.connections_up);
    /* gw_api_reply sets application/json; metrics need the Prometheus type. */
    gw_api_send(ctx, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, t.buf ? t.buf : "",
                t.len);
    free(t.buf);
}
