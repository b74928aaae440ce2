/*
 * The outbox relay: publishes committed outbox rows to Kafka with the
 * idempotent producer and deletes them once acknowledged.
 *
 * Rows are leased (UPDATE ... FOR UPDATE SKIP LOCKED with a lease time), so
 * several broker replicas share the work and a crashed relay's rows come
 * back when their lease ends. Rows are picked by "unsent", never by "id
 * greater than the last one sent", so a transaction that commits after a
 * later id was published is not skipped. Woken in-process by whoever commits
 * outbox rows on this broker (gw_relay_kick), and by a timer for rows other
 * replicas left behind (NOTIFY would serialise every commit; see
 * sql/functions/gw_enqueue_run_at.sql).
 *
 * Pipelined: the next lease may start as soon as a batch is handed to the
 * producer, without waiting for its delivery reports (acks=all), up to
 * MAX_BATCHES batches in flight. A row committed while a batch waits for its
 * acknowledgements no longer waits for them too: that wait was the tail of
 * accept->published (bench/README.md, "Issue 15, part 4"). Order per key is
 * kept among leased rows: batches are handed to the idempotent producer in
 * lease order, and rows in id order within a batch; the leases keep
 * in-flight rows from being leased twice. An eager row (below) may overtake
 * an older leased row of its key (docs/architecture.md, "Ordering").
 *
 * Eager publishing (docs/decisions/0076-eager-publish.md): a run accepted
 * by this broker has its run.requested row written already leased, and the
 * submit hands it here right after the commit (gw_relay_publish_leased): no
 * lease round trip on the dispatch path. Those batches do not count against
 * MAX_BATCHES (the rows are ours for the lease whatever we do; holding them
 * back would only delay them) but keep the relay alive until settled.
 *
 * Deletes are coalesced: acknowledged ids wait up to DELETE_MS (or until
 * BATCH of them) and go in one DELETE, instead of one per batch, which at a
 * low rate was a transaction per run. A row acknowledged and not deleted
 * yet is still leased (30 s), so nobody sends it again meanwhile; one left
 * by a crash in that window is sent again after its lease, like a row whose
 * acknowledgement came just before a crash before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "gw/log.h"
#include "gw/mem.h"
#include "gw/pg_array.h"

#define BATCH   1000
#define LEASE   GW_RELAY_LEASE /* > the producer's message.timeout.ms (broker.c) */
#define POLL_MS 500
/* Batches handed to the producer and not acknowledged yet. */
#define MAX_BATCHES 4
#define DELETE_MS   20

struct relay_batch {
    struct gw_relay *relay;
    bool eager; /* rows the submit leased (gw_relay_publish_leased) */
    size_t pending;
    size_t ndone;
    long long ids[]; /* delivered ids, filled from the front */
};

struct gw_relay {
    struct gw_broker *b;
    bool leasing;     /* a lease query is in flight */
    unsigned batches; /* leased batches waiting for their delivery reports */
    unsigned eager;   /* eager batches waiting for theirs */
    bool closed;      /* destroyed: freed once nothing is in flight */
    int handles_open; /* timer and del_timer, until their close callbacks */
    bool dirty;       /* kicked while busy: lease again */
    uv_timer_t timer;
    uv_timer_t del_timer; /* flushes `del` DELETE_MS after its first id */
    uint64_t backoff_ms;
    long long *del; /* acknowledged ids not deleted yet */
    size_t ndel, del_cap;
};

static void relay_kick(struct gw_relay *r);
static void on_timer(uv_timer_t *t);

/* After gw_relay_destroy: the last callback in flight frees the relay. */
static void free_if_idle(struct gw_relay *r)
{
    if (r->closed && r->handles_open == 0 && !r->leasing && r->batches == 0 && r->eager == 0) {
        free(r->del);
        free(r);
    }
}

/* The end of a best-effort statement: its failure costs only time (the rows
 * wait for their lease), so it is logged, never retried. arg is what the
 * warning says happened and what follows. */
static const char DELETE_FAILED[] = "deleting sent rows failed (they will be sent again)";
static const char RELEASE_FAILED[] =
    "giving rows back to the relay failed (they are sent when their lease ends)";

static void best_effort_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    (void)res;
    if (err != NULL && err->code != GW_ECLOSED)
        gw_log_warn("outbox: %s: %s", (const char *)arg, err->message);
}

/* Deletes the acknowledged rows waiting in r->del, in one statement. A
 * failed delete leaves them to be sent again after their lease. */
static void delete_flush(struct gw_relay *r)
{
    uv_timer_stop(&r->del_timer);
    if (r->ndel == 0)
        return;
    char *arr = gw_pg_bigint_array(r->del, r->ndel);
    r->ndel = 0;
    if (arr == NULL)
        return;
    const char *params[] = {arr};
    gw_pg_query(r->b->pg, "outbox_delete", "DELETE FROM gw_outbox WHERE id = ANY($1::bigint[])", 1,
                params, best_effort_done, (void *)DELETE_FAILED);
    free(arr);
}

static void on_del_timer(uv_timer_t *t)
{
    delete_flush(t->data);
}

/* Queues a settled batch's acknowledged ids for the next coalesced delete. */
static void delete_later(struct gw_relay *r, const long long *ids, size_t n)
{
    if (n == 0)
        return;
    if (r->ndel + n > r->del_cap) {
        size_t cap = r->del_cap ? r->del_cap : 64;
        while (cap < r->ndel + n)
            cap *= 2;
        long long *d = realloc(r->del, cap * sizeof(*d));
        if (d == NULL) { /* sent again after their lease: at least once holds */
            gw_log_warn("outbox: out of memory; %zu sent rows will be sent again", n);
            return;
        }
        r->del = d;
        r->del_cap = cap;
    }
    memcpy(r->del + r->ndel, ids, n * sizeof(*ids));
    r->ndel += n;
    if (r->ndel >= BATCH)
        delete_flush(r);
    else if (!uv_is_active((uv_handle_t *)&r->del_timer))
        uv_timer_start(&r->del_timer, on_del_timer, DELETE_MS, 0);
}

static void batch_finish(struct relay_batch *batch)
{
    struct gw_relay *r = batch->relay;
    if (!r->closed)
        delete_later(r, batch->ids, batch->ndone);
    if (batch->eager)
        r->eager--;
    else
        r->batches--;
    free(batch);
    if (r->closed) {
        free_if_idle(r);
        return;
    }
    if (r->dirty) /* kicked while MAX_BATCHES were out */
        relay_kick(r);
}

/* An outbox row: one message, or each element of a batch row's array
 * (sql/0019_outbox_batches.sql). Deleted only when every part is
 * acknowledged; a part that fails leaves the whole row to be sent again
 * after its lease. */
struct outbox_row {
    long long id;
    int parts_out; /* produced, no delivery report yet */
    bool failed;
};

struct delivery {
    struct relay_batch *batch;
    struct outbox_row *row;
};

/* One part of `row` is settled: delivered (ok) or not. */
static void part_settled(struct relay_batch *batch, struct outbox_row *row, bool ok)
{
    if (!ok)
        row->failed = true;
    if (--row->parts_out > 0)
        return;
    if (!row->failed)
        batch->ids[batch->ndone++] = row->id;
    free(row);
}

static void delivered(void *opaque, const struct gw_error *err)
{
    struct delivery *d = opaque;
    struct relay_batch *batch = d->batch;
    struct gw_relay *r = batch->relay;

    if (err == NULL) {
        r->b->metrics.outbox_published++;
    } else {
        r->b->metrics.outbox_failed++;
        gw_log_warn("outbox: row %lld not delivered (retried after its lease): %s", d->row->id,
                    err->message);
    }
    part_settled(batch, d->row, err == NULL);
    free(d);
    if (--batch->pending == 0)
        batch_finish(batch);
}

/* By outbox id, then by position in the answer: a batch row's parts keep
 * their order (qsort is not stable). */
static int id_cmp(const void *x, const void *y)
{
    const long long *a = x, *b = y;
    if (a[0] != b[0])
        return a[0] < b[0] ? -1 : 1;
    return a[1] < b[1] ? -1 : a[1] > b[1];
}

/* Column numbers of an answer that holds outbox messages. */
struct msg_cols {
    int id, topic, key, payload;
    int parts; /* -1: every row is one message */
};

/* Hands the messages of `res` (rows whose id is NULL are skipped) to the
 * producer as one batch, in outbox id order so rows of one key keep their
 * commit order. Sets *rows_out to the rows seen and *batch_rows when one
 * of them had several parts. Returns the batch, still held by the caller
 * (batch_release), or NULL when there was nothing to produce (no row with
 * an id: a submit of replays only) or no memory (the rows are sent again
 * after their lease). */
static struct relay_batch *publish(struct gw_relay *r, const PGresult *res, struct msg_cols c,
                                   bool eager, size_t *rows_out, bool *batch_rows)
{
    int n = PQntuples(res), m = 0;
    for (int i = 0; i < n; i++)
        m += !PQgetisnull(res, i, c.id);
    if (m == 0)
        return NULL;
    long long(*order)[2] = malloc((size_t)m * sizeof(*order));
    struct relay_batch *batch = calloc(1, sizeof(*batch) + (size_t)m * sizeof(long long));
    if (order == NULL || batch == NULL) {
        free(order);
        free(batch);
        return NULL;
    }
    m = 0;
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(res, i, c.id))
            continue;
        order[m][0] = atoll(PQgetvalue(res, i, c.id));
        order[m][1] = i;
        m++;
    }
    qsort(order, (size_t)m, sizeof(*order), id_cmp);
    batch->relay = r;
    batch->eager = eager;
    batch->pending = 1; /* held until every row is handed to the producer */
    if (eager)
        r->eager++;
    else
        r->batches++;
    struct outbox_row *row = NULL;
    size_t rows = 0;
    for (int k = 0; k < m; k++) {
        int i = (int)order[k][1];
        char topic[256];
        struct gw_error perr;
        if (row == NULL || row->id != order[k][0]) {
            /* Held by its first part until the row's last part is produced. */
            if (row != NULL)
                part_settled(batch, row, true);
            row = calloc(1, sizeof(*row));
            if (row == NULL)
                break; /* the rest is sent again after its lease */
            row->id = order[k][0];
            row->parts_out = 1;
            rows++;
            if (c.parts >= 0 && atoi(PQgetvalue(res, i, c.parts)) > 1)
                *batch_rows = true;
        }
        struct delivery *d = malloc(sizeof(*d));
        if (d == NULL) {
            row->failed = true;
            continue;
        }
        d->batch = batch;
        d->row = row;
        gw_broker_topic(r->b, PQgetvalue(res, i, c.topic), topic, sizeof(topic));
        batch->pending++;
        row->parts_out++;
        if (gw_kafka_produce(r->b->producer, topic, PQgetvalue(res, i, c.key),
                             (size_t)PQgetlength(res, i, c.key), PQgetvalue(res, i, c.payload),
                             (size_t)PQgetlength(res, i, c.payload), delivered, d, &perr) < 0) {
            batch->pending--;
            free(d);
            part_settled(batch, row, false);
            r->b->metrics.outbox_failed++;
            gw_log_warn("outbox: produce to %s failed (retried after its lease): %s", topic,
                        perr.message);
        }
    }
    if (row != NULL)
        part_settled(batch, row, true);
    free(order);
    *rows_out = rows;
    return batch;
}

static void batch_release(struct relay_batch *batch)
{
    if (--batch->pending == 0)
        batch_finish(batch);
}

static void leased(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_relay *r = arg;
    r->leasing = false;
    if (r->closed) {
        free_if_idle(r);
        return;
    }
    if (err != NULL) {
        r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : 100;
        if (r->backoff_ms > 5000)
            r->backoff_ms = 5000;
        gw_log_warn("outbox: lease failed, retrying in %llu ms: %s",
                    (unsigned long long)r->backoff_ms, err->message);
        uv_timer_start(&r->timer, on_timer, r->backoff_ms, POLL_MS);
        return;
    }
    r->backoff_ms = 0;
    if (PQntuples(res) == 0) { /* messages: a batch row gives several */
        if (r->dirty)
            relay_kick(r);
        return;
    }
    size_t rows = 0;
    bool batch_rows = false; /* the lease takes 2 at most: maybe more wait */
    struct relay_batch *batch =
        publish(r, res, (struct msg_cols){0, 1, 2, 3, 4}, false, &rows, &batch_rows);
    if (batch == NULL)
        return;
    /* Handed over: lease the next rows now if there may be more (a full
     * batch) or more were committed meanwhile. Before the release, which
     * may free the relay once it is closed. */
    if (rows >= BATCH || batch_rows)
        r->dirty = true;
    if (r->dirty)
        relay_kick(r);
    batch_release(batch);
}

void gw_relay_publish_leased(struct gw_relay *r, const PGresult *res, int first_col)
{
    size_t rows = 0;
    bool batch_rows = false;
    if (r == NULL || r->closed || res == NULL)
        return;
    struct relay_batch *batch = publish(
        r, res, (struct msg_cols){first_col, first_col + 1, first_col + 2, first_col + 3, -1}, true,
        &rows, &batch_rows);
    if (batch != NULL)
        batch_release(batch);
}

void gw_relay_release_leased(struct gw_relay *r, const PGresult *res, int col)
{
    if (r == NULL || r->closed || res == NULL)
        return;
    int rows = PQntuples(res);
    long long *ids = rows > 0 ? malloc((size_t)rows * sizeof(*ids)) : NULL;
    size_t n = 0;
    if (ids == NULL)
        return; /* sent when their lease ends */
    for (int i = 0; i < rows; i++)
        if (!PQgetisnull(res, i, col))
            ids[n++] = atoll(PQgetvalue(res, i, col));
    char *arr = n > 0 ? gw_pg_bigint_array(ids, n) : NULL;
    free(ids);
    if (arr == NULL)
        return;
    /* Unleased, the rows are the relay's like any other: its timer (or the
     * next kick) takes them within POLL_MS. */
    const char *params[] = {arr};
    gw_pg_query(r->b->pg, "outbox_release",
                "UPDATE gw_outbox SET lease_until = NULL"
                " WHERE id = ANY($1::bigint[]) AND lease_until IS NOT NULL",
                1, params, best_effort_done, (void *)RELEASE_FAILED);
    free(arr);
}

static void relay_kick(struct gw_relay *r)
{
    char limit[16];
    if (r->leasing || r->batches >= MAX_BATCHES) {
        r->dirty = true;
        return;
    }
    r->dirty = false;
    r->leasing = true;
    snprintf(limit, sizeof(limit), "%d", BATCH);
    const char *params[] = {limit, LEASE};
    if (gw_pg_query(r->b->pg, "outbox_lease",
                    "SELECT id, topic, msg_key, payload, parts FROM gw_outbox_lease_parts($1::int, "
                    "$2::interval)",
                    2, params, leased, r) < 0)
        r->leasing = false;
}

void gw_relay_kick(struct gw_relay *r)
{
    if (r != NULL && !r->closed)
        relay_kick(r);
}

static void on_timer(uv_timer_t *t)
{
    relay_kick(t->data);
}

struct gw_relay *gw_relay_create(struct gw_broker *b, struct gw_error *err)
{
    struct gw_relay *r = gw_calloc(1, sizeof(*r), err);
    if (r == NULL)
        return NULL;
    r->b = b;
    uv_timer_init(b->loop, &r->timer);
    r->timer.data = r;
    uv_timer_init(b->loop, &r->del_timer);
    r->del_timer.data = r;
    r->handles_open = 2;
    uv_timer_start(&r->timer, on_timer, 0, POLL_MS);
    return r;
}

static void timer_closed(uv_handle_t *h)
{
    struct gw_relay *r = h->data;
    r->handles_open--;
    free_if_idle(r); /* else the last callback in flight does */
}

void gw_relay_destroy(struct gw_relay *r)
{
    if (r == NULL)
        return;
    delete_flush(r); /* what was acknowledged so far: not sent again */
    r->closed = true;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, timer_closed);
    uv_close((uv_handle_t *)&r->del_timer, timer_closed);
}
