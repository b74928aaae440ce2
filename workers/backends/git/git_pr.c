/*
 * Pull/merge requests through the hosting API, with libcurl's easy
 * interface on the worker thread (off the loop).
 *
 *   gitea, github: POST {url}/repos/{owner}/{repo}/pulls
 *                  {"title","head","base","body"} -> 201 {"html_url"}
 *   gitlab:        POST {url}/projects/{owner}%2F{repo}/merge_requests
 *                  {"source_branch","target_branch","title","description"}
 *                  -> 201 {"web_url"}
 *
 * 409/422 (one already exists for that branch, e.g. on a replay) -> list the
 * open ones for the branch and return that one. Redirects are not followed,
 * so the token never travels to another host.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "git_internal.h"

#define MAX_BODY (1u << 20)

struct resp {
    char *p;
    size_t n;
    bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct resp *r = ud;
    size_t n = size * nmemb;
    if (r->n + n > MAX_BODY) {
        r->too_big = true;
        return 0;
    }
    char *p = realloc(r->p, r->n + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + r->n, ptr, n);
    r->p = p;
    r->n += n;
    r->p[r->n] = '\0';
    return n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    struct gw_git_job *j = ud;
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&j->stop) != GW_GIT_RUN; /* non-zero aborts */
}

/* Returns the HTTP status, or -1 with the failure recorded. */
static long request(struct gw_git_job *j, const char *method, const char *url, const char *body,
                    struct resp *r)
{
    const struct gw_git_config *c = j->cfg;
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = NULL;
    char auth[600], errbuf[CURL_ERROR_SIZE] = "";
    long status = -1;
    CURLcode rc;

    if (h == NULL) {
        gw_git_job_fail(j, "backend_error", "pull request: curl_easy_init failed");
        return -1;
    }
    if (c->pr_api == GW_GIT_PR_GITLAB)
        snprintf(auth, sizeof(auth), "PRIVATE-TOKEN: %s", j->pr_token);
    else if (c->pr_api == GW_GIT_PR_GITHUB)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", j->pr_token);
    else
        snprintf(auth, sizeof(auth), "Authorization: token %s", j->pr_token);
    hdr = curl_slist_append(hdr, auth);
    hdr =
        curl_slist_append(hdr, c->pr_api == GW_GIT_PR_GITHUB ? "Accept: application/vnd.github+json"
                                                             : "Accept: application/json");
    if (body != NULL)
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "gangway");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, j);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        if (rc == CURLE_ABORTED_BY_CALLBACK)
            gw_git_job_fail(j, "cancelled", "pull request: stopped");
        else
            gw_git_job_fail(j, "backend_error", "pull request: %s %s: %s", method, url,
                            errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    }
    memset(auth, 0, sizeof(auth));
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return status;
}

static char *escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0), *out = e ? strdup(e) : NULL;
    curl_free(e);
    return out;
}

static int bad_status(struct gw_git_job *j, const char *what, long status, struct resp *r)
{
    json_t *doc = r->p ? json_loads(r->p, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(doc, "message"));
    gw_git_job_fail(j, "pull_request_failed", "pull request: %s answered HTTP %ld%s%.200s", what,
                    status, m ? ": " : "", m ? m : "");
    json_decref(doc);
    return -1;
}

/* Finds the open request from `head` (after a 409/422). */
static int find_existing(struct gw_git_job *j, const char *base_url, const char *head, char **url)
{
    const struct gw_git_config *c = j->cfg;
    char *eh = escape(head), *eb = escape(c->branch), *q = NULL;
    struct resp r = {0};
    int rc = -1;
    long st;
    json_t *doc = NULL, *item;
    size_t i;

    if (eh == NULL || eb == NULL)
        goto out;
    if (c->pr_api == GW_GIT_PR_GITLAB) {
        if (asprintf(&q, "%s?state=opened&source_branch=%s&target_branch=%s", base_url, eh, eb) < 0)
            q = NULL;
    } else if (asprintf(&q, "%s?state=open&head=%s:%s&base=%s", base_url, c->pr_owner, eh, eb) <
               0) {
        q = NULL;
    }
    if (q == NULL)
        goto out;
    if ((st = request(j, "GET", q, NULL, &r)) < 0)
        goto out;
    if (st != 200) {
        bad_status(j, "listing", st, &r);
        goto out;
    }
    doc = r.p ? json_loads(r.p, 0, NULL) : NULL;
    json_array_foreach(doc, i, item)
    {
        const char *ref =
            c->pr_api == GW_GIT_PR_GITLAB
                ? json_string_value(json_object_get(item, "source_branch"))
                : json_string_value(json_object_get(json_object_get(item, "head"), "ref"));
        const char *u = json_string_value(
            json_object_get(item, c->pr_api == GW_GIT_PR_GITLAB ? "web_url" : "html_url"));
        if (ref != NULL && u != NULL && strcmp(ref, head) == 0) {
            *url = strdup(u);
            rc = *url ? 0 : -1;
            break;
        }
    }
    if (rc != 0)
        gw_git_job_fail(j, "pull_request_failed",
                        "pull request: the API says one exists for %s but lists none", head);
out:
    json_decref(doc);
    free(r.p);
    free(q);
    free(eh);
    free(eb);
    return rc;
}

int gw_git_pr_open(struct gw_git_job *j, const char *head, const char *title, const char *body,
                   char **url)
{
    const struct gw_git_config *c = j->cfg;
    char *base_url = NULL, *payload = NULL;
    struct resp r = {0};
    json_t *req, *doc = NULL;
    long st;
    int rc = -1;
    size_t ul = strlen(c->pr_url);
    int trim = ul > 0 && c->pr_url[ul - 1] == '/';

    *url = NULL;
    if (j->pr_token == NULL || j->pr_token[0] == '\0')
        return gw_git_job_fail(j, "backend_error",
                               "pull request: environment variable %s is not set on the worker",
                               c->pr_token_env);
    if (c->pr_api == GW_GIT_PR_GITLAB) {
        if (asprintf(&base_url, "%.*s/projects/%s%%2F%s/merge_requests", (int)(ul - trim),
                     c->pr_url, c->pr_owner, c->pr_repo) < 0)
            base_url = NULL;
        req = json_pack("{s:s, s:s, s:s, s:s}", "source_branch", head, "target_branch", c->branch,
                        "title", title, "description", body);
    } else {
        if (asprintf(&base_url, "%.*s/repos/%s/%s/pulls", (int)(ul - trim), c->pr_url, c->pr_owner,
                     c->pr_repo) < 0)
            base_url = NULL;
        req = json_pack("{s:s, s:s, s:s, s:s}", "title", title, "head", head, "base", c->branch,
                        "body", body);
    }
    payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (base_url == NULL || payload == NULL) {
        gw_git_job_fail(j, "backend_error", "pull request: out of memory or bad UTF-8");
        goto out;
    }
    if ((st = request(j, "POST", base_url, payload, &r)) < 0)
        goto out;
    if (st == 409 || st == 422) {
        gw_git_job_log(j, "pull request for %s exists already (HTTP %ld); looking it up", head, st);
        rc = find_existing(j, base_url, head, url);
        goto out;
    }
    if (st != 201 && st != 200) {
        bad_status(j, "creation", st, &r);
        goto out;
    }
    doc = r.p ? json_loads(r.p, 0, NULL) : NULL;
    const char *u = json_string_value(
        json_object_get(doc, c->pr_api == GW_GIT_PR_GITLAB ? "web_url" : "html_url"));
    if (u == NULL) {
        gw_git_job_fail(j, "pull_request_failed", "pull request: the answer has no URL");
        goto out;
    }
    *url = strdup(u);
    rc = *url ? 0 : -1;
out:
    json_decref(doc);
    free(r.p);
    free(payload);
    free(base_url);
    return rc;
}
