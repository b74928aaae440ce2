/*
 * One UTF-8 decoder for the project (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). Pure functions, any thread.
 */
#ifndef GW_UTF8_H
#define GW_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one code point from s[0..n) (n > 0) into *cp. Returns its length
 * (1-4), or 0 when the bytes there are not well-formed UTF-8. A NUL byte is
 * the code point 0 (callers that refuse it check it themselves). */
size_t gw_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

#endif
