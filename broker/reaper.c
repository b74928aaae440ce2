/*
 * The reaper: on a timer, fails or retries runs whose worker stopped sending
 * heartbeats, times out runs far past their deadline, and republishes runs
 * left queued too long. The work itself is gw_reap() in SQL, which takes its
 * rows with SKIP LOCKED, so every broker replica may run it at once.
 *
 * A queued run is republished only when its worker type's runs topic holds
 * nothing its workers have not consumed (decision 0078): while they have a
 * backlog, an old queued run is waiting in line, and publishing it again
 * would only add to the line. The reaper asks Kafka for each type's backlog
 * every HOLD_CHECK_MS, off the loop (the Admin API blocks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "broker.h"
#include "catalog.h"
#include "gw/log.h"
#include "gw/mem.h"

#define BATCH 200
/* Events the sink may be behind and still judge heartbeats. */
#define LAG_MAX 1000

/* A verdict on heartbeats is made here, from this broker's view of its sink,
 * but carried out in PostgreSQL, possibly much later: a statement queued
 * while PostgreSQL was down runs when it comes back (issue 10: four healthy
 * runs failed 0.3 s after a restart, on a 'caught up' computed 4 s before
 * the stop took effect). So every verdict carries a deadline on PostgreSQL's
 * clock and counts only if the statement runs before it. The offset between
 * our clock and PostgreSQL's is learnt from replies that came back fast. */
#define VERDICT_VALID_S 1.0
#define OFFSET_RTT_MAX  0.2 /* seconds: a slower reply says little about the offset */
/* How often the worker types' backlogs are asked for, and how long one
 * Kafka request of it may take. */
#define HOLD_CHECK_MS   10000
#define HOLD_TIMEOUT_MS 5000

/* One round of backlog checks, done in a uv_work thread over one admin
 * client: inputs copied from the loop's state, results read back in
 * hold_done. */
struct hold_type {
    char *type;
    char *topic;
    char *group;
};
struct hold_check {
    uv_work_t work;
    struct gw_reaper *r;
    struct gw_kafka_config cfg;
    size_t n;
    struct hold_type *t;
    struct gw_kafka_backlog_ask *ask; /* ask[i] is t[i]'s */
    struct gw_error err;              /* no client could be made */
    bool failed;
};

struct gw_reaper {
    struct gw_broker *b;
    uv_timer_t timer;
    bool busy;
    bool closed;
    bool timer_closed;
    bool offset_known;
    double offset; /* PostgreSQL's clock minus ours, seconds */
    int reports_in_flight;
    bool hold_busy;     /* a hold_check is out */
    uint64_t hold_next; /* loop time of the next one */
    char *held;         /* PostgreSQL text[] of the held types; NULL: not known yet */
    char *hold_warned;  /* the last failure said, so it is said once */
};

struct report {
    struct gw_reaper *r;
    double sent_wall;
    uint64_t sent_mono;
};

static void reaper_run(struct gw_reaper *r);

static void maybe_free(struct gw_reaper *r)
{
    if (r->closed && r->timer_closed && !r->busy && r->reports_in_flight == 0 && !r->hold_busy) {
        free(r->held);
        free(r->hold_warned);
        free(r);
    }
}

static void hold_work(uv_work_t *w)
{
    struct hold_check *h = (struct hold_check *)w;
    h->failed = gw_kafka_group_backlogs(&h->cfg, h->ask, h->n, HOLD_TIMEOUT_MS, &h->err) != 0;
}

static void hold_check_free(struct hold_check *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->t[i].type);
        free(h->t[i].topic);
        free(h->t[i].group);
    }
    free(h->t);
    free(h->ask);
    free(h);
}

/* A type whose backlog is not known is held too: republishing cannot help
 * while Kafka does not answer, and the next check decides. */
static void hold_done(uv_work_t *w, int status)
{
    struct hold_check *h = (struct hold_check *)w;
    struct gw_reaper *r = h->r;
    r->hold_busy = false;
    if (!r->closed && status == 0) {
        size_t cap = 3, len = 0;
        for (size_t i = 0; i < h->n; i++)
            cap += 2 * strlen(h->t[i].type) + 4;
        char *held = malloc(cap);
        const char *fail = NULL;
        if (held != NULL) {
            held[len++] = '{';
            for (size_t i = 0; i < h->n; i++) {
                bool failed = h->failed || h->ask[i].failed;
                if (!failed && h->ask[i].backlog <= 0)
                    continue;
                if (failed && fail == NULL)
                    fail = h->failed ? h->err.message : h->ask[i].err.message;
                if (len > 1)
                    held[len++] = ',';
                held[len++] = '"';
                for (const char *c = h->t[i].type; *c != '\0'; c++) {
                    if (*c == '"' || *c == '\\')
                        held[len++] = '\\';
                    held[len++] = *c;
                }
                held[len++] = '"';
            }
            held[len++] = '}';
            held[len] = '\0';
            free(r->held);
            r->held = held;
        }
        if (fail != NULL && (r->hold_warned == NULL || strcmp(r->hold_warned, fail) != 0)) {
            gw_log_warn("reaper: a runs topic's backlog is not known, so its old queued runs are"
                        " not republished until it is: %s",
                        fail);
            free(r->hold_warned);
            r->hold_warned = strdup(fail);
        } else if (fail == NULL && r->hold_warned != NULL) {
            free(r->hold_warned);
            r->hold_warned = NULL;
        }
    }
    hold_check_free(h);
    maybe_free(r);
}

/* Starts a round of backlog checks for the catalog's worker types when one
 * is due. */
static void hold_check_start(struct gw_reaper *r)
{
    const struct gw_catalog *cat = r->b->catalog;
    uint64_t now = uv_now(r->b->loop);
    if (r->hold_busy || r->closed || now < r->hold_next || cat == NULL)
        return;
    struct hold_check *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return;
    h->r = r;
    h->cfg = (struct gw_kafka_config){r->b->opts.kafka_brokers, r->b->opts.kafka_extra};
    h->t = calloc(cat->n > 0 ? cat->n : 1, sizeof(*h->t));
    h->ask = calloc(cat->n > 0 ? cat->n : 1, sizeof(*h->ask));
    if (h->t == NULL || h->ask == NULL) {
        hold_check_free(h);
        return;
    }
    for (size_t i = 0; i < cat->n; i++) {
        const struct gw_action *a = cat->actions[i];
        bool seen = a->is_workflow;
        for (size_t j = 0; j < h->n && !seen; j++)
            seen = strcmp(h->t[j].type, a->worker_type) == 0;
        if (seen)
            continue;
        struct hold_type *t = &h->t[h->n];
        char logical[160], topic[256];
        snprintf(logical, sizeof(logical), "gangway.runs.%s", a->worker_type);
        gw_broker_topic(r->b, logical, topic, sizeof(topic));
        t->type = strdup(a->worker_type);
        t->topic = strdup(topic);
        /* The workers' group (workers/runtime.c): prefix + gangway-workers-TYPE. */
        if (asprintf(&t->group, "%sgangway-workers-%s", r->b->opts.topic_prefix, a->worker_type) <
            0)
            t->group = NULL;
        h->n++;
        if (t->type == NULL || t->topic == NULL || t->group == NULL) {
            hold_check_free(h);
            return;
        }
        h->ask[h->n - 1] = (struct gw_kafka_backlog_ask){.topic = t->topic, .group = t->group};
    }
    if (uv_queue_work(r->b->loop, &h->work, hold_work, hold_done) != 0) {
        hold_check_free(h);
        return;
    }
    r->hold_busy = true;
    r->hold_next = now + HOLD_CHECK_MS;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
        gw_log_info("reaper: %d run(s) failed, retried, requeued or started (drift)", n);
    }
    if (n >= BATCH)
        reaper_run(r); /* more to do */
}

static void reported(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct report *rep = arg;
    struct gw_reaper *r = rep->r;
    r->reports_in_flight--;
    if (err != NULL) {
        if (err->code != GW_ECLOSED && err->code != GW_EUNAVAIL)
            gw_log_warn("reaper: reporting the sink's state failed: %s", err->message);
    } else if (!r->closed && PQntuples(res) == 1) {
        double rtt = (double)(uv_hrtime() - rep->sent_mono) / 1e9;
        if (rtt <= OFFSET_RTT_MAX) {
            r->offset = atof(PQgetvalue(res, 0, 0)) - (rep->sent_wall + rtt / 2);
            r->offset_known = true;
        }
    }
    free(rep);
    maybe_free(r);
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
    char age[24], until[40];
    int64_t fresh_age = gw_sink_fresh_age_ms(r->b->sink);
    snprintf(age, sizeof(age), "%lld", (long long)(fresh_age >= 0 ? fresh_age : 0));
    /* No known offset: no verdict (the first fast reply brings one). */
    snprintf(until, sizeof(until), "%.3f",
             r->offset_known ? wall_now() + r->offset + VERDICT_VALID_S : 0.0);
    const char *report[] = {gw_sink_instance(r->b->sink), parts, check ? "true" : "false",
                            fresh_age >= 0 ? age : NULL, until};
    struct report *rep = malloc(sizeof(*rep));
    if (rep != NULL) {
        rep->r = r;
        rep->sent_wall = wall_now();
        rep->sent_mono = uv_hrtime();
        /* Fire and forget: a lost report only delays heartbeat checks a tick. */
        if (gw_pg_query(r->b->pg, "sink_report",
                        "SELECT extract(epoch FROM clock_timestamp()),"
                        " gw_sink_report($1, $2::int,"
                        " $3::boolean AND extract(epoch FROM clock_timestamp()) < $5::float8,"
                        " $4::int)",
                        5, report, reported, rep) == 0)
            r->reports_in_flight++;
        else
            free(rep);
    }
    char drift_k[16];
    snprintf(drift_k, sizeof(drift_k), "%d", r->b->opts.drift_max_per_type);
    /* NULL until the first backlog check is back: no type may be
     * republished before its backlog is known. */
    const char *params[] = {hb, rq, limit, check ? "true" : "false", until, drift_k, r->held};
    r->busy = true;
    if (gw_pg_query(r->b->pg, "reap",
                    /* The timeout stretches by how far behind the least
                     * fresh sink is (gw_sinks_lag): a heartbeat not applied yet
                     * is not a missing one. */
                    "SELECT gw_reap($1::interval + gw_sinks_lag(), $2::interval, $3::int,"
                    " $4::boolean AND extract(epoch FROM clock_timestamp()) < $5::float8,"
                    " $7::text[])"
                    " + gw_expire_approvals($3::int)"
                    /* Scheduled drift checks (decision 0067). */
                    " + gw_drift_due($6::int)",
                    7, params, reaped, r) < 0)
        r->busy = false;
}

static void on_timer(uv_timer_t *t)
{
    hold_check_start(t->data);
    reaper_run(t->data);
    gw_audit_seal_tick(((struct gw_reaper *)t->data)->b); /* audit.c: chains finished entries */
    gw_audit_checkpoint_tick(((struct gw_reaper *)t->data)->b); /* and signs the head */
}

struct gw_reaper *gw_reaper_create(struct gw_broker *b, struct gw_error *err)
{
    struct gw_reaper *r = gw_calloc(1, sizeof(*r), err);
    if (r == NULL)
        return NULL;
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
