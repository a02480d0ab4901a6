/* SPDX-License-Identifier: MIT */
/*
 * saga_bench: the load generator of the benchmark (scripts/bench.sh).
 *
 * Runs N sagas through sagad at concurrency C: C independent clients,
 * each starting one saga (START), waiting for it to end (WAIT, again
 * while the answer is not final), and starting the next, until N sagas
 * have been started. It records, per saga, the latency from the moment
 * START is sent to the moment a WAIT answer says the saga is over
 * (COMPLETED, COMPENSATED, FAILED or RESOLVED), and the outcome; prints a
 * progress line every second (done, sagas/s, p99 so far, in flight); and
 * writes the result as JSON (--json) and as shell assignments for
 * bench.sh (--env).
 *
 * Inputs are those of the demo create_order saga, drawn from --seed and
 * the saga's index (so a run is the same whatever the completion order):
 * --fail-pct percent of the orders are bob's (5000 cents, he has 500:
 * the payment fails and the saga compensates), the others buy one unit of
 * a SKU from --skus for a customer from --customers, for 100..999 cents.
 * bench.sh tops up the stock and the balances before the run so that
 * these never run out.
 *
 * --coordinator may be given up to SB_MAX_URLS times, one URL per sagad
 * instance sharing one database: client k then talks to URL k mod n only
 * (its STARTs and its WAITs), so that the load spreads evenly over the
 * instances.
 *
 * --start-only sends START alone (no WAIT) and stops once N sagas were
 * started: the memory probe of bench.sh uses it to leave N sagas in
 * flight inside sagad.
 *
 * DESIGN: asynchronous, like nng's demo/async client: --sockets REQ
 * sockets (one TCP connection each; socket j dials URL j mod n) and C
 * contexts spread over them (client k on a socket of URL k mod n), each
 * context a state machine (START -> WAIT... -> next saga) driven by its
 * aio callback on nng's threads. The callbacks share only atomic
 * counters and one mutex around the latency samples; the main thread
 * sleeps, prints progress and, at the end, sorts all samples for exact
 * percentiles (nearest rank).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "proto_msg.h"
#include "saga_err.h"

#define SB_MAX_SOCKETS          64
#define SB_MAX_URLS             16
#define SB_MAX_LIST             64
/* Seconds of per-second throughput kept; back-off before a START refused
 * with EOVERLOAD or EUNAVAIL is sent again. */
#define SB_TIMELINE_MAX         3600
#define SB_BACKOFF_MS           20
#define SB_MAX_TRANSPORT_ERRORS 3

/* Outcomes of one saga, as recorded. */
typedef enum sb_outcome {
	SB_COMPLETED,
	SB_COMPENSATED,
	SB_FAILED,
	SB_RESOLVED,
	SB_STARTED, /* --start-only */
	SB_NOUTCOMES,
} sb_outcome;

static const char *const sb_outcome_names[SB_NOUTCOMES] = {
	[SB_COMPLETED]   = "COMPLETED",
	[SB_COMPENSATED] = "COMPENSATED",
	[SB_FAILED]      = "FAILED",
	[SB_RESOLVED]    = "RESOLVED",
	[SB_STARTED]     = "STARTED",
};

typedef enum sb_state {
	SB_START_SEND,
	SB_START_RECV,
	SB_WAIT_SEND,
	SB_WAIT_RECV,
	SB_BACKOFF_START,
	SB_BACKOFF_WAIT,
} sb_state;

typedef struct sb_sample {
	uint32_t lat_us; /* START sent -> final answer */
	uint32_t start_us; /* START sent -> START answered */
	uint8_t  outcome; /* sb_outcome */
	bool     fail_input; /* bob's order (sb_fail_input) */
} sb_sample;

typedef struct sb_opts {
	const char *urls[SB_MAX_URLS];
	int         nurls;
	const char *saga;
	const char *json;
	const char *env;
	const char *customers[SB_MAX_LIST];
	int         ncustomers;
	const char *skus[SB_MAX_LIST];
	int         nskus;
	uint64_t    n;
	int         c;
	int         sockets;
	uint64_t    seed;
	int         fail_pct;
	int64_t     wait_ms;
	int64_t     start_timeout_ms;
	bool        keys;
	bool        start_only;
	bool        start_wait; /* START carries timeout_ms = wait_ms */
	bool        expect_demo; /* bob's orders compensate (sb_report) */
	bool        quiet;
} sb_opts;

typedef struct sb_slot {
	nng_ctx  ctx;
	nng_aio *aio;
	sb_state state;
	uint64_t idx; /* saga being run */
	int64_t  t0_us; /* when its first START was sent */
	uint32_t start_us; /* START latency */
	saga_id  id;
	int      transport_errors;
} sb_slot;

/* Everything the callbacks share. */
static sb_opts         sb_o;
static nng_socket      sb_socks[SB_MAX_SOCKETS];
static sb_slot        *sb_slots;
static atomic_ullong   sb_next; /* next saga index to start */
static atomic_ullong   sb_overloaded; /* START refused (EOVERLOAD, ...) */
static atomic_ullong   sb_start_errors;
static atomic_ullong   sb_wait_errors;
static atomic_ullong   sb_rewaits; /* WAIT answered before the end */
static atomic_uint     sb_inflight;
static int64_t         sb_t0_us;
static pthread_mutex_t sb_mtx  = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  sb_cond = PTHREAD_COND_INITIALIZER;
static sb_sample      *sb_samples; /* in completion order, under sb_mtx */
static uint64_t        sb_ndone; /* samples, under sb_mtx */
static int             sb_active; /* slots still running, under sb_mtx */
static uint32_t        sb_timeline[SB_TIMELINE_MAX]; /* under sb_mtx */
static char            sb_last_error[256]; /* under sb_mtx */

static int64_t
sb_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

static double
sb_wall_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((double) ts.tv_sec + (double) ts.tv_nsec / 1e9);
}

/* sb_mix is splitmix64's finaliser: the input of saga idx is drawn from
 * sb_mix(seed, idx, k), independent of the order of completion. */
static uint64_t
sb_mix(uint64_t seed, uint64_t idx, uint64_t k)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (idx * 8 + k + 1);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

static void
sb_note_error(const char *what, const char *detail)
{
	pthread_mutex_lock(&sb_mtx);
	snprintf(sb_last_error, sizeof(sb_last_error), "%.40s: %.200s", what,
	    detail);
	pthread_mutex_unlock(&sb_mtx);
}

/* sb_fail_input tells whether saga idx is one of the --fail-pct orders
 * made to fail at payment. */
static bool
sb_fail_input(uint64_t idx)
{
	return ((int) (sb_mix(sb_o.seed, idx, 0) % 100) < sb_o.fail_pct);
}

/* sb_input encodes the input of saga idx into b. */
static int
sb_input(uint64_t idx, proto_buf *b)
{
	proto_obj *o = NULL;
	int        rv;
	bool       fail = sb_fail_input(idx);
	if ((rv = proto_obj_alloc(&o)) != 0) {
		return (rv);
	}
	if (fail) {
		/* bob has 500 cents: the payment fails, the saga
		 * compensates. */
		rv = proto_obj_put_str(o, "customer_id", "bob");
		rv = rv ? rv : proto_obj_put_str(o, "sku", sb_o.skus[0]);
		rv = rv ? rv : proto_obj_put_int(o, "amount", 5000);
	} else {
		rv = proto_obj_put_str(o, "customer_id",
		    sb_o.customers[sb_mix(sb_o.seed, idx, 1)
		        % (uint64_t) sb_o.ncustomers]);
		rv = rv ? rv
		        : proto_obj_put_str(o, "sku",
		            sb_o.skus[sb_mix(sb_o.seed, idx, 2)
		                % (uint64_t) sb_o.nskus]);
		rv = rv ? rv
		        : proto_obj_put_int(o, "amount",
		            100 + (int64_t) (sb_mix(sb_o.seed, idx, 3) % 900));
	}
	rv = rv ? rv : proto_obj_put_int(o, "qty", 1);
	rv = rv ? rv : proto_obj_put_str(o, "address", "1 Bench Street");
	rv = rv ? rv : proto_obj_encode(o, b);
	proto_obj_free(o);
	return (rv);
}

/* sb_msg encodes m into a new nng message. */
static int
sb_msg(const proto_msg *m, nng_msg **out)
{
	proto_buf b;
	nng_msg  *msg = NULL;
	int       rv;

	proto_buf_init(&b);
	if ((rv = proto_msg_encode(m, &b)) != 0) {
		proto_buf_fini(&b);
		return (rv);
	}
	if (nng_msg_alloc(&msg, 0) != 0
	    || nng_msg_append(msg, b.data, b.len) != 0) {
		nng_msg_free(msg);
		proto_buf_fini(&b);
		return (SAGA_ENOMEM);
	}
	proto_buf_fini(&b);
	*out = msg;
	return (0);
}

/* sb_slot_finish: the slot has nothing more to do. */
static void
sb_slot_finish(void)
{
	pthread_mutex_lock(&sb_mtx);
	sb_active--;
	pthread_cond_broadcast(&sb_cond);
	pthread_mutex_unlock(&sb_mtx);
}

static void sb_slot_next(sb_slot *s);

/* sb_send_start sends the START of the slot's saga (again, after a
 * refusal: the first send's time stays the start of its latency). */
static void
sb_send_start(sb_slot *s)
{
	proto_msg m;
	proto_buf in;
	nng_msg  *msg = NULL;
	char      key[64];
	int       rv;

	proto_buf_init(&in);
	proto_msg_init(&m);
	m.type = PROTO_T_START;
	m.saga = proto_str_c(sb_o.saga);
	if (sb_o.keys) {
		snprintf(key, sizeof(key), "bench-%" PRIu64 "-%" PRIu64,
		    sb_o.seed, s->idx);
		m.key = proto_str_c(key);
	}
	if (sb_o.start_wait && !sb_o.start_only) {
		/* One round trip: sagad answers when the saga is over (a
		 * sagad that predates it answers at once, and WAIT
		 * follows). */
		m.timeout_ms = (uint64_t) sb_o.wait_ms;
	}
	if ((rv = sb_input(s->idx, &in)) != 0
	    || (m.input = proto_buf_raw(&in), rv = sb_msg(&m, &msg)) != 0) {
		proto_buf_fini(&in);
		sb_note_error("encoding START", saga_strerror(rv));
		atomic_fetch_add(&sb_start_errors, 1);
		sb_slot_next(s);
		return;
	}
	proto_buf_fini(&in);
	s->state = SB_START_SEND;
	nng_aio_set_timeout(s->aio,
	    (nng_duration) (sb_o.start_timeout_ms +
	        (m.timeout_ms > 0 ? sb_o.wait_ms : 0)));
	nng_aio_set_msg(s->aio, msg);
	nng_ctx_send(s->ctx, s->aio);
}

/* sb_send_wait sends a WAIT for the slot's saga. */
static void
sb_send_wait(sb_slot *s)
{
	proto_msg m;
	nng_msg  *msg = NULL;
	int       rv;

	proto_msg_init(&m);
	m.type       = PROTO_T_WAIT;
	m.id         = s->id;
	m.timeout_ms = (uint64_t) sb_o.wait_ms;
	if ((rv = sb_msg(&m, &msg)) != 0) {
		sb_note_error("encoding WAIT", saga_strerror(rv));
		atomic_fetch_add(&sb_wait_errors, 1);
		sb_slot_next(s);
		return;
	}
	s->state = SB_WAIT_SEND;
	/* The answer comes at the latest wait_ms after sagad read the
	 * request: give it ample room. */
	nng_aio_set_timeout(s->aio, (nng_duration) (sb_o.wait_ms + 30000));
	nng_aio_set_msg(s->aio, msg);
	nng_ctx_send(s->ctx, s->aio);
}

/* sb_record keeps the sample of a saga that ended (or, with --start-only,
 * started). */
static void
sb_record(sb_slot *s, sb_outcome outcome)
{
	int64_t   now = sb_now_us();
	sb_sample smp;
	int64_t   sec;

	smp.lat_us     = (uint32_t) (now - s->t0_us);
	smp.start_us   = s->start_us;
	smp.outcome    = (uint8_t) outcome;
	smp.fail_input = sb_fail_input(s->idx);
	sec            = (now - sb_t0_us) / 1000000;
	pthread_mutex_lock(&sb_mtx);
	sb_samples[sb_ndone++] = smp;
	if (sec >= 0 && sec < SB_TIMELINE_MAX) {
		sb_timeline[sec]++;
	}
	pthread_mutex_unlock(&sb_mtx);
}

/* sb_slot_next starts the next saga on slot s, or retires the slot when
 * N sagas have been started. */
static void
sb_slot_next(sb_slot *s)
{
	uint64_t idx = atomic_fetch_add(&sb_next, 1);

	if (idx >= sb_o.n) {
		atomic_fetch_sub(&sb_inflight, 1);
		sb_slot_finish();
		return;
	}
	s->idx              = idx;
	s->t0_us            = sb_now_us();
	s->transport_errors = 0;
	sb_send_start(s);
}

/* sb_outcome_of maps a final state name to its outcome; -1 when the saga
 * is not over. */
static int
sb_outcome_of(proto_str state)
{
	for (int i = 0; i < SB_STARTED; i++) {
		if (proto_str_eq(state, sb_outcome_names[i])) {
			return (i);
		}
	}
	return (-1);
}

/* sb_on_reply handles the answer to the slot's START or WAIT. */
static void
sb_on_reply(sb_slot *s, nng_msg *msg)
{
	proto_msg   r;
	proto_error perr;
	bool        start = s->state == SB_START_RECV;
	int         rv, out;
	char        detail[256];

	rv = proto_msg_decode(
	    nng_msg_body(msg), nng_msg_len(msg), NULL, &r, &perr);
	if (rv != 0) {
		sb_note_error(
		    start ? "START answer" : "WAIT answer", perr.msg);
		atomic_fetch_add(
		    start ? &sb_start_errors : &sb_wait_errors, 1);
		sb_slot_next(s);
		return;
	}
	if (r.type == PROTO_T_ERROR) {
		snprintf(detail, sizeof(detail), "%s: %.*s",
		    saga_strerror((int) r.code), (int) r.message.len,
		    r.message.ptr ? r.message.ptr : "");
		if (r.code == SAGA_EOVERLOAD || r.code == SAGA_EUNAVAIL) {
			/* Refused for now: try the same request again. */
			atomic_fetch_add(&sb_overloaded, 1);
			proto_msg_fini(&r);
			s->state = start ? SB_BACKOFF_START : SB_BACKOFF_WAIT;
			nng_sleep_aio(SB_BACKOFF_MS, s->aio);
			return;
		}
		proto_msg_fini(&r);
		sb_note_error(
		    start ? "START refused" : "WAIT refused", detail);
		atomic_fetch_add(
		    start ? &sb_start_errors : &sb_wait_errors, 1);
		sb_slot_next(s);
		return;
	}
	if (r.type != PROTO_T_SAGA) {
		sb_note_error(start ? "START answer" : "WAIT answer",
		    proto_type_name(r.type));
		proto_msg_fini(&r);
		atomic_fetch_add(
		    start ? &sb_start_errors : &sb_wait_errors, 1);
		sb_slot_next(s);
		return;
	}
	out = sb_outcome_of(r.state);
	if (start) {
		s->id       = r.id;
		s->start_us = (uint32_t) (sb_now_us() - s->t0_us);
	}
	proto_msg_fini(&r);
	if (start && sb_o.start_only) {
		sb_record(s, SB_STARTED);
		sb_slot_next(s);
		return;
	}
	if (out < 0) {
		if (!start) {
			atomic_fetch_add(&sb_rewaits, 1);
		}
		sb_send_wait(s);
		return;
	}
	sb_record(s, (sb_outcome) out);
	sb_slot_next(s);
}

/* sb_cb runs on an nng thread when a slot's send, receive or back-off
 * finished. */
static void
sb_cb(void *arg)
{
	sb_slot *s  = arg;
	int      rv = nng_aio_result(s->aio);
	nng_msg *msg;

	switch (s->state) {
	case SB_START_SEND:
	case SB_WAIT_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(s->aio));
			nng_aio_set_msg(s->aio, NULL);
			break;
		}
		s->state
		    = s->state == SB_START_SEND ? SB_START_RECV : SB_WAIT_RECV;
		nng_ctx_recv(s->ctx, s->aio);
		return;
	case SB_START_RECV:
	case SB_WAIT_RECV:
		if (rv != 0) {
			break;
		}
		msg = nng_aio_get_msg(s->aio);
		nng_aio_set_msg(s->aio, NULL);
		sb_on_reply(s, msg);
		nng_msg_free(msg);
		return;
	case SB_BACKOFF_START:
	case SB_BACKOFF_WAIT:
		if (rv != 0) {
			break;
		}
		if (s->state == SB_BACKOFF_START) {
			sb_send_start(s);
		} else {
			sb_send_wait(s);
		}
		return;
	}
	/* A transport failure (timeout, closed). */
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		atomic_fetch_sub(&sb_inflight, 1);
		sb_slot_finish();
		return;
	}
	sb_note_error(s->state == SB_START_SEND || s->state == SB_START_RECV
	        ? "START"
	        : "WAIT",
	    nng_strerror(rv));
	if (s->state == SB_START_SEND || s->state == SB_START_RECV
	    || ++s->transport_errors >= SB_MAX_TRANSPORT_ERRORS) {
		/* A START without an answer may or may not have started a
		 * saga: counted as an error, not retried. */
		atomic_fetch_add(
		    s->state == SB_START_SEND || s->state == SB_START_RECV
		        ? &sb_start_errors
		        : &sb_wait_errors,
		    1);
		sb_slot_next(s);
		return;
	}
	sb_send_wait(s);
}

static int
sb_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

	return (x < y ? -1 : x > y);
}

/* sb_pct is the nearest-rank percentile p (0..100, in steps of 0.1) of
 * n sorted values, in milliseconds. The rank is computed in integers:
 * ceil(99.9 / 100.0 * 1000) is 1000 in doubles (99.9 is not exact), which
 * made p999 the maximum. */
static double
sb_pct(const uint32_t *v, size_t n, double p)
{
	uint64_t tenths = (uint64_t) llround(p * 10.0);
	size_t   rank;

	if (n == 0) {
		return (0.0);
	}
	rank = (size_t) ((tenths * (uint64_t) n + 999) / 1000);
	if (rank < 1) {
		rank = 1;
	}
	if (rank > n) {
		rank = n;
	}
	return ((double) v[rank - 1] / 1000.0);
}

typedef struct sb_dist {
	size_t n;
	double min, p50, p90, p95, p99, p999, max, mean;
} sb_dist;

/* sb_dist_of sorts v (n values in microseconds) and summarises it. */
static sb_dist
sb_dist_of(uint32_t *v, size_t n)
{
	sb_dist d;
	double  sum = 0;

	memset(&d, 0, sizeof(d));
	d.n = n;
	if (n == 0) {
		return (d);
	}
	qsort(v, n, sizeof(*v), sb_cmp_u32);
	for (size_t i = 0; i < n; i++) {
		sum += v[i];
	}
	d.min  = v[0] / 1000.0;
	d.p50  = sb_pct(v, n, 50);
	d.p90  = sb_pct(v, n, 90);
	d.p95  = sb_pct(v, n, 95);
	d.p99  = sb_pct(v, n, 99);
	d.p999 = sb_pct(v, n, 99.9);
	d.max  = v[n - 1] / 1000.0;
	d.mean = sum / (double) n / 1000.0;
	return (d);
}

static void
sb_dist_json(FILE *f, const char *name, const sb_dist *d, bool comma)
{
	fprintf(f,
	    "  \"%s\": {\"n\": %zu, \"min\": %.3f, \"p50\": %.3f, "
	    "\"p90\": %.3f, \"p95\": %.3f, \"p99\": %.3f, \"p999\": %.3f, "
	    "\"max\": %.3f, \"mean\": %.3f}%s\n",
	    name, d->n, d->min, d->p50, d->p90, d->p95, d->p99, d->p999,
	    d->max, d->mean, comma ? "," : "");
}

/* sb_progress prints one progress line; p99 from a sorted copy of the
 * samples so far. */
static void
sb_progress(uint64_t *last_done, int64_t *last_us, bool tty)
{
	uint64_t  done, n;
	uint32_t *v;
	int64_t   now = sb_now_us();
	double    el  = (double) (now - sb_t0_us) / 1e6;
	double    dt  = (double) (now - *last_us) / 1e6;
	double    p99 = 0;

	pthread_mutex_lock(&sb_mtx);
	n = done = sb_ndone;
	v        = malloc((n ? n : 1) * sizeof(*v));
	if (v != NULL) {
		for (uint64_t i = 0; i < n; i++) {
			v[i] = sb_samples[i].lat_us;
		}
	}
	pthread_mutex_unlock(&sb_mtx);
	if (v != NULL && n > 0) {
		qsort(v, n, sizeof(*v), sb_cmp_u32);
		p99 = sb_pct(v, n, 99);
	}
	free(v);
	fprintf(stderr,
	    "%s[%6.1fs] %" PRIu64 "/%" PRIu64 " sagas  %.0f/s (last %.0f/s)"
	    "  p99 %.1f ms  in flight %u  errors %llu%s",
	    tty ? "\r" : "", el, done, sb_o.n, el > 0 ? done / el : 0,
	    dt > 0 ? (double) (done - *last_done) / dt : 0, p99,
	    atomic_load(&sb_inflight),
	    (unsigned long long) (atomic_load(&sb_start_errors)
	        + atomic_load(&sb_wait_errors)),
	    tty ? "\033[K" : "\n");
	*last_done = done;
	*last_us   = now;
}

static int
sb_list(const char *arg, const char **out, int *n)
{
	char *copy = strdup(arg), *tok, *save = NULL;

	if (copy == NULL) {
		return (SAGA_ENOMEM);
	}
	*n = 0;
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (*n == SB_MAX_LIST) {
			break;
		}
		/* Kept for the life of the process (argv-like). */
		out[(*n)++] = strdup(tok);
	}
	free(copy);
	return (*n > 0 ? 0 : SAGA_EINVAL);
}

static void
sb_usage(FILE *f)
{
	fprintf(f,
	    "Usage: saga_bench --coordinator URL [options]\n"
	    "Runs N sagas through sagad at concurrency C (START, then WAIT\n"
	    "until the saga is over) and reports throughput and latency.\n"
	    "  --coordinator URL  sagad's client API (or $SAGA_COORDINATOR);\n"
	    "                     up to 16 times, one per sagad instance:\n"
	    "                     client k then uses URL k mod n\n"
	    "  --sagas N          sagas to run (default 1000)\n"
	    "  --concurrency C    sagas in flight at once (default 64)\n"
	    "  --sockets S        client connections (default min(C, 8));\n"
	    "                     at least one per URL (min(n, C)), socket j\n"
	    "                     dials URL j mod n\n"
	    "  --saga NAME        saga definition (default create_order)\n"
	    "  --seed S           seed of the input mix (default 1)\n"
	    "  --fail-pct P       percent of orders failing at payment\n"
	    "                     (bob's; default 10)\n"
	    "  --customers LIST   paying customers (default alice,carol)\n"
	    "  --skus LIST        SKUs bought (default WIDGET,GIZMO)\n"
	    "  --keys             send an idempotency key with each START\n"
	    "  --wait-ms MS       WAIT timeout (default 30000)\n"
	    "  --start-only       send START only, do not wait for the end\n"
	    "  --start-wait       START waits for the end (timeout_ms =\n"
	    "                     --wait-ms): one round trip per saga; the\n"
	    "                     START latency is then the saga's\n"
	    "  --expect-demo      the --fail-pct orders (bob's) must end\n"
	    "                     COMPENSATED, as the demo's payments make\n"
	    "                     them; without it, every saga COMPLETED;\n"
	    "                     the others are counted as unexpected\n"
	    "  --json FILE        write the result as JSON\n"
	    "  --env FILE         write the result as shell assignments\n"
	    "  --quiet            no progress line\n"
	    "Exit status: 0 when every saga ended (or, with --start-only,\n"
	    "started), 1 when some could not be run, 2 on bad usage.\n");
}

/* sb_sock_of is the socket of client k: one of the sockets dialling URL
 * u = k mod n (sockets u, u + n, u + 2n, ... below S), in turn. */
static int
sb_sock_of(int k)
{
	int n = sb_o.nurls, u = k % n;
	int per_url = (sb_o.sockets - u + n - 1) / n; /* j < S, j mod n == u */

	return (u + n * ((k / n) % per_url));
}

static int
sb_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char              *end;
	unsigned long long v;

	errno = 0;
	v     = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < min || v > max) {
		return (SAGA_EINVAL);
	}
	*out = v;
	return (0);
}

static int
sb_args(int argc, char **argv)
{
	uint64_t    v;
	const char *env_url = getenv("SAGA_COORDINATOR");

	sb_o.saga             = "create_order";
	sb_o.n                = 1000;
	sb_o.c                = 64;
	sb_o.seed             = 1;
	sb_o.fail_pct         = 10;
	sb_o.wait_ms          = 30000;
	sb_o.start_timeout_ms = 60000;
	sb_o.customers[0]     = "alice";
	sb_o.customers[1]     = "carol";
	sb_o.ncustomers       = 2;
	sb_o.skus[0]          = "WIDGET";
	sb_o.skus[1]          = "GIZMO";
	sb_o.nskus            = 2;
	for (int i = 1; i < argc; i++) {
		const char *a   = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		int         rv  = 0;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			sb_usage(stdout);
			exit(0);
		} else if (strcmp(a, "--keys") == 0) {
			sb_o.keys = true;
			continue;
		} else if (strcmp(a, "--start-only") == 0) {
			sb_o.start_only = true;
			continue;
		} else if (strcmp(a, "--start-wait") == 0) {
			sb_o.start_wait = true;
			continue;
		} else if (strcmp(a, "--expect-demo") == 0) {
			sb_o.expect_demo = true;
			continue;
		} else if (strcmp(a, "--quiet") == 0) {
			sb_o.quiet = true;
			continue;
		}
		if (val == NULL) {
			fprintf(stderr, "saga_bench: %s needs a value\n", a);
			return (SAGA_EINVAL);
		}
		i++;
		if (strcmp(a, "--coordinator") == 0) {
			if (sb_o.nurls == SB_MAX_URLS) {
				fprintf(stderr,
				    "saga_bench: at most %d --coordinator "
				    "URLs\n",
				    SB_MAX_URLS);
				return (SAGA_EINVAL);
			}
			sb_o.urls[sb_o.nurls++] = val;
		} else if (strcmp(a, "--sagas") == 0) {
			rv = sb_parse_u64(val, 1, 100000000, &sb_o.n);
		} else if (strcmp(a, "--concurrency") == 0) {
			rv     = sb_parse_u64(val, 1, 100000, &v);
			sb_o.c = (int) v;
		} else if (strcmp(a, "--sockets") == 0) {
			rv = sb_parse_u64(val, 1, SB_MAX_SOCKETS, &v);
			sb_o.sockets = (int) v;
		} else if (strcmp(a, "--saga") == 0) {
			sb_o.saga = val;
		} else if (strcmp(a, "--seed") == 0) {
			rv = sb_parse_u64(val, 0, UINT64_MAX, &sb_o.seed);
		} else if (strcmp(a, "--fail-pct") == 0) {
			rv            = sb_parse_u64(val, 0, 100, &v);
			sb_o.fail_pct = (int) v;
		} else if (strcmp(a, "--customers") == 0) {
			rv = sb_list(val, sb_o.customers, &sb_o.ncustomers);
		} else if (strcmp(a, "--skus") == 0) {
			rv = sb_list(val, sb_o.skus, &sb_o.nskus);
		} else if (strcmp(a, "--wait-ms") == 0) {
			rv           = sb_parse_u64(val, 1, 3600000, &v);
			sb_o.wait_ms = (int64_t) v;
		} else if (strcmp(a, "--json") == 0) {
			sb_o.json = val;
		} else if (strcmp(a, "--env") == 0) {
			sb_o.env = val;
		} else {
			fprintf(stderr, "saga_bench: unknown option %s\n", a);
			return (SAGA_EINVAL);
		}
		if (rv != 0) {
			fprintf(stderr,
			    "saga_bench: invalid value \"%s\" for %s\n", val,
			    a);
			return (rv);
		}
	}
	if (sb_o.nurls == 0 && env_url != NULL && env_url[0] != '\0') {
		sb_o.urls[sb_o.nurls++] = env_url;
	}
	if (sb_o.nurls == 0) {
		fprintf(stderr, "saga_bench: give --coordinator URL\n");
		return (SAGA_EINVAL);
	}
	if (sb_o.sockets == 0) {
		sb_o.sockets = sb_o.c < 8 ? sb_o.c : 8;
	}
	if (sb_o.sockets > sb_o.c) {
		sb_o.sockets = sb_o.c;
	}
	/* Every URL that has a client (URL u has one when u < C) needs a
	 * socket of its own. */
	if (sb_o.sockets < sb_o.nurls) {
		sb_o.sockets = sb_o.nurls < sb_o.c ? sb_o.nurls : sb_o.c;
	}
	return (0);
}

static double
sb_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
	    + (double) ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
}

/* sb_json_str writes s as the inside of a JSON string (control characters
 * as spaces). */
static void
sb_json_str(FILE *f, const char *s)
{
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
		}
		fputc((unsigned char) *p < 0x20 ? ' ' : *p, f);
	}
}

/* sb_report writes the JSON and env results and a one-line summary. */
static void
sb_report(double wall_s, double cpu_s, double t0_unix, double t1_unix)
{
	uint64_t  counts[SB_NOUTCOMES] = { 0 };
	uint32_t *all = NULL, *st = NULL, *by[SB_NOUTCOMES] = { NULL };
	size_t    nby[SB_NOUTCOMES] = { 0 };
	sb_dist   dall, dstart, dby[SB_NOUTCOMES];
	uint64_t  n = sb_ndone, errors, unexpected = 0;
	FILE     *f;
	int       last_sec = 0;

	all = malloc((n ? n : 1) * sizeof(*all));
	st  = malloc((n ? n : 1) * sizeof(*st));
	for (int k = 0; k < SB_NOUTCOMES; k++) {
		by[k] = malloc((n ? n : 1) * sizeof(*by[k]));
	}
	for (uint64_t i = 0; i < n && all && st; i++) {
		int k = sb_samples[i].outcome;

		all[i] = sb_samples[i].lat_us;
		st[i]  = sb_samples[i].start_us;
		counts[k]++;
		/* A saga that COMPLETED where its input makes it compensate,
		 * or the other way round (FAILED and RESOLVED are counted as
		 * such). */
		if ((k == SB_COMPLETED || k == SB_COMPENSATED) &&
		    (k == SB_COMPENSATED) !=
		        (sb_o.expect_demo && sb_samples[i].fail_input)) {
			unexpected++;
		}
		if (by[k] != NULL) {
			by[k][nby[k]++] = sb_samples[i].lat_us;
		}
	}
	dall   = sb_dist_of(all, all && st ? n : 0);
	dstart = sb_dist_of(st, all && st ? n : 0);
	for (int k = 0; k < SB_NOUTCOMES; k++) {
		dby[k] = sb_dist_of(by[k], nby[k]);
	}
	errors = atomic_load(&sb_start_errors) + atomic_load(&sb_wait_errors);
	for (int s = 0; s < SB_TIMELINE_MAX; s++) {
		if (sb_timeline[s] != 0) {
			last_sec = s + 1;
		}
	}

	if (sb_o.json != NULL) {
		if ((f = fopen(sb_o.json, "w")) == NULL) {
			perror(sb_o.json);
		} else {
			fprintf(f, "{\n");
			fprintf(f, "  \"tool\": \"saga_bench\",\n");
			fprintf(f, "  \"saga\": \"%s\",\n", sb_o.saga);
			fprintf(f, "  \"sagas\": %" PRIu64 ",\n", sb_o.n);
			fprintf(f, "  \"concurrency\": %d,\n", sb_o.c);
			fprintf(f, "  \"sockets\": %d,\n", sb_o.sockets);
			fprintf(f, "  \"coordinators\": [");
			for (int u = 0; u < sb_o.nurls; u++) {
				fprintf(f, "%s\"", u ? ", " : "");
				sb_json_str(f, sb_o.urls[u]);
				fprintf(f, "\"");
			}
			fprintf(f, "],\n");
			fprintf(f, "  \"seed\": %" PRIu64 ",\n", sb_o.seed);
			fprintf(f, "  \"fail_pct\": %d,\n", sb_o.fail_pct);
			fprintf(f, "  \"start_only\": %s,\n",
			    sb_o.start_only ? "true" : "false");
			fprintf(f, "  \"start_wait\": %s,\n",
			    sb_o.start_wait ? "true" : "false");
			fprintf(f, "  \"started_at_unix\": %.3f,\n", t0_unix);
			fprintf(f, "  \"ended_at_unix\": %.3f,\n", t1_unix);
			fprintf(f, "  \"wall_s\": %.3f,\n", wall_s);
			fprintf(f, "  \"done\": %" PRIu64 ",\n", n);
			fprintf(f, "  \"sagas_per_s\": %.1f,\n",
			    wall_s > 0 ? (double) n / wall_s : 0);
			fprintf(f, "  \"outcomes\": {");
			for (int k = 0; k < SB_NOUTCOMES; k++) {
				fprintf(f, "%s\"%s\": %" PRIu64, k ? ", " : "",
				    sb_outcome_names[k], counts[k]);
			}
			fprintf(f, "},\n");
			fprintf(f, "  \"unexpected\": %" PRIu64 ",\n",
			    unexpected);
			fprintf(f,
			    "  \"errors\": {\"start\": %llu, \"wait\": %llu, "
			    "\"refused_and_retried\": %llu, "
			    "\"rewaits\": %llu},\n",
			    (unsigned long long) atomic_load(&sb_start_errors),
			    (unsigned long long) atomic_load(&sb_wait_errors),
			    (unsigned long long) atomic_load(&sb_overloaded),
			    (unsigned long long) atomic_load(&sb_rewaits));
			fprintf(f, "  \"client_cpu_s\": %.3f,\n", cpu_s);
			sb_dist_json(f, "latency_ms", &dall, true);
			sb_dist_json(f, "start_latency_ms", &dstart, true);
			fprintf(f, "  \"latency_ms_by_outcome\": {\n");
			for (int k = 0, first = 1; k < SB_NOUTCOMES; k++) {
				if (dby[k].n == 0) {
					continue;
				}
				fprintf(f, "%s", first ? "" : ",\n");
				first = 0;
				fprintf(f,
				    "    \"%s\": {\"n\": %zu, \"p50\": %.3f, "
				    "\"p95\": %.3f, \"p99\": %.3f, "
				    "\"max\": %.3f}",
				    sb_outcome_names[k], dby[k].n, dby[k].p50,
				    dby[k].p95, dby[k].p99, dby[k].max);
			}
			fprintf(f, "\n  },\n");
			fprintf(f, "  \"per_second\": [");
			for (int s = 0; s < last_sec; s++) {
				fprintf(
				    f, "%s%u", s ? ", " : "", sb_timeline[s]);
			}
			fprintf(f, "],\n");
			fprintf(f, "  \"last_error\": \"");
			sb_json_str(f, sb_last_error);
			fprintf(f, "\"\n}\n");
			fclose(f);
		}
	}
	if (sb_o.env != NULL) {
		if ((f = fopen(sb_o.env, "w")) == NULL) {
			perror(sb_o.env);
		} else {
			fprintf(f, "sb_sagas=%" PRIu64 "\n", sb_o.n);
			fprintf(f, "sb_coordinators=%d\n", sb_o.nurls);
			fprintf(f, "sb_done=%" PRIu64 "\n", n);
			fprintf(f, "sb_wall_s=%.3f\n", wall_s);
			fprintf(f, "sb_t0_unix=%.3f\n", t0_unix);
			fprintf(f, "sb_t1_unix=%.3f\n", t1_unix);
			fprintf(f, "sb_sagas_per_s=%.1f\n",
			    wall_s > 0 ? (double) n / wall_s : 0);
			fprintf(f,
			    "sb_p50_ms=%.3f\nsb_p95_ms=%.3f\n"
			    "sb_p99_ms=%.3f\nsb_max_ms=%.3f\n"
			    "sb_mean_ms=%.3f\n",
			    dall.p50, dall.p95, dall.p99, dall.max, dall.mean);
			fprintf(f,
			    "sb_start_p50_ms=%.3f\nsb_start_p99_ms=%.3f\n",
			    dstart.p50, dstart.p99);
			fprintf(f, "sb_completed=%" PRIu64 "\n",
			    counts[SB_COMPLETED]);
			fprintf(f, "sb_compensated=%" PRIu64 "\n",
			    counts[SB_COMPENSATED]);
			fprintf(f, "sb_failed=%" PRIu64 "\n",
			    counts[SB_FAILED] + counts[SB_RESOLVED]);
			fprintf(f, "sb_unexpected=%" PRIu64 "\n", unexpected);
			fprintf(
			    f, "sb_started=%" PRIu64 "\n", counts[SB_STARTED]);
			fprintf(f, "sb_errors=%" PRIu64 "\n", errors);
			fprintf(f, "sb_refused=%llu\n",
			    (unsigned long long) atomic_load(&sb_overloaded));
			fprintf(f, "sb_client_cpu_s=%.3f\n", cpu_s);
			fclose(f);
		}
	}
	if (!sb_o.quiet) {
		fprintf(stderr,
		    "saga_bench: %" PRIu64 " sagas in %.2f s: %.1f sagas/s;"
		    " latency p50 %.2f p95 %.2f p99 %.2f max %.2f ms;"
		    " completed %" PRIu64 " compensated %" PRIu64
		    " failed %" PRIu64 " errors %" PRIu64 "\n",
		    n, wall_s, wall_s > 0 ? (double) n / wall_s : 0, dall.p50,
		    dall.p95, dall.p99, dall.max, counts[SB_COMPLETED],
		    counts[SB_COMPENSATED],
		    counts[SB_FAILED] + counts[SB_RESOLVED], errors);
		if (errors > 0) {
			fprintf(stderr, "saga_bench: last error: %s\n",
			    sb_last_error);
		}
		if (unexpected > 0) {
			fprintf(stderr,
			    "saga_bench: %" PRIu64 " saga(s) ended otherwise "
			    "than their input makes them (%s)\n",
			    unexpected,
			    sb_o.expect_demo ? "bob's orders compensate, the "
			                       "others complete"
			                     : "every saga completes");
		}
	}
	free(all);
	free(st);
	for (int k = 0; k < SB_NOUTCOMES; k++) {
		free(by[k]);
	}
}

int
main(int argc, char **argv)
{
	int             rv, nsock = 0, nslots = 0;
	bool            tty;
	uint64_t        last_done = 0;
	int64_t         last_us, t1_us;
	double          cpu0, t0_unix;
	struct timespec ts;

	if (sb_args(argc, argv) != 0) {
		sb_usage(stderr);
		return (2);
	}
	tty = isatty(STDERR_FILENO) && !sb_o.quiet;
	if ((sb_samples = calloc(sb_o.n, sizeof(*sb_samples))) == NULL
	    || (sb_slots = calloc((size_t) sb_o.c, sizeof(*sb_slots)))
	        == NULL) {
		fprintf(stderr, "saga_bench: out of memory\n");
		free(sb_samples);
		return (1);
	}
	for (nsock = 0; nsock < sb_o.sockets; nsock++) {
		nng_socket *s = &sb_socks[nsock];

		if ((rv = nng_req0_open(s)) != 0) {
			fprintf(stderr, "saga_bench: %s\n", nng_strerror(rv));
			goto fail;
		}
		/* One request, one answer: no resend by nng. */
		nng_socket_set_ms(
		    *s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
		nng_socket_set_ms(*s, NNG_OPT_RECONNMINT, 20);
		nng_socket_set_ms(*s, NNG_OPT_RECONNMAXT, 200);
		nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ, 16 * 1024 * 1024);
		if ((rv = nng_dial(*s, sb_o.urls[nsock % sb_o.nurls], NULL,
		         0)) != 0) {
			fprintf(stderr, "saga_bench: %s: %s\n",
			    sb_o.urls[nsock % sb_o.nurls], nng_strerror(rv));
			nsock++;
			goto fail;
		}
	}
	for (nslots = 0; nslots < sb_o.c; nslots++) {
		sb_slot *s = &sb_slots[nslots];

		if ((rv = nng_ctx_open(&s->ctx, sb_socks[sb_sock_of(nslots)]))
		        != 0
		    || (rv = nng_aio_alloc(&s->aio, sb_cb, s)) != 0) {
			fprintf(stderr, "saga_bench: %s\n", nng_strerror(rv));
			goto fail;
		}
	}

	cpu0     = sb_cpu_s();
	t0_unix  = sb_wall_unix();
	sb_t0_us = sb_now_us();
	last_us  = sb_t0_us;
	pthread_mutex_lock(&sb_mtx);
	sb_active = sb_o.c;
	pthread_mutex_unlock(&sb_mtx);
	atomic_store(&sb_inflight, (unsigned) sb_o.c);
	for (int i = 0; i < sb_o.c; i++) {
		sb_slot_next(&sb_slots[i]);
	}
	pthread_mutex_lock(&sb_mtx);
	while (sb_active > 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&sb_cond, &sb_mtx, &ts);
		if (sb_active > 0 && !sb_o.quiet
		    && sb_now_us() - last_us >= 1000000) {
			pthread_mutex_unlock(&sb_mtx);
			sb_progress(&last_done, &last_us, tty);
			pthread_mutex_lock(&sb_mtx);
		}
	}
	pthread_mutex_unlock(&sb_mtx);
	t1_us = sb_now_us();
	if (tty) {
		fprintf(stderr, "\r\033[K");
	}
	sb_report((double) (t1_us - sb_t0_us) / 1e6, sb_cpu_s() - cpu0,
	    t0_unix, t0_unix + (double) (t1_us - sb_t0_us) / 1e6);
	rv = (sb_ndone == sb_o.n) ? 0 : 1;
	for (int i = 0; i < sb_o.sockets; i++) {
		nng_close(sb_socks[i]);
	}
	for (int i = 0; i < nslots; i++) {
		nng_aio_free(sb_slots[i].aio);
	}
	free(sb_slots);
	free(sb_samples);
	return (rv);

fail:
	for (int i = 0; i < nsock; i++) {
		nng_close(sb_socks[i]);
	}
	for (int i = 0; i <= nslots && i < sb_o.c; i++) {
		nng_aio_free(sb_slots[i].aio);
	}
	free(sb_slots);
	free(sb_samples);
	return (1);
}
