/*
 * The event sink: consumes worker events from gangway.events and applies
 * them to PostgreSQL in batches through gw_apply_events(), which is
 * idempotent on (run, attempt, seq) and ignores stale attempts. Offsets are
 * committed only after a batch is applied, so a crash re-applies (harmlessly)
 * rather than loses. Unparseable or malformed messages go to the dead-letter
 * topic with the reason; the sink moves on.
 *
 * Events are keyed by run id, so all events of a run share a partition.
 * Each partition has a queue of jobs, applied in order with at most one of
 * its jobs in flight, which keeps each run's events in order. One
 * gw_apply_events call carries the next jobs of every idle partition (group
 * commit across partitions), and at most APPLY_CALLS calls are in flight:
 * a call a partition took alone cost as much fixed work (a transaction, a
 * commit, the function's statements) as one carrying many partitions, and
 * with a call per partition at 1,000 runs/s each carried 8 events on
 * average (bench/README.md, "Issue 15, part 10").
 *
 * Freshness probes (issue 10). The reaper may judge heartbeats only while a
 * stale heartbeat_at really means a silent worker, not "Kafka is down" or
 * "PostgreSQL was down and the events are not applied yet". Cached offsets
 * cannot tell: during an outage they look current. So every PROBE_MS the sink
 * produces a probe into each partition it owns and notes, when the probe
 * reaches the head of that partition's queue (everything before it applied),
 * the time it was sent. The sink is fresh when every owned partition has an
 * own probe back younger than half the heartbeat timeout, and caught up when
 * it has been fresh without a break for a whole heartbeat timeout, which
 * also gives workers' buffered heartbeats time to arrive after an outage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "gw/cloudevent.h"
#include "gw/crypto.h"
#include "gw/log.h"
#include "gw/mem.h"
#include "stream.h"

#define MAX_BATCH 500
/* Two: while one call waits for its commit's WAL flush, the next is being
 * executed; more would only split the same events into smaller calls. */
#define APPLY_CALLS 2
#define RETRY_MS    500
/* After an error that says the database does not match this broker. */
#define CONFIG_RETRY_MS 2000
#define MAX_PARTITIONS  256
#define PROBE_MS        500
#define PROBE_TYPE      "dev.gangway.sink.probe"

struct pqueue;

struct job {
    struct job *next;
    struct pqueue *pq;
    size_t n;
    bool solo;         /* one event of a rejected batch (split): never merged */
    bool alone;        /* failed in a call with other partitions' jobs: sent by itself */
    char *events;      /* JSON array text for gw_apply_events; NULL for a probe */
    uint64_t probe_ms; /* a probe of ours: when it was sent (uv_now); 0 = foreign */
    struct gw_kafka_msg *msgs[];
};

/* The jobs of one partition, applied one at a time, in order. */
struct pqueue {
    struct gw_sink *sink;
    char topic[256];
    int32_t partition;
    struct job *head, *tail;
    bool busy;
    uint64_t probe_ms;  /* send time of the newest own probe that came back */
    uint64_t seen_tick; /* the last probe tick that found it assigned here */
};

/* One gw_apply_events call: the jobs it carries, at most one per partition. */
struct call {
    struct gw_sink *s;
    char *events; /* the jobs' events as one array; NULL: jobs[0]'s own text */
    bool lone;    /* one solo or alone job (gather) */
    size_t njobs;
    struct job *jobs[];
};

struct gw_sink {
    struct gw_broker *b;
    struct gw_kafka_consumer *consumer;
    struct pqueue *queues[MAX_PARTITIONS];
    size_t nqueues;
    size_t next_queue; /* where the next call starts looking: each partition in turn first */
    size_t busy;       /* calls in flight */
    size_t lone_busy;  /* of which with a solo or alone job: at most one */
    size_t dead_in_flight;
    bool closed;
    bool backing_off; /* the retry timer runs: pump() sends nothing until it fires */
    int handles_open; /* the timers (retry, probe) not closed yet */
    uv_timer_t retry;
    uv_timer_t probe;
    uint64_t probe_seq;
    uint64_t tick;
    uint64_t fresh_since_ms;     /* 0 = not fresh at the last probe tick */
    uint64_t horizon_ms;         /* while fresh: send time of the least recent own probe back */
    char nonce[GW_UUID_LEN + 1]; /* this process: probes of an earlier life are foreign */
    char instance[300];          /* this replica's static member id, reported to PostgreSQL */
};

static void pump(struct gw_sink *s);

static const char *const kinds[] = {"started", "log",       "heartbeat", "succeeded",
                                    "failed",  "timed_out", "cancelled"};

/* Frees the sink once closed and nothing in flight refers to it. */
static void maybe_free(struct gw_sink *s)
{
    if (!s->closed || s->handles_open > 0 || s->busy > 0 || s->dead_in_flight > 0)
        return;
    for (size_t i = 0; i < s->nqueues; i++)
        free(s->queues[i]);
    free(s);
}

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
/* A probe: sets *probe_ms to its send time when it is this process's own,
 * 0 when another replica (or an earlier life of this one) sent it. */
static void parse_probe(const struct gw_sink *s, json_t *ev, uint64_t *probe_ms)
{
    json_t *data = json_object_get(ev, "data");
    const char *nonce = json_string_value(json_object_get(data, "nonce"));
    json_t *sent = json_object_get(data, "sent_ms");
    *probe_ms = 0;
    if (nonce != NULL && strcmp(nonce, s->nonce) == 0 && json_is_integer(sent) &&
        json_integer_value(sent) > 0)
        *probe_ms = (uint64_t)json_integer_value(sent);
}

static json_t *parse_event(const struct gw_sink *s, const struct gw_kafka_msg *msg,
                           const char **reason, bool *probe, uint64_t *probe_ms)
{
    json_t *out = NULL;
    const char *type, *kind = NULL;
    json_t *data;
    int code;
    json_t *ev = gw_cloudevent_parse(msg->payload, msg->len, &type, &code, NULL, 0);

    if (ev == NULL) {
        *reason = code == GW_EPARSE ? "not JSON" : "not a CloudEvent (specversion, type)";
        return NULL;
    }
    if (strcmp(type, PROBE_TYPE) == 0) {
        *probe = true;
        parse_probe(s, ev, probe_ms);
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
    if (strcmp(kind, "log") == 0 && !json_is_string(json_object_get(data, "line"))) {
        *reason = "run.log needs a string line";
        goto out;
    }
    out = json_pack("{s:s, s:O, s:O, s:s, s:O?, s:O?, s:O?, s:O?}", "run_id", run, "attempt",
                    attempt, "seq", seq, "kind", kind, "worker_id",
                    json_object_get(data, "worker_id"), "stream", json_object_get(data, "stream"),
                    "line", json_object_get(data, "line"), "data", data);
out:
    json_decref(ev);
    return out;
}

static void job_free(struct job *j)
{
    free(j->events);
    free(j);
}

static struct job *job_create(struct pqueue *q, struct gw_kafka_msg **msgs, size_t n,
                              json_t *events)
{
    struct job *j = calloc(1, sizeof(*j) + n * sizeof(j->msgs[0]));
    if (j == NULL)
        return NULL;
    j->pq = q;
    j->n = n;
    memcpy(j->msgs, msgs, n * sizeof(msgs[0]));
    j->events = json_dumps(events, JSON_COMPACT);
    if (j->events == NULL) {
        free(j);
        return NULL;
    }
    return j;
}

static struct pqueue *queue_for(struct gw_sink *s, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < s->nqueues; i++)
        if (s->queues[i]->partition == partition && strcmp(s->queues[i]->topic, topic) == 0)
            return s->queues[i];
    if (s->nqueues == MAX_PARTITIONS)
        return s->queues[(size_t)partition % MAX_PARTITIONS]; /* shares; order still holds */
    struct pqueue *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->sink = s;
    q->partition = partition;
    snprintf(q->topic, sizeof(q->topic), "%s", topic);
    s->queues[s->nqueues++] = q;
    return q;
}

static void enqueue(struct pqueue *q, struct job *j)
{
    if (q->tail != NULL)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

/* Queues the events gathered so far as one job and starts a new batch. */
static void flush_batch(struct pqueue *q, struct gw_kafka_msg **good, size_t *ngood, json_t *events)
{
    if (*ngood == 0)
        return;
    struct job *j = q ? job_create(q, good, *ngood, events) : NULL;
    if (j != NULL)
        enqueue(q, j);
    json_array_clear(events);
    *ngood = 0;
}

/* Appends the messages of one partition (already in offset order) as jobs
 * of at most MAX_BATCH events. */
static void take_partition(struct gw_sink *s, struct gw_kafka_msg **msgs, size_t n)
{
    struct pqueue *q = queue_for(s, msgs[0]->topic, msgs[0]->partition);
    struct gw_kafka_msg *good[MAX_BATCH];
    json_t *events = json_array();
    size_t ngood = 0;

    for (size_t i = 0; i < n; i++) {
        const char *reason = NULL;
        bool probe = false;
        uint64_t probe_ms = 0;
        json_t *e = parse_event(s, msgs[i], &reason, &probe, &probe_ms);
        if (probe) {
            /* In order: the events before it first, then the marker. */
            flush_batch(q, good, &ngood, events);
            struct job *m = q ? calloc(1, sizeof(*m) + sizeof(m->msgs[0])) : NULL;
            if (m == NULL) {
                gw_kafka_msg_done(s->consumer, msgs[i]);
                continue;
            }
            m->pq = q;
            m->n = 1;
            m->msgs[0] = msgs[i];
            m->probe_ms = probe_ms;
            enqueue(q, m);
            continue;
        }
        s->b->metrics.events_received++;
        if (e == NULL) {
            dead_letter(s, msgs[i], reason);
            continue;
        }
        json_array_append_new(events, e);
        good[ngood++] = msgs[i];
        if (ngood == MAX_BATCH)
            flush_batch(q, good, &ngood, events);
    }
    flush_batch(q, good, &ngood, events);
    json_decref(events);
    pump(s);
}

static void on_batch(void *arg, struct gw_kafka_msg **msgs, size_t n)
{
    struct gw_sink *s = arg;
    bool *taken = calloc(n, sizeof(*taken));
    struct gw_kafka_msg **group = calloc(n, sizeof(*group));

    if (taken == NULL || group == NULL) {
        /* Out of memory: leave the messages undone; they come back later. */
        free(taken);
        free(group);
        return;
    }
    /* Group by partition, keeping the consumer's order within each. */
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        if (taken[i])
            continue;
        for (size_t j = i; j < n; j++) {
            if (!taken[j] && msgs[j]->partition == msgs[i]->partition &&
                strcmp(msgs[j]->topic, msgs[i]->topic) == 0) {
                taken[j] = true;
                group[k++] = msgs[j];
            }
        }
        take_partition(s, group, k);
    }
    free(taken);
    free(group);
}

/* A batch SQL failure that is not transient: apply the events one by one so
 * only the culprit is dead-lettered. */
static void split(struct pqueue *q, struct job *j, const char *why)
{
    struct gw_sink *s = q->sink;
    if (j->n == 1) {
        dead_letter(s, j->msgs[0], why);
        job_free(j);
        return;
    }
    json_t *all = json_loads(j->events, 0, NULL);
    if (all == NULL || json_array_size(all) != j->n) { /* never: our own text */
        for (size_t i = 0; i < j->n; i++)
            dead_letter(s, j->msgs[i], why);
        json_decref(all);
        job_free(j);
        return;
    }
    struct job *first = NULL, *last = NULL;
    for (size_t i = 0; i < j->n; i++) {
        json_t *one = json_array();
        json_array_append(one, json_array_get(all, i));
        struct job *k = job_create(q, &j->msgs[i], 1, one);
        json_decref(one);
        if (k == NULL)
            continue;
        k->solo = true; /* applied alone, so only the culprit is dead-lettered */
        if (last != NULL)
            last->next = k;
        else
            first = k;
        last = k;
    }
    json_decref(all);
    if (last != NULL) {
        /* Run the singles before anything that arrived later. */
        last->next = q->head;
        q->head = first;
        if (q->tail == NULL)
            q->tail = last;
    }
    job_free(j);
}

static void retry_fire(uv_timer_t *t)
{
    struct gw_sink *s = t->data;
    s->backing_off = false;
    pump(s);
}

/* No call for RETRY_MS: PostgreSQL refused for now (or there was no memory).
 * Whatever arrives meanwhile waits too; without this, each consumer batch and
 * probe tick sent a call straight into the same refusal, and a server that
 * answers at once (read-only during a switchover, a full pool queue) was
 * asked as fast as events came. */
static void back_off_ms(struct gw_sink *s, uint64_t ms)
{
    if (s->backing_off && uv_timer_get_due_in(&s->retry) >= ms)
        return; /* a longer wait is running (the other call's): keep it */
    s->backing_off = true;
    uv_timer_start(&s->retry, retry_fire, ms, 0);
}

static void back_off(struct gw_sink *s)
{
    back_off_ms(s, RETRY_MS);
}

/* PostgreSQL refused the statement itself, whatever the events: SQLSTATE
 * class 42 (an undefined function, table or column, a privilege missing)
 * for a call whose text is fixed, as is the only dynamic SQL under it
 * (gw_finish_run's call of gw_wf_advance; decision 0081). The schema
 * or the role does not match this broker (migrations not applied, a grant
 * revoked, an older schema restored), a fault of the deployment: every
 * event would fail, so splitting the batch would dead-letter them all and
 * leave their runs to the reaper. The sink waits instead, loudly, and goes
 * on once the database is fixed; the lag shows meanwhile. */
static bool config_fault(const struct gw_error *err)
{
    return err->sqlstate[0] == '4' && err->sqlstate[1] == '2';
}

/* Back at the front of its partition's queue: applied before anything that
 * arrived after it. */
static void push_front(struct job *j)
{
    struct pqueue *q = j->pq;
    j->next = q->head;
    q->head = j;
    if (q->tail == NULL)
        q->tail = j;
}

static void call_free(struct call *c, bool with_jobs)
{
    if (with_jobs)
        for (size_t i = 0; i < c->njobs; i++)
            job_free(c->jobs[i]);
    free(c->events);
    free(c);
}

/* The gw_apply_events argument of `c`. */
static const char *call_text(const struct call *c)
{
    return c->events != NULL ? c->events : c->jobs[0]->events;
}

/* A call not sent after all: its jobs back at the front of their (idle
 * again) queues, the call freed. */
static void call_give_back(struct call *c)
{
    for (size_t i = 0; i < c->njobs; i++) {
        c->jobs[i]->pq->busy = false;
        push_front(c->jobs[i]);
    }
    call_free(c, false);
}

static void applied(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct call *c = arg;
    struct gw_sink *s = c->s;

    s->busy--;
    s->lone_busy -= c->lone;
    for (size_t i = 0; i < c->njobs; i++)
        c->jobs[i]->pq->busy = false;
    if (s->closed) {
        call_free(c, true);
        maybe_free(s);
        return;
    }
    if (err != NULL) {
        if (err->retriable || err->code == GW_EUNAVAIL || err->code == GW_ELIMIT ||
            err->code == GW_ETIMEDOUT) {
            gw_log_warn("events: apply failed, retrying: %s", err->message);
            s->b->metrics.events_apply_retried++;
            call_give_back(c);
            back_off(s);
            return;
        }
        if (config_fault(err)) {
            gw_log_error("events: PostgreSQL refuses the apply call itself, so the database does "
                         "not match this broker (migrations not applied? rights revoked?): %s; "
                         "nothing is dead-lettered, retrying in %d s",
                         err->message, CONFIG_RETRY_MS / 1000);
            s->b->metrics.events_apply_mismatch++;
            call_give_back(c);
            back_off_ms(s, CONFIG_RETRY_MS);
            return;
        }
        if (c->njobs > 1) {
            /* Whose events failed is not known: each partition's job goes
             * again by itself, and the one that fails then is split. */
            gw_log_warn("events: a batch from %zu partitions rejected, applying each "
                        "partition's alone: %s",
                        c->njobs, err->message);
            for (size_t i = 0; i < c->njobs; i++) {
                c->jobs[i]->alone = true;
                push_front(c->jobs[i]);
            }
        } else {
            gw_log_warn("events: batch of %zu rejected, applying one by one: %s", c->jobs[0]->n,
                        err->message);
            split(c->jobs[0]->pq, c->jobs[0], err->message);
        }
        call_free(c, false);
        pump(s);
        return;
    }
    s->b->metrics.events_applied += (unsigned long long)atoll(PQgetvalue(res, 0, 0));
    s->b->metrics.events_apply_calls++;
    for (size_t i = 0; i < c->njobs; i++)
        for (size_t k = 0; k < c->jobs[i]->n; k++)
            gw_kafka_msg_done(s->consumer, c->jobs[i]->msgs[k]);
    gw_stream_events_applied(s->b->streams, call_text(c)); /* wakes live followers */
    call_free(c, true);
    pump(s);
}

/* Appends the elements of a JSON array text "[e1,e2,...]" to the array being
 * written at `out` (which starts with '['); returns the new end. */
static char *append_elements(char *out, const char *events)
{
    size_t l = strlen(events);
    if (l > 2) {
        if (out[-1] != '[')
            *out++ = ',';
        memcpy(out, events + 1, l - 2);
        out += l - 2;
    }
    return out;
}

/* Group commit across arrivals: the events jobs queued behind `head` (not
 * past a probe, up to MAX_BATCH events) become one job with it, so one
 * gw_apply_events call carries everything that arrived while the partition's
 * previous call was in flight. Without it, a partition that once fell into
 * small jobs (a few events per consumer callback) stayed there: each call
 * took one small job, and the burn-down ran at two thirds of its rate
 * (bench/README.md, "Issue 15, part 5"). Returns the job to send, which
 * replaces head and the jobs merged into it in the queue; head itself when
 * there is nothing to merge or no memory to merge. */
static struct job *merge_queued(struct pqueue *q, struct job *head)
{
    if (head->solo || head->alone)
        return head;
    size_t n = head->n, len = strlen(head->events), njobs = 1;
    struct job *k = head->next;
    while (k != NULL && k->events != NULL && !k->solo && !k->alone && n + k->n <= MAX_BATCH) {
        n += k->n;
        len += strlen(k->events);
        njobs++;
        k = k->next;
    }
    if (njobs == 1)
        return head;
    struct job *m = calloc(1, sizeof(*m) + n * sizeof(m->msgs[0]));
    char *text = malloc(len + 1);
    if (m == NULL || text == NULL) {
        free(m);
        free(text);
        return head;
    }
    m->pq = q;
    m->events = text;
    *text++ = '[';
    for (struct job *x = head; x != k;) {
        struct job *next = x->next;
        text = append_elements(text, x->events);
        memcpy(m->msgs + m->n, x->msgs, x->n * sizeof(x->msgs[0]));
        m->n += x->n;
        job_free(x);
        x = next;
    }
    *text++ = ']';
    *text = '\0';
    m->next = k;
    q->head = m;
    if (k == NULL)
        q->tail = m;
    return m;
}

/* Probes at the head of an idle partition: everything before them is
 * applied. */
static void drain_probes(struct gw_sink *s, struct pqueue *q)
{
    struct job *j;
    while (!q->busy && (j = q->head) != NULL && j->events == NULL) {
        q->head = j->next;
        if (q->head == NULL)
            q->tail = NULL;
        if (j->probe_ms > q->probe_ms)
            q->probe_ms = j->probe_ms;
        gw_kafka_msg_done(s->consumer, j->msgs[0]);
        job_free(j);
    }
}

/* Moves `j`, the head of `q`, into the call being gathered (made on first
 * use, room for `nq` jobs); false when out of memory. */
static bool take_job(struct call **c, size_t nq, struct pqueue *q, struct job *j)
{
    if (*c == NULL && (*c = calloc(1, sizeof(**c) + nq * sizeof((*c)->jobs[0]))) == NULL)
        return false;
    q->head = j->next;
    if (q->head == NULL)
        q->tail = NULL;
    j->next = NULL;
    q->busy = true;
    (*c)->jobs[(*c)->njobs++] = j;
    return true;
}

/* Gathers the next call. A solo or alone job (a rejected batch being
 * retried in pieces) goes by itself, first, while no other such call is in
 * flight: a partition being split gets a call per round trip and the other
 * slot keeps the rest moving. Otherwise the call is the head job (merged
 * with what queued behind it) of each idle partition, in turn from
 * s->next_queue, up to MAX_BATCH events. NULL when there is nothing to send
 * (or no memory: the retry timer comes back). */
static struct call *gather(struct gw_sink *s)
{
    size_t nq = s->nqueues, nev = 0;
    struct call *c = NULL;

    for (size_t k = 0; k < nq && s->lone_busy == 0 && c == NULL; k++) {
        struct pqueue *q = s->queues[(s->next_queue + k) % nq];
        struct job *j = q->head;
        if (q->busy || j == NULL || j->events == NULL || !(j->solo || j->alone))
            continue;
        if (!take_job(&c, nq, q, j))
            goto nomem;
        c->lone = true;
    }
    for (size_t k = 0; k < nq && (c == NULL || !c->lone); k++) {
        struct pqueue *q = s->queues[(s->next_queue + k) % nq];
        struct job *j = q->head;
        if (q->busy || j == NULL || j->events == NULL || j->solo || j->alone)
            continue;
        j = merge_queued(q, j);
        if (c != NULL && nev + j->n > MAX_BATCH)
            continue;
        if (!take_job(&c, nq, q, j))
            goto nomem;
        nev += j->n;
    }
    if (c == NULL)
        return NULL;
    c->s = s;
    s->next_queue = (s->next_queue + 1) % nq;
    if (c->njobs > 1) {
        size_t len = 2;
        for (size_t i = 0; i < c->njobs; i++)
            len += strlen(c->jobs[i]->events);
        char *text = c->events = malloc(len + 1);
        if (text == NULL) {
            call_give_back(c);
            goto nomem;
        }
        *text++ = '[';
        for (size_t i = 0; i < c->njobs; i++)
            text = append_elements(text, c->jobs[i]->events);
        *text++ = ']';
        *text = '\0';
    }
    return c;
nomem:
    back_off(s);
    return NULL;
}

/* Sends calls while fewer than APPLY_CALLS are in flight and some idle
 * partition has events queued. */
static void pump(struct gw_sink *s)
{
    struct call *c;
    if (s->closed)
        return;
    for (size_t i = 0; i < s->nqueues; i++)
        drain_probes(s, s->queues[i]);
    if (s->backing_off)
        return;
    while (s->busy < APPLY_CALLS && (c = gather(s)) != NULL) {
        const char *params[] = {call_text(c)};
        s->busy++;
        s->lone_busy += c->lone;
        if (gw_pg_query(s->b->pg, "apply_events", "SELECT gw_apply_events($1::jsonb)", 1, params,
                        applied, c) < 0) {
            s->busy--;
            s->lone_busy -= c->lone;
            call_give_back(c);
            back_off(s);
            return;
        }
    }
}

bool gw_sink_caught_up(const struct gw_sink *s, uint64_t for_ms, int64_t max_lag)
{
    struct gw_kafka_consumer_health h;
    if (s == NULL || s->closed || s->fresh_since_ms == 0)
        return false;
    gw_kafka_consumer_health(s->consumer, &h);
    if (h.partitions == 0 || h.lag < 0 || h.lag > max_lag)
        return false;
    return uv_now(s->b->loop) - s->fresh_since_ms >= for_ms;
}

int64_t gw_sink_fresh_age_ms(const struct gw_sink *s)
{
    uint64_t now;
    if (s == NULL || s->closed || s->fresh_since_ms == 0 || s->horizon_ms == 0)
        return -1;
    now = uv_now(s->b->loop);
    return now > s->horizon_ms ? (int64_t)(now - s->horizon_ms) : 0;
}

const char *gw_sink_instance(const struct gw_sink *s)
{
    return s != NULL ? s->instance : "";
}

int gw_sink_partitions(const struct gw_sink *s)
{
    struct gw_kafka_consumer_health h;
    if (s == NULL || s->closed)
        return 0;
    gw_kafka_consumer_health(s->consumer, &h);
    return h.partitions;
}

static void probe_tick(uv_timer_t *t)
{
    struct gw_sink *s = t->data;
    const char *topics[MAX_PARTITIONS];
    int32_t parts[MAX_PARTITIONS];
    uint64_t now = uv_now(s->b->loop);
    uint64_t fresh_ms = (uint64_t)s->b->opts.heartbeat_timeout_s * 1000 / 2;
    int n = gw_kafka_consumer_assignment(s->consumer, topics, parts, MAX_PARTITIONS);
    bool fresh = n > 0 && n <= MAX_PARTITIONS;
    uint64_t horizon = UINT64_MAX;

    if (fresh_ms < 1000)
        fresh_ms = 1000;
    s->tick++;
    for (int i = 0; i < n && i < MAX_PARTITIONS; i++) {
        struct pqueue *q = queue_for(s, topics[i], parts[i]);
        if (q == NULL) {
            fresh = false;
            continue;
        }
        /* Newly (re)assigned: what an earlier probe proved was about our
         * earlier ownership, not about what the last owner left unapplied. */
        if (q->seen_tick + 1 != s->tick)
            q->probe_ms = 0;
        q->seen_tick = s->tick;
        if (q->probe_ms == 0 || now - q->probe_ms > fresh_ms)
            fresh = false;
        else if (q->probe_ms < horizon)
            horizon = q->probe_ms;
    }
    s->horizon_ms = fresh ? horizon : 0;
    if (!fresh) {
        if (s->fresh_since_ms != 0)
            gw_log_info("event sink: not fresh (an outage, a backlog or a rebalance): "
                        "heartbeats are not judged until it has been fresh for %d s",
                        s->b->opts.heartbeat_timeout_s);
        s->fresh_since_ms = 0;
    } else if (s->fresh_since_ms == 0) {
        s->fresh_since_ms = now;
    }
    if (n > MAX_PARTITIONS)
        n = MAX_PARTITIONS;
    for (int i = 0; i < n; i++) {
        char body[640];
        int len = snprintf(body, sizeof(body),
                           "{\"specversion\":\"1.0\",\"type\":\"" PROBE_TYPE "\","
                           "\"id\":\"%s/%llu\",\"source\":\"gangway/broker/%s\","
                           "\"data\":{\"nonce\":\"%s\",\"sent_ms\":%llu}}",
                           s->nonce, (unsigned long long)++s->probe_seq, s->nonce, s->nonce,
                           (unsigned long long)now);
        /* Best effort: a probe that cannot be queued simply never comes back. */
        if (len > 0 && (size_t)len < sizeof(body))
            gw_kafka_produce_to(s->b->producer, topics[i], parts[i], NULL, 0, body, (size_t)len,
                                NULL, NULL, NULL);
    }
}

struct gw_sink *gw_sink_create(struct gw_broker *b, struct gw_error *err)
{
    struct gw_sink *s = gw_calloc(1, sizeof(*s), err);
    char topic[256], group[256], instance[300];
    const char *topics[] = {topic, NULL};

    if (s == NULL)
        return NULL;
    s->b = b;
    uv_timer_init(b->loop, &s->retry);
    s->retry.data = s;
    gw_broker_topic(b, "gangway.events", topic, sizeof(topic));
    gw_broker_topic(b, "gangway-broker-events", group, sizeof(group));
    /* Static membership: a broker restarted on the same host and port takes
     * its partitions back at once instead of waiting out the old member's
     * session, during which nobody would apply its events. */
    if (b->opts.instance_id != NULL && b->opts.instance_id[0] != '\0') {
        snprintf(instance, sizeof(instance), "%s", b->opts.instance_id);
    } else {
        char host[200] = "localhost";
        gethostname(host, sizeof(host) - 1);
        snprintf(instance, sizeof(instance), "%s:%d", host, b->opts.listen_port);
    }
    snprintf(s->instance, sizeof(s->instance), "%s", instance);
    struct gw_kafka_config kc = {.brokers = b->opts.kafka_brokers, .extra = b->opts.kafka_extra};
    /* As for workers (decision 0019): a replica that dies for good leaves
     * its partitions unapplied for one session, so keep it short; the
     * others keep theirs through the rebalance. */
    struct gw_kafka_consumer_options co = {.group_id = group,
                                           .topics = topics,
                                           .max_batch = MAX_BATCH,
                                           .max_in_flight = 8 * MAX_BATCH,
                                           .defaults = gw_kafka_shared_group_defaults,
                                           .group_instance_id = instance};
    s->consumer = gw_kafka_consumer_create(b->loop, &kc, &co, on_batch, s, err);
    if (s->consumer == NULL) {
        uv_close((uv_handle_t *)&s->retry, (uv_close_cb)free);
        return NULL;
    }
    gw_uuid_v4(s->nonce, NULL);
    uv_timer_init(b->loop, &s->probe);
    s->probe.data = s;
    uv_timer_start(&s->probe, probe_tick, PROBE_MS, PROBE_MS);
    s->handles_open = 2;
    return s;
}

static void timer_closed(uv_handle_t *h)
{
    struct gw_sink *s = h->data;
    s->handles_open--;
    maybe_free(s);
}

void gw_sink_destroy(struct gw_sink *s)
{
    if (s == NULL)
        return;
    s->closed = true;
    /* Messages not applied are simply not committed: redelivered later. */
    for (size_t i = 0; i < s->nqueues; i++) {
        struct pqueue *q = s->queues[i];
        while (q->head != NULL) {
            struct job *j = q->head;
            q->head = j->next;
            job_free(j);
        }
        q->tail = NULL;
    }
    gw_kafka_consumer_destroy(s->consumer);
    s->consumer = NULL;
    uv_timer_stop(&s->retry);
    uv_timer_stop(&s->probe);
    uv_close((uv_handle_t *)&s->retry, timer_closed);
    uv_close((uv_handle_t *)&s->probe, timer_closed);
}
