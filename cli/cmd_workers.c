/*
 * `gangway workers drain ID`: asks the worker process with that id to drain
 * (POST /internal/v1/workers/{id}/drain, admin only; decision 0044). A client
 * of the broker's HTTP API like the other client commands (cmd_client.c);
 * the same exit codes.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "commands.h"

static int workers_drain(int argc, char **argv)
{
    const char *U = "workers drain WORKER_ID [--reason TEXT] [--json]";
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL, *reason = NULL;
    const struct gw_opt_spec specs[] = {
        GW_CLIENT_OPTS(&c, &url, &token),
        {"reason", GW_OPT_STRING, &reason, 'r'},
        {0},
    };
    json_t *out = NULL;
    int rc = gw_client_parse("workers drain", U,
                             "Asks the worker with that id (its --worker-id, or <host>-w<slot>) to"
                             " stop taking runs, hand its partitions to the other workers and"
                             " exit once its runs are done.",
                             specs, argc, argv, "worker");

    if (rc != GW_OPT_OK)
        return rc;
    gw_client_init(&c, url, token);
    char *id = gw_client_escape(argv[optind]);
    char path[512];
    snprintf(path, sizeof(path), "/internal/v1/workers/%s/drain", id ? id : "");
    free(id);
    json_t *req = reason != NULL ? json_pack("{s:s}", "reason", reason) : json_object();
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    rc = gw_client_call(&c, "POST", path, body, &out, NULL, 0);
    free(body);
    if (rc != GW_EXIT_OK)
        return rc;
    if (c.json)
        gw_client_print_json(out);
    else
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
