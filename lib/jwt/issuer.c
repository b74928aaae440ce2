/*
 * Issuers: which tokens the broker accepts and how their claims become a
 * subject and teams. One entry per token kind (Backstage user tokens, plugin
 * tokens, the limited user tokens those carry in "obo", any OIDC provider).
 * An entry is chosen by the token's "typ" and "iss"; its own key set, its own
 * algorithms and its own claim expectations then decide, so a token of one
 * kind can never be verified under the rules of another.
 */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gw/doc.h"
#include "gw/log.h"
#include "gw/subject.h"
#include "issuer_int.h"

#define MAX_ISSUERS         32
#define MAX_TEAMS           64
#define MAX_TEAM_LEN        128
#define MAX_WAITERS         1024
#define DEFAULT_LEEWAY      30
#define DEFAULT_REFRESH     300
#define DEFAULT_MIN_REFRESH 30

static void issuer_clear(struct gw__jwt_issuer *is)
{
    free(is->name);
    free(is->iss);
    free(is->audience);
    for (size_t i = 0; i < is->ntyps; i++)
        free(is->typs[i]);
    free(is->typs);
    free(is->src.file);
    free(is->src.url);
    gw_jwks_destroy(is->src.keys);
    free(is->subject_claim);
    free(is->subject_prefix);
    free(is->subject_kind);
    free(is->subject_namespace);
    free(is->teams_claim);
    free(is->teams_entity_kind);
    json_decref(is->teams_from);
    json_decref(is->allowed_subjects);
    free(is->delegate_prefix);
    gw__jwt_oidc_free(is->oidc);
}

void gw_jwt_identity_finish(struct gw_jwt_identity *id)
{
    if (id == NULL)
        return;
    json_decref(id->teams);
    id->teams = NULL;
}

/* ---- configuration ---- */

static int opt_string(const json_t *o, const char *key, const char *where, char **out,
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

static int opt_int(const json_t *o, const char *key, const char *where, int def, int min, int max,
                   int *out, struct gw_error *err)
{
    json_t *v = json_object_get(o, key);
    *out = def;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return gw_error_set(err, GW_EPARSE, false, "%s: \"%s\" must be an integer from %d to %d",
                            where, key, min, max);
    *out = (int)json_integer_value(v);
    return 0;
}

static int string_array(const json_t *v, const char *where, const char *key, struct gw_error *err)
{
    size_t i;
    json_t *s;
    if (!json_is_array(v))
        return gw_error_set(err, GW_EPARSE, false, "%s: \"%s\" must be an array of strings", where,
                            key);
    json_array_foreach(v, i, s) if (!json_is_string(s)) return gw_error_set(
        err, GW_EPARSE, false, "%s: \"%s\" must be an array of strings", where, key);
    return 0;
}

static const char *const known_keys[] = {
    "name",
    "issuer",
    "audience",
    "jwks_file",
    "jwks_url",
    "algorithms",
    "subject_claim",
    "teams_claim",
    "teams_from",
    "subject_prefix_strip",
    "subject_kind",
    "subject_namespace",
    "typ",
    "teams_entity_kind",
    "obo_issuer",
    "obo_required",
    "direct",
    "allowed_subjects",
    "require_iat",
    "delegate_prefix",
    "jwks_refresh_s",
    "jwks_min_refresh_s",
    /* OIDC sign-in to the console (oidc.c) */
    "client_id",
    "client_secret_env",
    "redirect_uri",
    "scopes",
    "display_name",
    "token_endpoint_auth",
    "authorization_endpoint",
    "token_endpoint",
    "comment",
};

static int parse_issuer(struct gw_jwt_auth *a, const json_t *o, size_t idx, const char *base_dir,
                        struct gw__jwt_issuer *is, struct gw_error *err)
{
    char where[96];
    const char *key;
    json_t *v;
    int rc;

    snprintf(where, sizeof(where), "issuers[%zu]", idx);
    if (!json_is_object(o))
        return gw_error_set(err, GW_EPARSE, false, "%s is not an object", where);
    json_object_foreach((json_t *)o, key, v)
    {
        size_t i;
        for (i = 0; i < ARRAY_SIZE(known_keys); i++)
            if (strcmp(known_keys[i], key) == 0)
                break;
        if (i == ARRAY_SIZE(known_keys))
            return gw_error_set(err, GW_EPARSE, false, "%s: unknown member \"%s\"", where, key);
    }
    is->obo = -1;
    is->src.auth = a;
    if ((rc = opt_string(o, "name", where, &is->name, err)) < 0 ||
        (rc = opt_string(o, "issuer", where, &is->iss, err)) < 0 ||
        (rc = opt_string(o, "audience", where, &is->audience, err)) < 0 ||
        (rc = opt_string(o, "jwks_file", where, &is->src.file, err)) < 0 ||
        (rc = opt_string(o, "jwks_url", where, &is->src.url, err)) < 0 ||
        (rc = opt_string(o, "subject_claim", where, &is->subject_claim, err)) < 0 ||
        (rc = opt_string(o, "subject_prefix_strip", where, &is->subject_prefix, err)) < 0 ||
        (rc = opt_string(o, "subject_kind", where, &is->subject_kind, err)) < 0 ||
        (rc = opt_string(o, "subject_namespace", where, &is->subject_namespace, err)) < 0 ||
        (rc = opt_string(o, "teams_claim", where, &is->teams_claim, err)) < 0 ||
        (rc = opt_string(o, "teams_entity_kind", where, &is->teams_entity_kind, err)) < 0 ||
        (rc = opt_string(o, "delegate_prefix", where, &is->delegate_prefix, err)) < 0)
        return rc;
    if (is->name == NULL)
        return gw_error_set(err, GW_EPARSE, false, "%s: \"name\" is required", where);
    snprintf(where, sizeof(where), "issuer \"%.64s\"", is->name);
    if (strlen(is->name) >= sizeof(((struct gw_jwt_identity *)0)->issuer))
        return gw_error_set(err, GW_EPARSE, false, "%s: name too long", where);
    /* An OIDC client entry may leave its keys to discovery (jwks_uri). */
    if ((is->src.file == NULL) == (is->src.url == NULL) &&
        !(is->src.file == NULL && gw__jwt_oidc_wanted(o)))
        return gw_error_set(err, GW_EPARSE, false,
                            "%s: exactly one of \"jwks_file\" and "
                            "\"jwks_url\" is required",
                            where);
    if (is->src.url != NULL && strncmp(is->src.url, "https://", 8) != 0 &&
        strncmp(is->src.url, "http://", 7) != 0)
        return gw_error_set(err, GW_EPARSE, false, "%s: \"jwks_url\" must be http(s)", where);
    if (is->subject_claim == NULL && (is->subject_claim = strdup("sub")) == NULL)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    if (is->delegate_prefix == NULL && (is->delegate_prefix = strdup("plugin:")) == NULL)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    /* A bare subject takes these; they must be valid parts themselves. */
    {
        struct gw_subject_defaults d = {.kind = is->subject_kind, .ns = is->subject_namespace};
        char probe[GW_SUBJECT_MAX];
        struct gw_error perr;
        if (gw_subject_canonical("x", &d, 0, probe, &perr) < 0)
            return gw_error_set(err, GW_EPARSE, false,
                                "%s: \"subject_kind\"/\"subject_namespace\": %s (see "
                                "docs/policy.md#subjects)",
                                where, perr.message);
    }
    if (is->subject_prefix != NULL)
        gw_log_warn("%s: \"subject_prefix_strip\" is deprecated: subjects are always canonical "
                    "(kind:namespace/name, docs/policy.md#subjects), so a stripped "
                    "\"user:default/mia\" is \"user:default/mia\" again; use "
                    "\"subject_namespace\"/\"subject_kind\" for bare names",
                    where);

    v = json_object_get(o, "algorithms");
    if (v == NULL || (rc = string_array(v, where, "algorithms", err)) < 0 ||
        json_array_size(v) == 0)
        return v == NULL || json_array_size(v) == 0
                   ? gw_error_set(err, GW_EPARSE, false,
                                  "%s: \"algorithms\" must list at least "
                                  "one algorithm",
                                  where)
                   : rc;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *name = json_string_value(json_array_get(v, i));
        unsigned bit = gw_jwa_from_name(name);
        if (bit == 0)
            return gw_error_set(err, GW_EPARSE, false, "%s: unknown algorithm \"%.32s\"", where,
                                name);
        if (bit & GW_JWA_HMAC)
            return gw_error_set(err, GW_EPARSE, false,
                                "%s: %s is not accepted: the broker only "
                                "verifies signatures made with private keys",
                                where, name);
        is->algs |= bit;
    }

    v = json_object_get(o, "typ");
    if (json_is_string(v)) {
        is->typs = calloc(1, sizeof(char *));
        if (is->typs == NULL || (is->typs[0] = strdup(json_string_value(v))) == NULL)
            return gw_error_set(err, GW_ENOMEM, false, "out of memory");
        is->ntyps = 1;
    } else if (v != NULL && !json_is_null(v)) {
        if ((rc = string_array(v, where, "typ", err)) < 0)
            return rc;
        is->typs = calloc(json_array_size(v) + 1, sizeof(char *));
        if (is->typs == NULL)
            return gw_error_set(err, GW_ENOMEM, false, "out of memory");
        for (size_t i = 0; i < json_array_size(v); i++, is->ntyps++)
            if ((is->typs[i] = strdup(json_string_value(json_array_get(v, i)))) == NULL)
                return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    }

    v = json_object_get(o, "teams_from");
    if (v != NULL && !json_is_null(v)) {
        const char *k;
        json_t *t;
        if (!json_is_object(v))
            return gw_error_set(err, GW_EPARSE, false,
                                "%s: \"teams_from\" must map subjects to "
                                "arrays of team names",
                                where);
        json_object_foreach(v, k,
                            t) if ((rc = string_array(t, where, "teams_from", err)) < 0) return rc;
        is->teams_from = json_incref(v);
    }
    v = json_object_get(o, "allowed_subjects");
    if (v != NULL && !json_is_null(v)) {
        if ((rc = string_array(v, where, "allowed_subjects", err)) < 0)
            return rc;
        is->allowed_subjects = json_incref(v);
    }
    v = json_object_get(o, "direct");
    /* An OIDC client's ID tokens sign people in to the console; as bearer
     * tokens only when "direct" says so. */
    is->direct = v == NULL ? !gw__jwt_oidc_wanted(o) : json_is_true(v);
    v = json_object_get(o, "obo_required");
    is->obo_required = v == NULL || json_is_true(v);
    v = json_object_get(o, "require_iat");
    is->require_iat = json_is_true(v);
    if ((rc = opt_int(o, "jwks_refresh_s", where, DEFAULT_REFRESH, 10, 86400, &is->src.refresh_s,
                      err)) < 0 ||
        (rc = opt_int(o, "jwks_min_refresh_s", where, DEFAULT_MIN_REFRESH, 1, 3600,
                      &is->src.min_refresh_s, err)) < 0)
        return rc;

    if ((rc = gw__jwt_oidc_parse(is, o, where, err)) < 0)
        return rc;
    if (is->src.file != NULL) {
        char path[4096];
        if (is->src.file[0] != '/' && base_dir != NULL)
            snprintf(path, sizeof(path), "%s/%s", base_dir, is->src.file);
        else
            snprintf(path, sizeof(path), "%s", is->src.file);
        if ((rc = gw_jwks_load_file(path, 0, &is->src.keys, err)) < 0)
            return rc;
        if (gw_jwks_count(is->src.keys) == 0)
            return gw_error_set(err, GW_EPARSE, false, "%s: %s holds no signature key", where,
                                path);
    }
    return 0;
}

int gw_jwt_auth_create(uv_loop_t *loop, const json_t *config, const char *base_dir,
                       struct gw_jwt_auth **out, struct gw_error *err)
{
    struct gw_jwt_auth *a;
    json_t *list;
    const char *key;
    json_t *v;
    int rc;

    *out = NULL;
    if (!json_is_object(config))
        return gw_error_set(err, GW_EPARSE, false, "the auth configuration is not a JSON object");
    json_object_foreach(
        (json_t *)config, key,
        v) if (strcmp(key, "issuers") != 0 && strcmp(key, "leeway_s") != 0 &&
               strcmp(key, "comment") !=
                   0) return gw_error_set(err, GW_EPARSE, false,
                                          "auth configuration: unknown member \"%s\"", key);
    list = json_object_get(config, "issuers");
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > MAX_ISSUERS)
        return gw_error_set(err, GW_EPARSE, false,
                            "\"issuers\" must be an array of 1 to %d "
                            "entries",
                            MAX_ISSUERS);
    a = calloc(1, sizeof(*a));
    if (a == NULL || (a->issuers = calloc(json_array_size(list), sizeof(*a->issuers))) == NULL) {
        free(a);
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    }
    a->loop = loop;
    if ((rc = opt_int(config, "leeway_s", "auth configuration", DEFAULT_LEEWAY, 0,
                      GW_JWT_MAX_LEEWAY_S, &a->leeway_s, err)) < 0)
        goto fail;
    for (size_t i = 0; i < json_array_size(list); i++) {
        a->n = i + 1;
        if ((rc = parse_issuer(a, json_array_get(list, i), i, base_dir, &a->issuers[i], err)) < 0)
            goto fail;
        for (size_t j = 0; j < i; j++)
            if (strcmp(a->issuers[j].name, a->issuers[i].name) == 0) {
                rc = gw_error_set(err, GW_EPARSE, false, "two issuers are named \"%s\"",
                                  a->issuers[i].name);
                goto fail;
            }
    }
    /* Delegation: "obo_issuer" names the entry that verifies the inner
     * token; one level only, so a chain of delegations cannot form. */
    for (size_t i = 0; i < a->n; i++) {
        const char *target =
            json_string_value(json_object_get(json_array_get(list, i), "obo_issuer"));
        if (target == NULL)
            continue;
        for (size_t j = 0; j < a->n; j++)
            if (j != i && strcmp(a->issuers[j].name, target) == 0)
                a->issuers[i].obo = (int)j;
        if (a->issuers[i].obo < 0) {
            rc = gw_error_set(err, GW_EPARSE, false,
                              "issuer \"%s\": obo_issuer \"%s\" is not "
                              "configured",
                              a->issuers[i].name, target);
            goto fail;
        }
    }
    for (size_t i = 0; i < a->n; i++)
        if (a->issuers[i].obo >= 0 && a->issuers[a->issuers[i].obo].obo >= 0) {
            rc = gw_error_set(err, GW_EPARSE, false,
                              "issuer \"%s\": the obo issuer may not "
                              "delegate again",
                              a->issuers[i].name);
            goto fail;
        }
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    a->timer_open = true;
    *out = a;
    return 0;

fail:
    for (size_t i = 0; i < a->n; i++)
        issuer_clear(&a->issuers[i]);
    free(a->issuers);
    free(a);
    return rc;
}

int gw_jwt_auth_load(uv_loop_t *loop, const char *path, struct gw_jwt_auth **out,
                     struct gw_error *err)
{
    json_t *cfg = gw_doc_load_file(path, 1u << 20, err);
    *out = NULL;
    if (cfg == NULL)
        return err != NULL ? err->code : GW_EPARSE;
    char *copy = strdup(path);
    if (copy == NULL) {
        json_decref(cfg);
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    }
    int rc = gw_jwt_auth_create(loop, cfg, dirname(copy), out, err);
    if (rc < 0 && err != NULL) {
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "%s", err->message);
        gw_error_set(err, rc, false, "%s: %s", path, msg);
    }
    free(copy);
    json_decref(cfg);
    return rc;
}

/* ---- identities ---- */

static bool clean_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Teams are canonical too (gw_team_canonical): "Payments" and
 * "group:default/payments" are the team "payments". */
static int add_team(json_t *teams, const char *raw)
{
    size_t i;
    json_t *v;
    char t[GW_TEAM_MAX];
    if (raw == NULL || !clean_name(raw, MAX_TEAM_LEN) || gw_team_canonical(raw, t, NULL) < 0)
        return 0; /* an unusable value is dropped, not fatal */
    json_array_foreach(teams, i, v) if (strcmp(json_string_value(v), t) == 0) return 0;
    if (json_array_size(teams) >= MAX_TEAMS)
        return 0;
    return json_array_append_new(teams, json_string(t));
}

/* "group:default/payments" -> "payments"; "group:ops/sre" -> "ops/sre";
 * another kind -> NULL. Backstage entity refs are case-insensitive in kind. */
static const char *entity_ref_name(const char *ref, const char *kind, char *buf, size_t cap)
{
    const char *colon = strchr(ref, ':');
    size_t klen = strlen(kind);
    if (colon == NULL || (size_t)(colon - ref) != klen || strncasecmp(ref, kind, klen) != 0)
        return NULL;
    const char *rest = colon + 1;
    if (strncmp(rest, "default/", 8) == 0)
        rest += 8;
    snprintf(buf, cap, "%s", rest);
    return buf;
}

/* The subject claim becomes the canonical subject (gw/subject.h): the
 * deprecated prefix is stripped first, `kind_prefix` (a plugin acting for
 * itself: "plugin:") put in front, then gw_subject_canonical decides. A
 * subject it refuses refuses the token: no identity is ever guessed. */
static int map_identity(const struct gw__jwt_issuer *is, const json_t *claims,
                        const char *kind_prefix, struct gw_jwt_identity *id, struct gw_error *err)
{
    const char *raw = json_string_value(json_object_get(claims, is->subject_claim));
    const char *sub = raw;
    json_t *v;
    char joined[GW_JWT_SUBJECT_MAX + 64];
    struct gw_error serr;
    struct gw_subject_defaults defs = {.kind = is->subject_kind, .ns = is->subject_namespace};

    if (raw == NULL || !clean_name(raw, GW_JWT_SUBJECT_MAX - 1))
        return gw_error_set(err, GW_EAUTH, false, "token has no usable subject");
    if (is->allowed_subjects != NULL) {
        size_t i;
        bool ok = false;
        json_array_foreach(is->allowed_subjects, i, v) if (strcmp(json_string_value(v), raw) == 0)
            ok = true;
        if (!ok)
            return gw_error_set(err, GW_EAUTH, false, "subject not allowed");
    }
    if (is->subject_prefix != NULL &&
        strncmp(sub, is->subject_prefix, strlen(is->subject_prefix)) == 0 &&
        sub[strlen(is->subject_prefix)] != '\0')
        sub += strlen(is->subject_prefix);
    snprintf(joined, sizeof(joined), "%s%s", kind_prefix != NULL ? kind_prefix : "", sub);
    if (gw_subject_canonical(joined, &defs, 0, id->subject, &serr) < 0)
        return gw_error_set(err, GW_EAUTH, false, "subject not usable: %s", serr.message);
    snprintf(id->issuer, sizeof(id->issuer), "%s", is->name);
    id->teams = json_array();
    if (id->teams == NULL)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");

    v = is->teams_claim != NULL ? json_object_get(claims, is->teams_claim) : NULL;
    if (v != NULL && !json_is_null(v)) {
        size_t i;
        json_t *t;
        json_t *list = json_is_array(v) ? v : NULL;
        if (list == NULL && !json_is_string(v))
            return gw_error_set(err, GW_EAUTH, false, "malformed teams claim");
        for (i = 0; i < (list ? json_array_size(list) : 1); i++) {
            char buf[MAX_TEAM_LEN + 1];
            t = list ? json_array_get(list, i) : v;
            const char *s = json_string_value(t);
            if (s == NULL)
                continue;
            if (is->teams_entity_kind != NULL &&
                (s = entity_ref_name(s, is->teams_entity_kind, buf, sizeof(buf))) == NULL)
                continue;
            if (add_team(id->teams, s) < 0)
                return gw_error_set(err, GW_ENOMEM, false, "out of memory");
        }
    } else if (is->teams_from != NULL) {
        json_t *list = json_object_get(is->teams_from, raw);
        if (list == NULL)
            list = json_object_get(is->teams_from, sub);
        if (list == NULL)
            list = json_object_get(is->teams_from, id->subject);
        size_t i;
        json_t *t;
        json_array_foreach(list, i, t) if (add_team(id->teams, json_string_value(t)) <
                                           0) return gw_error_set(err, GW_ENOMEM, false,
                                                                  "out of memory");
    }
    return 0;
}

/* ---- verification ---- */

static bool typ_accepted(const struct gw__jwt_issuer *is, const json_t *header)
{
    if (is->ntyps == 0)
        return true;
    const char *typ = json_string_value(json_object_get(header, "typ"));
    if (typ == NULL)
        return false;
    if (strncasecmp(typ, "application/", 12) == 0)
        typ += 12;
    for (size_t i = 0; i < is->ntyps; i++)
        if (strcasecmp(typ, is->typs[i]) == 0)
            return true;
    return false;
}

/* Chooses the entry for a bearer token from its (unverified) "typ" and
 * "iss"; what they claim is then proven by that entry's keys. */
static const struct gw__jwt_issuer *select_issuer(const struct gw_jwt_auth *a, const json_t *header,
                                                  const json_t *claims, struct gw_error *err)
{
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    bool typ_seen = false, iss_seen = false;
    for (size_t i = 0; i < a->n; i++) {
        const struct gw__jwt_issuer *is = &a->issuers[i];
        if (!is->direct)
            continue;
        bool typ_ok = typ_accepted(is, header);
        bool iss_ok = is->iss == NULL || (iss != NULL && strcmp(is->iss, iss) == 0);
        if (typ_ok && iss_ok)
            return is;
        typ_seen |= typ_ok && is->ntyps > 0;
        iss_seen |= iss_ok && is->iss != NULL;
    }
    if (typ_seen)
        gw_error_set(err, GW_EAUTH, false, "issuer mismatch");
    else if (iss_seen)
        gw_error_set(err, GW_EAUTH, false, "token type mismatch");
    else
        gw_error_set(err, GW_EAUTH, false, "no configured issuer accepts this token");
    return NULL;
}

static int verify_as(struct gw_jwt_auth *a, const struct gw__jwt_issuer *is, const char *token,
                     size_t len, int64_t now, struct gw_jwt_identity *id,
                     struct gw__jwt_key_source **miss, struct gw_error *err)
{
    struct gw_jws jws;
    json_t *claims = NULL;
    int rc;

    if (is->src.keys == NULL) {
        /* A URL set not fetched yet: treat like a kid miss, so the caller
         * waits for the fetch instead of failing at once. */
        *miss = (struct gw__jwt_key_source *)&is->src;
        return gw_error_set(err, GW_ENOTFOUND, false, "signing keys not available yet");
    }
    rc = gw_jws_verify(token, len, is->src.keys, is->algs, &jws, err);
    if (rc == GW_ENOTFOUND)
        *miss = (struct gw__jwt_key_source *)&is->src;
    if (rc < 0)
        return rc;
    claims = json_loadb((const char *)jws.payload, jws.payload_len, JSON_REJECT_DUPLICATES, NULL);
    if (claims == NULL) {
        rc = gw_error_set(err, GW_EAUTH, false, "token payload is not a JSON object");
        goto out;
    }
    if (!typ_accepted(is, jws.header)) {
        rc = gw_error_set(err, GW_EAUTH, false, "token type mismatch");
        goto out;
    }
    struct gw_jwt_expect ex = {.issuer = is->iss,
                               .audience = is->audience,
                               .leeway_s = a->leeway_s,
                               .require_iat = is->require_iat,
                               .now = now};
    if ((rc = gw_jwt_check(jws.header, claims, &ex, err)) < 0)
        goto out;
    id->expires_at = (int64_t)json_number_value(json_object_get(claims, "exp"));

    if (is->obo >= 0) {
        const struct gw__jwt_issuer *inner = &a->issuers[is->obo];
        json_t *obo = json_object_get(claims, "obo");
        if (obo == NULL || json_is_null(obo)) {
            if (is->obo_required) {
                rc = gw_error_set(err, GW_EAUTH, false, "on-behalf-of token missing");
                goto out;
            }
            /* The plugin acts for itself: plugin:default/<sub>. */
            rc = map_identity(is, claims, is->delegate_prefix, id, err);
            goto out;
        }
        if (!json_is_string(obo)) {
            rc = gw_error_set(err, GW_EAUTH, false, "malformed on-behalf-of token");
            goto out;
        }
        struct gw_jwt_identity outer;
        memset(&outer, 0, sizeof(outer));
        if ((rc = map_identity(is, claims, is->delegate_prefix, &outer, err)) < 0) {
            gw_jwt_identity_finish(&outer);
            goto out;
        }
        int64_t outer_exp = id->expires_at;
        rc = verify_as(a, inner, json_string_value(obo), json_string_length(obo), now, id, miss,
                       err);
        if (rc < 0 && err != NULL) {
            char msg[sizeof(err->message)];
            snprintf(msg, sizeof(msg), "%s", err->message);
            gw_error_set(err, rc, false, "on-behalf-of token: %s", msg);
        }
        if (rc == 0) {
            snprintf(id->delegate, sizeof(id->delegate), "%s", outer.subject);
            if (outer_exp < id->expires_at)
                id->expires_at = outer_exp;
        }
        gw_jwt_identity_finish(&outer);
        goto out;
    }
    rc = map_identity(is, claims, NULL, id, err);
out:
    if (rc < 0)
        gw_jwt_identity_finish(id);
    json_decref(claims);
    gw_jws_finish(&jws);
    return rc;
}

static int verify_now(struct gw_jwt_auth *a, const char *token, size_t len, int64_t now, int forced,
                      struct gw_jwt_identity *out, struct gw__jwt_key_source **miss,
                      struct gw_error *err)
{
    json_t *header, *claims;
    int rc;

    memset(out, 0, sizeof(*out));
    *miss = NULL;
    header = gw_jws_peek_header(token, len);
    claims = gw_jws_peek_payload(token, len);
    if (header == NULL || claims == NULL) {
        rc = gw_error_set(err, GW_EAUTH, false, "malformed token");
    } else {
        const struct gw__jwt_issuer *is = forced >= 0 && (size_t)forced < a->n
                                              ? &a->issuers[forced]
                                              : select_issuer(a, header, claims, err);
        rc = is == NULL ? GW_EAUTH : verify_as(a, is, token, len, now, out, miss, err);
    }
    json_decref(header);
    json_decref(claims);
    return rc;
}

int gw_jwt_auth_verify_now(struct gw_jwt_auth *a, const char *token, size_t len, int64_t now,
                           struct gw_jwt_identity *out, struct gw_error *err)
{
    struct gw__jwt_key_source *miss;
    return verify_now(a, token, len, now, -1, out, &miss, err);
}

static void answer(struct gw_jwt_auth *a, const char *token, size_t len, gw_jwt_auth_cb cb,
                   void *arg, bool may_wait, int forced)
{
    struct gw_jwt_identity id;
    struct gw_error err;
    struct gw__jwt_key_source *miss = NULL;

    gw_error_clear(&err);
    int rc = verify_now(a, token, len, (int64_t)time(NULL), forced, &id, &miss, &err);
    if (rc == GW_ENOTFOUND && may_wait && miss != NULL && miss->url != NULL && !a->closing &&
        miss->nwaiters < MAX_WAITERS) {
        uint64_t now = uv_now(a->loop);
        bool can_fetch = miss->fetching || !miss->fetched_once ||
                         now - miss->last_fetch_ms >= (uint64_t)miss->min_refresh_s * 1000;
        if (can_fetch) {
            struct gw__jwt_waiter *w = malloc(sizeof(*w) + len + 1);
            if (w != NULL) {
                memcpy(w->token, token, len);
                w->token[len] = '\0';
                w->len = len;
                w->forced = forced;
                w->cb = cb;
                w->arg = arg;
                w->next = miss->waiters;
                miss->waiters = w;
                miss->nwaiters++;
                if (!miss->fetching)
                    gw__jwt_source_fetch(miss);
                return;
            }
        }
    }
    if (rc < 0)
        cb(arg, NULL, &err);
    else
        cb(arg, &id, NULL);
    gw_jwt_identity_finish(&id);
}

void gw_jwt_auth_verify(struct gw_jwt_auth *a, const char *token, size_t len, gw_jwt_auth_cb cb,
                        void *arg)
{
    if (a->closing) {
        struct gw_error err;
        gw_error_set(&err, GW_ECLOSED, true, "shutting down");
        cb(arg, NULL, &err);
        return;
    }
    answer(a, token, len, cb, arg, true, -1);
}

void gw_jwt_oidc_verify(struct gw_jwt_auth *a, int idx, const char *token, size_t len,
                        gw_jwt_auth_cb cb, void *arg)
{
    if (a->closing || idx < 0 || (size_t)idx >= a->n || a->issuers[idx].oidc == NULL) {
        struct gw_error err;
        gw_error_set(&err, a->closing ? GW_ECLOSED : GW_EINVAL, a->closing,
                     a->closing ? "shutting down" : "not an OIDC issuer");
        cb(arg, NULL, &err);
        return;
    }
    answer(a, token, len, cb, arg, true, idx);
}

void gw__jwt_waiter_resume(struct gw_jwt_auth *a, struct gw__jwt_waiter *w, bool closing)
{
    if (closing) {
        struct gw_error err;
        gw_error_set(&err, GW_ECLOSED, true, "shutting down");
        w->cb(w->arg, NULL, &err);
    } else {
        answer(a, w->token, w->len, w->cb, w->arg, false, w->forced);
    }
    free(w);
}

void gw__jwt_auth_free_issuers(struct gw_jwt_auth *a)
{
    for (size_t i = 0; i < a->n; i++)
        issuer_clear(&a->issuers[i]);
    free(a->issuers);
}
