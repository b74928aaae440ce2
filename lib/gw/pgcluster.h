/*
 * A private PostgreSQL cluster for `gangway dev` and tests: Debian's server
 * binaries (the newest /usr/lib/postgresql/<N>/bin), a data directory of its
 * own, superuser `gangway` with trust authentication on the local socket and
 * 127.0.0.1 only.
 *
 * Blocking start-up code: call from main() before any loop runs, never on a
 * loop thread. The server is a child process of the caller; it is asked to
 * shut down (fast) if the calling thread dies without stopping it, so call
 * gw_pgcluster_start from the thread that lives as long as the cluster.
 * When running as root, initdb and postgres run as user `postgres` (or
 * `nobody` when there is no such user) and the data directory is given to
 * that user; every parent directory must then be searchable by it.
 */
#ifndef GW_PGCLUSTER_H
#define GW_PGCLUSTER_H

#include "gw/error.h"

struct gw_pgcluster;

/* Initialises `datadir` if it holds no cluster, clears a stale lock left by
 * a killed previous run (stopping an orphaned postmaster of this directory),
 * starts postgres on 127.0.0.1:`port` (0 = a free port) with its socket in
 * `datadir`/run, waits up to 30 s for it to accept connections and creates
 * database `gangway` if missing. Server output goes to `datadir`/postgres.log.
 * Returns NULL with `err` set on failure (GW_ENOTFOUND: no server binaries;
 * GW_ETIMEDOUT; GW_EIO with the end of the server log). */
struct gw_pgcluster *gw_pgcluster_start(const char *datadir, int port, struct gw_error *err);

/* libpq conninfo for database `gangway` as superuser `gangway` over TCP.
 * Owned by the cluster, valid until gw_pgcluster_stop. */
const char *gw_pgcluster_conninfo(const struct gw_pgcluster *c);

/* The TCP port the server listens on. */
int gw_pgcluster_port(const struct gw_pgcluster *c);

/* Fast shutdown, waits for the server to exit (SIGKILL after 30 s), frees.
 * Accepts NULL. */
void gw_pgcluster_stop(struct gw_pgcluster *c);

#endif
