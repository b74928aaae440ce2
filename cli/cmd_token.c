/*
 * `gangway token create|list|revoke`: API tokens for service accounts and
 * people. A token is printed once at creation; only its SHA-256 is stored.
 */
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "db.h"
#include "gw/crypto.h"
#include "gw/subject.h"
#include "options.h"
#include "token_store.h"

static const char usage_text[] =
    "usage: gangway token create --subject NAME [--team T]... [--role "
    "admin|worker|act_on_behalf]...\n"
    "                            [--expires-in SECONDS] [--description TEXT] [--pg CONNINFO]\n"
    "       gangway token list [--pg CONNINFO]\n"
    "       gangway token revoke TOKEN_ID [--pg CONNINFO]\n";

#define MAX_LIST 32

int gw_token_store_create(PGconn *conn, const char *subject, const char *const *teams, int nteams,
                          const char *const *roles, int nroles, long expires_in_s,
                          const char *description, char *token_out, char *id_out,
                          struct gw_error *err)
{
    char hash[GW_SHA256_HEX_LEN + 1], canonical[GW_SUBJECT_MAX];
    json_t *tj, *rj, *args;
    char *args_s;
    struct gw_error serr;

    /* Stored canonical (gw/subject.h): "mia", "User:Default/Mia" and
     * "user:default/mia" are one person. */
    if (gw_subject_canonical(subject, NULL, 0, canonical, &serr) < 0)
        return gw_error_set(err, GW_EINVAL, false, "--subject: %s (docs/policy.md#subjects)\n",
                            serr.message);
    subject = canonical;
    tj = json_array();
    rj = json_array();
    if (gw_token_generate(token_out, err) < 0) {
        json_decref(tj);
        json_decref(rj);
        return err ? err->code : GW_EIO;
    }
    gw_sha256_hex(token_out, strlen(token_out), hash);
    for (int i = 0; i < nteams; i++) {
        char team[GW_TEAM_MAX];
        if (gw_team_canonical(teams[i], team, &serr) < 0) {
            json_decref(tj);
            json_decref(rj);
            return gw_error_set(err, GW_EINVAL, false, "--team: %s\n", serr.message);
        }
        json_array_append_new(tj, json_string(team));
    }
    for (int i = 0; i < nroles; i++)
        json_array_append_new(rj, json_string(roles[i]));
    /* gw_token_create's named arguments (sql/functions/gw_token_create.sql). */
    args = json_pack("{s:s, s:s, s:o, s:o, s:o?, s:s?, s:s}", "hash", hash, "subject", subject,
                     "teams", tj, "roles", rj, "expires_in_seconds",
                     expires_in_s > 0 ? json_integer(expires_in_s) : NULL, "description",
                     description, "via", "gangway cli");
    args_s = args != NULL ? json_dumps(args, JSON_COMPACT) : NULL;
    json_decref(args);
    if (args_s == NULL)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    const char *params[] = {args_s};
    /* gw_token_create writes the token and its audit entry in one transaction. */
    PGresult *res =
        PQexecParams(conn, "SELECT gw_token_create($1::jsonb)", 1, NULL, params, NULL, NULL, 0);
    free(args_s);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int rc = gw_error_set(err, GW_EIO, false, "%s", PQresultErrorMessage(res));
        PQclear(res);
        return rc;
    }
    snprintf(id_out, GW_UUID_LEN + 1, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

static int valid_name(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 200)
        return 0;
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || *s == ',' || *s == '{' || *s == '}' ||
            (unsigned char)*s < 0x20)
            return 0;
    return 1;
}

/* Values of a repeated option, each checked where it stands in argv. */
struct names {
    const char *items[MAX_LIST];
    int n;
};

static int add_team(const char *value, void *dest)
{
    struct names *teams = dest;
    char canonical[GW_TEAM_MAX];
    struct gw_error err;
    if (teams->n == MAX_LIST || !valid_name(value)) {
        fprintf(stderr, "gangway token: bad or too many --team values\n");
        return 2;
    }
    if (gw_team_canonical(value, canonical, &err) < 0) {
        fprintf(stderr, "gangway token: --team: %s\n", err.message);
        return 2;
    }
    teams->items[teams->n++] = value;
    return GW_OPT_OK;
}

static int add_role(const char *value, void *dest)
{
    struct names *roles = dest;
    if (roles->n == MAX_LIST || (strcmp(value, "admin") != 0 && strcmp(value, "worker") != 0 &&
                                 strcmp(value, "act_on_behalf") != 0)) {
        fprintf(stderr, "gangway token: --role is admin, worker or act_on_behalf\n");
        return 2;
    }
    roles->items[roles->n++] = value;
    return GW_OPT_OK;
}

static int parse_expires(const char *value, void *dest)
{
    long *expires = dest;
    *expires = strtol(value, NULL, 10);
    if (*expires <= 0) {
        fprintf(stderr, "gangway token: --expires-in wants a number of seconds > 0\n");
        return 2;
    }
    return GW_OPT_OK;
}

static int token_create(int argc, char **argv)
{
    const char *subject = NULL, *pg = NULL, *description = NULL;
    struct names teams = {.n = 0}, roles = {.n = 0};
    long expires = 0;
    const struct gw_opt_spec specs[] = {
        {"subject", GW_OPT_STRING, &subject},
        {"team", GW_OPT_CALL, &teams, .call = add_team},
        {"role", GW_OPT_CALL, &roles, .call = add_role},
        {"expires-in", GW_OPT_CALL, &expires, .call = parse_expires},
        {"description", GW_OPT_STRING, &description},
        {"pg", GW_OPT_STRING, &pg},
        {0},
    };
    char token[GW_TOKEN_LEN + 1], id[GW_UUID_LEN + 1];
    struct gw_error err;
    int parsed = gw_opt_parse(argc, argv, specs, usage_text);

    if (parsed != GW_OPT_OK)
        return parsed;
    if (subject == NULL) {
        fprintf(stderr, "gangway token: --subject NAME is required\n");
        return 2;
    }
    char canonical[GW_SUBJECT_MAX];
    if (gw_subject_canonical(subject, NULL, 0, canonical, &err) < 0) {
        fprintf(stderr, "gangway token: --subject: %s (docs/policy.md#subjects)\n", err.message);
        return 2;
    }
    subject = canonical;
    PGconn *conn = gw_db_connect("token", pg);
    if (conn == NULL)
        return 1;
    gw_error_clear(&err);
    int rc = gw_token_store_create(conn, subject, teams.items, teams.n, roles.items, roles.n,
                                   expires, description, token, id, &err);
    PQfinish(conn);
    if (rc < 0) {
        fprintf(stderr, "gangway token: %s", err.message);
        return 1;
    }
    fprintf(stderr, "token %s for %s created; it is shown only once:\n", id, subject);
    printf("%s\n", token);
    return 0;
}

static int token_list(int argc, char **argv)
{
    const char *pg = argc > 2 && strcmp(argv[1], "--pg") == 0 ? argv[2] : NULL;
    PGconn *conn = gw_db_connect("token", pg);
    if (conn == NULL)
        return 1;
    PGresult *res = PQexec(conn, "SELECT id, subject, array_to_string(teams, ','),"
                                 " array_to_string(roles, ','), coalesce(expires_at::text, '-'),"
                                 " CASE WHEN revoked_at IS NULL THEN 'active' ELSE 'revoked' END"
                                 " FROM gw_api_tokens ORDER BY created_at");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "gangway token: %s", PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(conn);
        return 1;
    }
    printf("%-36s  %-20s  %-16s  %-12s  %-8s  %s\n", "ID", "SUBJECT", "TEAMS", "ROLES", "STATE",
           "EXPIRES");
    for (int i = 0; i < PQntuples(res); i++)
        printf("%-36s  %-20s  %-16s  %-12s  %-8s  %s\n", PQgetvalue(res, i, 0),
               PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
               PQgetvalue(res, i, 5), PQgetvalue(res, i, 4));
    PQclear(res);
    PQfinish(conn);
    return 0;
}

static int token_revoke(int argc, char **argv)
{
    if (argc < 2 || !gw_uuid_valid(argv[1])) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *pg = argc > 3 && strcmp(argv[2], "--pg") == 0 ? argv[3] : NULL;
    PGconn *conn = gw_db_connect("token", pg);
    if (conn == NULL)
        return 1;
    const char *params[] = {argv[1]};
    /* Revocation and its audit entry in one transaction (gw_token_revoke). */
    PGresult *res = PQexecParams(conn, "SELECT gw_token_revoke($1::uuid, 'gangway token revoke')",
                                 1, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    int n = ok && PQgetvalue(res, 0, 0)[0] == 't' ? 1 : 0;
    if (!ok)
        fprintf(stderr, "gangway token: %s", PQresultErrorMessage(res));
    else if (n == 0)
        fprintf(stderr, "gangway token: no active token %s\n", argv[1]);
    else
        fprintf(stderr, "token %s revoked (takes effect within 30 s on every broker)\n", argv[1]);
    PQclear(res);
    PQfinish(conn);
    return ok && n == 1 ? 0 : 1;
}

int gw_cmd_token(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (strcmp(argv[1], "create") == 0)
        return token_create(argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return token_list(argc - 1, argv + 1);
    if (strcmp(argv[1], "revoke") == 0)
        return token_revoke(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    fputs(usage_text, stderr);
    return 2;
}
