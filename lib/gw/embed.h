/*
 * Data files compiled into the binary at build time by the one embedding
 * generator (tools/embed.py, run from schemas/meson.build), so the binary
 * carries its contracts and works offline.
 *
 * Every table and text here is a constant of the program: never freed,
 * readable from any thread.
 */
#ifndef GW_EMBED_H
#define GW_EMBED_H

#include <stddef.h>

/* One embedded file: its key (file stem or JSON "$id", as the table says)
 * and its bytes as a NUL-terminated string. */
struct gw_embedded {
    const char *key;
    const char *text;
};

/* The text of `key` in `table` (n rows), or NULL when absent or key is NULL. */
const char *gw_embedded_find(const struct gw_embedded *table, size_t n, const char *key);

/* schemas/backends/<worker type>.json, keyed by worker type: the JSON Schema
 * (2020-12) of an action's "backend" object, for every worker type of the
 * tree whatever the `backends` build option says (a worker built elsewhere
 * runs what this broker accepts). Each text is also the symbol
 * gw_backend_schemas_<type>, which the worker's generated registry
 * (workers/registry.c) puts in that backend's table. */
extern const struct gw_embedded gw_backend_schemas[];
extern const size_t gw_backend_schemas_count;

/* The backend config schema of `worker_type`; NULL for a type the tree does
 * not have (a worker in another language). */
const char *gw_backend_schema(const char *worker_type);

#endif
