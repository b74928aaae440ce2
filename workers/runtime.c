/*
 * The worker runtime. One job per Kafka message, moved by one state machine:
 *
 *   WAIT_KEY --(key free)--> CLAIMING --200--> RUNNING --finish--> FINISHING
 *                               |  409/404: done at once          | final event
 *                               v                                  v delivered
 *                              END <-------------------------------+
 *   DEADLETTER (unusable message): published to the dead-letter topic, END.
 *
 * The Kafka message is marked done (its offset may be committed) only when
 * the claim is resolved: refused -> at once; granted -> once the final event
 * is acknowledged by Kafka. A worker that dies in between gets the message
 * again and its claim is refused (the broker already moved the run on).
 *
 * Cancels come on <prefix>gangway.control (control.c), matched on run id and
 * attempt: RUNNING -> the backend's cancel, final event run.cancelled;
 * CLAIMING -> a granted claim reports run.cancelled without starting;
 * WAIT_KEY -> dropped unclaimed (the broker only cancels through Kafka a run
 * that some worker already claimed, so this claim would be refused).
 */
#include "runtime.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "claim.h"
#include "control.h"
#include "events.h"
#include "gw/crypto.h"
#include "gw/log.h"
#include "keygate.h"
#include "slot.h"

#define FINAL_RETRY_MS    1000
#define PRODUCER_FLUSH_MS 10000
/* After the grace: how long killed runs may take to report before the worker
 * stops waiting for Kafka and exits anyway (their messages stay undone). */
#define HARD_DEADLINE_MS 15000

enum job_state { J_WAIT_KEY, J_CLAIMING, J_RUNNING, J_FINISHING, J_DEADLETTER, J_END };

struct job {
    struct gw_worker *w;
    struct job *prev, *next;
    enum job_state state;
    struct gw_kafka_msg *msg;
    struct gw_run_request req;
    char *key; /* NULL for dead-letter jobs */
    struct gw_keygate_waiter waiter;
    struct gw_claim *claim;
    char worker_id[176];
    json_t *reply;
    struct gw_run run;
    bool run_created;
    bool shutdown_cancel;
    bool user_cancel;    /* a cancel request reached the backend */
    bool cancel_pending; /* a cancel came while claiming: never start */
    long seq;
    uv_timer_t timer; /* heartbeats, then retries of the final event */
    bool timer_open;
    uint64_t heartbeat_ms;
    char *final_text;
    int pending_dr;
    bool msg_resolved; /* done or deliberately left undone */
};

struct gw_worker {
    uv_loop_t *loop;
    struct gw_worker_options o;
    const struct gw_backend_impl *be;
    char *runs_topic, *events_topic, *deadletter_topic, *group;
    char id_base[128];
    char life[9]; /* random per process: job ids never repeat across restarts */
    int slot_fd;  /* the flock behind a default id (slot.h), or -1 */
    unsigned long next_n;
    struct gw_kafka_producer *producer;
    struct gw_kafka_consumer *consumer;
    struct gw_control *control;
    struct gw_keygate gate;
    struct job *jobs;
    uv_signal_t sigterm, sigint;
    uv_timer_t grace;
    bool stopping, grace_expired, closing;
    struct gw_worker_stats stats;
};

static void job_claim(struct job *j);
static void check_shutdown(struct gw_worker *w);

/* ------------------------------------------------------------ job lifetime */

static void job_free(struct job *j)
{
    struct gw_worker *w = j->w;
    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        w->jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    if (j->run_created)
        w->be->destroy(&j->run);
    json_decref(j->reply);
    json_decref(j->run.secret_values);
    gw_run_request_finish(&j->req);
    free(j->key);
    free(j->final_text);
    free(j);
    check_shutdown(w);
}

static void job_maybe_free(struct job *j)
{
    if (j->state == J_END && j->pending_dr == 0 && !j->timer_open)
        job_free(j);
}

static void timer_closed(uv_handle_t *h)
{
    struct job *j = h->data;
    j->timer_open = false;
    job_maybe_free(j);
}

/* Ends a job: resolves its message (done or not), hands its key over. */
static void job_end(struct job *j, bool done)
{
    struct gw_worker *w = j->w;
    struct gw_keygate_waiter *next;
    if (j->state == J_END)
        return;
    j->state = J_END;
    if (done && j->msg != NULL && w->consumer != NULL)
        gw_kafka_msg_done(w->consumer, j->msg);
    j->msg = NULL;
    if (j->key != NULL && (next = gw_keygate_release(&w->gate, j->key)) != NULL) {
        /* The next run of this resource, in arrival order. */
        struct job *nj = next->data;
        if (!w->stopping)
            job_claim(nj);
        else
            job_end(nj, false);
    }
    if (j->timer_open) {
        uv_timer_stop(&j->timer);
        uv_close((uv_handle_t *)&j->timer, timer_closed);
    } else {
        job_maybe_free(j);
    }
}

/* ------------------------------------------------------------ publishing */

static void dr_event(void *opaque, const struct gw_error *err)
{
    struct job *j = opaque;
    j->pending_dr--;
    if (err != NULL)
        gw_log(GW_LOG_WARN, j->req.run_id, "event not delivered: %s", err->message);
    job_maybe_free(j);
}

static void publish_final_text(struct job *j);

static void final_retry(uv_timer_t *t)
{
    publish_final_text(t->data);
}

static void dr_final(void *opaque, const struct gw_error *err)
{
    struct job *j = opaque;
    j->pending_dr--;
    if (err == NULL) {
        job_end(j, true);
        return;
    }
    if (j->w->producer == NULL || !err->retriable) {
        /* Left undone: the message comes back and the broker sorts it out. */
        gw_log(GW_LOG_ERROR, j->req.run_id, "final event lost: %s", err->message);
        job_end(j, false);
        return;
    }
    gw_log(GW_LOG_WARN, j->req.run_id, "final event not delivered (%s), retrying", err->message);
    uv_timer_start(&j->timer, final_retry, FINAL_RETRY_MS, 0);
}

static void publish_final_text(struct job *j)
{
    struct gw_error err;
    struct gw_worker *w = j->w;
    if (w->producer == NULL) {
        job_end(j, false); /* past the hard deadline */
        return;
    }
    if (gw_kafka_produce(w->producer, w->events_topic, j->req.run_id, strlen(j->req.run_id),
                         j->final_text, strlen(j->final_text), dr_final, j, &err) == 0) {
        j->pending_dr++;
        return;
    }
    gw_log(GW_LOG_WARN, j->req.run_id, "final event: %s, retrying", err.message);
    uv_timer_start(&j->timer, final_retry, FINAL_RETRY_MS, 0);
}

/* Publishes one event of the run; seq advances only when Kafka took it, so
 * the seq of an attempt has no holes. `data` is stolen. */
static void publish(struct job *j, const char *kind, json_t *data, bool final)
{
    struct gw_error err;
    struct gw_worker *w = j->w;
    char *text =
        gw_event_build(kind, j->req.run_id, j->req.attempt, j->seq + 1, j->worker_id, data);
    if (text == NULL) {
        gw_log(GW_LOG_ERROR, j->req.run_id, "cannot build %s event", kind);
        return;
    }
    if (w->producer == NULL && !final) {
        free(text);
        return;
    }
    if (final) {
        j->seq++;
        j->final_text = text;
        publish_final_text(j);
        return;
    }
    if (gw_kafka_produce(w->producer, w->events_topic, j->req.run_id, strlen(j->req.run_id), text,
                         strlen(text), dr_event, j, &err) == 0) {
        j->seq++;
        j->pending_dr++;
    } else {
        gw_log(GW_LOG_WARN, j->req.run_id, "%s event dropped: %s", kind, err.message);
    }
    free(text);
}

static void dr_deadletter(void *opaque, const struct gw_error *err)
{
    struct job *j = opaque;
    j->pending_dr--;
    if (err != NULL)
        gw_log(GW_LOG_ERROR, j->req.run_id, "dead-letter not delivered: %s", err->message);
    job_end(j, true);
}

static void deadletter(struct job *j, const char *reason)
{
    struct gw_worker *w = j->w;
    struct gw_error err;
    char *text;
    j->state = J_DEADLETTER;
    w->stats.deadlettered++;
    gw_log(GW_LOG_WARN, j->req.run_id, "message %s[%d]@%lld to dead-letter: %s", j->msg->topic,
           (int)j->msg->partition, (long long)j->msg->offset, reason);
    text = gw_event_deadletter(w->id_base, j->msg->topic, j->msg->partition, j->msg->offset,
                               j->msg->payload, j->msg->len, reason);
    if (text != NULL &&
        gw_kafka_produce(w->producer, w->deadletter_topic, j->msg->key, j->msg->key_len, text,
                         strlen(text), dr_deadletter, j, &err) == 0) {
        j->pending_dr++;
        free(text);
        return;
    }
    free(text);
    gw_log(GW_LOG_ERROR, j->req.run_id, "dead-letter publish failed; message left undone");
    job_end(j, false);
}

/* ------------------------------------------------------------ the run sink */

static void sink_log(struct gw_run *run, const char *stream, const char *line, size_t len)
{
    struct job *j = run->sink_data;
    size_t clen;
    char *clean = gw_utf8_clean(line, len, &clen);
    if (clean == NULL)
        return;
    publish(j, "log", json_pack("{s:s, s:s%}", "stream", stream, "line", clean, clen), false);
    free(clean);
}

static void sink_finish(struct gw_run *run, const struct gw_run_result *r)
{
    struct job *j = run->sink_data;
    struct gw_worker *w = j->w;
    /* Outputs and messages leave the worker too: mask secrets there as in
     * log lines (a program may echo a DSN into its outputs). */
    char *masked_msg = gw_run_mask_text(run, r->message);
    const char *msg = masked_msg ? masked_msg : (r->message ? r->message : "");
    json_t *outputs = gw_run_mask_json(run, r->outputs);
    uv_timer_stop(&j->timer);
    j->state = J_FINISHING;
    switch (r->outcome) {
    case GW_RUN_SUCCEEDED:
        w->stats.runs_succeeded++;
        gw_log(GW_LOG_INFO, j->req.run_id, "run succeeded");
        publish(j, "succeeded", json_pack("{s:O}", "outputs", outputs), true);
        break;
    case GW_RUN_FAILED:
        w->stats.runs_failed++;
        gw_log(GW_LOG_INFO, j->req.run_id, "run failed: %s: %s", r->reason, msg);
        publish(j, "failed",
                json_pack("{s:s, s:i, s:s}", "reason", r->reason ? r->reason : "backend_error",
                          "exit_code", r->exit_code, "message", msg),
                true);
        break;
    case GW_RUN_TIMED_OUT:
        w->stats.runs_timed_out++;
        gw_log(GW_LOG_INFO, j->req.run_id, "run timed out: %s", msg);
        publish(j, "timed_out", json_pack("{s:s}", "message", msg), true);
        break;
    case GW_RUN_CANCELLED:
        /* A user's cancel wins over the shutdown that raced it. */
        if (j->shutdown_cancel && !j->user_cancel) {
            w->stats.runs_failed++;
            gw_log(GW_LOG_WARN, j->req.run_id, "run killed by worker shutdown");
            publish(j, "failed",
                    json_pack("{s:s, s:i, s:s}", "reason", "worker_shutdown", "exit_code", -1,
                              "message", "the worker shut down before the run finished"),
                    true);
        } else {
            w->stats.runs_cancelled++;
            publish(j, "cancelled", json_pack("{s:s}", "message", msg), true);
        }
        break;
    }
    free(masked_msg);
    json_decref(outputs);
}

static const struct gw_run_sink runtime_sink = {.log = sink_log, .finish = sink_finish};

/* ------------------------------------------------------------ running */

static void heartbeat(uv_timer_t *t)
{
    struct job *j = t->data;
    if (j->state == J_RUNNING)
        publish(j, "heartbeat", NULL, false);
}

static void start_run(struct job *j, json_t *reply)
{
    struct gw_worker *w = j->w;
    struct gw_error err;
    json_t *action = json_object_get(reply, "action"), *v;
    json_int_t fence = json_integer_value(json_object_get(reply, "fence"));

    j->reply = json_incref(reply);
    if (fence != 0 && fence != j->req.attempt)
        gw_log(GW_LOG_WARN, j->req.run_id, "fence %lld differs from attempt %d; using fence",
               (long long)fence, j->req.attempt);
    if (fence > 0)
        j->req.attempt = (int)fence;
    if (j->cancel_pending) {
        /* Cancelled between our claim and its answer: the run is ours and
         * running for the broker, so it needs a final event, but nothing
         * is started. */
        j->state = J_FINISHING;
        w->stats.runs_cancelled++;
        gw_log(GW_LOG_INFO, j->req.run_id, "claim granted after a cancel request: not started");
        publish(j, "cancelled", json_pack("{s:s}", "message", "cancelled before it started"), true);
        return;
    }
    j->run.loop = w->loop;
    j->run.run_id = j->req.run_id;
    j->run.attempt = j->req.attempt;
    j->run.action_id = json_string_value(json_object_get(action, "id"));
    if (j->run.action_id == NULL)
        j->run.action_id = j->req.action_id;
    j->run.action_version = json_string_value(json_object_get(action, "version"));
    if (j->run.action_version == NULL)
        j->run.action_version = j->req.action_version;
    j->run.requested_by =
        json_string_value(json_object_get(json_object_get(reply, "requested_by"), "subject"));
    j->run.inputs = json_object_get(reply, "inputs");
    j->run.resource_key = json_string_value(json_object_get(reply, "resource_key"));
    if (j->run.resource_key == NULL)
        j->run.resource_key = j->req.run_id;
    j->run.operation = json_string_value(json_object_get(reply, "operation"));
    if (j->run.operation == NULL)
        j->run.operation = "create";
    j->run.secret_paths = json_object_get(reply, "secret_paths");
    j->run.secret_values = gw_run_secret_values(j->run.inputs, j->run.secret_paths);
    j->run.config = json_object_get(action, "backend");
    v = json_object_get(action, "timeout_seconds");
    j->run.timeout_seconds =
        json_is_integer(v) ? (int)json_integer_value(v) : j->req.timeout_seconds;
    j->run.sink = &runtime_sink;
    j->run.sink_data = j;
    v = json_object_get(reply, "heartbeat_interval_seconds");
    j->heartbeat_ms = json_is_number(v) && json_number_value(v) > 0
                          ? (uint64_t)(json_number_value(v) * 1000.0)
                          : (uint64_t)w->o.heartbeat_ms;

    j->state = J_RUNNING;
    w->stats.runs_started++;
    gw_log(GW_LOG_INFO, j->req.run_id, "claim granted (attempt %d), starting %s", j->req.attempt,
           j->run.action_id ? j->run.action_id : "?");
    publish(j, "started", NULL, false);

    gw_error_clear(&err);
    if (w->be->create(&j->run, &err) < 0) {
        j->run_created = true; /* destroy() accepts the NULL backend_data */
        gw_run_finish_failed(&j->run, "backend_error", -1, err.message);
        return;
    }
    j->run_created = true;
    if (w->be->start(&j->run, &err) < 0) {
        gw_run_finish_failed(&j->run, "spawn_failed", -1, err.message);
        return;
    }
    uv_timer_start(&j->timer, heartbeat, j->heartbeat_ms, j->heartbeat_ms);
    if (w->grace_expired && w->be->cancel(&j->run, GW_CANCEL_SHUTDOWN) == 0)
        j->shutdown_cancel = true;
}

static void on_claim(void *arg, enum gw_claim_result r, json_t *reply, const char *detail)
{
    struct job *j = arg;
    j->claim = NULL;
    switch (r) {
    case GW_CLAIM_GRANTED:
        start_run(j, reply);
        break;
    case GW_CLAIM_REFUSED:
    case GW_CLAIM_NOT_FOUND:
        j->w->stats.claims_refused++;
        gw_log(GW_LOG_INFO, j->req.run_id, "claim refused (%s): message dropped", detail);
        job_end(j, true);
        break;
    case GW_CLAIM_REJECTED:
        deadletter(j, detail);
        break;
    case GW_CLAIM_ABANDONED:
        job_end(j, false);
        break;
    }
}

static void job_claim(struct job *j)
{
    struct gw_worker *w = j->w;
    struct gw_error err;
    struct gw_claim_params p = {.broker_url = w->o.broker_url,
                                .token = w->o.token,
                                .run_id = j->req.run_id,
                                .attempt = j->req.attempt,
                                .worker_id = j->worker_id,
                                .worker_type = w->o.type};
    j->state = J_CLAIMING;
    j->claim = gw_claim_start(w->loop, &p, on_claim, j, &err);
    if (j->claim == NULL)
        deadletter(j, err.message);
}

/* ------------------------------------------------------------ consuming */

static void take_message(struct gw_worker *w, struct gw_kafka_msg *m)
{
    char why[256];
    struct job *j = calloc(1, sizeof(*j));
    int rc;
    if (j == NULL) {
        gw_log_error("out of memory: message %s[%d]@%lld left for later", m->topic,
                     (int)m->partition, (long long)m->offset);
        return;
    }
    j->w = w;
    j->msg = m;
    j->next = w->jobs;
    if (w->jobs != NULL)
        w->jobs->prev = j;
    w->jobs = j;
    uv_timer_init(w->loop, &j->timer);
    j->timer.data = j;
    j->timer_open = true;
    /* Unique across restarts too: the broker regrants a claim to the same
     * job id (a reply lost on the way), so a restarted worker with a stable
     * --worker-id must never reuse one (issue 10: it re-ran a claimed run). */
    snprintf(j->worker_id, sizeof(j->worker_id), "%s-%s-%lu", w->id_base, w->life, ++w->next_n);

    if (gw_run_request_parse(m->payload, m->len, &j->req, why, sizeof(why)) < 0) {
        deadletter(j, why);
        return;
    }
    if (j->req.worker_type != NULL && strcmp(j->req.worker_type, w->o.type) != 0) {
        snprintf(why, sizeof(why), "worker_type '%s' on the topic of '%s'", j->req.worker_type,
                 w->o.type);
        deadletter(j, why);
        return;
    }
    /* The Kafka key is the resource key; fall back to data.key, then the run. */
    if (m->key_len > 0)
        j->key = gw_utf8_clean(m->key, m->key_len, NULL);
    else
        j->key = strdup(j->req.key != NULL ? j->req.key : j->req.run_id);
    j->waiter.data = j;
    rc = j->key != NULL ? gw_keygate_acquire(&w->gate, j->key, &j->waiter) : GW_ENOMEM;
    if (rc == 1) {
        job_claim(j);
    } else if (rc == 0) {
        j->state = J_WAIT_KEY;
        gw_log(GW_LOG_INFO, j->req.run_id, "waiting for an earlier run of key %s", j->key);
    } else {
        free(j->key);
        j->key = NULL;
        gw_log(GW_LOG_ERROR, j->req.run_id, "out of memory; message left undone");
        job_end(j, false);
    }
}

static void on_batch(void *arg, struct gw_kafka_msg **msgs, size_t n)
{
    struct gw_worker *w = arg;
    for (size_t i = 0; i < n; i++) {
        /* Stopping: leave it undone; the consumer frees it at close and the
         * group hands it to another worker. */
        if (!w->stopping)
            take_message(w, msgs[i]);
    }
}

/* ------------------------------------------------------------ cancels */

static void on_cancel(void *arg, const struct gw_cancel_request *c)
{
    struct gw_worker *w = arg;
    for (struct job *j = w->jobs, *next; j != NULL; j = next) {
        next = j->next;
        if (j->req.run_id == NULL || strcmp(j->req.run_id, c->run_id) != 0)
            continue;
        if (j->req.attempt != c->attempt) {
            /* A newer attempt must not die of an older attempt's cancel. */
            gw_log(GW_LOG_INFO, c->run_id, "cancel for attempt %d ignored: this is attempt %d",
                   c->attempt, j->req.attempt);
            continue;
        }
        switch (j->state) {
        case J_WAIT_KEY:
            gw_log(GW_LOG_INFO, c->run_id, "cancelled while waiting for key %s: never started",
                   j->key);
            gw_keygate_cancel(&w->gate, j->key, &j->waiter);
            free(j->key);
            j->key = NULL;
            w->stats.claims_refused++;
            job_end(j, true);
            break;
        case J_CLAIMING:
            gw_log(GW_LOG_INFO, c->run_id, "cancel requested while claiming: will not start");
            j->cancel_pending = true;
            break;
        case J_RUNNING:
            if (j->run.finished)
                break;
            j->user_cancel = true;
            if (w->be->cancel(&j->run, GW_CANCEL_REQUESTED) == 0)
                gw_log(GW_LOG_INFO, c->run_id, "cancel requested%s%s: stopping the run",
                       c->reason ? ": " : "", c->reason ? c->reason : "");
            else
                gw_log(GW_LOG_INFO, c->run_id, "cancel requested: the run is already ending");
            break;
        default:
            break; /* already reporting its outcome */
        }
    }
}

/* ------------------------------------------------------------ shutdown */

static void closed_noop(uv_handle_t *h)
{
    (void)h;
}

static void final_close(uv_timer_t *t)
{
    struct gw_worker *w = t->data;
    struct gw_worker_stats *s = &w->stats;
    /* Not from inside a Kafka callback: the consumer and producer go here. */
    gw_control_destroy(w->control);
    w->control = NULL;
    gw_kafka_consumer_destroy(w->consumer);
    w->consumer = NULL;
    {
        struct gw_kafka_producer *p = w->producer;
        w->producer = NULL; /* publish() and retries see it gone */
        gw_kafka_producer_destroy(p, PRODUCER_FLUSH_MS);
    }
    /* Jobs waiting to retry their final event give up now. */
    for (struct job *j = w->jobs, *next; j != NULL; j = next) {
        next = j->next;
        if (j->state == J_FINISHING && j->pending_dr == 0)
            job_end(j, false);
    }
    uv_close((uv_handle_t *)&w->sigterm, closed_noop);
    uv_close((uv_handle_t *)&w->sigint, closed_noop);
    uv_close((uv_handle_t *)&w->grace, closed_noop);
    gw_log_info("worker stopped: runs started=%llu succeeded=%llu failed=%llu timed_out=%llu "
                "cancelled=%llu claims_refused=%llu deadlettered=%llu",
                s->runs_started, s->runs_succeeded, s->runs_failed, s->runs_timed_out,
                s->runs_cancelled, s->claims_refused, s->deadlettered);
}

static void check_shutdown(struct gw_worker *w)
{
    if (!w->stopping || w->closing || w->jobs != NULL)
        return;
    w->closing = true;
    uv_timer_stop(&w->grace);
    uv_timer_start(&w->grace, final_close, 0, 0);
}

static void hard_deadline(uv_timer_t *t)
{
    struct gw_worker *w = t->data;
    if (w->closing)
        return;
    gw_log_error("shutdown: final events still undelivered after %d ms; exiting anyway",
                 HARD_DEADLINE_MS);
    w->closing = true;
    /* Purges the producer: pending final events fail and their jobs end with
     * their messages undone (redelivered, then refused by the broker). */
    final_close(t);
}

static void grace_expired(uv_timer_t *t)
{
    struct gw_worker *w = t->data;
    w->grace_expired = true;
    gw_log_warn("shutdown grace expired: killing the runs still going");
    for (struct job *j = w->jobs; j != NULL; j = j->next)
        if (j->state == J_RUNNING && !j->run.finished &&
            w->be->cancel(&j->run, GW_CANCEL_SHUTDOWN) == 0)
            j->shutdown_cancel = true;
    if (!w->closing)
        uv_timer_start(&w->grace, hard_deadline, HARD_DEADLINE_MS, 0);
}

void gw_worker_shutdown(struct gw_worker *w)
{
    struct job *j, *next;
    if (w->stopping) {
        /* A second signal: do not wait for the grace any longer. */
        if (!w->grace_expired && !w->closing) {
            uv_timer_stop(&w->grace);
            grace_expired(&w->grace);
        }
        return;
    }
    w->stopping = true;
    gw_log_info("shutting down: no new runs, %d ms grace for running ones", w->o.grace_ms);
    /* Waiting runs never started: forget them (their messages stay undone). */
    for (j = w->jobs; j != NULL; j = next) {
        next = j->next;
        if (j->state == J_WAIT_KEY) {
            gw_keygate_cancel(&w->gate, j->key, &j->waiter);
            free(j->key);
            j->key = NULL;
            job_end(j, false);
        }
    }
    for (j = w->jobs; j != NULL; j = next) {
        next = j->next;
        if (j->state == J_CLAIMING)
            gw_claim_abandon(j->claim);
    }
    uv_timer_start(&w->grace, grace_expired, (uint64_t)w->o.grace_ms, 0);
    check_shutdown(w);
}

static void on_signal(uv_signal_t *s, int signum)
{
    gw_log_info("signal %d received", signum);
    gw_worker_shutdown(s->data);
}

/* ------------------------------------------------------------ create */

static char *cat3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

struct gw_worker *gw_worker_create(uv_loop_t *loop, const struct gw_worker_options *o,
                                   struct gw_error *err)
{
    struct gw_worker *w;
    const char *prefix = o->topic_prefix ? o->topic_prefix : "";
    char host[64] = "worker";
    size_t batch;

    if (o->type == NULL || o->concurrency < 1 || o->broker_url == NULL ||
        o->kafka.brokers == NULL) {
        gw_error_set(err, GW_EINVAL, false,
                     "worker: type, concurrency, broker URL and "
                     "Kafka brokers are required");
        return NULL;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    w->loop = loop;
    w->slot_fd = -1;
    w->o = *o;
    if (w->o.heartbeat_ms <= 0)
        w->o.heartbeat_ms = 5000;
    if (w->o.grace_ms < 0)
        w->o.grace_ms = 0;
    w->be = gw_backend_lookup(o->type);
    if (w->be == NULL) {
        gw_error_set(err, GW_EINVAL, false, "no backend for worker type '%s'", o->type);
        goto fail;
    }
    {
        char uuid[GW_UUID_LEN + 1];
        if (gw_uuid_v4(uuid, err) < 0)
            goto fail;
        memcpy(w->life, uuid, 8);
        w->life[8] = '\0';
    }
    gw_keygate_init(&w->gate);
    w->runs_topic = cat3(prefix, "gangway.runs.", o->type);
    w->events_topic = cat3(prefix, "gangway.events", "");
    w->deadletter_topic = cat3(prefix, "gangway.deadletter", "");
    w->group = cat3(prefix, "gangway-workers-", o->type);
    if (!w->runs_topic || !w->events_topic || !w->deadletter_topic || !w->group) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto fail;
    }
    /* The id is also the static membership of the group (decision 0019):
     * given, or this host's lowest free slot (slot.h), or else dynamic. */
    if (o->worker_id != NULL) {
        snprintf(w->id_base, sizeof(w->id_base), "%s", o->worker_id);
    } else if ((w->slot_fd = gw_worker_slot_take(w->group, w->id_base, sizeof(w->id_base))) < 0) {
        gethostname(host, sizeof(host) - 1);
        snprintf(w->id_base, sizeof(w->id_base), "%s-%d", host, (int)getpid());
        gw_log_warn("no worker slot could be taken: dynamic group membership as %s", w->id_base);
    }
    w->producer = gw_kafka_producer_create(loop, &o->kafka, err);
    if (w->producer == NULL)
        goto fail;
    batch = (size_t)o->concurrency < 16 ? (size_t)o->concurrency : 16;
    {
        /* Group membership that does not stall the pool (decision 0019):
         * cooperative rebalancing keeps every other worker fetching while a
         * member joins or leaves; a session shorter than the broker's default
         * heartbeat timeout (15 s) bounds how long a dead worker's partitions
         * sit idle; the worker is a static member under its id (given, or a
         * per-host slot), so a restart takes its partitions back with no
         * rebalance at all.
         * GW_KAFKA_PROPS overrides each of these. */
        const char *topics[] = {w->runs_topic, NULL};
        struct gw_kafka_consumer_options co = {
            .group_id = w->group,
            .topics = topics,
            .max_batch = batch,
            .max_in_flight = (size_t)o->concurrency,
            .defaults = gw_kafka_shared_group_defaults,
            .group_instance_id = w->slot_fd >= 0 || o->worker_id != NULL ? w->id_base : NULL};
        w->consumer = gw_kafka_consumer_create(loop, &o->kafka, &co, on_batch, w, err);
    }
    if (w->consumer == NULL)
        goto fail_producer;
    /* Cancels for runs of this process; the topic may appear later. */
    w->control = gw_control_create(loop, &o->kafka, prefix, w->id_base, on_cancel, w, err);
    if (w->control == NULL)
        goto fail_consumer;
    uv_timer_init(loop, &w->grace);
    w->grace.data = w;
    uv_signal_init(loop, &w->sigterm);
    uv_signal_init(loop, &w->sigint);
    w->sigterm.data = w->sigint.data = w;
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    gw_log_info("worker %s: type %s, concurrency %d, consuming %s in group %s", w->id_base, o->type,
                o->concurrency, w->runs_topic, w->group);
    return w;

fail_consumer:
    gw_kafka_consumer_destroy(w->consumer);
fail_producer:
    /* Not started yet: nothing to flush. The loop closes its handles. */
    gw_kafka_producer_destroy(w->producer, 0);
fail:
    if (w->slot_fd >= 0)
        close(w->slot_fd);
    free(w->runs_topic);
    free(w->events_topic);
    free(w->deadletter_topic);
    free(w->group);
    free(w);
    return NULL;
}

void gw_worker_stats(const struct gw_worker *w, struct gw_worker_stats *out)
{
    *out = w->stats;
}

void gw_worker_destroy(struct gw_worker *w)
{
    if (w == NULL)
        return;
    gw_keygate_finish(&w->gate);
    if (w->slot_fd >= 0)
        close(w->slot_fd);
    free(w->runs_topic);
    free(w->events_topic);
    free(w->deadletter_topic);
    free(w->group);
    free(w);
}
