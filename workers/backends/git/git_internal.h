/*
 * Internals of the git backend, shared by its files (not a public API).
 *
 * One run is a struct gw_gitb_job. The loop thread (git.c) fills it, queues
 * gw_gitb_work_run() on the libuv thread pool and, until the work's done
 * callback, touches only `stop` and the log queue. The worker thread owns
 * everything else in the job until it returns. Log lines travel from the
 * worker thread to the loop through the mutex-protected queue and a
 * uv_async_t (gw_gitb_job_log).
 */
#ifndef GW_GIT_INTERNAL_H
#define GW_GIT_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "gw/error.h"

enum gw_gitb_pr_api { GW_GIT_PR_NONE = 0, GW_GIT_PR_GITEA, GW_GIT_PR_GITHUB, GW_GIT_PR_GITLAB };

struct gw_gitb_file {
    char *template; /* relative to templates_dir, validated */
    char *path;     /* template of the destination path */
};

/* The action's "backend" object, validated (gw_gitb_config_parse). */
struct gw_gitb_config {
    char *repository;
    char *branch;
    char *push_branch; /* template, NULL = push to branch */
    struct gw_gitb_file *files;
    size_t nfiles;
    char *templates_dir;
    char *commit_message; /* template */
    char *email_domain;
    int max_retries;
    char *token_env, *token_username, *ssh_key_env;
    enum gw_gitb_pr_api pr_api;
    char *pr_url, *pr_token_env, *pr_owner, *pr_repo;
};

/* Returns 0, or GW_EINVAL with `err` naming the offending key (never a
 * credential: URLs in messages are scrubbed). */
int gw_gitb_config_parse(json_t *cfg, struct gw_gitb_config *c, struct gw_error *err);
void gw_gitb_config_finish(struct gw_gitb_config *c);

/* A branch name we accept: git_reference_name_is_valid("refs/heads/<name>"),
 * only [A-Za-z0-9._/+-], no leading '-', not "@", at most 255 bytes. */
bool gw_gitb_branch_valid(const char *name);

/* Copies `in` into out[cap] with the userinfo of every URL removed
 * (the user:password part becomes three asterisks) and every non-empty string of
 * `secrets` (NULL-terminated, may be NULL) replaced by "***". */
void gw_gitb_scrub(const char *in, char *out, size_t cap, const char *const *secrets);

struct gw_gitb_line {
    struct gw_gitb_line *next;
    size_t len;
    char text[];
};

enum { GW_GIT_RUN = 0, GW_GIT_STOP_CANCEL = 1, GW_GIT_STOP_TIMEOUT = 2 };

struct gw_gitb_job {
    const struct gw_gitb_config *cfg;
    char *run_id, *requested_by, *action_id;
    json_t *inputs;      /* a deep copy, used by the worker thread only */
    char *cache_root;    /* where per-repository caches live */
    char *templates_dir; /* resolved */
    char *token, *ssh_key, *pr_token;
    const char *secrets[4]; /* the three above, for gw_gitb_scrub */

    /* A drift check (operation "drift", docs/drift.md): compare what the
     * resource's last run wrote (deep copies of its outputs' "branch" and
     * "files", validated by create) with the branch's head; nothing is
     * rendered, committed or pushed. */
    bool drift;
    char *drift_branch;
    json_t *drift_files; /* [{path, blob}] */

    atomic_int stop; /* GW_GIT_RUN or why to stop; set by the loop */

    uv_mutex_t mu; /* guards lines and async_live */
    struct gw_gitb_line *lines, **tail;
    uv_async_t *async;
    bool async_live;

    /* Results, written by the worker thread, read after the done callback. */
    bool ok;
    char reason[32];
    char message[1024];
    json_t *outputs;
    int auth_calls;
    /* Set by the work when a pull request is to be opened (on the loop,
     * after the work is done): its head branch, title and body. */
    char *pr_head, *pr_title, *pr_body;
};

/* Worker thread: the whole run (clone/fetch, render, commit, push), and what
 * the pull request needs (opened on the loop afterwards, gw_gitb_pr_start). */
void gw_gitb_work_run(struct gw_gitb_job *j);

/* Worker thread: a drift check (j->drift): fetch the recorded branch, compare
 * each recorded path's blob with the head's. Succeeds with outputs
 * {"reconcile": {"changes", "branch", "commit", "files": [{path, change:
 * "modified"|"deleted"}]}}; fails when the repository or the branch cannot
 * be read. */
void gw_gitb_work_drift(struct gw_gitb_job *j);

/* Worker thread: queues one log line (scrubbed) for the loop. */
void gw_gitb_job_log(struct gw_gitb_job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Worker thread: records the failure (scrubbed) and returns -1; the first
 * failure recorded wins. `reason` is the kind: "invalid_path" (a destination
 * path refused, git_path.h, or a symlink in the way), "template_error",
 * "push_rejected" (the branch kept moving) and "pull_request_failed" are
 * run.failed reasons of their own; "cancelled" and "backend_error" (anything
 * else) report as the run's stop or as "backend_error". */
int gw_gitb_job_fail(struct gw_gitb_job *j, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Loop thread, after the work succeeded with j->pr_head set: opens (or
 * finds) the pull/merge request from j->pr_head into the base branch with
 * the library's HTTP client. On success its URL is j->outputs'
 * "pull_request" and logged; on failure it is recorded with
 * gw_gitb_job_fail, j->ok is cleared and j->outputs dropped. `done` is
 * called once when it is over and its handles are closed; if this returns
 * -1 (failure recorded the same way) `done` is never called. */
struct gw_gitb_pr;
int gw_gitb_pr_start(uv_loop_t *loop, struct gw_gitb_job *j, void (*done)(void *arg), void *arg,
                     struct gw_gitb_pr **out);
/* Loop thread: the run is stopping (j->stop is set): the request in flight
 * ends as "cancelled", "pull request: stopped". Accepts NULL. */
void gw_gitb_pr_stop(struct gw_gitb_pr *pr);

/* Test seam: when set, called on the worker thread right before push
 * attempt `attempt` (1-based) of the commit `sha`. NULL in production; set
 * it before any run starts. */
extern void (*gw_gitb_test_before_push)(const char *repository, int attempt, const char *sha);

#endif
