/*
 * Runs the official JSON-Schema-Test-Suite against lib/jsonschema.
 *
 * Suite location, in order: argv[1]; $GW_SOURCE_ROOT/../shared/conformance/
 * json-schema-test-suite (draft2020-12 and draft7); the Debian package
 * json-schema-test-suite in /usr/share (draft7 only, said loudly). With
 * none of them the test exits 77 (skipped). `remotes/` is mapped to
 * http://localhost:1234/ through the registry, never fetched.
 *
 * Required tests and optional/format (run with format assertion on) must
 * all pass except the entries of `skips` below; other optional tests are
 * run and counted for information only.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gw/jsonschema.h"

struct skip {
    const char *draft, *file, *group, *test; /* test NULL: whole group */
    const char *reason;
};

/* Known failures. Keep this short; every entry says why. */
static const struct skip skips[] = {
    /* PCRE2 10.42 (Debian 12) rejects variable-width lookbehind, which
     * ECMA-262 (ES2018) allows; PCRE2 10.43 lifts the limit. */
    {"draft2020-12", "optional/format/ecmascript-regex.json",
     "ECMA 262 lookbehind is valid, including variable width",
     "a variable-width lookbehind (ES2018)", "PCRE2 10.42 has no variable-width lookbehind"},
    {"draft7", "optional/format/ecmascript-regex.json",
     "ECMA 262 lookbehind is valid, including variable width",
     "a variable-width lookbehind (ES2018)", "PCRE2 10.42 has no variable-width lookbehind"},
};

struct counts {
    int pass, fail, skipped;
};

static bool is_skipped(const char *draft, const char *file, const char *group, const char *test)
{
    for (size_t i = 0; i < sizeof(skips) / sizeof(skips[0]); i++) {
        const struct skip *s = &skips[i];
        if (!s->draft)
            continue;
        if (strcmp(s->draft, draft) == 0 && strcmp(s->file, file) == 0 &&
            strcmp(s->group, group) == 0 && (!s->test || strcmp(s->test, test) == 0))
            return true;
    }
    return false;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_file(struct gw_schema_registry *reg, const char *draft, const char *path,
                     const char *name, bool format_assert, bool strict, struct counts *c)
{
    json_error_t jerr;
    json_t *groups = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!groups) {
        printf("%s %s/%s: cannot load: %s\n", strict ? "FAIL" : "info-fail", draft, name,
               jerr.text);
        c->fail++;
        return;
    }
    struct gw_schema_options opts = {
        .default_draft = strcmp(draft, "draft7") == 0 ? GW_SCHEMA_DRAFT_7 : GW_SCHEMA_DRAFT_2020_12,
        .format_assert = format_assert,
    };
    size_t gi;
    json_t *g;
    json_array_foreach(groups, gi, g)
    {
        const char *gdesc = json_string_value(json_object_get(g, "description"));
        struct gw_error err = {0};
        struct gw_schema *s =
            gw_schema_compile(reg, json_object_get(g, "schema"), NULL, &opts, &err);
        size_t ti;
        json_t *t;
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            const char *tdesc = json_string_value(json_object_get(t, "description"));
            bool expect = json_is_true(json_object_get(t, "valid"));
            bool got = s && gw_schema_validate(s, json_object_get(t, "data"), NULL);
            if (s && got == expect) {
                c->pass++;
                continue;
            }
            if (is_skipped(draft, name, gdesc, tdesc)) {
                c->skipped++;
                continue;
            }
            c->fail++;
            if (strict || getenv("GW_SUITE_VERBOSE"))
                printf("%s %s/%s: %s / %s: %s\n", strict ? "FAIL" : "info-fail", draft, name, gdesc,
                       tdesc, s ? (expect ? "expected valid" : "expected invalid") : err.message);
        }
        gw_schema_destroy(s);
    }
    json_decref(groups);
}

static void run_dir(struct gw_schema_registry *reg, const char *draft, const char *dir,
                    const char *prefix, bool format_assert, bool strict, struct counts *c)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char *names[512];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 512) {
        size_t l = strlen(de->d_name);
        if (l > 5 && strcmp(de->d_name + l - 5, ".json") == 0)
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(char *), cmpstr);
    for (size_t i = 0; i < n; i++) {
        char path[4096], label[512];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        snprintf(label, sizeof(label), "%s%s", prefix, names[i]);
        run_file(reg, draft, path, label, format_assert, strict, c);
        free(names[i]);
    }
}

int main(int argc, char **argv)
{
    char root[4096] = "";
    const char *src = getenv("GW_SOURCE_ROOT");
    bool debian = false;
    if (argc > 1) {
        snprintf(root, sizeof(root), "%s", argv[1]);
    } else {
        char p[4096];
        snprintf(p, sizeof(p), "%s/../shared/conformance/json-schema-test-suite", src ? src : ".");
        if (is_dir(p)) {
            snprintf(root, sizeof(root), "%s", p);
        } else if (is_dir("/usr/share/json-schema-test-suite/tests")) {
            snprintf(root, sizeof(root), "/usr/share/json-schema-test-suite");
            debian = true;
        }
    }
    if (!*root) {
        printf("SKIP: no JSON-Schema-Test-Suite: neither ../shared/conformance/"
               "json-schema-test-suite nor the Debian package json-schema-test-suite "
               "(/usr/share/json-schema-test-suite) is present\n");
        return 77;
    }
    if (debian)
        printf("NOTE: ../shared/conformance is absent; using the Debian package "
               "json-schema-test-suite (%s), draft7 only\n",
               root);
    printf("suite: %s\n", root);

    struct gw_error err = {0};
    struct gw_schema_registry *reg = gw_schema_registry_create(&err);
    char remotes[4200];
    snprintf(remotes, sizeof(remotes), "%s/remotes", root);
    if (!reg || gw_schema_registry_add_dir(reg, "http://localhost:1234/", remotes, &err) < 0) {
        printf("FAIL: registry: %s\n", err.message);
        return 1;
    }
    static const char *const drafts[] = {"draft2020-12", "draft7"};
    int unexpected = 0;
    for (size_t i = 0; i < 2; i++) {
        char dir[4300];
        struct counts req = {0}, fmt = {0}, opt = {0};
        snprintf(dir, sizeof(dir), "%s/tests/%s", root, drafts[i]);
        if (!is_dir(dir)) {
            printf("%s: not in this copy of the suite\n", drafts[i]);
            continue;
        }
        run_dir(reg, drafts[i], dir, "", false, true, &req);
        snprintf(dir, sizeof(dir), "%s/tests/%s/optional/format", root, drafts[i]);
        run_dir(reg, drafts[i], dir, "optional/format/", true, true, &fmt);
        snprintf(dir, sizeof(dir), "%s/tests/%s/optional", root, drafts[i]);
        run_dir(reg, drafts[i], dir, "optional/", false, false, &opt);
        printf("%s required: %d passed, %d failed, %d skipped (listed)\n", drafts[i], req.pass,
               req.fail, req.skipped);
        printf("%s optional/format (assertion on): %d passed, %d failed, %d skipped (listed)\n",
               drafts[i], fmt.pass, fmt.fail, fmt.skipped);
        printf("%s other optional (informational): %d passed, %d failed\n", drafts[i], opt.pass,
               opt.fail);
        unexpected += req.fail + fmt.fail;
    }
    gw_schema_registry_destroy(reg);
    printf("%s: %d unexpected failure(s)\n", unexpected ? "FAIL" : "OK", unexpected);
    return unexpected ? 1 : 0;
}
