/*
 * libFuzzer target: compile + validate + defaults + redact.
 *
 * Input: SCHEMA NUL INSTANCE (both JSON). Without a NUL byte the input is
 * compiled as a schema and validated against itself. The registry maps
 * nothing remote, so every $ref stays inside the input or the bundled
 * metaschemas.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gw/jsonschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw_schema_registry *reg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!reg && !(reg = gw_schema_registry_create(NULL)))
        return 0;
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul ? (size_t)(nul - data) : size;
    json_t *schema = json_loadb((const char *)data, slen, JSON_DECODE_ANY, NULL);
    if (!schema)
        return 0;
    json_t *inst = nul ? json_loadb((const char *)nul + 1, size - slen - 1,
                                    JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)
                       : json_incref(schema);
    for (int fa = 0; fa < 2 && inst; fa++) {
        struct gw_schema_options opts = {
            .default_draft = (size & 1) ? GW_SCHEMA_DRAFT_7 : GW_SCHEMA_DRAFT_2020_12,
            .format_assert = fa,
        };
        struct gw_error err;
        struct gw_schema *s =
            gw_schema_compile(reg, schema, "https://fuzz.test/s.json", &opts, &err);
        if (!s)
            break;
        json_t *errors = NULL;
        bool ok = gw_schema_validate(s, inst, &errors);
        /* Fast path and error-collecting path must agree. */
        if (ok != gw_schema_validate(s, inst, NULL) || ok != (errors == NULL) ||
            (errors && json_array_size(errors) == 0))
            __builtin_trap();
        json_decref(errors);
        json_t *copy = json_deep_copy(inst);
        if (copy) {
            gw_schema_apply_defaults(s, copy);
            json_decref(copy);
        }
        json_decref(gw_schema_redact(s, inst));
        gw_schema_destroy(s);
    }
    json_decref(inst);
    json_decref(schema);
    return 0;
}
