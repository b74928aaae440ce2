/*
 * Unit test of gw/histo.h: an observation on a bound counts in that bound's
 * bucket (Prometheus' le is "less than or equal"), one just above it in the
 * next, one above every bound only in +Inf; negative and NaN durations count
 * as 0; the cumulative counts and the sum.
 */
#include <math.h>
#include <string.h>

#include "gw/histo.h"
#include "../check.h"

int main(void)
{
    struct gw_histo h;
    memset(&h, 0, sizeof(h));

    CHECK(GW_HISTO_BOUNDS == sizeof(gw_histo_bounds) / sizeof(gw_histo_bounds[0]));
    for (size_t i = 1; i < GW_HISTO_BOUNDS; i++)
        CHECK(gw_histo_bounds[i] > gw_histo_bounds[i - 1]);
    for (size_t i = 0; i < GW_HISTO_BOUNDS; i++)
        CHECK(strtod(gw_histo_bound_labels[i], NULL) == gw_histo_bounds[i]);

    gw_histo_observe(&h, 0.0005);  /* on the first bound */
    gw_histo_observe(&h, 0.00051); /* just above it */
    gw_histo_observe(&h, 0.003);   /* between 2.5 and 5 ms */
    gw_histo_observe(&h, 10);      /* on the last bound */
    gw_histo_observe(&h, 11);      /* above every bound */
    gw_histo_observe(&h, -1);      /* a clock step: counts as 0 */
    gw_histo_observe(&h, NAN);

    CHECK(h.count == 7);
    CHECK(h.bucket[0] == 3); /* 0.0005, -1, NaN */
    CHECK(h.bucket[1] == 1);
    CHECK(h.bucket[3] == 1);
    CHECK(h.bucket[GW_HISTO_BOUNDS - 1] == 1);
    CHECK(h.bucket[GW_HISTO_BOUNDS] == 1);
    CHECK(gw_histo_cumulative(&h, 0) == 3);
    CHECK(gw_histo_cumulative(&h, 1) == 4);
    CHECK(gw_histo_cumulative(&h, 2) == 4);
    CHECK(gw_histo_cumulative(&h, 3) == 5);
    CHECK(gw_histo_cumulative(&h, GW_HISTO_BOUNDS - 2) == 5);
    CHECK(gw_histo_cumulative(&h, GW_HISTO_BOUNDS - 1) == 6);
    CHECK(gw_histo_cumulative(&h, GW_HISTO_BOUNDS) == 7);
    CHECK(gw_histo_cumulative(&h, GW_HISTO_BOUNDS + 5) == 7); /* clamped to +Inf */
    CHECK(fabs(h.sum - (0.0005 + 0.00051 + 0.003 + 10 + 11)) < 1e-9);
    return 0;
}
