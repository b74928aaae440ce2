/*
 * Hosted runs (docs/reattach.md): a backend whose work is more than one
 * program (terraform: init, plan, show, apply, output, each on the loop with
 * state between them) runs *inside* its supervisor, `gangway supervise`,
 * which creates and starts the real backend there and spools what its run
 * sink receives; the EXIT record is then a RESULT record with the outcome,
 * outputs, reason and message (spool.h).
 *
 * gw_hosted_backend is the table the worker uses for such a backend when it
 * supervises: its functions spawn the supervisor with the run in the spec
 * (run->supervise->backend names the real backend), relay the spool's lines
 * and result, forward a cancel, reattach and detach, exactly as the exec
 * backend does for its program. Loop thread only.
 */
#ifndef GW_WORKERS_HOSTED_H
#define GW_WORKERS_HOSTED_H

#include "backend.h"

extern const struct gw_backend_impl gw_hosted_backend;

#endif
