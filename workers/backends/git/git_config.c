/* The git backend's configuration: parsing, validation, URL and ref rules. */
#include <ctype.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "git_internal.h"

#define DEFAULT_DOMAIN "gangway.invalid"

static bool env_name_ok(const char *s)
{
    if (s == NULL || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static bool simple_name_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max || s[0] == '-' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return false;
    return true;
}

bool gw_gitb_branch_valid(const char *name)
{
    char ref[300];
    size_t n = name ? strlen(name) : 0;
    int valid = 0;

    /* "@" alone means HEAD to git's command line. */
    if (n == 0 || n > 255 || name[0] == '-' || strcmp(name, "@") == 0)
        return false;
    /* Stricter than git: branch names end up in CI scripts and URLs
     * downstream, where "$(...)", backticks or quotes would be dangerous. */
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && strchr("._/+-", name[i]) == NULL)
            return false;
    snprintf(ref, sizeof(ref), "refs/heads/%s", name);
    if (git_reference_name_is_valid(&valid, ref) != 0)
        return false;
    return valid != 0;
}

/* Where a URL's userinfo ends ('@' before the first '/' after "://"), or NULL. */
static const char *userinfo_end(const char *auth, const char *end)
{
    for (const char *p = auth; p < end && *p != '/' && *p != '?' && *p != '#'; p++)
        if (*p == '@')
            return p;
    return NULL;
}

void gw_gitb_scrub(const char *in, char *out, size_t cap, const char *const *secrets)
{
    size_t o = 0, n = strlen(in);
    const char *p = in, *end = in + n;

    if (cap == 0)
        return;
    while (p < end && o + 1 < cap) {
        bool done = false;
        /* A URL's user:password part becomes three asterisks. */
        if (p + 3 <= end && memcmp(p, "://", 3) == 0) {
            const char *s = p + 3, *stop = s;
            while (stop < end && !isspace((unsigned char)*stop) && *stop != '"' && *stop != '\'')
                stop++;
            const char *at = userinfo_end(s, stop);
            if (at != NULL) {
                int k = snprintf(out + o, cap - o, "://***@");
                o = (size_t)k >= cap - o ? cap - 1 : o + (size_t)k;
                p = at + 1;
                done = true;
            }
        }
        for (size_t i = 0; !done && secrets != NULL && secrets[i] != NULL; i++) {
            size_t sl = strlen(secrets[i]);
            if (sl > 0 && sl <= (size_t)(end - p) && memcmp(p, secrets[i], sl) == 0) {
                int k = snprintf(out + o, cap - o, "***");
                o = (size_t)k >= cap - o ? cap - 1 : o + (size_t)k;
                p += sl;
                done = true;
            }
        }
        if (!done)
            out[o++] = *p++;
    }
    out[o] = '\0';
}

static char *dup_str(json_t *cfg, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(cfg, key));
    if (s == NULL)
        s = dflt;
    return s ? strdup(s) : NULL;
}

/* scheme://[user@]host/path for https/http/ssh; file:///abs for file. */
static int check_url(const char *url, struct gw_error *err)
{
    char safe[256];
    size_t n = strlen(url);
    const char *rest;

    gw_gitb_scrub(url, safe, sizeof(safe), NULL);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] == 0x7f)
            return gw_error_set(err, GW_EINVAL, false,
                                "git: repository URL '%s' contains a space or control character",
                                safe);
    if (strncmp(url, "file://", 7) == 0) {
        if (url[7] != '/')
            return gw_error_set(err, GW_EINVAL, false,
                                "git: repository '%s': file:// URLs need an absolute path", safe);
        return 0;
    }
    if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    else if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "ssh://", 6) == 0)
        rest = url + 6;
    else
        return gw_error_set(err, GW_EINVAL, false,
                            "git: repository '%s': only file://, https://, http:// and ssh:// URLs",
                            safe);
    const char *at = userinfo_end(rest, rest + strlen(rest));
    if (at != NULL) {
        if (memchr(rest, ':', (size_t)(at - rest)) != NULL)
            return gw_error_set(err, GW_EINVAL, false,
                                "git: repository '%s' carries a password; use token_env", safe);
        rest = at + 1;
    }
    if (rest[0] == '\0' || rest[0] == '-' || rest[0] == '/' || strchr(rest, '/') == NULL)
        return gw_error_set(err, GW_EINVAL, false, "git: repository '%s': bad host or path", safe);
    return 0;
}

/* Defaults owner/repo from the last two path segments of the URL. */
static void default_owner_repo(struct gw_gitb_config *c)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", c->repository);
    size_t n = strlen(tmp);
    while (n > 0 && tmp[n - 1] == '/')
        tmp[--n] = '\0';
    if (n > 4 && strcmp(tmp + n - 4, ".git") == 0)
        tmp[n -= 4] = '\0';
    char *slash = strrchr(tmp, '/');
    if (slash == NULL)
        return;
    if (c->pr_repo == NULL)
        c->pr_repo = strdup(slash + 1);
    *slash = '\0';
    slash = strrchr(tmp, '/');
    if (slash != NULL && c->pr_owner == NULL)
        c->pr_owner = strdup(slash + 1);
}

static const char *const top_keys[] = {
    "repository",    "branch",         "push_branch",         "files",
    "templates_dir", "commit_message", "author_email_domain", "max_retries",
    "token_env",     "token_username", "ssh_key_env",         "pull_request",
};

int gw_gitb_config_parse(json_t *cfg, struct gw_gitb_config *c, struct gw_error *err)
{
    json_t *v, *files, *pr;
    const char *k;
    int rc;

    memset(c, 0, sizeof(*c));
    if (!json_is_object(cfg))
        return gw_error_set(err, GW_EINVAL, false, "git: backend config is not an object");
    json_object_foreach(cfg, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < ARRAY_SIZE(top_keys); i++)
            known |= strcmp(k, top_keys[i]) == 0;
        if (!known)
            return gw_error_set(err, GW_EINVAL, false, "git: unknown config key '%s'", k);
        if (strcmp(k, "files") != 0 && strcmp(k, "max_retries") != 0 &&
            strcmp(k, "pull_request") != 0 && !json_is_string(v))
            return gw_error_set(err, GW_EINVAL, false, "git: \"%s\" must be a string", k);
    }
    if (json_string_value(json_object_get(cfg, "repository")) == NULL ||
        json_string_value(json_object_get(cfg, "templates_dir")) == NULL ||
        json_string_value(json_object_get(cfg, "commit_message")) == NULL)
        return gw_error_set(err, GW_EINVAL, false,
                            "git: \"repository\", \"templates_dir\" and \"commit_message\" are "
                            "required");
    if ((rc = check_url(json_string_value(json_object_get(cfg, "repository")), err)) != 0)
        return rc;

    c->repository = dup_str(cfg, "repository", NULL);
    c->branch = dup_str(cfg, "branch", "main");
    c->push_branch = dup_str(cfg, "push_branch", NULL);
    c->templates_dir = dup_str(cfg, "templates_dir", NULL);
    c->commit_message = dup_str(cfg, "commit_message", NULL);
    c->email_domain = dup_str(cfg, "author_email_domain", DEFAULT_DOMAIN);
    c->token_env = dup_str(cfg, "token_env", NULL);
    c->token_username = dup_str(cfg, "token_username", "gangway");
    c->ssh_key_env = dup_str(cfg, "ssh_key_env", NULL);
    c->max_retries = 3;

    rc = GW_EINVAL;
    if (!gw_gitb_branch_valid(c->branch)) {
        gw_error_set(err, rc, false, "git: \"branch\" is not a valid branch name");
        goto fail;
    }
    if (c->templates_dir[0] == '\0' || strstr(c->templates_dir, "..") != NULL) {
        gw_error_set(err, rc, false, "git: \"templates_dir\" must not be empty or contain '..'");
        goto fail;
    }
    if (!simple_name_ok(c->email_domain, 253)) {
        gw_error_set(err, rc, false, "git: bad \"author_email_domain\"");
        goto fail;
    }
    if (!simple_name_ok(c->token_username, 64)) {
        gw_error_set(err, rc, false, "git: bad \"token_username\"");
        goto fail;
    }
    if ((c->token_env && !env_name_ok(c->token_env)) ||
        (c->ssh_key_env && !env_name_ok(c->ssh_key_env))) {
        gw_error_set(err, rc, false, "git: bad environment variable name");
        goto fail;
    }
    if ((v = json_object_get(cfg, "max_retries")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 20) {
            gw_error_set(err, rc, false, "git: \"max_retries\" must be an integer 0..20");
            goto fail;
        }
        c->max_retries = (int)json_integer_value(v);
    }

    files = json_object_get(cfg, "files");
    c->nfiles = json_array_size(files);
    if (!json_is_array(files) || c->nfiles == 0 || c->nfiles > 100) {
        gw_error_set(err, rc, false, "git: \"files\" must be an array of 1 to 100 entries");
        goto fail;
    }
    c->files = calloc(c->nfiles, sizeof(*c->files));
    if (c->files == NULL) {
        rc = gw_error_set(err, GW_ENOMEM, true, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < c->nfiles; i++) {
        json_t *f = json_array_get(files, i);
        const char *t = json_string_value(json_object_get(f, "template"));
        const char *p = json_string_value(json_object_get(f, "path"));
        if (!json_is_object(f) || t == NULL || p == NULL || json_object_size(f) != 2 ||
            t[0] == '\0' || t[0] == '/' || strstr(t, "..") != NULL || p[0] == '\0') {
            gw_error_set(err, rc, false,
                         "git: files[%zu] needs a relative \"template\" (no '..') and a \"path\"",
                         i);
            goto fail;
        }
        c->files[i].template = strdup(t);
        c->files[i].path = strdup(p);
    }

    if ((pr = json_object_get(cfg, "pull_request")) != NULL) {
        const char *api = json_string_value(json_object_get(pr, "api"));
        const char *url = json_string_value(json_object_get(pr, "url"));
        const char *tok = json_string_value(json_object_get(pr, "token_env"));
        json_t *o = json_object_get(pr, "owner"), *r = json_object_get(pr, "repo");
        if (!json_is_object(pr) || api == NULL || url == NULL || tok == NULL) {
            gw_error_set(err, rc, false,
                         "git: \"pull_request\" needs \"api\", \"url\" and \"token_env\"");
            goto fail;
        }
        json_object_foreach(pr, k, v)
        {
            if (strcmp(k, "api") && strcmp(k, "url") && strcmp(k, "token_env") &&
                strcmp(k, "owner") && strcmp(k, "repo")) {
                gw_error_set(err, rc, false, "git: unknown pull_request key '%s'", k);
                goto fail;
            }
        }
        c->pr_api = strcmp(api, "gitea") == 0    ? GW_GIT_PR_GITEA
                    : strcmp(api, "github") == 0 ? GW_GIT_PR_GITHUB
                    : strcmp(api, "gitlab") == 0 ? GW_GIT_PR_GITLAB
                                                 : GW_GIT_PR_NONE;
        if (c->pr_api == GW_GIT_PR_NONE) {
            gw_error_set(err, rc, false, "git: pull_request.api must be gitea, github or gitlab");
            goto fail;
        }
        if ((strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) ||
            strpbrk(url, " \t\r\n") != NULL ||
            userinfo_end(strstr(url, "://") + 3, url + strlen(url))) {
            gw_error_set(err, rc, false,
                         "git: pull_request.url must be an http(s) URL without user info");
            goto fail;
        }
        if (!env_name_ok(tok) || (o && !simple_name_ok(json_string_value(o), 100)) ||
            (r && !simple_name_ok(json_string_value(r), 100))) {
            gw_error_set(err, rc, false, "git: bad pull_request token_env, owner or repo");
            goto fail;
        }
        if (c->push_branch == NULL) {
            gw_error_set(err, rc, false, "git: pull_request needs \"push_branch\"");
            goto fail;
        }
        c->pr_url = strdup(url);
        c->pr_token_env = strdup(tok);
        c->pr_owner = o ? strdup(json_string_value(o)) : NULL;
        c->pr_repo = r ? strdup(json_string_value(r)) : NULL;
        default_owner_repo(c);
        if (!simple_name_ok(c->pr_owner, 100) || !simple_name_ok(c->pr_repo, 100)) {
            gw_error_set(err, rc, false,
                         "git: cannot tell owner/repo from the repository URL; set "
                         "pull_request.owner and .repo");
            goto fail;
        }
    }
    return 0;
fail:
    gw_gitb_config_finish(c);
    return rc;
}

void gw_gitb_config_finish(struct gw_gitb_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; c->files != NULL && i < c->nfiles; i++) {
        free(c->files[i].template);
        free(c->files[i].path);
    }
    free(c->files);
    free(c->repository);
    free(c->branch);
    free(c->push_branch);
    free(c->templates_dir);
    free(c->commit_message);
    free(c->email_domain);
    free(c->token_env);
    free(c->token_username);
    free(c->ssh_key_env);
    free(c->pr_url);
    free(c->pr_token_env);
    free(c->pr_owner);
    free(c->pr_repo);
    memset(c, 0, sizeof(*c));
}
