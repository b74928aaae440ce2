/*
 * Unit test of lib/gw/checkpoint.h: the canonical signing bytes of an audit
 * checkpoint (a fixed vector, also produced by `openssl pkeyutl -sign
 * -rawin`), the key id, signing and verifying, and bad input of every kind
 * (truncated or foreign base64, a tampered field, an unknown key, a key of
 * another type, malformed JSON members): a clear error, never a crash.
 */
#include "gw/checkpoint.h"

#include <stdio.h>
#include <string.h>

#define CHECK_NAMED
#include "../check.h"

static const char key_a_priv[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ+h0bFehVaBMC9DE1vL9V7lUNtcoCz8QDVhgg6MfTVf\n"
    "-----END PRIVATE KEY-----\n";
static const char key_a_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MCowBQYDK2VwAyEAIyIj3vrwYaDkk5VP34FBIHFBdWCyG2C8mleRLrjPcwA=\n"
                                "-----END PUBLIC KEY-----\n";
static const char key_b_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MCowBQYDK2VwAyEAQKp4Kv1ay6DoOGF4GCo7Zv8rp++JnLlLgXF22h23anI=\n"
                                "-----END PUBLIC KEY-----\n";
static const char key_ec_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEn9lOFqVg4xCRAagcrD2aR1pIkatZ\n"
    "i90M39PozBJuX9uQdIWK8QPf2VcS7QIE9BwVwFftjyAKv7OTLaMIb/2r+A==\n"
    "-----END PUBLIC KEY-----\n";

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"
#define AS    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define KEY_A "0c51e993032a2672"
/* openssl pkeyutl -sign -rawin -inkey a.pem -in <canonical text> | base64 */
#define SIG_A                                                                                      \
    "8NF6xcNc7nuYSBWHbUi4TJELHWRis8lf+yEJA0ajgpjbKs5QRjj6E/c7T+8ggHsGKVMFBY811l4jwdVtdnzJDw=="

static struct gw_checkpoint sample(void)
{
    struct gw_checkpoint cp = {.seq = 42};
    snprintf(cp.hash, sizeof(cp.hash), "%s", AS);
    snprintf(cp.time, sizeof(cp.time), "%s", "2026-12-06T08:00:00.123456Z");
    snprintf(cp.prev, sizeof(cp.prev), "%s", ZEROS);
    return cp;
}

static void test_canonical(void)
{
    struct gw_checkpoint cp = sample();
    struct gw_error err;
    char text[512], h[65];
    snprintf(cp.key_id, sizeof(cp.key_id), "%s", KEY_A);
    int n = gw_checkpoint_canonical(&cp, text, sizeof(text), &err);
    CHECK(n > 0 &&
              strcmp(text, "{\"format\":\"gangway.audit.checkpoint/1\",\"seq\":42,\"hash\":\"" AS
                           "\",\"time\":\"2026-12-06T08:00:00.123456Z\",\"prev\":\"" ZEROS
                           "\",\"key_id\":\"" KEY_A "\"}") == 0,
          "canonical text, fixed key order, no whitespace");
    CHECK(gw_checkpoint_hash(&cp, h, &err) == 0 &&
              strcmp(h, "55546db8c57b1c158baf07fcd27203b59544d2d01fb4e7a829d7ca4d128fda63") == 0,
          "checkpoint hash = sha256 of the canonical text");
    CHECK(gw_checkpoint_canonical(&cp, text, 20, &err) == GW_ELIMIT, "a short buffer is refused");

    struct gw_checkpoint bad = cp;
    bad.hash[3] = 'A';
    CHECK(gw_checkpoint_canonical(&bad, text, sizeof(text), &err) == GW_EINVAL &&
              strncmp(err.message, "hash:", 5) == 0,
          "upper-case hex in hash is refused, naming the field");
    bad = cp;
    snprintf(bad.time, sizeof(bad.time), "%s", "2026-12-06T08:00:00Z");
    CHECK(gw_checkpoint_canonical(&bad, text, sizeof(text), &err) == GW_EINVAL &&
              strncmp(err.message, "time:", 5) == 0,
          "time without microseconds is refused");
    bad = cp;
    bad.seq = 0;
    CHECK(gw_checkpoint_canonical(&bad, text, sizeof(text), &err) == GW_EINVAL, "seq 0 refused");
    bad = cp;
    snprintf(bad.key_id, sizeof(bad.key_id), "%s", "0c51");
    CHECK(gw_checkpoint_canonical(&bad, text, sizeof(text), &err) == GW_EINVAL &&
              strncmp(err.message, "key_id:", 7) == 0,
          "short key id refused");
}

static void test_sign_verify(void)
{
    struct gw_error err;
    char id[17] = "";
    struct gw_checkpoint_keys *signer = gw_checkpoint_keys_create(&err);
    struct gw_checkpoint_keys *pub = gw_checkpoint_keys_create(&err);
    struct gw_checkpoint_keys *other = gw_checkpoint_keys_create(&err);

    CHECK(gw_checkpoint_keys_add_pem_text(signer, key_a_priv, strlen(key_a_priv), 1, id, &err) ==
                  0 &&
              strcmp(id, KEY_A) == 0,
          "private key loads; key id = sha256(raw public key)[:16]");
    CHECK(gw_checkpoint_keys_add_pem_text(pub, key_a_pub, strlen(key_a_pub), 0, id, &err) == 0 &&
              strcmp(id, KEY_A) == 0,
          "its public key has the same id");
    CHECK(gw_checkpoint_keys_add_pem_text(other, key_b_pub, strlen(key_b_pub), 0, id, &err) == 0 &&
              strcmp(id, KEY_A) != 0,
          "another key, another id");

    struct gw_checkpoint cp = sample();
    CHECK(gw_checkpoint_sign(signer, &cp, &err) == 0 && strcmp(cp.key_id, KEY_A) == 0 &&
              strcmp(cp.sig, SIG_A) == 0,
          "Ed25519 signature equals OpenSSL's command line one (%s)", cp.sig);
    CHECK(gw_checkpoint_sign(pub, &cp, &err) == GW_ENOTFOUND, "a public key cannot sign");
    CHECK(gw_checkpoint_verify(pub, &cp, &err) == 0, "verifies with the public key");
    CHECK(gw_checkpoint_verify(signer, &cp, &err) == 0, "and with the private key's public half");
    CHECK(gw_checkpoint_verify(other, &cp, &err) == GW_ENOTFOUND &&
              strstr(err.message, "unknown key id") != NULL,
          "another key set: unknown key id");

    /* Rotation: a set with both keys verifies checkpoints of either. */
    CHECK(gw_checkpoint_keys_add_pem_text(other, key_a_pub, strlen(key_a_pub), 0, NULL, &err) ==
                  0 &&
              gw_checkpoint_verify(other, &cp, &err) == 0 && gw_checkpoint_keys_count(other) == 2,
          "rotation: both keys known, the old key's checkpoint verifies");

    struct gw_checkpoint t = cp;
    t.seq = 43;
    CHECK(gw_checkpoint_verify(pub, &t, &err) == GW_EINVAL &&
              strstr(err.message, "does not verify") != NULL,
          "a changed seq breaks the signature");
    t = cp;
    t.hash[0] = 'b';
    CHECK(gw_checkpoint_verify(pub, &t, &err) == GW_EINVAL, "a changed hash breaks it");
    t = cp;
    t.sig[40] = '\0';
    CHECK(gw_checkpoint_verify(pub, &t, &err) == GW_EINVAL && strncmp(err.message, "sig:", 4) == 0,
          "truncated base64: clear error (%s)", err.message);
    t = cp;
    t.sig[10] = '*';
    CHECK(gw_checkpoint_verify(pub, &t, &err) == GW_EINVAL && strstr(err.message, "not base64"),
          "a non-base64 character: clear error (%s)", err.message);
    t = cp;
    t.sig[85] = t.sig[85] == 'A' ? 'B' : 'A';
    CHECK(gw_checkpoint_verify(pub, &t, &err) == GW_EINVAL, "stray bits or a changed byte refused");
    t = cp;
    memset(t.sig, 'A', 86);
    CHECK(gw_checkpoint_verify(pub, &t, &err) == GW_EINVAL, "a zero signature does not verify");

    struct gw_checkpoint_keys *ec = gw_checkpoint_keys_create(&err);
    CHECK(gw_checkpoint_keys_add_pem_text(ec, key_ec_pub, strlen(key_ec_pub), 0, NULL, &err) ==
                  GW_EINVAL &&
              strstr(err.message, "not an Ed25519 key") != NULL,
          "a P-256 key: 'not an Ed25519 key'");
    CHECK(gw_checkpoint_keys_add_pem_text(ec, "garbage", 7, 0, NULL, &err) == GW_EINVAL &&
              gw_checkpoint_keys_count(ec) == 0,
          "not PEM at all: clear error, nothing added");
    CHECK(gw_checkpoint_keys_add_pem_text(ec, key_a_pub, strlen(key_a_pub), 1, NULL, &err) ==
              GW_EINVAL,
          "a public key where a signing key is wanted is refused");
    CHECK(gw_checkpoint_keys_add_pem(ec, "/nonexistent/key.pem", 0, NULL, &err) == GW_EIO &&
              strstr(err.message, "/nonexistent/key.pem") != NULL,
          "a missing file names the path");

    /* JSON round trip, and bad members. */
    json_t *j = gw_checkpoint_to_json(&cp, NULL);
    struct gw_checkpoint back;
    CHECK(gw_checkpoint_from_json(j, &back, &err) == 0 && memcmp(&back, &cp, sizeof(cp)) == 0,
          "JSON round trip");
    json_object_set_new(j, "seq", json_string("42"));
    CHECK(gw_checkpoint_from_json(j, &back, &err) == GW_EINVAL &&
              strncmp(err.message, "seq", 3) == 0,
          "seq as a string refused");
    json_object_set_new(j, "seq", json_integer(42));
    json_object_set_new(j, "sig", json_integer(1));
    CHECK(gw_checkpoint_from_json(j, &back, &err) == GW_EINVAL &&
              strncmp(err.message, "sig", 3) == 0,
          "sig not a string refused");
    json_object_set_new(j, "sig", json_string(SIG_A "AAAA"));
    CHECK(gw_checkpoint_from_json(j, &back, &err) == GW_EINVAL, "an over-long sig refused");
    json_object_del(j, "format");
    CHECK(gw_checkpoint_from_json(j, &back, &err) == GW_EINVAL &&
              strncmp(err.message, "format", 6) == 0,
          "missing format refused");
    CHECK(gw_checkpoint_from_json(json_null(), &back, &err) == GW_EINVAL, "null refused");
    json_decref(j);

    gw_checkpoint_keys_destroy(ec);
    gw_checkpoint_keys_destroy(signer);
    gw_checkpoint_keys_destroy(pub);
    gw_checkpoint_keys_destroy(other);
    gw_checkpoint_keys_destroy(NULL);
}

int main(void)
{
    test_canonical();
    test_sign_verify();
    return failures != 0;
}
