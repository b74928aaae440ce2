/*
 * `gangway workers drain ID`: asks the worker process with that id to drain
 * (POST /internal/v1/workers/{id}/drain, admin only; decision 0044). A client
 * of the broker's HTTP API like the other client commands (cmd_client.c);
 * the same exit codes.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "commands.h"

static int workers_drain(int argc, char **argv)
{
    static const struct gw_client_verb v = {
        .cmd = "workers drain",
        .usage = "workers drain WORKER_ID [--reason TEXT] [--json]",
        .what = "Asks the worker with that id (its --worker-id, or <host>-w<slot>) to"
                " stop taking runs, hand its partitions to the other workers and"
                " exit once its runs are done.",
        .operand = "worker",
        .collection = "/internal/v1/workers",
        .verb = "drain",
        .reason = true,
    };
    json_t *out = NULL;
    int rc = gw_client_verb(&v, argc, argv, &out);
    if (rc != GW_EXIT_OK || out == NULL)
        return rc;
    printf("worker %s: drain requested (event %s)\n", gw_client_str(out, "worker_id"),
           gw_client_str(out, "event_id"));
    json_decref(out);
    return GW_EXIT_OK;
}

int gw_cmd_workers(int argc, char **argv)
{
    const char *U = "workers drain WORKER_ID [--reason TEXT] [--json]";
    if (argc >= 2 && strcmp(argv[1], "drain") == 0)
        return workers_drain(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return gw_client_help(U, "Worker operations: drain one worker.");
    return gw_client_usage("workers", U, argc >= 2 ? "unknown subcommand" : "which subcommand?",
                           argc >= 2 ? argv[1] : NULL);
}
