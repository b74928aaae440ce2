#include "catalog.h"

#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/crypto.h"
#include "gw/doc.h"
#include "gw/embed.h"
#include "gw/log.h"
#include "gw/subject.h"
#include "workflow.h"

/* schemas/action.schema.json, embedded at build time by tools/embed.py. */
extern const char gw_action_schema_json[];

#define ACTION_MAX_BYTES  (4u << 20) /* a definition with its input schema */
#define ACTION_SCHEMA_URI "https://gangway.dev/schemas/action.schema.json"

static void action_free(struct gw_action *a)
{
    if (a == NULL)
        return;
    free(a->id);
    free(a->worker_type);
    json_decref(a->definition);
    free(a->public_json);
    json_decref(a->summary);
    gw_schema_destroy(a->inputs);
    free(a->resource_key);
    free(a->quota);
    free(a->path);
    free(a);
}

struct gw_catalog *gw_catalog_ref(struct gw_catalog *c)
{
    if (c != NULL)
        c->refs++;
    return c;
}

void gw_catalog_unref(struct gw_catalog *c)
{
    if (c != NULL && --c->refs == 0)
        gw_catalog_destroy(c);
}

void gw_catalog_destroy(struct gw_catalog *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        action_free(c->actions[i]);
    free(c->actions);
    free(c->list_json);
    gw_schema_registry_destroy(c->registry);
    free(c);
}

/* Makes a relative program path in backend.command[0] absolute against the
 * directory of the action file, so workers get a path they can execute. */
static void resolve_command(json_t *backend, const char *dir)
{
    json_t *cmd = json_object_get(backend, "command");
    json_t *prog = json_array_get(cmd, 0);
    const char *p = json_string_value(prog);
    char buf[PATH_MAX];

    if (p == NULL || p[0] == '/' || strchr(p, '/') == NULL)
        return; /* absolute, or a bare name looked up in the worker's PATH */
    snprintf(buf, sizeof(buf), "%s/%s", dir, p);
    char *real = realpath(buf, NULL);
    json_array_set_new(cmd, 0, json_string(real != NULL ? real : buf));
    free(real);
}

static char *errors_text(json_t *errors)
{
    json_t *first = json_array_get(errors, 0);
    char *out = NULL;
    const char *ptr = json_string_value(json_object_get(first, "instanceLocation"));
    const char *msg = json_string_value(json_object_get(first, "message"));
    size_t n = json_array_size(errors);

    if (asprintf(&out, "at '%s': %s%s", ptr != NULL && ptr[0] ? ptr : "/",
                 msg != NULL ? msg : "invalid", n > 1 ? " (and more)" : "") < 0)
        return NULL;
    return out;
}

/* A file refused: err->message is "<path>: line L column C: <reason>" (the
 * position of `pointer` in the file, when it can be found) and `fault`, when
 * given, holds the same in fields. Returns err's code. */
static int refuse(struct gw_catalog_fault *fault, struct gw_error *err, int code, const char *path,
                  const char *pointer, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int refuse(struct gw_catalog_fault *fault, struct gw_error *err, int code, const char *path,
                  const char *pointer, const char *fmt, ...)
{
    char reason[512];
    int line = 0, column = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (pointer != NULL && gw_doc_locate(path, pointer, &line, &column) < 0)
        line = column = 0;
    if (fault != NULL) {
        snprintf(fault->file, sizeof(fault->file), "%s", path);
        fault->line = line;
        fault->column = column;
        snprintf(fault->pointer, sizeof(fault->pointer), "%s", pointer != NULL ? pointer : "");
        snprintf(fault->reason, sizeof(fault->reason), "%s", reason);
    }
    if (line > 0)
        return gw_error_set(err, code, false, "%s: line %d column %d: %s", path, line, column,
                            reason);
    return gw_error_set(err, code, false, "%s: %s", path, reason);
}

/* The first validator error's location (instanceLocation), "" when none. */
static const char *errors_at(json_t *errors)
{
    const char *p =
        json_string_value(json_object_get(json_array_get(errors, 0), "instanceLocation"));
    return p != NULL ? p : "";
}

/* A document that did not parse: gw_doc_load_file's message is
 * "<path>: line L column C: <reason>" (or "<path>: <reason>"); split it into
 * the fault's fields. */
static void parse_fault(struct gw_catalog_fault *fault, const char *path, const char *msg)
{
    size_t n = strlen(path);
    int used = 0;

    if (fault == NULL)
        return;
    memset(fault, 0, sizeof(*fault));
    snprintf(fault->file, sizeof(fault->file), "%s", path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        msg += n + 2;
    if (sscanf(msg, "line %d column %d: %n", &fault->line, &fault->column, &used) == 2 && used > 0)
        msg += used;
    else
        fault->line = fault->column = 0;
    snprintf(fault->reason, sizeof(fault->reason), "%s", msg);
}

/* Approval rules name teams as callers have them (gw_team_canonical):
 * "SRE" would never match anyone's "sre", and nobody could approve. */
static int check_teams_at(json_t *teams, const char *path, const char *ptr,
                          struct gw_catalog_fault *fault, struct gw_error *err)
{
    size_t i;
    json_t *t;
    json_array_foreach(teams, i, t)
    {
        char canonical[GW_TEAM_MAX], at[96];
        struct gw_error terr;
        const char *written = json_string_value(t);
        snprintf(at, sizeof(at), "%s/%zu", ptr, i);
        if (gw_team_canonical(written, canonical, &terr) < 0)
            return refuse(fault, err, GW_EINVAL, path, at, "at '%s': %s", at, terr.message);
        if (strcmp(written, canonical) != 0)
            return refuse(fault, err, GW_EINVAL, path, at,
                          "at '%s': team '%s' is not canonical, so no caller ever has it: write "
                          "'%s' (docs/policy.md#subjects)",
                          at, written, canonical);
    }
    return 0;
}

static int check_rule_teams(json_t *def, const char *path, struct gw_catalog_fault *fault,
                            struct gw_error *err)
{
    size_t i;
    json_t *rule;
    char ptr[128];
    json_array_foreach(json_object_get(json_object_get(def, "approval"), "rules"), i, rule)
    {
        snprintf(ptr, sizeof(ptr), "/approval/rules/%zu/from_teams", i);
        if (check_teams_at(json_object_get(rule, "from_teams"), path, ptr, fault, err) < 0)
            return -1;
    }
    size_t s;
    json_t *st;
    json_array_foreach(json_object_get(def, "steps"), s, st)
    {
        json_array_foreach(json_object_get(json_object_get(st, "approval"), "rules"), i, rule)
        {
            snprintf(ptr, sizeof(ptr), "/steps/%zu/approval/rules/%zu/from_teams", s, i);
            if (check_teams_at(json_object_get(rule, "from_teams"), path, ptr, fault, err) < 0)
                return -1;
        }
    }
    return check_teams_at(
        json_object_get(json_object_get(json_object_get(def, "ttl"), "extension_approval"),
                        "from_teams"),
        path, "/ttl/extension_approval/from_teams", fault, err);
}

/* `obj`'s backend config (obj at pointer `at` in the file) against
 * schemas/backends/<worker_type>.json when the tree has that worker type;
 * unknown types (workers in other languages) are passed through, and so is
 * an object without worker_type (a workflow's top level; NULL obj). */
static int check_backend(struct gw_catalog *c, json_t *obj, const char *at, const char *path,
                         struct gw_catalog_fault *fault, struct gw_error *err)
{
    json_t *errors = NULL;
    const char *type = json_string_value(json_object_get(obj, "worker_type"));
    const char *config_schema = type != NULL ? gw_backend_schema(type) : NULL;
    if (config_schema == NULL)
        return 0;
    json_t *cs = json_loads(config_schema, 0, NULL);
    struct gw_schema *compiled = gw_schema_compile(c->registry, cs, NULL, NULL, err);
    json_decref(cs);
    if (compiled == NULL) {
        parse_fault(fault, path, err != NULL ? err->message : "");
        return -1;
    }
    bool ok = gw_schema_validate(compiled, json_object_get(obj, "backend"), &errors);
    gw_schema_destroy(compiled);
    if (!ok) {
        char *t = errors_text(errors);
        char ptr[512];
        snprintf(ptr, sizeof(ptr), "%s/backend%s", at, errors_at(errors));
        refuse(fault, err, GW_EINVAL, path, ptr, "backend config for worker type '%s' %s", type,
               t ? t : "is invalid");
        free(t);
        json_decref(errors);
        return -1;
    }
    json_decref(errors);
    return 0;
}

static struct gw_action *action_load(struct gw_catalog *c, const struct gw_schema *def_schema,
                                     const char *dir, const char *path,
                                     struct gw_catalog_fault *fault, struct gw_error *err)
{
    json_t *def = gw_doc_load_file(path, ACTION_MAX_BYTES, err);
    json_t *errors = NULL;
    struct gw_action *a = NULL;
    char *canon = NULL;

    if (def == NULL) {
        parse_fault(fault, path, err != NULL ? err->message : "");
        return NULL;
    }
    if (!gw_schema_validate(def_schema, def, &errors)) {
        char *t = errors_text(errors);
        refuse(fault, err, GW_EINVAL, path, errors_at(errors), "not a valid action definition %s",
               t ? t : "");
        free(t);
        goto fail;
    }
    /* A worker type of the tree gets its backend config checked now against
     * schemas/backends/<type>.json, not when the first run reaches a worker
     * (which checks again): the action's own, or each step's and undo's. */
    {
        size_t i;
        json_t *st;
        char at[256], why[512];
        if (gw_workflow_check(def, at, sizeof(at), why, sizeof(why)) < 0) {
            refuse(fault, err, GW_EINVAL, path, at, "%s", why);
            goto fail;
        }
        if (check_backend(c, def, "", path, fault, err) < 0)
            goto fail;
        json_array_foreach(json_object_get(def, "steps"), i, st)
        {
            snprintf(at, sizeof(at), "/steps/%zu", i);
            if (check_backend(c, st, at, path, fault, err) < 0)
                goto fail;
            snprintf(at, sizeof(at), "/steps/%zu/undo", i);
            if (check_backend(c, json_object_get(st, "undo"), at, path, fault, err) < 0)
                goto fail;
        }
    }
    /* A workflow's own timeout_seconds covers every step, and the waits
     * for approval between them: undeclared, it is a day, not a single
     * call's 600 s (decision 0071). */
    if (json_object_get(def, "steps") != NULL && json_object_get(def, "timeout_seconds") == NULL)
        json_object_set_new(def, "timeout_seconds", json_integer(GW_WORKFLOW_DEFAULT_TIMEOUT_S));
    /* The definition schema's defaults (timeout) make the stored version explicit. */
    gw_schema_apply_defaults(def_schema, def);
    resolve_command(json_object_get(def, "backend"), dir);
    resolve_command(json_object_get(json_object_get(def, "teardown"), "backend"), dir);
    {
        size_t i;
        json_t *st;
        json_array_foreach(json_object_get(def, "steps"), i, st)
        {
            resolve_command(json_object_get(st, "backend"), dir);
            resolve_command(json_object_get(json_object_get(st, "undo"), "backend"), dir);
        }
    }

    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        refuse(fault, err, GW_ENOMEM, path, NULL, "out of memory");
        goto fail;
    }
    a->path = strdup(path);
    a->id = strdup(json_string_value(json_object_get(def, "id")));
    /* A workflow's own run is never claimed: its steps are (docs/workflows.md). */
    a->is_workflow = json_object_get(def, "steps") != NULL;
    a->worker_type =
        strdup(a->is_workflow ? GW_WORKFLOW_WORKER_TYPE
                              : json_string_value(json_object_get(def, "worker_type")));
    a->timeout_seconds = (int)json_integer_value(json_object_get(def, "timeout_seconds"));
    json_t *retry = json_object_get(def, "retry");
    a->retryable = retry != NULL;
    a->max_attempts = 1;
    if (retry != NULL) {
        json_t *m = json_object_get(retry, "max_attempts");
        a->max_attempts = m != NULL ? (int)json_integer_value(m) : 3;
    }
    a->has_resource = json_object_get(def, "resource") != NULL;
    json_t *ttl = json_object_get(def, "ttl");
    a->ttl_default_s = (int)json_integer_value(json_object_get(ttl, "default_seconds"));
    a->ttl_max_s = (int)json_integer_value(json_object_get(ttl, "max_seconds"));
    if (ttl != NULL && a->ttl_default_s > a->ttl_max_s) {
        refuse(fault, err, GW_EINVAL, path, "/ttl/default_seconds",
               "at '/ttl': default_seconds (%d) is more than max_seconds (%d)", a->ttl_default_s,
               a->ttl_max_s);
        goto fail;
    }
    if (check_rule_teams(def, path, fault, err) < 0)
        goto fail;
    a->approval = json_object_get(def, "approval");
    if (json_object_get(def, "quota") != NULL)
        a->quota = json_dumps(json_object_get(def, "quota"), JSON_COMPACT);
    const char *rk = json_string_value(json_object_get(def, "resource_key"));
    a->resource_key = rk != NULL ? strdup(rk) : NULL;

    char base[512];
    snprintf(base, sizeof(base), "https://gangway.dev/actions/%s/inputs.json", a->id);
    struct gw_error serr;
    gw_error_clear(&serr);
    a->inputs = gw_schema_compile(c->registry, json_object_get(def, "inputs"), base, NULL, &serr);
    if (a->inputs == NULL) {
        refuse(fault, err, GW_EINVAL, path, "/inputs", "input schema at '/inputs': %s",
               serr.message);
        goto fail;
    }

    canon = json_dumps(def, JSON_SORT_KEYS | JSON_COMPACT);
    if (canon == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto fail;
    }
    gw_sha256_hex(canon, strlen(canon), a->version);
    a->definition = def;
    def = NULL;

    json_t *d = a->definition;
    json_t *pub = json_pack(
        "{s:s, s:s, s:O, s:O?, s:s, s:O?, s:i, s:b, s:O}", "id", a->id, "version", a->version,
        "title", json_object_get(d, "title"), "description", json_object_get(d, "description"),
        "worker_type", a->worker_type, "tags", json_object_get(d, "tags"), "timeout_seconds",
        a->timeout_seconds, "retryable", a->retryable, "inputs", json_object_get(d, "inputs"));
    if (pub == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        goto fail;
    }
    if (json_object_get(d, "ttl") != NULL)
        json_object_set(pub, "ttl", json_object_get(d, "ttl"));
    if (json_object_get(d, "resource") != NULL)
        json_object_set(pub, "resource", json_object_get(d, "resource"));
    if (a->is_workflow) {
        json_t *steps = json_array();
        size_t i;
        json_t *st;
        json_array_foreach(json_object_get(d, "steps"), i, st)
        {
            json_t *one = json_pack("{s:O, s:O, s:O?, s:b, s:b}", "id", json_object_get(st, "id"),
                                    "worker_type", json_object_get(st, "worker_type"), "needs",
                                    json_object_get(st, "needs"), "approval",
                                    json_object_get(st, "approval") != NULL, "undo",
                                    json_object_get(st, "undo") != NULL);
            json_array_append_new(steps, one);
        }
        json_object_set_new(pub, "steps", steps);
    }
    /* The console marks actions that need approval (and says from whom). */
    if (json_object_get(d, "approval") != NULL)
        json_object_set(pub, "approval", json_object_get(d, "approval"));
    a->public_json = json_dumps(pub, JSON_COMPACT);
    json_object_del(pub, "inputs");
    a->summary = pub;
    free(canon);
    json_decref(errors);
    return a;

fail:
    free(canon);
    json_decref(errors);
    json_decref(def);
    action_free(a);
    return NULL;
}

static int action_cmp(const void *x, const void *y)
{
    const struct gw_action *a = *(const struct gw_action *const *)x;
    const struct gw_action *b = *(const struct gw_action *const *)y;
    return strcmp(a->id, b->id);
}

struct gw_catalog *gw_catalog_load(const char *dir, struct gw_error *err)
{
    return gw_catalog_load_ex(dir, NULL, err);
}

struct gw_catalog *gw_catalog_load_ex(const char *dir, struct gw_catalog_fault *fault,
                                      struct gw_error *err)
{
    struct gw_catalog *c = calloc(1, sizeof(*c));
    struct gw_schema *def_schema = NULL;
    json_t *schema_doc = NULL;
    DIR *d = NULL;
    struct dirent *de;
    size_t cap = 0;

    if (fault != NULL)
        memset(fault, 0, sizeof(*fault));
    if (c == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    c->refs = 1;
    c->registry = gw_schema_registry_create(err);
    if (c->registry == NULL)
        goto fail;
    schema_doc = json_loads(gw_action_schema_json, 0, NULL);
    def_schema = gw_schema_compile(c->registry, schema_doc, ACTION_SCHEMA_URI, NULL, err);
    if (def_schema == NULL)
        goto fail;

    d = opendir(dir);
    if (d == NULL) {
        refuse(fault, err, GW_EIO, dir, NULL, "actions directory: %s", strerror(errno));
        goto fail;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char path[PATH_MAX];
        if (de->d_name[0] == '.' || !((len > 5 && strcmp(de->d_name + len - 5, ".json") == 0) ||
                                      gw_doc_is_yaml(de->d_name)))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct gw_action *a = action_load(c, def_schema, dir, path, fault, err);
        if (a == NULL)
            goto fail;
        const struct gw_action *first = gw_catalog_find(c, a->id);
        if (first != NULL) {
            refuse(fault, err, GW_EINVAL, path, "/id",
                   "action id '%s' is defined twice (also in %s)", a->id, first->path);
            action_free(a);
            goto fail;
        }
        if (c->n == cap) {
            cap = cap ? cap * 2 : 16;
            struct gw_action **na = realloc(c->actions, cap * sizeof(*na));
            if (na == NULL) {
                action_free(a);
                gw_error_set(err, GW_ENOMEM, false, "out of memory");
                goto fail;
            }
            c->actions = na;
        }
        c->actions[c->n++] = a;
        /* Keep sorted as we go: gw_catalog_find bisects. */
        qsort(c->actions, c->n, sizeof(*c->actions), action_cmp);
    }
    closedir(d);
    d = NULL;

    json_t *list = json_array();
    for (size_t i = 0; i < c->n; i++)
        json_array_append(list, c->actions[i]->summary);
    json_t *body = json_pack("{s:o}", "items", list);
    c->list_json = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    gw_schema_destroy(def_schema);
    json_decref(schema_doc);
    return c;

fail:
    if (d != NULL)
        closedir(d);
    gw_schema_destroy(def_schema);
    json_decref(schema_doc);
    gw_catalog_destroy(c);
    return NULL;
}

const struct gw_action *gw_catalog_find(const struct gw_catalog *c, const char *id)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(id, c->actions[mid]->id);
        if (cmp == 0)
            return c->actions[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int gw_catalog_store(const struct gw_catalog *c, const char *conninfo, struct gw_error *err)
{
    PGconn *conn = PQconnectdb(conninfo);
    int rc = 0;

    if (PQstatus(conn) != CONNECTION_OK) {
        rc = gw_error_set(err, GW_EUNAVAIL, true, "postgresql: %s", PQerrorMessage(conn));
        goto out;
    }
    for (size_t i = 0; i < c->n; i++) {
        const struct gw_action *a = c->actions[i];
        char *def = json_dumps(a->definition, JSON_COMPACT);
        const char *params[] = {a->id, a->version, a->worker_type, def};
        PGresult *res = PQexecParams(conn,
                                     "INSERT INTO gw_actions (id, version, worker_type, definition)"
                                     " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING",
                                     4, NULL, params, NULL, NULL, 0);
        free(def);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = gw_error_set(err, GW_EIO, false, "storing action %s: %s", a->id,
                              PQresultErrorMessage(res));
            PQclear(res);
            goto out;
        }
        PQclear(res);
        gw_log_info("loaded action %s version %.12s from %s", a->id, a->version, a->path);
    }
out:
    PQfinish(conn);
    return rc;
}

json_t *gw_action_approval_for(const struct gw_action *a, json_t *inputs)
{
    size_t i;
    json_t *rule;

    if (a->approval == NULL)
        return NULL;
    json_array_foreach(json_object_get(a->approval, "rules"), i, rule)
    {
        const char *name;
        json_t *allowed;
        bool match = true;
        json_object_foreach(json_object_get(rule, "when"), name, allowed)
        {
            json_t *v = json_object_get(inputs, name);
            bool any = false;
            size_t k;
            json_t *cand;
            json_array_foreach(allowed, k, cand) any = any || (v != NULL && json_equal(v, cand));
            match = match && any;
        }
        if (!match)
            continue;
        json_int_t n = json_integer_value(json_object_get(rule, "approvals"));
        if (n <= 0)
            return NULL;
        json_t *expires = json_object_get(a->approval, "expires_after_seconds");
        json_t *reject = json_object_get(a->approval, "any_rejection_rejects");
        json_t *out =
            json_pack("{s:I, s:o?, s:o?, s:I, s:b}", "approvals", n, "from_teams",
                      json_deep_copy(json_object_get(rule, "from_teams")), "from_roles",
                      json_deep_copy(json_object_get(rule, "from_roles")), "expires_after_seconds",
                      expires ? json_integer_value(expires) : (json_int_t)86400,
                      "any_rejection_rejects", reject ? json_is_true(reject) : 1);
        if (out != NULL && json_is_true(json_object_get(a->approval, "plan_first")))
            json_object_set_new(out, "plan_first", json_true());
        /* Who may let a plan that failed its compliance checks through
         * (gw_finish_run, decision 0066). */
        if (out != NULL && json_object_get(a->approval, "plan_checks_override") != NULL)
            json_object_set_new(
                out, "plan_checks_override",
                json_deep_copy(json_object_get(a->approval, "plan_checks_override")));
        /* Absent lists are empty lists, never JSON null. */
        if (out != NULL && !json_is_array(json_object_get(out, "from_teams")))
            json_object_set_new(out, "from_teams", json_array());
        if (out != NULL && !json_is_array(json_object_get(out, "from_roles")))
            json_object_set_new(out, "from_roles", json_array());
        return out;
    }
    return NULL;
}

const char gw_catalog_store_sql[] =
    "INSERT INTO gw_actions (id, version, worker_type, definition)"
    " SELECT x ->> 'id', x ->> 'version', x ->> 'worker_type', x -> 'definition'"
    " FROM jsonb_array_elements($1::jsonb) x ON CONFLICT DO NOTHING";

char *gw_catalog_store_param(const struct gw_catalog *c)
{
    json_t *arr = json_array();
    char *out = NULL;

    for (size_t i = 0; arr != NULL && i < c->n; i++) {
        const struct gw_action *a = c->actions[i];
        if (json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:O}", "id", a->id, "version",
                                                 a->version, "worker_type", a->worker_type,
                                                 "definition", a->definition)) < 0)
            goto out;
    }
    out = arr != NULL ? json_dumps(arr, JSON_COMPACT) : NULL;
out:
    json_decref(arr);
    return out;
}
