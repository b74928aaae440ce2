#include "jk_config.h"

#include "gw/jsonptr.h"
#include "gw/mem.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_MAX        1024
#define DEFAULT_POLL   1000
#define PARAM_NAME_MAX 256

/* ------------------------------------------------------------ a growable string */

struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (gw_grow(&b->s, &b->cap, b->len + n + 1, 128) < 0) {
        b->oom = true;
        return;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Percent-encodes `n` bytes (NUL, CR, LF, '&', '=', '/', '?' included). */
static void sb_escape(struct sbuf *b, const char *s, size_t n)
{
    char *e = curl_easy_escape(NULL, n ? s : "", (int)n);
    if (e == NULL) {
        b->oom = true;
        return;
    }
    sb_str(b, e);
    curl_free(e);
}

/* ------------------------------------------------------------ config */

static bool env_name_ok(const char *s)
{
    if (s == NULL || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static int read_env(json_t *cfg, const char *key, char **out, struct gw_error *err)
{
    json_t *v = json_object_get(cfg, key);
    const char *val;
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || !env_name_ok(json_string_value(v)))
        return gw_error_set(err, GW_EINVAL, false,
                            "jenkins: \"%s\" must name an environment variable", key);
    val = getenv(json_string_value(v));
    if (val == NULL)
        return gw_error_set(err, GW_EINVAL, false,
                            "jenkins: environment variable %s (%s) is not set on this worker",
                            json_string_value(v), key);
    if ((*out = strdup(val)) == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    return 0;
}

static int parse_base(const char *url, char **out, struct gw_error *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *part = NULL, *full = NULL;
    int rc = GW_EINVAL;
    size_t n;
    if (u == NULL)
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        gw_error_set(err, GW_EINVAL, false, "jenkins: \"url\" is not a valid URL");
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        gw_error_set(err, GW_EINVAL, false, "jenkins: \"url\" must be http or https");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) {
        gw_error_set(err, GW_EINVAL, false,
                     "jenkins: \"url\" must not carry credentials, a query or a fragment "
                     "(credentials come from user_env/token_env)");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        gw_error_set(err, GW_EINVAL, false, "jenkins: \"url\" is not a valid URL");
        goto out;
    }
    n = strlen(full);
    while (n > 0 && full[n - 1] == '/')
        n--;
    if ((*out = strndup(full, n)) == NULL) {
        rc = gw_error_set(err, GW_ENOMEM, true, "out of memory");
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(part);
    curl_free(full);
    curl_url_cleanup(u);
    return rc;
}

/* "a/b" -> "/job/a/job/b"; a segment never becomes "..", "?" or a slash. */
static int job_path(const char *job, size_t len, char **out, struct gw_error *err)
{
    struct sbuf b = {0};
    const char *seg = job, *end = job + len;
    if (len == 0 || len > JOB_MAX || strlen(job) != len)
        return gw_error_set(err, GW_EINVAL, false, "jenkins: \"job\" must be 1..%d bytes, no NUL",
                            JOB_MAX);
    while (seg <= end) {
        const char *slash = memchr(seg, '/', (size_t)(end - seg));
        size_t n = slash ? (size_t)(slash - seg) : (size_t)(end - seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.')) {
            free(b.s);
            return gw_error_set(err, GW_EINVAL, false,
                                "jenkins: \"job\" has an empty, \".\" or \"..\" segment");
        }
        sb_str(&b, "/job/");
        sb_escape(&b, seg, n);
        seg += n + 1;
    }
    if (b.oom) {
        free(b.s);
        return gw_error_set(err, GW_ENOMEM, true, "out of memory");
    }
    *out = b.s;
    return 0;
}

static bool template_ok(const char *t)
{
    const char *p = t;
    while ((p = strstr(p, "{{")) != NULL) {
        const char *e = strstr(p + 2, "}}");
        size_t n;
        if (e == NULL)
            return false;
        n = (size_t)(e - (p + 2));
        if (!((n > 0 && p[2] == '/') || (n == 6 && strncmp(p + 2, "run_id", 6) == 0) ||
              (n == 9 && strncmp(p + 2, "action_id", 9) == 0) ||
              (n == 12 && strncmp(p + 2, "requested_by", 12) == 0) ||
              (n == 7 && strncmp(p + 2, "attempt", 7) == 0) ||
              (n == 9 && strncmp(p + 2, "operation", 9) == 0) ||
              (n == 12 && strncmp(p + 2, "resource_key", 12) == 0)))
            return false;
        p = e + 2;
    }
    return true;
}

static int check_parameters(json_t *params, struct gw_error *err)
{
    const char *k;
    json_t *v;
    if (!json_is_object(params))
        return gw_error_set(err, GW_EINVAL, false, "jenkins: \"parameters\" must be an object");
    json_object_foreach(params, k, v)
    {
        if (k[0] == '\0' || strlen(k) > PARAM_NAME_MAX || strcmp(k, JK_RUN_ID_PARAM) == 0)
            return gw_error_set(err, GW_EINVAL, false,
                                "jenkins: bad parameter name (empty, too long or reserved %s)",
                                JK_RUN_ID_PARAM);
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            !template_ok(json_string_value(v)))
            return gw_error_set(err, GW_EINVAL, false,
                                "jenkins: parameter '%s' must be a JSON pointer (\"/name\") or a "
                                "template with {{/pointer}}, {{run_id}}, {{action_id}}, "
                                "{{requested_by}}, {{attempt}}, {{operation}} or {{resource_key}}",
                                k);
    }
    return 0;
}

int gw_jk_config_parse(json_t *cfg, struct jk_config *c, struct gw_error *err)
{
    static const char *const keys[] = {"url",       "job",        "user_env",
                                       "token_env", "parameters", "poll_interval_ms"};
    json_t *url, *job, *poll, *v;
    const char *k;
    int rc;

    memset(c, 0, sizeof(*c));
    c->poll_ms = DEFAULT_POLL;
    if (!json_is_object(cfg))
        return gw_error_set(err, GW_EINVAL, false, "jenkins: backend config is not an object");
    json_object_foreach(cfg, k, v)
    {
        size_t i;
        for (i = 0; i < ARRAY_SIZE(keys) && strcmp(k, keys[i]) != 0; i++)
            ;
        if (i == ARRAY_SIZE(keys))
            return gw_error_set(err, GW_EINVAL, false, "jenkins: unknown config key '%s'", k);
    }
    url = json_object_get(cfg, "url");
    job = json_object_get(cfg, "job");
    if (!json_is_string(url) || !json_is_string(job))
        return gw_error_set(err, GW_EINVAL, false,
                            "jenkins: \"url\" and \"job\" are required strings");
    poll = json_object_get(cfg, "poll_interval_ms");
    if (poll != NULL) {
        if (!json_is_integer(poll) || json_integer_value(poll) < 10 ||
            json_integer_value(poll) > 60000)
            return gw_error_set(err, GW_EINVAL, false,
                                "jenkins: \"poll_interval_ms\" must be an integer in 10..60000");
        c->poll_ms = (int)json_integer_value(poll);
    }
    if ((v = json_object_get(cfg, "parameters")) != NULL) {
        if ((rc = check_parameters(v, err)) != 0)
            return rc;
        c->parameters = v;
    }
    if ((rc = parse_base(json_string_value(url), &c->base, err)) != 0 ||
        (rc = job_path(json_string_value(job), json_string_length(job), &c->job_path, err)) != 0 ||
        (rc = read_env(cfg, "user_env", &c->user, err)) != 0 ||
        (rc = read_env(cfg, "token_env", &c->password, err)) != 0)
        goto fail;
    if ((c->job = strdup(json_string_value(job))) == NULL) {
        rc = gw_error_set(err, GW_ENOMEM, true, "out of memory");
        goto fail;
    }
    return 0;
fail:
    gw_jk_config_finish(c);
    return rc;
}

void gw_jk_config_finish(struct jk_config *c)
{
    if (c == NULL)
        return;
    free(c->base);
    free(c->job);
    free(c->job_path);
    free(c->user);
    if (c->password != NULL) {
        memset(c->password, 0, strlen(c->password));
        free(c->password);
    }
    c->parameters = NULL;
    c->base = c->job = c->job_path = c->user = c->password = NULL;
}

/* ------------------------------------------------------------ parameters */

/* Appends the value as text (strings verbatim, NUL bytes included). */
static void sb_value(struct sbuf *b, json_t *v)
{
    char num[64];
    char *d;
    switch (json_typeof(v)) {
    case JSON_STRING:
        sb_add(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        sb_str(b, num);
        break;
    case JSON_REAL:
        snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        sb_str(b, num);
        break;
    case JSON_TRUE:
        sb_str(b, "true");
        break;
    case JSON_FALSE:
        sb_str(b, "false");
        break;
    case JSON_NULL:
        break;
    default:
        if ((d = json_dumps(v, JSON_COMPACT)) == NULL) {
            b->oom = true;
            return;
        }
        sb_str(b, d);
        free(d);
    }
}

/* Expands a template; substituted values are never re-scanned. */
static void expand(struct sbuf *out, const char *t, const struct gw_run *run)
{
    const char *p = t, *o;
    char num[16];
    while ((o = strstr(p, "{{")) != NULL) {
        const char *e = strstr(o + 2, "}}");
        size_t n = (size_t)(e - (o + 2));
        sb_add(out, p, (size_t)(o - p));
        if (o[2] == '/') {
            json_t *v = gw_jsonptr_get_n(run->inputs, o + 2, n);
            if (v != NULL)
                sb_value(out, v);
        } else if (n == 6 && strncmp(o + 2, "run_id", n) == 0) {
            sb_str(out, run->run_id ? run->run_id : "");
        } else if (n == 9 && strncmp(o + 2, "action_id", n) == 0) {
            sb_str(out, run->action_id ? run->action_id : "");
        } else if (n == 12 && strncmp(o + 2, "requested_by", n) == 0) {
            sb_str(out, run->requested_by ? run->requested_by : "");
        } else if (n == 12 && strncmp(o + 2, "resource_key", n) == 0) {
            sb_str(out, run->resource_key ? run->resource_key : "");
        } else if (n == 9 && strncmp(o + 2, "operation", n) == 0) {
            sb_str(out, run->operation ? run->operation : "");
        } else {
            snprintf(num, sizeof(num), "%d", run->attempt);
            sb_str(out, num);
        }
        p = e + 2;
    }
    sb_str(out, p);
}

static void add_param(struct sbuf *b, const char *name, const char *val, size_t vlen)
{
    if (b->len > 0)
        sb_str(b, "&");
    sb_escape(b, name, strlen(name));
    sb_str(b, "=");
    sb_escape(b, val, vlen);
}

char *gw_jk_params_encode(const struct jk_config *c, const struct gw_run *run, struct gw_error *err)
{
    struct sbuf b = {0}, v = {0};
    const char *k;
    json_t *x;
    sb_str(&b, ""); /* an empty body is still a string */
    if (c->parameters != NULL) {
        json_object_foreach(c->parameters, k, x)
        {
            const char *t = json_string_value(x);
            v.len = 0;
            sb_str(&v, "");
            if (t[0] == '/') {
                json_t *val = gw_jsonptr_get(run->inputs, t);
                if (val == NULL)
                    continue; /* absent: Jenkins applies the parameter's default */
                sb_value(&v, val);
            } else {
                expand(&v, t, run);
            }
            add_param(&b, k, v.s ? v.s : "", v.len);
        }
    } else if (json_is_object(run->inputs)) {
        json_object_foreach(run->inputs, k, x)
        {
            if (json_is_object(x) || json_is_array(x) || json_is_null(x) ||
                strcmp(k, JK_RUN_ID_PARAM) == 0)
                continue;
            v.len = 0;
            sb_str(&v, "");
            sb_value(&v, x);
            add_param(&b, k, v.s ? v.s : "", v.len);
        }
    }
    add_param(&b, JK_RUN_ID_PARAM, run->run_id ? run->run_id : "",
              run->run_id ? strlen(run->run_id) : 0);
    free(v.s);
    if (b.oom || v.oom) {
        free(b.s);
        gw_error_set(err, GW_ENOMEM, true, "out of memory");
        return NULL;
    }
    return b.s;
}

/* ------------------------------------------------------------ JSON matching */

static bool has_run_param(json_t *actions, const char *run_id)
{
    size_t i, j;
    json_t *a, *p;
    json_array_foreach(actions, i, a)
    {
        json_array_foreach(json_object_get(a, "parameters"), j, p)
        {
            json_t *n = json_object_get(p, "name"), *v = json_object_get(p, "value");
            if (json_is_string(n) && json_string_length(n) == strlen(JK_RUN_ID_PARAM) &&
                strcmp(json_string_value(n), JK_RUN_ID_PARAM) == 0 && json_is_string(v) &&
                json_string_length(v) == strlen(run_id) &&
                strcmp(json_string_value(v), run_id) == 0)
                return true;
        }
    }
    return false;
}

long gw_jk_find_build(json_t *job, const char *run_id, const char **url)
{
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(job, "builds"), i, b)
    {
        json_t *num = json_object_get(b, "number");
        if (json_is_integer(num) && json_integer_value(num) > 0 &&
            has_run_param(json_object_get(b, "actions"), run_id)) {
            *url = json_string_value(json_object_get(b, "url"));
            return (long)json_integer_value(num);
        }
    }
    return 0;
}

long gw_jk_find_queue_item(json_t *queue, const char *job_path, const char *run_id)
{
    size_t i, jl = strlen(job_path);
    json_t *it;
    json_array_foreach(json_object_get(queue, "items"), i, it)
    {
        json_t *id = json_object_get(it, "id");
        const char *turl = json_string_value(json_object_get(json_object_get(it, "task"), "url"));
        char *dt, *dj;
        bool same;
        if (!json_is_integer(id) || json_integer_value(id) <= 0 || turl == NULL ||
            !has_run_param(json_object_get(it, "actions"), run_id))
            continue;
        /* Compare decoded paths: Jenkins and curl percent-encode differently. */
        dt = curl_easy_unescape(NULL, turl, 0, NULL);
        dj = curl_easy_unescape(NULL, job_path, (int)jl, NULL);
        same = false;
        if (dt != NULL && dj != NULL) {
            size_t nt = strlen(dt), nj = strlen(dj);
            while (nt > 0 && dt[nt - 1] == '/')
                nt--;
            same = nt >= nj && memcmp(dt + nt - nj, dj, nj) == 0;
        }
        curl_free(dt);
        curl_free(dj);
        if (same)
            return (long)json_integer_value(id);
    }
    return 0;
}

long gw_jk_queue_id_from_location(const char *location)
{
    const char *p = NULL, *q = location;
    char *end;
    long id;
    if (location == NULL)
        return 0;
    while ((q = strstr(q, "/queue/item/")) != NULL)
        p = q++;
    if (p == NULL)
        return 0;
    p += strlen("/queue/item/");
    if (*p < '0' || *p > '9')
        return 0;
    id = strtol(p, &end, 10);
    if (id <= 0 || (*end != '\0' && !(*end == '/' && end[1] == '\0')))
        return 0;
    return id;
}

/* ------------------------------------------------------------ lines */

void gw_jk_lines_init(struct jk_lines *l, size_t max)
{
    memset(l, 0, sizeof(*l));
    l->max = max;
}

static void emit(struct jk_lines *l, const char *s, size_t n, jk_line_cb cb, void *arg)
{
    if (n > 0 && s[n - 1] == '\r')
        n--;
    cb(arg, s, n);
    (void)l;
}

void gw_jk_lines_feed(struct jk_lines *l, const char *data, size_t n, jk_line_cb cb, void *arg)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        if (l->len + take > l->max) {
            /* Too long: emit what fits as one line and go on. */
            size_t fit = l->max - l->len;
            if (l->len == 0) {
                emit(l, data, fit, cb, arg);
            } else {
                char *nb = realloc(l->buf, l->len + fit);
                if (nb != NULL) {
                    l->buf = nb;
                    l->cap = l->len + fit;
                    memcpy(l->buf + l->len, data, fit);
                    emit(l, l->buf, l->len + fit, cb, arg);
                }
                l->len = 0;
            }
            data += fit;
            n -= fit;
            continue;
        }
        if (nl == NULL) {
            if (gw_grow(&l->buf, &l->cap, l->len + take, 256) < 0)
                return;
            memcpy(l->buf + l->len, data, take);
            l->len += take;
            return;
        }
        if (l->len == 0) {
            emit(l, data, take, cb, arg);
        } else {
            gw_jk_lines_feed(l, data, take, cb, arg); /* fits: appends, no newline */
            emit(l, l->buf, l->len, cb, arg);
            l->len = 0;
        }
        data += take + 1;
        n -= take + 1;
    }
}

void gw_jk_lines_flush(struct jk_lines *l, jk_line_cb cb, void *arg)
{
    if (l->len > 0)
        emit(l, l->buf, l->len, cb, arg);
    l->len = 0;
}

void gw_jk_lines_finish(struct jk_lines *l)
{
    free(l->buf);
    memset(l, 0, sizeof(*l));
}
