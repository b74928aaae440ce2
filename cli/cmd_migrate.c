/* `gangway migrate`: applies the SQL migrations and exits. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gw/paths.h"
#include "gw/pg.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: gangway migrate [--pg CONNINFO] [--sql-dir DIR]\n"
                 "\n"
                 "Applies sql/NNNN_*.sql files not yet recorded in gw_schema_migrations,\n"
                 "in order, each in its own transaction, under an advisory lock; then\n"
                 "re-applies every sql/functions/*.sql in dependency order.\n"
                 "\n"
                 "  --pg CONNINFO   libpq connection string or URI (default: $GW_PG)\n"
                 "  --sql-dir DIR   migrations directory (default: $GW_SQL_DIR, else the\n"
                 "                  source tree's sql/ when run from a build directory,\n"
                 "                  else /usr/share/gangway/sql)\n");
}

int gw_cmd_migrate(int argc, char **argv)
{
    const char *pg = getenv("GW_PG");
    const char *dir = NULL;
    char dirbuf[PATH_MAX];
    struct gw_error err;
    int applied = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--pg") == 0 && i + 1 < argc) {
            pg = argv[++i];
        } else if (strncmp(a, "--pg=", 5) == 0) {
            pg = a + 5;
        } else if (strcmp(a, "--sql-dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strncmp(a, "--sql-dir=", 10) == 0) {
            dir = a + 10;
        } else {
            fprintf(stderr, "gangway migrate: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 1;
        }
    }
    if (pg == NULL || pg[0] == '\0') {
        fprintf(stderr, "gangway migrate: no database: pass --pg or set GW_PG\n");
        return 1;
    }
    if (dir == NULL) {
        if (gw_path_default_dir("sql", dirbuf, sizeof(dirbuf)) != 0) {
            fprintf(stderr, "gangway migrate: cannot find the sql directory; pass --sql-dir\n");
            return 1;
        }
        dir = dirbuf;
    }
    if (gw_pg_migrate(pg, dir, &applied, &err) != 0) {
        fprintf(stderr, "gangway migrate: %s\n", err.message);
        return 1;
    }
    if (applied == 0)
        printf("up to date\n");
    else
        printf("applied %d migrations\n", applied);
    return 0;
}
