/*
 * Allocation helpers: the two shapes every module wrote by hand.
 */
#ifndef GW_MEM_H
#define GW_MEM_H

#include <stddef.h>

#include "gw/error.h"

/* calloc(n, size); when that fails, NULL with `err` set to GW_ENOMEM
 * "out of memory" (not retriable), so a create function can write
 * `if ((x = gw_calloc(1, sizeof(*x), err)) == NULL) return NULL;`. */
void *gw_calloc(size_t n, size_t size, struct gw_error *err);

/* Makes the buffer *buf of *cap bytes hold at least `need` bytes: nothing
 * when it already does, else a realloc to a capacity doubled from
 * max(*cap, first) until it fits. Returns 0, or -1 with *buf and *cap as
 * they were when out of memory. */
int gw_grow(char **buf, size_t *cap, size_t need, size_t first);

#endif
