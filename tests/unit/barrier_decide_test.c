/* SPDX-License-Identifier: MIT */
/*
 * barrier_decide_test: the barrier's pure decisions (DESIGN.md, invariant
 * 2), exhaustively: every kind x what the action's insert found x what the
 * compensation's insert found, against a table written out by hand, then
 * each rule on its own; and every handler outcome x kind x aborted
 * transaction for barrier_settle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "barrier_decide.h"

#define A BARRIER_ACTION
#define C BARRIER_COMPENSATION

enum { I = BARRIER_INSERTED, OK = BARRIER_FOUND_OK,
	FL = BARRIER_FOUND_FAILED, AB = BARRIER_FOUND_ABORTED,
	GN = BARRIER_FOUND_GONE };

enum { RUN = BARRIER_RUN, REP = BARRIER_REPLAY, REF = BARRIER_REFUSE,
	NUL = BARRIER_NULL, RET = BARRIER_RETRY, EXP = BARRIER_EXPIRED };

/* A compensation: rows = what the action's key insert found, columns =
 * what its own insert found (I, OK, FL, AB, GN). */
static const int comp_table[BARRIER_FOUND_COUNT][BARRIER_FOUND_COUNT] = {
	/* action I  */ { NUL, REP, RET, RET, RET },
	/* action OK */ { RUN, REP, RET, RET, RET },
	/* action FL */ { NUL, REP, RET, RET, RET },
	/* action AB */ { NUL, REP, RET, RET, RET },
	/* action GN */ { RET, REP, RET, RET, RET },
};

/* An action: by what its insert found. */
static const int action_table[BARRIER_FOUND_COUNT] = {
	/* I */ RUN, /* OK */ REP, /* FL */ REP, /* AB */ REF, /* GN */ RET,
};

static void
test_barrier_decide_table(void **state)
{
	(void) state;
	for (int a = 0; a < BARRIER_FOUND_COUNT; a++) {
		for (int c = 0; c < BARRIER_FOUND_COUNT; c++) {
			/* An action ignores the compensation's row. */
			assert_int_equal(barrier_decide(A, (barrier_found) a,
			                     (barrier_found) c, false),
			    action_table[a]);
			assert_int_equal(barrier_decide(C, (barrier_found) a,
			                     (barrier_found) c, false),
			    comp_table[a][c]);
			/* Kinds other than 0 and 1 are never guessed. */
			assert_int_equal(barrier_decide(2, (barrier_found) a,
			                     (barrier_found) c, false),
			    BARRIER_RETRY);
			assert_int_equal(barrier_decide(UINT32_MAX,
			                     (barrier_found) a,
			                     (barrier_found) c, false),
			    BARRIER_RETRY);
		}
	}
}

static void
test_barrier_decide_action_first_delivery_runs(void **state)
{
	(void) state;
	assert_int_equal(barrier_decide(A, BARRIER_INSERTED,
	                     BARRIER_INSERTED, false),
	    BARRIER_RUN);
}

static void
test_barrier_decide_action_duplicate_replays(void **state)
{
	(void) state;
	/* Whatever the outcome recorded, ok or failed, and attempts do not
	 * matter: the key has no attempt. */
	assert_int_equal(barrier_decide(A, BARRIER_FOUND_OK,
	                     BARRIER_INSERTED, false),
	    BARRIER_REPLAY);
	assert_int_equal(barrier_decide(A, BARRIER_FOUND_FAILED,
	                     BARRIER_INSERTED, false),
	    BARRIER_REPLAY);
}

static void
test_barrier_decide_action_after_compensation_refused(void **state)
{
	(void) state;
	/* The row a compensation wrote for an action that never ran. */
	for (int c = 0; c < BARRIER_FOUND_COUNT; c++) {
		assert_int_equal(barrier_decide(A, BARRIER_FOUND_ABORTED,
		                     (barrier_found) c, false),
		    BARRIER_REFUSE);
	}
}

static void
test_barrier_decide_compensation_duplicate_replays(void **state)
{
	(void) state;
	/* Its own row decides, whatever the action's insert found. */
	for (int a = 0; a < BARRIER_FOUND_COUNT; a++) {
		assert_int_equal(barrier_decide(C, (barrier_found) a,
		                     BARRIER_FOUND_OK, false),
		    BARRIER_REPLAY);
	}
}

static void
test_barrier_decide_compensation_runs_only_after_ok(void **state)
{
	(void) state;
	assert_int_equal(barrier_decide(C, BARRIER_FOUND_OK,
	                     BARRIER_INSERTED, false),
	    BARRIER_RUN);
	for (int a = 0; a < BARRIER_FOUND_COUNT; a++) {
		if (a == BARRIER_FOUND_OK) {
			continue;
		}
		for (int c = 0; c < BARRIER_FOUND_COUNT; c++) {
			assert_int_not_equal(barrier_decide(C,
			                         (barrier_found) a,
			                         (barrier_found) c, false),
			    BARRIER_RUN);
		}
	}
}

static void
test_barrier_decide_null_compensation(void **state)
{
	(void) state;
	/* The action never ran (its key was inserted 'aborted' now). */
	assert_int_equal(barrier_decide(C, BARRIER_INSERTED,
	                     BARRIER_INSERTED, false),
	    BARRIER_NULL);
	/* The action failed: its work was rolled back. */
	assert_int_equal(barrier_decide(C, BARRIER_FOUND_FAILED,
	                     BARRIER_INSERTED, false),
	    BARRIER_NULL);
	/* An earlier compensation aborted it (its own row purged since). */
	assert_int_equal(barrier_decide(C, BARRIER_FOUND_ABORTED,
	                     BARRIER_INSERTED, false),
	    BARRIER_NULL);
}

static void
test_barrier_decide_gone_retries(void **state)
{
	(void) state;
	assert_int_equal(barrier_decide(A, BARRIER_FOUND_GONE,
	                     BARRIER_INSERTED, false),
	    BARRIER_RETRY);
	assert_int_equal(barrier_decide(C, BARRIER_FOUND_GONE,
	                     BARRIER_INSERTED, false),
	    BARRIER_RETRY);
	assert_int_equal(barrier_decide(C, BARRIER_FOUND_OK,
	                     BARRIER_FOUND_GONE, false),
	    BARRIER_RETRY);
}

static void
test_barrier_decide_impossible_states_retry(void **state)
{
	(void) state;
	/* The barrier never records a compensation as failed or aborted. */
	for (int a = 0; a < BARRIER_FOUND_COUNT; a++) {
		assert_int_equal(barrier_decide(C, (barrier_found) a,
		                     BARRIER_FOUND_FAILED, false),
		    BARRIER_RETRY);
		assert_int_equal(barrier_decide(C, (barrier_found) a,
		                     BARRIER_FOUND_ABORTED, false),
		    BARRIER_RETRY);
	}
	/* Values outside the enum. */
	assert_int_equal(barrier_decide(A, BARRIER_FOUND_COUNT,
	                     BARRIER_INSERTED, false),
	    BARRIER_RETRY);
	assert_int_equal(barrier_decide(C, BARRIER_FOUND_OK,
	                     BARRIER_FOUND_COUNT, false),
	    BARRIER_RETRY);
	assert_int_equal(barrier_decide(C, BARRIER_FOUND_COUNT,
	                     BARRIER_INSERTED, false),
	    BARRIER_RETRY);
}

static void
test_barrier_decide_old_saga_trusts_no_missing_row(void **state)
{
	(void) state;
	/* Old (its rows may have been purged): what the inserts found
	 * decides as when young, except "nothing": an action's first
	 * delivery and a null compensation of an action never seen. */
	for (int a = 0; a < BARRIER_FOUND_COUNT; a++) {
		for (int c = 0; c < BARRIER_FOUND_COUNT; c++) {
			assert_int_equal(barrier_decide(A, (barrier_found) a,
			                     (barrier_found) c, true),
			    a == I ? EXP : action_table[a]);
			assert_int_equal(barrier_decide(C, (barrier_found) a,
			                     (barrier_found) c, true),
			    a == I && c == I ? EXP : comp_table[a][c]);
			assert_int_equal(barrier_decide(2, (barrier_found) a,
			                     (barrier_found) c, true),
			    BARRIER_RETRY);
		}
	}
	/* The reproduction: the action's ok row purged, its compensation
	 * finds nothing; never a null compensation. */
	assert_int_equal(barrier_decide(C, BARRIER_INSERTED,
	                     BARRIER_INSERTED, true),
	    BARRIER_EXPIRED);
	/* Evidence found still decides: the action's row ok, failed, or
	 * aborted by an earlier compensation. */
	assert_int_equal(barrier_decide(C, BARRIER_FOUND_OK,
	                     BARRIER_INSERTED, true),
	    BARRIER_RUN);
	assert_int_equal(barrier_decide(C, BARRIER_FOUND_FAILED,
	                     BARRIER_INSERTED, true),
	    BARRIER_NULL);
	assert_int_equal(barrier_decide(A, BARRIER_FOUND_ABORTED,
	                     BARRIER_INSERTED, true),
	    BARRIER_REFUSE);
}

static void
test_barrier_saga_old_margin(void **state)
{
	const int64_t day = 86400, now = 1800000000000LL;
	const int64_t week = 7 * day;
	/* The default retention, 7 days, less a tenth: 544,320 s. */
	const int64_t keep_ms = (week - week / 10) * 1000;

	(void) state;
	assert_int_equal(keep_ms, 544320000LL);
	assert_false(barrier_saga_old(now - keep_ms, now, week));
	assert_true(barrier_saga_old(now - keep_ms - 1, now, week));
	assert_true(barrier_saga_old(now - 8 * day * 1000, now, week));
	assert_false(barrier_saga_old(now - 6 * day * 1000, now, week));
	assert_false(barrier_saga_old(now, now, week));
	/* A saga from the future (a clock ahead) is young. */
	assert_false(barrier_saga_old(now + day * 1000, now, week));
	/* -1: never purged, never old; nor a retention too large to
	 * count in ms. */
	assert_false(barrier_saga_old(0, now, -1));
	assert_false(barrier_saga_old(0, now, INT64_MAX));
	/* A short retention scales its margin: 1 h less 6 min. */
	assert_false(barrier_saga_old(now - 3240 * 1000, now, 3600));
	assert_true(barrier_saga_old(now - 3240 * 1000 - 1, now, 3600));
}

static void
test_barrier_settle_table(void **state)
{
	static const int outcomes[] = { BARRIER_OUTCOME_OK,
		BARRIER_OUTCOME_FAILED, BARRIER_OUTCOME_RETRY,
		BARRIER_OUTCOME_NONE, 3, 99 };

	(void) state;
	for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
		int o = outcomes[i];

		for (uint32_t k = 0; k <= 2; k++) {
			barrier_commit want;

			/* An aborted transaction is always a retry, and so
			 * is anything that is not ok or failed. */
			assert_int_equal(barrier_settle(k, o, true),
			    BARRIER_ROLLBACK_RETRY);
			if (k > 1) {
				want = BARRIER_ROLLBACK_RETRY;
			} else if (o == BARRIER_OUTCOME_OK) {
				want = BARRIER_COMMIT_OK;
			} else if (o == BARRIER_OUTCOME_FAILED) {
				want = k == A ? BARRIER_COMMIT_FAILED
				              : BARRIER_ROLLBACK_FAILED;
			} else {
				want = BARRIER_ROLLBACK_RETRY;
			}
			assert_int_equal(barrier_settle(k, o, false), want);
		}
	}
}

static void
test_barrier_settle_failed_action_keeps_its_row(void **state)
{
	(void) state;
	assert_int_equal(barrier_settle(A, BARRIER_OUTCOME_FAILED, false),
	    BARRIER_COMMIT_FAILED);
}

static void
test_barrier_settle_failed_compensation_records_nothing(void **state)
{
	(void) state;
	assert_int_equal(barrier_settle(C, BARRIER_OUTCOME_FAILED, false),
	    BARRIER_ROLLBACK_FAILED);
}

static void
test_barrier_settle_crash_is_retry_never_failed(void **state)
{
	(void) state;
	assert_int_equal(barrier_settle(A, BARRIER_OUTCOME_NONE, false),
	    BARRIER_ROLLBACK_RETRY);
	assert_int_equal(barrier_settle(A, BARRIER_OUTCOME_FAILED, true),
	    BARRIER_ROLLBACK_RETRY);
	assert_int_equal(barrier_settle(A, BARRIER_OUTCOME_OK, true),
	    BARRIER_ROLLBACK_RETRY);
	assert_int_equal(barrier_settle(C, BARRIER_OUTCOME_OK, true),
	    BARRIER_ROLLBACK_RETRY);
}

static void
test_barrier_found_parse_and_names(void **state)
{
	(void) state;
	assert_int_equal(barrier_found_parse("ok"), BARRIER_FOUND_OK);
	assert_int_equal(barrier_found_parse("failed"), BARRIER_FOUND_FAILED);
	assert_int_equal(barrier_found_parse("aborted"),
	    BARRIER_FOUND_ABORTED);
	assert_int_equal(barrier_found_parse(NULL), BARRIER_FOUND_GONE);
	assert_int_equal(barrier_found_parse(""), BARRIER_FOUND_GONE);
	assert_int_equal(barrier_found_parse("OK"), BARRIER_FOUND_GONE);
	assert_int_equal(barrier_found_parse("okay"), BARRIER_FOUND_GONE);

	assert_string_equal(barrier_decision_name(BARRIER_RUN), "run");
	assert_string_equal(barrier_decision_name(BARRIER_REPLAY), "replay");
	assert_string_equal(barrier_decision_name(BARRIER_REFUSE), "refuse");
	assert_string_equal(barrier_decision_name(BARRIER_NULL), "null");
	assert_string_equal(barrier_decision_name(BARRIER_RETRY), "retry");
	assert_string_equal(
	    barrier_decision_name(BARRIER_EXPIRED), "expired");
	assert_string_equal(
	    barrier_decision_name((barrier_decision) 42), "unknown");
	assert_string_equal(barrier_found_name(BARRIER_INSERTED), "inserted");
	assert_string_equal(barrier_found_name(BARRIER_FOUND_OK), "ok");
	assert_string_equal(barrier_found_name(BARRIER_FOUND_FAILED),
	    "failed");
	assert_string_equal(barrier_found_name(BARRIER_FOUND_ABORTED),
	    "aborted");
	assert_string_equal(barrier_found_name(BARRIER_FOUND_GONE), "gone");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_barrier_decide_table),
		cmocka_unit_test(
		    test_barrier_decide_action_first_delivery_runs),
		cmocka_unit_test(test_barrier_decide_action_duplicate_replays),
		cmocka_unit_test(
		    test_barrier_decide_action_after_compensation_refused),
		cmocka_unit_test(
		    test_barrier_decide_compensation_duplicate_replays),
		cmocka_unit_test(
		    test_barrier_decide_compensation_runs_only_after_ok),
		cmocka_unit_test(test_barrier_decide_null_compensation),
		cmocka_unit_test(test_barrier_decide_gone_retries),
		cmocka_unit_test(test_barrier_decide_impossible_states_retry),
		cmocka_unit_test(
		    test_barrier_decide_old_saga_trusts_no_missing_row),
		cmocka_unit_test(test_barrier_saga_old_margin),
		cmocka_unit_test(test_barrier_settle_table),
		cmocka_unit_test(
		    test_barrier_settle_failed_action_keeps_its_row),
		cmocka_unit_test(
		    test_barrier_settle_failed_compensation_records_nothing),
		cmocka_unit_test(
		    test_barrier_settle_crash_is_retry_never_failed),
		cmocka_unit_test(test_barrier_found_parse_and_names),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
