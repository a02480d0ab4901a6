/* SPDX-License-Identifier: MIT */
/*
 * sagactl_chart: the Gantt chart that `sagactl show` draws beside the
 * timeline of a saga: one row per event, all rows on one time axis from
 * the saga's start to its end (or now, while it runs), scaled to the
 * chart's width.
 *
 * Each row draws what starts at its event, so the bars form a staircase:
 *   step_sent      the attempt's bar, from the send to its outcome:
 *                  '=' an action, '~' a compensation; its last cell is
 *                  'X' if it failed (or gave up), '!' if it must be
 *                  retried (retry, timeout, error), '>' if it is still in
 *                  flight, '?' if no outcome was recorded (cancelled, or
 *                  abandoned at a restart)
 *   step_ok        'o' where the reply came
 *   step_failed,
 *   step_gave_up   'X'
 *   step_retry     '!' and then the backoff wait, '.', up to the next
 *                  attempt (or now)
 *   saga_failed    'X' (parked for an operator)
 *   operator and cancel events   '@'
 *   other saga events            '*'
 * so that retries, waits, the turn to compensation and where a saga got
 * stuck read at a glance, with or without colour.
 *
 * DESIGN: pure code over an array of events (no I/O, no clock: "now" is
 * a parameter), so that it can be tested and reused.
 */
#ifndef COORDINATOR_SAGACTL_CHART_H
#define COORDINATOR_SAGACTL_CHART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sagactl_out.h"

/* sagactl_chart_ev is what the chart needs of one saga_event row. */
typedef struct sagactl_chart_ev {
	int64_t at_ms;
	int32_t step; /* -1 for saga events */
	int32_t kind; /* 0 action, 1 compensation, -1 none */
	int32_t attempt; /* 0 none */
	int     type; /* saga_log_type, -1 unknown */
	int     outcome; /* saga_outcome code, -1 none */
} sagactl_chart_ev;

/* sagactl_chart is one chart: its events and axis. */
typedef struct sagactl_chart {
	const sagactl_chart_ev *evs;
	size_t                  n;
	int64_t                 t0; /* left edge: the saga's start */
	int64_t                 t1; /* right edge */
	int64_t                 now_ms; /* end of what is still going on */
	bool                    running; /* the saga is not final */
	size_t                  width; /* cells */
} sagactl_chart;

/* sagactl_chart_init sets c up for n events (evs borrowed), from t0 to
 * the last event, or to now_ms when running, in width cells (at least
 * 8). */
void sagactl_chart_init(sagactl_chart *c, const sagactl_chart_ev *evs,
    size_t n, int64_t t0, int64_t now_ms, bool running, size_t width);

/* sagactl_chart_row writes the cells of row i into cells (width + 1
 * bytes, NUL-terminated; spaces where nothing is drawn). */
void sagactl_chart_row(const sagactl_chart *c, size_t i, char *cells);

/* sagactl_chart_render writes cells (from sagactl_chart_row) into buf
 * with the colours of o. Returns buf. */
char *sagactl_chart_render(
    const sagactl_out *o, const char *cells, char *buf, size_t len);

/* sagactl_chart_axis writes the header of the chart column: "0" at the
 * left and the span at the right, width cells. Returns buf. */
char *sagactl_chart_axis(const sagactl_chart *c, char *buf, size_t len);

/* sagactl_chart_legend writes the meaning of every glyph that appears in
 * the chart's rows into buf. Returns buf. */
char *sagactl_chart_legend(const sagactl_chart *c, char *buf, size_t len);

/* sagactl_chart_log_type returns the saga_log_type of an event name, or
 * -1. sagactl_chart_outcome the outcome code of an outcome name, or -1. */
int sagactl_chart_log_type(const char *name);
int sagactl_chart_outcome(const char *name);

#endif /* COORDINATOR_SAGACTL_CHART_H */
