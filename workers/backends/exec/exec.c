/*
 * The exec backend: runs a program (never a shell) in its own process group
 * with a scrubbed environment, inputs JSON on stdin, each stdout/stderr line
 * a log event, outputs from $GANGWAY_OUTPUTS, exit code -> result.
 *
 * Stop sequence (timeout, cancel): SIGTERM to the process group, SIGKILL to
 * the group after kill_grace_seconds. When the leader exits on its own, any
 * process it left in its group is SIGKILLed so the pipes reach EOF.
 * The process must ignore SIGPIPE (the runtime does): a child that exits
 * without reading stdin makes our write fail with EPIPE.
 *
 * One run is one state machine; exec_enter() is the only place its state
 * changes:
 *
 *   CREATED --spawned--> RUNNING --leader exits--> EXITED ---------+
 *      |                    |                                      | exit and
 *      | spawn failed       | timeout, cancel                      | every EOF
 *      |                    v                                      v
 *      |                 STOPPING --leader exits, every EOF--> CLOSING --handles
 *      +-------------------------------------------------------->  |      closed
 *                                                                  v
 *                                                              FINALIZE --> finish
 *
 *   state     on entry (exec_enter)                 leaves on
 *   CREATED   -                                     the spawn (gw_exec_backend_start)
 *   RUNNING   -                                     the leader's exit; timeout; cancel
 *   EXITED    SIGKILL to the group (left-overs     the last pipe EOF
 *             would hold the pipes open)
 *   STOPPING  timeout timer stopped, SIGTERM to    the leader's exit and the last EOF
 *             the group, the kill timer armed      (the kill timer gives left-overs
 *             (SIGKILL after kill_grace_seconds)   their grace)
 *   CLOSING   both timers closed                    the last handle's close callback
 *   FINALIZE  outputs read and workdir removed     - (finish, from the pool's callback)
 *             on the thread pool
 *
 * Supervised (the worker's --supervise, docs/reattach.md): the same states,
 * but the program runs under `gangway supervise` and its lines and exit come
 * over the supervisor's socket as spool records (workers/spool.h). RUNNING
 * starts the supervisor (or, for a reattach, connects to the one an earlier
 * worker started); EXITED is the EXIT record (the supervisor already killed
 * the left-overs, so nothing is signalled); STOPPING sends "cancel" (the
 * supervisor does the SIGTERM/SIGKILL and the timeout itself), or for a
 * detach closes the socket; the socket closing (after "done") and the
 * supervisor's own exit replace the pipes' EOFs and the leader's exit.
 * FINALIZE then keeps the workdir and the run directory: they go once the
 * runtime says the final event was delivered (destroy), so a worker dying
 * in between finds the finished spool and reports it again.
 *
 * Only RUNNING takes a cancel. What is kept beside the state: which of the
 * five handles are still open (each closes on its own: pipes at EOF, the
 * pidfd at exit), and the record the result is made from (spawned, why it
 * was stopped, exit status), which outlives the states it was set in.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "backend.h"
#include "registry.h"
#include "rundir.h"
#include "spool.h"
#include "supline.h"
#include "exec_io.h"
#include "exec_persist.h"
#include "gw/fs.h"
#include "gw/log.h"
#include "child.h"

#define DEFAULT_GRACE_MS 5000

/* In order: ">= ST_CLOSING" means the timers are closed or closing. */
enum exec_state {
    ST_CREATED,
    ST_RUNNING,  /* spawned, waiting for exit and EOFs */
    ST_EXITED,   /* the leader exited on its own, waiting for EOFs */
    ST_STOPPING, /* SIGTERM sent (timeout or cancel) */
    ST_CLOSING,  /* the timers closing, after every other handle */
    ST_FINALIZE, /* reading outputs and removing the workdir on the pool */
};

/* Why a run was stopped before its program ended by itself. */
enum exec_stop { STOP_NONE, STOP_TIMEOUT, STOP_CANCEL, STOP_DETACH };

#define SUP_LINE_MAX (4 * 1024 * 1024)

struct exec_run {
    enum exec_mode mode; /* first, as in struct persist_run (exec_persist.h) */
    struct gw_run *run;
    enum exec_state state;
    char **argv;
    char **envp;
    uint64_t grace_ms;
    char workdir[PATH_MAX];
    char outputs[PATH_MAX + 32];
    char *stdin_data;

    struct gw_child child; /* posix_spawn + pidfd (child.h) */
    uv_pipe_t in, out, err;
    uv_timer_t timeout, kill;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    int open_handles;
    bool proc_open, in_open, out_open, err_open;
    struct exec_lines out_lines, err_lines;

    bool spawned;
    enum exec_stop stopped;
    int64_t exit_status;
    int term_signal;
    char spawn_error[256];

    uv_work_t work;
    json_t *result_outputs;
    int outputs_rc;
    char outputs_msg[256];

    /* Supervised runs only (docs/reattach.md). */
    bool supervised, reattached;
    uv_pipe_t sock; /* to the supervisor */
    bool sock_open;
    uv_connect_t connect_req;
    struct exec_lines sock_lines;
    char *spec_text;
    long last_i;           /* the last spool record forwarded */
    bool got_exit;         /* the EXIT record came */
    bool sup_gone;         /* the socket closed before the EXIT record */
    bool sup_ready;        /* the supervisor holds the spec (supline.h) */
    bool supervise_dir_ok; /* the run directory is there to read the spool from */
};

/* ------------------------------------------------------------ config */

static void strv_free(char **v)
{
    for (char **p = v; p != NULL && *p != NULL; p++)
        free(*p);
    free(v);
}

int gw_exec_backend_create(struct gw_run *run, struct gw_error *err)
{
    json_t *cfg = run->config, *cmd, *env, *grace, *mode, *v;
    const char *k;
    struct exec_run *x;
    size_t n;

    if (!json_is_object(cfg))
        return gw_error_set(err, GW_EINVAL, false, "exec: backend config is not an object");
    json_object_foreach(cfg, k, v)
    {
        if (strcmp(k, "command") != 0 && strcmp(k, "env") != 0 &&
            strcmp(k, "kill_grace_seconds") != 0 && strcmp(k, "mode") != 0)
            return gw_error_set(err, GW_EINVAL, false, "exec: unknown config key '%s'", k);
    }
    cmd = json_object_get(cfg, "command");
    if (!json_is_array(cmd) || (n = json_array_size(cmd)) == 0)
        return gw_error_set(err, GW_EINVAL, false, "exec: \"command\" must be a non-empty array");
    for (size_t i = 0; i < n; i++)
        if (!json_is_string(json_array_get(cmd, i)))
            return gw_error_set(err, GW_EINVAL, false, "exec: command[%zu] is not a string", i);
    if (json_string_length(json_array_get(cmd, 0)) == 0)
        return gw_error_set(err, GW_EINVAL, false, "exec: empty program name");
    env = json_object_get(cfg, "env");
    if (env != NULL) {
        if (!json_is_object(env))
            return gw_error_set(err, GW_EINVAL, false, "exec: \"env\" must be an object");
        json_object_foreach(env, k, v)
        {
            if (!json_is_string(v) || k[0] == '\0' || strchr(k, '=') != NULL ||
                strncmp(k, "GANGWAY_", 8) == 0)
                return gw_error_set(err, GW_EINVAL, false, "exec: bad env entry '%s'", k);
        }
    }
    grace = json_object_get(cfg, "kill_grace_seconds");
    if (grace != NULL &&
        (!json_is_number(grace) || json_number_value(grace) < 0 || json_number_value(grace) > 300))
        return gw_error_set(err, GW_EINVAL, false, "exec: bad kill_grace_seconds");
    mode = json_object_get(cfg, "mode");
    if (mode != NULL && !json_is_string(mode))
        return gw_error_set(err, GW_EINVAL, false, "exec: \"mode\" must be a string");
    if (mode != NULL && strcmp(json_string_value(mode), "persistent") == 0)
        return gw_exec_persist_create(
            run, grace ? (uint64_t)(json_number_value(grace) * 1000.0) : DEFAULT_GRACE_MS, err);
    if (mode != NULL && strcmp(json_string_value(mode), "process") != 0)
        return gw_error_set(err, GW_EINVAL, false,
                            "exec: \"mode\" must be \"process\" or \"persistent\"");

    x = calloc(1, sizeof(*x));
    if (x == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    x->run = run;
    x->grace_ms = grace ? (uint64_t)(json_number_value(grace) * 1000.0) : DEFAULT_GRACE_MS;
    x->argv = calloc(n + 1, sizeof(char *));
    if (x->argv == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if ((x->argv[i] = strdup(json_string_value(json_array_get(cmd, i)))) == NULL)
            goto fail;
    run->backend_data = x;
    return 0;
fail:
    strv_free(x->argv);
    free(x);
    return gw_error_set(err, GW_ENOMEM, true, "out of memory");
}

static char *envvar(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s=%s", name, value);
    return s;
}

/* The scrubbed environment of protocol.md section 4. The action's static env
 * may override PATH/LANG/HOME; GANGWAY_* always come from the runtime. */
static char **build_env(struct exec_run *x)
{
    struct gw_run *r = x->run;
    json_t *env = json_object_get(r->config, "env"), *v;
    const char *k;
    char attempt[16];
    size_t n = 0, cap = json_object_size(env) + 16;
    char **e = calloc(cap, sizeof(char *));
    if (e == NULL)
        return NULL;
    json_object_foreach(env, k, v) e[n++] = envvar(k, json_string_value(v));
    if (json_object_get(env, "PATH") == NULL)
        e[n++] = envvar("PATH", "/usr/local/bin:/usr/bin:/bin");
    if (json_object_get(env, "LANG") == NULL)
        e[n++] = envvar("LANG", "C.UTF-8");
    if (json_object_get(env, "HOME") == NULL)
        e[n++] = envvar("HOME", x->workdir);
    snprintf(attempt, sizeof(attempt), "%d", r->attempt);
    e[n++] = envvar("GANGWAY_RUN_ID", r->run_id ? r->run_id : "");
    e[n++] = envvar("GANGWAY_ATTEMPT", attempt);
    e[n++] = envvar("GANGWAY_ACTION_ID", r->action_id ? r->action_id : "");
    e[n++] = envvar("GANGWAY_ACTION_VERSION", r->action_version ? r->action_version : "");
    e[n++] = envvar("GANGWAY_REQUESTED_BY", r->requested_by ? r->requested_by : "");
    e[n++] = envvar("GANGWAY_OPERATION", r->operation ? r->operation : "create");
    e[n++] = envvar("GANGWAY_RESOURCE_KEY", r->resource_key ? r->resource_key : "");
    e[n++] = envvar("GANGWAY_OUTPUTS", x->outputs);
    e[n++] = envvar("GANGWAY_WORKDIR", x->workdir);
    for (size_t i = 0; i < n; i++)
        if (e[i] == NULL) {
            for (size_t j = 0; j < n; j++)
                free(e[j]);
            free(e);
            return NULL;
        }
    return e;
}

/* ------------------------------------------------------------ states */

static void exec_enter(struct exec_run *x, enum exec_state s);
static void sup_stop_entered(struct exec_run *x);

/* ------------------------------------------------------------ finishing */

static void finalize_work(uv_work_t *req)
{
    struct exec_run *x = container_of(req, struct exec_run, work);
    /* Spawned and closed means exited: the pidfd closes at the exit. */
    if (x->spawned && x->stopped == STOP_NONE && !x->sup_gone && x->term_signal == 0 &&
        x->exit_status == 0)
        x->outputs_rc = gw_exec_outputs_read(x->outputs, &x->result_outputs, x->outputs_msg,
                                             sizeof(x->outputs_msg));
    /* A supervised run's workdir goes with its run directory, once the final
     * event is delivered (destroy): a worker that dies before that reads the
     * outputs again. */
    if (!x->supervised)
        gw_fs_remove_tree(x->workdir);
}

static void finalize_done(uv_work_t *req, int status)
{
    struct exec_run *x = container_of(req, struct exec_run, work);
    struct gw_run *r = x->run;
    char msg[300];
    (void)status;
    if (x->stopped == STOP_DETACH) {
        gw_run_finish_detached(r);
    } else if (x->sup_gone) {
        gw_run_finish_failed(r, "backend_error", -1,
                             "the run's supervisor ended before the program did");
    } else if (!x->spawned) {
        gw_run_finish_failed(r, "spawn_failed", -1, x->spawn_error);
    } else if (x->stopped == STOP_TIMEOUT) {
        snprintf(msg, sizeof(msg), "timed out after %d s; process group killed",
                 r->timeout_seconds);
        gw_run_finish_timed_out(r, msg);
    } else if (x->stopped == STOP_CANCEL) {
        gw_run_finish_cancelled(r, "cancelled; process group killed");
    } else if (x->term_signal != 0) {
        snprintf(msg, sizeof(msg), "killed by signal %d", x->term_signal);
        gw_run_finish_failed(r, "exit_code", 128 + x->term_signal, msg);
    } else if (x->exit_status != 0) {
        snprintf(msg, sizeof(msg), "exited with code %d", (int)x->exit_status);
        gw_run_finish_failed(r, "exit_code", (int)x->exit_status, msg);
    } else if (x->outputs_rc != 0) {
        gw_run_finish_failed(r, "bad_outputs", 0, x->outputs_msg);
    } else {
        json_t *o = x->result_outputs;
        x->result_outputs = NULL;
        gw_run_finish_succeeded(r, o);
    }
}

static void handle_closed(uv_handle_t *h)
{
    struct exec_run *x = h->data;
    if (--x->open_handles == 0)
        exec_enter(x, ST_FINALIZE);
}

static void close_one(struct exec_run *x, uv_handle_t *h, bool *open)
{
    if (!*open)
        return;
    *open = false;
    uv_close(h, handle_closed);
    (void)x;
}

/* Once the process is gone and both pipes hit EOF, the timers go too. */
static void maybe_close_timers(struct exec_run *x)
{
    if (x->proc_open || x->out_open || x->err_open || x->in_open || x->sock_open ||
        x->state >= ST_CLOSING)
        return;
    exec_enter(x, ST_CLOSING);
}

/* ------------------------------------------------------------ process I/O */

static void log_out(void *ctx, const char *line, size_t len)
{
    gw_run_log(ctx, "stdout", line, len);
}

static void log_err(void *ctx, const char *line, size_t len)
{
    gw_run_log(ctx, "stderr", line, len);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct exec_run *x = s->data;
    bool is_out = s == (uv_stream_t *)&x->out;
    struct exec_lines *l = is_out ? &x->out_lines : &x->err_lines;
    exec_line_cb cb = is_out ? log_out : log_err;
    if (n > 0)
        gw_exec_lines_feed(l, buf->base, (size_t)n, cb, x->run);
    free(buf->base);
    if (n < 0) {
        gw_exec_lines_flush(l, cb, x->run);
        close_one(x, (uv_handle_t *)s, is_out ? &x->out_open : &x->err_open);
        maybe_close_timers(x);
    }
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct exec_run *x = req->data;
    (void)status;
    close_one(x, (uv_handle_t *)&x->in, &x->in_open);
    maybe_close_timers(x);
}

static void write_cb(uv_write_t *req, int status)
{
    struct exec_run *x = req->data;
    free(x->stdin_data);
    x->stdin_data = NULL;
    /* EPIPE: the program did not read its inputs; that is its business. */
    if (status == 0 && uv_shutdown(&x->sreq, (uv_stream_t *)&x->in, shutdown_cb) == 0)
        return;
    close_one(x, (uv_handle_t *)&x->in, &x->in_open);
    maybe_close_timers(x);
}

static void signal_group(struct exec_run *x, int sig)
{
    /* Supervised: child.pid is the supervisor, which signals the program. */
    if (!x->supervised && x->spawned && x->child.pid > 0 && kill(-x->child.pid, sig) != 0 &&
        errno != ESRCH)
        gw_log(GW_LOG_WARN, x->run->run_id, "exec: kill(-%d, %d): %s", (int)x->child.pid, sig,
               strerror(errno));
}

static void kill_cb(uv_timer_t *t)
{
    struct exec_run *x = t->data;
    signal_group(x, SIGKILL);
}

static void stop(struct exec_run *x, enum exec_stop why)
{
    x->stopped = why;
    exec_enter(x, ST_STOPPING);
}

static void timeout_cb(uv_timer_t *t)
{
    struct exec_run *x = t->data;
    if (x->state != ST_RUNNING)
        return;
    gw_log(GW_LOG_WARN, x->run->run_id, "exec: timeout after %d s, stopping process group",
           x->run->timeout_seconds);
    stop(x, STOP_TIMEOUT);
}

static void exit_cb(struct gw_child *c, int64_t exit_status, int term_signal)
{
    struct exec_run *x = c->data;
    x->exit_status = exit_status;
    x->term_signal = term_signal;
    uv_timer_stop(&x->timeout);
    /* During a stop sequence the kill timer gives left-overs their grace. */
    if (x->state == ST_RUNNING)
        exec_enter(x, ST_EXITED);
    if (x->proc_open) {
        x->proc_open = false;
        gw_child_close(c, handle_closed);
    }
    maybe_close_timers(x);
}

/* ------------------------------------------------------------ the state machine */

/* The transitions of the diagram at the top of this file. */
static bool exec_may_enter(enum exec_state from, enum exec_state to)
{
    static const bool next[ST_FINALIZE + 1][ST_FINALIZE + 1] = {
        [ST_CREATED] = {[ST_RUNNING] = true, [ST_CLOSING] = true},
        [ST_RUNNING] = {[ST_EXITED] = true, [ST_STOPPING] = true},
        [ST_EXITED] = {[ST_CLOSING] = true},
        [ST_STOPPING] = {[ST_CLOSING] = true},
        [ST_CLOSING] = {[ST_FINALIZE] = true},
    };
    return next[from][to];
}

/* The one place where a run changes state; the entry work of each state is
 * in the table at the top of this file. */
static void exec_enter(struct exec_run *x, enum exec_state s)
{
    if (!exec_may_enter(x->state, s)) {
        /* A broken invariant: a bug in this file, not bad input. */
        gw_log(GW_LOG_ERROR, x->run->run_id, "exec: no transition from state %d to %d", x->state,
               s);
        abort();
    }
    x->state = s;
    switch (s) {
    case ST_CREATED:
    case ST_RUNNING:
        break;
    case ST_EXITED:
        /* Left-overs of a normal exit would hold the pipes open: kill them. */
        signal_group(x, SIGKILL);
        break;
    case ST_STOPPING:
        uv_timer_stop(&x->timeout);
        if (x->supervised) {
            sup_stop_entered(x);
            break;
        }
        signal_group(x, SIGTERM);
        uv_timer_start(&x->kill, kill_cb, x->grace_ms, 0);
        break;
    case ST_CLOSING:
        uv_close((uv_handle_t *)&x->timeout, handle_closed);
        uv_close((uv_handle_t *)&x->kill, handle_closed);
        break;
    case ST_FINALIZE:
        if (uv_queue_work(x->run->loop, &x->work, finalize_work, finalize_done) != 0) {
            /* Cannot happen with a live loop; finish anyway, leaking the dir. */
            finalize_done(&x->work, 0);
        }
        break;
    }
}

/* ------------------------------------------------------------ supervised */

/* Sends one line (with its '\n') to the supervisor. A line that cannot be
 * queued is said: a lost "cancel" is made good by the supervisor's own
 * heartbeat (the broker answers cancel_requested) or by its timeout. */
static void sup_send(struct exec_run *x, const char *text)
{
    if (x->sock_open && gw_supline_send((uv_stream_t *)&x->sock, text, strlen(text)) < 0)
        gw_log(GW_LOG_ERROR, x->run->run_id, "exec: cannot send \"%.*s\" to the supervisor",
               (int)strcspn(text, "\n"), text);
}

/* One spool record, live or replayed: each is forwarded once, in order. */
static void sup_record(struct exec_run *x, const struct gw_spool_rec *rec)
{
    if (x->got_exit || rec->i <= x->last_i)
        return; /* already forwarded */
    if (rec->i != x->last_i + 1)
        gw_log(GW_LOG_ERROR, x->run->run_id, "exec: spool record %ld after %ld: a gap", rec->i,
               x->last_i);
    x->last_i = rec->i;
    if (rec->kind == GW_SPOOL_LOG) {
        gw_run_log(x->run, rec->stream, rec->line, rec->len);
        return;
    }
    if (rec->kind != GW_SPOOL_EXIT) {
        gw_log(GW_LOG_ERROR, x->run->run_id, "exec: a hosted backend's result in an exec spool");
        return;
    }
    x->got_exit = true;
    x->exit_status = rec->exit_status;
    x->term_signal = rec->term_signal;
    if (strcmp(rec->stop, "spawn_failed") == 0) {
        x->spawned = false;
        snprintf(x->spawn_error, sizeof(x->spawn_error), "%s",
                 rec->message ? rec->message : "cannot start the program");
    } else if (strcmp(rec->stop, "timeout") == 0) {
        x->stopped = STOP_TIMEOUT;
    } else if (strcmp(rec->stop, "cancel") == 0) {
        x->stopped = STOP_CANCEL;
    }
    if (x->state == ST_RUNNING)
        exec_enter(x, ST_EXITED);
}

static void sup_spool_rec(void *arg, const struct gw_spool_rec *rec)
{
    sup_record(arg, rec);
}

static void sup_line(void *ctx, const char *line, size_t len)
{
    struct exec_run *x = ctx;
    struct gw_spool_rec rec;
    if (gw_supline_is(line, len, "ready")) {
        x->sup_ready = true; /* it holds the spec: a detach strands nothing */
        return;
    }
    if (gw_spool_parse(line, len, &rec) < 0 && gw_supline_is(line, len, "busy")) {
        /* Another worker has it: it reports the run, not us. */
        gw_log(GW_LOG_WARN, x->run->run_id, "exec: another worker is attached to this run");
        if (x->state == ST_RUNNING)
            stop(x, STOP_DETACH);
        return;
    }
    if (rec.doc == NULL) {
        gw_log(GW_LOG_ERROR, x->run->run_id, "exec: unreadable line from the supervisor");
        return;
    }
    sup_record(x, &rec);
    gw_spool_rec_finish(&rec);
}

/* The socket is gone: after the EXIT record (we said "done"), on a detach,
 * or because the supervisor died; then its finished spool may still hold
 * the end. */
static void sup_closed(struct exec_run *x)
{
    if (!x->got_exit && x->stopped != STOP_DETACH && x->supervise_dir_ok) {
        char path[PATH_MAX + 16];
        struct gw_error err;
        snprintf(path, sizeof(path), "%s/spool", x->run->supervise->run_dir);
        if (gw_spool_read(path, sup_spool_rec, x, NULL, &err) < 0)
            gw_log(GW_LOG_ERROR, x->run->run_id, "exec: %s", err.message);
    }
    if (!x->got_exit && x->stopped != STOP_DETACH) {
        x->sup_gone = true;
        if (x->state == ST_RUNNING)
            exec_enter(x, ST_EXITED);
    }
    close_one(x, (uv_handle_t *)&x->sock, &x->sock_open);
    maybe_close_timers(x);
}

static void sup_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct exec_run *x = st->data;
    if (n > 0)
        gw_exec_lines_feed(&x->sock_lines, buf->base, (size_t)n, sup_line, x);
    free(buf->base);
    if (x->got_exit && x->sock_open) {
        /* We have the result: the supervisor may go. Written at once (5
         * bytes to a local socket), before the close would cancel it. */
        uv_buf_t b = uv_buf_init((char *)"done\n", 5);
        uv_try_write((uv_stream_t *)&x->sock, &b, 1);
        sup_closed(x);
        return;
    }
    if (n < 0)
        sup_closed(x);
}

static void sup_connected(uv_connect_t *req, int status)
{
    struct exec_run *x = req->data;
    if (status != 0) {
        gw_log(GW_LOG_WARN, x->run->run_id, "exec: supervisor socket: %s", uv_strerror(status));
        sup_closed(x);
        return;
    }
    if (x->reattached)
        sup_send(x, "attach\n");
    else
        sup_send(x, x->spec_text);
    uv_read_start((uv_stream_t *)&x->sock, alloc_cb, sup_read);
}

/* The supervisor's first process exited: it forks the supervisor proper and
 * exits at once (cmd_worker.c), so the worker reaps only that one. The
 * run's result comes over the socket (or from the spool when the socket
 * closes). */
static void sup_exit_cb(struct gw_child *c, int64_t exit_status, int term_signal)
{
    struct exec_run *x = c->data;
    (void)exit_status;
    (void)term_signal;
    if (x->proc_open) {
        x->proc_open = false;
        gw_child_close(c, handle_closed);
    }
    maybe_close_timers(x);
}

/* STOPPING's entry for a supervised run. */
static void sup_stop_entered(struct exec_run *x)
{
    if (x->stopped != STOP_DETACH) {
        /* Cancel or shutdown: the supervisor stops the group with its grace. */
        sup_send(x, "cancel\n");
        return;
    }
    /* Detach: the program and its supervisor go on; we only stop looking. */
    close_one(x, (uv_handle_t *)&x->sock, &x->sock_open);
    if (x->proc_open) {
        x->proc_open = false;
        gw_child_close(&x->child, handle_closed);
    }
    maybe_close_timers(x);
}

/* Handles of a supervised run: the socket and the two timers (unused but
 * closed in CLOSING like the unsupervised ones). */
static void sup_init_handles(struct exec_run *x)
{
    struct gw_run *run = x->run;
    run->supervised = x->supervised = true;
    gw_exec_lines_init(&x->sock_lines, SUP_LINE_MAX);
    uv_pipe_init(run->loop, &x->sock, 0);
    uv_timer_init(run->loop, &x->timeout);
    uv_timer_init(run->loop, &x->kill);
    x->sock.data = x->timeout.data = x->kill.data = x->connect_req.data = x;
    x->child.data = x;
    x->sock_open = true;
    x->open_handles = 3;
}

static void sup_connect(struct exec_run *x)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/sock", x->run->supervise->run_dir);
    x->supervise_dir_ok = true;
    uv_pipe_connect(&x->connect_req, &x->sock, path, sup_connected);
}

/* The spec line of supervisor.h. */
static char *sup_spec(struct exec_run *x)
{
    const struct gw_run *r = x->run;
    const struct gw_run_supervision *sv = r->supervise;
    json_t *argv = json_array(), *envp = json_array(), *spec;
    char *text, *line;
    size_t n;
    for (char **p = x->argv; *p != NULL; p++)
        json_array_append_new(argv, json_string(*p));
    for (char **p = x->envp; *p != NULL; p++)
        json_array_append_new(envp, json_string(*p));
    spec = json_pack("{s:s, s:s, s:i, s:s, s:s?, s:o, s:o, s:s, s:s, s:i, s:I, s:s, s:s?, s:i, "
                     "s:i, s:s, s:s}",
                     "group", sv->group, "run_id", r->run_id, "attempt", r->attempt, "worker_id",
                     sv->worker_id, "key", sv->key, "argv", argv, "envp", envp, "cwd", x->workdir,
                     "stdin", x->stdin_data, "timeout_seconds", r->timeout_seconds, "grace_ms",
                     (json_int_t)x->grace_ms, "broker_url", sv->broker_url, "token", sv->token,
                     "heartbeat_ms", sv->heartbeat_ms, "linger_seconds", sv->linger_seconds,
                     "workdir", x->workdir, "outputs", x->outputs);
    text = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
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

static int start_supervised(struct exec_run *x, struct gw_error *err)
{
    char msg[PATH_MAX + 64];
    x->spec_text = sup_spec(x);
    if (x->spec_text == NULL) {
        gw_fs_remove_tree(x->workdir);
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    }
    if (gw_rundir_spawn_supervisor(x->run->loop, &x->child, x->run->supervise, sup_exit_cb, msg,
                                   sizeof(msg)) < 0) {
        gw_fs_remove_tree(x->workdir);
        return gw_error_set(err, GW_EIO, true, "exec: %s", msg);
    }
    x->child.poll.data = x;
    x->proc_open = true;
    sup_init_handles(x);
    x->open_handles = 4; /* and the supervisor's pidfd */
    x->spawned = true;
    exec_enter(x, ST_RUNNING);
    gw_log(GW_LOG_INFO, x->run->run_id, "exec: started %s under supervisor pid %d", x->argv[0],
           (int)x->child.pid);
    sup_connect(x);
    return 0;
}

/* A run an earlier worker process started: its workdir and outputs come
 * from the supervisor's meta.json (start-up: a small blocking read). */
int gw_exec_backend_reattach(struct gw_run *run, struct gw_error *err)
{
    struct exec_run *x = run->backend_data;
    char path[PATH_MAX + 16];
    json_t *meta;
    if (x != NULL && x->mode == EXEC_MODE_PERSISTENT)
        return gw_error_set(err, GW_EINVAL, false,
                            "exec: a persistent program's run is never supervised");
    if (run->supervise == NULL)
        return gw_error_set(err, GW_EINVAL, false, "exec: reattach without supervision");
    snprintf(path, sizeof(path), "%s/meta.json", run->supervise->run_dir);
    meta = json_load_file(path, 0, NULL);
    if (!json_is_string(json_object_get(meta, "workdir")) ||
        !json_is_string(json_object_get(meta, "outputs"))) {
        json_decref(meta);
        return gw_error_set(err, GW_EIO, false, "exec: %s unreadable", path);
    }
    snprintf(x->workdir, sizeof(x->workdir), "%s",
             json_string_value(json_object_get(meta, "workdir")));
    snprintf(x->outputs, sizeof(x->outputs), "%s",
             json_string_value(json_object_get(meta, "outputs")));
    json_decref(meta);
    x->reattached = true;
    x->sup_ready = true; /* its meta.json was read above */
    x->spawned = true;
    sup_init_handles(x);
    exec_enter(x, ST_RUNNING);
    gw_log(GW_LOG_INFO, run->run_id, "exec: reattaching to the supervisor in %s",
           run->supervise->run_dir);
    sup_connect(x);
    return 0;
}

int gw_exec_backend_detach(struct gw_run *run)
{
    struct exec_run *x = run->backend_data;
    if (x == NULL || x->mode == EXEC_MODE_PERSISTENT || !x->supervised || x->state != ST_RUNNING)
        return GW_ECONFLICT;
    if (!x->sup_ready)
        return GW_EUNAVAIL; /* not yet: a later worker could not find it */
    gw_log(GW_LOG_INFO, run->run_id, "exec: detaching; the run goes on under its supervisor");
    stop(x, STOP_DETACH);
    return 0;
}

/* ------------------------------------------------------------ start */

int gw_exec_backend_start(struct gw_run *run, struct gw_error *err)
{
    struct exec_run *x = run->backend_data;
    const char *tmp = getenv("TMPDIR");
    uv_buf_t buf;
    int rc;

    if (x->mode == EXEC_MODE_PERSISTENT)
        return gw_exec_persist_start(run, err);
    snprintf(x->workdir, sizeof(x->workdir), "%s/gangway-run-XXXXXX",
             tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(x->workdir) == NULL)
        return gw_error_set(err, GW_EIO, true, "exec: mkdtemp %s: %s", x->workdir, strerror(errno));
    snprintf(x->outputs, sizeof(x->outputs), "%s/outputs.json", x->workdir);
    x->envp = build_env(x);
    x->stdin_data = json_dumps(run->inputs ? run->inputs : json_object(), JSON_COMPACT);
    if (x->envp == NULL || x->stdin_data == NULL) {
        gw_fs_remove_tree(x->workdir);
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    }
    gw_exec_lines_init(&x->out_lines, GW_RUN_LOG_LINE_MAX);
    gw_exec_lines_init(&x->err_lines, GW_RUN_LOG_LINE_MAX);
    if (run->supervise != NULL)
        return start_supervised(x, err);

    /* From here on every failure goes through the close path and finish. */
    uv_pipe_init(run->loop, &x->in, 0);
    uv_pipe_init(run->loop, &x->out, 0);
    uv_pipe_init(run->loop, &x->err, 0);
    uv_timer_init(run->loop, &x->timeout);
    uv_timer_init(run->loop, &x->kill);
    x->in.data = x->out.data = x->err.data = x->timeout.data = x->kill.data = x;
    x->child.data = x->wreq.data = x->sreq.data = x;
    x->in_open = x->out_open = x->err_open = true;
    x->open_handles = 5;

    rc = gw_child_spawn(run->loop, &x->child, x->argv, x->envp, x->workdir, &x->in, &x->out,
                        &x->err, exit_cb);
    if (rc != 0) {
        /* rc is -errno, which on Linux is libuv's UV_E* code (libuv 1.44
         * has no name for ENOEXEC). */
        snprintf(x->spawn_error, sizeof(x->spawn_error), "cannot start %s: %s", x->argv[0],
                 rc == -ENOEXEC ? "exec format error (a script needs a #! line)" : uv_strerror(rc));
        gw_log(GW_LOG_WARN, run->run_id, "exec: %s", x->spawn_error);
        free(x->stdin_data);
        x->stdin_data = NULL;
        close_one(x, (uv_handle_t *)&x->in, &x->in_open);
        close_one(x, (uv_handle_t *)&x->out, &x->out_open);
        close_one(x, (uv_handle_t *)&x->err, &x->err_open);
        maybe_close_timers(x);
        return 0;
    }
    /* The pidfd's poll handle is open from here and closes after the exit. */
    x->child.poll.data = x;
    x->proc_open = true;
    x->open_handles++;
    x->spawned = true;
    exec_enter(x, ST_RUNNING);
    gw_log(GW_LOG_INFO, run->run_id, "exec: started %s (pid %d)", x->argv[0], (int)x->child.pid);
    uv_read_start((uv_stream_t *)&x->out, alloc_cb, read_cb);
    uv_read_start((uv_stream_t *)&x->err, alloc_cb, read_cb);
    buf = uv_buf_init(x->stdin_data, (unsigned)strlen(x->stdin_data));
    if (uv_write(&x->wreq, (uv_stream_t *)&x->in, &buf, 1, write_cb) != 0) {
        free(x->stdin_data);
        x->stdin_data = NULL;
        close_one(x, (uv_handle_t *)&x->in, &x->in_open);
    }
    if (run->timeout_seconds > 0)
        uv_timer_start(&x->timeout, timeout_cb, (uint64_t)run->timeout_seconds * 1000, 0);
    return 0;
}

int gw_exec_backend_cancel(struct gw_run *run, enum gw_cancel_reason why)
{
    struct exec_run *x = run->backend_data;
    if (x != NULL && x->mode == EXEC_MODE_PERSISTENT)
        return gw_exec_persist_cancel(run, why);
    if (x == NULL || x->state != ST_RUNNING)
        return GW_ECONFLICT;
    gw_log(GW_LOG_INFO, run->run_id, "exec: cancel, stopping process group");
    stop(x, STOP_CANCEL);
    return 0;
}

void gw_exec_backend_destroy(struct gw_run *run)
{
    struct exec_run *x = run->backend_data;
    if (x == NULL)
        return;
    if (x->mode == EXEC_MODE_PERSISTENT) {
        gw_exec_persist_destroy(run);
        return;
    }
    if (x->supervised) {
        if (run->final_delivered)
            gw_rundir_remove_later(run->loop, x->workdir, run->supervise->run_dir);
        free(x->spec_text);
        gw_exec_lines_finish(&x->sock_lines);
    }
    strv_free(x->argv);
    strv_free(x->envp);
    free(x->stdin_data);
    json_decref(x->result_outputs);
    gw_exec_lines_finish(&x->out_lines);
    gw_exec_lines_finish(&x->err_lines);
    free(x);
    run->backend_data = NULL;
}

void gw_exec_backend_shutdown(uv_loop_t *loop)
{
    (void)loop;
    gw_exec_persist_shutdown();
}
