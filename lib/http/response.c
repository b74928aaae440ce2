/*
 * Responses: complete ones (gw_http_respond), chunked streams, the
 * problem+json bodies of the server's own errors, and reason phrases.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/log.h"

/* A stream whose client reads slower than the handler writes is cut off when
 * this much is queued, rather than growing without bound. */
#define STREAM_MAX_QUEUED ((size_t)16 << 20)

const char *gw_http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 425:
        return "Too Early";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        break;
    }
    if (status >= 200 && status < 300)
        return "OK";
    if (status >= 400 && status < 500)
        return "Bad Request";
    if (status >= 500 && status < 600)
        return "Internal Server Error";
    return "Unknown";
}

/* Appends `s` JSON-escaped; stops before overflowing. */
static size_t put_json(char *out, size_t cap, size_t pos, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)s; *p && pos + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)*p;
        } else if (*p < 0x20) {
            out[pos++] = '\\';
            out[pos++] = 'u';
            out[pos++] = '0';
            out[pos++] = '0';
            out[pos++] = hex[*p >> 4];
            out[pos++] = hex[*p & 15];
        } else {
            out[pos++] = (char)*p;
        }
    }
    return pos;
}

static size_t put_raw(char *out, size_t cap, size_t pos, const char *s)
{
    size_t n = strlen(s);
    if (pos + n >= cap)
        n = cap - pos - 1;
    memcpy(out + pos, s, n);
    return pos + n;
}

size_t gw__http_problem_format(char *out, size_t cap, int status, const char *code,
                               const char *detail)
{
    char num[16];
    size_t pos = 0;
    snprintf(num, sizeof(num), "%d", status);
    pos = put_raw(out, cap, pos, "{\"type\":\"about:blank\",\"title\":\"");
    pos = put_json(out, cap, pos, gw_http_status_text(status));
    pos = put_raw(out, cap, pos, "\",\"status\":");
    pos = put_raw(out, cap, pos, num);
    pos = put_raw(out, cap, pos, ",\"code\":\"");
    pos = put_json(out, cap, pos, code ? code : "error");
    pos = put_raw(out, cap, pos, "\"");
    if (detail != NULL) {
        pos = put_raw(out, cap, pos, ",\"detail\":\"");
        pos = put_json(out, cap, pos, detail);
        pos = put_raw(out, cap, pos, "\"");
    }
    pos = put_raw(out, cap, pos, "}");
    out[pos] = '\0';
    return pos;
}

static bool status_has_body(int status)
{
    return !(status == 204 || status == 304 || (status >= 100 && status < 200));
}

/* Formats the status line and headers into `buf` (the stack when it fits,
 * the request's pool otherwise). Returns the length or -1. `clen` < 0 means
 * streaming: chunked framing, or no length and a close for HTTP/1.0. */
static int format_head(struct gw__http_request *r, char **buf, size_t stack_cap, int status,
                       const char *ctype, const char *extra, long long clen, bool keep)
{
    if (ctype == NULL)
        ctype = "";
    if (extra == NULL)
        extra = "";
    size_t need = 256 + strlen(ctype) + strlen(extra);
    if (need > stack_cap) {
        *buf = gw__http_pool_alloc(&r->pool, need);
        if (*buf == NULL)
            return -1;
    }
    char len_line[64] = "";
    if (clen >= 0 && status_has_body(status))
        snprintf(len_line, sizeof(len_line), "Content-Length: %lld\r\n", clen);
    else if (clen < 0 && r->chunked_out)
        snprintf(len_line, sizeof(len_line), "Transfer-Encoding: chunked\r\n");
    int n = snprintf(*buf, need, "HTTP/1.1 %d %s\r\n%s%s%s%sDate: %s\r\nConnection: %s\r\n%s\r\n",
                     status, gw_http_status_text(status), *ctype ? "Content-Type: " : "", ctype,
                     *ctype ? "\r\n" : "", len_line, gw__http_server_date(r->srv),
                     keep ? "keep-alive" : "close", extra);
    if (n < 0 || (size_t)n >= need)
        return -1;
    return n;
}

/* Ends the request: unlinks it from its connection (if any) and frees it. */
static void request_end(struct gw__http_request *r)
{
    struct gw__http_conn *c = r->conn;
    struct gw_http_server *srv = r->srv;
    if (c != NULL) {
        c->req = NULL;
        gw__http_request_release(r);
    } else {
        gw__http_request_release(r);
        srv->detached--;
        gw__http_server_maybe_finish(srv);
    }
}

int gw_http_respond(struct gw_http_req *req, int status, const char *content_type,
                    const char *extra_headers, const char *body, size_t body_len)
{
    struct gw__http_request *r = (struct gw__http_request *)req;
    if (r->phase != REQ_PENDING)
        return GW_ECONFLICT;
    if (status < 200 || status > 999)
        status = 500;
    struct gw__http_conn *c = r->conn;
    if (c == NULL || c->state == CONN_CLOSED) {
        request_end(r);
        return GW_ECLOSED;
    }
    bool keep = r->keep_alive && !r->srv->draining;
    char stack[1024], *head = stack;
    int hlen = format_head(r, &head, sizeof(stack), status, content_type, extra_headers,
                           (long long)body_len, keep);
    if (hlen < 0) {
        gw_log_error("http: cannot format response headers");
        keep = false;
        head = stack;
        hlen = format_head(r, &head, sizeof(stack), 500, NULL, NULL, 0, false);
        body_len = 0;
    }
    uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)hlen), uv_buf_init((char *)body, 0)};
    unsigned nb = 1;
    if (!r->head && body_len > 0 && status_has_body(status)) {
        bufs[1].len = body_len;
        nb = 2;
    }
    c->keep_alive = keep;
    int rc = gw__http_conn_write(c, bufs, nb);
    request_end(r);
    if (rc != 0)
        return rc;
    gw__http_conn_response_queued(c);
    return 0;
}

int gw_http_respond_problem(struct gw_http_req *req, int status, const char *code,
                            const char *detail)
{
    char stack[1024];
    size_t cap = 256 + (detail ? strlen(detail) * 6 : 0) + (code ? strlen(code) * 6 : 0);
    char *body = stack;
    if (cap > sizeof(stack)) {
        body = gw_http_req_alloc(req, cap);
        if (body == NULL) {
            body = stack;
            cap = sizeof(stack);
        }
    } else {
        cap = sizeof(stack);
    }
    size_t len = gw__http_problem_format(body, cap, status, code, detail);
    return gw_http_respond(req, status, "application/problem+json", NULL, body, len);
}

int gw_http_stream_begin(struct gw_http_req *req, int status, const char *content_type,
                         const char *extra_headers, void (*on_close)(struct gw_http_req *req))
{
    struct gw__http_request *r = (struct gw__http_request *)req;
    if (r->phase != REQ_PENDING)
        return GW_ECONFLICT;
    if (status < 200 || status > 999)
        status = 500;
    r->phase = REQ_STREAMING;
    r->on_close = on_close;
    struct gw__http_conn *c = r->conn;
    if (c == NULL || c->state == CONN_CLOSED)
        return GW_ECLOSED;
    /* HTTP/1.0 has no chunked coding: the body ends when we close. */
    r->chunked_out = !r->http10 && status_has_body(status);
    bool keep = r->keep_alive && !r->srv->draining && r->chunked_out;
    char stack[1024], *head = stack;
    int hlen = format_head(r, &head, sizeof(stack), status, content_type, extra_headers, -1, keep);
    if (hlen < 0)
        return GW_EINVAL;
    uv_buf_t b = uv_buf_init(head, (unsigned)hlen);
    c->keep_alive = keep;
    int rc = gw__http_conn_write(c, &b, 1);
    if (rc != 0)
        return rc;
    gw__http_conn_stream_started(c);
    return 0;
}

int gw_http_stream_write(struct gw_http_req *req, const char *data, size_t len)
{
    struct gw__http_request *r = (struct gw__http_request *)req;
    if (r->phase != REQ_STREAMING)
        return GW_ECONFLICT;
    struct gw__http_conn *c = r->conn;
    if (c == NULL || c->state == CONN_CLOSED)
        return GW_ECLOSED;
    if (len == 0 || r->head)
        return 0; /* an empty chunk would end the stream */
    if (c->queued_bytes > STREAM_MAX_QUEUED) {
        gw_log_warn("http: stream to %s is too slow (%zu bytes queued), closing",
                    r->pub.remote_addr, c->queued_bytes);
        gw__http_conn_abort(c);
        return GW_ECLOSED;
    }
    if (!r->chunked_out) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        return gw__http_conn_write(c, &b, 1);
    }
    char size[24];
    int n = snprintf(size, sizeof(size), "%zx\r\n", len);
    uv_buf_t bufs[3] = {uv_buf_init(size, (unsigned)n), uv_buf_init((char *)data, (unsigned)len),
                        uv_buf_init((char *)"\r\n", 2)};
    return gw__http_conn_write(c, bufs, 3);
}

void gw_http_stream_end(struct gw_http_req *req)
{
    struct gw__http_request *r = (struct gw__http_request *)req;
    if (r->phase == REQ_PENDING) {
        /* end without begin: answer with an empty 200 so the request ends. */
        gw_http_respond(req, 200, NULL, NULL, NULL, 0);
        return;
    }
    if (r->phase != REQ_STREAMING)
        return;
    struct gw__http_conn *c = r->conn;
    int rc = -1;
    if (c != NULL && c->state == CONN_STREAMING) {
        rc = 0;
        if (r->chunked_out && !r->head) {
            uv_buf_t b = uv_buf_init((char *)"0\r\n\r\n", 5);
            rc = gw__http_conn_write(c, &b, 1);
        }
    }
    request_end(r);
    if (rc == 0)
        gw__http_conn_response_queued(c);
}
