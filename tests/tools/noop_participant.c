/* SPDX-License-Identifier: MIT */
/*
 * noop_participant: a participant without a database, for the benchmark's
 * coordinator-only mode (scripts/bench.sh --mode noop).
 *
 * It answers every COMMAND at once with a REPLY ok that echoes the
 * command's id, step, attempt and kind and carries no output (a BATCH of
 * COMMANDs with a BATCH_REPLY of such REPLYs); PING gets PONG. No barrier and no handler: whatever sagad sends is done, so that
 * what the benchmark measures is sagad (and its own database) alone.
 * One process can serve several participants: give --listen once per
 * URL.
 *
 * --delay-ms MS holds each answer for MS milliseconds (only for the
 * action named by --delay-action, if given): the benchmark's memory probe
 * uses it to keep many sagas in flight inside sagad while it reads
 * sagad's resident memory.
 *
 * DESIGN: nng's demo/async server: one REP socket, --contexts contexts,
 * each a small state machine (receive -> [sleep] -> send) driven by its
 * aio callback on nng's threads; no locks, no allocation besides the
 * messages. SIGTERM or SIGINT (through a pipe to the main thread) closes
 * the socket, frees everything and prints how many commands were
 * answered.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>

#include "proto_msg.h"
#include "saga_err.h"

#define NOOP_CONTEXTS_DEFAULT 256
#define NOOP_CONTEXTS_MAX     65536
#define NOOP_MAX_LISTEN       16

typedef enum noop_state {
	NOOP_RECV,
	NOOP_SLEEP,
	NOOP_SEND,
} noop_state;

typedef struct noop_ctx {
	nng_ctx    ctx;
	nng_aio   *aio;
	noop_state state;
	nng_msg   *reply; /* answer held back during a delay */
} noop_ctx;

static nng_socket    noop_sock;
static int           noop_delay_ms;
static const char   *noop_delay_action;
static const char   *noop_service = "noop_participant";
static atomic_ullong noop_commands;
static atomic_ullong noop_errors;
static atomic_ullong noop_batches;
static atomic_ullong noop_batches_refused;
static bool          noop_no_batch;
static int           noop_stop_pipe[2] = { -1, -1 };

/* noop_on_signal runs on whichever thread gets SIGTERM or SIGINT (a
 * sanitizer's own threads do not block them) and wakes main. */
static void
noop_on_signal(int sig)
{
	char c = (char) sig;

	(void) !write(noop_stop_pipe[1], &c, 1);
}

/* noop_encode turns the bytes of b into a new nng message; NULL when out
 * of memory. */
static nng_msg *
noop_encode(const proto_buf *b)
{
	nng_msg *msg = NULL;

	if (nng_msg_alloc(&msg, 0) != 0) {
		return (NULL);
	}
	if (nng_msg_append(msg, b->data, b->len) != 0) {
		nng_msg_free(msg);
		msg = NULL;
	}
	return (msg);
}

/* noop_answer_one appends to out the answer to the message of len bytes
 * at p (in_batch: one message of a BATCH); *delay is set when it is to
 * be held back. Returns 0 or SAGA_ENOMEM. */
static int
noop_answer_one(const uint8_t *p, size_t len, bool in_batch, proto_buf *out,
    bool *delay);

/* noop_answer_batch appends to out the BATCH_REPLY to BATCH m, or the
 * ERROR of a BATCH that cannot be read whole. */
static int
noop_answer_batch(const proto_msg *m, proto_buf *out, bool *delay)
{
	proto_buf   answers;
	proto_msg   r;
	proto_raw   one;
	proto_error perr;
	size_t      off = 0, count = 0;
	int         rv;

	proto_buf_init(&answers);
	while ((rv = proto_batch_next(m->msgs, &off, &count, NULL, &one,
	            &perr)) == 0 &&
	    one.len > 0) {
		if ((rv = noop_answer_one(one.ptr, one.len, true, &answers,
		         delay)) != 0) {
			proto_buf_fini(&answers);
			return (rv);
		}
	}
	if (rv != 0) {
		atomic_fetch_add(&noop_errors, 1);
		proto_msg_error_init(&r, NULL, rv, perr.msg);
	} else {
		proto_msg_init(&r);
		r.type = PROTO_T_BATCH_REPLY;
		r.msgs = proto_buf_raw(&answers);
	}
	rv = proto_msg_encode(&r, out);
	proto_buf_fini(&answers);
	return (rv);
}

static int
noop_answer_one(const uint8_t *p, size_t len, bool in_batch, proto_buf *out,
    bool *delay)
{
	proto_msg   m, r;
	proto_error perr;
	int         rv;

	if ((rv = proto_msg_decode(p, len, NULL, &m, &perr)) != 0) {
		atomic_fetch_add(&noop_errors, 1);
		proto_msg_error_init(&r, NULL, rv, perr.msg);
		return (proto_msg_encode(&r, out));
	}
	proto_msg_init(&r);
	if (m.type == PROTO_T_BATCH && !in_batch && !noop_no_batch) {
		atomic_fetch_add(&noop_batches, 1);
		rv = noop_answer_batch(&m, out, delay);
		proto_msg_fini(&m);
		return (rv);
	}
	switch (m.type) {
	case PROTO_T_PING:
		r.type    = PROTO_T_PONG;
		r.service = proto_str_c(noop_service);
		break;
	case PROTO_T_COMMAND:
		atomic_fetch_add(&noop_commands, 1);
		r.type    = PROTO_T_REPLY;
		r.id      = m.id;
		r.step    = m.step;
		r.attempt = m.attempt;
		r.kind    = m.kind;
		r.outcome = PROTO_OUTCOME_OK;
		*delay    = *delay ||
		    (noop_delay_ms > 0 &&
		        (noop_delay_action == NULL ||
		            proto_str_eq(m.action, noop_delay_action)));
		break;
	case PROTO_T_BATCH:
		atomic_fetch_add(&noop_errors, 1);
		if (in_batch) {
			proto_msg_error_init(&r, &m, SAGA_EINVAL,
			    "a BATCH holds COMMAND messages, not BATCH");
			break;
		}
		/* --no-batch: what a participant built before BATCH
		 * answers. */
		atomic_fetch_add(&noop_batches_refused, 1);
		proto_msg_error_init(&r, NULL, SAGA_EMSGTYPE,
		    "unknown message type 42");
		break;
	default:
		atomic_fetch_add(&noop_errors, 1);
		proto_msg_error_init(&r, &m, SAGA_EINVAL,
		    "noop_participant answers COMMAND, BATCH and PING only");
		break;
	}
	rv = proto_msg_encode(&r, out);
	proto_msg_fini(&m);
	return (rv);
}

/* noop_answer builds the answer to one request; *delay says whether it
 * is to be held back. NULL when out of memory (the request is dropped:
 * sagad's timeout resends it). */
static nng_msg *
noop_answer(nng_msg *req, bool *delay)
{
	proto_buf b;
	nng_msg  *out = NULL;

	*delay = false;
	proto_buf_init(&b);
	if (noop_answer_one(nng_msg_body(req), nng_msg_len(req), false, &b,
	        delay) == 0) {
		out = noop_encode(&b);
	}
	proto_buf_fini(&b);
	return (out);
}

/* noop_cb runs on an nng thread whenever a context's receive, sleep or
 * send finished, and starts the context's next operation. */
static void
noop_cb(void *arg)
{
	noop_ctx *c = arg;
	nng_msg  *req;
	bool      delay;
	int       rv;

	switch (c->state) {
	case NOOP_RECV:
		if ((rv = nng_aio_result(c->aio)) != 0) {
			/* Closed: the process is stopping. */
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
				return;
			}
			nng_ctx_recv(c->ctx, c->aio);
			return;
		}
		req      = nng_aio_get_msg(c->aio);
		c->reply = noop_answer(req, &delay);
		nng_msg_free(req);
		if (c->reply == NULL) {
			nng_ctx_recv(c->ctx, c->aio);
			return;
		}
		if (delay) {
			c->state = NOOP_SLEEP;
			nng_sleep_aio(noop_delay_ms, c->aio);
			return;
		}
		/* FALLTHROUGH */
	case NOOP_SLEEP:
		if (c->state == NOOP_SLEEP && nng_aio_result(c->aio) != 0) {
			/* Cancelled while held back: stopping. */
			nng_msg_free(c->reply);
			c->reply = NULL;
			return;
		}
		c->state = NOOP_SEND;
		nng_aio_set_msg(c->aio, c->reply);
		c->reply = NULL;
		nng_ctx_send(c->ctx, c->aio);
		return;
	case NOOP_SEND:
		if ((rv = nng_aio_result(c->aio)) != 0) {
			/* Not sent (the requester went away): ours to free. */
			nng_msg_free(nng_aio_get_msg(c->aio));
			nng_aio_set_msg(c->aio, NULL);
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
				return;
			}
		}
		c->state = NOOP_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
}

static void
noop_usage(FILE *f)
{
	fprintf(f,
	    "Usage: noop_participant --listen URL [--listen URL]...\n"
	    "                        [--contexts N] [--delay-ms MS]\n"
	    "                        [--delay-action NAME] [--service NAME]\n"
	    "                        [--no-batch]\n"
	    "A participant without a database for the benchmark's\n"
	    "coordinator-only mode: every COMMAND is answered ok at once\n"
	    "(after MS milliseconds with --delay-ms, only for action NAME\n"
	    "with --delay-action), alone or in a BATCH. --contexts: requests\n"
	    "served at once (default %d). --no-batch: answer BATCH with\n"
	    "ERROR EMSGTYPE, as a participant built before BATCH does.\n"
	    "SIGTERM or SIGINT stops it.\n",
	    NOOP_CONTEXTS_DEFAULT);
}

int
main(int argc, char **argv)
{
	const char      *listen[NOOP_MAX_LISTEN];
	int              nlisten   = 0;
	long             ncontexts = NOOP_CONTEXTS_DEFAULT;
	noop_ctx        *ctxs      = NULL;
	struct sigaction sa;
	char             c;
	int              rv;
	char            *end;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc
		    && nlisten < NOOP_MAX_LISTEN) {
			listen[nlisten++] = argv[++i];
		} else if (strcmp(argv[i], "--contexts") == 0
		    && i + 1 < argc) {
			ncontexts = strtol(argv[++i], &end, 10);
			if (*end != '\0' || ncontexts < 1
			    || ncontexts > NOOP_CONTEXTS_MAX) {
				fprintf(stderr,
				    "noop_participant: --contexts: expected "
				    "1..%d, got \"%s\"\n",
				    NOOP_CONTEXTS_MAX, argv[i]);
				return (2);
			}
		} else if (strcmp(argv[i], "--delay-ms") == 0
		    && i + 1 < argc) {
			noop_delay_ms = (int) strtol(argv[++i], &end, 10);
			if (*end != '\0' || noop_delay_ms < 0) {
				fprintf(stderr,
				    "noop_participant: --delay-ms: expected "
				    "milliseconds, got \"%s\"\n",
				    argv[i]);
				return (2);
			}
		} else if (strcmp(argv[i], "--delay-action") == 0
		    && i + 1 < argc) {
			noop_delay_action = argv[++i];
		} else if (strcmp(argv[i], "--no-batch") == 0) {
			noop_no_batch = true;
		} else if (strcmp(argv[i], "--service") == 0 && i + 1 < argc) {
			noop_service = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0
		    || strcmp(argv[i], "-h") == 0) {
			noop_usage(stdout);
			return (0);
		} else {
			noop_usage(stderr);
			return (2);
		}
	}
	if (nlisten == 0) {
		noop_usage(stderr);
		return (2);
	}

	/* The stop signals wake main through a pipe. */
	if (pipe(noop_stop_pipe) != 0) {
		perror("noop_participant: pipe");
		return (1);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = noop_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if ((rv = nng_rep0_open(&noop_sock)) != 0) {
		fprintf(stderr, "noop_participant: %s\n", nng_strerror(rv));
		return (1);
	}
	nng_socket_set_size(noop_sock, NNG_OPT_RECVMAXSZ, 4 * 1024 * 1024);
	for (int i = 0; i < nlisten; i++) {
		if ((rv = nng_listen(noop_sock, listen[i], NULL, 0)) != 0) {
			fprintf(stderr, "noop_participant: %s: %s\n",
			    listen[i], nng_strerror(rv));
			nng_close(noop_sock);
			return (1);
		}
	}
	if ((ctxs = calloc((size_t) ncontexts, sizeof(*ctxs))) == NULL) {
		fprintf(stderr, "noop_participant: out of memory\n");
		nng_close(noop_sock);
		return (1);
	}
	for (long i = 0; i < ncontexts; i++) {
		ctxs[i].state = NOOP_RECV;
		if ((rv = nng_ctx_open(&ctxs[i].ctx, noop_sock)) != 0
		    || (rv = nng_aio_alloc(&ctxs[i].aio, noop_cb, &ctxs[i]))
		        != 0) {
			fprintf(stderr, "noop_participant: %s\n",
			    nng_strerror(rv));
			ncontexts = i;
			goto stop;
		}
		nng_ctx_recv(ctxs[i].ctx, ctxs[i].aio);
	}
	fprintf(stderr, "noop_participant: serving %d URL(s), %ld contexts\n",
	    nlisten, ncontexts);

	rv = 0;
	while (read(noop_stop_pipe[0], &c, 1) < 0 && errno == EINTR) { }
stop:
	/* Closing the socket aborts every receive and send (their callbacks
	 * see NNG_ECLOSED and stop); freeing an aio waits for its callback
	 * and cancels a held-back answer. */
	nng_close(noop_sock);
	for (long i = 0; i < ncontexts; i++) {
		nng_aio_free(ctxs[i].aio);
		nng_msg_free(ctxs[i].reply);
	}
	free(ctxs);
	fprintf(stderr,
	    "noop_participant: %llu commands answered (%llu BATCH "
	    "messages), %llu bad requests (%llu BATCH refused)\n",
	    (unsigned long long) atomic_load(&noop_commands),
	    (unsigned long long) atomic_load(&noop_batches),
	    (unsigned long long) atomic_load(&noop_errors),
	    (unsigned long long) atomic_load(&noop_batches_refused));
	return (rv == 0 ? 0 : 1);
}
