/* Containers, JSON equality and number comparison used by the validator. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

char *gw__js_strdup(const char *s)
{
    return gw__js_strndup(s, strlen(s));
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

static uint64_t hash_str(const char *s)
{
    /* FNV-1a: short keys, no adversarial concern beyond a slow lookup. */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_ptr(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static int strmap_grow(struct js_strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    struct js_strmap_ent *ne = calloc(ncap, sizeof(*ne));
    if (!ne)
        return GW_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->e[i].key)
            continue;
        size_t j = hash_str(m->e[i].key) & (ncap - 1);
        while (ne[j].key)
            j = (j + 1) & (ncap - 1);
        ne[j] = m->e[i];
    }
    free(m->e);
    m->e = ne;
    m->cap = ncap;
    return 0;
}

int gw__js_strmap_put(struct js_strmap *m, const char *key, void *val)
{
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m) < 0)
        return GW_ENOMEM;
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->e[j].key) {
        if (strcmp(m->e[j].key, key) == 0) {
            m->e[j].val = val;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->e[j].key = gw__js_strdup(key);
    if (!m->e[j].key)
        return GW_ENOMEM;
    m->e[j].val = val;
    m->n++;
    return 0;
}

void *gw__js_strmap_get(const struct js_strmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->e[j].key) {
        if (strcmp(m->e[j].key, key) == 0)
            return m->e[j].val;
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

void gw__js_strmap_free(struct js_strmap *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->e[i].key)
            continue;
        free(m->e[i].key);
        if (free_val)
            free_val(m->e[i].val);
    }
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

static int ptrmap_grow(struct js_ptrmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    struct js_ptrmap_ent *ne = calloc(ncap, sizeof(*ne));
    if (!ne)
        return GW_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->e[i].key)
            continue;
        size_t j = hash_ptr(m->e[i].key) & (ncap - 1);
        while (ne[j].key)
            j = (j + 1) & (ncap - 1);
        ne[j] = m->e[i];
    }
    free(m->e);
    m->e = ne;
    m->cap = ncap;
    return 0;
}

int gw__js_ptrmap_put(struct js_ptrmap *m, const void *key, void *val)
{
    if ((m->n + 1) * 2 > m->cap && ptrmap_grow(m) < 0)
        return GW_ENOMEM;
    size_t j = hash_ptr(key) & (m->cap - 1);
    while (m->e[j].key) {
        if (m->e[j].key == key) {
            m->e[j].val = val;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->e[j].key = key;
    m->e[j].val = val;
    m->n++;
    return 0;
}

void *gw__js_ptrmap_get(const struct js_ptrmap *m, const void *key)
{
    if (!m->cap)
        return NULL;
    size_t j = hash_ptr(key) & (m->cap - 1);
    while (m->e[j].key) {
        if (m->e[j].key == key)
            return m->e[j].val;
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

void gw__js_ptrmap_free(struct js_ptrmap *m)
{
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

int gw__js_buf_add(struct js_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 64;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *ns = realloc(b->s, ncap);
        if (!ns)
            return GW_ENOMEM;
        b->s = ns;
        b->cap = ncap;
    }
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
