#include "gw/embed.h"

#include <string.h>

const char *gw_embedded_find(const struct gw_embedded *table, size_t n, const char *key)
{
    for (size_t i = 0; key != NULL && i < n; i++)
        if (strcmp(table[i].key, key) == 0)
            return table[i].text;
    return NULL;
}

const char *gw_backend_schema(const char *worker_type)
{
    return gw_embedded_find(gw_backend_schemas, gw_backend_schemas_count, worker_type);
}
