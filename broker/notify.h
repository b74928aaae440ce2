/*
 * Notification routing and bodies (notify.c, docs/webhooks.md). Pure
 * functions on JSON; the delivery itself is broker/webhooks.c.
 */
#ifndef GW_BROKER_NOTIFY_H
#define GW_BROKER_NOTIFY_H

#include <jansson.h>
#include <stddef.h>

/* Checks a policy's "notifications" member: 0, or -1 with the JSON pointer
 * at fault in ptr and why in msg. */
int gw_notify_validate(const json_t *n, char *ptr, size_t pcap, char *msg, size_t mcap);

/* The routes of `notifications` (may be NULL) that match a notification of
 * `kind` about `payload`: a new array of {"url", "format", "route"}. A
 * route's criteria (events, actions, teams, approver_teams,
 * approver_roles) must all match; each list matches when any of its
 * patterns ('*' globs) matches. */
json_t *gw_notify_targets(const json_t *notifications, const char *kind, const json_t *payload);

/* The body one destination gets (malloc'd): with `public_url`, the payload
 * gains "url" (<public_url>/ui/runs/{id} or /ui/resources/{id}) and its
 * "text" ends with that link instead of an API call; `format` "slack"
 * makes Slack's {text, blocks} with a button opening the page. */
char *gw_notify_body(const char *format, const char *kind, const char *payload_text,
                     const char *public_url);

#endif
