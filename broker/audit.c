/*
 * Sealing rounds for the audit hash chain (audit.h). Stateless on purpose:
 * the only state is the chain itself, guarded in SQL, so a round needs no
 * handle of its own and the broker pointer is the callback's argument (the
 * broker outlives every pool callback: it is freed after the pool closes).
 */
#include "audit.h"

#include <stdlib.h>

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
