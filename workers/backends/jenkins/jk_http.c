/*
 * libcurl's multi interface on a libuv loop: curl tells us which sockets to
 * watch (CURLMOPT_SOCKETFUNCTION -> uv_poll_t) and when to call it back
 * (CURLMOPT_TIMERFUNCTION -> uv_timer_t); we report readiness with
 * curl_multi_socket_action and collect finished transfers with
 * curl_multi_info_read. Nothing here blocks.
 */
#include "jk_http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw/error.h"

#define BODY_MAX           (8u * 1024 * 1024)
#define CONNECT_TIMEOUT_MS 5000L
#define REQUEST_TIMEOUT_MS 30000L

struct sock_ctx {
    uv_poll_t poll;
    struct jk_http *h;
    curl_socket_t fd;
    struct sock_ctx *next;
};

struct jk_http {
    uv_loop_t *loop;
    CURLM *multi;
    CURL *easy;
    uv_timer_t timer;
    int open_handles;
    bool in_flight, closing;
    struct sock_ctx *socks;
    struct curl_slist *headers;
    char *extra_header;
    char errbuf[CURL_ERROR_SIZE];

    /* The request in flight. */
    jk_http_chunk_cb chunk;
    jk_http_done_cb done;
    void *arg;
    char *body;
    size_t body_len;
    char *location;
    long long text_size;
    bool more_data;

    void (*closed)(void *arg);
    void *closed_arg;
};

/* ------------------------------------------------------------ closing */

static void handle_closed(uv_handle_t *uh)
{
    struct jk_http *h = uh->data;
    if (uh != (uv_handle_t *)&h->timer)
        free(container_of((uv_poll_t *)uh, struct sock_ctx, poll));
    if (--h->open_handles > 0 || !h->closing)
        return;
    if (h->closed != NULL)
        h->closed(h->closed_arg);
    free(h->body);
    free(h->location);
    free(h->extra_header);
    curl_slist_free_all(h->headers);
    free(h);
}

static void sock_close(struct jk_http *h, struct sock_ctx *c)
{
    struct sock_ctx **p = &h->socks;
    while (*p != NULL && *p != c)
        p = &(*p)->next;
    if (*p == c)
        *p = c->next;
    /* uv_poll_stop takes the fd out of epoll now, before curl closes it. */
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, handle_closed);
}

/* ------------------------------------------------------------ curl -> loop */

static void check_done(struct jk_http *h)
{
    CURLMsg *m;
    int left;
    while (!h->closing && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
        struct jk_reply r = {.text_size = -1};
        jk_http_done_cb done = h->done;
        if (m->msg != CURLMSG_DONE || m->easy_handle != h->easy || !h->in_flight)
            continue;
        r.curl_code = (int)m->data.result;
        curl_multi_remove_handle(h->multi, h->easy);
        h->in_flight = false;
        if (r.curl_code != CURLE_OK)
            r.error = h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(m->data.result);
        curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &r.status);
        r.body = h->body != NULL ? h->body : "";
        r.body_len = h->body_len;
        r.location = h->location;
        r.text_size = h->text_size;
        r.more_data = h->more_data;
        h->done = NULL;
        /* `done` may start the next request or close the client. */
        done(h->arg, &r);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock_ctx *c = container_of(p, struct sock_ctx, poll);
    struct jk_http *h = c->h;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(h->multi, c->fd, flags, &running);
    check_done(h);
}

static void on_timer(uv_timer_t *t)
{
    struct jk_http *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct jk_http *h = userp;
    struct sock_ctx *c = socketp;
    int events = 0;
    (void)e;
    if (h->closing)
        return 0;
    if (what == CURL_POLL_REMOVE) {
        if (c != NULL) {
            curl_multi_assign(h->multi, s, NULL);
            sock_close(h, c);
        }
        return 0;
    }
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            return -1;
        if (uv_poll_init_socket(h->loop, &c->poll, s) != 0) {
            free(c);
            return -1;
        }
        c->h = h;
        c->fd = s;
        c->poll.data = h;
        c->next = h->socks;
        h->socks = c;
        h->open_handles++;
        curl_multi_assign(h->multi, s, c);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&c->poll, events, on_poll);
    return 0;
}

static int on_timeout(CURLM *m, long ms, void *userp)
{
    struct jk_http *h = userp;
    (void)m;
    if (h->closing)
        return 0;
    if (ms < 0)
        uv_timer_stop(&h->timer);
    else /* 0 fires on the next loop iteration: never re-enter curl here */
        uv_timer_start(&h->timer, on_timer, (uint64_t)ms, 0);
    return 0;
}

/* ------------------------------------------------------------ easy callbacks */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct jk_http *h = userp;
    size_t n = size * nmemb;
    long status = 0;
    char *nb;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    if (h->chunk != NULL && status >= 200 && status < 300) {
        h->chunk(h->arg, data, n);
        return n;
    }
    if (h->body_len + n > BODY_MAX)
        return 0; /* CURLE_WRITE_ERROR */
    nb = realloc(h->body, h->body_len + n + 1);
    if (nb == NULL)
        return 0;
    h->body = nb;
    memcpy(h->body + h->body_len, data, n);
    h->body_len += n;
    h->body[h->body_len] = '\0';
    return n;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
                      size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    line += n + 1;
    len -= n + 1;
    while (len > 0 && (*line == ' ' || *line == '\t'))
        line++, len--;
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
        len--;
    *value = line;
    *vlen = len;
    return true;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
    struct jk_http *h = userp;
    size_t n = size * nmemb, vlen;
    const char *v;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the last one's. */
        free(h->location);
        h->location = NULL;
        h->text_size = -1;
        h->more_data = false;
    } else if (header_is(line, n, "Location", &v, &vlen)) {
        free(h->location);
        h->location = strndup(v, vlen);
    } else if (header_is(line, n, "X-Text-Size", &v, &vlen)) {
        char tmp[32];
        if (vlen > 0 && vlen < sizeof(tmp)) {
            memcpy(tmp, v, vlen);
            tmp[vlen] = '\0';
            h->text_size = strtoll(tmp, NULL, 10);
        }
    } else if (header_is(line, n, "X-More-Data", &v, &vlen)) {
        h->more_data = vlen == 4 && strncasecmp(v, "true", 4) == 0;
    }
    return n;
}

/* ------------------------------------------------------------ API */

struct jk_http *jk_http_create(uv_loop_t *loop, const char *user, const char *password)
{
    struct jk_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->loop = loop;
    h->multi = curl_multi_init();
    h->easy = curl_easy_init();
    if (h->multi == NULL || h->easy == NULL)
        goto fail;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);

    curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
    /* Only HTTP(S), no redirects: a Location is parsed, never followed, so
     * credentials only ever go to the configured Jenkins. */
    curl_easy_setopt(h->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    curl_easy_setopt(h->easy, CURLOPT_COOKIEFILE, ""); /* in-memory cookie engine */
    curl_easy_setopt(h->easy, CURLOPT_USERAGENT, "gangway-jenkins/1");
    curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(h->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h->easy, CURLOPT_HEADERDATA, h);
    if (user != NULL || password != NULL) {
        curl_easy_setopt(h->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h->easy, CURLOPT_USERNAME, user != NULL ? user : "");
        curl_easy_setopt(h->easy, CURLOPT_PASSWORD, password != NULL ? password : "");
    }
    if (jk_http_set_header(h, NULL) != 0)
        goto fail;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    h->open_handles = 1;
    return h;
fail:
    curl_easy_cleanup(h->easy);
    curl_multi_cleanup(h->multi);
    free(h);
    return NULL;
}

int jk_http_set_header(struct jk_http *h, const char *header)
{
    struct curl_slist *l = curl_slist_append(NULL, "Expect:");
    struct curl_slist *l2;
    if (l == NULL)
        return -1;
    if (header != NULL) {
        l2 = curl_slist_append(l, header);
        if (l2 == NULL) {
            curl_slist_free_all(l);
            return -1;
        }
        l = l2;
    }
    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, l);
    curl_slist_free_all(h->headers);
    h->headers = l;
    return 0;
}

int jk_http_request(struct jk_http *h, const char *url, const char *post_body,
                    jk_http_chunk_cb chunk, jk_http_done_cb done, void *arg)
{
    if (h->closing || h->in_flight)
        return -1;
    free(h->body);
    free(h->location);
    h->body = h->location = NULL;
    h->body_len = 0;
    h->text_size = -1;
    h->more_data = false;
    h->errbuf[0] = '\0';
    h->chunk = chunk;
    h->done = done;
    h->arg = arg;
    if (curl_easy_setopt(h->easy, CURLOPT_URL, url) != CURLE_OK)
        return -1;
    if (post_body != NULL) {
        curl_easy_setopt(h->easy, CURLOPT_POST, 1L);
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(post_body));
        if (curl_easy_setopt(h->easy, CURLOPT_COPYPOSTFIELDS, post_body) != CURLE_OK)
            return -1;
    } else {
        curl_easy_setopt(h->easy, CURLOPT_HTTPGET, 1L);
    }
    if (curl_multi_add_handle(h->multi, h->easy) != CURLM_OK)
        return -1;
    h->in_flight = true;
    return 0;
}

void jk_http_abort(struct jk_http *h)
{
    if (h == NULL || !h->in_flight)
        return;
    curl_multi_remove_handle(h->multi, h->easy);
    h->in_flight = false;
    h->done = NULL;
}

void jk_http_close(struct jk_http *h, void (*closed)(void *arg), void *arg)
{
    if (h == NULL)
        return;
    jk_http_abort(h);
    h->closed = closed;
    h->closed_arg = arg;
    while (h->socks != NULL) {
        curl_multi_assign(h->multi, h->socks->fd, NULL);
        sock_close(h, h->socks);
    }
    h->closing = true;
    /* Sockets curl still caches are closed here, after they left epoll. */
    curl_multi_cleanup(h->multi);
    curl_easy_cleanup(h->easy);
    h->multi = NULL;
    h->easy = NULL;
    uv_close((uv_handle_t *)&h->timer, handle_closed);
}
