/* Containers, JSON equality and number comparison used by the validator. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gw/mem.h"
#include "internal.h"

char *gw__js_strdup(const char *s)
{
    return gw__js_strndup(s, strlen(s));
}

void *gw__js_grow(void *v, size_t *cap, size_t n, size_t first, size_t size)
{
    if (n < *cap)
        return v;
    size_t ncap = *cap ? *cap * 2 : first;
    void *nv = realloc(v, ncap * size);
    if (nv)
        *cap = ncap;
    return nv;
}

char *gw__js_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

typedef uint64_t (*hash_fn)(const void *key);
typedef bool (*same_fn)(const void *a, const void *b);

static uint64_t hash_str(const void *key)
{
    /* FNV-1a: short keys, no adversarial concern beyond a slow lookup. */
    uint64_t h = 1469598103934665603ull;
    for (const char *s = key; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static bool same_str(const void *a, const void *b)
{
    return strcmp(a, b) == 0;
}

static uint64_t hash_ptr(const void *key)
{
    uint64_t x = (uint64_t)(uintptr_t)key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static bool same_ptr(const void *a, const void *b)
{
    return a == b;
}

/* The entry holding `key`, or the free one where it belongs. */
static size_t slot(const struct js_map_ent *e, size_t cap, const void *key, hash_fn hash,
                   same_fn same)
{
    size_t j = hash(key) & (cap - 1);
    while (e[j].key && !same(e[j].key, key))
        j = (j + 1) & (cap - 1);
    return j;
}

/* Makes room for one more entry: doubles the table (from `first`) when it
 * would be more than half full. */
static int reserve(struct js_map_ent **e, size_t *cap, size_t n, size_t first, hash_fn hash,
                   same_fn same)
{
    if ((n + 1) * 2 <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : first;
    struct js_map_ent *ne = calloc(ncap, sizeof(*ne));
    if (!ne)
        return GW_ENOMEM;
    for (size_t i = 0; i < *cap; i++)
        if ((*e)[i].key)
            ne[slot(ne, ncap, (*e)[i].key, hash, same)] = (*e)[i];
    free(*e);
    *e = ne;
    *cap = ncap;
    return 0;
}

int gw__js_strmap_put(struct js_strmap *m, const char *key, void *val)
{
    if (reserve(&m->e, &m->cap, m->n, 16, hash_str, same_str) < 0)
        return GW_ENOMEM;
    struct js_map_ent *e = &m->e[slot(m->e, m->cap, key, hash_str, same_str)];
    if (!e->key) {
        if (!(e->key = gw__js_strdup(key)))
            return GW_ENOMEM;
        m->n++;
    }
    e->val = val;
    return 0;
}

void *gw__js_strmap_get(const struct js_strmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    const struct js_map_ent *e = &m->e[slot(m->e, m->cap, key, hash_str, same_str)];
    return e->key ? e->val : NULL;
}

void gw__js_strmap_free(struct js_strmap *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->e[i].key)
            continue;
        free((char *)m->e[i].key);
        if (free_val)
            free_val(m->e[i].val);
    }
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

int gw__js_ptrmap_put(struct js_ptrmap *m, const void *key, void *val)
{
    if (reserve(&m->e, &m->cap, m->n, 64, hash_ptr, same_ptr) < 0)
        return GW_ENOMEM;
    struct js_map_ent *e = &m->e[slot(m->e, m->cap, key, hash_ptr, same_ptr)];
    if (!e->key) {
        e->key = key;
        m->n++;
    }
    e->val = val;
    return 0;
}

void *gw__js_ptrmap_get(const struct js_ptrmap *m, const void *key)
{
    if (!m->cap)
        return NULL;
    const struct js_map_ent *e = &m->e[slot(m->e, m->cap, key, hash_ptr, same_ptr)];
    return e->key ? e->val : NULL;
}

void gw__js_ptrmap_free(struct js_ptrmap *m)
{
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

int gw__js_buf_add(struct js_buf *b, const char *s, size_t n)
{
    if (gw_grow(&b->s, &b->cap, b->len + n + 1, 64) < 0)
        return GW_ENOMEM;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

int gw__js_buf_adds(struct js_buf *b, const char *s)
{
    return gw__js_buf_add(b, s, strlen(s));
}

int gw__js_buf_addc(struct js_buf *b, char c)
{
    return gw__js_buf_add(b, &c, 1);
}

bool gw__js_is_integer(json_t *v)
{
    if (json_is_integer(v))
        return true;
    if (!json_is_real(v))
        return false;
    double d = json_real_value(v);
    return isfinite(d) && d == floor(d);
}

int gw__js_num_cmp(json_t *a, json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    /* long double keeps 64-bit integers exact on x86; elsewhere double is close enough. */
    long double x = json_is_integer(a) ? (long double)json_integer_value(a) : json_real_value(a);
    long double y = json_is_integer(b) ? (long double)json_integer_value(b) : json_real_value(b);
    return x < y ? -1 : x > y;
}

bool gw__js_json_equal(json_t *a, json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return gw__js_num_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!gw__js_json_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach(a, k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !gw__js_json_equal(v, w))
                return false;
        }
        return true;
    }
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    default:
        return true; /* true, false, null */
    }
}

size_t gw__js_utf8_len(const char *s, size_t n)
{
    size_t cps = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            cps++;
    return cps;
}
