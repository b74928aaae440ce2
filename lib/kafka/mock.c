/*
 * librdkafka's in-process mock cluster, the embedded default of `gangway dev`.
 *
 * The mock cluster does not wake a fetch waiting for data when a message is
 * produced, so every consumer of it (including workers started by hand
 * against `gangway dev`) must pass a small fetch.wait.max.ms, e.g.
 * GW_KAFKA_PROPS=fetch.wait.max.ms=10; otherwise latency is ~half of the
 * default 500 ms per hop.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "kafka_internal.h"
/* Must follow rdkafka.h (pulled in by kafka_internal.h). */
#include <librdkafka/rdkafka_mock.h>

struct gw_kafka_mock {
    rd_kafka_t *rk; /* the handle that owns the cluster's threads */
    rd_kafka_mock_cluster_t *mc;
};

struct gw_kafka_mock *gw_kafka_mock_create(int brokers, struct gw_error *err)
{
    char errstr[512];
    struct gw_kafka_mock *m = calloc(1, sizeof(*m));
    rd_kafka_conf_t *conf;
    if (m == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    conf = rd_kafka_conf_new();
    /* Quiet: this handle never connects to anything. */
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (m->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        gw_error_set(err, GW_EIO, false, "rd_kafka_new: %s", errstr);
        goto fail;
    }
    {
        /* The mock cluster's thread inherits our signal mask. librdkafka
         * 2.0.2's mock thread dies when poll() is interrupted (EINTR), e.g.
         * by the SIGCHLD of a child process: keep every signal away from it. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        m->mc = rd_kafka_mock_cluster_new(m->rk, brokers > 0 ? brokers : 1);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (m->mc == NULL) {
        gw_error_set(err, GW_EIO, false, "rd_kafka_mock_cluster_new failed");
        rd_kafka_destroy(m->rk);
        goto fail;
    }
    return m;
fail:
    free(m);
    return NULL;
}

const char *gw_kafka_mock_bootstraps(const struct gw_kafka_mock *m)
{
    return rd_kafka_mock_cluster_bootstraps(m->mc);
}

int gw_kafka_mock_create_topic(struct gw_kafka_mock *m, const char *topic, int partitions,
                               struct gw_error *err)
{
    rd_kafka_resp_err_t rc = rd_kafka_mock_topic_create(m->mc, topic, partitions, 1);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR && rc != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        return gw_error_set(err, GW_EIO, false, "mock topic %s: %s", topic, rd_kafka_err2str(rc));
    return 0;
}

void gw_kafka_mock_destroy(struct gw_kafka_mock *m)
{
    if (m == NULL)
        return;
    rd_kafka_mock_cluster_destroy(m->mc);
    rd_kafka_destroy(m->rk);
    free(m);
}
