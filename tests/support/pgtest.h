/* SPDX-License-Identifier: MIT */
/*
 * pgtest: helpers for integration tests that need a real PostgreSQL server.
 *
 * The server is the one the libpq environment (PGHOST, PGPORT, PGUSER)
 * points at, normally a throwaway cluster from scripts/pg.sh. Each test
 * works in a database of its own, created fresh by pgtest_db_create and
 * dropped by pgtest_db_drop, so that tests can run in parallel (ctest -j).
 *
 * Without a server a test is skipped (exit status 77, which ctest reports
 * as skipped), unless SAGA_TEST_REQUIRE_PG=1 (set by scripts/test.sh) makes
 * it a failure. Every helper prints what went wrong to stderr, so that the
 * test itself only has to assert on the return value.
 */
#ifndef TESTS_SUPPORT_PGTEST_H
#define TESTS_SUPPORT_PGTEST_H

#include <stddef.h>

#include <libpq-fe.h>

/* pgtest_db_create connects to the database postgres of the server given
 * by the libpq environment, (re)creates a fresh database named
 * <prefix>_<pid>_<counter> and writes a conninfo for it (dbname, host,
 * port and user) into conninfo (len bytes). prefix is letters, digits and
 * '_'. Returns 0, or -1 after printing why. When no server answers it
 * prints a SKIP message and exits with status 77, unless
 * SAGA_TEST_REQUIRE_PG=1, in which case it prints the connection error and
 * returns -1. Thread-safe. */
int pgtest_db_create(const char *prefix, char *conninfo, size_t len);

/* pgtest_db_drop drops the database named in conninfo (WITH (FORCE), so
 * that connections left open do not keep it alive). Errors are printed and
 * otherwise ignored. NULL or an empty conninfo does nothing. */
void pgtest_db_drop(const char *conninfo);

/* pgtest_connect connects to conninfo. Returns the connection, or NULL
 * after printing why. Close it with PQfinish. */
PGconn *pgtest_connect(const char *conninfo);

/* pgtest_exec runs sql (one or more commands) on c. Returns 0, or -1 after
 * printing the server's error. */
int pgtest_exec(PGconn *c, const char *sql);

/* pgtest_query_int runs sql, which must return exactly one row of one
 * non-NULL integer column, and stores that value in *out. Returns 0, or -1
 * after printing why (*out is then unchanged). */
int pgtest_query_int(PGconn *c, const char *sql, long long *out);

#endif /* TESTS_SUPPORT_PGTEST_H */
