/*
 * Unit test of lib/gw/jsonptr.h: tokens are escaped when a pointer is
 * built (of any length: nothing is cut short), and pointers resolve against
 * objects and arrays as RFC 6901 says, malformed ones to nothing.
 */
#include "gw/jsonptr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_COUNTS
#include "../check.h"

static void test_build(void)
{
    struct gw_jsonptr p = GW_JSONPTR_INIT;
    CHECK(strcmp(gw_jsonptr_str(&p), "") == 0);
    CHECK(gw_jsonptr_push(&p, "a/b") == 0);
    CHECK(gw_jsonptr_push(&p, "m~n") == 0);
    CHECK(gw_jsonptr_push(&p, "") == 0);
    CHECK(gw_jsonptr_push_index(&p, 12) == 0);
    CHECK(strcmp(gw_jsonptr_str(&p), "/a~1b/m~0n//12") == 0);
    size_t saved = strlen("/a~1b");
    gw_jsonptr_truncate(&p, saved);
    CHECK(strcmp(gw_jsonptr_str(&p), "/a~1b") == 0);
    CHECK(gw_jsonptr_push(&p, "~1") == 0); /* escaped, not taken as an escape */
    CHECK(strcmp(gw_jsonptr_str(&p), "/a~1b/~01") == 0);
    CHECK(gw_jsonptr_push_n(&p, "x/yz", 3) == 0);
    CHECK(strcmp(gw_jsonptr_str(&p), "/a~1b/~01/x~1y") == 0);
    gw_jsonptr_finish(&p);
    CHECK(p.s == NULL && p.len == 0);
    gw_jsonptr_finish(&p); /* twice is fine */
    gw_jsonptr_finish(NULL);

    /* A prefix, then a pointer into a part of the document. */
    gw_jsonptr_init(&p);
    CHECK(gw_jsonptr_append(&p, "/inputs") == 0);
    CHECK(gw_jsonptr_append(&p, "") == 0);
    CHECK(gw_jsonptr_append(&p, "/a~1b/0") == 0);
    char *s = gw_jsonptr_steal(&p);
    CHECK(s != NULL && strcmp(s, "/inputs/a~1b/0") == 0);
    CHECK(p.s == NULL && strcmp(gw_jsonptr_str(&p), "") == 0);
    free(s);
    s = gw_jsonptr_steal(&p); /* nothing pushed: still a string to free */
    CHECK(s != NULL && strcmp(s, "") == 0);
    free(s);
}

/* Far beyond the 256..1024-byte buffers the tree used to have: every byte
 * kept, and the long pointer resolves back to the value. */
static void test_long(void)
{
    struct gw_jsonptr p = GW_JSONPTR_INIT;
    char key[3000];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    key[100] = '/';
    key[2000] = '~';
    json_t *root = json_object(), *cur = root;
    for (int depth = 0; depth < 50; depth++) {
        json_t *next = json_object();
        json_object_set_new(cur, key, next);
        CHECK(gw_jsonptr_push(&p, key) == 0);
        cur = next;
    }
    json_object_set_new(cur, "leaf", json_integer(7));
    CHECK(gw_jsonptr_push(&p, "leaf") == 0);
    CHECK(p.len == 50 * (1 + strlen(key) + 2) + strlen("/leaf"));
    CHECK(strlen(gw_jsonptr_str(&p)) == p.len);
    json_t *v = gw_jsonptr_get(root, gw_jsonptr_str(&p));
    CHECK(json_is_integer(v) && json_integer_value(v) == 7);
    json_decref(root);
    gw_jsonptr_finish(&p);
}

static void test_resolve(void)
{
    json_t *doc = json_loads("{\"foo\":[\"bar\",\"baz\"],\"\":0,\"a/b\":1,\"c%d\":2,\"e^f\":3,"
                             "\"g|h\":4,\"i\\\\j\":5,\"k\\\"l\":6,\" \":7,\"m~n\":8,"
                             "\"deep\":{\"list\":[{\"x\":[10,11]}]}}",
                             0, NULL);
    CHECK(doc != NULL);
    /* The examples of RFC 6901, section 5. */
    CHECK(gw_jsonptr_get(doc, "") == doc);
    CHECK(gw_jsonptr_get(doc, "/foo") == json_object_get(doc, "foo"));
    CHECK(strcmp(json_string_value(gw_jsonptr_get(doc, "/foo/0")), "bar") == 0);
    CHECK(json_integer_value(gw_jsonptr_get(doc, "/")) == 0);
    CHECK(json_integer_value(gw_jsonptr_get(doc, "/a~1b")) == 1);
    CHECK(json_integer_value(gw_jsonptr_get(doc, "/c%d")) == 2);
    CHECK(json_integer_value(gw_jsonptr_get(doc, "/e^f")) == 3);
    CHECK(json_integer_value(gw_jsonptr_get(doc, "/g|h")) == 4);
    CHECK(json_integer_value(gw_jsonptr_get(doc, "/i\\j")) == 5);
    CHECK(json_integer_value(gw_jsonptr_get(doc, "/k\"l")) == 6);
    CHECK(json_integer_value(gw_jsonptr_get(doc, "/ ")) == 7);
    CHECK(json_integer_value(gw_jsonptr_get(doc, "/m~0n")) == 8);
    /* Arrays inside objects inside arrays. */
    CHECK(json_integer_value(gw_jsonptr_get(doc, "/deep/list/0/x/1")) == 11);
    CHECK(json_integer_value(gw_jsonptr_get_n(doc, "/deep/list/0/x/1/zzz", 16)) == 11);
    /* Absent: past the end, "-", leading zeros, signs, not digits, into a
     * scalar, a missing member. */
    CHECK(gw_jsonptr_get(doc, "/foo/2") == NULL);
    CHECK(gw_jsonptr_get(doc, "/foo/-") == NULL);
    CHECK(gw_jsonptr_get(doc, "/foo/01") == NULL);
    CHECK(gw_jsonptr_get(doc, "/foo/+1") == NULL);
    CHECK(gw_jsonptr_get(doc, "/foo/ 1") == NULL);
    CHECK(gw_jsonptr_get(doc, "/foo/") == NULL);
    CHECK(gw_jsonptr_get(doc, "/foo/99999999999999999999999999") == NULL);
    CHECK(gw_jsonptr_get(doc, "/foo/0/x") == NULL);
    CHECK(gw_jsonptr_get(doc, "/nope") == NULL);
    CHECK(gw_jsonptr_get(doc, "/deep/list/0/x/1/") == NULL);
    json_decref(doc);
}

static void test_invalid(void)
{
    json_t *doc = json_loads("{\"a\":{\"~2\":1,\"~\":2,\"b\":3}}", 0, NULL);
    CHECK(gw_jsonptr_valid("", 0));
    CHECK(gw_jsonptr_valid("/a/~0~1", 7));
    CHECK(!gw_jsonptr_valid("a", 1));
    CHECK(!gw_jsonptr_valid("/a/~2", 5));
    CHECK(!gw_jsonptr_valid("/a/~", 4));
    CHECK(!gw_jsonptr_valid("/a/~0", 4)); /* the length cuts the escape in two */
    /* Malformed: never a lookup with a guessed meaning. */
    CHECK(gw_jsonptr_get(doc, "a") == NULL);
    CHECK(gw_jsonptr_get(doc, "a/b") == NULL);
    CHECK(gw_jsonptr_get(doc, "/a/~2") == NULL);
    CHECK(gw_jsonptr_get(doc, "/a/~") == NULL);
    CHECK(json_integer_value(gw_jsonptr_get(doc, "/a/b")) == 3);
    json_decref(doc);
}

int main(void)
{
    test_build();
    test_long();
    test_resolve();
    test_invalid();
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
