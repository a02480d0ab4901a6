/* SPDX-License-Identifier: MIT */
/*
 * store_test: the write pipeline of saga_store against a real PostgreSQL
 * database: what a batch of one saga and a batch of several write, how
 * fencing drops a saga another instance owns, and how the batches are
 * planned (a batch of one saga never scans saga_instance, whatever the
 * table's statistics said when its plan was made), which transitions are
 * HOT updates, when a write renews a lease, that a connection that
 * only reads does not wait for locks that only writing needs, and that a
 * connection's waits are bounded (sql_conn) unless its conninfo says
 * otherwise, and that the release of the leases at SIGTERM waits for no
 * row lock.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <cmocka.h>

#include "pgtest.h"
#include "saga_err.h"
#include "saga_store.h"
#include "sql_conn.h"
#include "sql_durable.h"
#include "sql_migrate.h"

#define OWNER "store-test"

typedef struct fixture {
	char        conninfo[512];
	PGconn     *db; /* the test's own connection */
	saga_store *st;
} fixture;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static void
new_id(saga_id *id)
{
	static uint8_t n;
	uint8_t        rnd[10] = { 0 };

	for (size_t i = 0; i < sizeof(rnd); i++) {
		rnd[i] = (uint8_t) rand();
	}
	rnd[0] = n++;
	saga_id_make_v7(id, now_ms(), rnd);
}

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char     err[512];
	int      version;
	char     hash[65];

	assert_non_null(f);
	assert_int_equal(
	    pgtest_db_create("store", f->conninfo, sizeof(f->conninfo)), 0);
	assert_non_null(f->db = pgtest_connect(f->conninfo));
	assert_int_equal(sql_migrate_apply(f->db, "coordinator",
	                     coordinator_migrations,
	                     coordinator_migrations_count, NULL, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(saga_store_open(&f->st, f->conninfo, OWNER, 10000,
	                     err, sizeof(err)),
	    0);
	assert_int_equal(saga_store_def_register(f->st, "t",
	                     "{\"name\":\"t\",\"steps\":[]}", &version, hash),
	    0);
	assert_int_equal(version, 1);
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	fixture *f = *state;

	saga_store_free(f->st);
	PQfinish(f->db);
	pgtest_db_drop(f->conninfo);
	free(f);
	return (0);
}

/* Sends what is staged and waits (10 s at most) for the batch's end. */
static saga_store_result
flush_wait(saga_store *st)
{
	int64_t until = now_ms() + 10000;

	assert_int_equal(saga_store_flush(st), 0);
	while (now_ms() < until) {
		struct pollfd     p = { saga_store_fd(st), POLLIN, 0 };
		saga_store_result r;

		if (saga_store_want_write(st)) {
			p.events |= POLLOUT;
		}
		(void) poll(&p, 1, 100);
		if ((r = saga_store_poll(st)) != SAGA_STORE_PENDING) {
			return (r);
		}
	}
	fail_msg("the batch did not end within 10 s");
	return (SAGA_STORE_FAILED);
}

static void
inst_init(saga_inst *in)
{
	memset(in, 0, sizeof(*in));
	new_id(&in->id);
	in->state      = SAGA_ST_RUNNING;
	in->step       = 0;
	in->max_sent   = -1;
	in->created_ms = now_ms();
}

/* Stages the insert of a new saga (input {}), started with idempotency
 * key (or NULL), and its started event. */
static void
stage_new_key(saga_store *st, saga_inst *in, const char *key)
{
	static const uint8_t ctx[] = { 0x81, 0xa5, 'i', 'n', 'p', 'u', 't',
		0x80 };
	saga_store_new       nw    = { 0 };
	saga_log             lg    = { 0 };

	nw.saga_name    = "t";
	nw.saga_version = 1;
	nw.context      = (proto_raw) { ctx, sizeof(ctx) };
	nw.key          = key;
	nw.input        = (proto_raw) { ctx + 7, 1 };
	in->seq         = 1;
	assert_int_equal(saga_store_stage_insert(st, in, &nw), 0);
	lg.type        = SAGA_LOG_STARTED;
	lg.seq         = 1;
	lg.at_ms       = now_ms();
	lg.step        = -1;
	lg.kind        = -1;
	lg.outcome     = -1;
	lg.duration_us = -1;
	assert_int_equal(saga_store_stage_log(st, &in->id, &lg), 0);
}

static void
stage_new(saga_store *st, saga_inst *in)
{
	stage_new_key(st, in, NULL);
}

/* Stages a transition: step sent, or, with error, a retry waiting. */
static void
stage_step(saga_store *st, saga_inst *in, const char *error)
{
	saga_log lg = { 0 };

	in->seq++;
	in->attempt++;
	in->max_sent = in->step;
	in->phase_start_ms = now_ms();
	lg.seq         = in->seq;
	lg.at_ms       = now_ms();
	lg.step        = in->step;
	lg.kind        = 0;
	lg.attempt     = in->attempt;
	lg.outcome     = -1;
	lg.duration_us = -1;
	if (error != NULL) {
		snprintf(in->last_error, sizeof(in->last_error), "%s", error);
		in->in_flight  = false;
		in->next_at_ms = now_ms() + 60000;
		lg.type        = SAGA_LOG_RETRY;
		lg.next_at_ms  = in->next_at_ms;
		snprintf(lg.error, sizeof(lg.error), "%s", error);
	} else {
		in->last_error[0] = '\0';
		in->in_flight     = true;
		lg.type           = SAGA_LOG_SENT;
	}
	assert_int_equal(saga_store_stage_update(st, in, (proto_raw) { 0 },
	                     now_ms(), 1, false),
	    0);
	assert_int_equal(saga_store_stage_log(st, &in->id, &lg), 0);
}

static long long
query_int(PGconn *db, const char *fmt, const saga_id *id)
{
	char      sql[512], idt[40];
	long long v = -1;

	saga_id_format(id, idt);
	snprintf(sql, sizeof(sql), fmt, idt);
	assert_int_equal(pgtest_query_int(db, sql, &v), 0);
	return (v);
}

/* The integer that query (a format with one %s) returns for counter. */
static long long
counter_query(PGconn *db, const char *query, const char *counter)
{
	char      sql[400];
	long long v = -1;

	snprintf(sql, sizeof(sql), query, counter);
	assert_int_equal(pgtest_query_int(db, sql, &v), 0);
	return (v);
}

/* One counter of saga_instance in pg_stat_user_tables, read afresh. */
static long long
table_stat(PGconn *db, const char *counter)
{
	assert_int_equal(pgtest_exec(db, "SELECT pg_stat_clear_snapshot()"),
	    0);
	return (counter_query(db,
	    "SELECT %s FROM pg_stat_user_tables"
	    " WHERE relname = 'saga_instance'",
	    counter));
}

/* A backend reports its statistics as it exits, not before: waits (15 s
 * at most) until saga_instance's updated rows reach want, and returns
 * them. */
static long long
wait_updates(PGconn *db, long long want)
{
	int64_t   until = now_ms() + 15000;
	long long upd   = -1;

	while (now_ms() < until && (upd = table_stat(db, "n_tup_upd")) < want) {
		poll(NULL, 0, 50);
	}
	return (upd);
}

/* Sets a saga's lease to end left (an interval) from now, on db. */
static void
set_lease(PGconn *db, const saga_id *id, const char *left)
{
	char sql[256], idt[40];

	snprintf(sql, sizeof(sql),
	    "UPDATE saga_instance SET lease_until = now() + interval '%s'"
	    " WHERE id = '%s'",
	    left, saga_id_format(id, idt));
	assert_int_equal(pgtest_exec(db, sql), 0);
}

/* The end of a saga's lease, in ms since the epoch. */
static long long
lease_ms(PGconn *db, const saga_id *id)
{
	return (query_int(db,
	    "SELECT (extract(epoch FROM lease_until) * 1000)::bigint"
	    " FROM saga_instance WHERE id = '%s'",
	    id));
}

/* A batch of one saga and a batch of two write the same thing: the row
 * (NULLs included) and the events, in order. */
static void
test_write_one_and_several(void **state)
{
	fixture  *f = *state;
	saga_inst a, b;

	inst_init(&a);
	inst_init(&b);
	assert_int_equal(saga_store_pipeline_start(f->st), 0);
	stage_new(f->st, &a);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	stage_new(f->st, &b);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);

	/* One saga: sent, then a retry with an error and a time. */
	stage_step(f->st, &a, NULL);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	stage_step(f->st, &a, "boom");
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	/* Two sagas in one batch. */
	stage_step(f->st, &a, NULL);
	stage_step(f->st, &b, "bang");
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	/* And one again: the error cleared, the time gone. */
	stage_step(f->st, &b, NULL);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);

	assert_int_equal(query_int(f->db,
	                     "SELECT event_seq FROM saga_instance"
	                     " WHERE id = '%s'",
	                     &a.id),
	    4);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_event"
	                     " WHERE saga_id = '%s'",
	                     &a.id),
	    4);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_event"
	                     " WHERE saga_id = '%s'",
	                     &b.id),
	    3);
	assert_int_equal(query_int(f->db,
	                     "SELECT attempt * 10 + current_step"
	                     " FROM saga_instance WHERE id = '%s'",
	                     &a.id),
	    30);
	/* a's last write (in the batch of two) cleared its error and its
	 * time; b's last (alone) did the same after the batch of two had
	 * set them. */
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_instance"
	                     " WHERE id = '%s' AND last_error IS NULL"
	                     " AND next_attempt_at IS NULL"
	                     " AND context IS NOT NULL",
	                     &a.id),
	    1);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_instance"
	                     " WHERE id = '%s' AND last_error IS NULL"
	                     " AND next_attempt_at IS NULL",
	                     &b.id),
	    1);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_event"
	                     " WHERE saga_id = '%s' AND event = 'step_retry'"
	                     " AND error = 'bang'",
	                     &b.id),
	    1);
	/* The retry written alone kept its error and its time. */
	stage_step(f->st, &a, "late");
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_instance"
	                     " WHERE id = '%s' AND last_error = 'late'"
	                     " AND next_attempt_at > now()",
	                     &a.id),
	    1);
}

/* A saga another instance took over (its epoch moved on) is fenced off,
 * alone or in a batch of several, and its events are not written. */
static void
test_fencing(void **state)
{
	fixture       *f = *state;
	saga_inst      a, b;
	const saga_id *fenced;
	char           sql[256], idt[40];

	inst_init(&a);
	inst_init(&b);
	assert_int_equal(saga_store_pipeline_start(f->st), 0);
	stage_new(f->st, &a);
	stage_new(f->st, &b);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	snprintf(sql, sizeof(sql),
	    "UPDATE saga_instance SET epoch = 2, owner = 'other'"
	    " WHERE id = '%s'",
	    saga_id_format(&b.id, idt));
	assert_int_equal(pgtest_exec(f->db, sql), 0);

	stage_step(f->st, &b, NULL);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	assert_int_equal(saga_store_fenced(f->st, &fenced), 1);
	assert_true(saga_id_equal(&fenced[0], &b.id));

	stage_step(f->st, &a, NULL);
	stage_step(f->st, &b, NULL);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	assert_int_equal(saga_store_fenced(f->st, &fenced), 1);
	assert_true(saga_id_equal(&fenced[0], &b.id));

	stage_step(f->st, &a, NULL);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	assert_int_equal(saga_store_fenced(f->st, &fenced), 0);

	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_event"
	                     " WHERE saga_id = '%s'",
	                     &b.id),
	    1);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_event"
	                     " WHERE saga_id = '%s'",
	                     &a.id),
	    3);
}

/* The plans. saga_instance is analyzed while empty, the worst statistics
 * a plan can be made from (a sequential scan is then the cheapest way to
 * find a row); then it fills, and batches of one saga run long enough
 * for PostgreSQL to keep a generic plan. None of them may scan the
 * table: the store's connection is closed (its backend reports its
 * statistics as it exits) and pg_stat_user_tables must show index scans
 * only. */
static void
test_plans(void **state)
{
	fixture  *f = *state;
	saga_inst v[200];
	long long seq, idx, upd;

	assert_int_equal(pgtest_exec(f->db, "ANALYZE saga_instance"), 0);
	assert_int_equal(saga_store_pipeline_start(f->st), 0);
	for (size_t i = 0; i < 200; i++) {
		inst_init(&v[i]);
		stage_new(f->st, &v[i]);
		if (i % 50 == 49) {
			assert_int_equal(flush_wait(f->st),
			    SAGA_STORE_COMMITTED);
		}
	}
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < 200; i += 10) {
			stage_step(f->st, &v[i], NULL);
			assert_int_equal(flush_wait(f->st),
			    SAGA_STORE_COMMITTED);
		}
	}
	saga_store_free(f->st);
	f->st = NULL;
	upd = wait_updates(f->db, 60);
	assert_int_equal(upd, 60);
	seq = table_stat(f->db, "seq_scan");
	idx = table_stat(f->db, "idx_scan");
	print_message("saga_instance: %lld sequential scans, %lld index "
	              "scans, %lld rows updated\n",
	    seq, idx, upd);
	assert_int_equal(seq, 0);
	assert_true(idx >= 60);
}

/* A counter of pg_stat_statements for the write of several sagas in
 * this test's database. */
static long long
write_stat(PGconn *db, const char *counter)
{
	return (counter_query(db,
	    "SELECT coalesce(sum(%s), 0) FROM pg_stat_statements s"
	    " JOIN pg_database d ON d.oid = s.dbid"
	    " WHERE d.datname = current_database() AND query LIKE"
	    " 'WITH upd AS (UPDATE saga_instance s SET state = u.state%%'",
	    counter));
}

/* The write of several sagas is planned once, not once per batch, and
 * the plan PostgreSQL keeps reads only the batch's rows: saga_instance is
 * analyzed while empty, holds 40 sagas, and takes 40 batches of 10.
 * pg_stat_statements (scripts/test.sh preloads it) counts the plans;
 * autovacuum is off on the log's tables, as its ANALYZE would make
 * PostgreSQL plan again. Without pg_stat_statements the test is skipped,
 * or fails with SAGA_TEST_REQUIRE_PG=1. */
static void
test_write_planned_once(void **state)
{
	fixture    *f = *state;
	char        conninfo[600];
	char        err[512];
	saga_store *wr = NULL;
	saga_inst   v[40];
	long long   loaded = 0, calls, plans, upd, seq, fetched;

	assert_int_equal(pgtest_query_int(f->db,
	                     "SELECT count(*) FROM pg_settings"
	                     " WHERE name = 'shared_preload_libraries'"
	                     " AND setting LIKE '%pg_stat_statements%'",
	                     &loaded),
	    0);
	if (loaded == 0) {
		const char *req = getenv("SAGA_TEST_REQUIRE_PG");

		if (req != NULL && strcmp(req, "1") == 0) {
			fail_msg("the server does not preload "
			         "pg_stat_statements (SAGA_TEST_REQUIRE_PG=1; "
			         "scripts/test.sh's cluster does)");
		}
		print_message("skipped: the server does not preload "
		              "pg_stat_statements\n");
		skip();
	}
	assert_int_equal(pgtest_exec(f->db,
	                     "CREATE EXTENSION IF NOT EXISTS"
	                     " pg_stat_statements;"
	                     " ALTER TABLE saga_instance"
	                     " SET (autovacuum_enabled = off);"
	                     " ALTER TABLE saga_event"
	                     " SET (autovacuum_enabled = off)"),
	    0);
	assert_int_equal(pgtest_exec(f->db, "ANALYZE saga_instance"), 0);
	assert_true((size_t) snprintf(conninfo, sizeof(conninfo),
	                "%s options='-c pg_stat_statements.track_planning=on'",
	                f->conninfo) < sizeof(conninfo));
	assert_int_equal(
	    saga_store_open(&wr, conninfo, OWNER, 10000, err, sizeof(err)), 0);
	assert_int_equal(saga_store_pipeline_start(wr), 0);
	for (size_t i = 0; i < 40; i++) {
		inst_init(&v[i]);
		stage_new(wr, &v[i]);
		if (i % 10 == 9) {
			assert_int_equal(flush_wait(wr), SAGA_STORE_COMMITTED);
		}
	}
	for (int round = 0; round < 10; round++) {
		for (size_t i = 0; i < 40; i++) {
			stage_step(wr, &v[i], NULL);
			if (i % 10 == 9) {
				assert_int_equal(flush_wait(wr),
				    SAGA_STORE_COMMITTED);
			}
		}
	}
	saga_store_free(wr);

	calls   = write_stat(f->db, "calls");
	plans   = write_stat(f->db, "plans");
	upd     = wait_updates(f->db, 400);
	seq     = table_stat(f->db, "seq_scan");
	fetched = table_stat(f->db, "idx_tup_fetch");
	print_message("write of several sagas: %lld executions, %lld plans; "
	              "saga_instance: %lld rows updated, %lld fetched by "
	              "index, %lld sequential scans\n",
	    calls, plans, upd, fetched, seq);
	assert_int_equal(calls, 40);
	assert_int_equal(plans, 1);
	assert_int_equal(upd, 400);
	assert_int_equal(seq, 0);
	/* 10 rows per batch: a plan that read the whole table (40) would
	 * fetch four times that. */
	assert_true(fetched <= 2 * upd);
}

/* A transition that keeps the saga's state and schedules no retry
 * changes no indexed column of saga_instance (003_hot_updates.sql), so
 * that PostgreSQL rewrites the row on its page and adds no index entry (a
 * HOT update); the write that ends the saga sets finished_at. The lease
 * is set far ahead first, from another connection (gone, its update
 * counted, before the writes), so that no write has to renew it however
 * slow this machine is. */
static void
test_transitions_are_hot(void **state)
{
	fixture  *f = *state;
	saga_inst a;
	PGconn   *other;
	long long upd, hot;

	inst_init(&a);
	assert_int_equal(saga_store_pipeline_start(f->st), 0);
	stage_new(f->st, &a);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	assert_non_null(other = pgtest_connect(f->conninfo));
	set_lease(other, &a.id, "1 hour");
	PQfinish(other);
	assert_int_equal(wait_updates(f->db, 1), 1);

	for (int i = 0; i < 20; i++) {
		a.step = i % 5;
		stage_step(f->st, &a, NULL);
		assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	}
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_instance"
	                     " WHERE id = '%s' AND finished_at IS NULL",
	                     &a.id),
	    1);
	a.state = SAGA_ST_COMPLETED;
	stage_step(f->st, &a, NULL);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_instance"
	                     " WHERE id = '%s' AND state = 'COMPLETED'"
	                     " AND finished_at = updated_at",
	                     &a.id),
	    1);

	saga_store_free(f->st);
	f->st = NULL;
	upd   = wait_updates(f->db, 22);
	hot   = table_stat(f->db, "n_tup_hot_upd");
	print_message("saga_instance: %lld rows updated, %lld of them HOT\n",
	    upd, hot);
	assert_int_equal(upd, 22);
	/* The 20 transitions; not the lease set by hand nor the end. */
	assert_int_equal(hot, 20);
}

/* A write renews a lease that has run short (the heartbeat skips the rows
 * a batch is writing) and leaves a longer one as it is. The lease is 10 s
 * and the heartbeat's period 500 ms: a write renews below 9.75 s left. */
static void
test_write_renews_short_lease(void **state)
{
	fixture  *f = *state;
	saga_inst a, b;
	long long before, before_b;

	inst_init(&a);
	inst_init(&b);
	assert_int_equal(saga_store_pipeline_start(f->st), 0);
	stage_new(f->st, &a);
	stage_new(f->st, &b);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);

	/* 1 s left: renewed to 10 s. */
	set_lease(f->db, &a.id, "1 s");
	before = lease_ms(f->db, &a.id);
	stage_step(f->st, &a, NULL);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	assert_true(lease_ms(f->db, &a.id) > before + 5000);

	/* 9.6 s left, as a lease renewed 400 ms ago (the heartbeat of 400
	 * ms ago skipped the row: a batch held it): renewed, so that the
	 * lease does not wait for the next heartbeat. */
	set_lease(f->db, &a.id, "9.6 s");
	before = lease_ms(f->db, &a.id);
	stage_step(f->st, &a, NULL);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	assert_true(lease_ms(f->db, &a.id) > before);

	/* An hour left: kept as it was, not shortened to 10 s. */
	set_lease(f->db, &a.id, "1 hour");
	before = lease_ms(f->db, &a.id);
	stage_step(f->st, &a, NULL);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	assert_true(lease_ms(f->db, &a.id) == before);

	/* In a batch of several sagas: the short one renewed, the long one
	 * kept. */
	set_lease(f->db, &a.id, "1 s");
	before = lease_ms(f->db, &a.id);
	set_lease(f->db, &b.id, "1 hour");
	before_b = lease_ms(f->db, &b.id);
	stage_step(f->st, &a, NULL);
	stage_step(f->st, &b, NULL);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	assert_true(lease_ms(f->db, &a.id) > before + 5000);
	assert_true(lease_ms(f->db, &b.id) == before_b);
}

/* A connection that only reads (the reader thread's: STATUS, WAIT, START
 * with a key) connects and reads while another session holds a lock
 * that conflicts with writing the log but not with reading it (LOCK
 * TABLE ... IN SHARE MODE, as a CREATE INDEX takes); only a connection
 * that writes waits for it, and one that was never started cannot
 * flush.
 * A lock_timeout turns the wait into an error, so that the test fails
 * instead of hanging. */
static void
test_reader_ignores_write_locks(void **state)
{
	fixture    *f = *state;
	char        conninfo[600];
	char        err[512];
	saga_store *rd = NULL, *wr = NULL;
	saga_id     id;
	saga_row    row;
	bool        same;

	assert_true((size_t) snprintf(conninfo, sizeof(conninfo),
	                "%s options='-c lock_timeout=2000'", f->conninfo) <
	    sizeof(conninfo));
	assert_int_equal(pgtest_exec(f->db,
	                     "BEGIN; LOCK TABLE saga_instance, saga_event,"
	                     " saga_start_key IN SHARE MODE"),
	    0);

	if (saga_store_open(&rd, conninfo, OWNER, 10000, err, sizeof(err)) !=
	    0) {
		fail_msg("opening a reader under a SHARE lock: %s", err);
	}
	new_id(&id);
	assert_int_equal(saga_store_load_one(rd, &id, &row), SAGA_ENOTFOUND);
	{
		saga_inst a;

		inst_init(&a);
		stage_new(rd, &a);
		assert_int_equal(saga_store_flush(rd), SAGA_ESTATE);
	}
	assert_int_equal(saga_store_key_lookup(rd, "no-such-key", "t",
	                     (proto_raw) { NULL, 0 }, &id, &same),
	    SAGA_ENOTFOUND);

	/* A writer does wait: it prepares the batch's INSERTs. */
	assert_int_equal(
	    saga_store_open(&wr, conninfo, OWNER, 10000, err, sizeof(err)), 0);
	assert_int_equal(saga_store_pipeline_start(wr), SAGA_EDB);
	assert_non_null(strstr(saga_store_error(wr), "lock timeout"));
	saga_store_free(wr);

	assert_int_equal(pgtest_exec(f->db, "ROLLBACK"), 0);
	assert_int_equal(
	    saga_store_open(&wr, conninfo, OWNER, 10000, err, sizeof(err)), 0);
	assert_int_equal(saga_store_pipeline_start(wr), 0);
	saga_store_free(wr);
	saga_store_free(rd);
}

/* SHOW synchronous_commit on c, into buf. */
static const char *
show_sync(PGconn *c, char *buf, size_t len)
{
	PGresult *res = PQexec(c, "SHOW synchronous_commit");

	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return (buf);
}

/* sql_durable_check turns off into on for the session (saying so), keeps
 * every other value (remote_apply is not weakened), and each level has
 * its SET LOCAL; a database default of off makes saga_store_open warn,
 * and its connection is on. */
static void
test_sync_commit_off_turned_on(void **state)
{
	fixture    *f = *state;
	const char *opts[] = { "off", "local", "remote_write",
		"remote_apply", "on" };
	const char *want[] = { "on", "local", "remote_write", "remote_apply",
		"on" };
	char        conninfo[1024];
	char        err[512];
	char        buf[64];
	const char *level;
	bool        raised;
	PGconn     *c;
	saga_store *st = NULL;

	/* The client's options (as PGOPTIONS would). */
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		snprintf(conninfo, sizeof(conninfo),
		    "%s options='-c synchronous_commit=%s'", f->conninfo,
		    opts[i]);
		assert_non_null(c = pgtest_connect(conninfo));
		assert_string_equal(show_sync(c, buf, sizeof(buf)), opts[i]);
		level  = NULL;
		raised = i != 0; /* set: the opposite */
		assert_int_equal(sql_durable_check(c, &level, &raised, err,
		                     sizeof(err)),
		    0);
		assert_string_equal(level, want[i]);
		assert_int_equal(raised, i == 0);
		assert_string_equal(show_sync(c, buf, sizeof(buf)), want[i]);
		snprintf(buf, sizeof(buf), "SET LOCAL synchronous_commit = %s",
		    want[i]);
		assert_string_equal(sql_durable_set_local(level), buf);
		PQfinish(c);
	}
	assert_null(sql_durable_set_local("off"));
	assert_null(sql_durable_set_local(NULL));

	/* The store: warns on a database whose default is off, not on the
	 * fixture's. */
	assert_null(saga_store_warning(f->st));
	assert_int_equal(pgtest_exec(f->db,
	                     "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I "
	                     "SET synchronous_commit = off', "
	                     "current_database()); END $$"),
	    0);
	assert_non_null(c = pgtest_connect(f->conninfo));
	assert_string_equal(show_sync(c, buf, sizeof(buf)), "off");
	PQfinish(c);
	assert_int_equal(saga_store_open(&st, f->conninfo, OWNER, 10000, err,
	                     sizeof(err)),
	    0);
	assert_non_null(saga_store_warning(st));
	assert_non_null(strstr(saga_store_warning(st), "DB-SYNC-COMMIT"));
	saga_store_free(st);
}

/* Two instances' batches that start sagas with the same two keys, staged
 * in opposite orders (a client's STARTs resent through the other
 * instance): each insert of a key another batch holds waits for that
 * batch. Inserted in the staged order they wait for each other, and
 * PostgreSQL fails one batch as a deadlock, which sagad takes for a
 * database outage (DB-DOWN). Inserted in one order for all, one batch
 * waits for the other, then finds both keys taken. A trigger that
 * sleeps before each key's insert holds the window open. */
static void
test_start_keys_crossing(void **state)
{
	fixture          *f = *state;
	saga_store       *st2;
	saga_store       *sts[2];
	saga_store_result res[2] = { SAGA_STORE_PENDING, SAGA_STORE_PENDING };
	saga_inst         a1, a2, b1, b2;
	const saga_id    *ids;
	char              err[512];
	int64_t           until;

	assert_int_equal(saga_store_open(&st2, f->conninfo, OWNER "-b",
	                     10000, err, sizeof(err)),
	    0);
	assert_int_equal(saga_store_pipeline_start(f->st), 0);
	assert_int_equal(saga_store_pipeline_start(st2), 0);
	assert_int_equal(pgtest_exec(f->db,
	                     "CREATE FUNCTION key_slow() RETURNS trigger "
	                     "LANGUAGE plpgsql AS $$ BEGIN PERFORM "
	                     "pg_sleep(0.3); RETURN NEW; END $$;"
	                     "CREATE TRIGGER key_slow BEFORE INSERT ON "
	                     "saga_start_key FOR EACH ROW EXECUTE FUNCTION "
	                     "key_slow()"),
	    0);
	inst_init(&a1);
	inst_init(&a2);
	inst_init(&b1);
	inst_init(&b2);
	stage_new_key(f->st, &a1, "k1");
	stage_new_key(f->st, &a2, "k2");
	stage_new_key(st2, &b1, "k2");
	stage_new_key(st2, &b2, "k1");
	sts[0] = f->st;
	sts[1] = st2;
	assert_int_equal(saga_store_flush(sts[0]), 0);
	assert_int_equal(saga_store_flush(sts[1]), 0);
	until = now_ms() + 10000;
	while ((res[0] == SAGA_STORE_PENDING || res[1] == SAGA_STORE_PENDING)
	    && now_ms() < until) {
		struct pollfd p[2];

		for (int i = 0; i < 2; i++) {
			p[i].fd      = saga_store_fd(sts[i]);
			p[i].events  = POLLIN;
			p[i].revents = 0;
			if (res[i] != SAGA_STORE_PENDING) {
				p[i].fd = -1;
			} else if (saga_store_want_write(sts[i])) {
				p[i].events |= POLLOUT;
			}
		}
		(void) poll(p, 2, 100);
		for (int i = 0; i < 2; i++) {
			if (res[i] == SAGA_STORE_PENDING) {
				res[i] = saga_store_poll(sts[i]);
			}
		}
	}
	if (res[0] != SAGA_STORE_COMMITTED ||
	    res[1] != SAGA_STORE_COMMITTED) {
		fail_msg("batches ended %d and %d (committed is %d): %s / %s",
		    res[0], res[1], SAGA_STORE_COMMITTED,
		    saga_store_error(sts[0]), saga_store_error(sts[1]));
	}
	/* One batch has both keys, the other lost both sagas. */
	assert_int_equal(
	    saga_store_lost(sts[0], &ids) + saga_store_lost(sts[1], &ids), 2);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_instance s JOIN "
	                     "saga_start_key k ON k.saga_id = s.id WHERE "
	                     "'%s' <> ''",
	                     &a1.id),
	    2);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_instance WHERE "
	                     "'%s' <> ''",
	                     &a1.id),
	    2);
	saga_store_free(st2);
}

/* The release at SIGTERM waits for no row lock: a saga whose row another
 * session holds keeps its lease (to expire), the others are released at
 * once; a table lock makes it give up after SAGA_STORE_RELEASE_LOCK_WAIT,
 * releasing nothing, and leaves the connection usable. */
static void
test_release_waits_for_no_lock(void **state)
{
	fixture    *f   = *state;
	saga_store *rel = NULL;
	saga_inst   a, b;
	char        sql[256], idt[40], err[512];
	long        released = -1, left = -1;
	int64_t     t0;

	inst_init(&a);
	inst_init(&b);
	assert_int_equal(saga_store_pipeline_start(f->st), 0);
	stage_new(f->st, &a);
	stage_new(f->st, &b);
	assert_int_equal(flush_wait(f->st), SAGA_STORE_COMMITTED);
	assert_int_equal(
	    saga_store_open(&rel, f->conninfo, OWNER, 10000, err, sizeof(err)),
	    0);
	assert_int_equal(saga_store_register(rel, "tcp://x:1"), 0);

	snprintf(sql, sizeof(sql),
	    "BEGIN; SELECT 1 FROM saga_instance WHERE id = '%s' FOR UPDATE",
	    saga_id_format(&a.id, idt));
	assert_int_equal(pgtest_exec(f->db, sql), 0);
	t0 = now_ms();
	assert_int_equal(saga_store_release(rel, &released, &left), 0);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(released, 1);
	assert_int_equal(left, 1);
	assert_int_equal(pgtest_exec(f->db, "ROLLBACK"), 0);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_instance WHERE id = "
	                     "'%s' AND lease_until > now()",
	                     &a.id),
	    1);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_instance WHERE id = "
	                     "'%s' AND lease_until < now()",
	                     &b.id),
	    1);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_coordinator WHERE "
	                     "stopped_at IS NOT NULL AND instance_id <> '%s'",
	                     &a.id),
	    1);

	/* A table lock: bounded, nothing released. */
	assert_int_equal(pgtest_exec(f->db,
	                     "BEGIN; LOCK TABLE saga_instance"
	                     " IN ACCESS EXCLUSIVE MODE"),
	    0);
	t0 = now_ms();
	assert_int_equal(saga_store_release(rel, &released, &left), SAGA_EDB);
	assert_true(now_ms() - t0 < 4000);
	assert_non_null(strstr(saga_store_error(rel), "lock timeout"));
	assert_int_equal(pgtest_exec(f->db, "ROLLBACK"), 0);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_instance WHERE id = "
	                     "'%s' AND lease_until > now()",
	                     &a.id),
	    1);

	/* The id's row names another process (which took the id over
	 * while this one was cut off): its leases and its row are that
	 * one's, nothing is released or marked stopped. */
	assert_int_equal(pgtest_exec(f->db,
	                     "UPDATE saga_coordinator SET pid = pid + 1,"
	                     " stopped_at = NULL WHERE instance_id = '"
	                     OWNER "';"
	                     "UPDATE saga_instance SET lease_until = now()"
	                     " + interval '1 hour' WHERE owner = '" OWNER
	                     "'"),
	    0);
	assert_int_equal(saga_store_release(rel, &released, &left), 0);
	assert_int_equal(released, 0);
	assert_int_equal(left, 0);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_instance WHERE"
	                     " lease_until > now() AND '%s' <> ''",
	                     &a.id),
	    2);
	assert_int_equal(query_int(f->db,
	                     "SELECT count(*) FROM saga_coordinator WHERE"
	                     " stopped_at IS NULL AND '%s' <> ''",
	                     &a.id),
	    1);
	assert_int_equal(pgtest_exec(f->db,
	                     "UPDATE saga_coordinator SET pid = pid - 1"
	                     " WHERE instance_id = '" OWNER "'"),
	    0);

	/* Once the lock is gone and the row is this process's again, the
	 * rest is released. */
	assert_int_equal(saga_store_release(rel, &released, &left), 0);
	assert_int_equal(released, 2);
	assert_int_equal(left, 0);
	saga_store_free(rel);
}

/* An integer socket option of fd. */
static int
sockopt_int(int fd, int level, int name)
{
	int       v   = -1;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
	return (v);
}

/* The value of option key on c (PQconninfo), or "" when it has none. */
static void
conn_option(PGconn *c, const char *key, char *buf, size_t len)
{
	PQconninfoOption *opts = PQconninfo(c);

	assert_non_null(opts);
	buf[0] = '\0';
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (strcmp(o->keyword, key) == 0 && o->val != NULL) {
			snprintf(buf, len, "%s", o->val);
		}
	}
	PQconninfoFree(opts);
}

/* Every connection of sagad (the store's: writers, readers, the
 * hand-over) bounds its waits: a connect timeout, and TCP keepalives and
 * a user timeout that give up on a peer gone without a word within half
 * a minute instead of the kernel's hours. Over TCP (libpq sets no
 * keepalive on a Unix socket), so the fixture's conninfo is given
 * host=127.0.0.1 at its end. Before sql_conn the store's socket had the
 * kernel's keepalive time (7200 s) and no user timeout. */
static void
test_connect_bounded_by_default(void **state)
{
	fixture    *f  = *state;
	saga_store *st = NULL;
	PGconn     *c;
	char        conninfo[600], err[512], val[32];
	int         fd;

	snprintf(conninfo, sizeof(conninfo), "%s host=127.0.0.1",
	    f->conninfo);
	assert_int_equal(saga_store_open(&st, conninfo, OWNER, 10000, err,
	                     sizeof(err)),
	    0);
	fd = saga_store_fd(st);
	assert_int_equal(sockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	assert_int_equal(sockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE),
	    atoi(SQL_CONN_KEEPALIVES_IDLE));
	assert_int_equal(sockopt_int(fd, IPPROTO_TCP, TCP_KEEPINTVL),
	    atoi(SQL_CONN_KEEPALIVES_INTERVAL));
	assert_int_equal(sockopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT),
	    atoi(SQL_CONN_KEEPALIVES_COUNT));
	assert_int_equal(sockopt_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT),
	    atoi(SQL_CONN_TCP_USER_TIMEOUT));
	saga_store_free(st);

	/* connect_timeout leaves no trace on the socket: read it back. */
	assert_non_null(c = sql_conn_open(conninfo, NULL));
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	conn_option(c, "connect_timeout", val, sizeof(val));
	assert_string_equal(val, SQL_CONN_CONNECT_TIMEOUT);
	conn_option(c, "tcp_user_timeout", val, sizeof(val));
	assert_string_equal(val, SQL_CONN_TCP_USER_TIMEOUT);
	PQfinish(c);
}

/* What the conninfo says wins over the defaults, as a key = value or as
 * a URL parameter, and PGCONNECT_TIMEOUT wins over the default
 * connect_timeout (but not over the conninfo's). */
static void
test_connect_conninfo_overrides(void **state)
{
	fixture    *f  = *state;
	saga_store *st = NULL;
	PGconn     *c;
	char        conninfo[700], url[700], err[512], val[32];
	int         fd;

	snprintf(conninfo, sizeof(conninfo),
	    "%s host=127.0.0.1 keepalives_idle=7 keepalives_count=4"
	    " tcp_user_timeout=12000 connect_timeout=3",
	    f->conninfo);
	assert_int_equal(saga_store_open(&st, conninfo, OWNER, 10000, err,
	                     sizeof(err)),
	    0);
	fd = saga_store_fd(st);
	assert_int_equal(sockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), 7);
	assert_int_equal(sockopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT), 4);
	assert_int_equal(sockopt_int(fd, IPPROTO_TCP, TCP_KEEPINTVL),
	    atoi(SQL_CONN_KEEPALIVES_INTERVAL));
	assert_int_equal(
	    sockopt_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 12000);
	saga_store_free(st);
	assert_non_null(c = sql_conn_open(conninfo, NULL));
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	conn_option(c, "connect_timeout", val, sizeof(val));
	assert_string_equal(val, "3");
	PQfinish(c);
	/* But not client_encoding: every text is UTF-8 (a LATIN1 session
	 * stored sagad's UTF-8 bytes as Latin-1 characters). */
	{
		char latin[800];

		snprintf(latin, sizeof(latin), "%s client_encoding=LATIN1",
		    conninfo);
		setenv("PGCLIENTENCODING", "EUC_JP", 1);
		assert_non_null(c = sql_conn_open(latin, NULL));
	}
	unsetenv("PGCLIENTENCODING");
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	assert_string_equal(PQparameterStatus(c, "client_encoding"), "UTF8");
	PQfinish(c);

	/* A URL's parameters too. */
	assert_non_null(c = pgtest_connect(f->conninfo));
	snprintf(url, sizeof(url),
	    "postgresql://%s@127.0.0.1:%s/%s?keepalives_idle=8"
	    "&connect_timeout=5",
	    PQuser(c), PQport(c), PQdb(c));
	PQfinish(c);
	assert_non_null(c = sql_conn_open(url, NULL));
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	assert_int_equal(
	    sockopt_int(PQsocket(c), IPPROTO_TCP, TCP_KEEPIDLE), 8);
	conn_option(c, "connect_timeout", val, sizeof(val));
	assert_string_equal(val, "5");
	PQfinish(c);

	/* The environment's connect timeout, unless the conninfo has one. */
	setenv("PGCONNECT_TIMEOUT", "4", 1);
	assert_non_null(c = sql_conn_open(f->conninfo, NULL));
	conn_option(c, "connect_timeout", val, sizeof(val));
	PQfinish(c);
	assert_string_equal(val, "4");
	assert_non_null(c = sql_conn_open(conninfo, NULL));
	conn_option(c, "connect_timeout", val, sizeof(val));
	PQfinish(c);
	unsetenv("PGCONNECT_TIMEOUT");
	assert_string_equal(val, "3");

	/* The program's name, unless the conninfo names one. */
	assert_non_null(c = sql_conn_open(f->conninfo, "prog"));
	assert_string_equal(
	    PQparameterStatus(c, "application_name"), "prog");
	PQfinish(c);
	snprintf(conninfo, sizeof(conninfo), "%s application_name=mine",
	    f->conninfo);
	assert_non_null(c = sql_conn_open(conninfo, "prog"));
	assert_string_equal(
	    PQparameterStatus(c, "application_name"), "mine");
	PQfinish(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_write_one_and_several, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fencing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plans, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_write_planned_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_transitions_are_hot, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_write_renews_short_lease, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_reader_ignores_write_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_sync_commit_off_turned_on, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_start_keys_crossing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_release_waits_for_no_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_connect_bounded_by_default, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_connect_conninfo_overrides, setup, teardown),
	};

	srand((unsigned) time(NULL));
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
