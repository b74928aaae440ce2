/*
 * Unit test of gw_broker_stats_next: when the gauges' refresh may run again.
 * A quick refresh keeps the 5 s tick (its wait is under it), a slow one waits
 * a hundred times what it took, a very slow one at most ten minutes, and a
 * clock that did not move (or an answer "before" its send) adds no wait.
 */
#include <stdint.h>
#include <stdio.h>

#include "broker.h"
#include "../check.h"

int main(void)
{
    CHECK(gw_broker_stats_next(1000, 1005) == 1500); /* 5 ms: 0.5 s, under the tick */
    CHECK(gw_broker_stats_next(1000, 1000) == 1000); /* no time at all */
    CHECK(gw_broker_stats_next(1000, 900) == 1000);  /* a clock read out of order */
    CHECK(gw_broker_stats_next(0, 120) == 12000);    /* 1M queued runs: ~120 ms -> 12 s */
    CHECK(gw_broker_stats_next(5000, 5000 + 6000) == 5000 + 600000); /* capped at 10 min */
    CHECK(gw_broker_stats_next(0, UINT64_MAX / 2) == 600000);        /* no overflow past the cap */
    CHECK(gw_broker_stats_next(0, UINT64_MAX / 50) == 600000);
    CHECK(gw_broker_stats_next(0, 5999) == 599900);
    printf("broker stats: ok\n");
    return 0;
}
