/*
 * Bearer API tokens. Only the SHA-256 of a token is stored; a small cache
 * (positive and negative entries, 30 s and 5 s) keeps PostgreSQL off the hot
 * path, so a revocation takes effect within 30 seconds on every replica.
 * A bearer value with the shape of a JWS (two dots; API tokens have none)
 * goes to the JWT verifier instead (gw/jwt.h, docs/auth-backstage.md).
 *
 * Either way the subject is canonical (gw/subject.h) before it becomes the
 * principal: a token's stored subject is normalised again here on every
 * lookup, so a row written before canonical subjects ("mia") names the
 * same person as one written after ("user:default/mia").
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "gw/crypto.h"
#include "gw/jwt.h"
#include "gw/log.h"

#define CACHE_BUCKETS   1024
#define CACHE_MAX       8192
#define POSITIVE_TTL_MS 30000
#define NEGATIVE_TTL_MS 5000

struct cache_entry {
    struct cache_entry *next;
    char hash[GW_SHA256_HEX_LEN + 1];
    uint64_t expires_ms;
    bool valid;
    struct gw_principal p;
};

struct gw_auth {
    struct gw_broker *b;
    struct cache_entry *buckets[CACHE_BUCKETS];
    size_t count;
};

struct lookup {
    struct gw_api_ctx *ctx;
    void (*next)(struct gw_api_ctx *ctx);
    struct gw_auth *auth;
    char hash[GW_SHA256_HEX_LEN + 1];
};

struct gw_auth *gw_auth_create(struct gw_broker *b)
{
    struct gw_auth *a = calloc(1, sizeof(*a));
    if (a != NULL)
        a->b = b;
    return a;
}

static void entry_free(struct cache_entry *e)
{
    free(e->p.teams_json);
    free(e->p.teams_pg);
    free(e);
}

static void cache_clear(struct gw_auth *a)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        struct cache_entry *e = a->buckets[i];
        while (e != NULL) {
            struct cache_entry *next = e->next;
            entry_free(e);
            e = next;
        }
        a->buckets[i] = NULL;
    }
    a->count = 0;
}

void gw_auth_destroy(struct gw_auth *a)
{
    if (a == NULL)
        return;
    cache_clear(a);
    free(a);
}

static size_t bucket_of(const char *hash)
{
    return strtoul((char[]){hash[0], hash[1], hash[2], hash[3], 0}, NULL, 16) % CACHE_BUCKETS;
}

static void principal_copy(struct gw_principal *dst, const struct gw_principal *src)
{
    *dst = *src;
    dst->teams_json = src->teams_json ? strdup(src->teams_json) : NULL;
    dst->teams_pg = src->teams_pg ? strdup(src->teams_pg) : NULL;
}

static struct cache_entry *cache_get(struct gw_auth *a, const char *hash)
{
    uint64_t now = uv_now(a->b->loop);
    struct cache_entry **pp = &a->buckets[bucket_of(hash)];
    while (*pp != NULL) {
        struct cache_entry *e = *pp;
        if (e->expires_ms <= now) {
            *pp = e->next;
            entry_free(e);
            a->count--;
            continue;
        }
        if (strcmp(e->hash, hash) == 0)
            return e;
        pp = &e->next;
    }
    return NULL;
}

static void cache_put(struct gw_auth *a, const char *hash, bool valid, const struct gw_principal *p,
                      uint64_t ttl_ms)
{
    struct cache_entry *e;
    size_t b = bucket_of(hash);

    if (a->count >= CACHE_MAX)
        cache_clear(a); /* crude but bounded: a flood of bad tokens cannot grow memory */
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return;
    memcpy(e->hash, hash, sizeof(e->hash));
    e->valid = valid;
    e->expires_ms = uv_now(a->b->loop) + ttl_ms;
    if (valid)
        principal_copy(&e->p, p);
    e->next = a->buckets[b];
    a->buckets[b] = e;
    a->count++;
}

static const char *str_of(json_t *j)
{
    const char *s = json_string_value(j);
    return s != NULL ? s : "";
}

static void unauthorized(struct gw_api_ctx *ctx, const char *detail)
{
    gw_api_problem(ctx, 401, ctx->unauth_code != NULL ? ctx->unauth_code : "unauthorized", NULL,
                   "%s", detail);
}

static bool on_behalf(struct gw_api_ctx *ctx, bool jwt);

static void lookup_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct lookup *l = arg;
    struct gw_api_ctx *ctx = l->ctx;
    struct gw_principal p;

    memset(&p, 0, sizeof(p));
    if (err != NULL) {
        free(l);
        gw_api_pg_failed(ctx, err);
        return;
    }
    if (PQntuples(res) != 1) {
        cache_put(l->auth, l->hash, false, NULL, NEGATIVE_TTL_MS);
        free(l);
        unauthorized(ctx, "the bearer token is unknown, expired or revoked");
        return;
    }
    struct gw_error serr;
    if (gw_subject_canonical(PQgetvalue(res, 0, 0), NULL, 0, p.subject, &serr) < 0) {
        /* Cached as invalid: the row will not get better by asking again. */
        gw_log_warn("API token %.12s...: its subject is not usable: %s", l->hash, serr.message);
        cache_put(l->auth, l->hash, false, NULL, NEGATIVE_TTL_MS);
        free(l);
        unauthorized(ctx, "the bearer token's subject is not a valid identity: create a new token "
                          "(docs/policy.md#subjects)");
        return;
    }
    json_t *teams = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    json_t *roles = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
    size_t i;
    json_t *r;
    json_array_foreach(roles, i, r)
    {
        if (strcmp(str_of(r), "admin") == 0)
            p.admin = true;
        if (strcmp(str_of(r), "worker") == 0)
            p.worker = true;
        if (strcmp(str_of(r), "act_on_behalf") == 0)
            p.act_on_behalf = true;
    }
    /* Teams as gw_team_canonical makes them, rows from before included. */
    json_t *canon = json_array();
    json_array_foreach(teams, i, r)
    {
        char t[GW_TEAM_MAX];
        bool dup = false;
        size_t k;
        json_t *seen;
        if (gw_team_canonical(json_string_value(r), t, NULL) < 0)
            continue;
        json_array_foreach(canon, k, seen) dup = dup || strcmp(json_string_value(seen), t) == 0;
        if (!dup)
            json_array_append_new(canon, json_string(t));
    }
    json_decref(teams);
    teams = canon;
    p.teams_json = json_dumps(teams, JSON_COMPACT);
    p.teams_pg = gw_api_pg_array(teams);
    json_decref(teams);
    json_decref(roles);
    /* Never cache a token past its own expiry. */
    uint64_t ttl = POSITIVE_TTL_MS;
    if (!PQgetisnull(res, 0, 3)) {
        double left_ms = atof(PQgetvalue(res, 0, 3)) * 1000.0;
        if (left_ms < (double)ttl)
            ttl = left_ms > 0 ? (uint64_t)left_ms : 0;
    }
    cache_put(l->auth, l->hash, true, &p, ttl);
    ctx->principal = p; /* the context owns these strings now */
    ctx->auth_method = GW_AUTH_API_TOKEN;
    memcpy(ctx->token_hash, l->hash, sizeof(ctx->token_hash));
    void (*next)(struct gw_api_ctx *) = l->next;
    free(l);
    if (on_behalf(ctx, false))
        next(ctx);
}

/* Gangway-On-Behalf-Of: <subject> (and Gangway-On-Behalf-Of-Teams: a,b):
 * a trusted service (the Port bridge) calls as the person it serves. Only
 * an API token with the role act_on_behalf may; the principal becomes that
 * person with those teams and no role of the token's (the person's own
 * permissions are what the policy checks), and `via` keeps the token's
 * subject for the audit trail. Returns false after answering. */
static bool on_behalf(struct gw_api_ctx *ctx, bool jwt)
{
    const char *who = gw_http_req_header(ctx->req, "gangway-on-behalf-of");
    const char *teams = gw_http_req_header(ctx->req, "gangway-on-behalf-of-teams");
    struct gw_principal *p = &ctx->principal;
    if (who == NULL && teams == NULL)
        return true;
    if (jwt || !p->act_on_behalf) {
        gw_api_problem(ctx, 403, "on_behalf_not_allowed", NULL,
                       "Gangway-On-Behalf-Of needs an API token with the role act_on_behalf; "
                       "%s has none",
                       p->subject);
        return false;
    }
    /* The one canonical form (gw/subject.h): "Mia" and "user:default/mia"
     * are the same person here as everywhere else. */
    char canon[GW_SUBJECT_MAX];
    struct gw_error serr;
    if (gw_subject_canonical(who, NULL, 0, canon, &serr) < 0) {
        gw_api_problem(
            ctx, 400, "invalid_parameter",
            gw_api_field_error("/headers/gangway-on-behalf-of", "pattern",
                               "a subject: kind:namespace/name (docs/policy.md#subjects)"),
            "Gangway-On-Behalf-Of is not a subject: %s", serr.message);
        return false;
    }
    json_t *tj = json_array();
    for (const char *t = teams; t != NULL && *t != '\0';) {
        size_t len = strcspn(t, ",");
        const char *s = t, *e = t + len;
        t = *e == ',' ? e + 1 : e;
        while (s < e && *s == ' ')
            s++;
        while (e > s && e[-1] == ' ')
            e--;
        char raw[GW_TEAM_MAX], team[GW_TEAM_MAX];
        if (e == s)
            continue;
        if ((size_t)(e - s) >= sizeof(raw) || (snprintf(raw, sizeof(raw), "%.*s", (int)(e - s), s),
                                               gw_team_canonical(raw, team, &serr) < 0)) {
            json_decref(tj);
            gw_api_problem(ctx, 400, "invalid_parameter",
                           gw_api_field_error("/headers/gangway-on-behalf-of-teams", "pattern",
                                              "team names separated by commas"),
                           "Gangway-On-Behalf-Of-Teams holds a team that is not valid");
            return false;
        }
        bool dup = false;
        size_t k;
        json_t *seen;
        json_array_foreach(tj, k, seen) dup = dup || strcmp(json_string_value(seen), team) == 0;
        if (!dup)
            json_array_append_new(tj, json_string(team));
    }
    char *tjson = json_dumps(tj, JSON_COMPACT), *tpg = gw_api_pg_array(tj);
    json_decref(tj);
    if (tjson == NULL || tpg == NULL) {
        free(tjson);
        free(tpg);
        return gw_api_oom(ctx);
    }
    snprintf(p->via, sizeof(p->via), "%s", p->subject);
    snprintf(p->subject, sizeof(p->subject), "%s", canon);
    free(p->teams_json);
    free(p->teams_pg);
    p->teams_json = tjson;
    p->teams_pg = tpg;
    p->admin = p->worker = p->act_on_behalf = false;
    gw_log_info("%s acts on behalf of %s", p->via, p->subject);
    return true;
}

struct jwt_wait {
    struct gw_api_ctx *ctx;
    void (*next)(struct gw_api_ctx *ctx);
};

/* The identity of a verified JWT becomes the principal; roles (admin,
 * worker) never come from a token: the policy file grants them. The
 * failure messages of gw/jwt.h are public by design ("token expired"). */
static void jwt_done(void *arg, const struct gw_jwt_identity *id, const struct gw_error *err)
{
    struct jwt_wait *w = arg;
    struct gw_api_ctx *ctx = w->ctx;
    void (*next)(struct gw_api_ctx *) = w->next;

    free(w);
    if (err != NULL) {
        if (err->code == GW_ECLOSED)
            gw_api_problem(ctx, 503, "unavailable", NULL, "shutting down");
        else
            unauthorized(ctx, err->message);
        return;
    }
    /* lib/jwt made it canonical already (gw_subject_canonical); nothing
     * else may shape it, and it must fit as it is. */
    if (snprintf(ctx->principal.subject, sizeof(ctx->principal.subject), "%s", id->subject) >=
        (int)sizeof(ctx->principal.subject)) {
        unauthorized(ctx, "subject not usable: too long");
        return;
    }
    ctx->principal.teams_json = json_dumps(id->teams, JSON_COMPACT);
    ctx->principal.teams_pg = gw_api_pg_array(id->teams);
    if (ctx->principal.teams_json == NULL || ctx->principal.teams_pg == NULL) {
        gw_api_oom(ctx);
        return;
    }
    if (id->delegate[0] != '\0') {
        gw_log_debug("%s acts for %s", id->delegate, id->subject);
        snprintf(ctx->principal.via, sizeof(ctx->principal.via), "%s", id->delegate);
    }
    ctx->auth_method = GW_AUTH_JWT;
    ctx->auth_expires = id->expires_at;
    snprintf(ctx->auth_issuer, sizeof(ctx->auth_issuer), "%s", id->issuer);
    if (on_behalf(ctx, true))
        next(ctx);
}

static void jwt_check(struct gw_api_ctx *ctx, void (*next)(struct gw_api_ctx *ctx),
                      const char *token, size_t len)
{
    if (ctx->b->jwt == NULL) {
        unauthorized(ctx, "JWT bearer tokens are not accepted: no auth configuration");
        return;
    }
    struct jwt_wait *w = malloc(sizeof(*w));
    if (w == NULL) {
        gw_api_oom(ctx);
        return;
    }
    w->ctx = ctx;
    w->next = next;
    gw_jwt_auth_verify(ctx->b->jwt, token, len, jwt_done, w);
}

void gw_auth_check(struct gw_api_ctx *ctx, void (*next)(struct gw_api_ctx *ctx))
{
    const char *h = gw_http_req_header(ctx->req, "authorization");
    char cookie[128];

    if (h == NULL) {
        /* The console: no bearer token, a session cookie (session.c). */
        if (gw_session_cookie(ctx->req, cookie, sizeof(cookie))) {
            gw_session_check(ctx, cookie, next);
            return;
        }
        unauthorized(ctx, "missing Authorization: Bearer <token> header");
        return;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0' || strlen(h + 7) > 8192) {
        unauthorized(ctx, "the Authorization header must be 'Bearer <token>'");
        return;
    }
    gw_auth_token(ctx, h + 7, next);
}

void gw_auth_token(struct gw_api_ctx *ctx, const char *token, void (*next)(struct gw_api_ctx *ctx))
{
    char hash[GW_SHA256_HEX_LEN + 1];

    if (gw_jwt_is_jws_shaped(token, strlen(token))) {
        jwt_check(ctx, next, token, strlen(token));
        return;
    }
    gw_sha256_hex(token, strlen(token), hash);
    gw_auth_token_hash(ctx, hash, next);
}

void gw_auth_token_hash(struct gw_api_ctx *ctx, const char *hash,
                        void (*next)(struct gw_api_ctx *ctx))
{
    struct gw_auth *a = ctx->b->auth;
    struct cache_entry *e = cache_get(a, hash);
    if (e != NULL) {
        if (!e->valid) {
            unauthorized(ctx, "the bearer token is unknown, expired or revoked");
            return;
        }
        principal_copy(&ctx->principal, &e->p);
        ctx->auth_method = GW_AUTH_API_TOKEN;
        snprintf(ctx->token_hash, sizeof(ctx->token_hash), "%s", hash);
        if (on_behalf(ctx, false))
            next(ctx);
        return;
    }

    struct lookup *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        gw_api_oom(ctx);
        return;
    }
    l->ctx = ctx;
    l->next = next;
    l->auth = a;
    snprintf(l->hash, sizeof(l->hash), "%s", hash);
    const char *params[] = {l->hash};
    if (gw_pg_query(ctx->b->pg, "auth_token",
                    "SELECT subject, to_json(teams)::text, to_json(roles)::text,"
                    " extract(epoch FROM expires_at - now())"
                    " FROM gw_api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
                    " AND (expires_at IS NULL OR expires_at > now())",
                    1, params, lookup_done, l) < 0) {
        free(l);
        gw_api_problem(ctx, 503, "unavailable", NULL, "the database queue is full");
    }
}
