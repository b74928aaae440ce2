/*
 * Pull/merge requests through the hosting API, on the run's loop with the
 * library's non-blocking HTTP client (lib/gw/http_client.h), once the
 * off-loop work (clone, commit, push) is done.
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
#include "gw/http_client.h"

#define MAX_BODY           (1u << 20)
#define CONNECT_TIMEOUT_MS 10000L
#define TIMEOUT_MS         60000L

enum pr_step { PR_CREATE, PR_LIST };

struct gw_gitb_pr {
    struct gw_gitb_job *j;
    struct gw_http_client *http;
    struct gw_http_request *req;
    enum pr_step step;
    char *base_url;
    char *url; /* of the request in flight, for messages */
    char auth[600];
    void (*done)(void *arg);
    void *arg;
};

static char *escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0), *out = e ? strdup(e) : NULL;
    curl_free(e);
    return out;
}

static int bad_status(struct gw_gitb_job *j, const char *what, long status,
                      const struct gw_http_response *r)
{
    json_t *doc = r->body_len > 0 ? json_loads(r->body, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(doc, "message"));
    gw_gitb_job_fail(j, "pull_request_failed", "pull request: %s answered HTTP %ld%s%.200s", what,
                     status, m ? ": " : "", m ? m : "");
    json_decref(doc);
    return -1;
}

static void client_closed(void *arg)
{
    struct gw_gitb_pr *pr = arg;
    pr->done(pr->arg);
    memset(pr->auth, 0, sizeof(pr->auth));
    free(pr->base_url);
    free(pr->url);
    free(pr);
}

/* The end, either way: on failure the run's outputs go (as when the whole
 * run failed off the loop). */
static void pr_end(struct gw_gitb_pr *pr, int rc)
{
    if (rc != 0) {
        pr->j->ok = false;
        json_decref(pr->j->outputs);
        pr->j->outputs = NULL;
    }
    gw_http_client_destroy(pr->http, client_closed, pr);
}

static int pr_found(struct gw_gitb_pr *pr, const char *url)
{
    json_t *u = json_string(url);
    if (u == NULL || json_object_set_new(pr->j->outputs, "pull_request", u) != 0)
        return gw_gitb_job_fail(pr->j, "backend_error", "out of memory");
    gw_gitb_job_log(pr->j, "pull request: %s", url);
    return 0;
}

static void on_reply(void *arg, const struct gw_http_response *r, const struct gw_error *err);

/* Returns 0 with the request on its way, or -1 with the failure recorded. */
static int request(struct gw_gitb_pr *pr, const char *method, const char *url, const char *body)
{
    const struct gw_gitb_config *c = pr->j->cfg;
    const char *headers[] = {pr->auth,
                             c->pr_api == GW_GIT_PR_GITHUB ? "Accept: application/vnd.github+json"
                                                           : "Accept: application/json",
                             body != NULL ? "Content-Type: application/json" : NULL, NULL};
    struct gw_http_request_options o = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .connect_timeout_ms = CONNECT_TIMEOUT_MS,
        .timeout_ms = TIMEOUT_MS,
        .max_body = MAX_BODY,
    };
    struct gw_error err;
    free(pr->url);
    if ((pr->url = strdup(url)) == NULL)
        return gw_gitb_job_fail(pr->j, "backend_error", "out of memory");
    pr->req = gw_http_client_request(pr->http, &o, on_reply, pr, &err);
    if (pr->req == NULL)
        return gw_gitb_job_fail(pr->j, "backend_error", "pull request: %s %s: %s", method, url,
                                err.message);
    return 0;
}

/* Lists the open requests from the head branch (after a 409/422). */
static int list_existing(struct gw_gitb_pr *pr)
{
    const struct gw_gitb_config *c = pr->j->cfg;
    char *eh = escape(pr->j->pr_head), *eb = escape(c->branch), *q = NULL;
    int rc = -1;

    if (eh != NULL && eb != NULL) {
        if (c->pr_api == GW_GIT_PR_GITLAB) {
            if (asprintf(&q, "%s?state=opened&source_branch=%s&target_branch=%s", pr->base_url, eh,
                         eb) < 0)
                q = NULL;
        } else if (asprintf(&q, "%s?state=open&head=%s:%s&base=%s", pr->base_url, c->pr_owner, eh,
                            eb) < 0) {
            q = NULL;
        }
    }
    if (q != NULL) {
        pr->step = PR_LIST;
        rc = request(pr, "GET", q, NULL);
    }
    free(q);
    free(eh);
    free(eb);
    return rc;
}

/* The listing: the one whose head is our branch. */
static int on_list(struct gw_gitb_pr *pr, const struct gw_http_response *r)
{
    const struct gw_gitb_config *c = pr->j->cfg;
    json_t *doc, *item;
    size_t i;
    int rc = -1;

    if (r->status != 200)
        return bad_status(pr->j, "listing", r->status, r);
    doc = r->body_len > 0 ? json_loads(r->body, 0, NULL) : NULL;
    json_array_foreach(doc, i, item)
    {
        const char *ref =
            c->pr_api == GW_GIT_PR_GITLAB
                ? json_string_value(json_object_get(item, "source_branch"))
                : json_string_value(json_object_get(json_object_get(item, "head"), "ref"));
        const char *u = json_string_value(
            json_object_get(item, c->pr_api == GW_GIT_PR_GITLAB ? "web_url" : "html_url"));
        if (ref != NULL && u != NULL && strcmp(ref, pr->j->pr_head) == 0) {
            rc = pr_found(pr, u);
            break;
        }
    }
    if (i == json_array_size(doc))
        gw_gitb_job_fail(pr->j, "pull_request_failed",
                         "pull request: the API says one exists for %s but lists none",
                         pr->j->pr_head);
    json_decref(doc);
    return rc;
}

/* The creation's answer. Returns 1 when a listing was started. */
static int on_create(struct gw_gitb_pr *pr, const struct gw_http_response *r)
{
    const struct gw_gitb_config *c = pr->j->cfg;
    json_t *doc;
    int rc;

    if (r->status == 409 || r->status == 422) {
        gw_gitb_job_log(pr->j, "pull request for %s exists already (HTTP %ld); looking it up",
                        pr->j->pr_head, r->status);
        return list_existing(pr) == 0 ? 1 : -1;
    }
    if (r->status != 201 && r->status != 200)
        return bad_status(pr->j, "creation", r->status, r);
    doc = r->body_len > 0 ? json_loads(r->body, 0, NULL) : NULL;
    const char *u = json_string_value(
        json_object_get(doc, c->pr_api == GW_GIT_PR_GITLAB ? "web_url" : "html_url"));
    if (u == NULL)
        rc = gw_gitb_job_fail(pr->j, "pull_request_failed", "pull request: the answer has no URL");
    else
        rc = pr_found(pr, u);
    json_decref(doc);
    return rc;
}

static void on_reply(void *arg, const struct gw_http_response *r, const struct gw_error *err)
{
    struct gw_gitb_pr *pr = arg;
    int rc;
    pr->req = NULL;
    if (err != NULL && atomic_load(&pr->j->stop) != GW_GIT_RUN)
        rc = gw_gitb_job_fail(pr->j, "cancelled", "pull request: stopped");
    else if (err != NULL)
        rc = gw_gitb_job_fail(pr->j, "backend_error", "pull request: %s %s: %s",
                              pr->step == PR_CREATE ? "POST" : "GET", pr->url, err->message);
    else if (pr->step == PR_CREATE)
        rc = on_create(pr, r);
    else
        rc = on_list(pr, r);
    if (rc != 1)
        pr_end(pr, rc);
}

static int start_create(struct gw_gitb_pr *pr)
{
    const struct gw_gitb_config *c = pr->j->cfg;
    const struct gw_gitb_job *j = pr->j;
    size_t ul = strlen(c->pr_url);
    int trim = ul > 0 && c->pr_url[ul - 1] == '/', rc;
    char *payload = NULL;
    json_t *req;

    if (c->pr_api == GW_GIT_PR_GITLAB) {
        if (asprintf(&pr->base_url, "%.*s/projects/%s%%2F%s/merge_requests", (int)(ul - trim),
                     c->pr_url, c->pr_owner, c->pr_repo) < 0)
            pr->base_url = NULL;
        req = json_pack("{s:s, s:s, s:s, s:s}", "source_branch", j->pr_head, "target_branch",
                        c->branch, "title", j->pr_title, "description", j->pr_body);
    } else {
        if (asprintf(&pr->base_url, "%.*s/repos/%s/%s/pulls", (int)(ul - trim), c->pr_url,
                     c->pr_owner, c->pr_repo) < 0)
            pr->base_url = NULL;
        req = json_pack("{s:s, s:s, s:s, s:s}", "title", j->pr_title, "head", j->pr_head, "base",
                        c->branch, "body", j->pr_body);
    }
    payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (pr->base_url == NULL || payload == NULL)
        rc = gw_gitb_job_fail(pr->j, "backend_error", "pull request: out of memory or bad UTF-8");
    else
        rc = request(pr, "POST", pr->base_url, payload);
    free(payload);
    return rc;
}

int gw_gitb_pr_start(uv_loop_t *loop, struct gw_gitb_job *j, void (*done)(void *arg), void *arg,
                     struct gw_gitb_pr **out)
{
    const struct gw_gitb_config *c = j->cfg;
    struct gw_gitb_pr *pr;
    struct gw_error err;

    *out = NULL;
    if (j->pr_token == NULL || j->pr_token[0] == '\0')
        gw_gitb_job_fail(j, "backend_error",
                         "pull request: environment variable %s is not set on the worker",
                         c->pr_token_env);
    else if ((pr = calloc(1, sizeof(*pr))) == NULL)
        gw_gitb_job_fail(j, "backend_error", "out of memory");
    else if ((pr->http = gw_http_client_create(loop, NULL, &err)) == NULL) {
        free(pr);
        gw_gitb_job_fail(j, "backend_error", "pull request: %s", err.message);
    } else {
        pr->j = j;
        pr->done = done;
        pr->arg = arg;
        pr->step = PR_CREATE;
        if (c->pr_api == GW_GIT_PR_GITLAB)
            snprintf(pr->auth, sizeof(pr->auth), "PRIVATE-TOKEN: %s", j->pr_token);
        else if (c->pr_api == GW_GIT_PR_GITHUB)
            snprintf(pr->auth, sizeof(pr->auth), "Authorization: Bearer %s", j->pr_token);
        else
            snprintf(pr->auth, sizeof(pr->auth), "Authorization: token %s", j->pr_token);
        *out = pr;
        if (start_create(pr) != 0)
            pr_end(pr, -1); /* done follows from the close callback */
        return 0;
    }
    j->ok = false;
    json_decref(j->outputs);
    j->outputs = NULL;
    return -1;
}

void gw_gitb_pr_stop(struct gw_gitb_pr *pr)
{
    if (pr != NULL && pr->req != NULL)
        gw_http_request_cancel(pr->req);
}
