/*
 * JSON Schema validation (draft 2020-12 and draft-07) on jansson.
 *
 * Compile once, validate many times. A compiled schema is immutable, so
 * gw_schema_validate() may run concurrently from several threads.
 * Remote `$ref`s resolve only against documents added to the registry (the
 * bundled metaschemas are always there); nothing is fetched over a network.
 *
 * Ownership follows jansson: functions borrow `json_t *` arguments unless
 * they say they steal them; returned `json_t *` are new references.
 */
#ifndef GW_JSONSCHEMA_H
#define GW_JSONSCHEMA_H

#include <jansson.h>
#include <stdbool.h>

#include "gw/error.h"

enum gw_schema_draft {
    GW_SCHEMA_DRAFT_2020_12 = 2020,
    GW_SCHEMA_DRAFT_7 = 7,
};

struct gw_schema_registry;
struct gw_schema;

struct gw_schema_options {
    enum gw_schema_draft default_draft; /* for schemas without $schema; 0 = 2020-12 */
    bool format_assert;                 /* treat `format` as an assertion */
};

/* A registry of documents by URI, with the bundled metaschemas preloaded. */
struct gw_schema_registry *gw_schema_registry_create(struct gw_error *err);
void gw_schema_registry_destroy(struct gw_schema_registry *reg); /* accepts NULL */

/* Adds a document under `uri` (borrowed; the registry keeps its own ref). */
int gw_schema_registry_add(struct gw_schema_registry *reg, const char *uri, json_t *doc,
                           struct gw_error *err);

/* Maps every *.json file under `dir` to `base_uri` + relative path. */
int gw_schema_registry_add_dir(struct gw_schema_registry *reg, const char *base_uri,
                               const char *dir, struct gw_error *err);

/* Compiles `schema` (borrowed). The registry must outlive the result.
 * Returns NULL with `err` set when the schema is invalid against its
 * metaschema or has an unresolvable $ref; err->message names the pointer. */
struct gw_schema *gw_schema_compile(struct gw_schema_registry *reg, json_t *schema,
                                    const char *base_uri, const struct gw_schema_options *opts,
                                    struct gw_error *err);
void gw_schema_destroy(struct gw_schema *s); /* accepts NULL */

/* Validates `instance`. Returns true when valid. When `errors` is non-NULL
 * and the instance is invalid, *errors receives a new JSON array of
 * {"instanceLocation": "/message", "keyword": "maxLength",
 *  "keywordLocation": "/properties/message/maxLength", "message": "..."}. */
bool gw_schema_validate(const struct gw_schema *s, json_t *instance, json_t **errors);

/* Fills `default` values of missing object properties into `instance`
 * (modified in place), following properties/allOf/$ref. Returns 0. */
int gw_schema_apply_defaults(const struct gw_schema *s, json_t *instance);

/* Returns a deep copy of `instance` where every value whose schema says
 * `writeOnly: true` is replaced by the string "[redacted]". */
json_t *gw_schema_redact(const struct gw_schema *s, json_t *instance);

#endif
