/*
 * The git backend driven directly on a loop against real bare repositories
 * in a temporary directory, pushed to over file:// and checked with the git
 * CLI. A local stand-in for a hosting API (hosting_server.py) answers the
 * pull-request and credential tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "backends/git/git_internal.h"
#include "gw/crypto.h"
#include "test_git.h"
#include "wtest.h"

struct fixture F;

/* ------------------------------------------------------------ helpers */

bool result_mentions(const struct run_record *r, const char *needle)
{
    if (strstr(r->message, needle) != NULL)
        return true;
    for (int i = 0; i < r->nlines; i++)
        if (strstr(r->line[i], needle) != NULL)
            return true;
    return false;
}

void run_git(const char *config, json_t *inputs, const char *run_id, int timeout, int cancel_ms,
             struct run_record *r)
{
    json_error_t jerr;
    json_t *cfg = json_loads(config, 0, &jerr);
    struct gw_run run = {.run_id = run_id,
                         .action_id = "gitops-test",
                         .inputs = inputs,
                         .config = cfg,
                         .timeout_seconds = timeout};
    struct backend_run_options o = {.cancel_after_ms = cancel_ms};
    if (cfg == NULL)
        fprintf(stderr, "bad test config: %s\n%s\n", jerr.text, config);
    CHECK(cfg != NULL);
    if (backend_run("git", &run, &o, r) != 0) {
        r->finished = true;
        r->outcome = GW_RUN_FAILED;
        snprintf(r->reason, sizeof(r->reason), "create");
    }
    json_decref(cfg);
}

static int vsh(const char *fmt, va_list ap, char **out)
{
    char cmd[8192];
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    if (out == NULL)
        return system(cmd);
    FILE *p = popen(cmd, "r");
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    CHECK(p != NULL && buf != NULL);
    while (!feof(p)) {
        if (n + 1024 > cap)
            CHECK((buf = realloc(buf, cap *= 2)) != NULL);
        n += fread(buf + n, 1, cap - n - 1, p);
    }
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    *out = buf;
    return pclose(p);
}

int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vsh(fmt, ap, NULL);
    va_end(ap);
    return rc;
}

char *capture(const char *fmt, ...)
{
    char *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsh(fmt, ap, &out);
    va_end(ap);
    return out;
}

char *config_with(const char *files, const char *message, const char *extra)
{
    char *s = NULL;
    CHECK(asprintf(&s,
                   "{\"repository\":\"%s\",\"branch\":\"main\",\"templates_dir\":\"%s\","
                   "\"files\":%s,\"commit_message\":\"%s\","
                   "\"author_email_domain\":\"example.test\"%s%s}",
                   F.url, F.tpl, files, message, extra && *extra ? "," : "",
                   extra ? extra : "") > 0);
    return s;
}

static int count_commits(const char *branch)
{
    char *s = capture("git -C %s rev-list --count %s 2>/dev/null || echo 0", F.remote, branch);
    int n = atoi(s);
    free(s);
    return n;
}

static const char *outs(const struct run_record *r, const char *key)
{
    return json_string_value(json_object_get(r->outputs, key));
}

static void expect(const struct run_record *r, enum gw_run_outcome o)
{
    if (!r->finished || r->outcome != o) {
        fprintf(stderr, "outcome %d (want %d): %s %s\n", r->outcome, o, r->reason, r->message);
        for (int i = 0; i < r->nlines; i++)
            fprintf(stderr, "  log: %s\n", r->line[i]);
        abort();
    }
}

/* ------------------------------------------------------------ fixture */

static void setup(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(F.tmp, sizeof(F.tmp), "%s/gw-git-test-XXXXXX", t && *t ? t : "/tmp");
    CHECK(mkdtemp(F.tmp) != NULL);
    snprintf(F.remote, sizeof(F.remote), "%s/remote.git", F.tmp);
    snprintf(F.url, sizeof(F.url), "file://%s", F.remote);
    snprintf(F.tpl, sizeof(F.tpl), "%s/templates", F.tmp);
    snprintf(F.outside, sizeof(F.outside), "%s/outside", F.tmp);
    snprintf(F.mark, sizeof(F.mark), "%s/pwned", F.tmp);
    char cache[PATH_MAX + 16];
    snprintf(cache, sizeof(cache), "%s/cache", F.tmp);
    /* The git CLI of the test must not read the machine's or user's config. */
    setenv("HOME", F.tmp, 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_AUTHOR_NAME", "seed", 1);
    setenv("GIT_AUTHOR_EMAIL", "seed@example.test", 1);
    setenv("GIT_COMMITTER_NAME", "seed", 1);
    setenv("GIT_COMMITTER_EMAIL", "seed@example.test", 1);
    setenv("GW_GIT_CACHE_DIR", cache, 1);
    CHECK(mkdir(F.outside, 0755) == 0 && mkdir(F.tpl, 0755) == 0);
    CHECK(sh("git init -q --bare -b main %s", F.remote) == 0);
    CHECK(sh("cd %s && git clone -q %s seed 2>/dev/null && cd seed && git checkout -q -b main && "
             "echo seed > README.md && mkdir -p apps && echo old > apps/keep.yaml && "
             "ln -s %s link && ln -s %s/target.yaml evil.yaml && git add -A && "
             "git commit -q -m seed && git push -q origin main",
             F.tmp, F.remote, F.outside, F.outside) == 0);
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/app.yaml.tpl", F.tpl);
    write_file(p, "# generated for run {{ run_id }}\nname: {{ inputs.name | yaml_string }}\n"
                  "slug: {{ inputs.name | slug }}\nreplicas: {{ inputs.replicas }}\n"
                  "labels: {{ inputs.labels | json }}\nowner: {{ requested_by | lower }}\n");
    snprintf(p, sizeof(p), "%s/plain.tpl", F.tpl);
    write_file(p, "value: {{ inputs.v | yaml_string }}\n");
    snprintf(p, sizeof(p), "%s/bad.tpl", F.tpl);
    write_file(p, "ok line\nthis is {{ inputs.nope }}\n");
    snprintf(p, sizeof(p), "%s/readme.tpl", F.tpl);
    write_file(p, "# {{ inputs.name }}\n");
}

static void teardown(void)
{
    /* Nothing escaped, nothing ran. */
    char *ls = capture("ls -A %s", F.outside);
    CHECK(strcmp(ls, "") == 0);
    free(ls);
    CHECK(access(F.mark, F_OK) != 0);
    CHECK(sh("rm -rf %s", F.tmp) == 0);
}

/* ------------------------------------------------------------ tests */

#define FILES_APP                                                                                  \
    "[{\"template\":\"app.yaml.tpl\",\"path\":\"apps/{{ inputs.name | slug }}/app.yaml\"},"        \
    "{\"template\":\"readme.tpl\",\"path\":\"apps/{{ inputs.name | slug }}/README.md\"}]"

static json_t *app_inputs(const char *name)
{
    return json_pack("{s:s, s:i, s:{s:s}}", "name", name, "replicas", 3, "labels", "team",
                     "payments");
}

static void test_success_and_replay(void)
{
    struct run_record r;
    char *cfg = config_with(FILES_APP, "Add {{ inputs.name }} for {{ requested_by }}", NULL);
    json_t *in = app_inputs("My Service");
    const char *id = "11111111-0000-4000-8000-000000000001";
    int before = count_commits("main");

    run_git(cfg, in, id, 30, 0, &r);
    expect(&r, GW_RUN_SUCCEEDED);
    char *tip = capture("git -C %s rev-parse main", F.remote);
    CHECK(strcmp(outs(&r, "commit"), tip) == 0);
    CHECK(strcmp(outs(&r, "branch"), "main") == 0);
    json_t *ch = json_object_get(r.outputs, "changed_files");
    CHECK(json_array_size(ch) == 2);
    CHECK(strcmp(json_string_value(json_array_get(ch, 0)), "apps/my-service/README.md") == 0);
    CHECK(strcmp(json_string_value(json_array_get(ch, 1)), "apps/my-service/app.yaml") == 0);
    CHECK(json_object_get(r.outputs, "pull_request") == NULL);
    CHECK(count_commits("main") == before + 1);

    char *s = capture("git -C %s log -1 --format='%%an <%%ae>|%%cn|%%s' main", F.remote);
    CHECK(strcmp(s, "alice <alice@example.test>|Gangway|Add My Service for alice") == 0);
    free(s);
    s = capture("git -C %s log -1 --format='%%(trailers:key=Gangway-Run,valueonly)' main",
                F.remote);
    CHECK(strcmp(s, id) == 0);
    free(s);
    s = capture("git -C %s show main:apps/my-service/app.yaml", F.remote);
    CHECK(strcmp(s, "# generated for run 11111111-0000-4000-8000-000000000001\n"
                    "name: \"My Service\"\nslug: my-service\nreplicas: 3\n"
                    "labels: {\"team\":\"payments\"}\nowner: alice") == 0);
    free(s);
    s = capture("git -C %s show main:README.md", F.remote); /* untouched */
    CHECK(strcmp(s, "seed") == 0);
    free(s);
    run_record_free(&r);

    /* Replaying the same run finds its trailer and pushes nothing. */
    run_git(cfg, in, id, 30, 0, &r);
    expect(&r, GW_RUN_SUCCEEDED);
    CHECK(strcmp(outs(&r, "commit"), tip) == 0);
    CHECK(json_array_size(json_object_get(r.outputs, "changed_files")) == 2);
    CHECK(result_mentions(&r, "not pushing again"));
    CHECK(count_commits("main") == before + 1);
    run_record_free(&r);

    /* A new run whose files already match: nothing to commit, no push. */
    char *cfg2 = config_with(
        "[{\"template\":\"readme.tpl\",\"path\":\"apps/{{ inputs.name | slug }}/README.md\"}]",
        "Again", NULL);
    run_git(cfg2, in, "11111111-0000-4000-8000-000000000002", 30, 0, &r);
    free(cfg2);
    expect(&r, GW_RUN_SUCCEEDED);
    CHECK(strcmp(outs(&r, "commit"), tip) == 0);
    CHECK(json_array_size(json_object_get(r.outputs, "changed_files")) == 0);
    CHECK(count_commits("main") == before + 1);
    run_record_free(&r);
    free(tip);
    json_decref(in);
    free(cfg);
}

/* A drift run (operation "drift") of the resource whose outputs are `outputs`
 * (NULL: a resource without outputs). */
static void run_drift(const char *config, json_t *outputs, const char *run_id, struct run_record *r)
{
    json_t *cfg = json_loads(config, 0, NULL);
    json_t *res = outputs ? json_pack("{s:s, s:O}", "id", "res-1", "outputs", outputs) : NULL;
    json_t *in = app_inputs("Drift Svc");
    struct gw_run run = {.run_id = run_id,
                         .action_id = "gitops-test",
                         .inputs = in,
                         .config = cfg,
                         .timeout_seconds = 30,
                         .operation = "drift",
                         .resource = res};
    struct backend_run_options o = {0};
    CHECK(cfg != NULL);
    if (backend_run("git", &run, &o, r) != 0) {
        r->finished = true;
        r->outcome = GW_RUN_FAILED;
        snprintf(r->reason, sizeof(r->reason), "create");
    }
    json_decref(res);
    json_decref(in);
    json_decref(cfg);
}

/* The files a run wrote are recorded with their blobs; a drift check finds
 * them in sync, then reports a file edited and one deleted outside Gangway,
 * pushes nothing, and fails on a branch that is gone. */
static void test_drift(void)
{
    struct run_record r, d;
    char *cfg = config_with(FILES_APP, "Add {{ inputs.name }}", NULL);
    json_t *in = app_inputs("Drift Svc"), *files, *f, *rec;
    size_t i;

    run_git(cfg, in, "11111111-0000-4000-8000-0000000000d1", 30, 0, &r);
    expect(&r, GW_RUN_SUCCEEDED);
    files = json_object_get(r.outputs, "files");
    CHECK(json_array_size(files) == 2);
    json_array_foreach(files, i, f)
    {
        const char *path = json_string_value(json_object_get(f, "path"));
        char *blob = capture("git -C %s rev-parse main:%s", F.remote, path);
        CHECK(strcmp(blob, json_string_value(json_object_get(f, "blob"))) == 0);
        free(blob);
    }
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(files, 0), "path")),
                 "apps/drift-svc/app.yaml") == 0);

    /* Untouched: in sync, and the check pushes nothing. */
    char *refs = capture("git -C %s for-each-ref --format='%%(refname) %%(objectname)'", F.remote);
    run_drift(cfg, r.outputs, "11111111-0000-4000-8000-0000000000d2", &d);
    expect(&d, GW_RUN_SUCCEEDED);
    rec = json_object_get(d.outputs, "reconcile");
    CHECK(json_is_false(json_object_get(rec, "changes")));
    CHECK(json_array_size(json_object_get(rec, "files")) == 0);
    CHECK(strcmp(json_string_value(json_object_get(rec, "branch")), "main") == 0);
    run_record_free(&d);

    /* An unrelated commit outside Gangway is not drift. */
    CHECK(sh("cd %s && git clone -q %s drift-clone 2>/dev/null && cd drift-clone && "
             "echo other > other.txt && git add -A && git commit -q -m other && "
             "git push -q origin main",
             F.tmp, F.remote) == 0);
    run_drift(cfg, r.outputs, "11111111-0000-4000-8000-0000000000d3", &d);
    expect(&d, GW_RUN_SUCCEEDED);
    CHECK(json_is_false(json_object_get(json_object_get(d.outputs, "reconcile"), "changes")));
    run_record_free(&d);

    /* One file edited, one deleted outside Gangway. */
    CHECK(sh("cd %s/drift-clone && echo 'replicas: 9' >> apps/drift-svc/app.yaml && "
             "git rm -q apps/drift-svc/README.md && git commit -q -am 'hand edit' && "
             "git push -q origin main",
             F.tmp) == 0);
    free(refs);
    refs = capture("git -C %s for-each-ref --format='%%(refname) %%(objectname)'", F.remote);
    char *head = capture("git -C %s rev-parse main", F.remote);
    run_drift(cfg, r.outputs, "11111111-0000-4000-8000-0000000000d4", &d);
    expect(&d, GW_RUN_SUCCEEDED);
    rec = json_object_get(d.outputs, "reconcile");
    CHECK(json_is_true(json_object_get(rec, "changes")));
    CHECK(strcmp(json_string_value(json_object_get(rec, "commit")), head) == 0);
    files = json_object_get(rec, "files");
    CHECK(json_array_size(files) == 2);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(files, 0), "path")),
                 "apps/drift-svc/app.yaml") == 0);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(files, 0), "change")),
                 "modified") == 0);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(files, 1), "path")),
                 "apps/drift-svc/README.md") == 0);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(files, 1), "change")),
                 "deleted") == 0);
    CHECK(result_mentions(&d, "apps/drift-svc/app.yaml modified"));
    run_record_free(&d);
    char *after = capture("git -C %s for-each-ref --format='%%(refname) %%(objectname)'", F.remote);
    CHECK(strcmp(refs, after) == 0); /* a drift check never pushes */
    free(after);
    free(refs);
    free(head);

    /* The recorded branch is gone: the check fails and says why. */
    json_t *gone = json_deep_copy(r.outputs);
    json_object_set_new(gone, "branch", json_string("gangway/deleted"));
    run_drift(cfg, gone, "11111111-0000-4000-8000-0000000000d5", &d);
    expect(&d, GW_RUN_FAILED);
    CHECK(result_mentions(&d, "branch 'gangway/deleted' not found"));
    run_record_free(&d);
    json_decref(gone);

    /* Nothing recorded (no resource, or outputs from before files were
     * recorded): refused by create, nothing fetched. */
    run_drift(cfg, NULL, "11111111-0000-4000-8000-0000000000d6", &d);
    expect(&d, GW_RUN_FAILED);
    CHECK(strcmp(d.reason, "create") == 0);
    run_record_free(&d);
    json_t *old = json_deep_copy(r.outputs);
    json_object_del(old, "files");
    run_drift(cfg, old, "11111111-0000-4000-8000-0000000000d7", &d);
    expect(&d, GW_RUN_FAILED);
    CHECK(strcmp(d.reason, "create") == 0);
    run_record_free(&d);
    json_decref(old);

    run_record_free(&r);
    json_decref(in);
    free(cfg);
}

/* Another writer pushes to main between our fetch and our push. */
static int race_pushes; /* how many attempts get a concurrent push */

static void race_hook(const char *repository, int attempt, const char *sha)
{
    (void)repository, (void)sha;
    if (attempt > race_pushes)
        return;
    CHECK(sh("cd %s && rm -rf racer && git clone -q %s racer && cd racer && "
             "echo %d >> racer.txt && git add racer.txt && git commit -q -m 'racer %d' && "
             "git push -q origin main",
             F.tmp, F.remote, attempt, attempt) == 0);
}

static void test_non_fast_forward(void)
{
    struct run_record r;
    char *cfg = config_with(FILES_APP, "Add {{ inputs.name }}", NULL);
    json_t *in = app_inputs("raced");
    int before = count_commits("main");

    gw_gitb_test_before_push = race_hook;
    race_pushes = 2;
    run_git(cfg, in, "22222222-0000-4000-8000-000000000001", 30, 0, &r);
    expect(&r, GW_RUN_SUCCEEDED);
    CHECK(result_mentions(&r, "rejected"));
    /* Two racer commits, then ours on top of the newest tip. */
    CHECK(count_commits("main") == before + 3);
    char *tip = capture("git -C %s rev-parse main", F.remote);
    CHECK(strcmp(outs(&r, "commit"), tip) == 0);
    char *parent = capture("git -C %s log -1 --format=%%s main~1", F.remote);
    CHECK(strcmp(parent, "racer 2") == 0);
    char *racer = capture("git -C %s show main:racer.txt | wc -l", F.remote);
    CHECK(atoi(racer) >= 2); /* the racers' work survived: no force push */
    free(racer);
    free(parent);
    free(tip);
    run_record_free(&r);

    /* A branch that keeps moving: bounded retries, then a clear failure. */
    race_pushes = 100;
    char *cfg0 = config_with(FILES_APP, "Add {{ inputs.name }}", "\"max_retries\":1");
    json_decref(in);
    in = app_inputs("never lands");
    before = count_commits("main");
    run_git(cfg0, in, "22222222-0000-4000-8000-000000000002", 30, 0, &r);
    expect(&r, GW_RUN_FAILED);
    CHECK(strcmp(r.reason, "push_rejected") == 0);
    CHECK(strstr(r.message, "2 times") != NULL);
    CHECK(result_mentions(&r, "push_rejected: push to main rejected 2 times")); /* the run's log */
    CHECK(count_commits("main") == before + 2); /* only the racers' */
    gw_gitb_test_before_push = NULL;
    run_record_free(&r);

    /* Lost answer: the push landed but a retry runs (a new claim of the same
     * run) and finds the trailer on main. */
    run_git(cfg, in, "22222222-0000-4000-8000-000000000001", 30, 0, &r);
    expect(&r, GW_RUN_SUCCEEDED);
    CHECK(result_mentions(&r, "not pushing again"));
    run_record_free(&r);
    json_decref(in);
    free(cfg0);
    free(cfg);
}

static void test_push_branch(void)
{
    struct run_record r;
    char *cfg =
        config_with(FILES_APP, "Add {{ inputs.name }}", "\"push_branch\":\"gangway/{{ run_id }}\"");
    json_t *in = app_inputs("branched");
    const char *id = "33333333-0000-4000-8000-000000000001";
    char *main_before = capture("git -C %s rev-parse main", F.remote);

    run_git(cfg, in, id, 30, 0, &r);
    expect(&r, GW_RUN_SUCCEEDED);
    CHECK(strcmp(outs(&r, "branch"), "gangway/33333333-0000-4000-8000-000000000001") == 0);
    char *tip = capture("git -C %s rev-parse gangway/%s", F.remote, id);
    CHECK(strcmp(outs(&r, "commit"), tip) == 0);
    char *main_after = capture("git -C %s rev-parse main", F.remote);
    CHECK(strcmp(main_before, main_after) == 0);
    char *parent = capture("git -C %s rev-parse gangway/%s~1", F.remote, id);
    CHECK(strcmp(parent, main_before) == 0);
    run_record_free(&r);
    run_git(cfg, in, id, 30, 0, &r); /* replay: same commit, no new branch tip */
    expect(&r, GW_RUN_SUCCEEDED);
    CHECK(strcmp(outs(&r, "commit"), tip) == 0);
    run_record_free(&r);
    free(parent);
    free(main_after);
    free(tip);
    free(main_before);
    json_decref(in);
    free(cfg);
}

static void test_template_errors(void)
{
    struct run_record r;
    json_t *in = app_inputs("x");
    int before = count_commits("main");
    struct {
        const char *files, *message, *needle;
    } cases[] = {
        {"[{\"template\":\"bad.tpl\",\"path\":\"a.yaml\"}]", "m",
         "template bad.tpl: line 2: unknown variable 'inputs.nope'"},
        {"[{\"template\":\"plain.tpl\",\"path\":\"a.yaml\"}]", "m",
         "template plain.tpl: line 1: unknown variable 'inputs.v'"},
        {FILES_APP, "Add {{ inputs.name | shell }}", "unknown filter 'shell'"},
        {FILES_APP, "Add {{ inputs.labels }}", "use | json"},
        {"[{\"template\":\"readme.tpl\",\"path\":\"{{ inputs.missing }}/a\"}]", "m",
         "files[0].path: line 1: unknown variable 'inputs.missing'"},
        {"[{\"template\":\"nope.tpl\",\"path\":\"a\"}]", "m", "cannot open template 'nope.tpl'"},
        {FILES_APP, "{{ run_id", "'{{' without '}}'"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *cfg = config_with(cases[i].files, cases[i].message, NULL);
        run_git(cfg, in, "44444444-0000-4000-8000-000000000001", 30, 0, &r);
        expect(&r, GW_RUN_FAILED);
        if (strstr(r.message, cases[i].needle) == NULL) {
            fprintf(stderr, "case %zu: message '%s' lacks '%s'\n", i, r.message, cases[i].needle);
            abort();
        }
        CHECK(strcmp(r.reason, "template_error") == 0);
        run_record_free(&r);
        free(cfg);
    }
    CHECK(count_commits("main") == before);
    json_decref(in);
}

/* Paths git's own rules refuse (git_path.h; each rule is proven against
 * `git fsck --strict` in test_git_path.c) end the run with the reason
 * invalid_path and a message that names the path; nothing is pushed. */
static void test_invalid_paths(void)
{
    struct run_record r;
    int before = count_commits("main");
    struct {
        const char *path, *needle;
    } cases[] = {
        {"apps/.g\u200cit/x", "\"apps/.g\\u200cit/x\": component \".g\\u200cit\" is .git"},
        {".gitmodules/x", "\".gitmodules/x\": component \".gitmodules\" is one of git's own"},
        {".gitmodules", "is one of git's own files"},
        {"GITMOD~1", "\"GITMOD~1\" is one of git's own files"},
        {"a/.git. /b", "component \".git. \" is .git"},
        {"git~1/config", "component \"git~1\" is .git"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        json_t *in = json_pack("{s:s}", "v", cases[i].path);
        char *cfg =
            config_with("[{\"template\":\"plain.tpl\",\"path\":\"{{ inputs.v }}\"}]", "path", NULL);
        run_git(cfg, in, "44444444-0000-4000-8000-000000000002", 30, 0, &r);
        expect(&r, GW_RUN_FAILED);
        if (strcmp(r.reason, "invalid_path") != 0 || strstr(r.message, cases[i].needle) == NULL ||
            strncmp(r.message, "files[0].path: ", 15) != 0) {
            fprintf(stderr, "case %zu: %s: %s\n", i, r.reason, r.message);
            abort();
        }
        CHECK(result_mentions(&r, "invalid_path: files[0].path")); /* the run's log */
        run_record_free(&r);
        free(cfg);
        json_decref(in);
    }
    CHECK(count_commits("main") == before);
}

static void test_bad_config(void)
{
    struct run_record r;
    json_t *in = json_object();
    const char *cfgs[] = {
        "{}",
        "{\"repository\":\"file:///x\",\"templates_dir\":\"/t\",\"commit_message\":\"m\"}",
        "{\"repository\":\"file:///x\",\"templates_dir\":\"/t\",\"commit_message\":\"m\","
        "\"files\":[{\"template\":\"../etc/passwd\",\"path\":\"a\"}]}",
        "{\"repository\":\"file:///x\",\"templates_dir\":\"/t\",\"commit_message\":\"m\","
        "\"files\":[{\"template\":\"a\",\"path\":\"a\"}],\"surprise\":1}",
        "{\"repository\":\"file:///x\",\"templates_dir\":\"/t\",\"commit_message\":\"m\","
        "\"files\":[{\"template\":\"a\",\"path\":\"a\"}],\"max_retries\":99}",
        "{\"repository\":\"file:///x\",\"templates_dir\":\"/t\",\"commit_message\":\"m\","
        "\"files\":[{\"template\":\"a\",\"path\":\"a\"}],\"pull_request\":{\"api\":\"gitea\","
        "\"url\":\"http://h/api\",\"token_env\":\"T\"}}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(cfgs); i++) {
        run_git(cfgs[i], in, "55555555-0000-4000-8000-000000000001", 30, 0, &r);
        CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "create") == 0);
        CHECK(strncmp(r.message, "git: ", 5) == 0);
        run_record_free(&r);
    }
    json_decref(in);
}

/* Holding the repository's cache lock makes a run wait: cancel and timeout. */
static void test_cancel_timeout(void)
{
    struct run_record r;
    char hash[GW_SHA256_HEX_LEN + 1], lock[PATH_MAX + 64];
    char *cfg = config_with(FILES_APP, "m", NULL);
    json_t *in = app_inputs("slow");
    int before = count_commits("main");

    gw_sha256_hex(F.url, strlen(F.url), hash);
    snprintf(lock, sizeof(lock), "%s/%.32s.lock", getenv("GW_GIT_CACHE_DIR"), hash);
    int fd = open(lock, O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0);
    run_git(cfg, in, "66666666-0000-4000-8000-000000000001", 30, 300, &r);
    expect(&r, GW_RUN_CANCELLED);
    CHECK(result_mentions(&r, "waiting for another run"));
    run_record_free(&r);
    run_git(cfg, in, "66666666-0000-4000-8000-000000000002", 1, 0, &r);
    expect(&r, GW_RUN_TIMED_OUT);
    run_record_free(&r);
    close(fd);
    CHECK(count_commits("main") == before);
    json_decref(in);
    free(cfg);
}

/* ------------------------------------------------------------ hosting server */

static pid_t server_pid;
static int server_port;
static char server_log[PATH_MAX + 32];

static void server_start(const char *script, const char *token)
{
    int p[2];
    char buf[32] = "";
    snprintf(server_log, sizeof(server_log), "%s/server.log", F.tmp);
    CHECK(pipe(p) == 0);
    server_pid = fork();
    CHECK(server_pid >= 0);
    if (server_pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        execlp("python3", "python3", script, token, server_log, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    while (n + 1 < sizeof(buf) && memchr(buf, '\n', n) == NULL) {
        ssize_t k = read(p[0], buf + n, sizeof(buf) - 1 - n);
        CHECK(k > 0);
        n += (size_t)k;
    }
    buf[n] = '\0';
    close(p[0]);
    server_port = atoi(buf);
    CHECK(server_port > 0);
}

static void server_stop(void)
{
    kill(server_pid, SIGTERM);
    waitpid(server_pid, NULL, 0);
}

static json_t *server_requests(void)
{
    json_t *all = json_array();
    FILE *f = fopen(server_log, "r");
    char line[65536];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        json_array_append_new(all, json_loads(line, 0, NULL));
    if (f != NULL)
        fclose(f);
    unlink(server_log);
    return all;
}

static void test_pull_request(void)
{
    struct run_record r;
    char extra[1024];
    const char *id = "77777777-0000-4000-8000-000000000001";
    const char *want_url = "http://hosting.test/platform/config/pulls/1";
    snprintf(extra, sizeof(extra),
             "\"push_branch\":\"gangway/{{ run_id }}\",\"pull_request\":{\"api\":\"gitea\","
             "\"url\":\"http://127.0.0.1:%d/api/v1/\",\"token_env\":\"GW_TEST_PR_TOKEN\","
             "\"owner\":\"platform\",\"repo\":\"config\"}",
             server_port);
    char *cfg =
        config_with(FILES_APP, "Add {{ inputs.name }}\\n\\nRequested in the portal.", extra);
    json_t *in = app_inputs("with pr");
    setenv("GW_TEST_PR_TOKEN", "pr-SECRET-4711", 1);

    run_git(cfg, in, id, 30, 0, &r);
    expect(&r, GW_RUN_SUCCEEDED);
    CHECK(strcmp(outs(&r, "pull_request"), want_url) == 0);
    CHECK(!result_mentions(&r, "pr-SECRET-4711"));
    json_t *reqs = server_requests();
    CHECK(json_array_size(reqs) == 1);
    json_t *q = json_array_get(reqs, 0), *b = json_object_get(q, "body");
    CHECK(strcmp(json_string_value(json_object_get(q, "method")), "POST") == 0);
    CHECK(strcmp(json_string_value(json_object_get(q, "path")),
                 "/api/v1/repos/platform/config/pulls") == 0);
    CHECK(strcmp(json_string_value(json_object_get(q, "authorization")), "token pr-SECRET-4711") ==
          0);
    CHECK(strcmp(json_string_value(json_object_get(b, "head")),
                 "gangway/"
                 "77777777-0000-4000-8000-000000000001") == 0);
    CHECK(strcmp(json_string_value(json_object_get(b, "base")), "main") == 0);
    CHECK(strcmp(json_string_value(json_object_get(b, "title")), "Add with pr") == 0);
    CHECK(strstr(json_string_value(json_object_get(b, "body")), "Requested in the portal.") !=
          NULL);
    CHECK(strstr(json_string_value(json_object_get(b, "body")), id) != NULL);
    json_decref(reqs);
    run_record_free(&r);

    /* Replay: no second push, the API's 409 leads to the existing request. */
    run_git(cfg, in, id, 30, 0, &r);
    expect(&r, GW_RUN_SUCCEEDED);
    CHECK(strcmp(outs(&r, "pull_request"), want_url) == 0);
    reqs = server_requests();
    CHECK(json_array_size(reqs) == 2);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(reqs, 1), "method")), "GET") ==
          0);
    json_decref(reqs);
    run_record_free(&r);

    /* A wrong token: the API's 401 fails the run, and the token stays out of it. */
    setenv("GW_TEST_PR_TOKEN", "wrong-SECRET-0815", 1);
    run_git(cfg, in, "77777777-0000-4000-8000-000000000002", 30, 0, &r);
    expect(&r, GW_RUN_FAILED);
    CHECK(strcmp(r.reason, "pull_request_failed") == 0);
    CHECK(strstr(r.message, "HTTP 401") != NULL);
    CHECK(!result_mentions(&r, "wrong-SECRET-0815"));
    json_decref(server_requests());
    run_record_free(&r);
    json_decref(in);
    free(cfg);
}

/* A smart-HTTP remote that rejects the token: the token is sent, once, and
 * appears in no log line or message; neither does the URL's user info. */
static void test_credentials(void)
{
    struct run_record r;
    char extra[256], *cfg;
    json_t *in = app_inputs("creds");
    snprintf(extra, sizeof(extra), "\"token_env\":\"GW_TEST_GIT_TOKEN\"");
    setenv("GW_TEST_GIT_TOKEN", "tok-SECRET-42", 1);
    char saved[sizeof(F.url)];
    memcpy(saved, F.url, sizeof(saved));
    snprintf(F.url, sizeof(F.url), "http://bob@127.0.0.1:%d/auth/repo.git", server_port);
    cfg = config_with(FILES_APP, "m", extra);
    run_git(cfg, in, "88888888-0000-4000-8000-000000000001", 30, 0, &r);
    expect(&r, GW_RUN_FAILED);
    CHECK(!result_mentions(&r, "tok-SECRET-42"));
    CHECK(!result_mentions(&r, "bob@"));
    CHECK(strstr(r.message, "authentication") != NULL || strstr(r.message, "401") != NULL);
    CHECK(strcmp(r.reason, "backend_error") == 0);
    json_t *reqs = server_requests();
    bool sent = false;
    size_t i;
    json_t *q;
    json_array_foreach(reqs, i, q)
    {
        const char *a = json_string_value(json_object_get(q, "authorization"));
        /* base64("bob:tok-SECRET-42") */
        sent |= a != NULL && strcmp(a, "Basic Ym9iOnRvay1TRUNSRVQtNDI=") == 0;
    }
    CHECK(sent);
    CHECK(json_array_size(reqs) <= 4);
    json_decref(reqs);
    run_record_free(&r);
    free(cfg);

    /* A password in the URL is refused at create, and not repeated. */
    snprintf(F.url, sizeof(F.url), "https://bob:hunter2-SECRET@git.example/x.git");
    cfg = config_with(FILES_APP, "m", NULL);
    run_git(cfg, in, "88888888-0000-4000-8000-000000000002", 30, 0, &r);
    CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "create") == 0);
    CHECK(strstr(r.message, "password") != NULL && strstr(r.message, "hunter2") == NULL);
    run_record_free(&r);
    free(cfg);
    memcpy(F.url, saved, sizeof(saved));
    json_decref(in);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    CHECK(argc == 2); /* the hosting server script */
    setup();
    test_success_and_replay();
    test_drift();
    test_non_fast_forward();
    test_push_branch();
    test_template_errors();
    test_invalid_paths();
    test_bad_config();
    test_cancel_timeout();
    test_injection();
    server_start(argv[1], "pr-SECRET-4711");
    test_pull_request();
    test_credentials();
    server_stop();
    teardown();
    printf("ok\n");
    return 0;
}
