/* The unit tests' shared helpers (tests/unit/check.h and testfs.h), reachable
 * from the backend subdirectories through their include path. */
#ifndef GW_TEST_WTEST_H
#define GW_TEST_WTEST_H

#include "../check.h"
#include "../testfs.h"

#endif
