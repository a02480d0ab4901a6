/* SPDX-License-Identifier: MIT */
/*
 * timer: binary min-heap with back-indices. See timer.h.
 */
#include <stdint.h>
#include <stdlib.h>

#include "saga_err.h"
#include "timer.h"

void
timer_ent_init(timer_ent *e, int kind)
{
	e->at_ms = 0;
	e->idx   = SIZE_MAX;
	e->kind  = kind;
}

void
timer_heap_init(timer_heap *h)
{
	h->ents = NULL;
	h->n    = 0;
	h->cap  = 0;
}

void
timer_heap_fini(timer_heap *h)
{
	for (size_t i = 0; i < h->n; i++) {
		h->ents[i]->idx = SIZE_MAX;
	}
	free(h->ents);
	timer_heap_init(h);
}

static void
timer_swap(timer_heap *h, size_t a, size_t b)
{
	timer_ent *t = h->ents[a];

	h->ents[a]      = h->ents[b];
	h->ents[b]      = t;
	h->ents[a]->idx = a;
	h->ents[b]->idx = b;
}

static void
timer_up(timer_heap *h, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (h->ents[p]->at_ms <= h->ents[i]->at_ms) {
			break;
		}
		timer_swap(h, i, p);
		i = p;
	}
}

static void
timer_down(timer_heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->n && h->ents[l]->at_ms < h->ents[m]->at_ms) {
			m = l;
		}
		if (r < h->n && h->ents[r]->at_ms < h->ents[m]->at_ms) {
			m = r;
		}
		if (m == i) {
			break;
		}
		timer_swap(h, i, m);
		i = m;
	}
}

int
timer_arm(timer_heap *h, timer_ent *e, int64_t at_ms)
{
	if (e->idx != SIZE_MAX) {
		e->at_ms = at_ms;
		timer_up(h, e->idx);
		timer_down(h, e->idx);
		return (0);
	}
	if (h->n == h->cap) {
		size_t      cap = h->cap ? h->cap * 2 : 64;
		timer_ent **ne  = realloc(h->ents, cap * sizeof(*ne));

		if (ne == NULL) {
			return (SAGA_ENOMEM);
		}
		h->ents = ne;
		h->cap  = cap;
	}
	e->at_ms      = at_ms;
	e->idx        = h->n;
	h->ents[h->n] = e;
	h->n++;
	timer_up(h, e->idx);
	return (0);
}

void
timer_cancel(timer_heap *h, timer_ent *e)
{
	size_t i = e->idx;

	if (i == SIZE_MAX) {
		return;
	}
	h->n--;
	if (i != h->n) {
		h->ents[i]      = h->ents[h->n];
		h->ents[i]->idx = i;
		timer_up(h, i);
		timer_down(h, i);
	}
	e->idx = SIZE_MAX;
}

timer_ent *
timer_next(const timer_heap *h)
{
	return (h->n > 0 ? h->ents[0] : NULL);
}

timer_ent *
timer_pop(timer_heap *h, int64_t now_ms)
{
	timer_ent *e = timer_next(h);

	if (e == NULL || e->at_ms > now_ms) {
		return (NULL);
	}
	timer_cancel(h, e);
	return (e);
}
