/* Helpers shared by the subcommands for flags and environment defaults. */
#ifndef GW_CLI_OPTIONS_H
#define GW_CLI_OPTIONS_H

#include <stdbool.h>

/* `flag` when set, else the environment variable `env`, else `def`. */
const char *gw_opt(const char *flag, const char *env, const char *def);

/* Splits "k=v,k=v" into a NULL-terminated array (free with gw_opt_free_list).
 * Returns NULL for NULL or empty input. */
char **gw_opt_split_props(const char *s);
void gw_opt_free_list(char **list);

/* ---- declared options: one table per command over getopt_long ----
 *
 * A command lists its options once, in a table ended by {0}; gw_opt_parse
 * builds the `struct option` array and the optstring from it, runs
 * getopt_long and stores each value where the entry says. Only the checks
 * that are the command's own stay in the command (numbers parsed, values
 * validated, options that exclude each other). --help / -h is implied and
 * comes last in the long table, so getopt_long's own messages (unknown
 * option, missing argument, ambiguous abbreviation) are those the commands
 * always printed. A table may include another (GW_OPT_TABLE), so a command
 * can accept every option of another one by including its table. */
enum gw_opt_kind {
    GW_OPT_END = 0,   /* ends a table */
    GW_OPT_STRING,    /* `const char **dest` = the value; the last one given wins */
    GW_OPT_SET,       /* flag: `int *dest` = 1 */
    GW_OPT_CLEAR,     /* flag: `int *dest` = 0 (a --no-X switch) */
    GW_OPT_BOOL,      /* flag: `bool *dest` = true */
    GW_OPT_CALL,      /* `call(value, dest)` at its place in argv (value NULL for a
                       * flag, see `flag`); returns GW_OPT_OK or an exit code */
    GW_OPT_TABLE,     /* includes the table `dest` points to, in place */
    GW_OPT_HELP_HERE, /* puts --help here rather than last (name unused) */
};

/* What gw_opt_parse and GW_OPT_CALL callbacks return to go on; with no
 * usage text, gw_opt_parse returns HELP or BAD and the caller prints. */
#define GW_OPT_OK   (-1)
#define GW_OPT_HELP (-2)
#define GW_OPT_BAD  (-3)

struct gw_opt_spec {
    const char *name; /* the long option, without "--" */
    enum gw_opt_kind kind;
    void *dest;
    char short_name; /* also accepted as -c (0: long only) */
    bool flag;       /* GW_OPT_CALL without a value */
    /* GW_OPT_STRING only, applied after a successful parse when the option
     * was not given: the environment variable `env` if set and not empty,
     * else `def` (gw_opt's rule). */
    const char *env;
    const char *def;
    int (*call)(const char *value, void *dest);
};

/* Parses argv[1..] (from optind 1) against `specs`. Returns GW_OPT_OK with
 * optind on the first operand, or the exit code the command returns now:
 * 0 after printing `usage` on stdout for --help, 2 after getopt_long's
 * message and `usage` on stderr, or what a GW_OPT_CALL returned. When
 * `usage` is NULL it prints nothing of its own for those two cases and
 * returns GW_OPT_HELP or GW_OPT_BAD (getopt_long has printed its message). */
int gw_opt_parse(int argc, char **argv, const struct gw_opt_spec *specs, const char *usage);

/* Parses "HOST:PORT" ("[::1]:8080" for IPv6). Returns 0 or -1. */
int gw_opt_parse_listen(const char *s, char *host, unsigned long cap, int *port);

#endif
