/*
 * Routes HTTP requests to handlers, and the reply helpers every handler
 * uses. Route table first; dispatch is a linear match over a handful of
 * patterns, cheaper than any allocation the handlers do.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "gw/crypto.h"
#include "gw/json.h"
#include "gw/log.h"
#include "policy.h"
#include "stream.h"

enum auth_need { AUTH_NONE, AUTH_USER };

struct route {
    const char *method;
    const char *pattern; /* '*' matches one path segment, captured into ctx->id */
    enum auth_need auth;
    void (*handler)(struct gw_api_ctx *ctx);
};

static const struct route routes[] = {
    {"GET", "/healthz", AUTH_NONE, gw_api_health},
    {"GET", "/readyz", AUTH_NONE, gw_api_ready},
    {"GET", "/metrics", AUTH_NONE, gw_api_metrics},
    {"GET", "/v1/me", AUTH_USER, gw_api_me},
    {"GET", "/v1/actions", AUTH_USER, gw_api_actions_list},
    {"GET", "/v1/actions/*", AUTH_USER, gw_api_action_get},
    {"POST", "/v1/actions/*/runs", AUTH_USER, gw_api_run_submit},
    {"GET", "/v1/runs", AUTH_USER, gw_api_runs_list},
    {"GET", "/v1/runs/*", AUTH_USER, gw_api_run_get},
    {"GET", "/v1/runs/*/events", AUTH_USER, gw_api_run_events},
    {"GET", "/v1/runs/*/logs", AUTH_USER, gw_stream_run_logs}, /* JSON, or SSE with follow */
    {"POST", "/v1/runs/*/cancel", AUTH_USER, gw_api_run_cancel},
    {"POST", "/v1/runs/*/reconcile", AUTH_USER, gw_api_run_reconcile},
    {"POST", "/v1/runs/*/decisions", AUTH_USER, gw_api_run_decide},
    {"GET", "/v1/approvals", AUTH_USER, gw_api_approvals_list},
    {"GET", "/v1/resources", AUTH_USER, gw_api_resources_list},
    {"GET", "/v1/resources/*", AUTH_USER, gw_api_resource_get},
    {"POST", "/v1/resources/*/extend", AUTH_USER, gw_api_resource_extend},
    {"POST", "/v1/resources/*/extension/decisions", AUTH_USER, gw_api_extension_decide},
    {"DELETE", "/v1/resources/*", AUTH_USER, gw_api_resource_delete},
    {"GET", "/v1/events", AUTH_USER, gw_stream_events},
    {"GET", "/v1/audit", AUTH_USER, gw_api_audit_list},
    {"POST", "/internal/v1/runs/*/claim", AUTH_USER, gw_api_run_claim},
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

static void ctx_free(struct gw_api_ctx *ctx)
{
    free(ctx->principal.teams_json);
    free(ctx->principal.teams_pg);
    json_decref(ctx->scratch);
    free(ctx);
}

void gw_api_ctx_free(struct gw_api_ctx *ctx)
{
    ctx_free(ctx);
}

void gw_api_reply(struct gw_api_ctx *ctx, int status, const char *extra_headers, const char *json,
                  size_t len)
{
    unsigned cls = (unsigned)status / 100;
    if (cls < ARRAY_SIZE(ctx->b->metrics.http_by_class))
        ctx->b->metrics.http_by_class[cls]++;
    gw_http_respond(ctx->req, status, "application/json", extra_headers, json, len);
    ctx_free(ctx);
}

void gw_api_problem(struct gw_api_ctx *ctx, int status, const char *code, json_t *errors,
                    const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    unsigned cls = (unsigned)status / 100;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    json_t *p =
        json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank", "title",
                  gw_http_status_text(status), "status", status, "code", code, "detail", detail);
    if (errors != NULL)
        json_object_set_new(p, "errors", errors);
    char *body = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    if (cls < ARRAY_SIZE(ctx->b->metrics.http_by_class))
        ctx->b->metrics.http_by_class[cls]++;
    gw_http_respond(ctx->req, status, "application/problem+json",
                    status == 401   ? "WWW-Authenticate: Bearer realm=\"gangway\"\r\n"
                    : status == 503 ? "Retry-After: 1\r\n"
                                    : NULL,
                    body, body != NULL ? strlen(body) : 0);
    free(body);
    ctx_free(ctx);
}

bool gw_api_query(struct gw_api_ctx *ctx, const char *name, char *out, size_t cap, bool *too_long)
{
    size_t n = strlen(name);
    if (gw_http_req_query(ctx->req, name, out, cap))
        return true;
    /* Absent, or present and longer than the caller's buffer: tell them
     * apart, so a filter is never dropped silently. */
    for (const char *q = ctx->req->query; q != NULL && *q != '\0';) {
        if (strncmp(q, name, n) == 0 && q[n] == '=') {
            *too_long = true;
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
    gw_api_problem(ctx, 400, "invalid_parameter", NULL,
                   "a query parameter is longer than any valid value");
}

bool gw_api_query_limit(struct gw_api_ctx *ctx, int max, int *limit, bool *too_long)
{
    char s[16];
    if (!gw_api_query(ctx, "limit", s, sizeof(s), too_long))
        return true;
    int n = atoi(s);
    if (s[0] == '\0' || strspn(s, "0123456789") != strlen(s) || n < 1 || n > max) {
        char range[32];
        snprintf(range, sizeof(range), "1 to %d", max);
        gw_api_problem(ctx, 400, "invalid_parameter",
                       gw_api_field_error("/query/limit", "maximum", range),
                       "'limit' must be between 1 and %d", max);
        return false;
    }
    *limit = n;
    return true;
}

bool gw_api_query_cursor(struct gw_api_ctx *ctx, char *buf, size_t cap, const char **ts,
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
        gw_api_problem(ctx, 503, "unavailable", NULL, "out of memory");
        return;
    }
    p += sprintf(p, "{\"items\":[");
    for (int i = 0; i < n && i < limit; i++) {
        if (i > 0)
            *p++ = ',';
        size_t len = (size_t)PQgetlength(res, i, 0);
        memcpy(p, PQgetvalue(res, i, 0), len);
        p += len;
    }
    if (more)
        p += sprintf(p, "],\"next_cursor\":\"%s\"}", PQgetvalue(res, limit - 1, 1));
    else
        p += sprintf(p, "],\"next_cursor\":null}");
    gw_api_reply(ctx, 200, NULL, out, (size_t)(p - out));
    free(out);
}

char *gw_api_pg_array(json_t *arr)
{
    size_t cap = 3, i;
    json_t *v;
    json_array_foreach(arr, i, v) cap += 2 * json_string_length(v) + 4;
    char *out = malloc(cap), *p = out;
    if (out == NULL)
        return NULL;
    *p++ = '{';
    json_array_foreach(arr, i, v)
    {
        const char *c = json_string_value(v);
        if (i > 0)
            *p++ = ',';
        *p++ = '"';
        for (; c != NULL && *c; c++) {
            if (*c == '"' || *c == '\\')
                *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

void gw_api_query_or_503(struct gw_api_ctx *ctx, const char *name, const char *sql, int n,
                         const char *const *params, gw_pg_cb cb)
{
    if (gw_pg_query(ctx->b->pg, name, sql, n, params, cb, ctx) < 0)
        gw_api_problem(ctx, 503, "unavailable", NULL, "the broker is overloaded; retry later");
}

json_t *gw_api_field_error(const char *pointer, const char *keyword, const char *message)
{
    return json_pack("[{s:s, s:s, s:s}]", "pointer", pointer, "keyword", keyword, "message",
                     message);
}

json_t *gw_api_body(struct gw_api_ctx *ctx, bool optional)
{
    struct gw_json_fault f;
    json_t *doc;
    if (ctx->req->body_len == 0 && optional)
        return NULL;
    doc = gw_json_parse_request(ctx->req->body, ctx->req->body_len, &f);
    if (doc == NULL) {
        gw_api_problem(ctx, f.status, f.code,
                       f.status == 422 ? gw_api_field_error(f.pointer, f.keyword, f.message) : NULL,
                       "%s", f.message);
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

void gw_broker_handle(struct gw_http_req *req, void *arg)
{
    struct gw_broker *b = arg;
    struct gw_api_ctx *ctx = calloc(1, sizeof(*ctx));
    bool path_known = false;
    char allow[64] = "";

    if (ctx == NULL) {
        gw_http_respond(req, 503, "application/problem+json", "Retry-After: 1\r\n", NULL, 0);
        return;
    }
    ctx->b = b;
    ctx->req = req;
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        const struct route *r = &routes[i];
        if (!match(r->pattern, req->path, ctx->id, sizeof(ctx->id)))
            continue;
        path_known = true;
        if (strcmp(r->method, req->method) != 0) {
            size_t n = strlen(allow);
            snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "", r->method);
            continue;
        }
        if (r->auth == AUTH_NONE)
            r->handler(ctx);
        else
            gw_auth_check(ctx, r->handler);
        return;
    }
    if (path_known) {
        char hdr[96];
        snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
        json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank", "title",
                              "Method Not Allowed", "status", 405, "code", "method_not_allowed",
                              "detail", "this resource does not support that method");
        char *body = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        b->metrics.http_by_class[4]++;
        gw_http_respond(req, 405, "application/problem+json", hdr, body, strlen(body));
        free(body);
        ctx_free(ctx);
        return;
    }
    gw_api_problem(ctx, 404, "not_found", NULL, "no such resource: %s", req->path);
}
