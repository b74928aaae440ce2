#include "db.h"

#include <stdio.h>

#include "options.h"

PGconn *gw_db_connect(const char *cmd, const char *pg)
{
    PGconn *conn;
    pg = gw_opt(pg, "GW_PG", NULL);
    if (pg == NULL || pg[0] == '\0') {
        fprintf(stderr,
                "gangway %s: no database: pass --pg or set GW_PG (against `gangway dev`: "
                "the GW_PG it printed; or `gangway dev token ...`)\n",
                cmd);
        return NULL;
    }
    conn = PQconnectdb(pg);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "gangway %s: cannot connect to PostgreSQL: %s", cmd, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}
