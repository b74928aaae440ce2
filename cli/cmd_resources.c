/*
 * `gangway resources [list|show|extend|delete]` (docs/cli.md): what runs
 * created and when it expires, through /v1/resources (broker/
 * api_resources.c): list with the API's filters, show one, extend its
 * lifetime, tear it down.
 *
 * Exit codes: 0 ok (an extension waiting for approval or a teardown started
 * are ok); 1 no such resource, or the broker refused the change (not
 * active, past its maximum lifetime, an extension already waiting); 2 usage
 * (bad flags, a duration or a time that is not one); 3 unreachable; 4 auth.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "commands.h"
#include "gw/error.h"

#define LIST_U                                                                                     \
    "resources [list] [--team T] [--kind K] [--status S] [--drift D] [--expiring-before TIME |"    \
    " --expiring-within DURATION] [--limit N] [--json]"
#define SHOW_U   "resources show ID [--json]"
#define EXTEND_U "resources extend ID --ttl DURATION [--justification TEXT] [--json]"
#define DELETE_U "resources delete ID [--json]"

static void owner_cell(json_t *r, char *out, size_t cap)
{
    json_t *owner = json_object_get(r, "owner");
    size_t i, off;
    json_t *t;
    snprintf(out, cap, "%s", gw_client_str(owner, "subject"));
    json_array_foreach(json_object_get(owner, "teams"), i, t)
    {
        off = strlen(out);
        snprintf(out + off, cap - off, "%s%s", i == 0 ? " (" : ",", json_string_value(t));
    }
    off = strlen(out);
    if (json_array_size(json_object_get(owner, "teams")) > 0)
        snprintf(out + off, cap - off, ")");
}

static void expires_cell(json_t *r, char *out, size_t cap)
{
    const char *at = gw_client_str(r, "expires_at");
    if (at[0] == '\0')
        snprintf(out, cap, "never");
    else
        gw_client_expiry(at, out, cap);
}

/* ---------------------------------------------------------------- list */

static int list(int argc, char **argv)
{
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL, *team = NULL, *kind = NULL, *status = NULL,
               *before = NULL, *within = NULL, *limit = "50", *drift = NULL;
    const struct gw_opt_spec specs[] = {
        GW_CLIENT_OPTS(&c, &url, &token),
        {"team", GW_OPT_STRING, &team},
        {"kind", GW_OPT_STRING, &kind, 'k'},
        {"status", GW_OPT_STRING, &status, 's'},
        {"drift", GW_OPT_STRING, &drift},
        {"expiring-before", GW_OPT_STRING, &before},
        {"expiring-within", GW_OPT_STRING, &within},
        {"limit", GW_OPT_STRING, &limit, 'l'},
        {0},
    };
    int rc = gw_client_parse("resources", LIST_U,
                             "Lists the resources you may see, newest first: active ones, or"
                             " those of --status\n(active, tearing_down, teardown_failed,"
                             " deleted). --expiring-within 2d lists those\nexpiring in the"
                             " next two days. --drift drifted (in_sync, check_failed) lists\n"
                             "those whose last drift check found that.",
                             specs, argc, argv, NULL);
    char when[40] = "";
    json_t *page = NULL;

    if (rc != GW_OPT_OK)
        return rc;
    if (strspn(limit, "0123456789") != strlen(limit) || atoi(limit) < 1 || atoi(limit) > 500)
        return gw_client_usage("resources", LIST_U, "--limit wants a number from 1 to 500, got",
                               limit);
    if (before != NULL && within != NULL)
        return gw_client_usage("resources", LIST_U,
                               "--expiring-before and --expiring-within exclude each other", NULL);
    if (within != NULL) {
        long long secs;
        if (gw_client_duration(within, &secs) != 0)
            return gw_client_usage("resources", LIST_U,
                                   "--expiring-within wants a duration (90m, 8h, 5d), got", within);
        time_t t = time(NULL) + (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        before = when;
    }
    gw_client_init(&c, url, token);

    char path[1024];
    size_t off = (size_t)snprintf(path, sizeof(path), "/v1/resources?limit=%s", limit);
    const char *names[] = {"team", "kind", "status", "expiring_before", "drift"};
    const char *values[] = {team, kind, status, before, drift};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (values[i] == NULL)
            continue;
        char *e = gw_client_escape(values[i]);
        off += (size_t)snprintf(path + off, sizeof(path) - off, "&%s=%s", names[i], e ? e : "");
        free(e);
        if (off >= sizeof(path))
            return gw_client_usage("resources", LIST_U, "the filters are too long", NULL);
    }
    rc = gw_client_call(&c, "GET", path, NULL, &page, NULL, 0);
    if (rc != GW_EXIT_OK)
        return rc;
    if (c.json) {
        gw_client_print_json(page);
        json_decref(page);
        return GW_EXIT_OK;
    }
    struct gw_table t = {
        .ncols = 8,
        .head = {"ID", "ACTION", "KIND", "NAME", "STATUS", "OWNER", "EXPIRES", "DRIFT"}};
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(page, "items"), i, r)
    {
        char owner[256], expires[64];
        owner_cell(r, owner, sizeof(owner));
        expires_cell(r, expires, sizeof(expires));
        const char *row[] = {gw_client_str(r, "id"),
                             gw_client_str(r, "action"),
                             gw_client_str(r, "kind"),
                             gw_client_str(r, "name"),
                             gw_client_str(r, "status"),
                             owner,
                             expires,
                             gw_client_str(json_object_get(r, "drift"), "status")};
        gw_table_add(&t, row);
    }
    if (t.nrows == 0)
        printf("no resources\n");
    else
        gw_table_print(&t);
    json_decref(page);
    return GW_EXIT_OK;
}

/* ---------------------------------------------------------------- show */

static void print_resource(json_t *r)
{
    char owner[256], expires[64];
    owner_cell(r, owner, sizeof(owner));
    expires_cell(r, expires, sizeof(expires));
    printf("resource  %s\n", gw_client_str(r, "id"));
    printf("action    %s\n", gw_client_str(r, "action"));
    printf("kind      %s\n", gw_client_str(r, "kind"));
    printf("name      %s\n", gw_client_str(r, "name"));
    printf("status    %s%s\n", gw_client_str(r, "status"),
           json_is_true(json_object_get(r, "needs_attention")) ? " (needs attention)" : "");
    printf("owner     %s\n", owner);
    printf("created   %s by run %s\n", gw_client_str(r, "created_at"),
           gw_client_str(r, "created_by_run"));
    printf("expires   %s\n", expires);
    if (json_object_get(r, "max_expires_at") != NULL) {
        char max[64];
        gw_client_expiry(gw_client_str(r, "max_expires_at"), max, sizeof(max));
        printf("at most   %s\n", max);
    }
    if (json_object_get(r, "teardown_run") != NULL)
        printf("teardown  run %s\n", gw_client_str(r, "teardown_run"));
    json_t *drift = json_object_get(r, "drift");
    if (drift != NULL) {
        char *s = json_dumps(json_object_get(drift, "summary"), JSON_COMPACT | JSON_SORT_KEYS);
        printf("drift     %s at %s (run %s)%s%s\n", gw_client_str(drift, "status"),
               gw_client_str(drift, "checked_at"), gw_client_str(drift, "run"), s ? ": " : "",
               s ? s : "");
        free(s);
    }
    json_t *outputs = json_object_get(r, "outputs");
    if (json_object_size(outputs) > 0) {
        char *s = json_dumps(outputs, JSON_COMPACT | JSON_SORT_KEYS);
        printf("outputs   %s\n", s ? s : "");
        free(s);
    }
    json_t *ext = json_object_get(r, "pending_extension");
    if (ext != NULL) {
        char by[32];
        gw_client_duration_str((long long)json_integer_value(json_object_get(ext, "seconds")), by,
                               sizeof(by));
        printf("extension by %s asked by %s, waiting for approval (%zu decision(s) so far)\n", by,
               gw_client_str(ext, "requested_by"),
               json_array_size(json_object_get(ext, "decisions")));
        if (json_object_get(ext, "justification") != NULL)
            printf("  justification: %s\n", gw_client_str(ext, "justification"));
    }
}

/* show, extend and delete: one resource named on the line. For extend,
 * `ttl_help` is what to say when --ttl is missing, and --ttl and
 * --justification land in *ttl and *why. */
static int one(int argc, char **argv, const char *cmd, const char *usage, const char *what,
               const char *ttl_help, const char **ttl, const char **why, json_t **doc,
               struct gw_client *c)
{
    const char *url = NULL, *token = NULL;
    const struct gw_opt_spec with_ttl[] = {GW_CLIENT_OPTS(c, &url, &token),
                                           {"ttl", GW_OPT_STRING, ttl, 't'},
                                           {"justification", GW_OPT_STRING, why, 'j'},
                                           {0}};
    const struct gw_opt_spec plain[] = {GW_CLIENT_OPTS(c, &url, &token), {0}};
    long long secs = 0;
    int rc = gw_client_parse(cmd, usage, what, ttl_help ? with_ttl : plain, argc, argv, "resource");

    if (rc != GW_OPT_OK)
        return rc;
    if (ttl_help != NULL) {
        if (*ttl == NULL)
            return gw_client_usage(cmd, usage, ttl_help, NULL);
        if (gw_client_duration(*ttl, &secs) != 0) {
            fprintf(stderr,
                    "gangway %s: --ttl wants a duration: seconds (3600) or a number with s, m,"
                    " h, d or w (90m, 8h, 5d, 2w), got '%s'\n",
                    cmd, *ttl);
            return gw_client_usage(cmd, usage, NULL, NULL);
        }
    }
    gw_client_init(c, url, token);
    char path[512];
    char *id = gw_client_escape(argv[optind]);
    snprintf(path, sizeof(path), "/v1/resources/%s%s", id ? id : "",
             ttl_help != NULL ? "/extend" : "");
    free(id);
    snprintf(c->about, sizeof(c->about), "resource %s", argv[optind]);
    if (ttl_help == NULL)
        return gw_client_call(c, strcmp(cmd, "resources show") == 0 ? "GET" : "DELETE", path, NULL,
                              doc, NULL, 0);
    json_t *req = json_pack("{s:I}", "seconds", (json_int_t)secs);
    if (*why != NULL)
        json_object_set_new(req, "justification", json_string(*why));
    char *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    rc = gw_client_call(c, "POST", path, body, doc, NULL, 0);
    free(body);
    return rc;
}

static int show(int argc, char **argv)
{
    struct gw_client c = {0};
    json_t *r = NULL;
    int rc = one(argc, argv, "resources show", SHOW_U,
                 "Shows a resource: owner, lifetime, outputs, a pending extension.", NULL, NULL,
                 NULL, &r, &c);
    if (rc != GW_EXIT_OK)
        return rc;
    if (c.json)
        gw_client_print_json(r);
    else
        print_resource(r);
    json_decref(r);
    return GW_EXIT_OK;
}

static int extend(int argc, char **argv)
{
    struct gw_client c = {0};
    const char *ttl = NULL, *why = NULL;
    json_t *r = NULL;
    int rc = one(argc, argv, "resources extend", EXTEND_U,
                 "Moves a resource's expiry later by DURATION (3600, 90m, 8h, 5d, 2w), within"
                 " the action's\nmaximum lifetime. When the action wants extensions approved,"
                 " the extension waits\nfor the approvers (exit 0) and is applied when approved."
                 " --justification says why,\nfor the approvers and the audit log.",
                 "how much longer? (--ttl DURATION, e.g. --ttl 2d)", &ttl, &why, &r, &c);
    if (rc != GW_EXIT_OK)
        return rc;
    if (c.json) {
        gw_client_print_json(r);
    } else {
        json_t *ext = json_object_get(r, "pending_extension");
        char expires[64];
        expires_cell(r, expires, sizeof(expires));
        if (ext != NULL) {
            char from[256] = "";
            json_t *fake = json_pack("{s:{s:O?, s:O?, s:O?}}", "approval", "required",
                                     json_object_get(ext, "required"), "from_teams",
                                     json_object_get(ext, "from_teams"), "from_roles",
                                     json_object_get(ext, "from_roles"));
            gw_client_waiting_for(fake, from, sizeof(from));
            json_decref(fake);
            printf("resource %s: extension by %s waits for approval (%s); expires %s until then\n",
                   gw_client_str(r, "id"), ttl, from, expires);
        } else {
            printf("resource %s extended: expires %s\n", gw_client_str(r, "id"), expires);
        }
    }
    json_decref(r);
    return GW_EXIT_OK;
}

static int delete (int argc, char **argv)
{
    struct gw_client c = {0};
    json_t *r = NULL;
    int rc = one(argc, argv, "resources delete", DELETE_U,
                 "Tears a resource down now: starts its action's teardown run (exit 0 once"
                 " started;\n`gangway logs RUN --follow` follows it).",
                 NULL, NULL, NULL, &r, &c);
    if (rc != GW_EXIT_OK)
        return rc;
    if (c.json)
        gw_client_print_json(r);
    else
        printf("resource %s %s%s%s\n", gw_client_str(r, "id"), gw_client_str(r, "status"),
               json_object_get(r, "teardown_run") ? ": teardown run " : "",
               gw_client_str(r, "teardown_run"));
    json_decref(r);
    return GW_EXIT_OK;
}

int gw_cmd_resources(int argc, char **argv)
{
    if (argc >= 2 && argv[1][0] != '-') {
        if (strcmp(argv[1], "list") == 0)
            return list(argc - 1, argv + 1);
        if (strcmp(argv[1], "show") == 0)
            return show(argc - 1, argv + 1);
        if (strcmp(argv[1], "extend") == 0)
            return extend(argc - 1, argv + 1);
        if (strcmp(argv[1], "delete") == 0)
            return delete (argc - 1, argv + 1);
        fprintf(stderr, "gangway resources: unknown subcommand '%s' (list, show, extend, delete)\n",
                argv[1]);
        return GW_EXIT_USAGE;
    }
    return list(argc, argv);
}
