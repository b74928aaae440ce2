/*
 * Reloading the action catalog without a restart (docs/actions.md,
 * docs/decisions/0035-catalog-reload.md).
 *
 * A reload is one round: the actions directory is read and checked on the
 * libuv thread pool (gw_catalog_load_ex touches nothing shared), the run
 * topics of its worker types are made sure of there too (blocking admin
 * calls), then, back on the loop, every action version is recorded in
 * gw_actions through the asynchronous pool (runs reference their action by
 * id and version), and only then the broker's catalog pointer is swapped.
 * A bad file, a topic that cannot be created or a failed insert ends the
 * round with the old catalog still in force. Requests hold a reference to
 * the catalog they started with (ctx->cat), so the old one is freed when
 * the last of them answers.
 *
 * Triggers: SIGHUP (this replica), POST /v1/admin/actions/reload (this
 * replica, then a NOTIFY on `gangway_catalog` so every other replica
 * listening on the same database reloads too), and that notification.
 * A reload asked for while one runs is done after it (the files may have
 * changed since that read began); its callers wait for that second round.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "catalog_reload.h"
#include "gw/log.h"
#include "policy.h"

#define NOTIFY_CHANNEL "gangway_catalog"

struct waiter {
    gw_catalog_reload_cb cb;
    void *arg;
};

struct waiters {
    struct waiter *v;
    size_t n, cap;
};

struct gw_catalog_reloader {
    struct gw_broker *b;
    uv_signal_t sighup;
    uv_work_t work;
    bool busy, again, closing, handle_closed;
    struct waiters round; /* told when the running round ends */
    struct waiters next;  /* asked while it ran: told after the next one */
    /* Written by the thread-pool worker, read on the loop after it. */
    struct gw_catalog *loaded;
    struct gw_catalog_reload_result res;
};

static void waiters_free(struct waiters *w)
{
    free(w->v);
    memset(w, 0, sizeof(*w));
}

static int waiters_add(struct waiters *w, gw_catalog_reload_cb cb, void *arg)
{
    if (cb == NULL)
        return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4;
        struct waiter *v = realloc(w->v, cap * sizeof(*v));
        if (v == NULL)
            return GW_ENOMEM;
        w->v = v;
        w->cap = cap;
    }
    w->v[w->n++] = (struct waiter){cb, arg};
    return 0;
}

static void reloader_free(struct gw_catalog_reloader *r)
{
    waiters_free(&r->round);
    waiters_free(&r->next);
    json_decref(r->res.summary);
    free(r);
}

static void round_start(struct gw_catalog_reloader *r);

/* The differences between two catalogs, for the answer and the log:
 * {"actions": n, "added": [...], "changed": [...], "removed": [...]}. */
static json_t *diff(const struct gw_catalog *old, const struct gw_catalog *cur)
{
    json_t *added = json_array(), *changed = json_array(), *removed = json_array();
    for (size_t i = 0; i < cur->n; i++) {
        const struct gw_action *a = cur->actions[i];
        const struct gw_action *o = old != NULL ? gw_catalog_find(old, a->id) : NULL;
        if (o == NULL)
            json_array_append_new(added, json_string(a->id));
        else if (strcmp(o->version, a->version) != 0)
            json_array_append_new(changed, json_string(a->id));
    }
    for (size_t i = 0; old != NULL && i < old->n; i++)
        if (gw_catalog_find(cur, old->actions[i]->id) == NULL)
            json_array_append_new(removed, json_string(old->actions[i]->id));
    return json_pack("{s:I, s:o, s:o, s:o}", "actions", (json_int_t)cur->n, "added", added,
                     "changed", changed, "removed", removed);
}

/* Ends the round: tells its waiters, then starts the next one if asked. */
static void round_end(struct gw_catalog_reloader *r)
{
    struct gw_broker *b = r->b;
    struct waiters told = r->round;

    r->busy = false;
    memset(&r->round, 0, sizeof(r->round));
    if (r->res.outcome == GW_CATALOG_RELOAD_APPLIED) {
        b->metrics.catalog_reloads_applied++;
        char *s = json_dumps(r->res.summary, JSON_COMPACT);
        gw_log_info("catalog: reloaded %s (%s): %s", b->opts.actions_dir, r->res.origin,
                    s != NULL ? s : "");
        free(s);
    } else {
        b->metrics.catalog_reloads_failed++;
        gw_log_error("catalog: reload (%s) refused, the previous catalog stays in force: %s",
                     r->res.origin, r->res.err.message);
    }
    for (size_t i = 0; i < told.n; i++)
        told.v[i].cb(told.v[i].arg, &r->res);
    waiters_free(&told);
    json_decref(r->res.summary);
    r->res.summary = NULL;
    if (!r->again)
        return;
    r->again = false;
    r->round = r->next;
    memset(&r->next, 0, sizeof(r->next));
    if (r->closing || b->closing) {
        /* No second round while shutting down: its callers still get an answer. */
        struct gw_catalog_reload_result res = {.outcome = GW_CATALOG_RELOAD_UNAVAILABLE,
                                               .origin = "asked during a reload"};
        gw_error_set(&res.err, GW_ECLOSED, true, "the broker is shutting down");
        for (size_t i = 0; i < r->round.n; i++)
            r->round.v[i].cb(r->round.v[i].arg, &res);
        waiters_free(&r->round);
        return;
    }
    r->res.origin = "asked during a reload";
    round_start(r);
}

static void store_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    (void)res;
    struct gw_catalog_reloader *r = arg;
    struct gw_broker *b = r->b;
    struct gw_catalog *loaded = r->loaded;

    r->loaded = NULL;
    if (err != NULL || b->closing) {
        gw_catalog_unref(loaded);
        r->res.outcome = GW_CATALOG_RELOAD_UNAVAILABLE;
        gw_error_set(&r->res.err, GW_EUNAVAIL, true, "recording the action versions: %s",
                     err != NULL ? err->message : "the broker is shutting down");
        round_end(r);
        return;
    }
    struct gw_catalog *old = b->catalog;
    r->res.summary = diff(old, loaded);
    b->catalog = loaded;
    gw_policy_store_set_catalog(b->policy, loaded);
    gw_catalog_unref(old); /* requests still holding it keep it alive */
    r->res.outcome = GW_CATALOG_RELOAD_APPLIED;
    round_end(r);
}

static void load_work(uv_work_t *w)
{
    struct gw_catalog_reloader *r = w->data;
    struct gw_broker *b = r->b;

    r->loaded = gw_catalog_load_ex(b->opts.actions_dir, &r->res.fault, &r->res.err);
    if (r->loaded == NULL) {
        r->res.outcome = GW_CATALOG_RELOAD_INVALID;
        return;
    }
    /* A new worker type needs its run topic before a run can be published. */
    if (!b->opts.no_create_topics && gw_broker_ensure_topics(b, r->loaded, &r->res.err) < 0) {
        r->res.outcome = GW_CATALOG_RELOAD_UNAVAILABLE;
        gw_catalog_destroy(r->loaded);
        r->loaded = NULL;
    }
}

static void load_done(uv_work_t *w, int status)
{
    struct gw_catalog_reloader *r = w->data;

    if (r->closing) {
        gw_catalog_destroy(r->loaded);
        r->loaded = NULL;
        r->busy = false;
        if (r->handle_closed)
            reloader_free(r);
        return;
    }
    if (status != 0 && r->loaded == NULL && r->res.outcome == GW_CATALOG_RELOAD_APPLIED) {
        r->res.outcome = GW_CATALOG_RELOAD_UNAVAILABLE;
        gw_error_set(&r->res.err, GW_EIO, true, "thread pool: %s", uv_strerror(status));
    }
    if (r->loaded == NULL) {
        round_end(r);
        return;
    }
    char *param = gw_catalog_store_param(r->loaded);
    const char *params[] = {param};
    if (param == NULL || gw_pg_query(r->b->pg, "catalog_store", gw_catalog_store_sql, 1, params,
                                     store_done, r) < 0) {
        gw_catalog_destroy(r->loaded);
        r->loaded = NULL;
        r->res.outcome = GW_CATALOG_RELOAD_UNAVAILABLE;
        gw_error_set(&r->res.err, GW_EUNAVAIL, true, "the database is busy or unavailable");
        round_end(r);
    }
    free(param);
}

static void round_start(struct gw_catalog_reloader *r)
{
    memset(&r->res.fault, 0, sizeof(r->res.fault));
    gw_error_clear(&r->res.err);
    r->res.outcome = GW_CATALOG_RELOAD_APPLIED;
    r->res.summary = NULL;
    r->loaded = NULL;
    r->work.data = r;
    r->busy = true;
    if (uv_queue_work(r->b->loop, &r->work, load_work, load_done) != 0) {
        r->res.outcome = GW_CATALOG_RELOAD_UNAVAILABLE;
        gw_error_set(&r->res.err, GW_EIO, true, "cannot queue the reload on the thread pool");
        round_end(r);
    }
}

void gw_catalog_reload(struct gw_catalog_reloader *r, const char *origin, gw_catalog_reload_cb cb,
                       void *arg)
{
    if (r == NULL || r->closing || r->b->closing) {
        if (cb != NULL) {
            struct gw_catalog_reload_result res = {.outcome = GW_CATALOG_RELOAD_UNAVAILABLE,
                                                   .origin = origin};
            gw_error_set(&res.err, GW_ECLOSED, true, "the broker is shutting down");
            cb(arg, &res);
        }
        return;
    }
    if (r->busy) {
        r->again = true;
        if (waiters_add(&r->next, cb, arg) < 0 && cb != NULL) {
            struct gw_catalog_reload_result res = {.outcome = GW_CATALOG_RELOAD_UNAVAILABLE,
                                                   .origin = origin};
            gw_error_set(&res.err, GW_ENOMEM, true, "out of memory");
            cb(arg, &res);
        }
        return;
    }
    if (waiters_add(&r->round, cb, arg) < 0 && cb != NULL) {
        struct gw_catalog_reload_result res = {.outcome = GW_CATALOG_RELOAD_UNAVAILABLE,
                                               .origin = origin};
        gw_error_set(&res.err, GW_ENOMEM, true, "out of memory");
        cb(arg, &res);
        return;
    }
    r->res.origin = origin;
    round_start(r);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    struct gw_catalog_reloader *r = h->data;
    gw_log_info("catalog: SIGHUP: reloading %s", r->b->opts.actions_dir);
    gw_catalog_reload(r, "SIGHUP", NULL, NULL);
}

/* Another replica reloaded through the API; the payload is its instance id. */
static void on_notify(void *arg, const char *channel, const char *payload)
{
    (void)channel;
    struct gw_catalog_reloader *r = arg;
    if (payload != NULL && strcmp(payload, gw_catalog_reloader_instance(r)) == 0)
        return; /* our own: already reloaded */
    gw_log_info("catalog: replica %s reloaded its catalog; reloading %s",
                payload != NULL ? payload : "?", r->b->opts.actions_dir);
    gw_catalog_reload(r, "NOTIFY from another replica", NULL, NULL);
}

const char *gw_catalog_reloader_instance(const struct gw_catalog_reloader *r)
{
    return r->b->sink != NULL ? gw_sink_instance(r->b->sink) : "";
}

struct gw_catalog_reloader *gw_catalog_reloader_create(struct gw_broker *b, struct gw_error *err)
{
    struct gw_catalog_reloader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    r->b = b;
    if (gw_pg_listen(b->pg, NOTIFY_CHANNEL, on_notify, r, err) < 0) {
        free(r);
        return NULL;
    }
    uv_signal_init(b->loop, &r->sighup);
    r->sighup.data = r;
    uv_signal_start(&r->sighup, on_sighup, SIGHUP);
    return r;
}

static void handle_closed(uv_handle_t *h)
{
    struct gw_catalog_reloader *r = h->data;
    r->handle_closed = true;
    if (!r->busy)
        reloader_free(r);
}

void gw_catalog_reloader_destroy(struct gw_catalog_reloader *r)
{
    if (r == NULL)
        return;
    r->closing = true;
    uv_close((uv_handle_t *)&r->sighup, handle_closed);
}

const char gw_catalog_notify_sql[] = "SELECT pg_notify('" NOTIFY_CHANNEL "', $1)";
