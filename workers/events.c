#include "events.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw/cloudevent.h"
#include "gw/utf8.h"

void gw_event_time_now(char *buf, size_t n)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now.tv_nsec / 1000000));
}

/* o[k] when it is a string, else NULL; borrowed from o. */
static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

void gw_run_request_finish(struct gw_run_request *r)
{
    if (r == NULL)
        return;
    json_decref(r->doc);
    memset(r, 0, sizeof(*r));
}

/* Parses a CloudEvents 1.0 JSON envelope (lib/gw/cloudevent.h) of `type`;
 * NULL with `why` set when it is not one. */
static json_t *envelope(const char *payload, size_t len, const char *type, char *why, size_t whysz)
{
    const char *t;
    int code;
    json_t *ev = gw_cloudevent_parse(payload, len, &t, &code, why, whysz);
    if (ev != NULL && strcmp(t, type) != 0) {
        snprintf(why, whysz, "unexpected event type '%s'", t);
        json_decref(ev);
        return NULL;
    }
    return ev;
}

/* data.run_id present and data.attempt a positive integer. */
static bool run_and_attempt_ok(json_t *data, const char *run_id, char *why, size_t whysz)
{
    json_t *a = json_object_get(data, "attempt");
    if (!json_is_object(data) || run_id == NULL || run_id[0] == '\0' || !json_is_integer(a) ||
        json_integer_value(a) < 1 || json_integer_value(a) > 1000000) {
        snprintf(why, whysz, "data must carry run_id and a positive integer attempt");
        return false;
    }
    return true;
}

/* Opens an event about one attempt of a run: the envelope of `type`, its
 * id, and data.run_id and data.attempt checked. Returns the event, which
 * the strings point into (the caller keeps it and reads the rest of data),
 * or NULL with `why` set and the strings left NULL. */
static json_t *run_event_open(const char *payload, size_t len, const char *type,
                              const char **event_id, const char **run_id, int *attempt, char *why,
                              size_t whysz)
{
    json_t *ev = envelope(payload, len, type, why, whysz), *data;
    if (ev == NULL)
        return NULL;
    data = json_object_get(ev, "data");
    if (!run_and_attempt_ok(data, str(data, "run_id"), why, whysz)) {
        json_decref(ev);
        return NULL;
    }
    *event_id = str(ev, "id");
    *run_id = str(data, "run_id");
    *attempt = (int)json_integer_value(json_object_get(data, "attempt"));
    return ev;
}

int gw_run_request_parse(const char *payload, size_t len, struct gw_run_request *out, char *why,
                         size_t whysz)
{
    json_t *data, *a;
    memset(out, 0, sizeof(*out));
    out->doc = run_event_open(payload, len, "dev.gangway.run.requested", &out->event_id,
                              &out->run_id, &out->attempt, why, whysz);
    if (out->doc == NULL)
        return -1;
    data = json_object_get(out->doc, "data");
    out->action_id = str(data, "action_id");
    out->action_version = str(data, "action_version");
    out->worker_type = str(data, "worker_type");
    out->key = str(data, "key");
    a = json_object_get(data, "timeout_seconds");
    out->timeout_seconds = json_is_integer(a) ? (int)json_integer_value(a) : 0;
    return 0;
}

void gw_cancel_request_finish(struct gw_cancel_request *r)
{
    if (r == NULL)
        return;
    json_decref(r->doc);
    memset(r, 0, sizeof(*r));
}

int gw_cancel_request_parse(const char *payload, size_t len, struct gw_cancel_request *out,
                            char *why, size_t whysz)
{
    json_t *data;
    memset(out, 0, sizeof(*out));
    out->doc = run_event_open(payload, len, "dev.gangway.run.cancel", &out->event_id, &out->run_id,
                              &out->attempt, why, whysz);
    if (out->doc == NULL)
        return -1;
    data = json_object_get(out->doc, "data");
    /* Informational: a process matches on run id and attempt alone. */
    out->worker_type = str(data, "worker_type");
    out->worker_id = str(data, "worker_id");
    out->reason = str(data, "reason");
    return 0;
}

void gw_drain_request_finish(struct gw_drain_request *r)
{
    if (r == NULL)
        return;
    json_decref(r->doc);
    memset(r, 0, sizeof(*r));
}

int gw_drain_request_parse(const char *payload, size_t len, struct gw_drain_request *out, char *why,
                           size_t whysz)
{
    const char *t;
    int code;
    json_t *data, *ev = gw_cloudevent_parse(payload, len, &t, &code, why, whysz);
    memset(out, 0, sizeof(*out));
    if (ev == NULL)
        return -1;
    if (strcmp(t, "dev.gangway.worker.drain") != 0) {
        snprintf(why, whysz, "unexpected event type '%s'", t);
        json_decref(ev);
        return -2;
    }
    data = json_object_get(ev, "data");
    if (str(data, "worker_id") == NULL || str(data, "worker_id")[0] == '\0') {
        snprintf(why, whysz, "a drain request must carry data.worker_id");
        json_decref(ev);
        return -1;
    }
    out->doc = ev;
    out->event_id = str(ev, "id");
    out->worker_id = str(data, "worker_id");
    out->reason = str(data, "reason");
    out->requested_by = str(data, "requested_by");
    return 0;
}

char *gw_event_build(const char *kind, const char *run_id, int attempt, long seq,
                     const char *worker_id, json_t *data)
{
    char type[96], id[200], source[200], ts[40];
    json_t *ev;
    char *out;
    if (data == NULL)
        data = json_object();
    if (data == NULL)
        return NULL;
    json_object_set_new(data, "run_id", json_string(run_id));
    json_object_set_new(data, "attempt", json_integer(attempt));
    json_object_set_new(data, "seq", json_integer(seq));
    json_object_set_new(data, "worker_id", json_string(worker_id));
    snprintf(type, sizeof(type), "dev.gangway.run.%s", kind);
    snprintf(id, sizeof(id), "%s/%d/%ld", run_id, attempt, seq);
    snprintf(source, sizeof(source), "gangway/worker/%s", worker_id);
    gw_event_time_now(ts, sizeof(ts));
    ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", id,
                   "source", source, "type", type, "subject", run_id, "time", ts, "datacontenttype",
                   "application/json", "data", data);
    if (ev == NULL)
        return NULL;
    out = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return out;
}

char *gw_event_deadletter(const char *worker_id, const char *topic, int partition, long long offset,
                          const char *payload, size_t len, const char *reason)
{
    char id[300], source[200], ts[40];
    size_t clen;
    char *clean = gw_utf8_clean(payload, len, &clen);
    json_t *ev;
    char *out;
    snprintf(id, sizeof(id), "%s/%d/%lld", topic, partition, offset);
    snprintf(source, sizeof(source), "gangway/worker/%s", worker_id);
    gw_event_time_now(ts, sizeof(ts));
    ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:i, s:I, s:s%}}",
                   "specversion", "1.0", "id", id, "source", source, "type",
                   "dev.gangway.deadletter", "subject", id, "time", ts, "datacontenttype",
                   "application/json", "data", "reason", reason, "topic", topic, "partition",
                   partition, "offset", (json_int_t)offset, "payload", clean ? clean : "", clen);
    free(clean);
    if (ev == NULL)
        return NULL;
    out = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return out;
}

char *gw_utf8_clean(const char *s, size_t len, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)s;
    char *out = malloc(len * 3 + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        /* NUL too is replaced: the result is a C string. */
        size_t n = p[i] == 0 ? 0 : gw_utf8_next(p + i, len - i, &cp);
        if (n == 0) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(o, p + i, n);
            o += n;
            i += n;
        }
    }
    *o = '\0';
    if (out_len != NULL)
        *out_len = (size_t)(o - out);
    return out;
}
