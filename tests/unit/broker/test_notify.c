/*
 * Notification routing and bodies (broker/notify.c): a route's criteria
 * all match or it is skipped, url_env is read at delivery, bad routes are
 * refused naming the pointer; bodies link the console page and speak
 * Slack's format; the PKCE S256 helper gives RFC 7636's test vector.
 */
#include <stdlib.h>
#include <string.h>

#include "gw/crypto.h"
#include "notify.h"

#define CHECK_NAMED
#include "../check.h"

static const char *payload =
    "{\"type\":\"approval.requested\",\"text\":\"Gangway: bob asks to run deploy; 1 approval(s) "
    "needed from [\\\"manager\\\"]. Decide with POST /v1/runs/R1/decisions.\","
    "\"run\":{\"id\":\"R1\",\"action\":{\"id\":\"deploy-web\"},"
    "\"requested_by\":{\"subject\":\"user:default/bob\",\"teams\":[\"payments\"]},"
    "\"approval\":{\"from_teams\":[],\"from_roles\":[\"manager\"]}}}";

static size_t count(const char *routes_json, const char *kind)
{
    json_t *n = json_loads(routes_json, 0, NULL);
    json_t *p = json_loads(payload, 0, NULL);
    json_t *t = gw_notify_targets(n, kind, p);
    size_t c = json_array_size(t);
    json_decref(n);
    json_decref(p);
    json_decref(t);
    return c;
}

static void test_routes(void)
{
    CHECK(count("{\"routes\":[{\"url\":\"http://a\"}]}", "approval.requested") == 1,
          "a route without criteria matches everything");
    CHECK(count("{\"routes\":[{\"url\":\"http://a\",\"teams\":[\"payments\"]}]}",
                "approval.requested") == 1,
          "teams: the requester's team");
    CHECK(count("{\"routes\":[{\"url\":\"http://a\",\"teams\":[\"sre\"]}]}",
                "approval.requested") == 0,
          "teams: another team does not match");
    CHECK(count("{\"routes\":[{\"url\":\"http://a\",\"actions\":[\"deploy-*\"]}]}",
                "approval.requested") == 1,
          "actions: a glob");
    CHECK(count("{\"routes\":[{\"url\":\"http://a\",\"approver_roles\":[\"manager\"],"
                "\"teams\":[\"sre\"]}]}",
                "approval.requested") == 0,
          "every criterion must match");
    CHECK(count("{\"routes\":[{\"url\":\"http://a\",\"approver_roles\":[\"manager\"]},"
                "{\"url\":\"http://b\",\"approver_teams\":[\"sre\"]}]}",
                "approval.requested") == 1,
          "approver roles and teams");
    CHECK(count("{\"routes\":[{\"url\":\"http://a\",\"events\":[\"approval.decided\"]}]}",
                "approval.requested") == 0,
          "events");
    unsetenv("GW_TEST_HOOK");
    CHECK(count("{\"routes\":[{\"url_env\":\"GW_TEST_HOOK\"}]}", "approval.requested") == 0,
          "url_env unset: skipped");
    setenv("GW_TEST_HOOK", "http://hook", 1);
    CHECK(count("{\"routes\":[{\"url_env\":\"GW_TEST_HOOK\"}]}", "approval.requested") == 1,
          "url_env set: used");
    CHECK(count(NULL, "approval.requested") == 0, "no notifications: no routes");
}

static void refused(const char *n_json, const char *want_ptr)
{
    char ptr[160] = "", msg[256] = "";
    json_t *n = json_loads(n_json, 0, NULL);
    int rc = gw_notify_validate(n, ptr, sizeof(ptr), msg, sizeof(msg));
    CHECK(rc < 0 && strcmp(ptr, want_ptr) == 0 && msg[0] != '\0', "refused at %s (%s: %s)",
          want_ptr, ptr, msg);
    json_decref(n);
}

static void test_validate(void)
{
    char ptr[160], msg[256];
    json_t *ok = json_loads("{\"routes\":[{\"name\":\"x\",\"events\":[\"run.break_glass\"],"
                            "\"url\":\"https://a\",\"format\":\"slack\"}]}",
                            0, NULL);
    CHECK(gw_notify_validate(ok, ptr, sizeof(ptr), msg, sizeof(msg)) == 0, "a good route");
    json_decref(ok);
    refused("[]", "/notifications");
    refused("{\"routes\":[{\"url\":\"https://a\",\"format\":\"teams\"}]}",
            "/notifications/routes/0/format");
    refused("{\"routes\":[{\"teams\":[\"a\"]}]}", "/notifications/routes/0");
    refused("{\"routes\":[{\"url\":\"ftp://a\"}]}", "/notifications/routes/0/url");
    refused("{\"routes\":[{\"url\":\"http://a\",\"events\":[\"run.done\"]}]}",
            "/notifications/routes/0/events/0");
    refused("{\"routes\":[{\"url\":\"http://a\",\"teams\":[]}]}", "/notifications/routes/0/teams");
    refused("{\"routes\":[{\"url\":\"http://a\",\"color\":\"red\"}]}",
            "/notifications/routes/0/color");
    refused("{\"routs\":[]}", "/notifications/routs");
}

static void test_bodies(void)
{
    char *b = gw_notify_body("gangway", "approval.requested", payload, "https://gw.example/");
    json_t *d = json_loads(b, 0, NULL);
    const char *text = json_string_value(json_object_get(d, "text"));
    CHECK(strcmp(json_string_value(json_object_get(d, "url")), "https://gw.example/ui/runs/R1") ==
              0,
          "url is the run's console page");
    CHECK(text != NULL && strstr(text, "POST /v1/") == NULL &&
              strstr(text, "Review and decide: https://gw.example/ui/runs/R1") != NULL,
          "the text links the page instead of the API: %s", text);
    json_decref(d);
    free(b);

    b = gw_notify_body("gangway", "approval.requested", payload, NULL);
    CHECK(strstr(b, "Decide with POST /v1/runs/R1/decisions.") != NULL &&
              strstr(b, "\"url\"") == NULL,
          "without a public URL the payload is as stored");
    free(b);

    b = gw_notify_body("slack", "approval.requested", payload, "https://gw.example");
    d = json_loads(b, 0, NULL);
    json_t *btn = json_array_get(
        json_object_get(json_array_get(json_object_get(d, "blocks"), 1), "elements"), 0);
    CHECK(json_object_size(d) == 2 && json_object_get(d, "text") != NULL, "slack: text and blocks");
    CHECK(strcmp(json_string_value(json_object_get(btn, "url")), "https://gw.example/ui/runs/R1") ==
              0,
          "slack: the button opens the run page");
    json_decref(d);
    free(b);

    b = gw_notify_body("slack", "resource.expiring",
                       "{\"text\":\"a <b> & c. Extend it with POST /v1/resources/X/extend.\","
                       "\"resource\":{\"id\":\"X\"}}",
                       "https://gw.example");
    CHECK(strstr(b, "a &lt;b&gt; &amp; c. Extend or delete: https://gw.example/ui/resources/X") !=
              NULL,
          "slack: mrkdwn escaped, a resource links its page: %s", b);
    free(b);
}

static void test_pkce(void)
{
    char out[48], r1[48], r2[48];
    struct gw_error err;
    gw_sha256_b64url("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", 43, out);
    CHECK(strcmp(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM") == 0,
          "S256 of RFC 7636's verifier: %s", out);
    CHECK(gw_random_b64url(32, r1, &err) == 0 && gw_random_b64url(32, r2, &err) == 0 &&
              strlen(r1) == 43 && strcmp(r1, r2) != 0 &&
              strspn(r1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43,
          "32 random bytes: 43 base64url characters, different each time");
    CHECK(gw_const_eq("abc", "abc", 3) && !gw_const_eq("abc", "abd", 3), "constant-time compare");
}

int main(void)
{
    test_routes();
    test_validate();
    test_bodies();
    test_pkce();
    return failures ? 1 : 0;
}
