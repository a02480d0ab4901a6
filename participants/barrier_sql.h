/* SPDX-License-Identifier: MIT */
/*
 * barrier_sql: the idempotency barrier on the participant's PostgreSQL
 * database (table saga_barrier, sql/barrier/), the SQL path of
 * barrier_decide.
 *
 * One command is one local transaction (READ COMMITTED):
 *   barrier_sql_begin   BEGIN; the INSERTs ... ON CONFLICT DO NOTHING of
 *                       the command's kind; the rows they conflicted with
 *                       (committed by then: a concurrent insert of the
 *                       same key waits for the other transaction); the
 *                       decision; for RUN a savepoint for the handler;
 *   the handler         its business work, on the same connection;
 *   barrier_sql_settle  after RUN: record the output or the failure and
 *                       COMMIT, or ROLLBACK (barrier_settle decides);
 *   barrier_sql_end     other decisions: COMMIT (NULL) or ROLLBACK.
 * The caller replies only after settle or end returned 0.
 *
 * DESIGN: every statement is prepared once per connection
 * (barrier_sql_prepare) under a saga_barrier_ name. Any SQL error rolls
 * the whole transaction back and returns SAGA_EDB: the command is then
 * answered retry, having committed nothing.
 */
#ifndef PARTICIPANTS_BARRIER_SQL_H
#define PARTICIPANTS_BARRIER_SQL_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "barrier_decide.h"
#include "proto_val.h"
#include "saga_id.h"

/* barrier_key is the barrier's key of one command. */
typedef struct barrier_key {
	char     id[SAGA_ID_STRLEN + 1]; /* saga id, text form */
	uint32_t step;
	uint32_t kind; /* BARRIER_ACTION or BARRIER_COMPENSATION */
} barrier_key;

/* barrier_begin is what barrier_sql_begin found and decided. */
typedef struct barrier_begin {
	barrier_decision decision;
	barrier_found    action; /* what the action's key insert found */
	barrier_found    comp;   /* compensations: what their own found */
	/* REPLAY: the recorded outcome (BARRIER_OUTCOME_OK or _FAILED),
	 * output (empty: {}) and error. RUN of a compensation: output is the
	 * output its action recorded. Borrowed from res. */
	int         outcome;
	proto_raw   output;
	const char *error;
	PGresult   *res; /* private */
} barrier_begin;

/* barrier_sql_prepare prepares the barrier's statements on a new
 * connection. Returns 0 or SAGA_EDB (the reason in err: no barrier
 * schema, connection lost). */
int barrier_sql_prepare(PGconn *db, char *err, size_t errlen);

/* barrier_sql_begin opens the command's transaction and decides (see
 * above). On 0 the transaction is open; for RUN a savepoint is set. On
 * SAGA_EDB (reason in err) the transaction was rolled back. */
int barrier_sql_begin(
    PGconn *db, const barrier_key *k, barrier_begin *b, char *err,
    size_t errlen);

/* barrier_sql_end ends the transaction of a decision other than RUN:
 * COMMIT for NULL (the rows it inserted), ROLLBACK for the others (they
 * wrote nothing). Returns 0 or SAGA_EDB (the outcome is then retry). */
int barrier_sql_end(
    PGconn *db, const barrier_begin *b, char *err, size_t errlen);

/* barrier_sql_settle ends the transaction after the handler as c says:
 * COMMIT_OK records output (len 0: none, meaning {}) and commits;
 * COMMIT_FAILED rolls back to the savepoint, records error and commits;
 * ROLLBACK_* roll back. Returns 0, or SAGA_EDB when a statement or the
 * COMMIT failed (everything rolled back: the outcome is then retry). */
int barrier_sql_settle(PGconn *db, const barrier_key *k, barrier_commit c,
    proto_raw output, const char *error, char *err, size_t errlen);

/* barrier_begin_fini frees what barrier_sql_begin kept; NULL-safe. */
void barrier_begin_fini(barrier_begin *b);

/* barrier_sql_purge deletes, in one statement, every row of up to batch
 * sagas whose newest row is older than retention_s seconds, and stores
 * the number of rows deleted in *deleted. Call again until it deletes
 * nothing. Returns 0 or SAGA_EDB. */
int barrier_sql_purge(PGconn *db, int64_t retention_s, int batch,
    int64_t *deleted, char *err, size_t errlen);

#endif /* PARTICIPANTS_BARRIER_SQL_H */
