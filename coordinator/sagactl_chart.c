/* SPDX-License-Identifier: MIT */
/*
 * sagactl_chart: the Gantt chart of `sagactl show`. See sagactl_chart.h.
 */
#include <stdio.h>
#include <string.h>

#include "saga_engine.h"
#include "sagactl_chart.h"

#define SAGACTL_CHART_MIN 8

void
sagactl_chart_init(sagactl_chart *c, const sagactl_chart_ev *evs, size_t n,
    int64_t t0, int64_t now_ms, bool running, size_t width)
{
	memset(c, 0, sizeof(*c));
	c->evs     = evs;
	c->n       = n;
	c->t0      = t0;
	c->t1      = t0;
	c->now_ms  = now_ms;
	c->running = running;
	c->width   = width < SAGACTL_CHART_MIN ? SAGACTL_CHART_MIN : width;
	for (size_t i = 0; i < n; i++) {
		if (evs[i].at_ms > c->t1) {
			c->t1 = evs[i].at_ms;
		}
		if (evs[i].at_ms < c->t0) {
			c->t0 = evs[i].at_ms;
		}
	}
	if (running && now_ms > c->t1) {
		c->t1 = now_ms;
	}
}

/* The cell of time t. */
static size_t
sagactl_chart_pos(const sagactl_chart *c, int64_t t)
{
	int64_t span = c->t1 - c->t0;

	if (t <= c->t0 || span <= 0) {
		return (0);
	}
	if (t >= c->t1) {
		return (c->width - 1);
	}
	return ((size_t) ((t - c->t0) * (int64_t) (c->width - 1) / span));
}

/* Whether any attempt was sent after row i. */
static bool
sagactl_chart_sent_after(const sagactl_chart *c, size_t i)
{
	for (size_t k = i + 1; k < c->n; k++) {
		if (c->evs[k].type == SAGA_LOG_SENT) {
			return (true);
		}
	}
	return (false);
}

/* The time of the event after row i (or of row i, the last). */
static int64_t
sagactl_chart_next_at(const sagactl_chart *c, size_t i)
{
	return (i + 1 < c->n ? c->evs[i + 1].at_ms : c->evs[i].at_ms);
}

static void
sagactl_chart_fill(
    const sagactl_chart *c, char *cells, size_t a, size_t b, char glyph)
{
	for (size_t p = a; p <= b && p < c->width; p++) {
		cells[p] = glyph;
	}
}

/* Row of a step_sent: the attempt's bar. */
static void
sagactl_chart_attempt(const sagactl_chart *c, size_t i, char *cells)
{
	const sagactl_chart_ev *e     = &c->evs[i];
	char                    glyph = e->kind == SAGA_KIND_COMP ? '~' : '=';
	char                    head  = '?';
	int64_t                 end   = -1;
	size_t                  a, b;

	for (size_t j = i + 1; j < c->n && end < 0; j++) {
		const sagactl_chart_ev *o = &c->evs[j];

		if (o->step != e->step || o->kind != e->kind
		    || o->attempt != e->attempt) {
			continue;
		}
		switch (o->type) {
		case SAGA_LOG_OK:
			end  = o->at_ms;
			head = glyph;
			break;
		case SAGA_LOG_FAILED:
		case SAGA_LOG_GAVE_UP:
			end  = o->at_ms;
			head = 'X';
			break;
		case SAGA_LOG_RETRY:
			end  = o->at_ms;
			head = '!';
			break;
		default:
			break;
		}
	}
	if (end < 0) {
		if (c->running && !sagactl_chart_sent_after(c, i)) {
			end  = c->now_ms;
			head = '>';
		} else {
			end = sagactl_chart_next_at(c, i);
		}
	}
	a = sagactl_chart_pos(c, e->at_ms);
	b = sagactl_chart_pos(c, end);
	if (b < a) {
		b = a;
	}
	sagactl_chart_fill(c, cells, a, b, glyph);
	cells[b] = head;
}

/* Row of a step_retry: '!' and the wait up to the next attempt. */
static void
sagactl_chart_wait(const sagactl_chart *c, size_t i, char *cells)
{
	const sagactl_chart_ev *e   = &c->evs[i];
	int64_t                 end = -1;
	size_t                  a, b;

	for (size_t k = i + 1; k < c->n && end < 0; k++) {
		const sagactl_chart_ev *s = &c->evs[k];

		if (s->type == SAGA_LOG_SENT && s->step == e->step
		    && s->kind == e->kind) {
			end = s->at_ms;
		}
	}
	if (end < 0) {
		end = c->running && !sagactl_chart_sent_after(c, i)
		    ? c->now_ms
		    : sagactl_chart_next_at(c, i);
	}
	a = sagactl_chart_pos(c, e->at_ms);
	b = sagactl_chart_pos(c, end);
	if (b > a + 1) {
		sagactl_chart_fill(c, cells, a + 1, b - 1, '.');
	}
	cells[a] = '!';
}

void
sagactl_chart_row(const sagactl_chart *c, size_t i, char *cells)
{
	const sagactl_chart_ev *e = &c->evs[i];
	size_t                  p = sagactl_chart_pos(c, e->at_ms);

	memset(cells, ' ', c->width);
	cells[c->width] = '\0';
	switch (e->type) {
	case SAGA_LOG_SENT:
		sagactl_chart_attempt(c, i, cells);
		break;
	case SAGA_LOG_RETRY:
		sagactl_chart_wait(c, i, cells);
		break;
	case SAGA_LOG_OK:
		cells[p] = 'o';
		break;
	case SAGA_LOG_FAILED:
	case SAGA_LOG_GAVE_UP:
	case SAGA_LOG_PARKED:
		cells[p] = 'X';
		break;
	case SAGA_LOG_CANCEL:
	case SAGA_LOG_CANCEL_REFUSED:
	case SAGA_LOG_OP_RETRY:
	case SAGA_LOG_RESOLVED:
	case SAGA_LOG_SKIPPED:
		cells[p] = '@';
		break;
	default:
		cells[p] = '*';
		break;
	}
}

static sagactl_style
sagactl_chart_style(char g)
{
	switch (g) {
	case '=':
	case 'o':
		return (SAGACTL_S_GREEN);
	case '~':
		return (SAGACTL_S_YELLOW);
	case 'X':
		return (SAGACTL_S_RED_BOLD);
	case '!':
		return (SAGACTL_S_MAGENTA);
	case '.':
	case '?':
		return (SAGACTL_S_DIM);
	case '>':
	case '@':
		return (SAGACTL_S_BOLD);
	case '*':
		return (SAGACTL_S_BLUE);
	default:
		return (SAGACTL_S_NONE);
	}
}

char *
sagactl_chart_render(
    const sagactl_out *o, const char *cells, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (const char *p = cells; *p != '\0';) {
		sagactl_style s   = sagactl_chart_style(*p);
		const char   *run = p;
		int           w;

		while (*p != '\0' && sagactl_chart_style(*p) == s) {
			p++;
		}
		w = snprintf(buf + n, len - n, "%s%.*s%s",
		    sagactl_out_style_on(o, s), (int) (p - run), run,
		    sagactl_out_style_off(o, s));
		if (w < 0 || (size_t) w >= len - n) {
			break;
		}
		n += (size_t) w;
	}
	return (buf);
}

char *
sagactl_chart_axis(const sagactl_chart *c, char *buf, size_t len)
{
	char   span[32];
	size_t w = c->width;

	sagactl_out_dur(c->t1 - c->t0, span, sizeof(span));
	if (strlen(span) + 2 > w) {
		snprintf(buf, len, "%s", span);
	} else {
		snprintf(buf, len, "0%*s", (int) (w - 1), span);
	}
	return (buf);
}

char *
sagactl_chart_legend(const sagactl_chart *c, char *buf, size_t len)
{
	static const struct {
		char        glyph;
		const char *meaning;
	} legend[] = {
		{ '=', "action" },
		{ '~', "compensation" },
		{ 'o', "ok" },
		{ 'X', "failed" },
		{ '!', "retry/timeout/error" },
		{ '.', "backoff wait" },
		{ '>', "in flight" },
		{ '?', "no outcome recorded" },
		{ '@', "operator/cancel" },
		{ '*', "saga event" },
	};
	bool   used[256] = { false };
	char   cells[1024];
	size_t n = 0;

	if (c->width >= sizeof(cells)) {
		buf[0] = '\0';
		return (buf);
	}
	for (size_t i = 0; i < c->n; i++) {
		sagactl_chart_row(c, i, cells);
		for (const char *p = cells; *p != '\0'; p++) {
			used[(unsigned char) *p] = true;
		}
	}
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(legend) / sizeof(legend[0]); i++) {
		int w;

		if (!used[(unsigned char) legend[i].glyph]) {
			continue;
		}
		w = snprintf(buf + n, len - n, "%s%c %s", n > 0 ? "  " : "",
		    legend[i].glyph, legend[i].meaning);
		if (w < 0 || (size_t) w >= len - n) {
			break;
		}
		n += (size_t) w;
	}
	return (buf);
}

int
sagactl_chart_log_type(const char *name)
{
	for (int t = SAGA_LOG_STARTED; t < SAGA_LOG_COUNT; t++) {
		if (strcmp(saga_log_name((saga_log_type) t), name) == 0) {
			return (t);
		}
	}
	return (-1);
}

int
sagactl_chart_outcome(const char *name)
{
	if (name == NULL) {
		return (-1);
	}
	for (int o = 0; o <= SAGA_OUTCOME_ERROR; o++) {
		if (strcmp(saga_outcome_name(o), name) == 0) {
			return (o);
		}
	}
	return (-1);
}
