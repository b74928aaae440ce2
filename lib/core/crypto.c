#include "gw/crypto.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char hexdigits[] = "0123456789abcdef";

/* The 8-4-4-4-12 text form of 16 bytes. */
static void uuid_format(const unsigned char *b, char *out)
{
    size_t pos = 0;

    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[pos++] = '-';
        out[pos++] = hexdigits[b[i] >> 4];
        out[pos++] = hexdigits[b[i] & 15];
    }
    out[pos] = '\0';
}

int gw_uuid_v4(char *out, struct gw_error *err)
{
    unsigned char b[16];

    if (RAND_bytes(b, sizeof(b)) != 1)
        return gw_error_set(err, GW_EIO, true, "RAND_bytes failed");
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
    return 0;
}

void gw_uuid_v7_at(const struct timespec *at, const unsigned char rnd[8], char *out)
{
    unsigned char b[16];
    uint64_t ms = (uint64_t)at->tv_sec * 1000u + (uint64_t)at->tv_nsec / 1000000u;
    /* RFC 9562 section 6.2, method 3: rand_a holds the fraction of the
     * millisecond in 1/4096ths, so ids made in one process sort by time to
     * about a quarter of a microsecond. */
    unsigned frac = (unsigned)(((uint64_t)at->tv_nsec % 1000000u) * 4096u / 1000000u);

    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (frac >> 8));
    b[7] = (unsigned char)(frac & 0xff);
    memcpy(b + 8, rnd, 8);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}

int gw_uuid_v7(char *out, struct gw_error *err)
{
    struct timespec now;
    unsigned char rnd[8];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return gw_error_set(err, GW_EIO, true, "RAND_bytes failed");
    clock_gettime(CLOCK_REALTIME, &now);
    gw_uuid_v7_at(&now, rnd, out);
    return 0;
}

int gw_uuid_valid(const char *s)
{
    if (s == NULL || strlen(s) != GW_UUID_LEN)
        return 0;
    for (int i = 0; i < GW_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

void gw_sha256_hex(const void *data, size_t len, char *out)
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hexdigits[md[i] >> 4];
        out[2 * i + 1] = hexdigits[md[i] & 15];
    }
    out[2 * mdlen] = '\0';
}

void gw_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len, char *out)
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (HMAC(EVP_sha256(), key, (int)key_len, data, len, md, &mdlen) == NULL)
        mdlen = 0;
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hexdigits[md[i] >> 4];
        out[2 * i + 1] = hexdigits[md[i] & 15];
    }
    out[2 * mdlen] = '\0';
}

int gw_token_generate(char *out, struct gw_error *err)
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char b[32];
    size_t pos = 0;
    unsigned int acc = 0;
    int bits = 0;

    if (RAND_bytes(b, sizeof(b)) != 1)
        return gw_error_set(err, GW_EIO, true, "RAND_bytes failed");
    memcpy(out, "gwt_", 4);
    pos = 4;
    for (size_t i = 0; i < sizeof(b); i++) {
        acc = (acc << 8) | b[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[pos++] = b64url[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[pos++] = b64url[(acc << (6 - bits)) & 63];
    out[pos] = '\0';
    return 0;
}

static void b64url(const unsigned char *b, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)b[i] << 16 | (unsigned)b[i + 1] << 8 | b[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)b[i] << 16;
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)b[i] << 16 | (unsigned)b[i + 1] << 8;
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
    }
    out[o] = '\0';
}

int gw_random_b64url(size_t nbytes, char *out, struct gw_error *err)
{
    unsigned char b[64];
    if (nbytes == 0 || nbytes > sizeof(b))
        return gw_error_set(err, GW_EINVAL, false, "1 to 64 random bytes");
    if (RAND_bytes(b, (int)nbytes) != 1)
        return gw_error_set(err, GW_EIO, true, "RAND_bytes failed");
    b64url(b, nbytes, out);
    return 0;
}

void gw_sha256_b64url(const void *data, size_t len, char *out)
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    b64url(md, sizeof(md), out);
}

int gw_const_eq(const void *a, const void *b, size_t len)
{
    const unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < len; i++)
        d |= (unsigned char)(x[i] ^ y[i]);
    return d == 0;
}
