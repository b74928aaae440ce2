/*
 * OpenID Connect client settings of an issuer entry, discovery and the
 * token exchange (gw/jwt.h "OIDC sign-in", docs/decisions/0055).
 *
 * What the broker keeps per provider: its client id, the secret read from
 * the environment at load, the redirect URI and scopes, and the two
 * endpoints (configured, or learnt from the discovery document, whose
 * "issuer" must equal the configured one: OIDC Discovery 1.0 section 4.3).
 * Discovery runs on the loop through the library's HTTP client and is
 * retried every RETRY_MS while it fails, so a provider that is down at
 * start-up does not stop the broker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/log.h"
#include "issuer_int.h"

#define RETRY_MS    30000
#define TIMEOUT_MS  10000L
#define MAX_BODY    (1 << 20)
#define MAX_WAITING 256

struct ready_waiter {
    struct ready_waiter *next;
    gw_jwt_oidc_ready_cb cb;
    void *arg;
};

struct gw__jwt_oidc {
    struct gw_jwt_auth *auth;
    int index;
    char *client_id, *client_secret, *redirect_uri, *scopes, *display_name;
    char *authorization_endpoint, *token_endpoint;
    char *discovery_url;
    bool secret_post;
    bool discovering;
    uint64_t next_try_ms;
    struct ready_waiter *waiters;
    size_t nwaiters;
};

bool gw__jwt_oidc_wanted(const json_t *o)
{
    return json_object_get(o, "client_id") != NULL;
}

void gw__jwt_oidc_free(struct gw__jwt_oidc *c)
{
    if (c == NULL)
        return;
    free(c->client_id);
    free(c->client_secret);
    free(c->redirect_uri);
    free(c->scopes);
    free(c->display_name);
    free(c->authorization_endpoint);
    free(c->token_endpoint);
    free(c->discovery_url);
    free(c);
}

static int str(const json_t *o, const char *key, const char *where, char **out,
               struct gw_error *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return gw_error_set(err, GW_EPARSE, false, "%s: \"%s\" must be a non-empty string", where,
                            key);
    *out = strdup(json_string_value(v));
    return *out != NULL ? 0 : gw_error_set(err, GW_ENOMEM, false, "out of memory");
}

static bool http_url(const char *u)
{
    return u != NULL && (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0);
}

int gw__jwt_oidc_parse(struct gw__jwt_issuer *is, const json_t *o, const char *where,
                       struct gw_error *err)
{
    static const char *const needs_client[] = {
        "client_secret_env",   "redirect_uri",           "scopes",        "display_name",
        "token_endpoint_auth", "authorization_endpoint", "token_endpoint"};
    if (!gw__jwt_oidc_wanted(o)) {
        for (size_t i = 0; i < ARRAY_SIZE(needs_client); i++)
            if (json_object_get(o, needs_client[i]) != NULL)
                return gw_error_set(err, GW_EPARSE, false,
                                    "%s: \"%s\" is an OIDC client setting: it needs \"client_id\"",
                                    where, needs_client[i]);
        return 0;
    }
    struct gw__jwt_oidc *c = calloc(1, sizeof(*c));
    char *secret_env = NULL, *auth_method = NULL;
    int rc;
    if (c == NULL)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    is->oidc = c;
    c->auth = is->src.auth;
    c->index = (int)(is - is->src.auth->issuers);
    if ((rc = str(o, "client_id", where, &c->client_id, err)) < 0 ||
        (rc = str(o, "client_secret_env", where, &secret_env, err)) < 0 ||
        (rc = str(o, "redirect_uri", where, &c->redirect_uri, err)) < 0 ||
        (rc = str(o, "display_name", where, &c->display_name, err)) < 0 ||
        (rc = str(o, "token_endpoint_auth", where, &auth_method, err)) < 0 ||
        (rc = str(o, "authorization_endpoint", where, &c->authorization_endpoint, err)) < 0 ||
        (rc = str(o, "token_endpoint", where, &c->token_endpoint, err)) < 0)
        goto out;
    if (c->client_id == NULL) {
        rc = gw_error_set(err, GW_EPARSE, false, "%s: \"client_id\" must be a non-empty string",
                          where);
        goto out;
    }
    if (is->iss == NULL || !http_url(is->iss)) {
        rc = gw_error_set(err, GW_EPARSE, false,
                          "%s: an OIDC client entry needs \"issuer\", the provider's URL", where);
        goto out;
    }
    if (secret_env == NULL) {
        rc = gw_error_set(err, GW_EPARSE, false,
                          "%s: \"client_secret_env\" must name the environment variable holding "
                          "the client secret (the broker is a confidential client; the secret "
                          "never goes into this file)",
                          where);
        goto out;
    }
    const char *secret = getenv(secret_env);
    if (secret == NULL || secret[0] == '\0') {
        rc = gw_error_set(err, GW_EPARSE, false,
                          "%s: the environment variable %s (\"client_secret_env\") is not set",
                          where, secret_env);
        goto out;
    }
    if ((c->client_secret = strdup(secret)) == NULL) {
        rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto out;
    }
    if (auth_method != NULL && strcmp(auth_method, "client_secret_post") != 0 &&
        strcmp(auth_method, "client_secret_basic") != 0) {
        rc = gw_error_set(err, GW_EPARSE, false,
                          "%s: \"token_endpoint_auth\" must be client_secret_basic or "
                          "client_secret_post",
                          where);
        goto out;
    }
    c->secret_post = auth_method != NULL && strcmp(auth_method, "client_secret_post") == 0;
    if ((c->redirect_uri != NULL && !http_url(c->redirect_uri)) ||
        (c->authorization_endpoint != NULL && !http_url(c->authorization_endpoint)) ||
        (c->token_endpoint != NULL && !http_url(c->token_endpoint))) {
        rc = gw_error_set(err, GW_EPARSE, false,
                          "%s: \"redirect_uri\", \"authorization_endpoint\" and "
                          "\"token_endpoint\" must be http(s) URLs",
                          where);
        goto out;
    }
    /* Scopes: a string or an array of strings; "openid" always first. */
    json_t *sv = json_object_get(o, "scopes");
    char buf[1024] = "openid";
    if (sv != NULL && !json_is_null(sv)) {
        json_t *list = json_is_string(sv) ? NULL : sv;
        if (list != NULL && !json_is_array(list)) {
            rc = gw_error_set(err, GW_EPARSE, false,
                              "%s: \"scopes\" must be a string or an array of strings", where);
            goto out;
        }
        for (size_t i = 0; i < (list != NULL ? json_array_size(list) : 1); i++) {
            const char *s = json_string_value(list != NULL ? json_array_get(list, i) : sv);
            if (s == NULL || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789:._-/ ") != strlen(s)) {
                rc = gw_error_set(err, GW_EPARSE, false,
                                  "%s: \"scopes\" must be scope names (letters, digits, ':', '.', "
                                  "'_', '-', '/')",
                                  where);
                goto out;
            }
            /* Split a space-separated string too; skip a repeated openid. */
            char copy[512];
            snprintf(copy, sizeof(copy), "%s", s);
            for (char *save, *tok = strtok_r(copy, " ", &save); tok != NULL;
                 tok = strtok_r(NULL, " ", &save)) {
                if (strcmp(tok, "openid") == 0)
                    continue;
                size_t n = strlen(buf);
                snprintf(buf + n, sizeof(buf) - n, " %s", tok);
            }
        }
    }
    if ((c->scopes = strdup(buf)) == NULL) {
        rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto out;
    }
    /* ID tokens are addressed to us. */
    if (is->audience == NULL && (is->audience = strdup(c->client_id)) == NULL) {
        rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto out;
    }
    size_t ilen = strlen(is->iss);
    if ((c->discovery_url = malloc(ilen + 40)) == NULL) {
        rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto out;
    }
    snprintf(c->discovery_url, ilen + 40, "%.*s/.well-known/openid-configuration",
             (int)(ilen > 0 && is->iss[ilen - 1] == '/' ? ilen - 1 : ilen), is->iss);
    rc = 0;
out:
    free(secret_env);
    free(auth_method);
    return rc;
}

/* ---- lookup ---- */

static bool discovered(const struct gw__jwt_issuer *is);

static void fill(const struct gw__jwt_issuer *is, int idx, struct gw_oidc_provider *out)
{
    const struct gw__jwt_oidc *c = is->oidc;
    out->index = idx;
    out->name = is->name;
    out->display_name = c->display_name != NULL ? c->display_name : is->name;
    out->client_id = c->client_id;
    out->redirect_uri = c->redirect_uri;
    out->scopes = c->scopes;
    out->authorization_endpoint = discovered(is) ? c->authorization_endpoint : NULL;
}

size_t gw_jwt_oidc_count(const struct gw_jwt_auth *a)
{
    size_t n = 0;
    for (size_t i = 0; a != NULL && i < a->n; i++)
        n += a->issuers[i].oidc != NULL;
    return n;
}

bool gw_jwt_oidc_get(const struct gw_jwt_auth *a, size_t k, struct gw_oidc_provider *out)
{
    for (size_t i = 0; a != NULL && i < a->n; i++)
        if (a->issuers[i].oidc != NULL && k-- == 0) {
            fill(&a->issuers[i], (int)i, out);
            return true;
        }
    return false;
}

bool gw_jwt_oidc_find(const struct gw_jwt_auth *a, const char *name, struct gw_oidc_provider *out)
{
    for (size_t i = 0; a != NULL && name != NULL && i < a->n; i++)
        if (a->issuers[i].oidc != NULL && strcmp(a->issuers[i].name, name) == 0) {
            fill(&a->issuers[i], (int)i, out);
            return true;
        }
    return false;
}

/* ---- discovery ---- */

static bool discovered(const struct gw__jwt_issuer *is)
{
    const struct gw__jwt_oidc *c = is->oidc;
    return c->authorization_endpoint != NULL && c->token_endpoint != NULL &&
           (is->src.url != NULL || is->src.file != NULL);
}

static void wake(struct gw__jwt_oidc *c, const struct gw_error *err)
{
    struct ready_waiter *w = c->waiters;
    c->waiters = NULL;
    c->nwaiters = 0;
    while (w != NULL) {
        struct ready_waiter *next = w->next;
        w->cb(w->arg, err);
        free(w);
        w = next;
    }
}

static int take_url(json_t *doc, const char *key, char **slot, struct gw_error *err)
{
    if (*slot != NULL)
        return 0; /* configured: the configuration wins */
    const char *u = json_string_value(json_object_get(doc, key));
    if (!http_url(u))
        return gw_error_set(err, GW_EPARSE, false, "the discovery document has no http(s) \"%s\"",
                            key);
    *slot = strdup(u);
    return *slot != NULL ? 0 : gw_error_set(err, GW_ENOMEM, false, "out of memory");
}

static void discovery_done(void *arg, const struct gw_http_response *resp,
                           const struct gw_error *http_err)
{
    struct gw__jwt_oidc *c = arg;
    struct gw_jwt_auth *a = c->auth;
    struct gw__jwt_issuer *is = &a->issuers[c->index];
    struct gw_error err;
    json_t *doc = NULL;

    c->discovering = false;
    a->fetches--;
    if (a->closing) {
        gw__jwt_auth_maybe_free(a);
        return;
    }
    gw_error_clear(&err);
    if (http_err != NULL)
        gw_error_set(&err, GW_EUNAVAIL, true, "%s", http_err->message);
    else if (resp->status != 200)
        gw_error_set(&err, GW_EUNAVAIL, true, "HTTP status %ld", resp->status);
    else if ((doc = json_loadb(resp->body, resp->body_len, 0, NULL)) == NULL ||
             !json_is_object(doc))
        gw_error_set(&err, GW_EPARSE, false, "the discovery document is not a JSON object");
    else if (json_string_value(json_object_get(doc, "issuer")) == NULL ||
             strcmp(json_string_value(json_object_get(doc, "issuer")), is->iss) != 0)
        gw_error_set(&err, GW_EPARSE, false,
                     "the discovery document's \"issuer\" is not the configured \"%s\"", is->iss);
    else if (take_url(doc, "authorization_endpoint", &c->authorization_endpoint, &err) == 0 &&
             take_url(doc, "token_endpoint", &c->token_endpoint, &err) == 0 &&
             is->src.file == NULL && is->src.url == NULL)
        take_url(doc, "jwks_uri", &is->src.url, &err);
    json_decref(doc);
    if (err.code != 0) {
        c->next_try_ms = uv_now(a->loop) + RETRY_MS;
        gw_log_warn("oidc %s: discovery at %s failed (%s); retrying in %d s", is->name,
                    c->discovery_url, err.message, RETRY_MS / 1000);
        gw_error_set(&err, GW_EUNAVAIL, true, "the identity provider %s cannot be reached (%s)",
                     is->name, err.message);
        wake(c, &err);
    } else {
        gw_log_info("oidc %s: discovered (authorization %s)", is->name, c->authorization_endpoint);
        if (is->src.url != NULL && is->src.keys == NULL && !is->src.fetching)
            gw__jwt_source_fetch(&is->src);
        wake(c, NULL);
    }
    gw__jwt_auth_maybe_free(a);
}

static void discover(struct gw__jwt_oidc *c)
{
    struct gw_jwt_auth *a = c->auth;
    struct gw_error err;
    struct gw_http_request_options o = {
        .url = c->discovery_url,
        .headers = (const char *const[]){"Accept: application/json", NULL},
        .user_agent = "gangway-broker",
        .connect_timeout_ms = TIMEOUT_MS / 2,
        .timeout_ms = TIMEOUT_MS,
        .max_body = MAX_BODY,
    };
    if (c->discovering || a->closing)
        return;
    c->next_try_ms = uv_now(a->loop) + RETRY_MS;
    if (!gw__jwt_http(a, &err) ||
        gw_http_client_request(a->http, &o, discovery_done, c, &err) == NULL) {
        gw_log_warn("oidc %s: cannot start discovery: %s", a->issuers[c->index].name, err.message);
        gw_error_set(&err, GW_EUNAVAIL, true, "the identity provider cannot be reached");
        wake(c, &err);
        return;
    }
    c->discovering = true;
    a->fetches++;
}

void gw__jwt_oidc_tick(struct gw_jwt_auth *a)
{
    uint64_t now = uv_now(a->loop);
    for (size_t i = 0; i < a->n; i++) {
        struct gw__jwt_issuer *is = &a->issuers[i];
        if (is->oidc != NULL && !discovered(is) && !is->oidc->discovering &&
            now >= is->oidc->next_try_ms)
            discover(is->oidc);
    }
}

void gw__jwt_oidc_close(struct gw_jwt_auth *a)
{
    struct gw_error err;
    gw_error_set(&err, GW_ECLOSED, true, "shutting down");
    for (size_t i = 0; i < a->n; i++)
        if (a->issuers[i].oidc != NULL)
            wake(a->issuers[i].oidc, &err);
}

void gw_jwt_oidc_ready(struct gw_jwt_auth *a, int idx, gw_jwt_oidc_ready_cb cb, void *arg)
{
    struct gw_error err;
    if (a == NULL || idx < 0 || (size_t)idx >= a->n || a->issuers[idx].oidc == NULL) {
        gw_error_set(&err, GW_EINVAL, false, "not an OIDC provider");
        cb(arg, &err);
        return;
    }
    struct gw__jwt_issuer *is = &a->issuers[idx];
    if (a->closing) {
        gw_error_set(&err, GW_ECLOSED, true, "shutting down");
        cb(arg, &err);
        return;
    }
    if (discovered(is)) {
        cb(arg, NULL);
        return;
    }
    struct ready_waiter *w = is->oidc->nwaiters < MAX_WAITING ? malloc(sizeof(*w)) : NULL;
    if (w == NULL) {
        gw_error_set(&err, GW_EUNAVAIL, true, "too many sign-ins waiting for the provider");
        cb(arg, &err);
        return;
    }
    w->cb = cb;
    w->arg = arg;
    w->next = is->oidc->waiters;
    is->oidc->waiters = w;
    is->oidc->nwaiters++;
    if (!is->oidc->discovering)
        discover(is->oidc); /* may answer every waiter at once */
}

/* ---- token exchange ---- */

struct exchange {
    gw_jwt_oidc_token_cb cb;
    void *arg;
    struct gw_jwt_auth *a;
};

/* application/x-www-form-urlencoded value, appended. */
static void form_add(char **buf, size_t *len, size_t *cap, const char *key, const char *val)
{
    size_t need = *len + strlen(key) + 3 * strlen(val) + 3;
    if (*buf == NULL)
        return;
    if (need > *cap) {
        char *nb = realloc(*buf, need * 2);
        if (nb == NULL) {
            free(*buf);
            *buf = NULL;
            return;
        }
        *buf = nb;
        *cap = need * 2;
    }
    char *p = *buf + *len;
    if (*len > 0)
        *p++ = '&';
    p += snprintf(p, *cap - (size_t)(p - *buf), "%s=", key);
    for (const unsigned char *s = (const unsigned char *)val; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '.' || *s == '_' || *s == '~')
            *p++ = (char)*s;
        else
            p += snprintf(p, 4, "%%%02X", *s);
    }
    *p = '\0';
    *len = (size_t)(p - *buf);
}

static void exchange_done(void *arg, const struct gw_http_response *resp,
                          const struct gw_error *http_err)
{
    struct exchange *x = arg;
    struct gw_jwt_auth *a = x->a;
    struct gw_error err;
    json_t *doc = NULL;
    const char *id_token = NULL;

    a->fetches--;
    gw_error_clear(&err);
    if (http_err != NULL)
        gw_error_set(&err, http_err->code == GW_ECLOSED ? GW_ECLOSED : GW_EUNAVAIL, true,
                     "the token endpoint cannot be reached: %s", http_err->message);
    else if ((doc = json_loadb(resp->body, resp->body_len, 0, NULL)) == NULL ||
             !json_is_object(doc))
        gw_error_set(&err, GW_EUNAVAIL, true, "the token endpoint answered %ld without JSON",
                     resp->status);
    else if (resp->status != 200) {
        const char *e = json_string_value(json_object_get(doc, "error"));
        const char *d = json_string_value(json_object_get(doc, "error_description"));
        gw_error_set(&err, GW_EAUTH, false, "the identity provider refused the code: %.64s%s%.200s",
                     e != NULL ? e : "error", d != NULL ? ": " : "", d != NULL ? d : "");
    } else if ((id_token = json_string_value(json_object_get(doc, "id_token"))) == NULL)
        gw_error_set(&err, GW_EAUTH, false, "the token endpoint returned no id_token");
    x->cb(x->arg, err.code == 0 ? id_token : NULL, err.code == 0 ? NULL : &err);
    json_decref(doc);
    free(x);
    gw__jwt_auth_maybe_free(a);
}

void gw_jwt_oidc_exchange(struct gw_jwt_auth *a, int idx, const char *code, const char *verifier,
                          const char *redirect_uri, gw_jwt_oidc_token_cb cb, void *arg)
{
    struct gw_error err;
    struct gw__jwt_issuer *is =
        a != NULL && idx >= 0 && (size_t)idx < a->n ? &a->issuers[idx] : NULL;
    if (is == NULL || is->oidc == NULL || is->oidc->token_endpoint == NULL || a->closing) {
        gw_error_set(&err, a != NULL && a->closing ? GW_ECLOSED : GW_EINVAL, false,
                     "the provider's token endpoint is not known");
        cb(arg, NULL, &err);
        return;
    }
    struct gw__jwt_oidc *c = is->oidc;
    size_t len = 0, cap = 512;
    char *body = malloc(cap);
    if (body != NULL)
        body[0] = '\0';
    form_add(&body, &len, &cap, "grant_type", "authorization_code");
    form_add(&body, &len, &cap, "code", code);
    form_add(&body, &len, &cap, "redirect_uri", redirect_uri);
    form_add(&body, &len, &cap, "code_verifier", verifier);
    form_add(&body, &len, &cap, "client_id", c->client_id);
    if (c->secret_post)
        form_add(&body, &len, &cap, "client_secret", c->client_secret);
    struct exchange *x = body != NULL ? malloc(sizeof(*x)) : NULL;
    if (x == NULL || !gw__jwt_http(a, &err)) {
        free(body);
        free(x);
        gw_error_set(&err, GW_ENOMEM, false, "out of memory");
        cb(arg, NULL, &err);
        return;
    }
    x->cb = cb;
    x->arg = arg;
    x->a = a;
    struct gw_http_request_options o = {
        .method = "POST",
        .url = c->token_endpoint,
        .headers = (const char *const[]){"Content-Type: application/x-www-form-urlencoded",
                                         "Accept: application/json", NULL},
        .body = body,
        .body_len = len,
        .user = c->secret_post ? NULL : c->client_id,
        .password = c->secret_post ? NULL : c->client_secret,
        .user_agent = "gangway-broker",
        .connect_timeout_ms = TIMEOUT_MS / 2,
        .timeout_ms = TIMEOUT_MS,
        .max_body = MAX_BODY,
    };
    struct gw_http_request *r = gw_http_client_request(a->http, &o, exchange_done, x, &err);
    free(body);
    if (r == NULL) {
        free(x);
        cb(arg, NULL, &err);
        return;
    }
    a->fetches++;
}
