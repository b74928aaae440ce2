/*
 * Unit tests of the lib/jsonschema API: error reports, defaults, redaction,
 * the registry's directory mapping, refusal of bad schemas, and concurrent
 * validation on one compiled schema.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw/jsonschema.h"

#define CHECK_COUNTS
#include "../check.h"

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v) {
        fprintf(stderr, "bad test JSON: %s: %s\n", text, e.text);
        abort();
    }
    return v;
}

static struct gw_schema *compile(struct gw_schema_registry *reg, const char *text,
                                 struct gw_error *err)
{
    json_t *doc = J(text);
    struct gw_schema *s = gw_schema_compile(reg, doc, NULL, NULL, err);
    json_decref(doc);
    return s;
}

/* True when `errors` has an entry with these fields. */
static bool has_error(json_t *errors, const char *inst, const char *kw, const char *kwloc)
{
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "instanceLocation")), inst) == 0 &&
            strcmp(json_string_value(json_object_get(e, "keyword")), kw) == 0 &&
            strcmp(json_string_value(json_object_get(e, "keywordLocation")), kwloc) == 0 &&
            json_string_length(json_object_get(e, "message")) > 0)
            return true;
    }
    char *d = json_dumps(errors, JSON_COMPACT);
    fprintf(stderr, "no error %s %s %s in %s\n", inst, kw, kwloc, d);
    free(d);
    return false;
}

static void test_errors(struct gw_schema_registry *reg)
{
    struct gw_error err = {0};
    struct gw_schema *s =
        compile(reg,
                "{\"type\":\"object\",\"required\":[\"name\"],"
                "\"properties\":{\"name\":{},"
                " \"message\":{\"type\":\"string\",\"maxLength\":3},"
                " \"tags\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/tag\"}},"
                " \"a/b~c\":{\"type\":\"integer\"}},"
                "\"additionalProperties\":false,"
                "\"$defs\":{\"tag\":{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}}}",
                &err);
    CHECK(s != NULL);
    if (!s) {
        fprintf(stderr, "%s\n", err.message);
        return;
    }
    json_t *ok = J("{\"name\":\"x\",\"message\":\"héé\",\"tags\":[\"a\"]}");
    json_t *errors = NULL;
    CHECK(gw_schema_validate(s, ok, &errors));
    CHECK(errors == NULL);
    CHECK(gw_schema_validate(s, ok, NULL));

    json_t *bad = J("{\"message\":\"toolong\",\"tags\":[\"ok\",\"NO\"],\"a/b~c\":1.5,\"extra\":1}");
    CHECK(!gw_schema_validate(s, bad, NULL));
    CHECK(!gw_schema_validate(s, bad, &errors));
    CHECK(json_is_array(errors) && json_array_size(errors) == 5);
    CHECK(has_error(errors, "", "required", "/required"));
    CHECK(has_error(errors, "/message", "maxLength", "/properties/message/maxLength"));
    CHECK(has_error(errors, "/tags/1", "pattern", "/$defs/tag/pattern"));
    CHECK(has_error(errors, "/a~1b~0c", "type", "/properties/a~1b~0c/type"));
    CHECK(has_error(errors, "", "additionalProperties", "/additionalProperties"));
    json_decref(errors);
    json_decref(bad);
    json_decref(ok);
    gw_schema_destroy(s);
}

/* The error at `inst` with keyword `kw`, or NULL. */
static json_t *find_error(json_t *errors, const char *inst, const char *kw)
{
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "instanceLocation")), inst) == 0 &&
            strcmp(json_string_value(json_object_get(e, "keyword")), kw) == 0)
            return e;
    }
    char *d = json_dumps(errors, JSON_COMPACT);
    fprintf(stderr, "no error %s %s in %s\n", inst, kw, d);
    free(d);
    return NULL;
}

/* True when error `e` has member `name` equal to the JSON `want`. */
static bool field_is(json_t *e, const char *name, const char *want)
{
    json_t *w = J(want);
    bool ok = e && json_equal(json_object_get(e, name), w);
    if (!ok) {
        char *d = e ? json_dumps(e, JSON_COMPACT) : NULL;
        fprintf(stderr, "expected %s = %s in %s\n", name, want, d ? d : "(no error)");
        free(d);
    }
    json_decref(w);
    return ok;
}

static bool message_has(json_t *e, const char *part)
{
    const char *m = e ? json_string_value(json_object_get(e, "message")) : NULL;
    if (m && strstr(m, part))
        return true;
    fprintf(stderr, "message %s lacks %s\n", m ? m : "(none)", part);
    return false;
}

/* Every failed assertion names what would have been accepted, in the
 * message and in machine-readable members (issue 12). */
static void test_error_details(struct gw_schema_registry *reg)
{
    struct gw_error err = {0};
    struct gw_schema *s = compile(
        reg,
        "{\"type\":\"object\",\"required\":[\"env\",\"owner\"],\"additionalProperties\":false,"
        "\"properties\":{"
        " \"env\":{\"enum\":[\"dev\",\"staging\",\"prod\"]},"
        " \"big\":{\"enum\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23]},"
        " \"one\":{\"enum\":[{\"k\":1}]},"
        " \"c\":{\"const\":\"exact\"},"
        " \"name\":{\"type\":\"string\",\"pattern\":\"^[a-z]+$\",\"minLength\":2,\"maxLength\":5},"
        " \"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10,\"multipleOf\":2},"
        " \"x\":{\"exclusiveMinimum\":0.5,\"exclusiveMaximum\":1},"
        " \"arr\":{\"type\":\"array\",\"minItems\":2,\"maxItems\":3},"
        " \"t\":{\"type\":[\"string\",\"null\"]},"
        " \"mail\":{\"format\":\"email\"},"
        " \"long\":{\"enum\":[\"" /* 100 x's: the message cuts it, the field does not */
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxx"
        "\"]}}}",
        &err);
    CHECK(s != NULL);
    if (!s) {
        fprintf(stderr, "%s\n", err.message);
        return;
    }
    json_t *bad =
        J("{\"env\":\"qa\",\"big\":99,\"one\":2,\"c\":\"no\",\"name\":\"ABCDEFG\",\"n\":11,"
          "\"x\":0.5,\"arr\":[1,2,3,4],\"t\":3,\"zz\":1,\"long\":\"y\"}");
    json_t *errors = NULL;
    CHECK(!gw_schema_validate(s, bad, &errors));

    json_t *e = find_error(errors, "/env", "enum");
    CHECK(field_is(e, "allowed", "[\"dev\",\"staging\",\"prod\"]"));
    CHECK(e && !json_object_get(e, "omitted"));
    CHECK(message_has(e, "one of: \"dev\", \"staging\", \"prod\""));

    e = find_error(errors, "/big", "enum");
    CHECK(field_is(e, "allowed", "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]"));
    CHECK(field_is(e, "omitted", "3"));
    CHECK(message_has(e, "19, 20 (and 3 more)"));

    e = find_error(errors, "/one", "enum");
    CHECK(field_is(e, "allowed", "[{\"k\":1}]"));
    CHECK(message_has(e, "value must be {\"k\":1}"));

    e = find_error(errors, "/long", "enum");
    CHECK(e && json_string_length(json_array_get(json_object_get(e, "allowed"), 0)) == 100);
    CHECK(message_has(e, "xxx...") && json_string_length(json_object_get(e, "message")) < 100);

    e = find_error(errors, "/c", "const");
    CHECK(field_is(e, "allowed", "[\"exact\"]"));
    CHECK(message_has(e, "\"exact\""));

    e = find_error(errors, "/name", "pattern");
    CHECK(field_is(e, "pattern", "\"^[a-z]+$\""));
    CHECK(message_has(e, "\"^[a-z]+$\""));
    e = find_error(errors, "/name", "maxLength");
    CHECK(field_is(e, "limit", "5"));
    CHECK(message_has(e, "at most 5"));

    e = find_error(errors, "/n", "maximum");
    CHECK(field_is(e, "limit", "10"));
    CHECK(message_has(e, "maximum 10"));
    e = find_error(errors, "/n", "multipleOf");
    CHECK(field_is(e, "limit", "2"));

    e = find_error(errors, "/x", "exclusiveMinimum");
    CHECK(field_is(e, "limit", "0.5"));
    CHECK(message_has(e, "exclusive minimum 0.5"));

    e = find_error(errors, "/arr", "maxItems");
    CHECK(field_is(e, "limit", "3"));

    e = find_error(errors, "/t", "type");
    CHECK(field_is(e, "expected", "[\"null\",\"string\"]"));
    CHECK(field_is(e, "actual", "\"integer\""));

    e = find_error(errors, "", "additionalProperties");
    CHECK(field_is(e, "property", "\"zz\""));
    e = find_error(errors, "", "required");
    CHECK(field_is(e, "property", "\"owner\""));
    json_decref(errors);
    json_decref(bad);

    /* The other side of each bound. */
    bad = J("{\"env\":\"dev\",\"owner\":1,\"name\":\"a\",\"n\":0,\"x\":2,\"arr\":[]}");
    errors = NULL;
    CHECK(!gw_schema_validate(s, bad, &errors));
    CHECK(field_is(find_error(errors, "/name", "minLength"), "limit", "2"));
    CHECK(field_is(find_error(errors, "/n", "minimum"), "limit", "1"));
    CHECK(field_is(find_error(errors, "/x", "exclusiveMaximum"), "limit", "1"));
    CHECK(field_is(find_error(errors, "/arr", "minItems"), "limit", "2"));
    json_decref(errors);
    json_decref(bad);
    gw_schema_destroy(s);

    /* An empty enum says so rather than listing nothing. */
    s = compile(reg, "{\"enum\":[]}", &err);
    bad = J("1");
    errors = NULL;
    CHECK(s && !gw_schema_validate(s, bad, &errors));
    e = find_error(errors, "", "enum");
    CHECK(field_is(e, "allowed", "[]"));
    CHECK(message_has(e, "the enum is empty"));
    json_decref(errors);
    json_decref(bad);
    gw_schema_destroy(s);

    /* format as an assertion names the format. */
    struct gw_schema_options fo = {.format_assert = true};
    json_t *doc = J("{\"format\":\"email\"}");
    s = gw_schema_compile(reg, doc, NULL, &fo, &err);
    json_decref(doc);
    CHECK(s != NULL);
    bad = J("\"not-an-address\"");
    errors = NULL;
    CHECK(s && !gw_schema_validate(s, bad, &errors));
    CHECK(field_is(find_error(errors, "", "format"), "format", "\"email\""));
    json_decref(errors);
    json_decref(bad);
    gw_schema_destroy(s);
}

static void test_bad_schema(struct gw_schema_registry *reg)
{
    struct gw_error err = {0};
    struct gw_schema *s =
        compile(reg, "{\"properties\":{\"port\":{\"type\":\"integer\",\"minimum\":\"1\"}}}", &err);
    CHECK(s == NULL);
    CHECK(err.code != 0);
    CHECK(strstr(err.message, "/properties/port/minimum") != NULL);

    s = compile(reg, "{\"$ref\":\"#/$defs/missing\"}", &err);
    CHECK(s == NULL);
    CHECK(strstr(err.message, "/$ref") != NULL);

    s = compile(reg, "{\"pattern\":\"(unclosed\"}", &err);
    CHECK(s == NULL);
    CHECK(strstr(err.message, "/pattern") != NULL);

    s = compile(reg,
                "{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
                "\"items\":[{\"type\":\"nope\"}]}",
                &err);
    CHECK(s == NULL);
    CHECK(strstr(err.message, "/items") != NULL);

    /* Remote refs never go to the network. */
    s = compile(reg, "{\"$ref\":\"https://example.com/schema.json\"}", &err);
    CHECK(s == NULL);
    CHECK(strstr(err.message, "unresolvable") != NULL);
}

static void test_defaults(struct gw_schema_registry *reg)
{
    struct gw_error err = {0};
    struct gw_schema *s =
        compile(reg,
                "{\"properties\":{\"region\":{\"type\":\"string\",\"default\":\"eu-west-1\"},"
                " \"size\":{\"$ref\":\"#/$defs/size\"},"
                " \"opts\":{\"type\":\"object\",\"properties\":{\"ttl\":{\"default\":60}}},"
                " \"given\":{\"default\":\"no\"}},"
                "\"allOf\":[{\"properties\":{\"replicas\":{\"default\":2}}}],"
                "\"$defs\":{\"size\":{\"enum\":[\"s\",\"m\"],\"default\":\"s\"}}}",
                &err);
    CHECK(s != NULL);
    if (!s)
        return;
    json_t *inst = J("{\"given\":\"yes\",\"opts\":{}}");
    CHECK(gw_schema_apply_defaults(s, inst) == 0);
    json_t *want = J("{\"given\":\"yes\",\"opts\":{\"ttl\":60},\"region\":\"eu-west-1\","
                     "\"size\":\"s\",\"replicas\":2}");
    CHECK(json_equal(inst, want));
    CHECK(gw_schema_validate(s, inst, NULL));
    json_decref(want);
    json_decref(inst);
    gw_schema_destroy(s);
}

static void test_redact(struct gw_schema_registry *reg)
{
    struct gw_error err = {0};
    struct gw_schema *s =
        compile(reg,
                "{\"properties\":{\"token\":{\"type\":\"string\",\"writeOnly\":true},"
                " \"db\":{\"properties\":{\"password\":{\"$ref\":\"#/$defs/secret\"},\"user\":{}}},"
                " \"keys\":{\"items\":{\"writeOnly\":true}}},"
                "\"patternProperties\":{\"^secret_\":{\"writeOnly\":true}},"
                "\"$defs\":{\"secret\":{\"type\":\"string\",\"writeOnly\":true}}}",
                &err);
    CHECK(s != NULL);
    if (!s)
        return;
    json_t *inst = J("{\"token\":\"t0k\",\"db\":{\"password\":\"pw\",\"user\":\"bob\"},"
                     "\"keys\":[\"k1\",\"k2\"],\"secret_x\":{\"a\":1},\"name\":\"n\"}");
    json_t *copy = json_deep_copy(inst);
    json_t *r = gw_schema_redact(s, inst);
    json_t *want = J("{\"token\":\"[redacted]\",\"db\":{\"password\":\"[redacted]\",\"user\":"
                     "\"bob\"},\"keys\":[\"[redacted]\",\"[redacted]\"],\"secret_x\":"
                     "\"[redacted]\",\"name\":\"n\"}");
    CHECK(r && json_equal(r, want));
    CHECK(json_equal(inst, copy)); /* the original is untouched */
    json_decref(want);
    json_decref(r);
    json_decref(copy);
    json_decref(inst);
    gw_schema_destroy(s);
}

static void test_registry_dir(void)
{
    char dir[] = "/tmp/gw-jsonschema-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[512], sub[512];
    snprintf(sub, sizeof(sub), "%s/common", dir);
    CHECK(mkdir(sub, 0700) == 0);
    snprintf(path, sizeof(path), "%s/common/name.json", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"type\":\"string\",\"minLength\":2,\"$defs\":{\"n\":{\"type\":\"number\"}}}", f);
        fclose(f);
    }
    struct gw_error err = {0};
    struct gw_schema_registry *reg = gw_schema_registry_create(&err);
    CHECK(reg != NULL);
    CHECK(gw_schema_registry_add_dir(reg, "https://schemas.example.org/v1", dir, &err) == 0);
    json_t *doc = J("{\"properties\":{\"n\":{\"$ref\":\"common/name.json\"},"
                    "\"x\":{\"$ref\":\"common/name.json#/$defs/n\"}}}");
    struct gw_schema *s =
        gw_schema_compile(reg, doc, "https://schemas.example.org/v1/action.json", NULL, &err);
    CHECK(s != NULL);
    if (s) {
        json_t *good = J("{\"n\":\"ab\",\"x\":1}"), *bad = J("{\"n\":\"a\"}");
        json_t *bad2 = J("{\"x\":\"s\"}");
        CHECK(gw_schema_validate(s, good, NULL));
        CHECK(!gw_schema_validate(s, bad, NULL));
        CHECK(!gw_schema_validate(s, bad2, NULL));
        json_decref(good);
        json_decref(bad);
        json_decref(bad2);
    }
    gw_schema_destroy(s);
    json_decref(doc);
    gw_schema_registry_destroy(reg);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

static void test_drafts_and_formats(struct gw_schema_registry *reg)
{
    struct gw_error err = {0};
    json_t *doc = J("{\"items\":[{\"type\":\"integer\"}],\"additionalItems\":false,"
                    "\"properties\":{\"when\":{\"format\":\"date-time\"}}}");
    struct gw_schema_options o7 = {.default_draft = GW_SCHEMA_DRAFT_7, .format_assert = true};
    struct gw_schema *s7 = gw_schema_compile(reg, doc, NULL, &o7, &err);
    /* 2020-12: an items array is invalid against the metaschema. */
    struct gw_schema *bad20 = gw_schema_compile(reg, doc, NULL, NULL, &err);
    CHECK(bad20 == NULL && strstr(err.message, "/items"));
    json_t *doc20 = J("{\"prefixItems\":[{\"type\":\"integer\"}],\"items\":false,"
                      "\"properties\":{\"when\":{\"format\":\"date-time\"}}}");
    struct gw_schema *s20 = gw_schema_compile(reg, doc20, NULL, NULL, &err);
    json_decref(doc20);
    CHECK(s7 && s20);
    json_t *arr = J("[1, 2]"), *when = J("{\"when\":\"yesterday\"}"), *one = J("[1]");
    if (s7 && s20) {
        CHECK(!gw_schema_validate(s7, arr, NULL));  /* draft-07 tuple + additionalItems */
        CHECK(!gw_schema_validate(s20, arr, NULL)); /* 2020-12 prefixItems + items */
        CHECK(gw_schema_validate(s7, one, NULL));
        CHECK(gw_schema_validate(s20, one, NULL));
        CHECK(!gw_schema_validate(s7, when, NULL)); /* format asserted */
        CHECK(gw_schema_validate(s20, when, NULL)); /* format is an annotation by default */
    }
    json_decref(one);
    json_decref(arr);
    json_decref(when);
    json_decref(doc);
    gw_schema_destroy(s7);
    gw_schema_destroy(s20);
}

struct thr {
    const struct gw_schema *s;
    int bad;
};

static void *worker(void *arg)
{
    struct thr *t = arg;
    json_t *ok = J("{\"a\":[1,2,3],\"b\":\"xyz\"}"), *no = J("{\"a\":[1,1],\"b\":\"x\"}");
    for (int i = 0; i < 2000; i++) {
        if (!gw_schema_validate(t->s, ok, NULL) || gw_schema_validate(t->s, no, NULL))
            t->bad++;
    }
    json_decref(ok);
    json_decref(no);
    return NULL;
}

static void test_threads(struct gw_schema_registry *reg)
{
    struct gw_error err = {0};
    struct gw_schema *s =
        compile(reg,
                "{\"properties\":{\"a\":{\"uniqueItems\":true},"
                "\"b\":{\"pattern\":\"^x[a-z]{2}$\"}},\"unevaluatedProperties\":false}",
                &err);
    CHECK(s != NULL);
    if (!s)
        return;
    pthread_t th[4];
    struct thr t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct thr){.s = s};
        pthread_create(&th[i], NULL, worker, &t[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(t[i].bad == 0);
    }
    gw_schema_destroy(s);
}

int main(void)
{
    struct gw_error err = {0};
    struct gw_schema_registry *reg = gw_schema_registry_create(&err);
    CHECK(reg != NULL);
    if (!reg)
        return 1;
    test_errors(reg);
    test_error_details(reg);
    test_bad_schema(reg);
    test_defaults(reg);
    test_redact(reg);
    test_registry_dir();
    test_drafts_and_formats(reg);
    test_threads(reg);
    gw_schema_registry_destroy(reg);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("jsonschema api: all checks passed\n");
    return 0;
}
