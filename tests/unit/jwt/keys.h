/* Test helpers: keys made with OpenSSL, JWKs from them, signed tokens. */
#ifndef GW_TEST_JWT_KEYS_H
#define GW_TEST_JWT_KEYS_H

#include <openssl/evp.h>

#include "gw/jwt.h"

struct tkey {
    EVP_PKEY *pkey;
    char kid[32];
    json_t *jwk; /* public JWK */
};

/* type: "P-256", "P-384", "P-521", "RSA", "Ed25519" */
void tkey_init(struct tkey *k, const char *type, const char *kid);
void tkey_finish(struct tkey *k);
/* A JWKS text of the given keys' public JWKs (malloc'ed). */
char *tkeys_jwks(struct tkey **keys, size_t n);
/* Signs header.payload with `k` for `alg` (JOSE raw r||s for ECDSA unless
 * `der` is set). header/payload are JSON texts. Returns a malloc'ed JWS. */
char *tsign(struct tkey *k, const char *alg, const char *header, const char *payload, int der);
/* An HS256 token keyed by arbitrary bytes. */
char *tsign_hmac(const void *key, size_t keylen, const char *header, const char *payload);

#endif
