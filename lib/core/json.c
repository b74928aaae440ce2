/* Request bodies that survive every later step: see gw/json.h. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/json.h"
#include "gw/jsonptr.h"

/* 2^63: the first magnitude PostgreSQL writes back as an integer literal
 * that does not fit jansson's int64. */
#define PORTABLE_LIMIT 9223372036854775808.0

static int walk(const json_t *v, struct gw_jsonptr *ptr, struct gw_json_fault *f)
{
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || fabs(d) >= PORTABLE_LIMIT) {
            f->status = 422;
            f->code = "number_out_of_range";
            f->keyword = "maximum";
            f->pointer = gw_jsonptr_steal(ptr);
            snprintf(f->message, sizeof(f->message),
                     "the number %.17g cannot be kept exactly: numbers must be below 2^63 "
                     "(9223372036854775808) in magnitude",
                     d);
            return -1;
        }
    } else if (json_is_object(v)) {
        const char *k;
        size_t klen, len = ptr->len;
        json_t *m;
        json_object_keylen_foreach((json_t *)v, k, klen, m)
        {
            /* Out of memory for a longer pointer: the parent's will do. */
            (void)gw_jsonptr_push_n(ptr, k, klen);
            if (walk(m, ptr, f) < 0)
                return -1;
            gw_jsonptr_truncate(ptr, len);
        }
    } else if (json_is_array(v)) {
        size_t i, len = ptr->len;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            (void)gw_jsonptr_push_index(ptr, i);
            if (walk(m, ptr, f) < 0)
                return -1;
            gw_jsonptr_truncate(ptr, len);
        }
    }
    return 0;
}

int gw_json_check_portable(const json_t *doc, struct gw_json_fault *f)
{
    struct gw_jsonptr ptr = GW_JSONPTR_INIT;
    memset(f, 0, sizeof(*f));
    int rc = walk(doc, &ptr, f);
    gw_jsonptr_finish(&ptr);
    return rc;
}

void gw_json_fault_finish(struct gw_json_fault *f)
{
    if (f == NULL)
        return;
    free(f->pointer);
    f->pointer = NULL;
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
