/* SPDX-License-Identifier: MIT */
/*
 * reader: the blocking-read thread. See reader.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reader.h"
#include "saga_err.h"

struct reader {
	pthread_t       thr;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	reader_job     *head;
	reader_job     *tail;
	bool            stop;
	char           *conninfo;
	char           *owner;
	int64_t         lease_ms;
	coord_queue    *q;
	saga_store     *st;
};

/* Frees what a run of job found (not what it was asked), so that it can
 * run again. */
static void
reader_job_results_fini(reader_job *job)
{
	saga_row_fini(&job->row);
	free(job->def_json);
	job->def_json = NULL;
	for (size_t i = 0; i < job->nclaimed; i++) {
		saga_row_fini(&job->claimed[i].row);
		free(job->claimed[i].def_json);
	}
	free(job->claimed);
	job->claimed  = NULL;
	job->nclaimed = 0;
	for (size_t i = 0; i < job->ncancels; i++) {
		free(job->cancel_notes[i]);
	}
	free(job->cancel_ids);
	free(job->cancel_notes);
	job->cancel_ids   = NULL;
	job->cancel_notes = NULL;
	job->ncancels     = 0;
	free(job->renewed);
	job->renewed  = NULL;
	job->nrenewed = 0;
	free(job->locked);
	job->locked  = NULL;
	job->nlocked = 0;
	job->count    = 0;
	job->found    = false;
	job->same     = false;
	job->err[0]   = '\0';
}

void
reader_job_free(reader_job *job)
{
	if (job == NULL) {
		return;
	}
	free(job->key);
	free(job->saga_name);
	proto_buf_fini(&job->input);
	free(job->note);
	reader_job_results_fini(job);
	free(job->adopt_ids);
	free(job->giveback);
	free(job->skip_ids);
	free(job);
}

/* Makes sure the reader has a working connection. */
static int
reader_connect(reader *r, reader_job *job)
{
	int rv;

	if (r->st != NULL && saga_store_ok(r->st)) {
		return (0);
	}
	saga_store_free(r->st);
	r->st = NULL;
	if ((rv = saga_store_open(&r->st, r->conninfo, r->owner, r->lease_ms,
	         job->err, sizeof(job->err))) != 0) {
		return (rv == SAGA_ENOMEM ? rv : SAGA_EUNAVAIL);
	}
	if (saga_store_warning(r->st) != NULL) {
		log_warn("%s", saga_store_warning(r->st));
	}
	return (0);
}

static int
reader_load(reader *r, reader_job *job)
{
	int rv;

	/* An operator's repair takes a FAILED saga over; anything else (or
	 * a saga that is not FAILED) is only read. */
	rv = job->claim ? saga_store_claim_one(r->st, &job->id, &job->row)
	                : SAGA_ENOTFOUND;
	if (rv == SAGA_ENOTFOUND &&
	    (rv = saga_store_load_one(r->st, &job->id, &job->row)) != 0) {
		return (rv);
	}
	if (rv != 0) {
		return (rv);
	}
	return (saga_store_def_load(r->st, job->row.saga_name,
	    job->row.saga_version, &job->def_json));
}

/* Collects a saga taken over, with its definition. */
static int
reader_claim_cb(void *arg, saga_row *row)
{
	reader_job     *job = arg;
	reader_claimed *nc;

	nc = realloc(job->claimed, (job->nclaimed + 1) * sizeof(*nc));
	if (nc == NULL) {
		saga_row_fini(row);
		return (SAGA_ENOMEM);
	}
	job->claimed                        = nc;
	job->claimed[job->nclaimed].row      = *row;
	job->claimed[job->nclaimed].def_json = NULL;
	job->nclaimed++;
	return (0);
}

static int
reader_cancel_cb(void *arg, const saga_id *id, const char *note)
{
	reader_job *job = arg;
	saga_id    *ni;
	char      **nn;
	char       *copy = strdup(note != NULL ? note : "");

	ni = realloc(job->cancel_ids, (job->ncancels + 1) * sizeof(*ni));
	if (ni != NULL) {
		job->cancel_ids = ni;
	}
	nn = realloc(job->cancel_notes, (job->ncancels + 1) * sizeof(*nn));
	if (nn != NULL) {
		job->cancel_notes = nn;
	}
	if (ni == NULL || nn == NULL || copy == NULL) {
		free(copy);
		return (SAGA_ENOMEM);
	}
	job->cancel_ids[job->ncancels]   = *id;
	job->cancel_notes[job->ncancels] = copy;
	job->ncancels++;
	return (0);
}

/* One lease round: give back what the engine cannot load, renew, take
 * over what expired, read cancels. The give-backs come first, so that
 * this round's renewal does not extend them. */
static int
reader_lease(reader *r, reader_job *job)
{
	long claimed = 0;
	int  rv;

	for (size_t i = 0; i < job->ngiveback; i++) {
		reader_giveback *g = &job->giveback[i];

		if ((rv = saga_store_give_back(r->st, &g->id, g->epoch,
		         g->why, &g->locked)) != 0) {
			return (rv);
		}
	}
	if ((rv = saga_store_renew(r->st, &job->renewed, &job->nrenewed,
	         &job->locked, &job->nlocked, job->id_holder,
	         sizeof(job->id_holder))) != 0) {
		return (rv);
	}
	/* Another process holds this instance's id: whatever this one
	 * claimed under the id would be that one's too (same owner); take
	 * nothing, and let the engine say so. */
	if (job->id_holder[0] != '\0') {
		return (0);
	}
	if ((job->nadopt > 0 &&
	        (rv = saga_store_claim_ids(r->st, job->adopt_ids, job->nadopt,
	             reader_claim_cb, job)) != 0) ||
	    (job->claim_limit > 0 &&
	        (rv = saga_store_claim(r->st, false, true, job->claim_limit,
	             job->skip_ids, job->nskip, reader_claim_cb, job,
	             &claimed)) != 0)) {
		return (rv);
	}
	job->count = (long long) job->nrenewed;
	for (size_t i = 0; i < job->nclaimed; i++) {
		reader_claimed *c = &job->claimed[i];

		if ((rv = saga_store_def_load(r->st, c->row.saga_name,
		         c->row.saga_version, &c->def_json)) != 0 &&
		    rv != SAGA_ENOTFOUND) {
			return (rv);
		}
	}
	return (saga_store_cancels(r->st, reader_cancel_cb, job));
}

static int
reader_run(reader *r, reader_job *job)
{
	int rv;

	if ((rv = reader_connect(r, job)) != 0) {
		return (rv);
	}
	switch (job->op) {
	case READER_LOAD:
		rv = reader_load(r, job);
		break;
	case READER_KEY:
		rv = saga_store_key_lookup(r->st, job->key, job->saga_name,
		    proto_buf_raw(&job->input), &job->id, &job->same);
		if (rv == SAGA_ENOTFOUND) {
			return (0);
		}
		if (rv == 0) {
			job->found = true;
			rv         = reader_load(r, job);
		}
		break;
	case READER_LEASE:
		rv = reader_lease(r, job);
		break;
	case READER_CANCEL:
		rv = saga_store_request_cancel(r->st, &job->id,
		    job->note ? job->note : "", &job->row);
		break;
	case READER_COUNT_FAILED:
		rv = saga_store_count_state(r->st, SAGA_ST_FAILED, &job->count);
		break;
	case READER_REGISTER:
		for (size_t i = 0; i < job->ndefs && rv == 0; i++) {
			saga_def *d = job->defs[i];

			rv = saga_store_def_register(
			    r->st, d->name, d->json, &d->version, d->hash);
		}
		break;
	}
	if (rv == SAGA_EDB) {
		snprintf(job->err, sizeof(job->err), "%s",
		    saga_store_error(r->st));
		if (!saga_store_ok(r->st)) {
			rv = SAGA_EUNAVAIL;
		}
	}
	return (rv);
}

static void *
reader_main(void *arg)
{
	reader *r = arg;

	for (;;) {
		reader_job *job;

		pthread_mutex_lock(&r->mtx);
		while (r->head == NULL && !r->stop) {
			pthread_cond_wait(&r->cv, &r->mtx);
		}
		if ((job = r->head) != NULL) {
			r->head = job->next;
			if (r->head == NULL) {
				r->tail = NULL;
			}
		}
		pthread_mutex_unlock(&r->mtx);
		if (job == NULL) {
			break;
		}
		if (r->stop) {
			job->rv = SAGA_ECLOSED;
		} else if ((job->rv = reader_run(r, job)) == SAGA_EUNAVAIL &&
		    r->st != NULL && !saga_store_ok(r->st)) {
			/* The connection broke since the last job (a
			 * database restart): connect again and retry once,
			 * from nothing (a lease job may have renewed and
			 * claimed before the break). */
			reader_job_results_fini(job);
			job->rv = reader_run(r, job);
		}
		coord_queue_push(r->q, &job->ev, COORD_EV_READER, job);
	}
	saga_store_free(r->st);
	r->st = NULL;
	return (NULL);
}

int
reader_start(reader **out, const char *conninfo, const char *owner,
    int64_t lease_ms, coord_queue *q)
{
	reader *r;

	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->conninfo = strdup(conninfo)) == NULL ||
	    (r->owner = strdup(owner)) == NULL) {
		if (r != NULL) {
			free(r->conninfo);
		}
		free(r);
		return (SAGA_ENOMEM);
	}
	r->lease_ms = lease_ms;
	r->q = q;
	pthread_mutex_init(&r->mtx, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (pthread_create(&r->thr, NULL, reader_main, r) != 0) {
		free(r->conninfo);
		free(r->owner);
		free(r);
		return (SAGA_ENOMEM);
	}
	*out = r;
	return (0);
}

void
reader_submit(reader *r, reader_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&r->mtx);
	if (r->tail != NULL) {
		r->tail->next = job;
	} else {
		r->head = job;
	}
	r->tail = job;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mtx);
}

void
reader_stop(reader *r)
{
	if (r == NULL) {
		return;
	}
	pthread_mutex_lock(&r->mtx);
	r->stop = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mtx);
	pthread_join(r->thr, NULL);
	pthread_mutex_destroy(&r->mtx);
	pthread_cond_destroy(&r->cv);
	free(r->conninfo);
	free(r->owner);
	free(r);
}
