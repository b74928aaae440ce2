/*
 * Internals of the asynchronous pool (lib/gw/pg.h), shared by pool.c (queue,
 * dispatch, public API) and conn.c (one libpq connection's state machine).
 * Not installed, not for other modules.
 */
#ifndef GW_PG_POOL_IMPL_H
#define GW_PG_POOL_IMPL_H

#include <stdbool.h>
#include <libpq-fe.h>
#include <uv.h>

#include "gw/pg.h"

/* One statement waiting in the pool queue or in flight on a connection. The
 * parameter strings live in the same allocation, after the struct. */
struct gw__pg_query {
    struct gw__pg_query *next;
    const char *sql;
    char *owned_sql; /* internal statements (LISTEN) own their text */
    int stmt;        /* index in pool->stmts, or -1 for an unnamed statement */
    int nparams;
    const char **params;
    gw_pg_cb cb; /* NULL for internal statements whose result nobody wants */
    void *arg;
    uint64_t queued_at; /* uv_now() when queued, for the queue timeout */
    /* While in flight: how many commands (prepare, execute) still end with a
     * NULL from PQgetResult before the pipeline sync result. */
    int cmds_left;
    bool sent_prepare;
    PGresult *res;  /* the result that decides the outcome, kept until sync */
    bool res_error; /* `res` is an error that later results must not replace */
};

struct gw__pg_qlist {
    struct gw__pg_query *head, *tail;
    unsigned long n;
};

void gw__pg_qlist_push(struct gw__pg_qlist *l, struct gw__pg_query *q);
struct gw__pg_query *gw__pg_qlist_pop(struct gw__pg_qlist *l);

/* One connection's life. gw__pg_conn_set_state() is the only place that moves it. */
enum gw__pg_conn_state {
    CONN_CONNECTING, /* PQconnectPoll in progress */
    CONN_IDLE,       /* up, nothing in flight */
    CONN_BUSY,       /* up, 1..pipeline_depth statements in flight */
    CONN_RESETTING,  /* lost or failed; waiting for the backoff timer */
    CONN_CLOSED,     /* pool destroyed; handles closing */
};

struct gw__pg_conn {
    struct gw_pg_pool *pool;
    int index; /* position in pool->conns, -1 for the listener */
    enum gw__pg_conn_state state;
    PGconn *pg;
    uv_poll_t *poll; /* heap: libpq may swap sockets while connecting */
    int poll_fd;
    int poll_events;
    bool want_write;              /* PQflush left output behind */
    bool dirty;                   /* sent since the last flush */
    uv_timer_t timer;             /* connect timeout and reconnect backoff */
    unsigned backoff_ms;          /* next reconnect delay */
    struct gw__pg_qlist inflight; /* sent, waiting for the pipeline sync result */
    bool *prepared;               /* prepared[stmt] on this session */
    int prepared_cap;
    bool ever_up;
    /* The server answered 25006 (read-only): no new statements go here, and
     * once the ones in flight are answered the connection is made again, so
     * a DSN naming several hosts finds the writable one (conn.c). */
    bool read_only;
    unsigned ro_resets;   /* made again for it, in a row (less than RO_QUIET_MS apart) */
    uint64_t ro_reset_ms; /* uv_now of the last of them */
    /* Listener only. */
    char *channel;
    gw_pg_notify_cb notify_cb;
    void *notify_arg;
};

struct gw__pg_stmt {
    char *name;
    const char *sql;
};

struct gw_pg_pool {
    uv_loop_t *loop;
    const char **keywords; /* parsed conninfo, NULL-terminated, owned */
    const char **values;
    int size;
    int depth;
    unsigned long max_queue;
    int queue_timeout_ms; /* 0 = queued statements wait for a connection forever */
    uv_timer_t expire;    /* fails statements queued longer than that */
    struct gw__pg_conn *conns;
    struct gw__pg_conn *listener;
    struct gw__pg_qlist queue;
    uv_prepare_t kick; /* dispatches and flushes once per loop iteration */
    struct gw__pg_stmt *stmts;
    int nstmts, stmts_cap;
    int handles_open;
    int busy; /* depth of pool frames on the stack; destroy waits for 0 */
    bool destroying;
    bool torn_down;
    void (*done)(void *arg);
    void *done_arg;
    struct gw_pg_stats stats;
};

/* conn.c */
void gw__pg_conn_init(struct gw__pg_conn *c, struct gw_pg_pool *pool, int index);
void gw__pg_conn_set_state(struct gw__pg_conn *c, enum gw__pg_conn_state to);
int gw__pg_conn_send(struct gw__pg_conn *c, struct gw__pg_query *q);
void gw__pg_conn_flush(struct gw__pg_conn *c);
bool gw__pg_conn_up(const struct gw__pg_conn *c);

/* pool.c */
void gw__pg_pool_kick(struct gw_pg_pool *pool);
void gw__pg_pool_complete(struct gw_pg_pool *pool, struct gw__pg_query *q, const PGresult *res,
                          const struct gw_error *err);
void gw__pg_pool_handle_closed(struct gw_pg_pool *pool);
void gw__pg_pool_enter(struct gw_pg_pool *pool);
void gw__pg_pool_leave(struct gw_pg_pool *pool);

#endif
