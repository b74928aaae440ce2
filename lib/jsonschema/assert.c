/* Assertion keywords: checks on one instance value that apply no subschema. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Only built when errors are reported (see failx). */
#define LIMIT (gw__js_vctx_reporting(c) ? limit_of(k) : NULL)

struct js_vctx;
void gw__js_vctx_emit(struct js_vctx *c, const struct js_kw *k, const char *msg, json_t *extra);
bool gw__js_vctx_reporting(const struct js_vctx *c);
bool gw__js_validate_assertion(struct js_vctx *c, const struct js_kw *k, json_t *inst);

/* An enum's allowed values listed in an error: at most this many (the rest
 * are counted as "and N more" / "omitted"), each quoted in the message up to
 * QUOTE_MAX bytes. */
#define ENUM_LIST_MAX 20
#define QUOTE_MAX     60

/* Reports a failure of `k` with `extra` (stolen, may be NULL): members
 * added to the error object that say what would have been accepted. */
static bool failx(struct js_vctx *c, const struct js_kw *k, json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool failx(struct js_vctx *c, const struct js_kw *k, json_t *extra, const char *fmt, ...)
{
    if (!gw__js_vctx_reporting(c)) {
        json_decref(extra);
        return false;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gw__js_vctx_emit(c, k, msg, extra);
    return false;
}

#define fail(c, k, ...) failx((c), (k), NULL, __VA_ARGS__)

/* {"limit": <the keyword's value as written>} for bounds. */
static json_t *limit_of(const struct js_kw *k)
{
    json_t *v = k->value ? json_deep_copy(k->value) : json_integer((json_int_t)k->u.count);
    return v ? json_pack("{s:o}", "limit", v) : NULL;
}

/* Appends `v` as compact JSON to buf (at offset *off, capacity n), cut at
 * QUOTE_MAX bytes on a character boundary with "..." after it. */
static void quote_value(json_t *v, char *buf, size_t n, size_t *off)
{
    char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!d)
        return;
    size_t len = strlen(d);
    bool cut = len > QUOTE_MAX;
    if (cut) {
        len = QUOTE_MAX - 3;
        while (len > 0 && ((unsigned char)d[len] & 0xC0) == 0x80)
            len--;
    }
    int w = snprintf(buf + *off, n - *off, "%.*s%s", (int)len, d, cut ? "..." : "");
    if (w > 0)
        *off = (size_t)w >= n - *off ? n - 1 : *off + (size_t)w;
    free(d);
}

/* "value must be one of: "a", "b" (and 3 more)" with
 * {"allowed": [listed values], "omitted": 3}. */
static bool fail_enum(struct js_vctx *c, const struct js_kw *k)
{
    if (!gw__js_vctx_reporting(c))
        return false;
    size_t total = json_array_size(k->u.json), listed = 0;
    if (total == 0)
        return failx(c, k, json_pack("{s:[]}", "allowed"),
                     "no value is allowed (the enum is empty)");
    char msg[900];
    size_t off = 0;
    json_t *allowed = json_array();
    if (!allowed)
        return fail(c, k, "value is not one of the %zu allowed values", total);
    off = (size_t)snprintf(msg, sizeof(msg), "value must be %s", total == 1 ? "" : "one of: ");
    for (; listed < total && listed < ENUM_LIST_MAX; listed++) {
        /* Room for one more quoted value, its separator and the tail. */
        if (sizeof(msg) - off < QUOTE_MAX + 40)
            break;
        if (listed)
            off += (size_t)snprintf(msg + off, sizeof(msg) - off, ", ");
        json_t *v = json_array_get(k->u.json, listed);
        quote_value(v, msg, sizeof(msg), &off);
        json_array_append(allowed, v);
    }
    json_t *extra = json_pack("{s:o}", "allowed", allowed);
    if (listed < total) {
        snprintf(msg + off, sizeof(msg) - off, " (and %zu more)", total - listed);
        if (extra)
            json_object_set_new(extra, "omitted", json_integer((json_int_t)(total - listed)));
    }
    return failx(c, k, extra, "%s", msg);
}

static bool fail_const(struct js_vctx *c, const struct js_kw *k)
{
    if (!gw__js_vctx_reporting(c))
        return false;
    char q[QUOTE_MAX + 8];
    size_t off = 0;
    q[0] = '\0';
    quote_value(k->u.json, q, sizeof(q), &off);
    return failx(c, k, json_pack("{s:[O]}", "allowed", k->u.json), "value must be %s", q);
}

static const char *type_name(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static bool type_ok(unsigned types, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return types & T_NULL;
    case JSON_TRUE:
    case JSON_FALSE:
        return types & T_BOOL;
    case JSON_OBJECT:
        return types & T_OBJECT;
    case JSON_ARRAY:
        return types & T_ARRAY;
    case JSON_STRING:
        return types & T_STRING;
    default:
        return (types & T_NUMBER) || ((types & T_INTEGER) && gw__js_is_integer(v));
    }
}

static void types_str(unsigned types, char *buf, size_t n)
{
    static const char *const names[] = {"null",   "boolean", "object", "array",
                                        "number", "string",  "integer"};
    size_t off = 0;
    buf[0] = '\0';
    for (size_t b = 0; b < ARRAY_SIZE(names); b++) {
        if (!(types & (1u << b)))
            continue;
        int w = snprintf(buf + off, n - off, "%s%s", off ? " or " : "", names[b]);
        if (w < 0 || (size_t)w >= n - off)
            break;
        off += (size_t)w;
    }
}

/* {"expected": ["string", ...], "actual": "integer"} for a type failure. */
static json_t *type_report(unsigned types, json_t *v)
{
    static const char *const names[] = {"null",   "boolean", "object", "array",
                                        "number", "string",  "integer"};
    json_t *exp = json_array();
    for (size_t b = 0; exp && b < ARRAY_SIZE(names); b++)
        if (types & (1u << b))
            json_array_append_new(exp, json_string(names[b]));
    return exp ? json_pack("{s:o, s:s}", "expected", exp, "actual", type_name(v)) : NULL;
}

/* The pattern as written, JSON-quoted (cut like an enum value). */
static const char *pattern_quoted(const struct js_kw *k, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    if (k->value)
        quote_value(k->value, buf, n, &off);
    return buf;
}

static bool multiple_of(json_t *x, json_t *m)
{
    if (json_is_integer(x) && json_is_integer(m)) {
        json_int_t d = json_integer_value(m);
        return d == -1 || d == 1 || json_integer_value(x) % d == 0;
    }
    double q = json_number_value(x) / json_number_value(m);
    if (!isfinite(q))
        return false;
    /* Decimal divisors (0.01) are inexact in binary: accept a quotient
     * within rounding noise of an integer. */
    return fabs(q - nearbyint(q)) < 1e-9;
}

static double num(json_t *v)
{
    return json_number_value(v);
}

static bool v_number(struct js_vctx *c, const struct js_kw *k, json_t *inst)
{
    int cmp = gw__js_num_cmp(inst, k->u.json);
    switch (k->type) {
    case KW_MULTIPLEOF:
        return multiple_of(inst, k->u.json) ||
               failx(c, k, LIMIT, "%g is not a multiple of %g", num(inst), num(k->u.json));
    case KW_MAXIMUM:
        return cmp <= 0 ||
               failx(c, k, LIMIT, "%g is greater than the maximum %g", num(inst), num(k->u.json));
    case KW_EXMAXIMUM:
        return cmp < 0 || failx(c, k, LIMIT, "%g is not less than the exclusive maximum %g",
                                num(inst), num(k->u.json));
    case KW_MINIMUM:
        return cmp >= 0 ||
               failx(c, k, LIMIT, "%g is less than the minimum %g", num(inst), num(k->u.json));
    default:
        return cmp > 0 || failx(c, k, LIMIT, "%g is not greater than the exclusive minimum %g",
                                num(inst), num(k->u.json));
    }
}

static bool v_unique(struct js_vctx *c, const struct js_kw *k, json_t *inst)
{
    size_t n = json_array_size(inst);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (gw__js_json_equal(json_array_get(inst, i), json_array_get(inst, j)))
                return fail(c, k, "items %zu and %zu are equal", i, j);
    return true;
}

static bool v_required(struct js_vctx *c, const struct js_kw *k, json_t *inst, json_t *req,
                       const char *because)
{
    bool ok = true;
    size_t i;
    json_t *name;
    json_array_foreach(req, i, name)
    {
        if (!json_is_string(name) || json_object_get(inst, json_string_value(name)))
            continue;
        ok = false;
        json_t *extra = gw__js_vctx_reporting(c) ? json_pack("{s:O}", "property", name) : NULL;
        if (because)
            failx(c, k, extra, "property \"%s\" is required when \"%s\" is present",
                  json_string_value(name), because);
        else
            failx(c, k, extra, "property \"%s\" is required", json_string_value(name));
    }
    return ok;
}

bool gw__js_validate_assertion(struct js_vctx *c, const struct js_kw *k, json_t *inst)
{
    char buf[128];
    switch (k->type) {
    case KW_TYPE:
        if (type_ok(k->u.types, inst))
            return true;
        types_str(k->u.types, buf, sizeof(buf));
        return failx(c, k, gw__js_vctx_reporting(c) ? type_report(k->u.types, inst) : NULL,
                     "expected %s, got %s", buf, type_name(inst));
    case KW_ENUM: {
        size_t i;
        json_t *v;
        json_array_foreach(k->u.json, i, v) if (gw__js_json_equal(v, inst)) return true;
        return fail_enum(c, k);
    }
    case KW_CONST:
        return gw__js_json_equal(k->u.json, inst) || fail_const(c, k);
    case KW_MULTIPLEOF:
    case KW_MAXIMUM:
    case KW_EXMAXIMUM:
    case KW_MINIMUM:
    case KW_EXMINIMUM:
        return !json_is_number(inst) || v_number(c, k, inst);
    case KW_MAXLENGTH:
    case KW_MINLENGTH: {
        if (!json_is_string(inst))
            return true;
        size_t len = json_string_length(inst);
        /* Byte length bounds code points from above and 4x from below. */
        if (k->type == KW_MAXLENGTH && len <= k->u.count)
            return true;
        if (k->type == KW_MINLENGTH && len / 4 >= k->u.count)
            return true;
        len = gw__js_utf8_len(json_string_value(inst), len);
        if (k->type == KW_MAXLENGTH)
            return len <= k->u.count ||
                   failx(c, k, LIMIT, "string has %zu characters, at most %zu allowed", len,
                         k->u.count);
        return len >= k->u.count ||
               failx(c, k, LIMIT, "string has %zu characters, at least %zu required", len,
                     k->u.count);
    }
    case KW_PATTERN:
        return !json_is_string(inst) ||
               gw__js_regex_match(k->u.re, json_string_value(inst), json_string_length(inst)) ||
               failx(c, k,
                     gw__js_vctx_reporting(c) ? json_pack("{s:O}", "pattern", k->value) : NULL,
                     "string does not match the pattern %s", pattern_quoted(k, buf, sizeof(buf)));
    case KW_FORMAT:
        if (!k->u.format.assert_always || !k->u.format.id || !json_is_string(inst))
            return true;
        return gw__js_format_check(k->u.format.id, json_string_value(inst),
                                   json_string_length(inst)) ||
               failx(c, k,
                     gw__js_vctx_reporting(c) ? json_pack("{s:s}", "format", k->u.format.name)
                                              : NULL,
                     "string is not a valid %s", k->u.format.name);
    case KW_MAXITEMS:
        return !json_is_array(inst) || json_array_size(inst) <= k->u.count ||
               failx(c, k, LIMIT, "array has %zu items, at most %zu allowed", json_array_size(inst),
                     k->u.count);
    case KW_MINITEMS:
        return !json_is_array(inst) || json_array_size(inst) >= k->u.count ||
               failx(c, k, LIMIT, "array has %zu items, at least %zu required",
                     json_array_size(inst), k->u.count);
    case KW_UNIQUE:
        return !json_is_array(inst) || v_unique(c, k, inst);
    case KW_MAXPROPS:
        return !json_is_object(inst) || json_object_size(inst) <= k->u.count ||
               failx(c, k, LIMIT, "object has %zu properties, at most %zu allowed",
                     json_object_size(inst), k->u.count);
    case KW_MINPROPS:
        return !json_is_object(inst) || json_object_size(inst) >= k->u.count ||
               failx(c, k, LIMIT, "object has %zu properties, at least %zu required",
                     json_object_size(inst), k->u.count);
    case KW_REQUIRED:
        return !json_is_object(inst) || v_required(c, k, inst, k->u.json, NULL);
    case KW_DEPREQUIRED: {
        bool ok = true;
        if (!json_is_object(inst))
            return true;
        for (size_t i = 0; i < k->u.dep.n; i++)
            if (json_object_get(inst, k->u.dep.names[i]) &&
                !v_required(c, k, inst, k->u.dep.reqs[i], k->u.dep.names[i]))
                ok = false;
        return ok;
    }
    default:
        return true;
    }
}
