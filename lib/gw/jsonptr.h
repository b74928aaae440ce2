/*
 * JSON pointers (RFC 6901): the one implementation in the tree.
 *
 * Building: a `struct gw_jsonptr` is a growable pointer string; push
 * reference tokens onto it (escaped here: '~' as "~0", '/' as "~1") while
 * walking a document, and truncate back to a saved length on the way up.
 * There is no length limit and nothing is ever cut short: a push either
 * appends the whole token or fails with GW_ENOMEM and leaves the pointer as
 * it was.
 *
 * Reading: gw_jsonptr_get() resolves a pointer against a jansson value.
 * Object members are matched by their unescaped name; array elements by an
 * index of decimal digits without leading zeros ("-", the element after the
 * last one, never exists). A malformed pointer (not empty and not starting
 * with '/', or '~' followed by anything but '0' or '1') resolves to nothing.
 *
 * Memory: init/finish work on embedded memory, finish frees the string and
 * accepts a pointer that was never grown. Values returned by get are
 * borrowed from the document. No threads, no global state.
 */
#ifndef GW_JSONPTR_H
#define GW_JSONPTR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct gw_jsonptr {
    char *s;    /* NUL-terminated once anything was pushed; NULL before */
    size_t len; /* bytes in s, NUL excluded */
    size_t cap;
};

#define GW_JSONPTR_INIT                                                                            \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void gw_jsonptr_init(struct gw_jsonptr *p);
void gw_jsonptr_finish(struct gw_jsonptr *p);

/* The pointer so far: "" (the whole document) until something is pushed.
 * Valid until the next push, truncate, steal or finish. */
const char *gw_jsonptr_str(const struct gw_jsonptr *p);

/* Appends "/" + `token` escaped; the _n form takes `n` bytes of `token`
 * (which may then hold NUL bytes, copied as they are). 0, or GW_ENOMEM with
 * `p` unchanged. */
int gw_jsonptr_push(struct gw_jsonptr *p, const char *token);
int gw_jsonptr_push_n(struct gw_jsonptr *p, const char *token, size_t n);

/* Appends "/<i>" for an array element. 0, or GW_ENOMEM with `p` unchanged. */
int gw_jsonptr_push_index(struct gw_jsonptr *p, size_t i);

/* Appends `pointer`, already a pointer (escaped), as it is: for prefixing
 * a pointer into a part of a document with the part's own pointer.
 * 0, or GW_ENOMEM with `p` unchanged. */
int gw_jsonptr_append(struct gw_jsonptr *p, const char *pointer);

/* Cuts the pointer back to `len` bytes (a length saved before a push). */
void gw_jsonptr_truncate(struct gw_jsonptr *p, size_t len);

/* Hands over the string (malloc'd, "" allocated when nothing was pushed)
 * and leaves `p` empty. NULL when out of memory (`p` is emptied all the
 * same). */
char *gw_jsonptr_steal(struct gw_jsonptr *p);

/* The value at `pointer` in `root` (borrowed), or NULL when there is none
 * or the pointer is malformed. "" is `root` itself. The _n form reads `n`
 * bytes of `pointer`. */
json_t *gw_jsonptr_get(json_t *root, const char *pointer);
json_t *gw_jsonptr_get_n(json_t *root, const char *pointer, size_t n);

/* True when the `n` bytes at `pointer` are a well-formed pointer: empty, or
 * '/' then tokens where every '~' is followed by '0' or '1'. */
bool gw_jsonptr_valid(const char *pointer, size_t n);

#endif
