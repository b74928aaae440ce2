/* The credentials file of `gangway login` (credentials.h). */
#include "credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_NAME "credentials.json"
#define MAX_BYTES (64 * 1024)

static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (why == NULL || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

bool gw_credentials_token_ok(const char *token)
{
    size_t n = token != NULL ? strlen(token) : 0;
    if (n == 0 || n > GW_CREDENTIALS_TOKEN_MAX)
        return false;
    /* Printable ASCII only: a CR or LF would end the Authorization header. */
    for (size_t i = 0; i < n; i++)
        if (token[i] <= ' ' || token[i] > '~')
            return false;
    return true;
}

int gw_credentials_path(char *buf, size_t cap, char *dir)
{
    const char *base = getenv("XDG_CONFIG_HOME");
    char home_cfg[4096];
    int n;

    /* The XDG spec says a relative XDG_CONFIG_HOME is to be ignored. */
    if (base == NULL || base[0] != '/') {
        const char *home = getenv("HOME");
        if (home == NULL || home[0] != '/') {
            struct passwd *pw = getpwuid(geteuid());
            home = pw != NULL ? pw->pw_dir : NULL;
        }
        if (home == NULL || home[0] != '/')
            return -1;
        n = snprintf(home_cfg, sizeof(home_cfg), "%s/.config", home);
        if (n < 0 || (size_t)n >= sizeof(home_cfg))
            return -1;
        base = home_cfg;
    }
    n = snprintf(buf, cap, "%s/gangway/" FILE_NAME, base);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    if (dir != NULL) {
        memcpy(dir, buf, (size_t)n + 1);
        *strrchr(dir, '/') = '\0';
    }
    return 0;
}

/* mkdir -p for the parents of `dir` (mode 0700 for what it creates). */
static int make_parents(const char *dir, char *why, size_t cap)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s", dir);
    for (char *s = strchr(p + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            say(why, cap, "cannot create %s: %s", p, strerror(errno));
            return -1;
        }
        *s = '/';
    }
    return 0;
}

/* The gangway directory: ours, a real directory, 0700 (tightened if ours
 * and looser). */
static int ensure_dir(const char *dir, char *why, size_t cap)
{
    struct stat st;
    if (make_parents(dir, why, cap) != 0)
        return -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        say(why, cap, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    if (lstat(dir, &st) != 0) {
        say(why, cap, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        say(why, cap, "%s is not a directory (a symbolic link?); not writing credentials there",
            dir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        say(why, cap, "%s belongs to uid %ld, not to you; not writing credentials there", dir,
            (long)st.st_uid);
        return -1;
    }
    if ((st.st_mode & 0777) != 0700 && chmod(dir, 0700) != 0) {
        say(why, cap, "cannot make %s private (chmod 700): %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int gw_credentials_save(const char *url, const char *token, char *why, size_t cap)
{
    char path[4096], dir[4096], tmp[4200];
    struct stat st;
    int fd = -1;

    if (gw_credentials_path(path, sizeof(path), dir) != 0) {
        say(why, cap, "no home directory (set HOME or XDG_CONFIG_HOME)");
        return -1;
    }
    if (ensure_dir(dir, why, cap) != 0)
        return -1;
    if (lstat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            say(why, cap, "%s is not a regular file (a symbolic link?); not overwriting it", path);
            return -1;
        }
        if (st.st_uid != geteuid()) {
            say(why, cap, "%s belongs to uid %ld, not to you; not overwriting it", path,
                (long)st.st_uid);
            return -1;
        }
    } else if (errno != ENOENT) {
        say(why, cap, "%s: %s", path, strerror(errno));
        return -1;
    }

    json_t *doc = json_pack("{s:s, s:s}", "url", url, "token", token);
    char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (text == NULL) {
        say(why, cap, "out of memory");
        return -1;
    }
    /* A new file, private from its first byte, then renamed over the old
     * one: never a moment where the token sits in a readable file. */
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        say(why, cap, "cannot create %s: %s", tmp, strerror(errno));
        goto fail_text;
    }
    if (fchmod(fd, 0600) != 0) {
        say(why, cap, "cannot chmod %s: %s", tmp, strerror(errno));
        goto fail_file;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            say(why, cap, "cannot write %s: %s", tmp, strerror(errno));
            goto fail_file;
        }
        off += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        say(why, cap, "cannot write %s: %s", tmp, strerror(errno));
        goto fail_file;
    }
    if (close(fd) != 0) {
        fd = -1;
        say(why, cap, "cannot write %s: %s", tmp, strerror(errno));
        goto fail_file;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        say(why, cap, "cannot replace %s: %s", path, strerror(errno));
        goto fail_file;
    }
    free(text);
    return 0;

fail_file:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
fail_text:
    free(text);
    return -1;
}

int gw_credentials_load(struct gw_credentials *out)
{
    char path[4096];
    struct stat st;
    char *buf = NULL;
    json_t *doc = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (gw_credentials_path(path, sizeof(path), NULL) != 0)
        return 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        fprintf(stderr, "gangway: ignoring %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "gangway: ignoring %s: not a regular file\n", path);
        goto out;
    }
    if (st.st_uid != geteuid()) {
        fprintf(stderr, "gangway: ignoring %s: it belongs to uid %ld, not to you\n", path,
                (long)st.st_uid);
        goto out;
    }
    if (st.st_mode & 077)
        fprintf(stderr,
                "gangway: warning: %s can be read by others (mode %03o); run chmod 600 on it or"
                " gangway login again\n",
                path, (unsigned)(st.st_mode & 0777));
    if (st.st_size > MAX_BYTES) {
        fprintf(stderr, "gangway: ignoring %s: too large\n", path);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL)
        goto out;
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == (size_t)st.st_size)
            break;
    }
    json_error_t jerr;
    doc = json_loadb(buf, len, 0, &jerr);
    const char *url = json_string_value(json_object_get(doc, "url"));
    const char *token = json_string_value(json_object_get(doc, "token"));
    if (url == NULL || token == NULL || strlen(url) > GW_CREDENTIALS_URL_MAX ||
        !gw_credentials_token_ok(token)) {
        fprintf(stderr, "gangway: ignoring %s: not the credentials gangway login writes\n", path);
        goto out;
    }
    snprintf(out->url, sizeof(out->url), "%s", url);
    snprintf(out->token, sizeof(out->token), "%s", token);
    rc = 1;
out:
    json_decref(doc);
    free(buf);
    close(fd);
    return rc;
}

int gw_credentials_remove(char *why, size_t cap)
{
    char path[4096];
    if (gw_credentials_path(path, sizeof(path), NULL) != 0) {
        say(why, cap, "no home directory (set HOME or XDG_CONFIG_HOME)");
        return -1;
    }
    if (unlink(path) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    say(why, cap, "cannot remove %s: %s", path, strerror(errno));
    return -1;
}
