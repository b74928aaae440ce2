/*
 * gw_pg_migrate: numbered SQL files applied in order, each once, under an
 * advisory lock so concurrent starters (several broker replicas, a CLI run)
 * apply each file exactly once. Blocking libpq: start-up and CLI only.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/pg.h"

/* Arbitrary, constant: "gw" "mig" in ASCII. Every Gangway version must use
 * the same key or two versions could migrate at once. */
#define MIGRATE_LOCK_KEY "7137271079"

struct mfile {
    int version;
    char *name; /* file name, e.g. 0001_core.sql */
    char *sql;
    char sha[65];
};

struct applied {
    int version;
    char sha[65];
};

static void quiet_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static int exec_ok(PGconn *c, PGresult *r, const char *what, struct gw_error *err)
{
    ExecStatusType st = PQresultStatus(r);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY)
        return 0;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    return gw_error_set(err, state ? GW_EIO : GW_EUNAVAIL, state == NULL, "%s: %s: %s", what,
                        state ? state : "connection", msg ? msg : PQerrorMessage(c));
}

static int run(PGconn *c, const char *sql, const char *what, struct gw_error *err)
{
    PGresult *r = PQexec(c, sql);
    int rc = exec_ok(c, r, what, err);

    PQclear(r);
    return rc < 0 ? rc : 0;
}

static int sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -1;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* NNNN_name.sql with a 4-digit version > 0 and a name of [a-z0-9_]. */
static int parse_name(const char *name, int *version)
{
    size_t n = strlen(name);

    if (n < 10 || strcmp(name + n - 4, ".sql") != 0)
        return -1;
    for (int i = 0; i < 4; i++)
        if (!isdigit((unsigned char)name[i]))
            return -1;
    if (name[4] != '_')
        return -1;
    for (size_t i = 5; i < n - 4; i++)
        if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) && name[i] != '_')
            return -1;
    *version =
        (name[0] - '0') * 1000 + (name[1] - '0') * 100 + (name[2] - '0') * 10 + (name[3] - '0');
    return *version > 0 ? 0 : -1;
}

static int read_file(const char *path, char **out, size_t *len, struct gw_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL)
        return gw_error_set(err, GW_EIO, false, "%s: %s", path, strerror(errno));
    for (;;) {
        if (n + 4096 + 1 > cap) {
            char *b = realloc(buf, cap = cap * 2 + 8192);
            if (b == NULL) {
                free(buf);
                fclose(f);
                return gw_error_set(err, GW_ENOMEM, false, "out of memory");
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r < 4096)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return gw_error_set(err, GW_EIO, false, "%s: read error", path);
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int cmp_mfile(const void *a, const void *b)
{
    return ((const struct mfile *)a)->version - ((const struct mfile *)b)->version;
}

static void free_files(struct mfile *files, int n)
{
    for (int i = 0; i < n; i++) {
        free(files[i].name);
        free(files[i].sql);
    }
    free(files);
}

/* Reads every *.sql of `dir`, checks names and versions, sorts by version. */
static int load_files(const char *dir, struct mfile **out, int *count, struct gw_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    struct mfile *files = NULL;
    int n = 0, cap = 0, rc = 0;

    if (d == NULL)
        return gw_error_set(err, GW_ENOTFOUND, false, "migrations directory %s: %s", dir,
                            strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char path[4096];
        size_t sqllen = 0;
        struct mfile m = {0};

        if (len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue; /* READMEs and the like */
        if (parse_name(e->d_name, &m.version) != 0) {
            rc = gw_error_set(err, GW_EINVAL, false,
                              "%s/%s: malformed migration file name (want NNNN_name.sql)", dir,
                              e->d_name);
            goto fail;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n == cap) {
            struct mfile *f = realloc(files, (size_t)(cap = cap * 2 + 16) * sizeof(*f));
            if (f == NULL) {
                rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
                goto fail;
            }
            files = f;
        }
        m.name = strdup(e->d_name);
        if (m.name == NULL || (rc = read_file(path, &m.sql, &sqllen, err)) != 0) {
            free(m.name);
            if (rc == 0)
                rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
            goto fail;
        }
        files[n++] = m;
        if (sha256_hex(m.sql, sqllen, files[n - 1].sha) != 0) {
            rc = gw_error_set(err, GW_EIO, false, "%s: sha256 failed", path);
            goto fail;
        }
    }
    closedir(d);
    d = NULL;
    if (n > 1)
        qsort(files, (size_t)n, sizeof(*files), cmp_mfile);
    for (int i = 1; i < n; i++) {
        if (files[i].version == files[i - 1].version) {
            rc = gw_error_set(err, GW_EINVAL, false, "%s/%s and %s share version %04d", dir,
                              files[i - 1].name, files[i].name, files[i].version);
            goto fail;
        }
    }
    *out = files;
    *count = n;
    return 0;

fail:
    if (d != NULL)
        closedir(d);
    free_files(files, n);
    return rc;
}

static int apply_one(PGconn *c, const char *dir, const struct mfile *m, struct gw_error *err)
{
    char what[600], version[16];
    const char *params[3] = {version, m->name, m->sha};
    PGresult *r;
    int rc;

    snprintf(what, sizeof(what), "%s/%s", dir, m->name);
    snprintf(version, sizeof(version), "%d", m->version);
    if ((rc = run(c, "BEGIN", what, err)) != 0)
        return rc;
    /* The whole file as one simple-protocol exec: several statements and
     * $$-quoted bodies are fine; transaction control inside is not. */
    if ((rc = run(c, m->sql, what, err)) != 0)
        goto fail_rollback;
    r = PQexecParams(c,
                     "INSERT INTO gw_schema_migrations (version, name, sha256, applied_at) "
                     "VALUES ($1::int, $2, $3, now())",
                     3, NULL, params, NULL, NULL, 0);
    rc = exec_ok(c, r, what, err);
    PQclear(r);
    if (rc != 0)
        goto fail_rollback;
    return run(c, "COMMIT", what, err);

fail_rollback:
    PQclear(PQexec(c, "ROLLBACK"));
    return rc;
}

static int migrate_locked(PGconn *c, const char *dir, const struct mfile *files, int n,
                          int *applied, struct gw_error *err)
{
    struct applied *done = NULL;
    int ndone = 0, rc;
    PGresult *r;

    rc = run(c,
             "CREATE TABLE IF NOT EXISTS gw_schema_migrations ("
             " version int PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,"
             " applied_at timestamptz NOT NULL DEFAULT now())",
             "creating gw_schema_migrations", err);
    if (rc != 0)
        return rc;
    r = PQexec(c, "SELECT version, sha256 FROM gw_schema_migrations ORDER BY version");
    if ((rc = exec_ok(c, r, "reading gw_schema_migrations", err)) != 0) {
        PQclear(r);
        return rc;
    }
    ndone = PQntuples(r);
    done = calloc((size_t)ndone + 1, sizeof(*done));
    if (done == NULL) {
        PQclear(r);
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    }
    for (int i = 0; i < ndone; i++) {
        done[i].version = atoi(PQgetvalue(r, i, 0));
        snprintf(done[i].sha, sizeof(done[i].sha), "%s", PQgetvalue(r, i, 1));
    }
    PQclear(r);

    /* Refuse before changing anything: an edited, already-applied file
     * means this database and these files disagree. */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < ndone; j++)
            if (done[j].version == files[i].version && strcmp(done[j].sha, files[i].sha) != 0) {
                rc = gw_error_set(err, GW_ECONFLICT, false,
                                  "%s/%s was changed after it was applied (sha256 %s, applied "
                                  "%s); add a new migration instead",
                                  dir, files[i].name, files[i].sha, done[j].sha);
                goto out;
            }
    for (int i = 0; i < n; i++) {
        bool skip = false;

        for (int j = 0; j < ndone && !skip; j++)
            skip = done[j].version == files[i].version;
        if (skip)
            continue;
        if ((rc = apply_one(c, dir, &files[i], err)) != 0)
            goto out;
        if (applied != NULL)
            (*applied)++;
    }
out:
    free(done);
    return rc;
}

int gw_pg_migrate(const char *conninfo, const char *dir, int *applied, struct gw_error *err)
{
    struct mfile *files = NULL;
    int n = 0, rc;
    PGconn *c;

    if (applied != NULL)
        *applied = 0;
    if (conninfo == NULL || dir == NULL)
        return gw_error_set(err, GW_EINVAL, false, "gw_pg_migrate: no conninfo or directory");
    if ((rc = load_files(dir, &files, &n, err)) != 0)
        return rc;
    c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[400];
        size_t len;

        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        len = strlen(msg);
        while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
            msg[--len] = '\0';
        rc = gw_error_set(err, GW_EUNAVAIL, true, "cannot connect to PostgreSQL: %s", msg);
        goto fail_connect;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    /* Session-level lock: held across the per-file transactions, released
     * explicitly (or by the server when the connection ends). */
    if ((rc = run(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "taking the migration lock",
                  err)) != 0)
        goto fail_connect;
    rc = migrate_locked(c, dir, files, n, applied, err);
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));

fail_connect:
    PQfinish(c);
    free_files(files, n);
    return rc;
}
