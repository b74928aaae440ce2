/*
 * Approvals: POST /v1/runs/{id}/decisions and GET /v1/approvals. Who may
 * approve a given run is the run's approval rule (teams and roles, chosen
 * from the action's rules and the inputs at submission); the requester never
 * counts; each approver counts once; the transition to queued happens once
 * under the run's row lock (sql/functions/gw_decide.sql).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "catalog.h"
#include "gw/crypto.h"
#include "policy.h"

static const char *const decision_fields[] = {"decision", "comment", NULL};
/* A run's decision may also acknowledge the findings of a failed plan check
 * (decision 0066); an extension's has no plan. */
static const char *const run_decision_fields[] = {"decision", "comment", "acknowledge_findings",
                                                  NULL};

/* What the caller brings to a decision, resolved once from the policy: its
 * roles (policy roles and token roles) and the actions whose runs it may
 * decide, both as PostgreSQL array literals, and when it decides, the
 * decision as gw_decide's named arguments. */
struct decider {
    char *roles;
    char *actions;
    char *args; /* gw_decide's named arguments (JSON), when deciding */
};

/* The named arguments of gw_decide and gw_decide_extension
 * (sql/functions/gw_decision_args.sql): the caller and its decision.
 * acknowledge_findings is left out when not given ("O*"): only gw_decide
 * knows it, and gw_args refuses an unknown key even when it is null. */
static char *decision_args(const struct gw_api_ctx *ctx, json_t *roles, json_t *decision,
                           json_t *comment, json_t *ack)
{
    const char *teams = ctx->principal.teams_json;
    json_t *args =
        json_pack("{s:s, s:o, s:O, s:O, s:O?, s:O*}", "approver", ctx->principal.subject, "teams",
                  teams != NULL ? json_loads(teams, 0, NULL) : json_array(), "roles", roles,
                  "decision", decision, "comment", comment, "acknowledge_findings", ack);
    char *text = args != NULL ? json_dumps(args, JSON_COMPACT) : NULL;

    json_decref(args);
    return text;
}

/* `decision` NULL: listing, no decision to send. */
static bool decider_init(struct gw_api_ctx *ctx, struct decider *d, json_t *decision,
                         json_t *comment, json_t *ack)
{
    struct gw_authz z;
    json_t *acts = json_array();
    const struct gw_catalog *c = ctx->cat;

    d->roles = d->actions = d->args = NULL;
    if (!gw_authz_begin(&z, ctx)) {
        json_decref(acts);
        return false;
    }
    json_t *roles = gw_authz_roles(&z);
    for (size_t i = 0; i < c->n; i++)
        if (gw_authz_can(&z, GW_PERM_DECIDE_APPROVALS, c->actions[i], NULL, NULL, 0))
            json_array_append_new(acts, json_string(c->actions[i]->id));
    gw_authz_finish(&z);
    d->roles = gw_api_pg_array(roles);
    d->actions = gw_api_pg_array(acts);
    if (decision != NULL)
        d->args = decision_args(ctx, roles, decision, comment, ack);
    json_decref(roles);
    json_decref(acts);
    if (d->roles == NULL || d->actions == NULL || (decision != NULL && d->args == NULL)) {
        free(d->roles);
        free(d->actions);
        free(d->args);
        gw_api_oom(ctx);
        return false;
    }
    return true;
}

static void decider_finish(struct decider *d)
{
    free(d->roles);
    free(d->actions);
    free(d->args);
}

/* ---------------------------------------------------------- decisions */

/* An outcome of gw_decide / gw_decide_extension that refuses the decision. */
struct refusal {
    const char *outcome;
    int status;
    const char *code;
    const char *detail;
};

/* What differs between deciding on a run and on a resource's extension. */
struct decision_kind {
    const char *query, *sql;
    const char *comment_rule; /* errors[0].message for a bad comment */
    void (*not_found)(struct gw_api_ctx *ctx);
    const struct refusal *refusals;
    size_t n_refusals;
    bool acknowledges; /* takes acknowledge_findings (runs) */
    gw_pg_cb done;
};

/* Answers the outcome: 404 (no row, or not_found), a refusal, or 200 with
 * column 1 (and the relay woken when approved: the outbox has work). */
static void decision_done(struct gw_api_ctx *ctx, const struct decision_kind *k,
                          const PGresult *res, const struct gw_error *err)
{
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    const char *outcome = PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "not_found";
    if (strcmp(outcome, "not_found") == 0) {
        k->not_found(ctx);
        return;
    }
    if (strcmp(outcome, "findings_not_acknowledged") == 0) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/acknowledge_findings", "const", "true"),
                       "the plan failed its compliance checks: approving needs "
                       "\"acknowledge_findings\": true after reading plan_checks.findings");
        return;
    }
    for (size_t i = 0; i < k->n_refusals; i++) {
        const struct refusal *r = &k->refusals[i];
        if (strcmp(outcome, r->outcome) == 0) {
            gw_api_problem(ctx, r->status, r->code, NULL, "%s", r->detail);
            return;
        }
    }
    if (strcmp(outcome, "approved") == 0)
        gw_relay_kick(ctx->b->relay);
    gw_api_reply(ctx, 200, NULL, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
}

/* POST .../decisions {"decision": "approve"|"reject", "comment"?}: checks
 * the body, resolves what the caller may decide, runs k->sql with
 * $1 id, $2 subject, $3 teams, $4 roles, $5 the decision's named arguments,
 * $6 decidable actions, $7..$11 the read_runs visibility. */
static void decide(struct gw_api_ctx *ctx, const struct decision_kind *k)
{
    char teams_empty[] = "{}";

    if (!gw_uuid_valid(ctx->id)) {
        k->not_found(ctx);
        return;
    }
    json_t *body = gw_api_body(ctx);
    if (body == NULL ||
        !gw_api_only_fields(ctx, body, k->acknowledges ? run_decision_fields : decision_fields))
        return;
    json_t *decision = json_object_get(body, "decision");
    json_t *comment = json_object_get(body, "comment");
    json_t *ack = json_object_get(body, "acknowledge_findings");
    if (ack != NULL && !json_is_boolean(ack)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/acknowledge_findings", "type", "a boolean"),
                       "acknowledge_findings must be true or false");
        return;
    }
    if (!json_is_string(decision) || (strcmp(json_string_value(decision), "approve") != 0 &&
                                      strcmp(json_string_value(decision), "reject") != 0)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/decision", "enum", "\"approve\" or \"reject\""),
                       "decision must be \"approve\" or \"reject\"");
        return;
    }
    if (comment != NULL && (!json_is_string(comment) || gw_api_text_len(comment) > 2000)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/comment", "maxLength", k->comment_rule),
                       "comment must be a string of at most 2000 characters");
        return;
    }
    struct decider d;
    struct gw_authz_filter f;
    const char *vis[5];
    if (!decider_init(ctx, &d, decision, comment, ack))
        return;
    if (!gw_authz_params(ctx, GW_PERM_READ_RUNS, &f, vis)) {
        decider_finish(&d);
        return;
    }
    const char *params[] = {ctx->id,
                            ctx->principal.subject,
                            ctx->principal.teams_pg ? ctx->principal.teams_pg : teams_empty,
                            d.roles,
                            d.args,
                            d.actions,
                            vis[0],
                            vis[1],
                            vis[2],
                            vis[3],
                            vis[4]};
    gw_api_query_or_503(ctx, k->query, k->sql, 11, params, k->done);
    gw_authz_filter_finish(&f);
    decider_finish(&d);
}

static const struct refusal run_refusals[] = {
    {"forbidden", 403, "forbidden", "deciding on runs of this action needs decide_approvals"},
    {"not_pending", 409, "not_pending_approval", "the run is not waiting for approval"},
    {"self_approval", 403, "self_approval", "the requester of a run cannot decide on it"},
    {"not_eligible", 403, "not_an_approver",
     "you are not in the teams or roles this run's approval rule names"},
    {"already_decided", 409, "already_decided", "you already decided on this run"},
};

/* GET /v1/runs/{id} when the run is outside the caller's read scope
 * (api_runs.c asks here after finding no row): the approver exception of
 * docs/policy.md, the same rule as for deciding. Otherwise 404 as before. */
void gw_api_run_get_as_approver(struct gw_api_ctx *ctx, gw_pg_cb done)
{
    char teams_empty[] = "{}";
    struct decider d;
    if (!decider_init(ctx, &d, NULL, NULL, NULL))
        return;
    const char *params[] = {ctx->id, ctx->principal.subject,
                            ctx->principal.teams_pg ? ctx->principal.teams_pg : teams_empty,
                            d.roles, d.actions};
    gw_api_query_or_503(ctx, "run_get_approver",
                        "SELECT gw_run_json(r)::text FROM gw_runs r WHERE r.id = $1"
                        " AND ('*' = ANY ($5::text[]) OR r.action_id = ANY ($5::text[]))"
                        " AND gw_approver_sees(r.approval_rule, r.id, $2, $3::text[], $4::text[])"
                        /* While it waits, or once the caller decided on it: not
                         * every gated run of the action, forever. */
                        " AND (r.status = 'pending_approval' OR EXISTS (SELECT 1 FROM"
                        " gw_approvals a WHERE a.run_id = r.id AND a.approver = $2))",
                        5, params, done);
    decider_finish(&d);
}

static void run_decided(void *arg, const PGresult *res, const struct gw_error *err);

/* A run exists for the caller when it may read it, when its approval
 * rule names the caller (what GET /v1/approvals listed while it waited:
 * an approver who comes late learns only that it is no longer pending),
 * or when the caller already decided on it: only then does gw_decide run
 * and say why a decision is refused. Visible but not decidable:
 * forbidden. Anything else: no row, answered 404 exactly like an
 * unknown run, so nothing leaks (not even whether it is pending). */
static const struct decision_kind run_decision = {
    .query = "run_decide",
    .sql = "SELECT d.outcome, d.run::text FROM gw_runs r CROSS JOIN LATERAL gw_decide(r.id, "
           "$5::jsonb) d"
           " WHERE r.id = $1"
           " AND ('*' = ANY ($6::text[]) OR r.action_id = ANY ($6::text[]))"
           " AND (gw_visible(r.requested_by, r.requested_teams, r.action_id, $7, $8, $9, $10, $11)"
           "  OR gw_approver_sees(r.approval_rule, r.id, $2, $3::text[], $4::text[]))"
           " UNION ALL SELECT 'forbidden', NULL FROM gw_runs r WHERE r.id = $1"
           " AND NOT ('*' = ANY ($6::text[]) OR r.action_id = ANY ($6::text[]))"
           " AND gw_visible(r.requested_by, r.requested_teams, r.action_id, $7, $8, $9, $10, $11)",
    .comment_rule = "a string of at most 2000 characters",
    .not_found = gw_api_run_not_found,
    .refusals = run_refusals,
    .n_refusals = ARRAY_SIZE(run_refusals),
    .acknowledges = true,
    .done = run_decided,
};

static void run_decided(void *arg, const PGresult *res, const struct gw_error *err)
{
    decision_done(arg, &run_decision, res, err);
}

void gw_api_run_decide(struct gw_api_ctx *ctx)
{
    decide(ctx, &run_decision);
}

static void listed(void *arg, const PGresult *res, const struct gw_error *err)
{
    gw_api_reply_row(arg, res, err, gw_api_run_not_found); /* one row, always */
}

void gw_api_approvals_list(struct gw_api_ctx *ctx)
{
    char teams_empty[] = "{}";
    struct decider d;
    if (!decider_init(ctx, &d, NULL, NULL, NULL))
        return;
    const char *params[] = {ctx->principal.subject,
                            ctx->principal.teams_pg ? ctx->principal.teams_pg : teams_empty,
                            d.roles, d.actions};
    /* What the caller may decide: pending, of an action it may decide, not
     * its own, not decided by it yet (subjects compared canonical: $1 is,
     * an older row may not be; gw_subject_key), and it is in the rule's teams or roles
     * (or the rule names none). */
    int rc =
        gw_pg_query(ctx->b->pg, "approvals_list",
                    "SELECT json_build_object('items', coalesce(json_agg(gw_run_json(r)"
                    " ORDER BY r.created_at), '[]'::json))::text FROM gw_runs r"
                    " WHERE r.status = 'pending_approval' AND gw_subject_key(r.requested_by) <> $1"
                    " AND ('*' = ANY ($4::text[]) OR r.action_id = ANY ($4::text[]))"
                    " AND NOT EXISTS (SELECT 1 FROM gw_approvals a WHERE a.run_id = r.id"
                    " AND gw_subject_key(a.approver) = $1)"
                    " AND ((jsonb_array_length(coalesce(r.approval_rule -> 'from_teams', '[]')) = 0"
                    " AND jsonb_array_length(coalesce(r.approval_rule -> 'from_roles', '[]')) = 0)"
                    " OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce("
                    "r.approval_rule -> 'from_teams', '[]')) t WHERE t = ANY ($2::text[]))"
                    " OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce("
                    "r.approval_rule -> 'from_roles', '[]')) t WHERE t = ANY ($3::text[])))",
                    4, params, listed, ctx);
    decider_finish(&d);
    if (rc < 0)
        gw_api_problem(ctx, 503, "unavailable", NULL, "the broker is overloaded; retry later");
}

/* ------------------------------------------- extensions that need approval */

static const struct refusal extension_refusals[] = {
    {"forbidden", 403, "forbidden", "deciding on this action needs decide_approvals"},
    {"no_pending", 409, "no_pending_extension", "no extension of this resource is waiting"},
    {"self_approval", 403, "self_approval",
     "the requester of an extension, and the owner of the resource, cannot decide it"},
    {"not_eligible", 403, "not_an_approver",
     "you are not in the teams or roles this extension's rule names"},
    {"already_decided", 409, "already_decided", "you already decided on this extension"},
    {"not_active", 409, "resource_not_active",
     "approved, but the resource is no longer active: the extension was not applied"},
    {"over_limit", 409, "extension_over_limit",
     "approved, but it would now pass the maximum lifetime: not applied"},
    {"no_ttl", 409, "no_ttl", "the resource has no expiry"},
};

static void extension_decided(void *arg, const PGresult *res, const struct gw_error *err);

/* As for runs: a resource exists for the caller when it may read it,
 * when an extension of it waits for a decision the caller may give (or
 * asked for that extension), or when the caller decided on one of its
 * extensions. Otherwise 404, exactly like an unknown id. */
static const struct decision_kind extension_decision = {
    .query = "extension_decide",
    .sql = "SELECT d.outcome, d.resource::text FROM gw_resources r CROSS JOIN LATERAL"
           " gw_decide_extension(r.id, $5::jsonb) d WHERE r.id = $1"
           " AND ('*' = ANY ($6::text[]) OR r.action_id = ANY ($6::text[]))"
           " AND (gw_visible(r.owner_subject, r.owner_teams, r.action_id, $7, $8, $9, $10, $11)"
           "  OR EXISTS (SELECT 1 FROM gw_resource_extensions x WHERE x.resource_id = r.id"
           "   AND x.status = 'pending' AND (x.requested_by = $2"
           "   OR (jsonb_array_length(coalesce(x.rule -> 'from_teams', '[]')) = 0"
           "    AND jsonb_array_length(coalesce(x.rule -> 'from_roles', '[]')) = 0)"
           "   OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(x.rule -> 'from_teams',"
           " '[]')) t WHERE t = ANY ($3::text[]))"
           "   OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(x.rule -> 'from_roles',"
           " '[]')) t WHERE t = ANY ($4::text[]))))"
           "  OR EXISTS (SELECT 1 FROM gw_resource_extensions x JOIN gw_extension_decisions e"
           "   ON e.extension_id = x.id WHERE x.resource_id = r.id AND e.approver = $2))"
           " UNION ALL SELECT 'forbidden', NULL FROM gw_resources r WHERE r.id = $1"
           " AND NOT ('*' = ANY ($6::text[]) OR r.action_id = ANY ($6::text[]))"
           " AND gw_visible(r.owner_subject, r.owner_teams, r.action_id, $7, $8, $9, $10, $11)",
    .comment_rule = "at most 2000 characters",
    .not_found = gw_api_resource_not_found,
    .refusals = extension_refusals,
    .n_refusals = ARRAY_SIZE(extension_refusals),
    .done = extension_decided,
};

/* resource.updated waits in the outbox when approved. */
static void extension_decided(void *arg, const PGresult *res, const struct gw_error *err)
{
    decision_done(arg, &extension_decision, res, err);
}

/* POST /v1/resources/{id}/extension/decisions {"decision", "comment"} */
void gw_api_extension_decide(struct gw_api_ctx *ctx)
{
    decide(ctx, &extension_decision);
}
