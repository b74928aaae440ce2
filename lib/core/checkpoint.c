/* Signed audit checkpoints (gw/checkpoint.h). */
#include "gw/checkpoint.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/crypto.h"
#include "gw/mem.h"

#define MAX_KEYS 64

struct key {
    EVP_PKEY *pkey;
    bool priv;
    char id[GW_CHECKPOINT_KEYID_LEN + 1];
};

struct gw_checkpoint_keys {
    struct key keys[MAX_KEYS];
    size_t n;
};

/* ------------------------------------------------------------ shapes */

static bool lower_hex(const char *s, size_t len)
{
    if (strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* "YYYY-MM-DDTHH:MM:SS.ffffffZ": digits where the pattern has 'd'. */
static bool time_shape(const char *s)
{
    static const char pattern[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (strlen(s) != sizeof(pattern) - 1)
        return false;
    for (size_t i = 0; pattern[i]; i++) {
        if (pattern[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pattern[i])
            return false;
    }
    return true;
}

int gw_checkpoint_check(const struct gw_checkpoint *cp, struct gw_error *err)
{
    if (cp->seq < 1)
        return gw_error_set(err, GW_EINVAL, false, "seq: must be a positive integer");
    if (!lower_hex(cp->hash, 64))
        return gw_error_set(err, GW_EINVAL, false, "hash: must be 64 lower-case hex digits");
    if (!time_shape(cp->time))
        return gw_error_set(err, GW_EINVAL, false,
                            "time: must be YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC, microseconds)");
    if (!lower_hex(cp->prev, 64))
        return gw_error_set(err, GW_EINVAL, false, "prev: must be 64 lower-case hex digits");
    if (!lower_hex(cp->key_id, GW_CHECKPOINT_KEYID_LEN))
        return gw_error_set(err, GW_EINVAL, false, "key_id: must be 16 lower-case hex digits");
    return 0;
}

int gw_checkpoint_canonical(const struct gw_checkpoint *cp, char *out, size_t cap,
                            struct gw_error *err)
{
    int rc = gw_checkpoint_check(cp, err);
    if (rc < 0)
        return rc;
    int n = snprintf(out, cap,
                     "{\"format\":\"" GW_CHECKPOINT_FORMAT "\",\"seq\":%lld,\"hash\":\"%s\","
                     "\"time\":\"%s\",\"prev\":\"%s\",\"key_id\":\"%s\"}",
                     cp->seq, cp->hash, cp->time, cp->prev, cp->key_id);
    if (n < 0 || (size_t)n >= cap)
        return gw_error_set(err, GW_ELIMIT, false, "canonical checkpoint text does not fit");
    return n;
}

int gw_checkpoint_hash(const struct gw_checkpoint *cp, char out[65], struct gw_error *err)
{
    char text[512];
    int n = gw_checkpoint_canonical(cp, text, sizeof(text), err);
    if (n < 0)
        return n;
    gw_sha256_hex(text, (size_t)n, out);
    return 0;
}

static int str_member(const json_t *obj, const char *name, char *out, size_t cap,
                      struct gw_error *err)
{
    const json_t *v = json_object_get(obj, name);
    if (!json_is_string(v))
        return gw_error_set(err, GW_EINVAL, false, "%s: missing or not a string", name);
    if (json_string_length(v) >= cap || strlen(json_string_value(v)) != json_string_length(v))
        return gw_error_set(err, GW_EINVAL, false, "%s: too long or holds a NUL", name);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

int gw_checkpoint_from_json(const json_t *obj, struct gw_checkpoint *cp, struct gw_error *err)
{
    int rc;
    memset(cp, 0, sizeof(*cp));
    if (!json_is_object(obj))
        return gw_error_set(err, GW_EINVAL, false, "a checkpoint must be a JSON object");
    const json_t *format = json_object_get(obj, "format");
    if (!json_is_string(format) || strcmp(json_string_value(format), GW_CHECKPOINT_FORMAT) != 0)
        return gw_error_set(err, GW_EINVAL, false, "format: must be \"%s\"", GW_CHECKPOINT_FORMAT);
    const json_t *seq = json_object_get(obj, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) < 1)
        return gw_error_set(err, GW_EINVAL, false, "seq: must be a positive integer");
    cp->seq = (long long)json_integer_value(seq);
    if ((rc = str_member(obj, "hash", cp->hash, sizeof(cp->hash), err)) < 0 ||
        (rc = str_member(obj, "time", cp->time, sizeof(cp->time), err)) < 0 ||
        (rc = str_member(obj, "prev", cp->prev, sizeof(cp->prev), err)) < 0 ||
        (rc = str_member(obj, "key_id", cp->key_id, sizeof(cp->key_id), err)) < 0 ||
        (rc = str_member(obj, "sig", cp->sig, sizeof(cp->sig), err)) < 0)
        return rc;
    return gw_checkpoint_check(cp, err);
}

json_t *gw_checkpoint_to_json(const struct gw_checkpoint *cp, const char *cp_hash)
{
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "format", GW_CHECKPOINT_FORMAT,
                          "seq", (json_int_t)cp->seq, "hash", cp->hash, "time", cp->time, "prev",
                          cp->prev, "key_id", cp->key_id, "sig", cp->sig);
    if (o != NULL && cp_hash != NULL &&
        json_object_set_new(o, "checkpoint_hash", json_string(cp_hash)) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------ base64 */

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict standard base64 of exactly 64 bytes: 88 characters ending "==". */
static int sig_decode(const char *s, unsigned char out[64], struct gw_error *err)
{
    size_t len = strlen(s);
    if (len != GW_CHECKPOINT_SIG_LEN || s[86] != '=' || s[87] != '=')
        return gw_error_set(err, GW_EINVAL, false,
                            "sig: must be 88 characters of base64 (64 bytes), got %zu", len);
    unsigned int acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < 86; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return gw_error_set(err, GW_EINVAL, false, "sig: '%c' at %zu is not base64", s[i], i);
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (o != 64 || acc != 0)
        return gw_error_set(err, GW_EINVAL, false, "sig: base64 with stray bits");
    return 0;
}

/* ------------------------------------------------------------ keys */

struct gw_checkpoint_keys *gw_checkpoint_keys_create(struct gw_error *err)
{
    return gw_calloc(1, sizeof(struct gw_checkpoint_keys), err);
}

void gw_checkpoint_keys_destroy(struct gw_checkpoint_keys *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->keys[i].pkey);
    free(k);
}

size_t gw_checkpoint_keys_count(const struct gw_checkpoint_keys *k)
{
    return k != NULL ? k->n : 0;
}

int gw_checkpoint_keys_add_pem_text(struct gw_checkpoint_keys *k, const char *pem, size_t len,
                                    int want_private, char key_id[GW_CHECKPOINT_KEYID_LEN + 1],
                                    struct gw_error *err)
{
    unsigned char raw[64];
    size_t rawlen = sizeof(raw);
    char hex[65];
    bool priv = false;
    EVP_PKEY *pkey = NULL;

    if (k->n >= MAX_KEYS)
        return gw_error_set(err, GW_ELIMIT, false, "more than %d keys", MAX_KEYS);
    if (len > (size_t)64 * 1024)
        return gw_error_set(err, GW_EINVAL, false, "not a PEM key (over 64 KiB)");
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (pkey != NULL) {
        priv = true;
    } else if (!want_private) {
        (void)BIO_reset(bio);
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    }
    BIO_free(bio);
    ERR_clear_error(); /* a failed PEM read leaves its reasons queued */
    if (pkey == NULL)
        return gw_error_set(err, GW_EINVAL, false,
                            want_private ? "no PEM private key (-----BEGIN PRIVATE KEY-----) found"
                                         : "no PEM public or private key found");
    if (EVP_PKEY_id(pkey) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(pkey);
        return gw_error_set(
            err, GW_EINVAL, false,
            "not an Ed25519 key (make one with: openssl genpkey -algorithm ed25519)");
    }
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1 || rawlen != 32) {
        EVP_PKEY_free(pkey);
        return gw_error_set(err, GW_EINVAL, false, "cannot read the Ed25519 public key");
    }
    gw_sha256_hex(raw, rawlen, hex);
    struct key *slot = &k->keys[k->n++];
    slot->pkey = pkey;
    slot->priv = priv;
    memcpy(slot->id, hex, GW_CHECKPOINT_KEYID_LEN);
    slot->id[GW_CHECKPOINT_KEYID_LEN] = '\0';
    if (key_id != NULL)
        memcpy(key_id, slot->id, GW_CHECKPOINT_KEYID_LEN + 1);
    return 0;
}

int gw_checkpoint_keys_add_pem(struct gw_checkpoint_keys *k, const char *path, int want_private,
                               char key_id[GW_CHECKPOINT_KEYID_LEN + 1], struct gw_error *err)
{
    char buf[64 * 1024 + 1];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return gw_error_set(err, GW_EIO, false, "%s: cannot open", path);
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    int rc = gw_checkpoint_keys_add_pem_text(k, buf, n, want_private, key_id, err);
    if (rc < 0 && err != NULL) {
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "%s", err->message);
        gw_error_set(err, rc, false, "%s: %s", path, msg);
    }
    return rc;
}

int gw_checkpoint_sign(const struct gw_checkpoint_keys *k, struct gw_checkpoint *cp,
                       struct gw_error *err)
{
    const struct key *key = NULL;
    char text[512];
    unsigned char sig[64];
    size_t siglen = sizeof(sig);

    for (size_t i = 0; k != NULL && i < k->n; i++)
        if (k->keys[i].priv)
            key = &k->keys[i];
    if (key == NULL)
        return gw_error_set(err, GW_ENOTFOUND, false, "no signing key");
    memcpy(cp->key_id, key->id, sizeof(cp->key_id));
    int n = gw_checkpoint_canonical(cp, text, sizeof(text), err);
    if (n < 0)
        return n;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
             EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)text, (size_t)n) == 1 &&
             siglen == 64;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return gw_error_set(err, GW_EIO, false, "Ed25519 signing failed");
    EVP_EncodeBlock((unsigned char *)cp->sig, sig, 64);
    return 0;
}

int gw_checkpoint_verify(const struct gw_checkpoint_keys *k, const struct gw_checkpoint *cp,
                         struct gw_error *err)
{
    const struct key *key = NULL;
    char text[512];
    unsigned char sig[64];

    int n = gw_checkpoint_canonical(cp, text, sizeof(text), err);
    if (n < 0)
        return n;
    for (size_t i = 0; k != NULL && i < k->n; i++)
        if (strcmp(k->keys[i].id, cp->key_id) == 0)
            key = &k->keys[i];
    if (key == NULL)
        return gw_error_set(err, GW_ENOTFOUND, false, "unknown key id %s", cp->key_id);
    int rc = sig_decode(cp->sig, sig, err);
    if (rc < 0)
        return rc;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    int ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, sizeof(sig), (const unsigned char *)text, (size_t)n) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (!ok)
        return gw_error_set(err, GW_EINVAL, false, "signature does not verify with key %s",
                            cp->key_id);
    return 0;
}
