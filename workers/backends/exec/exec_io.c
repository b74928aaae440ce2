#include "exec_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gw/mem.h"

/* Outputs are metadata (ids, URLs), not payloads. */
#define OUTPUTS_MAX (1024 * 1024)

void gw_exec_lines_init(struct exec_lines *l, size_t max)
{
    l->buf = NULL;
    l->len = l->cap = 0;
    l->max = max;
}

/* The longest prefix of at most `max` bytes that does not cut a UTF-8
 * sequence (falls back to `max` for bytes that are not UTF-8 at all). */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t cut = max;
    for (int back = 0; back < 4 && cut > 0; back++) {
        unsigned char c = (unsigned char)s[cut];
        if ((c & 0xC0) != 0x80)
            return cut;
        cut--;
    }
    return max;
}

static void emit(const char *line, size_t len, exec_line_cb cb, void *ctx)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    cb(ctx, line, len);
}

int gw_exec_lines_feed(struct exec_lines *l, const char *data, size_t n, exec_line_cb cb, void *ctx)
{
    if (gw_grow(&l->buf, &l->cap, l->len + n, 4096) < 0)
        return -1;
    memcpy(l->buf + l->len, data, n);
    l->len += n;

    size_t start = 0;
    for (;;) {
        char *nl = memchr(l->buf + start, '\n', l->len - start);
        size_t avail = (nl ? (size_t)(nl - (l->buf + start)) : l->len - start);
        if (avail > l->max) {
            /* Too long: emit a piece, keep the rest. */
            size_t cut = utf8_cut(l->buf + start, l->max);
            cb(ctx, l->buf + start, cut);
            start += cut;
            continue;
        }
        if (nl == NULL)
            break;
        emit(l->buf + start, avail, cb, ctx);
        start += avail + 1;
    }
    memmove(l->buf, l->buf + start, l->len - start);
    l->len -= start;
    return 0;
}

void gw_exec_lines_flush(struct exec_lines *l, exec_line_cb cb, void *ctx)
{
    if (l->len > 0)
        emit(l->buf, l->len, cb, ctx);
    l->len = 0;
}

void gw_exec_lines_finish(struct exec_lines *l)
{
    free(l->buf);
    l->buf = NULL;
    l->len = l->cap = 0;
}

int gw_exec_outputs_read(const char *path, json_t **out, char *msg, size_t msgsz)
{
    struct stat st;
    json_error_t jerr;
    json_t *j;
    *out = NULL;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            *out = json_object();
            return 0;
        }
        snprintf(msg, msgsz, "outputs file: %s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > OUTPUTS_MAX) {
        snprintf(msg, msgsz, "outputs file is not a regular file of at most %d bytes", OUTPUTS_MAX);
        return -1;
    }
    j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        snprintf(msg, msgsz, "outputs file is not JSON: %s (line %d)", jerr.text, jerr.line);
        return -1;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(msg, msgsz, "outputs file is not a JSON object");
        return -1;
    }
    *out = j;
    return 0;
}
