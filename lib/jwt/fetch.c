/*
 * Fetching "jwks_url" key sets with the library's non-blocking HTTP client
 * (lib/gw/http_client.h) on the loop, at start, every "jwks_refresh_s",
 * and on a "kid" miss at most every "jwks_min_refresh_s". A failed fetch
 * keeps the previous set: an identity provider's outage must not log
 * everyone out.
 */
#include <stdlib.h>
#include <string.h>

#include "gw/log.h"
#include "issuer_int.h"

#define FETCH_TIMEOUT_MS 10000L
#define FETCH_MAX_BYTES  (1 << 20)
#define TICK_MS          1000

/* The key set in a response, or NULL with `err` filled. */
static struct gw_jwks *parse_reply(const struct gw_http_response *resp,
                                   const struct gw_error *http_err, struct gw_error *err)
{
    struct gw_jwks *ks = NULL;
    if (http_err != NULL && http_err->code == GW_ELIMIT)
        gw_error_set(err, GW_ELIMIT, true, "key set larger than %d bytes", FETCH_MAX_BYTES);
    else if (http_err != NULL)
        gw_error_set(err, GW_EUNAVAIL, true, "%s", http_err->message);
    else if (resp->status != 200)
        gw_error_set(err, GW_EUNAVAIL, true, "HTTP status %ld", resp->status);
    else
        gw_jwks_parse_text(resp->body, resp->body_len, 0, &ks, err);
    return ks;
}

static void fetch_done(void *arg, const struct gw_http_response *resp,
                       const struct gw_error *http_err)
{
    struct gw__jwt_key_source *src = arg;
    struct gw_jwt_auth *a = src->auth;
    uint64_t now = uv_now(a->loop);
    struct gw_error err;
    struct gw_jwks *fetched;

    src->fetching = false;
    a->fetches--;
    if (a->closing) { /* cancelled by gw_jwt_auth_destroy: nobody waits */
        gw__jwt_auth_maybe_free(a);
        return;
    }
    gw_error_clear(&err);
    fetched = parse_reply(resp, http_err, &err);
    if (fetched != NULL) {
        gw_jwks_destroy(src->keys);
        src->keys = fetched;
        src->next_due_ms = now + (uint64_t)src->refresh_s * 1000;
        gw_log_debug("jwks %s: %zu key(s)", src->url, gw_jwks_count(src->keys));
    } else {
        src->next_due_ms = now + (uint64_t)src->min_refresh_s * 1000;
        gw_log_warn("jwks %s: fetch failed (%s); keeping the previous key set", src->url,
                    err.message);
    }
    /* Each waiter is answered once, with whatever set we now have. */
    struct gw__jwt_waiter *w = src->waiters;
    src->waiters = NULL;
    src->nwaiters = 0;
    while (w != NULL) {
        struct gw__jwt_waiter *next = w->next;
        gw__jwt_waiter_resume(a, w, a->closing);
        w = next;
    }
    gw__jwt_auth_maybe_free(a);
}

bool gw__jwt_http(struct gw_jwt_auth *a, struct gw_error *err)
{
    if (a->http != NULL)
        return true;
    if ((a->http = gw_http_client_create(a->loop, NULL, err)) == NULL)
        return false;
    a->http_open = true;
    return true;
}

void gw__jwt_source_fetch(struct gw__jwt_key_source *src)
{
    struct gw_jwt_auth *a = src->auth;
    struct gw_http_request_options o = {
        .url = src->url,
        .user_agent = "gangway-broker",
        .connect_timeout_ms = FETCH_TIMEOUT_MS / 2,
        .timeout_ms = FETCH_TIMEOUT_MS,
        .max_body = FETCH_MAX_BYTES,
    };
    struct gw_error err;
    if (src->fetching || a->closing || src->url == NULL)
        return;
    src->last_fetch_ms = uv_now(a->loop);
    src->fetched_once = true;
    if (!gw__jwt_http(a, &err)) {
        gw_log_warn("jwks %s: cannot start the fetch: %s", src->url, err.message);
        return;
    }
    if (gw_http_client_request(a->http, &o, fetch_done, src, &err) == NULL) {
        gw_log_warn("jwks %s: cannot start the fetch: %s", src->url, err.message);
        return;
    }
    src->fetching = true;
    a->fetches++;
}

static void tick(uv_timer_t *t)
{
    struct gw_jwt_auth *a = t->data;
    uint64_t now = uv_now(a->loop);
    for (size_t i = 0; i < a->n; i++) {
        struct gw__jwt_key_source *src = &a->issuers[i].src;
        if (src->url != NULL && !src->fetching && now >= src->next_due_ms)
            gw__jwt_source_fetch(src);
    }
    gw__jwt_oidc_tick(a);
}

void gw_jwt_auth_start(struct gw_jwt_auth *a)
{
    if (a == NULL || a->started || a->closing)
        return;
    a->started = true;
    bool any_url = false;
    for (size_t i = 0; i < a->n; i++)
        any_url |= a->issuers[i].src.url != NULL || a->issuers[i].oidc != NULL;
    if (any_url)
        uv_timer_start(&a->timer, tick, 0, TICK_MS);
}

void gw__jwt_auth_maybe_free(struct gw_jwt_auth *a)
{
    if (!a->closing || a->timer_open || a->http_open || a->fetches > 0)
        return;
    gw__jwt_auth_free_issuers(a);
    free(a);
}

static void http_closed(void *arg)
{
    struct gw_jwt_auth *a = arg;
    a->http_open = false;
    gw__jwt_auth_maybe_free(a);
}

static void timer_closed(uv_handle_t *h)
{
    struct gw_jwt_auth *a = h->data;
    a->timer_open = false;
    gw__jwt_auth_maybe_free(a);
}

void gw_jwt_auth_destroy(struct gw_jwt_auth *a)
{
    if (a == NULL || a->closing)
        return;
    a->closing = true;
    for (size_t i = 0; i < a->n; i++) {
        struct gw__jwt_key_source *src = &a->issuers[i].src;
        struct gw__jwt_waiter *w = src->waiters;
        src->waiters = NULL;
        src->nwaiters = 0;
        while (w != NULL) {
            struct gw__jwt_waiter *next = w->next;
            gw__jwt_waiter_resume(a, w, true);
            w = next;
        }
    }
    gw__jwt_oidc_close(a);
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, timer_closed);
    /* Fetches in flight end now (fetch_done sees `closing`). */
    gw_http_client_destroy(a->http, http_closed, a);
}
