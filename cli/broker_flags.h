/*
 * The broker's service options, declared once (decision 0030): `gangway
 * broker` includes this table in its own, and `gangway dev` includes it in
 * its table too, so every broker flag and its GW_* twin works on both
 * (decision 0033). Only what dev provides itself (PostgreSQL, Kafka, the
 * listen address, migrations, topics) is outside it.
 */
#ifndef GW_CLI_BROKER_FLAGS_H
#define GW_CLI_BROKER_FLAGS_H

#include "options.h"

/* The values, one per option; NULL until gw_opt_parse stores a flag, its
 * environment twin or its default. */
struct gw_broker_flags {
    const char *pg, *kafka, *props, *prefix, *actions, *sql_dir, *pool, *hb, *hbt, *requeue;
    const char *policy, *auth_config, *webhook_url, *webhook_attempts, *webhook_backoff;
    const char *pg_queue_timeout, *instance_id, *audit_key;
    const char *web_dir, *public_url, *session_ttl, *session_idle, *trust_proxy;
    const char *cors_origins, *hooks_config;
};

#define GW_BROKER_FLAGS_N 25

/* Fills `specs` (GW_BROKER_FLAGS_N entries and the {0} end) with the options
 * that store into `f`; include it with {NULL, GW_OPT_TABLE, specs}. */
void gw_broker_flags_table(struct gw_broker_flags *f, struct gw_opt_spec *specs);

/* The lines of `--help` that describe them. */
extern const char gw_broker_flags_usage[];

#endif
