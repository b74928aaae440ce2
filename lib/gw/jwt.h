/*
 * JSON Web Tokens: JWS compact verification (RFC 7515/7518/8037) on OpenSSL 3
 * EVP, JWK sets (RFC 7517), JWT claim checks (RFC 7519) and the broker's
 * issuer configuration that turns a verified token into an identity.
 *
 * Security rules built in (docs/decisions/0013-jwt-verification.md):
 * - the algorithm comes from the caller's allow-list; "none" and unknown
 *   names are never accepted; the key's type (and curve) must match the
 *   algorithm, and a JWK's own "alg", "use" and "key_ops" are respected, so
 *   an HMAC algorithm can never run with an RSA/EC/OKP public key;
 * - the verification key is chosen only from the configured set: "jku",
 *   "x5u", "jwk", "x5c" and "crit" in a header make the token invalid;
 * - base64url is strict (no padding, no foreign characters, canonical
 *   trailing bits); ECDSA signatures are the JOSE raw r||s form of exactly
 *   twice the field size (DER is refused); RSA keys are at least 2048 bits.
 *
 * Errors: functions return 0 or a negative GW_E* code. For token failures
 * the message in `err` is a short public reason ("token expired", "unknown
 * key id", "audience mismatch", ...) that never echoes token content, so it
 * can go into a 401 response as it is.
 *
 * Threading: gw_jwks_* and gw_jws_* are thread-safe on distinct objects and
 * a parsed gw_jwks is immutable. gw_jwt_auth_* run on the loop thread that
 * created the object.
 */
#ifndef GW_JWT_H
#define GW_JWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gw/error.h"

/* Algorithms, as bits of an allow-list. */
enum gw_jwa {
    GW_JWA_HS256 = 1u << 0,
    GW_JWA_HS384 = 1u << 1,
    GW_JWA_HS512 = 1u << 2,
    GW_JWA_RS256 = 1u << 3,
    GW_JWA_RS384 = 1u << 4,
    GW_JWA_RS512 = 1u << 5,
    GW_JWA_PS256 = 1u << 6,
    GW_JWA_PS384 = 1u << 7,
    GW_JWA_PS512 = 1u << 8,
    GW_JWA_ES256 = 1u << 9,
    GW_JWA_ES384 = 1u << 10,
    GW_JWA_ES512 = 1u << 11,
    GW_JWA_EDDSA = 1u << 12,
};
#define GW_JWA_HMAC       (GW_JWA_HS256 | GW_JWA_HS384 | GW_JWA_HS512)
#define GW_JWA_ASYMMETRIC (0x1fffu & ~GW_JWA_HMAC)

/* The bit for a JWS "alg" name (case-sensitive), 0 when unknown ("none"). */
unsigned gw_jwa_from_name(const char *name);
/* The name of one bit, or NULL. */
const char *gw_jwa_name(unsigned alg);

/* Strict base64url (RFC 7515 section 2): no padding, no whitespace, only
 * [A-Za-z0-9_-], zero trailing bits. Returns a malloc'ed buffer (with a NUL
 * after the data) or NULL when invalid or out of memory. */
unsigned char *gw_b64url_decode(const char *s, size_t len, size_t *out_len);
/* Encodes without padding into a malloc'ed NUL-terminated string. */
char *gw_b64url_encode(const void *data, size_t len);

/* ---- Key sets ---- */

struct gw_jwks;

/* Accept "oct" (HMAC) keys. Never for a set published by an identity
 * provider; a set may not mix symmetric and asymmetric keys either way. */
#define GW_JWKS_ALLOW_SYMMETRIC 1u

/* Parses a JWK Set ({"keys": [...]}) or a single JWK. The whole set is
 * refused (GW_EPARSE) for duplicate "kid"s, private key material in an
 * asymmetric key, a mix of symmetric and asymmetric keys, or a malformed,
 * weak (RSA < 2048 bits, e < 3 or even, ROCA-fingerprinted modulus) or
 * off-curve key. Keys that cannot verify JWS at all (another kty/crv, "use"
 * other than "sig", an "alg" that is not a JWS algorithm, "key_ops" without
 * "verify") are skipped and counted in gw_jwks_skipped(). */
int gw_jwks_parse(const json_t *jwks, unsigned flags, struct gw_jwks **out, struct gw_error *err);
int gw_jwks_parse_text(const char *text, size_t len, unsigned flags, struct gw_jwks **out,
                       struct gw_error *err);
/* Reads and parses a file (blocking). */
int gw_jwks_load_file(const char *path, unsigned flags, struct gw_jwks **out, struct gw_error *err);
void gw_jwks_destroy(struct gw_jwks *ks);
size_t gw_jwks_count(const struct gw_jwks *ks);
size_t gw_jwks_skipped(const struct gw_jwks *ks);
bool gw_jwks_has_kid(const struct gw_jwks *ks, const char *kid);

/* ---- JWS compact verification ---- */

struct gw_jws {
    json_t *header;         /* the protected header (owned) */
    unsigned char *payload; /* decoded payload, NUL-terminated (owned) */
    size_t payload_len;
    unsigned alg; /* the algorithm that verified */
};

/* Verifies a compact JWS against `keys` with an algorithm from `allowed`.
 * With a "kid" only that key is tried; without one, every key of the set
 * compatible with the algorithm. On success fills `out` (release with
 * gw_jws_finish). Returns GW_ENOTFOUND when the "kid" is not in the set
 * (the caller may refresh the set and retry), GW_EAUTH for every other
 * invalid token. */
int gw_jws_verify(const char *compact, size_t len, const struct gw_jwks *keys, unsigned allowed,
                  struct gw_jws *out, struct gw_error *err);
void gw_jws_finish(struct gw_jws *jws);

/* Decodes the header without verifying anything (to choose an issuer).
 * Returns a new reference or NULL. */
json_t *gw_jws_peek_header(const char *compact, size_t len);
/* Decodes the payload as a JSON object without verifying anything. */
json_t *gw_jws_peek_payload(const char *compact, size_t len);

/* ---- JWT claims ---- */

#define GW_JWT_MAX_LEEWAY_S 60

struct gw_jwt_expect {
    const char *issuer;   /* exact "iss", or NULL: not checked */
    const char *audience; /* must be "aud" or one of its array items, or NULL */
    const char *typ;      /* header "typ" (compared case-insensitively, with an
                             optional "application/" prefix), or NULL */
    int leeway_s;         /* clock skew allowed, capped at GW_JWT_MAX_LEEWAY_S */
    bool require_iat;     /* "iat" must be present ("exp" always is) */
    int64_t now;          /* seconds since the epoch */
};

/* Checks header "typ" and the claims of a verified token. `claims` must be
 * a JSON object. Returns GW_EAUTH with a public reason. */
int gw_jwt_check(const json_t *header, const json_t *claims, const struct gw_jwt_expect *ex,
                 struct gw_error *err);

/* ---- Issuers: configuration, key sources, identities ---- */

struct gw_jwt_auth;

#define GW_JWT_SUBJECT_MAX 256

struct gw_jwt_identity {
    char subject[GW_JWT_SUBJECT_MAX];  /* canonical (gw/subject.h): user:default/alice */
    json_t *teams;                     /* array of strings (owned) */
    char issuer[64];                   /* name of the issuer entry that accepted it */
    char delegate[GW_JWT_SUBJECT_MAX]; /* the plugin acting for the user, canonical
                                          ("plugin:default/<sub>"), or "" */
    int64_t expires_at;                /* earliest "exp" of the tokens involved */
};

void gw_jwt_identity_finish(struct gw_jwt_identity *id);

/* Loads the issuer configuration (a JSON file, format in docs/auth-backstage.md)
 * and every "jwks_file" it names. Blocking: call before the loop runs.
 * "jwks_url" sets are fetched on the loop (lib/gw/http_client.h) once
 * gw_jwt_auth_start() is called, then every "jwks_refresh_s". */
int gw_jwt_auth_load(uv_loop_t *loop, const char *path, struct gw_jwt_auth **out,
                     struct gw_error *err);
/* The same from parsed JSON; relative "jwks_file" paths resolve against
 * `base_dir` (may be NULL). Borrows `config`. */
int gw_jwt_auth_create(uv_loop_t *loop, const json_t *config, const char *base_dir,
                       struct gw_jwt_auth **out, struct gw_error *err);
/* Starts fetching and refreshing URL key sets. */
void gw_jwt_auth_start(struct gw_jwt_auth *a);
/* Stops timers and fetches (a fetch in flight is cancelled) and frees once the last handle has
 * closed; verifications still waiting for a key refresh get their callback with GW_ECLOSED first.
 * Accepts NULL. */
void gw_jwt_auth_destroy(struct gw_jwt_auth *a);

/* Verifies a bearer token now, with no key refresh: GW_ENOTFOUND for a
 * "kid" missing from a set, GW_EAUTH for every other failure. `now` is
 * seconds since the epoch. */
int gw_jwt_auth_verify_now(struct gw_jwt_auth *a, const char *token, size_t len, int64_t now,
                           struct gw_jwt_identity *out, struct gw_error *err);

/* `id` is NULL when `err` is set; both are only valid during the call. */
typedef void (*gw_jwt_auth_cb)(void *arg, const struct gw_jwt_identity *id,
                               const struct gw_error *err);

/* Verifies a bearer token; on an unknown "kid" of a URL key set, refreshes
 * that set once (at most every "jwks_min_refresh_s") and retries before
 * answering. `cb` runs exactly once, possibly before this returns. */
void gw_jwt_auth_verify(struct gw_jwt_auth *a, const char *token, size_t len, gw_jwt_auth_cb cb,
                        void *arg);

/* ---- OIDC sign-in (the broker as a confidential client) ----
 *
 * An issuer entry with "client_id" is an OpenID Connect provider people sign
 * in to the console with (authorization code + PKCE S256, docs/console.md).
 * Its endpoints come from "<issuer>/.well-known/openid-configuration"
 * (fetched at start, retried every 30 s until it answers) unless the entry
 * names them; its keys from "jwks_uri" unless it names "jwks_url" or
 * "jwks_file". The client secret is read from the environment variable
 * "client_secret_env" names, never from the file. Loop thread only. */

struct gw_oidc_provider {
    int index;                /* for the calls below */
    const char *name;         /* the entry's "name" */
    const char *display_name; /* "display_name", else the name */
    const char *client_id;
    const char *redirect_uri;           /* NULL: the broker derives it */
    const char *scopes;                 /* space-separated, "openid" first */
    const char *authorization_endpoint; /* NULL until discovered */
};

/* How many OIDC providers the configuration has (0 for NULL). */
size_t gw_jwt_oidc_count(const struct gw_jwt_auth *a);
/* The i-th (0-based) provider; false when there is none. Strings live as
 * long as `a`. */
bool gw_jwt_oidc_get(const struct gw_jwt_auth *a, size_t i, struct gw_oidc_provider *out);
/* The provider named `name`; false when there is none. */
bool gw_jwt_oidc_find(const struct gw_jwt_auth *a, const char *name, struct gw_oidc_provider *out);

/* `err` NULL: discovered (gw_jwt_oidc_get now has the endpoints). */
typedef void (*gw_jwt_oidc_ready_cb)(void *arg, const struct gw_error *err);
/* Calls `cb` once the provider's endpoints are known: at once when they are,
 * else after a discovery (started now if none runs), GW_EUNAVAIL when it
 * failed, GW_ECLOSED on destroy. Exactly once, possibly before returning. */
void gw_jwt_oidc_ready(struct gw_jwt_auth *a, int idx, gw_jwt_oidc_ready_cb cb, void *arg);

/* The token endpoint's answer: `id_token` (borrowed for the call) or `err`
 * (GW_EAUTH with the provider's "error" and "error_description" for a
 * refused code, GW_EUNAVAIL for transport failures). */
typedef void (*gw_jwt_oidc_token_cb)(void *arg, const char *id_token, const struct gw_error *err);
/* Exchanges an authorization `code` (grant_type=authorization_code with the
 * PKCE `verifier` and `redirect_uri`), authenticating with the client
 * secret ("token_endpoint_auth": client_secret_basic, the default, or
 * client_secret_post). `cb` runs exactly once, possibly before returning. */
void gw_jwt_oidc_exchange(struct gw_jwt_auth *a, int idx, const char *code, const char *verifier,
                          const char *redirect_uri, gw_jwt_oidc_token_cb cb, void *arg);

/* Verifies an ID token under that provider's entry only (keys, algorithms,
 * "iss", "aud" = client_id unless "audience" says otherwise, "exp"), like
 * gw_jwt_auth_verify otherwise. The caller checks the nonce. */
void gw_jwt_oidc_verify(struct gw_jwt_auth *a, int idx, const char *token, size_t len,
                        gw_jwt_auth_cb cb, void *arg);

/* True when `token` has the shape of a JWS compact serialization: exactly
 * two dots (API tokens have none). The segments are checked by the verifier. */
bool gw_jwt_is_jws_shaped(const char *token, size_t len);

#endif
