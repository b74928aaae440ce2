/*
 * Incoming webhooks (hooks.h). A request reads top to bottom:
 *
 *   hook_find        the hook named in the path, else 404 hook_not_found
 *   hook_verify      X-Gangway-Timestamp within the hook's tolerance, then
 *                    X-Gangway-Signature: v1=hex(HMAC-SHA256(secret,
 *                    timestamp "." body)) compared in constant time: 401
 *   hook_map         the body as JSON; the action's inputs picked from it
 *                    by JSON pointers: 422 naming the pointer that is absent
 *   hook_remember    the delivery id (X-Gangway-Delivery, else the
 *                    signature) recorded once for the tolerance window
 *                    (sql/functions/gw_hook_delivery.sql): 409 on a replay
 *   hook_submit      the normal submit pipeline (api_runs.c) as the hook's
 *                    identity, on the body {"inputs": ...} built here
 *
 * The same signature scheme as the notifications Gangway sends
 * (docs/webhooks.md), so one sender library serves both directions.
 */
#include "hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "gw/crypto.h"
#include "gw/jsonptr.h"
#include "gw/log.h"

#define TOLERANCE_DEFAULT_S 300
#define TOLERANCE_MAX_S     3600
#define DELIVERY_MAX        200

struct hook {
    char *name;
    char *secret;
    char *action;
    char *subject;
    char *teams_json; /* JSON array text */
    json_t *inputs;   /* a pointer string (the whole object), or {input: pointer} */
    char *idem_ptr;   /* pointer to the idempotency key in the body, or NULL */
    int tolerance_s;
};

struct gw_hooks {
    size_t n;
    struct hook *hooks;
};

void gw_hooks_destroy(struct gw_hooks *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++) {
        struct hook *k = &h->hooks[i];
        free(k->name);
        if (k->secret != NULL)
            memset(k->secret, 0, strlen(k->secret));
        free(k->secret);
        free(k->action);
        free(k->subject);
        free(k->teams_json);
        json_decref(k->inputs);
        free(k->idem_ptr);
    }
    free(h->hooks);
    free(h);
}

static bool pointer_ok(const char *p)
{
    return p != NULL && gw_jsonptr_valid(p, strlen(p));
}

/* One entry of the file; 0 or GW_EINVAL naming `name` and the field. */
static int hook_parse(struct hook *k, const char *name, json_t *o, struct gw_error *err)
{
    static const char *const known[] = {
        "secret_env",        "action",  "subject", "teams", "inputs", "idempotency_key",
        "tolerance_seconds", "comment", NULL};
    const char *f;
    json_t *v;
    json_object_foreach(o, f, v)
    {
        bool ok = false;
        for (const char *const *a = known; *a != NULL; a++)
            ok = ok || strcmp(*a, f) == 0;
        if (!ok)
            return gw_error_set(err, GW_EINVAL, false, "hook '%s': unknown field '%s'", name, f);
    }
    const char *env = json_string_value(json_object_get(o, "secret_env"));
    const char *action = json_string_value(json_object_get(o, "action"));
    const char *subject = json_string_value(json_object_get(o, "subject"));
    json_t *teams = json_object_get(o, "teams"), *inputs = json_object_get(o, "inputs");
    json_t *idem = json_object_get(o, "idempotency_key");
    json_t *tol = json_object_get(o, "tolerance_seconds");
    if (env == NULL || *env == '\0')
        return gw_error_set(err, GW_EINVAL, false,
                            "hook '%s': secret_env (the variable holding its secret) is required",
                            name);
    const char *secret = getenv(env);
    if (secret == NULL || strlen(secret) < 16)
        return gw_error_set(err, GW_EINVAL, false,
                            "hook '%s': the environment variable %s must hold its secret "
                            "(at least 16 characters)",
                            name, env);
    if (action == NULL || *action == '\0')
        return gw_error_set(err, GW_EINVAL, false, "hook '%s': action is required", name);
    char canon[GW_SUBJECT_MAX];
    struct gw_error serr;
    if (subject == NULL || *subject == '\0')
        return gw_error_set(err, GW_EINVAL, false,
                            "hook '%s': subject (whom its runs are submitted as) is required",
                            name);
    if (gw_subject_canonical(subject, NULL, 0, canon, &serr) < 0)
        return gw_error_set(err, GW_EINVAL, false, "hook '%s': subject: %s", name, serr.message);
    size_t i;
    json_t *t;
    if (teams != NULL && !json_is_array(teams))
        return gw_error_set(err, GW_EINVAL, false, "hook '%s': teams must be an array", name);
    if (inputs == NULL)
        inputs = json_string("");
    else
        json_incref(inputs);
    k->inputs = inputs;
    if (json_is_string(inputs)) {
        if (!pointer_ok(json_string_value(inputs)))
            return gw_error_set(err, GW_EINVAL, false,
                                "hook '%s': inputs '%s' is not a JSON pointer", name,
                                json_string_value(inputs));
    } else if (json_is_object(inputs)) {
        const char *in;
        json_object_foreach(inputs, in, v) if (
            !pointer_ok(json_string_value(
                v))) return gw_error_set(err, GW_EINVAL, false,
                                         "hook '%s': inputs/%s must be a JSON pointer", name, in);
    } else {
        return gw_error_set(err, GW_EINVAL, false,
                            "hook '%s': inputs must be a JSON pointer or an object of them", name);
    }
    if (idem != NULL && !pointer_ok(json_string_value(idem)))
        return gw_error_set(err, GW_EINVAL, false,
                            "hook '%s': idempotency_key must be a JSON pointer", name);
    k->tolerance_s = TOLERANCE_DEFAULT_S;
    if (tol != NULL) {
        if (!json_is_integer(tol) || json_integer_value(tol) < 1 ||
            json_integer_value(tol) > TOLERANCE_MAX_S)
            return gw_error_set(err, GW_EINVAL, false,
                                "hook '%s': tolerance_seconds must be an integer from 1 to %d",
                                name, TOLERANCE_MAX_S);
        k->tolerance_s = (int)json_integer_value(tol);
    }
    json_t *canon_teams = json_array();
    json_array_foreach(teams, i, t)
    {
        char team[GW_TEAM_MAX];
        if (gw_team_canonical(json_string_value(t), team, &serr) < 0) {
            json_decref(canon_teams);
            return gw_error_set(err, GW_EINVAL, false, "hook '%s': teams/%zu: %s", name, i,
                                serr.message);
        }
        json_array_append_new(canon_teams, json_string(team));
    }
    k->name = strdup(name);
    k->secret = strdup(secret);
    k->action = strdup(action);
    k->subject = strdup(canon);
    k->teams_json = json_dumps(canon_teams, JSON_COMPACT);
    json_decref(canon_teams);
    k->idem_ptr = idem != NULL ? strdup(json_string_value(idem)) : NULL;
    if (k->name == NULL || k->secret == NULL || k->action == NULL || k->subject == NULL ||
        k->teams_json == NULL || (idem != NULL && k->idem_ptr == NULL))
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    return 0;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

struct gw_hooks *gw_hooks_load(const char *path, struct gw_error *err)
{
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    struct gw_hooks *h = NULL;
    if (doc == NULL) {
        gw_error_set(err, GW_EPARSE, false, "%s:%d: %s", path, je.line, je.text);
        return NULL;
    }
    json_t *hooks = json_object_get(doc, "hooks");
    if (!json_is_object(doc) || !json_is_object(hooks)) {
        gw_error_set(err, GW_EINVAL, false, "%s: want {\"hooks\": {\"<name>\": {...}}}", path);
        goto fail;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL || (h->hooks = calloc(json_object_size(hooks) + 1, sizeof(*h->hooks))) == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto fail;
    }
    const char *name;
    json_t *o;
    json_object_foreach(hooks, name, o)
    {
        struct hook *k = &h->hooks[h->n++];
        if (!name_ok(name)) {
            gw_error_set(err, GW_EINVAL, false,
                         "%s: hook name '%s' must be 1 to 64 of [A-Za-z0-9._-]", path, name);
            goto fail;
        }
        if (!json_is_object(o)) {
            gw_error_set(err, GW_EINVAL, false, "%s: hook '%s' must be an object", path, name);
            goto fail;
        }
        if (hook_parse(k, name, o, err) < 0)
            goto fail;
    }
    json_decref(doc);
    gw_log_info("%zu incoming webhook(s) from %s", h->n, path);
    return h;
fail:
    json_decref(doc);
    gw_hooks_destroy(h);
    return NULL;
}

/* ------------------------------------------------------------- requests */

struct invocation {
    struct gw_api_ctx *ctx;
    const struct hook *k;
    json_t *body; /* borrowed: ctx->scratch owns it */
    const char *delivery;
    char sig[GW_SHA256_HEX_LEN + 1];
};

static const struct hook *hook_find(struct gw_api_ctx *ctx)
{
    const struct gw_hooks *h = ctx->b->hooks;
    for (size_t i = 0; h != NULL && i < h->n; i++)
        if (strcmp(h->hooks[i].name, ctx->id) == 0)
            return &h->hooks[i];
    gw_api_problem(ctx, 404, "hook_not_found", NULL, "no incoming webhook named '%s'", ctx->id);
    return NULL;
}

static bool unauthorized(struct gw_api_ctx *ctx, const char *code, const char *detail)
{
    gw_api_problem_ex(ctx, 401, code, NULL, "WWW-Authenticate: Signature realm=\"gangway\"\r\n",
                      "%s", detail);
    return false;
}

static bool ct_equal(const char *a, const char *b, size_t n)
{
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* The timestamp first (cheap, and it bounds how long a delivery id must be
 * remembered), then the signature over the exact bytes received. */
static bool hook_verify(struct invocation *v)
{
    struct gw_api_ctx *ctx = v->ctx;
    const char *ts = gw_http_req_header(ctx->req, "x-gangway-timestamp");
    const char *sig = gw_http_req_header(ctx->req, "x-gangway-signature");
    if (ts == NULL || sig == NULL)
        return unauthorized(ctx, "signature_missing",
                            "an incoming webhook needs X-Gangway-Timestamp and "
                            "X-Gangway-Signature: v1=<hex HMAC-SHA256(secret, timestamp.body)>");
    size_t tl = strlen(ts);
    if (tl == 0 || tl > 12 || strspn(ts, "0123456789") != tl)
        return unauthorized(ctx, "signature_invalid",
                            "X-Gangway-Timestamp must be a Unix time in seconds");
    long long t = atoll(ts), now = (long long)time(NULL);
    if (t < now - v->k->tolerance_s || t > now + v->k->tolerance_s) {
        char d[160];
        snprintf(d, sizeof(d),
                 "X-Gangway-Timestamp is %lld s away from the broker's clock; at most %d s are "
                 "accepted",
                 t > now ? t - now : now - t, v->k->tolerance_s);
        return unauthorized(ctx, "signature_expired", d);
    }
    size_t signed_len = tl + 1 + ctx->req->body_len;
    char *text = gw_api_alloc(ctx, signed_len + 1);
    if (text == NULL)
        return gw_api_oom(ctx);
    memcpy(text, ts, tl);
    text[tl] = '.';
    if (ctx->req->body_len > 0)
        memcpy(text + tl + 1, ctx->req->body, ctx->req->body_len);
    gw_hmac_sha256_hex(v->k->secret, strlen(v->k->secret), text, signed_len, v->sig);
    if (strncmp(sig, "v1=", 3) != 0 || strlen(sig + 3) != GW_SHA256_HEX_LEN ||
        !ct_equal(sig + 3, v->sig, GW_SHA256_HEX_LEN))
        return unauthorized(ctx, "signature_invalid",
                            "X-Gangway-Signature does not match the body and timestamp");
    return true;
}

static bool missing(struct gw_api_ctx *ctx, const char *pointer, const char *what)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "required by this hook (%s)", what);
    gw_api_problem(ctx, 422, "validation_failed", gw_api_field_error(pointer, "required", msg),
                   "the webhook body has nothing at '%s' (%s)", pointer, what);
    return false;
}

/* The body, and the submit body {"inputs": {...}} built from it; the
 * idempotency key when the hook names one. */
static bool hook_map(struct invocation *v, json_t **submit_body)
{
    struct gw_api_ctx *ctx = v->ctx;
    const struct hook *k = v->k;
    v->body = gw_api_body(ctx);
    if (v->body == NULL)
        return false;
    json_t *inputs;
    if (json_is_string(k->inputs)) {
        const char *p = json_string_value(k->inputs);
        json_t *whole = gw_jsonptr_get(v->body, p);
        if (!json_is_object(whole))
            return missing(ctx, *p ? p : "/", "an object holding the action's inputs");
        inputs = json_deep_copy(whole);
    } else {
        const char *in;
        json_t *ptr;
        inputs = json_object();
        json_object_foreach(k->inputs, in, ptr)
        {
            json_t *val = gw_jsonptr_get(v->body, json_string_value(ptr));
            if (val == NULL) {
                char what[160];
                snprintf(what, sizeof(what), "input '%s'", in);
                json_decref(inputs);
                return missing(ctx, json_string_value(ptr), what);
            }
            json_object_set(inputs, in, val);
        }
    }
    if (k->idem_ptr != NULL) {
        json_t *key = gw_jsonptr_get(v->body, k->idem_ptr);
        if (json_is_integer(key))
            ctx->idempotency_key =
                gw_api_printf(ctx, "hook:%s:%lld", k->name, (long long)json_integer_value(key));
        else if (json_is_string(key) && json_string_length(key) > 0 &&
                 json_string_length(key) <= 200)
            ctx->idempotency_key =
                gw_api_printf(ctx, "hook:%s:%s", k->name, json_string_value(key));
        else {
            json_decref(inputs);
            return missing(ctx, k->idem_ptr, "the idempotency key: a string of 1 to 200 bytes");
        }
    }
    *submit_body = json_pack("{s:o}", "inputs", inputs);
    return *submit_body != NULL || gw_api_oom(ctx);
}

static void remembered(void *arg, const PGresult *res, const struct gw_error *err);

static void hook_remember(struct invocation *v)
{
    struct gw_api_ctx *ctx = v->ctx;
    char tol[16];
    snprintf(tol, sizeof(tol), "%d", v->k->tolerance_s);
    const char *params[] = {v->k->name, v->delivery, tol};
    if (gw_pg_query(ctx->b->pg, "hook_delivery", "SELECT gw_hook_delivery($1, $2, $3::int)", 3,
                    params, remembered, v) < 0)
        gw_api_problem(ctx, 503, "unavailable", NULL, "the broker is overloaded; retry later");
}

/* The submit pipeline as the hook's identity: the context's principal and
 * body are the hook's, the rest is a POST /v1/actions/{action}/runs. */
static void remembered(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct invocation *v = arg;
    struct gw_api_ctx *ctx = v->ctx;
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    if (PQgetvalue(res, 0, 0)[0] != 't') {
        gw_api_problem(ctx, 409, "delivery_replayed", NULL,
                       "delivery '%s' of hook '%s' was already received", v->delivery, v->k->name);
        return;
    }
    struct gw_principal *p = &ctx->principal;
    snprintf(p->subject, sizeof(p->subject), "%s", v->k->subject);
    snprintf(p->via, sizeof(p->via), "hook:%s", v->k->name);
    json_t *teams = json_loads(v->k->teams_json, 0, NULL);
    p->teams_json = strdup(v->k->teams_json);
    p->teams_pg = teams != NULL ? gw_api_pg_array(teams) : NULL;
    json_decref(teams);
    if (p->teams_json == NULL || p->teams_pg == NULL) {
        gw_api_oom(ctx);
        return;
    }
    gw_log_info("hook %s: delivery %s submits %s as %s", v->k->name, v->delivery, v->k->action,
                p->subject);
    snprintf(ctx->id, sizeof(ctx->id), "%s", v->k->action);
    gw_api_run_submit(ctx);
}

void gw_api_hook_invoke(struct gw_api_ctx *ctx)
{
    struct invocation *v = gw_api_alloc(ctx, sizeof(*v));
    if (v == NULL) {
        gw_api_oom(ctx);
        return;
    }
    memset(v, 0, sizeof(*v));
    v->ctx = ctx;
    if ((v->k = hook_find(ctx)) == NULL || !hook_verify(v))
        return;
    v->delivery = gw_http_req_header(ctx->req, "x-gangway-delivery");
    if (v->delivery != NULL && (strlen(v->delivery) == 0 || strlen(v->delivery) > DELIVERY_MAX)) {
        gw_api_problem(
            ctx, 400, "invalid_parameter",
            gw_api_field_error("/headers/x-gangway-delivery", "maxLength", "1 to 200 characters"),
            "X-Gangway-Delivery must be 1 to 200 characters");
        return;
    }
    if (v->delivery == NULL)
        v->delivery = v->sig; /* the same bytes at the same second: the same delivery */
    json_t *submit_body = NULL;
    if (!hook_map(v, &submit_body))
        return;
    /* The submit pipeline reads the request's body: it becomes the mapped
     * one, in the pool like the original. */
    char *text = gw_api_dump(ctx, submit_body, JSON_COMPACT);
    json_decref(submit_body);
    if (text == NULL) {
        gw_api_oom(ctx);
        return;
    }
    ctx->req->body = text;
    ctx->req->body_len = strlen(text);
    hook_remember(v);
}
