/*
 * Helpers shared by the files of lib/kafka (not part of the public API).
 */
#ifndef GW_KAFKA_INTERNAL_H
#define GW_KAFKA_INTERNAL_H

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "gw/kafka.h"

/* Builds a librdkafka configuration from `cfg` (bootstrap.servers + extra
 * props). Returns NULL with `err` filled on a bad property. */
rd_kafka_conf_t *gw__kafka_conf_build(const struct gw_kafka_config *cfg, struct gw_error *err);
/* The same with `defaults` ("k=v", NULL-terminated) applied before the
 * config's extra properties, so the operator's settings win. */
rd_kafka_conf_t *gw__kafka_conf_build_defaults(const struct gw_kafka_config *cfg,
                                               const char *const *defaults, struct gw_error *err);

/* Sets one property; fills `err` on failure. Frees nothing. */
int gw__kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                       struct gw_error *err);

/* A pipe whose read end is watched by a uv_poll_t, woken by librdkafka's
 * io events on one queue. Embedded in its owner. */
struct gw__kafka_waker {
    uv_poll_t poll;
    int fds[2];
    void (*on_wake)(struct gw__kafka_waker *w);
    void (*on_closed)(struct gw__kafka_waker *w);
};

int gw__kafka_waker_init(struct gw__kafka_waker *w, uv_loop_t *loop, rd_kafka_queue_t *q,
                         void (*on_wake)(struct gw__kafka_waker *w), struct gw_error *err);

/* Disables nothing on the queue (the caller destroys it first); closes the
 * poll handle and the pipe; `on_closed` runs from the loop afterwards. */
void gw__kafka_waker_close(struct gw__kafka_waker *w, void (*on_closed)(struct gw__kafka_waker *w));

#endif
