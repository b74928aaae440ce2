/*
 * What every client command of the people's CLI shares (docs/cli.md): where
 * the broker is and which token to send (flags, then GANGWAY_URL /
 * GANGWAY_TOKEN, then the credentials `gangway login` stored), one JSON
 * call with its problem mapped to an exit code, and plain-text tables.
 * Blocking libcurl calls: command-line only, never on a loop thread.
 */
#ifndef GW_CLI_CLIENT_H
#define GW_CLI_CLIENT_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "credentials.h"
#include "options.h"

/* Exit codes of every client command. */
enum {
    GW_EXIT_OK = 0,          /* done */
    GW_EXIT_FAILED = 1,      /* refused, not found, or the run did not succeed */
    GW_EXIT_USAGE = 2,       /* bad flags or arguments, HTTP 400/415/422 */
    GW_EXIT_UNREACHABLE = 3, /* no answer, or HTTP 5xx */
    GW_EXIT_AUTH = 4,        /* HTTP 401/403 */
};

struct gw_client {
    char url[1024];                           /* without a trailing slash */
    char token[GW_CREDENTIALS_TOKEN_MAX + 1]; /* "" when there is none */
    bool json;
    /* When not "", what gw_client_call's problems are about ("run <id>"),
     * printed before the detail: commands acting on several objects. */
    char about[128];
};

/* The options every client command takes, first in its gw_opt table and in
 * this order: --url and --token (borrowed into *url / *token), --json (into
 * c->json), then --help. */
#define GW_CLIENT_OPTS(c, url, token)                                                              \
    {"url", GW_OPT_STRING, (url)}, {"token", GW_OPT_STRING, (token)},                              \
        {"json", GW_OPT_BOOL, &(c)->json},                                                         \
    {                                                                                              \
        "help", GW_OPT_HELP_HERE                                                                   \
    }

/* Reads a client command's options (`specs`), then checks the arguments
 * left as gw_client_args does with `one`. Returns GW_OPT_OK (argv[optind] is
 * the one argument, if any), or the exit code after printing the help
 * (`usage` and `what`; 0) or the usage error (2). */
int gw_client_parse(const char *cmd, const char *usage, const char *what,
                    const struct gw_opt_spec *specs, int argc, char **argv, const char *one);

/* As gw_client_parse, but for commands taking one or more operands
 * (`approve RUN...`): `one` names them when none is given. */
int gw_client_parse_many(const char *cmd, const char *usage, const char *what,
                         const struct gw_opt_spec *specs, int argc, char **argv, const char *one);

/* Resolves the URL (flag, GANGWAY_URL, stored, http://127.0.0.1:8080) and
 * the token (flag, GANGWAY_TOKEN, then the stored one, but only when the URL
 * is the stored URL: a stored token is never sent to another server). */
void gw_client_init(struct gw_client *c, const char *url, const char *token);

/* Prints `gangway CMD: MSG ARG` (when msg) and the usage line; returns 2. */
int gw_client_usage(const char *cmd, const char *usage, const char *msg, const char *arg);

/* --help: prints the usage line and `what` the command does; returns 0. */
int gw_client_help(const char *usage, const char *what);

/* Checks the arguments left after the options (argv[optind] on): none when
 * `one` is NULL, else exactly one, which `one` names ("run": "which run?").
 * Returns 0, or 2 after gw_client_usage said what is missing or extra. */
int gw_client_args(const char *cmd, const char *usage, int argc, char **argv, const char *one);

/* Prints what went wrong (the problem's detail, code and field errors) and
 * maps an HTTP status (< 0: unreachable, raw is the transport error) to an
 * exit code. When code_out is non-NULL it receives the problem's code. */
int gw_client_problem(int status, const char *raw, char *code_out, size_t code_cap);

/* One JSON request (body may be NULL). Returns 0 with *out set (a 2xx
 * answer; the caller owns it) or the exit code after printing the problem;
 * code_out (may be NULL) receives the problem's code then. */
int gw_client_call(const struct gw_client *c, const char *method, const char *path,
                   const char *body, json_t **out, char *code_out, size_t code_cap);

/* A command that acts on one object by id (cancel, resume, workers drain):
 * `gangway CMD ID [--reason TEXT]` POSTs {"reason": TEXT} (or {}) to
 * COLLECTION/<ID, URL-escaped>/VERB. */
struct gw_client_verb {
    const char *cmd;        /* for messages: "cancel", "workers drain" */
    const char *usage;      /* the usage line, without "gangway " */
    const char *what;       /* what --help says it does */
    const char *operand;    /* what the ID is: "run" ("which run?") */
    const char *collection; /* "/v1/runs" */
    const char *verb;       /* "cancel" */
    bool reason;            /* takes --reason TEXT */
};

/* Runs such a command: reads its options as gw_client_parse does, sends
 * the request, and with --json prints the answer. Returns 0 with *out set
 * (the caller prints it as text and owns it), or the exit code with *out
 * NULL (--help, a usage error, a problem printed, or --json done). */
int gw_client_verb(const struct gw_client_verb *v, int argc, char **argv, json_t **out);

/* A duration as people write it: seconds ("3600"), or a number with one
 * unit: s, m, h, d or w ("90s", "30m", "8h", "5d", "2w"). At most ten years.
 * Returns 0 with *secs set, or -1 (then the caller prints a usage error
 * quoting the text). */
int gw_client_duration(const char *text, long long *secs);

/* A number of seconds written back the same way, largest units first:
 * 28800 -> "8h", 93600 -> "1d2h", 90 -> "1m30s", 0 -> "0s". */
void gw_client_duration_str(long long secs, char *out, size_t cap);

/* What a run waiting for approval still needs, from its `approval` object:
 * "1 more from role manager", "2 more from team sre or role lead", or
 * "1 more from anyone who may decide". Uses `approval.remaining` when the
 * broker sends it, else required minus the approvals that count. "" when
 * the run has no approval rule. */
void gw_client_waiting_for(json_t *run, char *out, size_t cap);

/* An API time "2026-11-25T10:00:01.123456Z" for people:
 * "2026-11-25T10:00:01Z (in 59m)", "(in 4h10m)", "(in 2d23h)", "(in 45d)" or
 * "(expired)". */
void gw_client_expiry(const char *at, char *out, size_t cap);

/* Whether a run status is terminal (succeeded, failed, timed_out,
 * cancelled, rejected, expired). */
bool gw_client_run_ended(const char *status);

/* Approvals that count on `run` (for its current plan, when it has one). */
long long gw_client_approvals_counted(json_t *run);

/* Helpers: a URL-escaped copy (free it), pretty JSON on stdout, a string
 * member or "" (borrowed). */
char *gw_client_escape(const char *s);
void gw_client_print_json(json_t *j);
const char *gw_client_str(json_t *o, const char *key);

/* A table printed with aligned columns: set ncols and head, add rows (cells
 * copied), print once (which frees the rows). */
#define GW_TABLE_MAX_COLS 12
struct gw_table {
    size_t ncols, nrows;
    const char *head[GW_TABLE_MAX_COLS];
    char **cells; /* nrows * ncols, owned */
};
void gw_table_add(struct gw_table *t, const char *const *row);
void gw_table_print(struct gw_table *t);

#endif
