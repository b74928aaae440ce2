/*
 * Retention of the audit trail (docs/audit.md, decision 0047):
 *
 *   gangway audit archive --before SEQ|DATE --out FILE
 *       writes the sealed entries from the chain's start (after the anchor)
 *       up to, not including, SEQ (or the first entry at or after DATE),
 *       with their chain hashes and the signed checkpoints at those seqs, as
 *       JSON lines; written to FILE.tmp and renamed, so never half a file.
 *   gangway audit prune --through SEQ
 *       deletes entries through SEQ (gw_audit_prune), keeping SEQ's hash as
 *       the chain's new anchor.
 *   gangway audit verify --archive FILE --public-key PEM...
 *       proves an archive on its own: every hash recomputed, the links from
 *       the anchor, the checkpoints' signatures, links and hashes.
 *
 * The archive's lines:
 *   {"type":"archive","format":"gangway.audit.archive/1","anchor":{"seq":A,"hash":H},
 *    "through":X,"entries":N}
 *   {"type":"entry","seq":S,"id":I,"at":T,"actor":..,"verb":..,"object":..,
 *    "detail":"<jsonb text>"|null,"prev_hash":P,"hash":H}      (N of them, seq A+1..X)
 *   {"type":"checkpoint", <the checkpoint's members>}           (those with A <= seq <= X)
 * detail is the column's jsonb text as a string, because the hash is over
 * exactly that text.
 */
#include <getopt.h> /* optind */
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_checkpoints.h"
#include "db.h"
#include "gw/crypto.h"
#include "options.h"

#define EXIT_BROKEN 1
#define EXIT_USAGE  2
#define EXIT_ERROR  3
#define ZERO_HASH   "0000000000000000000000000000000000000000000000000000000000000000"

static const char archive_usage[] =
    "usage: gangway audit archive --before SEQ|DATE --out FILE [--pg CONNINFO]\n"
    "       gangway audit prune --through SEQ [--pg CONNINFO]\n"
    "archive exports the sealed entries before SEQ (or before DATE) with their chain and\n"
    "the signed checkpoints that cover them; prune deletes entries through SEQ and keeps\n"
    "its hash as the chain's anchor. Archive first, verify the archive\n"
    "(gangway audit verify --archive FILE --public-key PEM), then prune. docs/audit.md.\n";

static PGresult *run(PGconn *conn, const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fprintf(stderr, "gangway audit: %s", PQresultErrorMessage(res));
        PQclear(res);
        return NULL;
    }
    return res;
}

static bool all_digits(const char *s)
{
    return s[0] != '\0' && strspn(s, "0123456789") == strlen(s) && strlen(s) < 19;
}

/* ------------------------------------------------------------ archive */

static int write_entries(PGconn *conn, FILE *out, const char *anchor, const char *through)
{
    const char *params[] = {anchor, through};
    PGresult *res =
        run(conn,
            "DECLARE gw_arch NO SCROLL CURSOR FOR"
            " SELECT json_build_object('type', 'entry', 'seq', c.seq, 'id', a.id,"
            " 'at', to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
            " 'actor', a.actor, 'verb', a.verb, 'object', a.object,"
            " 'detail', a.detail::text, 'prev_hash', c.prev_hash, 'hash', c.hash)::text"
            " FROM gw_audit_chain c LEFT JOIN gw_audit_log a ON a.id = c.audit_id"
            " WHERE c.seq > $1::bigint AND c.seq <= $2::bigint ORDER BY c.seq",
            2, params);
    if (res == NULL)
        return EXIT_ERROR;
    PQclear(res);
    for (;;) {
        res = run(conn, "FETCH FORWARD 5000 FROM gw_arch", 0, NULL);
        if (res == NULL)
            return EXIT_ERROR;
        int n = PQntuples(res);
        for (int i = 0; i < n; i++)
            fprintf(out, "%s\n", PQgetvalue(res, i, 0));
        PQclear(res);
        if (n == 0)
            return 0;
    }
}

int audit_archive(int argc, char **argv)
{
    const char *pg = NULL, *before = NULL, *path = NULL;
    const struct gw_opt_spec specs[] = {
        {"pg", GW_OPT_STRING, &pg},
        {"before", GW_OPT_STRING, &before},
        {"out", GW_OPT_STRING, &path},
        {0},
    };
    char tmp[4096], anchor[24] = "0", anchor_hash[65] = ZERO_HASH, through[24];
    int rc = gw_opt_parse(argc, argv, specs, archive_usage);
    if (rc != GW_OPT_OK)
        return rc;
    if (optind < argc || before == NULL || path == NULL) {
        fputs(archive_usage, stderr);
        return EXIT_USAGE;
    }
    PGconn *conn = gw_db_connect("audit", pg);
    if (conn == NULL)
        return EXIT_ERROR;
    PQsetClientEncoding(conn, "UTF8");
    PGresult *res = run(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    PQclear(res);
    if (res == NULL)
        goto fail;
    res =
        run(conn, "SELECT through_seq, hash FROM gw_audit_anchor ORDER BY through_seq DESC LIMIT 1",
            0, NULL);
    if (res == NULL)
        goto fail;
    if (PQntuples(res) == 1) {
        snprintf(anchor, sizeof(anchor), "%s", PQgetvalue(res, 0, 0));
        snprintf(anchor_hash, sizeof(anchor_hash), "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    /* The last seq to archive: SEQ - 1, or the last entry before DATE. */
    const char *p1[] = {before};
    res = run(conn,
              all_digits(before)
                  ? "SELECT least($1::bigint - 1, (SELECT max(seq) FROM gw_audit_chain))"
                  : "SELECT max(c.seq) FROM gw_audit_chain c JOIN gw_audit_log a"
                    " ON a.id = c.audit_id WHERE a.at < $1::timestamptz",
              1, p1);
    if (res == NULL)
        goto fail;
    snprintf(through, sizeof(through), "%s", PQgetisnull(res, 0, 0) ? "0" : PQgetvalue(res, 0, 0));
    PQclear(res);
    if (atoll(through) <= atoll(anchor)) {
        fprintf(stderr,
                "gangway audit: nothing sealed to archive before %s (the chain starts "
                "after seq %s)\n",
                before, anchor);
        PQclear(PQexec(conn, "ROLLBACK"));
        PQfinish(conn);
        return EXIT_USAGE;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (out == NULL) {
        fprintf(stderr, "gangway audit: %s: cannot write\n", tmp);
        goto fail;
    }
    fprintf(out,
            "{\"type\":\"archive\",\"format\":\"gangway.audit.archive/1\",\"anchor\":{\"seq\":%s,"
            "\"hash\":\"%s\"},\"through\":%s,\"entries\":%lld}\n",
            anchor, anchor_hash, through, atoll(through) - atoll(anchor));
    rc = write_entries(conn, out, anchor, through);
    const char *p2[] = {anchor, through};
    res = rc == 0 ? run(conn,
                        "SELECT json_build_object('type', 'checkpoint', 'format',"
                        " 'gangway.audit.checkpoint/1', 'seq', seq, 'hash', hash, 'time', time,"
                        " 'prev', prev, 'key_id', key_id, 'sig', sig,"
                        " 'checkpoint_hash', checkpoint_hash)::text"
                        " FROM gw_audit_checkpoints WHERE seq >= $1::bigint AND seq <= $2::bigint"
                        " ORDER BY id",
                        2, p2)
                  : NULL;
    int ncp = res != NULL ? PQntuples(res) : 0;
    for (int i = 0; i < ncp; i++)
        fprintf(out, "%s\n", PQgetvalue(res, i, 0));
    PQclear(res);
    bool written = fflush(out) == 0 && !ferror(out);
    written = fclose(out) == 0 && written;
    if (res == NULL || !written || rename(tmp, path) != 0) {
        if (res != NULL)
            fprintf(stderr, "gangway audit: %s: write failed\n", path);
        remove(tmp);
        goto fail;
    }
    PQclear(PQexec(conn, "ROLLBACK"));
    PQfinish(conn);
    printf("archived seq %lld..%s (%lld entries, %d checkpoints) to %s\n", atoll(anchor) + 1,
           through, atoll(through) - atoll(anchor), ncp, path);
    if (ncp == 0)
        fprintf(stderr, "gangway audit: warning: no signed checkpoint covers this range; "
                        "verify --archive will refuse it\n");
    return 0;
fail:
    PQfinish(conn);
    return EXIT_ERROR;
}

/* ------------------------------------------------------------ prune */

int audit_prune(int argc, char **argv)
{
    const char *pg = NULL, *through = NULL;
    const struct gw_opt_spec specs[] = {
        {"pg", GW_OPT_STRING, &pg},
        {"through", GW_OPT_STRING, &through},
        {0},
    };
    int rc = gw_opt_parse(argc, argv, specs, archive_usage);
    if (rc != GW_OPT_OK)
        return rc;
    if (optind < argc || through == NULL || !all_digits(through) || atoll(through) < 1) {
        fputs("gangway audit: prune wants --through SEQ (a positive number)\n", stderr);
        return EXIT_USAGE;
    }
    PGconn *conn = gw_db_connect("audit", pg);
    if (conn == NULL)
        return EXIT_ERROR;
    const char *params[] = {through};
    PGresult *res =
        PQexecParams(conn,
                     "SELECT gw_audit_prune($1::bigint, 'db:' || session_user),"
                     " (SELECT hash FROM gw_audit_anchor WHERE through_seq = $1::bigint)",
                     1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        fprintf(stderr, "gangway audit: %s", PQresultErrorMessage(res));
        rc = state != NULL && strcmp(state, "22023") == 0 ? EXIT_USAGE : EXIT_ERROR;
    } else {
        printf("pruned %s entries through seq %s; the chain now starts after hash %s\n",
               PQgetvalue(res, 0, 0), through, PQgetvalue(res, 0, 1));
        rc = 0;
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
}

/* ------------------------------------------------------------ verify --archive */

static int archive_broken(bool json, long long seq, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int archive_broken(bool json, long long seq, const char *kind, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (json) {
        json_t *o = json_pack("{s:b, s:{s:I, s:s, s:s}}", "ok", 0, "broken", "seq", (json_int_t)seq,
                              "kind", kind, "message", msg);
        char *t = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        puts(t != NULL ? t : "{\"ok\":false}");
        free(t);
        json_decref(o);
    } else {
        printf("audit archive BROKEN at seq %lld: %s: %s\n", seq, kind, msg);
    }
    return EXIT_BROKEN;
}

static const char *member(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL)
            break;
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, fp);
        len += n;
        if (n == 0) {
            buf[len] = '\0';
            break;
        }
    }
    fclose(fp);
    return buf;
}

int audit_verify_archive(const char *path, const struct gw_checkpoint_keys *keys, bool json)
{
    char *text = slurp(path);
    struct cp_set cps = {0};
    struct cp_finding f;
    char prev[65] = ZERO_HASH, anchor_hash[65] = ZERO_HASH, seqs[24];
    char(*hashes)[65] = NULL;
    long long anchor = -1, through = 0, next = 0;
    size_t line = 0, cap = 0;
    int rc = 0;

    if (text == NULL) {
        fprintf(stderr, "gangway audit: %s: cannot read\n", path);
        return EXIT_ERROR;
    }
    for (char *p = text, *end; *p != '\0' && rc == 0; p = end + (*end != '\0')) {
        json_error_t jerr;
        end = strchr(p, '\n');
        if (end == NULL)
            end = p + strlen(p);
        line++;
        if (end == p)
            continue;
        json_t *o = json_loadb(p, (size_t)(end - p), 0, &jerr);
        const char *type = member(o, "type");
        if (o == NULL || type == NULL) {
            rc = archive_broken(json, next, "archive_malformed", "line %zu: %s", line,
                                o == NULL ? jerr.text : "no \"type\"");
        } else if (line == 1) {
            const json_t *a = json_object_get(o, "anchor");
            const char *h = member(a, "hash");
            if (strcmp(type, "archive") != 0 || !json_is_integer(json_object_get(a, "seq")) ||
                h == NULL || strlen(h) != 64 || !json_is_integer(json_object_get(o, "through"))) {
                rc =
                    archive_broken(json, 0, "archive_malformed", "line 1 is not an archive header");
            } else {
                anchor = json_integer_value(json_object_get(a, "seq"));
                through = json_integer_value(json_object_get(o, "through"));
                snprintf(anchor_hash, sizeof(anchor_hash), "%s", h);
                snprintf(prev, sizeof(prev), "%s", h);
                next = anchor + 1;
                cap = through > anchor && through - anchor < 100000000 ? (size_t)(through - anchor)
                                                                       : 0;
                hashes = calloc(cap + 1, sizeof(*hashes));
                if (hashes == NULL)
                    rc = archive_broken(json, 0, "archive_malformed", "through out of range");
            }
        } else if (strcmp(type, "entry") == 0) {
            const json_t *js = json_object_get(o, "seq"), *jid = json_object_get(o, "id");
            const json_t *jd = json_object_get(o, "detail");
            char idb[24];
            struct audit_content c = {.at = member(o, "at"),
                                      .actor = member(o, "actor"),
                                      .verb = member(o, "verb"),
                                      .object = member(o, "object"),
                                      .detail = json_is_null(jd) ? NULL : json_string_value(jd)};
            const char *ph = member(o, "prev_hash"), *h = member(o, "hash");
            char computed[65];
            if (!json_is_integer(js) || !json_is_integer(jid) || c.at == NULL || c.actor == NULL ||
                c.verb == NULL || c.object == NULL || (!json_is_null(jd) && c.detail == NULL) ||
                ph == NULL || h == NULL) {
                rc = archive_broken(json, next, "archive_malformed",
                                    "line %zu: an entry without its members", line);
            } else if (json_integer_value(js) != next || next > through) {
                rc = archive_broken(json, next, "chain_entry_missing",
                                    "line %zu holds seq %lld where seq %lld belongs", line,
                                    (long long)json_integer_value(js), next);
            } else if (strcmp(ph, prev) != 0) {
                rc = archive_broken(json, next, "chain_link_broken",
                                    "prev_hash %.12s... is not the hash before it (%.12s...)", ph,
                                    prev);
            } else {
                snprintf(idb, sizeof(idb), "%lld", (long long)json_integer_value(jid));
                snprintf(seqs, sizeof(seqs), "%lld", next);
                c.id = idb;
                audit_entry_hash(seqs, &c, prev, computed);
                if (strcmp(computed, h) != 0) {
                    rc = archive_broken(json, next, "content_changed",
                                        "entry %s does not hash to its recorded hash", idb);
                } else {
                    snprintf(prev, sizeof(prev), "%s", h);
                    memcpy(hashes[next - anchor - 1], h, 65);
                    next++;
                }
            }
        } else if (strcmp(type, "checkpoint") == 0) {
            if (cp_set_add_json(&cps, o, path, line, &f) < 0)
                rc = archive_broken(json, 0, f.kind, "%s", f.message);
        } else {
            rc = archive_broken(json, 0, "archive_malformed", "line %zu: unknown type %s", line,
                                type);
        }
        json_decref(o);
    }
    if (rc == 0 && anchor < 0)
        rc = archive_broken(json, 0, "archive_malformed", "%s: empty", path);
    if (rc == 0 && next != through + 1)
        rc = archive_broken(json, next, "tail_truncated",
                            "the header promises entries through seq %lld, the file ends at "
                            "seq %lld",
                            through, next - 1);
    if (rc == 0 && cps.n == 0)
        rc = archive_broken(json, through, "archive_uncovered",
                            "no signed checkpoint in the archive vouches for its entries");
    if (rc == 0 && cp_set_verify_signatures(&cps, keys, &f) < 0)
        rc = archive_broken(json, f.seq, f.kind, "%s", f.message);
    size_t pruned = 0;
    if (rc == 0) {
        for (size_t i = 0; i < cps.n; i++)
            cps.have[i] = cps.v[i].seq > anchor && cps.v[i].seq <= through
                              ? hashes[cps.v[i].seq - anchor - 1]
                              : NULL;
        if (cp_set_check(&cps, anchor, anchor_hash, through, &pruned, &f) < 0)
            rc = archive_broken(json, f.seq, f.kind, "%s", f.message);
    }
    if (rc == 0) {
        long long covered = cps.v[cps.n - 1].seq;
        if (json)
            printf("{\"ok\":true,\"anchor\":{\"seq\":%lld,\"hash\":\"%s\"},\"through\":%lld,"
                   "\"verified\":%lld,\"checkpoints\":%zu,\"covered_through\":%lld}\n",
                   anchor, anchor_hash, through, through - anchor, cps.n, covered);
        else
            printf("audit archive intact: seq %lld..%lld (%lld entries) chained from %.12s..., "
                   "%zu signed checkpoints agree, the last at seq %lld%s\n",
                   anchor + 1, through, through - anchor, anchor_hash, cps.n, covered,
                   covered < through ? " (later entries rest on the chain alone)" : "");
    }
    free(hashes);
    cp_set_free(&cps);
    free(text);
    return rc;
}
