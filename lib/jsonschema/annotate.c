/*
 * Uses of annotations outside validation: filling `default`s and redacting
 * `writeOnly` values. Both follow the compiled graph (so `$ref`s are
 * already resolved) through the in-place applicators and object/array
 * children; both are bounded by the same depth limit as validation.
 */
#include <string.h>

#include "internal.h"

#define MAX_WALK_DEPTH 256

static const struct js_kw *find_kw(const struct js_node *n, enum js_kw_type t)
{
    for (size_t i = 0; i < n->nkw; i++)
        if (n->kw[i].type == t)
            return &n->kw[i];
    return NULL;
}

static void defaults(const struct js_node *n, json_t *inst, int depth)
{
    if (!n || n->is_bool || depth > MAX_WALK_DEPTH)
        return;
    for (size_t i = 0; i < n->nkw; i++) {
        const struct js_kw *k = &n->kw[i];
        switch (k->type) {
        case KW_REF:
        case KW_DYNREF:
            defaults(k->u.ref.target, inst, depth + 1);
            break;
        case KW_ALLOF:
            for (size_t j = 0; j < k->u.list.n; j++)
                defaults(k->u.list.v[j], inst, depth + 1);
            break;
        case KW_PROPS: {
            if (!json_is_object(inst))
                break;
            for (size_t j = 0; j < k->u.props.props.cap; j++) {
                const struct js_map_ent *e = &k->u.props.props.e[j];
                if (!e->key)
                    continue;
                const struct js_node *pn = e->val;
                json_t *cur = json_object_get(inst, e->key);
                if (!cur && !pn->is_bool) {
                    json_t *def = json_object_get(pn->json, "default");
                    /* Follow a $ref for the default too (a shared definition). */
                    const struct js_kw *r = def ? NULL : find_kw(pn, KW_REF);
                    if (r && !r->u.ref.target->is_bool)
                        def = json_object_get(r->u.ref.target->json, "default");
                    if (def) {
                        json_object_set_new(inst, e->key, json_deep_copy(def));
                        cur = json_object_get(inst, e->key);
                    }
                }
                if (cur)
                    defaults(pn, cur, depth + 1);
            }
            break;
        }
        case KW_ITEMS:
            if (!json_is_array(inst))
                break;
            for (size_t j = 0; j < json_array_size(inst); j++)
                defaults(j < k->u.items.nprefix ? k->u.items.prefix[j] : k->u.items.rest,
                         json_array_get(inst, j), depth + 1);
            break;
        default:
            break;
        }
    }
}

int gw_schema_apply_defaults(const struct gw_schema *s, json_t *instance)
{
    if (s && instance)
        defaults(s->root, instance, 0);
    return 0;
}

static bool write_only(const struct js_node *n)
{
    return n && !n->is_bool && json_is_true(json_object_get(n->json, "writeOnly"));
}

/* Replaces in `inst` (a private copy) every value a schema marks writeOnly.
 * anyOf/oneOf/if branches count even when they would not match: for
 * secrets, redacting too much is the safe side. */
static json_t *redact(const struct js_node *n, json_t *inst, int depth)
{
    if (!n || n->is_bool || depth > MAX_WALK_DEPTH)
        return inst;
    if (write_only(n)) {
        json_decref(inst);
        return json_string("[redacted]");
    }
    for (size_t i = 0; i < n->nkw && inst; i++) {
        const struct js_kw *k = &n->kw[i];
        switch (k->type) {
        case KW_REF:
        case KW_DYNREF:
            inst = redact(k->u.ref.target, inst, depth + 1);
            break;
        case KW_ALLOF:
        case KW_ANYOF:
        case KW_ONEOF:
            for (size_t j = 0; j < k->u.list.n && inst; j++)
                inst = redact(k->u.list.v[j], inst, depth + 1);
            break;
        case KW_IFTE:
            inst = redact(k->u.ifte.then_, inst, depth + 1);
            if (inst)
                inst = redact(k->u.ifte.else_, inst, depth + 1);
            break;
        case KW_DEPSCHEMAS:
            for (size_t j = 0; j < k->u.dep.n && inst; j++)
                inst = redact(k->u.dep.nodes[j], inst, depth + 1);
            break;
        case KW_PROPS: {
            if (!json_is_object(inst))
                break;
            const char *key;
            json_t *val;
            json_object_foreach(inst, key, val)
            {
                const struct js_node *pn = gw__js_strmap_get(&k->u.props.props, key);
                bool matched = pn != NULL;
                json_t *nv = json_incref(val);
                if (pn)
                    nv = redact(pn, nv, depth + 1);
                for (size_t p = 0; p < k->u.props.npats && nv; p++) {
                    if (gw__js_regex_match(k->u.props.pats[p].re, key, strlen(key))) {
                        matched = true;
                        nv = redact(k->u.props.pats[p].node, nv, depth + 1);
                    }
                }
                if (!matched && nv)
                    nv = redact(k->u.props.additional, nv, depth + 1);
                if (nv != val && nv)
                    json_object_set(inst, key, nv); /* replacing keeps iteration valid */
                json_decref(nv);
            }
            break;
        }
        case KW_ITEMS:
            if (!json_is_array(inst))
                break;
            for (size_t j = 0; j < json_array_size(inst); j++) {
                json_t *v = json_incref(json_array_get(inst, j));
                json_t *nv = redact(j < k->u.items.nprefix ? k->u.items.prefix[j] : k->u.items.rest,
                                    v, depth + 1);
                if (nv && nv != v)
                    json_array_set(inst, j, nv);
                json_decref(nv);
            }
            break;
        case KW_UNEVAL_PROPS:
        case KW_UNEVAL_ITEMS:
            /* Conservative: treat the unevaluated schema as applying to
             * every member. */
            if (write_only(k->u.node)) {
                if (json_is_object(inst)) {
                    const char *key;
                    json_t *val;
                    json_object_foreach(inst, key, val)
                    {
                        const struct js_kw *pk = find_kw(n, KW_PROPS);
                        if (!pk || !gw__js_strmap_get(&pk->u.props.props, key))
                            json_object_set_new(inst, key, json_string("[redacted]"));
                    }
                }
            }
            break;
        default:
            break;
        }
    }
    return inst;
}

json_t *gw_schema_redact(const struct gw_schema *s, json_t *instance)
{
    if (!s || !instance)
        return NULL;
    json_t *copy = json_deep_copy(instance);
    if (!copy)
        return NULL;
    return redact(s->root, copy, 0);
}
