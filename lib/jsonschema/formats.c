/*
 * `format` checkers (used when format assertion is on). Hand-written
 * parsers following the RFCs the specification names: 3339 (date, time,
 * duration), 5321/6531 (email), 1123/5890 (hostname), 4291 (ipv6),
 * 3986/3987 (uri, iri), 6570 (uri-template), 4122 (uuid), 6901 (pointers).
 * All are ASCII-strict where the RFC is: a Bengali digit is not a digit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

bool gw__js_format_hostname(const char *s, size_t n, bool idn);

enum {
    F_DATE_TIME = 1,
    F_DATE,
    F_TIME,
    F_DURATION,
    F_EMAIL,
    F_IDN_EMAIL,
    F_HOSTNAME,
    F_IDN_HOSTNAME,
    F_IPV4,
    F_IPV6,
    F_URI,
    F_URI_REF,
    F_IRI,
    F_IRI_REF,
    F_URI_TEMPLATE,
    F_UUID,
    F_REGEX,
    F_JSON_POINTER,
    F_REL_JSON_POINTER,
};

static const struct {
    const char *name;
    int id;
} formats[] = {
    {"date-time", F_DATE_TIME},
    {"date", F_DATE},
    {"time", F_TIME},
    {"duration", F_DURATION},
    {"email", F_EMAIL},
    {"idn-email", F_IDN_EMAIL},
    {"hostname", F_HOSTNAME},
    {"idn-hostname", F_IDN_HOSTNAME},
    {"ipv4", F_IPV4},
    {"ipv6", F_IPV6},
    {"uri", F_URI},
    {"uri-reference", F_URI_REF},
    {"iri", F_IRI},
    {"iri-reference", F_IRI_REF},
    {"uri-template", F_URI_TEMPLATE},
    {"uuid", F_UUID},
    {"regex", F_REGEX},
    {"json-pointer", F_JSON_POINTER},
    {"relative-json-pointer", F_REL_JSON_POINTER},
};

int gw__js_format_lookup(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
        if (strcmp(formats[i].name, name) == 0)
            return formats[i].id;
    return 0;
}

static bool isdig(char c)
{
    return c >= '0' && c <= '9';
}

static bool ishex(char c)
{
    return isdig(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool isalph(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Reads exactly `w` digits at s[*i]. */
static bool digits(const char *s, size_t n, size_t *i, int w, int *out)
{
    int v = 0;
    for (int k = 0; k < w; k++) {
        if (*i >= n || !isdig(s[*i]))
            return false;
        v = v * 10 + (s[(*i)++] - '0');
    }
    *out = v;
    return true;
}

static bool full_date(const char *s, size_t n, size_t *i)
{
    int y, m, d;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!digits(s, n, i, 4, &y) || *i >= n || s[(*i)++] != '-' || !digits(s, n, i, 2, &m) ||
        *i >= n || s[(*i)++] != '-' || !digits(s, n, i, 2, &d))
        return false;
    if (m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

static bool full_time(const char *s, size_t n, size_t *i)
{
    int h, m, sec, oh = 0, om = 0, sign = 0;
    if (!digits(s, n, i, 2, &h) || *i >= n || s[(*i)++] != ':' || !digits(s, n, i, 2, &m) ||
        *i >= n || s[(*i)++] != ':' || !digits(s, n, i, 2, &sec))
        return false;
    if (*i < n && s[*i] == '.') {
        (*i)++;
        if (*i >= n || !isdig(s[*i]))
            return false;
        while (*i < n && isdig(s[*i]))
            (*i)++;
    }
    if (*i >= n)
        return false;
    if (s[*i] == 'Z' || s[*i] == 'z') {
        (*i)++;
    } else if (s[*i] == '+' || s[*i] == '-') {
        sign = s[(*i)++] == '+' ? 1 : -1;
        if (!digits(s, n, i, 2, &oh) || *i >= n || s[(*i)++] != ':' || !digits(s, n, i, 2, &om))
            return false;
        if (oh > 23 || om > 59)
            return false;
    } else {
        return false;
    }
    if (h > 23 || m > 59 || sec > 60)
        return false;
    if (sec == 60) {
        /* A leap second is only ever 23:59:60 in UTC. */
        int utc = (h * 60 + m - sign * (oh * 60 + om)) % 1440;
        if (utc < 0)
            utc += 1440;
        if (utc != 23 * 60 + 59)
            return false;
    }
    return true;
}

static bool check_date_time(const char *s, size_t n)
{
    size_t i = 0;
    if (!full_date(s, n, &i) || i >= n || (s[i] != 'T' && s[i] != 't'))
        return false;
    i++;
    return full_time(s, n, &i) && i == n;
}

/* Reads duration designators (digits, then one of `units`, in that order,
 * none skipped inside the run) from s[*i] up to the end or a 'T'; false when
 * one is malformed, else *count says how many it read. */
static bool designators(const char *s, size_t n, size_t *i, const char *units, int *count)
{
    int last = -1;
    *count = 0;
    while (*i < n && s[*i] != 'T') {
        size_t st = *i;
        while (*i < n && isdig(s[*i]))
            (*i)++;
        if (*i == st || *i >= n)
            return false;
        const char *u = strchr(units, s[*i]);
        if (!u || !*u)
            return false;
        int idx = (int)(u - units);
        if (last >= 0 && idx != last + 1)
            return false;
        last = idx;
        (*count)++;
        (*i)++;
    }
    return true;
}

static bool check_duration(const char *s, size_t n)
{
    /* RFC 3339 appendix A: units in order, none skipped inside a run
     * (Y[M[D]], M[D], D; H[M[S]], M[S], S), weeks alone. */
    size_t i = 1;
    int ndate, ntime;
    if (n < 2 || s[0] != 'P')
        return false;
    if (s[n - 1] == 'W') { /* P<digits>W */
        while (i < n - 1 && isdig(s[i]))
            i++;
        if (i > 1 && i == n - 1)
            return true;
        i = 1;
    }
    if (!designators(s, n, &i, "YMD", &ndate))
        return false;
    if (i == n)
        return ndate > 0;
    i++; /* 'T' */
    return designators(s, n, &i, "HMS", &ntime) && ntime > 0 && i == n;
}

static bool check_ipv4(const char *s, size_t n)
{
    int parts = 0;
    size_t i = 0;
    while (parts < 4) {
        size_t st = i;
        int v = 0;
        while (i < n && isdig(s[i]) && i - st < 3)
            v = v * 10 + (s[i++] - '0');
        if (i == st || v > 255 || (i - st > 1 && s[st] == '0'))
            return false;
        parts++;
        if (parts < 4) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
    }
    return i == n;
}

static bool check_ipv6(const char *s, size_t n)
{
    int groups = 0;
    bool dcolon = false;
    size_t i = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        dcolon = true;
        i = 2;
        if (i == n)
            return true;
    } else if (n && s[0] == ':') {
        return false;
    }
    while (i < n) {
        size_t st = i;
        while (i < n && ishex(s[i]) && i - st < 5)
            i++;
        if (i < n && s[i] == '.') {
            /* Trailing dotted IPv4 takes two groups. */
            if (!check_ipv4(s + st, n - st))
                return false;
            groups += 2;
            i = n;
            break;
        }
        if (i == st || i - st > 4)
            return false;
        groups++;
        if (i == n)
            break;
        if (s[i] != ':')
            return false;
        i++;
        if (i < n && s[i] == ':') {
            if (dcolon)
                return false;
            dcolon = true;
            i++;
            if (i == n)
                break;
        } else if (i == n) {
            return false;
        }
    }
    return dcolon ? groups <= 7 : groups == 8;
}

static bool check_uuid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !ishex(s[i]))
            return false;
    }
    return true;
}

static bool check_json_pointer(const char *s, size_t n)
{
    if (n && s[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '~' && (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1')))
            return false;
    return true;
}

static bool check_rel_json_pointer(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && isdig(s[i]))
        i++;
    if (i == 0 || (i > 1 && s[0] == '0'))
        return false;
    if (i == n)
        return true;
    if (s[i] == '#')
        return i + 1 == n;
    return check_json_pointer(s + i, n - i);
}

/* ---- URIs and IRIs (RFC 3986 / 3987) ---- */

static bool unreserved(unsigned char c)
{
    return isalph((char)c) || isdig((char)c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool subdelim(unsigned char c)
{
    return c && strchr("!$&'()*+,;=", c) != NULL;
}

/* Accepts one character of class `extra` (plus unreserved, sub-delims,
 * pct-encoded and, for IRIs, any non-ASCII); returns bytes consumed or 0. */
static size_t uri_char(const char *s, size_t n, size_t i, const char *extra, bool iri)
{
    unsigned char c = (unsigned char)s[i];
    if (c == '%')
        return (i + 2 < n && ishex(s[i + 1]) && ishex(s[i + 2])) ? 3 : 0;
    if (unreserved(c) || subdelim(c) || (c && strchr(extra, c)))
        return 1;
    if (iri && c >= 0x80)
        return 1;
    return 0;
}

static bool uri_part(const char *s, size_t n, const char *extra, bool iri)
{
    for (size_t i = 0; i < n;) {
        size_t k = uri_char(s, n, i, extra, iri);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

static bool check_authority(const char *s, size_t n, bool iri)
{
    const char *at = memchr(s, '@', n);
    if (at) {
        if (!uri_part(s, (size_t)(at - s), ":", iri))
            return false;
        n -= (size_t)(at - s) + 1;
        s = at + 1;
    }
    size_t hl;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return false;
        hl = (size_t)(close - s) + 1;
        if (!(hl > 2 && (s[1] == 'v' || s[1] == 'V')) && !check_ipv6(s + 1, hl - 2))
            return false;
    } else {
        hl = 0;
        while (hl < n && s[hl] != ':')
            hl++;
        if (!uri_part(s, hl, "", iri))
            return false;
    }
    if (hl < n) {
        if (s[hl] != ':')
            return false;
        for (size_t i = hl + 1; i < n; i++)
            if (!isdig(s[i]))
                return false;
    }
    return true;
}

/* Parses a URI-reference; `need_scheme` for absolute URIs. */
static bool check_uri(const char *s, size_t n, bool need_scheme, bool iri)
{
    size_t i = 0;
    if (n && isalph(s[0])) {
        size_t k = 1;
        while (k < n && (isalph(s[k]) || isdig(s[k]) || s[k] == '+' || s[k] == '-' || s[k] == '.'))
            k++;
        if (k < n && s[k] == ':')
            i = k + 1;
    }
    if (need_scheme && i == 0)
        return false;
    size_t pend = i;
    while (pend < n && s[pend] != '?' && s[pend] != '#')
        pend++;
    const char *p = s + i;
    size_t pn = pend - i;
    if (pn >= 2 && p[0] == '/' && p[1] == '/') {
        size_t a = 2;
        while (a < pn && p[a] != '/')
            a++;
        if (!check_authority(p + 2, a - 2, iri))
            return false;
        p += a;
        pn -= a;
    } else if (i == 0) {
        /* relative-ref: the first segment may not contain ':' */
        size_t seg = 0;
        while (seg < pn && p[seg] != '/')
            seg++;
        if (memchr(p, ':', seg))
            return false;
    }
    if (!uri_part(p, pn, ":@/", iri))
        return false;
    i = pend;
    if (i < n && s[i] == '?') {
        size_t q = i + 1;
        while (q < n && s[q] != '#')
            q++;
        if (!uri_part(s + i + 1, q - i - 1, ":@/?", iri))
            return false;
        i = q;
    }
    if (i < n && s[i] == '#' && !uri_part(s + i + 1, n - i - 1, ":@/?", iri))
        return false;
    return true;
}

static bool check_uri_template(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '{') {
            size_t e = i + 1;
            while (e < n && s[e] != '}')
                e++;
            if (e >= n)
                return false;
            size_t j = i + 1;
            if (j < e && strchr("+#./;?&=,!@|", s[j]))
                j++;
            /* variable-list: varspec *("," varspec) */
            for (;;) {
                size_t st = j;
                bool dot_ok = false;
                while (j < e) {
                    if (isalph(s[j]) || isdig(s[j]) || s[j] == '_') {
                        j++;
                        dot_ok = true;
                    } else if (s[j] == '%' && j + 2 < e && ishex(s[j + 1]) && ishex(s[j + 2])) {
                        j += 3;
                        dot_ok = true;
                    } else if (s[j] == '.' && dot_ok && j + 1 < e && s[j + 1] != '.') {
                        j++;
                        dot_ok = false;
                    } else {
                        break;
                    }
                }
                if (j == st || s[j - 1] == '.')
                    return false;
                if (j < e && s[j] == '*') {
                    j++;
                } else if (j < e && s[j] == ':') {
                    size_t d = ++j;
                    while (j < e && isdig(s[j]))
                        j++;
                    if (j == d || j - d > 4 || s[d] == '0')
                        return false;
                }
                if (j == e)
                    break;
                if (s[j] != ',')
                    return false;
                j++;
            }
            i = e + 1;
        } else if (c == '}' || c <= 0x20 || c == 0x7f || strchr("\"'<>\\^`|", c)) {
            if (c != '\'')
                return false;
            i++;
        } else if (c == '%') {
            if (i + 2 >= n || !ishex(s[i + 1]) || !ishex(s[i + 2]))
                return false;
            i += 3;
        } else {
            i++;
        }
    }
    return true;
}

/* ---- email (RFC 5321 Mailbox; RFC 6531 for idn-email) ---- */

static bool atext(unsigned char c, bool idn)
{
    return isalph((char)c) || isdig((char)c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c)) ||
           (idn && c >= 0x80);
}

static bool check_email(const char *s, size_t n, bool idn)
{
    size_t i = 0;
    if (n && s[0] == '"') {
        for (i = 1; i < n && s[i] != '"'; i++) {
            if (s[i] == '\\') {
                i++;
            } else if ((unsigned char)s[i] < 0x20 && s[i] != '\t') {
                return false;
            }
        }
        if (i >= n)
            return false;
        i++;
    } else {
        bool prev_dot = true;
        while (i < n && s[i] != '@') {
            if (s[i] == '.') {
                if (prev_dot)
                    return false;
                prev_dot = true;
            } else if (atext((unsigned char)s[i], idn)) {
                prev_dot = false;
            } else {
                return false;
            }
            i++;
        }
        if (prev_dot)
            return false;
    }
    if (i >= n || s[i] != '@')
        return false;
    i++;
    const char *d = s + i;
    size_t dn = n - i;
    if (dn >= 2 && d[0] == '[' && d[dn - 1] == ']') {
        if (dn > 7 && strncmp(d + 1, "IPv6:", 5) == 0)
            return check_ipv6(d + 6, dn - 7);
        return check_ipv4(d + 1, dn - 2);
    }
    return gw__js_format_hostname(d, dn, idn);
}

bool gw__js_format_check(int id, const char *s, size_t n)
{
    size_t i = 0;
    switch (id) {
    case F_DATE_TIME:
        return check_date_time(s, n);
    case F_DATE:
        return full_date(s, n, &i) && i == n;
    case F_TIME:
        return full_time(s, n, &i) && i == n;
    case F_DURATION:
        return check_duration(s, n);
    case F_EMAIL:
        return check_email(s, n, false);
    case F_IDN_EMAIL:
        return check_email(s, n, true);
    case F_HOSTNAME:
        return gw__js_format_hostname(s, n, false);
    case F_IDN_HOSTNAME:
        return gw__js_format_hostname(s, n, true);
    case F_IPV4:
        return check_ipv4(s, n);
    case F_IPV6:
        return check_ipv6(s, n);
    case F_URI:
        return check_uri(s, n, true, false);
    case F_URI_REF:
        return check_uri(s, n, false, false);
    case F_IRI:
        return check_uri(s, n, true, true);
    case F_IRI_REF:
        return check_uri(s, n, false, true);
    case F_URI_TEMPLATE:
        return check_uri_template(s, n);
    case F_UUID:
        return check_uuid(s, n);
    case F_REGEX: {
        if (memchr(s, '\0', n))
            return false;
        struct js_regex *re = gw__js_regex_compile(s, NULL, 0);
        gw__js_regex_free(re);
        return re != NULL;
    }
    case F_JSON_POINTER:
        return check_json_pointer(s, n);
    case F_REL_JSON_POINTER:
        return check_rel_json_pointer(s, n);
    default:
        return true;
    }
}
