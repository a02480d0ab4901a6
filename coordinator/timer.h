/* SPDX-License-Identifier: MIT */
/*
 * timer: a binary min-heap of deadlines, owned by the engine thread.
 *
 * A timer_ent is embedded in the object it wakes (a saga, a waiting
 * client); the heap stores pointers and keeps each entry's index, so that
 * re-arming or cancelling is O(log n) without searching.
 */
#ifndef COORDINATOR_TIMER_H
#define COORDINATOR_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct timer_ent {
	int64_t at_ms; /* absolute, on the engine's clock */
	size_t  idx;   /* position in the heap; SIZE_MAX when not armed */
	int     kind;  /* what the owner is; the heap does not care */
} timer_ent;

typedef struct timer_heap {
	timer_ent **ents;
	size_t      n;
	size_t      cap;
} timer_heap;

/* timer_ent_init marks e as not armed. */
void timer_ent_init(timer_ent *e, int kind);

/* timer_heap_init makes an empty heap. */
void timer_heap_init(timer_heap *h);

/* timer_heap_fini frees the heap's memory (not the entries). */
void timer_heap_fini(timer_heap *h);

/* timer_arm sets e to fire at at_ms (re-arming if armed). Returns 0 or
 * SAGA_ENOMEM. */
int timer_arm(timer_heap *h, timer_ent *e, int64_t at_ms);

/* timer_cancel disarms e; a no-op when it is not armed. */
void timer_cancel(timer_heap *h, timer_ent *e);

/* timer_next returns the earliest entry, or NULL. */
timer_ent *timer_next(const timer_heap *h);

/* timer_pop removes and returns the earliest entry if it is due at now_ms,
 * else returns NULL. */
timer_ent *timer_pop(timer_heap *h, int64_t now_ms);

#endif /* COORDINATOR_TIMER_H */
