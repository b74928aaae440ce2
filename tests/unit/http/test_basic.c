/* Round trips, keep-alive, pipelining, Connection: close, HTTP/1.0, chunked
 * request bodies, 100-continue, HEAD, decoding of path and query. */
#include "harness.h"

#include <string.h>

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

static void get_post(struct harness *h)
{
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    client_roundtrip(&c, GET("/echo?x=1"), &r);
    CHECK(r.status == 200);
    CHECK(strcmp(r.body, "GET /echo q=x=1 len=0\n") == 0);
    CHECK(strcmp(resp_header(&r, "content-type"), "text/plain") == 0);
    CHECK(strcmp(resp_header(&r, "content-length"), "22") == 0);
    CHECK(strcmp(resp_header(&r, "connection"), "keep-alive") == 0);
    CHECK(resp_header(&r, "date") != NULL && strstr(resp_header(&r, "date"), " GMT") != NULL);
    CHECK(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    resp_free(&r);

    client_roundtrip(&c,
                     "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
                     "Content-Length: 5\r\n\r\nhello",
                     &r);
    CHECK(r.status == 200);
    CHECK(strcmp(r.body, "POST /echo q= len=5\nhello") == 0);
    resp_free(&r);

    client_roundtrip(&c, GET("/nowhere"), &r);
    CHECK(r.status == 404);
    resp_free(&r);

    client_roundtrip(&c, GET("/problem"), &r);
    CHECK(r.status == 409);
    CHECK(strcmp(resp_header(&r, "content-type"), "application/problem+json") == 0);
    CHECK(strcmp(r.body, "{\"type\":\"about:blank\",\"title\":\"Conflict\",\"status\":409,"
                         "\"code\":\"conflict\",\"detail\":\"a \\\"quoted\\\" detail\"}") == 0);
    resp_free(&r);

    client_roundtrip(&c, GET("/twice"), &r);
    CHECK(r.status == 204);
    CHECK(resp_header(&r, "content-length") == NULL);
    CHECK(r.body_len == 0);
    resp_free(&r);

    /* HEAD: the length of the GET body, but no body; the next request on
     * the connection proves nothing extra was sent. */
    client_sends(&c, "HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(client_read_ex(&c, &r, true) == 0);
    CHECK(r.status == 200);
    CHECK(strcmp(resp_header(&r, "content-length"), "20") == 0); /* "HEAD /echo q= len=0\n" */
    resp_free(&r);
    client_roundtrip_expect(&c, GET("/echo?after=head"), "GET /echo q=after=head len=0\n");

    /* Absolute-form target. */
    client_roundtrip_expect(&c, "GET http://example.com/echo/abs?z=1 HTTP/1.1\r\nHost: t\r\n\r\n",
                            "GET /echo/abs q=z=1 len=0\n");
    client_close(&c);
}

static void keep_alive(struct harness *h)
{
    struct client c;
    struct resp r;
    char first_remote[128] = "";
    client_open(&c, h->port);
    for (int i = 0; i < 20; i++) {
        client_roundtrip(&c, "GET /headers HTTP/1.1\r\nHost: t\r\nX-Test: v\r\n\r\n", &r);
        CHECK(r.status == 200);
        const char *remote = strstr(r.body, "remote=");
        CHECK(remote != NULL);
        if (i == 0)
            snprintf(first_remote, sizeof(first_remote), "%s", remote);
        else
            CHECK(strcmp(first_remote, remote) == 0); /* same TCP connection */
        resp_free(&r);
    }
    client_close(&c);
}

static void pipelining(struct harness *h)
{
    struct client c;
    client_open(&c, h->port);
    /* Two requests in one write, answered in order. */
    client_sends(&c, GET("/echo?n=1") "POST /echo?n=2 HTTP/1.1\r\nHost: t\r\nContent-Length: "
                                      "3\r\n\r\nabc");
    client_expect_body(&c, "GET /echo q=n=1 len=0\n");
    client_expect_body(&c, "POST /echo q=n=2 len=3\nabc");

    /* The first one answers late: the second must still come after it. */
    client_sends(&c, GET("/async?ms=80") GET("/echo?n=3") GET("/echo?n=4"));
    client_expect_body(&c, "late hello");
    client_expect_body(&c, "GET /echo q=n=3 len=0\n");
    client_expect_body(&c, "GET /echo q=n=4 len=0\n");

    /* Many pipelined requests overflow the server's input buffer: reading
     * must pause and resume without losing or reordering anything. */
    char *many = malloc(200 * 64);
    size_t off = 0;
    for (int i = 0; i < 200; i++)
        off += (size_t)snprintf(many + off, 200 * 64 - off,
                                "GET /echo?i=%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
    client_send(&c, many, off);
    free(many);
    for (int i = 0; i < 200; i++) {
        char want[64];
        snprintf(want, sizeof(want), "GET /echo q=i=%d len=0\n", i);
        client_expect_body(&c, want);
    }
    client_close(&c);
}

static void connection_close(struct harness *h)
{
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    client_roundtrip(&c, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
    CHECK(r.status == 200);
    CHECK(strcmp(resp_header(&r, "connection"), "close") == 0);
    resp_free(&r);
    CHECK(client_wait_eof(&c, 2000));
    client_close(&c);

    /* HTTP/1.0 closes by default... */
    client_open(&c, h->port);
    client_roundtrip(&c, "GET /echo HTTP/1.0\r\n\r\n", &r);
    CHECK(strcmp(resp_header(&r, "connection"), "close") == 0);
    CHECK(strncmp(r.head, "HTTP/1.1 200", 12) == 0);
    resp_free(&r);
    CHECK(client_wait_eof(&c, 2000));
    client_close(&c);

    /* ...unless it asks for keep-alive. */
    client_open(&c, h->port);
    client_roundtrip(&c, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r);
    CHECK(strcmp(resp_header(&r, "connection"), "keep-alive") == 0);
    resp_free(&r);
    client_roundtrip_expect(&c, "GET /echo?again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                            "GET /echo q=again len=0\n");
    client_close(&c);
}

static void chunked_body(struct harness *h)
{
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    client_roundtrip(&c,
                     "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
                     &r);
    CHECK(r.status == 200);
    CHECK(strcmp(r.body, "POST /echo q= len=11\nhello world") == 0);
    resp_free(&r);

    /* A chunked body sent in small pieces, many chunks (the body grows). */
    client_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 300; i++) {
        client_sends(&c, "a\r\n0123456789\r\n");
    }
    client_sends(&c, "0\r\n\r\n");
    CHECK(client_read(&c, &r) == 0);
    CHECK(strncmp(r.body, "POST /echo q= len=3000\n0123456789", 33) == 0);
    resp_free(&r);

    /* Expect: 100-continue gets "100 Continue" before the body is sent. */
    client_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                     "Content-Length: 4\r\n\r\n");
    char buf[64];
    size_t want = strlen("HTTP/1.1 100 Continue\r\n\r\n"), got = 0;
    while (got < want) {
        ssize_t n = recv(c.fd, buf + got, want - got, 0);
        CHECK(n > 0);
        got += (size_t)n;
    }
    CHECK(memcmp(buf, "HTTP/1.1 100 Continue\r\n\r\n", want) == 0);
    client_sends(&c, "body");
    client_expect_body(&c, "POST /echo q= len=4\nbody");
    client_close(&c);
}

static void decoding(struct harness *h)
{
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    /* A malformed escape such as "%zz" never gets here: the server refuses
     * it (test_strict.c). */
    client_roundtrip_expect(&c, GET("/query?q=a%20b+c&a+b=x%2By&empty"),
                            "q=[a b c] ab=[x+y] missing=0 fits=0");
    client_roundtrip_expect(&c, GET("/query?a%20b=&q=%41%00"), "q=[A%00] ab=[] missing=0 fits=0");
    client_roundtrip_expect(&c, GET("/query?q=ab"), "q=[ab] ab=[-] missing=0 fits=1");
    client_roundtrip_expect(&c, GET("/echo/a%20b%2Fc?x=%20"), "GET /echo/a b/c q=x=%20 len=0\n");
    client_roundtrip(&c,
                     "GET /headers HTTP/1.1\r\nHost: t\r\nX-TEST:   spaced value  \r\n"
                     "Accept: */*\r\nX-Empty:\r\n\r\n",
                     &r);
    CHECK(strncmp(r.body, "n=4 x=[spaced value] lower=1 remote=127.0.0.1:", 46) == 0);
    resp_free(&r);
    client_close(&c);

    /* Invalid escapes and NUL in the path are 400 and close. */
    const char *bad[] = {GET("/echo/%zz"), GET("/echo/%00"), GET("/echo/%4")};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        client_open(&c, h->port);
        client_roundtrip(&c, bad[i], &r);
        CHECK(r.status == 400);
        CHECK(strcmp(resp_header(&r, "content-type"), "application/problem+json") == 0);
        CHECK(strstr(r.body, "\"code\":\"bad_request\"") != NULL);
        CHECK(strcmp(resp_header(&r, "connection"), "close") == 0);
        resp_free(&r);
        CHECK(client_wait_eof(&c, 2000));
        client_close(&c);
    }
}

static void big_response(struct harness *h)
{
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    /* Too big for one try_write: the rest is copied and queued. The client
     * reads slowly at first so the socket buffer fills. */
    client_sends(&c, GET("/big?n=8388608"));
    sleep_ms(100);
    CHECK(client_read(&c, &r) == 0);
    CHECK(r.status == 200);
    CHECK(r.body_len == 8388608);
    for (size_t i = 0; i < r.body_len; i += 4093)
        CHECK(r.body[i] == (char)('a' + i % 26));
    resp_free(&r);
    client_roundtrip_expect(&c, GET("/echo?after=big"), "GET /echo q=after=big len=0\n");
    client_close(&c);
}

int main(void)
{
    harness_run("get and post", NULL, get_post);
    harness_run("keep-alive", NULL, keep_alive);
    harness_run("pipelining", NULL, pipelining);
    harness_run("connection close and HTTP/1.0", NULL, connection_close);
    harness_run("chunked request body and 100-continue", NULL, chunked_body);
    harness_run("path, query and header decoding", NULL, decoding);
    harness_run("big response", NULL, big_response);
    return 0;
}
