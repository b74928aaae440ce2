/*
 * libFuzzer target: YAML configuration documents (lib/core/doc.c).
 *
 * Any input either fails with a message that names the document and a line,
 * or yields a JSON value that survives a JSON round trip unchanged (so the
 * mapping never produces something jansson cannot encode). Alias bombs and
 * deep nesting must stop at their limits rather than exhaust memory or stack.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw/doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_error err;
    gw_error_clear(&err);
    json_t *doc = gw_yaml_loadb((const char *)data, size, "fuzz.yaml", &err);
    if (doc == NULL) {
        if (strncmp(err.message, "fuzz.yaml: ", 11) != 0)
            abort(); /* every failure is reported, with the document's name */
        return 0;
    }
    char *text = json_dumps(doc, JSON_ENCODE_ANY | JSON_COMPACT);
    if (text == NULL)
        abort();
    json_t *again = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (again == NULL || !json_equal(doc, again))
        abort();
    json_decref(again);
    free(text);
    json_decref(doc);
    return 0;
}
