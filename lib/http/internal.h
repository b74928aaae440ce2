/*
 * Private structures of the HTTP server (only lib/http's .c files include this).
 *
 * Ownership: the server owns its connections (a doubly linked list); a
 * connection owns the request it is receiving or answering. When a client
 * goes away while a handler still holds its request, the request is detached
 * (conn == NULL) and counted in server->detached, and the handler's eventual
 * respond/stream_end frees it. The server is freed only when its listener,
 * every connection and every detached request are gone.
 */
#ifndef GW_HTTP_INTERNAL_H
#define GW_HTTP_INTERNAL_H

#include <http_parser.h>
#include <stdint.h>
#include <time.h>

#include "gw/http.h"
#include "gw/list.h"

/* ---- per-request memory pool (pool.c) ---- */

struct gw__http_pool_block {
    struct gw__http_pool_block *next;
};

/* A bump allocator: the first block is supplied by the owner (embedded in the
 * request), further blocks are malloc'd and all freed by gw__http_pool_reset(). */
struct gw__http_pool {
    char *cur, *end;
    char *first, *first_end;
    struct gw__http_pool_block *blocks;
};

void gw__http_pool_init(struct gw__http_pool *p, void *mem, size_t size);
void *gw__http_pool_alloc(struct gw__http_pool *p, size_t n); /* NULL on out of memory */
void gw__http_pool_reset(struct gw__http_pool *p);            /* frees all but the first block */

/* ---- requests ---- */

enum gw__http_req_phase {
    REQ_RECEIVING, /* being parsed, owned by the connection */
    REQ_PENDING,   /* given to the handler, no response yet */
    REQ_STREAMING, /* gw_http_stream_begin done, no end yet */
};

#define REQ_INLINE_POOL 3072

struct gw__http_conn;

struct gw__http_request {
    struct gw_http_req pub;     /* first: handlers see only this */
    struct gw__http_conn *conn; /* NULL once detached from a closed connection */
    struct gw_http_server *srv;
    enum gw__http_req_phase phase;
    bool keep_alive;
    bool head; /* HEAD: send headers only */
    bool http10;
    bool chunked_out; /* streaming uses chunked framing */
    void (*on_close)(struct gw_http_req *req);
    char *body;
    size_t body_cap;
    struct gw__http_pool pool;
    _Alignas(16) char pool_mem[REQ_INLINE_POOL];
};

/* ---- strict RFC 9112 framing (framing.c) ---- */

enum gw__http_framing_mode {
    FRAMING_HEAD,    /* request line and header section */
    FRAMING_CHUNKED, /* chunked body and its trailer section */
    FRAMING_NONE,    /* a Content-Length body or none: nothing to check */
    FRAMING_WAIT,    /* a section ended; http-parser's callbacks choose the next mode */
};

/* The scan of raw request bytes that runs ahead of http-parser and refuses
 * what RFC 9112 forbids but http-parser lets through (see framing.c). */
struct gw__http_framing {
    uint8_t mode; /* enum gw__http_framing_mode */
    uint8_t state;
    uint8_t vpos; /* bytes of "HTTP/d.d" seen */
    uint8_t major, minor;
    bool first_line;     /* no field line seen yet in this section */
    uint64_t chunk_left; /* chunk-size being read, then data bytes still to skip */
    const char *error;   /* static text: why the scan stopped short */
};

void gw__http_framing_begin_head(struct gw__http_framing *f);
void gw__http_framing_begin_body(struct gw__http_framing *f, bool chunked);
/* Scans buf[0..len) from where the previous call stopped. Returns how many
 * bytes may be given to http-parser: len; or less when the section ended
 * inside buf (the mode is then FRAMING_WAIT); or the offset of a byte that
 * breaks RFC 9112, with f->error set. */
size_t gw__http_framing_scan(struct gw__http_framing *f, const char *buf, size_t len);

/* ---- connections ---- */

enum gw__http_conn_state {
    CONN_IDLE,            /* waiting for the first byte of a request */
    CONN_READING_HEADERS, /* request line and headers arriving */
    CONN_READING_BODY,    /* body arriving */
    CONN_HANDLER_PENDING, /* handler holds the request; parsing paused */
    CONN_STREAMING,       /* chunked response in progress */
    CONN_WRITING,         /* response queued, waiting for writes to drain */
    CONN_CLOSING,         /* FIN sent, discarding input until EOF or linger timeout */
    CONN_CLOSED,          /* handles closing; freed in the last close callback */
};

struct gw__http_header_off {
    uint32_t name, value;
};

#define CONN_INBUF 16384

struct gw__http_conn {
    struct gw_list link; /* in srv->conns */
    struct gw_http_server *srv;
    uv_tcp_t tcp;
    uv_timer_t timer; /* the current state's timeout (header, body, idle, linger) */
    uv_shutdown_t shutdown_req;
    int handles_open;
    enum gw__http_conn_state state;
    bool reading;    /* uv_read_start active */
    bool parsing;    /* inside conn_parse(): don't re-enter */
    bool served_one; /* a request was answered: IDLE uses the idle timeout */
    bool keep_alive; /* after the current response: keep the connection */
    http_parser parser;
    struct gw__http_framing framing;
    struct gw__http_request *req;   /* the request being received or answered */
    struct gw__http_request *spare; /* a finished request kept for reuse */
    unsigned writes_pending;
    size_t queued_bytes;
    /* failure chosen by a parser callback (413, 431, 400 with a detail) */
    int fail_status;
    const char *fail_code;
    const char *fail_detail;
    /* header accumulation: url, then name NUL value NUL ... */
    char *hbuf;
    size_t hlen, hcap;
    size_t trailer_bytes;
    uint32_t url_len;
    unsigned nheaders;
    enum { H_NONE, H_URL, H_FIELD, H_VALUE } hlast;
    bool headers_done;
    struct gw__http_header_off *hoff;
    char remote[64];
    /* the request's method when http-parser does not know it (conn.c
     * conn_other_method); "" otherwise */
    char method[24];
    /* unparsed input */
    size_t in_start, in_end;
    char in[CONN_INBUF];
};

/* ---- server ---- */

struct gw_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct gw_http_server_options opts;
    gw_http_handler handler;
    void *arg;
    struct gw_list conns; /* newest first */
    unsigned long nconns;
    unsigned long detached;
    bool draining;
    bool listener_closed;
    void (*done)(void *arg);
    void *done_arg;
    struct gw_http_stats stats;
    time_t date_sec;
    char date[40];
};

/* server.c */
void gw__http_server_conn_gone(struct gw_http_server *srv, struct gw__http_conn *c);
void gw__http_server_maybe_finish(struct gw_http_server *srv);
const char *gw__http_server_date(struct gw_http_server *srv);

/* conn.c */
struct gw__http_conn *gw__http_conn_create(struct gw_http_server *srv);
void gw__http_conn_abort(struct gw__http_conn *c);
void gw__http_conn_shutdown_idle(
    struct gw__http_conn *c); /* server destroy: close if no handler is involved */
int gw__http_conn_write(struct gw__http_conn *c, const uv_buf_t *bufs, unsigned n);
void gw__http_conn_response_queued(struct gw__http_conn *c); /* the whole response is queued */
void gw__http_conn_stream_started(struct gw__http_conn *c);  /* stream headers are queued */
void gw__http_conn_send_problem(struct gw__http_conn *c, int status, const char *code,
                                const char *detail);

/* request.c */
struct gw__http_request *gw__http_request_new(struct gw__http_conn *c);
void gw__http_request_release(
    struct gw__http_request *r); /* frees or keeps as the connection's spare */
/* Marks the connection's request refused with 400 bad_request and `detail`
 * (a static string) unless a failure is already recorded; returns -1. */
int gw__http_bad_request(struct gw__http_conn *c, const char *detail);
int gw__http_request_finish_headers(struct gw__http_conn *c, struct gw__http_request *r);

/* framing.c: the header rules http-parser does not enforce (version, Host,
 * Transfer-Encoding, asterisk-form). -1 with c->fail_* set when one fails. */
int gw__http_framing_check_request(struct gw__http_conn *c, struct gw__http_request *r);
/* The value of one hex digit (either case), -1 for any other byte. */
int gw__http_hex_value(unsigned ch);

/* response.c */
size_t gw__http_problem_format(char *out, size_t cap, int status, const char *code,
                               const char *detail);

#endif
