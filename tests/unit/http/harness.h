/*
 * Test harness for the HTTP server: the server runs on a libuv loop in the
 * test's main thread, the scenario runs as a client in a second thread with
 * plain blocking sockets. When the scenario returns, the loop thread destroys
 * the server and the test asserts that the loop closes clean.
 */
#ifndef GW_TEST_HTTP_HARNESS_H
#define GW_TEST_HTTP_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "gw/http.h"

#include "../check.h"

struct harness {
    uv_loop_t loop;
    struct gw_http_server *srv;
    uv_async_t async;
    int port;
    void (*scenario)(struct harness *h);
    /* counters touched by both threads */
    atomic_int handled;
    atomic_int destroy_done;
    atomic_int on_close_calls;
    atomic_int held_rc;    /* what gw_http_respond returned for /hold */
    atomic_int held_state; /* 0 none, 1 holding, 2 answered */
    atomic_int client_closed;
    atomic_int destroy_now; /* scenario asks the loop to destroy the server early */
    atomic_int stream_end_calls;
    atomic_int scenario_done;
    pthread_t loop_thread; /* runs the server: its CPU clock measures the server's cost */
};

/* Runs `scenario` against a fresh server; returns 0 or aborts. */
int harness_run(const char *name, const struct gw_http_server_options *opts,
                void (*scenario)(struct harness *h));

/* Asks the loop thread to destroy the server now (graceful destroy test). */
void harness_destroy_server(struct harness *h);

/* Sleeps `ms` milliseconds. */
void sleep_ms(int ms);

/* ---- client side ---- */

struct client {
    int fd;
    char *buf;
    size_t len, cap;
};

struct resp {
    int status;
    char head[8192]; /* status line and headers, NUL-terminated */
    char *body;
    size_t body_len;
    bool chunked;
    bool saw_continue;
};

void client_open(struct client *c, int port);
void client_close(struct client *c);
void client_send(struct client *c, const char *data, size_t len);
void client_sends(struct client *c, const char *s);
/* Reads one response. Returns 0, or -1 when the connection closed (or timed
 * out) before a complete response arrived. */
int client_read(struct client *c, struct resp *r);
/* The same; with head_only (answers to HEAD) no body is read. */
int client_read_ex(struct client *c, struct resp *r, bool head_only);
/* True when the server closes the connection within `ms`. */
bool client_wait_eof(struct client *c, int ms);
/* Header value from a response (case-insensitive), or NULL; static buffer. */
const char *resp_header(const struct resp *r, const char *name);
void resp_free(struct resp *r);

/* send + read in one go; aborts when no response came. */
void client_roundtrip(struct client *c, const char *request, struct resp *r);
/* Reads one response and checks that its body is `want` (printing both when
 * it is not); aborts when no response came. */
void client_expect_body(struct client *c, const char *want);
/* send + client_expect_body(). */
void client_roundtrip_expect(struct client *c, const char *request, const char *want);

#endif
