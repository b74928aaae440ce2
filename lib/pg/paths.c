/* Default data directories (lib/gw/paths.h). */
#include "gw/paths.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int gw_path_exe_dir(char *buf, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    if (n <= 0)
        return GW_EIO;
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash == NULL)
        return GW_EIO;
    *slash = '\0';
    if (exe[0] == '\0')
        snprintf(exe, sizeof(exe), "/");
    if ((size_t)snprintf(buf, cap, "%s", exe) >= cap)
        return GW_ELIMIT;
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int put(char *buf, size_t cap, const char *path)
{
    return (size_t)snprintf(buf, cap, "%s", path) >= cap ? GW_ELIMIT : 0;
}

int gw_path_default_dir(const char *name, char *buf, size_t cap)
{
    char env[64], exe[PATH_MAX], path[PATH_MAX + 64];
    const char *val;
    size_t len = name != NULL ? strlen(name) : 0;

    if (len == 0 || len > 48 || name[0] == '/' || name[len - 1] == '/' || strstr(name, "..") ||
        strstr(name, "//"))
        return GW_EINVAL;
    snprintf(env, sizeof(env), "GW_%s_DIR", name);
    for (char *p = env; *p; p++)
        *p = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    val = getenv(env);
    if (val != NULL && val[0] != '\0')
        return put(buf, cap, val);
    if (gw_path_exe_dir(exe, sizeof(exe)) == 0) {
        snprintf(path, sizeof(path), "%s/../../%s", exe, name);
        if (is_dir(path)) {
            char real[PATH_MAX];

            /* Resolved, so messages and child processes see a clean path. */
            return put(buf, cap, realpath(path, real) ? real : path);
        }
        snprintf(path, sizeof(path), "%s/../share/gangway/%s", exe, name);
        if (is_dir(path)) {
            char real[PATH_MAX];

            return put(buf, cap, realpath(path, real) ? real : path);
        }
    }
    snprintf(path, sizeof(path), "/usr/share/gangway/%s", name);
    return put(buf, cap, path);
}
