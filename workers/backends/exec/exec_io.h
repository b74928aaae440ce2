/* Helpers of the exec backend that do no I/O on the loop (unit-tested). */
#ifndef GW_EXEC_IO_H
#define GW_EXEC_IO_H

#include <jansson.h>
#include <stddef.h>

/* Splits a byte stream into lines: each '\n'-terminated line (without the
 * '\n' and a trailing '\r') is emitted; a line longer than `max` is emitted
 * in pieces of at most `max` bytes, cut on a UTF-8 character boundary. */
struct exec_lines {
    char *buf;
    size_t len, cap, max;
};
typedef void (*exec_line_cb)(void *ctx, const char *line, size_t len);

void gw_exec_lines_init(struct exec_lines *l, size_t max);
int gw_exec_lines_feed(struct exec_lines *l, const char *data, size_t n, exec_line_cb cb,
                       void *ctx);
/* Emits what is left (a last line without '\n'). */
void gw_exec_lines_flush(struct exec_lines *l, exec_line_cb cb, void *ctx);
void gw_exec_lines_finish(struct exec_lines *l);

/* Reads the outputs file (blocking: thread pool only). Returns 0 and a JSON
 * object in *out ({} when the file does not exist), or -1 with `msg` filled
 * when it is unreadable, too big or not a JSON object. */
int gw_exec_outputs_read(const char *path, json_t **out, char *msg, size_t msgsz);

#endif
