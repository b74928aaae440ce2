/*
 * Strict RFC 9112 framing: a scan of the raw request bytes before
 * http-parser sees them, and the header rules http-parser does not enforce.
 *
 * Why a second look at the bytes: Debian's libhttp-parser2.9 behaves as
 * built with HTTP_PARSER_STRICT=0 (upstream's Makefile builds the shared
 * library with its "fast" flags, which set it; the header's default of 1
 * does not reach compiled code), and http-parser has no setting or callback
 * that would let us see or veto single bytes. Measured on 2.9.4-5
 * (docs/decisions/0018), it accepts a space inside or before a
 * header name ("Transfer-Encoding : chunked" is taken as chunked), obsolete
 * line folding, bare LF line ends, a bare CR that ends the header section or
 * a chunk-size line, any HTTP/d.d version, spaces, tabs and bytes >= 0x80 in
 * the request target, chunk data not followed by CRLF, and anything in chunk
 * extensions. No Debian package validates HTTP/1.1 strictly on top of it.
 *
 * So conn.c passes each slice of input through gw__http_framing_scan() first and
 * feeds http-parser only the prefix the scan accepted. The scan follows the
 * RFC 9112 grammar for the request line and the header section, and for the
 * chunked framing (chunk-size, chunk-ext, CRLF after the data, trailer
 * section). Content-Length bodies are not looked at. The scan keeps a few
 * bytes of state, so it works across reads, and it stops at the end of each
 * section: http-parser's callbacks then say what comes next
 * (gw__http_framing_begin_body, gw__http_framing_begin_head). If the two ever disagreed on
 * where a section ends, the scan refuses the next byte (FRAMING_WAIT).
 */
#include "internal.h"

#include <string.h>
#include <strings.h>

enum {
    /* request line */
    S_START,    /* before the request line; empty lines (CRLF) are skipped */
    S_START_LF, /* CR of an empty line seen */
    S_METHOD,
    S_TARGET_START,
    S_TARGET,
    S_PCT1, /* after '%' in the target */
    S_PCT2,
    S_VERSION, /* "HTTP/d.d", vpos counts the bytes */
    S_REQLINE_LF,
    /* field lines: the header section, and the trailer section of a chunked body */
    S_LINE_START,
    S_NAME,
    S_VALUE,
    S_FIELD_LF,
    S_END_LF, /* CR of the empty line that ends the section */
    /* chunked body */
    S_SIZE_START,
    S_SIZE,
    S_EXT_BWS,        /* whitespace after the size or a value: ';' must follow */
    S_EXT_NAME_START, /* after ';' */
    S_EXT_NAME,
    S_EXT_NAME_WS, /* whitespace after a name: '=' or ';' must follow */
    S_EXT_VAL_START,
    S_EXT_TOKEN,
    S_EXT_QUOTED,
    S_EXT_QPAIR,
    S_EXT_AFTER_QUOTED,
    S_SIZE_LF,
    S_DATA,
    S_DATA_CR,
    S_DATA_LF,
};

static const char bare_lf[] = "bare LF as a line terminator (lines must end in CRLF)";
static const char bare_cr[] = "CR not followed by LF";
static const char bad_ext[] = "malformed chunk extension";

static bool is_digit(unsigned ch)
{
    return ch >= '0' && ch <= '9';
}

int gw__http_hex_value(unsigned ch)
{
    if (is_digit(ch))
        return (int)(ch - '0');
    if (ch >= 'a' && ch <= 'f')
        return (int)(ch - 'a' + 10);
    if (ch >= 'A' && ch <= 'F')
        return (int)(ch - 'A' + 10);
    return -1;
}

/* Character classes, one lookup per byte (the scan runs over every request
 * head, so it should cost no more than http-parser's own pass):
 *   1 tchar (RFC 9110 §5.6.2);
 *   2 request-target byte besides "%" HEXDIG HEXDIG: the characters RFC 3986
 *     allows in a URI, without '#' (a fragment is never sent, RFC 9112 §3.2).
 *     The component grammar is not checked: '[' and ']' pass outside an IP
 *     literal (browsers send them raw in queries);
 *   4 field-value byte (RFC 9110 §5.5): VCHAR, obs-text, SP, HTAB;
 *   8 RFC 3986 unreserved or sub-delims (Host). */
enum { C_TCHAR = 1, C_TARGET = 2, C_FIELD = 4, C_URI = 8 };

static const unsigned char cls[256] = {
    /* 00 */ 0,  0,  0,  0,  0,  0,  0,  0,  0,  4,  0,  0,  0,  0,  0,  0,
    /* 10 */ 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    /* 20 */ 4,  15, 4,  5,  15, 5,  15, 15, 14, 14, 15, 15, 14, 15, 15, 6,
    /* 30 */ 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  14, 4,  14, 4,  6,
    /* 40 */ 6,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    /* 50 */ 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  4,  6,  5,  15,
    /* 60 */ 5,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    /* 70 */ 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 4,  5,  4,  15, 0,
    /* 80 */ 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    /* 90 */ 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    /* a0 */ 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    /* b0 */ 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    /* c0 */ 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    /* d0 */ 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    /* e0 */ 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    /* f0 */ 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
};

static bool is_tchar(unsigned ch)
{
    return cls[ch & 0xff] & C_TCHAR;
}

static bool is_target_char(unsigned ch)
{
    return cls[ch & 0xff] & C_TARGET;
}

static bool is_field_char(unsigned ch)
{
    return cls[ch & 0xff] & C_FIELD;
}

static bool is_unreserved_or_sub_delim(unsigned ch)
{
    return cls[ch & 0xff] & C_URI;
}

/* qdtext (RFC 9110 §5.6.4). */
static bool is_qdtext(unsigned ch)
{
    return is_field_char(ch) && ch != '"' && ch != '\\';
}

/* Refuses the byte at `at`: records why and returns its offset. An LF where
 * it does not belong is always a bare LF; other bytes get `detail`. */
static size_t refuse(struct gw__http_framing *f, size_t at, unsigned ch, const char *detail)
{
    f->error = ch == '\n' ? bare_lf : detail;
    return at;
}

void gw__http_framing_begin_head(struct gw__http_framing *f)
{
    f->mode = FRAMING_HEAD;
    f->state = S_START;
    f->vpos = 0;
    f->first_line = true;
    f->chunk_left = 0;
    f->error = NULL;
}

void gw__http_framing_begin_body(struct gw__http_framing *f, bool chunked)
{
    f->mode = chunked ? FRAMING_CHUNKED : FRAMING_NONE;
    f->state = S_SIZE_START;
    f->first_line = true;
    f->chunk_left = 0;
    f->error = NULL;
}

/* The section (head or chunked body) ends with byte `at`. */
static size_t section_done(struct gw__http_framing *f, size_t at)
{
    f->mode = FRAMING_WAIT;
    return at + 1;
}

/* One byte of a field line (header or trailer section); the states
 * S_LINE_START .. S_END_LF. Returns false when the byte is refused. */
static bool field_byte(struct gw__http_framing *f, unsigned ch, const char **why)
{
    switch (f->state) {
    case S_LINE_START:
        if (ch == '\r') {
            f->state = S_END_LF;
        } else if (is_tchar(ch)) {
            f->state = S_NAME;
        } else if (ch == ' ' || ch == '\t') {
            /* RFC 9112 §5.2 (obs-fold) and §2.2 (whitespace before the
             * first field): a server may reject either; we do. */
            *why = f->first_line && f->mode == FRAMING_HEAD
                       ? "whitespace between the request line and the first header field"
                       : "obsolete line folding (a header line starting with whitespace)";
            return false;
        } else if (ch == ':') {
            *why = "empty header field name";
            return false;
        } else {
            *why = "invalid character in a header field name";
            return false;
        }
        f->first_line = false;
        return true;
    case S_NAME:
        if (ch == ':') {
            f->state = S_VALUE;
        } else if (!is_tchar(ch)) {
            if (ch == ' ' || ch == '\t')
                *why = "whitespace in or after a header field name (RFC 9112 §5.1)";
            else if (ch == '\r')
                *why = "header line without a colon";
            else
                *why = "invalid character in a header field name";
            return false;
        }
        return true;
    case S_VALUE:
        if (ch == '\r') {
            f->state = S_FIELD_LF;
        } else if (!is_field_char(ch)) {
            *why = "control character in a header field value";
            return false;
        }
        return true;
    case S_FIELD_LF:
        if (ch != '\n') {
            *why = bare_cr;
            return false;
        }
        f->state = S_LINE_START;
        return true;
    default:
        *why = "internal framing state";
        return false;
    }
}

size_t gw__http_framing_scan(struct gw__http_framing *f, const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    const char *why = NULL;
    switch (f->mode) {
    case FRAMING_NONE:
        return len;
    case FRAMING_WAIT:
        /* http-parser went on where the scan saw the end of a section. */
        f->error = "the request framing is ambiguous";
        return 0;
    default:
        break;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned ch = p[i];
        switch (f->state) {
        case S_START:
            /* RFC 9112 §2.2: empty lines before the request line are ignored. */
            if (ch == '\r')
                f->state = S_START_LF;
            else if (is_tchar(ch))
                f->state = S_METHOD;
            else
                return refuse(f, i, ch, "invalid character at the start of the request line");
            break;
        case S_START_LF:
            if (ch != '\n')
                return refuse(f, i, ch, bare_cr);
            f->state = S_START;
            break;
        case S_METHOD:
            if (ch == ' ')
                f->state = S_TARGET_START;
            else if (!is_tchar(ch))
                return refuse(f, i, ch, "invalid character in the method");
            break;
        case S_TARGET_START:
            if (ch == ' ')
                return refuse(f, i, ch, "request line parts must be separated by one space");
            if (ch == '\r')
                return refuse(f, i, ch, "request line without a request target");
            f->state = S_TARGET;
            /* fall through */
        case S_TARGET:
            while (i + 1 < len && is_target_char(ch)) /* the common bytes at once */
                ch = p[++i];
            if (ch == ' ') {
                f->state = S_VERSION;
                f->vpos = 0;
            } else if (ch == '%') {
                f->state = S_PCT1;
            } else if (ch == '\r') {
                return refuse(f, i, ch, "request line without an HTTP version (HTTP/0.9)");
            } else if (!is_target_char(ch)) {
                return refuse(f, i, ch, "invalid character in the request target");
            }
            break;
        case S_PCT1:
        case S_PCT2:
            if (gw__http_hex_value(ch) < 0)
                return refuse(f, i, ch, "invalid percent-encoding in the request target");
            f->state = f->state == S_PCT1 ? S_PCT2 : S_TARGET;
            break;
        case S_VERSION:
            if (f->vpos < 5) {
                if (ch == ' ' && f->vpos == 0)
                    return refuse(f, i, ch, "request line parts must be separated by one space");
                if (ch != (unsigned char)"HTTP/"[f->vpos])
                    return refuse(f, i, ch, "malformed HTTP version");
            } else if (f->vpos == 5 || f->vpos == 7) {
                if (!is_digit(ch))
                    return refuse(f, i, ch, "malformed HTTP version");
                if (f->vpos == 5)
                    f->major = (uint8_t)(ch - '0');
                else
                    f->minor = (uint8_t)(ch - '0');
            } else if (f->vpos == 6) {
                if (ch != '.')
                    return refuse(f, i, ch, "malformed HTTP version");
            } else {
                if (ch != '\r')
                    return refuse(f, i, ch, "malformed HTTP version");
                /* Well-formed but not 1.0 or 1.1 (0.9, 1.2, 2.0, ...): 400,
                 * see docs/decisions/0018 for why not 505. */
                if (f->major != 1 || f->minor > 1)
                    return refuse(f, i, ch,
                                  "unsupported HTTP version (only HTTP/1.0 and HTTP/1.1 are "
                                  "served)");
                f->state = S_REQLINE_LF;
            }
            f->vpos++;
            break;
        case S_REQLINE_LF:
            if (ch != '\n')
                return refuse(f, i, ch, bare_cr);
            f->state = S_LINE_START;
            f->first_line = true;
            break;
        case S_NAME:
            while (i + 1 < len && is_tchar(ch))
                ch = p[++i];
            if (is_tchar(ch))
                break;
            /* fall through */
        case S_LINE_START:
        case S_FIELD_LF:
            if (!field_byte(f, ch, &why))
                return refuse(f, i, ch, why);
            break;
        case S_VALUE:
            /* The bulk of a header section: take the run of value bytes at once. */
            while (i < len && is_field_char(p[i])) /* CR is not one */
                i++;
            if (i == len)
                return len;
            if (!field_byte(f, p[i], &why))
                return refuse(f, i, p[i], why);
            break;
        case S_END_LF:
            if (ch != '\n')
                return refuse(f, i, ch, bare_cr);
            return section_done(f, i);
        case S_SIZE_START:
            if (gw__http_hex_value(ch) < 0)
                return refuse(f, i, ch, "invalid chunk size");
            f->chunk_left = (uint64_t)gw__http_hex_value(ch);
            f->state = S_SIZE;
            break;
        case S_SIZE:
            if (gw__http_hex_value(ch) >= 0) {
                /* The same bound as http-parser's, so both refuse together. */
                if (f->chunk_left > (UINT64_MAX - 16) / 16)
                    return refuse(f, i, ch, "chunk size too large");
                f->chunk_left = f->chunk_left * 16 + (uint64_t)gw__http_hex_value(ch);
            } else if (ch == ';') {
                f->state = S_EXT_NAME_START;
            } else if (ch == ' ' || ch == '\t') {
                f->state = S_EXT_BWS;
            } else if (ch == '\r') {
                f->state = S_SIZE_LF;
            } else {
                return refuse(f, i, ch, "invalid chunk size");
            }
            break;
        /* chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
         * (RFC 9112 §7.1.1); http-parser skips everything up to the CR. */
        case S_EXT_BWS:
            if (ch == ';')
                f->state = S_EXT_NAME_START;
            else if (ch != ' ' && ch != '\t')
                return refuse(f, i, ch, bad_ext);
            break;
        case S_EXT_NAME_START:
            if (is_tchar(ch))
                f->state = S_EXT_NAME;
            else if (ch != ' ' && ch != '\t')
                return refuse(f, i, ch, bad_ext);
            break;
        case S_EXT_NAME:
        case S_EXT_NAME_WS:
            if (ch == '=')
                f->state = S_EXT_VAL_START;
            else if (ch == ';')
                f->state = S_EXT_NAME_START;
            else if (ch == ' ' || ch == '\t')
                f->state = S_EXT_NAME_WS;
            else if (ch == '\r' && f->state == S_EXT_NAME)
                f->state = S_SIZE_LF;
            else if (!is_tchar(ch) || f->state == S_EXT_NAME_WS)
                return refuse(f, i, ch, bad_ext);
            break;
        case S_EXT_VAL_START:
            if (ch == '"')
                f->state = S_EXT_QUOTED;
            else if (is_tchar(ch))
                f->state = S_EXT_TOKEN;
            else if (ch != ' ' && ch != '\t')
                return refuse(f, i, ch, bad_ext);
            break;
        case S_EXT_TOKEN:
        case S_EXT_AFTER_QUOTED:
            if (ch == ';')
                f->state = S_EXT_NAME_START;
            else if (ch == ' ' || ch == '\t')
                f->state = S_EXT_BWS;
            else if (ch == '\r')
                f->state = S_SIZE_LF;
            else if (!is_tchar(ch) || f->state == S_EXT_AFTER_QUOTED)
                return refuse(f, i, ch, bad_ext);
            break;
        case S_EXT_QUOTED:
            if (ch == '"')
                f->state = S_EXT_AFTER_QUOTED;
            else if (ch == '\\')
                f->state = S_EXT_QPAIR;
            else if (!is_qdtext(ch))
                return refuse(f, i, ch, bad_ext);
            break;
        case S_EXT_QPAIR:
            if (!is_field_char(ch))
                return refuse(f, i, ch, bad_ext);
            f->state = S_EXT_QUOTED;
            break;
        case S_SIZE_LF:
            if (ch != '\n')
                return refuse(f, i, ch, bare_cr);
            /* The last chunk (size 0) is followed by the trailer section. */
            f->state = f->chunk_left == 0 ? S_LINE_START : S_DATA;
            break;
        case S_DATA: {
            size_t n = len - i;
            if (n > f->chunk_left)
                n = (size_t)f->chunk_left;
            f->chunk_left -= n;
            i += n - 1; /* the loop adds the last one */
            if (f->chunk_left == 0)
                f->state = S_DATA_CR;
            break;
        }
        case S_DATA_CR:
        case S_DATA_LF:
            if (ch != (f->state == S_DATA_CR ? '\r' : '\n'))
                return refuse(f, i, ch, "chunk data not followed by CRLF");
            f->state = f->state == S_DATA_CR ? S_DATA_LF : S_SIZE_START;
            break;
        default:
            return refuse(f, i, ch, "internal framing state");
        }
    }
    return len;
}

/* ---- header rules (after on_headers_complete) ---- */

/* RFC 9110 §7.2: Host = uri-host [ ":" port ]; an empty value is allowed. */
static bool valid_host(const char *v)
{
    const unsigned char *p = (const unsigned char *)v;
    if (*p == '[') {
        /* IP-literal: checked for its characters, not its structure. */
        for (p++; *p != ']'; p++)
            if (*p == '\0' || !(is_unreserved_or_sub_delim(*p) || *p == ':'))
                return false;
        p++;
    } else {
        while (*p != '\0' && *p != ':') {
            if (*p == '%') {
                if (gw__http_hex_value(p[1]) < 0 || gw__http_hex_value(p[2]) < 0)
                    return false;
                p += 3;
            } else if (is_unreserved_or_sub_delim(*p)) {
                p++;
            } else {
                return false;
            }
        }
    }
    if (*p == ':')
        for (p++; is_digit(*p); p++)
            ;
    return *p == '\0';
}

/* Transfer-Encoding (RFC 9112 §6.1, §6.3): the only coding we accept in a
 * request is a single "chunked". http-parser takes "gzip, chunked" and two
 * "chunked" field lines as chunked, and "chunked" in HTTP/1.0. */
static int check_transfer_encoding(struct gw__http_conn *c, struct gw__http_request *r)
{
    unsigned codings = 0, chunked = 0;
    bool last_chunked = false, malformed = false;
    for (size_t i = 0; i < r->pub.nheaders; i++) {
        if (strcmp(r->pub.headers[i].name, "transfer-encoding") != 0)
            continue;
        const char *s = r->pub.headers[i].value;
        for (;;) {
            while (*s == ' ' || *s == '\t')
                s++;
            const char *name = s;
            while (is_tchar((unsigned char)*s))
                s++;
            size_t nlen = (size_t)(s - name);
            while (*s == ' ' || *s == '\t')
                s++;
            /* Anything but "," or the end after the name (parameters,
             * an empty element) is more than chunked can have. */
            if (nlen == 0 || (*s != ',' && *s != '\0'))
                malformed = true;
            codings++;
            last_chunked = nlen == 7 && strncasecmp(name, "chunked", 7) == 0;
            if (last_chunked)
                chunked++;
            s = strchr(s, ',');
            if (s == NULL)
                break;
            s++;
        }
    }
    if (codings == 0)
        return 0;
    const http_parser *p = &c->parser;
    if (r->http10)
        return gw__http_bad_request(c, "Transfer-Encoding in an HTTP/1.0 request");
    if (p->flags & F_CONTENTLENGTH)
        return gw__http_bad_request(c, "Content-Length together with Transfer-Encoding");
    if (malformed)
        return gw__http_bad_request(c, "malformed Transfer-Encoding");
    if (!last_chunked)
        return gw__http_bad_request(c, "Transfer-Encoding whose final coding is not chunked");
    if (chunked > 1)
        return gw__http_bad_request(c, "Transfer-Encoding applies chunked more than once");
    if (codings > 1)
        return gw__http_bad_request(c, "transfer codings other than chunked are not supported");
    if (!(p->flags & F_CHUNKED))
        return gw__http_bad_request(c, "the request framing is ambiguous");
    return 0;
}

int gw__http_framing_check_request(struct gw__http_conn *c, struct gw__http_request *r)
{
    const http_parser *p = &c->parser;
    /* The scan refused other versions already; this guards against the two
     * parsers reading the request line differently. */
    if (p->http_major != 1 || p->http_minor > 1)
        return gw__http_bad_request(c, "unsupported HTTP version (only HTTP/1.0 and HTTP/1.1 are "
                                       "served)");

    /* RFC 9112 §3.2: exactly one valid Host in HTTP/1.1, at most one in 1.0. */
    const char *host = NULL;
    unsigned hosts = 0;
    for (size_t i = 0; i < r->pub.nheaders; i++) {
        if (strcmp(r->pub.headers[i].name, "host") == 0) {
            host = r->pub.headers[i].value;
            hosts++;
        }
    }
    if (hosts > 1)
        return gw__http_bad_request(c, "more than one Host header field");
    if (hosts == 0 && !r->http10)
        return gw__http_bad_request(c, "HTTP/1.1 request without a Host header field");
    if (host != NULL && !valid_host(host))
        return gw__http_bad_request(c, "invalid Host header field");

    /* RFC 9112 §3.2.4: the asterisk-form is only for OPTIONS. */
    if (c->url_len == 1 && c->hbuf[0] == '*' && p->method != HTTP_OPTIONS)
        return gw__http_bad_request(c, "request target \"*\" is only allowed with OPTIONS");

    return check_transfer_encoding(c, r);
}
