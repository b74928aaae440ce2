/* File-system helpers: see gw/fs.h. */
#include "gw/fs.h"

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void gw_fs_remove_tree(const char *path)
{
    /* Depth first, so a directory is empty when its turn comes. */
    nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
