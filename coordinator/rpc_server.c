/* SPDX-License-Identifier: MIT */
/*
 * rpc_server: REP contexts of the client API. See rpc_server.h.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
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

/* Connections beyond --api-max-connections are kept, at most
 * RPC_SERVER_OVER_MAX, and each request on one is answered EOVERLOAD
 * until the others leave room: a client whose connection is closed after
 * it sent a request cannot tell whether it was carried out (and nng may
 * drop an answer still on its way when the connection is closed). When
 * all are taken, the one idle longest, if for RPC_OVER_MS or more, is
 * closed to make room (a request of its that nng holds, not yet given to
 * a context, does not count as activity: it is answered EOVERLOAD, to a
 * closed connection); else the new connection is closed as soon as
 * made. */
#define RPC_OVER_MAX RPC_SERVER_OVER_MAX
#define RPC_OVER_MS  1000

/* The ids of the connections taken (not beyond the most): a set, open
 * addressing with linear probing, cap a power of two (0: none yet), at
 * most half full. Only a request from one of them is carried out: one
 * from a connection gone (nng tells of it before a context may get its
 * last request), or beyond the most, is not. */
typedef struct rpc_ids {
	uint32_t *v; /* 0: a free slot (nng's pipe ids start at 1) */
	size_t    cap;
	size_t    n;
} rpc_ids;

typedef struct rpc_over {
	nng_pipe pipe;
	nng_time since; /* made, or its last request */
} rpc_over;

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
	pthread_mutex_t conn_mtx;
	size_t          max_conns;
	size_t          nconns;       /* connections nng told of, not gone */
	rpc_ids         taken;        /* those among them not beyond */
	unsigned long   conns_refused;
	rpc_over        over[RPC_OVER_MAX]; /* beyond the most; id 0: free */
	size_t          nover;
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

/* Writes the peer address of p ("127.0.0.1:5123", "[::1]:5123", "a local
 * peer (PATH)" on an ipc:// socket) into buf. */
static void
rpc_peer(nng_pipe p, char *buf, size_t len)
{
	nng_sockaddr sa;
	char         ip[INET6_ADDRSTRLEN];

	snprintf(buf, len, "an unknown address");
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0) {
		return;
	}
	switch (sa.s_family) {
	case NNG_AF_INET:
		if (inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof(ip))) {
			snprintf(buf, len, "%s:%u", ip,
			    (unsigned) ntohs(sa.s_in.sa_port));
		}
		break;
	case NNG_AF_INET6:
		if (inet_ntop(AF_INET6, sa.s_in6.sa_addr, ip, sizeof(ip))) {
			snprintf(buf, len, "[%s]:%u", ip,
			    (unsigned) ntohs(sa.s_in6.sa_port));
		}
		break;
	case NNG_AF_IPC:
		/* nng gives the listener's path, the same for all. */
		snprintf(buf, len, "a local peer (%s)", sa.s_ipc.sa_path);
		break;
	default:
		break;
	}
}

static size_t
rpc_ids_slot(const rpc_ids *s, uint32_t id)
{
	return ((size_t) (id * UINT32_C(2654435761)) & (s->cap - 1));
}

static bool
rpc_ids_has(const rpc_ids *s, uint32_t id)
{
	if (s->cap == 0) {
		return (false);
	}
	for (size_t i = rpc_ids_slot(s, id); s->v[i] != 0;
	     i = (i + 1) & (s->cap - 1)) {
		if (s->v[i] == id) {
			return (true);
		}
	}
	return (false);
}

/* Adds id (not in s). False when out of memory. */
static bool
rpc_ids_add(rpc_ids *s, uint32_t id)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap) {
		rpc_ids ns = { NULL, s->cap ? s->cap * 2 : 64, 0 };

		if ((ns.v = calloc(ns.cap, sizeof(*ns.v))) == NULL) {
			return (false);
		}
		for (size_t k = 0; k < s->cap; k++) {
			if (s->v[k] != 0) {
				(void) rpc_ids_add(&ns, s->v[k]);
			}
		}
		free(s->v);
		*s = ns;
	}
	i = rpc_ids_slot(s, id);
	while (s->v[i] != 0) {
		i = (i + 1) & (s->cap - 1);
	}
	s->v[i] = id;
	s->n++;
	return (true);
}

/* Removes id, if there: the entries after it in its run move back to
 * where a lookup finds them (no tombstones). */
static void
rpc_ids_del(rpc_ids *s, uint32_t id)
{
	size_t m = s->cap - 1, i, j;

	if (s->cap == 0) {
		return;
	}
	for (i = rpc_ids_slot(s, id); s->v[i] != id; i = (i + 1) & m) {
		if (s->v[i] == 0) {
			return;
		}
	}
	for (j = (i + 1) & m; s->v[j] != 0; j = (j + 1) & m) {
		size_t home = rpc_ids_slot(s, s->v[j]);

		/* v[j] stays unless i lies on its way from home to j. */
		if (((j - home) & m) >= ((j - i) & m)) {
			s->v[i] = s->v[j];
			i       = j;
		}
	}
	s->v[i] = 0;
	s->n--;
}

/* Takes p as a connection beyond the most, to be answered EOVERLOAD:
 * false when there is no room (every slot taken by one not idle for
 * RPC_OVER_MS). Under conn_mtx. */
static bool
rpc_over_add(rpc_server *srv, nng_pipe p, nng_time now)
{
	rpc_over *slot = NULL;

	for (size_t i = 0; i < RPC_OVER_MAX; i++) {
		rpc_over *o = &srv->over[i];

		if (o->pipe.id == 0) {
			slot = o;
			break;
		}
		if (now - o->since >= RPC_OVER_MS &&
		    (slot == NULL || o->since < slot->since)) {
			slot = o;
		}
	}
	if (slot == NULL) {
		return (false);
	}
	if (slot->pipe.id != 0) {
		/* Its REM_POST finds it gone from the slots. */
		nng_pipe_close(slot->pipe);
		srv->nover--;
	}
	slot->pipe  = p;
	slot->since = now;
	srv->nover++;
	return (true);
}

/* Frees the slot of p, if it has one. Under conn_mtx. */
static void
rpc_over_remove(rpc_server *srv, nng_pipe p)
{
	for (size_t i = 0; srv->nover > 0 && i < RPC_OVER_MAX; i++) {
		if (srv->over[i].pipe.id == p.id) {
			srv->over[i].pipe.id = 0;
			srv->nover--;
			return;
		}
	}
}

/* Counts the connections. One made with max_conns taken is kept as one
 * beyond the most, to answer EOVERLOAD (rpc_over_add), or, without room
 * for it (or memory), closed before nng adds it to the socket. nng tells
 * of the removal of a pipe closed here as of any other (REM_POST). Runs
 * on nng's threads. */
static void
rpc_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	rpc_server *srv  = arg;
	bool        over = false, shut = false;

	pthread_mutex_lock(&srv->conn_mtx);
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		if (srv->taken.n >= srv->max_conns) {
			over = true;
			shut = !rpc_over_add(srv, p, nng_clock());
			srv->conns_refused++;
		} else if (!rpc_ids_add(&srv->taken, p.id)) {
			shut = true;
		}
		srv->nconns++;
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		rpc_ids_del(&srv->taken, p.id);
		rpc_over_remove(srv, p);
		srv->nconns--;
	}
	pthread_mutex_unlock(&srv->conn_mtx);
	if (shut) {
		nng_pipe_close(p);
	}
	if (over) {
		char peer[NNG_MAXADDRLEN + 32];

		rpc_peer(p, peer, sizeof(peer));
		rpc_warn(srv,
		    "api: refused a connection from %s: %zu connections "
		    "open, the most --api-max-connections allows%s",
		    peer, srv->max_conns,
		    shut ? "; closed at once (too many such)" : "");
	}
}

/* Tells whether a request from p is not to be carried out: p is not a
 * connection taken (it is beyond the most, or gone: evicted, closed by
 * its client). One beyond the most that finds room now (another closed
 * meanwhile) is taken. */
static bool
rpc_pipe_over(rpc_server *srv, nng_pipe p)
{
	bool over = true;

	pthread_mutex_lock(&srv->conn_mtx);
	if (rpc_ids_has(&srv->taken, p.id)) {
		over = false;
	}
	for (size_t i = 0; over && srv->nover > 0 && i < RPC_OVER_MAX; i++) {
		rpc_over *o = &srv->over[i];

		if (o->pipe.id != p.id) {
			continue;
		}
		if (srv->taken.n < srv->max_conns &&
		    rpc_ids_add(&srv->taken, p.id)) {
			o->pipe.id = 0;
			srv->nover--;
			over = false;
		} else {
			o->since = nng_clock();
		}
		break;
	}
	pthread_mutex_unlock(&srv->conn_mtx);
	return (over);
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
		if (rpc_pipe_over(r->srv, r->pipe)) {
			char text[160];

			/* Not read: whatever it asks, it is not done. */
			snprintf(text, sizeof(text),
			    "sagad has the most client connections "
			    "--api-max-connections allows (%zu): try again "
			    "later",
			    r->srv->max_conns);
			proto_msg_error_init(
			    &reply, NULL, SAGA_EOVERLOAD, text);
			rpc_send(r, &reply);
			return;
		}
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
    size_t max_conns, const proto_limits *lim, const char *service,
    const saga_tls_opts *tls, coord_queue *q, char *err, size_t errlen)
{
	rpc_server *srv;
	int         rv;

	if ((srv = calloc(1, sizeof(*srv))) == NULL ||
	    (srv->reqs = calloc(nctx, sizeof(rpc_req))) == NULL) {
		free(srv);
		return (SAGA_ENOMEM);
	}
	srv->nctx      = nctx;
	srv->lim       = *lim;
	srv->q         = q;
	srv->max_conns = max_conns;
	pthread_mutex_init(&srv->conn_mtx, NULL);
	pthread_mutex_init(&srv->warn_mtx, NULL);
	snprintf(srv->service, sizeof(srv->service), "%s", service);
	if ((rv = nng_rep0_open(&srv->sock)) != 0) {
		snprintf(err, errlen, "api: %s", nng_strerror(rv));
		pthread_mutex_destroy(&srv->conn_mtx);
		pthread_mutex_destroy(&srv->warn_mtx);
		free(srv->reqs);
		free(srv);
		return (SAGA_EIO);
	}
	/* Larger than the decoder's limit so that an oversized request gets
	 * an ETOOBIG reply rather than a dropped connection. */
	nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ,
	    lim->max_msg_bytes * 4);
	if ((rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_PRE,
	         rpc_pipe_cb, srv)) != 0 ||
	    (rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST,
	         rpc_pipe_cb, srv)) != 0) {
		snprintf(err, errlen, "api: %s", nng_strerror(rv));
		rpc_server_free(srv);
		return (SAGA_ENOMEM);
	}
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
	/* No count of the pipes nng_close closes. */
	nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_PRE, NULL, NULL);
	nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
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
	pthread_mutex_destroy(&srv->conn_mtx);
	pthread_mutex_destroy(&srv->warn_mtx);
	free(srv->taken.v);
	free(srv->reqs);
	free(srv);
}

void
rpc_server_conns(rpc_server *srv, size_t *open, unsigned long *refused)
{
	pthread_mutex_lock(&srv->conn_mtx);
	*open    = srv->nconns;
	*refused = srv->conns_refused;
	pthread_mutex_unlock(&srv->conn_mtx);
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
