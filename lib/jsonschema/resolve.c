/*
 * Schema resources: indexing documents ($id, $anchor, $dynamicAnchor),
 * dialects ($schema, $vocabulary) and static `$ref` resolution. All of it
 * runs at compile time; validation only follows pointers set up here.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define META_2020    "https://json-schema.org/draft/2020-12/schema"
#define META_7       "http://json-schema.org/draft-07/schema"
#define VOCAB_PREFIX "https://json-schema.org/draft/2020-12/vocab/"

int gw__js_draft_of_uri(const char *uri)
{
    size_t n = strcspn(uri, "#");
    if (n == strlen(META_2020) && strncmp(uri, META_2020, n) == 0)
        return GW_SCHEMA_DRAFT_2020_12;
    if (n == strlen(META_7) && strncmp(uri, META_7, n) == 0)
        return GW_SCHEMA_DRAFT_7;
    return 0;
}

void gw__js_resource_free(void *p)
{
    struct js_resource *r = p;
    if (!r)
        return;
    free(r->uri);
    gw__js_strmap_free(&r->anchors, NULL);
    gw__js_strmap_free(&r->dyn_anchors, NULL);
    gw__js_strmap_free(&r->dyn_nodes, NULL);
    free(r);
}

static unsigned vocab_bit(const char *uri)
{
    static const struct {
        const char *name;
        unsigned bit;
    } v[] = {
        {"core", VOC_CORE},
        {"applicator", VOC_APPLICATOR},
        {"unevaluated", VOC_UNEVALUATED},
        {"validation", VOC_VALIDATION},
        {"format-annotation", VOC_FORMAT_ANN},
        {"format-assertion", VOC_FORMAT_ASSERT},
        {"content", VOC_CONTENT},
        {"meta-data", VOC_META},
    };
    if (strncmp(uri, VOCAB_PREFIX, strlen(VOCAB_PREFIX)) != 0)
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(v); i++)
        if (strcmp(uri + strlen(VOCAB_PREFIX), v[i].name) == 0)
            return v[i].bit;
    return 0;
}

static int dialect_rec(struct gw_schema *s, const char *meta_uri, int *draft, unsigned *vocab,
                       int depth, struct gw_error *err)
{
    int d = gw__js_draft_of_uri(meta_uri);
    if (d) {
        *draft = d;
        *vocab = VOC_ALL_2020;
        return 0;
    }
    if (depth > 8)
        return gw_error_set(err, GW_EINVAL, false, "$schema chain too long at %s", meta_uri);
    char *u = gw__js_uri_strip_fragment(meta_uri, NULL);
    if (!u)
        return GW_ENOMEM;
    json_t *doc = gw__js_registry_find(s->reg, u);
    free(u);
    if (!json_is_object(doc))
        return gw_error_set(err, GW_ENOTFOUND, false, "unknown $schema %s", meta_uri);
    json_t *parent = json_object_get(doc, "$schema");
    if (json_is_string(parent) && strcmp(json_string_value(parent), meta_uri) != 0) {
        int rc = dialect_rec(s, json_string_value(parent), draft, vocab, depth + 1, err);
        if (rc < 0)
            return rc;
    } else {
        *draft = GW_SCHEMA_DRAFT_2020_12;
        *vocab = VOC_ALL_2020;
    }
    json_t *voc = json_object_get(doc, "$vocabulary");
    if (json_is_object(voc) && *draft == GW_SCHEMA_DRAFT_2020_12) {
        const char *k;
        json_t *v;
        unsigned bits = 0;
        json_object_foreach(voc, k, v)
        {
            unsigned b = vocab_bit(k);
            if (!b && json_is_true(v))
                return gw_error_set(err, GW_EINVAL, false,
                                    "$schema %s requires unknown vocabulary %s", meta_uri, k);
            bits |= b;
        }
        *vocab = bits | VOC_CORE;
    }
    return 0;
}

int gw__js_meta_dialect(struct gw_schema *s, const char *meta_uri, int *draft, unsigned *vocab,
                        struct gw_error *err)
{
    return dialect_rec(s, meta_uri, draft, vocab, 0, err);
}

static struct js_resource *resource_add(struct gw_schema *s, const char *uri, json_t *root,
                                        int draft, unsigned vocab)
{
    struct js_resource *r = gw__js_strmap_get(&s->resources, uri);
    if (r)
        return r;
    struct js_resource **nv = gw__js_grow(s->res_all, &s->capres, s->nres, 8, sizeof(*nv));
    if (!nv)
        return NULL;
    s->res_all = nv;
    r = calloc(1, sizeof(*r));
    if (!r || !(r->uri = gw__js_strdup(uri)) || gw__js_strmap_put(&s->resources, uri, r) < 0) {
        gw__js_resource_free(r);
        return NULL;
    }
    r->root = root;
    r->draft = draft;
    r->vocab = vocab;
    s->res_all[s->nres++] = r;
    return r;
}

static struct js_nodeinfo *info_add(struct gw_schema *s, json_t *j, struct js_resource *res,
                                    int draft, unsigned vocab)
{
    struct js_nodeinfo *in = gw__js_ptrmap_get(&s->info, j);
    if (in)
        return in;
    struct js_nodeinfo **nv = gw__js_grow(s->infos, &s->capinfos, s->ninfos, 32, sizeof(*nv));
    if (!nv)
        return NULL;
    s->infos = nv;
    in = calloc(1, sizeof(*in));
    if (!in)
        return NULL;
    in->res = res;
    in->draft = draft;
    in->vocab = vocab;
    if (gw__js_ptrmap_put(&s->info, j, in) < 0) {
        free(in);
        return NULL;
    }
    s->infos[s->ninfos++] = in;
    return in;
}

static const char *const single_2020[] = {
    "additionalProperties",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "items",
    "contains",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
};
static const char *const array_2020[] = {"allOf", "anyOf", "oneOf", "prefixItems"};
static const char *const map_2020[] = {"properties", "patternProperties", "$defs",
                                       "dependentSchemas"};
static const char *const single_7[] = {
    "additionalProperties", "propertyNames", "not", "if", "then", "else", "items", "contains",
    "additionalItems",
};
static const char *const array_7[] = {"allOf", "anyOf", "oneOf", "items"};
static const char *const map_7[] = {"properties", "patternProperties", "definitions",
                                    "dependencies"};

static int walk(struct gw_schema *s, json_t *j, struct js_resource *res, int draft, unsigned vocab,
                int depth, struct gw_error *err);

static int walk_children(struct gw_schema *s, json_t *j, struct js_resource *res, int draft,
                         unsigned vocab, int depth, struct gw_error *err)
{
    bool d7 = draft == GW_SCHEMA_DRAFT_7;
    const char *const *single = d7 ? single_7 : single_2020;
    size_t nsingle = d7 ? ARRAY_SIZE(single_7) : ARRAY_SIZE(single_2020);
    const char *const *arr = d7 ? array_7 : array_2020;
    size_t narr = d7 ? ARRAY_SIZE(array_7) : ARRAY_SIZE(array_2020);
    const char *const *map = d7 ? map_7 : map_2020;
    size_t nmap = d7 ? ARRAY_SIZE(map_7) : ARRAY_SIZE(map_2020);
    int rc;
    for (size_t i = 0; i < nsingle; i++) {
        json_t *c = json_object_get(j, single[i]);
        if (c && (rc = walk(s, c, res, draft, vocab, depth + 1, err)) < 0)
            return rc;
    }
    for (size_t i = 0; i < narr; i++) {
        json_t *a = json_object_get(j, arr[i]), *c;
        size_t k;
        if (!json_is_array(a))
            continue;
        json_array_foreach(a, k, c) if ((rc = walk(s, c, res, draft, vocab, depth + 1, err)) <
                                        0) return rc;
    }
    for (size_t i = 0; i < nmap; i++) {
        json_t *m = json_object_get(j, map[i]), *c;
        const char *k;
        if (!json_is_object(m))
            continue;
        json_object_foreach(m, k, c) if ((rc = walk(s, c, res, draft, vocab, depth + 1, err)) <
                                         0) return rc;
    }
    return 0;
}

static int walk(struct gw_schema *s, json_t *j, struct js_resource *res, int draft, unsigned vocab,
                int depth, struct gw_error *err)
{
    if (!json_is_object(j))
        return 0;
    if (depth > JS_MAX_DEPTH)
        return gw_error_set(err, GW_ELIMIT, false, "schema nested too deeply");
    if (gw__js_ptrmap_get(&s->info, j))
        return 0; /* already indexed (a document reached twice) */
    json_t *id = json_object_get(j, "$id");
    json_t *sch = json_object_get(j, "$schema");
    bool d7 = draft == GW_SCHEMA_DRAFT_7;
    if (json_is_string(id) && !(d7 && json_object_get(j, "$ref"))) {
        const char *frag;
        char *abs = gw__js_uri_resolve(res->uri, json_string_value(id));
        char *u = abs ? gw__js_uri_strip_fragment(abs, &frag) : NULL;
        if (!u) {
            free(abs);
            return GW_ENOMEM;
        }
        int rc = 0;
        if (json_string_value(id)[0] == '#' && d7) {
            if (*frag && gw__js_strmap_put(&res->anchors, frag, j) < 0)
                rc = GW_ENOMEM;
        } else {
            if (!d7 && json_is_string(sch) &&
                (rc = gw__js_meta_dialect(s, json_string_value(sch), &draft, &vocab, err)) < 0)
                goto done;
            struct js_resource *nr = resource_add(s, u, j, draft, vocab);
            if (!nr) {
                rc = GW_ENOMEM;
                goto done;
            }
            res = nr;
            if (d7 && *frag && gw__js_strmap_put(&res->anchors, frag, j) < 0)
                rc = GW_ENOMEM;
        }
    done:
        free(abs);
        free(u);
        if (rc < 0)
            return rc;
    }
    if (!info_add(s, j, res, draft, vocab))
        return GW_ENOMEM;
    if (!d7) {
        json_t *a = json_object_get(j, "$anchor");
        if (json_is_string(a) && gw__js_strmap_put(&res->anchors, json_string_value(a), j) < 0)
            return GW_ENOMEM;
        a = json_object_get(j, "$dynamicAnchor");
        if (json_is_string(a) &&
            (gw__js_strmap_put(&res->anchors, json_string_value(a), j) < 0 ||
             gw__js_strmap_put(&res->dyn_anchors, json_string_value(a), j) < 0))
            return GW_ENOMEM;
    }
    return walk_children(s, j, res, draft, vocab, depth, err);
}

int gw__js_index_document(struct gw_schema *s, json_t *doc, const char *uri, int draft,
                          struct gw_error *err)
{
    unsigned vocab = VOC_ALL_2020;
    json_t *sch = json_object_get(doc, "$schema");
    if (json_is_string(sch)) {
        int rc = gw__js_meta_dialect(s, json_string_value(sch), &draft, &vocab, err);
        if (rc < 0)
            return rc;
    }
    if (!draft)
        draft = GW_SCHEMA_DRAFT_2020_12;
    struct js_resource *r = resource_add(s, uri, doc, draft, vocab);
    if (!r)
        return GW_ENOMEM;
    int rc = walk(s, doc, r, draft, vocab, 0, err);
    if (rc < 0)
        return rc;
    /* The root's own $id (if any) created a second resource; alias the
     * document URI's anchors to it so "uri#name" works both ways. */
    struct js_nodeinfo *in = gw__js_ptrmap_get(&s->info, doc);
    if (in && in->res != r) {
        r->draft = in->res->draft;
        r->vocab = in->res->vocab;
        if (gw__js_strmap_put(&s->resources, uri, in->res) < 0)
            return GW_ENOMEM;
    }
    return 0;
}

json_t *gw__js_resolve(struct gw_schema *s, const char *abs_ref, int draft,
                       struct js_nodeinfo **info, struct gw_error *err)
{
    const char *frag;
    char *u = gw__js_uri_strip_fragment(abs_ref, &frag);
    json_t *target = NULL;
    if (!u) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    struct js_resource *res = gw__js_strmap_get(&s->resources, u);
    if (!res) {
        json_t *doc = gw__js_registry_find(s->reg, u);
        if (doc) {
            if (json_array_append(s->docs, doc) < 0 ||
                gw__js_index_document(s, doc, u, draft, err) < 0)
                goto out;
            res = gw__js_strmap_get(&s->resources, u);
        }
    }
    if (!res) {
        gw_error_set(err, GW_ENOTFOUND, false, "unresolvable $ref %s", abs_ref);
        goto out;
    }
    if (*frag == '\0') {
        target = res->root;
    } else if (*frag == '/') {
        char *p = gw__js_uri_pct_decode(frag);
        target = p ? gw_jsonptr_get(res->root, p) : NULL;
        free(p);
    } else {
        char *p = gw__js_uri_pct_decode(frag);
        target = p ? gw__js_strmap_get(&res->anchors, p) : NULL;
        free(p);
    }
    if (!target) {
        gw_error_set(err, GW_ENOTFOUND, false, "unresolvable $ref %s", abs_ref);
        goto out;
    }
    *info = gw__js_ptrmap_get(&s->info, target);
    if (!*info)
        *info = info_add(s, target, res, res->draft, res->vocab);
    if (!*info) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        target = NULL;
    }
out:
    free(u);
    return target;
}
