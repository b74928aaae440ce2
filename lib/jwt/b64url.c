/*
 * Strict base64url and JWS algorithm names. Strictness matters: a lenient
 * decoder lets two different strings decode to the same header or payload,
 * which breaks the "what was signed is what was read" property.
 */
#include <stdlib.h>
#include <string.h>

#include "gw/jwt.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int value_of(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

unsigned char *gw_b64url_decode(const char *s, size_t len, size_t *out_len)
{
    /* A single leftover character carries only 6 bits: never a whole byte. */
    if (len % 4 == 1)
        return NULL;
    size_t n = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    unsigned char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = value_of((unsigned char)s[i]);
        if (v < 0)
            goto invalid;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The unused low bits of the last character must be zero (RFC 4648
     * section 3.5), or several encodings would name the same bytes. */
    if (acc != 0)
        goto invalid;
    out[o] = '\0';
    *out_len = o;
    return out;

invalid:
    free(out);
    return NULL;
}

char *gw_b64url_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = malloc(len / 3 * 4 + 4 + 1), *o = out;
    if (out == NULL)
        return NULL;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
    }
    *o = '\0';
    return out;
}

static const struct {
    const char *name;
    unsigned bit;
} algs[] = {
    {"HS256", GW_JWA_HS256}, {"HS384", GW_JWA_HS384}, {"HS512", GW_JWA_HS512},
    {"RS256", GW_JWA_RS256}, {"RS384", GW_JWA_RS384}, {"RS512", GW_JWA_RS512},
    {"PS256", GW_JWA_PS256}, {"PS384", GW_JWA_PS384}, {"PS512", GW_JWA_PS512},
    {"ES256", GW_JWA_ES256}, {"ES384", GW_JWA_ES384}, {"ES512", GW_JWA_ES512},
    {"EdDSA", GW_JWA_EDDSA},
};

unsigned gw_jwa_from_name(const char *name)
{
    if (name == NULL)
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(algs); i++)
        if (strcmp(algs[i].name, name) == 0)
            return algs[i].bit;
    return 0;
}

const char *gw_jwa_name(unsigned alg)
{
    for (size_t i = 0; i < ARRAY_SIZE(algs); i++)
        if (algs[i].bit == alg)
            return algs[i].name;
    return NULL;
}

bool gw_jwt_is_jws_shaped(const char *token, size_t len)
{
    /* Only the two dots: a malformed segment is then reported by the
     * verifier ("malformed token") rather than looked up as an API token,
     * which never contains a dot. */
    size_t dots = 0;
    for (size_t i = 0; i < len; i++)
        dots += token[i] == '.';
    return dots == 2;
}
