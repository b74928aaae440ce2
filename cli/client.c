/* Shared by the client commands (client.h). */
#include "client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int gw_client_problem(int status, const char *raw, char *code_out, size_t code_cap)
{
    json_t *p = raw != NULL ? json_loads(raw, 0, NULL) : NULL;
    const char *detail = json_string_value(json_object_get(p, "detail"));
    const char *code = json_string_value(json_object_get(p, "code"));
    int rc;

    if (code_out != NULL && code_cap > 0)
        snprintf(code_out, code_cap, "%s", code != NULL ? code : "");
    if (status < 0) {
        fprintf(stderr, "gangway: cannot reach the server: %s\n", raw ? raw : "?");
        json_decref(p);
        return GW_EXIT_UNREACHABLE;
    }
    fprintf(stderr, "gangway: %s (HTTP %d%s%s)\n", detail ? detail : "request failed", status,
            code ? ", " : "", code ? code : "");
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
        int rc = gw_client_problem(status, resp, code_out, code_cap);
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
