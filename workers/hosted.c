/*
 * The worker's side of a hosted run (hosted.h): a backend table whose
 * functions run the real backend inside `gangway supervise` and relay what
 * its spool says. One state machine, host_enter():
 *
 *   CREATED --start/reattach--> RUNNING --RESULT record, or the socket gone--> CLOSING
 *                                  | cancel, detach                               ^
 *                                  v                                              |
 *                               STOPPING -----RESULT record, socket gone ---------+
 *                                                                                 |
 *                                                   last handle closed: finish <--+
 *
 *   state     on entry                                  leaves on
 *   RUNNING   -                                         the result; cancel; detach
 *   STOPPING  cancel: "cancel" sent (the supervisor     the result, or the socket closing
 *             cancels the backend); detach: the
 *             socket closed
 *   CLOSING   "done" sent, the socket and the           the last close callback: finish
 *             supervisor's pidfd closed                 (from the result, or detached, or
 *                                                       failed: the supervisor died)
 */
#include "hosted.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/exec/exec_io.h"
#include "child.h"
#include "gw/fs.h"
#include "gw/log.h"
#include "rundir.h"
#include "spool.h"
#include "supline.h"

#define LINE_MAX_BYTES (4 * 1024 * 1024)

enum host_state { H_CREATED, H_RUNNING, H_STOPPING, H_CLOSING };

struct host_run {
    struct gw_run *run;
    enum host_state state;
    struct gw_child child; /* the first process of the supervisor's double fork */
    uv_pipe_t sock;
    uv_connect_t connect_req;
    int open_handles;
    bool proc_open, sock_open, reattached, detached;
    bool ready; /* the supervisor holds the spec (supline.h) */
    struct exec_lines lines;
    char *spec_text;
    long last_i;
    json_t *result; /* the RESULT record's object, once it came */
};

static void host_enter(struct host_run *h, enum host_state to);

static bool host_may_enter(enum host_state from, enum host_state to)
{
    static const bool next[H_CLOSING + 1][H_CLOSING + 1] = {
        [H_CREATED] = {[H_RUNNING] = true},
        [H_RUNNING] = {[H_STOPPING] = true, [H_CLOSING] = true},
        [H_STOPPING] = {[H_CLOSING] = true},
    };
    return next[from][to];
}

/* ------------------------------------------------------------ finishing */

static void finish(struct host_run *h)
{
    struct gw_run *r = h->run;
    const char *o = json_string_value(json_object_get(h->result, "outcome"));
    const char *reason = json_string_value(json_object_get(h->result, "reason"));
    const char *msg = json_string_value(json_object_get(h->result, "message"));
    int code = (int)json_integer_value(json_object_get(h->result, "exit_code"));
    if (h->detached && h->result == NULL) {
        gw_run_finish_detached(r);
    } else if (o == NULL) {
        gw_run_finish_failed(r, "backend_error", -1,
                             "the run's supervisor ended before the run did");
    } else if (strcmp(o, "succeeded") == 0) {
        json_t *out = json_object_get(h->result, "outputs");
        gw_run_finish_succeeded(r, json_is_object(out) ? json_incref(out) : json_object());
    } else if (strcmp(o, "timed_out") == 0) {
        gw_run_finish_timed_out(r, msg);
    } else if (strcmp(o, "cancelled") == 0) {
        gw_run_finish_cancelled(r, msg);
    } else {
        json_t *out = json_object_get(h->result, "outputs");
        gw_run_finish_failed_with(r, reason ? reason : "backend_error", code, msg,
                                  json_is_object(out) ? json_incref(out) : NULL);
    }
}

static void handle_closed(uv_handle_t *hd)
{
    struct host_run *h = hd->data;
    if (--h->open_handles == 0)
        finish(h);
}

/* ------------------------------------------------------------ the socket */

/* Sends one line to the supervisor; see exec.c's sup_send for what a line
 * that cannot be queued means. */
static void send_line(struct host_run *h, const char *text)
{
    if (h->sock_open && gw_supline_send((uv_stream_t *)&h->sock, text, strlen(text)) < 0)
        gw_log(GW_LOG_ERROR, h->run->run_id, "cannot send \"%.*s\" to the supervisor",
               (int)strcspn(text, "\n"), text);
}

static void record(struct host_run *h, const struct gw_spool_rec *rec)
{
    if (h->result != NULL || rec->i <= h->last_i)
        return; /* already forwarded */
    h->last_i = rec->i;
    if (rec->kind == GW_SPOOL_LOG)
        gw_run_log(h->run, rec->stream, rec->line, rec->len);
    else if (rec->kind == GW_SPOOL_RESULT)
        h->result = json_incref(rec->result);
}

static void spool_rec(void *arg, const struct gw_spool_rec *rec)
{
    record(arg, rec);
}

static void on_line(void *ctx, const char *line, size_t len)
{
    struct host_run *h = ctx;
    struct gw_spool_rec rec;
    if (gw_supline_is(line, len, "ready")) {
        h->ready = true; /* it holds the spec: a detach strands nothing */
        return;
    }
    if (gw_spool_parse(line, len, &rec) < 0) {
        if (gw_supline_is(line, len, "busy") && h->state == H_RUNNING) {
            gw_log(GW_LOG_WARN, h->run->run_id, "another worker is attached to this run");
            h->detached = true;
            host_enter(h, H_STOPPING);
        }
        return;
    }
    record(h, &rec);
    gw_spool_rec_finish(&rec);
}

/* The socket is gone or the result is in: read what the spool holds that
 * the socket did not bring (a supervisor that died), then close. */
static void sock_done(struct host_run *h)
{
    if (h->result == NULL && !h->detached) {
        char path[PATH_MAX + 16];
        struct gw_error err;
        snprintf(path, sizeof(path), "%s/spool", h->run->supervise->run_dir);
        if (gw_spool_read(path, spool_rec, h, NULL, &err) < 0)
            gw_log(GW_LOG_ERROR, h->run->run_id, "%s", err.message);
    }
    if (h->state != H_CLOSING)
        host_enter(h, H_CLOSING);
}

static void alloc_cb(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)hd;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct host_run *h = st->data;
    if (n > 0)
        gw_exec_lines_feed(&h->lines, buf->base, (size_t)n, on_line, h);
    free(buf->base);
    if (h->state == H_CLOSING)
        return;
    if (h->result != NULL || n < 0)
        sock_done(h);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct host_run *h = req->data;
    if (status != 0) {
        if (h->state != H_CLOSING && !h->detached) {
            gw_log(GW_LOG_WARN, h->run->run_id, "supervisor socket: %s", uv_strerror(status));
            sock_done(h);
        }
        return;
    }
    send_line(h, h->reattached ? "attach\n" : h->spec_text);
    uv_read_start((uv_stream_t *)&h->sock, alloc_cb, on_read);
}

static void sup_exit(struct gw_child *c, int64_t exit_status, int term_signal)
{
    struct host_run *h = c->data;
    (void)exit_status;
    (void)term_signal;
    if (h->proc_open) {
        h->proc_open = false;
        gw_child_close(c, handle_closed);
    }
}

/* ------------------------------------------------------------ states */

static void host_enter(struct host_run *h, enum host_state to)
{
    if (!host_may_enter(h->state, to)) {
        gw_log(GW_LOG_ERROR, h->run->run_id, "hosted: no transition from state %d to %d", h->state,
               to);
        abort();
    }
    h->state = to;
    switch (to) {
    case H_CREATED:
    case H_RUNNING:
        break;
    case H_STOPPING:
        if (h->detached) {
            /* The run goes on under its supervisor; we only stop looking. */
            host_enter(h, H_CLOSING);
            return;
        }
        send_line(h, "cancel\n");
        break;
    case H_CLOSING:
        if (h->result != NULL && h->sock_open) {
            /* We have the result: the supervisor may go. At once (5 bytes
             * to a local socket), before the close would cancel it. */
            uv_buf_t b = uv_buf_init((char *)"done\n", 5);
            uv_try_write((uv_stream_t *)&h->sock, &b, 1);
        }
        if (h->sock_open) {
            h->sock_open = false;
            uv_close((uv_handle_t *)&h->sock, handle_closed);
        }
        if (h->proc_open) {
            h->proc_open = false;
            gw_child_close(&h->child, handle_closed);
        }
        break;
    }
}

/* ------------------------------------------------------------ the table */

/* The spec of supervisor.h for a hosted run: the run itself travels (its
 * inputs never touch the disk: the supervisor drops them from meta.json). */
static char *host_spec(const struct gw_run *r)
{
    const struct gw_run_supervision *sv = r->supervise;
    json_t *spec = json_pack(
        "{s:s, s:s, s:i, s:s, s:s?, s:s, s:s, s:s?, s:i, s:i, s:{s:s?, s:s?, s:s?, s:O?, s:O?, "
        "s:i, s:s?, s:s?, s:O?}}",
        "group", sv->group, "run_id", r->run_id, "attempt", r->attempt, "worker_id", sv->worker_id,
        "key", sv->key, "backend", sv->backend, "broker_url", sv->broker_url, "token", sv->token,
        "heartbeat_ms", sv->heartbeat_ms, "linger_seconds", sv->linger_seconds, "run", "action_id",
        r->action_id, "action_version", r->action_version, "requested_by", r->requested_by,
        "inputs", r->inputs, "config", r->config, "timeout_seconds", r->timeout_seconds,
        "resource_key", r->resource_key, "operation", r->operation, "secret_paths",
        r->secret_paths);
    char *text = spec ? json_dumps(spec, JSON_COMPACT) : NULL, *line;
    size_t n;
    json_decref(spec);
    if (text == NULL)
        return NULL;
    n = strlen(text);
    line = realloc(text, n + 2);
    if (line == NULL) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    return line;
}

static int host_create(struct gw_run *run, struct gw_error *err)
{
    struct host_run *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    h->run = run;
    run->backend_data = h;
    return 0;
}

static void init_handles(struct host_run *h)
{
    struct gw_run *run = h->run;
    run->supervised = true;
    gw_exec_lines_init(&h->lines, LINE_MAX_BYTES);
    uv_pipe_init(run->loop, &h->sock, 0);
    h->sock.data = h->connect_req.data = h->child.data = h;
    h->sock_open = true;
    h->open_handles = 1;
}

static void connect_sock(struct host_run *h)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/sock", h->run->supervise->run_dir);
    uv_pipe_connect(&h->connect_req, &h->sock, path, on_connect);
}

static int host_start(struct gw_run *run, struct gw_error *err)
{
    struct host_run *h = run->backend_data;
    char msg[PATH_MAX + 64];
    if (run->supervise == NULL)
        return gw_error_set(err, GW_EINVAL, false, "hosted run without supervision");
    if ((h->spec_text = host_spec(run)) == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    if (gw_rundir_spawn_supervisor(run->loop, &h->child, run->supervise, sup_exit, msg,
                                   sizeof(msg)) < 0)
        return gw_error_set(err, GW_EIO, true, "%s", msg);
    init_handles(h);
    h->child.poll.data = h;
    h->proc_open = true;
    h->open_handles++;
    host_enter(h, H_RUNNING);
    gw_log(GW_LOG_INFO, run->run_id, "%s run started under supervisor pid %d",
           run->supervise->backend, (int)h->child.pid);
    connect_sock(h);
    return 0;
}

static int host_reattach(struct gw_run *run, struct gw_error *err)
{
    struct host_run *h = run->backend_data;
    if (run->supervise == NULL)
        return gw_error_set(err, GW_EINVAL, false, "reattach without supervision");
    h->reattached = true;
    h->ready = true; /* the scan found its meta.json */
    init_handles(h);
    host_enter(h, H_RUNNING);
    gw_log(GW_LOG_INFO, run->run_id, "reattaching to the supervisor in %s",
           run->supervise->run_dir);
    connect_sock(h);
    return 0;
}

static int host_cancel(struct gw_run *run, enum gw_cancel_reason why)
{
    struct host_run *h = run->backend_data;
    (void)why;
    if (h == NULL || h->state != H_RUNNING)
        return GW_ECONFLICT;
    host_enter(h, H_STOPPING);
    return 0;
}

static int host_detach(struct gw_run *run)
{
    struct host_run *h = run->backend_data;
    if (h == NULL || h->state != H_RUNNING)
        return GW_ECONFLICT;
    if (!h->ready)
        return GW_EUNAVAIL; /* not yet: a later worker could not find it */
    h->detached = true;
    host_enter(h, H_STOPPING);
    return 0;
}

static void host_destroy(struct gw_run *run)
{
    struct host_run *h = run->backend_data;
    if (h == NULL)
        return;
    if (run->final_delivered && run->supervise != NULL)
        gw_rundir_remove_later(run->loop, run->supervise->run_dir, NULL);
    gw_exec_lines_finish(&h->lines);
    free(h->spec_text);
    json_decref(h->result);
    free(h);
    run->backend_data = NULL;
}

const struct gw_backend_impl gw_hosted_backend = {
    .name = "hosted",
    .create = host_create,
    .start = host_start,
    .cancel = host_cancel,
    .destroy = host_destroy,
    .reattach = host_reattach,
    .detach = host_detach,
};
