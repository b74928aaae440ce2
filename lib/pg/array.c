#include "gw/pg_array.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *gw_pg_text_array(const char *const *items, size_t n)
{
    size_t cap = 3; /* "{}" and the NUL */
    char *out, *p;
    for (size_t i = 0; i < n; i++)
        cap += 2 * (items[i] != NULL ? strlen(items[i]) : 0) + 3; /* quotes, comma */
    if ((out = malloc(cap)) == NULL)
        return NULL;
    p = out;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *p++ = ',';
        *p++ = '"';
        for (const char *c = items[i]; c != NULL && *c != '\0'; c++) {
            if (*c == '"' || *c == '\\')
                *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

char *gw_pg_bigint_array(const long long *v, size_t n)
{
    size_t cap = 3 + n * 21; /* "-9223372036854775808" and a comma each */
    char *out = malloc(cap), *p = out;
    if (out == NULL)
        return NULL;
    *p++ = '{';
    for (size_t i = 0; i < n; i++)
        p += snprintf(p, cap - (size_t)(p - out), "%s%lld", i > 0 ? "," : "", v[i]);
    *p++ = '}';
    *p = '\0';
    return out;
}
