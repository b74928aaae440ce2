#include "claim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw/http_client.h"
#include "gw/log.h"

#define CONNECT_TIMEOUT_MS 3000L
#define REQUEST_TIMEOUT_MS 15000L
#define REPLY_MAX          (4 * 1024 * 1024)

enum claim_state { C_REQUEST, C_BACKOFF, C_DONE };

/* One run of a claim: a single claim has one, a batch several. */
struct claim_item {
    char *run_id;
    gw_claim_cb cb;
    void *arg;
};

struct gw_claim {
    uv_loop_t *loop;
    enum claim_state state;
    struct gw_http_client *http;
    bool own_http; /* made for this claim (no shared client was given) */
    uv_timer_t timer;
    int open; /* the timer and the client, until their close callbacks */
    gw_claim_cb cb;
    void *arg;
    char *url, *auth, *body, *run_id;
    size_t nitems; /* > 0: a batch (POST /internal/v1/claims) */
    struct claim_item *items;
    int max_backoff_ms;
    int tries;
    bool abandoned;
};

int gw_claim_global_init(struct gw_error *err)
{
    return gw_http_client_global_init(err);
}

int gw_claim_backoff_ms(int n, int max_ms)
{
    long ms = 100;
    if (max_ms <= 0)
        max_ms = 5000;
    for (int i = 1; i < n && ms < max_ms; i++)
        ms *= 2;
    return ms > max_ms ? max_ms : (int)ms;
}

static void claim_free(struct gw_claim *c)
{
    for (size_t i = 0; i < c->nitems; i++)
        free(c->items[i].run_id);
    free(c->items);
    free(c->url);
    free(c->auth);
    free(c->body);
    free(c->run_id);
    free(c);
}

static void closed(struct gw_claim *c)
{
    if (--c->open == 0)
        claim_free(c);
}

static void timer_closed(uv_handle_t *h)
{
    closed(h->data);
}

static void http_closed(void *arg)
{
    closed(arg);
}

/* The `detail` of a problem+json body, or a fallback. */
static const char *problem_detail(json_t *j, const char *fallback)
{
    const char *d = json_string_value(json_object_get(j, "detail"));
    if (d == NULL)
        d = json_string_value(json_object_get(j, "code"));
    return d != NULL ? d : fallback;
}

/* What the broker's answer about one run means, for the single endpoint's
 * reply and for each entry of a batch's, so a run gets the same result
 * whichever way it was claimed: 200 with its claim document granted (*reply
 * is the claim), 409 refused, 404 not found, anything else rejected (*reply
 * is the problem); *detail is the problem's detail or code, else the
 * status's own word (`fallback` for a rejection). Both borrowed. */
static enum gw_claim_result answer_of(long status, json_t *claim, json_t *problem,
                                      const char *fallback, json_t **reply, const char **detail)
{
    *reply = problem;
    if (status == 200 && json_is_object(claim)) {
        *reply = claim;
        *detail = "granted";
        return GW_CLAIM_GRANTED;
    }
    if (status == 409) {
        *detail = problem_detail(problem, "claim_refused");
        return GW_CLAIM_REFUSED;
    }
    if (status == 404) {
        *detail = problem_detail(problem, "run_not_found");
        return GW_CLAIM_NOT_FOUND;
    }
    *detail = problem_detail(problem, fallback);
    return GW_CLAIM_REJECTED;
}

/* A batch's answer, entry by entry: each run gets what the single endpoint
 * would have answered for it. */
static void resolve_entries(struct gw_claim *c, json_t *j)
{
    json_t *entries = json_object_get(j, "claims");
    for (size_t i = 0; i < c->nitems; i++) {
        json_t *e = json_array_get(entries, i);
        const char *id = json_string_value(json_object_get(e, "run_id"));
        json_int_t st = json_integer_value(json_object_get(e, "status"));
        struct claim_item *it = &c->items[i];
        json_t *reply;
        const char *detail;
        if (id == NULL || strcasecmp(id, it->run_id) != 0) {
            it->cb(it->arg, GW_CLAIM_REJECTED, NULL, "the batch answer does not list this run");
            continue;
        }
        enum gw_claim_result r =
            answer_of((long)st, json_object_get(e, "claim"), e, "claim failed", &reply, &detail);
        it->cb(it->arg, r, reply, detail);
    }
}

static void resolve(struct gw_claim *c, enum gw_claim_result r, json_t *reply, const char *detail)
{
    c->state = C_DONE;
    if (c->nitems == 0) {
        c->cb(c->arg, r, reply, detail);
    } else if (r == GW_CLAIM_GRANTED) {
        resolve_entries(c, reply);
    } else {
        for (size_t i = 0; i < c->nitems; i++)
            c->items[i].cb(c->items[i].arg, r, reply, detail);
    }
    uv_close((uv_handle_t *)&c->timer, timer_closed);
    if (c->own_http)
        gw_http_client_destroy(c->http, http_closed, c);
}

static void send_request(struct gw_claim *c);

static void backoff_fire(uv_timer_t *t)
{
    struct gw_claim *c = t->data;
    if (c->abandoned)
        resolve(c, GW_CLAIM_ABANDONED, NULL, "abandoned");
    else
        send_request(c);
}

static void retry_later(struct gw_claim *c)
{
    int ms = gw_claim_backoff_ms(c->tries, c->max_backoff_ms);
    if (c->abandoned) {
        resolve(c, GW_CLAIM_ABANDONED, NULL, "abandoned");
        return;
    }
    c->state = C_BACKOFF;
    uv_timer_start(&c->timer, backoff_fire, (uint64_t)ms, 0);
}

static void request_done(void *arg, const struct gw_http_response *resp, const struct gw_error *err)
{
    struct gw_claim *c = arg;
    long status = resp != NULL ? resp->status : 0;
    json_t *j = NULL, *reply;
    const char *detail;
    char buf[300];
    if (resp != NULL && resp->body_len > 0)
        j = json_loadb(resp->body, resp->body_len, 0, NULL);

    if (c->nitems > 0 && status == 404) {
        /* The batch endpoint itself is missing: a broker older than it. */
        resolve(c, GW_CLAIM_UNSUPPORTED, j, "no batch claim endpoint");
    } else if (status == 401 || status == 403) {
        gw_log(GW_LOG_ERROR, c->run_id,
               "claim refused with HTTP %ld: check GW_WORKER_TOKEN / --token; retrying", status);
        retry_later(c);
    } else if ((status == 200 && json_is_object(j)) || (status >= 400 && status < 500)) {
        enum gw_claim_result r = answer_of(status, j, j, "bad request", &reply, &detail);
        if (r == GW_CLAIM_REJECTED) {
            /* Another 4xx: the status is part of what went wrong. */
            snprintf(buf, sizeof(buf), "HTTP %ld: %s", status, detail);
            detail = buf;
        }
        resolve(c, r, reply, detail);
    } else {
        /* 5xx, a 200 that is not JSON, or no answer at all. */
        if (status != 0)
            gw_log(GW_LOG_WARN, c->run_id, "claim: HTTP %ld, retrying", status);
        else
            gw_log(GW_LOG_WARN, c->run_id, "claim: %s, retrying", err->message);
        retry_later(c);
    }
    json_decref(j);
}

static void send_request(struct gw_claim *c)
{
    const char *headers[] = {"Content-Type: application/json", "Accept: application/json", c->auth,
                             NULL};
    struct gw_http_request_options o = {
        .url = c->url,
        .headers = headers,
        .body = c->body,
        .body_len = strlen(c->body),
        .connect_timeout_ms = CONNECT_TIMEOUT_MS,
        .timeout_ms = REQUEST_TIMEOUT_MS,
        .max_body = REPLY_MAX,
    };
    struct gw_error err;
    c->tries++;
    c->state = C_REQUEST;
    if (gw_http_client_request(c->http, &o, request_done, c, &err) == NULL) {
        gw_log(GW_LOG_WARN, c->run_id, "claim: %s, retrying", err.message);
        retry_later(c);
    }
}

struct gw_claim *gw_claim_start(uv_loop_t *loop, const struct gw_claim_params *p, gw_claim_cb cb,
                                void *arg, struct gw_error *err)
{
    struct gw_claim *c = calloc(1, sizeof(*c));
    json_t *body;
    size_t n;
    if (c == NULL)
        goto fail_mem;
    body = json_pack("{s:i, s:s, s:s}", "attempt", p->attempt, "worker_id", p->worker_id,
                     "worker_type", p->worker_type);
    c->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    n = strlen(p->broker_url) + strlen(p->run_id) + 64;
    c->url = malloc(n);
    c->run_id = strdup(p->run_id);
    if (c->body == NULL || c->url == NULL || c->run_id == NULL)
        goto fail_mem;
    /* The run id came from Kafka: it must be a plain token in the path. */
    if (strspn(p->run_id, "0123456789abcdefABCDEF-") != strlen(p->run_id)) {
        gw_error_set(err, GW_EINVAL, false, "run id '%s' is not a uuid", p->run_id);
        goto fail;
    }
    snprintf(c->url, n, "%s%sinternal/v1/runs/%s/claim", p->broker_url,
             p->broker_url[0] && p->broker_url[strlen(p->broker_url) - 1] == '/' ? "" : "/",
             p->run_id);
    if (p->token != NULL && *p->token != '\0') {
        n = strlen(p->token) + 32;
        if ((c->auth = malloc(n)) == NULL)
            goto fail_mem;
        snprintf(c->auth, n, "Authorization: Bearer %s", p->token);
    }
    c->loop = loop;
    c->cb = cb;
    c->arg = arg;
    c->max_backoff_ms = p->max_backoff_ms;
    /* A shared client keeps its connection to the broker alive between
     * claims: no TCP handshake and no new curl handle cache per run. */
    c->http = p->http;
    if (c->http == NULL) {
        if ((c->http = gw_http_client_create(loop, NULL, err)) == NULL)
            goto fail;
        c->own_http = true;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open = c->own_http ? 2 : 1;
    send_request(c);
    return c;
fail_mem:
    gw_error_set(err, GW_ENOMEM, true, "out of memory");
fail:
    if (c != NULL)
        claim_free(c);
    return NULL;
}

struct gw_claim *gw_claim_start_batch(uv_loop_t *loop, const struct gw_claim_params *p,
                                      const struct gw_claim_batch_item *items, size_t n,
                                      struct gw_error *err)
{
    struct gw_claim *c = calloc(1, sizeof(*c));
    json_t *arr = json_array(), *body = NULL;
    size_t len;
    if (c == NULL || arr == NULL || n == 0 || (c->items = calloc(n, sizeof(*c->items))) == NULL)
        goto fail_mem;
    c->nitems = n;
    for (size_t i = 0; i < n; i++) {
        if (strspn(items[i].run_id, "0123456789abcdefABCDEF-") != strlen(items[i].run_id)) {
            gw_error_set(err, GW_EINVAL, false, "run id '%s' is not a uuid", items[i].run_id);
            goto fail;
        }
        c->items[i].cb = items[i].cb;
        c->items[i].arg = items[i].arg;
        if ((c->items[i].run_id = strdup(items[i].run_id)) == NULL ||
            json_array_append_new(arr,
                                  json_pack("{s:s, s:i, s:s}", "run_id", items[i].run_id, "attempt",
                                            items[i].attempt, "worker_id", items[i].worker_id)) < 0)
            goto fail_mem;
    }
    body = json_pack("{s:s, s:O}", "worker_type", p->worker_type, "claims", arr);
    c->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    c->run_id = strdup(items[0].run_id); /* for log lines */
    len = strlen(p->broker_url) + 64;
    if (c->body == NULL || c->run_id == NULL || (c->url = malloc(len)) == NULL)
        goto fail_mem;
    snprintf(c->url, len, "%s%sinternal/v1/claims", p->broker_url,
             p->broker_url[0] && p->broker_url[strlen(p->broker_url) - 1] == '/' ? "" : "/");
    if (p->token != NULL && *p->token != '\0') {
        len = strlen(p->token) + 32;
        if ((c->auth = malloc(len)) == NULL)
            goto fail_mem;
        snprintf(c->auth, len, "Authorization: Bearer %s", p->token);
    }
    json_decref(arr);
    json_decref(body);
    arr = body = NULL;
    c->loop = loop;
    c->max_backoff_ms = p->max_backoff_ms;
    c->http = p->http;
    if (c->http == NULL) {
        if ((c->http = gw_http_client_create(loop, NULL, err)) == NULL)
            goto fail;
        c->own_http = true;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open = c->own_http ? 2 : 1;
    send_request(c);
    return c;
fail_mem:
    gw_error_set(err, GW_ENOMEM, true, "out of memory");
fail:
    json_decref(arr);
    json_decref(body);
    if (c != NULL)
        claim_free(c);
    return NULL;
}

void gw_claim_abandon(struct gw_claim *c)
{
    if (c == NULL || c->state == C_DONE)
        return;
    c->abandoned = true;
    if (c->state == C_BACKOFF) {
        uv_timer_stop(&c->timer);
        resolve(c, GW_CLAIM_ABANDONED, NULL, "abandoned");
    }
}
