/*
 * The API of the action catalog: GET /v1/actions and /v1/actions/{id}, with
 * whether a worker of each action's type was seen recently, and
 * POST /v1/admin/actions/reload (catalog_reload.c does the work).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "catalog.h"
#include "catalog_reload.h"
#include "gw/log.h"
#include "policy.h"

/* Every worker type a worker claimed a run of, with whether that was within
 * the window (sql/functions/gw_worker_seen_window.sql): one JSON object
 * {type: {"seen", "last_seen_at"}}. */
static const char workers_sql[] =
    "SELECT coalesce(json_object_agg(worker_type, json_build_object("
    "'seen', last_seen_at > clock_timestamp() - gw_worker_seen_window(),"
    " 'last_seen_at', gw_ts(last_seen_at))), '{}')::text,"
    " extract(epoch FROM gw_worker_seen_window())::bigint FROM gw_worker_types_seen";

/* A copy of `action` (an object) with "workers" set from `seen`. */
static json_t *with_workers(json_t *action, json_t *seen, json_int_t window)
{
    json_t *out = json_copy(action);
    const char *type = json_string_value(json_object_get(action, "worker_type"));
    json_t *w = type != NULL ? json_object_get(seen, type) : NULL;
    json_t *steps = json_object_get(action, "steps");
    if (json_array_size(steps) > 0) {
        /* A workflow (docs/workflows.md): seen when a worker of every step's
         * type was, as of the one seen longest ago. */
        size_t i;
        json_t *st;
        w = NULL;
        json_array_foreach(steps, i, st)
        {
            json_t *sw =
                json_object_get(seen, json_string_value(json_object_get(st, "worker_type")));
            if (sw == NULL || !json_is_true(json_object_get(sw, "seen"))) {
                w = sw;
                break;
            }
            const char *at = json_string_value(json_object_get(sw, "last_seen_at"));
            const char *wat = json_string_value(json_object_get(w, "last_seen_at"));
            if (w == NULL || (at != NULL && wat != NULL && strcmp(at, wat) < 0))
                w = sw;
        }
    }
    json_t *workers = w != NULL ? json_copy(w) : json_pack("{s:b, s:n}", "seen", 0, "last_seen_at");
    if (out == NULL || workers == NULL) {
        json_decref(out);
        json_decref(workers);
        return NULL;
    }
    json_object_set_new(workers, "window_seconds", json_integer(window));
    json_object_set_new(out, "workers", workers);
    return out;
}

static json_t *seen_from(const PGresult *res, json_int_t *window)
{
    json_t *seen = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    *window = atoll(PQgetvalue(res, 0, 1));
    return seen != NULL ? seen : json_object();
}

static void list_rows(struct gw_api_ctx *ctx, const PGresult *res)
{
    json_int_t window;
    json_t *seen = seen_from(res, &window);
    json_t *items = json_array();
    size_t i;
    json_t *a;

    json_array_foreach(ctx->scratch, i, a)
        json_array_append_new(items, with_workers(a, seen, window));
    json_decref(seen);
    gw_api_reply_doc(ctx, 200, json_pack("{s:o}", "items", items));
}

/* Only the actions the caller may run, with some inputs at least: what a
 * portal shows as forms. GET /v1/me says which inputs. */
void gw_api_actions_list(struct gw_api_ctx *ctx)
{
    const struct gw_catalog *c = ctx->cat;
    struct gw_authz z;
    if (!gw_authz_begin(&z, ctx))
        return;
    json_t *items = json_array();
    for (size_t i = 0; i < c->n; i++)
        if (gw_authz_can(&z, GW_PERM_RUN, c->actions[i], NULL, NULL, 0))
            json_array_append(items, c->actions[i]->summary);
    gw_authz_finish(&z);
    if (items == NULL) {
        gw_api_oom(ctx);
        return;
    }
    ctx->scratch = items; /* freed with the context */
    gw_api_select(ctx, "workers_seen", workers_sql, 0, NULL, list_rows);
}

static void get_rows(struct gw_api_ctx *ctx, const PGresult *res)
{
    json_int_t window;
    json_t *seen = seen_from(res, &window);
    json_t *out = with_workers(ctx->scratch, seen, window);
    json_decref(seen);
    gw_api_reply_doc(ctx, 200, out);
}

void gw_api_action_get(struct gw_api_ctx *ctx)
{
    const struct gw_action *a = gw_catalog_find(ctx->cat, ctx->id);
    if (a == NULL) {
        gw_api_problem(ctx, 404, "action_not_found", NULL, "no action with id '%s'", ctx->id);
        return;
    }
    ctx->scratch = json_loads(a->public_json, 0, NULL);
    if (ctx->scratch == NULL) {
        gw_api_oom(ctx);
        return;
    }
    gw_api_select(ctx, "workers_seen", workers_sql, 0, NULL, get_rows);
}

/* ---------------------------------------------------------------- reload */

static void notified(void *arg, const PGresult *res, const struct gw_error *err)
{
    (void)res;
    struct gw_api_ctx *ctx = arg;
    json_t *body = ctx->scratch;
    ctx->scratch = NULL;
    if (err != NULL)
        gw_log_warn("catalog: reloaded here, but the other replicas were not told: %s",
                    err->message);
    json_object_set_new(body, "replicas_notified", json_boolean(err == NULL));
    gw_api_reply_doc(ctx, 200, body);
}

static void reloaded(void *arg, const struct gw_catalog_reload_result *r)
{
    struct gw_api_ctx *ctx = arg;

    if (r->outcome == GW_CATALOG_RELOAD_INVALID) {
        const struct gw_catalog_fault *f = &r->fault;
        json_t *m = json_pack("{s:s, s:i, s:i, s:s, s:s}", "file",
                              f->file[0] ? f->file : ctx->b->opts.actions_dir, "line", f->line,
                              "column", f->column, "pointer", f->pointer, "reason",
                              f->reason[0] ? f->reason : r->err.message);
        gw_api_problem_ex(ctx, 422, "invalid_action_definition", m, NULL,
                          "the catalog was not reloaded: %s", r->err.message);
        return;
    }
    if (r->outcome != GW_CATALOG_RELOAD_APPLIED) {
        gw_api_problem(ctx, 503, "unavailable", NULL, "the catalog was not reloaded: %s",
                       r->err.message);
        return;
    }
    /* The summary is borrowed: keep a copy while the other replicas are told. */
    json_t *body = json_deep_copy(r->summary);
    if (body == NULL) {
        gw_api_oom(ctx);
        return;
    }
    json_object_set_new(body, "replica",
                        json_string(gw_catalog_reloader_instance(ctx->b->catalogs)));
    ctx->scratch = body;
    const char *params[] = {gw_catalog_reloader_instance(ctx->b->catalogs)};
    if (gw_pg_query(ctx->b->pg, "catalog_notify", gw_catalog_notify_sql, 1, params, notified, ctx) <
        0) {
        struct gw_error e;
        gw_error_set(&e, GW_EUNAVAIL, true, "the database is busy");
        notified(ctx, NULL, &e);
    }
}

/* POST /v1/admin/actions/reload: admin only; no body, or an empty object. */
void gw_api_actions_reload(struct gw_api_ctx *ctx)
{
    static const char *const none[] = {NULL};
    struct gw_authz z;
    if (!gw_authz_begin(&z, ctx))
        return;
    bool admin = gw_authz_can(&z, GW_PERM_ADMIN, NULL, NULL, NULL, 0);
    gw_authz_finish(&z);
    if (!admin) {
        gw_authz_forbidden(ctx, "reloading the action catalog needs the admin permission");
        return;
    }
    if (ctx->req->body_len > 0) {
        json_t *body = gw_api_body(ctx);
        if (body == NULL)
            return;
        if (!json_is_object(body)) {
            gw_api_problem(ctx, 422, "validation_failed",
                           gw_api_field_error("", "type", "must be an object"),
                           "the body must be empty or an empty JSON object");
            return;
        }
        if (!gw_api_only_fields(ctx, body, none))
            return;
        json_decref(ctx->scratch);
        ctx->scratch = NULL;
    }
    gw_log_info("catalog: reload asked by %s", ctx->principal.subject);
    gw_catalog_reload(ctx->b->catalogs, "API", reloaded, ctx);
}
