/*
 * Cancellation and resources: POST /v1/runs/{id}/cancel, and the resources
 * a run created, with their TTL (list, get, extend, delete = teardown).
 * The state machines live in SQL (sql/functions/); these handlers
 * check input and map outcomes to HTTP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "catalog.h"
#include "gw/crypto.h"
#include "gw/jsonptr.h"
#include "gw/jsonschema.h"
#include "policy.h"

/* A malformed id is answered like a well-formed unknown one. */
static bool id_ok(struct gw_api_ctx *ctx, void (*not_found)(struct gw_api_ctx *ctx))
{
    if (gw_uuid_valid(ctx->id))
        return true;
    not_found(ctx);
    return false;
}

/* Optional JSON body: NULL when empty; answers 400 and returns false when
 * it is not a JSON object. */
static bool optional_body(struct gw_api_ctx *ctx, json_t **out)
{
    *out = NULL;
    if (ctx->req->body_len == 0)
        return true;
    json_t *b = gw_api_body(ctx);
    if (b == NULL)
        return false;
    if (!json_is_object(b)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("", "type", "must be an object"),
                       "the body must be a JSON object");
        return false;
    }
    *out = b;
    return true;
}

/* Parameters for a change the caller may make only within its scope for
 * `perm`: subject, teams, the read_runs scope (own, team, all arrays) and
 * the scope of `perm`. The queries answer 'forbidden' for a row the caller
 * sees but may not change, and no row for one it may not see (404). */
static bool change_params(struct gw_api_ctx *ctx, enum gw_perm perm, struct gw_authz_filter f[2],
                          const char *vis[8])
{
    const char *r[5], *c[5];
    if (!gw_authz_params(ctx, GW_PERM_READ_RUNS, &f[0], r))
        return false;
    if (!gw_authz_params(ctx, perm, &f[1], c)) {
        gw_authz_filter_finish(&f[0]);
        return false;
    }
    for (int i = 0; i < 5; i++)
        vis[i] = r[i];
    for (int i = 0; i < 3; i++)
        vis[5 + i] = c[2 + i];
    return true;
}

static void change_params_finish(struct gw_authz_filter f[2])
{
    gw_authz_filter_finish(&f[0]);
    gw_authz_filter_finish(&f[1]);
}

/* The (outcome, document) row the change functions return: "not_found"
 * and an empty document when there is no row. */
static const char *outcome_row(const PGresult *res, const char **doc, size_t *len)
{
    bool found = PQntuples(res) == 1;
    *doc = found ? PQgetvalue(res, 0, 1) : "";
    *len = found ? (size_t)PQgetlength(res, 0, 1) : 0;
    return found ? PQgetvalue(res, 0, 0) : "not_found";
}

/* ---------------------------------------------------------------- cancel */

static void cancel_done(struct gw_api_ctx *ctx, const PGresult *res)
{
    const char *run;
    size_t len;
    const char *outcome = outcome_row(res, &run, &len);
    if (strcmp(outcome, "not_found") == 0) {
        gw_api_run_not_found(ctx);
    } else if (strcmp(outcome, "forbidden") == 0) {
        gw_authz_forbidden(ctx, "permission 'cancel' on this run is not granted to you");
    } else if (strcmp(outcome, "ended") == 0) {
        json_t *j = json_loads(run, 0, NULL);
        const char *st = json_string_value(json_object_get(j, "status"));
        gw_api_problem(ctx, 409, "run_ended", NULL, "the run already ended (%s)", st ? st : "?");
        json_decref(j);
    } else if (strcmp(outcome, "cancelled") == 0) {
        gw_api_reply(ctx, 200, NULL, run, len);
    } else {
        /* Running: the worker is told through gangway.control. */
        gw_relay_kick(ctx->b->relay);
        gw_api_reply(ctx, 202, NULL, run, len);
    }
}

void gw_api_run_cancel(struct gw_api_ctx *ctx)
{
    static const char *const allowed[] = {"reason", NULL};
    json_t *body;
    char actor[GW_SUBJECT_MAX + 8];

    if (!id_ok(ctx, gw_api_run_not_found) || !optional_body(ctx, &body))
        return;
    if (body != NULL && !gw_api_only_fields(ctx, body, allowed))
        return;
    json_t *reason = json_object_get(body, "reason");
    if (reason != NULL && (!json_is_string(reason) || gw_api_text_len(reason) > 500)) {
        gw_api_problem(
            ctx, 422, "validation_failed",
            gw_api_field_error("/reason", "maxLength", "a string of at most 500 characters"),
            "the reason must be a string of at most 500 characters");
        return;
    }
    snprintf(actor, sizeof(actor), "%s", ctx->principal.subject);
    struct gw_authz_filter f[2];
    const char *params[11] = {ctx->id, actor, json_string_value(reason)};
    if (!change_params(ctx, GW_PERM_CANCEL, f, params + 3))
        return;
    gw_api_select(
        ctx, "run_cancel",
        "SELECT c.outcome, c.run::text FROM gw_runs r"
        " CROSS JOIN LATERAL gw_cancel_run(r.id, $2, $3) c WHERE r.id = $1 AND "
        "gw_visible(r.requested_by, r.requested_teams, r.action_id,"
        " $4, $5, $9, $10, $11)"
        " UNION ALL SELECT 'forbidden', NULL FROM gw_runs r WHERE r.id = $1"
        " AND NOT gw_visible(r.requested_by, r.requested_teams, r.action_id, $4, $5, $9, $10, $11)"
        " AND gw_visible(r.requested_by, r.requested_teams, r.action_id, $4, $5, $6, $7, $8)",
        11, params, cancel_done);
    change_params_finish(f);
}

/* ---------------------------------------------------------------- resume */

/* One problem entry per secret input `ptrs` (the run's secret_inputs,
 * relative to its inputs) not given again: [{"pointer": "/inputs/...",
 * "keyword": "required", "message"}]. */
static json_t *missing_secret_errors(json_t *ptrs)
{
    json_t *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(ptrs, i, p)
    {
        const char *ptr = json_string_value(p);
        if (ptr == NULL)
            continue;
        struct gw_jsonptr at = GW_JSONPTR_INIT;
        if (gw_jsonptr_push(&at, "inputs") == 0 && gw_jsonptr_append(&at, ptr) == 0)
            json_array_append_new(
                out,
                json_pack("{s:s, s:s, s:s}", "pointer", gw_jsonptr_str(&at), "keyword", "required",
                          "message", "a secret input, dropped when the run ended: give it again"));
        gw_jsonptr_finish(&at);
    }
    return out;
}

static void resume_done(struct gw_api_ctx *ctx, const PGresult *res)
{
    const char *run;
    size_t len;
    const char *outcome = outcome_row(res, &run, &len);
    if (strcmp(outcome, "not_found") == 0) {
        gw_api_run_not_found(ctx);
    } else if (strcmp(outcome, "forbidden") == 0) {
        gw_authz_forbidden(ctx, "permission 'cancel' on this run is not granted to you");
    } else if (strcmp(outcome, "resumed") == 0) {
        gw_relay_kick(ctx->b->relay);
        gw_api_reply(ctx, 202, NULL, run, len);
    } else if (strcmp(outcome, "secrets_dropped") == 0) {
        /* Decision 0071: the caller gives them again in the body. */
        json_t *j = json_loads(run, 0, NULL);
        gw_api_problem(ctx, 422, "secret_inputs_required",
                       missing_secret_errors(json_object_get(j, "secret_inputs")),
                       "the workflow's secret inputs were dropped when it ended: give them again "
                       "in the body's inputs to resume it");
        json_decref(j);
    } else if (strcmp(outcome, "step_run") == 0) {
        /* A step is resumed through its workflow (decision 0071). */
        json_t *j = json_loads(run, 0, NULL);
        const char *parent = json_string_value(json_object_get(j, "parent_run"));
        const char *step = json_string_value(json_object_get(j, "step"));
        gw_api_problem_ex(ctx, 409, "not_resumable",
                          json_pack("{s:s, s:s?}", "why", "step_run", "parent_run", parent), NULL,
                          "run %s is step '%s' of workflow run %s: resume (or rerun) the workflow "
                          "run %s instead",
                          ctx->id, step ? step : "?", parent ? parent : "?", parent ? parent : "?");
        json_decref(j);
    } else {
        const char *why = strcmp(outcome, "not_workflow") == 0
                              ? "only a workflow (an action with steps) can be resumed"
                          : strcmp(outcome, "not_failed") == 0
                              ? "only a failed workflow (or a timed-out one) can be resumed"
                              : "an undo failed: reconcile the run first (POST "
                                "/v1/runs/{id}/reconcile), then resume";
        json_t *m = json_pack("{s:s}", "why", outcome);
        gw_api_problem_ex(ctx, 409, "not_resumable", m, NULL, "%s", why);
    }
}

/* The resume itself: gw_wf_resume with `inputs` (the run's whole inputs
 * with its secrets given again; NULL: none given) under the caller's
 * permission to cancel the run. */
static void resume_run(struct gw_api_ctx *ctx, const char *inputs)
{
    char actor[GW_SUBJECT_MAX + 8];
    snprintf(actor, sizeof(actor), "%s", ctx->principal.subject);
    struct gw_authz_filter f[2];
    const char *params[11] = {ctx->id, actor, inputs};
    if (!change_params(ctx, GW_PERM_CANCEL, f, params + 3))
        return;
    gw_api_select(
        ctx, "run_resume",
        "SELECT c.outcome, c.run::text FROM gw_runs r"
        " CROSS JOIN LATERAL gw_wf_resume(r.id, $2, $3::jsonb) c WHERE r.id = $1 AND "
        "gw_visible(r.requested_by, r.requested_teams, r.action_id,"
        " $4, $5, $9, $10, $11)"
        " UNION ALL SELECT 'forbidden', NULL FROM gw_runs r WHERE r.id = $1"
        " AND NOT gw_visible(r.requested_by, r.requested_teams, r.action_id, $4, $5, $9, $10, $11)"
        " AND gw_visible(r.requested_by, r.requested_teams, r.action_id, $4, $5, $6, $7, $8)",
        11, params, resume_done);
    change_params_finish(f);
}

/* Whether `v` at `at` (within the given inputs) holds only secret inputs
 * of the run (`secrets`: their pointers): a value at a secret's pointer, or
 * an object on the way to one. Else answers 422 and returns false. */
static bool only_secrets(struct gw_api_ctx *ctx, json_t *v, struct gw_jsonptr *at, json_t *secrets)
{
    const char *here = gw_jsonptr_str(at);
    size_t hl = strlen(here);
    bool on_way = false;
    size_t i;
    json_t *p;
    json_array_foreach(secrets, i, p)
    {
        const char *s = json_string_value(p);
        if (s == NULL)
            continue;
        if (strcmp(s, here) == 0)
            return true;
        if (strncmp(s, here, hl) == 0 && s[hl] == '/')
            on_way = true;
    }
    if (on_way && json_is_object(v)) {
        const char *k;
        json_t *x;
        size_t len = strlen(here);
        json_object_foreach(v, k, x)
        {
            if (gw_jsonptr_push(at, k) < 0)
                return gw_api_oom(ctx);
            bool ok = only_secrets(ctx, x, at, secrets);
            gw_jsonptr_truncate(at, len);
            if (!ok)
                return false;
        }
        return true;
    }
    if (on_way && json_is_array(v)) {
        /* A secret inside an array (/creds/0/token): its elements, by index. */
        json_t *x;
        size_t len = strlen(here), j;
        json_array_foreach(v, j, x)
        {
            if (gw_jsonptr_push_index(at, j) < 0)
                return gw_api_oom(ctx);
            bool ok = json_is_null(x) || only_secrets(ctx, x, at, secrets);
            gw_jsonptr_truncate(at, len);
            if (!ok)
                return false;
        }
        return true;
    }
    char *ptr = gw_api_printf(ctx, "/inputs%s", here);
    gw_api_problem(ctx, 422, "validation_failed",
                   gw_api_field_error(ptr ? ptr : "/inputs", "additionalProperties",
                                      "not a secret input of this run: a resume takes only the "
                                      "secret inputs, given again"),
                   "only the run's secret inputs may be given when resuming it (%s is not one)",
                   ptr ? ptr : "/inputs");
    return false;
}

/* Sets `v` (borrowed) at `ptr` in `root`, whose parent must exist (the
 * redacted copy keeps every secret's place). Returns 0, -1 when it cannot. */
static int set_at(json_t *root, const char *ptr, json_t *v)
{
    const char *slash = strrchr(ptr, '/');
    if (slash == NULL)
        return -1;
    json_t *parent = gw_jsonptr_get_n(root, ptr, (size_t)(slash - ptr));
    /* The last token, unescaped (~1 is '/', ~0 is '~'): never longer than
     * its escaped form. */
    char *tok = malloc(strlen(slash + 1) + 1);
    size_t n = 0;
    int rc = -1;
    if (tok == NULL)
        return -1;
    for (const char *c = slash + 1; *c != '\0'; c++) {
        if (c[0] == '~' && (c[1] == '0' || c[1] == '1')) {
            tok[n++] = c[1] == '0' ? '~' : '/';
            c++;
        } else {
            tok[n++] = *c;
        }
    }
    tok[n] = '\0';
    if (json_is_object(parent)) {
        rc = json_object_set(parent, tok, v);
    } else if (json_is_array(parent)) {
        char *end;
        unsigned long i = strtoul(tok, &end, 10);
        rc = *end == '\0' && end != tok ? json_array_set(parent, i, v) : -1;
    }
    free(tok);
    return rc;
}

/* The run's action, version, redacted inputs, secret pointers and input
 * schema (when the caller may see it): the given secrets are checked
 * against exactly that schema before anything changes. */
static void resume_check_done(struct gw_api_ctx *ctx, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        gw_api_run_not_found(ctx);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 5), "t") != 0) {
        /* Not a workflow that may resume: gw_wf_resume says why (409). */
        resume_run(ctx, NULL);
        return;
    }
    json_t *given = json_object_get(ctx->scratch, "inputs");
    json_t *secrets = json_loads(PQgetvalue(res, 0, 3), 0, NULL);
    json_t *merged = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
    json_t *schema_doc = json_loads(PQgetvalue(res, 0, 4), JSON_DECODE_ANY, NULL);
    const char *action_id = PQgetvalue(res, 0, 0);
    const char *version = PQgetvalue(res, 0, 1);
    struct gw_schema_registry *reg = NULL;
    struct gw_schema *own = NULL;
    const struct gw_schema *schema = NULL;
    json_t *errors = NULL;
    struct gw_jsonptr at = GW_JSONPTR_INIT;

    if (secrets == NULL || merged == NULL || schema_doc == NULL) {
        gw_api_oom(ctx);
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 6), "t") != 0) {
        /* Still held (a live resource of the workflow keeps them): a resume
         * uses those; replacing the secrets of an approved request is not
         * what resume is for. */
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/inputs", "not",
                                          "this run still holds its secret inputs: resume it "
                                          "without inputs"),
                       "the run still holds its secret inputs; resume it without \"inputs\"");
        goto out;
    }
    if (!only_secrets(ctx, given, &at, secrets))
        goto out;
    json_t *missing = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(secrets, i, p)
    {
        const char *ptr = json_string_value(p);
        json_t *v = ptr != NULL ? gw_jsonptr_get(given, ptr) : NULL;
        if (v == NULL)
            json_array_append(missing, p);
        else if (set_at(merged, ptr, v) < 0)
            json_array_append(missing, p);
    }
    if (json_array_size(missing) > 0) {
        gw_api_problem(ctx, 422, "secret_inputs_required", missing_secret_errors(missing),
                       "every secret input of the run must be given again to resume it");
        json_decref(missing);
        goto out;
    }
    json_decref(missing);
    /* The version the run ran: the catalog's when it still is the current
     * one, else compiled from the stored definition. */
    const struct gw_action *a = gw_catalog_find(ctx->cat, action_id);
    if (a != NULL && strcmp(a->version, version) == 0) {
        schema = a->inputs;
    } else {
        struct gw_error err;
        gw_error_clear(&err);
        char base[512];
        snprintf(base, sizeof(base), "https://gangway.dev/actions/%s/inputs.json", action_id);
        reg = gw_schema_registry_create(&err);
        own = reg != NULL ? gw_schema_compile(reg, schema_doc, base, NULL, &err) : NULL;
        if (own == NULL) {
            gw_api_problem(ctx, 500, "internal_error", NULL,
                           "the input schema of action '%s' version %.12s does not compile: %s",
                           action_id, version, err.message);
            goto out;
        }
        schema = own;
    }
    if (!gw_schema_validate(schema, merged, &errors)) {
        gw_api_problem(ctx, 422, "validation_failed", gw_api_input_errors(errors),
                       "the secret inputs given do not match the input schema of action '%s'",
                       action_id);
        errors = NULL;
        goto out;
    }
    const char *doc = gw_api_dump(ctx, merged, JSON_COMPACT);
    if (doc == NULL) {
        gw_api_oom(ctx);
        goto out;
    }
    resume_run(ctx, doc);
out:
    gw_jsonptr_finish(&at);
    json_decref(errors);
    json_decref(secrets);
    json_decref(merged);
    json_decref(schema_doc);
    gw_schema_destroy(own);
    gw_schema_registry_destroy(reg);
}

/* POST /v1/runs/{id}/resume [{"inputs": {secret inputs}}]: a failed (or
 * timed-out) workflow runs again from the step that failed
 * (docs/workflows.md#resume). The same permission as cancel: both act on
 * an existing run of someone the caller may act for. Secret inputs are
 * dropped when a run ends: `inputs` gives them again (decision 0071). */
void gw_api_run_resume(struct gw_api_ctx *ctx)
{
    json_t *body;

    if (!id_ok(ctx, gw_api_run_not_found) || !optional_body(ctx, &body))
        return;
    static const char *const allowed[] = {"inputs", NULL};
    if (body != NULL && !gw_api_only_fields(ctx, body, allowed))
        return;
    json_t *given = json_object_get(body, "inputs");
    if (given == NULL) {
        resume_run(ctx, NULL);
        return;
    }
    if (!json_is_object(given)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/inputs", "type", "must be an object"),
                       "inputs must be an object of the run's secret inputs");
        return;
    }
    struct gw_authz_filter f;
    const char *params[6] = {ctx->id};
    if (!gw_authz_params(ctx, GW_PERM_READ_RUNS, &f, params + 1))
        return;
    gw_api_select(ctx, "run_resume_check",
                  "SELECT r.action_id, r.action_version, r.inputs_redacted::text,"
                  " r.secret_paths::text, coalesce(a.definition -> 'inputs', '{}')::text,"
                  " r.worker_type = 'workflow' AND r.status IN ('failed', 'timed_out'),"
                  " r.secrets_dropped_at IS NOT NULL"
                  " FROM gw_runs r JOIN gw_actions a"
                  " ON a.id = r.action_id AND a.version = r.action_version"
                  " WHERE r.id = $1 AND gw_visible(r.requested_by, r.requested_teams,"
                  " r.action_id, $2, $3, $4, $5, $6)",
                  6, params, resume_check_done);
    gw_authz_filter_finish(&f);
}

/* ------------------------------------------------------------- reconcile */

static void reconcile_done(struct gw_api_ctx *ctx, const PGresult *res)
{
    const char *outcome = PQgetvalue(res, 0, 0);
    if (strcmp(outcome, "not_found") == 0)
        gw_api_run_not_found(ctx);
    else if (strcmp(outcome, "not_needed") == 0)
        gw_api_problem(ctx, 409, "not_flagged", NULL, "the run is not marked for reconciliation");
    else
        gw_api_reply(ctx, 200, NULL, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
}

/* POST /v1/runs/{id}/reconcile {"note": "..."}: an operator has checked the
 * target system after a worker was lost mid-run, and clears the flag. */
void gw_api_run_reconcile(struct gw_api_ctx *ctx)
{
    static const char *const allowed[] = {"note", NULL};
    json_t *body;

    /* Admins only, whatever the id: the answer to anyone else says nothing
     * about which runs exist. */
    struct gw_authz z;
    if (!gw_authz_begin(&z, ctx))
        return;
    bool admin = gw_authz_can(&z, GW_PERM_ADMIN, NULL, NULL, NULL, 0);
    gw_authz_finish(&z);
    if (!admin) {
        gw_authz_forbidden(ctx, "clearing reconciliation needs the admin permission");
        return;
    }
    if (!id_ok(ctx, gw_api_run_not_found) || !optional_body(ctx, &body))
        return;
    if (body != NULL && !gw_api_only_fields(ctx, body, allowed))
        return;
    json_t *note = json_object_get(body, "note");
    if (!json_is_string(note) || gw_api_text_len(note) < 3 || gw_api_text_len(note) > 2000) {
        gw_api_problem(
            ctx, 422, "validation_failed",
            gw_api_field_error("/note", "minLength", "what was checked, 3 to 2000 characters"),
            "say what you checked: {\"note\": \"...\"}");
        return;
    }
    const char *params[] = {ctx->id, ctx->principal.subject, json_string_value(note)};
    gw_api_select(ctx, "run_reconcile",
                  "SELECT outcome, run::text FROM gw_reconcile_run($1, $2, $3)", 3, params,
                  reconcile_done);
}

/* ------------------------------------------------------------- resources */

static void resource_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    gw_api_reply_row(arg, res, err, gw_api_resource_not_found);
}

void gw_api_resource_get(struct gw_api_ctx *ctx)
{
    struct gw_authz_filter f;
    const char *params[6] = {ctx->id};
    if (!id_ok(ctx, gw_api_resource_not_found) ||
        !gw_authz_params(ctx, GW_PERM_READ_RUNS, &f, params + 1))
        return;
    gw_api_query_or_503(
        ctx, "resource_get",
        "SELECT gw_resource_json(r)::text FROM gw_resources r WHERE r.id = $1"
        " AND gw_visible(r.owner_subject, r.owner_teams, r.action_id, $2, $3, $4, $5, $6)",
        6, params, resource_done);
    gw_authz_filter_finish(&f);
}

static const char *const resource_statuses[] = {"active", "tearing_down", "teardown_failed",
                                                "deleted"};
static const char *const drift_statuses[] = {"in_sync", "drifted", "check_failed"};

void gw_api_resources_list(struct gw_api_ctx *ctx)
{
    bool too_long = false;
    char team[128], kind[128], before[64];
    const char *p_team = NULL, *p_kind = NULL, *p_before = NULL, *p_status = NULL, *p_drift = NULL;
    struct gw_api_page page = {.limit = 50};

    if (gw_api_query(ctx, "team", team, sizeof(team), &too_long))
        p_team = team;
    if (gw_api_query(ctx, "kind", kind, sizeof(kind), &too_long))
        p_kind = kind;
    if (gw_api_query(ctx, "expiring_before", before, sizeof(before), &too_long)) {
        /* An RFC 3339 timestamp; PostgreSQL parses it, we only check its shape. */
        if (strlen(before) < 10 || strspn(before, "0123456789-:TZ.+ ") != strlen(before)) {
            gw_api_problem(
                ctx, 400, "invalid_parameter",
                gw_api_field_error("/query/expiring_before", "format", "an RFC 3339 time"),
                "'expiring_before' must be an RFC 3339 timestamp");
            return;
        }
        p_before = before;
    }
    if (!gw_api_query_enum(ctx, "status", resource_statuses, ARRAY_SIZE(resource_statuses),
                           "not a resource status", &p_status, &too_long))
        return;
    if (!gw_api_query_enum(ctx, "drift", drift_statuses, ARRAY_SIZE(drift_statuses),
                           "not a drift status", &p_drift, &too_long))
        return;
    if (!gw_api_query_page(ctx, &page, 500, too_long))
        return;
    struct gw_authz_filter f;
    const char *params[13] = {p_team,  p_kind,  p_before,        p_status,
                              page.ts, page.id, page.limit_plus, [12] = p_drift};
    if (!gw_authz_params(ctx, GW_PERM_READ_RUNS, &f, params + 7))
        return;
    /* Deleted resources are listed only when asked for by status. */
    gw_api_query_or_503(
        ctx, "resources_list",
        "SELECT gw_resource_json(r)::text, gw_ts(r.created_at) || '~' || r.id"
        " FROM gw_resources r"
        " WHERE ($1::text IS NULL OR $1 = ANY (r.owner_teams))"
        " AND ($2::text IS NULL OR r.kind = $2)"
        " AND ($3::timestamptz IS NULL OR r.expires_at < $3::timestamptz)"
        " AND (CASE WHEN $4::text IS NULL THEN r.status <> 'deleted' ELSE r.status = $4 END)"
        " AND ($5::timestamptz IS NULL OR (r.created_at, r.id) < ($5::timestamptz, $6::uuid))"
        " AND gw_visible(r.owner_subject, r.owner_teams, r.action_id, $8, $9, $10, $11, $12)"
        " AND ($13::text IS NULL OR r.drift_status = $13)"
        " ORDER BY r.created_at DESC, r.id DESC LIMIT $7::int",
        13, params, gw_api_page_done);
    gw_authz_filter_finish(&f);
}

static void change_done(struct gw_api_ctx *ctx, const PGresult *res)
{
    const char *body;
    size_t len;
    const char *outcome = outcome_row(res, &body, &len);
    if (strcmp(outcome, "not_found") == 0) {
        gw_api_resource_not_found(ctx);
    } else if (strcmp(outcome, "forbidden") == 0) {
        gw_authz_forbidden(ctx, "permission 'manage_resources' on this resource is not granted "
                                "to you");
    } else if (strcmp(outcome, "not_active") == 0) {
        json_t *j = json_loads(body, 0, NULL);
        const char *st = json_string_value(json_object_get(j, "status"));
        gw_api_problem(ctx, 409, "resource_not_active", NULL,
                       "the resource is %s; only an active resource can change", st ? st : "gone");
        json_decref(j);
    } else if (strcmp(outcome, "no_ttl") == 0) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/seconds", "not", "the resource has no expiry"),
                       "this resource has no expiry to extend");
    } else if (strcmp(outcome, "over_limit") == 0) {
        gw_api_problem(
            ctx, 422, "extension_over_limit",
            gw_api_field_error("/seconds", "maximum", "past the action's maximum lifetime"),
            "the extension would pass the resource's maximum lifetime");
    } else if (strcmp(outcome, "extension_pending") == 0) {
        gw_api_problem(ctx, 409, "extension_pending", NULL,
                       "an extension of this resource is already waiting for approval");
    } else if (strcmp(outcome, "pending") == 0) {
        /* The action wants extensions approved: the request waits. */
        gw_api_reply(ctx, 202, NULL, body, len);
    } else if (strcmp(outcome, "teardown_started") == 0) {
        gw_relay_kick(ctx->b->relay);
        gw_api_reply(ctx, 202, NULL, body, len);
    } else {
        gw_relay_kick(ctx->b->relay); /* resource.updated waits in the outbox */
        gw_api_reply(ctx, 200, NULL, body, len);
    }
}

void gw_api_resource_extend(struct gw_api_ctx *ctx)
{
    static const char *const allowed[] = {"seconds", "justification", NULL};
    json_t *body;
    char secs[24];
    const char *why;

    if (!id_ok(ctx, gw_api_resource_not_found) || !optional_body(ctx, &body))
        return;
    if (body == NULL) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/seconds", "required", "how many seconds to add"),
                       "the body must be {\"seconds\": N}");
        return;
    }
    if (!gw_api_only_fields(ctx, body, allowed))
        return;
    json_t *s = json_object_get(body, "seconds");
    if (!json_is_integer(s) || json_integer_value(s) < 1 || json_integer_value(s) > 31536000) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/seconds", s == NULL ? "required" : "minimum",
                                          "an integer number of seconds from 1 to 31536000"),
                       "'seconds' must be an integer from 1 to 31536000");
        return;
    }
    if (!gw_api_justification(ctx, json_object_get(body, "justification"), &why))
        return;
    snprintf(secs, sizeof(secs), "%lld", (long long)json_integer_value(s));
    struct gw_authz_filter f[2];
    const char *params[12] = {ctx->id, secs, ctx->principal.subject};
    params[11] = why; /* NULL: none */
    if (!change_params(ctx, GW_PERM_MANAGE_RESOURCES, f, params + 3))
        return;
    gw_api_select(
        ctx, "resource_extend",
        "SELECT c.outcome, c.resource::text FROM gw_resources r"
        " CROSS JOIN LATERAL gw_extend_resource(r.id, $2::int, $3, $12::text) c WHERE r.id = $1"
        " AND gw_visible(r.owner_subject, r.owner_teams, r.action_id, $4, $5, $9, $10, $11)"
        " UNION ALL SELECT 'forbidden', NULL FROM gw_resources r WHERE r.id = $1 AND NOT"
        " gw_visible(r.owner_subject, r.owner_teams, r.action_id, $4, $5, $9, $10, $11)"
        " AND gw_visible(r.owner_subject, r.owner_teams, r.action_id, $4, $5, $6, $7, $8)",
        12, params, change_done);
    change_params_finish(f);
}

void gw_api_resource_delete(struct gw_api_ctx *ctx)
{
    struct gw_authz_filter f[2];
    const char *params[10] = {ctx->id, ctx->principal.subject};
    if (!id_ok(ctx, gw_api_resource_not_found) ||
        !change_params(ctx, GW_PERM_MANAGE_RESOURCES, f, params + 2))
        return;
    gw_api_select(
        ctx, "resource_delete",
        "SELECT c.outcome, c.resource::text FROM gw_resources r"
        " CROSS JOIN LATERAL gw_delete_resource(r.id, $2) c WHERE r.id = $1"
        " AND gw_visible(r.owner_subject, r.owner_teams, r.action_id, $3, $4, $8, $9, $10)"
        " UNION ALL SELECT 'forbidden', NULL FROM gw_resources r WHERE r.id = $1 AND NOT"
        " gw_visible(r.owner_subject, r.owner_teams, r.action_id, $3, $4, $8, $9, $10)"
        " AND gw_visible(r.owner_subject, r.owner_teams, r.action_id, $3, $4, $5, $6, $7)",
        10, params, change_done);
    change_params_finish(f);
}
