/*
 * The git backend's worker-thread side: everything libgit2 does for a run.
 *
 * render (fail fast on template errors) -> lock the repository's cache ->
 * loop { fetch base and target -> look for our trailer -> check out the
 * parent -> write files -> commit -> push } -> pull request.
 * The outputs record each written path's blob (what a drift check compares).
 *
 * A drift check (gw_gitb_work_drift): lock the cache -> fetch the recorded
 * branch -> compare the recorded blobs with its head. Never pushes.
 *
 * Never runs on the loop thread (gw_gitb_work_run and gw_gitb_work_drift are
 * uv_queue_work bodies).
 */
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "git_fs.h"
#include "git_internal.h"
#include "git_path.h"
#include "git_template.h"
#include "gw/crypto.h"

#define TRAILER_KEY  "Gangway-Run"
#define HISTORY_SCAN 200
#define PUSH_REF     "refs/heads/gangway-push"

void (*gw_gitb_test_before_push)(const char *repository, int attempt, const char *sha);

struct rendered {
    char *path;
    char *data;
    size_t len;
};

struct work {
    struct gw_gitb_job *j;
    const struct gw_gitb_config *c;
    git_repository *repo;
    git_remote *remote;
    char dir[PATH_MAX];
    int lock_fd;
    char *target;  /* the branch pushed to */
    char *message; /* with the trailer */
    struct rendered *files;
    size_t nfiles;
    git_oid base, tip; /* remote tips */
    bool base_exists, tip_exists;
    bool rejected;
    char reject_msg[256];
};

static bool stopping(struct work *w)
{
    return atomic_load(&w->j->stop) != GW_GIT_RUN;
}

static int gitb_fail(struct work *w, const char *what)
{
    const git_error *e = git_error_last();
    if (stopping(w))
        return gw_gitb_job_fail(w->j, "cancelled", "%s: stopped", what);
    return gw_gitb_job_fail(w->j, "backend_error", "%s: %s", what,
                            e && e->message ? e->message : "unknown libgit2 error");
}

/* ------------------------------------------------------------ rendering */

static int render(struct work *w, const char *tpl, size_t len, unsigned flags, const char *what,
                  char **out, size_t *out_len)
{
    struct gw_gitb_tpl_vars v = {.inputs = w->j->inputs,
                                 .run_id = w->j->run_id,
                                 .requested_by = w->j->requested_by,
                                 .action_id = w->j->action_id};
    char msg[300];
    size_t n;
    if (gw_gitb_tpl_render(&v, tpl, len, flags, out, out_len ? out_len : &n, msg, sizeof(msg)) != 0)
        return gw_gitb_job_fail(w->j, "template_error", "%s: %s", what, msg);
    return 0;
}

static int render_all(struct work *w)
{
    const struct gw_gitb_config *c = w->c;
    char *msg = NULL, what[1200];
    size_t n;

    if (c->push_branch != NULL) {
        if (render(w, c->push_branch, strlen(c->push_branch), GW_GIT_TPL_SINGLE_LINE, "push_branch",
                   &w->target, &n) != 0)
            return -1;
        if (!gw_gitb_branch_valid(w->target))
            return gw_gitb_job_fail(w->j, "template_error",
                                    "push_branch: the rendered name is not a valid branch name");
    } else if ((w->target = strdup(c->branch)) == NULL) {
        return gw_gitb_job_fail(w->j, "backend_error", "out of memory");
    }
    /* Inputs never bring a control character into the message: no forged
     * trailer line, no NUL. Only the template's own text starts lines. */
    if (render(w, c->commit_message, strlen(c->commit_message), GW_GIT_TPL_SINGLE_LINE,
               "commit_message", &msg, &n) != 0)
        return -1;
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ' || msg[n - 1] == '\t'))
        msg[--n] = '\0';
    if (n == 0 || asprintf(&w->message, "%s\n\n" TRAILER_KEY ": %s\n", msg, w->j->run_id) < 0) {
        free(msg);
        return gw_gitb_job_fail(w->j, "template_error", "commit_message renders empty");
    }
    free(msg);

    w->files = calloc(c->nfiles, sizeof(*w->files));
    if (w->files == NULL)
        return gw_gitb_job_fail(w->j, "backend_error", "out of memory");
    for (size_t i = 0; i < c->nfiles; i++) {
        char *tpl = NULL, fmsg[700];
        size_t tlen, plen;
        struct rendered *r = &w->files[i];
        w->nfiles = i + 1;
        snprintf(what, sizeof(what), "files[%zu].path", i);
        if (render(w, c->files[i].path, strlen(c->files[i].path), GW_GIT_TPL_SINGLE_LINE, what,
                   &r->path, &plen) != 0)
            return -1;
        if (gw_gitb_path_check(r->path, plen, fmsg, sizeof(fmsg)) != 0)
            return gw_gitb_job_fail(w->j, "invalid_path", "%s: %s", what, fmsg);
        if (gw_gitb_fs_read(w->j->templates_dir, c->files[i].template, &tpl, &tlen, fmsg,
                            sizeof(fmsg)) != 0)
            return gw_gitb_job_fail(w->j, "template_error", "files[%zu]: %s", i, fmsg);
        snprintf(what, sizeof(what), "template %s", c->files[i].template);
        int rc = render(w, tpl, tlen, 0, what, &r->data, &r->len);
        free(tpl);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ callbacks */

static int cb_credentials(git_credential **out, const char *url, const char *user_from_url,
                          unsigned int allowed, void *payload)
{
    struct work *w = payload;
    struct gw_gitb_job *j = w->j;
    (void)url;
    if (stopping(w))
        return -1;
    /* libgit2 asks again after each rejection: one try per credential. */
    if (++j->auth_calls > 1) {
        git_error_set_str(GIT_ERROR_NET, "authentication failed (credentials rejected)");
        return GIT_EAUTH;
    }
    if ((allowed & GIT_CREDENTIAL_SSH_KEY) && j->ssh_key != NULL)
        return git_credential_ssh_key_new(out, user_from_url ? user_from_url : "git", NULL,
                                          j->ssh_key, NULL);
    if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && j->token != NULL)
        return git_credential_userpass_plaintext_new(
            out, user_from_url ? user_from_url : w->c->token_username, j->token);
    git_error_set_str(GIT_ERROR_NET, "authentication required but no credential is configured");
    return GIT_EAUTH;
}

static int cb_transfer(const git_indexer_progress *stats, void *payload)
{
    (void)stats;
    return stopping(payload) ? -1 : 0;
}

static int cb_push_transfer(unsigned int current, unsigned int total, size_t bytes, void *payload)
{
    (void)current, (void)total, (void)bytes;
    return stopping(payload) ? -1 : 0;
}

static int cb_sideband(const char *str, int len, void *payload)
{
    struct work *w = payload;
    while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
        len--;
    if (len > 0)
        gw_gitb_job_log(w->j, "remote: %.*s", len > 400 ? 400 : len, str);
    return stopping(w) ? -1 : 0;
}

static int cb_update_ref(const char *ref, const char *status, void *payload)
{
    struct work *w = payload;
    (void)ref;
    if (status != NULL) {
        w->rejected = true;
        snprintf(w->reject_msg, sizeof(w->reject_msg), "%s", status);
    }
    return 0;
}

static void set_callbacks(struct work *w, git_remote_callbacks *cb)
{
    cb->credentials = cb_credentials;
    cb->transfer_progress = cb_transfer;
    cb->push_transfer_progress = cb_push_transfer;
    cb->sideband_progress = cb_sideband;
    cb->push_update_reference = cb_update_ref;
    cb->payload = w;
}

/* ------------------------------------------------------------ cache */

/* What a job's work holds, let go of at its end (a drift check renders no
 * files: nfiles is 0 there). */
static void work_finish(struct work *w)
{
    git_remote_free(w->remote);
    git_repository_free(w->repo);
    if (w->lock_fd >= 0)
        close(w->lock_fd); /* releases the flock */
    for (size_t i = 0; i < w->nfiles; i++) {
        free(w->files[i].path);
        free(w->files[i].data);
    }
    free(w->files);
    free(w->target);
    free(w->message);
}

static int open_cache(struct work *w)
{
    char hash[GW_SHA256_HEX_LEN + 1], lock[PATH_MAX];
    bool told = false;
    int rc;

    if ((rc = gw_gitb_fs_mkdirs(w->j->cache_root)) != 0)
        return gw_gitb_job_fail(w->j, "backend_error", "cannot create the cache %s: %s",
                                w->j->cache_root, strerror(-rc));
    gw_sha256_hex(w->c->repository, strlen(w->c->repository), hash);
    snprintf(w->dir, sizeof(w->dir), "%s/%.32s", w->j->cache_root, hash);
    snprintf(lock, sizeof(lock), "%s/%.32s.lock", w->j->cache_root, hash);
    w->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (w->lock_fd < 0)
        return gw_gitb_job_fail(w->j, "backend_error", "cannot open %s: %s", lock, strerror(errno));
    /* One run per repository cache at a time; this thread may wait. */
    while (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            return gw_gitb_job_fail(w->j, "backend_error", "flock: %s", strerror(errno));
        if (stopping(w))
            return gw_gitb_job_fail(w->j, "cancelled", "stopped waiting for the cache lock");
        if (!told)
            gw_gitb_job_log(w->j, "waiting for another run using the same repository cache");
        told = true;
        usleep(100 * 1000);
    }
    if (git_repository_open_ext(&w->repo, w->dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) != 0) {
        if (access(w->dir, F_OK) == 0) {
            char aside[PATH_MAX + 64];
            snprintf(aside, sizeof(aside), "%s.broken-%ld", w->dir, (long)time(NULL));
            gw_gitb_job_log(w->j, "cache is not a usable repository; moving it aside");
            if (rename(w->dir, aside) != 0)
                return gw_gitb_job_fail(w->j, "backend_error", "cannot move %s aside: %s", w->dir,
                                        strerror(errno));
        }
        if (git_repository_init(&w->repo, w->dir, 0) != 0)
            return gitb_fail(w, "init cache");
    }
    /* An anonymous in-memory remote: no URL rewriting from configuration
     * (insteadOf), nothing stored in the cache's config; libgit2 1.5 also
     * leaks PCRE2 match data on every config regex miss, which named
     * remotes trigger on each lookup. */
    git_remote_create_options ro = GIT_REMOTE_CREATE_OPTIONS_INIT;
    ro.repository = w->repo;
    ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    if (git_remote_create_with_opts(&w->remote, w->c->repository, &ro) != 0)
        return gitb_fail(w, "remote");
    return 0;
}

/* ------------------------------------------------------------ steps */

static int fetch(struct work *w)
{
    git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
    char s1[600], s2[600];
    char *specs[2] = {s1, s2};
    git_strarray arr = {specs, 2};
    const git_remote_head **heads;
    size_t n;
    char bref[300], tref[300];

    snprintf(s1, sizeof(s1), "+refs/heads/%s:refs/remotes/origin/%s", w->c->branch, w->c->branch);
    snprintf(s2, sizeof(s2), "+refs/heads/%s:refs/remotes/origin/%s", w->target, w->target);
    arr.count = strcmp(w->target, w->c->branch) == 0 ? 1 : 2;
    set_callbacks(w, &fo.callbacks);
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    w->j->auth_calls = 0;
    if (git_remote_fetch(w->remote, &arr, &fo, NULL) != 0)
        return gitb_fail(w, "fetch");
    if (git_remote_ls(&heads, &n, w->remote) != 0)
        return gitb_fail(w, "list remote references");
    snprintf(bref, sizeof(bref), "refs/heads/%s", w->c->branch);
    snprintf(tref, sizeof(tref), "refs/heads/%s", w->target);
    w->base_exists = w->tip_exists = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(heads[i]->name, bref) == 0) {
            w->base = heads[i]->oid;
            w->base_exists = true;
        }
        if (strcmp(heads[i]->name, tref) == 0) {
            w->tip = heads[i]->oid;
            w->tip_exists = true;
        }
    }
    if (!w->base_exists)
        return gw_gitb_job_fail(w->j, "backend_error", "base branch '%s' not found in %s",
                                w->c->branch, w->c->repository);
    return 0;
}

static json_t *changed_files(struct work *w, git_commit *commit)
{
    git_commit *parent = NULL;
    git_tree *a = NULL, *b = NULL;
    git_diff *diff = NULL;
    json_t *out = json_array();

    if (git_commit_parentcount(commit) > 0 && git_commit_parent(&parent, commit, 0) == 0)
        git_commit_tree(&a, parent);
    if (out == NULL || git_commit_tree(&b, commit) != 0 ||
        git_diff_tree_to_tree(&diff, w->repo, a, b, NULL) != 0) {
        json_decref(out);
        out = NULL;
        goto done;
    }
    for (size_t i = 0; i < git_diff_num_deltas(diff); i++) {
        const git_diff_delta *d = git_diff_get_delta(diff, i);
        json_array_append_new(out,
                              json_string(d->new_file.path ? d->new_file.path : d->old_file.path));
    }
done:
    git_diff_free(diff);
    git_tree_free(a);
    git_tree_free(b);
    git_commit_free(parent);
    return out;
}

/* What the run wrote, as the repository holds it in `oid`'s tree: one
 * {path, blob} per destination file, the baseline a later drift check
 * compares the branch's head with (docs/drift.md). A replayed run's commit
 * was rendered by an earlier attempt: a path it does not hold (the
 * templates changed on disk since) is left out rather than invented. */
static json_t *written_files(struct work *w, const git_oid *oid)
{
    git_commit *commit = NULL;
    git_tree *tree = NULL;
    json_t *out = json_array();

    if (out == NULL || git_commit_lookup(&commit, w->repo, oid) != 0 ||
        git_commit_tree(&tree, commit) != 0) {
        json_decref(out);
        out = NULL;
        goto done;
    }
    for (size_t i = 0; i < w->nfiles; i++) {
        git_tree_entry *e = NULL;
        char blob[GIT_OID_HEXSZ + 1];
        int rc = git_tree_entry_bypath(&e, tree, w->files[i].path);
        if (rc == GIT_ENOTFOUND)
            continue;
        if (rc != 0) {
            json_decref(out);
            out = NULL;
            goto done;
        }
        git_oid_tostr(blob, sizeof(blob), git_tree_entry_id(e));
        git_tree_entry_free(e);
        json_array_append_new(out, json_pack("{s:s, s:s}", "path", w->files[i].path, "blob", blob));
    }
done:
    git_tree_free(tree);
    git_commit_free(commit);
    return out;
}

static int succeed(struct work *w, const git_oid *oid, git_commit *commit, bool replayed)
{
    char sha[GIT_OID_HEXSZ + 1];
    json_t *files = commit ? changed_files(w, commit) : json_array();
    json_t *written = written_files(w, oid);
    git_oid_tostr(sha, sizeof(sha), oid);
    if (written == NULL) {
        json_decref(files);
        return gitb_fail(w, "read back the written files");
    }
    w->j->outputs = json_pack("{s:s, s:s, s:o?, s:o}", "commit", sha, "branch", w->target,
                              "changed_files", files, "files", written);
    if (w->j->outputs == NULL)
        return gw_gitb_job_fail(w->j, "backend_error", "out of memory");
    if (replayed)
        gw_gitb_job_log(w->j, "commit %s for this run is already on %s; not pushing again", sha,
                        w->target);
    return 0;
}

/* Looks for our trailer in the last HISTORY_SCAN commits from `from`. */
static int find_trailer(struct work *w, const git_oid *from, git_oid *found)
{
    git_revwalk *walk = NULL;
    git_oid oid;
    int hit = 0;

    if (git_revwalk_new(&walk, w->repo) != 0 || git_revwalk_push(walk, from) != 0) {
        git_revwalk_free(walk);
        return gitb_fail(w, "history walk");
    }
    git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
    for (int n = 0; n < HISTORY_SCAN && !hit && git_revwalk_next(&oid, walk) == 0; n++) {
        git_commit *c;
        git_message_trailer_array t = {0};
        if (git_commit_lookup(&c, w->repo, &oid) != 0)
            continue;
        const char *msg = git_commit_message(c);
        if (msg != NULL && strstr(msg, w->j->run_id) != NULL &&
            git_message_trailers(&t, msg) == 0) {
            for (size_t i = 0; i < t.count; i++)
                if (strcmp(t.trailers[i].key, TRAILER_KEY) == 0 &&
                    strcmp(t.trailers[i].value, w->j->run_id) == 0)
                    hit = 1;
            git_message_trailer_array_free(&t);
        }
        git_commit_free(c);
        if (hit)
            *found = oid;
    }
    git_revwalk_free(walk);
    return hit;
}

/* The author from the requester's subject: a canonical subject
 * (user:default/alice, docs/policy.md#subjects) authors as its name part;
 * an e-mail name is used as is, anything else becomes <name>@<domain> with
 * odd bytes turned '-'. */
static int make_author(struct work *w, git_signature **out)
{
    const char *s = w->j->requested_by ? w->j->requested_by : "";
    const char *colon = strchr(s, ':'), *slash = strrchr(s, '/');
    if (colon != NULL && slash != NULL && slash > colon && slash[1] != '\0')
        s = slash + 1;
    char name[200], local[65], email[330];
    size_t n = 0, l = 0;
    bool is_email = strchr(s, '@') != NULL && strchr(s, '@') == strrchr(s, '@') && s[0] != '@';

    for (const char *p = s; *p && n + 1 < sizeof(name); p++)
        if ((unsigned char)*p >= 0x20 && *p != 0x7f && *p != '<' && *p != '>')
            name[n++] = *p;
    name[n] = '\0';
    for (const char *p = s; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '+' || ch == '-' ||
                  (is_email && ch == '@');
        is_email &= ok;
    }
    if (is_email && strlen(s) < sizeof(email) && s[strlen(s) - 1] != '@') {
        snprintf(email, sizeof(email), "%s", s);
    } else {
        for (const char *p = s; *p && l + 1 < sizeof(local); p++) {
            char ch = *p;
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '+' || ch == '-';
            local[l++] = ok ? ch : '-';
        }
        local[l] = '\0';
        snprintf(email, sizeof(email), "%s@%s", l ? local : "unknown", w->c->email_domain);
    }
    if (git_signature_now(out, n ? name : "unknown", email) != 0)
        return gitb_fail(w, "author");
    return 0;
}

/* Builds the commit on `parent_oid`. *same = true when nothing changed. */
static int make_commit(struct work *w, const git_oid *parent_oid, git_oid *out, bool *same)
{
    git_commit *parent = NULL;
    git_index *idx = NULL;
    git_tree *tree = NULL;
    git_signature *author = NULL, *committer = NULL;
    git_oid tree_oid;
    git_checkout_options co = GIT_CHECKOUT_OPTIONS_INIT;
    char committer_email[300], msg[700];
    int rc = -1;

    if (git_commit_lookup(&parent, w->repo, parent_oid) != 0) {
        gitb_fail(w, "look up the parent commit");
        goto out;
    }
    co.checkout_strategy =
        GIT_CHECKOUT_FORCE | GIT_CHECKOUT_REMOVE_UNTRACKED | GIT_CHECKOUT_REMOVE_IGNORED;
    if (git_checkout_tree(w->repo, (git_object *)parent, &co) != 0 ||
        git_repository_set_head_detached(w->repo, parent_oid) != 0) {
        gitb_fail(w, "check out");
        goto out;
    }
    if (git_repository_index(&idx, w->repo) != 0) {
        gitb_fail(w, "index");
        goto out;
    }
    for (size_t i = 0; i < w->nfiles; i++) {
        struct rendered *r = &w->files[i];
        const git_index_entry *old = git_index_get_bypath(idx, r->path, 0);
        git_index_entry e;
        int wrc = gw_gitb_fs_write(git_repository_workdir(w->repo), r->path, r->data, r->len, msg,
                                   sizeof(msg));
        if (wrc != 0) {
            gw_gitb_job_fail(w->j, wrc == GW_EINVAL ? "invalid_path" : "backend_error", "%s", msg);
            goto out;
        }
        memset(&e, 0, sizeof(e));
        e.path = r->path;
        e.mode = old && old->mode == GIT_FILEMODE_BLOB_EXECUTABLE ? GIT_FILEMODE_BLOB_EXECUTABLE
                                                                  : GIT_FILEMODE_BLOB;
        if (git_index_add_from_buffer(idx, &e, r->data, r->len) != 0) {
            gitb_fail(w, "stage");
            goto out;
        }
    }
    if (git_index_write_tree(&tree_oid, idx) != 0 || git_index_write(idx) != 0 ||
        git_tree_lookup(&tree, w->repo, &tree_oid) != 0) {
        gitb_fail(w, "write tree");
        goto out;
    }
    *same = git_oid_equal(&tree_oid, git_commit_tree_id(parent));
    if (*same) {
        *out = *parent_oid;
        rc = 0;
        goto out;
    }
    snprintf(committer_email, sizeof(committer_email), "gangway@%s", w->c->email_domain);
    if (make_author(w, &author) != 0)
        goto out;
    if (git_signature_now(&committer, "Gangway", committer_email) != 0 ||
        git_commit_create(out, w->repo, NULL, author, committer, NULL, w->message, tree, 1,
                          (const git_commit **)&parent) != 0) {
        gitb_fail(w, "commit");
        goto out;
    }
    git_reference *ref = NULL;
    if (git_reference_create(&ref, w->repo, PUSH_REF, out, 1, NULL) != 0) {
        gitb_fail(w, "create the push reference");
        goto out;
    }
    git_reference_free(ref);
    rc = 0;
out:
    git_signature_free(author);
    git_signature_free(committer);
    git_tree_free(tree);
    git_index_free(idx);
    git_commit_free(parent);
    return rc;
}

/* 0 pushed, 1 rejected (retry), -1 failed. */
static int push(struct work *w, const git_oid *oid, int attempt)
{
    git_push_options po = GIT_PUSH_OPTIONS_INIT;
    char spec[400], sha[GIT_OID_HEXSZ + 1];
    char *specs[1] = {spec};
    git_strarray arr = {specs, 1};
    int rc;

    git_oid_tostr(sha, sizeof(sha), oid);
    if (gw_gitb_test_before_push != NULL)
        gw_gitb_test_before_push(w->c->repository, attempt, sha);
    snprintf(spec, sizeof(spec), PUSH_REF ":refs/heads/%s", w->target);
    set_callbacks(w, &po.callbacks);
    w->rejected = false;
    w->j->auth_calls = 0;
    rc = git_remote_push(w->remote, &arr, &po);
    if (rc == GIT_ENONFASTFORWARD || (rc == 0 && w->rejected)) {
        gw_gitb_job_log(w->j, "push of %.12s to %s rejected (%s)", sha, w->target,
                        w->rejected ? w->reject_msg : "non-fast-forward");
        return 1;
    }
    if (rc != 0)
        return gitb_fail(w, "push");
    gw_gitb_job_log(w->j, "pushed %.12s to %s", sha, w->target);
    return 0;
}

/* The pull request itself is opened on the loop once this work is done
 * (git_pr.c); here only what it needs is set aside. */
static int pull_request(struct work *w)
{
    const char *nl = strchr(w->message, '\n');
    struct gw_gitb_job *j = w->j;
    if (w->c->pr_api == GW_GIT_PR_NONE)
        return 0;
    j->pr_head = strdup(w->target);
    j->pr_title = strndup(w->message, nl ? (size_t)(nl - w->message) : strlen(w->message));
    if (j->pr_head == NULL || j->pr_title == NULL ||
        asprintf(&j->pr_body, "%s\nOpened by Gangway run %s.", nl ? nl + 1 : "", j->run_id) < 0) {
        j->pr_body = NULL;
        return gw_gitb_job_fail(j, "backend_error", "out of memory");
    }
    return 0;
}

static int run_attempts(struct work *w)
{
    for (int attempt = 1; attempt <= w->c->max_retries + 1; attempt++) {
        git_oid found, commit;
        bool same = false;
        int hit;

        if (stopping(w))
            return gw_gitb_job_fail(w->j, "cancelled", "stopped");
        if (fetch(w) != 0)
            return -1;
        /* A commit of this run already pushed (a replay, or a push whose
         * answer we lost): report it instead of pushing twice. */
        hit = w->tip_exists ? find_trailer(w, &w->tip, &found) : 0;
        if (hit == 0 && (!w->tip_exists || !git_oid_equal(&w->tip, &w->base)))
            hit = find_trailer(w, &w->base, &found);
        if (hit < 0)
            return -1;
        if (hit > 0) {
            git_commit *c = NULL;
            if (git_commit_lookup(&c, w->repo, &found) != 0)
                return gitb_fail(w, "look up the pushed commit");
            int rc = succeed(w, &found, c, true);
            git_commit_free(c);
            return rc;
        }
        if (make_commit(w, w->tip_exists ? &w->tip : &w->base, &commit, &same) != 0)
            return -1;
        if (same) {
            gw_gitb_job_log(w->j, "the rendered files match %s already; nothing to commit",
                            w->tip_exists ? w->target : w->c->branch);
            if (!w->tip_exists && strcmp(w->target, w->c->branch) != 0) {
                char *b = strdup(w->c->branch);
                if (b == NULL)
                    return gw_gitb_job_fail(w->j, "backend_error", "out of memory");
                free(w->target);
                w->target = b;
            }
            return succeed(w, &commit, NULL, false);
        }
        int rc = push(w, &commit, attempt);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            git_commit *c = NULL;
            if (git_commit_lookup(&c, w->repo, &commit) != 0)
                return gitb_fail(w, "look up the commit");
            rc = succeed(w, &commit, c, false);
            git_commit_free(c);
            return rc;
        }
    }
    return gw_gitb_job_fail(w->j, "push_rejected",
                            "push to %s rejected %d times (the branch keeps moving)", w->target,
                            w->c->max_retries + 1);
}

void gw_gitb_work_run(struct gw_gitb_job *j)
{
    struct work w = {.j = j, .c = j->cfg, .lock_fd = -1};

    if (render_all(&w) != 0 || open_cache(&w) != 0)
        goto out;
    gw_gitb_job_log(j, "repository %s, base %s, target %s", j->cfg->repository, j->cfg->branch,
                    w.target);
    if (run_attempts(&w) != 0 || pull_request(&w) != 0) {
        json_decref(j->outputs);
        j->outputs = NULL;
        goto out;
    }
    j->ok = true;
out:
    work_finish(&w);
}

/* ------------------------------------------------------------ drift check */

/* Fetches only the recorded branch (never pushes) and sets *head to its tip;
 * a branch the remote no longer has is a failure: nothing to compare with. */
static int drift_fetch(struct work *w, git_oid *head)
{
    git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
    char spec[600], ref[300];
    char *specs[1] = {spec};
    git_strarray arr = {specs, 1};
    const git_remote_head **heads;
    size_t n;

    snprintf(spec, sizeof(spec), "+refs/heads/%s:refs/remotes/origin/%s", w->j->drift_branch,
             w->j->drift_branch);
    set_callbacks(w, &fo.callbacks);
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    w->j->auth_calls = 0;
    if (git_remote_fetch(w->remote, &arr, &fo, NULL) != 0)
        return gitb_fail(w, "fetch");
    if (git_remote_ls(&heads, &n, w->remote) != 0)
        return gitb_fail(w, "list remote references");
    snprintf(ref, sizeof(ref), "refs/heads/%s", w->j->drift_branch);
    for (size_t i = 0; i < n; i++)
        if (strcmp(heads[i]->name, ref) == 0) {
            *head = heads[i]->oid;
            return 0;
        }
    return gw_gitb_job_fail(w->j, "backend_error", "branch '%s' not found in %s",
                            w->j->drift_branch, w->c->repository);
}

/* Compares each recorded {path, blob} with the head's tree: "deleted" when
 * the path holds no file any more, "modified" when its blob differs. */
static int drift_compare(struct work *w, const git_oid *head)
{
    git_commit *commit = NULL;
    git_tree *tree = NULL;
    json_t *changed = json_array(), *f;
    char sha[GIT_OID_HEXSZ + 1];
    size_t i;
    int rc = -1;

    git_oid_tostr(sha, sizeof(sha), head);
    if (changed == NULL || git_commit_lookup(&commit, w->repo, head) != 0 ||
        git_commit_tree(&tree, commit) != 0) {
        gitb_fail(w, "read the head commit");
        goto out;
    }
    json_array_foreach(w->j->drift_files, i, f)
    {
        const char *path = json_string_value(json_object_get(f, "path"));
        git_oid want;
        git_tree_entry *e = NULL;
        const char *change = NULL;
        int lrc;

        git_oid_fromstr(&want, json_string_value(json_object_get(f, "blob")));
        lrc = git_tree_entry_bypath(&e, tree, path);
        if (lrc == GIT_ENOTFOUND || (lrc == 0 && git_tree_entry_type(e) != GIT_OBJECT_BLOB))
            change = "deleted";
        else if (lrc != 0) {
            gitb_fail(w, "look up a recorded path");
            goto out;
        } else if (!git_oid_equal(git_tree_entry_id(e), &want))
            change = "modified";
        git_tree_entry_free(e);
        if (change != NULL) {
            gw_gitb_job_log(w->j, "drift: %s %s since Gangway wrote it", path, change);
            json_array_append_new(changed, json_pack("{s:s, s:s}", "path", path, "change", change));
        }
    }
    if (json_array_size(changed) == 0)
        gw_gitb_job_log(w->j, "in sync: the %zu file(s) Gangway wrote match %s at %.12s",
                        json_array_size(w->j->drift_files), w->j->drift_branch, sha);
    w->j->outputs =
        json_pack("{s:{s:b, s:s, s:s, s:O}}", "reconcile", "changes", json_array_size(changed) > 0,
                  "branch", w->j->drift_branch, "commit", sha, "files", changed);
    if (w->j->outputs == NULL) {
        gw_gitb_job_fail(w->j, "backend_error", "out of memory");
        goto out;
    }
    rc = 0;
out:
    json_decref(changed);
    git_tree_free(tree);
    git_commit_free(commit);
    return rc;
}

void gw_gitb_work_drift(struct gw_gitb_job *j)
{
    struct work w = {.j = j, .c = j->cfg, .lock_fd = -1};
    git_oid head;

    if (open_cache(&w) != 0)
        goto out;
    gw_gitb_job_log(j, "drift check: repository %s, branch %s, %zu recorded file(s)",
                    j->cfg->repository, j->drift_branch, json_array_size(j->drift_files));
    if (stopping(&w)) {
        gw_gitb_job_fail(j, "cancelled", "stopped");
        goto out;
    }
    if (drift_fetch(&w, &head) != 0 || drift_compare(&w, &head) != 0) {
        json_decref(j->outputs);
        j->outputs = NULL;
        goto out;
    }
    j->ok = true;
out:
    work_finish(&w);
}
