/*
 * The line protocol between a worker and a run's supervisor (supervisor.h),
 * as both ends write it: one helper for the exec backend, the hosted
 * backend and the supervisor, so a line is queued, owned and freed the
 * same way everywhere.
 */
#ifndef GW_WORKERS_SUPLINE_H
#define GW_WORKERS_SUPLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* The supervisor's answer once it holds the spec and RUN_DIR/meta.json is
 * written: from then on a later worker can find the run and reattach, so
 * the worker that started it may detach (a handoff drain). Before it, a
 * detach would strand a supervisor that never got its spec. */
#define GW_SUPLINE_READY "{\"ready\":true}\n"

/* Queues `n` bytes of `text` (a copy is written and freed by libuv's
 * callback) on `stream`. Returns 0, or a negative GW_E* code when nothing
 * was queued (out of memory, or the stream refused the write); the caller
 * says what that means for its line, never silently. */
int gw_supline_send(uv_stream_t *stream, const char *text, size_t n);

/* Whether one received line (without its '\n') is the non-record line
 * `{"<key>":true}` (the supervisor's "ready" and "busy"). */
bool gw_supline_is(const char *line, size_t len, const char *key);

#endif
