/* SPDX-License-Identifier: MIT */
/*
 * barrier_decide: the decisions of the idempotency barrier (DESIGN.md,
 * invariant 2) as pure functions, shared by the SQL path (barrier_sql.c)
 * and the simulator. No libpq, no clock, no I/O.
 *
 * The barrier keeps one row per (saga id, step, kind). A command first
 * INSERTs rows ON CONFLICT DO NOTHING and decides only from what those
 * inserts found (never from a SELECT made before them):
 *  - an action inserts its own row; finding one, it replays the recorded
 *    outcome, or is refused if a compensation wrote it ('aborted');
 *  - a compensation inserts the action's key as 'aborted', then its own
 *    row; finding its own row it replays; else it runs its handler only
 *    if the action's row holds ok, and is a null compensation otherwise
 *    (the action never ran, or failed).
 * Finding nothing is trusted only while the saga is young enough for its
 * rows to be there: the purge deletes the rows of sagas older than the
 * retention, and then "no row" may mean "purged", not "never written".
 * barrier_decide maps what the inserts found to what to do; after a
 * handler ran, barrier_settle maps its outcome to what to commit.
 */
#ifndef PARTICIPANTS_BARRIER_DECIDE_H
#define PARTICIPANTS_BARRIER_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

/* Kinds of a command; the numbers are the wire values (proto_kind). */
#define BARRIER_ACTION       0
#define BARRIER_COMPENSATION 1

/* barrier_found is what one INSERT ... ON CONFLICT DO NOTHING found. */
typedef enum barrier_found {
	BARRIER_INSERTED = 0,  /* no row: this insert wrote it */
	BARRIER_FOUND_OK,      /* a row holding 'ok' */
	BARRIER_FOUND_FAILED,  /* a row holding 'failed' */
	BARRIER_FOUND_ABORTED, /* a row holding 'aborted' */
	BARRIER_FOUND_GONE,    /* a conflict, but the row was gone when read
	                        * (purged meanwhile) */
	BARRIER_FOUND_COUNT,
} barrier_found;

/* barrier_decision is what to do with a command. */
typedef enum barrier_decision {
	BARRIER_RUN,    /* run the handler */
	BARRIER_REPLAY, /* answer the recorded outcome and output */
	BARRIER_REFUSE, /* an action after its compensation: answer failed,
	                 * never run it */
	BARRIER_NULL,   /* a compensation of an action that never took
	                 * effect: commit its row, answer ok, no handler */
	BARRIER_RETRY,  /* cannot decide now (row gone, impossible state):
	                 * commit nothing, answer retry */
	BARRIER_EXPIRED, /* no row, but the saga is older than the
	                  * retention: its rows may have been purged.
	                  * Commit nothing, never run, answer failed (an
	                  * operator decides) */
} barrier_decision;

/* barrier_commit is what to do once the handler has returned. */
typedef enum barrier_commit {
	BARRIER_COMMIT_OK,       /* record the output, COMMIT, answer ok */
	BARRIER_COMMIT_FAILED,   /* ROLLBACK TO the savepoint (the handler's
	                          * work), record failed, COMMIT, answer
	                          * failed */
	BARRIER_ROLLBACK_FAILED, /* ROLLBACK everything, answer failed */
	BARRIER_ROLLBACK_RETRY,  /* ROLLBACK everything, answer retry */
} barrier_commit;

/* Handler outcomes given to barrier_settle; the numbers are the wire
 * values (proto_outcome). */
#define BARRIER_OUTCOME_OK     0
#define BARRIER_OUTCOME_FAILED 1
#define BARRIER_OUTCOME_RETRY  2
#define BARRIER_OUTCOME_NONE   (-1) /* the handler crashed or set none */

/* barrier_decide decides a command of kind from what its inserts found:
 * action is what the insert of the action's key found, comp what the
 * insert of the compensation's own row found. For an action only action
 * counts (comp is ignored). For a compensation, comp is decided first: a
 * row of its own means a duplicate (REPLAY); else action decides (RUN
 * only on FOUND_OK; INSERTED, FAILED and ABORTED are NULL). GONE, an
 * unknown kind, and states the barrier never writes (a compensation row
 * that is not ok) are RETRY: never guess. old (barrier_saga_old) says
 * that the saga's rows may have been purged: then an insert that found
 * nothing proves nothing, and what it would have decided (an action's
 * first RUN, a NULL compensation of an action never seen) is EXPIRED
 * instead. */
barrier_decision barrier_decide(
    uint32_t kind, barrier_found action, barrier_found comp, bool old);

/* The margin of barrier_saga_old: a saga counts as old past the retention
 * less retention / BARRIER_OLD_MARGIN (7 days: 16.8 hours early). */
#define BARRIER_OLD_MARGIN 10

/* barrier_saga_old tells whether a saga that started at started_ms (Unix
 * ms, from its UUIDv7 id) is, at now_ms, old enough for the purge to have
 * deleted its rows under a retention of retention_s seconds: older than
 * the retention less a tenth (BARRIER_OLD_MARGIN), the margin absorbing
 * the skew between sagad's clock, which stamped the id, and the clocks of
 * the participant and its database. A negative retention (never purge)
 * is never old, nor is a retention too large to count in ms. */
bool barrier_saga_old(int64_t started_ms, int64_t now_ms, int64_t retention_s);

/* barrier_settle decides what to commit after a handler of kind returned
 * outcome (BARRIER_OUTCOME_*). tx_aborted says that the transaction was
 * left in an aborted state (an SQL error the handler did not roll back
 * itself: a crash, a deadlock, a serialization failure): that is always
 * ROLLBACK_RETRY, whatever the handler said. An action's business failure
 * keeps its barrier row (COMMIT_FAILED); a compensation's records nothing
 * (ROLLBACK_FAILED), so that it runs again when retried. */
barrier_commit barrier_settle(uint32_t kind, int outcome, bool tx_aborted);

/* barrier_found_parse maps a row's outcome text ("ok", "failed",
 * "aborted") to FOUND_OK, FOUND_FAILED or FOUND_ABORTED; anything else,
 * or NULL (no row), is FOUND_GONE. */
barrier_found barrier_found_parse(const char *outcome);

/* barrier_decision_name returns "run", "replay", "refuse", "null",
 * "retry" or "expired". */
const char *barrier_decision_name(barrier_decision d);

/* barrier_found_name returns "inserted", "ok", "failed", "aborted" or
 * "gone". */
const char *barrier_found_name(barrier_found f);

#endif /* PARTICIPANTS_BARRIER_DECIDE_H */
