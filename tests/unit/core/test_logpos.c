/* The log position encoding (lib/gw/logpos.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "gw/logpos.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int main(void)
{
    long long a, s;
    /* The documented value: (attempt << 20) + seq (schemas/openapi.json). */
    CHECK(gw_log_pos(1, 1) == 1048577);
    CHECK(gw_log_pos(2, 7) == 2 * 1048576 + 7);
    gw_log_pos_split(gw_log_pos(3, 1048575), &a, &s);
    CHECK(a == 3 && s == 1048575);
    gw_log_pos_split(0, &a, &s);
    CHECK(a == 0 && s == 0);
    /* Past every attempt a run can have: "nothing more", never a cast error. */
    gw_log_pos_split(LLONG_MAX, &a, &s);
    CHECK(a == INT_MAX && s == INT_MAX);
    printf("core-logpos: ok\n");
    return 0;
}
