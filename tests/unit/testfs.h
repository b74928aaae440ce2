/*
 * Files for the C unit tests: writing a fixture file and removing a test's
 * temporary tree. A failure to write is the test's failure: it aborts.
 */
#ifndef GW_TEST_TESTFS_H
#define GW_TEST_TESTFS_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Writes `text` to `path` (created or truncated). */
static inline void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        abort();
    }
    fputs(text, f);
    fclose(f);
}

/* Writes `text` to dir/name. */
static inline void write_file_in(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    write_file(path, text);
}

static inline int remove_one_(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Removes `path` and everything below it, as far as it can. */
static inline void remove_tree(const char *path)
{
    nftw(path, remove_one_, 32, FTW_DEPTH | FTW_PHYS);
}

#endif
