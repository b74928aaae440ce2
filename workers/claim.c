#include "claim.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/log.h"

#define CONNECT_TIMEOUT_MS 3000L
#define REQUEST_TIMEOUT_MS 15000L
#define REPLY_MAX          (4 * 1024 * 1024)

enum claim_state { C_REQUEST, C_BACKOFF, C_DONE };

struct gw_claim {
    uv_loop_t *loop;
    enum claim_state state;
    uv_work_t work;
    uv_timer_t timer;
    gw_claim_cb cb;
    void *arg;
    char *url, *auth, *body, *run_id;
    int max_backoff_ms;
    int tries;
    bool abandoned;
    /* Filled by the work thread, read in after_work. */
    long status;
    char curl_err[CURL_ERROR_SIZE];
    char *reply;
    size_t reply_len;
};

int gw_claim_global_init(struct gw_error *err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return gw_error_set(err, GW_EIO, false, "curl_global_init failed");
    return 0;
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

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct gw_claim *c = userp;
    size_t n = size * nmemb;
    char *nb;
    if (c->reply_len + n > REPLY_MAX)
        return 0;
    nb = realloc(c->reply, c->reply_len + n + 1);
    if (nb == NULL)
        return 0;
    c->reply = nb;
    memcpy(c->reply + c->reply_len, data, n);
    c->reply_len += n;
    c->reply[c->reply_len] = '\0';
    return n;
}

/* Thread pool: one blocking HTTP exchange. */
static void request_work(uv_work_t *req)
{
    struct gw_claim *c = container_of(req, struct gw_claim, work);
    struct curl_slist *h = NULL;
    CURL *e = curl_easy_init();
    CURLcode rc;
    c->status = 0;
    c->curl_err[0] = '\0';
    free(c->reply);
    c->reply = NULL;
    c->reply_len = 0;
    if (e == NULL) {
        snprintf(c->curl_err, sizeof(c->curl_err), "curl_easy_init failed");
        return;
    }
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/json");
    if (c->auth != NULL)
        h = curl_slist_append(h, c->auth);
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    rc = curl_easy_perform(e);
    if (rc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
    else if (c->curl_err[0] == '\0')
        snprintf(c->curl_err, sizeof(c->curl_err), "%s", curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
}

static void timer_closed(uv_handle_t *h)
{
    struct gw_claim *c = h->data;
    free(c->url);
    free(c->auth);
    free(c->body);
    free(c->run_id);
    free(c->reply);
    free(c);
}

static void resolve(struct gw_claim *c, enum gw_claim_result r, json_t *reply, const char *detail)
{
    c->state = C_DONE;
    c->cb(c->arg, r, reply, detail);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
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

/* The `detail` of a problem+json body, or a fallback. */
static const char *problem_detail(json_t *j, const char *fallback)
{
    const char *d = json_string_value(json_object_get(j, "detail"));
    if (d == NULL)
        d = json_string_value(json_object_get(j, "code"));
    return d != NULL ? d : fallback;
}

static void request_done(uv_work_t *req, int status)
{
    struct gw_claim *c = container_of(req, struct gw_claim, work);
    json_t *j = NULL;
    char detail[300];
    (void)status;
    if (c->reply != NULL)
        j = json_loadb(c->reply, c->reply_len, 0, NULL);

    if (c->status == 200 && json_is_object(j)) {
        resolve(c, GW_CLAIM_GRANTED, j, "granted");
    } else if (c->status == 409) {
        resolve(c, GW_CLAIM_REFUSED, j, problem_detail(j, "claim_refused"));
    } else if (c->status == 404) {
        resolve(c, GW_CLAIM_NOT_FOUND, j, problem_detail(j, "run_not_found"));
    } else if (c->status == 401 || c->status == 403) {
        gw_log(GW_LOG_ERROR, c->run_id,
               "claim refused with HTTP %ld: check GW_WORKER_TOKEN / --token; retrying", c->status);
        retry_later(c);
    } else if (c->status >= 400 && c->status < 500) {
        snprintf(detail, sizeof(detail), "HTTP %ld: %s", c->status,
                 problem_detail(j, "bad request"));
        resolve(c, GW_CLAIM_REJECTED, j, detail);
    } else {
        /* 5xx, a 200 that is not JSON, or no answer at all. */
        if (c->status != 0)
            gw_log(GW_LOG_WARN, c->run_id, "claim: HTTP %ld, retrying", c->status);
        else
            gw_log(GW_LOG_WARN, c->run_id, "claim: %s, retrying", c->curl_err);
        retry_later(c);
    }
    json_decref(j);
}

static void send_request(struct gw_claim *c)
{
    c->tries++;
    c->state = C_REQUEST;
    if (uv_queue_work(c->loop, &c->work, request_work, request_done) != 0)
        retry_later(c);
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
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    send_request(c);
    return c;
fail_mem:
    gw_error_set(err, GW_ENOMEM, true, "out of memory");
fail:
    if (c != NULL) {
        free(c->body);
        free(c->url);
        free(c->run_id);
        free(c->auth);
        free(c);
    }
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
