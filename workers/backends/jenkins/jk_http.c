/*
 * The Jenkins session on the library's HTTP client (lib/gw/http_client.h):
 * one client per run with its cookie store on, so the session cookie that
 * goes with the CSRF crumb carries over from one request to the next, and
 * the client's connection cache keeps the connection alive. This file only
 * adds what Jenkins needs on top: the crumb header, basic auth, and the
 * Location / X-Text-Size / X-More-Data headers read into a jk_reply.
 */
#include "jk_http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw/http_client.h"

#define BODY_MAX           (8u * 1024 * 1024)
#define CONNECT_TIMEOUT_MS 5000L
#define REQUEST_TIMEOUT_MS 30000L

struct jk_http {
    struct gw_http_client *client;
    struct gw_http_request *req; /* in flight, or NULL */
    char *user, *password;
    char *extra_header;

    jk_http_done_cb done;
    jk_http_chunk_cb chunk;
    void *arg;

    void (*closed)(void *arg);
    void *closed_arg;
};

static void client_closed(void *arg)
{
    struct jk_http *h = arg;
    if (h->closed != NULL)
        h->closed(h->closed_arg);
    free(h->user);
    free(h->password);
    free(h->extra_header);
    free(h);
}

static void on_chunk(void *arg, const char *data, size_t len)
{
    struct jk_http *h = arg;
    h->chunk(h->arg, data, len);
}

static void on_done(void *arg, const struct gw_http_response *resp, const struct gw_error *err)
{
    struct jk_http *h = arg;
    jk_http_done_cb done = h->done;
    struct jk_reply r = {.text_size = -1, .body = ""};
    const char *v;
    h->req = NULL;
    h->done = NULL;
    if (done == NULL)
        return; /* aborted or closed */
    if (err != NULL) {
        r.failed = true;
        r.error = err->message;
    } else {
        r.status = resp->status;
        r.body = resp->body;
        r.body_len = resp->body_len;
        r.location = gw_http_response_header(resp, "location");
        if ((v = gw_http_response_header(resp, "x-text-size")) != NULL)
            r.text_size = strtoll(v, NULL, 10);
        v = gw_http_response_header(resp, "x-more-data");
        r.more_data = v != NULL && strcasecmp(v, "true") == 0;
    }
    /* `done` may start the next request or close the client. */
    done(h->arg, &r);
}

struct jk_http *gw_jk_http_create(uv_loop_t *loop, const char *user, const char *password)
{
    struct gw_http_client_options o = {.cookies = true};
    struct jk_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    if ((user != NULL && (h->user = strdup(user)) == NULL) ||
        (password != NULL && (h->password = strdup(password)) == NULL) ||
        (h->client = gw_http_client_create(loop, &o, NULL)) == NULL) {
        free(h->user);
        free(h->password);
        free(h);
        return NULL;
    }
    return h;
}

int gw_jk_http_set_header(struct jk_http *h, const char *header)
{
    char *copy = NULL;
    if (header != NULL && (copy = strdup(header)) == NULL)
        return -1;
    free(h->extra_header);
    h->extra_header = copy;
    return 0;
}

int gw_jk_http_request(struct jk_http *h, const char *url, const char *post_body,
                       jk_http_chunk_cb chunk, jk_http_done_cb done, void *arg)
{
    /* "Expect:" off: Jenkins' forms are small, the 100-continue wait is not. */
    const char *headers[] = {"Expect:", h->extra_header, NULL};
    struct gw_http_request_options o = {
        .url = url,
        .headers = headers,
        .body = post_body,
        .body_len = post_body != NULL ? strlen(post_body) : 0,
        .user = h->user,
        .password = h->password,
        .user_agent = "gangway-jenkins/1",
        .connect_timeout_ms = CONNECT_TIMEOUT_MS,
        .timeout_ms = REQUEST_TIMEOUT_MS,
        .max_body = BODY_MAX,
        .chunk = chunk != NULL ? on_chunk : NULL,
    };
    if (h->req != NULL)
        return -1;
    h->done = done;
    h->chunk = chunk;
    h->arg = arg;
    h->req = gw_http_client_request(h->client, &o, on_done, h, NULL);
    if (h->req == NULL) {
        h->done = NULL;
        return -1;
    }
    return 0;
}

void gw_jk_http_abort(struct jk_http *h)
{
    if (h == NULL || h->req == NULL)
        return;
    h->done = NULL; /* the cancel's GW_ECLOSED is not reported */
    gw_http_request_cancel(h->req);
}

void gw_jk_http_close(struct jk_http *h, void (*closed)(void *arg), void *arg)
{
    if (h == NULL)
        return;
    gw_jk_http_abort(h);
    h->closed = closed;
    h->closed_arg = arg;
    gw_http_client_destroy(h->client, client_closed, h);
}
