/*
 * The Port bridge (bridge.h). One job per Port run request, moved by one
 * state machine whose only transition function is job_enter():
 *
 *   PARSE --bad--> REFUSE --> DEADLETTER --> END
 *     |  (the run failed in Port    (the message and the reason
 *     |   when it has a run id)      to the dead-letter topic)
 *     v
 *   SUBMIT --4xx--> FINAL
 *     | 202 (new, or replayed after a restart: Idempotency-Key port:<run>)
 *     v
 *   ANNOUNCE --> FOLLOW <--poll timer--+      (externalRunId, link, label)
 *                  |  status + new log lines to Port, label on a change
 *                  | terminal, logs drained
 *                  v
 *                ENTITY --> FINAL --> END     (the created resource upserted
 *                                              with ?run_id=; the final PATCH)
 *
 * The Kafka message is marked done (its offset may be committed) only in
 * END, after Port acknowledged the final status or the dead letter was
 * written: a bridge killed at any point gets the message again, submits
 * with the same idempotency key (Gangway answers the same run) and reports
 * what it had not (decision 0061). The log position of a run is kept in
 * <state dir>/<port run id>.pos so a restart does not post lines twice.
 *
 * Teardown: the bridge also consumes <prefix>gangway.catalog and deletes
 * the entity of every resource.deleted (a 404 from Port is fine: not
 * every resource came from Port).
 */
#include "bridge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calls.h"
#include "gw/log.h"
#include "mapping.h"

#define LOG_PAGE     1000
#define LOG_MSG_MAX  (256 * 1024) /* far below Port's 1 MiB body limit */
#define LOG_LINE_MAX (64 * 1024)

enum job_state {
    J_PARSE,
    J_REFUSE,
    J_DEADLETTER,
    J_SUBMIT,
    J_ANNOUNCE,
    J_FOLLOW,
    J_ENTITY,
    J_FINAL,
    J_END,
};

struct job {
    struct pb_bridge *b;
    struct job *prev, *next;
    enum job_state state;
    struct gw_kafka_msg *msg; /* NULL once done */
    struct gw_kafka_consumer *from;
    struct pb_invocation inv;
    struct pb_reject why;
    char run[64];       /* Gangway's run id */
    char status[32];    /* its last status seen */
    char label[512];    /* the last statusLabel sent */
    json_t *run_json;   /* the last GET /v1/runs/{id} */
    long long log_pos;  /* the last log position posted */
    json_t *page;       /* the log lines being posted (GET .../logs items) */
    size_t page_next;   /* the first of them not posted yet */
    long long page_pos; /* the position of the last line of the message in flight */
    bool success;       /* the final status */
    char summary[1024];
    char obo[PB_ID_MAX + 32]; /* Gangway-On-Behalf-Of: the Port user's subject */
    char obo_teams[2048];     /* Gangway-On-Behalf-Of-Teams */
    uv_timer_t timer;
    int pending; /* calls and delivery reports in flight */
    bool closing;
};

struct pb_bridge {
    uv_loop_t *loop;
    struct pb_bridge_options o;
    char runs_topic[256], group[512], dlq[256], catalog_topic[256], catalog_group[512];
    struct pb_mapping *map;
    struct pb_calls *calls;
    struct gw_kafka_consumer *runs, *catalog;
    struct gw_kafka_producer *producer;
    struct job *jobs;
    bool closing;
};

static void job_enter(struct job *j, enum job_state s);

/* ------------------------------------------------------------- helpers */

static void job_timer_closed(uv_handle_t *h)
{
    struct job *j = h->data;
    pb_invocation_finish(&j->inv);
    json_decref(j->run_json);
    json_decref(j->page);
    free(j);
}

/* Frees the job once nothing is in flight for it. The message is never
 * touched here: it was resolved in END, or belongs to the consumer. */
static void job_maybe_free(struct job *j)
{
    if (j->pending > 0 || (!j->closing && j->state != J_END))
        return;
    struct pb_bridge *b = j->b;
    if (j->prev != NULL)
        j->prev->next = j->next;
    else if (b->jobs == j)
        b->jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
    uv_timer_stop(&j->timer);
    uv_close((uv_handle_t *)&j->timer, job_timer_closed);
}

/* A call for the job; `done` runs unless the bridge is closing. */
typedef void (*job_cb)(struct job *j, const struct pb_answer *a, const struct gw_error *err);

struct job_call {
    struct job *j;
    job_cb cb;
};

static void job_call_done(void *arg, const struct pb_answer *a, const struct gw_error *err)
{
    struct job_call *jc = arg;
    struct job *j = jc->j;
    job_cb cb = jc->cb;
    free(jc);
    j->pending--;
    if (j->closing || j->b->closing || (err != NULL && err->code == GW_ECLOSED)) {
        j->closing = true;
        job_maybe_free(j);
        return;
    }
    cb(j, a, err);
}

static void job_call(struct job *j, enum pb_target t, const char *method, const char *path,
                     json_t *body, const char *const *headers, int max_attempts, job_cb cb)
{
    struct job_call *jc = malloc(sizeof(*jc));
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    struct pb_call_options o = {.target = t,
                                .method = method,
                                .path = path,
                                .body = text,
                                .headers = headers,
                                .max_attempts = max_attempts};
    struct gw_error e;
    gw_error_clear(&e);
    if (jc != NULL) {
        jc->j = j;
        jc->cb = cb;
    }
    if (jc == NULL || pb_call(j->b->calls, &o, job_call_done, jc, &e) < 0) {
        free(jc);
        free(text);
        gw_log_error("port bridge: %s %s not started: %s", method, path,
                     jc == NULL ? "out of memory" : e.message);
        /* Nothing to wait for: the message stays undone and comes again
         * after a restart. */
        j->closing = true;
        job_maybe_free(j);
        return;
    }
    free(text);
    j->pending++;
}

/* Every call to Gangway is made as the Port user (the bridge's token with
 * Gangway-On-Behalf-Of), so it sees exactly what that person may see. */
static void job_obo(struct job *j)
{
    snprintf(j->obo, sizeof(j->obo), "Gangway-On-Behalf-Of: %s", j->inv.subject);
    size_t n = (size_t)snprintf(j->obo_teams, sizeof(j->obo_teams), "Gangway-On-Behalf-Of-Teams: ");
    size_t i;
    json_t *t;
    json_array_foreach(j->inv.teams, i, t)
    {
        if (n >= sizeof(j->obo_teams))
            break;
        n += (size_t)snprintf(j->obo_teams + n, sizeof(j->obo_teams) - n, "%s%s", i ? "," : "",
                              json_string_value(t));
    }
}

static void gangway_get(struct job *j, const char *path, job_cb cb)
{
    const char *hdrs[] = {j->obo, j->obo_teams, NULL};
    job_call(j, PB_GANGWAY, "GET", path, NULL, hdrs, 0, cb);
}

static const char *run_status(const struct job *j)
{
    return json_string_value(json_object_get(j->run_json, "status"));
}

static bool terminal(const char *s)
{
    static const char *const t[] = {"succeeded", "failed",   "timed_out",
                                    "cancelled", "rejected", "expired"};
    for (size_t i = 0; s != NULL && i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(s, t[i]) == 0)
            return true;
    return false;
}

static char *run_link(const struct job *j)
{
    size_t n = strlen(j->b->o.public_url) + 64;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s/ui/runs/%s", j->b->o.public_url, j->run);
    return s;
}

/* The status label Port shows for a Gangway status. */
static void label_for(struct job *j, char *out, size_t cap)
{
    const char *s = run_status(j);
    json_t *ap = json_object_get(j->run_json, "approval");
    if (s != NULL && strcmp(s, "pending_approval") == 0) {
        json_int_t left = json_integer_value(json_object_get(ap, "remaining"));
        char from[256] = "";
        size_t n = 0, i;
        json_t *v;
        json_array_foreach(json_object_get(ap, "from_teams"), i, v) if (n < sizeof(from)) n +=
            (size_t)snprintf(from + n, sizeof(from) - n, "%steam %s", n ? ", " : "",
                             json_string_value(v));
        json_array_foreach(json_object_get(ap, "from_roles"), i, v) if (n < sizeof(from)) n +=
            (size_t)snprintf(from + n, sizeof(from) - n, "%srole %s", n ? ", " : "",
                             json_string_value(v));
        snprintf(out, cap, "Waiting for approval in Gangway (%lld more%s%s)",
                 (long long)(left > 0 ? left : 1), from[0] ? " from " : "", from);
    } else if (s != NULL && strcmp(s, "running") == 0) {
        snprintf(out, cap, "Running in Gangway");
    } else if (s != NULL && (strcmp(s, "queued") == 0 || strcmp(s, "accepted") == 0)) {
        snprintf(out, cap, "Queued in Gangway");
    } else {
        snprintf(out, cap, "Gangway: %s", s != NULL ? s : "submitted");
    }
}

/* ------------------------------------------------------- the state file */

static void pos_path(const struct job *j, char *out, size_t cap)
{
    /* Port run ids are "r_" and letters/digits; anything else is replaced so
     * the name stays inside the directory. */
    char safe[PB_ID_MAX];
    size_t i;
    for (i = 0; j->inv.run_id[i] != '\0' && i + 1 < sizeof(safe); i++) {
        char c = j->inv.run_id[i];
        safe[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          c == '_' || c == '-'
                      ? c
                      : '_';
    }
    safe[i] = '\0';
    snprintf(out, cap, "%s/%s.pos", j->b->o.state_dir, safe);
}

static void pos_load(struct job *j)
{
    char p[1024];
    if (j->b->o.state_dir == NULL)
        return;
    pos_path(j, p, sizeof(p));
    FILE *f = fopen(p, "r");
    if (f == NULL)
        return;
    long long v;
    if (fscanf(f, "%lld", &v) == 1 && v > 0)
        j->log_pos = v;
    fclose(f);
}

/* Small and local: written in place of the old one (rename is atomic). */
static void pos_save(struct job *j)
{
    char p[1024], tmp[1100];
    if (j->b->o.state_dir == NULL)
        return;
    pos_path(j, p, sizeof(p));
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        gw_log_warn("port bridge: cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    fprintf(f, "%lld\n", j->log_pos);
    if (fclose(f) != 0 || rename(tmp, p) != 0)
        gw_log_warn("port bridge: cannot write %s: %s", p, strerror(errno));
}

static void pos_forget(struct job *j)
{
    char p[1024];
    if (j->b->o.state_dir == NULL)
        return;
    pos_path(j, p, sizeof(p));
    unlink(p);
}

/* --------------------------------------------------------- Port reports */

/* Percent-encodes a path segment or query value (RFC 3986 unreserved kept). */
static void url_seg(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s != '\0' && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
}

static void port_run_path(const struct job *j, const char *suffix, char *out, size_t cap)
{
    char id[PB_ID_MAX * 3];
    url_seg(j->inv.run_id, id, sizeof(id));
    snprintf(out, cap, "/v1/actions/runs/%s%s", id, suffix);
}

/* A log message to Port (cut at LOG_MSG_MAX bytes), then `next`. */
static void port_log(struct job *j, const char *text, size_t len, job_cb next)
{
    char path[PB_ID_MAX * 3 + 64];
    port_run_path(j, "/logs", path, sizeof(path));
    if (len > LOG_MSG_MAX)
        len = LOG_MSG_MAX;
    json_t *body = json_pack("{s:s%}", "message", text, len);
    job_call(j, PB_PORT, "POST", path, body, NULL, 10, next);
}

/* PATCH /v1/actions/runs/{id} with `fields` (stolen) plus externalRunId
 * and link when the Gangway run is known. */
static void port_patch(struct job *j, json_t *fields, int max_attempts, job_cb next)
{
    char path[PB_ID_MAX * 3 + 64];
    port_run_path(j, "", path, sizeof(path));
    if (j->run[0] != '\0') {
        char *link = run_link(j);
        json_object_set_new(fields, "externalRunId", json_string(j->run));
        if (link != NULL)
            json_object_set_new(fields, "link", json_pack("[s]", link));
        free(link);
    }
    job_call(j, PB_PORT, "PATCH", path, fields, NULL, max_attempts, next);
}

/* ----------------------------------------------------------- dead letter */

static void dlq_delivered(void *opaque, const struct gw_error *err)
{
    struct job *j = opaque;
    j->pending--;
    if (j->closing || j->b->closing) {
        j->closing = true;
        job_maybe_free(j);
        return;
    }
    if (err != NULL) {
        /* Not written: keep the message (it comes again after a restart). */
        gw_log_error("port bridge: dead letter not written: %s", err->message);
        j->closing = true;
        job_maybe_free(j);
        return;
    }
    job_enter(j, J_END);
}

static void deadletter(struct job *j)
{
    struct pb_bridge *b = j->b;
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:s%}", "code", j->why.code, "reason",
                          j->why.reason, "run_id", j->inv.run_id, "topic", j->msg->topic,
                          "partition", (int)j->msg->partition, "offset", (json_int_t)j->msg->offset,
                          "message", j->msg->payload, j->msg->len);
    char *text = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    struct gw_error e;
    gw_error_clear(&e);
    gw_log_warn("port bridge: dead-lettering %s[%d]@%lld to %s: %s (%s)", j->msg->topic,
                (int)j->msg->partition, (long long)j->msg->offset, b->dlq, j->why.reason,
                j->why.code);
    if (text == NULL || gw_kafka_produce(b->producer, b->dlq, j->inv.run_id, strlen(j->inv.run_id),
                                         text, strlen(text), dlq_delivered, j, &e) < 0) {
        gw_log_error("port bridge: dead letter not written: %s",
                     text == NULL ? "out of memory" : e.message);
        free(text);
        j->closing = true;
        job_maybe_free(j);
        return;
    }
    free(text);
    j->pending++;
}

/* -------------------------------------------------------------- answers */

static void refused_reported(struct job *j, const struct pb_answer *a, const struct gw_error *err)
{
    if (err != NULL || a->status >= 300)
        gw_log_warn("port bridge: Port run %s not failed in Port: %s", j->inv.run_id,
                    err != NULL ? err->message : a->body);
    job_enter(j, J_DEADLETTER);
}

static void final_reported(struct job *j, const struct pb_answer *a, const struct gw_error *err)
{
    if (err != NULL || a->status >= 300)
        /* 4xx: Port will not take it (a run already finished, or gone). */
        gw_log_warn("port bridge: final status of Port run %s refused: %ld %s", j->inv.run_id,
                    a->status, err != NULL ? err->message : a->body);
    else
        gw_log_info("port bridge: Port run %s reported %s (Gangway run %s)", j->inv.run_id,
                    j->success ? "SUCCESS" : "FAILURE", j->run);
    job_enter(j, J_END);
}

static void entity_done(struct job *j, const struct pb_answer *a, const struct gw_error *err)
{
    if (err != NULL || a->status >= 300)
        gw_log_warn("port bridge: entity of run %s not upserted: %ld %s", j->run, a->status,
                    err != NULL ? err->message : a->body);
    job_enter(j, J_FINAL);
}

static void resource_read(struct job *j, const struct pb_answer *a, const struct gw_error *err)
{
    json_t *r = a->json;
    if (err != NULL || a->status != 200 || !json_is_object(r)) {
        gw_log_warn("port bridge: resource of run %s not readable: %ld", j->run, a->status);
        job_enter(j, J_FINAL);
        return;
    }
    char *link = run_link(j);
    json_t *owner = json_object_get(r, "owner");
    json_t *props = json_pack(
        "{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:s?, s:s}", "action", json_object_get(r, "action"),
        "kind", json_object_get(r, "kind"), "status", json_object_get(r, "status"), "expires_at",
        json_object_get(r, "expires_at"), "owner", json_object_get(owner, "subject"), "outputs",
        json_object_get(r, "outputs"), "run_url", link, "gangway_run", j->run);
    free(link);
    const char *id = json_string_value(json_object_get(r, "id"));
    const char *name = json_string_value(json_object_get(r, "name"));
    json_t *body = json_pack("{s:s, s:s, s:o}", "identifier", id != NULL ? id : j->run, "title",
                             name != NULL ? name : (id != NULL ? id : j->run), "properties",
                             props != NULL ? props : json_object());
    char bp[256], rid[PB_ID_MAX * 3], path[2048];
    url_seg(j->b->o.blueprint, bp, sizeof(bp));
    url_seg(j->inv.run_id, rid, sizeof(rid));
    snprintf(path, sizeof(path), "/v1/blueprints/%s/entities?upsert=true&merge=true&run_id=%s", bp,
             rid);
    job_call(j, PB_PORT, "POST", path, body, NULL, 0, entity_done);
}

static void follow_poll(struct job *j);

static void on_poll_timer(uv_timer_t *t)
{
    follow_poll(t->data);
}

static void follow_wait(struct job *j)
{
    uv_timer_start(&j->timer, on_poll_timer, (uint64_t)j->b->o.poll_ms, 0);
}

static void label_sent(struct job *j, const struct pb_answer *a, const struct gw_error *err)
{
    if (err != NULL || a->status >= 300)
        gw_log_warn("port bridge: status label of Port run %s refused: %ld", j->inv.run_id,
                    a->status);
    follow_wait(j);
}

/* After the logs are drained: the label if it changed, the end if terminal. */
static void follow_decide(struct job *j)
{
    const char *s = run_status(j);
    if (terminal(s)) {
        j->success = strcmp(s, "succeeded") == 0;
        const char *reason = json_string_value(json_object_get(j->run_json, "reason"));
        json_t *error = json_object_get(j->run_json, "error");
        const char *emsg = json_string_value(json_object_get(error, "message"));
        if (emsg == NULL)
            emsg = json_string_value(error);
        snprintf(j->summary, sizeof(j->summary), "Gangway run %s %s%s%s", j->run, s,
                 emsg != NULL || reason != NULL ? ": " : "",
                 emsg != NULL ? emsg : (reason != NULL ? reason : ""));
        job_enter(j, j->success && j->b->o.blueprint[0] != '\0' &&
                             json_string_value(json_object_get(j->run_json, "resource")) != NULL
                         ? J_ENTITY
                         : J_FINAL);
        return;
    }
    char label[512];
    label_for(j, label, sizeof(label));
    if (strcmp(label, j->label) != 0) {
        snprintf(j->label, sizeof(j->label), "%s", label);
        port_patch(j, json_pack("{s:s}", "statusLabel", label), 5, label_sent);
        return;
    }
    follow_wait(j);
}

static void logs_post_next(struct job *j);

static void logs_posted(struct job *j, const struct pb_answer *a, const struct gw_error *err)
{
    if (err != NULL || a->status >= 300)
        /* Given up after its attempts (or refused): the lines are skipped,
         * said once in our log; the run's status matters more. */
        gw_log_warn("port bridge: log lines of run %s not accepted by Port: %ld %s", j->run,
                    a->status, err != NULL ? err->message : a->body);
    j->log_pos = j->page_pos;
    pos_save(j);
    logs_post_next(j);
}

/* Joins the lines of the page from page_next into one message of at most
 * LOG_MSG_MAX bytes (a longer line is cut at LOG_LINE_MAX) and posts it;
 * when none is left, decides. */
static void logs_post_next(struct job *j)
{
    size_t n = json_array_size(j->page), cap = 0, len = 0;
    char *msg = NULL;
    if (j->page_next >= n) {
        bool full = n >= LOG_PAGE;
        json_decref(j->page);
        j->page = NULL;
        if (full) /* more lines wait: read on at once */
            follow_poll(j);
        else
            follow_decide(j);
        return;
    }
    while (j->page_next < n) {
        json_t *it = json_array_get(j->page, j->page_next);
        const char *line = json_string_value(json_object_get(it, "line"));
        size_t ll = line != NULL ? strlen(line) : 0;
        if (ll > LOG_LINE_MAX)
            ll = LOG_LINE_MAX;
        if (len > 0 && len + ll + 1 > LOG_MSG_MAX)
            break;
        if (len + ll + 2 > cap) {
            size_t nc = (len + ll + 2) * 2;
            char *m = realloc(msg, nc);
            if (m == NULL)
                break;
            msg = m;
            cap = nc;
        }
        if (len > 0)
            msg[len++] = '\n';
        memcpy(msg + len, line != NULL ? line : "", ll);
        len += ll;
        msg[len] = '\0';
        j->page_pos = (long long)json_integer_value(json_object_get(it, "pos"));
        j->page_next++;
    }
    if (msg == NULL) { /* out of memory: skip the rest of the page */
        j->page_next = n;
        logs_post_next(j);
        return;
    }
    port_log(j, msg, len, logs_posted);
    free(msg);
}

static void logs_read(struct job *j, const struct pb_answer *a, const struct gw_error *err)
{
    json_t *items = json_object_get(a->json, "items");
    if (err != NULL || a->status != 200 || !json_is_array(items)) {
        gw_log_warn("port bridge: logs of run %s not readable: %ld", j->run, a->status);
        follow_wait(j);
        return;
    }
    json_decref(j->page);
    j->page = json_incref(items);
    j->page_next = 0;
    logs_post_next(j);
}

static void run_read(struct job *j, const struct pb_answer *a, const struct gw_error *err)
{
    if (err != NULL || a->status != 200 || !json_is_object(a->json)) {
        gw_log_warn("port bridge: run %s not readable: %ld", j->run, a->status);
        follow_wait(j);
        return;
    }
    json_decref(j->run_json);
    j->run_json = json_incref(a->json);
    char path[256];
    snprintf(path, sizeof(path), "/v1/runs/%s/logs?after=%lld&limit=%d", j->run, j->log_pos,
             LOG_PAGE);
    gangway_get(j, path, logs_read);
}

/* One round: the run, then its new log lines, then follow_decide. */
static void follow_poll(struct job *j)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/runs/%s", j->run);
    gangway_get(j, path, run_read);
}

static void announced(struct job *j, const struct pb_answer *a, const struct gw_error *err)
{
    if (err != NULL || a->status >= 300)
        gw_log_warn("port bridge: Port run %s not updated: %ld %s", j->inv.run_id, a->status,
                    err != NULL ? err->message : a->body);
    job_enter(j, J_FOLLOW);
}

/* A refusal by Gangway, as Port's user should read it. */
static void describe_problem(struct job *j, const struct pb_answer *a)
{
    const char *code = json_string_value(json_object_get(a->json, "code"));
    const char *detail = json_string_value(json_object_get(a->json, "detail"));
    json_t *e0 = json_array_get(json_object_get(a->json, "errors"), 0);
    const char *ptr = json_string_value(json_object_get(e0, "pointer"));
    const char *msg = json_string_value(json_object_get(e0, "message"));
    snprintf(j->summary, sizeof(j->summary), "Gangway refused the run (%ld %s): %s%s%s%s%s",
             a->status, code != NULL ? code : "error", detail != NULL ? detail : a->body,
             ptr != NULL ? " — " : "", ptr != NULL ? ptr : "", msg != NULL ? ": " : "",
             msg != NULL ? msg : "");
}

static void submitted(struct job *j, const struct pb_answer *a, const struct gw_error *err)
{
    const char *id = json_string_value(json_object_get(a->json, "id"));
    if (err != NULL) { /* only at shutdown, since submits are retried forever */
        j->closing = true;
        job_maybe_free(j);
        return;
    }
    if (a->status != 202 || id == NULL) {
        describe_problem(j, a);
        j->success = false;
        gw_log_info("port bridge: Port run %s: %s", j->inv.run_id, j->summary);
        job_enter(j, J_FINAL);
        return;
    }
    snprintf(j->run, sizeof(j->run), "%s", id);
    json_decref(j->run_json);
    j->run_json = json_incref(a->json);
    gw_log_info("port bridge: Port run %s -> Gangway run %s (%s as %s)%s", j->inv.run_id, j->run,
                j->inv.action, j->inv.subject, a->replayed != NULL ? ", replayed" : "");
    job_enter(j, J_ANNOUNCE);
}

static void submit(struct job *j)
{
    json_t *body = json_pack("{s:O}", "inputs", j->inv.inputs);
    if (j->inv.ttl_seconds != NULL)
        json_object_set(body, "ttl_seconds", j->inv.ttl_seconds);
    if (j->inv.justification[0] != '\0')
        json_object_set_new(body, "justification", json_string(j->inv.justification));
    char idem[PB_ID_MAX + 32], act[PB_ID_MAX * 3], path[1024];
    snprintf(idem, sizeof(idem), "Idempotency-Key: port:%s", j->inv.run_id);
    const char *hdrs[] = {idem, j->obo, j->obo_teams, NULL};
    url_seg(j->inv.action, act, sizeof(act));
    snprintf(path, sizeof(path), "/v1/actions/%s/runs", act);
    job_call(j, PB_GANGWAY, "POST", path, body, hdrs, 0, submitted);
}

/* --------------------------------------------------------------- states */

static void job_enter(struct job *j, enum job_state s)
{
    j->state = s;
    switch (s) {
    case J_PARSE:
        if (pb_invocation_parse(j->b->map, j->msg->payload, j->msg->len, &j->inv, &j->why) == 0) {
            pos_load(j);
            job_obo(j);
            job_enter(j, J_SUBMIT);
        } else {
            job_enter(j, J_REFUSE);
        }
        return;
    case J_REFUSE:
        if (j->inv.run_id[0] == '\0') {
            job_enter(j, J_DEADLETTER);
            return;
        }
        /* The person in Port sees why at once; the operator finds the
         * message and the reason on the dead-letter topic. */
        snprintf(j->summary, sizeof(j->summary), "The Gangway bridge cannot run this: %s",
                 j->why.reason);
        port_patch(j,
                   json_pack("{s:s, s:s, s:s}", "status", "FAILURE", "statusLabel",
                             "Not run: the Gangway bridge cannot map it", "summary", j->summary),
                   5, refused_reported);
        return;
    case J_DEADLETTER:
        deadletter(j);
        return;
    case J_SUBMIT:
        submit(j);
        return;
    case J_ANNOUNCE:
        label_for(j, j->label, sizeof(j->label));
        port_patch(j, json_pack("{s:s}", "statusLabel", j->label), 0, announced);
        return;
    case J_FOLLOW:
        follow_poll(j);
        return;
    case J_ENTITY: {
        char path[128];
        snprintf(path, sizeof(path), "/v1/resources/%s",
                 json_string_value(json_object_get(j->run_json, "resource")));
        gangway_get(j, path, resource_read);
        return;
    }
    case J_FINAL: {
        char label[300];
        const char *st = run_status(j);
        snprintf(label, sizeof(label), "%s",
                 j->run[0] == '\0' ? "Refused by Gangway"
                 : j->success      ? "Succeeded in Gangway"
                                   : "Failed in Gangway");
        if (j->run[0] != '\0' && !j->success && st != NULL)
            snprintf(label, sizeof(label), "Gangway: %s", st);
        port_patch(j,
                   json_pack("{s:s, s:s, s:s}", "status", j->success ? "SUCCESS" : "FAILURE",
                             "statusLabel", label, "summary", j->summary),
                   0, final_reported);
        return;
    }
    case J_END:
        pos_forget(j);
        if (j->msg != NULL) {
            gw_kafka_msg_done(j->from, j->msg);
            j->msg = NULL;
        }
        job_maybe_free(j);
        return;
    }
}

/* ---------------------------------------------------------------- kafka */

static void on_runs(void *arg, struct gw_kafka_msg **msgs, size_t n)
{
    struct pb_bridge *b = arg;
    for (size_t i = 0; i < n; i++) {
        struct job *j = calloc(1, sizeof(*j));
        if (j == NULL || b->closing) {
            free(j);
            continue; /* not done: delivered again after a restart */
        }
        j->b = b;
        j->msg = msgs[i];
        j->from = b->runs;
        uv_timer_init(b->loop, &j->timer);
        j->timer.data = j;
        j->next = b->jobs;
        if (b->jobs != NULL)
            b->jobs->prev = j;
        b->jobs = j;
        job_enter(j, J_PARSE);
    }
}

/* A catalog event: resource.deleted removes the entity from Port. */
struct catalog_del {
    struct pb_bridge *b;
    struct gw_kafka_msg *msg;
};

static void entity_deleted(void *arg, const struct pb_answer *a, const struct gw_error *err)
{
    struct catalog_del *d = arg;
    if (err == NULL || err->code != GW_ECLOSED) {
        if (err != NULL || (a->status >= 300 && a->status != 404))
            gw_log_warn("port bridge: entity not deleted: %ld %s", a->status,
                        err != NULL ? err->message : a->body);
        gw_kafka_msg_done(d->b->catalog, d->msg);
    }
    free(d);
}

static void on_catalog(void *arg, struct gw_kafka_msg **msgs, size_t n)
{
    struct pb_bridge *b = arg;
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_loadb(msgs[i]->payload, msgs[i]->len, 0, NULL);
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *id = json_string_value(json_object_get(json_object_get(ev, "data"), "id"));
        struct catalog_del *d = NULL;
        if (type != NULL && id != NULL && strcmp(type, "dev.gangway.resource.deleted") == 0 &&
            (d = malloc(sizeof(*d))) != NULL) {
            char bp[256], eid[400], path[800];
            url_seg(b->o.blueprint, bp, sizeof(bp));
            url_seg(id, eid, sizeof(eid));
            snprintf(path, sizeof(path), "/v1/blueprints/%s/entities/%s", bp, eid);
            struct pb_call_options o = {.target = PB_PORT, .method = "DELETE", .path = path};
            struct gw_error e;
            gw_error_clear(&e);
            d->b = b;
            d->msg = msgs[i];
            gw_log_info("port bridge: resource %s deleted in Gangway; deleting its entity", id);
            if (pb_call(b->calls, &o, entity_deleted, d, &e) < 0)
                free(d); /* not done: seen again after a restart */
        } else {
            gw_kafka_msg_done(b->catalog, msgs[i]);
        }
        json_decref(ev);
    }
}

/* ------------------------------------------------------------- lifetime */

struct pb_bridge *pb_bridge_create(uv_loop_t *loop, const struct pb_bridge_options *o,
                                   struct gw_error *err)
{
    struct pb_bridge *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    b->loop = loop;
    b->o = *o;
    if (b->o.name == NULL || *b->o.name == '\0')
        b->o.name = "gangway";
    if (b->o.topic_prefix == NULL)
        b->o.topic_prefix = "";
    if (b->o.public_url == NULL || *b->o.public_url == '\0')
        b->o.public_url = b->o.gangway_url;
    if (b->o.blueprint == NULL)
        b->o.blueprint = "gangwayResource";
    if (b->o.poll_ms <= 0)
        b->o.poll_ms = 1000;
    if (b->o.max_in_flight <= 0)
        b->o.max_in_flight = 64;
    snprintf(b->runs_topic, sizeof(b->runs_topic), "%s",
             b->o.runs_topic != NULL && *b->o.runs_topic ? b->o.runs_topic : "");
    if (b->runs_topic[0] == '\0')
        snprintf(b->runs_topic, sizeof(b->runs_topic), "%s.runs", b->o.org_id);
    snprintf(b->group, sizeof(b->group), "%s.%s", b->o.org_id, b->o.name);
    if (b->o.dead_letter_topic != NULL && *b->o.dead_letter_topic != '\0')
        snprintf(b->dlq, sizeof(b->dlq), "%s", b->o.dead_letter_topic);
    else
        snprintf(b->dlq, sizeof(b->dlq), "%sgangway.port.deadletter", b->o.topic_prefix);
    snprintf(b->catalog_topic, sizeof(b->catalog_topic), "%sgangway.catalog", b->o.topic_prefix);
    snprintf(b->catalog_group, sizeof(b->catalog_group), "%sgangway-port-bridge.%s.%s",
             b->o.topic_prefix, b->o.org_id, b->o.name);

    if ((b->map = pb_mapping_load(b->o.mapping_file, err)) == NULL)
        goto fail;
    struct pb_calls_options co = {.port_url = b->o.port_url,
                                  .client_id = b->o.client_id,
                                  .client_secret = b->o.client_secret,
                                  .gangway_url = b->o.gangway_url,
                                  .gangway_token = b->o.gangway_token,
                                  .backoff_ms = b->o.backoff_ms};
    if ((b->calls = pb_calls_create(loop, &co, err)) == NULL)
        goto fail;
    if ((b->producer = gw_kafka_producer_create(loop, &b->o.gangway_kafka, err)) == NULL)
        goto fail;
    const char *runs_topics[] = {b->runs_topic, NULL};
    struct gw_kafka_consumer_options ro = {.group_id = b->group,
                                           .topics = runs_topics,
                                           .max_batch = 16,
                                           .max_in_flight = (size_t)b->o.max_in_flight};
    if ((b->runs = gw_kafka_consumer_create(loop, &b->o.port_kafka, &ro, on_runs, b, err)) == NULL)
        goto fail;
    if (b->o.blueprint[0] != '\0') {
        const char *cat_topics[] = {b->catalog_topic, NULL};
        struct gw_kafka_consumer_options cato = {.group_id = b->catalog_group,
                                                 .topics = cat_topics,
                                                 .max_batch = 16,
                                                 .max_in_flight = 64};
        if ((b->catalog = gw_kafka_consumer_create(loop, &b->o.gangway_kafka, &cato, on_catalog, b,
                                                   err)) == NULL)
            goto fail;
    }
    gw_log_info("port bridge: consuming %s as %s; Gangway at %s; Port at %s; dead letters to %s",
                b->runs_topic, b->group, b->o.gangway_url, b->o.port_url, b->dlq);
    return b;
fail:
    pb_bridge_stop(b);
    return NULL;
}

void pb_bridge_stop(struct pb_bridge *b)
{
    if (b == NULL)
        return;
    b->closing = true;
    /* Jobs first: every call ends (GW_ECLOSED), jobs waiting on a timer are
     * closed; their messages stay undone, so Kafka gives them again to the
     * next bridge. Then the dead letters in flight, then the consumers. */
    for (struct job *j = b->jobs; j != NULL; j = j->next)
        j->closing = true;
    pb_calls_destroy(b->calls);
    b->calls = NULL;
    struct job *j = b->jobs;
    while (j != NULL) {
        struct job *next = j->next;
        job_maybe_free(j);
        j = next;
    }
    gw_kafka_producer_destroy(b->producer, 5000);
    gw_kafka_consumer_destroy(b->runs);
    gw_kafka_consumer_destroy(b->catalog);
    pb_mapping_destroy(b->map);
    free(b);
}
