/* The git backend's pure parts: templates, branch names, credential
 * scrubbing (destination paths: test_git_path.c). */
#include <git2.h>
#include <string.h>

#include "backends/git/git_internal.h"
#include "backends/git/git_template.h"
#include "wtest.h"

static json_t *inputs;

static char *render(const char *tpl, unsigned flags, char *msg)
{
    struct gw_gitb_tpl_vars v = {
        .inputs = inputs, .run_id = "run-1", .requested_by = "Alice", .action_id = "act"};
    char *out = NULL;
    size_t n;
    msg[0] = '\0';
    if (gw_gitb_tpl_render(&v, tpl, strlen(tpl), flags, &out, &n, msg, 300) != 0) {
        CHECK(out == NULL && msg[0] != '\0');
        return NULL;
    }
    CHECK(out != NULL);
    return out;
}

static void ok(const char *tpl, const char *want)
{
    char msg[300];
    char *got = render(tpl, 0, msg);
    if (got == NULL || strcmp(got, want) != 0) {
        fprintf(stderr, "template %s: got [%s] (%s), want [%s]\n", tpl, got ? got : "(null)", msg,
                want);
        abort();
    }
    free(got);
}

static void bad(const char *tpl, unsigned flags, const char *needle)
{
    char msg[300];
    char *got = render(tpl, flags, msg);
    if (got != NULL || strstr(msg, needle) == NULL) {
        fprintf(stderr, "template %s: got [%s], message [%s], want an error with '%s'\n", tpl,
                got ? got : "(null)", msg, needle);
        abort();
    }
}

static void test_templates(void)
{
    inputs = json_loads("{\"name\":\"My Service_01\",\"n\":3,\"f\":1.5,\"on\":true,\"none\":null,"
                        "\"obj\":{\"k\":\"v\",\"deep\":{\"x\":\"y\"}},\"list\":[1,\"a\"],"
                        "\"tricky\":\"a\\\"b\\\\c\\nd: e\\u2028\",\"curly\":\"{{ run_id }}\","
                        "\"shell\":\"$(touch /tmp/gw-pwned) `id`\"}",
                        0, NULL);
    CHECK(inputs != NULL);
    ok("plain text, no tags", "plain text, no tags");
    ok("", "");
    ok("{{ inputs.name }}", "My Service_01");
    ok("{{inputs.name}}|{{ run_id }}|{{ requested_by }}|{{ action_id }}",
       "My Service_01|run-1|Alice|act");
    ok("{{ inputs.n }} {{ inputs.f }} {{ inputs.on }}", "3 1.5 true");
    ok("{{ inputs.obj.deep.x }}", "y");
    ok("{{ inputs.name | upper }}", "MY SERVICE_01");
    ok("{{ inputs.name | lower }}", "my service_01");
    ok("{{ inputs.name | slug }}", "my-service-01");
    ok("{{ inputs.tricky | slug }}", "a-b-c-d-e");
    ok("{{ inputs.name | json }}", "\"My Service_01\"");
    ok("{{ inputs.obj | json }}", "{\"k\":\"v\",\"deep\":{\"x\":\"y\"}}");
    ok("{{ inputs.list | json }}", "[1,\"a\"]");
    ok("{{ inputs.none | json }}", "null");
    ok("{{ inputs.n | json }}", "3");
    ok("key: {{ inputs.tricky | yaml_string }}", "key: \"a\\\"b\\\\c\\nd: e\\u2028\"");
    ok("{{ inputs.name | slug | upper }}", "MY-SERVICE-01");
    ok("{{ \"{{\" }} literal {{ \"}\" }}", "{{ literal }");
    ok("a { b } c {x}", "a { b } c {x}");
    /* No second pass: a value that looks like a tag stays text. */
    ok("{{ inputs.curly }}", "{{ run_id }}");
    /* No execution of any kind: shell syntax is just bytes. */
    ok("{{ inputs.shell }}", "$(touch /tmp/gw-pwned) `id`");
    ok("{{ inputs.shell | slug }}", "touch-tmp-gw-pwned-id");

    bad("{{ inputs.nope }}", 0, "unknown variable 'inputs.nope'");
    bad("{{ inputs.obj.nope }}", 0, "unknown variable");
    bad("{{ inputs.name.x }}", 0, "unknown variable");
    bad("{{ env.HOME }}", 0, "unknown variable 'env.HOME'");
    bad("{{ inputs..a }}", 0, "bad variable name");
    bad("{{ inputs.name | sh }}", 0, "unknown filter 'sh'");
    bad("{{ inputs.name | }}", 0, "expected a filter name");
    bad("{{ inputs.name; rm -rf / }}", 0, "unexpected ';'");
    bad("{{ inputs.obj }}", 0, "use | json");
    bad("{{ inputs.list | upper }}", 0, "use | json");
    bad("{{ inputs.none }}", 0, "null");
    bad("{{ }}", 0, "expected a variable");
    bad("line1\n{{ inputs.name", 0, "line 2: '{{' without '}}'");
    bad("{{ inputs.name\n}}", 0, "without '}}'");
    bad("{{ \"abc }}", 0, "unterminated string");
    bad("{% include '/etc/passwd' %}{{ include('/etc/passwd') }}", 0, "unknown variable 'include'");
    bad("x {{ inputs.tricky }}", GW_GIT_TPL_SINGLE_LINE, "control character (0x0a)");
    ok("x {{ inputs.tricky | json }}", "x \"a\\\"b\\\\c\\nd: e\u2028\"");

    /* A NUL from the inputs survives in file contents, never in one-line use. */
    json_object_set_new(inputs, "nul", json_stringn("a\0b", 3));
    {
        struct gw_gitb_tpl_vars v = {.inputs = inputs, .run_id = "r", .requested_by = "u"};
        char *out, msg[300];
        size_t n;
        CHECK(gw_gitb_tpl_render(&v, "{{ inputs.nul }}", 16, 0, &out, &n, msg, sizeof(msg)) == 0);
        CHECK(n == 3 && memcmp(out, "a\0b", 3) == 0);
        free(out);
        CHECK(gw_gitb_tpl_render(&v, "{{ inputs.nul }}", 16, GW_GIT_TPL_SINGLE_LINE, &out, &n, msg,
                                 sizeof(msg)) == -1);
        CHECK(strstr(msg, "0x00") != NULL);
    }
    json_decref(inputs);
}

static void test_branches(void)
{
    CHECK(gw_gitb_branch_valid("main"));
    CHECK(gw_gitb_branch_valid("gangway/11111111-2222-3333-4444-555555555555"));
    CHECK(gw_gitb_branch_valid("release/v1.2"));
    const char *badv[] = {"",
                          "-oProxyCommand=x",
                          "--upload-pack=touch",
                          "a b",
                          "a..b",
                          "a~1",
                          "a^",
                          "a:b",
                          "a?",
                          "a*",
                          "a[",
                          "a\\b",
                          "a.lock",
                          "/a",
                          "a/",
                          "a//b",
                          "@",
                          "a@{b",
                          "$(id)",
                          "`id`",
                          "a\r\nb",
                          ".hidden",
                          "a/.b",
                          "x\x7f"};
    for (size_t i = 0; i < ARRAY_SIZE(badv); i++)
        if (gw_gitb_branch_valid(badv[i])) {
            fprintf(stderr, "branch '%s' accepted\n", badv[i]);
            abort();
        }
}

static void test_scrub(void)
{
    char out[256];
    const char *secrets[] = {"tok-SECRET", NULL};
    gw_gitb_scrub("fetch https://bob:hunter2@git.example/x.git failed", out, sizeof(out), NULL);
    CHECK(strcmp(out, "fetch https://***@git.example/x.git failed") == 0);
    gw_gitb_scrub("ssh://git@host/x and http://u:p@h:1/ and file:///a/b@c", out, sizeof(out), NULL);
    CHECK(strcmp(out, "ssh://***@host/x and http://***@h:1/ and file:///a/b@c") == 0);
    gw_gitb_scrub("token tok-SECRET, again tok-SECRETtok-SECRET", out, sizeof(out), secrets);
    CHECK(strcmp(out, "token ***, again ******") == 0);
    gw_gitb_scrub("https://u:tok-SECRET@h/", out, 8, secrets);
    CHECK(strlen(out) < 8 && strstr(out, "tok") == NULL);
}

int main(void)
{
    git_libgit2_init();
    test_templates();
    test_branches();
    test_scrub();
    git_libgit2_shutdown();
    printf("ok\n");
    return 0;
}
