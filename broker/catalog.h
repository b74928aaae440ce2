/*
 * The action catalog: one file per action in a directory, JSON (.json) or
 * YAML (.yaml/.yml, mapped to the same JSON value; decision 0016), checked
 * against schemas/action.schema.json and its input schema compiled, loaded
 * once at start. Immutable after load (shared read-only by handlers).
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
    int ttl_default_s;  /* 0 = no TTL */
    int ttl_max_s;
    json_t *approval; /* the action's "approval" object, or NULL (borrowed from definition) */
    char *quota;      /* the action's "quota" object as JSON text, or NULL */
    char *path;       /* file it came from */
};

struct gw_catalog {
    struct gw_schema_registry *registry;
    struct gw_action **actions; /* sorted by id */
    size_t n;
    char *list_json; /* GET /v1/actions body */
};

/* Loads every *.json in `dir`. A bad file fails the whole load, with the
 * file and the reason (and the JSON pointer) in err->message. */
struct gw_catalog *gw_catalog_load(const char *dir, struct gw_error *err);
void gw_catalog_destroy(struct gw_catalog *c); /* accepts NULL */

const struct gw_action *gw_catalog_find(const struct gw_catalog *c, const char *id);

/* The approval rule that applies to `inputs` (the first whose `when`
 * matches), as a new object {"approvals", "from_teams", "from_roles",
 * "expires_after_seconds", "any_rejection_rejects"}; NULL when none applies
 * or it needs 0 approvals. */
json_t *gw_action_approval_for(const struct gw_action *a, json_t *inputs);

/* Records each action version in gw_actions (blocking; start-up only). */
int gw_catalog_store(const struct gw_catalog *c, const char *conninfo, struct gw_error *err);

#endif
