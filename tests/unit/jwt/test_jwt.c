/*
 * lib/jwt: RFC 7515 appendix A and RFC 8037 examples, the attack list,
 * claims with leeway, key-set rules, the issuer configuration and Backstage
 * user and plugin (on-behalf-of) tokens.
 */
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"

#define CHECK_NAMED
#include "../check.h"
#include "../testfs.h"

static char datadir[4096];

static bool has(const char *msg, const char *want)
{
    return want == NULL || strstr(msg, want) != NULL;
}

static json_t *load_data(const char *name)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", datadir, name);
    json_t *j = json_load_file(p, 0, NULL);
    if (j == NULL) {
        printf("FAIL cannot read %s\n", p);
        exit(1);
    }
    return j;
}

/* Verifies `jws` against `jwk`; returns the rc and the message in msg. */
static int verify_one(const json_t *jwk, unsigned flags, const char *jws, unsigned allowed,
                      char *msg, size_t cap, struct gw_jws *out)
{
    struct gw_jwks *ks = NULL;
    struct gw_error err;
    struct gw_jws tmp;
    gw_error_clear(&err);
    int rc = gw_jwks_parse(jwk, flags, &ks, &err);
    if (rc == 0)
        rc = gw_jws_verify(jws, strlen(jws), ks, allowed, out ? out : &tmp, &err);
    if (rc == 0 && out == NULL)
        gw_jws_finish(&tmp);
    snprintf(msg, cap, "%s", err.message);
    gw_jwks_destroy(ks);
    return rc;
}

static void test_rfc_examples(void)
{
    char msg[512];
    struct gw_jws out;
    const char *files[] = {"rfc7515_a2.json", "rfc7515_a3.json", "rfc7515_a4.json",
                           "rfc8037_a4.json"};
    const char *payloads[] = {"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n "
                              "\"http://example.com/is_root\":true}",
                              NULL, "Payload", "Example of Ed25519 signing"};
    payloads[1] = payloads[0];
    for (size_t i = 0; i < 4; i++) {
        json_t *d = load_data(files[i]);
        const char *jws = json_string_value(json_object_get(d, "jws"));
        int rc = verify_one(json_object_get(d, "jwk"), 0, jws, GW_JWA_ASYMMETRIC, msg, sizeof(msg),
                            &out);
        CHECK(rc == 0 && out.payload_len == strlen(payloads[i]) &&
                  memcmp(out.payload, payloads[i], out.payload_len) == 0,
              "%s verifies and yields its payload (%s)", files[i], rc ? msg : "");
        if (rc == 0)
            gw_jws_finish(&out);
        /* One flipped signature bit must fail. */
        char *bad = strdup(jws);
        char *last = bad + strlen(bad) - 2;
        *last = *last == 'A' ? 'B' : 'A';
        rc = verify_one(json_object_get(d, "jwk"), 0, bad, GW_JWA_ASYMMETRIC, msg, sizeof(msg),
                        NULL);
        CHECK(rc == GW_EAUTH, "%s with a modified signature is invalid (%s)", files[i], msg);
        free(bad);
        json_decref(d);
    }

    /* A.2 claims: exp 1300819380, leeway applies, capped at 60 s. */
    json_t *d = load_data("rfc7515_a2.json");
    json_t *claims = json_loads("{\"iss\":\"joe\",\"exp\":1300819380}", 0, NULL);
    json_t *hdr = json_loads("{\"alg\":\"RS256\"}", 0, NULL);
    struct gw_error err;
    struct gw_jwt_expect ex = {.issuer = "joe", .leeway_s = 0, .now = 1300819379};
    CHECK(gw_jwt_check(hdr, claims, &ex, &err) == 0, "A.2 claims valid one second before exp");
    ex.now = 1300819380;
    CHECK(gw_jwt_check(hdr, claims, &ex, &err) == GW_EAUTH &&
              strcmp(err.message, "token expired") == 0,
          "A.2 expired at exp without leeway: %s", err.message);
    ex.leeway_s = 600; /* capped at 60 */
    ex.now = 1300819380 + 59;
    CHECK(gw_jwt_check(hdr, claims, &ex, &err) == 0, "leeway 600 is capped: 59 s late accepted");
    ex.now = 1300819380 + 61;
    CHECK(gw_jwt_check(hdr, claims, &ex, &err) == GW_EAUTH,
          "leeway 600 is capped: 61 s late "
          "refused (%s)",
          err.message);
    json_decref(claims);
    json_decref(hdr);
    json_decref(d);

    /* A.1 is HS256: refused by an asymmetric allow-list, by a key set that
     * does not take symmetric keys, and by the issuer configuration. */
    d = load_data("rfc7515_a1.json");
    const char *a1 = json_string_value(json_object_get(d, "jws"));
    int rc = verify_one(json_object_get(d, "jwk"), GW_JWKS_ALLOW_SYMMETRIC, a1, GW_JWA_ASYMMETRIC,
                        msg, sizeof(msg), NULL);
    CHECK(rc == GW_EAUTH && strcmp(msg, "algorithm not allowed") == 0,
          "RFC 7515 A.1 (HS256) refused: %s", msg);
    rc = verify_one(json_object_get(d, "jwk"), 0, a1, GW_JWA_HMAC, msg, sizeof(msg), NULL);
    CHECK(rc < 0, "A.1: an oct key is not loaded from a provider key set (%s)", msg);
    /* The library itself computes HS256 correctly when a caller opts in;
     * this proves the refusals above are policy, not a broken HMAC. */
    rc = verify_one(json_object_get(d, "jwk"), GW_JWKS_ALLOW_SYMMETRIC, a1, GW_JWA_HS256, msg,
                    sizeof(msg), NULL);
    CHECK(rc == 0, "A.1 verifies only with an explicit HMAC opt-in (%s)", msg);
    json_t *cfg = json_loads("{\"issuers\":[{\"name\":\"x\",\"jwks_file\":\"/dev/null\","
                             "\"algorithms\":[\"HS256\"]}]}",
                             0, NULL);
    struct gw_jwt_auth *a = NULL;
    rc = gw_jwt_auth_create(uv_default_loop(), cfg, NULL, &a, &err);
    CHECK(rc == GW_EPARSE && strstr(err.message, "HS256 is not accepted") != NULL,
          "an issuer configured with HS256 is refused: %s", err.message);
    json_decref(cfg);
    json_decref(d);
}

static char *b64(const char *s)
{
    return gw_b64url_encode(s, strlen(s));
}

/* Builds "<b64 header>.<b64 payload>.<sig part of `base`>" */
static char *with_header(const char *header, const char *base)
{
    char *h = b64(header);
    const char *rest = strchr(base, '.');
    size_t len = strlen(h) + strlen(rest) + 1;
    char *out = malloc(len);
    snprintf(out, len, "%s%s", h, rest);
    free(h);
    return out;
}

static void test_attacks(void)
{
    struct tkey ec, rsa, other;
    struct tkey *set[] = {&ec, &rsa};
    struct gw_jwks *ks = NULL;
    struct gw_error err;
    struct gw_jws out;
    const char *payload = "{\"sub\":\"mallory\",\"exp\":4102444800}";
    char *t;
    int rc;

    tkey_init(&ec, "P-256", "ec1");
    tkey_init(&rsa, "RSA", "rsa1");
    tkey_init(&other, "P-256", "ec1"); /* same kid, attacker's key */
    char *jwks = tkeys_jwks(set, 2);
    rc = gw_jwks_parse_text(jwks, strlen(jwks), 0, &ks, &err);
    CHECK(rc == 0 && gw_jwks_count(ks) == 2, "generated key set parses");
    unsigned all = GW_JWA_ASYMMETRIC | GW_JWA_HMAC;

#define EXPECT(tok, allowed, want_rc, want_msg, what)                                              \
    do {                                                                                           \
        gw_error_clear(&err);                                                                      \
        rc = gw_jws_verify(tok, strlen(tok), ks, allowed, &out, &err);                             \
        if (rc == 0)                                                                               \
            gw_jws_finish(&out);                                                                   \
        CHECK(rc == (want_rc) && has(err.message, want_msg), "%s: rc %d (%s)", what, rc,           \
              err.message);                                                                        \
    } while (0)

    char *good = tsign(&ec, "ES256", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", payload, 0);
    EXPECT(good, GW_JWA_ES256, 0, NULL, "a good ES256 token");
    EXPECT(good, GW_JWA_RS256, GW_EAUTH, "algorithm not allowed", "ES256 outside the allow-list");

    /* alg none, in any spelling, with or without a signature. */
    const char *nones[] = {"{\"alg\":\"none\",\"kid\":\"ec1\"}",
                           "{\"alg\":\"None\"}",
                           "{\"alg\":\"NONE\",\"kid\":\"ec1\"}",
                           "{\"kid\":\"ec1\"}",
                           "{\"alg\":\"\"}",
                           "{\"alg\":null}",
                           "{\"alg\":[\"ES256\"]}"};
    for (size_t i = 0; i < ARRAY_SIZE(nones); i++) {
        char *h = b64(nones[i]), *p = b64(payload);
        size_t len = strlen(h) + strlen(p) + 3;
        t = malloc(len);
        snprintf(t, len, "%s.%s.", h, p);
        EXPECT(t, all, GW_EAUTH, "algorithm not allowed", nones[i]);
        free(t);
        t = with_header(nones[i], good);
        EXPECT(t, all, GW_EAUTH, "algorithm not allowed", "alg none with a signature");
        free(t);
        free(h);
        free(p);
    }

    /* HS256 keyed with the RSA public key (PEM, DER and raw modulus), even
     * with HMAC on the allow-list: the RSA key never does HMAC. */
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, rsa.pkey);
    char *pem;
    long pemlen = BIO_get_mem_data(bio, &pem);
    t = tsign_hmac(pem, (size_t)pemlen, "{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", payload);
    EXPECT(t, all, GW_EAUTH, "the key does not allow this algorithm", "HS256 with the RSA PEM");
    EXPECT(t, GW_JWA_ASYMMETRIC, GW_EAUTH, "algorithm not allowed", "HS256, asymmetric list");
    free(t);
    t = tsign_hmac(pem, (size_t)pemlen, "{\"alg\":\"HS256\"}", payload);
    EXPECT(t, all, GW_EAUTH, "no key for this algorithm", "HS256 with the RSA PEM, no kid");
    free(t);
    BIO_free(bio);
    unsigned char *der = NULL;
    int derlen = i2d_PUBKEY(rsa.pkey, &der);
    t = tsign_hmac(der, (size_t)derlen, "{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", payload);
    EXPECT(t, all, GW_EAUTH, "the key does not allow", "HS256 with the RSA DER");
    free(t);
    OPENSSL_free(der);

    /* kid: only from the set. */
    t = tsign(&other, "ES256", "{\"alg\":\"ES256\",\"kid\":\"nope\"}", payload, 0);
    EXPECT(t, all, GW_ENOTFOUND, "unknown key id", "kid not in the set");
    free(t);
    t = tsign(&other, "ES256", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", payload, 0);
    EXPECT(t, all, GW_EAUTH, "signature invalid", "attacker key under a known kid");
    free(t);
    t = tsign(&ec, "ES256", "{\"alg\":\"ES256\",\"kid\":5}", payload, 0);
    EXPECT(t, all, GW_EAUTH, "malformed", "kid that is not a string");
    free(t);
    t = tsign(&ec, "ES256", "{\"alg\":\"ES256\"}", payload, 0);
    EXPECT(t, all, 0, NULL, "no kid: the one compatible key of the set");
    free(t);
    t = tsign(&rsa, "RS256", "{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", payload, 0);
    EXPECT(t, all, GW_EAUTH, "does not allow", "ES256 header on the RSA kid");
    free(t);

    /* Headers that would let the token choose its key or the rules. */
    char hdr[2048];
    char *jwkjson = json_dumps(other.jwk, JSON_COMPACT);
    const char *params[][2] = {{"jku", "\"https://evil.example/jwks.json\""},
                               {"x5u", "\"https://evil.example/cert.pem\""},
                               {"jwk", jwkjson},
                               {"x5c", "[\"MIIB\"]"},
                               {"crit", "[\"exp\"]"},
                               {"b64", "false"}};
    for (size_t i = 0; i < ARRAY_SIZE(params); i++) {
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"%s\":%s}", params[i][0],
                 params[i][1]);
        t = tsign(strcmp(params[i][0], "jwk") == 0 ? &other : &ec, "ES256", hdr, payload, 0);
        EXPECT(t, all, GW_EAUTH, params[i][0], "header parameter refused");
        free(t);
    }
    free(jwkjson);

    /* ECDSA: DER is not JOSE; wrong lengths are invalid. */
    t = tsign(&ec, "ES256", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", payload, 1);
    EXPECT(t, all, GW_EAUTH, "signature invalid", "DER-encoded ES256 signature");
    free(t);

    /* Encoding: truncated, padded, foreign characters, extra parts. */
    size_t glen = strlen(good);
    t = strndup(good, glen - 1);
    EXPECT(t, all, GW_EAUTH, NULL, "truncated signature");
    free(t);
    t = strndup(good, glen - 4);
    EXPECT(t, all, GW_EAUTH, NULL, "signature cut by 4 characters");
    free(t);
    size_t cap = glen + 8;
    t = malloc(cap);
    snprintf(t, cap, "%s==", good);
    EXPECT(t, all, GW_EAUTH, "malformed", "padded signature");
    free(t);
    const char *dot = strchr(good, '.');
    t = malloc(cap);
    snprintf(t, cap, "%.*s=%s", (int)(dot - good), good, dot);
    EXPECT(t, all, GW_EAUTH, "malformed", "padded header");
    free(t);
    t = malloc(cap);
    snprintf(t, cap, "%.*s+%s", (int)(dot - good - 1), good, dot);
    EXPECT(t, all, GW_EAUTH, "malformed", "'+' (base64, not base64url) in the header");
    free(t);
    t = malloc(cap);
    snprintf(t, cap, "%s.", good);
    EXPECT(t, all, GW_EAUTH, "malformed", "four parts");
    free(t);
    t = malloc(cap);
    snprintf(t, cap, " %s", good);
    EXPECT(t, all, GW_EAUTH, "malformed", "leading space");
    free(t);
    t = with_header("{\"alg\":\"ES256\",\"kid\":\"ec1\",\"alg\":\"none\"}", good);
    EXPECT(t, all, GW_EAUTH, "malformed", "duplicate alg member");
    free(t);

    /* Other algorithms end to end. */
    struct tkey ed, p384, p521;
    tkey_init(&ed, "Ed25519", "ed");
    tkey_init(&p384, "P-384", "p384");
    tkey_init(&p521, "P-521", "p521");
    struct tkey *set2[] = {&ed, &p384, &p521, &rsa};
    char *jwks2 = tkeys_jwks(set2, 4);
    gw_jwks_destroy(ks);
    gw_jwks_parse_text(jwks2, strlen(jwks2), 0, &ks, &err);
    const struct {
        struct tkey *k;
        const char *alg;
    } algs[] = {{&ed, "EdDSA"},  {&p384, "ES384"}, {&p521, "ES512"},
                {&rsa, "RS256"}, {&rsa, "RS384"},  {&rsa, "RS512"},
                {&rsa, "PS256"}, {&rsa, "PS384"},  {&rsa, "PS512"}};
    for (size_t i = 0; i < ARRAY_SIZE(algs); i++) {
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"%s\"}", algs[i].alg, algs[i].k->kid);
        t = tsign(algs[i].k, algs[i].alg, hdr, payload, 0);
        EXPECT(t, all, 0, NULL, algs[i].alg);
        EXPECT(t, all & ~gw_jwa_from_name(algs[i].alg), GW_EAUTH, "not allowed",
               "the same, not on the allow-list");
        free(t);
    }
    /* PS256 signature presented as RS256 and the reverse. */
    t = tsign(&rsa, "PS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", payload, 0);
    EXPECT(t, all, GW_EAUTH, "signature invalid", "a PSS signature labelled RS256");
    free(t);
    gw_jwks_destroy(ks);
    ks = NULL;
    free(jwks2);
    tkey_finish(&ed);
    tkey_finish(&p384);
    tkey_finish(&p521);

    free(good);
    free(jwks);
    tkey_finish(&ec);
    tkey_finish(&rsa);
    tkey_finish(&other);
#undef EXPECT
}

static void test_key_sets(void)
{
    struct gw_jwks *ks = NULL;
    struct gw_error err;
    struct tkey a, b;
    tkey_init(&a, "P-256", "same");
    tkey_init(&b, "P-256", "same");
    struct tkey *set[] = {&a, &b};
    char *j = tkeys_jwks(set, 2);
    CHECK(gw_jwks_parse_text(j, strlen(j), 0, &ks, &err) == GW_EPARSE &&
              strstr(err.message, "share a \"kid\""),
          "duplicate kids refuse the set: %s", err.message);
    free(j);
    /* Private material in a published set is a misconfiguration. */
    json_object_set_new(a.jwk, "d", json_string("AAAA"));
    j = tkeys_jwks(set, 1);
    CHECK(gw_jwks_parse_text(j, strlen(j), 0, &ks, &err) == GW_EPARSE &&
              strstr(err.message, "private"),
          "a private EC key refuses the set: %s", err.message);
    free(j);
    json_object_del(a.jwk, "d");
    /* Encryption keys and other curves are skipped, not fatal. */
    json_object_set_new(b.jwk, "use", json_string("enc"));
    json_object_set_new(b.jwk, "kid", json_string("enc"));
    j = tkeys_jwks(set, 2);
    CHECK(gw_jwks_parse_text(j, strlen(j), 0, &ks, &err) == 0 && gw_jwks_count(ks) == 1 &&
              gw_jwks_skipped(ks) == 1,
          "an encryption key is skipped");
    gw_jwks_destroy(ks);
    free(j);
    /* The JWK's own alg: an ES256 key cannot claim RS256. */
    json_object_set_new(a.jwk, "alg", json_string("RS256"));
    j = tkeys_jwks(set, 1);
    CHECK(gw_jwks_parse_text(j, strlen(j), 0, &ks, &err) == GW_EPARSE,
          "alg of the wrong family "
          "refused: %s",
          err.message);
    free(j);
    /* A short coordinate (leading zero dropped) is refused. */
    json_object_set_new(a.jwk, "alg", json_string("ES256"));
    json_object_set_new(a.jwk, "x", json_string("AAAA"));
    j = tkeys_jwks(set, 1);
    CHECK(gw_jwks_parse_text(j, strlen(j), 0, &ks, &err) == GW_EPARSE,
          "short EC coordinate "
          "refused: %s",
          err.message);
    free(j);
    tkey_finish(&a);
    tkey_finish(&b);

    size_t n;
    unsigned char *d = gw_b64url_decode("QQ", 2, &n);
    CHECK(d != NULL && n == 1 && d[0] == 'A', "base64url QQ -> A");
    free(d);
    CHECK(gw_b64url_decode("QR", 2, &n) == NULL, "non-canonical trailing bits refused");
    CHECK(gw_b64url_decode("QQ==", 4, &n) == NULL, "padding refused");
    CHECK(gw_b64url_decode("Q", 1, &n) == NULL, "a lone character refused");
    CHECK(gw_b64url_decode("Q Q", 3, &n) == NULL, "whitespace refused");
}

/* ---- issuers and Backstage ---- */

static char tmpdir[256];

static char *token(struct tkey *k, const char *typ, json_t *claims)
{
    char hdr[256];
    if (typ != NULL)
        snprintf(hdr, sizeof(hdr), "{\"typ\":\"%s\",\"alg\":\"ES256\",\"kid\":\"%s\"}", typ,
                 k->kid);
    else
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", k->kid);
    char *p = json_dumps(claims, JSON_COMPACT);
    char *t = tsign(k, "ES256", hdr, p, 0);
    free(p);
    json_decref(claims);
    return t;
}

static int verify(struct gw_jwt_auth *a, const char *t, int64_t now, struct gw_jwt_identity *id,
                  char *msg)
{
    struct gw_error err;
    gw_error_clear(&err);
    int rc = gw_jwt_auth_verify_now(a, t, strlen(t), now, id, &err);
    snprintf(msg, 512, "%s", err.message);
    return rc;
}

static void test_backstage(void)
{
    struct tkey auth_key, plugin_key, rogue;
    struct gw_jwt_auth *a = NULL;
    struct gw_jwt_identity id;
    struct gw_error err;
    char msg[512];
    int64_t now = (int64_t)time(NULL);
    const char *ISS = "http://backstage.example:7007/api/auth";

    tkey_init(&auth_key, "P-256", "auth-1");
    tkey_init(&plugin_key, "P-256", "scaffolder-1");
    tkey_init(&rogue, "P-256", "auth-1");
    struct tkey *s1[] = {&auth_key}, *s2[] = {&plugin_key};
    char *j1 = tkeys_jwks(s1, 1), *j2 = tkeys_jwks(s2, 1);
    write_file_in(tmpdir, "auth.jwks", j1);
    write_file_in(tmpdir, "plugin.jwks", j2);
    free(j1);
    free(j2);
    char cfgtext[4096];
    snprintf(
        cfgtext, sizeof(cfgtext),
        "{\"leeway_s\": 30, \"issuers\": ["
        "{\"name\":\"backstage\",\"issuer\":\"%s\",\"audience\":\"backstage\","
        "\"jwks_file\":\"auth.jwks\",\"algorithms\":[\"ES256\"],\"typ\":\"vnd.backstage.user\","
        "\"subject_claim\":\"sub\",\"subject_prefix_strip\":\"user:default/\","
        "\"teams_claim\":\"ent\",\"teams_entity_kind\":\"group\","
        "\"teams_from\":{\"user:default/bob\":[\"payments\",\"sre\"]}},"
        "{\"name\":\"backstage-limited\",\"direct\":false,\"jwks_file\":\"auth.jwks\","
        "\"algorithms\":[\"ES256\"],\"typ\":[\"vnd.backstage.limited-user\","
        "\"vnd.backstage.user\"],\"subject_prefix_strip\":\"user:default/\","
        "\"teams_from\":{\"user:default/alice\":[\"payments\"]}},"
        "{\"name\":\"backstage-plugins\",\"audience\":\"gangway\",\"jwks_file\":\"plugin.jwks\","
        "\"algorithms\":[\"ES256\"],\"typ\":\"vnd.backstage.plugin\","
        "\"allowed_subjects\":[\"scaffolder\"],\"obo_issuer\":\"backstage-limited\"}]}",
        ISS);
    write_file_in(tmpdir, "auth.json", cfgtext);
    char cfgpath[512];
    snprintf(cfgpath, sizeof(cfgpath), "%s/auth.json", tmpdir);
    int rc = gw_jwt_auth_load(uv_default_loop(), cfgpath, &a, &err);
    CHECK(rc == 0, "Backstage configuration loads (%s)", rc ? err.message : "");
    if (rc != 0)
        return;

    /* User token with ownership claim. */
    char *t =
        token(&auth_key, "vnd.backstage.user",
              json_pack("{ss ss ss sI sI s[sss]}", "iss", ISS, "aud", "backstage", "sub",
                        "user:default/alice", "iat", (json_int_t)now, "exp", (json_int_t)now + 3600,
                        "ent", "user:default/alice", "group:default/payments", "group:ops/sre"));
    rc = verify(a, t, now, &id, msg);
    char *teams = rc == 0 ? json_dumps(id.teams, JSON_COMPACT) : NULL;
    CHECK(rc == 0 && strcmp(id.subject, "user:default/alice") == 0 && teams &&
              strcmp(teams, "[\"payments\",\"ops/sre\"]") == 0 && id.delegate[0] == '\0',
          "Backstage user token: subject user:default/alice (canonical, though "
          "subject_prefix_strip is set), teams %s (%s)",
          teams ? teams : "-", msg);
    free(teams);
    gw_jwt_identity_finish(&id);
    CHECK(verify(a, t, now + 3600 + 31, &id, msg) == GW_EAUTH && strcmp(msg, "token expired") == 0,
          "expired beyond the leeway: %s", msg);
    CHECK(verify(a, t, now + 3600 + 29, &id, msg) == 0, "expired within the 30 s leeway");
    gw_jwt_identity_finish(&id);
    free(t);

    /* No ent claim: teams from the static mapping. */
    t = token(&auth_key, "vnd.backstage.user",
              json_pack("{ss ss ss sI sI}", "iss", ISS, "aud", "backstage", "sub",
                        "user:default/bob", "iat", (json_int_t)now, "exp", (json_int_t)now + 3600));
    rc = verify(a, t, now, &id, msg);
    teams = rc == 0 ? json_dumps(id.teams, JSON_COMPACT) : NULL;
    CHECK(rc == 0 && strcmp(id.subject, "user:default/bob") == 0 && teams &&
              strcmp(teams, "[\"payments\",\"sre\"]") == 0,
          "user token without ent: teams from teams_from %s", teams ? teams : msg);
    free(teams);
    gw_jwt_identity_finish(&id);
    free(t);

    /* Every spelling of one person's subject gives the one canonical
     * subject (gw/subject.h); what it cannot be made into refuses the token. */
    struct {
        const char *sub;
        const char *want; /* the subject, or a piece of the refusal */
        bool ok;
    } forms[] = {
        {"mia", "user:default/mia", true},
        {"User:Default/Mia", "user:default/mia", true},
        {"user:default/MIA", "user:default/mia", true},
        {"ops/mia", "user:ops/mia", true},
        {"Mia@Example.com", "user:default/mia@example.com", true},
        {"group:default/sre", "subject not usable: a group is not a subject", false},
        {"user:default/\xe2\x84\xaaim", "subject not usable: the subject holds a non-ASCII", false},
        {" mia", "subject not usable: the subject holds a space", false},
        {"user:default/", "subject not usable: the subject's name is empty", false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
        t = token(&auth_key, "vnd.backstage.user",
                  json_pack("{ss ss ss sI sI}", "iss", ISS, "aud", "backstage", "sub", forms[i].sub,
                            "iat", (json_int_t)now, "exp", (json_int_t)now + 600));
        rc = verify(a, t, now, &id, msg);
        if (forms[i].ok)
            CHECK(rc == 0 && strcmp(id.subject, forms[i].want) == 0, "sub '%s' -> %s (%s %s)",
                  forms[i].sub, forms[i].want, rc == 0 ? id.subject : "", msg);
        else
            CHECK(rc == GW_EAUTH && strstr(msg, forms[i].want) != NULL, "sub #%zu refused: %s", i,
                  msg);
        gw_jwt_identity_finish(&id);
        free(t);
    }

    /* Wrong typ, iss, aud, nbf, signer. */
    struct {
        const char *typ;
        const char *iss;
        const char *aud;
        int64_t nbf;
        struct tkey *k;
        const char *want;
    } bad[] = {
        {"JWT", ISS, "backstage", 0, &auth_key, "token type mismatch"},
        {NULL, ISS, "backstage", 0, &auth_key, "token type mismatch"},
        {"vnd.backstage.plugin", ISS, "backstage", 0, &auth_key, "unknown key id"},
        {"vnd.backstage.user", "http://evil.example/api/auth", "backstage", 0, &auth_key,
         "issuer mismatch"},
        {"vnd.backstage.user", ISS, "other", 0, &auth_key, "audience mismatch"},
        {"vnd.backstage.user", ISS, "backstage", now + 120, &auth_key, "token not yet valid"},
        {"vnd.backstage.user", ISS, "backstage", 0, &rogue, "signature invalid"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        json_t *c =
            json_pack("{ss ss ss sI sI}", "iss", bad[i].iss, "aud", bad[i].aud, "sub",
                      "user:default/alice", "iat", (json_int_t)now, "exp", (json_int_t)now + 600);
        if (bad[i].nbf)
            json_object_set_new(c, "nbf", json_integer(bad[i].nbf));
        t = token(bad[i].k, bad[i].typ, c);
        rc = verify(a, t, now, &id, msg);
        CHECK(rc < 0 && strstr(msg, bad[i].want) != NULL, "refused (%s): %s", bad[i].want, msg);
        gw_jwt_identity_finish(&id);
        free(t);
    }

    /* Plugin token on behalf of a user (limited user token in obo). */
    char *limited = token(&auth_key, "vnd.backstage.limited-user",
                          json_pack("{ss sI sI}", "sub", "user:default/alice", "iat",
                                    (json_int_t)now, "exp", (json_int_t)now + 3600));
    t = token(&plugin_key, "vnd.backstage.plugin",
              json_pack("{ss ss sI sI ss}", "sub", "scaffolder", "aud", "gangway", "iat",
                        (json_int_t)now, "exp", (json_int_t)now + 600, "obo", limited));
    rc = verify(a, t, now, &id, msg);
    teams = rc == 0 ? json_dumps(id.teams, JSON_COMPACT) : NULL;
    CHECK(rc == 0 && strcmp(id.subject, "user:default/alice") == 0 &&
              strcmp(id.delegate, "plugin:default/scaffolder") == 0 && teams &&
              strcmp(teams, "[\"payments\"]") == 0 && id.expires_at == now + 600,
          "plugin token: principal alice via plugin:scaffolder, teams %s (%s)", teams ? teams : "-",
          msg);
    free(teams);
    gw_jwt_identity_finish(&id);
    free(t);
    /* A limited user token alone is not a bearer token here. */
    rc = verify(a, limited, now, &id, msg);
    CHECK(rc == GW_EAUTH, "a limited user token alone is refused: %s", msg);
    free(limited);

    /* obo signed by the wrong key, expired, missing, not a string; the
     * outer token signed with the user key; a plugin not allowed. */
    char *rogue_obo = token(&rogue, "vnd.backstage.limited-user",
                            json_pack("{ss sI sI}", "sub", "user:default/admin", "iat",
                                      (json_int_t)now, "exp", (json_int_t)now + 3600));
    char *old_obo = token(&auth_key, "vnd.backstage.limited-user",
                          json_pack("{ss sI sI}", "sub", "user:default/alice", "iat",
                                    (json_int_t)now - 7200, "exp", (json_int_t)now - 3600));
    char *plugin_obo = token(&plugin_key, "vnd.backstage.limited-user",
                             json_pack("{ss sI sI}", "sub", "user:default/alice", "iat",
                                       (json_int_t)now, "exp", (json_int_t)now + 3600));
    struct {
        struct tkey *k;
        const char *sub;
        json_t *obo;
        const char *want;
    } pbad[] = {
        {&plugin_key, "scaffolder", json_string(rogue_obo),
         "on-behalf-of token: signature invalid"},
        {&plugin_key, "scaffolder", json_string(old_obo), "on-behalf-of token: token expired"},
        {&plugin_key, "scaffolder", json_string(plugin_obo), "on-behalf-of token: unknown key id"},
        {&plugin_key, "scaffolder", json_string("x.y.z"), "on-behalf-of token: malformed"},
        {&plugin_key, "scaffolder", json_integer(1), "malformed on-behalf-of"},
        {&plugin_key, "scaffolder", NULL, "on-behalf-of token missing"},
        {&auth_key, "scaffolder", json_string(old_obo), "unknown key id"},
        {&plugin_key, "catalog", json_string(old_obo), "subject not allowed"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(pbad); i++) {
        json_t *c = json_pack("{ss ss sI sI}", "sub", pbad[i].sub, "aud", "gangway", "iat",
                              (json_int_t)now, "exp", (json_int_t)now + 600);
        if (pbad[i].obo != NULL)
            json_object_set_new(c, "obo", pbad[i].obo);
        t = token(pbad[i].k, "vnd.backstage.plugin", c);
        rc = verify(a, t, now, &id, msg);
        CHECK(rc < 0 && strstr(msg, pbad[i].want) != NULL, "plugin token refused (%s): %s",
              pbad[i].want, msg);
        gw_jwt_identity_finish(&id);
        free(t);
    }
    /* A plugin token for another audience. */
    t = token(&plugin_key, "vnd.backstage.plugin",
              json_pack("{ss ss sI sI ss}", "sub", "scaffolder", "aud", "catalog", "iat",
                        (json_int_t)now, "exp", (json_int_t)now + 600, "obo", old_obo));
    CHECK(verify(a, t, now, &id, msg) == GW_EAUTH && strcmp(msg, "audience mismatch") == 0,
          "plugin token for another plugin: %s", msg);
    free(t);
    free(rogue_obo);
    free(old_obo);
    free(plugin_obo);

    gw_jwt_auth_destroy(a);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);

    /* subject_namespace / subject_kind: where a bare subject lands; a full
     * entity ref keeps its own. */
    {
        json_t *c = json_pack("{s[{ss ss ss s[s] ss ss}]}", "issuers", "name", "okta", "issuer",
                              "https://okta.example", "jwks_file", "auth.jwks", "algorithms",
                              "ES256", "subject_namespace", "okta", "subject_kind", "service");
        rc = gw_jwt_auth_create(uv_default_loop(), c, tmpdir, &a, &err);
        json_decref(c);
        CHECK(rc == 0, "subject_namespace/subject_kind load (%s)", rc ? err.message : "");
        const char *subs[][2] = {{"Mia", "service:okta/mia"},
                                 {"user:default/mia", "user:default/mia"},
                                 {"ci-bot@example.com", "service:okta/ci-bot@example.com"}};
        for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(subs); i++) {
            t = token(&auth_key, NULL,
                      json_pack("{ss ss sI sI}", "iss", "https://okta.example", "sub", subs[i][0],
                                "iat", (json_int_t)now, "exp", (json_int_t)now + 600));
            int vrc = verify(a, t, now, &id, msg);
            CHECK(vrc == 0 && strcmp(id.subject, subs[i][1]) == 0, "okta sub '%s' -> %s (%s %s)",
                  subs[i][0], subs[i][1], vrc == 0 ? id.subject : "", msg);
            gw_jwt_identity_finish(&id);
            free(t);
        }
        if (rc == 0) {
            gw_jwt_auth_destroy(a);
            uv_run(uv_default_loop(), UV_RUN_DEFAULT);
        }
    }

    /* Configuration errors. */
    const char *bad_cfgs[][2] = {
        {"{\"leeway_s\":61,\"issuers\":[{\"name\":\"x\",\"jwks_file\":\"auth.jwks\","
         "\"algorithms\":[\"ES256\"]}]}",
         "leeway_s"},
        {"{\"issuers\":[{\"name\":\"x\",\"jwks_file\":\"auth.jwks\",\"algorithms\":[\"none\"]}]}",
         "unknown algorithm"},
        {"{\"issuers\":[{\"name\":\"x\",\"jwks_file\":\"auth.jwks\",\"jwks_url\":\"http://a\","
         "\"algorithms\":[\"ES256\"]}]}",
         "exactly one"},
        {"{\"issuers\":[{\"name\":\"x\",\"jwks_url\":\"file:///etc/passwd\","
         "\"algorithms\":[\"ES256\"]}]}",
         "http(s)"},
        {"{\"issuers\":[{\"name\":\"x\",\"jwks_file\":\"auth.jwks\",\"algorithms\":[\"ES256\"],"
         "\"obo_issuer\":\"y\"}]}",
         "not configured"},
        {"{\"issuers\":[{\"name\":\"x\",\"jwks_file\":\"auth.jwks\",\"algorithms\":[\"ES256\"],"
         "\"audiance\":\"y\"}]}",
         "unknown member"},
        {"{\"issuers\":[{\"name\":\"x\",\"jwks_file\":\"auth.jwks\",\"algorithms\":[\"ES256\"],"
         "\"subject_kind\":\"User\"}]}",
         "\"subject_kind\"/\"subject_namespace\": 'U' is not allowed in the subject's kind"},
        {"{\"issuers\":[{\"name\":\"x\",\"jwks_file\":\"auth.jwks\",\"algorithms\":[\"ES256\"],"
         "\"subject_kind\":\"group\"}]}",
         "a group is not a subject"},
        {"{\"issuers\":[{\"name\":\"x\",\"jwks_file\":\"auth.jwks\",\"algorithms\":[\"ES256\"],"
         "\"subject_namespace\":\"a/b\"}]}",
         "'/' is not allowed in the subject's namespace"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad_cfgs); i++) {
        json_t *c = json_loads(bad_cfgs[i][0], 0, NULL);
        rc = gw_jwt_auth_create(uv_default_loop(), c, tmpdir, &a, &err);
        CHECK(rc < 0 && strstr(err.message, bad_cfgs[i][1]) != NULL, "config refused (%s): %s",
              bad_cfgs[i][1], err.message);
        json_decref(c);
    }
    tkey_finish(&auth_key);
    tkey_finish(&plugin_key);
    tkey_finish(&rogue);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("warning: could not remove %s\n", tmpdir);
}

int main(void)
{
    const char *src = getenv("GW_SOURCE_ROOT");
    snprintf(datadir, sizeof(datadir), "%s/tests/unit/jwt/data", src != NULL ? src : ".");
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/gw-jwt-test-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    test_rfc_examples();
    test_attacks();
    test_key_sets();
    test_backstage();
    printf("%d failure(s)\n", failures);
    return failures == 0 ? 0 : 1;
}
