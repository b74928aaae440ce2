/*
 * Unit test of lib/gw/json.h: request bodies whose every number survives
 * jsonb and back are accepted; the others are refused with the status, code
 * and JSON pointer (or the line/column of a syntax error) the API answers.
 */
#include "gw/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_COUNTS
#include "../check.h"

struct row {
    const char *body;
    int status; /* 0 = accepted */
    const char *code;
    const char *pointer; /* 422: expected pointer; 400: a substring of the message */
};

static const struct row rows[] = {
    {"{\"inputs\":{\"n\":1}}", 0, NULL, NULL},
    {"{\"inputs\":{\"n\":9223372036854775807}}", 0, NULL, NULL},
    {"{\"inputs\":{\"n\":-9223372036854775808}}", 0, NULL, NULL},
    {"{\"inputs\":{\"n\":9.2e18}}", 0, NULL, NULL},
    {"{\"inputs\":{\"n\":-9.2e18}}", 0, NULL, NULL},
    {"{\"inputs\":{\"n\":1e-300}}", 0, NULL, NULL},
    {"{\"inputs\":{\"n\":0.1, \"s\":\"1e999\"}}", 0, NULL, NULL},
    /* the defect of issue 10: a double PostgreSQL writes back as a huge integer */
    {"{\"inputs\":{\"n\":1e19}}", 422, "number_out_of_range", "/inputs/n"},
    {"{\"inputs\":{\"n\":-1e19}}", 422, "number_out_of_range", "/inputs/n"},
    {"{\"inputs\":{\"n\":9223372036854775808.0}}", 422, "number_out_of_range", "/inputs/n"},
    {"{\"inputs\":{\"n\":1.5e300}}", 422, "number_out_of_range", "/inputs/n"},
    {"{\"inputs\":{\"a\":[1,{\"x/y~z\":[0,1e20]}]}}", 422, "number_out_of_range",
     "/inputs/a/1/x~1y~0z/1"},
    /* integers beyond int64: jansson cannot read them; the pointer still names them */
    {"{\"inputs\":{\"big\":100000000000000000000}}", 422, "number_out_of_range", "/inputs/big"},
    {"{\"inputs\":{\"ok\":1,\"l\":[-99999999999999999999]}}", 422, "number_out_of_range",
     "/inputs/l/0"},
    /* beyond a double altogether: a syntax-level refusal that says where */
    {"{\"inputs\":\n {\"n\": 1e400}}", 400, "invalid_json", "line 2"},
    {"{\"inputs\": {\"n\": 1e400}}", 400, "invalid_json", "column"},
    {"{\"a\":1,\"a\":2}", 400, "invalid_json", "duplicate"},
    {"{\"a\":\"\\u0000\"}", 400, "invalid_json", "byte"},
    {"{\"a\":", 400, "invalid_json", "line 1"},
};

static void test_table(void)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        struct gw_json_fault f;
        json_t *doc = gw_json_parse_request(r->body, strlen(r->body), &f);
        if (r->status == 0) {
            CHECK(doc != NULL);
            if (doc == NULL)
                fprintf(stderr, "  row %zu (%s): refused: %s\n", i, r->body, f.message);
            json_decref(doc);
            continue;
        }
        CHECK(doc == NULL);
        CHECK(f.status == r->status);
        CHECK(f.code != NULL && strcmp(f.code, r->code) == 0);
        if (r->status == 422)
            CHECK(strcmp(f.pointer, r->pointer) == 0);
        else
            CHECK(strstr(f.message, r->pointer) != NULL);
        if (f.status != r->status || (r->status == 422 && strcmp(f.pointer, r->pointer) != 0))
            fprintf(stderr, "  row %zu (%s): got %d %s pointer '%s': %s\n", i, r->body, f.status,
                    f.code ? f.code : "-", f.pointer, f.message);
        json_decref(doc);
        gw_json_fault_finish(&f);
    }
}

/* Documents built in C are checked the same way. */
static void test_check_built(void)
{
    struct gw_json_fault f;
    json_t *d = json_pack("{s:[f,f]}", "v", 1.0, 1e19);
    CHECK(gw_json_check_portable(d, &f) < 0);
    CHECK(strcmp(f.pointer, "/v/1") == 0);
    gw_json_fault_finish(&f);
    json_decref(d);
    d = json_pack("{s:f}", "v", 12.5);
    CHECK(gw_json_check_portable(d, &f) == 0);
    gw_json_fault_finish(&f);
    json_decref(d);
}

int main(void)
{
    test_table();
    test_check_built();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("json tests passed\n");
    return 0;
}
