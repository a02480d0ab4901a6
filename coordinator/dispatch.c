/* SPDX-License-Identifier: MIT */
/*
 * dispatch: REQ sockets, contexts and the bulkhead. See dispatch.h.
 *
 * DESIGN: a slot is either free (on its participant's free list, touched by
 * the engine thread only) or busy (owned by nng until its callback posts
 * it). The callback moves a busy slot from sending to receiving, or posts
 * it; it never takes a lock, allocates or touches another slot.
 *
 * A slot carries one message: a COMMAND alone, or a BATCH of several. The
 * commands it carries stay on the slot (a BATCH's with their bytes, to be
 * sent alone if the participant refuses the BATCH) until the outcome is
 * read. The bulkhead counts commands, not messages: a participant has
 * max_in_flight slots, as many as its commands may be in flight.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "dispatch.h"
#include "saga_tls_check.h"
#include "log.h"
#include "proto_msg.h"
#include "saga_err.h"

typedef struct disp_part disp_part;

/* The bytes a BATCH adds around its commands (envelope, bin header). */
#define DISP_BATCH_OVERHEAD 32
/* A BATCH_REPLY's envelope (or an ERROR for the whole BATCH): at most one
 * level of containers inside it, of at most this many entries each. */
#define DISP_BATCH_ENV_DEPTH 2
#define DISP_BATCH_ENV_LEN 64

typedef enum disp_state {
	DS_FREE,
	DS_SEND,
	DS_RECV,
	DS_DONE,
} disp_state;

/* A command waiting for a slot, or carried by one. */
typedef struct disp_wait {
	struct disp_wait *next;
	disp_tag          tag;
	nng_msg          *msg; /* NULL once handed to nng alone */
	int64_t           timeout_ms;
	bool              alone; /* never in a BATCH (its BATCH was refused) */
	uint64_t          epoch; /* dispatch's epoch when it was queued */
} disp_wait;

typedef struct disp_slot {
	coord_event       ev; /* posted when the message finished */
	disp_part        *part;
	struct disp_slot *next_free;
	nng_ctx           ctx;
	nng_aio          *aio;
	disp_state        state;
	disp_wait        *cmds; /* the commands of the message, in order */
	size_t            ncmds;
	int64_t           start_us;
	int64_t           timeout_ms;
	int               nng_rv;
	coord_queue      *q;
} disp_slot;

struct disp_part {
	disp_part            *next;
	saga_participant_def *def; /* owned copy */
	nng_socket            sock;
	disp_slot            *slots;
	disp_slot            *free;
	size_t                busy;      /* commands in flight */
	size_t                busy_msgs; /* slots in flight */
	disp_wait            *wait_head;
	disp_wait            *wait_tail;
	size_t                nwait;
	bool                  retired; /* replaced or removed: no new sends */
	bool                  no_batch; /* BATCH not understood: alone only */
	size_t                max_bytes; /* of a BATCH; lowered on ETOOBIG */
};

struct dispatch {
	coord_queue         *q;
	const saga_tls_opts *tls;
	size_t               max_msg_bytes;
	uint64_t             epoch; /* dispatch_drop_waiting's count */
	disp_part   *parts;
	size_t       in_flight;
	proto_buf    buf;  /* building a BATCH: the message */
	proto_buf    msgs; /* and its commands, one after another */
};

static void
disp_wait_free_list(disp_wait *w)
{
	while (w != NULL) {
		disp_wait *next = w->next;

		nng_msg_free(w->msg);
		free(w);
		w = next;
	}
}

static int64_t
disp_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

/* Runs on an nng thread when a slot's send or receive finished. */
static void
disp_slot_cb(void *arg)
{
	disp_slot *s  = arg;
	int        rv = nng_aio_result(s->aio);

	if (s->state == DS_SEND) {
		if (rv == 0) {
			int64_t left = s->timeout_ms -
			    (disp_now_us() - s->start_us) / 1000;

			s->state = DS_RECV;
			nng_aio_set_timeout(s->aio, left > 0 ? left : 1);
			nng_ctx_recv(s->ctx, s->aio);
			return;
		}
		/* The message is still ours when the send failed. */
		nng_msg_free(nng_aio_get_msg(s->aio));
		nng_aio_set_msg(s->aio, NULL);
	}
	s->nng_rv = rv;
	s->state  = DS_DONE;
	coord_queue_push(s->q, &s->ev, COORD_EV_DISPATCH, s);
}

static void
disp_part_free(disp_part *p)
{
	disp_wait *w;

	if (p == NULL) {
		return;
	}
	if (p->slots != NULL) {
		for (uint32_t i = 0; i < p->def->max_in_flight; i++) {
			if (p->slots[i].aio != NULL) {
				nng_aio_stop(p->slots[i].aio);
			}
		}
	}
	nng_close(p->sock);
	if (p->slots != NULL) {
		for (uint32_t i = 0; i < p->def->max_in_flight; i++) {
			if (p->slots[i].aio != NULL) {
				nng_msg_free(nng_aio_get_msg(p->slots[i].aio));
				nng_aio_free(p->slots[i].aio);
			}
			disp_wait_free_list(p->slots[i].cmds);
		}
	}
	while ((w = p->wait_head) != NULL) {
		p->wait_head = w->next;
		nng_msg_free(w->msg);
		free(w);
	}
	free(p->slots);
	saga_participant_def_free(p->def);
	free(p);
}

static saga_participant_def *
disp_def_copy(const saga_participant_def *src)
{
	saga_participant_def *d = calloc(1, sizeof(*d));

	if (d == NULL || (d->name = strdup(src->name)) == NULL ||
	    (d->endpoints = calloc(src->nendpoints, sizeof(char *))) ==
	        NULL) {
		saga_participant_def_free(d);
		return (NULL);
	}
	d->max_in_flight = src->max_in_flight;
	d->max_batch     = src->max_batch;
	if ((src->tls_ca != NULL && (d->tls_ca = strdup(src->tls_ca)) == NULL) ||
	    (src->tls_cert != NULL &&
	        (d->tls_cert = strdup(src->tls_cert)) == NULL) ||
	    (src->tls_key != NULL &&
	        (d->tls_key = strdup(src->tls_key)) == NULL)) {
		saga_participant_def_free(d);
		return (NULL);
	}
	for (size_t i = 0; i < src->nendpoints; i++) {
		if ((d->endpoints[i] = strdup(src->endpoints[i])) == NULL) {
			saga_participant_def_free(d);
			return (NULL);
		}
		d->nendpoints++;
	}
	return (d);
}

/* Whether two optional strings are equal. */
static bool
disp_str_same(const char *a, const char *b)
{
	return (a == b || (a != NULL && b != NULL && strcmp(a, b) == 0));
}

static bool
disp_def_same(const saga_participant_def *a, const saga_participant_def *b)
{
	if (a->max_in_flight != b->max_in_flight ||
	    a->max_batch != b->max_batch || a->nendpoints != b->nendpoints ||
	    !disp_str_same(a->tls_ca, b->tls_ca) ||
	    !disp_str_same(a->tls_cert, b->tls_cert) ||
	    !disp_str_same(a->tls_key, b->tls_key)) {
		return (false);
	}
	for (size_t i = 0; i < a->nendpoints; i++) {
		if (strcmp(a->endpoints[i], b->endpoints[i]) != 0) {
			return (false);
		}
	}
	return (true);
}

/* The TLS files of participant def: its own, where its definition has
 * them, over sagad's (base, may be NULL). */
static void
disp_tls_of(const saga_tls_opts *base, const saga_participant_def *def,
    saga_tls_opts *out)
{
	saga_tls_opts none = { NULL, NULL, NULL, NULL };

	*out = base != NULL ? *base : none;
	if (def->tls_ca != NULL) {
		out->ca = def->tls_ca;
	}
	if (def->tls_cert != NULL) {
		out->cert = def->tls_cert;
		out->key  = def->tls_key;
	}
}

/* Sets p's resend time: each context has its own, copied from the socket
 * when it was opened. */
static void
disp_part_set_resend(disp_part *p, int64_t resend_ms)
{
	nng_socket_set_ms(p->sock, NNG_OPT_REQ_RESENDTIME, resend_ms);
	for (uint32_t k = 0; k < p->def->max_in_flight; k++) {
		nng_ctx_set_ms(
		    p->slots[k].ctx, NNG_OPT_REQ_RESENDTIME, resend_ms);
	}
}

void
dispatch_set_resend(dispatch *d, int64_t resend_ms)
{
	for (disp_part *p = d->parts; p != NULL; p = p->next) {
		disp_part_set_resend(p, resend_ms);
	}
}

int
dispatch_check_tls(const saga_tls_opts *tls,
    saga_participant_def *const *parts, size_t n, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const saga_participant_def *p   = parts[i];
		nng_tls_config             *cfg = NULL;
		saga_tls_opts               o;
		char                        why[256];
		bool                        uses = false;

		for (size_t j = 0; j < p->nendpoints; j++) {
			uses |= saga_tls_url(p->endpoints[j]);
		}
		if (!uses) {
			continue;
		}
		disp_tls_of(tls, p, &o);
		if (saga_tls_config(&cfg, false, &o, why, sizeof(why)) != 0 ||
		    (p->tls_cert != NULL &&
		        saga_tls_check_pair(p->tls_cert, p->tls_key, why,
		            sizeof(why)) != 0)) {
			if (cfg != NULL) {
				nng_tls_config_free(cfg);
			}
			snprintf(err, errlen, "participant %s: %s", p->name,
			    why);
			return (SAGA_EINVAL);
		}
		nng_tls_config_free(cfg);
		/* A participant's TLS listener requires a client certificate
		 * (saga_tls_config): without one, every handshake failed,
		 * with nothing in sagad's log. */
		if (o.cert == NULL) {
			snprintf(err, errlen,
			    "participant %s: a tls+tcp:// endpoint needs a "
			    "client certificate and its key, which "
			    "participants require (--tls-cert and --tls-key, "
			    "or the participant's tls: cert and key)",
			    p->name);
			return (SAGA_EINVAL);
		}
	}
	return (0);
}

static int
disp_part_open(dispatch *d, const saga_participant_def *def,
    int64_t resend_ms, disp_part **out, char *err, size_t errlen)
{
	disp_part    *p;
	saga_tls_opts tls = { NULL, NULL, NULL, NULL };
	int           rv;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->def = disp_def_copy(def)) == NULL ||
	    (p->slots = calloc(def->max_in_flight, sizeof(disp_slot))) ==
	        NULL) {
		if (p != NULL) {
			saga_participant_def_free(p->def);
		}
		free(p);
		return (SAGA_ENOMEM);
	}
	if ((rv = nng_req0_open(&p->sock)) != 0) {
		snprintf(err, errlen, "participant %s: opening a socket: %s",
		    def->name, nng_strerror(rv));
		free(p->slots);
		p->slots = NULL;
		disp_part_free(p);
		return (SAGA_EIO);
	}
	nng_socket_set_ms(p->sock, NNG_OPT_REQ_RESENDTIME, resend_ms);
	nng_socket_set_ms(p->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(p->sock, NNG_OPT_RECONNMAXT, 1000);
	/* Above the decoder's limit, so that an oversized reply is refused
	 * by the decoder with a clear error, not dropped by the transport. */
	{
		/* A BATCH_REPLY holds up to max_batch answers, each up to
		 * the message limit. */
		size_t recv = 4 * (d->max_msg_bytes > 0 ? d->max_msg_bytes
		                                        : 1024 * 1024);
		size_t most = (size_t) def->max_batch * d->max_msg_bytes +
		    DISP_BATCH_OVERHEAD;

		nng_socket_set_size(
		    p->sock, NNG_OPT_RECVMAXSZ, most > recv ? most : recv);
	}
	p->max_bytes = d->max_msg_bytes;
	for (uint32_t i = 0; i < def->max_in_flight; i++) {
		disp_slot *s = &p->slots[i];

		s->part  = p;
		s->q     = d->q;
		s->state = DS_FREE;
		if ((rv = nng_ctx_open(&s->ctx, p->sock)) != 0 ||
		    (rv = nng_aio_alloc(&s->aio, disp_slot_cb, s)) != 0) {
			snprintf(err, errlen,
			    "participant %s: opening contexts: %s", def->name,
			    nng_strerror(rv));
			disp_part_free(p);
			return (SAGA_ENOMEM);
		}
		s->next_free = p->free;
		p->free      = s;
	}
	disp_tls_of(d->tls, def, &tls);
	for (size_t i = 0; i < def->nendpoints; i++) {
		/* Non-blocking: a participant that is down now is dialled
		 * again in the background until it answers. */
		char why[256];

		if (saga_tls_url(def->endpoints[i]) &&
		    !saga_tls_name_of(def->endpoints[i], why, sizeof(why))) {
			log_warn("TLS-NAME-UNCHECKED participant=%s: %s is an "
			         "address: its certificate is checked against "
			         "the CA only (mbedtls 2.28 matches names, not "
			         "addresses); give a DNS name to have the name "
			         "checked too",
			    def->name, def->endpoints[i]);
		}

		if ((rv = saga_tls_dial(p->sock, def->endpoints[i], &tls,
		         NNG_FLAG_NONBLOCK, why, sizeof(why))) != 0) {
			snprintf(err, errlen, "participant %s: %s", def->name,
			    why);
			disp_part_free(p);
			return (SAGA_EINVAL);
		}
	}
	*out = p;
	return (0);
}

int
dispatch_alloc(dispatch **out, coord_queue *q, const saga_tls_opts *tls,
    size_t max_msg_bytes)
{
	dispatch *d;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		return (SAGA_ENOMEM);
	}
	d->q             = q;
	d->tls           = tls;
	d->max_msg_bytes = max_msg_bytes;
	proto_buf_init(&d->buf);
	proto_buf_init(&d->msgs);
	*out = d;
	return (0);
}

void
dispatch_stop(dispatch *d)
{
	if (d == NULL) {
		return;
	}
	for (disp_part *p = d->parts; p != NULL; p = p->next) {
		for (uint32_t i = 0; i < p->def->max_in_flight; i++) {
			if (p->slots[i].aio != NULL) {
				nng_aio_stop(p->slots[i].aio);
			}
		}
	}
}

void
dispatch_free(dispatch *d)
{
	disp_part *p;

	if (d == NULL) {
		return;
	}
	while ((p = d->parts) != NULL) {
		d->parts = p->next;
		disp_part_free(p);
	}
	proto_buf_fini(&d->buf);
	proto_buf_fini(&d->msgs);
	free(d);
}

static disp_part *
disp_find(dispatch *d, const char *name)
{
	for (disp_part *p = d->parts; p != NULL; p = p->next) {
		if (!p->retired && strcmp(p->def->name, name) == 0) {
			return (p);
		}
	}
	return (NULL);
}

/* Takes the first waiting command of p off its FIFO. */
static disp_wait *
disp_wait_pop(disp_part *p)
{
	disp_wait *w = p->wait_head;

	p->wait_head = w->next;
	if (p->wait_head == NULL) {
		p->wait_tail = NULL;
	}
	p->nwait--;
	w->next = NULL;
	return (w);
}

/* Puts the list head (commands, in order) back at the front of p's FIFO,
 * with alone set (to be sent alone) or not; those queued before the last
 * dispatch_drop_waiting are dropped (their sagas were reloaded). */
static void
disp_wait_push_front(dispatch *d, disp_part *p, disp_wait *head, bool alone)
{
	disp_wait *last = NULL, **pp = &head;
	size_t     n    = 0;

	while (*pp != NULL) {
		disp_wait *w = *pp;

		if (w->epoch != d->epoch) {
			*pp = w->next;
			nng_msg_free(w->msg);
			free(w);
			continue;
		}
		w->alone = w->alone || alone;
		last     = w;
		n++;
		pp = &w->next;
	}
	if (last == NULL) {
		return;
	}
	last->next   = p->wait_head;
	p->wait_head = head;
	if (p->wait_tail == NULL) {
		p->wait_tail = last;
	}
	p->nwait += n;
}

/* Hands the message msg carrying the n commands of list cmds to a free
 * slot of p. */
static void
disp_start(dispatch *d, disp_part *p, disp_wait *cmds, size_t n, nng_msg *msg)
{
	disp_slot *s = p->free;

	p->free       = s->next_free;
	s->next_free  = NULL;
	s->cmds       = cmds;
	s->ncmds      = n;
	s->state      = DS_SEND;
	s->timeout_ms = cmds->timeout_ms;
	s->start_us   = disp_now_us();
	p->busy += n;
	p->busy_msgs++;
	d->in_flight += n;
	nng_aio_set_msg(s->aio, msg);
	nng_aio_set_timeout(s->aio, s->timeout_ms);
	nng_ctx_send(s->ctx, s->aio);
}

/* Builds the BATCH of the n commands of list cmds; NULL when out of
 * memory. */
static nng_msg *
disp_batch_msg(dispatch *d, disp_wait *cmds)
{
	proto_msg m;
	nng_msg  *msg = NULL;

	proto_buf_reset(&d->msgs);
	for (disp_wait *w = cmds; w != NULL; w = w->next) {
		if (proto_buf_append(&d->msgs, nng_msg_body(w->msg),
		        nng_msg_len(w->msg)) != 0) {
			return (NULL);
		}
	}
	proto_msg_init(&m);
	m.type = PROTO_T_BATCH;
	m.msgs = proto_buf_raw(&d->msgs);
	proto_buf_reset(&d->buf);
	if (proto_msg_encode(&m, &d->buf) != 0 ||
	    nng_msg_alloc(&msg, 0) != 0) {
		return (NULL);
	}
	if (nng_msg_append(msg, d->buf.data, d->buf.len) != 0) {
		nng_msg_free(msg);
		return (NULL);
	}
	return (msg);
}

/* The commands in flight to participant p's name: its own, and those of
 * the retired parts it replaced (a reload that changed its definition),
 * which keep theirs until they are answered. The bulkhead counts them
 * all, else each reload would let max_in_flight more out. */
static size_t
disp_busy_of(const dispatch *d, const disp_part *p)
{
	size_t busy = p->busy;

	for (const disp_part *o = d->parts; o != NULL; o = o->next) {
		if (o != p && o->retired &&
		    strcmp(o->def->name, p->def->name) == 0) {
			busy += o->busy;
		}
	}
	return (busy);
}

/* Sends p's waiting commands while it has room: each alone, or, where
 * several are waiting with the same timeout, up to max_batch of them in
 * one BATCH no larger than sagad's own message limit. Room counts the
 * commands still in flight on p's retired parts (disp_busy_of); when
 * they are answered, the next dispatch_flush sends more. Returns 0 or
 * SAGA_ENOMEM (what could not be sent stays waiting). */
static int
disp_drain_waiting(dispatch *d, disp_part *p)
{
	size_t busy;

	while (p->free != NULL && p->wait_head != NULL &&
	    (busy = disp_busy_of(d, p)) < p->def->max_in_flight) {
		size_t     room = p->def->max_in_flight - busy;
		size_t     max  = p->no_batch ? 1 : p->def->max_batch;
		disp_wait *head = disp_wait_pop(p), *tail = head;
		size_t     n    = 1;
		size_t     bytes = nng_msg_len(head->msg) + DISP_BATCH_OVERHEAD;
		nng_msg   *msg;

		if (max > room) {
			max = room;
		}
		while (!head->alone && n < max && p->wait_head != NULL &&
		    !p->wait_head->alone &&
		    p->wait_head->timeout_ms == head->timeout_ms &&
		    bytes + nng_msg_len(p->wait_head->msg) <= p->max_bytes) {
			bytes += nng_msg_len(p->wait_head->msg);
			tail->next = disp_wait_pop(p);
			tail       = tail->next;
			n++;
		}
		if (n == 1) {
			msg       = head->msg;
			head->msg = NULL;
		} else if ((msg = disp_batch_msg(d, head)) == NULL) {
			disp_wait_push_front(d, p, head, false);
			return (SAGA_ENOMEM);
		}
		disp_start(d, p, head, n, msg);
	}
	return (0);
}

int
dispatch_flush(dispatch *d)
{
	int rv = 0;

	for (disp_part *p = d->parts; p != NULL; p = p->next) {
		if (!p->retired && disp_drain_waiting(d, p) != 0) {
			rv = SAGA_ENOMEM;
		}
	}
	return (rv);
}

int
dispatch_configure(dispatch *d, saga_participant_def *const *parts, size_t n,
    int64_t resend_ms, void (*done)(void *arg, disp_done *dd), void *arg,
    char *err, size_t errlen)
{
	disp_part *fresh = NULL, **tail = &fresh;
	int        rv;

	/* Open everything new first, so that a bad URL changes nothing. */
	for (size_t i = 0; i < n; i++) {
		disp_part *old = disp_find(d, parts[i]->name);
		disp_part *p;

		if (old != NULL && disp_def_same(old->def, parts[i])) {
			/* Kept, but the longest timeout may have grown. */
			disp_part_set_resend(old, resend_ms);
			continue;
		}
		if ((rv = disp_part_open(d, parts[i], resend_ms, &p, err,
		         errlen)) != 0) {
			while ((p = fresh) != NULL) {
				fresh = p->next;
				disp_part_free(p);
			}
			return (rv);
		}
		*tail = p;
		tail  = &p->next;
	}
	/* Retire what was replaced or removed; move its waiting commands. */
	for (disp_part *p = d->parts; p != NULL; p = p->next) {
		bool keep = false;

		if (p->retired) {
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			if (strcmp(parts[i]->name, p->def->name) == 0 &&
			    disp_def_same(p->def, parts[i])) {
				keep = true;
			}
		}
		if (keep) {
			continue;
		}
		p->retired = true;
		for (disp_part *f = fresh; f != NULL; f = f->next) {
			if (strcmp(f->def->name, p->def->name) == 0 &&
			    p->wait_head != NULL) {
				if (f->wait_tail != NULL) {
					f->wait_tail->next = p->wait_head;
				} else {
					f->wait_head = p->wait_head;
				}
				f->wait_tail = p->wait_tail;
				f->nwait += p->nwait;
				p->nwait     = 0;
				p->wait_head = p->wait_tail = NULL;
			}
		}
	}
	/* The waiting commands of a participant that is gone: each fails
	 * (the engine retries it, and finds the participant missing). */
	for (disp_part *p = d->parts; p != NULL; p = p->next) {
		disp_wait *w;

		while (p->retired && (w = p->wait_head) != NULL) {
			disp_done dd;

			p->wait_head = w->next;
			p->nwait--;
			memset(&dd, 0, sizeof(dd));
			dd.tag        = w->tag;
			dd.result     = SAGA_EIO;
			dd.batch_size = 1;
			snprintf(dd.participant, sizeof(dd.participant), "%s",
			    p->def->name);
			snprintf(dd.errtext, sizeof(dd.errtext),
			    "participant %s left the configuration before the "
			    "command was sent",
			    p->def->name);
			nng_msg_free(w->msg);
			free(w);
			if (done != NULL) {
				done(arg, &dd);
			}
		}
		if (p->retired) {
			p->wait_tail = NULL;
		}
	}
	*tail    = d->parts;
	d->parts = fresh;
	/* Retired participants without commands in flight go now. */
	for (disp_part **pp = &d->parts; *pp != NULL;) {
		disp_part *p = *pp;

		if (p->retired && p->busy_msgs == 0) {
			*pp = p->next;
			disp_part_free(p);
		} else {
			pp = &p->next;
		}
	}
	return (0);
}

int
dispatch_send(dispatch *d, const char *participant, const disp_tag *tag,
    proto_raw msg, int64_t timeout_ms)
{
	disp_part *p = disp_find(d, participant);
	nng_msg   *m = NULL;
	disp_wait *w;

	if (p == NULL) {
		return (SAGA_ENOTFOUND);
	}
	if (nng_msg_alloc(&m, 0) != 0 ||
	    nng_msg_append(m, msg.ptr, msg.len) != 0) {
		nng_msg_free(m);
		return (SAGA_ENOMEM);
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		nng_msg_free(m);
		return (SAGA_ENOMEM);
	}
	w->tag        = *tag;
	w->msg        = m;
	w->timeout_ms = timeout_ms;
	w->epoch      = d->epoch;
	if (p->wait_tail != NULL) {
		p->wait_tail->next = w;
	} else {
		p->wait_head = w;
	}
	p->wait_tail = w;
	p->nwait++;
	return (0);
}

/* Fills out for command w of slot s (index i of its message), with the
 * slot's transport result; the reply is the caller's to set. */
static void
disp_done_init(disp_done *out, const disp_slot *s, const disp_wait *w,
    size_t i)
{
	const disp_part *p = s->part;

	memset(out, 0, sizeof(*out));
	out->tag         = w->tag;
	out->duration_us = disp_now_us() - s->start_us;
	out->batch_index = i;
	out->batch_size  = s->ncmds;
	snprintf(out->participant, sizeof(out->participant), "%s",
	    p->def->name);
	if (s->nng_rv == NNG_ETIMEDOUT) {
		out->result = SAGA_ETIMEDOUT;
		snprintf(out->errtext, sizeof(out->errtext),
		    "no reply from %s within %lld ms", p->def->name,
		    (long long) s->timeout_ms);
	} else if (s->nng_rv != 0) {
		out->result = SAGA_EIO;
		snprintf(out->errtext, sizeof(out->errtext), "%s: %s",
		    p->def->name, nng_strerror(s->nng_rv));
	}
}

/* Participant p refused the BATCH of slot s as a whole with ERROR e: its
 * commands are put back at the front of p's FIFO. A participant that does
 * not know BATCH (EMSGTYPE; ESTRLEN or ETYPE from one that cannot read a
 * large bin) gets single commands from now on; one whose limit the BATCH
 * passed (ETOOBIG) gets BATCHes of half its size; any other refusal
 * sends these commands alone and keeps BATCH. No outcome is reported:
 * nothing was attempted. */
static void
disp_batch_refused(dispatch *d, disp_part *p, disp_slot *s, const proto_msg *e)
{
	const char *code  = saga_errname((int) e->code);
	size_t      bytes = 0;

	for (disp_wait *w = s->cmds; w != NULL; w = w->next) {
		bytes += nng_msg_len(w->msg);
	}
	switch (e->code) {
	case SAGA_EMSGTYPE:
	case SAGA_ESTRLEN:
	case SAGA_ETYPE:
		if (!p->no_batch) {
			log_warn("BATCH-OFF participant=%s: it answered a BATCH "
			         "of %zu commands with %s (%.*s); sending it one "
			         "command per message from now on",
			    p->def->name, s->ncmds, code, (int) e->message.len,
			    e->message.ptr);
		}
		p->no_batch = true;
		disp_wait_push_front(d, p, s->cmds, true);
		return;
	case SAGA_ETOOBIG:
		if (bytes / 2 < p->max_bytes) {
			p->max_bytes = bytes / 2;
		}
		log_warn("BATCH-SMALLER participant=%s: it refused a BATCH of "
		         "%zu bytes with %s (%.*s); its BATCHes are at most %zu "
		         "bytes from now on",
		    p->def->name, bytes, code, (int) e->message.len,
		    e->message.ptr, p->max_bytes);
		disp_wait_push_front(d, p, s->cmds, false);
		return;
	default:
		log_warn("BATCH-REFUSED participant=%s: it answered a BATCH of "
		         "%zu commands with %s (%.*s); sending them one by one",
		    p->def->name, s->ncmds, code, (int) e->message.len,
		    e->message.ptr);
		disp_wait_push_front(d, p, s->cmds, true);
		return;
	}
}

/* The answer to a BATCH arrived on s: hands each command its own answer.
 * A BATCH refused whole (ERROR) is put back to be sent again
 * (disp_batch_refused); returns true then (nothing to hand out). */
static bool
disp_batch_answer(dispatch *d, disp_slot *s, const proto_limits *lim,
    void (*done)(void *arg, disp_done *dd), void *arg)
{
	disp_part  *p     = s->part;
	nng_msg    *reply = nng_aio_get_msg(s->aio);
	proto_msg   m;
	proto_error perr;
	proto_raw   one;
	size_t      off = 0, count = 0, i = 0;
	char        why[160];
	int         rv;
	disp_done   dd;
	proto_limits big;

	nng_aio_set_msg(s->aio, NULL);
	why[0] = '\0';
	/* Each answer may be as large as a message: the BATCH_REPLY as a
	 * whole is bounded by that many; each answer is decoded under lim
	 * on its own later. Its envelope is flat (msgs is one bin), and
	 * msgpack-c builds a tree of about 24 bytes per value: unknown keys
	 * full of small values in a reply that large would cost sagad 24
	 * times its size, so the envelope's containers are bounded here. */
	big               = *lim;
	big.max_msg_bytes = lim->max_msg_bytes * s->ncmds + DISP_BATCH_OVERHEAD;
	if (big.max_depth > DISP_BATCH_ENV_DEPTH) {
		big.max_depth = DISP_BATCH_ENV_DEPTH;
	}
	if (big.max_container_len > DISP_BATCH_ENV_LEN) {
		big.max_container_len = DISP_BATCH_ENV_LEN;
	}
	rv                = proto_msg_decode(
            nng_msg_body(reply), nng_msg_len(reply), &big, &m, &perr);
	if (rv == 0 && m.type == PROTO_T_ERROR) {
		/* Refused whole: its commands go again, to the participant's
		 * current definition if it was replaced meanwhile. */
		disp_part *to = p->retired ? disp_find(d, p->def->name) : p;

		if (to != NULL) {
			disp_batch_refused(d, to, s, &m);
			s->cmds = NULL;
			proto_msg_fini(&m);
			nng_msg_free(reply);
			return (true);
		}
	}
	if (rv != 0) {
		snprintf(why, sizeof(why),
		    "malformed BATCH_REPLY from %s: %s: %.80s", p->def->name,
		    saga_errname(rv), perr.msg);
	} else if (m.type != PROTO_T_BATCH_REPLY) {
		snprintf(why, sizeof(why), "%s answered a BATCH with %s",
		    p->def->name, proto_type_name(m.type));
	}
	for (disp_wait *w = s->cmds; w != NULL; w = w->next, i++) {
		disp_done_init(&dd, s, w, i);
		if (why[0] == '\0') {
			rv = proto_batch_next(m.msgs, &off, &count, lim, &one,
			    &perr);
			if (rv != 0) {
				snprintf(why, sizeof(why),
				    "malformed BATCH_REPLY from %s: answer %zu: "
				    "%s: %.80s",
				    p->def->name, i + 1, saga_errname(rv),
				    perr.msg);
			} else if (one.len == 0) {
				snprintf(why, sizeof(why),
				    "%s answered %zu of the %zu commands of a "
				    "BATCH",
				    p->def->name, i, s->ncmds);
			} else {
				dd.reply = one;
			}
		}
		if (why[0] != '\0') {
			dd.result = SAGA_EIO;
			snprintf(dd.errtext, sizeof(dd.errtext), "%s", why);
		}
		done(arg, &dd);
	}
	if (why[0] == '\0') {
		/* Answers past the last command answer nothing sagad asked:
		 * ignored, but said, as they show a participant's bug. */
		size_t extra = 0;

		while ((rv = proto_batch_next(m.msgs, &off, &count, lim, &one,
		            &perr)) == 0 &&
		    one.len > 0) {
			extra++;
		}
		if (extra > 0 || rv != 0) {
			log_warn("BATCH-EXTRA participant=%s: it answered a "
			         "BATCH of %zu commands with %zu answers "
			         "more%s; ignored",
			    p->def->name, s->ncmds, extra,
			    rv != 0 ? " and bytes that are not one" : "");
		}
	}
	proto_msg_fini(&m);
	nng_msg_free(reply);
	return (false);
}

void
dispatch_event(dispatch *d, coord_event *ev, const proto_limits *lim,
    void (*done)(void *arg, disp_done *dd), void *arg)
{
	disp_slot *s = ev->obj;
	disp_part *p = s->part;
	size_t     n = s->ncmds;
	disp_done  dd;

	if (s->ncmds > 1 && s->nng_rv == 0) {
		(void) disp_batch_answer(d, s, lim, done, arg);
	} else {
		nng_msg *reply = s->nng_rv == 0 ? nng_aio_get_msg(s->aio) : NULL;
		size_t   i     = 0;

		nng_aio_set_msg(s->aio, NULL);
		for (disp_wait *w = s->cmds; w != NULL; w = w->next, i++) {
			disp_done_init(&dd, s, w, i);
			if (reply != NULL) {
				dd.reply.ptr = nng_msg_body(reply);
				dd.reply.len = nng_msg_len(reply);
			}
			done(arg, &dd);
		}
		nng_msg_free(reply);
	}
	disp_wait_free_list(s->cmds);
	s->cmds      = NULL;
	s->ncmds     = 0;
	s->state     = DS_FREE;
	s->next_free = p->free;
	p->free      = s;
	p->busy -= n;
	p->busy_msgs--;
	d->in_flight -= n;
	if (p->retired && p->busy_msgs == 0) {
		for (disp_part **pp = &d->parts; *pp != NULL;
		     pp             = &(*pp)->next) {
			if (*pp == p) {
				*pp = p->next;
				break;
			}
		}
		disp_part_free(p);
	}
}

void
dispatch_drop_waiting(dispatch *d)
{
	/* A BATCH in flight now and refused later is not put back. */
	d->epoch++;
	for (disp_part *p = d->parts; p != NULL; p = p->next) {
		disp_wait *w;

		while ((w = p->wait_head) != NULL) {
			p->wait_head = w->next;
			nng_msg_free(w->msg);
			free(w);
		}
		p->wait_tail = NULL;
		p->nwait     = 0;
	}
}

void
dispatch_stats(const dispatch *d,
    void (*cb)(void *arg, const char *participant, size_t busy,
        size_t waiting),
    void *arg)
{
	/* With the commands still in flight on the parts a reload retired
	 * (the gauge fell to 0 at the reload, with them unanswered). */
	for (const disp_part *p = d->parts; p != NULL; p = p->next) {
		if (!p->retired) {
			cb(arg, p->def->name, disp_busy_of(d, p), p->nwait);
		}
	}
}

size_t
dispatch_in_flight(const dispatch *d)
{
	return (d->in_flight);
}
