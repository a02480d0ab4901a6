/* SPDX-License-Identifier: MIT */
/*
 * chaos_load: the steady load of the process-level chaos test
 * (scripts/chaos.sh): starts --sagas create_order sagas at --rate per
 * second through sagad's client API, a share of them designed to fail.
 *
 *   chaos_load --coordinator URL [--coordinator URL2 ...] --sagas N
 *              --rate R --out FILE
 *              [--seed S] [--concurrency C] [--poor P] [--scarce P]
 *              [--prefix K] [--give-up SECONDS]
 *
 * Order i (0..N-1) is a function of the seed and i alone:
 *   ok      alice or carol buys 1..3 WIDGET (10.00 each) or GIZMO (15.00);
 *   poor    bob (5.00 on his account) buys a widget for 10.00..50.00: the
 *           payment (the pivot) fails, the reservation is released, the
 *           order rejected;
 *   scarce  alice or carol buys 2..5 GADGET, of which there is one: the
 *           reservation fails, the order is rejected.
 * Each start carries the idempotency key PREFIX-i, so a start whose answer
 * was lost (sagad killed, database restarting, a timeout) is sent again
 * with the same key until sagad answers it: a key never makes two sagas.
 * Refusals that mean "later" (EUNAVAIL, EOVERLOAD, ECLOSED), EUNKNOWN
 * (the database went away during the start's commit: as a lost answer)
 * and transport errors are retried with a backoff; any other refusal is
 * counted as an error and the order abandoned.
 *
 * For each order it appends to --out, once answered:
 *   INDEX KEY SAGA_ID KIND CUSTOMER SKU QTY AMOUNT CREATED
 * With several --coordinator URLs (several sagad instances on one
 * database), order i goes to URL i mod n first, and each retry to the
 * next URL: a start whose instance died is answered by another.
 *
 * It also prints, at the end, one line of counts. Exit status 0 when every
 * order was answered, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto_json.h"
#include "proto_msg.h"
#include "saga_client.h"
#include "saga_err.h"
#include "saga_id.h"

#define CHAOS_LOAD_CALL_MS 5000
#define CHAOS_LOAD_MAX_URLS 16

typedef struct cl_opts {
	const char *urls[CHAOS_LOAD_MAX_URLS];
	int         nurls;
	const char *out;
	const char *prefix;
	uint64_t    seed;
	int64_t     sagas;
	double      rate;
	int64_t     conc;
	double      poor;
	double      scarce;
	int64_t     give_up_s;
} cl_opts;

typedef struct cl_order {
	const char *kind;
	const char *customer;
	const char *sku;
	int64_t     qty;
	int64_t     amount;
} cl_order;

static cl_opts              cl_o;
static FILE                *cl_out;
static pthread_mutex_t      cl_out_mtx = PTHREAD_MUTEX_INITIALIZER;
static atomic_int_fast64_t  cl_next;
static int64_t              cl_t0_us;
static atomic_uint_fast64_t cl_started, cl_replayed, cl_retries, cl_timeouts,
    cl_unavail, cl_overload, cl_closed, cl_errors, cl_abandoned;

static int64_t
chaos_load_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

static void
chaos_load_sleep_us(int64_t us)
{
	struct timespec ts;

	if (us <= 0) {
		return;
	}
	ts.tv_sec  = (time_t) (us / 1000000);
	ts.tv_nsec = (long) (us % 1000000) * 1000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
}

/* splitmix64 of the seed and the index: order i's own random numbers. */
static uint64_t
chaos_load_mix(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ull);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return (x ^ (x >> 31));
}

static double
chaos_load_rand(uint64_t *s)
{
	return ((double) (chaos_load_mix(s) >> 11) / 9007199254740992.0);
}

static int64_t
chaos_load_between(uint64_t *s, int64_t lo, int64_t hi)
{
	return (lo + (int64_t) (chaos_load_mix(s) % (uint64_t) (hi - lo + 1)));
}

/* What order i is. */
static void
chaos_load_order(int64_t i, cl_order *o)
{
	uint64_t s = cl_o.seed * 0x100000001b3ull + (uint64_t) i;
	double   r;

	(void) chaos_load_mix(&s);
	r           = chaos_load_rand(&s);
	o->customer = chaos_load_mix(&s) % 2 == 0 ? "alice" : "carol";
	if (r < cl_o.poor) {
		o->kind     = "poor";
		o->customer = "bob";
		o->sku      = "WIDGET";
		o->qty      = 1;
		o->amount   = 1000 * chaos_load_between(&s, 1, 5);
	} else if (r < cl_o.poor + cl_o.scarce) {
		o->kind   = "scarce";
		o->sku    = "GADGET";
		o->qty    = chaos_load_between(&s, 2, 5);
		o->amount = 2000 * o->qty;
	} else {
		bool widget = chaos_load_mix(&s) % 2 == 0;

		o->kind   = "ok";
		o->sku    = widget ? "WIDGET" : "GIZMO";
		o->qty    = chaos_load_between(&s, 1, 3);
		o->amount = (widget ? 1000 : 1500) * o->qty;
	}
}

/* Starts order i, retrying until sagad answers it, and records it.
 * Returns 0, or -1 when it was abandoned. */
static int
chaos_load_one(saga_client **clients, int64_t i)
{
	cl_order  o;
	char      json[512], key[160], err[512], id[SAGA_ID_STRLEN + 1];
	proto_buf input;
	proto_msg req, reply;
	int64_t   backoff_ms = 50;
	int64_t   give_up    = chaos_load_now_us() + cl_o.give_up_s * 1000000;
	int       rv;
	int       u = (int) (i % cl_o.nurls);

	chaos_load_order(i, &o);
	snprintf(key, sizeof(key), "%s-%" PRId64, cl_o.prefix, i);
	snprintf(json, sizeof(json),
	    "{\"customer_id\": \"%s\", \"sku\": \"%s\", \"qty\": %" PRId64
	    ", \"amount\": %" PRId64 ", \"address\": \"%" PRId64
	    " Chaos Lane\"}",
	    o.customer, o.sku, o.qty, o.amount, i);
	proto_buf_init(&input);
	if (proto_json_to_raw(
	        json, strlen(json), NULL, &input, err, sizeof(err))
	    != 0) {
		fprintf(stderr, "chaos_load: order %" PRId64 ": %s\n", i, err);
		proto_buf_fini(&input);
		atomic_fetch_add(&cl_abandoned, 1);
		return (-1);
	}
	for (bool first = true;; first = false) {
		saga_client **cl;

		if (!first) {
			/* Another instance, if there are several. */
			u = (u + 1) % cl_o.nurls;
			atomic_fetch_add(&cl_retries, 1);
			if (chaos_load_now_us() > give_up) {
				fprintf(stderr,
				    "chaos_load: order %" PRId64
				    " (key %s): no answer for %" PRId64
				    " s; abandoned\n",
				    i, key, cl_o.give_up_s);
				atomic_fetch_add(&cl_abandoned, 1);
				proto_buf_fini(&input);
				return (-1);
			}
			chaos_load_sleep_us(backoff_ms * 1000);
			backoff_ms
			    = backoff_ms * 2 > 1000 ? 1000 : backoff_ms * 2;
		}
		cl = &clients[u];
		if (*cl == NULL
		    && saga_client_open(cl, cl_o.urls[u], err, sizeof(err))
		           != 0) {
			fprintf(stderr, "chaos_load: %s\n", err);
			continue;
		}
		proto_msg_init(&req);
		req.type  = PROTO_T_START;
		req.saga  = proto_str_c("create_order");
		req.input = proto_buf_raw(&input);
		req.key   = proto_str_c(key);
		rv        = saga_client_call(
		           *cl, &req, CHAOS_LOAD_CALL_MS, &reply, err, sizeof(err));
		if (rv == SAGA_ETIMEDOUT) {
			atomic_fetch_add(&cl_timeouts, 1);
			continue;
		}
		if (rv != 0) {
			/* A transport error: start with a fresh socket. */
			atomic_fetch_add(&cl_timeouts, 1);
			saga_client_free(*cl);
			*cl = NULL;
			continue;
		}
		if (reply.type == PROTO_T_ERROR) {
			uint32_t code = reply.code;

			proto_msg_fini(&reply);
			if (code == SAGA_EUNAVAIL || code == SAGA_EUNKNOWN) {
				atomic_fetch_add(&cl_unavail, 1);
				continue;
			}
			if (code == SAGA_EOVERLOAD) {
				atomic_fetch_add(&cl_overload, 1);
				continue;
			}
			if (code == SAGA_ECLOSED) {
				atomic_fetch_add(&cl_closed, 1);
				continue;
			}
			fprintf(stderr,
			    "chaos_load: order %" PRId64
			    " (key %s): refused: %s\n",
			    i, key, saga_errname((int) code));
			atomic_fetch_add(&cl_errors, 1);
			atomic_fetch_add(&cl_abandoned, 1);
			proto_buf_fini(&input);
			return (-1);
		}
		if (reply.type != PROTO_T_SAGA) {
			proto_msg_fini(&reply);
			atomic_fetch_add(&cl_errors, 1);
			continue;
		}
		saga_id_format(&reply.id, id);
		atomic_fetch_add(
		    reply.created ? &cl_started : &cl_replayed, 1);
		pthread_mutex_lock(&cl_out_mtx);
		fprintf(cl_out,
		    "%" PRId64 " %s %s %s %s %s %" PRId64 " %" PRId64 " %s\n",
		    i, key, id, o.kind, o.customer, o.sku, o.qty, o.amount,
		    reply.created ? "t" : "f");
		fflush(cl_out);
		pthread_mutex_unlock(&cl_out_mtx);
		proto_msg_fini(&reply);
		proto_buf_fini(&input);
		return (0);
	}
}

/* A worker: takes the next order, waits for its turn, starts it. */
static void *
chaos_load_main(void *arg)
{
	saga_client *cl[CHAOS_LOAD_MAX_URLS] = { NULL };

	(void) arg;
	for (;;) {
		int64_t i = atomic_fetch_add(&cl_next, 1);
		int64_t due;

		if (i >= cl_o.sagas) {
			break;
		}
		due = cl_t0_us + (int64_t) ((double) i * 1e6 / cl_o.rate);
		chaos_load_sleep_us(due - chaos_load_now_us());
		(void) chaos_load_one(cl, i);
	}
	for (int u = 0; u < cl_o.nurls; u++) {
		saga_client_free(cl[u]);
	}
	return (NULL);
}

static void
chaos_load_usage(FILE *f)
{
	fprintf(f,
	    "Usage: chaos_load --coordinator URL --sagas N --rate R --out "
	    "FILE [options]\n"
	    "Starts N create_order sagas at R per second (keys PREFIX-i), "
	    "retrying each start\n"
	    "until sagad answers it, and writes one line per saga to FILE.\n"
	    "  --coordinator URL sagad's client API; repeat it for several\n"
	    "                    instances: order i goes to URL i mod n,\n"
	    "                    each retry to the next\n"
	    "  --seed S          what the orders are (default 1)\n"
	    "  --concurrency C   starts in flight at once (default 16)\n"
	    "  --poor P          share of orders bob cannot pay "
	    "(default 0.1)\n"
	    "  --scarce P        share of orders for scarce gadgets "
	    "(default 0.1)\n"
	    "  --prefix K        idempotency key prefix (default chaos)\n"
	    "  --give-up S       abandon an order unanswered for S seconds "
	    "(default 600)\n");
}

static int
chaos_load_parse(int argc, char **argv)
{
	cl_o.seed      = 1;
	cl_o.conc      = 16;
	cl_o.poor      = 0.1;
	cl_o.scarce    = 0.1;
	cl_o.prefix    = "chaos";
	cl_o.give_up_s = 600;
	cl_o.rate      = 0;
	cl_o.sagas     = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		char       *end;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			chaos_load_usage(stdout);
			exit(0);
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "chaos_load: %s needs a value\n", a);
			return (-1);
		}
		v     = argv[++i];
		errno = 0;
		if (strcmp(a, "--coordinator") == 0) {
			if (cl_o.nurls == CHAOS_LOAD_MAX_URLS) {
				fprintf(stderr,
				    "chaos_load: at most %d --coordinator\n",
				    CHAOS_LOAD_MAX_URLS);
				return (-1);
			}
			cl_o.urls[cl_o.nurls++] = v;
		} else if (strcmp(a, "--out") == 0) {
			cl_o.out = v;
		} else if (strcmp(a, "--prefix") == 0) {
			cl_o.prefix = v;
		} else if (strcmp(a, "--seed") == 0) {
			cl_o.seed = strtoull(v, &end, 10);
		} else if (strcmp(a, "--sagas") == 0) {
			cl_o.sagas = strtoll(v, &end, 10);
		} else if (strcmp(a, "--concurrency") == 0) {
			cl_o.conc = strtoll(v, &end, 10);
		} else if (strcmp(a, "--give-up") == 0) {
			cl_o.give_up_s = strtoll(v, &end, 10);
		} else if (strcmp(a, "--rate") == 0) {
			cl_o.rate = strtod(v, &end);
		} else if (strcmp(a, "--poor") == 0) {
			cl_o.poor = strtod(v, &end);
		} else if (strcmp(a, "--scarce") == 0) {
			cl_o.scarce = strtod(v, &end);
		} else {
			fprintf(
			    stderr, "chaos_load: unknown option \"%s\"\n", a);
			return (-1);
		}
		if (strcmp(a, "--coordinator") != 0 && strcmp(a, "--out") != 0
		    && strcmp(a, "--prefix") != 0
		    && (errno != 0 || *end != '\0' || end == v)) {
			fprintf(stderr,
			    "chaos_load: %s \"%s\": not a number\n", a, v);
			return (-1);
		}
	}
	if (cl_o.nurls == 0 || cl_o.out == NULL || cl_o.sagas < 0
	    || !(cl_o.rate > 0) || cl_o.conc < 1 || cl_o.conc > 1024
	    || cl_o.poor < 0 || cl_o.scarce < 0 || cl_o.poor + cl_o.scarce > 1
	    || cl_o.give_up_s < 1) {
		fprintf(stderr,
		    "chaos_load: give --coordinator, --out, "
		    "--sagas N >= 0, --rate R > 0 (concurrency "
		    "1..1024, shares adding up to at most 1)\n");
		return (-1);
	}
	return (0);
}

int
main(int argc, char **argv)
{
	pthread_t *thr;
	int64_t    t;

	if (chaos_load_parse(argc, argv) != 0) {
		chaos_load_usage(stderr);
		return (2);
	}
	if ((cl_out = fopen(cl_o.out, "a")) == NULL) {
		fprintf(
		    stderr, "chaos_load: %s: %s\n", cl_o.out, strerror(errno));
		return (1);
	}
	if ((thr = calloc((size_t) cl_o.conc, sizeof(*thr))) == NULL) {
		return (1);
	}
	cl_t0_us = chaos_load_now_us();
	for (int64_t i = 0; i < cl_o.conc; i++) {
		if (pthread_create(&thr[i], NULL, chaos_load_main, NULL)
		    != 0) {
			fprintf(stderr, "chaos_load: cannot start threads\n");
			return (1);
		}
	}
	for (int64_t i = 0; i < cl_o.conc; i++) {
		pthread_join(thr[i], NULL);
	}
	free(thr);
	fclose(cl_out);
	t = chaos_load_now_us() - cl_t0_us;
	printf("chaos_load: %" PRId64 " orders in %.1f s: %" PRIu64
	       " started, %" PRIu64 " answered again by key, %" PRIu64
	       " retries (%" PRIu64 " no answer, %" PRIu64
	       " EUNAVAIL or EUNKNOWN, %" PRIu64 " EOVERLOAD, %" PRIu64
	       " ECLOSED), %" PRIu64 " refused, %" PRIu64 " abandoned\n",
	    cl_o.sagas, (double) t / 1e6, (uint64_t) atomic_load(&cl_started),
	    (uint64_t) atomic_load(&cl_replayed),
	    (uint64_t) atomic_load(&cl_retries),
	    (uint64_t) atomic_load(&cl_timeouts),
	    (uint64_t) atomic_load(&cl_unavail),
	    (uint64_t) atomic_load(&cl_overload),
	    (uint64_t) atomic_load(&cl_closed),
	    (uint64_t) atomic_load(&cl_errors),
	    (uint64_t) atomic_load(&cl_abandoned));
	return (atomic_load(&cl_abandoned) == 0 ? 0 : 1);
}
