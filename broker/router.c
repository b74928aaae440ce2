/*
 * Routes HTTP requests to handlers, and the reply helpers every handler
 * uses. Route table first; dispatch is a linear match over a handful of
 * patterns, cheaper than any allocation the handlers do.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "catalog.h"
#include "cors.h"
#include "gw/crypto.h"
#include "hooks.h"
#include "gw/json.h"
#include "gw/jsonptr.h"
#include "gw/utf8.h"
#include "gw/log.h"
#include "gw/pg_array.h"
#include "policy.h"
#include "stream.h"

/* Who may call a route; checked once, here, before any handler runs.
 * AUTH_USER is every authenticated caller but a worker-only token (role
 * worker without admin): such a token is a machine that claims runs and
 * gets 403 from everything else (docs/policy.md). AUTH_WORKER is the claim
 * API: tokens with role worker or admin. */
enum auth_need { AUTH_NONE, AUTH_USER, AUTH_WORKER };

struct gw_route {
    const char *method;
    const char *pattern; /* '*' matches one path segment, captured into ctx->id */
    enum auth_need auth;
    void (*handler)(struct gw_api_ctx *ctx);
};

static const struct gw_route routes[] = {
    {"GET", "/healthz", AUTH_NONE, gw_api_health},
    {"GET", "/readyz", AUTH_NONE, gw_api_ready},
    {"GET", "/metrics", AUTH_NONE, gw_api_metrics},
    {"GET", "/v1/me", AUTH_USER, gw_api_me},
    {"POST", "/v1/session", AUTH_NONE, gw_api_session_create},   /* validates the body's token */
    {"GET", "/v1/session", AUTH_USER, gw_api_session_get},       /* the cookie's session, or 401 */
    {"DELETE", "/v1/session", AUTH_USER, gw_api_session_delete}, /* with CSRF, as every write */
    {"GET", "/v1/auth/providers", AUTH_NONE, gw_api_auth_providers},
    {"GET", "/auth/oidc/login", AUTH_NONE, gw_api_oidc_login},
    {"GET", "/auth/oidc/callback", AUTH_NONE, gw_api_oidc_callback},
    {"GET", "/auth/dev-login", AUTH_NONE, gw_api_dev_login},
    {"GET", "/v1/dashboard", AUTH_USER, gw_api_dashboard},
    {"GET", "/v1/actions", AUTH_USER, gw_api_actions_list},
    {"GET", "/v1/actions/*", AUTH_USER, gw_api_action_get},
    {"POST", "/v1/actions/*/runs", AUTH_USER, gw_api_run_submit},
    {"POST", "/v1/actions/*/validate", AUTH_USER, gw_api_action_validate},
    {"POST", "/v1/hooks/*", AUTH_NONE, gw_api_hook_invoke}, /* HMAC-signed (hooks.c) */
    {"GET", "/v1/runs", AUTH_USER, gw_api_runs_list},
    {"GET", "/v1/runs/*", AUTH_USER, gw_api_run_get},
    {"GET", "/v1/runs/*/events", AUTH_USER, gw_api_run_events},
    {"GET", "/v1/runs/*/logs", AUTH_USER, gw_stream_run_logs}, /* JSON, or SSE with follow */
    {"POST", "/v1/runs/*/cancel", AUTH_USER, gw_api_run_cancel},
    {"POST", "/v1/runs/*/reconcile", AUTH_USER, gw_api_run_reconcile},
    {"POST", "/v1/runs/*/resume", AUTH_USER, gw_api_run_resume},
    {"POST", "/v1/runs/*/decisions", AUTH_USER, gw_api_run_decide},
    {"GET", "/v1/approvals", AUTH_USER, gw_api_approvals_list},
    {"GET", "/v1/resources", AUTH_USER, gw_api_resources_list},
    {"GET", "/v1/resources/*", AUTH_USER, gw_api_resource_get},
    {"POST", "/v1/resources/*/extend", AUTH_USER, gw_api_resource_extend},
    {"POST", "/v1/resources/*/extension/decisions", AUTH_USER, gw_api_extension_decide},
    {"DELETE", "/v1/resources/*", AUTH_USER, gw_api_resource_delete},
    {"GET", "/v1/events", AUTH_USER, gw_stream_events},
    {"GET", "/v1/audit", AUTH_USER, gw_api_audit_list},
    {"GET", "/v1/admin/audit/verify", AUTH_USER, gw_api_audit_verify},
    {"POST", "/v1/admin/actions/reload", AUTH_USER, gw_api_actions_reload}, /* admin checked */
    {"POST", "/internal/v1/runs/*/claim", AUTH_WORKER, gw_api_run_claim},
    {"POST", "/internal/v1/claims", AUTH_WORKER, gw_api_claims},
    {"POST", "/internal/v1/workers/*/drain", AUTH_USER, gw_api_worker_drain},
    {"POST", "/internal/v1/runs/*/heartbeat", AUTH_WORKER, gw_api_run_heartbeat},
};

/* Matches `path` against `pattern`; on success copies the '*' segment. */
static bool match(const char *pattern, const char *path, char *id, size_t cap)
{
    while (*pattern && *path) {
        if (*pattern == '*') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= cap)
                return false;
            memcpy(id, path, n);
            id[n] = '\0';
            path += n;
            pattern++;
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    /* Tolerate one trailing slash. */
    if (*pattern == '\0' && path[0] == '/' && path[1] == '\0')
        return true;
    return *pattern == '\0' && *path == '\0';
}

/* What a context holds outside the request's pool; the context itself is
 * in the pool, gone once the request ends, so this is copied out first. */
struct ctx_owned {
    char *teams_json, *teams_pg;
    json_t *scratch;
    struct gw_catalog *cat;
};

static struct ctx_owned ctx_owned(const struct gw_api_ctx *ctx)
{
    return (struct ctx_owned){ctx->principal.teams_json, ctx->principal.teams_pg, ctx->scratch,
                              ctx->cat};
}

static void ctx_owned_free(struct ctx_owned o)
{
    free(o.teams_json);
    free(o.teams_pg);
    json_decref(o.scratch);
    gw_catalog_unref(o.cat);
}

_Static_assert(ARRAY_SIZE(routes) <= GW_API_ROUTES_MAX, "raise GW_API_ROUTES_MAX (broker.h)");

size_t gw_api_route_count(void)
{
    return ARRAY_SIZE(routes);
}

const char *gw_api_route_method(size_t i)
{
    return i < ARRAY_SIZE(routes) ? routes[i].method : NULL;
}

const char *gw_api_route_pattern(size_t i)
{
    return i < ARRAY_SIZE(routes) ? routes[i].pattern : NULL;
}

/* Counts the answer by status class and, for a request that matched a
 * route, its duration by route. Streams (SSE) count when they begin and
 * have no duration. */
static void count_response(struct gw_api_ctx *ctx, int status, bool timed)
{
    struct gw_broker_metrics *m = &ctx->b->metrics;
    unsigned cls = (unsigned)status / 100;
    if (cls < ARRAY_SIZE(m->http_by_class))
        m->http_by_class[cls]++;
    if (timed && ctx->route != NULL && ctx->start_ns != 0)
        gw_histo_observe(&m->http_duration[ctx->route - routes],
                         (double)(uv_hrtime() - ctx->start_ns) / 1e9);
}

/* The handler's extra headers and the request's CORS headers, in the pool. */
static const char *with_cors(struct gw_api_ctx *ctx, const char *extra)
{
    if (ctx->cors == NULL)
        return extra;
    if (extra == NULL)
        return ctx->cors;
    const char *both = gw_api_printf(ctx, "%s%s", extra, ctx->cors);
    return both != NULL ? both : extra;
}

void gw_api_send(struct gw_api_ctx *ctx, int status, const char *content_type,
                 const char *extra_headers, const char *body, size_t len)
{
    extra_headers = with_cors(ctx, extra_headers);
    struct ctx_owned o = ctx_owned(ctx);
    count_response(ctx, status, true);
    /* The body may live in the pool or in what ctx owns: respond copies it
     * before the request (and the pool with ctx in it) is freed. */
    gw_http_respond(ctx->req, status, content_type, extra_headers, body, len);
    ctx_owned_free(o);
}

int gw_api_stream_begin(struct gw_api_ctx *ctx, const char *content_type, const char *extra_headers,
                        void (*on_close)(struct gw_http_req *req))
{
    count_response(ctx, 200, false);
    return gw_http_stream_begin(ctx->req, 200, content_type, with_cors(ctx, extra_headers),
                                on_close);
}

void gw_api_stream_end(struct gw_api_ctx *ctx)
{
    struct ctx_owned o = ctx_owned(ctx);
    gw_http_stream_end(ctx->req);
    ctx_owned_free(o);
}

void gw_api_reply(struct gw_api_ctx *ctx, int status, const char *extra_headers, const char *json,
                  size_t len)
{
    gw_api_send(ctx, status, "application/json", extra_headers, json, len);
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;
    for (size_t len = strlen(s), i = 0, n; i < len; i += n)
        if ((n = gw_utf8_next(p + i, len - i, &cp)) == 0)
            return false;
    return true;
}

/* Replaces each byte that is not part of well-formed UTF-8 with '?', in
 * place: a detail may quote a path or a parameter as the client sent it,
 * and jansson refuses to encode anything else. */
static void utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    uint32_t cp;
    for (size_t len = strlen(s), i = 0, n; i < len; i += n)
        if ((n = gw_utf8_next(p + i, len - i, &cp)) == 0) {
            p[i] = '?';
            n = 1;
        }
}

/* The problem document: the five members every problem has, then
 * `members` (stolen, may be NULL) in their order. */
static char *problem_body(int status, const char *code, json_t *members, const char *detail)
{
    json_t *p =
        json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank", "title",
                  gw_http_status_text(status), "status", status, "code", code, "detail", detail);
    if (p != NULL && members != NULL)
        json_object_update(p, members);
    json_decref(members);
    char *body = p != NULL ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    return body;
}

static void problem_vsend(struct gw_api_ctx *ctx, int status, const char *code, json_t *members,
                          const char *extra, const char *fmt, va_list ap)
{
    char detail[1024];
    vsnprintf(detail, sizeof(detail), fmt, ap);
    utf8_scrub(detail);
    char *body = problem_body(status, code, members, detail);
    char fallback[160];
    const char *out = body;
    if (out == NULL) {
        /* Out of memory: still a problem document, without the detail. */
        snprintf(fallback, sizeof(fallback),
                 "{\"type\":\"about:blank\",\"title\":\"%s\",\"status\":%d,\"code\":\"%s\","
                 "\"detail\":\"\"}",
                 gw_http_status_text(status), status, code);
        out = fallback;
    }
    if (extra == NULL)
        extra = status == 401   ? "WWW-Authenticate: Bearer realm=\"gangway\"\r\n"
                : status == 503 ? "Retry-After: 1\r\n"
                                : NULL;
    gw_api_send(ctx, status, "application/problem+json", extra, out, strlen(out));
    free(body);
}

void gw_api_problem_ex(struct gw_api_ctx *ctx, int status, const char *code, json_t *members,
                       const char *extra_headers, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_vsend(ctx, status, code, members, extra_headers, fmt, ap);
    va_end(ap);
}

void gw_api_problem(struct gw_api_ctx *ctx, int status, const char *code, json_t *errors,
                    const char *fmt, ...)
{
    va_list ap;
    json_t *members = errors != NULL ? json_pack("{s:o}", "errors", errors) : NULL;
    va_start(ap, fmt);
    problem_vsend(ctx, status, code, members, NULL, fmt, ap);
    va_end(ap);
}

void gw_api_run_not_found(struct gw_api_ctx *ctx)
{
    gw_api_problem(ctx, 404, "run_not_found", NULL, "no run with id '%s'", ctx->id);
}

void gw_api_resource_not_found(struct gw_api_ctx *ctx)
{
    gw_api_problem(ctx, 404, "resource_not_found", NULL, "no resource with id '%s'", ctx->id);
}

bool gw_api_query(struct gw_api_ctx *ctx, const char *name, char *out, size_t cap, bool *too_long)
{
    size_t n = strlen(name);
    if (gw_http_req_query(ctx->req, name, out, cap)) {
        if (utf8_valid(out))
            return true;
        /* PostgreSQL would refuse it; say which parameter, and why, first. */
        *too_long = true;
        if (ctx->too_long == NULL) {
            ctx->too_long = name;
            ctx->not_utf8 = true;
        }
        return false;
    }
    /* Absent, or present and longer than the caller's buffer: tell them
     * apart, so a filter is never dropped silently. */
    for (const char *q = ctx->req->query; q != NULL && *q != '\0';) {
        if (strncmp(q, name, n) == 0 && q[n] == '=') {
            *too_long = true;
            if (ctx->too_long == NULL)
                ctx->too_long = name;
            return false;
        }
        q = strchr(q, '&');
        if (q != NULL)
            q++;
    }
    return false;
}

void gw_api_query_too_long(struct gw_api_ctx *ctx)
{
    const char *name = ctx->too_long != NULL ? ctx->too_long : "?";
    const char *why = ctx->not_utf8 ? "not UTF-8" : "longer than any valid value";
    char ptr[96];
    snprintf(ptr, sizeof(ptr), "/query/%s", name);
    gw_api_problem(ctx, 400, "invalid_parameter",
                   gw_api_field_error(ptr, ctx->not_utf8 ? "type" : "maxLength", why),
                   "the query parameter '%s' is %s", name, why);
}

bool gw_api_param_int(struct gw_api_ctx *ctx, const char *in, const char *name, const char *value,
                      long long min, long long max, long long *out)
{
    size_t len = strlen(value);
    long long v = 0;
    /* Digits only (no sign, space or '+'), checked for overflow by hand:
     * strtoll would take " -1" and saturate 9223372036854775808. */
    bool digits = len > 0 && strspn(value, "0123456789") == len, fits = digits;
    for (size_t i = 0; fits && i < len; i++) {
        int d = value[i] - '0';
        if (v > (LLONG_MAX - d) / 10)
            fits = false;
        else
            v = v * 10 + d;
    }
    if (fits && v >= min && v <= max) {
        *out = v;
        return true;
    }
    char ptr[96], range[64];
    snprintf(ptr, sizeof(ptr), "/%s/%s", in, name);
    snprintf(range, sizeof(range), "an integer from %lld to %lld", min, max);
    const char *keyword = !digits ? "type" : fits && v < min ? "minimum" : "maximum";
    gw_api_problem(ctx, 400, "invalid_parameter", gw_api_field_error(ptr, keyword, range),
                   "'%s' must be %s", name, range);
    return false;
}

bool gw_api_query_int(struct gw_api_ctx *ctx, const char *name, long long min, long long max,
                      long long *out, bool *present)
{
    char s[32];
    bool too_long = false;
    *present = gw_api_query(ctx, name, s, sizeof(s), &too_long);
    if (too_long) {
        /* Longer than any integer (or not text): say so now, naming it. */
        ctx->too_long = NULL;
        ctx->not_utf8 = false;
        return gw_api_param_int(ctx, "query", name, "x", min, max, out);
    }
    return !*present || gw_api_param_int(ctx, "query", name, s, min, max, out);
}

bool gw_api_query_limit(struct gw_api_ctx *ctx, int max, int *limit)
{
    long long v;
    bool present;
    if (!gw_api_query_int(ctx, "limit", 1, max, &v, &present))
        return false;
    if (present)
        *limit = (int)v;
    return true;
}

static bool query_cursor(struct gw_api_ctx *ctx, char *buf, size_t cap, const char **ts,
                         const char **id, bool *too_long)
{
    if (!gw_api_query(ctx, "cursor", buf, cap, too_long))
        return true;
    char *sep = strchr(buf, '~');
    if (sep == NULL || !gw_uuid_valid(sep + 1) || sep - buf < 20) {
        gw_api_problem(
            ctx, 400, "invalid_cursor",
            gw_api_field_error("/query/cursor", "format", "an opaque cursor from a page"),
            "the cursor is not one this API returned");
        return false;
    }
    *sep = '\0';
    *ts = buf;
    *id = sep + 1;
    return true;
}

bool gw_api_query_page(struct gw_api_ctx *ctx, struct gw_api_page *page, int max, bool too_long)
{
    page->ts = page->id = NULL;
    if (!gw_api_query_limit(ctx, max, &page->limit) ||
        !query_cursor(ctx, page->cursor, sizeof(page->cursor), &page->ts, &page->id, &too_long))
        return false;
    if (too_long) {
        gw_api_query_too_long(ctx);
        return false;
    }
    snprintf(page->limit_plus, sizeof(page->limit_plus), "%d", page->limit + 1);
    ctx->page_limit = page->limit;
    return true;
}

void gw_api_reply_page(struct gw_api_ctx *ctx, const PGresult *res, int limit)
{
    int n = PQntuples(res);
    bool more = n > limit;
    size_t cap = 64;
    for (int i = 0; i < n && i < limit; i++)
        cap += (size_t)PQgetlength(res, i, 0) + 1;
    if (more)
        cap += (size_t)PQgetlength(res, limit - 1, 1);
    char *out = malloc(cap), *p = out;
    if (out == NULL) {
        gw_api_oom(ctx);
        return;
    }
    p += snprintf(p, cap, "{\"items\":[");
    for (int i = 0; i < n && i < limit; i++) {
        if (i > 0)
            *p++ = ',';
        size_t len = (size_t)PQgetlength(res, i, 0);
        memcpy(p, PQgetvalue(res, i, 0), len);
        p += len;
    }
    if (more)
        p += snprintf(p, cap - (size_t)(p - out), "],\"next_cursor\":\"%s\"}",
                      PQgetvalue(res, limit - 1, 1));
    else
        p += snprintf(p, cap - (size_t)(p - out), "],\"next_cursor\":null}");
    gw_api_reply(ctx, 200, NULL, out, (size_t)(p - out));
    free(out);
}

void gw_api_reply_row(struct gw_api_ctx *ctx, const PGresult *res, const struct gw_error *err,
                      void (*not_found)(struct gw_api_ctx *ctx))
{
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        not_found(ctx);
        return;
    }
    gw_api_reply(ctx, 200, NULL, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

void gw_api_page_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_api_ctx *ctx = arg;
    if (err != NULL && err->code == GW_EINVAL && strncmp(err->sqlstate, "22", 2) == 0) {
        /* A cursor or timestamp of the right shape that PostgreSQL cannot
         * read (month 13...: a data exception, class 22): the caller's
         * mistake, not ours. Class 42 (a function or a right missing) is
         * ours: 500 below (decision 0081). */
        gw_api_problem(ctx, 400, "invalid_parameter", NULL,
                       "a time in the query (cursor or expiring_before) is not valid");
        return;
    }
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    gw_api_reply_page(ctx, res, ctx->page_limit);
}

bool gw_api_query_enum(struct gw_api_ctx *ctx, const char *name, const char *const *values,
                       size_t n, const char *what, const char **out, bool *too_long)
{
    char v[32];
    if (!gw_api_query(ctx, name, v, sizeof(v), too_long))
        return true;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v, values[i]) == 0) {
            *out = values[i];
            return true;
        }
    }
    char ptr[96];
    snprintf(ptr, sizeof(ptr), "/query/%s", name);
    gw_api_problem(ctx, 400, "invalid_parameter", gw_api_field_error(ptr, "enum", what),
                   "unknown %s '%s'", name, v);
    return false;
}

char *gw_api_pg_array(json_t *arr)
{
    size_t n = json_array_size(arr), i;
    const char **items = malloc((n > 0 ? n : 1) * sizeof(*items));
    char *out;
    json_t *v;
    if (items == NULL)
        return NULL;
    json_array_foreach(arr, i, v) items[i] = json_string_value(v);
    out = gw_pg_text_array(items, n);
    free(items);
    return out;
}

void gw_api_query_or_503(struct gw_api_ctx *ctx, const char *name, const char *sql, int n,
                         const char *const *params, gw_pg_cb cb)
{
    if (gw_pg_query(ctx->b->pg, name, sql, n, params, cb, ctx) < 0)
        gw_api_problem(ctx, 503, "unavailable", NULL, "the broker is overloaded; retry later");
}

static void select_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_api_ctx *ctx = arg;
    if (err != NULL)
        gw_api_pg_failed(ctx, err);
    else
        ctx->on_rows(ctx, res);
}

void gw_api_select(struct gw_api_ctx *ctx, const char *name, const char *sql, int n,
                   const char *const *params,
                   void (*on_rows)(struct gw_api_ctx *ctx, const PGresult *res))
{
    ctx->on_rows = on_rows;
    gw_api_query_or_503(ctx, name, sql, n, params, select_done);
}

size_t gw_api_text_len(const json_t *s)
{
    const unsigned char *c = (const unsigned char *)json_string_value(s);
    size_t n = 0, bytes = json_string_length(s);
    /* jansson holds valid UTF-8: count every byte that starts a character. */
    for (size_t i = 0; c != NULL && i < bytes; i++)
        n += (c[i] & 0xC0) != 0x80;
    return n;
}

json_t *gw_api_field_error(const char *pointer, const char *keyword, const char *message)
{
    return json_pack("[{s:s, s:s, s:s}]", "pointer", pointer, "keyword", keyword, "message",
                     message);
}

void *gw_api_alloc(struct gw_api_ctx *ctx, size_t n)
{
    return gw_http_req_alloc(ctx->req, n);
}

char *gw_api_printf(struct gw_api_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *out = n >= 0 ? gw_api_alloc(ctx, (size_t)n + 1) : NULL;
    if (out != NULL) {
        va_start(ap, fmt);
        vsnprintf(out, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return out;
}

char *gw_api_dump(struct gw_api_ctx *ctx, const json_t *json, size_t flags)
{
    size_t n = json_dumpb(json, NULL, 0, flags);
    char *out = n > 0 ? gw_api_alloc(ctx, n + 1) : NULL;
    if (out == NULL)
        return NULL;
    json_dumpb(json, out, n, flags);
    out[n] = '\0';
    return out;
}

void gw_api_reply_doc(struct gw_api_ctx *ctx, int status, json_t *doc)
{
    const char *body = doc != NULL ? gw_api_dump(ctx, doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (body == NULL)
        gw_api_oom(ctx);
    else
        gw_api_reply(ctx, status, NULL, body, strlen(body));
}

bool gw_api_oom(struct gw_api_ctx *ctx)
{
    gw_api_problem(ctx, 503, "unavailable", NULL, "out of memory");
    return false;
}

bool gw_api_only_fields(struct gw_api_ctx *ctx, json_t *body, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a != NULL; a++)
            ok = ok || strcmp(k, *a) == 0;
        if (ok)
            continue;
        struct gw_jsonptr ptr = GW_JSONPTR_INIT;
        json_t *errors =
            gw_jsonptr_push(&ptr, k) == 0
                ? gw_api_field_error(gw_jsonptr_str(&ptr), "additionalProperties", "unknown field")
                : NULL;
        gw_jsonptr_finish(&ptr);
        gw_api_problem(ctx, 422, "validation_failed", errors,
                       "unknown field '%s' in the request body", k);
        return false;
    }
    return true;
}

json_t *gw_api_body(struct gw_api_ctx *ctx)
{
    struct gw_json_fault f;
    json_t *doc;
    doc = gw_json_parse_request(ctx->req->body, ctx->req->body_len, &f);
    if (doc == NULL) {
        json_t *errors =
            f.status == 422 ? gw_api_field_error(f.pointer, f.keyword, f.message) : NULL;
        gw_json_fault_finish(&f);
        gw_api_problem(ctx, f.status, f.code, errors, "%s", f.message);
        return NULL;
    }
    json_decref(ctx->scratch);
    ctx->scratch = doc;
    return doc;
}

void gw_api_pg_failed(struct gw_api_ctx *ctx, const struct gw_error *err)
{
    if (err->retriable || err->code == GW_EUNAVAIL || err->code == GW_ECLOSED ||
        err->code == GW_ELIMIT) {
        gw_api_problem(ctx, 503, "unavailable", NULL,
                       "the database is unavailable; retry the request");
        return;
    }
    gw_log_error("database error: %s", err->message);
    gw_api_problem(ctx, 500, "internal", NULL, "internal error");
}

/* After authentication: the route's rule, then its handler. */
static void admitted(struct gw_api_ctx *ctx)
{
    const struct gw_principal *p = &ctx->principal;
    const struct gw_route *r = ctx->route;

    if (r->auth == AUTH_USER && gw_principal_worker_only(p)) {
        gw_api_problem(ctx, 403, "forbidden", NULL, "a worker token may only claim runs");
        return;
    }
    if (r->auth == AUTH_WORKER && !p->worker && !p->admin) {
        gw_api_problem(ctx, 403, "forbidden", NULL, "claims need a token with the worker role");
        return;
    }
    r->handler(ctx);
}

/* A browser's CORS preflight (OPTIONS with Origin and
 * Access-Control-Request-Method): 204 with the path's methods for an
 * allowed origin, 403 without any CORS header otherwise, 404 for a path
 * that has no route. Never authenticated: browsers send no credentials. */
static void preflight(struct gw_api_ctx *ctx)
{
    char methods[64] = "", id[sizeof(ctx->id)];
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        if (!match(routes[i].pattern, ctx->req->path, id, sizeof(id)))
            continue;
        size_t n = strlen(methods);
        if (strstr(methods, routes[i].method) == NULL)
            snprintf(methods + n, sizeof(methods) - n, "%s%s", n ? ", " : "", routes[i].method);
    }
    ctx->cors = NULL;
    if (methods[0] == '\0') {
        gw_api_problem(ctx, 404, "not_found", NULL, "no such resource: %s", ctx->req->path);
        return;
    }
    const char *h = gw_cors_preflight_headers(ctx->b->cors, ctx->req, methods);
    if (h == NULL) {
        gw_api_problem_ex(ctx, 403, "cors_not_allowed", NULL, "Vary: Origin\r\n",
                          "this origin may not call %s with that method (allowed origins: "
                          "--cors-origins; methods: %s)",
                          ctx->req->path, methods);
        return;
    }
    gw_api_send(ctx, 204, NULL, h, NULL, 0);
}

void gw_broker_handle(struct gw_http_req *req, void *arg)
{
    struct gw_broker *b = arg;
    /* The context lives in the request's pool: it ends with the request. */
    struct gw_api_ctx *ctx = gw_http_req_alloc(req, sizeof(*ctx));
    bool path_known = false;
    char allow[64] = "";

    if (ctx == NULL) {
        gw_http_respond(req, 503, "application/problem+json", "Retry-After: 1\r\n", NULL, 0);
        return;
    }
    memset(ctx, 0, sizeof(*ctx));
    ctx->b = b;
    ctx->req = req;
    ctx->start_ns = uv_hrtime();
    ctx->cat = gw_catalog_ref(b->catalog);
    ctx->cors = gw_cors_headers(b->cors, req);
    if (gw_cors_is_preflight(req)) {
        preflight(ctx);
        return;
    }
    /* The console's files: "/", "/ui" and everything under "/ui/". */
    if (strcmp(req->path, "/") == 0 || strcmp(req->path, "/ui") == 0 ||
        strncmp(req->path, "/ui/", 4) == 0) {
        gw_console_serve(ctx);
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        const struct gw_route *r = &routes[i];
        if (!match(r->pattern, req->path, ctx->id, sizeof(ctx->id)))
            continue;
        path_known = true;
        if (strcmp(r->method, req->method) != 0) {
            size_t n = strlen(allow);
            snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "", r->method);
            continue;
        }
        ctx->route = r;
        /* The console asks "am I signed in?": its 401 says unauthenticated. */
        if (r->handler == gw_api_session_get || r->handler == gw_api_session_delete)
            ctx->unauth_code = "unauthenticated";
        if (r->auth == AUTH_NONE)
            r->handler(ctx);
        else
            gw_auth_check(ctx, admitted);
        return;
    }
    if (path_known) {
        char hdr[96];
        snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
        gw_api_problem_ex(ctx, 405, "method_not_allowed", NULL, hdr, "%s",
                          "this resource does not support that method");
        return;
    }
    gw_api_problem(ctx, 404, "not_found", NULL, "no such resource: %s", req->path);
}
