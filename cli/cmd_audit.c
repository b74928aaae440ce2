/*
 * `gangway audit verify|list`: checks the audit hash chain against the audit
 * log (and against signed checkpoints kept outside the database:
 * audit_checkpoints.c), and lists entries, straight from PostgreSQL. archive,
 * prune and verify --archive are in cmd_audit_archive.c.
 *
 * verify recomputes every hash in C from the raw columns, so a replaced SQL
 * function cannot vouch for itself. The canonical encoding is defined in
 * docs/decisions/0014-audit-hash-chain.md and built by gw_audit_canonical()
 * in sql/functions/gw_audit_canonical.sql; canonical() below must stay byte-identical.
 *
 * Exit codes: 0 intact (or listed), 1 the chain is broken, 2 usage,
 * 3 could not check (connection or SQL error).
 */
#include <getopt.h> /* optind */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_checkpoints.h"
#include "commands.h"
#include "db.h"
#include "gw/crypto.h"
#include "gw/error.h"
#include "gw/mem.h"
#include "options.h"

#define EXIT_BROKEN 1
#define EXIT_USAGE  2
#define EXIT_ERROR  3
#define FETCH_ROWS  "5000"
/* Positions around a broken entry searched for its content (reordering). */
#define REORDER_WINDOW "1000"
#define ZERO_HASH      "0000000000000000000000000000000000000000000000000000000000000000"

static const char usage_text[] =
    "usage: gangway audit verify [--pg CONNINFO] [--json]\n"
    "                            [--checkpoints kafka|FILE|URL --public-key PEM...]\n"
    "                            [--kafka BROKERS] [--kafka-props K=V,...] [--topic-prefix P]\n"
    "       gangway audit verify --archive FILE --public-key PEM... [--json]\n"
    "       gangway audit archive --before SEQ|DATE --out FILE [--pg CONNINFO]\n"
    "       gangway audit prune --through SEQ [--pg CONNINFO]\n"
    "       gangway audit list [--run ID] [--actor A] [--action VERB] [--since T] [--until T]\n"
    "                          [--limit N] [--pg CONNINFO] [--json]\n"
    "\n"
    "verify walks gw_audit_chain in seq order, recomputes every hash from the audit\n"
    "entry's current content and names the first broken entry (exit 1); exit 0 prints\n"
    "how many entries were verified and how many are not sealed yet. With --checkpoints\n"
    "it also checks the chain against every signed checkpoint read there (kafka: the\n"
    "topic <prefix>gangway.audit.checkpoints from the beginning; a file or URL of JSON\n"
    "lines); --public-key may be given once per key (rotation). See docs/audit.md.\n";

/* ------------------------------------------------------------ buffers */

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (gw_grow(&b->p, &b->cap, b->len + n + 1, 256) < 0) {
        fputs("gangway audit: out of memory\n", stderr);
        exit(EXIT_ERROR);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* A JSON string exactly as PostgreSQL's jsonb prints one (escape_json):
 * the short escapes of the table, \u00xx (lower-case hex) for other control
 * characters, every other byte verbatim. */
static void buf_json_string(struct buf *b, const char *s)
{
    static const char *const short_escape[] = {
        ['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n",  ['\r'] = "\\r",
        ['\t'] = "\\t", ['"'] = "\\\"", ['\\'] = "\\\\",
    };
    buf_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = c < ARRAY_SIZE(short_escape) ? short_escape[c] : NULL;
        char hex[8];
        if (esc != NULL) {
            buf_add(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(hex, sizeof(hex), "\\u%04x", c);
            buf_add(b, hex, 6);
        } else {
            buf_add(b, (const char *)s, 1);
        }
    }
    buf_add(b, "\"", 1);
}

/* ------------------------------------------------------------ entries */

/* An audit entry's content, borrowed from a PGresult row. detail NULL = SQL NULL. */
#define content audit_content

static void content_from(const PGresult *res, int row, int col, struct content *c)
{
    c->id = PQgetvalue(res, row, col);
    c->at = PQgetvalue(res, row, col + 1);
    c->actor = PQgetvalue(res, row, col + 2);
    c->verb = PQgetvalue(res, row, col + 3);
    c->object = PQgetvalue(res, row, col + 4);
    c->detail = PQgetisnull(res, row, col + 5) ? NULL : PQgetvalue(res, row, col + 5);
}

/* sha256 hex of the canonical encoding of `c` at position seq after prev. */
static void entry_hash(const char *seq, const char *id, const struct content *c, const char *prev,
                       struct buf *scratch, char out[GW_SHA256_HEX_LEN + 1])
{
    scratch->len = 0;
    buf_adds(scratch, "{\"seq\":");
    buf_adds(scratch, seq);
    buf_adds(scratch, ",\"id\":");
    buf_adds(scratch, id);
    buf_adds(scratch, ",\"at\":\"");
    buf_adds(scratch, c->at);
    buf_adds(scratch, "\",\"actor\":");
    buf_json_string(scratch, c->actor);
    buf_adds(scratch, ",\"verb\":");
    buf_json_string(scratch, c->verb);
    buf_adds(scratch, ",\"object\":");
    buf_json_string(scratch, c->object);
    buf_adds(scratch, ",\"detail\":");
    buf_adds(scratch, c->detail != NULL ? c->detail : "null");
    buf_adds(scratch, ",\"prev_hash\":\"");
    buf_adds(scratch, prev);
    buf_adds(scratch, "\"}");
    gw_sha256_hex(scratch->p, scratch->len, out);
}

void audit_entry_hash(const char *seq, const struct audit_content *c, const char *prev,
                      char out[65])
{
    struct buf scratch = {0};
    entry_hash(seq, c->id, c, prev, &scratch, out);
    free(scratch.p);
}

/* The columns of an entry's content, in content_from() order. */
#define CONTENT_COLS                                                                               \
    "a.id, to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), a.actor,"        \
    " a.verb, a.object, a.detail::text"

/* ------------------------------------------------------------ database */

/* Reads a subcommand's options (`specs`, which set *pg), then no argument
 * may be left (exit 2), then the database (exit 3 when it cannot be
 * reached). Returns 0 with *conn set; else *conn is NULL and the return is
 * the exit code (0 after --help). */
static int open_db(int argc, char **argv, const struct gw_opt_spec *specs, const char *const *pg,
                   PGconn **conn)
{
    int rc = gw_opt_parse(argc, argv, specs, usage_text);

    *conn = NULL;
    if (rc != GW_OPT_OK)
        return rc;
    if (optind < argc) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    *conn = gw_db_connect("audit", *pg);
    if (*conn == NULL)
        return EXIT_ERROR;
    /* The hashes are over UTF-8 bytes. */
    PQsetClientEncoding(*conn, "UTF8");
    return 0;
}

static PGresult *query(PGconn *conn, const char *sql, int n, const char *const *params)
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

/* ------------------------------------------------------------ verify */

struct verdict {
    bool json;
    long long verified;
    long long unsealed;
    char head_seq[24]; /* "" = no head (an empty chain) */
    char head_hash[GW_SHA256_HEX_LEN + 1];
    long long anchor_seq; /* the pruned prefix ends here; 0 = none pruned */
    char anchor_hash[GW_SHA256_HEX_LEN + 1];
};

static int broken(const struct verdict *v, const char *seq, const char *audit_id, const char *kind,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int broken(const struct verdict *v, const char *seq, const char *audit_id, const char *kind,
                  const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (v->json) {
        struct buf b = {0};
        buf_adds(&b, "{\"ok\":false,\"verified\":");
        char n[32];
        snprintf(n, sizeof(n), "%lld", v->verified);
        buf_adds(&b, n);
        buf_adds(&b, ",\"broken\":{\"seq\":");
        buf_adds(&b, seq != NULL ? seq : "null");
        buf_adds(&b, ",\"audit_id\":");
        buf_adds(&b, audit_id != NULL ? audit_id : "null");
        buf_adds(&b, ",\"kind\":");
        buf_json_string(&b, kind);
        buf_adds(&b, ",\"message\":");
        buf_json_string(&b, msg);
        buf_adds(&b, "}}");
        puts(b.p);
        free(b.p);
    } else {
        printf("audit chain BROKEN at seq %s (audit id %s): %s: %s\n", seq != NULL ? seq : "-",
               audit_id != NULL ? audit_id : "-", kind, msg);
        printf("%lld entries before it verified\n", v->verified);
    }
    return EXIT_BROKEN;
}

/* The entry at seq (content `c`, sealed with prev) no longer hashes to its
 * stored hash: tell a changed hash, a moved entry and changed content apart. */
static int classify_mismatch(PGconn *conn, const struct verdict *v, const char *seq,
                             const char *audit_id, const struct content *c, const char *computed,
                             struct buf *scratch)
{
    const char *p1[] = {seq};
    PGresult *res =
        query(conn, "SELECT prev_hash FROM gw_audit_chain WHERE seq = $1::bigint + 1", 1, p1);
    if (res == NULL)
        return EXIT_ERROR;
    if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), computed) == 0) {
        PQclear(res);
        return broken(v, seq, audit_id, "hash_altered",
                      "the chain's stored hash was changed; the entry still matches the hash "
                      "that seq %lld links to",
                      atoll(seq) + 1);
    }
    PQclear(res);

    /* Does this content belong at another position? Then entries were
     * swapped or moved rather than edited. */
    const char *p2[] = {seq, REORDER_WINDOW};
    res = query(conn,
                "SELECT seq, audit_id, prev_hash, hash FROM gw_audit_chain"
                " WHERE seq BETWEEN $1::bigint - $2::bigint AND $1::bigint + $2::bigint"
                " AND seq <> $1::bigint ORDER BY seq",
                2, p2);
    if (res == NULL)
        return EXIT_ERROR;
    for (int i = 0; i < PQntuples(res); i++) {
        char h[GW_SHA256_HEX_LEN + 1];
        entry_hash(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), c, PQgetvalue(res, i, 2), scratch,
                   h);
        if (strcmp(h, PQgetvalue(res, i, 3)) == 0) {
            int rc = broken(v, seq, audit_id, "reordered",
                            "audit entry %s now holds the content sealed at seq %s (audit id %s)",
                            audit_id, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
            PQclear(res);
            return rc;
        }
    }
    PQclear(res);
    return broken(v, seq, audit_id, "content_changed",
                  "audit entry %s differs from what was sealed (recomputed %.12s..., sealed hash "
                  "differs)",
                  audit_id, computed);
}

struct key {
    unsigned long long txid;
    long long id;
};

static int walk(PGconn *conn, struct verdict *v, struct key *head)
{
    struct buf scratch = {0};
    char prev[GW_SHA256_HEX_LEN + 1] = ZERO_HASH;
    long long expected = 1;
    int rc = 0;

    /* After a prune the chain starts after the anchor (decision 0047). */
    PGresult *res =
        query(conn,
              "SELECT through_seq, hash, audit_txid::text, audit_id FROM gw_audit_anchor"
              " ORDER BY through_seq DESC LIMIT 1",
              0, NULL);
    if (res == NULL)
        return EXIT_ERROR;
    if (PQntuples(res) == 1) {
        v->anchor_seq = atoll(PQgetvalue(res, 0, 0));
        expected = v->anchor_seq + 1;
        snprintf(v->anchor_hash, sizeof(v->anchor_hash), "%s", PQgetvalue(res, 0, 1));
        snprintf(prev, sizeof(prev), "%s", v->anchor_hash);
        snprintf(v->head_seq, sizeof(v->head_seq), "%s", PQgetvalue(res, 0, 0));
        snprintf(v->head_hash, sizeof(v->head_hash), "%s", v->anchor_hash);
        head->txid = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
        head->id = atoll(PQgetvalue(res, 0, 3));
    }
    PQclear(res);
    res = query(conn,
                "DECLARE gw_chain NO SCROLL CURSOR FOR"
                " SELECT c.seq, c.audit_id, c.audit_txid::text, c.prev_hash, c.hash, " CONTENT_COLS
                " FROM gw_audit_chain c LEFT JOIN gw_audit_log a ON a.id = c.audit_id"
                " ORDER BY c.seq",
                0, NULL);
    if (res == NULL)
        return EXIT_ERROR;
    PQclear(res);
    for (;;) {
        res = query(conn, "FETCH FORWARD " FETCH_ROWS " FROM gw_chain", 0, NULL);
        if (res == NULL) {
            rc = EXIT_ERROR;
            break;
        }
        int n = PQntuples(res);
        for (int i = 0; i < n && rc == 0; i++) {
            const char *seq = PQgetvalue(res, i, 0);
            const char *audit_id = PQgetvalue(res, i, 1);
            struct key k = {strtoull(PQgetvalue(res, i, 2), NULL, 10), atoll(audit_id)};
            const char *prev_hash = PQgetvalue(res, i, 3);
            const char *hash = PQgetvalue(res, i, 4);
            char exp_s[24], computed[GW_SHA256_HEX_LEN + 1];
            struct content c;

            snprintf(exp_s, sizeof(exp_s), "%lld", expected);
            if (atoll(seq) != expected) {
                rc = broken(v, exp_s, NULL, "chain_entry_missing",
                            "gw_audit_chain has no seq %lld (the next one is %s, audit id %s)",
                            expected, seq, audit_id);
                break;
            }
            if (v->head_seq[0] != '\0' &&
                (k.txid < head->txid || (k.txid == head->txid && k.id <= head->id))) {
                rc = broken(v, seq, audit_id, "reordered",
                            "the chain is out of its (txid, id) order after audit id %lld",
                            head->id);
                break;
            }
            if (strcmp(prev_hash, prev) != 0) {
                rc = broken(v, seq, audit_id, "chain_link_broken",
                            "prev_hash %.12s... is not the hash of seq %lld (%.12s...)", prev_hash,
                            expected - 1, prev);
                break;
            }
            if (PQgetisnull(res, i, 5)) {
                rc = broken(v, seq, audit_id, "entry_missing",
                            "audit entry %s was sealed but is gone from gw_audit_log", audit_id);
                break;
            }
            content_from(res, i, 5, &c);
            entry_hash(seq, c.id, &c, prev_hash, &scratch, computed);
            if (strcmp(computed, hash) != 0) {
                rc = classify_mismatch(conn, v, seq, audit_id, &c, computed, &scratch);
                break;
            }
            snprintf(prev, sizeof(prev), "%s", hash);
            snprintf(v->head_seq, sizeof(v->head_seq), "%s", seq);
            snprintf(v->head_hash, sizeof(v->head_hash), "%s", hash);
            *head = k;
            v->verified++;
            expected++;
        }
        PQclear(res);
        if (rc != 0 || n == 0)
            break;
    }
    free(scratch.p);
    return rc;
}

/* Entries the sealer will never reach: not in the chain but ordered before
 * its head. The sealer takes every finished entry in (txid, id) order, so
 * such a row was inserted afterwards with a forged txid or id. */
static int check_unsealed(PGconn *conn, struct verdict *v, const struct key *head)
{
    char txid[24], id[24];
    snprintf(txid, sizeof(txid), "%llu", head->txid);
    snprintf(id, sizeof(id), "%lld", head->id);
    const char *params[] = {txid, id, v->head_seq[0] != '\0' ? "true" : "false"};
    PGresult *res = query(conn,
                          "SELECT count(*),"
                          " min(a.id) FILTER (WHERE $3::boolean AND"
                          " (a.txid, a.id) < ($1::xid8, $2::bigint))"
                          " FROM gw_audit_log a WHERE NOT EXISTS"
                          " (SELECT 1 FROM gw_audit_chain c WHERE c.audit_id = a.id)",
                          3, params);
    if (res == NULL)
        return EXIT_ERROR;
    v->unsealed = atoll(PQgetvalue(res, 0, 0));
    if (!PQgetisnull(res, 0, 1)) {
        char bad[24];
        snprintf(bad, sizeof(bad), "%s", PQgetvalue(res, 0, 1));
        PQclear(res);
        return broken(v, NULL, bad, "entry_outside_chain",
                      "audit entry %s is not sealed though it sorts before the chain head (seq "
                      "%s): it was inserted behind the sealer",
                      bad, v->head_seq);
    }
    PQclear(res);
    return 0;
}

static int add_key(const char *value, void *dest)
{
    struct gw_checkpoint_keys **keys = dest;
    struct gw_error err;
    char id[GW_CHECKPOINT_KEYID_LEN + 1];
    if (*keys == NULL && (*keys = gw_checkpoint_keys_create(&err)) == NULL)
        return EXIT_ERROR;
    if (gw_checkpoint_keys_add_pem(*keys, value, 0, id, &err) < 0) {
        fprintf(stderr, "gangway audit: --public-key %s\n", err.message);
        return EXIT_USAGE;
    }
    return GW_OPT_OK;
}

/* The chain's hash at each checkpoint's seq, in the verify snapshot (the
 * walk has just checked those hashes against the entries). */
static int fill_have(PGconn *conn, struct cp_set *cps, PGresult **keep)
{
    struct buf arr = {0};
    buf_adds(&arr, "{");
    for (size_t i = 0; i < cps->n; i++) {
        char n[24];
        snprintf(n, sizeof(n), "%s%lld", i ? "," : "", cps->v[i].seq);
        buf_adds(&arr, n);
    }
    buf_adds(&arr, "}");
    const char *params[] = {arr.p};
    PGresult *res = query(conn,
                          "SELECT seq, hash FROM gw_audit_chain WHERE seq = ANY($1::bigint[])"
                          " ORDER BY seq",
                          1, params);
    free(arr.p);
    if (res == NULL)
        return EXIT_ERROR;
    int r = 0, rows = PQntuples(res);
    for (size_t i = 0; i < cps->n; i++) {
        while (r < rows && atoll(PQgetvalue(res, r, 0)) < cps->v[i].seq)
            r++;
        cps->have[i] = r < rows && atoll(PQgetvalue(res, r, 0)) == cps->v[i].seq
                           ? PQgetvalue(res, r, 1)
                           : NULL;
    }
    *keep = res;
    return 0;
}

static int check_checkpoints(PGconn *conn, struct verdict *v, struct cp_set *cps,
                             const struct gw_checkpoint_keys *keys, size_t *pruned)
{
    struct cp_finding f;
    PGresult *keep = NULL;
    char seq[24];
    int rc;

    if (cp_set_verify_signatures(cps, keys, &f) < 0) {
        snprintf(seq, sizeof(seq), "%lld", f.seq);
        return broken(v, seq, NULL, f.kind, "%s", f.message);
    }
    rc = fill_have(conn, cps, &keep);
    if (rc != 0)
        return rc;
    if (cp_set_check(cps, v->anchor_seq, v->anchor_hash, atoll(v->head_seq), pruned, &f) < 0) {
        snprintf(seq, sizeof(seq), "%lld", f.seq);
        rc = broken(v, seq, NULL, f.kind, "%s", f.message);
    }
    PQclear(keep);
    return rc;
}

static int audit_verify(int argc, char **argv)
{
    const char *pg = NULL, *checkpoints = NULL, *archive = NULL, *kafka = NULL, *prefix = NULL,
               *props = NULL;
    char **extra = NULL;
    struct gw_checkpoint_keys *keys = NULL;
    struct verdict v = {0};
    struct key head = {0, 0};
    struct cp_set cps = {0};
    size_t pruned = 0;
    const struct gw_opt_spec specs[] = {
        {"pg", GW_OPT_STRING, &pg},
        {"json", GW_OPT_BOOL, &v.json},
        {"checkpoints", GW_OPT_STRING, &checkpoints},
        {"public-key", GW_OPT_CALL, &keys, .call = add_key},
        {"archive", GW_OPT_STRING, &archive},
        {"kafka", GW_OPT_STRING, &kafka, .env = "GW_KAFKA_BROKERS"},
        {"topic-prefix", GW_OPT_STRING, &prefix, .env = "GW_TOPIC_PREFIX", .def = ""},
        {"kafka-props", GW_OPT_STRING, &props, .env = "GW_KAFKA_PROPS"},
        {0},
    };
    PGconn *conn;
    int rc = gw_opt_parse(argc, argv, specs, usage_text);
    if (rc != GW_OPT_OK)
        goto out;
    if (optind < argc || (checkpoints != NULL && archive != NULL)) {
        fputs(usage_text, stderr);
        rc = EXIT_USAGE;
        goto out;
    }
    if ((checkpoints != NULL || archive != NULL) && keys == NULL) {
        fputs("gangway audit: --checkpoints and --archive need at least one --public-key\n",
              stderr);
        rc = EXIT_USAGE;
        goto out;
    }
    if (archive != NULL) {
        rc = audit_verify_archive(archive, keys, v.json);
        goto out;
    }
    /* Checkpoints first: read after the snapshot, a newer one could name a
     * head the snapshot does not have yet and look like a cut tail. */
    if (checkpoints != NULL) {
        struct cp_finding f;
        extra = gw_opt_split_props(props);
        rc = cp_set_read(&cps, checkpoints, kafka, (const char *const *)extra, prefix, &f);
        if (rc == -3) {
            rc = EXIT_ERROR;
            goto out;
        }
        if (rc < 0) {
            rc = broken(&v, NULL, NULL, f.kind, "%s", f.message);
            goto out;
        }
    }
    conn = gw_db_connect("audit", pg);
    if (conn == NULL) {
        rc = EXIT_ERROR;
        goto out;
    }
    PQsetClientEncoding(conn, "UTF8"); /* the hashes are over UTF-8 bytes */
    /* One snapshot for the walk and the counts. */
    PGresult *res = query(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    rc = res == NULL ? EXIT_ERROR : 0;
    PQclear(res);
    if (rc == 0)
        rc = walk(conn, &v, &head);
    if (rc == 0)
        rc = check_unsealed(conn, &v, &head);
    if (rc == 0 && checkpoints != NULL)
        rc = check_checkpoints(conn, &v, &cps, keys, &pruned);
    PQclear(PQexec(conn, "ROLLBACK"));
    PQfinish(conn);
    if (rc != 0)
        goto out;
    bool has_head = v.head_seq[0] != '\0';
    if (v.json) {
        printf("{\"ok\":true,\"verified\":%lld,\"unsealed\":%lld,\"head\":{\"seq\":%s,"
               "\"hash\":%s%s%s},\"anchor\":",
               v.verified, v.unsealed, has_head ? v.head_seq : "null", has_head ? "\"" : "",
               has_head ? v.head_hash : "null", has_head ? "\"" : "");
        if (v.anchor_seq > 0)
            printf("{\"seq\":%lld,\"hash\":\"%s\"}", v.anchor_seq, v.anchor_hash);
        else
            printf("null");
        if (checkpoints != NULL && cps.n > 0)
            printf(",\"checkpoints\":{\"verified\":%zu,\"pruned\":%zu,\"duplicates\":%zu,"
                   "\"latest\":{\"seq\":%lld,\"time\":\"%s\",\"key_id\":\"%s\"}}",
                   cps.n, pruned, cps.duplicates, cps.v[cps.n - 1].seq, cps.v[cps.n - 1].time,
                   cps.v[cps.n - 1].key_id);
        else if (checkpoints != NULL)
            printf(",\"checkpoints\":{\"verified\":0,\"pruned\":0,\"duplicates\":0,"
                   "\"latest\":null}");
        printf("}\n");
    } else {
        printf("audit chain intact: %lld entries verified, %lld not yet sealed; head seq %s "
               "hash %s\n",
               v.verified, v.unsealed, has_head ? v.head_seq : "-", has_head ? v.head_hash : "-");
        if (v.anchor_seq > 0)
            printf("entries through seq %lld were pruned; the chain starts after hash %s\n",
                   v.anchor_seq, v.anchor_hash);
        if (checkpoints != NULL && cps.n > 0)
            printf("%zu signed checkpoints agree (%zu before the pruned anchor, %zu duplicates "
                   "dropped); latest: seq %lld at %s, key %s\n",
                   cps.n, pruned, cps.duplicates, cps.v[cps.n - 1].seq, cps.v[cps.n - 1].time,
                   cps.v[cps.n - 1].key_id);
        else if (checkpoints != NULL)
            printf("no checkpoints found in %s\n", checkpoints);
    }
out:
    cp_set_free(&cps);
    gw_opt_free_list(extra);
    gw_checkpoint_keys_destroy(keys);
    return rc;
}

/* ------------------------------------------------------------ list */

static int check_run(const char *value, void *dest)
{
    if (!gw_uuid_valid(value)) {
        fprintf(stderr, "gangway audit: --run wants a run id\n");
        return EXIT_USAGE;
    }
    *(const char **)dest = value;
    return GW_OPT_OK;
}

static int check_limit(const char *value, void *dest)
{
    if (strspn(value, "0123456789") != strlen(value) || atoi(value) < 1 || strlen(value) > 6) {
        fprintf(stderr, "gangway audit: --limit wants a positive number\n");
        return EXIT_USAGE;
    }
    *(const char **)dest = value;
    return GW_OPT_OK;
}

static int audit_list(int argc, char **argv)
{
    const char *pg = NULL, *run = NULL, *actor = NULL, *action = NULL, *since = NULL, *until = NULL,
               *limit = "100";
    bool json = false;
    /* --pg and --json first: no other option shares their first letter, so
     * the order changes no abbreviation. */
    const struct gw_opt_spec specs[] = {
        {"pg", GW_OPT_STRING, &pg},
        {"json", GW_OPT_BOOL, &json},
        {"run", GW_OPT_CALL, &run, .call = check_run},
        {"actor", GW_OPT_STRING, &actor},
        {"action", GW_OPT_STRING, &action},
        {"since", GW_OPT_STRING, &since},
        {"until", GW_OPT_STRING, &until},
        {"limit", GW_OPT_CALL, &limit, .call = check_limit},
        {0},
    };
    PGconn *conn;
    int rc = open_db(argc, argv, specs, &pg, &conn);
    if (conn == NULL)
        return rc;
    const char *params[] = {run, actor, action, since, until, limit};
    PGresult *res =
        query(conn,
              "SELECT gw_audit_json(a, c)::text, coalesce(c.seq::text, '-'), a.id, gw_ts(a.at),"
              " a.actor, a.verb, a.object, coalesce(left(c.hash, 12), 'unsealed')"
              " FROM gw_audit_log a LEFT JOIN gw_audit_chain c ON c.audit_id = a.id"
              " WHERE gw_audit_match(a, $1, $2, $3, $4, $5)"
              " ORDER BY a.id DESC LIMIT $6::int",
              6, params);
    if (res == NULL) {
        PQfinish(conn);
        return EXIT_ERROR;
    }
    if (!json)
        printf("%-8s  %-8s  %-27s  %-20s  %-22s  %-44s  %s\n", "SEQ", "ID", "AT", "ACTOR", "VERB",
               "OBJECT", "HASH");
    for (int i = 0; i < PQntuples(res); i++) {
        if (json)
            puts(PQgetvalue(res, i, 0));
        else
            printf("%-8s  %-8s  %-27s  %-20s  %-22s  %-44s  %s\n", PQgetvalue(res, i, 1),
                   PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), PQgetvalue(res, i, 4),
                   PQgetvalue(res, i, 5), PQgetvalue(res, i, 6), PQgetvalue(res, i, 7));
    }
    PQclear(res);
    PQfinish(conn);
    return 0;
}

int gw_cmd_audit(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "verify") == 0)
        return audit_verify(argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return audit_list(argc - 1, argv + 1);
    if (strcmp(argv[1], "archive") == 0)
        return audit_archive(argc - 1, argv + 1);
    if (strcmp(argv[1], "prune") == 0)
        return audit_prune(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}
