/*
 * The spool of a supervised run (docs/reattach.md): what a run supervisor
 * (`gangway supervise`, workers/supervisor.c) writes to <run dir>/spool and
 * sends to the attached worker, one record a line of compact JSON:
 *
 *   {"i":1,"s":"stdout","l":"text of the line"}       a log line
 *   {"i":9,"exit":0,"sig":0,"stop":"none"}             the end; the last record
 *                                                      (an optional "msg" says more)
 *   {"i":9,"result":{"outcome":"succeeded",...}}       the end of a run whose
 *                                                      backend the supervisor hosts
 *
 * `i` numbers the records 1, 2, 3... with no gap: a worker that reattaches
 * forwards record i as the run's event seq 1 + i (seq 1 is run.started), so
 * a replay publishes exactly the events already published, which the
 * broker's sink drops as duplicates (gw_worker_events is unique on run,
 * attempt and seq). "stop" says why the program ended: "none" (on its own),
 * "timeout", "cancel" or "lost" (the broker took the run away).
 *
 * A supervisor killed mid-write leaves a last line without its '\n': the
 * reader ignores it (and anything after a malformed or out-of-order line),
 * never fails on it. No I/O but gw_spool_read (blocking: start-up and the
 * supervisor only). Any thread.
 */
#ifndef GW_WORKERS_SPOOL_H
#define GW_WORKERS_SPOOL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/error.h"

enum gw_spool_kind { GW_SPOOL_LOG, GW_SPOOL_EXIT, GW_SPOOL_RESULT };

/* One record. The strings point into `doc` and live until
 * gw_spool_rec_finish(). */
struct gw_spool_rec {
    json_t *doc; /* owned */
    long i;
    enum gw_spool_kind kind;
    const char *stream; /* LOG: "stdout" or "stderr" */
    const char *line;   /* LOG: the line (valid UTF-8, no NUL) */
    size_t len;
    int64_t exit_status; /* EXIT */
    int term_signal;     /* EXIT */
    const char *stop;    /* EXIT: "none", "timeout", "cancel", "lost" or "spawn_failed" */
    const char *message; /* EXIT: detail ("spawn_failed": why), may be NULL */
    json_t *result;      /* RESULT: {"outcome": succeeded|failed|timed_out|cancelled,
                            "outputs", "reason", "exit_code", "message"}, borrowed */
};

/* The record lines, '\n' included, as malloc'd text (NULL: out of memory);
 * *n receives the length. A log line is cleaned to valid UTF-8 first. */
char *gw_spool_log_text(long i, const char *stream, const char *line, size_t len, size_t *n);
char *gw_spool_exit_text(long i, int64_t exit_status, int term_signal, const char *stop,
                         const char *message, size_t *n);

/* The RESULT record of a hosted backend's run: `r` as gw_run_finish_* got it. */
char *gw_spool_result_text(long i, int outcome, json_t *outputs, const char *reason, int exit_code,
                           const char *message, size_t *n);

/* A parsed record as a line again ('\n' included; malloc'd, NULL: out of
 * memory). */
char *gw_spool_rec_text(const struct gw_spool_rec *rec, size_t *n);

/* Parses one line (without its '\n'). Returns 0, or -1 when it is not a
 * record (nothing to finish then). */
int gw_spool_parse(const char *text, size_t len, struct gw_spool_rec *rec);
void gw_spool_rec_finish(struct gw_spool_rec *rec);

/* Receives each record in order; `rec` is borrowed for the call. */
typedef void (*gw_spool_cb)(void *arg, const struct gw_spool_rec *rec);

/* Reads the spool file at `path`: calls `cb` for records 1, 2, ... in order
 * and stops at the end, at a last line without '\n' (a write cut by a
 * crash), at a malformed line or at a record out of sequence. Returns the
 * number of records delivered (a missing file has none), or < 0 with `err`
 * filled when the file cannot be read. *ended (may be NULL) says whether the
 * EXIT or RESULT record was among them. */
int gw_spool_read(const char *path, gw_spool_cb cb, void *arg, int *ended, struct gw_error *err);

#endif
