/*
 * Functions this project does not call, turned into build errors (git's
 * banned.h is the model). meson.build force-includes this header into every
 * C file of the project (-include), so no file can forget it.
 *
 * The list, and why:
 * - sprintf, vsprintf, strcpy, strcat: write without a bound; one wrong size
 *   computation is a heap overflow. Use snprintf with the space left, memcpy
 *   with a known length, or asprintf.
 * - strncpy: does not terminate a string that fills the buffer and pads the
 *   rest with NULs; it is never what is meant. strncat: its bound is the
 *   space left, not the buffer size, the classic off-by-one. snprintf or
 *   memcpy instead.
 * - gmtime, localtime, ctime, asctime, strtok: return or keep static state;
 *   broker and worker code also runs on the libuv thread pool. Their _r
 *   forms are allowed.
 *
 * A banned name used as a function call expands to an undeclared identifier
 * that names the function, so the error says what is banned:
 *   error: 'sorry_sprintf_is_a_banned_function' undeclared
 *
 * The system headers that declare these functions are included first, so
 * their declarations (and glibc's fortify wrappers) are read before the
 * macros exist; later includes of them are no-ops.
 */
#ifndef GW_BANNED_H
#define GW_BANNED_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)

#undef gmtime
#define gmtime(t) BANNED(gmtime)
#undef localtime
#define localtime(t) BANNED(localtime)
#undef ctime
#define ctime(t) BANNED(ctime)
#undef asctime
#define asctime(t) BANNED(asctime)
#undef strtok
#define strtok(s, d) BANNED(strtok)

#endif
