/*
 * Idempotent producer on a libuv loop: delivery reports are served by
 * rd_kafka_poll() when the main queue's io event wakes the loop.
 */
#include <stdlib.h>
#include <string.h>

#include "gw/log.h"
#include "kafka_internal.h"

/* How often the background metadata request checks the cluster. */
#define HEALTH_INTERVAL_MS 5000
#define HEALTH_TIMEOUT_MS  3000

struct dr_ctx {
    gw_kafka_dr_cb cb;
    void *opaque;
};

struct gw_kafka_producer {
    uv_loop_t *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    struct gw__kafka_waker waker;
    uv_timer_t health_timer;
    uv_work_t health_work;
    bool work_busy;
    bool work_ok;      /* written by the work thread, read in after_work */
    bool brokers_down; /* last error_cb said ALL_BROKERS_DOWN */
    bool metadata_ok;  /* last metadata request succeeded */
    bool closing;
    int open_handles;
    struct gw_kafka_producer_stats stats;
};

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct gw_kafka_producer *p = opaque;
    struct dr_ctx *ctx = m->_private;
    struct gw_error e;
    (void)rk;
    p->stats.in_flight--;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->stats.delivered++;
        p->brokers_down = false;
        p->metadata_ok = true;
        if (ctx->cb != NULL)
            ctx->cb(ctx->opaque, NULL);
    } else {
        p->stats.delivery_errors++;
        gw_error_set(&e, GW_EUNAVAIL, m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE,
                     "kafka delivery failed: %s", rd_kafka_err2str(m->err));
        if (ctx->cb != NULL)
            ctx->cb(ctx->opaque, &e);
    }
    free(ctx);
}

static void error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    struct gw_kafka_producer *p = opaque;
    char fatal[256];
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        p->brokers_down = true;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        gw_log_error("kafka producer fatal error: %s", fatal);
        p->brokers_down = true;
        return;
    }
    gw_log_warn("kafka producer: %s: %s", rd_kafka_err2name(code), reason);
}

static void serve(struct gw_kafka_producer *p)
{
    while (rd_kafka_poll(p->rk, 0) > 0)
        ;
}

static void on_wake(struct gw__kafka_waker *w)
{
    serve(container_of(w, struct gw_kafka_producer, waker));
}

static void health_work(uv_work_t *req)
{
    struct gw_kafka_producer *p = container_of(req, struct gw_kafka_producer, health_work);
    const struct rd_kafka_metadata *md = NULL;
    /* rd_kafka_metadata() blocks, hence the thread pool; it is thread-safe. */
    rd_kafka_resp_err_t rc = rd_kafka_metadata(p->rk, 0, NULL, &md, HEALTH_TIMEOUT_MS);
    p->work_ok = rc == RD_KAFKA_RESP_ERR_NO_ERROR && md != NULL && md->broker_cnt > 0;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
}

static void finish_destroy(struct gw_kafka_producer *p);

static void health_done(uv_work_t *req, int status)
{
    struct gw_kafka_producer *p = container_of(req, struct gw_kafka_producer, health_work);
    p->work_busy = false;
    if (status == 0) {
        p->metadata_ok = p->work_ok;
        if (p->work_ok)
            p->brokers_down = false;
    }
    if (p->closing)
        finish_destroy(p);
}

static void health_tick(uv_timer_t *t)
{
    struct gw_kafka_producer *p = container_of(t, struct gw_kafka_producer, health_timer);
    if (p->work_busy || p->closing)
        return;
    if (uv_queue_work(p->loop, &p->health_work, health_work, health_done) == 0)
        p->work_busy = true;
}

static bool has_prop(const struct gw_kafka_config *cfg, const char *name)
{
    size_t n = strlen(name);
    for (const char *const *e = cfg != NULL ? cfg->extra : NULL; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return true;
    return false;
}

struct gw_kafka_producer *
gw_kafka_producer_create(uv_loop_t *loop, const struct gw_kafka_config *cfg, struct gw_error *err)
{
    char errstr[512];
    struct gw_kafka_producer *p = calloc(1, sizeof(*p));
    rd_kafka_conf_t *conf;
    if (p == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    p->loop = loop;
    conf = gw__kafka_conf_build(cfg, err);
    if (conf == NULL)
        goto fail_alloc;
    if (gw__kafka_conf_set(conf, "enable.idempotence", "true", err) < 0 ||
        gw__kafka_conf_set(conf, "acks", "all", err) < 0)
        goto fail_conf;
    /* The caller's default linger (5 ms unless it says) unless the operator
     * chose another value. */
    if (!has_prop(cfg, "linger.ms") && !has_prop(cfg, "queue.buffering.max.ms") &&
        gw__kafka_conf_set(conf, "linger.ms",
                           cfg != NULL && cfg->linger_ms != NULL ? cfg->linger_ms : "5", err) < 0)
        goto fail_conf;
    if (cfg != NULL && cfg->message_timeout_ms != NULL && !has_prop(cfg, "message.timeout.ms") &&
        !has_prop(cfg, "delivery.timeout.ms") &&
        gw__kafka_conf_set(conf, "message.timeout.ms", cfg->message_timeout_ms, err) < 0)
        goto fail_conf;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (p->rk == NULL) {
        gw_error_set(err, GW_EINVAL, false, "rd_kafka_new: %s", errstr);
        goto fail_conf;
    }
    conf = NULL; /* owned by rk now */
    p->mainq = rd_kafka_queue_get_main(p->rk);
    if (gw__kafka_waker_init(&p->waker, loop, p->mainq, on_wake, err) < 0)
        goto fail_rk;
    p->open_handles = 1;
    uv_timer_init(loop, &p->health_timer);
    p->open_handles++;
    uv_timer_start(&p->health_timer, health_tick, 0, HEALTH_INTERVAL_MS);
    return p;

fail_rk:
    rd_kafka_queue_destroy(p->mainq);
    rd_kafka_destroy(p->rk);
fail_conf:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
fail_alloc:
    free(p);
    return NULL;
}

int gw_kafka_produce_to(struct gw_kafka_producer *p, const char *topic, int32_t partition,
                        const void *key, size_t key_len, const void *payload, size_t len,
                        gw_kafka_dr_cb cb, void *opaque, struct gw_error *err)
{
    struct dr_ctx *ctx;
    rd_kafka_resp_err_t rc;
    size_t klen;
    if (p->closing)
        return gw_error_set(err, GW_ECLOSED, false, "producer is closing");
    ctx = malloc(sizeof(*ctx));
    if (ctx == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    ctx->cb = cb;
    ctx->opaque = opaque;
    klen = key != NULL ? key_len : 0;
    rc = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY((void *)key, klen), RD_KAFKA_V_VALUE((void *)payload, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(ctx), RD_KAFKA_V_END);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        free(ctx);
        return gw_error_set(err, rc == RD_KAFKA_RESP_ERR__QUEUE_FULL ? GW_ELIMIT : GW_EUNAVAIL,
                            rc == RD_KAFKA_RESP_ERR__QUEUE_FULL, "kafka produce to %s: %s", topic,
                            rd_kafka_err2str(rc));
    }
    p->stats.in_flight++;
    return 0;
}

int gw_kafka_produce(struct gw_kafka_producer *p, const char *topic, const void *key,
                     size_t key_len, const void *payload, size_t len, gw_kafka_dr_cb cb,
                     void *opaque, struct gw_error *err)
{
    return gw_kafka_produce_to(p, topic, RD_KAFKA_PARTITION_UA, key, key_len, payload, len, cb,
                               opaque, err);
}

bool gw_kafka_producer_healthy(const struct gw_kafka_producer *p)
{
    return p != NULL && !p->closing && p->metadata_ok && !p->brokers_down;
}

void gw_kafka_producer_stats(const struct gw_kafka_producer *p, struct gw_kafka_producer_stats *out)
{
    *out = p->stats;
}

static void handle_closed(struct gw_kafka_producer *p)
{
    if (--p->open_handles == 0)
        free(p);
}

static void waker_closed(struct gw__kafka_waker *w)
{
    handle_closed(container_of(w, struct gw_kafka_producer, waker));
}

static void timer_closed(uv_handle_t *h)
{
    handle_closed(container_of((uv_timer_t *)h, struct gw_kafka_producer, health_timer));
}

static void finish_destroy(struct gw_kafka_producer *p)
{
    rd_kafka_queue_destroy(p->mainq);
    rd_kafka_destroy(p->rk);
    gw__kafka_waker_close(&p->waker, waker_closed);
    uv_close((uv_handle_t *)&p->health_timer, timer_closed);
}

void gw_kafka_producer_destroy(struct gw_kafka_producer *p, int timeout_ms)
{
    if (p == NULL)
        return;
    p->closing = true;
    uv_timer_stop(&p->health_timer);
    rd_kafka_flush(p->rk, timeout_ms);
    if (p->stats.in_flight > 0) {
        /* Whatever is left gets a purge error: callbacks still run once. */
        gw_log_warn("kafka producer: %lu message(s) undelivered at shutdown", p->stats.in_flight);
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 100);
        serve(p);
    }
    if (p->work_busy) {
        /* health_done() finishes the destroy, cancelled or not. */
        uv_cancel((uv_req_t *)&p->health_work);
        return;
    }
    finish_destroy(p);
}
