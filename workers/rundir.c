#include "rundir.h"

#include <dirent.h>
#include <stdlib.h>
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

int gw_rundir_spawn_supervisor(uv_loop_t *loop, struct gw_child *c,
                               const struct gw_run_supervision *sv, gw_child_exit_cb exit_cb,
                               char *msg, size_t msgsz)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char path[PATH_MAX + 32];
    char *argv[] = {(char *)sv->self_exe, "supervise", (char *)sv->run_dir, NULL};
    extern char **environ;
    int fds[3] = {-1, -1, -1}, rc;

    if (strlen(sv->run_dir) + 6 > sizeof(sa.sun_path)) {
        snprintf(msg, msgsz, "state directory too long for a unix socket: %s", sv->run_dir);
        return -1;
    }
    if (mkdir(sv->run_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(msg, msgsz, "mkdir %s: %s", sv->run_dir, strerror(errno));
        return -1;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", sv->run_dir);
    unlink(sa.sun_path);
    fds[0] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fds[0] < 0 || bind(fds[0], (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(fds[0], 8) != 0) {
        snprintf(msg, msgsz, "supervisor socket %s: %s", sa.sun_path, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/supervisor.log", sv->run_dir);
    fds[1] = fds[2] = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fds[1] < 0) {
        snprintf(msg, msgsz, "%s: %s", path, strerror(errno));
        goto fail;
    }
    /* The worker's own environment: the supervisor is gangway too, and its
     * heartbeats need what the worker's claims use (proxies, CA files); a
     * hosted backend reads its settings (GW_TERRAFORM_*) there. A program's
     * scrubbed environment travels in the spec. */
    rc = gw_child_spawn_fds(loop, c, argv, environ, "/", fds, exit_cb);
    if (rc != 0) {
        snprintf(msg, msgsz, "cannot start the supervisor %s: %s", sv->self_exe, uv_strerror(rc));
        goto fail;
    }
    close(fds[0]);
    close(fds[1]);
    return 0;
fail:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    gw_fs_remove_tree(sv->run_dir);
    return -1;
}

struct rm_work {
    uv_work_t work;
    char *a, *b;
};

static void rm_work(uv_work_t *req)
{
    struct rm_work *w = (struct rm_work *)req;
    if (w->a != NULL)
        gw_fs_remove_tree(w->a);
    if (w->b != NULL)
        gw_fs_remove_tree(w->b);
}

static void rm_done(uv_work_t *req, int status)
{
    struct rm_work *w = (struct rm_work *)req;
    (void)status;
    free(w->a);
    free(w->b);
    free(w);
}

void gw_rundir_remove_later(uv_loop_t *loop, const char *a, const char *b)
{
    struct rm_work *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return;
    w->a = a != NULL ? strdup(a) : NULL;
    w->b = b != NULL ? strdup(b) : NULL;
    if (uv_queue_work(loop, &w->work, rm_work, rm_done) != 0)
        rm_done(&w->work, 0);
}
