/*
 * A blocking Server-Sent Events reader on libcurl, for CLI commands (never
 * on a loop): splits the body into lines and lines into events, calling
 * on_event for each complete one, and remembers the last event id so a
 * broken connection can resume with Last-Event-ID.
 */
#ifndef GW_CLI_SSE_CLIENT_H
#define GW_CLI_SSE_CLIENT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

enum { GW_SSE_ENDED = 0, GW_SSE_BROKEN = -1, GW_SSE_UNREACHABLE = -2 };

/* Zero-initialise, set on_event (and arg), then call gw_sse_get() once per
 * connection; free with gw_sse_free(). on_event returns non-zero to stop. */
struct gw_sse {
    int (*on_event)(struct gw_sse *s, const char *event, const char *data, void *arg);
    void *arg;
    char last_id[32]; /* the last id seen: sent as Last-Event-ID on the next get */
    bool got_event;   /* set when an event arrived (the caller may clear it) */
    char error[256];  /* why, after GW_SSE_UNREACHABLE */
    char *buf;        /* internal; the error body after an HTTP status != 200 */
    size_t len, cap;
    CURL *curl;
    long status;
    char event[64];
    char *data;
    size_t dlen;
    char id[32];
    bool stop;
};

/* GETs `url` (with `token` as bearer when non-NULL) and reads the stream.
 * Returns GW_SSE_ENDED when the server ended the body or on_event asked to
 * stop, GW_SSE_BROKEN when the connection broke midway (get again to
 * resume), GW_SSE_UNREACHABLE when no answer came (s->error says why), or
 * the HTTP status (> 0) of an answer other than 200, its body in s->buf. */
int gw_sse_get(struct gw_sse *s, const char *url, const char *token);
void gw_sse_free(struct gw_sse *s);

#endif
