/* Assertion keywords: checks on one instance value that apply no subschema. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

struct js_vctx;
void gw__js_vctx_emit(struct js_vctx *c, const struct js_kw *k, const char *msg);
bool gw__js_validate_assertion(struct js_vctx *c, const struct js_kw *k, json_t *inst);

static bool fail(struct js_vctx *c, const struct js_kw *k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(struct js_vctx *c, const struct js_kw *k, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gw__js_vctx_emit(c, k, msg);
    return false;
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
               fail(c, k, "%g is not a multiple of %g", num(inst), num(k->u.json));
    case KW_MAXIMUM:
        return cmp <= 0 ||
               fail(c, k, "%g is greater than the maximum %g", num(inst), num(k->u.json));
    case KW_EXMAXIMUM:
        return cmp < 0 || fail(c, k, "%g is not less than the exclusive maximum %g", num(inst),
                               num(k->u.json));
    case KW_MINIMUM:
        return cmp >= 0 || fail(c, k, "%g is less than the minimum %g", num(inst), num(k->u.json));
    default:
        return cmp > 0 || fail(c, k, "%g is not greater than the exclusive minimum %g", num(inst),
                               num(k->u.json));
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
        if (because)
            fail(c, k, "property \"%s\" is required when \"%s\" is present",
                 json_string_value(name), because);
        else
            fail(c, k, "property \"%s\" is required", json_string_value(name));
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
        return fail(c, k, "expected %s, got %s", buf, type_name(inst));
    case KW_ENUM: {
        size_t i;
        json_t *v;
        json_array_foreach(k->u.json, i, v) if (gw__js_json_equal(v, inst)) return true;
        return fail(c, k, "value is not one of the %zu allowed values", json_array_size(k->u.json));
    }
    case KW_CONST:
        return gw__js_json_equal(k->u.json, inst) ||
               fail(c, k, "value is not the required constant");
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
                   fail(c, k, "string has %zu characters, at most %zu allowed", len, k->u.count);
        return len >= k->u.count ||
               fail(c, k, "string has %zu characters, at least %zu required", len, k->u.count);
    }
    case KW_PATTERN:
        return !json_is_string(inst) ||
               gw__js_regex_match(k->u.re, json_string_value(inst), json_string_length(inst)) ||
               fail(c, k, "string does not match the pattern");
    case KW_FORMAT:
        if (!k->u.format.assert_always || !k->u.format.id || !json_is_string(inst))
            return true;
        return gw__js_format_check(k->u.format.id, json_string_value(inst),
                                   json_string_length(inst)) ||
               fail(c, k, "string is not a valid %s", k->u.format.name);
    case KW_MAXITEMS:
        return !json_is_array(inst) || json_array_size(inst) <= k->u.count ||
               fail(c, k, "array has %zu items, at most %zu allowed", json_array_size(inst),
                    k->u.count);
    case KW_MINITEMS:
        return !json_is_array(inst) || json_array_size(inst) >= k->u.count ||
               fail(c, k, "array has %zu items, at least %zu required", json_array_size(inst),
                    k->u.count);
    case KW_UNIQUE:
        return !json_is_array(inst) || v_unique(c, k, inst);
    case KW_MAXPROPS:
        return !json_is_object(inst) || json_object_size(inst) <= k->u.count ||
               fail(c, k, "object has %zu properties, at most %zu allowed", json_object_size(inst),
                    k->u.count);
    case KW_MINPROPS:
        return !json_is_object(inst) || json_object_size(inst) >= k->u.count ||
               fail(c, k, "object has %zu properties, at least %zu required",
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
