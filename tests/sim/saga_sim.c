/* SPDX-License-Identifier: MIT */
/*
 * saga_sim: a deterministic simulation of the whole protocol.
 *
 * One thread, one seeded random generator, one clock. Many sagas run
 * through the REAL engine (saga_engine.c) and the REAL barrier decisions
 * (participants/barrier_decide.c) against a simulated network that drops,
 * duplicates, delays and reorders commands and replies, while the
 * coordinator and the participants crash and restart at random points.
 *
 * The coordinator model follows sagad: a transition changes memory and is
 * staged; staged transitions are committed as one batch, at most one batch
 * in flight; commands leave only after their batch committed. A crash
 * loses memory, the staged transitions and possibly the batch in flight
 * (it may or may not have committed: both happen); a restart rebuilds every
 * unfinished saga only from what was committed and resends the last
 * committed attempt. A commit can also fail outright, or succeed without
 * the coordinator hearing it: either way the coordinator reloads from the
 * log, as sagad does on a database outage. Replies addressed to an old
 * incarnation still arrive (late, duplicated, reordered across restarts).
 *
 * A participant keeps its barrier rows and its business effects in a
 * "database" that survives its crashes; a command runs as one atomic local
 * transaction, decided by barrier_decide/barrier_settle. A crash can happen
 * before the commit (nothing happened) or after it and before the reply
 * (the effect happened, the reply is lost).
 *
 * After the fault period, faults stop and the system settles; then the
 * checker asserts, over the participants' databases and the committed log:
 *  - every saga is terminal: COMPLETED or COMPENSATED (FAILED only where a
 *    permanent compensation failure was injected);
 *  - every action and compensation took effect at most once;
 *  - COMPLETED: every step took effect once, nothing was compensated;
 *  - COMPENSATED: every step's net effect is zero (a step without
 *    compensation never took effect);
 *  - the committed log of every saga is gap-free (checked at each commit).
 * On a violation it prints the seed that reproduces it.
 *
 * Usage: saga_sim [--seeds N] [--first SEED] [--sagas N] [--verbose]
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "barrier_decide.h"
#include "proto_msg.h"
#include "saga_engine.h"

#define SIM_MAX_STEPS 6
#define SIM_NPART 3

/* ------------------------------------------------------------------ */
/* Random numbers: splitmix64, seeded per run. */

static uint64_t sim_rng;

static uint64_t
sim_next(void)
{
	uint64_t z = (sim_rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

static uint32_t
sim_u32(void)
{
	return ((uint32_t) (sim_next() >> 32));
}

/* Uniform in [0, n). */
static int64_t
sim_below(int64_t n)
{
	return (n <= 0 ? 0 : (int64_t) (sim_next() % (uint64_t) n));
}

/* True with probability p. */
static bool
sim_chance(double p)
{
	return ((double) (sim_next() >> 11) / 9007199254740992.0 < p);
}

/* ------------------------------------------------------------------ */
/* Events. */

typedef enum sim_ev_type {
	EV_START,        /* a client starts saga i (retried until durable) */
	EV_CANCEL,       /* a client cancels saga i */
	EV_CMD,          /* a command reaches a participant */
	EV_REPLY,        /* a reply reaches the coordinator */
	EV_ATTEMPT_TO,   /* an attempt's timeout (dispatch) */
	EV_WAKE,         /* an engine timer */
	EV_COMMIT,       /* the batch in flight finishes */
	EV_COORD_CRASH,
	EV_COORD_UP,
	EV_PART_CRASH,
	EV_PART_UP,
	EV_FAULTS_END,
} sim_ev_type;

typedef struct sim_ev {
	int64_t     at;
	uint64_t    order;
	sim_ev_type type;
	int         saga;
	int32_t     step;
	uint32_t    kind;
	uint32_t    attempt;
	uint32_t    outcome; /* EV_REPLY */
	uint64_t    gen;     /* incarnation or timer generation */
	int         part;
} sim_ev;

static sim_ev  *sim_heap;
static size_t   sim_nheap, sim_capheap;
static uint64_t sim_order;

static bool
sim_ev_before(const sim_ev *a, const sim_ev *b)
{
	return (a->at < b->at || (a->at == b->at && a->order < b->order));
}

static void
sim_push(sim_ev ev)
{
	size_t i;

	if (sim_nheap == sim_capheap) {
		sim_capheap = sim_capheap ? sim_capheap * 2 : 1024;
		sim_heap    = realloc(sim_heap, sim_capheap * sizeof(sim_ev));
		if (sim_heap == NULL) {
			abort();
		}
	}
	ev.order = sim_order++;
	i        = sim_nheap++;
	while (i > 0 && sim_ev_before(&ev, &sim_heap[(i - 1) / 2])) {
		sim_heap[i] = sim_heap[(i - 1) / 2];
		i           = (i - 1) / 2;
	}
	sim_heap[i] = ev;
}

static sim_ev
sim_pop(void)
{
	sim_ev top = sim_heap[0];
	sim_ev last = sim_heap[--sim_nheap];
	size_t i    = 0;

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const sim_ev *best = &last;

		if (l < sim_nheap && sim_ev_before(&sim_heap[l], best)) {
			m    = l;
			best = &sim_heap[l];
		}
		if (r < sim_nheap && sim_ev_before(&sim_heap[r], best)) {
			m = r;
		}
		if (m == i) {
			break;
		}
		sim_heap[i] = sim_heap[m];
		i           = m;
	}
	if (sim_nheap > 0) {
		sim_heap[i] = last;
	}
	return (top);
}

/* ------------------------------------------------------------------ */
/* The world. */

typedef struct sim_cfg {
	int    nsagas;
	int64_t fault_until;  /* faults happen before this time */
	double p_drop;        /* a message is lost */
	double p_dup;         /* a message is delivered twice */
	double p_coord_crash; /* per ms of fault time */
	double p_part_crash;
	double p_commit_fail;    /* a commit fails (outage, reload) */
	double p_commit_unknown; /* commits, but the coordinator thinks not */
	bool   verbose;
} sim_cfg;

/* What a participant's database holds for one (saga, step, kind). */
typedef struct sim_row {
	barrier_found state; /* INSERTED means no row */
	int           effects; /* business effects committed */
} sim_row;

typedef struct sim_saga {
	/* The script: what the participants will answer. */
	int      fail_step;      /* business failure of this action, or -1 */
	int      perm_comp_fail; /* compensation that always fails, or -1 */
	double   p_transient;    /* an attempt answers retry */
	bool     cancel;         /* a client cancels it at some point */
	/* The coordinator's memory. */
	bool      live;
	saga_inst inst;
	proto_raw outputs[SIM_MAX_STEPS];
	uint64_t  timer_gen;
	int       pending; /* staged or in-flight transitions */
	/* The committed log. */
	bool      durable;
	saga_inst dur;
	uint32_t  dur_seq;
	/* Client. */
	bool      started; /* a START was accepted at least once */
	/* The participants' databases. */
	sim_row   rows[SIM_MAX_STEPS][2];
} sim_saga;

/* A staged or in-flight transition. */
typedef struct sim_entry {
	int       saga;
	saga_inst snap;
	uint32_t  first_seq; /* log rows first_seq..last_seq */
	uint32_t  last_seq;
	bool      send;
	int32_t   step;
	uint32_t  kind;
	uint32_t  attempt;
} sim_entry;

typedef struct sim_batch {
	sim_entry *v;
	size_t     n, cap;
} sim_batch;

static sim_cfg    sim_c;
static saga_def  *sim_defs[3];
static sim_saga  *sim_sagas;
static int64_t    sim_now;
static bool       sim_coord_up;
static uint64_t   sim_coord_gen;
static sim_batch  sim_staged, sim_flight;
static bool       sim_part_up[SIM_NPART];
static bool       sim_faults;
static int        sim_violations;
static uint64_t   sim_seed;
static uint64_t   sim_stats_crashes, sim_stats_part_crashes, sim_stats_drops,
    sim_stats_dups, sim_stats_msgs, sim_stats_reloads;

static const uint8_t sim_out_byte = 0x80; /* {} */

static void
sim_violation(int saga, const char *fmt, const char *detail)
{
	fprintf(stderr, "VIOLATION seed=%" PRIu64 " saga=%d: ", sim_seed,
	    saga);
	fprintf(stderr, fmt, detail);
	fprintf(stderr, "\n  reproduce: saga_sim --first %" PRIu64
	                " --seeds 1 --sagas %d --verbose\n",
	    sim_seed, sim_c.nsagas);
	sim_violations++;
}

/* ------------------------------------------------------------------ */
/* Definitions: three shapes. */

static char *
sim_strdup(const char *fmt, int i)
{
	char buf[32];

	snprintf(buf, sizeof(buf), fmt, i);
	return (strdup(buf));
}

/* spec letters: c compensatable, P pivot with compensation, p bare pivot,
 * r retriable. */
static saga_def *
sim_def(const char *name, const char *spec, int64_t deadline_ms)
{
	saga_def *d = calloc(1, sizeof(*d));
	size_t    n = strlen(spec);

	d->name        = strdup(name);
	d->nsteps      = n;
	d->steps       = calloc(n, sizeof(saga_step_def));
	d->pivot       = -1;
	d->deadline_ms = deadline_ms;
	for (size_t i = 0; i < n; i++) {
		saga_step_def *s = &d->steps[i];

		s->name        = sim_strdup("s%d", (int) i);
		s->participant = sim_strdup("p%d", (int) (i % SIM_NPART));
		s->action      = sim_strdup("a%d", (int) i);
		s->timeout_ms  = 50;
		s->retry       = (saga_retry) { 4, 10, 2.0, 80, 0.3 };
		s->comp_retry  = (saga_retry) { 0, 10, 2.0, 100, 0.3 };
		s->comp_budget_ms = 0;
		switch (spec[i]) {
		case 'c':
			s->kind         = SAGA_STEP_COMPENSATABLE;
			s->compensation = sim_strdup("c%d", (int) i);
			break;
		case 'P':
			s->kind         = SAGA_STEP_PIVOT;
			s->compensation = sim_strdup("c%d", (int) i);
			d->pivot        = (int) i;
			break;
		case 'p':
			s->kind  = SAGA_STEP_PIVOT;
			s->retry = (saga_retry) { 0, 10, 2.0, 80, 0.3 };
			d->pivot = (int) i;
			break;
		case 'r':
			s->kind  = SAGA_STEP_RETRIABLE;
			s->retry = (saga_retry) { 0, 10, 2.0, 100, 0.3 };
			break;
		}
	}
	return (d);
}

/* ------------------------------------------------------------------ */
/* Network. */

static void
sim_send_msg(sim_ev ev, int64_t base_delay)
{
	int copies = 1;

	sim_stats_msgs++;
	if (sim_faults && sim_chance(sim_c.p_drop)) {
		sim_stats_drops++;
		return;
	}
	if (sim_faults && sim_chance(sim_c.p_dup)) {
		sim_stats_dups++;
		copies = 2;
	}
	for (int i = 0; i < copies; i++) {
		/* Random delays reorder messages. */
		ev.at = sim_now + base_delay +
		    sim_below(sim_faults ? 40 : 5);
		sim_push(ev);
	}
}

/* ------------------------------------------------------------------ */
/* Coordinator. */

static void sim_apply(int i, const saga_fx *fx);

static void
sim_arm(int i)
{
	sim_saga *s  = &sim_sagas[i];
	int64_t   at = saga_engine_wake_at(&s->inst);

	s->timer_gen++;
	if (at != 0) {
		sim_ev ev = { .type = EV_WAKE, .saga = i, .gen = s->timer_gen };

		ev.at = at < sim_now ? sim_now : at;
		sim_push(ev);
	}
}

static void
sim_feed(int i, saga_ev *ev)
{
	saga_fx fx;

	memset(&fx, 0, sizeof(fx));
	ev->now_ms = sim_now;
	ev->rnd    = sim_u32();
	saga_engine_event(&sim_sagas[i].inst, ev, &fx);
	sim_apply(i, &fx);
}

static void
sim_stage(sim_batch *b, sim_entry e)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->v   = realloc(b->v, b->cap * sizeof(sim_entry));
		if (b->v == NULL) {
			abort();
		}
	}
	b->v[b->n++] = e;
}

static void
sim_apply(int i, const saga_fx *fx)
{
	sim_saga *s = &sim_sagas[i];
	sim_entry e;

	if (fx->output_taken) {
		/* The engine keeps the pointer it was given. */
	}
	if (fx->changed) {
		memset(&e, 0, sizeof(e));
		e.saga      = i;
		e.snap      = s->inst;
		e.first_seq = fx->nlogs ? fx->logs[0].seq : 0;
		e.last_seq  = fx->nlogs ? fx->logs[fx->nlogs - 1].seq : 0;
		e.send      = fx->send;
		e.step      = s->inst.step;
		e.kind      = saga_engine_kind(&s->inst);
		e.attempt   = s->inst.attempt;
		for (size_t k = 1; k < fx->nlogs; k++) {
			if (fx->logs[k].seq != fx->logs[k - 1].seq + 1) {
				sim_violation(i, "%s",
				    "log rows of one transition not "
				    "consecutive");
			}
		}
		sim_stage(&sim_staged, e);
		s->pending++;
	}
	sim_arm(i);
}

static void
sim_dispatch(int i, int32_t step, uint32_t kind, uint32_t attempt)
{
	sim_saga *s  = &sim_sagas[i];
	sim_ev    ev = { .type = EV_CMD, .saga = i, .step = step,
		   .kind = kind, .attempt = attempt };
	sim_ev    to = ev;

	ev.part = step % SIM_NPART;
	sim_send_msg(ev, 1);
	/* The attempt's timeout, as dispatch arms it. */
	to.type = EV_ATTEMPT_TO;
	to.gen  = sim_coord_gen;
	to.at   = sim_now + s->inst.def->steps[step].timeout_ms;
	sim_push(to);
}

/* Flushes the staged batch when none is in flight. */
static void
sim_maybe_flush(void)
{
	sim_batch tmp;
	sim_ev    ev = { .type = EV_COMMIT };

	if (!sim_coord_up || sim_flight.n > 0 || sim_staged.n == 0) {
		return;
	}
	tmp        = sim_flight;
	sim_flight = sim_staged;
	sim_staged = tmp;
	sim_staged.n = 0;
	ev.gen       = sim_coord_gen;
	ev.at        = sim_now + 1 + sim_below(4);
	sim_push(ev);
}

/* Makes the in-flight batch durable, checking the log stays gap-free. */
static void
sim_make_durable(void)
{
	for (size_t k = 0; k < sim_flight.n; k++) {
		sim_entry *e = &sim_flight.v[k];
		sim_saga  *s = &sim_sagas[e->saga];

		if (e->first_seq != 0) {
			if (e->first_seq != s->dur_seq + 1) {
				char d[96];

				snprintf(d, sizeof(d),
				    "log gap: committed %u, next row %u",
				    s->dur_seq, e->first_seq);
				sim_violation(e->saga, "%s", d);
			}
			s->dur_seq = e->last_seq;
		}
		s->dur     = e->snap;
		s->durable = true;
	}
}

/* Forgets everything in memory (a crash or an outage). */
static void
sim_forget(void)
{
	for (int i = 0; i < sim_c.nsagas; i++) {
		sim_sagas[i].live    = false;
		sim_sagas[i].pending = 0;
		sim_sagas[i].timer_gen++;
	}
	sim_staged.n = 0;
	sim_flight.n = 0;
	sim_coord_gen++;
}

/* Rebuilds memory from the committed log and resumes. */
static void
sim_reload(void)
{
	sim_stats_reloads++;
	for (int i = 0; i < sim_c.nsagas; i++) {
		sim_saga *s = &sim_sagas[i];

		if (!s->durable) {
			continue;
		}
		s->inst         = s->dur;
		s->inst.outputs = s->outputs;
		s->live         = true;
		if (saga_state_terminal(s->inst.state)) {
			continue;
		}
		if (s->inst.in_flight) {
			sim_dispatch(i, s->inst.step, saga_engine_kind(&s->inst),
			    s->inst.attempt);
		}
		sim_arm(i);
	}
}

static void
sim_commit(const sim_ev *ev)
{
	if (ev->gen != sim_coord_gen || !sim_coord_up) {
		return; /* the batch died with its incarnation */
	}
	if (sim_faults && sim_chance(sim_c.p_commit_fail)) {
		/* The COMMIT failed: nothing of the batch is durable. */
		sim_forget();
		sim_reload();
		return;
	}
	sim_make_durable();
	if (sim_faults && sim_chance(sim_c.p_commit_unknown)) {
		/* Committed, but the answer was lost: reload. */
		sim_forget();
		sim_reload();
		return;
	}
	for (size_t k = 0; k < sim_flight.n; k++) {
		sim_entry *e = &sim_flight.v[k];
		sim_saga  *s = &sim_sagas[e->saga];

		s->pending--;
		if (e->send) {
			sim_dispatch(e->saga, e->step, e->kind, e->attempt);
		}
	}
	sim_flight.n = 0;
}

static void
sim_start(const sim_ev *ev)
{
	sim_saga *s = &sim_sagas[ev->saga];
	saga_fx   fx;

	if (s->durable) {
		return; /* the idempotency key finds it */
	}
	if (!sim_coord_up || s->live) {
		/* Down, or started but not committed yet: the client asks
		 * again later (the same key). */
		sim_ev again = *ev;

		again.at = sim_now + 20 + sim_below(50);
		sim_push(again);
		return;
	}
	memset(&s->inst, 0, sizeof(s->inst));
	s->inst.def        = sim_defs[ev->saga % 3];
	s->inst.outputs    = s->outputs;
	s->inst.input      = (proto_raw) { &sim_out_byte, 1 };
	s->inst.created_ms = sim_now;
	s->inst.deadline_ms =
	    s->inst.def->deadline_ms ? sim_now + s->inst.def->deadline_ms : 0;
	memset(s->outputs, 0, sizeof(s->outputs));
	s->live    = true;
	s->started = true;
	memset(&fx, 0, sizeof(fx));
	saga_engine_start(&s->inst, sim_now, &fx);
	sim_apply(ev->saga, &fx);
	/* The client tries again later in case this start never commits. */
	{
		sim_ev again = *ev;

		again.at = sim_now + 200 + sim_below(200);
		sim_push(again);
	}
}

static void
sim_reply(const sim_ev *ev)
{
	sim_saga *s = &sim_sagas[ev->saga];
	saga_ev   e;

	if (!sim_coord_up || !s->live) {
		return;
	}
	memset(&e, 0, sizeof(e));
	e.type    = SAGA_EV_REPLY;
	e.step    = ev->step;
	e.kind    = ev->kind;
	e.attempt = ev->attempt;
	e.outcome = ev->outcome;
	e.output  = (proto_raw) { &sim_out_byte, 1 };
	e.text    = ev->outcome == PROTO_OUTCOME_OK ? NULL : "scripted";
	sim_feed(ev->saga, &e);
}

static void
sim_attempt_timeout(const sim_ev *ev)
{
	sim_saga *s = &sim_sagas[ev->saga];
	saga_ev   e;

	if (!sim_coord_up || !s->live || ev->gen != sim_coord_gen) {
		return;
	}
	memset(&e, 0, sizeof(e));
	e.type    = SAGA_EV_TIMEOUT;
	e.step    = ev->step;
	e.kind    = ev->kind;
	e.attempt = ev->attempt;
	sim_feed(ev->saga, &e);
}

static void
sim_wake(const sim_ev *ev)
{
	sim_saga *s = &sim_sagas[ev->saga];
	saga_ev   e;

	if (!sim_coord_up || !s->live || ev->gen != s->timer_gen) {
		return;
	}
	memset(&e, 0, sizeof(e));
	e.type = SAGA_EV_TIMER;
	sim_feed(ev->saga, &e);
}

static void
sim_cancel(const sim_ev *ev)
{
	sim_saga *s = &sim_sagas[ev->saga];
	saga_ev   e;

	if (!sim_coord_up || !s->live) {
		return;
	}
	memset(&e, 0, sizeof(e));
	e.type = SAGA_EV_CANCEL;
	e.text = "client";
	sim_feed(ev->saga, &e);
}

/* ------------------------------------------------------------------ */
/* Participants. */

/* What the script makes a handler answer. */
static int
sim_handler(const sim_saga *s, int32_t step, uint32_t kind)
{
	if (kind == BARRIER_ACTION && step == s->fail_step) {
		return (BARRIER_OUTCOME_FAILED);
	}
	if (kind == BARRIER_COMPENSATION && step == s->perm_comp_fail) {
		return (BARRIER_OUTCOME_FAILED);
	}
	if (sim_chance(s->p_transient)) {
		return (BARRIER_OUTCOME_RETRY);
	}
	return (BARRIER_OUTCOME_OK);
}

static void
sim_command(const sim_ev *ev)
{
	sim_saga        *s = &sim_sagas[ev->saga];
	sim_row         *act = &s->rows[ev->step][BARRIER_ACTION];
	sim_row         *comp = &s->rows[ev->step][BARRIER_COMPENSATION];
	sim_row          act_new = *act, comp_new = *comp;
	barrier_found    fa, fc = BARRIER_INSERTED;
	barrier_decision d;
	uint32_t         outcome;
	bool             crash_before = false, crash_after = false;

	if (!sim_part_up[ev->part]) {
		return; /* nobody listens: the attempt times out */
	}
	if (sim_faults && sim_chance(0.01)) {
		if (sim_chance(0.5)) {
			crash_before = true;
		} else {
			crash_after = true;
		}
	}
	/* The local transaction: inserts first, decide from what they
	 * found. */
	fa = act->state;
	if (ev->kind == BARRIER_ACTION) {
		if (fa == BARRIER_INSERTED) {
			act_new.state = BARRIER_FOUND_OK; /* provisional */
		}
	} else {
		if (fa == BARRIER_INSERTED) {
			act_new.state = BARRIER_FOUND_ABORTED;
		}
		fc = comp->state;
		if (fc == BARRIER_INSERTED) {
			comp_new.state = BARRIER_FOUND_OK;
		}
	}
	/* The simulator purges nothing: no saga is old. */
	d = barrier_decide(ev->kind, fa, fc, false);
	switch (d) {
	case BARRIER_RUN: {
		int            h  = sim_handler(s, ev->step, ev->kind);
		barrier_commit bc = barrier_settle(ev->kind, h, false);

		switch (bc) {
		case BARRIER_COMMIT_OK:
			if (ev->kind == BARRIER_ACTION) {
				act_new.effects++;
			} else {
				comp_new.effects++;
			}
			outcome = PROTO_OUTCOME_OK;
			break;
		case BARRIER_COMMIT_FAILED:
			act_new.state = BARRIER_FOUND_FAILED;
			outcome       = PROTO_OUTCOME_FAILED;
			break;
		case BARRIER_ROLLBACK_FAILED:
			act_new  = *act;
			comp_new = *comp;
			outcome  = PROTO_OUTCOME_FAILED;
			break;
		default:
			act_new  = *act;
			comp_new = *comp;
			outcome  = PROTO_OUTCOME_RETRY;
			break;
		}
		break;
	}
	case BARRIER_REPLAY:
		outcome = ev->kind == BARRIER_ACTION
		    ? (fa == BARRIER_FOUND_OK ? PROTO_OUTCOME_OK
		                              : PROTO_OUTCOME_FAILED)
		    : PROTO_OUTCOME_OK;
		break;
	case BARRIER_REFUSE:
		outcome = PROTO_OUTCOME_FAILED;
		break;
	case BARRIER_NULL:
		outcome = PROTO_OUTCOME_OK;
		break;
	default:
		act_new  = *act;
		comp_new = *comp;
		outcome  = PROTO_OUTCOME_RETRY;
		break;
	}
	if (crash_before) {
		/* Killed before the COMMIT: nothing happened. */
		sim_part_up[ev->part] = false;
		sim_stats_part_crashes++;
		sim_push((sim_ev) { .at = sim_now + 20 + sim_below(200),
		    .type = EV_PART_UP, .part = ev->part });
		return;
	}
	*act  = act_new;
	*comp = comp_new;
	if (act->effects > 1 || comp->effects > 1) {
		sim_violation(ev->saga, "%s", "an effect happened twice");
	}
	if (crash_after) {
		/* Killed after the COMMIT, before the reply. */
		sim_part_up[ev->part] = false;
		sim_stats_part_crashes++;
		sim_push((sim_ev) { .at = sim_now + 20 + sim_below(200),
		    .type = EV_PART_UP, .part = ev->part });
		return;
	}
	{
		sim_ev r = *ev;

		r.type    = EV_REPLY;
		r.outcome = outcome;
		sim_send_msg(r, 1);
	}
}

/* ------------------------------------------------------------------ */
/* Checker. */

static void
sim_check(void)
{
	for (int i = 0; i < sim_c.nsagas; i++) {
		sim_saga       *s = &sim_sagas[i];
		const saga_def *def;
		char            d[160];

		if (!s->durable) {
			sim_violation(i, "%s", "never started");
			continue;
		}
		def = s->dur.def;
		switch (s->dur.state) {
		case SAGA_ST_COMPLETED:
			for (size_t k = 0; k < def->nsteps; k++) {
				if (s->rows[k][0].effects != 1 ||
				    s->rows[k][1].effects != 0) {
					snprintf(d, sizeof(d),
					    "COMPLETED but step %zu has %d "
					    "effects, %d compensations",
					    k, s->rows[k][0].effects,
					    s->rows[k][1].effects);
					sim_violation(i, "%s", d);
				}
			}
			if (s->fail_step >= 0) {
				sim_violation(i, "%s",
				    "COMPLETED although a step always fails");
			}
			break;
		case SAGA_ST_COMPENSATED:
			for (size_t k = 0; k < def->nsteps; k++) {
				int net = s->rows[k][0].effects -
				    s->rows[k][1].effects;

				if (net != 0) {
					snprintf(d, sizeof(d),
					    "COMPENSATED but step %zu has net "
					    "effect %d",
					    k, net);
					sim_violation(i, "%s", d);
				}
			}
			break;
		case SAGA_ST_FAILED:
			if (s->perm_comp_fail < 0) {
				snprintf(d, sizeof(d), "FAILED (%.100s) without an "
				                       "injected permanent failure",
				    s->dur.last_error);
				sim_violation(i, "%s", d);
			}
			break;
		default:
			snprintf(d, sizeof(d), "not terminal: %s at step %d",
			    saga_state_name(s->dur.state), s->dur.step);
			sim_violation(i, "%s", d);
		}
	}
}

/* ------------------------------------------------------------------ */
/* One run. */

static int
sim_run(uint64_t seed, uint64_t *nsagas_done)
{
	int64_t end = 0;

	sim_seed       = seed;
	sim_rng        = seed * 0x2545f4914f6cdd1dULL + 1;
	sim_now        = 0;
	sim_nheap      = 0;
	sim_order      = 0;
	sim_violations = 0;
	sim_coord_up   = true;
	sim_coord_gen  = 1;
	sim_faults     = true;
	sim_staged.n = sim_flight.n = 0;
	for (int p = 0; p < SIM_NPART; p++) {
		sim_part_up[p] = true;
	}
	memset(sim_sagas, 0, (size_t) sim_c.nsagas * sizeof(sim_saga));
	for (int i = 0; i < sim_c.nsagas; i++) {
		sim_saga       *s   = &sim_sagas[i];
		const saga_def *def = sim_defs[i % 3];
		int             last_comp = def->pivot >= 0 ? def->pivot
		                                           : (int) def->nsteps - 1;

		s->fail_step      = -1;
		s->perm_comp_fail = -1;
		if (sim_chance(0.3)) {
			/* A business failure at or before the pivot. */
			s->fail_step = (int) sim_below(last_comp + 1);
		}
		if (s->fail_step > 0 && sim_chance(0.05)) {
			/* An earlier compensation that can never succeed. */
			int k = (int) sim_below(s->fail_step);

			if (def->steps[k].compensation != NULL) {
				s->perm_comp_fail = k;
			}
		}
		s->p_transient = sim_chance(0.5) ? 0.0 : 0.2;
		s->cancel      = sim_chance(0.1);
		sim_push((sim_ev) { .at = sim_below(sim_c.fault_until),
		    .type = EV_START, .saga = i });
		if (s->cancel) {
			sim_push((sim_ev) {
			    .at = sim_below(sim_c.fault_until + 500),
			    .type = EV_CANCEL, .saga = i });
		}
	}
	/* Crashes of the coordinator and the participants. */
	for (int64_t t = 0; t < sim_c.fault_until; t += 10) {
		if (sim_chance(sim_c.p_coord_crash * 10)) {
			sim_push((sim_ev) { .at = t + sim_below(10),
			    .type = EV_COORD_CRASH });
		}
		if (sim_chance(sim_c.p_part_crash * 10)) {
			sim_push((sim_ev) { .at = t + sim_below(10),
			    .type = EV_PART_CRASH,
			    .part = (int) sim_below(SIM_NPART) });
		}
	}
	sim_push((sim_ev) { .at = sim_c.fault_until, .type = EV_FAULTS_END });
	while (sim_nheap > 0) {
		sim_ev ev = sim_pop();

		sim_now = ev.at;
		if (!sim_faults && end == 0) {
			end = sim_now + 600000;
		}
		if (end != 0 && sim_now > end) {
			break; /* checked below: not terminal */
		}
		switch (ev.type) {
		case EV_START:
			sim_start(&ev);
			break;
		case EV_CANCEL:
			sim_cancel(&ev);
			break;
		case EV_CMD:
			sim_command(&ev);
			break;
		case EV_REPLY:
			sim_reply(&ev);
			break;
		case EV_ATTEMPT_TO:
			sim_attempt_timeout(&ev);
			break;
		case EV_WAKE:
			sim_wake(&ev);
			break;
		case EV_COMMIT:
			sim_commit(&ev);
			break;
		case EV_COORD_CRASH:
			if (!sim_faults || !sim_coord_up) {
				break;
			}
			sim_stats_crashes++;
			/* kill -9 at any instant: the batch in flight may or
			 * may not have committed. */
			if (sim_flight.n > 0 && sim_chance(0.5)) {
				sim_make_durable();
			}
			sim_forget();
			sim_coord_up = false;
			sim_push((sim_ev) { .at = sim_now + 10 + sim_below(100),
			    .type = EV_COORD_UP });
			break;
		case EV_COORD_UP:
			if (!sim_coord_up) {
				sim_coord_up = true;
				sim_reload();
			}
			break;
		case EV_PART_CRASH:
			if (sim_faults && sim_part_up[ev.part]) {
				sim_part_up[ev.part] = false;
				sim_stats_part_crashes++;
				sim_push((sim_ev) {
				    .at = sim_now + 10 + sim_below(200),
				    .type = EV_PART_UP, .part = ev.part });
			}
			break;
		case EV_PART_UP:
			sim_part_up[ev.part] = true;
			break;
		case EV_FAULTS_END:
			sim_faults = false;
			if (!sim_coord_up) {
				sim_coord_up = true;
				sim_reload();
			}
			for (int p = 0; p < SIM_NPART; p++) {
				sim_part_up[p] = true;
			}
			break;
		}
		sim_maybe_flush();
	}
	sim_check();
	*nsagas_done += (uint64_t) sim_c.nsagas;
	if (sim_c.verbose) {
		printf("seed %" PRIu64 ": t=%" PRId64 " ms, violations %d\n",
		    seed, sim_now, sim_violations);
	}
	return (sim_violations);
}

static void
sim_usage(FILE *f)
{
	fprintf(f,
	    "Usage: saga_sim [--seeds N] [--first SEED] [--sagas N] "
	    "[--verbose]\n"
	    "Runs N seeded simulations (default 200) of SAGAS sagas each\n"
	    "(default 100) with drops, duplicates, reordering and crashes,\n"
	    "and checks the invariants after each. Exit status 1 on any\n"
	    "violation, with the seed that reproduces it.\n");
}

int
main(int argc, char **argv)
{
	uint64_t first = 1, nseeds = 200, done = 0;
	int      bad   = 0;

	sim_c.nsagas           = 100;
	sim_c.fault_until      = 3000;
	sim_c.p_drop           = 0.05;
	sim_c.p_dup            = 0.05;
	sim_c.p_coord_crash    = 0.002;
	sim_c.p_part_crash     = 0.002;
	sim_c.p_commit_fail    = 0.01;
	sim_c.p_commit_unknown = 0.01;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
			nseeds = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--first") == 0 && i + 1 < argc) {
			first = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--sagas") == 0 && i + 1 < argc) {
			sim_c.nsagas = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--verbose") == 0) {
			sim_c.verbose = true;
		} else if (strcmp(argv[i], "--help") == 0) {
			sim_usage(stdout);
			return (0);
		} else {
			sim_usage(stderr);
			return (2);
		}
	}
	if (sim_c.nsagas <= 0) {
		sim_usage(stderr);
		return (2);
	}
	sim_defs[0] = sim_def("cccPr", "cccPr", 0);
	sim_defs[1] = sim_def("ccpr", "ccpr", 0);
	sim_defs[2] = sim_def("ccc", "ccc", 1500);
	sim_sagas   = calloc((size_t) sim_c.nsagas, sizeof(sim_saga));
	for (uint64_t s = first; s < first + nseeds; s++) {
		if (sim_run(s, &done) != 0) {
			bad++;
		}
	}
	printf("saga_sim: %" PRIu64 " seeds, %" PRIu64
	       " sagas, %" PRIu64 " coordinator crashes, %" PRIu64
	       " participant crashes, %" PRIu64 " reloads, %" PRIu64
	       " messages (%" PRIu64 " dropped, %" PRIu64
	       " duplicated), seeds with violations: %d\n",
	    nseeds, done, sim_stats_crashes, sim_stats_part_crashes,
	    sim_stats_reloads, sim_stats_msgs, sim_stats_drops,
	    sim_stats_dups, bad);
	for (int i = 0; i < 3; i++) {
		saga_def_free(sim_defs[i]);
	}
	free(sim_sagas);
	free(sim_heap);
	free(sim_staged.v);
	free(sim_flight.v);
	return (bad == 0 ? 0 : 1);
}
