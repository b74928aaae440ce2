/* The workers tests' assertion (tests/unit/check.h), reachable from the
 * backend subdirectories through their include path. */
#ifndef GW_TEST_WTEST_H
#define GW_TEST_WTEST_H

#include "../check.h"

#endif
