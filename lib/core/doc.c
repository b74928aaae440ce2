/*
 * JSON and YAML configuration documents -> jansson (see gw/doc.h).
 *
 * YAML: libyaml (Debian's libyaml-0-2) does the parsing; what it does not do
 * is map YAML onto JSON's data model, and that mapping is the part written
 * here. libyaml's document API fills in the default `!!str` tag for untagged
 * plain scalars, which loses the difference between `123` and `!!str 123`,
 * so this walks the event stream instead and resolves scalars itself by the
 * YAML 1.2 core schema (section 10.3.2 of the spec).
 *
 * Aliases are expanded into copies (later code edits documents in place, so
 * shared subtrees would leak edits between places). Every node created,
 * copies included, counts against a budget, so a "billion laughs" document
 * of nested aliases is refused instead of eating the memory.
 */
#include "gw/doc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define DOC_MAX_BYTES_DEFAULT (16u << 20)
#define YAML_MAX_NODES        1000000 /* values created, alias copies included */
#define YAML_MAX_DEPTH        256
#define YAML_TAG_PREFIX       "tag:yaml.org,2002:"

struct yload {
    yaml_parser_t parser;
    const char *name;
    struct gw_error *err;
    json_t *anchors; /* name -> [value, nodes, depth]: an alias is charged
                        `nodes` against the budget and may not take the
                        document deeper than YAML_MAX_DEPTH */
    size_t nodes;
    int depth;
    bool failed; /* an error has been reported (err may be NULL) */
};

static int yerr_at(struct yload *y, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int yerr_at(struct yload *y, yaml_mark_t m, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    y->failed = true;
    return gw_error_set(y->err, GW_EPARSE, false, "%s: line %zu column %zu: %s", y->name,
                        m.line + 1, m.column + 1, msg);
}

static int yoom(struct yload *y)
{
    y->failed = true;
    return gw_error_set(y->err, GW_ENOMEM, false, "%s: out of memory", y->name);
}

static int next_event(struct yload *y, yaml_event_t *ev)
{
    if (yaml_parser_parse(&y->parser, ev))
        return 0;
    yaml_parser_t *p = &y->parser;
    if (p->error == YAML_MEMORY_ERROR)
        return yoom(y);
    if (p->context != NULL)
        return yerr_at(y, p->problem_mark, "not valid YAML: %s %s", p->problem, p->context);
    return yerr_at(y, p->problem_mark, "not valid YAML: %s",
                   p->problem != NULL ? p->problem : "syntax error");
}

static int charge(struct yload *y, size_t n, yaml_mark_t m)
{
    y->nodes += n;
    if (y->nodes > YAML_MAX_NODES)
        return yerr_at(y, m, "the document expands to more than %d values (aliases included)",
                       YAML_MAX_NODES);
    return 0;
}

/* Exact matches of the core schema's patterns, written out: they are short
 * and a regex engine would add nothing but a dependency on its dialect. */
static bool all_in(const char *s, size_t n, const char *set)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strchr(set, s[i]) == NULL || s[i] == '\0')
            return false;
    return true;
}

static bool is_null(const char *s, size_t n)
{
    return n == 0 || (n == 1 && s[0] == '~') ||
           (n == 4 &&
            (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 || memcmp(s, "NULL", 4) == 0));
}

static int is_bool(const char *s, size_t n)
{
    if (n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4)))
        return 1;
    if (n == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5)))
        return 0;
    return -1;
}

#define DIGITS "0123456789"

/* [-+]? [0-9]+ | 0o [0-7]+ | 0x [0-9a-fA-F]+  ->  base, or 0 when not an int. */
static int int_base(const char *s, size_t n)
{
    if (n > 2 && s[0] == '0' && s[1] == 'o' && all_in(s + 2, n - 2, "01234567"))
        return 8;
    if (n > 2 && s[0] == '0' && s[1] == 'x' && all_in(s + 2, n - 2, DIGITS "abcdefABCDEF"))
        return 16;
    if (n > 0 && (s[0] == '-' || s[0] == '+'))
        s++, n--;
    return all_in(s, n, DIGITS) ? 10 : 0;
}

/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static bool is_float(const char *s, size_t n)
{
    size_t i = 0, mant = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, mant++;
    if (i < n && s[i] == '.') {
        size_t frac = 0;
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, frac++;
        if (mant == 0 && frac == 0)
            return false;
    } else if (mant == 0) {
        return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp = 0;
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, exp++;
        if (exp == 0)
            return false;
    }
    return i == n;
}

/* .inf, -.inf, +.inf, .nan in the spellings of the core schema (a sign
 * goes with .inf only: "-.nan" is a string). */
static bool is_special_float(const char *s, size_t n)
{
    static const char *const inf[] = {".inf", ".Inf", ".INF"};
    static const char *const nan[] = {".nan", ".NaN", ".NAN"};
    for (size_t i = 0; i < ARRAY_SIZE(nan); i++)
        if (n == 4 && memcmp(s, nan[i], 4) == 0)
            return true;
    if (n > 0 && (s[0] == '-' || s[0] == '+'))
        s++, n--;
    for (size_t i = 0; i < ARRAY_SIZE(inf); i++)
        if (n == 4 && memcmp(s, inf[i], 4) == 0)
            return true;
    return false;
}

static json_t *make_int(struct yload *y, const char *s, size_t n, int base, yaml_mark_t m)
{
    char buf[80];
    if (n >= sizeof(buf)) {
        yerr_at(y, m, "integer '%.20s...' does not fit in 64 bits", s);
        return NULL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    char *end = NULL;
    long long v = strtoll(base == 10 ? buf : buf + 2, &end, base);
    if (errno == ERANGE || end == NULL || *end != '\0') {
        yerr_at(y, m, "integer '%s' does not fit in 64 bits", buf);
        return NULL;
    }
    return json_integer(v);
}

static json_t *make_real(struct yload *y, const char *s, size_t n, yaml_mark_t m)
{
    char buf[400];
    if (n >= sizeof(buf)) {
        yerr_at(y, m, "number too long");
        return NULL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    double v = strtod(buf, NULL);
    if (errno == ERANGE && (v > 1 || v < -1)) {
        yerr_at(y, m, "number '%s' is out of range", buf);
        return NULL;
    }
    return json_real(v);
}

/* The value of a scalar event: by its tag if it has one, else by the core
 * schema when plain, else a string. */
static json_t *scalar(struct yload *y, const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    yaml_mark_t m = ev->start_mark;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    int base, b;

    /* "\0" in a double-quoted scalar: C strings (keys, arguments, subjects)
     * would silently stop there, and the JSON files refuse \u0000 too. */
    if (memchr(s, '\0', n) != NULL) {
        yerr_at(y, m, "a NUL character (\\0) is not allowed");
        return NULL;
    }

    if (tag != NULL && strcmp(tag, "!") != 0) {
        if (strncmp(tag, YAML_TAG_PREFIX, strlen(YAML_TAG_PREFIX)) != 0) {
            yerr_at(y, m, "tag '%s' is not supported (only the YAML core tags are)", tag);
            return NULL;
        }
        const char *t = tag + strlen(YAML_TAG_PREFIX);
        if (strcmp(t, "str") != 0 && strcmp(t, "null") != 0 && strcmp(t, "bool") != 0 &&
            strcmp(t, "int") != 0 && strcmp(t, "float") != 0) {
            yerr_at(y, m,
                    "tag '!!%s' is not supported on a scalar (str, int, float, bool, null are)", t);
            return NULL;
        }
        if (strcmp(t, "str") == 0)
            return json_stringn(s, n);
        if (strcmp(t, "null") == 0 && is_null(s, n))
            return json_null();
        if (strcmp(t, "bool") == 0 && (b = is_bool(s, n)) >= 0)
            return json_boolean(b);
        if (strcmp(t, "int") == 0 && (base = int_base(s, n)) != 0)
            return make_int(y, s, n, base, m);
        if (strcmp(t, "float") == 0 && (is_float(s, n) || int_base(s, n) == 10))
            return make_real(y, s, n, m);
        if (strcmp(t, "float") == 0 && is_special_float(s, n)) {
            yerr_at(y, m, "'%.*s' has no JSON equivalent", (int)n, s);
            return NULL;
        }
        yerr_at(y, m, "'%.*s' is not a valid !!%s", (int)(n > 40 ? 40 : n), s, t);
        return NULL;
    }
    if (!plain || tag != NULL) /* quoted, block, or the non-specific "!" */
        return json_stringn(s, n);
    if (is_null(s, n))
        return json_null();
    if ((b = is_bool(s, n)) >= 0)
        return json_boolean(b);
    if ((base = int_base(s, n)) != 0)
        return make_int(y, s, n, base, m);
    if (is_float(s, n))
        return make_real(y, s, n, m);
    if (is_special_float(s, n)) {
        yerr_at(y, m, "'%.*s' has no JSON equivalent; quote it to mean the string", (int)n, s);
        return NULL;
    }
    return json_stringn(s, n);
}

/* Values in `v` and how deep its collections nest (a scalar is 0). */
static void measure(json_t *v, size_t *nodes, size_t *depth)
{
    size_t n = 1, d = 0, cn, cd;
    const char *k;
    size_t i;
    json_t *c;
    if (json_is_object(v)) {
        json_object_foreach(v, k, c)
        {
            measure(c, &cn, &cd);
            n += cn;
            d = cd > d ? cd : d;
        }
        d++;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, c)
        {
            measure(c, &cn, &cd);
            n += cn;
            d = cd > d ? cd : d;
        }
        d++;
    }
    *nodes = n;
    *depth = d;
}

/* A later anchor of the same name replaces the earlier one. */
static int remember(struct yload *y, const char *name, json_t *v)
{
    size_t nodes, depth;
    measure(v, &nodes, &depth);
    json_t *entry = json_pack("[O,I,I]", v, (json_int_t)nodes, (json_int_t)depth);
    if (entry == NULL || json_object_set_new(y->anchors, name, entry) < 0)
        return yoom(y);
    return 0;
}

static json_t *alias(struct yload *y, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    json_t *entry = json_object_get(y->anchors, name);
    if (entry == NULL) {
        yerr_at(y, ev->start_mark, "alias '*%s' names no anchor defined before it", name);
        return NULL;
    }
    size_t nodes = (size_t)json_integer_value(json_array_get(entry, 1));
    size_t depth = (size_t)json_integer_value(json_array_get(entry, 2));
    if ((size_t)y->depth + depth > YAML_MAX_DEPTH) {
        yerr_at(y, ev->start_mark, "nested more than %d levels deep (through alias '*%s')",
                YAML_MAX_DEPTH, name);
        return NULL;
    }
    if (charge(y, nodes, ev->start_mark) < 0)
        return NULL;
    json_t *v = json_deep_copy(json_array_get(entry, 0));
    if (v == NULL)
        yoom(y);
    return v;
}

static json_t *node(struct yload *y, yaml_event_t *ev);

/* Reads the next node; *end is set when the event closes the enclosing
 * collection instead (then NULL is returned without an error). */
static json_t *next_node(struct yload *y, yaml_event_type_t closer, bool *end, yaml_mark_t *mark)
{
    yaml_event_t ev;
    *end = false;
    if (next_event(y, &ev) < 0)
        return NULL;
    if (mark != NULL)
        *mark = ev.start_mark;
    if (ev.type == closer) {
        *end = true;
        yaml_event_delete(&ev);
        return NULL;
    }
    json_t *v = node(y, &ev);
    yaml_event_delete(&ev);
    return v;
}

/* `<<: *base` or `<<: [*a, *b]`: keys the mapping does not set itself come
 * from the merged mappings, earlier ones first. */
static int merge_into(struct yload *y, json_t *obj, json_t *merged, json_t *explicit_keys,
                      yaml_mark_t m)
{
    json_t *list = json_is_array(merged) ? merged : NULL;
    size_t n = list ? json_array_size(list) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *src = list ? json_array_get(list, i) : merged;
        if (!json_is_object(src))
            return yerr_at(y, m, "'<<' merges mappings only");
        const char *k;
        json_t *v;
        json_object_foreach(src, k, v)
        {
            if (json_object_get(explicit_keys, k) != NULL || json_object_get(obj, k) != NULL)
                continue;
            json_object_set(obj, k, v);
        }
    }
    return 0;
}

static json_t *mapping(struct yload *y, const yaml_event_t *start)
{
    json_t *obj = json_object();
    json_t *explicit_keys = json_object(); /* keys written in this mapping */
    json_t *merges = json_array();
    yaml_mark_t km;
    bool end;

    if (obj == NULL || explicit_keys == NULL || merges == NULL)
        goto oom;
    for (;;) {
        yaml_event_t kev;
        if (next_event(y, &kev) < 0)
            goto fail;
        km = kev.start_mark;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            break;
        }
        bool is_merge = kev.type == YAML_SCALAR_EVENT &&
                        kev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                        kev.data.scalar.tag == NULL && kev.data.scalar.length == 2 &&
                        memcmp(kev.data.scalar.value, "<<", 2) == 0;
        json_t *key = NULL;
        if (!is_merge) {
            if (kev.type != YAML_SCALAR_EVENT && kev.type != YAML_ALIAS_EVENT) {
                yaml_event_delete(&kev);
                yerr_at(y, km, "mapping keys must be scalars (JSON object keys are strings)");
                goto fail;
            }
            key = node(y, &kev);
        }
        yaml_event_delete(&kev);
        if (!is_merge && key == NULL)
            goto fail;
        const char *ks = NULL;
        char kbuf[64];
        if (key != NULL) {
            if (json_is_string(key))
                ks = json_string_value(key);
            else if (json_is_integer(key))
                snprintf(kbuf, sizeof(kbuf), "%" JSON_INTEGER_FORMAT, json_integer_value(key)),
                    ks = kbuf;
            else if (json_is_true(key) || json_is_false(key))
                ks = json_is_true(key) ? "true" : "false";
            else if (json_is_null(key))
                ks = "null";
            else {
                json_decref(key);
                yerr_at(y, km, "this key is not a string; quote it");
                goto fail;
            }
            if (json_object_get(explicit_keys, ks) != NULL) {
                yerr_at(y, km, "duplicate key '%s'", ks);
                json_decref(key);
                goto fail;
            }
        }
        json_t *v = next_node(y, YAML_MAPPING_END_EVENT, &end, NULL);
        if (v == NULL) {
            json_decref(key);
            if (end)
                yerr_at(y, km, "key without a value");
            goto fail;
        }
        if (is_merge) {
            if (json_array_append_new(merges, v) < 0)
                goto oom;
            continue;
        }
        if (json_object_set_new(explicit_keys, ks, json_true()) < 0) {
            json_decref(v);
            json_decref(key);
            goto oom;
        }
        if (json_object_set_new(obj, ks, v) < 0) {
            json_decref(key);
            goto oom;
        }
        json_decref(key);
    }
    for (size_t i = 0; i < json_array_size(merges); i++)
        if (merge_into(y, obj, json_array_get(merges, i), explicit_keys, start->start_mark) < 0)
            goto fail;
    json_decref(explicit_keys);
    json_decref(merges);
    return obj;
oom:
    yoom(y);
fail:
    json_decref(obj);
    json_decref(explicit_keys);
    json_decref(merges);
    return NULL;
}

static json_t *sequence(struct yload *y)
{
    json_t *arr = json_array();
    bool end;
    if (arr == NULL) {
        yoom(y);
        return NULL;
    }
    for (;;) {
        json_t *v = next_node(y, YAML_SEQUENCE_END_EVENT, &end, NULL);
        if (v == NULL) {
            if (end)
                return arr;
            json_decref(arr);
            return NULL;
        }
        if (json_array_append_new(arr, v) < 0) {
            json_decref(arr);
            yoom(y);
            return NULL;
        }
    }
}

static bool collection_tag_ok(struct yload *y, const yaml_char_t *tag, const char *want,
                              yaml_mark_t m)
{
    if (tag == NULL || strcmp((const char *)tag, "!") == 0)
        return true;
    if (strncmp((const char *)tag, YAML_TAG_PREFIX, strlen(YAML_TAG_PREFIX)) == 0 &&
        strcmp((const char *)tag + strlen(YAML_TAG_PREFIX), want) == 0)
        return true;
    yerr_at(y, m, "tag '%s' is not supported here (only the YAML core tags are)",
            (const char *)tag);
    return false;
}

static json_t *node(struct yload *y, yaml_event_t *ev)
{
    json_t *v = NULL;
    const yaml_char_t *anchor = NULL;

    if (charge(y, 1, ev->start_mark) < 0)
        return NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return alias(y, ev);
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        v = scalar(y, ev);
        if (v == NULL && !y->failed)
            yoom(y);
        break;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        bool map = ev->type == YAML_MAPPING_START_EVENT;
        anchor = map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
        if (!collection_tag_ok(y, map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag,
                               map ? "map" : "seq", ev->start_mark))
            return NULL;
        if (++y->depth > YAML_MAX_DEPTH) {
            yerr_at(y, ev->start_mark, "nested more than %d levels deep", YAML_MAX_DEPTH);
            return NULL;
        }
        v = map ? mapping(y, ev) : sequence(y);
        y->depth--;
        break;
    }
    default:
        yerr_at(y, ev->start_mark, "unexpected YAML event %d", (int)ev->type);
        return NULL;
    }
    if (v != NULL && anchor != NULL && remember(y, (const char *)anchor, v) < 0) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Reads the next event and drops it: -1 (error set) when it cannot be read
 * or, `want` not YAML_NO_EVENT, when it is another kind (`why` says so). */
static int skip_event(struct yload *y, yaml_event_type_t want, const char *why)
{
    yaml_event_t ev;
    int rc = 0;

    if (next_event(y, &ev) < 0)
        return -1;
    if (want != YAML_NO_EVENT && ev.type != want)
        rc = yerr_at(y, ev.start_mark, "%s", why);
    yaml_event_delete(&ev);
    return rc;
}

static json_t *document(struct yload *y)
{
    yaml_event_t ev;
    json_t *root = NULL;

    if (skip_event(y, YAML_NO_EVENT, NULL) < 0 /* STREAM-START */ ||
        skip_event(y, YAML_DOCUMENT_START_EVENT, "the document is empty") < 0)
        return NULL;
    if (next_event(y, &ev) < 0)
        return NULL;
    root = node(y, &ev);
    yaml_event_delete(&ev);
    if (root == NULL)
        return NULL;
    if (skip_event(y, YAML_NO_EVENT, NULL) < 0 /* DOCUMENT-END */ ||
        skip_event(y, YAML_STREAM_END_EVENT, "more than one document; put one per file") < 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

json_t *gw_yaml_loadb(const char *buf, size_t len, const char *name, struct gw_error *err)
{
    struct yload y = {.name = name != NULL ? name : "<yaml>", .err = err};
    json_t *root;

    y.anchors = json_object();
    if (y.anchors == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "%s: out of memory", y.name);
        return NULL;
    }

    if (!yaml_parser_initialize(&y.parser)) {
        json_decref(y.anchors);
        gw_error_set(err, GW_ENOMEM, false, "%s: out of memory", y.name);
        return NULL;
    }
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)buf, len);
    yaml_parser_set_encoding(&y.parser, YAML_UTF8_ENCODING);
    root = document(&y);
    json_decref(y.anchors);
    yaml_parser_delete(&y.parser);
    return root;
}

bool gw_doc_is_yaml(const char *path)
{
    size_t n = path != NULL ? strlen(path) : 0;
    return (n > 5 && strcmp(path + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(path + n - 4, ".yml") == 0);
}

json_t *gw_doc_load_file(const char *path, size_t max_bytes, struct gw_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len;
    json_t *doc = NULL;

    if (max_bytes == 0)
        max_bytes = DOC_MAX_BYTES_DEFAULT;
    if (f == NULL) {
        gw_error_set(err, GW_EIO, false, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(max_bytes + 1);
    if (buf == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto done;
    }
    len = fread(buf, 1, max_bytes + 1, f);
    if (ferror(f)) {
        gw_error_set(err, GW_EIO, false, "%s: cannot read: %s", path, strerror(errno));
        goto done;
    }
    if (len > max_bytes) {
        gw_error_set(err, GW_ELIMIT, false, "%s: larger than %zu bytes", path, max_bytes);
        goto done;
    }
    if (gw_doc_is_yaml(path)) {
        doc = gw_yaml_loadb(buf, len, path, err);
    } else {
        json_error_t jerr;
        doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        if (doc == NULL)
            gw_error_set(err, GW_EPARSE, false, "%s: line %d column %d: not valid JSON: %s", path,
                         jerr.line, jerr.column, jerr.text);
    }
done:
    free(buf);
    fclose(f);
    return doc;
}

/* ------------------------------------------------------------ locating */

/* Where a JSON pointer's value starts in a document's text (gw_doc_locate):
 * the walk follows the pointer's reference tokens and remembers the deepest
 * node it reached, so a pointer to a member that is missing names the
 * object that lacks it. */
struct locate {
    char **seg; /* decoded reference tokens */
    size_t nseg;
    size_t best;         /* tokens matched by the deepest node seen, +1 (0: none) */
    size_t line, column; /* 1-based, of that node */
};

static void locate_note(struct locate *l, size_t depth, size_t line, size_t column)
{
    if (depth + 1 > l->best) {
        l->best = depth + 1;
        l->line = line;
        l->column = column;
    }
}

static bool locate_index_is(const char *seg, size_t i)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%zu", i);
    return strcmp(seg, buf) == 0;
}

/* One YAML node whose first event is `ev` (consumed here, with its
 * children). `on` says the path so far matches the pointer's first `depth`
 * tokens. Returns -1 when the stream cannot be read. */
static int ylocate_node(yaml_parser_t *p, yaml_event_t *ev, struct locate *l, size_t depth, bool on)
{
    if (on)
        locate_note(l, depth, ev->start_mark.line + 1, ev->start_mark.column + 1);
    yaml_event_type_t type = ev->type;
    yaml_event_delete(ev);
    if (type == YAML_SCALAR_EVENT || type == YAML_ALIAS_EVENT)
        return 0;
    if (type != YAML_MAPPING_START_EVENT && type != YAML_SEQUENCE_START_EVENT)
        return -1;
    for (size_t i = 0;; i++) {
        yaml_event_t k, v;
        if (!yaml_parser_parse(p, &k))
            return -1;
        if (k.type == YAML_MAPPING_END_EVENT || k.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&k);
            return 0;
        }
        if (type == YAML_SEQUENCE_START_EVENT) {
            bool child = on && depth < l->nseg && locate_index_is(l->seg[depth], i);
            if (ylocate_node(p, &k, l, depth + 1, child) < 0)
                return -1;
            continue;
        }
        bool child = on && depth < l->nseg && k.type == YAML_SCALAR_EVENT &&
                     strlen(l->seg[depth]) == k.data.scalar.length &&
                     memcmp(l->seg[depth], k.data.scalar.value, k.data.scalar.length) == 0;
        if (ylocate_node(p, &k, l, depth, false) < 0 || !yaml_parser_parse(p, &v) ||
            ylocate_node(p, &v, l, depth + 1, child) < 0)
            return -1;
    }
}

static void ylocate(const char *buf, size_t len, struct locate *l)
{
    yaml_parser_t p;
    yaml_event_t ev;
    if (!yaml_parser_initialize(&p))
        return;
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    /* stream start, document start, then the root node */
    for (int i = 0; i < 3 && yaml_parser_parse(&p, &ev); i++) {
        if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        ylocate_node(&p, &ev, l, 0, true);
        break;
    }
    yaml_parser_delete(&p);
}

/* JSON: the text already parsed, so a small scanner is enough. */
struct jscan {
    const char *s;
    size_t len, i;
};

static void jskip_ws(struct jscan *j)
{
    while (j->i < j->len && strchr(" \t\r\n", j->s[j->i]) != NULL && j->s[j->i] != '\0')
        j->i++;
}

/* A string at j->i (its quote): decoded into out (at most cap-1 bytes;
 * \u escapes become '?', good enough to compare keys). */
static void jstring(struct jscan *j, char *out, size_t cap)
{
    size_t n = 0;
    j->i++;
    while (j->i < j->len && j->s[j->i] != '"') {
        char c = j->s[j->i++];
        if (c == '\\' && j->i < j->len) {
            c = j->s[j->i++];
            if (c == 'u') {
                j->i += 4;
                c = '?';
            } else if (c == 'n') {
                c = '\n';
            } else if (c == 't') {
                c = '\t';
            }
        }
        if (out != NULL && n + 1 < cap)
            out[n++] = c;
    }
    j->i++;
    if (out != NULL)
        out[n] = '\0';
}

static void jpos(const struct jscan *j, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t k = 0; k < j->i && k < j->len; k++) {
        if (j->s[k] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void jlocate_value(struct jscan *j, struct locate *l, size_t depth, bool on, int nest)
{
    jskip_ws(j);
    if (j->i >= j->len || nest > 512)
        return;
    if (on) {
        size_t line, col;
        jpos(j, &line, &col);
        locate_note(l, depth, line, col);
    }
    char c = j->s[j->i];
    if (c == '"') {
        jstring(j, NULL, 0);
        return;
    }
    if (c != '{' && c != '[') {
        while (j->i < j->len && strchr(",]} \t\r\n", j->s[j->i]) == NULL)
            j->i++;
        return;
    }
    j->i++;
    for (size_t idx = 0;; idx++) {
        jskip_ws(j);
        if (j->i >= j->len)
            return;
        if (j->s[j->i] == '}' || j->s[j->i] == ']') {
            j->i++;
            return;
        }
        if (j->s[j->i] == ',') {
            j->i++;
            jskip_ws(j);
        }
        bool child;
        if (c == '{') {
            char key[512];
            jstring(j, key, sizeof(key));
            jskip_ws(j);
            if (j->i < j->len && j->s[j->i] == ':')
                j->i++;
            child = on && depth < l->nseg && strcmp(key, l->seg[depth]) == 0;
        } else {
            child = on && depth < l->nseg && locate_index_is(l->seg[depth], idx);
        }
        jlocate_value(j, l, depth + 1, child, nest + 1);
    }
}

int gw_doc_locate(const char *path, const char *pointer, int *line, int *column)
{
    struct locate l = {0};
    FILE *f = fopen(path, "rb");
    char *buf = NULL, *ptr = NULL;
    size_t len = 0;
    int rc = -1;

    if (f == NULL)
        return -1;
    buf = malloc(DOC_MAX_BYTES_DEFAULT);
    ptr = strdup(pointer != NULL ? pointer : "");
    if (buf == NULL || ptr == NULL)
        goto out;
    len = fread(buf, 1, DOC_MAX_BYTES_DEFAULT, f);
    /* Split "/a/b~1c" into decoded tokens, in place. */
    l.seg = calloc(strlen(ptr) + 1, sizeof(*l.seg));
    if (l.seg == NULL)
        goto out;
    for (char *p = ptr[0] == '/' ? ptr + 1 : NULL; p != NULL;) {
        char *next = strchr(p, '/');
        if (next != NULL)
            *next++ = '\0';
        char *w = p;
        for (char *r = p; *r; r++) {
            if (r[0] == '~' && (r[1] == '0' || r[1] == '1')) {
                *w++ = r[1] == '0' ? '~' : '/';
                r++;
            } else {
                *w++ = *r;
            }
        }
        *w = '\0';
        l.seg[l.nseg++] = p;
        p = next;
    }
    if (gw_doc_is_yaml(path)) {
        ylocate(buf, len, &l);
    } else {
        struct jscan j = {buf, len, 0};
        jlocate_value(&j, &l, 0, true, 0);
    }
    if (l.best > 0) {
        *line = (int)l.line;
        *column = (int)l.column;
        rc = (int)l.best - 1;
    }
out:
    free(l.seg);
    free(ptr);
    free(buf);
    fclose(f);
    return rc;
}
