/* URI reference resolution (RFC 3986 section 5) and JSON pointers (RFC 6901). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct uri_parts {
    const char *scheme, *auth, *path, *query, *frag;
    size_t scheme_n, auth_n, path_n, query_n, frag_n;
    bool has_scheme, has_auth, has_query, has_frag;
};

static size_t scheme_len(const char *s)
{
    if (!isalpha((unsigned char)s[0]))
        return 0;
    size_t i = 1;
    while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
        i++;
    return s[i] == ':' ? i : 0;
}

bool gw__js_uri_is_absolute(const char *s)
{
    return scheme_len(s) > 0;
}

static void uri_parse(const char *s, struct uri_parts *p)
{
    memset(p, 0, sizeof(*p));
    size_t n = scheme_len(s);
    if (n) {
        p->has_scheme = true;
        p->scheme = s;
        p->scheme_n = n;
        s += n + 1;
    }
    if (s[0] == '/' && s[1] == '/') {
        s += 2;
        p->has_auth = true;
        p->auth = s;
        p->auth_n = strcspn(s, "/?#");
        s += p->auth_n;
    }
    p->path = s;
    p->path_n = strcspn(s, "?#");
    s += p->path_n;
    if (*s == '?') {
        p->has_query = true;
        p->query = s + 1;
        p->query_n = strcspn(s + 1, "#");
        s += 1 + p->query_n;
    }
    if (*s == '#') {
        p->has_frag = true;
        p->frag = s + 1;
        p->frag_n = strlen(s + 1);
    }
}

/* remove_dot_segments from RFC 3986 5.2.4, appending the result to out. */
static int remove_dots(struct js_buf *out, const char *in, size_t n)
{
    char *buf = gw__js_strndup(in, n);
    if (!buf)
        return GW_ENOMEM;
    char *s = buf;
    size_t start = out->len;
    int rc = 0;
    while (*s && rc == 0) {
        if (strncmp(s, "../", 3) == 0) {
            s += 3;
        } else if (strncmp(s, "./", 2) == 0) {
            s += 2;
        } else if (strncmp(s, "/./", 3) == 0) {
            s += 2;
        } else if (strcmp(s, "/.") == 0) {
            s[1] = '\0';
        } else if (strncmp(s, "/../", 4) == 0 || strcmp(s, "/..") == 0) {
            s += 3;
            if (*s == '\0') {
                s--;
                *s = '/';
            }
            while (out->len > start && out->s[out->len - 1] != '/')
                out->len--;
            if (out->len > start)
                out->len--;
            out->s[out->len] = '\0';
        } else if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
            break;
        } else {
            size_t seg = (*s == '/') ? 1 + strcspn(s + 1, "/") : strcspn(s, "/");
            rc = gw__js_buf_add(out, s, seg);
            s += seg;
        }
    }
    free(buf);
    return rc;
}

char *gw__js_uri_resolve(const char *base, const char *ref)
{
    struct uri_parts b, r;
    struct js_buf out = {0};
    uri_parse(base, &b);
    uri_parse(ref, &r);
    int rc = 0;
    const struct uri_parts *sch = r.has_scheme ? &r : &b;
    if (sch->has_scheme) {
        rc |= gw__js_buf_add(&out, sch->scheme, sch->scheme_n);
        rc |= gw__js_buf_addc(&out, ':');
    }
    if (r.has_scheme || r.has_auth) {
        if (r.has_auth) {
            rc |= gw__js_buf_add(&out, "//", 2);
            rc |= gw__js_buf_add(&out, r.auth, r.auth_n);
        }
        rc |= remove_dots(&out, r.path, r.path_n);
        if (r.has_query) {
            rc |= gw__js_buf_addc(&out, '?');
            rc |= gw__js_buf_add(&out, r.query, r.query_n);
        }
    } else {
        if (b.has_auth) {
            rc |= gw__js_buf_add(&out, "//", 2);
            rc |= gw__js_buf_add(&out, b.auth, b.auth_n);
        }
        if (r.path_n == 0) {
            rc |= gw__js_buf_add(&out, b.path, b.path_n);
            const struct uri_parts *q = r.has_query ? &r : &b;
            if (q->has_query) {
                rc |= gw__js_buf_addc(&out, '?');
                rc |= gw__js_buf_add(&out, q->query, q->query_n);
            }
        } else {
            if (r.path[0] == '/') {
                rc |= remove_dots(&out, r.path, r.path_n);
            } else {
                struct js_buf merged = {0};
                if (b.has_auth && b.path_n == 0) {
                    rc |= gw__js_buf_addc(&merged, '/');
                } else {
                    size_t keep = b.path_n;
                    while (keep > 0 && b.path[keep - 1] != '/')
                        keep--;
                    rc |= gw__js_buf_add(&merged, b.path, keep);
                }
                rc |= gw__js_buf_add(&merged, r.path, r.path_n);
                if (merged.s)
                    rc |= remove_dots(&out, merged.s, merged.len);
                free(merged.s);
            }
            if (r.has_query) {
                rc |= gw__js_buf_addc(&out, '?');
                rc |= gw__js_buf_add(&out, r.query, r.query_n);
            }
        }
    }
    if (r.has_frag) {
        rc |= gw__js_buf_addc(&out, '#');
        rc |= gw__js_buf_add(&out, r.frag, r.frag_n);
    }
    if (rc == 0 && !out.s)
        rc = gw__js_buf_add(&out, "", 0);
    if (rc != 0) {
        free(out.s);
        return NULL;
    }
    return out.s;
}

char *gw__js_uri_strip_fragment(const char *uri, const char **frag)
{
    const char *h = strchr(uri, '#');
    if (frag)
        *frag = h ? h + 1 : "";
    return gw__js_strndup(uri, h ? (size_t)(h - uri) : strlen(uri));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *gw__js_uri_pct_decode(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1), *o = d;
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 1 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return d;
}
