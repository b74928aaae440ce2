/*
 * `pattern` and `patternProperties` on PCRE2. JSON Schema patterns are
 * ECMA-262 regular expressions: UTF mode, `$` only at the very end, \d and
 * \w ASCII-only (PCRE2 without UCP), \uXXXX escapes (ALT_BSUX). Patterns
 * are JIT-compiled once; match data is per thread, so matching is
 * thread-safe on a shared compiled schema.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct js_regex {
    pcre2_code *code;
};

static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_free(void *p)
{
    pcre2_match_data_free(p);
}

static void md_init(void)
{
    pthread_key_create(&md_key, md_free);
}

static pcre2_match_data *match_data(void)
{
    pthread_once(&md_once, md_init);
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (md && pthread_setspecific(md_key, md) != 0) {
            pcre2_match_data_free(md);
            md = NULL;
        }
    }
    return md;
}

/* ECMA-262 \s also covers Unicode spaces that PCRE2 without UCP does not. */
#define ECMA_SPACE                                                                                 \
    "\\t\\n\\x0b\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"

/* Unicode general category long names (ECMA) -> PCRE2's short ones. */
static const char *const gc_names[][2] = {
    {"Letter", "L"},
    {"Cased_Letter", "L&"},
    {"Uppercase_Letter", "Lu"},
    {"Lowercase_Letter", "Ll"},
    {"Titlecase_Letter", "Lt"},
    {"Modifier_Letter", "Lm"},
    {"Other_Letter", "Lo"},
    {"Mark", "M"},
    {"Nonspacing_Mark", "Mn"},
    {"Spacing_Mark", "Mc"},
    {"Enclosing_Mark", "Me"},
    {"Number", "N"},
    {"Decimal_Number", "Nd"},
    {"digit", "Nd"},
    {"Letter_Number", "Nl"},
    {"Other_Number", "No"},
    {"Punctuation", "P"},
    {"punct", "P"},
    {"Connector_Punctuation", "Pc"},
    {"Dash_Punctuation", "Pd"},
    {"Open_Punctuation", "Ps"},
    {"Close_Punctuation", "Pe"},
    {"Initial_Punctuation", "Pi"},
    {"Final_Punctuation", "Pf"},
    {"Other_Punctuation", "Po"},
    {"Symbol", "S"},
    {"Math_Symbol", "Sm"},
    {"Currency_Symbol", "Sc"},
    {"Modifier_Symbol", "Sk"},
    {"Other_Symbol", "So"},
    {"Separator", "Z"},
    {"Space_Separator", "Zs"},
    {"Line_Separator", "Zl"},
    {"Paragraph_Separator", "Zp"},
    {"Other", "C"},
    {"Control", "Cc"},
    {"cntrl", "Cc"},
    {"Format", "Cf"},
    {"Surrogate", "Cs"},
    {"Private_Use", "Co"},
    {"Unassigned", "Cn"},
};

/* \p{...} body: long category names, gc=/General_Category=, sc=/Script=. */
static int add_property(struct js_buf *b, const char *body, size_t n)
{
    const char *eq = memchr(body, '=', n);
    if (eq) {
        size_t kl = (size_t)(eq - body);
        n -= kl + 1;
        body = eq + 1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(gc_names); i++)
        if (strlen(gc_names[i][0]) == n && memcmp(gc_names[i][0], body, n) == 0)
            return gw__js_buf_adds(b, gc_names[i][1]);
    return gw__js_buf_add(b, body, n);
}

/* Rewrites the few ECMA constructs PCRE2 reads differently and rejects
 * PCRE/Python-only syntax that ECMA-262 (unicode mode) does not allow. */
static char *translate(const char *p, bool *bad)
{
    struct js_buf b = {0};
    bool in_class = false;
    int rc = gw__js_buf_add(&b, "", 0);
    *bad = false;
    for (size_t i = 0; p[i] && rc == 0; i++) {
        if (p[i] == '\\' && p[i + 1]) {
            char e = p[i + 1];
            if (e == 's' || e == 'S') {
                if (in_class && e == 's')
                    rc = gw__js_buf_adds(&b, ECMA_SPACE);
                else if (!in_class)
                    rc = gw__js_buf_adds(&b, e == 's' ? "[" ECMA_SPACE "]" : "[^" ECMA_SPACE "]");
                else
                    rc = gw__js_buf_add(&b, p + i, 2); /* \S inside a class: PCRE2's view */
            } else if (e == 'v') {
                rc = gw__js_buf_adds(&b, "\\x0b");
            } else if ((e == 'p' || e == 'P') && p[i + 2] == '{' && strchr(p + i + 3, '}')) {
                const char *body = p + i + 3;
                size_t n = (size_t)(strchr(body, '}') - body);
                rc = gw__js_buf_add(&b, p + i, 3);
                if (rc == 0)
                    rc = add_property(&b, body, n);
                if (rc == 0)
                    rc = gw__js_buf_addc(&b, '}');
                i += 3 + n;
                continue;
            } else if (((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) &&
                       !strchr("dDwWbBfnrtcxukpP", e)) {
                *bad = true; /* \a, \e, \z, \Z, \A, \Q, \h...: not ECMA-262 */
            } else {
                rc = gw__js_buf_add(&b, p + i, 2);
            }
            i++;
            continue;
        }
        if (!in_class && p[i] == '(' && p[i + 1] == '?') {
            char e = p[i + 2];
            /* ECMA groups: (?: (?= (?! (?<= (?<! (?<name> and (?flags:...) */
            if (e == 'P' || e == '#' || e == '>' || e == '|' || e == '(' || e == 'R' || e == '&' ||
                (e >= '0' && e <= '9'))
                *bad = true;
            if ((e >= 'a' && e <= 'z') || e == '-') {
                size_t j = i + 2;
                while ((p[j] >= 'a' && p[j] <= 'z') || p[j] == '-')
                    j++;
                if (p[j] != ':')
                    *bad = true; /* global inline flags (?i) */
            }
        }
        if (p[i] == '[' && !in_class)
            in_class = true;
        else if (p[i] == ']' && in_class)
            in_class = false;
        rc = gw__js_buf_addc(&b, p[i]);
    }
    if (rc < 0 || *bad) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

struct js_regex *gw__js_regex_compile(const char *pattern, char *why, size_t whylen)
{
    int ecode;
    PCRE2_SIZE eoff;
    bool bad;
    char *tp = translate(pattern, &bad);
    if (!tp) {
        if (why)
            snprintf(why, whylen, "%s",
                     bad ? "not an ECMA-262 regular expression" : "out of memory");
        return NULL;
    }
    pcre2_compile_context *cctx = pcre2_compile_context_create(NULL);
    pcre2_code *code = NULL;
    if (cctx) {
        /* \u{XXXXX} as in ECMA-262's unicode mode. */
        pcre2_set_compile_extra_options(cctx, PCRE2_EXTRA_ALT_BSUX);
        code = pcre2_compile((PCRE2_SPTR)tp, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX |
                                 PCRE2_ALLOW_EMPTY_CLASS,
                             &ecode, &eoff, cctx);
        pcre2_compile_context_free(cctx);
    } else {
        ecode = PCRE2_ERROR_NOMEMORY;
        eoff = 0;
    }
    free(tp);
    if (!code) {
        if (why) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(ecode, msg, sizeof(msg));
            snprintf(why, whylen, "%s at offset %zu", (char *)msg, (size_t)eoff);
        }
        return NULL;
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* best effort: interpreter otherwise */
    struct js_regex *re = malloc(sizeof(*re));
    if (!re) {
        pcre2_code_free(code);
        return NULL;
    }
    re->code = code;
    return re;
}

bool gw__js_regex_match(const struct js_regex *re, const char *s, size_t n)
{
    pcre2_match_data *md = match_data();
    if (!md)
        return false;
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
    return rc >= 0;
}

void gw__js_regex_free(struct js_regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    free(re);
}
