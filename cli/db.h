/* The operator commands' PostgreSQL connection (token, audit). */
#ifndef GW_CLI_DB_H
#define GW_CLI_DB_H

#include <libpq-fe.h>

/* Connects to `pg` (the --pg flag) or else $GW_PG for `gangway CMD`. Prints
 * why on stderr and returns NULL when neither is set or the connection
 * fails. Close with PQfinish. */
PGconn *gw_db_connect(const char *cmd, const char *pg);

#endif
