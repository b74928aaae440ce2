/*
 * The CLI for people: actions, runs, logs, cancel — a client of the
 * broker's HTTP API (docs/cli.md); run and rerun are in cmd_run.c. Blocking libcurl calls; this is
 * a command-line tool, never a loop thread.
 *
 * Exit codes: 0 ok; 1 the run failed, was not found or could not be
 * cancelled; 2 usage (bad flags, inputs refused by the action's schema);
 * 3 server unreachable or unavailable; 4 authentication refused.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "client.h"
#include "sse_client.h"

#define RECONNECTS 30

/* ----------------------------------------------------------------- SSE */

/* One connection of a stream (sse_client.h). Returns 0 when the server ended
 * it or on_event asked to stop, -1 when it broke (reconnect), or an exit
 * code for an answer other than 200 or a server never reached. */
static int sse_get(const struct gw_client *c, const char *path, struct gw_sse *s)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", c->url, path);
    int rc = gw_sse_get(s, url, c->token[0] ? c->token : NULL);
    if (rc == GW_SSE_UNREACHABLE) {
        fprintf(stderr, "gangway: cannot reach %s: %s\n", c->url, s->error);
        return GW_EXIT_UNREACHABLE;
    }
    if (rc > 0)
        return gw_client_problem(rc, s->buf, NULL, 0);
    return rc == GW_SSE_ENDED ? 0 : -1;
}

/* Follows the stream at `path`, reconnecting a second after each break
 * (with Last-Event-ID) until the server answers other than 200, *done (when
 * given) turns true, or RECONNECTS connections in a row brought no event:
 * then `gangway CMD: the STREAM stream keeps breaking` and exit code 3. */
static int sse_follow(const struct gw_client *c, const char *path, struct gw_sse *s,
                      const bool *done, const char *cmd, const char *stream)
{
    int rc;
    for (int tries = 0;; tries++) {
        bool had = s->got_event;
        s->got_event = false;
        rc = sse_get(c, path, s);
        if ((done != NULL && *done) || rc > 0)
            return rc;
        if (s->got_event || had)
            tries = 0;
        if (tries >= RECONNECTS) {
            fprintf(stderr, "gangway %s: the %s stream keeps breaking; giving up\n", cmd, stream);
            return GW_EXIT_UNREACHABLE;
        }
        sleep(1);
    }
}

/* ------------------------------------------------------------- actions */

int gw_cmd_actions(int argc, char **argv)
{
    const char *U = "actions [--json] [--url URL] [--token TOKEN]";
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL;
    const struct gw_opt_spec specs[] = {GW_CLIENT_OPTS(&c, &url, &token), {0}};
    json_t *list = NULL;
    int rc = gw_client_parse("actions", U, "Lists the actions this broker can run.", specs, argc,
                             argv, NULL);

    if (rc != GW_OPT_OK)
        return rc;
    gw_client_init(&c, url, token);
    rc = gw_client_call(&c, "GET", "/v1/actions", NULL, &list, NULL, 0);
    if (rc != GW_EXIT_OK)
        return rc;
    if (c.json) {
        gw_client_print_json(list);
    } else {
        struct gw_table t = {.ncols = 3, .head = {"ID", "WORKER", "TITLE"}};
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(list, "items"), i, a)
        {
            const char *row[] = {gw_client_str(a, "id"), gw_client_str(a, "worker_type"),
                                 gw_client_str(a, "title")};
            gw_table_add(&t, row);
        }
        gw_table_print(&t);
    }
    json_decref(list);
    return GW_EXIT_OK;
}

/* ---------------------------------------------------------------- runs */

struct watch {
    const struct gw_client *c;
    const char *status;
    const char *action;
};

static int on_run_event(struct gw_sse *s, const char *event, const char *data, void *arg)
{
    struct watch *w = arg;
    (void)s;
    if (strcmp(event, "run") != 0)
        return 0;
    json_t *e = json_loads(data, 0, NULL);
    if (e == NULL)
        return 0;
    if ((w->status == NULL || strcmp(gw_client_str(e, "to"), w->status) == 0) &&
        (w->action == NULL || strcmp(gw_client_str(e, "action"), w->action) == 0)) {
        if (w->c->json) {
            char *line = json_dumps(e, JSON_COMPACT);
            printf("%s\n", line ? line : "");
            free(line);
        } else {
            const char *from = gw_client_str(e, "from");
            printf("%s  %s  %-12s %s -> %s%s%s%s\n", gw_client_str(e, "at"),
                   gw_client_str(e, "run_id"), gw_client_str(e, "action"), from[0] ? from : "(new)",
                   gw_client_str(e, "to"), json_is_string(json_object_get(e, "reason")) ? " (" : "",
                   gw_client_str(e, "reason"),
                   json_is_string(json_object_get(e, "reason")) ? ")" : "");
        }
        fflush(stdout);
    }
    json_decref(e);
    return 0;
}

int gw_cmd_runs(int argc, char **argv)
{
    const char *U = "runs [--status S] [--action A] [--limit N] [--watch] [--json]";
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL, *status = NULL, *action = NULL, *limit = "20";
    bool watch = false;
    const struct gw_opt_spec specs[] = {
        GW_CLIENT_OPTS(&c, &url, &token),        {"status", GW_OPT_STRING, &status, 's'},
        {"action", GW_OPT_STRING, &action, 'a'}, {"limit", GW_OPT_STRING, &limit, 'l'},
        {"watch", GW_OPT_BOOL, &watch, 'w'},     {0},
    };
    json_t *list = NULL;
    int rc = gw_client_parse("runs", U,
                             "Lists recent runs, newest first; --watch then prints"
                             " every state change as it happens (Ctrl-C to stop).",
                             specs, argc, argv, NULL);

    if (rc != GW_OPT_OK)
        return rc;
    if (strspn(limit, "0123456789") != strlen(limit) || atoi(limit) < 1)
        return gw_client_usage("runs", U, "--limit wants a positive number, got", limit);
    gw_client_init(&c, url, token);

    char path[1024];
    char *es = status ? gw_client_escape(status) : NULL,
         *ea = action ? gw_client_escape(action) : NULL;
    snprintf(path, sizeof(path), "/v1/runs?limit=%s%s%s%s%s", limit, es ? "&status=" : "",
             es ? es : "", ea ? "&action=" : "", ea ? ea : "");
    free(es);
    free(ea);
    rc = gw_client_call(&c, "GET", path, NULL, &list, NULL, 0);
    if (rc != GW_EXIT_OK)
        return rc;
    if (c.json && !watch) {
        gw_client_print_json(list);
    } else if (!c.json) {
        struct gw_table t = {.ncols = 5, .head = {"ID", "ACTION", "STATUS", "CREATED", "REASON"}};
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(list, "items"), i, r)
        {
            const char *row[] = {gw_client_str(r, "id"),
                                 gw_client_str(json_object_get(r, "action"), "id"),
                                 gw_client_str(r, "status"), gw_client_str(r, "created_at"),
                                 gw_client_str(r, "reason")};
            gw_table_add(&t, row);
        }
        gw_table_print(&t);
    }
    json_decref(list);
    if (!watch)
        return GW_EXIT_OK;
    if (!c.json)
        printf("\nwatching for changes (Ctrl-C to stop)...\n");
    fflush(stdout);

    struct watch w = {.c = &c, .status = status, .action = action};
    struct gw_sse s = {.on_event = on_run_event, .arg = &w};
    /* A server that went away (restart, shutdown) is followed again. */
    rc = sse_follow(&c, "/v1/events", &s, NULL, "runs", "event");
    gw_sse_free(&s);
    return rc;
}

/* ---------------------------------------------------------------- logs */

struct follow {
    const struct gw_client *c;
    bool ended;
    char status[32];
};

static void print_line(const struct gw_client *c, json_t *l)
{
    if (c->json) {
        char *s = json_dumps(l, JSON_COMPACT);
        printf("%s\n", s ? s : "");
        free(s);
    } else {
        FILE *out = strcmp(gw_client_str(l, "stream"), "stderr") == 0 ? stderr : stdout;
        fprintf(out, "%s\n", gw_client_str(l, "line"));
    }
}

static int on_log_event(struct gw_sse *s, const char *event, const char *data, void *arg)
{
    struct follow *f = arg;
    (void)s;
    json_t *e = json_loads(data, 0, NULL);
    if (strcmp(event, "log") == 0 && e != NULL) {
        print_line(f->c, e);
        fflush(stdout);
    } else if (strcmp(event, "end") == 0) {
        f->ended = true;
        snprintf(f->status, sizeof(f->status), "%s", gw_client_str(e, "status"));
        if (f->c->json) {
            char *d = json_dumps(e, JSON_COMPACT);
            fprintf(stderr, "%s\n", d ? d : "");
            free(d);
        } else {
            fprintf(stderr, "run %s\n", f->status);
        }
    }
    json_decref(e);
    return 0;
}

static int logs_follow(const struct gw_client *c, const char *run_id)
{
    char path[512];
    struct follow f = {.c = c};
    struct gw_sse s = {.on_event = on_log_event, .arg = &f};
    int rc;
    snprintf(path, sizeof(path), "/v1/runs/%s/logs?follow=true", run_id);
    /* Broken before the end: resumed after the last line (Last-Event-ID). */
    rc = sse_follow(c, path, &s, &f.ended, "logs", "log");
    if (f.ended)
        rc = strcmp(f.status, "succeeded") == 0 ? GW_EXIT_OK : GW_EXIT_FAILED;
    gw_sse_free(&s);
    return rc;
}

int gw_cmd_logs(int argc, char **argv)
{
    const char *U = "logs RUN [--follow] [--json]";
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL;
    bool follow = false;
    const struct gw_opt_spec specs[] = {
        GW_CLIENT_OPTS(&c, &url, &token),
        {"follow", GW_OPT_BOOL, &follow, 'F'},
        {0},
    };
    int rc = gw_client_parse("logs", U,
                             "Prints a run's log lines (stderr lines to stderr);"
                             " --follow streams them until the run ends (exit 1 unless"
                             " it succeeded).",
                             specs, argc, argv, "run");

    if (rc != GW_OPT_OK)
        return rc;
    gw_client_init(&c, url, token);
    char *run_id = gw_client_escape(argv[optind]);
    if (run_id == NULL)
        return GW_EXIT_USAGE;
    if (follow) {
        rc = logs_follow(&c, run_id);
        free(run_id);
        return rc;
    }
    /* Page through everything logged so far. */
    long long after = 0;
    for (;;) {
        char path[512];
        json_t *page = NULL;
        snprintf(path, sizeof(path), "/v1/runs/%s/logs?after=%lld&limit=1000", run_id, after);
        rc = gw_client_call(&c, "GET", path, NULL, &page, NULL, 0);
        if (rc != GW_EXIT_OK)
            break;
        json_t *items = json_object_get(page, "items");
        size_t i;
        json_t *l;
        json_array_foreach(items, i, l)
        {
            print_line(&c, l);
            after = (long long)json_integer_value(json_object_get(l, "pos"));
        }
        size_t n = json_array_size(items);
        json_decref(page);
        if (n < 1000)
            break;
    }
    free(run_id);
    return rc;
}

/* -------------------------------------------------------------- cancel */

int gw_cmd_cancel(int argc, char **argv)
{
    static const struct gw_client_verb v = {
        .cmd = "cancel",
        .usage = "cancel RUN [--reason TEXT] [--json]",
        .what = "Cancels a run that is pending approval, queued or"
                " running (exit 1 if it has already ended).",
        .operand = "run",
        .collection = "/v1/runs",
        .verb = "cancel",
        .reason = true,
    };
    json_t *run = NULL;
    int rc = gw_client_verb(&v, argc, argv, &run);
    if (rc != GW_EXIT_OK || run == NULL)
        return rc;
    if (gw_client_run_ended(gw_client_str(run, "status")))
        printf("run %s %s\n", gw_client_str(run, "id"), gw_client_str(run, "status"));
    else
        printf("run %s: cancel requested (%s; the worker is stopping it)\n",
               gw_client_str(run, "id"), gw_client_str(run, "status"));
    json_decref(run);
    return GW_EXIT_OK;
}
