/*
 * Wires the broker's parts together and takes them down in order.
 */
#include "broker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "catalog.h"
#include "catalog_reload.h"
#include "gw/checkpoint.h"
#include "cors.h"
#include "hooks.h"
#include "gw/mem.h"
#include "gw/jwt.h"
#include "gw/log.h"
#include "policy.h"
#include "stream.h"
#include "submit_batch.h"

/* The gauges of runs, resources and the outbox are refreshed by one query
 * every STATS_MS, in every replica. Its counts read an index entry per
 * active run: ~100 ms of PostgreSQL CPU for 1,000,000 queued runs, which
 * would grow with the backlog (issue 15 asks for O(1) cost). So the next
 * refresh waits STATS_COST_FACTOR times as long as the last one took in
 * PostgreSQL (the query measures itself: a wait in the pool or on the
 * network is not its cost; one cut by statement_timeout counts its round
 * trip), up to STATS_MAX_MS: while a refresh takes under 6 s, it uses at
 * most ~1 % of the time of a PostgreSQL connection whatever the backlog, and
 * gangway_stats_age_seconds says how old the figures are. */
#define STATS_MS          5000
#define STATS_COST_FACTOR 100
#define STATS_MAX_MS      (10 * 60 * 1000)

uint64_t gw_broker_stats_wait(uint64_t took_ms)
{
    if (took_ms >= STATS_MAX_MS / STATS_COST_FACTOR)
        return STATS_MAX_MS;
    return took_ms * STATS_COST_FACTOR;
}

const char *gw_broker_topic(const struct gw_broker *b, const char *logical, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s", b->opts.topic_prefix ? b->opts.topic_prefix : "", logical);
    return buf;
}

static void stats_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_broker *b = arg;
    double took;
    b->stats_busy = false;
    if (b->closing)
        return;
    if (err != NULL) {
        /* A count that outgrew statement_timeout (57014, GW_ETIMEDOUT) ran
         * that long each time: it backs off as a slow success does (the
         * round trip stands for its time), not every tick. Any other failure
         * (PostgreSQL away, a wait in the pool's queue) is retried on the
         * next tick, so the gauges come back with PostgreSQL. */
        if (err->code == GW_ETIMEDOUT)
            b->stats_next_ms =
                b->stats_sent_ms + gw_broker_stats_wait(uv_now(b->loop) - b->stats_sent_ms);
        return;
    }
    took = atof(PQgetvalue(res, 0, 9));
    took = took > 0 ? took : 0;
    b->stats_next_ms = b->stats_sent_ms + gw_broker_stats_wait((uint64_t)(took * 1000.0));
    b->metrics.stats_query_s = took;
    b->metrics.stats_at_ms = uv_now(b->loop);
    b->metrics.outbox_pending = atoll(PQgetvalue(res, 0, 0));
    b->metrics.outbox_oldest_age_s = atof(PQgetvalue(res, 0, 1));
    for (int i = 0; i < 4; i++)
        b->metrics.runs_active[i] = atoll(PQgetvalue(res, 0, 2 + i));
    for (int i = 0; i < 3; i++)
        b->metrics.resources_drift[i] = atoll(PQgetvalue(res, 0, 6 + i));
}

static void stats_tick(uv_timer_t *t)
{
    struct gw_broker *b = t->data;
    if (b->stats_busy || uv_now(b->loop) < b->stats_next_ms)
        return;
    b->stats_busy = true;
    b->stats_sent_ms = uv_now(b->loop);
    if (gw_pg_query(b->pg, "broker_stats",
                    "SELECT (SELECT count(*) FROM gw_outbox),"
                    " (SELECT coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)"
                    " FROM gw_outbox),"
                    " (SELECT count(*) FROM gw_runs WHERE status = 'accepted'),"
                    " (SELECT count(*) FROM gw_runs WHERE status = 'pending_approval'),"
                    " (SELECT count(*) FROM gw_runs WHERE status = 'queued'),"
                    " (SELECT count(*) FROM gw_runs WHERE status = 'running'),"
                    " (SELECT count(*) FROM gw_resources WHERE status <> 'deleted'"
                    " AND drift_status = 'in_sync'),"
                    " (SELECT count(*) FROM gw_resources WHERE status <> 'deleted'"
                    " AND drift_status = 'drifted'),"
                    " (SELECT count(*) FROM gw_resources WHERE status <> 'deleted'"
                    " AND drift_status = 'check_failed'),"
                    /* last: its own time, the counts above evaluated */
                    " extract(epoch FROM clock_timestamp() - statement_timestamp())",
                    0, NULL, stats_done, b) < 0)
        b->stats_busy = false;
}

int gw_broker_ensure_topics(const struct gw_broker *b, const struct gw_catalog *cat,
                            struct gw_error *err)
{
    const char *logical[] = {"gangway.events",  "gangway.catalog", "gangway.deadletter",
                             "gangway.control", "gangway.audit",   "gangway.audit.checkpoints"};
    size_t n = ARRAY_SIZE(logical) + cat->n;
    char(*names)[256] = calloc(n, sizeof(*names));
    const char **list = calloc(n + 1, sizeof(*list));
    size_t k = 0;
    int rc;

    if (names == NULL || list == NULL) {
        free(names);
        free(list);
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    }
    for (size_t i = 0; i < ARRAY_SIZE(logical); i++)
        gw_broker_topic(b, logical[i], names[k++], sizeof(names[0]));
    for (size_t i = 0; i < cat->n; i++) {
        char logical_run[128];
        bool dup = false;
        snprintf(logical_run, sizeof(logical_run), "gangway.runs.%s", cat->actions[i]->worker_type);
        gw_broker_topic(b, logical_run, names[k], sizeof(names[0]));
        for (size_t j = 0; j < k; j++)
            dup = dup || strcmp(names[j], names[k]) == 0;
        if (!dup)
            k++;
    }
    for (size_t i = 0; i < k; i++)
        list[i] = names[i];
    rc = gw_kafka_ensure_topics(
        &(struct gw_kafka_config){b->opts.kafka_brokers, b->opts.kafka_extra}, list,
        b->opts.topic_partitions > 0 ? b->opts.topic_partitions : 8, -1, 15000, err);
    free(names);
    free(list);
    return rc;
}

struct gw_broker *gw_broker_create(uv_loop_t *loop, const struct gw_broker_options *opts,
                                   struct gw_error *err)
{
    struct gw_broker *b = gw_calloc(1, sizeof(*b), err);
    if (b == NULL)
        return NULL;
    b->loop = loop;
    b->opts = *opts;
    if (b->opts.listen_host == NULL)
        b->opts.listen_host = "127.0.0.1";
    if (b->opts.pg_pool_size <= 0)
        b->opts.pg_pool_size = 8;
    if (b->opts.topic_prefix == NULL)
        b->opts.topic_prefix = "";
    if (b->opts.max_body_bytes == 0)
        b->opts.max_body_bytes = 1 << 20;
    if (b->opts.heartbeat_interval_s <= 0)
        b->opts.heartbeat_interval_s = 5;
    if (b->opts.heartbeat_timeout_s <= 0)
        b->opts.heartbeat_timeout_s = 3 * b->opts.heartbeat_interval_s;
    if (b->opts.requeue_after_s <= 0)
        b->opts.requeue_after_s = 600;
    if (b->opts.reaper_interval_ms <= 0)
        b->opts.reaper_interval_ms = 1000;
    if (b->opts.drift_max_per_type <= 0)
        b->opts.drift_max_per_type = 2;
    if (b->opts.audit_checkpoint_every_s <= 0)
        b->opts.audit_checkpoint_every_s = 60;
    if (b->opts.audit_checkpoint_every_n <= 0)
        b->opts.audit_checkpoint_every_n = 1000;
    if (b->opts.session_ttl_s <= 0)
        b->opts.session_ttl_s = 12 * 3600;
    if (b->opts.session_idle_s <= 0)
        b->opts.session_idle_s = 30 * 60;
    if (b->opts.public_url != NULL && b->opts.public_url[0] == '\0')
        b->opts.public_url = NULL;
    if (b->opts.public_url != NULL && strncmp(b->opts.public_url, "http://", 7) != 0 &&
        strncmp(b->opts.public_url, "https://", 8) != 0) {
        gw_error_set(err, GW_EINVAL, false,
                     "--public-url (GW_PUBLIC_URL) must start with http:// or https://, got '%s'",
                     b->opts.public_url);
        free(b);
        return NULL;
    }
    if ((b->console = gw_console_create(b->opts.web_dir)) == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        free(b);
        return NULL;
    }

    if (b->opts.audit_signing_key != NULL && gw_audit_key_load(b, err) < 0)
        goto fail;
    b->catalog = gw_catalog_load(b->opts.actions_dir, err);
    if (b->catalog == NULL)
        goto fail;
    if (gw_catalog_store(b->catalog, b->opts.pg_conninfo, err) < 0)
        goto fail;
    b->policy = gw_policy_store_create(loop, b->opts.policy_file, b->catalog, err);
    if (b->policy == NULL)
        goto fail;
    if (!b->opts.no_create_topics && gw_broker_ensure_topics(b, b->catalog, err) < 0)
        goto fail;

    struct gw_pg_pool_options po = {
        .conninfo = b->opts.pg_conninfo,
        .size = b->opts.pg_pool_size,
        .pipeline_depth = 32,
        .statement_timeout_ms = 30000,
        .queue_timeout_ms = b->opts.pg_queue_timeout_ms > 0 ? b->opts.pg_queue_timeout_ms : 0};
    b->pg = gw_pg_pool_create(loop, &po, err);
    if (b->pg == NULL)
        goto fail;
    b->submits = gw_submit_batch_create(b, GW_SUBMIT_BATCH_MAX, GW_SUBMIT_BATCH_IN_FLIGHT, err);
    if (b->submits == NULL)
        goto fail;
    /* No linger: the relay already hands Kafka whole batches (every row of
     * a lease at once), so waiting only delays each run's dispatch
     * (docs/decisions/0051). GW_KAFKA_PROPS=linger.ms=N overrides.
     * A message gives up before the relay's 30 s lease of its outbox row
     * ends (relay.c LEASE), so a row is never leased again, by this relay's
     * next batch or by another replica, while its first send may still
     * succeed: a slow Kafka would otherwise get it up to 5 times. */
    struct gw_kafka_config kc = {.brokers = b->opts.kafka_brokers,
                                 .extra = b->opts.kafka_extra,
                                 .linger_ms = "0",
                                 .message_timeout_ms = "20000"};
    b->producer = gw_kafka_producer_create(loop, &kc, err);
    if (b->producer == NULL)
        goto fail;
    b->auth = gw_auth_create(b);
    if (b->auth == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto fail;
    }
    if (b->opts.cors_origins != NULL && *b->opts.cors_origins != '\0' &&
        (b->cors = gw_cors_create(b->opts.cors_origins, err)) == NULL)
        goto fail;
    if (b->opts.hooks_config != NULL && *b->opts.hooks_config != '\0' &&
        (b->hooks = gw_hooks_load(b->opts.hooks_config, err)) == NULL)
        goto fail;
    if (b->opts.auth_config != NULL) {
        if (gw_jwt_auth_load(loop, b->opts.auth_config, &b->jwt, err) < 0)
            goto fail;
        struct gw_oidc_provider p;
        for (size_t i = 0; gw_jwt_oidc_get(b->jwt, i, &p); i++)
            if (p.redirect_uri == NULL && b->opts.public_url == NULL) {
                gw_error_set(err, GW_EINVAL, false,
                             "%s: OIDC issuer \"%s\" has no \"redirect_uri\"; set one, or the "
                             "broker's --public-url (GW_PUBLIC_URL) to derive "
                             "<public-url>/auth/oidc/callback",
                             b->opts.auth_config, p.name);
                goto fail;
            }
        gw_jwt_auth_start(b->jwt);
    }
    /* GW_FAULTS=relay_off is fault injection for the tests: runs are
     * committed but never published, as if the broker died right after the
     * commit (tests/integration/test_delivery.py). */
    const char *faults = getenv("GW_FAULTS");
    if (faults != NULL && strstr(faults, "relay_off") != NULL) {
        gw_log_warn("GW_FAULTS=relay_off: the outbox relay is disabled");
    } else {
        b->relay = gw_relay_create(b, err);
        if (b->relay == NULL)
            goto fail;
    }
    /* GW_FAULTS=eager_drop: the runs this broker accepts are committed with
     * their rows leased to it, and then not produced, as if it died between
     * the commit and the produce (decision 0076); the relay (this one or
     * another replica's) must send them when the lease ends. */
    if (faults != NULL && strstr(faults, "eager_drop") != NULL) {
        gw_log_warn("GW_FAULTS=eager_drop: accepted runs are not published until their lease ends");
        b->fault_eager_drop = true;
    }
    /* GW_FAULTS=eager_slow: every batch of submissions is taken as one that
     * took too long to commit (more than 5 s, submit_batch.c): its rows'
     * lease is lifted and the relay sends them within its poll. */
    if (faults != NULL && strstr(faults, "eager_slow") != NULL) {
        gw_log_warn("GW_FAULTS=eager_slow: accepted runs are given back to the relay to publish");
        b->fault_eager_slow = true;
    }
    /* The background services (gw_broker_shutdown closes those created). */
    if ((b->sink = gw_sink_create(b, err)) == NULL ||
        (b->reaper = gw_reaper_create(b, err)) == NULL ||
        (b->webhooks = gw_webhooks_create(b, err)) == NULL ||
        (b->streams = gw_stream_hub_create(b, err)) == NULL ||
        (b->catalogs = gw_catalog_reloader_create(b, err)) == NULL)
        goto fail;

    struct gw_http_server_options ho = {.host = b->opts.listen_host,
                                        .port = b->opts.listen_port,
                                        .max_body_bytes = b->opts.max_body_bytes};
    b->http = gw_http_server_create(loop, &ho, gw_broker_handle, b, err);
    if (b->http == NULL)
        goto fail;
    uv_timer_init(loop, &b->stats_timer);
    b->stats_timer.data = b;
    uv_timer_start(&b->stats_timer, stats_tick, 0, STATS_MS);
    gw_log_info("broker listening on %s:%d with %zu action(s)", b->opts.listen_host,
                gw_http_server_port(b->http), b->catalog->n);
    return b;

fail:
    /* Start-up failure: the process exits; handles already on the loop are
     * closed by shutdown so the loop can end cleanly. */
    gw_broker_shutdown(b, NULL, NULL);
    return NULL;
}

static void free_broker(struct gw_broker *b)
{
    void (*done)(void *) = b->on_closed;
    void *arg = b->on_closed_arg;
    gw_kafka_producer_destroy(b->producer, 5000);
    gw_auth_destroy(b->auth);
    gw_console_destroy(b->console);
    gw_cors_destroy(b->cors);
    gw_hooks_destroy(b->hooks);
    gw_policy_store_destroy(b->policy);
    gw_checkpoint_keys_destroy(b->audit_key);
    gw_catalog_reloader_destroy(b->catalogs);
    gw_catalog_unref(b->catalog);
    free(b);
    if (done != NULL)
        done(arg);
}

static void pg_closed(void *arg)
{
    free_broker(arg);
}

static void after_stats(struct gw_broker *b)
{
    if (b->pg != NULL)
        gw_pg_pool_destroy(b->pg, pg_closed, b);
    else
        free_broker(b);
}

static void stats_closed(uv_handle_t *h)
{
    after_stats(h->data);
}

static void http_closed(void *arg)
{
    struct gw_broker *b = arg;
    gw_relay_destroy(b->relay);
    gw_sink_destroy(b->sink);
    gw_reaper_destroy(b->reaper);
    gw_webhooks_destroy(b->webhooks);
    gw_submit_batch_destroy(b->submits);
    b->submits = NULL;
    b->webhooks = NULL;
    b->relay = NULL;
    b->sink = NULL;
    b->reaper = NULL;
    if (b->stats_timer.data == b) { /* initialised */
        uv_timer_stop(&b->stats_timer);
        uv_close((uv_handle_t *)&b->stats_timer, stats_closed);
    } else {
        after_stats(b);
    }
}

void gw_broker_shutdown(struct gw_broker *b, void (*done)(void *arg), void *arg)
{
    if (b == NULL)
        return;
    b->closing = true;
    b->on_closed = done;
    b->on_closed_arg = arg;
    gw_stream_hub_destroy(b->streams); /* open streams would hold the server open */
    b->streams = NULL;
    gw_jwt_auth_destroy(b->jwt); /* requests waiting for a key refresh get 503 */
    b->jwt = NULL;
    if (b->audit_verify_pid > 0) /* its request is answered 503 when it is gone */
        uv_kill(b->audit_verify_pid, SIGKILL);
    if (b->http != NULL) {
        gw_http_server_destroy(b->http, http_closed, b);
        b->http = NULL;
    } else {
        http_closed(b);
    }
}
