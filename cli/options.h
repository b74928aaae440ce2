/* Helpers shared by the subcommands for flags and environment defaults. */
#ifndef GW_CLI_OPTIONS_H
#define GW_CLI_OPTIONS_H

/* `flag` when set, else the environment variable `env`, else `def`. */
const char *gw_opt(const char *flag, const char *env, const char *def);

/* Splits "k=v,k=v" into a NULL-terminated array (free with gw_opt_free_list).
 * Returns NULL for NULL or empty input. */
char **gw_opt_split_props(const char *s);
void gw_opt_free_list(char **list);

/* Ends an option switch: for 'h' (--help) prints `usage` on stdout and
 * returns 0; for anything else (an unknown option, a missing value) prints
 * it on stderr and returns 2, the usage exit code. */
int gw_opt_usage(int c, const char *usage);

/* Parses "HOST:PORT" ("[::1]:8080" for IPv6). Returns 0 or -1. */
int gw_opt_parse_listen(const char *s, char *host, unsigned long cap, int *port);

#endif
