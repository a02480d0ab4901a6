/* SPDX-License-Identifier: MIT */
/*
 * coord_queue_test: the engine's inbox. Events come out in order, stamped
 * with the time of their push (for the engine's lag metric), only a
 * push into an empty queue writes the eventfd (the eventfd's counter is
 * the number of writes), and with producer threads pushing while the
 * consumer takes, no event is ever left in the queue without a wake
 * pending.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "coord_queue.h"

/* The eventfd's counter, read (which resets it); 0 if nothing was
 * written. */
static uint64_t
efd_take(coord_queue *q)
{
	uint64_t v = 0;

	if (read(q->efd, &v, sizeof(v)) != (ssize_t) sizeof(v)) {
		return (0);
	}
	return (v);
}

static void
test_coord_queue_order_and_one_wake(void **state)
{
	coord_queue  q;
	coord_event  ev[3];
	coord_event *l;
	int          objs[3];
	int64_t      before, after;

	(void) state;
	assert_int_equal(coord_queue_init(&q), 0);
	before = coord_queue_now_us();
	for (int i = 0; i < 3; i++) {
		ev[i].pushed_us = -1;
		coord_queue_push(&q, &ev[i], COORD_EV_API, &objs[i]);
	}
	after = coord_queue_now_us();
	/* Each push is stamped, in order, on the engine's clock. */
	for (int i = 0; i < 3; i++) {
		assert_true(ev[i].pushed_us >= before);
		assert_true(ev[i].pushed_us <= after);
		assert_true(i == 0 || ev[i].pushed_us >= ev[i - 1].pushed_us);
	}
	/* Three events, one write: the first push's. */
	assert_int_equal(efd_take(&q), 1);
	l = coord_queue_take(&q);
	for (int i = 0; i < 3; i++) {
		assert_ptr_equal(l, &ev[i]);
		assert_ptr_equal(l->obj, &objs[i]);
		l = l->next;
	}
	assert_null(l);
	assert_null(coord_queue_take(&q));
	/* Empty again: the next push wakes again. */
	coord_queue_push(&q, &ev[0], COORD_EV_READER, NULL);
	assert_int_equal(efd_take(&q), 1);
	assert_ptr_equal(coord_queue_take(&q), &ev[0]);
	/* An explicit wake (signals) still writes. */
	coord_queue_wake(&q);
	assert_int_equal(efd_take(&q), 1);
	coord_queue_fini(&q);
}

#define PRODUCERS 2
#define PER_PRODUCER 200000

typedef struct producer {
	coord_queue *q;
	coord_event *ev;
} producer;

static void *
producer_main(void *arg)
{
	producer *p = arg;

	for (int i = 0; i < PER_PRODUCER; i++) {
		coord_queue_push(p->q, &p->ev[i], COORD_EV_DISPATCH, NULL);
	}
	return (NULL);
}

/* The consumer sleeps in poll until the eventfd is readable, as the
 * engine does: a lost wake leaves it asleep with events queued. */
static void
test_coord_queue_no_lost_wake(void **state)
{
	coord_queue *q;
	producer     p[PRODUCERS];
	pthread_t    th[PRODUCERS];
	long         got = 0;

	(void) state;
	assert_non_null(q = calloc(1, sizeof(*q)));
	assert_int_equal(coord_queue_init(q), 0);
	for (int i = 0; i < PRODUCERS; i++) {
		p[i].q = q;
		p[i].ev = calloc(PER_PRODUCER, sizeof(coord_event));
		assert_non_null(p[i].ev);
		assert_int_equal(pthread_create(&th[i], NULL, producer_main,
		                     &p[i]),
		    0);
	}
	while (got < (long) PRODUCERS * PER_PRODUCER) {
		struct pollfd pf = { q->efd, POLLIN, 0 };

		if (poll(&pf, 1, 10000) != 1) {
			fail_msg("no wake for 10 s with %ld of %d events "
			         "taken",
			    got, PRODUCERS * PER_PRODUCER);
		}
		for (coord_event *e = coord_queue_take(q); e != NULL;
		     e = e->next) {
			got++;
		}
	}
	for (int i = 0; i < PRODUCERS; i++) {
		pthread_join(th[i], NULL);
		free(p[i].ev);
	}
	assert_int_equal(got, (long) PRODUCERS * PER_PRODUCER);
	assert_null(coord_queue_take(q));
	coord_queue_fini(q);
	free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_coord_queue_order_and_one_wake),
		cmocka_unit_test(test_coord_queue_no_lost_wake),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
