/*
 * The API of actions and runs: the portal's (list, submit, read) and the
 * workers' claim.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "catalog.h"
#include "gw/crypto.h"
#include "gw/jsonptr.h"
#include "gw/log.h"
#include "gw/logpos.h"
#include "policy.h"
#include "submit_batch.h"

#define IDEMPOTENCY_KEY_MAX 255
#define JUSTIFICATION_MAX   1000

/* --------------------------------------------------------------- submit */

/*
 * POST /v1/actions/{id}/runs reads top to bottom:
 *
 *   submit_begin        the part POST /v1/actions/{id}/validate runs too:
 *     submit_authorize  the action exists and the caller may run it at all
 *     submit_parse      headers and body: what the request asks for
 *     submit_validate   inputs against the schema, the fingerprint, defaults,
 *                       then the policy's input conditions (and break-glass)
 *   submit_redact       approval rule, redacted copy, secret paths, key
 *   submit_persist      gw_submit_run's arguments, handed to the group commit
 *                       (submit_batch.h): one gw_submit_runs call for all the
 *                       submissions that arrived while the last was in flight
 *   submit_done         the reply: 202, 409 or 429
 *
 * Every step fills `struct submit` (allocated from the request's pool, so
 * nothing in it is freed by hand) and answers the request itself when it
 * returns false. Authorization is resolved once: the `struct gw_authz`
 * taken in submit_authorize answers both the early question (may this
 * caller run the action with any inputs: refused before the body is read,
 * so a caller who may not run it learns nothing of its rules) and the one
 * about the defaulted inputs, under the same policy even if a reload lands
 * in between.
 */
struct submit {
    struct gw_api_ctx *ctx;
    const struct gw_action *a;
    struct gw_authz *z; /* the caller's authorization, resolved once; NULL
                         * once submit_begin returns (it lived there) */
    char denied[600];   /* why z refused, for the 403 */
    /* submit_parse */
    json_t *body;          /* borrowed: ctx->scratch owns it */
    json_t *inputs;        /* borrowed from body */
    const char *idem;      /* Idempotency-Key, or NULL */
    json_t *ttl;           /* ttl_seconds, borrowed from body, or NULL */
    const char *bg_reason; /* break_glass.reason, or NULL */
    const char *why;       /* justification, or NULL */
    /* submit_validate */
    char hash[GW_SHA256_HEX_LEN + 1]; /* fingerprint of the body as sent */
    /* submit_redact: what gw_submit_run stores beside the inputs; owned
     * until submit_persist hands them to its arguments */
    json_t *redacted, *secrets;
    json_t *approval; /* the approval rule, or NULL */
    const char *key;  /* resource key, or NULL: the run id */
    char run_id[GW_UUID_LEN + 1];
};

/* Prefixes each validator error's instanceLocation with /inputs and renames
 * it to the problem's `pointer` (keywordLocation becomes `schema_pointer`);
 * what the keyword would have accepted (allowed, omitted, limit, pattern,
 * expected, actual, format, property) is kept as the validator reports it.
 * Steals `errors`. */
json_t *gw_api_input_errors(json_t *errors)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *loc = json_string_value(json_object_get(e, "instanceLocation"));
        struct gw_jsonptr ptr = GW_JSONPTR_INIT;
        if (gw_jsonptr_push(&ptr, "inputs") < 0 ||
            gw_jsonptr_append(&ptr, loc != NULL ? loc : "") < 0) {
            gw_jsonptr_finish(&ptr);
            continue;
        }
        json_t *o = json_pack("{s:s, s:O, s:O, s:O}", "pointer", gw_jsonptr_str(&ptr), "keyword",
                              json_object_get(e, "keyword"), "schema_pointer",
                              json_object_get(e, "keywordLocation"), "message",
                              json_object_get(e, "message"));
        gw_jsonptr_finish(&ptr);
        if (o == NULL)
            continue;
        json_object_del(e, "instanceLocation");
        json_object_del(e, "keywordLocation");
        json_object_update_missing(o, e);
        json_array_append_new(out, o);
    }
    json_decref(errors);
    return out;
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
 * "<action>:<value>", so every run on one resource shares a partition.
 * NULL when the action names none or the value is not a string or integer. */
static const char *resource_key(struct gw_api_ctx *ctx, const struct gw_action *a, json_t *inputs)
{
    json_t *v = a->resource_key != NULL ? gw_jsonptr_get(inputs, a->resource_key) : NULL;
    if (json_is_string(v))
        return gw_api_printf(ctx, "%s:%s", a->id, json_string_value(v));
    if (json_is_integer(v))
        return gw_api_printf(ctx, "%s:%lld", a->id, (long long)json_integer_value(v));
    return NULL;
}

/* Collects the JSON pointers where redaction replaced a value: those are
 * the secret inputs. `ptr` is where `orig` and `red` stand. */
static void secret_paths(json_t *orig, json_t *red, struct gw_jsonptr *ptr, json_t *out)
{
    size_t len = ptr->len;
    if (json_is_string(red) && strcmp(json_string_value(red), "[redacted]") == 0 &&
        !json_equal(orig, red)) {
        json_array_append_new(out, json_string(gw_jsonptr_str(ptr)));
        return;
    }
    if (json_is_object(orig) && json_is_object(red)) {
        const char *k;
        json_t *v;
        json_object_foreach(orig, k, v)
        {
            if (gw_jsonptr_push(ptr, k) == 0)
                secret_paths(v, json_object_get(red, k), ptr, out);
            gw_jsonptr_truncate(ptr, len);
        }
    } else if (json_is_array(orig) && json_is_array(red)) {
        for (size_t i = 0; i < json_array_size(orig); i++) {
            if (gw_jsonptr_push_index(ptr, i) == 0)
                secret_paths(json_array_get(orig, i), json_array_get(red, i), ptr, out);
            gw_jsonptr_truncate(ptr, len);
        }
    }
}

/* The action exists, and the caller may run it with some inputs at least.
 * On true, *s->z is begun (the caller finishes it); on false it is not. */
static bool submit_authorize(struct submit *s)
{
    struct gw_api_ctx *ctx = s->ctx;
    s->a = gw_catalog_find(ctx->cat, ctx->id);
    if (s->a == NULL) {
        gw_api_problem(ctx, 404, "action_not_found", NULL, "no action with id '%s'", ctx->id);
        return false;
    }
    if (!gw_authz_begin(s->z, ctx))
        return false;
    if (gw_authz_can(s->z, GW_PERM_RUN, s->a, NULL, s->denied, sizeof(s->denied)))
        return true;
    gw_authz_finish(s->z);
    gw_authz_forbidden(ctx, s->denied);
    return false;
}

/* ttl_seconds: only for an action that creates something with a lifetime,
 * within its bounds. */
static bool submit_parse_ttl(struct submit *s, json_t *ttl)
{
    struct gw_api_ctx *ctx = s->ctx;
    const struct gw_action *a = s->a;
    if (ttl == NULL)
        return true;
    if (!a->has_resource || a->ttl_max_s == 0) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/ttl_seconds", "not", "this action has no TTL"),
                       "action '%s' creates nothing with a lifetime", a->id);
        return false;
    }
    if (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
        json_integer_value(ttl) > a->ttl_max_s) {
        char msg[96];
        snprintf(msg, sizeof(msg), "an integer from 1 to %d", a->ttl_max_s);
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/ttl_seconds", "maximum", msg),
                       "ttl_seconds must be between 1 and %d for action '%s'", a->ttl_max_s, a->id);
        return false;
    }
    s->ttl = ttl;
    return true;
}

/* Break-glass: run without the approval the action asks for, with a
 * written reason, flagged in the audit log and notified. */
static bool submit_parse_break_glass(struct submit *s, json_t *bg)
{
    json_t *why = json_object_get(bg, "reason");
    if (bg == NULL)
        return true;
    if (!json_is_object(bg) || json_object_size(bg) != 1 || !json_is_string(why) ||
        gw_api_text_len(why) < 10 || gw_api_text_len(why) > 1000) {
        gw_api_problem(s->ctx, 422, "validation_failed",
                       gw_api_field_error("/break_glass/reason", "minLength",
                                          "a written reason of 10 to 1000 characters"),
                       "break_glass needs {\"reason\": \"...\"} with a real reason");
        return false;
    }
    s->bg_reason = json_string_value(why);
    return true;
}

bool gw_api_justification(struct gw_api_ctx *ctx, json_t *why, const char **out)
{
    *out = NULL;
    if (why == NULL)
        return true;
    const char *text = json_string_value(why);
    bool too_long = json_is_string(why) && gw_api_text_len(why) > JUSTIFICATION_MAX;
    if (text == NULL || too_long || strspn(text, " \t\r\n") == strlen(text)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/justification", too_long ? "maxLength" : "minLength",
                                          "a text of 1 to 1000 characters, not only blanks"),
                       too_long ? "the justification is longer than 1000 characters"
                                : "the justification must be a non-blank string");
        return false;
    }
    *out = text;
    return true;
}

/* Headers and body: what the request asks for. */
static bool submit_parse(struct submit *s)
{
    static const char *const fields[] = {"inputs", "ttl_seconds", "break_glass", "justification",
                                         NULL};
    struct gw_api_ctx *ctx = s->ctx;
    const char *ctype = gw_http_req_header(ctx->req, "content-type");

    s->idem = ctx->idempotency_key != NULL ? ctx->idempotency_key
                                           : gw_http_req_header(ctx->req, "idempotency-key");
    if (ctype != NULL && strncasecmp(ctype, "application/json", 16) != 0) {
        gw_api_problem(ctx, 415, "unsupported_media_type", NULL,
                       "the request body must be application/json");
        return false;
    }
    if (s->idem != NULL && !valid_idempotency_key(s->idem)) {
        gw_api_problem(ctx, 400, "invalid_idempotency_key",
                       gw_api_field_error("/headers/idempotency-key", "maxLength",
                                          "1 to 255 printable ASCII characters"),
                       "the Idempotency-Key header must be 1 to 255 printable characters");
        return false;
    }
    s->body = gw_api_body(ctx);
    if (s->body == NULL)
        return false;
    if (!json_is_object(s->body)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("", "type", "must be an object"),
                       "the body must be a JSON object");
        return false;
    }
    if (!gw_api_only_fields(ctx, s->body, fields) ||
        !submit_parse_ttl(s, json_object_get(s->body, "ttl_seconds")) ||
        !submit_parse_break_glass(s, json_object_get(s->body, "break_glass")) ||
        !gw_api_justification(ctx, json_object_get(s->body, "justification"), &s->why))
        return false;
    s->inputs = json_object_get(s->body, "inputs");
    if (s->inputs == NULL) {
        s->inputs = json_object();
        json_object_set_new(s->body, "inputs", s->inputs);
    }
    return true;
}

/* The inputs against the action's schema; the request's fingerprint; the
 * defaults; then the policy's conditions on the inputs as they will run. */
static bool submit_validate(struct submit *s)
{
    struct gw_api_ctx *ctx = s->ctx;
    const struct gw_action *a = s->a;
    json_t *errors = NULL;

    if (!gw_schema_validate(a->inputs, s->inputs, &errors)) {
        ctx->b->metrics.runs_rejected++;
        gw_api_problem(ctx, 422, "validation_failed", gw_api_input_errors(errors),
                       "the inputs do not match the input schema of action '%s'", a->id);
        return false;
    }
    /* The fingerprint covers the whole body (inputs, TTL, break-glass) and
     * is taken before defaults are filled in, so a replay is recognised
     * whatever defaults say by then. */
    const char *canon = gw_api_dump(ctx, s->body, JSON_SORT_KEYS | JSON_COMPACT);
    if (canon == NULL)
        return gw_api_oom(ctx);
    gw_sha256_hex(canon, strlen(canon), s->hash);
    /* Input conditions are checked once defaults are filled in: an omitted
     * input must not slip past a condition on its default. Break-glass is
     * a permission of its own, checked on these inputs. */
    gw_schema_apply_defaults(a->inputs, s->inputs);
    if (!gw_authz_can(s->z, GW_PERM_RUN, a, s->inputs, s->denied, sizeof(s->denied)) ||
        (s->bg_reason != NULL &&
         !gw_authz_can(s->z, GW_PERM_BREAK_GLASS, a, s->inputs, s->denied, sizeof(s->denied)))) {
        ctx->b->metrics.runs_rejected++;
        gw_authz_forbidden(ctx, s->denied);
        return false;
    }
    return true;
}

/* What gw_submit_run stores: the inputs, their redacted copy and the
 * pointers of the secrets in them, the approval rule, the resource key. */
static bool submit_redact(struct submit *s)
{
    struct gw_api_ctx *ctx = s->ctx;
    const struct gw_action *a = s->a;
    struct gw_jsonptr ptr = GW_JSONPTR_INIT;

    s->approval = gw_action_approval_for(a, s->inputs);
    s->redacted = gw_schema_redact(a->inputs, s->inputs);
    s->secrets = json_array();
    if (s->redacted != NULL && s->secrets != NULL)
        secret_paths(s->inputs, s->redacted, &ptr, s->secrets);
    gw_jsonptr_finish(&ptr);
    s->key = resource_key(ctx, a, s->inputs);
    if (s->redacted != NULL && s->secrets != NULL && gw_uuid_v7(s->run_id, NULL) == 0)
        return true;
    json_decref(s->approval);
    json_decref(s->redacted);
    json_decref(s->secrets);
    return gw_api_oom(ctx);
}

static void submit_done(struct gw_api_ctx *ctx, const PGresult *res, int row);

static void submit_answered(void *arg, const PGresult *res, int row, const struct gw_error *err)
{
    struct gw_api_ctx *ctx = arg;
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
    } else if (row < 0) {
        gw_log(GW_LOG_ERROR, NULL, "gw_submit_runs returned no row for a submission");
        gw_api_problem(ctx, 500, "internal_error", NULL, "the submission got no answer");
    } else {
        submit_done(ctx, res, row);
    }
}

/* gw_submit_run's named arguments (sql/functions/gw_submit_run.sql), handed
 * to the group commit, which calls gw_submit_runs with this request and the
 * others of its batch; submit_done answers. */
static void submit_persist(struct submit *s)
{
    struct gw_api_ctx *ctx = s->ctx;
    const struct gw_action *a = s->a;
    const char *teams = ctx->principal.teams_json;
    /* "o" steals: redacted, secrets, approval and the parsed teams and
     * quota go with `args`, even when packing fails. */
    json_t *args = json_pack(
        "{s:s, s:s, s:s, s:s, s:s?, s:O, s:o, s:s, s:o, s:s?, s:s, s:i, s:i, s:b, s:o, s:O?,"
        " s:o?, s:o?, s:s?, s:s?, s:s?}",
        "id", s->run_id, "action_id", a->id, "action_version", a->version, "worker_type",
        a->worker_type, "key", s->key, "inputs", s->inputs, "inputs_redacted", s->redacted,
        "subject", ctx->principal.subject, "teams",
        teams != NULL ? json_loads(teams, 0, NULL) : json_array(), "idempotency_key", s->idem,
        "request_hash", s->hash, "timeout_seconds", a->timeout_seconds, "max_attempts",
        a->max_attempts, "retryable", a->retryable, "secret_paths", s->secrets, "ttl_seconds",
        s->ttl, "approval", s->approval, "quota", a->quota ? json_loads(a->quota, 0, NULL) : NULL,
        "break_glass", s->bg_reason, "justification", s->why, "via",
        ctx->principal.via[0] != '\0' ? ctx->principal.via : NULL);
    const char *doc = args != NULL ? gw_api_dump(ctx, args, JSON_COMPACT) : NULL;
    json_decref(args);
    if (doc == NULL) {
        gw_api_oom(ctx);
        return;
    }
    if (gw_submit_batch_add(ctx->b->submits, doc, strlen(doc), submit_answered, ctx) < 0)
        gw_api_problem(ctx, 503, "unavailable", NULL, "the broker is overloaded; retry later");
}

/* What submit and validate share: authorize, parse, validate. Returns the
 * filled `struct submit` (from the request's pool), or NULL once the
 * request is answered. The authorization is finished either way, so s->z
 * is NULL on return: the later steps do not ask it again. */
static struct submit *submit_begin(struct gw_api_ctx *ctx)
{
    /* The authorization lives on this stack frame, not in the pool: the
     * steps answer (which frees the pool) before it is finished. */
    struct gw_authz z;
    struct submit *s = gw_api_alloc(ctx, sizeof(*s));
    if (s == NULL) {
        gw_api_oom(ctx);
        return NULL;
    }
    memset(s, 0, sizeof(*s));
    s->ctx = ctx;
    s->z = &z;
    if (!submit_authorize(s))
        return NULL;
    bool ok = submit_parse(s) && submit_validate(s);
    gw_authz_finish(&z);
    if (!ok)
        return NULL;
    s->z = NULL;
    return s;
}

void gw_api_run_submit(struct gw_api_ctx *ctx)
{
    struct submit *s = submit_begin(ctx);
    if (s != NULL && submit_redact(s))
        submit_persist(s);
}

/*
 * POST /v1/actions/{id}/validate: the submit pipeline's checks without the
 * run. The same body as a submit (inputs, ttl_seconds, break_glass,
 * justification; the Idempotency-Key header is checked too), the same
 * answers for what is wrong (404, 403, 415, 400, 422), and 200 with what a
 * submit would store instead of a run: the inputs with their defaults
 * (secrets redacted) and the approval rule those inputs fall under. Nothing
 * is written, not even an audit entry: a dry run of a portal (Backstage's
 * scaffolder) calls it for every preview. docs/decisions/0059.
 */
void gw_api_action_validate(struct gw_api_ctx *ctx)
{
    struct submit *s = submit_begin(ctx);
    if (s == NULL)
        return;
    const struct gw_action *a = s->a;
    json_t *approval = gw_action_approval_for(a, s->inputs);
    json_t *redacted = gw_schema_redact(a->inputs, s->inputs);
    if (redacted == NULL) {
        json_decref(approval);
        gw_api_oom(ctx);
        return;
    }
    /* "o" steals approval and redacted, even when packing fails. */
    json_t *doc =
        json_pack("{s:b, s:s, s:s, s:o, s:o}", "valid", 1, "action", a->id, "version", a->version,
                  "inputs", redacted, "approval", approval != NULL ? approval : json_null());
    /* ttl_seconds only when asked for: absent, not null (the document says integer). */
    if (doc == NULL || (s->ttl != NULL && json_object_set(doc, "ttl_seconds", s->ttl) < 0)) {
        json_decref(doc);
        gw_api_oom(ctx);
        return;
    }
    gw_api_reply_doc(ctx, 200, doc);
}

/* The reply: 202 with the run (Location; Idempotent-Replayed on a replay),
 * 409 when the Idempotency-Key came with another request, 429 over a quota. */
static void submit_done(struct gw_api_ctx *ctx, const PGresult *res, int row)
{
    /* Columns: i (the element of the batch), run, created, conflict, refused. */
    if (!PQgetisnull(res, row, 4)) {
        /* Over a quota: nothing was stored but the denial's audit entry. */
        json_t *q = json_loads(PQgetvalue(res, row, 4), 0, NULL);
        if (q == NULL)
            q = json_object(); /* written by our SQL: never, but never a crash either */
        char hdr[64];
        json_int_t after = json_integer_value(json_object_get(q, "retry_after"));
        const char *limit = json_string_value(json_object_get(q, "limit"));
        snprintf(hdr, sizeof(hdr), "Retry-After: %lld\r\n", (long long)(after > 0 ? after : 1));
        ctx->b->metrics.runs_rejected++;
        /* 'O': `limit` lives in q, which must outlive the formatting. */
        gw_api_problem_ex(ctx, 429, "quota_exceeded", json_pack("{s:O}", "quota", q), hdr, "%s",
                          limit != NULL ? limit : "quota");
        json_decref(q);
        return;
    }
    const char *run = PQgetvalue(res, row, 1);
    bool created = PQgetvalue(res, row, 2)[0] == 't';
    bool conflict = PQgetvalue(res, row, 3)[0] == 't';
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
    if (created) {
        ctx->b->metrics.runs_accepted++;
        /* Its run.requested went out with the commit (decision 0076) unless
         * the submit could not lease its row: then the relay sends it. */
        if (PQgetisnull(res, row, 5))
            gw_relay_kick(ctx->b->relay);
        /* Said loudly: the 202 body carries it too (gw_run_warnings.sql). */
        json_t *w = json_array_get(json_object_get(j, "warnings"), 0);
        if (w != NULL)
            gw_log(GW_LOG_WARN, id, "run accepted with warning %s: %s",
                   json_string_value(json_object_get(w, "code")),
                   json_string_value(json_object_get(w, "message")));
    } else {
        ctx->b->metrics.runs_replayed++;
    }
    json_decref(j);
    gw_api_reply(ctx, 202, hdr, run, (size_t)PQgetlength(res, row, 1));
}

/* ----------------------------------------------------------------- claim */

/* The internal claim endpoint workers call before they execute a run
 * (docs/decisions/0007-claim-over-internal-http.md). */

static void claim_done(struct gw_api_ctx *ctx, const PGresult *res)
{
    const char *result = PQgetvalue(res, 0, 0);
    if (strcmp(result, "granted") == 0) {
        json_error_t jerr;
        json_t *claim = json_loads(PQgetvalue(res, 0, 1), 0, &jerr);
        char *body = NULL;
        if (json_is_object(claim) &&
            json_object_set_new(claim, "heartbeat_interval_seconds",
                                json_integer(ctx->b->opts.heartbeat_interval_s)) == 0)
            body = json_dumps(claim, JSON_COMPACT);
        json_decref(claim);
        if (body == NULL) {
            /* Submit refuses what jansson cannot read back (gw/json.h), so
             * only a row written some other way gets here: the claim stands
             * granted and unheartbeated, and the reaper ends it. */
            gw_log(GW_LOG_ERROR, ctx->id, "claim reply unreadable: %s", jerr.text);
            gw_api_problem(ctx, 500, "internal_error", NULL,
                           "the run's stored claim could not be read back");
            return;
        }
        ctx->b->metrics.claims_granted++;
        gw_api_reply(ctx, 200, NULL, body, strlen(body));
        free(body);
        return;
    }
    ctx->b->metrics.claims_refused++;
    if (strcmp(result, "not_found") == 0) {
        gw_api_run_not_found(ctx);
        return;
    }
    gw_api_problem(ctx, 409, "claim_refused", NULL, "%s", result);
}

void gw_api_run_claim(struct gw_api_ctx *ctx)
{
    json_t *body;
    json_t *attempt, *worker;
    char attempt_s[16];

    /* The router admits only tokens with role worker or admin here. */
    if (!gw_uuid_valid(ctx->id)) {
        gw_api_run_not_found(ctx);
        return;
    }
    body = gw_api_body(ctx);
    if (body == NULL)
        return;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        /* Every POST body refuses fields it does not know (docs/policy.md). */
        if (strcmp(k, "attempt") != 0 && strcmp(k, "worker_id") != 0 &&
            strcmp(k, "worker_type") != 0) {
            gw_api_problem(ctx, 400, "invalid_claim", NULL, "unknown field '%s' in a claim", k);
            return;
        }
    }
    attempt = json_object_get(body, "attempt");
    worker = json_object_get(body, "worker_id");
    if (!json_is_integer(attempt) || json_integer_value(attempt) < 1 ||
        json_integer_value(attempt) > 1000000 || !json_is_string(worker) ||
        gw_api_text_len(worker) > 200) {
        gw_api_problem(ctx, 400, "invalid_claim", NULL,
                       "a claim is {\"attempt\": <int >= 1>, \"worker_id\": <string>}");
        return;
    }
    snprintf(attempt_s, sizeof(attempt_s), "%lld", (long long)json_integer_value(attempt));
    json_t *wtype = json_object_get(body, "worker_type");
    if (wtype != NULL && !json_is_string(wtype)) {
        gw_api_problem(ctx, 400, "invalid_claim", NULL, "worker_type must be a string");
        return;
    }
    /* The worker type is checked so a worker token of one pool cannot take
     * (and read the inputs of) another pool's runs. */
    const char *params[] = {ctx->id, attempt_s, json_string_value(worker),
                            json_string_value(wtype)};
    gw_api_select(ctx, "claim_run",
                  "SELECT result, claim::text FROM gw_claim_run($1::uuid, $2::int, $3, $4)", 4,
                  params, claim_done);
}

/* ------------------------------------------------------------- heartbeat */

/* The internal heartbeat endpoint of a run's supervisor (docs/reattach.md):
 * the supervisor of a detached worker's run proves the run alive here and
 * learns from the answer whether it was cancelled or taken from it. */

static void heartbeat_done(struct gw_api_ctx *ctx, const PGresult *res)
{
    const char *result = PQgetvalue(res, 0, 0);
    char body[96];
    if (strcmp(result, "not_found") == 0) {
        gw_api_run_not_found(ctx);
        return;
    }
    if (strcmp(result, "running") == 0 || strcmp(result, "cancel_requested") == 0) {
        snprintf(body, sizeof(body), "{\"result\":\"%s\"}", result);
        gw_api_reply(ctx, 200, NULL, body, strlen(body));
        return;
    }
    gw_api_problem(ctx, 409, "heartbeat_refused", NULL, "%s", result);
}

void gw_api_run_heartbeat(struct gw_api_ctx *ctx)
{
    json_t *body, *attempt, *worker, *v;
    const char *k;
    char attempt_s[16];

    /* The router admits only tokens with role worker or admin here. */
    if (!gw_uuid_valid(ctx->id)) {
        gw_api_run_not_found(ctx);
        return;
    }
    body = gw_api_body(ctx);
    if (body == NULL)
        return;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "attempt") != 0 && strcmp(k, "worker_id") != 0) {
            gw_api_problem(ctx, 400, "invalid_heartbeat",
                           gw_api_field_error("", "additionalProperties", k),
                           "unknown field '%s' in a heartbeat", k);
            return;
        }
    }
    attempt = json_object_get(body, "attempt");
    worker = json_object_get(body, "worker_id");
    if (!json_is_integer(attempt) || json_integer_value(attempt) < 1 ||
        json_integer_value(attempt) > 1000000) {
        gw_api_problem(ctx, 400, "invalid_heartbeat",
                       gw_api_field_error("/attempt", "type", "an integer from 1 to 1000000"),
                       "attempt must be an integer from 1 to 1000000");
        return;
    }
    if (!json_is_string(worker) || gw_api_text_len(worker) > 200) {
        gw_api_problem(
            ctx, 400, "invalid_heartbeat",
            gw_api_field_error("/worker_id", "type", "a string of at most 200 characters"),
            "worker_id must be a string of at most 200 characters");
        return;
    }
    snprintf(attempt_s, sizeof(attempt_s), "%lld", (long long)json_integer_value(attempt));
    const char *params[] = {ctx->id, attempt_s, json_string_value(worker)};
    gw_api_select(ctx, "heartbeat_run", "SELECT gw_heartbeat_run($1::uuid, $2::int, $3)", 3, params,
                  heartbeat_done);
}

/* ----------------------------------------------------------------- reads */

static void single_json_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    gw_api_reply_row(arg, res, err, gw_api_run_not_found);
}

static bool run_id_ok(struct gw_api_ctx *ctx)
{
    if (gw_uuid_valid(ctx->id))
        return true;
    gw_api_run_not_found(ctx);
    return false;
}

/* No row in the caller's read scope: an approver may still see it. */
static void run_get_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_api_ctx *ctx = arg;
    if (err == NULL && PQntuples(res) == 0) {
        gw_api_run_get_as_approver(ctx, single_json_done);
        return;
    }
    gw_api_reply_row(ctx, res, err, gw_api_run_not_found);
}

/* Single reads filter on the caller's scope inside the query (gw_visible,
 * sql/functions/gw_visible.sql): a run the caller may not see is 404 like a missing
 * one — except, for the run itself, to the approvers its approval rule names
 * or who decided on it (docs/policy.md; gw_api_run_get_as_approver). */
void gw_api_run_get(struct gw_api_ctx *ctx)
{
    struct gw_authz_filter f;
    const char *params[6] = {ctx->id};
    if (!run_id_ok(ctx) || !gw_authz_params(ctx, GW_PERM_READ_RUNS, &f, params + 1))
        return;
    gw_api_query_or_503(ctx, "run_get",
                        "SELECT gw_run_json(r)::text FROM gw_runs r WHERE r.id = $1 AND gw_visible("
                        "r.requested_by, r.requested_teams, r.action_id, $2, $3, $4, $5, $6)",
                        6, params, run_get_done);
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

void gw_api_runs_list(struct gw_api_ctx *ctx)
{
    bool too_long = false;
    char action[128], parent[64];
    const char *p_status = NULL, *p_action = NULL, *p_parent = NULL;
    struct gw_api_page page = {.limit = 50};

    if (!gw_api_query_enum(ctx, "status", run_statuses, ARRAY_SIZE(run_statuses),
                           "not a run status", &p_status, &too_long))
        return;
    if (gw_api_query(ctx, "action", action, sizeof(action), &too_long))
        p_action = action;
    if (gw_api_query(ctx, "parent", parent, sizeof(parent), &too_long)) {
        /* A workflow's steps and undo runs (docs/workflows.md). */
        if (!gw_uuid_valid(parent)) {
            gw_api_problem(ctx, 400, "invalid_parameter",
                           gw_api_field_error("/query/parent", "format", "a run id (uuid)"),
                           "'parent' must be a run id");
            return;
        }
        p_parent = parent;
    }
    if (!gw_api_query_page(ctx, &page, 500, too_long))
        return;
    struct gw_authz_filter f;
    const char *params[11] = {p_status, p_action, page.ts, page.id, page.limit_plus};
    if (!gw_authz_params(ctx, GW_PERM_READ_RUNS, &f, params + 5))
        return;
    params[10] = p_parent;
    gw_api_query_or_503(
        ctx, "runs_list",
        "SELECT gw_run_json(r)::text, gw_ts(r.created_at) || '~' || r.id FROM gw_runs r"
        " WHERE ($1::text IS NULL OR r.status = $1) AND ($2::text IS NULL OR"
        " r.action_id = $2) AND ($3::timestamptz IS NULL OR (r.created_at, r.id) <"
        " ($3::timestamptz, $4::uuid)) AND gw_visible(r.requested_by, r.requested_teams,"
        " r.action_id, $6, $7, $8, $9, $10) AND ($11::uuid IS NULL OR r.parent_run_id = $11)"
        " ORDER BY r.created_at DESC, r.id DESC LIMIT $5::int",
        11, params, gw_api_page_done);
    gw_authz_filter_finish(&f);
}
