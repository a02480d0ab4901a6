/* SPDX-License-Identifier: MIT */
/*
 * barrier_decide: the barrier's decisions as pure functions. See
 * barrier_decide.h.
 */
#include <stddef.h>
#include <string.h>

#include "barrier_decide.h"

barrier_decision
barrier_decide(
    uint32_t kind, barrier_found action, barrier_found comp, bool old)
{
	if (kind == BARRIER_ACTION) {
		switch (action) {
		case BARRIER_INSERTED:
			/* Old: it may have run, its row purged since. */
			return (old ? BARRIER_EXPIRED : BARRIER_RUN);
		case BARRIER_FOUND_OK:
		case BARRIER_FOUND_FAILED:
			return (BARRIER_REPLAY);
		case BARRIER_FOUND_ABORTED:
			/* A compensation got here first: the action must
			 * never take effect. */
			return (BARRIER_REFUSE);
		default:
			return (BARRIER_RETRY);
		}
	}
	if (kind != BARRIER_COMPENSATION) {
		return (BARRIER_RETRY);
	}
	switch (comp) {
	case BARRIER_INSERTED:
		break;
	case BARRIER_FOUND_OK:
		/* A duplicate of a compensation that committed. */
		return (BARRIER_REPLAY);
	default:
		/* Gone, or a state the barrier never writes for a
		 * compensation (failed, aborted). */
		return (BARRIER_RETRY);
	}
	switch (action) {
	case BARRIER_FOUND_OK:
		return (BARRIER_RUN);
	case BARRIER_INSERTED:
		/* The action never ran; this compensation's insert makes
		 * any later delivery of it refused. Unless the saga is old:
		 * then the action may have run, its row purged since, and a
		 * null compensation would leave its effect in place. */
		return (old ? BARRIER_EXPIRED : BARRIER_NULL);
	case BARRIER_FOUND_FAILED:
		/* The action's work was rolled back: nothing to undo. */
	case BARRIER_FOUND_ABORTED:
		/* An earlier compensation already aborted it (its own row
		 * was purged since). */
		return (BARRIER_NULL);
	default:
		return (BARRIER_RETRY);
	}
}

bool
barrier_saga_old(int64_t started_ms, int64_t now_ms, int64_t retention_s)
{
	int64_t keep_s;

	if (retention_s < 0 || retention_s > INT64_MAX / 1000) {
		return (false);
	}
	keep_s = retention_s - retention_s / BARRIER_OLD_MARGIN;
	/* now_ms - started_ms cannot overflow for any real clock; a saga
	 * from the future is young. */
	return (now_ms > started_ms && now_ms - started_ms > keep_s * 1000);
}

barrier_commit
barrier_settle(uint32_t kind, int outcome, bool tx_aborted)
{
	if (tx_aborted || kind > BARRIER_COMPENSATION) {
		return (BARRIER_ROLLBACK_RETRY);
	}
	switch (outcome) {
	case BARRIER_OUTCOME_OK:
		return (BARRIER_COMMIT_OK);
	case BARRIER_OUTCOME_FAILED:
		return (kind == BARRIER_ACTION ? BARRIER_COMMIT_FAILED
		                               : BARRIER_ROLLBACK_FAILED);
	default:
		return (BARRIER_ROLLBACK_RETRY);
	}
}

barrier_found
barrier_found_parse(const char *outcome)
{
	if (outcome == NULL) {
		return (BARRIER_FOUND_GONE);
	}
	if (strcmp(outcome, "ok") == 0) {
		return (BARRIER_FOUND_OK);
	}
	if (strcmp(outcome, "failed") == 0) {
		return (BARRIER_FOUND_FAILED);
	}
	if (strcmp(outcome, "aborted") == 0) {
		return (BARRIER_FOUND_ABORTED);
	}
	return (BARRIER_FOUND_GONE);
}

const char *
barrier_decision_name(barrier_decision d)
{
	switch (d) {
	case BARRIER_RUN:
		return ("run");
	case BARRIER_REPLAY:
		return ("replay");
	case BARRIER_REFUSE:
		return ("refuse");
	case BARRIER_NULL:
		return ("null");
	case BARRIER_RETRY:
		return ("retry");
	case BARRIER_EXPIRED:
		return ("expired");
	}
	return ("unknown");
}

const char *
barrier_found_name(barrier_found f)
{
	switch (f) {
	case BARRIER_INSERTED:
		return ("inserted");
	case BARRIER_FOUND_OK:
		return ("ok");
	case BARRIER_FOUND_FAILED:
		return ("failed");
	case BARRIER_FOUND_ABORTED:
		return ("aborted");
	case BARRIER_FOUND_GONE:
	case BARRIER_FOUND_COUNT:
		break;
	}
	return ("gone");
}
