/* Request bodies that survive every later step: see gw/json.h. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gw/json.h"

/* 2^63: the first magnitude PostgreSQL writes back as an integer literal
 * that does not fit jansson's int64. */
#define PORTABLE_LIMIT 9223372036854775808.0

/* Appends "/token" with RFC 6901 escaping; false when it does not fit. */
static bool ptr_push(char *ptr, size_t cap, size_t *len, const char *token)
{
    size_t n = *len;
    if (n + 1 >= cap)
        return false;
    ptr[n++] = '/';
    for (const char *p = token; *p != '\0'; p++) {
        const char *esc = *p == '~' ? "~0" : *p == '/' ? "~1" : NULL;
        size_t need = esc != NULL ? 2 : 1;
        if (n + need >= cap)
            return false;
        if (esc != NULL) {
            ptr[n++] = esc[0];
            ptr[n++] = esc[1];
        } else {
            ptr[n++] = *p;
        }
    }
    ptr[n] = '\0';
    *len = n;
    return true;
}

static int walk(const json_t *v, char *ptr, size_t cap, size_t len, struct gw_json_fault *f)
{
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || fabs(d) >= PORTABLE_LIMIT) {
            f->status = 422;
            f->code = "number_out_of_range";
            f->keyword = "maximum";
            snprintf(f->pointer, sizeof(f->pointer), "%s", ptr);
            snprintf(f->message, sizeof(f->message),
                     "the number %.17g cannot be kept exactly: numbers must be below 2^63 "
                     "(9223372036854775808) in magnitude",
                     d);
            return -1;
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m)
        {
            size_t l = len;
            if (!ptr_push(ptr, cap, &l, k))
                l = len; /* too deep to name: the parent's pointer will do */
            if (walk(m, ptr, cap, l, f) < 0)
                return -1;
            ptr[len] = '\0';
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            char idx[24];
            size_t l = len;
            snprintf(idx, sizeof(idx), "%zu", i);
            if (!ptr_push(ptr, cap, &l, idx))
                l = len;
            if (walk(m, ptr, cap, l, f) < 0)
                return -1;
            ptr[len] = '\0';
        }
    }
    return 0;
}

int gw_json_check_portable(const json_t *doc, struct gw_json_fault *f)
{
    char ptr[sizeof(f->pointer)] = "";
    return walk(doc, ptr, sizeof(ptr), 0, f);
}

json_t *gw_json_parse_request(const char *buf, size_t len, struct gw_json_fault *f)
{
    json_error_t jerr;
    json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    memset(f, 0, sizeof(*f));
    if (doc == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        /* An integer beyond int64: read it as a double to name where it is.
         * (A real beyond double fails again and is reported below.) */
        json_t *again =
            json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, NULL);
        if (again != NULL) {
            int rc = gw_json_check_portable(again, f);
            json_decref(again);
            if (rc < 0)
                return NULL;
        }
    }
    if (doc == NULL) {
        f->status = 400;
        f->code = "invalid_json";
        f->keyword = "type";
        snprintf(f->message, sizeof(f->message),
                 "the body is not valid JSON: %s (line %d, column %d, byte %d)", jerr.text,
                 jerr.line, jerr.column, jerr.position);
        return NULL;
    }
    if (gw_json_check_portable(doc, f) < 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}
