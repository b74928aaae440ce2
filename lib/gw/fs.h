/*
 * File-system helpers shared by the workers' backends and their tests.
 * Blocking: call them from the thread pool (or a test), never on the loop.
 */
#ifndef GW_FS_H
#define GW_FS_H

/* rm -rf `path`: removes it and, when it is a directory, everything below
 * it, without following symbolic links. Best effort: what cannot be
 * removed is left where it is, and nothing is reported. */
void gw_fs_remove_tree(const char *path);

#endif
