/*
 * Helpers of the terraform backend that touch files or parse Terraform's JSON.
 * Every function that does file I/O blocks: thread pool only. None keeps
 * state; all are unit-tested directly (tests/unit/workers/terraform/).
 */
#ifndef GW_TF_PREP_H
#define GW_TF_PREP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The file inputs are written to, and the input that names a saved plan. */
#define TF_VARS_FILE  "gangway.auto.tfvars.json"
#define TF_PLAN_INPUT "plan_sha256"
#define TF_PLANS_DIR  "gangway-plans"
/* What a sensitive output or a secret in a log line is replaced with. */
#define TF_REDACTED "(sensitive value)"

/* The working directory's name for one resource: the hex SHA-256 of
 * action_id, a NUL byte and resource_key, into out[65]. Whatever the key
 * holds ("../", "/abs"), the name is 64 hex digits. */
void gw_tf_workdir_name(const char *action_id, const char *resource_key, char out[65]);

/* mkdir -p of `dir` with mode 0700 for what it creates. Returns 0 or -1 with
 * `msg` filled. */
int gw_tf_mkdirs(const char *dir, char *msg, size_t msgsz);

/* Makes `workdir` hold a fresh copy of `module_dir`: removes everything at its
 * top level but Terraform's state and data (terraform.tfstate*, .terraform,
 * .terraform.lock.hcl, .terraform.tfstate.lock.info) and the saved plans
 * directory, then copies regular files and directories of the module (never
 * following a symlink, skipping .terraform, .git and state files, at most 32
 * levels deep, files 0600, directories 0700). Returns 0 or -1 with `msg`. */
int gw_tf_workdir_sync(const char *workdir, const char *module_dir, char *msg, size_t msgsz);

/* Writes `inputs` (an object; the plan_sha256 key left out) as JSON to
 * <workdir>/gangway.auto.tfvars.json, mode 0600, replacing any file or symlink
 * of that name. Returns 0 or -1 with `msg`. */
int gw_tf_write_tfvars(const char *workdir, json_t *inputs, char *msg, size_t msgsz);

/* Hex SHA-256 of a regular file (not a symlink) into out[65]. Returns 0,
 * 1 when the file does not exist, -1 with `msg` on another error. */
int gw_tf_file_sha256(const char *path, char out[65], char *msg, size_t msgsz);

/* Summarises `terraform show -json <plan>`: {"add","change","destroy" (ints),
 * "by_type": {type: {"add","change","destroy"}}}; a replace counts as one add
 * and one destroy. Returns a new object; NULL when `plan` is not an object. */
json_t *gw_tf_plan_summary(json_t *plan);

/* The entries of resource_changes that change something, as a new array of
 * {"address", "actions"} (at most `max`); an empty array when none. */
json_t *gw_tf_plan_changes(json_t *plan, size_t max);

/* Turns `terraform output -json` ({name: {sensitive, type, value}}) into
 * {name: value}, sensitive values replaced by TF_REDACTED. Returns a new
 * object; NULL when `out` is not an object. */
json_t *gw_tf_outputs_public(json_t *out);

/* The secret strings of a run: the string values (or, for non-strings, their
 * compact JSON) at the top-level input names listed in `names` (an array of
 * strings) and at the JSON pointers in `pointers` (an array, may be NULL).
 * Values shorter than 3 bytes are left out (masking them would garble every
 * line). Returns a new array of strings. */
json_t *gw_tf_secret_values(json_t *inputs, json_t *names, json_t *pointers);

/* Copies `line` into `out` (capacity `cap`) with every occurrence of each
 * string of `secrets` replaced by TF_REDACTED; truncates at `cap - 1`.
 * Returns the length written. */
size_t gw_tf_redact(json_t *secrets, const char *line, size_t len, char *out, size_t cap);

#endif
