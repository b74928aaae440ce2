#include "worker_e2e.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"
#include "claimsrv.h"
#include "runtime.h"
#include "wtest.h"

void e2e_start(struct claimsrv *srv, uv_loop_t *loop)
{
    if (claimsrv_start(srv) != 0) {
        printf("python3 not available: skipped\n");
        exit(77);
    }
    CHECK(gw_claim_global_init(NULL) == 0);
    CHECK(uv_loop_init(loop) == 0);
}

void e2e_topics_init(struct e2e_topics *t, const char *prefix)
{
    snprintf(t->runs, sizeof(t->runs), "%sgangway.runs.exec", prefix);
    snprintf(t->events, sizeof(t->events), "%sgangway.events", prefix);
    snprintf(t->dead, sizeof(t->dead), "%sgangway.deadletter", prefix);
    snprintf(t->control, sizeof(t->control), "%sgangway.control", prefix);
}

struct gw_kafka_mock *e2e_mock_create(struct gw_kafka_config *kcfg, const struct e2e_topics *t)
{
    struct gw_error err;
    struct gw_kafka_mock *m = gw_kafka_mock_create(1, &err);
    CHECK(m != NULL);
    kcfg->brokers = gw_kafka_mock_bootstraps(m);
    CHECK(gw_kafka_mock_create_topic(m, t->runs, 2, NULL) == 0);
    CHECK(gw_kafka_mock_create_topic(m, t->events, 1, NULL) == 0);
    CHECK(gw_kafka_mock_create_topic(m, t->dead, 1, NULL) == 0);
    return m;
}

static void delivered(void *opaque, const struct gw_error *err)
{
    (void)opaque;
    CHECK(err == NULL);
}

void e2e_request(struct gw_kafka_producer *p, const struct e2e_topics *t, const char *run_id,
                 const char *key, const char *action_id, int timeout_seconds)
{
    char buf[1024];
    int n = snprintf(buf, sizeof(buf),
                     "{\"specversion\":\"1.0\",\"id\":\"o-%s\",\"source\":\"gangway/broker\","
                     "\"type\":\"dev.gangway.run.requested\",\"subject\":\"%s\","
                     "\"time\":\"2026-01-01T00:00:00Z\",\"datacontenttype\":\"application/json\","
                     "\"data\":{\"run_id\":\"%s\",\"attempt\":1,\"action_id\":\"%s\","
                     "\"action_version\":\"v1\",\"worker_type\":\"exec\",\"key\":\"%s\","
                     "\"timeout_seconds\":%d,\"requested_at\":\"2026-01-01T00:00:00Z\"}}",
                     run_id, run_id, run_id, action_id, key, timeout_seconds);
    CHECK(n > 0 && (size_t)n < sizeof(buf));
    CHECK(gw_kafka_produce(p, t->runs, key, strlen(key), buf, (size_t)n, delivered, NULL, NULL) ==
          0);
}

struct gw_worker *e2e_worker_create(uv_loop_t *loop, const struct gw_kafka_config *kcfg,
                                    const char *prefix, const char *broker_url, int heartbeat_ms)
{
    struct gw_error err;
    struct gw_worker_options o = {.type = "exec",
                                  .concurrency = 4,
                                  .broker_url = broker_url,
                                  .token = "tok",
                                  .kafka = *kcfg,
                                  .topic_prefix = prefix,
                                  .heartbeat_ms = heartbeat_ms,
                                  .grace_ms = 300};
    struct gw_worker *w = gw_worker_create(loop, &o, &err);
    if (w == NULL)
        fprintf(stderr, "worker: %s\n", err.message);
    CHECK(w != NULL);
    return w;
}

json_t *e2e_events_of(json_t *events, const char *run_id)
{
    json_t *out = json_array(), *ev;
    size_t i;
    json_array_foreach(events, i, ev)
    {
        if (strcmp(json_string_value(json_object_get(ev, "subject")), run_id) == 0)
            json_array_append(out, ev);
    }
    return out;
}

const char *e2e_type_of(json_t *ev)
{
    return json_string_value(json_object_get(ev, "type"));
}

bool e2e_schema_open(struct e2e_schema *s)
{
    const char *root = getenv("GW_SOURCE_ROOT");
    char dir[1024], path[1100];
    struct gw_error err;
    memset(s, 0, sizeof(*s));
    if (root == NULL)
        return false;
    snprintf(dir, sizeof(dir), "%s/schemas/events", root);
    snprintf(path, sizeof(path), "%s/envelope.schema.json", dir);
    s->reg = gw_schema_registry_create(&err);
    CHECK(s->reg != NULL);
    CHECK(gw_schema_registry_add_dir(s->reg, "https://gangway.dev/schemas/events/", dir, &err) ==
          0);
    s->doc = json_load_file(path, 0, NULL);
    CHECK(s->doc != NULL);
    s->envelope = gw_schema_compile(
        s->reg, s->doc, "https://gangway.dev/schemas/events/envelope.schema.json", NULL, &err);
    if (s->envelope == NULL)
        fprintf(stderr, "compile: %s\n", err.message);
    CHECK(s->envelope != NULL);
    return true;
}

void e2e_schema_close(struct e2e_schema *s)
{
    gw_schema_destroy(s->envelope);
    json_decref(s->doc);
    gw_schema_registry_destroy(s->reg);
    memset(s, 0, sizeof(*s));
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

bool e2e_run_until(uv_loop_t *loop, bool (*pred)(const char *arg), const char *arg, int ms)
{
    uv_timer_t t;
    uint64_t deadline;
    bool ok;
    uv_update_time(loop);
    deadline = uv_now(loop) + (uint64_t)ms;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, tick, 10, 10);
    while (!(ok = pred(arg)) && uv_now(loop) < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}
