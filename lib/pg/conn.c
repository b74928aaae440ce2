/*
 * One libpq connection of the pool: non-blocking connect, pipeline mode,
 * result collection, loss and reconnect. gw__pg_conn_set_state() is the only place
 * that moves a connection between states; everything else reacts to libuv
 * events and asks for a transition.
 */
#include "pool_impl.h"

#include <stdlib.h>
#include <string.h>

#include "gw/log.h"

#define CONNECT_TIMEOUT_MS 10000
#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     5000
#define RO_QUIET_MS        10000

static void poll_cb(uv_poll_t *h, int status, int events);

bool gw__pg_conn_up(const struct gw__pg_conn *c)
{
    return c->state == CONN_IDLE || c->state == CONN_BUSY;
}

static const char *conn_name(const struct gw__pg_conn *c)
{
    return c->index < 0 ? "listener" : "pool";
}

/* libpq's messages span lines; logs and errors read better on one. */
static void trim_message(char *dst, size_t cap, const char *src)
{
    size_t n;

    snprintf(dst, cap, "%s", src != NULL ? src : "");
    for (char *p = dst; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    n = strlen(dst);
    while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
        dst[--n] = '\0';
}

static void notice_cb(void *arg, const char *message)
{
    char msg[512];

    (void)arg;
    trim_message(msg, sizeof(msg), message);
    gw_log_debug("postgres: %s", msg);
}

static void poll_closed(uv_handle_t *h)
{
    struct gw_pg_pool *pool = h->data;

    free(h);
    gw__pg_pool_handle_closed(pool);
}

/* Must run in the same callback in which libpq closed or replaced the socket,
 * before anything else on this loop can reuse the descriptor number: libuv
 * removes the number from epoll when the handle closes. */
static void poll_close(struct gw__pg_conn *c)
{
    if (c->poll == NULL)
        return;
    c->poll->data = c->pool;
    uv_close((uv_handle_t *)c->poll, poll_closed);
    c->poll = NULL;
    c->poll_fd = -1;
    c->poll_events = 0;
}

/* Watches libpq's current socket for `events`, replacing the handle when
 * libpq moved to another socket (it may while trying several addresses). */
static int poll_watch(struct gw__pg_conn *c, int events)
{
    int fd = PQsocket(c->pg);

    if (fd < 0)
        return -1;
    if (c->poll != NULL && c->poll_fd != fd)
        poll_close(c);
    if (c->poll == NULL) {
        c->poll = malloc(sizeof(*c->poll));
        if (c->poll == NULL)
            return -1;
        if (uv_poll_init(c->pool->loop, c->poll, fd) != 0) {
            free(c->poll);
            c->poll = NULL;
            return -1;
        }
        c->pool->handles_open++;
        c->poll->data = c;
        c->poll_fd = fd;
        c->poll_events = 0;
    }
    if (events != c->poll_events) {
        if (uv_poll_start(c->poll, events, poll_cb) != 0)
            return -1;
        c->poll_events = events;
    }
    return 0;
}

static void update_poll(struct gw__pg_conn *c)
{
    if (poll_watch(c, UV_READABLE | (c->want_write ? UV_WRITABLE : 0)) != 0)
        gw__pg_conn_set_state(c, CONN_RESETTING);
}

static void timer_closed(uv_handle_t *h)
{
    gw__pg_pool_handle_closed(container_of((uv_timer_t *)h, struct gw__pg_conn, timer)->pool);
}

static void timer_cb(uv_timer_t *t)
{
    struct gw__pg_conn *c = container_of(t, struct gw__pg_conn, timer);
    struct gw_pg_pool *pool = c->pool;

    gw__pg_pool_enter(pool);
    switch (c->state) {
    case CONN_CONNECTING:
        gw_log_warn("pg %s connection: connect timed out after %d ms", conn_name(c),
                    CONNECT_TIMEOUT_MS);
        gw__pg_conn_set_state(c, CONN_RESETTING);
        break;
    case CONN_RESETTING:
        gw__pg_conn_set_state(c, CONN_CONNECTING);
        break;
    default:
        break;
    }
    gw__pg_pool_leave(pool);
}

void gw__pg_conn_init(struct gw__pg_conn *c, struct gw_pg_pool *pool, int index)
{
    memset(c, 0, sizeof(*c));
    c->pool = pool;
    c->index = index;
    c->state = CONN_RESETTING;
    c->poll_fd = -1;
    c->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(pool->loop, &c->timer);
    pool->handles_open++;
}

static void fail_inflight(struct gw__pg_conn *c, int code, bool retriable, const char *why)
{
    struct gw_error err;
    struct gw__pg_query *q;

    gw_error_set(&err, code, retriable, "%s", why);
    while ((q = gw__pg_qlist_pop(&c->inflight)) != NULL)
        gw__pg_pool_complete(c->pool, q, NULL, &err);
}

static int ensure_prepared_cap(struct gw__pg_conn *c, int stmt)
{
    if (stmt < c->prepared_cap)
        return 0;
    int cap = c->prepared_cap ? c->prepared_cap : 8;
    while (cap <= stmt)
        cap *= 2;
    bool *p = realloc(c->prepared, (size_t)cap * sizeof(*p));
    if (p == NULL)
        return -1;
    memset(p + c->prepared_cap, 0, (size_t)(cap - c->prepared_cap) * sizeof(*p));
    c->prepared = p;
    c->prepared_cap = cap;
    return 0;
}

/* Entry actions of the connected state: pipeline mode, then work. */
static int on_connected(struct gw__pg_conn *c)
{
    uv_timer_stop(&c->timer);
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1)
        return -1;
    PQsetNoticeProcessor(c->pg, notice_cb, NULL);
    if (c->prepared != NULL)
        memset(c->prepared, 0, (size_t)c->prepared_cap * sizeof(*c->prepared));
    c->backoff_ms = BACKOFF_MIN_MS;
    c->want_write = false;
    if (c->ever_up)
        c->pool->stats.reconnects++;
    gw_log(c->ever_up ? GW_LOG_INFO : GW_LOG_DEBUG, NULL, "pg %s connection %d up (backend %d)",
           conn_name(c), c->index, PQbackendPID(c->pg));
    c->ever_up = true;
    if (poll_watch(c, UV_READABLE) != 0)
        return -1;
    if (c->channel != NULL) {
        /* The dedicated listener re-subscribes on every (re)connect. */
        char *ident = PQescapeIdentifier(c->pg, c->channel, strlen(c->channel));
        struct gw__pg_query *q = calloc(1, sizeof(*q));
        size_t n;

        if (ident == NULL || q == NULL) {
            PQfreemem(ident);
            free(q);
            return -1;
        }
        n = strlen(ident) + sizeof("LISTEN ");
        q->owned_sql = malloc(n);
        if (q->owned_sql == NULL) {
            PQfreemem(ident);
            free(q);
            return -1;
        }
        snprintf(q->owned_sql, n, "LISTEN %s", ident);
        PQfreemem(ident);
        q->sql = q->owned_sql;
        q->stmt = -1;
        gw__pg_conn_send(c, q);
        gw__pg_conn_flush(c);
    }
    return 0;
}

void gw__pg_conn_set_state(struct gw__pg_conn *c, enum gw__pg_conn_state to)
{
    struct gw_pg_pool *pool = c->pool;
    enum gw__pg_conn_state from = c->state;
    char msg[400];

    if (from == CONN_CLOSED)
        return;
    c->state = to;
    switch (to) {
    case CONN_CONNECTING:
        c->pg = PQconnectStartParams(pool->keywords, pool->values, 0);
        if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
            trim_message(msg, sizeof(msg), c->pg ? PQerrorMessage(c->pg) : "out of memory");
            gw_log_warn("pg %s connection: %s", conn_name(c), msg);
            gw__pg_conn_set_state(c, CONN_RESETTING);
            return;
        }
        uv_timer_start(&c->timer, timer_cb, CONNECT_TIMEOUT_MS, 0);
        /* Before the first PQconnectPoll, libpq wants "writable". */
        if (poll_watch(c, UV_WRITABLE) != 0) {
            gw__pg_conn_set_state(c, CONN_RESETTING);
            return;
        }
        break;
    case CONN_IDLE:
        if (from == CONN_CONNECTING) {
            if (on_connected(c) != 0) {
                gw_log_warn("pg %s connection: could not enter pipeline mode", conn_name(c));
                gw__pg_conn_set_state(c, CONN_RESETTING);
                return;
            }
            gw__pg_pool_kick(pool);
        }
        break;
    case CONN_BUSY:
        break;
    case CONN_RESETTING:
        uv_timer_stop(&c->timer);
        if (c->read_only && c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK) {
            gw_log_warn("pg %s connection %d: the server is read-only (SQLSTATE 25006): "
                        "connecting again to find a writable one",
                        conn_name(c), c->index);
            c->read_only = false;
            snprintf(msg, sizeof(msg), "the server is read-only");
            /* After BACKOFF_MIN_MS the first time (the new primary is likely
             * up by then), backing off while the servers stay read-only: a
             * new session per refused write made ~30 connections a second
             * (chaos-pg-read-only). Reads may go on succeeding meanwhile, so
             * the streak ends with time, not with an answer. */
            uint64_t now = uv_now(c->pool->loop);
            if (now - c->ro_reset_ms > RO_QUIET_MS)
                c->ro_resets = 0;
            c->ro_reset_ms = now;
            c->backoff_ms = BACKOFF_MIN_MS << (c->ro_resets < 4 ? c->ro_resets : 4);
            c->ro_resets++;
        } else if (c->pg != NULL) {
            trim_message(msg, sizeof(msg), PQerrorMessage(c->pg));
            /* Losses always; failed attempts of a down server once per
             * attempt, not once per connection of the pool. */
            if (from != CONN_CONNECTING || c->index <= 0)
                gw_log_warn("pg %s connection %s: %s", conn_name(c),
                            from == CONN_CONNECTING ? "failed" : "lost",
                            msg[0] ? msg : "socket error");
        } else {
            snprintf(msg, sizeof(msg), "not connected");
        }
        c->read_only = false; /* lost meanwhile: made again all the same */
        poll_close(c);
        PQfinish(c->pg);
        c->pg = NULL;
        c->want_write = false;
        {
            char why[512];
            snprintf(why, sizeof(why), "connection to PostgreSQL lost: %s", msg);
            fail_inflight(c, GW_EUNAVAIL, true, why);
        }
        if (c->state != CONN_RESETTING)
            return; /* a callback destroyed the pool meanwhile */
        uv_timer_start(&c->timer, timer_cb, c->backoff_ms, 0);
        c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
        break;
    case CONN_CLOSED:
        poll_close(c);
        PQfinish(c->pg);
        c->pg = NULL;
        uv_close((uv_handle_t *)&c->timer, timer_closed);
        fail_inflight(c, GW_ECLOSED, false, "PostgreSQL pool is shutting down");
        break;
    }
}

/* Sends one statement and its sync point. The caller flushes. On a send
 * failure the connection is reset, which fails `q` as retriable. */
int gw__pg_conn_send(struct gw__pg_conn *c, struct gw__pg_query *q)
{
    PGconn *pg = c->pg;
    int ok;

    q->res = NULL;
    q->res_error = false;
    q->sent_prepare = false;
    q->cmds_left = 1;
    if (q->stmt >= 0) {
        const struct gw__pg_stmt *st = &c->pool->stmts[q->stmt];

        ok = ensure_prepared_cap(c, q->stmt) == 0;
        if (ok && !c->prepared[q->stmt]) {
            /* Prepared lazily, in the same pipeline segment as its first use;
             * the flag is set now so followers do not prepare it again. */
            ok = PQsendPrepare(pg, st->name, st->sql, q->nparams, NULL);
            if (ok) {
                c->prepared[q->stmt] = true;
                q->sent_prepare = true;
                q->cmds_left = 2;
            }
        }
        if (ok)
            ok = PQsendQueryPrepared(pg, st->name, q->nparams, q->params, NULL, NULL, 0);
    } else {
        ok = PQsendQueryParams(pg, q->sql, q->nparams, NULL, q->params, NULL, NULL, 0);
    }
    if (ok)
        ok = PQpipelineSync(pg);
    gw__pg_qlist_push(&c->inflight, q);
    c->dirty = true;
    if (!ok) {
        gw__pg_conn_set_state(c, CONN_RESETTING);
        return GW_EUNAVAIL;
    }
    if (c->inflight.n > c->pool->stats.max_pipeline)
        c->pool->stats.max_pipeline = c->inflight.n;
    if (c->state == CONN_IDLE)
        gw__pg_conn_set_state(c, CONN_BUSY);
    return 0;
}

void gw__pg_conn_flush(struct gw__pg_conn *c)
{
    int r;

    if (!gw__pg_conn_up(c))
        return;
    c->dirty = false;
    r = PQflush(c->pg);
    if (r < 0) {
        gw__pg_conn_set_state(c, CONN_RESETTING);
        return;
    }
    c->want_write = r == 1;
    update_poll(c);
}

static void connect_step(struct gw__pg_conn *c)
{
    /* libpq may close this socket and open another inside PQconnectPoll:
     * stop watching it first so libuv never touches a recycled number. */
    if (c->poll != NULL) {
        uv_poll_stop(c->poll);
        c->poll_events = 0;
    }
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (poll_watch(c, UV_READABLE) != 0)
            gw__pg_conn_set_state(c, CONN_RESETTING);
        break;
    case PGRES_POLLING_WRITING:
        if (poll_watch(c, UV_WRITABLE) != 0)
            gw__pg_conn_set_state(c, CONN_RESETTING);
        break;
    case PGRES_POLLING_OK:
        gw__pg_conn_set_state(c, CONN_IDLE);
        break;
    default:
        gw__pg_conn_set_state(c, CONN_RESETTING);
        break;
    }
}

/* Maps a SQLSTATE to a Gangway code: callers branch on the message prefix
 * for details, on the code for the broad kind. */
static int sqlstate_code(const char *s, bool *retriable)
{
    *retriable = false;
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "57P0", 4) == 0 || strncmp(s, "53", 2) == 0) {
        *retriable = true;
        return GW_EUNAVAIL;
    }
    if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0) {
        *retriable = true;
        return GW_ECONFLICT;
    }
    /* Transient by nature, whatever the statement: the server is read-only
     * for now (25006: a failover or switchover under way), a lock was not
     * available in time (55P03), an I/O or system error (58xxx). As
     * permanent errors they made the event sink split its batch and
     * dead-letter valid events. */
    if (strcmp(s, "25006") == 0 || strcmp(s, "55P03") == 0 || strncmp(s, "58", 2) == 0) {
        *retriable = true;
        return GW_EUNAVAIL;
    }
    if (strcmp(s, "57014") == 0)
        return GW_ETIMEDOUT;
    if (strncmp(s, "23", 2) == 0)
        return GW_ECONFLICT;
    if (strcmp(s, "P0002") == 0 || strncmp(s, "02", 2) == 0)
        return GW_ENOTFOUND;
    if (strncmp(s, "22", 2) == 0 || strncmp(s, "42", 2) == 0)
        return GW_EINVAL;
    return GW_EIO;
}

static void result_error(const PGresult *r, struct gw_error *err)
{
    const char *state, *primary, *detail;
    char msg[400];
    bool retriable;
    int code;

    if (r == NULL) {
        gw_error_set(err, GW_EIO, false, "no result from PostgreSQL");
        return;
    }
    switch (PQresultStatus(r)) {
    case PGRES_EMPTY_QUERY:
        gw_error_set(err, GW_EINVAL, false, "empty query");
        return;
    case PGRES_FATAL_ERROR:
        break;
    default:
        gw_error_set(err, GW_EIO, false, "unexpected result status %s",
                     PQresStatus(PQresultStatus(r)));
        return;
    }
    state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    if (state == NULL) {
        /* Raised by libpq itself: the connection broke under the query. */
        trim_message(msg, sizeof(msg), PQresultErrorMessage(r));
        gw_error_set(err, GW_EUNAVAIL, true, "connection to PostgreSQL lost: %s", msg);
        return;
    }
    code = sqlstate_code(state, &retriable);
    if (detail != NULL)
        gw_error_set(err, code, retriable, "%s: %s (%s)", state, primary ? primary : "", detail);
    else
        gw_error_set(err, code, retriable, "%s: %s", state, primary ? primary : "");
    if (err != NULL)
        snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
}

/* Keeps the result that decides the query's outcome: the first error of its
 * pipeline segment, else the last result of its execute. */
static void keep_result(struct gw__pg_conn *c, struct gw__pg_query *q, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    bool is_prepare = q->sent_prepare && q->cmds_left == 2;
    bool failed = st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK;

    if (q->res_error) {
        PQclear(r);
        return;
    }
    if (failed) {
        if (is_prepare && q->stmt < c->prepared_cap)
            c->prepared[q->stmt] = false; /* prepare again next time */
        PQclear(q->res);
        q->res = r;
        q->res_error = true;
        return;
    }
    if (is_prepare) {
        PQclear(r);
        return;
    }
    PQclear(q->res);
    q->res = r;
}

static void finish_query(struct gw__pg_conn *c, struct gw__pg_query *q)
{
    struct gw_error err;

    if (q->res != NULL && !q->res_error) {
        gw__pg_pool_complete(c->pool, q, q->res, NULL);
    } else {
        result_error(q->res, &err);
        /* A server that turned read-only under an open session: a primary
         * demoted by a failover or switchover, the session kept (a cloud
         * database's writer endpoint moved to another instance, a proxy in
         * front). Retrying on the same session fails forever; a new
         * connection reaches the new primary. */
        if (strcmp(err.sqlstate, "25006") == 0)
            c->read_only = true;
        gw__pg_pool_complete(c->pool, q, NULL, &err);
    }
}

static void read_results(struct gw__pg_conn *c)
{
    struct gw_pg_pool *pool = c->pool;

    while (!pool->destroying && c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK &&
           !PQisBusy(c->pg)) {
        struct gw__pg_query *q = c->inflight.head;
        PGresult *r = PQgetResult(c->pg);

        if (r == NULL) {
            /* End of one command's results; with nothing expected it means
             * libpq is idle, and asking again would spin. */
            if (q == NULL || q->cmds_left == 0)
                break;
            q->cmds_left--;
            continue;
        }
        if (q == NULL) {
            gw_log_warn("pg %s connection: result with nothing in flight", conn_name(c));
            PQclear(r);
            continue;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            gw__pg_qlist_pop(&c->inflight);
            finish_query(c, q);
            if (c->read_only && c->inflight.n == 0 && gw__pg_conn_up(c) && !pool->destroying) {
                gw__pg_conn_set_state(c, CONN_RESETTING);
                break;
            }
            if (c->state == CONN_BUSY && c->inflight.n == 0)
                gw__pg_conn_set_state(c, CONN_IDLE);
            gw__pg_pool_kick(pool);
            continue;
        }
        keep_result(c, q, r);
    }
}

static void read_notifies(struct gw__pg_conn *c)
{
    PGnotify *n;

    while (c->pg != NULL && (n = PQnotifies(c->pg)) != NULL) {
        if (c->notify_cb != NULL && !c->pool->destroying)
            c->notify_cb(c->notify_arg, n->relname, n->extra);
        PQfreemem(n);
    }
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct gw__pg_conn *c = h->data;
    struct gw_pg_pool *pool = c->pool;

    gw__pg_pool_enter(pool);
    if (c->state == CONN_CONNECTING) {
        connect_step(c);
        goto out;
    }
    if (!gw__pg_conn_up(c))
        goto out;
    if (status < 0) {
        /* libuv reports a socket error (a reset) this way: let libpq read
         * what arrived before it and find its own error message. */
        PQconsumeInput(c->pg);
        read_results(c);
        if (gw__pg_conn_up(c))
            gw__pg_conn_set_state(c, CONN_RESETTING);
        goto out;
    }
    if ((events & UV_WRITABLE) != 0)
        gw__pg_conn_flush(c);
    if (gw__pg_conn_up(c) && (events & UV_READABLE) != 0) {
        /* A failed read still leaves the complete results before it parsed;
         * read_results stops at the broken status. */
        PQconsumeInput(c->pg);
        read_notifies(c);
        read_results(c);
        read_notifies(c);
        /* Reading may have queued protocol output of libpq's own. */
        if (gw__pg_conn_up(c) && c->want_write)
            gw__pg_conn_flush(c);
    }
    if (gw__pg_conn_up(c) && PQstatus(c->pg) == CONNECTION_BAD)
        gw__pg_conn_set_state(c, CONN_RESETTING);
out:
    gw__pg_pool_leave(pool);
}
