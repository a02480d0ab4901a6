/* SPDX-License-Identifier: MIT */
/*
 * dispatch: commands from sagad to participants over nng REQ/REP.
 *
 * One REQ socket per participant dials every endpoint of its list (nng
 * spreads requests across the connected pipes and redials on its own). A
 * participant has max_in_flight slots, each an nng context with one aio,
 * and at most max_in_flight commands in flight: that is the bulkhead.
 * dispatch_send puts a command in the participant's FIFO; dispatch_flush,
 * which the engine calls once per turn, sends what the bulkhead lets
 * through: commands that wait together with the same timeout go out as
 * one BATCH message of up to max_batch (docs/protocol.md), others alone.
 * A command's attempt timeout starts only when a slot hands it to nng.
 * nng callbacks never touch engine state: a finished message posts its
 * slot to the engine's coord_queue, and the engine thread reads the
 * outcome of each of its commands with dispatch_event, which also frees
 * the slot. A BATCH answered with an ERROR reports no outcome; its
 * commands are sent again: alone from then on if the ERROR says that the
 * participant does not take BATCH messages (EMSGTYPE, ESTRLEN, ETYPE),
 * in BATCHes of half the size after ETOOBIG, alone this once after any
 * other (docs/operations.md).
 *
 * nng's own REQ resend (NNG_OPT_REQ_RESENDTIME) is set above the longest
 * attempt timeout, so that within an attempt only a pipe closing makes nng
 * resend; retries are the engine's. Duplicates are harmless either way
 * (participants are idempotent, DESIGN.md invariant 2).
 */
#ifndef COORDINATOR_DISPATCH_H
#define COORDINATOR_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "coord_queue.h"
#include "proto_val.h"
#include "saga_def.h"
#include "saga_id.h"
#include "saga_tls.h"

typedef struct dispatch dispatch;

/* disp_tag says which command a slot carries. */
typedef struct disp_tag {
	saga_id  id;
	int32_t  step;
	uint32_t kind;
	uint32_t attempt;
	uint64_t gen;  /* the engine's generation when it was sent */
	uint64_t copy; /* the copy of the saga in memory that sent it */
} disp_tag;

/* disp_done is the outcome of one command. */
typedef struct disp_done {
	disp_tag tag;
	int      result;       /* 0, SAGA_ETIMEDOUT or SAGA_EIO */
	char     errtext[160]; /* when result != 0 */
	proto_raw reply;       /* result 0: the reply's bytes, valid only
	                          during the done callback */
	int64_t  duration_us;  /* from the hand-off to nng to the end */
	char     participant[64];
	size_t   batch_index; /* its place in the message that carried it */
	size_t   batch_size;  /* commands in that message (1: alone) */
} disp_done;

/* dispatch_alloc makes a dispatcher posting to q; tls+tcp:// endpoints
 * are dialled with tls (not copied: it must outlive the dispatcher); a
 * BATCH is at most max_msg_bytes. Returns 0 or SAGA_ENOMEM. */
int dispatch_alloc(dispatch **out, coord_queue *q, const saga_tls_opts *tls,
    size_t max_msg_bytes);

/* dispatch_stop stops every command and waits for their callbacks: no
 * event is posted after it returns (those already posted stay valid until
 * dispatch_free). NULL-safe. */
void dispatch_stop(dispatch *d);

/* dispatch_free frees everything (stopping first); NULL-safe. Call from
 * the engine thread after the queue's dispatch events were discarded. */
void dispatch_free(dispatch *d);

/* dispatch_configure makes the participant set equal to parts: new ones are
 * opened, changed ones (endpoints, max_in_flight or max_batch) replaced
 * (the old socket closes once its commands finished; its waiting commands
 * move to the new one, whose bulkhead counts the old socket's commands
 * in flight until they finish), missing ones retired: their waiting
 * commands are given to done as failed (SAGA_EIO), as dispatch_event
 * would. resend_ms is the REQ resend time. Returns 0, or SAGA_EINVAL /
 * SAGA_EIO with the reason in err (a URL nng rejects). */
int dispatch_configure(dispatch *d, saga_participant_def *const *parts,
    size_t n, int64_t resend_ms, void (*done)(void *arg, disp_done *dd),
    void *arg, char *err, size_t errlen);

/* dispatch_set_resend sets every participant's REQ resend time (a
 * definition version with a longer timeout was loaded). */
void dispatch_set_resend(dispatch *d, int64_t resend_ms);

/* dispatch_check_tls tells whether dispatch_configure could set up the
 * TLS of parts with sagad's tls (may be NULL): for each participant with
 * a tls+tcp:// endpoint, its TLS configuration is built from its files,
 * and its own certificate checked against its key (nng takes a
 * mismatched pair, and every handshake then fails). The endpoints' URLs
 * are the loader's (coord_config_url_check). Opens no socket. Returns 0,
 * or SAGA_EINVAL with the first problem in err. */
int dispatch_check_tls(const saga_tls_opts *tls,
    saga_participant_def *const *parts, size_t n, char *err, size_t errlen);

/* dispatch_send queues msg (copied, one encoded COMMAND) for participant
 * with an attempt timeout; dispatch_flush sends it. Returns 0 (the
 * outcome arrives later as an event), SAGA_ENOTFOUND (no such participant
 * in the configuration) or SAGA_ENOMEM. */
int dispatch_send(dispatch *d, const char *participant, const disp_tag *tag,
    proto_raw msg, int64_t timeout_ms);

/* dispatch_flush sends the queued commands that the bulkheads let
 * through. Returns 0, or SAGA_ENOMEM (what was not sent stays queued for
 * the next flush). */
int dispatch_flush(dispatch *d);

/* dispatch_event reads the message posted by ev (type COORD_EV_DISPATCH):
 * done is called once per command it carried, in order, with its outcome
 * (a BATCH_REPLY is decoded under lim and split); done owns dd->reply.
 * Then it frees the slot. */
void dispatch_event(dispatch *d, coord_event *ev, const proto_limits *lim,
    void (*done)(void *arg, disp_done *dd), void *arg);

/* dispatch_drop_waiting drops every command still waiting for a slot (on a
 * database outage: the sagas are reloaded and resent). */
void dispatch_drop_waiting(dispatch *d);

/* dispatch_stats calls cb for every participant with the commands it has
 * in flight and waiting for a slot. */
void dispatch_stats(const dispatch *d,
    void (*cb)(void *arg, const char *participant, size_t busy,
        size_t waiting),
    void *arg);

/* dispatch_in_flight returns the number of commands handed to nng. */
size_t dispatch_in_flight(const dispatch *d);

#endif /* COORDINATOR_DISPATCH_H */
