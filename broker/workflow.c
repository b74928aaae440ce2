/*
 * Workflow definitions (docs/workflows.md): the checks a catalog load makes
 * on an action's `steps` beyond its JSON Schema: unique step ids, `needs`
 * naming earlier steps only (so the graph has no cycle), and every
 * reference `${...}` in a step's inputs, its `when` and its undo resolving
 * to something that exists when the step runs.
 */
#include "workflow.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int fail(char *at, size_t atn, const char *ptr, char *why, size_t whyn, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int fail(char *at, size_t atn, const char *ptr, char *why, size_t whyn, const char *fmt, ...)
{
    va_list ap;
    snprintf(at, atn, "%s", ptr);
    va_start(ap, fmt);
    vsnprintf(why, whyn, fmt, ap);
    va_end(ap);
    return -1;
}

static bool name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

/* Length of the name at s (0 when none). */
static size_t name_len(const char *s)
{
    size_t n = 0;
    while (name_char(s[n]))
        n++;
    return n;
}

/* Length of a dotted path "name(.name)*" at s (0 when none). */
static size_t path_len(const char *s)
{
    size_t n = name_len(s);
    while (n > 0 && s[n] == '.' && name_len(s + n + 1) > 0)
        n += 1 + name_len(s + n + 1);
    return n;
}

int gw_workflow_step_index(json_t *steps, const char *id, size_t idlen)
{
    size_t i;
    json_t *st;
    json_array_foreach(steps, i, st)
    {
        const char *sid = json_string_value(json_object_get(st, "id"));
        if (sid != NULL && strlen(sid) == idlen && strncmp(sid, id, idlen) == 0)
            return (int)i;
    }
    return -1;
}

struct scope {
    json_t *input_props; /* the action's inputs "properties" (may be NULL) */
    json_t *steps;
    uint64_t ancestors; /* bit j: step j has finished when this one runs */
    bool self;          /* ${self.outputs.KEY} allowed (an undo) */
};

/* One reference body (between "${" and "}"), `len` bytes. */
static int check_ref(const struct scope *sc, const char *r, size_t len, const char *ptr, char *at,
                     size_t atn, char *why, size_t whyn)
{
    size_t n;
    if (len > 7 && strncmp(r, "inputs.", 7) == 0) {
        n = name_len(r + 7);
        if (n == 0 || 7 + path_len(r + 7) != len)
            goto bad;
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)n, r + 7);
        if (json_object_get(sc->input_props, name) == NULL)
            return fail(at, atn, ptr, why, whyn,
                        "at '%s': '${%.*s}' names no input of the action (declared under "
                        "/inputs/properties)",
                        ptr, (int)len, r);
        return 0;
    }
    if (len > 6 && strncmp(r, "steps.", 6) == 0) {
        n = name_len(r + 6);
        if (n == 0 || strncmp(r + 6 + n, ".outputs.", 9) != 0)
            goto bad;
        size_t k = path_len(r + 6 + n + 9);
        if (k == 0 || 6 + n + 9 + k != len)
            goto bad;
        int j = gw_workflow_step_index(sc->steps, r + 6, n);
        if (j < 0)
            return fail(at, atn, ptr, why, whyn, "at '%s': '${%.*s}' names no step '%.*s'", ptr,
                        (int)len, r, (int)n, r + 6);
        if (!(sc->ancestors & (UINT64_C(1) << j)))
            return fail(at, atn, ptr, why, whyn,
                        "at '%s': '${%.*s}': step '%.*s' has not finished when this runs (add it "
                        "to needs, directly or through another step)",
                        ptr, (int)len, r, (int)n, r + 6);
        return 0;
    }
    if (len > 13 && strncmp(r, "self.outputs.", 13) == 0) {
        n = path_len(r + 13);
        if (n == 0 || 13 + n != len)
            goto bad;
        if (!sc->self)
            return fail(at, atn, ptr, why, whyn,
                        "at '%s': '${%.*s}': self.outputs is only known in a step's undo", ptr,
                        (int)len, r);
        return 0;
    }
bad:
    return fail(at, atn, ptr, why, whyn,
                "at '%s': '${%.*s}' is not a reference: write ${inputs.NAME}, "
                "${steps.ID.outputs.KEY} or, in an undo, ${self.outputs.KEY}",
                ptr, (int)len, r);
}

/* Every "${...}" in string `s`. */
static int check_string(const struct scope *sc, const char *s, const char *ptr, char *at,
                        size_t atn, char *why, size_t whyn)
{
    const char *p = s;
    while ((p = strstr(p, "${")) != NULL) {
        const char *end = strchr(p + 2, '}');
        if (end == NULL)
            return fail(at, atn, ptr, why, whyn, "at '%s': '${' without its closing '}'", ptr);
        if (check_ref(sc, p + 2, (size_t)(end - p - 2), ptr, at, atn, why, whyn) < 0)
            return -1;
        p = end + 1;
    }
    return 0;
}

/* Every string in `v` (keys are not expanded, values are), at pointer `ptr`. */
static int check_value(const struct scope *sc, json_t *v, const char *ptr, char *at, size_t atn,
                       char *why, size_t whyn)
{
    char sub[512];
    if (json_is_string(v))
        return check_string(sc, json_string_value(v), ptr, at, atn, why, whyn);
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            snprintf(sub, sizeof(sub), "%s/%s", ptr, k);
            if (check_value(sc, x, sub, at, atn, why, whyn) < 0)
                return -1;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            snprintf(sub, sizeof(sub), "%s/%zu", ptr, i);
            if (check_value(sc, x, sub, at, atn, why, whyn) < 0)
                return -1;
        }
    }
    return 0;
}

/* A `when` key: a top-level input name, or exactly one reference. */
static int check_when(const struct scope *sc, json_t *when, const char *ptr, char *at, size_t atn,
                      char *why, size_t whyn)
{
    const char *k;
    json_t *x;
    char sub[512];
    json_object_foreach(when, k, x)
    {
        size_t len = strlen(k);
        snprintf(sub, sizeof(sub), "%s/%s", ptr, k);
        if (len > 3 && strncmp(k, "${", 2) == 0 && k[len - 1] == '}') {
            if (check_ref(sc, k + 2, len - 3, sub, at, atn, why, whyn) < 0)
                return -1;
        } else if (json_object_get(sc->input_props, k) == NULL) {
            return fail(at, atn, sub, why, whyn,
                        "at '%s': '%s' is neither an input of the action nor a reference ${...}",
                        sub, k);
        }
    }
    (void)x;
    return 0;
}

int gw_workflow_check(json_t *def, char *at, size_t atn, char *why, size_t whyn)
{
    json_t *steps = json_object_get(def, "steps");
    json_t *props = json_object_get(json_object_get(def, "inputs"), "properties");
    uint64_t anc[GW_WORKFLOW_MAX_STEPS];
    size_t i;
    json_t *st;
    char ptr[256];

    if (steps == NULL)
        return 0;
    if (json_object_get(def, "worker_type") != NULL || json_object_get(def, "backend") != NULL)
        return fail(at, atn,
                    json_object_get(def, "worker_type") != NULL ? "/worker_type" : "/backend", why,
                    whyn,
                    "an action with steps has no worker_type or backend of its own: each step "
                    "names its own");
    if (json_object_get(def, "teardown") != NULL)
        return fail(at, atn, "/teardown", why, whyn,
                    "at '/teardown': a workflow is torn down by its steps' undo, in reverse; "
                    "declare undo on the steps instead");
    /* Drift checks are Terraform's, on one run's state: a workflow's
     * resource has no state of its own (each step's is its own). */
    static const char *const single_only[] = {"drift"};
    for (size_t k = 0; k < sizeof(single_only) / sizeof(single_only[0]); k++)
        if (json_object_get(def, single_only[k]) != NULL) {
            char p[64];
            snprintf(p, sizeof(p), "/%s", single_only[k]);
            return fail(at, atn, p, why, whyn,
                        "at '%s': %s is for single-step actions, not for a workflow", p,
                        single_only[k]);
        }
    if (json_array_size(steps) > GW_WORKFLOW_MAX_STEPS)
        return fail(at, atn, "/steps", why, whyn, "at '/steps': at most %d steps",
                    GW_WORKFLOW_MAX_STEPS);
    json_array_foreach(steps, i, st)
    {
        const char *id = json_string_value(json_object_get(st, "id"));
        json_t *needs = json_object_get(st, "needs");
        int first = gw_workflow_step_index(steps, id, strlen(id));
        if (first != (int)i) {
            snprintf(ptr, sizeof(ptr), "/steps/%zu/id", i);
            return fail(at, atn, ptr, why, whyn, "at '%s': step id '%s' is also step %d's", ptr, id,
                        first);
        }
        anc[i] = 0;
        if (needs == NULL) {
            if (i > 0)
                anc[i] = anc[i - 1] | (UINT64_C(1) << (i - 1));
        } else {
            size_t k;
            json_t *nd;
            json_array_foreach(needs, k, nd)
            {
                const char *nid = json_string_value(nd);
                int j = gw_workflow_step_index(steps, nid, strlen(nid));
                snprintf(ptr, sizeof(ptr), "/steps/%zu/needs/%zu", i, k);
                if (j < 0)
                    return fail(at, atn, ptr, why, whyn, "at '%s': no step '%s'", ptr, nid);
                if (j >= (int)i)
                    return fail(at, atn, ptr, why, whyn,
                                "at '%s': step '%s' is not before this one: needs names earlier "
                                "steps only",
                                ptr, nid);
                anc[i] |= anc[j] | (UINT64_C(1) << j);
            }
        }
        struct scope sc = {props, steps, anc[i], false};
        snprintf(ptr, sizeof(ptr), "/steps/%zu/inputs", i);
        if (check_value(&sc, json_object_get(st, "inputs"), ptr, at, atn, why, whyn) < 0)
            return -1;
        snprintf(ptr, sizeof(ptr), "/steps/%zu/when", i);
        if (check_when(&sc, json_object_get(st, "when"), ptr, at, atn, why, whyn) < 0)
            return -1;
        json_t *appr = json_object_get(st, "approval");
        if (json_is_true(json_object_get(appr, "plan_first"))) {
            snprintf(ptr, sizeof(ptr), "/steps/%zu/approval/plan_first", i);
            return fail(at, atn, ptr, why, whyn,
                        "at '%s': plan_first is for single-step actions; a step's approval "
                        "approves the step's inputs",
                        ptr);
        }
        /* The undo runs after the step (and so after its ancestors) succeeded. */
        sc.self = true;
        snprintf(ptr, sizeof(ptr), "/steps/%zu/undo/inputs", i);
        if (check_value(&sc, json_object_get(json_object_get(st, "undo"), "inputs"), ptr, at, atn,
                        why, whyn) < 0)
            return -1;
    }
    return 0;
}
