/* The terraform backend's file and JSON helpers, without a Terraform binary. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/terraform/tf_prep.h"
#include "gw/error.h"
#include "wtest.h"

static char tmp[256];

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_workdir_name(void)
{
    static const char *const keys[] = {
        "../../etc", "/etc/passwd",       "a/b/../../..",     "$(id)", "`id`",
        "x\r\ny",    "-oProxyCommand=id", "--upload-pack=id", "",      "normal-key"};
    char a[65], b[65];
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        gw_tf_workdir_name("act", keys[i], a);
        CHECK(strlen(a) == 64 && strspn(a, "0123456789abcdef") == 64);
    }
    /* The separator keeps (action, key) pairs apart. */
    gw_tf_workdir_name("ab", "c", a);
    gw_tf_workdir_name("a", "bc", b);
    CHECK(strcmp(a, b) != 0);
    gw_tf_workdir_name("ab", "c", b);
    CHECK(strcmp(a, b) == 0);
}

static void test_sync_copies_module_safely(void)
{
    char mod[512], wd[512], p[1024], msg[256];
    snprintf(mod, sizeof(mod), "%s/module", tmp);
    snprintf(wd, sizeof(wd), "%s/state/wd", tmp);
    CHECK(mkdir(mod, 0700) == 0);
    CHECK(gw_tf_mkdirs(wd, msg, sizeof(msg)) == 0);
    snprintf(p, sizeof(p), "%s/main.tf", mod);
    write_file(p, "output \"x\" { value = 1 }\n");
    snprintf(p, sizeof(p), "%s/sub", mod);
    CHECK(mkdir(p, 0700) == 0);
    snprintf(p, sizeof(p), "%s/sub/inner.tf", mod);
    write_file(p, "# inner\n");
    /* Outside the module: a file and a directory its symlinks point at. */
    snprintf(p, sizeof(p), "%s/outside.tf", tmp);
    write_file(p, "# secret outside\n");
    snprintf(p, sizeof(p), "%s/evil.tf", mod);
    CHECK(symlink("../outside.tf", p) == 0);
    snprintf(p, sizeof(p), "%s/etc", mod);
    CHECK(symlink("/etc", p) == 0);
    snprintf(p, sizeof(p), "%s/terraform.tfstate", mod); /* never copied over state */
    write_file(p, "{}");

    /* State and a previous run's leftovers in the working directory. */
    snprintf(p, sizeof(p), "%s/terraform.tfstate", wd);
    write_file(p, "STATE");
    snprintf(p, sizeof(p), "%s/stale.tf", wd);
    write_file(p, "# from an older module version\n");

    CHECK(gw_tf_workdir_sync(wd, mod, msg, sizeof(msg)) == 0);
    snprintf(p, sizeof(p), "%s/main.tf", wd);
    CHECK(exists(p));
    snprintf(p, sizeof(p), "%s/sub/inner.tf", wd);
    CHECK(exists(p));
    snprintf(p, sizeof(p), "%s/evil.tf", wd);
    CHECK(!exists(p));
    snprintf(p, sizeof(p), "%s/etc", wd);
    CHECK(!exists(p));
    snprintf(p, sizeof(p), "%s/stale.tf", wd);
    CHECK(!exists(p));
    snprintf(p, sizeof(p), "%s/terraform.tfstate", wd);
    FILE *f = fopen(p, "r");
    char buf[16] = {0};
    CHECK(f != NULL && fread(buf, 1, sizeof(buf) - 1, f) == 5 && strcmp(buf, "STATE") == 0);
    fclose(f);

    /* A missing module is an error, not an empty copy. */
    snprintf(p, sizeof(p), "%s/nope", tmp);
    CHECK(gw_tf_workdir_sync(wd, p, msg, sizeof(msg)) != 0 && strstr(msg, "nope") != NULL);
}

static void test_tfvars_corpus(void)
{
    /* Every string lands in the JSON file as it is, nowhere else. */
    static const char *const corpus[][2] = {
        {"-oProxyCommand=touch ", "/pwned1"},
        {"--upload-pack=touch ", "/pwned2"},
        {"$(touch ", "/pwned3)"},
        {"`touch ", "/pwned4`"},
        {"a\r\nb = \"injected\"\r\n", ""},
        {"../../../../", "/x"},
        {"/etc/passwd", ""},
        {"${file(\"/etc/passwd\")} %{ if true }", "%{ endif }"},
        {"\" } resource \"x\" \"y\" { ", ""},
    };
    char wd[512], p[1024], msg[256], s[512];
    json_t *in = json_object(), *back;
    struct stat st;
    snprintf(wd, sizeof(wd), "%s/vars", tmp);
    CHECK(mkdir(wd, 0700) == 0);
    for (size_t i = 0; i < ARRAY_SIZE(corpus); i++) {
        char k[16];
        snprintf(k, sizeof(k), "v%zu", i);
        snprintf(s, sizeof(s), "%s%s%s", corpus[i][0], tmp, corpus[i][1]);
        json_object_set_new(in, k, json_string(s));
    }
    json_object_set_new(in, "nul", json_stringn("a\0b", 3));
    json_object_set_new(in, "nested", json_pack("{s:[s,i]}", "k", "$(id)", 3));
    json_object_set_new(in, "plan_sha256", json_string("not a variable"));
    /* A symlink where the file goes is replaced, not followed. */
    snprintf(p, sizeof(p), "%s/%s", wd, TF_VARS_FILE);
    snprintf(s, sizeof(s), "%s/target", tmp);
    CHECK(symlink(s, p) == 0);

    CHECK(gw_tf_write_tfvars(wd, in, msg, sizeof(msg)) == 0);
    CHECK(!exists(s));
    CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
    back = json_load_file(p, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
    CHECK(back != NULL);
    CHECK(json_object_get(back, "plan_sha256") == NULL);
    json_object_del(in, "plan_sha256");
    CHECK(json_equal(back, in));
    CHECK(json_string_length(json_object_get(back, "nul")) == 3);
    for (int i = 1; i <= 4; i++) {
        snprintf(p, sizeof(p), "%s/pwned%d", tmp, i);
        CHECK(!exists(p));
    }
    json_decref(back);
    json_decref(in);
}

static void test_file_sha256(void)
{
    char p[512], out[65], msg[128];
    snprintf(p, sizeof(p), "%s/abc", tmp);
    write_file(p, "abc");
    CHECK(gw_tf_file_sha256(p, out, msg, sizeof(msg)) == 0);
    CHECK(strcmp(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    snprintf(p, sizeof(p), "%s/missing", tmp);
    CHECK(gw_tf_file_sha256(p, out, msg, sizeof(msg)) == 1);
    snprintf(p, sizeof(p), "%s/link", tmp);
    CHECK(symlink("abc", p) == 0);
    CHECK(gw_tf_file_sha256(p, out, msg, sizeof(msg)) == -1); /* never through a symlink */
}

static void test_plan_summary(void)
{
    json_t *plan =
        json_loads("{\"resource_changes\":["
                   "{\"type\":\"terraform_data\",\"change\":{\"actions\":[\"create\"]}},"
                   "{\"type\":\"terraform_data\",\"change\":{\"actions\":[\"create\"]}},"
                   "{\"type\":\"null_resource\",\"change\":{\"actions\":[\"update\"]}},"
                   "{\"type\":\"null_resource\",\"change\":{\"actions\":[\"delete\",\"create\"]}},"
                   "{\"type\":\"aws_s3_bucket\",\"change\":{\"actions\":[\"delete\"]}},"
                   "{\"type\":\"aws_s3_bucket\",\"change\":{\"actions\":[\"no-op\"]}},"
                   "{\"type\":\"data_thing\",\"change\":{\"actions\":[\"read\"]}}]}",
                   0, NULL);
    json_t *s = gw_tf_plan_summary(plan),
           *want = json_loads("{\"add\":3,\"change\":1,\"destroy\":2,\"by_type\":{"
                              "\"terraform_data\":{\"add\":2,\"change\":0,\"destroy\":0},"
                              "\"null_resource\":{\"add\":1,\"change\":1,\"destroy\":1},"
                              "\"aws_s3_bucket\":{\"add\":0,\"change\":0,\"destroy\":1}}}",
                              0, NULL);
    CHECK(s != NULL && json_equal(s, want));
    json_decref(s);
    json_decref(want);
    json_decref(plan);
    plan = json_object();
    s = gw_tf_plan_summary(plan); /* nothing to do */
    json_decref(plan);
    CHECK(json_integer_value(json_object_get(s, "add")) == 0 &&
          json_object_size(json_object_get(s, "by_type")) == 0);
    json_decref(s);
    CHECK(gw_tf_plan_summary(NULL) == NULL);
}

static void test_outputs_public(void)
{
    json_t *out = json_loads("{\"a\":{\"sensitive\":false,\"type\":\"string\",\"value\":\"x\"},"
                             "\"b\":{\"sensitive\":true,\"type\":\"string\",\"value\":\"hunter2\"},"
                             "\"c\":{\"sensitive\":false,\"type\":[\"list\",\"number\"],"
                             "\"value\":[1,2]}}",
                             0, NULL);
    json_t *p = gw_tf_outputs_public(out);
    CHECK(strcmp(json_string_value(json_object_get(p, "a")), "x") == 0);
    CHECK(strcmp(json_string_value(json_object_get(p, "b")), TF_REDACTED) == 0);
    CHECK(json_array_size(json_object_get(p, "c")) == 2);
    char *text = json_dumps(p, 0);
    CHECK(strstr(text, "hunter2") == NULL);
    free(text);
    json_decref(p);
    json_decref(out);
}

static void test_secrets_and_redact(void)
{
    json_t *in = json_loads("{\"token\":\"s3cr3t-tok\",\"db\":{\"password\":\"pw-123456\"},"
                            "\"short\":\"ab\",\"name\":\"public\"}",
                            0, NULL);
    json_t *names = json_loads("[\"token\",\"short\"]", 0, NULL);
    json_t *ptrs = json_loads("[\"/db/password\",\"/missing\"]", 0, NULL);
    json_t *sec = gw_tf_secret_values(in, names, ptrs);
    char out[256];
    const char *line = "token=s3cr3t-tok pw=pw-123456 name=public ab";
    size_t n = gw_tf_redact(sec, line, strlen(line), out, sizeof(out));
    CHECK(json_array_size(sec) == 2); /* "ab" is too short to mask */
    CHECK(n == strlen(out));
    CHECK(strstr(out, "s3cr3t") == NULL && strstr(out, "pw-123456") == NULL);
    CHECK(strstr(out, "name=public ab") != NULL);
    CHECK(strstr(out, "token=" TF_REDACTED) != NULL);
    /* Truncation keeps the buffer terminated. */
    n = gw_tf_redact(sec, line, strlen(line), out, 8);
    CHECK(n == 7 && out[7] == '\0');
    json_decref(sec);
    json_decref(names);
    json_decref(ptrs);
    json_decref(in);
}

int main(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/gw-tfprep-XXXXXX");
    CHECK(mkdtemp(tmp) != NULL);
    test_workdir_name();
    test_sync_copies_module_safely();
    test_tfvars_corpus();
    test_file_sha256();
    test_plan_summary();
    test_outputs_public();
    test_secrets_and_redact();
    remove_tree(tmp);
    printf("terraform prep: ok\n");
    return 0;
}
