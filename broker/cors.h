/*
 * CORS for portal frontends that call the API from a browser
 * (docs/integrations/webhooks-in.md "Browsers", decision 0063).
 *
 * An allow-list of origins from `--cors-origins` / GW_CORS_ORIGINS
 * ("https://portal.example.com,https://backstage.example.com", or "*");
 * default none, and then no response carries a CORS header. An allowed
 * origin is echoed (with `Vary: Origin`); "*" answers `*`, and credentials
 * are never allowed: the API authenticates with a bearer token the page
 * sends itself, never a cookie.
 *
 * Ownership: gw_cors_create allocates, gw_cors_destroy frees (accepts NULL).
 */
#ifndef GW_BROKER_CORS_H
#define GW_BROKER_CORS_H

#include <stdbool.h>

#include "gw/error.h"
#include "gw/http.h"

struct gw_cors;

/* Parses the comma-separated list; NULL or "" gives NULL (CORS off) and no
 * error. An entry that is not "*" or "scheme://host[:port]" is refused. */
struct gw_cors *gw_cors_create(const char *list, struct gw_error *err);
void gw_cors_destroy(struct gw_cors *c);

/* The response header lines for `req` (allocated from its pool), or NULL
 * when the request has no Origin, or it is not allowed, or CORS is off. */
const char *gw_cors_headers(const struct gw_cors *c, struct gw_http_req *req);

/* True when `req` is a preflight: OPTIONS with Origin and
 * Access-Control-Request-Method. */
bool gw_cors_is_preflight(const struct gw_http_req *req);

/* The headers of the answer to a preflight for a path whose routes accept
 * `methods` ("GET, POST"), or NULL when the origin is not allowed or the
 * requested method is not among them. */
const char *gw_cors_preflight_headers(const struct gw_cors *c, struct gw_http_req *req,
                                      const char *methods);

#endif
