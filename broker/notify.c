/*
 * Notifications that lead somewhere (docs/webhooks.md "Routing" and
 * "Links", docs/decisions/0056): the policy's "notifications" routes, which
 * send a notification to more webhook URLs by event, action, team or the
 * approvers it waits for, and the body each destination gets: Gangway's
 * JSON with a link to the console page where the person acts, or Slack's
 * message format with a button opening that page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "notify.h"

static const char *const route_keys[] = {
    "name",    "description",    "events",         "actions", "teams", "url",
    "url_env", "approver_teams", "approver_roles", "format",  NULL,
};
static const char *const kinds[] = {"approval.requested",
                                    "approval.decided",
                                    "extension.requested",
                                    "resource.expiring",
                                    "resource.drifted",
                                    "run.break_glass",
                                    NULL};

static int fail(char *ptr, size_t pcap, char *msg, size_t mcap, const char *p, const char *m)
{
    snprintf(ptr, pcap, "%s", p);
    snprintf(msg, mcap, "%s", m);
    return -1;
}

static bool strings(const json_t *v)
{
    size_t i;
    json_t *s;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return false;
    json_array_foreach(v, i, s) if (!json_is_string(s) || json_string_length(s) == 0) return false;
    return true;
}

int gw_notify_validate(const json_t *n, char *ptr, size_t pcap, char *msg, size_t mcap)
{
    const char *key;
    json_t *v;
    if (!json_is_object(n))
        return fail(ptr, pcap, msg, mcap, "/notifications",
                    "must be an object {\"routes\": [...]}");
    json_object_foreach((json_t *)n, key,
                        v) if (strcmp(key, "routes") != 0 && strcmp(key, "description") != 0)
    {
        char p[160];
        snprintf(p, sizeof(p), "/notifications/%s", key);
        return fail(ptr, pcap, msg, mcap, p, "unknown member (expected routes, description)");
    }
    json_t *routes = json_object_get(n, "routes");
    if (!json_is_array(routes))
        return fail(ptr, pcap, msg, mcap, "/notifications/routes", "must be an array of routes");
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        char p[160];
        snprintf(p, sizeof(p), "/notifications/routes/%zu", i);
        if (!json_is_object(r))
            return fail(ptr, pcap, msg, mcap, p, "a route must be an object");
        json_object_foreach(r, key, v)
        {
            bool known = false;
            for (size_t k = 0; route_keys[k] != NULL; k++)
                known = known || strcmp(route_keys[k], key) == 0;
            if (!known) {
                snprintf(p, sizeof(p), "/notifications/routes/%zu/%s", i, key);
                return fail(ptr, pcap, msg, mcap, p,
                            "unknown member (expected name, events, actions, teams, "
                            "approver_teams, approver_roles, url, url_env, format)");
            }
        }
        static const char *const lists[] = {"events", "actions", "teams", "approver_teams",
                                            "approver_roles"};
        for (size_t k = 0; k < ARRAY_SIZE(lists); k++) {
            json_t *l = json_object_get(r, lists[k]);
            snprintf(p, sizeof(p), "/notifications/routes/%zu/%s", i, lists[k]);
            if (l != NULL && !strings(l))
                return fail(ptr, pcap, msg, mcap, p, "must be a non-empty array of strings");
        }
        size_t j;
        json_t *e;
        json_array_foreach(json_object_get(r, "events"), j, e)
        {
            bool known = false;
            for (size_t k = 0; kinds[k] != NULL; k++)
                known = known || strcmp(kinds[k], json_string_value(e)) == 0;
            if (!known) {
                snprintf(p, sizeof(p), "/notifications/routes/%zu/events/%zu", i, j);
                return fail(ptr, pcap, msg, mcap, p,
                            "unknown event (expected approval.requested, approval.decided, "
                            "extension.requested, resource.expiring, resource.drifted, "
                            "run.break_glass)");
            }
        }
        json_t *url = json_object_get(r, "url"), *env = json_object_get(r, "url_env");
        snprintf(p, sizeof(p), "/notifications/routes/%zu", i);
        if ((url == NULL) == (env == NULL))
            return fail(ptr, pcap, msg, mcap, p, "needs exactly one of url and url_env");
        if (url != NULL) {
            const char *u = json_string_value(url);
            snprintf(p, sizeof(p), "/notifications/routes/%zu/url", i);
            if (u == NULL || (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0))
                return fail(ptr, pcap, msg, mcap, p, "must be an http(s) URL");
        }
        if (env != NULL && (!json_is_string(env) || json_string_length(env) == 0)) {
            snprintf(p, sizeof(p), "/notifications/routes/%zu/url_env", i);
            return fail(ptr, pcap, msg, mcap, p, "must name an environment variable");
        }
        json_t *fmt = json_object_get(r, "format");
        if (fmt != NULL &&
            (!json_is_string(fmt) || (strcmp(json_string_value(fmt), "slack") != 0 &&
                                      strcmp(json_string_value(fmt), "gangway") != 0))) {
            snprintf(p, sizeof(p), "/notifications/routes/%zu/format", i);
            return fail(ptr, pcap, msg, mcap, p, "must be gangway or slack");
        }
        json_t *name = json_object_get(r, "name");
        if (name != NULL && (!json_is_string(name) || json_string_length(name) == 0 ||
                             json_string_length(name) > 64)) {
            snprintf(p, sizeof(p), "/notifications/routes/%zu/name", i);
            return fail(ptr, pcap, msg, mcap, p, "must be a string of 1 to 64 characters");
        }
    }
    return 0;
}

/* '*' any run, else exact (action ids and teams). */
static bool glob(const char *pat, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*pat == '*') {
            star = pat++;
            resume = s;
        } else if (*pat == *s) {
            pat++;
            s++;
        } else if (star != NULL) {
            pat = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

/* Does any pattern of `pats` match any string of `vals` (or the one `val`)? */
static bool any_match(const json_t *pats, const json_t *vals, const char *val)
{
    size_t i, j;
    json_t *p, *v;
    json_array_foreach(pats, i, p)
    {
        if (val != NULL && glob(json_string_value(p), val))
            return true;
        json_array_foreach(vals, j,
                           v) if (json_is_string(v) &&
                                  glob(json_string_value(p), json_string_value(v))) return true;
    }
    return false;
}

/* What a notification is about: the run or the resource in its payload. */
struct about {
    const char *action;
    const json_t *teams;     /* requester's or owner's teams */
    const json_t *approvers; /* the approval rule's from_teams */
    const json_t *roles;     /* ... and from_roles */
};

static struct about about_of(const json_t *payload)
{
    struct about a = {0};
    const json_t *run = json_object_get(payload, "run");
    const json_t *res = json_object_get(payload, "resource");
    if (run != NULL) {
        a.action = json_string_value(json_object_get(json_object_get(run, "action"), "id"));
        a.teams = json_object_get(json_object_get(run, "requested_by"), "teams");
        a.approvers = json_object_get(json_object_get(run, "approval"), "from_teams");
        a.roles = json_object_get(json_object_get(run, "approval"), "from_roles");
    } else if (res != NULL) {
        a.action = json_string_value(json_object_get(res, "action"));
        a.teams = json_object_get(json_object_get(res, "owner"), "teams");
        const json_t *ext = json_object_get(res, "pending_extension");
        a.approvers = json_object_get(ext, "from_teams");
        a.roles = json_object_get(ext, "from_roles");
    }
    return a;
}

json_t *gw_notify_targets(const json_t *notifications, const char *kind, const json_t *payload)
{
    json_t *out = json_array();
    struct about a = about_of(payload);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(notifications, "routes"), i, r)
    {
        json_t *l;
        if ((l = json_object_get(r, "events")) != NULL && !any_match(l, NULL, kind))
            continue;
        if ((l = json_object_get(r, "actions")) != NULL &&
            (a.action == NULL || !any_match(l, NULL, a.action)))
            continue;
        if ((l = json_object_get(r, "teams")) != NULL && !any_match(l, a.teams, NULL))
            continue;
        if ((l = json_object_get(r, "approver_teams")) != NULL && !any_match(l, a.approvers, NULL))
            continue;
        if ((l = json_object_get(r, "approver_roles")) != NULL && !any_match(l, a.roles, NULL))
            continue;
        const char *url = json_string_value(json_object_get(r, "url"));
        const char *env = json_string_value(json_object_get(r, "url_env"));
        if (url == NULL && env != NULL)
            url = getenv(env);
        if (url == NULL || url[0] == '\0')
            continue; /* an unset variable: logged at policy load, skipped here */
        const char *fmt = json_string_value(json_object_get(r, "format"));
        char name[80];
        const char *given = json_string_value(json_object_get(r, "name"));
        if (given != NULL)
            snprintf(name, sizeof(name), "%s", given);
        else
            snprintf(name, sizeof(name), "route %zu", i);
        json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "url", url, "format",
                                             fmt != NULL ? fmt : "gangway", "route", name));
    }
    return out;
}

/* The console page of a notification: the run, or the resource. */
static char *page_url(const char *public_url, const json_t *payload)
{
    const json_t *run = json_object_get(payload, "run");
    const json_t *res = json_object_get(payload, "resource");
    const char *id = json_string_value(json_object_get(run != NULL ? run : res, "id"));
    if (id == NULL)
        id = json_string_value(json_object_get(payload, "run_id"));
    if (public_url == NULL || id == NULL)
        return NULL;
    size_t n = strlen(public_url);
    while (n > 0 && public_url[n - 1] == '/')
        n--;
    char *out = NULL;
    if (asprintf(&out, "%.*s/ui/%s/%s", (int)n, public_url,
                 res != NULL && run == NULL ? "resources" : "runs", id) < 0)
        return NULL;
    return out;
}

static const char *verb_of(const char *kind)
{
    if (strcmp(kind, "approval.requested") == 0 || strcmp(kind, "extension.requested") == 0)
        return "Review and decide";
    if (strcmp(kind, "resource.expiring") == 0)
        return "Extend or delete";
    return "Open in Gangway";
}

char *gw_notify_body(const char *format, const char *kind, const char *payload_text,
                     const char *public_url)
{
    json_t *payload = json_loads(payload_text, 0, NULL);
    if (payload == NULL)
        return strdup(payload_text);
    char *url = page_url(public_url, payload);
    const char *text0 = json_string_value(json_object_get(payload, "text"));
    char *text = strdup(text0 != NULL ? text0 : kind);
    if (url != NULL && text != NULL) {
        /* "Decide with POST /v1/runs/<id>/decisions." was written for an API
         * user; a person gets the page. */
        char *api = strstr(text, " Decide with POST /v1/");
        if (api == NULL)
            api = strstr(text, " Extend it with POST /v1/");
        if (api != NULL)
            *api = '\0';
        char *linked = NULL;
        if (asprintf(&linked, "%s %s: %s", text, verb_of(kind), url) >= 0) {
            free(text);
            text = linked;
        }
        json_object_set_new(payload, "url", json_string(url));
    }
    if (text != NULL)
        json_object_set_new(payload, "text", json_string(text));
    char *body;
    if (format != NULL && strcmp(format, "slack") == 0) {
        /* Slack's incoming webhooks take {text, blocks}; text is the
         * notification fallback. Slack's mrkdwn needs &, < and > escaped. */
        size_t cap = text != NULL ? strlen(text) * 5 + 1 : 1;
        char *esc = malloc(cap), *q = esc;
        for (const char *c = text != NULL ? text : ""; esc != NULL && *c; c++)
            q += *c == '&'   ? (memcpy(q, "&amp;", 5), 5)
                 : *c == '<' ? (memcpy(q, "&lt;", 4), 4)
                 : *c == '>' ? (memcpy(q, "&gt;", 4), 4)
                             : (*q = *c, 1);
        if (esc != NULL)
            *q = '\0';
        json_t *blocks = json_pack("[{s:s, s:{s:s, s:s}}]", "type", "section", "text", "type",
                                   "mrkdwn", "text", esc != NULL ? esc : "");
        if (url != NULL && blocks != NULL)
            json_array_append_new(blocks,
                                  json_pack("{s:s, s:[{s:s, s:{s:s, s:s}, s:s, s:s, s:s}]}", "type",
                                            "actions", "elements", "type", "button", "text", "type",
                                            "plain_text", "text", verb_of(kind), "url", url,
                                            "style", "primary", "action_id", "gangway-open"));
        json_t *msg = json_pack("{s:s, s:o}", "text", esc != NULL ? esc : "", "blocks",
                                blocks != NULL ? blocks : json_array());
        body = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
        json_decref(msg);
        free(esc);
    } else {
        body = json_dumps(payload, JSON_COMPACT);
    }
    json_decref(payload);
    free(url);
    free(text);
    return body;
}
