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

#include "barrier_sql.h"
#include "saga_err.h"

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
	{ "saga_barrier_output",
	    "UPDATE saga_barrier SET output = $4 "
	    "WHERE saga_id = $1 AND step = $2 AND kind = $3",
	    4 },
	{ "saga_barrier_failed",
	    "UPDATE saga_barrier SET outcome = 'failed', error = $4 "
	    "WHERE saga_id = $1 AND step = $2 AND kind = $3",
	    4 },
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

/* Commits; a COMMIT of an aborted transaction "succeeds" as ROLLBACK, so
 * the command tag is checked too. */
static int
barrier_commit_tx(PGconn *db, char *err, size_t errlen)
{
	PGresult *res = PQexec(db, "COMMIT");
	int       rv  = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rv = barrier_err(err, errlen, "COMMIT",
		    res != NULL ? PQresultErrorMessage(res)
		                : PQerrorMessage(db));
	} else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		rv = barrier_err(err, errlen, "COMMIT",
		    "the transaction was rolled back");
	}
	PQclear(res);
	return (rv);
}

/* Runs prepared statement name with the key's three parameters and an
 * optional fourth (text, or binary when bin). */
static PGresult *
barrier_run(PGconn *db, const char *name, const barrier_key *k,
    uint32_t kind, const char *p4, size_t p4len, bool bin, int result_fmt)
{
	char        step[16], kindt[4];
	const char *vals[4]    = { k->id, step, kindt, p4 };
	int         lens[4]    = { 0, 0, 0, (int) p4len };
	int         formats[4] = { 0, 0, 0, bin ? 1 : 0 };

	snprintf(step, sizeof(step), "%u", k->step);
	snprintf(kindt, sizeof(kindt), "%u", kind);
	return (PQexecPrepared(db, name, p4 != NULL || bin ? 4 : 3, vals,
	    lens, formats, result_fmt));
}

/* Inserts the row (k->id, k->step, kind) holding outcome unless it
 * exists; *inserted says whether it did. */
static int
barrier_insert(PGconn *db, const barrier_key *k, uint32_t kind,
    const char *outcome, bool *inserted, char *err, size_t errlen)
{
	PGresult *res;
	int       rv = 0;

	res = barrier_run(db, "saga_barrier_insert", k, kind, outcome, 0,
	    false, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rv = barrier_err(err, errlen, "barrier insert",
		    res != NULL ? PQresultErrorMessage(res)
		                : PQerrorMessage(db));
	} else {
		*inserted = PQntuples(res) == 1;
	}
	PQclear(res);
	return (rv);
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

int
barrier_sql_exec(PGconn *db, const char *sql, char *err, size_t errlen)
{
	return (barrier_exec(db, sql, err, errlen));
}

int
barrier_sql_tx_begin(PGconn *db, char *err, size_t errlen)
{
	if (PQtransactionStatus(db) != PQTRANS_IDLE) {
		/* A BEGIN here would only warn, and the batch would join
		 * whatever is open. */
		return (barrier_err(err, errlen, "BEGIN",
		    "the connection is not idle"));
	}
	/* A compensation's insert of the action's key must see committed
	 * rows as they are now, not as of a snapshot: READ COMMITTED
	 * whatever the database's default. */
	return (barrier_exec(db, "BEGIN ISOLATION LEVEL READ COMMITTED", err,
	    errlen));
}

int
barrier_sql_cmd_begin(PGconn *db, const barrier_key *k, bool alone,
    barrier_begin *b, char *err, size_t errlen)
{
	bool action_ins = false;
	bool comp_ins   = false;
	int  rv;

	memset(b, 0, sizeof(*b));
	b->action = BARRIER_INSERTED;
	b->comp   = BARRIER_INSERTED;
	if (!alone &&
	    (rv = barrier_exec(db, "SAVEPOINT " BARRIER_CMD_SAVEPOINT,
	         err, errlen)) != 0) {
		goto fail;
	}
	if (k->kind == BARRIER_ACTION) {
		if ((rv = barrier_insert(db, k, BARRIER_ACTION, "ok",
		         &action_ins, err, errlen)) != 0) {
			goto fail;
		}
		if (!action_ins &&
		    (rv = barrier_read(db, k, BARRIER_ACTION, &b->action, b,
		         true, err, errlen)) != 0) {
			goto fail;
		}
	} else {
		/* First the action's key, as 'aborted': if that inserts,
		 * the action never ran and never will. */
		if ((rv = barrier_insert(db, k, BARRIER_ACTION, "aborted",
		         &action_ins, err, errlen)) != 0 ||
		    (rv = barrier_insert(db, k, BARRIER_COMPENSATION, "ok",
		         &comp_ins, err, errlen)) != 0) {
			goto fail;
		}
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
	b->decision = barrier_decide(k->kind, b->action, b->comp);
	if (b->decision == BARRIER_RUN &&
	    (rv = barrier_exec(db, "SAVEPOINT " BARRIER_SAVEPOINT, err,
	         errlen)) != 0) {
		goto fail;
	}
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

int
barrier_sql_cmd_settle(PGconn *db, const barrier_key *k, bool alone,
    barrier_commit c, proto_raw output, const char *error, char *err,
    size_t errlen)
{
	PGresult *res = NULL;
	int       rv  = 0;

	switch (c) {
	case BARRIER_COMMIT_OK:
		if (output.len > 0) {
			res = barrier_run(db, "saga_barrier_output", k,
			    k->kind, (const char *) output.ptr, output.len,
			    true, 0);
		}
		break;
	case BARRIER_COMMIT_FAILED:
		/* The handler's work goes, the barrier row stays: its
		 * savepoint is inside the command's. */
		if ((rv = barrier_exec(db,
		         "ROLLBACK TO SAVEPOINT " BARRIER_SAVEPOINT, err,
		         errlen)) != 0) {
			goto fail;
		}
		res = barrier_run(db, "saga_barrier_failed", k, k->kind,
		    error != NULL && error[0] != '\0' ? error
		                                      : "business failure",
		    0, false, 0);
		break;
	case BARRIER_ROLLBACK_FAILED:
	case BARRIER_ROLLBACK_RETRY:
		barrier_cmd_undo(db, alone);
		return (0);
	}
	if (res != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK ||
		    strcmp(PQcmdTuples(res), "1") != 0) {
			rv = barrier_err(err, errlen, "barrier update",
			    PQresultStatus(res) != PGRES_COMMAND_OK
			        ? PQresultErrorMessage(res)
			        : "the barrier row is gone");
			PQclear(res);
			goto fail;
		}
		PQclear(res);
	}
	/* Also releases the handler's savepoint. A savepoint that is gone
	 * (the handler ended the transaction) fails here. */
	if (!alone &&
	    (rv = barrier_exec(db, "RELEASE SAVEPOINT " BARRIER_CMD_SAVEPOINT,
	         err, errlen)) != 0) {
		goto fail;
	}
	return (0);

fail:
	barrier_cmd_undo(db, alone);
	return (rv);
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
barrier_sql_tx_commit(PGconn *db, char *err, size_t errlen)
{
	int rv;

	if ((rv = barrier_commit_tx(db, err, errlen)) != 0) {
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
