/* Repository path rules of the git backend (see git_path.h). */
#include "git_path.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gw/utf8.h"

/* ------------------------------------------------------------ UTF-8 */

/* The code points HFS+ drops from names when it compares them (git's
 * utf8.c next_hfs_char). */
static bool hfs_ignored(uint32_t cp)
{
    return (cp >= 0x200c && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x206a && cp <= 0x206f) || cp == 0xfeff;
}

static bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* ------------------------------------------------------------ component rules */

/* HFS+: after dropping the ignored code points, the component is "." +
 * needle in ASCII case-insensitively and nothing else. The component is
 * valid UTF-8 (checked before). */
static bool hfs_dot(const unsigned char *s, size_t n, const char *needle)
{
    size_t i = 0, k = 0, want = strlen(needle) + 1; /* "." + needle */
    while (i < n) {
        uint32_t cp;
        size_t l = gw_utf8_next(s + i, n - i, &cp);
        if (l == 0)
            return false;
        i += l;
        if (hfs_ignored(cp))
            continue;
        if (k == want || cp > 0x7f)
            return false;
        char expect = k == 0 ? '.' : needle[k - 1];
        char got = (char)(cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp);
        if (got != expect)
            return false;
        k++;
    }
    return k == want;
}

/* NTFS ignores trailing dots and spaces, and ':' starts an alternate data
 * stream ("name:stream:type"): from s[i] on, only those may follow. */
static bool ntfs_tail(const unsigned char *s, size_t n, size_t i)
{
    for (; i < n; i++) {
        if (s[i] == ':')
            return true;
        if (s[i] != '.' && s[i] != ' ')
            return false;
    }
    return true;
}

/* NTFS .git: ".git" in any case, or its short name "git~1" (git makes sure
 * .git is the first entry, so it gets ~1), then ntfs_tail. */
static bool ntfs_dotgit(const unsigned char *s, size_t n)
{
    if (n >= 4 && s[0] == '.' && strncasecmp((const char *)s + 1, "git", 3) == 0)
        return ntfs_tail(s, n, 4);
    if (n >= 5 && strncasecmp((const char *)s, "git~1", 5) == 0)
        return ntfs_tail(s, n, 5);
    return false;
}

static char ascii_lower(unsigned char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

/* NTFS ".<needle>" (git's path.c is_ntfs_dot_generic): the long name, the
 * regular short name (first six letters of needle, '~', 1-4), or the
 * fall-back short name Windows derives from a hash (`prefix`, six characters
 * of which a '~' and 1-9 digits may replace the tail, within eight), each
 * followed by ntfs_tail. */
static bool ntfs_dot(const unsigned char *s, size_t n, const char *needle, const char *prefix)
{
    size_t len = strlen(needle), i;
    bool saw_tilde = false;

    if (n >= len + 1 && s[0] == '.' && strncasecmp((const char *)s + 1, needle, len) == 0)
        return ntfs_tail(s, n, len + 1);
    if (n >= 8 && strncasecmp((const char *)s, needle, 6) == 0 && s[6] == '~' && s[7] >= '1' &&
        s[7] <= '4')
        return ntfs_tail(s, n, 8);
    for (i = 0; i < 8; i++) {
        if (i >= n)
            return false;
        if (saw_tilde) {
            if (s[i] < '0' || s[i] > '9')
                return false;
        } else if (s[i] == '~') {
            if (++i >= n || s[i] < '1' || s[i] > '9')
                return false;
            saw_tilde = true;
        } else if (i >= 6 || (s[i] & 0x80) || ascii_lower(s[i]) != prefix[i]) {
            return false;
        }
    }
    return ntfs_tail(s, n, 8);
}

/* git's in-tree metadata files, with the hashed NTFS short-name prefixes git
 * checks (path.c). */
static const struct {
    const char *name, *ntfs_prefix;
} gitb_files[] = {
    {"gitmodules", "gi7eba"},
    {"gitattributes", "gi7d29"},
    {"gitignore", "gi250a"},
    {"mailmap", "maba30"},
};

static enum gw_gitb_path_rule component_rule(const unsigned char *s, size_t n)
{
    if (n == 0)
        return GW_GIT_PATH_EMPTY_COMPONENT;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return GW_GIT_PATH_DOT_COMPONENT;
    if (n > GW_GIT_PATH_COMPONENT_MAX)
        return GW_GIT_PATH_TOO_LONG;
    if (hfs_dot(s, n, "git") || ntfs_dotgit(s, n))
        return GW_GIT_PATH_DOTGIT;
    for (size_t i = 0; i < sizeof(gitb_files) / sizeof(gitb_files[0]); i++)
        if (hfs_dot(s, n, gitb_files[i].name) ||
            ntfs_dot(s, n, gitb_files[i].name, gitb_files[i].ntfs_prefix))
            return GW_GIT_PATH_GIT_FILE;
    return GW_GIT_PATH_OK;
}

/* ------------------------------------------------------------ API */

enum gw_gitb_path_rule gw_gitb_path_classify(const char *path, size_t len, size_t *at)
{
    const unsigned char *s = (const unsigned char *)path;
    size_t i, start;
    enum gw_gitb_path_rule rule;

    if (at != NULL)
        *at = 0;
    if (len == 0)
        return GW_GIT_PATH_EMPTY;
    if (len > GW_GIT_PATH_MAX)
        return GW_GIT_PATH_TOO_LONG;
    if (s[0] == '/')
        return GW_GIT_PATH_ABSOLUTE;
    for (i = 0; i < len;) {
        uint32_t cp;
        size_t l = gw_utf8_next(s + i, len - i, &cp);
        rule = l == 0           ? GW_GIT_PATH_BAD_UTF8
               : is_control(cp) ? GW_GIT_PATH_CONTROL
               : cp == '\\'     ? GW_GIT_PATH_BACKSLASH
                                : GW_GIT_PATH_OK;
        if (rule != GW_GIT_PATH_OK) {
            if (at != NULL)
                *at = i;
            return rule;
        }
        i += l;
    }
    for (start = 0;; start = i + 1) {
        const unsigned char *slash = memchr(s + start, '/', len - start);
        i = slash ? (size_t)(slash - s) : len;
        if ((rule = component_rule(s + start, i - start)) != GW_GIT_PATH_OK) {
            if (at != NULL)
                *at = start;
            return rule;
        }
        if (slash == NULL)
            return GW_GIT_PATH_OK;
    }
}

int gw_gitb_path_check(const char *path, size_t len, char *msg, size_t cap)
{
    char q[200], comp[120];
    size_t at, end;
    enum gw_gitb_path_rule rule = gw_gitb_path_classify(path, len, &at);

    if (rule == GW_GIT_PATH_OK)
        return 0;
    gw_gitb_path_quote(path, len, q, sizeof(q));
    end = at;
    while (end < len && path[end] != '/')
        end++;
    gw_gitb_path_quote(path + at, end - at, comp, sizeof(comp));
    switch (rule) {
    case GW_GIT_PATH_EMPTY:
        return gw_gitb_failf(msg, cap, "destination path is empty");
    case GW_GIT_PATH_TOO_LONG:
        return len > GW_GIT_PATH_MAX
                   ? gw_gitb_failf(msg, cap, "destination path is longer than %d bytes",
                                   GW_GIT_PATH_MAX)
                   : gw_gitb_failf(msg, cap,
                                   "destination path %s: component %s is longer than %d bytes", q,
                                   comp, GW_GIT_PATH_COMPONENT_MAX);
    case GW_GIT_PATH_ABSOLUTE:
        return gw_gitb_failf(msg, cap, "destination path %s is absolute", q);
    case GW_GIT_PATH_BAD_UTF8:
        return gw_gitb_failf(msg, cap, "destination path %s is not valid UTF-8 (byte %zu)", q, at);
    case GW_GIT_PATH_CONTROL:
        return gw_gitb_failf(msg, cap,
                             "destination path %s contains a control character (byte %zu)", q, at);
    case GW_GIT_PATH_BACKSLASH:
        return gw_gitb_failf(msg, cap, "destination path %s contains a backslash", q);
    case GW_GIT_PATH_EMPTY_COMPONENT:
        return gw_gitb_failf(msg, cap, "destination path %s has an empty component", q);
    case GW_GIT_PATH_DOT_COMPONENT:
        return gw_gitb_failf(msg, cap, "destination path %s has a '.' or '..' component", q);
    case GW_GIT_PATH_DOTGIT:
        return gw_gitb_failf(
            msg, cap,
            "destination path %s: component %s is .git, or a name macOS or Windows "
            "reads as .git",
            q, comp);
    case GW_GIT_PATH_GIT_FILE:
        return gw_gitb_failf(
            msg, cap,
            "destination path %s: component %s is one of git's own files (.gitmodules, "
            ".gitattributes, .gitignore, .mailmap), or a name macOS or Windows reads as "
            "one; the git backend does not write them",
            q, comp);
    case GW_GIT_PATH_OK:
        break;
    }
    return gw_gitb_failf(msg, cap, "destination path %s is refused", q);
}

void gw_gitb_path_quote(const char *path, size_t len, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)path;
    size_t o = 0, i = 0;
    char piece[16];

    if (cap < 6) { /* room for nothing but an empty or truncated quote */
        snprintf(out, cap, "%s", cap >= 3 ? "\"\"" : "");
        return;
    }
    out[o++] = '"';
    while (i < len) {
        uint32_t cp;
        size_t l = gw_utf8_next(s + i, len - i, &cp), pn;
        if (l == 0) {
            snprintf(piece, sizeof(piece), "\\x%02x", s[i]);
            l = 1;
        } else if (cp == '"' || cp == '\\') {
            snprintf(piece, sizeof(piece), "\\%c", (char)cp);
        } else if (is_control(cp)) {
            snprintf(piece, sizeof(piece), cp < 0x80 ? "\\x%02x" : "\\u%04x", (unsigned)cp);
        } else if (hfs_ignored(cp) || (cp >= 0x200b && cp <= 0x200f) || cp == 0x2028 ||
                   cp == 0x2029 || (cp >= 0x2060 && cp <= 0x2064) || cp == 0xad) {
            snprintf(piece, sizeof(piece), "\\u%04x", (unsigned)cp);
        } else {
            memcpy(piece, s + i, l);
            piece[l] = '\0';
        }
        pn = strlen(piece);
        /* Keep room for `..."` and the NUL. */
        if (o + pn + 5 > cap) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, piece, pn);
        o += pn;
        i += l;
    }
    out[o++] = '"';
    out[o] = '\0';
}

int gw_gitb_failf(char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return -1;
}
