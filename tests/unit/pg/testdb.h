/*
 * Helpers shared by the pg tests: assertions and a private database per test
 * process inside the cluster named by GW_TEST_PG_DSN.
 */
#ifndef GW_TEST_PG_TESTDB_H
#define GW_TEST_PG_TESTDB_H

#include <stdio.h>
#include <stdlib.h>

#include "../check.h"

/* Creates database gwtest_<tag>_<pid> and returns a conninfo string for it
 * (free with testdb_drop). Exits 77 when GW_TEST_PG_DSN is unset. */
char *testdb_create(const char *tag);

/* Drops the database made by testdb_create and frees `conninfo`. */
void testdb_drop(char *conninfo);

/* Runs one statement on a fresh blocking connection to `conninfo`; aborts on
 * error. Returns the first column of the first row (malloc'd) or NULL. */
char *testdb_exec(const char *conninfo, const char *sql);

#endif
