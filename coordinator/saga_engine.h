/* SPDX-License-Identifier: MIT */
/*
 * saga_engine: the saga state machine as pure code.
 *
 * (definition, instance, event) -> (new instance, effects). No I/O, no
 * clock, no sockets, no allocation of its own: every event carries the time
 * and a random number (for jitter), and the effects (events to append to
 * the log, the command to send, the client answer, the time to wake up)
 * are returned as data in a saga_fx. The shell (sagad) persists the new
 * instance and the events, and only after the COMMIT releases the command
 * and the answer (write-ahead, DESIGN.md invariant 1). The simulator of the
 * chaos suite drives the same functions.
 *
 * Semantics (docs/sagas.md has the user's view):
 *  - Steps run in order. ok -> next step; failed -> compensate; retry, an
 *    error reply, a send failure or a timeout -> retry with backoff up to
 *    max_attempts, then compensate.
 *  - A reply counts only if its (step, kind) is the one awaited; ok and
 *    failed count from any attempt, retry/error/timeout only from the
 *    current attempt. Attempt numbers only grow.
 *  - Compensation from step k covers every step up to the highest one that
 *    had an attempt sent (max_sent), in reverse order, skipping steps
 *    without a compensation. A compensation that fails, or exceeds its
 *    policy (attempts or time budget), parks the saga FAILED.
 *  - Pivot: once it succeeded the saga only moves forward; retriable steps
 *    are retried and never compensated; a business failure or a finite
 *    max_attempts exhausted parks FAILED. The pivot itself ignores
 *    max_attempts, with or without a compensation: its outcome must be
 *    resolved, so it is resent until it answers, and only the deadline
 *    or a cancel compensates it (docs/sagas.md).
 *  - Deadline: past it, a saga before its pivot starts no new attempt and
 *    compensates; an in-flight pivot attempt is awaited first.
 *  - Cancel: before the pivot, compensate; after it, or while a pivot
 *    without compensation is in progress, refused; compensating, FAILED or
 *    final, refused too (ESTATE), nothing changed. A cancel asked through
 *    the database (another instance's client, who has had its answer) that
 *    is refused leaves a cancel_refused row in the log, with the reason.
 */
#ifndef COORDINATOR_SAGA_ENGINE_H
#define COORDINATOR_SAGA_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto_val.h"
#include "saga_def.h"
#include "saga_id.h"

/* Saga states. The names (saga_state_name) are stored in the log. */
typedef enum saga_state {
	SAGA_ST_RUNNING      = 0,
	SAGA_ST_COMPENSATING = 1,
	SAGA_ST_COMPLETED    = 2,
	SAGA_ST_COMPENSATED  = 3,
	SAGA_ST_FAILED       = 4,
	SAGA_ST_RESOLVED     = 5,
} saga_state;

/* saga_state_name returns "RUNNING", ...; saga_state_parse is the inverse
 * (returns 0 or SAGA_EINVAL). */
const char *saga_state_name(saga_state st);
int         saga_state_parse(const char *name, saga_state *out);

/* saga_state_terminal tells whether no further step will run by itself. */
bool saga_state_terminal(saga_state st);

/* Kinds of command, as on the wire. */
#define SAGA_KIND_ACTION 0
#define SAGA_KIND_COMP 1

/* The log numbers a saga's events in a PostgreSQL integer (event_seq):
 * a saga that retries for ever (no attempt limit, no backoff) must stop
 * before the number wraps. From this one on, a retry, an error or a
 * timeout counts as its policy used up (the saga compensates, or parks
 * FAILED); the room left above it is for the compensations and for
 * operators' repairs. */
#define SAGA_ENGINE_SEQ_LIMIT ((uint32_t) INT32_MAX - (1u << 20))

/* saga_inst is the engine's view of one saga: exactly what the instance
 * row of the log holds (saga_store maps it to columns), plus the outputs
 * of the steps (the context). */
typedef struct saga_inst {
	saga_id         id;
	const saga_def *def;
	saga_state      state;
	int32_t         step;     /* current step (action or compensation) */
	uint32_t        attempt;  /* of (step, kind); 0 = none sent yet */
	uint32_t        phase_attempt0; /* attempt when this phase began (0,
	                                   or the last one before an
	                                   operator's retry): the policy's
	                                   max_attempts counts from here */
	int32_t         max_sent; /* highest step with an attempt; -1 none */
	bool            in_flight; /* the current attempt awaits its reply */
	int64_t         next_at_ms;    /* !in_flight: when to send next */
	int64_t         phase_start_ms; /* when this (step, kind) began */
	int64_t         deadline_ms;   /* absolute; 0 = none */
	int64_t         created_ms;
	uint32_t        seq;           /* last event sequence number */
	char            last_error[256];
	/* The context: the saga input and each step's output (len 0 = no
	 * output). Bytes are owned by the shell; the engine only moves the
	 * pointers it is given. */
	proto_raw       input;
	proto_raw      *outputs; /* def->nsteps entries */
} saga_inst;

/* Types of events fed to the engine. */
typedef enum saga_ev_type {
	SAGA_EV_REPLY,   /* a participant answered (ok / failed / retry) */
	SAGA_EV_ERROR,   /* an ERROR reply, a send failure or a bad reply */
	SAGA_EV_TIMEOUT, /* the attempt's timeout expired */
	SAGA_EV_TIMER,   /* the time saga_engine_wake_at asked for came */
	SAGA_EV_CANCEL,  /* a client asked to cancel */
	SAGA_EV_RETRY,   /* an operator asked to retry a FAILED saga */
	SAGA_EV_RESOLVE, /* an operator resolved a FAILED saga by hand */
	SAGA_EV_SKIP,    /* an operator skipped the stuck step */
} saga_ev_type;

/* saga_ev is one event. now_ms and rnd are set for every event. */
typedef struct saga_ev {
	saga_ev_type type;
	int64_t      now_ms;
	uint32_t     rnd;      /* uniform random, for jitter */
	int32_t      step;     /* REPLY, ERROR, TIMEOUT: which command */
	uint32_t     kind;
	uint32_t     attempt;
	uint32_t     outcome;  /* REPLY: proto_outcome */
	proto_raw    output;   /* REPLY ok: the step's output map; the
	                          engine stores the pointer in inst->outputs
	                          when fx->output_taken */
	bool         output_too_big; /* REPLY ok: the context with this
	                                output would exceed max_context_bytes */
	bool         output_too_deep; /* REPLY ok: the output nests deeper
	                                 than PROTO_OUTPUT_MAX_DEPTH */
	int64_t      duration_us;   /* REPLY, ERROR, TIMEOUT: attempt time */
	const char  *text;     /* error text, or the operator's note */
	const char  *step_name; /* SKIP: the step the operator names */
	bool         remote;   /* CANCEL: asked through the database, by a
	                          client of another instance, which has had
	                          its answer: a refusal goes into the log */
} saga_ev;

/* Log event types (saga_event.event). */
typedef enum saga_log_type {
	SAGA_LOG_STARTED,       /* saga_started */
	SAGA_LOG_SENT,          /* step_sent: attempt sent */
	SAGA_LOG_OK,            /* step_ok */
	SAGA_LOG_FAILED,        /* step_failed: business failure */
	SAGA_LOG_RETRY,         /* step_retry: will try again at ... */
	SAGA_LOG_GAVE_UP,       /* step_gave_up: policy exhausted */
	SAGA_LOG_COMPENSATING,  /* saga_compensating: why */
	SAGA_LOG_COMPLETED,     /* saga_completed */
	SAGA_LOG_COMPENSATED,   /* saga_compensated */
	SAGA_LOG_PARKED,        /* saga_failed: parked, why */
	SAGA_LOG_CANCEL,        /* cancel_requested */
	SAGA_LOG_OP_RETRY,      /* operator_retry */
	SAGA_LOG_RESOLVED,      /* saga_resolved: note */
	SAGA_LOG_SKIPPED,       /* step_skipped: note */
	SAGA_LOG_DEADLINE,      /* deadline_passed */
	SAGA_LOG_LOAD_FAILED,   /* load_failed: an instance claimed the saga
	                           but could not load it, and gave it back
	                           (written by sagad, not by the engine) */
	SAGA_LOG_CANCEL_REFUSED, /* cancel_refused: a cancel asked through
	                            the database was refused: why */
	SAGA_LOG_COUNT
} saga_log_type;

/* saga_log_name returns the stored name of a log event type. */
const char *saga_log_name(saga_log_type t);

/* saga_log is one row to append to the event log. */
typedef struct saga_log {
	saga_log_type type;
	uint32_t      seq;
	int64_t       at_ms;
	int32_t       step;    /* -1 for saga-level events */
	int32_t       kind;    /* -1 when not about a command */
	uint32_t      attempt; /* 0 when not about an attempt */
	int32_t       outcome; /* proto_outcome, SAGA_OUTCOME_TIMEOUT,
	                          SAGA_OUTCOME_ERROR, or -1 */
	proto_raw     output;  /* step_ok: the output */
	char          error[256]; /* error text or note; "" when none */
	int64_t       duration_us; /* -1 when unknown */
	int64_t       next_at_ms;  /* step_retry: when */
} saga_log;

/* Outcomes in the log besides proto_outcome's. */
#define SAGA_OUTCOME_TIMEOUT 3
#define SAGA_OUTCOME_ERROR 4

/* saga_outcome_name returns "ok", "failed", "retry", "timeout", "error". */
const char *saga_outcome_name(int32_t outcome);

/* The most log rows one transition appends. */
#define SAGA_FX_MAX_LOGS 6

/* saga_fx is what one transition asks the shell to do. */
typedef struct saga_fx {
	bool     changed;  /* the instance changed: persist it */
	bool     context_changed; /* an output was added: persist context */
	size_t   nlogs;
	saga_log logs[SAGA_FX_MAX_LOGS];
	bool     send;     /* send (step, kind, attempt) of the instance */
	bool     finished; /* the saga became terminal (wake waiters) */
	int      answer;   /* client/operator request: 0 or a saga_err */
	char     answer_text[160];
	bool     ignored;  /* the event did not apply (late reply, ...) */
	bool     output_taken; /* inst->outputs now points at ev->output */
} saga_fx;

/* saga_engine_start initialises inst (whose id, def, input, outputs,
 * created_ms and deadline_ms the caller set) as a new saga at now_ms and
 * sends its first step. A definition without steps completes at once. */
void saga_engine_start(saga_inst *inst, int64_t now_ms, saga_fx *fx);

/* saga_engine_event applies ev to inst. */
void saga_engine_event(saga_inst *inst, const saga_ev *ev, saga_fx *fx);

/* saga_engine_wake_at returns when the engine wants a SAGA_EV_TIMER for
 * inst (absolute ms), or 0 when it waits for nothing but events. */
int64_t saga_engine_wake_at(const saga_inst *inst);

/* saga_engine_kind returns the kind of the current command of inst. */
uint32_t saga_engine_kind(const saga_inst *inst);

/* saga_engine_command_name returns the action or compensation name of the
 * current command of inst. */
const char *saga_engine_command_name(const saga_inst *inst);

/* saga_engine_pivot_done tells whether inst has passed its pivot. */
bool saga_engine_pivot_done(const saga_inst *inst);

/* saga_engine_cancel_refused tells whether a CANCEL of inst would be
 * refused (not RUNNING; RUNNING past its pivot, or with a pivot without
 * compensation in progress), and then writes why into why (len bytes).
 * It reads only the state, step and attempt of inst (and, when RUNNING,
 * its definition), so that a saga another instance owns, or one not in
 * memory, is judged from its row by the same rules. */
bool saga_engine_cancel_refused(
    const saga_inst *inst, char *why, size_t len);

/* saga_engine_backoff_ms returns the wait after failed attempt number
 * attempt (from 1) under policy r, with jitter drawn from rnd. */
int64_t saga_engine_backoff_ms(
    const saga_retry *r, uint32_t attempt, uint32_t rnd);

#endif /* COORDINATOR_SAGA_ENGINE_H */
