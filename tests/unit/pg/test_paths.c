/* Default data directory lookup (lib/gw/paths.h), suite unit. */
#include <limits.h>
#include <string.h>

#include "gw/paths.h"
#include "testdb.h"

int main(void)
{
    char buf[PATH_MAX], small[4];

    CHECK(gw_path_exe_dir(buf, sizeof(buf)) == 0);
    CHECK(strstr(buf, "tests/unit/pg") != NULL);
    CHECK(gw_path_exe_dir(small, sizeof(small)) == GW_ELIMIT);

    CHECK(gw_path_default_dir("", buf, sizeof(buf)) == GW_EINVAL);
    CHECK(gw_path_default_dir("../etc", buf, sizeof(buf)) == GW_EINVAL);
    CHECK(gw_path_default_dir("/etc", buf, sizeof(buf)) == GW_EINVAL);

    /* Nested names map to one variable. */
    setenv("GW_EXAMPLES_ACTIONS_DIR", "/x/actions", 1);
    CHECK(gw_path_default_dir("examples/actions", buf, sizeof(buf)) == 0);
    CHECK(strcmp(buf, "/x/actions") == 0);
    unsetenv("GW_EXAMPLES_ACTIONS_DIR");
    CHECK(gw_path_default_dir("unit/pg", buf, sizeof(buf)) == 0);
    CHECK(strlen(buf) > 13 && strcmp(buf + strlen(buf) - 13, "tests/unit/pg") == 0);

    /* The variable wins, even for a directory that does not exist. */
    setenv("GW_SQL_DIR", "/nonexistent/sql", 1);
    CHECK(gw_path_default_dir("sql", buf, sizeof(buf)) == 0);
    CHECK(strcmp(buf, "/nonexistent/sql") == 0);
    unsetenv("GW_SQL_DIR");

    /* build/tests/unit/pg/../../<name>: "unit" is a directory there. */
    CHECK(gw_path_default_dir("unit", buf, sizeof(buf)) == 0);
    CHECK(strlen(buf) > 10 && strcmp(buf + strlen(buf) - 10, "tests/unit") == 0);

    unsetenv("GW_NOPE_DIR");
    CHECK(gw_path_default_dir("nope", buf, sizeof(buf)) == 0);
    CHECK(strcmp(buf, "/usr/share/gangway/nope") == 0);
    CHECK(gw_path_default_dir("nope", small, sizeof(small)) == GW_ELIMIT);
    printf("paths: all checks passed\n");
    return 0;
}
