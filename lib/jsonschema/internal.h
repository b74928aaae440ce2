/*
 * Internals of the JSON Schema validator, shared by the lib/jsonschema sources only.
 *
 * A schema compiles into a graph of `struct js_node` (one per schema object
 * or boolean, memoised by json_t pointer so `$ref` cycles close on
 * themselves). Each node holds an array of `struct js_kw`, the keywords that
 * apply to it in the order they must run (annotation producers before
 * unevaluated*). Everything here is immutable after compile, which is what
 * makes validation thread-safe.
 */
#ifndef GW_JSONSCHEMA_INTERNAL_H
#define GW_JSONSCHEMA_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/error.h"
#include "gw/embed.h"
#include "gw/jsonptr.h"
#include "gw/jsonschema.h"

/* ---- small containers (util.c) ---- */

/* The two maps below: open addressing, linear probing, at most half full
 * (cap a power of two); an entry with a NULL key is free. */
struct js_map_ent {
    const void *key; /* js_strmap: its own copy of the string; js_ptrmap: the pointer */
    void *val;
};

/* String map; keys are copied, values borrowed. */
struct js_strmap {
    struct js_map_ent *e;
    size_t cap, n;
};

int gw__js_strmap_put(struct js_strmap *m, const char *key, void *val);
void *gw__js_strmap_get(const struct js_strmap *m, const char *key);
void gw__js_strmap_free(struct js_strmap *m, void (*free_val)(void *));

/* Pointer map: keys compared by identity, keys and values borrowed. */
struct js_ptrmap {
    struct js_map_ent *e;
    size_t cap, n;
};

int gw__js_ptrmap_put(struct js_ptrmap *m, const void *key, void *val);
void *gw__js_ptrmap_get(const struct js_ptrmap *m, const void *key);
void gw__js_ptrmap_free(struct js_ptrmap *m);

/* Growable string. */
struct js_buf {
    char *s;
    size_t len, cap;
};

int gw__js_buf_add(struct js_buf *b, const char *s, size_t n);
int gw__js_buf_adds(struct js_buf *b, const char *s);
int gw__js_buf_addc(struct js_buf *b, char c);

/* JSON Schema equality (1 == 1.0; objects by key set). */
bool gw__js_json_equal(json_t *a, json_t *b);
/* Compares two numbers exactly where possible: <0, 0, >0. */
int gw__js_num_cmp(json_t *a, json_t *b);
bool gw__js_is_integer(json_t *v);
size_t gw__js_utf8_len(const char *s, size_t n);
char *gw__js_strdup(const char *s);
/* Room for one more in the array `v` of *cap elements of `size` bytes, `n` of
 * them used: `v` itself, or `v` moved to a block twice as large (`first`
 * elements the first time; *cap updated); NULL, `v` untouched, when out of
 * memory. */
void *gw__js_grow(void *v, size_t *cap, size_t n, size_t first, size_t size);
char *gw__js_strndup(const char *s, size_t n);

/* ---- URIs (uri.c) ---- */

/* Resolves `ref` against absolute `base` (RFC 3986 section 5.2). Returns a
 * malloc'd string or NULL on allocation failure. */
char *gw__js_uri_resolve(const char *base, const char *ref);
/* Splits at '#': returns malloc'd URI without fragment; *frag points into
 * `uri` after '#' (or to "" when absent). */
char *gw__js_uri_strip_fragment(const char *uri, const char **frag);
/* Percent-decodes a fragment into a new string. */
char *gw__js_uri_pct_decode(const char *s);
bool gw__js_uri_is_absolute(const char *s);

/* ---- regular expressions (regex.c) ---- */

struct js_regex;
/* Compiles an ECMA-262 style pattern with PCRE2 (UTF). NULL when invalid;
 * `why` (may be NULL) receives PCRE2's message. */
struct js_regex *gw__js_regex_compile(const char *pattern, char *why, size_t whylen);
bool gw__js_regex_match(const struct js_regex *re, const char *s, size_t n);
void gw__js_regex_free(struct js_regex *re);

/* ---- formats (formats.c) ---- */

/* Returns an opaque checker id for a format name, or 0 when unknown. */
int gw__js_format_lookup(const char *name);
bool gw__js_format_check(int id, const char *s, size_t n);

/* ---- compiled schema ---- */

enum js_vocab {
    VOC_CORE = 1u << 0,
    VOC_APPLICATOR = 1u << 1,
    VOC_UNEVALUATED = 1u << 2,
    VOC_VALIDATION = 1u << 3,
    VOC_FORMAT_ANN = 1u << 4,
    VOC_FORMAT_ASSERT = 1u << 5,
    VOC_CONTENT = 1u << 6,
    VOC_META = 1u << 7,
    VOC_ALL_2020 = 0xdf, /* everything but format-assertion */
};

/* A schema resource (document root or subschema with $id). */
struct js_resource {
    char *uri; /* absolute, without fragment */
    json_t *root;
    int draft;
    unsigned vocab;
    struct js_strmap anchors;     /* name -> json_t * */
    struct js_strmap dyn_anchors; /* name -> json_t * */
    struct js_strmap dyn_nodes;   /* name -> struct js_node * (after compile) */
};

enum js_kw_type {
    KW_REF,
    KW_DYNREF,
    KW_TYPE,
    KW_ENUM,
    KW_CONST,
    KW_MULTIPLEOF,
    KW_MAXIMUM,
    KW_EXMAXIMUM,
    KW_MINIMUM,
    KW_EXMINIMUM,
    KW_MAXLENGTH,
    KW_MINLENGTH,
    KW_PATTERN,
    KW_FORMAT,
    KW_MAXITEMS,
    KW_MINITEMS,
    KW_UNIQUE,
    KW_MAXPROPS,
    KW_MINPROPS,
    KW_REQUIRED,
    KW_DEPREQUIRED,
    KW_ALLOF,
    KW_ANYOF,
    KW_ONEOF,
    KW_NOT,
    KW_IFTE,
    KW_DEPSCHEMAS,
    KW_PROPS,
    KW_PROPNAMES,
    KW_ITEMS,
    KW_CONTAINS,
    KW_UNEVAL_PROPS,
    KW_UNEVAL_ITEMS,
};

/* Type bits for KW_TYPE. */
enum {
    T_NULL = 1,
    T_BOOL = 2,
    T_OBJECT = 4,
    T_ARRAY = 8,
    T_NUMBER = 16,
    T_STRING = 32,
    T_INTEGER = 64,
};

struct js_node;

struct js_pattern_prop {
    struct js_regex *re;
    struct js_node *node;
    char *loc;
};

struct js_kw {
    enum js_kw_type type;
    const char *name; /* keyword as written (static string) */
    char *loc;        /* keywordLocation */
    json_t *value;    /* the keyword's value as written (borrowed), or NULL:
                       * error reports quote it (pattern, limits) */
    union {
        struct js_node *node;
        json_t *json;
        double num;
        size_t count;
        unsigned types;
        struct js_regex *re;
        struct {
            struct js_node **v;
            size_t n;
        } list;
        struct { /* REF, DYNREF */
            struct js_node *target;
            char *anchor; /* DYNREF: dynamic anchor name when it applies */
        } ref;
        struct {
            struct js_node *if_, *then_, *else_;
        } ifte;
        struct { /* DEPSCHEMAS, DEPREQUIRED */
            char **names;
            struct js_node **nodes; /* DEPSCHEMAS */
            json_t **reqs;          /* DEPREQUIRED: arrays of strings */
            size_t n;
        } dep;
        struct {                    /* properties + patternProperties + additionalProperties */
            struct js_strmap props; /* name -> struct js_node * */
            struct js_pattern_prop *pats;
            size_t npats;
            struct js_node *additional;
            char *add_loc;
        } props;
        struct { /* prefixItems/items-array + items/additionalItems */
            struct js_node **prefix;
            size_t nprefix;
            struct js_node *rest;
            char *rest_loc;
            const char *rest_name;
        } items;
        struct {
            struct js_node *node;
            size_t min, max; /* max SIZE_MAX = none */
            bool annotate;   /* 2020-12: contains marks evaluated items */
        } contains;
        struct {
            int id;
            const char *name;
            bool assert_always;
        } format;
    } u;
};

struct js_node {
    json_t *json; /* borrowed (document kept alive by the schema) */
    bool is_bool, bool_value;
    bool has_uneval;      /* unevaluatedProperties/Items present: collect annotations */
    const char *owner_kw; /* boolean schemas: the keyword that holds them */
    struct js_resource *res;
    char *loc; /* schema location of this node */
    struct js_kw *kw;
    size_t nkw;
};

/* One compiled schema and everything it owns. */
struct gw_schema {
    struct gw_schema_registry *reg;
    struct js_node *root;
    bool format_assert;
    struct js_ptrmap nodes;       /* json_t * -> struct js_node * */
    struct js_ptrmap info;        /* json_t * -> struct js_nodeinfo * */
    struct js_strmap resources;   /* uri -> struct js_resource * (aliases allowed) */
    struct js_resource **res_all; /* owned resources */
    size_t nres, capres;
    struct js_nodeinfo **infos; /* owned node infos */
    size_t ninfos, capinfos;
    json_t *docs; /* array keeping every used document alive */
    char *root_uri;
};

/* Where a schema object sits: its base URI's resource and draft. */
struct js_nodeinfo {
    struct js_resource *res;
    int draft;
    unsigned vocab;
};

/* Registry (registry.c). */
struct gw_schema_registry {
    pthread_mutex_t lock;
    struct js_strmap docs;  /* uri -> json_t * (owned ref) */
    struct js_strmap metas; /* uri -> struct gw_schema * (compiled metaschemas) */
};

/* Finds a document by absolute URI without fragment; borrowed, NULL if absent. */
json_t *gw__js_registry_find(struct gw_schema_registry *reg, const char *uri);
/* Returns the compiled metaschema for `uri` (cached), or NULL with err. */
const struct gw_schema *gw__js_registry_meta(struct gw_schema_registry *reg, const char *uri,
                                             struct gw_error *err);
/* Known draft of a metaschema URI, 0 when unknown. */
int gw__js_draft_of_uri(const char *uri);

/* Bundled metaschemas keyed by $id (metaschemas.c, generated by tools/embed.py). */
extern const struct gw_embedded gw__js_bundled_metaschemas[];
extern const size_t gw__js_bundled_metaschemas_count;

/* compile.c internals used by validate.c */
struct gw_schema *gw__js_compile(struct gw_schema_registry *reg, json_t *schema,
                                 const char *base_uri, const struct gw_schema_options *opts,
                                 bool check_meta, struct gw_error *err);
void gw__js_node_free(struct js_node *n);

/* Walks a document to register resources and anchors (resolve.c). */
int gw__js_index_document(struct gw_schema *s, json_t *doc, const char *uri, int draft,
                          struct gw_error *err);
/* Determines draft and vocabularies from a $schema value. */
int gw__js_meta_dialect(struct gw_schema *s, const char *meta_uri, int *draft, unsigned *vocab,
                        struct gw_error *err);
/* Resolves a reference (absolute URI with fragment) to a json schema node. */
json_t *gw__js_resolve(struct gw_schema *s, const char *abs_ref, int draft,
                       struct js_nodeinfo **info, struct gw_error *err);
void gw__js_resource_free(void *r);

/* Runtime evaluation (validate.c). */
struct js_vctx;
bool gw__js_validate_root(const struct gw_schema *s, json_t *instance, json_t *errors);

#define JS_MAX_DEPTH 512

#endif
