/* The git backend's template renderer: substitution and five filters. */
#include "git_template.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "git_path.h"
#include "gw/mem.h"

#define MAX_OUTPUT (4u << 20) /* a rendered file larger than 4 MiB is a mistake */
#define MAX_SLUG   63

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > MAX_OUTPUT)
        return -1;
    if (gw_grow(&b->p, &b->cap, b->len + n + 1, 256) < 0)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* A value in flight: a JSON value until a filter turns it into text. */
struct val {
    json_t *j; /* owned */
};

/* Text of a scalar; -1 for null, objects and arrays. *s is malloc'd. */
static int val_text(json_t *j, char **s, size_t *n)
{
    if (json_is_string(j)) {
        *n = json_string_length(j);
        *s = malloc(*n + 1);
        if (*s == NULL)
            return -1;
        memcpy(*s, json_string_value(j), *n + 1);
        return 0;
    }
    if (json_is_number(j) || json_is_boolean(j)) {
        *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
        *n = *s ? strlen(*s) : 0;
        return *s ? 0 : -1;
    }
    return -1;
}

static const char *type_name(json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_NULL:
        return "null";
    default:
        return "a scalar";
    }
}

static int apply_filter(struct val *v, const char *name, size_t nlen, char *msg, size_t cap)
{
    char *s = NULL, *t;
    size_t n = 0;
    json_t *nj;

#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
    if (IS("json")) {
        s = json_dumps(v->j, JSON_ENCODE_ANY | JSON_COMPACT);
        if (s == NULL)
            return gw_gitb_failf(msg, cap, "out of memory");
        nj = json_string(s);
        free(s);
        goto set;
    }
    if (!IS("yaml_string") && !IS("upper") && !IS("lower") && !IS("slug"))
        return gw_gitb_failf(msg, cap, "unknown filter '%.*s'", (int)(nlen > 40 ? 40 : nlen), name);
    if (val_text(v->j, &s, &n) != 0)
        return gw_gitb_failf(msg, cap, "filter '%.*s' applied to %s (use | json)", (int)nlen, name,
                             type_name(v->j));
    if (IS("yaml_string")) {
        /* JSON's double-quoted string is a YAML double-quoted scalar; ASCII
         * only, so no line or paragraph separator survives unescaped. */
        json_t *tmp = json_stringn(s, n);
        free(s);
        s = tmp ? json_dumps(tmp, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
        json_decref(tmp);
        if (s == NULL)
            return gw_gitb_failf(msg, cap, "value is not valid UTF-8");
        nj = json_string(s);
    } else if (IS("upper") || IS("lower")) {
        for (size_t i = 0; i < n; i++)
            s[i] =
                (char)(IS("upper") ? toupper((unsigned char)s[i]) : tolower((unsigned char)s[i]));
        nj = json_stringn(s, n);
    } else { /* slug */
        size_t o = 0;
        bool dash = false;
        t = s;
        for (size_t i = 0; i < n && o < MAX_SLUG; i++) {
            unsigned char c = (unsigned char)s[i];
            if (isalnum(c) && c < 0x80) {
                if (dash && o > 0)
                    t[o++] = '-';
                dash = false;
                if (o < MAX_SLUG)
                    t[o++] = (char)tolower(c);
            } else {
                dash = true;
            }
        }
        while (o > 0 && t[o - 1] == '-')
            o--;
        nj = json_stringn(t, o);
    }
    free(s);
set:
#undef IS
    if (nj == NULL)
        return gw_gitb_failf(msg, cap, "out of memory");
    json_decref(v->j);
    v->j = nj;
    return 0;
}

static int lookup(const struct gw_gitb_tpl_vars *vars, const char *p, size_t n, struct val *v,
                  char *msg, size_t cap)
{
    const char *name = p;
    size_t nn = n;
    json_t *cur;
#define EQ(lit) (n == sizeof(lit) - 1 && memcmp(p, lit, n) == 0)
    if (EQ("run_id") || EQ("requested_by") || EQ("action_id")) {
        const char *s = EQ("run_id")         ? vars->run_id
                        : EQ("requested_by") ? vars->requested_by
                                             : vars->action_id;
        v->j = json_string(s ? s : "");
        return v->j ? 0 : gw_gitb_failf(msg, cap, "variable '%.*s' is not valid UTF-8", (int)n, p);
    }
#undef EQ
    if (n < 7 || memcmp(p, "inputs.", 7) != 0)
        return gw_gitb_failf(msg, cap, "unknown variable '%.*s'", (int)(n > 60 ? 60 : n), p);
    cur = vars->inputs;
    p += 7;
    n -= 7;
    while (1) {
        const char *dot = memchr(p, '.', n);
        size_t k = dot ? (size_t)(dot - p) : n;
        char key[128];
        if (k == 0 || k >= sizeof(key))
            return gw_gitb_failf(msg, cap, "bad variable name '%.*s'", (int)(nn > 60 ? 60 : nn),
                                 name);
        memcpy(key, p, k);
        key[k] = '\0';
        cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
        if (cur == NULL)
            return gw_gitb_failf(msg, cap, "unknown variable '%.*s'", (int)(nn > 60 ? 60 : nn),
                                 name);
        if (dot == NULL)
            break;
        p = dot + 1;
        n -= k + 1;
    }
    v->j = json_incref(cur);
    return 0;
}

/* Evaluates the expression between "{{" and "}}" into text appended to b. */
static int eval(const struct gw_gitb_tpl_vars *vars, const char *p, const char *end, unsigned flags,
                struct buf *b, char *msg, size_t cap)
{
    struct val v = {NULL};
    char *s = NULL;
    size_t n = 0;
    int rc = -1;

    p = skip_ws(p, end);
    if (p < end && *p == '"') {
        const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (q == NULL)
            return gw_gitb_failf(msg, cap, "unterminated string literal");
        v.j = json_stringn(p + 1, (size_t)(q - p - 1));
        if (v.j == NULL)
            return gw_gitb_failf(msg, cap, "string literal is not valid UTF-8");
        p = q + 1;
    } else {
        const char *q = p;
        while (q < end && (ident_char(*q) || *q == '.'))
            q++;
        if (q == p)
            return gw_gitb_failf(msg, cap, "expected a variable after '{{'");
        if (lookup(vars, p, (size_t)(q - p), &v, msg, cap) != 0)
            return -1;
        p = q;
    }
    for (;;) {
        p = skip_ws(p, end);
        if (p == end)
            break;
        if (*p != '|') {
            gw_gitb_failf(msg, cap, "unexpected '%c' in expression",
                          isprint((unsigned char)*p) ? *p : '?');
            goto out;
        }
        p = skip_ws(p + 1, end);
        const char *q = p;
        while (q < end && ident_char(*q))
            q++;
        if (q == p) {
            gw_gitb_failf(msg, cap, "expected a filter name after '|'");
            goto out;
        }
        if (apply_filter(&v, p, (size_t)(q - p), msg, cap) != 0)
            goto out;
        p = q;
    }
    if (val_text(v.j, &s, &n) != 0) {
        gw_gitb_failf(msg, cap, "value is %s; use | json", type_name(v.j));
        goto out;
    }
    if (flags & GW_GIT_TPL_SINGLE_LINE)
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
                gw_gitb_failf(msg, cap, "a substituted value contains a control character (0x%02x)",
                              (unsigned char)s[i]);
                goto out;
            }
    if (buf_add(b, s, n) != 0) {
        gw_gitb_failf(msg, cap, "rendered text too large");
        goto out;
    }
    rc = 0;
out:
    free(s);
    json_decref(v.j);
    return rc;
}

int gw_gitb_tpl_render(const struct gw_gitb_tpl_vars *v, const char *tpl, size_t len,
                       unsigned flags, char **out, size_t *out_len, char *msg, size_t cap)
{
    struct buf b = {NULL, 0, 0};
    const char *p = tpl, *end = tpl + len;
    size_t line = 1;

    *out = NULL;
    if (buf_add(&b, "", 0) != 0)
        return gw_gitb_failf(msg, cap, "out of memory");
    while (p < end) {
        const char *open = NULL;
        for (const char *q = p; q + 1 < end; q++)
            if (q[0] == '{' && q[1] == '{') {
                open = q;
                break;
            }
        if (open == NULL) {
            if (buf_add(&b, p, (size_t)(end - p)) != 0)
                goto too_big;
            break;
        }
        for (const char *q = p; q < open; q++)
            line += *q == '\n';
        if (buf_add(&b, p, (size_t)(open - p)) != 0)
            goto too_big;
        const char *close = NULL;
        for (const char *q = open + 2; q + 1 < end; q++) {
            if (*q == '\n')
                break;
            if (q[0] == '}' && q[1] == '}') {
                close = q;
                break;
            }
        }
        if (close == NULL) {
            free(b.p);
            return gw_gitb_failf(msg, cap, "line %zu: '{{' without '}}' on the same line", line);
        }
        char emsg[200];
        if (eval(v, open + 2, close, flags, &b, emsg, sizeof(emsg)) != 0) {
            free(b.p);
            return gw_gitb_failf(msg, cap, "line %zu: %s", line, emsg);
        }
        p = close + 2;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
too_big:
    free(b.p);
    return gw_gitb_failf(msg, cap, "rendered text too large");
}
