/*
 * The action catalog: one file per action in a directory, JSON (.json) or
 * YAML (.yaml/.yml, mapped to the same JSON value; decision 0016), checked
 * against schemas/action.schema.json and its input schema compiled. Loaded
 * at start and again on a reload (broker/catalog_reload.c); each loaded
 * catalog is immutable and reference-counted: a request holds the catalog
 * it started with until it answers, so a reload swaps in a new one without
 * pulling an action out from under a request in flight.
 */
#ifndef GW_BROKER_CATALOG_H
#define GW_BROKER_CATALOG_H

#include <jansson.h>
#include <stdbool.h>

#include "gw/error.h"
#include "gw/jsonschema.h"

struct gw_action {
    char *id;
    char *worker_type;
    char version[65];         /* sha256 of the canonical resolved definition */
    json_t *definition;       /* resolved: relative program paths made absolute */
    char *public_json;        /* GET /v1/actions/{id} body */
    json_t *summary;          /* element of GET /v1/actions */
    struct gw_schema *inputs; /* compiled input schema */
    int timeout_seconds;
    int max_attempts;
    bool retryable;
    char *resource_key; /* JSON pointer into inputs, or NULL */
    bool has_resource;  /* a success records a resource */
    bool is_workflow;   /* declares steps (docs/workflows.md); worker_type is "workflow" */
    int ttl_default_s;  /* 0 = no TTL */
    int ttl_max_s;
    json_t *approval; /* the action's "approval" object, or NULL (borrowed from definition) */
    char *quota;      /* the action's "quota" object as JSON text, or NULL */
    char *path;       /* file it came from */
};

/* The worker type of a workflow's own run: no worker claims it, its steps'
 * child runs are claimed by theirs. */
#define GW_WORKFLOW_WORKER_TYPE "workflow"

/* A workflow's timeout_seconds when its action declares none: it covers
 * every step and the approvals between them (decision 0071). */
#define GW_WORKFLOW_DEFAULT_TIMEOUT_S 86400

struct gw_catalog {
    unsigned refs; /* loop thread only, once shared */
    struct gw_schema_registry *registry;
    struct gw_action **actions; /* sorted by id */
    size_t n;
    char *list_json; /* GET /v1/actions body */
};

/* Where a load failed, for machines (the reload endpoint's 422): the file,
 * the line and column in it (0 when not known, e.g. a file that cannot be
 * read), the JSON pointer of the value at fault ("" for the whole file or
 * unknown) and the reason without the file name. */
struct gw_catalog_fault {
    char file[1024];
    int line, column;
    char pointer[256];
    char reason[512];
};

/* Loads every *.json, *.yaml and *.yml in `dir`. A bad file fails the whole
 * load, with the file, line and reason in err->message and, when `fault` is
 * not NULL, in its fields. The catalog starts with one reference.
 * Touches nothing shared: may run off the loop thread. */
struct gw_catalog *gw_catalog_load_ex(const char *dir, struct gw_catalog_fault *fault,
                                      struct gw_error *err);
struct gw_catalog *gw_catalog_load(const char *dir, struct gw_error *err); /* fault NULL */
/* Reference counting (loop thread). unref frees on the last; both accept NULL. */
struct gw_catalog *gw_catalog_ref(struct gw_catalog *c);
void gw_catalog_unref(struct gw_catalog *c);
void gw_catalog_destroy(struct gw_catalog *c); /* frees now, whatever the count; accepts NULL */

const struct gw_action *gw_catalog_find(const struct gw_catalog *c, const char *id);

/* The approval rule that applies to `inputs` (the first whose `when`
 * matches), as a new object {"approvals", "from_teams", "from_roles",
 * "expires_after_seconds", "any_rejection_rejects"}; NULL when none applies
 * or it needs 0 approvals. */
json_t *gw_action_approval_for(const struct gw_action *a, json_t *inputs);

/* Records each action version in gw_actions (blocking; start-up only). */
int gw_catalog_store(const struct gw_catalog *c, const char *conninfo, struct gw_error *err);

/* The statement and its one parameter that record every action version of
 * `c` in gw_actions (new versions added, known ones left alone): what a
 * reload runs through the asynchronous pool before the catalog is used.
 * The parameter is malloc'd JSON text (NULL when out of memory). */
extern const char gw_catalog_store_sql[];
char *gw_catalog_store_param(const struct gw_catalog *c);

#endif
