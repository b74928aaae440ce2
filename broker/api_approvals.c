/*
 * Approvals: POST /v1/runs/{id}/decisions and GET /v1/approvals. Who may
 * approve a given run is the run's approval rule (teams and roles, chosen
 * from the action's rules and the inputs at submission); the requester never
 * counts; each approver counts once; the transition to queued happens once
 * under the run's row lock (gw_decide in sql/0005).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "catalog.h"
#include "gw/crypto.h"

bool gw_api_may_break_glass(const struct gw_api_ctx *ctx, const struct gw_action *a)
{
    (void)a;
    return ctx->principal.admin;
}

static json_t *one_error(const char *pointer, const char *keyword, const char *message)
{
    return json_pack("[{s:s, s:s, s:s}]", "pointer", pointer, "keyword", keyword, "message",
                     message);
}

/* The principal's roles as a PostgreSQL array literal. */
static void roles_pg(const struct gw_api_ctx *ctx, char *out, size_t cap)
{
    snprintf(out, cap, "{%s%s%s}", ctx->principal.admin ? "admin" : "",
             ctx->principal.admin && ctx->principal.worker ? "," : "",
             ctx->principal.worker ? "worker" : "");
}

static void decided(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_api_ctx *ctx = arg;
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    const char *outcome = PQgetvalue(res, 0, 0);
    const char *run = PQgetvalue(res, 0, 1);
    size_t len = (size_t)PQgetlength(res, 0, 1);
    if (strcmp(outcome, "not_found") == 0) {
        gw_api_problem(ctx, 404, "run_not_found", NULL, "no run with id '%s'", ctx->id);
    } else if (strcmp(outcome, "not_pending") == 0) {
        gw_api_problem(ctx, 409, "not_pending_approval", NULL,
                       "the run is not waiting for approval");
    } else if (strcmp(outcome, "self_approval") == 0) {
        gw_api_problem(ctx, 403, "self_approval", NULL,
                       "the requester of a run cannot decide on it");
    } else if (strcmp(outcome, "not_eligible") == 0) {
        gw_api_problem(ctx, 403, "not_an_approver", NULL,
                       "you are not in the teams or roles this run's approval rule names");
    } else if (strcmp(outcome, "already_decided") == 0) {
        gw_api_problem(ctx, 409, "already_decided", NULL, "you already decided on this run");
    } else {
        if (strcmp(outcome, "approved") == 0)
            gw_relay_kick(ctx->b->relay);
        gw_api_reply(ctx, 200, NULL, run, len);
    }
}

void gw_api_run_decide(struct gw_api_ctx *ctx)
{
    json_error_t jerr;
    json_t *body, *decision, *comment;
    char teams_empty[] = "{}";
    char roles[64];
    const char *k;
    json_t *v;

    if (!gw_uuid_valid(ctx->id)) {
        gw_api_problem(ctx, 404, "run_not_found", NULL, "no run with id '%s'", ctx->id);
        return;
    }
    body = json_loadb(ctx->req->body, ctx->req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        gw_api_problem(ctx, 400, "invalid_json", NULL, "the body is not valid JSON: %s", jerr.text);
        return;
    }
    ctx->scratch = body;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "decision") != 0 && strcmp(k, "comment") != 0) {
            char ptr[300];
            snprintf(ptr, sizeof(ptr), "/%s", k);
            gw_api_problem(ctx, 422, "validation_failed",
                           one_error(ptr, "additionalProperties", "unknown field"),
                           "unknown field '%s' in the request body", k);
            return;
        }
    }
    decision = json_object_get(body, "decision");
    comment = json_object_get(body, "comment");
    if (!json_is_string(decision) || (strcmp(json_string_value(decision), "approve") != 0 &&
                                      strcmp(json_string_value(decision), "reject") != 0)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       one_error("/decision", "enum", "\"approve\" or \"reject\""),
                       "decision must be \"approve\" or \"reject\"");
        return;
    }
    if (comment != NULL && (!json_is_string(comment) || json_string_length(comment) > 2000)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       one_error("/comment", "maxLength", "a string of at most 2000 characters"),
                       "comment must be a string of at most 2000 characters");
        return;
    }
    roles_pg(ctx, roles, sizeof(roles));
    const char *params[] = {ctx->id,
                            ctx->principal.subject,
                            ctx->principal.teams_pg ? ctx->principal.teams_pg : teams_empty,
                            roles,
                            json_string_value(decision),
                            json_string_value(comment)};
    if (gw_pg_query(ctx->b->pg, "run_decide",
                    "SELECT outcome, run::text FROM gw_decide($1, $2, $3::text[], $4::text[], $5,"
                    " $6)",
                    6, params, decided, ctx) < 0)
        gw_api_problem(ctx, 503, "unavailable", NULL, "the broker is overloaded; retry later");
}

static void listed(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_api_ctx *ctx = arg;
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    gw_api_reply(ctx, 200, NULL, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

void gw_api_approvals_list(struct gw_api_ctx *ctx)
{
    char teams_empty[] = "{}";
    char roles[64];
    roles_pg(ctx, roles, sizeof(roles));
    const char *params[] = {ctx->principal.subject,
                            ctx->principal.teams_pg ? ctx->principal.teams_pg : teams_empty, roles};
    /* What the caller may decide: pending, not theirs, not decided by them,
     * and they are in the rule's teams or roles (or the rule names none). */
    if (gw_pg_query(ctx->b->pg, "approvals_list",
                    "SELECT json_build_object('items', coalesce(json_agg(gw_run_json(r)"
                    " ORDER BY r.created_at), '[]'::json))::text FROM gw_runs r"
                    " WHERE r.status = 'pending_approval' AND r.requested_by <> $1"
                    " AND NOT EXISTS (SELECT 1 FROM gw_approvals a WHERE a.run_id = r.id"
                    " AND a.approver = $1)"
                    " AND ((jsonb_array_length(coalesce(r.approval_rule -> 'from_teams', '[]')) = 0"
                    " AND jsonb_array_length(coalesce(r.approval_rule -> 'from_roles', '[]')) = 0)"
                    " OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce("
                    "r.approval_rule -> 'from_teams', '[]')) t WHERE t = ANY ($2::text[]))"
                    " OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce("
                    "r.approval_rule -> 'from_roles', '[]')) t WHERE t = ANY ($3::text[])))",
                    3, params, listed, ctx) < 0)
        gw_api_problem(ctx, 503, "unavailable", NULL, "the broker is overloaded; retry later");
}
