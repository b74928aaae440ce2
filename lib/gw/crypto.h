/*
 * Small cryptographic helpers on OpenSSL's libcrypto: random identifiers,
 * SHA-256, HMAC-SHA256 and API token generation. Thread-safe.
 */
#ifndef GW_CRYPTO_H
#define GW_CRYPTO_H

#include <stddef.h>
#include <time.h>

#include "gw/error.h"

#define GW_UUID_LEN       36
#define GW_SHA256_HEX_LEN 64
#define GW_TOKEN_LEN      47 /* "gwt_" + 43 base64url characters (32 random bytes) */

/* Writes a random (version 4) UUID and a NUL into out[GW_UUID_LEN + 1]. */
int gw_uuid_v4(char *out, struct gw_error *err);

/* Writes a time-ordered (version 7, RFC 9562) UUID and a NUL into
 * out[GW_UUID_LEN + 1]: 48 bits of Unix milliseconds, 12 bits of the
 * millisecond's fraction, 62 random bits. Run ids are made with it, so that
 * new rows land at the right edge of the indexes keyed by run id
 * (docs/decisions/0079-time-ordered-run-ids.md). The clock is the wall clock;
 * ids are unique by their random bits, not by order. */
int gw_uuid_v7(char *out, struct gw_error *err);

/* gw_uuid_v7 for the time `at` and the random bytes `rnd` (whose first two
 * bits are replaced by the variant), into out[GW_UUID_LEN + 1]. */
void gw_uuid_v7_at(const struct timespec *at, const unsigned char rnd[8], char *out);

/* Writes the lower-case hex SHA-256 of data and a NUL into out[65]. */
void gw_sha256_hex(const void *data, size_t len, char *out);

/* Writes the lower-case hex HMAC-SHA256 of data under key and a NUL into
 * out[65] (webhook signatures). */
void gw_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len, char *out);

/* Writes a new API token secret and a NUL into out[GW_TOKEN_LEN + 1]. Only
 * its SHA-256 is ever stored. */
int gw_token_generate(char *out, struct gw_error *err);

/* Writes `nbytes` (at most 64) random bytes as unpadded base64url and a NUL
 * into out (at least 4 * nbytes / 3 + 2 bytes): session ids, CSRF tokens,
 * OIDC state, nonce and PKCE verifier, login codes. */
int gw_random_b64url(size_t nbytes, char *out, struct gw_error *err);

/* The unpadded base64url SHA-256 of data and a NUL into out[44] (PKCE S256). */
void gw_sha256_b64url(const void *data, size_t len, char *out);

/* True when the `len` bytes at a and b are equal, in time that does not
 * depend on where they differ. */
int gw_const_eq(const void *a, const void *b, size_t len);

/* True when `s` has the shape of a UUID (hex digits and dashes). */
int gw_uuid_valid(const char *s);

#endif
