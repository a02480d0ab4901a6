/* SPDX-License-Identifier: MIT */
/*
 * saga_engine_test: the saga state machine, walked through every rule of
 * coordinator/saga_engine.h and DESIGN.md invariant 3.
 *
 * Each test builds a small definition from a spec string, one letter per
 * step: 'c' compensatable, 'p' pivot without compensation, 'P' pivot with
 * one, 'r' retriable, and 'n' a step without compensation in a saga
 * without a pivot (coord_config refuses that one, but the engine must
 * still skip a step without compensation wherever it stands). A driver
 * feeds events, records every command sent and every log row, and checks
 * on every transition that log sequence numbers are consecutive. The
 * tests check the effects exactly: which (step, kind, attempt) goes out
 * and in which order, when the saga wants to wake up, what the log says
 * and what the client or operator is answered. The last test drives
 * sagas with random events for many seeds and checks the invariants after
 * every transition (SAGA_ENGINE_TEST_TRACE=<seed> prints one seed's walk).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto_msg.h"
#include "saga_def.h"
#include "saga_engine.h"
#include "saga_err.h"

/* Limits of the driver. */
#define TEST_MAX_STEPS 8
#define TEST_MAX_SENDS 1024
#define TEST_MAX_LOGS  4096

/* The time every saga starts at (a real clock never reads 0). */
#define T0 1000000

/* The default policies that test_def_alloc gives every step. */
#define ACT_MAX          3
#define ACT_INITIAL      100
#define ACT_MAX_BACKOFF  1000
#define COMP_MAX         4
#define COMP_INITIAL     50
#define COMP_MAX_BACKOFF 400

/* One command the engine asked to send. */
typedef struct sent {
	int32_t  step;
	uint32_t kind;
	uint32_t attempt;
} sent;

/* The driver: one saga, its definition, and what happened to it. */
typedef struct drv {
	saga_def     *def;
	saga_inst     inst;
	proto_raw     outputs[TEST_MAX_STEPS];
	int64_t       now;
	saga_fx       fx;
	sent          sends[TEST_MAX_SENDS];
	size_t        nsends;
	saga_log_type logs[TEST_MAX_LOGS];
	size_t        nlogs;
	unsigned      seed; /* random test: reported on failure */
	unsigned      nevents;
} drv;

/* Fails with the seed and event number of the random test. */
#define DRV_CHECK(d, cond)                                                  \
	do {                                                                \
		if (!(cond)) {                                              \
			fail_msg("%s:%d: %s (seed %u, event %u)", __FILE__, \
			    __LINE__, #cond, (d)->seed, (d)->nevents);      \
		}                                                           \
	} while (0)

/* The outputs replies carry: one byte each, told apart by address. */
static const uint8_t test_out_bytes[TEST_MAX_STEPS]
    = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80 };

static proto_raw
test_output(int32_t step)
{
	proto_raw r = { NULL, 0 };

	if (step >= 0 && step < TEST_MAX_STEPS) {
		r.ptr = &test_out_bytes[step];
		r.len = 1;
	}
	return (r);
}

static char *
test_strdup(const char *fmt, size_t i)
{
	char  buf[32];
	char *s;

	snprintf(buf, sizeof(buf), fmt, i);
	s = strdup(buf);
	assert_non_null(s);
	return (s);
}

/* Builds a definition from a spec (see the file comment). Every step gets
 * the default policies; tests change them in place. */
static saga_def *
test_def_alloc(const char *spec)
{
	size_t    n = strlen(spec);
	saga_def *d;

	assert_true(n <= TEST_MAX_STEPS);
	d = calloc(1, sizeof(*d));
	assert_non_null(d);
	d->name   = strdup("test_saga");
	d->nsteps = n;
	d->steps  = calloc(n == 0 ? 1 : n, sizeof(*d->steps));
	d->pivot  = -1;
	assert_non_null(d->steps);
	for (size_t i = 0; i < n; i++) {
		saga_step_def *s = &d->steps[i];

		s->name        = test_strdup("s%zu", i);
		s->participant = test_strdup("p%zu", i);
		s->action      = test_strdup("a%zu", i);
		switch (spec[i]) {
		case 'c':
			s->kind         = SAGA_STEP_COMPENSATABLE;
			s->compensation = test_strdup("c%zu", i);
			break;
		case 'p':
			s->kind  = SAGA_STEP_PIVOT;
			d->pivot = (int) i;
			break;
		case 'P':
			s->kind         = SAGA_STEP_PIVOT;
			s->compensation = test_strdup("c%zu", i);
			d->pivot        = (int) i;
			break;
		case 'r':
		case 'n':
			s->kind = SAGA_STEP_RETRIABLE;
			break;
		default:
			fail_msg("bad spec letter %c", spec[i]);
		}
		s->timeout_ms     = 1000;
		s->retry          = (saga_retry) { ACT_MAX, ACT_INITIAL, 2.0,
			         ACT_MAX_BACKOFF, 0.0 };
		s->comp_retry     = (saga_retry) { COMP_MAX, COMP_INITIAL, 2.0,
			    COMP_MAX_BACKOFF, 0.0 };
		s->comp_budget_ms = 0;
	}
	return (d);
}

/* Definitions not yet freed: a failing assertion jumps out of the test,
 * and test_teardown frees what it left behind. */
static saga_def *test_live_defs[4];

static void
drv_init(drv *d, const char *spec)
{
	memset(d, 0, sizeof(*d));
	d->def = test_def_alloc(spec);
	for (size_t i = 0;; i++) {
		assert_true(i < sizeof(test_live_defs) / sizeof(saga_def *));
		if (test_live_defs[i] == NULL) {
			test_live_defs[i] = d->def;
			break;
		}
	}
	d->now             = T0;
	d->inst.def        = d->def;
	d->inst.outputs    = d->outputs;
	d->inst.created_ms = T0;
	d->inst.id.b[0]    = 0x01;
	d->inst.id.b[6]    = 0x70;
}

static void
drv_fini(drv *d)
{
	for (size_t i = 0; i < sizeof(test_live_defs) / sizeof(saga_def *);
	     i++) {
		if (test_live_defs[i] == d->def) {
			test_live_defs[i] = NULL;
		}
	}
	saga_def_free(d->def);
	d->def = NULL;
}

/* A heap block a test owns (the random test's state), freed by
 * test_teardown when the test fails before freeing it. */
static void *test_live_block;

static int
test_teardown(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof(test_live_defs) / sizeof(saga_def *);
	     i++) {
		saga_def_free(test_live_defs[i]);
		test_live_defs[i] = NULL;
	}
	free(test_live_block);
	test_live_block = NULL;
	return (0);
}

/* Checks and records the effects of the transition that just ran. */
static void
drv_record(drv *d, uint32_t seq_before)
{
	saga_fx *fx = &d->fx;

	d->nevents++;
	DRV_CHECK(d, fx->nlogs <= SAGA_FX_MAX_LOGS);
	for (size_t i = 0; i < fx->nlogs; i++) {
		const saga_log *l = &fx->logs[i];

		DRV_CHECK(d, l->seq == seq_before + 1 + i);
		DRV_CHECK(d, l->at_ms == d->now);
		DRV_CHECK(
		    d, l->step >= -1 && l->step < (int32_t) d->def->nsteps);
		DRV_CHECK(d, d->nlogs < TEST_MAX_LOGS);
		d->logs[d->nlogs++] = l->type;
	}
	DRV_CHECK(d, d->inst.seq == seq_before + fx->nlogs);
	if (fx->nlogs > 0) {
		DRV_CHECK(d, fx->changed);
		DRV_CHECK(d, !fx->ignored);
	}
	if (fx->send) {
		const saga_log *l = &fx->logs[fx->nlogs - 1];

		DRV_CHECK(d, d->inst.in_flight);
		DRV_CHECK(d, d->inst.attempt >= 1);
		DRV_CHECK(d, d->nsends < TEST_MAX_SENDS);
		/* The last row is the step_sent of this very command. */
		DRV_CHECK(d, fx->nlogs > 0 && l->type == SAGA_LOG_SENT);
		DRV_CHECK(d, l->step == d->inst.step);
		DRV_CHECK(d, l->kind == (int32_t) saga_engine_kind(&d->inst));
		DRV_CHECK(d, l->attempt == d->inst.attempt);
		d->sends[d->nsends++] = (sent) { d->inst.step,
			saga_engine_kind(&d->inst), d->inst.attempt };
	}
	if (fx->output_taken) {
		DRV_CHECK(d, fx->context_changed);
	}
}

static void
drv_start(drv *d)
{
	memset(&d->fx, 0, sizeof(d->fx));
	saga_engine_start(&d->inst, d->now, &d->fx);
	drv_record(d, 0);
}

static void
drv_event(drv *d, saga_ev *ev)
{
	uint32_t seq = d->inst.seq;

	ev->now_ms = d->now;
	memset(&d->fx, 0, sizeof(d->fx));
	saga_engine_event(&d->inst, ev, &d->fx);
	drv_record(d, seq);
}

/* A reply for (step, kind, attempt). */
static void
drv_reply(
    drv *d, int32_t step, uint32_t kind, uint32_t attempt, uint32_t outcome)
{
	saga_ev ev = { 0 };

	ev.type        = SAGA_EV_REPLY;
	ev.step        = step;
	ev.kind        = kind;
	ev.attempt     = attempt;
	ev.outcome     = outcome;
	ev.duration_us = 1234;
	ev.rnd         = UINT32_MAX / 2;
	if (outcome == PROTO_OUTCOME_OK && kind == SAGA_KIND_ACTION) {
		ev.output = test_output(step);
	}
	if (outcome == PROTO_OUTCOME_FAILED) {
		ev.text = "out of stock";
	}
	drv_event(d, &ev);
}

/* A reply with outcome for the command the saga awaits now. */
static void
drv_answer(drv *d, uint32_t outcome)
{
	drv_reply(d, d->inst.step, saga_engine_kind(&d->inst), d->inst.attempt,
	    outcome);
}

static void
drv_ok(drv *d)
{
	drv_answer(d, PROTO_OUTCOME_OK);
}

/* An ERROR or TIMEOUT for (step, kind, attempt). */
static void
drv_lost(
    drv *d, saga_ev_type type, int32_t step, uint32_t kind, uint32_t attempt)
{
	saga_ev ev = { 0 };

	ev.type    = type;
	ev.step    = step;
	ev.kind    = kind;
	ev.attempt = attempt;
	ev.rnd     = UINT32_MAX / 2;
	ev.text    = type == SAGA_EV_ERROR ? "connection refused" : NULL;
	drv_event(d, &ev);
}

/* A retry reply, an error or a timeout of the current command; type is
 * SAGA_EV_REPLY for the retry reply. */
static void
drv_transient(drv *d, saga_ev_type type)
{
	if (type == SAGA_EV_REPLY) {
		drv_answer(d, PROTO_OUTCOME_RETRY);
	} else {
		drv_lost(d, type, d->inst.step, saga_engine_kind(&d->inst),
		    d->inst.attempt);
	}
}

/* A timer at time at (the clock moves there). */
static void
drv_timer(drv *d, int64_t at)
{
	saga_ev ev = { 0 };

	assert_true(at >= d->now);
	d->now  = at;
	ev.type = SAGA_EV_TIMER;
	ev.rnd  = UINT32_MAX / 2;
	drv_event(d, &ev);
}

/* A cancel, an operator retry, resolve or skip. */
static void
drv_request(drv *d, saga_ev_type type, const char *text, const char *step_name)
{
	saga_ev ev = { 0 };

	ev.type      = type;
	ev.text      = text;
	ev.step_name = step_name;
	drv_event(d, &ev);
}

/* Runs the saga forward with ok replies until step is the current one. */
static void
drv_ok_until(drv *d, int32_t step)
{
	while (d->inst.step < step) {
		assert_int_equal(d->inst.state, SAGA_ST_RUNNING);
		drv_ok(d);
	}
	assert_int_equal(d->inst.step, step);
	assert_int_equal(d->inst.state, SAGA_ST_RUNNING);
}

/* Answers ok to every compensation until the saga stops compensating. */
static void
drv_ok_comps(drv *d)
{
	int guard = 0;

	while (d->inst.state == SAGA_ST_COMPENSATING && guard++ < 100) {
		assert_int_equal(saga_engine_kind(&d->inst), SAGA_KIND_COMP);
		drv_ok(d);
	}
}

static void
assert_sent(
    const drv *d, size_t i, int32_t step, uint32_t kind, uint32_t attempt)
{
	assert_true(i < d->nsends);
	assert_int_equal(d->sends[i].step, step);
	assert_int_equal(d->sends[i].kind, kind);
	assert_int_equal(d->sends[i].attempt, attempt);
}

/* The last command sent is (step, kind, attempt), sent by the last
 * transition. */
static void
assert_last_sent(const drv *d, int32_t step, uint32_t kind, uint32_t attempt)
{
	assert_true(d->fx.send);
	assert_sent(d, d->nsends - 1, step, kind, attempt);
	assert_true(d->inst.in_flight);
}

/* The log rows of the last transition are exactly types[0..n). */
static void
assert_fx_logs(const drv *d, const saga_log_type *types, size_t n)
{
	assert_int_equal(d->fx.nlogs, n);
	for (size_t i = 0; i < n; i++) {
		if (d->fx.logs[i].type != types[i]) {
			fail_msg("log row %zu is %s, expected %s", i,
			    saga_log_name(d->fx.logs[i].type),
			    saga_log_name(types[i]));
		}
	}
}

#define ASSERT_FX_LOGS(d, ...)                                                \
	do {                                                                  \
		const saga_log_type want_[] = { __VA_ARGS__ };                \
		assert_fx_logs((d), want_, sizeof(want_) / sizeof(want_[0])); \
	} while (0)

/* A copy of the instance's fields, to check that nothing changed. */
typedef struct snap {
	saga_inst inst;
	proto_raw outputs[TEST_MAX_STEPS];
	size_t    nsends;
	size_t    nlogs;
} snap;

static void
snap_take(const drv *d, snap *s)
{
	s->inst = d->inst;
	memcpy(s->outputs, d->outputs, sizeof(s->outputs));
	s->nsends = d->nsends;
	s->nlogs  = d->nlogs;
}

static void
assert_unchanged(const drv *d, const snap *s)
{
	const saga_inst *a = &s->inst;
	const saga_inst *b = &d->inst;

	assert_false(d->fx.changed);
	assert_false(d->fx.context_changed);
	assert_false(d->fx.send);
	assert_false(d->fx.finished);
	assert_false(d->fx.output_taken);
	assert_int_equal(d->fx.nlogs, 0);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->step, b->step);
	assert_int_equal(a->attempt, b->attempt);
	assert_int_equal(a->max_sent, b->max_sent);
	assert_int_equal(a->in_flight, b->in_flight);
	assert_int_equal(a->next_at_ms, b->next_at_ms);
	assert_int_equal(a->phase_start_ms, b->phase_start_ms);
	assert_int_equal(a->deadline_ms, b->deadline_ms);
	assert_int_equal(a->seq, b->seq);
	assert_string_equal(a->last_error, b->last_error);
	assert_memory_equal(s->outputs, d->outputs, sizeof(s->outputs));
	assert_int_equal(s->nsends, d->nsends);
	assert_int_equal(s->nlogs, d->nlogs);
}

/* The event did not apply: ignored, and nothing changed. */
static void
assert_ignored(const drv *d, const snap *s)
{
	assert_true(d->fx.ignored);
	assert_unchanged(d, s);
}

/* A request was refused with SAGA_ESTATE and a reason; nothing changed. */
static void
assert_refused(const drv *d, const snap *s)
{
	assert_int_equal(d->fx.answer, SAGA_ESTATE);
	assert_true(strlen(d->fx.answer_text) > 0);
	assert_unchanged(d, s);
}

/* Names, parsing and terminal states. */
static void
test_saga_engine_names(void **state)
{
	saga_state st;

	(void) state;
	for (int i = SAGA_ST_RUNNING; i <= SAGA_ST_RESOLVED; i++) {
		assert_int_equal(
		    saga_state_parse(saga_state_name((saga_state) i), &st), 0);
		assert_int_equal(st, i);
	}
	assert_int_equal(saga_state_parse("BOGUS", &st), SAGA_EINVAL);
	assert_string_equal(saga_state_name((saga_state) 99), "UNKNOWN");
	assert_false(saga_state_terminal(SAGA_ST_RUNNING));
	assert_false(saga_state_terminal(SAGA_ST_COMPENSATING));
	assert_true(saga_state_terminal(SAGA_ST_COMPLETED));
	assert_true(saga_state_terminal(SAGA_ST_COMPENSATED));
	assert_true(saga_state_terminal(SAGA_ST_FAILED));
	assert_true(saga_state_terminal(SAGA_ST_RESOLVED));
	assert_string_equal(saga_log_name(SAGA_LOG_STARTED), "saga_started");
	assert_string_equal(
	    saga_log_name(SAGA_LOG_DEADLINE), "deadline_passed");
	assert_string_equal(saga_log_name(SAGA_LOG_PARKED), "saga_failed");
	assert_string_equal(
	    saga_log_name(SAGA_LOG_LOAD_FAILED), "load_failed");
	assert_string_equal(saga_log_name((saga_log_type) 99), "unknown");
	assert_string_equal(saga_outcome_name(PROTO_OUTCOME_OK), "ok");
	assert_string_equal(saga_outcome_name(PROTO_OUTCOME_RETRY), "retry");
	assert_string_equal(
	    saga_outcome_name(SAGA_OUTCOME_TIMEOUT), "timeout");
	assert_string_equal(saga_outcome_name(SAGA_OUTCOME_ERROR), "error");
}

/* Every step answers ok: steps 0..n-1 are sent in order with attempt 1,
 * their outputs stored, and the saga completes. */
static void
test_saga_engine_success_path(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	ASSERT_FX_LOGS(&d, SAGA_LOG_STARTED, SAGA_LOG_SENT);
	assert_true(d.fx.context_changed);
	assert_int_equal(d.inst.state, SAGA_ST_RUNNING);
	assert_int_equal(d.inst.max_sent, 0);
	assert_last_sent(&d, 0, SAGA_KIND_ACTION, 1);
	assert_string_equal(saga_engine_command_name(&d.inst), "a0");
	assert_int_equal(saga_engine_wake_at(&d.inst), 0);
	for (int32_t i = 0; i < 5; i++) {
		assert_int_equal(d.inst.step, i);
		d.now += 10;
		drv_ok(&d);
		assert_true(d.fx.output_taken);
		assert_true(d.fx.context_changed);
		assert_ptr_equal(d.outputs[i].ptr, test_output(i).ptr);
		assert_int_equal(d.fx.logs[0].outcome, PROTO_OUTCOME_OK);
		assert_ptr_equal(d.fx.logs[0].output.ptr, test_output(i).ptr);
		assert_int_equal(d.fx.logs[0].duration_us, 1234);
		if (i < 4) {
			ASSERT_FX_LOGS(&d, SAGA_LOG_OK, SAGA_LOG_SENT);
			assert_last_sent(&d, i + 1, SAGA_KIND_ACTION, 1);
			assert_int_equal(d.inst.max_sent, i + 1);
			assert_false(d.fx.finished);
		}
	}
	ASSERT_FX_LOGS(&d, SAGA_LOG_OK, SAGA_LOG_COMPLETED);
	assert_false(d.fx.send);
	assert_true(d.fx.finished);
	assert_int_equal(d.inst.state, SAGA_ST_COMPLETED);
	assert_false(d.inst.in_flight);
	assert_true(saga_engine_pivot_done(&d.inst));
	assert_int_equal(saga_engine_wake_at(&d.inst), 0);
	assert_int_equal(d.nsends, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_sent(&d, i, (int32_t) i, SAGA_KIND_ACTION, 1);
	}
	/* saga_started, then (step_sent, step_ok) x 5, saga_completed. */
	assert_int_equal(d.nlogs, 12);
	assert_int_equal(d.logs[0], SAGA_LOG_STARTED);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(d.logs[1 + 2 * i], SAGA_LOG_SENT);
		assert_int_equal(d.logs[2 + 2 * i], SAGA_LOG_OK);
	}
	assert_int_equal(d.logs[11], SAGA_LOG_COMPLETED);
	assert_int_equal(d.inst.seq, 12);
	drv_fini(&d);
}

/* A definition without steps completes at once, sending nothing. */
static void
test_saga_engine_empty_saga_completes(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "");
	drv_start(&d);
	ASSERT_FX_LOGS(&d, SAGA_LOG_STARTED, SAGA_LOG_COMPLETED);
	assert_false(d.fx.send);
	assert_true(d.fx.finished);
	assert_int_equal(d.inst.state, SAGA_ST_COMPLETED);
	assert_int_equal(d.inst.seq, 2);
	drv_fini(&d);
}

/* Runs spec, fails step k with a business failure, answers ok to every
 * compensation, and checks that exactly the steps <= k that have a
 * compensation were compensated, in reverse order. */
static void
check_failure_at(const char *spec, int32_t k)
{
	drv    d;
	size_t first;
	char   want[64];

	drv_init(&d, spec);
	drv_start(&d);
	drv_ok_until(&d, k);
	first = d.nsends;
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	assert_int_equal(d.fx.logs[0].type, SAGA_LOG_FAILED);
	assert_int_equal(d.fx.logs[0].outcome, PROTO_OUTCOME_FAILED);
	assert_string_equal(d.fx.logs[0].error, "out of stock");
	assert_int_equal(d.fx.logs[1].type, SAGA_LOG_COMPENSATING);
	snprintf(want, sizeof(want), "step s%d failed: out of stock", k);
	assert_string_equal(d.inst.last_error, want);
	assert_string_equal(d.fx.logs[1].error, want);
	drv_ok_comps(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
	assert_true(d.fx.finished);
	assert_int_equal(d.fx.logs[d.fx.nlogs - 1].type, SAGA_LOG_COMPENSATED);
	for (int32_t j = k; j >= 0; j--) {
		if (d.def->steps[j].compensation == NULL) {
			continue;
		}
		assert_sent(&d, first++, j, SAGA_KIND_COMP, 1);
	}
	assert_int_equal(first, d.nsends);
	assert_int_equal(saga_engine_wake_at(&d.inst), 0);
	drv_fini(&d);
}

/* A business failure at each step before (and at) the pivot compensates
 * exactly the steps up to it, the failing one included, in reverse. */
static void
test_saga_engine_step_compensates_on_failure(void **state)
{
	static const char *const specs[]
	    = { "cccpr", "cccPr", "cccc", "ccnc", "Pr", "pr", "c" };

	(void) state;
	for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
		int32_t n    = (int32_t) strlen(specs[s]);
		int32_t last = n - 1;

		for (int32_t p = 0; p < n; p++) {
			if (specs[s][p] == 'p' || specs[s][p] == 'P') {
				last = p;
			}
		}
		for (int32_t k = 0; k <= last; k++) {
			check_failure_at(specs[s], k);
		}
	}
}

/* The compensation command carries the compensation's name, and the
 * compensation log rows carry kind compensation. */
static void
test_saga_engine_comp_command_name(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 2);
	assert_string_equal(saga_engine_command_name(&d.inst), "a2");
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
	assert_string_equal(saga_engine_command_name(&d.inst), "c2");
	assert_int_equal(d.fx.logs[d.fx.nlogs - 1].kind, SAGA_KIND_COMP);
	drv_ok(&d);
	ASSERT_FX_LOGS(&d, SAGA_LOG_OK, SAGA_LOG_SENT);
	assert_int_equal(d.fx.logs[0].kind, SAGA_KIND_COMP);
	assert_int_equal(d.fx.logs[0].step, 2);
	assert_false(d.fx.output_taken);
	assert_string_equal(saga_engine_command_name(&d.inst), "c1");
	drv_fini(&d);
}

/* The exact backoff of saga_engine_backoff_ms: grows by the multiplier,
 * caps at max_backoff, and jitter moves it by at most its share. */
static void
test_saga_engine_backoff_grows_and_caps(void **state)
{
	saga_retry r      = { 0, 100, 2.0, 1000, 0.0 };
	int64_t    want[] = { 100, 200, 400, 800, 1000, 1000, 1000 };

	(void) state;
	for (uint32_t a = 1; a <= 7; a++) {
		assert_int_equal(
		    saga_engine_backoff_ms(&r, a, 12345), want[a - 1]);
	}
	assert_int_equal(saga_engine_backoff_ms(&r, 1000000, 0), 1000);
	r.multiplier = 1.0;
	assert_int_equal(saga_engine_backoff_ms(&r, 5, 0), 100);
	r.multiplier = 3.0;
	assert_int_equal(saga_engine_backoff_ms(&r, 3, 0), 900);
	assert_int_equal(saga_engine_backoff_ms(&r, 4, 0), 1000);
	/* Jitter 0.5 spans [50, 150] for the first wait. */
	r.jitter = 0.5;
	assert_int_equal(saga_engine_backoff_ms(&r, 1, 0), 50);
	assert_int_equal(saga_engine_backoff_ms(&r, 1, UINT32_MAX), 150);
	for (uint32_t i = 0; i < 1000; i++) {
		uint32_t rnd = i * 4294967u;
		int64_t  w   = saga_engine_backoff_ms(&r, 1, rnd);

		assert_in_range(w, 50, 150);
		w = saga_engine_backoff_ms(&r, 9, rnd);
		assert_in_range(w, 500, 1500);
	}
	r.jitter = 1.0;
	assert_int_equal(saga_engine_backoff_ms(&r, 1, 0), 0);
	/* Attempts without end (a pivot, a retriable step): the last
	 * attempt number, with multipliers that grow the wait slowly or
	 * not at all, and without an initial wait. (The wait is computed
	 * in at most 32 rounds; this test checks the values, not the
	 * time.) */
	r.jitter = 0.0;
	r.multiplier = 1.0;
	assert_int_equal(saga_engine_backoff_ms(&r, UINT32_MAX, 0), 100);
	r.multiplier = 1.0000001;
	assert_int_equal(saga_engine_backoff_ms(&r, UINT32_MAX, 0), 1000);
	assert_int_equal(saga_engine_backoff_ms(&r, 1001, 0), 100);
	r.multiplier = 1.5;
	assert_int_equal(saga_engine_backoff_ms(&r, 5, 0), 506);
	r.multiplier         = 2.0;
	r.initial_backoff_ms = 0;
	assert_int_equal(saga_engine_backoff_ms(&r, UINT32_MAX, 0), 0);
}

/* A retry reply, an error and a timeout of an action are retried with
 * backoff: nothing is sent at once, the timer before the wake-up time is
 * ignored, the one at it sends the next attempt; when max_attempts is
 * exhausted the saga gives up and compensates. */
static void
test_saga_engine_transient_retries_then_compensates(void **state)
{
	static const saga_ev_type types[]
	    = { SAGA_EV_REPLY, SAGA_EV_ERROR, SAGA_EV_TIMEOUT };
	static const int32_t outcomes[] = { PROTO_OUTCOME_RETRY,
		SAGA_OUTCOME_ERROR, SAGA_OUTCOME_TIMEOUT };

	(void) state;
	for (size_t t = 0; t < 3; t++) {
		drv     d;
		int64_t wake;
		int64_t backoff = ACT_INITIAL;
		snap    s;

		drv_init(&d, "cccpr");
		drv_start(&d);
		drv_ok_until(&d, 1);
		for (uint32_t a = 1; a < ACT_MAX; a++) {
			d.now += 7;
			drv_transient(&d, types[t]);
			ASSERT_FX_LOGS(&d, SAGA_LOG_RETRY);
			assert_int_equal(d.fx.logs[0].outcome, outcomes[t]);
			assert_int_equal(d.fx.logs[0].attempt, a);
			assert_false(d.fx.send);
			assert_false(d.inst.in_flight);
			wake = d.now + backoff;
			assert_int_equal(d.inst.next_at_ms, wake);
			assert_int_equal(d.fx.logs[0].next_at_ms, wake);
			assert_int_equal(saga_engine_wake_at(&d.inst), wake);
			assert_non_null(strstr(d.inst.last_error, "s1"));
			/* Too early: ignored. */
			snap_take(&d, &s);
			drv_timer(&d, wake - 1);
			assert_ignored(&d, &s);
			drv_timer(&d, wake);
			ASSERT_FX_LOGS(&d, SAGA_LOG_SENT);
			assert_last_sent(&d, 1, SAGA_KIND_ACTION, a + 1);
			assert_int_equal(saga_engine_wake_at(&d.inst), 0);
			/* A second timer does not send again. */
			snap_take(&d, &s);
			drv_timer(&d, wake + 1);
			assert_ignored(&d, &s);
			backoff *= 2;
		}
		d.now += 7;
		drv_transient(&d, types[t]);
		ASSERT_FX_LOGS(&d, SAGA_LOG_GAVE_UP, SAGA_LOG_COMPENSATING,
		    SAGA_LOG_SENT);
		assert_int_equal(d.fx.logs[0].outcome, outcomes[t]);
		assert_int_equal(d.fx.logs[0].attempt, ACT_MAX);
		assert_non_null(strstr(d.inst.last_error, "step s1 gave up"));
		/* Step 1 had attempts sent: it is compensated first. */
		assert_last_sent(&d, 1, SAGA_KIND_COMP, 1);
		assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
		drv_ok_comps(&d);
		assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
		assert_sent(&d, d.nsends - 1, 0, SAGA_KIND_COMP, 1);
		drv_fini(&d);
	}
}

/* The backoff of the engine grows by the multiplier and caps at
 * max_backoff; the timer may come late and still sends. */
static void
test_saga_engine_transient_backoff_caps(void **state)
{
	drv     d;
	int64_t want[] = { 100, 200, 400, 800, 1000, 1000, 1000 };

	(void) state;
	drv_init(&d, "cccpr");
	d.def->steps[0].retry.max_attempts = 0;
	drv_start(&d);
	for (uint32_t a = 1; a <= 7; a++) {
		drv_transient(&d, SAGA_EV_TIMEOUT);
		assert_int_equal(d.inst.next_at_ms - d.now, want[a - 1]);
		drv_timer(&d, d.inst.next_at_ms + 5);
		assert_last_sent(&d, 0, SAGA_KIND_ACTION, a + 1);
	}
	drv_fini(&d);
}

/* With jitter the wake-up time stays within +/- jitter of the wait. */
static void
test_saga_engine_transient_jitter_bounds(void **state)
{
	(void) state;
	for (uint32_t i = 0; i < 64; i++) {
		drv     d;
		saga_ev ev = { 0 };

		drv_init(&d, "cccpr");
		d.def->steps[0].retry.jitter = 0.2;
		drv_start(&d);
		ev.type    = SAGA_EV_REPLY;
		ev.outcome = PROTO_OUTCOME_RETRY;
		ev.step    = 0;
		ev.kind    = SAGA_KIND_ACTION;
		ev.attempt = 1;
		ev.rnd     = i * 67108864u + i;
		drv_event(&d, &ev);
		assert_in_range(d.inst.next_at_ms, d.now + 80, d.now + 120);
		drv_fini(&d);
	}
}

/* Replies that are not awaited change nothing. */
static void
test_saga_engine_late_replies_ignored(void **state)
{
	drv  d;
	snap s;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok(&d);
	/* Step 1 attempt 1 in flight. An ok and a failed for step 0. */
	snap_take(&d, &s);
	drv_reply(&d, 0, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_OK);
	assert_ignored(&d, &s);
	drv_reply(&d, 0, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_FAILED);
	assert_ignored(&d, &s);
	drv_lost(&d, SAGA_EV_TIMEOUT, 0, SAGA_KIND_ACTION, 1);
	assert_ignored(&d, &s);
	/* A reply for a later step, or a step that does not exist. */
	drv_reply(&d, 2, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_OK);
	assert_ignored(&d, &s);
	drv_reply(&d, 99, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_OK);
	assert_ignored(&d, &s);
	drv_reply(&d, -1, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_FAILED);
	assert_ignored(&d, &s);
	/* The wrong kind. */
	drv_reply(&d, 1, SAGA_KIND_COMP, 1, PROTO_OUTCOME_OK);
	assert_ignored(&d, &s);
	drv_reply(&d, 1, SAGA_KIND_COMP, 1, PROTO_OUTCOME_FAILED);
	assert_ignored(&d, &s);
	/* Attempt 0, or above the current one. */
	drv_reply(&d, 1, SAGA_KIND_ACTION, 0, PROTO_OUTCOME_OK);
	assert_ignored(&d, &s);
	drv_reply(&d, 1, SAGA_KIND_ACTION, 2, PROTO_OUTCOME_OK);
	assert_ignored(&d, &s);
	drv_reply(&d, 1, SAGA_KIND_ACTION, 2, PROTO_OUTCOME_FAILED);
	assert_ignored(&d, &s);
	drv_reply(&d, 1, SAGA_KIND_ACTION, 2, PROTO_OUTCOME_RETRY);
	assert_ignored(&d, &s);
	drv_lost(&d, SAGA_EV_TIMEOUT, 1, SAGA_KIND_ACTION, 0);
	assert_ignored(&d, &s);
	drv_lost(&d, SAGA_EV_ERROR, 1, SAGA_KIND_ACTION, 7);
	assert_ignored(&d, &s);
	/* Retry for attempt 1: counts once. A second retry, a timeout or
	 * an error for the same attempt is ignored. */
	drv_reply(&d, 1, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_RETRY);
	ASSERT_FX_LOGS(&d, SAGA_LOG_RETRY);
	snap_take(&d, &s);
	drv_reply(&d, 1, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_RETRY);
	assert_ignored(&d, &s);
	drv_lost(&d, SAGA_EV_TIMEOUT, 1, SAGA_KIND_ACTION, 1);
	assert_ignored(&d, &s);
	drv_lost(&d, SAGA_EV_ERROR, 1, SAGA_KIND_ACTION, 1);
	assert_ignored(&d, &s);
	drv_timer(&d, d.inst.next_at_ms);
	assert_last_sent(&d, 1, SAGA_KIND_ACTION, 2);
	/* Attempt 2 in flight: retry, timeout and error of attempt 1. */
	snap_take(&d, &s);
	drv_reply(&d, 1, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_RETRY);
	assert_ignored(&d, &s);
	drv_lost(&d, SAGA_EV_TIMEOUT, 1, SAGA_KIND_ACTION, 1);
	assert_ignored(&d, &s);
	drv_lost(&d, SAGA_EV_ERROR, 1, SAGA_KIND_ACTION, 1);
	assert_ignored(&d, &s);
	drv_reply(&d, 1, SAGA_KIND_ACTION, 3, PROTO_OUTCOME_OK);
	assert_ignored(&d, &s);
	/* Complete the saga; then nothing applies any more. */
	drv_ok_until(&d, 4);
	drv_ok(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPLETED);
	snap_take(&d, &s);
	for (int32_t st = 0; st < 5; st++) {
		for (uint32_t o = 0; o < 3; o++) {
			drv_reply(&d, st, SAGA_KIND_ACTION, 1, o);
			assert_ignored(&d, &s);
			drv_reply(&d, st, SAGA_KIND_COMP, 1, o);
			assert_ignored(&d, &s);
		}
		drv_lost(&d, SAGA_EV_TIMEOUT, st, SAGA_KIND_ACTION, 1);
		assert_ignored(&d, &s);
	}
	drv_timer(&d, d.now + 100000);
	assert_true(d.fx.ignored);
	assert_false(d.fx.changed);
	drv_fini(&d);
}

/* Replies to a compensating saga: the action of the step being
 * compensated, a compensation of another step, and old attempts. */
static void
test_saga_engine_late_replies_while_compensating(void **state)
{
	drv  d;
	snap s;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 2);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	assert_last_sent(&d, 2, SAGA_KIND_COMP, 1);
	snap_take(&d, &s);
	drv_reply(&d, 2, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_OK);
	assert_ignored(&d, &s);
	drv_reply(&d, 2, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_FAILED);
	assert_ignored(&d, &s);
	drv_reply(&d, 1, SAGA_KIND_COMP, 1, PROTO_OUTCOME_OK);
	assert_ignored(&d, &s);
	drv_reply(&d, 2, SAGA_KIND_COMP, 2, PROTO_OUTCOME_OK);
	assert_ignored(&d, &s);
	/* A failed or terminal saga ignores every reply. */
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	snap_take(&d, &s);
	drv_reply(&d, 2, SAGA_KIND_COMP, 1, PROTO_OUTCOME_OK);
	assert_ignored(&d, &s);
	drv_reply(&d, 2, SAGA_KIND_COMP, 1, PROTO_OUTCOME_RETRY);
	assert_ignored(&d, &s);
	drv_lost(&d, SAGA_EV_TIMEOUT, 2, SAGA_KIND_COMP, 1);
	assert_ignored(&d, &s);
	drv_timer(&d, d.now + 1000);
	assert_ignored(&d, &s);
	drv_fini(&d);
}

/* ok and failed count from any attempt: while a later attempt is in
 * flight and while the saga waits for its backoff. */
static void
test_saga_engine_old_attempt_ok_counts(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	/* Attempt 2 in flight, attempt 1 answers ok. */
	drv_transient(&d, SAGA_EV_TIMEOUT);
	drv_timer(&d, d.inst.next_at_ms);
	assert_last_sent(&d, 0, SAGA_KIND_ACTION, 2);
	drv_reply(&d, 0, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_OK);
	ASSERT_FX_LOGS(&d, SAGA_LOG_OK, SAGA_LOG_SENT);
	assert_int_equal(d.fx.logs[0].attempt, 1);
	assert_true(d.fx.output_taken);
	assert_last_sent(&d, 1, SAGA_KIND_ACTION, 1);
	/* Waiting for the backoff after attempt 1, attempt 1 answers ok
	 * (a retry of another copy came first). */
	drv_transient(&d, SAGA_EV_ERROR);
	assert_false(d.inst.in_flight);
	drv_reply(&d, 1, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_OK);
	ASSERT_FX_LOGS(&d, SAGA_LOG_OK, SAGA_LOG_SENT);
	assert_last_sent(&d, 2, SAGA_KIND_ACTION, 1);
	assert_int_equal(d.inst.next_at_ms, 0);
	/* A failed from attempt 1 while attempt 2 is in flight. */
	drv_transient(&d, SAGA_EV_TIMEOUT);
	drv_timer(&d, d.inst.next_at_ms);
	drv_reply(&d, 2, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_FAILED);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
	assert_last_sent(&d, 2, SAGA_KIND_COMP, 1);
	/* Compensations too: an ok from attempt 1 while waiting. */
	drv_transient(&d, SAGA_EV_TIMEOUT);
	assert_int_equal(d.inst.next_at_ms, d.now + COMP_INITIAL);
	drv_reply(&d, 2, SAGA_KIND_COMP, 1, PROTO_OUTCOME_OK);
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 1);
	drv_fini(&d);
}

/* A compensation that answers retry, errs or times out is retried under
 * the compensation policy, and the saga parks FAILED when it runs out. */
static void
test_saga_engine_comp_retry_then_parks(void **state)
{
	static const saga_ev_type types[]
	    = { SAGA_EV_REPLY, SAGA_EV_ERROR, SAGA_EV_TIMEOUT };

	(void) state;
	for (size_t t = 0; t < 3; t++) {
		drv     d;
		int64_t backoff = COMP_INITIAL;

		drv_init(&d, "cccpr");
		drv_start(&d);
		drv_ok_until(&d, 2);
		drv_answer(&d, PROTO_OUTCOME_FAILED);
		drv_ok(&d);
		assert_last_sent(&d, 1, SAGA_KIND_COMP, 1);
		for (uint32_t a = 1; a < COMP_MAX; a++) {
			d.now += 3;
			drv_transient(&d, types[t]);
			ASSERT_FX_LOGS(&d, SAGA_LOG_RETRY);
			assert_int_equal(d.fx.logs[0].kind, SAGA_KIND_COMP);
			assert_int_equal(d.inst.next_at_ms, d.now + backoff);
			assert_int_equal(
			    saga_engine_wake_at(&d.inst), d.now + backoff);
			drv_timer(&d, d.inst.next_at_ms);
			assert_last_sent(&d, 1, SAGA_KIND_COMP, a + 1);
			backoff *= 2;
		}
		drv_transient(&d, types[t]);
		ASSERT_FX_LOGS(&d, SAGA_LOG_GAVE_UP, SAGA_LOG_PARKED);
		assert_int_equal(d.inst.state, SAGA_ST_FAILED);
		assert_int_equal(d.inst.step, 1);
		assert_true(d.fx.finished);
		assert_false(d.fx.send);
		assert_int_equal(saga_engine_wake_at(&d.inst), 0);
		assert_int_equal(saga_engine_kind(&d.inst), SAGA_KIND_COMP);
		assert_non_null(strstr(
		    d.inst.last_error, "compensation of step s1 gave up"));
		assert_string_equal(d.fx.logs[1].error, d.inst.last_error);
		assert_int_equal(d.fx.logs[1].step, 1);
		assert_int_equal(d.fx.logs[1].kind, SAGA_KIND_COMP);
		drv_fini(&d);
	}
}

/* A compensation that answers failed parks the saga FAILED, naming the
 * step; nothing more is sent. */
static void
test_saga_engine_comp_failed_parks(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 1);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 1);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	ASSERT_FX_LOGS(&d, SAGA_LOG_FAILED, SAGA_LOG_PARKED);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	assert_string_equal(
	    d.inst.last_error, "compensation of step s1 failed: out of stock");
	assert_true(d.fx.finished);
	assert_false(d.fx.send);
	assert_false(d.inst.in_flight);
	assert_int_equal(saga_engine_wake_at(&d.inst), 0);
	drv_fini(&d);
}

/* A compensation past its time budget (counted from when it began, over
 * all its attempts) parks the saga FAILED on its next failure. */
static void
test_saga_engine_comp_budget_parks(void **state)
{
	drv     d;
	int64_t began;

	(void) state;
	drv_init(&d, "cccpr");
	d.def->steps[1].comp_budget_ms          = 500;
	d.def->steps[1].comp_retry.max_attempts = 0;
	drv_start(&d);
	drv_ok_until(&d, 1);
	d.now += 1000; /* the action's time does not count */
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	began = d.now;
	assert_int_equal(d.inst.phase_start_ms, began);
	d.now = began + 200;
	drv_transient(&d, SAGA_EV_TIMEOUT);
	ASSERT_FX_LOGS(&d, SAGA_LOG_RETRY);
	drv_timer(&d, d.inst.next_at_ms);
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 2);
	d.now = began + 499;
	drv_transient(&d, SAGA_EV_ERROR);
	ASSERT_FX_LOGS(&d, SAGA_LOG_RETRY);
	drv_timer(&d, d.inst.next_at_ms);
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 3);
	d.now = began + 500;
	drv_transient(&d, SAGA_EV_REPLY);
	ASSERT_FX_LOGS(&d, SAGA_LOG_GAVE_UP, SAGA_LOG_PARKED);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	assert_non_null(strstr(d.inst.last_error, "compensation of step s1"));
	drv_fini(&d);
}

/* A compensation's budget is its own: the next compensation starts a new
 * one. */
static void
test_saga_engine_comp_budget_per_step(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	d.def->steps[0].comp_budget_ms = 500;
	d.def->steps[1].comp_budget_ms = 500;
	drv_start(&d);
	drv_ok_until(&d, 1);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	d.now += 400;
	drv_ok(&d);
	assert_last_sent(&d, 0, SAGA_KIND_COMP, 1);
	d.now += 400;
	drv_transient(&d, SAGA_EV_TIMEOUT);
	ASSERT_FX_LOGS(&d, SAGA_LOG_RETRY);
	drv_fini(&d);
}

/* After the pivot, a retriable step's business failure parks the saga
 * FAILED; nothing is compensated. */
static void
test_saga_engine_retriable_failure_parks(void **state)
{
	drv    d;
	size_t n;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 4);
	assert_true(saga_engine_pivot_done(&d.inst));
	n = d.nsends;
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	ASSERT_FX_LOGS(&d, SAGA_LOG_FAILED, SAGA_LOG_PARKED);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	assert_int_equal(d.inst.step, 4);
	assert_int_equal(d.nsends, n);
	assert_string_equal(d.inst.last_error, "step s4 failed: out of stock");
	assert_int_equal(saga_engine_kind(&d.inst), SAGA_KIND_ACTION);
	assert_true(d.fx.finished);
	drv_fini(&d);
}

/* A retriable step exhausting a finite max_attempts parks FAILED. */
static void
test_saga_engine_retriable_exhausted_parks(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccprr");
	drv_start(&d);
	drv_ok_until(&d, 4);
	for (uint32_t a = 1; a < ACT_MAX; a++) {
		drv_transient(&d, SAGA_EV_TIMEOUT);
		drv_timer(&d, d.inst.next_at_ms);
		assert_last_sent(&d, 4, SAGA_KIND_ACTION, a + 1);
	}
	drv_transient(&d, SAGA_EV_REPLY);
	ASSERT_FX_LOGS(&d, SAGA_LOG_GAVE_UP, SAGA_LOG_PARKED);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	assert_int_equal(d.inst.step, 4);
	assert_non_null(strstr(d.inst.last_error, "step s4 gave up"));
	for (size_t i = 0; i < d.nsends; i++) {
		assert_int_equal(d.sends[i].kind, SAGA_KIND_ACTION);
	}
	drv_fini(&d);
}

/* A retriable step with max_attempts 0 is retried for ever, waits capped
 * at max_backoff. */
static void
test_saga_engine_retriable_unlimited(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	d.def->steps[4].retry.max_attempts = 0;
	drv_start(&d);
	drv_ok_until(&d, 4);
	for (uint32_t a = 1; a <= 50; a++) {
		drv_transient(&d, a % 2 ? SAGA_EV_TIMEOUT : SAGA_EV_ERROR);
		ASSERT_FX_LOGS(&d, SAGA_LOG_RETRY);
		assert_true(d.inst.next_at_ms - d.now <= ACT_MAX_BACKOFF);
		drv_timer(&d, d.inst.next_at_ms);
		assert_last_sent(&d, 4, SAGA_KIND_ACTION, a + 1);
	}
	drv_ok(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPLETED);
	drv_fini(&d);
}

/* A saga whose log is about to run out of event numbers (event_seq is a
 * PostgreSQL integer) retries no more, whatever its policy: before the
 * pivot it compensates, at a pivot without compensation and after it it
 * parks FAILED, and a compensation parks too. Before, it went on until
 * the number wrapped and its events collided with its first ones. */
static void
test_saga_engine_seq_limit_stops_retries(void **state)
{
	drv d;

	(void) state;
	/* Before the pivot, unlimited attempts: compensates. */
	drv_init(&d, "cccpr");
	d.def->steps[1].retry.max_attempts = 0;
	drv_start(&d);
	drv_ok_until(&d, 1);
	drv_transient(&d, SAGA_EV_TIMEOUT);
	ASSERT_FX_LOGS(&d, SAGA_LOG_RETRY);
	d.inst.seq = SAGA_ENGINE_SEQ_LIMIT;
	drv_timer(&d, d.inst.next_at_ms);
	drv_transient(&d, SAGA_EV_TIMEOUT);
	assert_int_equal(d.fx.logs[0].type, SAGA_LOG_GAVE_UP);
	assert_non_null(strstr(d.fx.logs[0].error, "log is full"));
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
	/* Its compensation, also unlimited, parks at the next retry. */
	drv_transient(&d, SAGA_EV_ERROR);
	assert_int_equal(d.fx.logs[0].type, SAGA_LOG_GAVE_UP);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	assert_true(d.inst.seq > SAGA_ENGINE_SEQ_LIMIT);
	drv_fini(&d);
	/* At a pivot without compensation, which max_attempts does not
	 * stop: parks, not compensated. */
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 3);
	d.inst.seq = SAGA_ENGINE_SEQ_LIMIT;
	drv_transient(&d, SAGA_EV_TIMEOUT);
	assert_int_equal(d.fx.logs[0].type, SAGA_LOG_GAVE_UP);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	assert_int_equal(d.inst.step, 3);
	drv_fini(&d);
	/* At a pivot with a compensation: compensated, itself first, as at
	 * its deadline. Parked, it would read as parked while compensating:
	 * a retry would compensate it and a skip leave it uncompensated. */
	drv_init(&d, "cccPr");
	drv_start(&d);
	drv_ok_until(&d, 3);
	d.inst.seq = SAGA_ENGINE_SEQ_LIMIT;
	drv_transient(&d, SAGA_EV_TIMEOUT);
	assert_int_equal(d.fx.logs[0].type, SAGA_LOG_GAVE_UP);
	assert_int_equal(d.fx.logs[0].kind, SAGA_KIND_ACTION);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
	assert_last_sent(&d, 3, SAGA_KIND_COMP, 1);
	drv_fini(&d);
	/* After the pivot, a retriable step retried for ever: parks. */
	drv_init(&d, "cccpr");
	d.def->steps[4].retry.max_attempts = 0;
	drv_start(&d);
	drv_ok_until(&d, 4);
	d.inst.seq = SAGA_ENGINE_SEQ_LIMIT;
	drv_transient(&d, SAGA_EV_ERROR);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	drv_fini(&d);
}

/* A pivot without compensation ignores max_attempts: its outcome must be
 * resolved, so it is resent until it answers. */
static void
test_saga_engine_bare_pivot_ignores_max_attempts(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 3);
	for (uint32_t a = 1; a <= ACT_MAX * 4; a++) {
		drv_transient(&d, SAGA_EV_TIMEOUT);
		ASSERT_FX_LOGS(&d, SAGA_LOG_RETRY);
		drv_timer(&d, d.inst.next_at_ms);
		assert_last_sent(&d, 3, SAGA_KIND_ACTION, a + 1);
	}
	drv_ok(&d);
	assert_last_sent(&d, 4, SAGA_KIND_ACTION, 1);
	assert_true(saga_engine_pivot_done(&d.inst));
	drv_fini(&d);
}

/* A pivot with a compensation ignores max_attempts too: it is resent until
 * it answers; only the deadline (below) or a cancel compensates it, itself
 * included. */
static void
test_saga_engine_pivot_with_comp_ignores_max_attempts(void **state)
{
	drv    d;
	size_t first;

	(void) state;
	drv_init(&d, "cccPr");
	drv_start(&d);
	drv_ok_until(&d, 3);
	for (uint32_t a = 1; a <= ACT_MAX * 4; a++) {
		drv_transient(&d, SAGA_EV_ERROR);
		ASSERT_FX_LOGS(&d, SAGA_LOG_RETRY);
		drv_timer(&d, d.inst.next_at_ms);
		assert_last_sent(&d, 3, SAGA_KIND_ACTION, a + 1);
	}
	/* A cancel now compensates it and the steps before it. */
	first = d.nsends;
	drv_request(&d, SAGA_EV_CANCEL, "given up by hand", NULL);
	assert_int_equal(d.fx.answer, 0);
	ASSERT_FX_LOGS(&d, SAGA_LOG_CANCEL, SAGA_LOG_COMPENSATING,
	    SAGA_LOG_SENT);
	drv_ok_comps(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
	assert_int_equal(d.nsends - first, 4);
	for (int32_t j = 3; j >= 0; j--) {
		assert_sent(
		    &d, first + (size_t) (3 - j), j, SAGA_KIND_COMP, 1);
	}
	drv_fini(&d);
}

/* The deadline passing before the pivot compensates every step that had
 * an attempt sent, the in-flight one included, and starts no new one. */
static void
test_saga_engine_deadline_compensates_before_pivot(void **state)
{
	drv  d;
	snap s;

	(void) state;
	drv_init(&d, "cccpr");
	d.inst.deadline_ms = T0 + 5000;
	drv_start(&d);
	assert_int_equal(d.inst.deadline_ms, T0 + 5000);
	assert_int_equal(saga_engine_wake_at(&d.inst), T0 + 5000);
	d.now += 10;
	drv_ok(&d);
	assert_int_equal(saga_engine_wake_at(&d.inst), T0 + 5000);
	snap_take(&d, &s);
	drv_timer(&d, T0 + 4999);
	assert_ignored(&d, &s);
	drv_timer(&d, T0 + 5000);
	ASSERT_FX_LOGS(
	    &d, SAGA_LOG_DEADLINE, SAGA_LOG_COMPENSATING, SAGA_LOG_SENT);
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 1);
	assert_non_null(strstr(d.inst.last_error, "deadline"));
	/* Compensating: the deadline no longer matters. */
	assert_int_equal(saga_engine_wake_at(&d.inst), 0);
	drv_transient(&d, SAGA_EV_TIMEOUT);
	assert_int_equal(saga_engine_wake_at(&d.inst), d.now + COMP_INITIAL);
	drv_timer(&d, d.inst.next_at_ms);
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 2);
	/* The late ok of the action of step 1 is not awaited. */
	snap_take(&d, &s);
	drv_reply(&d, 1, SAGA_KIND_ACTION, 1, PROTO_OUTCOME_OK);
	assert_ignored(&d, &s);
	drv_ok_comps(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
	assert_sent(&d, d.nsends - 1, 0, SAGA_KIND_COMP, 1);
	drv_fini(&d);
}

/* The deadline while a step waits for its backoff: the wake-up is the
 * earlier of both, and the step that had attempts is compensated. */
static void
test_saga_engine_deadline_during_backoff(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	d.inst.deadline_ms = T0 + 150;
	drv_start(&d);
	d.now += 10;
	drv_ok(&d);
	d.now += 10;
	drv_transient(&d, SAGA_EV_TIMEOUT); /* wait until T0 + 120 */
	assert_int_equal(saga_engine_wake_at(&d.inst), T0 + 120);
	drv_timer(&d, T0 + 120);
	assert_last_sent(&d, 1, SAGA_KIND_ACTION, 2);
	d.now += 10;
	drv_transient(&d, SAGA_EV_TIMEOUT); /* wait until T0 + 330 */
	assert_int_equal(saga_engine_wake_at(&d.inst), T0 + 150);
	drv_timer(&d, T0 + 150);
	ASSERT_FX_LOGS(
	    &d, SAGA_LOG_DEADLINE, SAGA_LOG_COMPENSATING, SAGA_LOG_SENT);
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 1);
	drv_fini(&d);
}

/* A transient failure past the deadline before the pivot compensates at
 * once, and an ok past it does not start the next step. */
static void
test_saga_engine_deadline_no_new_attempt(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	d.inst.deadline_ms = T0 + 100;
	drv_start(&d);
	d.now = T0 + 100;
	drv_transient(&d, SAGA_EV_TIMEOUT);
	ASSERT_FX_LOGS(&d, SAGA_LOG_GAVE_UP, SAGA_LOG_DEADLINE,
	    SAGA_LOG_COMPENSATING, SAGA_LOG_SENT);
	assert_last_sent(&d, 0, SAGA_KIND_COMP, 1);
	drv_fini(&d);

	drv_init(&d, "cccpr");
	d.inst.deadline_ms = T0 + 100;
	drv_start(&d);
	drv_ok(&d);
	d.now = T0 + 101;
	drv_ok(&d);
	ASSERT_FX_LOGS(&d, SAGA_LOG_OK, SAGA_LOG_DEADLINE,
	    SAGA_LOG_COMPENSATING, SAGA_LOG_SENT);
	assert_true(d.fx.output_taken);
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 1);
	drv_ok_comps(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
	assert_int_equal(d.nsends, 4);
	drv_fini(&d);

	/* The step before the pivot answers late: the pivot is not sent. */
	drv_init(&d, "cccpr");
	d.inst.deadline_ms = T0 + 100;
	drv_start(&d);
	drv_ok_until(&d, 2);
	d.now = T0 + 100;
	drv_ok(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
	assert_last_sent(&d, 2, SAGA_KIND_COMP, 1);
	assert_int_equal(d.inst.max_sent, 2);
	drv_fini(&d);
}

/* A pivot in flight at the deadline is awaited: ok goes forward, failed
 * compensates; a bare pivot that times out is resent, a pivot with a
 * compensation that times out compensates. */
static void
test_saga_engine_deadline_awaits_inflight_pivot(void **state)
{
	static const char *const specs[] = { "cccpr", "cccPr" };

	(void) state;
	for (size_t s = 0; s < 2; s++) {
		for (int c = 0; c < 3; c++) {
			drv  d;
			snap sn;

			drv_init(&d, specs[s]);
			d.inst.deadline_ms = T0 + 1000;
			drv_start(&d);
			drv_ok_until(&d, 3);
			assert_int_equal(saga_engine_wake_at(&d.inst), 0);
			snap_take(&d, &sn);
			drv_timer(&d, T0 + 1000);
			assert_ignored(&d, &sn);
			d.now = T0 + 1500;
			switch (c) {
			case 0:
				drv_ok(&d);
				ASSERT_FX_LOGS(&d, SAGA_LOG_OK, SAGA_LOG_SENT);
				assert_last_sent(&d, 4, SAGA_KIND_ACTION, 1);
				/* Past the pivot the deadline is moot. */
				assert_int_equal(
				    saga_engine_wake_at(&d.inst), 0);
				drv_transient(&d, SAGA_EV_TIMEOUT);
				assert_int_equal(saga_engine_wake_at(&d.inst),
				    d.now + ACT_INITIAL);
				drv_timer(&d, d.inst.next_at_ms);
				drv_ok(&d);
				assert_int_equal(
				    d.inst.state, SAGA_ST_COMPLETED);
				break;
			case 1:
				drv_answer(&d, PROTO_OUTCOME_FAILED);
				drv_ok_comps(&d);
				assert_int_equal(
				    d.inst.state, SAGA_ST_COMPENSATED);
				assert_sent(
				    &d, d.nsends - 1, 0, SAGA_KIND_COMP, 1);
				break;
			case 2:
				drv_transient(&d, SAGA_EV_TIMEOUT);
				if (specs[s][3] == 'p') {
					ASSERT_FX_LOGS(&d, SAGA_LOG_RETRY);
					/* No deadline in the wake-up. */
					assert_int_equal(
					    saga_engine_wake_at(&d.inst),
					    d.now + ACT_INITIAL);
					drv_timer(&d, d.inst.next_at_ms);
					assert_last_sent(
					    &d, 3, SAGA_KIND_ACTION, 2);
				} else {
					/* For the deadline's sake, as before
					 * the pivot: the pivot never "gave
					 * up". */
					ASSERT_FX_LOGS(&d, SAGA_LOG_GAVE_UP,
					    SAGA_LOG_DEADLINE,
					    SAGA_LOG_COMPENSATING,
					    SAGA_LOG_SENT);
					assert_string_equal(d.inst.last_error,
					    "deadline passed");
					assert_int_equal(d.inst.state,
					    SAGA_ST_COMPENSATING);
					assert_last_sent(
					    &d, 3, SAGA_KIND_COMP, 1);
				}
				break;
			}
			drv_fini(&d);
		}
	}
}

/* A pivot with a compensation waiting for its backoff when the deadline
 * passes is compensated; a bare one is resent. */
static void
test_saga_engine_deadline_pivot_backoff(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccPr");
	d.inst.deadline_ms = T0 + 1050;
	drv_start(&d);
	drv_ok_until(&d, 3);
	d.now = T0 + 1000;
	drv_transient(&d, SAGA_EV_REPLY); /* wait until T0 + 1100 */
	assert_int_equal(saga_engine_wake_at(&d.inst), T0 + 1050);
	drv_timer(&d, T0 + 1050);
	ASSERT_FX_LOGS(
	    &d, SAGA_LOG_DEADLINE, SAGA_LOG_COMPENSATING, SAGA_LOG_SENT);
	assert_last_sent(&d, 3, SAGA_KIND_COMP, 1);
	drv_fini(&d);

	drv_init(&d, "cccpr");
	d.inst.deadline_ms = T0 + 1050;
	drv_start(&d);
	drv_ok_until(&d, 3);
	d.now = T0 + 1000;
	drv_transient(&d, SAGA_EV_REPLY);
	assert_int_equal(saga_engine_wake_at(&d.inst), T0 + 1100);
	drv_timer(&d, T0 + 1100);
	assert_last_sent(&d, 3, SAGA_KIND_ACTION, 2);
	drv_fini(&d);
}

/* Cancel before the pivot compensates and answers 0. */
static void
test_saga_engine_cancel_before_pivot_compensates(void **state)
{
	static const char *const specs[] = { "cccpr", "cccPr", "cccc" };

	(void) state;
	for (size_t s = 0; s < 3; s++) {
		int32_t top = specs[s][3] == 'p' ? 2 : 3;

		for (int32_t k = 0; k <= top; k++) {
			drv    d;
			size_t first;

			drv_init(&d, specs[s]);
			drv_start(&d);
			drv_ok_until(&d, k);
			if (k % 2) {
				/* Waiting for a backoff. */
				drv_transient(&d, SAGA_EV_TIMEOUT);
			}
			first = d.nsends;
			drv_request(
			    &d, SAGA_EV_CANCEL, "user changed mind", NULL);
			assert_int_equal(d.fx.answer, 0);
			ASSERT_FX_LOGS(&d, SAGA_LOG_CANCEL,
			    SAGA_LOG_COMPENSATING, SAGA_LOG_SENT);
			assert_string_equal(
			    d.fx.logs[0].error, "user changed mind");
			assert_string_equal(
			    d.inst.last_error, "cancelled: user changed mind");
			assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
			assert_int_equal(saga_engine_wake_at(&d.inst), 0);
			drv_ok_comps(&d);
			assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
			for (int32_t j = k; j >= 0; j--) {
				assert_sent(&d, first++, j, SAGA_KIND_COMP, 1);
			}
			assert_int_equal(first, d.nsends);
			drv_fini(&d);
		}
	}
}

/* Cancel after the pivot, or with a bare pivot in progress, is refused;
 * while compensating, FAILED or final it is refused too (ESTATE, naming
 * the state) and changes nothing: answered 0, it read the same as a
 * cancel that took effect. */
static void
test_saga_engine_cancel_refused_or_noop(void **state)
{
	drv  d;
	snap s;

	(void) state;
	/* A bare pivot in flight, and waiting for its backoff. */
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 3);
	snap_take(&d, &s);
	drv_request(&d, SAGA_EV_CANCEL, NULL, NULL);
	assert_refused(&d, &s);
	assert_non_null(strstr(d.fx.answer_text, "s3"));
	drv_transient(&d, SAGA_EV_TIMEOUT);
	snap_take(&d, &s);
	drv_request(&d, SAGA_EV_CANCEL, NULL, NULL);
	assert_refused(&d, &s);
	/* After the pivot. */
	drv_timer(&d, d.inst.next_at_ms);
	drv_ok(&d);
	snap_take(&d, &s);
	drv_request(&d, SAGA_EV_CANCEL, "please", NULL);
	assert_refused(&d, &s);
	assert_non_null(strstr(d.fx.answer_text, "pivot"));
	/* Completed. */
	drv_ok(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPLETED);
	snap_take(&d, &s);
	drv_request(&d, SAGA_EV_CANCEL, NULL, NULL);
	assert_refused(&d, &s);
	assert_string_equal(d.fx.answer_text,
	    "saga is COMPLETED; only a RUNNING saga can be cancelled");
	drv_fini(&d);

	/* Compensating, failed, compensated: refused, nothing changed. */
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 2);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	snap_take(&d, &s);
	drv_request(&d, SAGA_EV_CANCEL, "second note", NULL);
	assert_refused(&d, &s);
	assert_non_null(strstr(d.fx.answer_text, "saga is COMPENSATING"));
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	snap_take(&d, &s);
	drv_request(&d, SAGA_EV_CANCEL, NULL, NULL);
	assert_refused(&d, &s);
	assert_non_null(strstr(d.fx.answer_text, "saga is FAILED"));
	drv_request(&d, SAGA_EV_SKIP, NULL, "s2");
	drv_ok_comps(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
	snap_take(&d, &s);
	drv_request(&d, SAGA_EV_CANCEL, NULL, NULL);
	assert_refused(&d, &s);
	assert_non_null(strstr(d.fx.answer_text, "saga is COMPENSATED"));
	drv_fini(&d);
}

/* A cancel asked through the database (remote) that the engine refuses
 * is written to the log (cancel_refused, with the reason and the note):
 * its client has been answered already and will not hear the refusal.
 * Nothing else changes; saga_engine_cancel_refused says the same from
 * state, step and attempt alone. */
static void
test_saga_engine_remote_cancel_refused_is_logged(void **state)
{
	drv       d;
	snap      s;
	saga_ev   ev = { 0 };
	saga_inst row;
	char      why[160];

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 3);
	/* The pivot (no compensation) is in flight. */
	snap_take(&d, &s);
	ev.type   = SAGA_EV_CANCEL;
	ev.text   = "customer asked";
	ev.remote = true;
	drv_event(&d, &ev);
	assert_int_equal(d.fx.answer, SAGA_ESTATE);
	ASSERT_FX_LOGS(&d, SAGA_LOG_CANCEL_REFUSED);
	assert_string_equal(saga_log_name(SAGA_LOG_CANCEL_REFUSED),
	    "cancel_refused");
	assert_string_equal(d.fx.logs[0].error,
	    "pivot step s3 is in progress and has no compensation; the "
	    "cancel's note: customer asked");
	assert_int_equal(d.fx.logs[0].step, -1);
	assert_int_equal(d.fx.logs[0].seq, s.inst.seq + 1);
	assert_true(d.fx.changed);
	assert_false(d.fx.send);
	assert_false(d.fx.finished);
	assert_int_equal(d.inst.state, SAGA_ST_RUNNING);
	assert_int_equal(d.inst.step, 3);
	assert_int_equal(d.inst.attempt, s.inst.attempt);
	assert_true(d.inst.in_flight);
	assert_string_equal(d.inst.last_error, s.inst.last_error);
	/* The same from the row's view. */
	memset(&row, 0, sizeof(row));
	row.def     = d.def;
	row.state   = SAGA_ST_RUNNING;
	row.step    = 3;
	row.attempt = 1;
	assert_true(saga_engine_cancel_refused(&row, why, sizeof(why)));
	assert_string_equal(
	    why, "pivot step s3 is in progress and has no compensation");
	row.attempt = 0;
	assert_false(saga_engine_cancel_refused(&row, why, sizeof(why)));
	row.step    = 2;
	row.attempt = 1;
	assert_false(saga_engine_cancel_refused(&row, why, sizeof(why)));
	row.step = 4;
	assert_true(saga_engine_cancel_refused(&row, why, sizeof(why)));
	assert_non_null(strstr(why, "passed its pivot step s3"));
	row.state = SAGA_ST_COMPENSATING;
	assert_true(saga_engine_cancel_refused(&row, why, sizeof(why)));
	assert_string_equal(
	    why, "saga is COMPENSATING; only a RUNNING saga can be cancelled");
	/* Past the pivot, without a note. */
	drv_ok(&d);
	ev.text = NULL;
	drv_event(&d, &ev);
	assert_int_equal(d.fx.answer, SAGA_ESTATE);
	ASSERT_FX_LOGS(&d, SAGA_LOG_CANCEL_REFUSED);
	assert_string_equal(d.fx.logs[0].error,
	    "saga passed its pivot step s3 and can only complete");
	/* Accepted, it is a cancel like any other. */
	drv_fini(&d);
	drv_init(&d, "cccpr");
	drv_start(&d);
	ev.text = "remote";
	drv_event(&d, &ev);
	assert_int_equal(d.fx.answer, 0);
	ASSERT_FX_LOGS(&d, SAGA_LOG_CANCEL, SAGA_LOG_COMPENSATING,
	    SAGA_LOG_SENT);
	/* Compensating (the owner ahead of the row the request read):
	 * refused, and said in the log too. */
	drv_event(&d, &ev);
	assert_int_equal(d.fx.answer, SAGA_ESTATE);
	ASSERT_FX_LOGS(&d, SAGA_LOG_CANCEL_REFUSED);
	assert_string_equal(d.fx.logs[0].error,
	    "saga is COMPENSATING; only a RUNNING saga can be cancelled; "
	    "the cancel's note: remote");
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
	drv_fini(&d);
}

/* Operator retry of a parked compensation resumes it with the next
 * attempt number, and the saga compensates the rest. */
static void
test_saga_engine_operator_retry_compensation(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	d.def->steps[1].comp_budget_ms = 100;
	drv_start(&d);
	drv_ok_until(&d, 2);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	drv_ok(&d);
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 1);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	d.now += 100000;
	drv_request(&d, SAGA_EV_RETRY, "participant fixed", NULL);
	assert_int_equal(d.fx.answer, 0);
	ASSERT_FX_LOGS(&d, SAGA_LOG_OP_RETRY, SAGA_LOG_SENT);
	assert_string_equal(d.fx.logs[0].error, "participant fixed");
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 2);
	assert_string_equal(d.inst.last_error, "");
	assert_false(d.fx.finished);
	/* The budget counts from the operator's retry. */
	d.now += 50;
	drv_transient(&d, SAGA_EV_TIMEOUT);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
	drv_timer(&d, d.inst.next_at_ms);
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 3);
	/* Parked again, retried again: attempts keep growing. */
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	drv_request(&d, SAGA_EV_RETRY, NULL, NULL);
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 4);
	drv_ok_comps(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
	assert_sent(&d, d.nsends - 1, 0, SAGA_KIND_COMP, 1);
	drv_fini(&d);
}

/* Operator retry after a compensation exhausted its attempts sends the
 * next attempt number, never attempt 1 again. */
static void
test_saga_engine_operator_retry_after_exhausted(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	for (uint32_t a = 1; a < COMP_MAX; a++) {
		drv_transient(&d, SAGA_EV_TIMEOUT);
		drv_timer(&d, d.inst.next_at_ms);
	}
	drv_transient(&d, SAGA_EV_TIMEOUT);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	drv_request(&d, SAGA_EV_RETRY, NULL, NULL);
	assert_last_sent(&d, 0, SAGA_KIND_COMP, COMP_MAX + 1);
	/* An old attempt's ok still counts. */
	drv_reply(&d, 0, SAGA_KIND_COMP, 2, PROTO_OUTCOME_OK);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
	assert_true(d.fx.finished);
	drv_fini(&d);
}

/* An operator's retry gives the compensation policy a fresh budget of
 * attempts: a transient failure right after it backs off instead of
 * parking the saga again, from initial_backoff as at first, and the
 * saga parks only when max_attempts more attempts failed. */
static void
test_saga_engine_operator_retry_fresh_budget(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	for (uint32_t a = 1; a < COMP_MAX; a++) {
		drv_transient(&d, SAGA_EV_TIMEOUT);
		drv_timer(&d, d.inst.next_at_ms);
	}
	drv_transient(&d, SAGA_EV_TIMEOUT);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	drv_request(&d, SAGA_EV_RETRY, NULL, NULL);
	assert_last_sent(&d, 0, SAGA_KIND_COMP, COMP_MAX + 1);
	for (uint32_t a = 1; a < COMP_MAX; a++) {
		int64_t want = (int64_t) COMP_INITIAL << (a - 1);

		drv_transient(&d, SAGA_EV_TIMEOUT);
		assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
		assert_int_equal(d.inst.next_at_ms - d.now,
		    want < COMP_MAX_BACKOFF ? want : COMP_MAX_BACKOFF);
		drv_timer(&d, d.inst.next_at_ms);
		assert_last_sent(&d, 0, SAGA_KIND_COMP, COMP_MAX + 1 + a);
	}
	drv_transient(&d, SAGA_EV_TIMEOUT);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	drv_fini(&d);
}

/* While compensating, last_error keeps why the saga turned around; the
 * compensation's own retries do not overwrite it. */
static void
test_saga_engine_comp_retry_keeps_cause(void **state)
{
	drv d;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 2);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	assert_string_equal(d.inst.last_error, "step s2 failed: out of stock");
	drv_transient(&d, SAGA_EV_TIMEOUT);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
	assert_string_equal(d.inst.last_error, "step s2 failed: out of stock");
	drv_fini(&d);
}

/* Operator retry, skip and resolve of a parked retriable step. */
static void
test_saga_engine_operator_on_retriable(void **state)
{
	drv  d;
	snap s;

	(void) state;
	/* Retry: the step is resent with the next attempt; it completes. */
	drv_init(&d, "cccprr");
	drv_start(&d);
	drv_ok_until(&d, 4);
	drv_transient(&d, SAGA_EV_TIMEOUT);
	drv_timer(&d, d.inst.next_at_ms);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	drv_request(&d, SAGA_EV_RETRY, NULL, NULL);
	assert_int_equal(d.fx.answer, 0);
	assert_int_equal(d.inst.state, SAGA_ST_RUNNING);
	assert_last_sent(&d, 4, SAGA_KIND_ACTION, 3);
	drv_ok(&d);
	assert_last_sent(&d, 5, SAGA_KIND_ACTION, 1);
	drv_ok(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPLETED);
	drv_fini(&d);

	/* Skip of a middle step: the next one is sent. */
	drv_init(&d, "cccprr");
	drv_start(&d);
	drv_ok_until(&d, 4);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	snap_take(&d, &s);
	drv_request(&d, SAGA_EV_SKIP, "done by hand", "s3");
	assert_refused(&d, &s);
	assert_non_null(strstr(d.fx.answer_text, "s4"));
	drv_request(&d, SAGA_EV_SKIP, "done by hand", NULL);
	assert_refused(&d, &s);
	drv_request(&d, SAGA_EV_SKIP, "done by hand", "s4");
	assert_int_equal(d.fx.answer, 0);
	ASSERT_FX_LOGS(&d, SAGA_LOG_SKIPPED, SAGA_LOG_SENT);
	assert_int_equal(d.fx.logs[0].step, 4);
	assert_string_equal(d.fx.logs[0].error, "done by hand");
	assert_last_sent(&d, 5, SAGA_KIND_ACTION, 1);
	assert_int_equal(d.inst.state, SAGA_ST_RUNNING);
	assert_int_equal(d.inst.max_sent, 5);
	drv_ok(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPLETED);
	drv_fini(&d);

	/* Skip of the last step completes the saga. */
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 4);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	drv_request(&d, SAGA_EV_SKIP, NULL, "s4");
	ASSERT_FX_LOGS(&d, SAGA_LOG_SKIPPED, SAGA_LOG_COMPLETED);
	assert_int_equal(d.inst.state, SAGA_ST_COMPLETED);
	assert_true(d.fx.finished);
	assert_false(d.fx.send);
	drv_fini(&d);

	/* Resolve. */
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 4);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	drv_request(&d, SAGA_EV_RESOLVE, "refunded by phone", NULL);
	assert_int_equal(d.fx.answer, 0);
	ASSERT_FX_LOGS(&d, SAGA_LOG_RESOLVED);
	assert_string_equal(d.fx.logs[0].error, "refunded by phone");
	assert_int_equal(d.inst.state, SAGA_ST_RESOLVED);
	assert_true(d.fx.finished);
	assert_false(d.fx.send);
	assert_int_equal(saga_engine_wake_at(&d.inst), 0);
	snap_take(&d, &s);
	drv_request(&d, SAGA_EV_RETRY, NULL, NULL);
	assert_refused(&d, &s);
	drv_request(&d, SAGA_EV_RESOLVE, NULL, NULL);
	assert_refused(&d, &s);
	drv_request(&d, SAGA_EV_SKIP, NULL, "s4");
	assert_refused(&d, &s);
	drv_fini(&d);
}

/* Skip and resolve of a parked compensation. */
static void
test_saga_engine_operator_on_compensation(void **state)
{
	drv  d;
	snap s;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 2);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	drv_ok(&d);
	drv_answer(&d, PROTO_OUTCOME_FAILED); /* compensation of s1 */
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	snap_take(&d, &s);
	drv_request(&d, SAGA_EV_SKIP, NULL, "s2");
	assert_refused(&d, &s);
	drv_request(&d, SAGA_EV_SKIP, NULL, "s0");
	assert_refused(&d, &s);
	drv_request(&d, SAGA_EV_SKIP, NULL, "c1");
	assert_refused(&d, &s);
	drv_request(&d, SAGA_EV_SKIP, "undone by hand", "s1");
	assert_int_equal(d.fx.answer, 0);
	ASSERT_FX_LOGS(&d, SAGA_LOG_SKIPPED, SAGA_LOG_SENT);
	assert_int_equal(d.fx.logs[0].step, 1);
	assert_int_equal(d.fx.logs[0].kind, SAGA_KIND_COMP);
	assert_last_sent(&d, 0, SAGA_KIND_COMP, 1);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATING);
	drv_ok(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
	drv_fini(&d);

	/* Skip of the lowest compensation: compensated. */
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	drv_request(&d, SAGA_EV_SKIP, NULL, "s0");
	ASSERT_FX_LOGS(&d, SAGA_LOG_SKIPPED, SAGA_LOG_COMPENSATED);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
	assert_true(d.fx.finished);
	drv_fini(&d);

	/* Resolve of a parked compensation. */
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 1);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	drv_answer(&d, PROTO_OUTCOME_FAILED);
	drv_request(&d, SAGA_EV_RESOLVE, "fixed in the db", NULL);
	assert_int_equal(d.inst.state, SAGA_ST_RESOLVED);
	assert_string_equal(d.fx.logs[0].error, "fixed in the db");
	drv_fini(&d);
}

/* Operator requests on a saga that is not FAILED are refused. */
static void
test_saga_engine_operator_refused_unless_failed(void **state)
{
	static const saga_ev_type ops[]
	    = { SAGA_EV_RETRY, SAGA_EV_RESOLVE, SAGA_EV_SKIP };

	(void) state;
	for (int phase = 0; phase < 4; phase++) {
		drv d;

		drv_init(&d, "cccpr");
		drv_start(&d);
		switch (phase) {
		case 0: /* running */
			drv_ok(&d);
			break;
		case 1: /* compensating */
			drv_answer(&d, PROTO_OUTCOME_FAILED);
			break;
		case 2: /* compensated */
			drv_answer(&d, PROTO_OUTCOME_FAILED);
			drv_ok_comps(&d);
			break;
		case 3: /* completed */
			drv_ok_until(&d, 4);
			drv_ok(&d);
			break;
		}
		for (size_t o = 0; o < 3; o++) {
			snap s;

			snap_take(&d, &s);
			drv_request(&d, ops[o], "note",
			    d.def->steps[d.inst.step].name);
			assert_refused(&d, &s);
		}
		drv_fini(&d);
	}
}

/* An ok whose output would make the context too big is a failure of the
 * step: before the pivot it compensates, that step included; after the
 * pivot the saga parks FAILED. The output is not taken. */
static void
test_saga_engine_output_too_big(void **state)
{
	drv     d;
	saga_ev ev = { 0 };

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok(&d);
	ev.type           = SAGA_EV_REPLY;
	ev.step           = 1;
	ev.kind           = SAGA_KIND_ACTION;
	ev.attempt        = 1;
	ev.outcome        = PROTO_OUTCOME_OK;
	ev.output         = test_output(1);
	ev.output_too_big = true;
	drv_event(&d, &ev);
	ASSERT_FX_LOGS(
	    &d, SAGA_LOG_FAILED, SAGA_LOG_COMPENSATING, SAGA_LOG_SENT);
	assert_false(d.fx.output_taken);
	assert_null(d.outputs[1].ptr);
	assert_non_null(strstr(d.inst.last_error, "s1"));
	assert_non_null(strstr(d.inst.last_error, "max_context_bytes"));
	assert_last_sent(&d, 1, SAGA_KIND_COMP, 1);
	drv_ok_comps(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
	assert_sent(&d, d.nsends - 1, 0, SAGA_KIND_COMP, 1);
	drv_fini(&d);

	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 4);
	ev.step   = 4;
	ev.output = test_output(4);
	drv_event(&d, &ev);
	ASSERT_FX_LOGS(&d, SAGA_LOG_FAILED, SAGA_LOG_PARKED);
	assert_false(d.fx.output_taken);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	assert_non_null(strstr(d.inst.last_error, "s4"));
	assert_false(d.fx.send);
	drv_fini(&d);

	/* A pivot with a compensation can be undone: its too-big ok is a
	 * failure of the pivot, which compensates it and the steps before
	 * it (for a bare pivot, see the next test). */
	drv_init(&d, "cccPr");
	drv_start(&d);
	drv_ok_until(&d, 3);
	ev.step   = 3;
	ev.output = test_output(3);
	drv_event(&d, &ev);
	ASSERT_FX_LOGS(
	    &d, SAGA_LOG_FAILED, SAGA_LOG_COMPENSATING, SAGA_LOG_SENT);
	assert_last_sent(&d, 3, SAGA_KIND_COMP, 1);
	drv_ok_comps(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPENSATED);
	drv_fini(&d);
}

/* A pivot without compensation that answers ok has happened and cannot be
 * undone: an output too big for the context must not compensate the steps
 * before it (that would leave the pivot's effect behind a COMPENSATED
 * saga). The saga parks FAILED at the pivot, moving forward only: an
 * operator skip goes on with the next step. */
static void
test_saga_engine_bare_pivot_output_too_big_parks(void **state)
{
	drv     d;
	saga_ev ev = { 0 };
	size_t  n;
	snap    s;

	(void) state;
	drv_init(&d, "cccpr");
	drv_start(&d);
	drv_ok_until(&d, 3);
	n                 = d.nsends;
	ev.type           = SAGA_EV_REPLY;
	ev.step           = 3;
	ev.kind           = SAGA_KIND_ACTION;
	ev.attempt        = 1;
	ev.outcome        = PROTO_OUTCOME_OK;
	ev.output         = test_output(3);
	ev.output_too_big = true;
	drv_event(&d, &ev);
	ASSERT_FX_LOGS(&d, SAGA_LOG_FAILED, SAGA_LOG_PARKED);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	assert_int_equal(d.nsends, n);
	assert_true(saga_engine_pivot_done(&d.inst));
	assert_int_equal(saga_engine_kind(&d.inst), SAGA_KIND_ACTION);
	/* Cancel is refused on a FAILED saga, which stays as it is. */
	snap_take(&d, &s);
	drv_request(&d, SAGA_EV_CANCEL, NULL, NULL);
	assert_refused(&d, &s);
	/* Retry resends the pivot's action. */
	drv_request(&d, SAGA_EV_RETRY, NULL, NULL);
	assert_last_sent(&d, 3, SAGA_KIND_ACTION, 2);
	drv_event(&d, &ev);
	assert_int_equal(d.inst.state, SAGA_ST_FAILED);
	/* Skip goes forward. */
	drv_request(&d, SAGA_EV_SKIP, "output fixed by hand", "s3");
	assert_int_equal(d.fx.answer, 0);
	assert_last_sent(&d, 4, SAGA_KIND_ACTION, 1);
	drv_ok(&d);
	assert_int_equal(d.inst.state, SAGA_ST_COMPLETED);
	for (size_t i = 0; i < d.nsends; i++) {
		assert_int_equal(d.sends[i].kind, SAGA_KIND_ACTION);
	}
	drv_fini(&d);
}

/*
 * The randomized check. Each seed picks a definition, policies and maybe
 * a deadline, then feeds up to RAND_EVENTS random events: replies with
 * random steps, kinds, attempts and outcomes, errors, timeouts, timers at
 * random times or at the wake-up time, cancels and operator requests.
 * After every transition the invariants are checked.
 */
#ifndef RAND_SEEDS
#define RAND_SEEDS 3000
#endif
#define RAND_EVENTS 160

typedef struct rnd_check {
	drv      d;
	uint64_t rng;
	uint32_t last_att[TEST_MAX_STEPS][2];
	bool     comp_done[TEST_MAX_STEPS];
	bool     act_done[TEST_MAX_STEPS];
	bool     pivot_passed;
	int32_t  last_comp; /* lowest compensation sent so far */
	int32_t  last_act; /* highest action sent so far */
	/* Odd seeds model the participants' barrier (DESIGN.md invariant
	 * 2): once a (step, kind) answered ok or failed, every later answer
	 * of it is the same, with the same output. Even seeds answer at
	 * random (chaos), and only the structural invariants are checked. */
	bool     chaos;
	uint32_t decided[TEST_MAX_STEPS][2]; /* outcome + 1; 0 = none */
	bool     too_big[TEST_MAX_STEPS];
} rnd_check;

static uint32_t
rnd_next(rnd_check *r)
{
	/* splitmix64 */
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return ((uint32_t) ((z ^ (z >> 31)) >> 32));
}

static uint32_t
rnd_below(rnd_check *r, uint32_t n)
{
	return (n == 0 ? 0 : rnd_next(r) % n);
}

static bool
rnd_has_comp(const drv *d, int32_t step)
{
	return (d->def->steps[step].compensation != NULL);
}

static bool
rnd_bare_pivot(const drv *d, int32_t step)
{
	return (step == d->def->pivot && !rnd_has_comp(d, step));
}

/* Builds one random saga for seed. */
static void
rnd_setup(rnd_check *r, unsigned seed)
{
	static const char *const specs[] = { "cccpr", "cccPr", "cccc", "ccnc",
		"cpr", "Prr", "ccprr", "c", "p", "P", "cccPrrr" };
	drv                     *d       = &r->d;

	memset(r, 0, sizeof(*r));
	r->rng = seed * 0x2545f4914f6cdd1dULL + 1;
	drv_init(d, specs[rnd_below(r, sizeof(specs) / sizeof(specs[0]))]);
	d->seed      = seed;
	r->chaos     = seed % 2 == 0;
	r->last_comp = INT32_MAX;
	r->last_act  = -1;
	for (size_t i = 0; i < d->def->nsteps; i++) {
		saga_step_def *s = &d->def->steps[i];

		s->retry.max_attempts = rnd_below(r, 5); /* 0: unlimited */
		s->retry.initial_backoff_ms      = 1 + rnd_below(r, 100);
		s->retry.multiplier              = 1.0 + rnd_below(r, 3);
		s->retry.max_backoff_ms          = 100 + rnd_below(r, 400);
		s->retry.jitter                  = rnd_below(r, 3) * 0.25;
		s->comp_retry.max_attempts       = rnd_below(r, 5);
		s->comp_retry.initial_backoff_ms = 1 + rnd_below(r, 100);
		s->comp_retry.multiplier         = 1.0 + rnd_below(r, 2);
		s->comp_retry.max_backoff_ms     = 100 + rnd_below(r, 400);
		s->comp_retry.jitter             = rnd_below(r, 2) * 0.5;
		s->comp_budget_ms
		    = rnd_below(r, 2) ? 0 : 100 + rnd_below(r, 2000);
	}
	if (rnd_below(r, 2)) {
		d->inst.deadline_ms = T0 + 1 + rnd_below(r, 3000);
	}
}

/* Picks one of n outcomes by percentage: y below cut[0] gives 0, below
 * cut[1] gives 1, and so on. */
static uint32_t
rnd_pick(uint32_t y, const uint32_t *cut, uint32_t n)
{
	uint32_t i = 0;

	while (i + 1 < n && y >= cut[i]) {
		i++;
	}
	return (i);
}

/* Whether step is a valid index of d's definition. */
static bool
rnd_step_valid(const drv *d, int32_t step)
{
	return (step >= 0 && step < (int32_t) d->def->nsteps);
}

/* A random reply, error or timeout, mostly about the awaited command. */
static void
rnd_reply(rnd_check *r, saga_ev *ev, uint32_t x)
{
	static const uint32_t     types_cut[] = { 35, 42 };
	static const uint32_t     outs_cut[]  = { 45, 60, 97 };
	static const uint32_t     outs[]      = { PROTO_OUTCOME_OK,
		         PROTO_OUTCOME_FAILED, PROTO_OUTCOME_RETRY, 9 };
	static const saga_ev_type types[]
	    = { SAGA_EV_REPLY, SAGA_EV_TIMEOUT, SAGA_EV_ERROR };
	drv     *d     = &r->d;
	uint32_t cur   = d->inst.attempt;
	uint32_t nstep = (uint32_t) d->def->nsteps;

	ev->type = types[rnd_pick(x, types_cut, 3)];
	if (rnd_below(r, 5) != 0) {
		ev->step = d->inst.step;
	} else {
		ev->step = (int32_t) rnd_below(r, nstep + 2) - 1;
	}
	if (rnd_below(r, 8) != 0) {
		ev->kind = saga_engine_kind(&d->inst);
	} else {
		ev->kind = rnd_below(r, 2);
	}
	if (rnd_below(r, 3) != 0) {
		ev->attempt = cur;
	} else {
		ev->attempt = rnd_below(r, cur + 2);
	}
	ev->outcome = outs[rnd_pick(rnd_below(r, 100), outs_cut, 4)];
	ev->text    = rnd_below(r, 2) ? "why" : NULL;
	if (ev->type != SAGA_EV_REPLY) {
		return;
	}
	if (!r->chaos && rnd_step_valid(d, ev->step)
	    && ev->outcome <= PROTO_OUTCOME_FAILED) {
		/* The barrier: the first decision of (step, kind) stays. */
		uint32_t *dec = &r->decided[ev->step][ev->kind];

		if (*dec == 0) {
			*dec                 = ev->outcome + 1;
			r->too_big[ev->step] = rnd_below(r, 20) == 0;
		}
		ev->outcome = *dec - 1;
	}
	if (ev->outcome != PROTO_OUTCOME_OK) {
		return;
	}
	ev->output = test_output(ev->step);
	if (r->chaos) {
		ev->output_too_big = rnd_below(r, 20) == 0;
	} else if (ev->kind == SAGA_KIND_ACTION
	    && rnd_step_valid(d, ev->step)) {
		ev->output_too_big = r->too_big[ev->step];
	}
}

/* One random event, the clock moving forward. */
static void
rnd_event(rnd_check *r, saga_ev *ev)
{
	drv     *d     = &r->d;
	uint32_t x     = rnd_below(r, 100);
	uint32_t nstep = (uint32_t) d->def->nsteps;
	int64_t  wake;

	memset(ev, 0, sizeof(*ev));
	ev->rnd         = rnd_next(r);
	ev->duration_us = rnd_below(r, 100000);
	if (rnd_below(r, 4) == 0) {
		d->now += rnd_below(r, 2000);
	} else {
		d->now += rnd_below(r, 50);
	}
	if (x < 50) {
		rnd_reply(r, ev, x);
	} else if (x < 82) {
		/* Mostly at (or just after) the time the saga asked for. */
		ev->type = SAGA_EV_TIMER;
		wake     = saga_engine_wake_at(&d->inst);
		if (wake > d->now && rnd_below(r, 3) != 0) {
			d->now = wake;
			if (rnd_below(r, 3) != 0) {
				d->now += rnd_below(r, 5);
			}
		}
	} else if (x < 88) {
		ev->type = SAGA_EV_CANCEL;
		ev->text = "cancel";
	} else {
		static const uint32_t     ops_cut[] = { 50, 95 };
		static const saga_ev_type ops[]
		    = { SAGA_EV_RETRY, SAGA_EV_SKIP, SAGA_EV_RESOLVE };
		int32_t named = d->inst.step;

		ev->type = ops[rnd_pick(rnd_below(r, 100), ops_cut, 3)];
		ev->text = "operator";
		if (rnd_below(r, 4) == 0) {
			named = (int32_t) rnd_below(r, nstep);
		}
		ev->step_name = d->def->steps[named].name;
	}
	ev->now_ms = d->now;
}

/* Checks every invariant after the transition from p by ev. */
static void
rnd_check_after(rnd_check *r, const saga_inst *p, const saga_ev *ev)
{
	drv             *d       = &r->d;
	const saga_inst *i       = &d->inst;
	const saga_fx   *fx      = &d->fx;
	int              pivot   = d->def->pivot;
	bool             applied = !fx->ignored && (fx->changed || fx->send);
	bool was_op = ev->type == SAGA_EV_RETRY || ev->type == SAGA_EV_RESOLVE
	    || ev->type == SAGA_EV_SKIP;
	bool was_cancel = ev->type == SAGA_EV_CANCEL;

	/* Terminal states never change, but an operator may move a FAILED
	 * saga on. */
	if (saga_state_terminal(p->state)
	    && !(p->state == SAGA_ST_FAILED && was_op)) {
		DRV_CHECK(d, !fx->changed && fx->nlogs == 0 && !fx->send);
		DRV_CHECK(d, i->state == p->state);
		DRV_CHECK(d,
		    fx->answer == (was_op || was_cancel ? SAGA_ESTATE : 0));
		return;
	}
	/* An operator's repair applies to FAILED sagas only, a cancel to
	 * RUNNING ones only: else refused. */
	if ((was_op && p->state != SAGA_ST_FAILED)
	    || (was_cancel && p->state != SAGA_ST_RUNNING)) {
		DRV_CHECK(d, fx->answer == SAGA_ESTATE);
	}
	if (fx->answer != 0) {
		DRV_CHECK(d, fx->answer == SAGA_ESTATE);
		DRV_CHECK(d, !fx->changed && fx->nlogs == 0 && !fx->send);
		DRV_CHECK(d, fx->answer_text[0] != '\0');
		DRV_CHECK(d,
		    i->state == p->state && i->step == p->step
		        && i->attempt == p->attempt);
	}
	if (fx->ignored) {
		DRV_CHECK(d, !fx->changed && fx->nlogs == 0 && !fx->send);
	}
	DRV_CHECK(d,
	    fx->finished
	        == (saga_state_terminal(i->state) && i->state != p->state));
	DRV_CHECK(d, i->max_sent >= p->max_sent);
	DRV_CHECK(d, i->max_sent < (int32_t) d->def->nsteps);
	DRV_CHECK(d, i->step >= 0 && i->step < (int32_t) d->def->nsteps);

	/* What this transition accepted. */
	if (applied && ev->type == SAGA_EV_REPLY
	    && ev->outcome == PROTO_OUTCOME_OK) {
		DRV_CHECK(d, ev->step == p->step);
		DRV_CHECK(d, ev->attempt >= 1 && ev->attempt <= p->attempt);
		if (p->state == SAGA_ST_COMPENSATING) {
			DRV_CHECK(d, ev->kind == SAGA_KIND_COMP);
			r->comp_done[p->step] = true;
		} else {
			DRV_CHECK(d, p->state == SAGA_ST_RUNNING);
			DRV_CHECK(d, ev->kind == SAGA_KIND_ACTION);
			if (!ev->output_too_big) {
				r->act_done[p->step] = true;
				DRV_CHECK(d, fx->output_taken);
				DRV_CHECK(d,
				    d->outputs[p->step].ptr == ev->output.ptr);
			}
			/* A pivot that answered ok has happened (with the
			 * barrier, it answers ok from now on). */
			if (!r->chaos && p->step == pivot
			    && (!ev->output_too_big
			        || rnd_bare_pivot(d, p->step))) {
				r->pivot_passed = true;
			}
		}
	}
	if (applied
	    && (ev->type == SAGA_EV_TIMEOUT || ev->type == SAGA_EV_ERROR
	        || (ev->type == SAGA_EV_REPLY
	            && ev->outcome != PROTO_OUTCOME_OK
	            && ev->outcome != PROTO_OUTCOME_FAILED))) {
		/* Transient: only from the current attempt in flight. */
		DRV_CHECK(d, ev->attempt == p->attempt && p->in_flight);
		DRV_CHECK(d, ev->step == p->step);
	}
	if (applied && ev->type == SAGA_EV_SKIP) {
		DRV_CHECK(d, p->state == SAGA_ST_FAILED);
		DRV_CHECK(d,
		    strcmp(ev->step_name, d->def->steps[p->step].name) == 0);
		if (saga_engine_pivot_done(p)) {
			r->act_done[p->step] = true;
		} else {
			r->comp_done[p->step] = true;
		}
	}
	if (i->state == SAGA_ST_COMPLETED || (pivot >= 0 && i->step > pivot)) {
		r->pivot_passed = true;
	}

	/* What this transition sent. */
	if (fx->send) {
		int32_t  st   = i->step;
		uint32_t kind = saga_engine_kind(i);

		DRV_CHECK(d, i->attempt > r->last_att[st][kind]);
		r->last_att[st][kind] = i->attempt;
		DRV_CHECK(d,
		    (kind == SAGA_KIND_COMP)
		        == (i->state == SAGA_ST_COMPENSATING));
		if (kind == SAGA_KIND_COMP) {
			DRV_CHECK(d, !r->pivot_passed);
			DRV_CHECK(d, st <= i->max_sent);
			DRV_CHECK(d, st <= r->last_comp);
			DRV_CHECK(d, rnd_has_comp(d, st));
			r->last_comp = st;
		} else {
			DRV_CHECK(d, i->state == SAGA_ST_RUNNING);
			DRV_CHECK(d, st >= r->last_act);
			DRV_CHECK(d, st == i->max_sent);
			DRV_CHECK(d, r->last_comp == INT32_MAX);
			r->last_act = st;
			/* Past the deadline before the pivot nothing new
			 * starts; only a bare pivot is resent. */
			if (i->deadline_ms != 0 && d->now >= i->deadline_ms
			    && !r->pivot_passed) {
				DRV_CHECK(d,
				    rnd_bare_pivot(d, st) && i->attempt > 1);
			}
		}
	}
	if (r->pivot_passed) {
		DRV_CHECK(d,
		    i->state != SAGA_ST_COMPENSATING
		        && i->state != SAGA_ST_COMPENSATED);
	}
	if (i->state == SAGA_ST_COMPENSATING) {
		DRV_CHECK(d, i->step <= i->max_sent);
		DRV_CHECK(d, rnd_has_comp(d, i->step));
	}
	if (i->state == SAGA_ST_COMPENSATED) {
		for (int32_t j = 0; j <= i->max_sent; j++) {
			DRV_CHECK(d, !rnd_has_comp(d, j) || r->comp_done[j]);
		}
	}
	if (i->state == SAGA_ST_COMPLETED) {
		for (size_t j = 0; j < d->def->nsteps; j++) {
			DRV_CHECK(d, r->act_done[j]);
		}
	}
	/* A live saga always waits for something: a reply or a timer. */
	if (!saga_state_terminal(i->state)) {
		DRV_CHECK(d, i->attempt >= 1);
		DRV_CHECK(d, i->in_flight || saga_engine_wake_at(i) != 0);
		if (!i->in_flight) {
			DRV_CHECK(d, i->next_at_ms != 0);
		}
	} else {
		DRV_CHECK(d, saga_engine_wake_at(i) == 0);
		DRV_CHECK(d, !i->in_flight);
	}
	/* A timer at or after the time the saga asked for always does
	 * something (else the shell would spin on it). */
	if (ev->type == SAGA_EV_TIMER && saga_engine_wake_at(p) != 0
	    && d->now >= saga_engine_wake_at(p)) {
		DRV_CHECK(d, !fx->ignored && fx->changed);
	}
	/* A timer past the deadline leaves no saga running before its
	 * pivot, unless it awaits the pivot. */
	if (ev->type == SAGA_EV_TIMER && i->deadline_ms != 0
	    && d->now >= i->deadline_ms && i->state == SAGA_ST_RUNNING
	    && !r->pivot_passed) {
		DRV_CHECK(d,
		    i->step == pivot
		        && (i->in_flight || rnd_bare_pivot(d, i->step)));
	}
	/* Reply matching: only the current step and kind apply. */
	if (applied
	    && (ev->type == SAGA_EV_REPLY || ev->type == SAGA_EV_TIMEOUT
	        || ev->type == SAGA_EV_ERROR)) {
		DRV_CHECK(d,
		    ev->step == p->step && ev->kind == saga_engine_kind(p)
		        && ev->attempt >= 1 && ev->attempt <= p->attempt);
	}
}

/* Prints one transition (SAGA_ENGINE_TEST_TRACE=<seed>). */
static void
rnd_trace(const rnd_check *r, const saga_inst *p, const saga_ev *ev)
{
	static const char *const types[] = { "reply", "error", "timeout",
		"timer", "cancel", "op_retry", "op_resolve", "op_skip" };
	const drv               *d       = &r->d;

	print_message("#%u t=%lld %s step=%d kind=%u att=%u out=%u big=%d "
	              "name=%s | %s %d/%u/%u%s -> %s %d/%u/%u%s max_sent=%d "
	              "next=%lld wake=%lld%s%s ans=%d\n",
	    d->nevents, (long long) d->now, types[ev->type], ev->step,
	    ev->kind, ev->attempt, ev->outcome, ev->output_too_big,
	    ev->step_name ? ev->step_name : "-", saga_state_name(p->state),
	    p->step, saga_engine_kind(p), p->attempt, p->in_flight ? "*" : "",
	    saga_state_name(d->inst.state), d->inst.step,
	    saga_engine_kind(&d->inst), d->inst.attempt,
	    d->inst.in_flight ? "*" : "", d->inst.max_sent,
	    (long long) d->inst.next_at_ms,
	    (long long) saga_engine_wake_at(&d->inst),
	    d->fx.ignored ? " ignored" : "", d->fx.send ? " SEND" : "",
	    d->fx.answer);
}

static void
test_saga_engine_randomized_invariants(void **state)
{
	rnd_check  *r;
	size_t      finals[SAGA_ST_RESOLVED + 1]    = { 0 };
	bool        log_seen[SAGA_LOG_DEADLINE + 1] = { false };
	const char *env   = getenv("SAGA_ENGINE_TEST_TRACE");
	long        trace = env != NULL ? strtol(env, NULL, 10) : 0;

	(void) state;
	r = calloc(1, sizeof(*r));
	assert_non_null(r);
	test_live_block = r;
	for (unsigned seed = 1; seed <= RAND_SEEDS; seed++) {
		drv *d = &r->d;

		rnd_setup(r, seed);
		drv_start(d);
		r->last_att[0][SAGA_KIND_ACTION] = d->inst.attempt;
		r->last_act                      = 0;
		for (unsigned e = 0; e < RAND_EVENTS; e++) {
			saga_inst p = d->inst;
			saga_ev   ev;

			rnd_event(r, &ev);
			drv_event(d, &ev);
			if (trace != 0 && (unsigned) trace == seed) {
				rnd_trace(r, &p, &ev);
			}
			rnd_check_after(r, &p, &ev);
			if (d->inst.state == SAGA_ST_COMPLETED
			    || d->inst.state == SAGA_ST_COMPENSATED
			    || d->inst.state == SAGA_ST_RESOLVED) {
				if (rnd_below(r, 4) == 0) {
					break;
				}
			}
		}
		finals[d->inst.state]++;
		for (size_t i = 0; i < d->nlogs; i++) {
			log_seen[d->logs[i]] = true;
		}
		drv_fini(d);
	}
	/* The random walk reaches every end and writes every kind of log
	 * row: it explores the whole machine. */
	for (int s = SAGA_ST_COMPLETED; s <= SAGA_ST_RESOLVED; s++) {
		if (finals[s] == 0) {
			fail_msg("no random saga ended %s",
			    saga_state_name((saga_state) s));
		}
	}
	for (int t = SAGA_LOG_STARTED; t <= SAGA_LOG_DEADLINE; t++) {
		if (!log_seen[t]) {
			fail_msg("no random saga logged %s",
			    saga_log_name((saga_log_type) t));
		}
	}
	test_live_block = NULL;
	free(r);
}

/* Every test frees what a failure left behind. */
#define ENGINE_TEST(f) cmocka_unit_test_teardown(f, test_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		ENGINE_TEST(test_saga_engine_names),
		ENGINE_TEST(test_saga_engine_success_path),
		ENGINE_TEST(test_saga_engine_empty_saga_completes),
		ENGINE_TEST(test_saga_engine_step_compensates_on_failure),
		ENGINE_TEST(test_saga_engine_comp_command_name),
		ENGINE_TEST(test_saga_engine_backoff_grows_and_caps),
		ENGINE_TEST(
		    test_saga_engine_transient_retries_then_compensates),
		ENGINE_TEST(test_saga_engine_transient_backoff_caps),
		ENGINE_TEST(test_saga_engine_transient_jitter_bounds),
		ENGINE_TEST(test_saga_engine_late_replies_ignored),
		ENGINE_TEST(test_saga_engine_late_replies_while_compensating),
		ENGINE_TEST(test_saga_engine_old_attempt_ok_counts),
		ENGINE_TEST(test_saga_engine_comp_retry_then_parks),
		ENGINE_TEST(test_saga_engine_comp_failed_parks),
		ENGINE_TEST(test_saga_engine_comp_budget_parks),
		ENGINE_TEST(test_saga_engine_comp_budget_per_step),
		ENGINE_TEST(test_saga_engine_retriable_failure_parks),
		ENGINE_TEST(test_saga_engine_retriable_exhausted_parks),
		ENGINE_TEST(test_saga_engine_retriable_unlimited),
		ENGINE_TEST(test_saga_engine_seq_limit_stops_retries),
		ENGINE_TEST(test_saga_engine_bare_pivot_ignores_max_attempts),
		ENGINE_TEST(
		    test_saga_engine_pivot_with_comp_ignores_max_attempts),
		ENGINE_TEST(
		    test_saga_engine_deadline_compensates_before_pivot),
		ENGINE_TEST(test_saga_engine_deadline_during_backoff),
		ENGINE_TEST(test_saga_engine_deadline_no_new_attempt),
		ENGINE_TEST(test_saga_engine_deadline_awaits_inflight_pivot),
		ENGINE_TEST(test_saga_engine_deadline_pivot_backoff),
		ENGINE_TEST(test_saga_engine_cancel_before_pivot_compensates),
		ENGINE_TEST(test_saga_engine_cancel_refused_or_noop),
		ENGINE_TEST(test_saga_engine_remote_cancel_refused_is_logged),
		ENGINE_TEST(test_saga_engine_operator_retry_compensation),
		ENGINE_TEST(test_saga_engine_operator_retry_after_exhausted),
		ENGINE_TEST(test_saga_engine_operator_retry_fresh_budget),
		ENGINE_TEST(test_saga_engine_comp_retry_keeps_cause),
		ENGINE_TEST(test_saga_engine_operator_on_retriable),
		ENGINE_TEST(test_saga_engine_operator_on_compensation),
		ENGINE_TEST(test_saga_engine_operator_refused_unless_failed),
		ENGINE_TEST(test_saga_engine_output_too_big),
		ENGINE_TEST(test_saga_engine_bare_pivot_output_too_big_parks),
		ENGINE_TEST(test_saga_engine_randomized_invariants),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
