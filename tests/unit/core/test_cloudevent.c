/* The CloudEvents envelope check shared by the sink and the workers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/cloudevent.h"
#include "gw/error.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

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
    printf("core-cloudevent: ok\n");
    return 0;
}
