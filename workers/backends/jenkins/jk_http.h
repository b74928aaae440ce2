/*
 * One HTTP session per Jenkins run, on the library's non-blocking client
 * (lib/gw/http_client.h) driven by the run's libuv loop, with its cookie
 * store on, so the session cookie that goes with the CSRF crumb and the
 * kept-alive connection carry over from one request to the next.
 *
 * At most one request is in flight. Credentials are kept by the session and
 * given to each request as basic auth; they never appear in URLs, messages
 * or logs.
 *
 * Threading: loop thread only. Callbacks run from loop callbacks, never from
 * inside a jk_http_* call.
 */
#ifndef GW_JENKINS_JK_HTTP_H
#define GW_JENKINS_JK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct jk_http;

/* What came back. `body` is NUL-terminated (capped at 8 MiB) unless the
 * request streamed its body through a chunk callback. */
struct jk_reply {
    bool failed;       /* no response: transport error, timeout, size cap */
    const char *error; /* what went wrong when failed */
    long status;       /* HTTP status, 0 when none */
    const char *body;
    size_t body_len;
    const char *location; /* Location header or NULL */
    long long text_size;  /* X-Text-Size, -1 when absent */
    bool more_data;       /* X-More-Data: true */
};

typedef void (*jk_http_done_cb)(void *arg, const struct jk_reply *reply);
/* Streaming: body bytes of a 2xx response as they arrive. */
typedef void (*jk_http_chunk_cb)(void *arg, const char *data, size_t len);

/* Creates the client on `loop` (initialises its timer: the client must be
 * closed with gw_jk_http_close before the loop can end). user/password may be
 * NULL (anonymous). Returns NULL on allocation failure (nothing to close). */
struct jk_http *gw_jk_http_create(uv_loop_t *loop, const char *user, const char *password);

/* Extra request header for every later request ("Name: value"), replacing
 * the previous one; NULL removes it. Used for the crumb. Returns 0 or -1. */
int gw_jk_http_set_header(struct jk_http *h, const char *header);

/* Starts a request. `post_body` non-NULL makes it a POST with that
 * form-encoded body ("" = empty POST). `chunk` non-NULL streams a 2xx body
 * to it instead of buffering. Returns 0 (done follows exactly once) or -1
 * (nothing started, done never called). */
int gw_jk_http_request(struct jk_http *h, const char *url, const char *post_body,
                       jk_http_chunk_cb chunk, jk_http_done_cb done, void *arg);

/* Abandons the request in flight, if any: its done callback is not called. */
void gw_jk_http_abort(struct jk_http *h);

/* Aborts any request, closes every loop handle and frees the client; `closed`
 * runs once the last handle is closed (from a loop callback). NULL-safe. */
void gw_jk_http_close(struct jk_http *h, void (*closed)(void *arg), void *arg);

#endif
