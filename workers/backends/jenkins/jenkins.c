/*
 * The jenkins backend: triggers a parameterized Jenkins job, follows its
 * queue item to the build, streams the build's console into the run's log
 * and maps the build result to the run's outcome. See
 * docs/decisions/0012-jenkins-backend.md.
 *
 * One request at a time, in this order:
 *
 *   CRUMB -> FIND_BUILD -> FIND_QUEUE -> TRIGGER -> QUEUE ... -> LOG ... -> BUILD
 *
 * FIND_BUILD and FIND_QUEUE make a retried claim follow the build (or queue
 * item) an earlier attempt started: it carries GANGWAY_RUN_ID = run id. A
 * trigger that fails without an answer goes back to FIND_BUILD, never
 * straight to a second POST. Every transition goes through the `delay` timer
 * (0 ms when there is nothing to wait for), where a pending stop (cancel,
 * timeout) takes precedence: CANCEL_ITEM for a queued item, STOP_BUILD for a
 * running build, then polling goes on until Jenkins confirms.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "registry.h"
#include "gw/log.h"
#include "jk_config.h"
#include "jk_http.h"

#define MAX_TRIES         8
#define BACKOFF_MAX_MS    5000
#define STOP_GRACE_MS     30000
#define SHUTDOWN_GRACE_MS 3000
#define QUEUE_FIRST_POLL  100

enum step {
    S_CRUMB,
    S_FIND_BUILD,
    S_FIND_QUEUE,
    S_TRIGGER,
    S_QUEUE,
    S_CANCEL_ITEM,
    S_LOG,
    S_BUILD,
    S_STOP_BUILD
};
enum stop { STOP_NONE, STOP_CANCEL, STOP_SHUTDOWN, STOP_TIMEOUT };

static const char *const step_what[] = {
    [S_CRUMB] = "fetching a CSRF crumb",    [S_FIND_BUILD] = "listing the job's builds",
    [S_FIND_QUEUE] = "reading the queue",   [S_TRIGGER] = "triggering the build",
    [S_QUEUE] = "following the queue item", [S_CANCEL_ITEM] = "cancelling the queue item",
    [S_LOG] = "reading the console log",    [S_BUILD] = "reading the build",
    [S_STOP_BUILD] = "stopping the build",
};

struct jk_run {
    struct gw_run *run;
    struct jk_config cfg;
    char *params;
    struct jk_http *http;
    uv_timer_t delay, deadline;
    int open_handles;
    bool started, in_request, closing;

    enum step step, next;
    enum step after_crumb;
    bool crumb_retried, queue_vanished;
    int tries;
    char last_error[256];

    long queue_id, build_number;
    char *build_url; /* as Jenkins reports it, for the outputs */
    long long log_start;
    struct jk_lines lines;

    enum stop stop;
    bool cancel_sent, stop_sent, grace_started;

    /* The outcome, reported once every handle is closed. */
    enum gw_run_outcome outcome;
    const char *reason;
    int exit_code;
    char message[512];
    json_t *outputs;
};

static void go(struct jk_run *j, enum step s);
static void schedule(struct jk_run *j, enum step s, uint64_t ms);

/* ------------------------------------------------------------ ending */

static void closed_one(struct jk_run *j)
{
    json_t *o;
    if (--j->open_handles > 0)
        return;
    switch (j->outcome) {
    case GW_RUN_SUCCEEDED:
        o = j->outputs;
        j->outputs = NULL;
        gw_run_finish_succeeded(j->run, o);
        break;
    case GW_RUN_FAILED:
        gw_run_finish_failed(j->run, j->reason, j->exit_code, j->message);
        break;
    case GW_RUN_TIMED_OUT:
        gw_run_finish_timed_out(j->run, j->message);
        break;
    case GW_RUN_CANCELLED:
        gw_run_finish_cancelled(j->run, j->message);
        break;
    case GW_RUN_DETACHED:
        /* Never set here: jenkins has no detach slot (docs/reattach.md). */
        abort();
    }
}

static void timer_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

static void http_closed(void *arg)
{
    closed_one(arg);
}

static void log_line(void *arg, const char *line, size_t len)
{
    struct jk_run *j = arg;
    gw_run_log(j->run, "stdout", line, len);
}

/* Records the outcome and closes everything; finish follows from the last
 * close callback. */
static void end(struct jk_run *j, enum gw_run_outcome outcome, const char *reason, int exit_code,
                json_t *outputs, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void end(struct jk_run *j, enum gw_run_outcome outcome, const char *reason, int exit_code,
                json_t *outputs, const char *fmt, ...)
{
    va_list ap;
    if (j->closing) {
        json_decref(outputs);
        return;
    }
    j->closing = true;
    j->outcome = outcome;
    j->reason = reason;
    j->exit_code = exit_code;
    j->outputs = outputs;
    va_start(ap, fmt);
    vsnprintf(j->message, sizeof(j->message), fmt, ap);
    va_end(ap);
    gw_jk_lines_flush(&j->lines, log_line, j);
    if (outcome != GW_RUN_SUCCEEDED)
        gw_log(GW_LOG_INFO, j->run->run_id, "jenkins: %s", j->message);
    uv_close((uv_handle_t *)&j->delay, timer_closed);
    uv_close((uv_handle_t *)&j->deadline, timer_closed);
    gw_jk_http_close(j->http, http_closed, j);
    j->http = NULL;
}

static void end_stopped(struct jk_run *j, const char *what)
{
    if (j->stop == STOP_TIMEOUT)
        end(j, GW_RUN_TIMED_OUT, NULL, -1, NULL, "timed out after %d s; %s",
            j->run->timeout_seconds, what);
    else
        end(j, GW_RUN_CANCELLED, NULL, -1, NULL, "cancelled; %s", what);
}

static void fail(struct jk_run *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct jk_run *j, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    end(j, GW_RUN_FAILED, "backend_error", -1, NULL, "%s", msg);
}

/* ------------------------------------------------------------ results */

static void finish_result(struct jk_run *j, const char *result)
{
    long n = j->build_number;
    const char *url = j->build_url ? j->build_url : "";
    if (strcmp(result, "SUCCESS") == 0) {
        json_t *o = json_pack("{s:s, s:i, s:s}", "build_url", url, "build_number", (json_int_t)n,
                              "result", result);
        end(j, GW_RUN_SUCCEEDED, NULL, 0, o, "build #%ld succeeded", n);
    } else if (strcmp(result, "UNSTABLE") == 0) {
        /* Tests failed but the build itself ran: not a success (see 0012). */
        end(j, GW_RUN_FAILED, "unstable", -1, NULL, "Jenkins build #%ld is UNSTABLE: %s", n, url);
    } else if (strcmp(result, "FAILURE") == 0) {
        end(j, GW_RUN_FAILED, "exit_code", 1, NULL, "Jenkins build #%ld finished FAILURE: %s", n,
            url);
    } else if (strcmp(result, "NOT_BUILT") == 0) {
        end(j, GW_RUN_FAILED, "exit_code", -1, NULL, "Jenkins build #%ld was NOT_BUILT: %s", n,
            url);
    } else if (strcmp(result, "ABORTED") == 0) {
        if (j->stop != STOP_NONE)
            end_stopped(j, "Jenkins build aborted");
        else
            end(j, GW_RUN_CANCELLED, NULL, -1, NULL, "Jenkins build #%ld was aborted in Jenkins",
                n);
    } else {
        fail(j, "Jenkins build #%ld ended with an unknown result", n);
    }
}

/* ------------------------------------------------------------ transitions */

/* A pending stop goes first. Returns true when it took over. */
static bool stop_action(struct jk_run *j)
{
    if (j->stop == STOP_NONE)
        return false;
    if (j->build_number > 0 && !j->stop_sent) {
        go(j, S_STOP_BUILD);
        return true;
    }
    if (j->queue_id > 0 && j->build_number == 0 && !j->cancel_sent) {
        go(j, S_CANCEL_ITEM);
        return true;
    }
    if (j->queue_id == 0 && j->build_number == 0) {
        end_stopped(j, "no Jenkins build was started");
        return true;
    }
    if (j->stop == STOP_SHUTDOWN) {
        end_stopped(j, "stop sent to Jenkins");
        return true;
    }
    return false;
}

static void on_delay(uv_timer_t *t)
{
    struct jk_run *j = t->data;
    if (j->closing || j->in_request || stop_action(j))
        return;
    go(j, j->next);
}

static void schedule(struct jk_run *j, enum step s, uint64_t ms)
{
    j->next = s;
    uv_timer_start(&j->delay, on_delay, ms, 0);
}

static uint64_t backoff_ms(int tries)
{
    uint64_t ms = 250;
    for (int i = 1; i < tries && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms;
}

static bool is_post(enum step s)
{
    return s == S_TRIGGER || s == S_CANCEL_ITEM || s == S_STOP_BUILD;
}

/* Handles what every step treats alike: transport errors and 5xx/429 are
 * retried with backoff (a trigger by looking again first), 401 and a second
 * 403 fail. Returns true when it took care of the reply. */
static bool common_errors(struct jk_run *j, const struct jk_reply *r)
{
    const char *what = step_what[j->step];
    if (r->failed || r->status >= 500 || r->status == 429) {
        if (r->failed)
            snprintf(j->last_error, sizeof(j->last_error), "%s", r->error);
        else
            snprintf(j->last_error, sizeof(j->last_error), "HTTP %ld", r->status);
        if (++j->tries >= MAX_TRIES) {
            fail(j, "Jenkins unavailable while %s after %d attempts: %s", what, j->tries,
                 j->last_error);
            return true;
        }
        gw_log(GW_LOG_WARN, j->run->run_id, "jenkins: %s: %s; retrying", what, j->last_error);
        schedule(j, j->step == S_TRIGGER ? S_FIND_BUILD : j->step, backoff_ms(j->tries));
        return true;
    }
    j->tries = 0;
    if (r->status == 401) {
        fail(j,
             "Jenkins rejected the credentials (HTTP 401) while %s; check the worker's "
             "user_env/token_env",
             what);
        return true;
    }
    if (r->status == 403) {
        if (is_post(j->step) && !j->crumb_retried) {
            /* The crumb's session may have expired: one fresh crumb, once. */
            j->crumb_retried = true;
            j->after_crumb = j->step;
            schedule(j, S_CRUMB, 0);
            return true;
        }
        fail(j, "Jenkins refused %s (HTTP 403): %s", what,
             is_post(j->step) ? "no valid CSRF crumb accepted, or the user lacks the permission"
                              : "the user lacks the permission");
        return true;
    }
    if (is_post(j->step) && r->status < 400)
        j->crumb_retried = false;
    return false;
}

static bool ok2xx(const struct jk_reply *r)
{
    return r->status >= 200 && r->status < 300;
}

static json_t *reply_json(const struct jk_reply *r)
{
    /* Parameter values may hold NUL (\u0000): accept, compare by length. */
    return json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
}

static void on_crumb(struct jk_run *j, const struct jk_reply *r)
{
    if (r->status == 404) { /* CSRF protection is off */
        gw_jk_http_set_header(j->http, NULL);
    } else if (ok2xx(r)) {
        json_t *b = reply_json(r);
        const char *f = json_string_value(json_object_get(b, "crumbRequestField"));
        const char *c = json_string_value(json_object_get(b, "crumb"));
        char hdr[512];
        bool ok = f != NULL && c != NULL && *f != '\0' && strlen(f) + strlen(c) < 400 &&
                  strspn(f, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
                      strlen(f) &&
                  strpbrk(c, "\r\n") == NULL;
        if (ok) {
            int n = snprintf(hdr, sizeof(hdr), "%s: %s", f, c);
            ok = n > 0 && (size_t)n < sizeof(hdr) && gw_jk_http_set_header(j->http, hdr) == 0;
        }
        json_decref(b);
        if (!ok) {
            fail(j, "Jenkins returned an unusable CSRF crumb");
            return;
        }
    } else {
        fail(j, "unexpected HTTP %ld from Jenkins' crumb issuer", r->status);
        return;
    }
    schedule(j, j->after_crumb, 0);
}

static void on_find_build(struct jk_run *j, const struct jk_reply *r)
{
    json_t *b;
    const char *url = NULL;
    if (r->status == 404) {
        fail(j, "Jenkins job '%s' not found (HTTP 404)", j->cfg.job);
        return;
    }
    if (!ok2xx(r) || (b = reply_json(r)) == NULL) {
        fail(j, "unexpected answer (HTTP %ld) while %s", r->status, step_what[j->step]);
        return;
    }
    j->build_number = gw_jk_find_build(b, j->run->run_id, &url);
    if (j->build_number > 0) {
        free(j->build_url);
        j->build_url = url ? strdup(url) : NULL;
        gw_log(GW_LOG_INFO, j->run->run_id, "jenkins: following build #%ld of %s for this run",
               j->build_number, j->cfg.job);
        schedule(j, S_LOG, 0);
    } else if (j->queue_vanished) {
        fail(j, "Jenkins queue item %ld is gone and no build of '%s' carries this run", j->queue_id,
             j->cfg.job);
    } else {
        schedule(j, S_FIND_QUEUE, 0);
    }
    json_decref(b);
}

static void on_find_queue(struct jk_run *j, const struct jk_reply *r)
{
    json_t *q;
    if (!ok2xx(r) || (q = reply_json(r)) == NULL) {
        fail(j, "unexpected answer (HTTP %ld) while %s", r->status, step_what[j->step]);
        return;
    }
    j->queue_id = gw_jk_find_queue_item(q, j->cfg.job_path, j->run->run_id);
    json_decref(q);
    if (j->queue_id > 0) {
        gw_log(GW_LOG_INFO, j->run->run_id, "jenkins: following queue item %ld for this run",
               j->queue_id);
        schedule(j, S_QUEUE, 0);
    } else {
        schedule(j, S_TRIGGER, 0);
    }
}

static void on_trigger(struct jk_run *j, const struct jk_reply *r)
{
    if (r->status == 404) {
        fail(j, "Jenkins job '%s' not found (HTTP 404)", j->cfg.job);
        return;
    }
    if (r->status < 200 || r->status >= 400) {
        fail(j, "Jenkins refused to build '%s' (HTTP %ld); is it a parameterized job?", j->cfg.job,
             r->status);
        return;
    }
    /* Only the id is taken from Location: requests go to the configured URL. */
    j->queue_id = gw_jk_queue_id_from_location(r->location);
    if (j->queue_id == 0) {
        fail(j, "Jenkins accepted the build of '%s' without a queue item Location", j->cfg.job);
        return;
    }
    gw_log(GW_LOG_INFO, j->run->run_id, "jenkins: triggered %s, queue item %ld", j->cfg.job,
           j->queue_id);
    schedule(j, S_QUEUE, QUEUE_FIRST_POLL);
}

static void on_queue(struct jk_run *j, const struct jk_reply *r)
{
    json_t *q, *ex, *num;
    if (r->status == 404) {
        /* Items leave /queue/item some minutes after starting: look for the build. */
        if (j->stop != STOP_NONE && j->cancel_sent) {
            end_stopped(j, "Jenkins queue item cancelled");
            return;
        }
        j->queue_vanished = true;
        schedule(j, S_FIND_BUILD, 0);
        return;
    }
    if (!ok2xx(r) || (q = reply_json(r)) == NULL) {
        fail(j, "unexpected answer (HTTP %ld) while %s", r->status, step_what[j->step]);
        return;
    }
    ex = json_object_get(q, "executable");
    num = json_object_get(ex, "number");
    if (json_is_integer(num) && json_integer_value(num) > 0) {
        j->build_number = (long)json_integer_value(num);
        free(j->build_url);
        j->build_url = json_is_string(json_object_get(ex, "url"))
                           ? strdup(json_string_value(json_object_get(ex, "url")))
                           : NULL;
        gw_log(GW_LOG_INFO, j->run->run_id, "jenkins: build #%ld of %s started", j->build_number,
               j->cfg.job);
        schedule(j, S_LOG, 0);
    } else if (json_is_true(json_object_get(q, "cancelled"))) {
        if (j->stop != STOP_NONE)
            end_stopped(j, "Jenkins queue item cancelled");
        else
            end(j, GW_RUN_CANCELLED, NULL, -1, NULL,
                "Jenkins queue item %ld was cancelled in Jenkins", j->queue_id);
    } else {
        schedule(j, S_QUEUE, (uint64_t)j->cfg.poll_ms);
    }
    json_decref(q);
}

static void on_log_chunk(void *arg, const char *data, size_t len)
{
    struct jk_run *j = arg;
    gw_jk_lines_feed(&j->lines, data, len, log_line, j);
}

static void on_log(struct jk_run *j, const struct jk_reply *r)
{
    if (!ok2xx(r)) {
        fail(j, "unexpected answer (HTTP %ld) while %s of build #%ld", r->status,
             step_what[j->step], j->build_number);
        return;
    }
    if (r->text_size >= j->log_start)
        j->log_start = r->text_size;
    if (r->more_data)
        schedule(j, S_LOG, (uint64_t)j->cfg.poll_ms);
    else
        schedule(j, S_BUILD, 0);
}

static void on_build(struct jk_run *j, const struct jk_reply *r)
{
    json_t *b;
    const char *result;
    if (!ok2xx(r) || (b = reply_json(r)) == NULL) {
        fail(j, "unexpected answer (HTTP %ld) while %s #%ld", r->status, step_what[j->step],
             j->build_number);
        return;
    }
    result = json_string_value(json_object_get(b, "result"));
    if (json_is_true(json_object_get(b, "building")) || result == NULL)
        schedule(j, S_LOG, (uint64_t)j->cfg.poll_ms);
    else
        finish_result(j, result);
    json_decref(b);
}

static void on_stop_sent(struct jk_run *j, const struct jk_reply *r, bool *flag, enum step then)
{
    if (r->status >= 400 && r->status != 404) {
        fail(j, "unexpected answer (HTTP %ld) while %s", r->status, step_what[j->step]);
        return;
    }
    *flag = true;
    if (j->stop == STOP_SHUTDOWN)
        end_stopped(j, "stop sent to Jenkins");
    else
        schedule(j, then, 0);
}

static void on_reply(void *arg, const struct jk_reply *r)
{
    struct jk_run *j = arg;
    j->in_request = false;
    if (j->closing || common_errors(j, r))
        return;
    switch (j->step) {
    case S_CRUMB:
        on_crumb(j, r);
        break;
    case S_FIND_BUILD:
        on_find_build(j, r);
        break;
    case S_FIND_QUEUE:
        on_find_queue(j, r);
        break;
    case S_TRIGGER:
        on_trigger(j, r);
        break;
    case S_QUEUE:
        on_queue(j, r);
        break;
    case S_CANCEL_ITEM:
        on_stop_sent(j, r, &j->cancel_sent, S_QUEUE);
        break;
    case S_LOG:
        on_log(j, r);
        break;
    case S_BUILD:
        on_build(j, r);
        break;
    case S_STOP_BUILD:
        on_stop_sent(j, r, &j->stop_sent, S_LOG);
        break;
    }
}

static void go(struct jk_run *j, enum step s)
{
    const char *b = j->cfg.base, *jp = j->cfg.job_path;
    char url[4096];
    const char *post = NULL;
    jk_http_chunk_cb chunk = NULL;
    int n = 0;
    j->step = s;
    switch (s) {
    case S_CRUMB:
        n = snprintf(url, sizeof(url), "%s/crumbIssuer/api/json", b);
        break;
    case S_FIND_BUILD:
        /* tree=builds[number,url,actions[parameters[name,value]]]{0,50} */
        n = snprintf(url, sizeof(url),
                     "%s%s/api/json?tree=builds%%5Bnumber%%2Curl%%2Cactions%%5Bparameters%%5Bname"
                     "%%2Cvalue%%5D%%5D%%5D%%7B0%%2C50%%7D",
                     b, jp);
        break;
    case S_FIND_QUEUE:
        n = snprintf(url, sizeof(url),
                     "%s/queue/api/json?tree=items%%5Bid%%2Ctask%%5Burl%%5D"
                     "%%2Cactions%%5Bparameters%%5Bname%%2Cvalue%%5D%%5D%%5D",
                     b);
        break;
    case S_TRIGGER:
        n = snprintf(url, sizeof(url), "%s%s/buildWithParameters", b, jp);
        post = j->params;
        break;
    case S_QUEUE:
        n = snprintf(url, sizeof(url), "%s/queue/item/%ld/api/json", b, j->queue_id);
        break;
    case S_CANCEL_ITEM:
        n = snprintf(url, sizeof(url), "%s/queue/cancelItem?id=%ld", b, j->queue_id);
        post = "";
        break;
    case S_LOG:
        n = snprintf(url, sizeof(url), "%s%s/%ld/logText/progressiveText?start=%lld", b, jp,
                     j->build_number, j->log_start);
        chunk = on_log_chunk;
        break;
    case S_BUILD:
        n = snprintf(url, sizeof(url), "%s%s/%ld/api/json?tree=number%%2Curl%%2Cbuilding%%2Cresult",
                     b, jp, j->build_number);
        break;
    case S_STOP_BUILD:
        n = snprintf(url, sizeof(url), "%s%s/%ld/stop", b, jp, j->build_number);
        post = "";
        break;
    }
    if (n < 0 || (size_t)n >= sizeof(url)) {
        fail(j, "Jenkins URL too long");
        return;
    }
    if (gw_jk_http_request(j->http, url, post, chunk, on_reply, j) != 0) {
        fail(j, "cannot start an HTTP request to Jenkins");
        return;
    }
    j->in_request = true;
}

/* ------------------------------------------------------------ deadline */

static void on_deadline(uv_timer_t *t)
{
    struct jk_run *j = t->data;
    if (j->closing)
        return;
    if (j->stop == STOP_NONE) {
        gw_log(GW_LOG_WARN, j->run->run_id, "jenkins: timeout after %d s, stopping the build",
               j->run->timeout_seconds);
        j->stop = STOP_TIMEOUT;
        j->grace_started = true;
        uv_timer_start(&j->deadline, on_deadline, STOP_GRACE_MS, 0);
        if (!j->in_request)
            schedule(j, j->next, 0);
        return;
    }
    /* Jenkins did not confirm the stop in time: report it as asked. */
    gw_jk_http_abort(j->http);
    j->in_request = false;
    end_stopped(j, "Jenkins did not confirm the stop in time; the build may still be running");
}

/* ------------------------------------------------------------ the backend (registry.h) */

int gw_jenkins_backend_create(struct gw_run *run, struct gw_error *err)
{
    struct jk_run *j = calloc(1, sizeof(*j));
    int rc;
    if (j == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    if ((rc = gw_jk_config_parse(run->config, &j->cfg, err)) != 0) {
        free(j);
        return rc;
    }
    if ((j->params = gw_jk_params_encode(&j->cfg, run, err)) == NULL) {
        gw_jk_config_finish(&j->cfg);
        free(j);
        return GW_ENOMEM;
    }
    j->run = run;
    j->after_crumb = S_FIND_BUILD;
    gw_jk_lines_init(&j->lines, GW_RUN_LOG_LINE_MAX);
    run->backend_data = j;
    return 0;
}

int gw_jenkins_backend_start(struct gw_run *run, struct gw_error *err)
{
    struct jk_run *j = run->backend_data;
    j->http = gw_jk_http_create(run->loop, j->cfg.user, j->cfg.password);
    if (j->http == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "jenkins: cannot create the HTTP client");
    uv_timer_init(run->loop, &j->delay);
    uv_timer_init(run->loop, &j->deadline);
    j->delay.data = j->deadline.data = j;
    j->open_handles = 3; /* delay, deadline, http */
    j->started = true;
    if (run->timeout_seconds > 0)
        uv_timer_start(&j->deadline, on_deadline, (uint64_t)run->timeout_seconds * 1000, 0);
    gw_log(GW_LOG_INFO, run->run_id, "jenkins: starting %s on %s", j->cfg.job, j->cfg.base);
    schedule(j, S_CRUMB, 0);
    return 0;
}

int gw_jenkins_backend_cancel(struct gw_run *run, enum gw_cancel_reason why)
{
    struct jk_run *j = run->backend_data;
    enum stop want = why == GW_CANCEL_SHUTDOWN ? STOP_SHUTDOWN : STOP_CANCEL;
    if (j == NULL || !j->started || j->closing)
        return GW_ECONFLICT;
    if (j->stop == STOP_NONE || (want == STOP_SHUTDOWN && j->stop != STOP_SHUTDOWN)) {
        gw_log(GW_LOG_INFO, run->run_id, "jenkins: %s, stopping the build",
               want == STOP_SHUTDOWN ? "worker shutdown" : "cancel");
        if (j->stop != STOP_TIMEOUT)
            j->stop = want;
        uv_timer_start(&j->deadline, on_deadline,
                       want == STOP_SHUTDOWN ? SHUTDOWN_GRACE_MS : STOP_GRACE_MS, 0);
        j->grace_started = true;
    }
    if (!j->in_request)
        schedule(j, j->next, 0);
    return 0;
}

void gw_jenkins_backend_destroy(struct gw_run *run)
{
    struct jk_run *j = run->backend_data;
    if (j == NULL)
        return;
    gw_jk_config_finish(&j->cfg);
    free(j->params);
    free(j->build_url);
    json_decref(j->outputs);
    gw_jk_lines_finish(&j->lines);
    free(j);
    run->backend_data = NULL;
}
