#include "child.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* execvp's lookup, but in the child's PATH: the first executable regular
 * file named `name` in a PATH directory. */
static int find_program(const char *name, char *const envp[], char *out, size_t cap)
{
    const char *path = DEFAULT_PATH;
    for (char *const *e = envp; e != NULL && *e != NULL; e++)
        if (strncmp(*e, "PATH=", 5) == 0) {
            path = *e + 5;
            break;
        }
    int found_noexec = 0;
    while (*path != '\0') {
        const char *end = strchr(path, ':');
        size_t dlen = end != NULL ? (size_t)(end - path) : strlen(path);
        struct stat st;
        /* Relative entries ("", ".", "bin") would be resolved against the
         * worker's directory here but the run's after the chdir: skip them. */
        int n = path[0] != '/' ? -1 : snprintf(out, cap, "%.*s/%s", (int)dlen, path, name);
        if (n > 0 && (size_t)n < cap && stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(out, X_OK) == 0)
                return 0;
            found_noexec = 1;
        }
        if (end == NULL)
            break;
        path = end + 1;
    }
    return found_noexec ? -EACCES : -ENOENT;
}

static void on_pidfd(uv_poll_t *h, int status, int events)
{
    struct gw_child *c = (struct gw_child *)h;
    int st = 0;
    pid_t r;
    (void)events;

    do
        r = waitpid(c->pid, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0) {
        /* Not yet: a spurious wake-up. After an error libuv has stopped the
         * handle; watch again rather than wait forever. */
        if (status < 0)
            uv_poll_start(h, UV_READABLE, on_pidfd);
        return;
    }
    /* The pidfd stays open until the handle is closed (gw_child_close):
     * closing it first would let libuv's epoll cleanup hit whatever file
     * reuses the number. */
    uv_poll_stop(h);
    int64_t code = 0;
    int sig = 0;
    if (r > 0 && WIFEXITED(st))
        code = WEXITSTATUS(st);
    else if (r > 0 && WIFSIGNALED(st))
        sig = WTERMSIG(st);
    else
        code = -1; /* reaped by someone else: outcome unknown */
    c->exit_cb(c, code, sig);
}

/* posix_spawn of argv[0] with fds[0..2] as its stdin, stdout and stderr, then
 * its pidfd on the loop. On failure no process exists and nothing is
 * initialised; the caller's descriptors are left open either way. */
static int spawn_with(uv_loop_t *loop, struct gw_child *c, char *const argv[], char *const envp[],
                      const char *cwd, const int fds[3], gw_child_exit_cb exit_cb)
{
    char found[PATH_MAX];
    const char *file = argv[0];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    int rc, i;

    c->pid = -1;
    c->pidfd = -1;
    c->exit_cb = exit_cb;
    c->close_cb = NULL;
    if (strchr(file, '/') == NULL) {
        rc = find_program(file, envp, found, sizeof(found));
        if (rc < 0)
            return rc;
        file = found;
    }

    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    /* Every signal back to its default: dispositions the worker set to
     * SIG_IGN (SIGPIPE) would otherwise survive the exec. */
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                             POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    for (i = 0; i < 3 && rc == 0; i++)
        rc = posix_spawn_file_actions_adddup2(&fa, fds[i], i);
    if (rc == 0 && cwd != NULL)
        rc = posix_spawn_file_actions_addchdir_np(&fa, cwd);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (rc == 0)
        rc = posix_spawn(&c->pid, file, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        c->pid = -1;
        return -rc;
    }

    c->pidfd = pidfd_open(c->pid, 0);
    if (c->pidfd < 0) {
        rc = -errno;
        goto fail_child;
    }
    /* pidfds are close-on-exec from birth. */
    if ((rc = uv_poll_init(loop, &c->poll, c->pidfd)) != 0)
        goto fail_child;
    /* On a new handle with a callback, uv_poll_start only queues the watcher
     * (libuv reports no error for a pollable fd, which a pidfd is). */
    uv_poll_start(&c->poll, UV_READABLE, on_pidfd);
    return 0;

fail_child:
    /* Cannot watch it: do not leave it running unobserved. */
    kill(-c->pid, SIGKILL);
    while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    if (c->pidfd >= 0) {
        close(c->pidfd);
        c->pidfd = -1;
    }
    c->pid = -1;
    return rc;
}

int gw_child_spawn(uv_loop_t *loop, struct gw_child *c, char *const argv[], char *const envp[],
                   const char *cwd, uv_pipe_t *in, uv_pipe_t *out, uv_pipe_t *err,
                   gw_child_exit_cb exit_cb)
{
    int sp[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}; /* [i][0] ours, [i][1] the child's */
    int theirs[3];
    int rc, i;

    for (i = 0; i < 3; i++)
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp[i]) != 0) {
            rc = -errno;
            goto fail_fds;
        }
    for (i = 0; i < 3; i++)
        theirs[i] = sp[i][1];
    rc = spawn_with(loop, c, argv, envp, cwd, theirs, exit_cb);
    if (rc != 0)
        goto fail_fds;
    for (i = 0; i < 3; i++) {
        close(sp[i][1]);
        sp[i][1] = -1;
    }
    uv_pipe_open(in, sp[0][0]);
    uv_pipe_open(out, sp[1][0]);
    uv_pipe_open(err, sp[2][0]);
    return 0;

fail_fds:
    for (i = 0; i < 3; i++) {
        if (sp[i][0] >= 0)
            close(sp[i][0]);
        if (sp[i][1] >= 0)
            close(sp[i][1]);
    }
    return rc;
}

int gw_child_spawn_fds(uv_loop_t *loop, struct gw_child *c, char *const argv[], char *const envp[],
                       const char *cwd, const int fds[3], gw_child_exit_cb exit_cb)
{
    return spawn_with(loop, c, argv, envp, cwd, fds, exit_cb);
}

static void child_closed(uv_handle_t *h)
{
    struct gw_child *c = (struct gw_child *)h;
    if (c->pidfd >= 0) {
        close(c->pidfd);
        c->pidfd = -1;
    }
    if (c->close_cb != NULL)
        c->close_cb(h);
}

void gw_child_close(struct gw_child *c, uv_close_cb cb)
{
    c->close_cb = cb;
    uv_close((uv_handle_t *)&c->poll, child_closed);
}
