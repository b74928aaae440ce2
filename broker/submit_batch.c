/*
 * Group commit of accepts: see submit_batch.h and
 * docs/decisions/0049-group-commit.md.
 */
#include "submit_batch.h"

#include <stdlib.h>
#include <string.h>

#include "gw/log.h"
#include "gw/mem.h"

struct elem {
    const char *args; /* borrowed until cb */
    size_t len;
    gw_submit_cb cb;
    void *arg;
    struct elem *next;
};

struct batch {
    struct gw_submit_batch *q;
    bool alone;       /* a retry of one element after its batch failed */
    uint64_t sent_ms; /* uv_now() when sent */
    int n;
    struct elem *elems[]; /* owned: freed once answered */
};

struct gw_submit_batch {
    struct gw_broker *b;
    uv_check_t check; /* forms and sends batches after each loop iteration's I/O */
    int max_batch;
    int max_in_flight;
    int in_flight;   /* batches (not lone retries) sent and not answered */
    int outstanding; /* every call sent and not answered, retries included */
    struct elem *head, *tail;
    bool closing;
    bool check_closed;
    struct gw_submit_batch_stats stats;
};

/* Columns 5..8 are the outbox rows to publish eagerly (decision 0076):
 * gw_relay_publish_leased reads them. */
static const char SUBMIT_SQL[] = "SELECT i, run::text, created, conflict, refused::text,"
                                 " outbox_id, topic, msg_key, payload"
                                 " FROM gw_submit_runs_eager($1::jsonb)";
#define OUTBOX_COL 5
/* The rows' lease starts inside the transaction and runs 30 s; a produce
 * settles within the producer's message.timeout.ms (20 s, broker.c). A
 * batch answered more than 5 s after it was sent (a slow commit, a lock
 * wait) leaves its rows to their lease rather than risk a send still in
 * flight when another relay may lease the row (decision 0076). */
#define EAGER_MAX_MS 5000

static void maybe_free(struct gw_submit_batch *q)
{
    if (q->closing && q->check_closed && q->outstanding == 0)
        free(q);
}

static void answer_all(struct batch *bt, const PGresult *res, const struct gw_error *err)
{
    for (int i = 0; i < bt->n; i++) {
        struct elem *e = bt->elems[i];
        bt->elems[i] = NULL;
        e->cb(e->arg, res, -1, err);
        free(e);
    }
}

static void batch_done(void *arg, const PGresult *res, const struct gw_error *err);

/* Sends elems[0..n) as one gw_submit_runs_eager call; answers them all with the
 * error when the pool refuses it. Takes ownership of the elements. */
static void send_batch(struct gw_submit_batch *q, struct elem **elems, int n, bool alone)
{
    struct batch *bt = malloc(sizeof(*bt) + (size_t)n * sizeof(bt->elems[0]));
    /* With a relay, the new runs' rows come back leased to it (decision
     * 0076); without one (GW_FAULTS=relay_off) they stay for any relay. */
    const char *head =
        q->b->relay != NULL ? "{\"lease\":\"" GW_RELAY_LEASE "\",\"runs\":[" : "{\"runs\":[";
    size_t head_len = strlen(head);
    size_t len = head_len + sizeof("]}") + (size_t)n;
    char *param = NULL;
    struct gw_error err;
    for (int i = 0; i < n; i++)
        len += elems[i]->len;
    if (bt != NULL)
        param = malloc(len);
    if (bt == NULL || param == NULL) {
        free(bt);
        gw_error_set(&err, GW_ENOMEM, true, "out of memory");
        for (int i = 0; i < n; i++) {
            elems[i]->cb(elems[i]->arg, NULL, -1, &err);
            free(elems[i]);
        }
        return;
    }
    bt->q = q;
    bt->alone = alone;
    bt->sent_ms = uv_now(q->b->loop);
    bt->n = n;
    memcpy(bt->elems, elems, (size_t)n * sizeof(elems[0]));
    char *p = param;
    memcpy(p, head, head_len);
    p += head_len;
    for (int i = 0; i < n; i++) {
        if (i > 0)
            *p++ = ',';
        memcpy(p, elems[i]->args, elems[i]->len);
        p += elems[i]->len;
    }
    memcpy(p, "]}", 3);
    const char *params[] = {param};
    int rc = gw_pg_query(q->b->pg, "submit_runs", SUBMIT_SQL, 1, params, batch_done, bt);
    free(param);
    if (rc < 0) {
        gw_error_set(&err, GW_EUNAVAIL, true, "the broker is overloaded; retry later");
        answer_all(bt, NULL, &err);
        free(bt);
        return;
    }
    q->outstanding++;
    if (!alone) {
        q->in_flight++;
        q->stats.batches++;
        q->stats.elements += (unsigned long long)n;
        if ((unsigned long)n > q->stats.max_size)
            q->stats.max_size = (unsigned long)n;
    }
}

/* Sends what waits, as long as fewer than max_in_flight batches are out. */
static void flush(struct gw_submit_batch *q)
{
    struct elem *take[GW_SUBMIT_BATCH_MAX];
    while (q->head != NULL && q->in_flight < q->max_in_flight && !q->closing) {
        int n = 0;
        while (q->head != NULL && n < q->max_batch) {
            take[n++] = q->head;
            q->head = q->head->next;
        }
        if (q->head == NULL)
            q->tail = NULL;
        send_batch(q, take, n, false);
    }
    if (!q->check_closed)
        uv_check_stop(&q->check);
}

static void check_cb(uv_check_t *h)
{
    flush(h->data);
}

static void batch_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct batch *bt = arg;
    struct gw_submit_batch *q = bt->q;
    q->outstanding--;
    if (!bt->alone)
        q->in_flight--;
    if (err != NULL && bt->n > 1 && !q->closing && (!err->retriable || err->code == GW_ECONFLICT)) {
        /* An SQL error (or a deadlock) rolled the whole batch back: nothing
         * of it committed. Each element again, alone, so that only the one
         * at fault gets the error. */
        gw_log(GW_LOG_WARN, NULL, "a batch of %d submissions failed (%s); retrying each alone",
               bt->n, err->message);
        q->stats.split++;
        for (int i = 0; i < bt->n; i++)
            send_batch(q, &bt->elems[i], 1, true);
    } else if (err != NULL) {
        answer_all(bt, NULL, err);
    } else {
        /* Committed: the runs' messages go out before their 202s. */
        uv_update_time(q->b->loop);
        uint64_t took = uv_now(q->b->loop) - bt->sent_ms;
        if (took > EAGER_MAX_MS || q->b->fault_eager_slow) {
            /* Not produced here: their lease is lifted for the relay (a
             * chaos run left 123 runs queued for the rest of the lease
             * after PostgreSQL came back: chaos-pg-stop). */
            gw_log_warn("a batch of %d submissions took %llu ms to commit; the relay publishes"
                        " its runs",
                        bt->n, (unsigned long long)took);
            gw_relay_release_leased(q->b->relay, res, OUTBOX_COL);
        } else if (!q->b->fault_eager_drop)
            gw_relay_publish_leased(q->b->relay, res, OUTBOX_COL);
        int rows = PQntuples(res);
        for (int r = 0; r < rows; r++) {
            int i = atoi(PQgetvalue(res, r, 0));
            if (i < 0 || i >= bt->n || bt->elems[i] == NULL)
                continue;
            struct elem *e = bt->elems[i];
            bt->elems[i] = NULL;
            e->cb(e->arg, res, r, NULL);
            free(e);
        }
        for (int i = 0; i < bt->n; i++) /* no row: a broken invariant */
            if (bt->elems[i] != NULL) {
                struct elem *e = bt->elems[i];
                bt->elems[i] = NULL;
                e->cb(e->arg, res, -1, NULL);
                free(e);
            }
    }
    free(bt);
    if (q->closing)
        maybe_free(q);
    else if (q->head != NULL)
        uv_check_start(&q->check, check_cb);
}

struct gw_submit_batch *gw_submit_batch_create(struct gw_broker *b, int max_batch,
                                               int max_in_flight, struct gw_error *err)
{
    struct gw_submit_batch *q = gw_calloc(1, sizeof(*q), err);
    if (q == NULL)
        return NULL;
    q->b = b;
    q->max_batch = max_batch < 1                     ? 1
                   : max_batch > GW_SUBMIT_BATCH_MAX ? GW_SUBMIT_BATCH_MAX
                                                     : max_batch;
    q->max_in_flight = max_in_flight < 1 ? 1 : max_in_flight;
    uv_check_init(b->loop, &q->check);
    q->check.data = q;
    return q;
}

static void check_closed(uv_handle_t *h)
{
    struct gw_submit_batch *q = h->data;
    q->check_closed = true;
    maybe_free(q);
}

void gw_submit_batch_destroy(struct gw_submit_batch *q)
{
    struct gw_error err;
    if (q == NULL)
        return;
    q->closing = true;
    gw_error_set(&err, GW_ECLOSED, true, "the broker is shutting down");
    while (q->head != NULL) {
        struct elem *e = q->head;
        q->head = e->next;
        e->cb(e->arg, NULL, -1, &err);
        free(e);
    }
    q->tail = NULL;
    uv_check_stop(&q->check);
    uv_close((uv_handle_t *)&q->check, check_closed);
}

int gw_submit_batch_add(struct gw_submit_batch *q, const char *args, size_t len, gw_submit_cb cb,
                        void *arg)
{
    if (q == NULL || q->closing)
        return GW_ECLOSED;
    struct elem *e = malloc(sizeof(*e));
    if (e == NULL)
        return GW_ENOMEM;
    *e = (struct elem){.args = args, .len = len, .cb = cb, .arg = arg};
    if (q->tail != NULL)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    if (q->in_flight < q->max_in_flight)
        uv_check_start(&q->check, check_cb);
    return 0;
}

void gw_submit_batch_stats(const struct gw_submit_batch *q, struct gw_submit_batch_stats *out)
{
    if (q == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = q->stats;
}
