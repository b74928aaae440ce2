/*
 * Per-key mutual exclusion for the runs of one worker: runs with the same
 * Kafka key (the resource they act on) never execute concurrently, and wait
 * in arrival order, so create -> update -> teardown of one resource stay
 * ordered. Loop thread only; no I/O.
 */
#ifndef GW_WORKERS_KEYGATE_H
#define GW_WORKERS_KEYGATE_H

#include <stdbool.h>

struct gw_keygate_waiter {
    struct gw_keygate_waiter *next;
    void *data; /* the caller's */
};

struct gw_keygate {
    struct keygate_entry *entries;
};

void gw_keygate_init(struct gw_keygate *g);
/* Frees the entries; waiters still queued are forgotten (not freed). */
void gw_keygate_finish(struct gw_keygate *g);

/* Returns 1 when `key` was free (the caller now holds it), 0 when `w` was
 * queued behind the holder, < 0 (GW_ENOMEM) on allocation failure. `key` is
 * copied. `w` is borrowed until it is returned by release or cancelled. */
int gw_keygate_acquire(struct gw_keygate *g, const char *key, struct gw_keygate_waiter *w);

/* The holder of `key` is done. Returns the next waiter, which now holds the
 * key, or NULL when nobody waits (the key is free). */
struct gw_keygate_waiter *gw_keygate_release(struct gw_keygate *g, const char *key);

/* Removes a queued waiter (e.g. at shutdown). Returns true when found. */
bool gw_keygate_cancel(struct gw_keygate *g, const char *key, struct gw_keygate_waiter *w);

/* Number of keys currently held (for tests and metrics). */
int gw_keygate_held(const struct gw_keygate *g);

#endif
