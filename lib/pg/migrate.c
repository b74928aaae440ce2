/*
 * gw_pg_migrate: numbered SQL files applied in order, each once, then every
 * function file of functions/ re-applied in dependency order (the repeatable
 * migrations of Flyway; docs/decisions/0021-sql-functions-repeatable.md),
 * all under an advisory lock so concurrent starters (several broker
 * replicas, a CLI run) apply each file exactly once. Blocking libpq:
 * start-up and CLI only.
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

/* A .sql file: a numbered migration, or a file of functions/ (one function,
 * its overloads, its triggers). */
struct sqlfile {
    int version; /* numbered: NNNN; functions/: 0 */
    char *name;  /* numbered: the file name, 0001_baseline.sql; functions/: gw_submit_run */
    char *sql;
    char sha[65];
    int *deps; /* functions/: indexes of the files this one calls */
    int ndeps;
    bool placed;
};

/* A row of gw_schema_migrations. */
struct applied {
    int version;
    char name[256];
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

/* A file's text and its sha256, for the bookkeeping rows. */
static int read_sql(const char *path, char **sql, char sha[65], struct gw_error *err)
{
    size_t len = 0;
    int rc = read_file(path, sql, &len, err);

    if (rc != 0)
        return rc;
    if (sha256_hex(*sql, len, sha) != 0) {
        free(*sql);
        *sql = NULL;
        return gw_error_set(err, GW_EIO, false, "%s: sha256 failed", path);
    }
    return 0;
}

static int cmp_version(const void *a, const void *b)
{
    return ((const struct sqlfile *)a)->version - ((const struct sqlfile *)b)->version;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct sqlfile *)a)->name, ((const struct sqlfile *)b)->name);
}

static void free_files(struct sqlfile *files, int n)
{
    for (int i = 0; i < n; i++) {
        free(files[i].name);
        free(files[i].sql);
        free(files[i].deps);
    }
    free(files);
}

/* [a-z0-9_]+.sql; the stem is the function's name. */
static bool function_name_ok(const char *name, size_t len)
{
    if (len < 5 || strcmp(name + len - 4, ".sql") != 0)
        return false;
    for (size_t i = 0; i < len - 4; i++)
        if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) && name[i] != '_')
            return false;
    return true;
}

/* Reads every *.sql of `dir` (other files are ignored, READMEs and the
 * like): numbered migrations when `numbered` (NNNN_name.sql, sorted by
 * version), else function files ([a-z0-9_]+.sql named by their stem, sorted
 * by name; a missing directory is none). A malformed name is an error naming
 * the file. */
static int load_dir(const char *dir, bool numbered, struct sqlfile **out, int *count,
                    struct gw_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    struct sqlfile *files = NULL;
    int n = 0, cap = 0, rc = 0;

    *out = NULL;
    *count = 0;
    if (d == NULL && !numbered && errno == ENOENT)
        return 0;
    if (d == NULL)
        return gw_error_set(err, numbered ? GW_ENOTFOUND : GW_EIO, false, "%s %s: %s",
                            numbered ? "migrations directory" : "functions directory", dir,
                            strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char path[8192];
        struct sqlfile f = {0};

        if (len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        if (numbered ? parse_name(e->d_name, &f.version) != 0 : !function_name_ok(e->d_name, len)) {
            rc = gw_error_set(err, GW_EINVAL, false, "%s/%s: malformed %s file name (want %s)", dir,
                              e->d_name, numbered ? "migration" : "function",
                              numbered ? "NNNN_name.sql" : "[a-z0-9_]+.sql");
            goto fail;
        }
        if (n == cap) {
            struct sqlfile *g = realloc(files, (size_t)(cap = cap * 2 + 32) * sizeof(*g));
            if (g == NULL) {
                rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
                goto fail;
            }
            files = g;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        f.name = numbered ? strdup(e->d_name) : strndup(e->d_name, len - 4);
        if (f.name == NULL || (rc = read_sql(path, &f.sql, f.sha, err)) != 0) {
            free(f.name);
            if (rc == 0)
                rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
            goto fail;
        }
        files[n++] = f;
    }
    closedir(d);
    if (n > 1)
        qsort(files, (size_t)n, sizeof(*files), numbered ? cmp_version : cmp_name);
    *out = files;
    *count = n;
    return 0;

fail:
    closedir(d);
    free_files(files, n);
    return rc;
}

/* The numbered files of `dir`, sorted, no two with one version. */
static int load_files(const char *dir, struct sqlfile **out, int *count, struct gw_error *err)
{
    int rc = load_dir(dir, true, out, count, err);

    for (int i = 1; rc == 0 && i < *count; i++) {
        const struct sqlfile *a = &(*out)[i - 1], *b = &(*out)[i];

        if (a->version == b->version) {
            rc = gw_error_set(err, GW_EINVAL, false, "%s/%s and %s share version %04d", dir,
                              a->name, b->name, b->version);
            free_files(*out, *count);
            *out = NULL;
            *count = 0;
        }
    }
    return rc;
}

static int apply_one(PGconn *c, const char *dir, const struct sqlfile *m, struct gw_error *err)
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

/* --- functions/: one file a function, re-applied on every migrate --- */

static int find_function(const struct sqlfile *files, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(files[i].name) == len && strncmp(files[i].name, name, len) == 0)
            return i;
    return -1;
}

static int add_dep(struct sqlfile *f, int dep)
{
    int *d;

    for (int i = 0; i < f->ndeps; i++)
        if (f->deps[i] == dep)
            return 0;
    d = realloc(f->deps, (size_t)(f->ndeps + 1) * sizeof(*d));
    if (d == NULL)
        return -1;
    f->deps = d;
    f->deps[f->ndeps++] = dep;
    return 0;
}

/* "-- depends: gw_a, gw_b" at the start of a line names calls the scan
 * cannot see (a function called through EXECUTE, say). Each must be a file. */
static int scan_depends_line(const char *dir, struct sqlfile *files, int n, int self, const char *p,
                             const char *end, struct gw_error *err)
{
    while (p < end) {
        const char *w;

        while (p < end && (*p == ' ' || *p == ',' || *p == '\t'))
            p++;
        for (w = p; p < end && (isalnum((unsigned char)*p) || *p == '_'); p++)
            ;
        if (p == w) {
            if (p < end)
                return gw_error_set(err, GW_EINVAL, false,
                                    "%s/functions/%s.sql: malformed '-- depends:' line", dir,
                                    files[self].name);
            break;
        }
        int dep = find_function(files, n, w, (size_t)(p - w));
        if (dep < 0)
            return gw_error_set(err, GW_EINVAL, false,
                                "%s/functions/%s.sql depends on %.*s, which has no file in "
                                "%s/functions",
                                dir, files[self].name, (int)(p - w), w, dir);
        if (dep != self && add_dep(&files[self], dep) != 0)
            return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    }
    return 0;
}

/* Finds which other function files a file calls: every name of a file
 * followed by '(' outside comments and string literals (function bodies are
 * scanned: $$ is not a string here), plus its '-- depends:' lines. An SQL
 * function's body is checked when it is created, so what it calls must
 * exist first; PL/pgSQL bodies are not, but are ordered the same way. */
static int scan_deps(const char *dir, struct sqlfile *files, int n, int self, struct gw_error *err)
{
    const char *p = files[self].sql;
    int rc;

    while (*p) {
        if (p[0] == '-' && p[1] == '-') {
            const char *eol = p + strcspn(p, "\n");
            bool bol = p == files[self].sql || p[-1] == '\n';

            if (bol && strncmp(p, "-- depends:", 11) == 0 &&
                (rc = scan_depends_line(dir, files, n, self, p + 11, eol, err)) != 0)
                return rc;
            p = eol;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            p = e != NULL ? e + 2 : p + strlen(p);
        } else if (*p == '\'' || *p == '"') {
            char q = *p++;
            while (*p && (*p != q || p[1] == q))
                p += *p == q ? 2 : 1;
            if (*p)
                p++;
        } else if (isalpha((unsigned char)*p) || *p == '_') {
            const char *w = p, *after;
            while (isalnum((unsigned char)*p) || *p == '_' || *p == '$')
                p++;
            for (after = p; isspace((unsigned char)*after); after++)
                ;
            int dep = *after == '(' ? find_function(files, n, w, (size_t)(p - w)) : -1;
            if (dep >= 0 && dep != self && add_dep(&files[self], dep) != 0)
                return gw_error_set(err, GW_ENOMEM, false, "out of memory");
        } else {
            p++;
        }
    }
    return 0;
}

/* dir/functions/\*.sql (none when the directory does not exist), sorted by
 * name, with their dependencies. */
static int load_functions(const char *dir, struct sqlfile **out, int *count, struct gw_error *err)
{
    char fdir[4096];
    int rc;

    snprintf(fdir, sizeof(fdir), "%s/functions", dir);
    if ((rc = load_dir(fdir, false, out, count, err)) != 0)
        return rc;
    for (int i = 0; i < *count; i++)
        if ((rc = scan_deps(dir, *out, *count, i, err)) != 0) {
            free_files(*out, *count);
            *out = NULL;
            *count = 0;
            return rc;
        }
    return 0;
}

/* Kahn's algorithm, taking the first ready file by name each time so the
 * order is the same on every run. A cycle is an error naming its files. */
static int order_functions(const char *dir, struct sqlfile *files, int n, int *order,
                           struct gw_error *err)
{
    for (int k = 0; k < n; k++) {
        int next = -1;

        for (int i = 0; i < n && next < 0; i++) {
            bool ready = !files[i].placed;

            for (int j = 0; j < files[i].ndeps && ready; j++)
                ready = files[files[i].deps[j]].placed;
            if (ready)
                next = i;
        }
        if (next < 0) {
            char names[1024] = "";
            size_t len = 0;

            for (int i = 0; i < n && len < sizeof(names); i++)
                if (!files[i].placed)
                    len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
                                            len ? ", " : "", files[i].name);
            return gw_error_set(err, GW_EINVAL, false,
                                "%s/functions: the calls between these files form a cycle (an "
                                "SQL function needs what it calls created first): %s",
                                dir, names);
        }
        files[next].placed = true;
        order[k] = next;
    }
    return 0;
}

/* Every function file, in order, in one transaction with its checksum row:
 * all of them or none. */
static int apply_functions(PGconn *c, const char *dir, const struct sqlfile *files,
                           const int *order, int n, struct gw_error *err)
{
    int rc;

    if ((rc = run(c, "BEGIN", "applying functions", err)) != 0)
        return rc;
    rc = run(c,
             "CREATE TABLE IF NOT EXISTS gw_schema_functions ("
             " name text PRIMARY KEY, sha256 text NOT NULL,"
             " applied_at timestamptz NOT NULL DEFAULT now())",
             "creating gw_schema_functions", err);
    for (int k = 0; k < n && rc == 0; k++) {
        const struct sqlfile *f = &files[order[k]];
        const char *params[2] = {f->name, f->sha};
        char what[600];
        PGresult *r;

        snprintf(what, sizeof(what), "%s/functions/%s.sql", dir, f->name);
        if ((rc = run(c, f->sql, what, err)) != 0)
            break;
        r = PQexecParams(c,
                         "INSERT INTO gw_schema_functions (name, sha256, applied_at)"
                         " VALUES ($1, $2, now()) ON CONFLICT (name) DO UPDATE"
                         " SET sha256 = excluded.sha256, applied_at = excluded.applied_at",
                         2, NULL, params, NULL, NULL, 0);
        rc = exec_ok(c, r, what, err);
        PQclear(r);
    }
    if (rc != 0) {
        PQclear(PQexec(c, "ROLLBACK"));
        return rc;
    }
    return run(c, "COMMIT", "applying functions", err);
}

/* Refuses, before anything runs, a database migrated by another numbering
 * (the numbered files before the 0001_baseline squash): the same version
 * recorded under another file name. A database with versions these files do
 * not have is accepted, as before: a rollback to a binary whose files are a
 * prefix of what is applied (docs/deploy.md), which then puts its own
 * function files back. */
static int check_history(const char *dir, const struct sqlfile *files, int n,
                         const struct applied *done, int ndone, struct gw_error *err)
{
    for (int j = 0; j < ndone; j++)
        for (int i = 0; i < n; i++)
            if (files[i].version == done[j].version && strcmp(files[i].name, done[j].name) != 0)
                return gw_error_set(err, GW_ECONFLICT, false,
                                    "this database recorded migration %04d as %s, but %s/%s has "
                                    "that number: it was migrated by another numbering (before "
                                    "the 0001_baseline squash?); create a new database or "
                                    "migrate it with the files it was made with",
                                    done[j].version, done[j].name, dir, files[i].name);
    return 0;
}

static int migrate_locked(PGconn *c, const char *dir, const struct sqlfile *files, int n,
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
    r = PQexec(c, "SELECT version, sha256, name FROM gw_schema_migrations ORDER BY version");
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
        snprintf(done[i].name, sizeof(done[i].name), "%s", PQgetvalue(r, i, 2));
    }
    PQclear(r);
    if ((rc = check_history(dir, files, n, done, ndone, err)) != 0)
        goto out;

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
    struct sqlfile *files = NULL;
    struct sqlfile *funcs = NULL;
    int n = 0, nfuncs = 0, *order = NULL, rc;
    PGconn *c = NULL;

    if (applied != NULL)
        *applied = 0;
    if (conninfo == NULL || dir == NULL)
        return gw_error_set(err, GW_EINVAL, false, "gw_pg_migrate: no conninfo or directory");
    /* Every file read, named and ordered before anything runs. */
    if ((rc = load_files(dir, &files, &n, err)) != 0)
        return rc;
    if ((rc = load_functions(dir, &funcs, &nfuncs, err)) != 0)
        goto out;
    if ((order = calloc((size_t)nfuncs + 1, sizeof(*order))) == NULL) {
        rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto out;
    }
    if ((rc = order_functions(dir, funcs, nfuncs, order, err)) != 0)
        goto out;
    c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[400];
        size_t len;

        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        len = strlen(msg);
        while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
            msg[--len] = '\0';
        rc = gw_error_set(err, GW_EUNAVAIL, true, "cannot connect to PostgreSQL: %s", msg);
        goto out;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    /* Session-level lock: held across the per-file transactions, released
     * explicitly (or by the server when the connection ends). */
    if ((rc = run(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "taking the migration lock",
                  err)) != 0)
        goto out;
    rc = migrate_locked(c, dir, files, n, applied, err);
    if (rc == 0 && nfuncs > 0)
        rc = apply_functions(c, dir, funcs, order, nfuncs, err);
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));

out:
    PQfinish(c);
    free(order);
    free_files(funcs, nfuncs);
    free_files(files, n);
    return rc;
}
