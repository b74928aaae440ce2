/*
 * The broker's current policy, reloaded on SIGHUP, and the handler helpers
 * built on it (GET /v1/me, 403 answers).
 *
 * A reload reads and parses the file on the libuv thread pool; the worker
 * thread touches only the store's `loaded`/`err` fields, which the loop
 * thread does not read until the after-work callback. The swap happens on the
 * loop thread, between requests: a request that already holds a reference
 * keeps deciding under the policy it started with.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "catalog.h"
#include "gw/log.h"
#include "policy.h"

struct gw_policy_store {
    uv_loop_t *loop;
    uv_signal_t sighup;
    uv_work_t work;
    char *path; /* NULL: built-in default, nothing to reload */
    const struct gw_catalog *cat;
    struct gw_policy *current;
    struct gw_policy *loaded; /* written by the worker thread */
    struct gw_error err;      /* likewise */
    bool busy, again, closing, handle_closed;
    unsigned long applied, refused;
};

static void store_free(struct gw_policy_store *s)
{
    gw_policy_unref(s->current);
    free(s->path);
    free(s);
}

static void reload_start(struct gw_policy_store *s);

static void reload_work(uv_work_t *w)
{
    struct gw_policy_store *s = w->data;
    gw_error_clear(&s->err);
    s->loaded = gw_policy_load(s->path, &s->err);
}

static void reload_done(uv_work_t *w, int status)
{
    struct gw_policy_store *s = w->data;
    struct gw_policy *p = s->loaded;
    char summary[512];

    s->busy = false;
    s->loaded = NULL;
    if (s->closing) {
        gw_policy_unref(p);
        if (s->handle_closed)
            store_free(s);
        return;
    }
    if (status != 0 || p == NULL) {
        s->refused++;
        gw_log_error("policy: reload refused, keeping %s: %s", gw_policy_origin(s->current),
                     status != 0 ? uv_strerror(status) : s->err.message);
    } else {
        gw_policy_lint(p, s->cat);
        gw_policy_unref(s->current);
        s->current = p;
        s->applied++;
        gw_policy_describe(p, summary, sizeof(summary));
        gw_log_info("policy: reloaded %s", summary);
    }
    if (s->again) {
        s->again = false;
        reload_start(s);
    }
}

static void reload_start(struct gw_policy_store *s)
{
    if (s->path == NULL) {
        gw_log_info("policy: SIGHUP ignored: no policy file is configured (built-in default)");
        return;
    }
    if (s->busy) {
        s->again = true; /* the file may have changed since that read began */
        return;
    }
    s->work.data = s;
    if (uv_queue_work(s->loop, &s->work, reload_work, reload_done) != 0) {
        s->refused++;
        gw_log_error("policy: cannot start a reload; keeping %s", gw_policy_origin(s->current));
        return;
    }
    s->busy = true;
}

void gw_policy_store_reload(struct gw_policy_store *s)
{
    if (s != NULL && !s->closing)
        reload_start(s);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    struct gw_policy_store *s = h->data;
    gw_log_info("policy: SIGHUP: reloading %s", s->path ? s->path : "(built-in default)");
    gw_policy_store_reload(s);
}

struct gw_policy_store *gw_policy_store_create(uv_loop_t *loop, const char *path,
                                               const struct gw_catalog *cat, struct gw_error *err)
{
    struct gw_policy_store *s = calloc(1, sizeof(*s));
    char summary[512];

    if (s == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->cat = cat;
    if (path != NULL && path[0] != '\0') {
        s->path = strdup(path);
        if (s->path == NULL) {
            gw_error_set(err, GW_ENOMEM, false, "out of memory");
            goto fail;
        }
        s->current = gw_policy_load(path, err);
    } else {
        s->current = gw_policy_builtin(err);
    }
    if (s->current == NULL)
        goto fail;
    gw_policy_lint(s->current, cat);
    gw_policy_describe(s->current, summary, sizeof(summary));
    if (s->path == NULL)
        gw_log_info("policy: no policy file configured (GW_POLICY_FILE / --policy); the built-in "
                    "default applies: every authenticated caller may run every action and read "
                    "and cancel its own and its teams' runs; API tokens with role admin have "
                    "every permission; role worker may only claim runs (%s)",
                    summary);
    else
        gw_log_info("policy: loaded %s; SIGHUP reloads it", summary);
    uv_signal_init(loop, &s->sighup);
    s->sighup.data = s;
    uv_signal_start(&s->sighup, on_sighup, SIGHUP);
    return s;

fail:
    store_free(s);
    return NULL;
}

static void handle_closed(uv_handle_t *h)
{
    struct gw_policy_store *s = h->data;
    s->handle_closed = true;
    if (!s->busy)
        store_free(s);
}

void gw_policy_store_destroy(struct gw_policy_store *s)
{
    if (s == NULL)
        return;
    s->closing = true;
    s->cat = NULL;
    uv_close((uv_handle_t *)&s->sighup, handle_closed);
}

void gw_policy_store_set_catalog(struct gw_policy_store *s, const struct gw_catalog *cat)
{
    if (s == NULL || s->closing)
        return;
    s->cat = cat;
    gw_policy_lint(s->current, cat);
}

struct gw_policy *gw_policy_store_current(const struct gw_policy_store *s)
{
    return s->current;
}

void gw_policy_store_counts(const struct gw_policy_store *s, unsigned long *applied,
                            unsigned long *refused)
{
    *applied = s->applied;
    *refused = s->refused;
}

/* ------------------------------------------------------------ helpers */

bool gw_authz_begin(struct gw_authz *z, struct gw_api_ctx *ctx)
{
    memset(z, 0, sizeof(*z));
    if (ctx->b->policy == NULL ||
        gw_authz_init(z, gw_policy_store_current(ctx->b->policy), &ctx->principal) < 0) {
        gw_api_oom(ctx);
        return false;
    }
    return true;
}

void gw_authz_forbidden(struct gw_api_ctx *ctx, const char *detail)
{
    gw_api_problem(ctx, 403, "forbidden", NULL, "%s", detail);
}

bool gw_authz_params(struct gw_api_ctx *ctx, enum gw_perm perm, struct gw_authz_filter *f,
                     const char *vis[5])
{
    struct gw_authz z;
    memset(f, 0, sizeof(*f));
    if (!gw_authz_begin(&z, ctx))
        return false;
    int rc = gw_authz_filter_init(f, &z, perm, ctx->cat, vis);
    gw_authz_finish(&z);
    if (rc < 0) {
        gw_api_oom(ctx);
        return false;
    }
    return true;
}

void gw_api_me(struct gw_api_ctx *ctx)
{
    struct gw_authz z;
    if (!gw_authz_begin(&z, ctx))
        return;
    json_t *me = gw_authz_describe(&z, ctx->cat);
    gw_authz_finish(&z);
    gw_api_reply_doc(ctx, 200, me);
}
