/* SPDX-License-Identifier: MIT */
/*
 * barrier_sql: the idempotency barrier on the participant's PostgreSQL
 * database (table saga_barrier, sql/barrier/), the SQL path of
 * barrier_decide.
 *
 * A batch of commands is one local transaction (READ COMMITTED), and each
 * command of it runs inside a savepoint of its own, so that undoing one
 * command leaves the others:
 *   for each command:
 *   barrier_sql_cmd_begin    (the first command: BEGIN, and what the
 *                            caller runs with it); SAVEPOINT
 *                            saga_barrier_cmd; the INSERTs ...
 *                            ON CONFLICT DO NOTHING of the command's kind;
 *                            a savepoint for the handler; the rows the
 *                            inserts conflicted with (committed by then,
 *                            as a concurrent insert of the same key waits
 *                            for the other transaction, or written earlier
 *                            in this very batch); the decision;
 *   the handler              its business work, on the same connection;
 *   barrier_sql_cmd_settle   after RUN: record the output or the failure
 *                            and RELEASE the command's savepoint (these
 *                            wait for the next round trip, see below), or
 *                            ROLLBACK TO it (barrier_settle decides);
 *   barrier_sql_cmd_end      other decisions: RELEASE (NULL) or ROLLBACK
 *                            TO the command's savepoint;
 *   and once for the batch:
 *   barrier_sql_tx_commit    SET LOCAL synchronous_commit (back to the
 *                            connection's level) and COMMIT.
 * Inside a batch, barrier_commit's "COMMIT" means "keep the command's work"
 * and its "ROLLBACK" means "back to the command's savepoint"; nothing is
 * durable before barrier_sql_tx_commit returned 0, so the caller answers
 * every command of the batch only then (or answers retry to all of them
 * when the transaction is lost).
 *
 * A command alone in its transaction (a batch of one: the common case at
 * low load) needs no savepoint of its own, and gets none (alone = true):
 * undoing it is ROLLBACK of the transaction, which is then over, and
 * keeping it leaves the transaction for the COMMIT. That is the
 * transaction of one command as it was before batches, so that batching
 * costs a lone command nothing.
 *
 * Round trips: the statements that need no answer from the one before
 * go together (libpq pipeline mode, one Sync): BEGIN (of the first
 * command), the command's savepoint, its inserts and the handler's
 * savepoint in one. The settle of a command that is kept (its output or
 * failure, and the RELEASE) is not sent at once: it goes first in the
 * transaction's next round trip, the next command's begin or the COMMIT
 * (barrier_deferred). An action that runs takes, alone, two round trips
 * besides its handler's (five before entry 5 of docs/PERFORMANCE.md,
 * three before entry 11); in a batch, one, and the batch's COMMIT one
 * more (its BEGIN goes with its first command). A compensation that
 * runs reads its action's row (one more); a command that does not run
 * (a replay, a refusal, a null compensation) ends with one more, its
 * RELEASE or undo.
 *
 * DESIGN: every statement is prepared once per connection
 * (barrier_sql_prepare) under a saga_barrier_ name. An SQL error in a
 * command rolls back to the command's savepoint and returns SAGA_EDB: the
 * command is then answered retry, having kept nothing, and the transaction
 * goes on with the next command. If even that rollback fails (the
 * connection is gone, the transaction was ended behind the library's back),
 * barrier_sql_tx_usable turns false: the whole batch is lost.
 */
#ifndef PARTICIPANTS_BARRIER_SQL_H
#define PARTICIPANTS_BARRIER_SQL_H

#include <stdbool.h>
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
	bool     old;  /* the saga may have had its rows purged
	                * (barrier_saga_old): finding none proves nothing */
} barrier_key;

/* barrier_begin is what barrier_sql_cmd_begin found and decided. */
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

/* barrier_deferred is the settle of a kept command (COMMIT_OK or
 * COMMIT_FAILED of barrier_sql_cmd_settle), waiting to be sent first in
 * the transaction's next round trip: the next command's
 * barrier_sql_cmd_begin, or barrier_sql_tx_commit, given it as prev.
 * Until then it borrows the key, output and error it was made from.
 * Once sent (sent), rv is 0, or SAGA_EDB: a statement failed, and the
 * command was undone (back to its savepoint; alone, its transaction
 * rolled back), or the round trip itself failed, and the transaction is
 * lost (barrier_sql_tx_usable). Either way the command must be answered
 * retry, the reason in err. Commands are answered only after the
 * COMMIT, so the answer the caller had set can still change. */
typedef struct barrier_deferred {
	bool               set;  /* waits to be sent */
	bool               sent;
	const barrier_key *key;
	bool               alone;
	barrier_commit     c;
	proto_raw          output;
	const char        *error;
	int                rv;
	char               err[256];
} barrier_deferred;

/* barrier_sql_prepare prepares the barrier's statements on a new
 * connection. Returns 0 or SAGA_EDB (the reason in err: no barrier
 * schema, connection lost). */
int barrier_sql_prepare(PGconn *db, char *err, size_t errlen);

/* barrier_sql_cmd_begin starts one command in the transaction and
 * decides (see above); alone says that it is the only command of the
 * transaction. open says that the transaction is not open yet: this is
 * its first command, and its BEGIN (READ COMMITTED), then then (a
 * parameterless command such as a SET LOCAL, or NULL), go with the
 * command's first statements, in the same round trip. prev (or NULL) is
 * the settle of the command before, if it waits: sent first, and its
 * result left in prev. On 0 the command's savepoint is set (unless
 * alone), and the handler's savepoint too. On SAGA_EDB (reason in err)
 * the command's work was undone (rolled back to its savepoint, or alone,
 * the transaction rolled back); a batch may take the next command only
 * if barrier_sql_tx_usable (a BEGIN or then that failed leaves it
 * false). */
int barrier_sql_cmd_begin(PGconn *db, barrier_deferred *prev,
    const barrier_key *k, bool alone, bool open, const char *then,
    barrier_begin *b, char *err, size_t errlen);

/* barrier_sql_cmd_end ends a command of a decision other than RUN: keeps
 * the rows of a NULL (RELEASE of its savepoint; alone, nothing to do), and
 * undoes the others (they wrote nothing to keep; alone, the transaction is
 * rolled back and over). Returns 0 or SAGA_EDB (the command's work undone:
 * its outcome is then retry). */
int barrier_sql_cmd_end(PGconn *db, const barrier_begin *b, bool alone,
    char *err, size_t errlen);

/* barrier_sql_cmd_settle ends a RUN command after its handler as c says:
 * COMMIT_OK records output (len 0: none, meaning {}) and keeps the
 * command's work; COMMIT_FAILED rolls back to the handler's savepoint,
 * records error and keeps the barrier row; ROLLBACK_* undo the command
 * (back to its savepoint; alone, ROLLBACK of the transaction), at once.
 * The statements of a COMMIT_* are not sent here: they are left in later
 * (later->set), for the next round trip (barrier_sql_cmd_begin or
 * barrier_sql_tx_commit, given later as prev), where each of them fails
 * if the command's barrier row is gone (a handler deleted it), and the
 * command is then undone. */
void barrier_sql_cmd_settle(PGconn *db, const barrier_key *k, bool alone,
    barrier_commit c, proto_raw output, const char *error,
    barrier_deferred *later);

/* barrier_sql_tx_usable tells whether the batch's transaction can go on:
 * the connection is up and the transaction open and not aborted. False
 * after a command whose rollback to its own savepoint failed, or whose
 * handler ended the transaction itself: the batch is lost. */
bool barrier_sql_tx_usable(PGconn *db);

/* barrier_sql_tx_commit commits the batch, after the settle of its last
 * command if that waits (prev, or NULL), in the same round trip. If that
 * settle fails, its command is undone (prev->rv) and the rest committed.
 * The COMMIT runs with synchronous_commit at level (the connection's, as
 * sql_durable_check stored it; NULL: on), set again just before it (SET
 * LOCAL, same round trip), whatever a handler set, so that it returns only
 * once the batch's WAL is flushed. Returns 0, or SAGA_EDB (reason in err)
 * when the COMMIT failed or its outcome is unknown (connection lost):
 * then nothing of the batch may be taken as durable. The transaction is
 * over either way. */
int barrier_sql_tx_commit(PGconn *db, barrier_deferred *prev,
    const char *level, char *err, size_t errlen);

/* barrier_sql_tx_rollback rolls the batch's transaction back, whatever
 * state it is in (a query left running is drained first); errors are
 * ignored (a lost connection has rolled it back already). */
void barrier_sql_tx_rollback(PGconn *db);

/* barrier_begin_fini frees what barrier_sql_cmd_begin kept; NULL-safe. */
void barrier_begin_fini(barrier_begin *b);

/* barrier_sql_purge deletes, in one statement, every row of up to batch
 * sagas whose newest row is older than retention_s seconds, and stores
 * the number of rows deleted in *deleted. Call again until it deletes
 * nothing. Returns 0 or SAGA_EDB. */
int barrier_sql_purge(PGconn *db, int64_t retention_s, int batch,
    int64_t *deleted, char *err, size_t errlen);

#endif /* PARTICIPANTS_BARRIER_SQL_H */
