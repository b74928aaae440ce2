/*
 * Reloading the action catalog (catalog_reload.c): SIGHUP, the admin
 * endpoint, and a NOTIFY from another replica. Loop thread only.
 */
#ifndef GW_BROKER_CATALOG_RELOAD_H
#define GW_BROKER_CATALOG_RELOAD_H

#include <jansson.h>

#include "broker.h"
#include "catalog.h"

enum gw_catalog_reload_outcome {
    GW_CATALOG_RELOAD_APPLIED,     /* the new catalog is in force */
    GW_CATALOG_RELOAD_INVALID,     /* a file is bad: `fault` says where */
    GW_CATALOG_RELOAD_UNAVAILABLE, /* PostgreSQL, Kafka or the broker could not take it now */
};

struct gw_catalog_reload_result {
    enum gw_catalog_reload_outcome outcome;
    const char *origin;            /* what asked ("SIGHUP", "API", ...) */
    struct gw_catalog_fault fault; /* INVALID */
    struct gw_error err;           /* INVALID, UNAVAILABLE: the whole message */
    json_t *summary;               /* APPLIED: {"actions", "added", "changed", "removed"};
                                      borrowed for the callback */
};

typedef void (*gw_catalog_reload_cb)(void *arg, const struct gw_catalog_reload_result *res);

struct gw_catalog_reloader;

/* Listens for SIGHUP and for NOTIFY gangway_catalog on b->pg (the pool's one
 * listener). NULL with err set. */
struct gw_catalog_reloader *gw_catalog_reloader_create(struct gw_broker *b, struct gw_error *err);
/* Closes the signal handle; frees once an in-flight read has finished. Accepts NULL. */
void gw_catalog_reloader_destroy(struct gw_catalog_reloader *r);

/* Reloads the actions directory; `cb` (may be NULL) is called once with the
 * outcome, possibly before this returns (shutting down, out of memory). */
void gw_catalog_reload(struct gw_catalog_reloader *r, const char *origin, gw_catalog_reload_cb cb,
                       void *arg);

/* This replica's id: the payload of its NOTIFY, ignored when it comes back. */
const char *gw_catalog_reloader_instance(const struct gw_catalog_reloader *r);

/* SELECT pg_notify('gangway_catalog', $1): tells every other replica. */
extern const char gw_catalog_notify_sql[];

#endif
