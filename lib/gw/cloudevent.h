/*
 * The CloudEvents 1.0 envelope check shared by the broker's event sink and
 * the workers (docs/worker-protocol.md, schemas/events/envelope.schema.json).
 *
 * The rule, the same on both sides: the message is one JSON object with no
 * repeated member name (a repeated "attempt" or "type" would mean one thing
 * to jansson, which keeps the last, and another to a consumer that keeps the
 * first), "specversion" is the string "1.0", and "type" is a string. What a
 * given type's "data" must hold is the caller's check.
 *
 * Threading: none.
 */
#ifndef GW_CLOUDEVENT_H
#define GW_CLOUDEVENT_H

#include <jansson.h>
#include <stddef.h>

/* Parses and checks `payload`. Returns the event (a new reference) with
 * *type borrowed from it, or NULL with *code GW_EPARSE (not JSON) or
 * GW_EINVAL (JSON but not such an envelope) and `why` (may be NULL) saying
 * why: "not JSON: <parser's text>" or "not a CloudEvents 1.0 document". */
json_t *gw_cloudevent_parse(const char *payload, size_t len, const char **type, int *code,
                            char *why, size_t whysz);

#endif
