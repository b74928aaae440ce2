/* Topic creation and deletion, and a consumer group's backlog, through the
 * Admin API (start-up, the reaper's worker thread and tests only: it blocks). */
#include <stdlib.h>
#include <string.h>

#include "gw/log.h"
#include "kafka_internal.h"

static size_t count(const char *const *topics)
{
    size_t n = 0;
    for (const char *const *t = topics; t != NULL && *t != NULL; t++)
        n++;
    return n;
}

/* A client for one admin request; NULL with `err` set when it cannot be made.
 * Its metadata requests never create a topic (a broker with
 * auto.create.topics.enable would create one for a producer's). */
static rd_kafka_t *admin_client(const struct gw_kafka_config *cfg, struct gw_error *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = gw__kafka_conf_build(cfg, err);
    rd_kafka_t *rk;
    if (conf == NULL)
        return NULL;
    if (rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        gw_error_set(err, GW_EINVAL, false, "allow.auto.create.topics: %s", errstr);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        gw_error_set(err, GW_EINVAL, false, "rd_kafka_new: %s", errstr);
    }
    return rk;
}

/* Waits for the answer to the CreateTopics or DeleteTopics request `what`
 * sent to `q`: 0 when every topic's result is no error or `fine` (already
 * there, already gone); else the first failure, `verb` naming what failed.
 * With `done`, sets done[i] when topics[i]'s result is no error (created or
 * deleted by this request, not `fine`). */
static int admin_answer(rd_kafka_queue_t *q, int timeout_ms, const char *what, const char *verb,
                        rd_kafka_resp_err_t fine, const char *const *topics, bool *done,
                        struct gw_error *err)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    const rd_kafka_topic_result_t **res;
    size_t cnt = 0;
    int ret = 0;

    if (ev == NULL)
        return gw_error_set(err, GW_ETIMEDOUT, true, "%s: no answer in %d ms", what, timeout_ms);
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ret = gw_error_set(err, GW_EUNAVAIL, true, "%s: %s", what, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return ret;
    }
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    else
        res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt && ret == 0; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        for (size_t j = 0; done != NULL && e == RD_KAFKA_RESP_ERR_NO_ERROR && topics[j] != NULL;
             j++)
            if (strcmp(topics[j], rd_kafka_topic_result_name(res[i])) == 0)
                done[j] = true;
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != fine)
            ret = gw_error_set(err, GW_EUNAVAIL, e == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                               "%s topic %s: %s", verb, rd_kafka_topic_result_name(res[i]),
                               rd_kafka_topic_result_error_string(res[i]));
    }
    rd_kafka_event_destroy(ev);
    return ret;
}

/* What one admin request needs: a client, a queue for its answer and options
 * carrying the operation timeout. */
struct admin_call {
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    rd_kafka_AdminOptions_t *opt;
};

/* Makes `a` ready for operation `op`; GW_EINVAL with `err` set when the client
 * cannot be made. Undone by admin_call_close(). */
static int admin_call_open(struct admin_call *a, const struct gw_kafka_config *cfg,
                           rd_kafka_admin_op_t op, int timeout_ms, struct gw_error *err)
{
    a->rk = admin_client(cfg, err);
    if (a->rk == NULL)
        return GW_EINVAL;
    a->q = rd_kafka_queue_new(a->rk);
    a->opt = rd_kafka_AdminOptions_new(a->rk, op);
    rd_kafka_AdminOptions_set_operation_timeout(a->opt, timeout_ms, NULL, 0);
    return 0;
}

static void admin_call_close(struct admin_call *a)
{
    rd_kafka_AdminOptions_destroy(a->opt);
    rd_kafka_queue_destroy(a->q);
    rd_kafka_destroy(a->rk);
}

static int watermarks(rd_kafka_t *rk, const char *topic, const rd_kafka_metadata_topic_t *t,
                      int64_t *lo, int64_t *hi, int timeout_ms, struct gw_error *err);

/* Waits until every partition of each topic this call created (made[i]) has
 * a leader that serves it: its metadata names a leader for all of them and
 * a ListOffsets (the watermark query) to each leader answers. CreateTopics
 * answers before the leaders have loaded the new logs, and a produce in
 * that window is refused and retried by librdkafka, the path on which its
 * 2.0.2 idempotent producer can report delivered a message the broker
 * dropped (docs/decisions/0080-wait-for-new-topics-leaders.md). Topics that
 * were there already are not waited for: a cluster with a broker down must
 * not hold every start-up. One deadline, `timeout_ms`, for all of them; past
 * it a warning, and the producer retries on its own (the reaper republishes
 * what never reached a worker). */
static void wait_writable(rd_kafka_t *rk, const char *const *topics, const bool *made,
                          int timeout_ms)
{
    uint64_t deadline = uv_hrtime() / 1000000 + (uint64_t)timeout_ms;
    for (size_t k = 0; topics[k] != NULL; k++) {
        struct gw_error err = {0};
        bool ready = false;
        uint64_t now;
        if (!made[k])
            continue; /* there before: its leaders have long loaded it */
        while (!ready && (now = uv_hrtime() / 1000000) < deadline) {
            const struct rd_kafka_metadata *md = NULL;
            int left = deadline - now < 2000 ? (int)(deadline - now) : 2000;
            rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[k], NULL);
            rd_kafka_resp_err_t e =
                rkt != NULL ? rd_kafka_metadata(rk, 0, rkt, &md, left) : rd_kafka_last_error();
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                e = md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                                       : md->topics[0].err;
            const rd_kafka_metadata_topic_t *mt =
                e == RD_KAFKA_RESP_ERR_NO_ERROR ? &md->topics[0] : NULL;
            bool leaders = mt != NULL && mt->partition_cnt > 0;
            for (int i = 0; leaders && i < mt->partition_cnt; i++)
                leaders = mt->partitions[i].leader >= 0;
            if (mt == NULL) {
                gw_error_set(&err, GW_EUNAVAIL, true, "metadata: %s", rd_kafka_err2str(e));
            } else if (!leaders) {
                gw_error_set(&err, GW_EUNAVAIL, true, "a partition has no leader");
            } else {
                int64_t *lo = calloc((size_t)mt->partition_cnt, sizeof(*lo));
                int64_t *hi = calloc((size_t)mt->partition_cnt, sizeof(*hi));
                ready = lo != NULL && hi != NULL &&
                        watermarks(rk, topics[k], mt, lo, hi, left, &err) == 0;
                free(lo);
                free(hi);
            }
            if (md != NULL)
                rd_kafka_metadata_destroy(md);
            if (rkt != NULL)
                rd_kafka_topic_destroy(rkt);
            if (!ready)
                rd_kafka_poll(rk, 100);
        }
        if (!ready)
            gw_log_warn("topic %s: created, but not every partition has a leader serving it "
                        "after %d ms; producing anyway: %s",
                        topics[k], timeout_ms,
                        err.message[0] != '\0' ? err.message : "no time left");
    }
}

int gw_kafka_ensure_topics(const struct gw_kafka_config *cfg, const char *const *topics,
                           int partitions, int replication, int timeout_ms, struct gw_error *err)
{
    char errstr[512];
    size_t n = count(topics);
    int ret = 0;
    struct admin_call a;
    rd_kafka_NewTopic_t **nt;
    bool *made = NULL;

    if (n == 0)
        return 0;
    if (admin_call_open(&a, cfg, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms, err) < 0)
        return GW_EINVAL;
    rd_kafka_AdminOptions_set_request_timeout(a.opt, timeout_ms, NULL, 0);
    nt = calloc(n, sizeof(*nt));
    if (nt == NULL) {
        ret = gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        nt[i] = rd_kafka_NewTopic_new(topics[i], partitions, replication, errstr, sizeof(errstr));
        if (nt[i] == NULL) {
            ret = gw_error_set(err, GW_EINVAL, false, "topic %s: %s", topics[i], errstr);
            goto fail_topics;
        }
    }
    made = calloc(n, sizeof(*made));
    rd_kafka_CreateTopics(a.rk, nt, n, a.opt, a.q);
    ret = admin_answer(a.q, timeout_ms, "CreateTopics", "create",
                       RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, topics, made, err);
    if (ret == 0 && made != NULL)
        wait_writable(a.rk, topics, made, timeout_ms);
    free(made);
fail_topics:
    for (size_t i = 0; i < n; i++)
        if (nt[i] != NULL)
            rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
out:
    admin_call_close(&a);
    return ret;
}

int gw_kafka_delete_topics(const struct gw_kafka_config *cfg, const char *const *topics,
                           int timeout_ms, struct gw_error *err)
{
    size_t n = count(topics);
    int ret;
    struct admin_call a;
    rd_kafka_DeleteTopic_t **dt;

    if (n == 0)
        return 0;
    if (admin_call_open(&a, cfg, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout_ms, err) < 0)
        return GW_EINVAL;
    dt = calloc(n, sizeof(*dt));
    if (dt == NULL) {
        admin_call_close(&a);
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        dt[i] = rd_kafka_DeleteTopic_new(topics[i]);
    rd_kafka_DeleteTopics(a.rk, dt, n, a.opt, a.q);
    ret = admin_answer(a.q, timeout_ms, "DeleteTopics", "delete",
                       RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, NULL, NULL, err);
    rd_kafka_DeleteTopic_destroy_array(dt, n);
    free(dt);
    admin_call_close(&a);
    return ret;
}

/* The high watermark of each partition of `md`'s one topic; 0 or the first
 * failure. */
static int watermarks(rd_kafka_t *rk, const char *topic, const rd_kafka_metadata_topic_t *t,
                      int64_t *lo, int64_t *hi, int timeout_ms, struct gw_error *err)
{
    for (int i = 0; i < t->partition_cnt; i++) {
        rd_kafka_resp_err_t e;
        /* A leader moving (a new topic's, a broker restarting) fails a
         * query once or twice before the client's metadata catches up. */
        for (int tries = 0; tries < 5; tries++) {
            e = rd_kafka_query_watermark_offsets(rk, topic, t->partitions[i].id, &lo[i], &hi[i],
                                                 timeout_ms);
            if (e != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
                e != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE)
                break;
            rd_kafka_poll(rk, 200);
        }
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            return gw_error_set(err, GW_EUNAVAIL, true, "watermarks of %s [%d]: %s", topic,
                                t->partitions[i].id, rd_kafka_err2str(e));
    }
    return 0;
}

/* gw_kafka_group_backlog's work on a client made already (`a`, ready for
 * ListConsumerGroupOffsets), so a round of several asks makes one. Sets
 * *unreachable when the metadata request itself failed: the cluster, not
 * this topic, did not answer. */
static int backlog_on(struct admin_call *a, const char *topic, const char *group, int timeout_ms,
                      int64_t *backlog, bool *unreachable, struct gw_error *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_ListConsumerGroupOffsets_t *req;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_queue_t *q = NULL;
    int64_t *lo = NULL, *hi = NULL;
    int ret = 0;

    *backlog = 0;
    rkt = rd_kafka_topic_new(a->rk, topic, NULL);
    rd_kafka_resp_err_t e =
        rkt != NULL ? rd_kafka_metadata(a->rk, 0, rkt, &md, timeout_ms) : rd_kafka_last_error();
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        *unreachable = rkt != NULL &&
                       (e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                        e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN);
        ret =
            gw_error_set(err, GW_EUNAVAIL, true, "metadata of %s: %s", topic, rd_kafka_err2str(e));
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        md->topics[0].partition_cnt == 0)
        goto out; /* no topic: nothing waits in it */
    if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ret = gw_error_set(err, GW_EUNAVAIL, true, "metadata of %s: %s", topic,
                           rd_kafka_err2str(md->topics[0].err));
        goto out;
    }
    const rd_kafka_metadata_topic_t *t = &md->topics[0];
    lo = calloc((size_t)t->partition_cnt, sizeof(*lo));
    hi = calloc((size_t)t->partition_cnt, sizeof(*hi));
    parts = rd_kafka_topic_partition_list_new(t->partition_cnt);
    if (lo == NULL || hi == NULL || parts == NULL) {
        ret = gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto out;
    }
    if ((ret = watermarks(a->rk, topic, t, lo, hi, timeout_ms, err)) < 0)
        goto out;
    for (int i = 0; i < t->partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, t->partitions[i].id);
    /* A queue of this ask's own: an answer that comes after our poll gave
     * up lands in it and dies with it, never in the next ask's poll (one
     * shared queue would hand it to the next ask as its answer). */
    q = rd_kafka_queue_new(a->rk);
    req = rd_kafka_ListConsumerGroupOffsets_new(group, parts);
    rd_kafka_ListConsumerGroupOffsets(a->rk, &req, 1, a->opt, q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (ev == NULL) {
        ret = gw_error_set(err, GW_ETIMEDOUT, true, "offsets of group %s: no answer in %d ms",
                           group, timeout_ms);
        goto out;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ret = gw_error_set(err, GW_EUNAVAIL, true, "offsets of group %s: %s", group,
                           rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t cnt = 0;
    const rd_kafka_group_result_t **groups = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &cnt);
    const rd_kafka_error_t *gerr = cnt == 1 ? rd_kafka_group_result_error(groups[0]) : NULL;
    if (cnt != 1 || gerr != NULL || strcmp(rd_kafka_group_result_name(groups[0]), group) != 0) {
        ret = gw_error_set(err, GW_EUNAVAIL, true, "offsets of group %s: %s", group,
                           gerr != NULL ? rd_kafka_error_string(gerr)
                           : cnt != 1   ? "no result"
                                        : "the answer names another group");
        goto out;
    }
    const rd_kafka_topic_partition_list_t *got = rd_kafka_group_result_partitions(groups[0]);
    for (int i = 0; i < t->partition_cnt; i++) {
        /* No committed offset: a new member starts at the earliest one
         * (auto.offset.reset, consumer.c), so all that is kept waits. */
        int64_t from = lo[i];
        for (int j = 0; got != NULL && j < got->cnt; j++)
            if (got->elems[j].partition == t->partitions[i].id && got->elems[j].offset >= 0 &&
                got->elems[j].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                strcmp(got->elems[j].topic, topic) == 0)
                from = got->elems[j].offset > lo[i] ? got->elems[j].offset : lo[i];
        if (hi[i] > from)
            *backlog += hi[i] - from;
    }
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    free(lo);
    free(hi);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    return ret;
}

int gw_kafka_group_backlogs(const struct gw_kafka_config *cfg, struct gw_kafka_backlog_ask *asks,
                            size_t n, int timeout_ms, struct gw_error *err)
{
    struct admin_call a;
    if (n == 0)
        return 0;
    if (admin_call_open(&a, cfg, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, timeout_ms, err) < 0)
        return GW_EINVAL;
    rd_kafka_AdminOptions_set_request_timeout(a.opt, timeout_ms, NULL, 0);
    bool unreachable = false;
    for (size_t i = 0; i < n; i++) {
        asks[i].backlog = 0;
        if (unreachable) { /* not another timeout per ask: the cluster is away */
            asks[i].failed = true;
            asks[i].err = asks[i - 1].err;
            continue;
        }
        asks[i].failed = backlog_on(&a, asks[i].topic, asks[i].group, timeout_ms, &asks[i].backlog,
                                    &unreachable, &asks[i].err) != 0;
    }
    admin_call_close(&a);
    return 0;
}

int gw_kafka_group_backlog(const struct gw_kafka_config *cfg, const char *topic, const char *group,
                           int timeout_ms, int64_t *backlog, struct gw_error *err)
{
    struct gw_kafka_backlog_ask ask = {.topic = topic, .group = group};
    *backlog = 0;
    int rc = gw_kafka_group_backlogs(cfg, &ask, 1, timeout_ms, err);
    if (rc != 0)
        return rc;
    *backlog = ask.backlog;
    if (ask.failed) {
        *err = ask.err;
        return ask.err.code != 0 ? ask.err.code : GW_EUNAVAIL;
    }
    return 0;
}
