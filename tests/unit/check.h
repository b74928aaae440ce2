/*
 * The assertion of the C unit tests.
 *
 * CHECK(cond): when `cond` is false, prints the file, line and condition on
 * stderr and aborts. A test stops at its first broken promise.
 *
 * A test that reports every failure and decides at the end defines one of
 * these before including this file; its main then returns failures != 0:
 *
 *   CHECK_COUNTS   CHECK(cond) prints the same line, counts the failure in
 *                  `failures` and goes on.
 *   CHECK_NAMED    CHECK(cond, fmt, ...) names what it checks: prints
 *                  "ok - <what>", or "FAIL - <what> (file:line)" and counts
 *                  the failure in `failures`, on stdout.
 */
#ifndef GW_TEST_CHECK_H
#define GW_TEST_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(CHECK_NAMED)

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        bool check_ok_ = (cond);                                                                   \
        printf(check_ok_ ? "ok - " : "FAIL - ");                                                   \
        printf(__VA_ARGS__);                                                                       \
        if (check_ok_) {                                                                           \
            printf("\n");                                                                          \
        } else {                                                                                   \
            printf(" (%s:%d)\n", __FILE__, __LINE__);                                              \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#else

#if defined(CHECK_COUNTS)
static int failures;
#define CHECK_FAILED_() failures++
#else
#define CHECK_FAILED_() abort()
#endif

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            CHECK_FAILED_();                                                                       \
        }                                                                                          \
    } while (0)

#endif

#endif
