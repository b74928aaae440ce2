/* The `gangway` binary: wires subcommands together, nothing else. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "gw/error.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"broker", gw_cmd_broker, "run the HTTP API, outbox relay, event sink and reaper"},
    {"worker", gw_cmd_worker, "run a pool of workers of one type (--type exec)"},
    {"migrate", gw_cmd_migrate, "apply the SQL migrations in sql/ and exit"},
    {"dev", gw_cmd_dev, "embedded default: private PostgreSQL, mock Kafka, broker, worker pools"},
    {"token", gw_cmd_token, "manage API tokens (token create --subject NAME [--team T])"},
    {"schema", gw_cmd_schema, "JSON Schema tools (schema validate SCHEMA INSTANCE...)"},
    {"audit", gw_cmd_audit,
     "check the audit hash chain (audit verify) or list entries (audit list)"},
    {"actions", gw_cmd_actions, "list the actions (client: GANGWAY_URL, GANGWAY_TOKEN)"},
    {"run", gw_cmd_run, "start a run: run ACTION -i key=value ... [--ttl 8h] [--wait]"},
    {"rerun", gw_cmd_rerun, "start a run again with the same inputs: rerun RUN [--wait]"},
    {"runs", gw_cmd_runs, "list runs [--status S] [--action A] [--watch]"},
    {"logs", gw_cmd_logs, "print a run's log lines: logs RUN [--follow]"},
    {"cancel", gw_cmd_cancel, "cancel a run: cancel RUN"},
    {"resume", gw_cmd_resume,
     "run a failed workflow again from its failed step: resume RUN [-i SECRET=VALUE]"},
    {"login", gw_cmd_login, "check a token and store it: login [--url URL] [--token-stdin]"},
    {"logout", gw_cmd_logout, "remove the stored credentials"},
    {"approvals", gw_cmd_approvals, "list the runs waiting for your decision"},
    {"approve", gw_cmd_approve, "approve runs: approve RUN... [-m COMMENT]"},
    {"reject", gw_cmd_reject, "reject runs: reject RUN... -m COMMENT"},
    {"resources", gw_cmd_resources, "what runs created: resources list|show|extend|delete"},
    {"workers", gw_cmd_workers, "worker operations: workers drain WORKER_ID (admin)"},
    {"bridge", gw_cmd_bridge, "portal bridges: bridge port (Port's Kafka invocation method)"},
    /* Internal: started by `gangway worker --supervise`, never by hand. */
    {"supervise", gw_cmd_supervise, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: gangway <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (commands[i].help != NULL)
            fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nRun `gangway <command> --help` for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("gangway 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "gangway: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
