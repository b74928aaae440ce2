/*
 * gw_pg_migrate and `gangway migrate` against a real PostgreSQL (suite
 * integration): order, idempotence, concurrent runs, refusals.
 */
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw/pg.h"
#include "testdb.h"

static char *conninfo;
static char dir[64];

static void put(const char *name, const char *sql)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(sql, f);
    fclose(f);
}

static void rm(const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    CHECK(unlink(path) == 0);
}

static int q_int(const char *sql)
{
    char *v = testdb_exec(conninfo, sql);
    int n = v ? atoi(v) : -1;

    free(v);
    return n;
}

struct run {
    int applied, rc;
    struct gw_error err;
};

static void *migrate_thread(void *arg)
{
    struct run *r = arg;

    r->rc = gw_pg_migrate(conninfo, dir, &r->applied, &r->err);
    return NULL;
}

/* Runs `gangway migrate` and returns its first output line. */
static void cli(const char *args, char *out, size_t cap, int *status)
{
    const char *build = getenv("GW_BUILD_ROOT");
    char cmd[4096];
    FILE *p;

    snprintf(cmd, sizeof(cmd), "%s/cli/gangway migrate --pg \"%s\" %s 2>&1", build, conninfo, args);
    p = popen(cmd, "r");
    CHECK(p != NULL);
    out[0] = '\0';
    if (fgets(out, (int)cap, p) == NULL)
        out[0] = '\0';
    *status = pclose(p);
}

int main(void)
{
    struct run a = {0}, b = {0};
    pthread_t ta, tb;
    struct gw_error err;
    int applied = -1, status;
    char out[512], args[128];

    conninfo = testdb_create("migrate");
    snprintf(dir, sizeof(dir), "/tmp/gwtest-migrate-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);

    /* 0002 depends on 0001; the slow one gives the other run time to race. */
    put("0002_second.sql", "INSERT INTO t1 VALUES (2);\n");
    put("0001_first.sql", "CREATE TABLE t1 (x int);\n"
                          "CREATE FUNCTION f1() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n"
                          "SELECT pg_sleep(0.3);\nINSERT INTO t1 VALUES (1);\n");
    put("README.txt", "not a migration\n");

    /* Two concurrent runs: each file applied exactly once. */
    CHECK(pthread_create(&ta, NULL, migrate_thread, &a) == 0);
    CHECK(pthread_create(&tb, NULL, migrate_thread, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    if (a.rc != 0 || b.rc != 0)
        fprintf(stderr, "a: %s\nb: %s\n", a.err.message, b.err.message);
    CHECK(a.rc == 0 && b.rc == 0);
    CHECK(a.applied + b.applied == 2);
    CHECK(q_int("SELECT count(*) FROM t1") == 2);
    CHECK(q_int("SELECT count(*) FROM gw_schema_migrations WHERE length(sha256) = 64 AND "
                "applied_at IS NOT NULL") == 2);

    /* Re-running is a no-op. */
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == 0 && applied == 0);

    /* A new file is applied alone. */
    put("0003_third.sql", "CREATE TABLE t3 (y text);");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == 0 && applied == 1);
    CHECK(q_int("SELECT max(version) FROM gw_schema_migrations") == 3);

    /* A changed, applied file is refused, naming it; nothing else runs. */
    put("0004_fourth.sql", "CREATE TABLE t4 (z int);");
    put("0001_first.sql", "CREATE TABLE t1 (x int); -- edited\n");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == GW_ECONFLICT && applied == 0);
    CHECK(strstr(err.message, "0001_first.sql") != NULL);
    CHECK(q_int("SELECT count(*) FROM pg_tables WHERE tablename = 't4'") == 0);
    rm("0004_fourth.sql");
    put("0001_first.sql", "CREATE TABLE t1 (x int);\n"
                          "CREATE FUNCTION f1() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n"
                          "SELECT pg_sleep(0.3);\nINSERT INTO t1 VALUES (1);\n");

    /* Malformed names are refused, naming the file. */
    put("5_bad.sql", "SELECT 1;");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == GW_EINVAL);
    CHECK(strstr(err.message, "5_bad.sql") != NULL);
    rm("5_bad.sql");
    put("0005_Bad-Name.sql", "SELECT 1;");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == GW_EINVAL);
    CHECK(strstr(err.message, "0005_Bad-Name.sql") != NULL);
    rm("0005_Bad-Name.sql");

    /* A failing file leaves nothing behind and names itself. */
    put("0005_fails.sql", "CREATE TABLE t5 (z int);\nSELECT 1/0;\n");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) < 0 && applied == 0);
    CHECK(strstr(err.message, "0005_fails.sql") != NULL && strstr(err.message, "22012"));
    CHECK(q_int("SELECT count(*) FROM pg_tables WHERE tablename = 't5'") == 0);
    CHECK(q_int("SELECT count(*) FROM gw_schema_migrations") == 3);
    rm("0005_fails.sql");

    /* The command line. */
    snprintf(args, sizeof(args), "--sql-dir %s", dir);
    cli(args, out, sizeof(out), &status);
    CHECK(status == 0 && strcmp(out, "up to date\n") == 0);
    put("0005_fifth.sql", "CREATE TABLE t5 (z int);");
    put("0006_sixth.sql", "CREATE TABLE t6 (z int);");
    cli(args, out, sizeof(out), &status);
    CHECK(status == 0 && strcmp(out, "applied 2 migrations\n") == 0);
    snprintf(args, sizeof(args), "--sql-dir %s/nope", dir);
    cli(args, out, sizeof(out), &status);
    CHECK(WEXITSTATUS(status) == 1 && strstr(out, "nope") != NULL);

    CHECK(gw_pg_migrate("host=127.0.0.1 port=1 connect_timeout=2", dir, &applied, &err) ==
          GW_EUNAVAIL);

    for (const char *f = "0001_first.sql,0002_second.sql,0003_third.sql,0005_fifth.sql,"
                         "0006_sixth.sql,README.txt";
         *f;) {
        char name[64];
        size_t n = strcspn(f, ",");

        snprintf(name, sizeof(name), "%.*s", (int)n, f);
        rm(name);
        f += n + (f[n] == ',');
    }
    CHECK(rmdir(dir) == 0);
    testdb_drop(conninfo);
    printf("pg migrate: all checks passed\n");
    return 0;
}
