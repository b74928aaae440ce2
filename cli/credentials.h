/*
 * The credentials `gangway login` stores: one broker URL and its token in
 * ${XDG_CONFIG_HOME:-~/.config}/gangway/credentials.json, a JSON object
 * {"url": ..., "token": ...}, the file 0600 in a 0700 directory.
 *
 * Writing refuses a directory or file owned by someone else or a symbolic
 * link in their place, and replaces the file atomically (a new 0600 file
 * renamed over it), so a file someone else could read is never written to.
 * Reading ignores a file owned by someone else and warns when its mode lets
 * others read it. Blocking file I/O: command-line only.
 */
#ifndef GW_CLI_CREDENTIALS_H
#define GW_CLI_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>

#define GW_CREDENTIALS_TOKEN_MAX 4096
#define GW_CREDENTIALS_URL_MAX   1023

struct gw_credentials {
    char url[GW_CREDENTIALS_URL_MAX + 1];
    char token[GW_CREDENTIALS_TOKEN_MAX + 1];
};

/* Writes the credentials file's path into buf (and, when dir is non-NULL,
 * its directory into dir, same capacity). Returns 0, or -1 when neither
 * XDG_CONFIG_HOME (absolute) nor a home directory is known or the path does
 * not fit. */
int gw_credentials_path(char *buf, size_t cap, char *dir);

/* Loads the stored credentials. Returns 1 when found (and usable), 0 when
 * there are none, -1 when the file exists but cannot be used (a warning
 * went to stderr). */
int gw_credentials_load(struct gw_credentials *out);

/* Stores url and token. Returns 0, or -1 with a message in why[why_cap]. */
int gw_credentials_save(const char *url, const char *token, char *why, size_t why_cap);

/* Removes the stored credentials. Returns 1 when a file was removed, 0 when
 * there was none, -1 with a message in why[why_cap]. */
int gw_credentials_remove(char *why, size_t why_cap);

/* A token we are willing to put in an Authorization header: 1..4096
 * printable ASCII characters, no spaces. */
bool gw_credentials_token_ok(const char *token);

#endif
