/* SPDX-License-Identifier: MIT */
/*
 * saga_store: PostgreSQL access of the coordinator. See saga_store.h.
 *
 * DESIGN: staged rows live in our own column arrays until the batch in
 * flight finishes, because a statement queued in libpq behind another Sync
 * would run even if the batch before it failed. A batch is at most four
 * statements whatever its size: one INSERT of new sagas, one INSERT of
 * their start keys, one UPDATE of changed sagas and one INSERT of events,
 * each fed with arrays (unnest) so that PostgreSQL parses, plans and runs
 * one statement per table per batch, not one per row. A saga changed twice
 * in one batch is updated once, with its latest state (and the latest
 * context written in the batch). A batch is sent as BEGIN, the
 * statements, COMMIT and a Sync; its results are read in order:
 * one per statement followed by a NULL, then the PIPELINE_SYNC result. The
 * batch counts as committed only if the COMMIT result is COMMAND_OK with
 * the status "COMMIT" (after an error PostgreSQL answers a COMMIT with
 * "ROLLBACK", and in pipeline mode the statements after an error come back
 * as PIPELINE_ABORTED).
 *
 * Parameters are sent in binary: one-dimensional arrays whose elements are
 * uuid as 16 bytes, integers big-endian, timestamptz as microseconds since
 * 2000-01-01, text and bytea as bytes.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log_text.h"
#include "saga_err.h"
#include "saga_store.h"
#include "sql_conn.h"
#include "sql_durable.h"
#include "sql_migrate.h"

/* Type OIDs of the array elements and of the arrays (pg_type.h). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25
#define OID_TIMESTAMPTZ 1184
#define OID_UUID 2950
#define OID_BOOL_ARRAY 1000
#define OID_BYTEA_ARRAY 1001
#define OID_INT4_ARRAY 1007
#define OID_TEXT_ARRAY 1009
#define OID_INT8_ARRAY 1016
#define OID_TIMESTAMPTZ_ARRAY 1185
#define OID_UUID_ARRAY 2951

/* Unix ms of the PostgreSQL epoch, 2000-01-01T00:00:00Z. */
#define PG_EPOCH_MS 946684800000LL

enum {
	STMT_BEGIN,
	STMT_INSERT,
	STMT_KEY,
	STMT_WRITE,  /* fenced UPDATE of sagas, and their events */
	STMT_WRITE1, /* the same for one saga: no join, a plan made once */
	STMT_EVENTS, /* events of new sagas only (no update) */
	STMT_COMMIT,
	STMT_COUNT,
};

#define STMT_MAX_COLS 26
#define STMT_MAX_PARAMS (STMT_MAX_COLS + 3)

/* The events of a write (STMT_WRITE, STMT_WRITE1): inserted only for
 * the sagas its update changed, or new in the batch. Parameters 15 to
 * 26 and 27 (the owner). */
#define SAGA_SQL_WRITE_EVENTS                                               \
	" ev AS (INSERT INTO saga_event (saga_id, seq, at, step, kind,"     \
	" attempt, event, outcome, output, error, duration_us, writer)"     \
	" SELECT e.*, $27::text FROM unnest($15::uuid[], $16::int4[],"      \
	" $17::timestamptz[], $18::int4[], $19::int4[], $20::int4[],"       \
	" $21::text[], $22::text[], $23::bytea[], $24::text[],"             \
	" $25::int8[])"                                                     \
	" AS e(saga_id, seq, at, step, kind, attempt, event, outcome,"      \
	" output, error, duration_us)"                                      \
	" WHERE e.saga_id IN (SELECT id FROM upd)"                          \
	" OR e.saga_id = ANY($26::uuid[]) RETURNING 1)"                     \
	" SELECT id FROM upd"

/* The states after which a saga never changes again: finished_at is set
 * by the write that reaches one (003_hot_updates.sql). */
#define SAGA_SQL_FINISHED "('COMPLETED', 'COMPENSATED', 'RESOLVED')"

/* A write renews the saga's lease only when less of it is left than $29
 * ms: the lease less half the heartbeat's period. So lease_until, an
 * indexed column, does not change at every transition and most
 * transitions are HOT updates (no new index entry). The heartbeat skips
 * the rows a batch holds locked (saga_store_renew); such a batch renews
 * the lease itself if it began less than half a period before that
 * heartbeat (so more than half a period after the one before), which
 * every batch that commits in time does: only a batch held up longer
 * than that leaves the row to the next heartbeat. */
#define SAGA_SQL_LEASE                                                      \
	" lease_until = CASE WHEN s.lease_until >= now()"                   \
	" + $29::int8 * interval '1 millisecond' THEN s.lease_until"        \
	" ELSE now() + $28::int8 * interval '1 millisecond' END,"

/* The types of a write's 26 values: the update's 14, the events' 11,
 * the new sagas' ids. */
#define SAGA_WRITE_TYPES                                                    \
	{ OID_UUID, OID_TEXT, OID_INT4, OID_INT4, OID_INT4,                 \
	    OID_TIMESTAMPTZ, OID_BYTEA, OID_TEXT, OID_TIMESTAMPTZ,          \
	    OID_TIMESTAMPTZ, OID_INT4, OID_INT4, OID_INT8, OID_BOOL,        \
	    OID_UUID, OID_INT4, OID_TIMESTAMPTZ, OID_INT4, OID_INT4,        \
	    OID_INT4, OID_TEXT, OID_TEXT, OID_BYTEA, OID_TEXT, OID_INT8,    \
	    OID_UUID }

/* The statements: ncols parameters, the first nscalar of them single
 * values and the others arrays, then, for those marked owned, three more:
 * the owner (this instance's id, text), the lease length in milliseconds
 * and the length below which a write renews it (int8, SAGA_SQL_LEASE;
 * the insert does not use it), as parameters like every value. How each
 * is planned: saga_store_pipeline_start. */
static const struct {
	const char *name;
	const char *sql;
	int         ncols;
	Oid         elem[STMT_MAX_COLS]; /* element type of each value */
	bool        owned;
	int         nscalar;
} saga_store_stmts[STMT_COUNT] = {
	[STMT_BEGIN]  = { "saga_begin", "BEGIN", 0, { 0 } },
	[STMT_INSERT] = { "saga_insert",
	    "INSERT INTO saga_instance (id, saga_name, saga_version, state,"
	    " current_step, attempt, max_sent_step, phase_started_at,"
	    " context, business_key, traceparent, last_error, created_at,"
	    " updated_at, deadline_at, next_attempt_at, event_seq,"
	    " phase_attempt0, owner, epoch, lease_until, finished_at)"
	    " SELECT u.*, $19::text, 1,"
	    " now() + $20::int8 * interval '1 millisecond',"
	    " CASE WHEN u.state IN " SAGA_SQL_FINISHED " THEN u.updated END"
	    " FROM unnest($1::uuid[], $2::text[], $3::int4[],"
	    " $4::text[], $5::int4[], $6::int4[], $7::int4[],"
	    " $8::timestamptz[], $9::bytea[], $10::text[], $11::text[],"
	    " $12::text[], $13::timestamptz[], $14::timestamptz[],"
	    " $15::timestamptz[], $16::timestamptz[], $17::int4[],"
	    " $18::int4[])"
	    " AS u(id, name, version, state, step, attempt, max_sent, phase,"
	    " context, business_key, traceparent, last_error, created,"
	    " updated, deadline, next_at, seq, attempt0)",
	    18,
	    { OID_UUID, OID_TEXT, OID_INT4, OID_TEXT, OID_INT4, OID_INT4,
	        OID_INT4, OID_TIMESTAMPTZ, OID_BYTEA, OID_TEXT, OID_TEXT,
	        OID_TEXT, OID_TIMESTAMPTZ, OID_TIMESTAMPTZ, OID_TIMESTAMPTZ,
	        OID_TIMESTAMPTZ, OID_INT4, OID_INT4 },
	    true },
	/* The new sagas' start keys, after their rows and events. A key
	 * another START committed first (through another instance: this
	 * one finds a key in memory or in the log before it starts a
	 * saga) is left alone, and the saga this batch made for it is
	 * deleted again with its events, in the same statement, instead of
	 * the unique violation failing the whole batch; its id comes back
	 * (saga_store_lost). ON CONFLICT waits for a START in progress with
	 * the same key and goes on when it commits or rolls back. The keys
	 * go in one order in every batch: two instances' batches holding
	 * the same keys in opposite orders would otherwise each wait for
	 * the other, and PostgreSQL fail one as a deadlock (a DB-DOWN). */
	[STMT_KEY] = { "saga_key",
	    "WITH k AS (INSERT INTO saga_start_key (key, saga_id,"
	    " request_hash)"
	    " SELECT k, id, sha256(convert_to(n, 'UTF8') || '\\x00'::bytea"
	    " || inp)"
	    " FROM unnest($1::text[], $2::uuid[], $3::text[], $4::bytea[])"
	    " AS u(k, id, n, inp) ORDER BY k COLLATE \"C\""
	    " ON CONFLICT (key) DO NOTHING RETURNING saga_id),"
	    " lost AS (SELECT l.id FROM unnest($2::uuid[]) AS l(id)"
	    " WHERE l.id NOT IN (SELECT saga_id FROM k)),"
	    " ev AS (DELETE FROM saga_event e USING lost"
	    " WHERE e.saga_id = lost.id)"
	    " DELETE FROM saga_instance s USING lost WHERE s.id = lost.id"
	    " RETURNING s.id",
	    4, { OID_TEXT, OID_UUID, OID_TEXT, OID_BYTEA } },
	/* Fencing (DESIGN.md, "Growing past one machine"): a saga is
	 * updated only if this instance still owns it at the epoch it
	 * holds, and its events are inserted only if its update happened
	 * (or it is new in this batch), in one statement, so that a saga
	 * taken over by another instance drops out alone. The ids updated
	 * come back. id = ANY($1) repeats the join's condition so that
	 * every plan finds the rows by primary key
	 * (saga_store_pipeline_start). */
	[STMT_WRITE] = { "saga_write",
	    "WITH upd AS (UPDATE saga_instance s SET state = u.state,"
	    " current_step = u.step, attempt = u.attempt,"
	    " max_sent_step = u.max_sent, phase_started_at = u.phase,"
	    " context = coalesce(u.context, s.context),"
	    " last_error = u.last_error, updated_at = u.updated,"
	    " next_attempt_at = u.next_at, event_seq = u.seq,"
	    " phase_attempt0 = u.attempt0,"
	    SAGA_SQL_LEASE
	    " finished_at = CASE WHEN u.state IN " SAGA_SQL_FINISHED
	    " THEN coalesce(s.finished_at, u.updated) END,"
	    " cancel_note = CASE WHEN u.clear_cancel THEN NULL"
	    " ELSE s.cancel_note END"
	    " FROM unnest($1::uuid[], $2::text[], $3::int4[], $4::int4[],"
	    " $5::int4[], $6::timestamptz[], $7::bytea[], $8::text[],"
	    " $9::timestamptz[], $10::timestamptz[], $11::int4[],"
	    " $12::int4[], $13::int8[], $14::bool[])"
	    " AS u(id, state, step, attempt, max_sent, phase, context,"
	    " last_error, updated, next_at, seq, attempt0, epoch,"
	    " clear_cancel)"
	    " WHERE s.id = u.id AND s.id = ANY($1::uuid[])"
	    " AND s.epoch = u.epoch AND s.owner = $27::text"
	    " RETURNING s.id),"
	    SAGA_SQL_WRITE_EVENTS,
	    26, SAGA_WRITE_TYPES, true, 0 },
	/* One saga: its values are single parameters and its row is found
	 * by the primary key alone (the owner's test cannot use an index),
	 * so that the plan PostgreSQL keeps for it is that probe whatever
	 * the table's statistics say when it is made. */
	[STMT_WRITE1] = { "saga_write1",
	    "WITH upd AS (UPDATE saga_instance s SET state = $2::text,"
	    " current_step = $3::int4, attempt = $4::int4,"
	    " max_sent_step = $5::int4, phase_started_at = $6::timestamptz,"
	    " context = coalesce($7::bytea, s.context),"
	    " last_error = $8::text, updated_at = $9::timestamptz,"
	    " next_attempt_at = $10::timestamptz, event_seq = $11::int4,"
	    " phase_attempt0 = $12::int4,"
	    SAGA_SQL_LEASE
	    " finished_at = CASE WHEN $2::text IN " SAGA_SQL_FINISHED
	    " THEN coalesce(s.finished_at, $9::timestamptz) END,"
	    " cancel_note = CASE WHEN $14::bool THEN NULL"
	    " ELSE s.cancel_note END"
	    " WHERE s.id = $1::uuid AND s.epoch = $13::int8"
	    " AND s.owner IS NOT DISTINCT FROM $27::text"
	    " RETURNING s.id),"
	    SAGA_SQL_WRITE_EVENTS,
	    26, SAGA_WRITE_TYPES, true, 14 },
	[STMT_EVENTS] = { "saga_events",
	    "INSERT INTO saga_event (saga_id, seq, at, step, kind, attempt,"
	    " event, outcome, output, error, duration_us, writer)"
	    " SELECT e.*, $13::text FROM unnest($1::uuid[], $2::int4[],"
	    " $3::timestamptz[], $4::int4[], $5::int4[], $6::int4[],"
	    " $7::text[], $8::text[], $9::bytea[], $10::text[],"
	    " $11::int8[])"
	    " AS e(saga_id, seq, at, step, kind, attempt, event, outcome,"
	    " output, error, duration_us)"
	    " WHERE e.saga_id = ANY($12::uuid[])",
	    12,
	    { OID_UUID, OID_INT4, OID_TIMESTAMPTZ, OID_INT4, OID_INT4,
	        OID_INT4, OID_TEXT, OID_TEXT, OID_BYTEA, OID_TEXT, OID_INT8,
	        OID_UUID },
	    true, 0 },
	[STMT_COMMIT] = { "saga_commit", "COMMIT", 0, { 0 } },
};

/* One column of staged rows: its elements in the binary array format
 * (int32 length, -1 for NULL, then the bytes). */
typedef struct saga_col {
	proto_buf data;
	uint32_t  n; /* elements */
	bool      hasnull;
} saga_col;

/* The staged rows of one statement. */
typedef struct saga_table {
	saga_col cols[STMT_MAX_COLS];
	uint32_t rows;
} saga_table;

/* A staged UPDATE: kept whole until the flush, so that a second change of
 * the same saga in the batch replaces the first. */
typedef struct saga_upd {
	saga_id    id;
	saga_state state;
	int32_t    step;
	uint32_t   attempt;
	int32_t    max_sent;
	int64_t    phase_ms;
	int64_t    updated_ms;
	int64_t    next_at_ms; /* 0 = NULL */
	uint32_t   seq;
	uint32_t   attempt0;
	int64_t    epoch;
	bool       clear_cancel;
	char       last_error[256];
	size_t     ctx_off; /* in ctx_arena; SIZE_MAX = keep the stored one */
	size_t     ctx_len;
} saga_upd;

struct saga_store {
	PGconn    *conn;
	char       err[512];
	bool       pipeline;
	char      *owner;    /* this instance's id */
	char       host[128]; /* this process's host and pid, registered */
	char       pid_text[16]; /* with the id (saga_store_register) */
	bool       sync_raised; /* synchronous_commit was off: set to on */
	char       lease_text[24]; /* the lease in ms, a text parameter */
	char       renew_text[24]; /* renewed by a write below this (ms) */
	/* Staged: the next batch. */
	saga_table ins;
	saga_table keys;
	saga_table events;
	saga_upd  *upds;
	size_t     nupds;
	size_t     capupds;
	size_t    *slots; /* open addressing: saga id -> index in upds + 1 */
	size_t     nslots;
	proto_buf  ctx_arena;
	proto_buf  params; /* the arrays of the statement being sent */
	/* In flight. */
	bool       in_flight;
	bool       commit_sent; /* the last flush queued its COMMIT */
	size_t     flight_n;    /* statements sent, BEGIN and COMMIT included */
	size_t     flight_write; /* index of STMT_WRITE in the batch, or 0 */
	size_t     flight_key;   /* index of STMT_KEY in the batch, or 0 */
	saga_id   *lost;         /* new sagas whose key another START took */
	size_t     nlost, caplost;
	saga_id   *sent_ids;     /* sagas the batch updates */
	size_t     nsent, capsent;
	saga_id   *done_ids;     /* those it did update (not fenced) */
	size_t     ndone, capdone;
	saga_id   *fenced;       /* after a commit: sent but not done */
	size_t     nfenced;
	size_t     flight_done; /* statements whose results were read */
	bool       flight_error;
	bool       flight_commit_ok;
	size_t     last_batch;
};

static void saga_store_tables_fini(saga_store *st);
static int  saga_store_ids_add(
     saga_id **v, size_t *n, size_t *cap, const saga_id *id);
static Oid  saga_store_array_oid(Oid elem);

static void
saga_store_seterr(saga_store *st, const char *what, const char *detail)
{
	snprintf(st->err, sizeof(st->err), "%s: %s", what,
	    detail && *detail ? detail : PQerrorMessage(st->conn));
	st->err[strcspn(st->err, "\n")] = '\0';
}

void
saga_row_fini(saga_row *r)
{
	if (r == NULL) {
		return;
	}
	free(r->saga_name);
	free(r->business_key);
	free(r->traceparent);
	free(r->last_error);
	free(r->owner);
	free(r->cancel_note);
	proto_buf_fini(&r->context);
	memset(r, 0, sizeof(*r));
}

int
saga_store_open(saga_store **out, const char *conninfo, const char *owner,
    int64_t lease_ms, char *err, size_t errlen)
{
	saga_store *st;
	int         have = 0;
	int         want = coordinator_migrations[coordinator_migrations_count -
                1].version;
	const char *level;
	int         rv;

	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->owner = strdup(owner)) == NULL) {
		free(st);
		return (SAGA_ENOMEM);
	}
	snprintf(st->lease_text, sizeof(st->lease_text), "%lld",
	    (long long) lease_ms);
	if (gethostname(st->host, sizeof(st->host)) != 0) {
		snprintf(st->host, sizeof(st->host), "?");
	}
	st->host[sizeof(st->host) - 1] = '\0';
	snprintf(st->pid_text, sizeof(st->pid_text), "%d", (int) getpid());
	snprintf(st->renew_text, sizeof(st->renew_text), "%lld",
	    (long long) (lease_ms - saga_store_renew_every_ms(lease_ms) / 2));
	/* With bounded waits: connecting, and any result it waits for
	 * later (sql_conn.h). */
	if ((st->conn = sql_conn_open(conninfo, "sagad")) == NULL) {
		saga_store_free(st);
		return (SAGA_ENOMEM);
	}
	if (PQstatus(st->conn) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
		    PQerrorMessage(st->conn));
		err[strcspn(err, "\n")] = '\0';
		saga_store_free(st);
		return (SAGA_EDB);
	}
	if (sql_conn_utf8_check(st->conn, err, errlen) != 0) {
		saga_store_free(st);
		return (SAGA_ESTATE);
	}
	/* Write-ahead needs a COMMIT that returns after the WAL flush:
	 * synchronous_commit off (a database's, a role's, PGOPTIONS) is
	 * turned on for this connection. */
	if ((rv = sql_durable_check(st->conn, &level, &st->sync_raised, err,
	         errlen)) != 0 ||
	    (rv = sql_migrate_version(st->conn, "coordinator", &have, err,
	         errlen)) != 0) {
		saga_store_free(st);
		return (rv);
	}
	if (have < want) {
		snprintf(err, errlen,
		    "the database schema is at version %d, this sagad needs "
		    "%d: run sagad --migrate",
		    have, want);
		saga_store_free(st);
		return (SAGA_ESTATE);
	}
	/* Error texts go to the log: without DETAIL, which can quote a
	 * whole row (a saga's input). */
	PQsetErrorVerbosity(st->conn, PQERRORS_TERSE);
	/* Times are exchanged in UTC; a session time zone must not shift
	 * the text form of what is loaded. And READ COMMITTED, whatever the
	 * database's, role's or PGOPTIONS' default: a START key's insert
	 * waits for another one in progress and skips, a fenced UPDATE
	 * matches no row; under REPEATABLE READ or SERIALIZABLE both fail
	 * ("could not serialize access"), and the batch with them. */
	PQclear(PQexec(st->conn,
	    "SET TIME ZONE 'UTC'; "
	    "SET default_transaction_isolation = 'read committed'"));
	*out = st;
	return (0);
}

void
saga_store_free(saga_store *st)
{
	if (st == NULL) {
		return;
	}
	PQfinish(st->conn);
	free(st->owner);
	free(st->sent_ids);
	free(st->done_ids);
	free(st->lost);
	free(st->fenced);
	saga_store_tables_fini(st);
	free(st->upds);
	free(st->slots);
	proto_buf_fini(&st->ctx_arena);
	proto_buf_fini(&st->params);
	free(st);
}

bool
saga_store_ok(const saga_store *st)
{
	return (PQstatus(st->conn) == CONNECTION_OK);
}

const char *
saga_store_warning(const saga_store *st)
{
	if (!st->sync_raised) {
		return (NULL);
	}
	return ("DB-SYNC-COMMIT synchronous_commit is off for this "
		"connection's database, role or options; set to on for it "
		"(a commit a crash can lose would break write-ahead): "
		"see docs/operations.md");
}

const char *
saga_store_error(const saga_store *st)
{
	return (st->err);
}

/* Runs a blocking parameterised query (text parameters) and checks its
 * status. Returns the result or NULL (error in st->err). */
static PGresult *
saga_store_query(saga_store *st, const char *what, const char *sql,
    int nparams, const char *const *values, const int *lengths,
    const int *formats)
{
	PGresult      *res;
	ExecStatusType s;

	res = PQexecParams(st->conn, sql, nparams, NULL, values, lengths,
	    formats, 0);
	s   = PQresultStatus(res);
	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
		saga_store_seterr(st, what, PQresultErrorMessage(res));
		PQclear(res);
		return (NULL);
	}
	return (res);
}

int
saga_store_def_register(saga_store *st, const char *name, const char *json,
    int *version, char *hash)
{
	const char *params[2] = { name, json };
	PGresult   *res;

	/* Two sagad instances may register the same new definition at
	 * once: the loser's INSERT does nothing and the SELECT finds the
	 * winner's row. */
	for (int tries = 0; tries < 3; tries++) {
		res = saga_store_query(st, "registering a saga definition",
		    "INSERT INTO saga_definition (name, version, content_hash,"
		    " definition)"
		    " SELECT $1, coalesce((SELECT max(version)"
		    " FROM saga_definition WHERE name = $1), 0) + 1, x.h,"
		    " $2::jsonb"
		    " FROM (SELECT encode(sha256(convert_to($2, 'UTF8')),"
		    " 'hex') AS h) x"
		    " WHERE NOT EXISTS (SELECT 1 FROM saga_definition"
		    " WHERE name = $1 AND content_hash = x.h)"
		    " ON CONFLICT DO NOTHING",
		    2, params, NULL, NULL);
		if (res == NULL) {
			return (SAGA_EDB);
		}
		PQclear(res);
		res = saga_store_query(st, "reading a saga definition",
		    "SELECT version, content_hash FROM saga_definition"
		    " WHERE name = $1 AND content_hash ="
		    " encode(sha256(convert_to($2, 'UTF8')), 'hex')",
		    2, params, NULL, NULL);
		if (res == NULL) {
			return (SAGA_EDB);
		}
		if (PQntuples(res) == 1) {
			*version = atoi(PQgetvalue(res, 0, 0));
			snprintf(hash, 65, "%s", PQgetvalue(res, 0, 1));
			PQclear(res);
			return (0);
		}
		PQclear(res);
	}
	saga_store_seterr(st, "registering a saga definition",
	    "lost the race for a new version three times");
	return (SAGA_EDB);
}

int
saga_store_def_load(
    saga_store *st, const char *name, int version, char **json)
{
	char        ver[16];
	const char *params[2] = { name, ver };
	PGresult   *res;

	snprintf(ver, sizeof(ver), "%d", version);
	res = saga_store_query(st, "loading a saga definition",
	    "SELECT definition::text FROM saga_definition"
	    " WHERE name = $1 AND version = $2::integer",
	    2, params, NULL, NULL);
	if (res == NULL) {
		return (SAGA_EDB);
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		return (SAGA_ENOTFOUND);
	}
	if ((*json = strdup(PQgetvalue(res, 0, 0))) == NULL) {
		PQclear(res);
		return (SAGA_ENOMEM);
	}
	PQclear(res);
	return (0);
}

#define SAGA_ROW_COLUMNS                                                 \
	"id::text, saga_name, saga_version, state, current_step, attempt," \
	" max_sent_step,"                                                \
	" (extract(epoch FROM phase_started_at) * 1000)::bigint,"        \
	" context, business_key, traceparent, last_error,"               \
	" (extract(epoch FROM created_at) * 1000)::bigint,"              \
	" (extract(epoch FROM updated_at) * 1000)::bigint,"              \
	" (extract(epoch FROM deadline_at) * 1000)::bigint,"             \
	" (extract(epoch FROM next_attempt_at) * 1000)::bigint,"         \
	" event_seq, phase_attempt0, epoch, owner, cancel_note"

static char *
saga_store_strcol(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col)) {
		return (NULL);
	}
	return (strdup(PQgetvalue(res, row, col)));
}

static int64_t
saga_store_i64col(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col)) {
		return (0);
	}
	return (strtoll(PQgetvalue(res, row, col), NULL, 10));
}

/* Fills out from row of res (selected with SAGA_ROW_COLUMNS). */
static int
saga_store_row(PGresult *res, int row, saga_row *out)
{
	unsigned char *ctx;
	size_t         ctxlen;

	memset(out, 0, sizeof(*out));
	proto_buf_init(&out->context);
	if (saga_id_parse(&out->id, PQgetvalue(res, row, 0)) != 0 ||
	    saga_state_parse(PQgetvalue(res, row, 3), &out->state) != 0) {
		return (SAGA_EDB);
	}
	out->saga_name        = saga_store_strcol(res, row, 1);
	out->saga_version     = (int) saga_store_i64col(res, row, 2);
	out->current_step     = (int32_t) saga_store_i64col(res, row, 4);
	out->attempt          = (uint32_t) saga_store_i64col(res, row, 5);
	out->max_sent         = (int32_t) saga_store_i64col(res, row, 6);
	out->phase_started_ms = saga_store_i64col(res, row, 7);
	out->business_key     = saga_store_strcol(res, row, 9);
	out->traceparent      = saga_store_strcol(res, row, 10);
	out->last_error       = saga_store_strcol(res, row, 11);
	out->created_ms       = saga_store_i64col(res, row, 12);
	out->updated_ms       = saga_store_i64col(res, row, 13);
	out->deadline_ms      = saga_store_i64col(res, row, 14);
	out->next_attempt_ms  = saga_store_i64col(res, row, 15);
	out->event_seq        = (uint32_t) saga_store_i64col(res, row, 16);
	out->phase_attempt0   = (uint32_t) saga_store_i64col(res, row, 17);
	out->epoch            = saga_store_i64col(res, row, 18);
	out->owner            = saga_store_strcol(res, row, 19);
	out->cancel_note      = saga_store_strcol(res, row, 20);
	ctx = PQunescapeBytea(
	    (const unsigned char *) PQgetvalue(res, row, 8), &ctxlen);
	if (out->saga_name == NULL || ctx == NULL ||
	    proto_buf_append(&out->context, ctx, ctxlen) != 0) {
		PQfreemem(ctx);
		saga_row_fini(out);
		return (SAGA_ENOMEM);
	}
	PQfreemem(ctx);
	return (0);
}

int
saga_store_load_active(
    saga_store *st, int (*cb)(void *arg, saga_row *row), void *arg)
{
	PGresult *res;
	int       rv = 0;

	res = saga_store_query(st, "loading unfinished sagas",
	    "SELECT " SAGA_ROW_COLUMNS " FROM saga_instance"
	    " WHERE state IN ('RUNNING', 'COMPENSATING') ORDER BY id",
	    0, NULL, NULL, NULL);
	if (res == NULL) {
		return (SAGA_EDB);
	}
	for (int i = 0; i < PQntuples(res) && rv == 0; i++) {
		saga_row row;

		if ((rv = saga_store_row(res, i, &row)) != 0) {
			saga_store_seterr(st, "loading unfinished sagas",
			    "malformed row");
			break;
		}
		rv = cb(arg, &row);
	}
	PQclear(res);
	return (rv);
}

int
saga_store_load_one(saga_store *st, const saga_id *id, saga_row *out)
{
	char        text[SAGA_ID_STRLEN + 1];
	const char *params[1] = { saga_id_format(id, text) };
	PGresult   *res;
	int         rv;

	res = saga_store_query(st, "loading a saga",
	    "SELECT " SAGA_ROW_COLUMNS " FROM saga_instance WHERE id = $1",
	    1, params, NULL, NULL);
	if (res == NULL) {
		return (SAGA_EDB);
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		return (SAGA_ENOTFOUND);
	}
	rv = saga_store_row(res, 0, out);
	PQclear(res);
	return (rv);
}

int
saga_store_key_lookup(saga_store *st, const char *key, const char *saga_name,
    proto_raw input, saga_id *id, bool *same)
{
	const char *params[3]  = { key, saga_name, (const char *) input.ptr };
	int         lengths[3] = { 0, 0, (int) input.len };
	int         formats[3] = { 0, 0, 1 };
	PGresult   *res;
	int         rv = 0;

	res = saga_store_query(st, "looking up a start key",
	    "SELECT saga_id::text, request_hash = sha256(convert_to($2,"
	    " 'UTF8') || '\\x00'::bytea || $3::bytea)"
	    " FROM saga_start_key WHERE key = $1",
	    3, params, lengths, formats);
	if (res == NULL) {
		return (SAGA_EDB);
	}
	if (PQntuples(res) != 1) {
		rv = SAGA_ENOTFOUND;
	} else if (saga_id_parse(id, PQgetvalue(res, 0, 0)) != 0) {
		rv = SAGA_EDB;
	} else {
		*same = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	}
	PQclear(res);
	return (rv);
}

int
saga_store_count_state(saga_store *st, saga_state state, long long *n)
{
	const char *params[1] = { saga_state_name(state) };
	PGresult   *res;

	res = saga_store_query(st, "counting sagas",
	    "SELECT count(*) FROM saga_instance WHERE state = $1", 1, params,
	    NULL, NULL);
	if (res == NULL) {
		return (SAGA_EDB);
	}
	*n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return (0);
}

/* What saga_store_register read of the id's row. */
typedef struct saga_store_holder {
	char      host[128];
	int       pid;
	bool      stopped;
	long long age_ms; /* of its heartbeat, in the database's clock */
	bool      stale;  /* heartbeat older than our lease */
	char      xmin[16];
} saga_store_holder;

/* Whether the holder of the id's row may be replaced by this process:
 * it stopped cleanly, or its heartbeat is older than the lease (its
 * leases have run out: it renews them in the heartbeat's statement), or
 * it is on this host and is this process (a reconnect; or a restart that
 * got the same pid, pid 1 in a container) or no process at all (a
 * restart after kill -9, which takes its sagas back at once). A pid that
 * exists, even one we may not signal (EPERM), counts as live. */
static bool
saga_store_holder_gone(const saga_store *st, const saga_store_holder *h)
{
	if (h->stopped || h->stale) {
		return (true);
	}
	if (strcmp(h->host, st->host) != 0) {
		return (false);
	}
	if (h->pid == (int) getpid()) {
		return (true);
	}
	return (h->pid > 0 && kill((pid_t) h->pid, 0) == -1 &&
	    errno == ESRCH);
}

/* saga_store_register enforces that an instance id belongs to one live
 * process at a time. Two processes may start with one id at the same
 * moment, so the check and the claim are one compare-and-swap on the
 * row: read it (with its xmin, which every UPDATE of the row changes,
 * the holder's heartbeats included), decide, then write only if the row
 * is still the version read (UPDATE ... WHERE xmin = read) or, for a new
 * id, still absent (INSERT ... ON CONFLICT DO NOTHING); RETURNING says
 * whether the write happened. Of two racing processes the second one's
 * statement waits for the first one's row lock, finds the row changed
 * and writes nothing; it reads again and finds the first one live. A
 * version that did not change did not heartbeat, so a stale verdict
 * still holds. Not an advisory lock held for the process's life: it
 * would live on one connection, gone at every reconnect or failover of
 * the database, and held on, after a kill -9 on another host, by a
 * backend that has not yet noticed its client died (so a restart there
 * would wait for TCP keepalive); nor would it tell who holds the id. */
int
saga_store_register(saga_store *st, const char *listen)
{
	const char *params[5]  = { st->owner, st->host, st->pid_text, listen,
		 NULL };
	const char *rparams[2] = { st->owner, st->lease_text };
	PGresult   *res;

	for (int tries = 0; tries < 5; tries++) {
		saga_store_holder h;

		res = saga_store_query(st, "reading this instance id's row",
		    "SELECT coalesce(host, ''), coalesce(pid, 0),"
		    " stopped_at IS NOT NULL,"
		    " (extract(epoch FROM now() - heartbeat_at) * 1000)"
		    "::bigint,"
		    " heartbeat_at < now() - $2::bigint"
		    " * interval '1 millisecond', xmin::text"
		    " FROM saga_coordinator WHERE instance_id = $1",
		    2, rparams, NULL, NULL);
		if (res == NULL) {
			return (SAGA_EDB);
		}
		if (PQntuples(res) == 0) {
			PQclear(res);
			/* A new id: insert it, unless another process just
			 * did (then read that one's row). */
			res = saga_store_query(st, "registering this instance",
			    "INSERT INTO saga_coordinator (instance_id, host,"
			    " pid, listen) VALUES ($1, $2, $3::integer, $4)"
			    " ON CONFLICT (instance_id) DO NOTHING RETURNING 1",
			    4, params, NULL, NULL);
		} else {
			snprintf(h.host, sizeof(h.host), "%s",
			    PQgetvalue(res, 0, 0));
			h.pid     = atoi(PQgetvalue(res, 0, 1));
			h.stopped = PQgetvalue(res, 0, 2)[0] == 't';
			h.age_ms  = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
			h.stale   = PQgetvalue(res, 0, 4)[0] == 't';
			snprintf(h.xmin, sizeof(h.xmin), "%s",
			    PQgetvalue(res, 0, 5));
			PQclear(res);
			if (!saga_store_holder_gone(st, &h)) {
				snprintf(st->err, sizeof(st->err),
				    "instance id \"%s\" is in use by a live "
				    "sagad on host %s (pid %d, heartbeat "
				    "%lld.%03lld s ago, lease %s ms, not "
				    "stopped): stop that instance, or give "
				    "this one another --instance-id",
				    st->owner, h.host, h.pid, h.age_ms / 1000,
				    h.age_ms % 1000, st->lease_text);
				return (SAGA_EEXIST);
			}
			params[4] = h.xmin;
			res = saga_store_query(st, "registering this instance",
			    "UPDATE saga_coordinator SET host = $2,"
			    " pid = $3::integer, listen = $4,"
			    " started_at = now(), heartbeat_at = now(),"
			    " stopped_at = NULL"
			    " WHERE instance_id = $1 AND xmin = $5::xid"
			    " RETURNING 1",
			    5, params, NULL, NULL);
		}
		if (res == NULL) {
			return (SAGA_EDB);
		}
		if (PQntuples(res) == 1) {
			PQclear(res);
			return (0);
		}
		/* The row changed since it was read: read it again. */
		PQclear(res);
	}
	snprintf(st->err, sizeof(st->err),
	    "registering this instance: the row of instance id \"%s\" "
	    "keeps changing (another process starting with this id?)",
	    st->owner);
	return (SAGA_EEXIST);
}

int64_t
saga_store_renew_every_ms(int64_t lease_ms)
{
	return (lease_ms / 3 < 500 ? lease_ms / 3 : 500);
}

int
saga_store_renew(saga_store *st, saga_id **ids, size_t *n,
    saga_id **locked, size_t *nlocked, char *holder, size_t holderlen)
{
	const char *params[4] = { st->owner, st->lease_text, st->host,
		st->pid_text };
	PGresult   *res;
	saga_id    *v = NULL, *lv = NULL;
	size_t      cap = 0, lcap = 0;

	*ids      = NULL;
	*n        = 0;
	*locked   = NULL;
	*nlocked  = 0;
	holder[0] = '\0';
	/* The heartbeat is this process's only while the id's row names its
	 * host and pid; a row naming another process (which took the id
	 * over: saga_store_register) means two processes run with one id,
	 * and the leases of that id are not renewed here (they are the
	 * other's), so that they are not taken back from it either. A
	 * missing row renews as before.
	 * SKIP LOCKED: never wait for a row the engine's batch is writing
	 * (that batch extends the lease itself when it runs short:
	 * SAGA_SQL_LEASE); waiting could deadlock with it, rows in another
	 * order. */
	res = saga_store_query(st, "renewing leases",
	    "WITH hb AS (UPDATE saga_coordinator SET heartbeat_at = now()"
	    " WHERE instance_id = $1 AND host IS NOT DISTINCT FROM $3"
	    " AND pid = $4::integer RETURNING 1),"
	    " other AS (SELECT host, pid FROM saga_coordinator"
	    " WHERE instance_id = $1 AND NOT EXISTS (SELECT 1 FROM hb)),"
	    " r AS (UPDATE saga_instance SET lease_until = now() +"
	    " $2::bigint * interval '1 millisecond'"
	    " WHERE NOT EXISTS (SELECT 1 FROM other)"
	    " AND id IN (SELECT id FROM saga_instance WHERE owner = $1"
	    " AND state IN ('RUNNING', 'COMPENSATING')"
	    " FOR UPDATE SKIP LOCKED)"
	    " RETURNING id),"
	    /* Owned as the statement began, renewed or not: the engine
	     * tells from it a saga in memory that is not its own any
	     * more from one whose row a batch held. */
	    " own AS (SELECT id FROM saga_instance WHERE owner = $1"
	    " AND state IN ('RUNNING', 'COMPENSATING')"
	    " AND NOT EXISTS (SELECT 1 FROM other))"
	    " SELECT id::text, NULL, 'r' FROM r UNION ALL"
	    " SELECT id::text, NULL, 'l' FROM own"
	    " WHERE id NOT IN (SELECT id FROM r) UNION ALL"
	    " SELECT NULL, format('host %s, pid %s', host, pid), NULL"
	    " FROM other",
	    4, params, NULL, NULL);
	if (res == NULL) {
		return (SAGA_EDB);
	}
	for (int i = 0; i < PQntuples(res); i++) {
		bool    renewed = PQgetvalue(res, i, 2)[0] == 'r';
		saga_id id;

		if (PQgetisnull(res, i, 0)) {
			snprintf(holder, holderlen, "%s",
			    PQgetvalue(res, i, 1));
			continue;
		}
		if (saga_id_parse(&id, PQgetvalue(res, i, 0)) == 0 &&
		    (renewed ? saga_store_ids_add(&v, n, &cap, &id)
		             : saga_store_ids_add(&lv, nlocked, &lcap, &id)) !=
		        0) {
			free(v);
			free(lv);
			PQclear(res);
			*n       = 0;
			*nlocked = 0;
			return (SAGA_ENOMEM);
		}
	}
	PQclear(res);
	*ids    = v;
	*locked = lv;
	return (0);
}

/* The n ids as a uuid[] literal ("{id,id}"), malloc'd; NULL when out of
 * memory. */
static char *
saga_store_id_array(const saga_id *ids, size_t n)
{
	char  *list = malloc(n * (SAGA_ID_STRLEN + 1) + 3);
	size_t off  = 0;

	if (list == NULL) {
		return (NULL);
	}
	list[off++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (i > 0) {
			list[off++] = ',';
		}
		saga_id_format(&ids[i], list + off);
		off += SAGA_ID_STRLEN;
	}
	list[off++] = '}';
	list[off]   = '\0';
	return (list);
}

int
saga_store_claim_ids(saga_store *st, const saga_id *ids, size_t n,
    int (*cb)(void *arg, saga_row *row), void *arg)
{
	char       *list = saga_store_id_array(ids, n);
	const char *params[3];
	PGresult   *res;
	int         rv = 0;

	if (list == NULL) {
		return (SAGA_ENOMEM);
	}
	params[0] = st->owner;
	params[1] = st->lease_text;
	params[2] = list;
	/* SKIP LOCKED: a row someone holds (an operator's SELECT ... FOR
	 * UPDATE) waits for the next round; waiting here stopped the lease
	 * round, the renewal with it, and the other instances took every
	 * saga of this one. */
	res = saga_store_query(st, "taking back sagas",
	    "UPDATE saga_instance s SET epoch = s.epoch + 1,"
	    " lease_until = now() + $2::bigint * interval '1 millisecond'"
	    " WHERE s.id IN (SELECT id FROM saga_instance"
	    " WHERE id = ANY($3::uuid[]) AND owner = $1"
	    " AND state IN ('RUNNING', 'COMPENSATING')"
	    " FOR UPDATE SKIP LOCKED)"
	    " RETURNING " SAGA_ROW_COLUMNS,
	    3, params, NULL, NULL);
	free(list);
	if (res == NULL) {
		return (SAGA_EDB);
	}
	for (int i = 0; i < PQntuples(res) && rv == 0; i++) {
		saga_row row;

		if ((rv = saga_store_row(res, i, &row)) != 0) {
			break;
		}
		rv = cb(arg, &row);
	}
	PQclear(res);
	return (rv);
}

int
saga_store_claim(saga_store *st, bool mine, bool others, long limit,
    const saga_id *skip, size_t nskip, int (*cb)(void *arg, saga_row *row),
    void *arg, long *claimed)
{
	char        lim[32];
	char       *list = saga_store_id_array(skip, nskip);
	const char *params[6] = { st->owner, st->lease_text, lim,
		mine ? "t" : "f", list, others ? "t" : "f" };
	PGresult   *res;
	int         rv = 0;

	if (list == NULL) {
		return (SAGA_ENOMEM);
	}
	snprintf(lim, sizeof(lim), "%ld", limit);
	/* SKIP LOCKED: instances claiming at once split the work; the epoch
	 * bump fences whoever held the saga before. */
	res = saga_store_query(st, "taking over sagas",
	    "UPDATE saga_instance s SET owner = $1, epoch = s.epoch + 1,"
	    " lease_until = now() + $2::bigint * interval '1 millisecond'"
	    " WHERE s.id IN (SELECT id FROM saga_instance"
	    " WHERE state IN ('RUNNING', 'COMPENSATING')"
	    " AND (($6::boolean AND (lease_until IS NULL"
	    " OR lease_until < now() OR owner IS NULL))"
	    " OR ($4::boolean AND owner = $1))"
	    " AND id <> ALL ($5::uuid[])"
	    " ORDER BY id LIMIT $3::bigint FOR UPDATE SKIP LOCKED)"
	    " RETURNING " SAGA_ROW_COLUMNS,
	    6, params, NULL, NULL);
	free(list);
	if (res == NULL) {
		return (SAGA_EDB);
	}
	*claimed = PQntuples(res);
	for (int i = 0; i < PQntuples(res) && rv == 0; i++) {
		saga_row row;

		if ((rv = saga_store_row(res, i, &row)) != 0) {
			saga_store_seterr(st, "taking over sagas",
			    "malformed row");
			break;
		}
		rv = cb(arg, &row);
	}
	PQclear(res);
	return (rv);
}

int
saga_store_give_back(saga_store *st, const saga_id *id, int64_t epoch,
    const char *why, bool *locked)
{
	char        text[SAGA_ID_STRLEN + 1];
	char        ep[32];
	const char *params[5] = { saga_id_format(id, text), st->owner, ep,
		why, saga_log_name(SAGA_LOG_LOAD_FAILED) };
	PGresult   *res;

	snprintf(ep, sizeof(ep), "%lld", (long long) epoch);
	/* Fenced like every write: only the claim this instance holds is
	 * given back. No owner and no lease: any other instance's next
	 * round may claim it. A row someone holds locked is left for the
	 * next round (*locked): the lease round must not wait. */
	res = saga_store_query(st, "giving a saga back",
	    "WITH l AS (SELECT id FROM saga_instance WHERE id = $1::uuid"
	    " FOR UPDATE SKIP LOCKED),"
	    " g AS (UPDATE saga_instance s SET owner = NULL,"
	    " lease_until = NULL, event_seq = s.event_seq + 1"
	    " WHERE s.id IN (SELECT id FROM l) AND s.owner = $2"
	    " AND s.epoch = $3::int8"
	    " AND s.state IN ('RUNNING', 'COMPENSATING')"
	    " RETURNING s.id, s.event_seq, s.current_step),"
	    " e AS (INSERT INTO saga_event (saga_id, seq, at, step, event,"
	    " error, writer) SELECT id, event_seq, now(), current_step, $5,"
	    " $4, $2 FROM g)"
	    " SELECT NOT EXISTS (SELECT 1 FROM l) AND EXISTS (SELECT 1"
	    " FROM saga_instance WHERE id = $1::uuid)",
	    5, params, NULL, NULL);
	if (res == NULL) {
		return (SAGA_EDB);
	}
	*locked = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t")
	    == 0;
	PQclear(res);
	return (0);
}

int
saga_store_claim_one(saga_store *st, const saga_id *id, saga_row *out)
{
	char        text[SAGA_ID_STRLEN + 1];
	const char *params[3] = { saga_id_format(id, text), st->owner,
		st->lease_text };
	PGresult   *res;
	int         rv;

	res = saga_store_query(st, "claiming a saga",
	    "UPDATE saga_instance s SET owner = $2, epoch = s.epoch + 1,"
	    " lease_until = now() + $3::bigint * interval '1 millisecond'"
	    " WHERE id = $1 AND state = 'FAILED'"
	    " RETURNING " SAGA_ROW_COLUMNS,
	    3, params, NULL, NULL);
	if (res == NULL) {
		return (SAGA_EDB);
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		return (SAGA_ENOTFOUND);
	}
	rv = saga_store_row(res, 0, out);
	PQclear(res);
	return (rv);
}

int
saga_store_request_cancel(
    saga_store *st, const saga_id *id, const char *note, saga_row *out)
{
	char        text[SAGA_ID_STRLEN + 1];
	const char *params[2] = { saga_id_format(id, text), note };
	PGresult   *res;
	int         rv;

	res = saga_store_query(st, "asking for a cancel",
	    "UPDATE saga_instance SET cancel_note = $2"
	    " WHERE id = $1 AND state = 'RUNNING'"
	    " RETURNING " SAGA_ROW_COLUMNS,
	    2, params, NULL, NULL);
	if (res == NULL) {
		return (SAGA_EDB);
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		return (SAGA_ENOTFOUND);
	}
	rv = saga_store_row(res, 0, out);
	PQclear(res);
	return (rv);
}

int
saga_store_cancels(saga_store *st,
    int (*cb)(void *arg, const saga_id *id, const char *note), void *arg)
{
	const char *params[1] = { st->owner };
	PGresult   *res;
	int         rv = 0;

	res = saga_store_query(st, "reading cancel requests",
	    "SELECT id::text, cancel_note FROM saga_instance"
	    " WHERE owner = $1 AND cancel_note IS NOT NULL"
	    " AND state IN ('RUNNING', 'COMPENSATING')",
	    1, params, NULL, NULL);
	if (res == NULL) {
		return (SAGA_EDB);
	}
	for (int i = 0; i < PQntuples(res) && rv == 0; i++) {
		saga_id id;

		if (saga_id_parse(&id, PQgetvalue(res, i, 0)) == 0) {
			rv = cb(arg, &id, PQgetvalue(res, i, 1));
		}
	}
	PQclear(res);
	return (rv);
}

int
saga_store_release(saga_store *st, long *released, long *left)
{
	static const char *const begin[] = {
		"BEGIN",
		"SET LOCAL lock_timeout = " SAGA_STORE_RELEASE_LOCK_WAIT,
		"SET LOCAL statement_timeout = " SAGA_STORE_RELEASE_WAIT,
	};
	const char *params[3] = { st->owner, st->host, st->pid_text };
	PGresult   *res;
	long        nrel = 0, nleft = 0;
	int         rv   = SAGA_EDB;

	/* Waits for no row lock: a row another session holds (a batch of
	 * this instance's still waiting, an operator's SELECT ... FOR
	 * UPDATE) keeps its lease, which expires as after a kill -9; so
	 * may this instance's row in saga_coordinator. A lock on a table
	 * (ALTER TABLE, VACUUM FULL) and a slow server are bounded by the
	 * timeouts, which end with the transaction. */
	for (size_t i = 0; i < sizeof(begin) / sizeof(begin[0]); i++) {
		if ((res = saga_store_query(st, "releasing leases", begin[i],
		         0, NULL, NULL, NULL)) == NULL) {
			goto done;
		}
		PQclear(res);
	}
	/* As the heartbeat (saga_store_renew): the id's row must name
	 * this process, else another process took the id over (this one
	 * was stopped or cut off for longer than the lease) and the leases
	 * and the row are that one's: nothing is released, nothing marked
	 * stopped. A missing row releases as before. */
	res = saga_store_query(st, "releasing leases",
	    "WITH other AS (SELECT 1 FROM saga_coordinator"
	    " WHERE instance_id = $1 AND NOT (host IS NOT DISTINCT FROM $2"
	    " AND pid = $3::integer)),"
	    " mine AS (SELECT id FROM saga_instance WHERE owner = $1"
	    " AND state IN ('RUNNING', 'COMPENSATING')"
	    " AND NOT EXISTS (SELECT 1 FROM other)"
	    " FOR UPDATE SKIP LOCKED),"
	    " r AS (UPDATE saga_instance i"
	    " SET lease_until = now() - interval '1 second'"
	    " FROM mine WHERE i.id = mine.id RETURNING 1),"
	    " me AS (SELECT instance_id FROM saga_coordinator"
	    " WHERE instance_id = $1 AND host IS NOT DISTINCT FROM $2"
	    " AND pid = $3::integer FOR UPDATE SKIP LOCKED),"
	    " s AS (UPDATE saga_coordinator c SET stopped_at = now()"
	    " FROM me WHERE c.instance_id = me.instance_id)"
	    " SELECT (SELECT count(*) FROM r), CASE WHEN EXISTS"
	    " (SELECT 1 FROM other) THEN 0 ELSE (SELECT count(*)"
	    " FROM saga_instance WHERE owner = $1"
	    " AND state IN ('RUNNING', 'COMPENSATING')) END",
	    3, params, NULL, NULL);
	if (res != NULL && PQntuples(res) == 1) {
		nrel  = atol(PQgetvalue(res, 0, 0));
		nleft = atol(PQgetvalue(res, 0, 1)) - nrel;
		rv    = 0;
	}
	PQclear(res);
done:
	/* After an error the transaction is aborted: ROLLBACK ends it. */
	res = PQexec(st->conn, rv == 0 ? "COMMIT" : "ROLLBACK");
	if (rv == 0 && PQresultStatus(res) != PGRES_COMMAND_OK) {
		saga_store_seterr(st, "releasing leases",
		    res != NULL ? PQresultErrorMessage(res) : NULL);
		rv = SAGA_EDB;
	}
	PQclear(res);
	if (rv == 0) {
		*released = nrel;
		*left     = nleft < 0 ? 0 : nleft;
	}
	return (rv);
}

/* Prepares the statements of a batch, on a connection that writes them.
 * Only there: parse analysis of an INSERT or UPDATE takes its table's
 * RowExclusiveLock, so a connection that prepared them would wait, while
 * connecting, behind any session that holds a lock in conflict with it
 * but not with reading (LOCK TABLE ... IN SHARE MODE, CREATE INDEX
 * without CONCURRENTLY), even if it only reads (the reader thread:
 * STATUS, WAIT, START with a key). */
static int
saga_store_prepare(saga_store *st)
{
	for (int i = 0; i < STMT_COUNT; i++) {
		Oid       types[STMT_MAX_PARAMS];
		PGresult *res;
		int       n = saga_store_stmts[i].ncols;

		for (int c = 0; c < n; c++) {
			types[c] = c < saga_store_stmts[i].nscalar
			    ? saga_store_stmts[i].elem[c]
			    : saga_store_array_oid(saga_store_stmts[i].elem[c]);
		}
		if (saga_store_stmts[i].owned) {
			types[n++] = OID_TEXT;
			types[n++] = OID_INT8;
			types[n++] = OID_INT8;
		}
		res = PQprepare(st->conn, saga_store_stmts[i].name,
		    saga_store_stmts[i].sql, n, types);

		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			char what[64];

			snprintf(what, sizeof(what), "preparing %s",
			    saga_store_stmts[i].name);
			saga_store_seterr(st, what, PQresultErrorMessage(res));
			PQclear(res);
			return (SAGA_EDB);
		}
		PQclear(res);
	}
	return (0);
}

int
saga_store_pipeline_start(saga_store *st)
{
	PGresult *res;
	int       rv;

	if ((rv = saga_store_prepare(st)) != 0) {
		return (rv);
	}
	/* How the batches are planned. PostgreSQL would plan a prepared
	 * statement with its parameters' values for its first executions,
	 * then keep a generic plan, made from the tables' statistics at
	 * that moment, until an ANALYZE invalidates it. A plan made while
	 * saga_instance is small (a new database) can read the whole
	 * table, and each batch then costs more as the log grows, for a
	 * minute or more (entry 3 of docs/PERFORMANCE.md: 212 down to 60
	 * sagas/s in 70 s). Planning each batch again (custom plans) costs
	 * a third of what running it does, and such plans still read every
	 * row of a small table (store_test: 40 rows, analyzed while empty).
	 * So every statement is given a plan that cannot read more than
	 * its batch's rows, whatever the statistics, and keeps it
	 * (force_generic_plan: planned once per connection, and again only
	 * when the tables' statistics change):
	 *  - every statement finds saga_instance's rows by primary key
	 *    (the write of one saga, the foreign keys' checks; the write of
	 *    several sagas has id = ANY($1) besides its join) or reads no
	 *    table (the inserts from arrays);
	 *  - sequential scans are off, so a plan made for a tiny table
	 *    cannot be one, and nested loops are off: the generic plan of
	 *    the write of several sagas, made for 10 rows, was otherwise a
	 *    nested loop comparing each of its rows with each element of
	 *    its arrays (EXPLAIN, docs/PERFORMANCE.md entry 10); it hashes.
	 * This connection runs nothing else once in pipeline mode. */
	res = PQexec(st->conn, "SET enable_seqscan = off;"
	                       " SET enable_nestloop = off;"
	                       " SET plan_cache_mode = force_generic_plan");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		saga_store_seterr(st, "setting the planner's options",
		    PQresultErrorMessage(res));
		PQclear(res);
		return (SAGA_EDB);
	}
	PQclear(res);
	if (PQsetnonblocking(st->conn, 1) != 0 ||
	    PQenterPipelineMode(st->conn) != 1) {
		saga_store_seterr(st, "entering pipeline mode", NULL);
		return (SAGA_EDB);
	}
	st->pipeline = true;
	return (0);
}

int
saga_store_fd(const saga_store *st)
{
	return (PQsocket(st->conn));
}

/* Staging: each row's values are appended to its table's columns. */

static void
saga_store_tables_fini(saga_store *st)
{
	saga_table *t[3] = { &st->ins, &st->keys, &st->events };

	for (int i = 0; i < 3; i++) {
		for (int c = 0; c < STMT_MAX_COLS; c++) {
			proto_buf_fini(&t[i]->cols[c].data);
		}
	}
}

static void
saga_store_table_reset(saga_table *t)
{
	for (int c = 0; c < STMT_MAX_COLS; c++) {
		proto_buf_reset(&t->cols[c].data);
		t->cols[c].n       = 0;
		t->cols[c].hasnull = false;
	}
	t->rows = 0;
}

/* Remembers the columns' lengths, to undo a row that could not be staged
 * whole. */
static void
saga_store_table_mark(const saga_table *t, size_t *marks)
{
	for (int c = 0; c < STMT_MAX_COLS; c++) {
		marks[c] = t->cols[c].data.len;
	}
}

static int
saga_store_table_done(saga_table *t, const size_t *marks, int rv)
{
	if (rv != 0) {
		for (int c = 0; c < STMT_MAX_COLS; c++) {
			if (t->cols[c].data.len != marks[c]) {
				t->cols[c].data.len = marks[c];
				t->cols[c].n--;
			}
		}
		return (SAGA_ENOMEM);
	}
	t->rows++;
	return (0);
}

static int
saga_store_c_bytes(saga_col *c, const void *p, size_t n)
{
	uint32_t be = htonl((uint32_t) n);
	int      rv;

	if ((rv = proto_buf_append(&c->data, &be, 4)) != 0 ||
	    (rv = proto_buf_append(&c->data, p, n)) != 0) {
		return (rv);
	}
	c->n++;
	return (0);
}

static int
saga_store_c_null(saga_col *c)
{
	uint32_t be = htonl(UINT32_MAX); /* -1 */

	c->hasnull = true;
	if (proto_buf_append(&c->data, &be, 4) != 0) {
		return (SAGA_ENOMEM);
	}
	c->n++;
	return (0);
}

static int
saga_store_c_i32(saga_col *c, int32_t v)
{
	uint32_t be = htonl((uint32_t) v);

	return (saga_store_c_bytes(c, &be, 4));
}

static int
saga_store_c_i64(saga_col *c, int64_t v)
{
	uint8_t  b[8];
	uint64_t u = (uint64_t) v;

	for (int i = 0; i < 8; i++) {
		b[i] = (uint8_t) (u >> (56 - 8 * i));
	}
	return (saga_store_c_bytes(c, b, 8));
}

/* A time in Unix ms as timestamptz; 0 is NULL. */
static int
saga_store_c_time(saga_col *c, int64_t ms)
{
	if (ms == 0) {
		return (saga_store_c_null(c));
	}
	return (saga_store_c_i64(c, (ms - PG_EPOCH_MS) * 1000));
}

/* Text, made valid UTF-8 ('?' for each byte that is not): PostgreSQL
 * refuses anything else, and with it the whole batch. Texts kept in a
 * fixed buffer (a participant's error, an operator's note) can end
 * inside a character where they were cut. */
static int
saga_store_c_text(saga_col *c, const char *t)
{
	size_t at = c->data.len + 4, n;
	int    rv;

	if (t == NULL) {
		return (saga_store_c_null(c));
	}
	n = strlen(t);
	if ((rv = saga_store_c_bytes(c, t, n)) != 0) {
		return (rv);
	}
	log_utf8_fix((char *) c->data.data + at, n);
	return (0);
}

int
saga_store_stage_insert(
    saga_store *st, const saga_inst *inst, const saga_store_new *nw)
{
	saga_col *c = st->ins.cols;
	size_t    marks[STMT_MAX_COLS];
	int       rv = 0;

	saga_store_table_mark(&st->ins, marks);
	rv |= saga_store_c_bytes(&c[0], inst->id.b, 16);
	rv |= saga_store_c_text(&c[1], nw->saga_name);
	rv |= saga_store_c_i32(&c[2], nw->saga_version);
	rv |= saga_store_c_text(&c[3], saga_state_name(inst->state));
	rv |= saga_store_c_i32(&c[4], inst->step);
	rv |= saga_store_c_i32(&c[5], (int32_t) inst->attempt);
	rv |= saga_store_c_i32(&c[6], inst->max_sent);
	rv |= saga_store_c_time(&c[7], inst->phase_start_ms);
	rv |= saga_store_c_bytes(&c[8], nw->context.ptr, nw->context.len);
	rv |= saga_store_c_text(&c[9], nw->business_key);
	rv |= saga_store_c_text(&c[10], nw->traceparent);
	rv |= saga_store_c_text(
	    &c[11], inst->last_error[0] ? inst->last_error : NULL);
	rv |= saga_store_c_time(&c[12], inst->created_ms);
	rv |= saga_store_c_time(&c[13], inst->created_ms);
	rv |= saga_store_c_time(&c[14], inst->deadline_ms);
	rv |= saga_store_c_time(&c[15], inst->in_flight ? 0 : inst->next_at_ms);
	rv |= saga_store_c_i32(&c[16], (int32_t) inst->seq);
	rv |= saga_store_c_i32(&c[17], (int32_t) inst->phase_attempt0);
	if ((rv = saga_store_table_done(&st->ins, marks, rv)) != 0 ||
	    nw->key == NULL) {
		return (rv);
	}
	c = st->keys.cols;
	saga_store_table_mark(&st->keys, marks);
	rv |= saga_store_c_text(&c[0], nw->key);
	rv |= saga_store_c_bytes(&c[1], inst->id.b, 16);
	rv |= saga_store_c_text(&c[2], nw->saga_name);
	rv |= saga_store_c_bytes(&c[3], nw->input.ptr, nw->input.len);
	return (saga_store_table_done(&st->keys, marks, rv));
}

static size_t
saga_store_id_hash(const saga_id *id)
{
	uint64_t h;

	/* The last bytes of a UUIDv7 are random. */
	memcpy(&h, id->b + 8, sizeof(h));
	return ((size_t) h);
}

/* Returns the slot of id in the update index, growing the index as the
 * batch grows (kept under half full). */
static size_t *
saga_store_slot(saga_store *st, const saga_id *id)
{
	size_t i;

	if ((st->nupds + 1) * 2 > st->nslots) {
		size_t  n = st->nslots ? st->nslots * 2 : 1024;
		size_t *ns = calloc(n, sizeof(*ns));

		if (ns == NULL) {
			return (NULL);
		}
		for (size_t k = 0; k < st->nupds; k++) {
			size_t j = saga_store_id_hash(&st->upds[k].id) & (n - 1);

			while (ns[j] != 0) {
				j = (j + 1) & (n - 1);
			}
			ns[j] = k + 1;
		}
		free(st->slots);
		st->slots  = ns;
		st->nslots = n;
	}
	i = saga_store_id_hash(id) & (st->nslots - 1);
	while (st->slots[i] != 0 &&
	    !saga_id_equal(&st->upds[st->slots[i] - 1].id, id)) {
		i = (i + 1) & (st->nslots - 1);
	}
	return (&st->slots[i]);
}

int
saga_store_stage_update(saga_store *st, const saga_inst *inst,
    proto_raw context, int64_t now_ms, int64_t epoch, bool clear_cancel)
{
	size_t   *slot = saga_store_slot(st, &inst->id);
	saga_upd *u;

	if (slot == NULL) {
		return (SAGA_ENOMEM);
	}
	if (*slot == 0) {
		if (st->nupds == st->capupds) {
			size_t    cap = st->capupds ? st->capupds * 2 : 256;
			saga_upd *nu  = realloc(st->upds, cap * sizeof(*nu));

			if (nu == NULL) {
				return (SAGA_ENOMEM);
			}
			st->upds    = nu;
			st->capupds = cap;
		}
		u               = &st->upds[st->nupds++];
		*slot           = st->nupds;
		u->ctx_off      = SIZE_MAX;
		u->ctx_len      = 0;
		u->clear_cancel = false;
	} else {
		/* Changed again in this batch: the latest state wins; a
		 * context written earlier in the batch stays unless this
		 * change writes a newer one. */
		u = &st->upds[*slot - 1];
	}
	u->id         = inst->id;
	u->state      = inst->state;
	u->step       = inst->step;
	u->attempt    = inst->attempt;
	u->max_sent   = inst->max_sent;
	u->phase_ms   = inst->phase_start_ms;
	u->updated_ms = now_ms;
	u->next_at_ms = inst->in_flight ? 0 : inst->next_at_ms;
	u->seq        = inst->seq;
	u->attempt0   = inst->phase_attempt0;
	u->epoch      = epoch;
	u->clear_cancel |= clear_cancel;
	snprintf(u->last_error, sizeof(u->last_error), "%s", inst->last_error);
	if (context.len > 0) {
		u->ctx_off = st->ctx_arena.len;
		u->ctx_len = context.len;
		if (proto_buf_append(&st->ctx_arena, context.ptr,
		        context.len) != 0) {
			return (SAGA_ENOMEM);
		}
	}
	return (0);
}

int
saga_store_stage_log(saga_store *st, const saga_id *id, const saga_log *l)
{
	saga_col *c = st->events.cols;
	size_t    marks[STMT_MAX_COLS];
	int       rv = 0;

	saga_store_table_mark(&st->events, marks);
	rv |= saga_store_c_bytes(&c[0], id->b, 16);
	rv |= saga_store_c_i32(&c[1], (int32_t) l->seq);
	rv |= saga_store_c_time(&c[2], l->at_ms);
	rv |= l->step >= 0 ? saga_store_c_i32(&c[3], l->step)
	                   : saga_store_c_null(&c[3]);
	rv |= l->kind >= 0 ? saga_store_c_i32(&c[4], l->kind)
	                   : saga_store_c_null(&c[4]);
	rv |= l->attempt > 0 ? saga_store_c_i32(&c[5], (int32_t) l->attempt)
	                     : saga_store_c_null(&c[5]);
	rv |= saga_store_c_text(&c[6], saga_log_name(l->type));
	rv |= saga_store_c_text(
	    &c[7], l->outcome >= 0 ? saga_outcome_name(l->outcome) : NULL);
	rv |= l->output.len > 0
	    ? saga_store_c_bytes(&c[8], l->output.ptr, l->output.len)
	    : saga_store_c_null(&c[8]);
	rv |= saga_store_c_text(&c[9], l->error[0] ? l->error : NULL);
	rv |= l->duration_us >= 0 ? saga_store_c_i64(&c[10], l->duration_us)
	                          : saga_store_c_null(&c[10]);
	return (saga_store_table_done(&st->events, marks, rv));
}

/* Moves the staged updates into a table, in the order they were first
 * staged. */
static int
saga_store_updates_table(saga_store *st, saga_table *t)
{
	for (size_t i = 0; i < st->nupds; i++) {
		const saga_upd *u = &st->upds[i];
		saga_col       *c = t->cols;
		int             rv = 0;

		rv |= saga_store_c_bytes(&c[0], u->id.b, 16);
		rv |= saga_store_c_text(&c[1], saga_state_name(u->state));
		rv |= saga_store_c_i32(&c[2], u->step);
		rv |= saga_store_c_i32(&c[3], (int32_t) u->attempt);
		rv |= saga_store_c_i32(&c[4], u->max_sent);
		rv |= saga_store_c_time(&c[5], u->phase_ms);
		rv |= u->ctx_off != SIZE_MAX
		    ? saga_store_c_bytes(&c[6],
		          st->ctx_arena.data + u->ctx_off, u->ctx_len)
		    : saga_store_c_null(&c[6]);
		rv |= saga_store_c_text(
		    &c[7], u->last_error[0] ? u->last_error : NULL);
		rv |= saga_store_c_time(&c[8], u->updated_ms);
		rv |= saga_store_c_time(&c[9], u->next_at_ms);
		rv |= saga_store_c_i32(&c[10], (int32_t) u->seq);
		rv |= saga_store_c_i32(&c[11], (int32_t) u->attempt0);
		rv |= saga_store_c_i64(&c[12], u->epoch);
		rv |= saga_store_c_bytes(&c[13], u->clear_cancel ? "\1" : "\0", 1);
		if (rv != 0) {
			return (SAGA_ENOMEM);
		}
		t->rows++;
	}
	return (0);
}

size_t
saga_store_staged(const saga_store *st)
{
	return (st->ins.rows + st->nupds + st->events.rows);
}

bool
saga_store_in_flight(const saga_store *st)
{
	return (st->in_flight);
}

size_t
saga_store_batch_size(const saga_store *st)
{
	return (st->last_batch);
}

static Oid
saga_store_array_oid(Oid elem)
{
	switch (elem) {
	case OID_BOOL:
		return (OID_BOOL_ARRAY);
	case OID_BYTEA:
		return (OID_BYTEA_ARRAY);
	case OID_INT8:
		return (OID_INT8_ARRAY);
	case OID_INT4:
		return (OID_INT4_ARRAY);
	case OID_TEXT:
		return (OID_TEXT_ARRAY);
	case OID_TIMESTAMPTZ:
		return (OID_TIMESTAMPTZ_ARRAY);
	default:
		return (OID_UUID_ARRAY);
	}
}

/* Sends statement stmt with the columns cols (its ncols) as array
 * parameters (binary array format: ndim, has-null flag, element type,
 * then the dimension's length and lower bound, then the elements; an
 * empty array has no dimension). results binary asks for binary result
 * columns. */
static int
saga_store_send(saga_store *st, int stmt, const saga_col *const *cols,
    int results)
{
	const char *values[STMT_MAX_PARAMS];
	int         lengths[STMT_MAX_PARAMS];
	int         formats[STMT_MAX_PARAMS];
	size_t      offs[STMT_MAX_COLS];
	bool        null[STMT_MAX_COLS];
	int         n = cols ? saga_store_stmts[stmt].ncols : 0;
	int         nscalar = saga_store_stmts[stmt].nscalar;

	proto_buf_reset(&st->params);
	for (int i = 0; i < n; i++) {
		uint32_t hdr[5];
		size_t   hlen = cols[i]->n > 0 ? sizeof(hdr) : 3 * 4;

		if (i < nscalar) {
			/* One element: its bytes after its length are the
			 * value in binary. */
			uint32_t len;

			assert(cols[i]->n == 1 && cols[i]->data.len >= 4);
			memcpy(&len, cols[i]->data.data, 4);
			len        = ntohl(len);
			offs[i]    = SIZE_MAX;
			null[i]    = len == UINT32_MAX; /* -1 */
			lengths[i] = null[i] ? 0 : (int) len;
			formats[i] = 1;
			continue;
		}

		hdr[0]  = htonl(cols[i]->n > 0 ? 1 : 0);
		hdr[1]  = htonl(cols[i]->hasnull ? 1 : 0);
		hdr[2]  = htonl(saga_store_stmts[stmt].elem[i]);
		hdr[3]  = htonl(cols[i]->n);
		hdr[4]  = htonl(1);
		offs[i] = st->params.len;
		if (proto_buf_append(&st->params, hdr, hlen) != 0 ||
		    proto_buf_append(&st->params, cols[i]->data.data,
		        cols[i]->data.len) != 0) {
			saga_store_seterr(st, "sending a batch", "out of memory");
			return (SAGA_EDB);
		}
		lengths[i] = (int) (st->params.len - offs[i]);
		formats[i] = 1;
	}
	for (int i = 0; i < n; i++) {
		if (offs[i] != SIZE_MAX) {
			values[i] = (const char *) st->params.data + offs[i];
		} else {
			values[i] = null[i] ? NULL
			                    : (const char *) cols[i]->data.data + 4;
		}
	}
	if (cols != NULL && saga_store_stmts[stmt].owned) {
		values[n]  = st->owner;
		lengths[n] = 0;
		formats[n] = 0;
		n++;
		values[n]  = st->lease_text;
		lengths[n] = 0;
		formats[n] = 0;
		n++;
		values[n]  = st->renew_text;
		lengths[n] = 0;
		formats[n] = 0;
		n++;
	}
	if (!PQsendQueryPrepared(st->conn, saga_store_stmts[stmt].name, n,
	        values, lengths, formats, results)) {
		saga_store_seterr(st, "sending a batch", NULL);
		return (SAGA_EDB);
	}
	return (0);
}

/* The columns of a table, as saga_store_send takes them. */
static void
saga_store_cols(const saga_table *t, const saga_col **cols, int n)
{
	for (int i = 0; i < n; i++) {
		cols[i] = &t->cols[i];
	}
}

/* Remembers an id in a growable array. */
static int
saga_store_ids_add(saga_id **v, size_t *n, size_t *cap, const saga_id *id)
{
	if (*n == *cap) {
		size_t   c  = *cap ? *cap * 2 : 256;
		saga_id *nv = realloc(*v, c * sizeof(*nv));

		if (nv == NULL) {
			return (SAGA_ENOMEM);
		}
		*v   = nv;
		*cap = c;
	}
	(*v)[(*n)++] = *id;
	return (0);
}

bool
saga_store_commit_sent(const saga_store *st)
{
	return (st->commit_sent);
}

int
saga_store_flush(saga_store *st)
{
	saga_table     upd;
	const saga_col *cols[STMT_MAX_COLS];
	size_t         sent = 0;
	int            rv;

	if (st->in_flight || saga_store_staged(st) == 0) {
		return (0);
	}
	if (!st->pipeline) {
		/* Its statements were never prepared. */
		saga_store_seterr(st, "flush", "saga_store_pipeline_start was "
		                               "not called on this connection");
		return (SAGA_ESTATE);
	}
	memset(&upd, 0, sizeof(upd));
	st->nsent = st->ndone = st->nlost = 0;
	st->commit_sent = false;
	if ((rv = saga_store_updates_table(st, &upd)) != 0) {
		saga_store_seterr(st, "staging a batch", "out of memory");
		rv = SAGA_EDB;
		goto done;
	}
	for (size_t i = 0; i < st->nupds; i++) {
		if (saga_store_ids_add(&st->sent_ids, &st->nsent, &st->capsent,
		        &st->upds[i].id) != 0) {
			saga_store_seterr(st, "staging a batch",
			    "out of memory");
			rv = SAGA_EDB;
			goto done;
		}
	}
	if ((rv = saga_store_send(st, STMT_BEGIN, NULL, 0)) != 0) {
		goto done;
	}
	sent++;
	/* Sagas before their updates, and their events before their keys
	 * (STMT_KEY deletes those of a saga whose key was taken). */
	if (st->ins.rows > 0) {
		saga_store_cols(&st->ins, cols, saga_store_stmts[STMT_INSERT].ncols);
		if ((rv = saga_store_send(st, STMT_INSERT, cols, 0)) != 0) {
			goto done;
		}
		sent++;
	}
	st->flight_write = 0;
	st->flight_key   = 0;
	if (upd.rows > 0) {
		/* Updates (0..13), events (14..24), the new sagas' ids (25). */
		saga_store_cols(&upd, cols, 14);
		saga_store_cols(&st->events, cols + 14, 11);
		cols[25] = &st->ins.cols[0];
		if ((rv = saga_store_send(st,
		         upd.rows == 1 ? STMT_WRITE1 : STMT_WRITE, cols, 1)) !=
		    0) {
			goto done;
		}
		st->flight_write = sent;
		sent++;
	} else if (st->events.rows > 0) {
		saga_store_cols(&st->events, cols, 11);
		cols[11] = &st->ins.cols[0];
		if ((rv = saga_store_send(st, STMT_EVENTS, cols, 0)) != 0) {
			goto done;
		}
		sent++;
	}
	if (st->keys.rows > 0) {
		saga_store_cols(&st->keys, cols, saga_store_stmts[STMT_KEY].ncols);
		if ((rv = saga_store_send(st, STMT_KEY, cols, 1)) != 0) {
			goto done;
		}
		st->flight_key = sent;
		sent++;
	}
	if ((rv = saga_store_send(st, STMT_COMMIT, NULL, 0)) != 0) {
		goto done;
	}
	/* From here on, what libpq has written may hold the COMMIT, which
	 * the server runs without waiting for the Sync. */
	st->commit_sent = true;
	sent++;
	if (PQpipelineSync(st->conn) != 1) {
		saga_store_seterr(st, "sending a batch", NULL);
		rv = SAGA_EDB;
		goto done;
	}
	st->in_flight        = true;
	st->flight_n         = sent;
	st->flight_done      = 0;
	st->flight_error     = false;
	st->flight_commit_ok = false;
	st->last_batch       = saga_store_staged(st);
	saga_store_table_reset(&st->ins);
	saga_store_table_reset(&st->keys);
	saga_store_table_reset(&st->events);
	st->nupds = 0;
	if (st->slots != NULL) {
		memset(st->slots, 0, st->nslots * sizeof(*st->slots));
	}
	proto_buf_reset(&st->ctx_arena);
	if (PQflush(st->conn) < 0) {
		saga_store_seterr(st, "sending a batch", NULL);
		rv = SAGA_EDB;
	}
done:
	for (int c = 0; c < STMT_MAX_COLS; c++) {
		proto_buf_fini(&upd.cols[c].data);
	}
	return (rv);
}

/* The sagas of the committed batch whose update was fenced off (another
 * instance owns them now), in *ids (valid until the next flush). */
size_t
saga_store_fenced(const saga_store *st, const saga_id **ids)
{
	*ids = st->fenced;
	return (st->nfenced);
}

/* The new sagas of the committed batch that are not in the log: another
 * START committed their key first (STMT_KEY), in *ids (valid until the
 * next flush). */
size_t
saga_store_lost(const saga_store *st, const saga_id **ids)
{
	*ids = st->lost;
	return (st->nlost);
}

static int
saga_store_id_cmp(const void *a, const void *b)
{
	return (memcmp(a, b, sizeof(saga_id)));
}

/* Computes fenced = sent - done once the batch committed: done sorted,
 * then a binary search per id sent (a batch can hold tens of thousands
 * of sagas; this runs on the engine thread). */
static int
saga_store_compute_fenced(saga_store *st)
{
	size_t cap = 0;

	free(st->fenced);
	st->fenced  = NULL;
	st->nfenced = 0;
	if (st->ndone > 1) {
		qsort(st->done_ids, st->ndone, sizeof(saga_id),
		    saga_store_id_cmp);
	}
	for (size_t i = 0; i < st->nsent; i++) {
		if (st->ndone > 0 &&
		    bsearch(&st->sent_ids[i], st->done_ids, st->ndone,
		        sizeof(saga_id), saga_store_id_cmp) != NULL) {
			continue;
		}
		if (saga_store_ids_add(&st->fenced, &st->nfenced, &cap,
		        &st->sent_ids[i]) != 0) {
			return (SAGA_ENOMEM);
		}
	}
	return (0);
}

bool
saga_store_want_write(const saga_store *st)
{
	return (PQisnonblocking(st->conn) && PQflush(st->conn) == 1);
}

saga_store_result
saga_store_poll(saga_store *st)
{
	if (!st->in_flight) {
		/* Idle: the socket is readable only if the server said
		 * something (a notice) or went away; find out which. */
		if (PQconsumeInput(st->conn) == 0 ||
		    PQstatus(st->conn) != CONNECTION_OK) {
			saga_store_seterr(st, "the database connection", NULL);
			return (SAGA_STORE_FAILED);
		}
		return (SAGA_STORE_PENDING);
	}
	if (PQflush(st->conn) < 0 || PQconsumeInput(st->conn) == 0) {
		saga_store_seterr(st, "reading a batch's results", NULL);
		st->in_flight = false;
		return (SAGA_STORE_FAILED);
	}
	while (!PQisBusy(st->conn)) {
		PGresult      *res = PQgetResult(st->conn);
		ExecStatusType s;

		if (res == NULL) {
			/* End of one statement's results. */
			st->flight_done++;
			if (st->flight_done > st->flight_n) {
				saga_store_seterr(st, "reading a batch",
				    "more results than statements");
				st->in_flight = false;
				return (SAGA_STORE_FAILED);
			}
			continue;
		}
		s = PQresultStatus(res);
		if (s == PGRES_PIPELINE_SYNC) {
			bool ok = !st->flight_error && st->flight_commit_ok &&
			    st->flight_done == st->flight_n;

			PQclear(res);
			st->in_flight = false;
			if (!ok && !st->flight_error) {
				saga_store_seterr(st, "committing a batch",
				    "the COMMIT did not succeed");
			}
			if (ok && saga_store_compute_fenced(st) != 0) {
				saga_store_seterr(st, "committing a batch",
				    "out of memory");
				return (SAGA_STORE_FAILED);
			}
			return (ok ? SAGA_STORE_COMMITTED : SAGA_STORE_FAILED);
		}
		if (s == PGRES_FATAL_ERROR) {
			if (!st->flight_error) {
				saga_store_seterr(st, "batch statement failed",
				    PQresultErrorMessage(res));
			}
			st->flight_error = true;
		} else if (s == PGRES_PIPELINE_ABORTED) {
			st->flight_error = true;
		} else if (s == PGRES_TUPLES_OK &&
		    ((st->flight_write != 0 &&
		         st->flight_done == st->flight_write) ||
		        (st->flight_key != 0 &&
		            st->flight_done == st->flight_key))) {
			/* The ids the fenced UPDATE changed, or the new sagas
			 * STMT_KEY deleted (binary uuid). */
			bool key = st->flight_done == st->flight_key;

			for (int r = 0; r < PQntuples(res); r++) {
				saga_id id;
				int     rv;

				if (PQgetlength(res, r, 0) != 16) {
					continue;
				}
				memcpy(id.b, PQgetvalue(res, r, 0), 16);
				rv = key ? saga_store_ids_add(&st->lost,
				               &st->nlost, &st->caplost, &id)
				         : saga_store_ids_add(&st->done_ids,
				               &st->ndone, &st->capdone, &id);
				if (rv != 0) {
					st->flight_error = true;
					saga_store_seterr(st, "reading a batch",
					    "out of memory");
				}
			}
		} else if (st->flight_done == st->flight_n - 1 &&
		    s == PGRES_COMMAND_OK &&
		    strcmp(PQcmdStatus(res), "COMMIT") == 0) {
			st->flight_commit_ok = true;
		}
		PQclear(res);
	}
	if (PQstatus(st->conn) != CONNECTION_OK) {
		saga_store_seterr(st, "reading a batch's results", NULL);
		st->in_flight = false;
		return (SAGA_STORE_FAILED);
	}
	return (SAGA_STORE_PENDING);
}
