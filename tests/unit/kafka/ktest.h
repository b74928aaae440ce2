/* Small helpers shared by the kafka tests. */
#ifndef GW_TEST_KTEST_H
#define GW_TEST_KTEST_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "../check.h"

static void ktick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag is true or `ms` elapsed; returns *flag. */
static inline bool run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, int ms)
{
    uv_timer_t t;
    uint64_t deadline = uv_now(loop) + (uint64_t)ms;
    bool ok;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, ktick, 5, 5);
    while (!(ok = pred(arg)) && uv_now(loop) < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static inline void run_for(uv_loop_t *loop, int ms)
{
    uv_timer_t t;
    uint64_t deadline = uv_now(loop) + (uint64_t)ms;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, ktick, 5, 5);
    while (uv_now(loop) < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* Lets close callbacks run and checks every handle is gone. */
static inline void close_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(loop) == 0);
}

#endif
