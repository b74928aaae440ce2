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

static char *q_text(const char *sql)
{
    char *v = testdb_exec(conninfo, sql);

    return v != NULL ? v : strdup("");
}

/* functions/: ordered by calls, re-applied on every migrate with checksums,
 * all or nothing, cycles and unknown dependencies refused. */
static void check_functions(void)
{
    char fdir[128];
    struct gw_error err;
    int applied = -1;
    char *v;

    snprintf(fdir, sizeof(fdir), "%s/functions", dir);
    CHECK(mkdir(fdir, 0700) == 0);
    put("functions/README.txt", "not a function\n");
    /* An SQL body is checked at creation: aa_ must come after zz_, against
     * the alphabet. */
    put("functions/aa_calls_zz.sql",
        "-- zz_leaf() in a comment is no call\n"
        "CREATE OR REPLACE FUNCTION aa_calls_zz() RETURNS int LANGUAGE sql AS\n"
        "$$ SELECT zz_leaf() + 1 $$;\n");
    put("functions/zz_leaf.sql", "CREATE OR REPLACE FUNCTION zz_leaf() RETURNS int LANGUAGE sql AS "
                                 "$$ SELECT 41 $$;\n");
    put("functions/mm_trig.sql",
        "CREATE OR REPLACE FUNCTION mm_trig() RETURNS trigger LANGUAGE plpgsql AS\n"
        "$$ BEGIN NEW.x := NEW.x * 10; RETURN NEW; END $$;\n"
        "DROP TRIGGER IF EXISTS t1_mm ON t1;\n"
        "CREATE TRIGGER t1_mm BEFORE INSERT ON t1 FOR EACH ROW EXECUTE FUNCTION mm_trig();\n");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == 0 && applied == 0);
    CHECK(q_int("SELECT aa_calls_zz()") == 42);
    CHECK(q_int("SELECT count(*) FROM gw_schema_functions WHERE length(sha256) = 64") == 3);
    testdb_exec(conninfo, "INSERT INTO t1 VALUES (7)");
    CHECK(q_int("SELECT max(x) FROM t1") == 70);

    /* Every migrate re-applies: a function changed behind our back is put
     * back, and a file's new body replaces the live one with its checksum. */
    testdb_exec(conninfo, "CREATE OR REPLACE FUNCTION zz_leaf() RETURNS int LANGUAGE sql AS "
                          "$$ SELECT 0 $$");
    v = q_text("SELECT sha256 FROM gw_schema_functions WHERE name = 'zz_leaf'");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == 0 && applied == 0);
    CHECK(q_int("SELECT aa_calls_zz()") == 42);
    put("functions/zz_leaf.sql", "CREATE OR REPLACE FUNCTION zz_leaf() RETURNS int LANGUAGE sql AS "
                                 "$$ SELECT 99 $$;\n");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == 0);
    CHECK(q_int("SELECT aa_calls_zz()") == 100);
    {
        char *now = q_text("SELECT sha256 FROM gw_schema_functions WHERE name = 'zz_leaf'");
        CHECK(strlen(now) == 64 && strcmp(now, v) != 0);
        free(now);
    }
    free(v);

    /* A failing file names itself and leaves every function as it was. */
    put("functions/zz_leaf.sql", "CREATE OR REPLACE FUNCTION zz_leaf() RETURNS int LANGUAGE sql AS "
                                 "$$ SELECT 1/0 $$;\nSELECT 1/0;\n");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) < 0);
    CHECK(strstr(err.message, "zz_leaf.sql") != NULL && strstr(err.message, "22012") != NULL);
    CHECK(q_int("SELECT aa_calls_zz()") == 100);

    /* A cycle is refused before anything runs, naming its files. */
    put("functions/zz_leaf.sql", "CREATE OR REPLACE FUNCTION zz_leaf() RETURNS int "
                                 "LANGUAGE plpgsql AS $$ BEGIN RETURN aa_calls_zz(); END $$;\n");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == GW_EINVAL);
    CHECK(strstr(err.message, "cycle") && strstr(err.message, "aa_calls_zz") &&
          strstr(err.message, "zz_leaf"));
    CHECK(q_int("SELECT aa_calls_zz()") == 100);

    /* So is a '-- depends:' naming no file, and a malformed file name. */
    put("functions/zz_leaf.sql", "-- depends: mm_trig, no_such_function\n"
                                 "CREATE OR REPLACE FUNCTION zz_leaf() RETURNS int LANGUAGE sql AS "
                                 "$$ SELECT 41 $$;\n");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == GW_EINVAL);
    CHECK(strstr(err.message, "no_such_function") && strstr(err.message, "zz_leaf.sql"));
    put("functions/zz_leaf.sql", "-- depends: mm_trig\n"
                                 "CREATE OR REPLACE FUNCTION zz_leaf() RETURNS int LANGUAGE sql AS "
                                 "$$ SELECT 41 $$;\n");
    put("functions/Bad-Name.sql", "SELECT 1;");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == GW_EINVAL);
    CHECK(strstr(err.message, "Bad-Name.sql") != NULL);
    rm("functions/Bad-Name.sql");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == 0);
    CHECK(q_int("SELECT aa_calls_zz()") == 42);
}

/* A database migrated by another numbering is refused whole. */
static void check_history(void)
{
    struct gw_error err;
    int applied = -1;

    /* Migrated by another numbering: the same version under another name. */
    testdb_exec(conninfo, "UPDATE gw_schema_migrations SET name = '0002_old_name.sql' "
                          "WHERE version = 2");
    put("0007_seventh.sql", "CREATE TABLE t7 (z int);");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == GW_ECONFLICT && applied == 0);
    CHECK(strstr(err.message, "0002_old_name.sql") && strstr(err.message, "0002_second.sql") &&
          strstr(err.message, "numbering"));
    CHECK(q_int("SELECT count(*) FROM pg_tables WHERE tablename = 't7'") == 0);
    testdb_exec(conninfo, "UPDATE gw_schema_migrations SET name = '0002_second.sql' "
                          "WHERE version = 2");
    rm("0007_seventh.sql");

    /* Migrated by newer files (a rollback): accepted, and our function
     * files are put back. */
    testdb_exec(conninfo, "INSERT INTO gw_schema_migrations (version, name, sha256) "
                          "VALUES (9, '0009_newer.sql', 'x')");
    testdb_exec(conninfo, "CREATE OR REPLACE FUNCTION zz_leaf() RETURNS int LANGUAGE sql AS "
                          "$$ SELECT 7 $$");
    CHECK(gw_pg_migrate(conninfo, dir, &applied, &err) == 0 && applied == 0);
    CHECK(q_int("SELECT zz_leaf()") == 41);
    testdb_exec(conninfo, "DELETE FROM gw_schema_migrations WHERE version = 9");
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

    check_functions();
    check_history();

    for (const char *f = "0001_first.sql,0002_second.sql,0003_third.sql,0005_fifth.sql,"
                         "0006_sixth.sql,README.txt,functions/README.txt,functions/aa_calls_zz.sql,"
                         "functions/zz_leaf.sql,functions/mm_trig.sql";
         *f;) {
        char name[64];
        size_t n = strcspn(f, ",");

        snprintf(name, sizeof(name), "%.*s", (int)n, f);
        rm(name);
        f += n + (f[n] == ',');
    }
    snprintf(args, sizeof(args), "%s/functions", dir);
    CHECK(rmdir(args) == 0);
    CHECK(rmdir(dir) == 0);
    testdb_drop(conninfo);
    printf("pg migrate: all checks passed\n");
    return 0;
}
