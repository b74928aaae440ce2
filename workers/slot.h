/*
 * A worker's default identity: the lowest free slot of its consumer group on
 * this host, held by an flock for the life of the process.
 *
 * Why: a worker is a static member of its Kafka consumer group when its id
 * is stable across restarts (decision 0019): a restarted worker takes its
 * partitions back at once, without a rebalance. A rebalance waits for every
 * member that died to time out, so without stable ids repeated kills chain
 * rebalances and the whole pool stalls (issue 10). Ids from slots are stable
 * (a process that dies releases its lock, and the one that replaces it takes
 * the same slot) and never shared (the lock is exclusive; hosts differ by
 * name), which is exactly what static membership needs.
 */
#ifndef GW_WORKER_SLOT_H
#define GW_WORKER_SLOT_H

#include <stddef.h>

/* Takes the lowest free slot of `group` on this host and writes
 * "<hostname>-w<slot>" into id[cap]. Lock files live in
 * $XDG_RUNTIME_DIR/gangway-worker-slots, else /tmp/gangway-worker-slots-<uid>.
 * Returns the lock's descriptor (close-on-exec, so programs the worker
 * starts never hold it; close it to give the slot up), or -1 when no slot
 * could be taken (the caller then uses a dynamic identity). Blocking file
 * system calls: start-up only. */
int gw_worker_slot_take(const char *group, char *id, size_t cap);

#endif
