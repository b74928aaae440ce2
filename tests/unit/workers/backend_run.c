#include "backend_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "wtest.h"

struct driver {
    struct gw_run *run;
    const struct gw_backend_impl *be;
    struct run_record *r;
    const struct backend_run_options *o;
    int cancel_rc; /* 1 until the cancel is sent */
};

static void *grow(void *p, size_t each, int n)
{
    void *q = realloc(p, each * (size_t)n);
    CHECK(q != NULL);
    return q;
}

static void record_log(struct gw_run *run, const char *stream, const char *line, size_t len)
{
    struct driver *d = run->sink_data;
    struct run_record *r = d->r;
    int n = r->nlines;
    CHECK(d->o->max_lines <= 0 || n < d->o->max_lines);
    r->stream = grow(r->stream, sizeof(*r->stream), n + 1);
    r->line = grow(r->line, sizeof(*r->line), n + 1);
    r->len = grow(r->len, sizeof(*r->len), n + 1);
    r->stream[n] = strdup(stream);
    r->line[n] = strndup(line, len);
    r->len[n] = len;
    CHECK(r->stream[n] != NULL && r->line[n] != NULL);
    r->nlines = n + 1;
}

static void record_finish(struct gw_run *run, const struct gw_run_result *res)
{
    struct driver *d = run->sink_data;
    struct run_record *r = d->r;
    CHECK(!r->finished);
    r->finished = true;
    r->outcome = res->outcome;
    snprintf(r->reason, sizeof(r->reason), "%s", res->reason ? res->reason : "");
    snprintf(r->message, sizeof(r->message), "%s", res->message ? res->message : "");
    r->exit_code = res->exit_code;
    r->outputs = json_incref(res->outputs);
}

static const struct gw_run_sink record_sink = {.log = record_log, .finish = record_finish};

static void cancel_now(struct driver *d)
{
    d->cancel_rc = d->be->cancel(d->run, d->o->why);
}

static void on_cancel_timer(uv_timer_t *t)
{
    cancel_now(t->data);
}

/* Polled: cancels once a log line contains o->cancel_on_line. */
static void on_cancel_poll(uv_timer_t *t)
{
    struct driver *d = t->data;
    if (d->r->finished)
        return;
    for (int i = 0; i < d->r->nlines; i++) {
        if (strstr(d->r->line[i], d->o->cancel_on_line) != NULL) {
            cancel_now(d);
            uv_timer_stop(t);
            return;
        }
    }
}

int backend_run(const char *name, struct gw_run *run, const struct backend_run_options *o,
                struct run_record *r)
{
    static const struct backend_run_options none;
    uv_loop_t loop;
    uv_timer_t t;
    struct gw_error err;
    struct driver d = {.run = run, .be = gw_backend_lookup(name), .r = r, .cancel_rc = 1};
    bool cancels;
    int rc;
    d.o = o != NULL ? o : &none;
    cancels = d.o->cancel_after_ms > 0 || d.o->cancel_on_line != NULL;
    CHECK(d.be != NULL);
    if (run->run_id == NULL)
        run->run_id = "11111111-2222-3333-4444-555555555555";
    if (run->attempt == 0)
        run->attempt = 1;
    if (run->action_version == NULL)
        run->action_version = "v1";
    if (run->requested_by == NULL)
        run->requested_by = "alice";
    memset(r, 0, sizeof(*r));
    CHECK(uv_loop_init(&loop) == 0);
    run->loop = &loop;
    run->sink = &record_sink;
    run->sink_data = &d;
    rc = d.be->create(run, &err);
    if (rc != 0) {
        snprintf(r->message, sizeof(r->message), "%s", err.message);
        d.be->destroy(run);
        goto out;
    }
    CHECK(d.be->start(run, &err) == 0);
    CHECK(!r->finished); /* never synchronously */
    uv_timer_init(&loop, &t);
    t.data = &d;
    if (d.o->cancel_on_line != NULL)
        uv_timer_start(&t, on_cancel_poll, 50, 50);
    else if (d.o->cancel_after_ms > 0)
        uv_timer_start(&t, on_cancel_timer, (uint64_t)d.o->cancel_after_ms, 0);
    /* Until the finish, or until nothing is left that could bring it. */
    while (!r->finished && uv_run(&loop, UV_RUN_ONCE) != 0)
        ;
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(r->finished);
    CHECK(!cancels || d.cancel_rc == 0);
    CHECK(d.be->cancel(run, GW_CANCEL_REQUESTED) == GW_ECONFLICT);
    d.be->destroy(run);
    CHECK(run->backend_data == NULL);
out:
    CHECK(uv_loop_close(&loop) == 0);
    run->loop = NULL;
    run->sink_data = NULL;
    return rc;
}

void run_record_free(struct run_record *r)
{
    for (int i = 0; i < r->nlines; i++) {
        free(r->stream[i]);
        free(r->line[i]);
    }
    free(r->stream);
    free(r->line);
    free(r->len);
    json_decref(r->outputs);
    memset(r, 0, sizeof(*r));
}
