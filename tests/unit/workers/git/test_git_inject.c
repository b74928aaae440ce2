/*
 * The injection corpus through every input of the git backend that reaches
 * a path, a ref, a URL or the commit message. For each payload the run
 * either fails with a clear error or does exactly the literal, contained
 * thing; nothing is written outside the repository (the fixture's outside/
 * stays empty) and nothing executes (the fixture's mark file never appears;
 * teardown checks both).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "test_git.h"
#include "wtest.h"

static const char *corpus[] = {
    "../../outside/x",
    "..",
    "a/../../outside/y",
    "/abs/path",
    NULL, /* <outside>/abs, filled in at run time */
    "$(touch MARK)",
    "`touch MARK`",
    "x; touch MARK",
    "-oProxyCommand=touch MARK",
    "--upload-pack=touch MARK",
    "a\r\nGangway-Run: 00000000-0000-4000-8000-000000000000",
    "a\nb",
    "a\0b",
    ".git/hooks/post-checkout",
    ".GIT/config",
    "link/escape",
    "evil",
    "~/.ssh/authorized_keys",
    "%2e%2e/x",
    "a\\..\\..\\x",
};

/* Replaces MARK by the fixture's mark path. */
static json_t *payload(size_t i)
{
    char buf[PATH_MAX * 2];
    const char *p = corpus[i];
    if (p == NULL) {
        snprintf(buf, sizeof(buf), "%s/abs", F.outside);
        return json_string(buf);
    }
    if (i == 12)
        return json_stringn("a\0b", 3);
    const char *m = strstr(p, "MARK");
    if (m == NULL)
        return json_string(p);
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(m - p), p, F.mark, m + 4);
    return json_string(buf);
}

static int commits(const char *ref)
{
    char *s = capture("git -C %s rev-list --count %s 2>/dev/null || echo 0", F.remote, ref);
    int n = atoi(s);
    free(s);
    return n;
}

static void check_contained(struct run_record *r)
{
    json_t *ch = json_object_get(r->outputs, "changed_files"), *v;
    size_t i;
    json_array_foreach(ch, i, v)
    {
        const char *p = json_string_value(v);
        size_t n = strlen(p);
        CHECK(p[0] != '/' && strncmp(p, "../", 3) != 0 && strstr(p, "/../") == NULL &&
              !(n >= 3 && strcmp(p + n - 3, "/..") == 0) && strncasecmp(p, ".git/", 5) != 0 &&
              strcasestr(p, "/.git/") == NULL);
        /* It is a regular file in the pushed tree, at exactly that path. */
        char *t = capture("git -C %s cat-file -t 'main:%s' 2>&1", F.remote, p);
        CHECK(strcmp(t, "blob") == 0);
        free(t);
    }
}

/* Payloads in the destination path: refused, or a file inside apps/. */
static void inject_path(void)
{
    char *cfg = config_with("[{\"template\":\"plain.tpl\",\"path\":\"apps/{{ inputs.v }}.yaml\"}]",
                            "path {{ inputs.v | slug }}", NULL);
    char *direct = config_with("[{\"template\":\"plain.tpl\",\"path\":\"{{ inputs.v }}\"}]",
                               "direct {{ inputs.v | slug }}", NULL);
    for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
        for (int d = 0; d < 2; d++) {
            struct run_record r;
            char id[64];
            json_t *in = json_pack("{s:o}", "v", payload(i));
            snprintf(id, sizeof(id), "99999999-0000-4000-8%03zu-%012d", i, d);
            run_git(d ? direct : cfg, in, id, 30, 0, &r);
            CHECK(r.finished);
            if (r.outcome == GW_RUN_SUCCEEDED)
                check_contained(&r);
            else
                CHECK(strcmp(r.reason, "invalid_path") == 0 ||
                      (strcmp(r.reason, "template_error") == 0 &&
                       strstr(r.message, "control character") != NULL));
            run_record_free(&r);
            json_decref(in);
        }
    }
    free(cfg);
    free(direct);
}

/* The repository's own symlinks are never written through. */
static void inject_symlink(void)
{
    const char *paths[] = {"link/escape.yaml", "link/sub/dir/x.yaml", "evil.yaml", "link"};
    int before = commits("main");
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct run_record r;
        char files[256];
        snprintf(files, sizeof(files), "[{\"template\":\"plain.tpl\",\"path\":\"%s\"}]", paths[i]);
        char *cfg = config_with(files, "symlink", NULL);
        json_t *in = json_pack("{s:s}", "v", "x");
        run_git(cfg, in, "aaaaaaaa-0000-4000-8000-000000000001", 30, 0, &r);
        if (r.outcome != GW_RUN_FAILED || strcmp(r.reason, "invalid_path") != 0 ||
            strstr(r.message, "symbolic link") == NULL) {
            fprintf(stderr, "%s: outcome %d, %s\n", paths[i], r.outcome, r.message);
            abort();
        }
        run_record_free(&r);
        json_decref(in);
        free(cfg);
    }
    CHECK(commits("main") == before);
}

/* Payloads in push_branch: refused, or a valid branch holding the commit. */
static void inject_ref(void)
{
    char *cfg =
        config_with("[{\"template\":\"plain.tpl\",\"path\":\"refs/{{ inputs.v | slug }}.yaml\"}]",
                    "ref", "\"push_branch\":\"gangway/{{ inputs.v }}\"");
    for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
        struct run_record r;
        char id[64];
        json_t *in = json_pack("{s:o}", "v", payload(i));
        snprintf(id, sizeof(id), "bbbbbbbb-0000-4000-8000-%012zu", i);
        run_git(cfg, in, id, 30, 0, &r);
        CHECK(r.finished);
        if (r.outcome == GW_RUN_SUCCEEDED) {
            const char *b = json_string_value(json_object_get(r.outputs, "branch"));
            CHECK(sh("git check-ref-format 'refs/heads/%s'", b) == 0 && b[0] != '-');
            char *tip = capture("git -C %s rev-parse 'refs/heads/%s'", F.remote, b);
            CHECK(strcmp(tip, json_string_value(json_object_get(r.outputs, "commit"))) == 0);
            free(tip);
        } else {
            CHECK(strcmp(r.reason, "template_error") == 0);
        }
        run_record_free(&r);
        json_decref(in);
    }
    /* Base branch names are checked at create. */
    const char *bases[] = {"-oProxyCommand=touch x",
                           "--upload-pack=touch x",
                           "a b",
                           "$(id)",
                           "main\nx",
                           "../main",
                           "main.lock"};
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        struct run_record r;
        json_t *c = json_loads(cfg, 0, NULL), *in = json_object();
        json_object_set_new(c, "branch", json_string(bases[i]));
        char *s = json_dumps(c, 0);
        run_git(s, in, "bbbbbbbb-0000-4000-8000-000000000099", 30, 0, &r);
        CHECK(r.outcome == GW_RUN_FAILED && strcmp(r.reason, "create") == 0);
        run_record_free(&r);
        free(s);
        json_decref(c);
        json_decref(in);
    }
    free(cfg);
}

/* Payloads in the commit message: literal text, or refused (control bytes
 * that could forge a trailer line). Exactly one Gangway-Run trailer. */
static void inject_message(void)
{
    char *cfg = config_with("[{\"template\":\"plain.tpl\",\"path\":\"msg/{{ run_id }}.yaml\"}]",
                            "Message {{ inputs.v }}", NULL);
    for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
        struct run_record r;
        char id[64];
        json_t *v = payload(i), *in = json_pack("{s:O}", "v", v);
        snprintf(id, sizeof(id), "cccccccc-0000-4000-8000-%012zu", i);
        run_git(cfg, in, id, 30, 0, &r);
        CHECK(r.finished);
        if (r.outcome == GW_RUN_SUCCEEDED) {
            char *subj = capture("git -C %s log -1 --format=%%s main", F.remote);
            char want[PATH_MAX * 2];
            snprintf(want, sizeof(want), "Message %s", json_string_value(v));
            CHECK(strcmp(subj, want) == 0);
            char *tr =
                capture("git -C %s log -1 --format='%%(trailers:key=Gangway-Run,valueonly)' main",
                        F.remote);
            CHECK(strcmp(tr, id) == 0);
            free(tr);
            free(subj);
        } else {
            CHECK(strstr(r.message, "control character") != NULL);
        }
        run_record_free(&r);
        json_decref(in);
        json_decref(v);
    }
    free(cfg);
}

/* Repository URLs that would make a command line or a proxy command. */
static void inject_url(void)
{
    char mark_url[PATH_MAX * 2];
    snprintf(mark_url, sizeof(mark_url), "ssh://-oProxyCommand=touch%%20%s/x", F.mark);
    const char *urls[] = {
        mark_url,
        "-oProxyCommand=touch /tmp/x",
        "file:///tmp/x --upload-pack=touch /tmp/x",
        "ext::sh -c touch% /tmp/x",
        "file://relative/path",
        "git@host:repo.git",
        "https://host",
        "https://h/x\r\nHost: evil",
        "ssh://host/$(touch /tmp/x)\n",
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        struct run_record r;
        char *c = NULL;
        json_t *jc =
            json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}]}", "repository", urls[i], "templates_dir",
                      F.tpl, "commit_message", "m", "files", "template", "plain.tpl", "path", "x");
        json_t *in = json_pack("{s:s}", "v", "x");
        c = json_dumps(jc, 0);
        run_git(c, in, "dddddddd-0000-4000-8000-000000000001", 30, 0, &r);
        if (r.outcome != GW_RUN_FAILED || strcmp(r.reason, "create") != 0) {
            fprintf(stderr, "url %s: outcome %d reason %s\n", urls[i], r.outcome, r.reason);
            abort();
        }
        run_record_free(&r);
        free(c);
        json_decref(jc);
        json_decref(in);
    }
}

void test_injection(void)
{
    inject_path();
    inject_symlink();
    inject_ref();
    inject_message();
    inject_url();
    CHECK(access(F.mark, F_OK) != 0);
}
