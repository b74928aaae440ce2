/*
 * The Port bridge's mapping (docs/integrations/port.md): which message
 * shapes it reads, which Gangway action a Port action becomes, and whom a
 * Port user is in Gangway. No I/O beyond loading the file; the unit tests
 * drive it directly.
 *
 * Ownership: pb_mapping_load allocates, pb_mapping_destroy frees (accepts
 * NULL). A struct pb_invocation is filled by pb_invocation_parse and
 * emptied by pb_invocation_finish (inputs is a reference it holds).
 */
#ifndef GW_BRIDGE_PORT_MAPPING_H
#define GW_BRIDGE_PORT_MAPPING_H

#include <jansson.h>
#include <stdbool.h>

#include "gw/error.h"

#define PB_ID_MAX 256

struct pb_mapping;

/* One Port run request, whatever shape it came in. */
struct pb_invocation {
    char run_id[PB_ID_MAX];      /* Port's run id ("r_...") */
    char port_action[PB_ID_MAX]; /* the Port action's identifier, "" if not given */
    char action[PB_ID_MAX];      /* the Gangway action it maps to */
    char email[PB_ID_MAX];       /* who triggered it in Port */
    char subject[PB_ID_MAX];     /* ... and who that is in Gangway */
    json_t *teams;               /* the subject's teams (array, owned) */
    json_t *inputs;              /* the action's inputs (object, owned) */
    json_t *ttl_seconds;         /* optional, owned */
    char justification[1024];    /* optional */
    bool legacy;                 /* the older fixed envelope */
};

/* Loads the mapping file: {"actions": {...}, "identities": {...}}. NULL
 * with `err` naming the field at fault. */
struct pb_mapping *pb_mapping_load(const char *path, struct gw_error *err);
struct pb_mapping *pb_mapping_from_json(json_t *doc, struct gw_error *err);
void pb_mapping_destroy(struct pb_mapping *m);

/* Why a message cannot be used: a machine-readable code and a sentence. */
struct pb_reject {
    const char *code; /* not_json, unknown_shape, missing_run_id, unknown_action,
                         unknown_user, bad_inputs */
    char reason[512];
};

/* Reads a Kafka message value. 0 with `inv` filled; -1 with `why` set (and
 * inv->run_id filled when the message had one, so the run can be failed in
 * Port). Call pb_invocation_finish either way. */
int pb_invocation_parse(const struct pb_mapping *m, const char *value, size_t len,
                        struct pb_invocation *inv, struct pb_reject *why);
void pb_invocation_finish(struct pb_invocation *inv);

#endif
