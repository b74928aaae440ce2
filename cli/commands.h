/*
 * Subcommands of the `gangway` binary. Each takes the arguments after its
 * name (argv[0] is the subcommand name) and returns the process exit code.
 */
#ifndef GW_CLI_COMMANDS_H
#define GW_CLI_COMMANDS_H

int gw_cmd_broker(int argc, char **argv);
int gw_cmd_worker(int argc, char **argv);
int gw_cmd_supervise(int argc, char **argv); /* cmd_worker.c; internal */
int gw_cmd_migrate(int argc, char **argv);
int gw_cmd_dev(int argc, char **argv);
int gw_cmd_token(int argc, char **argv);
int gw_cmd_schema(int argc, char **argv);
int gw_cmd_audit(int argc, char **argv); /* cmd_audit.c */
/* The client commands (cmd_client.c, docs/cli.md). */
int gw_cmd_actions(int argc, char **argv);
int gw_cmd_run(int argc, char **argv); /* cmd_run.c */
int gw_cmd_rerun(int argc, char **argv);
int gw_cmd_runs(int argc, char **argv);
int gw_cmd_logs(int argc, char **argv);
int gw_cmd_cancel(int argc, char **argv);
int gw_cmd_resume(int argc, char **argv);
int gw_cmd_login(int argc, char **argv); /* cmd_login.c */
int gw_cmd_logout(int argc, char **argv);
int gw_cmd_approvals(int argc, char **argv); /* cmd_approvals.c */
int gw_cmd_approve(int argc, char **argv);
int gw_cmd_reject(int argc, char **argv);
int gw_cmd_resources(int argc, char **argv); /* cmd_resources.c */
int gw_cmd_workers(int argc, char **argv);   /* cmd_workers.c */
int gw_cmd_bridge(int argc, char **argv);    /* cmd_bridge.c: bridge port */

#endif
