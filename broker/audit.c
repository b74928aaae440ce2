/*
 * Sealing rounds for the audit hash chain (audit.h). Stateless on purpose:
 * the only state is the chain itself, guarded in SQL, so a round needs no
 * handle of its own and the broker pointer is the callback's argument (the
 * broker outlives every pool callback: it is freed after the pool closes).
 */
#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/checkpoint.h"
#include "gw/crypto.h"
#include "gw/log.h"

/* Entries chained per round: one transaction of this many inserts stays
 * well under a second, so replicas trying the lock are not kept long. */
#define SEAL_BATCH 2000

static void sealed(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_broker *b = arg;
    if (err != NULL) {
        if (err->code != GW_EUNAVAIL && err->code != GW_ECLOSED)
            gw_log_warn("audit: sealing failed: %s", err->message);
        return;
    }
    int n = atoi(PQgetvalue(res, 0, 0));
    if (n > 0) /* the sealed entries' gangway.audit rows: publish them now */
        gw_relay_kick(b->relay);
    if (n >= SEAL_BATCH)
        gw_audit_seal_tick(b); /* a backlog: keep going rather than wait a tick */
}

void gw_audit_seal_tick(struct gw_broker *b)
{
    static const char *const params[] = {"2000"};
    _Static_assert(SEAL_BATCH == 2000, "params[0] spells SEAL_BATCH");
    if (b->closing || b->pg == NULL)
        return;
    if (gw_pg_query(b->pg, "audit_seal", "SELECT gw_audit_seal($1::int)", 1, params, sealed, b) < 0)
        gw_log_debug("audit: sealing round not queued (pool busy or closing)");
}

/* ------------------------------------------------------------ checkpoints */

/* A signing round may hold the lease this long before another replica
 * takes over (a crashed signer). */
#define CHECKPOINT_LEASE_S "30"

struct checkpoint_round {
    struct gw_broker *b;
    char *json; /* the published form, logged once stored */
};

int gw_audit_key_load(struct gw_broker *b, struct gw_error *err)
{
    char id[GW_CHECKPOINT_KEYID_LEN + 1];
    b->audit_key = gw_checkpoint_keys_create(err);
    if (b->audit_key == NULL)
        return GW_ENOMEM;
    int rc = gw_checkpoint_keys_add_pem(b->audit_key, b->opts.audit_signing_key, 1, id, err);
    if (rc < 0)
        return rc;
    gw_log_info("audit: signing checkpoints with key %s (every %d s or %d entries)", id,
                b->opts.audit_checkpoint_every_s, b->opts.audit_checkpoint_every_n);
    return 0;
}

static void checkpoint_stored(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct checkpoint_round *r = arg;
    r->b->audit_checkpoint_busy = false;
    if (err != NULL) {
        if (err->code != GW_EUNAVAIL && err->code != GW_ECLOSED)
            gw_log_warn("audit: storing a checkpoint failed: %s", err->message);
    } else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        /* The log copy (docs/audit.md): one line a shipper can pick up. */
        gw_log_info("audit checkpoint %s", r->json);
        gw_relay_kick(r->b->relay);
    }
    free(r->json);
    free(r);
}

static void checkpoint_due(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_broker *b = arg;
    struct gw_checkpoint cp = {0};
    struct gw_error e;
    char cph[GW_SHA256_HEX_LEN + 1], seq[24];

    if (err != NULL || PQntuples(res) != 1 || b->closing) {
        if (err != NULL && err->code != GW_EUNAVAIL && err->code != GW_ECLOSED)
            gw_log_warn("audit: checkpoint round failed: %s", err->message);
        b->audit_checkpoint_busy = false;
        return;
    }
    cp.seq = atoll(PQgetvalue(res, 0, 0));
    snprintf(cp.hash, sizeof(cp.hash), "%s", PQgetvalue(res, 0, 1));
    snprintf(cp.time, sizeof(cp.time), "%s", PQgetvalue(res, 0, 2));
    snprintf(cp.prev, sizeof(cp.prev), "%s", PQgetvalue(res, 0, 3));
    struct checkpoint_round *r = calloc(1, sizeof(*r));
    json_t *j = NULL;
    if (r == NULL || gw_checkpoint_sign(b->audit_key, &cp, &e) < 0 ||
        gw_checkpoint_hash(&cp, cph, &e) < 0 || (j = gw_checkpoint_to_json(&cp, cph)) == NULL ||
        (r->json = json_dumps(j, JSON_COMPACT)) == NULL) {
        gw_log_warn("audit: cannot sign checkpoint at seq %lld: %s", cp.seq,
                    r == NULL || j == NULL ? "out of memory" : e.message);
        json_decref(j);
        free(r);
        b->audit_checkpoint_busy = false;
        return; /* the lease runs out and a later round tries again */
    }
    json_decref(j);
    r->b = b;
    snprintf(seq, sizeof(seq), "%lld", cp.seq);
    const char *params[] = {
        seq,       cp.hash, cp.time, cp.prev,
        cp.key_id, cp.sig,  cph,     b->opts.audit_checkpoint_webhook ? "true" : "false"};
    if (gw_pg_query(
            b->pg, "audit_checkpoint_add",
            "SELECT gw_audit_checkpoint_add($1::bigint, $2, $3, $4, $5, $6, $7, $8::boolean)", 8,
            params, checkpoint_stored, r) < 0) {
        free(r->json);
        free(r);
        b->audit_checkpoint_busy = false;
    }
}

void gw_audit_checkpoint_tick(struct gw_broker *b)
{
    char every_s[16], every_n[16];
    if (b->audit_key == NULL || b->audit_checkpoint_busy || b->closing || b->pg == NULL)
        return;
    snprintf(every_s, sizeof(every_s), "%d", b->opts.audit_checkpoint_every_s);
    snprintf(every_n, sizeof(every_n), "%d", b->opts.audit_checkpoint_every_n);
    const char *params[] = {every_s, every_n, CHECKPOINT_LEASE_S};
    b->audit_checkpoint_busy = true;
    if (gw_pg_query(b->pg, "audit_checkpoint_due",
                    "SELECT seq, hash, time, prev FROM gw_audit_checkpoint_due($1::int, $2::int,"
                    " $3::int)",
                    3, params, checkpoint_due, b) < 0)
        b->audit_checkpoint_busy = false;
}
