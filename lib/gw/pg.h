/*
 * Asynchronous PostgreSQL access on a libuv loop.
 *
 * A pool of libpq connections in non-blocking, pipeline mode, each watched by
 * a uv_poll_t. Queries are queued; each connection keeps up to `pipeline_depth`
 * queries in flight. Every query is a single statement sent with the extended
 * protocol (PQsendQueryParams / PQsendQueryPrepared), so a query is atomic on
 * its own: multi-step transactions live in SQL functions (see sql/).
 *
 * Threading: every function must be called on the loop thread, and every
 * callback runs on the loop thread.
 *
 * Callback rule (libuv's): if gw_pg_query() returns 0 the callback is called
 * exactly once, with either a result or an error; if it returns < 0 the
 * callback is never called.
 */
#ifndef GW_PG_H
#define GW_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <uv.h>

#include "gw/error.h"

struct gw_pg_pool;

struct gw_pg_pool_options {
    const char *conninfo;     /* libpq connection string or URI (copied) */
    int size;                 /* number of connections, >= 1 */
    int pipeline_depth;       /* queries in flight per connection, >= 1 */
    int statement_timeout_ms; /* sent as SET statement_timeout; 0 = none */
    int max_queue;            /* queued (unsent) queries before GW_ELIMIT; 0 = 100000 */
    int queue_timeout_ms;     /* a statement not sent within this (no connection up, or
                                 all busy) fails with GW_EUNAVAIL, retriable, and was
                                 never sent; 0 = wait as long as it takes */
};

/* `res` is owned by the pool and valid only during the callback. On success
 * `err` is NULL and `res` has status PGRES_TUPLES_OK or PGRES_COMMAND_OK. On
 * failure `res` is NULL and `err` says why; err->retriable is true when the
 * connection was lost or the server is unreachable (the statement may or may
 * not have run), false for SQL errors. For SQL errors err->message starts
 * with the SQLSTATE, e.g. "23505: duplicate key ...", followed by the
 * server's detail in parentheses when there is one.
 *
 * err->code for SQL errors, by SQLSTATE: 23xxx -> GW_ECONFLICT; 40001, 40P01
 * -> GW_ECONFLICT (retriable); 57014 (statement_timeout) -> GW_ETIMEDOUT;
 * P0002, 02xxx -> GW_ENOTFOUND; 22xxx, 42xxx -> GW_EINVAL; 08xxx, 53xxx,
 * 57P0x (server shutting down, backend terminated) -> GW_EUNAVAIL
 * (retriable); anything else -> GW_EIO. GW_ECLOSED: the pool was destroyed
 * first. */
typedef void (*gw_pg_cb)(void *arg, const PGresult *res, const struct gw_error *err);

/* Notification from LISTEN. `payload` valid only during the callback. */
typedef void (*gw_pg_notify_cb)(void *arg, const char *channel, const char *payload);

/* Creates the pool and starts connecting in the background; queries sent
 * before a connection is up wait in the queue. Returns NULL with `err` set on
 * bad options or an unparsable conninfo. Lost connections are re-established
 * with backoff (100 ms doubling to 5 s); a connect attempt times out after
 * 10 s. Host names are resolved by libpq synchronously at each connect
 * attempt: prefer addresses or sockets where that matters.
 * Sizing: throughput of durable writes grows with `size` (commits of one
 * connection are flushed one after another); 8 connections x depth 16
 * gives > 20,000 single-row inserts/s on 2 cores. */
struct gw_pg_pool *gw_pg_pool_create(uv_loop_t *loop, const struct gw_pg_pool_options *opts,
                                     struct gw_error *err);

/* Closes every connection; queued and in-flight queries get their callback
 * with a GW_ECLOSED error. `done` (may be NULL) runs after the last handle
 * is closed and the pool is freed. Accepts NULL. May be called from inside
 * a pool callback: the teardown then happens when that callback returns. */
void gw_pg_pool_destroy(struct gw_pg_pool *pool, void (*done)(void *arg), void *arg);

/* Queues one statement. `params` (text format, NULL = SQL NULL) are copied.
 * `sql` must stay valid until the callback (use string literals). When
 * `stmt_name` is non-NULL the statement is prepared once per connection
 * under that name and executed with PQsendQueryPrepared afterwards; the same
 * name must always come with the same text. Statements are sent in queue
 * order to the least-loaded connection; statements on different
 * connections may complete in any order.
 * Returns 0, or (callback never called) GW_EINVAL (bad arguments, a name
 * reused with another text, more than 65535 params), GW_ECLOSED (pool being
 * destroyed), GW_ELIMIT (queue full), GW_ENOMEM. */
int gw_pg_query(struct gw_pg_pool *pool, const char *stmt_name, const char *sql, int nparams,
                const char *const *params, gw_pg_cb cb, void *arg);

/* Opens one extra dedicated connection that LISTENs on `channel` and calls
 * `cb` for each notification (re-LISTENs after reconnects). One per pool:
 * a second call fails with GW_ECONFLICT. Notifications sent while the
 * listener is reconnecting are lost: use them as a wake-up, and still poll
 * now and then. Returns 0 or a negative GW_E* with `err` set; connecting
 * happens in the background. */
int gw_pg_listen(struct gw_pg_pool *pool, const char *channel, gw_pg_notify_cb cb, void *arg,
                 struct gw_error *err);

/* True when at least one connection is established and healthy. */
bool gw_pg_pool_ready(const struct gw_pg_pool *pool);

/* Counters for /metrics. */
struct gw_pg_stats {
    unsigned long long queries_ok;
    unsigned long long queries_failed;
    unsigned long queued;
    unsigned long in_flight;
    int connections_up;
    unsigned long max_pipeline;    /* most statements seen in flight on one connection */
    unsigned long long reconnects; /* connections re-established after a loss */
    unsigned long long expired;    /* statements failed by the queue timeout */
};
void gw_pg_pool_stats(const struct gw_pg_pool *pool, struct gw_pg_stats *out);

/* --- synchronous helpers for start-up and CLI commands (never on a loop) --- */

/* Applies sql/NNNN_*.sql files from `dir` in order under an advisory lock,
 * recording each in gw_schema_migrations(version, name, sha256, applied_at).
 * Already-applied files are skipped (a changed checksum is an error).
 * Then, under the same lock, re-applies every `dir`/functions/NAME.sql (one
 * function's CREATE OR REPLACE, its overloads and triggers) in dependency
 * order, all in one transaction, recording each in
 * gw_schema_functions(name, sha256, applied_at); a missing functions/ is
 * none (docs/decisions/0021-sql-functions-repeatable.md).
 * Prints nothing; `applied` (may be NULL) receives the number of numbered
 * files applied.
 *
 * Each numbered file runs in its own transaction together with its
 * bookkeeping row, through the simple query protocol (several statements
 * and $$ bodies are fine; BEGIN/COMMIT and CREATE INDEX CONCURRENTLY inside
 * a file are not). Files not ending in .sql are ignored; a .sql file not
 * named NNNN_[a-z0-9_]+.sql (functions: [a-z0-9_]+.sql), two files with one
 * version, a cycle of calls between function files or a '-- depends:' line
 * naming no file (GW_EINVAL) is refused before anything runs, as are an
 * applied file whose sha256 changed and a database migrated by another
 * numbering (a recorded version under another file name: GW_ECONFLICT).
 * Errors name the file. GW_EUNAVAIL (retriable): cannot connect. Concurrent
 * callers (other processes, other threads) wait for the
 * lock and then find the work done. Blocking: never call on a loop thread. */
int gw_pg_migrate(const char *conninfo, const char *dir, int *applied, struct gw_error *err);

#endif
