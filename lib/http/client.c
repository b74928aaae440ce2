/*
 * The HTTP client of lib/gw/http_client.h: libcurl's multi interface on a
 * libuv loop. One uv_poll_t per socket curl asks us to watch, one uv_timer_t
 * for curl's single timeout; every finished transfer is collected with
 * curl_multi_info_read after each curl_multi_socket_action. Handles are
 * freed in their close callbacks; the client itself in the last one.
 */
#include "gw/http_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_TIMEOUT_MS         30000L
#define DEFAULT_MAX_BODY           (8u * 1024 * 1024)

struct sock {
    uv_poll_t poll;
    struct gw_http_client *c;
    curl_socket_t fd;
    struct sock *next;
};

struct gw_http_client {
    uv_loop_t *loop;
    CURLM *multi;
    CURLSH *share; /* the cookie store, or NULL */
    uv_timer_t timer;
    int open_handles; /* the timer and every poll handle */
    bool closing;
    struct sock *socks;
    struct gw_http_request *reqs; /* in flight, doubly linked */
    void (*closed)(void *arg);
    void *closed_arg;
};

struct gw_http_request {
    struct gw_http_client *c;
    struct gw_http_request *prev, *next;
    CURL *easy;
    struct curl_slist *hdrs;
    gw_http_done_cb done;
    gw_http_chunk_cb chunk;
    void *arg;
    char *body;
    size_t body_len, max_body;
    bool discard, too_big;
    struct gw_http_header *rh; /* response headers; strings malloc'd */
    size_t nrh, caprh;
    char errbuf[CURL_ERROR_SIZE];
};

int gw_http_client_global_init(struct gw_error *err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return gw_error_set(err, GW_EIO, false, "curl_global_init failed");
    return 0;
}

/* ------------------------------------------------------------ requests */

static void headers_clear(struct gw_http_request *r)
{
    for (size_t i = 0; i < r->nrh; i++)
        free((char *)r->rh[i].name); /* name and value share one allocation */
    r->nrh = 0;
}

static void request_free(struct gw_http_request *r)
{
    headers_clear(r);
    free(r->rh);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    free(r->body);
    free(r);
}

static void unlink_request(struct gw_http_request *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        r->c->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static int error_code(CURLcode cc, bool too_big, bool *retriable)
{
    *retriable = true;
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return GW_ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        return GW_EUNAVAIL;
    case CURLE_OUT_OF_MEMORY:
        return GW_ENOMEM;
    case CURLE_WRITE_ERROR:
        if (too_big) {
            *retriable = false;
            return GW_ELIMIT;
        }
        return GW_ENOMEM; /* the buffer could not grow */
    default:
        return GW_EIO;
    }
}

/* Ends `r` (already out of the multi handle): one call of `done`, then free. */
static void finish(struct gw_http_request *r, CURLcode cc)
{
    struct gw_http_response resp = {0};
    struct gw_error err;
    unlink_request(r);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
        resp.headers = r->rh;
        resp.nheaders = r->nrh;
        resp.body = r->body != NULL ? r->body : "";
        resp.body_len = r->body_len;
        r->done(r->arg, &resp, NULL);
    } else {
        bool retriable;
        int code = error_code(cc, r->too_big, &retriable);
        if (r->too_big)
            gw_error_set(&err, code, retriable, "response body larger than %zu bytes", r->max_body);
        else
            gw_error_set(&err, code, retriable, "%s",
                         r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(cc));
        r->done(r->arg, NULL, &err);
    }
    request_free(r);
}

static void finish_closed(struct gw_http_request *r, const char *why)
{
    struct gw_error err;
    unlink_request(r);
    gw_error_set(&err, GW_ECLOSED, false, "%s", why);
    r->done(r->arg, NULL, &err);
    request_free(r);
}

/* ------------------------------------------------------------ curl -> loop */

static void check_done(struct gw_http_client *c)
{
    CURLMsg *m;
    int left;
    /* `done` may start requests, cancel them or destroy the client. */
    while (!c->closing && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        struct gw_http_request *r = NULL;
        CURLcode cc = m->data.result;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        curl_multi_remove_handle(c->multi, m->easy_handle); /* `m` is invalid now */
        if (r != NULL)
            finish(r, cc);
    }
}

static void handle_closed(uv_handle_t *h)
{
    struct gw_http_client *c = h->data;
    if (h != (uv_handle_t *)&c->timer)
        free(container_of((uv_poll_t *)h, struct sock, poll));
    if (--c->open_handles > 0 || !c->closing)
        return;
    if (c->closed != NULL)
        c->closed(c->closed_arg);
    /* Only now: a request whose `done` destroyed the client still had its
     * easy handle (and so the cookie store) until `done` returned. */
    curl_share_cleanup(c->share);
    curl_global_cleanup();
    free(c);
}

static void sock_close(struct gw_http_client *c, struct sock *s)
{
    struct sock **p = &c->socks;
    while (*p != NULL && *p != s)
        p = &(*p)->next;
    if (*p == s)
        *p = s->next;
    /* uv_poll_stop takes the fd out of epoll now, before curl closes it. */
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, handle_closed);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock *s = container_of(p, struct sock, poll);
    struct gw_http_client *c = s->c;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    check_done(c);
}

static void on_timer(uv_timer_t *t)
{
    struct gw_http_client *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct gw_http_client *c = userp;
    struct sock *s = socketp;
    int events = 0;
    (void)e;
    if (c->closing)
        return 0;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_close(c, s);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->c = c;
        s->fd = fd;
        s->poll.data = c;
        s->next = c->socks;
        c->socks = s;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static int on_timeout(CURLM *m, long ms, void *userp)
{
    struct gw_http_client *c = userp;
    (void)m;
    if (c->closing)
        return 0;
    if (ms < 0)
        uv_timer_stop(&c->timer);
    else /* 0 fires on the next loop iteration: never re-enter curl here */
        uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
    return 0;
}

/* ------------------------------------------------------------ easy callbacks */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct gw_http_request *r = userp;
    size_t n = size * nmemb;
    long status = 0;
    char *nb;
    if (r->discard)
        return n;
    if (r->chunk != NULL) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            r->chunk(r->arg, data, n);
            return n;
        }
    }
    if (r->body_len + n > r->max_body) {
        r->too_big = true;
        return 0; /* CURLE_WRITE_ERROR */
    }
    nb = realloc(r->body, r->body_len + n + 1);
    if (nb == NULL)
        return 0;
    r->body = nb;
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

/* Keeps "Name: value" as {lower-cased name, trimmed value} in one allocation. */
static int header_add(struct gw_http_request *r, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len), *v;
    size_t nlen, vlen;
    char *mem;
    if (colon == NULL || colon == line)
        return 0; /* not a header field: ignore */
    nlen = (size_t)(colon - line);
    v = colon + 1;
    vlen = len - nlen - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
                        v[vlen - 1] == '\t'))
        vlen--;
    if (r->nrh == r->caprh) {
        size_t cap = r->caprh ? r->caprh * 2 : 16;
        struct gw_http_header *nh = realloc(r->rh, cap * sizeof(*nh));
        if (nh == NULL)
            return -1;
        r->rh = nh;
        r->caprh = cap;
    }
    if ((mem = malloc(nlen + 1 + vlen + 1)) == NULL)
        return -1;
    for (size_t i = 0; i < nlen; i++)
        mem[i] = (char)tolower((unsigned char)line[i]);
    mem[nlen] = '\0';
    memcpy(mem + nlen + 1, v, vlen);
    mem[nlen + 1 + vlen] = '\0';
    r->rh[r->nrh].name = mem;
    r->rh[r->nrh].value = mem + nlen + 1;
    r->nrh++;
    return 0;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
    struct gw_http_request *r = userp;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the last one's. */
        headers_clear(r);
        return n;
    }
    return header_add(r, line, n) == 0 ? n : 0;
}

/* ------------------------------------------------------------ API */

struct gw_http_client *gw_http_client_create(uv_loop_t *loop,
                                             const struct gw_http_client_options *opts,
                                             struct gw_error *err)
{
    struct gw_http_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    if (gw_http_client_global_init(err) < 0) {
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->multi = curl_multi_init();
    if (c->multi == NULL)
        goto fail;
    if (opts != NULL && opts->cookies) {
        c->share = curl_share_init();
        if (c->share == NULL ||
            curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE) != CURLSHE_OK)
            goto fail;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    return c;
fail:
    gw_error_set(err, GW_ENOMEM, false, "cannot set up libcurl's multi handle");
    curl_share_cleanup(c->share);
    curl_multi_cleanup(c->multi);
    curl_global_cleanup();
    free(c);
    return NULL;
}

void gw_http_client_destroy(struct gw_http_client *c, void (*closed)(void *arg), void *arg)
{
    if (c == NULL || c->closing)
        return;
    /* From here on curl's socket and timer callbacks are ignored, and a
     * `done` that tries to start a request is refused. */
    c->closing = true;
    while (c->reqs != NULL)
        gw_http_request_cancel(c->reqs);
    c->closed = closed;
    c->closed_arg = arg;
    while (c->socks != NULL) {
        curl_multi_assign(c->multi, c->socks->fd, NULL);
        sock_close(c, c->socks);
    }
    /* Sockets curl still caches are closed here, after they left epoll. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
}

static int set_method(struct gw_http_request *r, const struct gw_http_request_options *o)
{
    CURL *e = r->easy;
    const char *m = o->method;
    if (o->body != NULL) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body) != CURLE_OK)
            return -1;
        if (m != NULL && strcmp(m, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else if (m == NULL || strcmp(m, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }
    return 0;
}

static int set_options(struct gw_http_request *r, const struct gw_http_request_options *o)
{
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms
                                               : DEFAULT_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent != NULL ? o->user_agent : "gangway");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    if (r->c->share != NULL) {
        curl_easy_setopt(e, CURLOPT_SHARE, r->c->share);
        curl_easy_setopt(e, CURLOPT_COOKIEFILE, ""); /* turns the cookie engine on */
    }
    if (o->user != NULL || o->password != NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, o->user != NULL ? o->user : "");
        curl_easy_setopt(e, CURLOPT_PASSWORD, o->password != NULL ? o->password : "");
    }
    for (const char *const *h = o->headers; h != NULL && *h != NULL; h++) {
        struct curl_slist *l = curl_slist_append(r->hdrs, *h);
        if (l == NULL)
            return -1;
        r->hdrs = l;
    }
    if (r->hdrs != NULL)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    if (curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK)
        return -1;
    return set_method(r, o);
}

struct gw_http_request *gw_http_client_request(struct gw_http_client *c,
                                               const struct gw_http_request_options *o,
                                               gw_http_done_cb done, void *arg,
                                               struct gw_error *err)
{
    struct gw_http_request *r;
    if (c == NULL || c->closing) {
        gw_error_set(err, GW_ECLOSED, false, "the HTTP client is closing");
        return NULL;
    }
    if (o->url == NULL) {
        gw_error_set(err, GW_EINVAL, false, "no URL");
        return NULL;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL || (r->easy = curl_easy_init()) == NULL)
        goto fail_mem;
    r->c = c;
    r->done = done;
    r->chunk = o->chunk;
    r->discard = o->discard_body;
    r->arg = arg;
    r->max_body = o->max_body > 0 ? o->max_body : DEFAULT_MAX_BODY;
    if (set_options(r, o) < 0)
        goto fail_mem;
    if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
        gw_error_set(err, GW_EIO, true, "curl_multi_add_handle failed");
        request_free(r);
        return NULL;
    }
    r->next = c->reqs;
    if (c->reqs != NULL)
        c->reqs->prev = r;
    c->reqs = r;
    return r;
fail_mem:
    gw_error_set(err, GW_ENOMEM, false, "out of memory setting up a request");
    if (r != NULL)
        request_free(r);
    return NULL;
}

void gw_http_request_cancel(struct gw_http_request *r)
{
    if (r == NULL)
        return;
    curl_multi_remove_handle(r->c->multi, r->easy);
    finish_closed(r, r->c->closing ? "the HTTP client was destroyed" : "cancelled");
}

const char *gw_http_response_header(const struct gw_http_response *resp, const char *name)
{
    for (size_t i = 0; resp != NULL && i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}
