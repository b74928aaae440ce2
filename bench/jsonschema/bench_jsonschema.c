/*
 * Validation throughput of lib/jsonschema, and its verdicts for the
 * differential check against python3-jsonschema (see run.py).
 *
 *   bench-jsonschema rate SCHEMA INSTANCE SECONDS   -> "validations_per_sec N"
 *   bench-jsonschema verdicts SCHEMA INSTANCES      -> one 1/0 per line
 *
 * The instance is parsed once (the broker parses a request body once too);
 * the loop measures gw_schema_validate() alone, fast path (no error list).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw/jsonschema.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *load(const char *path)
{
    json_error_t e;
    json_t *v = json_load_file(path, JSON_DECODE_ANY, &e);
    if (!v)
        fprintf(stderr, "%s:%d: %s\n", path, e.line, e.text);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s rate SCHEMA INSTANCE SECONDS | verdicts SCHEMA INSTANCES\n",
                argv[0]);
        return 2;
    }
    struct gw_error err = {0};
    struct gw_schema_registry *reg = gw_schema_registry_create(&err);
    json_t *sdoc = load(argv[2]), *data = load(argv[3]);
    if (!reg || !sdoc || !data)
        return 2;
    struct gw_schema *s = gw_schema_compile(reg, sdoc, NULL, NULL, &err);
    if (!s) {
        fprintf(stderr, "compile: %s\n", err.message);
        return 2;
    }
    int rc = 0;
    if (strcmp(argv[1], "rate") == 0 && argc > 4) {
        double secs = atof(argv[4]), t0 = now(), t;
        long n = 0;
        do {
            for (int i = 0; i < 1000; i++)
                if (!gw_schema_validate(s, data, NULL))
                    rc = 1;
            n += 1000;
            t = now();
        } while (t - t0 < secs);
        printf("validations_per_sec %.0f\n", (double)n / (t - t0));
    } else if (strcmp(argv[1], "verdicts") == 0) {
        size_t i;
        json_t *v;
        json_array_foreach(data, i, v) printf("%d\n", gw_schema_validate(s, v, NULL) ? 1 : 0);
    } else {
        rc = 2;
    }
    gw_schema_destroy(s);
    json_decref(sdoc);
    json_decref(data);
    gw_schema_registry_destroy(reg);
    return rc;
}
