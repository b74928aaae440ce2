/*
 * Unit test of lib/gw/error.h: gw_error_set fills the struct and returns the
 * code (so `return gw_error_set(...)` works), tolerates NULL, truncates long
 * messages safely; gw_error_clear resets; gw_errc_name gives stable names that
 * are distinct for every code.
 */
#include "gw/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_COUNTS
#include "../check.h"

static int fail_with(struct gw_error *err, const char *what)
{
    return gw_error_set(err, GW_EINVAL, false, "bad %s (%d)", what, 42);
}

static void test_set_and_clear(void)
{
    struct gw_error err;

    memset(&err, 0x5a, sizeof(err));
    CHECK(fail_with(&err, "input") == GW_EINVAL);
    CHECK(err.code == GW_EINVAL);
    CHECK(!err.retriable);
    CHECK(strcmp(err.message, "bad input (42)") == 0);

    CHECK(gw_error_set(&err, GW_EUNAVAIL, true, "postgres down") == GW_EUNAVAIL);
    CHECK(err.code == GW_EUNAVAIL);
    CHECK(err.retriable);
    CHECK(strcmp(err.message, "postgres down") == 0);

    gw_error_clear(&err);
    CHECK(err.code == GW_OK);
    CHECK(!err.retriable);
    CHECK(err.message[0] == '\0');

    /* NULL is always allowed and the code still comes back. */
    CHECK(gw_error_set(NULL, GW_ENOMEM, false, "x") == GW_ENOMEM);
    gw_error_clear(NULL);
}

static void test_truncation(void)
{
    struct gw_error err;
    char big[2000];

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(gw_error_set(&err, GW_ELIMIT, false, "%s", big) == GW_ELIMIT);
    CHECK(strlen(err.message) == sizeof(err.message) - 1);
    CHECK(err.message[0] == 'a');
}

static void test_names(void)
{
    static const struct {
        int code;
        const char *name;
    } want[] = {
        {GW_OK, "ok"},
        {GW_EINVAL, "invalid"},
        {GW_ENOMEM, "out_of_memory"},
        {GW_EIO, "io_error"},
        {GW_ENOTFOUND, "not_found"},
        {GW_ECONFLICT, "conflict"},
        {GW_ETIMEDOUT, "timed_out"},
        {GW_EUNAVAIL, "unavailable"},
        {GW_EPARSE, "parse_error"},
        {GW_ECLOSED, "closed"},
        {GW_ELIMIT, "limit_exceeded"},
        {GW_EAUTH, "unauthorized"},
    };
    size_t i, j;

    for (i = 0; i < ARRAY_SIZE(want); i++) {
        const char *got = gw_errc_name(want[i].code);
        CHECK(got != NULL);
        if (got != NULL && strcmp(got, want[i].name) != 0) {
            fprintf(stderr, "code %d: name %s, want %s\n", want[i].code, got, want[i].name);
            failures++;
        }
        /* Names are stable identifiers (API `code` values): distinct per code. */
        for (j = 0; j < i; j++)
            CHECK(strcmp(gw_errc_name(want[i].code), gw_errc_name(want[j].code)) != 0);
    }
    CHECK(strcmp(gw_errc_name(-9999), "unknown") == 0);
    CHECK(strcmp(gw_errc_name(12345), "unknown") == 0);
}

int main(void)
{
    test_set_and_clear();
    test_truncation();
    test_names();
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return EXIT_FAILURE;
    }
    printf("ok\n");
    return EXIT_SUCCESS;
}
