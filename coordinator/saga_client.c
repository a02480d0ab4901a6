/* SPDX-License-Identifier: MIT */
/*
 * saga_client: REQ socket, one request at a time. See saga_client.h.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "saga_client.h"
#include "saga_err.h"

struct saga_client {
	nng_socket sock;
	nng_msg   *reply; /* bytes the last decoded reply borrows */
	bool       sent;  /* the last call's request was handed to nng */
};

static int
saga_client_make(saga_client **out, const char *url, bool wait,
    const saga_tls_opts *tls, char *err, size_t errlen)
{
	saga_client *c;
	int          rv;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return (SAGA_ENOMEM);
	}
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		snprintf(err, errlen, "%s: %s", url, nng_strerror(rv));
		free(c);
		return (SAGA_ENOMEM);
	}
	if ((rv = saga_tls_dial(c->sock, url, tls,
	         wait ? 0 : NNG_FLAG_NONBLOCK, err, errlen)) != 0) {
		nng_close(c->sock);
		free(c);
		/* A URL nng cannot use is the caller's mistake; anything
		 * else (refused, unreachable) means nobody answers now. */
		return (rv == NNG_EINVAL || rv == NNG_EADDRINVAL ||
		            rv == NNG_ENOTSUP
		        ? SAGA_EINVAL
		        : SAGA_EUNAVAIL);
	}
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 20);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 200);
	/* No resend by nng: a request is sent once, its reply awaited. */
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, 64 * 1024 * 1024);
	*out = c;
	return (0);
}

int
saga_client_open(saga_client **out, const char *url, char *err, size_t errlen)
{
	return (saga_client_make(out, url, false, NULL, err, errlen));
}

int
saga_client_dial(saga_client **out, const char *url, char *err, size_t errlen)
{
	return (saga_client_make(out, url, true, NULL, err, errlen));
}

int
saga_client_dial_tls(saga_client **out, const char *url,
    const saga_tls_opts *tls, char *err, size_t errlen)
{
	return (saga_client_make(out, url, true, tls, err, errlen));
}

void
saga_client_free(saga_client *c)
{
	if (c == NULL) {
		return;
	}
	nng_close(c->sock);
	nng_msg_free(c->reply);
	free(c);
}

static int
saga_client_roundtrip(saga_client *c, proto_raw bytes, int64_t timeout_ms,
    nng_msg **reply, char *err, size_t errlen)
{
	nng_msg *m;
	int      rv;

	c->sent = false;
	/* nng's durations are 32-bit milliseconds: a longer wait was cut
	 * (2^32 + 50 ms to 50 ms), and one that came out negative refused,
	 * leaving the last call's timeout. Past 24.8 days: no limit. */
	if (timeout_ms < 0 || timeout_ms > INT32_MAX) {
		timeout_ms = NNG_DURATION_INFINITE;
	}
	nng_socket_set_ms(
	    c->sock, NNG_OPT_SENDTIMEO, (nng_duration) timeout_ms);
	nng_socket_set_ms(
	    c->sock, NNG_OPT_RECVTIMEO, (nng_duration) timeout_ms);
	if ((rv = nng_msg_alloc(&m, 0)) != 0) {
		return (SAGA_ENOMEM);
	}
	if ((rv = nng_msg_append(m, bytes.ptr, bytes.len)) != 0) {
		nng_msg_free(m);
		return (SAGA_ENOMEM);
	}
	if ((rv = nng_sendmsg(c->sock, m, 0)) != 0) {
		nng_msg_free(m);
		/* The REQ socket had no connection to send on for that
		 * long: none was made, or sagad closed each (beyond its
		 * --api-max-connections). */
		if (rv == NNG_ETIMEDOUT) {
			snprintf(err, errlen,
			    "no connection to send on (is it running? sagad "
			    "also closes connections beyond its "
			    "--api-max-connections)");
		} else {
			snprintf(err, errlen, "sending: %s",
			    nng_strerror(rv));
		}
		return (rv == NNG_ETIMEDOUT ? SAGA_ETIMEDOUT : SAGA_EIO);
	}
	/* The REQ socket took the request: it went to a connection, and
	 * from here on the peer may get it and act on it, whatever happens
	 * to its answer. nng does not send it again (no resend time), so a
	 * closed connection ends the call with ECONNRESET, a lost or late
	 * answer with ETIMEDOUT: either way, the outcome is unknown. */
	c->sent = true;
	if ((rv = nng_recvmsg(c->sock, reply, 0)) != 0) {
		snprintf(err, errlen, "%s",
		    rv == NNG_ETIMEDOUT ? "no answer (is sagad running?)"
		                        : nng_strerror(rv));
		return (rv == NNG_ETIMEDOUT ? SAGA_ETIMEDOUT : SAGA_EIO);
	}
	return (0);
}

int
saga_client_call(saga_client *c, const proto_msg *req, int64_t timeout_ms,
    proto_msg *reply, char *err, size_t errlen)
{
	proto_buf   b;
	proto_error perr;
	int         rv;

	/* Nothing of this call has left yet, whatever the last one did. */
	c->sent = false;
	proto_msg_init(reply);
	proto_buf_init(&b);
	if ((rv = proto_msg_encode(req, &b)) != 0) {
		snprintf(err, errlen, "cannot encode the request: %s",
		    saga_strerror(rv));
		proto_buf_fini(&b);
		return (rv);
	}
	nng_msg_free(c->reply);
	c->reply = NULL;
	rv = saga_client_roundtrip(c, proto_buf_raw(&b), timeout_ms,
	    &c->reply, err, errlen);
	proto_buf_fini(&b);
	if (rv != 0) {
		return (rv);
	}
	if ((rv = proto_msg_decode(nng_msg_body(c->reply),
	         nng_msg_len(c->reply), NULL, reply, &perr)) != 0) {
		snprintf(err, errlen, "malformed reply: %s", perr.msg);
		return (rv);
	}
	return (0);
}

bool
saga_client_sent(const saga_client *c)
{
	return (c->sent);
}

int
saga_client_call_raw(saga_client *c, proto_raw bytes, int64_t timeout_ms,
    proto_buf *out, char *err, size_t errlen)
{
	nng_msg *m = NULL;
	int      rv;

	if ((rv = saga_client_roundtrip(c, bytes, timeout_ms, &m, err,
	         errlen)) != 0) {
		return (rv);
	}
	rv = proto_buf_append(out, nng_msg_body(m), nng_msg_len(m));
	nng_msg_free(m);
	return (rv);
}
