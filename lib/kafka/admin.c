/* Topic creation through the Admin API (start-up only: it blocks). */
#include <stdlib.h>
#include <string.h>

#include "kafka_internal.h"

int gw_kafka_ensure_topics(const struct gw_kafka_config *cfg, const char *const *topics,
                           int partitions, int replication, int timeout_ms, struct gw_error *err)
{
    char errstr[512];
    size_t n = 0;
    int ret = 0;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    rd_kafka_NewTopic_t **nt;
    rd_kafka_AdminOptions_t *opt;
    rd_kafka_event_t *ev;

    for (const char *const *t = topics; t != NULL && *t != NULL; t++)
        n++;
    if (n == 0)
        return 0;
    conf = gw__kafka_conf_build(cfg, err);
    if (conf == NULL)
        return GW_EINVAL;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return gw_error_set(err, GW_EINVAL, false, "rd_kafka_new: %s", errstr);
    }
    nt = calloc(n, sizeof(*nt));
    if (nt == NULL) {
        ret = gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto fail_rk;
    }
    for (size_t i = 0; i < n; i++) {
        nt[i] = rd_kafka_NewTopic_new(topics[i], partitions, replication, errstr, sizeof(errstr));
        if (nt[i] == NULL) {
            ret = gw_error_set(err, GW_EINVAL, false, "topic %s: %s", topics[i], errstr);
            goto fail_topics;
        }
    }
    q = rd_kafka_queue_new(rk);
    opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, NULL, 0);
    rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, NULL, 0);
    rd_kafka_CreateTopics(rk, nt, n, opt, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (ev == NULL) {
        ret = gw_error_set(err, GW_ETIMEDOUT, true, "CreateTopics: no answer in %d ms", timeout_ms);
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ret = gw_error_set(err, GW_EUNAVAIL, true, "CreateTopics: %s",
                           rd_kafka_event_error_string(ev));
    } else {
        size_t cnt = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        for (size_t i = 0; i < cnt && ret == 0; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                ret = gw_error_set(err, GW_EUNAVAIL, e == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                   "create topic %s: %s", rd_kafka_topic_result_name(res[i]),
                                   rd_kafka_topic_result_error_string(res[i]));
        }
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
fail_topics:
    for (size_t i = 0; i < n; i++)
        if (nt[i] != NULL)
            rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
fail_rk:
    rd_kafka_destroy(rk);
    return ret;
}

int gw_kafka_delete_topics(const struct gw_kafka_config *cfg, const char *const *topics,
                           int timeout_ms, struct gw_error *err)
{
    char errstr[512];
    size_t n = 0;
    int ret = 0;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    rd_kafka_DeleteTopic_t **dt;
    rd_kafka_AdminOptions_t *opt;
    rd_kafka_event_t *ev;

    for (const char *const *t = topics; t != NULL && *t != NULL; t++)
        n++;
    if (n == 0)
        return 0;
    conf = gw__kafka_conf_build(cfg, err);
    if (conf == NULL)
        return GW_EINVAL;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return gw_error_set(err, GW_EINVAL, false, "rd_kafka_new: %s", errstr);
    }
    dt = calloc(n, sizeof(*dt));
    if (dt == NULL) {
        rd_kafka_destroy(rk);
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        dt[i] = rd_kafka_DeleteTopic_new(topics[i]);
    q = rd_kafka_queue_new(rk);
    opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, NULL, 0);
    rd_kafka_DeleteTopics(rk, dt, n, opt, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (ev == NULL) {
        ret = gw_error_set(err, GW_ETIMEDOUT, true, "DeleteTopics: no answer");
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ret = gw_error_set(err, GW_EUNAVAIL, true, "DeleteTopics: %s",
                           rd_kafka_event_error_string(ev));
    } else {
        size_t cnt = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
        for (size_t i = 0; i < cnt && ret == 0; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                ret = gw_error_set(err, GW_EUNAVAIL, false, "delete topic %s: %s",
                                   rd_kafka_topic_result_name(res[i]),
                                   rd_kafka_topic_result_error_string(res[i]));
        }
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy_array(dt, n);
    free(dt);
    rd_kafka_destroy(rk);
    return ret;
}
