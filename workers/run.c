/* The run context functions backends call; they forward to the sink once. */
#include "backend.h"

#include <stdlib.h>
#include <string.h>
#include "gw/jsonptr.h"
#include "gw/log.h"

static void add_variant(json_t *out, const char *s, size_t len)
{
    if (len >= 3)
        json_array_append_new(out, json_stringn(s, len));
}

json_t *gw_run_secret_values(json_t *inputs, json_t *secret_paths)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char hex[] = "0123456789ABCDEF";
    json_t *out = json_array();
    size_t i;
    json_t *p;

    json_array_foreach(secret_paths, i, p)
    {
        json_t *v = json_is_string(p) ? gw_jsonptr_get(inputs, json_string_value(p)) : NULL;
        char *text;
        size_t len;
        if (v == NULL)
            continue;
        if (json_is_string(v)) {
            text = strndup(json_string_value(v), json_string_length(v));
            len = json_string_length(v);
        } else {
            text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            len = text ? strlen(text) : 0;
        }
        if (text == NULL)
            continue;
        add_variant(out, text, len);
        /* base64, as a program might log an Authorization header. */
        char *enc = malloc(len / 3 * 4 + 8), *e = enc;
        if (enc != NULL) {
            size_t k = 0;
            for (; k + 2 < len; k += 3) {
                unsigned x = ((unsigned char)text[k] << 16) | ((unsigned char)text[k + 1] << 8) |
                             (unsigned char)text[k + 2];
                *e++ = b64[x >> 18];
                *e++ = b64[(x >> 12) & 63];
                *e++ = b64[(x >> 6) & 63];
                *e++ = b64[x & 63];
            }
            if (k < len) {
                unsigned x = (unsigned char)text[k] << 16;
                if (k + 1 < len)
                    x |= (unsigned char)text[k + 1] << 8;
                *e++ = b64[x >> 18];
                *e++ = b64[(x >> 12) & 63];
                *e++ = k + 1 < len ? b64[(x >> 6) & 63] : '=';
                *e++ = '=';
            }
            /* Without padding too: the prefix of a padded form is a match. */
            size_t full = (size_t)(e - enc);
            add_variant(out, enc, full);
            while (full > 0 && enc[full - 1] == '=')
                full--;
            if (full != (size_t)(e - enc))
                add_variant(out, enc, full);
            free(enc);
        }
        /* URL (percent) encoding, as in a query string. */
        char *url = malloc(len * 3 + 1), *u = url;
        if (url != NULL) {
            for (size_t k = 0; k < len; k++) {
                unsigned char c = (unsigned char)text[k];
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~') {
                    *u++ = (char)c;
                } else {
                    *u++ = '%';
                    *u++ = hex[c >> 4];
                    *u++ = hex[c & 15];
                }
            }
            if ((size_t)(u - url) != len)
                add_variant(out, url, (size_t)(u - url));
            free(url);
        }
        free(text);
    }
    return out;
}

/* Returns a copy of line with every secret value replaced, or NULL when
 * nothing matched (the caller then uses the line as it is). */
static char *mask_secrets(json_t *secrets, const char *line, size_t len, size_t *out_len)
{
    static const char mask[] = "[redacted]";
    char *cur = NULL;
    size_t cur_len = len;
    size_t i;
    json_t *v;

    json_array_foreach(secrets, i, v)
    {
        const char *needle = json_string_value(v);
        size_t nlen = json_string_length(v);
        const char *src = cur != NULL ? cur : line;
        if (nlen == 0 || memmem(src, cur_len, needle, nlen) == NULL)
            continue;
        /* Worst case every byte starts a match: bound the new length. */
        size_t cap = cur_len / nlen * sizeof(mask) + cur_len + 1;
        char *next = malloc(cap), *o = next;
        if (next == NULL)
            continue;
        const char *p = src, *end = src + cur_len, *hit;
        while ((hit = memmem(p, (size_t)(end - p), needle, nlen)) != NULL) {
            memcpy(o, p, (size_t)(hit - p));
            o += hit - p;
            memcpy(o, mask, sizeof(mask) - 1);
            o += sizeof(mask) - 1;
            p = hit + nlen;
        }
        memcpy(o, p, (size_t)(end - p));
        o += end - p;
        free(cur);
        cur = next;
        cur_len = (size_t)(o - next);
    }
    *out_len = cur_len;
    return cur;
}

void gw_run_log(struct gw_run *run, const char *stream, const char *line, size_t len)
{
    char *masked = NULL;

    if (run->finished)
        return;
    if (json_array_size(run->secret_values) > 0) {
        size_t mlen;
        masked = mask_secrets(run->secret_values, line, len, &mlen);
        if (masked != NULL) {
            line = masked;
            len = mlen;
        }
    }
    /* A supervised run's lines are numbered by its spool, one event each
     * (the supervisor already split them): a line that masking made longer
     * is cut, not split, so the numbering stays the spool's. */
    if (run->supervised && len > GW_RUN_LOG_LINE_MAX)
        len = GW_RUN_LOG_LINE_MAX;
    while (len > GW_RUN_LOG_LINE_MAX) {
        run->sink->log(run, stream, line, GW_RUN_LOG_LINE_MAX);
        line += GW_RUN_LOG_LINE_MAX;
        len -= GW_RUN_LOG_LINE_MAX;
    }
    run->sink->log(run, stream, line, len);
    free(masked);
}

static void finish(struct gw_run *run, const struct gw_run_result *res)
{
    if (run->finished) {
        /* A backend bug; never report two outcomes for one attempt. */
        gw_log(GW_LOG_ERROR, run->run_id, "backend finished the run twice; ignored");
        return;
    }
    run->finished = true;
    run->sink->finish(run, res);
}

void gw_run_finish_succeeded(struct gw_run *run, json_t *outputs)
{
    struct gw_run_result r = {.outcome = GW_RUN_SUCCEEDED, .exit_code = 0};
    r.outputs = outputs != NULL ? outputs : json_object();
    finish(run, &r);
    json_decref(r.outputs);
}

void gw_run_finish_failed(struct gw_run *run, const char *reason, int exit_code,
                          const char *message)
{
    struct gw_run_result r = {
        .outcome = GW_RUN_FAILED, .reason = reason, .exit_code = exit_code, .message = message};
    finish(run, &r);
}

void gw_run_finish_failed_with(struct gw_run *run, const char *reason, int exit_code,
                               const char *message, json_t *outputs)
{
    struct gw_run_result r = {.outcome = GW_RUN_FAILED,
                              .reason = reason,
                              .exit_code = exit_code,
                              .message = message,
                              .outputs = outputs};
    finish(run, &r);
    json_decref(outputs);
}

void gw_run_finish_timed_out(struct gw_run *run, const char *message)
{
    struct gw_run_result r = {.outcome = GW_RUN_TIMED_OUT, .exit_code = -1, .message = message};
    finish(run, &r);
}

void gw_run_finish_detached(struct gw_run *run)
{
    struct gw_run_result r = {.outcome = GW_RUN_DETACHED, .exit_code = -1};
    finish(run, &r);
}

void gw_run_finish_cancelled(struct gw_run *run, const char *message)
{
    struct gw_run_result r = {.outcome = GW_RUN_CANCELLED, .exit_code = -1, .message = message};
    finish(run, &r);
}

char *gw_run_mask_text(const struct gw_run *run, const char *text)
{
    size_t len;
    char *masked;
    if (text == NULL || json_array_size(run->secret_values) == 0)
        return NULL;
    masked = mask_secrets(run->secret_values, text, strlen(text), &len);
    if (masked != NULL) {
        char *z = realloc(masked, len + 1);
        if (z == NULL) {
            free(masked);
            return NULL;
        }
        z[len] = '\0';
        masked = z;
    }
    return masked;
}

json_t *gw_run_mask_json(const struct gw_run *run, json_t *value)
{
    if (value == NULL)
        return NULL;
    if (json_array_size(run->secret_values) == 0)
        return json_incref(value);
    if (json_is_string(value)) {
        char *m = gw_run_mask_text(run, json_string_value(value));
        if (m == NULL)
            return json_incref(value);
        json_t *out = json_string(m);
        free(m);
        return out != NULL ? out : json_string("[redacted]");
    }
    if (json_is_object(value)) {
        json_t *out = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(value, k, v)
        {
            char *mk = gw_run_mask_text(run, k);
            json_object_set_new(out, mk != NULL ? mk : k, gw_run_mask_json(run, v));
            free(mk);
        }
        return out;
    }
    if (json_is_array(value)) {
        json_t *out = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(value, i, v) json_array_append_new(out, gw_run_mask_json(run, v));
        return out;
    }
    return json_incref(value);
}
