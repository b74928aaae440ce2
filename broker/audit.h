/*
 * The audit trail's background work (docs/decisions/0014-audit-hash-chain.md,
 * 0046-audit-checkpoints.md):
 *
 * - sealing: chains finished audit entries into gw_audit_chain. The work is
 *   gw_audit_seal() in SQL, single-writer through a transaction-scoped
 *   advisory try-lock, so every broker replica may call it at once: the ones
 *   that lose the race return at once and the request path never waits on
 *   it. Each sealed entry also leaves on gangway.audit through the outbox.
 * - checkpoints: with a signing key, signs the chain head every
 *   audit_checkpoint_every_s seconds or every audit_checkpoint_every_n
 *   entries (whichever first; none when the head did not move). One replica
 *   at a time through gw_audit_checkpoint_due's lease; the checkpoint is
 *   stored and queued for gangway.audit.checkpoints (and the webhook) in one
 *   transaction by gw_audit_checkpoint_add, and logged.
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

/* Loads b->opts.audit_signing_key into b->audit_key (blocking: at start-up).
 * GW_EIO / GW_EINVAL with err naming the file and what is wrong with it. */
int gw_audit_key_load(struct gw_broker *b, struct gw_error *err);

/* Starts one checkpoint round when a key is loaded and none is in flight
 * (asynchronous; failures are logged). Called by the reaper's timer. */
void gw_audit_checkpoint_tick(struct gw_broker *b);

#endif
