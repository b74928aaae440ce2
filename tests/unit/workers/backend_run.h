/*
 * One backend run driven directly on a private loop, without Kafka or a
 * broker, for the backend tests (exec, git, jenkins, terraform): a sink that
 * records what the backend reports, and the driver that checks the lifecycle
 * rules of workers/backend.h on every run.
 */
#ifndef GW_TEST_BACKEND_RUN_H
#define GW_TEST_BACKEND_RUN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "backend.h"

/* What the backend reported through its sink. */
struct run_record {
    bool finished;
    enum gw_run_outcome outcome;
    char reason[64];
    char message[1200]; /* the result's message, or create()'s error */
    int exit_code;
    json_t *outputs; /* a reference, or NULL */
    int nlines;      /* log lines, in order: */
    char **stream;   /*   the stream each came on */
    char **line;     /*   its text (NUL-terminated copy) */
    size_t *len;     /*   its length */
};

struct backend_run_options {
    int cancel_after_ms;        /* > 0: cancel this long after start() */
    const char *cancel_on_line; /* non-NULL: cancel once a log line contains it */
    enum gw_cancel_reason why;  /* the reason either cancel gives */
    int max_lines;              /* > 0: more log lines than this fail the test */
};

/* Runs `run` to its end on a private loop through the backend `name`. The
 * caller fills `run` but for loop, sink and sink_data; fields it leaves zero
 * get the tests' usual values: run_id 11111111-2222-3333-4444-555555555555,
 * attempt 1, action_version "v1", requested_by "alice". `r` is reset first
 * (free it with run_record_free).
 *
 * Checks, aborting on failure: start() succeeds and does not finish
 * synchronously; the run finishes; a cancel `o` asked for was accepted; a
 * cancel after the finish answers GW_ECONFLICT; destroy() clears
 * backend_data; the loop closes with no handle left.
 *
 * Returns create()'s result: when it fails, its error message is in
 * r->message, destroy() has run and nothing was started. */
int backend_run(const char *name, struct gw_run *run, const struct backend_run_options *o,
                struct run_record *r);

void run_record_free(struct run_record *r);

#endif
