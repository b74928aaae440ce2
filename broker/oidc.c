/*
 * OIDC sign-in to the console: authorization code flow with PKCE (S256),
 * the broker as a confidential client (docs/console.md "Sign-in",
 * docs/decisions/0055).
 *
 *   GET /v1/auth/providers       the configured providers, for the login page
 *   GET /auth/oidc/login         302 to the provider; state, nonce and the
 *                                PKCE verifier kept in gw_login_flows (only
 *                                the state's hash, 10 minutes, single use)
 *   GET /auth/oidc/callback      state taken (DELETE ... RETURNING), code
 *                                exchanged at the token endpoint with the
 *                                client secret and the verifier, the ID token
 *                                verified by lib/jwt under that provider's
 *                                entry (signature, iss, aud, exp) and its
 *                                nonce compared; then a session, 302 back
 *
 * The identity is the entry's mapping of the ID token (subject claim made
 * canonical by lib/jwt, teams claim), exactly what the same token would be
 * as a bearer token; roles come from the policy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "gw/crypto.h"
#include "gw/jwt.h"
#include "gw/log.h"

#define FLOW_TTL_S     600
#define RETURN_TO_MAX  512
#define VERIFIER_BYTES 48

/* A path on this origin the browser may be sent back to: "/..." but not
 * "//host" or "/\host" (both leave the origin), no control characters. */
static bool same_origin_path(const char *p)
{
    if (p[0] != '/' || p[1] == '/' || p[1] == '\\')
        return false;
    for (const unsigned char *c = (const unsigned char *)p; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '\\')
            return false;
    return true;
}

static void url_encode(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (const unsigned char *c = (const unsigned char *)s; *c && o + 4 < cap; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~')
            out[o++] = (char)*c;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", *c);
    }
    out[o] = '\0';
}

/* The redirect URI registered at the provider: the entry's, else the
 * broker's public URL + /auth/oidc/callback. NULL when neither is set
 * (gw_broker_create refuses that configuration). */
static const char *redirect_uri(struct gw_api_ctx *ctx, const struct gw_oidc_provider *p)
{
    if (p->redirect_uri != NULL)
        return p->redirect_uri;
    const char *pub = ctx->b->opts.public_url;
    if (pub == NULL)
        return NULL;
    size_t n = strlen(pub);
    while (n > 0 && pub[n - 1] == '/')
        n--;
    return gw_api_printf(ctx, "%.*s/auth/oidc/callback", (int)n, pub);
}

void gw_api_auth_providers(struct gw_api_ctx *ctx)
{
    json_t *list = json_array();
    struct gw_oidc_provider p;
    for (size_t i = 0; list != NULL && gw_jwt_oidc_get(ctx->b->jwt, i, &p); i++) {
        char name[256];
        url_encode(name, sizeof(name), p.name);
        char *login = gw_api_printf(ctx, "/auth/oidc/login?provider=%s", name);
        json_array_append_new(list, json_pack("{s:s, s:s, s:s?, s:s}", "id", p.name, "name",
                                              p.display_name, "login_url", login, "kind", "oidc"));
    }
    gw_api_reply_doc(ctx, 200, list);
}

/* gw_api_query_or_503 with a callback argument other than ctx. */
static void query_or_503(struct gw_api_ctx *ctx, const char *name, const char *sql, int n,
                         const char *const *params, gw_pg_cb cb, void *arg)
{
    if (gw_pg_query(ctx->b->pg, name, sql, n, params, cb, arg) < 0)
        gw_api_problem(ctx, 503, "unavailable", NULL, "the broker is overloaded; retry later");
}

/* ---- GET /auth/oidc/login ---- */

struct login {
    struct gw_api_ctx *ctx;
    struct gw_oidc_provider p;
    char return_to[RETURN_TO_MAX];
    char state[64], nonce[64], verifier[80], challenge[48];
    char state_hash[GW_SHA256_HEX_LEN + 1];
};

static void flow_stored(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct login *l = arg;
    struct gw_api_ctx *ctx = l->ctx;
    (void)res;
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    /* The provider's endpoint may already carry a query (Google's does not,
     * some gateways' do). */
    const char *ep = l->p.authorization_endpoint;
    const char *redirect = redirect_uri(ctx, &l->p);
    char e_client[512], e_redirect[1024], e_scope[1024];
    url_encode(e_client, sizeof(e_client), l->p.client_id);
    url_encode(e_redirect, sizeof(e_redirect), redirect != NULL ? redirect : "");
    url_encode(e_scope, sizeof(e_scope), l->p.scopes);
    const char *hdr = gw_api_printf(
        ctx,
        "Location: %s%sresponse_type=code&client_id=%s&redirect_uri=%s&scope=%s&state=%s"
        "&nonce=%s&code_challenge=%s&code_challenge_method=S256\r\n"
        "Cache-Control: no-store\r\n%s",
        ep, strchr(ep, '?') != NULL ? "&" : "?", e_client, e_redirect, e_scope, l->state, l->nonce,
        l->challenge, gw_console_headers);
    if (hdr == NULL) {
        gw_api_oom(ctx);
        return;
    }
    gw_api_send(ctx, 302, "text/plain", hdr, "", 0);
}

static void provider_ready(void *arg, const struct gw_error *err)
{
    struct login *l = arg;
    struct gw_api_ctx *ctx = l->ctx;
    struct gw_error rerr;

    if (err != NULL) {
        gw_api_problem(ctx, 503, "idp_unavailable", NULL, "%s", err->message);
        return;
    }
    gw_jwt_oidc_find(ctx->b->jwt, l->p.name, &l->p); /* now with its endpoints */
    if (l->p.authorization_endpoint == NULL || redirect_uri(ctx, &l->p) == NULL) {
        gw_api_problem(ctx, 503, "idp_unavailable", NULL, "the identity provider %s is not ready",
                       l->p.name);
        return;
    }
    if (gw_random_b64url(32, l->state, &rerr) < 0 || gw_random_b64url(32, l->nonce, &rerr) < 0 ||
        gw_random_b64url(VERIFIER_BYTES, l->verifier, &rerr) < 0) {
        gw_api_problem(ctx, 503, "unavailable", NULL, "no randomness: %s", rerr.message);
        return;
    }
    gw_sha256_b64url(l->verifier, strlen(l->verifier), l->challenge);
    gw_sha256_hex(l->state, strlen(l->state), l->state_hash);
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", FLOW_TTL_S);
    const char *params[] = {l->state_hash, l->p.name, l->nonce, l->verifier, l->return_to, ttl};
    /* Expired flows go in the same statement: the table stays small. */
    query_or_503(ctx, "oidc_flow",
                 "WITH gone AS (DELETE FROM gw_login_flows WHERE expires_at < now() - "
                 "interval '1 hour') INSERT INTO gw_login_flows (key_hash, kind, issuer,"
                 " nonce, verifier, return_to, expires_at) VALUES ($1, 'oidc', $2, $3, $4,"
                 " $5, now() + make_interval(secs => $6::int))",
                 6, params, flow_stored, l);
}

/* The provider named by ?provider=, or the only one. False when answered. */
static bool pick_provider(struct gw_api_ctx *ctx, const char *name, struct gw_oidc_provider *p)
{
    size_t n = gw_jwt_oidc_count(ctx->b->jwt);
    if (n == 0) {
        gw_api_problem(ctx, 404, "oidc_not_configured", NULL,
                       "no OIDC provider is configured (an issuer with \"client_id\" in "
                       "GW_AUTH_CONFIG, docs/console.md)");
        return false;
    }
    if (name == NULL && n == 1)
        return gw_jwt_oidc_get(ctx->b->jwt, 0, p);
    if (name == NULL || !gw_jwt_oidc_find(ctx->b->jwt, name, p)) {
        gw_api_problem(
            ctx, 400, "invalid_parameter",
            gw_api_field_error("/query/provider", "enum", "an id from GET /v1/auth/providers"),
            name == NULL ? "several providers are configured: say which (provider=)"
                         : "unknown provider '%s'",
            name);
        return false;
    }
    return true;
}

void gw_api_oidc_login(struct gw_api_ctx *ctx)
{
    char provider[128];
    bool too_long = false, has_provider;
    struct login *l = gw_api_alloc(ctx, sizeof(*l));
    if (l == NULL) {
        gw_api_oom(ctx);
        return;
    }
    memset(l, 0, sizeof(*l));
    l->ctx = ctx;
    has_provider = gw_api_query(ctx, "provider", provider, sizeof(provider), &too_long);
    if (!gw_api_query(ctx, "return_to", l->return_to, sizeof(l->return_to), &too_long))
        snprintf(l->return_to, sizeof(l->return_to), "/ui/");
    if (too_long) {
        gw_api_query_too_long(ctx);
        return;
    }
    if (!same_origin_path(l->return_to)) {
        gw_api_problem(ctx, 400, "invalid_parameter",
                       gw_api_field_error("/query/return_to", "format",
                                          "a path on this site, starting with one '/'"),
                       "return_to must be a path on this site");
        return;
    }
    if (!pick_provider(ctx, has_provider ? provider : NULL, &l->p))
        return;
    gw_jwt_oidc_ready(ctx->b->jwt, l->p.index, provider_ready, l);
}

/* ---- GET /auth/oidc/callback ---- */

struct callback {
    struct gw_api_ctx *ctx;
    struct gw_oidc_provider p;
    char code[2048];
    char nonce[64];
    char verifier[80];
    char return_to[RETURN_TO_MAX];
};

static void sign_in_failed(struct gw_api_ctx *ctx, int status, const char *code, const char *why)
{
    gw_log_info("oidc: sign-in refused: %s", why);
    gw_api_problem_ex(ctx, status, code, NULL, gw_console_headers, "sign-in failed: %s", why);
}

static void id_token_verified(void *arg, const struct gw_jwt_identity *id,
                              const struct gw_error *err);

static void id_token_received(void *arg, const char *id_token, const struct gw_error *err)
{
    struct callback *cb = arg;
    struct gw_api_ctx *ctx = cb->ctx;
    if (err != NULL) {
        if (err->code == GW_ECLOSED)
            gw_api_problem(ctx, 503, "unavailable", NULL, "shutting down");
        else
            sign_in_failed(ctx, err->code == GW_EAUTH ? 401 : 502,
                           err->code == GW_EAUTH ? "oidc_failed" : "idp_unavailable", err->message);
        return;
    }
    /* Verified first, then its nonce read: the payload is trusted only
     * once the signature is. Keep a copy for the nonce. */
    size_t len = strlen(id_token);
    char *copy = gw_api_alloc(ctx, len + 1);
    if (copy == NULL) {
        gw_api_oom(ctx);
        return;
    }
    memcpy(copy, id_token, len + 1);
    ctx->scratch = json_pack("{s:s}", "id_token", copy); /* freed with ctx */
    gw_jwt_oidc_verify(ctx->b->jwt, cb->p.index, copy, len, id_token_verified, cb);
}

static void id_token_verified(void *arg, const struct gw_jwt_identity *id,
                              const struct gw_error *err)
{
    struct callback *cb = arg;
    struct gw_api_ctx *ctx = cb->ctx;
    if (err != NULL) {
        if (err->code == GW_ECLOSED)
            gw_api_problem(ctx, 503, "unavailable", NULL, "shutting down");
        else
            sign_in_failed(ctx, 401, "oidc_failed", err->message);
        return;
    }
    const char *tok = json_string_value(json_object_get(ctx->scratch, "id_token"));
    json_t *claims = tok != NULL ? gw_jws_peek_payload(tok, strlen(tok)) : NULL;
    const char *nonce = json_string_value(json_object_get(claims, "nonce"));
    bool nonce_ok = nonce != NULL && strlen(nonce) == strlen(cb->nonce) &&
                    gw_const_eq(nonce, cb->nonce, strlen(cb->nonce));
    json_decref(claims);
    if (!nonce_ok) {
        sign_in_failed(ctx, 401, "oidc_failed", "the ID token's nonce is not this sign-in's");
        return;
    }
    struct gw_principal *p = &ctx->principal;
    snprintf(p->subject, sizeof(p->subject), "%s", id->subject);
    p->teams_json = json_dumps(id->teams, JSON_COMPACT);
    p->teams_pg = gw_api_pg_array(id->teams);
    if (p->teams_json == NULL || p->teams_pg == NULL) {
        gw_api_oom(ctx);
        return;
    }
    ctx->auth_method = GW_AUTH_JWT;
    ctx->auth_expires = id->expires_at;
    snprintf(ctx->auth_issuer, sizeof(ctx->auth_issuer), "%s", id->issuer);
    gw_session_start(ctx, "oidc", GW_SESSION_REPLY_REDIRECT, cb->return_to);
}

static void flow_taken(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct callback *cb = arg;
    struct gw_api_ctx *ctx = cb->ctx;
    if (err != NULL) {
        gw_api_pg_failed(ctx, err);
        return;
    }
    if (PQntuples(res) != 1) {
        sign_in_failed(ctx, 400, "login_state_invalid",
                       "this sign-in is unknown, expired (10 minutes) or already used; start "
                       "again from the login page");
        return;
    }
    if (!gw_jwt_oidc_find(ctx->b->jwt, PQgetvalue(res, 0, 0), &cb->p)) {
        sign_in_failed(ctx, 400, "login_state_invalid",
                       "the provider of this sign-in is no longer configured");
        return;
    }
    snprintf(cb->nonce, sizeof(cb->nonce), "%s", PQgetvalue(res, 0, 1));
    snprintf(cb->verifier, sizeof(cb->verifier), "%s", PQgetvalue(res, 0, 2));
    snprintf(cb->return_to, sizeof(cb->return_to), "%s", PQgetvalue(res, 0, 3));
    if (PQgetisnull(res, 0, 4)) { /* the provider said no: the state is spent */
        sign_in_failed(ctx, 401, "oidc_failed", "the identity provider refused the sign-in");
        return;
    }
    const char *redirect = redirect_uri(ctx, &cb->p);
    if (redirect == NULL) {
        gw_api_oom(ctx);
        return;
    }
    gw_jwt_oidc_exchange(ctx->b->jwt, cb->p.index, cb->code, cb->verifier, redirect,
                         id_token_received, cb);
}

void gw_api_oidc_callback(struct gw_api_ctx *ctx)
{
    char state[128], error[128];
    bool too_long = false;
    struct callback *cb = gw_api_alloc(ctx, sizeof(*cb));
    if (cb == NULL) {
        gw_api_oom(ctx);
        return;
    }
    memset(cb, 0, sizeof(*cb));
    cb->ctx = ctx;
    bool has_state = gw_api_query(ctx, "state", state, sizeof(state), &too_long);
    bool has_code = gw_api_query(ctx, "code", cb->code, sizeof(cb->code), &too_long);
    bool has_error = gw_api_query(ctx, "error", error, sizeof(error), &too_long);
    if (too_long) {
        gw_api_query_too_long(ctx);
        return;
    }
    if (!has_state || state[0] == '\0' || (!has_code && !has_error)) {
        gw_api_problem(ctx, 400, "invalid_parameter",
                       gw_api_field_error(!has_state ? "/query/state" : "/query/code", "required",
                                          "set by the identity provider"),
                       "the callback needs state and code (it is called by the identity "
                       "provider, not by hand)");
        return;
    }
    char *hash = gw_api_alloc(ctx, GW_SHA256_HEX_LEN + 1);
    if (hash == NULL) {
        gw_api_oom(ctx);
        return;
    }
    gw_sha256_hex(state, strlen(state), hash);
    const char *params[] = {hash, has_error ? "error" : NULL};
    /* Taken, not read: a state works once, even with two callbacks racing. */
    query_or_503(ctx, "oidc_flow_take",
                 "DELETE FROM gw_login_flows WHERE key_hash = $1 AND kind = 'oidc'"
                 " AND expires_at > now() RETURNING issuer, nonce, verifier, return_to,"
                 " CASE WHEN $2::text IS NULL THEN 'ok' END",
                 2, params, flow_taken, cb);
}
