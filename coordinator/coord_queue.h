/* SPDX-License-Identifier: MIT */
/*
 * coord_queue: the engine thread's inbox.
 *
 * nng callbacks and the reader thread push events here and wake the engine
 * through an eventfd; the engine takes the whole list at once. Events are
 * embedded in the objects that post them (a dispatch slot, an API context,
 * a reader job), so pushing never allocates: an object posts at most one
 * event at a time and is not reused until the engine has handled it.
 */
#ifndef COORDINATOR_COORD_QUEUE_H
#define COORDINATOR_COORD_QUEUE_H

#include <pthread.h>
#include <stdint.h>

typedef enum coord_event_type {
	COORD_EV_DISPATCH, /* a command finished (reply, error, timeout) */
	COORD_EV_API,      /* a client request arrived */
	COORD_EV_READER,   /* a reader job finished */
} coord_event_type;

typedef struct coord_event {
	struct coord_event *next;
	coord_event_type    type;
	void               *obj;       /* the object that posted it */
	int64_t             pushed_us; /* CLOCK_MONOTONIC at the push */
} coord_event;

typedef struct coord_queue {
	pthread_mutex_t mtx;
	coord_event    *head;
	coord_event    *tail;
	int             efd;
} coord_queue;

/* coord_queue_init makes an empty queue and its eventfd. Returns 0 or
 * SAGA_ENOMEM. */
int coord_queue_init(coord_queue *q);

/* coord_queue_fini closes the eventfd. */
void coord_queue_fini(coord_queue *q);

/* coord_queue_push stamps ev with the time (coord_queue_now_us), appends
 * it (posted by obj) and, if the queue was empty, wakes the engine; events
 * pushed after that ride on the same wake. Safe from any thread; from a
 * signal handler only coord_queue_wake is. */
void coord_queue_push(
    coord_queue *q, coord_event *ev, coord_event_type type, void *obj);

/* coord_queue_now_us is CLOCK_MONOTONIC in microseconds, the clock of
 * pushed_us. */
int64_t coord_queue_now_us(void);

/* coord_queue_wake wakes the engine without an event (async-signal-safe). */
void coord_queue_wake(coord_queue *q);

/* coord_queue_take returns every queued event, oldest first, and resets
 * the eventfd. The wake rule above holds because there is one consumer,
 * it is the only reader of the eventfd, it reads it before it takes the
 * list, and it takes the list every time it wakes: an event it leaves
 * behind was pushed into an empty queue after the read, and woke it. */
coord_event *coord_queue_take(coord_queue *q);

#endif /* COORDINATOR_COORD_QUEUE_H */
