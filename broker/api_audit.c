/*
 * GET /v1/audit: the audit trail, newest first, keyset-paginated by entry
 * id, with each entry's place in the hash chain (seq, prev_hash, hash; null
 * until sealed). Filters: run, actor, action (the entry's verb; "run.*"
 * matches a family), since (inclusive) and until (exclusive) as RFC 3339.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "policy.h"
#include "gw/crypto.h"
#include "gw/log.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX     500

/* Who may read the audit trail. The only place that decides it: the
 * governance policy maps its `read_audit` permission here. */
/* read_audit is not action-scoped: only unscoped grants (or admin) give it. */
static bool may_read_audit(struct gw_api_ctx *ctx, bool *answered)
{
    struct gw_authz z;
    *answered = false;
    if (!gw_authz_begin(&z, ctx)) {
        *answered = true;
        return false;
    }
    bool ok = gw_authz_can(&z, GW_PERM_READ_AUDIT, NULL, NULL, NULL, 0);
    gw_authz_finish(&z);
    return ok;
}

/* A timestamp is passed to PostgreSQL's timestamptz input; this only keeps
 * obvious garbage and other syntaxes ("now", "epoch", "infinity") out. */
static bool plausible_time(const char *s)
{
    size_t n = strlen(s);
    return n >= 10 && n <= 40 && s[0] >= '0' && s[0] <= '9' &&
           strspn(s, "0123456789-:.TtZz+ ") == n;
}

static bool digits(const char *s)
{
    return s[0] != '\0' && strlen(s) <= 18 && strspn(s, "0123456789") == strlen(s);
}

static void page_done(void *arg, const PGresult *res, const struct gw_error *err)
{
    struct gw_api_ctx *ctx = arg;
    if (err != NULL) {
        if (err->code == GW_EINVAL && strncmp(err->sqlstate, "22", 2) == 0) {
            /* a timestamp PostgreSQL would not read (class 22, not 42) */
            gw_api_problem(ctx, 400, "invalid_parameter",
                           gw_api_field_error("/query/since", "format", "an RFC 3339 date-time"),
                           "'since' and 'until' must be RFC 3339 date-times");
            return;
        }
        gw_api_pg_failed(ctx, err);
        return;
    }
    gw_api_reply_page(ctx, res, (int)json_integer_value(ctx->scratch));
}

/* The query parameter `name`, when given, into buf and *out; an RFC 3339
 * date-time or the request is answered 400 (and false returned). */
static bool query_time(struct gw_api_ctx *ctx, const char *name, char *buf, size_t cap,
                       bool *too_long, const char **out)
{
    char pointer[32];
    if (!gw_api_query(ctx, name, buf, cap, too_long))
        return true;
    if (!plausible_time(buf)) {
        snprintf(pointer, sizeof(pointer), "/query/%s", name);
        gw_api_problem(ctx, 400, "invalid_parameter",
                       gw_api_field_error(pointer, "format", "an RFC 3339 date-time"),
                       "'%s' must be an RFC 3339 date-time", name);
        return false;
    }
    *out = buf;
    return true;
}

void gw_api_audit_list(struct gw_api_ctx *ctx)
{
    bool too_long = false;
    char run[64], actor[GW_SUBJECT_MAX + 16], action[128], since[48], until[48], cursor[32],
        limit_plus[16];
    const char *p_run = NULL, *p_actor = NULL, *p_action = NULL, *p_since = NULL, *p_until = NULL,
               *p_cursor = NULL;
    int limit = LIMIT_DEFAULT;

    bool answered;
    if (!may_read_audit(ctx, &answered)) {
        if (answered)
            return;
        gw_api_problem(ctx, 403, "forbidden", NULL, "reading the audit trail needs read_audit");
        return;
    }
    if (gw_api_query(ctx, "run", run, sizeof(run), &too_long)) {
        if (!gw_uuid_valid(run)) {
            gw_api_problem(ctx, 400, "invalid_parameter",
                           gw_api_field_error("/query/run", "format", "a run id (uuid)"),
                           "'run' must be a run id");
            return;
        }
        p_run = run;
    }
    if (gw_api_query(ctx, "actor", actor, sizeof(actor), &too_long))
        p_actor = actor;
    if (gw_api_query(ctx, "action", action, sizeof(action), &too_long))
        p_action = action;
    if (!query_time(ctx, "since", since, sizeof(since), &too_long, &p_since) ||
        !query_time(ctx, "until", until, sizeof(until), &too_long, &p_until))
        return;
    if (!gw_api_query_limit(ctx, LIMIT_MAX, &limit))
        return;
    if (gw_api_query(ctx, "cursor", cursor, sizeof(cursor), &too_long)) {
        if (!digits(cursor)) {
            gw_api_problem(
                ctx, 400, "invalid_cursor",
                gw_api_field_error("/query/cursor", "format", "an opaque cursor from a page"),
                "the cursor is not one this API returned");
            return;
        }
        p_cursor = cursor;
    }
    if (too_long) {
        gw_api_query_too_long(ctx);
        return;
    }
    ctx->scratch = json_integer(limit);
    snprintf(limit_plus, sizeof(limit_plus), "%d", limit + 1);
    const char *params[] = {p_run, p_actor, p_action, p_since, p_until, p_cursor, limit_plus};
    if (gw_pg_query(ctx->b->pg, "audit_list",
                    "SELECT gw_audit_json(a, c)::text, a.id FROM gw_audit_log a"
                    " LEFT JOIN gw_audit_chain c ON c.audit_id = a.id"
                    " WHERE gw_audit_match(a, $1, $2, $3, $4, $5)"
                    " AND ($6::bigint IS NULL OR a.id < $6::bigint)"
                    " ORDER BY a.id DESC LIMIT $7::int",
                    7, params, page_done, ctx) < 0)
        gw_api_problem(ctx, 503, "unavailable", NULL, "the broker is overloaded; retry later");
}
