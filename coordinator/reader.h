/* SPDX-License-Identifier: MIT */
/*
 * reader: a thread with its own database connection for the engine's
 * blocking reads (a saga that is not in memory, a start key, registering
 * reloaded definitions), so that the engine thread never blocks on them.
 *
 * The engine submits a job; the reader runs it and posts it back to the
 * engine's queue (COORD_EV_READER, obj = the job). The connection is made
 * on first use and again after a failure; a job that finds the database
 * down finishes with SAGA_EUNAVAIL.
 */
#ifndef COORDINATOR_READER_H
#define COORDINATOR_READER_H

#include <stdbool.h>

#include "coord_queue.h"
#include "saga_def.h"
#include "saga_store.h"

typedef enum reader_op {
	READER_LOAD,     /* load saga id, and its definition's JSON */
	READER_KEY,      /* look up a start key, then load its saga */
	READER_REGISTER, /* register definitions */
	READER_COUNT_FAILED, /* count the FAILED sagas (a gauge) */
	READER_LEASE,        /* give back what cannot be loaded, renew
	                        leases, take over expired ones, read cancel
	                        requests */
	READER_CANCEL,       /* ask the owner of saga id to cancel it */
} reader_op;

/* A saga this instance claimed but cannot load, to give back
 * (saga_store_give_back): the claim's epoch and why. */
typedef struct reader_giveback {
	saga_id id;
	int64_t epoch;
	char    why[256];
	bool    locked; /* result: its row was locked, not given back */
} reader_giveback;

/* A saga taken over (READER_LEASE) with its definition's JSON. */
typedef struct reader_claimed {
	saga_row row;
	char    *def_json;
} reader_claimed;

typedef struct reader_job {
	coord_event        ev;
	struct reader_job *next;
	reader_op          op;
	void              *user;    /* the engine's: the request waiting */
	/* READER_LOAD (and READER_KEY's result) */
	saga_id            id;
	/* READER_KEY */
	char              *key;
	char              *saga_name;
	proto_buf          input;
	/* READER_REGISTER: definitions to register (not owned) */
	saga_def         **defs;
	size_t             ndefs;
	/* Results. */
	int                rv;       /* 0, SAGA_ENOTFOUND, SAGA_EUNAVAIL... */
	char               err[256];
	bool               found;    /* READER_KEY: key known */
	bool               same;     /* READER_KEY: same request */
	saga_row           row;      /* the saga, when loaded */
	char              *def_json; /* its definition, when loaded */
	long long          count;    /* READER_COUNT_FAILED, leases renewed */
	bool               claim;    /* READER_LOAD: take it if FAILED */
	void              *rwait;    /* READER_LOAD for a remote WAIT */
	char              *note;     /* READER_CANCEL */
	/* READER_LEASE: sagas to take back (owned, not in memory). */
	saga_id           *adopt_ids;
	size_t             nadopt;
	/* READER_LEASE: the most sagas of other instances (expired leases)
	 * to take over; 0 for none. */
	long               claim_limit;
	/* READER_LEASE: sagas to give back, first of all, and sagas never to
	 * claim (both owned by the job). */
	reader_giveback   *giveback;
	size_t             ngiveback;
	saga_id           *skip_ids;
	size_t             nskip;
	/* READER_LEASE results. */
	saga_id           *renewed;
	size_t             nrenewed;
	saga_id           *locked; /* owned, not renewed (rows locked) */
	size_t             nlocked;
	char               id_holder[160]; /* "" or who holds our id */
	reader_claimed    *claimed;
	size_t             nclaimed;
	saga_id           *cancel_ids;
	char             **cancel_notes;
	size_t             ncancels;
} reader_job;

typedef struct reader reader;

/* reader_start starts the thread, which connects as instance owner with
 * leases of lease_ms. conninfo and owner are copied. Returns 0 or
 * SAGA_ENOMEM. */
int reader_start(reader **out, const char *conninfo, const char *owner,
    int64_t lease_ms, coord_queue *q);

/* reader_submit queues a job (the reader owns it until it posts it). */
void reader_submit(reader *r, reader_job *job);

/* reader_stop stops the thread (jobs not yet run are posted back with
 * SAGA_ECLOSED) and frees it; NULL-safe. */
void reader_stop(reader *r);

/* reader_job_free frees a job and its results; NULL-safe. */
void reader_job_free(reader_job *job);

#endif /* COORDINATOR_READER_H */
