/*
 * `hostname` (RFC 1123, with RFC 5890 A-labels) and `idn-hostname`
 * (RFC 5890/5891). A-labels are Punycode-decoded (RFC 3492) and both kinds
 * of U-label are held to the IDNA2008 rules that need no Unicode database:
 * the CONTEXTO/CONTEXTJ rules of RFC 5892 appendix A, its DISALLOWED
 * exceptions, and no leading combining mark (for the common scripts).
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "gw/utf8.h"
#include "internal.h"

bool gw__js_format_hostname(const char *s, size_t n, bool idn);

#define MAX_CPS 256

/* The code points of s[0..n) into out: their count, or -1 when there are
 * more than `max` or the bytes are not well-formed UTF-8 (they always are:
 * jansson checks every string it makes). */
static int utf8_decode(const char *s, size_t n, uint32_t *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0, len; i < n; i += len)
        if (k >= max || (len = gw_utf8_next((const unsigned char *)s + i, n - i, &out[k++])) == 0)
            return -1;
    return (int)k;
}

/* RFC 3492 parameters for Punycode (section 5). */
#define PC_BASE 36u
#define PC_TMIN 1u
#define PC_TMAX 26u
#define PC_SKEW 38u
#define PC_DAMP 700u

/* The threshold of digit position `k` (section 6.2, 6.3). */
static uint32_t pc_threshold(uint32_t k, uint32_t bias)
{
    return k <= bias ? PC_TMIN : k >= bias + PC_TMAX ? PC_TMAX : k - bias;
}

/* Bias adaptation after a code point (section 6.1). */
static uint32_t pc_adapt(uint32_t delta, uint32_t numpoints, bool first)
{
    uint32_t k = 0;
    delta = first ? delta / PC_DAMP : delta / 2;
    delta += delta / numpoints;
    while (delta > ((PC_BASE - PC_TMIN) * PC_TMAX) / 2) {
        delta /= PC_BASE - PC_TMIN;
        k += PC_BASE;
    }
    return k + (PC_BASE - PC_TMIN + 1) * delta / (delta + PC_SKEW);
}

/* RFC 3492 decoding of the part after "xn--". */
static int punycode_decode(const char *in, size_t n, uint32_t *out, size_t max)
{
    uint32_t nn = 128, bias = 72, i = 0;
    size_t outlen = 0, b = 0;
    for (size_t j = 0; j < n; j++)
        if (in[j] == '-')
            b = j;
    if (b > max)
        return -1;
    for (size_t j = 0; j < b; j++) {
        if ((unsigned char)in[j] >= 0x80)
            return -1;
        out[outlen++] = (unsigned char)in[j];
    }
    for (size_t p = b > 0 ? b + 1 : 0; p < n;) {
        uint32_t oldi = i, w = 1;
        for (uint32_t k = PC_BASE;; k += PC_BASE) {
            if (p >= n)
                return -1;
            char c = in[p++];
            uint32_t digit;
            if (c >= '0' && c <= '9')
                digit = (uint32_t)(c - '0') + 26;
            else if (c >= 'a' && c <= 'z')
                digit = (uint32_t)(c - 'a');
            else if (c >= 'A' && c <= 'Z')
                digit = (uint32_t)(c - 'A');
            else
                return -1;
            if (digit > (UINT32_MAX - i) / w)
                return -1;
            i += digit * w;
            uint32_t t = pc_threshold(k, bias);
            if (digit < t)
                break;
            if (w > UINT32_MAX / (PC_BASE - t))
                return -1;
            w *= PC_BASE - t;
        }
        bias = pc_adapt(i - oldi, (uint32_t)(outlen + 1), oldi == 0);
        if (i / (outlen + 1) > 0x10ffff - nn)
            return -1;
        nn += i / (uint32_t)(outlen + 1);
        i %= (uint32_t)(outlen + 1);
        if (outlen >= max || nn > 0x10ffff || (nn >= 0xd800 && nn <= 0xdfff))
            return -1;
        memmove(out + i + 1, out + i, (outlen - i) * sizeof(*out));
        out[i++] = nn;
        outlen++;
    }
    return (int)outlen;
}

/* RFC 3492 encoding; writes at most `max` bytes to out, returns length or -1. */
static int punycode_encode(const uint32_t *in, size_t n, char *out, size_t max)
{
    uint32_t nn = 128, delta = 0, bias = 72;
    size_t o = 0, h, b = 0;
    for (size_t j = 0; j < n; j++) {
        if (in[j] < 0x80) {
            if (o >= max)
                return -1;
            out[o++] = (char)in[j];
            b++;
        }
    }
    h = b;
    if (b > 0) {
        if (o >= max)
            return -1;
        out[o++] = '-';
    }
    while (h < n) {
        uint32_t m = UINT32_MAX;
        for (size_t j = 0; j < n; j++)
            if (in[j] >= nn && in[j] < m)
                m = in[j];
        if ((uint64_t)(m - nn) * (h + 1) + delta > UINT32_MAX)
            return -1;
        delta += (m - nn) * (uint32_t)(h + 1);
        nn = m;
        for (size_t j = 0; j < n; j++) {
            if (in[j] < nn)
                delta++;
            if (in[j] != nn)
                continue;
            uint32_t q = delta;
            for (uint32_t k = PC_BASE;; k += PC_BASE) {
                uint32_t t = pc_threshold(k, bias);
                if (q < t)
                    break;
                uint32_t d = t + (q - t) % (PC_BASE - t);
                if (o >= max)
                    return -1;
                out[o++] = (char)(d < 26 ? 'a' + d : '0' + d - 26);
                q = (q - t) / (PC_BASE - t);
            }
            if (o >= max)
                return -1;
            out[o++] = (char)(q < 26 ? 'a' + q : '0' + q - 26);
            bias = pc_adapt(delta, (uint32_t)(h + 1), h == b);
            delta = 0;
            h++;
        }
        delta++;
        nn++;
    }
    return (int)o;
}

static bool in_ranges(uint32_t c, const uint32_t (*r)[2], size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c >= r[i][0] && c <= r[i][1])
            return true;
    return false;
}

static const uint32_t combining[][2] = {
    {0x0300, 0x036f}, {0x0483, 0x0489}, {0x0591, 0x05bd}, {0x05bf, 0x05c7}, {0x0610, 0x061a},
    {0x064b, 0x065f}, {0x0670, 0x0670}, {0x06d6, 0x06ed}, {0x0900, 0x0903}, {0x093a, 0x094f},
    {0x0951, 0x0957}, {0x0962, 0x0963}, {0x0981, 0x0983}, {0x09bc, 0x09d7}, {0x0e31, 0x0e3a},
    {0x0e47, 0x0e4e}, {0x1ab0, 0x1aff}, {0x1dc0, 0x1dff}, {0x20d0, 0x20ff}, {0xfe20, 0xfe2f},
};
static const uint32_t viramas[][2] = {
    {0x094d, 0x094d}, {0x09cd, 0x09cd}, {0x0a4d, 0x0a4d}, {0x0acd, 0x0acd}, {0x0b4d, 0x0b4d},
    {0x0bcd, 0x0bcd}, {0x0c4d, 0x0c4d}, {0x0ccd, 0x0ccd}, {0x0d4d, 0x0d4d}, {0x0dca, 0x0dca},
    {0x0e3a, 0x0e3a}, {0x1039, 0x103a}, {0x17d2, 0x17d2}, {0x1b44, 0x1b44}, {0xa806, 0xa806},
};
static const uint32_t disallowed[][2] = {
    {0x0640, 0x0640}, {0x07fa, 0x07fa}, {0x302e, 0x302f}, {0x3031, 0x3035}, {0x303b, 0x303b},
    {0x3002, 0x3002}, {0xff0e, 0xff0e}, {0xff61, 0xff61}, {0x2028, 0x2029}, {0x0000, 0x002c},
    {0x002f, 0x002f}, {0x003a, 0x0060}, {0x007b, 0x00b6}, {0x00b8, 0x00bf}, {0xfff0, 0xffff},
};

static bool is_greek(uint32_t c)
{
    return (c >= 0x0370 && c <= 0x03ff && c != 0x0375) || (c >= 0x1f00 && c <= 0x1fff);
}

static bool is_hebrew(uint32_t c)
{
    return c >= 0x0590 && c <= 0x05ff;
}

static bool is_kana_han(uint32_t c)
{
    return (c >= 0x3040 && c <= 0x309f) || (c >= 0x30a0 && c <= 0x30ff && c != 0x30fb) ||
           (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x4e00 && c <= 0x9fff);
}

enum bidi { B_L, B_R, B_AL, B_AN, B_EN, B_NSM, B_OTHER };

static enum bidi bidi_class(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return B_EN;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return B_L;
    if (c < 0x80 || c == 0x200c || c == 0x200d)
        return B_OTHER;
    if (in_ranges(c, combining, ARRAY_SIZE(combining)) || (c >= 0x06d6 && c <= 0x06ed))
        return B_NSM;
    if (c >= 0x06f0 && c <= 0x06f9)
        return B_EN;
    if ((c >= 0x0660 && c <= 0x0669) || c == 0x066b || c == 0x066c)
        return B_AN;
    if ((c >= 0x0590 && c <= 0x05ff) || (c >= 0x07c0 && c <= 0x089f) ||
        (c >= 0xfb1d && c <= 0xfb4f) || (c >= 0x10800 && c <= 0x10fff) ||
        (c >= 0x1e800 && c <= 0x1efff))
        return B_R;
    if ((c >= 0x0600 && c <= 0x07bf) || (c >= 0x08a0 && c <= 0x08ff) ||
        (c >= 0xfb50 && c <= 0xfdff) || (c >= 0xfe70 && c <= 0xfeff))
        return B_AL;
    return B_L;
}

static bool has_rtl(const uint32_t *cp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum bidi b = bidi_class(cp[i]);
        if (b == B_R || b == B_AL || b == B_AN)
            return true;
    }
    return false;
}

/* RFC 5893 section 2, for a label of a domain that contains RTL labels. */
static bool bidi_ok(const uint32_t *cp, size_t n)
{
    enum bidi first = bidi_class(cp[0]);
    bool rtl = first == B_R || first == B_AL;
    if (!rtl && first != B_L)
        return false;
    bool en = false, an = false;
    enum bidi last = B_OTHER;
    for (size_t i = 0; i < n; i++) {
        enum bidi b = bidi_class(cp[i]);
        if (rtl && b == B_L)
            return false;
        if (!rtl && (b == B_R || b == B_AL || b == B_AN))
            return false;
        en |= b == B_EN;
        an |= b == B_AN;
        if (b != B_NSM)
            last = b;
    }
    if (rtl)
        return !(en && an) && (last == B_R || last == B_AL || last == B_EN || last == B_AN);
    return last == B_L || last == B_EN;
}

static bool is_joining(uint32_t c)
{
    return (c >= 0x0620 && c <= 0x064a) || (c >= 0x066e && c <= 0x06d3) ||
           (c >= 0x06fa && c <= 0x06ff) || (c >= 0x0750 && c <= 0x077f) ||
           (c >= 0x08a0 && c <= 0x08c9) || (c >= 0x0710 && c <= 0x074f);
}

/* IDNA2008 checks on a decoded label. */
static bool ulabel_ok(const uint32_t *cp, size_t n)
{
    bool arabic = false, ext_arabic = false, kana = false;
    if (n == 0 || in_ranges(cp[0], combining, ARRAY_SIZE(combining)))
        return false;
    if (cp[0] == '-' || cp[n - 1] == '-')
        return false;
    if (n >= 4 && cp[2] == '-' && cp[3] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cp[i];
        if (c >= 'A' && c <= 'Z')
            return false; /* U-labels are lower case */
        if (in_ranges(c, disallowed, ARRAY_SIZE(disallowed)) && c != '-')
            return false;
        arabic |= c >= 0x0660 && c <= 0x0669;
        ext_arabic |= c >= 0x06f0 && c <= 0x06f9;
        kana |= is_kana_han(c);
        switch (c) {
        case 0x00b7: /* MIDDLE DOT: only in "l·l" */
            if (i == 0 || i + 1 >= n || cp[i - 1] != 'l' || cp[i + 1] != 'l')
                return false;
            break;
        case 0x0375: /* GREEK LOWER NUMERAL SIGN: before Greek */
            if (i + 1 >= n || !is_greek(cp[i + 1]))
                return false;
            break;
        case 0x05f3:
        case 0x05f4: /* GERESH, GERSHAYIM: after Hebrew */
            if (i == 0 || !is_hebrew(cp[i - 1]))
                return false;
            break;
        case 0x200c: /* ZWNJ: after a virama, or between joining letters */
            if (i > 0 && in_ranges(cp[i - 1], viramas, ARRAY_SIZE(viramas)))
                break;
            if (i == 0 || i + 1 >= n || !is_joining(cp[i - 1]) || !is_joining(cp[i + 1]))
                return false;
            break;
        case 0x200d: /* ZWJ: after a virama */
            if (i == 0 || !in_ranges(cp[i - 1], viramas, ARRAY_SIZE(viramas)))
                return false;
            break;
        default:
            break;
        }
    }
    if (arabic && ext_arabic)
        return false;
    for (size_t i = 0; i < n; i++)
        if (cp[i] == 0x30fb && !kana)
            return false;
    return true;
}

/* Decodes one label into code points (A-labels Punycode-decoded) and
 * checks it; *alen receives its length in A-label form. */
static int label_decode(const char *s, size_t n, bool idn, uint32_t *cps, size_t *alen)
{
    if (n == 0)
        return -1;
    bool ascii = true;
    for (size_t i = 0; i < n; i++)
        ascii &= (unsigned char)s[i] < 0x80;
    *alen = n;
    if (ascii) {
        if (n > 63 || s[0] == '-' || s[n - 1] == '-')
            return -1;
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-'))
                return -1;
            cps[i] = (unsigned char)c;
        }
        if (n >= 4 && s[2] == '-' && s[3] == '-') {
            if (strncmp(s, "xn", 2) != 0)
                return -1; /* reserved "??--" labels, and "XN--" is not canonical */
            int k = punycode_decode(s + 4, n - 4, cps, MAX_CPS);
            if (k <= 0 || !ulabel_ok(cps, (size_t)k))
                return -1;
            bool all_ascii = true;
            for (int i = 0; i < k; i++)
                all_ascii &= cps[i] < 0x80;
            char re[64];
            int rl = punycode_encode(cps, (size_t)k, re, sizeof(re));
            if (all_ascii || rl != (int)n - 4 || strncasecmp(re, s + 4, (size_t)rl) != 0)
                return -1; /* must re-encode to itself */
            return k;
        }
        return (int)n;
    }
    if (!idn)
        return -1;
    int k = utf8_decode(s, n, cps, MAX_CPS);
    if (k <= 0 || !ulabel_ok(cps, (size_t)k))
        return -1;
    char enc[64];
    int el = punycode_encode(cps, (size_t)k, enc, sizeof(enc));
    if (el < 0 || el + 4 > 63)
        return -1;
    *alen = (size_t)el + 4;
    return k;
}

static size_t next_sep(const char *s, size_t n, size_t i, bool idn, size_t *seplen)
{
    for (; i < n; i++) {
        if (s[i] == '.') {
            *seplen = 1;
            return i;
        }
        if (idn && i + 2 < n &&
            (memcmp(s + i, "\xe3\x80\x82", 3) == 0 ||  /* U+3002 */
             memcmp(s + i, "\xef\xbc\x8e", 3) == 0 ||  /* U+FF0E */
             memcmp(s + i, "\xef\xbd\xa1", 3) == 0)) { /* U+FF61 */
            *seplen = 3;
            return i;
        }
    }
    *seplen = 0;
    return n;
}

bool gw__js_format_hostname(const char *s, size_t n, bool idn)
{
    uint32_t cps[MAX_CPS];
    if (n == 0 || n > 4096)
        return false;
    bool bidi = false;
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t st = 0, seplen;
        for (;;) {
            size_t e = next_sep(s, n, st, idn, &seplen), alen;
            int k = label_decode(s + st, e - st, idn, cps, &alen);
            if (k < 0)
                return false;
            if (pass == 0) {
                bidi |= has_rtl(cps, (size_t)k);
                total += alen + (seplen ? 1 : 0);
            } else if (!bidi_ok(cps, (size_t)k)) {
                return false;
            }
            if (!seplen)
                break;
            st = e + seplen;
        }
        if (pass == 0 && total > 253)
            return false;
        if (!bidi)
            break;
    }
    return true;
}
