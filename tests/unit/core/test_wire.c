/* What broker, workers and clients agree on over the wire: the CloudEvents
 * envelope check (lib/gw/cloudevent.h) and the log position encoding
 * (lib/gw/logpos.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/cloudevent.h"
#include "gw/error.h"
#include "gw/logpos.h"

#include "../check.h"

static char type_copy[64];

/* `*type` is borrowed from the event: checked here, kept in type_copy. */
static int parse(const char *text, const char **type, char *why)
{
    int code = 1;
    json_t *ev = gw_cloudevent_parse(text, strlen(text), type, &code, why, 128);
    CHECK((ev != NULL) == (code == 0));
    CHECK((ev != NULL) == (*type != NULL));
    snprintf(type_copy, sizeof(type_copy), "%s", *type != NULL ? *type : "");
    json_decref(ev);
    return code;
}

static void test_logpos(void)
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
}

int main(void)
{
    const char *type;
    char why[128];

    CHECK(parse("{\"specversion\":\"1.0\",\"type\":\"dev.gangway.run.log\",\"data\":{}}", &type,
                why) == 0);
    CHECK(strcmp(type_copy, "dev.gangway.run.log") == 0);

    CHECK(parse("nope", &type, why) == GW_EPARSE && type == NULL);
    CHECK(strncmp(why, "not JSON: ", 10) == 0);
    /* Refused: a repeated member, another version, no type, not an object. */
    static const char *const bad[] = {
        "{\"specversion\":\"1.0\",\"type\":\"a\",\"type\":\"b\"}",
        "{\"specversion\":\"0.3\",\"type\":\"dev.gangway.run.log\"}",
        "{\"specversion\":1.0,\"type\":\"dev.gangway.run.log\"}",
        "{\"specversion\":\"1.0\"}",
        "{\"specversion\":\"1.0\",\"type\":7}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int code = parse(bad[i], &type, why);
        CHECK(code == GW_EINVAL || (i == 0 && code == GW_EPARSE));
        CHECK(type == NULL && why[0] != '\0');
    }
    test_logpos();
    printf("core-wire: ok\n");
    return 0;
}
