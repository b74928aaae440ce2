/*
 * The worker runtime. One job per Kafka message, moved by one state machine
 * whose only transition function is job_enter():
 *
 *   NEW ------> WAIT_KEY ------> CLAIMING ------> RUNNING ------> FINISHING -----> END
 *    | key busy         key free  |        200      |  |    finish      final event
 *    | (key free: CLAIMING)        | cancel          |  |                acknowledged
 *    |                             v                 |  | grace expired, or given up
 *    |                      CLAIM_CANCELLED          |  v
 *    |                      (200: FINISHING)         | KILLING
 *    |                                   user cancel |  | user cancel
 *    v                                               v  v
 *   DEADLETTER ----> END                          CANCELLING
 *   (an unusable message, or a claim answered with another 4xx)
 *
 *   NEW, WAIT_KEY, CLAIMING and CLAIM_CANCELLED may also go straight to END
 *   (out of memory, a cancel while waiting, shutdown, a refused or abandoned
 *   claim); KILLING and CANCELLING finish into FINISHING like RUNNING.
 *   job_may_enter() is the same table in code.
 *
 *   state            on entry (job_enter)               leaves on
 *   NEW              -                                  key free, key busy, unusable message
 *   WAIT_KEY         logs the wait                      key handed over; cancel or shutdown
 *                                                       (END)
 *   CLAIMING         -                                  the claim's answer; a cancel
 *   CLAIM_CANCELLED  -                                  the claim's answer: a grant reports
 *                                                       run.cancelled without starting
 *   RUNNING          heartbeat timer armed              the backend's finish; a user cancel;
 *                                                       a shutdown kill the backend took
 *   CANCELLING       -                                  finish: reported run.cancelled
 *   KILLING          -                                  finish: a CANCELLED outcome is
 *                                                       reported failed (worker_shutdown);
 *                                                       a user cancel still wins
 *   FINISHING        timer stopped (it retries the      the final event's delivery report
 *                    final event from now on); the
 *                    message lent (gw_kafka_msg_lend)
 *   DEADLETTER       counted                            the dead-letter's delivery report
 *   END              message resolved, key handed on,   - (freed once the timer is closed
 *                    timer closed                          and no delivery report is due)
 *
 * Besides the state a job keeps what is not a state: pending_dr counts the
 * delivery reports still owed to it and timer_open says whether its one
 * handle is still open (both gate the free, in any state: a job in END may
 * still get callbacks); run_created says the backend's destroy is owed,
 * which depends on how the job got to FINISHING, not on where it is now.
 *
 * The Kafka message is marked done (its offset may be committed) only when
 * the claim is resolved: refused -> at once; granted -> once the final event
 * is acknowledged by Kafka. A worker that dies in between gets the message
 * again and its claim is refused (the broker already moved the run on).
 *
 * Supervised runs (--supervise, docs/reattach.md): the backend runs the
 * program under `gangway supervise` in <state dir>/<run>.<attempt>,
 * and the job holds an flock on that directory's `lock` while it owns the
 * run. At start-up the worker adopts every directory of its group whose
 * lock is free and whose supervisor is alive or whose spool is finished: a
 * job without a Kafka message, claimed again under the claim's original
 * worker id (the broker regrants it: same attempt, same fence), then
 * handed to the backend's reattach() instead of start(). Its run.started
 * is published again (seq 1, a duplicate the sink drops) and the spool's
 * records follow with the seqs they had. The supervisor heartbeats such
 * runs itself; the job publishes no run.heartbeat for them.
 *
 * Cancels come on <prefix>gangway.control (control.c), matched on run id and
 * attempt: RUNNING -> the backend's cancel, final event run.cancelled;
 * CLAIMING -> a granted claim reports run.cancelled without starting;
 * WAIT_KEY -> dropped unclaimed (the broker only cancels through Kafka a run
 * that some worker already claimed, so this claim would be refused).
 */
#include "runtime.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "claim.h"
#include "control.h"
#include "events.h"
#include "gw/crypto.h"
#include "gw/fs.h"
#include "gw/list.h"
#include "gw/log.h"
#include "gw/mem.h"
#include "hosted.h"
#include "keygate.h"
#include "rundir.h"
#include "slot.h"

#define FINAL_RETRY_MS 1000
/* `started` waits this long (or for the first log line): a run that ends
 * sooner sends only its final event (docs/decisions/0051). */
#define STARTED_DEFER_MS  20
#define PRODUCER_FLUSH_MS 10000
/* After the grace: how long killed runs may take to report before the worker
 * stops waiting for Kafka and exits anyway (their messages stay undone). */
#define HARD_DEADLINE_MS 15000

enum job_state {
    J_NEW,             /* parsed (or not), no key taken yet */
    J_WAIT_KEY,        /* queued behind an earlier run of the same key */
    J_CLAIMING,        /* the claim is in flight */
    J_CLAIM_CANCELLED, /* the claim is in flight and a cancel came: never start */
    J_RUNNING,         /* the backend runs it; heartbeats */
    J_CANCELLING,      /* a user's cancel reached the backend */
    J_KILLING,         /* the backend took the shutdown kill (grace expired) */
    J_FINISHING,       /* the final event is on its way to Kafka */
    J_DEADLETTER,      /* the message is on its way to the dead-letter topic */
    J_END,             /* message resolved; freed when nothing refers to it */
};

struct job {
    struct gw_worker *w;
    struct gw_list link; /* in the worker's jobs */
    enum job_state state;
    struct gw_kafka_msg *msg;
    struct gw_run_request req;
    char *key; /* NULL for dead-letter jobs */
    struct gw_keygate_waiter waiter;
    struct gw_claim *claim;
    struct claim_call *call; /* the call carrying the claim (claim_call_done) */
    char worker_id[176];
    json_t *reply;
    struct gw_run run;
    bool run_created; /* the backend's destroy() is owed */
    long seq;
    uv_timer_t timer; /* heartbeats, then retries of the final event */
    bool timer_open;
    uint64_t heartbeat_ms;
    bool started_owed; /* `started` not sent yet (STARTED_DEFER_MS) */
    char *final_text;
    int pending_dr; /* delivery reports still to come back to this job */
    /* Supervision: the run's directory and its flock while this job owns
     * it; `reattach` says the grant goes to the backend's reattach(). */
    struct gw_run_supervision sv;
    char run_dir[PATH_MAX];
    int lock_fd;
    bool reattach;
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
    struct gw_http_client *http; /* claims share its keep-alive connection */
    struct gw_keygate gate;
    struct gw_list jobs; /* newest first */
    uv_signal_t sigterm, sigint;
    uv_timer_t grace;
    /* Claims gathered in one loop turn go out together (decision 0053), and
     * at most CLAIM_CALLS_MAX calls are out at once: claims that come
     * meanwhile wait for one to end and go together (decision 0077). */
    uv_timer_t claim_timer;
    int claim_calls_out;
    uv_timer_t handoff_timer; /* a handoff drain's retries (drain_handoff) */
    struct job **claimq;
    size_t nclaimq, capclaimq;
    bool no_batch; /* the broker has no batch endpoint: claim one by one */
    bool stopping, grace_expired, closing;
    struct gw_worker_stats stats;
    char self_exe[PATH_MAX]; /* for `gangway supervise` */
    char *runs_dir;          /* the state dir, with supervision */
};

static struct job *job_of(struct gw_list *link)
{
    return gw_list_entry(link, struct job, link);
}

static void job_claim(struct job *j);
static void check_shutdown(struct gw_worker *w);
static void heartbeat(uv_timer_t *t);

/* ------------------------------------------------------------ job states */

/* The transitions of the diagram at the top of this file. */
static bool job_may_enter(enum job_state from, enum job_state to)
{
    static const bool next[J_END + 1][J_END + 1] = {
        [J_NEW] = {[J_WAIT_KEY] = true, [J_CLAIMING] = true, [J_DEADLETTER] = true, [J_END] = true},
        [J_WAIT_KEY] = {[J_CLAIMING] = true, [J_END] = true},
        [J_CLAIMING] =
            {[J_CLAIM_CANCELLED] = true, [J_RUNNING] = true, [J_DEADLETTER] = true, [J_END] = true},
        [J_CLAIM_CANCELLED] = {[J_FINISHING] = true, [J_DEADLETTER] = true, [J_END] = true},
        [J_RUNNING] = {[J_CANCELLING] = true, [J_KILLING] = true, [J_FINISHING] = true},
        [J_CANCELLING] = {[J_FINISHING] = true},
        [J_KILLING] = {[J_CANCELLING] = true, [J_FINISHING] = true},
        [J_FINISHING] = {[J_END] = true},
        [J_DEADLETTER] = {[J_END] = true},
    };
    return next[from][to];
}

/* A backend run is going (RUNNING, CANCELLING or KILLING). */
static bool job_running(const struct job *j)
{
    return j->state == J_RUNNING || j->state == J_CANCELLING || j->state == J_KILLING;
}

/* A claim is in flight (CLAIMING or CLAIM_CANCELLED). */
static bool job_claiming(const struct job *j)
{
    return j->state == J_CLAIMING || j->state == J_CLAIM_CANCELLED;
}

static void job_end_entered(struct job *j);

/* The one place where a job changes state; what each state does on entry is
 * in the table at the top of this file. */
static void job_enter(struct job *j, enum job_state s)
{
    if (!job_may_enter(j->state, s)) {
        /* A broken invariant: a bug in this file, not bad input. */
        gw_log(GW_LOG_ERROR, j->req.run_id, "job: no transition from state %d to %d", j->state, s);
        abort();
    }
    j->state = s;
    switch (s) {
    case J_WAIT_KEY:
        gw_log(GW_LOG_INFO, j->req.run_id, "waiting for an earlier run of key %s", j->key);
        break;
    case J_RUNNING:
        uv_timer_start(&j->timer, heartbeat, j->started_owed ? STARTED_DEFER_MS : j->heartbeat_ms,
                       j->heartbeat_ms);
        break;
    case J_FINISHING:
        uv_timer_stop(&j->timer);
        /* The run's own work is over: its slot goes to the next message
         * while the final event waits for its delivery report (the offset
         * is still stored only then). Without this a slot was held a
         * Kafka round trip longer than the run (bench/README.md, part 3). */
        if (j->msg != NULL && j->w->consumer != NULL)
            gw_kafka_msg_lend(j->w->consumer, j->msg);
        break;
    case J_DEADLETTER:
        j->w->stats.deadlettered++;
        break;
    case J_END:
        job_end_entered(j);
        break;
    case J_NEW:
    case J_CLAIMING:
    case J_CLAIM_CANCELLED:
    case J_CANCELLING:
    case J_KILLING:
        break;
    }
}

/* ------------------------------------------------------------ job lifetime */

static void job_free(struct job *j)
{
    struct gw_worker *w = j->w;
    gw_list_remove(&j->link);
    if (j->run_created)
        w->be->destroy(&j->run);
    if (j->lock_fd >= 0)
        close(j->lock_fd);
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

/* Ends a job: resolves its message (done, or left undone to come back). */
static void job_end(struct job *j, bool done)
{
    struct gw_worker *w = j->w;
    if (j->state == J_END)
        return;
    if (done && j->msg != NULL && w->consumer != NULL)
        gw_kafka_msg_done(w->consumer, j->msg);
    j->msg = NULL;
    job_enter(j, J_END);
}

/* END's entry: hands the key over and closes the timer. */
static void job_end_entered(struct job *j)
{
    struct gw_worker *w = j->w;
    struct gw_keygate_waiter *next;
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

/* Ends a job still waiting for its key: it leaves the queue (it never held
 * the key, so it hands nothing over). */
static void job_drop_waiting(struct job *j, bool done)
{
    gw_keygate_cancel(&j->w->gate, j->key, &j->waiter);
    free(j->key);
    j->key = NULL;
    job_end(j, done);
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

/* Hands one event of the run to Kafka, keyed by the run id; `dr` gets the
 * job once Kafka acknowledged it (or gave up). Returns gw_kafka_produce's. */
static int produce_event(struct job *j, const char *text, gw_kafka_dr_cb dr, struct gw_error *err)
{
    struct gw_worker *w = j->w;
    int rc = gw_kafka_produce(w->producer, w->events_topic, j->req.run_id, strlen(j->req.run_id),
                              text, strlen(text), dr, j, err);
    if (rc == 0)
        j->pending_dr++;
    return rc;
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
        j->run.final_delivered = true;
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
    if (j->w->producer == NULL) {
        job_end(j, false); /* past the hard deadline */
        return;
    }
    if (produce_event(j, j->final_text, dr_final, &err) == 0)
        return;
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
    if (produce_event(j, text, dr_event, &err) == 0) {
        j->seq++;
    } else {
        gw_log(GW_LOG_WARN, j->req.run_id, "%s event dropped: %s", kind, err.message);
        /* A supervised run's seqs are its spool's numbering: the next line
         * keeps its own seq, so a worker replaying the spool later numbers
         * it the same (and may fill this one in). */
        if (j->run.supervised)
            j->seq++;
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
    job_enter(j, J_DEADLETTER);
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

static void publish_started(struct job *j)
{
    j->started_owed = false;
    publish(j, "started", NULL, false);
}

static void sink_log(struct gw_run *run, const char *stream, const char *line, size_t len)
{
    struct job *j = run->sink_data;
    size_t clen;
    if (j->started_owed)
        publish_started(j); /* `started` always comes first */
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
    if (r->outcome == GW_RUN_DETACHED) {
        /* Handed off: no final event; the message stays undone and the
         * supervisor heartbeats until a worker reattaches. */
        gw_log(GW_LOG_INFO, j->req.run_id, "run detached: it goes on under its supervisor");
        job_enter(j, J_FINISHING);
        job_end(j, false);
        return;
    }
    /* Outputs and messages leave the worker too: mask secrets there as in
     * log lines (a program may echo a DSN into its outputs). */
    char *masked_msg = gw_run_mask_text(run, r->message);
    const char *msg = masked_msg ? masked_msg : (r->message ? r->message : "");
    json_t *outputs = gw_run_mask_json(run, r->outputs);
    /* A user's cancel wins over the shutdown that raced it (CANCELLING). */
    bool killed = j->state == J_KILLING;
    /* Ended within STARTED_DEFER_MS and without a log line: the final event
     * alone says it all (the claim already made the run `running`). */
    j->started_owed = false;
    job_enter(j, J_FINISHING);
    switch (r->outcome) {
    case GW_RUN_SUCCEEDED:
        if (w->o.test_die_after_success != NULL && run->operation != NULL &&
            strcmp(run->operation, w->o.test_die_after_success) == 0) {
            gw_log(GW_LOG_WARN, j->req.run_id,
                   "GW_TEST_DIE_AFTER_SUCCESS: dying before run.succeeded");
            raise(SIGKILL);
        }
        w->stats.runs_succeeded++;
        gw_log(GW_LOG_INFO, j->req.run_id, "run succeeded");
        publish(j, "succeeded", json_pack("{s:O}", "outputs", outputs), true);
        break;
    case GW_RUN_FAILED:
        w->stats.runs_failed++;
        gw_log(GW_LOG_INFO, j->req.run_id, "run failed: %s: %s", r->reason, msg);
        {
            json_t *data =
                json_pack("{s:s, s:i, s:s}", "reason", r->reason ? r->reason : "backend_error",
                          "exit_code", r->exit_code, "message", msg);
            /* The evidence of gw_run_finish_failed_with (run.failed's schema). */
            json_t *pc = json_object_get(outputs, "plan_checks");
            if (data != NULL && json_is_object(pc))
                json_object_set(data, "plan_checks", pc);
            publish(j, "failed", data, true);
        }
        break;
    case GW_RUN_TIMED_OUT:
        w->stats.runs_timed_out++;
        gw_log(GW_LOG_INFO, j->req.run_id, "run timed out: %s", msg);
        publish(j, "timed_out", json_pack("{s:s}", "message", msg), true);
        break;
    case GW_RUN_CANCELLED:
        if (killed) {
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
    case GW_RUN_DETACHED:
        break; /* handled above */
    }
    free(masked_msg);
    json_decref(outputs);
}

static const struct gw_run_sink runtime_sink = {.log = sink_log, .finish = sink_finish};

/* ------------------------------------------------------------ running */

static void heartbeat(uv_timer_t *t)
{
    struct job *j = t->data;
    if (!job_running(j))
        return;
    if (j->started_owed)
        publish_started(j);
    /* A supervised run's supervisor heartbeats it through the broker; a
     * heartbeat here would take a seq that the spool's records own. */
    else if (!j->run.supervised)
        publish(j, "heartbeat", NULL, false);
}

/* Takes the run's directory under the state dir for this job (rundir.h)
 * and fills j->sv. Returns 0, or -1 when the run cannot be supervised: an
 * exec program then runs as an ordinary child, a hosted run fails to start
 * (spawn_failed, with the reason). */
static int job_supervision(struct job *j)
{
    struct gw_worker *w = j->w;
    struct gw_error err;
    if (j->lock_fd < 0) {
        j->lock_fd = gw_rundir_take(w->runs_dir, j->req.run_id, j->req.attempt, j->run_dir,
                                    sizeof(j->run_dir), &err);
        if (j->lock_fd < 0) {
            gw_log(GW_LOG_ERROR, j->req.run_id, "%s: the run is not supervised", err.message);
            return -1;
        }
    }
    j->sv = (struct gw_run_supervision){
        .self_exe = w->self_exe,
        .run_dir = j->run_dir,
        .broker_url = w->o.broker_url,
        .token = w->o.token,
        .worker_id = j->worker_id,
        .key = j->key,
        .group = w->group,
        .backend = w->o.type,
        .heartbeat_ms = (int)j->heartbeat_ms,
        .linger_seconds = w->o.linger_seconds > 0 ? w->o.linger_seconds : 3600,
    };
    return 0;
}

static void test_drain_now(uv_timer_t *t)
{
    gw_worker_shutdown(t->data);
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
    if (j->state == J_CLAIM_CANCELLED) {
        /* Cancelled between our claim and its answer: the run is ours and
         * running for the broker, so it needs a final event, but nothing
         * is started. */
        job_enter(j, J_FINISHING);
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
    v = json_object_get(reply, "resource");
    j->run.resource = json_is_object(v) ? v : NULL;
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

    if (w->runs_dir != NULL && w->be->reattach != NULL && job_supervision(j) == 0)
        j->run.supervise = &j->sv;

    /* A new run's `started` waits STARTED_DEFER_MS or its first log line
     * (docs/decisions/0051). A supervised or reattached run's seqs are
     * shared with its spool, so its `started` keeps seq 1 and goes now. */
    j->started_owed = !j->reattach && j->run.supervise == NULL;
    job_enter(j, J_RUNNING);
    w->stats.runs_started++;
    gw_log(GW_LOG_INFO, j->req.run_id, "claim granted (attempt %d), %s %s", j->req.attempt,
           j->reattach ? "reattaching" : "starting", j->run.action_id ? j->run.action_id : "?");
    /* A reattached run's run.started has seq 1 as the first one: a duplicate
     * the sink drops, or the one a killed worker never got out. */
    if (!j->started_owed)
        publish(j, "started", NULL, false);

    gw_error_clear(&err);
    if (w->be->create(&j->run, &err) < 0) {
        j->run_created = true; /* destroy() accepts the NULL backend_data */
        gw_run_finish_failed(&j->run, "backend_error", -1, err.message);
        return;
    }
    j->run_created = true;
    if (j->reattach && j->run.supervise == NULL) {
        gw_run_finish_failed(&j->run, "backend_error", -1, "cannot reattach: no run directory");
        return;
    }
    if ((j->reattach ? w->be->reattach(&j->run, &err) : w->be->start(&j->run, &err)) < 0) {
        gw_run_finish_failed(&j->run, "spawn_failed", -1, err.message);
        return;
    }
    if (w->grace_expired && w->be->cancel(&j->run, GW_CANCEL_SHUTDOWN) == 0)
        job_enter(j, J_KILLING);
    if (w->o.test_drain_at_start && !w->stopping) {
        /* Next turn's timers come before its I/O: as a SIGTERM read in the
         * poll that brought the claim, before the supervisor's socket
         * connects. */
        gw_log(GW_LOG_WARN, j->req.run_id, "GW_TEST_DRAIN_AT_START: draining now");
        uv_timer_start(&w->handoff_timer, test_drain_now, 0, 0);
    }
}

/* One claim call on the wire (a batch or a single claim) and how many of its
 * claims have not been answered yet. */
struct claim_call {
    struct gw_worker *w;
    size_t left;
};

static void claim_flush(uv_timer_t *t);

static struct claim_call *claim_call_new(struct gw_worker *w, size_t n)
{
    struct claim_call *c = malloc(sizeof(*c));
    if (c == NULL)
        return NULL; /* not counted: the gate is an optimisation */
    c->w = w;
    c->left = n;
    w->claim_calls_out++;
    return c;
}

/* j's claim is answered: the last answer of a call lets the claims that
 * waited meanwhile go (on the next loop turn, never inside a callback). */
static void claim_call_done(struct job *j)
{
    struct claim_call *c = j->call;
    j->call = NULL;
    if (c == NULL || --c->left > 0)
        return;
    struct gw_worker *w = c->w;
    free(c);
    w->claim_calls_out--;
    if (w->nclaimq > 0 && !w->stopping)
        uv_timer_start(&w->claim_timer, claim_flush, 0, 0);
}

static void on_claim(void *arg, enum gw_claim_result r, json_t *reply, const char *detail)
{
    struct job *j = arg;
    j->claim = NULL;
    claim_call_done(j);
    switch (r) {
    case GW_CLAIM_GRANTED:
        start_run(j, reply);
        break;
    case GW_CLAIM_REFUSED:
    case GW_CLAIM_NOT_FOUND:
        j->w->stats.claims_refused++;
        if (j->reattach) {
            /* The broker moved the run on (worker_lost, a newer attempt): a
             * live supervisor learns it from its heartbeat and cleans up. */
            gw_log(GW_LOG_WARN, j->req.run_id, "reattach refused (%s): the run is not ours",
                   detail);
        } else {
            gw_log(GW_LOG_INFO, j->req.run_id, "claim refused (%s): message dropped", detail);
        }
        job_end(j, true);
        break;
    case GW_CLAIM_REJECTED:
        if (j->msg == NULL) {
            gw_log(GW_LOG_ERROR, j->req.run_id, "reattach claim rejected: %s", detail);
            job_end(j, false);
            break;
        }
        deadletter(j, detail);
        break;
    case GW_CLAIM_ABANDONED:
    case GW_CLAIM_UNSUPPORTED: /* batches only (on_batch_claim) */
        job_end(j, false);
        break;
    }
}

/* Starts the single claim of `j` (already CLAIMING or CLAIM_CANCELLED). */
static void claim_one(struct job *j)
{
    struct gw_worker *w = j->w;
    struct gw_error err;
    struct gw_claim_params p = {.broker_url = w->o.broker_url,
                                .token = w->o.token,
                                .run_id = j->req.run_id,
                                .attempt = j->req.attempt,
                                .worker_id = j->worker_id,
                                .worker_type = w->o.type,
                                .http = w->http};
    j->claim = gw_claim_start(w->loop, &p, on_claim, j, &err);
    if (j->claim != NULL) {
        w->stats.claim_calls++;
        j->call = claim_call_new(w, 1);
    } else if (j->msg == NULL)
        job_end(j, false);
    else
        deadletter(j, err.message);
}

static void on_batch_claim(void *arg, enum gw_claim_result r, json_t *reply, const char *detail)
{
    struct job *j = arg;
    if (r == GW_CLAIM_UNSUPPORTED) {
        if (!j->w->no_batch)
            gw_log_warn("the broker has no batch claim endpoint: claiming runs one by one");
        j->w->no_batch = true;
        j->claim = NULL;
        claim_call_done(j);
        claim_one(j);
        return;
    }
    on_claim(arg, r, reply, detail);
}

/* Sends the claims gathered since the last loop turn, in calls of up to
 * CLAIM_BATCH, while fewer than CLAIM_CALLS_MAX calls are out (the rest
 * wait for claim_call_done); a lone claim, or every claim for an old broker,
 * goes to the single endpoint.
 *
 * Why a bound on calls: under load every slot that frees sends its own
 * claim, and a quarter of a burn-down's claims went alone, each its own
 * transaction and WAL flush (~450 us of PostgreSQL CPU against ~75 per run
 * in a batch of 64: bench/README.md, "Issue 15, part 6"). With the bound,
 * claims that come while the calls are out go together in the next one; an
 * idle worker's claim still goes at once. */
#define CLAIM_BATCH     64
#define CLAIM_CALLS_MAX 2
static void claim_flush(uv_timer_t *t)
{
    struct gw_worker *w = t->data;
    struct gw_claim_batch_item items[CLAIM_BATCH];
    if (w->no_batch) {
        size_t n = w->nclaimq;
        w->nclaimq = 0;
        for (size_t i = 0; i < n; i++)
            claim_one(w->claimq[i]);
        return;
    }
    while (w->nclaimq > 0 && w->claim_calls_out < CLAIM_CALLS_MAX) {
        size_t k = w->nclaimq < CLAIM_BATCH ? w->nclaimq : CLAIM_BATCH;
        struct job *taken[CLAIM_BATCH];
        memcpy(taken, w->claimq, k * sizeof(*taken));
        w->nclaimq -= k;
        memmove(w->claimq, w->claimq + k, w->nclaimq * sizeof(*w->claimq));
        if (k == 1) {
            claim_one(taken[0]);
            continue;
        }
        struct gw_claim_params p = {.broker_url = w->o.broker_url,
                                    .token = w->o.token,
                                    .worker_type = w->o.type,
                                    .http = w->http};
        struct gw_error err;
        struct gw_claim *c;
        for (size_t i = 0; i < k; i++) {
            struct job *j = taken[i];
            items[i] = (struct gw_claim_batch_item){.run_id = j->req.run_id,
                                                    .attempt = j->req.attempt,
                                                    .worker_id = j->worker_id,
                                                    .cb = on_batch_claim,
                                                    .arg = j};
        }
        c = gw_claim_start_batch(w->loop, &p, items, k, &err);
        if (c != NULL) {
            w->stats.claim_calls++;
            w->stats.claim_batches++;
        }
        struct claim_call *call = c != NULL ? claim_call_new(w, k) : NULL;
        for (size_t i = 0; i < k; i++) {
            if (c != NULL) {
                taken[i]->claim = c;
                taken[i]->call = call;
            } else {
                claim_one(taken[i]); /* e.g. one bad run id: alone */
            }
        }
    }
}

static void job_claim(struct job *j)
{
    struct gw_worker *w = j->w;
    job_enter(j, J_CLAIMING);
    if (w->nclaimq == w->capclaimq) {
        size_t cap = w->capclaimq ? w->capclaimq * 2 : 16;
        struct job **q = realloc(w->claimq, cap * sizeof(*q));
        if (q == NULL) {
            claim_one(j); /* no memory to gather: claim it alone */
            return;
        }
        w->claimq = q;
        w->capclaimq = cap;
    }
    w->claimq[w->nclaimq++] = j;
    if (w->nclaimq == 1 && (w->no_batch || w->claim_calls_out < CLAIM_CALLS_MAX))
        uv_timer_start(&w->claim_timer, claim_flush, 0, 0);
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
    j->lock_fd = -1;
    gw_list_insert(&w->jobs, &j->link);
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
        job_enter(j, J_WAIT_KEY);
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
    gw_list_foreach_safe (it, next, &w->jobs) {
        struct job *j = job_of(it);
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
            w->stats.claims_refused++;
            job_drop_waiting(j, true);
            break;
        case J_CLAIMING:
        case J_CLAIM_CANCELLED:
            gw_log(GW_LOG_INFO, c->run_id, "cancel requested while claiming: will not start");
            if (j->state == J_CLAIMING)
                job_enter(j, J_CLAIM_CANCELLED);
            break;
        case J_RUNNING:
        case J_CANCELLING:
        case J_KILLING:
            if (j->run.finished)
                break;
            if (j->state != J_CANCELLING)
                job_enter(j, J_CANCELLING);
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

/* ------------------------------------------------------------ reattach */

/* Adopts the run of one directory (gw_rundir_scan): a job without a
 * message, claimed again under the original worker id. Takes `meta` and
 * `lock_fd`. */
static void adopt(void *arg, const char *dir, json_t *meta, int lock_fd, bool alive)
{
    struct gw_worker *w = arg;
    struct job *j = calloc(1, sizeof(*j));
    json_t *a = json_object_get(meta, "attempt");
    const char *key = json_string_value(json_object_get(meta, "key"));
    int rc;
    (void)alive;
    if (j == NULL) {
        json_decref(meta);
        close(lock_fd);
        return;
    }
    j->w = w;
    j->lock_fd = lock_fd;
    j->reattach = true;
    gw_list_insert(&w->jobs, &j->link);
    uv_timer_init(w->loop, &j->timer);
    j->timer.data = j;
    j->timer_open = true;
    j->req.doc = meta;
    j->req.run_id = json_string_value(json_object_get(meta, "run_id"));
    j->req.attempt = (int)json_integer_value(a);
    j->req.timeout_seconds = (int)json_integer_value(json_object_get(meta, "timeout_seconds"));
    snprintf(j->worker_id, sizeof(j->worker_id), "%s",
             json_string_value(json_object_get(meta, "worker_id")));
    snprintf(j->run_dir, sizeof(j->run_dir), "%s", dir);
    j->key = strdup(key != NULL ? key : j->req.run_id);
    j->waiter.data = j;
    rc = j->key != NULL ? gw_keygate_acquire(&w->gate, j->key, &j->waiter) : GW_ENOMEM;
    if (rc == 1) {
        job_claim(j);
    } else {
        /* Nothing holds a key at start-up but another adopted run of it. */
        if (rc == 0)
            gw_keygate_cancel(&w->gate, j->key, &j->waiter);
        free(j->key);
        j->key = NULL;
        gw_log(GW_LOG_ERROR, j->req.run_id, "cannot reattach: key %s taken", key ? key : "?");
        job_end(j, false);
    }
}

/* Start-up: adopts the runs of this worker's group that a dead worker left
 * under their supervisors (docs/reattach.md), before any message is
 * consumed. Blocking file system calls: start-up only. */
static void reattach_scan(struct gw_worker *w)
{
    int n = gw_rundir_scan(w->runs_dir, w->group, adopt, w);
    if (n > 0)
        gw_log_info("reattaching %d supervised run(s)", n);
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
    if (w->be->shutdown != NULL)
        w->be->shutdown(w->loop);
    /* Every job has ended, so no claim uses the client any more. */
    gw_http_client_destroy(w->http, NULL, NULL);
    w->http = NULL;
    gw_kafka_consumer_destroy(w->consumer);
    w->consumer = NULL;
    {
        struct gw_kafka_producer *p = w->producer;
        w->producer = NULL; /* publish() and retries see it gone */
        gw_kafka_producer_destroy(p, PRODUCER_FLUSH_MS);
    }
    /* Jobs waiting to retry their final event give up now. */
    gw_list_foreach_safe (it, next, &w->jobs) {
        struct job *j = job_of(it);
        if (j->state == J_FINISHING && j->pending_dr == 0)
            job_end(j, false);
    }
    uv_close((uv_handle_t *)&w->sigterm, closed_noop);
    uv_close((uv_handle_t *)&w->sigint, closed_noop);
    uv_close((uv_handle_t *)&w->grace, closed_noop);
    uv_close((uv_handle_t *)&w->claim_timer, closed_noop);
    uv_close((uv_handle_t *)&w->handoff_timer, closed_noop);
    gw_log_info("worker stopped: runs started=%llu succeeded=%llu failed=%llu timed_out=%llu "
                "cancelled=%llu claims_refused=%llu deadlettered=%llu claim_calls=%llu "
                "claim_batches=%llu",
                s->runs_started, s->runs_succeeded, s->runs_failed, s->runs_timed_out,
                s->runs_cancelled, s->claims_refused, s->deadlettered, s->claim_calls,
                s->claim_batches);
}

static void check_shutdown(struct gw_worker *w)
{
    if (!w->stopping || w->closing || !gw_list_empty(&w->jobs))
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
    gw_list_foreach (it, &w->jobs) {
        struct job *j = job_of(it);
        if (job_running(j) && !j->run.finished && w->be->cancel(&j->run, GW_CANCEL_SHUTDOWN) == 0 &&
            j->state == J_RUNNING)
            job_enter(j, J_KILLING);
    }
    if (!w->closing)
        uv_timer_start(&w->grace, hard_deadline, HARD_DEADLINE_MS, 0);
}

int gw_worker_drain_mode_parse(const char *s, enum gw_drain_mode *out, struct gw_error *err)
{
    if (s == NULL || strcmp(s, "wait") == 0) {
        *out = GW_DRAIN_WAIT;
        return 0;
    }
    if (strcmp(s, "handoff") == 0) {
        *out = GW_DRAIN_HANDOFF;
        return 0;
    }
    gw_error_set(err, GW_EINVAL, false, "drain mode '%s': expected wait or handoff", s);
    return -1;
}

/* Mode wait: the runs in progress go on (up to the grace) and the worker
 * exits once they reported. */
static void drain_wait(struct gw_worker *w)
{
    gw_log_info("draining (mode wait): no new runs, %d ms grace for running ones", w->o.grace_ms);
    /* Waiting runs never started: forget them (their messages stay undone). */
    gw_list_foreach_safe (it, next, &w->jobs) {
        struct job *j = job_of(it);
        if (j->state == J_WAIT_KEY)
            job_drop_waiting(j, false);
    }
    /* Claims gathered but not sent yet are never sent. */
    uv_timer_stop(&w->claim_timer);
    for (size_t i = 0; i < w->nclaimq; i++)
        job_end(w->claimq[i], false);
    w->nclaimq = 0;
    gw_list_foreach_safe (it, next, &w->jobs) {
        struct job *j = job_of(it);
        if (job_claiming(j) && j->claim != NULL)
            gw_claim_abandon(j->claim);
    }
    uv_timer_start(&w->grace, grace_expired, (uint64_t)w->o.grace_ms, 0);
    check_shutdown(w);
}

/* Detaches what can be: returns how many supervised runs are still going
 * whose supervisor has not yet confirmed it holds the spec (detach says
 * GW_EUNAVAIL: let go now and no later worker could find the run). */
static int handoff_sweep(struct gw_worker *w, int *detached)
{
    int waiting = 0;
    gw_list_foreach_safe (it, next, &w->jobs) {
        struct job *j = job_of(it);
        if (!job_running(j) || j->run.finished || !j->run.supervised || w->be->detach == NULL)
            continue;
        int rc = w->be->detach(&j->run);
        if (rc == 0)
            (*detached)++;
        else if (rc == GW_EUNAVAIL)
            waiting++;
    }
    return waiting;
}

#define HANDOFF_RETRY_MS 20

static void handoff_retry(uv_timer_t *t)
{
    struct gw_worker *w = t->data;
    int n = 0;
    /* Not stopped when nothing waits: a claim in flight may still start a
     * supervised run; final_close() closes the timer. */
    if (w->closing || w->grace_expired)
        uv_timer_stop(t);
    else
        handoff_sweep(w, &n);
    if (n > 0)
        gw_log_info("handoff: %d more supervised run(s) detached", n);
}

/* Mode handoff: every supervised run is detached (its program and
 * supervisor go on and heartbeat; a worker started on this host later
 * reattaches it, docs/reattach.md): at once, or as soon as its supervisor
 * confirms it holds the spec, and so also a run whose claim was granted
 * after the drain began. The runs that are not supervised get the usual
 * grace, as in mode wait. */
static void drain_handoff(struct gw_worker *w)
{
    int n = 0;
    int waiting = handoff_sweep(w, &n);
    gw_log_info("handoff: %d supervised run(s) detached; they go on under their supervisors%s", n,
                waiting > 0 ? " (more as their supervisors confirm their specs)" : "");
    drain_wait(w);
    /* Repeats until no supervised run is left (a claim still in flight may
     * start one) or the grace runs out. */
    if (!w->closing)
        uv_timer_start(&w->handoff_timer, handoff_retry, HANDOFF_RETRY_MS, HANDOFF_RETRY_MS);
}

/* The one place that chooses what a drain does with the runs in progress
 * (decisions 0044, 0041). */
static void drain_dispatch(struct gw_worker *w)
{
    switch (w->o.drain_mode) {
    case GW_DRAIN_HANDOFF:
        drain_handoff(w);
        return;
    case GW_DRAIN_WAIT:
        drain_wait(w);
        return;
    }
}

void gw_worker_shutdown(struct gw_worker *w)
{
    struct gw_error err;
    if (w->stopping) {
        /* A second signal: do not wait for the grace any longer. */
        if (!w->grace_expired && !w->closing) {
            uv_timer_stop(&w->grace);
            grace_expired(&w->grace);
        }
        return;
    }
    w->stopping = true;
    /* Leave the group first, whatever the mode: a static member's
     * partitions would otherwise stay with it until it exits and its
     * session expires (decision 0044). Messages of runs still going are
     * left undone: their next owner's claims are refused. */
    if (gw_kafka_consumer_leave(w->consumer, &err) < 0)
        gw_log_warn("drain: could not leave the group early (%s): partitions move at exit",
                    err.message);
    drain_dispatch(w);
}

bool gw_worker_draining(const struct gw_worker *w)
{
    return w->stopping;
}

/* A drain request on the control topic for this worker's id. */
static void on_drain(void *arg, const struct gw_drain_request *req)
{
    struct gw_worker *w = arg;
    if (w->stopping) {
        /* Repeated (the outbox delivers at least once): never a hard stop. */
        gw_log_info("drain request %s: already draining", req->event_id ? req->event_id : "?");
        return;
    }
    gw_log_info("drain requested%s%s%s%s", req->requested_by ? " by " : "",
                req->requested_by ? req->requested_by : "", req->reason ? ": " : "",
                req->reason ? req->reason : "");
    gw_worker_shutdown(w);
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

/* mkdir -p of `path` (0700 for what it creates). */
static int mkdirs(char *path)
{
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* The binary for `gangway supervise` and the state dir. */
static int supervision_setup(struct gw_worker *w, struct gw_error *err)
{
    ssize_t n;
    if (w->be->hosted)
        w->be = &gw_hosted_backend; /* the real one runs in the supervisor */
    if (w->be->reattach == NULL || w->be->detach == NULL) {
        gw_log_warn("--supervise: the %s backend cannot supervise its runs; ignored", w->o.type);
        return 0;
    }
    if (w->o.state_dir == NULL || w->o.state_dir[0] != '/')
        return gw_error_set(err, GW_EINVAL, false,
                            "--supervise needs an absolute --state-dir (GW_WORKER_STATE_DIR)");
    n = readlink("/proc/self/exe", w->self_exe, sizeof(w->self_exe) - 1);
    if (n <= 0)
        return gw_error_set(err, GW_EIO, false, "cannot find the gangway binary: %s",
                            strerror(errno));
    w->self_exe[n] = '\0';
    /* Runs of every group share the state dir (meta.json names the group):
     * a socket's path must fit in 108 bytes. */
    w->runs_dir = strdup(w->o.state_dir);
    if (w->runs_dir == NULL)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    if (mkdirs(w->runs_dir) < 0)
        return gw_error_set(err, GW_EIO, false, "cannot create %s: %s", w->runs_dir,
                            strerror(errno));
    return 0;
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
    w = gw_calloc(1, sizeof(*w), err);
    if (w == NULL)
        return NULL;
    w->loop = loop;
    gw_list_init(&w->jobs);
    w->slot_fd = -1;
    w->o = *o;
    if (w->o.heartbeat_ms <= 0)
        w->o.heartbeat_ms = 5000;
    if (w->o.grace_ms < 0)
        w->o.grace_ms = 0;
    if (w->o.drain_mode == GW_DRAIN_HANDOFF && !w->o.supervise)
        gw_log_warn("--drain-mode handoff without --supervise: nothing can be handed off, "
                    "a drain waits for the running runs");
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
    w->http = gw_http_client_create(loop, NULL, err);
    if (w->http == NULL)
        goto fail;
    w->producer = gw_kafka_producer_create(loop, &o->kafka, err);
    if (w->producer == NULL)
        goto fail_http;
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
    gw_control_on_drain(w->control, on_drain, w);
    if (o->supervise && supervision_setup(w, err) < 0)
        goto fail_control;
    uv_timer_init(loop, &w->grace);
    w->grace.data = w;
    uv_timer_init(loop, &w->claim_timer);
    w->claim_timer.data = w;
    uv_timer_init(loop, &w->handoff_timer);
    w->handoff_timer.data = w;
    uv_signal_init(loop, &w->sigterm);
    uv_signal_init(loop, &w->sigint);
    w->sigterm.data = w->sigint.data = w;
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    gw_log_info("worker %s: type %s, concurrency %d, consuming %s in group %s", w->id_base, o->type,
                o->concurrency, w->runs_topic, w->group);
    if (w->runs_dir != NULL) {
        gw_log_info("supervised runs in %s", w->runs_dir);
        reattach_scan(w);
    }
    return w;

fail_control:
    gw_control_destroy(w->control);
fail_consumer:
    gw_kafka_consumer_destroy(w->consumer);
fail_producer:
    /* Not started yet: nothing to flush. The loop closes its handles. */
    gw_kafka_producer_destroy(w->producer, 0);
fail_http:
    gw_http_client_destroy(w->http, NULL, NULL);
fail:
    gw_worker_destroy(w); /* nothing of it is on the loop yet */
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
    free(w->claimq);
    free(w->runs_dir);
    free(w);
}
