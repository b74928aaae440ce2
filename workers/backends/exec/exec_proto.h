/*
 * The line protocol of the exec backend's persistent mode
 * (docs/persistent-exec.md): what a persistent program writes on its stdout,
 * one JSON object per line, parsed without any I/O (unit-tested; bad input
 * of any kind is an error with a reason, never a crash).
 */
#ifndef GW_EXEC_PROTO_H
#define GW_EXEC_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The protocol version this worker speaks. */
#define GW_EXEC_PROTOCOL 1
/* The longest line a program may write (outputs are capped at 1 MiB, like
 * the outputs file of a program started per run; the rest is envelope). A
 * longer line fails the run with reason output_limit. */
#define GW_EXEC_LINE_MAX (2 * 1024 * 1024)

enum exec_msg_type {
    EXEC_MSG_HELLO,     /* {"type":"hello","protocol":1} */
    EXEC_MSG_LOG,       /* {"type":"log","id":...,"stream":"stdout"|"stderr","line":...} */
    EXEC_MSG_RESULT,    /* {"type":"result","id":...,"status":"succeeded"|"failed",...} */
    EXEC_MSG_CANCELLED, /* {"type":"cancelled","id":...}: a cancel was obeyed */
};

/* One parsed line. Every pointer borrows from `doc`, which the message owns. */
struct exec_msg {
    enum exec_msg_type type;
    json_t *doc;
    const char *id;      /* all but HELLO */
    int protocol;        /* HELLO */
    const char *stream;  /* LOG */
    const char *line;    /* LOG */
    size_t line_len;     /* LOG */
    bool succeeded;      /* RESULT */
    json_t *outputs;     /* RESULT succeeded: an object (never NULL) */
    const char *message; /* RESULT failed: may be NULL */
    int exit_code;       /* RESULT failed: 1 unless given */
};

/* Parses one line (without its '\n'; need not be NUL-terminated). Returns 0
 * and fills `m` (free with gw_exec_msg_finish), or -1 with a one-line reason
 * in `why` (and `m` left empty). */
int gw_exec_msg_parse(const char *line, size_t len, struct exec_msg *m, char *why, size_t whysz);
void gw_exec_msg_finish(struct exec_msg *m);

/* Builds the lines the worker writes (malloc'd, '\n'-terminated, NULL when
 * out of memory). `run` is the request object (stolen). */
char *gw_exec_line_hello(void);
char *gw_exec_line_run(json_t *run);
char *gw_exec_line_cancel(const char *id, const char *reason);

#endif
