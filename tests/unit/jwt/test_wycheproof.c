/*
 * Wycheproof JSON Web Signature and JSON Web Key vectors against lib/jwt.
 * Vectors: $GW_SOURCE_ROOT/../shared/conformance/wycheproof/testvectors_v1
 * (or argv[1]); when absent the test says so and exits 77 (skipped).
 *
 * Every vector must give its expected result, except the few listed in
 * `deviations`, where the vector contradicts a rule this verifier keeps on
 * purpose; for those the test asserts our (stricter) answer instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/jwt.h"

static const struct {
    const char *file;
    int tc_id;
    bool ours; /* the answer asserted instead of the vector's */
    const char *why;
} deviations[] = {
    {"json_web_signature_test.json", 346, false,
     "the key says \"alg\":\"PS256\" but the token is PS384; a JWK's own alg is respected "
     "(the same file expects PS256-on-a-PS512-key, tcId 338, to be invalid)"},
    {"json_web_signature_test.json", 350, false, "as tcId 346 (key_ops variant)"},
    {"json_web_signature_test.json", 367, true,
     "byte-for-byte the same JWS as tcId 357, which the file expects to be valid (the padding "
     "this vector is named after is not in it; padded input is refused, see test_jwt.c)"},
    {"json_web_signature_test.json", 370, true, "as tcId 367"},
    {"json_web_signature_test.json", 372, false,
     "a '?' inside the header segment: strict base64url refuses it (the MAC only matches if "
     "the character is silently dropped from the signing input)"},
    {"json_web_signature_test.json", 373, false, "as tcId 372, in the payload segment"},
};

static const char *deviation(const char *file, int id, bool *ours)
{
    for (size_t i = 0; i < ARRAY_SIZE(deviations); i++)
        if (deviations[i].tc_id == id && strcmp(deviations[i].file, file) == 0) {
            *ours = deviations[i].ours;
            return deviations[i].why;
        }
    return NULL;
}

static int run_file(const char *dir, const char *name, int *total, int *failed, int *deviated)
{
    char path[4096];
    json_error_t je;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    json_t *root = json_load_file(path, 0, &je);
    if (root == NULL) {
        printf("FAIL: cannot read %s: %s\n", path, je.text);
        return -1;
    }
    size_t gi, ti;
    json_t *g, *t;
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        json_t *keyset = json_object_get(g, "public");
        if (keyset == NULL)
            keyset = json_object_get(g, "private");
        struct gw_jwks *ks = NULL;
        struct gw_error kerr;
        gw_error_clear(&kerr);
        int krc = gw_jwks_parse(keyset, GW_JWKS_ALLOW_SYMMETRIC, &ks, &kerr);
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            int id = (int)json_integer_value(json_object_get(t, "tcId"));
            const char *expected = json_string_value(json_object_get(t, "result"));
            const char *comment = json_string_value(json_object_get(t, "comment"));
            json_t *jv = json_object_get(t, "jws");
            char *jws =
                json_is_string(jv) ? strdup(json_string_value(jv)) : json_dumps(jv, JSON_COMPACT);
            struct gw_jws out;
            struct gw_error err;
            gw_error_clear(&err);
            bool valid = false;
            if (krc == 0) {
                valid = gw_jws_verify(jws, strlen(jws), ks, GW_JWA_HMAC | GW_JWA_ASYMMETRIC, &out,
                                      &err) == 0;
                if (valid)
                    gw_jws_finish(&out);
            } else {
                snprintf(err.message, sizeof(err.message), "key set refused: %.400s", kerr.message);
            }
            free(jws);
            (*total)++;
            bool ours = false;
            const char *dev = deviation(name, id, &ours);
            bool ok;
            if (dev != NULL) {
                ok = valid == ours;
                (*deviated)++;
                printf("%s DEVIATION %s tcId %d (%s): expected %s, we say %s: %s\n",
                       ok ? "ok" : "FAIL", name, id, comment, expected, valid ? "valid" : "invalid",
                       dev);
            } else if (strcmp(expected, "acceptable") == 0) {
                ok = true;
            } else {
                ok = valid == (strcmp(expected, "valid") == 0);
            }
            if (!ok) {
                (*failed)++;
                if (dev == NULL)
                    printf("FAIL %s tcId %d (%s): expected %s, got %s (%s)\n", name, id, comment,
                           expected, valid ? "valid" : "invalid", err.message);
            } else if (getenv("GW_SUITE_VERBOSE") != NULL && dev == NULL) {
                printf("ok %s tcId %d (%s): %s%s%s\n", name, id, comment, expected,
                       valid ? "" : " - ", valid ? "" : err.message);
            }
        }
        gw_jwks_destroy(ks);
    }
    json_decref(root);
    return 0;
}

int main(int argc, char **argv)
{
    char dir[4096];
    const char *src = getenv("GW_SOURCE_ROOT");
    if (argc > 1)
        snprintf(dir, sizeof(dir), "%s", argv[1]);
    else
        snprintf(dir, sizeof(dir), "%s/../shared/conformance/wycheproof/testvectors_v1",
                 src != NULL ? src : ".");
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/json_web_signature_test.json", dir);
    FILE *f = fopen(probe, "r");
    if (f == NULL) {
        printf("SKIP: the Wycheproof vectors are absent (%s): ../shared/conformance/wycheproof "
               "is not checked out next to the repository\n",
               probe);
        return 77;
    }
    fclose(f);
    int total = 0, failed = 0, deviated = 0;
    if (run_file(dir, "json_web_signature_test.json", &total, &failed, &deviated) < 0 ||
        run_file(dir, "json_web_key_test.json", &total, &failed, &deviated) < 0)
        return 1;
    printf("%d Wycheproof JWS/JWK vectors: %d failed, %d documented deviation(s)\n", total, failed,
           deviated);
    return failed == 0 && total > 400 ? 0 : 1;
}
