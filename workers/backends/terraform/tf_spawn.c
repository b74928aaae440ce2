#include "tf_spawn.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gw/mem.h"

/* `show -json` of a big plan is large; beyond this it is refused, not parsed. */
#define CAPTURE_MAX (64u * 1024 * 1024)

static void closed_cb(uv_handle_t *h)
{
    struct tf_proc *p = h->data;
    if (--p->open_handles == 0)
        p->done(p, p->ctx);
}

static void close_one(uv_handle_t *h, bool *open)
{
    if (!*open)
        return;
    *open = false;
    uv_close(h, closed_cb);
}

static void maybe_close_timer(struct tf_proc *p)
{
    if (!p->proc_open && !p->out_open && !p->err_open)
        close_one((uv_handle_t *)&p->kill, &p->kill_open);
}

static void line_out(void *ctx, const char *line, size_t len)
{
    struct tf_proc *p = ctx;
    p->line(p->ctx, "stdout", line, len);
}

static void line_err(void *ctx, const char *line, size_t len)
{
    struct tf_proc *p = ctx;
    p->line(p->ctx, "stderr", line, len);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void capture(struct tf_proc *p, const char *data, size_t n)
{
    if (p->cap_overflow)
        return;
    if (p->cap_len + n + 1 > CAPTURE_MAX) {
        p->cap_overflow = true;
        return;
    }
    if (gw_grow(&p->cap, &p->cap_size, p->cap_len + n + 1, 65536) < 0) {
        p->cap_overflow = true;
        return;
    }
    memcpy(p->cap + p->cap_len, data, n);
    p->cap_len += n;
    p->cap[p->cap_len] = '\0';
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct tf_proc *p = s->data;
    bool is_out = s == (uv_stream_t *)&p->out;
    struct exec_lines *l = is_out ? &p->out_lines : &p->err_lines;
    exec_line_cb cb = is_out ? line_out : line_err;
    if (n > 0) {
        if (is_out && p->capture)
            capture(p, buf->base, (size_t)n);
        else
            gw_exec_lines_feed(l, buf->base, (size_t)n, cb, p);
    }
    free(buf->base);
    if (n < 0) {
        if (!(is_out && p->capture))
            gw_exec_lines_flush(l, cb, p);
        close_one((uv_handle_t *)s, is_out ? &p->out_open : &p->err_open);
        maybe_close_timer(p);
    }
}

static void signal_group(struct tf_proc *p, int sig)
{
    if (p->spawned && p->proc.pid > 0)
        (void)kill(-p->proc.pid, sig);
}

static void kill_cb(uv_timer_t *t)
{
    struct tf_proc *p = t->data;
    if (p->stop_stage == 1) {
        p->stop_stage = 2;
        signal_group(p, SIGTERM);
        uv_timer_start(&p->kill, kill_cb, p->grace_ms, 0);
    } else if (p->stop_stage == 2) {
        p->stop_stage = 3;
        signal_group(p, SIGKILL);
    }
}

static void exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    struct tf_proc *p = proc->data;
    p->exited = true;
    p->exit_status = exit_status;
    p->term_signal = term_signal;
    /* Whatever the leader left in its group would hold the pipes open. */
    signal_group(p, SIGKILL);
    uv_timer_stop(&p->kill);
    close_one((uv_handle_t *)proc, &p->proc_open);
    maybe_close_timer(p);
}

void gw_tf_proc_start(struct tf_proc *p, uv_loop_t *loop, char **argv, char **envp, const char *cwd,
                      bool capture_stdout, tf_line_fn line, tf_done_fn done, void *ctx)
{
    uv_process_options_t o;
    uv_stdio_container_t stdio[3];

    memset(p, 0, sizeof(*p));
    p->capture = capture_stdout;
    p->line = line;
    p->done = done;
    p->ctx = ctx;
    gw_exec_lines_init(&p->out_lines, GW_RUN_LOG_LINE_MAX);
    gw_exec_lines_init(&p->err_lines, GW_RUN_LOG_LINE_MAX);
    uv_pipe_init(loop, &p->out, 0);
    uv_pipe_init(loop, &p->err, 0);
    uv_timer_init(loop, &p->kill);
    p->out.data = p->err.data = p->kill.data = p->proc.data = p;
    p->out_open = p->err_open = p->kill_open = true;
    p->open_handles = 3;

    memset(&o, 0, sizeof(o));
    stdio[0].flags = UV_IGNORE; /* /dev/null: never a prompt */
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&p->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&p->err;
    o.file = argv[0];
    o.args = argv;
    o.env = envp;
    o.cwd = cwd;
    o.flags = UV_PROCESS_DETACHED; /* setsid(): its own process group */
    o.stdio_count = 3;
    o.stdio = stdio;
    o.exit_cb = exit_cb;
    p->spawn_rc = uv_spawn(loop, &p->proc, &o);
    p->proc_open = true; /* initialised either way, must be closed */
    p->open_handles++;
    if (p->spawn_rc != 0) {
        close_one((uv_handle_t *)&p->proc, &p->proc_open);
        close_one((uv_handle_t *)&p->out, &p->out_open);
        close_one((uv_handle_t *)&p->err, &p->err_open);
        close_one((uv_handle_t *)&p->kill, &p->kill_open);
        return;
    }
    p->spawned = true;
    uv_read_start((uv_stream_t *)&p->out, alloc_cb, read_cb);
    uv_read_start((uv_stream_t *)&p->err, alloc_cb, read_cb);
}

void gw_tf_proc_stop(struct tf_proc *p, uint64_t grace_ms)
{
    if (!p->spawned || p->exited || p->stop_stage != 0)
        return;
    p->stop_stage = 1;
    p->grace_ms = grace_ms;
    /* SIGINT first: Terraform stops gracefully and releases its state lock. */
    signal_group(p, SIGINT);
    uv_timer_start(&p->kill, kill_cb, grace_ms, 0);
}

void gw_tf_proc_release(struct tf_proc *p)
{
    gw_exec_lines_finish(&p->out_lines);
    gw_exec_lines_finish(&p->err_lines);
    free(p->cap);
    p->cap = NULL;
    p->cap_len = p->cap_size = 0;
}
