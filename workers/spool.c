#include "spool.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

/* The compact JSON of `j` with a '\n', stolen. */
static char *line_of(json_t *j, size_t *n)
{
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    size_t len;
    char *out;
    json_decref(j);
    if (s == NULL)
        return NULL;
    len = strlen(s);
    out = realloc(s, len + 2);
    if (out == NULL) {
        free(s);
        return NULL;
    }
    out[len] = '\n';
    out[len + 1] = '\0';
    *n = len + 1;
    return out;
}

char *gw_spool_log_text(long i, const char *stream, const char *line, size_t len, size_t *n)
{
    size_t clen;
    char *clean = gw_utf8_clean(line, len, &clen);
    char *out;
    if (clean == NULL)
        return NULL;
    out = line_of(json_pack("{s:I, s:s, s:s%}", "i", (json_int_t)i, "s", stream, "l", clean, clen),
                  n);
    free(clean);
    return out;
}

char *gw_spool_exit_text(long i, int64_t exit_status, int term_signal, const char *stop,
                         const char *message, size_t *n)
{
    json_t *j = json_pack("{s:I, s:I, s:i, s:s}", "i", (json_int_t)i, "exit",
                          (json_int_t)exit_status, "sig", term_signal, "stop", stop);
    if (j != NULL && message != NULL)
        json_object_set_new(j, "msg", json_string(message));
    return line_of(j, n);
}

static const char *const outcomes[] = {"succeeded", "failed", "timed_out", "cancelled"};

char *gw_spool_result_text(long i, int outcome, json_t *outputs, const char *reason, int exit_code,
                           const char *message, size_t *n)
{
    json_t *r;
    if (outcome < 0 || outcome > 3)
        return NULL;
    r = json_pack("{s:s, s:i}", "outcome", outcomes[outcome], "exit_code", exit_code);
    if (r == NULL)
        return NULL;
    if (outputs != NULL)
        json_object_set(r, "outputs", outputs);
    if (reason != NULL)
        json_object_set_new(r, "reason", json_string(reason));
    if (message != NULL)
        json_object_set_new(r, "message", json_string(message));
    return line_of(json_pack("{s:I, s:o}", "i", (json_int_t)i, "result", r), n);
}

char *gw_spool_rec_text(const struct gw_spool_rec *rec, size_t *n)
{
    return line_of(json_incref(rec->doc), n);
}

void gw_spool_rec_finish(struct gw_spool_rec *rec)
{
    if (rec == NULL)
        return;
    json_decref(rec->doc);
    memset(rec, 0, sizeof(*rec));
}

int gw_spool_parse(const char *text, size_t len, struct gw_spool_rec *rec)
{
    json_t *j, *i, *v;
    memset(rec, 0, sizeof(*rec));
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    i = json_object_get(j, "i");
    if (!json_is_object(j) || !json_is_integer(i) || json_integer_value(i) < 1)
        goto bad;
    rec->doc = j;
    rec->i = (long)json_integer_value(i);
    if ((v = json_object_get(j, "l")) != NULL) {
        rec->kind = GW_SPOOL_LOG;
        rec->stream = json_string_value(json_object_get(j, "s"));
        rec->line = json_string_value(v);
        rec->len = json_string_length(v);
        if (rec->line == NULL || rec->stream == NULL ||
            (strcmp(rec->stream, "stdout") != 0 && strcmp(rec->stream, "stderr") != 0))
            goto bad;
        return 0;
    }
    if ((v = json_object_get(j, "result")) != NULL) {
        const char *o = json_string_value(json_object_get(v, "outcome"));
        bool known = false;
        for (size_t k = 0; o != NULL && k < 4; k++)
            known = known || strcmp(o, outcomes[k]) == 0;
        if (!known)
            goto bad;
        rec->kind = GW_SPOOL_RESULT;
        rec->result = v;
        return 0;
    }
    rec->kind = GW_SPOOL_EXIT;
    v = json_object_get(j, "exit");
    rec->stop = json_string_value(json_object_get(j, "stop"));
    if (!json_is_integer(v) || !json_is_integer(json_object_get(j, "sig")) || rec->stop == NULL)
        goto bad;
    rec->exit_status = (int64_t)json_integer_value(v);
    rec->message = json_string_value(json_object_get(j, "msg"));
    rec->term_signal = (int)json_integer_value(json_object_get(j, "sig"));
    return 0;
bad:
    json_decref(j);
    memset(rec, 0, sizeof(*rec));
    return -1;
}

int gw_spool_read(const char *path, gw_spool_cb cb, void *arg, int *ended, struct gw_error *err)
{
    FILE *f;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int count = 0;
    if (ended != NULL)
        *ended = 0;
    f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        return gw_error_set(err, GW_EIO, true, "spool %s: %s", path, strerror(errno));
    }
    while ((n = getline(&buf, &cap, f)) > 0) {
        struct gw_spool_rec rec;
        /* A last line without its '\n' is a write a crash cut short. */
        if (buf[n - 1] != '\n' || gw_spool_parse(buf, (size_t)n - 1, &rec) < 0)
            break;
        if (rec.i != count + 1) {
            gw_spool_rec_finish(&rec);
            break;
        }
        count++;
        cb(arg, &rec);
        if (rec.kind != GW_SPOOL_LOG) {
            if (ended != NULL)
                *ended = 1;
            gw_spool_rec_finish(&rec);
            break;
        }
        gw_spool_rec_finish(&rec);
    }
    free(buf);
    fclose(f);
    return count;
}
