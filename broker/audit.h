/*
 * Sealing the audit trail: chains finished audit entries into gw_audit_chain
 * (docs/decisions/0014-audit-hash-chain.md). The work is gw_audit_seal() in
 * SQL, single-writer through a transaction-scoped advisory try-lock, so every
 * broker replica may call it at once: the ones that lose the race return at
 * once and the request path never waits on it.
 *
 * Threading: loop thread only.
 */
#ifndef GW_BROKER_AUDIT_H
#define GW_BROKER_AUDIT_H

#include "broker.h"

/* Starts one sealing round (asynchronous, fire and forget); a round that
 * fills its batch starts the next one itself. Called by the reaper's timer.
 * Does nothing once the broker is closing. Failures are logged. */
void gw_audit_seal_tick(struct gw_broker *b);

#endif
