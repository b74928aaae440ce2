/* Allocation helpers: see gw/mem.h. */
#include "gw/mem.h"

#include <stdint.h>
#include <stdlib.h>

void *gw_calloc(size_t n, size_t size, struct gw_error *err)
{
    void *p = calloc(n, size);
    if (p == NULL)
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
    return p;
}

int gw_grow(char **buf, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : first;
    while (c < need) {
        if (c > SIZE_MAX / 2) /* doubling would wrap to 0 and loop forever */
            return -1;
        c *= 2;
    }
    char *nb = realloc(*buf, c);
    if (nb == NULL)
        return -1;
    *buf = nb;
    *cap = c;
    return 0;
}
