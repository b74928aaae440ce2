/*
 * The control consumer (control.h). Cancels are rare and broadcast to every
 * worker process; a few hundred bytes each, so no batching concerns.
 */
#include "control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/crypto.h"
#include "gw/log.h"

/* Without it librdkafka looks for a topic created after the subscription
 * only every topic.metadata.refresh.interval.ms (5 min by default). */
#define METADATA_REFRESH "topic.metadata.refresh.interval.ms=10000"
/* How often to look whether the consumer got its partitions, to say so. */
#define READY_CHECK_MS 500

struct gw_control {
    struct gw_kafka_consumer *consumer;
    gw_control_cancel_cb cb;
    void *arg;
    gw_control_drain_cb drain_cb;
    void *drain_arg;
    char *topic, *group, *worker_id;
    unsigned long long received, ignored;
    uv_timer_t ready; /* until the first assignment */
};

/* Cancels sent before this process has its partitions never reach it (it
 * starts at the end): tell operators, and tests, when it listens. */
static void check_ready(uv_timer_t *t)
{
    struct gw_control *c = t->data;
    struct gw_kafka_consumer_health h;
    gw_kafka_consumer_health(c->consumer, &h);
    if (h.partitions > 0) {
        gw_log_info("control: listening for cancels on %s (%d partition(s))", c->topic,
                    h.partitions);
        uv_timer_stop(t);
    }
}

static void ready_closed(uv_handle_t *h)
{
    free(h->data);
}

/* A drain is addressed to one worker id: every other process skips it. */
static void handle_drain(struct gw_control *c, const struct gw_drain_request *req)
{
    if (strcmp(req->worker_id, c->worker_id) != 0)
        return;
    if (c->drain_cb == NULL) {
        gw_log_warn("control: drain request %s ignored: this process cannot drain",
                    req->event_id ? req->event_id : "?");
        return;
    }
    c->drain_cb(c->drain_arg, req);
}

static void on_batch(void *arg, struct gw_kafka_msg **msgs, size_t n)
{
    struct gw_control *c = arg;
    for (size_t i = 0; i < n; i++) {
        struct gw_kafka_msg *m = msgs[i];
        struct gw_cancel_request req;
        struct gw_drain_request dreq;
        char why[256];
        int drc;
        c->received++;
        drc = gw_drain_request_parse(m->payload, m->len, &dreq, why, sizeof(why));
        if (drc == 0) {
            handle_drain(c, &dreq);
            gw_drain_request_finish(&dreq);
        } else if (drc == -1) {
            c->ignored++;
            gw_log_warn("control message %s[%d]@%lld ignored: %s", m->topic, (int)m->partition,
                        (long long)m->offset, why);
        } else if (gw_cancel_request_parse(m->payload, m->len, &req, why, sizeof(why)) < 0) {
            /* A broadcast topic: dead-lettering would copy it once per
             * worker process. */
            c->ignored++;
            gw_log_warn("control message %s[%d]@%lld ignored: %s", m->topic, (int)m->partition,
                        (long long)m->offset, why);
        } else {
            c->cb(c->arg, &req);
            gw_cancel_request_finish(&req);
        }
        gw_kafka_msg_done(c->consumer, m);
    }
}

struct gw_control *gw_control_create(uv_loop_t *loop, const struct gw_kafka_config *kafka,
                                     const char *topic_prefix, const char *worker_id,
                                     gw_control_cancel_cb cb, void *arg, struct gw_error *err)
{
    const char *prefix = topic_prefix != NULL ? topic_prefix : "";
    char suffix[GW_UUID_LEN + 1];
    struct gw_control *c;
    struct gw_kafka_config kc = *kafka;
    const char **extra = NULL;
    size_t n = 0, len;

    if (gw_uuid_v4(suffix, err) < 0)
        return NULL;
    suffix[8] = '\0';
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto fail_oom;
    c->cb = cb;
    c->arg = arg;
    len = strlen(prefix) + sizeof("gangway.control");
    if ((c->topic = malloc(len)) == NULL || (c->worker_id = strdup(worker_id)) == NULL)
        goto fail_oom;
    snprintf(c->topic, len, "%sgangway.control", prefix);
    /* One group per process: every process must see every cancel. */
    len = strlen(prefix) + sizeof("gangway-control--") + strlen(worker_id) + strlen(suffix);
    if ((c->group = malloc(len)) == NULL)
        goto fail_oom;
    snprintf(c->group, len, "%sgangway-control-%s-%s", prefix, worker_id, suffix);

    /* Our default first: the deployment's own properties override it. */
    for (const char *const *e = kafka->extra; e != NULL && *e != NULL; e++)
        n++;
    if ((extra = calloc(n + 2, sizeof(*extra))) == NULL)
        goto fail_oom;
    extra[0] = METADATA_REFRESH;
    for (size_t i = 0; i < n; i++)
        extra[i + 1] = kafka->extra[i];
    kc.extra = extra;
    {
        const char *topics[] = {c->topic, NULL};
        struct gw_kafka_consumer_options co = {.group_id = c->group,
                                               .topics = topics,
                                               .max_batch = 16,
                                               .max_in_flight = 16,
                                               .offset_reset = "latest"};
        c->consumer = gw_kafka_consumer_create(loop, &kc, &co, on_batch, c, err);
    }
    free(extra);
    if (c->consumer == NULL)
        goto fail;
    uv_timer_init(loop, &c->ready);
    c->ready.data = c;
    uv_timer_start(&c->ready, check_ready, READY_CHECK_MS, READY_CHECK_MS);
    gw_log_info("control: consuming %s in group %s", c->topic, c->group);
    return c;

fail_oom:
    gw_error_set(err, GW_ENOMEM, false, "out of memory");
fail:
    if (c != NULL) {
        free(c->worker_id);
        free(c->topic);
        free(c->group);
        free(c);
    }
    return NULL;
}

void gw_control_on_drain(struct gw_control *c, gw_control_drain_cb cb, void *arg)
{
    c->drain_cb = cb;
    c->drain_arg = arg;
}

const char *gw_control_group(const struct gw_control *c)
{
    return c->group;
}

void gw_control_destroy(struct gw_control *c)
{
    if (c == NULL)
        return;
    gw_kafka_consumer_destroy(c->consumer);
    if (c->ignored > 0)
        gw_log_info("control: %llu message(s), %llu ignored", c->received, c->ignored);
    free(c->topic);
    free(c->group);
    free(c->worker_id);
    c->topic = c->group = c->worker_id = NULL;
    uv_close((uv_handle_t *)&c->ready, ready_closed);
}
