/*
 * `gangway bridge port`: Port's Kafka invocation method to Gangway runs and
 * back (docs/integrations/port.md, decision 0061).
 *
 * Ownership: pb_bridge_create allocates everything; pb_bridge_stop closes
 * it and frees it once the last handle has closed (the loop must run).
 * Threading: loop thread only.
 */
#ifndef GW_BRIDGE_PORT_BRIDGE_H
#define GW_BRIDGE_PORT_BRIDGE_H

#include <uv.h>

#include "gw/error.h"
#include "gw/kafka.h"

struct pb_bridge;

struct pb_bridge_options {
    const char *org_id;     /* Port organisation id: topic <org>.runs, group <org>.<name> */
    const char *name;       /* consumer group suffix; default "gangway" */
    const char *runs_topic; /* default <org>.runs */
    struct gw_kafka_config port_kafka;    /* Port's Kafka (SASL/TLS through extra) */
    struct gw_kafka_config gangway_kafka; /* Gangway's: dead letters, gangway.catalog */
    const char *topic_prefix;             /* Gangway's topic prefix (GW_TOPIC_PREFIX) */
    const char *dead_letter_topic;        /* default <prefix>gangway.port.deadletter */
    const char *port_url, *client_id, *client_secret;
    const char *gangway_url, *gangway_token;
    const char *public_url; /* the console's base for links; default gangway_url */
    const char *mapping_file;
    const char *blueprint; /* entities of created resources; "" = none */
    const char *state_dir; /* where the log position of each run in flight is kept; NULL = none */
    int poll_ms;           /* how often a run's status and logs are read; default 1000 */
    long backoff_ms;       /* first retry delay of an API call; default 500 */
    int max_in_flight;     /* Port runs followed at once; default 64 */
};

struct pb_bridge *pb_bridge_create(uv_loop_t *loop, const struct pb_bridge_options *o,
                                   struct gw_error *err);
void pb_bridge_stop(struct pb_bridge *b);

#endif
