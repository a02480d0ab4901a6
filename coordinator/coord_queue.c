/* SPDX-License-Identifier: MIT */
/*
 * coord_queue: mutex-protected list plus an eventfd. See coord_queue.h.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "coord_queue.h"
#include "saga_err.h"

int
coord_queue_init(coord_queue *q)
{
	q->head = q->tail = NULL;
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		return (SAGA_ENOMEM);
	}
	pthread_mutex_init(&q->mtx, NULL);
	return (0);
}

void
coord_queue_fini(coord_queue *q)
{
	if (q->efd >= 0) {
		close(q->efd);
		q->efd = -1;
	}
	pthread_mutex_destroy(&q->mtx);
}

int64_t
coord_queue_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

void
coord_queue_wake(coord_queue *q)
{
	uint64_t one = 1;

	(void) !write(q->efd, &one, sizeof(one));
}

void
coord_queue_push(
    coord_queue *q, coord_event *ev, coord_event_type type, void *obj)
{
	bool first;

	ev->next      = NULL;
	ev->type      = type;
	ev->obj       = obj;
	ev->pushed_us = coord_queue_now_us();
	pthread_mutex_lock(&q->mtx);
	first = q->head == NULL;
	if (first) {
		q->head = ev;
	} else {
		q->tail->next = ev;
	}
	q->tail = ev;
	pthread_mutex_unlock(&q->mtx);
	/* Only the push into an empty queue wakes the engine: the list was
	 * non-empty since that push's wake, and coord_queue_take reads the
	 * eventfd before it empties the list, so every event it leaves
	 * behind came after, into an empty queue, and woke it again. Under
	 * load this spares a write (and a wake) per event. */
	if (first) {
		coord_queue_wake(q);
	}
}

coord_event *
coord_queue_take(coord_queue *q)
{
	coord_event *list;
	uint64_t     v;

	(void) !read(q->efd, &v, sizeof(v));
	pthread_mutex_lock(&q->mtx);
	list    = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&q->mtx);
	return (list);
}
