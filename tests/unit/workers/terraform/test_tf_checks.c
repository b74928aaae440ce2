/* Plan checks (tf_checks.c, docs/plan-checks.md) without Terraform: the
 * example rules of examples/policies/plan over hand-made plans, the config
 * errors, and exec checkers that pass, fail, print junk and time out. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/terraform/tf_checks.h"
#include "wtest.h"

static char tmp[256], policies[512];

static json_t *load(const char *cfg_text)
{
    char msg[400] = "";
    json_t *cfg = json_loads(cfg_text, 0, NULL);
    json_t *c = gw_tf_checks_load(cfg, policies, msg, sizeof(msg));
    if (c == NULL)
        fprintf(stderr, "load: %s\n", msg);
    json_decref(cfg);
    return c;
}

static const char *load_error(const char *cfg_text)
{
    static char msg[400];
    json_t *cfg = json_loads(cfg_text, 0, NULL), *c;
    msg[0] = '\0';
    c = gw_tf_checks_load(cfg, policies, msg, sizeof(msg));
    json_decref(cfg);
    json_decref(c);
    return c == NULL ? msg : NULL;
}

static json_t *run(json_t *checks, const char *plan_text)
{
    char path[300];
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    FILE *f;
    json_t *plan = json_loads(plan_text, 0, NULL), *res;
    snprintf(path, sizeof(path), "%s/plan.json", tmp);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(plan_text, f);
    fclose(f);
    CHECK(plan != NULL);
    res = gw_tf_checks_run(checks, plan, path, envp);
    json_decref(plan);
    return res;
}

static const char *finding(json_t *res, size_t i, const char *key)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(res, "findings"), i), key));
}

static size_t nfindings(json_t *res)
{
    return json_array_size(json_object_get(res, "findings"));
}

static void test_examples(void)
{
    json_t *c = load("[{\"file\": \"no-deletions.json\"}, {\"file\": \"s3-encryption.json\"},"
                     " {\"file\": \"required-tags.json\"}]");
    CHECK(c != NULL && json_array_size(c) == 3);
    /* A bucket without its encryption configuration, a replaced instance
     * without tags, a tagged bucket: three findings from three rules. */
    json_t *res = run(
        c, "{\"resource_changes\": ["
           "{\"address\": \"aws_s3_bucket.logs\", \"type\": \"aws_s3_bucket\","
           " \"change\": {\"actions\": [\"create\"], \"after\": {\"bucket\": \"logs\","
           " \"tags\": {\"owner\": \"a\", \"cost-center\": \"1\"}}}},"
           "{\"address\": \"aws_instance.web\", \"type\": \"aws_instance\","
           " \"change\": {\"actions\": [\"delete\", \"create\"], \"after\": {\"ami\": \"x\"}}}]}");
    CHECK(json_is_false(json_object_get(res, "passed")));
    CHECK(nfindings(res) == 3);
    CHECK(strcmp(finding(res, 0, "rule"), "no-deletions") == 0 &&
          strcmp(finding(res, 0, "address"), "aws_instance.web") == 0 &&
          strcmp(finding(res, 0, "severity"), "critical") == 0 &&
          strstr(finding(res, 0, "message"), "deletes or replaces") != NULL &&
          strstr(finding(res, 0, "message"), "/change/actions") != NULL);
    CHECK(strcmp(finding(res, 1, "rule"), "s3-encryption") == 0 &&
          strcmp(finding(res, 1, "address"), "") == 0);
    CHECK(strcmp(finding(res, 2, "rule"), "required-tags") == 0 &&
          strcmp(finding(res, 2, "address"), "aws_instance.web") == 0 &&
          strcmp(finding(res, 2, "severity"), "medium") == 0);
    json_decref(res);
    /* The same bucket with its encryption configuration, no deletion. */
    res = run(c, "{\"resource_changes\": ["
                 "{\"address\": \"aws_s3_bucket.logs\", \"type\": \"aws_s3_bucket\","
                 " \"change\": {\"actions\": [\"create\"], \"after\": {"
                 " \"tags\": {\"owner\": \"a\", \"cost-center\": \"1\"}}}},"
                 "{\"address\": \"aws_s3_bucket_server_side_encryption_configuration.logs\","
                 " \"type\": \"aws_s3_bucket_server_side_encryption_configuration\","
                 " \"change\": {\"actions\": [\"create\"], \"after\": {}}},"
                 "{\"address\": \"aws_instance.old\", \"type\": \"aws_instance\","
                 " \"change\": {\"actions\": [\"no-op\"], \"after\": {\"tags\": "
                 "{\"owner\": \"b\", \"cost-center\": \"2\"}}}}]}");
    CHECK(json_is_true(json_object_get(res, "passed")) && nfindings(res) == 0);
    json_decref(res);
    /* A plan with nothing in it passes every rule. */
    res = run(c, "{}");
    CHECK(json_is_true(json_object_get(res, "passed")));
    json_decref(res);
    json_decref(c);
}

static void test_config_errors(void)
{
    const char *m;
    CHECK((m = load_error("{}")) != NULL && strstr(m, "must be an array"));
    CHECK((m = load_error("[{\"kind\": \"schema\", \"schema\": {}}]")) != NULL &&
          strstr(m, "plan_checks[0].name"));
    CHECK((m = load_error("[{\"name\": \"x\", \"schema\": {\"type\": 12}}]")) != NULL &&
          strstr(m, "plan_checks[0].schema"));
    CHECK((m = load_error("[{\"name\": \"x\", \"kind\": \"opa\"}]")) != NULL &&
          strstr(m, "kind must be schema or exec"));
    CHECK((m = load_error("[{\"name\": \"x\", \"kind\": \"exec\", \"command\": []}]")) != NULL &&
          strstr(m, "command"));
    CHECK((m = load_error("[{\"name\": \"x\", \"kind\": \"exec\", \"command\": [\"/bin/true\"],"
                          " \"timeout_seconds\": 0}]")) != NULL &&
          strstr(m, "timeout_seconds"));
    CHECK((m = load_error("[{\"file\": \"nope.json\"}]")) != NULL && strstr(m, "nope.json"));
    CHECK((m = load_error("[{\"name\": \"x\", \"severity\": \"fatal\", \"schema\": true}]")) !=
              NULL &&
          strstr(m, "severity"));
    /* Keys beside "file" win over the file's. */
    json_t *c = load("[{\"file\": \"no-deletions.json\", \"severity\": \"low\"}]");
    CHECK(c != NULL &&
          strcmp(json_string_value(json_object_get(json_array_get(c, 0), "severity")), "low") == 0);
    json_decref(c);
}

static json_t *exec_check(const char *script, int timeout)
{
    char path[300], cfg[800];
    FILE *f;
    snprintf(path, sizeof(path), "%s/checker.sh", tmp);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "#!/bin/sh\n%s\n", script);
    fclose(f);
    CHECK(chmod(path, 0755) == 0);
    snprintf(cfg, sizeof(cfg),
             "[{\"name\": \"tool\", \"kind\": \"exec\", \"command\": [\"%s\"],"
             " \"timeout_seconds\": %d}]",
             path, timeout);
    return load(cfg);
}

static void test_exec(void)
{
    const char *plan = "{\"resource_changes\": []}";
    json_t *c, *res;

    /* Reads the plan on stdin; exit 0 passes (findings still reported). */
    c = exec_check("grep -q resource_changes || exit 9\n"
                   "echo '{\"rule\": \"r1\", \"severity\": \"info\", \"message\": \"fyi\"}'",
                   10);
    res = run(c, plan);
    CHECK(json_is_true(json_object_get(res, "passed")) && nfindings(res) == 1 &&
          strcmp(finding(res, 0, "severity"), "info") == 0 &&
          strcmp(finding(res, 0, "check"), "tool") == 0);
    json_decref(res);
    json_decref(c);

    /* Non-zero exit with lines: those are the findings (junk ignored, a
     * bad severity becomes high). */
    c = exec_check("echo junk; echo '{\"rule\": \"r2\", \"severity\": \"weird\","
                   " \"address\": \"a.b\", \"message\": \"no\"}'; exit 1",
                   10);
    res = run(c, plan);
    CHECK(json_is_false(json_object_get(res, "passed")) && nfindings(res) == 1 &&
          strcmp(finding(res, 0, "rule"), "r2") == 0 &&
          strcmp(finding(res, 0, "severity"), "high") == 0 &&
          strcmp(finding(res, 0, "address"), "a.b") == 0);
    json_decref(res);
    json_decref(c);

    /* Non-zero exit, nothing printed: one finding says so. */
    c = exec_check("exit 4", 10);
    res = run(c, plan);
    CHECK(json_is_false(json_object_get(res, "passed")) && nfindings(res) == 1 &&
          strstr(finding(res, 0, "message"), "exited with code 4") != NULL);
    json_decref(res);
    json_decref(c);

    /* Timeout: killed (with its children: the process group), fails. */
    c = exec_check("sleep 30 & sleep 30", 1);
    res = run(c, plan);
    CHECK(json_is_false(json_object_get(res, "passed")) && nfindings(res) == 1 &&
          strstr(finding(res, 0, "message"), "timed out after 1 s") != NULL);
    json_decref(res);
    json_decref(c);

    /* A program that cannot start fails closed. */
    c = load("[{\"name\": \"gone\", \"kind\": \"exec\", \"command\": [\"/nonexistent/x\"]}]");
    res = run(c, plan);
    CHECK(json_is_false(json_object_get(res, "passed")) && nfindings(res) == 1 &&
          strstr(finding(res, 0, "message"), "cannot start") != NULL);
    json_decref(res);
    json_decref(c);
}

int main(void)
{
    const char *src = getenv("GW_SOURCE_ROOT");
    if (src == NULL) {
        fprintf(stderr, "GW_SOURCE_ROOT is not set\n");
        return 77;
    }
    snprintf(policies, sizeof(policies), "%s/examples/policies/plan", src);
    snprintf(tmp, sizeof(tmp), "/tmp/gw-tfchecks-XXXXXX");
    CHECK(mkdtemp(tmp) != NULL);
    test_examples();
    test_config_errors();
    test_exec();
    char p[300];
    snprintf(p, sizeof(p), "%s/plan.json", tmp);
    unlink(p);
    snprintf(p, sizeof(p), "%s/checker.sh", tmp);
    unlink(p);
    rmdir(tmp);
    printf("terraform checks: ok\n");
    return 0;
}
