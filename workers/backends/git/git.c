/*
 * The git (GitOps) backend: renders an action's templates with the run's
 * inputs into a Git repository, commits them with the requester as author
 * and a "Gangway-Run: <run id>" trailer, pushes, and optionally opens a
 * pull/merge request. A drift run (operation "drift", docs/drift.md) only
 * fetches and compares what the resource's last run wrote with the branch.
 *
 * Loop side (this file): config, timeout and cancel, log delivery, finish.
 * All libgit2 and libcurl work happens in gw_gitb_work_run (git_work.c) on the
 * libuv thread pool; its log lines reach the loop through a mutex-protected
 * queue and a uv_async_t.
 *
 * Cancel and timeout set job.stop; the worker thread notices between steps
 * and in libgit2's/libcurl's progress callbacks. A blocking connect inside
 * libgit2 is not interruptible, so a stop can take as long as the transport's
 * own timeouts. A run that completed its push before it noticed the stop
 * reports success: the commit exists.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "backend.h"
#include "registry.h"
#include "git_internal.h"
#include "gw/log.h"
#include "gw/paths.h"

#define LINE_MAX_BYTES 2048

enum gitb_state {
    ST_CREATED,
    ST_WORKING, /* gw_gitb_work_run queued or running */
    ST_PR,      /* the work is done, the pull request is being opened (git_pr.c) */
    ST_CLOSING, /* work done, handles closing */
    ST_DONE,
};

struct gitb_run {
    struct gw_run *run;
    enum gitb_state state;
    struct gw_gitb_config cfg;
    struct gw_gitb_job job;
    uv_work_t work;
    struct gw_gitb_pr *pr; /* in ST_PR */
    uv_async_t async;
    uv_timer_t timer;
    int open_handles;
    bool mutex_ready;
};

/* ------------------------------------------------------------ worker-thread API */

static void job_push_line(struct gw_gitb_job *j, const char *text)
{
    size_t n = strlen(text);
    struct gw_gitb_line *l = malloc(sizeof(*l) + n + 1);
    if (l == NULL)
        return;
    l->next = NULL;
    l->len = n;
    memcpy(l->text, text, n + 1);
    uv_mutex_lock(&j->mu);
    if (j->async_live) {
        *j->tail = l;
        j->tail = &l->next;
        uv_async_send(j->async);
        l = NULL;
    }
    uv_mutex_unlock(&j->mu);
    free(l);
}

void gw_gitb_job_log(struct gw_gitb_job *j, const char *fmt, ...)
{
    char raw[LINE_MAX_BYTES], clean[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    gw_gitb_scrub(raw, clean, sizeof(clean), j->secrets);
    job_push_line(j, clean);
}

int gw_gitb_job_fail(struct gw_gitb_job *j, const char *reason, const char *fmt, ...)
{
    char raw[sizeof(j->message)];
    va_list ap;
    if (j->message[0] != '\0')
        return -1; /* the first failure is the cause */
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    gw_gitb_scrub(raw, j->message, sizeof(j->message), j->secrets);
    snprintf(j->reason, sizeof(j->reason), "%s", reason);
    return -1;
}

/* ------------------------------------------------------------ loop side */

static void drain(struct gitb_run *g)
{
    struct gw_gitb_line *l;
    uv_mutex_lock(&g->job.mu);
    l = g->job.lines;
    g->job.lines = NULL;
    g->job.tail = &g->job.lines;
    uv_mutex_unlock(&g->job.mu);
    while (l != NULL) {
        struct gw_gitb_line *next = l->next;
        gw_run_log(g->run, "stdout", l->text, l->len);
        free(l);
        l = next;
    }
}

static void async_cb(uv_async_t *a)
{
    drain(a->data);
}

/* The failure kinds that are run.failed reasons of their own
 * (schemas/events/run.failed.schema.json lists them): a requester or a
 * program reading the run can tell a refused path or a template mistake from
 * an outage. Any other kind is "backend_error". */
static const char *public_reason(const char *kind)
{
    static const char *const reasons[] = {"invalid_path", "template_error", "push_rejected",
                                          "pull_request_failed"};
    for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
        if (strcmp(kind, reasons[i]) == 0)
            return reasons[i];
    return "backend_error";
}

static void finish(struct gitb_run *g)
{
    struct gw_gitb_job *j = &g->job;
    struct gw_run *r = g->run;
    int stop = atomic_load(&j->stop);
    char msg[sizeof(j->message) + 64];

    g->state = ST_DONE;
    if (j->ok) {
        json_t *o = j->outputs;
        j->outputs = NULL;
        gw_run_finish_succeeded(r, o);
    } else if (stop == GW_GIT_STOP_TIMEOUT) {
        snprintf(msg, sizeof(msg), "timed out after %d s", r->timeout_seconds);
        gw_run_finish_timed_out(r, msg);
    } else if (stop == GW_GIT_STOP_CANCEL) {
        gw_run_finish_cancelled(r, "cancelled");
    } else {
        const char *reason = public_reason(j->reason);
        const char *text = j->message[0] ? j->message : "failed";
        snprintf(msg, sizeof(msg), "%s: %s", reason, text);
        gw_log(GW_LOG_WARN, r->run_id, "git: %s", msg);
        /* Also in the run's own log, where its requester looks first. */
        gw_run_log(r, "stderr", msg, strlen(msg));
        gw_run_finish_failed(r, reason, -1, text);
    }
}

static void handle_closed(uv_handle_t *h)
{
    struct gitb_run *g = h->data;
    if (--g->open_handles == 0)
        finish(g);
}

static void close_handles(struct gitb_run *g)
{
    g->state = ST_CLOSING;
    drain(g);
    uv_mutex_lock(&g->job.mu);
    g->job.async_live = false;
    uv_mutex_unlock(&g->job.mu);
    uv_close((uv_handle_t *)&g->async, handle_closed);
    uv_close((uv_handle_t *)&g->timer, handle_closed);
}

static void work_cb(uv_work_t *w)
{
    struct gitb_run *g = container_of(w, struct gitb_run, work);
    if (g->job.drift)
        gw_gitb_work_drift(&g->job);
    else
        gw_gitb_work_run(&g->job);
}

static void pr_done(void *arg)
{
    struct gitb_run *g = arg;
    g->pr = NULL;
    uv_timer_stop(&g->timer);
    close_handles(g);
}

static void after_work_cb(uv_work_t *w, int status)
{
    struct gitb_run *g = container_of(w, struct gitb_run, work);
    if (status != 0 && !g->job.ok)
        gw_gitb_job_fail(&g->job, "backend_error", "work not run: %s", uv_strerror(status));
    /* The pull request is an HTTP call: on the loop, not on a pool thread. */
    if (g->job.ok && g->job.pr_head != NULL) {
        g->state = ST_PR;
        if (atomic_load(&g->job.stop) != GW_GIT_RUN) {
            gw_gitb_job_fail(&g->job, "cancelled", "pull request: stopped");
            g->job.ok = false;
            json_decref(g->job.outputs);
            g->job.outputs = NULL;
        } else if (gw_gitb_pr_start(g->run->loop, &g->job, pr_done, g, &g->pr) == 0) {
            return;
        }
    }
    uv_timer_stop(&g->timer);
    close_handles(g);
}

static void timeout_cb(uv_timer_t *t)
{
    struct gitb_run *g = t->data;
    int expected = GW_GIT_RUN;
    if (g->state != ST_WORKING && g->state != ST_PR)
        return;
    if (atomic_compare_exchange_strong(&g->job.stop, &expected, GW_GIT_STOP_TIMEOUT)) {
        gw_log(GW_LOG_WARN, g->run->run_id, "git: timeout after %d s, stopping",
               g->run->timeout_seconds);
        gw_gitb_pr_stop(g->pr);
    }
}

/* ------------------------------------------------------------ the backend (registry.h) */

/* libgit2 stays initialised for the life of the process: shutting it down
 * when the last run ends would drop the per-thread state of the thread
 * pool's threads (leaked), and re-initialising per run buys nothing. */
static uv_once_t libgit2_once = UV_ONCE_INIT;

static void libgit2_init_once(void)
{
    git_libgit2_init();
}

static bool is_drift(const struct gw_run *run)
{
    return run->operation != NULL && strcmp(run->operation, "drift") == 0;
}

/* A drift check compares with what the resource's last run wrote: its
 * outputs' "branch" and "files" ([{path, blob}], recorded since decision
 * 0068). A resource created before that has nothing to compare with. */
static int drift_baseline(const struct gw_run *run, struct gw_error *err)
{
    json_t *outs = json_object_get(run->resource, "outputs");
    json_t *files = json_object_get(outs, "files"), *f;
    const char *branch = json_string_value(json_object_get(outs, "branch"));
    size_t i;

    if (!json_is_array(files) || json_array_size(files) == 0 || branch == NULL)
        return gw_error_set(err, GW_EINVAL, false,
                            "git drift: the resource's outputs record no written files and branch "
                            "(a resource created before git drift checks): nothing to compare");
    if (!gw_gitb_branch_valid(branch))
        return gw_error_set(err, GW_EINVAL, false,
                            "git drift: the resource's recorded branch is not a valid branch name");
    json_array_foreach(files, i, f)
    {
        const char *path = json_string_value(json_object_get(f, "path"));
        const char *blob = json_string_value(json_object_get(f, "blob"));
        git_oid oid;
        if (path == NULL || path[0] == '\0' || blob == NULL || strlen(blob) != GIT_OID_HEXSZ ||
            git_oid_fromstr(&oid, blob) != 0)
            return gw_error_set(err, GW_EINVAL, false,
                                "git drift: the resource's outputs /files/%zu is not {path, blob}",
                                i);
    }
    return 0;
}

int gw_git_backend_create(struct gw_run *run, struct gw_error *err)
{
    struct gitb_run *g;
    int rc;

    uv_once(&libgit2_once, libgit2_init_once);
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    if ((rc = gw_gitb_config_parse(run->config, &g->cfg, err)) != 0) {
        free(g);
        return rc;
    }
    if (run->run_id == NULL || !gw_gitb_branch_valid(run->run_id)) {
        gw_gitb_config_finish(&g->cfg);
        free(g);
        return gw_error_set(err, GW_EINVAL, false, "git: the run id is not usable in a trailer");
    }
    if (is_drift(run) && (rc = drift_baseline(run, err)) != 0) {
        gw_gitb_config_finish(&g->cfg);
        free(g);
        return rc;
    }
    g->run = run;
    g->state = ST_CREATED;
    run->backend_data = g;
    return 0;
}

static char *env_dup(const char *name)
{
    const char *v = name ? getenv(name) : NULL;
    return v != NULL && v[0] != '\0' ? strdup(v) : NULL;
}

static char *cache_root(void)
{
    const char *v = getenv("GW_GIT_CACHE_DIR"), *base = NULL, *suffix = "/gangway/git";
    char *out = NULL;
    if (v != NULL && v[0] == '/')
        return strdup(v);
    if ((base = getenv("XDG_CACHE_HOME")) == NULL || base[0] != '/') {
        base = getenv("HOME");
        suffix = "/.cache/gangway/git";
    }
    if (base == NULL || base[0] != '/') {
        base = "/tmp";
        suffix = "/gangway-git-cache";
    }
    if (asprintf(&out, "%s%s", base, suffix) < 0)
        return NULL;
    return out;
}

int gw_git_backend_start(struct gw_run *run, struct gw_error *err)
{
    struct gitb_run *g = run->backend_data;
    struct gw_gitb_job *j = &g->job;
    char dir[4096];

    j->cfg = &g->cfg;
    j->run_id = strdup(run->run_id);
    j->requested_by = strdup(run->requested_by ? run->requested_by : "");
    j->action_id = strdup(run->action_id ? run->action_id : "");
    j->inputs = run->inputs ? json_deep_copy(run->inputs) : json_object();
    j->cache_root = cache_root();
    if (is_drift(run)) {
        json_t *outs = json_object_get(run->resource, "outputs");
        j->drift = true;
        j->drift_branch = strdup(json_string_value(json_object_get(outs, "branch")));
        j->drift_files = json_deep_copy(json_object_get(outs, "files"));
        if (j->drift_branch == NULL || j->drift_files == NULL)
            return gw_error_set(err, GW_ENOMEM, true, "git: out of memory");
    }
    if (g->cfg.templates_dir[0] == '/')
        snprintf(dir, sizeof(dir), "%s", g->cfg.templates_dir);
    else if (gw_path_default_dir(g->cfg.templates_dir, dir, sizeof(dir)) != 0)
        dir[0] = '\0';
    j->templates_dir = dir[0] ? strdup(dir) : NULL;
    j->token = env_dup(g->cfg.token_env);
    j->ssh_key = env_dup(g->cfg.ssh_key_env);
    j->pr_token = env_dup(g->cfg.pr_token_env);
    /* A key's path is not secret (its content is, and never leaves libssh2). */
    size_t ns = 0;
    if (j->token != NULL)
        j->secrets[ns++] = j->token;
    if (j->pr_token != NULL)
        j->secrets[ns++] = j->pr_token;
    j->secrets[ns] = NULL;
    if (j->run_id == NULL || j->requested_by == NULL || j->action_id == NULL || j->inputs == NULL ||
        j->cache_root == NULL || j->templates_dir == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "git: out of memory or bad templates_dir");
    if (uv_mutex_init(&j->mu) != 0)
        return gw_error_set(err, GW_EIO, true, "git: uv_mutex_init failed");
    g->mutex_ready = true;
    j->tail = &j->lines;
    atomic_init(&j->stop, GW_GIT_RUN);

    /* From here on every failure goes through the close path and finish. */
    uv_async_init(run->loop, &g->async, async_cb);
    uv_timer_init(run->loop, &g->timer);
    g->async.data = g->timer.data = g;
    g->open_handles = 2;
    j->async = &g->async;
    j->async_live = true;
    g->state = ST_WORKING;
    if (uv_queue_work(run->loop, &g->work, work_cb, after_work_cb) != 0) {
        gw_gitb_job_fail(j, "backend_error", "cannot queue the work");
        close_handles(g);
        return 0;
    }
    if (run->timeout_seconds > 0)
        uv_timer_start(&g->timer, timeout_cb, (uint64_t)run->timeout_seconds * 1000, 0);
    return 0;
}

int gw_git_backend_cancel(struct gw_run *run, enum gw_cancel_reason why)
{
    struct gitb_run *g = run->backend_data;
    int expected = GW_GIT_RUN;
    (void)why;
    if (g == NULL || (g->state != ST_WORKING && g->state != ST_PR) ||
        !atomic_compare_exchange_strong(&g->job.stop, &expected, GW_GIT_STOP_CANCEL))
        return GW_ECONFLICT;
    gw_log(GW_LOG_INFO, run->run_id, "git: cancel requested");
    gw_gitb_pr_stop(g->pr);
    return 0;
}

static void secret_free(char *s)
{
    if (s != NULL) {
        volatile char *p = s;
        while (*p)
            *p++ = '\0';
    }
    free(s);
}

void gw_git_backend_destroy(struct gw_run *run)
{
    struct gitb_run *g = run->backend_data;
    struct gw_gitb_job *j;
    if (g == NULL)
        return;
    j = &g->job;
    while (j->lines != NULL) {
        struct gw_gitb_line *next = j->lines->next;
        free(j->lines);
        j->lines = next;
    }
    if (g->mutex_ready)
        uv_mutex_destroy(&j->mu);
    free(j->run_id);
    free(j->requested_by);
    free(j->action_id);
    json_decref(j->inputs);
    json_decref(j->outputs);
    free(j->drift_branch);
    json_decref(j->drift_files);
    free(j->cache_root);
    free(j->templates_dir);
    secret_free(j->token);
    secret_free(j->ssh_key);
    secret_free(j->pr_token);
    free(j->pr_head);
    free(j->pr_title);
    free(j->pr_body);
    gw_gitb_config_finish(&g->cfg);
    free(g);
    run->backend_data = NULL;
}
