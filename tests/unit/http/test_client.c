/* The non-blocking client (lib/gw/http_client.h) against the project's own
 * server on the same loop: success, timeout, connection refused, cancel,
 * many concurrent requests, a large body, the size cap, cookies, and a
 * clean shutdown (every handle closed, `done` called exactly once). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gw/http_client.h"
#include "harness.h" /* CHECK */

#define BIG       (3u * 1024 * 1024)
#define NPARALLEL 50

static uv_loop_t loop;
static struct gw_http_server *srv;
static struct gw_http_client *cli;
static char base[64];
static struct gw_http_req *held[8];
static int nheld;

/* ---- the server side ---- */

static void answer_held(void)
{
    for (int i = 0; i < nheld; i++)
        gw_http_respond(held[i], 200, "text/plain", NULL, "late", 4);
    nheld = 0;
}

static void handler(struct gw_http_req *req, void *arg)
{
    (void)arg;
    if (strcmp(req->path, "/echo") == 0) {
        char *out = malloc(req->body_len + 64);
        int n = snprintf(out, req->body_len + 64, "%s %s %s", req->method,
                         gw_http_req_header(req, "x-in") ? gw_http_req_header(req, "x-in") : "-",
                         req->body);
        gw_http_respond(req, 200, "text/plain", "X-Out: yes\r\n", out, (size_t)n);
        free(out);
    } else if (strcmp(req->path, "/big") == 0) {
        char *out = malloc(BIG);
        for (size_t i = 0; i < BIG; i++)
            out[i] = (char)('a' + i % 26);
        gw_http_respond(req, 200, "text/plain", NULL, out, BIG);
        free(out);
    } else if (strcmp(req->path, "/hold") == 0) {
        CHECK(nheld < 8);
        held[nheld++] = req; /* answered at the end of the test */
    } else if (strcmp(req->path, "/set-cookie") == 0) {
        gw_http_respond(req, 200, "text/plain", "Set-Cookie: s=abc; Path=/\r\n", "", 0);
    } else if (strcmp(req->path, "/cookie") == 0) {
        const char *c = gw_http_req_header(req, "cookie");
        gw_http_respond(req, 200, "text/plain", NULL, c ? c : "none", strlen(c ? c : "none"));
    } else {
        gw_http_respond_problem(req, 404, "not_found", NULL);
    }
}

/* ---- the client side: one step after the other ---- */

struct call {
    int calls;
    long status;
    int code;
    char body[128];
    size_t body_len;
    char out_header[16];
};

static void on_done(void *arg, const struct gw_http_response *resp, const struct gw_error *err)
{
    struct call *c = arg;
    const char *h;
    c->calls++;
    if (err != NULL) {
        c->code = err->code;
        return;
    }
    c->status = resp->status;
    c->body_len = resp->body_len;
    snprintf(c->body, sizeof(c->body), "%s", resp->body);
    if ((h = gw_http_response_header(resp, "X-OUT")) != NULL)
        snprintf(c->out_header, sizeof(c->out_header), "%s", h);
}

static struct gw_http_request *start(const char *path, const struct gw_http_request_options *o,
                                     struct call *c)
{
    char url[128];
    struct gw_http_request_options opts = *o;
    struct gw_error err;
    struct gw_http_request *r;
    snprintf(url, sizeof(url), "%s%s", base, path);
    opts.url = url;
    r = gw_http_client_request(cli, &opts, on_done, c, &err);
    CHECK(r != NULL);
    return r;
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until `*calls` reaches `n`. A ticking timer bounds each
 * iteration: a timer callback may finish a request just before the loop
 * blocks in poll with nothing else to wake it. */
static void run_until(const int *calls, int n)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 10, 10);
    while (*calls < n)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_success(void)
{
    static const char *const hdrs[] = {"X-In: hello", NULL};
    struct call c = {0};
    struct gw_http_request_options o = {.headers = hdrs, .body = "payload", .body_len = 7};
    start("/echo", &o, &c);
    run_until(&c.calls, 1);
    CHECK(c.code == 0 && c.status == 200);
    CHECK(strcmp(c.body, "POST hello payload") == 0);
    CHECK(strcmp(c.out_header, "yes") == 0);

    struct call g = {0};
    struct gw_http_request_options og = {0};
    start("/echo", &og, &g);
    run_until(&g.calls, 1);
    CHECK(g.status == 200 && strcmp(g.body, "GET - ") == 0);

    struct call p = {0};
    struct gw_http_request_options op = {.method = "PUT", .body = "x", .body_len = 1};
    start("/echo", &op, &p);
    run_until(&p.calls, 1);
    CHECK(p.status == 200 && strcmp(p.body, "PUT - x") == 0);

    struct call nf = {0};
    start("/nowhere", &og, &nf);
    run_until(&nf.calls, 1);
    CHECK(nf.code == 0 && nf.status == 404); /* an HTTP error is a response */
}

static void test_timeout(void)
{
    struct call c = {0};
    struct gw_http_request_options o = {.timeout_ms = 200};
    uint64_t t0 = uv_now(&loop);
    start("/hold", &o, &c);
    run_until(&c.calls, 1);
    CHECK(c.code == GW_ETIMEDOUT);
    CHECK(uv_now(&loop) - t0 < 5000);
}

static void test_refused(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    char url[64];
    struct call c = {0};
    struct gw_error err;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Bound but not listening: connecting to it is refused. */
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    struct gw_http_request_options o = {.url = url};
    CHECK(gw_http_client_request(cli, &o, on_done, &c, &err) != NULL);
    run_until(&c.calls, 1);
    CHECK(c.code == GW_EUNAVAIL);
    close(fd);

    /* Not http(s): refused by curl, reported through `done` all the same. */
    struct call f = {0};
    struct gw_http_request_options of = {.url = "file:///etc/passwd"};
    CHECK(gw_http_client_request(cli, &of, on_done, &f, &err) != NULL);
    run_until(&f.calls, 1);
    CHECK(f.code != 0 && f.status == 0);
}

static void test_cancel(void)
{
    struct call c = {0};
    struct gw_http_request_options o = {0};
    struct gw_http_request *r = start("/hold", &o, &c);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    gw_http_request_cancel(r);
    CHECK(c.calls == 1 && c.code == GW_ECLOSED);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(c.calls == 1);
}

static int parallel_done;

static void on_parallel(void *arg, const struct gw_http_response *resp, const struct gw_error *err)
{
    (void)arg;
    CHECK(err == NULL && resp->status == 200);
    CHECK(strcmp(resp->body, "POST - n") == 0);
    parallel_done++;
}

static void test_parallel(void)
{
    char url[128];
    struct gw_error err;
    snprintf(url, sizeof(url), "%s/echo", base);
    struct gw_http_request_options o = {.url = url, .body = "n", .body_len = 1};
    for (int i = 0; i < NPARALLEL; i++)
        CHECK(gw_http_client_request(cli, &o, on_parallel, NULL, &err) != NULL);
    run_until(&parallel_done, NPARALLEL);
    CHECK(parallel_done == NPARALLEL);
}

struct sized {
    int calls, code;
    size_t len;
    bool ok;
};

static void on_big(void *arg, const struct gw_http_response *resp, const struct gw_error *err)
{
    struct sized *s = arg;
    s->calls++;
    s->code = err != NULL ? err->code : 0;
    if (err != NULL)
        return;
    s->len = resp->body_len;
    s->ok = true;
    for (size_t i = 0; i < resp->body_len; i++)
        s->ok &= resp->body[i] == (char)('a' + i % 26);
}

static void test_big_and_cap(void)
{
    char url[128];
    struct gw_error err;
    struct sized s = {0}, capped = {0};
    snprintf(url, sizeof(url), "%s/big", base);
    struct gw_http_request_options o = {.url = url};
    CHECK(gw_http_client_request(cli, &o, on_big, &s, &err) != NULL);
    run_until(&s.calls, 1);
    CHECK(s.code == 0 && s.len == BIG && s.ok);

    o.max_body = 64 * 1024;
    CHECK(gw_http_client_request(cli, &o, on_big, &capped, &err) != NULL);
    run_until(&capped.calls, 1);
    CHECK(capped.code == GW_ELIMIT);

    /* Discarded: no cap applies, the body is "". */
    struct sized dropped = {0};
    o.discard_body = true;
    CHECK(gw_http_client_request(cli, &o, on_big, &dropped, &err) != NULL);
    run_until(&dropped.calls, 1);
    CHECK(dropped.code == 0 && dropped.len == 0);
}

static void test_cookies(void)
{
    struct gw_error err;
    struct gw_http_client *saved = cli;
    struct call a = {0}, b = {0};
    struct gw_http_client_options co = {.cookies = true};
    struct gw_http_request_options o = {0};
    cli = gw_http_client_create(&loop, &co, &err);
    CHECK(cli != NULL);
    start("/set-cookie", &o, &a);
    run_until(&a.calls, 1);
    start("/cookie", &o, &b);
    run_until(&b.calls, 1);
    CHECK(strcmp(b.body, "s=abc") == 0);
    gw_http_client_destroy(cli, NULL, NULL);
    cli = saved;
}

static int closed_calls;

static void on_closed(void *arg)
{
    (void)arg;
    closed_calls++;
}

static void test_destroy_with_requests(void)
{
    struct call c1 = {0}, c2 = {0};
    struct gw_http_request_options o = {0};
    start("/hold", &o, &c1);
    start("/hold", &o, &c2);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    gw_http_client_destroy(cli, on_closed, NULL);
    CHECK(c1.calls == 1 && c1.code == GW_ECLOSED);
    CHECK(c2.calls == 1 && c2.code == GW_ECLOSED);
    CHECK(gw_http_client_request(cli, &o, on_done, &c1, NULL) == NULL); /* closing */
    cli = NULL;
}

int main(void)
{
    struct gw_error err;
    struct gw_http_server_options so = {
        .host = "127.0.0.1", .port = 0, .max_body_bytes = 1024 * 1024};
    CHECK(uv_loop_init(&loop) == 0);
    srv = gw_http_server_create(&loop, &so, handler, NULL, &err);
    CHECK(srv != NULL);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", gw_http_server_port(srv));
    cli = gw_http_client_create(&loop, NULL, &err);
    CHECK(cli != NULL);

    test_success();
    test_timeout();
    test_refused();
    test_cancel();
    test_parallel();
    test_big_and_cap();
    test_cookies();
    test_destroy_with_requests();

    answer_held();
    gw_http_server_destroy(srv, NULL, NULL);
    CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    CHECK(closed_calls == 1);
    CHECK(uv_loop_close(&loop) == 0);
    printf("http-client: ok\n");
    return 0;
}
