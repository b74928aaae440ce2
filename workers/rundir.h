/*
 * The directories of supervised runs under a worker's state dir
 * (docs/reattach.md): <state dir>/<run id>.<attempt>, each with a `lock`
 * that the worker owning the run holds (flock), the supervisor's `sock`,
 * `meta.json` and `spool`.
 *
 * Blocking file system calls (and a connect to a local socket): the worker
 * uses them at start-up and where the exec backend already makes its
 * workdir. Any thread.
 */
#ifndef GW_WORKERS_RUNDIR_H
#define GW_WORKERS_RUNDIR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "backend.h"
#include "child.h"
#include "gw/error.h"

/* Creates <runs_dir>/<run_id>.<attempt> (0700) into dir[cap], takes its
 * lock and removes a leftover spool of that attempt. Returns the lock's
 * descriptor (close-on-exec; close it to let the run go), or -1 with `err`
 * filled (the directory is held by another worker, or cannot be made). */
int gw_rundir_take(const char *runs_dir, const char *run_id, int attempt, char *dir, size_t cap,
                   struct gw_error *err);

/* Whether a supervisor accepts connections on <dir>/sock. */
bool gw_rundir_supervisor_alive(const char *dir);

/* A run to adopt: its directory, meta.json (stolen), the lock's descriptor
 * (stolen) and whether its supervisor is alive (else its spool is
 * finished). */
typedef void (*gw_rundir_adopt_cb)(void *arg, const char *dir, json_t *meta, int lock_fd,
                                   bool alive);

/* Walks `runs_dir`. For each directory of `group` (meta.json's "group")
 * whose lock is free: supervisor alive or spool finished -> `adopt`; else
 * (supervisor dead mid-run: a host loss) the directory is removed and the
 * run left to the broker's worker_lost rule. Skipped: other groups',
 * locked ones, and ones without a readable meta.json (a supervisor that
 * never got its spec removes its directory itself). Returns the number of
 * runs handed to `adopt`. */
int gw_rundir_scan(const char *runs_dir, const char *group, gw_rundir_adopt_cb adopt, void *arg);

/* Binds and listens on <run_dir>/sock and starts `gangway supervise
 * <run_dir>` (sv->self_exe) with that socket as stdin and
 * <run_dir>/supervisor.log as stdout and stderr, in `c` (child.h; its
 * exit_cb sees the first process of the supervisor's double fork exit).
 * Returns 0, or -1 with `msg` filled and the directory removed. The caller
 * sets c->poll.data. */
int gw_rundir_spawn_supervisor(uv_loop_t *loop, struct gw_child *c,
                               const struct gw_run_supervision *sv, gw_child_exit_cb exit_cb,
                               char *msg, size_t msgsz);

/* Removes the two trees on the thread pool, fire and forget (`b` may be
 * NULL): a supervised run's directories once its final event is delivered. */
void gw_rundir_remove_later(uv_loop_t *loop, const char *a, const char *b);

#endif
