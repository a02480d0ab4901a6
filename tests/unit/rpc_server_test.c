/* SPDX-License-Identifier: MIT */
/*
 * rpc_server_test: the client API server's bound on connections, on real
 * nng sockets over loopback TCP, with raw SP clients (nothing dials
 * again). The test takes the engine's part: it reads the queue the
 * server posts requests to and answers them.
 *
 * With one connection allowed: a request on the one taken is posted; one
 * on a connection beyond it is answered EOVERLOAD and not posted, and
 * that connection stays open. Two races the server must win, widened by
 * holding the server's callback between the arrival of a request and
 * its check of the connection (nng_msg_get_pipe, which rpc_cb calls just
 * before, is wrapped here to wait for a condition): a connection beyond
 * the most whose client closes right after its request, and one evicted
 * (closed for a newer one) right after its request. Before, the check
 * found no trace of either connection and took it for one allowed: the
 * request was carried out.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "coord_queue.h"
#include "proc.h"
#include "proto_msg.h"
#include "rpc_server.h"
#include "saga_err.h"

/* The condition the wrapped nng_msg_get_pipe waits for once (then
 * cleared), up to 10 s; NULL: none. */
static bool (*_Atomic hold_until)(void);
static rpc_server *the_srv;

nng_pipe
nng_msg_get_pipe(const nng_msg *m)
{
	static nng_pipe (*real)(const nng_msg *);
	bool (*cond)(void) = atomic_exchange(&hold_until, NULL);

	if (real == NULL) {
		real = (nng_pipe(*)(const nng_msg *)) dlsym(
		    RTLD_NEXT, "nng_msg_get_pipe");
	}
	for (int i = 0; cond != NULL && !cond() && i < 1000; i++) {
		nng_msleep(10);
	}
	return (real(m));
}

static size_t
conns_open(void)
{
	size_t        open;
	unsigned long refused;

	rpc_server_conns(the_srv, &open, &refused);
	return (open);
}

static unsigned long
conns_refused(void)
{
	size_t        open;
	unsigned long refused;

	rpc_server_conns(the_srv, &open, &refused);
	return (refused);
}

/* A raw SP REQ connection to port, its handshake done. */
static int
raw_connect(int port)
{
	int fd = test_raw_sp_connect(port);

	assert_true(fd >= 0);
	return (fd);
}

/* Sends a request of type (no fields but the id: a STATUS or a CANCEL
 * that decodes) on fd. */
static void
raw_send(int fd, uint32_t type)
{
	proto_msg m;
	proto_buf b;
	uint8_t   hdr[12];
	uint64_t  len;

	proto_msg_init(&m);
	m.type    = type;
	m.id.b[6] = 0x70; /* a version 7 id */
	m.id.b[8] = 0x80;
	proto_buf_init(&b);
	assert_int_equal(proto_msg_encode(&m, &b), 0);
	len = b.len + 4;
	for (int i = 0; i < 8; i++) {
		hdr[i] = (uint8_t) (len >> (56 - 8 * i));
	}
	memcpy(hdr + 8, "\x80\x00\x00\x01", 4); /* the request id */
	assert_int_equal(write(fd, hdr, sizeof(hdr)), sizeof(hdr));
	assert_int_equal(write(fd, b.data, b.len), b.len);
	proto_buf_fini(&b);
}

/* Reads one answer on fd (within 5 s) and returns its error code (0: not
 * an ERROR). */
static uint32_t
raw_answer(int fd)
{
	uint8_t       buf[4096];
	size_t        got = 0;
	uint64_t      len = 0;
	struct pollfd p   = { .fd = fd, .events = POLLIN };
	proto_msg     r;
	proto_error   pe;
	uint32_t      code;

	while (got < 8 || got < 8 + len) {
		ssize_t n;

		assert_int_equal(poll(&p, 1, 5000), 1);
		n = read(fd, buf + got, sizeof(buf) - got);
		assert_true(n > 0);
		got += (size_t) n;
		if (got >= 8 && len == 0) {
			for (int i = 0; i < 8; i++) {
				len = len << 8 | buf[i];
			}
			assert_true(len >= 4 && 8 + len <= sizeof(buf));
		}
	}
	assert_int_equal(
	    proto_msg_decode(buf + 12, len - 4, NULL, &r, &pe), 0);
	code = r.type == PROTO_T_ERROR ? r.code : 0;
	proto_msg_fini(&r);
	return (code);
}

/* The next request the server posts (within 5 s): its type; answered
 * with an ERROR. */
static uint32_t
next_posted(coord_queue *q)
{
	static coord_event *pending;
	coord_event        *ev;
	rpc_req            *r;
	uint32_t            type;

	for (int i = 0; pending == NULL && i < 500; i++) {
		if ((pending = coord_queue_take(q)) == NULL) {
			nng_msleep(10);
		}
	}
	assert_non_null(pending);
	ev      = pending;
	pending = ev->next;
	r       = ev->obj;
	type    = rpc_req_msg(r)->type;
	rpc_req_error(r, SAGA_EINTERNAL, "answered by the test");
	return (type);
}

typedef struct fixture {
	coord_queue q;
	rpc_server *srv;
	int         port;
	int         taken; /* the one connection allowed */
} fixture;

static int
setup(void **state)
{
	fixture      *f   = calloc(1, sizeof(*f));
	proto_limits  lim = proto_limits_default();
	saga_tls_opts tls = { NULL, NULL, NULL, NULL };
	char          url[64], err[256];

	assert_non_null(f);
	assert_int_equal(coord_queue_init(&f->q), 0);
	f->port = test_free_port();
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", f->port);
	/* One context: a request held by a wrong dispatch would stop the
	 * next one (the taken connection's) from being posted. */
	assert_int_equal(rpc_server_start(&f->srv, url, 1, 1, &lim, "sagad",
	                     &tls, &f->q, err, sizeof(err)),
	    0);
	the_srv  = f->srv;
	f->taken = raw_connect(f->port);
	raw_send(f->taken, PROTO_T_STATUS);
	assert_int_equal(next_posted(&f->q), PROTO_T_STATUS);
	assert_int_equal(raw_answer(f->taken), SAGA_EINTERNAL);
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	fixture *f = *state;

	close(f->taken);
	rpc_server_stop(f->srv);
	rpc_server_free(f->srv);
	coord_queue_fini(&f->q);
	free(f);
	return (0);
}

/* The taken connection is served; one beyond is answered EOVERLOAD each
 * time, stays open, and nothing of it is posted. */
static void
test_rpc_server_over_answered(void **state)
{
	fixture *f    = *state;
	int      over = raw_connect(f->port);

	for (int i = 0; i < 2; i++) {
		raw_send(over, PROTO_T_CANCEL);
		assert_int_equal(raw_answer(over), SAGA_EOVERLOAD);
	}
	raw_send(f->taken, PROTO_T_STATUS);
	assert_int_equal(next_posted(&f->q), PROTO_T_STATUS);
	assert_int_equal(raw_answer(f->taken), SAGA_EINTERNAL);
	assert_int_equal(conns_refused(), 1);
	/* Room again: the one beyond is served. */
	close(f->taken);
	f->taken = over;
	for (int i = 0; conns_open() != 1 && i < 500; i++) {
		nng_msleep(10);
	}
	assert_int_equal(conns_open(), 1);
	raw_send(over, PROTO_T_STATUS);
	assert_int_equal(next_posted(&f->q), PROTO_T_STATUS);
	assert_int_equal(raw_answer(over), SAGA_EINTERNAL);
}

static bool
one_open(void)
{
	return (conns_open() == 1);
}

/* A connection beyond the most whose client closes right after its
 * request: the server sees the close before it checks the request, which
 * is not carried out. Then the taken connection's request is the next one
 * posted. */
static void
test_rpc_server_over_closed_not_run(void **state)
{
	fixture *f    = *state;
	int      over = raw_connect(f->port);

	for (int i = 0; conns_open() != 2 && i < 500; i++) {
		nng_msleep(10);
	}
	atomic_store(&hold_until, one_open);
	raw_send(over, PROTO_T_CANCEL);
	close(over);
	for (int i = 0; atomic_load(&hold_until) != NULL && i < 500; i++) {
		nng_msleep(10);
	}
	assert_null(atomic_load(&hold_until));
	raw_send(f->taken, PROTO_T_STATUS);
	assert_int_equal(next_posted(&f->q), PROTO_T_STATUS);
	assert_int_equal(raw_answer(f->taken), SAGA_EINTERNAL);
}

static unsigned long evict_refused;

static bool
evicted(void)
{
	return (conns_refused() >= evict_refused);
}

/* A connection beyond the most, idle for a second with every place for
 * such taken, sends a request, and a newer connection evicts it before
 * the server checks that request: not carried out. */
static void
test_rpc_server_evicted_not_run(void **state)
{
	fixture *f = *state;
	int      over[RPC_SERVER_OVER_MAX], newer;

	for (int i = 0; i < RPC_SERVER_OVER_MAX; i++) {
		over[i] = raw_connect(f->port);
	}
	for (int i = 0; conns_refused() != RPC_SERVER_OVER_MAX && i < 500;
	     i++) {
		nng_msleep(10);
	}
	assert_int_equal(conns_refused(), RPC_SERVER_OVER_MAX);
	/* Idle for the second after which one may be evicted. */
	nng_msleep(1100);
	evict_refused = RPC_SERVER_OVER_MAX + 1;
	atomic_store(&hold_until, evicted);
	raw_send(over[0], PROTO_T_CANCEL);
	for (int i = 0; atomic_load(&hold_until) != NULL && i < 500; i++) {
		nng_msleep(10);
	}
	assert_null(atomic_load(&hold_until));
	/* The oldest, idle longest, is the one evicted. */
	newer = raw_connect(f->port);
	raw_send(f->taken, PROTO_T_STATUS);
	assert_int_equal(next_posted(&f->q), PROTO_T_STATUS);
	assert_int_equal(raw_answer(f->taken), SAGA_EINTERNAL);
	close(newer);
	for (int i = 0; i < RPC_SERVER_OVER_MAX; i++) {
		close(over[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_rpc_server_over_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_rpc_server_over_closed_not_run, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_rpc_server_evicted_not_run, setup, teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
