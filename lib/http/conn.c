/*
 * One client connection: reading, parsing with http-parser, the state
 * machine and its timers, writes, and closing.
 *
 * All state changes go through conn_enter(), whose switch arms the state's
 * timer and decides whether the socket is read. Parsing is paused after each
 * complete request (http_parser_pause in on_message_complete) and resumes
 * only when that request's response has been written, so pipelined requests
 * are answered one at a time and in order. Input that arrives meanwhile is
 * kept in c->in; when that buffer is full, reading stops (back-pressure).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw/log.h"

/* How long a closing connection keeps draining input after its FIN, so that
 * the client reads our last response instead of a reset. */
#define LINGER_MS 2000

static int on_message_begin(http_parser *p);
static int on_url(http_parser *p, const char *at, size_t len);
static int on_header_field(http_parser *p, const char *at, size_t len);
static int on_header_value(http_parser *p, const char *at, size_t len);
static int on_headers_complete(http_parser *p);
static int on_body(http_parser *p, const char *at, size_t len);
static int on_message_complete(http_parser *p);
static int on_chunk_header(http_parser *p);

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

struct wbuf {
    uv_write_t req;
    struct gw__http_conn *conn;
    size_t len;
    char data[];
};

static void conn_enter(struct gw__http_conn *c, enum gw__http_conn_state s);
static void conn_parse(struct gw__http_conn *c);
static void on_timeout(uv_timer_t *t);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct gw__http_conn *c = h->data;
    if (c->state == CONN_CLOSING)
        c->in_start = c->in_end = 0; /* everything read now is discarded */
    if (c->in_end == CONN_INBUF && c->in_start > 0) {
        memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
        c->in_end -= c->in_start;
        c->in_start = 0;
    }
    buf->base = c->in + c->in_end;
    buf->len = CONN_INBUF - c->in_end;
}

static void update_reading(struct gw__http_conn *c)
{
    bool want;
    switch (c->state) {
    case CONN_CLOSED:
        return;
    case CONN_CLOSING:
        want = true;
        break;
    default:
        want = c->in_end - c->in_start < CONN_INBUF;
        break;
    }
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
        else
            gw__http_conn_abort(c);
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct gw__http_conn *c = s->data;
    if (nread == 0)
        return;
    if (nread == UV_ENOBUFS) {
        update_reading(c);
        return;
    }
    if (nread < 0) {
        /* EOF or a socket error: the client is gone. A half-closed client
         * (shutdown after sending) is treated the same way; see http.h. */
        gw__http_conn_abort(c);
        return;
    }
    if (c->state == CONN_CLOSING) {
        c->in_start = c->in_end = 0;
        return;
    }
    c->in_end += (size_t)nread;
    conn_parse(c);
}

/* ---- lifecycle ---- */

static void on_handle_closed(uv_handle_t *h)
{
    struct gw__http_conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    struct gw_http_server *srv = c->srv;
    struct gw__http_request *r = c->req;
    bool notify = false;
    c->req = NULL;
    gw__http_server_conn_gone(srv, c);
    if (r != NULL) {
        r->conn = NULL;
        if (r->phase == REQ_RECEIVING) {
            gw__http_request_release(r);
        } else {
            /* The handler still holds it; it is freed by its respond/end. */
            srv->detached++;
            notify = r->phase == REQ_STREAMING && r->on_close != NULL;
        }
    }
    if (c->spare != NULL) {
        gw__http_pool_reset(&c->spare->pool);
        free(c->spare);
    }
    free(c->hbuf);
    free(c->hoff);
    free(c);
    if (notify) {
        /* Last: on_close may end the stream, which may free the server. */
        void (*cb)(struct gw_http_req *) = r->on_close;
        r->on_close = NULL;
        cb(&r->pub);
    } else {
        gw__http_server_maybe_finish(srv);
    }
}

struct gw__http_conn *gw__http_conn_create(struct gw_http_server *srv)
{
    struct gw__http_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->hoff = malloc(sizeof(*c->hoff) * srv->opts.max_headers);
    if (c->hoff == NULL) {
        free(c);
        return NULL;
    }
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    gw__http_framing_begin_head(&c->framing);

    gw_list_insert(&srv->conns, &c->link);
    srv->nconns++;
    srv->stats.connections_open = srv->nconns;

    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->tcp) != 0) {
        gw__http_conn_abort(c);
        return c;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[INET6_ADDRSTRLEN] = "";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            snprintf(c->remote, sizeof(c->remote), "%s:%d", ip, port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            snprintf(c->remote, sizeof(c->remote), "[%s]:%d", ip, port);
        }
    }
    conn_enter(c, CONN_IDLE);
    return c;
}

void gw__http_conn_abort(struct gw__http_conn *c)
{
    if (c->state != CONN_CLOSED)
        conn_enter(c, CONN_CLOSED);
}

void gw__http_conn_shutdown_idle(struct gw__http_conn *c)
{
    switch (c->state) {
    case CONN_IDLE:
    case CONN_READING_HEADERS:
    case CONN_READING_BODY:
    case CONN_CLOSING:
        gw__http_conn_abort(c);
        break;
    case CONN_HANDLER_PENDING:
    case CONN_STREAMING:
    case CONN_WRITING:
        /* A handler is involved: the response goes out with Connection:
         * close (the server is draining) and the connection closes after. */
        c->keep_alive = false;
        break;
    case CONN_CLOSED:
        break;
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct gw__http_conn *c = req->data;
    if (status < 0)
        gw__http_conn_abort(c);
}

/* The one place where a connection changes state. */
static void conn_enter(struct gw__http_conn *c, enum gw__http_conn_state s)
{
    const struct gw_http_server_options *o = &c->srv->opts;
    c->state = s;
    switch (s) {
    case CONN_IDLE:
        /* A fresh connection gets the header timeout to send its first
         * request; a kept-alive one the idle timeout. Expiry closes silently. */
        uv_timer_start(&c->timer, on_timeout,
                       c->served_one ? o->idle_timeout_ms : o->header_timeout_ms, 0);
        break;
    case CONN_READING_HEADERS:
        uv_timer_start(&c->timer, on_timeout, o->header_timeout_ms, 0);
        break;
    case CONN_READING_BODY:
        uv_timer_start(&c->timer, on_timeout, o->body_timeout_ms, 0);
        break;
    case CONN_HANDLER_PENDING:
    case CONN_STREAMING:
    case CONN_WRITING:
        uv_timer_stop(&c->timer);
        break;
    case CONN_CLOSING:
        c->in_start = c->in_end = 0;
        uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
        c->shutdown_req.data = c;
        if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
            conn_enter(c, CONN_CLOSED);
            return;
        }
        break;
    case CONN_CLOSED:
        c->reading = false;
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        return;
    }
    update_reading(c);
}

/* A request that the server answers itself (400, 408, 413, 431) and after
 * which the connection closes. */
static void conn_fail(struct gw__http_conn *c, int status, const char *code, const char *detail)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->req != NULL) {
        gw__http_request_release(c->req);
        c->req = NULL;
    }
    c->srv->stats.bad_requests++;
    gw__http_conn_send_problem(c, status, code, detail);
}

static void set_fail(struct gw__http_conn *c, int status, const char *code, const char *detail)
{
    if (c->fail_status == 0) {
        c->fail_status = status;
        c->fail_code = code;
        c->fail_detail = detail;
    }
}

static void on_timeout(uv_timer_t *t)
{
    struct gw__http_conn *c = t->data;
    switch (c->state) {
    case CONN_IDLE:
    case CONN_CLOSING:
        gw__http_conn_abort(c);
        break;
    case CONN_READING_HEADERS:
        conn_fail(c, 408, "request_timeout", "the request headers took too long to arrive");
        break;
    case CONN_READING_BODY:
        conn_fail(c, 408, "request_timeout", "the request body took too long to arrive");
        break;
    default:
        break;
    }
}

/* ---- writing ---- */

static void conn_maybe_finished(struct gw__http_conn *c)
{
    if (c->state != CONN_WRITING || c->writes_pending != 0)
        return;
    c->served_one = true;
    if (c->keep_alive && !c->srv->draining) {
        conn_enter(c, CONN_IDLE);
        conn_parse(c); /* pipelined input may be waiting */
    } else {
        conn_enter(c, CONN_CLOSING);
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct wbuf *w = container_of(req, struct wbuf, req);
    struct gw__http_conn *c = w->conn;
    c->writes_pending--;
    c->queued_bytes -= w->len;
    free(w);
    if (status < 0) {
        gw__http_conn_abort(c);
        return;
    }
    conn_maybe_finished(c);
}

int gw__http_conn_write(struct gw__http_conn *c, const uv_buf_t *bufs, unsigned n)
{
    if (c->state == CONN_CLOSED)
        return GW_ECLOSED;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    size_t done = 0;
    if (c->writes_pending == 0) {
        /* Fast path: most responses fit in the socket buffer at once. */
        int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (r >= 0)
            done = (size_t)r;
        else if (r != UV_EAGAIN && r != UV_ENOSYS) {
            gw__http_conn_abort(c);
            return GW_ECLOSED;
        }
        if (done == total)
            return 0;
    }
    size_t rem = total - done;
    struct wbuf *w = malloc(sizeof(*w) + rem);
    if (w == NULL) {
        gw_log_error("http: out of memory queueing %zu bytes", rem);
        gw__http_conn_abort(c);
        return GW_ENOMEM;
    }
    size_t skip = done, off = 0;
    for (unsigned i = 0; i < n; i++) {
        if (skip >= bufs[i].len) {
            skip -= bufs[i].len;
            continue;
        }
        memcpy(w->data + off, bufs[i].base + skip, bufs[i].len - skip);
        off += bufs[i].len - skip;
        skip = 0;
    }
    w->conn = c;
    w->len = rem;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)rem);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r != 0) {
        free(w);
        gw__http_conn_abort(c);
        return GW_ECLOSED;
    }
    c->writes_pending++;
    c->queued_bytes += rem;
    return 0;
}

void gw__http_conn_response_queued(struct gw__http_conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    conn_enter(c, CONN_WRITING);
    conn_maybe_finished(c);
}

void gw__http_conn_stream_started(struct gw__http_conn *c)
{
    if (c->state != CONN_CLOSED)
        conn_enter(c, CONN_STREAMING);
}

void gw__http_conn_send_problem(struct gw__http_conn *c, int status, const char *code,
                                const char *detail)
{
    char body[768], head[256];
    size_t blen = gw__http_problem_format(body, sizeof(body), status, code, detail);
    int hlen = snprintf(head, sizeof(head),
                        "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\n"
                        "Content-Length: %zu\r\nDate: %s\r\nConnection: close\r\n\r\n",
                        status, gw_http_status_text(status), blen, gw__http_server_date(c->srv));
    uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)hlen), uv_buf_init(body, (unsigned)blen)};
    c->keep_alive = false;
    if (gw__http_conn_write(c, bufs, 2) == 0)
        gw__http_conn_response_queued(c);
}

/* ---- parsing ---- */

static void conn_dispatch(struct gw__http_conn *c)
{
    struct gw__http_request *r = c->req;
    r->phase = REQ_PENDING;
    c->srv->stats.requests++;
    conn_enter(c, CONN_HANDLER_PENDING);
    c->srv->handler(&r->pub, c->srv->arg);
}

/* A more precise detail than http_errno_description() where it matters. */
static const char *parser_error_detail(enum http_errno e)
{
    switch (e) {
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        return "more than one Content-Length, or Content-Length with Transfer-Encoding";
    case HPE_INVALID_CONTENT_LENGTH:
        return "invalid Content-Length";
    case HPE_INVALID_TRANSFER_ENCODING:
        return "Transfer-Encoding whose final coding is not chunked";
    default:
        return http_errno_description(e);
    }
}

/* RFC 9110 tchar: what a method token is made of. */
static bool tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* http-parser knows a fixed list of methods and answers any other one
 * "invalid HTTP method". A well-formed method it lacks (QUERY, a typo, an
 * extension) deserves the application's answer instead: 405 with Allow on a
 * path it serves, 404 elsewhere. So at the start of a request such a token
 * is consumed here and the parser is fed "GET" in its place; the request
 * carries the real name (c->method). Returns -1 while the token may still
 * be arriving, -2 when the request failed (answered), 0 otherwise. */
static int conn_other_method(struct gw__http_conn *c)
{
    const char *s = c->in + c->in_start;
    size_t len = c->in_end - c->in_start, i = 0, start, n;

    c->method[0] = '\0';
    while (i < len && (s[i] == '\r' || s[i] == '\n'))
        i++; /* http-parser skips empty lines before a request, so do we */
    start = i;
    while (i < len && i - start < sizeof(c->method) && tchar(s[i]))
        i++;
    n = i - start;
    if (i == len && n < sizeof(c->method))
        return n == 0 ? 0 : -1;
    if (n == 0 || n >= sizeof(c->method) || s[i] != ' ')
        return 0; /* not a method: the parser says why */
    for (int m = 0;; m++) {
        const char *known = http_method_str((enum http_method)m);
        if (strcmp(known, "<unknown>") == 0)
            break;
        if (strlen(known) == n && memcmp(known, s + start, n) == 0)
            return 0;
    }
    memcpy(c->method, s + start, n);
    c->method[n] = '\0';
    /* The strict scan (framing.c) still sees the real bytes. */
    if (gw__http_framing_scan(&c->framing, s, i) < i || c->framing.error != NULL) {
        conn_fail(c, 400, "bad_request",
                  c->framing.error != NULL ? c->framing.error : "invalid request line");
        return -2;
    }
    c->in_start += i;
    http_parser_execute(&c->parser, &parser_settings, "GET", 3);
    return 0;
}

static void conn_parse(struct gw__http_conn *c)
{
    if (c->parsing)
        return; /* a handler answered synchronously; the loop below goes on */
    c->parsing = true;
    while (c->in_start < c->in_end && (c->state == CONN_IDLE || c->state == CONN_READING_HEADERS ||
                                       c->state == CONN_READING_BODY)) {
        if (c->state == CONN_IDLE && conn_other_method(c) < 0)
            break; /* the rest of the method is still to come, or it failed */
        const char *at = c->in + c->in_start;
        size_t len = c->in_end - c->in_start;
        /* The strict scan (framing.c) sees the bytes first and http-parser
         * gets only what it accepted, so whichever of the two objects to
         * the earlier byte reports (a 431 before a later bad byte). Never
         * execute with 0 bytes: that means EOF to http-parser. */
        size_t feed = gw__http_framing_scan(&c->framing, at, len);
        size_t n = feed > 0 ? http_parser_execute(&c->parser, &parser_settings, at, feed) : 0;
        c->in_start += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            conn_dispatch(c);
            continue;
        }
        if (c->state == CONN_CLOSED)
            break;
        if (e != HPE_OK) {
            if (c->fail_status != 0)
                conn_fail(c, c->fail_status, c->fail_code, c->fail_detail);
            else if (e == HPE_HEADER_OVERFLOW)
                conn_fail(c, 431, "headers_too_large", "the request headers are too large");
            else
                conn_fail(c, 400, "bad_request", parser_error_detail(e));
            break;
        }
        if (n < feed) {
            conn_fail(c, 400, "bad_request", "unexpected data after the request");
            break;
        }
        if (c->framing.error != NULL) {
            conn_fail(c, 400, "bad_request", c->framing.error);
            break;
        }
    }
    if (c->in_start == c->in_end)
        c->in_start = c->in_end = 0;
    c->parsing = false;
    update_reading(c);
}

static int hbuf_append(struct gw__http_conn *c, const char *at, size_t len)
{
    size_t max = c->srv->opts.max_header_bytes;
    if (len > max || c->hlen > max - len) {
        set_fail(c, 431, "headers_too_large", "the request line and headers are too large");
        return -1;
    }
    if (c->hlen + len > c->hcap) {
        size_t cap = c->hcap ? c->hcap : 1024;
        while (cap < c->hlen + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *nb = realloc(c->hbuf, cap);
        if (nb == NULL) {
            set_fail(c, 503, "out_of_memory", "the server is out of memory");
            return -1;
        }
        c->hbuf = nb;
        c->hcap = cap;
    }
    memcpy(c->hbuf + c->hlen, at, len);
    c->hlen += len;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct gw__http_conn *c = p->data;
    c->fail_status = 0;
    c->req = gw__http_request_new(c);
    if (c->req == NULL) {
        set_fail(c, 503, "out_of_memory", "the server is out of memory");
        return -1;
    }
    c->hlen = 0;
    c->nheaders = 0;
    c->hlast = H_NONE;
    c->headers_done = false;
    c->trailer_bytes = 0;
    c->url_len = 0;
    conn_enter(c, CONN_READING_HEADERS);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct gw__http_conn *c = p->data;
    c->hlast = H_URL;
    return hbuf_append(c, at, len);
}

static int trailer(struct gw__http_conn *c, size_t len)
{
    /* Trailers of a chunked body are ignored but still count. */
    c->trailer_bytes += len;
    if (c->trailer_bytes > c->srv->opts.max_header_bytes) {
        set_fail(c, 431, "headers_too_large", "the request trailers are too large");
        return -1;
    }
    return 0;
}

static int end_url(struct gw__http_conn *c)
{
    c->url_len = (uint32_t)c->hlen;
    return hbuf_append(c, "", 1);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct gw__http_conn *c = p->data;
    if (c->headers_done)
        return trailer(c, len);
    if (c->hlast != H_FIELD) {
        if (c->hlast == H_URL && end_url(c) != 0)
            return -1;
        if (c->hlast == H_VALUE && hbuf_append(c, "", 1) != 0)
            return -1;
        if (c->nheaders == c->srv->opts.max_headers) {
            set_fail(c, 431, "too_many_headers", "the request has too many header fields");
            return -1;
        }
        c->hoff[c->nheaders].name = (uint32_t)c->hlen;
        c->hoff[c->nheaders].value = 0;
        c->nheaders++;
        c->hlast = H_FIELD;
    }
    return hbuf_append(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct gw__http_conn *c = p->data;
    if (c->headers_done)
        return trailer(c, len);
    if (c->hlast != H_VALUE) {
        if (hbuf_append(c, "", 1) != 0)
            return -1;
        c->hoff[c->nheaders - 1].value = (uint32_t)c->hlen;
        c->hlast = H_VALUE;
    }
    return hbuf_append(c, at, len);
}

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

static int on_headers_complete(http_parser *p)
{
    struct gw__http_conn *c = p->data;
    struct gw__http_request *r = c->req;
    int rc = 0;
    switch (c->hlast) {
    case H_NONE:
    case H_URL:
        rc = end_url(c);
        break;
    case H_FIELD: /* a name without a value: give it "" */
        rc = hbuf_append(c, "", 1);
        if (rc == 0) {
            c->hoff[c->nheaders - 1].value = (uint32_t)c->hlen;
            rc = hbuf_append(c, "", 1);
        }
        break;
    case H_VALUE:
        rc = hbuf_append(c, "", 1);
        break;
    }
    if (rc != 0)
        return -1;
    c->headers_done = true;
    if (gw__http_request_finish_headers(c, r) != 0 || gw__http_framing_check_request(c, r) != 0)
        return -1;
    if (c->framing.mode != FRAMING_WAIT) {
        /* http-parser saw the end of the header section where the strict
         * scan did not. */
        set_fail(c, 400, "bad_request", "the request framing is ambiguous");
        return -1;
    }

    bool chunked = (p->flags & F_CHUNKED) != 0;
    bool has_len = (p->flags & F_CONTENTLENGTH) != 0;
    gw__http_framing_begin_body(&c->framing, chunked);
    size_t max = c->srv->opts.max_body_bytes;
    if (has_len && p->content_length > max) {
        set_fail(c, 413, "body_too_large", "the request body exceeds the server's limit");
        return -1;
    }
    if (!chunked && !(has_len && p->content_length > 0))
        return 0;
    if (has_len && !chunked) {
        r->body_cap = (size_t)p->content_length + 1;
        r->body = gw__http_pool_alloc(&r->pool, r->body_cap);
        if (r->body == NULL) {
            set_fail(c, 503, "out_of_memory", "the server is out of memory");
            return -1;
        }
    }
    const char *expect = gw_http_req_header(&r->pub, "expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && !r->http10) {
        uv_buf_t b = uv_buf_init((char *)continue_100, sizeof(continue_100) - 1);
        if (gw__http_conn_write(c, &b, 1) != 0)
            return -1;
    }
    conn_enter(c, CONN_READING_BODY);
    return 0;
}

static int on_chunk_header(http_parser *p)
{
    struct gw__http_conn *c = p->data;
    size_t max = c->srv->opts.max_body_bytes;
    if (p->content_length > max || c->req->pub.body_len > max - p->content_length) {
        set_fail(c, 413, "body_too_large", "the request body exceeds the server's limit");
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct gw__http_conn *c = p->data;
    struct gw__http_request *r = c->req;
    if (c->state == CONN_CLOSED)
        return -1;
    size_t need = r->pub.body_len + len + 1;
    if (need - 1 > c->srv->opts.max_body_bytes) {
        set_fail(c, 413, "body_too_large", "the request body exceeds the server's limit");
        return -1;
    }
    if (need > r->body_cap) {
        /* Chunked: grow geometrically inside the pool (old blocks are freed
         * with the pool), so the copying stays linear. */
        size_t cap = r->body_cap ? r->body_cap * 2 : 4096;
        if (cap < need)
            cap = need;
        if (cap > c->srv->opts.max_body_bytes + 1)
            cap = c->srv->opts.max_body_bytes + 1;
        char *nb = gw__http_pool_alloc(&r->pool, cap);
        if (nb == NULL) {
            set_fail(c, 503, "out_of_memory", "the server is out of memory");
            return -1;
        }
        if (r->pub.body_len > 0)
            memcpy(nb, r->body, r->pub.body_len);
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->pub.body_len, at, len);
    r->pub.body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct gw__http_conn *c = p->data;
    struct gw__http_request *r = c->req;
    if (c->state == CONN_CLOSED)
        return -1;
    if (c->framing.mode == FRAMING_CHUNKED) {
        /* http-parser ended a chunked body where the strict scan did not. */
        set_fail(c, 400, "bad_request", "the request framing is ambiguous");
        return -1;
    }
    gw__http_framing_begin_head(&c->framing);
    if (r->body != NULL) {
        r->body[r->pub.body_len] = '\0';
        r->pub.body = r->body;
    } else {
        r->pub.body = "";
    }
    /* Upgrades (WebSocket, h2c) are not supported: answer, then close. */
    r->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    http_parser_pause(p, 1);
    return 0;
}
