/* The backends compiled into this binary: one line per worker type. */
#include <string.h>

#include "backend.h"

extern const struct gw_backend_impl gw_backend_exec;
extern const struct gw_backend_impl gw_backend_git;
extern const struct gw_backend_impl gw_backend_jenkins;
extern const struct gw_backend_impl gw_backend_terraform;

static const struct gw_backend_impl *const backends[] = {
    &gw_backend_exec,
    &gw_backend_git,
    &gw_backend_jenkins,
    &gw_backend_terraform,
};

const struct gw_backend_impl *gw_backend_lookup(const char *name)
{
    for (size_t i = 0; name != NULL && i < ARRAY_SIZE(backends); i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

const struct gw_backend_impl *const *gw_backend_list(size_t *n)
{
    *n = ARRAY_SIZE(backends);
    return backends;
}
