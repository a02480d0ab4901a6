/* SPDX-License-Identifier: MIT */
/*
 * sql_migrate_test: the migration runner against a real PostgreSQL server.
 *
 * Each test gets a fresh database (pgtest) and checks one promise of
 * sql/sql_migrate.h: a fresh apply creates the coordinator's schema,
 * re-applying changes nothing, the recorded names and checksums are right,
 * an edited or failing migration leaves the database exactly as it was,
 * versions out of order are refused before anything runs, and two
 * migrators racing on one database apply each migration exactly once.
 * Without a server the tests are skipped (see tests/support/pgtest.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "pgtest.h"
#include "saga_err.h"
#include "sql_migrate.h"

/* A test migration set's name; the coordinator's set is "coordinator". */
#define TEST_SET "migtest"

/* How many migrations the generated set of the concurrency test has, and
 * how many migrators race on it. */
#define RACE_MIGRATIONS 24
#define RACE_THREADS    2

typedef struct fixture {
	char    conninfo[1024];
	PGconn *conn;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return (-1);
	}
	if (pgtest_db_create("sqlmig", f->conninfo, sizeof(f->conninfo))
	    != 0) {
		free(f);
		return (-1);
	}
	if ((f->conn = pgtest_connect(f->conninfo)) == NULL) {
		pgtest_db_drop(f->conninfo);
		free(f);
		return (-1);
	}
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	fixture *f = *state;

	if (f != NULL) {
		PQfinish(f->conn);
		pgtest_db_drop(f->conninfo);
		free(f);
	}
	return (0);
}

/* Returns the value of a single-integer query, failing the test on
 * error. */
static long long
query_int(PGconn *c, const char *sql)
{
	long long v = -1;

	assert_int_equal(pgtest_query_int(c, sql, &v), 0);
	return (v);
}

/* Returns 1 if the relation exists, else 0. */
static long long
table_exists(PGconn *c, const char *name)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	    "SELECT (to_regclass('public.%s') IS NOT NULL)::int", name);
	return (query_int(c, sql));
}

/* Returns the number of schema_migrations rows of set (0 if the table
 * does not exist). */
static long long
migration_rows(PGconn *c, const char *set)
{
	char sql[256];

	if (table_exists(c, "schema_migrations") == 0) {
		return (0);
	}
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM schema_migrations WHERE set_name = '%s'",
	    set);
	return (query_int(c, sql));
}

/* The connection must be idle (no transaction left open) after every
 * call of the runner, whatever it returned. */
static void
assert_idle(PGconn *c)
{
	assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
}

/* Applies the coordinator's set and checks that it all went in. */
static void
apply_coordinator(PGconn *c)
{
	char err[512] = "";
	int  applied  = -1;
	int  rv;

	rv = sql_migrate_apply(c, "coordinator", coordinator_migrations,
	    coordinator_migrations_count, &applied, err, sizeof(err));
	if (rv != 0) {
		fail_msg("sql_migrate_apply: %s: %s", saga_errname(rv), err);
	}
	assert_int_equal(applied, (int) coordinator_migrations_count);
	assert_idle(c);
}

static void
test_sql_migrate_fresh_apply_creates_schema(void **state)
{
	fixture    *f        = *state;
	const char *tables[] = { "saga_definition", "saga_instance",
		"saga_start_key", "saga_event", "schema_migrations" };

	assert_true(coordinator_migrations_count > 0);
	assert_int_equal(table_exists(f->conn, "saga_definition"), 0);
	apply_coordinator(f->conn);
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		if (table_exists(f->conn, tables[i]) != 1) {
			fail_msg(
			    "table %s missing after a fresh apply", tables[i]);
		}
	}
	assert_int_equal(migration_rows(f->conn, "coordinator"),
	    (long long) coordinator_migrations_count);
}

/* The latest applied_at of the log, in microseconds. */
#define LAST_APPLIED_US                                                  \
	"SELECT (extract(epoch FROM max(applied_at)) * 1000000)::bigint" \
	" FROM schema_migrations"

static void
test_sql_migrate_reapply_is_noop(void **state)
{
	fixture  *f        = *state;
	char      err[512] = "";
	int       applied  = -1;
	long long rows;
	long long stamp;

	apply_coordinator(f->conn);
	rows  = migration_rows(f->conn, "coordinator");
	stamp = query_int(f->conn, LAST_APPLIED_US);

	for (int round = 0; round < 2; round++) {
		applied = -1;
		assert_int_equal(
		    sql_migrate_apply(f->conn, "coordinator",
		        coordinator_migrations, coordinator_migrations_count,
		        &applied, err, sizeof(err)),
		    0);
		assert_int_equal(applied, 0);
		assert_idle(f->conn);
	}
	/* Same rows, not rewritten: the first apply's timestamps stay. */
	assert_int_equal(migration_rows(f->conn, "coordinator"), rows);
	assert_int_equal(query_int(f->conn, LAST_APPLIED_US), stamp);
	/* applied may be NULL. */
	assert_int_equal(
	    sql_migrate_apply(f->conn, "coordinator", coordinator_migrations,
	        coordinator_migrations_count, NULL, NULL, 0),
	    0);
}

static void
test_sql_migrate_version_is_last_applied(void **state)
{
	fixture *f        = *state;
	char     err[512] = "";
	int      version  = -1;

	/* Empty database: no schema_migrations at all. */
	assert_int_equal(table_exists(f->conn, "schema_migrations"), 0);
	assert_int_equal(sql_migrate_version(f->conn, "coordinator", &version,
	                     err, sizeof(err)),
	    0);
	assert_int_equal(version, 0);

	apply_coordinator(f->conn);
	version = -1;
	assert_int_equal(sql_migrate_version(f->conn, "coordinator", &version,
	                     err, sizeof(err)),
	    0);
	assert_int_equal(version,
	    coordinator_migrations[coordinator_migrations_count - 1].version);

	/* Another set in the same database has applied nothing. */
	version = -1;
	assert_int_equal(
	    sql_migrate_version(f->conn, TEST_SET, &version, NULL, 0), 0);
	assert_int_equal(version, 0);
}

static void
test_sql_migrate_records_names_and_checksums(void **state)
{
	static const char check[]
	    = "SELECT name = $2, checksum = md5($3::text),"
	      " checksum ~ '^[0-9a-f]{32}$'"
	      " FROM schema_migrations"
	      " WHERE set_name = 'coordinator' AND version = $1::integer";
	fixture *f = *state;

	apply_coordinator(f->conn);
	assert_int_equal(migration_rows(f->conn, "coordinator"),
	    (long long) coordinator_migrations_count);
	for (size_t i = 0; i < coordinator_migrations_count; i++) {
		const sql_migration *m = &coordinator_migrations[i];
		char                 ver[16];
		const char          *params[3];
		PGresult            *res;

		snprintf(ver, sizeof(ver), "%d", m->version);
		params[0] = ver;
		params[1] = m->name;
		params[2] = m->sql;
		res       = PQexecParams(
		          f->conn, check, 3, NULL, params, NULL, NULL, 0);
		assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
		if (PQntuples(res) != 1) {
			PQclear(res);
			fail_msg("no schema_migrations row for %s", m->name);
		}
		assert_string_equal(PQgetvalue(res, 0, 0), "t");
		assert_string_equal(PQgetvalue(res, 0, 1), "t");
		assert_string_equal(PQgetvalue(res, 0, 2), "t");
		PQclear(res);
	}
}

static void
test_sql_migrate_refuses_edited_migration(void **state)
{
	fixture            *f      = *state;
	const sql_migration orig[] = {
		{ 1, "001_a.sql", "CREATE TABLE mig_a (id integer)" },
	};
	const sql_migration edited[] = {
		{ 1, "001_a.sql",
		    "CREATE TABLE mig_a (id integer, extra text)" },
		{ 2, "002_b.sql", "CREATE TABLE mig_b (id integer)" },
	};
	char      err[512] = "";
	int       applied  = -1;
	int       version  = -1;
	long long sum;

	assert_int_equal(sql_migrate_apply(f->conn, TEST_SET, orig, 1,
	                     &applied, err, sizeof(err)),
	    0);
	assert_int_equal(applied, 1);
	sum = query_int(f->conn,
	    "SELECT count(*) FROM schema_migrations"
	    " WHERE checksum = md5('CREATE TABLE mig_a (id integer)')");
	assert_int_equal(sum, 1);

	err[0] = '\0';
	assert_int_equal(sql_migrate_apply(f->conn, TEST_SET, edited, 2,
	                     &applied, err, sizeof(err)),
	    SAGA_ECONFLICT);
	assert_non_null(strstr(err, "001_a.sql"));
	assert_idle(f->conn);

	/* Nothing changed: the old table, the old checksum, no version 2. */
	assert_int_equal(query_int(f->conn,
	                     "SELECT count(*) FROM information_schema.columns"
	                     " WHERE table_name = 'mig_a'"),
	    1);
	assert_int_equal(table_exists(f->conn, "mig_b"), 0);
	assert_int_equal(migration_rows(f->conn, TEST_SET), 1);
	assert_int_equal(query_int(f->conn,
	                     "SELECT count(*) FROM schema_migrations"
	                     " WHERE checksum = md5('CREATE TABLE mig_a"
	                     " (id integer)')"),
	    1);
	assert_int_equal(
	    sql_migrate_version(f->conn, TEST_SET, &version, NULL, 0), 0);
	assert_int_equal(version, 1);
}

static void
test_sql_migrate_failed_migration_rolls_back(void **state)
{
	fixture            *f     = *state;
	const sql_migration bad[] = {
		{ 1, "001_one.sql", "CREATE TABLE t_one (id integer)" },
		/* Its first statements succeed, then it fails. */
		{ 2, "002_two.sql",
		    "CREATE TABLE t_two (id integer);\n"
		    "INSERT INTO t_two VALUES (1);\n"
		    "CREATE INDEX t_two_idx ON t_two (id);\n"
		    "SELECT no_such_column FROM t_two;\n" },
		{ 3, "003_three.sql", "CREATE TABLE t_three (id integer)" },
	};
	const sql_migration fixed[] = {
		bad[0],
		{ 2, "002_two.sql", "CREATE TABLE t_two (id integer)" },
		bad[2],
	};
	char err[512] = "";
	int  applied  = -1;
	int  version  = -1;

	assert_int_equal(sql_migrate_apply(f->conn, TEST_SET, bad, 3, &applied,
	                     err, sizeof(err)),
	    SAGA_EDB);
	assert_non_null(strstr(err, "002_two.sql"));
	assert_non_null(strstr(err, "no_such_column"));
	assert_idle(f->conn);

	/* Version 1 stays; nothing of version 2 remains; 3 never ran. */
	assert_int_equal(table_exists(f->conn, "t_one"), 1);
	assert_int_equal(table_exists(f->conn, "t_two"), 0);
	assert_int_equal(table_exists(f->conn, "t_two_idx"), 0);
	assert_int_equal(table_exists(f->conn, "t_three"), 0);
	assert_int_equal(migration_rows(f->conn, TEST_SET), 1);
	assert_int_equal(
	    query_int(f->conn,
	        "SELECT count(*) FROM schema_migrations"
	        " WHERE set_name = '" TEST_SET "' AND version = 1"),
	    1);
	assert_int_equal(
	    sql_migrate_version(f->conn, TEST_SET, &version, NULL, 0), 0);
	assert_int_equal(version, 1);

	/* Once fixed (it was never applied, so it may still change), the
	 * rest goes in. */
	applied = -1;
	assert_int_equal(sql_migrate_apply(f->conn, TEST_SET, fixed, 3,
	                     &applied, err, sizeof(err)),
	    0);
	assert_int_equal(applied, 2);
	assert_int_equal(table_exists(f->conn, "t_two"), 1);
	assert_int_equal(table_exists(f->conn, "t_three"), 1);
	assert_int_equal(migration_rows(f->conn, TEST_SET), 3);
}

static void
test_sql_migrate_rejects_out_of_order_versions(void **state)
{
	fixture            *f           = *state;
	const sql_migration backwards[] = {
		{ 2, "002_b.sql", "CREATE TABLE mig_b (id integer)" },
		{ 1, "001_a.sql", "CREATE TABLE mig_a (id integer)" },
	};
	const sql_migration twice[] = {
		{ 1, "001_a.sql", "CREATE TABLE mig_a (id integer)" },
		{ 1, "001_a2.sql", "CREATE TABLE mig_a2 (id integer)" },
	};
	const sql_migration late[] = {
		{ 1, "001_a.sql", "CREATE TABLE mig_a (id integer)" },
		{ 3, "003_c.sql", "CREATE TABLE mig_c (id integer)" },
		{ 2, "002_b.sql", "CREATE TABLE mig_b (id integer)" },
	};
	char err[512] = "";
	int  applied  = -1;

	assert_int_equal(sql_migrate_apply(f->conn, TEST_SET, backwards, 2,
	                     &applied, err, sizeof(err)),
	    SAGA_EINVAL);
	assert_non_null(strstr(err, "001_a.sql"));
	assert_int_equal(sql_migrate_apply(f->conn, TEST_SET, twice, 2,
	                     &applied, err, sizeof(err)),
	    SAGA_EINVAL);
	/* The order is checked before anything runs, even the migrations
	 * that come before the misplaced one. */
	assert_int_equal(sql_migrate_apply(f->conn, TEST_SET, late, 3,
	                     &applied, err, sizeof(err)),
	    SAGA_EINVAL);
	assert_idle(f->conn);
	assert_int_equal(table_exists(f->conn, "mig_a"), 0);
	assert_int_equal(table_exists(f->conn, "mig_b"), 0);
	assert_int_equal(table_exists(f->conn, "mig_c"), 0);
	assert_int_equal(table_exists(f->conn, "schema_migrations"), 0);
}

/* One migrator of the concurrency test: its own connection, the shared
 * migration sets, and what the runner said. */
typedef struct racer {
	const char          *conninfo;
	const sql_migration *migs;
	size_t               n;
	pthread_barrier_t   *start;
	int                  rv_coord;
	int                  applied_coord;
	int                  rv_test;
	int                  applied_test;
	char                 err[512];
} racer;

/* Runs in its own thread: no cmocka assertions here, only results. */
static void *
racer_main(void *arg)
{
	racer  *r = arg;
	PGconn *c = pgtest_connect(r->conninfo);

	r->rv_coord = r->rv_test = SAGA_EDB;
	pthread_barrier_wait(r->start);
	if (c == NULL) {
		snprintf(r->err, sizeof(r->err), "no connection");
		return (NULL);
	}
	r->rv_coord = sql_migrate_apply(c, "coordinator",
	    coordinator_migrations, coordinator_migrations_count,
	    &r->applied_coord, r->err, sizeof(r->err));
	if (r->rv_coord == 0) {
		r->rv_test = sql_migrate_apply(c, TEST_SET, r->migs, r->n,
		    &r->applied_test, r->err, sizeof(r->err));
	}
	PQfinish(c);
	return (NULL);
}

static void
test_sql_migrate_concurrent_apply_once(void **state)
{
	fixture          *f = *state;
	sql_migration     migs[RACE_MIGRATIONS];
	char              names[RACE_MIGRATIONS][32];
	char              sqls[RACE_MIGRATIONS][160];
	racer             racers[RACE_THREADS];
	pthread_t         threads[RACE_THREADS];
	pthread_barrier_t start;
	int               sum_coord = 0;
	int               sum_test  = 0;

	/* Each migration depends on the one before it, so a migration run
	 * twice or out of order fails loudly. */
	for (int i = 0; i < RACE_MIGRATIONS; i++) {
		snprintf(names[i], sizeof(names[i]), "%03d_race.sql", i + 1);
		if (i == 0) {
			snprintf(sqls[i], sizeof(sqls[i]),
			    "CREATE TABLE race_log (n integer PRIMARY KEY)");
		} else {
			snprintf(sqls[i], sizeof(sqls[i]),
			    "INSERT INTO race_log SELECT %d"
			    " WHERE coalesce((SELECT max(n) FROM race_log), 0)"
			    " = %d",
			    i, i - 1);
		}
		migs[i].version = i + 1;
		migs[i].name    = names[i];
		migs[i].sql     = sqls[i];
	}

	assert_int_equal(pthread_barrier_init(&start, NULL, RACE_THREADS), 0);
	for (int i = 0; i < RACE_THREADS; i++) {
		memset(&racers[i], 0, sizeof(racers[i]));
		racers[i].conninfo = f->conninfo;
		racers[i].migs     = migs;
		racers[i].n        = RACE_MIGRATIONS;
		racers[i].start    = &start;
		assert_int_equal(
		    pthread_create(&threads[i], NULL, racer_main, &racers[i]),
		    0);
	}
	for (int i = 0; i < RACE_THREADS; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	}
	pthread_barrier_destroy(&start);

	for (int i = 0; i < RACE_THREADS; i++) {
		if (racers[i].rv_coord != 0 || racers[i].rv_test != 0) {
			fail_msg("migrator %d: %s / %s: %s", i,
			    saga_errname(racers[i].rv_coord),
			    saga_errname(racers[i].rv_test), racers[i].err);
		}
		sum_coord += racers[i].applied_coord;
		sum_test += racers[i].applied_test;
	}
	assert_int_equal(sum_coord, (int) coordinator_migrations_count);
	assert_int_equal(sum_test, RACE_MIGRATIONS);
	assert_int_equal(migration_rows(f->conn, "coordinator"),
	    (long long) coordinator_migrations_count);
	assert_int_equal(migration_rows(f->conn, TEST_SET), RACE_MIGRATIONS);
	/* Every INSERT ran once, in order: 1..RACE_MIGRATIONS-1. */
	assert_int_equal(query_int(f->conn, "SELECT count(*) FROM race_log"),
	    RACE_MIGRATIONS - 1);
	assert_int_equal(
	    query_int(f->conn, "SELECT coalesce(max(n), 0) FROM race_log"),
	    RACE_MIGRATIONS - 1);
}

/* Applies the coordinator's migrations below version and returns how
 * many that is (there must be more after them). */
static size_t
apply_before(PGconn *c, int version)
{
	char   err[512] = "";
	size_t before   = 0;

	while (before < coordinator_migrations_count &&
	    coordinator_migrations[before].version < version) {
		before++;
	}
	assert_true(before < coordinator_migrations_count);
	if (sql_migrate_apply(c, "coordinator", coordinator_migrations,
	        before, NULL, err, sizeof(err))
	    != 0) {
		fail_msg("migrations below %d: %s", version, err);
	}
	return (before);
}

/* 003_hot_updates on a log written before it: the sagas that had
 * finished get finished_at (their last update, what purge used to go by),
 * the others none; purge's and list's indexes are there. */
static void
test_sql_migrate_003_backfills_finished_at(void **state)
{
	fixture *f        = *state;
	char     err[512] = "";
	size_t   before;
	int      applied  = -1;

	before = apply_before(f->conn, 3);
	assert_int_equal(pgtest_exec(f->conn,
	                     "INSERT INTO saga_definition (name, version,"
	                     " content_hash, definition)"
	                     " VALUES ('t', 1, 'h', '{}');"
	                     "INSERT INTO saga_instance (id, saga_name,"
	                     " saga_version, state, context, created_at,"
	                     " updated_at)"
	                     " SELECT ('00000000-0000-7000-8000-' ||"
	                     " lpad(g::text, 12, '0'))::uuid, 't', 1,"
	                     " (ARRAY['RUNNING', 'COMPENSATING', 'COMPLETED',"
	                     " 'COMPENSATED', 'FAILED', 'RESOLVED'])[g],"
	                     " '\\x80', now() - interval '2 days',"
	                     " now() - g * interval '1 hour'"
	                     " FROM generate_series(1, 6) g"),
	    0);
	assert_int_equal(sql_migrate_apply(f->conn, "coordinator",
	                     coordinator_migrations,
	                     coordinator_migrations_count, &applied, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(
	    applied, (int) (coordinator_migrations_count - before));
	assert_int_equal(query_int(f->conn,
	                     "SELECT count(*) FROM saga_instance"
	                     " WHERE finished_at = updated_at AND state IN"
	                     " ('COMPLETED', 'COMPENSATED', 'RESOLVED')"),
	    3);
	assert_int_equal(query_int(f->conn,
	                     "SELECT count(*) FROM saga_instance"
	                     " WHERE finished_at IS NULL AND state IN"
	                     " ('RUNNING', 'COMPENSATING', 'FAILED')"),
	    3);
	assert_int_equal(query_int(f->conn,
	                     "SELECT count(*) FROM pg_indexes"
	                     " WHERE tablename = 'saga_instance' AND"
	                     " (indexdef LIKE '%(finished_at)%' OR indexdef"
	                     " LIKE '%(state, created_at DESC)%' OR indexdef"
	                     " LIKE '%(id) WHERE ((finished_at IS NULL)%')"),
	    3);
}

/* An index under one of 004's names that a CREATE INDEX CONCURRENTLY
 * left invalid (its build failed) is dropped and built again by 005:
 * 004's IF NOT EXISTS takes the name as done. A build that fails: an
 * expression that divides by zero on the table's one row. */
static void
test_sql_migrate_005_rebuilds_invalid_index(void **state)
{
	fixture *f        = *state;
	char     err[512] = "";
	size_t   before;
	int      applied  = -1;

	before = apply_before(f->conn, 4);
	assert_int_equal(pgtest_exec(f->conn,
	                     "INSERT INTO saga_definition (name, version,"
	                     " content_hash, definition)"
	                     " VALUES ('t', 1, 'h', '{}');"
	                     "INSERT INTO saga_instance (id, saga_name,"
	                     " saga_version, state, context, created_at,"
	                     " updated_at)"
	                     " VALUES ('00000000-0000-7000-8000-000000000001',"
	                     " 't', 1, 'RUNNING', '\\x80', now(), now())"),
	    0);
	assert_int_not_equal(pgtest_exec(f->conn,
	                         "CREATE INDEX CONCURRENTLY"
	                         " saga_instance_created_idx ON saga_instance"
	                         " ((1 / (length(saga_name) - 1)))"),
	    0);
	assert_int_equal(query_int(f->conn,
	                     "SELECT count(*) FROM pg_index i JOIN pg_class c"
	                     " ON c.oid = i.indexrelid WHERE NOT i.indisvalid"
	                     " AND c.relname = 'saga_instance_created_idx'"),
	    1);
	assert_int_equal(sql_migrate_apply(f->conn, "coordinator",
	                     coordinator_migrations,
	                     coordinator_migrations_count, &applied, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(
	    applied, (int) (coordinator_migrations_count - before));
	assert_int_equal(query_int(f->conn,
	                     "SELECT count(*) FROM pg_index i JOIN pg_class c"
	                     " ON c.oid = i.indexrelid WHERE i.indisvalid AND"
	                     " c.relname IN ('saga_instance_created_idx',"
	                     " 'saga_event_at_idx')"),
	    2);
	assert_int_equal(query_int(f->conn,
	                     "SELECT count(*) FROM pg_indexes WHERE indexname"
	                     " = 'saga_instance_created_idx' AND indexdef LIKE"
	                     " '%(created_at, id)'"),
	    1);
}

/* The schema in a schema whose name needs quotes: every migration
 * applies (005 once looked its schema up by an unquoted name). */
static void
test_sql_migrate_quoted_schema(void **state)
{
	fixture *f = *state;

	assert_int_equal(pgtest_exec(f->conn,
	                     "CREATE SCHEMA \"Saga\"; SET search_path ="
	                     " \"Saga\""),
	    0);
	apply_coordinator(f->conn);
	assert_int_equal(query_int(f->conn,
	                     "SELECT count(*) FROM pg_tables WHERE"
	                     " schemaname = 'Saga' AND tablename ="
	                     " 'saga_instance'"),
	    1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_sql_migrate_fresh_apply_creates_schema, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_sql_migrate_reapply_is_noop, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_sql_migrate_version_is_last_applied, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_sql_migrate_records_names_and_checksums, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_sql_migrate_refuses_edited_migration, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_sql_migrate_failed_migration_rolls_back, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_sql_migrate_rejects_out_of_order_versions, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_sql_migrate_concurrent_apply_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_sql_migrate_003_backfills_finished_at, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_sql_migrate_005_rebuilds_invalid_index, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_sql_migrate_quoted_schema, setup, teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
