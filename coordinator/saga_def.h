/* SPDX-License-Identifier: MIT */
/*
 * saga_def: validated, in-memory saga definitions and participants, as
 * produced by coord_config from YAML and consumed by the engine.
 *
 * A definition is immutable once built. Running sagas pin the version they
 * started with; a reload builds new definitions and never frees one that a
 * saga still uses (the registry keeps every version it has loaded).
 */
#ifndef COORDINATOR_SAGA_DEF_H
#define COORDINATOR_SAGA_DEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Kinds of steps, from the saga literature. */
typedef enum saga_step_kind {
	SAGA_STEP_COMPENSATABLE = 0, /* undone if a later step fails */
	SAGA_STEP_PIVOT         = 1, /* point of no return */
	SAGA_STEP_RETRIABLE     = 2, /* after the pivot; never compensated */
} saga_step_kind;

/* saga_retry is a retry policy: exponential backoff with jitter. */
typedef struct saga_retry {
	uint32_t max_attempts;       /* 0 = unlimited */
	int64_t  initial_backoff_ms; /* wait after the first failed attempt */
	double   multiplier;         /* growth per attempt, >= 1 */
	int64_t  max_backoff_ms;     /* cap of one wait */
	double   jitter;             /* 0..1: +/- this share of the wait */
} saga_retry;

/* saga_step_def is one step of a saga. */
typedef struct saga_step_def {
	char          *name;
	char          *participant;
	char          *action;
	char          *compensation; /* NULL when the step has none */
	saga_step_kind kind;
	int64_t        timeout_ms;     /* per attempt, action and compensation */
	saga_retry     retry;          /* of the action */
	saga_retry     comp_retry;     /* of the compensation */
	int64_t        comp_budget_ms; /* compensation_timeout: total time a
	                                  compensation may take before the
	                                  saga is parked FAILED */
} saga_step_def;

/* saga_def is one version of a saga definition. */
typedef struct saga_def {
	char          *name;
	int            version;          /* 0 until stored in the database */
	char           hash[65];         /* sha256 hex of the canonical JSON */
	char          *json;             /* canonical JSON of the definition */
	int64_t        deadline_ms;      /* 0 = none */
	char          *business_key;     /* input field, or NULL */
	char         **redact;           /* input fields masked on display,
	                                    sorted */
	size_t         nredact;
	size_t         nsteps;
	saga_step_def *steps;
	int            pivot;            /* index of the pivot, -1 if none */
	const char    *file;             /* where it was defined */
	int            line;
} saga_def;

/* SAGA_DEF_REDACTED is what is shown in place of the value of a redacted
 * input field (saga_def.redact), and of a business key that is one. */
#define SAGA_DEF_REDACTED "***"

/* saga_participant_def is where a participant's commands go. */
typedef struct saga_participant_def {
	char    *name;
	char   **endpoints;
	size_t   nendpoints;
	uint32_t max_in_flight;
	uint32_t max_batch; /* commands per message, 1..1024 (1: no BATCH) */
	/* TLS for its tls+tcp:// endpoints, overriding sagad's own files
	 * (--tls-ca, --tls-cert, --tls-key) where set; NULL = sagad's. */
	char *tls_ca;
	char *tls_cert;
	char *tls_key;
} saga_participant_def;

/* saga_step_kind_name returns "compensatable", "pivot" or "retriable", the
 * names of the YAML format. */
const char *saga_step_kind_name(saga_step_kind k);

/* saga_def_free frees a definition and everything it owns; NULL-safe. */
void saga_def_free(saga_def *d);

/* saga_participant_def_free frees a participant; NULL-safe. */
void saga_participant_def_free(saga_participant_def *p);

/* saga_def_step_find returns the index of the step named name, or -1. */
int saga_def_step_find(const saga_def *d, const char *name);

/* saga_def_redacts tells whether d redacts the input field named field
 * (len bytes, not NUL-terminated; a name holding a NUL byte is never
 * one). */
bool saga_def_redacts(const saga_def *d, const char *field, size_t len);

#endif /* COORDINATOR_SAGA_DEF_H */
