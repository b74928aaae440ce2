/* Configuration and loop wake-up shared by the producer and the consumer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw/log.h"
#include "kafka_internal.h"

/* librdkafka's own log lines go through gw_log (syslog levels 0..7). */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum gw_log_level l = level <= 3   ? GW_LOG_ERROR
                          : level == 4 ? GW_LOG_WARN
                          : level <= 6 ? GW_LOG_INFO
                                       : GW_LOG_DEBUG;
    /* GW_KAFKA_PROPS is shared by producers and consumers: their warnings
     * about properties of the other kind are noise. */
    if (strcmp(fac, "CONFWARN") == 0)
        l = GW_LOG_DEBUG;
    gw_log(l, NULL, "rdkafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

/* GW_KAFKA_STATS=FILE: every client appends librdkafka's statistics (one
 * JSON document a line, every statistics.interval.ms, 1000 unless
 * GW_KAFKA_PROPS says) to FILE, for diagnosing Kafka traffic: requests per
 * broker, batch sizes, queue depths, round-trip times. Opt-in, off by
 * default; bench/run-core uses it to count Kafka requests per run. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    const char *path = getenv("GW_KAFKA_STATS");
    int fd;
    (void)rk;
    (void)opaque;
    if (path == NULL || *path == '\0')
        return 0;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        gw_log_warn("GW_KAFKA_STATS %s: %s", path, strerror(errno));
        return 0;
    }
    /* "PID<TAB>JSON": client names (rdkafka#producer-1) repeat across
     * processes. One write per line: O_APPEND keeps the lines of several
     * processes whole. */
    char pid[24];
    int n = snprintf(pid, sizeof(pid), "%ld\t", (long)getpid());
    char *line = malloc((size_t)n + len + 1);
    if (line != NULL) {
        memcpy(line, pid, (size_t)n);
        memcpy(line + n, json, len);
        line[(size_t)n + len] = '\n';
        if (write(fd, line, (size_t)n + len + 1) < 0)
            gw_log_warn("GW_KAFKA_STATS %s: %s", path, strerror(errno));
        free(line);
    }
    close(fd);
    return 0; /* librdkafka frees `json` */
}

int gw__kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                       struct gw_error *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return gw_error_set(err, GW_EINVAL, false, "kafka property %s: %s", name, errstr);
    return 0;
}

/* Sets each "key=value" of a NULL-terminated list. */
static int apply_props(rd_kafka_conf_t *conf, const char *const *props, struct gw_error *err)
{
    for (const char *const *e = props; e != NULL && *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        char name[256];
        if (eq == NULL || eq == *e || (size_t)(eq - *e) >= sizeof(name))
            return gw_error_set(err, GW_EINVAL, false, "kafka property '%s' is not key=value", *e);
        memcpy(name, *e, (size_t)(eq - *e));
        name[eq - *e] = '\0';
        if (gw__kafka_conf_set(conf, name, eq + 1, err) < 0)
            return -1;
    }
    return 0;
}

rd_kafka_conf_t *gw__kafka_conf_build_defaults(const struct gw_kafka_config *cfg,
                                               const char *const *defaults, struct gw_error *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "rd_kafka_conf_new failed");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (cfg != NULL && cfg->brokers != NULL &&
        gw__kafka_conf_set(conf, "bootstrap.servers", cfg->brokers, err) < 0)
        goto fail;
    if (getenv("GW_KAFKA_STATS") != NULL && *getenv("GW_KAFKA_STATS") != '\0') {
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
        if (gw__kafka_conf_set(conf, "statistics.interval.ms", "1000", err) < 0)
            goto fail;
    }
    /* Defaults first: the operator's extra properties set later win. */
    if (apply_props(conf, defaults, err) < 0 ||
        apply_props(conf, cfg != NULL ? cfg->extra : NULL, err) < 0)
        goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

rd_kafka_conf_t *gw__kafka_conf_build(const struct gw_kafka_config *cfg, struct gw_error *err)
{
    return gw__kafka_conf_build_defaults(cfg, NULL, err);
}

static void waker_cb(uv_poll_t *h, int status, int events)
{
    struct gw__kafka_waker *w = container_of(h, struct gw__kafka_waker, poll);
    char buf[256];
    (void)status;
    (void)events;
    /* librdkafka writes only when the queue turns non-empty: drain the pipe,
     * then the owner drains the queue completely. */
    while (read(w->fds[0], buf, sizeof(buf)) > 0)
        ;
    w->on_wake(w);
}

int gw__kafka_waker_init(struct gw__kafka_waker *w, uv_loop_t *loop, rd_kafka_queue_t *q,
                         void (*on_wake)(struct gw__kafka_waker *w), struct gw_error *err)
{
    int rc;
    w->on_wake = on_wake;
    w->on_closed = NULL;
    if (pipe2(w->fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return gw_error_set(err, GW_EIO, true, "pipe: %s", strerror(errno));
    rc = uv_poll_init(loop, &w->poll, w->fds[0]);
    if (rc != 0) {
        close(w->fds[0]);
        close(w->fds[1]);
        return gw_error_set(err, GW_EIO, false, "uv_poll_init: %s", uv_strerror(rc));
    }
    uv_poll_start(&w->poll, UV_READABLE, waker_cb);
    rd_kafka_queue_io_event_enable(q, w->fds[1], "1", 1);
    return 0;
}

static void waker_closed(uv_handle_t *h)
{
    struct gw__kafka_waker *w = container_of((uv_poll_t *)h, struct gw__kafka_waker, poll);
    close(w->fds[0]);
    close(w->fds[1]);
    if (w->on_closed != NULL)
        w->on_closed(w);
}

void gw__kafka_waker_close(struct gw__kafka_waker *w, void (*on_closed)(struct gw__kafka_waker *w))
{
    w->on_closed = on_closed;
    uv_close((uv_handle_t *)&w->poll, waker_closed);
}
