/*
 * The Port bridge's mapping (mapping.h).
 *
 * Two message shapes:
 *
 *   current  the action's invocationMethod.payload as rendered by Port, by
 *            the convention of docs/integrations/port.md:
 *              {"run_id": "{{ .run.id }}", "user": "{{ .trigger.by.user.email }}",
 *               "port_action": "{{ .action.identifier }}",
 *               "gangway_action": "...", "inputs": {...},
 *               "ttl_seconds": ..., "justification": "..."}
 *            (gangway_action or port_action, at least one)
 *   legacy   Port's fixed envelope: context.runId, payload.action.identifier,
 *            payload.properties, trigger.by.user.email
 *
 * Actions: "actions": {"<port action>": "<gangway action>"}; a Port action
 * not listed maps to the Gangway action of the same name unless
 * "unlisted_actions": "refuse".
 *
 * Identities: "identities": {"table": {"<e-mail>": "<subject>"},
 * "domains": {"<domain>": "<template with {local}>"}, "teams": {"<subject>":
 * [...]}, "default_teams": [...]}. The table wins over the domains; e-mails
 * are compared without case; an e-mail neither maps is refused.
 */
#include "mapping.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw/subject.h"

struct pb_mapping {
    json_t *actions;       /* {port: gangway} */
    bool refuse_unlisted;  /* "unlisted_actions": "refuse" */
    json_t *table;         /* {lower-cased e-mail: subject} */
    json_t *domains;       /* {lower-cased domain: template} */
    json_t *teams;         /* {subject: [teams]} */
    json_t *default_teams; /* [teams] */
};

void pb_mapping_destroy(struct pb_mapping *m)
{
    if (m == NULL)
        return;
    json_decref(m->actions);
    json_decref(m->table);
    json_decref(m->domains);
    json_decref(m->teams);
    json_decref(m->default_teams);
    free(m);
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static bool strings_object(json_t *o)
{
    const char *k;
    json_t *v;
    if (!json_is_object(o))
        return false;
    json_object_foreach(o, k, v) if (!json_is_string(v) || json_string_length(v) == 0) return false;
    return true;
}

static bool strings_array(json_t *a)
{
    size_t i;
    json_t *v;
    if (!json_is_array(a))
        return false;
    json_array_foreach(a, i, v) if (!json_is_string(v)) return false;
    return true;
}

/* A copy of an object of strings with lower-cased keys. */
static json_t *lowered_keys(json_t *o)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        char *lk = strdup(k);
        if (lk == NULL) {
            json_decref(out);
            return NULL;
        }
        lower(lk);
        json_object_set(out, lk, v);
        free(lk);
    }
    return out;
}

struct pb_mapping *pb_mapping_from_json(json_t *doc, struct gw_error *err)
{
    static const char *const known[] = {"actions", "unlisted_actions", "identities", "comment",
                                        NULL};
    struct pb_mapping *m = calloc(1, sizeof(*m));
    json_t *ids = json_object_get(doc, "identities");
    const char *k;
    json_t *v;
    if (m == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    if (!json_is_object(doc)) {
        gw_error_set(err, GW_EINVAL, false, "the mapping must be a JSON object");
        goto fail;
    }
    json_object_foreach(doc, k, v)
    {
        bool ok = false;
        for (const char *const *a = known; *a != NULL; a++)
            ok = ok || strcmp(*a, k) == 0;
        if (!ok) {
            gw_error_set(err, GW_EINVAL, false, "/%s: unknown field", k);
            goto fail;
        }
    }
    json_t *actions = json_object_get(doc, "actions");
    if (actions != NULL && !strings_object(actions)) {
        gw_error_set(err, GW_EINVAL, false,
                     "/actions: an object of Port action identifier -> Gangway action");
        goto fail;
    }
    m->actions = actions != NULL ? json_incref(actions) : json_object();
    const char *unlisted = json_string_value(json_object_get(doc, "unlisted_actions"));
    if (json_object_get(doc, "unlisted_actions") != NULL &&
        (unlisted == NULL || (strcmp(unlisted, "refuse") != 0 && strcmp(unlisted, "same") != 0))) {
        gw_error_set(err, GW_EINVAL, false, "/unlisted_actions: \"same\" (default) or \"refuse\"");
        goto fail;
    }
    m->refuse_unlisted = unlisted != NULL && strcmp(unlisted, "refuse") == 0;
    if (ids != NULL && !json_is_object(ids)) {
        gw_error_set(err, GW_EINVAL, false, "/identities: must be an object");
        goto fail;
    }
    json_t *table = json_object_get(ids, "table"), *domains = json_object_get(ids, "domains");
    json_t *teams = json_object_get(ids, "teams"), *dteams = json_object_get(ids, "default_teams");
    if (table != NULL && !strings_object(table)) {
        gw_error_set(err, GW_EINVAL, false, "/identities/table: an object of e-mail -> subject");
        goto fail;
    }
    if (domains != NULL && !strings_object(domains)) {
        gw_error_set(err, GW_EINVAL, false,
                     "/identities/domains: an object of domain -> subject template");
        goto fail;
    }
    json_object_foreach(domains, k, v) if (strstr(json_string_value(v), "{local}") == NULL)
    {
        gw_error_set(err, GW_EINVAL, false,
                     "/identities/domains/%s: the template must contain {local}", k);
        goto fail;
    }
    if (teams != NULL) {
        bool ok = json_is_object(teams);
        json_object_foreach(teams, k, v) ok = ok && strings_array(v);
        if (!ok) {
            gw_error_set(err, GW_EINVAL, false,
                         "/identities/teams: an object of subject -> array of team names");
            goto fail;
        }
    }
    if (dteams != NULL && !strings_array(dteams)) {
        gw_error_set(err, GW_EINVAL, false, "/identities/default_teams: an array of team names");
        goto fail;
    }
    json_t *empty = json_object(); /* lowered_keys() copies, it does not steal */
    m->table = lowered_keys(table != NULL ? table : empty);
    m->domains = lowered_keys(domains != NULL ? domains : empty);
    json_decref(empty);
    m->teams = teams != NULL ? json_incref(teams) : json_object();
    m->default_teams = dteams != NULL ? json_incref(dteams) : json_array();
    if (m->table == NULL || m->domains == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto fail;
    }
    /* Subjects in their one canonical form (gw/subject.h), checked here so
     * a typo stops the bridge at start, not a person's run later. */
    json_object_foreach(m->table, k, v)
    {
        char canon[GW_SUBJECT_MAX];
        struct gw_error se;
        if (gw_subject_canonical(json_string_value(v), NULL, 0, canon, &se) < 0) {
            gw_error_set(err, GW_EINVAL, false, "/identities/table/%s: %s", k, se.message);
            goto fail;
        }
        json_object_set_new(m->table, k, json_string(canon));
    }
    json_t *canon_teams = json_object();
    json_object_foreach(m->teams, k, v)
    {
        char canon[GW_SUBJECT_MAX];
        struct gw_error se;
        if (gw_subject_canonical(k, NULL, 0, canon, &se) < 0) {
            json_decref(canon_teams);
            gw_error_set(err, GW_EINVAL, false, "/identities/teams/%s: %s", k, se.message);
            goto fail;
        }
        json_object_set(canon_teams, canon, v);
    }
    json_decref(m->teams);
    m->teams = canon_teams;
    json_object_foreach(m->domains, k, v)
    {
        char probe[GW_SUBJECT_MAX], canon[GW_SUBJECT_MAX];
        struct gw_error se;
        const char *tpl = json_string_value(v), *hole = strstr(tpl, "{local}");
        snprintf(probe, sizeof(probe), "%.*smia%s", (int)(hole - tpl), tpl, hole + 7);
        if (gw_subject_canonical(probe, NULL, 0, canon, &se) < 0) {
            gw_error_set(err, GW_EINVAL, false, "/identities/domains/%s: %s", k, se.message);
            goto fail;
        }
    }
    return m;
fail:
    pb_mapping_destroy(m);
    return NULL;
}

struct pb_mapping *pb_mapping_load(const char *path, struct gw_error *err)
{
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL) {
        gw_error_set(err, GW_EPARSE, false, "%s:%d: %s", path, je.line, je.text);
        return NULL;
    }
    struct gw_error e2;
    gw_error_clear(&e2);
    struct pb_mapping *m = pb_mapping_from_json(doc, &e2);
    json_decref(doc);
    if (m == NULL)
        gw_error_set(err, e2.code, false, "%s: %s", path, e2.message);
    return m;
}

void pb_invocation_finish(struct pb_invocation *inv)
{
    json_decref(inv->inputs);
    json_decref(inv->teams);
    json_decref(inv->ttl_seconds);
    inv->inputs = inv->teams = inv->ttl_seconds = NULL;
}

static int reject(struct pb_reject *why, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int reject(struct pb_reject *why, const char *code, const char *fmt, ...)
{
    va_list ap;
    why->code = code;
    va_start(ap, fmt);
    vsnprintf(why->reason, sizeof(why->reason), fmt, ap);
    va_end(ap);
    return -1;
}

/* A string member that fits, copied; false when absent, empty or too long. */
static bool copy_str(json_t *v, char *out, size_t cap)
{
    const char *s = json_string_value(v);
    if (s == NULL || *s == '\0' || strlen(s) >= cap)
        return false;
    snprintf(out, cap, "%s", s);
    return true;
}

/* e-mail -> subject: the table, then the domain's template. */
static bool map_user(const struct pb_mapping *m, struct pb_invocation *inv)
{
    char email[PB_ID_MAX];
    snprintf(email, sizeof(email), "%s", inv->email);
    lower(email);
    const char *subject = json_string_value(json_object_get(m->table, email));
    const char *at = strrchr(email, '@');
    if (subject != NULL) {
        snprintf(inv->subject, sizeof(inv->subject), "%s", subject);
    } else if (at != NULL && at != email) {
        const char *tpl = json_string_value(json_object_get(m->domains, at + 1));
        const char *hole = tpl != NULL ? strstr(tpl, "{local}") : NULL;
        if (hole == NULL)
            return false;
        int n = snprintf(inv->subject, sizeof(inv->subject), "%.*s%.*s%s", (int)(hole - tpl), tpl,
                         (int)(at - email), email, hole + 7);
        if (n < 0 || (size_t)n >= sizeof(inv->subject))
            return false;
    } else {
        return false;
    }
    char canon[GW_SUBJECT_MAX];
    if (gw_subject_canonical(inv->subject, NULL, 0, canon, NULL) < 0)
        return false; /* a local part the subject form refuses */
    snprintf(inv->subject, sizeof(inv->subject), "%s", canon);
    json_t *t = json_object_get(m->teams, inv->subject);
    inv->teams = json_incref(t != NULL ? t : m->default_teams);
    return true;
}

int pb_invocation_parse(const struct pb_mapping *m, const char *value, size_t len,
                        struct pb_invocation *inv, struct pb_reject *why)
{
    memset(inv, 0, sizeof(*inv));
    json_error_t je;
    json_t *doc = json_loadb(value, len, JSON_REJECT_DUPLICATES, &je);
    json_t *inputs = NULL, *ttl = NULL, *just = NULL;
    int rc = -1;
    if (!json_is_object(doc)) {
        reject(why, "not_json", "the message is not a JSON object: %s",
               doc == NULL ? je.text : "another JSON type");
        goto out;
    }
    json_t *ctx = json_object_get(doc, "context"), *payload = json_object_get(doc, "payload");
    if (json_is_object(ctx) && json_object_get(ctx, "runId") != NULL) {
        inv->legacy = true;
        if (!copy_str(json_object_get(ctx, "runId"), inv->run_id, sizeof(inv->run_id))) {
            reject(why, "missing_run_id", "context.runId is missing or not a string");
            goto out;
        }
        copy_str(json_object_get(json_object_get(payload, "action"), "identifier"),
                 inv->port_action, sizeof(inv->port_action));
        inputs = json_object_get(payload, "properties");
        copy_str(
            json_object_get(
                json_object_get(json_object_get(json_object_get(doc, "trigger"), "by"), "user"),
                "email"),
            inv->email, sizeof(inv->email));
        if (inv->port_action[0] == '\0') {
            reject(why, "unknown_action", "payload.action.identifier is missing");
            goto out;
        }
    } else if (json_object_get(doc, "run_id") != NULL) {
        if (!copy_str(json_object_get(doc, "run_id"), inv->run_id, sizeof(inv->run_id))) {
            reject(why, "missing_run_id", "run_id is not a non-empty string");
            goto out;
        }
        copy_str(json_object_get(doc, "port_action"), inv->port_action, sizeof(inv->port_action));
        copy_str(json_object_get(doc, "gangway_action"), inv->action, sizeof(inv->action));
        copy_str(json_object_get(doc, "user"), inv->email, sizeof(inv->email));
        inputs = json_object_get(doc, "inputs");
        ttl = json_object_get(doc, "ttl_seconds");
        just = json_object_get(doc, "justification");
        if (inv->action[0] == '\0' && inv->port_action[0] == '\0') {
            reject(why, "unknown_action", "neither gangway_action nor port_action is given");
            goto out;
        }
    } else {
        reject(why, "unknown_shape",
               "neither the payload convention (run_id, user, gangway_action, inputs) nor Port's "
               "envelope (context.runId, payload.action.identifier)");
        goto out;
    }
    if (inv->action[0] == '\0') {
        const char *to = json_string_value(json_object_get(m->actions, inv->port_action));
        if (to == NULL && m->refuse_unlisted) {
            reject(why, "unknown_action", "Port action '%s' is not in the mapping's actions",
                   inv->port_action);
            goto out;
        }
        snprintf(inv->action, sizeof(inv->action), "%s", to != NULL ? to : inv->port_action);
    }
    if (inputs != NULL && !json_is_object(inputs)) {
        reject(why, "bad_inputs", "%s must be an object",
               inv->legacy ? "payload.properties" : "inputs");
        goto out;
    }
    if (inv->email[0] == '\0') {
        reject(why, "unknown_user", "the message does not say who triggered it (%s)",
               inv->legacy ? "trigger.by.user.email" : "user");
        goto out;
    }
    if (!map_user(m, inv)) {
        reject(why, "unknown_user",
               "no identity for '%s': add it to identities.table or its domain to "
               "identities.domains",
               inv->email);
        goto out;
    }
    inv->inputs = inputs != NULL ? json_deep_copy(inputs) : json_object();
    inv->ttl_seconds = json_incref(ttl);
    if (json_is_string(just))
        snprintf(inv->justification, sizeof(inv->justification), "%s", json_string_value(just));
    rc = 0;
out:
    json_decref(doc);
    return rc;
}
