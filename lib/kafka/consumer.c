/*
 * High-level KafkaConsumer on a libuv loop with at-least-once delivery of
 * batches to the application.
 *
 * Offsets: auto-commit is on but auto offset store is off. Each assigned
 * partition has a tracker: a FIFO of the messages polled from it in offset
 * order. gw_kafka_msg_done() marks a message done and pops the done prefix of
 * its FIFO; only then is offset+1 of the last popped message stored, so the
 * committed offset never passes a message that is not finished.
 *
 * Flow control: messages are drained from librdkafka into a local backlog
 * and handed out while fewer than max_in_flight are out (a lent message,
 * gw_kafka_msg_lend, no longer counts, up to max_in_flight of them). Only
 * when the backlog reaches max_backlog are the assigned partitions paused
 * (librdkafka then stops fetching and resumes from the application's
 * position), and they are resumed when it is down to half, not empty: the
 * queue keeps being polled meanwhile, so rebalances are served and
 * max.poll.interval.ms never expires. The backlog is uncommitted like
 * anything not done, so holding it costs memory, never delivery.
 *
 * Why not pause as soon as every slot is taken: a resumed partition starts
 * fetching again only after a delay (a new fetch from the application's
 * position; here ~0.5-1 s with librdkafka 2.0.2 and Kafka 3.9), and when
 * resuming waits for an empty backlog that delay is paid by every batch.
 * Measured (bench/run-core, GW_BENCH_STALL_S=2, 150 runs/s, worker
 * --concurrency 16): a 2 s stall of the worker left a queue standing for the
 * whole phase, accept->start p50 650-870 ms, while the worker could run
 * three times that rate. Resuming with half the bound still to work
 * through hides the delay (bench/README.md, decision 0074), as long as
 * that half lasts longer than the delay: with a bound of 1,024 it did not
 * at ~2,000 runs/s (a burn-down ran dry ~0.3 s in every second), hence the
 * default of 8,192.
 */
#include <stdlib.h>
#include <string.h>

#include "gw/list.h"
#include "gw/log.h"
#include "kafka_internal.h"

/* Safety net: poll at least this often even without a wake-up (rebalances
 * and max.poll.interval.ms need regular polls). */
#define POLL_TICK_MS 200

struct tracker;

struct kmsg {
    struct gw_kafka_msg pub;
    struct tracker *tp;      /* NULL once its partition was revoked */
    struct kmsg *tp_next;    /* tracker FIFO */
    struct kmsg *bl_next;    /* backlog FIFO (not handed out yet) */
    struct gw_list all_link; /* in c->all */
    bool done;
    bool handed_out;
    bool lent; /* gw_kafka_msg_lend: out, but not counted in in_flight */
};

struct tracker {
    char *topic;
    int32_t partition;
    struct kmsg *head, *tail;
    struct tracker *next;
    /* A message that could not be kept (out of memory): its offset, the
     * partition sought back to it, and every later message skipped until it
     * comes again (take). -1: none. */
    int64_t hole;
    uint64_t hole_seek_ms; /* uv_now of the last seek back */
    int hole_seeks;
};

struct gw_kafka_consumer {
    uv_loop_t *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    struct gw__kafka_waker waker;
    uv_timer_t timer;
    gw_kafka_batch_cb cb;
    void *arg;
    size_t max_batch;
    size_t max_in_flight;
    size_t max_backlog; /* pause at this backlog, resume at half */
    struct tracker *trackers;
    struct kmsg *bl_head, *bl_tail;
    size_t backlog;
    size_t in_flight;   /* handed out, not done, not lent */
    size_t lent;        /* handed out, not done, lent */
    struct gw_list all; /* every message not freed yet, newest first */
    struct kmsg **batch;
    bool paused;
    bool delivering;
    bool closing;
    bool left; /* gw_kafka_consumer_leave(): unsubscribed, delivers nothing */
    /* A polled message could not be kept and its partition could not be
     * sought back to it (take): no offset is stored any more, for any
     * partition, so the commit never passes it. */
    bool frozen;
    int64_t test_oom_offset; /* GW_TEST_KAFKA_OOM_OFFSET, or -1 */
    int open_handles;
    /* Our copy of the assignment, kept by rebalance_cb, so health checks
     * never ask librdkafka's group thread (which would block). */
    rd_kafka_topic_partition_list_t *assignment;
    uint64_t assigned_since_ms;
};

static void kmsg_free(struct gw_kafka_consumer *c, struct kmsg *k)
{
    gw_list_remove(&k->all_link);
    free((void *)k->pub.topic);
    free((void *)k->pub.key);
    free((void *)k->pub.payload);
    free(k);
}

static struct tracker *tracker_find(struct gw_kafka_consumer *c, const char *topic,
                                    int32_t partition, bool create)
{
    struct tracker *t;
    for (t = c->trackers; t != NULL; t = t->next)
        if (t->partition == partition && strcmp(t->topic, topic) == 0)
            return t;
    if (!create)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->topic = strdup(topic)) == NULL) {
        free(t);
        return NULL;
    }
    t->partition = partition;
    t->hole = -1;
    t->next = c->trackers;
    c->trackers = t;
    return t;
}

/* Forgets a revoked partition: its backlog is dropped (it will be fetched by
 * the next owner), done messages are freed, messages still out are orphaned
 * so that their later gw_kafka_msg_done() stores nothing. */
static void tracker_forget(struct gw_kafka_consumer *c, struct tracker *t)
{
    struct tracker **pp;
    struct kmsg **bp, *k, *next;
    for (bp = &c->bl_head, c->bl_tail = NULL; *bp != NULL;) {
        if ((*bp)->tp == t) {
            *bp = (*bp)->bl_next;
            c->backlog--;
        } else {
            c->bl_tail = *bp;
            bp = &(*bp)->bl_next;
        }
    }
    for (k = t->head; k != NULL; k = next) {
        next = k->tp_next;
        k->tp = NULL;
        if (!k->handed_out || k->done)
            kmsg_free(c, k);
    }
    for (pp = &c->trackers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    free(t->topic);
    free(t);
}

/* Applies the application pause to `parts` (or lifts it). librdkafka keeps an
 * application pause on a partition across revocation and re-assignment, so
 * the pause state of every partition we are handed is set explicitly at
 * assignment (rebalance_cb), and a flip here covers our own copy of the
 * assignment, never librdkafka's (which would ask its group thread). */
static void apply_pause(struct gw_kafka_consumer *c, rd_kafka_topic_partition_list_t *parts,
                        bool pause)
{
    rd_kafka_resp_err_t rc;
    if (parts == NULL || parts->cnt == 0)
        return;
    rc = pause ? rd_kafka_pause_partitions(c->rk, parts) : rd_kafka_resume_partitions(c->rk, parts);
    gw_log_debug("kafka consumer: %s %d partition(s)", pause ? "paused" : "resumed", parts->cnt);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        gw_log_warn("kafka consumer: %s %d partition(s): %s", pause ? "pausing" : "resuming",
                    parts->cnt, rd_kafka_err2str(rc));
}

static void set_paused(struct gw_kafka_consumer *c, bool pause)
{
    if (pause == c->paused)
        return;
    c->paused = pause;
    apply_pause(c, c->assignment, pause);
}

/* How many more messages may be handed out now. */
static size_t room_left(const struct gw_kafka_consumer *c)
{
    return c->in_flight < c->max_in_flight ? c->max_in_flight - c->in_flight : 0;
}

static void deliver(struct gw_kafka_consumer *c)
{
    if (c->delivering || c->closing || c->left)
        return;
    c->delivering = true;
    while (c->bl_head != NULL && room_left(c) > 0 && !c->closing) {
        size_t room = room_left(c), n = 0;
        if (room > c->max_batch)
            room = c->max_batch;
        while (n < room && c->bl_head != NULL) {
            struct kmsg *k = c->bl_head;
            c->bl_head = k->bl_next;
            if (c->bl_head == NULL)
                c->bl_tail = NULL;
            c->backlog--;
            k->handed_out = true;
            c->batch[n++] = k;
        }
        c->in_flight += n;
        c->cb(c->arg, (struct gw_kafka_msg **)c->batch, n);
    }
    c->delivering = false;
    if (!c->closing)
        set_paused(c, c->paused ? c->backlog > c->max_backlog / 2 : c->backlog >= c->max_backlog);
}

/* Fetches the partition again from `t->hole` (asynchronously); false when
 * librdkafka refused at once. */
static bool seek_back(struct gw_kafka_consumer *c, struct tracker *t)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, t->topic, t->partition)->offset = t->hole;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    t->hole_seek_ms = uv_now(c->loop);
    t->hole_seeks++;
    if (e != NULL) {
        gw_log_error("kafka consumer: seeking %s[%d] back to %lld: %s", t->topic, (int)t->partition,
                     (long long)t->hole, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return false;
    }
    return true;
}

static void take(struct gw_kafka_consumer *c, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    struct tracker *t = tracker_find(c, topic, m->partition, true);
    if (t != NULL && t->hole >= 0) {
        if (m->offset > t->hole && t->hole_seeks < 4) {
            /* Fetched before the seek took effect: it comes again after the
             * hole. Seek again now and then, in case that seek was lost. */
            if (uv_now(c->loop) - t->hole_seek_ms > 1000)
                seek_back(c, t);
            return;
        }
        /* The hole's message, or after four seeks a later one: the hole's
         * offset is gone (retention), and this is where the log goes on. */
        t->hole = -1;
        t->hole_seeks = 0;
    }
    struct kmsg *k = calloc(1, sizeof(*k));
    char *payload = malloc(m->len + 1);
    char *topic_copy = strdup(topic);
    void *key = m->key_len > 0 ? malloc(m->key_len) : NULL;
    if (m->offset == c->test_oom_offset) { /* fault injection: as if malloc failed */
        c->test_oom_offset = -1;
        free(payload);
        payload = NULL;
    }
    if (t == NULL || k == NULL || payload == NULL || topic_copy == NULL ||
        (m->key_len > 0 && key == NULL)) {
        /* The message cannot be kept. Delivering the ones after it would
         * break the partition's order, and storing their offsets would
         * commit past it and lose it. So the partition is sought back to it
         * and the later messages are skipped until it comes again. Without
         * a tracker (or when the seek is refused), nothing is stored any
         * more, for any partition: a restart, or the partitions' next
         * owner, consumes again from the last commit before the hole. */
        gw_log_error("kafka consumer: out of memory, message %s[%d]@%lld not kept: %s", topic,
                     (int)m->partition, (long long)m->offset,
                     t != NULL ? "fetching the partition again from it"
                               : "offsets are no longer committed until a restart");
        if (t != NULL) {
            t->hole = m->offset;
            t->hole_seeks = 0;
            if (!seek_back(c, t) && !c->frozen) {
                gw_log_error("kafka consumer: offsets are no longer committed until a restart");
                c->frozen = true;
            }
        } else {
            c->frozen = true;
        }
        free(k);
        free(payload);
        free(topic_copy);
        free(key);
        return;
    }
    memcpy(payload, m->payload, m->len);
    payload[m->len] = '\0';
    if (key != NULL)
        memcpy(key, m->key, m->key_len);
    k->pub.topic = topic_copy;
    k->pub.partition = m->partition;
    k->pub.offset = m->offset;
    k->pub.key = key;
    k->pub.key_len = m->key_len;
    k->pub.payload = payload;
    k->pub.len = m->len;
    k->tp = t;
    if (t->tail != NULL)
        t->tail->tp_next = k;
    else
        t->head = k;
    t->tail = k;
    if (c->bl_tail != NULL)
        c->bl_tail->bl_next = k;
    else
        c->bl_head = k;
    c->bl_tail = k;
    c->backlog++;
    gw_list_insert(&c->all, &k->all_link);
}

static void drain(struct gw_kafka_consumer *c)
{
    rd_kafka_message_t *m;
    while (!c->closing && (m = rd_kafka_consumer_poll(c->rk, 0)) != NULL) {
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && !c->left)
            take(c, m); /* once left, the partition's next owner reads it */
        else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            gw_log_warn("kafka consumer: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        /* The bound holds within one drain too: librdkafka may hold far more
         * than max_backlog already fetched (queued.min.messages); once
         * paused, it drops those and refetches them from our position. */
        if (!c->paused && c->backlog >= c->max_backlog)
            set_paused(c, true);
    }
    deliver(c);
}

static void on_wake(struct gw__kafka_waker *w)
{
    drain(container_of(w, struct gw_kafka_consumer, waker));
}

static void on_tick(uv_timer_t *t)
{
    drain(container_of(t, struct gw_kafka_consumer, timer));
}

static void assignment_add(struct gw_kafka_consumer *c,
                           const rd_kafka_topic_partition_list_t *parts, bool coop)
{
    if (!coop || c->assignment == NULL) {
        if (c->assignment != NULL)
            rd_kafka_topic_partition_list_destroy(c->assignment);
        c->assignment = rd_kafka_topic_partition_list_copy(parts);
    } else {
        for (int i = 0; i < parts->cnt; i++)
            rd_kafka_topic_partition_list_add(c->assignment, parts->elems[i].topic,
                                              parts->elems[i].partition);
    }
    if (c->assignment->cnt > 0 && c->assigned_since_ms == 0)
        c->assigned_since_ms = uv_now(c->loop) ? uv_now(c->loop) : 1;
}

static void assignment_remove(struct gw_kafka_consumer *c,
                              const rd_kafka_topic_partition_list_t *parts, bool coop)
{
    if (c->assignment == NULL)
        return;
    if (!coop) {
        rd_kafka_topic_partition_list_destroy(c->assignment);
        c->assignment = NULL;
    } else {
        for (int i = 0; i < parts->cnt; i++)
            rd_kafka_topic_partition_list_del(c->assignment, parts->elems[i].topic,
                                              parts->elems[i].partition);
    }
    if (c->assignment == NULL || c->assignment->cnt == 0)
        c->assigned_since_ms = 0;
}

void gw_kafka_consumer_health(const struct gw_kafka_consumer *c,
                              struct gw_kafka_consumer_health *out)
{
    out->partitions = 0;
    out->assigned_since_ms = 0;
    out->lag = 0;
    out->backlog = c != NULL ? c->backlog : 0;
    out->paused = c != NULL && c->paused;
    if (c == NULL || c->assignment == NULL)
        return;
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(c->assignment);
    out->partitions = pos->cnt;
    out->assigned_since_ms = c->assigned_since_ms;
    rd_kafka_position(c->rk, pos);
    for (int i = 0; i < pos->cnt; i++) {
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(c->rk, pos->elems[i].topic, pos->elems[i].partition, &lo,
                                           &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0) {
            out->lag = -1;
            break;
        }
        /* No position yet means nothing fetched: everything up to hi is due. */
        int64_t at = pos->elems[i].offset >= 0 ? pos->elems[i].offset : (lo >= 0 ? lo : 0);
        if (hi > at)
            out->lag += hi - at;
    }
    if (out->lag >= 0)
        out->lag += (int64_t)c->backlog;
    rd_kafka_topic_partition_list_destroy(pos);
}

int gw_kafka_consumer_assignment(const struct gw_kafka_consumer *c, const char **topics,
                                 int32_t *parts, int max)
{
    if (c == NULL || c->assignment == NULL)
        return 0;
    for (int i = 0; i < c->assignment->cnt && i < max; i++) {
        topics[i] = c->assignment->elems[i].topic;
        parts[i] = c->assignment->elems[i].partition;
    }
    return c->assignment->cnt;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t code,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct gw_kafka_consumer *c = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;

    if (code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        gw_log_info("kafka consumer: %d partition(s) assigned", parts->cnt);
        assignment_add(c, parts, coop);
        /* Always explicit, before fetching starts: a partition paused before
         * it was revoked comes back paused otherwise, and nothing would ever
         * fetch it again (issue 10). */
        apply_pause(c, parts, c->paused);
        if (coop)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
    } else {
        gw_log_info("kafka consumer: %d partition(s) revoked", parts->cnt);
        assignment_remove(c, parts, coop);
        for (int i = 0; i < parts->cnt; i++) {
            struct tracker *t =
                tracker_find(c, parts->elems[i].topic, parts->elems[i].partition, false);
            if (t != NULL)
                tracker_forget(c, t);
        }
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
    }
    if (e != NULL) {
        gw_log_error("kafka consumer rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
}

static void error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    gw_log_warn("kafka consumer: %s: %s", rd_kafka_err2name(code), reason);
}

const char *const gw_kafka_shared_group_defaults[] = {
    "partition.assignment.strategy=cooperative-sticky",
    "session.timeout.ms=10000",
    "heartbeat.interval.ms=1000",
    NULL,
};

struct gw_kafka_consumer *gw_kafka_consumer_create(uv_loop_t *loop,
                                                   const struct gw_kafka_config *cfg,
                                                   const struct gw_kafka_consumer_options *opts,
                                                   gw_kafka_batch_cb cb, void *arg,
                                                   struct gw_error *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_topic_partition_list_t *subs;
    rd_kafka_resp_err_t rc;
    size_t ntopics = 0;
    struct gw_kafka_consumer *c;

    if (opts == NULL || opts->group_id == NULL || opts->topics == NULL || opts->topics[0] == NULL ||
        opts->max_batch < 1 || opts->max_in_flight < 1 || cb == NULL) {
        gw_error_set(err, GW_EINVAL, false, "kafka consumer: bad options");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->batch = calloc(opts->max_batch, sizeof(*c->batch))) == NULL) {
        free(c);
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    c->loop = loop;
    gw_list_init(&c->all);
    c->cb = cb;
    c->arg = arg;
    c->max_batch = opts->max_batch;
    c->max_in_flight = opts->max_in_flight;
    {
        const char *oom = getenv("GW_TEST_KAFKA_OOM_OFFSET");
        c->test_oom_offset = oom != NULL && *oom != '\0' ? strtoll(oom, NULL, 10) : -1;
    }
    c->max_backlog = opts->max_backlog > 0        ? opts->max_backlog
                     : opts->max_in_flight > 4096 ? 2 * opts->max_in_flight
                                                  : 8192;

    conf = gw__kafka_conf_build_defaults(cfg, opts->defaults, err);
    if (conf == NULL)
        goto fail_alloc;
    if (gw__kafka_conf_set(conf, "group.id", opts->group_id, err) < 0 ||
        gw__kafka_conf_set(conf, "enable.auto.commit", "true", err) < 0 ||
        gw__kafka_conf_set(conf, "enable.auto.offset.store", "false", err) < 0 ||
        gw__kafka_conf_set(conf, "auto.offset.reset",
                           opts->offset_reset != NULL ? opts->offset_reset : "earliest", err) < 0)
        goto fail_conf;
    if (opts->group_instance_id != NULL &&
        gw__kafka_conf_set(conf, "group.instance.id", opts->group_instance_id, err) < 0)
        goto fail_conf;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (c->rk == NULL) {
        gw_error_set(err, GW_EINVAL, false, "rd_kafka_new: %s", errstr);
        goto fail_conf;
    }
    /* Main queue (errors, rebalances) is served through the consumer queue. */
    rd_kafka_poll_set_consumer(c->rk);
    c->q = rd_kafka_queue_get_consumer(c->rk);
    for (const char *const *t = opts->topics; *t != NULL; t++)
        ntopics++;
    subs = rd_kafka_topic_partition_list_new((int)ntopics);
    for (const char *const *t = opts->topics; *t != NULL; t++)
        rd_kafka_topic_partition_list_add(subs, *t, RD_KAFKA_PARTITION_UA);
    rc = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        gw_error_set(err, GW_EINVAL, false, "kafka subscribe: %s", rd_kafka_err2str(rc));
        goto fail_rk;
    }
    if (gw__kafka_waker_init(&c->waker, loop, c->q, on_wake, err) < 0)
        goto fail_rk;
    c->open_handles = 2;
    uv_timer_init(loop, &c->timer);
    uv_timer_start(&c->timer, on_tick, POLL_TICK_MS, POLL_TICK_MS);
    return c;

fail_rk:
    rd_kafka_queue_destroy(c->q);
    rd_kafka_destroy(c->rk);
    goto fail_alloc;
fail_conf:
    rd_kafka_conf_destroy(conf);
fail_alloc:
    free(c->batch);
    free(c);
    return NULL;
}

void gw_kafka_msg_done(struct gw_kafka_consumer *c, struct gw_kafka_msg *msg)
{
    struct kmsg *k = (struct kmsg *)msg;
    struct tracker *t = k->tp;
    int64_t store = -1;

    if (k->lent)
        c->lent--;
    else
        c->in_flight--;
    k->done = true;
    if (t == NULL) {
        kmsg_free(c, k); /* partition revoked meanwhile: nothing to store */
    } else {
        while (t->head != NULL && t->head->done) {
            struct kmsg *h = t->head;
            t->head = h->tp_next;
            if (t->head == NULL)
                t->tail = NULL;
            store = h->pub.offset + 1;
            kmsg_free(c, h);
        }
        if (store >= 0 && !c->frozen) {
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_resp_err_t rc;
            rd_kafka_topic_partition_list_add(l, t->topic, t->partition)->offset = store;
            rc = rd_kafka_offsets_store(c->rk, l);
            if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
                gw_log_warn("kafka consumer: storing offset %s[%d]@%lld: %s", t->topic,
                            (int)t->partition, (long long)store, rd_kafka_err2str(rc));
            rd_kafka_topic_partition_list_destroy(l);
        }
    }
    deliver(c);
}

void gw_kafka_msg_lend(struct gw_kafka_consumer *c, struct gw_kafka_msg *msg)
{
    struct kmsg *k = (struct kmsg *)msg;
    if (k->lent || k->done || c->lent >= c->max_in_flight)
        return;
    k->lent = true;
    c->lent++;
    c->in_flight--;
    deliver(c);
}

int gw_kafka_consumer_leave(struct gw_kafka_consumer *c, struct gw_error *err)
{
    rd_kafka_resp_err_t rc;
    if (c->left || c->closing)
        return 0;
    c->left = true;
    /* What is done so far stays done for the next owner. Asynchronous: the
     * group thread sends it before the LeaveGroup the unsubscribe queues. */
    rc = rd_kafka_commit(c->rk, NULL, 1);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR && rc != RD_KAFKA_RESP_ERR__NO_OFFSET)
        gw_log_warn("kafka consumer: commit before leaving: %s", rd_kafka_err2str(rc));
    /* The revoke comes back through rebalance_cb on the next poll, which
     * forgets the partitions (orphaning what is still out). */
    rc = rd_kafka_unsubscribe(c->rk);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        gw_error_set(err, GW_EUNAVAIL, true, "kafka unsubscribe: %s", rd_kafka_err2str(rc));
        return -1;
    }
    gw_log_info("kafka consumer: left the group");
    return 0;
}

static void handle_closed(struct gw_kafka_consumer *c)
{
    if (--c->open_handles == 0) {
        if (c->assignment != NULL)
            rd_kafka_topic_partition_list_destroy(c->assignment);
        free(c->batch);
        free(c);
    }
}

static void waker_closed(struct gw__kafka_waker *w)
{
    handle_closed(container_of(w, struct gw_kafka_consumer, waker));
}

static void timer_closed(uv_handle_t *h)
{
    handle_closed(container_of((uv_timer_t *)h, struct gw_kafka_consumer, timer));
}

void gw_kafka_consumer_destroy(struct gw_kafka_consumer *c)
{
    rd_kafka_resp_err_t rc;
    if (c == NULL)
        return;
    c->closing = true;
    uv_timer_stop(&c->timer);
    /* Blocks briefly: serves the final revoke (our rebalance_cb) and commits
     * the stored offsets before leaving the group. Shutdown only. */
    rc = rd_kafka_consumer_close(c->rk);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        gw_log_warn("kafka consumer close: %s", rd_kafka_err2str(rc));
    rd_kafka_queue_destroy(c->q);
    rd_kafka_destroy(c->rk);
    while (c->trackers != NULL)
        tracker_forget(c, c->trackers);
    while (!gw_list_empty(&c->all))
        kmsg_free(c, gw_list_entry(c->all.next, struct kmsg, all_link));
    gw__kafka_waker_close(&c->waker, waker_closed);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}
