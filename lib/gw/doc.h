/*
 * Configuration documents (action definitions, the policy, JWT issuer
 * configuration) in JSON or YAML, loaded into jansson values.
 *
 * A file whose name ends in `.yaml` or `.yml` is read as YAML, anything else
 * as JSON. YAML is parsed with libyaml and mapped to JSON by the YAML 1.2 core
 * schema, not YAML 1.1's: only `true`/`false` (any case variant the spec
 * lists) are booleans, `yes`, `no`, `on`, `off` stay strings, `0o17` is octal
 * and `017` is decimal, so `environment: no` means the string "no". Quoted
 * scalars are always strings. Anchors, aliases and `<<` merge keys are
 * expanded; duplicate keys, multiple documents, non-scalar keys, unknown tags
 * and numbers JSON cannot hold (.inf, .nan, integers beyond 64 bits) are
 * refused with the line and column.
 */
#ifndef GW_DOC_H
#define GW_DOC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "gw/error.h"

/* True when `path` names a YAML file (by its extension). */
bool gw_doc_is_yaml(const char *path);

/* Parses `len` bytes of YAML into a new reference. `name` prefixes error
 * messages ("policy.yaml: line 3 column 5: ..."). NULL on error. */
json_t *gw_yaml_loadb(const char *buf, size_t len, const char *name, struct gw_error *err);

/* Reads `path` (at most `max_bytes`; 0 means 16 MiB) as YAML or JSON by its
 * extension. JSON objects with duplicate keys are refused too. NULL on
 * error, with the path, line and column in the message. */
json_t *gw_doc_load_file(const char *path, size_t max_bytes, struct gw_error *err);

/* Where the value at JSON `pointer` starts in the file `path` (YAML or JSON
 * as above): 1-based *line and *column. A pointer to something the file
 * does not have gives the deepest node on its way (a missing member: the
 * object that lacks it). Returns how many of the pointer's tokens were
 * found (0: only the root), or -1 when the file cannot be read. For error
 * messages only: it expects a file gw_doc_load_file has read. */
int gw_doc_locate(const char *path, const char *pointer, int *line, int *column);

#endif
