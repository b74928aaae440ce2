#include "gw/cloudevent.h"

#include <stdio.h>
#include <string.h>

#include "gw/error.h"

json_t *gw_cloudevent_parse(const char *payload, size_t len, const char **type, int *code,
                            char *why, size_t whysz)
{
    json_error_t jerr;
    json_t *ev = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *v;
    *type = NULL;
    if (ev == NULL) {
        *code = GW_EPARSE;
        if (why != NULL)
            snprintf(why, whysz, "not JSON: %s", jerr.text);
        return NULL;
    }
    v = json_string_value(json_object_get(ev, "specversion"));
    *type = json_string_value(json_object_get(ev, "type"));
    if (!json_is_object(ev) || v == NULL || strcmp(v, "1.0") != 0 || *type == NULL) {
        *type = NULL;
        *code = GW_EINVAL;
        if (why != NULL)
            snprintf(why, whysz, "not a CloudEvents 1.0 document");
        json_decref(ev);
        return NULL;
    }
    *code = 0;
    return ev;
}
