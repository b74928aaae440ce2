/*
 * Incoming webhooks: `POST /v1/hooks/{name}` signed with HMAC-SHA256
 * instead of a bearer token, mapped by the hooks configuration
 * (`--hooks-config FILE` / GW_HOOKS_CONFIG) to an action, an identity and
 * the action's inputs (docs/integrations/webhooks-in.md, decision 0062).
 *
 * Ownership: gw_hooks_load allocates everything (the secrets read from
 * their environment variables at start-up included); gw_hooks_destroy
 * frees it and accepts NULL.
 */
#ifndef GW_BROKER_HOOKS_H
#define GW_BROKER_HOOKS_H

#include "gw/error.h"

struct gw_hooks;
struct gw_api_ctx;

/* Reads and checks the file; NULL with `err` naming the hook and field at
 * fault (or an unset secret variable). */
struct gw_hooks *gw_hooks_load(const char *path, struct gw_error *err);
void gw_hooks_destroy(struct gw_hooks *h);

/* POST /v1/hooks/{name} (router.c, auth class NONE: the signature is the
 * authentication). */
void gw_api_hook_invoke(struct gw_api_ctx *ctx);

#endif
