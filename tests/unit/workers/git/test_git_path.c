/*
 * The git backend's path rules (git_path.h), as a table, each row checked
 * twice: against gw_gitb_path_classify, and, when git can store the path in a
 * tree, against `git fsck --strict` on a tree built with `git hash-object`
 * and `git mktree -z` in a fresh bare repository. A row says what git does
 * with it: reject it (and with which fsck message), accept it (the names we
 * must keep accepting, and the few we refuse as a policy of our own, said so
 * in the row), or nothing (not a path git can store: empty, absolute, empty
 * component, NUL).
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/git/git_path.h"
#include "gw/error.h"
#include "wtest.h"

enum fsck { NOT_STORABLE, GIT_REJECTS, GIT_ACCEPTS };

struct row {
    const char *path;
    size_t len; /* 0: strlen(path) */
    enum gw_gitb_path_rule rule;
    enum fsck fsck;
    const char *fsck_says; /* a message id fsck prints (GIT_REJECTS, or an info) */
    bool symlink;          /* the last component as a symlink, not a regular file */
};

#define L(lit) lit, sizeof(lit) - 1

/* U+200C ZERO WIDTH NON-JOINER and friends, as UTF-8. */
#define ZWNJ "\xe2\x80\x8c"
#define RLM  "\xe2\x80\x8f"
#define ISS  "\xe2\x81\xaa" /* U+206A INHIBIT SYMMETRIC SWAPPING */
#define BOM  "\xef\xbb\xbf" /* U+FEFF */

static const struct row rows[] = {
    /* Names git accepts, and so do we. */
    {"a.yaml", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {"apps/my-service/values.yaml", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {"src/.github/x", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {".github/workflows/ci.yml", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {"gitx", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {".gitkeep", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {"dir/.gitkeep", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {".git-blame-ignore-revs", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {".gitmodules-old/x", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {"gitmodules/x", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {"git~2/x", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false}, /* .git is always ~1 */
    {"git~1x/y", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {"GITMOD~5/x", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false}, /* short names go to ~4 */
    {"a:b/c", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {"caf\xc3\xa9/na\xc3\xafve.yaml", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {"\xe6\x97\xa5\xe6\x9c\xac/\xe8\xa8\xad\xe5\xae\x9a.yaml", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL,
     false},
    {"\xf0\x9f\x9a\x80.md", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {"a" ZWNJ "b/c", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {".g" ZWNJ "ithub/x", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {"$(touch x)/`id`", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},
    {"-oProxyCommand=x", 0, GW_GIT_PATH_OK, GIT_ACCEPTS, NULL, false},

    /* .git and what git fsck --strict reads as .git (hasDotgit). */
    {".git/config", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {".GIT/config", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {"sub/.GiT/hooks/pre-commit", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {".g" ZWNJ "it/config", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {"apps/.g" ZWNJ "it/x", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {BOM ".git/x", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {".git" RLM "/x", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {"." ISS "G" ZWNJ "i" RLM "T/x", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {"git~1/config", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {"GIT~1/config", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {"git~1. /x", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {".git./x", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {".git /x", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {".git. ./x", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {".git::$INDEX_ALLOCATION/x", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {".git:stream/x", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    {".git", 0, GW_GIT_PATH_DOTGIT, GIT_REJECTS, "hasDotgit", false},
    /* A backslash is a separator on Windows: git looks behind it for .git. */
    {"a\\.git/x", 0, GW_GIT_PATH_BACKSLASH, GIT_REJECTS, "hasDotgit", false},
    {"a\\..\\..\\x", 0, GW_GIT_PATH_BACKSLASH, GIT_ACCEPTS, NULL, false}, /* ours */
    {"a\\b", 0, GW_GIT_PATH_BACKSLASH, GIT_ACCEPTS, NULL, false},         /* ours */

    /* "." and "..". */
    {"./a", 0, GW_GIT_PATH_DOT_COMPONENT, GIT_REJECTS, "hasDot", false},
    {"a/../b", 0, GW_GIT_PATH_DOT_COMPONENT, GIT_REJECTS, "hasDotdot", false},
    {"a/..", 0, GW_GIT_PATH_DOT_COMPONENT, GIT_REJECTS, "hasDotdot", false},
    {"../escape", 0, GW_GIT_PATH_DOT_COMPONENT, GIT_REJECTS, "hasDotdot", false},

    /* .gitmodules and .gitattributes as anything but a regular file. */
    {".gitmodules/x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitmodulesBlob", false},
    {".GITMODULES/x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitmodulesBlob", false},
    {".git" ZWNJ "modules/x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitmodulesBlob", false},
    {"gitmod~1/x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitmodulesBlob", false},
    {"GITMOD~4/x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitmodulesBlob", false},
    {"GI7EBA~1/x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitmodulesBlob", false},
    {"gi7eb~12/x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitmodulesBlob", false},
    {".gitmodules. /x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitmodulesBlob", false},
    {".gitmodules:$DATA/x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitmodulesBlob", false},
    {".gitmodules", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitmodulesSymlink", true},
    {"gitmod~2", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitmodulesSymlink", true},
    {".gitattributes/x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitattributesBlob", false},
    {"gitatt~1/x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitattributesBlob", false},
    {"GI7D29~1/x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitattributesBlob", false},
    {".GitAttributes /x", 0, GW_GIT_PATH_GIT_FILE, GIT_REJECTS, "gitattributesBlob", false},
    /* git reports these symlinks at info level (fsck exits 0) and never
     * follows them; we never write them. */
    {".gitattributes", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, "gitattributesSymlink", true},
    {".gitignore", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, "gitignoreSymlink", true},
    {".mail" ZWNJ "map", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, "mailmapSymlink", true},
    {"MAILMA~1", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, "mailmapSymlink", true},
    /* Ours: git's metadata files as regular files (git accepts them), and
     * .gitignore/.mailmap directories (which git ignores). git_path.h says why. */
    {".gitmodules", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, NULL, false},
    {".gitattributes", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, NULL, false},
    {".gitignore", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, NULL, false},
    {"apps/x/.gitignore", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, NULL, false},
    {".mailmap", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, NULL, false},
    {"GITIGN~1", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, NULL, false},
    {"GI250A~1", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, NULL, false},
    {"MABA30~1", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, NULL, false},
    {".gitignore/x", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, NULL, false},
    {".mailmap/x", 0, GW_GIT_PATH_GIT_FILE, GIT_ACCEPTS, NULL, false},

    /* Ours: bytes git stores without complaint. */
    {"a\tb", 0, GW_GIT_PATH_CONTROL, GIT_ACCEPTS, NULL, false},
    {"a\r\nGangway-Run: x", 0, GW_GIT_PATH_CONTROL, GIT_ACCEPTS, NULL, false},
    {"a\x7f", 0, GW_GIT_PATH_CONTROL, GIT_ACCEPTS, NULL, false},
    {"a\xc2\x85z", 0, GW_GIT_PATH_CONTROL, GIT_ACCEPTS, NULL, false}, /* U+0085 */
    {"\xff.yaml", 0, GW_GIT_PATH_BAD_UTF8, GIT_ACCEPTS, NULL, false},
    {"a\xc0\xafz", 0, GW_GIT_PATH_BAD_UTF8, GIT_ACCEPTS, NULL, false},       /* overlong '/' */
    {".\xc1\xa7it/x", 0, GW_GIT_PATH_BAD_UTF8, GIT_ACCEPTS, NULL, false},    /* overlong 'g' */
    {"\xed\xa0\x80", 0, GW_GIT_PATH_BAD_UTF8, GIT_ACCEPTS, NULL, false},     /* surrogate */
    {"\xf4\x90\x80\x80", 0, GW_GIT_PATH_BAD_UTF8, GIT_ACCEPTS, NULL, false}, /* > U+10FFFF */
    {"a\xe2\x80", 0, GW_GIT_PATH_BAD_UTF8, GIT_ACCEPTS, NULL, false},        /* truncated */
    {"\x80", 0, GW_GIT_PATH_BAD_UTF8, GIT_ACCEPTS, NULL, false},

    /* Not a path git can store. */
    {"", 0, GW_GIT_PATH_EMPTY, NOT_STORABLE, NULL, false},
    {"/etc/passwd", 0, GW_GIT_PATH_ABSOLUTE, NOT_STORABLE, NULL, false},
    {"a//b", 0, GW_GIT_PATH_EMPTY_COMPONENT, NOT_STORABLE, NULL, false},
    {"a/", 0, GW_GIT_PATH_EMPTY_COMPONENT, NOT_STORABLE, NULL, false},
    {L("a\0b"), GW_GIT_PATH_CONTROL, NOT_STORABLE, NULL, false},
    {L(".git\0"), GW_GIT_PATH_CONTROL, NOT_STORABLE, NULL, false},
};

static const char *const rule_names[] = {
    "ok",        "empty",           "too_long",      "absolute", "bad_utf8", "control",
    "backslash", "empty_component", "dot_component", "dotgit",   "git_file",
};

/* ------------------------------------------------------------ git */

static char tmp[1024];

static char *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command (only our own temporary paths and object ids are
 * interpolated) and returns its output (stdout and stderr), trailing newline
 * removed, with the exit status appended as "\nrc=N". */
static char *run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    CHECK(p != NULL && buf != NULL);
    while (!feof(p) && !ferror(p)) {
        if (n + 1024 > cap)
            CHECK((buf = realloc(buf, cap *= 2)) != NULL);
        n += fread(buf + n, 1, cap - n - 64, p);
    }
    int st = pclose(p);
    while (n > 0 && buf[n - 1] == '\n')
        n--;
    snprintf(buf + n, 64, "\nrc=%d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return buf;
}

/* The output of a command that must succeed, without the rc line. */
static char *must(char *out)
{
    char *rc = strrchr(out, '\n');
    if (rc == NULL || strcmp(rc, "\nrc=0") != 0) {
        fprintf(stderr, "git failed: %s\n", out);
        abort();
    }
    *rc = '\0';
    return out;
}

/* Builds the tree of `r` (a blob or symlink at the path, trees above it) in
 * a fresh bare repository and returns what `git fsck --strict` says. */
static char *fsck_row(const struct row *r, size_t len)
{
    char repo[1100], input[1100], oid[128];
    const char *end = r->path + len;

    snprintf(repo, sizeof(repo), "%s/repo.git", tmp);
    snprintf(input, sizeof(input), "%s/mktree.in", tmp);
    free(must(run("rm -rf %s && git init -q --bare -b main %s 2>&1", repo, repo)));
    char *blob = must(run("printf x | git -C %s hash-object -w --stdin 2>&1", repo));
    snprintf(oid, sizeof(oid), "%s", blob);
    free(blob);
    /* From the last component up: each becomes a tree of one entry. */
    bool leaf = true;
    while (end > r->path || leaf) {
        const char *start = end;
        while (start > r->path && start[-1] != '/')
            start--;
        FILE *f = fopen(input, "wb");
        CHECK(f != NULL);
        fprintf(f, "%s %s %s\t", leaf ? (r->symlink ? "120000" : "100644") : "040000",
                leaf ? "blob" : "tree", oid);
        fwrite(start, 1, (size_t)(end - start), f);
        fputc('\0', f);
        fclose(f);
        char *tree = must(run("git -C %s mktree -z < %s 2>&1", repo, input));
        snprintf(oid, sizeof(oid), "%s", tree);
        free(tree);
        leaf = false;
        end = start > r->path ? start - 1 : start;
    }
    return run("git -C %s fsck --strict --no-dangling 2>&1", repo);
}

/* ------------------------------------------------------------ tests */

static void test_table(bool with_git)
{
    int checked = 0;
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        const struct row *r = &rows[i];
        size_t len = r->len ? r->len : strlen(r->path), at;
        char q[200], msg[700];
        enum gw_gitb_path_rule got = gw_gitb_path_classify(r->path, len, &at);

        gw_gitb_path_quote(r->path, len, q, sizeof(q));
        if (got != r->rule) {
            fprintf(stderr, "row %zu %s: rule %s, want %s\n", i, q, rule_names[got],
                    rule_names[r->rule]);
            abort();
        }
        CHECK(at <= len);
        /* The message names the path, quoted; the check agrees. */
        msg[0] = '\0';
        CHECK((gw_gitb_path_check(r->path, len, msg, sizeof(msg)) == 0) == (got == 0));
        if (got != GW_GIT_PATH_OK && got != GW_GIT_PATH_EMPTY && strstr(msg, q) == NULL) {
            fprintf(stderr, "row %zu: the message does not name %s: %s\n", i, q, msg);
            abort();
        }
        json_t *js = json_stringn(msg, strlen(msg)); /* NULL unless valid UTF-8 */
        CHECK(js != NULL);
        json_decref(js);

        if (!with_git || r->fsck == NOT_STORABLE)
            continue;
        char *out = fsck_row(r, len);
        bool rejected = strstr(out, "\nrc=0") == NULL;
        if (rejected != (r->fsck == GIT_REJECTS) ||
            (r->fsck_says != NULL && strstr(out, r->fsck_says) == NULL)) {
            fprintf(stderr, "row %zu %s%s: git fsck --strict %s, want %s%s%s:\n%s\n", i, q,
                    r->symlink ? " (symlink)" : "", rejected ? "rejects it" : "accepts it",
                    r->fsck == GIT_REJECTS ? "a rejection" : "acceptance",
                    r->fsck_says ? " saying " : "", r->fsck_says ? r->fsck_says : "", out);
            abort();
        }
        free(out);
        checked++;
    }
    if (with_git)
        printf("git fsck --strict agreed on %d rows\n", checked);
}

static void test_limits(void)
{
    char p[2100];
    size_t at;
    memset(p, 'a', sizeof(p));
    CHECK(gw_gitb_path_classify(p, GW_GIT_PATH_COMPONENT_MAX, NULL) == GW_GIT_PATH_OK);
    CHECK(gw_gitb_path_classify(p, GW_GIT_PATH_COMPONENT_MAX + 1, NULL) == GW_GIT_PATH_TOO_LONG);
    for (size_t i = 200; i < GW_GIT_PATH_MAX; i += 200)
        p[i] = '/';
    CHECK(gw_gitb_path_classify(p, GW_GIT_PATH_MAX, NULL) == GW_GIT_PATH_OK);
    CHECK(gw_gitb_path_classify(p, GW_GIT_PATH_MAX + 1, NULL) == GW_GIT_PATH_TOO_LONG);
    /* The offending byte, or the offending component's start. */
    CHECK(gw_gitb_path_classify(L("ab\x01"), &at) == GW_GIT_PATH_CONTROL && at == 2);
    CHECK(gw_gitb_path_classify(L("apps/x/.GIT/y"), &at) == GW_GIT_PATH_DOTGIT && at == 7);
    CHECK(gw_gitb_path_classify(L("a/b\xe2\x80"), &at) == GW_GIT_PATH_BAD_UTF8 && at == 3);
}

static void quote_is(const char *in, size_t len, size_t cap, const char *want)
{
    char out[256];
    CHECK(cap <= sizeof(out));
    gw_gitb_path_quote(in, len, out, cap);
    if (strcmp(out, want) != 0) {
        fprintf(stderr, "quote: got [%s], want [%s]\n", out, want);
        abort();
    }
    CHECK(strlen(out) < cap);
}

static void test_quote(void)
{
    quote_is(L("apps/x.yaml"), 64, "\"apps/x.yaml\"");
    quote_is(L(".g" ZWNJ "it/x"), 64, "\".g\\u200cit/x\"");
    quote_is(L(BOM ".git" RLM), 64, "\"\\ufeff.git\\u200f\"");
    quote_is(L("caf\xc3\xa9"), 64, "\"caf\xc3\xa9\"");
    quote_is(L("a\"b\\c"), 64, "\"a\\\"b\\\\c\"");
    quote_is(L("a\0b\r\n\x7f\xc2\x85"), 64, "\"a\\x00b\\x0d\\x0a\\x7f\\u0085\"");
    quote_is(L("\xff\xe2\x80"
               "a"),
             64, "\"\\xff\\xe2\\x80a\"");
    quote_is(L("abcdefghij"), 10, "\"abcd...\"");
    quote_is(L("\xe6\x97\xa5\xe6\x9c\xac"), 9, "\"\xe6\x97\xa5...\""); /* never half a character */
    quote_is(L(""), 8, "\"\"");
}

int main(int argc, char **argv)
{
    bool with_git = !(argc > 1 && strcmp(argv[1], "--no-git") == 0);
    if (with_git) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp, sizeof(tmp), "%s/gw-git-path-XXXXXX", t && *t ? t : "/tmp");
        CHECK(mkdtemp(tmp) != NULL);
        /* The git CLI must read neither the machine's nor the user's config. */
        setenv("HOME", tmp, 1);
        setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
        setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    }
    test_limits();
    test_quote();
    test_table(with_git);
    if (with_git)
        free(must(run("rm -rf %s", tmp)));
    printf("ok\n");
    return 0;
}
