/* Shared by the git backend's loop tests. */
#ifndef GW_TEST_GIT_H
#define GW_TEST_GIT_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>

#include "backend_run.h"

struct fixture {
    char tmp[1024];         /* everything lives here */
    char remote[PATH_MAX];  /* the bare repository */
    char url[PATH_MAX + 8]; /* file://<remote> */
    char tpl[PATH_MAX];     /* templates dir */
    char outside[PATH_MAX]; /* must stay empty */
    char mark[PATH_MAX];    /* must never exist: injected commands would create it */
};

extern struct fixture F;

/* Runs the backend to the end. cancel_ms > 0 cancels then. A create()
 * failure is recorded as a finished, failed run with reason "create". */
void run_git(const char *config, json_t *inputs, const char *run_id, int timeout, int cancel_ms,
             struct run_record *r);
/* Any log line or the message contains needle. */
bool result_mentions(const struct run_record *r, const char *needle);
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Output of a shell command, trailing newline removed (malloc'd). */
char *capture(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A config for the fixture's repository plus `extra` JSON members. */
char *config_with(const char *files, const char *message, const char *extra);

void test_injection(void);

#endif
