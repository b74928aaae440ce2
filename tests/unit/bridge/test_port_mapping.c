/*
 * The Port bridge's mapping (bridge/port/mapping.h): both message shapes,
 * action mapping (listed, same name, refused), identities (table over
 * domains, case, canonical subjects, teams), and each refusal's code.
 */
#define CHECK_NAMED
#include "check.h"

#include <string.h>

#include "mapping.h"

static struct pb_mapping *mapping(const char *text, struct gw_error *err)
{
    json_t *doc = json_loads(text, 0, NULL);
    struct pb_mapping *m = pb_mapping_from_json(doc, err);
    json_decref(doc);
    return m;
}

static int parse(const struct pb_mapping *m, const char *msg, struct pb_invocation *inv,
                 struct pb_reject *why)
{
    return pb_invocation_parse(m, msg, strlen(msg), inv, why);
}

static const char *const MAP =
    "{\"actions\": {\"create_dev_env\": \"devenv\"},"
    " \"identities\": {\"table\": {\"Ops@Corp.Test\": \"Operator\"},"
    "  \"domains\": {\"example.com\": \"user:default/{local}\"},"
    "  \"teams\": {\"mia\": [\"payments\"]}, \"default_teams\": [\"everyone\"]}}";

static void test_current_shape(struct pb_mapping *m)
{
    struct pb_invocation inv;
    struct pb_reject why;
    int rc = parse(m,
                   "{\"run_id\": \"r_1\", \"user\": \"Mia@Example.com\", \"gangway_action\": "
                   "\"greet\", \"inputs\": {\"name\": \"x\"}, \"ttl_seconds\": 60, "
                   "\"justification\": \"why\"}",
                   &inv, &why);
    CHECK(rc == 0, "the payload convention is read");
    CHECK(strcmp(inv.run_id, "r_1") == 0 && strcmp(inv.action, "greet") == 0 && !inv.legacy,
          "run id and action");
    CHECK(strcmp(inv.subject, "user:default/mia") == 0, "domain rule, lower-cased: %s",
          inv.subject);
    CHECK(strcmp(json_string_value(json_array_get(inv.teams, 0)), "payments") == 0,
          "teams of the canonical subject (the file said 'mia')");
    CHECK(json_integer_value(inv.ttl_seconds) == 60 && strcmp(inv.justification, "why") == 0,
          "ttl_seconds and justification");
    CHECK(strcmp(json_string_value(json_object_get(inv.inputs, "name")), "x") == 0, "inputs");
    pb_invocation_finish(&inv);

    rc = parse(m,
               "{\"run_id\": \"r_2\", \"user\": \"x@example.com\", \"port_action\": "
               "\"create_dev_env\"}",
               &inv, &why);
    CHECK(rc == 0 && strcmp(inv.action, "devenv") == 0, "port_action through the mapping");
    CHECK(json_object_size(inv.inputs) == 0, "inputs default to {}");
    CHECK(strcmp(json_string_value(json_array_get(inv.teams, 0)), "everyone") == 0,
          "default_teams for a subject without teams");
    pb_invocation_finish(&inv);

    rc = parse(m, "{\"run_id\": \"r_3\", \"user\": \"ops@corp.test\", \"port_action\": \"other\"}",
               &inv, &why);
    CHECK(rc == 0 && strcmp(inv.action, "other") == 0, "an unlisted action keeps its name");
    CHECK(strcmp(inv.subject, "user:default/operator") == 0,
          "the table wins, compared without case, canonical: %s", inv.subject);
    pb_invocation_finish(&inv);
}

static void test_legacy_shape(struct pb_mapping *m)
{
    struct pb_invocation inv;
    struct pb_reject why;
    int rc = parse(m,
                   "{\"action\": \"create_dev_env\", \"context\": {\"runId\": \"r_9\", "
                   "\"blueprint\": \"service\"}, \"payload\": {\"action\": {\"identifier\": "
                   "\"create_dev_env\"}, \"properties\": {\"name\": \"alpha\"}}, \"trigger\": "
                   "{\"by\": {\"user\": {\"email\": \"mia@example.com\"}}}}",
                   &inv, &why);
    CHECK(rc == 0 && inv.legacy, "Port's envelope is read");
    CHECK(strcmp(inv.run_id, "r_9") == 0 && strcmp(inv.port_action, "create_dev_env") == 0 &&
              strcmp(inv.action, "devenv") == 0,
          "context.runId, payload.action.identifier mapped");
    CHECK(strcmp(json_string_value(json_object_get(inv.inputs, "name")), "alpha") == 0,
          "payload.properties are the inputs");
    CHECK(strcmp(inv.email, "mia@example.com") == 0, "trigger.by.user.email");
    pb_invocation_finish(&inv);
}

static void refused(struct pb_mapping *m, const char *msg, const char *code, const char *run_id,
                    const char *what)
{
    struct pb_invocation inv;
    struct pb_reject why;
    int rc = parse(m, msg, &inv, &why);
    CHECK(rc < 0 && strcmp(why.code, code) == 0 && strcmp(inv.run_id, run_id) == 0, "%s: %s (%s)",
          what, code, rc < 0 ? why.reason : "accepted");
    pb_invocation_finish(&inv);
}

static void test_refusals(struct pb_mapping *m)
{
    refused(m, "not json", "not_json", "", "not JSON");
    refused(m, "[1]", "not_json", "", "not an object");
    refused(m, "{\"hello\": 1}", "unknown_shape", "", "neither shape");
    refused(m, "{\"run_id\": 5}", "missing_run_id", "", "run_id not a string");
    refused(m, "{\"run_id\": \"r_1\", \"user\": \"mia@example.com\"}", "unknown_action", "r_1",
            "no action");
    refused(m,
            "{\"run_id\": \"r_2\", \"user\": \"a@elsewhere.org\", \"gangway_action\": \"greet\"}",
            "unknown_user", "r_2", "an e-mail neither rule maps");
    refused(m, "{\"run_id\": \"r_3\", \"gangway_action\": \"greet\"}", "unknown_user", "r_3",
            "no user");
    refused(m,
            "{\"run_id\": \"r_4\", \"user\": \"mia@example.com\", \"gangway_action\": \"greet\", "
            "\"inputs\": [1]}",
            "bad_inputs", "r_4", "inputs not an object");
    refused(m,
            "{\"run_id\": \"r_5\", \"user\": \"bad user@example.com\", \"gangway_action\": "
            "\"greet\"}",
            "unknown_user", "r_5", "a local part no subject can hold");
    refused(m, "{\"context\": {\"runId\": \"r_6\"}, \"payload\": {}}", "unknown_action", "r_6",
            "an envelope without payload.action.identifier");
}

static void test_load_errors(void)
{
    struct gw_error err;
    struct {
        const char *text, *want;
    } bad[] = {
        {"{\"extra\": 1}", "/extra"},
        {"{\"actions\": {\"a\": 1}}", "/actions"},
        {"{\"unlisted_actions\": \"maybe\"}", "/unlisted_actions"},
        {"{\"identities\": {\"table\": {\"a@b\": \"group:default/x\"}}}", "/identities/table/a@b"},
        {"{\"identities\": {\"domains\": {\"b.com\": \"user:default/x\"}}}",
         "/identities/domains/b.com"},
        {"{\"identities\": {\"domains\": {\"b.com\": \"user: {local}\"}}}",
         "/identities/domains/b.com"},
        {"{\"identities\": {\"teams\": {\"mia\": \"payments\"}}}", "/identities/teams"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw_error_clear(&err);
        struct pb_mapping *m = mapping(bad[i].text, &err);
        CHECK(m == NULL && strstr(err.message, bad[i].want) != NULL, "refused at %s: %s",
              bad[i].want, err.message);
        pb_mapping_destroy(m);
    }
    gw_error_clear(&err);
    struct pb_mapping *m = mapping("{\"unlisted_actions\": \"refuse\"}", &err);
    struct pb_invocation inv;
    struct pb_reject why;
    CHECK(m != NULL, "an empty mapping that refuses unlisted actions loads");
    int rc =
        parse(m, "{\"run_id\": \"r\", \"user\": \"a@b.c\", \"port_action\": \"x\"}", &inv, &why);
    CHECK(rc < 0 && strcmp(why.code, "unknown_action") == 0, "unlisted actions refused");
    pb_invocation_finish(&inv);
    pb_mapping_destroy(m);
}

int main(void)
{
    struct gw_error err;
    gw_error_clear(&err);
    struct pb_mapping *m = mapping(MAP, &err);
    CHECK(m != NULL, "the mapping loads: %s", err.message);
    if (m == NULL)
        return 1;
    test_current_shape(m);
    test_legacy_shape(m);
    test_refusals(m);
    test_load_errors();
    pb_mapping_destroy(m);
    return failures != 0;
}
