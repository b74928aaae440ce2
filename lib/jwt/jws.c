/*
 * JWS compact serialization verification. The order of checks is chosen so
 * that nothing from the token decides how it is verified beyond picking an
 * allowed algorithm and a configured key that both agree on.
 */
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_int.h"

#define JWS_MAX_LEN (16 * 1024)

void gw_jws_finish(struct gw_jws *jws)
{
    if (jws == NULL)
        return;
    json_decref(jws->header);
    free(jws->payload);
    memset(jws, 0, sizeof(*jws));
}

static const EVP_MD *md_of(unsigned alg)
{
    if (alg & (GW_JWA_HS256 | GW_JWA_RS256 | GW_JWA_PS256 | GW_JWA_ES256))
        return EVP_sha256();
    if (alg & (GW_JWA_HS384 | GW_JWA_RS384 | GW_JWA_PS384 | GW_JWA_ES384))
        return EVP_sha384();
    if (alg & (GW_JWA_HS512 | GW_JWA_RS512 | GW_JWA_PS512 | GW_JWA_ES512))
        return EVP_sha512();
    return NULL;
}

static bool verify_hmac(const struct gw__jwt_jwk *k, unsigned alg, const unsigned char *in,
                        size_t inlen, const unsigned char *sig, size_t siglen)
{
    const EVP_MD *md = md_of(alg);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t hlen = (size_t)EVP_MD_get_size(md);

    /* RFC 7518 3.2: a key at least as long as the hash output. */
    if (k->secret_len < hlen || siglen != hlen)
        return false;
    if (HMAC(md, k->secret, (int)k->secret_len, in, inlen, mac, &maclen) == NULL)
        return false;
    bool ok = maclen == siglen && CRYPTO_memcmp(mac, sig, siglen) == 0;
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok;
}

static bool digest_verify(EVP_PKEY *pkey, const EVP_MD *md, int pss, const unsigned char *in,
                          size_t inlen, const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = false;

    if (ctx == NULL)
        return false;
    if (EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pkey) != 1)
        goto out;
    if (pss) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1)
            goto out;
    } else if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
            goto out;
    }
    ok = EVP_DigestVerify(ctx, sig, siglen, in, inlen) == 1;
out:
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* JOSE ECDSA signatures are R || S, each exactly the field size (RFC 7518
 * 3.4); OpenSSL wants DER, which is built here and never taken from the
 * token. */
static bool verify_ecdsa(const struct gw__jwt_jwk *k, unsigned alg, const unsigned char *in,
                         size_t inlen, const unsigned char *sig, size_t siglen)
{
    size_t half = k->ec_field_len;
    unsigned char *der = NULL;
    bool ok = false;

    if (siglen != 2 * half)
        return false;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    int derlen = i2d_ECDSA_SIG(es, &der);
    if (derlen <= 0)
        goto out;
    ok = digest_verify(k->pkey, md_of(alg), 0, in, inlen, der, (size_t)derlen);
out:
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    return ok;
}

static bool verify_with(const struct gw__jwt_jwk *k, unsigned alg, const unsigned char *in,
                        size_t inlen, const unsigned char *sig, size_t siglen)
{
    if ((k->algs & alg) == 0)
        return false;
    switch (k->kind) {
    case JWK_OCT:
        return verify_hmac(k, alg, in, inlen, sig, siglen);
    case JWK_RSA:
        if (siglen != (size_t)EVP_PKEY_get_size(k->pkey))
            return false;
        return digest_verify(k->pkey, md_of(alg),
                             (alg & (GW_JWA_PS256 | GW_JWA_PS384 | GW_JWA_PS512)) != 0, in, inlen,
                             sig, siglen);
    case JWK_EC:
        return verify_ecdsa(k, alg, in, inlen, sig, siglen);
    case JWK_OKP:
        if (siglen != (EVP_PKEY_get_base_id(k->pkey) == EVP_PKEY_ED25519 ? 64u : 114u))
            return false;
        return digest_verify(k->pkey, NULL, 0, in, inlen, sig, siglen);
    }
    return false;
}

/* Header parameters that would let the token choose its own key or
 * processing rules. */
static const char *const refused_params[] = {"jku", "x5u", "jwk", "x5c", "crit", "b64"};

static json_t *decode_json_segment(const char *s, size_t len)
{
    size_t n;
    unsigned char *b = gw_b64url_decode(s, len, &n);
    if (b == NULL)
        return NULL;
    json_t *j = json_loadb((const char *)b, n, JSON_REJECT_DUPLICATES, NULL);
    free(b);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Splits at exactly two dots; false otherwise. */
static bool split3(const char *c, size_t len, size_t *dot1, size_t *dot2)
{
    const char *a = memchr(c, '.', len);
    if (a == NULL)
        return false;
    const char *b = memchr(a + 1, '.', len - (size_t)(a + 1 - c));
    if (b == NULL || memchr(b + 1, '.', len - (size_t)(b + 1 - c)) != NULL)
        return false;
    *dot1 = (size_t)(a - c);
    *dot2 = (size_t)(b - c);
    return true;
}

json_t *gw_jws_peek_header(const char *compact, size_t len)
{
    size_t d1, d2;
    if (len > JWS_MAX_LEN || !split3(compact, len, &d1, &d2))
        return NULL;
    return decode_json_segment(compact, d1);
}

json_t *gw_jws_peek_payload(const char *compact, size_t len)
{
    size_t d1, d2;
    if (len > JWS_MAX_LEN || !split3(compact, len, &d1, &d2))
        return NULL;
    return decode_json_segment(compact + d1 + 1, d2 - d1 - 1);
}

int gw_jws_verify(const char *compact, size_t len, const struct gw_jwks *keys, unsigned allowed,
                  struct gw_jws *out, struct gw_error *err)
{
    size_t d1, d2, siglen = 0, plen = 0;
    json_t *header = NULL;
    unsigned char *payload = NULL, *sig = NULL;
    const char *kid = NULL;
    unsigned alg;
    int rc = GW_EAUTH;

    memset(out, 0, sizeof(*out));
    if (len > JWS_MAX_LEN)
        return gw_error_set(err, GW_EAUTH, false, "token too large");
    if (!split3(compact, len, &d1, &d2))
        return gw_error_set(err, GW_EAUTH, false, "malformed token");
    header = decode_json_segment(compact, d1);
    if (header == NULL) {
        gw_error_set(err, GW_EAUTH, false, "malformed token header");
        goto out;
    }
    alg = gw_jwa_from_name(json_string_value(json_object_get(header, "alg")));
    if (alg == 0 || (alg & allowed) == 0) {
        gw_error_set(err, GW_EAUTH, false, "algorithm not allowed");
        goto out;
    }
    for (size_t i = 0; i < ARRAY_SIZE(refused_params); i++) {
        if (json_object_get(header, refused_params[i]) != NULL) {
            gw_error_set(err, GW_EAUTH, false, "header parameter \"%s\" is not accepted",
                         refused_params[i]);
            goto out;
        }
    }
    json_t *kidv = json_object_get(header, "kid");
    if (kidv != NULL && !json_is_string(kidv)) {
        gw_error_set(err, GW_EAUTH, false, "malformed token header");
        goto out;
    }
    kid = json_string_value(kidv);
    payload = gw_b64url_decode(compact + d1 + 1, d2 - d1 - 1, &plen);
    sig = gw_b64url_decode(compact + d2 + 1, len - d2 - 1, &siglen);
    if (payload == NULL || sig == NULL) {
        gw_error_set(err, GW_EAUTH, false, "malformed token encoding");
        goto out;
    }

    const unsigned char *in = (const unsigned char *)compact;
    bool found = false, verified = false;
    for (size_t i = 0; keys != NULL && i < keys->n && !verified; i++) {
        const struct gw__jwt_jwk *k = &keys->keys[i];
        if (kid != NULL && (k->kid == NULL || strcmp(k->kid, kid) != 0))
            continue;
        if (kid == NULL && (k->algs & alg) == 0)
            continue;
        found = true;
        if ((k->algs & alg) == 0) {
            gw_error_set(err, GW_EAUTH, false, "the key does not allow this algorithm");
            goto out;
        }
        verified = verify_with(k, alg, in, d2, sig, siglen);
    }
    if (!found) {
        rc = gw_error_set(err, kid != NULL ? GW_ENOTFOUND : GW_EAUTH, false,
                          kid != NULL ? "unknown key id" : "no key for this algorithm");
        goto out;
    }
    if (!verified) {
        gw_error_set(err, GW_EAUTH, false, "signature invalid");
        goto out;
    }
    out->header = header;
    out->payload = payload;
    out->payload_len = plen;
    out->alg = alg;
    free(sig);
    return 0;

out:
    json_decref(header);
    free(payload);
    free(sig);
    return rc;
}
