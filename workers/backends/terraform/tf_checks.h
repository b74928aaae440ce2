/*
 * Compliance checks over a Terraform plan (`terraform show -json`), run by
 * the worker on the pool right after the plan (docs/plan-checks.md,
 * decision 0066). Two kinds of check:
 *
 *   schema  a JSON Schema evaluated by Gangway's validator (lib/jsonschema)
 *           over each resource_changes entry (optionally only some resource
 *           types), or over the whole plan with "target": "plan"; every
 *           entry that fails is one finding whose address is the entry's.
 *   exec    an external program (argv, no shell): the plan JSON on stdin,
 *           findings as JSON lines on stdout, exit 0 passes; killed after
 *           timeout_seconds (a timeout fails the check).
 *
 * A check config may name its rule in a file ("file": a JSON object with the
 * same keys), relative paths resolved as the module's are.
 */
#ifndef GW_TF_CHECKS_H
#define GW_TF_CHECKS_H

#include <jansson.h>
#include <stddef.h>

/* Checks the "plan_checks" array of the backend config (borrowed) and
 * returns a new array of resolved checks (files loaded, schemas verified
 * to compile), or NULL with `msg` set. `base_dir` resolves relative files
 * (NULL: only absolute ones). Called on the pool. */
json_t *gw_tf_checks_load(json_t *cfg, const char *base_dir, char *msg, size_t msgsz);

/* Runs every check of `checks` (from gw_tf_checks_load) over `plan`;
 * `plan_path` is the plan JSON on disk (stdin of exec checkers), `envp`
 * their environment. Returns a new {"passed": bool, "findings": [...]},
 * each finding {check, rule, severity, address, message}. Blocking: only
 * on the pool. */
json_t *gw_tf_checks_run(json_t *checks, json_t *plan, const char *plan_path, char **envp);

#endif
