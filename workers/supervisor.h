/*
 * The run supervisor (`gangway supervise RUN_DIR`, internal; docs/reattach.md,
 * decision 0041): one process per supervised run that owns the program, its
 * stdout/stderr and its exit status, so the run outlives the worker.
 *
 * The worker creates RUN_DIR, binds and listens on RUN_DIR/sock and starts
 * the supervisor (posix_spawn, a session of its own: not in the worker's
 * process group, not killed with it; `gangway supervise` forks once more and
 * the spawned process exits, so the supervisor is not the worker's child)
 * with that listening socket as stdin and
 * RUN_DIR/supervisor.log as stdout and stderr. It then connects and sends the
 * spec, one JSON line:
 *
 *   {"run_id", "attempt", "worker_id" (the claim's), "key", "argv", "envp",
 *    "cwd", "stdin", "timeout_seconds", "grace_ms", "broker_url", "token",
 *    "heartbeat_ms", "linger_seconds", "workdir", "outputs"}
 *
 * The supervisor writes RUN_DIR/meta.json (the spec without stdin, envp and
 * token: what a later worker needs to reattach), starts the program (as the
 * exec backend does), spools every line to RUN_DIR/spool (spool.h) and sends
 * it to the attached worker, enforces timeout_seconds itself (SIGTERM to the
 * group, SIGKILL after grace_ms), and heartbeats the run every heartbeat_ms
 * through POST /internal/v1/runs/{id}/heartbeat whether or not a worker is
 * attached; the answer brings a cancel (cancel_requested) or says the run is
 * no longer this attempt's (the program is killed, RUN_DIR removed).
 *
 * A worker talks to it in lines: the first line of a later connection is
 * "attach" (answered {"busy":true} when another worker is attached: one at a
 * time), after which the whole spool is replayed and live records follow;
 * "cancel" stops the program; "done" (after the EXIT record) ends the
 * supervisor — the worker removes RUN_DIR once its final event is delivered.
 * Without "done" the supervisor lingers linger_seconds after the program
 * ended, heartbeating, then exits and leaves the spool for a later worker.
 *
 * Its own loop, its own process: blocking writes to the spool and the replay
 * read are its business and never reach a worker's loop.
 */
#ifndef GW_WORKERS_SUPERVISOR_H
#define GW_WORKERS_SUPERVISOR_H

/* Runs the supervisor of RUN_DIR until it is done. Returns the process exit
 * code. The process must have called gw_claim_global_init(). */
int gw_supervise(const char *run_dir);

#endif
