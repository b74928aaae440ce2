/*
 * Compilation: turns schema JSON into the immutable js_node graph. Every
 * regex is compiled, every $ref resolved and every keyword value checked
 * here, so validation never parses or allocates for the schema side.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct cctx {
    struct gw_schema *s;
    struct gw_error *err;
    int depth;
    bool format_assert;
};

static struct js_node *compile_node(struct cctx *c, json_t *j, struct js_nodeinfo *parent,
                                    const char *loc, const char *owner_kw);

static char *loc_join(const char *base, const char *seg)
{
    struct gw_jsonptr b = GW_JSONPTR_INIT;
    if (gw_jsonptr_append(&b, base) < 0 || gw_jsonptr_push(&b, seg) < 0) {
        gw_jsonptr_finish(&b);
        return NULL;
    }
    return gw_jsonptr_steal(&b);
}

static void kw_free(struct js_kw *k)
{
    free(k->loc);
    switch (k->type) {
    case KW_PATTERN:
        gw__js_regex_free(k->u.re);
        break;
    case KW_ALLOF:
    case KW_ANYOF:
    case KW_ONEOF:
        free(k->u.list.v);
        break;
    case KW_DYNREF:
        free(k->u.ref.anchor);
        break;
    case KW_DEPSCHEMAS:
    case KW_DEPREQUIRED:
        for (size_t i = 0; i < k->u.dep.n; i++)
            free(k->u.dep.names[i]);
        free(k->u.dep.names);
        free(k->u.dep.nodes);
        free(k->u.dep.reqs);
        break;
    case KW_PROPS:
        gw__js_strmap_free(&k->u.props.props, NULL);
        for (size_t i = 0; i < k->u.props.npats; i++) {
            gw__js_regex_free(k->u.props.pats[i].re);
            free(k->u.props.pats[i].loc);
        }
        free(k->u.props.pats);
        free(k->u.props.add_loc);
        break;
    case KW_ITEMS:
        free(k->u.items.prefix);
        free(k->u.items.rest_loc);
        break;
    default:
        break;
    }
}

void gw__js_node_free(struct js_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkw; i++)
        kw_free(&n->kw[i]);
    free(n->kw);
    free(n->loc);
    free(n);
}

static struct js_kw *kw_add(struct js_node *n, enum js_kw_type t, const char *name, size_t *cap)
{
    struct js_kw *nv = gw__js_grow(n->kw, cap, n->nkw, 8, sizeof(*nv));
    if (!nv)
        return NULL;
    n->kw = nv;
    struct js_kw *k = &n->kw[n->nkw];
    memset(k, 0, sizeof(*k));
    k->type = t;
    k->name = name;
    k->value = json_is_object(n->json) ? json_object_get(n->json, name) : NULL;
    k->loc = loc_join(n->loc, name);
    if (!k->loc)
        return NULL;
    n->nkw++;
    return k;
}

static int fail(struct cctx *c, const char *loc, const char *msg, const char *detail)
{
    if (c->err && c->err->code == 0)
        gw_error_set(c->err, GW_EINVAL, false, "schema %s at %s%s%s", msg, *loc ? loc : "/",
                     detail ? ": " : "", detail ? detail : "");
    return GW_EINVAL;
}

static int sub(struct cctx *c, struct js_node *n, json_t *j, struct js_nodeinfo *in,
               const char *kwloc, struct js_node **out, const char *owner)
{
    *out = compile_node(c, j, in, kwloc, owner);
    return *out ? 0 : GW_EINVAL;
}

static bool is_nonneg_int(json_t *v, size_t *out)
{
    if (!gw__js_is_integer(v))
        return false;
    double d = json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
    if (d < 0)
        return false;
    *out = d >= 1e18 ? SIZE_MAX : (size_t)d;
    return true;
}

static int compile_list(struct cctx *c, struct js_node *n, struct js_kw *k, json_t *arr,
                        struct js_nodeinfo *in, struct js_node ***v, size_t *nv)
{
    size_t cnt = json_array_size(arr);
    *v = calloc(cnt ? cnt : 1, sizeof(**v));
    if (!*v)
        return GW_ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        char num[32];
        snprintf(num, sizeof(num), "%zu", i);
        char *l = loc_join(k->loc, num);
        if (!l)
            return GW_ENOMEM;
        (*v)[i] = compile_node(c, json_array_get(arr, i), in, l, k->name);
        free(l);
        if (!(*v)[i])
            return GW_EINVAL;
        (*nv)++;
    }
    return 0;
}

static int compile_ref(struct cctx *c, struct js_node *n, struct js_kw *k, const char *ref,
                       struct js_nodeinfo *in, bool dynamic)
{
    char *abs = gw__js_uri_resolve(in->res->uri, ref);
    if (!abs)
        return GW_ENOMEM;
    struct js_nodeinfo *tin = NULL;
    json_t *t = gw__js_resolve(c->s, abs, in->draft, &tin, c->err);
    int rc = GW_EINVAL;
    if (!t) {
        if (c->err)
            c->err->code = 0; /* replace the resolver's message with one naming the pointer */
        fail(c, k->loc, "has an unresolvable reference", ref);
        goto out;
    }
    const char *frag;
    char *u = gw__js_uri_strip_fragment(abs, &frag);
    if (!u)
        goto out;
    char *tloc = NULL;
    if (strcmp(u, c->s->root_uri) == 0 && (*frag == '\0' || *frag == '/'))
        tloc = gw__js_uri_pct_decode(frag);
    else if (strchr(abs, '#'))
        tloc = gw__js_strdup(abs);
    else if (asprintf(&tloc, "%s#", abs) < 0)
        tloc = NULL;
    free(u);
    if (!tloc)
        goto out;
    k->u.ref.target = compile_node(c, t, tin, tloc, k->name);
    free(tloc);
    if (!k->u.ref.target)
        goto out;
    if (dynamic && *frag && *frag != '/') {
        json_t *da = json_object_get(t, "$dynamicAnchor");
        if (json_is_string(da) && strcmp(json_string_value(da), frag) == 0 &&
            !(k->u.ref.anchor = gw__js_strdup(frag)))
            goto out;
    }
    rc = 0;
out:
    free(abs);
    return rc;
}

static int compile_props(struct cctx *c, struct js_node *n, json_t *j, struct js_nodeinfo *in,
                         size_t *cap)
{
    json_t *props = json_object_get(j, "properties");
    json_t *pats = json_object_get(j, "patternProperties");
    json_t *add = json_object_get(j, "additionalProperties");
    if (!json_is_object(props) && !json_is_object(pats) && !add)
        return 0;
    struct js_kw *k = kw_add(n, KW_PROPS, "properties", cap);
    if (!k)
        return GW_ENOMEM;
    const char *key;
    json_t *v;
    char *base = loc_join(n->loc, "properties");
    if (!base)
        return GW_ENOMEM;
    json_object_foreach(props, key, v)
    {
        char *l = loc_join(base, key);
        struct js_node *sn = l ? compile_node(c, v, in, l, "properties") : NULL;
        free(l);
        if (!sn || gw__js_strmap_put(&k->u.props.props, key, sn) < 0) {
            free(base);
            return GW_EINVAL;
        }
    }
    free(base);
    if (json_is_object(pats)) {
        k->u.props.pats = calloc(json_object_size(pats) + 1, sizeof(*k->u.props.pats));
        if (!k->u.props.pats)
            return GW_ENOMEM;
        base = loc_join(n->loc, "patternProperties");
        if (!base)
            return GW_ENOMEM;
        json_object_foreach(pats, key, v)
        {
            struct js_pattern_prop *pp = &k->u.props.pats[k->u.props.npats++];
            char why[128];
            pp->loc = loc_join(base, key);
            if (!pp->loc) {
                free(base);
                return GW_ENOMEM;
            }
            pp->re = gw__js_regex_compile(key, why, sizeof(why));
            if (!pp->re) {
                free(base);
                return fail(c, pp->loc, "has an invalid regular expression", why);
            }
            pp->node = compile_node(c, v, in, pp->loc, "patternProperties");
            if (!pp->node) {
                free(base);
                return GW_EINVAL;
            }
        }
        free(base);
    }
    if (add) {
        k->u.props.add_loc = loc_join(n->loc, "additionalProperties");
        if (!k->u.props.add_loc)
            return GW_ENOMEM;
        k->u.props.additional =
            compile_node(c, add, in, k->u.props.add_loc, "additionalProperties");
        if (!k->u.props.additional)
            return GW_EINVAL;
    }
    return 0;
}

static int compile_items(struct cctx *c, struct js_node *n, json_t *j, struct js_nodeinfo *in,
                         size_t *cap, bool d7)
{
    json_t *prefix = d7 ? json_object_get(j, "items") : json_object_get(j, "prefixItems");
    json_t *rest = d7 ? json_object_get(j, "additionalItems") : json_object_get(j, "items");
    const char *rest_name = d7 ? "additionalItems" : "items";
    if (d7 && !json_is_array(prefix)) {
        rest = prefix;
        rest_name = "items";
        prefix = NULL;
    } else if (d7 && !prefix) {
        rest = NULL; /* additionalItems without an items array does nothing */
    }
    if (!json_is_array(prefix) && !rest)
        return 0;
    struct js_kw *k = kw_add(
        n, KW_ITEMS, json_is_array(prefix) ? (d7 ? "items" : "prefixItems") : rest_name, cap);
    if (!k)
        return GW_ENOMEM;
    if (json_is_array(prefix)) {
        int rc = compile_list(c, n, k, prefix, in, &k->u.items.prefix, &k->u.items.nprefix);
        if (rc < 0)
            return rc;
    }
    if (rest) {
        k->u.items.rest_name = rest_name;
        k->u.items.rest_loc = loc_join(n->loc, rest_name);
        if (!k->u.items.rest_loc)
            return GW_ENOMEM;
        k->u.items.rest = compile_node(c, rest, in, k->u.items.rest_loc, rest_name);
        if (!k->u.items.rest)
            return GW_EINVAL;
    }
    return 0;
}

static int compile_deps(struct cctx *c, struct js_node *n, json_t *obj, struct js_nodeinfo *in,
                        size_t *cap, const char *name, bool schemas)
{
    struct js_kw *k = kw_add(n, schemas ? KW_DEPSCHEMAS : KW_DEPREQUIRED, name, cap);
    if (!k)
        return GW_ENOMEM;
    size_t cnt = json_object_size(obj) + 1;
    k->u.dep.names = calloc(cnt, sizeof(char *));
    k->u.dep.nodes = calloc(cnt, sizeof(struct js_node *));
    k->u.dep.reqs = calloc(cnt, sizeof(json_t *));
    if (!k->u.dep.names || !k->u.dep.nodes || !k->u.dep.reqs)
        return GW_ENOMEM;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (schemas == json_is_array(v))
            continue; /* draft-07 `dependencies` mixes both kinds */
        size_t i = k->u.dep.n;
        if (!(k->u.dep.names[i] = gw__js_strdup(key)))
            return GW_ENOMEM;
        k->u.dep.n++;
        if (schemas) {
            char *l = loc_join(k->loc, key);
            k->u.dep.nodes[i] = l ? compile_node(c, v, in, l, name) : NULL;
            free(l);
            if (!k->u.dep.nodes[i])
                return GW_EINVAL;
        } else {
            k->u.dep.reqs[i] = v;
        }
    }
    return 0;
}

static int compile_keywords(struct cctx *c, struct js_node *n, json_t *j, struct js_nodeinfo *in)
{
    size_t cap = 0;
    bool d7 = in->draft == GW_SCHEMA_DRAFT_7;
    unsigned voc = d7 ? (unsigned)VOC_ALL_2020 : in->vocab;
    bool app = voc & VOC_APPLICATOR, val = voc & VOC_VALIDATION;
    struct js_kw *k;
    json_t *v;
    int rc = 0;

    v = json_object_get(j, "$ref");
    if (json_is_string(v)) {
        if (!(k = kw_add(n, KW_REF, "$ref", &cap)))
            return GW_ENOMEM;
        if ((rc = compile_ref(c, n, k, json_string_value(v), in, false)) < 0)
            return rc;
        if (d7)
            return 0; /* draft-07: $ref overrides every sibling keyword */
    }
    v = json_object_get(j, "$dynamicRef");
    if (!d7 && json_is_string(v)) {
        if (!(k = kw_add(n, KW_DYNREF, "$dynamicRef", &cap)))
            return GW_ENOMEM;
        if ((rc = compile_ref(c, n, k, json_string_value(v), in, true)) < 0)
            return rc;
    }
    if (val) {
        v = json_object_get(j, "type");
        if (json_is_string(v) || json_is_array(v)) {
            static const char *const names[] = {"null",   "boolean", "object", "array",
                                                "number", "string",  "integer"};
            if (!(k = kw_add(n, KW_TYPE, "type", &cap)))
                return GW_ENOMEM;
            for (size_t t = 0; t < (json_is_array(v) ? json_array_size(v) : 1); t++) {
                json_t *e = json_is_array(v) ? json_array_get(v, t) : v;
                for (size_t b = 0; b < ARRAY_SIZE(names); b++)
                    if (json_is_string(e) && strcmp(json_string_value(e), names[b]) == 0)
                        k->u.types |= 1u << b;
            }
        }
        if (json_is_array(v = json_object_get(j, "enum"))) {
            if (!(k = kw_add(n, KW_ENUM, "enum", &cap)))
                return GW_ENOMEM;
            k->u.json = v;
        }
        if ((v = json_object_get(j, "const"))) {
            if (!(k = kw_add(n, KW_CONST, "const", &cap)))
                return GW_ENOMEM;
            k->u.json = v;
        }
        static const struct {
            const char *name;
            enum js_kw_type t;
        } nums[] = {{"multipleOf", KW_MULTIPLEOF},
                    {"maximum", KW_MAXIMUM},
                    {"exclusiveMaximum", KW_EXMAXIMUM},
                    {"minimum", KW_MINIMUM},
                    {"exclusiveMinimum", KW_EXMINIMUM}};
        for (size_t i = 0; i < ARRAY_SIZE(nums); i++) {
            v = json_object_get(j, nums[i].name);
            if (!json_is_number(v))
                continue;
            if (nums[i].t == KW_MULTIPLEOF && json_number_value(v) <= 0)
                return fail(c, n->loc, "has a non-positive multipleOf", NULL);
            if (!(k = kw_add(n, nums[i].t, nums[i].name, &cap)))
                return GW_ENOMEM;
            k->u.json = v;
        }
        static const struct {
            const char *name;
            enum js_kw_type t;
        } counts[] = {{"maxLength", KW_MAXLENGTH},    {"minLength", KW_MINLENGTH},
                      {"maxItems", KW_MAXITEMS},      {"minItems", KW_MINITEMS},
                      {"maxProperties", KW_MAXPROPS}, {"minProperties", KW_MINPROPS}};
        for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
            size_t cnt;
            if (!is_nonneg_int(json_object_get(j, counts[i].name), &cnt))
                continue;
            if (!(k = kw_add(n, counts[i].t, counts[i].name, &cap)))
                return GW_ENOMEM;
            k->u.count = cnt;
        }
        if (json_is_string(v = json_object_get(j, "pattern"))) {
            char why[128];
            if (!(k = kw_add(n, KW_PATTERN, "pattern", &cap)))
                return GW_ENOMEM;
            if (!(k->u.re = gw__js_regex_compile(json_string_value(v), why, sizeof(why))))
                return fail(c, k->loc, "has an invalid regular expression", why);
        }
        if (json_is_true(json_object_get(j, "uniqueItems")) &&
            !kw_add(n, KW_UNIQUE, "uniqueItems", &cap))
            return GW_ENOMEM;
        if (json_is_array(v = json_object_get(j, "required")) && json_array_size(v)) {
            if (!(k = kw_add(n, KW_REQUIRED, "required", &cap)))
                return GW_ENOMEM;
            k->u.json = v;
        }
        if (!d7 && json_is_object(v = json_object_get(j, "dependentRequired")) &&
            (rc = compile_deps(c, n, v, in, &cap, "dependentRequired", false)) < 0)
            return rc;
        if (d7 && json_is_object(v = json_object_get(j, "dependencies")) &&
            (rc = compile_deps(c, n, v, in, &cap, "dependencies", false)) < 0)
            return rc;
    }
    if (json_is_string(v = json_object_get(j, "format")) &&
        (d7 || (voc & (VOC_FORMAT_ANN | VOC_FORMAT_ASSERT)))) {
        if (!(k = kw_add(n, KW_FORMAT, "format", &cap)))
            return GW_ENOMEM;
        k->u.format.id = gw__js_format_lookup(json_string_value(v));
        k->u.format.name = json_string_value(v);
        k->u.format.assert_always = c->format_assert || (voc & VOC_FORMAT_ASSERT);
    }
    if (app) {
        static const struct {
            const char *name;
            enum js_kw_type t;
        } lists[] = {{"allOf", KW_ALLOF}, {"anyOf", KW_ANYOF}, {"oneOf", KW_ONEOF}};
        for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
            if (!json_is_array(v = json_object_get(j, lists[i].name)))
                continue;
            if (!(k = kw_add(n, lists[i].t, lists[i].name, &cap)))
                return GW_ENOMEM;
            if ((rc = compile_list(c, n, k, v, in, &k->u.list.v, &k->u.list.n)) < 0)
                return rc;
        }
        if ((v = json_object_get(j, "not"))) {
            if (!(k = kw_add(n, KW_NOT, "not", &cap)))
                return GW_ENOMEM;
            if ((rc = sub(c, n, v, in, k->loc, &k->u.node, "not")) < 0)
                return rc;
        }
        if ((v = json_object_get(j, "if"))) {
            json_t *t = json_object_get(j, "then"), *e = json_object_get(j, "else");
            if (!(k = kw_add(n, KW_IFTE, "if", &cap)))
                return GW_ENOMEM;
            if ((rc = sub(c, n, v, in, k->loc, &k->u.ifte.if_, "if")) < 0)
                return rc;
            char *tl = loc_join(n->loc, "then"), *el = loc_join(n->loc, "else");
            if (!tl || !el)
                rc = GW_ENOMEM;
            if (!rc && t)
                rc = sub(c, n, t, in, tl, &k->u.ifte.then_, "then");
            if (!rc && e)
                rc = sub(c, n, e, in, el, &k->u.ifte.else_, "else");
            free(tl);
            free(el);
            if (rc < 0)
                return rc;
        }
        v = json_object_get(j, d7 ? "dependencies" : "dependentSchemas");
        if (json_is_object(v) &&
            (rc = compile_deps(c, n, v, in, &cap, d7 ? "dependencies" : "dependentSchemas", true)) <
                0)
            return rc;
        if ((rc = compile_props(c, n, j, in, &cap)) < 0)
            return rc;
        if ((v = json_object_get(j, "propertyNames"))) {
            if (!(k = kw_add(n, KW_PROPNAMES, "propertyNames", &cap)))
                return GW_ENOMEM;
            if ((rc = sub(c, n, v, in, k->loc, &k->u.node, "propertyNames")) < 0)
                return rc;
        }
        if ((rc = compile_items(c, n, j, in, &cap, d7)) < 0)
            return rc;
        if ((v = json_object_get(j, "contains"))) {
            if (!(k = kw_add(n, KW_CONTAINS, "contains", &cap)))
                return GW_ENOMEM;
            k->u.contains.min = 1;
            k->u.contains.max = SIZE_MAX;
            k->u.contains.annotate = !d7;
            if (!d7 && val) {
                is_nonneg_int(json_object_get(j, "minContains"), &k->u.contains.min);
                is_nonneg_int(json_object_get(j, "maxContains"), &k->u.contains.max);
            }
            if ((rc = sub(c, n, v, in, k->loc, &k->u.contains.node, "contains")) < 0)
                return rc;
        }
    }
    if (!d7 && (voc & VOC_UNEVALUATED)) {
        if ((v = json_object_get(j, "unevaluatedProperties"))) {
            if (!(k = kw_add(n, KW_UNEVAL_PROPS, "unevaluatedProperties", &cap)))
                return GW_ENOMEM;
            if ((rc = sub(c, n, v, in, k->loc, &k->u.node, "unevaluatedProperties")) < 0)
                return rc;
            n->has_uneval = true;
        }
        if ((v = json_object_get(j, "unevaluatedItems"))) {
            if (!(k = kw_add(n, KW_UNEVAL_ITEMS, "unevaluatedItems", &cap)))
                return GW_ENOMEM;
            if ((rc = sub(c, n, v, in, k->loc, &k->u.node, "unevaluatedItems")) < 0)
                return rc;
            n->has_uneval = true;
        }
    }
    return 0;
}

static struct js_node *compile_node(struct cctx *c, json_t *j, struct js_nodeinfo *parent,
                                    const char *loc, const char *owner_kw)
{
    struct js_node *n;
    if (json_is_boolean(j)) {
        n = calloc(1, sizeof(*n));
        if (!n || !(n->loc = gw__js_strdup(loc)) ||
            gw__js_ptrmap_put(&c->s->nodes, n->loc, n) < 0) { /* owned via the node map */
            if (n)
                free(n->loc);
            free(n);
            fail(c, loc, "out of memory", NULL);
            return NULL;
        }
        n->is_bool = true;
        n->bool_value = json_is_true(j);
        n->owner_kw = owner_kw;
        n->res = parent->res;
        return n;
    }
    if (!json_is_object(j)) {
        fail(c, loc, "is not an object or boolean", NULL);
        return NULL;
    }
    if ((n = gw__js_ptrmap_get(&c->s->nodes, j)))
        return n;
    if (c->depth > JS_MAX_DEPTH) {
        fail(c, loc, "is nested too deeply", NULL);
        return NULL;
    }
    struct js_nodeinfo *in = gw__js_ptrmap_get(&c->s->info, j);
    if (!in)
        in = parent;
    n = calloc(1, sizeof(*n));
    if (!n || !(n->loc = gw__js_strdup(loc)) || gw__js_ptrmap_put(&c->s->nodes, j, n) < 0) {
        if (n)
            free(n->loc);
        free(n);
        fail(c, loc, "out of memory", NULL);
        return NULL;
    }
    n->json = j;
    n->res = in->res;
    c->depth++;
    int rc = compile_keywords(c, n, j, in);
    c->depth--;
    if (rc < 0) {
        fail(c, loc, "could not be compiled", NULL);
        return NULL; /* n stays in the node map and is freed with the schema */
    }
    return n;
}

/* Compiles the targets of every $dynamicAnchor of every resource seen, so a
 * $dynamicRef can jump to any of them at run time. */
static int compile_dynamic_anchors(struct cctx *c)
{
    for (size_t r = 0; r < c->s->nres; r++) {
        struct js_resource *res = c->s->res_all[r];
        for (size_t i = 0; i < res->dyn_anchors.cap; i++) {
            struct js_map_ent *e = &res->dyn_anchors.e[i];
            if (!e->key || gw__js_strmap_get(&res->dyn_nodes, e->key))
                continue;
            struct js_nodeinfo *in = gw__js_ptrmap_get(&c->s->info, e->val);
            char *l = gw__js_strdup(res->uri);
            struct js_node *n = (l && in) ? compile_node(c, e->val, in, l, "$dynamicAnchor") : NULL;
            free(l);
            if (!n || gw__js_strmap_put(&res->dyn_nodes, e->key, n) < 0)
                return GW_EINVAL;
        }
    }
    return 0;
}

static void schema_free(struct gw_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nodes.cap; i++)
        if (s->nodes.e[i].key)
            gw__js_node_free(s->nodes.e[i].val);
    gw__js_ptrmap_free(&s->nodes);
    for (size_t i = 0; i < s->ninfos; i++)
        free(s->infos[i]);
    free(s->infos);
    gw__js_ptrmap_free(&s->info);
    for (size_t i = 0; i < s->nres; i++)
        gw__js_resource_free(s->res_all[i]);
    free(s->res_all);
    gw__js_strmap_free(&s->resources, NULL);
    json_decref(s->docs);
    free(s->root_uri);
    free(s);
}

void gw_schema_destroy(struct gw_schema *s)
{
    schema_free(s);
}

static int check_meta(struct gw_schema *s, json_t *schema, int draft, struct gw_error *err)
{
    json_t *sch = json_object_get(schema, "$schema");
    const char *meta = json_is_string(sch) ? json_string_value(sch)
                       : draft == GW_SCHEMA_DRAFT_7
                           ? "http://json-schema.org/draft-07/schema#"
                           : "https://json-schema.org/draft/2020-12/schema";
    char *mu = gw__js_uri_strip_fragment(meta, NULL);
    if (!mu)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    bool self = strcmp(mu, s->root_uri) == 0;
    if (!self) {
        json_t *id = json_object_get(schema, "$id");
        char *iu =
            json_is_string(id) ? gw__js_uri_strip_fragment(json_string_value(id), NULL) : NULL;
        self = iu && strcmp(iu, mu) == 0;
        free(iu);
    }
    if (self) {
        free(mu);
        return 0; /* a metaschema describing itself */
    }
    const struct gw_schema *m = gw__js_registry_meta(s->reg, mu, err);
    free(mu);
    if (!m)
        return err ? err->code : GW_EINVAL;
    json_t *errors = json_array();
    if (!errors)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    if (gw__js_validate_root(m, schema, errors)) {
        json_decref(errors);
        return 0;
    }
    json_t *e0 = json_array_get(errors, 0);
    gw_error_set(err, GW_EINVAL, false, "schema invalid at %s: %s (%s)",
                 e0 ? (*json_string_value(json_object_get(e0, "instanceLocation"))
                           ? json_string_value(json_object_get(e0, "instanceLocation"))
                           : "/")
                    : "/",
                 e0 ? json_string_value(json_object_get(e0, "message")) : "not valid",
                 e0 ? json_string_value(json_object_get(e0, "keywordLocation")) : "");
    json_decref(errors);
    return GW_EINVAL;
}

struct gw_schema *gw__js_compile(struct gw_schema_registry *reg, json_t *schema,
                                 const char *base_uri, const struct gw_schema_options *opts,
                                 bool meta_check, struct gw_error *err)
{
    struct gw_error local;
    if (!err)
        err = &local;
    gw_error_clear(err);
    if (!reg || !schema || (!json_is_object(schema) && !json_is_boolean(schema))) {
        gw_error_set(err, GW_EINVAL, false, "schema must be an object or a boolean");
        return NULL;
    }
    struct gw_schema *s = calloc(1, sizeof(*s));
    if (!s || !(s->docs = json_array())) {
        free(s);
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    s->reg = reg;
    s->format_assert = opts && opts->format_assert;
    int draft = (opts && opts->default_draft) ? (int)opts->default_draft : GW_SCHEMA_DRAFT_2020_12;
    if (json_array_append(s->docs, schema) < 0)
        goto fail;
    s->root_uri = gw__js_uri_strip_fragment(base_uri ? base_uri : "urn:gangway:schema", NULL);
    if (!s->root_uri)
        goto fail;
    if (gw__js_index_document(s, schema, s->root_uri, draft, err) < 0)
        goto fail;
    struct js_nodeinfo *in = gw__js_ptrmap_get(&s->info, schema);
    struct js_nodeinfo booli = {gw__js_strmap_get(&s->resources, s->root_uri), draft, VOC_ALL_2020};
    if (!in)
        in = &booli;
    if (meta_check && json_is_object(schema) && check_meta(s, schema, in->draft, err) < 0)
        goto fail;
    struct cctx c = {.s = s, .err = err, .format_assert = s->format_assert};
    s->root = compile_node(&c, schema, in, "", "schema");
    if (!s->root || compile_dynamic_anchors(&c) < 0)
        goto fail;
    return s;
fail:
    if (err->code == 0)
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
    schema_free(s);
    return NULL;
}

struct gw_schema *gw_schema_compile(struct gw_schema_registry *reg, json_t *schema,
                                    const char *base_uri, const struct gw_schema_options *opts,
                                    struct gw_error *err)
{
    return gw__js_compile(reg, schema, base_uri, opts, true, err);
}
