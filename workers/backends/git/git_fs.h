/*
 * Filesystem side of the git backend: writing into a work tree without
 * following symlinks, reading templates. The path rules are git_path.h's.
 *
 * Threading: any thread (the worker thread in practice); no state.
 */
#ifndef GW_GIT_FS_H
#define GW_GIT_FS_H

#include <stddef.h>

/* Writes data to root/path (path checked by gw_gitb_path_check), creating
 * missing directories. Every existing component is examined with
 * fstatat(AT_SYMLINK_NOFOLLOW) relative to its parent's descriptor and opened
 * with O_NOFOLLOW, so a symlink anywhere on the way is refused rather than
 * followed. Returns 0; GW_EINVAL when the path is refused (git_path.h's rules,
 * a symlink or a non-directory on the way, an existing non-regular file);
 * GW_EIO when the file system fails. msg[cap] says why. */
int gw_gitb_fs_write(const char *root, const char *path, const char *data, size_t len, char *msg,
                     size_t cap);

/* Reads dir/rel (rel: relative, no "..") without following a symlink in its
 * last component; at most 1 MiB. Returns 0 with *out (malloc'd, NUL-added)
 * or -1 with msg[cap]. */
int gw_gitb_fs_read(const char *dir, const char *rel, char **out, size_t *len, char *msg,
                    size_t cap);

/* mkdir -p with mode 0700 for new directories. Returns 0 or -errno. */
int gw_gitb_fs_mkdirs(const char *path);

#endif
