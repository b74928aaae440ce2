/*
 * Unit test of the small lib/core primitives: gw/list.h (insert order,
 * removal while walking, a second remove), gw/mem.h (gw_calloc's error,
 * gw_grow's capacities) and gw/fs.h (a tree removed, links not followed).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw/fs.h"
#include "gw/list.h"
#include "gw/mem.h"
#include "../check.h"

/* The out-of-memory paths are tested with sizes no allocator grants; under
 * AddressSanitizer such a request aborts the test unless the allocator may
 * return NULL (the ASAN_OPTIONS of the test environment still apply). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

struct item {
    int n;
    struct gw_list link;
};

static void test_list(void)
{
    struct gw_list head;
    struct item it[4];
    gw_list_init(&head);
    CHECK(gw_list_empty(&head));
    for (int i = 0; i < 4; i++) {
        it[i].n = i;
        gw_list_insert(&head, &it[i].link);
    }
    CHECK(!gw_list_empty(&head));
    int want = 3; /* newest first */
    gw_list_foreach (l, &head)
        CHECK(gw_list_entry(l, struct item, link)->n == want--);
    CHECK(want == -1);
    gw_list_foreach_safe (l, next, &head) {
        if (gw_list_entry(l, struct item, link)->n % 2 == 1)
            gw_list_remove(l);
    }
    want = 2;
    gw_list_foreach (l, &head) {
        CHECK(gw_list_entry(l, struct item, link)->n == want);
        want -= 2;
    }
    CHECK(want == -2);
    gw_list_remove(&it[1].link); /* already out: nothing happens */
    gw_list_remove(&it[0].link);
    gw_list_remove(&it[2].link);
    CHECK(gw_list_empty(&head));
}

static void test_mem(void)
{
    struct gw_error err = {0};
    int *p = gw_calloc(4, sizeof(*p), &err);
    CHECK(p != NULL && p[3] == 0 && err.code == 0);
    free(p);
    CHECK(gw_calloc(1, (size_t)-1, &err) == NULL);
    CHECK(err.code == GW_ENOMEM && !err.retriable && strcmp(err.message, "out of memory") == 0);

    char *buf = NULL;
    size_t cap = 0;
    CHECK(gw_grow(&buf, &cap, 0, 16) == 0 && buf == NULL && cap == 0); /* fits already */
    CHECK(gw_grow(&buf, &cap, 10, 16) == 0 && buf != NULL && cap == 16);
    CHECK(gw_grow(&buf, &cap, 16, 16) == 0 && cap == 16);
    CHECK(gw_grow(&buf, &cap, 40, 16) == 0 && cap == 64);
    char *was = buf;
    CHECK(gw_grow(&buf, &cap, (size_t)-1 / 2, 16) == -1 && buf == was && cap == 64);
    CHECK(gw_grow(&buf, &cap, (size_t)-1, 16) == -1 && buf == was && cap == 64); /* no wrap */
    free(buf);
}

static void test_fs(void)
{
    char dir[] = "/tmp/gw-prims-XXXXXX", keep[] = "/tmp/gw-prims-keep-XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL && mkdtemp(keep) != NULL);
    snprintf(path, sizeof(path), "%s/a", dir);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof(path), "%s/a/f", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fclose(f);
    snprintf(path, sizeof(path), "%s/link", dir);
    CHECK(symlink(keep, path) == 0);
    gw_fs_remove_tree(dir);
    CHECK(access(dir, F_OK) != 0);
    CHECK(access(keep, F_OK) == 0); /* the link went, not what it named */
    gw_fs_remove_tree(keep);
    CHECK(access(keep, F_OK) != 0);
}

int main(void)
{
    test_list();
    test_mem();
    test_fs();
    printf("core primitives: ok\n");
    return 0;
}
