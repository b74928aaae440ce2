#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- server side (loop thread) ---- */

struct async_job {
    uv_timer_t timer;
    struct gw_http_req *req;
    struct harness *h;
    int left;
};

static void job_free(uv_handle_t *t)
{
    free(container_of((uv_timer_t *)t, struct async_job, timer));
}

static struct async_job *job_new(struct harness *h, struct gw_http_req *req)
{
    struct async_job *j = calloc(1, sizeof(*j));
    CHECK(j != NULL);
    j->req = req;
    j->h = h;
    uv_timer_init(&h->loop, &j->timer);
    return j;
}

static void on_async_timer(uv_timer_t *t)
{
    struct async_job *j = container_of(t, struct async_job, timer);
    static const char msg[] = "late hello";
    CHECK(gw_http_respond(j->req, 200, "text/plain", "X-Async: yes\r\n", msg, sizeof(msg) - 1) ==
          0);
    uv_close((uv_handle_t *)t, job_free);
}

/* /hold: waits until the client thread says it disconnected, then a bit more
 * so the server has seen the EOF, then answers and records the result. */
static void on_hold_timer(uv_timer_t *t)
{
    struct async_job *j = container_of(t, struct async_job, timer);
    if (!atomic_load(&j->h->client_closed))
        return;
    if (j->left-- > 0)
        return;
    /* The request must still be readable after the disconnect. */
    CHECK(strcmp(j->req->path, "/hold") == 0);
    CHECK(strcmp(j->req->body, "payload") == 0);
    atomic_store(&j->h->held_rc, gw_http_respond(j->req, 200, "text/plain", NULL, "x", 1));
    atomic_store(&j->h->held_state, 2);
    uv_close((uv_handle_t *)t, job_free);
}

static void on_stream_timer(uv_timer_t *t)
{
    struct async_job *j = container_of(t, struct async_job, timer);
    char line[64];
    int n = snprintf(line, sizeof(line), "data: %d\n\n", 3 - j->left);
    CHECK(gw_http_stream_write(j->req, line, (size_t)n) == 0);
    if (--j->left == 0) {
        gw_http_stream_end(j->req);
        atomic_fetch_add(&j->h->stream_end_calls, 1);
        uv_close((uv_handle_t *)t, job_free);
    }
}

static struct harness *stream_hold_owner;

static void on_stream_close(struct gw_http_req *req)
{
    atomic_fetch_add(&stream_hold_owner->on_close_calls, 1);
    /* The stream is gone: writes fail, end only frees. */
    CHECK(gw_http_stream_write(req, "x", 1) < 0);
    gw_http_stream_end(req);
    atomic_fetch_add(&stream_hold_owner->stream_end_calls, 1);
}

static void handler(struct gw_http_req *req, void *arg)
{
    struct harness *h = arg;
    atomic_fetch_add(&h->handled, 1);
    char buf[4096], q[256], name[256];
    if (strcmp(req->path, "/echo") == 0 || strncmp(req->path, "/echo/", 6) == 0) {
        /* Long bodies come back whole, behind a short summary line. */
        size_t cap = 512 + req->body_len;
        char *out = gw_http_req_alloc(req, cap);
        CHECK(out != NULL);
        int n = snprintf(out, cap, "%s %s q=%s len=%zu\n", req->method, req->path, req->query,
                         req->body_len);
        memcpy(out + n, req->body, req->body_len);
        CHECK(req->body[req->body_len] == '\0');
        gw_http_respond(req, 200, "text/plain", NULL, out, (size_t)n + req->body_len);
    } else if (strcmp(req->path, "/query") == 0) {
        bool has_q = gw_http_req_query(req, "q", q, sizeof(q));
        bool has_name = gw_http_req_query(req, "a b", name, sizeof(name));
        bool missing = gw_http_req_query(req, "nope", buf, sizeof(buf));
        char small[4];
        bool fits = gw_http_req_query(req, "q", small, sizeof(small));
        int n = snprintf(buf, sizeof(buf), "q=[%s] ab=[%s] missing=%d fits=%d", has_q ? q : "-",
                         has_name ? name : "-", missing, fits);
        gw_http_respond(req, 200, "text/plain", NULL, buf, (size_t)n);
    } else if (strcmp(req->path, "/headers") == 0) {
        const char *x = gw_http_req_header(req, "X-Test");
        bool lower = true;
        for (size_t i = 0; i < req->nheaders; i++)
            for (const char *p = req->headers[i].name; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    lower = false;
        int n = snprintf(buf, sizeof(buf), "n=%zu x=[%s] lower=%d remote=%s", req->nheaders,
                         x ? x : "-", lower, req->remote_addr);
        gw_http_respond(req, 200, "text/plain", NULL, buf, (size_t)n);
    } else if (strcmp(req->path, "/async") == 0) {
        int ms = 50;
        if (gw_http_req_query(req, "ms", q, sizeof(q)))
            ms = atoi(q);
        struct async_job *j = job_new(h, req);
        uv_timer_start(&j->timer, on_async_timer, (uint64_t)ms, 0);
    } else if (strcmp(req->path, "/hold") == 0) {
        struct async_job *j = job_new(h, req);
        j->left = 10; /* 10 more ticks of 10 ms after the client closed */
        atomic_store(&h->held_state, 1);
        uv_timer_start(&j->timer, on_hold_timer, 10, 10);
    } else if (strcmp(req->path, "/stream") == 0) {
        CHECK(gw_http_stream_begin(req, 200, "text/event-stream", "Cache-Control: no-cache\r\n",
                                   NULL) == 0);
        struct async_job *j = job_new(h, req);
        j->left = 3;
        uv_timer_start(&j->timer, on_stream_timer, 20, 20);
    } else if (strcmp(req->path, "/stream-hold") == 0) {
        stream_hold_owner = h;
        CHECK(gw_http_stream_begin(req, 200, "text/event-stream", NULL, on_stream_close) == 0);
        CHECK(gw_http_stream_write(req, "data: hello\n\n", 13) == 0);
    } else if (strcmp(req->path, "/big") == 0) {
        size_t n = 1 << 20;
        if (gw_http_req_query(req, "n", q, sizeof(q)))
            n = (size_t)atol(q);
        char *body = malloc(n);
        CHECK(body != NULL);
        for (size_t i = 0; i < n; i++)
            body[i] = (char)('a' + i % 26);
        CHECK(gw_http_respond(req, 200, "application/octet-stream", NULL, body, n) == 0);
        free(body); /* the server copied what it could not send at once */
    } else if (strcmp(req->path, "/problem") == 0) {
        gw_http_respond_problem(req, 409, "conflict", "a \"quoted\" detail");
    } else if (strcmp(req->path, "/twice") == 0) {
        gw_http_respond(req, 204, NULL, NULL, NULL, 0);
    } else {
        gw_http_respond(req, 404, "text/plain", NULL, "not found", 9);
    }
}

static void on_destroyed(void *arg)
{
    struct harness *h = arg;
    atomic_fetch_add(&h->destroy_done, 1);
}

static void on_async(uv_async_t *a)
{
    struct harness *h = a->data;
    /* Sends coalesce, so look at both flags every time. */
    if (h->srv != NULL && (atomic_load(&h->destroy_now) || atomic_load(&h->scenario_done))) {
        gw_http_server_destroy(h->srv, on_destroyed, h);
        h->srv = NULL;
    }
    if (atomic_load(&h->scenario_done) && !uv_is_closing((uv_handle_t *)a))
        uv_close((uv_handle_t *)a, NULL);
}

static void *client_main(void *arg)
{
    struct harness *h = arg;
    h->scenario(h);
    atomic_store(&h->scenario_done, 1);
    uv_async_send(&h->async);
    return NULL;
}

void harness_destroy_server(struct harness *h)
{
    atomic_store(&h->destroy_now, 1);
    uv_async_send(&h->async);
}

int harness_run(const char *name, const struct gw_http_server_options *opts,
                void (*scenario)(struct harness *h))
{
    struct harness *h = calloc(1, sizeof(*h));
    CHECK(h != NULL);
    CHECK(uv_loop_init(&h->loop) == 0);
    struct gw_http_server_options o = {0};
    if (opts != NULL)
        o = *opts;
    o.host = "127.0.0.1";
    o.port = 0;
    struct gw_error err = {0};
    h->srv = gw_http_server_create(&h->loop, &o, handler, h, &err);
    if (h->srv == NULL) {
        fprintf(stderr, "create: %s\n", err.message);
        abort();
    }
    h->port = gw_http_server_port(h->srv);
    CHECK(h->port > 0);
    h->scenario = scenario;
    h->loop_thread = pthread_self();
    CHECK(uv_async_init(&h->loop, &h->async, on_async) == 0);
    h->async.data = h;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, client_main, h) == 0);
    CHECK(uv_run(&h->loop, UV_RUN_DEFAULT) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(atomic_load(&h->destroy_done) == 1);
    CHECK(uv_loop_close(&h->loop) == 0);
    fprintf(stderr, "ok - %s (%d requests handled)\n", name, atomic_load(&h->handled));
    free(h);
    return 0;
}

/* ---- client side (scenario thread) ---- */

void client_open(struct client *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(c->fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    c->cap = 65536;
    c->buf = malloc(c->cap);
    CHECK(c->buf != NULL);
}

void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

void client_send(struct client *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        CHECK(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

void client_sends(struct client *c, const char *s)
{
    client_send(c, s, strlen(s));
}

/* Reads more bytes into c->buf; returns false on EOF, error or timeout. */
static bool fill(struct client *c)
{
    if (c->len == c->cap) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
        CHECK(c->buf != NULL);
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n <= 0)
        return false;
    c->len += (size_t)n;
    return true;
}

static void consume(struct client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static bool need(struct client *c, size_t n)
{
    while (c->len < n)
        if (!fill(c))
            return false;
    return true;
}

/* Returns the offset just past the first CRLF at or after `from`, filling as needed. */
static long find_crlf(struct client *c, size_t from, const char *pat)
{
    size_t plen = strlen(pat);
    for (;;) {
        if (c->len >= from + plen) {
            void *p = memmem(c->buf + from, c->len - from, pat, plen);
            if (p != NULL)
                return (long)((char *)p - c->buf) + (long)plen;
        }
        if (!fill(c))
            return -1;
    }
}

const char *resp_header(const struct resp *r, const char *name)
{
    static __thread char value[1024];
    size_t nlen = strlen(name);
    const char *line = strstr(r->head, "\r\n");
    while (line != NULL && line[2] != '\0') {
        line += 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            const char *end = strstr(v, "\r\n");
            size_t n = end ? (size_t)(end - v) : strlen(v);
            if (n >= sizeof(value))
                n = sizeof(value) - 1;
            memcpy(value, v, n);
            value[n] = '\0';
            return value;
        }
        line = strstr(line, "\r\n");
    }
    return NULL;
}

int client_read(struct client *c, struct resp *r)
{
    return client_read_ex(c, r, false);
}

int client_read_ex(struct client *c, struct resp *r, bool head_only)
{
    memset(r, 0, sizeof(*r));
    for (;;) {
        long end = find_crlf(c, 0, "\r\n\r\n");
        if (end < 0)
            return -1;
        CHECK((size_t)end < sizeof(r->head));
        memcpy(r->head, c->buf, (size_t)end);
        r->head[end] = '\0';
        consume(c, (size_t)end);
        CHECK(sscanf(r->head, "HTTP/1.%*d %d", &r->status) == 1);
        if (r->status == 100) {
            r->saw_continue = true;
            continue;
        }
        break;
    }
    if (head_only)
        return 0;
    const char *te = resp_header(r, "transfer-encoding");
    if (te != NULL && strcasecmp(te, "chunked") == 0) {
        r->chunked = true;
        size_t cap = 1024;
        r->body = malloc(cap);
        for (;;) {
            long le = find_crlf(c, 0, "\r\n");
            if (le < 0)
                return -1;
            size_t sz = strtoul(c->buf, NULL, 16);
            consume(c, (size_t)le);
            if (!need(c, sz + 2))
                return -1;
            if (r->body_len + sz + 1 > cap) {
                cap = (r->body_len + sz + 1) * 2;
                r->body = realloc(r->body, cap);
            }
            memcpy(r->body + r->body_len, c->buf, sz);
            r->body_len += sz;
            CHECK(memcmp(c->buf + sz, "\r\n", 2) == 0);
            consume(c, sz + 2);
            if (sz == 0)
                break;
        }
        r->body[r->body_len] = '\0';
        return 0;
    }
    const char *cl = resp_header(r, "content-length");
    size_t len = cl ? strtoul(cl, NULL, 10) : 0;
    if (cl == NULL && r->status != 204 && r->status != 304) {
        /* Body until close. */
        while (fill(c))
            ;
        len = c->len;
    }
    if (!need(c, len))
        return -1;
    r->body = malloc(len + 1);
    memcpy(r->body, c->buf, len);
    r->body[len] = '\0';
    r->body_len = len;
    consume(c, len);
    return 0;
}

bool client_wait_eof(struct client *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char tmp[4096];
    for (;;) {
        ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
        if (n == 0)
            return true;
        if (n < 0)
            return errno == ECONNRESET;
    }
}

void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

void client_roundtrip(struct client *c, const char *request, struct resp *r)
{
    client_sends(c, request);
    CHECK(client_read(c, r) == 0);
}

void client_expect_body(struct client *c, const char *want)
{
    struct resp r;
    CHECK(client_read(c, &r) == 0);
    if (strcmp(r.body, want) != 0)
        fprintf(stderr, "body: got \"%s\", want \"%s\"\n", r.body, want);
    CHECK(strcmp(r.body, want) == 0);
    resp_free(&r);
}

void client_roundtrip_expect(struct client *c, const char *request, const char *want)
{
    client_sends(c, request);
    client_expect_body(c, want);
}
