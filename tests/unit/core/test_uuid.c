/*
 * Unit test of the identifiers of gw/crypto.h: the version 4 and version 7
 * (RFC 9562) UUIDs, their text form, version and variant bits, the time in a
 * version 7 id (the RFC's example instant), their order by time, and
 * gw_uuid_valid on good and bad shapes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw/crypto.h"
#include "../check.h"

static int hexval(char c)
{
    return c >= 'a' ? c - 'a' + 10 : c - '0';
}

/* The first 48 bits of a UUID's text form. */
static unsigned long long uuid_ms(const char *u)
{
    unsigned long long ms = 0;
    for (int i = 0; i < 13; i++)
        if (u[i] != '-')
            ms = ms << 4 | (unsigned)hexval(u[i]);
    return ms;
}

static void test_v4(void)
{
    char a[GW_UUID_LEN + 1], b[GW_UUID_LEN + 1];
    CHECK(gw_uuid_v4(a, NULL) == 0);
    CHECK(gw_uuid_v4(b, NULL) == 0);
    CHECK(gw_uuid_valid(a) && gw_uuid_valid(b));
    CHECK(strcmp(a, b) != 0);
    CHECK(a[14] == '4');
    CHECK(strchr("89ab", a[19]) != NULL);
}

static void test_v7_layout(void)
{
    /* RFC 9562 appendix A.6: 2022-02-22 14:22:22.00 -05:00 is Unix
     * millisecond 0x017F22E279B0. With rand_a as the millisecond's fraction
     * (zero here), the id starts 017f22e2-79b0-7000. */
    struct timespec at = {.tv_sec = 1645557742, .tv_nsec = 0};
    unsigned char rnd[8];
    char u[GW_UUID_LEN + 1];

    memset(rnd, 0xff, sizeof(rnd));
    gw_uuid_v7_at(&at, rnd, u);
    CHECK(strcmp(u, "017f22e2-79b0-7000-bfff-ffffffffffff") == 0);
    memset(rnd, 0, sizeof(rnd));
    gw_uuid_v7_at(&at, rnd, u);
    CHECK(strcmp(u, "017f22e2-79b0-7000-8000-000000000000") == 0);

    /* Half a millisecond is 2048/4096: rand_a 0x800. */
    at.tv_nsec = 500000;
    gw_uuid_v7_at(&at, rnd, u);
    CHECK(strcmp(u, "017f22e2-79b0-7800-8000-000000000000") == 0);
    /* The last fraction of a millisecond stays below the next one. */
    at.tv_nsec = 999999;
    gw_uuid_v7_at(&at, rnd, u);
    CHECK(strcmp(u, "017f22e2-79b0-7fff-8000-000000000000") == 0);
}

static void test_v7_order(void)
{
    /* Ids a microsecond apart sort in time order whatever their random
     * bits: the 12 fraction bits resolve 244 ns. */
    struct timespec at = {.tv_sec = 1800000000, .tv_nsec = 123456789};
    unsigned char lo[8], hi[8];
    char prev[GW_UUID_LEN + 1], cur[GW_UUID_LEN + 1];

    memset(lo, 0, sizeof(lo));
    memset(hi, 0xff, sizeof(hi));
    gw_uuid_v7_at(&at, hi, prev);
    for (int i = 0; i < 3000; i++) {
        at.tv_nsec += 1000;
        if (at.tv_nsec >= 1000000000) {
            at.tv_nsec -= 1000000000;
            at.tv_sec++;
        }
        gw_uuid_v7_at(&at, lo, cur);
        CHECK(strcmp(prev, cur) < 0);
        gw_uuid_v7_at(&at, hi, prev);
    }
}

static void test_v7_now(void)
{
    char a[GW_UUID_LEN + 1], b[GW_UUID_LEN + 1];
    struct timespec t0, t1;

    clock_gettime(CLOCK_REALTIME, &t0);
    CHECK(gw_uuid_v7(a, NULL) == 0);
    CHECK(gw_uuid_v7(b, NULL) == 0);
    clock_gettime(CLOCK_REALTIME, &t1);
    CHECK(gw_uuid_valid(a) && gw_uuid_valid(b));
    CHECK(strcmp(a, b) != 0);
    CHECK(a[14] == '7');
    CHECK(strchr("89ab", a[19]) != NULL);
    unsigned long long lo =
        (unsigned long long)t0.tv_sec * 1000 + (unsigned long long)t0.tv_nsec / 1000000;
    unsigned long long hi =
        (unsigned long long)t1.tv_sec * 1000 + (unsigned long long)t1.tv_nsec / 1000000;
    CHECK(uuid_ms(a) >= lo && uuid_ms(a) <= hi);
    CHECK(uuid_ms(b) >= uuid_ms(a) && uuid_ms(b) <= hi);
}

static void test_valid(void)
{
    CHECK(gw_uuid_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07398f"));
    CHECK(gw_uuid_valid("017F22E2-79B0-7CC3-98C4-DC0C0C07398F"));
    CHECK(!gw_uuid_valid(NULL));
    CHECK(!gw_uuid_valid(""));
    CHECK(!gw_uuid_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07398"));
    CHECK(!gw_uuid_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07398ff"));
    CHECK(!gw_uuid_valid("017f22e2x79b0-7cc3-98c4-dc0c0c07398f"));
    CHECK(!gw_uuid_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07398g"));
}

int main(void)
{
    test_v4();
    test_v7_layout();
    test_v7_order();
    test_v7_now();
    test_valid();
    printf("core uuid: ok\n");
    return 0;
}
