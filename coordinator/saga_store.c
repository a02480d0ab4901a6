/* SPDX-License-Identifier: MIT */
/*
 * saga_store: PostgreSQL access of the coordinator. See saga_store.h.
 *
 * DESIGN: staged statements live in our own arena (stage) until the batch
 * in flight finishes, because a statement queued in libpq behind another
 * Sync would run even if the batch before it failed. A batch is sent as
 * BEGIN, the statements, COMMIT and a Sync; its results are read in order:
 * one per statement followed by a NULL, then the PIPELINE_SYNC result. The
 * batch counts as committed only if the COMMIT result is COMMAND_OK with
 * the status "COMMIT" (after an error PostgreSQL answers a COMMIT with
 * "ROLLBACK", and in pipeline mode the statements after an error come back
 * as PIPELINE_ABORTED).
 *
 * Parameters are sent in binary: uuid as 16 bytes, integers big-endian,
 * timestamptz as microseconds since 2000-01-01, text and bytea as bytes.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "saga_err.h"
#include "saga_store.h"
#include "sql_migrate.h"

/* Type OIDs of the parameters (pg_type.h). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25
#define OID_TIMESTAMPTZ 1184
#define OID_UUID 2950

/* Unix ms of the PostgreSQL epoch, 2000-01-01T00:00:00Z. */
#define PG_EPOCH_MS 946684800000LL

enum {
	STMT_BEGIN,
	STMT_INSERT,
	STMT_UPDATE,
	STMT_EVENT,
	STMT_KEY,
	STMT_COMMIT,
	STMT_COUNT,
};

#define STMT_MAX_PARAMS 18

static const struct {
	const char *name;
	const char *sql;
	int         nparams;
	Oid         types[STMT_MAX_PARAMS];
} saga_store_stmts[STMT_COUNT] = {
	[STMT_BEGIN]  = { "saga_begin", "BEGIN", 0, { 0 } },
	[STMT_INSERT] = { "saga_insert",
	    "INSERT INTO saga_instance (id, saga_name, saga_version, state,"
	    " current_step, attempt, max_sent_step, phase_started_at,"
	    " context, business_key, traceparent, last_error, created_at,"
	    " updated_at, deadline_at, next_attempt_at, event_seq,"
	    " phase_attempt0)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
	    " $13, $14, $15, $16, $17, $18)",
	    18,
	    { OID_UUID, OID_TEXT, OID_INT4, OID_TEXT, OID_INT4, OID_INT4,
	        OID_INT4, OID_TIMESTAMPTZ, OID_BYTEA, OID_TEXT, OID_TEXT,
	        OID_TEXT, OID_TIMESTAMPTZ, OID_TIMESTAMPTZ, OID_TIMESTAMPTZ,
	        OID_TIMESTAMPTZ, OID_INT4, OID_INT4 } },
	[STMT_UPDATE] = { "saga_update",
	    "UPDATE saga_instance SET state = $2, current_step = $3,"
	    " attempt = $4, max_sent_step = $5, phase_started_at = $6,"
	    " context = coalesce($7, context), last_error = $8,"
	    " updated_at = $9, next_attempt_at = $10, event_seq = $11,"
	    " phase_attempt0 = $12"
	    " WHERE id = $1",
	    12,
	    { OID_UUID, OID_TEXT, OID_INT4, OID_INT4, OID_INT4,
	        OID_TIMESTAMPTZ, OID_BYTEA, OID_TEXT, OID_TIMESTAMPTZ,
	        OID_TIMESTAMPTZ, OID_INT4, OID_INT4 } },
	[STMT_EVENT] = { "saga_event",
	    "INSERT INTO saga_event (saga_id, seq, at, step, kind, attempt,"
	    " event, outcome, output, error, duration_us)"
	    " VALUES ($1, $2, $3, $4, $5::integer::smallint, $6, $7, $8, $9,"
	    " $10, $11)",
	    11,
	    { OID_UUID, OID_INT4, OID_TIMESTAMPTZ, OID_INT4, OID_INT4,
	        OID_INT4, OID_TEXT, OID_TEXT, OID_BYTEA, OID_TEXT,
	        OID_INT8 } },
	[STMT_KEY] = { "saga_key",
	    "INSERT INTO saga_start_key (key, saga_id, request_hash)"
	    " VALUES ($1, $2, sha256(convert_to($3, 'UTF8') || '\\x00'::bytea"
	    " || $4))",
	    4, { OID_TEXT, OID_UUID, OID_TEXT, OID_BYTEA } },
	[STMT_COMMIT] = { "saga_commit", "COMMIT", 0, { 0 } },
};

/* One staged statement: its parameters are (offset, length) pairs in the
 * stage arena; offset SIZE_MAX is NULL. */
typedef struct saga_stmt {
	int    stmt;
	int    nparams;
	size_t off[STMT_MAX_PARAMS];
	int    len[STMT_MAX_PARAMS];
} saga_stmt;

struct saga_store {
	PGconn    *conn;
	char       err[512];
	bool       pipeline;
	/* Staged: the next batch. */
	proto_buf  arena;
	saga_stmt *stmts;
	size_t     nstmts;
	size_t     cap;
	/* In flight. */
	bool       in_flight;
	size_t     flight_n;    /* statements sent, BEGIN and COMMIT included */
	size_t     flight_done; /* statements whose results were read */
	bool       flight_error;
	bool       flight_commit_ok;
	size_t     last_batch;
};

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
	proto_buf_fini(&r->context);
	memset(r, 0, sizeof(*r));
}

int
saga_store_open(
    saga_store **out, const char *conninfo, char *err, size_t errlen)
{
	saga_store *st;
	int         have = 0;
	int         want = coordinator_migrations[coordinator_migrations_count -
                1].version;
	int         rv;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		return (SAGA_ENOMEM);
	}
	proto_buf_init(&st->arena);
	st->conn = PQconnectdb(conninfo);
	if (PQstatus(st->conn) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
		    PQerrorMessage(st->conn));
		err[strcspn(err, "\n")] = '\0';
		saga_store_free(st);
		return (SAGA_EDB);
	}
	if ((rv = sql_migrate_version(st->conn, "coordinator", &have, err,
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
	/* Times are exchanged in UTC; a session time zone must not shift
	 * the text form of what is loaded. */
	PQclear(PQexec(st->conn, "SET TIME ZONE 'UTC'"));
	for (int i = 0; i < STMT_COUNT; i++) {
		PGresult *res = PQprepare(st->conn, saga_store_stmts[i].name,
		    saga_store_stmts[i].sql, saga_store_stmts[i].nparams,
		    saga_store_stmts[i].types);

		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "preparing %s: %s",
			    saga_store_stmts[i].name,
			    PQresultErrorMessage(res));
			err[strcspn(err, "\n")] = '\0';
			PQclear(res);
			saga_store_free(st);
			return (SAGA_EDB);
		}
		PQclear(res);
	}
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
	proto_buf_fini(&st->arena);
	free(st->stmts);
	free(st);
}

bool
saga_store_ok(const saga_store *st)
{
	return (PQstatus(st->conn) == CONNECTION_OK);
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
	" event_seq, phase_attempt0"

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
saga_store_pipeline_start(saga_store *st)
{
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

/* Staging: parameters are appended to the arena in binary form. */
static saga_stmt *
saga_store_stage(saga_store *st, int stmt)
{
	saga_stmt *s;

	if (st->nstmts == st->cap) {
		size_t     cap = st->cap ? st->cap * 2 : 256;
		saga_stmt *ns  = realloc(st->stmts, cap * sizeof(*ns));

		if (ns == NULL) {
			return (NULL);
		}
		st->stmts = ns;
		st->cap   = cap;
	}
	s          = &st->stmts[st->nstmts];
	s->stmt    = stmt;
	s->nparams = 0;
	return (s);
}

static int
saga_store_p_bytes(saga_store *st, saga_stmt *s, const void *p, size_t n)
{
	s->off[s->nparams] = st->arena.len;
	s->len[s->nparams] = (int) n;
	s->nparams++;
	return (proto_buf_append(&st->arena, p, n));
}

static int
saga_store_p_null(saga_stmt *s)
{
	s->off[s->nparams] = SIZE_MAX;
	s->len[s->nparams] = 0;
	s->nparams++;
	return (0);
}

static int
saga_store_p_i32(saga_store *st, saga_stmt *s, int32_t v)
{
	uint32_t be = htonl((uint32_t) v);

	return (saga_store_p_bytes(st, s, &be, 4));
}

static int
saga_store_p_i64(saga_store *st, saga_stmt *s, int64_t v)
{
	uint8_t  b[8];
	uint64_t u = (uint64_t) v;

	for (int i = 0; i < 8; i++) {
		b[i] = (uint8_t) (u >> (56 - 8 * i));
	}
	return (saga_store_p_bytes(st, s, b, 8));
}

/* A time in Unix ms as timestamptz; 0 is NULL. */
static int
saga_store_p_time(saga_store *st, saga_stmt *s, int64_t ms)
{
	if (ms == 0) {
		return (saga_store_p_null(s));
	}
	return (saga_store_p_i64(st, s, (ms - PG_EPOCH_MS) * 1000));
}

static int
saga_store_p_text(saga_store *st, saga_stmt *s, const char *t)
{
	if (t == NULL) {
		return (saga_store_p_null(s));
	}
	return (saga_store_p_bytes(st, s, t, strlen(t)));
}

/* Commits or rolls back the statement being staged. */
static int
saga_store_staged_done(saga_store *st, size_t mark, int rv)
{
	if (rv != 0) {
		st->arena.len = mark;
		return (SAGA_ENOMEM);
	}
	st->nstmts++;
	return (0);
}

int
saga_store_stage_insert(
    saga_store *st, const saga_inst *inst, const saga_store_new *nw)
{
	size_t     mark = st->arena.len;
	saga_stmt *s;
	int        rv = 0;

	if ((s = saga_store_stage(st, STMT_INSERT)) == NULL) {
		return (SAGA_ENOMEM);
	}
	rv |= saga_store_p_bytes(st, s, inst->id.b, 16);
	rv |= saga_store_p_text(st, s, nw->saga_name);
	rv |= saga_store_p_i32(st, s, nw->saga_version);
	rv |= saga_store_p_text(st, s, saga_state_name(inst->state));
	rv |= saga_store_p_i32(st, s, inst->step);
	rv |= saga_store_p_i32(st, s, (int32_t) inst->attempt);
	rv |= saga_store_p_i32(st, s, inst->max_sent);
	rv |= saga_store_p_time(st, s, inst->phase_start_ms);
	rv |= saga_store_p_bytes(st, s, nw->context.ptr, nw->context.len);
	rv |= saga_store_p_text(st, s, nw->business_key);
	rv |= saga_store_p_text(st, s, nw->traceparent);
	rv |= saga_store_p_text(
	    st, s, inst->last_error[0] ? inst->last_error : NULL);
	rv |= saga_store_p_time(st, s, inst->created_ms);
	rv |= saga_store_p_time(st, s, inst->created_ms);
	rv |= saga_store_p_time(st, s, inst->deadline_ms);
	rv |= saga_store_p_time(
	    st, s, inst->in_flight ? 0 : inst->next_at_ms);
	rv |= saga_store_p_i32(st, s, (int32_t) inst->seq);
	rv |= saga_store_p_i32(st, s, (int32_t) inst->phase_attempt0);
	if ((rv = saga_store_staged_done(st, mark, rv)) != 0 ||
	    nw->key == NULL) {
		return (rv);
	}
	mark = st->arena.len;
	if ((s = saga_store_stage(st, STMT_KEY)) == NULL) {
		return (SAGA_ENOMEM);
	}
	rv |= saga_store_p_text(st, s, nw->key);
	rv |= saga_store_p_bytes(st, s, inst->id.b, 16);
	rv |= saga_store_p_text(st, s, nw->saga_name);
	rv |= saga_store_p_bytes(st, s, nw->input.ptr, nw->input.len);
	return (saga_store_staged_done(st, mark, rv));
}

int
saga_store_stage_update(saga_store *st, const saga_inst *inst,
    proto_raw context, int64_t now_ms)
{
	size_t     mark = st->arena.len;
	saga_stmt *s;
	int        rv = 0;

	if ((s = saga_store_stage(st, STMT_UPDATE)) == NULL) {
		return (SAGA_ENOMEM);
	}
	rv |= saga_store_p_bytes(st, s, inst->id.b, 16);
	rv |= saga_store_p_text(st, s, saga_state_name(inst->state));
	rv |= saga_store_p_i32(st, s, inst->step);
	rv |= saga_store_p_i32(st, s, (int32_t) inst->attempt);
	rv |= saga_store_p_i32(st, s, inst->max_sent);
	rv |= saga_store_p_time(st, s, inst->phase_start_ms);
	if (context.len > 0) {
		rv |= saga_store_p_bytes(st, s, context.ptr, context.len);
	} else {
		rv |= saga_store_p_null(s);
	}
	rv |= saga_store_p_text(
	    st, s, inst->last_error[0] ? inst->last_error : NULL);
	rv |= saga_store_p_time(st, s, now_ms);
	rv |= saga_store_p_time(
	    st, s, inst->in_flight ? 0 : inst->next_at_ms);
	rv |= saga_store_p_i32(st, s, (int32_t) inst->seq);
	rv |= saga_store_p_i32(st, s, (int32_t) inst->phase_attempt0);
	return (saga_store_staged_done(st, mark, rv));
}

int
saga_store_stage_log(saga_store *st, const saga_id *id, const saga_log *l)
{
	size_t     mark = st->arena.len;
	saga_stmt *s;
	int        rv = 0;

	if ((s = saga_store_stage(st, STMT_EVENT)) == NULL) {
		return (SAGA_ENOMEM);
	}
	rv |= saga_store_p_bytes(st, s, id->b, 16);
	rv |= saga_store_p_i32(st, s, (int32_t) l->seq);
	rv |= saga_store_p_time(st, s, l->at_ms);
	rv |= l->step >= 0 ? saga_store_p_i32(st, s, l->step)
	                   : saga_store_p_null(s);
	rv |= l->kind >= 0 ? saga_store_p_i32(st, s, l->kind)
	                   : saga_store_p_null(s);
	rv |= l->attempt > 0 ? saga_store_p_i32(st, s, (int32_t) l->attempt)
	                     : saga_store_p_null(s);
	rv |= saga_store_p_text(st, s, saga_log_name(l->type));
	rv |= saga_store_p_text(
	    st, s, l->outcome >= 0 ? saga_outcome_name(l->outcome) : NULL);
	rv |= l->output.len > 0
	    ? saga_store_p_bytes(st, s, l->output.ptr, l->output.len)
	    : saga_store_p_null(s);
	rv |= saga_store_p_text(st, s, l->error[0] ? l->error : NULL);
	rv |= l->duration_us >= 0 ? saga_store_p_i64(st, s, l->duration_us)
	                          : saga_store_p_null(s);
	return (saga_store_staged_done(st, mark, rv));
}

size_t
saga_store_staged(const saga_store *st)
{
	return (st->nstmts);
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

static int
saga_store_send(saga_store *st, int stmt, const saga_stmt *s)
{
	const char *values[STMT_MAX_PARAMS];
	int         formats[STMT_MAX_PARAMS];
	int         n = s ? s->nparams : 0;

	for (int i = 0; i < n; i++) {
		values[i]  = s->off[i] == SIZE_MAX
		     ? NULL
		     : (const char *) st->arena.data + s->off[i];
		formats[i] = 1;
	}
	if (!PQsendQueryPrepared(st->conn, saga_store_stmts[stmt].name, n,
	        values, s ? s->len : NULL, formats, 0)) {
		saga_store_seterr(st, "sending a batch", NULL);
		return (SAGA_EDB);
	}
	return (0);
}

int
saga_store_flush(saga_store *st)
{
	int rv;

	if (st->in_flight || st->nstmts == 0) {
		return (0);
	}
	if ((rv = saga_store_send(st, STMT_BEGIN, NULL)) != 0) {
		return (rv);
	}
	for (size_t i = 0; i < st->nstmts; i++) {
		if ((rv = saga_store_send(st, st->stmts[i].stmt,
		         &st->stmts[i])) != 0) {
			return (rv);
		}
	}
	if ((rv = saga_store_send(st, STMT_COMMIT, NULL)) != 0) {
		return (rv);
	}
	if (PQpipelineSync(st->conn) != 1) {
		saga_store_seterr(st, "sending a batch", NULL);
		return (SAGA_EDB);
	}
	st->in_flight        = true;
	st->flight_n         = st->nstmts + 2;
	st->flight_done      = 0;
	st->flight_error     = false;
	st->flight_commit_ok = false;
	st->last_batch       = st->nstmts;
	st->nstmts           = 0;
	st->arena.len        = 0;
	if (PQflush(st->conn) < 0) {
		saga_store_seterr(st, "sending a batch", NULL);
		return (SAGA_EDB);
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
