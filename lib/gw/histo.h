/*
 * A latency histogram in Prometheus' shape: fixed upper bounds in seconds,
 * a count per bucket, the number of observations and their sum. Rendered
 * as cumulative `_bucket{le="..."}` lines by whoever serves /metrics.
 *
 * Written here rather than taken from a library: Debian packages no C
 * Prometheus client that fits a libuv process (libprom, prometheus-client-c,
 * is not packaged), and an observation is an array walk and two additions.
 * Not thread-safe: each histogram belongs to one event loop.
 */
#ifndef GW_HISTO_H
#define GW_HISTO_H

#include <stddef.h>
#include <stdint.h>

/* The bounds, 0.5 ms to 10 s: the dispatch path's hops are milliseconds,
 * a slow call seconds; 7.5 ms splits the range below the 10 ms that issue
 * 15 asks of accept->start. */
#define GW_HISTO_BOUNDS 15
extern const double gw_histo_bounds[GW_HISTO_BOUNDS];
/* The bounds as Prometheus prints them in le="...". */
extern const char *const gw_histo_bound_labels[GW_HISTO_BOUNDS];

struct gw_histo {
    uint64_t bucket[GW_HISTO_BOUNDS + 1]; /* the last: above every bound (+Inf only) */
    uint64_t count;
    double sum; /* seconds */
};

/* Records one observation of `seconds` (negative counts as 0). */
void gw_histo_observe(struct gw_histo *h, double seconds);

/* The cumulative count of bucket i (observations <= gw_histo_bounds[i]);
 * i == GW_HISTO_BOUNDS gives the count (le="+Inf"). */
uint64_t gw_histo_cumulative(const struct gw_histo *h, size_t i);

#endif
