/*
 * Console sessions (docs/console.md "Sign-in", docs/decisions/0054).
 *
 * The cookie `gw_session` holds 256 random bits (base64url); PostgreSQL
 * keeps only their SHA-256 (gw_sessions, sql/0012_console_sessions.sql)
 * with the principal as it was at sign-in, an absolute end and an idle
 * timeout. Every request made with the cookie looks the session up (no
 * cache: a logout or a revocation holds on the next request, on every
 * replica) and moves last_seen_at in the same statement. A session made
 * from an API token names it, so revoking the token ends the session.
 *
 * CSRF: the cookie is SameSite=Strict, and every state-changing request
 * made with it must also carry X-CSRF-Token equal to the session's token,
 * which only a page of this origin can read (GET /v1/session).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "gw/crypto.h"
#include "gw/log.h"
#include "policy.h"

#define COOKIE         "gw_session"
#define SESSION_BYTES  32
#define CSRF_BYTES     24
#define DEV_CODE_BYTES 24

const char gw_console_headers[] =
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'\r\n"
    "X-Frame-Options: DENY\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: same-origin\r\n";

bool gw_session_cookie(const struct gw_http_req *req, char *out, size_t cap)
{
    /* Several Cookie headers may come (HTTP/1.1 clients send one; be
     * lenient): the first gw_session wins. */
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, "cookie") != 0)
            continue;
        const char *p = req->headers[i].value;
        while (p != NULL && *p != '\0') {
            p += strspn(p, " ;");
            size_t n = strcspn(p, ";");
            if (n > sizeof(COOKIE) && strncmp(p, COOKIE "=", sizeof(COOKIE)) == 0) {
                size_t vlen = n - sizeof(COOKIE);
                const char *v = p + sizeof(COOKIE);
                while (vlen > 0 && v[vlen - 1] == ' ')
                    vlen--;
                if (vlen == 0 || vlen >= cap)
                    return false;
                memcpy(out, v, vlen);
                out[vlen] = '\0';
                return true;
            }
            p += n;
        }
    }
    return false;
}

/* Secure when the browser reached us over TLS: the public URL says so, or
 * the trusted proxy in front does (X-Forwarded-Proto). */
static bool secure_request(const struct gw_api_ctx *ctx)
{
    const char *pub = ctx->b->opts.public_url;
    if (pub != NULL && strncmp(pub, "https://", 8) == 0)
        return true;
    const char *xfp = gw_http_req_header(ctx->req, "x-forwarded-proto");
    return ctx->b->opts.trust_proxy && xfp != NULL && strcasecmp(xfp, "https") == 0;
}

static bool state_changing(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

struct session_wait {
    struct gw_api_ctx *ctx;
    void (*next)(struct gw_api_ctx *ctx);
};

static void fill_principal(struct gw_api_ctx *ctx, const PGresult *res)
{
    struct gw_principal *p = &ctx->principal;
    snprintf(p->subject, sizeof(p->subject), "%s", PQgetvalue(res, 0, 0));
    json_t *teams = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    json_t *roles = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
    size_t i;
    json_t *r;
    json_array_foreach(roles, i, r)
    {
        const char *s = json_string_value(r);
        p->admin = p->admin || (s != NULL && strcmp(s, "admin") == 0);
        p->worker = p->worker || (s != NULL && strcmp(s, "worker") == 0);
    }
    p->teams_json = json_dumps(teams, JSON_COMPACT);
    p->teams_pg = gw_api_pg_array(teams);
    json_decref(teams);
    json_decref(roles);
    snprintf(ctx->csrf, sizeof(ctx->csrf), "%s", PQgetvalue(res, 0, 3));
    snprintf(ctx->session_expires, sizeof(ctx->session_expires), "%s", PQgetvalue(res, 0, 4));
    ctx->auth_method = GW_AUTH_SESSION;
}

static void session_found(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct session_wait *w = arg;
    struct gw_api_ctx *ctx = w->ctx;
    void (*next)(struct gw_api_ctx *) = w->next;

    free(w);
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    if (PQntuples(res) != 1) {
        gw_api_problem(ctx, 401, ctx->unauth_code != NULL ? ctx->unauth_code : "unauthorized", NULL,
                       "the session is unknown, expired, idle too long or signed out");
        return;
    }
    fill_principal(ctx, res);
    if (ctx->principal.teams_json == NULL || ctx->principal.teams_pg == NULL) {
        gw_api_oom(ctx);
        return;
    }
    if (state_changing(ctx->req->method)) {
        const char *sent = gw_http_req_header(ctx->req, "x-csrf-token");
        size_t n = strlen(ctx->csrf);
        if (sent == NULL || strlen(sent) != n || !gw_const_eq(sent, ctx->csrf, n)) {
            gw_api_problem(ctx, 403, "csrf_failed", NULL,
                           "a request made with the session cookie that changes something must "
                           "carry the header X-CSRF-Token with the session's csrf_token "
                           "(GET /v1/session)");
            return;
        }
    }
    next(ctx);
}

void gw_session_check(struct gw_api_ctx *ctx, const char *cookie,
                      void (*next)(struct gw_api_ctx *ctx))
{
    struct session_wait *w = malloc(sizeof(*w));
    if (w == NULL) {
        gw_api_oom(ctx);
        return;
    }
    w->ctx = ctx;
    w->next = next;
    gw_sha256_hex(cookie, strlen(cookie), ctx->session_hash);
    const char *params[] = {ctx->session_hash};
    /* One statement: found, live, not idle, its token (if any) still valid,
     * and seen now. */
    if (gw_pg_query(ctx->b->pg, "session_check",
                    "UPDATE gw_sessions s SET last_seen_at = now()"
                    " WHERE s.id_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()"
                    " AND s.last_seen_at > now() - make_interval(secs => s.idle_seconds)"
                    " AND (s.token_hash IS NULL OR EXISTS (SELECT 1 FROM gw_api_tokens t"
                    " WHERE t.token_hash = s.token_hash AND t.revoked_at IS NULL"
                    " AND (t.expires_at IS NULL OR t.expires_at > now())))"
                    " RETURNING s.subject, to_json(s.teams)::text, to_json(s.roles)::text,"
                    " s.csrf_token, gw_ts(s.expires_at)",
                    1, params, session_found, w) < 0) {
        free(w);
        gw_api_problem(ctx, 503, "unavailable", NULL, "the database queue is full");
    }
}

/* ---- the session document ---- */

static void reply_session(struct gw_api_ctx *ctx, int status, const char *set_cookie,
                          const char *method)
{
    struct gw_authz z;
    if (!gw_authz_begin(&z, ctx))
        return;
    json_t *roles = gw_authz_roles(&z);
    json_t *me = gw_authz_describe(&z, ctx->cat);
    gw_authz_finish(&z);
    json_t *teams = json_loads(ctx->principal.teams_json, 0, NULL);
    json_t *doc = json_pack("{s:s, s:o, s:o, s:o, s:s, s:s, s:i, s:s?}", "subject",
                            ctx->principal.subject, "teams", teams ? teams : json_array(), "roles",
                            roles ? roles : json_array(), "permissions", me ? me : json_null(),
                            "csrf_token", ctx->csrf, "expires_at", ctx->session_expires,
                            "idle_timeout_s", ctx->b->opts.session_idle_s, "method", method);
    const char *body = doc != NULL ? gw_api_dump(ctx, doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (body == NULL) {
        gw_api_oom(ctx);
        return;
    }
    const char *hdr =
        gw_api_printf(ctx, "%sCache-Control: no-store\r\n", set_cookie != NULL ? set_cookie : "");
    gw_api_reply(ctx, status, hdr, body, strlen(body));
}

struct start {
    struct gw_api_ctx *ctx;
    enum gw_session_reply reply;
    char method[16];
    char cookie[96];
    char *return_to;
};

static const char *method_name(const struct gw_api_ctx *ctx)
{
    switch (ctx->auth_method) {
    case GW_AUTH_API_TOKEN:
        return "token";
    case GW_AUTH_JWT:
        return "jwt";
    default:
        return "session";
    }
}

static void started(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct start *st = arg;
    struct gw_api_ctx *ctx = st->ctx;

    if (err != NULL || PQntuples(res) != 1) {
        free(st->return_to);
        free(st);
        if (err != NULL)
            gw_api_pg_failed(ctx, err);
        else
            gw_api_problem(ctx, 500, "internal", NULL, "the session was not stored");
        return;
    }
    snprintf(ctx->session_expires, sizeof(ctx->session_expires), "%s", PQgetvalue(res, 0, 0));
    const char *set = gw_api_printf(
        ctx, "Set-Cookie: " COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s; Max-Age=%d\r\n",
        st->cookie, secure_request(ctx) ? "; Secure" : "", ctx->b->opts.session_ttl_s);
    gw_log_info("session: %s signed in (%s)", ctx->principal.subject, st->method);
    if (set == NULL) {
        free(st->return_to);
        free(st);
        gw_api_oom(ctx);
        return;
    }
    if (st->reply == GW_SESSION_REPLY_JSON) {
        char method[16];
        snprintf(method, sizeof(method), "%s", st->method);
        free(st->return_to);
        free(st);
        reply_session(ctx, 201, set, method);
        return;
    }
    const char *hdr = gw_api_printf(ctx, "%sLocation: %s\r\nCache-Control: no-store\r\n%s", set,
                                    st->return_to, gw_console_headers);
    free(st->return_to);
    free(st);
    if (hdr == NULL) {
        gw_api_oom(ctx);
        return;
    }
    gw_api_send(ctx, 302, "text/plain", hdr, "", 0);
}

void gw_session_start(struct gw_api_ctx *ctx, const char *method, enum gw_session_reply reply,
                      const char *return_to)
{
    struct gw_error err;
    struct start *st = calloc(1, sizeof(*st));
    if (st == NULL || (st->return_to = strdup(return_to != NULL ? return_to : "/ui/")) == NULL) {
        free(st);
        gw_api_oom(ctx);
        return;
    }
    st->ctx = ctx;
    st->reply = reply;
    snprintf(st->method, sizeof(st->method), "%s", method != NULL ? method : method_name(ctx));
    if (gw_random_b64url(SESSION_BYTES, st->cookie, &err) < 0 ||
        gw_random_b64url(CSRF_BYTES, ctx->csrf, &err) < 0) {
        free(st->return_to);
        free(st);
        gw_api_problem(ctx, 503, "unavailable", NULL, "no randomness: %s", err.message);
        return;
    }
    gw_sha256_hex(st->cookie, strlen(st->cookie), ctx->session_hash);
    /* Roles: what the token carries (admin, worker); the policy's roles
     * are resolved on every request from the subject and teams, as for a
     * bearer token. */
    const char *roles = ctx->principal.admin && ctx->principal.worker ? "{admin,worker}"
                        : ctx->principal.admin                        ? "{admin}"
                        : ctx->principal.worker                       ? "{worker}"
                                                                      : "{}";
    char ttl[24], idle[24], cap[24];
    snprintf(ttl, sizeof(ttl), "%d", ctx->b->opts.session_ttl_s);
    snprintf(idle, sizeof(idle), "%d", ctx->b->opts.session_idle_s);
    /* A pasted JWT: the session ends when the token would have. */
    snprintf(cap, sizeof(cap), "%lld",
             ctx->auth_method == GW_AUTH_JWT && strcmp(st->method, "jwt") == 0 ? ctx->auth_expires
                                                                               : 0LL);
    const char *ua = gw_http_req_header(ctx->req, "user-agent");
    char ua_cut[200];
    snprintf(ua_cut, sizeof(ua_cut), "%s", ua != NULL ? ua : "");
    const char *params[] = {
        ctx->session_hash,
        ctx->principal.subject,
        ctx->principal.teams_pg,
        roles,
        st->method,
        ctx->auth_issuer[0] != '\0' ? ctx->auth_issuer : NULL,
        ctx->token_hash[0] != '\0' ? ctx->token_hash : NULL,
        ctx->csrf,
        ttl,
        idle,
        cap,
        ua_cut[0] != '\0' ? ua_cut : NULL,
    };
    if (gw_pg_query(ctx->b->pg, "session_start",
                    /* Sessions over for a week go with each sign-in: the table
                     * keeps recent sign-ins, not all of them. */
                    "WITH gone AS (DELETE FROM gw_sessions WHERE coalesce(revoked_at,"
                    " expires_at) < now() - interval '7 days')"
                    " INSERT INTO gw_sessions (id_hash, subject, teams, roles, method, issuer,"
                    " token_hash, csrf_token, expires_at, idle_seconds, user_agent)"
                    " VALUES ($1, $2, $3::text[], $4::text[], $5, $6, $7, $8,"
                    " CASE WHEN $11::bigint > 0 THEN least(now() + make_interval(secs => $9::int),"
                    " to_timestamp($11::bigint)) ELSE now() + make_interval(secs => $9::int) END,"
                    " $10::int, $12) RETURNING gw_ts(expires_at)",
                    12, params, started, st) < 0) {
        free(st->return_to);
        free(st);
        gw_api_problem(ctx, 503, "unavailable", NULL, "the database queue is full");
    }
}

/* ---- POST /v1/session ---- */

static void token_ok(struct gw_api_ctx *ctx)
{
    if (gw_principal_worker_only(&ctx->principal)) {
        gw_api_problem(ctx, 403, "forbidden", NULL, "a worker token cannot sign in to the console");
        return;
    }
    gw_session_start(ctx, NULL, GW_SESSION_REPLY_JSON, NULL);
}

void gw_api_session_create(struct gw_api_ctx *ctx)
{
    static const char *const allowed[] = {"token", NULL};
    const char *ct = gw_http_req_header(ctx->req, "content-type");
    /* A cross-site form can post text/plain or form data, never JSON. */
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
        gw_api_problem(ctx, 415, "unsupported_media_type",
                       gw_api_field_error("/header/Content-Type", "const", "application/json"),
                       "POST /v1/session takes a JSON body (Content-Type: application/json)");
        return;
    }
    json_t *body = gw_api_body(ctx);
    if (body == NULL)
        return;
    if (!json_is_object(body)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("", "type", "an object {\"token\": ...}"),
                       "the body must be an object with a token");
        return;
    }
    if (!gw_api_only_fields(ctx, body, allowed))
        return;
    json_t *tok = json_object_get(body, "token");
    if (!json_is_string(tok) || json_string_length(tok) == 0 || json_string_length(tok) > 8192 ||
        strlen(json_string_value(tok)) != json_string_length(tok)) {
        gw_api_problem(ctx, 422, "validation_failed",
                       gw_api_field_error("/token", tok == NULL ? "required" : "type",
                                          "an API token or a JWT (1 to 8192 characters)"),
                       "'token' must be an API token or a JWT");
        return;
    }
    gw_auth_token(ctx, json_string_value(tok), token_ok);
}

/* ---- GET /v1/session ---- */

/* GET and DELETE /v1/session are USER routes: the router authenticated the
 * request (the cookie, with CSRF for DELETE); a bearer token has no
 * session to show or end. */
static bool has_session(struct gw_api_ctx *ctx)
{
    if (ctx->auth_method == GW_AUTH_SESSION)
        return true;
    gw_api_problem(ctx, 401, "unauthenticated", NULL,
                   "this request carries no session cookie (it authenticated with a bearer "
                   "token); sign in with POST /v1/session");
    return false;
}

void gw_api_session_get(struct gw_api_ctx *ctx)
{
    if (has_session(ctx))
        reply_session(ctx, 200, NULL, "session");
}

/* ---- DELETE /v1/session ---- */

static void revoked(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_api_ctx *ctx = arg;
    (void)res;
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    gw_log_info("session: %s signed out", ctx->principal.subject);
    gw_api_send(ctx, 204, NULL,
                "Set-Cookie: " COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0\r\n"
                "Cache-Control: no-store\r\n",
                "", 0);
}

void gw_api_session_delete(struct gw_api_ctx *ctx)
{
    if (!has_session(ctx))
        return;
    const char *params[] = {ctx->session_hash};
    gw_api_query_or_503(ctx, "session_revoke",
                        "UPDATE gw_sessions SET revoked_at = now()"
                        " WHERE id_hash = $1 AND revoked_at IS NULL",
                        1, params, revoked);
}

/* ---- GET /auth/dev-login?code=C ---- */

static void dev_token_ok(struct gw_api_ctx *ctx)
{
    if (gw_principal_worker_only(&ctx->principal)) {
        gw_api_problem(ctx, 403, "forbidden", NULL, "a worker token cannot sign in to the console");
        return;
    }
    gw_session_start(ctx, "dev", GW_SESSION_REPLY_REDIRECT, "/ui/");
}

static void dev_code_used(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_api_ctx *ctx = arg;
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        gw_api_problem(ctx, 401, "login_code_invalid", NULL,
                       "this login link is unknown, expired or already used; restart `gangway "
                       "dev` for a new one");
        return;
    }
    /* The token it names, checked like any API token (revoked: 401). */
    char *hash = gw_api_printf(ctx, "%s", PQgetvalue(res, 0, 0));
    if (hash == NULL) {
        gw_api_oom(ctx);
        return;
    }
    gw_auth_token_hash(ctx, hash, dev_token_ok);
}

void gw_api_dev_login(struct gw_api_ctx *ctx)
{
    char code[96], hash[GW_SHA256_HEX_LEN + 1];
    bool too_long = false;
    if (!ctx->b->opts.dev_login) {
        gw_api_problem(ctx, 404, "not_found", NULL,
                       "login links are only accepted by a broker run by `gangway dev`");
        return;
    }
    if (!gw_api_query(ctx, "code", code, sizeof(code), &too_long) || code[0] == '\0') {
        gw_api_problem(ctx, 400, "invalid_parameter",
                       gw_api_field_error("/query/code", "required", "the code of the link"),
                       "the login link has no code");
        return;
    }
    gw_sha256_hex(code, strlen(code), hash);
    char *h = gw_api_printf(ctx, "%s", hash);
    if (h == NULL) {
        gw_api_oom(ctx);
        return;
    }
    const char *params[] = {h};
    /* DELETE ... RETURNING: single use, even with two tabs racing. */
    gw_api_query_or_503(ctx, "dev_login_code",
                        "DELETE FROM gw_login_flows WHERE key_hash = $1 AND kind = 'dev'"
                        " AND expires_at > now() RETURNING token_hash",
                        1, params, dev_code_used);
}
