/*
 * JWK and JWK Set parsing (RFC 7517, RFC 7518 section 6, RFC 8037) into
 * OpenSSL keys. A set is all-or-nothing for anything that smells of a
 * misconfiguration (private keys, duplicate kids, mixed symmetric and
 * asymmetric keys, weak or malformed keys): half-loading such a set would
 * hide the mistake. Keys meant for something else (encryption, another
 * curve) are skipped, since real provider sets often carry them.
 */
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_int.h"

#define RSA_MIN_BITS  2048
#define RSA_MAX_BITS  16384
#define JWKS_MAX_KEYS 256
#define JWKS_MAX_FILE (1 << 20)

enum parse_result { KEY_OK = 0, KEY_SKIP = 1 };

static void jwk_clear(struct gw__jwt_jwk *k)
{
    free(k->kid);
    EVP_PKEY_free(k->pkey);
    if (k->secret != NULL)
        OPENSSL_cleanse(k->secret, k->secret_len);
    free(k->secret);
    memset(k, 0, sizeof(*k));
}

void gw_jwks_destroy(struct gw_jwks *ks)
{
    if (ks == NULL)
        return;
    for (size_t i = 0; i < ks->n; i++)
        jwk_clear(&ks->keys[i]);
    free(ks->keys);
    free(ks);
}

size_t gw_jwks_count(const struct gw_jwks *ks)
{
    return ks != NULL ? ks->n : 0;
}

size_t gw_jwks_skipped(const struct gw_jwks *ks)
{
    return ks != NULL ? ks->skipped : 0;
}

bool gw_jwks_has_kid(const struct gw_jwks *ks, const char *kid)
{
    for (size_t i = 0; ks != NULL && kid != NULL && i < ks->n; i++)
        if (ks->keys[i].kid != NULL && strcmp(ks->keys[i].kid, kid) == 0)
            return true;
    return false;
}

/* Decodes a base64url member into bytes; NULL (with err set) when missing
 * or not strict base64url. */
static unsigned char *member_bytes(const json_t *jwk, const char *name, size_t *len,
                                   struct gw_error *err)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    if (s == NULL) {
        gw_error_set(err, GW_EPARSE, false, "JWK member \"%s\" is missing", name);
        return NULL;
    }
    unsigned char *b = gw_b64url_decode(s, strlen(s), len);
    if (b == NULL)
        gw_error_set(err, GW_EPARSE, false, "JWK member \"%s\" is not base64url", name);
    return b;
}

/* The ROCA fingerprint (CVE-2017-15361): moduli made by the affected
 * Infineon library are, modulo every small prime, in the subgroup generated
 * by 65537. A random modulus passes this test for all of these primes with
 * negligible probability. The subgroups are computed here, not tabulated. */
static bool roca_fingerprint(const BIGNUM *n)
{
    static const unsigned primes[] = {
        3,  5,  7,  11, 13, 17,  19,  23,  29,  31,  37,  41,  43,  47,  53,  59,  61,  67,  71,
        73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167};
    for (size_t i = 0; i < ARRAY_SIZE(primes); i++) {
        unsigned p = primes[i];
        BN_ULONG r = BN_mod_word(n, p);
        if (r == (BN_ULONG)-1)
            return false;
        unsigned g = 65537 % p, x = 1;
        bool in_subgroup = false;
        do {
            if (x == r) {
                in_subgroup = true;
                break;
            }
            x = x * g % p;
        } while (x != 1);
        if (!in_subgroup)
            return false;
    }
    return true;
}

static int build_pkey(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **out)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    int ok = params != NULL && ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
             EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (!ok)
        return -1;
    /* Point on the curve, not at infinity, right order; sane RSA values. */
    EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL);
    ok = check != NULL && EVP_PKEY_public_check(check) == 1;
    EVP_PKEY_CTX_free(check);
    if (!ok) {
        EVP_PKEY_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

static int parse_rsa(const json_t *jwk, struct gw__jwt_jwk *k, struct gw_error *err)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
    size_t nlen, elen;
    unsigned char *nb = NULL, *eb = NULL;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    int rc = GW_EPARSE;

    for (size_t i = 0; i < ARRAY_SIZE(private_members); i++)
        if (json_object_get(jwk, private_members[i]) != NULL)
            return gw_error_set(err, GW_EPARSE, false,
                                "the key set holds RSA private key material");
    nb = member_bytes(jwk, "n", &nlen, err);
    eb = member_bytes(jwk, "e", &elen, err);
    if (nb == NULL || eb == NULL)
        goto out;
    n = BN_bin2bn(nb, (int)nlen, NULL);
    e = BN_bin2bn(eb, (int)elen, NULL);
    if (n == NULL || e == NULL) {
        rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto out;
    }
    int bits = BN_num_bits(n);
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
        gw_error_set(err, GW_EPARSE, false, "RSA modulus of %d bits (%d to %d accepted)", bits,
                     RSA_MIN_BITS, RSA_MAX_BITS);
        goto out;
    }
    if (!BN_is_odd(n) || !BN_is_odd(e) || BN_num_bits(e) < 2 || BN_num_bits(e) > 64 ||
        BN_cmp(e, n) >= 0) {
        gw_error_set(err, GW_EPARSE, false, "RSA public exponent or modulus is invalid");
        goto out;
    }
    if (roca_fingerprint(n)) {
        gw_error_set(err, GW_EPARSE, false,
                     "RSA modulus has the ROCA fingerprint (CVE-2017-15361): weak key");
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
        build_pkey("RSA", bld, &k->pkey) < 0) {
        gw_error_set(err, GW_EPARSE, false, "RSA key is invalid");
        goto out;
    }
    k->kind = JWK_RSA;
    k->algs =
        GW_JWA_RS256 | GW_JWA_RS384 | GW_JWA_RS512 | GW_JWA_PS256 | GW_JWA_PS384 | GW_JWA_PS512;
    rc = KEY_OK;
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(nb);
    free(eb);
    return rc;
}

static int parse_ec(const json_t *jwk, struct gw__jwt_jwk *k, struct gw_error *err)
{
    static const struct {
        const char *crv;
        size_t len;
        unsigned alg;
    } curves[] = {
        {"P-256", 32, GW_JWA_ES256}, {"P-384", 48, GW_JWA_ES384}, {"P-521", 66, GW_JWA_ES512}};
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    size_t ci, xlen, ylen;
    unsigned char *x = NULL, *y = NULL, point[1 + 2 * 66];
    OSSL_PARAM_BLD *bld = NULL;
    int rc = GW_EPARSE;

    if (crv == NULL)
        return gw_error_set(err, GW_EPARSE, false, "EC key without \"crv\"");
    for (ci = 0; ci < ARRAY_SIZE(curves); ci++)
        if (strcmp(curves[ci].crv, crv) == 0)
            break;
    if (ci == ARRAY_SIZE(curves))
        return KEY_SKIP; /* secp256k1 and friends: no JWS algorithm here */
    if (json_object_get(jwk, "d") != NULL)
        return gw_error_set(err, GW_EPARSE, false, "the key set holds EC private key material");
    x = member_bytes(jwk, "x", &xlen, err);
    y = member_bytes(jwk, "y", &ylen, err);
    if (x == NULL || y == NULL)
        goto out;
    /* RFC 7518 6.2.1.2: the coordinates are the full field size. */
    if (xlen != curves[ci].len || ylen != curves[ci].len) {
        gw_error_set(err, GW_EPARSE, false, "EC coordinates are not %zu bytes", curves[ci].len);
        goto out;
    }
    point[0] = 0x04;
    memcpy(point + 1, x, xlen);
    memcpy(point + 1 + xlen, y, ylen);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, crv, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * xlen) != 1 ||
        build_pkey("EC", bld, &k->pkey) < 0) {
        gw_error_set(err, GW_EPARSE, false, "EC public key is not a point of %s", crv);
        goto out;
    }
    k->kind = JWK_EC;
    k->algs = curves[ci].alg;
    k->ec_field_len = curves[ci].len;
    rc = KEY_OK;
out:
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return rc;
}

static int parse_okp(const json_t *jwk, struct gw__jwt_jwk *k, struct gw_error *err)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    int type;
    size_t want, xlen;

    if (crv == NULL)
        return gw_error_set(err, GW_EPARSE, false, "OKP key without \"crv\"");
    if (strcmp(crv, "Ed25519") == 0) {
        type = EVP_PKEY_ED25519;
        want = 32;
    } else if (strcmp(crv, "Ed448") == 0) {
        type = EVP_PKEY_ED448;
        want = 57;
    } else {
        return KEY_SKIP; /* X25519/X448 are for key agreement */
    }
    if (json_object_get(jwk, "d") != NULL)
        return gw_error_set(err, GW_EPARSE, false, "the key set holds OKP private key material");
    unsigned char *x = member_bytes(jwk, "x", &xlen, err);
    if (x == NULL)
        return GW_EPARSE;
    if (xlen != want) {
        free(x);
        return gw_error_set(err, GW_EPARSE, false, "%s public key is not %zu bytes", crv, want);
    }
    k->pkey = EVP_PKEY_new_raw_public_key(type, NULL, x, xlen);
    free(x);
    if (k->pkey == NULL)
        return gw_error_set(err, GW_EPARSE, false, "%s public key is invalid", crv);
    k->kind = JWK_OKP;
    k->algs = GW_JWA_EDDSA;
    return KEY_OK;
}

static int parse_oct(const json_t *jwk, struct gw__jwt_jwk *k, struct gw_error *err)
{
    k->secret = member_bytes(jwk, "k", &k->secret_len, err);
    if (k->secret == NULL)
        return GW_EPARSE;
    if (k->secret_len == 0)
        return gw_error_set(err, GW_EPARSE, false, "empty HMAC key");
    k->kind = JWK_OCT;
    k->algs = GW_JWA_HMAC;
    return KEY_OK;
}

/* Fills `k` from one JWK: KEY_OK, KEY_SKIP (not a JWS verification key) or
 * a negative error that refuses the whole set. */
static int parse_key(const json_t *jwk, unsigned flags, struct gw__jwt_jwk *k, struct gw_error *err)
{
    const char *kty, *use, *alg;
    json_t *v;
    unsigned alg_bit = 0;
    int rc;

    if (!json_is_object(jwk))
        return gw_error_set(err, GW_EPARSE, false, "a JWK is not a JSON object");
    kty = json_string_value(json_object_get(jwk, "kty"));
    if (kty == NULL)
        return gw_error_set(err, GW_EPARSE, false, "a JWK has no \"kty\"");
    v = json_object_get(jwk, "kid");
    if (v != NULL && !json_is_string(v))
        return gw_error_set(err, GW_EPARSE, false, "a JWK \"kid\" is not a string");
    v = json_object_get(jwk, "use");
    if (v != NULL && !json_is_string(v))
        return gw_error_set(err, GW_EPARSE, false, "a JWK \"use\" is not a string");
    use = json_string_value(v);
    v = json_object_get(jwk, "alg");
    if (v != NULL && !json_is_string(v))
        return gw_error_set(err, GW_EPARSE, false, "a JWK \"alg\" is not a string");
    alg = json_string_value(v);
    v = json_object_get(jwk, "key_ops");
    if (v != NULL) {
        size_t i;
        json_t *op;
        bool verify = false;
        if (!json_is_array(v))
            return gw_error_set(err, GW_EPARSE, false, "a JWK \"key_ops\" is not an array");
        json_array_foreach(v, i, op)
        {
            if (!json_is_string(op))
                return gw_error_set(err, GW_EPARSE, false,
                                    "a JWK \"key_ops\" item is not a string");
            if (strcmp(json_string_value(op), "verify") == 0)
                verify = true;
        }
        if (!verify)
            return KEY_SKIP;
    }
    if (use != NULL && strcmp(use, "sig") != 0)
        return KEY_SKIP;
    if (alg != NULL) {
        /* "ES521" is a common misspelling of ES512 in published keys; the
         * curve check below still has to pass. */
        alg_bit = strcmp(alg, "ES521") == 0 ? GW_JWA_ES512 : gw_jwa_from_name(alg);
        if (alg_bit == 0)
            return KEY_SKIP; /* RSA-OAEP, A256GCM, ES224...: never a JWS key here */
    }

    if (strcmp(kty, "RSA") == 0)
        rc = parse_rsa(jwk, k, err);
    else if (strcmp(kty, "EC") == 0)
        rc = parse_ec(jwk, k, err);
    else if (strcmp(kty, "OKP") == 0)
        rc = parse_okp(jwk, k, err);
    else if (strcmp(kty, "oct") == 0 && (flags & GW_JWKS_ALLOW_SYMMETRIC))
        rc = parse_oct(jwk, k, err);
    else
        rc = KEY_SKIP;
    if (rc != KEY_OK)
        return rc;
    if (alg_bit != 0) {
        /* The key names its one algorithm: nothing else may use it, and an
         * "alg" of the wrong family (ES256 on an RSA key) is an error. */
        if ((k->algs & alg_bit) == 0)
            return gw_error_set(err, GW_EPARSE, false, "a JWK \"alg\" %s does not fit its key type",
                                alg);
        k->algs = alg_bit;
    }
    const char *kid = json_string_value(json_object_get(jwk, "kid"));
    if (kid != NULL && (k->kid = strdup(kid)) == NULL)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    return KEY_OK;
}

int gw_jwks_parse(const json_t *jwks, unsigned flags, struct gw_jwks **out, struct gw_error *err)
{
    json_t *single = NULL;
    const json_t *keys;
    struct gw_jwks *ks;
    int rc;

    *out = NULL;
    if (!json_is_object(jwks))
        return gw_error_set(err, GW_EPARSE, false, "the key set is not a JSON object");
    keys = json_object_get(jwks, "keys");
    if (keys == NULL) {
        single = json_array();
        if (single == NULL || json_array_append(single, (json_t *)jwks) < 0) {
            json_decref(single);
            return gw_error_set(err, GW_ENOMEM, false, "out of memory");
        }
        keys = single;
    } else if (!json_is_array(keys)) {
        return gw_error_set(err, GW_EPARSE, false, "\"keys\" is not an array");
    }
    if (json_array_size(keys) > JWKS_MAX_KEYS) {
        json_decref(single);
        return gw_error_set(err, GW_ELIMIT, false, "more than %d keys in the set", JWKS_MAX_KEYS);
    }
    ks = calloc(1, sizeof(*ks));
    if (ks != NULL)
        ks->keys = calloc(json_array_size(keys) + 1, sizeof(*ks->keys));
    if (ks == NULL || ks->keys == NULL) {
        rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto fail;
    }
    bool symmetric = false, asymmetric = false;
    for (size_t i = 0; i < json_array_size(keys); i++) {
        struct gw__jwt_jwk *k = &ks->keys[ks->n];
        rc = parse_key(json_array_get(keys, i), flags, k, err);
        if (rc < 0) {
            jwk_clear(k);
            goto fail;
        }
        if (rc == KEY_SKIP) {
            jwk_clear(k);
            ks->skipped++;
            continue;
        }
        if (k->kid != NULL && gw_jwks_has_kid(ks, k->kid)) {
            jwk_clear(k);
            rc = gw_error_set(err, GW_EPARSE, false, "two keys of the set share a \"kid\"");
            goto fail;
        }
        if (k->kind == JWK_OCT)
            symmetric = true;
        else
            asymmetric = true;
        ks->n++;
    }
    if (symmetric && asymmetric) {
        rc = gw_error_set(err, GW_EPARSE, false, "the key set mixes symmetric and asymmetric keys");
        goto fail;
    }
    json_decref(single);
    *out = ks;
    return 0;

fail:
    json_decref(single);
    gw_jwks_destroy(ks);
    return rc;
}

int gw_jwks_parse_text(const char *text, size_t len, unsigned flags, struct gw_jwks **out,
                       struct gw_error *err)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    *out = NULL;
    if (j == NULL)
        return gw_error_set(err, GW_EPARSE, false, "key set is not JSON: %s (line %d)", je.text,
                            je.line);
    int rc = gw_jwks_parse(j, flags, out, err);
    json_decref(j);
    return rc;
}

int gw_jwks_load_file(const char *path, unsigned flags, struct gw_jwks **out, struct gw_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (f == NULL)
        return gw_error_set(err, GW_EIO, false, "cannot open %s: %s", path, strerror(errno));
    buf = malloc(JWKS_MAX_FILE + 1);
    if (buf == NULL) {
        fclose(f);
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    }
    len = fread(buf, 1, JWKS_MAX_FILE + 1, f);
    if (ferror(f)) {
        rc = gw_error_set(err, GW_EIO, false, "cannot read %s", path);
    } else if (len > JWKS_MAX_FILE) {
        rc = gw_error_set(err, GW_ELIMIT, false, "%s is larger than %d bytes", path, JWKS_MAX_FILE);
    } else {
        rc = gw_jwks_parse_text(buf, len, flags, out, err);
        if (rc < 0 && err != NULL) {
            char msg[sizeof(err->message)];
            snprintf(msg, sizeof(msg), "%s", err->message);
            gw_error_set(err, rc, false, "%s: %s", path, msg);
        }
    }
    fclose(f);
    free(buf);
    return rc;
}
