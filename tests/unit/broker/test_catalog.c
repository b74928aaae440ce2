/*
 * The action catalog: good definitions load with a stable version hash and
 * resolved program paths; each kind of bad definition is refused with the
 * file and the reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"

#define CHECK_NAMED
#include "../check.h"
#include "../testfs.h"

static char *fresh_dir(void)
{
    char tmpl[] = "/tmp/gw-catalog-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (d == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    return strdup(d);
}

static void cleanup(char *dir)
{
    remove_tree(dir);
    free(dir);
}

static const char good[] =
    "{\"id\":\"make-bucket\",\"title\":\"Bucket\",\"worker_type\":\"exec\","
    "\"backend\":{\"command\":[\"bin/make.sh\",\"--fast\"]},\"resource_key\":\"/name\","
    "\"retry\":{\"max_attempts\":4},"
    "\"inputs\":{\"type\":\"object\",\"required\":[\"name\"],"
    "\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":63}}}}";

/* Loads a directory holding one file with `text`; returns the error text
 * (static) or NULL when the load succeeded. */
static const char *load_one(const char *text)
{
    static struct gw_error err;
    char *dir = fresh_dir();
    write_file_in(dir, "a.json", text);
    gw_error_clear(&err);
    struct gw_catalog *c = gw_catalog_load(dir, &err);
    const char *res = c == NULL ? err.message : NULL;
    gw_catalog_destroy(c);
    cleanup(dir);
    return res;
}

int main(void)
{
    struct gw_error err;
    char *dir = fresh_dir();
    char bindir[600];

    snprintf(bindir, sizeof(bindir), "%s/bin", dir);
    mkdir(bindir, 0755);
    write_file_in(dir, "bucket.json", good);
    write_file_in(dir, "README.txt", "not an action");
    gw_error_clear(&err);
    struct gw_catalog *c = gw_catalog_load(dir, &err);
    CHECK(c != NULL, "a good definition loads (%s)", c ? "" : err.message);
    if (c != NULL) {
        const struct gw_action *a = gw_catalog_find(c, "make-bucket");
        CHECK(c->n == 1 && a != NULL, "only *.json files are actions");
        CHECK(a && strlen(a->version) == 64, "the version is a sha256");
        CHECK(a && a->retryable && a->max_attempts == 4, "retry makes the action retryable");
        CHECK(a && a->timeout_seconds == 600, "timeout defaults to 600 s");
        CHECK(a && a->resource_key && strcmp(a->resource_key, "/name") == 0,
              "resource_key is kept");
        const char *prog =
            a ? json_string_value(json_array_get(
                    json_object_get(json_object_get(a->definition, "backend"), "command"), 0))
              : NULL;
        CHECK(prog && prog[0] == '/' && strstr(prog, "/bin/make.sh") != NULL,
              "a relative program path is made absolute (%s)", prog ? prog : "null");
        CHECK(gw_catalog_find(c, "nope") == NULL, "unknown ids are not found");
        char version[65] = "";
        if (a != NULL)
            memcpy(version, a->version, sizeof(version));
        gw_catalog_destroy(c);
        c = gw_catalog_load(dir, &err);
        CHECK(c && strcmp(gw_catalog_find(c, "make-bucket")->version, version) == 0,
              "the same definition gives the same version");
        gw_catalog_destroy(c);

        /* The same definition written in YAML is the same action version. */
        char *ydir = fresh_dir();
        char ybin[600];
        snprintf(ybin, sizeof(ybin), "%s/bin", ydir);
        mkdir(ybin, 0755);
        write_file_in(ydir, "bucket.yaml",
                      "# a comment\n"
                      "id: make-bucket\ntitle: Bucket\nworker_type: exec\n"
                      "backend:\n  command: [bin/make.sh, --fast]\n"
                      "resource_key: /name\nretry: {max_attempts: 4}\n"
                      "inputs:\n  type: object\n  required: [name]\n"
                      "  properties:\n    name: {type: string, maxLength: 63}\n");
        write_file_in(ydir, "other.yml",
                      "id: other\ntitle: Other\nworker_type: exec\n"
                      "backend: {command: [/bin/true]}\ninputs: {type: object}\n");
        c = gw_catalog_load(ydir, &err);
        const struct gw_action *ya = c ? gw_catalog_find(c, "make-bucket") : NULL;
        CHECK(c && c->n == 2 && gw_catalog_find(c, "other") != NULL,
              "*.yaml and *.yml files are actions (%s)", c ? "" : err.message);
        /* Program paths resolve against the directory, so compare the rest. */
        CHECK(ya && ya->retryable && ya->max_attempts == 4 && ya->timeout_seconds == 600,
              "the YAML definition means the same as the JSON one");
        gw_catalog_destroy(c);
        write_file_in(ydir, "dup.json",
                      "{\"id\":\"other\",\"title\":\"x\",\"worker_type\":\"exec\","
                      "\"backend\":{\"command\":[\"/bin/true\"]},\"inputs\":{}}");
        c = gw_catalog_load(ydir, &err);
        CHECK(c == NULL && strstr(err.message, "'other' is defined twice"),
              "an id defined in a YAML and a JSON file is refused (%s)",
              c ? "loaded" : err.message);
        gw_catalog_destroy(c);
        cleanup(ydir);

        /* Same file contents in the same place give the same version. */
        char *jdir = fresh_dir(), *kdir = fresh_dir();
        const char *plain = "{\"id\":\"p\",\"title\":\"P\",\"worker_type\":\"exec\","
                            "\"backend\":{\"command\":[\"/bin/true\"]},"
                            "\"inputs\":{\"type\":\"object\"}}";
        write_file_in(jdir, "p.json", plain);
        write_file_in(kdir, "p.yaml",
                      "id: p\ntitle: P\nworker_type: exec\nbackend:\n  command:\n    - /bin/true\n"
                      "inputs:\n  type: object\n");
        struct gw_catalog *cj = gw_catalog_load(jdir, &err);
        struct gw_catalog *ck = gw_catalog_load(kdir, &err);
        CHECK(cj && ck &&
                  strcmp(gw_catalog_find(cj, "p")->version, gw_catalog_find(ck, "p")->version) == 0,
              "a definition has one version whether written in JSON or YAML");
        gw_catalog_destroy(cj);
        gw_catalog_destroy(ck);
        cleanup(jdir);
        cleanup(kdir);
    }
    cleanup(dir);

    {
        char *bdir = fresh_dir();
        write_file_in(bdir, "bad.yaml", "id: x\ntitle: [unclosed\n");
        c = gw_catalog_load(bdir, &err);
        CHECK(c == NULL && strstr(err.message, "bad.yaml: line") != NULL,
              "bad YAML names the file and line: %s", c ? "loaded" : err.message);
        gw_catalog_destroy(c);
        cleanup(bdir);
    }

    const char *e;
    e = load_one("{not json");
    CHECK(e && strstr(e, "a.json") && strstr(e, "line"), "bad JSON names the file and line: %s",
          e ? e : "loaded");
    e = load_one("{\"id\":\"x\",\"title\":\"x\",\"worker_type\":\"exec\",\"backend\":{}}");
    CHECK(e && strstr(e, "a.json") && strstr(e, "inputs"), "a missing field is named: %s",
          e ? e : "loaded");
    e = load_one("{\"id\":\"Bad Id\",\"title\":\"x\",\"worker_type\":\"exec\",\"backend\":{},"
                 "\"inputs\":{}}");
    CHECK(e && strstr(e, "/id"), "a bad id is refused at its pointer: %s", e ? e : "loaded");
    e = load_one("{\"id\":\"x\",\"title\":\"x\",\"worker_type\":\"exec\","
                 "\"backend\":{\"command\":[\"/bin/true\"]},"
                 "\"inputs\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"strin\"}}}}");
    CHECK(e && strstr(e, "/inputs"), "an invalid input schema is refused: %s", e ? e : "loaded");
    e = load_one("{\"id\":\"x\",\"title\":\"x\",\"worker_type\":\"exec\",\"backend\":{},"
                 "\"inputs\":{},\"surprise\":1}");
    CHECK(e && strstr(e, "surprise"), "an unknown field is refused: %s", e ? e : "loaded");
    e = load_one("{\"id\":\"x\",\"title\":\"x\",\"worker_type\":\"exec\","
                 "\"backend\":{\"cmd\":\"rm -rf /\"},\"inputs\":{}}");
    CHECK(e && strstr(e, "backend config") && strstr(e, "exec"),
          "a backend config the worker type would refuse is refused at load: %s", e ? e : "loaded");
    /* The broker checks against schemas/backends/<type>.json, not the worker's
     * registry: a type left out of this build (-Dbackends) is checked too. */
    e = load_one("{\"id\":\"x\",\"title\":\"x\",\"worker_type\":\"jenkins\","
                 "\"backend\":{\"url\":\"https://ci.example\"},\"inputs\":{}}");
    CHECK(e && strstr(e, "backend config") && strstr(e, "jenkins") && strstr(e, "job"),
          "every worker type of the tree has its backend config checked: %s", e ? e : "loaded");
    e = load_one("{\"id\":\"x\",\"title\":\"x\",\"worker_type\":\"someone-elses\","
                 "\"backend\":{\"anything\":1},\"inputs\":{}}");
    CHECK(e == NULL, "a worker type this binary does not know is passed through");
    /* Approval rules name teams as callers have them (gw_team_canonical). */
    e = load_one("{\"id\":\"x\",\"title\":\"x\",\"worker_type\":\"someone-elses\","
                 "\"backend\":{},\"inputs\":{},\"approval\":{\"rules\":[{\"approvals\":1,"
                 "\"from_teams\":[\"sre\",\"Payments\"]}]}}");
    CHECK(e && strstr(e, "at '/approval/rules/0/from_teams/1': team 'Payments' is not canonical") &&
              strstr(e, "write 'payments'"),
          "an approval rule naming 'Payments' is refused: %s", e ? e : "loaded");
    e = load_one(
        "{\"id\":\"x\",\"title\":\"x\",\"worker_type\":\"someone-elses\","
        "\"backend\":{},\"inputs\":{},\"resource\":{\"kind\":\"k\",\"name\":\"/n\"},"
        "\"ttl\":{\"default_seconds\":60,\"max_seconds\":60,"
        "\"extension_approval\":{\"approvals\":1,\"from_teams\":[\"group:default/sre\"]}}}");
    CHECK(e && strstr(e, "at '/ttl/extension_approval/from_teams/0'") && strstr(e, "write 'sre'"),
          "an extension rule naming 'group:default/sre' is refused: %s", e ? e : "loaded");

    dir = fresh_dir();
    write_file_in(dir, "one.json", good);
    write_file_in(dir, "two.json", good);
    c = gw_catalog_load(dir, &err);
    CHECK(c == NULL && strstr(err.message, "defined twice"), "duplicate ids are refused: %s",
          c ? "loaded" : err.message);
    gw_catalog_destroy(c);
    cleanup(dir);

    c = gw_catalog_load("/nonexistent/gangway-actions", &err);
    CHECK(c == NULL && strstr(err.message, "/nonexistent"), "a missing directory is named");

    /* The fault's fields (the reload endpoint's 422): file, line, column,
     * pointer and reason, for a parse error and for schema errors in YAML
     * and in JSON, the line being that of the value at fault. */
    {
        struct gw_catalog_fault f;
        char *fdir = fresh_dir();
        write_file_in(fdir, "p.yaml", "id: x\ntitle: x\nworker_type: [exec\n");
        c = gw_catalog_load_ex(fdir, &f, &err);
        CHECK(c == NULL && strstr(f.file, "p.yaml") && f.line >= 3 && f.reason[0] != '\0' &&
                  strstr(f.reason, "p.yaml") == NULL,
              "a YAML syntax error: file %s line %d reason %s", f.file, f.line, f.reason);
        unlink(f.file);
        write_file_in(fdir, "s.yaml",
                      "id: x\ntitle: x\nworker_type: exec\nbackend:\n  command: [/bin/true]\n"
                      "inputs: {}\nretry:\n  max_attempts: lots\n");
        c = gw_catalog_load_ex(fdir, &f, &err);
        CHECK(c == NULL && f.line == 8 && f.column == 17 &&
                  strcmp(f.pointer, "/retry/max_attempts") == 0 && strstr(err.message, "line 8"),
              "a YAML schema error: line %d column %d pointer %s (%s)", f.line, f.column, f.pointer,
              err.message);
        unlink(f.file);
        write_file_in(fdir, "j.json",
                      "{\"id\": \"x\", \"title\": \"x\", \"worker_type\": \"exec\",\n"
                      " \"backend\": {\"command\": [\"/bin/true\"]},\n"
                      " \"inputs\": {},\n \"tags\": [\"a\",\n   7]}\n");
        c = gw_catalog_load_ex(fdir, &f, &err);
        CHECK(c == NULL && f.line == 5 && f.column == 4 && strcmp(f.pointer, "/tags/1") == 0,
              "a JSON schema error: line %d column %d pointer %s (%s)", f.line, f.column, f.pointer,
              err.message);
        unlink(f.file);
        write_file_in(fdir, "m.json",
                      "{\"id\": \"x\",\n \"title\": \"x\",\n \"backend\": {},\n"
                      " \"inputs\": {}}\n");
        c = gw_catalog_load_ex(fdir, &f, &err);
        CHECK(c == NULL && f.line == 1 && f.column == 1 && strcmp(f.pointer, "") == 0,
              "a missing member names the object that lacks it: line %d pointer '%s' (%s)", f.line,
              f.pointer, err.message);
        cleanup(fdir);
    }

    /* Workflows (docs/workflows.md): steps load with their references
     * checked; each bad reference is refused with the line and pointer. */
    {
        static const char wf[] =
            "id: scaffold\ntitle: S\n"
            "inputs:\n  type: object\n  properties:\n    name: {type: string}\n"
            "    env: {type: string}\n"
            "steps:\n"
            "  - id: repo\n    worker_type: exec\n    backend: {command: [bin/repo.sh]}\n"
            "    inputs: {name: \"${inputs.name}\", full: \"svc-${inputs.name}-x\"}\n"
            "    undo:\n      worker_type: exec\n      backend: {command: [bin/unrepo.sh]}\n"
            "      inputs: {url: \"${self.outputs.url}\"}\n"
            "  - id: job\n    worker_type: exec\n    backend: {command: [/bin/true]}\n"
            "    inputs: {repo: \"${steps.repo.outputs.url}\"}\n"
            "  - id: lint\n    needs: []\n    worker_type: exec\n    backend: {command: "
            "[/bin/true]}\n"
            "  - id: env\n    needs: [job, lint]\n    worker_type: exec\n"
            "    backend: {command: [/bin/true]}\n"
            "    when: {env: [dev], \"${steps.repo.outputs.kind}\": [git]}\n"
            "    approval: {rules: [{approvals: 1}]}\n"
            "    inputs: {r: \"${steps.repo.outputs.url}\", j: \"${steps.job.outputs.id}\"}\n";
        struct gw_catalog_fault f;
        char *wdir = fresh_dir();
        write_file_in(wdir, "wf.yaml", wf);
        c = gw_catalog_load_ex(wdir, &f, &err);
        CHECK(c != NULL, "a workflow loads (%s)", c ? "" : err.message);
        const struct gw_action *a = c ? gw_catalog_find(c, "scaffold") : NULL;
        CHECK(a && a->is_workflow && strcmp(a->worker_type, "workflow") == 0,
              "a workflow's own run has the worker type 'workflow'");
        json_t *st0 = a ? json_array_get(json_object_get(a->definition, "steps"), 0) : NULL;
        CHECK(json_integer_value(json_object_get(st0, "timeout_seconds")) == 600,
              "a step's timeout defaults to 600 s");
        CHECK(a && a->timeout_seconds == 86400 &&
                  json_integer_value(json_object_get(a->definition, "timeout_seconds")) == 86400,
              "a workflow's own timeout defaults to a day, not 600 s (decision 0071)");
        const char *p0 = json_string_value(json_array_get(
            json_object_get(json_object_get(json_object_get(st0, "undo"), "backend"), "command"),
            0));
        CHECK(p0 && p0[0] == '/' && strstr(p0, "bin/unrepo.sh"),
              "an undo's relative program is made absolute (%s)", p0 ? p0 : "null");
        CHECK(a && strstr(a->public_json, "\"steps\":[{") != NULL,
              "GET /v1/actions/{id} lists the steps");
        gw_catalog_destroy(c);
        unlink(f.file);
        cleanup(wdir);

        static const struct {
            const char *from, *to, *pointer, *reason;
        } bad[] = {
            {"${inputs.name}\", full", "${inputs.nope}\", full", "/steps/0/inputs/name",
             "names no input"},
            {"${steps.repo.outputs.url}\"}\n  - id: lint",
             "${steps.env.outputs.url}\"}\n  - id: lint", "/steps/1/inputs/repo",
             "has not finished"},
            {"j: \"${steps.job", "j: \"${steps.nojob", "/steps/3/inputs/j", "names no step"},
            {"svc-${inputs.name}-x", "svc-${inputs.name-x", "/steps/0/inputs/full", "closing"},
            {"svc-${inputs.name}-x", "svc-${input.name}-x", "/steps/0/inputs/full",
             "not a reference"},
            {"${steps.repo.outputs.url}\"}\n  - id: lint", "${self.outputs.url}\"}\n  - id: lint",
             "/steps/1/inputs/repo", "only known in a step's undo"},
            {"needs: [job, lint]", "needs: [job, envx]", "/steps/3/needs/1", "no step 'envx'"},
            {"  - id: lint\n    needs: []", "  - id: lint\n    needs: [env]", "/steps/2/needs/0",
             "earlier steps only"},
            {"  - id: lint", "  - id: job", "/steps/2/id", "also step 1"},
            {"{env: [dev],", "{envy: [dev],", "/steps/3/when/envy", "neither an input"},
            {"\"${steps.repo.outputs.kind}\": [git]", "\"${steps.lint.outputs.kind}\": [git]", NULL,
             NULL},
            {"title: S\n", "title: S\nworker_type: exec\n", "/worker_type", "no worker_type"},
            {"title: S\n", "title: S\ndrift: {interval_seconds: 60}\n", "/drift",
             "single-step actions"},
            {"j: \"${steps.job.outputs.id}", "j: \"${steps.job.outputs.id.deep.er}", NULL, NULL},
            {"j: \"${steps.job.outputs.id}", "j: \"${steps.job.outputs.id.}", "/steps/3/inputs/j",
             "not a reference"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            char text[4096];
            const char *at = strstr(wf, bad[i].from);
            if (at == NULL) {
                CHECK(0, "case %zu: '%s' is in the workflow text", i, bad[i].from);
                continue;
            }
            snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - wf), wf, bad[i].to,
                     at + strlen(bad[i].from));
            wdir = fresh_dir();
            write_file_in(wdir, "wf.yaml", text);
            memset(&f, 0, sizeof(f));
            c = gw_catalog_load_ex(wdir, &f, &err);
            if (bad[i].pointer == NULL) {
                CHECK(c != NULL, "case %zu loads (%s)", i, c ? "" : err.message);
            } else {
                CHECK(c == NULL && strcmp(f.pointer, bad[i].pointer) == 0 && f.line > 0 &&
                          strstr(f.reason, bad[i].reason) && strstr(err.message, "line "),
                      "case %zu refused at %s line %d: %s", i, f.pointer, f.line, err.message);
            }
            gw_catalog_destroy(c);
            cleanup(wdir);
        }
    }

    printf("%s\n", failures ? "FAILED" : "PASSED");
    return failures ? 1 : 0;
}
