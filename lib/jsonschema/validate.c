/*
 * Validation: walks the compiled node graph over an instance. Without an
 * error array it stops at the first failure; with one it reports every
 * failure outside of anyOf/oneOf/not/if/contains (whose inner failures are
 * expected and summarised by one error of their own).
 *
 * Annotations for unevaluatedProperties/Items are bitmaps over the
 * instance's members (object iteration order or array index), allocated
 * only by nodes that have such a keyword.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_EVAL_DEPTH 1024

struct pseg {
    const char *key; /* NULL for an array index */
    size_t idx;
};

struct js_vctx {
    json_t *errors; /* NULL: stop at the first failure, report nothing */
    bool format_assert;
    bool oom;
    size_t depth;
    struct pseg path[MAX_EVAL_DEPTH];
    size_t npath;
    const struct js_resource *scope[MAX_EVAL_DEPTH];
    size_t nscope;
};

struct annot {
    uint64_t *bits;
    size_t n;
    uint64_t stack[4];
};

static bool annot_init(struct annot *a, size_t n)
{
    a->n = n;
    if (n <= 64 * ARRAY_SIZE(a->stack)) {
        memset(a->stack, 0, sizeof(a->stack));
        a->bits = a->stack;
        return true;
    }
    a->bits = calloc((n + 63) / 64, sizeof(uint64_t));
    return a->bits != NULL;
}

static void annot_fini(struct annot *a)
{
    if (a->bits != a->stack)
        free(a->bits);
}

static void annot_set(struct annot *a, size_t i)
{
    if (a && i < a->n)
        a->bits[i / 64] |= 1ull << (i % 64);
}

static bool annot_get(const struct annot *a, size_t i)
{
    return i < a->n && (a->bits[i / 64] >> (i % 64)) & 1;
}

static void annot_merge(struct annot *dst, const struct annot *src)
{
    if (!dst)
        return;
    for (size_t i = 0; i < (dst->n + 63) / 64; i++)
        dst->bits[i] |= src->bits[i];
}

static size_t inst_size(json_t *inst)
{
    return json_is_object(inst) ? json_object_size(inst) : json_array_size(inst);
}

/* Appends one error {instanceLocation, keyword, keywordLocation, message}
 * plus the members of `extra` (stolen, may be NULL): what the keyword would
 * have accepted (allowed, limit, pattern, expected...). */
static void emitv(struct js_vctx *c, const char *keyword, const char *kwloc, json_t *extra,
                  const char *fmt, va_list ap)
{
    if (!c->errors) {
        json_decref(extra);
        return;
    }
    struct gw_jsonptr p = GW_JSONPTR_INIT;
    int rc = 0;
    for (size_t i = 0; i < c->npath && rc == 0; i++)
        rc = c->path[i].key ? gw_jsonptr_push(&p, c->path[i].key)
                            : gw_jsonptr_push_index(&p, c->path[i].idx);
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    json_t *e = rc == 0 ? json_pack("{s:s, s:s, s:s, s:s}", "instanceLocation", gw_jsonptr_str(&p),
                                    "keyword", keyword, "keywordLocation", kwloc, "message", msg)
                        : NULL;
    if (e && extra && json_object_update_missing(e, extra) < 0) {
        json_decref(e);
        e = NULL;
    }
    json_decref(extra);
    if (!e || json_array_append_new(c->errors, e) < 0)
        c->oom = true;
    gw_jsonptr_finish(&p);
}

static void emit(struct js_vctx *c, const char *keyword, const char *kwloc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void emit(struct js_vctx *c, const char *keyword, const char *kwloc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emitv(c, keyword, kwloc, NULL, fmt, ap);
    va_end(ap);
}

static void emit_x(struct js_vctx *c, const char *keyword, const char *kwloc, json_t *extra,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void emit_x(struct js_vctx *c, const char *keyword, const char *kwloc, json_t *extra,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emitv(c, keyword, kwloc, extra, fmt, ap);
    va_end(ap);
}

static bool vnode(struct js_vctx *c, const struct js_node *n, json_t *inst, struct annot *ann);

static bool vchild_key(struct js_vctx *c, const struct js_node *n, json_t *inst, const char *key)
{
    if (c->npath >= MAX_EVAL_DEPTH)
        return false;
    c->path[c->npath].key = key;
    c->npath++;
    bool ok = vnode(c, n, inst, NULL);
    c->npath--;
    return ok;
}

static bool vchild_idx(struct js_vctx *c, const struct js_node *n, json_t *inst, size_t idx)
{
    if (c->npath >= MAX_EVAL_DEPTH)
        return false;
    c->path[c->npath].key = NULL;
    c->path[c->npath].idx = idx;
    c->npath++;
    bool ok = vnode(c, n, inst, NULL);
    c->npath--;
    return ok;
}

static bool v_props(struct js_vctx *c, const struct js_kw *k, json_t *inst, struct annot *ann)
{
    bool ok = true;
    const char *key;
    json_t *val;
    size_t i = 0;
    json_object_foreach(inst, key, val)
    {
        bool matched = false;
        struct js_node *sn = gw__js_strmap_get(&k->u.props.props, key);
        if (sn) {
            matched = true;
            if (sn->is_bool && !sn->bool_value) {
                ok = false;
                emit(c, "properties", sn->loc, "property \"%s\" is not allowed", key);
            } else if (!vchild_key(c, sn, val, key)) {
                ok = false;
            }
        }
        for (size_t p = 0; p < k->u.props.npats && (ok || c->errors); p++) {
            const struct js_pattern_prop *pp = &k->u.props.pats[p];
            if (!gw__js_regex_match(pp->re, key, strlen(key)))
                continue;
            matched = true;
            if (!vchild_key(c, pp->node, val, key))
                ok = false;
        }
        if (!matched && k->u.props.additional) {
            const struct js_node *a = k->u.props.additional;
            matched = true;
            if (a->is_bool && !a->bool_value) {
                ok = false;
                emit_x(c, "additionalProperties", k->u.props.add_loc,
                       c->errors ? json_pack("{s:s}", "property", key) : NULL,
                       "additional property \"%s\" is not allowed", key);
            } else if (!vchild_key(c, a, val, key)) {
                ok = false;
            }
        }
        if (matched)
            annot_set(ann, i);
        if (!ok && !c->errors)
            return false;
        i++;
    }
    return ok;
}

static bool v_items(struct js_vctx *c, const struct js_kw *k, json_t *inst, struct annot *ann)
{
    bool ok = true;
    size_t n = json_array_size(inst);
    for (size_t i = 0; i < n && (ok || c->errors); i++) {
        const struct js_node *sn;
        if (i < k->u.items.nprefix) {
            sn = k->u.items.prefix[i];
        } else if (k->u.items.rest) {
            sn = k->u.items.rest;
            if (sn->is_bool && !sn->bool_value) {
                emit(c, k->u.items.rest_name, k->u.items.rest_loc,
                     "array has %zu items, at most %zu allowed", n, k->u.items.nprefix);
                return false;
            }
        } else {
            break;
        }
        annot_set(ann, i);
        if (!vchild_idx(c, sn, json_array_get(inst, i), i))
            ok = false;
    }
    return ok;
}

static bool v_contains(struct js_vctx *c, const struct js_kw *k, json_t *inst, struct annot *ann)
{
    json_t *saved = c->errors;
    size_t n = json_array_size(inst), count = 0;
    c->errors = NULL;
    for (size_t i = 0; i < n; i++) {
        if (vchild_idx(c, k->u.contains.node, json_array_get(inst, i), i)) {
            count++;
            if (k->u.contains.annotate)
                annot_set(ann, i);
            else if (count >= k->u.contains.min)
                break;
        }
        if (!ann && count > k->u.contains.max)
            break;
    }
    c->errors = saved;
    if (count < k->u.contains.min) {
        emit(c, k->u.contains.min == 1 ? "contains" : "minContains", k->loc,
             "array contains %zu matching items, at least %zu required", count, k->u.contains.min);
        return false;
    }
    if (count > k->u.contains.max) {
        emit(c, "maxContains", k->loc, "array contains %zu matching items, at most %zu allowed",
             count, k->u.contains.max);
        return false;
    }
    return true;
}

static bool v_uneval(struct js_vctx *c, const struct js_kw *k, json_t *inst, struct annot *ann)
{
    bool ok = true;
    const struct js_node *sn = k->u.node;
    if (k->type == KW_UNEVAL_PROPS) {
        const char *key;
        json_t *val;
        size_t i = 0;
        json_object_foreach(inst, key, val)
        {
            if (!annot_get(ann, i)) {
                if (sn->is_bool && !sn->bool_value) {
                    ok = false;
                    emit(c, k->name, k->loc, "unevaluated property \"%s\" is not allowed", key);
                } else if (!vchild_key(c, sn, val, key)) {
                    ok = false;
                }
                annot_set(ann, i);
            }
            if (!ok && !c->errors)
                return false;
            i++;
        }
        return ok;
    }
    for (size_t i = 0; i < json_array_size(inst) && (ok || c->errors); i++) {
        if (annot_get(ann, i))
            continue;
        if (sn->is_bool && !sn->bool_value) {
            emit(c, k->name, k->loc, "unevaluated item %zu is not allowed", i);
            ok = false;
        } else if (!vchild_idx(c, sn, json_array_get(inst, i), i)) {
            ok = false;
        }
        annot_set(ann, i);
    }
    return ok;
}

/* Runs `n` with errors suppressed and annotations into a scratch collector
 * merged into `ann` only when it passes. */
static bool vtry(struct js_vctx *c, const struct js_node *n, json_t *inst, struct annot *ann)
{
    json_t *saved = c->errors;
    struct annot tmp;
    bool ok;
    c->errors = NULL;
    if (ann && annot_init(&tmp, ann->n)) {
        ok = vnode(c, n, inst, &tmp);
        if (ok)
            annot_merge(ann, &tmp);
        annot_fini(&tmp);
    } else {
        ok = vnode(c, n, inst, NULL);
    }
    c->errors = saved;
    return ok;
}

static bool v_applicator(struct js_vctx *c, const struct js_kw *k, json_t *inst, struct annot *ann)
{
    switch (k->type) {
    case KW_ALLOF: {
        bool ok = true;
        for (size_t i = 0; i < k->u.list.n && (ok || c->errors); i++)
            if (!vnode(c, k->u.list.v[i], inst, ann))
                ok = false;
        return ok;
    }
    case KW_ANYOF: {
        bool any = false;
        for (size_t i = 0; i < k->u.list.n && (!any || ann); i++)
            if (vtry(c, k->u.list.v[i], inst, ann))
                any = true;
        if (!any)
            emit(c, k->name, k->loc, "value matches none of the %zu anyOf schemas", k->u.list.n);
        return any;
    }
    case KW_ONEOF: {
        size_t cnt = 0, first = 0;
        for (size_t i = 0; i < k->u.list.n && cnt < 2; i++)
            if (vtry(c, k->u.list.v[i], inst, cnt == 0 ? ann : NULL) && cnt++ == 0)
                first = i;
        if (cnt != 1)
            emit(c, k->name, k->loc,
                 cnt ? "value matches more than one oneOf schema (%zu and another)"
                     : "value matches none of the oneOf schemas%.0zu",
                 first);
        return cnt == 1;
    }
    case KW_NOT:
        if (!vtry(c, k->u.node, inst, NULL))
            return true;
        emit(c, k->name, k->loc, "value must not match the \"not\" schema");
        return false;
    case KW_IFTE:
        if (vtry(c, k->u.ifte.if_, inst, ann))
            return !k->u.ifte.then_ || vnode(c, k->u.ifte.then_, inst, ann);
        return !k->u.ifte.else_ || vnode(c, k->u.ifte.else_, inst, ann);
    case KW_DEPSCHEMAS: {
        bool ok = true;
        if (!json_is_object(inst))
            return true;
        for (size_t i = 0; i < k->u.dep.n && (ok || c->errors); i++)
            if (json_object_get(inst, k->u.dep.names[i]) && !vnode(c, k->u.dep.nodes[i], inst, ann))
                ok = false;
        return ok;
    }
    case KW_REF:
        return vnode(c, k->u.ref.target, inst, ann);
    case KW_DYNREF: {
        const struct js_node *t = k->u.ref.target;
        if (k->u.ref.anchor) {
            for (size_t i = 0; i < c->nscope; i++) {
                const struct js_node *d =
                    gw__js_strmap_get(&c->scope[i]->dyn_nodes, k->u.ref.anchor);
                if (d) {
                    t = d;
                    break;
                }
            }
        }
        return vnode(c, t, inst, ann);
    }
    case KW_PROPNAMES: {
        bool ok = true;
        const char *key;
        json_t *val;
        if (!json_is_object(inst))
            return true;
        json_t *saved = c->errors;
        json_object_foreach(inst, key, val)
        {
            json_t *ks = json_string(key);
            c->errors = NULL;
            bool r = ks && vnode(c, k->u.node, ks, NULL);
            c->errors = saved;
            json_decref(ks);
            if (!r) {
                emit(c, k->name, k->loc, "property name \"%s\" is not valid", key);
                ok = false;
                if (!c->errors)
                    return false;
            }
        }
        return ok;
    }
    default:
        return true;
    }
}

/* Assertions live in assert.c; applicators here. */
bool gw__js_validate_assertion(struct js_vctx *c, const struct js_kw *k, json_t *inst);

static bool vkw(struct js_vctx *c, const struct js_kw *k, json_t *inst, struct annot *ann)
{
    switch (k->type) {
    case KW_PROPS:
        return !json_is_object(inst) || v_props(c, k, inst, ann);
    case KW_ITEMS:
        return !json_is_array(inst) || v_items(c, k, inst, ann);
    case KW_CONTAINS:
        return !json_is_array(inst) || v_contains(c, k, inst, ann);
    case KW_UNEVAL_PROPS:
        return !json_is_object(inst) || !ann || v_uneval(c, k, inst, ann);
    case KW_UNEVAL_ITEMS:
        return !json_is_array(inst) || !ann || v_uneval(c, k, inst, ann);
    case KW_ALLOF:
    case KW_ANYOF:
    case KW_ONEOF:
    case KW_NOT:
    case KW_IFTE:
    case KW_DEPSCHEMAS:
    case KW_REF:
    case KW_DYNREF:
    case KW_PROPNAMES:
        return v_applicator(c, k, inst, ann);
    default:
        return gw__js_validate_assertion(c, k, inst);
    }
}

static bool vnode(struct js_vctx *c, const struct js_node *n, json_t *inst, struct annot *ann)
{
    if (n->is_bool) {
        if (!n->bool_value)
            emit(c, n->owner_kw ? n->owner_kw : "false", n->loc, "no value is allowed here");
        return n->bool_value;
    }
    if (c->depth >= MAX_EVAL_DEPTH) {
        emit(c, "$ref", n->loc, "schema recursion too deep");
        return false;
    }
    bool pushed = false;
    if (c->nscope == 0 || c->scope[c->nscope - 1] != n->res) {
        c->scope[c->nscope++] = n->res;
        pushed = true;
    }
    c->depth++;
    struct annot local, *a = ann;
    bool own = false;
    if (n->has_uneval && (json_is_object(inst) || json_is_array(inst))) {
        if (!annot_init(&local, inst_size(inst))) {
            c->oom = true;
            c->depth--;
            if (pushed)
                c->nscope--;
            return false;
        }
        a = &local;
        own = true;
    }
    bool ok = true;
    for (size_t i = 0; i < n->nkw; i++) {
        if (!vkw(c, &n->kw[i], inst, a)) {
            ok = false;
            if (!c->errors)
                break;
        }
    }
    if (own) {
        if (ok)
            annot_merge(ann, &local);
        annot_fini(&local);
    }
    c->depth--;
    if (pushed)
        c->nscope--;
    return ok;
}

/* Exposed to assert.c for its error reports; steals `extra`. */
void gw__js_vctx_emit(struct js_vctx *c, const struct js_kw *k, const char *msg, json_t *extra);
void gw__js_vctx_emit(struct js_vctx *c, const struct js_kw *k, const char *msg, json_t *extra)
{
    emit_x(c, k->name, k->loc, extra, "%s", msg);
}

/* Whether errors are being collected: assert.c skips building what only
 * a report would carry (the first, fast pass stops at the first failure). */
bool gw__js_vctx_reporting(const struct js_vctx *c);
bool gw__js_vctx_reporting(const struct js_vctx *c)
{
    return c->errors != NULL;
}

bool gw__js_vctx_format_assert(const struct js_vctx *c);
bool gw__js_vctx_format_assert(const struct js_vctx *c)
{
    return c->format_assert;
}

bool gw__js_validate_root(const struct gw_schema *s, json_t *instance, json_t *errors)
{
    /* The context is large (path and scope stacks); keep it off the stack
     * of threads with small stacks. */
    struct js_vctx *c = malloc(sizeof(*c));
    if (!c)
        return false;
    c->errors = errors;
    c->format_assert = s->format_assert;
    c->oom = false;
    c->depth = c->npath = c->nscope = 0;
    bool ok = vnode(c, s->root, instance, NULL);
    free(c);
    return ok;
}

bool gw_schema_validate(const struct gw_schema *s, json_t *instance, json_t **errors)
{
    if (!s || !instance)
        return false;
    if (!errors)
        return gw__js_validate_root(s, instance, NULL);
    if (gw__js_validate_root(s, instance, NULL))
        return true;
    /* Invalid: run again collecting every error (the slow path is only
     * paid by requests that are rejected anyway). */
    json_t *arr = json_array();
    if (arr)
        gw__js_validate_root(s, instance, arr);
    *errors = arr;
    return false;
}
