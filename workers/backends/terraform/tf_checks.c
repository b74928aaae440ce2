/* Compliance checks over a Terraform plan: see tf_checks.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gw/error.h"
#include "gw/jsonschema.h"
#include "tf_checks.h"

#define CHECK_OUT_MAX      (1024 * 1024)
#define CHECK_TIMEOUT_DEF  60
#define CHECK_FINDINGS_MAX 200
#define CHECK_MESSAGE_MAX  1000

static bool severity_ok(const char *s)
{
    return s != NULL &&
           (strcmp(s, "info") == 0 || strcmp(s, "low") == 0 || strcmp(s, "medium") == 0 ||
            strcmp(s, "high") == 0 || strcmp(s, "critical") == 0);
}

/* A check from a file: the file's object, with the config's own keys
 * (other than "file") winning. */
static json_t *load_file(json_t *c, const char *base_dir, size_t i, char *msg, size_t msgsz)
{
    const char *f = json_string_value(json_object_get(c, "file"));
    char path[PATH_MAX];
    json_error_t jerr;
    json_t *doc, *v;
    const char *k;

    if (f == NULL || f[0] == '\0') {
        snprintf(msg, msgsz, "plan_checks[%zu].file must be a path", i);
        return NULL;
    }
    if (f[0] == '/' || base_dir == NULL)
        snprintf(path, sizeof(path), "%s", f);
    else
        snprintf(path, sizeof(path), "%s/%s", base_dir, f);
    doc = json_load_file(path, 0, &jerr);
    if (!json_is_object(doc)) {
        snprintf(msg, msgsz, "plan_checks[%zu].file %s: %s", i, path,
                 doc == NULL ? jerr.text : "not a JSON object");
        json_decref(doc);
        return NULL;
    }
    json_object_foreach(c, k, v)
    {
        if (strcmp(k, "file") != 0)
            json_object_set(doc, k, v);
    }
    return doc;
}

json_t *gw_tf_checks_load(json_t *cfg, const char *base_dir, char *msg, size_t msgsz)
{
    json_t *out = json_array(), *c, *r, *v;
    size_t i, j;

    if (!json_is_array(cfg)) {
        snprintf(msg, msgsz, "plan_checks must be an array");
        goto fail;
    }
    json_array_foreach(cfg, i, c)
    {
        if (!json_is_object(c)) {
            snprintf(msg, msgsz, "plan_checks[%zu] must be an object", i);
            goto fail;
        }
        r = json_object_get(c, "file") ? load_file(c, base_dir, i, msg, msgsz) : json_copy(c);
        if (r == NULL)
            goto fail;
        json_array_append_new(out, r);
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *kind = json_string_value(json_object_get(r, "kind"));
        const char *sev = json_string_value(json_object_get(r, "severity"));
        if (name == NULL || name[0] == '\0') {
            snprintf(msg, msgsz, "plan_checks[%zu].name must be a non-empty string", i);
            goto fail;
        }
        if (sev != NULL && !severity_ok(sev)) {
            snprintf(msg, msgsz,
                     "plan_checks[%zu].severity must be info, low, medium, high or critical", i);
            goto fail;
        }
        if (kind != NULL && strcmp(kind, "exec") == 0) {
            v = json_object_get(r, "command");
            if (!json_is_array(v) || json_array_size(v) == 0) {
                snprintf(msg, msgsz, "plan_checks[%zu].command must be a non-empty array", i);
                goto fail;
            }
            json_t *a;
            json_array_foreach(v, j, a)
            {
                if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a)) {
                    snprintf(msg, msgsz, "plan_checks[%zu].command[%zu] must be a string", i, j);
                    goto fail;
                }
            }
            v = json_object_get(r, "timeout_seconds");
            if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 1 ||
                              json_integer_value(v) > 3600)) {
                snprintf(msg, msgsz, "plan_checks[%zu].timeout_seconds must be 1..3600", i);
                goto fail;
            }
        } else if (kind == NULL || strcmp(kind, "schema") == 0) {
            struct gw_error err = {0};
            struct gw_schema_registry *reg = gw_schema_registry_create(&err);
            struct gw_schema *s = NULL;
            const char *target = json_string_value(json_object_get(r, "target"));
            v = json_object_get(r, "schema");
            if (reg != NULL && (json_is_object(v) || json_is_boolean(v)))
                s = gw_schema_compile(reg, v, "urn:gangway:plan-check", NULL, &err);
            gw_schema_destroy(s);
            gw_schema_registry_destroy(reg);
            if (s == NULL) {
                snprintf(msg, msgsz, "plan_checks[%zu].schema: %s", i,
                         err.message[0] ? err.message : "must be a JSON Schema object");
                goto fail;
            }
            if (json_object_get(r, "target") != NULL &&
                (target == NULL ||
                 (strcmp(target, "plan") != 0 && strcmp(target, "resource_changes") != 0))) {
                snprintf(msg, msgsz, "plan_checks[%zu].target must be plan or resource_changes", i);
                goto fail;
            }
            v = json_object_get(r, "resource_types");
            if (v != NULL && !json_is_array(v)) {
                snprintf(msg, msgsz, "plan_checks[%zu].resource_types must be an array", i);
                goto fail;
            }
        } else {
            snprintf(msg, msgsz, "plan_checks[%zu].kind must be schema or exec", i);
            goto fail;
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

static void add_finding(json_t *findings, const char *check, const char *rule, const char *sev,
                        const char *address, const char *message)
{
    char m[CHECK_MESSAGE_MAX + 1];
    if (json_array_size(findings) >= CHECK_FINDINGS_MAX)
        return;
    snprintf(m, sizeof(m), "%s", message ? message : "");
    json_array_append_new(findings, json_pack("{s:s, s:s, s:s, s:s, s:s}", "check", check, "rule",
                                              rule ? rule : check, "severity", sev ? sev : "high",
                                              "address", address ? address : "", "message", m));
}

static bool type_selected(json_t *types, const char *type)
{
    size_t i;
    json_t *t;
    if (!json_is_array(types))
        return true;
    json_array_foreach(types, i, t)
    {
        if (type != NULL && json_is_string(t) && strcmp(json_string_value(t), type) == 0)
            return true;
    }
    return false;
}

/* Returns false when the check failed. */
static bool run_schema(json_t *c, json_t *plan, json_t *findings)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *sev = json_string_value(json_object_get(c, "severity"));
    const char *text = json_string_value(json_object_get(c, "message"));
    const char *target = json_string_value(json_object_get(c, "target"));
    struct gw_error err = {0};
    struct gw_schema_registry *reg = gw_schema_registry_create(&err);
    struct gw_schema *s = reg ? gw_schema_compile(reg, json_object_get(c, "schema"),
                                                  "urn:gangway:plan-check", NULL, &err)
                              : NULL;
    bool ok = true;
    char m[CHECK_MESSAGE_MAX + 1];

    if (s == NULL) {
        add_finding(findings, name, name, "high", "", "the rule's schema does not compile");
        gw_schema_registry_destroy(reg);
        return false;
    }
    json_t *items = json_object_get(plan, "resource_changes"), *e, *errors;
    size_t i;
    if (target != NULL && strcmp(target, "plan") == 0) {
        errors = NULL;
        if (!gw_schema_validate(s, plan, &errors)) {
            json_t *first = json_array_get(errors, 0);
            const char *loc = json_string_value(json_object_get(first, "instanceLocation"));
            const char *why = json_string_value(json_object_get(first, "message"));
            if (text)
                snprintf(m, sizeof(m), "%s (%s: %s)", text, loc ? loc : "", why ? why : "");
            else
                snprintf(m, sizeof(m), "%s: %s", loc ? loc : "", why ? why : "");
            add_finding(findings, name, name, sev, "", m);
            ok = false;
        }
        json_decref(errors);
    } else {
        json_array_foreach(items, i, e)
        {
            if (!type_selected(json_object_get(c, "resource_types"),
                               json_string_value(json_object_get(e, "type"))))
                continue;
            errors = NULL;
            if (gw_schema_validate(s, e, &errors))
                continue;
            json_t *first = json_array_get(errors, 0);
            const char *loc = json_string_value(json_object_get(first, "instanceLocation"));
            const char *why = json_string_value(json_object_get(first, "message"));
            if (text)
                snprintf(m, sizeof(m), "%s (%s: %s)", text, loc ? loc : "", why ? why : "");
            else
                snprintf(m, sizeof(m), "%s: %s", loc ? loc : "", why ? why : "");
            add_finding(findings, name, name, sev, json_string_value(json_object_get(e, "address")),
                        m);
            json_decref(errors);
            ok = false;
        }
    }
    gw_schema_destroy(s);
    gw_schema_registry_destroy(reg);
    return ok;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One finding per JSON line of the checker's stdout; other lines are
 * ignored, a line that is an object without "message" is taken whole. */
static void parse_lines(const char *check, char *out, json_t *findings)
{
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *f = json_loads(line, 0, NULL);
        if (json_is_object(f)) {
            const char *sev = json_string_value(json_object_get(f, "severity"));
            add_finding(findings, check, json_string_value(json_object_get(f, "rule")),
                        severity_ok(sev) ? sev : "high",
                        json_string_value(json_object_get(f, "address")),
                        json_string_value(json_object_get(f, "message")));
        }
        json_decref(f);
    }
}

static bool run_exec(json_t *c, const char *plan_path, char **envp, json_t *findings)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *sev = json_string_value(json_object_get(c, "severity"));
    json_t *cmd = json_object_get(c, "command"), *v;
    json_int_t timeout = json_integer_value(json_object_get(c, "timeout_seconds"));
    size_t n = json_array_size(cmd), i, len = 0;
    char **argv = calloc(n + 1, sizeof(*argv)), *out = malloc(CHECK_OUT_MAX + 1), m[600];
    int pipefd[2] = {-1, -1}, status = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    pid_t pid = -1;
    bool ok = false, timed_out = false;

    if (timeout <= 0)
        timeout = CHECK_TIMEOUT_DEF;
    if (argv == NULL || out == NULL || pipe2(pipefd, O_CLOEXEC) != 0) {
        add_finding(findings, name, name, "high", "", "cannot start the checker: out of resources");
        goto done;
    }
    json_array_foreach(cmd, i, v) argv[i] = (char *)json_string_value(v);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, plan_path, O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pipefd[1]);
    pipefd[1] = -1;
    if (rc != 0) {
        snprintf(m, sizeof(m), "cannot start %s: %s", argv[0], strerror(rc));
        add_finding(findings, name, name, "high", "", m);
        pid = -1;
        goto done;
    }
    long long deadline = now_ms() + (long long)timeout * 1000;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        int pr = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        char buf[4096];
        ssize_t got = read(pipefd[0], buf, sizeof(buf));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        size_t take = (size_t)got;
        if (len + take > CHECK_OUT_MAX)
            take = CHECK_OUT_MAX - len;
        memcpy(out + len, buf, take);
        len += take;
    }
    if (timed_out) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        snprintf(m, sizeof(m), "checker timed out after %lld s", (long long)timeout);
        add_finding(findings, name, name, sev ? sev : "high", "", m);
        goto done;
    }
    /* Output closed: wait for the exit, still within the deadline. */
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            snprintf(m, sizeof(m), "checker timed out after %lld s", (long long)timeout);
            add_finding(findings, name, name, sev ? sev : "high", "", m);
            goto done;
        }
        usleep(20000);
    }
    out[len] = '\0';
    size_t before = json_array_size(findings);
    parse_lines(name, out, findings);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        ok = true;
    } else {
        if (json_array_size(findings) == before) {
            if (WIFEXITED(status))
                snprintf(m, sizeof(m), "checker exited with code %d", WEXITSTATUS(status));
            else
                snprintf(m, sizeof(m), "checker killed by signal %d", WTERMSIG(status));
            add_finding(findings, name, name, sev ? sev : "high", "", m);
        }
    }
done:
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    free(argv);
    free(out);
    return ok;
}

json_t *gw_tf_checks_run(json_t *checks, json_t *plan, const char *plan_path, char **envp)
{
    json_t *findings = json_array(), *c;
    bool passed = true;
    size_t i;

    json_array_foreach(checks, i, c)
    {
        const char *kind = json_string_value(json_object_get(c, "kind"));
        bool ok = (kind != NULL && strcmp(kind, "exec") == 0)
                      ? run_exec(c, plan_path, envp, findings)
                      : run_schema(c, plan, findings);
        passed = passed && ok;
    }
    return json_pack("{s:b, s:o}", "passed", passed, "findings", findings);
}
