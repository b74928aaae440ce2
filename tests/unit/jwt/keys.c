#include "keys.h"

#include <assert.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

static json_t *b64_bn(EVP_PKEY *p, const char *param, int pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    assert(EVP_PKEY_get_bn_param(p, param, &bn) == 1);
    int n = pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    BN_free(bn);
    char *s = gw_b64url_encode(buf, (size_t)n);
    json_t *j = json_string(s);
    free(s);
    return j;
}

void tkey_init(struct tkey *k, const char *type, const char *kid)
{
    memset(k, 0, sizeof(*k));
    snprintf(k->kid, sizeof(k->kid), "%s", kid);
    k->jwk = json_object();
    json_object_set_new(k->jwk, "kid", json_string(kid));
    if (strcmp(type, "RSA") == 0) {
        k->pkey = EVP_RSA_gen(2048);
        json_object_set_new(k->jwk, "kty", json_string("RSA"));
        json_object_set_new(k->jwk, "n", b64_bn(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0));
        json_object_set_new(k->jwk, "e", b64_bn(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0));
    } else if (strcmp(type, "Ed25519") == 0) {
        unsigned char pub[32];
        size_t len = sizeof(pub);
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert(EVP_PKEY_get_raw_public_key(k->pkey, pub, &len) == 1);
        char *x = gw_b64url_encode(pub, len);
        json_object_set_new(k->jwk, "kty", json_string("OKP"));
        json_object_set_new(k->jwk, "crv", json_string("Ed25519"));
        json_object_set_new(k->jwk, "x", json_string(x));
        free(x);
    } else {
        int field = strcmp(type, "P-256") == 0 ? 32 : strcmp(type, "P-384") == 0 ? 48 : 66;
        k->pkey = EVP_EC_gen(type);
        json_object_set_new(k->jwk, "kty", json_string("EC"));
        json_object_set_new(k->jwk, "crv", json_string(type));
        json_object_set_new(k->jwk, "x", b64_bn(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, field));
        json_object_set_new(k->jwk, "y", b64_bn(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, field));
    }
    assert(k->pkey != NULL);
}

void tkey_finish(struct tkey *k)
{
    EVP_PKEY_free(k->pkey);
    json_decref(k->jwk);
}

char *tkeys_jwks(struct tkey **keys, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(arr, keys[i]->jwk);
    json_t *set = json_pack("{so}", "keys", arr);
    char *s = json_dumps(set, JSON_COMPACT);
    json_decref(set);
    return s;
}

static char *join(const char *header, const char *payload, char **input)
{
    char *h = gw_b64url_encode(header, strlen(header));
    char *p = gw_b64url_encode(payload, strlen(payload));
    size_t len = strlen(h) + strlen(p) + 2;
    *input = malloc(len);
    snprintf(*input, len, "%s.%s", h, p);
    free(h);
    free(p);
    return *input;
}

static char *finish(char *input, const unsigned char *sig, size_t siglen)
{
    char *s = gw_b64url_encode(sig, siglen);
    size_t len = strlen(input) + strlen(s) + 2;
    char *out = malloc(len);
    snprintf(out, len, "%s.%s", input, s);
    free(s);
    free(input);
    return out;
}

char *tsign(struct tkey *k, const char *alg, const char *header, const char *payload, int der)
{
    char *input;
    join(header, payload, &input);
    const EVP_MD *md = NULL;
    if (strstr(alg, "256"))
        md = EVP_sha256();
    else if (strstr(alg, "384"))
        md = EVP_sha384();
    else if (strstr(alg, "512"))
        md = EVP_sha512();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert(EVP_DigestSignInit(ctx, &pctx, md, NULL, k->pkey) == 1);
    if (alg[0] == 'P') {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    size_t siglen = 0;
    assert(EVP_DigestSign(ctx, NULL, &siglen, (unsigned char *)input, strlen(input)) == 1);
    unsigned char *sig = malloc(siglen);
    assert(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)input, strlen(input)) == 1);
    EVP_MD_CTX_free(ctx);
    if (alg[0] == 'E' && alg[1] == 'S' && !der) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        int field = strcmp(alg, "ES256") == 0 ? 32 : strcmp(alg, "ES384") == 0 ? 48 : 66;
        unsigned char raw[132];
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, field);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + field, field);
        ECDSA_SIG_free(es);
        char *out = finish(input, raw, 2 * (size_t)field);
        free(sig);
        return out;
    }
    char *out = finish(input, sig, siglen);
    free(sig);
    return out;
}

char *tsign_hmac(const void *key, size_t keylen, const char *header, const char *payload)
{
    char *input;
    unsigned char mac[32];
    unsigned int len = 0;
    join(header, payload, &input);
    HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)input, strlen(input), mac, &len);
    return finish(input, mac, len);
}
