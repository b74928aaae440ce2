/*
 * Fetching "jwks_url" key sets: libcurl on the loop's thread pool (blocking
 * I/O never runs on the loop), at start, every "jwks_refresh_s", and on a
 * "kid" miss at most every "jwks_min_refresh_s". A failed fetch keeps the
 * previous set: an identity provider's outage must not log everyone out.
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "gw/log.h"
#include "issuer_int.h"

#define FETCH_TIMEOUT_MS 10000L
#define FETCH_MAX_BYTES  (1 << 20)
#define TICK_MS          1000

struct body {
    char *data;
    size_t len;
    bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > FETCH_MAX_BYTES) {
        b->too_big = true;
        return 0;
    }
    char *grown = realloc(b->data, b->len + n + 1);
    if (grown == NULL)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Thread pool: fills src->fetched or src->fetch_err, touches nothing else. */
static void fetch_work(uv_work_t *req)
{
    struct key_source *src = req->data;
    struct body body = {0};
    long status = 0;
    CURL *c = curl_easy_init();

    gw_error_clear(&src->fetch_err);
    src->fetched = NULL;
    if (c == NULL) {
        gw_error_set(&src->fetch_err, GW_ENOMEM, true, "curl_easy_init failed");
        return;
    }
    curl_easy_setopt(c, CURLOPT_URL, src->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, FETCH_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, FETCH_TIMEOUT_MS / 2);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "gangway-broker");
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (body.too_big)
        gw_error_set(&src->fetch_err, GW_ELIMIT, true, "key set larger than %d bytes",
                     FETCH_MAX_BYTES);
    else if (cc != CURLE_OK)
        gw_error_set(&src->fetch_err, GW_EUNAVAIL, true, "%s", curl_easy_strerror(cc));
    else if (status != 200)
        gw_error_set(&src->fetch_err, GW_EUNAVAIL, true, "HTTP status %ld", status);
    else
        gw_jwks_parse_text(body.data != NULL ? body.data : "", body.len, 0, &src->fetched,
                           &src->fetch_err);
    free(body.data);
}

static void fetch_done(uv_work_t *req, int status)
{
    struct key_source *src = req->data;
    struct gw_jwt_auth *a = src->auth;
    uint64_t now = uv_now(a->loop);

    src->fetching = false;
    a->fetches--;
    if (src->fetched != NULL && status == 0) {
        gw_jwks_destroy(src->keys);
        src->keys = src->fetched;
        src->fetched = NULL;
        src->next_due_ms = now + (uint64_t)src->refresh_s * 1000;
        gw_log_debug("jwks %s: %zu key(s)", src->url, gw_jwks_count(src->keys));
    } else {
        gw_jwks_destroy(src->fetched);
        src->fetched = NULL;
        src->next_due_ms = now + (uint64_t)src->min_refresh_s * 1000;
        gw_log_warn("jwks %s: fetch failed (%s); keeping the previous key set", src->url,
                    status != 0 ? uv_strerror(status) : src->fetch_err.message);
    }
    /* Each waiter is answered once, with whatever set we now have. */
    struct waiter *w = src->waiters;
    src->waiters = NULL;
    src->nwaiters = 0;
    while (w != NULL) {
        struct waiter *next = w->next;
        gw_jwt_waiter_resume(a, w, a->closing);
        w = next;
    }
    gw_jwt_auth_maybe_free(a);
}

void gw_jwt_source_fetch(struct key_source *src)
{
    struct gw_jwt_auth *a = src->auth;
    if (src->fetching || a->closing || src->url == NULL)
        return;
    src->work.data = src;
    src->last_fetch_ms = uv_now(a->loop);
    src->fetched_once = true;
    if (uv_queue_work(a->loop, &src->work, fetch_work, fetch_done) != 0) {
        gw_log_warn("jwks %s: cannot queue the fetch", src->url);
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
        struct key_source *src = &a->issuers[i].src;
        if (src->url != NULL && !src->fetching && now >= src->next_due_ms)
            gw_jwt_source_fetch(src);
    }
}

void gw_jwt_auth_start(struct gw_jwt_auth *a)
{
    if (a == NULL || a->started || a->closing)
        return;
    a->started = true;
    bool any_url = false;
    for (size_t i = 0; i < a->n; i++)
        any_url |= a->issuers[i].src.url != NULL;
    if (any_url)
        uv_timer_start(&a->timer, tick, 0, TICK_MS);
}

void gw_jwt_auth_maybe_free(struct gw_jwt_auth *a)
{
    if (!a->closing || a->timer_open || a->fetches > 0)
        return;
    gw_jwt_auth_free_issuers(a);
    free(a);
}

static void timer_closed(uv_handle_t *h)
{
    struct gw_jwt_auth *a = h->data;
    a->timer_open = false;
    gw_jwt_auth_maybe_free(a);
}

void gw_jwt_auth_destroy(struct gw_jwt_auth *a)
{
    if (a == NULL || a->closing)
        return;
    a->closing = true;
    for (size_t i = 0; i < a->n; i++) {
        struct key_source *src = &a->issuers[i].src;
        struct waiter *w = src->waiters;
        src->waiters = NULL;
        src->nwaiters = 0;
        while (w != NULL) {
            struct waiter *next = w->next;
            gw_jwt_waiter_resume(a, w, true);
            w = next;
        }
    }
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, timer_closed);
}
