/* Internals shared by lib/jwt: the parsed key representation. */
#ifndef GW_JWT_INT_H
#define GW_JWT_INT_H

#include <openssl/evp.h>

#include "gw/jwt.h"

enum gw__jwt_jwk_kind { JWK_RSA, JWK_EC, JWK_OKP, JWK_OCT };

struct gw__jwt_jwk {
    char *kid; /* NULL when the JWK has none */
    enum gw__jwt_jwk_kind kind;
    unsigned algs;         /* algorithms this key may verify (kty/crv, narrowed by "alg") */
    EVP_PKEY *pkey;        /* RSA, EC, OKP */
    unsigned char *secret; /* oct */
    size_t secret_len;
    size_t ec_field_len; /* EC: bytes of one coordinate (32, 48, 66) */
};

struct gw_jwks {
    struct gw__jwt_jwk *keys;
    size_t n;
    size_t skipped;
};

#endif
