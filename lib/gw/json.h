/*
 * Request bodies that survive every later step.
 *
 * A value the API accepts travels on: into a PostgreSQL jsonb column, back
 * out as text (the claim reply, the outbox's Kafka message), through the
 * worker and into the program's stdin, each time parsed again by jansson.
 * jsonb keeps numbers jansson cannot: a double such as 1e19 comes back as
 * the integer literal 10000000000000000000, which jansson refuses (integers
 * are int64). So a body is refused at the door, with the JSON pointer of the
 * value at fault, unless every number in it round-trips (issue 10):
 * integers must fit int64 (jansson enforces that when parsing) and reals
 * must be finite with a magnitude below 2^63.
 *
 * No threads, no allocation beyond the returned document and a refused
 * value's pointer (gw_json_fault_finish).
 */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <jansson.h>
#include <stddef.h>

/* Why a body was refused: `status` 400 (not JSON: `where` names line,
 * column and byte offset) or 422 (JSON whose value at `pointer` cannot be
 * kept), with a stable machine-readable `code`. */
struct gw_json_fault {
    int status;
    const char *code;    /* "invalid_json" or "number_out_of_range" (static) */
    const char *keyword; /* JSON-Schema-like keyword for the field error */
    char *pointer;       /* RFC 6901, "" = the whole document; set for 422 only
                            (owned: gw_json_fault_finish frees it) */
    char message[320];
};

/* Parses a request body (duplicate keys refused) and checks that every value
 * survives the round trips above. Returns a new reference, or NULL with `f`
 * filled in. */
json_t *gw_json_parse_request(const char *buf, size_t len, struct gw_json_fault *f);

/* The check alone, on a document built otherwise: 0 when every number
 * survives, -1 with `f` naming the first one that does not. */
int gw_json_check_portable(const json_t *doc, struct gw_json_fault *f);

/* Frees what a refusal holds (its pointer). Accepts NULL, and a fault left
 * empty by a call that succeeded. */
void gw_json_fault_finish(struct gw_json_fault *f);

#endif
