/*
 * The worker backend interface: what a worker type implements, and the run
 * context the runtime hands it.
 *
 * A backend of worker type <name> defines four functions,
 * gw_<name>_backend_create/start/cancel/destroy, with the contracts of the
 * slots of struct gw_backend_impl below. It writes no table: the `backends`
 * build option generates workers/registry.h (their prototypes, which the
 * backend includes) and workers/registry.c (one table per backend, with its
 * name and its embedded config schema). The runtime owns every struct
 * gw_run; the backend only owns what it hangs on run->backend_data.
 *
 * Lifecycle of one run, all on the loop thread:
 *
 *   create(run)            validate run->config, allocate backend_data
 *   start(run)             begin the work (spawn, connect...)
 *     ... gw_run_log(run, ...)        any number of times
 *     ... cancel(run, why)            zero or more times, from the runtime
 *   gw_run_finish_*(run, ...)  exactly once, from a loop callback, never
 *                              from inside start() or cancel(), and only
 *                              once every loop handle of the run is closed
 *   destroy(run)           frees backend_data (synchronous)
 *
 * Threading: loop thread only. Backends must never block the loop: child
 * processes through workers/child.h (posix_spawn and a pidfd on the loop;
 * decision 0017), HTTP through the shared non-blocking client, blocking
 * libraries (libgit2) on uv_queue_work.
 */
#ifndef GW_WORKERS_BACKEND_H
#define GW_WORKERS_BACKEND_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "gw/error.h"

struct gw_run;

enum gw_run_outcome {
    GW_RUN_SUCCEEDED,
    GW_RUN_FAILED,
    GW_RUN_TIMED_OUT,
    GW_RUN_CANCELLED,
    GW_RUN_DETACHED, /* detach() took effect: the work goes on under its
                        supervisor, nothing is reported (docs/reattach.md) */
};

/* Why the runtime asks a backend to stop. */
enum gw_cancel_reason {
    GW_CANCEL_REQUESTED, /* a user cancelled the run */
    GW_CANCEL_SHUTDOWN,  /* the worker is shutting down and the grace expired */
};

struct gw_run_result {
    enum gw_run_outcome outcome;
    json_t *outputs;     /* SUCCEEDED: a JSON object (owned by the result);
                            FAILED: NULL or the evidence of
                            gw_run_finish_failed_with() */
    const char *reason;  /* FAILED: one of run.failed's reasons
                            (schemas/events/run.failed.schema.json): "exit_code",
                            "bad_outputs", "spawn_failed", "backend_error", or a
                            backend's own ("invalid_path"... for git) */
    int exit_code;       /* FAILED: the exit code, -1 when there is none */
    const char *message; /* human-readable detail, may be NULL */
};

/* Where a run's log lines and result go: the runtime (events on Kafka) or a
 * test. `finish` receives the result by borrowed pointer; it must take a
 * reference on outputs if it keeps them. */
struct gw_run_sink {
    void (*log)(struct gw_run *run, const char *stream, const char *line, size_t len);
    void (*finish)(struct gw_run *run, const struct gw_run_result *result);
};

/* What a backend that supports supervision (the `reattach`/`detach` slots)
 * needs to run the work under `gangway supervise` (docs/reattach.md).
 * Runtime-owned, valid until destroy(). */
struct gw_run_supervision {
    const char *self_exe;   /* the gangway binary, for `gangway supervise` */
    const char *run_dir;    /* this attempt's directory under the state dir */
    const char *broker_url; /* for the supervisor's heartbeats */
    const char *token;      /* the worker token, may be NULL */
    const char *worker_id;  /* the claim's worker id (the job id) */
    const char *key;        /* the run's Kafka key, kept for a reattaching worker */
    const char *group;      /* the worker's consumer group: who may reattach it */
    const char *backend;    /* the real backend's name (hosted runs, hosted.h) */
    int heartbeat_ms;
    int linger_seconds; /* how long a finished supervisor waits for a worker */
};

/* The run context. Filled by the runtime before create(); every field but
 * backend_data is read-only to the backend and valid until destroy(). */
struct gw_run {
    uv_loop_t *loop;
    const char *run_id;
    int attempt;
    const char *action_id;
    const char *action_version;
    const char *requested_by; /* the requester's subject */
    json_t *inputs;           /* the full inputs object (secrets included) */
    json_t *config;           /* the action's "backend" object */
    int timeout_seconds;      /* 0 = no timeout */
    const char *resource_key; /* the resource this run acts on (never NULL:
                                 the action's resource key value or the run id) */
    const char *operation;    /* "create", "teardown", "plan", "reconcile", "drift", "undo" */
    json_t *resource;         /* the resource the run acts on, from the claim: {id, kind,
                                 name, outputs} (outputs: what its last run reported, e.g.
                                 the files a git run wrote); NULL when there is none yet */
    json_t *secret_paths;     /* JSON pointers into inputs of secret values
                                 (writeOnly); may be an empty array */
    json_t *secret_values;    /* runtime-owned: the strings gw_run_log masks
                                 (each secret, and its base64 and URL forms) */
    const struct gw_run_sink *sink;
    void *sink_data;    /* the sink's */
    void *backend_data; /* the backend's, between create() and destroy() */
    bool finished;      /* set by gw_run_finish_* */
    /* Supervision: NULL when the worker runs programs itself. */
    const struct gw_run_supervision *supervise;
    bool supervised;      /* set by the backend: a supervisor heartbeats this run through
                             the broker, so the runtime publishes no run.heartbeat (event
                             seqs then follow the spool, spool.h) */
    bool final_delivered; /* set by the runtime before destroy(): the final event is
                             acknowledged, the supervised run's directory may go */
};

/* One backend's table, generated in workers/registry.c (never written by
 * hand): the slots are the backend's gw_<name>_backend_* functions. */
struct gw_backend_impl {
    const char *name;          /* the worker type, e.g. "exec" */
    const char *config_schema; /* JSON Schema (2020-12) text of the action's
                                  "backend" object: schemas/backends/<name>.json,
                                  embedded in libgw (gw/embed.h), which the
                                  broker validates action definitions against */

    /* Validates run->config and allocates run->backend_data. Must not start
     * anything or create loop handles. Returns 0, or < 0 with `err` filled
     * (GW_EINVAL for a bad config): the runtime then reports run.failed with
     * reason "backend_error" and calls destroy(). */
    int (*create)(struct gw_run *run, struct gw_error *err);

    /* Starts the work. Returns 0: exactly one gw_run_finish_*() follows later.
     * Returns < 0 only when nothing was started and no handle needs closing:
     * no finish follows, the runtime reports run.failed ("spawn_failed") and
     * calls destroy(). Failures after a handle exists (e.g. a spawn failing
     * after the pipes were made) must be reported through finish instead. */
    int (*start)(struct gw_run *run, struct gw_error *err);

    /* Asks the work to stop. Returns 0 when a stop was initiated: finish will
     * report CANCELLED (or whatever the run reached first). Returns
     * GW_ECONFLICT when the run is already ending (nothing to do). Never
     * calls finish synchronously. May be called more than once. */
    int (*cancel)(struct gw_run *run, enum gw_cancel_reason why);

    /* The backend's runs may be hosted by their supervisor (hosted.h): the
     * worker then uses gw_hosted_backend's functions for them. */
    bool hosted;

    /* Optional (NULL: the backend never supervises). Like start(), but the
     * work already runs under the supervisor of run->supervise->run_dir,
     * started by an earlier worker process for this same attempt: attach to
     * it (or read its finished spool) and finish the run from there. Same
     * return rules as start(). */
    int (*reattach)(struct gw_run *run, struct gw_error *err);

    /* Optional. Lets go of a supervised run without stopping it (the
     * worker's handoff drain): returns 0 when finish will follow with
     * DETACHED once the run's handles are closed, GW_ECONFLICT when the run
     * is not supervised or already ending, GW_EUNAVAIL when its supervisor
     * has not yet confirmed it holds the spec (supline.h: a later worker
     * could not find the run): ask again shortly. */
    int (*detach)(struct gw_run *run);

    /* Frees backend_data. Called after finish, or after create()/start()
     * failed. Accepts run->backend_data == NULL. Synchronous. */
    void (*destroy)(struct gw_run *run);

    /* Optional (NULL for most): ends what the backend keeps between runs
     * (exec's persistent programs), once, when the worker stops and no run
     * of it is left. Its handles close on their own afterwards; the loop
     * runs until they have. */
    void (*shutdown)(uv_loop_t *loop);
};

/* The registry (workers/registry.c, generated). NULL when no backend has that name. */
const struct gw_backend_impl *gw_backend_lookup(const char *name);
/* The registered backends, for listings: *n receives their number. */
const struct gw_backend_impl *const *gw_backend_list(size_t *n);

/* ------------------------------------------------- run context, for backends */

/* Emits one log line (`len` bytes, no newline; longer than 16 KiB is split
 * by the runtime). `stream` is "stdout" or "stderr". Ignored after finish. */
void gw_run_log(struct gw_run *run, const char *stream, const char *line, size_t len);

/* Ends the run; exactly one of these, once. `outputs` is stolen (NULL = {}). */
void gw_run_finish_succeeded(struct gw_run *run, json_t *outputs);
void gw_run_finish_failed(struct gw_run *run, const char *reason, int exit_code,
                          const char *message);
/* Failed, with evidence the broker keeps with the failed run: `outputs`
 * (stolen, may be NULL) holds what schemas/events/run.failed.schema.json
 * allows beside the reason — today `plan_checks`, the findings of a plan
 * that failed its compliance checks (docs/plan-checks.md). */
void gw_run_finish_failed_with(struct gw_run *run, const char *reason, int exit_code,
                               const char *message, json_t *outputs);
void gw_run_finish_timed_out(struct gw_run *run, const char *message);
void gw_run_finish_cancelled(struct gw_run *run, const char *message);
/* After a detach() that returned 0: the run goes on elsewhere. */
void gw_run_finish_detached(struct gw_run *run);

/* Collects the values gw_run_log must mask: for each pointer in
 * `secret_paths`, the value in `inputs` (strings as they are, other JSON as
 * compact text) plus its base64 and URL-encoded forms, skipping values
 * shorter than 3 bytes. Returns a new array (empty when there are none). */
json_t *gw_run_secret_values(json_t *inputs, json_t *secret_paths);

/* Secret masking for what leaves the worker besides log lines (outputs,
 * failure messages): a malloc'd masked copy of `text`, or NULL when nothing
 * matched; and a masked deep copy of `value` (new reference). */
char *gw_run_mask_text(const struct gw_run *run, const char *text);
json_t *gw_run_mask_json(const struct gw_run *run, json_t *value);

/* The longest line a log event carries. */
#define GW_RUN_LOG_LINE_MAX 16384

#endif
