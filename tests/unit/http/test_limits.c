/* Limits and malformed input: 413, 400, 431, 408, idle close. Every error is
 * a problem+json body followed by a close. */
#include "harness.h"

#include <string.h>
#include <sys/time.h>

static const struct gw_http_server_options limits = {
    .max_body_bytes = 1024,
    .max_headers = 10,
    .max_header_bytes = 2048,
    .header_timeout_ms = 200,
    .body_timeout_ms = 300,
    .idle_timeout_ms = 400,
};

static long now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec * 1000L + tv.tv_usec / 1000;
}

/* Sends `req`, expects `status` with problem `code`, then a close. */
static void expect_problem(struct harness *h, const char *req, size_t len, int status,
                           const char *code)
{
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    client_send(&c, req, len);
    CHECK(client_read(&c, &r) == 0);
    if (r.status != status)
        fprintf(stderr, "got %d, want %d: %s\n", r.status, status, r.body);
    CHECK(r.status == status);
    CHECK(strcmp(resp_header(&r, "content-type"), "application/problem+json") == 0);
    CHECK(strcmp(resp_header(&r, "connection"), "close") == 0);
    char want[128];
    snprintf(want, sizeof(want), "\"status\":%d,\"code\":\"%s\"", status, code);
    CHECK(strstr(r.body, want) != NULL);
    CHECK(strncmp(r.body, "{\"type\":\"about:blank\",\"title\":\"", 31) == 0);
    CHECK(!r.saw_continue);
    resp_free(&r);
    CHECK(client_wait_eof(&c, 3000));
    client_close(&c);
}

#define EXPECT(h, s, status, code) expect_problem(h, s, strlen(s), status, code)

static void body_limits(struct harness *h)
{
    /* Content-Length over the limit: 413 at once, before the body. */
    EXPECT(h, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", 413,
           "body_too_large");
    /* ...and no 100 Continue for it. */
    EXPECT(h,
           "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n",
           413, "body_too_large");
    /* A chunked body that grows past the limit. */
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 5; i++)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "100\r\n%0256d\r\n", 0);
    expect_problem(h, req, (size_t)n, 413, "body_too_large");
    /* One chunk announced over the limit is refused from its size line. */
    EXPECT(h, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n", 413,
           "body_too_large");

    /* Exactly at the limit is fine. */
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    char body[1024];
    memset(body, 'z', sizeof(body));
    client_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n");
    client_send(&c, body, sizeof(body));
    CHECK(client_read(&c, &r) == 0);
    CHECK(r.status == 200);
    CHECK(strncmp(r.body, "POST /echo q= len=1024\nzzz", 26) == 0);
    resp_free(&r);
    client_close(&c);
}

static void malformed(struct harness *h)
{
    EXPECT(h, "BLAH\x01 / HTTP/1.1\r\n\r\n", 400, "bad_request");
    EXPECT(h, "GET / HTTP/9.9x\r\n\r\n", 400, "bad_request");
    EXPECT(h, "GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400, "bad_request");
    EXPECT(h, "POST /echo HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", 400, "bad_request");
    EXPECT(h, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
           "bad_request");
    /* Request smuggling shapes that http-parser 2.9.4 refuses. */
    EXPECT(h,
           "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
           "0\r\n\r\n",
           400, "bad_request");
    EXPECT(h, "POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400, "bad_request");
    EXPECT(h, "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400,
           "bad_request");
    /* Garbage after a good request: the good one is answered first. */
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    client_sends(&c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n\x02\x03garbage\r\n\r\n");
    CHECK(client_read(&c, &r) == 0);
    CHECK(r.status == 200);
    resp_free(&r);
    CHECK(client_read(&c, &r) == 0);
    CHECK(r.status == 400);
    resp_free(&r);
    CHECK(client_wait_eof(&c, 3000));
    client_close(&c);
}

static void header_limits(struct harness *h)
{
    char req[8192];
    int n = snprintf(req, sizeof(req), "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 11; i++)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "X-H%d: v\r\n", i);
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    expect_problem(h, req, (size_t)n, 431, "too_many_headers");

    n = snprintf(req, sizeof(req), "GET /echo HTTP/1.1\r\nX-Big: %03000d\r\n\r\n", 0);
    expect_problem(h, req, (size_t)n, 431, "headers_too_large");

    /* A long URL counts too. */
    n = snprintf(req, sizeof(req), "GET /echo?%03000d HTTP/1.1\r\n\r\n", 0);
    expect_problem(h, req, (size_t)n, 431, "headers_too_large");

    /* Ten headers (Host and nine more) is within the limit. */
    n = snprintf(req, sizeof(req), "GET /headers HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 9; i++)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "X-H%d: v\r\n", i);
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    client_send(&c, req, (size_t)n);
    CHECK(client_read(&c, &r) == 0);
    CHECK(r.status == 200);
    CHECK(strncmp(r.body, "n=10 ", 5) == 0);
    resp_free(&r);
    client_close(&c);
}

static void timeouts(struct harness *h)
{
    struct client c;
    struct resp r;
    /* Headers that never finish: 408 after header_timeout_ms. */
    long t0 = now_ms();
    client_open(&c, h->port);
    client_sends(&c, "GET /echo HTTP/1.1\r\nHost: t\r\n");
    CHECK(client_read(&c, &r) == 0);
    long dt = now_ms() - t0;
    CHECK(r.status == 408);
    CHECK(strstr(r.body, "\"code\":\"request_timeout\"") != NULL);
    CHECK(dt >= 150 && dt < 2000);
    resp_free(&r);
    CHECK(client_wait_eof(&c, 3000));
    client_close(&c);

    /* A body that stops short: 408 after body_timeout_ms. */
    client_open(&c, h->port);
    client_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    CHECK(client_read(&c, &r) == 0);
    CHECK(r.status == 408);
    resp_free(&r);
    CHECK(client_wait_eof(&c, 3000));
    client_close(&c);

    /* Idle keep-alive: closed silently after idle_timeout_ms. */
    client_open(&c, h->port);
    client_roundtrip(&c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    CHECK(r.status == 200);
    resp_free(&r);
    t0 = now_ms();
    CHECK(client_wait_eof(&c, 3000));
    dt = now_ms() - t0;
    CHECK(dt >= 300 && dt < 2500);
    CHECK(c.len == 0);
    client_close(&c);

    /* A connection that never sends anything: closed silently. */
    client_open(&c, h->port);
    CHECK(client_wait_eof(&c, 3000));
    client_close(&c);
}

int main(void)
{
    harness_run("body limits (413)", &limits, body_limits);
    harness_run("malformed requests (400)", &limits, malformed);
    harness_run("header limits (431)", &limits, header_limits);
    harness_run("timeouts (408, idle)", &limits, timeouts);
    return 0;
}
