/*
 * CORS (cors.h): the allow-list, the headers of a simple response and the
 * answer to a preflight.
 */
#include "cors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ALLOW_HEADERS  "Authorization, Content-Type, Idempotency-Key, Last-Event-ID"
#define EXPOSE_HEADERS "Location, Retry-After, Idempotency-Replayed"
#define MAX_AGE_S      600

struct gw_cors {
    bool any;
    size_t n;
    char **origins;
};

void gw_cors_destroy(struct gw_cors *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->origins[i]);
    free(c->origins);
    free(c);
}

/* "scheme://host[:port]" without path, query, user info or blanks. */
static bool origin_valid(const char *o)
{
    const char *sep = strstr(o, "://");
    if (sep == NULL || sep == o || sep[3] == '\0')
        return false;
    for (const char *p = o; p < sep; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '+' || *p == '-' ||
              *p == '.' || (p > o && *p >= '0' && *p <= '9')))
            return false;
    return strcspn(sep + 3, "/?#@ \t\r\n,") == strlen(sep + 3);
}

struct gw_cors *gw_cors_create(const char *list, struct gw_error *err)
{
    if (list == NULL || *list == '\0')
        return NULL;
    struct gw_cors *c = calloc(1, sizeof(*c));
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    if (c == NULL || (c->origins = calloc(cap, sizeof(char *))) == NULL)
        goto oom;
    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, ",");
        const char *s = p, *e = p + n;
        p = *e == ',' ? e + 1 : e;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '/'))
            e--;
        if (s == e)
            continue;
        char *o = strndup(s, (size_t)(e - s));
        if (o == NULL)
            goto oom;
        if (strcmp(o, "*") == 0) {
            c->any = true;
            free(o);
            continue;
        }
        if (!origin_valid(o)) {
            gw_error_set(err, GW_EINVAL, false,
                         "--cors-origins: '%s' is not an origin (scheme://host[:port]) or '*'", o);
            free(o);
            gw_cors_destroy(c);
            return NULL;
        }
        c->origins[c->n++] = o;
    }
    return c;
oom:
    gw_error_set(err, GW_ENOMEM, false, "out of memory");
    gw_cors_destroy(c);
    return NULL;
}

/* The Origin header if the list allows it, else NULL. */
static const char *allowed(const struct gw_cors *c, const struct gw_http_req *req)
{
    const char *o = c != NULL ? gw_http_req_header(req, "origin") : NULL;
    if (o == NULL || *o == '\0' || strpbrk(o, "\r\n") != NULL)
        return NULL;
    if (c->any)
        return o;
    for (size_t i = 0; i < c->n; i++)
        if (strcasecmp(c->origins[i], o) == 0)
            return o;
    return NULL;
}

static const char *pool_printf(struct gw_http_req *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const char *pool_printf(struct gw_http_req *req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *out = n >= 0 ? gw_http_req_alloc(req, (size_t)n + 1) : NULL;
    if (out != NULL) {
        va_start(ap, fmt);
        vsnprintf(out, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return out;
}

const char *gw_cors_headers(const struct gw_cors *c, struct gw_http_req *req)
{
    const char *o = allowed(c, req);
    if (o == NULL)
        return c != NULL && !c->any ? "Vary: Origin\r\n" : NULL;
    return pool_printf(req,
                       "Access-Control-Allow-Origin: %s\r\n"
                       "Access-Control-Expose-Headers: %s\r\n"
                       "Vary: Origin\r\n",
                       c->any ? "*" : o, EXPOSE_HEADERS);
}

bool gw_cors_is_preflight(const struct gw_http_req *req)
{
    return strcmp(req->method, "OPTIONS") == 0 && gw_http_req_header(req, "origin") != NULL &&
           gw_http_req_header(req, "access-control-request-method") != NULL;
}

const char *gw_cors_preflight_headers(const struct gw_cors *c, struct gw_http_req *req,
                                      const char *methods)
{
    const char *o = allowed(c, req);
    const char *m = gw_http_req_header(req, "access-control-request-method");
    if (o == NULL || m == NULL || *m == '\0')
        return NULL;
    /* The requested method must be one of the path's, as a whole word. */
    size_t ml = strlen(m);
    bool found = false;
    for (const char *p = methods; *p != '\0' && !found;) {
        size_t n = strcspn(p, ", ");
        found = n == ml && strncmp(p, m, n) == 0;
        p += n;
        p += strspn(p, ", ");
    }
    if (!found)
        return NULL;
    char age[16];
    snprintf(age, sizeof(age), "%d", MAX_AGE_S);
    const char *head = pool_printf(req,
                                   "Access-Control-Allow-Origin: %s\r\n"
                                   "Access-Control-Allow-Methods: %s\r\n",
                                   c->any ? "*" : o, methods);
    return head == NULL ? NULL
                        : pool_printf(req,
                                      "%sAccess-Control-Allow-Headers: " ALLOW_HEADERS "\r\n"
                                      "Access-Control-Max-Age: %s\r\n"
                                      "Vary: Origin, Access-Control-Request-Method, "
                                      "Access-Control-Request-Headers\r\n",
                                      head, age);
}
