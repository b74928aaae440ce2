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

#endif
