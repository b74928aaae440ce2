/*
 * Internals shared by the broker's HTTP handlers.
 *
 * Each request gets a `struct gw_api_ctx`, allocated by the router from the
 * request's pool and freed with it by the one send path (gw_api_send(), which
 * gw_api_reply() and gw_api_problem() use) once the response is sent: a
 * handler that starts asynchronous work keeps the context until its callback
 * replies. Per-request memory comes from the same pool (gw_api_alloc).
 */
#ifndef GW_BROKER_API_H
#define GW_BROKER_API_H

#include <jansson.h>
#include <stdbool.h>

#include "broker.h"
#include "gw/subject.h" /* GW_SUBJECT_MAX, the canonical subject */

/* Who is calling, as resolved from the bearer token. */
struct gw_principal {
    char subject[GW_SUBJECT_MAX];
    char *teams_json; /* JSON array text, e.g. ["payments"] (owned) */
    char *teams_pg;   /* the same as a PostgreSQL array literal (owned) */
    bool admin;
    bool worker;
    bool act_on_behalf; /* the token may name another subject (auth.c) */
    /* Who really called when the principal is someone else's: the service
     * token's subject under Gangway-On-Behalf-Of, "hook:<name>" for an
     * incoming webhook; "" otherwise. Audited beside the subject. */
    char via[GW_SUBJECT_MAX];
};

/* A worker-only token (role worker without admin) is a machine that claims
 * runs and may do nothing else (docs/policy.md). The one statement of that
 * rule: the router asks it for a route's auth class, gw_authz for every
 * permission. */
static inline bool gw_principal_worker_only(const struct gw_principal *p)
{
    return p->worker && !p->admin;
}

struct gw_route; /* router.c */

struct gw_api_ctx {
    struct gw_broker *b;
    /* The action catalog as it was when the request arrived, referenced
     * until the request ends: a reload in between swaps the broker's
     * catalog, never this one (catalog.h). */
    struct gw_catalog *cat;
    struct gw_http_req *req;
    const struct gw_route *route; /* the matched route (router.c) */
    uint64_t start_ns;            /* uv_hrtime() when the router dispatched the request */
    struct gw_principal principal;
    char id[128];     /* the {id} path segment, when the route has one */
    json_t *scratch;  /* any JSON the handler wants freed with the context */
    const char *cors; /* CORS header lines every answer carries, or NULL (cors.h) */
    /* The Idempotency-Key of a submission made for someone else (hooks.c);
     * NULL: the request's header. */
    const char *idempotency_key;
    const char *too_long; /* the first query parameter gw_api_query refused */
    bool not_utf8;        /* ... because it is not UTF-8 (else: too long) */
    int page_limit;       /* a list's page size, for gw_api_page_done */
    /* How the caller signed in (auth.c, session.c). */
    enum gw_auth_method {
        GW_AUTH_API_TOKEN = 1,
        GW_AUTH_JWT,
        GW_AUTH_SESSION,
    } auth_method;
    char token_hash[65];      /* the API token's SHA-256 (GW_AUTH_API_TOKEN) */
    char auth_issuer[64];     /* the issuer entry that accepted the JWT */
    long long auth_expires;   /* the JWT's "exp" (GW_AUTH_JWT), else 0 */
    char session_hash[65];    /* GW_AUTH_SESSION: the session's id hash */
    char csrf[64];            /* ... its CSRF token */
    char session_expires[40]; /* ... its absolute end (RFC 3339) */
    const char *unauth_code;  /* the 401 code; NULL = "unauthorized" */
    /* The rows callback of the query gw_api_select queued. */
    void (*on_rows)(struct gw_api_ctx *ctx, const PGresult *res);
};

/* The router's table, for /metrics: how many routes, and route i's method
 * and path pattern ('*' for a path segment). */
size_t gw_api_route_count(void);
const char *gw_api_route_method(size_t i);
const char *gw_api_route_pattern(size_t i);

/* Handlers. Each ends with exactly one reply. */
void gw_api_health(struct gw_api_ctx *ctx);
void gw_api_ready(struct gw_api_ctx *ctx);
void gw_api_metrics(struct gw_api_ctx *ctx);
void gw_api_actions_list(struct gw_api_ctx *ctx);
void gw_api_action_get(struct gw_api_ctx *ctx);
void gw_api_actions_reload(struct gw_api_ctx *ctx); /* api_catalog.c */
void gw_api_run_submit(struct gw_api_ctx *ctx);
void gw_api_action_validate(struct gw_api_ctx *ctx); /* api_runs.c: submit's checks, no run */
void gw_api_run_get(struct gw_api_ctx *ctx);
void gw_api_runs_list(struct gw_api_ctx *ctx);
void gw_api_run_events(struct gw_api_ctx *ctx);
void gw_api_run_logs(struct gw_api_ctx *ctx);
void gw_api_run_claim(struct gw_api_ctx *ctx);
void gw_api_claims(struct gw_api_ctx *ctx); /* api_claims.c: a batch of claims */
void gw_api_run_heartbeat(struct gw_api_ctx *ctx);
void gw_api_run_cancel(struct gw_api_ctx *ctx);
void gw_api_run_reconcile(struct gw_api_ctx *ctx);
void gw_api_run_resume(struct gw_api_ctx *ctx);   /* POST /v1/runs/{id}/resume */
void gw_api_worker_drain(struct gw_api_ctx *ctx); /* api_workers.c */
void gw_api_run_decide(struct gw_api_ctx *ctx);
void gw_api_approvals_list(struct gw_api_ctx *ctx);
/* GET /v1/runs/{id} for a run outside the caller's read scope: the row if
 * the caller is one of its approvers (or decided on it), to `done`. */
void gw_api_run_get_as_approver(struct gw_api_ctx *ctx, gw_pg_cb done);
void gw_api_extension_decide(struct gw_api_ctx *ctx);

void gw_api_resources_list(struct gw_api_ctx *ctx);
void gw_api_resource_get(struct gw_api_ctx *ctx);
void gw_api_resource_extend(struct gw_api_ctx *ctx);
void gw_api_resource_delete(struct gw_api_ctx *ctx);
void gw_api_audit_list(struct gw_api_ctx *ctx);   /* api_audit.c */
void gw_api_audit_verify(struct gw_api_ctx *ctx); /* api_audit_verify.c */

/* The one send path: counts the response on /metrics (by status class),
 * sends `body` (copied) with `content_type` and `extra_headers` (NULL or
 * "Name: value\r\n" lines), ends the request and frees ctx (it lives in
 * the request's pool, with everything gw_api_alloc gave out). Every reply,
 * problem and stream of the API goes through here or the two below. */
void gw_api_send(struct gw_api_ctx *ctx, int status, const char *content_type,
                 const char *extra_headers, const char *body, size_t len);

/* A 200 stream (gw_http_stream_begin; counted like gw_api_send), and its
 * end, which frees ctx. Once begin was called the handler must call end. */
int gw_api_stream_begin(struct gw_api_ctx *ctx, const char *content_type, const char *extra_headers,
                        void (*on_close)(struct gw_http_req *req));
void gw_api_stream_end(struct gw_api_ctx *ctx);

/* gw_api_send() of a JSON body (application/json). */
void gw_api_reply(struct gw_api_ctx *ctx, int status, const char *extra_headers, const char *json,
                  size_t len);

/* Sends RFC 9457 problem+json {type, title, status, code, detail, errors?}
 * and frees ctx. `errors` (may be NULL) is stolen. */
void gw_api_problem(struct gw_api_ctx *ctx, int status, const char *code, json_t *errors,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The same with `members` (an object, stolen, may be NULL) added after
 * `detail`, e.g. {"errors": [...]} or {"quota": {...}}, and `extra_headers`
 * instead of the defaults (401: WWW-Authenticate, 503: Retry-After). */
void gw_api_problem_ex(struct gw_api_ctx *ctx, int status, const char *code, json_t *members,
                       const char *extra_headers, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* The one answer for a run (resource) that does not exist, whose id is
 * malformed, or that the caller may not see: 404 run_not_found
 * (resource_not_found) with the same detail, so a caller cannot tell those
 * apart (docs/policy.md). Frees ctx. */
void gw_api_run_not_found(struct gw_api_ctx *ctx);
void gw_api_resource_not_found(struct gw_api_ctx *ctx);

/* The length of a JSON string in characters (code points), as JSON
 * Schema's minLength/maxLength and the API document count it; jansson's
 * json_string_length counts bytes. 0 for a non-string. */
size_t gw_api_text_len(const json_t *s);

/* A request's optional `justification` (POST .../runs, POST
 * .../extend): absent, or a string of 1 to 1000 characters, not only
 * blanks. Returns true with *out the text (borrowed from `why`) or NULL;
 * false after answering 422 validation_failed at /justification
 * (api_runs.c). */
bool gw_api_justification(struct gw_api_ctx *ctx, json_t *why, const char **out);

/* One entry of a problem's `errors`: [{"pointer", "keyword", "message"}]
 * (a new array, for gw_api_problem to steal). */
json_t *gw_api_field_error(const char *pointer, const char *keyword, const char *message);

/* The input schema validator's errors as a problem's `errors`, each
 * pointer under /inputs (api_runs.c). Steals `errors`. */
json_t *gw_api_input_errors(json_t *errors);

/* The request body as JSON (gw_json_parse_request: every number must
 * survive jsonb and back). Returns a new reference, also kept in
 * ctx->scratch; or NULL after answering 400 invalid_json (where it failed,
 * an empty body included) or 422 number_out_of_range (the pointer of the
 * value). */
json_t *gw_api_body(struct gw_api_ctx *ctx);

/* Per-request memory: from the HTTP request's pool, freed with the request
 * when the reply is sent (so never by hand, and never used after the
 * reply). NULL when out of memory. gw_api_printf formats into it;
 * gw_api_dump writes `json` with jansson's `flags`, NUL-terminated. */
void *gw_api_alloc(struct gw_api_ctx *ctx, size_t n);
char *gw_api_printf(struct gw_api_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *gw_api_dump(struct gw_api_ctx *ctx, const json_t *json, size_t flags);

/* Sends `doc` (stolen) as compact JSON; 503 when out of memory. */
void gw_api_reply_doc(struct gw_api_ctx *ctx, int status, json_t *doc);

/* Answers 503 unavailable "out of memory" (frees ctx) and returns false. */
bool gw_api_oom(struct gw_api_ctx *ctx);

/* Refuses a body field whose name is not in `allowed` (NULL-terminated):
 * answers 422 validation_failed naming the first such field (errors[0]
 * pointer "/<name>") and returns false. */
bool gw_api_only_fields(struct gw_api_ctx *ctx, json_t *body, const char *const *allowed);

/* Query parameter `name` %-decoded into out[cap]: true when present. A
 * value that does not fit, or is not UTF-8, sets *too_long (and returns
 * false); the handler then answers gw_api_query_too_long() (400 naming the
 * first such parameter and why) before it queries anything. `name` must be
 * a string literal (the context keeps the pointer). */
bool gw_api_query(struct gw_api_ctx *ctx, const char *name, char *out, size_t cap, bool *too_long);
void gw_api_query_too_long(struct gw_api_ctx *ctx);

/* The one parser of integer parameters. `value` of parameter `name`, found
 * `in` "query" or "header": decimal digits only (no sign, no spaces), from
 * min to max. True with *out set; otherwise answers 400 invalid_parameter
 * naming the parameter (errors[0].pointer "/<in>/<name>") and returns false. */
bool gw_api_param_int(struct gw_api_ctx *ctx, const char *in, const char *name, const char *value,
                      long long min, long long max, long long *out);

/* Integer query parameter `name` (a string literal): *present says whether
 * it was given; *out is set only when it was. False when it answered 400
 * (not digits, empty, out of range, too long). */
bool gw_api_query_int(struct gw_api_ctx *ctx, const char *name, long long min, long long max,
                      long long *out, bool *present);

/* `limit=N` (1..max): sets *limit when present. False when it answered 400. */
bool gw_api_query_limit(struct gw_api_ctx *ctx, int max, int *limit);

/* The paging parameters of a keyset-paginated list, read last: `limit=N`
 * (1..max, default the caller's page->limit) and `cursor=<timestamp>~<uuid>`
 * (split into ts and id, NULL when absent); then, since nothing is read
 * after them, the answer to any parameter that was too long. Sets
 * limit_plus (the query fetches one more row to know whether there are
 * more) and ctx->page_limit for gw_api_page_done. False when it answered. */
struct gw_api_page {
    int limit;
    char limit_plus[16];
    char cursor[128];
    const char *ts, *id;
};
bool gw_api_query_page(struct gw_api_ctx *ctx, struct gw_api_page *page, int max, bool too_long);

/* Answers 200 {"items": [column 0 of the first `limit` rows, verbatim JSON],
 * "next_cursor": column 1 of row limit-1 when there are more, else null}.
 * The list queries fetch limit + 1 rows to know whether there are more. */
void gw_api_reply_page(struct gw_api_ctx *ctx, const PGresult *res, int limit);

/* Answers a query for one JSON document: 200 with column 0 of its one row,
 * `not_found` when there is no row (or a NULL), 503/500 when it failed. */
void gw_api_reply_row(struct gw_api_ctx *ctx, const PGresult *res, const struct gw_error *err,
                      void (*not_found)(struct gw_api_ctx *ctx));

/* The callback of the keyset-paginated list queries: 400 for a time
 * PostgreSQL cannot read (GW_EINVAL), 503/500 for other failures, else
 * gw_api_reply_page() with ctx->page_limit. */
void gw_api_page_done(void *arg, const PGresult *res, const struct gw_error *err);

/* Query parameter `name` (a string literal) that must be one of the `n`
 * `values`: *out is set to the matching entry when present. False when it
 * answered 400 invalid_parameter (errors[0]: "/query/<name>", enum, `what`);
 * a value too long for any entry sets *too_long like gw_api_query. */
bool gw_api_query_enum(struct gw_api_ctx *ctx, const char *name, const char *const *values,
                       size_t n, const char *what, const char **out, bool *too_long);

/* A JSON array of strings as a PostgreSQL array literal ({"a","b\\"c"});
 * malloc'd, NULL when out of memory. Non-strings become "". */
char *gw_api_pg_array(json_t *arr);

/* Queues a query whose callback answers ctx; answers 503 itself when the
 * pool refuses it. */
void gw_api_query_or_503(struct gw_api_ctx *ctx, const char *name, const char *sql, int n,
                         const char *const *params, gw_pg_cb cb);

/* The same for a handler that only reads rows: `on_rows` runs with the
 * result when the query succeeds; a failed one is answered by
 * gw_api_pg_failed() without it. One such query per ctx at a time. */
void gw_api_select(struct gw_api_ctx *ctx, const char *name, const char *sql, int n,
                   const char *const *params,
                   void (*on_rows)(struct gw_api_ctx *ctx, const PGresult *res));

/* Answers a failed PostgreSQL call: 503 with Retry-After when it may pass,
 * 500 otherwise; frees ctx. */
void gw_api_pg_failed(struct gw_api_ctx *ctx, const struct gw_error *err);

/* Authentication (auth.c): resolves the bearer token (cached), then calls
 * `next` with ctx->principal filled, or answers 401 itself. */
struct gw_auth *gw_auth_create(struct gw_broker *b);
void gw_auth_destroy(struct gw_auth *a);
void gw_auth_check(struct gw_api_ctx *ctx, void (*next)(struct gw_api_ctx *ctx));
/* The same for a token given some other way (POST /v1/session's body):
 * an API token or a JWT, exactly as in the Authorization header. */
void gw_auth_token(struct gw_api_ctx *ctx, const char *token, void (*next)(struct gw_api_ctx *ctx));
/* The same for an API token known by its SHA-256 (hex): a dev login code
 * names the token it signs in as. */
void gw_auth_token_hash(struct gw_api_ctx *ctx, const char *hash,
                        void (*next)(struct gw_api_ctx *ctx));

/* Console sessions (session.c, docs/console.md). A request without an
 * Authorization header but with the gw_session cookie is authenticated by
 * its session: expired, idle, revoked (or its API token revoked) -> 401;
 * a state-changing method without the matching X-CSRF-Token -> 403
 * csrf_failed. Then `next` runs with the principal the session holds. */
bool gw_session_cookie(const struct gw_http_req *req, char *out, size_t cap);
void gw_session_check(struct gw_api_ctx *ctx, const char *cookie,
                      void (*next)(struct gw_api_ctx *ctx));
/* How gw_session_start answers once the session exists. */
enum gw_session_reply { GW_SESSION_REPLY_JSON, GW_SESSION_REPLY_REDIRECT };
/* Creates a session for ctx->principal (method from ctx->auth_method or
 * `method` when not NULL), sets the cookie and answers: 201 with the session
 * document, or 302 to `return_to` (a same-origin path). */
void gw_session_start(struct gw_api_ctx *ctx, const char *method, enum gw_session_reply reply,
                      const char *return_to);
void gw_api_session_create(struct gw_api_ctx *ctx); /* POST /v1/session */
void gw_api_session_get(struct gw_api_ctx *ctx);    /* GET /v1/session */
void gw_api_session_delete(struct gw_api_ctx *ctx); /* DELETE /v1/session */
void gw_api_dev_login(struct gw_api_ctx *ctx);      /* GET /auth/dev-login */
/* The security headers of every console page and sign-in redirect. */
extern const char gw_console_headers[];
/* Static console (console.c): GET / and /ui/... */
struct gw_console *gw_console_create(const char *dir);
void gw_console_destroy(struct gw_console *c);
void gw_console_serve(struct gw_api_ctx *ctx);
/* OIDC sign-in (oidc.c). */
void gw_api_auth_providers(struct gw_api_ctx *ctx); /* GET /v1/auth/providers */
void gw_api_oidc_login(struct gw_api_ctx *ctx);     /* GET /auth/oidc/login */
void gw_api_oidc_callback(struct gw_api_ctx *ctx);  /* GET /auth/oidc/callback */
/* GET /v1/dashboard (api_dashboard.c). */
void gw_api_dashboard(struct gw_api_ctx *ctx);

#endif
