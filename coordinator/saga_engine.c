/* SPDX-License-Identifier: MIT */
/*
 * saga_engine: the saga state machine. See saga_engine.h for the rules.
 *
 * DESIGN: every entry point takes the instance and an event and writes the
 * transition's effects into a saga_fx the caller zeroed. Helpers append
 * log rows (each with the next sequence number) and set the flags; nothing
 * here reads a clock, draws a random number, allocates or does I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_msg.h"
#include "saga_engine.h"
#include "saga_err.h"

static const char *const saga_state_names[] = {
	[SAGA_ST_RUNNING]      = "RUNNING",
	[SAGA_ST_COMPENSATING] = "COMPENSATING",
	[SAGA_ST_COMPLETED]    = "COMPLETED",
	[SAGA_ST_COMPENSATED]  = "COMPENSATED",
	[SAGA_ST_FAILED]       = "FAILED",
	[SAGA_ST_RESOLVED]     = "RESOLVED",
};

const char *
saga_state_name(saga_state st)
{
	if ((unsigned) st < sizeof(saga_state_names) / sizeof(char *)) {
		return (saga_state_names[st]);
	}
	return ("UNKNOWN");
}

int
saga_state_parse(const char *name, saga_state *out)
{
	for (size_t i = 0; i < sizeof(saga_state_names) / sizeof(char *);
	     i++) {
		if (strcmp(name, saga_state_names[i]) == 0) {
			*out = (saga_state) i;
			return (0);
		}
	}
	return (SAGA_EINVAL);
}

bool
saga_state_terminal(saga_state st)
{
	return (st != SAGA_ST_RUNNING && st != SAGA_ST_COMPENSATING);
}

static const char *const saga_log_names[] = {
	[SAGA_LOG_STARTED]        = "saga_started",
	[SAGA_LOG_SENT]           = "step_sent",
	[SAGA_LOG_OK]             = "step_ok",
	[SAGA_LOG_FAILED]         = "step_failed",
	[SAGA_LOG_RETRY]          = "step_retry",
	[SAGA_LOG_GAVE_UP]        = "step_gave_up",
	[SAGA_LOG_COMPENSATING]   = "saga_compensating",
	[SAGA_LOG_COMPLETED]      = "saga_completed",
	[SAGA_LOG_COMPENSATED]    = "saga_compensated",
	[SAGA_LOG_PARKED]         = "saga_failed",
	[SAGA_LOG_CANCEL]         = "cancel_requested",
	[SAGA_LOG_OP_RETRY]       = "operator_retry",
	[SAGA_LOG_RESOLVED]       = "saga_resolved",
	[SAGA_LOG_SKIPPED]        = "step_skipped",
	[SAGA_LOG_DEADLINE]       = "deadline_passed",
	[SAGA_LOG_LOAD_FAILED]    = "load_failed",
	[SAGA_LOG_CANCEL_REFUSED] = "cancel_refused",
};

const char *
saga_log_name(saga_log_type t)
{
	if ((unsigned) t < sizeof(saga_log_names) / sizeof(char *)) {
		return (saga_log_names[t]);
	}
	return ("unknown");
}

const char *
saga_outcome_name(int32_t outcome)
{
	switch (outcome) {
	case SAGA_OUTCOME_TIMEOUT:
		return ("timeout");
	case SAGA_OUTCOME_ERROR:
		return ("error");
	default:
		return (proto_outcome_name((uint32_t) outcome));
	}
}

uint32_t
saga_engine_kind(const saga_inst *inst)
{
	return (inst->state == SAGA_ST_COMPENSATING ||
	            (inst->state == SAGA_ST_FAILED &&
	                !saga_engine_pivot_done(inst))
	        ? SAGA_KIND_COMP
	        : SAGA_KIND_ACTION);
}

const char *
saga_engine_command_name(const saga_inst *inst)
{
	const saga_step_def *sd;

	if (inst->step < 0 || (size_t) inst->step >= inst->def->nsteps) {
		return ("");
	}
	sd = &inst->def->steps[inst->step];
	return (saga_engine_kind(inst) == SAGA_KIND_COMP && sd->compensation
	        ? sd->compensation
	        : sd->action);
}

bool
saga_engine_pivot_done(const saga_inst *inst)
{
	int pivot = inst->def->pivot;

	if (pivot < 0) {
		return (false);
	}
	if (inst->state == SAGA_ST_COMPLETED) {
		return (true);
	}
	/* A saga parked at a pivot without compensation was not parked by a
	 * compensation: the pivot answered ok (its output did not fit), so
	 * it can only move forward. */
	if (inst->state == SAGA_ST_FAILED && inst->step == pivot &&
	    inst->def->steps[pivot].compensation == NULL) {
		return (true);
	}
	/* Compensation never runs past the pivot, so a saga that stands on
	 * a step after it is moving forward. */
	return (inst->step > pivot);
}

int64_t
saga_engine_backoff_ms(const saga_retry *r, uint32_t attempt, uint32_t rnd)
{
	double wait = (double) r->initial_backoff_ms;
	double f    = 1.0;
	double b    = r->multiplier;
	double j;

	/* wait * multiplier^(attempt - 1), the power by squaring: at most
	 * 32 rounds whatever the attempt (unlimited for some steps) and
	 * the multiplier (any >= 1; a loop of one multiplication an attempt
	 * ran attempt times with a multiplier of 1). f only grows, so once
	 * the wait reaches max_backoff it stays there. */
	for (uint32_t n = attempt > 0 ? attempt - 1 : 0;
	     n > 0 && wait > 0 && wait * f < (double) r->max_backoff_ms;
	     n >>= 1) {
		if ((n & 1) != 0) {
			f *= b;
		}
		b *= b;
	}
	if (wait > 0) {
		wait *= f;
	}
	if (wait > (double) r->max_backoff_ms) {
		wait = (double) r->max_backoff_ms;
	}
	/* rnd maps to [-1, 1]: the wait moves by up to +/- jitter of it. */
	j = ((double) rnd / (double) UINT32_MAX) * 2.0 - 1.0;
	wait += wait * r->jitter * j;
	if (wait > (double) r->max_backoff_ms) {
		wait = (double) r->max_backoff_ms;
	}
	return (wait < 0 ? 0 : (int64_t) wait);
}

/* Appends a log row; returns it so that the caller can fill extras. */
static saga_log *
saga_engine_log(saga_inst *inst, saga_fx *fx, saga_log_type type,
    int64_t now, const char *error)
{
	saga_log *l;

	if (fx->nlogs == SAGA_FX_MAX_LOGS) {
		/* A bug: transitions are bounded by construction. */
		fprintf(stderr, "saga_engine: too many log rows\n");
		abort();
	}
	l = &fx->logs[fx->nlogs++];
	memset(l, 0, sizeof(*l));
	l->type        = type;
	l->seq         = ++inst->seq;
	l->at_ms       = now;
	l->step        = -1;
	l->kind        = -1;
	l->outcome     = -1;
	snprintf(l->error, sizeof(l->error), "%s", error ? error : "");
	proto_utf8_trim(l->error);
	l->duration_us = -1;
	fx->changed    = true;
	return (l);
}

/* Like saga_engine_log, about the current command of inst. */
static saga_log *
saga_engine_log_cmd(saga_inst *inst, saga_fx *fx, saga_log_type type,
    int64_t now, const char *error)
{
	saga_log *l = saga_engine_log(inst, fx, type, now, error);

	l->step    = inst->step;
	l->kind    = (int32_t) saga_engine_kind(inst);
	l->attempt = inst->attempt;
	return (l);
}

static void
saga_engine_set_error(saga_inst *inst, const char *fmt, const char *a,
    const char *b)
{
	snprintf(inst->last_error, sizeof(inst->last_error), fmt, a,
	    b ? b : "");
	proto_utf8_trim(inst->last_error);
}

/* Sends the next attempt of the current (step, kind). */
static void
saga_engine_send(saga_inst *inst, saga_fx *fx, int64_t now)
{
	inst->attempt++;
	inst->in_flight  = true;
	inst->next_at_ms = 0;
	if (inst->state == SAGA_ST_RUNNING && inst->step > inst->max_sent) {
		inst->max_sent = inst->step;
	}
	saga_engine_log_cmd(inst, fx, SAGA_LOG_SENT, now, NULL);
	fx->send = true;
}

/* Starts step (or its compensation) with attempt 1. */
static void
saga_engine_begin(saga_inst *inst, saga_fx *fx, int64_t now, int32_t step)
{
	inst->step           = step;
	inst->attempt        = 0;
	inst->phase_attempt0 = 0;
	inst->phase_start_ms = now;
	saga_engine_send(inst, fx, now);
}

static void
saga_engine_finish(saga_inst *inst, saga_fx *fx, int64_t now,
    saga_state st, saga_log_type type)
{
	inst->state      = st;
	inst->in_flight  = false;
	inst->next_at_ms = 0;
	saga_engine_log(inst, fx, type, now,
	    st == SAGA_ST_FAILED ? inst->last_error : NULL);
	fx->finished = true;
	fx->send     = false;
}

/* Parks the saga FAILED at its current step, with last_error as reason. */
static void
saga_engine_park(saga_inst *inst, saga_fx *fx, int64_t now)
{
	inst->state      = SAGA_ST_FAILED;
	inst->in_flight  = false;
	inst->next_at_ms = 0;
	saga_engine_log_cmd(inst, fx, SAGA_LOG_PARKED, now, inst->last_error);
	fx->finished = true;
	fx->send     = false;
}

/* Compensates the highest step at or below from that has a compensation;
 * with none left the saga is COMPENSATED. */
static void
saga_engine_next_comp(saga_inst *inst, saga_fx *fx, int64_t now,
    int32_t from)
{
	for (int32_t j = from; j >= 0; j--) {
		if (inst->def->steps[j].compensation != NULL) {
			inst->state = SAGA_ST_COMPENSATING;
			saga_engine_begin(inst, fx, now, j);
			return;
		}
	}
	inst->step = from < 0 ? 0 : from;
	saga_engine_finish(inst, fx, now, SAGA_ST_COMPENSATED,
	    SAGA_LOG_COMPENSATED);
}

/* Turns the saga around: every step that had an attempt sent is
 * compensated, in reverse order (DESIGN.md invariant 3). */
static void
saga_engine_compensate(saga_inst *inst, saga_fx *fx, int64_t now)
{
	inst->state     = SAGA_ST_COMPENSATING;
	inst->in_flight = false;
	saga_engine_log(inst, fx, SAGA_LOG_COMPENSATING, now,
	    inst->last_error);
	saga_engine_next_comp(inst, fx, now, inst->max_sent);
}

static bool
saga_engine_past_deadline(const saga_inst *inst, int64_t now)
{
	return (inst->deadline_ms != 0 && now >= inst->deadline_ms);
}

/* Whether the current step is a pivot that cannot be compensated. */
static bool
saga_engine_bare_pivot(const saga_inst *inst)
{
	return (inst->step == inst->def->pivot &&
	    inst->def->steps[inst->step].compensation == NULL);
}

/* The deadline passed while RUNNING before the pivot: no new attempt,
 * compensate. An in-flight pivot attempt is awaited first, and a pivot
 * without compensation must be resolved, so it keeps being resent. Returns
 * true when the saga turned around. */
static bool
saga_engine_deadline(saga_inst *inst, saga_fx *fx, int64_t now)
{
	if (inst->state != SAGA_ST_RUNNING || saga_engine_pivot_done(inst) ||
	    !saga_engine_past_deadline(inst, now)) {
		return (false);
	}
	if (inst->step == inst->def->pivot &&
	    (inst->in_flight || saga_engine_bare_pivot(inst))) {
		return (false);
	}
	saga_engine_log(inst, fx, SAGA_LOG_DEADLINE, now, NULL);
	saga_engine_set_error(inst, "deadline passed%s%s", "", NULL);
	saga_engine_compensate(inst, fx, now);
	return (true);
}

void
saga_engine_start(saga_inst *inst, int64_t now_ms, saga_fx *fx)
{
	inst->state          = SAGA_ST_RUNNING;
	inst->step           = 0;
	inst->attempt        = 0;
	inst->max_sent       = -1;
	inst->in_flight      = false;
	inst->next_at_ms     = 0;
	inst->phase_start_ms = now_ms;
	inst->seq            = 0;
	inst->last_error[0]  = '\0';
	saga_engine_log(inst, fx, SAGA_LOG_STARTED, now_ms, NULL);
	fx->context_changed = true;
	if (inst->def->nsteps == 0) {
		saga_engine_finish(inst, fx, now_ms, SAGA_ST_COMPLETED,
		    SAGA_LOG_COMPLETED);
		return;
	}
	saga_engine_begin(inst, fx, now_ms, 0);
}

/* Tells whether a reply or failure for (step, kind, attempt) is about the
 * command the saga awaits. */
static bool
saga_engine_awaited(const saga_inst *inst, const saga_ev *ev)
{
	if (saga_state_terminal(inst->state) || ev->step != inst->step ||
	    ev->kind != saga_engine_kind(inst) || ev->attempt == 0 ||
	    ev->attempt > inst->attempt) {
		return (false);
	}
	return (true);
}

static void
saga_engine_on_ok(saga_inst *inst, const saga_ev *ev, saga_fx *fx)
{
	const saga_def      *def = inst->def;
	const saga_step_def *sd  = &def->steps[inst->step];
	int64_t              now = ev->now_ms;
	saga_log            *l;

	if (inst->state == SAGA_ST_COMPENSATING) {
		l              = saga_engine_log_cmd(inst, fx, SAGA_LOG_OK, now,
                    NULL);
		l->attempt     = ev->attempt;
		l->outcome     = PROTO_OUTCOME_OK;
		l->duration_us = ev->duration_us;
		inst->in_flight = false;
		saga_engine_next_comp(inst, fx, now, inst->step - 1);
		return;
	}
	if (ev->output_too_big || ev->output_too_deep) {
		/* An output no COMMAND could carry in its context. */
		const char *why = ev->output_too_deep
		    ? "output nests deeper than a COMMAND can carry"
		    : "output exceeds max_context_bytes";

		l = saga_engine_log_cmd(inst, fx, SAGA_LOG_FAILED, now, why);
		l->attempt     = ev->attempt;
		l->outcome     = PROTO_OUTCOME_OK;
		l->duration_us = ev->duration_us;
		saga_engine_set_error(inst, "step %s: %s", sd->name, why);
		/* A pivot without compensation that answered ok has taken
		 * effect for good: park, never compensate before it. */
		if (saga_engine_pivot_done(inst) ||
		    (inst->step == def->pivot && sd->compensation == NULL)) {
			saga_engine_park(inst, fx, now);
		} else {
			saga_engine_compensate(inst, fx, now);
		}
		return;
	}
	inst->outputs[inst->step] = ev->output;
	fx->output_taken          = true;
	fx->context_changed       = true;
	l = saga_engine_log_cmd(inst, fx, SAGA_LOG_OK, now, NULL);
	l->attempt     = ev->attempt;
	l->outcome     = PROTO_OUTCOME_OK;
	l->output      = ev->output;
	l->duration_us = ev->duration_us;
	inst->in_flight = false;
	if ((size_t) inst->step + 1 == def->nsteps) {
		saga_engine_finish(inst, fx, now, SAGA_ST_COMPLETED,
		    SAGA_LOG_COMPLETED);
		return;
	}
	/* The next step is the new current one; before the pivot it is not
	 * started past the deadline. */
	if (def->pivot < 0 || inst->step < def->pivot) {
		if (saga_engine_past_deadline(inst, now)) {
			saga_engine_log(inst, fx, SAGA_LOG_DEADLINE, now, NULL);
			saga_engine_set_error(inst, "deadline passed%s%s", "",
			    NULL);
			saga_engine_compensate(inst, fx, now);
			return;
		}
	}
	saga_engine_begin(inst, fx, now, inst->step + 1);
}

static void
saga_engine_on_failed(saga_inst *inst, const saga_ev *ev, saga_fx *fx)
{
	const saga_step_def *sd  = &inst->def->steps[inst->step];
	int64_t              now = ev->now_ms;
	const char          *why = ev->text && *ev->text ? ev->text
	                                                  : "no reason given";
	saga_log            *l;

	l = saga_engine_log_cmd(inst, fx, SAGA_LOG_FAILED, now, ev->text);
	l->attempt      = ev->attempt;
	l->outcome      = PROTO_OUTCOME_FAILED;
	l->duration_us  = ev->duration_us;
	inst->in_flight = false;
	if (inst->state == SAGA_ST_COMPENSATING) {
		saga_engine_set_error(inst, "compensation of step %s failed: %s",
		    sd->name, why);
		saga_engine_park(inst, fx, now);
		return;
	}
	saga_engine_set_error(inst, "step %s failed: %s", sd->name, why);
	if (saga_engine_pivot_done(inst)) {
		saga_engine_park(inst, fx, now);
	} else {
		saga_engine_compensate(inst, fx, now);
	}
}

/* A retry answer, an error or a timeout of the current attempt. */
static void
saga_engine_on_transient(saga_inst *inst, const saga_ev *ev, saga_fx *fx,
    int32_t outcome)
{
	const saga_step_def *sd   = &inst->def->steps[inst->step];
	bool                 comp = inst->state == SAGA_ST_COMPENSATING;
	const saga_retry    *r    = comp ? &sd->comp_retry : &sd->retry;
	int64_t              now  = ev->now_ms;
	bool                 full = inst->seq >= SAGA_ENGINE_SEQ_LIMIT;
	bool                 exhausted;
	saga_log            *l;
	char                 what[200];

	snprintf(what, sizeof(what), "%s%s%s%s", saga_outcome_name(outcome),
	    ev->text && *ev->text ? ": " : "", ev->text ? ev->text : "",
	    full ? " (the saga's log is full of events: no more retries)"
	         : "");
	proto_utf8_trim(what);
	inst->in_flight = false;
	/* Attempts are counted from where this phase began: an operator's
	 * retry gives the policy a fresh budget (attempt numbers still
	 * grow). */
	exhausted = r->max_attempts != 0 &&
	    inst->attempt - inst->phase_attempt0 >= r->max_attempts;
	if (comp && sd->comp_budget_ms > 0 &&
	    now - inst->phase_start_ms >= sd->comp_budget_ms) {
		exhausted = true;
	}
	if (!comp && inst->step == inst->def->pivot) {
		/* An unresolved pivot is resent until it answers, whatever
		 * max_attempts says; with a compensation the deadline (or a
		 * cancel) may compensate it instead, below. */
		exhausted = full;
	}
	/* Past the deadline before the pivot (or at a pivot with a
	 * compensation): no new attempt, compensate, for the deadline's
	 * sake, as saga_engine_deadline does (it said the pivot "gave up",
	 * which a pivot never does). */
	if (!comp && !saga_engine_pivot_done(inst) &&
	    !saga_engine_bare_pivot(inst) &&
	    saga_engine_past_deadline(inst, now)) {
		l = saga_engine_log_cmd(inst, fx, SAGA_LOG_GAVE_UP, now, what);
		l->attempt     = ev->attempt;
		l->outcome     = outcome;
		l->duration_us = ev->duration_us;
		saga_engine_log(inst, fx, SAGA_LOG_DEADLINE, now, NULL);
		saga_engine_set_error(inst, "deadline passed%s%s", "", NULL);
		saga_engine_compensate(inst, fx, now);
		return;
	}
	if (exhausted || full) {
		l = saga_engine_log_cmd(inst, fx, SAGA_LOG_GAVE_UP, now, what);
		l->attempt     = ev->attempt;
		l->outcome     = outcome;
		l->duration_us = ev->duration_us;
		if (comp) {
			saga_engine_set_error(inst,
			    "compensation of step %s gave up: %s", sd->name,
			    what);
			saga_engine_park(inst, fx, now);
		} else if (saga_engine_pivot_done(inst) ||
		    (full && inst->step == inst->def->pivot &&
		        sd->compensation == NULL)) {
			/* At the pivot only a full log gets here. Without a
			 * compensation it is parked (its outcome unknown, it
			 * can only move forward); with one it is compensated
			 * as at its deadline: a FAILED saga at a pivot with a
			 * compensation reads as parked while compensating
			 * (saga_engine_kind), which it would not be. */
			saga_engine_set_error(inst, "step %s gave up: %s",
			    sd->name, what);
			saga_engine_park(inst, fx, now);
		} else {
			saga_engine_set_error(inst, "step %s gave up: %s",
			    sd->name, what);
			saga_engine_compensate(inst, fx, now);
		}
		return;
	}
	/* The backoff too starts again after an operator's retry. */
	inst->next_at_ms = now + saga_engine_backoff_ms(r,
	                             inst->attempt - inst->phase_attempt0,
	                             ev->rnd);
	l = saga_engine_log_cmd(inst, fx, SAGA_LOG_RETRY, now, what);
	l->attempt     = ev->attempt;
	l->outcome     = outcome;
	l->duration_us = ev->duration_us;
	l->next_at_ms  = inst->next_at_ms;
	if (!comp) {
		/* While compensating, last_error keeps the reason the saga
		 * turned around; the attempts' errors are in the log. */
		snprintf(inst->last_error, sizeof(inst->last_error),
		    "step %s: %s", sd->name, what);
		proto_utf8_trim(inst->last_error);
	}
}

bool
saga_engine_cancel_refused(const saga_inst *inst, char *why, size_t len)
{
	if (inst->state != SAGA_ST_RUNNING) {
		/* Compensating, parked FAILED or final: refused, so that the
		 * client can tell a cancel that was recorded (its note in
		 * the log) from one that changed nothing (a second cancel,
		 * whose answer would otherwise read the same). */
		snprintf(why, len,
		    "saga is %s; only a RUNNING saga can be cancelled",
		    saga_state_name(inst->state));
		return (true);
	}
	if (saga_engine_pivot_done(inst)) {
		snprintf(why, len,
		    "saga passed its pivot step %s and can only complete",
		    inst->def->steps[inst->def->pivot].name);
		return (true);
	}
	if (saga_engine_bare_pivot(inst) && inst->attempt > 0) {
		snprintf(why, len,
		    "pivot step %s is in progress and has no compensation",
		    inst->def->steps[inst->step].name);
		return (true);
	}
	return (false);
}

static void
saga_engine_on_cancel(saga_inst *inst, const saga_ev *ev, saga_fx *fx)
{
	char text[sizeof(((saga_log *) 0)->error)];

	if (saga_engine_cancel_refused(
	        inst, fx->answer_text, sizeof(fx->answer_text))) {
		fx->answer = SAGA_ESTATE;
	} else {
		saga_engine_log(
		    inst, fx, SAGA_LOG_CANCEL, ev->now_ms, ev->text);
		saga_engine_set_error(inst, "cancelled%s%s",
		    ev->text && *ev->text ? ": " : "", ev->text);
		saga_engine_compensate(inst, fx, ev->now_ms);
		return;
	}
	if (!ev->remote) {
		return;
	}
	/* Whoever asked has had "requested" for an answer: the refusal goes
	 * into the log, with the note it refuses. */
	snprintf(text, sizeof(text), "%s%s%s", fx->answer_text,
	    ev->text && *ev->text ? "; the cancel's note: " : "",
	    ev->text ? ev->text : "");
	saga_engine_log(inst, fx, SAGA_LOG_CANCEL_REFUSED, ev->now_ms, text);
}

static bool
saga_engine_require_failed(const saga_inst *inst, saga_fx *fx)
{
	if (inst->state == SAGA_ST_FAILED) {
		return (true);
	}
	fx->answer = SAGA_ESTATE;
	snprintf(fx->answer_text, sizeof(fx->answer_text),
	    "saga is %s; only a FAILED saga can be repaired",
	    saga_state_name(inst->state));
	return (false);
}

static void
saga_engine_on_operator(saga_inst *inst, const saga_ev *ev, saga_fx *fx)
{
	int64_t now = ev->now_ms;
	bool    forward;

	if (!saga_engine_require_failed(inst, fx)) {
		return;
	}
	forward = saga_engine_pivot_done(inst);
	switch (ev->type) {
	case SAGA_EV_RETRY:
		saga_engine_log(inst, fx, SAGA_LOG_OP_RETRY, now, ev->text);
		inst->state = forward ? SAGA_ST_RUNNING : SAGA_ST_COMPENSATING;
		inst->phase_start_ms = now;
		inst->phase_attempt0 = inst->attempt;
		inst->last_error[0]  = '\0';
		saga_engine_send(inst, fx, now);
		break;
	case SAGA_EV_RESOLVE:
		inst->state = SAGA_ST_RESOLVED;
		saga_engine_log(inst, fx, SAGA_LOG_RESOLVED, now, ev->text);
		fx->finished = true;
		break;
	case SAGA_EV_SKIP: {
		const char *name = inst->def->steps[inst->step].name;

		if (ev->step_name == NULL || strcmp(ev->step_name, name) != 0) {
			fx->answer = SAGA_ESTATE;
			snprintf(fx->answer_text, sizeof(fx->answer_text),
			    "the stuck step is %s, not %s", name,
			    ev->step_name ? ev->step_name : "(none)");
			return;
		}
		saga_engine_log_cmd(inst, fx, SAGA_LOG_SKIPPED, now, ev->text);
		inst->last_error[0] = '\0';
		if (!forward) {
			inst->state = SAGA_ST_COMPENSATING;
			saga_engine_next_comp(inst, fx, now, inst->step - 1);
		} else if ((size_t) inst->step + 1 == inst->def->nsteps) {
			saga_engine_finish(inst, fx, now, SAGA_ST_COMPLETED,
			    SAGA_LOG_COMPLETED);
		} else {
			inst->state = SAGA_ST_RUNNING;
			saga_engine_begin(inst, fx, now, inst->step + 1);
		}
		break;
	}
	default:
		break;
	}
}

static void
saga_engine_on_timer(saga_inst *inst, const saga_ev *ev, saga_fx *fx)
{
	int64_t now = ev->now_ms;

	if (saga_state_terminal(inst->state)) {
		fx->ignored = true;
		return;
	}
	if (saga_engine_deadline(inst, fx, now)) {
		return;
	}
	if (!inst->in_flight && inst->next_at_ms != 0 &&
	    now >= inst->next_at_ms) {
		saga_engine_send(inst, fx, now);
		return;
	}
	fx->ignored = true;
}

void
saga_engine_event(saga_inst *inst, const saga_ev *ev, saga_fx *fx)
{
	switch (ev->type) {
	case SAGA_EV_REPLY:
		if (!saga_engine_awaited(inst, ev)) {
			fx->ignored = true;
			return;
		}
		switch (ev->outcome) {
		case PROTO_OUTCOME_OK:
			saga_engine_on_ok(inst, ev, fx);
			return;
		case PROTO_OUTCOME_FAILED:
			saga_engine_on_failed(inst, ev, fx);
			return;
		default:
			break;
		}
		/* retry: only the current attempt, once. */
		if (ev->attempt != inst->attempt || !inst->in_flight) {
			fx->ignored = true;
			return;
		}
		saga_engine_on_transient(inst, ev, fx, PROTO_OUTCOME_RETRY);
		return;
	case SAGA_EV_ERROR:
	case SAGA_EV_TIMEOUT:
		if (!saga_engine_awaited(inst, ev) ||
		    ev->attempt != inst->attempt || !inst->in_flight) {
			fx->ignored = true;
			return;
		}
		saga_engine_on_transient(inst, ev, fx,
		    ev->type == SAGA_EV_TIMEOUT ? SAGA_OUTCOME_TIMEOUT
		                                : SAGA_OUTCOME_ERROR);
		return;
	case SAGA_EV_TIMER:
		saga_engine_on_timer(inst, ev, fx);
		return;
	case SAGA_EV_CANCEL:
		saga_engine_on_cancel(inst, ev, fx);
		return;
	case SAGA_EV_RETRY:
	case SAGA_EV_RESOLVE:
	case SAGA_EV_SKIP:
		saga_engine_on_operator(inst, ev, fx);
		return;
	}
}

int64_t
saga_engine_wake_at(const saga_inst *inst)
{
	int64_t at = 0;

	if (saga_state_terminal(inst->state)) {
		return (0);
	}
	if (!inst->in_flight && inst->next_at_ms != 0) {
		at = inst->next_at_ms;
	}
	if (inst->state == SAGA_ST_RUNNING && inst->deadline_ms != 0 &&
	    !saga_engine_pivot_done(inst) &&
	    !(inst->step == inst->def->pivot &&
	        (inst->in_flight || saga_engine_bare_pivot(inst)))) {
		if (at == 0 || inst->deadline_ms < at) {
			at = inst->deadline_ms;
		}
	}
	return (at);
}
