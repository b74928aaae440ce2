/*
 * HTTP/1.1 server on libuv, parsing with Debian's http-parser (libhttp-parser).
 *
 * One request at a time per connection (pipelined requests wait their turn);
 * keep-alive by default; limits on header size and count, body size, header
 * and idle timeouts. Malformed HTTP is answered 400 and the connection closed;
 * an oversized body gets 413 (problem+json) and a close.
 *
 * Framing is strict RFC 9112 (docs/decisions/0018). http-parser refuses a
 * repeated Content-Length, Content-Length with Transfer-Encoding and a final
 * coding other than chunked; on top of it the server gives 400 to
 * whitespace in or before a header name, obs-fold, bare CR, bare LF line
 * ends, versions other than HTTP/1.0 and HTTP/1.1, CTLs other than HTAB in
 * values, request-target bytes outside RFC 3986 (or '#', or a malformed
 * %-escape), a missing (HTTP/1.1), repeated or invalid Host, "*" with a
 * method other than OPTIONS, any Transfer-Encoding but one "chunked" (and
 * any in HTTP/1.0), and chunked framing off the grammar (chunk-ext, CRLF
 * after chunk data, trailer lines). Handlers only see requests that passed.
 *
 * A handler receives a `struct gw_http_req` and must eventually call exactly
 * one of gw_http_respond() or gw_http_stream_begin() ... gw_http_stream_end(),
 * possibly later from another callback on the same loop. If the client goes
 * away first, the request stays valid until the handler responds (the
 * response is then discarded) — handlers never see freed requests. After
 * gw_http_respond() or gw_http_stream_end() returns, `req` is gone.
 *
 * Errors produced by the server itself are RFC 9457 application/problem+json
 * bodies ({"type":"about:blank","title":...,"status":...,"code":...,
 * "detail":...}) followed by a close:
 *   400 bad_request        malformed HTTP (see above; `detail` names the
 *                          fault), bad %-escape or NUL in the path
 *   408 request_timeout    headers or body slower than their timeout
 *   413 body_too_large     Content-Length or chunked body over the limit
 *   431 headers_too_large  request line + headers over max_header_bytes
 *   431 too_many_headers   more than max_headers header fields
 * `Expect: 100-continue` is answered with "100 Continue" once the headers
 * passed the limits. An idle keep-alive connection is closed silently.
 * A client that half-closes (EOF) is treated as gone, even if it still waits
 * for a response. Upgrade/CONNECT are not supported (answered, then closed).
 *
 * Memory: each request has a pool (gw_http_req_alloc) freed when the
 * response ends; headers, path, query and body live in it.
 * Threading: loop thread only.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "gw/error.h"

struct gw_http_server;
struct gw_http_req;

struct gw_http_header {
    const char *name; /* lower-cased by the server */
    const char *value;
};

struct gw_http_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* decoded path without query, e.g. "/v1/runs/abc" */
    const char *query;  /* raw query string without '?', "" when none */
    const struct gw_http_header *headers;
    size_t nheaders;
    const char *body; /* NUL-terminated for convenience; may contain NULs */
    size_t body_len;
    char remote_addr[64]; /* "127.0.0.1:54321" */
    void *user;           /* free for the handler's use */
};

typedef void (*gw_http_handler)(struct gw_http_req *req, void *arg);

struct gw_http_server_options {
    const char *host;           /* "127.0.0.1", "0.0.0.0", "::" */
    int port;                   /* 0 = pick a free port (see gw_http_server_port) */
    size_t max_header_bytes;    /* total header bytes; 0 = 16 KiB */
    size_t max_headers;         /* header count; 0 = 64 */
    size_t max_body_bytes;      /* 0 = 1 MiB */
    unsigned header_timeout_ms; /* time to receive full headers; 0 = 10 s */
    unsigned idle_timeout_ms;   /* keep-alive idle; 0 = 60 s */
    unsigned body_timeout_ms;   /* time to receive the body; 0 = 30 s */
};

/* Binds and listens. Returns NULL with `err` set (e.g. address in use; the
 * half-made listener is then freed on the next loop iteration, so run the
 * loop before closing it). */
struct gw_http_server *gw_http_server_create(uv_loop_t *loop,
                                             const struct gw_http_server_options *opts,
                                             gw_http_handler handler, void *arg,
                                             struct gw_error *err);

/* The bound port (useful with port 0). */
int gw_http_server_port(const struct gw_http_server *srv);

/* Stops accepting, closes idle connections (and ones still sending a
 * request), lets in-flight requests finish: their responses carry
 * Connection: close. `done` (may be NULL) runs when the last handle is closed
 * and the server is freed — from a close callback, or from inside the
 * gw_http_respond()/gw_http_stream_end() that ends the last request whose
 * client had already left. Open streams keep the server alive until the
 * handler ends them. Accepts NULL; a second call does nothing. */
void gw_http_server_destroy(struct gw_http_server *srv, void (*done)(void *arg), void *arg);

/* Case-insensitive header lookup; NULL when absent. */
const char *gw_http_req_header(const struct gw_http_req *req, const char *name);

/* Query parameter lookup: decodes `+` and %XX (%00 is kept literally; a
 * malformed escape never reaches a handler, the server refuses the request,
 * but would be kept literally too) of the first `name=value` into `out`,
 * NUL-terminated.
 * A parameter without '=' has the value "". Returns false when absent or
 * when the decoded value does not fit in `cap` bytes (NUL included). */
bool gw_http_req_query(const struct gw_http_req *req, const char *name, char *out, size_t cap);

/* Allocates `n` bytes from the request's pool (16-byte aligned), freed when
 * the response ends. NULL when out of memory. */
void *gw_http_req_alloc(struct gw_http_req *req, size_t n);

/* Sends a complete response and ends the request. `extra_headers` is NULL or
 * a string of "Name: value\r\n" lines. `body` is copied. Content-Length is
 * added. Returns 0, or < 0 when the connection is gone (nothing to do; the
 * request is freed all the same). GW_ECONFLICT (and nothing happens) if the
 * request was already answered or is streaming. A status outside 200..999
 * becomes 500. HEAD requests get the headers only. */
int gw_http_respond(struct gw_http_req *req, int status, const char *content_type,
                    const char *extra_headers, const char *body, size_t body_len);

/* gw_http_respond() with an RFC 9457 problem+json body:
 * {"type":"about:blank","title":<reason>,"status":status,"code":code,"detail":detail}
 * (`detail` may be NULL and is JSON-escaped). */
int gw_http_respond_problem(struct gw_http_req *req, int status, const char *code,
                            const char *detail);

/* Streaming (Server-Sent Events, chunked transfer): begin sends the status and
 * headers with Transfer-Encoding: chunked; write sends one chunk; end sends
 * the last chunk and ends the request. `on_close` (may be NULL) is called once
 * if the client disconnects before end — after that, write returns < 0 and
 * the handler must still call end (which then only frees). on_close runs from
 * a loop callback, never from inside a gw_http_* call, and write may return
 * < 0 a little before it arrives. Once begin was called (even if it returned
 * < 0) the handler must call end. A stream whose client lets more than
 * 16 MiB pile up unsent is cut off (write returns < 0, on_close follows).
 * HTTP/1.0 clients get the raw bytes and a close instead of chunks.
 * While a stream is open, graceful destroy waits for it to end. */
int gw_http_stream_begin(struct gw_http_req *req, int status, const char *content_type,
                         const char *extra_headers, void (*on_close)(struct gw_http_req *req));
int gw_http_stream_write(struct gw_http_req *req, const char *data, size_t len);
/* Called on a request that never began a stream, end answers an empty 200. */
void gw_http_stream_end(struct gw_http_req *req);

/* The reason phrase for a status code ("Not Found"). */
const char *gw_http_status_text(int status);

struct gw_http_stats {
    unsigned long long requests;     /* requests given to the handler */
    unsigned long long bad_requests; /* answered by the server itself: 400, 408, 413, 431 */
    unsigned long connections_open;
};
void gw_http_server_stats(const struct gw_http_server *srv, struct gw_http_stats *out);

#endif
