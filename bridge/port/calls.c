/*
 * Retried HTTP calls to Port and Gangway (calls.h). Each call is one small
 * state machine:
 *
 *   WAIT_TOKEN --(token)--> SENDING --(answer to keep)--> done
 *        ^                    |  ^
 *        | 401 (Port)         |  | backoff timer
 *        +--------------------+  |
 *                             +--> BACKOFF (transport error, 429, 5xx)
 */
#include "calls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/http_client.h"
#include "gw/log.h"

#define TOKEN_MARGIN_MS 60000

enum call_state { C_WAIT_TOKEN, C_SENDING, C_BACKOFF };

struct call {
    struct pb_calls *c;
    struct call *next_waiting; /* on c->waiting while C_WAIT_TOKEN */
    struct call *prev, *next;  /* on c->all */
    enum call_state state;
    enum pb_target target;
    char *method, *url, *body;
    char **headers; /* NULL-terminated, owned */
    int max_attempts, attempts;
    bool reauthed;
    long delay_ms;
    uv_timer_t timer;
    struct gw_http_request *req;
    pb_done_cb done;
    void *arg;
};

struct pb_calls {
    uv_loop_t *loop;
    struct gw_http_client *http;
    char *port_url, *client_id, *client_secret, *gangway_url, *gangway_token;
    long backoff_ms, backoff_max_ms;
    char *token; /* Port's access token, or NULL */
    uint64_t token_expires;
    bool fetching;
    struct gw_http_request *token_req;
    struct call *waiting;
    struct call *all;
    bool closing;
    struct pb_calls_stats stats;
};

static void call_send(struct call *k);

static void timer_closed(uv_handle_t *h)
{
    struct call *k = h->data;
    free(k->method);
    free(k->url);
    free(k->body);
    for (char **p = k->headers; p != NULL && *p != NULL; p++)
        free(*p);
    free(k->headers);
    free(k);
}

/* Ends a call: its callback, then its memory (after the timer closes). */
static void call_end(struct call *k, const struct pb_answer *a, const struct gw_error *err)
{
    struct pb_calls *c = k->c;
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        c->all = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    uv_timer_stop(&k->timer);
    k->done(k->arg, a, err);
    uv_close((uv_handle_t *)&k->timer, timer_closed);
}

static void call_fail(struct call *k, int code, const char *msg)
{
    struct gw_error e;
    gw_error_clear(&e);
    gw_error_set(&e, code, false, "%s", msg);
    struct pb_answer a = {.status = 0, .body = ""};
    call_end(k, &a, &e);
}

static void on_backoff(uv_timer_t *t)
{
    struct call *k = t->data;
    call_send(k);
}

static void call_retry(struct call *k, const char *why)
{
    struct pb_calls *c = k->c;
    if (k->max_attempts > 0 && k->attempts >= k->max_attempts) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s %s: gave up after %d attempts (%s)", k->method, k->url,
                 k->attempts, why);
        gw_log_warn("%s", msg);
        call_fail(k, GW_EUNAVAIL, msg);
        return;
    }
    c->stats.retries++;
    k->delay_ms = k->delay_ms == 0 ? c->backoff_ms : k->delay_ms * 2;
    if (k->delay_ms > c->backoff_max_ms)
        k->delay_ms = c->backoff_max_ms;
    gw_log_info("%s %s: %s; retrying in %ld ms", k->method, k->url, why, k->delay_ms);
    k->state = C_BACKOFF;
    uv_timer_start(&k->timer, on_backoff, (uint64_t)k->delay_ms, 0);
}

/* ------------------------------------------------------------ Port token */

static void token_wake(struct pb_calls *c, bool ok)
{
    struct call *w = c->waiting;
    c->waiting = NULL;
    while (w != NULL) {
        struct call *next = w->next_waiting;
        w->next_waiting = NULL;
        if (ok)
            call_send(w);
        else
            call_retry(w, "no Port access token");
        w = next;
    }
}

static void token_done(void *arg, const struct gw_http_response *resp, const struct gw_error *err)
{
    struct pb_calls *c = arg;
    c->token_req = NULL;
    c->fetching = false;
    if (c->closing)
        return;
    json_t *j = err == NULL ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    const char *tok = json_string_value(json_object_get(j, "accessToken"));
    json_int_t exp = json_integer_value(json_object_get(j, "expiresIn"));
    if (err != NULL || resp->status != 200 || tok == NULL) {
        gw_log_warn("Port: POST /v1/auth/access_token failed: %s",
                    err != NULL ? err->message : resp->body);
        json_decref(j);
        token_wake(c, false);
        return;
    }
    free(c->token);
    c->token = strdup(tok);
    uint64_t life = exp > 0 ? (uint64_t)exp * 1000 : 3600000;
    c->token_expires =
        uv_now(c->loop) + (life > 2 * TOKEN_MARGIN_MS ? life - TOKEN_MARGIN_MS : life / 2);
    c->stats.token_fetches++;
    json_decref(j);
    token_wake(c, c->token != NULL);
}

static void token_fetch(struct pb_calls *c)
{
    if (c->fetching)
        return;
    json_t *b = json_pack("{s:s, s:s}", "clientId", c->client_id, "clientSecret", c->client_secret);
    char *body = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    char url[1024];
    snprintf(url, sizeof(url), "%s/v1/auth/access_token", c->port_url);
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    struct gw_http_request_options o = {.method = "POST",
                                        .url = url,
                                        .headers = hdrs,
                                        .body = body,
                                        .body_len = body != NULL ? strlen(body) : 0};
    struct gw_error e;
    gw_error_clear(&e);
    c->fetching = true;
    c->token_req = gw_http_client_request(c->http, &o, token_done, c, &e);
    free(body);
    if (c->token_req == NULL) {
        c->fetching = false;
        token_wake(c, false);
    }
}

/* ------------------------------------------------------------------ calls */

static bool retried_status(long s)
{
    return s == 429 || s == 408 || s >= 500;
}

static void call_answer(void *arg, const struct gw_http_response *resp, const struct gw_error *err)
{
    struct call *k = arg;
    struct pb_calls *c = k->c;
    k->req = NULL;
    if (c->closing) {
        call_fail(k, GW_ECLOSED, "shutting down");
        return;
    }
    if (err != NULL && err->code == GW_ELIMIT) {
        call_fail(k, GW_ELIMIT, err->message); /* as large again next time */
        return;
    }
    if (err != NULL) {
        call_retry(k, err->message);
        return;
    }
    if (k->target == PB_PORT && resp->status == 401 && !k->reauthed) {
        /* The token expired early or was revoked: once more, with a new one. */
        k->reauthed = true;
        free(c->token);
        c->token = NULL;
        call_send(k);
        return;
    }
    if (retried_status(resp->status)) {
        char why[64];
        snprintf(why, sizeof(why), "HTTP %ld", resp->status);
        call_retry(k, why);
        return;
    }
    struct pb_answer a = {.status = resp->status,
                          .body = resp->body,
                          .json = json_loadb(resp->body, resp->body_len, 0, NULL),
                          .replayed = gw_http_response_header(resp, "idempotent-replayed")};
    json_t *j = a.json;
    call_end(k, &a, NULL);
    json_decref(j);
}

static void call_send(struct call *k)
{
    struct pb_calls *c = k->c;
    char auth[8300];
    if (k->target == PB_PORT) {
        if (c->token == NULL || uv_now(c->loop) >= c->token_expires) {
            k->state = C_WAIT_TOKEN;
            k->next_waiting = c->waiting;
            c->waiting = k;
            token_fetch(c);
            return;
        }
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
    } else {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->gangway_token);
    }
    const char *hdrs[24];
    size_t n = 0;
    hdrs[n++] = auth;
    if (k->body != NULL)
        hdrs[n++] = "Content-Type: application/json";
    for (char **p = k->headers; p != NULL && *p != NULL && n < 23; p++)
        hdrs[n++] = *p;
    hdrs[n] = NULL;
    struct gw_http_request_options o = {.method = k->method,
                                        .url = k->url,
                                        .headers = hdrs,
                                        .body = k->body,
                                        .body_len = k->body != NULL ? strlen(k->body) : 0};
    struct gw_error e;
    gw_error_clear(&e);
    k->attempts++;
    k->state = C_SENDING;
    k->req = gw_http_client_request(c->http, &o, call_answer, k, &e);
    if (k->req == NULL)
        call_retry(k, e.message);
}

int pb_call(struct pb_calls *c, const struct pb_call_options *o, pb_done_cb done, void *arg,
            struct gw_error *err)
{
    if (c->closing)
        return gw_error_set(err, GW_ECLOSED, false, "shutting down");
    struct call *k = calloc(1, sizeof(*k));
    size_t nh = 0;
    for (const char *const *h = o->headers; h != NULL && *h != NULL; h++)
        nh++;
    if (k == NULL || (k->headers = calloc(nh + 1, sizeof(char *))) == NULL)
        goto oom;
    k->c = c;
    k->target = o->target;
    k->method = strdup(o->method);
    const char *base = o->target == PB_PORT ? c->port_url : c->gangway_url;
    size_t ul = strlen(base) + strlen(o->path) + 1;
    k->url = malloc(ul);
    k->body = o->body != NULL ? strdup(o->body) : NULL;
    for (size_t i = 0; i < nh; i++)
        if ((k->headers[i] = strdup(o->headers[i])) == NULL)
            goto oom;
    if (k->method == NULL || k->url == NULL || (o->body != NULL && k->body == NULL))
        goto oom;
    snprintf(k->url, ul, "%s%s", base, o->path);
    k->max_attempts = o->max_attempts;
    k->done = done;
    k->arg = arg;
    uv_timer_init(c->loop, &k->timer);
    k->timer.data = k;
    k->next = c->all;
    if (c->all != NULL)
        c->all->prev = k;
    c->all = k;
    call_send(k);
    return 0;
oom:
    if (k != NULL) {
        free(k->method);
        free(k->url);
        free(k->body);
        for (char **p = k->headers; p != NULL && *p != NULL; p++)
            free(*p);
        free(k->headers);
        free(k);
    }
    return gw_error_set(err, GW_ENOMEM, false, "out of memory");
}

static char *trimmed(const char *url)
{
    char *s = strdup(url);
    size_t n = s != NULL ? strlen(s) : 0;
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
    return s;
}

struct pb_calls *pb_calls_create(uv_loop_t *loop, const struct pb_calls_options *o,
                                 struct gw_error *err)
{
    struct pb_calls *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->port_url = trimmed(o->port_url);
    c->gangway_url = trimmed(o->gangway_url);
    c->client_id = strdup(o->client_id);
    c->client_secret = strdup(o->client_secret);
    c->gangway_token = strdup(o->gangway_token);
    c->backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : 500;
    c->backoff_max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : 30000;
    if (c->port_url == NULL || c->gangway_url == NULL || c->client_id == NULL ||
        c->client_secret == NULL || c->gangway_token == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        pb_calls_destroy(c);
        return NULL;
    }
    c->http = gw_http_client_create(loop, NULL, err);
    if (c->http == NULL) {
        pb_calls_destroy(c);
        return NULL;
    }
    return c;
}

void pb_calls_destroy(struct pb_calls *c)
{
    if (c == NULL)
        return;
    c->closing = true;
    /* Every call ends with GW_ECLOSED: those sending through the client's
     * cancellation, the others here. */
    while (c->all != NULL) {
        struct call *k = c->all;
        if (k->req != NULL)
            gw_http_request_cancel(k->req); /* call_answer ends it */
        else
            call_fail(k, GW_ECLOSED, "shutting down");
    }
    c->waiting = NULL;
    gw_http_client_destroy(c->http, NULL, NULL);
    free(c->token);
    free(c->port_url);
    free(c->gangway_url);
    free(c->client_id);
    if (c->client_secret != NULL)
        memset(c->client_secret, 0, strlen(c->client_secret));
    free(c->client_secret);
    free(c->gangway_token);
    free(c);
}

void pb_calls_stats(const struct pb_calls *c, struct pb_calls_stats *out)
{
    *out = c->stats;
}
