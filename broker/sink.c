/*
 * The event sink: consumes worker events from gangway.events and applies
 * them to PostgreSQL in batches through gw_apply_events(), which is
 * idempotent on (run, attempt, seq) and ignores stale attempts. Offsets are
 * committed only after a batch is applied, so a crash re-applies (harmlessly)
 * rather than loses. Unparseable or malformed messages go to the dead-letter
 * topic with the reason; the sink moves on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "gw/crypto.h"
#include "gw/log.h"

#define MAX_BATCH 500
#define RETRY_MS  500

struct job {
    struct job *next;
    size_t n;
    char *events; /* JSON array text for gw_apply_events */
    struct gw_kafka_msg *msgs[];
};

struct gw_sink {
    struct gw_broker *b;
    struct gw_kafka_consumer *consumer;
    struct job *head, *tail;
    bool busy;
    bool closed;
    bool retry_closed;
    size_t dead_in_flight;
    uv_timer_t retry;
};

/* Frees the sink once closed and nothing in flight refers to it. */
static void maybe_free(struct gw_sink *s)
{
    if (s->closed && s->retry_closed && !s->busy && s->dead_in_flight == 0)
        free(s);
}

static void sink_next(struct gw_sink *s);

static const char *const kinds[] = {"started", "log",       "heartbeat", "succeeded",
                                    "failed",  "timed_out", "cancelled"};

struct dead {
    struct gw_sink *s;
    struct gw_kafka_msg *msg;
};

static void dead_delivered(void *opaque, const struct gw_error *err)
{
    struct dead *d = opaque;
    struct gw_sink *s = d->s;
    if (err != NULL)
        gw_log_error("dead-letter publish failed (message skipped): %s", err->message);
    if (!s->closed)
        gw_kafka_msg_done(s->consumer, d->msg);
    free(d);
    s->dead_in_flight--;
    maybe_free(s);
}

static void dead_letter(struct gw_sink *s, struct gw_kafka_msg *msg, const char *reason)
{
    char topic[256];
    struct dead *d = malloc(sizeof(*d));
    json_t *j = json_pack("{s:s, s:s, s:i, s:I, s:s%}", "reason", reason, "source_topic",
                          msg->topic, "partition", (int)msg->partition, "offset",
                          (json_int_t)msg->offset, "payload", msg->payload, msg->len);
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    s->b->metrics.events_deadlettered++;
    gw_log_warn("dead-lettering %s[%d]@%lld: %s", msg->topic, (int)msg->partition,
                (long long)msg->offset, reason);
    if (d == NULL || body == NULL) {
        free(d);
        free(body);
        gw_kafka_msg_done(s->consumer, msg);
        return;
    }
    d->s = s;
    d->msg = msg;
    gw_broker_topic(s->b, "gangway.deadletter", topic, sizeof(topic));
    if (gw_kafka_produce(s->b->producer, topic, msg->key, msg->key_len, body, strlen(body),
                         dead_delivered, d, NULL) < 0) {
        free(d);
        gw_kafka_msg_done(s->consumer, msg);
    } else {
        s->dead_in_flight++;
    }
    free(body);
}

/* Turns one CloudEvent into the element gw_apply_events expects, or NULL
 * with `reason` set when the message is poison. */
static json_t *parse_event(const struct gw_kafka_msg *msg, const char **reason)
{
    json_error_t jerr;
    json_t *ev = json_loadb(msg->payload, msg->len, 0, &jerr);
    json_t *out = NULL;
    const char *type, *kind = NULL;
    json_t *data;

    if (ev == NULL) {
        *reason = "not JSON";
        return NULL;
    }
    type = json_string_value(json_object_get(ev, "type"));
    if (!json_is_string(json_object_get(ev, "specversion")) || type == NULL) {
        *reason = "not a CloudEvent (specversion, type)";
        goto out;
    }
    if (strncmp(type, "dev.gangway.run.", 16) == 0)
        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
            if (strcmp(type + 16, kinds[i]) == 0)
                kind = kinds[i];
    if (kind == NULL) {
        *reason = "unknown event type";
        goto out;
    }
    data = json_object_get(ev, "data");
    const char *run = json_string_value(json_object_get(data, "run_id"));
    json_t *attempt = json_object_get(data, "attempt");
    json_t *seq = json_object_get(data, "seq");
    if (!gw_uuid_valid(run) || !json_is_integer(attempt) || json_integer_value(attempt) < 1 ||
        json_integer_value(attempt) > 1000000 || !json_is_integer(seq) ||
        json_integer_value(seq) < 1 || json_integer_value(seq) > 1000000000) {
        *reason = "data needs run_id (uuid), attempt and seq (positive integers)";
        goto out;
    }
    out = json_pack("{s:s, s:O, s:O, s:s, s:O?, s:O?, s:O?, s:O?}", "run_id", run, "attempt",
                    attempt, "seq", seq, "kind", kind, "worker_id",
                    json_object_get(data, "worker_id"), "stream", json_object_get(data, "stream"),
                    "line", json_object_get(data, "line"), "data", data);
    if (strcmp(kind, "log") == 0 && !json_is_string(json_object_get(data, "line"))) {
        json_decref(out);
        out = NULL;
        *reason = "run.log needs a string line";
    }
out:
    json_decref(ev);
    return out;
}

static void job_free(struct job *j)
{
    free(j->events);
    free(j);
}

static struct job *job_create(struct gw_kafka_msg **msgs, size_t n, json_t *events)
{
    struct job *j = calloc(1, sizeof(*j) + n * sizeof(j->msgs[0]));
    if (j == NULL)
        return NULL;
    j->n = n;
    memcpy(j->msgs, msgs, n * sizeof(msgs[0]));
    j->events = json_dumps(events, JSON_COMPACT);
    return j;
}

static void enqueue(struct gw_sink *s, struct job *j)
{
    if (s->tail != NULL)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
}

static void on_batch(void *arg, struct gw_kafka_msg **msgs, size_t n)
{
    struct gw_sink *s = arg;
    struct gw_kafka_msg *good[MAX_BATCH];
    json_t *events = json_array();
    size_t ngood = 0;

    for (size_t i = 0; i < n; i++) {
        const char *reason = NULL;
        json_t *e;
        s->b->metrics.events_received++;
        e = parse_event(msgs[i], &reason);
        if (e == NULL) {
            dead_letter(s, msgs[i], reason);
            continue;
        }
        json_array_append_new(events, e);
        good[ngood++] = msgs[i];
        if (ngood == MAX_BATCH || i + 1 == n) {
            struct job *j = job_create(good, ngood, events);
            if (j != NULL)
                enqueue(s, j);
            json_array_clear(events);
            ngood = 0;
        }
    }
    if (ngood > 0) {
        struct job *j = job_create(good, ngood, events);
        if (j != NULL)
            enqueue(s, j);
    }
    json_decref(events);
    sink_next(s);
}

/* A batch SQL failure that is not transient: apply the events one by one so
 * only the culprit is dead-lettered. */
static void split(struct gw_sink *s, struct job *j, const char *why)
{
    if (j->n == 1) {
        dead_letter(s, j->msgs[0], why);
        job_free(j);
        return;
    }
    json_t *all = json_loads(j->events, 0, NULL);
    struct job *first = NULL, *last = NULL;
    for (size_t i = 0; i < j->n; i++) {
        json_t *one = json_array();
        json_array_append(one, json_array_get(all, i));
        struct job *k = job_create(&j->msgs[i], 1, one);
        json_decref(one);
        if (k == NULL)
            continue;
        if (last != NULL)
            last->next = k;
        else
            first = k;
        last = k;
    }
    json_decref(all);
    if (last != NULL) {
        /* Run the singles before anything that arrived later. */
        last->next = s->head;
        s->head = first;
        if (s->tail == NULL)
            s->tail = last;
    }
    job_free(j);
}

static void retry_fire(uv_timer_t *t)
{
    sink_next(t->data);
}

static void applied(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_sink *s = arg;
    struct job *j = s->head;

    s->busy = false;
    if (s->closed) {
        maybe_free(s);
        return;
    }
    if (err != NULL) {
        if (err->retriable || err->code == GW_EUNAVAIL || err->code == GW_ELIMIT) {
            gw_log_warn("events: apply failed, retrying: %s", err->message);
            uv_timer_start(&s->retry, retry_fire, RETRY_MS, 0);
            return;
        }
        s->head = j->next;
        if (s->head == NULL)
            s->tail = NULL;
        gw_log_warn("events: batch of %zu rejected, applying one by one: %s", j->n, err->message);
        split(s, j, err->message);
        sink_next(s);
        return;
    }
    s->b->metrics.events_applied += (unsigned long long)atoll(PQgetvalue(res, 0, 0));
    s->head = j->next;
    if (s->head == NULL)
        s->tail = NULL;
    for (size_t i = 0; i < j->n; i++)
        gw_kafka_msg_done(s->consumer, j->msgs[i]);
    job_free(j);
    sink_next(s);
}

static void sink_next(struct gw_sink *s)
{
    if (s->busy || s->closed || s->head == NULL)
        return;
    const char *params[] = {s->head->events};
    s->busy = true;
    if (gw_pg_query(s->b->pg, "apply_events", "SELECT gw_apply_events($1::jsonb)", 1, params,
                    applied, s) < 0) {
        s->busy = false;
        uv_timer_start(&s->retry, retry_fire, RETRY_MS, 0);
    }
}

struct gw_sink *gw_sink_create(struct gw_broker *b, struct gw_error *err)
{
    struct gw_sink *s = calloc(1, sizeof(*s));
    char topic[256], group[256];
    const char *topics[] = {topic, NULL};

    if (s == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    s->b = b;
    uv_timer_init(b->loop, &s->retry);
    s->retry.data = s;
    gw_broker_topic(b, "gangway.events", topic, sizeof(topic));
    gw_broker_topic(b, "gangway-broker-events", group, sizeof(group));
    struct gw_kafka_config kc = {.brokers = b->opts.kafka_brokers, .extra = b->opts.kafka_extra};
    struct gw_kafka_consumer_options co = {.group_id = group,
                                           .topics = topics,
                                           .max_batch = MAX_BATCH,
                                           .max_in_flight = 4 * MAX_BATCH};
    s->consumer = gw_kafka_consumer_create(b->loop, &kc, &co, on_batch, s, err);
    if (s->consumer == NULL) {
        uv_close((uv_handle_t *)&s->retry, (uv_close_cb)free);
        return NULL;
    }
    return s;
}

static void retry_closed(uv_handle_t *h)
{
    struct gw_sink *s = h->data;
    s->retry_closed = true;
    maybe_free(s);
}

void gw_sink_destroy(struct gw_sink *s)
{
    if (s == NULL)
        return;
    s->closed = true;
    /* Messages not applied are simply not committed: redelivered later. */
    while (s->head != NULL) {
        struct job *j = s->head;
        s->head = j->next;
        job_free(j);
    }
    s->tail = NULL;
    gw_kafka_consumer_destroy(s->consumer);
    s->consumer = NULL;
    uv_timer_stop(&s->retry);
    uv_close((uv_handle_t *)&s->retry, retry_closed);
}
