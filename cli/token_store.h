/* Creating API tokens (shared by `gangway token` and `gangway dev`). */
#ifndef GW_CLI_TOKEN_STORE_H
#define GW_CLI_TOKEN_STORE_H

#include <libpq-fe.h>

#include "gw/error.h"

/* Inserts a token for `subject` (blocking) and writes the secret into
 * token_out[GW_TOKEN_LEN + 1] and its id into id_out[GW_UUID_LEN + 1].
 * `expires_in_s` <= 0 means no expiry. The subject is stored in its
 * canonical form (gw/subject.h); one it refuses is GW_EINVAL. */
int gw_token_store_create(PGconn *conn, const char *subject, const char *const *teams, int nteams,
                          const char *const *roles, int nroles, long expires_in_s,
                          const char *description, char *token_out, char *id_out,
                          struct gw_error *err);

#endif
