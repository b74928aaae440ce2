/*
 * The pool without a server (suite unit): option checks, a server that is
 * not there (queries wait, pool not ready, reconnect attempts), shutdown.
 */
#include <string.h>
#include <uv.h>

#include "gw/log.h"
#include "gw/pg.h"
#include "testdb.h"

static void stop_cb(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, NULL);
}

static int cbs, closed, unavailable;

static void cb(void *arg, const PGresult *res, const struct gw_error *err)
{
    cbs++;
    if (res == NULL && err != NULL && err->code == GW_ECLOSED)
        closed++;
    if (res == NULL && err != NULL && err->code == GW_EUNAVAIL && err->retriable &&
        strstr(err->message, "not sent") != NULL)
        unavailable++;
}

static void run_for(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, stop_cb, ms, 0);
    while (uv_is_active((uv_handle_t *)&t))
        uv_run(loop, UV_RUN_ONCE);
    uv_run(loop, UV_RUN_NOWAIT); /* the timer's close callback */
}

static int done_calls;
static void on_done(void *arg)
{
    *(int *)arg += 1;
}

int main(void)
{
    uv_loop_t loop;
    uv_timer_t t;
    struct gw_error err;
    struct gw_pg_stats st;
    struct gw_pg_pool_options o = {.conninfo = "host=127.0.0.1 port=1 dbname=x connect_timeout=1",
                                   .size = 2,
                                   .pipeline_depth = 4,
                                   .max_queue = 10};
    struct gw_pg_pool_options bad = o;
    struct gw_pg_pool *pool;

    gw_log_init("test-pg", GW_LOG_ERROR);
    CHECK(uv_loop_init(&loop) == 0);

    bad.size = 0;
    CHECK(gw_pg_pool_create(&loop, &bad, &err) == NULL && err.code == GW_EINVAL);
    bad = o;
    bad.conninfo = "host=127.0.0.1 nonsense_key=1";
    CHECK(gw_pg_pool_create(&loop, &bad, &err) == NULL && err.code == GW_EINVAL);
    CHECK(strstr(err.message, "nonsense_key") != NULL);
    gw_pg_pool_destroy(NULL, NULL, NULL);

    pool = gw_pg_pool_create(&loop, &o, &err);
    CHECK(pool != NULL);
    CHECK(!gw_pg_pool_ready(pool));
    CHECK(gw_pg_query(pool, NULL, NULL, 0, NULL, cb, NULL) == GW_EINVAL);
    CHECK(gw_pg_query(pool, NULL, "SELECT 1", 1, NULL, cb, NULL) == GW_EINVAL);
    CHECK(gw_pg_query(pool, NULL, "SELECT 1", 0, NULL, NULL, NULL) == GW_EINVAL);
    for (int i = 0; i < 10; i++)
        CHECK(gw_pg_query(pool, "s", "SELECT 1", 0, NULL, cb, NULL) == 0);
    CHECK(gw_pg_query(pool, NULL, "SELECT 1", 0, NULL, cb, NULL) == GW_ELIMIT);
    CHECK(gw_pg_listen(pool, "chan", (gw_pg_notify_cb)cb, NULL, &err) == 0);

    /* Let a few connect attempts fail: nothing is answered meanwhile. */
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, stop_cb, 400, 0);
    while (uv_is_active((uv_handle_t *)&t))
        uv_run(&loop, UV_RUN_ONCE);
    CHECK(cbs == 0);
    CHECK(!gw_pg_pool_ready(pool));
    gw_pg_pool_stats(pool, &st);
    CHECK(st.queued == 10 && st.in_flight == 0 && st.connections_up == 0);

    gw_pg_pool_destroy(pool, on_done, &done_calls);
    CHECK(cbs == 10 && closed == 10);
    CHECK(gw_pg_query(pool, NULL, "SELECT 1", 0, NULL, cb, NULL) == GW_ECLOSED);
    CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    CHECK(done_calls == 1);

    /* With a queue timeout, statements that find no connection fail as
     * unavailable (retriable, never sent) instead of waiting for the outage
     * to end. */
    struct gw_pg_pool_options qt = o;
    qt.queue_timeout_ms = 300;
    cbs = closed = 0;
    bad = qt;
    bad.queue_timeout_ms = -1;
    CHECK(gw_pg_pool_create(&loop, &bad, &err) == NULL && err.code == GW_EINVAL);
    pool = gw_pg_pool_create(&loop, &qt, &err);
    CHECK(pool != NULL);
    for (int i = 0; i < 3; i++)
        CHECK(gw_pg_query(pool, NULL, "SELECT 1", 0, NULL, cb, NULL) == 0);
    run_for(&loop, 150);
    CHECK(cbs == 0);
    run_for(&loop, 550);
    CHECK(cbs == 3 && unavailable == 3);
    gw_pg_pool_stats(pool, &st);
    CHECK(st.expired == 3 && st.queued == 0 && st.queries_failed == 3);
    done_calls = 0;
    gw_pg_pool_destroy(pool, on_done, &done_calls);
    CHECK(cbs == 3 && closed == 0);
    CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    CHECK(done_calls == 1);
    CHECK(uv_loop_close(&loop) == 0);
    printf("pg pool unit: all checks passed\n");
    return 0;
}
