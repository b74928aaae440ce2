#include "testdb.h"

#include <libpq-fe.h>
#include <string.h>
#include <unistd.h>

static char dbname[64];

/* The DSN with dbname (and application_name) replaced, rebuilt from its
 * parsed form so both keyword=value and URI styles work. */
static char *conninfo_with(const char *dsn, const char *db)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &errmsg);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);

    if (opts == NULL) {
        fprintf(stderr, "bad GW_TEST_PG_DSN: %s\n", errmsg ? errmsg : "?");
        exit(1);
    }
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        const char *val = o->val;

        if (strcmp(o->keyword, "dbname") == 0)
            val = db;
        if (val == NULL)
            continue;
        len += (size_t)snprintf(out + len, cap - len, "%s='", o->keyword);
        for (const char *p = val; *p && len + 4 < cap; p++) {
            if (*p == '\'' || *p == '\\')
                out[len++] = '\\';
            out[len++] = *p;
        }
        len += (size_t)snprintf(out + len, cap - len, "' ");
    }
    PQconninfoFree(opts);
    return out;
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

char *testdb_exec(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r;
    char *val = NULL;

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(c));
        abort();
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
        abort();
    }
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
        val = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return val;
}

char *testdb_create(const char *tag)
{
    const char *dsn = getenv("GW_TEST_PG_DSN");
    char *admin, sql[128];

    if (dsn == NULL || dsn[0] == '\0') {
        fprintf(stderr, "GW_TEST_PG_DSN not set: skipping\n");
        exit(77);
    }
    snprintf(dbname, sizeof(dbname), "gwtest_%s_%d", tag, (int)getpid());
    admin = conninfo_with(dsn, "postgres");
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", dbname);
    free(testdb_exec(admin, sql));
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
    free(testdb_exec(admin, sql));
    free(admin);
    return conninfo_with(dsn, dbname);
}

void testdb_drop(char *conninfo)
{
    const char *dsn = getenv("GW_TEST_PG_DSN");
    char *admin = conninfo_with(dsn, "postgres");
    char sql[128];

    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
    free(testdb_exec(admin, sql));
    free(admin);
    free(conninfo);
}
