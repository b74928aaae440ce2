/* Safe file access for the git backend (see git_fs.h). */
#include "git_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "git_path.h"
#include "gw/error.h"

#define MAX_TEMPLATE (1u << 20)

int gw_gitb_fs_write(const char *root, const char *path, const char *data, size_t len, char *msg,
                     size_t cap)
{
    char comp[256];
    const char *p = path;
    int dfd, fd, rc = GW_EIO;
    struct stat st;

    if (gw_gitb_path_check(path, strlen(path), msg, cap) != 0)
        return GW_EINVAL;
    dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        gw_gitb_failf(msg, cap, "cannot open the work tree: %s", strerror(errno));
        return GW_EIO;
    }
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        memcpy(comp, p, n);
        comp[n] = '\0';
        if (slash == NULL)
            break;
        if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT || mkdirat(dfd, comp, 0755) != 0) {
                gw_gitb_failf(msg, cap, "cannot create directory '%s' of '%s': %s", comp, path,
                              strerror(errno));
                goto out;
            }
        } else if (S_ISLNK(st.st_mode)) {
            gw_gitb_failf(msg, cap, "refusing to write '%s': '%s' is a symbolic link", path, comp);
            rc = GW_EINVAL;
            goto out;
        } else if (!S_ISDIR(st.st_mode)) {
            gw_gitb_failf(msg, cap, "refusing to write '%s': '%s' is not a directory", path, comp);
            rc = GW_EINVAL;
            goto out;
        }
        int next = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            /* Swapped for a symlink since the fstatat: still a refusal. */
            int e = errno;
            gw_gitb_failf(msg, cap, "refusing to write '%s': cannot open '%s': %s", path, comp,
                          strerror(e));
            rc = e == ELOOP || e == ENOTDIR ? GW_EINVAL : GW_EIO;
            goto out;
        }
        close(dfd);
        dfd = next;
        p = slash + 1;
    }
    if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
        gw_gitb_failf(msg, cap, "refusing to write '%s': it exists and is not a regular file%s",
                      path, S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
        rc = GW_EINVAL;
        goto out;
    }
    fd = openat(dfd, comp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        gw_gitb_failf(msg, cap, "cannot write '%s': %s", path, strerror(e));
        rc = e == ELOOP ? GW_EINVAL : GW_EIO;
        goto out;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            gw_gitb_failf(msg, cap, "cannot write '%s': %s", path, strerror(errno));
            close(fd);
            goto out;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0) {
        gw_gitb_failf(msg, cap, "cannot write '%s': %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    close(dfd);
    return rc;
}

int gw_gitb_fs_read(const char *dir, const char *rel, char **out, size_t *len, char *msg,
                    size_t cap)
{
    char path[4096];
    struct stat st;
    int fd;
    char *buf;
    size_t n = 0;

    *out = NULL;
    if (rel[0] == '/' || strstr(rel, "..") != NULL)
        return gw_gitb_failf(msg, cap, "template '%s' must be relative without '..'", rel);
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) >= sizeof(path))
        return gw_gitb_failf(msg, cap, "template path too long");
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return gw_gitb_failf(msg, cap, "cannot open template '%s': %s", rel, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_TEMPLATE) {
        close(fd);
        return gw_gitb_failf(msg, cap, "template '%s' is not a regular file of at most 1 MiB", rel);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return gw_gitb_failf(msg, cap, "out of memory");
    }
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int gw_gitb_fs_mkdirs(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}
