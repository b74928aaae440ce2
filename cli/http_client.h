/* A blocking JSON HTTP call on libcurl, for CLI commands (never on a loop). */
#ifndef GW_CLI_HTTP_CLIENT_H
#define GW_CLI_HTTP_CLIENT_H

#include <jansson.h>

/* Performs METHOD url with an optional bearer token and JSON body. Returns
 * the HTTP status (or -1 on a transport error, message in *body_out when
 * non-NULL). *body_out (may be NULL) receives the response body (free it). */
int gw_http_call(const char *method, const char *url, const char *token, const char *body,
                 long timeout_ms, char **body_out);

#endif
