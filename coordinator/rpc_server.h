/* SPDX-License-Identifier: MIT */
/*
 * rpc_server: sagad's client API endpoint (nng REP with contexts).
 *
 * Each context is a small state machine (receive, dispatched, send) with
 * one aio, as in nng's demo/async server. A request that cannot be decoded
 * gets an ERROR reply naming what was wrong, and PING gets PONG, both
 * straight from the nng callback; every other request is posted to the
 * engine's queue (COORD_EV_API, obj = the rpc_req) and answered later by
 * the engine thread with rpc_req_reply, exactly once. A WAIT holds its
 * context until answered, so the number of contexts bounds the number of
 * concurrent requests (further ones queue in nng).
 */
#ifndef COORDINATOR_RPC_SERVER_H
#define COORDINATOR_RPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "coord_queue.h"
#include "proto_msg.h"
#include "saga_tls.h"

/* Connections beyond the most (max_conns) kept to be answered EOVERLOAD,
 * at most. */
#define RPC_SERVER_OVER_MAX 64

typedef struct rpc_server rpc_server;
typedef struct rpc_req    rpc_req;

/* rpc_server_start listens on url with nctx contexts, decoding under lim,
 * answering PING as service; a tls+tcp:// url uses tls (mutual). A
 * connection made with max_conns open is refused, with a warning: its
 * requests are answered EOVERLOAD until another closes; beyond 64 such,
 * it (or the one idle longest) is closed. Returns 0, SAGA_ENOMEM, SAGA_EINVAL
 * (TLS configuration) or SAGA_EIO with the reason in err (bad URL,
 * address in use). */
int rpc_server_start(rpc_server **out, const char *url, size_t nctx,
    size_t max_conns, const proto_limits *lim, const char *service,
    const saga_tls_opts *tls, coord_queue *q, char *err, size_t errlen);

/* rpc_server_stop stops every context and waits for their callbacks: no
 * request is posted after it returns (those already posted stay valid
 * until rpc_server_free). Then it logs how many warnings about clients
 * were left out by the rate limit and not yet counted on a line.
 * NULL-safe. */
void rpc_server_stop(rpc_server *srv);

/* rpc_server_warn_flush logs how many warnings about clients the rate
 * limit (a few a second) left out, once the second they came in is over:
 * without it the count of the last burst waits for the next warning,
 * which may never come. Cheap (a mutex) when there is nothing to write;
 * any thread (sagad: the engine loop, every turn). NULL-safe. */
void rpc_server_warn_flush(rpc_server *srv);

/* rpc_server_free closes the socket, waits for the callbacks, logs the
 * warnings' count as rpc_server_stop does (unless it did) and frees
 * everything; requests posted but not answered are dropped. NULL-safe. */
void rpc_server_free(rpc_server *srv);

/* rpc_server_conns reads the connections open now and those refused so
 * far (over max_conns). Any thread. */
void rpc_server_conns(
    rpc_server *srv, size_t *open, unsigned long *refused);

/* rpc_req_msg returns the decoded request; valid until the reply. */
const proto_msg *rpc_req_msg(const rpc_req *r);

/* rpc_req_drop_vals frees the request's decoded trees (input_val and the
 * like become NULL), for a request that waits long after it read them. */
void rpc_req_drop_vals(rpc_req *r);

/* rpc_req_client_gone tells whether the connection r came on is closed
 * (its client went away, or was closed for not reading): an answer to r
 * would go nowhere, and only frees its context. */
bool rpc_req_client_gone(const rpc_req *r);

/* rpc_req_reply sends reply as the answer to r and makes r's context
 * receive again. Engine thread only. */
void rpc_req_reply(rpc_req *r, const proto_msg *reply);

/* rpc_req_error answers r with an ERROR message of code and text. */
void rpc_req_error(rpc_req *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* COORDINATOR_RPC_SERVER_H */
