/*
 * The persistent mode of the exec backend (docs/persistent-exec.md,
 * docs/decisions/0052): one long-running program per worker slot, runs sent
 * to it as JSON lines on stdin, its answers read as JSON lines on stdout
 * (exec_proto.h). exec.c hands a run here when its config says
 * "mode": "persistent"; both kinds of backend_data start with the mode.
 *
 * The programs outlive runs: they live in a pool owned by this file, one
 * per worker process (a worker has exactly one loop), keyed by the action's
 * command and env. An idle program's handles are unreferenced, so they never
 * keep a loop alive; gw_exec_backend_shutdown() (the backend's shutdown
 * slot, called by the runtime once no run is left) ends them: stdin closed,
 * SIGTERM, SIGKILL after the grace. Loop thread only.
 */
#ifndef GW_EXEC_PERSIST_H
#define GW_EXEC_PERSIST_H

#include "backend.h"

enum exec_mode { EXEC_MODE_SPAWN, EXEC_MODE_PERSISTENT };

/* The slots of backend.h for a persistent run (config already checked by
 * exec.c: command, env, kill_grace_seconds). */
int gw_exec_persist_create(struct gw_run *run, uint64_t grace_ms, struct gw_error *err);
int gw_exec_persist_start(struct gw_run *run, struct gw_error *err);
int gw_exec_persist_cancel(struct gw_run *run, enum gw_cancel_reason why);
void gw_exec_persist_destroy(struct gw_run *run);

/* Ends every idle program (the busy ones end with their runs' kill). */
void gw_exec_persist_shutdown(void);

#endif
