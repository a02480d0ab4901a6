/* SPDX-License-Identifier: MIT */
/*
 * saga_client: a synchronous client of sagad's API (and of any endpoint
 * that answers PING), for sagactl and the tests.
 */
#ifndef COORDINATOR_SAGA_CLIENT_H
#define COORDINATOR_SAGA_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "proto_msg.h"
#include "saga_tls.h"

typedef struct saga_client saga_client;

/* saga_client_open dials url (the dial completes in the background; a
 * call waits for it up to its timeout). Returns 0, SAGA_ENOMEM or
 * SAGA_EINVAL (bad URL, with the reason in err). */
int saga_client_open(
    saga_client **out, const char *url, char *err, size_t errlen);

/* saga_client_dial is saga_client_open for interactive tools: it connects
 * now and fails at once with SAGA_EUNAVAIL ("connection refused" in err)
 * when nothing listens, instead of letting the first call time out. */
int saga_client_dial(
    saga_client **out, const char *url, char *err, size_t errlen);

/* saga_client_dial_tls is saga_client_dial with TLS options for a
 * tls+tcp:// url (mutual: the client presents tls->cert). */
int saga_client_dial_tls(saga_client **out, const char *url,
    const saga_tls_opts *tls, char *err, size_t errlen);

/* saga_client_free closes the connection; NULL-safe. */
void saga_client_free(saga_client *c);

/* saga_client_call sends req and waits up to timeout_ms for the reply
 * (negative, or more than INT32_MAX: no limit),
 * which it decodes into reply (free with proto_msg_fini). An ERROR reply is
 * returned as such (reply->type == PROTO_T_ERROR) with 0. Returns 0,
 * SAGA_ETIMEDOUT (no answer: sagad down or busy), SAGA_EIO, SAGA_ENOMEM,
 * or the decode error of a malformed reply; err says what happened.
 * A failure says nothing about whether the peer acted on req: ask
 * saga_client_sent. */
int saga_client_call(saga_client *c, const proto_msg *req,
    int64_t timeout_ms, proto_msg *reply, char *err, size_t errlen);

/* saga_client_sent tells, after a call that failed, whether its request
 * left: false, the peer never got it (nothing was done); true, the peer
 * may have got it and acted on it, and its answer was lost (connection
 * closed, timeout) or unreadable: the outcome is unknown, and only an
 * idempotent request (a START with a key) may be sent again blindly. */
bool saga_client_sent(const saga_client *c);

/* saga_client_call_raw sends bytes as they are (for tests of bad input)
 * and returns the raw reply in out (free with proto_buf_fini). */
int saga_client_call_raw(saga_client *c, proto_raw bytes, int64_t timeout_ms,
    proto_buf *out, char *err, size_t errlen);

#endif /* COORDINATOR_SAGA_CLIENT_H */
