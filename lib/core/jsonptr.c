/* JSON pointers (RFC 6901): see gw/jsonptr.h. */
#include "gw/jsonptr.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/error.h"

void gw_jsonptr_init(struct gw_jsonptr *p)
{
    p->s = NULL;
    p->len = p->cap = 0;
}

void gw_jsonptr_finish(struct gw_jsonptr *p)
{
    if (p == NULL)
        return;
    free(p->s);
    gw_jsonptr_init(p);
}

const char *gw_jsonptr_str(const struct gw_jsonptr *p)
{
    return p->s != NULL ? p->s : "";
}

/* Room for `more` bytes after len, and the NUL. */
static int reserve(struct gw_jsonptr *p, size_t more)
{
    if (more > SIZE_MAX - p->len - 1)
        return GW_ENOMEM;
    size_t need = p->len + more + 1;
    if (need <= p->cap)
        return 0;
    size_t cap = p->cap != 0 ? p->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *s = realloc(p->s, cap);
    if (s == NULL)
        return GW_ENOMEM;
    p->s = s;
    p->cap = cap;
    return 0;
}

int gw_jsonptr_push_n(struct gw_jsonptr *p, const char *token, size_t n)
{
    size_t esc = 0;
    for (size_t i = 0; i < n; i++)
        esc += token[i] == '~' || token[i] == '/';
    if (n > SIZE_MAX - 1 - esc || reserve(p, 1 + n + esc) < 0)
        return GW_ENOMEM;
    char *o = p->s + p->len;
    *o++ = '/';
    for (size_t i = 0; i < n; i++) {
        if (token[i] == '~' || token[i] == '/') {
            *o++ = '~';
            *o++ = token[i] == '~' ? '0' : '1';
        } else {
            *o++ = token[i];
        }
    }
    *o = '\0';
    p->len = (size_t)(o - p->s);
    return 0;
}

int gw_jsonptr_push(struct gw_jsonptr *p, const char *token)
{
    return gw_jsonptr_push_n(p, token, strlen(token));
}

int gw_jsonptr_push_index(struct gw_jsonptr *p, size_t i)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%zu", i);
    return gw_jsonptr_push_n(p, digits, (size_t)n);
}

int gw_jsonptr_append(struct gw_jsonptr *p, const char *pointer)
{
    size_t n = strlen(pointer);
    if (reserve(p, n) < 0)
        return GW_ENOMEM;
    memcpy(p->s + p->len, pointer, n + 1);
    p->len += n;
    return 0;
}

void gw_jsonptr_truncate(struct gw_jsonptr *p, size_t len)
{
    if (p->s != NULL && len < p->len) {
        p->len = len;
        p->s[len] = '\0';
    }
}

char *gw_jsonptr_steal(struct gw_jsonptr *p)
{
    char *s = p->s != NULL ? p->s : strdup("");
    gw_jsonptr_init(p);
    return s;
}

bool gw_jsonptr_valid(const char *pointer, size_t n)
{
    if (n > 0 && pointer[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (pointer[i] == '~' && (i + 1 >= n || (pointer[i + 1] != '0' && pointer[i + 1] != '1')))
            return false;
    return true;
}

/* An array index token: "0", or digits without a leading zero, that fits. */
static bool array_index(const char *tok, size_t n, size_t *out)
{
    size_t v = 0;
    if (n == 0 || (n > 1 && tok[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (tok[i] < '0' || tok[i] > '9')
            return false;
        size_t d = (size_t)(tok[i] - '0');
        if (v > (SIZE_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* One step down: the member or element named by the unescaped token. */
static json_t *step(json_t *v, const char *tok, size_t n)
{
    size_t i;
    if (json_is_object(v))
        return json_object_getn(v, tok, n);
    if (json_is_array(v) && array_index(tok, n, &i))
        return json_array_get(v, i);
    return NULL;
}

json_t *gw_jsonptr_get_n(json_t *root, const char *pointer, size_t n)
{
    char small[256];
    if (!gw_jsonptr_valid(pointer, n))
        return NULL;
    if (n == 0)
        return root;
    /* An unescaped token is never longer than the pointer itself. */
    char *tok = n < sizeof(small) ? small : malloc(n);
    if (tok == NULL)
        return NULL;
    json_t *v = root;
    size_t i = 1; /* past the leading '/' */
    while (v != NULL) {
        size_t t = 0;
        for (; i < n && pointer[i] != '/'; i++) {
            char c = pointer[i];
            if (c == '~')
                c = pointer[++i] == '0' ? '~' : '/';
            tok[t++] = c;
        }
        v = step(v, tok, t);
        if (i >= n)
            break;
        i++; /* the '/' before the next token */
    }
    if (tok != small)
        free(tok);
    return v;
}

json_t *gw_jsonptr_get(json_t *root, const char *pointer)
{
    return gw_jsonptr_get_n(root, pointer, strlen(pointer));
}
