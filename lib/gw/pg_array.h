/*
 * PostgreSQL array literals, for arrays passed as one text parameter
 * ($1::text[], $1::bigint[]). The one place that knows the quoting rule:
 * every text element is double-quoted, with '"' and '\' backslash-escaped,
 * so commas, braces, spaces, NULL-looking words and empty strings all stay
 * elements as given.
 *
 * Both return a malloc'd NUL-terminated literal ("{}" when n is 0), or NULL
 * when out of memory. Threading: none.
 */
#ifndef GW_PG_ARRAY_H
#define GW_PG_ARRAY_H

#include <stddef.h>

/* {"a","b\"c"}; a NULL item is written as "" (an empty string). */
char *gw_pg_text_array(const char *const *items, size_t n);

/* {1,2,3} */
char *gw_pg_bigint_array(const long long *v, size_t n);

#endif
