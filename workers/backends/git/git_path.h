/*
 * Which repository paths the git backend may write: git's own rules for the
 * names in a tree, applied to every component of a destination path, plus a
 * few of Gangway's. git's rules (read-cache.c verify_path, fsck.c fsck_tree,
 * utf8.c is_hfs_dot*, path.c is_ntfs_dot*) exist because a name that Linux
 * stores as an ordinary file can be the repository's own .git, or its
 * .gitmodules, once checked out on macOS (HFS+ ignores some invisible code
 * points and case) or Windows (NTFS trims trailing dots and spaces, has
 * alternate data streams and 8.3 short names). `git fsck --strict` and the
 * hosting servers' receive checks reject such trees; we refuse them before
 * committing (tests/unit/workers/git/test_git_path.c proves each rule against
 * `git fsck --strict`).
 *
 * A path is refused when it
 *   - is empty, longer than GW_GIT_PATH_MAX bytes, or absolute;
 *   - is not valid UTF-8 (overlong forms, surrogates, above U+10FFFF,
 *     truncated sequences);
 *   - contains a control character (U+0000-U+001F, U+007F-U+009F);
 *   - contains a backslash: a separator on Windows, where "a\.git" is .git
 *     (git's fsck looks behind backslashes for the same reason). Every
 *     repository is treated as one that Windows users may check out;
 *   - has an empty component ("a//b", "a/"), "." or "..", or a component
 *     longer than GW_GIT_PATH_COMPONENT_MAX bytes;
 *   - has a component that is .git: in any case; with any of the code points
 *     HFS+ ignores (U+200C-U+200F, U+202A-U+202E, U+206A-U+206F, U+FEFF)
 *     anywhere in it; followed by dots and spaces (".git. ") or by an
 *     alternate data stream (".git::$INDEX_ALLOCATION", ".git:x"); or its
 *     short name "git~1" (same suffixes);
 *   - has a component that is one of git's in-tree metadata files,
 *     .gitmodules, .gitattributes, .gitignore or .mailmap, in any of the forms
 *     above, or as an NTFS short name ("gitmod~1".."gitmod~4", and the hashed
 *     fall-backs such as "gi7eba~1"; "gitatt~N"/"gi7d29~N",
 *     "gitign~N"/"gi250a~N", "mailma~N"/"maba30~N").
 *
 * The metadata files are refused in every position, not only as non-blobs.
 * In the middle of a path they would be directories, which `git fsck
 * --strict` rejects for .gitmodules and .gitattributes (and git never reads
 * for the others). As the last component they would be regular files, which
 * git accepts, but none is a GitOps artefact and each changes how git treats
 * the whole repository for everyone who clones it: .gitmodules makes a
 * recursive clone fetch other URLs, .gitattributes sets filters and line
 * ending conversion for every file (our own checkout in the cache included),
 * .mailmap rewrites the author shown by log and blame (the requester, whom the
 * backend records as author), .gitignore hides files from later commits. The
 * backend writes only regular files, so it never makes one a symbolic link.
 *
 * Names git accepts stay accepted: ".github/x", ".gitkeep", "gitx", "git~2",
 * non-ASCII names, and the HFS+-ignored code points outside a .git look-alike.
 *
 * Threading: any thread; no state, no allocation.
 */
#ifndef GW_GIT_PATH_H
#define GW_GIT_PATH_H

#include <stddef.h>

#define GW_GIT_PATH_MAX           1024
#define GW_GIT_PATH_COMPONENT_MAX 255

/* The first rule a path breaks, for tests and messages. */
enum gw_gitb_path_rule {
    GW_GIT_PATH_OK = 0,
    GW_GIT_PATH_EMPTY,
    GW_GIT_PATH_TOO_LONG, /* the path, or one component */
    GW_GIT_PATH_ABSOLUTE,
    GW_GIT_PATH_BAD_UTF8,
    GW_GIT_PATH_CONTROL, /* NUL included */
    GW_GIT_PATH_BACKSLASH,
    GW_GIT_PATH_EMPTY_COMPONENT,
    GW_GIT_PATH_DOT_COMPONENT, /* "." or ".." */
    GW_GIT_PATH_DOTGIT,        /* .git or a look-alike */
    GW_GIT_PATH_GIT_FILE, /* .gitmodules, .gitattributes, .gitignore, .mailmap or a look-alike */
};

/* Checks path[len] (not NUL-terminated; NUL bytes in it are refused) against
 * the rules above. Returns the first rule broken, checking the whole path's
 * bytes before its components. When `at` is not NULL it receives the byte
 * offset of the offending byte, or of the start of the offending component. */
enum gw_gitb_path_rule gw_gitb_path_classify(const char *path, size_t len, size_t *at);

/* gw_gitb_path_classify with a message. Returns 0, or -1 with msg[cap] (cap >
 * 0) saying which rule the path breaks and naming it (gw_gitb_path_quote). */
int gw_gitb_path_check(const char *path, size_t len, char *msg, size_t cap);

/* Writes path[len], double-quoted, into out[cap] (cap > 0; truncated with
 * "..." before the closing quote when it does not fit) as text that is safe
 * in a log line or a JSON string: printable ASCII and well-formed UTF-8 as
 * they are, except '"' and '\' (escaped with a backslash), control and
 * invisible format characters (as \xNN or \uXXXX, so ".g\u200cit" shows what
 * makes it .git), and bytes that are not UTF-8 (as \xNN). The result is
 * always valid UTF-8. */
void gw_gitb_path_quote(const char *path, size_t len, char *out, size_t cap);

/* Formats into msg[cap] and returns -1: the git backend's one way to fail
 * with a message (`return gw_gitb_failf(msg, cap, "...", ...)`). */
int gw_gitb_failf(char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
