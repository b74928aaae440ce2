/*
 * Workflow definitions: an action's `steps` (docs/workflows.md). The
 * catalog load calls gw_workflow_check after the JSON Schema passed.
 */
#ifndef GW_BROKER_WORKFLOW_H
#define GW_BROKER_WORKFLOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define GW_WORKFLOW_MAX_STEPS 32 /* as schemas/action.schema.json's maxItems */

/* The checks the schema cannot make on `def`'s steps (none: 0): unique
 * ids, needs naming earlier steps, every ${...} reference known and
 * available where it is used. On -1, `at` holds the JSON pointer at fault
 * and `why` the reason ("at '<pointer>': ..."). */
int gw_workflow_check(json_t *def, char *at, size_t atn, char *why, size_t whyn);

/* Index of the step with id `id` (`idlen` bytes) in `steps`, or -1. */
int gw_workflow_step_index(json_t *steps, const char *id, size_t idlen);

#endif
