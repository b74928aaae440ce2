/*
 * Authorization: who may do what (docs/policy.md).
 *
 * A policy is parsed from a JSON file into an immutable, reference-counted
 * `struct gw_policy`: roles made of grants (permissions, optionally scoped to
 * actions by id or glob, to action tags, and to input values), bound to
 * subjects and teams. Everything not granted is denied. Without a file the
 * built-in default applies (gw_policy_builtin).
 *
 * The broker holds the current policy in a `struct gw_policy_store`, which
 * reloads the file on SIGHUP: the file is read and parsed on the libuv thread
 * pool, and only a complete, valid policy replaces the current one, swapped on
 * the loop thread. A request evaluates one policy from start to end: it takes
 * a reference (gw_authz_begin) and drops it when done, so a reload never
 * changes a decision half-way through a request.
 *
 * Threading: gw_policy_parse/gw_policy_load touch nothing shared and may run
 * on any thread. Everything else is loop-thread only (reference counts are
 * not atomic).
 */
#ifndef GW_BROKER_POLICY_H
#define GW_BROKER_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "gw/error.h"

struct gw_action;
struct gw_catalog;
struct gw_principal;
struct gw_api_ctx;

enum gw_perm {
    GW_PERM_RUN,              /* submit a run of an action (inputs may be constrained) */
    GW_PERM_READ_RUNS,        /* read runs (and their resources) of others; scoped */
    GW_PERM_CANCEL,           /* cancel runs; scoped */
    GW_PERM_DECIDE_APPROVALS, /* approve or reject runs waiting for approval */
    GW_PERM_BREAK_GLASS,      /* run without approval, with a written reason */
    GW_PERM_READ_AUDIT,       /* read the audit log (not action-scoped) */
    GW_PERM_MANAGE_RESOURCES, /* extend or delete resources; scoped */
    GW_PERM_ADMIN,            /* every permission on everything */
    GW_PERM_COUNT
};

/* How far a scoped permission (read_runs, cancel, manage_resources) reaches.
 * Ordered: each level includes the ones before it. */
enum gw_scope {
    GW_SCOPE_NONE,
    GW_SCOPE_OWN,  /* runs the caller requested */
    GW_SCOPE_TEAM, /* ... and runs requested on behalf of one of the caller's teams */
    GW_SCOPE_ALL,  /* every run */
};

const char *gw_perm_name(enum gw_perm p);
const char *gw_scope_name(enum gw_scope s);

struct gw_policy;

/* Parses a policy document. `origin` names it in messages (a path). On error
 * returns NULL with err->message naming the origin, the JSON pointer of the
 * offending value and what is wrong. `doc` is borrowed. Any thread.
 * A subject binding must be canonical (gw/subject.h): one no caller can
 * have ("mia", "User:Default/Mia") is refused, naming the form meant. */
struct gw_policy *gw_policy_parse(json_t *doc, const char *origin, struct gw_error *err);

/* Reads and parses a file (at most 1 MiB). Blocking; any thread. Errors
 * also name the line of the offending value ("policy.yaml:12: /bindings/0/
 * subjects/0: ...", gw_doc_locate) when it can be told. */
struct gw_policy *gw_policy_load(const char *path, struct gw_error *err);

/* The policy used when no file is configured: every authenticated principal
 * may run every action and decide approvals (each action's approval rule
 * still says whose decision counts), and reads, cancels and manages its own
 * and its teams' runs and resources. Tokens with role admin have every
 * permission; role worker may only claim (always true, whatever the
 * policy). */
struct gw_policy *gw_policy_builtin(struct gw_error *err);

/* Reference counting; unref accepts NULL and frees at zero. */
struct gw_policy *gw_policy_ref(struct gw_policy *p);
void gw_policy_unref(struct gw_policy *p);

/* The policy's "notifications" member (docs/webhooks.md "Routing"),
 * borrowed; NULL when it has none. */
const json_t *gw_policy_notifications(const struct gw_policy *p);

/* Where the policy came from ("built-in default" or the path) and a one-line
 * summary for the log. */
const char *gw_policy_origin(const struct gw_policy *p);
void gw_policy_describe(const struct gw_policy *p, char *buf, size_t cap);

/* Logs a warning for each grant naming an action id (not a glob) or a tag
 * that no action in `cat` has: likely a typo, though not an error (the
 * catalog may grow). Loop thread. */
void gw_policy_lint(const struct gw_policy *p, const struct gw_catalog *cat);

/* --- per-request decisions ------------------------------------------ */

/* One caller under one policy: the roles that apply, resolved once.
 * init/finish, no reply; finish accepts a zeroed struct. */
struct gw_authz {
    struct gw_policy *policy; /* referenced */
    const struct gw_principal *who;
    json_t *teams;      /* the caller's teams (array of strings) */
    unsigned char *has; /* has[i]: the policy's role i applies */
    bool admin;         /* token role admin, or a role granting admin */
    bool worker_only;   /* a worker token: may only claim */
};

/* Returns 0, or GW_ENOMEM. `who` must outlive z. */
int gw_authz_init(struct gw_authz *z, struct gw_policy *p, const struct gw_principal *who);
void gw_authz_finish(struct gw_authz *z);

/* May the caller exercise `perm` on action `a`? For run, decide_approvals
 * and break_glass, `inputs` (after defaults are applied) is checked against
 * the grants' input conditions; inputs == NULL asks "with some inputs". For
 * read_runs, cancel and manage_resources the answer is "scope all"; use
 * gw_authz_scope for the rest. `a` == NULL matches only grants not scoped to
 * actions or tags. On refusal, `why` (may be NULL) gets a sentence for the
 * problem's detail. */
bool gw_authz_can(const struct gw_authz *z, enum gw_perm perm, const struct gw_action *a,
                  json_t *inputs, char *why, size_t why_cap);

/* The reach of a scoped permission on runs of `a` (NULL: an action the
 * catalog no longer has; only unscoped grants and defaults apply). */
enum gw_scope gw_authz_scope(const struct gw_authz *z, enum gw_perm perm,
                             const struct gw_action *a);

/* Does a run/resource with these owner fields fall in the caller's scope? */
bool gw_authz_covers(const struct gw_authz *z, enum gw_perm perm, const struct gw_action *a,
                     const char *owner_subject, json_t *owner_teams);

/* The caller's roles: a JSON array (new reference) of the policy's roles that
 * apply plus the token roles admin/worker. */
json_t *gw_authz_roles(const struct gw_authz *z);

/* The SQL filter for lists and single reads: five text parameters for the
 * inlinable SQL function gw_visible(owner_subject, owner_teams, action_id,
 * $subject, $teams, $own, $team, $all) of sql/functions/gw_visible.sql. `params`
 * receives pointers into z (subject, teams) and into f (owned arrays). The
 * actions of `cat` are enumerated once, so the query needs no per-row
 * policy logic and no extra round trips. */
struct gw_authz_filter {
    char *own, *team, *all; /* PostgreSQL array literals; '*' = every action */
};
int gw_authz_filter_init(struct gw_authz_filter *f, const struct gw_authz *z, enum gw_perm perm,
                         const struct gw_catalog *cat, const char *params[5]);
void gw_authz_filter_finish(struct gw_authz_filter *f);

/* The body of GET /v1/me (new reference). */
json_t *gw_authz_describe(const struct gw_authz *z, const struct gw_catalog *cat);

/* --- the broker's current policy and its reload ---------------------- */

struct gw_policy_store;

/* Loads `path` (NULL: the built-in default, logged as such) and starts
 * listening for SIGHUP on `loop`. Blocking read at start-up only. NULL with
 * err set when the file is bad: the broker must not start on it. */
struct gw_policy_store *gw_policy_store_create(uv_loop_t *loop, const char *path,
                                               const struct gw_catalog *cat, struct gw_error *err);

/* Closes the signal handle; frees once an in-flight reload has finished.
 * The catalog may be freed right after this returns. Accepts NULL. */
void gw_policy_store_destroy(struct gw_policy_store *s);

/* The catalog a reloaded policy is linted against, after a catalog reload
 * (borrowed: the broker keeps it alive); lints the current policy against it. */
void gw_policy_store_set_catalog(struct gw_policy_store *s, const struct gw_catalog *cat);

/* The current policy (borrowed: gw_policy_ref it to keep it past the
 * current callback). */
struct gw_policy *gw_policy_store_current(const struct gw_policy_store *s);

/* What SIGHUP does: re-reads the file off the loop and swaps it in if it is
 * valid, otherwise logs why and keeps the current policy. A reload asked
 * for while one runs is done after it. No-op without a file. */
void gw_policy_store_reload(struct gw_policy_store *s);

/* Counts of reloads applied and refused (for tests and metrics). */
void gw_policy_store_counts(const struct gw_policy_store *s, unsigned long *applied,
                            unsigned long *refused);

/* --- handler helpers (broker/policy_store.c) ---------------------------- */

/* Fills z for ctx's caller under the broker's current policy. On failure
 * answers 503 itself and returns false. */
bool gw_authz_begin(struct gw_authz *z, struct gw_api_ctx *ctx);

/* Answers 403 problem+json code `forbidden` (frees ctx). */
void gw_authz_forbidden(struct gw_api_ctx *ctx, const char *detail);

/* For handlers that read or change runs and resources: the five gw_visible
 * parameters of `perm` for ctx's caller (see gw_authz_filter_init). Out of
 * memory: answers 503, frees ctx and returns false. On true, finish `f` once
 * the query that uses `vis` is queued (parameters are copied). Worker-only
 * tokens never get here: the router answers them 403 (router.c). */
bool gw_authz_params(struct gw_api_ctx *ctx, enum gw_perm perm, struct gw_authz_filter *f,
                     const char *vis[5]);

/* GET /v1/me. */
void gw_api_me(struct gw_api_ctx *ctx);

#endif
