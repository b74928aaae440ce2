/* Shared by the client commands (client.h). */
#include "client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw/error.h"
#include "http_client.h"

#define CALL_TIMEOUT_MS 30000
#define DEFAULT_URL     "http://127.0.0.1:8080"

static void strip_slashes(char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
}

static const char *nonempty_env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

void gw_client_init(struct gw_client *c, const char *url, const char *token)
{
    struct gw_credentials stored;
    bool have = false;

    if (url == NULL)
        url = nonempty_env("GANGWAY_URL");
    if (token == NULL)
        token = nonempty_env("GANGWAY_TOKEN");
    /* The file is read only when something is still missing. */
    if (url == NULL || token == NULL)
        have = gw_credentials_load(&stored) == 1;
    if (have)
        strip_slashes(stored.url);
    snprintf(c->url, sizeof(c->url), "%s", url != NULL ? url : have ? stored.url : DEFAULT_URL);
    strip_slashes(c->url);
    c->token[0] = '\0';
    if (token != NULL)
        snprintf(c->token, sizeof(c->token), "%s", token);
    else if (have && strcmp(c->url, stored.url) == 0)
        snprintf(c->token, sizeof(c->token), "%s", stored.token);
}

int gw_client_usage(const char *cmd, const char *usage, const char *msg, const char *arg)
{
    if (msg != NULL)
        fprintf(stderr, "gangway %s: %s%s%s\n", cmd, msg, arg ? " " : "", arg ? arg : "");
    fprintf(stderr, "usage: gangway %s\n", usage);
    return GW_EXIT_USAGE;
}

int gw_client_help(const char *usage, const char *what)
{
    printf("usage: gangway %s\n\n%s\n", usage, what);
    return GW_EXIT_OK;
}

int gw_client_args(const char *cmd, const char *usage, int argc, char **argv, const char *one)
{
    int want = one != NULL ? 1 : 0;
    char which[64];
    if (argc - optind == want)
        return 0;
    if (optind == argc) {
        snprintf(which, sizeof(which), "which %s?", one);
        return gw_client_usage(cmd, usage, which, NULL);
    }
    return gw_client_usage(cmd, usage, "unexpected argument", argv[optind + want]);
}

int gw_client_parse(const char *cmd, const char *usage, const char *what,
                    const struct gw_opt_spec *specs, int argc, char **argv, const char *one)
{
    int rc = gw_opt_parse(argc, argv, specs, NULL);

    if (rc == GW_OPT_HELP)
        return gw_client_help(usage, what);
    if (rc == GW_OPT_BAD)
        return gw_client_usage(cmd, usage, NULL, NULL);
    if (rc != GW_OPT_OK)
        return rc;
    return gw_client_args(cmd, usage, argc, argv, one) != 0 ? GW_EXIT_USAGE : GW_OPT_OK;
}

int gw_client_parse_many(const char *cmd, const char *usage, const char *what,
                         const struct gw_opt_spec *specs, int argc, char **argv, const char *one)
{
    int rc = gw_opt_parse(argc, argv, specs, NULL);
    char which[64];

    if (rc == GW_OPT_HELP)
        return gw_client_help(usage, what);
    if (rc == GW_OPT_BAD)
        return gw_client_usage(cmd, usage, NULL, NULL);
    if (rc != GW_OPT_OK)
        return rc;
    if (optind < argc)
        return GW_OPT_OK;
    snprintf(which, sizeof(which), "which %s?", one);
    return gw_client_usage(cmd, usage, which, NULL);
}

static int problem(const char *about, int status, const char *raw, char *code_out, size_t code_cap);

int gw_client_problem(int status, const char *raw, char *code_out, size_t code_cap)
{
    return problem("", status, raw, code_out, code_cap);
}

static int problem(const char *about, int status, const char *raw, char *code_out, size_t code_cap)
{
    json_t *p = raw != NULL ? json_loads(raw, 0, NULL) : NULL;
    const char *detail = json_string_value(json_object_get(p, "detail"));
    const char *code = json_string_value(json_object_get(p, "code"));
    int rc;

    if (code_out != NULL && code_cap > 0)
        snprintf(code_out, code_cap, "%s", code != NULL ? code : "");
    if (status < 0) {
        fprintf(stderr, "gangway: %s%scannot reach the server: %s\n", about, about[0] ? ": " : "",
                raw ? raw : "?");
        json_decref(p);
        return GW_EXIT_UNREACHABLE;
    }
    fprintf(stderr, "gangway: %s%s%s (HTTP %d%s%s)\n", about, about[0] ? ": " : "",
            detail ? detail : "request failed", status, code ? ", " : "", code ? code : "");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(p, "errors"), i, e)
    {
        fprintf(stderr, "  %s: %s\n", json_string_value(json_object_get(e, "pointer")),
                json_string_value(json_object_get(e, "message")));
    }
    if (status == 401 || status == 403)
        rc = GW_EXIT_AUTH;
    else if (status == 400 || status == 415 || status == 422)
        rc = GW_EXIT_USAGE;
    else if (status >= 500)
        rc = GW_EXIT_UNREACHABLE;
    else
        rc = GW_EXIT_FAILED;
    if (status == 401)
        fprintf(stderr, "  (gangway login, or set GANGWAY_TOKEN, or pass --token)\n");
    json_decref(p);
    return rc;
}

int gw_client_call(const struct gw_client *c, const char *method, const char *path,
                   const char *body, json_t **out, char *code_out, size_t code_cap)
{
    char url[2048];
    char *resp = NULL;
    snprintf(url, sizeof(url), "%s%s", c->url, path);
    int status =
        gw_http_call(method, url, c->token[0] ? c->token : NULL, body, CALL_TIMEOUT_MS, &resp);
    if (status < 200 || status > 299) {
        int rc = problem(c->about, status, resp, code_out, code_cap);
        free(resp);
        return rc;
    }
    *out = json_loads(resp != NULL ? resp : "", 0, NULL);
    free(resp);
    if (*out == NULL) {
        fprintf(stderr, "gangway: the server's answer is not JSON\n");
        return GW_EXIT_UNREACHABLE;
    }
    return GW_EXIT_OK;
}

/* POST {"reason": reason} (or {} when reason is NULL) to
 * COLLECTION/<id, URL-escaped>/VERB. Returns as gw_client_call. */
static int post_on(const struct gw_client *c, const char *collection, const char *id,
                   const char *verb, const char *reason, json_t **out)
{
    char path[512];
    char *e = gw_client_escape(id);
    snprintf(path, sizeof(path), "%s/%s/%s", collection, e ? e : "", verb);
    free(e);
    json_t *req = reason != NULL ? json_pack("{s:s}", "reason", reason) : json_object();
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    int rc = gw_client_call(c, "POST", path, body, out, NULL, 0);
    free(body);
    return rc;
}

int gw_client_verb(const struct gw_client_verb *v, int argc, char **argv, json_t **out)
{
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL, *reason = NULL;
    struct gw_opt_spec specs[] = {
        GW_CLIENT_OPTS(&c, &url, &token),
        {"reason", GW_OPT_STRING, &reason, 'r'},
        {0},
    };
    if (!v->reason)
        specs[ARRAY_SIZE(specs) - 2] = (struct gw_opt_spec){0};
    *out = NULL;
    int rc = gw_client_parse(v->cmd, v->usage, v->what, specs, argc, argv, v->operand);
    if (rc != GW_OPT_OK)
        return rc;
    gw_client_init(&c, url, token);
    rc = post_on(&c, v->collection, argv[optind], v->verb, reason, out);
    if (rc != GW_EXIT_OK || !c.json)
        return rc;
    gw_client_print_json(*out);
    json_decref(*out);
    *out = NULL;
    return GW_EXIT_OK;
}

char *gw_client_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *copy = e != NULL ? strdup(e) : NULL;
    curl_free(e);
    return copy;
}

void gw_client_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s != NULL)
        puts(s);
    free(s);
}

const char *gw_client_str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

void gw_table_add(struct gw_table *t, const char *const *row)
{
    char **nc = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(*nc));
    if (nc == NULL)
        return;
    t->cells = nc;
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = strdup(row[i] != NULL ? row[i] : "");
    t->nrows++;
}

void gw_table_print(struct gw_table *t)
{
    size_t w[GW_TABLE_MAX_COLS];
    for (size_t i = 0; i < t->ncols; i++)
        w[i] = strlen(t->head[i]);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            size_t n = s != NULL ? strlen(s) : 0;
            w[i] = n > w[i] ? n : w[i];
        }
    for (size_t i = 0; i < t->ncols; i++)
        printf("%-*s%s", i + 1 < t->ncols ? (int)w[i] : 0, t->head[i],
               i + 1 < t->ncols ? "  " : "\n");
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            printf("%-*s%s", i + 1 < t->ncols ? (int)w[i] : 0, s != NULL ? s : "",
                   i + 1 < t->ncols ? "  " : "\n");
        }
    for (size_t k = 0; k < t->nrows * t->ncols; k++)
        free(t->cells[k]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}

/* ----------------------------------------------------------- durations */

#define DURATION_MAX (10LL * 366 * 86400)

int gw_client_duration(const char *text, long long *secs)
{
    static const struct {
        char unit;
        long long secs;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
    size_t digits = strspn(text, "0123456789");
    long long n = 0, mult = 1;

    if (digits == 0 || digits > 12)
        return -1;
    for (size_t i = 0; i < digits; i++)
        n = n * 10 + (text[i] - '0');
    if (text[digits] != '\0') {
        size_t i;
        if (text[digits + 1] != '\0')
            return -1;
        for (i = 0; i < ARRAY_SIZE(units); i++)
            if (text[digits] == units[i].unit)
                break;
        if (i == ARRAY_SIZE(units))
            return -1;
        mult = units[i].secs;
    }
    if (n < 1 || n > DURATION_MAX / mult)
        return -1;
    *secs = n * mult;
    return 0;
}

void gw_client_duration_str(long long secs, char *out, size_t cap)
{
    static const struct {
        char unit;
        long long secs;
    } units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
    size_t off = 0;

    out[0] = '\0';
    if (secs <= 0) {
        snprintf(out, cap, "0s");
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(units) && secs > 0; i++) {
        long long n = secs / units[i].secs;
        if (n == 0)
            continue;
        int w = snprintf(out + off, cap - off, "%lld%c", n, units[i].unit);
        if (w < 0 || (size_t)w >= cap - off)
            return;
        off += (size_t)w;
        secs -= n * units[i].secs;
    }
}

/* ----------------------------------------------------------- approvals */

bool gw_client_run_ended(const char *status)
{
    static const char *const t[] = {"succeeded", "failed",   "timed_out",
                                    "cancelled", "rejected", "expired"};
    for (size_t i = 0; i < ARRAY_SIZE(t); i++)
        if (strcmp(status, t[i]) == 0)
            return true;
    return false;
}

long long gw_client_approvals_counted(json_t *run)
{
    json_t *ap = json_object_get(run, "approval");
    const char *plan = json_string_value(json_object_get(json_object_get(run, "plan"), "sha256"));
    size_t i;
    json_t *d;
    long long yes = 0;

    json_array_foreach(json_object_get(ap, "decisions"), i, d)
    {
        const char *bound = json_string_value(json_object_get(d, "plan_sha256"));
        if (strcmp(gw_client_str(d, "decision"), "approve") != 0)
            continue;
        if (plan != NULL && (bound == NULL || strcmp(bound, plan) != 0))
            continue; /* given for another plan: it does not count */
        yes++;
    }
    return yes;
}

static void join_names(json_t *arr, const char *kind, char *out, size_t cap)
{
    size_t i, off = strlen(out);
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        int n = snprintf(out + off, cap - off, "%s%s %s", off ? " or " : "", kind,
                         json_string_value(v) ? json_string_value(v) : "?");
        if (n < 0 || (size_t)n >= cap - off)
            return;
        off += (size_t)n;
    }
}

void gw_client_waiting_for(json_t *run, char *out, size_t cap)
{
    json_t *ap = json_object_get(run, "approval");
    json_t *rem = json_object_get(ap, "remaining");
    char from[256] = "";
    long long n;

    out[0] = '\0';
    if (!json_is_object(ap))
        return;
    if (json_is_integer(rem)) {
        n = (long long)json_integer_value(rem);
    } else {
        json_t *req = json_object_get(ap, "required");
        n = (json_is_integer(req) ? (long long)json_integer_value(req) : 1) -
            gw_client_approvals_counted(run);
    }
    if (n < 0)
        n = 0;
    join_names(json_object_get(ap, "from_teams"), "team", from, sizeof(from));
    join_names(json_object_get(ap, "from_roles"), "role", from, sizeof(from));
    snprintf(out, cap, "%lld more from %s", n, from[0] ? from : "anyone who may decide");
}

/* "2026-11-25T10:00:01.123456Z" -> "... (in 59m)" / "(expired)". */
void gw_client_expiry(const char *at, char *out, size_t cap)
{
    struct tm tm = {0};
    char rel[32] = "";
    if (sscanf(at, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) == 6) {
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        long left = (long)difftime(timegm(&tm), time(NULL));
        if (left <= 0)
            snprintf(rel, sizeof(rel), " (expired)");
        else if (left < 5400)
            snprintf(rel, sizeof(rel), " (in %ldm)", (left + 59) / 60);
        else if (left < 172800)
            snprintf(rel, sizeof(rel), " (in %ldh%02ldm)", left / 3600, left % 3600 / 60);
        else if (left < 30 * 86400)
            snprintf(rel, sizeof(rel), " (in %ldd%02ldh)", left / 86400, left % 86400 / 3600);
        else
            snprintf(rel, sizeof(rel), " (in %ldd)", left / 86400);
    }
    snprintf(out, cap, "%.19s%s%s", at, at[0] ? "Z" : "", rel);
}
