/*
 * The async pool against a real PostgreSQL (suite integration): results and
 * callback counts under load, pipelining, error isolation, prepared
 * statements, connection loss, LISTEN/NOTIFY, a server turned read-only,
 * destroy with work pending.
 */
#include <string.h>
#include <uv.h>

#include "gw/log.h"
#include "gw/pg.h"
#include "testdb.h"

static char *conninfo;

static struct gw_pg_pool *make_pool(uv_loop_t *loop, int size, int depth)
{
    struct gw_pg_pool_options o = {
        .conninfo = conninfo, .size = size, .pipeline_depth = depth, .statement_timeout_ms = 20000};
    struct gw_error err;
    struct gw_pg_pool *pool = gw_pg_pool_create(loop, &o, &err);

    if (pool == NULL)
        fprintf(stderr, "pool: %s\n", err.message);
    CHECK(pool != NULL);
    return pool;
}

static int done_calls;
static void on_done(void *arg)
{
    (void)arg;
    done_calls++;
}

static void finish(uv_loop_t *loop, struct gw_pg_pool *pool)
{
    done_calls = 0;
    gw_pg_pool_destroy(pool, on_done, NULL);
    CHECK(uv_run(loop, UV_RUN_DEFAULT) == 0);
    CHECK(done_calls == 1);
}

/* Runs the loop until *flag or the deadline; fails on timeout. */
static void run_until(uv_loop_t *loop, const int *flag, int want, unsigned ms)
{
    uint64_t end = uv_now(loop) + ms;

    while (*flag < want) {
        CHECK(uv_now(loop) < end);
        uv_run(loop, UV_RUN_NOWAIT);
        uv_sleep(1);
        uv_update_time(loop);
    }
}

/* --- many concurrent queries --- */

#define MANY 5000
static int many_done, many_bad;
static int seen[MANY];

static void many_cb(void *arg, const PGresult *res, const struct gw_error *err)
{
    int i = (int)(intptr_t)arg;

    many_done++;
    seen[i]++;
    if (err != NULL || PQntuples(res) != 1 || atoi(PQgetvalue(res, 0, 0)) != i * 2)
        many_bad++;
}

static void test_many(uv_loop_t *loop)
{
    struct gw_pg_pool *pool = make_pool(loop, 2, 16);
    struct gw_pg_stats st;
    char buf[32];
    const char *params[1] = {buf};

    for (int i = 0; i < MANY; i++) {
        snprintf(buf, sizeof(buf), "%d", i);
        /* Half prepared, half unnamed: both paths under the same load. */
        CHECK(gw_pg_query(pool, (i & 1) ? "double" : NULL, "SELECT $1::int * 2", 1, params, many_cb,
                          (void *)(intptr_t)i) == 0);
    }
    run_until(loop, &many_done, MANY, 30000);
    CHECK(many_bad == 0);
    for (int i = 0; i < MANY; i++)
        CHECK(seen[i] == 1);
    gw_pg_pool_stats(pool, &st);
    CHECK(st.queries_ok == MANY);
    CHECK(st.queries_failed == 0);
    CHECK(st.queued == 0 && st.in_flight == 0);
    CHECK(st.connections_up == 2);
    /* Evidence of pipelining: more than one statement was in flight on a
     * connection at once (16 allowed, 5000 queued at start). */
    CHECK(st.max_pipeline > 1);
    CHECK(st.max_pipeline <= 16);
    finish(loop, pool);
}

/* --- a failing statement fails only itself --- */

static int iso_done;
static struct gw_error iso_err[7];
static int iso_ok[7];

static void iso_cb(void *arg, const PGresult *res, const struct gw_error *err)
{
    int i = (int)(intptr_t)arg;

    iso_done++;
    if (err != NULL)
        iso_err[i] = *err;
    else
        iso_ok[i] = PQresultStatus(res) == PGRES_TUPLES_OK;
}

static void test_isolation(uv_loop_t *loop)
{
    struct gw_pg_pool *pool = make_pool(loop, 1, 8);

    CHECK(gw_pg_query(pool, NULL, "SELECT 1", 0, NULL, iso_cb, (void *)0) == 0);
    CHECK(gw_pg_query(pool, NULL, "SELECT 1/0", 0, NULL, iso_cb, (void *)1) == 0);
    CHECK(gw_pg_query(pool, NULL, "SELECT 3", 0, NULL, iso_cb, (void *)2) == 0);
    CHECK(gw_pg_query(pool, NULL, "SELEKT nonsense", 0, NULL, iso_cb, (void *)3) == 0);
    /* Transient whatever the statement (conn.c, sqlstate_code): a server
     * read-only during a failover, a lock timeout, an I/O error. */
    static const char *const transient[] = {"25006", "55P03", "58030"};
    static const char *const raise[] = {
        "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '25006'; END $$",
        "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '55P03'; END $$",
        "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '58030'; END $$"};
    for (int i = 0; i < 3; i++) /* the text must outlive the call: static */
        CHECK(gw_pg_query(pool, NULL, raise[i], 0, NULL, iso_cb, (void *)(intptr_t)(4 + i)) == 0);
    run_until(loop, &iso_done, 7, 10000);
    CHECK(iso_ok[0] && iso_ok[2]);
    CHECK(strncmp(iso_err[1].message, "22012: ", 7) == 0);
    CHECK(iso_err[1].code == GW_EINVAL && !iso_err[1].retriable);
    CHECK(strcmp(iso_err[1].sqlstate, "22012") == 0);
    CHECK(strncmp(iso_err[3].message, "42601: ", 7) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(strncmp(iso_err[4 + i].message, transient[i], 5) == 0);
        CHECK(iso_err[4 + i].code == GW_EUNAVAIL && iso_err[4 + i].retriable);
    }
    finish(loop, pool);
}

/* --- prepared statements are prepared once per connection --- */

static int prep_done, prep_failed;
static char prep_count[16];

static void prep_cb(void *arg, const PGresult *res, const struct gw_error *err)
{
    prep_done++;
    if (err != NULL) {
        prep_failed++;
        return;
    }
    if (arg != NULL)
        snprintf(prep_count, sizeof(prep_count), "%s", PQgetvalue(res, 0, 0));
}

static void test_prepared(uv_loop_t *loop)
{
    struct gw_pg_pool *pool = make_pool(loop, 1, 4);
    const char *p[1] = {"7"};

    for (int i = 0; i < 50; i++)
        CHECK(gw_pg_query(pool, "sq", "SELECT $1::int * $1::int", 1, p, prep_cb, NULL) == 0);
    /* A broken named statement fails each use, and does not poison others. */
    for (int i = 0; i < 3; i++)
        CHECK(gw_pg_query(pool, "broken", "SELECT FROM WHERE", 0, NULL, prep_cb, NULL) == 0);
    CHECK(gw_pg_query(pool, "sq", "SELECT $1::int * $1::int", 1, p, prep_cb, NULL) == 0);
    CHECK(gw_pg_query(pool, NULL,
                      "SELECT count(*) FROM pg_prepared_statements WHERE name IN ('sq','broken')",
                      0, NULL, prep_cb, (void *)1) == 0);
    /* Same name, other text: refused at once, no callback. */
    CHECK(gw_pg_query(pool, "sq", "SELECT 2", 0, NULL, prep_cb, NULL) == GW_EINVAL);
    run_until(loop, &prep_done, 55, 10000);
    CHECK(prep_failed == 3);
    CHECK(strcmp(prep_count, "1") == 0);
    finish(loop, pool);
}

/* --- server kills the backends: in-flight fail retriable, pool recovers --- */

static int kill_done, kill_retriable, kill_after_ok;

static void kill_cb(void *arg, const PGresult *res, const struct gw_error *err)
{
    (void)res;
    kill_done++;
    if (err != NULL && err->retriable && err->code == GW_EUNAVAIL)
        kill_retriable++;
    else if (err != NULL)
        fprintf(stderr, "unexpected: %s\n", err->message);
}

static void after_cb(void *arg, const PGresult *res, const struct gw_error *err)
{
    if (err == NULL && strcmp(PQgetvalue(res, 0, 0), "42") == 0)
        kill_after_ok++;
    else
        kill_after_ok = -1000;
}

static void terminate_backends(void)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
             "application_name = 'gangway' AND datname = current_database()");
    free(testdb_exec(conninfo, sql));
}

static void test_kill(uv_loop_t *loop)
{
    struct gw_pg_pool *pool = make_pool(loop, 2, 4);
    struct gw_pg_stats st;

    for (int i = 0; i < 6; i++)
        CHECK(gw_pg_query(pool, NULL, "SELECT pg_sleep(30)", 0, NULL, kill_cb, NULL) == 0);
    /* Wait until all six are on the wire, then kill every pool backend. */
    for (;;) {
        uv_run(loop, UV_RUN_NOWAIT);
        gw_pg_pool_stats(pool, &st);
        if (st.in_flight == 6)
            break;
        uv_sleep(5);
    }
    uv_sleep(200);
    terminate_backends();
    run_until(loop, &kill_done, 6, 10000);
    CHECK(kill_retriable == 6);
    /* Queued meanwhile, answered once the pool has reconnected. */
    CHECK(gw_pg_query(pool, NULL, "SELECT 42", 0, NULL, after_cb, NULL) == 0);
    CHECK(gw_pg_query(pool, "p42", "SELECT 42", 0, NULL, after_cb, NULL) == 0);
    run_until(loop, &kill_after_ok, 2, 15000);
    /* Both connections come back (one may have answered alone so far). */
    for (int i = 0;; i++) {
        gw_pg_pool_stats(pool, &st);
        if (st.connections_up == 2)
            break;
        CHECK(i < 10000);
        uv_run(loop, UV_RUN_NOWAIT);
        uv_sleep(1);
    }
    CHECK(st.reconnects >= 2);
    CHECK(gw_pg_pool_ready(pool));
    finish(loop, pool);
}

/* --- LISTEN / NOTIFY, also across a listener reconnect --- */

static int notes;
static char note_payload[64];

static void notify_cb(void *arg, const char *channel, const char *payload)
{
    CHECK(strcmp(channel, "gw_test_chan") == 0);
    snprintf(note_payload, sizeof(note_payload), "%s", payload);
    notes++;
}

static int ignore_done;
static void ignore_cb(void *arg, const PGresult *res, const struct gw_error *err)
{
    ignore_done++;
}

/* NOTIFY until `want` notifications arrived: the listener subscribes in the
 * background, so the first few may go nowhere. */
static void notify_until(uv_loop_t *loop, struct gw_pg_pool *pool, int want, const char *payload)
{
    const char *p[1] = {payload};

    for (int tries = 0; notes < want; tries++) {
        CHECK(tries < 200);
        CHECK(gw_pg_query(pool, NULL, "SELECT pg_notify('gw_test_chan', $1)", 1, p, ignore_cb,
                          NULL) == 0);
        for (int i = 0; i < 50 && notes < want; i++) {
            uv_run(loop, UV_RUN_NOWAIT);
            uv_sleep(1);
        }
    }
}

static void test_listen(uv_loop_t *loop)
{
    struct gw_pg_pool *pool = make_pool(loop, 1, 4);
    struct gw_error err;

    CHECK(gw_pg_listen(pool, "gw_test_chan", notify_cb, NULL, &err) == 0);
    CHECK(gw_pg_listen(pool, "other", notify_cb, NULL, &err) == GW_ECONFLICT);
    notify_until(loop, pool, 1, "hello");
    CHECK(strcmp(note_payload, "hello") == 0);
    /* Kill the listener (and the pool connection): it must LISTEN again. */
    terminate_backends();
    notify_until(loop, pool, notes + 1, "again");
    CHECK(strcmp(note_payload, "again") == 0);
    finish(loop, pool);
}

/* --- destroy with queued and in-flight work --- */

static int closed_cbs, other_cbs;

static void closed_cb(void *arg, const PGresult *res, const struct gw_error *err)
{
    if (err != NULL && err->code == GW_ECLOSED)
        closed_cbs++;
    else
        other_cbs++;
    /* Queries from a callback during shutdown are refused without a call. */
    CHECK(gw_pg_query(arg, NULL, "SELECT 1", 0, NULL, closed_cb, arg) == GW_ECLOSED);
}

static struct gw_pg_pool *inner_pool;
static int inner_cbs;

static void destroy_inside_cb(void *arg, const PGresult *res, const struct gw_error *err)
{
    inner_cbs++;
    if (inner_cbs == 1) {
        CHECK(err == NULL);
        gw_pg_pool_destroy(inner_pool, on_done, NULL);
    } else {
        CHECK(err != NULL && err->code == GW_ECLOSED);
    }
}

static void test_destroy(uv_loop_t *loop)
{
    struct gw_pg_pool *pool = make_pool(loop, 1, 2);

    /* Before any connection is up: everything is still queued. */
    for (int i = 0; i < 100; i++)
        CHECK(gw_pg_query(pool, NULL, "SELECT pg_sleep(0.01)", 0, NULL, closed_cb, pool) == 0);
    finish(loop, pool);
    CHECK(closed_cbs == 100 && other_cbs == 0);

    /* From inside a result callback, with more in flight and queued. */
    inner_pool = make_pool(loop, 1, 2);
    for (int i = 0; i < 10; i++)
        CHECK(gw_pg_query(inner_pool, NULL, "SELECT 1", 0, NULL, destroy_inside_cb, NULL) == 0);
    done_calls = 0;
    CHECK(uv_run(loop, UV_RUN_DEFAULT) == 0);
    CHECK(inner_cbs == 10);
    CHECK(done_calls == 1);
}

/* --- a server turned read-only under the session: connect again --- */

static int ro_done, ro_failed_25006, ro_ok;
static char ro_setting[16];

static void ro_cb(void *arg, const PGresult *res, const struct gw_error *err)
{
    ro_done++;
    if (err != NULL) {
        if (strncmp(err->message, "25006: ", 7) == 0 && err->retriable &&
            strcmp(err->sqlstate, "25006") == 0)
            ro_failed_25006++;
        return;
    }
    ro_ok++;
    if (arg != NULL && PQntuples(res) == 1)
        snprintf(ro_setting, sizeof(ro_setting), "%s", PQgetvalue(res, 0, 0));
}

static void test_read_only(uv_loop_t *loop)
{
    struct gw_pg_pool *pool = make_pool(loop, 1, 4);
    struct gw_pg_stats st;

    /* What a primary demoted under an open session answers: the session is
     * made read-only (a standby's sessions are, for every write). */
    CHECK(gw_pg_query(pool, NULL, "SET default_transaction_read_only = on", 0, NULL, ro_cb, NULL) ==
          0);
    run_until(loop, &ro_done, 1, 10000);
    CHECK(ro_ok == 1);
    gw_pg_pool_stats(pool, &st);
    unsigned long long before = st.reconnects;
    /* Three writes pipelined on it: each fails alone, retriable. */
    for (int i = 0; i < 3; i++)
        CHECK(gw_pg_query(pool, NULL, "CREATE TABLE gw_ro_t (x int)", 0, NULL, ro_cb, NULL) == 0);
    run_until(loop, &ro_done, 4, 10000);
    CHECK(ro_failed_25006 == 3);
    /* The retry goes to a new session, which is writable: without the
     * reconnect it would fail with 25006 forever. */
    CHECK(gw_pg_query(pool, NULL, "CREATE TABLE gw_ro_t (x int)", 0, NULL, ro_cb, NULL) == 0);
    CHECK(gw_pg_query(pool, NULL, "SHOW default_transaction_read_only", 0, NULL, ro_cb,
                      (void *)1) == 0);
    run_until(loop, &ro_done, 6, 10000);
    CHECK(ro_failed_25006 == 3 && ro_ok == 3);
    CHECK(strcmp(ro_setting, "off") == 0);
    gw_pg_pool_stats(pool, &st);
    CHECK(st.reconnects == before + 1);
    CHECK(gw_pg_query(pool, NULL, "DROP TABLE gw_ro_t", 0, NULL, ro_cb, NULL) == 0);
    run_until(loop, &ro_done, 7, 10000);
    CHECK(ro_ok == 4);
    finish(loop, pool);
}

int main(void)
{
    uv_loop_t loop;

    gw_log_init("test-pg", GW_LOG_WARN);
    conninfo = testdb_create("pool");
    CHECK(uv_loop_init(&loop) == 0);
    test_many(&loop);
    test_isolation(&loop);
    test_prepared(&loop);
    test_kill(&loop);
    test_listen(&loop);
    test_read_only(&loop);
    test_destroy(&loop);
    CHECK(uv_loop_close(&loop) == 0);
    testdb_drop(conninfo);
    printf("pg pool: all checks passed\n");
    return 0;
}
