/* SPDX-License-Identifier: MIT */
/*
 * participant_test: the participant library against a real PostgreSQL
 * server, over real nng sockets.
 *
 * Each test gets a fresh database (pgtest) with the barrier schema and a
 * business table `biz`, and a participant running in this process, on a
 * free port, whose test handlers count their calls and insert (action) or
 * delete (compensation) one row of `biz` per call, in the transaction the
 * library gives them. Commands are sent with saga_client, as sagad would.
 * So "exactly one effect" is checked where it matters: rows of `biz`, and
 * handler calls. Covered: every case of the barrier (DESIGN.md, invariant
 * 2), duplicates arriving at the same time, handler crashes and
 * deadlocks, batches (several commands in one transaction: held open by a
 * handler that waits at a gate while more commands queue up), bad
 * requests, the database going away and coming back, the retention purge,
 * the logs (text, and JSON lines parsed back), and the example participant (participants/examples/echo.c) as a process.
 * Without a server the tests are skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pgtest.h"
#include "proc.h"
#include "proto_json.h"
#include "proto_msg.h"
#include "saga/participant.h"
#include "saga_client.h"

#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* How the test action handler behaves. */
typedef enum act_mode {
	ACT_OK,          /* insert a biz row, answer ok */
	ACT_FAIL,        /* insert a biz row, answer failed */
	ACT_RETRY,       /* insert a biz row, answer retry */
	ACT_SQL_ERROR,   /* insert, hit an SQL error, answer ok anyway */
	ACT_DEADLOCK,    /* insert, hit a deadlock, answer failed anyway */
	ACT_RETURN_ERR,  /* insert, return an error code */
	ACT_NO_OUTCOME,  /* insert, return 0 without an outcome */
	ACT_DEFERRED,    /* insert, break a deferred foreign key, answer ok:
	                  * the COMMIT fails */
	ACT_LOCK1,       /* insert, lock row 1 of lockme, answer ok */
	ACT_LOCK2,       /* the same with row 2 */
	ACT_LOCK1_MEET,  /* ACT_LOCK1, then wait until another handler has
	                  * locked too (rendezvous of two) */
	ACT_LOCK2_MEET,  /* the same with row 2 */
	ACT_ROLLBACK,    /* insert, ROLLBACK the transaction (against the
	                  * rules), answer ok */
	ACT_DROP_ROW,    /* insert, delete its own barrier row (against the
	                  * rules), answer ok */
	ACT_DROP_SAVEPOINT, /* insert, release the library's savepoint
	                     * (against the rules), answer failed */
	ACT_TRACE_ON,    /* insert, start libpq's trace of the connection
	                  * into the fixture's trace, answer ok */
	ACT_TRACE_OFF,   /* stop the trace, then as ACT_OK */
	ACT_BIG_STR,     /* insert, answer ok with a string above
	                  * max_str_bytes in the output */
	ACT_DEEP,        /* insert, answer ok with an output nested 29
	                  * levels, one more than a COMMAND carries */
	ACT_FAIL_LONG,   /* insert, answer failed with a text of a stray
	                  * byte, 1,022 more, then a two-byte character */
	ACT_SYNC_LOCAL_OFF, /* insert, SET LOCAL synchronous_commit =
	                     * off, answer ok */
	ACT_SYNC_OFF,    /* insert, SET synchronous_commit = off (the
	                  * session), answer ok */
	ACT_PIPELINE,    /* insert, enter pipeline mode and queue another
	                  * insert without reading it (against the rules),
	                  * answer ok */
	ACT_LOCK1_THEN_DIE, /* insert; the first call: ACT_LOCK1; the next
	                     * ones end their own backend, answer ok */
	ACT_SQL_ERROR_UTF8, /* insert, hit an SQL error whose message is
	                     * 0 or 1 'x' (in turn), then 400 two-byte
	                     * characters; answer ok anyway */
	ACT_BIG_OUT,     /* insert, answer ok with 20 strings of 60,000
	                  * bytes: an output above the default 1 MiB */
} act_mode;

/* Steps that can have a mode and a gate of their own. */
#define STEPS 32

typedef struct fixture {
	char              conninfo[1024];
	char              dbname[128];
	PGconn           *db;
	saga_participant *p;
	char              url[64];
	saga_client      *cli;
	proto_buf         ctx; /* the saga context every command carries */
	atomic_int        act_mode;
	atomic_int        utf8_turn; /* ACT_SQL_ERROR_UTF8's calls */
	atomic_int        act_delay_ms;
	atomic_int        act_calls;
	atomic_int        act_started;
	atomic_int        comp_calls;
	atomic_int        comp_fail;
	atomic_int        comp_drop; /* delete its own barrier row first */
	atomic_llong      comp_saw_n; /* "n" of the action's output */
	atomic_uint       id_counter;
	/* Per step: 0, or the act_mode + 1 of that step's actions. */
	atomic_int        step_mode[STEPS];
	/* Per step, under gate_mtx: while set, that step's action handlers
	 * wait (after their insert, transaction open) at the gate. */
	pthread_mutex_t   gate_mtx;
	pthread_cond_t    gate_cv;
	bool              gate[STEPS];
	atomic_int        gated; /* handlers waiting at a gate now */
	atomic_int        met;   /* ACT_LOCK*_MEET handlers arrived */
	atomic_int        lock_die_calls; /* ACT_LOCK1_THEN_DIE's calls */
	/* ACT_TRACE_ON's trace (open_memstream of trace_buf). */
	FILE             *trace;
	char             *trace_buf;
	size_t            trace_len;
	/* stderr captured (log_capture_begin): the saved fd 2, or -1. */
	int               cap_saved;
	char              cap_path[64];
} fixture;

/* A reply, copied out of the client's buffer. */
typedef struct result {
	uint32_t  type;
	uint32_t  outcome;
	uint32_t  code;
	uint32_t  step;
	uint32_t  attempt;
	uint32_t  kind;
	saga_id   id;
	char      text[512]; /* error or message */
	proto_buf output;
} result;

static int
test_scale(void)
{
	return (test_timeout_scale());
}

static int
test_log_level(void)
{
	const char *v = getenv("PARTICIPANT_TEST_LOG");

	return (v != NULL && strcmp(v, "info") == 0
	        ? SAGA_PARTICIPANT_LOG_INFO
	        : SAGA_PARTICIPANT_LOG_ERROR);
}

static void
result_fini(result *r)
{
	proto_buf_fini(&r->output);
}

/* A saga id of a saga started age_s seconds ago. */
static saga_id
aged_id(fixture *f, int64_t age_s)
{
	saga_id         id;
	uint8_t         rnd[10];
	unsigned        n = atomic_fetch_add(&f->id_counter, 1);
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	memset(rnd, 0, sizeof(rnd));
	memcpy(rnd, &n, sizeof(n));
	rnd[9] = (uint8_t) getpid();
	saga_id_make_v7(&id,
	    ((int64_t) ts.tv_sec - age_s) * 1000 + ts.tv_nsec / 1000000, rnd);
	return (id);
}

/* A fresh saga id. */
static saga_id
new_id(fixture *f)
{
	return (aged_id(f, 0));
}

/* Sends one COMMAND and copies the answer into *res. Returns the
 * client's result. */
static int
send_cmd(saga_client *cli, proto_raw ctx, const saga_id *id, uint32_t step,
    uint32_t kind, uint32_t attempt, const char *action, result *res)
{
	proto_msg m, reply;
	char      err[256];
	int       rv;

	memset(res, 0, sizeof(*res));
	proto_buf_init(&res->output);
	proto_msg_init(&m);
	m.type        = PROTO_T_COMMAND;
	m.id          = *id;
	m.step        = step;
	m.attempt     = attempt;
	m.kind        = kind;
	m.traceparent = proto_str_c(TRACEPARENT);
	m.saga        = proto_str_c("order");
	m.step_name   = proto_str_c("reserve");
	m.action      = proto_str_c(action);
	m.context     = ctx;
	rv = saga_client_call(cli, &m, 20000 * test_scale(), &reply, err,
	    sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "send_cmd: %s\n", err);
		proto_msg_fini(&reply);
		return (rv);
	}
	res->type    = reply.type;
	res->outcome = reply.outcome;
	res->code    = reply.code;
	res->step    = reply.step;
	res->attempt = reply.attempt;
	res->kind    = reply.kind;
	res->id      = reply.id;
	if (reply.type == PROTO_T_ERROR) {
		snprintf(res->text, sizeof(res->text), "%.*s",
		    (int) reply.message.len, reply.message.ptr);
	} else {
		snprintf(res->text, sizeof(res->text), "%.*s",
		    (int) reply.error.len,
		    reply.error.ptr != NULL ? reply.error.ptr : "");
	}
	if (reply.output.len > 0) {
		proto_buf_append(&res->output, reply.output.ptr,
		    reply.output.len);
	}
	proto_msg_fini(&reply);
	return (0);
}

static int
send_f(fixture *f, const saga_id *id, uint32_t step, uint32_t kind,
    uint32_t attempt, const char *action, result *res)
{
	return (send_cmd(f->cli, proto_buf_raw(&f->ctx), id, step, kind,
	    attempt, action, res));
}

/* Reads integer key of the output map of r; -1 if absent. */
static long long
output_int(const result *r, const char *key)
{
	proto_doc *doc = NULL;
	int64_t    v   = -1;

	if (r->output.len == 0 ||
	    proto_doc_parse(&doc, proto_buf_raw(&r->output), NULL, NULL) !=
	        0) {
		return (-1);
	}
	if (proto_val_int(proto_val_get(proto_doc_root(doc), key), &v) != 0) {
		v = -1;
	}
	proto_doc_free(doc);
	return ((long long) v);
}

static long long
query_int(fixture *f, const char *fmt, ...)
{
	char      sql[1024];
	long long v = -1;
	va_list   ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	assert_int_equal(pgtest_query_int(f->db, sql, &v), 0);
	return (v);
}

static long long
biz_rows(fixture *f, const saga_id *id)
{
	char t[SAGA_ID_STRLEN + 1];

	return (query_int(f, "SELECT count(*) FROM biz WHERE saga_id = '%s'",
	    saga_id_format(id, t)));
}

static long long
barrier_rows(fixture *f, const saga_id *id, int kind, const char *outcome)
{
	char t[SAGA_ID_STRLEN + 1];

	return (query_int(f,
	    "SELECT count(*) FROM saga_barrier WHERE saga_id = '%s' "
	    "AND kind = %d AND outcome = '%s'",
	    saga_id_format(id, t), kind, outcome));
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- The test handlers ---- */

static int
biz_insert(saga_call *call, long long *id)
{
	char        step[16];
	const char *params[2] = { saga_call_id_text(call), step };
	PGresult   *res;
	int         ok;

	snprintf(step, sizeof(step), "%u", saga_call_step(call));
	res = PQexecParams(saga_call_db(call),
	    "INSERT INTO biz (saga_id, step) VALUES ($1, $2) RETURNING id", 2,
	    NULL, params, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (ok) {
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	}
	PQclear(res);
	return (ok ? 0 : -1);
}

/* Sets or opens the gate of step. */
static void
gate_set(fixture *f, uint32_t step, bool closed)
{
	pthread_mutex_lock(&f->gate_mtx);
	f->gate[step] = closed;
	pthread_cond_broadcast(&f->gate_cv);
	pthread_mutex_unlock(&f->gate_mtx);
}

/* Waits while the gate of step is closed (at most a minute: a test that
 * forgets to open it fails rather than hangs). */
static void
gate_wait(fixture *f, uint32_t step)
{
	struct timespec until;

	if (step >= STEPS) {
		return;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	pthread_mutex_lock(&f->gate_mtx);
	if (f->gate[step]) {
		atomic_fetch_add(&f->gated, 1);
		while (f->gate[step] &&
		    pthread_cond_timedwait(
		        &f->gate_cv, &f->gate_mtx, &until) == 0) {
		}
		atomic_fetch_sub(&f->gated, 1);
	}
	pthread_mutex_unlock(&f->gate_mtx);
}

static void
set_step_mode(fixture *f, uint32_t step, act_mode mode)
{
	atomic_store(&f->step_mode[step], (int) mode + 1);
}

/* Locks row k of lockme in the call's transaction; with meet, then waits
 * (up to 10 s) until a second handler has done the same. Returns the
 * handler's answer when the lock fails (a deadlock), else 0. */
static int
lock_row(fixture *f, saga_call *call, int k, bool meet, bool *failed)
{
	char      sql[128];
	PGresult *res;
	int64_t   until;
	int       rv = 0;

	snprintf(sql, sizeof(sql),
	    "UPDATE lockme SET n = n + 1 WHERE k = %d", k);
	res     = PQexec(saga_call_db(call), sql);
	*failed = PQresultStatus(res) != PGRES_COMMAND_OK;
	if (*failed) {
		rv = saga_call_retry(call, "lock %d: %s", k,
		    PQresultErrorMessage(res));
	}
	PQclear(res);
	if (!*failed && meet) {
		atomic_fetch_add(&f->met, 1);
		until = (int64_t) time(NULL) + 10 * test_scale();
		while (atomic_load(&f->met) < 2 && time(NULL) < until) {
			sleep_ms(1);
		}
	}
	return (rv);
}


/* Answers ok with an output that no REPLY or COMMAND can carry (a string
 * above max_str_bytes, or maps nested one level deeper than a COMMAND's
 * context holds): saga_call_ok refuses it, and the handler returns that. */
static int
unsendable_ok(saga_call *call, act_mode mode)
{
	proto_obj *out = saga_call_output(call);
	proto_buf  b;
	int        rv = 0;

	if (out == NULL) {
		return (SAGA_ENOMEM);
	}
	proto_buf_init(&b);
	if (mode == ACT_BIG_STR) {
		char *big = malloc(70000);

		if (big == NULL) {
			return (SAGA_ENOMEM);
		}
		memset(big, 'x', 70000);
		rv = proto_obj_put_strn(out, "blob", big, 70000);
		free(big);
	} else {
		/* The output's map, then PROTO_OUTPUT_MAX_DEPTH more. */
		for (int i = 1; i < PROTO_OUTPUT_MAX_DEPTH && rv == 0; i++) {
			rv = proto_buf_append(&b, "\x81\xa1" "d", 3);
		}
		rv = rv ? rv : proto_buf_append(&b, "\x80", 1);
		rv = rv ? rv
		        : proto_obj_put_raw(out, "deep", proto_buf_raw(&b));
	}
	rv = rv ? rv : saga_call_ok(call, out);
	proto_buf_fini(&b);
	return (rv);
}

/* Answers ok with 20 strings of 60,000 bytes (1.2 MB): within a
 * max_msg_bytes raised above the default. */
static int
big_ok(saga_call *call)
{
	proto_obj *out = saga_call_output(call);
	char      *big = malloc(60000);
	char       key[16];
	int        rv  = out == NULL || big == NULL ? SAGA_ENOMEM : 0;

	if (big != NULL) {
		memset(big, 'x', 60000);
	}
	for (int i = 0; i < 20 && rv == 0; i++) {
		snprintf(key, sizeof(key), "blob%d", i);
		rv = proto_obj_put_strn(out, key, big, 60000);
	}
	free(big);
	return (rv != 0 ? rv : saga_call_ok(call, out));
}

static int
act_handler(saga_call *call, void *arg)
{
	fixture   *f = arg;
	long long  n = 0;
	proto_obj *out;
	proto_str  sku = { 0 };
	uint32_t   step = saga_call_step(call);
	int        smode = step < STEPS ? atomic_load(&f->step_mode[step]) : 0;
	act_mode   mode;
	bool       failed = false;
	int        delay;
	int        rv;

	mode = smode > 0 ? (act_mode) (smode - 1)
	                 : (act_mode) atomic_load(&f->act_mode);
	if (mode == ACT_TRACE_OFF) {
		PQuntrace(saga_call_db(call));
	}
	atomic_fetch_add(&f->act_started, 1);
	if (biz_insert(call, &n) != 0) {
		atomic_fetch_add(&f->act_calls, 1);
		return (saga_call_retry(call, "biz insert failed"));
	}
	if ((delay = atomic_load(&f->act_delay_ms)) > 0) {
		/* Hold the transaction open: concurrent duplicates must
		 * wait for it. */
		sleep_ms(delay);
	}
	gate_wait(f, step);
	atomic_fetch_add(&f->act_calls, 1);
	switch (mode) {
	case ACT_OK:
		break;
	case ACT_FAIL:
		return (saga_call_fail(call, "out of stock: %s", "A1"));
	case ACT_RETRY:
		return (saga_call_retry(call, "warehouse busy"));
	case ACT_SQL_ERROR:
		PQclear(PQexec(saga_call_db(call), "SELECT 1/0"));
		break; /* and claims ok */
	case ACT_SQL_ERROR_UTF8: {
		char sql[160];

		snprintf(sql, sizeof(sql),
		    "DO $$ BEGIN RAISE EXCEPTION '%%', repeat('x', %d) || "
		    "repeat(U&'\\00e9', 400); END $$",
		    atomic_fetch_add(&f->utf8_turn, 1) % 2);
		PQclear(PQexec(saga_call_db(call), sql));
		break; /* and claims ok */
	}
	case ACT_DEADLOCK:
		PQclear(PQexec(saga_call_db(call),
		    "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' "
		    "USING ERRCODE = '40P01'; END $$"));
		/* A handler that mistakes it for a business failure. */
		return (saga_call_fail(call, "could not reserve"));
	case ACT_RETURN_ERR:
		return (SAGA_EINTERNAL);
	case ACT_BIG_STR:
	case ACT_DEEP:
		return (unsendable_ok(call, mode));
	case ACT_BIG_OUT:
		return (big_ok(call));
	case ACT_FAIL_LONG: {
		char text[1100];

		text[0] = '\xff';
		memset(text + 1, 'x', 1022);
		snprintf(text + 1023, sizeof(text) - 1023, "\xc3\xa9 and more");
		return (saga_call_fail(call, "%s", text));
	}
	case ACT_NO_OUTCOME:
		return (0);
	case ACT_DEFERRED:
		PQclear(PQexec(saga_call_db(call),
		    "INSERT INTO defer_child VALUES (-1)"));
		break;
	case ACT_ROLLBACK:
		PQclear(PQexec(saga_call_db(call), "ROLLBACK"));
		break;
	case ACT_SYNC_LOCAL_OFF:
		PQclear(PQexec(saga_call_db(call),
		    "SET LOCAL synchronous_commit = off"));
		break;
	case ACT_SYNC_OFF:
		PQclear(PQexec(saga_call_db(call),
		    "SET synchronous_commit = off"));
		break;
	case ACT_PIPELINE: {
		const char *params[1] = { saga_call_id_text(call) };

		if (PQenterPipelineMode(saga_call_db(call)) != 1 ||
		    PQsendQueryParams(saga_call_db(call),
		        "INSERT INTO biz (saga_id, step) VALUES "
		        "($1::uuid, 99)",
		        1, NULL, params, NULL, NULL, 0) != 1) {
			fail_msg("pipeline: %s",
			    PQerrorMessage(saga_call_db(call)));
		}
		break;
	}
	case ACT_DROP_ROW: {
		char        st[16];
		const char *params[2] = { saga_call_id_text(call), st };

		snprintf(st, sizeof(st), "%u", step);
		PQclear(PQexecParams(saga_call_db(call),
		    "DELETE FROM saga_barrier WHERE saga_id = $1 AND step = $2",
		    2, NULL, params, NULL, NULL, 0));
		break;
	}
	case ACT_DROP_SAVEPOINT:
		PQclear(PQexec(saga_call_db(call),
		    "RELEASE SAVEPOINT saga_barrier_handler"));
		return (saga_call_fail(call, "no savepoint to go back to"));
	case ACT_TRACE_ON:
		PQtrace(saga_call_db(call), f->trace);
		PQsetTraceFlags(saga_call_db(call), PQTRACE_SUPPRESS_TIMESTAMPS);
		break;
	case ACT_TRACE_OFF:
		break;
	case ACT_LOCK1_THEN_DIE:
		if (atomic_fetch_add(&f->lock_die_calls, 1) > 0) {
			PQclear(PQexec(saga_call_db(call),
			    "SELECT pg_terminate_backend(pg_backend_pid())"));
			return (saga_call_ok(call, NULL));
		}
		rv = lock_row(f, call, 1, false, &failed);
		if (failed) {
			return (rv);
		}
		break;
	case ACT_LOCK1:
	case ACT_LOCK2:
	case ACT_LOCK1_MEET:
	case ACT_LOCK2_MEET:
		rv = lock_row(f, call,
		    mode == ACT_LOCK1 || mode == ACT_LOCK1_MEET ? 1 : 2,
		    mode == ACT_LOCK1_MEET || mode == ACT_LOCK2_MEET, &failed);
		if (failed) {
			return (rv);
		}
		break;
	}
	(void) proto_val_str(proto_val_get(saga_call_input(call), "sku"),
	    &sku);
	if ((out = saga_call_output(call)) == NULL ||
	    proto_obj_put_int(out, "n", n) != 0 ||
	    proto_obj_put_strn(out, "sku", sku.ptr, sku.len) != 0 ||
	    proto_obj_put_str(out, "step_name", saga_call_step_name(call)) !=
	        0 ||
	    proto_obj_put_int(out, "attempt", saga_call_attempt(call)) != 0) {
		return (SAGA_ENOMEM);
	}
	return (saga_call_ok(call, out));
}

static int
comp_handler(saga_call *call, void *arg)
{
	fixture    *f = arg;
	int64_t     n = -1;
	char        step[16];
	const char *params[2] = { saga_call_id_text(call), step };
	PGresult   *res;

	atomic_fetch_add(&f->comp_calls, 1);
	(void) proto_val_int(
	    proto_val_get(saga_call_action_output(call), "n"), &n);
	atomic_store(&f->comp_saw_n, (long long) n);
	/* A line of the handler's own, about its command. */
	saga_call_log(call, SAGA_PARTICIPANT_LOG_INFO, "releasing n=%lld",
	    (long long) n);
	snprintf(step, sizeof(step), "%u", saga_call_step(call));
	res = PQexecParams(saga_call_db(call),
	    "DELETE FROM biz WHERE saga_id = $1 AND step = $2", 2, NULL,
	    params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		PQclear(res);
		return (saga_call_retry(call, "delete failed"));
	}
	PQclear(res);
	if (atomic_load(&f->comp_drop)) {
		PQclear(PQexecParams(saga_call_db(call),
		    "DELETE FROM saga_barrier WHERE saga_id = $1 AND step = $2"
		    " AND kind = 1",
		    2, NULL, params, NULL, NULL, 0));
	}
	if (atomic_load(&f->comp_fail)) {
		return (saga_call_fail(call, "cannot release"));
	}
	return (saga_call_ok(call, NULL));
}

/* The test's own schema, applied with the service migration runner. The
 * transaction that inserted a biz row is recorded with it (txid), to tell
 * batches apart. */
static const saga_migration test_migrations[] = {
	{ 1, "001_biz.sql",
	    "CREATE TABLE biz (id bigserial PRIMARY KEY, saga_id uuid NOT "
	    "NULL, step integer NOT NULL)" },
	{ 2, "002_batch.sql",
	    "ALTER TABLE biz ADD COLUMN txid bigint NOT NULL "
	    "  DEFAULT txid_current();"
	    "CREATE TABLE lockme (k integer PRIMARY KEY, n integer NOT NULL);"
	    "INSERT INTO lockme VALUES (1, 0), (2, 0);"
	    "CREATE TABLE defer_parent (id integer PRIMARY KEY);"
	    "CREATE TABLE defer_child (parent integer REFERENCES defer_parent"
	    "  DEFERRABLE INITIALLY DEFERRED)" },
};
#define N_TEST_MIGRATIONS \
	(sizeof(test_migrations) / sizeof(test_migrations[0]))

/* ---- Fixture ---- */

static int
setup(void **state)
{
	fixture   *f = calloc(1, sizeof(*f));
	proto_obj *ctx = NULL, *in = NULL, *steps = NULL;
	int        rv = -1;

	if (f == NULL) {
		return (-1);
	}
	f->cap_saved = -1;
	pthread_mutex_init(&f->gate_mtx, NULL);
	pthread_cond_init(&f->gate_cv, NULL);
	proto_buf_init(&f->ctx);
	if (pgtest_db_create("part", f->conninfo, sizeof(f->conninfo)) != 0 ||
	    (f->db = pgtest_connect(f->conninfo)) == NULL) {
		goto done;
	}
	snprintf(f->dbname, sizeof(f->dbname), "%s", PQdb(f->db));
	if (proto_obj_alloc(&ctx) != 0 || proto_obj_alloc(&in) != 0 ||
	    proto_obj_alloc(&steps) != 0 ||
	    proto_obj_put_str(in, "sku", "A1") != 0 ||
	    proto_obj_put_int(in, "qty", 2) != 0 ||
	    proto_obj_put_obj(ctx, "input", in) != 0 ||
	    proto_obj_put_obj(ctx, "steps", steps) != 0 ||
	    proto_obj_encode(ctx, &f->ctx) != 0) {
		goto done;
	}
	rv = 0;

done:
	proto_obj_free(ctx);
	proto_obj_free(in);
	proto_obj_free(steps);
	if (rv != 0) {
		/* cmocka runs no teardown after a failed setup. */
		PQfinish(f->db);
		pgtest_db_drop(f->conninfo);
		proto_buf_fini(&f->ctx);
		pthread_cond_destroy(&f->gate_cv);
		pthread_mutex_destroy(&f->gate_mtx);
		free(f);
		return (rv);
	}
	*state = f;
	return (0);
}

static void  log_capture_begin(fixture *f);
static char *log_capture_end(fixture *f);

static int
teardown(void **state)
{
	fixture *f = *state;
	char    *log;

	/* A test that failed while capturing stderr: give it back, and show
	 * what was captured. */
	if ((log = log_capture_end(f)) != NULL) {
		fprintf(stderr, "---- the log captured by the failed test:\n%s"
		                "----\n",
		    log);
		free(log);
	}
	/* A failed test may leave handlers at a gate: let them go, so that
	 * the participant can stop. */
	pthread_mutex_lock(&f->gate_mtx);
	memset(f->gate, 0, sizeof(f->gate));
	pthread_cond_broadcast(&f->gate_cv);
	pthread_mutex_unlock(&f->gate_mtx);
	saga_client_free(f->cli);
	saga_participant_free(f->p);
	/* After the workers: one may still be tracing into it. */
	if (f->trace != NULL) {
		fclose(f->trace);
	}
	free(f->trace_buf);
	PQfinish(f->db);
	pgtest_db_drop(f->conninfo);
	proto_buf_fini(&f->ctx);
	pthread_cond_destroy(&f->gate_cv);
	pthread_mutex_destroy(&f->gate_mtx);
	free(f);
	return (0);
}

/* Makes, migrates and starts the participant on a free port, with cfg's
 * settings where given (NULL: defaults, 8 workers), and a client to it. */
static void
start_with(fixture *f, const saga_participant_config *over,
    bool migrate)
{
	saga_participant_config cfg;
	const char             *listen[2] = { f->url, NULL };
	char                    err[512];
	int                     rv;

	snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%d",
	    test_free_port());
	if (over != NULL) {
		cfg = *over;
	} else {
		memset(&cfg, 0, sizeof(cfg));
	}
	cfg.name   = "parttest";
	cfg.listen = listen;
	if (cfg.conninfo == NULL) {
		cfg.conninfo = f->conninfo;
	}
	if (cfg.workers == 0) {
		cfg.workers = 8;
	}
	if (cfg.log_level == 0) {
		cfg.log_level = test_log_level();
	}
	rv = saga_participant_new(&f->p, &cfg, err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "new: %s\n", err);
	}
	assert_int_equal(rv, 0);
	assert_int_equal(saga_participant_on_action(f->p, "stock.reserve",
	                     act_handler, f),
	    0);
	assert_int_equal(saga_participant_on_compensation(f->p,
	                     "stock.release", comp_handler, f),
	    0);
	if (migrate) {
		rv = saga_participant_migrate(f->p, err, sizeof(err));
		if (rv != 0) {
			fprintf(stderr, "migrate: %s\n", err);
		}
		assert_int_equal(rv, 0);
		rv = saga_participant_migrate_set(f->p, "parttest",
		    test_migrations, N_TEST_MIGRATIONS, NULL, err,
		    sizeof(err));
		if (rv != 0) {
			fprintf(stderr, "migrate_set: %s\n", err);
		}
		assert_int_equal(rv, 0);
	}
	rv = saga_participant_start(f->p, err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "start: %s\n", err);
	}
	assert_int_equal(rv, 0);
	assert_int_equal(saga_client_open(&f->cli, f->url, err, sizeof(err)),
	    0);
}

static void
start(fixture *f)
{
	start_with(f, NULL, true);
}

/* ---- The barrier ---- */

static void
test_participant_action_runs_once_and_records(void **state)
{
	fixture *f = *state;
	saga_id  id;
	result   r;

	start(f);
	id = new_id(f);
	assert_int_equal(send_f(f, &id, 1, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.type, PROTO_T_REPLY);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	assert_true(saga_id_equal(&r.id, &id));
	assert_int_equal(r.step, 1);
	assert_int_equal(r.kind, 0);
	assert_int_equal(r.attempt, 1);
	assert_true(output_int(&r, "n") > 0);
	assert_int_equal(output_int(&r, "attempt"), 1);
	assert_int_equal(atomic_load(&f->act_calls), 1);
	assert_int_equal(biz_rows(f, &id), 1);
	assert_int_equal(barrier_rows(f, &id, 0, "ok"), 1);
	/* The recorded output is the one answered. */
	assert_int_equal(query_int(f,
	                     "SELECT count(*) FROM saga_barrier WHERE "
	                     "kind = 0 AND output IS NOT NULL"),
	    1);
	result_fini(&r);
}

static void
test_participant_duplicate_action_replays(void **state)
{
	fixture *f = *state;
	saga_id  id;
	result   r1, r2, r3;

	start(f);
	id = new_id(f);
	assert_int_equal(send_f(f, &id, 0, 0, 1, "stock.reserve", &r1), 0);
	assert_int_equal(r1.outcome, PROTO_OUTCOME_OK);
	/* A resend (same attempt), then a later attempt. */
	assert_int_equal(send_f(f, &id, 0, 0, 1, "stock.reserve", &r2), 0);
	assert_int_equal(send_f(f, &id, 0, 0, 7, "stock.reserve", &r3), 0);
	assert_int_equal(r2.type, PROTO_T_REPLY);
	assert_int_equal(r2.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(r3.outcome, PROTO_OUTCOME_OK);
	/* Each reply echoes its own attempt, with the first output. */
	assert_int_equal(r3.attempt, 7);
	assert_true(proto_raw_equal(proto_buf_raw(&r1.output),
	    proto_buf_raw(&r2.output)));
	assert_true(proto_raw_equal(proto_buf_raw(&r1.output),
	    proto_buf_raw(&r3.output)));
	assert_int_equal(output_int(&r3, "attempt"), 1);
	assert_int_equal(atomic_load(&f->act_calls), 1);
	assert_int_equal(biz_rows(f, &id), 1);
	result_fini(&r1);
	result_fini(&r2);
	result_fini(&r3);
}

static void
test_participant_compensation_runs_after_action(void **state)
{
	fixture *f = *state;
	saga_id  id;
	result   r1, r2;

	start(f);
	id = new_id(f);
	assert_int_equal(send_f(f, &id, 2, 0, 1, "stock.reserve", &r1), 0);
	assert_int_equal(r1.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(biz_rows(f, &id), 1);
	assert_int_equal(send_f(f, &id, 2, 1, 1, "stock.release", &r2), 0);
	assert_int_equal(r2.type, PROTO_T_REPLY);
	assert_int_equal(r2.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(r2.kind, 1);
	assert_int_equal(atomic_load(&f->comp_calls), 1);
	/* It saw the output its action recorded. */
	assert_int_equal(atomic_load(&f->comp_saw_n), output_int(&r1, "n"));
	assert_int_equal(biz_rows(f, &id), 0);
	assert_int_equal(barrier_rows(f, &id, 0, "ok"), 1);
	assert_int_equal(barrier_rows(f, &id, 1, "ok"), 1);
	result_fini(&r1);
	result_fini(&r2);
}

/* With max_msg_bytes raised to 4 MiB, an action's output of 1.2 MB is
 * recorded, and its compensation reads it back, under that limit or a
 * lower one (it read it under the default 1 MiB, and answered retry for
 * ever: "the action's recorded output cannot be read"). */
static void
test_participant_compensation_reads_big_output(void **state)
{
	fixture                *f = *state;
	saga_participant_config cfg;
	saga_id                 id;
	result                  r1, r2;

	memset(&cfg, 0, sizeof(cfg));
	cfg.max_msg_bytes = 4 << 20;
	start_with(f, &cfg, true);
	atomic_store(&f->act_mode, ACT_BIG_OUT);
	id = new_id(f);
	/* The answer is above what this client reads (the default). */
	assert_int_equal(send_f(f, &id, 2, 0, 1, "stock.reserve", &r1),
	    SAGA_ETOOBIG);
	assert_int_equal(barrier_rows(f, &id, 0, "ok"), 1);
	assert_int_equal(biz_rows(f, &id), 1);
	assert_true(query_int(f, "SELECT max(length(output)) FROM "
	                         "saga_barrier") > 1200000);
	assert_int_equal(send_f(f, &id, 2, 1, 1, "stock.release", &r2), 0);
	assert_int_equal(r2.type, PROTO_T_REPLY);
	assert_string_equal(r2.text, "");
	assert_int_equal(r2.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(atomic_load(&f->comp_calls), 1);
	assert_int_equal(biz_rows(f, &id), 0);
	assert_int_equal(barrier_rows(f, &id, 1, "ok"), 1);
	result_fini(&r2);

	/* The limit lowered again (a restart with the default) after such
	 * an action was recorded: its compensation reads it all the same
	 * (it answered retry for ever: the output is the library's own
	 * row, not a peer's message). */
	id = new_id(f);
	assert_int_equal(send_f(f, &id, 3, 0, 1, "stock.reserve", &r1),
	    SAGA_ETOOBIG);
	assert_int_equal(barrier_rows(f, &id, 0, "ok"), 1);
	saga_client_free(f->cli);
	f->cli = NULL;
	saga_participant_free(f->p);
	f->p = NULL;
	start_with(f, NULL, false);
	assert_int_equal(send_f(f, &id, 3, 1, 1, "stock.release", &r2), 0);
	assert_string_equal(r2.text, "");
	assert_int_equal(r2.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(biz_rows(f, &id), 0);
	assert_int_equal(barrier_rows(f, &id, 1, "ok"), 1);
	result_fini(&r2);
}

static void
test_participant_duplicate_compensation_replays(void **state)
{
	fixture *f = *state;
	saga_id  id;
	result   r;

	start(f);
	id = new_id(f);
	assert_int_equal(send_f(f, &id, 0, 0, 1, "stock.reserve", &r), 0);
	result_fini(&r);
	for (uint32_t attempt = 1; attempt <= 3; attempt++) {
		assert_int_equal(
		    send_f(f, &id, 0, 1, attempt, "stock.release", &r), 0);
		assert_int_equal(r.type, PROTO_T_REPLY);
		assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
		assert_int_equal(r.attempt, attempt);
		result_fini(&r);
	}
	assert_int_equal(atomic_load(&f->comp_calls), 1);
	assert_int_equal(biz_rows(f, &id), 0);
	/* And the action, delivered late, replays its ok. */
	assert_int_equal(send_f(f, &id, 0, 0, 2, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(atomic_load(&f->act_calls), 1);
	assert_int_equal(biz_rows(f, &id), 0);
	result_fini(&r);
}

static void
test_participant_null_compensation_then_action_refused(void **state)
{
	fixture *f = *state;
	saga_id  id;
	result   r;

	start(f);
	id = new_id(f);
	/* The compensation arrives first: the action never ran. */
	assert_int_equal(send_f(f, &id, 3, 1, 1, "stock.release", &r), 0);
	assert_int_equal(r.type, PROTO_T_REPLY);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(r.output.len, 0);
	result_fini(&r);
	assert_int_equal(atomic_load(&f->comp_calls), 0);
	assert_int_equal(barrier_rows(f, &id, 0, "aborted"), 1);
	assert_int_equal(barrier_rows(f, &id, 1, "ok"), 1);
	/* The action arrives late: refused, and it never runs. */
	assert_int_equal(send_f(f, &id, 3, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.type, PROTO_T_REPLY);
	assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
	assert_non_null(strstr(r.text, "refused"));
	result_fini(&r);
	assert_int_equal(atomic_load(&f->act_calls), 0);
	assert_int_equal(atomic_load(&f->act_started), 0);
	assert_int_equal(biz_rows(f, &id), 0);
	/* Again: still refused; the compensation still replays ok. */
	assert_int_equal(send_f(f, &id, 3, 0, 2, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
	result_fini(&r);
	assert_int_equal(send_f(f, &id, 3, 1, 2, "stock.release", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	assert_int_equal(atomic_load(&f->act_started), 0);
	assert_int_equal(atomic_load(&f->comp_calls), 0);
}

static void
test_participant_failed_action_keeps_row_and_replays(void **state)
{
	fixture *f = *state;
	saga_id  id;
	result   r;

	start(f);
	atomic_store(&f->act_mode, ACT_FAIL);
	id = new_id(f);
	assert_int_equal(send_f(f, &id, 0, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.type, PROTO_T_REPLY);
	assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
	assert_string_equal(r.text, "out of stock: A1");
	result_fini(&r);
	/* The work was rolled back to the savepoint; the row stays. */
	assert_int_equal(biz_rows(f, &id), 0);
	assert_int_equal(barrier_rows(f, &id, 0, "failed"), 1);
	assert_int_equal(query_int(f,
	                     "SELECT count(*) FROM saga_barrier WHERE "
	                     "error = 'out of stock: A1'"),
	    1);
	/* A duplicate replays the failure, even if the handler would now
	 * succeed. */
	atomic_store(&f->act_mode, ACT_OK);
	assert_int_equal(send_f(f, &id, 0, 0, 2, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
	assert_string_equal(r.text, "out of stock: A1");
	result_fini(&r);
	assert_int_equal(atomic_load(&f->act_calls), 1);
	/* Its compensation is a null compensation. */
	assert_int_equal(send_f(f, &id, 0, 1, 1, "stock.release", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	assert_int_equal(atomic_load(&f->comp_calls), 0);
}

/* A handler that asks for retry, crashes its transaction, hits a
 * deadlock, returns an error or sets no outcome: retry, nothing recorded,
 * and the next attempt runs. */
static void
check_retry_then_runs(fixture *f, act_mode mode, const char *want_text)
{
	saga_id id = new_id(f);
	result  r;
	int     before = atomic_load(&f->act_calls);

	atomic_store(&f->act_mode, mode);
	assert_int_equal(send_f(f, &id, 0, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.type, PROTO_T_REPLY);
	assert_int_equal(r.outcome, PROTO_OUTCOME_RETRY);
	if (strstr(r.text, want_text) == NULL) {
		fail_msg("mode %d: error \"%s\" lacks \"%s\"", mode, r.text,
		    want_text);
	}
	result_fini(&r);
	assert_int_equal(biz_rows(f, &id), 0);
	assert_int_equal(query_int(f,
	                     "SELECT count(*) FROM saga_barrier WHERE "
	                     "saga_id = '%s'",
	                     saga_id_format(&id, (char[37]) { 0 })),
	    0);
	atomic_store(&f->act_mode, ACT_OK);
	assert_int_equal(send_f(f, &id, 0, 0, 2, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(output_int(&r, "attempt"), 2);
	result_fini(&r);
	assert_int_equal(atomic_load(&f->act_calls), before + 2);
	assert_int_equal(biz_rows(f, &id), 1);
	assert_int_equal(barrier_rows(f, &id, 0, "ok"), 1);
}

static void
test_participant_handler_retry_records_nothing(void **state)
{
	fixture *f = *state;

	start(f);
	check_retry_then_runs(f, ACT_RETRY, "warehouse busy");
}

static void
test_participant_handler_crash_answers_retry(void **state)
{
	fixture *f = *state;

	start(f);
	/* An SQL error the handler ignored: its "ok" is not believed. */
	check_retry_then_runs(f, ACT_SQL_ERROR, "division by zero");
	/* A deadlock is a retry, never failed. */
	check_retry_then_runs(f, ACT_DEADLOCK, "deadlock");
	check_retry_then_runs(f, ACT_RETURN_ERR, "EINTERNAL");
	/* A message that the library cuts (its buffer of 512 bytes), once
	 * at each parity: one cut falls inside a character, which the
	 * reply's encoder refused (ERROR EINTERNAL, no echo). */
	check_retry_then_runs(f, ACT_SQL_ERROR_UTF8, "\xc3\xa9\xc3\xa9");
	check_retry_then_runs(f, ACT_SQL_ERROR_UTF8, "\xc3\xa9\xc3\xa9");
	check_retry_then_runs(f, ACT_NO_OUTCOME, "no outcome");
	/* An output sagad could not decode, or could not carry on in a
	 * COMMAND: refused by saga_call_ok, so nothing is recorded (it was
	 * recorded ok, and replayed to every delivery). */
	check_retry_then_runs(f, ACT_BIG_STR, "ESTRLEN");
	check_retry_then_runs(f, ACT_DEEP, "EDEPTH");
}

/* A business failure whose text is cut in the middle of a character (the
 * library keeps 1,024 bytes) or holds bytes that are not UTF-8 is still
 * one: recorded failed, answered failed, replayed (it was answered
 * retry, with nothing recorded, as PostgreSQL refused the text). */
static void
test_participant_fail_text_made_utf8(void **state)
{
	fixture *f = *state;
	saga_id  id = new_id(f);
	result   r;

	start(f);
	atomic_store(&f->act_mode, ACT_FAIL_LONG);
	for (uint32_t attempt = 1; attempt <= 2; attempt++) {
		assert_int_equal(
		    send_f(f, &id, 0, 0, attempt, "stock.reserve", &r), 0);
		assert_int_equal(r.type, PROTO_T_REPLY);
		assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
		assert_int_equal(r.text[0], '?');
		result_fini(&r);
	}
	assert_int_equal(atomic_load(&f->act_calls), 1);
	assert_int_equal(barrier_rows(f, &id, 0, "failed"), 1);
	/* Kept: 1,024 bytes, the stray byte and the cut character each
	 * made '?'. */
	assert_int_equal(query_int(f,
	                     "SELECT count(*) FROM saga_barrier WHERE "
	                     "saga_id = '%s' AND octet_length(error) = 1024 "
	                     "AND left(error, 2) = '?x' "
	                     "AND right(error, 2) = 'x?'",
	                     saga_id_format(&id, (char[37]) { 0 })),
	    1);
}

static void
test_participant_failed_compensation_records_nothing(void **state)
{
	fixture *f = *state;
	saga_id  id;
	result   r;

	start(f);
	id = new_id(f);
	assert_int_equal(send_f(f, &id, 0, 0, 1, "stock.reserve", &r), 0);
	result_fini(&r);
	atomic_store(&f->comp_fail, 1);
	assert_int_equal(send_f(f, &id, 0, 1, 1, "stock.release", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
	assert_string_equal(r.text, "cannot release");
	result_fini(&r);
	/* Its delete was rolled back and no row records it ... */
	assert_int_equal(biz_rows(f, &id), 1);
	assert_int_equal(barrier_rows(f, &id, 1, "ok"), 0);
	/* ... so that a retry runs it again. */
	atomic_store(&f->comp_fail, 0);
	assert_int_equal(send_f(f, &id, 0, 1, 2, "stock.release", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	assert_int_equal(atomic_load(&f->comp_calls), 2);
	assert_int_equal(biz_rows(f, &id), 0);
}

/* ---- Concurrent duplicates ---- */

#define RACERS 16

typedef struct racer {
	fixture           *f;
	pthread_barrier_t *bar;
	saga_client       *cli;
	saga_id            id;
	uint32_t           kind;
	uint32_t           attempt;
	const char        *action;
	result             res;
	int                rv;
} racer;

static void *
racer_main(void *arg)
{
	racer *r = arg;

	pthread_barrier_wait(r->bar);
	r->rv = send_cmd(r->cli, proto_buf_raw(&r->f->ctx), &r->id, 4,
	    r->kind, r->attempt, r->action, &r->res);
	return (NULL);
}

/* Sends the same command from RACERS clients at once. */
static void
race(fixture *f, const saga_id *id, uint32_t kind, const char *action,
    racer *rs)
{
	pthread_barrier_t bar;
	pthread_t         thr[RACERS];
	char              err[256];

	pthread_barrier_init(&bar, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) {
		rs[i].f       = f;
		rs[i].bar     = &bar;
		rs[i].id      = *id;
		rs[i].kind    = kind;
		rs[i].attempt = (uint32_t) i + 1;
		rs[i].action  = action;
		assert_int_equal(
		    saga_client_open(&rs[i].cli, f->url, err, sizeof(err)), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(
		    pthread_create(&thr[i], NULL, racer_main, &rs[i]), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(thr[i], NULL);
		saga_client_free(rs[i].cli);
		rs[i].cli = NULL;
	}
	pthread_barrier_destroy(&bar);
}

static void
test_participant_concurrent_duplicates_one_effect(void **state)
{
	fixture *f = *state;
	racer    rs[RACERS];
	saga_id  id;

	start(f);
	memset(rs, 0, sizeof(rs));
	/* The first one holds its transaction open a while: the others
	 * are delivered, and wait on its barrier row, meanwhile. */
	atomic_store(&f->act_delay_ms, 200);
	id = new_id(f);
	race(f, &id, 0, "stock.reserve", rs);
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(rs[i].rv, 0);
		assert_int_equal(rs[i].res.type, PROTO_T_REPLY);
		assert_int_equal(rs[i].res.outcome, PROTO_OUTCOME_OK);
		assert_int_equal(rs[i].res.attempt, (uint32_t) i + 1);
		assert_true(output_int(&rs[i].res, "n") > 0);
		assert_true(proto_raw_equal(proto_buf_raw(&rs[i].res.output),
		    proto_buf_raw(&rs[0].res.output)));
	}
	for (int i = 0; i < RACERS; i++) {
		result_fini(&rs[i].res);
	}
	assert_int_equal(atomic_load(&f->act_calls), 1);
	assert_int_equal(biz_rows(f, &id), 1);
	assert_int_equal(barrier_rows(f, &id, 0, "ok"), 1);

	/* The same for its compensation. */
	memset(rs, 0, sizeof(rs));
	race(f, &id, 1, "stock.release", rs);
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(rs[i].rv, 0);
		assert_int_equal(rs[i].res.outcome, PROTO_OUTCOME_OK);
		result_fini(&rs[i].res);
	}
	assert_int_equal(atomic_load(&f->comp_calls), 1);
	assert_int_equal(biz_rows(f, &id), 0);
}

static void
test_participant_concurrent_null_compensations(void **state)
{
	fixture *f = *state;
	racer    rs[RACERS];
	saga_id  id;
	result   r;

	start(f);
	memset(rs, 0, sizeof(rs));
	id = new_id(f);
	race(f, &id, 1, "stock.release", rs);
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(rs[i].rv, 0);
		assert_int_equal(rs[i].res.outcome, PROTO_OUTCOME_OK);
		result_fini(&rs[i].res);
	}
	assert_int_equal(atomic_load(&f->comp_calls), 0);
	assert_int_equal(barrier_rows(f, &id, 0, "aborted"), 1);
	assert_int_equal(barrier_rows(f, &id, 1, "ok"), 1);
	assert_int_equal(send_f(f, &id, 4, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
	result_fini(&r);
	assert_int_equal(atomic_load(&f->act_started), 0);
}

typedef struct sender {
	fixture    *f;
	saga_id     id;
	uint32_t    kind;
	const char *action;
	result      res;
	int         rv;
} sender;

static void *
sender_main(void *arg)
{
	sender      *s = arg;
	saga_client *cli;
	char         err[256];

	if ((s->rv = saga_client_open(&cli, s->f->url, err, sizeof(err))) !=
	    0) {
		return (NULL);
	}
	s->rv = send_cmd(cli, proto_buf_raw(&s->f->ctx), &s->id, 0, s->kind,
	    1, s->action, &s->res);
	saga_client_free(cli);
	return (NULL);
}

static bool
action_started(void *arg)
{
	fixture *f = arg;

	return (atomic_load(&f->act_started) > 0);
}

/* A compensation delivered while its action runs waits for the action's
 * transaction, then undoes it: never a null compensation of an action
 * that is about to commit. */
static void
test_participant_compensation_waits_for_running_action(void **state)
{
	fixture  *f = *state;
	sender    a, c;
	pthread_t ta, tc;

	start(f);
	memset(&a, 0, sizeof(a));
	memset(&c, 0, sizeof(c));
	a.f      = f;
	a.id     = new_id(f);
	a.kind   = 0;
	a.action = "stock.reserve";
	c        = a;
	c.kind   = 1;
	c.action = "stock.release";
	atomic_store(&f->act_delay_ms, 500);
	assert_int_equal(pthread_create(&ta, NULL, sender_main, &a), 0);
	assert_true(test_wait_until(action_started, f, 10000 * test_scale()));
	assert_int_equal(pthread_create(&tc, NULL, sender_main, &c), 0);
	pthread_join(ta, NULL);
	pthread_join(tc, NULL);
	assert_int_equal(a.rv, 0);
	assert_int_equal(c.rv, 0);
	assert_int_equal(a.res.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(c.res.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(atomic_load(&f->act_calls), 1);
	assert_int_equal(atomic_load(&f->comp_calls), 1);
	assert_int_equal(biz_rows(f, &a.id), 0);
	result_fini(&a.res);
	result_fini(&c.res);
}

/* ---- Batches ---- */

static void admin_exec(fixture *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A command sent from a thread of its own, answered some time later. */
typedef struct pending {
	fixture    *f;
	saga_id     id;
	uint32_t    step;
	uint32_t    kind;
	uint32_t    attempt;
	result      res;
	int         rv;
	atomic_bool done;
	pthread_t   thr;
} pending;

static void *
pending_main(void *arg)
{
	pending     *s = arg;
	saga_client *cli;
	char         err[256];

	if ((s->rv = saga_client_open(&cli, s->f->url, err, sizeof(err))) ==
	    0) {
		s->rv = send_cmd(cli, proto_buf_raw(&s->f->ctx), &s->id,
		    s->step, s->kind, s->attempt,
		    s->kind == 0 ? "stock.reserve" : "stock.release", &s->res);
		saga_client_free(cli);
	}
	atomic_store(&s->done, true);
	return (NULL);
}

/* Sends (id, step, kind, attempt) from a new thread. */
static void
pending_start(pending *s, fixture *f, const saga_id *id, uint32_t step,
    uint32_t kind, uint32_t attempt)
{
	memset(s, 0, sizeof(*s));
	s->f       = f;
	s->id      = *id;
	s->step    = step;
	s->kind    = kind;
	s->attempt = attempt;
	atomic_init(&s->done, false);
	proto_buf_init(&s->res.output);
	assert_int_equal(pthread_create(&s->thr, NULL, pending_main, s), 0);
}

/* Waits for the answer, which must be a REPLY. */
static void
pending_join(pending *s)
{
	pthread_join(s->thr, NULL);
	assert_int_equal(s->rv, 0);
	assert_int_equal(s->res.type, PROTO_T_REPLY);
	assert_true(saga_id_equal(&s->res.id, &s->id));
	assert_int_equal(s->res.attempt, s->attempt);
}

typedef struct waiting {
	fixture *f;
	int      n;
} waiting;

static bool
queued_is(void *arg)
{
	waiting               *w = arg;
	saga_participant_stats st;

	saga_participant_stats_get(w->f->p, &st);
	return (st.queued == (uint32_t) w->n);
}

static bool
gated_is(void *arg)
{
	waiting *w = arg;

	return (atomic_load(&w->f->gated) == w->n);
}

static bool
act_calls_is(void *arg)
{
	waiting *w = arg;

	return (atomic_load(&w->f->act_calls) == w->n);
}

/* Waits until n commands wait in the participant's queue. */
static void
wait_queued(fixture *f, int n)
{
	waiting w = { f, n };

	assert_true(test_wait_until(queued_is, &w, 10000 * test_scale()));
}

/* Waits until n handlers wait at a gate. */
static void
wait_gated(fixture *f, int n)
{
	waiting w = { f, n };

	assert_true(test_wait_until(gated_is, &w, 10000 * test_scale()));
}

static void
wait_act_calls(fixture *f, int n)
{
	waiting w = { f, n };

	assert_true(test_wait_until(act_calls_is, &w, 10000 * test_scale()));
}

/* Sends a command from a new thread and waits until it is queued behind
 * the n - 1 queued before it: the queue's order is then the order of the
 * calls. */
static void
queue_cmd(pending *s, fixture *f, const saga_id *id, uint32_t step,
    uint32_t kind, uint32_t attempt, int n)
{
	pending_start(s, f, id, step, kind, attempt);
	wait_queued(f, n);
}

/* Queues the actions of n new sagas (ids) behind the held worker, the
 * i-th at step step0 + i, with modes[i] as that step's mode (modes NULL:
 * the steps' modes stay). */
static void
queue_actions(fixture *f, pending *b, saga_id *ids, int n, uint32_t step0,
    const act_mode *modes)
{
	for (int i = 0; i < n; i++) {
		ids[i] = new_id(f);
		if (modes != NULL) {
			set_step_mode(f, step0 + (uint32_t) i, modes[i]);
		}
		queue_cmd(&b[i], f, &ids[i], step0 + (uint32_t) i, 0, 1, i + 1);
	}
}

/* Starts a participant with one worker and max_batch (0: default). */
static void
start_one_worker(fixture *f, int max_batch)
{
	saga_participant_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.workers   = 1;
	cfg.max_batch = max_batch;
	start_with(f, &cfg, true);
}

/* Sends an action of step 0 that stops at its gate, holding the only
 * worker: what is sent next queues up behind it. */
static void
block_worker(fixture *f, pending *blocker, saga_id *id)
{
	gate_set(f, 0, true);
	*id = new_id(f);
	pending_start(blocker, f, id, 0, 0, 1);
	wait_gated(f, 1);
}

/* Both. */
static void
start_blocked(fixture *f, int max_batch, pending *blocker, saga_id *id)
{
	start_one_worker(f, max_batch);
	block_worker(f, blocker, id);
}

/* The transaction that wrote id's biz row (exactly one row). */
static long long
biz_txid(fixture *f, const saga_id *id)
{
	char t[SAGA_ID_STRLEN + 1];

	return (query_int(f, "SELECT txid FROM biz WHERE saga_id = '%s'",
	    saga_id_format(id, t)));
}

static long long
barrier_all(fixture *f, const saga_id *id)
{
	char t[SAGA_ID_STRLEN + 1];

	return (query_int(f,
	    "SELECT count(*) FROM saga_barrier WHERE saga_id = '%s'",
	    saga_id_format(id, t)));
}

static void
test_participant_batch_commits_once_then_answers(void **state)
{
	fixture               *f = *state;
	pending                a, b[3];
	saga_id                ida, ids[3];
	saga_participant_stats st;

	start_blocked(f, 0, &a, &ida);
	/* Three commands queue up while the only worker is held; the third
	 * will stop at its gate with the batch's transaction open. */
	gate_set(f, 3, true);
	queue_actions(f, b, ids, 3, 1, NULL);
	gate_set(f, 0, false);
	pending_join(&a);
	assert_int_equal(a.res.outcome, PROTO_OUTCOME_OK);
	/* The worker took all three at once: the first two are done, the
	 * third holds the transaction. */
	wait_act_calls(f, 3);
	wait_gated(f, 1);
	saga_participant_stats_get(f->p, &st);
	assert_int_equal(st.batches, 2);
	assert_int_equal(st.max_batch, 3);
	assert_int_equal(st.queued, 0);
	/* Done, but neither committed nor answered. (An absence can only
	 * be watched for a while: replies sent early would arrive in much
	 * less than this.) */
	sleep_ms(300);
	assert_false(atomic_load(&b[0].done));
	assert_false(atomic_load(&b[1].done));
	assert_int_equal(biz_rows(f, &ids[0]), 0);
	assert_int_equal(barrier_all(f, &ids[1]), 0);
	gate_set(f, 3, false);
	for (int i = 0; i < 3; i++) {
		pending_join(&b[i]);
		assert_int_equal(b[i].res.outcome, PROTO_OUTCOME_OK);
		assert_true(output_int(&b[i].res, "n") > 0);
		assert_int_equal(biz_rows(f, &ids[i]), 1);
		assert_int_equal(barrier_rows(f, &ids[i], 0, "ok"), 1);
	}
	/* One transaction for the three, another for the first. */
	assert_int_equal(biz_txid(f, &ids[0]), biz_txid(f, &ids[1]));
	assert_int_equal(biz_txid(f, &ids[0]), biz_txid(f, &ids[2]));
	assert_true(biz_txid(f, &ids[0]) != biz_txid(f, &ida));
	saga_participant_stats_get(f->p, &st);
	assert_int_equal(st.commands, 4);
	assert_int_equal(st.batches, 2);
	assert_int_equal(st.batches_lost, 0);
	result_fini(&a.res);
	for (int i = 0; i < 3; i++) {
		result_fini(&b[i].res);
	}
}

/* A command that must be undone (retry, crash, deadlock, error code,
 * business failure, failed compensation) is rolled back to its own
 * savepoint: the others of the batch commit, and it answers as it would
 * alone. */
/* A handler that leaves pipeline mode on (with a statement queued and
 * not read) in the middle of a batch: its command is undone and answered
 * retry, the pipelined statement with it, and the others of the batch
 * commit. Before, the library's next round failed on the connection and
 * the whole batch was answered retry, at every resend. */
static void
test_participant_batch_survives_a_pipeline_left_on(void **state)
{
	fixture *f = *state;
	static const act_mode modes[] = { ACT_OK, ACT_PIPELINE, ACT_OK };
	enum { N = sizeof(modes) / sizeof(modes[0]) };
	pending  a, b[N];
	saga_id  ida, ids[N];

	start_one_worker(f, 0);
	block_worker(f, &a, &ida);
	queue_actions(f, b, ids, N, 1, modes);
	gate_set(f, 0, false);
	pending_join(&a);
	for (int i = 0; i < N; i++) {
		pending_join(&b[i]);
	}
	for (int i = 0; i < N; i += N - 1) {
		assert_int_equal(b[i].res.outcome, PROTO_OUTCOME_OK);
		assert_int_equal(biz_rows(f, &ids[i]), 1);
		assert_int_equal(barrier_rows(f, &ids[i], 0, "ok"), 1);
	}
	assert_int_equal(b[1].res.outcome, PROTO_OUTCOME_RETRY);
	assert_non_null(strstr(b[1].res.text, "pipeline mode"));
	assert_int_equal(biz_rows(f, &ids[1]), 0);
	assert_int_equal(barrier_all(f, &ids[1]), 0);
	result_fini(&a.res);
	for (int i = 0; i < N; i++) {
		result_fini(&b[i].res);
	}
}

static void
test_participant_batch_failure_undoes_only_its_command(void **state)
{
	fixture *f = *state;
	static const act_mode modes[] = { ACT_OK, ACT_RETRY, ACT_SQL_ERROR,
		ACT_FAIL, ACT_DEADLOCK, ACT_RETURN_ERR, ACT_NO_OUTCOME,
		ACT_OK };
	enum { N = sizeof(modes) / sizeof(modes[0]) };
	pending  a, b[N], comp;
	saga_id  ida, ids[N], idc;
	result   r;

	start_one_worker(f, 0);
	/* An action of step 20, committed before the batch: its
	 * compensation will fail inside the batch. */
	idc = new_id(f);
	assert_int_equal(send_f(f, &idc, 20, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	block_worker(f, &a, &ida);

	queue_actions(f, b, ids, N, 1, modes);
	atomic_store(&f->comp_fail, 1);
	queue_cmd(&comp, f, &idc, 20, 1, 1, N + 1);
	gate_set(f, 0, false);
	pending_join(&a);
	pending_join(&comp);
	for (int i = 0; i < N; i++) {
		pending_join(&b[i]);
	}
	/* The first and the last commit, in one transaction. */
	for (int i = 0; i < N; i += N - 1) {
		assert_int_equal(b[i].res.outcome, PROTO_OUTCOME_OK);
		assert_int_equal(biz_rows(f, &ids[i]), 1);
		assert_int_equal(barrier_rows(f, &ids[i], 0, "ok"), 1);
	}
	assert_int_equal(biz_txid(f, &ids[0]), biz_txid(f, &ids[N - 1]));
	/* Retry, crash, deadlock, error code, no outcome: nothing kept. */
	for (int i = 1; i < N - 1; i++) {
		if (modes[i] == ACT_FAIL) {
			continue;
		}
		assert_int_equal(b[i].res.outcome, PROTO_OUTCOME_RETRY);
		assert_int_equal(biz_rows(f, &ids[i]), 0);
		assert_int_equal(barrier_all(f, &ids[i]), 0);
	}
	assert_non_null(strstr(b[1].res.text, "warehouse busy"));
	assert_non_null(strstr(b[2].res.text, "division by zero"));
	assert_non_null(strstr(b[4].res.text, "deadlock"));
	/* The business failure keeps its barrier row, not its work. */
	assert_int_equal(b[3].res.outcome, PROTO_OUTCOME_FAILED);
	assert_string_equal(b[3].res.text, "out of stock: A1");
	assert_int_equal(biz_rows(f, &ids[3]), 0);
	assert_int_equal(barrier_rows(f, &ids[3], 0, "failed"), 1);
	/* The failed compensation kept nothing: its delete is undone. */
	assert_int_equal(comp.res.outcome, PROTO_OUTCOME_FAILED);
	assert_string_equal(comp.res.text, "cannot release");
	assert_int_equal(biz_rows(f, &idc), 1);
	assert_int_equal(barrier_rows(f, &idc, 1, "ok"), 0);
	/* A retried command runs again later, alone. */
	set_step_mode(f, 2, ACT_OK);
	assert_int_equal(send_f(f, &ids[1], 2, 0, 2, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(biz_rows(f, &ids[1]), 1);
	result_fini(&r);
	result_fini(&a.res);
	result_fini(&comp.res);
	for (int i = 0; i < N; i++) {
		result_fini(&b[i].res);
	}
}

/* Duplicates of one command in one batch: the first runs, the second
 * finds the first's row (uncommitted, in the same transaction) and
 * replays it; both answers after the COMMIT. */
static void
test_participant_batch_duplicates_one_effect(void **state)
{
	fixture *f = *state;
	pending  a, x[2], y[2], z[2];
	saga_id  ida, idx, idy, idz;

	start_blocked(f, 0, &a, &ida);
	idx = new_id(f);
	idy = new_id(f);
	idz = new_id(f);
	set_step_mode(f, 2, ACT_FAIL);
	queue_cmd(&x[0], f, &idx, 1, 0, 1, 1);
	queue_cmd(&x[1], f, &idx, 1, 0, 2, 2);
	queue_cmd(&y[0], f, &idy, 2, 0, 1, 3);
	queue_cmd(&y[1], f, &idy, 2, 0, 2, 4);
	/* Two null compensations of an action never seen. */
	queue_cmd(&z[0], f, &idz, 3, 1, 1, 5);
	queue_cmd(&z[1], f, &idz, 3, 1, 2, 6);
	gate_set(f, 0, false);
	pending_join(&a);
	for (int i = 0; i < 2; i++) {
		pending_join(&x[i]);
		pending_join(&y[i]);
		pending_join(&z[i]);
		assert_int_equal(x[i].res.outcome, PROTO_OUTCOME_OK);
		assert_int_equal(y[i].res.outcome, PROTO_OUTCOME_FAILED);
		assert_string_equal(y[i].res.text, "out of stock: A1");
		assert_int_equal(z[i].res.outcome, PROTO_OUTCOME_OK);
	}
	assert_true(output_int(&x[0].res, "n") > 0);
	assert_true(proto_raw_equal(proto_buf_raw(&x[0].res.output),
	    proto_buf_raw(&x[1].res.output)));
	/* The blocker, x and y ran once each. */
	assert_int_equal(atomic_load(&f->act_calls), 3);
	assert_int_equal(atomic_load(&f->comp_calls), 0);
	assert_int_equal(biz_rows(f, &idx), 1);
	assert_int_equal(barrier_rows(f, &idx, 0, "ok"), 1);
	assert_int_equal(biz_rows(f, &idy), 0);
	assert_int_equal(barrier_rows(f, &idy, 0, "failed"), 1);
	assert_int_equal(barrier_rows(f, &idz, 0, "aborted"), 1);
	assert_int_equal(barrier_rows(f, &idz, 1, "ok"), 1);
	result_fini(&a.res);
	for (int i = 0; i < 2; i++) {
		result_fini(&x[i].res);
		result_fini(&y[i].res);
		result_fini(&z[i].res);
	}
}

/* An action and its compensation in one batch, in both orders: undone,
 * or a null compensation and a refused action. */
static void
test_participant_batch_action_and_compensation(void **state)
{
	fixture *f = *state;
	pending  a, pa, pc, qc, qa;
	saga_id  ida, idp, idq;

	start_blocked(f, 0, &a, &ida);
	idp = new_id(f);
	idq = new_id(f);
	queue_cmd(&pa, f, &idp, 1, 0, 1, 1);
	queue_cmd(&pc, f, &idp, 1, 1, 1, 2);
	queue_cmd(&qc, f, &idq, 2, 1, 1, 3);
	queue_cmd(&qa, f, &idq, 2, 0, 1, 4);
	gate_set(f, 0, false);
	pending_join(&a);
	pending_join(&pa);
	pending_join(&pc);
	pending_join(&qc);
	pending_join(&qa);
	/* p: the action ran, its compensation saw its output and undid
	 * it. */
	assert_int_equal(pa.res.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(pc.res.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(atomic_load(&f->comp_calls), 1);
	assert_int_equal(
	    atomic_load(&f->comp_saw_n), output_int(&pa.res, "n"));
	assert_int_equal(biz_rows(f, &idp), 0);
	assert_int_equal(barrier_rows(f, &idp, 0, "ok"), 1);
	assert_int_equal(barrier_rows(f, &idp, 1, "ok"), 1);
	/* q: a null compensation, then the action refused unrun. */
	assert_int_equal(qc.res.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(qa.res.outcome, PROTO_OUTCOME_FAILED);
	assert_non_null(strstr(qa.res.text, "refused"));
	assert_int_equal(atomic_load(&f->act_started), 2);
	assert_int_equal(biz_rows(f, &idq), 0);
	assert_int_equal(barrier_rows(f, &idq, 0, "aborted"), 1);
	assert_int_equal(barrier_rows(f, &idq, 1, "ok"), 1);
	result_fini(&a.res);
	result_fini(&pa.res);
	result_fini(&pc.res);
	result_fini(&qc.res);
	result_fini(&qa.res);
}

/* Records, at each COMMIT that inserted biz rows, the synchronous_commit
 * that COMMIT runs with, in sync_seen: a deferred constraint trigger
 * fires inside the COMMIT, after everything the transaction ran. */
static void
sync_seen_install(fixture *f)
{
	assert_int_equal(pgtest_exec(f->db,
	                     "CREATE TABLE sync_seen (step integer, sync "
	                     "text NOT NULL);"
	                     "CREATE FUNCTION sync_seen_f() RETURNS trigger "
	                     "LANGUAGE plpgsql AS $$ BEGIN INSERT INTO "
	                     "sync_seen VALUES (NEW.step, "
	                     "current_setting('synchronous_commit')); "
	                     "RETURN NULL; END $$;"
	                     "CREATE CONSTRAINT TRIGGER sync_seen_t AFTER "
	                     "INSERT ON biz DEFERRABLE INITIALLY DEFERRED "
	                     "FOR EACH ROW EXECUTE FUNCTION sync_seen_f()"),
	    0);
}

/* A handler that sets synchronous_commit off, for its transaction (SET
 * LOCAL) or for the session (SET), cannot make the batch's COMMIT return
 * before its WAL is flushed: the library sets it back just before the
 * COMMIT, and the answer leaves only after. One worker: the session's
 * off stays on the connection the next command runs on. */
static void
test_participant_handler_cannot_turn_sync_commit_off(void **state)
{
	fixture                *f = *state;
	saga_participant_config cfg;
	saga_id                 id;
	result                  r;
	char                    buf[64];

	memset(&cfg, 0, sizeof(cfg));
	cfg.workers = 1;
	start_with(f, &cfg, true);
	sync_seen_install(f);
	set_step_mode(f, 1, ACT_SYNC_LOCAL_OFF);
	set_step_mode(f, 2, ACT_SYNC_OFF);
	id = new_id(f);
	for (uint32_t step = 1; step <= 3; step++) {
		assert_int_equal(send_f(f, &id, step, 0, 1, "stock.reserve",
		                     &r),
		    0);
		assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
		result_fini(&r);
	}
	assert_int_equal(biz_rows(f, &id), 3);
	for (int step = 1; step <= 3; step++) {
		PGresult *res;

		snprintf(buf, sizeof(buf),
		    "SELECT sync FROM sync_seen WHERE step = %d", step);
		res = PQexec(f->db, buf);
		assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
		assert_int_equal(PQntuples(res), 1);
		if (strcmp(PQgetvalue(res, 0, 0), "on") != 0) {
			fail_msg("step %d committed with synchronous_commit "
			         "= %s",
			    step, PQgetvalue(res, 0, 0));
		}
		PQclear(res);
	}
}

/* A database whose default is synchronous_commit = off (ALTER DATABASE
 * ... SET): each connection of the library says so (a WARN) and turns it
 * on. */
static void
test_participant_sync_commit_off_database_warns(void **state)
{
	fixture                *f = *state;
	saga_participant_config cfg;
	saga_id                 id;
	result                  r;
	char                   *log;

	assert_int_equal(pgtest_exec(f->db,
	                     "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I "
	                     "SET synchronous_commit = off', "
	                     "current_database()); END $$"),
	    0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.workers   = 1;
	cfg.log_level = SAGA_PARTICIPANT_LOG_WARN;
	log_capture_begin(f);
	start_with(f, &cfg, true);
	id = new_id(f);
	assert_int_equal(send_f(f, &id, 1, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	saga_participant_free(f->p);
	f->p = NULL;
	log = log_capture_end(f);
	assert_non_null(log);
	if (strstr(log, "PARTICIPANT-SYNC-COMMIT synchronous_commit is off")
	    == NULL) {
		fail_msg("no warning in the log:\n%s", log);
	}
	free(log);
}

/* A COMMIT that fails (a deferred foreign key broken by one command)
 * loses the whole batch: every command answers retry, a replay of an
 * uncommitted row included, and nothing is recorded. */
static void
test_participant_batch_commit_failure_answers_retry(void **state)
{
	fixture               *f = *state;
	pending                a, b[4];
	saga_id                ida, ids[3];
	saga_participant_stats st;
	result                 r;

	start_blocked(f, 0, &a, &ida);
	for (int i = 0; i < 3; i++) {
		ids[i] = new_id(f);
	}
	set_step_mode(f, 2, ACT_DEFERRED);
	queue_cmd(&b[0], f, &ids[0], 1, 0, 1, 1);
	queue_cmd(&b[1], f, &ids[0], 1, 0, 2, 2); /* a duplicate */
	queue_cmd(&b[2], f, &ids[1], 2, 0, 1, 3);
	queue_cmd(&b[3], f, &ids[2], 3, 0, 1, 4);
	gate_set(f, 0, false);
	pending_join(&a);
	for (int i = 0; i < 4; i++) {
		pending_join(&b[i]);
		assert_int_equal(b[i].res.outcome, PROTO_OUTCOME_RETRY);
		if (strstr(b[i].res.text, "COMMIT") == NULL ||
		    strstr(b[i].res.text, "not committed") == NULL) {
			fail_msg("answer %d: \"%s\"", i, b[i].res.text);
		}
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(biz_rows(f, &ids[i]), 0);
		assert_int_equal(barrier_all(f, &ids[i]), 0);
	}
	saga_participant_stats_get(f->p, &st);
	assert_int_equal(st.batches, 2);
	assert_int_equal(st.batches_lost, 1);
	/* Sent again, they run (the handlers again: nothing was kept). */
	set_step_mode(f, 2, ACT_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(send_f(f, &ids[i], (uint32_t) i + 1, 0, 3,
		                     "stock.reserve", &r),
		    0);
		assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
		assert_int_equal(output_int(&r, "attempt"), 3);
		assert_int_equal(biz_rows(f, &ids[i]), 1);
		result_fini(&r);
	}
	assert_int_equal(atomic_load(&f->act_calls), 1 + 3 + 3);
	result_fini(&a.res);
	for (int i = 0; i < 4; i++) {
		result_fini(&b[i].res);
	}
}

/* A handler that ends the transaction itself (ROLLBACK, against the
 * rules) throws away the work of the commands before it in the batch:
 * none of them may be answered ok; all answer retry and run again. */
static void
test_participant_batch_handler_rollback_loses_batch(void **state)
{
	fixture *f = *state;
	pending  a, b[3];
	saga_id  ida, ids[3];
	result   r;

	start_blocked(f, 0, &a, &ida);
	set_step_mode(f, 2, ACT_ROLLBACK);
	queue_actions(f, b, ids, 3, 1, NULL);
	gate_set(f, 0, false);
	pending_join(&a);
	for (int i = 0; i < 3; i++) {
		pending_join(&b[i]);
		assert_int_equal(b[i].res.outcome, PROTO_OUTCOME_RETRY);
		assert_non_null(strstr(b[i].res.text, "not committed"));
		assert_int_equal(biz_rows(f, &ids[i]), 0);
		assert_int_equal(barrier_all(f, &ids[i]), 0);
	}
	/* The worker goes on, on a clean connection. */
	set_step_mode(f, 2, ACT_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(send_f(f, &ids[i], (uint32_t) i + 1, 0, 2,
		                     "stock.reserve", &r),
		    0);
		assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
		assert_int_equal(biz_rows(f, &ids[i]), 1);
		result_fini(&r);
	}
	result_fini(&a.res);
	for (int i = 0; i < 3; i++) {
		result_fini(&b[i].res);
	}
}

/* A handler that deletes its own barrier row, or releases the
 * library's savepoint (both against the rules): its settle fails, so
 * its command is undone and answered retry, alone or in a batch,
 * wherever its settle was sent (with the next command's first round
 * trip, or with the COMMIT), and the other commands of the batch are
 * kept. An ok without output, which records nothing, is checked too. */
static void
test_participant_settle_failure_undoes_its_command(void **state)
{
	fixture *f = *state;
	static const act_mode modes[] = { ACT_OK, ACT_DROP_ROW, ACT_OK,
		ACT_DROP_SAVEPOINT, ACT_OK, ACT_DROP_ROW };
	enum { N = sizeof(modes) / sizeof(modes[0]) };
	pending  a, b[N];
	saga_id  ida, ids[N], id;
	result   r;

	start_one_worker(f, 0);
	set_step_mode(f, 1, ACT_DROP_ROW);
	id = new_id(f);
	assert_int_equal(send_f(f, &id, 1, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_RETRY);
	assert_non_null(strstr(r.text, "the barrier row is gone"));
	assert_int_equal(biz_rows(f, &id), 0);
	assert_int_equal(barrier_all(f, &id), 0);
	result_fini(&r);

	/* A compensation, whose ok has no output. */
	set_step_mode(f, 1, ACT_OK);
	assert_int_equal(send_f(f, &id, 1, 0, 2, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	atomic_store(&f->comp_drop, 1);
	assert_int_equal(send_f(f, &id, 1, 1, 1, "stock.release", &r), 0);
	atomic_store(&f->comp_drop, 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_RETRY);
	assert_non_null(strstr(r.text, "the barrier row is gone"));
	assert_int_equal(biz_rows(f, &id), 1);
	assert_int_equal(barrier_rows(f, &id, 1, "ok"), 0);
	result_fini(&r);

	/* In a batch: the second and the fourth (their settles go with
	 * the next command's begin) and the last (with the COMMIT). */
	block_worker(f, &a, &ida);
	queue_actions(f, b, ids, N, 2, modes);
	gate_set(f, 0, false);
	pending_join(&a);
	for (int i = 0; i < N; i++) {
		pending_join(&b[i]);
		if (modes[i] == ACT_OK) {
			assert_int_equal(b[i].res.outcome, PROTO_OUTCOME_OK);
			assert_int_equal(biz_rows(f, &ids[i]), 1);
			assert_int_equal(barrier_rows(f, &ids[i], 0, "ok"), 1);
			assert_int_equal(
			    biz_txid(f, &ids[i]), biz_txid(f, &ids[0]));
			continue;
		}
		assert_int_equal(b[i].res.outcome, PROTO_OUTCOME_RETRY);
		assert_non_null(strstr(b[i].res.text,
		    modes[i] == ACT_DROP_ROW ? "the barrier row is gone"
		                             : "saga_barrier_handler"));
		assert_int_equal(biz_rows(f, &ids[i]), 0);
		assert_int_equal(barrier_all(f, &ids[i]), 0);
	}
	result_fini(&a.res);
	for (int i = 0; i < N; i++) {
		result_fini(&b[i].res);
	}
}

/* The rows of id's barrier that hold an output (the settle ran). */
static long long
barrier_output_rows(fixture *f, const saga_id *id)
{
	char t[SAGA_ID_STRLEN + 1];

	return (query_int(f,
	    "SELECT count(*) FROM saga_barrier WHERE saga_id = '%s' "
	    "AND outcome = 'ok' AND output IS NOT NULL",
	    saga_id_format(id, t)));
}

/* The round trips libpq made while tracing into f->trace (the messages
 * that wait for an answer: Sync, and the simple protocol's Query); the
 * trace must hold want (NULL: anything). */
static int
trace_round_trips(fixture *f, const char *want)
{
	int n = 0;

	assert_int_equal(fclose(f->trace), 0);
	f->trace = NULL;
	if (want != NULL) {
		assert_non_null(strstr(f->trace_buf, want));
	}
	for (char *l = f->trace_buf; l != NULL && *l != '\0';) {
		char *nl = strchr(l, '\n');

		if (nl != NULL) {
			*nl = '\0';
		}
		if (strncmp(l, "F\t", 2) == 0 &&
		    (strstr(l, "\tSync") != NULL ||
		        strstr(l, "\tQuery\t") != NULL)) {
			n++;
		}
		l = nl != NULL ? nl + 1 : NULL;
	}
	free(f->trace_buf);
	f->trace_buf = NULL;
	return (n);
}

/* A kept command's settle costs no round trip of its own (libpq's trace
 * of the worker's connection, from the end of one handler to the start
 * of a later one): alone, it goes with the COMMIT; in a batch, with the
 * next command's first round trip. Nor does a batch's BEGIN: it goes
 * with its first command's. */
static void
test_participant_settle_rides_next_round_trip(void **state)
{
	static const act_mode trace_modes[] = { ACT_TRACE_ON, ACT_OK,
		ACT_TRACE_OFF };
	fixture *f = *state;
	pending  a, b[3];
	saga_id  ida, ids[3], id;
	result   r;

	start_one_worker(f, 0);
	/* Alone: the settle and COMMIT of the first, then the begin of
	 * the second. */
	f->trace = open_memstream(&f->trace_buf, &f->trace_len);
	assert_non_null(f->trace);
	set_step_mode(f, 1, ACT_TRACE_ON);
	set_step_mode(f, 2, ACT_TRACE_OFF);
	for (uint32_t step = 1; step <= 2; step++) {
		id = new_id(f);
		assert_int_equal(
		    send_f(f, &id, step, 0, 1, "stock.reserve", &r), 0);
		assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
		assert_int_equal(barrier_output_rows(f, &id), 1);
		result_fini(&r);
	}
	assert_int_equal(trace_round_trips(f, NULL), 2);

	/* A batch of three: the first's settle with the second's begin,
	 * the second's handler (one statement), the second's settle with
	 * the third's begin. */
	f->trace = open_memstream(&f->trace_buf, &f->trace_len);
	assert_non_null(f->trace);
	block_worker(f, &a, &ida);
	queue_actions(f, b, ids, 3, 3, trace_modes);
	gate_set(f, 0, false);
	pending_join(&a);
	for (int i = 0; i < 3; i++) {
		pending_join(&b[i]);
		assert_int_equal(b[i].res.outcome, PROTO_OUTCOME_OK);
		assert_int_equal(barrier_output_rows(f, &ids[i]), 1);
		result_fini(&b[i].res);
	}
	assert_int_equal(biz_txid(f, &ids[0]), biz_txid(f, &ids[2]));
	assert_int_equal(trace_round_trips(f, NULL), 3);
	result_fini(&a.res);

	/* From the end of the held command's handler: its settle and
	 * COMMIT; the batch's BEGIN with its first command's begin; that
	 * command's handler; its settle with the second's begin. */
	f->trace = open_memstream(&f->trace_buf, &f->trace_len);
	assert_non_null(f->trace);
	set_step_mode(f, 0, ACT_TRACE_ON);
	block_worker(f, &a, &ida);
	queue_actions(f, b, ids, 2, 6, trace_modes + 1);
	gate_set(f, 0, false);
	pending_join(&a);
	assert_int_equal(a.res.outcome, PROTO_OUTCOME_OK);
	for (int i = 0; i < 2; i++) {
		pending_join(&b[i]);
		assert_int_equal(b[i].res.outcome, PROTO_OUTCOME_OK);
		assert_int_equal(barrier_output_rows(f, &ids[i]), 1);
		result_fini(&b[i].res);
	}
	assert_int_equal(biz_txid(f, &ids[0]), biz_txid(f, &ids[1]));
	/* The lock timeout went with the BEGIN. */
	assert_int_equal(trace_round_trips(f, "lock_timeout"), 4);
	result_fini(&a.res);
}

/* The connection dropped in the middle of a batch: every command of it
 * answers retry, and the worker reconnects for the next. */
static void
test_participant_batch_connection_lost_answers_retry(void **state)
{
	fixture *f = *state;
	pending  a, b[2];
	saga_id  ida, ids[2];
	result   r;
	int64_t  deadline;
	bool     ok;

	start_blocked(f, 0, &a, &ida);
	gate_set(f, 2, true);
	queue_actions(f, b, ids, 2, 1, NULL);
	gate_set(f, 0, false);
	pending_join(&a);
	assert_int_equal(a.res.outcome, PROTO_OUTCOME_OK);
	/* The first is done, the second holds the transaction open. */
	wait_act_calls(f, 2);
	wait_gated(f, 1);
	admin_exec(f,
	    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	    "WHERE datname = '%s' AND state = 'idle in transaction' AND "
	    "application_name = 'parttest'",
	    f->dbname);
	gate_set(f, 2, false);
	for (int i = 0; i < 2; i++) {
		pending_join(&b[i]);
		assert_int_equal(b[i].res.outcome, PROTO_OUTCOME_RETRY);
		assert_non_null(strstr(b[i].res.text, "not committed"));
		assert_int_equal(biz_rows(f, &ids[i]), 0);
		assert_int_equal(barrier_all(f, &ids[i]), 0);
	}
	/* Sent again, they run on a new connection. */
	for (int i = 0; i < 2; i++) {
		ok       = false;
		deadline = (int64_t) time(NULL) + 20 * test_scale();
		for (uint32_t at = 2; !ok && time(NULL) < deadline; at++) {
			assert_int_equal(send_f(f, &ids[i], (uint32_t) i + 1,
			                     0, at, "stock.reserve", &r),
			    0);
			ok = r.outcome == PROTO_OUTCOME_OK;
			result_fini(&r);
			if (!ok) {
				sleep_ms(50);
			}
		}
		assert_true(ok);
		assert_int_equal(biz_rows(f, &ids[i]), 1);
	}
	result_fini(&a.res);
	for (int i = 0; i < 2; i++) {
		result_fini(&b[i].res);
	}
}

/* Holds row 1 of lockme on a connection of its own (returned), and runs
 * steps 1 and 2 (ids, answers in b) as one batch, step 2 in mode, which
 * locks that row: its lock wait is cut short (lock_timeout) and it runs
 * again alone after the batch's COMMIT. The blocker a is joined. */
static PGconn *
batch_behind_lock(
    fixture *f, act_mode mode, pending *a, pending *b, saga_id *ids)
{
	saga_id ida;
	PGconn *hold;

	start_blocked(f, 0, a, &ida);
	assert_non_null(hold = pgtest_connect(f->conninfo));
	assert_int_equal(pgtest_exec(hold, "BEGIN; UPDATE lockme SET n = "
	                                   "n + 1 WHERE k = 1"),
	    0);
	set_step_mode(f, 2, mode);
	queue_actions(f, b, ids, 2, 1, NULL);
	gate_set(f, 0, false);
	pending_join(a);
	return (hold);
}

/* A command of a batch undone by a lock wait runs again alone after the
 * batch's COMMIT; if that rerun loses its connection, its answer is retry
 * with the reason (it was an empty text: the batch's own reason, unset
 * since its COMMIT succeeded, was copied over the rerun's). */
static void
test_participant_batch_rerun_lost_says_why(void **state)
{
	fixture               *f = *state;
	pending                a, b[2];
	saga_id                ids[2];
	saga_participant_stats st;
	PGconn                *hold;

	/* Row 1 of lockme held here: in the batch, step 2's lock wait is
	 * cut short (lock_timeout), and its rerun alone ends its own
	 * backend instead of waiting. */
	hold = batch_behind_lock(f, ACT_LOCK1_THEN_DIE, &a, b, ids);
	pending_join(&b[0]);
	pending_join(&b[1]);
	assert_int_equal(pgtest_exec(hold, "ROLLBACK"), 0);
	PQfinish(hold);
	saga_participant_stats_get(f->p, &st);
	assert_int_equal(st.reruns, 1);
	assert_int_equal(atomic_load(&f->lock_die_calls), 2);
	assert_int_equal(b[0].res.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(b[1].res.outcome, PROTO_OUTCOME_RETRY);
	if (strstr(b[1].res.text, "the handler left the connection "
	                          "unusable") == NULL) {
		fail_msg("the rerun's answer: \"%s\"", b[1].res.text);
	}
	assert_int_equal(biz_rows(f, &ids[1]), 0);
	assert_int_equal(barrier_all(f, &ids[1]), 0);
	result_fini(&a.res);
	result_fini(&b[0].res);
	result_fini(&b[1].res);
}

/* The answers of a batch's committed commands leave at its COMMIT, not
 * after the reruns: here step 2 waits for a row lock held outside for as
 * long as the lock is held, and step 1, committed, was answered only
 * when it was released (a review saw 7.8 s). */
static void
test_participant_batch_answers_before_reruns(void **state)
{
	fixture *f = *state;
	pending  a, b[2];
	saga_id  ids[2];
	PGconn  *hold;
	bool     first_done = false, second_done = true;
	int64_t  deadline;

	hold = batch_behind_lock(f, ACT_LOCK1, &a, b, ids);
	/* Checked with the lock held; released before any assertion, so
	 * that a failure does not leave the rerun waiting for ever. */
	deadline = (int64_t) time(NULL) + 10 * test_scale();
	while (!(first_done = atomic_load(&b[0].done)) &&
	    time(NULL) < deadline) {
		sleep_ms(10);
	}
	second_done = atomic_load(&b[1].done);
	assert_int_equal(pgtest_exec(hold, "ROLLBACK"), 0);
	PQfinish(hold);
	pending_join(&b[0]);
	pending_join(&b[1]);
	assert_true(first_done);
	assert_false(second_done);
	assert_int_equal(b[0].res.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(b[1].res.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(biz_rows(f, &ids[0]), 1);
	assert_int_equal(biz_rows(f, &ids[1]), 1);
	result_fini(&a.res);
	result_fini(&b[0].res);
	result_fini(&b[1].res);
}

/* Two batches cross on business rows (each holds one row and would wait
 * for the other's): a batch does not wait for row locks (lock_timeout),
 * so the command that would wait is undone to its savepoint and runs
 * again alone after its batch committed; every command ends ok, each
 * effect once, and no deadlock (nor deadlock_timeout's second) happens. */
static void
test_participant_batch_lock_wait_reruns_alone(void **state)
{
	fixture                *f = *state;
	saga_participant_config cfg;
	pending                 g1, g2, x1, x2, y1, y2;
	saga_id                 idg1, idg2, ids[4];
	saga_participant_stats  st;
	pending                *second[2] = { &x2, &y2 };
	struct timespec         t0, t1;

	memset(&cfg, 0, sizeof(cfg));
	cfg.workers = 2;
	start_with(f, &cfg, true);
	/* Both workers held at gates (one after the other: sent together,
	 * both could go to one worker as one batch). */
	gate_set(f, 10, true);
	gate_set(f, 11, true);
	idg1 = new_id(f);
	idg2 = new_id(f);
	pending_start(&g1, f, &idg1, 10, 0, 1);
	wait_gated(f, 1);
	pending_start(&g2, f, &idg2, 11, 0, 1);
	wait_gated(f, 2);
	for (int i = 0; i < 4; i++) {
		ids[i] = new_id(f);
	}
	/* x: row 1 then row 2; y: row 2 then row 1. x1 and y1 wait for
	 * each other after locking, so that both hold a row. */
	set_step_mode(f, 1, ACT_LOCK1_MEET);
	set_step_mode(f, 2, ACT_LOCK2);
	set_step_mode(f, 3, ACT_LOCK2_MEET);
	set_step_mode(f, 4, ACT_LOCK1);
	queue_cmd(&x1, f, &ids[0], 1, 0, 1, 1);
	queue_cmd(&x2, f, &ids[1], 2, 0, 1, 2);
	gate_set(f, 10, false);
	wait_queued(f, 0);
	queue_cmd(&y1, f, &ids[2], 3, 0, 1, 1);
	queue_cmd(&y2, f, &ids[3], 4, 0, 1, 2);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	gate_set(f, 11, false);
	pending_join(&g1);
	pending_join(&g2);
	pending_join(&x1);
	pending_join(&x2);
	pending_join(&y1);
	pending_join(&y2);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(x1.res.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(y1.res.outcome, PROTO_OUTCOME_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(second[i]->res.outcome, PROTO_OUTCOME_OK);
		assert_int_equal(biz_rows(f, &second[i]->id), 1);
	}
	assert_int_equal(biz_rows(f, &ids[0]), 1);
	assert_int_equal(biz_rows(f, &ids[2]), 1);
	assert_int_equal(query_int(f, "SELECT sum(n) FROM lockme"), 4);
	saga_participant_stats_get(f->p, &st);
	assert_int_equal(st.batches, 4);
	assert_int_equal(st.batches_lost, 0);
	assert_true(st.reruns >= 1);
	/* No deadlock to be detected: well under deadlock_timeout (1 s)
	 * once the gates opened (generous for sanitizer builds). */
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 +
	        (t1.tv_nsec - t0.tv_nsec) / 1000000 <
	    3000);
	result_fini(&g1.res);
	result_fini(&g2.res);
	result_fini(&x1.res);
	result_fini(&x2.res);
	result_fini(&y1.res);
	result_fini(&y2.res);
}

/* max_batch 1: one transaction per command, as before batches. */
static void
test_participant_max_batch_one(void **state)
{
	fixture               *f = *state;
	pending                a, b[3];
	saga_id                ida, ids[3];
	saga_participant_stats st;

	start_blocked(f, 1, &a, &ida);
	queue_actions(f, b, ids, 3, 1, NULL);
	gate_set(f, 0, false);
	pending_join(&a);
	for (int i = 0; i < 3; i++) {
		pending_join(&b[i]);
		assert_int_equal(b[i].res.outcome, PROTO_OUTCOME_OK);
		assert_int_equal(biz_rows(f, &ids[i]), 1);
	}
	assert_true(biz_txid(f, &ids[0]) != biz_txid(f, &ids[1]));
	assert_true(biz_txid(f, &ids[1]) != biz_txid(f, &ids[2]));
	saga_participant_stats_get(f->p, &st);
	assert_int_equal(st.batches, 4);
	assert_int_equal(st.max_batch, 1);
	assert_int_equal(st.commands, 4);
	result_fini(&a.res);
	for (int i = 0; i < 3; i++) {
		result_fini(&b[i].res);
	}
}

/* ---- Bad requests ---- */

static void
test_participant_unknown_action_is_error(void **state)
{
	fixture *f = *state;
	saga_id  id;
	result   r;

	start(f);
	id = new_id(f);
	assert_int_equal(send_f(f, &id, 5, 0, 3, "stock.teleport", &r), 0);
	assert_int_equal(r.type, PROTO_T_ERROR);
	assert_int_equal(r.code, SAGA_ENOTFOUND);
	assert_non_null(strstr(r.text, "stock.teleport"));
	/* The request is echoed. */
	assert_true(saga_id_equal(&r.id, &id));
	assert_int_equal(r.step, 5);
	assert_int_equal(r.attempt, 3);
	result_fini(&r);
	/* A compensation's name sent as an action. */
	assert_int_equal(send_f(f, &id, 5, 0, 3, "stock.release", &r), 0);
	assert_int_equal(r.type, PROTO_T_ERROR);
	assert_int_equal(r.code, SAGA_ENOTFOUND);
	assert_non_null(strstr(r.text, "compensation of that name"));
	result_fini(&r);
	/* A long name of 0 or 1 'a', then 300 two-byte characters: the
	 * text is cut inside a character at one parity. It was then not
	 * sent: EINTERNAL, "internal error encoding the reply". */
	for (int a = 0; a < 2; a++) {
		char name[700];

		memset(name, 'a', (size_t) a);
		for (int i = 0; i < 300; i++) {
			memcpy(name + a + 2 * i, "\xc3\xa9", 2);
		}
		name[a + 600] = '\0';
		assert_int_equal(send_f(f, &id, 5, 0, 3, name, &r), 0);
		assert_int_equal(r.type, PROTO_T_ERROR);
		assert_int_equal(r.code, SAGA_ENOTFOUND);
		assert_non_null(strstr(r.text, "has no action named"));
		result_fini(&r);
	}
	/* A step the barrier cannot hold: refused (it was retry, at every
	 * delivery, as the barrier's insert failed). */
	assert_int_equal(send_f(f, &id, (uint32_t) INT32_MAX + 1, 0, 1,
	                     "stock.reserve", &r),
	    0);
	assert_int_equal(r.type, PROTO_T_ERROR);
	assert_int_equal(r.code, SAGA_ERANGE);
	result_fini(&r);
	/* Nothing was recorded. */
	assert_int_equal(
	    query_int(f, "SELECT count(*) FROM saga_barrier"), 0);
}

/* Sends raw bytes; returns the decoded answer's type and code. */
static void
send_raw(fixture *f, const void *bytes, size_t len, uint32_t *type,
    uint32_t *code, char *text, size_t textlen)
{
	proto_buf   out;
	proto_msg   m;
	proto_error perr;
	char        err[256];
	proto_raw   raw = { bytes, len };

	proto_buf_init(&out);
	assert_int_equal(saga_client_call_raw(f->cli, raw,
	                     20000 * test_scale(), &out, err, sizeof(err)),
	    0);
	assert_int_equal(proto_msg_decode(out.data, out.len, NULL, &m, &perr),
	    0);
	*type = m.type;
	*code = m.code;
	snprintf(text, textlen, "%.*s", (int) m.message.len, m.message.ptr);
	proto_msg_fini(&m);
	proto_buf_fini(&out);
}

/* Sends a PING through the fixture's client: it must answer PONG. */
static void
ping_f(fixture *f)
{
	proto_msg m;
	proto_buf b;
	uint32_t  type, code;
	char      text[64];

	proto_msg_init(&m);
	m.type = PROTO_T_PING;
	proto_buf_init(&b);
	assert_int_equal(proto_msg_encode(&m, &b), 0);
	send_raw(f, b.data, b.len, &type, &code, text, sizeof(text));
	assert_int_equal(type, PROTO_T_PONG);
	proto_buf_fini(&b);
}

static void
test_participant_malformed_request_is_error(void **state)
{
	fixture  *f = *state;
	uint32_t  type, code;
	char      text[256];
	proto_msg m;
	proto_buf b;
	saga_id   id;

	start(f);
	/* Not msgpack. */
	send_raw(f, "\xc1", 1, &type, &code, text, sizeof(text));
	assert_int_equal(type, PROTO_T_ERROR);
	assert_int_equal(code, SAGA_EMALFORMED);
	/* Not a map. */
	send_raw(f, "\x01", 1, &type, &code, text, sizeof(text));
	assert_int_equal(type, PROTO_T_ERROR);
	assert_int_equal(code, SAGA_ETYPE);
	/* A command cut short. */
	id = new_id(f);
	proto_msg_init(&m);
	m.type      = PROTO_T_COMMAND;
	m.id        = id;
	m.attempt   = 1;
	m.saga      = proto_str_c("order");
	m.step_name = proto_str_c("reserve");
	m.action    = proto_str_c("stock.reserve");
	m.context   = proto_buf_raw(&f->ctx);
	proto_buf_init(&b);
	assert_int_equal(proto_msg_encode(&m, &b), 0);
	send_raw(f, b.data, b.len - 1, &type, &code, text, sizeof(text));
	assert_int_equal(type, PROTO_T_ERROR);
	assert_int_equal(code, SAGA_ETRUNC);
	proto_buf_fini(&b);
	/* A valid message that a participant does not serve. */
	proto_msg_init(&m);
	m.type = PROTO_T_STATUS;
	m.id   = id;
	proto_buf_init(&b);
	assert_int_equal(proto_msg_encode(&m, &b), 0);
	send_raw(f, b.data, b.len, &type, &code, text, sizeof(text));
	assert_int_equal(type, PROTO_T_ERROR);
	assert_int_equal(code, SAGA_EINVAL);
	assert_non_null(strstr(text, "STATUS"));
	proto_buf_fini(&b);
	/* PING still answers PONG. */
	ping_f(f);
	assert_int_equal(atomic_load(&f->act_started), 0);
}

/* Encodes a COMMAND of the test saga into b (appended), with the
 * fixture's context or ctx if it is not empty. */
static void
batch_cmd_ctx(fixture *f, proto_buf *b, const saga_id *id, uint32_t step,
    const char *action, proto_raw ctx)
{
	proto_msg m;

	proto_msg_init(&m);
	m.type      = PROTO_T_COMMAND;
	m.id        = *id;
	m.step      = step;
	m.attempt   = 1;
	m.saga      = proto_str_c("order");
	m.step_name = proto_str_c("reserve");
	m.action    = proto_str_c(action);
	m.context   = ctx.len > 0 ? ctx : proto_buf_raw(&f->ctx);
	assert_int_equal(proto_msg_encode(&m, b), 0);
}

static void
batch_cmd(fixture *f, proto_buf *b, const saga_id *id, uint32_t step,
    const char *action)
{
	batch_cmd_ctx(f, b, id, step, action, (proto_raw) { NULL, 0 });
}

/* Sends a BATCH of msgs; the answers of a BATCH_REPLY are decoded into
 * ans (n of them, each to be fini'd; their bytes live in *keep, to be
 * fini'd). Returns the answer's type. */
static uint32_t
send_batch(fixture *f, proto_raw msgs, proto_msg *ans, size_t cap,
    size_t *n, proto_buf *keep, uint32_t *code)
{
	proto_msg   m;
	proto_error perr;
	proto_raw   one;
	proto_buf   b;
	char        err[256];
	size_t      off = 0, count = 0;
	uint32_t    type;

	proto_msg_init(&m);
	m.type = PROTO_T_BATCH;
	m.msgs = msgs;
	proto_buf_init(&b);
	assert_int_equal(proto_msg_encode(&m, &b), 0);
	proto_buf_init(keep);
	assert_int_equal(saga_client_call_raw(f->cli, proto_buf_raw(&b),
	                     20000 * test_scale(), keep, err, sizeof(err)),
	    0);
	proto_buf_fini(&b);
	assert_int_equal(
	    proto_msg_decode(keep->data, keep->len, NULL, &m, &perr), 0);
	type  = m.type;
	*code = m.code;
	*n    = 0;
	if (type == PROTO_T_BATCH_REPLY) {
		while (proto_batch_next(m.msgs, &off, &count, NULL, &one,
		           &perr) == 0 &&
		    one.len > 0) {
			assert_true(*n < cap);
			assert_int_equal(proto_msg_decode(one.ptr, one.len, NULL,
			                     &ans[*n], &perr),
			    0);
			(*n)++;
		}
		assert_int_equal(off, m.msgs.len);
	}
	proto_msg_fini(&m);
	return (type);
}

/* A BATCH gets one BATCH_REPLY holding, in order, what each of its
 * messages would have got alone: commands run (a duplicate in the same
 * BATCH is one effect), an unknown action, a message that is not a map,
 * one that is not a COMMAND. */
static void
test_participant_batch_message(void **state)
{
	fixture  *f = *state;
	saga_id   id1 = new_id(f), id2 = new_id(f);
	proto_buf msgs, keep;
	proto_msg ans[8];
	size_t    n;
	uint32_t  code;
	proto_msg st;

	start(f);
	set_step_mode(f, 4, ACT_FAIL);
	proto_buf_init(&msgs);
	batch_cmd(f, &msgs, &id1, 0, "stock.reserve");
	batch_cmd(f, &msgs, &id1, 7, "stock.teleport");
	assert_int_equal(proto_buf_append(&msgs, "\x01", 1), 0);
	batch_cmd(f, &msgs, &id1, 0, "stock.reserve");
	proto_msg_init(&st);
	st.type = PROTO_T_STATUS;
	st.id   = id1;
	assert_int_equal(proto_msg_encode(&st, &msgs), 0);
	batch_cmd(f, &msgs, &id2, 4, "stock.reserve");
	assert_int_equal(send_batch(f, proto_buf_raw(&msgs), ans, 8, &n,
	                     &keep, &code),
	    PROTO_T_BATCH_REPLY);
	assert_int_equal(n, 6);
	assert_int_equal(ans[0].type, PROTO_T_REPLY);
	assert_int_equal(ans[0].outcome, PROTO_OUTCOME_OK);
	assert_true(saga_id_equal(&ans[0].id, &id1));
	assert_int_equal(ans[1].type, PROTO_T_ERROR);
	assert_int_equal(ans[1].code, SAGA_ENOTFOUND);
	assert_int_equal(ans[1].step, 7);
	assert_int_equal(ans[2].type, PROTO_T_ERROR);
	assert_int_equal(ans[2].code, SAGA_ETYPE);
	assert_int_equal(ans[3].type, PROTO_T_REPLY);
	assert_int_equal(ans[3].outcome, PROTO_OUTCOME_OK);
	assert_true(proto_raw_equal(ans[3].output, ans[0].output));
	assert_int_equal(ans[4].type, PROTO_T_ERROR);
	assert_int_equal(ans[4].code, SAGA_EINVAL);
	assert_int_equal(ans[5].type, PROTO_T_REPLY);
	assert_int_equal(ans[5].outcome, PROTO_OUTCOME_FAILED);
	assert_int_equal(ans[5].step, 4);
	for (size_t i = 0; i < n; i++) {
		proto_msg_fini(&ans[i]);
	}
	proto_buf_fini(&keep);
	/* One effect for the two copies of step 0; the failed step kept
	 * its barrier row only. */
	assert_int_equal(biz_rows(f, &id1), 1);
	assert_int_equal(barrier_rows(f, &id1, 0, "ok"), 1);
	assert_int_equal(barrier_rows(f, &id2, 0, "failed"), 1);

	/* A BATCH cut inside its last message is refused whole: one
	 * ERROR, and nothing of it runs. */
	proto_buf_reset(&msgs);
	batch_cmd(f, &msgs, &id2, 1, "stock.reserve");
	batch_cmd(f, &msgs, &id2, 2, "stock.reserve");
	msgs.len -= 2;
	assert_int_equal(send_batch(f, proto_buf_raw(&msgs), ans, 8, &n,
	                     &keep, &code),
	    PROTO_T_ERROR);
	assert_int_equal(code, SAGA_ETRUNC);
	proto_buf_fini(&keep);
	/* More than 1024 messages, likewise. */
	proto_buf_reset(&msgs);
	for (int i = 0; i < 1025; i++) {
		assert_int_equal(proto_buf_append(&msgs, "\x01", 1), 0);
	}
	assert_int_equal(send_batch(f, proto_buf_raw(&msgs), ans, 8, &n,
	                     &keep, &code),
	    PROTO_T_ERROR);
	assert_int_equal(code, SAGA_ETOOBIG);
	proto_buf_fini(&keep);
	/* The limit on messages is not one on their contents: a context
	 * holding an array of 2000 elements, twice in a BATCH, runs. */
	{
		static const uint8_t head[] = { 0x83, 0xa5, 'i', 'n', 'p', 'u',
			't', 0x81, 0xa3, 's', 'k', 'u', 0xa2, 'A', '1', 0xa5, 's',
			't', 'e', 'p', 's', 0x80, 0xa3, 'p', 'a', 'd', 0xdc, 0x07,
			0xd0 };
		proto_buf big;
		saga_id   id3 = new_id(f);

		proto_buf_init(&big);
		assert_int_equal(proto_buf_append(&big, head, sizeof(head)), 0);
		for (int i = 0; i < 2000; i++) {
			assert_int_equal(proto_buf_append(&big, "\x00", 1), 0);
		}
		proto_buf_reset(&msgs);
		batch_cmd_ctx(f, &msgs, &id3, 0, "stock.reserve",
		    proto_buf_raw(&big));
		batch_cmd_ctx(f, &msgs, &id3, 1, "stock.reserve",
		    proto_buf_raw(&big));
		assert_int_equal(send_batch(f, proto_buf_raw(&msgs), ans, 8,
		                     &n, &keep, &code),
		    PROTO_T_BATCH_REPLY);
		assert_int_equal(n, 2);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(ans[i].type, PROTO_T_REPLY);
			assert_int_equal(ans[i].outcome, PROTO_OUTCOME_OK);
			proto_msg_fini(&ans[i]);
		}
		proto_buf_fini(&keep);
		proto_buf_fini(&big);
		assert_int_equal(biz_rows(f, &id3), 2);
	}
	proto_buf_fini(&msgs);
	/* Four handlers ran in all: step 0 of id1 once, step 4 of id2
	 * (failed: its biz row undone), the two of id3. */
	assert_int_equal(biz_rows(f, &id2), 0);
	assert_int_equal(atomic_load(&f->act_started), 4);
}

/* ---- The database going away ---- */

static void
test_participant_db_unreachable_answers_retry(void **state)
{
	fixture                *f = *state;
	saga_participant_config cfg;
	char                    conninfo[128];
	saga_id                 id;
	result                  r;

	/* Nothing listens there: the participant still starts, and
	 * answers retry. */
	snprintf(conninfo, sizeof(conninfo),
	    "host=127.0.0.1 port=%d dbname=nowhere connect_timeout=2",
	    test_free_port());
	memset(&cfg, 0, sizeof(cfg));
	cfg.conninfo = conninfo;
	cfg.workers  = 2;
	start_with(f, &cfg, false);
	id = new_id(f);
	for (uint32_t attempt = 1; attempt <= 3; attempt++) {
		assert_int_equal(
		    send_f(f, &id, 0, 0, attempt, "stock.reserve", &r), 0);
		assert_int_equal(r.type, PROTO_T_REPLY);
		assert_int_equal(r.outcome, PROTO_OUTCOME_RETRY);
		assert_non_null(strstr(r.text, "database"));
		result_fini(&r);
	}
	assert_int_equal(atomic_load(&f->act_started), 0);
}

/* Runs sql on the server's postgres database (not the test's). */
static void
admin_exec(fixture *f, const char *fmt, ...)
{
	char    conninfo[1200];
	char    sql[512];
	PGconn *admin;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	snprintf(conninfo, sizeof(conninfo), "%s dbname=postgres",
	    f->conninfo);
	assert_non_null(admin = pgtest_connect(conninfo));
	assert_int_equal(pgtest_exec(admin, sql), 0);
	PQfinish(admin);
}

static void
test_participant_db_lost_answers_retry_until_back(void **state)
{
	fixture *f = *state;
	saga_id  id;
	result   r;
	int64_t  deadline;
	bool     ok = false;
	int      retries = 0;

	start(f);
	id = new_id(f);
	assert_int_equal(send_f(f, &id, 0, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);

	/* The database goes away: connections cut, new ones refused. */
	PQfinish(f->db);
	f->db = NULL;
	admin_exec(f, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS false",
	    f->dbname);
	admin_exec(f,
	    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	    "WHERE datname = '%s' AND pid <> pg_backend_pid()",
	    f->dbname);
	id = new_id(f);
	for (uint32_t attempt = 1; attempt <= 10; attempt++) {
		assert_int_equal(
		    send_f(f, &id, 0, 0, attempt, "stock.reserve", &r), 0);
		assert_int_equal(r.type, PROTO_T_REPLY);
		assert_int_equal(r.outcome, PROTO_OUTCOME_RETRY);
		result_fini(&r);
	}
	assert_int_equal(atomic_load(&f->act_calls), 1);

	/* It comes back: the participant reconnects by itself. */
	admin_exec(f, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS true",
	    f->dbname);
	deadline = (int64_t) time(NULL) + 20 * test_scale();
	for (uint32_t attempt = 11; !ok && time(NULL) < deadline; attempt++) {
		assert_int_equal(
		    send_f(f, &id, 0, 0, attempt, "stock.reserve", &r), 0);
		assert_int_equal(r.type, PROTO_T_REPLY);
		if (r.outcome == PROTO_OUTCOME_OK) {
			ok = true;
		} else {
			assert_int_equal(r.outcome, PROTO_OUTCOME_RETRY);
			retries++;
			sleep_ms(50);
		}
		result_fini(&r);
	}
	assert_true(ok);
	assert_non_null(f->db = pgtest_connect(f->conninfo));
	assert_int_equal(atomic_load(&f->act_calls), 2);
	assert_int_equal(biz_rows(f, &id), 1);
}

/* ---- Schema, purge ---- */

static void
test_participant_start_needs_barrier_schema(void **state)
{
	fixture                *f = *state;
	saga_participant       *p = NULL;
	saga_participant_config cfg;
	const char             *listen[] = { "tcp://127.0.0.1:0", NULL };
	char                    err[512];

	memset(&cfg, 0, sizeof(cfg));
	cfg.listen    = listen;
	cfg.conninfo  = f->conninfo;
	cfg.log_level = SAGA_PARTICIPANT_LOG_NONE;
	assert_int_equal(saga_participant_new(&p, &cfg, err, sizeof(err)), 0);
	assert_int_equal(
	    saga_participant_start(p, err, sizeof(err)), SAGA_ECONFIG);
	assert_non_null(strstr(err, "saga_participant_migrate"));
	/* Migrating twice is fine. */
	assert_int_equal(saga_participant_migrate(p, err, sizeof(err)), 0);
	assert_int_equal(saga_participant_migrate(p, err, sizeof(err)), 0);
	assert_int_equal(query_int(f,
	                     "SELECT max(version) FROM schema_migrations "
	                     "WHERE set_name = 'barrier'"),
	    1);
	/* The library's set name is reserved. */
	assert_int_equal(saga_participant_migrate_set(p, "barrier",
	                     test_migrations, 1, NULL, err, sizeof(err)),
	    SAGA_EINVAL);
	assert_int_equal(saga_participant_start(p, err, sizeof(err)), 0);
	assert_int_equal(
	    saga_participant_start(p, err, sizeof(err)), SAGA_ESTATE);
	/* No registration once started. */
	assert_int_equal(saga_participant_on_action(p, "late", act_handler,
	                     f),
	    SAGA_ESTATE);
	saga_participant_free(p);
}

static void
test_participant_config_errors(void **state)
{
	saga_participant       *p = NULL;
	saga_participant_config cfg;
	const char             *listen[] = { "tcp://127.0.0.1:1", NULL };
	const char             *none[]   = { NULL };
	char                    err[512];

	(void) state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.listen = listen;
	assert_int_equal(saga_participant_new(&p, &cfg, err, sizeof(err)),
	    SAGA_ECONFIG);
	assert_non_null(strstr(err, "conninfo"));
	cfg.conninfo = "dbname=x";
	cfg.listen   = none;
	assert_int_equal(saga_participant_new(&p, &cfg, err, sizeof(err)),
	    SAGA_ECONFIG);
	assert_non_null(strstr(err, "listen"));
	cfg.listen  = listen;
	cfg.workers = -1;
	assert_int_equal(saga_participant_new(&p, &cfg, err, sizeof(err)),
	    SAGA_ECONFIG);
	assert_non_null(strstr(err, "workers"));
	cfg.workers   = 0;
	cfg.max_batch = -1;
	assert_int_equal(saga_participant_new(&p, &cfg, err, sizeof(err)),
	    SAGA_ECONFIG);
	assert_non_null(strstr(err, "max_batch"));
	cfg.max_batch = 4097;
	assert_int_equal(saga_participant_new(&p, &cfg, err, sizeof(err)),
	    SAGA_ECONFIG);
	cfg.max_batch  = 0;
	cfg.log_format = "xml";
	assert_int_equal(saga_participant_new(&p, &cfg, err, sizeof(err)),
	    SAGA_ECONFIG);
	assert_non_null(strstr(err, "log_format"));
	cfg.log_format = "json";
	assert_int_equal(saga_participant_new(&p, &cfg, err, sizeof(err)), 0);
	saga_participant_free(p);
	p              = NULL;
	cfg.log_format = "";
	assert_int_equal(saga_participant_new(&p, &cfg, err, sizeof(err)), 0);
	assert_int_equal(saga_participant_on_action(p, "", act_handler, NULL),
	    SAGA_EINVAL);
	assert_int_equal(saga_participant_on_action(p, "a", NULL, NULL),
	    SAGA_EINVAL);
	assert_int_equal(saga_participant_on_action(p, "a", act_handler, NULL),
	    0);
	assert_int_equal(saga_participant_on_action(p, "a", act_handler, NULL),
	    SAGA_EEXIST);
	/* The same name as a compensation is another handler. */
	assert_int_equal(
	    saga_participant_on_compensation(p, "a", comp_handler, NULL), 0);
	saga_participant_free(p);
}

/* ---- Metrics ---- */

/* GETs url into a NUL-terminated malloc'd string; returns the HTTP
 * status, or -1 when the request failed. */
static int
http_get(const char *url, char **body)
{
	nng_url         *u   = NULL;
	nng_http_client *cli = NULL;
	nng_http_req    *req = NULL;
	nng_http_res    *res = NULL;
	nng_aio         *aio = NULL;
	void            *data;
	size_t           len;
	int              status = -1;

	*body = NULL;
	if (nng_url_parse(&u, url) != 0 ||
	    nng_http_client_alloc(&cli, u) != 0 ||
	    nng_http_req_alloc(&req, u) != 0 || nng_http_res_alloc(&res) != 0 ||
	    nng_aio_alloc(&aio, NULL, NULL) != 0) {
		goto done;
	}
	nng_aio_set_timeout(aio, 5000);
	nng_http_client_transact(cli, req, res, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0) {
		goto done;
	}
	nng_http_res_get_data(res, &data, &len);
	if ((*body = malloc(len + 1)) == NULL) {
		goto done;
	}
	memcpy(*body, data, len);
	(*body)[len] = '\0';
	status       = (int) nng_http_res_get_status(res);

done:
	nng_aio_free(aio);
	if (res != NULL) {
		nng_http_res_free(res);
	}
	if (req != NULL) {
		nng_http_req_free(req);
	}
	if (cli != NULL) {
		nng_http_client_free(cli);
	}
	if (u != NULL) {
		nng_url_free(u);
	}
	return (status);
}

/* The value of the sample "series value" in an exposition text, or -1. */
static double
metric_value(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *l = text; l != NULL && *l != '\0';) {
		const char *nl = strchr(l, '\n');

		if (strncmp(l, series, n) == 0 && l[n] == ' ') {
			return (strtod(l + n + 1, NULL));
		}
		l = nl != NULL ? nl + 1 : NULL;
	}
	return (-1);
}

/* After a known series of commands, /metrics counts them by action, kind
 * and outcome, the barrier's decisions (the duplicate as a replay, the
 * compensation of a step that never ran as null), the handlers' run
 * times and the batches; a second participant cannot take the same
 * metrics address. */
static void
test_participant_metrics_count_commands(void **state)
{
	fixture                *f = *state;
	saga_participant_config cfg;
	saga_participant       *q = NULL;
	const char             *qlisten[2];
	char                    addr[64], url[96], qurl[64], err[512];
	char                   *text = NULL;
	saga_id                 id;
	result                  r;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", test_free_port());
	snprintf(url, sizeof(url), "http://%s/metrics", addr);
	memset(&cfg, 0, sizeof(cfg));
	cfg.metrics_listen = addr;
	start_with(f, &cfg, true);
	set_step_mode(f, 1, ACT_FAIL);
	id = new_id(f);
	/* step 0: ok, then a duplicate; step 1: failed; step 0
	 * compensated; step 2 compensated before its action ever ran. */
	assert_int_equal(send_f(f, &id, 0, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	assert_int_equal(send_f(f, &id, 0, 0, 2, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	assert_int_equal(send_f(f, &id, 1, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
	result_fini(&r);
	assert_int_equal(send_f(f, &id, 0, 1, 1, "stock.release", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	assert_int_equal(send_f(f, &id, 2, 1, 1, "stock.release", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);

	assert_int_equal(http_get(url, &text), 200);
	assert_non_null(text);
	assert_true(metric_value(text,
	                "saga_participant_commands_total{action=\"stock."
	                "reserve\",kind=\"action\",outcome=\"ok\"}") == 2);
	assert_true(metric_value(text,
	                "saga_participant_commands_total{action=\"stock."
	                "reserve\",kind=\"action\",outcome=\"failed\"}") ==
	    1);
	assert_true(metric_value(text,
	                "saga_participant_commands_total{action=\"stock."
	                "release\",kind=\"compensation\",outcome=\"ok\"}") ==
	    2);
	assert_true(metric_value(text,
	                "saga_participant_barrier_total{kind=\"action\","
	                "decision=\"run\"}") == 2);
	assert_true(metric_value(text,
	                "saga_participant_barrier_total{kind=\"action\","
	                "decision=\"replay\"}") == 1);
	assert_true(metric_value(text,
	                "saga_participant_barrier_total{kind=\"compensation\","
	                "decision=\"run\"}") == 1);
	assert_true(metric_value(text,
	                "saga_participant_barrier_total{kind=\"compensation\","
	                "decision=\"null\"}") == 1);
	/* The handlers ran three times: two actions, one compensation. */
	assert_true(metric_value(text,
	                "saga_participant_handler_seconds_count{action=\"stock."
	                "reserve\"}") == 2);
	assert_true(metric_value(text,
	                "saga_participant_handler_seconds_count{action=\"stock."
	                "release\"}") == 1);
	/* A batch is counted once its last reply is out; the ones its
	 * COMMIT answered leave before that: read again until it is. */
	for (int i = 0; i < 500 &&
	     metric_value(text, "saga_participant_batch_size_sum") != 5;
	     i++) {
		free(text);
		text = NULL;
		sleep_ms(10);
		assert_int_equal(http_get(url, &text), 200);
	}
	assert_true(metric_value(text, "saga_participant_batches_total") >= 1);
	assert_true(metric_value(text, "saga_participant_batch_size_sum") == 5);
	assert_true(metric_value(text, "saga_participant_batches_lost_total") ==
	    0);
	assert_true(metric_value(text, "saga_participant_queued") == 0);
	free(text);

	/* The address is taken: a second participant does not start. */
	snprintf(qurl, sizeof(qurl), "tcp://127.0.0.1:%d", test_free_port());
	qlisten[0]         = qurl;
	qlisten[1]         = NULL;
	cfg.listen         = qlisten;
	cfg.conninfo       = f->conninfo;
	cfg.log_level      = test_log_level();
	assert_int_equal(saga_participant_new(&q, &cfg, err, sizeof(err)), 0);
	assert_int_not_equal(saga_participant_start(q, err, sizeof(err)), 0);
	assert_non_null(strstr(err, addr));
	saga_participant_free(q);
	/* ... and the first one still serves its metrics: nng shares one
	 * HTTP server per address, and the failed start left it running. */
	assert_int_equal(http_get(url, &text), 200);
	free(text);
}

/* ---- Logs ---- */

/* Sends stderr (fd 2) to a temporary file until log_capture_end: the
 * library's log, as a process writing it sees it. */
static void
log_capture_begin(fixture *f)
{
	int fd;

	snprintf(f->cap_path, sizeof(f->cap_path),
	    "/tmp/participant-log.XXXXXX");
	fd = mkstemp(f->cap_path);
	assert_true(fd >= 0);
	fflush(stderr);
	f->cap_saved = dup(STDERR_FILENO);
	assert_true(f->cap_saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	close(fd);
}

/* Gives stderr back and returns what was written to it (malloc'd), or
 * NULL when no capture runs. */
static char *
log_capture_end(fixture *f)
{
	FILE  *fp;
	char  *text = NULL;
	size_t len  = 0;
	long   size;

	if (f->cap_saved < 0) {
		return (NULL);
	}
	fflush(stderr);
	dup2(f->cap_saved, STDERR_FILENO);
	close(f->cap_saved);
	f->cap_saved = -1;
	if ((fp = fopen(f->cap_path, "r")) != NULL &&
	    fseek(fp, 0, SEEK_END) == 0 && (size = ftell(fp)) >= 0 &&
	    fseek(fp, 0, SEEK_SET) == 0 &&
	    (text = malloc((size_t) size + 1)) != NULL) {
		len       = fread(text, 1, (size_t) size, fp);
		text[len] = '\0';
	}
	if (fp != NULL) {
		fclose(fp);
	}
	unlink(f->cap_path);
	return (text);
}

/* Runs a participant with log_format format at INFO, stderr captured, and
 * sends it a known series for one saga (*id): step 0 ok, its duplicate,
 * step 1 failed, step 2 without an outcome (an ERROR line about the
 * command, answered retry), step 0 compensated (whose handler logs a line
 * of its own with saga_call_log); then a line of the service's own
 * (saga_participant_log) with characters JSON must escape and a byte that
 * is not UTF-8, one with forged lines after a carriage return and a line
 * break, one with forged lines after Unicode's NEL and LINE and PARAGRAPH
 * SEPARATORs, and one at DEBUG that must not appear. The participant is
 * freed at the end; the capture still runs. */
static void
log_series(fixture *f, const char *format, saga_id *id)
{
	saga_participant_config cfg;
	result                  r;

	memset(&cfg, 0, sizeof(cfg));
	cfg.log_format = format;
	cfg.log_level  = SAGA_PARTICIPANT_LOG_INFO;
	cfg.workers    = 1;
	log_capture_begin(f);
	start_with(f, &cfg, true);
	set_step_mode(f, 1, ACT_FAIL);
	set_step_mode(f, 2, ACT_NO_OUTCOME);
	*id = new_id(f);
	assert_int_equal(send_f(f, id, 0, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	assert_int_equal(send_f(f, id, 0, 0, 2, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	assert_int_equal(send_f(f, id, 1, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
	result_fini(&r);
	assert_int_equal(send_f(f, id, 2, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_RETRY);
	result_fini(&r);
	assert_int_equal(send_f(f, id, 0, 1, 1, "stock.release", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	saga_participant_log(f->p, SAGA_PARTICIPANT_LOG_INFO,
	    "PARTICIPANT-TEST quotes \"q\", a backslash \\, a tab\t, a bad "
	    "byte \xff end");
	saga_participant_log(f->p, SAGA_PARTICIPANT_LOG_INFO,
	    "PARTICIPANT-TEST2 one\r2026-12-07T00:00:00.000Z ERROR parttest: "
	    "forged\x1b[2K\n(cut here)");
	saga_participant_log(f->p, SAGA_PARTICIPANT_LOG_INFO,
	    "PARTICIPANT-TEST3 card declined\xc2\x85"
	    "2026-12-07T00:00:00.000Z ERROR parttest: forged\xe2\x80\xa8"
	    "2026-12-07T00:00:00.000Z ERROR parttest: forged\xe2\x80\xa9"
	    "end");
	saga_participant_log(f->p, SAGA_PARTICIPANT_LOG_DEBUG, "not written");
	saga_client_free(f->cli);
	f->cli = NULL;
	saga_participant_free(f->p);
	f->p = NULL;
}

/* Copies the string field key of map m into buf; false if it has none. */
static bool
json_str(const proto_val *m, const char *key, char *buf, size_t len)
{
	proto_str s;

	buf[0] = '\0';
	if (proto_val_str(proto_val_get(m, key), &s) != 0) {
		return (false);
	}
	snprintf(buf, len, "%.*s", (int) s.len, s.ptr != NULL ? s.ptr : "");
	return (true);
}

/* The integer field key of map m, or -1. */
static int64_t
json_int(const proto_val *m, const char *key)
{
	int64_t v;

	return (proto_val_int(proto_val_get(m, key), &v) == 0 ? v : -1);
}

/* With log_format "json" every line written is one JSON object (parsed
 * back by the protocol's JSON parser) with ts, level, program and msg; the
 * line of each command carries its saga id, step and trace id (from the
 * traceparent) with its kind, attempt, action, outcome, barrier decision,
 * duration and error; the other lines about a command (the library's and
 * the handler's own, saga_call_log) carry the saga id, step and trace id
 * too; an event's tag is "event"; the service's own lines are escaped and
 * made valid UTF-8; the level still filters. */
static void
test_participant_json_logs(void **state)
{
	fixture *f = *state;
	saga_id  id;
	char     idt[SAGA_ID_STRLEN + 1];
	char    *text, *line, *save = NULL;
	int      lines = 0, cmds = 0, starts = 0, migrates = 0, noout = 0;
	int      released = 0, own = 0;

	log_series(f, "json", &id);
	text = log_capture_end(f);
	assert_non_null(text);
	saga_id_format(&id, idt);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		proto_buf        raw;
		proto_doc       *doc = NULL;
		const proto_val *m;
		char             err[256], s[512], level[16], event[64];
		double           d = -1;

		lines++;
		proto_buf_init(&raw);
		if (proto_json_to_raw(line, strlen(line), NULL, &raw, err,
		        sizeof(err)) != 0) {
			fail_msg("not a JSON line: %s (%s)", line, err);
		}
		assert_int_equal(
		    proto_doc_parse(&doc, proto_buf_raw(&raw), NULL, NULL), 0);
		m = proto_doc_root(doc);
		assert_int_equal(proto_val_type_of(m), PROTO_VAL_MAP);
		/* 2026-11-24T15:47:06.319Z */
		assert_true(json_str(m, "ts", s, sizeof(s)));
		assert_int_equal(strlen(s), 24);
		assert_true(s[10] == 'T' && s[23] == 'Z');
		assert_true(json_str(m, "level", level, sizeof(level)));
		assert_true(strcmp(level, "error") == 0 ||
		    strcmp(level, "warn") == 0 || strcmp(level, "info") == 0);
		assert_true(json_str(m, "program", s, sizeof(s)));
		assert_string_equal(s, "parttest");
		assert_true(json_str(m, "msg", s, sizeof(s)));
		assert_null(strstr(s, "not written"));
		(void) json_str(m, "event", event, sizeof(event));
		if (proto_val_get(m, "saga") != NULL) {
			/* About the command: saga id, step, trace id. */
			assert_true(json_str(m, "saga", s, sizeof(s)));
			assert_string_equal(s, idt);
			assert_true(json_int(m, "step") >= 0);
			assert_true(json_str(m, "trace_id", s, sizeof(s)));
			assert_string_equal(
			    s, "4bf92f3577b34da6a3ce929d0e0e4736");
		}
		if (proto_val_get(m, "outcome") != NULL) {
			int64_t step    = json_int(m, "step");
			int64_t attempt = json_int(m, "attempt");
			char    kind[32], outcome[16], barrier[16];

			cmds++;
			assert_non_null(proto_val_get(m, "saga"));
			assert_true(json_str(m, "kind", kind, sizeof(kind)));
			assert_true(json_str(m, "outcome", outcome,
			    sizeof(outcome)));
			assert_true(json_str(m, "barrier", barrier,
			    sizeof(barrier)));
			assert_true(json_str(m, "action", s, sizeof(s)));
			assert_string_equal(s, strcmp(kind, "action") == 0
			        ? "stock.reserve"
			        : "stock.release");
			assert_int_equal(
			    proto_val_float(proto_val_get(m, "duration_ms"), &d),
			    0);
			assert_true(d >= 0);
			assert_true(attempt >= 1);
			if (strcmp(kind, "compensation") == 0) {
				assert_int_equal(step, 0);
				assert_string_equal(outcome, "ok");
				assert_string_equal(barrier, "run");
			} else if (step == 0) {
				assert_string_equal(outcome, "ok");
				assert_string_equal(
				    barrier, attempt == 1 ? "run" : "replay");
			} else if (step == 1) {
				assert_string_equal(outcome, "failed");
				assert_true(json_str(m, "error", s, sizeof(s)));
				assert_string_equal(s, "out of stock: A1");
			} else {
				assert_int_equal(step, 2);
				assert_string_equal(outcome, "retry");
				assert_string_equal(level, "warn");
				assert_true(json_str(m, "error", s, sizeof(s)));
				assert_string_equal(
				    s, "the handler set no outcome");
			}
		} else if (json_str(m, "msg", s, sizeof(s)) &&
		    strcmp(s, "the handler set no outcome") == 0) {
			noout++;
			assert_string_equal(level, "error");
			assert_int_equal(json_int(m, "step"), 2);
			assert_true(json_str(m, "action", s, sizeof(s)));
			assert_string_equal(s, "stock.reserve");
		} else if (strncmp(s, "releasing n=", 12) == 0) {
			/* The handler's own line (saga_call_log). */
			released++;
			assert_int_equal(json_int(m, "step"), 0);
			assert_non_null(proto_val_get(m, "trace_id"));
			assert_true(json_str(m, "action", s, sizeof(s)));
			assert_string_equal(s, "stock.release");
		} else if (strcmp(event, "PARTICIPANT-START") == 0) {
			starts++;
			assert_true(strncmp(s, "listening on tcp://", 19) == 0);
		} else if (strcmp(event, "PARTICIPANT-MIGRATE") == 0) {
			migrates++;
			assert_true(strncmp(s, "applied ", 8) == 0);
		} else if (strcmp(event, "PARTICIPANT-TEST") == 0) {
			own++;
			assert_null(proto_val_get(m, "saga"));
			assert_string_equal(s,
			    "quotes \"q\", a backslash \\, a tab\t, a bad byte ? "
			    "end");
		}
		proto_doc_free(doc);
		proto_buf_fini(&raw);
	}
	assert_int_equal(cmds, 5);
	assert_int_equal(noout, 1);
	assert_int_equal(released, 1);
	assert_int_equal(starts, 1);
	assert_int_equal(migrates, 2); /* barrier, parttest */
	assert_int_equal(own, 1);
	assert_true(lines >= 11);
	free(text);
}

/* The text format is as it always was: the same series gives the same
 * lines as before JSON existed (other tests and operators grep them). */
static void
test_participant_text_logs(void **state)
{
	fixture *f = *state;
	saga_id  id;
	char     idt[SAGA_ID_STRLEN + 1];
	char     want[512];
	char    *text, *line, *save = NULL;
	int      lines = 0;

	log_series(f, NULL, &id);
	text = log_capture_end(f);
	assert_non_null(text);
	saga_id_format(&id, idt);
#define HAS(...)                                                         \
	do {                                                             \
		snprintf(want, sizeof(want), __VA_ARGS__);               \
		if (strstr(text, want) == NULL) {                        \
			fail_msg("no \"%s\" in the log:\n%s", want, text); \
		}                                                        \
	} while (0)
	HAS("Z INFO  parttest: saga=%s step=0 kind=action attempt=1 "
	    "action=stock.reserve outcome=ok barrier=run duration_ms=",
	    idt);
	HAS(" trace=4bf92f3577b34da6a3ce929d0e0e4736\n");
	HAS("Z INFO  parttest: saga=%s step=0 kind=action attempt=2 "
	    "action=stock.reserve outcome=ok barrier=replay duration_ms=",
	    idt);
	HAS("Z INFO  parttest: saga=%s step=1 kind=action attempt=1 "
	    "action=stock.reserve outcome=failed barrier=run duration_ms=",
	    idt);
	HAS(" trace=4bf92f3577b34da6a3ce929d0e0e4736 error=\"out of stock: "
	    "A1\"\n");
	HAS("Z ERROR parttest: saga=%s step=2 action=stock.reserve: the "
	    "handler set no outcome\n",
	    idt);
	HAS("Z WARN  parttest: saga=%s step=2 kind=action attempt=1 "
	    "action=stock.reserve outcome=retry barrier=run duration_ms=",
	    idt);
	HAS(" error=\"the handler set no outcome\"\n");
	HAS("Z INFO  parttest: saga=%s step=0 action=stock.release: releasing "
	    "n=",
	    idt);
	HAS("Z INFO  parttest: saga=%s step=0 kind=compensation attempt=1 "
	    "action=stock.release outcome=ok barrier=run duration_ms=",
	    idt);
	HAS("Z INFO  parttest: PARTICIPANT-MIGRATE applied 1 migration of set "
	    "barrier\n");
	HAS("Z INFO  parttest: PARTICIPANT-START listening on tcp://");
	/* A backslash is written \\ (the start of an escape otherwise); a
	 * byte that is not UTF-8, \xNN. */
	HAS("Z INFO  parttest: PARTICIPANT-TEST quotes \"q\", a backslash "
	    "\\\\, a tab\t, a bad byte \\xff end\n");
	/* A carriage return or an escape sequence in a message is escaped
	 * (a terminal would show the forged text as a line of its own); a
	 * line break ends the message. */
	HAS("Z INFO  parttest: PARTICIPANT-TEST2 one\\r2026-12-07T00:00:00."
	    "000Z ERROR parttest: forged\\x1b[2K\n");
	/* So are NEL (U+0085) and the LINE and PARAGRAPH SEPARATORs
	 * (U+2028, U+2029): a reader splitting lines at Unicode's line
	 * breaks would show the forged text as lines of their own. */
	HAS("Z INFO  parttest: PARTICIPANT-TEST3 card declined\\u0085"
	    "2026-12-07T00:00:00.000Z ERROR parttest: forged\\u2028"
	    "2026-12-07T00:00:00.000Z ERROR parttest: forged\\u2029end\n");
	assert_null(strstr(text, "\xc2\x85"));
	assert_null(strstr(text, "\xe2\x80\xa8"));
	assert_null(strstr(text, "\xe2\x80\xa9"));
#undef HAS
	assert_null(strstr(text, "not written"));
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		lines++;
		/* 2026-11-24T15:47:06.319Z <LEVEL> parttest: */
		assert_true(strlen(line) > 40 && line[10] == 'T' &&
		    line[23] == 'Z' && line[24] == ' ');
		assert_non_null(strstr(line + 24, " parttest: "));
	}
	assert_true(lines >= 11);
	free(text);
}

/* A text line too long for its buffer ends before an escape that does
 * not fit whole, never inside one: with a pad of 0 to 3 bytes before a
 * run of \x01 (each written as the 4 bytes \x01), one of the lines fills
 * the buffer to its last byte. */
static void
test_participant_text_log_cut_whole(void **state)
{
	fixture                *f = *state;
	saga_participant_config cfg;
	char                    run[1024];
	char                   *text, *line, *save = NULL;
	int                     lines = 0, whole = 0;

	memset(&cfg, 0, sizeof(cfg));
	cfg.log_level = SAGA_PARTICIPANT_LOG_INFO;
	cfg.workers   = 1;
	log_capture_begin(f);
	start_with(f, &cfg, true);
	/* A round trip before the client closes: closed while it was still
	 * connecting, libnng 1.5.2 left the dialer's objects behind, which
	 * LeakSanitizer reported at exit (2 runs in 3). */
	ping_f(f);
	memset(run, '\x01', sizeof(run) - 1);
	run[sizeof(run) - 1] = '\0';
	for (int pad = 0; pad < 4; pad++) {
		saga_participant_log(f->p, SAGA_PARTICIPANT_LOG_INFO,
		    "PARTICIPANT-FILL %.*s%s", pad, "xxx", run);
	}
	saga_client_free(f->cli);
	f->cli = NULL;
	saga_participant_free(f->p);
	f->p = NULL;
	text = log_capture_end(f);
	assert_non_null(text);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		const char *fill = strstr(line, "PARTICIPANT-FILL ");
		size_t      len;

		if (fill == NULL) {
			continue;
		}
		lines++;
		fill += strlen("PARTICIPANT-FILL ");
		fill += strspn(fill, "x");
		len = strlen(fill);
		/* Cut (the run is longer than a line), but between escapes. */
		if (len > 1000 && len < 4 * (sizeof(run) - 1) &&
		    len % 4 == 0 &&
		    strcmp(fill + len - 4, "\\x01") == 0) {
			whole++;
		} else {
			print_message("cut inside an escape: ...%s\n",
			    fill + len - (len > 8 ? 8 : len));
		}
	}
	free(text);
	assert_int_equal(lines, 4);
	assert_int_equal(whole, 4);
}

/* Inserts a barrier row created age_s seconds ago. */
static void
insert_row(fixture *f, const saga_id *id, int kind, int age_s)
{
	char t[SAGA_ID_STRLEN + 1];
	char sql[512];

	snprintf(sql, sizeof(sql),
	    "INSERT INTO saga_barrier (saga_id, step, kind, outcome, "
	    "created_at) VALUES ('%s', 0, %d, 'ok', now() - interval '%d "
	    "seconds')",
	    saga_id_format(id, t), kind, age_s);
	assert_int_equal(pgtest_exec(f->db, sql), 0);
}

static void
test_participant_purge_deletes_old_sagas_only(void **state)
{
	fixture                *f = *state;
	saga_participant_config cfg;
	saga_id                 old, mixed, fresh;
	int64_t                 deleted = -1;
	char                    err[512];
	char                    t[SAGA_ID_STRLEN + 1];

	memset(&cfg, 0, sizeof(cfg));
	cfg.retention_s       = 3600;
	cfg.purge_interval_ms = 3600 * 1000; /* not in the background */
	start_with(f, &cfg, true);
	old   = new_id(f);
	mixed = new_id(f);
	fresh = new_id(f);
	insert_row(f, &old, 0, 7200);
	insert_row(f, &old, 1, 7100);
	/* A saga with an old and a recent row is still going on. */
	insert_row(f, &mixed, 0, 7200);
	insert_row(f, &mixed, 1, 10);
	insert_row(f, &fresh, 0, 10);
	assert_int_equal(
	    saga_participant_purge(f->p, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 2);
	assert_int_equal(query_int(f,
	                     "SELECT count(*) FROM saga_barrier WHERE "
	                     "saga_id = '%s'",
	                     saga_id_format(&old, t)),
	    0);
	assert_int_equal(query_int(f, "SELECT count(*) FROM saga_barrier"), 3);
	assert_int_equal(
	    saga_participant_purge(f->p, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 0);
}

/* A retention longer than the time since 1970 (here about 31,700 years)
 * purges nothing and does not fail: now() less it was out of
 * PostgreSQL's timestamps, and every purge failed with "timestamp out of
 * range". */
static void
test_participant_purge_retention_past_1970(void **state)
{
	fixture                *f = *state;
	saga_participant_config cfg;
	saga_id                 old;
	int64_t                 deleted = -1;
	char                    err[512];

	memset(&cfg, 0, sizeof(cfg));
	cfg.retention_s       = 1000000000000LL;
	cfg.purge_interval_ms = 3600 * 1000; /* not in the background */
	start_with(f, &cfg, true);
	old = new_id(f);
	insert_row(f, &old, 0, 7200);
	err[0] = '\0';
	assert_int_equal(
	    saga_participant_purge(f->p, &deleted, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(deleted, 0);
	assert_int_equal(query_int(f, "SELECT count(*) FROM saga_barrier"), 1);
}

static bool
purged(void *arg)
{
	fixture  *f = arg;
	long long n = -1;

	/* Of the five rows, the two of ids[0] stay. */
	return (pgtest_query_int(
	            f->db, "SELECT count(*) FROM saga_barrier", &n) == 0 &&
	    n == 2);
}

static void
test_participant_purge_runs_in_background(void **state)
{
	fixture                *f = *state;
	saga_participant_config cfg;
	saga_id                 ids[3];

	memset(&cfg, 0, sizeof(cfg));
	cfg.retention_s       = 3600;
	cfg.purge_interval_ms = 50;
	start_with(f, &cfg, true);
	for (int i = 0; i < 3; i++) {
		ids[i] = new_id(f);
		insert_row(f, &ids[i], 0, 7200 + i);
	}
	insert_row(f, &ids[0], 1, 5);
	assert_true(test_wait_until(purged, f, 10000 * test_scale()));
	/* ids[0] has a recent row: kept whole. */
	assert_int_equal(query_int(f,
	                     "SELECT count(*) FROM saga_barrier WHERE "
	                     "saga_id = '%s'",
	                     saga_id_format(&ids[0], (char[37]) { 0 })),
	    2);
}

/* The reproduction of a purge that made a compensation null: a saga
 * older than the retention whose action ran (ok, a biz row), then all
 * its rows purged. Its compensation must not be taken for a null one
 * (ok, 'aborted' inserted, the handler never called, the biz row left):
 * it is answered failed, which parks the saga FAILED in sagad, runs
 * nothing, writes nothing, and logs an ERROR line naming it. A fresh
 * action of such a saga is not run either. A young saga without rows
 * still gets its null compensation. */
static void
test_participant_old_saga_without_rows_fails(void **state)
{
	fixture                *f = *state;
	saga_participant_config cfg;
	saga_id                 id, young;
	int64_t                 deleted = -1;
	char                    err[512], t[SAGA_ID_STRLEN + 1];
	char                    want[256];
	char                   *log;
	result                  r;

	/* Retention -1 (never purge) disables the check: the action of a
	 * saga started 8 days ago runs, as it would have then. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.retention_s = -1;
	start_with(f, &cfg, true);
	id = aged_id(f, 8 * 86400);
	assert_int_equal(send_f(f, &id, 0, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	assert_int_equal(biz_rows(f, &id), 1);
	assert_int_equal(barrier_rows(f, &id, 0, "ok"), 1);
	saga_client_free(f->cli);
	f->cli = NULL;
	saga_participant_free(f->p);
	f->p = NULL;

	/* The default retention (7 days), and the row as old as its saga:
	 * the purge deletes it. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.purge_interval_ms = 3600 * 1000; /* not in the background */
	start_with(f, &cfg, false);
	assert_int_equal(pgtest_exec(f->db,
	                     "UPDATE saga_barrier SET created_at = now() - "
	                     "interval '8 days'"),
	    0);
	assert_int_equal(
	    saga_participant_purge(f->p, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 1);

	log_capture_begin(f);
	assert_int_equal(send_f(f, &id, 0, 1, 1, "stock.release", &r), 0);
	log = log_capture_end(f);
	assert_non_null(log);
	assert_int_equal(r.type, PROTO_T_REPLY);
	assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
	assert_non_null(strstr(r.text, "older than the barrier's retention"));
	result_fini(&r);
	snprintf(want, sizeof(want),
	    "Z ERROR parttest: saga=%s step=0 action=stock.release: "
	    "PARTICIPANT-EXPIRED kind=compensation: ",
	    saga_id_format(&id, t));
	if (strstr(log, want) == NULL) {
		fprintf(stderr, "missing \"%s\" in:\n%s", want, log);
	}
	assert_non_null(strstr(log, want));
	free(log);
	/* Not run, nothing written: the effect stays for an operator. */
	assert_int_equal(atomic_load(&f->comp_calls), 0);
	assert_int_equal(biz_rows(f, &id), 1);
	assert_int_equal(query_int(f,
	                     "SELECT count(*) FROM saga_barrier WHERE "
	                     "saga_id = '%s'",
	                     saga_id_format(&id, t)),
	    0);
	/* Again (an operator's retry): the same. */
	assert_int_equal(send_f(f, &id, 0, 1, 2, "stock.release", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
	result_fini(&r);
	assert_int_equal(atomic_load(&f->comp_calls), 0);

	/* The action again, or a step never seen: not run. */
	assert_int_equal(send_f(f, &id, 0, 0, 2, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
	result_fini(&r);
	assert_int_equal(send_f(f, &id, 1, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_FAILED);
	result_fini(&r);
	assert_int_equal(atomic_load(&f->act_started), 1);
	assert_int_equal(biz_rows(f, &id), 1);
	assert_int_equal(query_int(f,
	                     "SELECT count(*) FROM saga_barrier WHERE "
	                     "saga_id = '%s'",
	                     saga_id_format(&id, t)),
	    0);

	/* Young (6 days, inside the retention less its margin): no row
	 * is trusted, a null compensation as before. */
	young = aged_id(f, 6 * 86400);
	assert_int_equal(send_f(f, &young, 0, 1, 1, "stock.release", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	assert_int_equal(atomic_load(&f->comp_calls), 0);
	assert_int_equal(barrier_rows(f, &young, 0, "aborted"), 1);
	assert_int_equal(barrier_rows(f, &young, 1, "ok"), 1);
}

/* ---- serve / stop ---- */

typedef struct server {
	saga_participant *p;
	int               rv;
} server;

static void *
serve_main(void *arg)
{
	server *s = arg;
	char    err[256];

	s->rv = saga_participant_serve(s->p, err, sizeof(err));
	return (NULL);
}

static void
test_participant_serve_returns_after_stop(void **state)
{
	fixture                *f = *state;
	saga_participant_config cfg;
	const char             *listen[2] = { f->url, NULL };
	char                    err[512];
	server                  s = { NULL, -1 };
	pthread_t               thr;
	saga_id                 id;
	result                  r;

	snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%d",
	    test_free_port());
	memset(&cfg, 0, sizeof(cfg));
	cfg.listen    = listen;
	cfg.conninfo  = f->conninfo;
	cfg.log_level = test_log_level();
	assert_int_equal(saga_participant_new(&s.p, &cfg, err, sizeof(err)),
	    0);
	assert_int_equal(saga_participant_on_action(s.p, "stock.reserve",
	                     act_handler, f),
	    0);
	assert_int_equal(saga_participant_migrate(s.p, err, sizeof(err)), 0);
	assert_int_equal(saga_participant_migrate_set(s.p, "parttest",
	                     test_migrations, N_TEST_MIGRATIONS, NULL, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(pthread_create(&thr, NULL, serve_main, &s), 0);
	assert_int_equal(test_ping(f->url, 10000 * test_scale()), 0);
	assert_int_equal(saga_client_open(&f->cli, f->url, err, sizeof(err)),
	    0);
	id = new_id(f);
	assert_int_equal(send_f(f, &id, 0, 0, 1, "stock.reserve", &r), 0);
	assert_int_equal(r.outcome, PROTO_OUTCOME_OK);
	result_fini(&r);
	saga_participant_stop(s.p);
	pthread_join(thr, NULL);
	assert_int_equal(s.rv, 0);
	saga_participant_free(s.p);
}

/* ---- The example participant, as a process ---- */

static void
test_participant_echo_example(void **state)
{
	fixture    *f = *state;
	char        logpath[512];
	char       *argv[] = { ECHO_PATH, "--listen", f->url, "--db",
		      f->conninfo, "--migrate", "--workers", "2", NULL };
	proc       *pr     = NULL;
	char        err[256];
	saga_id     id;
	proto_buf   ctx;
	proto_obj  *c = NULL, *in = NULL, *steps = NULL;
	result      r1, r2, r3;
	int         status = -1;

	snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%d",
	    test_free_port());
	snprintf(logpath, sizeof(logpath), "%s/echo.log", test_tmpdir());
	assert_int_equal(proc_start(&pr, argv, logpath), 0);
	if (test_ping(f->url, 15000 * test_scale()) != 0) {
		proc_dump_log(logpath, 30);
		fail_msg("echo did not answer PING");
	}
	assert_int_equal(saga_client_open(&f->cli, f->url, err, sizeof(err)),
	    0);
	proto_buf_init(&ctx);
	assert_int_equal(proto_obj_alloc(&c), 0);
	assert_int_equal(proto_obj_alloc(&in), 0);
	assert_int_equal(proto_obj_alloc(&steps), 0);
	assert_int_equal(proto_obj_put_str(in, "text", "hello"), 0);
	assert_int_equal(proto_obj_put_obj(c, "input", in), 0);
	assert_int_equal(proto_obj_put_obj(c, "steps", steps), 0);
	assert_int_equal(proto_obj_encode(c, &ctx), 0);
	id = new_id(f);
	assert_int_equal(send_cmd(f->cli, proto_buf_raw(&ctx), &id, 0, 0, 1,
	                     "echo.say", &r1),
	    0);
	assert_int_equal(r1.outcome, PROTO_OUTCOME_OK);
	assert_true(output_int(&r1, "id") > 0);
	assert_int_equal(send_cmd(f->cli, proto_buf_raw(&ctx), &id, 0, 0, 2,
	                     "echo.say", &r2),
	    0);
	assert_true(proto_raw_equal(proto_buf_raw(&r1.output),
	    proto_buf_raw(&r2.output)));
	assert_int_equal(query_int(f, "SELECT count(*) FROM echo_said"), 1);
	assert_int_equal(send_cmd(f->cli, proto_buf_raw(&ctx), &id, 0, 1, 1,
	                     "echo.unsay", &r3),
	    0);
	assert_int_equal(r3.outcome, PROTO_OUTCOME_OK);
	assert_int_equal(query_int(f, "SELECT count(*) FROM echo_said"), 0);
	/* SIGTERM: a clean stop. */
	assert_int_equal(proc_signal(pr, SIGTERM), 0);
	assert_int_equal(proc_wait(pr, 15000 * test_scale(), &status), 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		proc_dump_log(logpath, 30);
		fail_msg("echo exited with status %d", status);
	}
	proc_free(pr);
	proto_obj_free(c);
	proto_obj_free(in);
	proto_obj_free(steps);
	proto_buf_fini(&ctx);
	result_fini(&r1);
	result_fini(&r2);
	result_fini(&r3);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_participant_action_runs_once_and_records),
		T(test_participant_duplicate_action_replays),
		T(test_participant_compensation_runs_after_action),
		T(test_participant_compensation_reads_big_output),
		T(test_participant_duplicate_compensation_replays),
		T(test_participant_null_compensation_then_action_refused),
		T(test_participant_failed_action_keeps_row_and_replays),
		T(test_participant_handler_retry_records_nothing),
		T(test_participant_handler_crash_answers_retry),
		T(test_participant_fail_text_made_utf8),
		T(test_participant_failed_compensation_records_nothing),
		T(test_participant_concurrent_duplicates_one_effect),
		T(test_participant_concurrent_null_compensations),
		T(test_participant_compensation_waits_for_running_action),
		T(test_participant_batch_commits_once_then_answers),
		T(test_participant_batch_failure_undoes_only_its_command),
		T(test_participant_batch_survives_a_pipeline_left_on),
		T(test_participant_batch_duplicates_one_effect),
		T(test_participant_batch_action_and_compensation),
		T(test_participant_batch_commit_failure_answers_retry),
		T(test_participant_handler_cannot_turn_sync_commit_off),
		T(test_participant_sync_commit_off_database_warns),
		T(test_participant_batch_connection_lost_answers_retry),
		T(test_participant_batch_handler_rollback_loses_batch),
		T(test_participant_settle_failure_undoes_its_command),
		T(test_participant_settle_rides_next_round_trip),
		T(test_participant_batch_lock_wait_reruns_alone),
		T(test_participant_batch_rerun_lost_says_why),
		T(test_participant_batch_answers_before_reruns),
		T(test_participant_max_batch_one),
		T(test_participant_unknown_action_is_error),
		T(test_participant_batch_message),
		T(test_participant_malformed_request_is_error),
		T(test_participant_db_unreachable_answers_retry),
		T(test_participant_db_lost_answers_retry_until_back),
		T(test_participant_start_needs_barrier_schema),
		T(test_participant_config_errors),
		T(test_participant_metrics_count_commands),
		T(test_participant_json_logs),
		T(test_participant_text_logs),
		T(test_participant_text_log_cut_whole),
		T(test_participant_purge_deletes_old_sagas_only),
		T(test_participant_purge_retention_past_1970),
		T(test_participant_purge_runs_in_background),
		T(test_participant_old_saga_without_rows_fails),
		T(test_participant_serve_returns_after_stop),
		T(test_participant_echo_example),
	};

	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
