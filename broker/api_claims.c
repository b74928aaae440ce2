/*
 * POST /internal/v1/claims: a worker claims several runs in one call (one
 * HTTP exchange, one transaction, one WAL flush; docs/decisions/0053).
 *
 *   {"worker_type": "exec",
 *    "claims": [{"run_id": "<uuid>", "attempt": 1, "worker_id": "w-…-17"}, ...]}
 *
 * answers 200 with one entry per claim, in request order, each what the
 * single-run endpoint (POST /internal/v1/runs/{id}/claim) would have said:
 *
 *   {"claims": [{"run_id": …, "status": 200, "claim": {…}},
 *               {"run_id": …, "status": 409, "code": "claim_refused", "detail": "already_claimed"},
 *               {"run_id": …, "status": 404, "code": "run_not_found"}]}
 *
 * A malformed batch is refused whole (400 invalid_claim, the pointer of the
 * field at fault); nothing is claimed.
 */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "api.h"
#include "gw/crypto.h"
#include "gw/log.h"

/* More than a consumer batch ever holds (runtime.c asks for ≤ 64). */
#define CLAIMS_MAX 256

static void claims_done(struct gw_api_ctx *ctx, const PGresult *res)
{
    json_t *out = json_array(), *doc = json_pack("{s:o}", "claims", out);
    int n = PQntuples(res);
    if (doc == NULL) {
        gw_api_oom(ctx);
        return;
    }
    /* The function answers in no particular order (its set-based grants,
     * then the rest in run id order); the reply keeps the request's. */
    json_t *req = json_object_get(ctx->scratch, "claims");
    size_t nreq = json_array_size(req);
    for (size_t i = 0; i < nreq; i++)
        json_array_append_new(out, json_null());
    for (int r = 0; r < n; r++) {
        long idx = strtol(PQgetvalue(res, r, 0), NULL, 10);
        const char *id = PQgetvalue(res, r, 1);
        const char *result = PQgetvalue(res, r, 2);
        json_t *entry = NULL;
        if (idx < 0 || (size_t)idx >= nreq)
            continue;
        if (strcmp(result, "granted") == 0) {
            json_t *claim = json_loads(PQgetvalue(res, r, 3), 0, NULL);
            if (json_is_object(claim)) {
                json_object_set_new(claim, "heartbeat_interval_seconds",
                                    json_integer(ctx->b->opts.heartbeat_interval_s));
                entry = json_pack("{s:s, s:i, s:o}", "run_id", id, "status", 200, "claim", claim);
                ctx->b->metrics.claims_granted++;
            } else {
                json_decref(claim);
                entry = json_pack("{s:s, s:i, s:s, s:s}", "run_id", id, "status", 500, "code",
                                  "internal_error", "detail",
                                  "the run's stored claim could not be read back");
            }
        } else if (strcmp(result, "not_found") == 0) {
            ctx->b->metrics.claims_refused++;
            entry =
                json_pack("{s:s, s:i, s:s}", "run_id", id, "status", 404, "code", "run_not_found");
        } else {
            ctx->b->metrics.claims_refused++;
            entry = json_pack("{s:s, s:i, s:s, s:s}", "run_id", id, "status", 409, "code",
                              "claim_refused", "detail", result);
        }
        if (entry == NULL || json_array_set_new(out, (size_t)idx, entry) < 0) {
            json_decref(doc);
            gw_api_oom(ctx);
            return;
        }
    }
    gw_api_reply_doc(ctx, 200, doc);
}

static void invalid(struct gw_api_ctx *ctx, const char *pointer, const char *msg)
{
    gw_api_problem(ctx, 400, "invalid_claim", gw_api_field_error(pointer, "type", msg), "%s", msg);
}

void gw_api_claims(struct gw_api_ctx *ctx)
{
    json_t *body = gw_api_body(ctx), *claims, *wtype, *c, *v;
    const char *k;
    size_t i;
    char ptr[64];

    if (body == NULL)
        return;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "claims") != 0 && strcmp(k, "worker_type") != 0) {
            snprintf(ptr, sizeof(ptr), "/%.40s", k);
            invalid(ctx, ptr, "unknown field in a claim batch");
            return;
        }
    }
    wtype = json_object_get(body, "worker_type");
    if (!json_is_string(wtype) || gw_api_text_len(wtype) > 200) {
        invalid(ctx, "/worker_type", "worker_type must be a string of at most 200 characters");
        return;
    }
    claims = json_object_get(body, "claims");
    if (!json_is_array(claims) || json_array_size(claims) == 0 ||
        json_array_size(claims) > CLAIMS_MAX) {
        invalid(ctx, "/claims", "claims must be an array of 1 to 256 claims");
        return;
    }
    json_array_foreach(claims, i, c)
    {
        json_t *id = json_object_get(c, "run_id"), *attempt = json_object_get(c, "attempt"),
               *worker = json_object_get(c, "worker_id");
        if (!json_is_object(c) || json_object_size(c) != 3) {
            snprintf(ptr, sizeof(ptr), "/claims/%zu", i);
            invalid(ctx, ptr, "a claim is {\"run_id\", \"attempt\", \"worker_id\"}");
            return;
        }
        if (!json_is_string(id) || !gw_uuid_valid(json_string_value(id))) {
            snprintf(ptr, sizeof(ptr), "/claims/%zu/run_id", i);
            invalid(ctx, ptr, "run_id must be a uuid");
            return;
        }
        if (!json_is_integer(attempt) || json_integer_value(attempt) < 1 ||
            json_integer_value(attempt) > 1000000) {
            snprintf(ptr, sizeof(ptr), "/claims/%zu/attempt", i);
            invalid(ctx, ptr, "attempt must be an integer >= 1");
            return;
        }
        if (!json_is_string(worker) || gw_api_text_len(worker) > 200) {
            snprintf(ptr, sizeof(ptr), "/claims/%zu/worker_id", i);
            invalid(ctx, ptr, "worker_id must be a string of at most 200 characters");
            return;
        }
    }
    char *arg = gw_api_dump(ctx, claims, JSON_COMPACT);
    if (arg == NULL) {
        gw_api_oom(ctx);
        return;
    }
    const char *params[] = {arg, json_string_value(wtype)};
    gw_api_select(ctx, "claim_runs",
                  "SELECT idx, run_id::text, result, claim::text FROM gw_claim_runs($1::jsonb, $2)",
                  2, params, claims_done);
}
