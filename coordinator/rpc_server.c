/* SPDX-License-Identifier: MIT */
/*
 * rpc_server: REP contexts of the client API. See rpc_server.h.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h> /* nng_clock */

#include "log.h"
#include "proto_val.h"
#include "rpc_server.h"
#include "saga_err.h"

/* How long an answer may wait for its client to read it: a client that
 * does not read for that long has its connection closed, so that it
 * cannot hold contexts with answers nobody takes. */
#define RPC_SEND_TIMEOUT_MS 10000

/* Warnings about clients (refused requests, answers not read): at most
 * this many a second, the rest counted and said with the next one, or on
 * a line of their own once their second is over (rpc_server_warn_flush)
 * or the server stops. */
#define RPC_WARN_PER_S 10

typedef enum rpc_state {
	W_RECV,
	W_DISPATCH,
	W_SEND,
} rpc_state;

struct rpc_req {
	coord_event  ev;
	rpc_server  *srv;
	nng_ctx      ctx;
	nng_aio     *aio;
	rpc_state    state;
	nng_msg     *req; /* the request's bytes, borrowed by msg until
			   * proto_msg_detach (then NULL) */
	nng_pipe     pipe; /* the connection it came on */
	proto_msg    msg;
};

struct rpc_server {
	nng_socket    sock;
	rpc_req      *reqs;
	size_t        nctx;
	proto_limits  lim;
	char          service[64];
	coord_queue  *q;
	pthread_mutex_t warn_mtx;
	nng_time        warn_sec;   /* the second of the count below */
	unsigned        warn_n;     /* warnings in warn_sec */
	unsigned long   warn_quiet; /* not written since the last one */
};

/* Writes the count of warnings not written, if any: at once when final
 * (no warning comes after it), else only once the second they were
 * counted in is over, so that a burst still going on gets one line for
 * its second rather than one per call. Each warning left out is counted
 * on exactly one line, this one or rpc_warn's. */
static void
rpc_warn_flush(rpc_server *srv, bool final)
{
	unsigned long quiet = 0;

	pthread_mutex_lock(&srv->warn_mtx);
	if (srv->warn_quiet > 0 &&
	    (final || nng_clock() / 1000 != srv->warn_sec)) {
		quiet           = srv->warn_quiet;
		srv->warn_quiet = 0;
	}
	pthread_mutex_unlock(&srv->warn_mtx);
	if (quiet > 0) {
		log_warn("api: and %lu such warnings not written, at most %d "
		         "a second",
		    quiet, RPC_WARN_PER_S);
	}
}

/* Logs a warning about a client, at most RPC_WARN_PER_S a second. Runs
 * on nng's threads. */
static void
rpc_warn(rpc_server *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
rpc_warn(rpc_server *srv, const char *fmt, ...)
{
	nng_time      now = nng_clock() / 1000;
	unsigned long quiet;
	char          text[512];
	va_list       ap;

	pthread_mutex_lock(&srv->warn_mtx);
	if (now != srv->warn_sec) {
		srv->warn_sec = now;
		srv->warn_n   = 0;
	}
	if (srv->warn_n >= RPC_WARN_PER_S) {
		srv->warn_quiet++;
		pthread_mutex_unlock(&srv->warn_mtx);
		return;
	}
	srv->warn_n++;
	quiet           = srv->warn_quiet;
	srv->warn_quiet = 0;
	pthread_mutex_unlock(&srv->warn_mtx);
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* Cut to fit: not inside a character (a client's text). */
	proto_utf8_trim(text);
	if (quiet > 0) {
		log_warn("%s (and %lu such warnings not written, at most %d "
		         "a second)",
		    text, quiet, RPC_WARN_PER_S);
	} else {
		log_warn("%s", text);
	}
}

static void
rpc_send(rpc_req *r, const proto_msg *reply)
{
	proto_buf buf;
	nng_msg  *m = NULL;
	int       rv;

	proto_buf_init(&buf);
	if ((rv = proto_msg_encode(reply, &buf)) != 0) {
		proto_msg err;

		log_error("api: cannot encode a %s reply: %s",
		    proto_type_name(reply->type), saga_strerror(rv));
		proto_msg_error_init(&err, NULL, SAGA_EINTERNAL,
		    "internal error encoding the reply");
		proto_buf_reset(&buf);
		(void) proto_msg_encode(&err, &buf);
	}
	proto_msg_fini(&r->msg);
	nng_msg_free(r->req);
	r->req = NULL;
	if (nng_msg_alloc(&m, 0) != 0 ||
	    nng_msg_append(m, buf.data, buf.len) != 0) {
		/* No memory for a reply: receive the next request; the
		 * client times out. */
		nng_msg_free(m);
		proto_buf_fini(&buf);
		r->state = W_RECV;
		nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	proto_buf_fini(&buf);
	r->state = W_SEND;
	nng_aio_set_msg(r->aio, m);
	nng_aio_set_timeout(r->aio, RPC_SEND_TIMEOUT_MS);
	nng_ctx_send(r->ctx, r->aio);
}

/* Runs on an nng thread. */
static void
rpc_cb(void *arg)
{
	rpc_req    *r  = arg;
	int         rv = nng_aio_result(r->aio);
	proto_error perr;
	proto_msg   reply;

	switch (r->state) {
	case W_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(r->aio));
			nng_aio_set_msg(r->aio, NULL);
		}
		if (rv == NNG_ETIMEDOUT) {
			/* Its client does not read: whatever else that
			 * connection holds would wait as long. */
			rpc_warn(r->srv,
			    "api: a client did not read its answer within "
			    "%d ms; closing its connection",
			    RPC_SEND_TIMEOUT_MS);
			nng_pipe_close(r->pipe);
		}
		r->state = W_RECV;
		nng_aio_set_timeout(r->aio, NNG_DURATION_INFINITE);
		nng_ctx_recv(r->ctx, r->aio);
		return;
	case W_RECV:
		if (rv == NNG_ECLOSED) {
			return;
		}
		if (rv != 0) {
			nng_ctx_recv(r->ctx, r->aio);
			return;
		}
		r->req  = nng_aio_get_msg(r->aio);
		r->pipe = nng_msg_get_pipe(r->req);
		nng_aio_set_msg(r->aio, NULL);
		if ((rv = proto_msg_decode(nng_msg_body(r->req),
		         nng_msg_len(r->req), &r->srv->lim, &r->msg, &perr)) !=
		    0) {
			proto_msg_error_init(&reply, NULL, rv, perr.msg);
			rpc_warn(r->srv, "api: refused a request: %s: %s",
			    saga_errname(rv), perr.msg);
			rpc_send(r, &reply);
			return;
		}
		/* A request may wait long (a WAIT, up to 7 days): it keeps
		 * what its fields need, not the whole message and msgpack-c's
		 * tree of it (some 24 MiB for 1 MiB of unknown keys' nils).
		 * Without memory for the copy it keeps them. */
		if (proto_msg_detach(&r->msg) == 0) {
			nng_msg_free(r->req);
			r->req = NULL;
		}
		if (r->msg.type == PROTO_T_PING) {
			proto_msg_init(&reply);
			reply.type    = PROTO_T_PONG;
			reply.service = proto_str_c(r->srv->service);
			rpc_send(r, &reply);
			return;
		}
		r->state = W_DISPATCH;
		coord_queue_push(r->srv->q, &r->ev, COORD_EV_API, r);
		return;
	case W_DISPATCH:
		return;
	}
}

int
rpc_server_start(rpc_server **out, const char *url, size_t nctx,
    const proto_limits *lim, const char *service, const saga_tls_opts *tls,
    coord_queue *q, char *err, size_t errlen)
{
	rpc_server *srv;
	int         rv;

	if ((srv = calloc(1, sizeof(*srv))) == NULL ||
	    (srv->reqs = calloc(nctx, sizeof(rpc_req))) == NULL) {
		free(srv);
		return (SAGA_ENOMEM);
	}
	srv->nctx = nctx;
	srv->lim  = *lim;
	srv->q    = q;
	pthread_mutex_init(&srv->warn_mtx, NULL);
	snprintf(srv->service, sizeof(srv->service), "%s", service);
	if ((rv = nng_rep0_open(&srv->sock)) != 0) {
		snprintf(err, errlen, "api: %s", nng_strerror(rv));
		pthread_mutex_destroy(&srv->warn_mtx);
		free(srv->reqs);
		free(srv);
		return (SAGA_EIO);
	}
	/* Larger than the decoder's limit so that an oversized request gets
	 * an ETOOBIG reply rather than a dropped connection. */
	nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ,
	    lim->max_msg_bytes * 4);
	for (size_t i = 0; i < nctx; i++) {
		rpc_req *r = &srv->reqs[i];

		r->srv = srv;
		if ((rv = nng_ctx_open(&r->ctx, srv->sock)) != 0 ||
		    (rv = nng_aio_alloc(&r->aio, rpc_cb, r)) != 0) {
			snprintf(err, errlen, "api: %s", nng_strerror(rv));
			rpc_server_free(srv);
			return (SAGA_ENOMEM);
		}
	}
	if ((rv = saga_tls_listen(srv->sock, url, tls, err, errlen)) != 0) {
		rpc_server_free(srv);
		return (rv);
	}
	for (size_t i = 0; i < nctx; i++) {
		srv->reqs[i].state = W_RECV;
		nng_ctx_recv(srv->reqs[i].ctx, srv->reqs[i].aio);
	}
	*out = srv;
	return (0);
}

void
rpc_server_stop(rpc_server *srv)
{
	if (srv == NULL) {
		return;
	}
	for (size_t i = 0; i < srv->nctx; i++) {
		if (srv->reqs[i].aio != NULL) {
			nng_aio_stop(srv->reqs[i].aio);
		}
	}
	/* No callback runs any more: no warning comes to say the count. */
	rpc_warn_flush(srv, true);
}

void
rpc_server_warn_flush(rpc_server *srv)
{
	if (srv == NULL) {
		return;
	}
	rpc_warn_flush(srv, false);
}

void
rpc_server_free(rpc_server *srv)
{
	if (srv == NULL) {
		return;
	}
	for (size_t i = 0; i < srv->nctx; i++) {
		if (srv->reqs[i].aio != NULL) {
			nng_aio_stop(srv->reqs[i].aio);
		}
	}
	/* Without rpc_server_stop before, the count is said here. */
	rpc_warn_flush(srv, true);
	nng_close(srv->sock);
	for (size_t i = 0; i < srv->nctx; i++) {
		rpc_req *r = &srv->reqs[i];

		if (r->aio != NULL) {
			nng_msg_free(nng_aio_get_msg(r->aio));
			nng_aio_free(r->aio);
		}
		proto_msg_fini(&r->msg);
		nng_msg_free(r->req);
	}
	pthread_mutex_destroy(&srv->warn_mtx);
	free(srv->reqs);
	free(srv);
}

bool
rpc_req_client_gone(const rpc_req *r)
{
	nng_sockaddr sa;

	/* nng finds a pipe by its id until it is closed and reaped; any
	 * transport gives its remote address. */
	return (nng_pipe_get_addr(r->pipe, NNG_OPT_REMADDR, &sa) ==
	    NNG_ENOENT);
}

void
rpc_req_drop_vals(rpc_req *r)
{
	proto_msg_drop_vals(&r->msg);
}

const proto_msg *
rpc_req_msg(const rpc_req *r)
{
	return (&r->msg);
}

void
rpc_req_reply(rpc_req *r, const proto_msg *reply)
{
	rpc_send(r, reply);
}

void
rpc_req_error(rpc_req *r, int code, const char *fmt, ...)
{
	char      text[512];
	proto_msg m;
	va_list   ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* The text often echoes the request (a saga name of 300 "é"): cut
	 * to fit, it must not end inside a character, or the encoder
	 * refuses it (the client's decoder would). */
	proto_utf8_trim(text);
	proto_msg_error_init(&m, &r->msg, code, text);
	rpc_send(r, &m);
}
