#include "exec_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The outputs of a result, like the outputs file of a per-run program. */
#define OUTPUTS_MAX (1024 * 1024)

static void msg_clear(struct exec_msg *m)
{
    memset(m, 0, sizeof(*m));
}

void gw_exec_msg_finish(struct exec_msg *m)
{
    if (m == NULL)
        return;
    json_decref(m->doc);
    msg_clear(m);
}

static int fail(struct exec_msg *m, char *why, size_t whysz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct exec_msg *m, char *why, size_t whysz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whysz, fmt, ap);
    va_end(ap);
    gw_exec_msg_finish(m);
    return -1;
}

static bool is_int(json_t *v, json_int_t lo, json_int_t hi)
{
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

int gw_exec_msg_parse(const char *line, size_t len, struct exec_msg *m, char *why, size_t whysz)
{
    json_error_t jerr;
    json_t *v;
    const char *type;

    msg_clear(m);
    if (len > GW_EXEC_LINE_MAX)
        return fail(m, why, whysz, "line longer than %d bytes", GW_EXEC_LINE_MAX);
    if (len == 0)
        return fail(m, why, whysz, "empty line");
    /* JSON_DISABLE_EOF_CHECK off: trailing garbage after the object is an error. */
    m->doc = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (m->doc == NULL)
        return fail(m, why, whysz, "not JSON: %s", jerr.text);
    if (!json_is_object(m->doc))
        return fail(m, why, whysz, "not a JSON object");
    type = json_string_value(json_object_get(m->doc, "type"));
    if (type == NULL)
        return fail(m, why, whysz, "no \"type\" string");
    if (strcmp(type, "hello") == 0) {
        m->type = EXEC_MSG_HELLO;
        v = json_object_get(m->doc, "protocol");
        if (!is_int(v, 1, 1000))
            return fail(m, why, whysz, "hello: \"protocol\" must be a positive integer");
        m->protocol = (int)json_integer_value(v);
        return 0;
    }
    m->id = json_string_value(json_object_get(m->doc, "id"));
    if (m->id == NULL || *m->id == '\0')
        return fail(m, why, whysz, "%s: no \"id\" string", type);
    if (strcmp(type, "log") == 0) {
        m->type = EXEC_MSG_LOG;
        v = json_object_get(m->doc, "stream");
        m->stream = v == NULL ? "stdout" : json_string_value(v);
        if (m->stream == NULL ||
            (strcmp(m->stream, "stdout") != 0 && strcmp(m->stream, "stderr") != 0))
            return fail(m, why, whysz, "log: \"stream\" must be \"stdout\" or \"stderr\"");
        v = json_object_get(m->doc, "line");
        if (!json_is_string(v))
            return fail(m, why, whysz, "log: no \"line\" string");
        m->line = json_string_value(v);
        m->line_len = json_string_length(v);
        return 0;
    }
    if (strcmp(type, "cancelled") == 0) {
        m->type = EXEC_MSG_CANCELLED;
        return 0;
    }
    if (strcmp(type, "result") == 0) {
        const char *status = json_string_value(json_object_get(m->doc, "status"));
        m->type = EXEC_MSG_RESULT;
        if (status != NULL && strcmp(status, "succeeded") == 0) {
            char *text;
            size_t n;
            m->succeeded = true;
            v = json_object_get(m->doc, "outputs");
            if (v == NULL) {
                v = json_object();
                if (v == NULL || json_object_set_new(m->doc, "outputs", v) < 0)
                    return fail(m, why, whysz, "out of memory");
            }
            if (!json_is_object(v))
                return fail(m, why, whysz, "result: \"outputs\" must be an object");
            text = json_dumps(v, JSON_COMPACT);
            n = text != NULL ? strlen(text) : 0;
            free(text);
            if (n > OUTPUTS_MAX)
                return fail(m, why, whysz, "result: outputs larger than %d bytes", OUTPUTS_MAX);
            m->outputs = v;
            return 0;
        }
        if (status != NULL && strcmp(status, "failed") == 0) {
            v = json_object_get(m->doc, "message");
            if (v != NULL && !json_is_string(v))
                return fail(m, why, whysz, "result: \"message\" must be a string");
            m->message = json_string_value(v);
            v = json_object_get(m->doc, "exit_code");
            if (v != NULL && !is_int(v, 0, 255))
                return fail(m, why, whysz, "result: \"exit_code\" must be an integer 0..255");
            m->exit_code = v != NULL ? (int)json_integer_value(v) : 1;
            return 0;
        }
        return fail(m, why, whysz, "result: \"status\" must be \"succeeded\" or \"failed\"");
    }
    return fail(m, why, whysz, "unknown type \"%.64s\"", type);
}

/* One compact JSON object and a newline; steals `o`. */
static char *line_of(json_t *o)
{
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL, *out = NULL;
    json_decref(o);
    if (text != NULL) {
        size_t n = strlen(text);
        out = realloc(text, n + 2);
        if (out == NULL) {
            free(text);
            return NULL;
        }
        out[n] = '\n';
        out[n + 1] = '\0';
    }
    return out;
}

char *gw_exec_line_hello(void)
{
    return line_of(json_pack("{s:s, s:i}", "type", "hello", "protocol", GW_EXEC_PROTOCOL));
}

char *gw_exec_line_run(json_t *run)
{
    if (run == NULL || json_object_set_new(run, "type", json_string("run")) < 0) {
        json_decref(run);
        return NULL;
    }
    return line_of(run);
}

char *gw_exec_line_cancel(const char *id, const char *reason)
{
    return line_of(json_pack("{s:s, s:s, s:s}", "type", "cancel", "id", id, "reason", reason));
}
