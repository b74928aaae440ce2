/*
 * Non-blocking HTTP client: libcurl's multi interface driven by a libuv
 * loop (docs/decisions/0023). curl says which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION -> one uv_poll_t per socket) and when to call it
 * back (CURLMOPT_TIMERFUNCTION -> one uv_timer_t); readiness goes back
 * through curl_multi_socket_action and finished transfers come out of
 * curl_multi_info_read. Nothing here blocks the loop.
 *
 * A client belongs to one loop and may carry any number of requests at once;
 * they share its connection cache (keep-alive) and, when asked for, one
 * in-memory cookie store. Each request has its own easy handle, options and
 * timeouts.
 *
 * Every request goes to http:// or https:// only and never follows a
 * redirect (a Location is reported, not followed), so credentials only ever
 * reach the host they were meant for.
 *
 * Callbacks: if gw_http_client_request() returns NULL, `done` is never
 * called; otherwise it is called exactly once: from a loop callback with
 * the response, or with an error (transport failure, timeout, size cap),
 * or from inside gw_http_request_cancel()/gw_http_client_destroy() with
 * GW_ECLOSED. After `done` returns the request is gone.
 *
 * Errors given to `done` (err->message holds curl's text):
 *   GW_ETIMEDOUT (retriable)  connect or whole-exchange timeout
 *   GW_EUNAVAIL  (retriable)  name resolution, connection refused, reset...
 *   GW_ELIMIT                 the response body passed max_body
 *   GW_ENOMEM                 out of memory
 *   GW_ECLOSED                cancelled, or the client was destroyed
 *   GW_EIO       (retriable)  any other transport failure
 * An HTTP error status is a response, not an error.
 *
 * Threading: loop thread only; one client per loop thread. Signals: libcurl is
 * told not to touch them (CURLOPT_NOSIGNAL), so the process must ignore
 * SIGPIPE (a peer that hangs up during a TLS write raises it).
 */
#ifndef GW_HTTP_CLIENT_H
#define GW_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "gw/error.h"
#include "gw/http.h"

struct gw_http_client;
struct gw_http_request;

struct gw_http_client_options {
    /* Keep cookies set by responses and send them with later requests of
     * this client (curl's in-memory cookie engine). */
    bool cookies;
};

/* What came back: the final response (after any 100 Continue). Borrowed
 * for the duration of the `done` callback. */
struct gw_http_response {
    long status;
    const struct gw_http_header *headers; /* names lower-cased, values trimmed */
    size_t nheaders;
    const char *body; /* NUL-terminated ("" when empty or streamed) */
    size_t body_len;
};

typedef void (*gw_http_done_cb)(void *arg, const struct gw_http_response *resp,
                                const struct gw_error *err);
/* Streaming: the body bytes of a 2xx response as they arrive (then not
 * buffered and not counted against max_body). */
typedef void (*gw_http_chunk_cb)(void *arg, const char *data, size_t len);

struct gw_http_request_options {
    const char *method; /* NULL: POST with a body, GET without */
    const char *url;
    const char *const *headers; /* "Name: value" lines, NULL-terminated; copied */
    const char *body;           /* NULL: no body; copied */
    size_t body_len;
    const char *user, *password; /* basic auth when either is non-NULL */
    const char *user_agent;      /* NULL = "gangway" */
    long connect_timeout_ms;     /* 0 = 10 s */
    long timeout_ms;             /* the whole exchange; 0 = 30 s */
    size_t max_body;             /* response body cap; 0 = 8 MiB */
    gw_http_chunk_cb chunk;      /* NULL: buffer the body */
    bool discard_body;           /* read and drop the body (any status), no cap */
};

/* Creates a client on `loop` (initialises a timer: destroy it before the
 * loop can end). `opts` may be NULL. Returns NULL with `err` set. */
struct gw_http_client *gw_http_client_create(uv_loop_t *loop,
                                             const struct gw_http_client_options *opts,
                                             struct gw_error *err);

/* Cancels every request (each `done` gets GW_ECLOSED before this returns),
 * closes the handles and frees the client in the last close callback, then
 * calls `closed` (may be NULL). Accepts NULL. */
void gw_http_client_destroy(struct gw_http_client *c, void (*closed)(void *arg), void *arg);

/* Starts a request; strings are copied. Returns the request (a handle for
 * gw_http_request_cancel, valid until `done` is called) or NULL with `err`
 * set, and then `done` is never called. */
struct gw_http_request *gw_http_client_request(struct gw_http_client *c,
                                               const struct gw_http_request_options *o,
                                               gw_http_done_cb done, void *arg,
                                               struct gw_error *err);

/* Stops a request: its `done` is called with GW_ECLOSED before this
 * returns. Accepts NULL. */
void gw_http_request_cancel(struct gw_http_request *r);

/* Case-insensitive response header lookup; NULL when absent. */
const char *gw_http_response_header(const struct gw_http_response *resp, const char *name);

/* libcurl's global setup, once per process before any thread starts. */
int gw_http_client_global_init(struct gw_error *err);

#endif
