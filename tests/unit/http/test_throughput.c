/* Keep-alive throughput with small requests, measured from a client thread:
 * ping-pong (one request in flight) and pipelined (16 per write). Prints the
 * rates; asserts only a floor low enough for sanitizer builds on a busy
 * 2-core machine. Release numbers are in docs/decisions/0005-http-parser.md. */
#include "harness.h"

#include <string.h>
#include <sys/time.h>

#define REQ "GET /echo?x=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void bench(struct harness *h)
{
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    int n = 0;
    double t0 = now_s(), dt;
    do {
        client_roundtrip(&c, REQ, &r);
        CHECK(r.status == 200);
        resp_free(&r);
        n++;
        dt = now_s() - t0;
    } while (n < 100000 && dt < 1.0);
    double pingpong = n / dt;

    char batch[16 * sizeof(REQ)];
    size_t blen = 0;
    for (int i = 0; i < 16; i++) {
        memcpy(batch + blen, REQ, sizeof(REQ) - 1);
        blen += sizeof(REQ) - 1;
    }
    n = 0;
    t0 = now_s();
    do {
        client_send(&c, batch, blen);
        for (int i = 0; i < 16; i++) {
            CHECK(client_read(&c, &r) == 0);
            CHECK(r.status == 200);
            resp_free(&r);
        }
        n += 16;
        dt = now_s() - t0;
    } while (n < 400000 && dt < 1.0);
    double pipelined = n / dt;
    client_close(&c);
    printf("http throughput: ping-pong %.0f req/s, pipelined %.0f req/s\n", pingpong, pipelined);
    CHECK(pingpong > 1000);
    CHECK(pipelined > 2000);
}

int main(void)
{
    harness_run("throughput", NULL, bench);
    return 0;
}
