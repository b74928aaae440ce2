/*
 * Unit test of lib/gw/doc.h: YAML configuration documents map onto JSON by
 * the YAML 1.2 core schema (not 1.1's yes/no booleans or 0-prefixed octal),
 * tags, anchors, aliases and merge keys work, and every kind of bad document
 * is refused with its line and column; JSON files load through the same
 * call, duplicates refused; alias bombs stop at the node budget.
 */
#include "gw/doc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK_NAMED
#include "../check.h"
#include "../testfs.h"

/* Loads `yaml` and compares it with the JSON text `want`. */
static void same(const char *yaml, const char *want, const char *what)
{
    struct gw_error err;
    gw_error_clear(&err);
    json_t *got = gw_yaml_loadb(yaml, strlen(yaml), "t.yaml", &err);
    json_t *exp = json_loads(want, JSON_DECODE_ANY, NULL);
    if (exp == NULL) {
        printf("FAIL - bad expectation for %s\n", what);
        failures++;
        return;
    }
    bool eq = got != NULL && json_equal(got, exp);
    /* json_equal treats 1 and 1.0 alike; the type must match too. */
    if (eq && json_is_object(exp)) {
        const char *k;
        json_t *v;
        json_object_foreach(exp, k, v)
        {
            if (json_typeof(v) != json_typeof(json_object_get(got, k)))
                eq = false;
        }
    } else if (eq) {
        eq = json_typeof(got) == json_typeof(exp);
    }
    if (!eq) {
        char *g = got ? json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        printf("  got %s (error: %s)\n", g ? g : "NULL", err.message);
        free(g);
    }
    CHECK(eq, "%s", what);
    json_decref(got);
    json_decref(exp);
}

/* Loads `yaml` expecting an error containing `want`. */
static void refused(const char *yaml, const char *want, const char *what)
{
    struct gw_error err;
    gw_error_clear(&err);
    json_t *got = gw_yaml_loadb(yaml, strlen(yaml), "t.yaml", &err);
    bool ok = got == NULL && strstr(err.message, want) != NULL;
    if (!ok)
        printf("  error was '%s'\n", err.message);
    CHECK(ok, "%s refused with '%s'", what, want);
    json_decref(got);
}

static void test_scalars(void)
{
    same("a: 12\nb: -3\nc: +4\nd: 0o17\ne: 0x1F\nf: 017\n",
         "{\"a\":12,\"b\":-3,\"c\":4,\"d\":15,\"e\":31,\"f\":17}",
         "integers: decimal, octal 0o, hex 0x; 017 is decimal (1.2, not 1.1)");
    same("a: 1.5\nb: .5\nc: 1e3\nd: -2.5E-1\ne: 1.\n",
         "{\"a\":1.5,\"b\":0.5,\"c\":1000.0,\"d\":-0.25,\"e\":1.0}", "floats");
    same(
        "a: true\nb: False\nc: TRUE\nd: yes\ne: no\nf: on\ng: off\n",
        "{\"a\":true,\"b\":false,\"c\":true,\"d\":\"yes\",\"e\":\"no\",\"f\":\"on\",\"g\":\"off\"}",
        "booleans are true/false only; yes/no/on/off stay strings");
    same("a: ~\nb: null\nc: NULL\nd:\ne: 'null'\n",
         "{\"a\":null,\"b\":null,\"c\":null,\"d\":null,\"e\":\"null\"}",
         "nulls; quoted null is text");
    same("a: '12'\nb: \"true\"\nc: 1.2.3\nd: 12abc\ne: 0o9\nf: -x\n",
         "{\"a\":\"12\",\"b\":\"true\",\"c\":\"1.2.3\",\"d\":\"12abc\",\"e\":\"0o9\",\"f\":\"-x\"}",
         "quoted and non-matching scalars are strings");
    same("a: !!str 12\nb: !!int '7'\nc: !!float 3\nd: !!bool 'true'\ne: !!null ''\nf: ! 5\n",
         "{\"a\":\"12\",\"b\":7,\"c\":3.0,\"d\":true,\"e\":null,\"f\":\"5\"}", "core tags");
    same("s: |\n  line one\n  line two\nf: >\n  folded\n  text\n",
         "{\"s\":\"line one\\nline two\\n\",\"f\":\"folded text\\n\"}", "block scalars");
    same("u: \"caf\\u00e9 \\t\"\n", "{\"u\":\"caf\\u00e9 \\t\"}", "escapes in double quotes");
    same("42\n", "42", "a scalar document");
    same("a: -.nan\n", "{\"a\":\"-.nan\"}", "-.nan is not a core-schema float: a string");
    same("200: ok\ntrue: yes\n", "{\"200\":\"ok\",\"true\":\"yes\"}",
         "scalar keys become their text");
}

static void test_structure(void)
{
    same("id: echo\ncommand: [/bin/echo, hi]\nnested:\n  - {a: 1}\n  - b: [2, 3]\n",
         "{\"id\":\"echo\",\"command\":[\"/bin/echo\",\"hi\"],"
         "\"nested\":[{\"a\":1},{\"b\":[2,3]}]}",
         "block and flow collections");
    same("base: &b {x: 1, y: 2}\ncopy: *b\n",
         "{\"base\":{\"x\":1,\"y\":2},\"copy\":{\"x\":1,\"y\":2}}", "anchor and alias");
    same("base: &b {x: 1, y: 2}\nmore: &m {z: 3, x: 9}\n"
         "one:\n  <<: *b\n  y: 5\nboth:\n  <<: [*b, *m]\n",
         "{\"base\":{\"x\":1,\"y\":2},\"more\":{\"z\":3,\"x\":9},\"one\":{\"x\":1,\"y\":5},"
         "\"both\":{\"x\":1,\"y\":2,\"z\":3}}",
         "merge keys: own keys win, earlier merges win over later");
    same("--- \nk: v\n...\n", "{\"k\":\"v\"}", "explicit document markers");
    same("# only a comment\nk: v # trailing\n", "{\"k\":\"v\"}", "comments");

    /* An alias is a copy: changing one place does not change the other. */
    struct gw_error err;
    const char *y = "a: &x {n: 1}\nb: *x\n";
    json_t *doc = gw_yaml_loadb(y, strlen(y), "t.yaml", &err);
    if (doc != NULL) {
        json_object_set_new(json_object_get(doc, "b"), "n", json_integer(2));
        CHECK(json_integer_value(json_object_get(json_object_get(doc, "a"), "n")) == 1,
              "an alias is expanded into a copy, not a shared value");
    } else {
        CHECK(false, "alias copy document loads");
    }
    json_decref(doc);
}

static void test_refused(void)
{
    refused("a: 1\nb: 2\na: 3\n", "line 3 column 1: duplicate key 'a'", "duplicate key");
    refused("a: [1, 2\n", "t.yaml: line", "unclosed flow sequence");
    refused("a: b: c\n", "not valid YAML", "mapping in a plain scalar");
    refused("", "empty", "an empty document");
    refused("a: 1\n---\nb: 2\n", "line 2 column 1: more than one document", "two documents");
    refused("? [a, b]\n: c\n", "mapping keys must be scalars", "a sequence as key");
    refused("a: *nope\n", "alias '*nope' names no anchor", "undefined alias");
    refused("a: !custom 1\n", "tag '!custom' is not supported", "an application tag");
    refused("a: !!int abc\n", "is not a valid !!int", "!!int on text");
    refused("a: .inf\n", "no JSON equivalent", ".inf");
    refused("a: !!float .nan\n", "no JSON equivalent", "!!float .nan");
    refused("a: 99999999999999999999\n", "does not fit in 64 bits", "integer overflow");
    refused("a: !!binary aGk=\n", "not supported", "!!binary");
    refused("a:\n\tb: 1\n", "not valid YAML", "a tab for indentation");

    /* Billion laughs: each level doubles; 30 levels would be 10^9 nodes. */
    char bomb[4096];
    size_t n = (size_t)snprintf(bomb, sizeof(bomb), "l0: &l0 [x, x]\n");
    for (int i = 1; i < 30; i++)
        n += (size_t)snprintf(bomb + n, sizeof(bomb) - n, "l%d: &l%d [*l%d, *l%d]\n", i, i, i - 1,
                              i - 1);
    refused(bomb, "expands to more than", "an alias bomb");

    /* Deep nesting stops at the depth limit instead of the C stack. */
    size_t depth = 2000;
    char *deep = malloc(depth * 2 + 2);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\n';
    deep[2 * depth + 1] = '\0';
    refused(deep, "levels deep", "2000 nested sequences");
    free(deep);

    /* Aliases cannot stack nesting past the limit either: ten anchors of
     * 100 levels, each holding the previous one innermost. */
    size_t cap = 20000, len = 0;
    char *stack = malloc(cap);
    for (int a = 0; a < 10; a++) {
        len += (size_t)snprintf(stack + len, cap - len, "a%d: &a%d ", a, a);
        for (int i = 0; i < 100; i++)
            stack[len++] = '[';
        len += (size_t)(a == 0 ? snprintf(stack + len, cap - len, "x")
                               : snprintf(stack + len, cap - len, "*a%d", a - 1));
        for (int i = 0; i < 100; i++)
            stack[len++] = ']';
        stack[len++] = '\n';
    }
    stack[len] = '\0';
    refused(stack, "through alias", "nesting built up through aliases");
    free(stack);

    refused("a: \"x\\0y\"\n", "NUL character", "a NUL in a value");
    refused("\"k\\0\": 1\n", "NUL character", "a NUL in a key");
}

/* Many anchors and aliases load in time linear in their number (a
 * quadratic lookup made 1.4 MB take 18 s). No timing is asserted here: the
 * test's own timeout is the bound. */
static void test_many_anchors(void)
{
    size_t n = 50000, cap = n * 40, len = 0;
    char *doc = malloc(cap);
    struct gw_error err;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(doc + len, cap - len, "a%zu: &x%zu %zu\n", i, i, i);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(doc + len, cap - len, "b%zu: *x%zu\n", i, n - 1 - i);
    json_t *v = gw_yaml_loadb(doc, len, "t.yaml", &err);
    CHECK(v != NULL && json_object_size(v) == 2 * n &&
              json_integer_value(json_object_get(v, "b0")) == (json_int_t)(n - 1),
          "50,000 anchors and 50,000 aliases load (%s)", v ? "" : err.message);
    json_decref(v);
    free(doc);
}

static void test_files(void)
{
    char dir[] = "/tmp/gw-doc-XXXXXX";
    char p[600];
    struct gw_error err;
    json_t *a, *b;

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    CHECK(gw_doc_is_yaml("x/a.yaml") && gw_doc_is_yaml("b.yml") && !gw_doc_is_yaml("a.json") &&
              !gw_doc_is_yaml("yaml") && !gw_doc_is_yaml(".yml.json"),
          "YAML is chosen by the .yaml/.yml extension");

    snprintf(p, sizeof(p), "%s/a.json", dir);
    write_file(p, "{\"id\": \"echo\", \"timeout\": 30, \"tags\": [\"demo\"]}");
    a = gw_doc_load_file(p, 0, &err);
    snprintf(p, sizeof(p), "%s/a.yaml", dir);
    write_file(p, "id: echo\ntimeout: 30\ntags:\n  - demo\n");
    b = gw_doc_load_file(p, 0, &err);
    CHECK(a != NULL && b != NULL && json_equal(a, b),
          "the same document in JSON and YAML is equal");
    json_decref(a);
    json_decref(b);

    snprintf(p, sizeof(p), "%s/dup.json", dir);
    write_file(p, "{\"a\": 1,\n \"a\": 2}");
    a = gw_doc_load_file(p, 0, &err);
    CHECK(a == NULL && strstr(err.message, "dup.json: line 2") != NULL &&
              strstr(err.message, "duplicate") != NULL,
          "JSON with a duplicate key is refused with file and line (%s)", err.message);

    snprintf(p, sizeof(p), "%s/big.yml", dir);
    write_file(p, "text: 0123456789012345678901234567890123456789\n");
    a = gw_doc_load_file(p, 16, &err);
    CHECK(a == NULL && err.code == GW_ELIMIT, "a file over the byte limit is refused");

    snprintf(p, sizeof(p), "%s/missing.yaml", dir);
    a = gw_doc_load_file(p, 0, &err);
    CHECK(a == NULL && err.code == GW_EIO && strstr(err.message, "missing.yaml") != NULL,
          "a missing file names the path");

    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
    test_scalars();
    test_structure();
    test_refused();
    test_many_anchors();
    test_files();
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
