#include "rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gw/fs.h"
#include "gw/log.h"
#include "spool.h"

int gw_rundir_take(const char *runs_dir, const char *run_id, int attempt, char *dir, size_t cap,
                   struct gw_error *err)
{
    char path[PATH_MAX + 16];
    int fd;
    if (snprintf(dir, cap, "%s/%s.%d", runs_dir, run_id, attempt) >= (int)cap)
        return gw_error_set(err, GW_EINVAL, false, "run directory path too long");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return gw_error_set(err, GW_EIO, true, "mkdir %s: %s", dir, strerror(errno));
    snprintf(path, sizeof(path), "%s/lock", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return gw_error_set(err, GW_EIO, true, "%s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        gw_error_set(err, GW_EIO, true, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* A spool of this attempt can only be a leftover: start clean. */
    snprintf(path, sizeof(path), "%s/spool", dir);
    unlink(path);
    return fd;
}

bool gw_rundir_supervisor_alive(const char *dir)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, rc;
    if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", dir) >= (int)sizeof(sa.sun_path))
        return false;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    return rc == 0;
}

static void spool_noop(void *arg, const struct gw_spool_rec *rec)
{
    (void)arg;
    (void)rec;
}

/* Looks at one directory; returns 1 when handed to `adopt`. */
static int scan_one(const char *dir, const char *group, gw_rundir_adopt_cb adopt, void *arg)
{
    char path[PATH_MAX + 16];
    struct gw_error err;
    json_t *meta;
    const char *g, *run_id;
    int fd, ended = 0;
    bool alive;

    snprintf(path, sizeof(path), "%s/meta.json", dir);
    meta = json_load_file(path, 0, NULL);
    g = json_string_value(json_object_get(meta, "group"));
    run_id = json_string_value(json_object_get(meta, "run_id"));
    if (g == NULL || strcmp(g, group) != 0 || run_id == NULL ||
        !json_is_integer(json_object_get(meta, "attempt")) ||
        !json_is_string(json_object_get(meta, "worker_id"))) {
        json_decref(meta); /* another group's, or its supervisor has no spec yet */
        return 0;
    }
    snprintf(path, sizeof(path), "%s/lock", dir);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (fd >= 0)
            close(fd); /* a live worker has it */
        json_decref(meta);
        return 0;
    }
    alive = gw_rundir_supervisor_alive(dir);
    snprintf(path, sizeof(path), "%s/spool", dir);
    if (gw_spool_read(path, spool_noop, NULL, &ended, &err) < 0)
        gw_log(GW_LOG_WARN, run_id, "%s", err.message);
    if (!alive && !ended) {
        gw_log(GW_LOG_WARN, run_id,
               "supervisor gone before the run ended: left to the broker (worker_lost)");
        gw_fs_remove_tree(dir);
        json_decref(meta);
        close(fd);
        return 0;
    }
    gw_log(GW_LOG_INFO, run_id, "found a %s supervised run in %s: reattaching",
           alive ? "live" : "finished", dir);
    adopt(arg, dir, meta, fd, alive);
    return 1;
}

int gw_rundir_scan(const char *runs_dir, const char *group, gw_rundir_adopt_cb adopt, void *arg)
{
    DIR *d = opendir(runs_dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char dir[PATH_MAX];
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(dir, sizeof(dir), "%s/%s", runs_dir, e->d_name) >= (int)sizeof(dir))
            continue;
        n += scan_one(dir, group, adopt, arg);
    }
    closedir(d);
    return n;
}
