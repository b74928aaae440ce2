/* Runtime pieces testable without Kafka: per-key ordering, the claim client
 * (retries, refusals) against a stand-in claim server, event encoding. */
#include <curl/curl.h>
#include <string.h>
#include <uv.h>

#include "backends/exec/exec_io.h"
#include "claim.h"
#include "events.h"
#include "gw/log.h"
#include "keygate.h"
#include "claimsrv.h"

static void test_keygate(void)
{
    struct gw_keygate g;
    struct gw_keygate_waiter a1, a2, a3, b1;
    gw_keygate_init(&g);
    CHECK(gw_keygate_acquire(&g, "res-a", &a1) == 1);
    CHECK(gw_keygate_acquire(&g, "res-a", &a2) == 0);
    CHECK(gw_keygate_acquire(&g, "res-a", &a3) == 0);
    CHECK(gw_keygate_acquire(&g, "res-b", &b1) == 1);
    CHECK(gw_keygate_held(&g) == 2);
    /* Arrival order: a2 then a3. */
    CHECK(gw_keygate_release(&g, "res-a") == &a2);
    CHECK(gw_keygate_cancel(&g, "res-a", &a3));
    CHECK(!gw_keygate_cancel(&g, "res-a", &a3));
    CHECK(gw_keygate_release(&g, "res-a") == NULL);
    CHECK(gw_keygate_held(&g) == 1);
    CHECK(gw_keygate_release(&g, "res-b") == NULL);
    CHECK(gw_keygate_held(&g) == 0);
    CHECK(gw_keygate_release(&g, "res-x") == NULL);
    CHECK(gw_keygate_acquire(&g, "res-a", &a1) == 1);
    gw_keygate_finish(&g);
}

static void test_backoff(void)
{
    CHECK(gw_claim_backoff_ms(1, 0) == 100);
    CHECK(gw_claim_backoff_ms(2, 0) == 200);
    CHECK(gw_claim_backoff_ms(4, 0) == 800);
    CHECK(gw_claim_backoff_ms(7, 0) == 5000);
    CHECK(gw_claim_backoff_ms(100, 0) == 5000);
    CHECK(gw_claim_backoff_ms(3, 250) == 250);
}

static void test_events(void)
{
    struct gw_run_request r;
    char why[256], *text, *clean;
    size_t n;
    json_t *ev, *d;
    const char *good = "{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"gangway/broker\","
                       "\"type\":\"dev.gangway.run.requested\",\"subject\":\"r1\",\"time\":\"2026-"
                       "01-01T00:00:00Z\","
                       "\"data\":{\"run_id\":\"0000-r1\",\"attempt\":2,\"action_id\":\"echo\","
                       "\"action_version\":\"h\","
                       "\"worker_type\":\"exec\",\"key\":\"bucket/x\",\"timeout_seconds\":60,"
                       "\"requested_at\":\"2026-01-01T00:00:00Z\"}}";
    CHECK(gw_run_request_parse(good, strlen(good), &r, why, sizeof(why)) == 0);
    CHECK(strcmp(r.run_id, "0000-r1") == 0 && r.attempt == 2 && r.timeout_seconds == 60);
    CHECK(strcmp(r.key, "bucket/x") == 0 && strcmp(r.worker_type, "exec") == 0);
    gw_run_request_finish(&r);
    static const char *bad[] = {
        "not json",
        "[]",
        "{\"specversion\":\"0.3\",\"type\":\"dev.gangway.run.requested\",\"data\":{}}",
        "{\"specversion\":\"1.0\",\"type\":\"dev.gangway.run.started\",\"data\":{}}",
        "{\"specversion\":\"1.0\",\"type\":\"dev.gangway.run.requested\",\"data\":{\"attempt\":1}}",
        "{\"specversion\":\"1.0\",\"type\":\"dev.gangway.run.requested\","
        "\"data\":{\"run_id\":\"x\",\"attempt\":0}}",
        NULL,
    };
    for (const char **b = bad; *b != NULL; b++) {
        CHECK(gw_run_request_parse(*b, strlen(*b), &r, why, sizeof(why)) == -1);
        CHECK(why[0] != '\0');
    }

    text = gw_event_build("log", "0000-r1", 2, 7, "host-1-3",
                          json_pack("{s:s, s:s}", "stream", "stdout", "line", "hello"));
    CHECK(text != NULL);
    ev = json_loads(text, 0, NULL);
    CHECK(ev != NULL);
    CHECK(strcmp(json_string_value(json_object_get(ev, "specversion")), "1.0") == 0);
    CHECK(strcmp(json_string_value(json_object_get(ev, "type")), "dev.gangway.run.log") == 0);
    CHECK(strcmp(json_string_value(json_object_get(ev, "id")), "0000-r1/2/7") == 0);
    CHECK(strcmp(json_string_value(json_object_get(ev, "subject")), "0000-r1") == 0);
    CHECK(strcmp(json_string_value(json_object_get(ev, "source")), "gangway/worker/host-1-3") == 0);
    CHECK(strlen(json_string_value(json_object_get(ev, "time"))) == 24);
    d = json_object_get(ev, "data");
    CHECK(json_integer_value(json_object_get(d, "seq")) == 7);
    CHECK(json_integer_value(json_object_get(d, "attempt")) == 2);
    CHECK(strcmp(json_string_value(json_object_get(d, "line")), "hello") == 0);
    json_decref(ev);
    free(text);

    clean = gw_utf8_clean("ok\xC3\xA9\xFF\xC3", 6, &n);
    CHECK(n == 2 + 2 + 3 + 3 && memcmp(clean, "ok\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD", n) == 0);
    free(clean);
    clean = gw_utf8_clean("a\0b", 3, &n);
    CHECK(n == 5 && memcmp(clean,
                           "a\xEF\xBF\xBD"
                           "b",
                           5) == 0);
    free(clean);
}

struct lines {
    int n;
    size_t len[8];
};

static void count_line(void *ctx, const char *line, size_t len)
{
    struct lines *l = ctx;
    (void)line;
    CHECK(l->n < 8);
    l->len[l->n++] = len;
}

/* Drain requests on the control topic (decision 0044): the worker id is
 * required; another event type is -2 so the control consumer tries the
 * cancel parser next. */
static void test_drain_parse(void)
{
    struct gw_drain_request d;
    char why[256];
    const char *ok = "{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"gangway/broker\","
                     "\"type\":\"dev.gangway.worker.drain\",\"subject\":\"w1\","
                     "\"data\":{\"worker_id\":\"host-w0\",\"reason\":\"kernel update\","
                     "\"requested_by\":\"alice\"}}";
    const char *bare = "{\"specversion\":\"1.0\",\"id\":\"e2\",\"source\":\"b\","
                       "\"type\":\"dev.gangway.worker.drain\",\"data\":{\"worker_id\":\"w\"}}";
    const char *no_id = "{\"specversion\":\"1.0\",\"id\":\"e3\",\"source\":\"b\","
                        "\"type\":\"dev.gangway.worker.drain\",\"data\":{\"worker_id\":\"\"}}";
    const char *cancel = "{\"specversion\":\"1.0\",\"id\":\"e4\",\"source\":\"b\","
                         "\"type\":\"dev.gangway.run.cancel\",\"data\":{\"run_id\":\"r\","
                         "\"attempt\":1}}";

    CHECK(gw_drain_request_parse(ok, strlen(ok), &d, why, sizeof(why)) == 0);
    CHECK(strcmp(d.worker_id, "host-w0") == 0 && strcmp(d.event_id, "e1") == 0);
    CHECK(strcmp(d.reason, "kernel update") == 0 && strcmp(d.requested_by, "alice") == 0);
    gw_drain_request_finish(&d);
    CHECK(gw_drain_request_parse(bare, strlen(bare), &d, why, sizeof(why)) == 0);
    CHECK(d.reason == NULL && d.requested_by == NULL);
    gw_drain_request_finish(&d);
    CHECK(gw_drain_request_parse(no_id, strlen(no_id), &d, why, sizeof(why)) == -1);
    CHECK(strstr(why, "worker_id") != NULL && d.doc == NULL);
    CHECK(gw_drain_request_parse(cancel, strlen(cancel), &d, why, sizeof(why)) == -2);
    CHECK(gw_drain_request_parse("{", 1, &d, why, sizeof(why)) == -1);
    gw_drain_request_finish(NULL);
}

static void test_line_split_utf8(void)
{
    struct exec_lines l;
    struct lines got = {0};
    char buf[12];
    /* 8 bytes max: "aaaaaaa" + a 2-byte char must not be cut inside it. */
    memcpy(buf, "aaaaaaa\xC3\xA9zz\n", 11);
    gw_exec_lines_init(&l, 8);
    CHECK(gw_exec_lines_feed(&l, buf, 11, count_line, &got) == 0);
    gw_exec_lines_flush(&l, count_line, &got);
    gw_exec_lines_finish(&l);
    CHECK(got.n == 2 && got.len[0] == 7 && got.len[1] == 4);
}

/* ------------------------------------------------------------ claims */

struct outcome {
    bool called;
    enum gw_claim_result result;
    char detail[128];
    int fence;
    char cmd0[64];
};

static void on_claim(void *arg, enum gw_claim_result r, json_t *reply, const char *detail)
{
    struct outcome *o = arg;
    CHECK(!o->called);
    o->called = true;
    o->result = r;
    snprintf(o->detail, sizeof(o->detail), "%s", detail ? detail : "");
    if (r == GW_CLAIM_GRANTED) {
        json_t *cmd = json_object_get(json_object_get(json_object_get(reply, "action"), "backend"),
                                      "command");
        o->fence = (int)json_integer_value(json_object_get(reply, "fence"));
        snprintf(o->cmd0, sizeof(o->cmd0), "%s", json_string_value(json_array_get(cmd, 0)));
    }
}

static void claim_one(uv_loop_t *loop, const char *url, const char *run_id, const char *token,
                      struct outcome *o)
{
    struct gw_error err;
    struct gw_claim_params p = {.broker_url = url,
                                .token = token,
                                .run_id = run_id,
                                .attempt = 3,
                                .worker_id = "test-1-1",
                                .worker_type = "exec",
                                .max_backoff_ms = 50};
    memset(o, 0, sizeof(*o));
    CHECK(gw_claim_start(loop, &p, on_claim, o, &err) != NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(o->called);
}

static long count_of(const char *url, const char *run_id)
{
    char full[256], body[64] = {0};
    CURL *e = curl_easy_init();
    FILE *mem = fmemopen(body, sizeof(body) - 1, "w");
    snprintf(full, sizeof(full), "%s/count/%s", url, run_id);
    curl_easy_setopt(e, CURLOPT_URL, full);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, mem);
    CHECK(curl_easy_perform(e) == CURLE_OK);
    fclose(mem);
    curl_easy_cleanup(e);
    return atol(body);
}

/* One batch claim of `n` runs, each answered into o[i]. */
static void claim_batch(uv_loop_t *loop, const char *url, const char *type, const char *const *ids,
                        size_t n, struct outcome *o)
{
    struct gw_error err;
    struct gw_claim_batch_item items[8];
    struct gw_claim_params p = {
        .broker_url = url, .token = "tok", .worker_type = type, .max_backoff_ms = 50};
    CHECK(n <= 8);
    for (size_t i = 0; i < n; i++) {
        memset(&o[i], 0, sizeof(o[i]));
        items[i] = (struct gw_claim_batch_item){
            .run_id = ids[i], .attempt = 2, .worker_id = "test-1-1", .cb = on_claim, .arg = &o[i]};
    }
    CHECK(gw_claim_start_batch(loop, &p, items, n, &err) != NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < n; i++)
        CHECK(o[i].called);
}

/* A batch's entries get what the single endpoint's answers would give
 * (claim.c maps both the same way); the batch as a whole too. */
static void test_batch_claims(const char *url, uv_loop_t *loop)
{
    static const char *const ids[] = {
        "00000000-0000-0000-0000-000000000b02", "00000000-0000-0000-0000-000000000a02",
        "00000000-0000-0000-0000-000000000a03", "00000000-0000-0000-0000-000000000a05",
        "00000000-0000-0000-0000-000000000e01", "00000000-0000-0000-0000-000000000e02",
        "00000000-0000-0000-0000-000000000e03",
    };
    struct outcome o[8];

    claim_batch(loop, url, "batchtest", ids, 7, o);
    CHECK(o[0].result == GW_CLAIM_GRANTED && o[0].fence == 2 &&
          strcmp(o[0].detail, "granted") == 0 && strcmp(o[0].cmd0, "/bin/true") == 0);
    CHECK(o[1].result == GW_CLAIM_REFUSED && strcmp(o[1].detail, "cancelled") == 0);
    CHECK(o[2].result == GW_CLAIM_NOT_FOUND && strcmp(o[2].detail, "run_not_found") == 0);
    CHECK(o[3].result == GW_CLAIM_REJECTED && strcmp(o[3].detail, "nope") == 0);
    CHECK(o[4].result == GW_CLAIM_REJECTED &&
          strcmp(o[4].detail, "the batch answer does not list this run") == 0);
    CHECK(o[5].result == GW_CLAIM_REJECTED && strcmp(o[5].detail, "claim failed") == 0);
    CHECK(o[6].result == GW_CLAIM_REJECTED && strcmp(o[6].detail, "claim failed") == 0);

    /* Refused as a whole: every run gets the refusal. */
    static const char *const busy[] = {"00000000-0000-0000-0000-000000000e09",
                                       "00000000-0000-0000-0000-000000000b03"};
    claim_batch(loop, url, "batchtest", busy, 2, o);
    CHECK(o[0].result == GW_CLAIM_REFUSED && strcmp(o[0].detail, "busy") == 0);
    CHECK(o[1].result == GW_CLAIM_REFUSED && strcmp(o[1].detail, "busy") == 0);

    /* No batch endpoint (a broker older than it). */
    claim_batch(loop, url, "exec", ids, 2, o);
    CHECK(o[0].result == GW_CLAIM_UNSUPPORTED && o[1].result == GW_CLAIM_UNSUPPORTED);
}

static struct outcome abandon_outcome;
static struct gw_claim *abandon_claim;

static void abandon_later(uv_timer_t *t)
{
    gw_claim_abandon(abandon_claim);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_claims(void)
{
    struct claimsrv s;
    struct outcome o;
    uv_loop_t loop;
    if (claimsrv_start(&s) != 0) {
        fprintf(stderr, "python3 not available: claim tests skipped\n");
        return;
    }
    CHECK(uv_loop_init(&loop) == 0);

    claim_one(&loop, s.url, "00000000-0000-0000-0000-000000000a01", "tok", &o);
    CHECK(o.result == GW_CLAIM_GRANTED && o.fence == 3 && strcmp(o.cmd0, "/bin/true") == 0);
    CHECK(count_of(s.url, "00000000-0000-0000-0000-000000000a01") == 3); /* 503, 503, 200 */

    claim_one(&loop, s.url, "00000000-0000-0000-0000-000000000a02", "tok", &o);
    CHECK(o.result == GW_CLAIM_REFUSED && strcmp(o.detail, "cancelled") == 0);
    CHECK(count_of(s.url, "00000000-0000-0000-0000-000000000a02") == 1);

    claim_one(&loop, s.url, "00000000-0000-0000-0000-000000000a03", "tok", &o);
    CHECK(o.result == GW_CLAIM_NOT_FOUND && strcmp(o.detail, "run_not_found") == 0);

    claim_one(&loop, s.url, "00000000-0000-0000-0000-000000000a04", "tok", &o);
    CHECK(o.result == GW_CLAIM_GRANTED); /* 401 is retried, not dropped */
    CHECK(count_of(s.url, "00000000-0000-0000-0000-000000000a04") == 2);

    claim_one(&loop, s.url, "00000000-0000-0000-0000-000000000a05", "tok", &o);
    CHECK(o.result == GW_CLAIM_REJECTED && strcmp(o.detail, "HTTP 400: nope") == 0);

    test_batch_claims(s.url, &loop);

    /* Trailing slash in the URL is fine. */
    {
        char url2[80];
        snprintf(url2, sizeof(url2), "%s/", s.url);
        claim_one(&loop, url2, "00000000-0000-0000-0000-000000000b01", "tok", &o);
        CHECK(o.result == GW_CLAIM_GRANTED);
    }

    /* Not a uuid: refused before any request. */
    {
        struct gw_error err;
        struct gw_claim_params p = {.broker_url = s.url,
                                    .run_id = "../admin",
                                    .attempt = 1,
                                    .worker_id = "w",
                                    .worker_type = "exec"};
        CHECK(gw_claim_start(&loop, &p, on_claim, &o, &err) == NULL && err.code == GW_EINVAL);
    }

    claimsrv_stop(&s);

    /* Nobody listens: retries until abandoned. */
    {
        struct gw_error err;
        uv_timer_t t;
        struct gw_claim_params p = {.broker_url = s.url,
                                    .token = "tok",
                                    .run_id = "00000000-0000-0000-0000-000000000c01",
                                    .attempt = 1,
                                    .worker_id = "w",
                                    .worker_type = "exec",
                                    .max_backoff_ms = 50};
        abandon_claim = gw_claim_start(&loop, &p, on_claim, &abandon_outcome, &err);
        CHECK(abandon_claim != NULL);
        uv_timer_init(&loop, &t);
        uv_timer_start(&t, abandon_later, 400, 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(abandon_outcome.called && abandon_outcome.result == GW_CLAIM_ABANDONED);
    }
    CHECK(uv_loop_close(&loop) == 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    gw_log_init("test", getenv("WT_DEBUG") ? GW_LOG_DEBUG : GW_LOG_ERROR);
    CHECK(gw_claim_global_init(NULL) == 0);
    test_keygate();
    test_backoff();
    test_events();
    test_drain_parse();
    test_line_split_utf8();
    test_claims();
    curl_global_cleanup();
    printf("runtime tests passed\n");
    return 0;
}
