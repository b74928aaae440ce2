/* Asynchronous handlers, clients that leave early, streaming, graceful
 * destroy. Leaks and use-after-free show up under ASan. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static bool wait_for(atomic_int *v, int want, int ms)
{
    for (int i = 0; i < ms / 5; i++) {
        if (atomic_load(v) == want)
            return true;
        sleep_ms(5);
    }
    return atomic_load(v) == want;
}

static void async_handler(struct harness *h)
{
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    client_roundtrip(&c, "GET /async?ms=100 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    CHECK(r.status == 200);
    CHECK(strcmp(r.body, "late hello") == 0);
    CHECK(strcmp(resp_header(&r, "x-async"), "yes") == 0);
    resp_free(&r);
    client_roundtrip(&c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    CHECK(r.status == 200);
    resp_free(&r);
    client_close(&c);
}

static void disconnect_pending(struct harness *h)
{
    struct client c;
    client_open(&c, h->port);
    client_sends(&c, "POST /hold HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\npayload"
                     "GET /echo HTTP/1.1\r\n\r\n");
    CHECK(wait_for(&h->held_state, 1, 3000));
    client_close(&c);
    atomic_store(&h->client_closed, 1);
    CHECK(wait_for(&h->held_state, 2, 3000));
    /* The response went nowhere: respond reported it. */
    CHECK(atomic_load(&h->held_rc) == GW_ECLOSED);
    CHECK(atomic_load(&h->handled) == 1); /* the pipelined GET was never run */
}

static void streaming(struct harness *h)
{
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    client_roundtrip(&c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    CHECK(r.status == 200);
    CHECK(r.chunked);
    CHECK(strcmp(resp_header(&r, "content-type"), "text/event-stream") == 0);
    CHECK(strcmp(resp_header(&r, "cache-control"), "no-cache") == 0);
    CHECK(resp_header(&r, "content-length") == NULL);
    CHECK(strcmp(r.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n") == 0);
    resp_free(&r);
    /* The connection stays usable after the stream. */
    client_roundtrip_expect(&c, "GET /echo?after=stream HTTP/1.1\r\nHost: t\r\n\r\n",
                            "GET /echo q=after=stream len=0\n");
    client_close(&c);

    /* HTTP/1.0: no chunks, the body ends with the connection. */
    client_open(&c, h->port);
    client_roundtrip(&c, "GET /stream HTTP/1.0\r\n\r\n", &r);
    CHECK(!r.chunked);
    CHECK(strcmp(r.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n") == 0);
    resp_free(&r);
    client_close(&c);
    CHECK(wait_for(&h->stream_end_calls, 2, 2000));
}

static void stream_client_leaves(struct harness *h)
{
    struct client c;
    client_open(&c, h->port);
    client_sends(&c, "GET /stream-hold HTTP/1.1\r\nHost: t\r\n\r\n");
    /* Read the headers and the first chunk, then leave. */
    char buf[1024];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t n = recv(c.fd, buf + got, sizeof(buf) - 1 - got, 0);
        CHECK(n > 0);
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "data: hello\n\n\r\n") != NULL)
            break;
    }
    CHECK(strstr(buf, "Transfer-Encoding: chunked") != NULL);
    client_close(&c);
    CHECK(wait_for(&h->on_close_calls, 1, 3000));
    CHECK(wait_for(&h->stream_end_calls, 1, 1000));
    sleep_ms(50);
    CHECK(atomic_load(&h->on_close_calls) == 1); /* once */
}

static void graceful_destroy(struct harness *h)
{
    struct client idle, busy;
    struct resp r;
    client_open(&idle, h->port);
    client_roundtrip(&idle, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    resp_free(&r);
    client_open(&busy, h->port);
    client_sends(&busy, "GET /async?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(wait_for(&h->handled, 2, 3000));
    harness_destroy_server(h);
    /* The idle connection is closed at once... */
    CHECK(client_wait_eof(&idle, 1000));
    client_close(&idle);
    /* ...the busy one gets its answer, with Connection: close, then EOF. */
    CHECK(client_read(&busy, &r) == 0);
    CHECK(r.status == 200);
    CHECK(strcmp(r.body, "late hello") == 0);
    CHECK(strcmp(resp_header(&r, "connection"), "close") == 0);
    resp_free(&r);
    CHECK(client_wait_eof(&busy, 3000));
    client_close(&busy);
    CHECK(wait_for(&h->destroy_done, 1, 3000));
    /* Nobody listens any more. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno == ECONNREFUSED);
    close(fd);
}

/* Destroy while a client that already left still has a handler pending:
 * done must wait for that handler to respond. */
static void destroy_with_detached(struct harness *h)
{
    struct client c;
    client_open(&c, h->port);
    client_sends(&c, "POST /hold HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\npayload");
    CHECK(wait_for(&h->held_state, 1, 3000));
    client_close(&c);
    sleep_ms(50); /* let the server see the EOF */
    harness_destroy_server(h);
    sleep_ms(100);
    CHECK(atomic_load(&h->destroy_done) == 0); /* the held request keeps it */
    atomic_store(&h->client_closed, 1);
    CHECK(wait_for(&h->held_state, 2, 3000));
    CHECK(atomic_load(&h->held_rc) == GW_ECLOSED);
    CHECK(wait_for(&h->destroy_done, 1, 3000));
}

int main(void)
{
    harness_run("async handler", NULL, async_handler);
    harness_run("client disconnects while handler pending", NULL, disconnect_pending);
    harness_run("streaming", NULL, streaming);
    harness_run("stream client leaves", NULL, stream_client_leaves);
    harness_run("graceful destroy", NULL, graceful_destroy);
    harness_run("destroy with a detached request", NULL, destroy_with_detached);
    return 0;
}
