/*
 * Persistent programs of the exec backend (exec_persist.h). One program is
 * one state machine; prog_enter() is the only place its state changes:
 *
 *   HELLO --hello line--> IDLE <--result / cancelled--+
 *     |                    |  ^                        |
 *     |                    | run line sent             |
 *     |                    v  |                        |
 *     |                   BUSY --timeout, cancel--> STOPPING
 *     |                    |                           |
 *     +--------------------+---------------------------+
 *        exited, bad line, no hello, grace expired, write failed
 *                          v
 *                         DEAD --process exit seen--> CLOSING --handles closed--> freed
 *
 *   state     on entry (prog_enter)                     leaves on
 *   HELLO     hello written, timer: HELLO_MS            the program's hello
 *   IDLE      timer stopped, handles unreferenced       a run (acquire), retirement (DEAD)
 *   BUSY      run line written, timer: run timeout      result; timeout or cancel
 *   STOPPING  cancel line written, timer: grace         result / cancelled; grace (DEAD)
 *   DEAD      SIGKILL to the process group              the pidfd: exit seen (CLOSING)
 *   CLOSING   the bound run finished with its recorded  the last close callback
 *             outcome; every handle closed
 *
 * A run bound to a program finishes either on the program's answer (a loop
 * callback: the pipe's read) or when the program's exit is seen (the pidfd),
 * never inside start() or cancel(); so killing a program is the one way a
 * run ends without an answer, and its outcome is recorded before the kill.
 */
#include "exec_persist.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "exec_io.h"
#include "exec_proto.h"
#include "gw/fs.h"
#include "gw/list.h"
#include "gw/log.h"
#include "gw/mem.h"

#define HELLO_MS 10000
/* Idle programs kept beyond this many are ended when their run finishes. */
#define IDLE_MAX 64

enum prog_state { P_HELLO, P_IDLE, P_BUSY, P_STOPPING, P_DEAD, P_CLOSING };
enum persist_stop { PSTOP_NONE, PSTOP_TIMEOUT, PSTOP_CANCEL };

struct persist_run;

struct exec_program {
    struct gw_list link; /* in pool.programs */
    enum prog_state state;
    char *key; /* the config it was started for (command + env) */
    char **argv, **envp;
    uint64_t grace_ms;
    char workdir[PATH_MAX];
    unsigned long serial; /* for log lines */
    struct gw_child child;
    uv_pipe_t in, out, err;
    uv_timer_t timer;
    int open_handles;
    char *buf; /* stdout bytes not yet a whole line */
    size_t len, cap;
    bool overflow; /* the current line passed GW_EXEC_LINE_MAX */
    struct exec_lines err_lines;
    struct persist_run *run; /* bound run, or NULL */
    unsigned long runs;      /* runs served */
    uv_work_t work;          /* removes the workdir, then frees */
};

struct persist_run {
    enum exec_mode mode; /* first: exec.c reads it from backend_data */
    struct gw_run *run;
    struct exec_program *prog;
    char *key;
    uint64_t grace_ms;
    char id[96];
    enum persist_stop stopped;
    /* The outcome when the program dies instead of answering. */
    const char *fail_reason;
    int fail_code;
    char fail_msg[400];
};

/* The process's programs: a worker has one loop, so one pool. */
static struct {
    bool init, shutting_down;
    struct gw_list programs;
    unsigned long next_serial;
} pool;

static void prog_enter(struct exec_program *p, enum prog_state s);

static void pool_init(void)
{
    if (!pool.init) {
        gw_list_init(&pool.programs);
        pool.init = true;
    }
}

static void strv_free(char **v)
{
    for (char **q = v; q != NULL && *q != NULL; q++)
        free(*q);
    free(v);
}

/* ------------------------------------------------------------ handles */

static void set_ref(struct exec_program *p, bool ref)
{
    uv_handle_t *h[] = {(uv_handle_t *)&p->in, (uv_handle_t *)&p->out, (uv_handle_t *)&p->err,
                        (uv_handle_t *)&p->timer, (uv_handle_t *)&p->child.poll};
    for (size_t i = 0; i < ARRAY_SIZE(h); i++) {
        if (uv_is_closing(h[i]))
            continue;
        if (ref)
            uv_ref(h[i]);
        else
            uv_unref(h[i]);
    }
}

static void remove_work(uv_work_t *w)
{
    struct exec_program *p = container_of(w, struct exec_program, work);
    if (p->workdir[0] != '\0')
        gw_fs_remove_tree(p->workdir);
}

static void prog_free(uv_work_t *w, int status)
{
    struct exec_program *p = container_of(w, struct exec_program, work);
    (void)status;
    free(p->key);
    strv_free(p->argv);
    strv_free(p->envp);
    free(p->buf);
    gw_exec_lines_finish(&p->err_lines);
    free(p);
}

static void handle_closed(uv_handle_t *h)
{
    struct exec_program *p = h->data;
    if (--p->open_handles > 0)
        return;
    gw_list_remove(&p->link);
    if (uv_queue_work(h->loop, &p->work, remove_work, prog_free) != 0) {
        remove_work(&p->work);
        prog_free(&p->work, 0);
    }
}

/* ------------------------------------------------------------ writing */

struct wreq {
    uv_write_t req;
    char *text;
};

static void write_done(uv_write_t *req, int status)
{
    struct wreq *w = container_of(req, struct wreq, req);
    struct exec_program *p = req->data;
    free(w->text);
    free(w);
    /* The program stopped reading (it died, or closed stdin): it cannot serve
     * a run any more. Its exit, or this kill, ends the run it holds. */
    if (status < 0 && status != UV_ECANCELED && p->state < P_DEAD) {
        if (p->run != NULL && p->run->fail_reason == NULL) {
            p->run->fail_reason = "program_exited";
            p->run->fail_code = -1;
            snprintf(p->run->fail_msg, sizeof(p->run->fail_msg),
                     "the persistent program stopped reading its stdin (%s)", uv_strerror(status));
        }
        prog_enter(p, P_DEAD);
    }
}

/* Writes one line (stolen); false when it could not even be queued. */
static bool prog_write(struct exec_program *p, char *text)
{
    struct wreq *w;
    uv_buf_t b;
    if (text == NULL)
        return false;
    if ((w = malloc(sizeof(*w))) == NULL) {
        free(text);
        return false;
    }
    w->text = text;
    w->req.data = p;
    b = uv_buf_init(text, (unsigned)strlen(text));
    if (uv_write(&w->req, (uv_stream_t *)&p->in, &b, 1, write_done) != 0) {
        free(text);
        free(w);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ runs */

/* Ends the bound run with `fn`-style outcome and unbinds it. */
static struct persist_run *unbind(struct exec_program *p)
{
    struct persist_run *r = p->run;
    p->run = NULL;
    if (r != NULL)
        r->prog = NULL;
    return r;
}

/* The run's outcome when its program died or was killed. */
static void finish_dead(struct persist_run *r)
{
    char msg[300];
    if (r->stopped == PSTOP_TIMEOUT) {
        snprintf(msg, sizeof(msg),
                 "timed out after %d s; the persistent program did not stop within its grace "
                 "and was killed",
                 r->run->timeout_seconds);
        gw_run_finish_timed_out(r->run, msg);
    } else if (r->stopped == PSTOP_CANCEL) {
        gw_run_finish_cancelled(r->run, "cancelled; the persistent program was killed");
    } else {
        gw_run_finish_failed(r->run, r->fail_reason ? r->fail_reason : "program_exited",
                             r->fail_code,
                             r->fail_msg[0] ? r->fail_msg : "the persistent program exited");
    }
}

/* A protocol violation while a run is bound: the run fails with `reason`,
 * the program is killed (its stream can no longer be trusted). */
static void violation(struct exec_program *p, const char *reason, const char *what)
{
    gw_log(GW_LOG_WARN, p->run ? p->run->run->run_id : NULL,
           "exec: persistent program %lu (%s): %s: %s; restarting it", p->serial, p->argv[0],
           reason, what);
    if (p->run != NULL && p->run->fail_reason == NULL) {
        p->run->fail_reason = reason;
        p->run->fail_code = -1;
        snprintf(p->run->fail_msg, sizeof(p->run->fail_msg),
                 "the persistent program broke the protocol (%s): %s", reason, what);
    }
    prog_enter(p, P_DEAD);
}

static void send_run(struct exec_program *p)
{
    struct gw_run *run = p->run->run;
    json_t *o = json_pack(
        "{s:s, s:s, s:i, s:s?, s:s?, s:s?, s:s?, s:s?, s:i, s:O}", "id", p->run->id, "run_id",
        run->run_id ? run->run_id : "", "attempt", run->attempt, "action_id", run->action_id,
        "action_version", run->action_version, "operation", run->operation, "resource_key",
        run->resource_key, "requested_by", run->requested_by, "timeout_seconds",
        run->timeout_seconds, "inputs", run->inputs ? run->inputs : json_object());
    p->runs++;
    if (!prog_write(p, gw_exec_line_run(o))) {
        p->run->fail_reason = "backend_error";
        p->run->fail_code = -1;
        snprintf(p->run->fail_msg, sizeof(p->run->fail_msg),
                 "cannot write the run to the persistent program");
        prog_enter(p, P_DEAD);
        return;
    }
    prog_enter(p, P_BUSY);
}

/* One line of the program's stdout. */
static void on_line(struct exec_program *p, const char *line, size_t len)
{
    struct exec_msg m;
    char why[300];
    struct persist_run *r;

    if (p->state >= P_DEAD)
        return;
    if (gw_exec_msg_parse(line, len, &m, why, sizeof(why)) < 0) {
        violation(p, "protocol_error", why);
        return;
    }
    if (m.type == EXEC_MSG_HELLO) {
        if (p->state != P_HELLO) {
            violation(p, "protocol_error", "a second hello");
        } else if (m.protocol != GW_EXEC_PROTOCOL) {
            snprintf(why, sizeof(why), "speaks protocol %d, this worker %d", m.protocol,
                     GW_EXEC_PROTOCOL);
            violation(p, "protocol_error", why);
        } else if (p->run != NULL) {
            send_run(p);
        } else {
            prog_enter(p, P_IDLE);
        }
        gw_exec_msg_finish(&m);
        return;
    }
    if (p->state == P_HELLO) {
        violation(p, "protocol_error", "a line before the hello");
    } else if (p->run == NULL || strcmp(m.id, p->run->id) != 0) {
        snprintf(why, sizeof(why), "a line for run \"%.96s\", which it is not running", m.id);
        violation(p, "protocol_error", why);
    } else if (m.type == EXEC_MSG_LOG) {
        gw_run_log(p->run->run, m.stream, m.line, m.line_len);
    } else if (m.type == EXEC_MSG_CANCELLED && p->run->stopped == PSTOP_NONE) {
        violation(p, "protocol_error", "\"cancelled\" without a cancel");
    } else {
        /* A result or a cancel acknowledgement: the run ends here and the
         * program is free for the next one. */
        r = unbind(p);
        prog_enter(p, P_IDLE);
        if (m.type == EXEC_MSG_CANCELLED && r->stopped == PSTOP_TIMEOUT) {
            char msg[160];
            snprintf(msg, sizeof(msg), "timed out after %d s; the persistent program stopped it",
                     r->run->timeout_seconds);
            gw_run_finish_timed_out(r->run, msg);
        } else if (m.type == EXEC_MSG_CANCELLED) {
            gw_run_finish_cancelled(r->run, "cancelled");
        } else if (m.succeeded) {
            /* A result that crossed a cancel or a timeout on the way: what
             * the run reached first wins (backend.h). */
            gw_run_finish_succeeded(r->run, json_incref(m.outputs));
        } else {
            char msg[300];
            snprintf(msg, sizeof(msg), "%s",
                     m.message ? m.message : "the program reported failure");
            gw_run_finish_failed(r->run, "exit_code", m.exit_code, msg);
        }
    }
    gw_exec_msg_finish(&m);
}

/* ------------------------------------------------------------ reading */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void feed(struct exec_program *p, const char *data, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n && p->state < P_DEAD; i++) {
        if (data[i] != '\n')
            continue;
        if (p->overflow) {
            violation(p, "output_limit", "a line longer than 2 MiB");
            return;
        }
        if (p->len > 0) {
            if (gw_grow(&p->buf, &p->cap, p->len + (i - start), 4096) < 0) {
                violation(p, "backend_error", "out of memory");
                return;
            }
            memcpy(p->buf + p->len, data + start, i - start);
            on_line(p, p->buf, p->len + (i - start));
            p->len = 0;
        } else {
            on_line(p, data + start, i - start);
        }
        start = i + 1;
    }
    if (p->state >= P_DEAD || start >= n)
        return;
    if (p->len + (n - start) > GW_EXEC_LINE_MAX) {
        /* Caught here, before buffering more: the program is killed. */
        p->overflow = true;
        violation(p, "output_limit", "a line longer than 2 MiB");
        return;
    }
    if (gw_grow(&p->buf, &p->cap, p->len + (n - start), 4096) < 0) {
        violation(p, "backend_error", "out of memory");
        return;
    }
    memcpy(p->buf + p->len, data + start, n - start);
    p->len += n - start;
}

static void log_err(void *ctx, const char *line, size_t len)
{
    struct exec_program *p = ctx;
    if (p->run != NULL)
        gw_run_log(p->run->run, "stderr", line, len);
    else
        gw_log(GW_LOG_INFO, NULL, "exec: persistent program %lu: %.*s", p->serial, (int)len, line);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct exec_program *p = s->data;
    if (n > 0) {
        if (s == (uv_stream_t *)&p->out)
            feed(p, buf->base, (size_t)n);
        else
            gw_exec_lines_feed(&p->err_lines, buf->base, (size_t)n, log_err, p);
    }
    free(buf->base);
    if (n < 0) {
        uv_read_stop(s);
        /* stdout closed: the program cannot answer any more. */
        if (s == (uv_stream_t *)&p->out && p->state < P_DEAD) {
            if (p->run != NULL && p->run->fail_reason == NULL) {
                p->run->fail_reason = "program_exited";
                p->run->fail_code = -1;
                snprintf(p->run->fail_msg, sizeof(p->run->fail_msg),
                         "the persistent program closed its stdout during the run");
            }
            prog_enter(p, P_DEAD);
        }
    }
}

/* ------------------------------------------------------------ timers, exit */

static void timer_cb(uv_timer_t *t)
{
    struct exec_program *p = t->data;
    char why[96];
    switch (p->state) {
    case P_HELLO:
        snprintf(why, sizeof(why), "no hello within %d ms", HELLO_MS);
        violation(p, "protocol_error", why);
        break;
    case P_BUSY:
        gw_log(GW_LOG_WARN, p->run->run->run_id, "exec: timeout after %d s, asking the program",
               p->run->run->timeout_seconds);
        p->run->stopped = PSTOP_TIMEOUT;
        if (prog_write(p, gw_exec_line_cancel(p->run->id, "timeout")))
            prog_enter(p, P_STOPPING);
        else
            prog_enter(p, P_DEAD);
        break;
    case P_STOPPING:
        gw_log(GW_LOG_WARN, p->run ? p->run->run->run_id : NULL,
               "exec: persistent program %lu did not stop within %llu ms: killing it", p->serial,
               (unsigned long long)p->grace_ms);
        prog_enter(p, P_DEAD);
        break;
    case P_IDLE:
    case P_DEAD:
    case P_CLOSING:
        break;
    }
}

static void exit_cb(struct gw_child *c, int64_t exit_status, int term_signal)
{
    struct exec_program *p = c->data;
    struct persist_run *r = p->run;
    if (r != NULL && r->fail_reason == NULL) {
        r->fail_reason = "program_exited";
        r->fail_code = term_signal ? 128 + term_signal : (int)exit_status;
        if (term_signal)
            snprintf(r->fail_msg, sizeof(r->fail_msg),
                     "the persistent program was killed by signal %d during the run; the next "
                     "run gets a fresh program",
                     term_signal);
        else
            snprintf(r->fail_msg, sizeof(r->fail_msg),
                     "the persistent program exited with code %d during the run; the next run "
                     "gets a fresh program",
                     (int)exit_status);
    } else if (r == NULL && !pool.shutting_down && p->state != P_DEAD) {
        gw_log(GW_LOG_WARN, NULL, "exec: persistent program %lu (%s) exited while idle (%d)",
               p->serial, p->argv[0], term_signal ? 128 + term_signal : (int)exit_status);
    }
    if (p->state < P_DEAD)
        prog_enter(p, P_DEAD);
    prog_enter(p, P_CLOSING);
}

/* ------------------------------------------------------------ the state machine */

static bool prog_may_enter(enum prog_state from, enum prog_state to)
{
    static const bool next[P_CLOSING + 1][P_CLOSING + 1] = {
        [P_HELLO] = {[P_IDLE] = true, [P_BUSY] = true, [P_DEAD] = true},
        [P_IDLE] = {[P_HELLO] = false, [P_BUSY] = true, [P_DEAD] = true},
        [P_BUSY] = {[P_IDLE] = true, [P_STOPPING] = true, [P_DEAD] = true},
        [P_STOPPING] = {[P_IDLE] = true, [P_DEAD] = true},
        [P_DEAD] = {[P_CLOSING] = true},
    };
    return next[from][to];
}

static size_t idle_count(void)
{
    size_t n = 0;
    gw_list_foreach (it, &pool.programs) {
        struct exec_program *q = gw_list_entry(it, struct exec_program, link);
        n += q->state == P_IDLE;
    }
    return n;
}

/* The one place where a program changes state (table at the top). */
static void prog_enter(struct exec_program *p, enum prog_state s)
{
    struct persist_run *r;
    if (!prog_may_enter(p->state, s)) {
        gw_log(GW_LOG_ERROR, NULL, "exec: persistent program: no transition from %d to %d",
               p->state, s);
        abort();
    }
    p->state = s;
    switch (s) {
    case P_HELLO:
        break;
    case P_IDLE:
        uv_timer_stop(&p->timer);
        if (pool.shutting_down || idle_count() > IDLE_MAX) {
            /* Retired (shutdown, or too many idle): it holds no run, so it
             * is killed without ceremony. */
            prog_enter(p, P_DEAD);
            return;
        }
        set_ref(p, false);
        break;
    case P_BUSY:
        set_ref(p, true);
        uv_timer_stop(&p->timer);
        if (p->run->run->timeout_seconds > 0)
            uv_timer_start(&p->timer, timer_cb, (uint64_t)p->run->run->timeout_seconds * 1000, 0);
        break;
    case P_STOPPING:
        uv_timer_start(&p->timer, timer_cb, p->grace_ms, 0);
        break;
    case P_DEAD:
        set_ref(p, true);
        uv_timer_stop(&p->timer);
        if (p->child.pid > 0 && kill(-p->child.pid, SIGKILL) != 0 && errno != ESRCH)
            gw_log(GW_LOG_WARN, NULL, "exec: kill(-%d): %s", (int)p->child.pid, strerror(errno));
        break;
    case P_CLOSING:
        r = unbind(p);
        uv_close((uv_handle_t *)&p->in, handle_closed);
        uv_close((uv_handle_t *)&p->out, handle_closed);
        uv_close((uv_handle_t *)&p->err, handle_closed);
        uv_close((uv_handle_t *)&p->timer, handle_closed);
        gw_child_close(&p->child, handle_closed);
        if (r != NULL)
            finish_dead(r);
        break;
    }
}

/* ------------------------------------------------------------ spawning */

static char *envvar(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s=%s", name, value);
    return s;
}

/* The scrubbed environment of a per-run program, minus what belongs to one
 * run (that comes in each run line), plus GANGWAY_PROTOCOL. */
static char **build_env(json_t *env, const char *workdir)
{
    json_t *v;
    const char *k;
    char proto[16];
    size_t n = 0, cap = json_object_size(env) + 8;
    char **e = calloc(cap, sizeof(char *));
    if (e == NULL)
        return NULL;
    json_object_foreach(env, k, v) e[n++] = envvar(k, json_string_value(v));
    if (json_object_get(env, "PATH") == NULL)
        e[n++] = envvar("PATH", "/usr/local/bin:/usr/bin:/bin");
    if (json_object_get(env, "LANG") == NULL)
        e[n++] = envvar("LANG", "C.UTF-8");
    if (json_object_get(env, "HOME") == NULL)
        e[n++] = envvar("HOME", workdir);
    snprintf(proto, sizeof(proto), "%d", GW_EXEC_PROTOCOL);
    e[n++] = envvar("GANGWAY_PROTOCOL", proto);
    e[n++] = envvar("GANGWAY_WORKDIR", workdir);
    for (size_t i = 0; i < n; i++)
        if (e[i] == NULL) {
            strv_free(e);
            return NULL;
        }
    return e;
}

/* Starts a program for `r`'s config, bound to `r`. Returns NULL with `err`
 * set when nothing was started. */
static struct exec_program *prog_spawn(struct persist_run *r, uv_loop_t *loop, struct gw_error *err)
{
    json_t *cmd = json_object_get(r->run->config, "command");
    const char *tmp = getenv("TMPDIR");
    struct exec_program *p = calloc(1, sizeof(*p));
    size_t n = json_array_size(cmd);
    int rc;

    if (p == NULL || (p->argv = calloc(n + 1, sizeof(char *))) == NULL ||
        (p->key = strdup(r->key)) == NULL)
        goto fail_mem;
    for (size_t i = 0; i < n; i++)
        if ((p->argv[i] = strdup(json_string_value(json_array_get(cmd, i)))) == NULL)
            goto fail_mem;
    snprintf(p->workdir, sizeof(p->workdir), "%s/gangway-prog-XXXXXX",
             tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(p->workdir) == NULL) {
        gw_error_set(err, GW_EIO, true, "exec: mkdtemp %s: %s", p->workdir, strerror(errno));
        p->workdir[0] = '\0';
        goto fail;
    }
    if ((p->envp = build_env(json_object_get(r->run->config, "env"), p->workdir)) == NULL)
        goto fail_mem;
    p->grace_ms = r->grace_ms;
    gw_exec_lines_init(&p->err_lines, GW_RUN_LOG_LINE_MAX);
    uv_pipe_init(loop, &p->in, 0);
    uv_pipe_init(loop, &p->out, 0);
    uv_pipe_init(loop, &p->err, 0);
    rc = gw_child_spawn(loop, &p->child, p->argv, p->envp, p->workdir, &p->in, &p->out, &p->err,
                        exit_cb);
    if (rc != 0) {
        /* The pipes were only initialised: close them, then free. */
        gw_error_set(err, GW_EIO, false, "cannot start %s: %s", p->argv[0],
                     rc == -ENOEXEC ? "exec format error (a script needs a #! line)"
                                    : uv_strerror(rc));
        p->open_handles = 3;
        gw_list_init(&p->link); /* handle_closed removes it: a no-op alone */
        p->in.data = p->out.data = p->err.data = p;
        uv_close((uv_handle_t *)&p->in, handle_closed);
        uv_close((uv_handle_t *)&p->out, handle_closed);
        uv_close((uv_handle_t *)&p->err, handle_closed);
        return NULL;
    }
    uv_timer_init(loop, &p->timer);
    p->in.data = p->out.data = p->err.data = p->timer.data = p->child.data = p;
    p->child.poll.data = p;
    p->open_handles = 5;
    p->serial = ++pool.next_serial;
    gw_list_insert(&pool.programs, &p->link);
    p->run = r;
    r->prog = p;
    uv_read_start((uv_stream_t *)&p->out, alloc_cb, read_cb);
    uv_read_start((uv_stream_t *)&p->err, alloc_cb, read_cb);
    gw_log(GW_LOG_INFO, r->run->run_id, "exec: started persistent program %lu: %s (pid %d)",
           p->serial, p->argv[0], (int)p->child.pid);
    p->state = P_HELLO;
    if (!prog_write(p, gw_exec_line_hello()))
        prog_enter(p, P_DEAD);
    else
        uv_timer_start(&p->timer, timer_cb, HELLO_MS, 0);
    return p;

fail_mem:
    gw_error_set(err, GW_ENOMEM, true, "out of memory");
fail:
    if (p != NULL) {
        if (p->workdir[0] != '\0')
            gw_fs_remove_tree(p->workdir);
        free(p->key);
        strv_free(p->argv);
        strv_free(p->envp);
        free(p);
    }
    return NULL;
}

/* ------------------------------------------------------------ the backend slots */

int gw_exec_persist_create(struct gw_run *run, uint64_t grace_ms, struct gw_error *err)
{
    json_t *cfg = run->config;
    json_t *k = json_pack("{s:O, s:O?}", "command", json_object_get(cfg, "command"), "env",
                          json_object_get(cfg, "env"));
    struct persist_run *r = calloc(1, sizeof(*r));
    if (k == NULL || r == NULL || (r->key = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
        json_decref(k);
        free(r);
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    }
    json_decref(k);
    r->mode = EXEC_MODE_PERSISTENT;
    r->run = run;
    r->grace_ms = grace_ms;
    snprintf(r->id, sizeof(r->id), "%s/%d", run->run_id ? run->run_id : "run", run->attempt);
    run->backend_data = r;
    return 0;
}

int gw_exec_persist_start(struct gw_run *run, struct gw_error *err)
{
    struct persist_run *r = run->backend_data;
    pool_init();
    gw_list_foreach (it, &pool.programs) {
        struct exec_program *p = gw_list_entry(it, struct exec_program, link);
        if (p->state == P_IDLE && strcmp(p->key, r->key) == 0) {
            p->run = r;
            r->prog = p;
            gw_log(GW_LOG_DEBUG, run->run_id, "exec: persistent program %lu takes the run",
                   p->serial);
            send_run(p);
            return 0;
        }
    }
    return prog_spawn(r, run->loop, err) != NULL ? 0 : -1;
}

int gw_exec_persist_cancel(struct gw_run *run, enum gw_cancel_reason why)
{
    struct persist_run *r = run->backend_data;
    struct exec_program *p = r != NULL ? r->prog : NULL;
    if (p == NULL || r->stopped != PSTOP_NONE || p->state >= P_DEAD)
        return GW_ECONFLICT;
    r->stopped = PSTOP_CANCEL;
    if (p->state == P_HELLO) {
        /* Not started yet: nothing to ask, the program goes. */
        prog_enter(p, P_DEAD);
        return 0;
    }
    gw_log(GW_LOG_INFO, run->run_id, "exec: cancel sent to persistent program %lu", p->serial);
    if (prog_write(
            p, gw_exec_line_cancel(r->id, why == GW_CANCEL_SHUTDOWN ? "shutdown" : "requested")))
        prog_enter(p, P_STOPPING);
    else
        prog_enter(p, P_DEAD);
    return 0;
}

void gw_exec_persist_destroy(struct gw_run *run)
{
    struct persist_run *r = run->backend_data;
    if (r == NULL)
        return;
    if (r->prog != NULL)
        r->prog->run = NULL; /* cannot happen after finish; defensive */
    free(r->key);
    free(r);
    run->backend_data = NULL;
}

void gw_exec_persist_shutdown(void)
{
    if (!pool.init)
        return;
    pool.shutting_down = true;
    gw_list_foreach_safe (it, next, &pool.programs) {
        struct exec_program *p = gw_list_entry(it, struct exec_program, link);
        if (p->state == P_IDLE || p->state == P_HELLO)
            prog_enter(p, P_DEAD);
    }
}
