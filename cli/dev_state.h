/*
 * What `gangway dev` keeps in its data directory between starts (decision
 * 0034): <data-dir>/dev.json, mode 0600, holding the API address and URL, the
 * admin and worker tokens (secrets: hence 0600) and the PostgreSQL port and
 * connection string, so a restart keeps what a person pasted into a shell,
 * and `gangway dev token ...` finds the database.
 */
#ifndef GW_CLI_DEV_STATE_H
#define GW_CLI_DEV_STATE_H

#include "gw/crypto.h"
#include "gw/error.h"

struct gw_dev_state {
    char listen[300]; /* HOST:PORT the broker listens on */
    char url[320];    /* http://HOST:PORT */
    char admin_token[GW_TOKEN_LEN + 1];
    char worker_token[GW_TOKEN_LEN + 1];
    int pg_port;
    char pg[512]; /* postgresql://gangway@127.0.0.1:PORT/gangway */
    char kafka[512];
};

/* Fills `s` from <dir>/dev.json. Returns 0, GW_ENOTFOUND when there is no
 * file (s is zeroed), or GW_EINVAL with `err` set when it cannot be read or
 * parsed. Empty or missing fields stay empty. */
int gw_dev_state_load(const char *dir, struct gw_dev_state *s, struct gw_error *err);

/* Writes <dir>/dev.json (mode 0600) through a temporary file renamed over
 * it, so a crash never leaves half a file. Returns 0 or GW_EIO. */
int gw_dev_state_save(const char *dir, const struct gw_dev_state *s, struct gw_error *err);

#endif
