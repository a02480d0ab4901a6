/* SPDX-License-Identifier: MIT */
/*
 * store_bench: what one big batch costs sagad's engine thread. Inserts N
 * sagas, then stages one update of each and commits them as one batch
 * (as a group commit of N transitions), and prints the wall time from
 * the flush to the commit and the time of the last saga_store_poll call
 * (the one that reads the COMMIT and works out the batch's results: the
 * part the engine thread spends, not the server). A benchmark, not a
 * test: docs/PERFORMANCE.md quotes it.
 *
 *   store_bench CONNINFO N [REPEAT]
 *
 * CONNINFO names a database with the coordinator's schema (sagad
 * --migrate); each run adds N sagas to it.
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "saga_err.h"
#include "saga_store.h"

static int64_t
now_us(int clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ((int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

/* Flushes what is staged and polls until the batch ends; *last is the
 * time of the last poll call, in µs. */
static saga_store_result
run_batch(saga_store *st, int64_t *last)
{
	saga_store_result r;

	if (saga_store_flush(st) != 0) {
		return (SAGA_STORE_FAILED);
	}
	do {
		struct pollfd p = { saga_store_fd(st), POLLIN, 0 };
		int64_t       t;

		if (saga_store_want_write(st)) {
			p.events |= POLLOUT;
		}
		(void) poll(&p, 1, 100);
		t     = now_us(CLOCK_MONOTONIC);
		r     = saga_store_poll(st);
		*last = now_us(CLOCK_MONOTONIC) - t;
	} while (r == SAGA_STORE_PENDING);
	return (r);
}

int
main(int argc, char **argv)
{
	static const uint8_t ctx[] = { 0x81, 0xa5, 'i', 'n', 'p', 'u', 't',
		0x80 };
	saga_store          *st;
	saga_inst           *in;
	char                 err[512], hash[65];
	int                  n, repeat, version;

	if (argc < 3 || (n = atoi(argv[2])) < 1) {
		fprintf(stderr, "usage: store_bench CONNINFO N [REPEAT]\n");
		return (2);
	}
	repeat = argc > 3 ? atoi(argv[3]) : 1;
	if (saga_store_open(&st, argv[1], "store-bench", 600000, err,
	        sizeof(err))
	        != 0 ||
	    saga_store_def_register(st, "bench", "{\"name\":\"bench\"}",
	        &version, hash) != 0 ||
	    saga_store_pipeline_start(st) != 0) {
		fprintf(stderr, "store_bench: %s\n", err);
		return (1);
	}
	if ((in = calloc((size_t) n, sizeof(*in))) == NULL) {
		return (1);
	}
	for (int r = 0; r < repeat; r++) {
		saga_store_new nw = { 0 };
		int64_t        last, t0;

		nw.saga_name    = "bench";
		nw.saga_version = version;
		nw.context      = (proto_raw) { ctx, sizeof(ctx) };
		for (int i = 0; i < n; i++) {
			uint8_t rnd[10];

			for (size_t j = 0; j < sizeof(rnd); j++) {
				rnd[j] = (uint8_t) rand();
			}
			memset(&in[i], 0, sizeof(in[i]));
			saga_id_make_v7(&in[i].id,
			    now_us(CLOCK_REALTIME) / 1000, rnd);
			in[i].state      = SAGA_ST_RUNNING;
			in[i].max_sent   = -1;
			in[i].created_ms = now_us(CLOCK_REALTIME) / 1000;
			in[i].seq        = 1;
			if (saga_store_stage_insert(st, &in[i], &nw) != 0) {
				return (1);
			}
		}
		if (run_batch(st, &last) != SAGA_STORE_COMMITTED) {
			fprintf(stderr, "store_bench: %s\n",
			    saga_store_error(st));
			return (1);
		}
		for (int i = 0; i < n; i++) {
			in[i].attempt = 1;
			if (saga_store_stage_update(st, &in[i],
			        (proto_raw) { 0 },
			        now_us(CLOCK_REALTIME) / 1000, 1, false)
			    != 0) {
				return (1);
			}
		}
		t0 = now_us(CLOCK_MONOTONIC);
		if (run_batch(st, &last) != SAGA_STORE_COMMITTED) {
			fprintf(stderr, "store_bench: %s\n",
			    saga_store_error(st));
			return (1);
		}
		printf("sagas %d: batch %.1f ms, last poll %.2f ms\n", n,
		    (double) (now_us(CLOCK_MONOTONIC) - t0) / 1e3,
		    (double) last / 1e3);
	}
	free(in);
	saga_store_free(st);
	return (0);
}
