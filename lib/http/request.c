/*
 * Request objects: allocation and reuse, turning the accumulated request line
 * and headers into the public struct gw_http_req, and the lookups handlers use.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct gw__http_request *gw__http_request_new(struct gw__http_conn *c)
{
    struct gw__http_request *r = c->spare;
    if (r != NULL) {
        c->spare = NULL;
    } else {
        r = malloc(sizeof(*r));
        if (r == NULL)
            return NULL;
        gw__http_pool_init(&r->pool, r->pool_mem, sizeof(r->pool_mem));
    }
    memset(&r->pub, 0, sizeof(r->pub));
    r->pub.query = "";
    r->pub.body = "";
    memcpy(r->pub.remote_addr, c->remote, sizeof(r->pub.remote_addr));
    r->conn = c;
    r->srv = c->srv;
    r->phase = REQ_RECEIVING;
    r->keep_alive = false;
    r->head = false;
    r->http10 = false;
    r->chunked_out = false;
    r->on_close = NULL;
    r->body = NULL;
    r->body_cap = 0;
    return r;
}

void gw__http_request_release(struct gw__http_request *r)
{
    struct gw__http_conn *c = r->conn;
    gw__http_pool_reset(&r->pool);
    /* Keeping one finished request per connection makes a keep-alive
     * request cost no malloc at all. */
    if (c != NULL && c->state != CONN_CLOSED && c->spare == NULL) {
        c->spare = r;
        return;
    }
    free(r);
}

/* Percent-decodes src[0..len) into dst (which may be src: the output is never
 * longer). Returns the decoded length, or -1 on a bad escape or a NUL. */
static long decode_path(const char *src, size_t len, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = gw__http_hex_value((unsigned char)src[i + 1]),
                lo = gw__http_hex_value((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (ch == '\0')
            return -1;
        dst[o++] = (char)ch;
    }
    return (long)o;
}

int gw__http_bad_request(struct gw__http_conn *c, const char *detail)
{
    if (c->fail_status == 0) {
        c->fail_status = 400;
        c->fail_code = "bad_request";
        c->fail_detail = detail;
    }
    return -1;
}

int gw__http_request_finish_headers(struct gw__http_conn *c, struct gw__http_request *r)
{
    char *data = gw__http_pool_alloc(&r->pool, c->hlen);
    struct gw_http_header *h =
        gw__http_pool_alloc(&r->pool, sizeof(*h) * (c->nheaders ? c->nheaders : 1));
    if (data == NULL || h == NULL)
        return gw__http_bad_request(c, "out of memory");
    memcpy(data, c->hbuf, c->hlen);
    for (unsigned i = 0; i < c->nheaders; i++) {
        char *name = data + c->hoff[i].name;
        for (char *q = name; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q + ('a' - 'A'));
        char *value = data + c->hoff[i].value;
        size_t vlen = strlen(value);
        while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
            value[--vlen] = '\0';
        h[i].name = name;
        h[i].value = value;
    }
    r->pub.headers = h;
    r->pub.nheaders = c->nheaders;

    const http_parser *p = &c->parser;
    r->pub.method = http_method_str((enum http_method)p->method);
    if (c->method[0] != '\0') {
        size_t n = strlen(c->method) + 1;
        char *m = gw__http_pool_alloc(&r->pool, n);
        if (m == NULL)
            return gw__http_bad_request(c, "out of memory");
        memcpy(m, c->method, n);
        r->pub.method = m;
        c->method[0] = '\0';
    }
    r->head = p->method == HTTP_HEAD;
    r->http10 = p->http_major < 1 || (p->http_major == 1 && p->http_minor == 0);

    /* The URL: origin-form "/path?query", absolute-form "http://h/path?q",
     * "*" (OPTIONS) or an authority (CONNECT, passed through undecoded). */
    char *url = data;
    size_t ulen = c->url_len;
    url[ulen] = '\0';
    char *path = url;
    size_t plen = ulen;
    if (p->method == HTTP_CONNECT || (ulen == 1 && url[0] == '*')) {
        r->pub.path = url;
        return 0;
    }
    if (url[0] != '/') {
        struct http_parser_url u;
        http_parser_url_init(&u);
        if (http_parser_parse_url(url, ulen, 0, &u) != 0)
            return gw__http_bad_request(c, "invalid request target");
        if (u.field_set & (1 << UF_PATH)) {
            path = url + u.field_data[UF_PATH].off;
            plen = u.field_data[UF_PATH].len;
        } else {
            /* No path: "http://host" means "/". The byte before the host
             * ("/" of "//") can't be reused, so point at a literal. */
            path = NULL;
            plen = 0;
        }
        if (u.field_set & (1 << UF_QUERY)) {
            char *q = url + u.field_data[UF_QUERY].off;
            q[u.field_data[UF_QUERY].len] = '\0';
            r->pub.query = q;
        }
        if (path == NULL) {
            r->pub.path = "/";
            return 0;
        }
    } else {
        /* No fragment to strip: the strict scan refuses '#' in the target. */
        char *qm = memchr(url, '?', ulen);
        if (qm != NULL) {
            plen = (size_t)(qm - url);
            r->pub.query = qm + 1;
        } else {
            plen = ulen;
        }
    }
    long n = decode_path(path, plen, path);
    if (n < 0)
        return gw__http_bad_request(c, "invalid percent-encoding in the request path");
    path[n] = '\0';
    r->pub.path = path;
    return 0;
}

const char *gw_http_req_header(const struct gw_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

/* Decodes one form-urlencoded byte at s[*i] (advancing *i); invalid or NUL
 * escapes are taken literally. */
static char form_byte(const char *s, size_t len, size_t *i)
{
    char ch = s[*i];
    if (ch == '+') {
        (*i)++;
        return ' ';
    }
    if (ch == '%' && *i + 2 < len) {
        int hi = gw__http_hex_value((unsigned char)s[*i + 1]),
            lo = gw__http_hex_value((unsigned char)s[*i + 2]);
        if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
            *i += 3;
            return (char)(hi << 4 | lo);
        }
    }
    (*i)++;
    return ch;
}

bool gw_http_req_query(const struct gw_http_req *req, const char *name, char *out, size_t cap)
{
    const char *q = req->query;
    while (*q != '\0') {
        const char *amp = strchr(q, '&');
        size_t seg = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', seg);
        size_t klen = eq ? (size_t)(eq - q) : seg;
        /* Compare the decoded key with `name` without a copy. */
        size_t i = 0;
        const char *n = name;
        while (i < klen && *n != '\0' && form_byte(q, klen, &i) == *n)
            n++;
        if (i == klen && *n == '\0') {
            size_t o = 0;
            if (eq != NULL) {
                const char *v = eq + 1;
                size_t vlen = seg - klen - 1;
                for (size_t j = 0; j < vlen;) {
                    char ch = form_byte(v, vlen, &j);
                    if (o + 1 >= cap)
                        return false;
                    out[o++] = ch;
                }
            }
            if (cap == 0)
                return false;
            out[o] = '\0';
            return true;
        }
        if (amp == NULL)
            break;
        q = amp + 1;
    }
    return false;
}

void *gw_http_req_alloc(struct gw_http_req *req, size_t n)
{
    struct gw__http_request *r = (struct gw__http_request *)req;
    return gw__http_pool_alloc(&r->pool, n);
}
