/* SPDX-License-Identifier: MIT */
/*
 * sagactl_ops: start, retry, cancel, resolve, skip and purge. See
 * sagactl_ops.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "proto_json.h"
#include "proto_msg.h"
#include "saga_client.h"
#include "saga_engine.h"
#include "saga_err.h"
#include "saga_id.h"
#include "sagactl_db.h"
#include "sagactl_ops.h"
#include "sagactl_read.h"

/* How long a request to sagad may take (WAIT adds its own wait). */
#define OPS_CALL_MS 5000
/* The longest single WAIT; longer waits are several. */
#define OPS_WAIT_SLICE_MS 30000
/* Length of a key of sagactl's own: "sagactl-" and a UUID. */
#define OPS_KEY_LEN (8 + SAGA_ID_STRLEN)
/* --input larger than this is refused before sagad sees it. */
#define OPS_INPUT_MAX (16 * 1024 * 1024)

/* Command-specific options. */
enum {
	OPS_O_INPUT = SAGACTL_O_CMD,
	OPS_O_KEY,
	OPS_O_TRACE,
	OPS_O_WAIT,
	OPS_O_TIMEOUT,
	OPS_O_NOTE,
	OPS_O_STEP,
	OPS_O_YES,
	OPS_O_OLDER,
	OPS_O_BATCH,
	OPS_O_DRY,
	OPS_O_PROGRESS,
};

/* The parsed options of any ops command. */
typedef struct ops_args {
	sagactl_filter f;
	const char    *input;
	const char    *key;
	const char    *trace;
	bool           wait;
	int64_t        timeout_ms;
	bool           timeout_set;
	const char    *note;
	const char    *step;
	bool           yes;
	int64_t        older_ms;
	bool           older_set;
	long           batch;
	bool           dry;
	int64_t        progress_ms; /* -1: no progress lines */
	bool           progress_set;
} ops_args;

/* Checks the text of option opt: well-formed UTF-8 (the protocol's
 * strings are; one that is not failed to encode, reported as an error
 * talking to sagad, once per saga of a bulk repair), and at most max
 * bytes (0: any) where more would be refused, or cut without a word. */
static int
ops_text_opt(sagactl_ctx *ctx, const char *opt, const char *arg, size_t max,
    const char *why)
{
	size_t len = strlen(arg);

	for (size_t i = 0, n; i < len; i += n) {
		n = proto_utf8_char((const uint8_t *) arg + i, len - i);
		if (n == 0) {
			return (sagactl_usage(ctx,
			    "%s is not UTF-8 text (byte %zu of %zu is not "
			    "part of a character)",
			    opt, i + 1, len));
		}
	}
	if (max > 0 && len > max) {
		return (sagactl_usage(ctx, "%s is %zu bytes long; %s", opt,
		    len, why));
	}
	return (0);
}

static int
ops_opt(sagactl_ctx *ctx, int ch, const char *arg, void *arg_state)
{
	ops_args *a = arg_state;
	int       rv;

	if ((rv = sagactl_filter_opt(ctx, &a->f, ch, arg)) != 1) {
		return (rv);
	}
	switch (ch) {
	case OPS_O_INPUT:
		a->input = arg;
		break;
	case OPS_O_KEY:
		a->key = arg;
		return (ops_text_opt(ctx, "--key", arg, 1024,
		    "an idempotency key is at most 1024"));
	case OPS_O_TRACE:
		if (!proto_traceparent_valid(proto_str_c(arg))) {
			return (sagactl_usage(ctx,
			    "--trace \"%s\": expected a W3C traceparent "
			    "(00-<32 hex>-<16 hex>-<2 hex>)",
			    arg));
		}
		a->trace = arg;
		break;
	case OPS_O_WAIT:
		a->wait = true;
		break;
	case OPS_O_TIMEOUT:
		a->timeout_set = true;
		return (sagactl_parse_duration(
		    ctx, "--timeout", arg, &a->timeout_ms));
	case OPS_O_NOTE:
		a->note = arg;
		return (ops_text_opt(ctx, "--note", arg, 255,
		    "the saga log keeps at most 255 bytes of a note: "
		    "shorten it (an incident id first)"));
	case OPS_O_STEP:
		a->step = arg;
		return (ops_text_opt(ctx, "--step", arg, 0, NULL));
	case 'y':
	case OPS_O_YES:
		a->yes = true;
		break;
	case OPS_O_OLDER:
		a->older_set = true;
		return (sagactl_parse_duration(
		    ctx, "--older-than", arg, &a->older_ms));
	case OPS_O_BATCH: {
		char *end;

		errno    = 0;
		a->batch = strtol(arg, &end, 10);
		if (errno != 0 || *end != '\0' || a->batch < 1
		    || a->batch > 100000) {
			return (sagactl_usage(
			    ctx, "--batch \"%s\": expected 1..100000", arg));
		}
		break;
	}
	case OPS_O_DRY:
		a->dry = true;
		break;
	case OPS_O_PROGRESS:
		a->progress_set = true;
		return (sagactl_parse_duration(
		    ctx, "--progress", arg, &a->progress_ms));
	default:
		return (sagactl_usage(ctx, "unexpected option"));
	}
	return (0);
}

/*
 * Talking to sagad.
 */

typedef struct ops_conn {
	saga_client *cl;
	const char  *url;
	bool         unreached; /* the last call did not reach sagad */
	bool         stalled;   /* it did, and got no answer in time */
	uint32_t     refused;   /* the code of its ERROR answer, or 0 */
} ops_conn;

static void
ops_conn_fini(ops_conn *c)
{
	saga_client_free(c->cl);
	c->cl = NULL;
}

/* What to do about an ERROR from sagad. */
static const char *
ops_hint(const proto_msg *req, uint32_t code)
{
	switch (code) {
	case SAGA_ENOTFOUND:
		return (req->type == PROTO_T_START
		        ? "see sagactl defs for the sagas sagad knows"
		        : "check the id with sagactl list");
	case SAGA_ESTATE:
		return ("see sagactl show ID for where the saga stands");
	case SAGA_EUNAVAIL:
	case SAGA_EOVERLOAD:
		return ("nothing was changed; try again later");
	case SAGA_ECONFLICT:
		return ("use another --key, or the same saga and input");
	case SAGA_ECLOSED:
		return ("sagad is shutting down; try again when it is back");
	case SAGA_ETOOBIG:
		return ("make the input smaller");
	default:
		return ("see sagad's log");
	}
}

/* Prints why as the error of exit status rv (a usage error or a
 * failure). Returns rv. */
static int
ops_report(const sagactl_ctx *ctx, int rv, const char *why)
{
	if (rv == SAGACTL_EXIT_USAGE) {
		return (sagactl_usage(ctx, "%s", why));
	}
	(void) sagactl_error(ctx, "%s", why);
	return (rv);
}

/* Sends req and reads a SAGA answer into reply (proto_msg_fini it).
 * Returns 0, or an exit status with what went wrong in why (whylen
 * bytes), not printed: a bulk repair goes on and reports it. With
 * advise, why tells what to do too (try again, check the URL); without,
 * only what happened: the caller's request changed something already
 * (start --wait) and says what to do itself. SAGACTL_EXIT_UNKNOWN: the
 * request reached sagad but its answer was lost (why says how, without
 * advice): the caller says what that means for its request. code, if
 * not NULL, gets the code of an ERROR answer, or with
 * SAGACTL_EXIT_UNKNOWN saga_client_call's error (SAGA_ETIMEDOUT, SAGA_EIO:
 * lost; a decode error: the answer came but cannot be read), else 0. */
static int
ops_call(const sagactl_ctx *ctx, ops_conn *c, const proto_msg *req,
    int64_t timeout_ms, proto_msg *reply, char *why, size_t whylen,
    bool advise, uint32_t *code)
{
	char err[512];
	int  rv;

	proto_msg_init(reply);
	if (code != NULL) {
		*code = 0;
	}
	c->unreached = false;
	c->stalled   = false;
	c->refused   = 0;
	if (c->cl == NULL) {
		c->url = ctx->coordinator != NULL
		    ? ctx->coordinator
		    : SAGACTL_COORDINATOR_DEFAULT;
		if ((rv = saga_client_dial_tls(&c->cl, c->url, &ctx->tls, err,
		         sizeof(err))) == SAGA_EUNAVAIL) {
			c->unreached = true;
			snprintf(why, whylen,
			    "cannot connect to sagad (%s); is it running? "
			    "(point --coordinator or SAGA_COORDINATOR at it)",
			    err);
			return (SAGACTL_EXIT_FAIL);
		} else if (rv != 0) {
			snprintf(why, whylen,
			    "cannot use coordinator URL \"%s\" (%s); give "
			    "--coordinator tcp://HOST:PORT",
			    c->url, err);
			return (SAGACTL_EXIT_USAGE);
		}
	}
	if ((rv = saga_client_call(
	         c->cl, req, timeout_ms, reply, err, sizeof(err)))
	    != 0) {
		char d[32];

		proto_msg_fini(reply);
		if (saga_client_sent(c->cl)) {
			/* Not "is it running?": it took the request. */
			if (code != NULL) {
				*code = (uint32_t) rv;
			}
			if (rv == SAGA_ETIMEDOUT) {
				c->stalled = true;
				snprintf(why, whylen,
				    "sagad at %s got the request but did not "
				    "answer within %s",
				    c->url,
				    sagactl_out_dur(timeout_ms, d, sizeof(d)));
			} else if (rv == SAGA_EIO || rv == SAGA_ENOMEM) {
				snprintf(why, whylen,
				    "sagad at %s got the request but its "
				    "answer was lost (%s)",
				    c->url, err);
			} else {
				snprintf(why, whylen,
				    "sagad at %s got the request but its "
				    "answer cannot be read (%s)",
				    c->url, err);
			}
			return (SAGACTL_EXIT_UNKNOWN);
		}
		/* Not sent: sagad did not take it in time, or the send
		 * failed (not an encoding error of this request). */
		c->unreached = rv == SAGA_ETIMEDOUT || rv == SAGA_EIO;
		if (rv == SAGA_ETIMEDOUT) {
			snprintf(why, whylen,
			    "no answer from sagad at %s within %s%s", c->url,
			    sagactl_out_dur(timeout_ms, d, sizeof(d)),
			    advise ? "; is it running? (point --coordinator "
			             "or SAGA_COORDINATOR at it)"
			           : "");
		} else {
			snprintf(why, whylen, "talking to sagad at %s: %s",
			    c->url, err);
		}
		return (SAGACTL_EXIT_FAIL);
	}
	if (reply->type == PROTO_T_ERROR) {
		c->refused = reply->code;
		if (code != NULL) {
			*code = reply->code;
		}
	}
	if (reply->type == PROTO_T_ERROR && reply->code == SAGA_EUNKNOWN) {
		/* The database went away while the request's commit was in
		 * flight: as if its answer had been lost. */
		snprintf(why, whylen,
		    "sagad at %s cannot tell whether the request was applied "
		    "(EUNKNOWN: %.*s)",
		    c->url, (int) reply->message.len,
		    reply->message.ptr ? reply->message.ptr : "");
		proto_msg_fini(reply);
		return (SAGACTL_EXIT_UNKNOWN);
	}
	if (reply->type == PROTO_T_ERROR && !advise) {
		snprintf(why, whylen, "sagad answered %s: %.*s",
		    saga_errname((int) reply->code), (int) reply->message.len,
		    reply->message.ptr ? reply->message.ptr : "");
		proto_msg_fini(reply);
		return (SAGACTL_EXIT_FAIL);
	}
	if (reply->type == PROTO_T_ERROR) {
		/* sagad refuses a cancel that would change nothing (not
		 * RUNNING, or past the pivot). */
		snprintf(why, whylen, "%s: %.*s (%s); %s",
		    req->type == PROTO_T_CANCEL && reply->code == SAGA_ESTATE
		        ? "not cancelled"
		        : "sagad refused",
		    (int) reply->message.len,
		    reply->message.ptr ? reply->message.ptr : "",
		    saga_errname((int) reply->code),
		    ops_hint(req, reply->code));
		proto_msg_fini(reply);
		return (SAGACTL_EXIT_FAIL);
	}
	if (reply->type != PROTO_T_SAGA) {
		snprintf(why, whylen, "sagad answered %s instead of SAGA",
		    proto_type_name(reply->type));
		proto_msg_fini(reply);
		return (SAGACTL_EXIT_FAIL);
	}
	return (0);
}

/* The SAGA answer m as a JSON object. */
static int
ops_saga_obj(const proto_msg *m, proto_obj *o, bool with_created)
{
	char id[SAGA_ID_STRLEN + 1];
	int  rv = 0;

	saga_id_format(&m->id, id);
	rv |= proto_obj_put_str(o, "id", id);
	rv |= proto_obj_put_strn(o, "saga", m->saga.ptr, m->saga.len);
	rv |= proto_obj_put_int(o, "version", m->def_version);
	rv |= proto_obj_put_strn(o, "state", m->state.ptr, m->state.len);
	rv |= m->step_name.len > 0
	    ? proto_obj_put_strn(o, "step", m->step_name.ptr, m->step_name.len)
	    : proto_obj_put_nil(o, "step");
	rv |= proto_obj_put_int(o, "step_index", m->step);
	rv |= m->error.len > 0
	    ? proto_obj_put_strn(o, "error", m->error.ptr, m->error.len)
	    : proto_obj_put_nil(o, "error");
	if (with_created) {
		rv |= proto_obj_put_bool(o, "created", m->created);
	}
	return (rv != 0 ? SAGA_ENOMEM : 0);
}

static int
ops_print_saga(const sagactl_ctx *ctx, const proto_msg *m, bool with_created)
{
	proto_obj *o = NULL;
	int        rv;

	if ((rv = proto_obj_alloc(&o)) == 0
	    && (rv = ops_saga_obj(m, o, with_created)) == 0) {
		rv = sagactl_out_json(&ctx->out, o);
	}
	proto_obj_free(o);
	if (rv != 0) {
		return (sagactl_error(
		    ctx, "cannot print the answer: %s", saga_strerror(rv)));
	}
	return (0);
}

static bool
ops_state_is(const proto_msg *m, const char *state)
{
	return (proto_str_eq(m->state, state));
}

static bool
ops_terminal(const proto_msg *m)
{
	return (
	    !ops_state_is(m, "RUNNING") && !ops_state_is(m, "COMPENSATING"));
}

/* Waits, in WAIT slices, until the saga of reply (its last answer) has
 * ended or timeout_ms have passed; reply holds the last answer. Returns 0,
 * or an exit status with why (not printed; advise as ops_call), reply
 * then empty. last, if not NULL, is refilled (ops_saga_obj, with
 * created) with every answer: what is known of the saga when a WAIT
 * fails. */
static int
ops_wait_end(const sagactl_ctx *ctx, ops_conn *c, proto_msg *reply,
    int64_t timeout_ms, proto_obj *last, char *why, size_t whylen,
    bool advise)
{
	int64_t now = sagactl_now_ms();
	int64_t deadline;
	int     rv;

	/* A --timeout beyond the clock's range (9223372036854775807ms)
	 * waits without end: the deadline stops at the largest time, where
	 * the sum overflowed. */
	deadline = timeout_ms > INT64_MAX - now ? INT64_MAX : now + timeout_ms;
	while (!ops_terminal(reply)) {
		int64_t   left    = deadline - sagactl_now_ms();
		bool      created = reply->created;
		saga_id   id      = reply->id;
		proto_msg req;

		if (left <= 0) {
			break;
		}
		proto_msg_fini(reply);
		proto_msg_init(&req);
		req.type       = PROTO_T_WAIT;
		req.id         = id;
		req.timeout_ms = (uint64_t) (left < OPS_WAIT_SLICE_MS
		        ? left
		        : OPS_WAIT_SLICE_MS);
		if ((rv = ops_call(ctx, c, &req,
		         (int64_t) req.timeout_ms + OPS_CALL_MS, reply, why,
		         whylen, advise, NULL))
		    != 0) {
			return (rv);
		}
		reply->created = created;
		if (last != NULL) {
			proto_obj_reset(last);
			(void) ops_saga_obj(reply, last, true);
		}
	}
	return (0);
}

/* The exit status of a wait that ended with reply: 0 if the saga
 * COMPLETED, else 1 with why (it ended otherwise, or still runs after
 * timeout_ms). */
static int
ops_wait_verdict(
    const sagactl_ctx *ctx, const proto_msg *reply, int64_t timeout_ms)
{
	char id[SAGA_ID_STRLEN + 1], d[32];

	if (ops_state_is(reply, "COMPLETED")) {
		return (0);
	}
	saga_id_format(&reply->id, id);
	if (ops_terminal(reply)) {
		return (sagactl_error(ctx,
		    "saga %s ended %.*s, not COMPLETED; see sagactl show %s", id,
		    (int) reply->state.len, reply->state.ptr, id));
	}
	return (sagactl_error(ctx,
	    "saga %s is still %.*s after %s; follow it with sagactl show %s",
	    id, (int) reply->state.len, reply->state.ptr,
	    sagactl_out_dur(timeout_ms, d, sizeof(d)), id));
}

/*
 * start
 */

/* Reads --input: the text itself, @FILE or - (stdin), into buf. */
static int
ops_read_input(const sagactl_ctx *ctx, const char *arg, proto_buf *buf)
{
	FILE       *f = NULL;
	const char *name;
	char        chunk[8192];
	size_t      n;

	if (arg[0] != '@' && strcmp(arg, "-") != 0) {
		return (proto_buf_append(buf, arg, strlen(arg)) != 0
		        ? sagactl_error(ctx, "out of memory")
		        : 0);
	}
	name = arg[0] == '@' ? arg + 1 : "stdin";
	if (arg[0] == '@' && (f = fopen(name, "r")) == NULL) {
		return (sagactl_usage(ctx, "--input @%s: cannot read: %s",
		    name, strerror(errno)));
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f ? f : stdin)) > 0) {
		if (buf->len + n > OPS_INPUT_MAX
		    || proto_buf_append(buf, chunk, n) != 0) {
			if (f != NULL) {
				fclose(f);
			}
			return (sagactl_usage(ctx,
			    "--input from %s: larger than %d bytes", name,
			    OPS_INPUT_MAX));
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	return (0);
}

/* start --wait: sagad started saga id (created: by this START, else
 * by an earlier one with the same key), then waiting for its end failed
 * (why). The saga goes on without us: the error says so and how to
 * follow it, never that nothing happened; with --json, last (what sagad
 * last answered about it, if any) is printed first. Returns
 * SAGACTL_EXIT_WAIT. */
static int
ops_start_wait_failed(const sagactl_ctx *ctx, const char *id, bool created,
    const proto_obj *last, const char *why)
{
	if (ctx->json && last != NULL) {
		(void) sagactl_out_json(&ctx->out, last);
	}
	(void) sagactl_error(ctx,
	    "saga %s %s, but waiting for it to end failed: %s; it goes on "
	    "without sagactl: do not start it again, follow it with "
	    "sagactl wait %s",
	    id, created ? "was started" : "was already started with this key",
	    why, id);
	return (SAGACTL_EXIT_WAIT);
}

/* Makes an idempotency key of this process's own: "sagactl-" and a
 * UUIDv7 (the time, then 74 random bits), into key (OPS_KEY_LEN + 1
 * bytes). Returns 0 or SAGA_EINTERNAL (no random bytes). */
static int
ops_make_key(char *key)
{
	uint8_t rnd[10];
	saga_id sid;
	char    text[SAGA_ID_STRLEN + 1];
	size_t  got = 0;

	while (got < sizeof(rnd)) {
		ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);

		if (n < 0 && errno != EINTR) {
			return (SAGA_EINTERNAL);
		}
		got += n > 0 ? (size_t) n : 0;
	}
	saga_id_make_v7(&sid, sagactl_now_ms(), rnd);
	snprintf(
	    key, OPS_KEY_LEN + 1, "sagactl-%s", saga_id_format(&sid, text));
	return (0);
}

static void
ops_sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t) (ms / 1000),
		(long) (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* Whether an ERROR with code, to a START sent again after a lost
 * answer, leaves open whether the first one started the saga: sagad
 * checks these (load, shutdown, database) before it looks the key up. */
static bool
ops_start_transient(uint32_t code)
{
	switch (code) {
	case SAGA_EOVERLOAD:
	case SAGA_EUNAVAIL:
	case SAGA_ECLOSED:
	case SAGA_ENOMEM:
	case SAGA_EDB:
	case SAGA_EINTERNAL:
		return (true);
	default:
		return (false);
	}
}

/* Sends the START req (it has a key) until it gets an answer, within
 * budget_ms. A first request that fails before it left is reported as
 * ops_call does (nothing was started). Once a request reached sagad
 * without an answer (the connection closed, or no answer in time),
 * the same START goes again: with the same key, sagad answers the saga
 * that the lost one started, or starts it if that one never arrived;
 * once either way. Returns 0 with the SAGA answer in reply, an exit
 * status with why (a refusal, which started nothing), or
 * SAGACTL_EXIT_UNKNOWN (why: the last failure) when no answer came
 * within budget_ms. *resent tells whether the START went more than
 * once. */
static int
ops_start_send(const sagactl_ctx *ctx, ops_conn *c, const proto_msg *req,
    int64_t budget_ms, proto_msg *reply, char *why, size_t whylen,
    bool *resent)
{
	int64_t  now = sagactl_now_ms(), deadline, pause_ms = 50;
	char     lost[512] = "";
	uint32_t code;
	int      rv;

	deadline = budget_ms > INT64_MAX - now ? INT64_MAX : now + budget_ms;
	for (;;) {
		int64_t left = deadline - sagactl_now_ms();

		rv = ops_call(ctx, c, req, left < OPS_CALL_MS ? left
		                                              : OPS_CALL_MS,
		    reply, why, whylen, true, &code);
		if (rv == 0) {
			return (0);
		}
		if (rv == SAGACTL_EXIT_UNKNOWN && code != SAGA_ETIMEDOUT
		    && code != SAGA_EIO && code != SAGA_ENOMEM
		    && code != SAGA_EUNKNOWN) {
			/* An answer that cannot be read: a peer that is
			 * not sagad, or broken; it would answer the same. */
			return (rv);
		}
		if (rv == SAGACTL_EXIT_UNKNOWN) {
			snprintf(lost, sizeof(lost), "%.500s", why);
			code = 0;
		} else if (lost[0] == '\0'
		    || (code != 0 && !ops_start_transient(code))) {
			/* Nothing left, or sagad refused the request
			 * itself: the lost one was refused the same. */
			return (rv);
		}
		/* A closed connection is redialled within 200 ms; a
		 * refusal (the first may still have started the saga)
		 * gets a pause. */
		left = deadline - sagactl_now_ms();
		if (left <= (code != 0 ? pause_ms : 0)) {
			/* What is known: the lost answer, and how the
			 * last resend went if it did not reach sagad. */
			if (rv == SAGACTL_EXIT_UNKNOWN) {
				snprintf(why, whylen, "%s", lost);
			} else if (code != 0) {
				snprintf(why, whylen,
				    "%s; sent again, sagad answered %s",
				    lost, saga_errname((int) code));
			} else {
				snprintf(why, whylen,
				    "%s; sent again, it got no answer", lost);
			}
			return (SAGACTL_EXIT_UNKNOWN);
		}
		if (code != 0) {
			ops_sleep_ms(pause_ms);
			pause_ms = pause_ms * 2 > 1000 ? 1000 : pause_ms * 2;
		}
		*resent = true;
	}
}

/* A START reached sagad but no answer came in time (why): the saga may
 * have been started. Says so, and how to find out without starting it
 * twice (the same START with its key: sagad answers the saga, or
 * starts it once), with --json a document with the key and no id.
 * Returns SAGACTL_EXIT_UNKNOWN. */
static int
ops_start_unknown(
    const sagactl_ctx *ctx, const proto_msg *req, const char *why)
{
	if (ctx->json) {
		proto_obj *o = NULL;

		if (proto_obj_alloc(&o) == 0
		    && (proto_obj_put_nil(o, "id")
		           | proto_obj_put_strn(
		               o, "saga", req->saga.ptr, req->saga.len)
		           | proto_obj_put_nil(o, "state")
		           | proto_obj_put_nil(o, "created")
		           | proto_obj_put_strn(
		               o, "key", req->key.ptr, req->key.len))
		        == 0) {
			(void) sagactl_out_json(&ctx->out, o);
		}
		proto_obj_free(o);
	}
	(void) sagactl_error(ctx,
	    "%s: the saga may have been started; do not start it again "
	    "without its key: run the same start with --key %.*s, which "
	    "answers the saga if it was started, or starts it once",
	    why, (int) req->key.len, req->key.ptr);
	return (SAGACTL_EXIT_UNKNOWN);
}

int
sagactl_ops_start(sagactl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input", required_argument, NULL, OPS_O_INPUT },
		{ "key", required_argument, NULL, OPS_O_KEY },
		{ "trace", required_argument, NULL, OPS_O_TRACE },
		{ "wait", no_argument, NULL, OPS_O_WAIT },
		{ "timeout", required_argument, NULL, OPS_O_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	ops_args   a;
	ops_conn   c = { NULL, NULL, false, false, 0 };
	proto_buf  text, input;
	proto_msg  req, reply;
	proto_obj *last = NULL;
	char       err[256], id[SAGA_ID_STRLEN + 1], why[768];
	char       genkey[OPS_KEY_LEN + 1];
	bool       created, resent = false;
	int64_t    budget, t0;
	int        first, rv;

	memset(&a, 0, sizeof(a));
	a.timeout_ms = 60000;
	if ((rv = sagactl_parse(ctx, argc, argv, opts, ops_opt, &a, &first))
	    != 0) {
		return (rv);
	}
	if (first >= argc) {
		return (sagactl_usage(
		    ctx, "give the saga to start (see sagactl defs)"));
	}
	if (argc - first > 1) {
		return (sagactl_usage(
		    ctx, "unexpected argument \"%s\"", argv[first + 1]));
	}
	if (a.f.given) {
		return (sagactl_usage(ctx, "start takes no filters"));
	}
	if (a.input == NULL) {
		return (sagactl_usage(ctx,
		    "give the saga's input: --input '{...}' (a JSON object)"));
	}
	if (a.timeout_set && !a.wait) {
		return (sagactl_usage(ctx, "--timeout goes with --wait"));
	}
	if (a.key != NULL && *a.key == '\0') {
		return (sagactl_usage(ctx, "--key must not be empty"));
	}
	proto_buf_init(&text);
	proto_buf_init(&input);
	if ((rv = ops_read_input(ctx, a.input, &text)) != 0) {
		goto done;
	}
	if (proto_json_to_raw((const char *) text.data, text.len, NULL, &input,
	        err, sizeof(err))
	    != 0) {
		rv = sagactl_usage(ctx, "--input is not valid JSON: %s", err);
		goto done;
	}
	if (!proto_raw_is_map(proto_buf_raw(&input))) {
		rv = sagactl_usage(
		    ctx, "--input must be a JSON object ({...})");
		goto done;
	}
	proto_msg_init(&req);
	req.type  = PROTO_T_START;
	req.saga  = proto_str_c(argv[first]);
	req.input = proto_buf_raw(&input);
	if (a.key != NULL) {
		req.key = proto_str_c(a.key);
	}
	if (a.trace != NULL) {
		req.traceparent = proto_str_c(a.trace);
	}
	if (a.key == NULL) {
		/* Only this command knows this key: a START sent again with
		 * it after a lost answer starts the saga once. */
		if ((rv = ops_make_key(genkey)) != 0) {
			rv = sagactl_error(ctx,
			    "cannot make an idempotency key: %s; give --key",
			    saga_strerror(rv));
			goto done;
		}
		req.key = proto_str_c(genkey);
	}
	/* At least a call's time, and with --wait up to --timeout, to
	 * get the START's answer. */
	budget = a.wait && a.timeout_ms > OPS_CALL_MS ? a.timeout_ms
	                                              : OPS_CALL_MS;
	t0     = sagactl_now_ms();
	if ((rv = ops_start_send(ctx, &c, &req, budget, &reply, why,
	         sizeof(why), &resent))
	    == SAGACTL_EXIT_UNKNOWN) {
		rv = ops_start_unknown(ctx, &req, why);
		goto done;
	} else if (rv != 0) {
		rv = ops_report(ctx, rv, why);
		goto done;
	}
	/* The saga runs: from here on, no error may read as if it did not
	 * (the operator would start it again), and its id must reach the
	 * user. */
	saga_id_format(&reply.id, id);
	/* Only a resend can find the saga of a key of our own: the first
	 * START started it. */
	created = reply.created || a.key == NULL;
	reply.created = created;
	ctx->applied  = true;
	if (resent) {
		sagactl_note(ctx,
		    "the answer to the first START was lost; sent again with "
		    "key \"%s\": saga %s, %s",
		    a.key ? a.key : genkey, id,
		    a.key == NULL ? "started once"
		    : reply.created
		        ? "started now (the first START never arrived)"
		        : "already started (by the first START or an earlier "
		          "one): not started again");
	} else if (!created) {
		sagactl_note(ctx,
		    "key \"%s\" already started saga %s: not started again",
		    a.key, id);
	}
	if (!ctx->json) {
		fprintf(ctx->out.f, "%s\n", id);
		fflush(ctx->out.f);
	}
	if (a.wait) {
		/* --timeout bounds the whole command: the wait gets what
		 * the START's answer (resent after a loss) left of it. */
		int64_t left = a.timeout_ms - (sagactl_now_ms() - t0);

		/* With --json, the document of the last answer is printed
		 * if the wait fails. */
		if (ctx->json && proto_obj_alloc(&last) == 0
		    && ops_saga_obj(&reply, last, true) != 0) {
			proto_obj_free(last);
			last = NULL;
		}
		if ((rv = ops_wait_end(ctx, &c, &reply, left > 0 ? left : 0,
		         last, why, sizeof(why), false))
		    != 0) {
			rv = ops_start_wait_failed(ctx, id, created, last, why);
			goto done;
		}
	}
	if (ctx->json) {
		proto_obj *o = NULL;

		if ((rv = proto_obj_alloc(&o)) == 0
		    && (rv = ops_saga_obj(&reply, o, true)) == 0) {
			rv = sagactl_out_json(&ctx->out, o);
		}
		proto_obj_free(o);
		if (rv != 0) {
			rv = sagactl_error(ctx,
			    "saga %s %s, but its answer cannot be printed: %s",
			    id,
			    created ? "was started"
			            : "was already started with this key",
			    saga_strerror(rv));
		}
	} else if (a.wait) {
		char          state[32];
		sagactl_style st;

		snprintf(state, sizeof(state), "%.*s", (int) reply.state.len,
		    reply.state.ptr ? reply.state.ptr : "");
		st = sagactl_out_state_style(state);
		fputs(sagactl_out_style_on(&ctx->out, st), ctx->out.f);
		sagactl_out_puts(ctx->out.f, state);
		fputs(sagactl_out_style_off(&ctx->out, st), ctx->out.f);
		if (reply.error.len > 0) {
			fputs(": ", ctx->out.f);
			sagactl_out_write(
			    ctx->out.f, reply.error.ptr, reply.error.len);
		}
		fputc('\n', ctx->out.f);
	}
	if (rv == 0 && a.wait) {
		rv = ops_wait_verdict(ctx, &reply, a.timeout_ms);
	}
	proto_msg_fini(&reply);
done:
	proto_obj_free(last);
	ops_conn_fini(&c);
	proto_buf_fini(&text);
	proto_buf_fini(&input);
	return (rv);
}

/*
 * status and wait
 */

/* Prints a SAGA answer in one line: "ID STATE [step NAME][: error]". */
static void
ops_print_line(const sagactl_ctx *ctx, const proto_msg *m)
{
	char          id[SAGA_ID_STRLEN + 1], state[32];
	sagactl_style st;

	saga_id_format(&m->id, id);
	snprintf(state, sizeof(state), "%.*s", (int) m->state.len,
	    m->state.ptr ? m->state.ptr : "");
	st = sagactl_out_state_style(state);
	/* The step name and the error come from outside: escaped. */
	fprintf(ctx->out.f, "%s %s", id, sagactl_out_style_on(&ctx->out, st));
	sagactl_out_puts(ctx->out.f, state);
	fputs(sagactl_out_style_off(&ctx->out, st), ctx->out.f);
	if (m->step_name.len > 0 && !ops_terminal(m)) {
		fputs(" step ", ctx->out.f);
		sagactl_out_write(
		    ctx->out.f, m->step_name.ptr, m->step_name.len);
	}
	if (m->error.len > 0) {
		fputs(": ", ctx->out.f);
		sagactl_out_write(ctx->out.f, m->error.ptr, m->error.len);
	}
	fputc('\n', ctx->out.f);
}

/* status ID and wait ID [--timeout DUR]: asks sagad (any instance: the
 * one that does not own the saga reads the log) about one saga. wait
 * returns when the saga has ended or the timeout has passed. */
static int
ops_ask(sagactl_ctx *ctx, int argc, char **argv, bool wait)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, OPS_O_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option no_opts[] = {
		{ NULL, 0, NULL, 0 },
	};
	ops_args  a;
	ops_conn  c = { NULL, NULL, false, false, 0 };
	proto_msg req, reply;
	saga_id   sid;
	char      id[SAGA_ID_STRLEN + 1], why[768];
	int       first, rv;

	memset(&a, 0, sizeof(a));
	a.timeout_ms = 60000;
	if ((rv = sagactl_parse(ctx, argc, argv, wait ? opts : no_opts,
	         ops_opt, &a, &first))
	    != 0) {
		return (rv);
	}
	if (first >= argc) {
		return (sagactl_usage(ctx, "give the saga's id"));
	}
	if (argc - first > 1) {
		return (sagactl_usage(
		    ctx, "unexpected argument \"%s\"", argv[first + 1]));
	}
	if (a.f.given) {
		return (sagactl_usage(ctx, "%s takes no filters",
		    wait ? "wait" : "status"));
	}
	if ((rv = sagactl_parse_id(ctx, argv[first], id)) != 0) {
		return (rv);
	}
	(void) saga_id_parse(&sid, id);
	proto_msg_init(&req);
	req.type = PROTO_T_STATUS;
	req.id   = sid;
	/* A lost answer to a question changed nothing: a failure (1). */
	if ((rv = ops_call(ctx, &c, &req, OPS_CALL_MS, &reply, why,
	         sizeof(why), true, NULL))
	    != 0) {
		rv = ops_report(ctx,
		    rv == SAGACTL_EXIT_UNKNOWN ? SAGACTL_EXIT_FAIL : rv, why);
		goto done;
	}
	if (wait
	    && (rv = ops_wait_end(ctx, &c, &reply, a.timeout_ms, NULL, why,
	            sizeof(why), true))
	        != 0) {
		rv = ops_report(ctx,
		    rv == SAGACTL_EXIT_UNKNOWN ? SAGACTL_EXIT_FAIL : rv, why);
		goto done;
	}
	if (ctx->json) {
		rv = ops_print_saga(ctx, &reply, false);
	} else {
		ops_print_line(ctx, &reply);
	}
	if (rv == 0 && wait) {
		rv = ops_wait_verdict(ctx, &reply, a.timeout_ms);
	}
	proto_msg_fini(&reply);
done:
	ops_conn_fini(&c);
	return (rv);
}

int
sagactl_ops_status(sagactl_ctx *ctx, int argc, char **argv)
{
	return (ops_ask(ctx, argc, argv, false));
}

int
sagactl_ops_wait(sagactl_ctx *ctx, int argc, char **argv)
{
	return (ops_ask(ctx, argc, argv, true));
}

/*
 * The repairs.
 */

typedef enum ops_repair {
	OPS_RETRY,
	OPS_CANCEL,
	OPS_RESOLVE,
	OPS_SKIP,
} ops_repair;

static const uint32_t ops_repair_type[] = {
	[OPS_RETRY]   = PROTO_T_RETRY,
	[OPS_CANCEL]  = PROTO_T_CANCEL,
	[OPS_RESOLVE] = PROTO_T_RESOLVE,
	[OPS_SKIP]    = PROTO_T_SKIP,
};

static const char *const ops_repair_name[] = {
	[OPS_RETRY]   = "retry",
	[OPS_CANCEL]  = "cancel",
	[OPS_RESOLVE] = "resolve",
	[OPS_SKIP]    = "skip",
};

/* Whether the SAGA answer m to a CANCEL shows that the cancel took
 * effect: RUNNING (recorded for the instance that owns the saga), or
 * compensating, or compensated already, because of a cancel. A sagad
 * that answered a cancel that changed nothing with the saga's state
 * (before it refused it with ESTATE) gave anything else; a second cancel
 * of a cancelled saga it answered the same as the first, which nothing
 * here can tell apart. */
static bool
ops_cancel_took(const proto_msg *m)
{
	static const char why[] = "cancelled";

	if (ops_state_is(m, "RUNNING")) {
		return (true);
	}
	return ((ops_state_is(m, "COMPENSATING")
	            || ops_state_is(m, "COMPENSATED"))
	    && m->error.len >= sizeof(why) - 1
	    && memcmp(m->error.ptr, why, sizeof(why) - 1) == 0);
}

/* Sends the repair op for saga id. Returns 0 with the answer in reply
 * (proto_msg_fini it), or an exit status with why (not printed). */
static int
ops_repair_one(const sagactl_ctx *ctx, ops_conn *c, ops_repair op,
    const char *id, const ops_args *a, proto_msg *reply, char *why,
    size_t whylen)
{
	proto_msg req;
	int       rv;

	proto_msg_init(&req);
	req.type = ops_repair_type[op];
	if (saga_id_parse(&req.id, id) != 0) {
		snprintf(why, whylen, "\"%s\" is not a saga id", id);
		return (SAGACTL_EXIT_USAGE);
	}
	if (a->note != NULL) {
		req.note = proto_str_c(a->note);
	}
	if (a->step != NULL) {
		req.step_name = proto_str_c(a->step);
	}
	if ((rv = ops_call(ctx, c, &req, OPS_CALL_MS, reply, why, whylen,
	         true, NULL))
	    == SAGACTL_EXIT_UNKNOWN) {
		char fact[1024];

		/* Not "failed": a repeat may find it done (ESTATE). */
		snprintf(fact, sizeof(fact), "%s", why);
		snprintf(why, whylen,
		    "the %s may have been applied: %.600s; see sagactl show "
		    "%s before repeating it",
		    ops_repair_name[op], fact, id);
		return (rv);
	} else if (rv != 0) {
		return (rv);
	}
	/* sagad refuses a cancel that changes nothing (above); one before
	 * it did answered the saga's state instead, as for a cancel that
	 * took effect. Those answers are not reported as a cancel. */
	if (op == OPS_CANCEL && !ops_cancel_took(reply)) {
		snprintf(why, whylen,
		    "not cancelled: saga is %.*s (sagad changed nothing); see "
		    "sagactl show %s",
		    (int) reply->state.len, reply->state.ptr, id);
		proto_msg_fini(reply);
		return (SAGACTL_EXIT_FAIL);
	}
	return (0);
}

/* One line about a repaired saga. */
static void
ops_repair_line(
    const sagactl_ctx *ctx, ops_repair op, const char *id, const proto_msg *m)
{
	static const char *const done[] = {
		[OPS_RETRY]   = "retried",
		[OPS_CANCEL]  = "cancelled",
		[OPS_RESOLVE] = "resolved",
		[OPS_SKIP]    = "step skipped",
	};
	const sagactl_out *o    = &ctx->out;
	const char        *what = done[op];
	sagactl_style      st;
	char               state[32];

	snprintf(state, sizeof(state), "%.*s", (int) m->state.len,
	    m->state.ptr ? m->state.ptr : "");
	st = sagactl_out_state_style(state);
	/* Only a cancel through an instance that does not run the saga is
	 * answered RUNNING: the request is in the saga's row, and its owner
	 * carries it out, or refuses it in the saga's log (cancel_refused),
	 * in a moment. */
	if (op == OPS_CANCEL && strcmp(state, "RUNNING") == 0) {
		what = "cancel requested";
	}

	fprintf(o->f, "%s  %s: now %s", id, what,
	    sagactl_out_style_on(o, st));
	sagactl_out_write(o->f, m->state.ptr, m->state.len);
	fputs(sagactl_out_style_off(o, st), o->f);
	if (!ops_terminal(m) && m->step_name.len > 0) {
		fputs(" at step ", o->f);
		sagactl_out_write(o->f, m->step_name.ptr, m->step_name.len);
	}
	fputc('\n', o->f);
}

/* The bulk form: every saga the filters select. */
static int
ops_repair_bulk(sagactl_ctx *ctx, ops_repair op, ops_args *a)
{
	static const char *const verb[] = {
		[OPS_RETRY]  = "Retry",
		[OPS_CANCEL] = "Cancel",
	};
	const char  *need = op == OPS_RETRY ? "FAILED" : "RUNNING";
	PGconn      *db   = NULL;
	PGresult    *r    = NULL;
	ops_conn     c    = { NULL, NULL, false, false, 0 };
	proto_obj   *root = NULL, *o = NULL;
	sagactl_jarr res;
	char         what[512], q[768];
	int          n, ok = 0, unknown = 0, untried = 0, rv;

	if (a->f.nstates == 0) {
		a->f.states[a->f.nstates++] = need;
	} else if (a->f.nstates != 1 || strcmp(a->f.states[0], need) != 0) {
		return (sagactl_usage(
		    ctx, "%s applies to %s sagas only", ctx->cmd->name, need));
	}
	if ((rv = sagactl_db_open(ctx, false, &db)) != 0) {
		return (rv);
	}
	r = sagactl_read_select(ctx, db, &a->f, a->f.limit);
	PQfinish(db);
	if (r == NULL) {
		return (SAGACTL_EXIT_FAIL);
	}
	sagactl_filter_describe(&a->f, what, sizeof(what));
	if ((n = PQntuples(r)) == 0) {
		/* Not a failure: a cron job's "retry --state FAILED" finds
		 * none on every healthy run (it exited 1, and --json printed
		 * nothing). The summary below, of 0 sagas, says the rest. */
		sagactl_note(ctx,
		    "no saga matches (%s); nothing to do (see sagactl list "
		    "with the same filters)",
		    what);
	} else {
		snprintf(q, sizeof(q), "%s %d saga%s (%s)?", verb[op], n,
		    n == 1 ? "" : "s", what);
		if (!ctx->json || !a->yes) {
			fprintf(stderr, "%d saga%s match%s (%s)\n", n,
			    n == 1 ? "" : "s", n == 1 ? "es" : "", what);
		}
		if ((rv = sagactl_confirm(ctx, a->yes, q)) != 0) {
			PQclear(r);
			return (rv);
		}
	}
	sagactl_jarr_init(&res);
	if (ctx->json
	    && (proto_obj_alloc(&root) != 0 || proto_obj_alloc(&o) != 0)) {
		rv = sagactl_error(ctx, "out of memory");
		goto done;
	}
	/* A line a saga as it is done, even into a file or a pipe, and
	 * ^C stops between two sagas with the summary: killed, the lines
	 * still buffered were lost, and the record of what was repaired
	 * with them. */
	(void) setvbuf(ctx->out.f, NULL, _IOLBF, 0);
	sagactl_intr_begin(NULL);
	for (int i = 0; i < n; i++) {
		const char *id = PQgetvalue(r, i, SAGACTL_COL_ID);
		proto_msg   reply;
		char        why[768];
		int         one;

		if (sagactl_interrupted()) {
			untried = n - i;
			break;
		}

		/* Each failure is printed on stderr, and the others go on;
		 * but an unusable --coordinator (found at the first) would
		 * fail them all, and is a usage error (exit 2). */
		one = ops_repair_one(
		    ctx, &c, op, id, a, &reply, why, sizeof(why));
		if (one == SAGACTL_EXIT_USAGE) {
			rv = sagactl_usage(ctx, "%s", why);
			goto done;
		}
		if (one == 0) {
			ok++;
			if (!ctx->json) {
				ops_repair_line(ctx, op, id, &reply);
			}
		} else {
			unknown += one == SAGACTL_EXIT_UNKNOWN;
			sagactl_note(ctx, "%s: %s", id, why);
		}
		if (ctx->json) {
			proto_obj_reset(o);
			if (one == 0) {
				(void) ops_saga_obj(&reply, o, false);
				(void) proto_obj_put_bool(o, "ok", true);
			} else {
				(void) proto_obj_put_str(o, "id", id);
				(void) proto_obj_put_bool(o, "ok", false);
				(void) proto_obj_put_str(o, "error", why);
				if (one == SAGACTL_EXIT_UNKNOWN) {
					(void) proto_obj_put_bool(
					    o, "outcome_unknown", true);
				}
			}
			(void) sagactl_jarr_add_obj(&res, o);
		}
		if (one == 0) {
			proto_msg_fini(&reply);
		}
		if (one != 0 && (c.unreached || c.stalled ||
		                    c.refused == SAGA_EOVERLOAD)) {
			/* sagad is gone, or hangs (stopped, overloaded, its
			 * network silent): each of the others would wait for
			 * its own timeout (5 s a saga) and fail the same, or
			 * pile up in it, to be carried out whenever it
			 * wakes. Or it is full (EOVERLOAD: at its
			 * --api-max-connections): each would be refused. */
			untried = n - i - 1;
			break;
		}
	}
	sagactl_intr_end();
	ctx->applied = ok > 0 || unknown > 0;
	if (ctx->json) {
		(void) proto_obj_put_int(root, "matched", n);
		(void) proto_obj_put_int(root, "ok", ok);
		(void) proto_obj_put_int(root, "failed", n - ok - untried);
		(void) proto_obj_put_int(root, "not_tried", untried);
		if (sagactl_jarr_put(&res, root, "results") != 0
		    || sagactl_out_json(&ctx->out, root) != 0) {
			rv = sagactl_error(ctx, "cannot print the results");
			goto done;
		}
	}
	if (untried > 0 && sagactl_interrupted()) {
		sagactl_note(ctx,
		    "%d saga%s not tried: interrupted; run the same command "
		    "again to go on",
		    untried, untried == 1 ? "" : "s");
	} else if (untried > 0 && c.refused == SAGA_EOVERLOAD) {
		sagactl_note(ctx,
		    "%d saga%s not tried: sagad is overloaded; run the same "
		    "command again later",
		    untried, untried == 1 ? "" : "s");
	} else if (untried > 0) {
		sagactl_note(ctx,
		    "%d saga%s not tried: sagad stopped answering; run the "
		    "same command again when it is back",
		    untried, untried == 1 ? "" : "s");
	}
	if (sagactl_interrupted()) {
		(void) sagactl_error(ctx,
		    "interrupted: %d of %d sagas done, %d failed, of which %d "
		    "may have been applied, %d not tried (see above)",
		    ok, n, n - ok - untried, unknown, untried);
		rv = SAGACTL_EXIT_INTR;
	} else if (unknown > 0) {
		/* Some may have been repaired: not a plain failure. */
		(void) sagactl_error(ctx,
		    "%d of %d sagas done, %d failed, of which %d may have "
		    "been applied, %d not tried (see above)",
		    ok, n, n - ok - untried, unknown, untried);
		rv = SAGACTL_EXIT_UNKNOWN;
	} else if (ok < n) {
		rv = sagactl_error(ctx,
		    "%d of %d sagas done, %d failed, %d not tried (see "
		    "above)",
		    ok, n, n - ok - untried, untried);
	} else {
		if (n > 0) {
			sagactl_note(ctx, "%d of %d sagas done", ok, n);
		}
		rv = 0;
	}
done:
	sagactl_intr_end();
	sagactl_jarr_fini(&res);
	proto_obj_free(o);
	proto_obj_free(root);
	ops_conn_fini(&c);
	PQclear(r);
	return (rv);
}

static int
ops_repair_run(sagactl_ctx *ctx, int argc, char **argv, ops_repair op)
{
	static const struct option retry_opts[] = {
		{ "note", required_argument, NULL, OPS_O_NOTE },
		{ "yes", no_argument, NULL, 'y' },
		SAGACTL_FILTER_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	static const struct option resolve_opts[] = {
		{ "note", required_argument, NULL, OPS_O_NOTE },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option skip_opts[] = {
		{ "note", required_argument, NULL, OPS_O_NOTE },
		{ "step", required_argument, NULL, OPS_O_STEP },
		{ NULL, 0, NULL, 0 },
	};
	const struct option *opts = op == OPS_RESOLVE ? resolve_opts
	    : op == OPS_SKIP                          ? skip_opts
	                                              : retry_opts;
	ops_args             a;
	ops_conn             c = { NULL, NULL, false, false, 0 };
	proto_msg            reply;
	char                 id[SAGA_ID_STRLEN + 1], why[768];
	int                  first, rv;

	memset(&a, 0, sizeof(a));
	if ((rv = sagactl_parse(ctx, argc, argv, opts, ops_opt, &a, &first))
	    != 0) {
		return (rv);
	}
	if ((op == OPS_RESOLVE || op == OPS_SKIP)
	    && (a.note == NULL || *a.note == '\0')) {
		return (sagactl_usage(ctx,
		    "give --note TEXT: what was done by hand (it is kept in "
		    "the saga log)"));
	}
	if (op == OPS_SKIP && (a.step == NULL || *a.step == '\0')) {
		return (sagactl_usage(ctx,
		    "give --step NAME: the stuck step (see sagactl show ID)"));
	}
	if (argc - first > 1) {
		return (sagactl_usage(ctx,
		    "one saga id at a time (or filters for many); unexpected "
		    "argument \"%s\"",
		    argv[first + 1]));
	}
	if (first < argc && a.f.given) {
		return (
		    sagactl_usage(ctx, "give a saga id or filters, not both"));
	}
	if (first >= argc) {
		if (op == OPS_RETRY || op == OPS_CANCEL) {
			if (!a.f.selects) {
				return (sagactl_usage(ctx,
				    "give a saga id, or filters (--state, "
				    "--saga, --key, --since; --limit only "
				    "bounds them) for many"));
			}
			return (ops_repair_bulk(ctx, op, &a));
		}
		return (sagactl_usage(ctx, "give the saga id"));
	}
	if ((rv = sagactl_parse_id(ctx, argv[first], id)) != 0) {
		return (rv);
	}
	if ((rv = ops_repair_one(
	         ctx, &c, op, id, &a, &reply, why, sizeof(why)))
	    == 0) {
		ctx->applied = true;
		if (ctx->json) {
			rv = ops_print_saga(ctx, &reply, false);
		} else {
			ops_repair_line(ctx, op, id, &reply);
		}
		proto_msg_fini(&reply);
	} else {
		rv = ops_report(ctx, rv, why);
	}
	ops_conn_fini(&c);
	return (rv);
}

int
sagactl_ops_retry(sagactl_ctx *ctx, int argc, char **argv)
{
	return (ops_repair_run(ctx, argc, argv, OPS_RETRY));
}

int
sagactl_ops_cancel(sagactl_ctx *ctx, int argc, char **argv)
{
	return (ops_repair_run(ctx, argc, argv, OPS_CANCEL));
}

int
sagactl_ops_resolve(sagactl_ctx *ctx, int argc, char **argv)
{
	return (ops_repair_run(ctx, argc, argv, OPS_RESOLVE));
}

int
sagactl_ops_skip(sagactl_ctx *ctx, int argc, char **argv)
{
	return (ops_repair_run(ctx, argc, argv, OPS_SKIP));
}

/*
 * ping
 */

int
sagactl_ops_ping(sagactl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, OPS_O_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	ops_args     a;
	saga_client *cl = NULL;
	proto_msg    req, rep;
	const char  *url;
	char         err[512], d[32];
	int64_t      t0;
	int          first, rv;

	memset(&a, 0, sizeof(a));
	a.timeout_ms = 2000;
	if ((rv = sagactl_parse(ctx, argc, argv, opts, ops_opt, &a, &first)) !=
	    0) {
		return (rv);
	}
	if (a.f.given) {
		return (sagactl_usage(ctx, "ping takes no filters"));
	}
	if (argc - first > 1) {
		return (sagactl_usage(
		    ctx, "unexpected argument \"%s\"", argv[first + 1]));
	}
	/* sagad by default; any endpoint of the system answers PING. */
	url = first < argc ? argv[first]
	    : ctx->coordinator != NULL ? ctx->coordinator
	                               : SAGACTL_COORDINATOR_DEFAULT;
	if ((rv = saga_client_dial_tls(&cl, url, &ctx->tls, err,
	         sizeof(err))) != 0) {
		return (rv == SAGA_EINVAL
		        ? sagactl_usage(ctx, "cannot use URL \"%s\" (%s)", url,
		              err)
		        : sagactl_error(ctx, "%s does not answer (%s)", url,
		              err));
	}
	proto_msg_init(&req);
	req.type = PROTO_T_PING;
	t0       = sagactl_now_ms();
	/* rep borrows the client's reply buffer: the client is freed
	 * after the last read of rep. */
	rv = saga_client_call(cl, &req, a.timeout_ms, &rep, err, sizeof(err));
	if (rv != 0 || rep.type != PROTO_T_PONG) {
		proto_msg_fini(&rep);
		saga_client_free(cl);
		return (sagactl_error(ctx, "%s does not answer PING (%s)", url,
		    rv != 0 ? err : "unexpected answer"));
	}
	if (ctx->json) {
		proto_obj *o = NULL;

		if ((rv = proto_obj_alloc(&o)) == 0 &&
		    (rv = proto_obj_put_str(o, "url", url)) == 0 &&
		    (rv = proto_obj_put_strn(o, "service", rep.service.ptr,
		         rep.service.len)) == 0 &&
		    (rv = proto_obj_put_int(o, "protocol", rep.version)) == 0 &&
		    (rv = proto_obj_put_int(o, "ms",
		         sagactl_now_ms() - t0)) == 0) {
			rv = sagactl_out_json(&ctx->out, o);
		}
		proto_obj_free(o);
		proto_msg_fini(&rep);
		saga_client_free(cl);
		return (rv == 0 ? SAGACTL_EXIT_OK
		                : sagactl_error(ctx, "%s", saga_strerror(rv)));
	}
	fprintf(ctx->out.f, "%s: %.*s (protocol %u) answered in %s\n", url,
	    (int) rep.service.len, rep.service.ptr, rep.version,
	    sagactl_out_dur(sagactl_now_ms() - t0, d, sizeof(d)));
	proto_msg_fini(&rep);
	saga_client_free(cl);
	return (SAGACTL_EXIT_OK);
}

/*
 * purge
 */

/* One batch: the sagas that finished (finished_at) longest before the
 * cutoff, their events and start keys, in one statement (one
 * transaction). */
static const char ops_purge_sql[]
    = "WITH victims AS ("
      " SELECT id FROM saga_instance"
      " WHERE finished_at < to_timestamp($1::bigint / 1000.0)"
      " ORDER BY finished_at LIMIT $2::bigint FOR UPDATE SKIP LOCKED),"
      " ev AS (DELETE FROM saga_event e USING victims v"
      "  WHERE e.saga_id = v.id RETURNING 1),"
      " k AS (DELETE FROM saga_start_key s USING victims v"
      "  WHERE s.saga_id = v.id RETURNING 1),"
      " i AS (DELETE FROM saga_instance s USING victims v"
      "  WHERE s.id = v.id RETURNING 1)"
      " SELECT (SELECT count(*) FROM i), (SELECT count(*) FROM ev),"
      " (SELECT count(*) FROM k)";

/* One progress line of a purge on stderr: how far, how fast, and about
 * how long is left (at the rate so far). */
static void
ops_purge_progress(const sagactl_ctx *ctx, long long done, long long of,
    long batches, int64_t elapsed_ms)
{
	double rate = elapsed_ms > 0 ? (double) done * 1000.0 /
	                                   (double) elapsed_ms
	                             : 0.0;
	char   left[48] = "";

	if (done > of) {
		of = done; /* sagas that finished since they were counted */
	}
	if (rate > 0.0 && of > done) {
		snprintf(left, sizeof(left), ", about %.0f s left",
		    (double) (of - done) / rate + 0.5);
	}
	sagactl_note(ctx,
	    "%lld of %lld sagas deleted (%d%%) in %ld batch%s, %.1f s, "
	    "%.0f sagas/s%s",
	    done, of, of > 0 ? (int) (done * 100 / of) : 100, batches,
	    batches == 1 ? "" : "es", (double) elapsed_ms / 1000.0, rate,
	    left);
}

int
sagactl_ops_purge(sagactl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "older-than", required_argument, NULL, OPS_O_OLDER },
		{ "batch", required_argument, NULL, OPS_O_BATCH },
		{ "dry-run", no_argument, NULL, OPS_O_DRY },
		{ "progress", required_argument, NULL, OPS_O_PROGRESS },
		{ "yes", no_argument, NULL, 'y' },
		{ NULL, 0, NULL, 0 },
	};
	ops_args    a;
	PGconn     *db = NULL;
	PGresult   *r  = NULL;
	char        cutoff[32], batch[32], when[40], dur[32], q[256];
	const char *p[2];
	long long   sagas = 0, events = 0, keys = 0, matching, failed;
	long long   stamped = 0;
	long        batches = 0;
	proto_obj  *o       = NULL;
	int64_t     t0, said;
	int         first, rv;

	memset(&a, 0, sizeof(a));
	a.batch = 1000;
	if ((rv = sagactl_parse(ctx, argc, argv, opts, ops_opt, &a, &first))
	    != 0) {
		return (rv);
	}
	if (first < argc) {
		return (sagactl_usage(
		    ctx, "unexpected argument \"%s\"", argv[first]));
	}
	if (!a.older_set) {
		return (sagactl_usage(
		    ctx, "give the retention: --older-than DUR (e.g. 30d)"));
	}
	if (a.older_ms > ctx->now_ms) {
		/* Before 1970, where no saga ended (and PostgreSQL's
		 * timestamps end for a long enough DUR): none matches. */
		a.older_ms = ctx->now_ms;
	}
	if (!a.progress_set) {
		/* Someone is watching: a line every 2 s. */
		a.progress_ms = isatty(STDERR_FILENO) ? 2000 : -1;
	}
	snprintf(cutoff, sizeof(cutoff), "%lld",
	    (long long) (ctx->now_ms - a.older_ms));
	snprintf(batch, sizeof(batch), "%ld", a.batch);
	p[0] = cutoff;
	p[1] = batch;
	sagactl_out_time(ctx->now_ms - a.older_ms, when, sizeof(when));
	sagactl_out_dur(a.older_ms, dur, sizeof(dur));
	if ((rv = sagactl_db_open(ctx, !a.dry, &db)) != 0) {
		return (rv);
	}
	r = sagactl_db_query(ctx, db,
	    "SELECT (SELECT count(*) FROM saga_instance"
	    "  WHERE finished_at < to_timestamp($1::bigint / 1000.0))"
	    " + (SELECT count(*) FROM saga_instance WHERE finished_at IS NULL"
	    "  AND state IN ('COMPLETED', 'COMPENSATED', 'RESOLVED')"
	    "  AND updated_at < to_timestamp($1::bigint / 1000.0)),"
	    " (SELECT count(*) FROM saga_instance WHERE state = 'FAILED'"
	    "  AND updated_at < to_timestamp($1::bigint / 1000.0))",
	    1, p);
	if (r == NULL) {
		PQfinish(db);
		return (SAGACTL_EXIT_FAIL);
	}
	matching = (long long) sagactl_db_i64(r, 0, 0, 0);
	failed   = (long long) sagactl_db_i64(r, 0, 1, 0);
	PQclear(r);
	if (failed > 0) {
		sagactl_note(ctx,
		    "%lld FAILED saga%s older than %s %s kept: FAILED sagas "
		    "wait for an operator (sagactl list --state FAILED)",
		    failed, failed == 1 ? "" : "s", dur,
		    failed == 1 ? "is" : "are");
	}
	if (!a.dry && matching > 0) {
		snprintf(q, sizeof(q),
		    "Delete %lld finished saga%s (and their events) that "
		    "ended before %s?",
		    matching, matching == 1 ? "" : "s", when);
		if ((rv = sagactl_confirm(ctx, a.yes, q)) != 0) {
			PQfinish(db);
			return (rv);
		}
		/* A batch waiting on a lock (of a table, or of the events
		 * or keys it deletes, held by a session that does not end)
		 * fails, rather than hang unseen; and ^C
		 * cancels the statement in flight, which rolls it back, and
		 * stops with the summary. Killed, sagactl left its statement
		 * running: it waited, then deleted once the lock went. */
		if ((r = sagactl_db_query(ctx, db,
		         "SET lock_timeout = '10s'", 0, NULL))
		    == NULL) {
			PQfinish(db);
			return (SAGACTL_EXIT_FAIL);
		}
		PQclear(r);
		sagactl_intr_begin(db);
		/* A sagad older than migration 003 still writing to the log
		 * (a rolling upgrade) ends sagas without finished_at (counted
		 * above with the others): they get the time of their last
		 * update, when they ended, so that the batches find them. A
		 * finished saga never changes again: nothing races with
		 * this. */
		r = sagactl_db_query(ctx, db,
		    "WITH s AS (UPDATE saga_instance SET finished_at ="
		    " updated_at WHERE finished_at IS NULL AND state IN"
		    " ('COMPLETED', 'COMPENSATED', 'RESOLVED') RETURNING 1)"
		    " SELECT count(*) FROM s",
		    0, NULL);
		if (r == NULL) {
			/* Said as a failed batch is: no batch runs. */
			rv = sagactl_interrupted() ? SAGACTL_EXIT_INTR
			                           : SAGACTL_EXIT_FAIL;
		} else {
			stamped = (long long) sagactl_db_i64(r, 0, 0, 0);
			PQclear(r);
		}
		if (stamped > 0) {
			sagactl_note(ctx,
			    "%lld finished saga%s had no finish time (ended "
			    "by a sagad older than migration 003): given the "
			    "time of %s last update",
			    stamped, stamped == 1 ? "" : "s",
			    stamped == 1 ? "its" : "their");
		}
	}
	t0 = said = sagactl_now_ms();
	while (rv == 0 && !a.dry && matching > 0) {
		long long n;
		int64_t   now;

		if (sagactl_interrupted() ||
		    (r = sagactl_db_query(ctx, db, ops_purge_sql, 2, p))
		        == NULL) {
			rv = sagactl_interrupted() ? SAGACTL_EXIT_INTR
			                           : SAGACTL_EXIT_FAIL;
			break;
		}
		n = (long long) sagactl_db_i64(r, 0, 0, 0);
		sagas += n;
		events += (long long) sagactl_db_i64(r, 0, 1, 0);
		keys += (long long) sagactl_db_i64(r, 0, 2, 0);
		PQclear(r);
		if (n == 0) {
			break;
		}
		batches++;
		if (n < a.batch) {
			break;
		}
		if (a.progress_ms >= 0 &&
		    (now = sagactl_now_ms()) - said >= a.progress_ms) {
			said = now;
			ops_purge_progress(
			    ctx, sagas, matching, batches, now - t0);
		}
	}
	sagactl_intr_end();
	ctx->applied = sagas > 0 || stamped > 0;
	PQfinish(db);
	/* With --json, the document also when a batch failed (its error
	 * is on stderr): what the batches before it deleted is gone. */
	if (ctx->json) {
		int failed_rv = rv;

		if ((rv = proto_obj_alloc(&o)) == 0) {
			rv |= proto_obj_put_bool(o, "dry_run", a.dry);
			rv |= proto_obj_put_bool(o, "complete", failed_rv == 0);
			/* when, not sagactl_out_put_time: a retention
			 * clamped to 1970 is time 0, which that writes as
			 * null ("no time"). */
			rv |= proto_obj_put_str(o, "before", when);
			rv |= proto_obj_put_int(o, "matching", matching);
			rv |= proto_obj_put_int(o, "sagas", sagas);
			rv |= proto_obj_put_int(o, "events", events);
			rv |= proto_obj_put_int(o, "start_keys", keys);
			rv |= proto_obj_put_int(o, "batches", batches);
			rv |= proto_obj_put_int(o, "failed_kept", failed);
			rv |= proto_obj_put_int(o, "stamped", stamped);
			if (rv == 0) {
				rv = sagactl_out_json(&ctx->out, o);
			}
		}
		proto_obj_free(o);
		if (rv != 0) {
			rv = sagactl_error(ctx, "cannot print the result");
		} else {
			rv = failed_rv;
		}
	} else if (a.dry) {
		fprintf(ctx->out.f,
		    "%lld finished saga%s ended before %s (older than %s) and "
		    "would be purged\n",
		    matching, matching == 1 ? "" : "s", when, dur);
	} else {
		fprintf(ctx->out.f,
		    "purged %lld saga%s (%lld events, %lld start keys) that "
		    "ended before %s, in %ld batch%s%s\n",
		    sagas, sagas == 1 ? "" : "s", events, keys, when, batches,
		    batches == 1 ? "" : "es",
		    rv == SAGACTL_EXIT_INTR
		        ? " (interrupted: run the same command again to go "
		          "on)"
		        : "");
	}
	return (rv);
}
