/*
 * The asynchronous pool (lib/gw/pg.h): options, the queue of statements,
 * dispatch to the least-loaded connection, shutdown. Connections themselves
 * live in conn.c.
 */
#include "pool_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/log.h"

#define DEFAULT_MAX_QUEUE 100000
#define MAX_PARAMS        65535

void gw__pg_qlist_push(struct gw__pg_qlist *l, struct gw__pg_query *q)
{
    q->next = NULL;
    if (l->tail != NULL)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    l->n++;
}

struct gw__pg_query *gw__pg_qlist_pop(struct gw__pg_qlist *l)
{
    struct gw__pg_query *q = l->head;

    if (q == NULL)
        return NULL;
    l->head = q->next;
    if (l->head == NULL)
        l->tail = NULL;
    l->n--;
    q->next = NULL;
    return q;
}

static void free_params(struct gw_pg_pool *pool)
{
    for (int i = 0; pool->keywords != NULL && pool->keywords[i] != NULL; i++) {
        free((char *)pool->keywords[i]);
        free((char *)pool->values[i]);
    }
    free(pool->keywords);
    free(pool->values);
}

/* Turns the conninfo into keyword/value arrays once (so a bad string fails
 * at create time) and adds what every connection needs. */
static int build_params(struct gw_pg_pool *pool, const struct gw_pg_pool_options *opts,
                        struct gw_error *err)
{
    char *errmsg = NULL;
    PQconninfoOption *info = PQconninfoParse(opts->conninfo, &errmsg);
    int n = 0, k = 0;
    bool has_options = false, has_app = false;

    if (info == NULL) {
        gw_error_set(err, GW_EINVAL, false, "bad PostgreSQL conninfo: %s",
                     errmsg ? errmsg : "out of memory");
        PQfreemem(errmsg);
        return GW_EINVAL;
    }
    for (PQconninfoOption *o = info; o->keyword != NULL; o++)
        n++;
    pool->keywords = calloc((size_t)n + 3, sizeof(char *));
    pool->values = calloc((size_t)n + 3, sizeof(char *));
    if (pool->keywords == NULL || pool->values == NULL)
        goto fail_nomem;
    for (PQconninfoOption *o = info; o->keyword != NULL; o++) {
        char timeout[64] = "";
        const char *val = o->val;
        size_t len;

        if (strcmp(o->keyword, "options") == 0) {
            has_options = true;
            if (opts->statement_timeout_ms > 0)
                snprintf(timeout, sizeof(timeout), " -c statement_timeout=%d",
                         opts->statement_timeout_ms);
        }
        if (strcmp(o->keyword, "fallback_application_name") == 0 && val != NULL)
            has_app = true;
        /* A peer that vanished without a reset is noticed in about a minute
         * instead of the kernel's two hours, unless the caller says so. */
        if (val == NULL && strcmp(o->keyword, "keepalives_idle") == 0)
            val = "30";
        if (val == NULL && strcmp(o->keyword, "keepalives_interval") == 0)
            val = "10";
        if (val == NULL && strcmp(o->keyword, "keepalives_count") == 0)
            val = "3";
        if (val == NULL && timeout[0] == '\0')
            continue;
        len = (val ? strlen(val) : 0) + strlen(timeout) + 1;
        pool->keywords[k] = strdup(o->keyword);
        pool->values[k] = malloc(len);
        if (pool->keywords[k] == NULL || pool->values[k] == NULL) {
            k++;
            goto fail_nomem;
        }
        snprintf((char *)pool->values[k], len, "%s%s", val ? val : "", timeout);
        k++;
    }
    if (!has_options && opts->statement_timeout_ms > 0) {
        char timeout[64];

        snprintf(timeout, sizeof(timeout), "-c statement_timeout=%d", opts->statement_timeout_ms);
        pool->keywords[k] = strdup("options");
        pool->values[k] = strdup(timeout);
        if (pool->keywords[k++] == NULL || pool->values[k - 1] == NULL)
            goto fail_nomem;
    }
    if (!has_app) {
        pool->keywords[k] = strdup("fallback_application_name");
        pool->values[k] = strdup("gangway");
        if (pool->keywords[k++] == NULL || pool->values[k - 1] == NULL)
            goto fail_nomem;
    }
    PQconninfoFree(info);
    return 0;

fail_nomem:
    PQconninfoFree(info);
    return gw_error_set(err, GW_ENOMEM, false, "out of memory");
}

static void kick_cb(uv_prepare_t *h);
static void expire_cb(uv_timer_t *t);

struct gw_pg_pool *gw_pg_pool_create(uv_loop_t *loop, const struct gw_pg_pool_options *opts,
                                     struct gw_error *err)
{
    struct gw_pg_pool *pool;

    if (loop == NULL || opts == NULL || opts->conninfo == NULL || opts->size < 1 ||
        opts->size > 1000 || opts->pipeline_depth < 1 || opts->pipeline_depth > 10000 ||
        opts->statement_timeout_ms < 0 || opts->max_queue < 0 || opts->queue_timeout_ms < 0) {
        gw_error_set(err, GW_EINVAL, false, "bad pg pool options");
        return NULL;
    }
    pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        goto fail_alloc;
    pool->loop = loop;
    pool->size = opts->size;
    pool->depth = opts->pipeline_depth;
    pool->max_queue = opts->max_queue > 0 ? (unsigned long)opts->max_queue : DEFAULT_MAX_QUEUE;
    if (build_params(pool, opts, err) != 0)
        goto fail_params;
    pool->conns = calloc((size_t)pool->size, sizeof(*pool->conns));
    if (pool->conns == NULL)
        goto fail_conns;
    pool->queue_timeout_ms = opts->queue_timeout_ms;
    uv_prepare_init(loop, &pool->kick);
    pool->handles_open++;
    uv_timer_init(loop, &pool->expire);
    pool->handles_open++;
    if (pool->queue_timeout_ms > 0) {
        uint64_t every = (uint64_t)pool->queue_timeout_ms / 4;
        uv_timer_start(&pool->expire, expire_cb, every < 20 ? 20 : every, every < 20 ? 20 : every);
    }
    gw__pg_pool_enter(pool);
    for (int i = 0; i < pool->size; i++)
        gw__pg_conn_init(&pool->conns[i], pool, i);
    for (int i = 0; i < pool->size; i++)
        gw__pg_conn_set_state(&pool->conns[i], CONN_CONNECTING);
    gw__pg_pool_leave(pool);
    return pool;

fail_conns:
    free_params(pool);
fail_params:
    free(pool);
    return NULL;
fail_alloc:
    gw_error_set(err, GW_ENOMEM, false, "out of memory");
    return NULL;
}

static void free_pool(struct gw_pg_pool *pool)
{
    void (*done)(void *) = pool->done;
    void *arg = pool->done_arg;

    for (int i = 0; i < pool->size; i++)
        free(pool->conns[i].prepared);
    free(pool->conns);
    if (pool->listener != NULL) {
        free(pool->listener->prepared);
        free(pool->listener->channel);
        free(pool->listener);
    }
    for (int i = 0; i < pool->nstmts; i++)
        free(pool->stmts[i].name);
    free(pool->stmts);
    free_params(pool);
    free(pool);
    if (done != NULL)
        done(arg);
}

void gw__pg_pool_handle_closed(struct gw_pg_pool *pool)
{
    if (--pool->handles_open == 0 && pool->torn_down)
        free_pool(pool);
}

static void kick_closed(uv_handle_t *h)
{
    gw__pg_pool_handle_closed(container_of((uv_prepare_t *)h, struct gw_pg_pool, kick));
}

static void expire_closed(uv_handle_t *h)
{
    gw__pg_pool_handle_closed(container_of((uv_timer_t *)h, struct gw_pg_pool, expire));
}

/* Statements wait in the queue only while every connection is down or
 * full. Past the queue timeout they fail as unavailable (they never reached
 * the server, so the caller may safely retry or answer 503) instead of
 * holding an HTTP request, and a shutdown that drains it, for the whole
 * outage. The queue is FIFO, so the expired ones are at its head. */
static void expire_cb(uv_timer_t *t)
{
    struct gw_pg_pool *pool = container_of(t, struct gw_pg_pool, expire);
    uint64_t now = uv_now(pool->loop);
    struct gw_error err;

    if (pool->queue.head == NULL || pool->destroying ||
        now - pool->queue.head->queued_at < (uint64_t)pool->queue_timeout_ms)
        return;
    gw_error_set(&err, GW_EUNAVAIL, true,
                 "PostgreSQL: no connection could take the statement within %d ms (it was not "
                 "sent)",
                 pool->queue_timeout_ms);
    gw__pg_pool_enter(pool);
    while (pool->queue.head != NULL && !pool->destroying &&
           now - pool->queue.head->queued_at >= (uint64_t)pool->queue_timeout_ms) {
        pool->stats.expired++;
        gw__pg_pool_complete(pool, gw__pg_qlist_pop(&pool->queue), NULL, &err);
    }
    gw__pg_pool_leave(pool);
}

static void teardown(struct gw_pg_pool *pool)
{
    struct gw_error err;
    struct gw__pg_query *q;

    pool->torn_down = true;
    pool->busy++; /* callbacks below must not start a second teardown */
    uv_close((uv_handle_t *)&pool->kick, kick_closed);
    uv_close((uv_handle_t *)&pool->expire, expire_closed);
    for (int i = 0; i < pool->size; i++)
        gw__pg_conn_set_state(&pool->conns[i], CONN_CLOSED);
    if (pool->listener != NULL)
        gw__pg_conn_set_state(pool->listener, CONN_CLOSED);
    gw_error_set(&err, GW_ECLOSED, false, "PostgreSQL pool is shutting down");
    while ((q = gw__pg_qlist_pop(&pool->queue)) != NULL)
        gw__pg_pool_complete(pool, q, NULL, &err);
    pool->busy--;
}

void gw__pg_pool_enter(struct gw_pg_pool *pool)
{
    pool->busy++;
}

void gw__pg_pool_leave(struct gw_pg_pool *pool)
{
    if (--pool->busy == 0 && pool->destroying && !pool->torn_down)
        teardown(pool);
}

void gw_pg_pool_destroy(struct gw_pg_pool *pool, void (*done)(void *arg), void *arg)
{
    if (pool == NULL || pool->destroying)
        return;
    pool->destroying = true;
    pool->done = done;
    pool->done_arg = arg;
    /* Inside one of our own callbacks the connection being served is still on
     * the stack: the outermost frame tears down when it unwinds. */
    if (pool->busy == 0)
        teardown(pool);
}

void gw__pg_pool_complete(struct gw_pg_pool *pool, struct gw__pg_query *q, const PGresult *res,
                          const struct gw_error *err)
{
    if (q->cb != NULL) {
        if (err != NULL)
            pool->stats.queries_failed++;
        else
            pool->stats.queries_ok++;
        q->cb(q->arg, res, err);
    } else if (err != NULL) {
        gw_log_warn("pg: internal statement '%s' failed: %s", q->sql, err->message);
    }
    PQclear(q->res);
    free(q->owned_sql);
    free(q);
}

static void dispatch(struct gw_pg_pool *pool)
{
    while (pool->queue.head != NULL && !pool->destroying) {
        struct gw__pg_conn *best = NULL;

        for (int i = 0; i < pool->size; i++) {
            struct gw__pg_conn *c = &pool->conns[i];

            if (!gw__pg_conn_up(c) || c->read_only || c->inflight.n >= (unsigned long)pool->depth)
                continue;
            if (best == NULL || c->inflight.n < best->inflight.n)
                best = c;
        }
        if (best == NULL)
            break;
        gw__pg_conn_send(best, gw__pg_qlist_pop(&pool->queue));
    }
}

/* Once per loop iteration, after every callback of the iteration had its
 * chance to queue statements: send them and flush each connection once. */
static void kick_cb(uv_prepare_t *h)
{
    struct gw_pg_pool *pool = container_of(h, struct gw_pg_pool, kick);

    gw__pg_pool_enter(pool);
    uv_prepare_stop(h);
    dispatch(pool);
    for (int i = 0; i < pool->size && !pool->destroying; i++)
        if (pool->conns[i].dirty)
            gw__pg_conn_flush(&pool->conns[i]);
    gw__pg_pool_leave(pool);
}

void gw__pg_pool_kick(struct gw_pg_pool *pool)
{
    if (!pool->destroying && !uv_is_active((uv_handle_t *)&pool->kick))
        uv_prepare_start(&pool->kick, kick_cb);
}

static int stmt_index(struct gw_pg_pool *pool, const char *name, const char *sql)
{
    for (int i = 0; i < pool->nstmts; i++) {
        if (strcmp(pool->stmts[i].name, name) != 0)
            continue;
        if (pool->stmts[i].sql != sql && strcmp(pool->stmts[i].sql, sql) != 0)
            return GW_EINVAL; /* one name, two texts: a caller bug */
        return i;
    }
    if (pool->nstmts == pool->stmts_cap) {
        int cap = pool->stmts_cap ? pool->stmts_cap * 2 : 16;
        struct gw__pg_stmt *s = realloc(pool->stmts, (size_t)cap * sizeof(*s));

        if (s == NULL)
            return GW_ENOMEM;
        pool->stmts = s;
        pool->stmts_cap = cap;
    }
    pool->stmts[pool->nstmts].name = strdup(name);
    if (pool->stmts[pool->nstmts].name == NULL)
        return GW_ENOMEM;
    pool->stmts[pool->nstmts].sql = sql;
    return pool->nstmts++;
}

int gw_pg_query(struct gw_pg_pool *pool, const char *stmt_name, const char *sql, int nparams,
                const char *const *params, gw_pg_cb cb, void *arg)
{
    struct gw__pg_query *q;
    size_t size;
    char *p;
    int stmt = -1;

    if (pool == NULL || sql == NULL || cb == NULL || nparams < 0 || nparams > MAX_PARAMS ||
        (nparams > 0 && params == NULL) || (stmt_name != NULL && stmt_name[0] == '\0'))
        return GW_EINVAL;
    if (pool->destroying)
        return GW_ECLOSED;
    if (pool->queue.n >= pool->max_queue)
        return GW_ELIMIT;
    if (stmt_name != NULL) {
        stmt = stmt_index(pool, stmt_name, sql);
        if (stmt < 0)
            return stmt;
    }
    /* One allocation: the query, the parameter pointers, their text. */
    size = sizeof(*q) + (size_t)nparams * sizeof(char *);
    for (int i = 0; i < nparams; i++)
        if (params[i] != NULL)
            size += strlen(params[i]) + 1;
    q = malloc(size);
    if (q == NULL)
        return GW_ENOMEM;
    memset(q, 0, sizeof(*q));
    q->sql = sql;
    q->stmt = stmt;
    q->nparams = nparams;
    q->cb = cb;
    q->arg = arg;
    q->params = (const char **)(q + 1);
    p = (char *)(q->params + nparams);
    for (int i = 0; i < nparams; i++) {
        if (params[i] == NULL) {
            q->params[i] = NULL;
            continue;
        }
        size_t len = strlen(params[i]) + 1;
        memcpy(p, params[i], len);
        q->params[i] = p;
        p += len;
    }
    if (nparams == 0)
        q->params = NULL;
    q->queued_at = uv_now(pool->loop);
    gw__pg_qlist_push(&pool->queue, q);
    gw__pg_pool_kick(pool);
    return 0;
}

int gw_pg_listen(struct gw_pg_pool *pool, const char *channel, gw_pg_notify_cb cb, void *arg,
                 struct gw_error *err)
{
    struct gw__pg_conn *c;

    if (pool == NULL || channel == NULL || channel[0] == '\0' || cb == NULL)
        return gw_error_set(err, GW_EINVAL, false, "gw_pg_listen: bad arguments");
    if (pool->destroying)
        return gw_error_set(err, GW_ECLOSED, false, "PostgreSQL pool is shutting down");
    if (pool->listener != NULL)
        return gw_error_set(err, GW_ECONFLICT, false, "the pool already has a listener");
    c = malloc(sizeof(*c));
    if (c == NULL)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    gw__pg_conn_init(c, pool, -1);
    c->channel = strdup(channel);
    if (c->channel == NULL) {
        /* The timer is already initialised: it must close like the others. */
        pool->listener = c;
        gw__pg_conn_set_state(c, CONN_CLOSED);
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    }
    c->notify_cb = cb;
    c->notify_arg = arg;
    pool->listener = c;
    gw__pg_pool_enter(pool);
    gw__pg_conn_set_state(c, CONN_CONNECTING);
    gw__pg_pool_leave(pool);
    return 0;
}

bool gw_pg_pool_ready(const struct gw_pg_pool *pool)
{
    if (pool == NULL || pool->destroying)
        return false;
    for (int i = 0; i < pool->size; i++)
        if (gw__pg_conn_up(&pool->conns[i]))
            return true;
    return false;
}

void gw_pg_pool_stats(const struct gw_pg_pool *pool, struct gw_pg_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    if (pool == NULL)
        return;
    *out = pool->stats;
    out->queued = pool->queue.n;
    out->in_flight = 0;
    out->connections_up = 0;
    for (int i = 0; i < pool->size; i++) {
        out->in_flight += pool->conns[i].inflight.n;
        if (gw__pg_conn_up(&pool->conns[i]))
            out->connections_up++;
    }
}
