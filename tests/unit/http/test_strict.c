/* Strict RFC 9112 framing (lib/http/framing.c, docs/decisions/0018): every
 * request that RFC 9112 calls invalid, including what Debian's http-parser
 * 2.9 lets through, is answered 400 (problem+json, code bad_request, a detail
 * naming the fault, Connection: close) and the connection is closed. Valid
 * requests of every shape still work. */
#include "harness.h"

#include <string.h>

static const struct gw_http_server_options opts = {
    .max_body_bytes = 1024,
    .max_header_bytes = 2048,
    .header_timeout_ms = 2000,
    .body_timeout_ms = 2000,
};

struct bad {
    const char *name;
    const char *req;
    size_t len;
    int status;
    const char *code;
    const char *detail; /* a substring of the problem's detail */
};

/* String literals may hold NUL: the length comes from sizeof. */
#define BAD(name, req, detail)                                                                     \
    {                                                                                              \
        name, req, sizeof(req) - 1, 400, "bad_request", detail                                     \
    }
#define H11     "HTTP/1.1\r\nHost: t\r\n"
#define CHUNKED "POST /echo " H11 "Transfer-Encoding: chunked\r\n\r\n"

static const char ws_name[] = "whitespace in or after a header field name";
static const char obs_fold[] = "obsolete line folding";
static const char bare_cr[] = "CR not followed by LF";
static const char bare_lf[] = "bare LF";
static const char unsupported[] = "unsupported HTTP version";
static const char bad_version[] = "malformed HTTP version";
static const char one_space[] = "separated by one space";
static const char ctl_value[] = "control character in a header field value";
static const char bad_name[] = "invalid character in a header field name";
static const char bad_target[] = "invalid character in the request target";
static const char bad_pct[] = "invalid percent-encoding";
static const char not_final[] = "final coding is not chunked";
static const char bad_ext[] = "malformed chunk extension";

static const struct bad bad_requests[] = {
    /* Whitespace inside or before a header name (RFC 9112 §5.1). http-parser
     * accepts a space in both places, and takes "Transfer-Encoding :" as
     * Transfer-Encoding: the classic smuggling shape. */
    BAD("space in a name", "GET / " H11 "Foo Bar: x\r\n\r\n", ws_name),
    BAD("tab in a name", "GET / " H11 "Foo\tBar: x\r\n\r\n", ws_name),
    BAD("space before the colon", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", ws_name),
    BAD("tab before the colon", "GET / " H11 "X\t: y\r\n\r\n", ws_name),
    BAD("Transfer-Encoding space colon",
        "POST /echo " H11 "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", ws_name),
    BAD("Content-Length space colon", "POST /echo " H11 "Content-Length : 3\r\n\r\nabc", ws_name),
    BAD("empty name", "GET / " H11 ": x\r\n\r\n", "empty header field name"),
    BAD("obs-text in a name", "GET / " H11 "X\x80: y\r\n\r\n", bad_name),
    BAD("quote in a name", "GET / " H11 "X\"Y: y\r\n\r\n", bad_name),
    BAD("line without a colon", "GET / " H11 "Foo\r\n\r\n", "without a colon"),
    /* Lines starting with whitespace (RFC 9112 §2.2, §5.2). */
    BAD("whitespace before the first field", "GET / HTTP/1.1\r\n Host: t\r\n\r\n",
        "between the request line and the first header field"),
    BAD("obs-fold with SP", "GET / " H11 "X: a\r\n b\r\n\r\n", obs_fold),
    BAD("obs-fold with HTAB", "GET / " H11 "X: a\r\n\tb\r\n\r\n", obs_fold),
    BAD("whitespace-only line", "GET / " H11 " \r\n\r\n", obs_fold),
    /* Bare CR anywhere in the head. */
    BAD("bare CR ends the request line", "GET / HTTP/1.1\rHost: t\r\n\r\n", bare_cr),
    BAD("bare CR inside a value", "GET / " H11 "X: a\rb\r\n\r\n", bare_cr),
    BAD("bare CR between fields", "GET / " H11 "X: a\rY: b\r\n\r\n", bare_cr),
    BAD("bare CR ends the header section", "GET / " H11 "\rX", bare_cr),
    BAD("bare CR before the request line", "\rGET / " H11 "\r\n", bare_cr),
    BAD("bare CR inside a name", "GET / " H11 "X\rY: b\r\n\r\n", "without a colon"),
    /* Bare LF as a line terminator: refused (docs/decisions/0018). */
    BAD("bare LF everywhere", "GET / HTTP/1.1\nHost: t\n\n", bare_lf),
    BAD("bare LF after a field", "GET / " H11 "X: a\n\r\n", bare_lf),
    BAD("bare LF ends the section", "GET / " H11 "\n", bare_lf),
    BAD("bare LF before the request line", "\nGET / " H11 "\r\n", bare_lf),
    /* Request line. */
    BAD("HTTP/0.9 (no version)", "GET /\r\n\r\n", "HTTP/0.9"),
    BAD("HTTP/0.9", "GET / HTTP/0.9\r\nHost: t\r\n\r\n", unsupported),
    BAD("HTTP/1.2", "GET / HTTP/1.2\r\nHost: t\r\n\r\n", unsupported),
    BAD("HTTP/2.0", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", unsupported),
    BAD("HTTP/9.9", "GET / HTTP/9.9\r\nHost: t\r\n\r\n", unsupported),
    /* PRI is a well-formed method http-parser does not know (conn.c routes
     * such methods), so the version is what is refused. */
    BAD("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "unsupported HTTP version"),
    BAD("HTTP/1.10", "GET / HTTP/1.10\r\nHost: t\r\n\r\n", bad_version),
    BAD("HXXP/1.1", "GET / HXXP/1.1\r\nHost: t\r\n\r\n", bad_version),
    BAD("lower-case http", "GET / http/1.1\r\nHost: t\r\n\r\n", bad_version),
    BAD("space after the version", "GET / HTTP/1.1 \r\nHost: t\r\n\r\n", bad_version),
    BAD("two spaces after the method", "GET  / " H11 "\r\n", one_space),
    BAD("two spaces before the version", "GET /  " H11 "\r\n", one_space),
    BAD("tab as a separator", "GET\t/\tHTTP/1.1\r\nHost: t\r\n\r\n", "in the method"),
    BAD("space before the method", " GET / " H11 "\r\n", "start of the request line"),
    BAD("empty target", "GET  HTTP/1.1\r\nHost: t\r\n\r\n", one_space),
    /* Request target: RFC 3986 characters only, no fragment, %HH. */
    BAD("tab in the target", "GET /a\tb " H11 "\r\n", bad_target),
    BAD("obs-text in the target", "GET /\x80 " H11 "\r\n", bad_target),
    BAD("CTL in the target", "GET /\x01 " H11 "\r\n", bad_target),
    BAD("DEL in the target", "GET /\x7f " H11 "\r\n", bad_target),
    BAD("quote in the target", "GET /\" " H11 "\r\n", bad_target),
    BAD("angle brackets in the target", "GET /<a> " H11 "\r\n", bad_target),
    BAD("braces in the target", "GET /?q={} " H11 "\r\n", bad_target),
    BAD("pipe in the target", "GET /a|b " H11 "\r\n", bad_target),
    BAD("backslash in the target", "GET /a\\b " H11 "\r\n", bad_target),
    BAD("caret in the target", "GET /a^b " H11 "\r\n", bad_target),
    BAD("backquote in the target", "GET /a`b " H11 "\r\n", bad_target),
    BAD("fragment in the target", "GET /echo#frag " H11 "\r\n", bad_target),
    BAD("bad escape in the path", "GET /a%zz " H11 "\r\n", bad_pct),
    BAD("short escape in the path", "GET /a%4 " H11 "\r\n", bad_pct),
    BAD("bad escape in the query", "GET /query?bad=%zz " H11 "\r\n", bad_pct),
    BAD("asterisk with GET", "GET * " H11 "\r\n", "only allowed with OPTIONS"),
    /* Control characters in values (only HTAB is allowed). */
    BAD("NUL in a value", "GET / " H11 "X: a\0b\r\n\r\n", ctl_value),
    BAD("SOH in a value", "GET / " H11 "X: a\001b\r\n\r\n", ctl_value),
    BAD("ESC in a value", "GET / " H11 "X: a\033b\r\n\r\n", ctl_value),
    BAD("DEL in a value", "GET / " H11 "X: a\177b\r\n\r\n", ctl_value),
    BAD("VT in a value", "GET / " H11 "X: a\013b\r\n\r\n", ctl_value),
    /* Host (RFC 9112 §3.2). */
    BAD("HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", "without a Host"),
    BAD("two Host fields", "GET / " H11 "Host: u\r\n\r\n", "more than one Host"),
    BAD("two Host fields in HTTP/1.0", "GET / HTTP/1.0\r\nHost: t\r\nHost: t\r\n\r\n",
        "more than one Host"),
    BAD("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "invalid Host"),
    BAD("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", "invalid Host"),
    BAD("Host with a bad port", "GET / HTTP/1.1\r\nHost: h:8x\r\n\r\n", "invalid Host"),
    BAD("Host with an open IP literal", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", "invalid Host"),
    /* Content-Length (RFC 9112 §6.3, 9110 §8.6). */
    BAD("two differing Content-Lengths",
        "POST /echo " H11 "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "more than one Content-Length"),
    BAD("two equal Content-Lengths",
        "POST /echo " H11 "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "more than one Content-Length"),
    BAD("Content-Length list", "POST /echo " H11 "Content-Length: 3, 4\r\n\r\nabcd",
        "invalid Content-Length"),
    BAD("Content-Length with a sign", "POST /echo " H11 "Content-Length: +3\r\n\r\nabc",
        "invalid Content-Length"),
    BAD("Content-Length in hex", "POST /echo " H11 "Content-Length: 0x3\r\n\r\nabc",
        "invalid Content-Length"),
    BAD("Content-Length then Transfer-Encoding",
        "POST /echo " H11 "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "Content-Length with Transfer-Encoding"),
    BAD("Transfer-Encoding then Content-Length",
        "POST /echo " H11 "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "Content-Length with Transfer-Encoding"),
    /* Transfer-Encoding (RFC 9112 §6.1, §6.3): a single "chunked" only. */
    BAD("gzip", "POST /echo " H11 "Transfer-Encoding: gzip\r\n\r\nabc", not_final),
    BAD("identity", "POST /echo " H11 "Transfer-Encoding: identity\r\n\r\nabc", not_final),
    BAD("chunked, gzip", "POST /echo " H11 "Transfer-Encoding: chunked, gzip\r\n\r\nabc",
        not_final),
    BAD("chunked then gzip lines",
        "POST /echo " H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        not_final),
    BAD("gzip, chunked", "POST /echo " H11 "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "other than chunked are not supported"),
    BAD("chunked twice in one line",
        "POST /echo " H11 "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        "chunked more than once"),
    BAD("chunked in two lines",
        "POST /echo " H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        "chunked more than once"),
    BAD("chunked with a parameter",
        "POST /echo " H11 "Transfer-Encoding: chunked;x=y\r\n\r\n0\r\n\r\n",
        "malformed Transfer-Encoding"),
    BAD("empty Transfer-Encoding", "POST /echo " H11 "Transfer-Encoding:\r\n\r\n",
        "malformed Transfer-Encoding"),
    BAD("empty list element", "POST /echo " H11 "Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n",
        "malformed Transfer-Encoding"),
    BAD("Transfer-Encoding in HTTP/1.0",
        "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.0"),
    /* Chunked framing (RFC 9112 §7.1). */
    BAD("chunk data without CRLF", CHUNKED "3\r\nabcXX0\r\n\r\n", "chunk data not followed"),
    BAD("chunk data with bare LF", CHUNKED "3\r\nabc\n0\r\n\r\n", bare_lf),
    BAD("bare CR after the size", CHUNKED "3\rXabc\r\n0\r\n\r\n", bare_cr),
    BAD("bare LF after the size", CHUNKED "3\nabc\r\n0\r\n\r\n", bare_lf),
    BAD("space after the size", CHUNKED "3 \r\nabc\r\n0\r\n\r\n", bad_ext),
    BAD("space before the size", CHUNKED " 3\r\nabc\r\n0\r\n\r\n", "invalid chunk size"),
    BAD("hex prefix", CHUNKED "0x3\r\nabc\r\n0\r\n\r\n", "invalid chunk size"),
    BAD("overflowing size", CHUNKED "fffffffffffffffffff\r\n", "chunk size too large"),
    BAD("CTL in an extension", CHUNKED "3;\x01\r\nabc\r\n0\r\n\r\n", bad_ext),
    BAD("LF in an extension", CHUNKED "3;a\nb\r\nabc\r\n0\r\n\r\n", bare_lf),
    BAD("extension without a name", CHUNKED "3;=x\r\nabc\r\n0\r\n\r\n", bad_ext),
    BAD("extension with an empty value", CHUNKED "3;a=\r\nabc\r\n0\r\n\r\n", bad_ext),
    BAD("unterminated quoted extension", CHUNKED "3;a=\"x\r\nabc\r\n0\r\n\r\n", bad_ext),
    BAD("trailer with a bare LF", CHUNKED "0\r\nX: y\n\r\n", bare_lf),
    BAD("trailer with obs-fold", CHUNKED "0\r\nX: y\r\n z\r\n\r\n", obs_fold),
    BAD("trailer with a space in the name", CHUNKED "0\r\nX y: z\r\n\r\n", ws_name),
    BAD("last chunk ends with a bare LF", CHUNKED "0\r\n\n", bare_lf),
    BAD("trailer section ends with a bare CR", CHUNKED "0\r\n\rX", bare_cr),
};

/* Sends `len` bytes of `req` (one byte per write with `bytewise`), expects
 * `status` with problem `code` and `detail`, then the server's close. */
static void expect_refused(struct harness *h, const char *name, const char *req, size_t len,
                           int status, const char *code, const char *detail, bool bytewise)
{
    struct client c;
    struct resp r;
    client_open(&c, h->port);
    if (bytewise) {
        for (size_t i = 0; i < len; i++) {
            client_send(&c, req + i, 1);
            sleep_ms(1);
        }
    } else {
        client_send(&c, req, len);
    }
    if (client_read(&c, &r) != 0) {
        fprintf(stderr, "%s: no response\n", name);
        abort();
    }
    char want[128];
    snprintf(want, sizeof(want), "\"status\":%d,\"code\":\"%s\"", status, code);
    if (r.status != status || strstr(r.body, want) == NULL || strstr(r.body, detail) == NULL) {
        fprintf(stderr, "%s: got %d %s; want %d %s with \"%s\"\n", name, r.status, r.body, status,
                code, detail);
        abort();
    }
    CHECK(strcmp(resp_header(&r, "content-type"), "application/problem+json") == 0);
    CHECK(strcmp(resp_header(&r, "connection"), "close") == 0);
    CHECK(strncmp(r.body, "{\"type\":\"about:blank\",\"title\":\"", 31) == 0);
    resp_free(&r);
    if (!client_wait_eof(&c, 3000)) {
        fprintf(stderr, "%s: the connection stayed open\n", name);
        abort();
    }
    client_close(&c);
}

static void refused(struct harness *h)
{
    size_t n = sizeof(bad_requests) / sizeof(bad_requests[0]);
    for (size_t i = 0; i < n; i++) {
        const struct bad *b = &bad_requests[i];
        expect_refused(h, b->name, b->req, b->len, b->status, b->code, b->detail, false);
    }
    fprintf(stderr, "  %zu malformed requests refused\n", n);
    CHECK(atomic_load(&h->handled) == 0);

    /* The scan keeps its state across reads: the same faults sent one byte
     * per write. */
    static const char *const split[][2] = {
        {"GET / " H11 "X: a\r\n b\r\n\r\n", obs_fold},
        {"GET / HTTP/1.1\r\nHost : t\r\n\r\n", ws_name},
        {"GET / HTTP/1.2\r\nHost: t\r\n\r\n", unsupported},
        {CHUNKED "3;a=\"q\"\r\nabcXX0\r\n\r\n", "chunk data not followed"},
    };
    for (size_t i = 0; i < sizeof(split) / sizeof(split[0]); i++)
        expect_refused(h, "bytewise", split[i][0], strlen(split[i][0]), 400, "bad_request",
                       split[i][1], true);
    CHECK(atomic_load(&h->handled) == 0);
}

static void limits(struct harness *h)
{
    /* The existing limits still apply, and the fault on the earlier byte
     * wins: a header line too long is 431 even with a bad byte after it. */
    char req[8192];
    int n = snprintf(req, sizeof(req), "GET / " H11 "X-Big: %03000d\r\n\r\n", 0);
    expect_refused(h, "long header line", req, (size_t)n, 431, "headers_too_large", "too large",
                   false);
    n = snprintf(req, sizeof(req), "GET /?%03000d " H11 "\r\n", 0);
    expect_refused(h, "long request line", req, (size_t)n, 431, "headers_too_large", "too large",
                   false);
    n = snprintf(req, sizeof(req), "GET / " H11 "X-Big: %03000d\r\n y\r\n\r\n", 0);
    expect_refused(h, "long line before obs-fold", req, (size_t)n, 431, "headers_too_large",
                   "too large", false);
    /* ...and a bad byte before the limit is reached is a 400. */
    n = snprintf(req, sizeof(req), "GET / " H11 "X y: z\r\nX-Big: %03000d\r\n\r\n", 0);
    expect_refused(h, "bad name before a long line", req, (size_t)n, 400, "bad_request", ws_name,
                   false);
    /* A chunk over the body limit is still 413. */
    static const char big[] = CHUNKED "800\r\n";
    expect_refused(h, "chunk over the body limit", big, sizeof(big) - 1, 413, "body_too_large",
                   "limit", false);
}

/* Sends a request and expects 200 with a body starting with `want_body`
 * (the /headers answer ends with the client's address). */
static void roundtrip(struct client *c, const char *req, size_t len, const char *want_body)
{
    struct resp r;
    client_send(c, req, len);
    CHECK(client_read(c, &r) == 0);
    if (r.status != 200 || strncmp(r.body, want_body, strlen(want_body)) != 0 ||
        (strstr(want_body, "remote=") == NULL && strlen(r.body) != strlen(want_body))) {
        fprintf(stderr, "got %d [%s], want 200 [%s]\n", r.status, r.body, want_body);
        abort();
    }
    resp_free(&r);
}

#define ROUNDTRIP(c, req, want) roundtrip(c, req, sizeof(req) - 1, want)

static void accepted(struct harness *h)
{
    struct client c;
    struct resp r;

    /* HTTP/1.0 needs no Host and closes after the response. */
    client_open(&c, h->port);
    ROUNDTRIP(&c, "GET /echo HTTP/1.0\r\n\r\n", "GET /echo q= len=0\n");
    CHECK(client_wait_eof(&c, 3000));
    client_close(&c);

    client_open(&c, h->port);
    /* HTTP/1.0 keep-alive, then HTTP/1.1 on the same connection. */
    ROUNDTRIP(&c, "GET /echo?v=10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
              "GET /echo q=v=10 len=0\n");
    ROUNDTRIP(&c, "GET /echo?v=11 " H11 "\r\n", "GET /echo q=v=11 len=0\n");
    /* Empty lines before a request line are skipped (RFC 9112 §2.2). */
    ROUNDTRIP(&c, "\r\n\r\nGET /echo " H11 "\r\n", "GET /echo q= len=0\n");
    /* Host forms: port, IPv6 literal, empty (RFC 9110 §7.2), percent-encoded. */
    ROUNDTRIP(&c, "GET /echo HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", "GET /echo q= len=0\n");
    ROUNDTRIP(&c, "GET /echo HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", "GET /echo q= len=0\n");
    ROUNDTRIP(&c, "GET /echo HTTP/1.1\r\nHost:\r\n\r\n", "GET /echo q= len=0\n");
    ROUNDTRIP(&c, "GET /echo HTTP/1.1\r\nHost: a%2Db.example\r\n\r\n", "GET /echo q= len=0\n");
    /* Every RFC 3986 character the scan allows in a target. */
    ROUNDTRIP(&c, "GET /echo/a:b@c!$&'()*+,;=-._~%41?q=/?:@[]!$&'()*+,;= " H11 "\r\n",
              "GET /echo/a:b@c!$&'()*+,;=-._~A q=q=/?:@[]!$&'()*+,;= len=0\n");
    /* Absolute-form. */
    ROUNDTRIP(&c, "GET http://example.com:80/echo?x=1 " H11 "\r\n", "GET /echo q=x=1 len=0\n");
    /* Values with internal spaces and tabs, obs-text (0x80-0xFF), all VCHARs;
     * OWS around the value is not part of it. */
    ROUNDTRIP(&c, "GET /headers " H11 "X-Test: \t a b\tc \x80\xff d \t\r\n\r\n",
              "n=2 x=[a b\tc \x80\xff d] lower=1 remote=");
    client_close(&c);

    client_open(&c, h->port);
    /* Header names with every tchar. */
    ROUNDTRIP(&c,
              "GET /headers " H11 "!#$%&'*+-.^_`|~09azAZ: v\r\nX-Test: "
              "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\r\n\r\n",
              "n=3 x=[!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~] lower=1 remote=");
    /* OPTIONS * goes to the handler (which has no such path). */
    client_sends(&c, "OPTIONS * " H11 "\r\n");
    CHECK(client_read(&c, &r) == 0);
    CHECK(r.status == 404);
    CHECK(strcmp(resp_header(&r, "connection"), "keep-alive") == 0);
    resp_free(&r);
    /* Chunked bodies: extensions (token and quoted values, BWS), trailers,
     * "chunked" in any case. */
    ROUNDTRIP(&c,
              CHUNKED "3;a=b\r\nabc\r\n4 ; q = \"x \\\" y\" ;n\r\ndefg\r\n"
                      "A\r\n0123456789\r\n0\r\nX-Trailer: t v\r\nY: \x80\r\n\r\n",
              "POST /echo q= len=17\nabcdefg0123456789");
    ROUNDTRIP(&c, "POST /echo " H11 "Transfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
              "POST /echo q= len=2\nok");
    ROUNDTRIP(&c, "POST /echo " H11 "Content-Length: 0\r\n\r\n", "POST /echo q= len=0\n");
    client_close(&c);

    /* Pipelined: GET, chunked POST, Content-Length POST, HTTP/1.0 last, in
     * one write; answered in order, then closed for the HTTP/1.0 one. */
    client_open(&c, h->port);
    client_sends(&c, "GET /echo?n=1 " H11 "\r\n"
                     "POST /echo?n=2 " H11 "Transfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n0\r\n\r\n"
                     "POST /echo?n=3 " H11 "Content-Length: 5\r\n\r\nworld"
                     "GET /echo?n=4 HTTP/1.0\r\n\r\n");
    static const char *const want[] = {"GET /echo q=n=1 len=0\n", "POST /echo q=n=2 len=5\nhello",
                                       "POST /echo q=n=3 len=5\nworld", "GET /echo q=n=4 len=0\n"};
    for (size_t i = 0; i < 4; i++) {
        CHECK(client_read(&c, &r) == 0);
        CHECK(r.status == 200);
        CHECK(strcmp(r.body, want[i]) == 0);
        resp_free(&r);
    }
    CHECK(client_wait_eof(&c, 3000));
    client_close(&c);

    /* A pipelined request after a good one is checked as strictly: the good
     * one is answered, the bad one refused. */
    client_open(&c, h->port);
    client_sends(&c, "GET /echo " H11 "\r\nGET /echo HTTP/1.1\r\nHost : t\r\n\r\n");
    CHECK(client_read(&c, &r) == 0);
    CHECK(r.status == 200);
    resp_free(&r);
    CHECK(client_read(&c, &r) == 0);
    CHECK(r.status == 400);
    CHECK(strstr(r.body, ws_name) != NULL);
    resp_free(&r);
    CHECK(client_wait_eof(&c, 3000));
    client_close(&c);

    /* One byte per write: the scan's state carries across reads. */
    static const char slow[] = "POST /echo?s=1 " H11 "X-Test: a\tb\r\nTransfer-Encoding: chunked"
                               "\r\n\r\n3;e=\"v\"\r\nabc\r\n0\r\nT: x\r\n\r\n"
                               "GET /echo?s=2 " H11 "\r\n";
    client_open(&c, h->port);
    for (size_t i = 0; i < sizeof(slow) - 1; i++) {
        client_send(&c, slow + i, 1);
        sleep_ms(1);
    }
    client_expect_body(&c, "POST /echo q=s=1 len=3\nabc");
    client_expect_body(&c, "GET /echo q=s=2 len=0\n");
    client_close(&c);
}

int main(void)
{
    harness_run("malformed requests refused (400, close)", &opts, refused);
    harness_run("limits still first in byte order (431, 413)", &opts, limits);
    harness_run("valid requests accepted", &opts, accepted);
    return 0;
}
