/*
 * The canonical subject (gw/subject.h, decision 0031). Written out by hand:
 * a handful of character classes, no locale (tolower would depend on it),
 * no Unicode.
 */
#include "gw/subject.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define PART_MAX 63

enum part { KIND, NS, NAME };

static const char *const part_names[] = {"kind", "namespace", "name"};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool allowed(enum part p, char c, bool pattern)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
        return true;
    if (pattern && (c == '*' || c == '?'))
        return true;
    if (p == KIND)
        return false;
    if (c == '_' || c == '.')
        return true;
    return p == NAME && (c == '@' || c == '+' || c == '|');
}

static const char *describe(char c, char *buf, size_t cap)
{
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, cap, "'%c'", c);
    else
        snprintf(buf, cap, "byte 0x%02x", (unsigned char)c);
    return buf;
}

/* Checks one lower-cased part of `n` bytes. */
static int check_part(enum part p, const char *s, size_t n, bool pattern, size_t max,
                      struct gw_error *err)
{
    char what[16];
    if (n == 0)
        return gw_error_set(err, GW_EINVAL, false, "the subject's %s is empty", part_names[p]);
    if (n > max)
        return gw_error_set(err, GW_EINVAL, false, "the subject's %s is longer than %zu bytes",
                            part_names[p], max);
    for (size_t i = 0; i < n; i++)
        if (!allowed(p, s[i], pattern))
            return gw_error_set(err, GW_EINVAL, false, "%s is not allowed in the subject's %s (%s)",
                                describe(s[i], what, sizeof(what)), part_names[p],
                                p == KIND ? "a-z, 0-9 and '-'"
                                : p == NS ? "a-z, 0-9, '-', '_' and '.'"
                                          : "a-z, 0-9, '-', '_', '.', '@', '+' and '|'");
    if (p == KIND && !(s[0] >= 'a' && s[0] <= 'z') && !(pattern && (s[0] == '*' || s[0] == '?')))
        return gw_error_set(err, GW_EINVAL, false, "the subject's kind must start with a letter");
    return 0;
}

int gw_subject_canonical(const char *in, const struct gw_subject_defaults *def, unsigned flags,
                         char out[GW_SUBJECT_MAX], struct gw_error *err)
{
    bool pattern = (flags & GW_SUBJECT_PATTERN) != 0;
    const char *dkind = def != NULL && def->kind != NULL ? def->kind : "user";
    const char *dns = def != NULL && def->ns != NULL ? def->ns : "default";
    char low[GW_SUBJECT_MAX], what[16];
    size_t n;
    int rc;

    out[0] = '\0';
    if (in == NULL || in[0] == '\0')
        return gw_error_set(err, GW_EINVAL, false, "the subject is empty");
    n = strnlen(in, GW_SUBJECT_MAX);
    if (n >= GW_SUBJECT_MAX)
        return gw_error_set(err, GW_EINVAL, false, "the subject is longer than %d bytes",
                            GW_SUBJECT_MAX - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80)
            return gw_error_set(err, GW_EINVAL, false,
                                "the subject holds a non-ASCII byte at offset %zu (subjects are "
                                "ASCII entity references; nothing is case-folded beyond A-Z)",
                                i);
        if (c <= 0x20 || c == 0x7f)
            return gw_error_set(err, GW_EINVAL, false,
                                "the subject holds %s at offset %zu (no spaces or control "
                                "characters, and nothing is trimmed)",
                                c == ' ' ? "a space" : describe((char)c, what, sizeof(what)), i);
        low[i] = lower((char)c);
    }
    low[n] = '\0';

    /* kind ':' [namespace '/'] name, or [namespace '/'] name. */
    const char *colon = strchr(low, ':');
    const char *kind = dkind, *rest = low;
    size_t klen = strlen(dkind);
    if (colon != NULL) {
        kind = low;
        klen = (size_t)(colon - low);
        rest = colon + 1;
        if (strchr(rest, ':') != NULL)
            return gw_error_set(err, GW_EINVAL, false, "the subject has more than one ':'");
    }
    const char *slash = strchr(rest, '/');
    const char *ns = dns, *name = rest;
    size_t nslen = strlen(dns);
    if (slash != NULL) {
        ns = rest;
        nslen = (size_t)(slash - rest);
        name = slash + 1;
        if (strchr(name, '/') != NULL)
            return gw_error_set(err, GW_EINVAL, false, "the subject has more than one '/'");
    }
    if ((rc = check_part(KIND, kind, klen, pattern, PART_MAX, err)) < 0 ||
        (rc = check_part(NS, ns, nslen, pattern, PART_MAX, err)) < 0 ||
        (rc = check_part(NAME, name, strlen(name), pattern, GW_SUBJECT_MAX, err)) < 0)
        return rc;
    if (klen == 5 && memcmp(kind, "group", 5) == 0)
        return gw_error_set(err, GW_EINVAL, false,
                            "a group is not a subject: groups are teams (bind them under "
                            "\"teams\", without the \"group:\" prefix)");
    int w = snprintf(out, GW_SUBJECT_MAX, "%.*s:%.*s/%s", (int)klen, kind, (int)nslen, ns, name);
    if (w < 0 || w >= GW_SUBJECT_MAX) {
        out[0] = '\0';
        return gw_error_set(err, GW_EINVAL, false,
                            "the subject is longer than %d bytes once its kind and namespace "
                            "are added",
                            GW_SUBJECT_MAX - 1);
    }
    return 0;
}

int gw_team_canonical(const char *in, char out[GW_TEAM_MAX], struct gw_error *err)
{
    size_t n;

    out[0] = '\0';
    if (in == NULL || in[0] == '\0')
        return gw_error_set(err, GW_EINVAL, false, "the team is empty");
    n = strnlen(in, GW_TEAM_MAX);
    if (n >= GW_TEAM_MAX)
        return gw_error_set(err, GW_EINVAL, false, "the team is longer than %d bytes",
                            GW_TEAM_MAX - 1);
    if (in[0] == ' ' || in[n - 1] == ' ')
        return gw_error_set(err, GW_EINVAL, false,
                            "the team starts or ends with a space (nothing is trimmed)");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)in[i] < 0x20 || in[i] == 0x7f)
            return gw_error_set(err, GW_EINVAL, false,
                                "the team holds a control character at offset %zu", i);
    const char *s = in;
    if (n >= 6 && lower(s[0]) == 'g' && lower(s[1]) == 'r' && lower(s[2]) == 'o' &&
        lower(s[3]) == 'u' && lower(s[4]) == 'p' && s[5] == ':')
        s += 6;
    if (strlen(s) >= 8 && s != in) {
        char ns[8];
        for (size_t i = 0; i < 8; i++)
            ns[i] = lower(s[i]);
        if (memcmp(ns, "default/", 8) == 0)
            s += 8;
    }
    if (*s == '\0')
        return gw_error_set(err, GW_EINVAL, false, "the team's name is empty");
    size_t i = 0;
    for (; s[i]; i++)
        out[i] = lower(s[i]);
    out[i] = '\0';
    return 0;
}
