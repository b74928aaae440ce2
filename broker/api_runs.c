/*
 * The portal-facing API: actions and runs.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "catalog.h"
#include "gw/crypto.h"
#include "gw/log.h"
#include "gw/logpos.h"
#include "policy.h"

#define IDEMPOTENCY_KEY_MAX 255

/* Only the actions the caller may run, with some inputs at least: what a
 * portal shows as forms. GET /v1/me says which inputs. */
void gw_api_actions_list(struct gw_api_ctx *ctx)
{
    const struct gw_catalog *c = ctx->b->catalog;
    struct gw_authz z;
    if (!gw_authz_begin(&z, ctx))
        return;
    json_t *items = json_array();
    for (size_t i = 0; i < c->n; i++)
        if (gw_authz_can(&z, GW_PERM_RUN, c->actions[i], NULL, NULL, 0))
            json_array_append(items, c->actions[i]->summary);
    gw_authz_finish(&z);
    json_t *page = json_pack("{s:o}", "items", items);
    char *body = page ? json_dumps(page, JSON_COMPACT) : NULL;
    json_decref(page);
    if (body == NULL) {
        gw_api_problem(ctx, 503, "unavailable", NULL, "out of memory");
        return;
    }
    gw_api_reply(ctx, 200, NULL, body, strlen(body));
    free(body);
}

void gw_api_action_get(struct gw_api_ctx *ctx)
{
    const struct gw_action *a = gw_catalog_find(ctx->b->catalog, ctx->id);
    if (a == NULL) {
        gw_api_problem(ctx, 404, "action_not_found", NULL, "no action with id '%s'", ctx->id);
        return;
    }
    gw_api_reply(ctx, 200, NULL, a->public_json, strlen(a->public_json));
}

/* --------------------------------------------------------------- submit */

struct submit {
    struct gw_api_ctx *ctx;
    char run_id[GW_UUID_LEN + 1];
};

/* Prefixes each validator error's instanceLocation with /inputs and renames
 * it to the problem's `pointer`. Steals `errors`. */
static json_t *input_errors(json_t *errors)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *loc = json_string_value(json_object_get(e, "instanceLocation"));
        char ptr[1024];
        snprintf(ptr, sizeof(ptr), "/inputs%s", loc != NULL ? loc : "");
        json_array_append_new(out, json_pack("{s:s, s:O, s:O, s:O}", "pointer", ptr, "keyword",
                                             json_object_get(e, "keyword"), "schema_pointer",
                                             json_object_get(e, "keywordLocation"), "message",
                                             json_object_get(e, "message")));
    }
    json_decref(errors);
    return out;
}

static void submit_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct submit *s = arg;
    struct gw_api_ctx *ctx = s->ctx;
    free(s);

    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    if (!PQgetisnull(res, 0, 3)) {
        /* Over a quota: nothing was stored but the denial's audit entry. */
        json_t *q = json_loads(PQgetvalue(res, 0, 3), 0, NULL);
        if (q == NULL)
            q = json_object(); /* written by our SQL: never, but never a crash either */
        char hdr[64];
        json_int_t after = json_integer_value(json_object_get(q, "retry_after"));
        const char *limit = json_string_value(json_object_get(q, "limit"));
        snprintf(hdr, sizeof(hdr), "Retry-After: %lld\r\n", (long long)(after > 0 ? after : 1));
        ctx->b->metrics.runs_rejected++;
        json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s, s:O}", "type", "about:blank", "title",
                              "Too Many Requests", "status", 429, "code", "quota_exceeded",
                              "detail", limit != NULL ? limit : "quota", "quota", q);
        char *body = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        json_decref(q);
        ctx->b->metrics.http_by_class[4]++;
        gw_http_respond(ctx->req, 429, "application/problem+json", hdr, body, strlen(body));
        free(body);
        gw_api_ctx_free(ctx);
        return;
    }
    const char *run = PQgetvalue(res, 0, 0);
    bool created = PQgetvalue(res, 0, 1)[0] == 't';
    bool conflict = PQgetvalue(res, 0, 2)[0] == 't';
    if (conflict) {
        ctx->b->metrics.runs_rejected++;
        gw_api_problem(ctx, 409, "idempotency_key_reused", NULL,
                       "this Idempotency-Key was already used with a different request");
        return;
    }
    json_t *j = json_loads(run, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "Location: /v1/runs/%s\r\n%s", id != NULL ? id : "",
             created ? "" : "Idempotent-Replayed: true\r\n");
    json_decref(j);
    if (created) {
        ctx->b->metrics.runs_accepted++;
        gw_relay_kick(ctx->b->relay);
    } else {
        ctx->b->metrics.runs_replayed++;
    }
    gw_api_reply(ctx, 202, hdr, run, (size_t)PQgetlength(res, 0, 0));
}

static bool valid_idempotency_key(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > IDEMPOTENCY_KEY_MAX)
        return false;
    for (; *k; k++)
        if (!isprint((unsigned char)*k))
            return false;
    return true;
}

/* The resource key: the value at the action's resource_key pointer, as
 * "<action>:<value>", so every run on one resource shares a partition. */
static int resource_key(const struct gw_action *a, json_t *inputs, char *out, size_t cap)
{
    json_t *v = inputs;
    const char *p = a->resource_key;
    char seg[256];

    if (p == NULL)
        return 0;
    while (p != NULL && *p == '/') {
        size_t n = strcspn(p + 1, "/");
        size_t o = 0;
        for (size_t i = 0; i < n && o + 1 < sizeof(seg); i++) {
            char c = p[1 + i];
            if (c == '~' && i + 1 < n && (p[2 + i] == '0' || p[2 + i] == '1')) {
                seg[o++] = p[2 + i] == '0' ? '~' : '/';
                i++;
            } else {
                seg[o++] = c;
            }
        }
        seg[o] = '\0';
        v = json_object_get(v, seg);
        p += 1 + n;
    }
    if (json_is_string(v))
        snprintf(out, cap, "%s:%s", a->id, json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, cap, "%s:%lld", a->id, (long long)json_integer_value(v));
    else
        return 0;
    return 1;
}

/* Collects the JSON pointers where redaction replaced a value: those are
 * the secret inputs. */
static void secret_paths(json_t *orig, json_t *red, char *ptr, size_t len, size_t cap, json_t *out)
{
    if (json_is_string(red) && strcmp(json_string_value(red), "[redacted]") == 0 &&
        !json_equal(orig, red)) {
        json_array_append_new(out, json_stringn(ptr, len));
        return;
    }
    if (json_is_object(orig) && json_is_object(red)) {
        const char *k;
        json_t *v;
        json_object_foreach(orig, k, v)
        {
            size_t n = len;
            if (n + 1 >= cap)
                return;
            ptr[n++] = '/';
            for (const char *c = k; *c && n + 2 < cap; c++) {
                if (*c == '~' || *c == '/') {
                    ptr[n++] = '~';
                    ptr[n++] = *c == '~' ? '0' : '1';
                } else {
                    ptr[n++] = *c;
                }
            }
            secret_paths(v, json_object_get(red, k), ptr, n, cap, out);
        }
    } else if (json_is_array(orig) && json_is_array(red)) {
        for (size_t i = 0; i < json_array_size(orig); i++) {
            int n = snprintf(ptr + len, cap - len, "/%zu", i);
            if (n < 0 || (size_t)n >= cap - len)
                return;
            secret_paths(json_array_get(orig, i), json_array_get(red, i), ptr, len + (size_t)n, cap,
                         out);
        }
    }
}

void gw_api_run_submit(struct gw_api_ctx *ctx)
{
    struct gw_http_req *req = ctx->req;
    const struct gw_action *a = gw_catalog_find(ctx->b->catalog, ctx->id);
    const char *ctype = gw_http_req_header(req, "content-type");
    const char *idem = gw_http_req_header(req, "idempotency-key");
    json_t *body, *inputs, *errors = NULL;
    const char *field;
    json_t *value;

    struct gw_authz z;
    char denied[600];

    if (a == NULL) {
        gw_api_problem(ctx, 404, "action_not_found", NULL, "no action with id '%s'", ctx->id);
        return;
    }
    /* Deny early when no inputs at all would be allowed; input conditions
     * are checked once defaults are filled in (an omitted input must not
     * slip past a condition on its default). */
    if (!gw_authz_begin(&z, ctx))
        return;
    if (!gw_authz_can(&z, GW_PERM_RUN, a, NULL, denied, sizeof(denied))) {
        gw_authz_finish(&z);
        gw_authz_forbidden(ctx, denied);
        return;
    }
    gw_authz_finish(&z);
    if (ctype != NULL && strncasecmp(ctype, "application/json", 16) != 0) {
        gw_api_problem(ctx, 415, "unsupported_media_type", NULL,
                       "the request body must be application/json");
        return;
    }
    if (idem != NULL && !valid_idempotency_key(idem)) {
        gw_api_problem(ctx, 400, "invalid_idempotency_key",
                       gw_api_field_error("/headers/idempotency-key", "maxLength",
                                          "1 to 255 printable ASCII characters"),
                       "the Idempotency-Key header must be 1 to 255 printable characters");
        return;
    }
    body = gw_api_body(ctx);
    if (body == NULL)
        return;
    if (!json_is_object(body)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("", "type", "must be an object"),
                       "the body must be a JSON object");
        return;
    }
    json_object_foreach(body, field, value)
    {
        if (strcmp(field, "inputs") != 0 && strcmp(field, "ttl_seconds") != 0 &&
            strcmp(field, "break_glass") != 0) {
            char ptr[300];
            snprintf(ptr, sizeof(ptr), "/%s", field);
            gw_api_problem(ctx, 422, "validation_failed",
                           gw_api_field_error(ptr, "additionalProperties", "unknown field"),
                           "unknown field '%s' in the request body", field);
            return;
        }
    }
    json_t *ttl = json_object_get(body, "ttl_seconds");
    char ttl_s[24];
    if (ttl != NULL) {
        if (!a->has_resource || a->ttl_max_s == 0) {
            gw_api_problem(ctx, 422, "validation_failed",
                           gw_api_field_error("/ttl_seconds", "not", "this action has no TTL"),
                           "action '%s' creates nothing with a lifetime", a->id);
            return;
        }
        if (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
            json_integer_value(ttl) > a->ttl_max_s) {
            char msg[96];
            snprintf(msg, sizeof(msg), "an integer from 1 to %d", a->ttl_max_s);
            gw_api_problem(
                ctx, 422, "validation_failed", gw_api_field_error("/ttl_seconds", "maximum", msg),
                "ttl_seconds must be between 1 and %d for action '%s'", a->ttl_max_s, a->id);
            return;
        }
        snprintf(ttl_s, sizeof(ttl_s), "%lld", (long long)json_integer_value(ttl));
    }
    /* Break-glass: run without the approval the action asks for, with a
     * written reason, flagged in the audit log and notified. */
    json_t *bg = json_object_get(body, "break_glass");
    const char *bg_reason = NULL;
    if (bg != NULL) {
        json_t *why = json_object_get(bg, "reason");
        if (!json_is_object(bg) || json_object_size(bg) != 1 || !json_is_string(why) ||
            gw_api_text_len(why) < 10 || gw_api_text_len(why) > 1000) {
            gw_api_problem(ctx, 422, "validation_failed",
                           gw_api_field_error("/break_glass/reason", "minLength",
                                              "a written reason of 10 to 1000 characters"),
                           "break_glass needs {\"reason\": \"...\"} with a real reason");
            return;
        }
        bg_reason = json_string_value(why);
    }
    inputs = json_object_get(body, "inputs");
    if (inputs == NULL) {
        inputs = json_object();
        json_object_set_new(body, "inputs", inputs);
    }
    if (!gw_schema_validate(a->inputs, inputs, &errors)) {
        ctx->b->metrics.runs_rejected++;
        gw_api_problem(ctx, 422, "validation_failed", input_errors(errors),
                       "the inputs do not match the input schema of action '%s'", a->id);
        return;
    }

    /* The request's fingerprint covers the whole body (inputs, TTL,
     * break-glass) and is taken before defaults are filled in, so a replay
     * is recognised whatever defaults say by then. */
    char *canon = json_dumps(body, JSON_SORT_KEYS | JSON_COMPACT);
    char hash[GW_SHA256_HEX_LEN + 1];
    gw_sha256_hex(canon, strlen(canon), hash);
    free(canon);

    gw_schema_apply_defaults(a->inputs, inputs);
    if (!gw_authz_begin(&z, ctx))
        return;
    bool allowed = gw_authz_can(&z, GW_PERM_RUN, a, inputs, denied, sizeof(denied));
    /* Break-glass is a permission of its own, checked on these inputs. */
    if (allowed && bg_reason != NULL &&
        !gw_authz_can(&z, GW_PERM_BREAK_GLASS, a, inputs, denied, sizeof(denied)))
        allowed = false;
    gw_authz_finish(&z);
    if (!allowed) {
        ctx->b->metrics.runs_rejected++;
        gw_authz_forbidden(ctx, denied);
        return;
    }
    json_t *approval = gw_action_approval_for(a, inputs);
    char *approval_s = approval != NULL ? json_dumps(approval, JSON_COMPACT) : NULL;
    json_decref(approval);
    json_t *redacted = gw_schema_redact(a->inputs, inputs);
    json_t *secrets = json_array();
    char ptrbuf[1024];
    secret_paths(inputs, redacted, ptrbuf, 0, sizeof(ptrbuf), secrets);
    char *inputs_s = json_dumps(inputs, JSON_COMPACT);
    char *redacted_s = json_dumps(redacted, JSON_COMPACT);
    char *secrets_s = json_dumps(secrets, JSON_COMPACT);
    json_decref(redacted);
    json_decref(secrets);

    struct submit *s = calloc(1, sizeof(*s));
    char key[512];
    char timeout[16], max_attempts[16];
    bool has_key = resource_key(a, inputs, key, sizeof(key));
    if (s == NULL || inputs_s == NULL || redacted_s == NULL || secrets_s == NULL ||
        gw_uuid_v4(s->run_id, NULL) < 0) {
        free(s);
        free(inputs_s);
        free(redacted_s);
        free(secrets_s);
        gw_api_problem(ctx, 503, "unavailable", NULL, "out of memory");
        return;
    }
    s->ctx = ctx;
    snprintf(timeout, sizeof(timeout), "%d", a->timeout_seconds);
    snprintf(max_attempts, sizeof(max_attempts), "%d", a->max_attempts);
    const char *params[] = {
        s->run_id,
        a->id,
        a->version,
        a->worker_type,
        has_key ? key : NULL,
        inputs_s,
        redacted_s,
        ctx->principal.subject,
        ctx->principal.teams_pg,
        idem,
        hash,
        timeout,
        max_attempts,
        a->retryable ? "true" : "false",
        secrets_s,
        ttl != NULL ? ttl_s : NULL,
        approval_s,
        a->quota,
        bg_reason,
    };
    int rc = gw_pg_query(ctx->b->pg, "submit_run",
                         "SELECT run::text, created, conflict, refused::text FROM gw_submit_run("
                         "$1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9::text[], $10, $11,"
                         " $12::int, $13::int, $14::boolean, $15::jsonb, $16::int, $17::jsonb,"
                         " $18::jsonb, $19)",
                         19, params, submit_done, s);
    free(inputs_s);
    free(redacted_s);
    free(secrets_s);
    free(approval_s);
    if (rc < 0) {
        free(s);
        gw_api_problem(ctx, 503, "unavailable", NULL, "the broker is overloaded; retry later");
    }
}

/* ----------------------------------------------------------------- reads */

static void single_json_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_api_ctx *ctx = arg;
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        gw_api_run_not_found(ctx);
        return;
    }
    gw_api_reply(ctx, 200, NULL, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

static bool run_id_ok(struct gw_api_ctx *ctx)
{
    if (gw_uuid_valid(ctx->id))
        return true;
    gw_api_run_not_found(ctx);
    return false;
}

/* Single reads filter on the caller's scope inside the query (gw_visible,
 * sql/0006_policy.sql): a run the caller may not see is 404 like a missing
 * one. */
void gw_api_run_get(struct gw_api_ctx *ctx)
{
    struct gw_authz_filter f;
    const char *params[6] = {ctx->id};
    if (!run_id_ok(ctx) || !gw_authz_params(ctx, GW_PERM_READ_RUNS, &f, params + 1))
        return;
    gw_api_query_or_503(ctx, "run_get",
                        "SELECT gw_run_json(r)::text FROM gw_runs r WHERE r.id = $1 AND gw_visible("
                        "r.requested_by, r.requested_teams, r.action_id, $2, $3, $4, $5, $6)",
                        6, params, single_json_done);
    gw_authz_filter_finish(&f);
}

void gw_api_run_events(struct gw_api_ctx *ctx)
{
    struct gw_authz_filter f;
    const char *params[6] = {ctx->id};
    if (!run_id_ok(ctx) || !gw_authz_params(ctx, GW_PERM_READ_RUNS, &f, params + 1))
        return;
    gw_api_query_or_503(
        ctx, "run_events",
        "SELECT json_build_object('items', coalesce((SELECT json_agg(json_build_object("
        "'id', e.id, 'attempt', e.attempt, 'from', e.from_status, 'to', e.to_status,"
        " 'reason', e.reason, 'actor', e.actor, 'at', gw_ts(e.created_at)) ORDER BY e.id)"
        " FROM gw_run_events e WHERE e.run_id = r.id), '[]'::json))::text"
        " FROM gw_runs r WHERE r.id = $1 AND gw_visible(r.requested_by,"
        " r.requested_teams, r.action_id, $2, $3, $4, $5, $6)",
        6, params, single_json_done);
    gw_authz_filter_finish(&f);
}

void gw_api_run_logs(struct gw_api_ctx *ctx)
{
    long long after_n = 0, limit_n = 1000;
    bool present;
    char after[24], limit[24];
    if (!run_id_ok(ctx))
        return;
    /* `pos` is a bigint: any non-negative one is a valid place to start. */
    if (!gw_api_query_int(ctx, "after", 0, LLONG_MAX, &after_n, &present) ||
        !gw_api_query_int(ctx, "limit", 1, 10000, &limit_n, &present))
        return;
    snprintf(after, sizeof(after), "%lld", after_n);
    snprintf(limit, sizeof(limit), "%lld", limit_n);
    struct gw_authz_filter f;
    const char *params[8] = {ctx->id, after, limit};
    if (!gw_authz_params(ctx, GW_PERM_READ_RUNS, &f, params + 3))
        return;
    /* Lines of every attempt, in order; `pos` (lib/gw/logpos.h) is global
     * across attempts so `after` pages with one number. */
    gw_api_query_or_503(
        ctx, "run_logs",
        "SELECT json_build_object('items', coalesce((SELECT json_agg(l ORDER BY l.pos) FROM"
        " (SELECT " GW_LOG_POS_SQL " AS pos, w.attempt, w.seq, w.stream,"
        " w.line, gw_ts(w.received_at) AS at FROM gw_worker_events w"
        " WHERE w.run_id = r.id AND w.kind = 'log'"
        " AND " GW_LOG_POS_SQL " > $2::bigint"
        " ORDER BY 1 LIMIT $3::int) l), '[]'::json), 'status', r.status)::text"
        " FROM gw_runs r WHERE r.id = $1 AND gw_visible(r.requested_by, r.requested_teams,"
        " r.action_id, $4, $5, $6, $7, $8)",
        8, params, single_json_done);
    gw_authz_filter_finish(&f);
}

static const char *const run_statuses[] = {
    "accepted", "pending_approval", "queued",    "running",  "succeeded",
    "failed",   "timed_out",        "cancelled", "rejected", "expired",
};

static void list_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_api_ctx *ctx = arg;
    if (err != NULL && err->code == GW_EINVAL) {
        /* A cursor or timestamp of the right shape that PostgreSQL cannot
         * read (month 13...): the caller's mistake, not ours. */
        gw_api_problem(ctx, 400, "invalid_parameter", NULL,
                       "a time in the query (cursor or expiring_before) is not valid");
        return;
    }
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    gw_api_reply_page(ctx, res, (int)json_integer_value(ctx->scratch));
}

void gw_api_runs_list(struct gw_api_ctx *ctx)
{
    bool too_long = false;
    char status[32], action[128], cursor[128], limit_plus[16];
    const char *p_status = NULL, *p_action = NULL, *p_ts = NULL, *p_id = NULL;
    int limit = 50;

    if (gw_api_query(ctx, "status", status, sizeof(status), &too_long)) {
        bool ok = false;
        for (size_t i = 0; i < ARRAY_SIZE(run_statuses); i++)
            ok = ok || strcmp(status, run_statuses[i]) == 0;
        if (!ok) {
            gw_api_problem(ctx, 400, "invalid_parameter",
                           gw_api_field_error("/query/status", "enum", "not a run status"),
                           "unknown status '%s'", status);
            return;
        }
        p_status = status;
    }
    if (gw_api_query(ctx, "action", action, sizeof(action), &too_long))
        p_action = action;
    if (!gw_api_query_limit(ctx, 500, &limit) ||
        !gw_api_query_cursor(ctx, cursor, sizeof(cursor), &p_ts, &p_id, &too_long))
        return;
    if (too_long) {
        gw_api_query_too_long(ctx);
        return;
    }
    struct gw_authz_filter f;
    snprintf(limit_plus, sizeof(limit_plus), "%d", limit + 1);
    const char *params[10] = {p_status, p_action, p_ts, p_id, limit_plus};
    if (!gw_authz_params(ctx, GW_PERM_READ_RUNS, &f, params + 5))
        return;
    ctx->scratch = json_integer(limit);
    gw_api_query_or_503(
        ctx, "runs_list",
        "SELECT gw_run_json(r)::text, gw_ts(r.created_at) || '~' || r.id FROM gw_runs r"
        " WHERE ($1::text IS NULL OR r.status = $1) AND ($2::text IS NULL OR"
        " r.action_id = $2) AND ($3::timestamptz IS NULL OR (r.created_at, r.id) <"
        " ($3::timestamptz, $4::uuid)) AND gw_visible(r.requested_by, r.requested_teams,"
        " r.action_id, $6, $7, $8, $9, $10)"
        " ORDER BY r.created_at DESC, r.id DESC LIMIT $5::int",
        10, params, list_done);
    gw_authz_filter_finish(&f);
}
