/*
 * Starting a child process without fork(): posix_spawn (glibc clones with
 * CLONE_VM | CLONE_VFORK, so the worker's page tables are not copied) and a
 * pidfd watched on the loop for its exit.
 *
 * libuv 1.44's uv_spawn forks on Linux; in a worker with librdkafka's
 * threads and buffers mapped, copying the page tables (and the copy-on-write
 * faults after it) was the largest single cost of an exec run
 * (bench/README.md). The child is set up like uv_spawn's with
 * UV_PROCESS_DETACHED: a new session (its own process group), every signal
 * at its default disposition and unblocked (except glibc's two internal
 * real-time signals, 32 and 33, which glibc's posix_spawn leaves ignored),
 * stdin/stdout/stderr on Unix
 * socket pairs whose other ends become uv_pipe_t handles, nothing else
 * inherited (closefrom 3), the working directory set; a program name without
 * a slash is looked up in the absolute directories of the PATH of the
 * child's environment (relative entries are skipped).
 *
 * Needs Linux >= 5.3 (pidfd_open) and glibc >= 2.34 (closefrom action).
 */
#ifndef GW_WORKER_CHILD_H
#define GW_WORKER_CHILD_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct gw_child;

/* The child has exited and been reaped: exit_status is its exit code (or 0
 * when signalled), term_signal the signal that ended it (or 0). */
typedef void (*gw_child_exit_cb)(struct gw_child *c, int64_t exit_status, int term_signal);

struct gw_child {
    uv_poll_t poll; /* on the pidfd; the caller uv_close()s it when done */
    pid_t pid;
    int pidfd;
    gw_child_exit_cb exit_cb;
    uv_close_cb close_cb;
    void *data;
};

/* Starts argv[0] with envp in cwd. `in`, `out`, `err` are initialised but
 * unopened uv_pipe_t handles: on success they hold the parent's ends of the
 * child's stdin (writable), stdout and stderr (readable). On success
 * c->poll is an initialised, active handle; on failure nothing is
 * initialised, no process exists, and the errno-style code is returned
 * negated (-ENOENT: program not found, -ENOEXEC: not an executable format,
 * e.g. a script without a #! line — there is no /bin/sh fallback). */
int gw_child_spawn(uv_loop_t *loop, struct gw_child *c, char *const argv[], char *const envp[],
                   const char *cwd, uv_pipe_t *in, uv_pipe_t *out, uv_pipe_t *err,
                   gw_child_exit_cb exit_cb);

/* The same with the child's stdin, stdout and stderr given (fds[0..2],
 * left open for the caller to close) instead of socket pairs: the run
 * supervisor gets its listening socket as stdin and its log file as stdout
 * and stderr (docs/reattach.md). */
int gw_child_spawn_fds(uv_loop_t *loop, struct gw_child *c, char *const argv[], char *const envp[],
                       const char *cwd, const int fds[3], gw_child_exit_cb exit_cb);

/* Closes the handle and then the pidfd; `cb` gets &c->poll. Once, after a
 * successful spawn (normally from or after exit_cb; closing earlier stops
 * watching a process that keeps running). */
void gw_child_close(struct gw_child *c, uv_close_cb cb);

#endif
