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
 * kept: batches are handed to the idempotent producer in lease order, and
 * rows in id order within a batch; the leases keep in-flight rows from
 * being leased twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "gw/log.h"
#include "gw/mem.h"
#include "gw/pg_array.h"

#define BATCH   1000
#define LEASE   "30 seconds" /* > the producer's message.timeout.ms (broker.c) */
#define POLL_MS 500
/* Batches handed to the producer and not acknowledged yet. */
#define MAX_BATCHES 4

struct relay_batch {
    struct gw_relay *relay;
    size_t pending;
    size_t ndone;
    long long ids[]; /* delivered ids, filled from the front */
};

struct gw_relay {
    struct gw_broker *b;
    bool leasing;     /* a lease query is in flight */
    unsigned batches; /* batches waiting for their delivery reports */
    bool closed;      /* destroyed: freed once nothing is in flight */
    bool dirty;       /* kicked while busy: lease again */
    uv_timer_t timer;
    uint64_t backoff_ms;
};

static void relay_kick(struct gw_relay *r);
static void on_timer(uv_timer_t *t);

/* After gw_relay_destroy: the last callback in flight frees the relay. */
static void free_if_idle(struct gw_relay *r)
{
    if (r->closed && !r->leasing && r->batches == 0)
        free(r);
}

static void delete_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    (void)arg;
    (void)res;
    if (err != NULL && err->code != GW_ECLOSED)
        gw_log_warn("outbox: deleting sent rows failed (they will be sent again): %s",
                    err->message);
}

/* Deletes the acknowledged rows in one statement. */
static void batch_finish(struct relay_batch *batch)
{
    struct gw_relay *r = batch->relay;
    if (batch->ndone > 0 && !r->closed) {
        char *arr = gw_pg_bigint_array(batch->ids, batch->ndone);
        if (arr != NULL) {
            const char *params[] = {arr};
            gw_pg_query(r->b->pg, "outbox_delete",
                        "DELETE FROM gw_outbox WHERE id = ANY($1::bigint[])", 1, params,
                        delete_done, NULL);
            free(arr);
        }
    }
    free(batch);
    r->batches--;
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
    int n = PQntuples(res); /* messages: a batch row gives several */
    if (n == 0) {
        if (r->dirty)
            relay_kick(r);
        return;
    }

    /* Publish in id order so rows of one key keep their commit order. */
    long long(*order)[2] = malloc((size_t)n * sizeof(*order));
    struct relay_batch *batch = calloc(1, sizeof(*batch) + (size_t)n * sizeof(long long));
    if (order == NULL || batch == NULL) {
        free(order);
        free(batch);
        return;
    }
    for (int i = 0; i < n; i++) {
        order[i][0] = atoll(PQgetvalue(res, i, 0));
        order[i][1] = i;
    }
    qsort(order, (size_t)n, sizeof(*order), id_cmp);
    batch->relay = r;
    batch->pending = 1; /* held until every row is handed to the producer */
    r->batches++;
    struct outbox_row *row = NULL;
    size_t rows = 0;
    bool batch_rows = false; /* the lease takes 2 at most: maybe more wait */
    for (int k = 0; k < n; k++) {
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
            if (atoi(PQgetvalue(res, i, 4)) > 1)
                batch_rows = true;
        }
        struct delivery *d = malloc(sizeof(*d));
        if (d == NULL) {
            row->failed = true;
            continue;
        }
        d->batch = batch;
        d->row = row;
        gw_broker_topic(r->b, PQgetvalue(res, i, 1), topic, sizeof(topic));
        batch->pending++;
        row->parts_out++;
        if (gw_kafka_produce(r->b->producer, topic, PQgetvalue(res, i, 2),
                             (size_t)PQgetlength(res, i, 2), PQgetvalue(res, i, 3),
                             (size_t)PQgetlength(res, i, 3), delivered, d, &perr) < 0) {
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
    /* Handed over: lease the next rows now if there may be more (a full
     * batch) or more were committed meanwhile. Before batch_finish, which
     * may free the relay once it is closed. */
    if (rows >= BATCH || batch_rows)
        r->dirty = true;
    if (r->dirty)
        relay_kick(r);
    if (--batch->pending == 0)
        batch_finish(batch);
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
    uv_timer_start(&r->timer, on_timer, 0, POLL_MS);
    return r;
}

static void timer_closed(uv_handle_t *h)
{
    struct gw_relay *r = h->data;
    r->closed = true;
    free_if_idle(r); /* else the last callback in flight does */
}

void gw_relay_destroy(struct gw_relay *r)
{
    if (r == NULL)
        return;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, timer_closed);
}
