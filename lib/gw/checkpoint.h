/*
 * Signed checkpoints of the audit hash chain (docs/audit.md,
 * docs/decisions/0046-audit-checkpoints.md): the chain head
 * {seq, hash, time, prev, key_id} signed with Ed25519, so a head remembered
 * outside PostgreSQL can prove a cut tail or a rewritten chain.
 *
 * The signed bytes are the canonical text (gw_checkpoint_canonical):
 *
 *   {"format":"gangway.audit.checkpoint/1","seq":S,"hash":"H","time":"T",
 *    "prev":"P","key_id":"K"}
 *
 * on one line, in this key order, without whitespace, where S is the chain
 * position (decimal, >= 1, no leading zero), H the 64 lower-case hex hash of
 * the entry at S, T "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC), P the checkpoint
 * hash of the previous checkpoint (64 zeros for the first) and K the key id:
 * the first 16 lower-case hex digits of the SHA-256 of the raw 32-byte
 * Ed25519 public key. Every field is checked for that shape before anything
 * is built or verified, so the text has one spelling only. The checkpoint's
 * own hash (what the next one's P holds) is the SHA-256 hex of the same
 * bytes. The signature travels as standard base64 with padding (88
 * characters for Ed25519's 64 bytes) in "sig".
 *
 * Ownership: key sets are created and destroyed by the caller; destroy
 * accepts NULL. Errors: negative GW_E* codes with err->message saying what
 * is wrong (never a crash on bad input). Threading: none (no shared state).
 */
#ifndef GW_CHECKPOINT_H
#define GW_CHECKPOINT_H

#include <jansson.h>
#include <stddef.h>

#include "gw/error.h"

#define GW_CHECKPOINT_FORMAT    "gangway.audit.checkpoint/1"
#define GW_CHECKPOINT_KEYID_LEN 16
#define GW_CHECKPOINT_SIG_LEN   88
#define GW_CHECKPOINT_TIME_LEN  27

struct gw_checkpoint {
    long long seq;
    char hash[65];
    char time[GW_CHECKPOINT_TIME_LEN + 1];
    char prev[65];
    char key_id[GW_CHECKPOINT_KEYID_LEN + 1];
    char sig[GW_CHECKPOINT_SIG_LEN + 1]; /* "" until signed */
};

/* Checks every field but sig for its canonical shape. 0 or GW_EINVAL naming
 * the field. */
int gw_checkpoint_check(const struct gw_checkpoint *cp, struct gw_error *err);

/* Writes the canonical text and a NUL into out[cap]; returns its length, or
 * GW_EINVAL (bad field) / GW_ELIMIT (cap too small, 512 is always enough). */
int gw_checkpoint_canonical(const struct gw_checkpoint *cp, char *out, size_t cap,
                            struct gw_error *err);

/* The checkpoint's hash (SHA-256 hex of the canonical text) into out[65]. */
int gw_checkpoint_hash(const struct gw_checkpoint *cp, char out[65], struct gw_error *err);

/* Reads a checkpoint from its JSON object (the published form: the canonical
 * members plus "sig"; other members are ignored). GW_EINVAL naming the
 * member that is missing or malformed. */
int gw_checkpoint_from_json(const json_t *obj, struct gw_checkpoint *cp, struct gw_error *err);

/* The published JSON object (new reference), or NULL when out of memory. */
json_t *gw_checkpoint_to_json(const struct gw_checkpoint *cp, const char *cp_hash);

/* ---- keys ---- */

struct gw_checkpoint_keys;

struct gw_checkpoint_keys *gw_checkpoint_keys_create(struct gw_error *err);
void gw_checkpoint_keys_destroy(struct gw_checkpoint_keys *k);

/* Adds the Ed25519 key in the PEM file `path`: a public key, or a private
 * key (its public half is what verifies; with want_private it also signs).
 * GW_EIO when the file cannot be read, GW_EINVAL when it holds no PEM key or
 * a key of another type ("not an Ed25519 key"). *key_id (may be NULL) gets
 * the key's id. */
int gw_checkpoint_keys_add_pem(struct gw_checkpoint_keys *k, const char *path, int want_private,
                               char key_id[GW_CHECKPOINT_KEYID_LEN + 1], struct gw_error *err);

/* The same from PEM text in memory. */
int gw_checkpoint_keys_add_pem_text(struct gw_checkpoint_keys *k, const char *pem, size_t len,
                                    int want_private, char key_id[GW_CHECKPOINT_KEYID_LEN + 1],
                                    struct gw_error *err);

/* How many keys the set holds. */
size_t gw_checkpoint_keys_count(const struct gw_checkpoint_keys *k);

/* Signs with the set's most recently added private key: sets cp->key_id,
 * then cp->sig. GW_ENOTFOUND when the set has no private key. */
int gw_checkpoint_sign(const struct gw_checkpoint_keys *k, struct gw_checkpoint *cp,
                       struct gw_error *err);

/* Verifies cp->sig with the key named by cp->key_id. 0 when good;
 * GW_ENOTFOUND "unknown key id"; GW_EINVAL for a malformed signature
 * (not 88 characters of base64, bad padding) or a signature that does not
 * verify. */
int gw_checkpoint_verify(const struct gw_checkpoint_keys *k, const struct gw_checkpoint *cp,
                         struct gw_error *err);

#endif
