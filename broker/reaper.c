/*
 * The reaper: on a timer, fails or retries runs whose worker stopped sending
 * heartbeats, times out runs far past their deadline, and republishes runs
 * left queued too long. The work itself is gw_reap() in SQL, which takes its
 * rows with SKIP LOCKED, so every broker replica may run it at once.
 */
#include <stdio.h>
#include <stdlib.h>

#include "audit.h"
#include "broker.h"
#include "gw/log.h"

#define BATCH 200
/* Events the sink may be behind and still judge heartbeats. */
#define LAG_MAX 1000

struct gw_reaper {
    struct gw_broker *b;
    uv_timer_t timer;
    bool busy;
    bool closed;
    bool timer_closed;
};

static void reaper_run(struct gw_reaper *r);

static void maybe_free(struct gw_reaper *r)
{
    if (r->closed && r->timer_closed && !r->busy)
        free(r);
}

static void reaped(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_reaper *r = arg;
    r->busy = false;
    if (r->closed) {
        maybe_free(r);
        return;
    }
    if (err != NULL) {
        if (err->code != GW_EUNAVAIL)
            gw_log_warn("reaper: sweep failed: %s", err->message);
        return;
    }
    int n = atoi(PQgetvalue(res, 0, 0));
    if (n > 0) {
        r->b->metrics.reaper_changed += (unsigned long long)n;
        gw_relay_kick(r->b->relay); /* retries, requeues and teardowns wait in the outbox */
        gw_log_info("reaper: %d run(s) failed, retried or requeued", n);
    }
    if (n >= BATCH)
        reaper_run(r); /* more to do */
}

static void reported(void *arg, const PGresult *res, const struct gw_error *err)
{
    (void)arg;
    (void)res;
    if (err != NULL && err->code != GW_ECLOSED && err->code != GW_EUNAVAIL)
        gw_log_warn("reaper: reporting the sink's state failed: %s", err->message);
}

static void reaper_run(struct gw_reaper *r)
{
    char hb[32], rq[32], limit[16];
    if (r->busy || r->closed)
        return;
    snprintf(hb, sizeof(hb), "%d seconds", r->b->opts.heartbeat_timeout_s);
    snprintf(rq, sizeof(rq), "%d seconds", r->b->opts.requeue_after_s);
    snprintf(limit, sizeof(limit), "%d", BATCH);
    /* Heartbeats are events: while this broker's sink is behind, a stale
     * heartbeat_at may only mean "not applied yet", so nobody is declared
     * lost until the sink has been assigned and current for a full timeout. */
    bool check =
        gw_sink_caught_up(r->b->sink, (uint64_t)r->b->opts.heartbeat_timeout_s * 1000, LAG_MAX);
    char parts[16];
    snprintf(parts, sizeof(parts), "%d", gw_sink_partitions(r->b->sink));
    char age[24];
    int64_t fresh_age = gw_sink_fresh_age_ms(r->b->sink);
    snprintf(age, sizeof(age), "%lld", (long long)(fresh_age >= 0 ? fresh_age : 0));
    const char *report[] = {gw_sink_instance(r->b->sink), parts, check ? "true" : "false",
                            fresh_age >= 0 ? age : NULL};
    /* Fire and forget: a lost report only delays heartbeat checks a tick. */
    gw_pg_query(r->b->pg, "sink_report", "SELECT gw_sink_report($1, $2::int, $3::boolean, $4::int)",
                4, report, reported, NULL);
    const char *params[] = {hb, rq, limit, check ? "true" : "false"};
    r->busy = true;
    if (gw_pg_query(r->b->pg, "reap",
                    /* The timeout stretches by how far behind the least
                     * fresh sink is (sql/0016): a heartbeat not applied yet
                     * is not a missing one. */
                    "SELECT gw_reap($1::interval + gw_sinks_lag(), $2::interval, $3::int,"
                    " $4::boolean)"
                    " + gw_expire_approvals($3::int)",
                    4, params, reaped, r) < 0)
        r->busy = false;
}

static void on_timer(uv_timer_t *t)
{
    reaper_run(t->data);
    gw_audit_seal_tick(((struct gw_reaper *)t->data)->b); /* audit.c: chains finished entries */
}

struct gw_reaper *gw_reaper_create(struct gw_broker *b, struct gw_error *err)
{
    struct gw_reaper *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    r->b = b;
    uv_timer_init(b->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_timer, (uint64_t)b->opts.reaper_interval_ms,
                   (uint64_t)b->opts.reaper_interval_ms);
    return r;
}

static void timer_closed(uv_handle_t *h)
{
    struct gw_reaper *r = h->data;
    r->timer_closed = true;
    maybe_free(r);
}

void gw_reaper_destroy(struct gw_reaper *r)
{
    if (r == NULL)
        return;
    r->closed = true;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, timer_closed);
}
