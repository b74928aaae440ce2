/*
 * GET /v1/admin/audit/verify: `gangway audit verify --json` for the console,
 * run by the broker as a child process of its own executable, so the API's
 * answer is the CLI's answer byte for byte and no second verifier can drift
 * from it (decision 0048). The child gets the database and Kafka settings in
 * its environment (never on its command line, where `ps` would show a
 * password) and, when the broker knows keys (its signing key and
 * GW_AUDIT_VERIFY_KEYS, the retired public keys), checks the chain against
 * every checkpoint on <prefix>gangway.audit.checkpoints.
 *
 * 200 with the verdict ({"ok":true,...} or {"ok":false,"broken":{...}});
 * 503 verify_busy while another verification runs on this broker (one at a
 * time: it reads the whole chain); 503 verify_failed when the verifier could
 * not check (database or Kafka unreachable); 504 verify_timeout after
 * VERIFY_TIMEOUT_MS. Needs read_audit (admin by default).
 *
 * States: spawned -> (exited and stdout at EOF) -> every handle closed ->
 * reply and free; the reply is sent in the last close callback only.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "gw/mem.h"
#include "policy.h"

#define VERIFY_TIMEOUT_MS 120000
#define MAX_OUTPUT        (1 << 20)
#define MAX_ARGS          80

struct verify_job {
    struct gw_api_ctx *ctx;
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t timer;
    char *buf;
    size_t len, cap;
    int64_t status;
    int signal;
    int open; /* handles not closed yet */
    bool timed_out;
    char *env[16];
};

static void job_free(struct verify_job *j)
{
    for (size_t i = 0; i < ARRAY_SIZE(j->env); i++)
        free(j->env[i]);
    free(j->buf);
    free(j);
}

static void finish(struct verify_job *j)
{
    struct gw_api_ctx *ctx = j->ctx;
    json_error_t jerr;
    json_t *verdict = j->buf != NULL ? json_loads(j->buf, 0, &jerr) : NULL;

    ctx->b->audit_verify_busy = false;
    ctx->b->audit_verify_pid = 0;
    if (j->timed_out) {
        gw_api_problem(ctx, 504, "verify_timeout", NULL, "the verification did not finish in %d s",
                       VERIFY_TIMEOUT_MS / 1000);
    } else if ((j->status == 0 || j->status == 1) && j->signal == 0 && json_is_object(verdict)) {
        gw_api_reply_doc(ctx, 200, json_incref(verdict));
    } else {
        gw_api_problem(ctx, 503, "verify_failed", NULL,
                       "the verifier could not check the chain (exit %lld, signal %d); see the "
                       "broker's log",
                       (long long)j->status, j->signal);
    }
    json_decref(verdict);
    job_free(j);
}

static void closed(uv_handle_t *h)
{
    struct verify_job *j = h->data;
    if (--j->open == 0)
        finish(j);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    struct verify_job *j = p->data;
    j->status = status;
    j->signal = term_signal;
    uv_close((uv_handle_t *)p, closed);
    uv_close((uv_handle_t *)&j->timer, closed);
    /* The pipe closes at its EOF (on_read): output still buffered in it
     * when the exit is noticed is read first. */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct verify_job *j = h->data;
    (void)suggested;
    if (j->len + 65536 + 1 > MAX_OUTPUT ||
        gw_grow(&j->buf, &j->cap, j->len + 65536 + 1, 65536) < 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = j->buf + j->len;
    buf->len = j->cap - j->len - 1;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct verify_job *j = s->data;
    (void)buf;
    if (n > 0) {
        j->len += (size_t)n;
        j->buf[j->len] = '\0';
    } else if (n < 0) { /* EOF, an error, or no buffer (over MAX_OUTPUT) */
        uv_read_stop(s);
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, closed);
    }
}

static void on_timeout(uv_timer_t *t)
{
    struct verify_job *j = t->data;
    j->timed_out = true;
    uv_process_kill(&j->proc, SIGKILL);
}

/* "K=V" into env[*n], or nothing when value is NULL. */
static int env_add(struct verify_job *j, size_t *n, const char *k, const char *v)
{
    if (v == NULL)
        return 0;
    size_t len = strlen(k) + strlen(v) + 2;
    if (*n + 1 >= ARRAY_SIZE(j->env) || (j->env[*n] = malloc(len)) == NULL)
        return -1;
    snprintf(j->env[*n], len, "%s=%s", k, v);
    (*n)++;
    return 0;
}

static int join_props(const char *const *extra, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        int w = snprintf(out + len, cap - len, "%s%s", i ? "," : "", extra[i]);
        if (w < 0 || (size_t)w >= cap - len)
            return -1;
        len += (size_t)w;
    }
    return 0;
}

void gw_api_audit_verify(struct gw_api_ctx *ctx)
{
    struct gw_broker *b = ctx->b;
    struct gw_authz z;
    char self[4096], props[4096], keys_copy[4096], checkpoints[16] = "";
    const char *argv[MAX_ARGS];
    bool too_long = false, ok;
    size_t a = 0, ne = 0;

    if (!gw_authz_begin(&z, ctx))
        return;
    ok = gw_authz_can(&z, GW_PERM_READ_AUDIT, NULL, NULL, NULL, 0);
    gw_authz_finish(&z);
    if (!ok) {
        gw_api_problem(ctx, 403, "forbidden", NULL, "verifying the audit trail needs read_audit");
        return;
    }
    bool have_keys = b->opts.audit_signing_key != NULL || b->opts.audit_verify_keys != NULL;
    if (gw_api_query(ctx, "checkpoints", checkpoints, sizeof(checkpoints), &too_long) &&
        strcmp(checkpoints, "kafka") != 0 && strcmp(checkpoints, "none") != 0) {
        gw_api_problem(ctx, 400, "invalid_parameter",
                       gw_api_field_error("/query/checkpoints", "enum", "kafka or none"),
                       "'checkpoints' must be kafka or none");
        return;
    }
    if (too_long) {
        gw_api_query_too_long(ctx);
        return;
    }
    bool use_kafka = checkpoints[0] == '\0' ? have_keys : strcmp(checkpoints, "kafka") == 0;
    if (use_kafka && !have_keys) {
        gw_api_problem(ctx, 400, "invalid_parameter",
                       gw_api_field_error("/query/checkpoints", "keys",
                                          "a broker with --audit-signing-key or "
                                          "GW_AUDIT_VERIFY_KEYS"),
                       "this broker knows no checkpoint keys");
        return;
    }
    if (b->audit_verify_busy) {
        gw_api_problem(ctx, 503, "verify_busy", NULL,
                       "a verification is already running on this broker; retry later");
        return;
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0 || join_props(b->opts.kafka_extra, props, sizeof(props)) < 0) {
        gw_api_problem(ctx, 503, "verify_failed", NULL, "cannot start the verifier");
        return;
    }
    self[n] = '\0';

    argv[a++] = self;
    argv[a++] = "audit";
    argv[a++] = "verify";
    argv[a++] = "--json";
    if (use_kafka) {
        argv[a++] = "--checkpoints";
        argv[a++] = "kafka";
        if (b->opts.audit_signing_key != NULL) {
            argv[a++] = "--public-key"; /* a private PEM serves: its public half verifies */
            argv[a++] = b->opts.audit_signing_key;
        }
        snprintf(keys_copy, sizeof(keys_copy), "%s",
                 b->opts.audit_verify_keys != NULL ? b->opts.audit_verify_keys : "");
        for (char *save = NULL, *k = strtok_r(keys_copy, ",", &save); k != NULL && a < MAX_ARGS - 3;
             k = strtok_r(NULL, ",", &save)) {
            argv[a++] = "--public-key";
            argv[a++] = k;
        }
    }
    argv[a] = NULL;

    struct verify_job *j = calloc(1, sizeof(*j));
    if (j == NULL || env_add(j, &ne, "GW_PG", b->opts.pg_conninfo) < 0 ||
        env_add(j, &ne, "GW_KAFKA_BROKERS", b->opts.kafka_brokers) < 0 ||
        env_add(j, &ne, "GW_TOPIC_PREFIX", b->opts.topic_prefix) < 0 ||
        env_add(j, &ne, "GW_KAFKA_PROPS", props[0] ? props : NULL) < 0 ||
        env_add(j, &ne, "PATH", getenv("PATH")) < 0 ||
        env_add(j, &ne, "GW_LOG_LEVEL", getenv("GW_LOG_LEVEL")) < 0) {
        if (j != NULL)
            job_free(j);
        gw_api_problem(ctx, 503, "verify_failed", NULL, "out of memory");
        return;
    }
    j->ctx = ctx;
    uv_pipe_init(b->loop, &j->out, 0);
    j->out.data = j;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->out},
        {.flags = UV_INHERIT_FD, .data.fd = 2}, /* the verifier's complaints go to our log */
    };
    uv_process_options_t o = {
        .file = self,
        .args = (char **)argv,
        .env = j->env,
        .stdio = stdio,
        .stdio_count = 3,
        .exit_cb = on_exit_cb,
    };
    j->proc.data = j;
    int rc = uv_spawn(b->loop, &j->proc, &o);
    if (rc < 0) {
        /* exit_cb will not run; both handles were initialised and must
         * close (libuv's rule for a failed spawn). */
        j->open = 2;
        j->status = -1;
        uv_close((uv_handle_t *)&j->proc, closed);
        uv_close((uv_handle_t *)&j->out, closed);
        return; /* finish() answers 503 verify_failed */
    }
    b->audit_verify_busy = true;
    b->audit_verify_pid = j->proc.pid;
    j->open = 3;
    uv_timer_init(b->loop, &j->timer);
    j->timer.data = j;
    uv_timer_start(&j->timer, on_timeout, VERIFY_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&j->out, on_alloc, on_read);
}
