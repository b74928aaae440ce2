/* PostgreSQL array literals (lib/gw/pg_array.h), suite unit. With
 * GW_TEST_PG_DSN set, each literal is also read back by PostgreSQL itself
 * ($1::text[] -> array_to_json) to prove the quoting is the server's. */
#include <jansson.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "gw/pg_array.h"
#include "testdb.h"

static void same(char *got, const char *want)
{
    CHECK(got != NULL);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "got %s, want %s\n", got, want);
        abort();
    }
    free(got);
}

/* PostgreSQL parses the literal back into exactly `items`. */
static void round_trip(PGconn *pg, const char *const *items, size_t n)
{
    char *lit = gw_pg_text_array(items, n);
    const char *params[] = {lit};
    PGresult *res =
        PQexecParams(pg, "SELECT array_to_json($1::text[])::text", 1, NULL, params, NULL, NULL, 0);
    json_t *arr;
    CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
    arr = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    CHECK(json_array_size(arr) == n);
    for (size_t i = 0; i < n; i++)
        CHECK(strcmp(json_string_value(json_array_get(arr, i)), items[i] ? items[i] : "") == 0);
    json_decref(arr);
    PQclear(res);
    free(lit);
}

int main(void)
{
    static const char *const plain[] = {"ops", "dev"};
    static const char *const hard[] = {"a\"b",  "back\\slash", "",  "NULL",
                                       "{x,y}", " sp ",        "é", NULL};
    static const long long ids[] = {1, -2, LLONG_MAX, LLONG_MIN};

    same(gw_pg_text_array(NULL, 0), "{}");
    same(gw_pg_text_array(plain, 2), "{\"ops\",\"dev\"}");
    same(gw_pg_text_array(hard, 8),
         "{\"a\\\"b\",\"back\\\\slash\",\"\",\"NULL\",\"{x,y}\",\" sp \",\"é\",\"\"}");
    same(gw_pg_bigint_array(NULL, 0), "{}");
    same(gw_pg_bigint_array(ids, 1), "{1}");
    same(gw_pg_bigint_array(ids, 4), "{1,-2,9223372036854775807,-9223372036854775808}");

    const char *dsn = getenv("GW_TEST_PG_DSN");
    if (dsn != NULL && dsn[0] != '\0') {
        PGconn *pg = PQconnectdb(dsn);
        CHECK(PQstatus(pg) == CONNECTION_OK);
        round_trip(pg, plain, 2);
        round_trip(pg, hard, 8);
        round_trip(pg, NULL, 0);
        PQfinish(pg);
    }
    printf("pg-array: ok\n");
    return 0;
}
