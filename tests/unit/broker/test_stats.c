/*
 * Unit test of gw_broker_stats_wait: how long the broker waits before it
 * refreshes its gauges again. A quick refresh keeps the 5 s tick (its wait
 * is under it), a slow one waits a hundred times what it took, a very slow
 * one at most ten minutes, with no overflow on the way.
 */
#include <stdint.h>
#include <stdio.h>

#include "broker.h"
#include "../check.h"

int main(void)
{
    CHECK(gw_broker_stats_wait(0) == 0);
    CHECK(gw_broker_stats_wait(5) == 500);     /* a small database: under the 5 s tick */
    CHECK(gw_broker_stats_wait(120) == 12000); /* 1M queued runs: ~120 ms -> 12 s */
    CHECK(gw_broker_stats_wait(5999) == 599900);
    CHECK(gw_broker_stats_wait(6000) == 600000); /* capped at 10 min */
    CHECK(gw_broker_stats_wait(UINT64_MAX / 50) == 600000);
    CHECK(gw_broker_stats_wait(UINT64_MAX) == 600000);
    printf("broker stats: ok\n");
    return 0;
}
