/*
 * Worker operations: POST /internal/v1/workers/{id}/drain asks one worker
 * process to drain (decision 0044). The broker cannot reach a worker
 * directly (workers only talk to Kafka and make claims), so the request
 * travels the way cancels do: an outbox row for <prefix>gangway.control,
 * written with its audit entry by gw_request_worker_drain().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "policy.h"

/* A worker id as `gangway worker --worker-id` takes it and Kafka's
 * group.instance.id allows: 1-127 of [A-Za-z0-9._-]. */
static bool worker_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 127)
        return false;
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static void drain_done(struct gw_api_ctx *ctx, const PGresult *res)
{
    json_t *doc = json_pack("{s:s, s:s, s:s}", "worker_id", ctx->id, "status", "drain_requested",
                            "event_id", PQgetvalue(res, 0, 0));
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        gw_api_problem(ctx, 500, "internal", NULL, "out of memory");
        return;
    }
    gw_api_reply(ctx, 202, NULL, text, strlen(text));
    free(text);
}

/* POST /internal/v1/workers/{id}/drain {"reason": "..."}: 202 once the
 * request is recorded; the worker with that id, if one runs, stops taking
 * runs, leaves its consumer group and exits after its runs (its drain mode). */
void gw_api_worker_drain(struct gw_api_ctx *ctx)
{
    static const char *const allowed[] = {"reason", NULL};
    json_t *body = NULL, *reason;
    struct gw_authz z;
    bool admin;

    if (!gw_authz_begin(&z, ctx))
        return;
    admin = gw_authz_can(&z, GW_PERM_ADMIN, NULL, NULL, NULL, 0);
    gw_authz_finish(&z);
    if (!admin) {
        gw_authz_forbidden(ctx, "draining a worker needs the admin permission");
        return;
    }
    if (!worker_id_ok(ctx->id)) {
        gw_api_problem(
            ctx, 422, "validation_failed",
            gw_api_field_error("/worker_id", "pattern", "1 to 127 characters of A-Z a-z 0-9 . _ -"),
            "not a worker id");
        return;
    }
    if (ctx->req->body_len > 0) {
        if ((body = gw_api_body(ctx)) == NULL)
            return;
        if (!json_is_object(body)) {
            gw_api_problem(ctx, 422, "validation_failed",
                           gw_api_field_error("", "type", "must be an object"),
                           "the body must be a JSON object");
            return;
        }
        if (!gw_api_only_fields(ctx, body, allowed))
            return;
    }
    reason = json_object_get(body, "reason");
    if (reason != NULL && (!json_is_string(reason) || gw_api_text_len(reason) > 2000)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/reason", "type", "a string of at most 2000 characters"),
                       "reason must be a short text");
        return;
    }
    const char *params[] = {ctx->id, ctx->principal.subject,
                            reason != NULL ? json_string_value(reason) : NULL};
    gw_api_select(ctx, "worker_drain", "SELECT gw_request_worker_drain($1, $2, $3)::text", 3,
                  params, drain_done);
}
