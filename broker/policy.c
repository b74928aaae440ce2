/*
 * Policy documents: parsing (strict: unknown keys, unknown permissions and
 * misplaced scopes are errors naming their JSON pointer) and decisions.
 *
 * The parsed policy keeps the document alive and borrows every string from
 * it, so freeing is one decref plus the arrays.
 */
#include "policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "catalog.h"
#include "gw/doc.h"
#include "gw/jsonptr.h"
#include "gw/log.h"
#include "gw/subject.h"
#include "notify.h"

#define POLICY_MAX_BYTES (1 << 20)
#define NAME_MAX_LEN     64

static const char *const perm_names[GW_PERM_COUNT] = {
    "run",         "read_runs",  "cancel",           "decide_approvals",
    "break_glass", "read_audit", "manage_resources", "admin",
};
static const char *const scope_names[] = {"none", "own", "team", "all"};

#define BIT(p)       (1u << (p))
#define SCOPED_PERMS (BIT(GW_PERM_READ_RUNS) | BIT(GW_PERM_CANCEL) | BIT(GW_PERM_MANAGE_RESOURCES))
#define INPUT_PERMS  (BIT(GW_PERM_RUN) | BIT(GW_PERM_DECIDE_APPROVALS) | BIT(GW_PERM_BREAK_GLASS))
#define GLOBAL_PERMS (BIT(GW_PERM_READ_AUDIT) | BIT(GW_PERM_ADMIN))

struct cond {
    const char *name; /* as written: "environment" or "/env/name" */
    char *pointer;    /* JSON pointer into the inputs (owned) */
    json_t *allowed;  /* borrowed array of scalars; strings may be globs */
};

struct grant {
    unsigned perms;
    json_t *actions; /* borrowed array of id globs, or NULL */
    json_t *tags;    /* borrowed array, or NULL */
    struct cond *conds;
    size_t n_conds;
    enum gw_scope scope;
    json_t *inputs; /* borrowed: as written, for /v1/me */
};

struct role {
    const char *name;
    struct grant *grants;
    size_t n;
};

struct binding {
    size_t *roles;
    size_t n_roles;
    json_t *subjects, *teams; /* borrowed arrays of globs, or NULL */
};

struct gw_policy {
    int refs;
    char *origin;
    json_t *doc;
    enum gw_scope defaults[GW_PERM_COUNT];
    struct role *roles;
    size_t n_roles;
    struct binding *bindings;
    size_t n_bindings;
};

const char *gw_perm_name(enum gw_perm p)
{
    return (unsigned)p < GW_PERM_COUNT ? perm_names[p] : "?";
}

const char *gw_scope_name(enum gw_scope s)
{
    return (unsigned)s < ARRAY_SIZE(scope_names) ? scope_names[s] : "?";
}

/* '*' matches any run of characters, '?' one character; nothing else is
 * special. Iterative with one backtrack point: linear in practice. */
static bool glob_match(const char *pat, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*pat == '*') {
            star = pat++;
            resume = s;
        } else if (*pat == '?' || *pat == *s) {
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

static bool is_glob(const char *s)
{
    return strpbrk(s, "*?") != NULL;
}

static bool any_glob_matches(json_t *globs, const char *s)
{
    size_t i;
    json_t *g;
    json_array_foreach(globs, i, g) if (glob_match(json_string_value(g), s)) return true;
    return false;
}

/* ------------------------------------------------------------- parsing */

struct parser {
    const char *origin;
    const char *path; /* the file, when there is one: errors name the line */
    struct gw_error *err;
};

__attribute__((format(printf, 3, 4))) static int bad(struct parser *ps, const char *ptr,
                                                     const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int line = 0, column = 0;
    if (ps->path != NULL && gw_doc_locate(ps->path, ptr, &line, &column) >= 0 && line > 0)
        return gw_error_set(ps->err, GW_EINVAL, false, "%s: line %d column %d: %s: %s", ps->origin,
                            line, column, ptr[0] ? ptr : "(document)", msg);
    return gw_error_set(ps->err, GW_EINVAL, false, "%s: %s: %s", ps->origin,
                        ptr[0] ? ptr : "(document)", msg);
}

static int oom(struct parser *ps)
{
    return gw_error_set(ps->err, GW_ENOMEM, false, "out of memory");
}

/* An object holding no keys outside `allowed` (NULL-terminated): typos must
 * not widen or silently narrow what a policy grants. `not_object` is the
 * complaint when `obj` is no object at all. */
static int keyed_object(struct parser *ps, json_t *obj, const char *ptr, const char *const *allowed,
                        const char *not_object)
{
    const char *k;
    json_t *v;
    if (!json_is_object(obj))
        return bad(ps, ptr, "%s", not_object);
    json_object_foreach(obj, k, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok = ok || strcmp(k, *a) == 0;
        if (!ok) {
            char expected[200] = "";
            for (const char *const *a = allowed; *a; a++)
                snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected), "%s%s",
                         a == allowed ? "" : ", ", *a);
            return bad(ps, ptr, "unknown key '%s' (expected one of: %s)", k, expected);
        }
    }
    return 0;
}

/* A non-empty array of non-empty strings of at most `max` bytes. */
static int string_array(struct parser *ps, json_t *v, const char *ptr, size_t max)
{
    size_t i;
    json_t *s;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return bad(ps, ptr, "must be a non-empty array of strings");
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s) || json_string_length(s) == 0 || json_string_length(s) > max)
            return bad(ps, ptr, "item %zu must be a non-empty string of at most %zu bytes", i, max);
    }
    return 0;
}

/* The optional member `key` of `obj` (at `ptr`) in *out: absent, or a
 * string_array() of items of at most `max` bytes. */
static int optional_strings(struct parser *ps, json_t *obj, const char *ptr, const char *key,
                            size_t max, json_t **out)
{
    char sub[800];
    *out = json_object_get(obj, key);
    if (*out == NULL)
        return 0;
    snprintf(sub, sizeof(sub), "%s/%s", ptr, key);
    return string_array(ps, *out, sub, max);
}

static int parse_scope(struct parser *ps, json_t *v, const char *ptr, bool none_ok,
                       enum gw_scope *out)
{
    const char *s = json_string_value(v);
    for (size_t i = none_ok ? 0 : 1; s != NULL && i < ARRAY_SIZE(scope_names); i++) {
        if (strcmp(s, scope_names[i]) == 0) {
            *out = (enum gw_scope)i;
            return 0;
        }
    }
    return bad(ps, ptr, "must be one of %s\"own\", \"team\", \"all\"", none_ok ? "\"none\", " : "");
}

/* An input name becomes a JSON pointer ("environment" -> "/environment");
 * a name starting with '/' already is one. */
static int parse_cond(struct parser *ps, const char *name, json_t *allowed, const char *ptr,
                      struct cond *c)
{
    size_t i;
    json_t *v;
    c->name = name;
    if (name[0] == '\0')
        return bad(ps, ptr, "an input name must not be empty");
    if (name[0] == '/' && !gw_jsonptr_valid(name, strlen(name)))
        return bad(ps, ptr, "'~' in an input pointer must be followed by 0 or 1 (RFC 6901)");
    if (!json_is_array(allowed) || json_array_size(allowed) == 0)
        return bad(ps, ptr, "must be a non-empty array of allowed values");
    json_array_foreach(allowed, i, v)
    {
        if (json_is_object(v) || json_is_array(v) || json_is_null(v))
            return bad(ps, ptr, "allowed value %zu must be a string, number or boolean", i);
    }
    /* Last, so that a refused condition holds nothing to free. */
    struct gw_jsonptr p = GW_JSONPTR_INIT;
    int rc = name[0] == '/' ? gw_jsonptr_append(&p, name) : gw_jsonptr_push(&p, name);
    if (rc < 0 || (c->pointer = gw_jsonptr_steal(&p)) == NULL) {
        gw_jsonptr_finish(&p);
        return oom(ps);
    }
    c->allowed = allowed;
    return 0;
}

static int parse_grant(struct parser *ps, json_t *g, const char *ptr, struct grant *out)
{
    static const char *const keys[] = {"permissions", "actions",     "tags", "inputs",
                                       "scope",       "description", NULL};
    char sub[800];
    size_t i;
    json_t *v;

    if (keyed_object(ps, g, ptr, keys, "a grant must be an object") < 0)
        return -1;
    json_t *perms = json_object_get(g, "permissions");
    snprintf(sub, sizeof(sub), "%s/permissions", ptr);
    if (string_array(ps, perms, sub, NAME_MAX_LEN) < 0)
        return -1;
    json_array_foreach(perms, i, v)
    {
        size_t p;
        for (p = 0; p < GW_PERM_COUNT; p++)
            if (strcmp(json_string_value(v), perm_names[p]) == 0)
                break;
        if (p == GW_PERM_COUNT)
            return bad(ps, sub,
                       "unknown permission '%s' (expected run, read_runs, cancel, "
                       "decide_approvals, break_glass, read_audit, manage_resources or admin)",
                       json_string_value(v));
        out->perms |= BIT(p);
    }
    out->inputs = json_object_get(g, "inputs");
    json_t *scope = json_object_get(g, "scope");
    if (optional_strings(ps, g, ptr, "actions", 128, &out->actions) < 0 ||
        optional_strings(ps, g, ptr, "tags", 64, &out->tags) < 0)
        return -1;
    if ((out->perms & GLOBAL_PERMS) && (out->actions || out->tags || out->inputs || scope))
        return bad(ps, ptr,
                   "admin and read_audit apply everywhere: a grant with them takes no "
                   "actions, tags, inputs or scope (put them in a grant of their own)");
    out->scope = GW_SCOPE_ALL;
    if (scope != NULL) {
        if (out->perms & ~SCOPED_PERMS)
            return bad(ps, ptr,
                       "'scope' applies to read_runs, cancel and manage_resources only; "
                       "put other permissions in a grant of their own");
        snprintf(sub, sizeof(sub), "%s/scope", ptr);
        if (parse_scope(ps, scope, sub, false, &out->scope) < 0)
            return -1;
    }
    if (out->inputs != NULL) {
        const char *name;
        if (out->perms & ~INPUT_PERMS)
            return bad(ps, ptr,
                       "input conditions apply to run, decide_approvals and break_glass only; "
                       "put other permissions in a grant of their own");
        if (!json_is_object(out->inputs) || json_object_size(out->inputs) == 0)
            return bad(ps, ptr, "'inputs' must be an object of input name -> allowed values");
        out->conds = calloc(json_object_size(out->inputs), sizeof(*out->conds));
        if (out->conds == NULL)
            return oom(ps);
        json_object_foreach(out->inputs, name, v)
        {
            /* The name may hold '/' or '~' (a pointer-form name does). */
            struct gw_jsonptr at = GW_JSONPTR_INIT;
            int rc = gw_jsonptr_append(&at, ptr) < 0 || gw_jsonptr_push(&at, "inputs") < 0 ||
                             gw_jsonptr_push(&at, name) < 0
                         ? oom(ps)
                         : parse_cond(ps, name, v, gw_jsonptr_str(&at), &out->conds[out->n_conds]);
            gw_jsonptr_finish(&at);
            if (rc < 0)
                return -1;
            out->n_conds++;
        }
    }
    return 0;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == n;
}

/* The name as it was written may be any length and hold '/' or '~'. */
static int bad_role_name(struct parser *ps, const char *name)
{
    struct gw_jsonptr at = GW_JSONPTR_INIT;
    int rc = gw_jsonptr_push(&at, "roles") < 0 || gw_jsonptr_push(&at, name) < 0
                 ? oom(ps)
                 : bad(ps, gw_jsonptr_str(&at), "a role name is 1 to 64 of A-Z a-z 0-9 . _ : -");
    gw_jsonptr_finish(&at);
    return rc;
}

static int parse_roles(struct parser *ps, struct gw_policy *p, json_t *roles)
{
    static const char *const keys[] = {"description", "grants", NULL};
    const char *name;
    json_t *r;
    char ptr[512];

    if (!json_is_object(roles))
        return bad(ps, "/roles", "must be an object of role name -> role");
    p->roles = calloc(json_object_size(roles) + 1, sizeof(*p->roles));
    if (p->roles == NULL)
        return oom(ps);
    json_object_foreach(roles, name, r)
    {
        struct role *role = &p->roles[p->n_roles++];
        role->name = name;
        if (!valid_name(name))
            return bad_role_name(ps, name);
        /* A valid name needs no escaping and fits. */
        snprintf(ptr, sizeof(ptr), "/roles/%s", name);
        if (keyed_object(ps, r, ptr, keys, "a role must be an object with 'grants'") < 0)
            return -1;
        json_t *grants = json_object_get(r, "grants");
        if (!json_is_array(grants))
            return bad(ps, ptr, "'grants' must be an array");
        role->grants = calloc(json_array_size(grants) + 1, sizeof(*role->grants));
        if (role->grants == NULL)
            return oom(ps);
        size_t i;
        json_t *g;
        json_array_foreach(grants, i, g)
        {
            char gptr[600];
            snprintf(gptr, sizeof(gptr), "%s/grants/%zu", ptr, i);
            role->n++;
            if (parse_grant(ps, g, gptr, &role->grants[i]) < 0)
                return -1;
        }
    }
    return 0;
}

/* A subject binding no caller can ever have is an error, not a silent
 * no-match: every principal's subject is canonical (gw/subject.h), so a
 * binding must be too. "*" (everyone) stays as it is; other globs are
 * checked like subjects with '*' and '?' allowed. */
static int check_subjects(struct parser *ps, json_t *subjects, const char *ptr)
{
    size_t i;
    json_t *v;
    json_array_foreach(subjects, i, v)
    {
        const char *written = json_string_value(v);
        char canonical[GW_SUBJECT_MAX], item[160];
        struct gw_error serr;
        snprintf(item, sizeof(item), "%s/%zu", ptr, i);
        if (strcmp(written, "*") == 0)
            continue;
        if (gw_subject_canonical(written, NULL, GW_SUBJECT_PATTERN, canonical, &serr) < 0)
            return bad(ps, item,
                       "subject '%s' can never match a caller: %s (subjects are "
                       "kind:namespace/name, e.g. user:default/mia; docs/policy.md#subjects)",
                       written, serr.message);
        if (strcmp(written, canonical) != 0)
            return bad(ps, item,
                       "subject '%s' is not canonical, so no caller ever has it: write '%s' "
                       "(docs/policy.md#subjects)",
                       written, canonical);
    }
    return 0;
}

/* Teams likewise (gw_team_canonical): "SRE" or "group:default/sre" in a
 * binding could never match the team "sre" a caller has. */
static int check_teams(struct parser *ps, json_t *teams, const char *ptr)
{
    size_t i;
    json_t *v;
    json_array_foreach(teams, i, v)
    {
        const char *written = json_string_value(v);
        char canonical[GW_TEAM_MAX], item[160];
        struct gw_error terr;
        snprintf(item, sizeof(item), "%s/%zu", ptr, i);
        if (gw_team_canonical(written, canonical, &terr) < 0)
            return bad(ps, item, "team '%s' can never match a caller: %s", written, terr.message);
        if (strcmp(written, canonical) != 0)
            return bad(ps, item,
                       "team '%s' is not canonical, so no caller ever has it: write '%s' "
                       "(docs/policy.md#subjects)",
                       written, canonical);
    }
    return 0;
}

static int parse_bindings(struct parser *ps, struct gw_policy *p, json_t *bindings)
{
    static const char *const keys[] = {"roles", "subjects", "teams", "description", NULL};
    size_t i;
    json_t *b;
    char ptr[96], sub[128];

    if (!json_is_array(bindings))
        return bad(ps, "/bindings", "must be an array");
    p->bindings = calloc(json_array_size(bindings) + 1, sizeof(*p->bindings));
    if (p->bindings == NULL)
        return oom(ps);
    json_array_foreach(bindings, i, b)
    {
        struct binding *bd = &p->bindings[p->n_bindings++];
        snprintf(ptr, sizeof(ptr), "/bindings/%zu", i);
        if (keyed_object(ps, b, ptr, keys, "a binding must be an object") < 0)
            return -1;
        json_t *roles = json_object_get(b, "roles");
        snprintf(sub, sizeof(sub), "%s/roles", ptr);
        if (string_array(ps, roles, sub, NAME_MAX_LEN) < 0)
            return -1;
        bd->roles = calloc(json_array_size(roles), sizeof(*bd->roles));
        if (bd->roles == NULL)
            return oom(ps);
        size_t j;
        json_t *rn;
        json_array_foreach(roles, j, rn)
        {
            size_t k;
            for (k = 0; k < p->n_roles; k++)
                if (strcmp(p->roles[k].name, json_string_value(rn)) == 0)
                    break;
            if (k == p->n_roles)
                return bad(ps, sub, "role '%s' is not defined under /roles", json_string_value(rn));
            bd->roles[bd->n_roles++] = k;
        }
        if (optional_strings(ps, b, ptr, "subjects", 256, &bd->subjects) < 0 ||
            optional_strings(ps, b, ptr, "teams", 256, &bd->teams) < 0)
            return -1;
        if (bd->subjects == NULL && bd->teams == NULL)
            return bad(ps, ptr, "a binding needs 'subjects' or 'teams' (\"*\" binds everyone)");
        snprintf(sub, sizeof(sub), "%s/subjects", ptr);
        if (bd->subjects != NULL && check_subjects(ps, bd->subjects, sub) < 0)
            return -1;
        snprintf(sub, sizeof(sub), "%s/teams", ptr);
        if (bd->teams != NULL && check_teams(ps, bd->teams, sub) < 0)
            return -1;
    }
    return 0;
}

/* defaults: {"read_runs"|"cancel"|"manage_resources": scope}. */
static int parse_defaults(struct parser *ps, struct gw_policy *p, json_t *defaults)
{
    static const char *const keys[] = {"read_runs", "cancel", "manage_resources", NULL};
    static const enum gw_perm perms[] = {GW_PERM_READ_RUNS, GW_PERM_CANCEL,
                                         GW_PERM_MANAGE_RESOURCES};
    if (defaults == NULL)
        return 0;
    if (keyed_object(ps, defaults, "/defaults", keys, "must be an object") < 0)
        return -1;
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(defaults, keys[i]);
        char ptr[64];
        snprintf(ptr, sizeof(ptr), "/defaults/%s", keys[i]);
        if (v != NULL && parse_scope(ps, v, ptr, true, &p->defaults[perms[i]]) < 0)
            return -1;
    }
    return 0;
}

static int parse_document(struct parser *ps, struct gw_policy *p, json_t *doc)
{
    static const char *const keys[] = {"version",  "description",   "defaults", "roles",
                                       "bindings", "notifications", NULL};
    if (keyed_object(ps, doc, "", keys, "a policy must be a JSON object") < 0)
        return -1;
    json_t *version = json_object_get(doc, "version");
    if (version != NULL && !(json_is_integer(version) && json_integer_value(version) == 1))
        return bad(ps, "/version", "only version 1 is known");
    if (parse_defaults(ps, p, json_object_get(doc, "defaults")) < 0)
        return -1;
    json_t *roles = json_object_get(doc, "roles");
    if (roles == NULL)
        return bad(ps, "/roles", "is required");
    if (parse_roles(ps, p, roles) < 0)
        return -1;
    json_t *notifications = json_object_get(doc, "notifications");
    char nptr[160], nmsg[256];
    if (notifications != NULL &&
        gw_notify_validate(notifications, nptr, sizeof(nptr), nmsg, sizeof(nmsg)) < 0)
        return bad(ps, nptr, "%s", nmsg);
    json_t *bindings = json_object_get(doc, "bindings");
    if (bindings == NULL)
        return bad(ps, "/bindings", "is required");
    return parse_bindings(ps, p, bindings);
}

const json_t *gw_policy_notifications(const struct gw_policy *p)
{
    return p != NULL ? json_object_get(p->doc, "notifications") : NULL;
}

static struct gw_policy *parse_from(json_t *doc, const char *origin, const char *path,
                                    struct gw_error *err)
{
    struct parser ps = {.origin = origin, .path = path, .err = err};
    struct gw_policy *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    p->refs = 1;
    p->origin = strdup(origin);
    p->doc = json_incref(doc);
    p->defaults[GW_PERM_READ_RUNS] = GW_SCOPE_TEAM;
    p->defaults[GW_PERM_CANCEL] = GW_SCOPE_TEAM;
    p->defaults[GW_PERM_MANAGE_RESOURCES] = GW_SCOPE_TEAM;
    if (p->origin == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        gw_policy_unref(p);
        return NULL;
    }
    if (parse_document(&ps, p, doc) < 0) {
        gw_policy_unref(p);
        return NULL;
    }
    return p;
}

struct gw_policy *gw_policy_parse(json_t *doc, const char *origin, struct gw_error *err)
{
    return parse_from(doc, origin, NULL, err);
}

struct gw_policy *gw_policy_load(const char *path, struct gw_error *err)
{
    json_t *doc = gw_doc_load_file(path, POLICY_MAX_BYTES, err);
    if (doc == NULL)
        return NULL;
    struct gw_policy *p = parse_from(doc, path, path, err);
    json_decref(doc);
    return p;
}

struct gw_policy *gw_policy_builtin(struct gw_error *err)
{
    static const char builtin[] =
        "{\"version\": 1,"
        " \"defaults\": {\"read_runs\": \"team\", \"cancel\": \"team\","
        "                \"manage_resources\": \"team\"},"
        " \"roles\": {\"everyone\": {\"description\": \"built-in: run every action\","
        "   \"grants\": [{\"permissions\": [\"run\", \"decide_approvals\"]}]}},"
        " \"bindings\": [{\"roles\": [\"everyone\"], \"subjects\": [\"*\"]}]}";
    json_t *doc = json_loads(builtin, 0, NULL);
    struct gw_policy *p = doc ? gw_policy_parse(doc, "built-in default", err) : NULL;
    json_decref(doc);
    return p;
}

struct gw_policy *gw_policy_ref(struct gw_policy *p)
{
    if (p != NULL)
        p->refs++;
    return p;
}

void gw_policy_unref(struct gw_policy *p)
{
    if (p == NULL || --p->refs > 0)
        return;
    for (size_t i = 0; i < p->n_roles; i++) {
        for (size_t j = 0; j < p->roles[i].n; j++) {
            struct grant *g = &p->roles[i].grants[j];
            for (size_t k = 0; k < g->n_conds; k++)
                free(g->conds[k].pointer);
            free(g->conds);
        }
        free(p->roles[i].grants);
    }
    free(p->roles);
    for (size_t i = 0; i < p->n_bindings; i++)
        free(p->bindings[i].roles);
    free(p->bindings);
    json_decref(p->doc);
    free(p->origin);
    free(p);
}

const char *gw_policy_origin(const struct gw_policy *p)
{
    return p->origin;
}

void gw_policy_describe(const struct gw_policy *p, char *buf, size_t cap)
{
    size_t grants = 0;
    for (size_t i = 0; i < p->n_roles; i++)
        grants += p->roles[i].n;
    snprintf(buf, cap,
             "%s: %zu role(s), %zu grant(s), %zu binding(s); by default read_runs=%s "
             "cancel=%s manage_resources=%s",
             p->origin, p->n_roles, grants, p->n_bindings,
             gw_scope_name(p->defaults[GW_PERM_READ_RUNS]),
             gw_scope_name(p->defaults[GW_PERM_CANCEL]),
             gw_scope_name(p->defaults[GW_PERM_MANAGE_RESOURCES]));
}

static bool action_has_tag(const struct gw_action *a, const char *tag)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(a->definition, "tags"), i, t)
    {
        if (glob_match(tag, json_string_value(t)))
            return true;
    }
    return false;
}

void gw_policy_lint(const struct gw_policy *p, const struct gw_catalog *cat)
{
    for (size_t i = 0; i < p->n_roles; i++) {
        for (size_t j = 0; j < p->roles[i].n; j++) {
            const struct grant *g = &p->roles[i].grants[j];
            size_t k;
            json_t *v;
            json_array_foreach(g->actions, k, v)
            {
                const char *id = json_string_value(v);
                if (!is_glob(id) && gw_catalog_find(cat, id) == NULL)
                    gw_log_warn("policy %s: role '%s' grant %zu names action '%s', which the "
                                "catalog does not have",
                                p->origin, p->roles[i].name, j, id);
            }
            json_array_foreach(g->tags, k, v)
            {
                bool found = false;
                for (size_t n = 0; n < cat->n && !found; n++)
                    found = action_has_tag(cat->actions[n], json_string_value(v));
                if (!found)
                    gw_log_warn("policy %s: role '%s' grant %zu names tag '%s', which no "
                                "action has",
                                p->origin, p->roles[i].name, j, json_string_value(v));
            }
        }
    }
}

/* ----------------------------------------------------------- decisions */

static bool teams_match(json_t *globs, json_t *teams)
{
    size_t i;
    json_t *t;
    json_array_foreach(teams, i, t) if (any_glob_matches(globs, json_string_value(t))) return true;
    return false;
}

int gw_authz_init(struct gw_authz *z, struct gw_policy *p, const struct gw_principal *who)
{
    memset(z, 0, sizeof(*z));
    z->policy = gw_policy_ref(p);
    z->who = who;
    z->teams = who->teams_json ? json_loads(who->teams_json, 0, NULL) : NULL;
    if (!json_is_array(z->teams)) {
        json_decref(z->teams);
        z->teams = json_array();
    }
    z->has = calloc(p->n_roles + 1, 1);
    if (z->teams == NULL || z->has == NULL) {
        gw_authz_finish(z);
        return GW_ENOMEM;
    }
    z->admin = who->admin;
    /* A worker token is a machine that claims runs: no role of the policy
     * reaches it, whatever the bindings say ("*" included). */
    z->worker_only = gw_principal_worker_only(who);
    if (z->worker_only)
        return 0;
    for (size_t i = 0; i < p->n_bindings; i++) {
        const struct binding *b = &p->bindings[i];
        if (!any_glob_matches(b->subjects, who->subject) && !teams_match(b->teams, z->teams))
            continue;
        for (size_t j = 0; j < b->n_roles; j++)
            z->has[b->roles[j]] = 1;
    }
    for (size_t i = 0; i < p->n_roles && !z->admin; i++) {
        if (!z->has[i])
            continue;
        for (size_t j = 0; j < p->roles[i].n; j++)
            z->admin = z->admin || (p->roles[i].grants[j].perms & BIT(GW_PERM_ADMIN));
    }
    return 0;
}

void gw_authz_finish(struct gw_authz *z)
{
    if (z == NULL)
        return;
    json_decref(z->teams);
    free(z->has);
    gw_policy_unref(z->policy);
    memset(z, 0, sizeof(*z));
}

static bool selects(const struct grant *g, const struct gw_action *a)
{
    if (a == NULL)
        return g->actions == NULL && g->tags == NULL;
    if (g->actions != NULL && !any_glob_matches(g->actions, a->id))
        return false;
    if (g->tags != NULL) {
        size_t i;
        json_t *t;
        json_array_foreach(g->tags, i, t) if (action_has_tag(a, json_string_value(t))) return true;
        return false;
    }
    return true;
}

static bool value_allowed(const struct cond *c, json_t *v)
{
    size_t i;
    json_t *a;
    if (v == NULL)
        return false;
    json_array_foreach(c->allowed, i, a)
    {
        if (json_is_string(a) && is_glob(json_string_value(a))) {
            if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) &&
                glob_match(json_string_value(a), json_string_value(v)))
                return true;
        } else if (json_equal(a, v)) {
            return true;
        }
    }
    return false;
}

static void cond_refusal(const struct cond *c, json_t *inputs, char *why, size_t cap)
{
    json_t *v = gw_jsonptr_get(inputs, c->pointer);
    char *shown = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    char *allowed = json_dumps(c->allowed, JSON_COMPACT);
    if (shown != NULL && strlen(shown) > 80)
        memcpy(shown + 76, "...", sizeof("..."));
    snprintf(why, cap, "input '%s' is %s; allowed: %s", c->name, shown ? shown : "missing",
             allowed ? allowed : "?");
    free(shown);
    free(allowed);
}

bool gw_authz_can(const struct gw_authz *z, enum gw_perm perm, const struct gw_action *a,
                  json_t *inputs, char *why, size_t why_cap)
{
    const struct gw_policy *p = z->policy;
    char cond_why[400] = "";

    if (z->worker_only) {
        if (why != NULL)
            snprintf(why, why_cap, "a worker token may only claim runs");
        return false;
    }
    if (z->admin)
        return true;
    if ((BIT(perm) & SCOPED_PERMS) && gw_authz_scope(z, perm, a) == GW_SCOPE_ALL)
        return true;
    for (size_t i = 0; i < p->n_roles && !(BIT(perm) & SCOPED_PERMS); i++) {
        if (!z->has[i])
            continue;
        for (size_t j = 0; j < p->roles[i].n; j++) {
            const struct grant *g = &p->roles[i].grants[j];
            if (!(g->perms & BIT(perm)) || !selects(g, a))
                continue;
            size_t k;
            for (k = 0; inputs != NULL && k < g->n_conds; k++) {
                if (!value_allowed(&g->conds[k], gw_jsonptr_get(inputs, g->conds[k].pointer))) {
                    if (cond_why[0] == '\0')
                        cond_refusal(&g->conds[k], inputs, cond_why, sizeof(cond_why));
                    break;
                }
            }
            if (inputs == NULL || k == g->n_conds)
                return true;
        }
    }
    if (why != NULL) {
        if (a != NULL)
            snprintf(why, why_cap, "permission '%s' on action '%s' is not granted to %s%s%s",
                     gw_perm_name(perm), a->id, z->who->subject, cond_why[0] ? ": " : "", cond_why);
        else
            snprintf(why, why_cap, "permission '%s' is not granted to %s", gw_perm_name(perm),
                     z->who->subject);
    }
    return false;
}

enum gw_scope gw_authz_scope(const struct gw_authz *z, enum gw_perm perm, const struct gw_action *a)
{
    const struct gw_policy *p = z->policy;
    if (z->worker_only)
        return GW_SCOPE_NONE;
    if (z->admin)
        return GW_SCOPE_ALL;
    enum gw_scope s = p->defaults[perm];
    for (size_t i = 0; i < p->n_roles; i++) {
        if (!z->has[i])
            continue;
        for (size_t j = 0; j < p->roles[i].n; j++) {
            const struct grant *g = &p->roles[i].grants[j];
            if ((g->perms & BIT(perm)) && g->scope > s && selects(g, a))
                s = g->scope;
        }
    }
    return s;
}

static bool teams_overlap(json_t *mine, json_t *theirs)
{
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(mine, i, x)
        json_array_foreach(theirs, j, y) if (json_equal(x, y)) return true;
    return false;
}

bool gw_authz_covers(const struct gw_authz *z, enum gw_perm perm, const struct gw_action *a,
                     const char *owner_subject, json_t *owner_teams)
{
    enum gw_scope s = gw_authz_scope(z, perm, a);
    if (s == GW_SCOPE_ALL)
        return true;
    if (s == GW_SCOPE_TEAM && teams_overlap(z->teams, owner_teams))
        return true;
    return s >= GW_SCOPE_OWN && owner_subject != NULL &&
           strcmp(owner_subject, z->who->subject) == 0;
}

json_t *gw_authz_roles(const struct gw_authz *z)
{
    json_t *out = json_array();
    for (size_t i = 0; i < z->policy->n_roles; i++)
        if (z->has[i])
            json_array_append_new(out, json_string(z->policy->roles[i].name));
    if (z->who->admin)
        json_array_append_new(out, json_string("admin"));
    if (z->who->worker)
        json_array_append_new(out, json_string("worker"));
    return out;
}

/* Appends `id` to a PostgreSQL array literal being built in *buf. */
static int array_add(char **buf, size_t *len, size_t *cap, const char *id)
{
    size_t need = *len + 2 * strlen(id) + 5;
    if (need > *cap) {
        size_t ncap = need * 2;
        char *nb = realloc(*buf, ncap);
        if (nb == NULL)
            return GW_ENOMEM;
        *buf = nb;
        *cap = ncap;
    }
    char *p = *buf + *len;
    if (*len > 1)
        *p++ = ',';
    *p++ = '"';
    for (; *id; id++) {
        if (*id == '"' || *id == '\\')
            *p++ = '\\';
        *p++ = *id;
    }
    *p++ = '"';
    *p = '}';
    *len = (size_t)(p - *buf);
    p[1] = '\0';
    return 0;
}

int gw_authz_filter_init(struct gw_authz_filter *f, const struct gw_authz *z, enum gw_perm perm,
                         const struct gw_catalog *cat, const char *params[5])
{
    char **arrays[3] = {&f->own, &f->team, &f->all};
    size_t len[3], cap[3];
    enum gw_scope base = gw_authz_scope(z, perm, NULL);

    memset(f, 0, sizeof(*f));
    for (int i = 0; i < 3; i++) {
        cap[i] = 64;
        len[i] = 1;
        *arrays[i] = malloc(cap[i]);
        if (*arrays[i] == NULL)
            goto fail;
        memcpy(*arrays[i], "{}", sizeof("{}"));
        /* A level the caller has everywhere covers runs of every action,
         * including actions the catalog no longer has. */
        if (base >= (enum gw_scope)(GW_SCOPE_OWN + i) &&
            array_add(arrays[i], &len[i], &cap[i], "*") < 0)
            goto fail;
    }
    for (size_t n = 0; cat != NULL && n < cat->n; n++) {
        enum gw_scope s = gw_authz_scope(z, perm, cat->actions[n]);
        for (int i = 0; i < 3; i++) {
            enum gw_scope level = (enum gw_scope)(GW_SCOPE_OWN + i);
            if (s >= level && base < level &&
                array_add(arrays[i], &len[i], &cap[i], cat->actions[n]->id) < 0)
                goto fail;
        }
    }
    params[0] = z->who->subject;
    params[1] = z->who->teams_pg != NULL ? z->who->teams_pg : "{}";
    params[2] = f->own;
    params[3] = f->team;
    params[4] = f->all;
    return 0;
fail:
    gw_authz_filter_finish(f);
    return GW_ENOMEM;
}

void gw_authz_filter_finish(struct gw_authz_filter *f)
{
    if (f == NULL)
        return;
    free(f->own);
    free(f->team);
    free(f->all);
    memset(f, 0, sizeof(*f));
}

/* For run, decide_approvals and break_glass on `a`: {} when granted without
 * conditions, {"when_inputs": [alternatives]} when only under conditions,
 * NULL when not at all. */
static json_t *conditional(const struct gw_authz *z, enum gw_perm perm, const struct gw_action *a)
{
    const struct gw_policy *p = z->policy;
    json_t *alts = json_array();
    if (z->admin) {
        json_decref(alts);
        return json_object();
    }
    for (size_t i = 0; i < p->n_roles; i++) {
        if (!z->has[i])
            continue;
        for (size_t j = 0; j < p->roles[i].n; j++) {
            const struct grant *g = &p->roles[i].grants[j];
            if (!(g->perms & BIT(perm)) || !selects(g, a))
                continue;
            if (g->n_conds == 0) {
                json_decref(alts);
                return json_object();
            }
            json_array_append(alts, g->inputs);
        }
    }
    if (json_array_size(alts) == 0) {
        json_decref(alts);
        return NULL;
    }
    return json_pack("{s:o}", "when_inputs", alts);
}

static json_t *action_perms(const struct gw_authz *z, const struct gw_action *a)
{
    static const enum gw_perm cond_perms[] = {GW_PERM_RUN, GW_PERM_DECIDE_APPROVALS,
                                              GW_PERM_BREAK_GLASS};
    static const enum gw_perm scoped[] = {GW_PERM_READ_RUNS, GW_PERM_CANCEL,
                                          GW_PERM_MANAGE_RESOURCES};
    json_t *o = json_object();
    for (size_t i = 0; a != NULL && i < ARRAY_SIZE(cond_perms); i++) {
        json_t *c = conditional(z, cond_perms[i], a);
        if (c != NULL)
            json_object_set_new(o, gw_perm_name(cond_perms[i]), c);
    }
    for (size_t i = 0; i < ARRAY_SIZE(scoped); i++) {
        enum gw_scope s = gw_authz_scope(z, scoped[i], a);
        if (s != GW_SCOPE_NONE)
            json_object_set_new(o, gw_perm_name(scoped[i]),
                                json_pack("{s:s}", "scope", gw_scope_name(s)));
    }
    return o;
}

json_t *gw_authz_describe(const struct gw_authz *z, const struct gw_catalog *cat)
{
    json_t *global = json_array();
    json_t *actions = json_object();
    if (z->admin)
        json_array_append_new(global, json_string("admin"));
    if (gw_authz_can(z, GW_PERM_READ_AUDIT, NULL, NULL, NULL, 0))
        json_array_append_new(global, json_string("read_audit"));
    if (!z->worker_only)
        for (size_t n = 0; cat != NULL && n < cat->n; n++)
            json_object_set_new(actions, cat->actions[n]->id, action_perms(z, cat->actions[n]));
    return json_pack("{s:s, s:O, s:o, s:b, s:o, s:o, s:o, s:s}", "subject", z->who->subject,
                     "teams", z->teams, "roles", gw_authz_roles(z), "worker", z->who->worker,
                     "permissions", global, "actions", actions, "other_runs", action_perms(z, NULL),
                     "policy", z->policy->origin);
}
