/*
 * The private cluster of `gangway dev` (suite integration: needs Debian's
 * server binaries, exits 77 without them): init, start, restart on the same
 * data, recovery from a killed server and from a starter that died.
 */
#include <dirent.h>
#include <glob.h>
#include <libpq-fe.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw/log.h"
#include "gw/pgcluster.h"
#include "testdb.h"

static char root[64], datadir[128];

static char *one(const struct gw_pgcluster *c, const char *sql)
{
    PGconn *pg = PQconnectdb(gw_pgcluster_conninfo(c));
    PGresult *r;
    char *v = NULL;

    CHECK(PQstatus(pg) == CONNECTION_OK);
    r = PQexec(pg, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        v = strdup(PQgetvalue(r, 0, 0));
    else if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
    PQfinish(pg);
    return v;
}

static struct gw_pgcluster *start(void)
{
    struct gw_error err;
    struct gw_pgcluster *c = gw_pgcluster_start(datadir, 0, &err);

    if (c == NULL)
        fprintf(stderr, "start: %s\n", err.message);
    CHECK(c != NULL);
    return c;
}

static int postmaster_pid(void)
{
    char path[192];
    FILE *f;
    int pid = -1;

    snprintf(path, sizeof(path), "%s/postmaster.pid", datadir);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%d", &pid) != 1)
        pid = -1;
    fclose(f);
    return pid;
}

static void rm_tree(const char *dir)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    struct gw_pgcluster *c;
    struct gw_error err;
    glob_t g;
    char *v, path[192];
    int pid, status;
    pid_t child;

    if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0) {
        fprintf(stderr, "no PostgreSQL server binaries: skipping\n");
        return 77;
    }
    globfree(&g);
    gw_log_init("test-pgcluster", GW_LOG_WARN);
    snprintf(root, sizeof(root), "/tmp/gwtest-pgc-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    /* As root, the server runs as another user that must reach the data. */
    CHECK(chmod(root, 0755) == 0);
    snprintf(datadir, sizeof(datadir), "%s/a/pg", root);

    gw_pgcluster_stop(NULL);
    CHECK(gw_pgcluster_start("", 0, &err) == NULL && err.code == GW_EINVAL);

    /* First start: initdb, database gangway, superuser gangway. */
    c = start();
    CHECK(gw_pgcluster_port(c) > 0);
    CHECK(strstr(gw_pgcluster_conninfo(c), "dbname=gangway") != NULL);
    v = one(c, "SELECT current_user || '/' || current_database() || '/' || "
               "pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'gangway'");
    CHECK(v != NULL && strcmp(v, "gangway/gangway/UTF8") == 0);
    free(v);
    free(one(c, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)"));
    gw_pgcluster_stop(c);
    CHECK(postmaster_pid() == -1); /* clean shutdown removes it */

    /* Restart on the same data. */
    c = start();
    v = one(c, "SELECT x FROM kept");
    CHECK(v != NULL && strcmp(v, "7") == 0);
    free(v);

    /* The server is killed: its lock file stays behind, and the next start
     * copes with it. */
    pid = postmaster_pid();
    CHECK(pid > 0);
    CHECK(kill(pid, SIGKILL) == 0);
    gw_pgcluster_stop(c); /* reaps the dead child */
    CHECK(postmaster_pid() == pid);
    c = start();
    v = one(c, "SELECT x FROM kept");
    CHECK(v != NULL && strcmp(v, "7") == 0);
    free(v);
    gw_pgcluster_stop(c);

    /* The starter dies without stopping the server: the next start works. */
    child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        struct gw_pgcluster *lost = gw_pgcluster_start(datadir, 0, &err);
        _exit(lost != NULL ? 0 : 1);
    }
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    c = start();
    v = one(c, "SELECT x FROM kept");
    CHECK(v != NULL && strcmp(v, "7") == 0);
    free(v);
    gw_pgcluster_stop(c);

    /* A data directory that is a file. */
    snprintf(path, sizeof(path), "%s/file", root);
    fclose(fopen(path, "w"));
    CHECK(gw_pgcluster_start(path, 0, &err) == NULL);
    CHECK(strstr(err.message, "file") != NULL);

    rm_tree(root);
    printf("pgcluster: all checks passed\n");
    return 0;
}
