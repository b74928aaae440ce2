/*
 * The run supervisor (supervisor.h). One state machine, sup_enter():
 *
 *   WAIT_SPEC --spec--> RUNNING --leader exits--> EXITED --every EOF--> ENDED
 *       |                  | timeout, cancel,               ^             |
 *       | no spec in 30 s  | lost                           |             | "done", lost,
 *       v                  v                                |             | or linger over
 *      QUIT <------------ STOPPING --leader exits, every EOF+             v
 *                                                                        QUIT
 *
 *   state      on entry                                   leaves on
 *   WAIT_SPEC  spec timer armed                           the spec line; the timer
 *   RUNNING    heartbeats, timeout timer                  exit; timeout; cancel; lost
 *   EXITED     SIGKILL to the group (left-overs)          the last EOF
 *   STOPPING   SIGTERM to the group, SIGKILL timer        exit and the last EOF
 *   ENDED      EXIT record spooled and sent; linger       "done"; lost; linger over
 *              timer (heartbeats go on)
 *   QUIT       lost: the run dir removed; the loop        -
 *              stopped (the process exits)
 */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "backend.h"
#include "backends/exec/exec_io.h"
#include "child.h"
#include "gw/fs.h"
#include "gw/http_client.h"
#include "gw/log.h"
#include "spool.h"
#include "supline.h"

#define SPEC_WAIT_MS   30000
#define CONN_LINE_MAX  (4 * 1024 * 1024)
#define DEFAULT_LINGER 3600

enum sup_state { S_WAIT_SPEC, S_RUNNING, S_EXITED, S_STOPPING, S_ENDED, S_QUIT };
enum sup_stop { STOP_NONE, STOP_TIMEOUT, STOP_CANCEL, STOP_LOST };

struct sconn;

struct sup {
    uv_loop_t *loop;
    enum sup_state state;
    char dir[PATH_MAX];
    char spool_path[PATH_MAX + 16];
    uv_pipe_t listener;
    struct sconn *attached; /* the worker receiving records, or NULL */
    bool meta_ok;           /* meta.json written: a later worker can find the run */
    json_t *spec;
    const char *run_id, *worker_id;
    int attempt;

    struct gw_child child;
    uv_pipe_t in, out, err;
    bool proc_open, in_open, out_open, err_open, spawned;
    struct exec_lines out_lines, err_lines;
    char *stdin_data;
    uv_write_t wreq;
    uv_shutdown_t sreq;

    uv_timer_t timeout, kill, heartbeat, spec_timer, linger;
    struct gw_http_client *http;
    bool hb_inflight;
    char *hb_url, *hb_auth, *hb_body;
    uint64_t grace_ms;

    int spool_fd;
    long next_i;
    enum sup_stop stopped;
    int64_t exit_status;
    int term_signal;
    char spawn_error[256];

    /* Hosted (the spec names a "backend"): that backend's run goes on in
     * this process, its sink spooling lines and the result. */
    bool hosted;
    const struct gw_backend_impl *be;
    struct gw_run run;
    char *result_text;
    size_t result_len;
};

struct sconn {
    uv_pipe_t pipe;
    struct sup *s;
    struct exec_lines lines;
    bool first_seen, closing;
};

static void sup_enter(struct sup *s, enum sup_state to);
static void conn_close(struct sconn *c);

/* ------------------------------------------------------------ sending */

/* Sends `text` to a connection; a failed write is a worker gone. */
static void conn_send(struct sconn *c, const char *text, size_t n)
{
    if (c->closing)
        return;
    if (gw_supline_send((uv_stream_t *)&c->pipe, text, n) < 0) {
        /* The worker misses this line: drop the connection so it reads the
         * rest from the spool, in order, when it sees the socket close. */
        gw_log(GW_LOG_WARN, c->s->run_id, "supervise: cannot send to the worker; disconnecting");
        conn_close(c);
    }
}

static void conn_closed(uv_handle_t *h)
{
    struct sconn *c = h->data;
    gw_exec_lines_finish(&c->lines);
    free(c);
}

static void conn_close(struct sconn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->s->attached == c) {
        c->s->attached = NULL;
        gw_log(GW_LOG_INFO, c->s->run_id, "supervise: worker detached; the run goes on");
    }
    uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

/* Appends a record to the spool (blocking: our own process) and sends it to
 * the attached worker. Records are numbered here, in the order they are
 * spooled: the replay of a later attach sends exactly the same. */
static void emit(struct sup *s, char *text, size_t n)
{
    size_t off = 0;
    /* n is meaningless when text is NULL. */
    if (text == NULL) {
        gw_log(GW_LOG_ERROR, s->run_id, "supervise: out of memory, record lost");
        return;
    }
    while (off < n) {
        ssize_t w = write(s->spool_fd, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            gw_log(GW_LOG_ERROR, s->run_id, "supervise: spool write: %s", strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    if (s->attached != NULL)
        conn_send(s->attached, text, n);
    free(text);
}

static void log_line(struct sup *s, const char *stream, const char *line, size_t len)
{
    size_t n = 0;
    long i = s->next_i++;
    char *text = gw_spool_log_text(i, stream, line, len, &n);
    emit(s, text, n);
}

static void log_out(void *ctx, const char *line, size_t len)
{
    log_line(ctx, "stdout", line, len);
}

static void log_err(void *ctx, const char *line, size_t len)
{
    log_line(ctx, "stderr", line, len);
}

/* ------------------------------------------------------------ replay */

struct replay {
    struct sconn *c;
};

static void replay_rec(void *arg, const struct gw_spool_rec *rec)
{
    struct replay *r = arg;
    size_t n = 0;
    char *text = gw_spool_rec_text(rec, &n);
    if (text != NULL)
        conn_send(r->c, text, n);
    free(text);
}

/* ------------------------------------------------------------ the program */

static void signal_group(struct sup *s, int sig)
{
    if (s->spawned && s->child.pid > 0 && kill(-s->child.pid, sig) != 0 && errno != ESRCH)
        gw_log(GW_LOG_WARN, s->run_id, "supervise: kill(-%d, %d): %s", (int)s->child.pid, sig,
               strerror(errno));
}

static void handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void maybe_ended(struct sup *s)
{
    if (s->proc_open || s->out_open || s->err_open || s->in_open)
        return;
    if (s->state == S_RUNNING || s->state == S_EXITED || s->state == S_STOPPING)
        sup_enter(s, S_ENDED);
}

static void close_one(uv_handle_t *h, bool *open)
{
    if (!*open)
        return;
    *open = false;
    uv_close(h, handle_closed);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct sup *s = st->data;
    bool is_out = st == (uv_stream_t *)&s->out;
    struct exec_lines *l = is_out ? &s->out_lines : &s->err_lines;
    exec_line_cb cb = is_out ? log_out : log_err;
    if (n > 0)
        gw_exec_lines_feed(l, buf->base, (size_t)n, cb, s);
    free(buf->base);
    if (n < 0) {
        gw_exec_lines_flush(l, cb, s);
        close_one((uv_handle_t *)st, is_out ? &s->out_open : &s->err_open);
        maybe_ended(s);
    }
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct sup *s = req->data;
    (void)status;
    close_one((uv_handle_t *)&s->in, &s->in_open);
    maybe_ended(s);
}

static void stdin_written(uv_write_t *req, int status)
{
    struct sup *s = req->data;
    free(s->stdin_data);
    s->stdin_data = NULL;
    if (status == 0 && uv_shutdown(&s->sreq, (uv_stream_t *)&s->in, shutdown_cb) == 0)
        return;
    close_one((uv_handle_t *)&s->in, &s->in_open);
    maybe_ended(s);
}

static void exit_cb(struct gw_child *c, int64_t exit_status, int term_signal)
{
    struct sup *s = c->data;
    s->exit_status = exit_status;
    s->term_signal = term_signal;
    uv_timer_stop(&s->timeout);
    if (s->state == S_RUNNING)
        sup_enter(s, S_EXITED);
    if (s->proc_open) {
        s->proc_open = false;
        gw_child_close(c, handle_closed);
    }
    maybe_ended(s);
}

static void kill_cb(uv_timer_t *t)
{
    signal_group(t->data, SIGKILL);
}

static void stop(struct sup *s, enum sup_stop why)
{
    if (s->state != S_RUNNING)
        return;
    s->stopped = why;
    sup_enter(s, S_STOPPING);
}

/* ------------------------------------------------------------ a hosted backend */

static void host_log(struct gw_run *run, const char *stream, const char *line, size_t len)
{
    log_line(run->sink_data, stream, line, len);
}

static void host_finish(struct gw_run *run, const struct gw_run_result *r)
{
    struct sup *s = run->sink_data;
    s->result_text = gw_spool_result_text(s->next_i++, (int)r->outcome, r->outputs, r->reason,
                                          r->exit_code, r->message, &s->result_len);
    if (s->state == S_RUNNING || s->state == S_STOPPING)
        sup_enter(s, S_ENDED);
}

static const struct gw_run_sink host_sink = {.log = host_log, .finish = host_finish};

/* Starts the run of the spec's "backend" here, as a worker would. */
static void start_hosted(struct sup *s)
{
    json_t *r = json_object_get(s->spec, "run");
    const char *name = json_string_value(json_object_get(s->spec, "backend"));
    struct gw_run *run = &s->run;
    struct gw_error err;
    json_t *paths;

    run->loop = s->loop;
    run->run_id = s->run_id;
    run->attempt = s->attempt;
    run->sink = &host_sink;
    run->sink_data = s;
    s->be = gw_backend_lookup(name);
    if (s->be == NULL || !json_is_object(r)) {
        gw_run_finish_failed(run, "backend_error", -1, "supervise: no such backend");
        return;
    }
    run->action_id = json_string_value(json_object_get(r, "action_id"));
    run->action_version = json_string_value(json_object_get(r, "action_version"));
    run->requested_by = json_string_value(json_object_get(r, "requested_by"));
    run->inputs = json_object_get(r, "inputs");
    run->config = json_object_get(r, "config");
    run->timeout_seconds = (int)json_integer_value(json_object_get(r, "timeout_seconds"));
    run->resource_key = json_string_value(json_object_get(r, "resource_key"));
    if (run->resource_key == NULL)
        run->resource_key = s->run_id;
    run->operation = json_string_value(json_object_get(r, "operation"));
    if (run->operation == NULL)
        run->operation = "create";
    paths = json_object_get(r, "secret_paths");
    if (!json_is_array(paths)) {
        paths = json_array();
        json_object_set_new(r, "secret_paths", paths);
    }
    run->secret_paths = paths;
    run->secret_values = gw_run_secret_values(run->inputs, paths);
    gw_error_clear(&err);
    if (s->be->create(run, &err) < 0) {
        gw_run_finish_failed(run, "backend_error", -1, err.message);
        return;
    }
    if (s->be->start(run, &err) < 0) {
        gw_run_finish_failed(run, "spawn_failed", -1, err.message);
        return;
    }
    gw_log(GW_LOG_INFO, s->run_id, "supervise: started the %s run", name);
}

static void timeout_cb(uv_timer_t *t)
{
    struct sup *s = t->data;
    gw_log(GW_LOG_WARN, s->run_id, "supervise: timeout, stopping the process group");
    stop(s, STOP_TIMEOUT);
}

static char **strv_of(json_t *a)
{
    size_t n = json_array_size(a);
    char **v = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; v != NULL && i < n; i++)
        v[i] = (char *)json_string_value(json_array_get(a, i)); /* borrowed from the spec */
    return v;
}

/* Starts the program of the spec; a failure is the run's result. */
static void start_program(struct sup *s)
{
    char **argv = strv_of(json_object_get(s->spec, "argv"));
    char **envp = strv_of(json_object_get(s->spec, "envp"));
    const char *cwd = json_string_value(json_object_get(s->spec, "cwd"));
    const char *in = json_string_value(json_object_get(s->spec, "stdin"));
    int rc = -ENOMEM;
    uv_buf_t buf;

    uv_pipe_init(s->loop, &s->in, 0);
    uv_pipe_init(s->loop, &s->out, 0);
    uv_pipe_init(s->loop, &s->err, 0);
    s->in.data = s->out.data = s->err.data = s->child.data = s->wreq.data = s->sreq.data = s;
    if (argv != NULL && argv[0] != NULL && envp != NULL)
        rc = gw_child_spawn(s->loop, &s->child, argv, envp, cwd, &s->in, &s->out, &s->err, exit_cb);
    if (rc != 0) {
        snprintf(s->spawn_error, sizeof(s->spawn_error), "cannot start %s: %s",
                 argv && argv[0] ? argv[0] : "?",
                 rc == -ENOEXEC ? "exec format error (a script needs a #! line)" : uv_strerror(rc));
        gw_log(GW_LOG_WARN, s->run_id, "supervise: %s", s->spawn_error);
        uv_close((uv_handle_t *)&s->in, handle_closed);
        uv_close((uv_handle_t *)&s->out, handle_closed);
        uv_close((uv_handle_t *)&s->err, handle_closed);
        free(argv);
        free(envp);
        sup_enter(s, S_ENDED);
        return;
    }
    free(argv);
    free(envp);
    s->spawned = s->proc_open = s->in_open = s->out_open = s->err_open = true;
    s->child.poll.data = s;
    gw_log(GW_LOG_INFO, s->run_id, "supervise: started the program (pid %d)", (int)s->child.pid);
    uv_read_start((uv_stream_t *)&s->out, alloc_cb, read_cb);
    uv_read_start((uv_stream_t *)&s->err, alloc_cb, read_cb);
    s->stdin_data = strdup(in != NULL ? in : "{}");
    buf = uv_buf_init(s->stdin_data, s->stdin_data ? (unsigned)strlen(s->stdin_data) : 0);
    if (s->stdin_data == NULL ||
        uv_write(&s->wreq, (uv_stream_t *)&s->in, &buf, 1, stdin_written) != 0) {
        free(s->stdin_data);
        s->stdin_data = NULL;
        close_one((uv_handle_t *)&s->in, &s->in_open);
    }
}

/* ------------------------------------------------------------ heartbeats */

static void hb_done(void *arg, const struct gw_http_response *resp, const struct gw_error *err)
{
    struct sup *s = arg;
    long status = resp != NULL ? resp->status : 0;
    json_t *j = resp != NULL ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    const char *result = json_string_value(json_object_get(j, "result"));
    const char *detail = json_string_value(json_object_get(j, "detail"));
    s->hb_inflight = false;
    if (status == 200 && result != NULL && strcmp(result, "cancel_requested") == 0) {
        if (s->state == S_RUNNING)
            gw_log(GW_LOG_INFO, s->run_id, "supervise: the run was cancelled; stopping it");
        stop(s, STOP_CANCEL);
    } else if (status == 404 || status == 409) {
        /* Not this attempt's any more (the reaper gave it up, a newer
         * attempt runs): nobody may report it, and the program must stop. */
        gw_log(GW_LOG_WARN, s->run_id, "supervise: the broker refused the heartbeat (%s)",
               detail ? detail : "not found");
        if (s->state == S_RUNNING) {
            stop(s, STOP_LOST);
        } else if (s->state == S_ENDED) {
            s->stopped = STOP_LOST;
            sup_enter(s, S_QUIT);
        } else {
            s->stopped = STOP_LOST;
        }
    } else if (status != 200) {
        gw_log(GW_LOG_WARN, s->run_id, "supervise: heartbeat: %s",
               status ? "unexpected HTTP status" : (err ? err->message : "?"));
    }
    json_decref(j);
}

static void heartbeat_cb(uv_timer_t *t)
{
    struct sup *s = t->data;
    const char *headers[] = {"Content-Type: application/json", s->hb_auth, NULL};
    struct gw_http_request_options o = {.url = s->hb_url,
                                        .headers = headers,
                                        .body = s->hb_body,
                                        .body_len = strlen(s->hb_body),
                                        .connect_timeout_ms = 3000,
                                        .timeout_ms = 10000,
                                        .max_body = 65536};
    struct gw_error err;
    if (s->hb_inflight || s->http == NULL)
        return;
    if (gw_http_client_request(s->http, &o, hb_done, s, &err) != NULL)
        s->hb_inflight = true;
    else
        gw_log(GW_LOG_WARN, s->run_id, "supervise: heartbeat: %s", err.message);
}

static int heartbeat_setup(struct sup *s, struct gw_error *err)
{
    const char *url = json_string_value(json_object_get(s->spec, "broker_url"));
    const char *token = json_string_value(json_object_get(s->spec, "token"));
    json_t *body;
    size_t n;
    if (url == NULL)
        return gw_error_set(err, GW_EINVAL, false, "spec without broker_url");
    n = strlen(url) + strlen(s->run_id) + 64;
    if ((s->hb_url = malloc(n)) == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    snprintf(s->hb_url, n, "%s%sinternal/v1/runs/%s/heartbeat", url,
             url[0] && url[strlen(url) - 1] == '/' ? "" : "/", s->run_id);
    if (token != NULL && *token != '\0') {
        n = strlen(token) + 32;
        if ((s->hb_auth = malloc(n)) == NULL)
            return gw_error_set(err, GW_ENOMEM, true, "out of memory");
        snprintf(s->hb_auth, n, "Authorization: Bearer %s", token);
    }
    body = json_pack("{s:i, s:s}", "attempt", s->attempt, "worker_id", s->worker_id);
    s->hb_body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (s->hb_body == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    s->http = gw_http_client_create(s->loop, NULL, err);
    return s->http != NULL ? 0 : -1;
}

/* ------------------------------------------------------------ the spec */

/* meta.json: what a later worker needs to reattach, no secret in it. */
static int write_meta(struct sup *s, struct gw_error *err)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
    json_t *meta = json_deep_copy(s->spec);
    int rc;
    if (meta == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    json_object_del(meta, "stdin");
    json_object_del(meta, "envp");
    json_object_del(meta, "token");
    json_object_del(meta, "run"); /* a hosted run's inputs */
    json_object_set_new(meta, "supervisor_pid", json_integer(getpid()));
    json_object_set_new(meta, "program_pid", json_integer(s->spawned ? s->child.pid : 0));
    snprintf(path, sizeof(path), "%s/meta.json", s->dir);
    snprintf(tmp, sizeof(tmp), "%s/meta.json.tmp", s->dir);
    rc = json_dump_file(meta, tmp, JSON_COMPACT);
    json_decref(meta);
    if (rc != 0 || rename(tmp, path) != 0)
        return gw_error_set(err, GW_EIO, true, "cannot write %s", path);
    return 0;
}

static int take_spec(struct sup *s, const char *line, size_t len, struct gw_error *err)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    json_t *a = json_object_get(j, "attempt");
    bool hosted = json_is_string(json_object_get(j, "backend"));
    if (!json_is_object(j) || !json_is_string(json_object_get(j, "run_id")) ||
        !json_is_integer(a) || !json_is_string(json_object_get(j, "worker_id")) ||
        (!hosted && (!json_is_array(json_object_get(j, "argv")) ||
                     !json_is_array(json_object_get(j, "envp"))))) {
        json_decref(j);
        return gw_error_set(err, GW_EINVAL, false, "malformed spec");
    }
    s->spec = j;
    s->hosted = hosted;
    s->run_id = json_string_value(json_object_get(j, "run_id"));
    s->worker_id = json_string_value(json_object_get(j, "worker_id"));
    s->attempt = (int)json_integer_value(a);
    s->grace_ms = (uint64_t)json_integer_value(json_object_get(j, "grace_ms"));
    s->spool_fd = open(s->spool_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->spool_fd < 0)
        return gw_error_set(err, GW_EIO, true, "spool: %s", strerror(errno));
    return heartbeat_setup(s, err);
}

/* ------------------------------------------------------------ connections */

static void on_line(void *ctx, const char *line, size_t len)
{
    struct sconn *c = ctx;
    struct sup *s = c->s;
    bool first = !c->first_seen;
    c->first_seen = true;
    if (c->closing)
        return;
    if (s->state == S_WAIT_SPEC) {
        struct gw_error err;
        if (take_spec(s, line, len, &err) < 0) {
            gw_log_error("supervise: %s; quitting", err.message);
            conn_close(c);
            sup_enter(s, S_QUIT);
            return;
        }
        s->attached = c; /* the worker that started us, attached from the start */
        sup_enter(s, S_RUNNING);
        /* meta.json is written: a later worker can find us, so the one
         * attached may now let go (supline.h). */
        if (s->attached == c && s->meta_ok)
            conn_send(c, GW_SUPLINE_READY, sizeof(GW_SUPLINE_READY) - 1);
        return;
    }
    if (first && len == 6 && memcmp(line, "attach", 6) == 0) {
        struct replay r = {c};
        struct gw_error err;
        static const char busy[] = "{\"busy\":true}\n";
        if (s->attached != NULL) {
            conn_send(c, busy, sizeof(busy) - 1);
            conn_close(c);
            return;
        }
        s->attached = c;
        gw_log(GW_LOG_INFO, s->run_id, "supervise: a worker reattached; replaying the spool");
        /* Everything spooled so far, then live records: a record is spooled
         * and sent in the same turn of the loop, so none falls between. */
        if (gw_spool_read(s->spool_path, replay_rec, &r, NULL, &err) < 0)
            gw_log(GW_LOG_ERROR, s->run_id, "supervise: %s", err.message);
        return;
    }
    if (c != s->attached)
        return;
    if (len == 6 && memcmp(line, "cancel", 6) == 0) {
        gw_log(GW_LOG_INFO, s->run_id, "supervise: cancel from the worker");
        stop(s, STOP_CANCEL);
    } else if (len == 4 && memcmp(line, "done", 4) == 0 && s->state == S_ENDED) {
        gw_log(GW_LOG_INFO, s->run_id, "supervise: the worker has the result; exiting");
        sup_enter(s, S_QUIT);
    }
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct sconn *c = st->data;
    if (n > 0)
        gw_exec_lines_feed(&c->lines, buf->base, (size_t)n, on_line, c);
    free(buf->base);
    if (n < 0)
        conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct sup *s = server->data;
    struct sconn *c;
    if (status < 0 || (c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->s = s;
    gw_exec_lines_init(&c->lines, CONN_LINE_MAX);
    uv_pipe_init(s->loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->pipe, conn_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, conn_read);
}

/* ------------------------------------------------------------ states */

static void spec_timeout(uv_timer_t *t)
{
    struct sup *s = t->data;
    gw_log_error("supervise: no spec within %d ms; quitting", SPEC_WAIT_MS);
    s->stopped = STOP_LOST;
    sup_enter(s, S_QUIT);
}

static void linger_over(uv_timer_t *t)
{
    struct sup *s = t->data;
    gw_log(GW_LOG_WARN, s->run_id,
           "supervise: no worker took the result; exiting, the spool stays for the next one");
    sup_enter(s, S_QUIT);
}

static const char *stop_name(const struct sup *s)
{
    if (!s->spawned)
        return "spawn_failed";
    switch (s->stopped) {
    case STOP_TIMEOUT:
        return "timeout";
    case STOP_CANCEL:
        return "cancel";
    case STOP_LOST:
        return "lost";
    case STOP_NONE:
        break;
    }
    return "none";
}

static bool sup_may_enter(enum sup_state from, enum sup_state to)
{
    static const bool next[S_QUIT + 1][S_QUIT + 1] = {
        [S_WAIT_SPEC] = {[S_RUNNING] = true, [S_QUIT] = true},
        [S_RUNNING] = {[S_EXITED] = true, [S_STOPPING] = true, [S_ENDED] = true},
        [S_EXITED] = {[S_ENDED] = true},
        [S_STOPPING] = {[S_ENDED] = true},
        [S_ENDED] = {[S_QUIT] = true},
    };
    return next[from][to];
}

static void sup_enter(struct sup *s, enum sup_state to)
{
    if (!sup_may_enter(s->state, to)) {
        gw_log(GW_LOG_ERROR, s->run_id, "supervise: no transition from state %d to %d", s->state,
               to);
        abort();
    }
    s->state = to;
    switch (to) {
    case S_WAIT_SPEC:
        break;
    case S_RUNNING: {
        struct gw_error err;
        uint64_t hb = (uint64_t)json_integer_value(json_object_get(s->spec, "heartbeat_ms"));
        json_int_t timeout = json_integer_value(json_object_get(s->spec, "timeout_seconds"));
        uv_timer_stop(&s->spec_timer);
        if (s->hosted)
            start_hosted(s);
        else
            start_program(s);
        s->meta_ok = write_meta(s, &err) == 0;
        if (!s->meta_ok)
            gw_log(GW_LOG_ERROR, s->run_id,
                   "supervise: %s: no later worker can find this run; the worker that "
                   "started it keeps it (no handoff)",
                   err.message);
        uv_timer_start(&s->heartbeat, heartbeat_cb, hb > 0 ? hb : 5000, hb > 0 ? hb : 5000);
        if (s->state == S_RUNNING && timeout > 0)
            uv_timer_start(&s->timeout, timeout_cb, (uint64_t)timeout * 1000, 0);
        break;
    }
    case S_EXITED:
        signal_group(s, SIGKILL);
        break;
    case S_STOPPING:
        uv_timer_stop(&s->timeout);
        if (s->hosted) {
            /* The backend's own stop sequence; its finish ends the state. */
            s->be->cancel(&s->run,
                          s->stopped == STOP_LOST ? GW_CANCEL_SHUTDOWN : GW_CANCEL_REQUESTED);
            break;
        }
        signal_group(s, SIGTERM);
        uv_timer_start(&s->kill, kill_cb, s->grace_ms, 0);
        break;
    case S_ENDED: {
        size_t n = 0;
        char *text;
        json_int_t linger = json_integer_value(json_object_get(s->spec, "linger_seconds"));
        uv_timer_stop(&s->kill);
        if (s->stopped == STOP_LOST) {
            /* Nobody may report it: do not spool a result, go. */
            sup_enter(s, S_QUIT);
            return;
        }
        if (s->hosted) {
            emit(s, s->result_text, s->result_len);
            s->result_text = NULL;
            gw_log(GW_LOG_INFO, s->run_id, "supervise: the run ended");
        } else {
            text = gw_spool_exit_text(s->next_i++, s->exit_status, s->term_signal, stop_name(s),
                                      s->spawned ? NULL : s->spawn_error, &n);
            emit(s, text, n);
            gw_log(GW_LOG_INFO, s->run_id,
                   "supervise: the program ended (%s, exit %lld, signal %d)", stop_name(s),
                   (long long)s->exit_status, s->term_signal);
        }
        uv_timer_start(&s->linger, linger_over,
                       (uint64_t)(linger > 0 ? linger : DEFAULT_LINGER) * 1000, 0);
        break;
    }
    case S_QUIT:
        free(s->result_text);
        s->result_text = NULL;
        if (s->stopped == STOP_LOST) {
            /* Only a group whose leader we have not reaped: after that its
             * id may name someone else's processes. */
            if (s->proc_open)
                signal_group(s, SIGKILL);
            gw_fs_remove_tree(s->dir);
        }
        uv_stop(s->loop);
        break;
    }
}

/* ------------------------------------------------------------ main */

int gw_supervise(const char *run_dir)
{
    struct sup *s = calloc(1, sizeof(*s));
    uv_loop_t loop;
    int rc;
    if (s == NULL || uv_loop_init(&loop) != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    /* Signals that would end a worker do not end its runs: only SIGKILL
     * (the host going away, in effect) stops a supervisor. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    s->loop = &loop;
    s->spool_fd = -1;
    s->next_i = 1;
    snprintf(s->dir, sizeof(s->dir), "%s", run_dir);
    snprintf(s->spool_path, sizeof(s->spool_path), "%s/spool", run_dir);
    gw_exec_lines_init(&s->out_lines, GW_RUN_LOG_LINE_MAX);
    gw_exec_lines_init(&s->err_lines, GW_RUN_LOG_LINE_MAX);
    uv_timer_init(&loop, &s->timeout);
    uv_timer_init(&loop, &s->kill);
    uv_timer_init(&loop, &s->heartbeat);
    uv_timer_init(&loop, &s->spec_timer);
    uv_timer_init(&loop, &s->linger);
    s->timeout.data = s->kill.data = s->heartbeat.data = s->spec_timer.data = s->linger.data = s;
    uv_pipe_init(&loop, &s->listener, 0);
    s->listener.data = s;
    /* stdin is the socket the worker bound and listens on. */
    if ((rc = uv_pipe_open(&s->listener, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&s->listener, 8, on_connection)) != 0) {
        gw_log_error("supervise: %s: stdin is not a listening socket: %s", run_dir,
                     uv_strerror(rc));
        return 1;
    }
    uv_timer_start(&s->spec_timer, spec_timeout, SPEC_WAIT_MS, 0);
    gw_log_info("supervise: %s: waiting for the spec (pid %d)", run_dir, (int)getpid());
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Stopped in QUIT: the process ends here; the kernel closes the rest. */
    if (s->spool_fd >= 0)
        close(s->spool_fd);
    return 0;
}
