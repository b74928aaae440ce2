/*
 * The git backend's template language: `{{ expr }}` where expr is a variable
 * (`inputs.<name>[.<name>...]`, `run_id`, `requested_by`, `action_id`) or a
 * "double-quoted" literal without escapes, followed by filters
 * `| json`, `| yaml_string`, `| upper`, `| lower`, `| slug`. No code, no
 * includes, no loops. An unknown variable or filter is an error.
 *
 * Values: strings as they are, numbers and booleans as JSON text; null,
 * objects and arrays only through `| json`.
 *
 * Threading: any thread; no state. Names are gw_gitb_tpl_*.
 */
#ifndef GW_GIT_TEMPLATE_H
#define GW_GIT_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

struct gw_gitb_tpl_vars {
    json_t *inputs; /* borrowed */
    const char *run_id;
    const char *requested_by;
    const char *action_id;
};

/* Substituted values must hold no control character (C0, DEL): for paths,
 * refs and commit messages, where CR/LF/NUL would forge lines or names. */
#define GW_GIT_TPL_SINGLE_LINE 1u

/* Renders `len` bytes of `tpl`. Returns 0 with *out (malloc'd, NUL-terminated,
 * *out_len bytes, which may include NULs from inputs unless
 * GW_GIT_TPL_SINGLE_LINE), or -1 with a message in msg[cap]. */
int gw_gitb_tpl_render(const struct gw_gitb_tpl_vars *v, const char *tpl, size_t len,
                       unsigned flags, char **out, size_t *out_len, char *msg, size_t cap);

#endif
