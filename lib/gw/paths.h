/*
 * Where Gangway finds its data directories (sql/, schemas/, actions/...)
 * when no flag names them.
 *
 * Threading: any thread; no state.
 */
#ifndef GW_PATHS_H
#define GW_PATHS_H

#include <stddef.h>

#include "gw/error.h"

/* Writes into `buf` the directory of the running executable (no trailing
 * slash). Returns 0, GW_EIO when it cannot be found, GW_ELIMIT when `cap`
 * is too small. */
int gw_path_exe_dir(char *buf, size_t cap);

/* The default location of data directory `name` (e.g. "sql", or a relative
 * path such as "examples/actions"; no "..", no leading '/'), first match:
 *   1. $GW_<NAME>_DIR (name upper-cased, other characters than letters and
 *      digits turned into '_': "sql" -> GW_SQL_DIR, "examples/actions" ->
 *      GW_EXAMPLES_ACTIONS_DIR), even if it does not exist (an explicit
 *      setting is never second-guessed);
 *   2. <dir of the executable>/../../<name> when it is a directory: running
 *      from a build directory inside the source tree (build/cli/gangway);
 *   3. <dir of the executable>/../share/gangway/<name> when it is a directory
 *      (an install under a prefix such as /usr/local);
 *   4. /usr/share/gangway/<name>.
 * Returns 0, GW_EINVAL for an empty or odd `name`, GW_ELIMIT when `cap` is
 * too small. */
int gw_path_default_dir(const char *name, char *buf, size_t cap);

#endif
