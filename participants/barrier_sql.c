/* SPDX-License-Identifier: MIT */
/*
 * barrier_sql: the barrier's transaction on PostgreSQL. See barrier_sql.h.
 *
 * Why the reads come after the inserts: in READ COMMITTED, an INSERT ...
 * ON CONFLICT DO NOTHING that meets a row inserted by a transaction still
 * in progress waits for it; if that transaction commits, the insert does
 * nothing, and the next statement (a new snapshot) sees the committed row.
 * So the insert is the lock that serialises concurrent deliveries of one
 * command, and the SELECT that follows a conflict only reads a row that
 * can no longer change. A SELECT before the insert could see no row and
 * decide wrongly.
 *
 * In a batch the same holds, with two more cases. A row written earlier
 * in the same transaction (a duplicate, or an action and its compensation
 * in one batch) conflicts without waiting, and is final too: its command
 * was settled before the next one began. A row written by another batch
 * belongs to a subtransaction (the command's savepoint): if that command
 * was rolled back to its savepoint, the waiting insert goes on at once
 * and inserts; if it was kept, the insert waits for the other batch's
 * COMMIT (or ROLLBACK), as it would for a transaction of one command.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "barrier_sql.h"
#include "saga_err.h"
#include "sql_durable.h"

/* The savepoint of one command of a batch (released, or rolled back to
 * and released, before the next command sets its own), and the one inside
 * it that brackets the handler's work. */
#define BARRIER_CMD_SAVEPOINT "saga_barrier_cmd"
#define BARRIER_SAVEPOINT     "saga_barrier_handler"

static const struct {
	const char *name;
	const char *sql;
	int         nparams;
} barrier_stmts[] = {
	{ "saga_barrier_insert",
	    "INSERT INTO saga_barrier (saga_id, step, kind, outcome) "
	    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
	    4 },
	{ "saga_barrier_read",
	    "SELECT outcome, output, error FROM saga_barrier "
	    "WHERE saga_id = $1 AND step = $2 AND kind = $3",
	    3 },
	/* The two updates of a settle fail (division by zero, SQLSTATE
	 * 22012) when the row is gone, instead of changing nothing: they
	 * go in one round trip with what follows them (the next command,
	 * the COMMIT), which an error stops and a row count would not. */
	{ "saga_barrier_output",
	    "WITH u AS (UPDATE saga_barrier SET output = $4 "
	    "WHERE saga_id = $1 AND step = $2 AND kind = $3 RETURNING 1) "
	    "SELECT 1 / count(*) FROM u",
	    4 },
	{ "saga_barrier_failed",
	    "WITH u AS (UPDATE saga_barrier SET outcome = 'failed', "
	    "error = $4 "
	    "WHERE saga_id = $1 AND step = $2 AND kind = $3 RETURNING 1) "
	    "SELECT 1 / count(*) FROM u",
	    4 },
	/* The same check for an ok without output, which writes nothing. */
	{ "saga_barrier_check",
	    "SELECT 1 / count(*) FROM saga_barrier "
	    "WHERE saga_id = $1 AND step = $2 AND kind = $3",
	    3 },
	/* Every row of up to $2 sagas whose newest row is older than the
	 * retention ($1 seconds). A saga with a recent row keeps all its
	 * rows: the barrier of a running saga is never cut in half. */
	{ "saga_barrier_purge",
	    "DELETE FROM saga_barrier WHERE saga_id IN ("
	    " SELECT o.saga_id FROM saga_barrier o"
	    " WHERE o.created_at < now() - make_interval(secs => $1)"
	    " AND NOT EXISTS (SELECT 1 FROM saga_barrier n"
	    "  WHERE n.saga_id = o.saga_id"
	    "  AND n.created_at >= now() - make_interval(secs => $1))"
	    " LIMIT $2)",
	    2 },
};

static int
barrier_err(char *err, size_t errlen, const char *what, const char *msg)
{
	if (err != NULL && errlen > 0) {
		snprintf(err, errlen, "%s: %s", what,
		    msg != NULL && msg[0] != '\0' ? msg : "unknown error");
		/* libpq messages end in a newline: keep one line. */
		err[strcspn(err, "\n")] = '\0';
	}
	return (SAGA_EDB);
}

/* Runs a parameterless command; returns 0 or SAGA_EDB. */
static int
barrier_exec(PGconn *db, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQexec(db, sql);
	int       rv  = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rv = barrier_err(err, errlen, sql,
		    res != NULL ? PQresultErrorMessage(res)
		                : PQerrorMessage(db));
	}
	PQclear(res);
	return (rv);
}

/* Reads what a handler may have left running (asynchronous API). Returns
 * false if the connection is stuck (a COPY left open): it is then unusable
 * and the transaction lost. */
static bool
barrier_drain(PGconn *db)
{
	PGresult *res;

	while ((res = PQgetResult(db)) != NULL) {
		ExecStatusType st = PQresultStatus(res);

		PQclear(res);
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
		    st == PGRES_COPY_BOTH) {
			return (false);
		}
	}
	return (true);
}

/* Undoes the current command: rolls its work back to its savepoint and
 * drops the savepoint, or, alone in its transaction, rolls the
 * transaction back. Errors are not reported: if this fails (connection
 * lost, the savepoint gone because the transaction was ended behind our
 * back), the transaction is not usable any more, which
 * barrier_sql_tx_usable says. */
static void
barrier_cmd_undo(PGconn *db, bool alone)
{
	PGTransactionStatusType st;

	if (alone) {
		barrier_sql_tx_rollback(db);
		return;
	}
	if (!barrier_drain(db) || PQstatus(db) != CONNECTION_OK) {
		return;
	}
	st = PQtransactionStatus(db);
	if (st != PQTRANS_INTRANS && st != PQTRANS_INERROR) {
		/* No transaction left to go back into. */
		return;
	}
	PQclear(PQexec(db,
	    "ROLLBACK TO SAVEPOINT " BARRIER_CMD_SAVEPOINT
	    "; RELEASE SAVEPOINT " BARRIER_CMD_SAVEPOINT));
}

/* The parameters of a prepared barrier statement: the key's three (with
 * kind in place of the key's), and an optional fourth (text, or binary
 * when bin). Returns their number. */
typedef struct barrier_params {
	char        step[16], kind[4];
	const char *vals[4];
	int         lens[4];
	int         formats[4];
} barrier_params;

static int
barrier_params_set(barrier_params *bp, const barrier_key *k, uint32_t kind,
    const char *p4, size_t p4len, bool bin)
{
	snprintf(bp->step, sizeof(bp->step), "%u", k->step);
	snprintf(bp->kind, sizeof(bp->kind), "%u", kind);
	bp->vals[0]    = k->id;
	bp->vals[1]    = bp->step;
	bp->vals[2]    = bp->kind;
	bp->vals[3]    = p4;
	bp->lens[0]    = bp->lens[1] = bp->lens[2] = 0;
	bp->lens[3]    = (int) p4len;
	bp->formats[0] = bp->formats[1] = bp->formats[2] = 0;
	bp->formats[3] = bin ? 1 : 0;
	return (p4 != NULL || bin ? 4 : 3);
}

/* Runs prepared statement name with the key's three parameters and an
 * optional fourth (text, or binary when bin). */
static PGresult *
barrier_run(PGconn *db, const char *name, const barrier_key *k,
    uint32_t kind, const char *p4, size_t p4len, bool bin, int result_fmt)
{
	barrier_params bp;
	int            n = barrier_params_set(&bp, k, kind, p4, p4len, bin);

	return (PQexecPrepared(db, name, n, bp.vals, bp.lens, bp.formats,
	    result_fmt));
}

/* One statement of a round trip: a parameterless command (sql), or the
 * prepared statement name with the parameters of key (NULL: the round's
 * key) and kind, p4 as for barrier_run. */
typedef struct barrier_stmt {
	const char        *sql;
	const char        *name;
	const barrier_key *key;
	uint32_t           kind;
	const char *p4;
	size_t      p4len;
	bool        bin;
	PGresult   *res; /* its result, after barrier_round */
} barrier_stmt;

/* The most statements of a command's own in one round trip. */
#define BARRIER_ROUND_MAX 6

/* Runs the n statements of s in one round trip (libpq pipeline mode: all
 * sent, then one Sync, then the results read), each one's result in its
 * res; after a failed statement, the next ones' results are
 * PGRES_PIPELINE_ABORTED. Returns 0, or SAGA_EDB when the round trip
 * itself failed (connection lost, or left in pipeline mode by a handler):
 * then no res is set and the connection stays in pipeline mode, which
 * makes barrier_sql_tx_usable false. */
static int
barrier_round(PGconn *db, const barrier_key *k, barrier_stmt *s, int n,
    char *err, size_t errlen)
{
	PGresult *res;
	int       i;

	for (i = 0; i < n; i++) {
		s[i].res = NULL;
	}
	if (PQpipelineStatus(db) != PQ_PIPELINE_OFF) {
		return (barrier_err(err, errlen, "barrier",
		    "the connection was left in pipeline mode"));
	}
	if (PQenterPipelineMode(db) != 1) {
		return (barrier_err(err, errlen, "barrier",
		    PQerrorMessage(db)));
	}
	for (i = 0; i < n; i++) {
		barrier_params bp;
		int            ok;

		if (s[i].sql != NULL) {
			ok = PQsendQueryParams(db, s[i].sql, 0, NULL, NULL, NULL,
			    NULL, 0);
		} else {
			int np = barrier_params_set(&bp,
			    s[i].key != NULL ? s[i].key : k, s[i].kind, s[i].p4,
			    s[i].p4len, s[i].bin);

			ok = PQsendQueryPrepared(db, s[i].name, np, bp.vals,
			    bp.lens, bp.formats, 0);
		}
		if (!ok) {
			goto broken;
		}
	}
	if (PQpipelineSync(db) != 1) {
		goto broken;
	}
	for (i = 0; i < n; i++) {
		if ((s[i].res = PQgetResult(db)) == NULL) {
			goto broken;
		}
		/* Each statement's results end with a NULL. */
		while ((res = PQgetResult(db)) != NULL) {
			PQclear(res);
		}
	}
	res = PQgetResult(db);
	if (PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
		PQclear(res);
		goto broken;
	}
	PQclear(res);
	if (PQexitPipelineMode(db) != 1) {
		goto broken;
	}
	return (0);

broken:
	for (i = 0; i < n; i++) {
		PQclear(s[i].res);
		s[i].res = NULL;
	}
	return (barrier_err(err, errlen, "barrier", PQerrorMessage(db)));
}

/* Checks the results of a round: each command COMMAND_OK (a COMMIT
 * also tagged COMMIT, not ROLLBACK), each prepared statement a result
 * (the updates fail when the row is gone). Returns 0 or SAGA_EDB, err
 * naming the first failure. */
static int
barrier_round_check(const barrier_stmt *s, int n, char *err, size_t errlen)
{
	for (int i = 0; i < n; i++) {
		ExecStatusType st   = PQresultStatus(s[i].res);
		ExecStatusType want = PGRES_COMMAND_OK;
		const char    *what = s[i].sql;
		const char    *code;

		if (s[i].name != NULL) {
			want = PGRES_TUPLES_OK;
			what = strcmp(s[i].name, "saga_barrier_insert") == 0
			    ? "barrier insert"
			    : strcmp(s[i].name, "saga_barrier_check") == 0
			    ? "barrier check"
			    : "barrier update";
		}
		if (st != want) {
			code = PQresultErrorField(s[i].res, PG_DIAG_SQLSTATE);
			return (barrier_err(err, errlen, what,
			    s[i].name != NULL && code != NULL &&
			            strcmp(code, "22012") == 0
			        ? "the barrier row is gone"
			        : PQresultErrorMessage(s[i].res)));
		}
		if (s[i].sql != NULL && strcmp(s[i].sql, "COMMIT") == 0 &&
		    strcmp(PQcmdStatus(s[i].res), "COMMIT") != 0) {
			return (barrier_err(err, errlen, "COMMIT",
			    "the transaction was rolled back"));
		}
	}
	return (0);
}

static void
barrier_round_clear(barrier_stmt *s, int n)
{
	for (int i = 0; i < n; i++) {
		PQclear(s[i].res);
		s[i].res = NULL;
	}
}

/* The statements of a settle that keeps its command (COMMIT_OK or
 * COMMIT_FAILED), into s (room for 3); returns their number. Each of
 * them fails if the command's barrier row is gone (a handler that
 * deleted it), so that its command is undone rather than kept without
 * its row. The RELEASE comes last: until it ran, the command's savepoint
 * is the one an undo goes back to; once it ran, the only
 * saga_barrier_cmd left is the next command's. */
static int
barrier_settle_stmts(const barrier_deferred *d, barrier_stmt *s)
{
	int n = 0;

	memset(s, 0, 3 * sizeof(*s));
	if (d->c == BARRIER_COMMIT_OK && d->output.len > 0) {
		s[n].name    = "saga_barrier_output";
		s[n].key     = d->key;
		s[n].kind    = d->key->kind;
		s[n].p4      = (const char *) d->output.ptr;
		s[n].p4len   = d->output.len;
		s[n++].bin   = true;
	} else if (d->c == BARRIER_COMMIT_OK) {
		s[n].name   = "saga_barrier_check";
		s[n].key    = d->key;
		s[n++].kind = d->key->kind;
	} else if (d->c == BARRIER_COMMIT_FAILED) {
		/* The handler's work goes, the barrier row stays: its
		 * savepoint is inside the command's. */
		s[n++].sql = "ROLLBACK TO SAVEPOINT " BARRIER_SAVEPOINT;
		s[n].name  = "saga_barrier_failed";
		s[n].key   = d->key;
		s[n].kind  = d->key->kind;
		s[n++].p4  = d->error != NULL && d->error[0] != '\0'
		     ? d->error
		     : "business failure";
	}
	/* Also releases the handler's savepoint. A savepoint that is gone
	 * (the handler ended the transaction) fails here. */
	if (!d->alone) {
		s[n++].sql = "RELEASE SAVEPOINT " BARRIER_CMD_SAVEPOINT;
	}
	return (n);
}

/* Gives prev's settle up unsent (a caller's mistake: see the callers):
 * its command is undone and must be answered retry. */
static void
barrier_deferred_drop(PGconn *db, barrier_deferred *prev, const char *why)
{
	if (prev == NULL || !prev->set) {
		return;
	}
	prev->set  = false;
	prev->sent = true;
	prev->rv   = SAGA_EDB;
	snprintf(prev->err, sizeof(prev->err), "barrier: %s", why);
	barrier_cmd_undo(db, prev->alone);
}

/* The round trip of the n statements of s (key k), after the statements
 * of prev's settle when it waits (prev NULL or unset: none), all in one.
 * Returns SAGA_EDB when the round trip itself failed (prev then failed
 * too, with the same reason). Otherwise 0, and either prev's statements
 * succeeded (or there were none) and s holds its results, or they failed:
 * *prev_failed is set, prev's command was undone (back to its savepoint;
 * alone, the transaction rolled back), and s did not run (no results). */
static int
barrier_round_after(PGconn *db, barrier_deferred *prev, const barrier_key *k,
    barrier_stmt *s, int n, bool *prev_failed, char *err, size_t errlen)
{
	barrier_stmt all[3 + BARRIER_ROUND_MAX];
	int          m = 0;
	int          rv;

	*prev_failed = false;
	if (prev != NULL && prev->set) {
		m         = barrier_settle_stmts(prev, all);
		prev->set = false;
		prev->sent = true;
	}
	memcpy(all + m, s, (size_t) n * sizeof(*s));
	if ((rv = barrier_round(db, k, all, m + n, err, errlen)) != 0) {
		if (m > 0) {
			prev->rv = rv;
			snprintf(prev->err, sizeof(prev->err), "%s", err);
		}
		return (rv);
	}
	if (m > 0 &&
	    (prev->rv = barrier_round_check(all, m, prev->err,
	         sizeof(prev->err))) != 0) {
		barrier_round_clear(all, m + n);
		barrier_cmd_undo(db, prev->alone);
		*prev_failed = true;
		return (0);
	}
	barrier_round_clear(all, m);
	for (int i = 0; i < n; i++) {
		s[i].res = all[m + i].res;
	}
	return (0);
}

/* Reads the committed row (k->id, k->step, kind) into *found and, when
 * keep is set, into b (outcome, output, error; b takes the result). */
static int
barrier_read(PGconn *db, const barrier_key *k, uint32_t kind,
    barrier_found *found, barrier_begin *b, bool keep, char *err,
    size_t errlen)
{
	PGresult *res;

	/* Binary results: output is bytea; outcome and error, as text,
	 * have the same bytes in both formats (NUL-terminated by libpq). */
	res = barrier_run(db, "saga_barrier_read", k, kind, NULL, 0, false, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		int rv = barrier_err(err, errlen, "barrier read",
		    res != NULL ? PQresultErrorMessage(res)
		                : PQerrorMessage(db));

		PQclear(res);
		return (rv);
	}
	if (PQntuples(res) != 1) {
		/* Conflicted, then gone: purged in between. */
		*found = BARRIER_FOUND_GONE;
		PQclear(res);
		return (0);
	}
	*found = barrier_found_parse(PQgetvalue(res, 0, 0));
	if (!keep) {
		PQclear(res);
		return (0);
	}
	PQclear(b->res);
	b->res     = res;
	b->outcome = *found == BARRIER_FOUND_FAILED ? BARRIER_OUTCOME_FAILED
	                                            : BARRIER_OUTCOME_OK;
	b->output.ptr = NULL;
	b->output.len = 0;
	if (!PQgetisnull(res, 0, 1) && PQgetlength(res, 0, 1) > 0) {
		b->output.ptr = (const uint8_t *) PQgetvalue(res, 0, 1);
		b->output.len = (size_t) PQgetlength(res, 0, 1);
	}
	b->error = PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2);
	return (0);
}

int
barrier_sql_prepare(PGconn *db, char *err, size_t errlen)
{
	size_t n = sizeof(barrier_stmts) / sizeof(barrier_stmts[0]);

	for (size_t i = 0; i < n; i++) {
		PGresult *res = PQprepare(db, barrier_stmts[i].name,
		    barrier_stmts[i].sql, barrier_stmts[i].nparams, NULL);

		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			int rv = barrier_err(err, errlen,
			    "preparing the barrier statements",
			    res != NULL ? PQresultErrorMessage(res)
			                : PQerrorMessage(db));

			PQclear(res);
			return (rv);
		}
		PQclear(res);
	}
	return (0);
}

/* The BEGIN of a batch. A compensation's insert of the action's key must
 * see committed rows as they are now, not as of a snapshot: READ
 * COMMITTED whatever the database's default. */
#define BARRIER_BEGIN "BEGIN ISOLATION LEVEL READ COMMITTED"

int
barrier_sql_cmd_begin(PGconn *db, barrier_deferred *prev,
    const barrier_key *k, bool alone, bool open, const char *then,
    barrier_begin *b, char *err, size_t errlen)
{
	barrier_stmt s[BARRIER_ROUND_MAX];
	int          n = 0, ins_a, ins_c = -1;
	bool         action_ins = false;
	bool         comp_ins   = false;
	bool         prev_failed;
	int          rv;

	memset(b, 0, sizeof(*b));
	memset(s, 0, sizeof(s));
	b->action = BARRIER_INSERTED;
	b->comp   = BARRIER_INSERTED;
	if (prev != NULL && prev->set && (alone || prev->alone || open)) {
		/* A command alone has its transaction to itself, and one
		 * that opens its transaction follows nothing. */
		barrier_deferred_drop(db, prev, "a settle left for a command "
		                                "alone");
		return (barrier_err(err, errlen, "barrier",
		    "a settle left for a command alone"));
	}
	if (open) {
		if (PQtransactionStatus(db) != PQTRANS_IDLE) {
			/* A BEGIN here would only warn, and the batch would
			 * join whatever is open. */
			return (barrier_err(err, errlen, "BEGIN",
			    "the connection is not idle"));
		}
		s[n++].sql = BARRIER_BEGIN;
		if (then != NULL) {
			s[n++].sql = then;
		}
	}
	if (!alone) {
		s[n++].sql = "SAVEPOINT " BARRIER_CMD_SAVEPOINT;
	}
	/* An action inserts its key as ok; a compensation first the
	 * action's key, as 'aborted' (if that inserts, the action never
	 * ran and never will), then its own. */
	ins_a      = n;
	s[n].name  = "saga_barrier_insert";
	s[n].kind  = BARRIER_ACTION;
	s[n++].p4  = k->kind == BARRIER_ACTION ? "ok" : "aborted";
	if (k->kind != BARRIER_ACTION) {
		ins_c     = n;
		s[n].name = "saga_barrier_insert";
		s[n].kind = BARRIER_COMPENSATION;
		s[n++].p4 = "ok";
	}
	/* The handler's savepoint, set whatever the decision (one round
	 * trip for all of this): a command that does not run is undone
	 * back to its own savepoint, or, alone, rolled back, which drops
	 * it; a null compensation's is released with its command's, or,
	 * alone, ends with the COMMIT. */
	s[n++].sql = "SAVEPOINT " BARRIER_SAVEPOINT;
	/* The command before, if its settle waits, goes first: if that
	 * fails, it was undone, and this command's round trip is made
	 * again on its own. */
	if ((rv = barrier_round_after(db, prev, k, s, n, &prev_failed, err,
	         errlen)) == 0 &&
	    prev_failed) {
		rv = barrier_round(db, k, s, n, err, errlen);
	}
	if (rv != 0) {
		goto fail;
	}
	if ((rv = barrier_round_check(s, n, err, errlen)) == 0) {
		action_ins = PQntuples(s[ins_a].res) == 1;
		comp_ins   = ins_c >= 0 && PQntuples(s[ins_c].res) == 1;
	}
	barrier_round_clear(s, n);
	if (rv != 0) {
		goto fail;
	}
	if (k->kind == BARRIER_ACTION) {
		if (!action_ins &&
		    (rv = barrier_read(db, k, BARRIER_ACTION, &b->action, b,
		         true, err, errlen)) != 0) {
			goto fail;
		}
	} else {
		if (!comp_ins) {
			/* A duplicate: decided by its own row alone (the
			 * action's is not read). */
			b->action = action_ins ? BARRIER_INSERTED
			                       : BARRIER_FOUND_GONE;
			rv = barrier_read(db, k, BARRIER_COMPENSATION,
			    &b->comp, b, true, err, errlen);
		} else if (!action_ins) {
			/* Its output is what the handler gets. */
			rv = barrier_read(db, k, BARRIER_ACTION, &b->action,
			    b, true, err, errlen);
			b->outcome = BARRIER_OUTCOME_OK;
			b->error   = NULL;
		}
		if (rv != 0) {
			goto fail;
		}
	}
	b->decision = barrier_decide(k->kind, b->action, b->comp, k->old);
	return (0);

fail:
	barrier_cmd_undo(db, alone);
	barrier_begin_fini(b);
	return (rv);
}

int
barrier_sql_cmd_end(PGconn *db, const barrier_begin *b, bool alone,
    char *err, size_t errlen)
{
	int rv = 0;

	if (b->decision != BARRIER_NULL) {
		/* Replay, refuse, retry: nothing of this command to keep. */
		barrier_cmd_undo(db, alone);
		return (0);
	}
	if (!alone &&
	    (rv = barrier_exec(db, "RELEASE SAVEPOINT " BARRIER_CMD_SAVEPOINT,
	         err, errlen)) != 0) {
		barrier_cmd_undo(db, alone);
	}
	return (rv);
}

void
barrier_sql_cmd_settle(PGconn *db, const barrier_key *k, bool alone,
    barrier_commit c, proto_raw output, const char *error,
    barrier_deferred *later)
{
	memset(later, 0, sizeof(*later));
	if (c == BARRIER_ROLLBACK_FAILED || c == BARRIER_ROLLBACK_RETRY) {
		barrier_cmd_undo(db, alone);
		return;
	}
	later->set    = true;
	later->key    = k;
	later->alone  = alone;
	later->c      = c;
	later->output = output;
	later->error  = error;
}

bool
barrier_sql_tx_usable(PGconn *db)
{
	/* A handler that left pipeline mode on makes every PQexec fail
	 * on the client side, whatever the server's state. */
	return (PQstatus(db) == CONNECTION_OK &&
	    PQtransactionStatus(db) == PQTRANS_INTRANS &&
	    PQpipelineStatus(db) == PQ_PIPELINE_OFF);
}

int
barrier_sql_tx_commit(PGconn *db, barrier_deferred *prev, const char *level,
    char *err, size_t errlen)
{
	barrier_stmt s[2];
	bool         prev_failed;
	int          rv;

	/* The last command's settle, if it waits, and the COMMIT: one
	 * round trip. Before the COMMIT, the connection's own
	 * synchronous_commit again: a handler's SET LOCAL (or SET) of off
	 * would let the COMMIT return before its WAL is flushed, and the
	 * answers leave for rows a crash can lose. */
	memset(s, 0, sizeof(s));
	if ((s[0].sql = sql_durable_set_local(level)) == NULL) {
		s[0].sql = sql_durable_set_local("on");
	}
	s[1].sql = "COMMIT";
	if ((rv = barrier_round_after(db, prev, NULL, s, 2, &prev_failed, err,
	         errlen)) != 0) {
		barrier_sql_tx_rollback(db);
		return (rv);
	}
	if (prev_failed) {
		/* Undone: alone, with its transaction, which held nothing
		 * else; in a batch, back to its savepoint, and the others
		 * are committed now. */
		if (prev->alone) {
			return (0);
		}
		if (!barrier_sql_tx_usable(db)) {
			barrier_sql_tx_rollback(db);
			return (barrier_err(err, errlen, "COMMIT",
			    "the transaction was lost with its last command"));
		}
		return (barrier_sql_tx_commit(db, NULL, level, err, errlen));
	}
	rv = barrier_round_check(s, 2, err, errlen);
	barrier_round_clear(s, 2);
	if (rv != 0) {
		barrier_sql_tx_rollback(db);
	}
	return (rv);
}

void
barrier_sql_tx_rollback(PGconn *db)
{
	if (!barrier_drain(db) || PQstatus(db) != CONNECTION_OK) {
		return;
	}
	if (PQtransactionStatus(db) != PQTRANS_IDLE) {
		PQclear(PQexec(db, "ROLLBACK"));
	}
}

void
barrier_begin_fini(barrier_begin *b)
{
	if (b == NULL) {
		return;
	}
	PQclear(b->res);
	b->res        = NULL;
	b->output.ptr = NULL;
	b->output.len = 0;
	b->error      = NULL;
}

int
barrier_sql_purge(PGconn *db, int64_t retention_s, int batch,
    int64_t *deleted, char *err, size_t errlen)
{
	char        secs[32], lim[16];
	const char *vals[2] = { secs, lim };
	PGresult   *res;
	int         rv = 0;

	/* The cutoff stops at 1970, where nothing is older: further back,
	 * now() less the retention leaves PostgreSQL's timestamps (before
	 * 4713 BC, about 2e11 s ago), and every purge failed with
	 * "timestamp out of range". */
	if (retention_s > (int64_t) time(NULL)) {
		retention_s = (int64_t) time(NULL);
	}
	snprintf(secs, sizeof(secs), "%lld", (long long) retention_s);
	snprintf(lim, sizeof(lim), "%d", batch);
	res = PQexecPrepared(db, "saga_barrier_purge", 2, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rv = barrier_err(err, errlen, "barrier purge",
		    res != NULL ? PQresultErrorMessage(res)
		                : PQerrorMessage(db));
	} else {
		*deleted = strtoll(PQcmdTuples(res), NULL, 10);
	}
	PQclear(res);
	return (rv);
}
