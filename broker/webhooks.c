/*
 * Webhook delivery: drains gw_webhooks (written in the same transaction as
 * what they announce: a resource about to expire, approvals requested and
 * decided, break-glass runs) and POSTs each payload as JSON to the configured
 * URL, with retries and backoff, until it is accepted (2xx) or
 * GW_WEBHOOK_MAX_ATTEMPTS attempts have failed (the row is then marked
 * failed_at and counted). Delivery is at least once: a receiver deduplicates
 * on X-Gangway-Delivery. With GW_WEBHOOK_SECRET set, each request carries
 * X-Gangway-Timestamp and X-Gangway-Signature: v1=HMAC-SHA256(secret,
 * "<timestamp>.<body>") in hex, so a receiver can check it came from us and
 * is fresh (docs/webhooks.md).
 *
 * The HTTP call goes through the library's non-blocking client
 * (lib/gw/http_client.h) on the broker's loop, so a slow receiver never
 * blocks it; rows are leased with SKIP LOCKED so broker replicas share the
 * work and a crashed sender's rows come back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "gw/crypto.h"
#include "gw/http_client.h"
#include "gw/log.h"
#include "notify.h"
#include "policy.h"

#define BATCH          20
#define TICK_MS        1000
#define TIMEOUT_MS     10000
#define BACKOFF_CAP_MS (15 * 60 * 1000)

struct delivery {
    struct gw_webhooks *wh;
    long long id;
    int attempts;
    char kind[64];
    char *payload; /* the body sent (notify.c made it from the stored payload) */
    char *url;     /* where to */
    long status;
    char error[256];
};

struct gw_webhooks {
    struct gw_broker *b;
    char *url;
    char *secret; /* HMAC key for X-Gangway-Signature; NULL = unsigned */
    struct gw_http_client *http;
    int max_attempts;
    long backoff_ms;
    uv_timer_t timer;
    int in_flight;
    bool busy;
    bool closed;
    bool timer_closed;
    bool http_closed;
};

static void maybe_free(struct gw_webhooks *wh)
{
    if (wh->closed && wh->timer_closed && wh->http_closed && !wh->busy && wh->in_flight == 0) {
        free(wh->url);
        free(wh->secret);
        free(wh);
    }
}

static void post_done(void *arg, const struct gw_http_response *resp, const struct gw_error *error);

/* Starts the POST of one delivery. Returns 0, or -1 when it could not start
 * (and post_done is not called). */
static int post_start(struct delivery *d)
{
    char lines[5][200], sig[GW_SHA256_HEX_LEN + 1];
    const char *headers[8] = {"Content-Type: application/json", lines[0], lines[1], lines[2]};
    size_t blen = strlen(d->payload);
    struct gw_http_request_options o = {
        .url = d->url,
        .headers = headers,
        .body = d->payload,
        .body_len = blen,
        .user_agent = "gangway-webhooks/1",
        .timeout_ms = TIMEOUT_MS,
        .discard_body = true, /* only the status counts */
    };
    struct gw_error err;

    snprintf(lines[0], sizeof(lines[0]), "X-Gangway-Delivery: %lld", d->id);
    snprintf(lines[1], sizeof(lines[1]), "X-Gangway-Event: %s", d->kind);
    snprintf(lines[2], sizeof(lines[2]), "X-Gangway-Attempt: %d", d->attempts);
    if (d->wh->secret != NULL) {
        /* Signed text: "<unix seconds>.<body>", so a replay of an old body
         * with a new timestamp does not verify. */
        char ts[24];
        snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
        size_t tlen = strlen(ts);
        char *signed_text = malloc(tlen + 1 + blen + 1);
        if (signed_text != NULL) {
            memcpy(signed_text, ts, tlen);
            signed_text[tlen] = '.';
            memcpy(signed_text + tlen + 1, d->payload, blen + 1);
            gw_hmac_sha256_hex(d->wh->secret, strlen(d->wh->secret), signed_text, tlen + 1 + blen,
                               sig);
            free(signed_text);
            snprintf(lines[3], sizeof(lines[3]), "X-Gangway-Timestamp: %s", ts);
            snprintf(lines[4], sizeof(lines[4]), "X-Gangway-Signature: v1=%s", sig);
            headers[4] = lines[3];
            headers[5] = lines[4];
        }
    }
    if (gw_http_client_request(d->wh->http, &o, post_done, d, &err) == NULL) {
        gw_log_warn("webhooks: delivery %lld (%s) not sent: %s", d->id, d->kind, err.message);
        return -1;
    }
    return 0;
}

static void recorded(void *arg, const PGresult *res, const struct gw_error *err)
{
    (void)arg;
    (void)res;
    if (err != NULL && err->code != GW_ECLOSED)
        gw_log_warn("webhooks: recording a delivery failed (it will be sent again): %s",
                    err->message);
}

static void post_done(void *arg, const struct gw_http_response *resp, const struct gw_error *error)
{
    struct delivery *d = arg;
    struct gw_webhooks *wh = d->wh;
    char id[24], err[300];

    if (resp != NULL)
        d->status = resp->status;
    else
        snprintf(d->error, sizeof(d->error), "%.200s", error->message);

    wh->in_flight--;
    snprintf(id, sizeof(id), "%lld", d->id);
    if (!wh->closed) {
        if (d->status >= 200 && d->status < 300) {
            const char *params[] = {id};
            wh->b->metrics.webhooks_sent++;
            gw_pg_query(wh->b->pg, "webhook_sent",
                        "UPDATE gw_webhooks SET sent_at = clock_timestamp(), lease_until = NULL"
                        " WHERE id = $1::bigint",
                        1, params, recorded, NULL);
        } else if (d->attempts >= wh->max_attempts) {
            if (d->status > 0)
                snprintf(err, sizeof(err), "gave up after %d attempts; last: HTTP %ld", d->attempts,
                         d->status);
            else
                snprintf(err, sizeof(err), "gave up after %d attempts; last: %s", d->attempts,
                         d->error);
            gw_log_error("webhooks: delivery %lld (%s) %s", d->id, d->kind, err);
            wh->b->metrics.webhooks_given_up++;
            const char *params[] = {id, err};
            gw_pg_query(wh->b->pg, "webhook_give_up",
                        "UPDATE gw_webhooks SET last_error = $2, lease_until = NULL,"
                        " failed_at = clock_timestamp() WHERE id = $1::bigint",
                        2, params, recorded, NULL);
        } else {
            char delay[32];
            long long ms = wh->backoff_ms;
            for (int i = 1; i < d->attempts && ms < BACKOFF_CAP_MS; i++)
                ms *= 2;
            if (ms > BACKOFF_CAP_MS)
                ms = BACKOFF_CAP_MS;
            snprintf(delay, sizeof(delay), "%lld", ms);
            if (d->status > 0)
                snprintf(err, sizeof(err), "HTTP %ld", d->status);
            else
                snprintf(err, sizeof(err), "%s", d->error);
            gw_log_warn(
                "webhooks: delivery %lld (%s) failed (attempt %d of %d, next in %lld ms): %s",
                d->id, d->kind, d->attempts, wh->max_attempts, ms, err);
            wh->b->metrics.webhooks_failed++;
            const char *params[] = {id, err, delay};
            /* Backoff: GW_WEBHOOK_BACKOFF_MS doubling per attempt, at most 15 minutes. */
            gw_pg_query(wh->b->pg, "webhook_failed",
                        "UPDATE gw_webhooks SET last_error = $2, lease_until = NULL,"
                        " next_at = clock_timestamp() + make_interval(secs => $3::bigint / 1000.0)"
                        " WHERE id = $1::bigint",
                        3, params, recorded, NULL);
        }
    }
    free(d->payload);
    free(d->url);
    free(d);
    maybe_free(wh);
}

static void routed(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_webhooks *wh = arg;
    (void)res;
    wh->in_flight--;
    if (err != NULL && err->code != GW_ECLOSED)
        gw_log_warn("webhooks: routing a notification failed (it is routed again): %s",
                    err->message);
    maybe_free(wh);
}

/* A notification as written (route NULL): one delivery row per matching
 * route of the policy, each retried on its own; the notification itself
 * goes on to the default URL, or is closed when there is none (decision
 * 0056). Returns true when the row itself is to be delivered now. */
static bool route(struct gw_webhooks *wh, const char *id, const char *kind, const char *payload)
{
    const json_t *routes = gw_policy_notifications(gw_policy_store_current(wh->b->policy));
    if (routes == NULL && wh->url != NULL)
        return true; /* as before routing existed: the default URL only */
    json_t *doc = routes != NULL ? json_loads(payload, 0, NULL) : NULL;
    json_t *targets = doc != NULL ? gw_notify_targets(routes, kind, doc) : json_array();
    json_decref(doc);
    size_t n = json_array_size(targets);
    char *list = targets != NULL ? json_dumps(targets, JSON_COMPACT) : NULL;
    json_decref(targets);
    if (list == NULL)
        return wh->url != NULL;
    const char *params[] = {id, list, wh->url != NULL ? "default" : NULL};
    /* Children first, then the parent marked routed (or closed), in one
     * statement: a crash in between routes it again, never half. */
    if (gw_pg_query(wh->b->pg, "webhook_route",
                    "WITH kids AS (INSERT INTO gw_webhooks (kind, payload, target, format, route,"
                    " parent_id) SELECT w.kind, w.payload, t.url, t.format, t.route, w.id"
                    " FROM gw_webhooks w, jsonb_to_recordset($2::jsonb) AS t(url text,"
                    " format text, route text) WHERE w.id = $1::bigint RETURNING 1)"
                    " UPDATE gw_webhooks SET route = coalesce($3, '-'),"
                    " sent_at = CASE WHEN $3::text IS NULL THEN clock_timestamp() ELSE sent_at END,"
                    " lease_until = CASE WHEN $3::text IS NULL THEN NULL ELSE lease_until END,"
                    " last_error = CASE WHEN $3::text IS NULL THEN CASE WHEN (SELECT count(*)"
                    " FROM kids) = 0 THEN 'no webhook URL configured' ELSE 'routed to '"
                    " || (SELECT count(*) FROM kids) || ' route(s); no default URL' END"
                    " ELSE last_error END"
                    " WHERE id = $1::bigint",
                    3, params, routed, wh) == 0)
        wh->in_flight++;
    free(list);
    if (n > 0)
        gw_log_info("webhooks: notification %s (%s) routed to %zu route(s)", id, kind, n);
    return wh->url != NULL;
}

static void leased(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_webhooks *wh = arg;
    wh->busy = false;
    if (wh->closed || err != NULL) {
        maybe_free(wh);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 0), *kind = PQgetvalue(res, i, 3);
        bool unrouted = PQgetisnull(res, i, 6);
        if (unrouted && !route(wh, id, kind, PQgetvalue(res, i, 1)))
            continue;
        const char *target = !PQgetisnull(res, i, 4) ? PQgetvalue(res, i, 4) : wh->url;
        if (target == NULL)
            continue; /* the default URL went away; closed by the next drop */
        struct delivery *d = calloc(1, sizeof(*d));
        if (d == NULL)
            continue;
        d->wh = wh;
        d->id = atoll(id);
        d->attempts = atoi(PQgetvalue(res, i, 2));
        snprintf(d->kind, sizeof(d->kind), "%s", kind);
        d->payload = gw_notify_body(PQgetvalue(res, i, 5), kind, PQgetvalue(res, i, 1),
                                    wh->b->opts.public_url);
        d->url = strdup(target);
        if (d->payload == NULL || d->url == NULL || post_start(d) != 0) {
            free(d->payload);
            free(d->url);
            free(d);
            continue;
        }
        wh->in_flight++;
    }
    maybe_free(wh);
}

static void tick(uv_timer_t *t)
{
    struct gw_webhooks *wh = t->data;
    if (wh->busy || wh->closed || wh->in_flight > 0)
        return;
    wh->busy = true;
    int rc;
    /* Every due row, whether or not GW_WEBHOOK_URL is set: the policy's
     * routes may want it, and a row nobody wants is closed by route(). */
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", BATCH);
    const char *params[] = {limit};
    rc = gw_pg_query(
        wh->b->pg, "webhook_lease",
        "UPDATE gw_webhooks w SET lease_until = clock_timestamp() + interval '180 seconds',"
        " attempts = w.attempts + 1 WHERE w.id IN (SELECT id FROM gw_webhooks"
        " WHERE sent_at IS NULL AND failed_at IS NULL AND next_at <= clock_timestamp()"
        " AND (lease_until IS NULL OR lease_until < clock_timestamp()) ORDER BY id"
        " LIMIT $1::int FOR UPDATE SKIP LOCKED)"
        " RETURNING w.id, w.payload::text, w.attempts, w.kind, w.target, w.format, w.route",
        1, params, leased, wh);
    if (rc < 0)
        wh->busy = false;
}

struct gw_webhooks *gw_webhooks_create(struct gw_broker *b, struct gw_error *err)
{
    struct gw_webhooks *wh = calloc(1, sizeof(*wh));
    if (wh == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    wh->b = b;
    if (b->opts.webhook_url != NULL && b->opts.webhook_url[0] != '\0')
        wh->url = strdup(b->opts.webhook_url);
    if (b->opts.webhook_secret != NULL && b->opts.webhook_secret[0] != '\0')
        wh->secret = strdup(b->opts.webhook_secret);
    wh->max_attempts = b->opts.webhook_max_attempts > 0 ? b->opts.webhook_max_attempts : 10;
    wh->backoff_ms = b->opts.webhook_backoff_ms > 0 ? b->opts.webhook_backoff_ms : 5000;
    wh->http = gw_http_client_create(b->loop, NULL, err);
    if (wh->http == NULL) {
        free(wh->url);
        free(wh->secret);
        free(wh);
        return NULL;
    }
    /* With no URL we only close rows; the result rows then go nowhere. */
    uv_timer_init(b->loop, &wh->timer);
    wh->timer.data = wh;
    uv_timer_start(&wh->timer, tick, TICK_MS, TICK_MS);
    return wh;
}

static void timer_closed(uv_handle_t *h)
{
    struct gw_webhooks *wh = h->data;
    wh->timer_closed = true;
    maybe_free(wh);
}

static void http_closed(void *arg)
{
    struct gw_webhooks *wh = arg;
    wh->http_closed = true;
    maybe_free(wh);
}

void gw_webhooks_destroy(struct gw_webhooks *wh)
{
    if (wh == NULL)
        return;
    wh->closed = true;
    uv_timer_stop(&wh->timer);
    uv_close((uv_handle_t *)&wh->timer, timer_closed);
    /* Deliveries in flight end with GW_ECLOSED and are not recorded: their
     * leases run out and another replica (or the next start) sends them. */
    gw_http_client_destroy(wh->http, http_closed, wh);
}
