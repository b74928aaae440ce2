/*
 * `gangway login` and `gangway logout` (docs/cli.md): check a token against
 * GET /v1/me, then keep the URL and the token in the credentials file
 * (credentials.h) that every client command falls back on.
 *
 * Exit codes: 0 ok; 1 the credentials could not be stored or removed;
 * 2 usage (or a token with characters no header may carry); 3 server
 * unreachable; 4 the token was refused.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "client.h"
#include "commands.h"
#include "credentials.h"

/* Reads one line (the token) from stdin into buf; with echo off when stdin
 * is a terminal. Returns 0, or -1 when there is no line or it is too long. */
static int read_token(char *buf, size_t cap, bool prompt)
{
    struct termios old, quiet;
    bool tty = prompt && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fputs("Token: ", stderr);
        fflush(stderr);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = fgets(buf, (int)cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (line == NULL)
        return -1;
    size_t n = strlen(buf);
    if (n == cap - 1 && buf[n - 1] != '\n')
        return -1;
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    return 0;
}

static void print_list(const char *label, json_t *arr)
{
    size_t i;
    json_t *v;
    printf("  %s: ", label);
    if (json_array_size(arr) == 0)
        printf("(none)");
    json_array_foreach(arr, i, v) printf("%s%s", i ? ", " : "", json_string_value(v));
    putchar('\n');
}

/* Loopback hosts are the only ones a token may reach over plain http
 * without a warning. */
static bool plain_remote(const char *url)
{
    static const char *const local[] = {"http://127.", "http://localhost", "http://[::1]"};
    if (strncmp(url, "http://", 7) != 0)
        return false;
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        if (strncmp(url, local[i], strlen(local[i])) == 0)
            return false;
    return true;
}

int gw_cmd_login(int argc, char **argv)
{
    const char *U = "login [--url URL] [--token TOKEN | --token-stdin] [--json]";
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL;
    bool from_stdin = false;
    char typed[GW_CREDENTIALS_TOKEN_MAX + 2];
    char path[4096], why[512];
    json_t *me = NULL;
    const struct gw_opt_spec specs[] = {
        GW_CLIENT_OPTS(&c, &url, &token),
        {"token-stdin", GW_OPT_BOOL, &from_stdin},
        {0},
    };
    int rc = gw_client_parse(
        "login", U,
        "Checks the token against the broker (GET /v1/me), prints who it identifies,\n"
        "and stores the URL and the token for the other commands in\n"
        "${XDG_CONFIG_HOME:-~/.config}/gangway/credentials.json (mode 0600).\n"
        "Without --token or --token-stdin: GANGWAY_TOKEN, else a prompt.",
        specs, argc, argv, NULL);

    if (rc != GW_OPT_OK)
        return rc;
    if (from_stdin && token != NULL)
        return gw_client_usage("login", U, "--token and --token-stdin exclude each other", NULL);
    if (token == NULL && !from_stdin) {
        const char *env = getenv("GANGWAY_TOKEN");
        if (env != NULL && env[0] != '\0')
            token = env;
        else if (!isatty(STDIN_FILENO))
            return gw_client_usage("login", U,
                                   "which token? (--token, --token-stdin or a terminal)", NULL);
    }
    if (token == NULL) {
        if (read_token(typed, sizeof(typed), !from_stdin) != 0)
            return gw_client_usage("login", U, "no token read (one line, at most 4096 characters)",
                                   NULL);
        token = typed;
    }
    if (!gw_credentials_token_ok(token))
        return gw_client_usage("login", U,
                               "a token is 1 to 4096 printable characters without spaces", NULL);
    /* The token given here, never the stored one. */
    gw_client_init(&c, url, token);
    if (strncmp(c.url, "http://", 7) != 0 && strncmp(c.url, "https://", 8) != 0)
        return gw_client_usage("login", U, "the URL must start with http:// or https://, got",
                               c.url);
    if (plain_remote(c.url))
        fprintf(stderr, "gangway login: warning: %s is plain http; the token travels unencrypted\n",
                c.url);

    rc = gw_client_call(&c, "GET", "/v1/me", NULL, &me, NULL, 0);
    if (rc != GW_EXIT_OK)
        return rc;
    if (gw_credentials_save(c.url, c.token, why, sizeof(why)) != 0) {
        fprintf(stderr, "gangway login: %s\n", why);
        json_decref(me);
        return GW_EXIT_FAILED;
    }
    if (gw_credentials_path(path, sizeof(path), NULL) != 0)
        path[0] = '\0';
    if (c.json) {
        gw_client_print_json(me);
    } else {
        printf("logged in to %s as %s\n", c.url, gw_client_str(me, "subject"));
        print_list("teams", json_object_get(me, "teams"));
        print_list("roles", json_object_get(me, "roles"));
        printf("credentials saved in %s\n", path);
    }
    if (json_is_true(json_object_get(me, "worker")))
        fprintf(stderr, "gangway login: warning: this is a worker token; it may only claim runs\n");
    json_decref(me);
    return GW_EXIT_OK;
}

int gw_cmd_logout(int argc, char **argv)
{
    const char *U = "logout";
    const struct gw_opt_spec specs[] = {{0}};
    char path[4096], why[512];
    int rc = gw_client_parse("logout", U,
                             "Removes the credentials gangway login stored (the token"
                             " itself stays valid\non the broker until it expires or is"
                             " revoked).",
                             specs, argc, argv, NULL);

    if (rc != GW_OPT_OK)
        return rc;
    int r = gw_credentials_remove(why, sizeof(why));
    if (r < 0) {
        fprintf(stderr, "gangway logout: %s\n", why);
        return GW_EXIT_FAILED;
    }
    if (gw_credentials_path(path, sizeof(path), NULL) != 0)
        path[0] = '\0';
    if (r == 0)
        printf("not logged in (no %s)\n", path);
    else
        printf("logged out (removed %s)\n", path);
    return GW_EXIT_OK;
}
