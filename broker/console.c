/*
 * The web console's static files (web/dist, built by Vite with base /ui/),
 * served by the broker so the console shares the API's origin: no CORS, and
 * the session cookie can be SameSite=Strict (docs/console.md).
 *
 *   GET /                 302 to /ui/
 *   GET /ui/<file>        the file, when it exists under the directory
 *   GET /ui/assets/<f>    hashed names: cached for a year, immutable; a
 *                         missing one is 404 (never index.html: a stale
 *                         page must not run HTML as a script)
 *   GET /ui/<anything>    index.html (client-side routes: /ui/runs/{id})
 *
 * The path the router hands over is already %-decoded. Traversal cannot
 * happen twice over: a path with a "." or ".." segment, a backslash or a
 * hidden name is refused before any file is opened, and the file found is
 * resolved with realpath(3) and must still lie inside the (resolved)
 * directory, so a symlink cannot lead out either.
 *
 * Files are read with blocking calls: they are few, small and local (the
 * built console is under 1 MiB), and read once each (an in-memory cache
 * keyed by path keeps them; the directory is immutable once built, a new
 * build needs a broker restart or SIGHUP-less redeploy, like sql/).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "gw/log.h"

#define MAX_FILE    (16u << 20)
#define CACHE_BYTES (64u << 20)

struct cached {
    struct cached *next;
    char *path; /* relative to the directory */
    char *data;
    size_t len;
};

struct gw_console {
    char *dir; /* resolved; NULL when missing */
    char *configured;
    struct cached *files;
    size_t bytes;
};

struct gw_console *gw_console_create(const char *dir)
{
    struct gw_console *c = calloc(1, sizeof(*c));
    char real[PATH_MAX];
    if (c == NULL)
        return NULL;
    c->configured = strdup(dir != NULL ? dir : "");
    if (dir != NULL && realpath(dir, real) != NULL) {
        struct stat st;
        char index[PATH_MAX + 16];
        snprintf(index, sizeof(index), "%s/index.html", real);
        if (stat(index, &st) == 0 && S_ISREG(st.st_mode))
            c->dir = strdup(real);
    }
    if (c->dir != NULL)
        gw_log_info("console: serving %s at /ui/", c->dir);
    else
        gw_log_info("console: %s has no built console (npm ci && npm run build in web/)",
                    dir != NULL ? dir : "no directory");
    return c;
}

void gw_console_destroy(struct gw_console *c)
{
    if (c == NULL)
        return;
    while (c->files != NULL) {
        struct cached *f = c->files;
        c->files = f->next;
        free(f->path);
        free(f->data);
        free(f);
    }
    free(c->dir);
    free(c->configured);
    free(c);
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".ico", "image/x-icon"},
        {".webp", "image/webp"},
        {".woff2", "font/woff2"},
        {".woff", "font/woff"},
        {".txt", "text/plain; charset=utf-8"},
        {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot != NULL && (slash == NULL || dot > slash))
        for (size_t i = 0; i < ARRAY_SIZE(types); i++)
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* A relative path under /ui/ the console may name: segments of ordinary
 * names only (no "", ".", "..", no leading dot, no backslash). */
static bool safe_relative(const char *rel)
{
    if (*rel == '\0')
        return false;
    for (const char *seg = rel; *seg != '\0';) {
        size_t n = strcspn(seg, "/");
        if (n == 0 || seg[0] == '.' || memchr(seg, '\\', n) != NULL)
            return false;
        seg += n;
        if (*seg == '/')
            seg++;
    }
    return true;
}

/* Reads `rel` under the directory into the cache. NULL when it is not a
 * regular file inside the directory. */
static struct cached *load(struct gw_console *c, const char *rel)
{
    for (struct cached *f = c->files; f != NULL; f = f->next)
        if (strcmp(f->path, rel) == 0)
            return f;
    char path[PATH_MAX], real[PATH_MAX];
    size_t dlen = strlen(c->dir);
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", c->dir, rel) >= sizeof(path) ||
        realpath(path, real) == NULL)
        return NULL;
    if (strncmp(real, c->dir, dlen) != 0 || real[dlen] != '/')
        return NULL; /* a symlink that leads out */
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    struct stat st;
    struct cached *f = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= MAX_FILE &&
        (f = calloc(1, sizeof(*f))) != NULL) {
        f->len = (size_t)st.st_size;
        f->data = malloc(f->len + 1);
        f->path = strdup(rel);
        size_t got = 0;
        while (f->data != NULL && got < f->len) {
            ssize_t n = read(fd, f->data + got, f->len - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (f->data == NULL || f->path == NULL || got != f->len) {
            free(f->data);
            free(f->path);
            free(f);
            f = NULL;
        }
    }
    close(fd);
    if (f == NULL)
        return NULL;
    if (c->bytes + f->len <= CACHE_BYTES) {
        f->next = c->files;
        c->files = f;
        c->bytes += f->len;
    } else {
        /* Over the cache budget: served once, not kept. */
        f->next = NULL;
    }
    return f;
}

static void send_file(struct gw_api_ctx *ctx, struct cached *f, const char *rel, bool immutable)
{
    const char *hdr = gw_api_printf(ctx, "Cache-Control: %s\r\n%s",
                                    immutable ? "public, max-age=31536000, immutable" : "no-cache",
                                    gw_console_headers);
    bool kept = false;
    for (struct cached *k = ctx->b->console->files; k != NULL; k = k->next)
        kept = kept || k == f;
    if (hdr == NULL)
        gw_api_oom(ctx);
    else
        gw_api_send(ctx, 200, content_type(rel), hdr, f->data, f->len);
    if (!kept) {
        free(f->data);
        free(f->path);
        free(f);
    }
}

static void not_built(struct gw_api_ctx *ctx)
{
    const char *body = gw_api_printf(
        ctx,
        "The Gangway console is not built.\n\n"
        "Build it once with:\n\n    cd web && npm ci && npm run build\n\n"
        "then restart the broker, or point it at a built console with --web-dir DIR "
        "(GW_WEB_DIR).\nLooked in: %s\n\nThe API itself works: see /v1/me.\n",
        ctx->b->console->configured[0] != '\0' ? ctx->b->console->configured : "(nowhere)");
    const char *hdr = gw_api_printf(ctx, "Cache-Control: no-cache\r\n%s", gw_console_headers);
    if (body == NULL || hdr == NULL)
        gw_api_oom(ctx);
    else
        gw_api_send(ctx, 404, "text/plain; charset=utf-8", hdr, body, strlen(body));
}

static void plain(struct gw_api_ctx *ctx, int status, const char *code, const char *detail)
{
    gw_api_problem_ex(ctx, status, code, NULL, gw_console_headers, "%s", detail);
}

void gw_console_serve(struct gw_api_ctx *ctx)
{
    const char *path = ctx->req->path;
    struct gw_console *c = ctx->b->console;

    if (strcmp(ctx->req->method, "GET") != 0) {
        gw_api_problem_ex(ctx, 405, "method_not_allowed", NULL, "Allow: GET\r\n", "%s",
                          "the console's files are read with GET");
        return;
    }
    if (strcmp(path, "/") == 0 || strcmp(path, "/ui") == 0) {
        const char *hdr = gw_api_printf(ctx, "Location: /ui/\r\n%s", gw_console_headers);
        if (hdr == NULL)
            gw_api_oom(ctx);
        else
            gw_api_send(ctx, 302, "text/plain", hdr, "", 0);
        return;
    }
    if (c == NULL || c->dir == NULL) {
        not_built(ctx);
        return;
    }
    const char *rel = path + 4; /* after "/ui/" */
    bool asset = strncmp(rel, "assets/", 7) == 0;
    if (*rel != '\0' && !safe_relative(rel)) {
        plain(ctx, 404, "not_found", "no such console file");
        return;
    }
    struct cached *f = *rel != '\0' ? load(c, rel) : NULL;
    if (f != NULL) {
        send_file(ctx, f, rel, asset);
        return;
    }
    if (asset) {
        plain(ctx, 404, "not_found", "no such console asset");
        return;
    }
    /* Client-side routing: every other /ui/ path is the application. */
    f = load(c, "index.html");
    if (f == NULL) {
        not_built(ctx);
        return;
    }
    send_file(ctx, f, "index.html", false);
}
