/* SPDX-License-Identifier: MIT */
/*
 * sagad: the saga coordinator daemon.
 *
 * It loads saga definitions from YAML, owns the saga log in PostgreSQL,
 * drives every saga through its steps by sending commands to participants
 * over nng, and compensates when a step fails for good. Clients start and
 * inspect sagas through its nng API (docs/protocol.md); operators use
 * sagactl.
 *
 * DESIGN (DESIGN.md, "Threads"): one engine thread owns every saga. nng
 * callbacks and the reader thread only post events to its queue. Each turn
 * of the loop polls the queue's eventfd and the database socket, reads the
 * results of the batch in flight and releases the effects of a committed
 * batch (commands, answers), handles the queued events, runs due timers,
 * and sends the staged transitions as the next batch when none is in
 * flight: group commit. The engine (saga_engine.c) decides; this file
 * only moves bytes. Nothing leaves before the transition that decided it
 * is committed (write-ahead); a batch that fails or whose fate is unknown
 * makes sagad drop every saga from memory and reload them from the log
 * once the database answers again.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coord_config.h"
#include "coord_queue.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "proto_msg.h"
#include "reader.h"
#include "rpc_server.h"
#include "saga_engine.h"
#include "saga_err.h"
#include "saga_store.h"
#include "saga_tls.h"
#include "saga_tls_check.h"
#include "sql_conn.h"
#include "sql_durable.h"
#include "sql_migrate.h"
#include "timer.h"

#ifndef SAGA_VERSION_STRING
#define SAGA_VERSION_STRING "0.1.0"
#endif

#define container_of(p, type, member)                                    \
	((type *) (void *) ((char *) (p) -offsetof(type, member)))

enum {
	TK_SAGA,
	TK_WAIT,
	TK_RECONNECT,
	TK_LEASE,
	TK_RWAIT,
};

typedef struct saga_rt  saga_rt;
typedef struct waiter   waiter;
typedef struct coord    coord;

/* A client waiting for a saga: a WAIT or a START with timeout_ms (until
 * the saga is final), a duplicate START waiting for the first one's
 * commit, or a refusal waiting for the commit of the transitions it was
 * judged on. */
struct waiter {
	timer_ent timer;
	waiter   *next;
	rpc_req  *req;
	saga_rt  *saga;
	bool      dup_start;  /* until the saga is created */
	bool      until_final; /* until it is in a final state */
	bool      created;    /* the answer's "created" (a START's) */
	int       refusal;    /* until nothing is pending: this ERROR */
	char      refusal_text[sizeof(((saga_fx *) 0)->answer_text)];
};

/* A WAIT for a saga that another instance owns: the log is read again
 * until it ends or the wait times out. */
typedef struct rwaiter {
	timer_ent timer;
	rpc_req  *req;
	saga_id   id;
	int64_t   until_ms;
} rwaiter;

/* A repair (RETRY, RESOLVE, SKIP) of a saga not in memory claims it in
 * its load job, which raises the saga's epoch. Two such jobs for one saga
 * at once both raised it, and the second claim fenced the first repair's
 * write: both repairs failed, the saga stayed FAILED. So one claim of a
 * saga is in flight at a time; the repairs of that saga that come
 * meanwhile wait here for it, then go through coord_api again (to the
 * saga in memory, as a rule). */
typedef struct claim_wait {
	struct claim_wait *next;
	saga_id            id;
	rpc_req          **reqs;
	size_t             n;
	size_t             cap;
} claim_wait;

/* One saga in memory. */
struct saga_rt {
	saga_inst inst;
	saga_rt  *hnext;   /* id hash chain */
	saga_rt  *knext;   /* key hash chain */
	timer_ent timer;
	char      id_text[SAGA_ID_STRLEN + 1];
	char     *trace;
	char     *business_key;
	char     *key;
	proto_buf context; /* {"input": ..., "steps": {...}} */
	bool      created; /* its INSERT committed */
	int64_t   epoch;   /* the lease epoch this instance holds */
	bool      clear_cancel; /* the next transition carries out a cancel
	                           asked through the database */
	bool      fenced;  /* another instance took it over: forget it */
	bool      key_lost; /* fenced: not in the log, as another START
	                       committed its key first (saga_store_lost) */
	int       pending; /* batch entries not yet committed */
	int       wr;      /* pending > 0: the writer holding them */
	uint64_t  copy;    /* which copy in memory of the saga this is
	                      (coord_saga_alloc): its commands carry it */
	waiter   *waiters;
	/* Transitions not committed yet that clear its cancel note, and the
	 * lease job (c->lease_jobs) in flight when the last one committed:
	 * neither that one's read nor a later round's may take the note
	 * again (coord_db_cancel). */
	int       clearing;
	uint64_t  cleared_job;
	/* The last lease round that found it owned here (c->lease_round),
	 * and how many rounds in a row did not (coord_lease_stale). */
	uint64_t  renewed_round;
	unsigned  unrenewed;
	/* The state as of the last committed transition: what answers
	 * report. */
	saga_state cstate;
	int32_t    cstep;
	char       cerror[256];
};

/* The effects of one transition, released after its batch commits. */
typedef struct coord_entry {
	saga_rt   *saga;
	bool       created;
	bool       send;
	bool       finished;
	bool       clears; /* carries out (or refuses) a cancel note */
	int32_t    step;
	uint32_t   kind;
	uint32_t   attempt;
	saga_state state;
	rpc_req   *answer;
	bool       last; /* set at release: the saga's last pending entry */
	char       error[256];
	/* Its operational events: notes v[note0 .. note0 + nnotes) of the
	 * writer's list that goes with this entry's. */
	size_t     note0;
	size_t     nnotes;
} coord_entry;

typedef struct entry_list {
	coord_entry *v;
	size_t       n;
	size_t       cap;
} entry_list;

/* The events of staged transitions that sagad logs and counts: written
 * and counted when their batch has committed, not when it is staged. A
 * batch that fails, or whose saga another instance took over, did not
 * happen: its transitions are decided again (after a reload, by the new
 * owner), and an early SAGA-COMPLETE line or saga_finished_total would
 * say twice, or wrongly, that they happened. */
typedef struct note_list {
	saga_log *v;
	size_t    n;
	size_t    cap;
} note_list;

/* At most this many connections write batches (--db-writers). */
#define COORD_WRITERS_MAX 4
/* A writer whose batch has been in flight this long is passed over for
 * sagas with nothing pending (coord_writer_of). */
#define COORD_WRITER_STALL_US 50000
/* The longest wait a client can ask for (timeout_ms of START and WAIT,
 * 7 days): a longer one counts as this, so that the clock plus it cannot
 * overflow (docs/protocol.md). */
#define COORD_WAIT_MAX_MS (7LL * 24 * 3600 * 1000)
/* The longest idempotency key and business key a START may give, in
 * bytes. Both are indexed (saga_start_key's primary key, saga_instance's
 * business key index), and PostgreSQL refuses an index entry above 2,704
 * bytes: a longer one failed the whole batch, which sagad took for an
 * outage, with every other saga in it. */
#define COORD_KEY_MAX 1024
/* After a reconnect, lease rounds take no saga of another instance for
 * a lease and this much more: the reconnect backoff's longest pause, so
 * that instances that lost the database at different moments are back
 * (coord_claim_limit). */
#define COORD_TAKEOVER_GRACE_MS 5000

/* One connection that writes batches: one batch in flight on it, the
 * next one staged. Writer 0's store is also the one of the blocking
 * calls (registration, recovery). */
typedef struct coord_writer {
	saga_store *st;
	entry_list  staged;
	entry_list  flight;
	note_list   snotes; /* the notes of staged */
	note_list   fnotes; /* the notes of flight */
	int64_t     flush_us; /* when the batch in flight was sent */
} coord_writer;

typedef struct coord_opts {
	const char **configs;
	size_t       nconfigs;
	const char  *conninfo;
	const char  *listen;
	bool         check;
	bool         migrate;
	size_t       max_active;
	size_t       max_context;
	size_t       api_contexts;
	size_t       api_conns;
	const char  *metrics_listen;
	bool         listen_local; /* --listen reaches this machine only */
	const char  *instance_id;
	int64_t      lease_ms;
	int          writers;
	saga_tls_opts tls;
	proto_limits lim;
} coord_opts;

struct coord {
	coord_opts   o;
	coord_queue  q;
	size_t       nparked;  /* requests held until a saga ends */
	int64_t      resend_ms; /* nng's REQ resend time, as last set */
	coord_defs  *cfg;      /* current configuration (participants) */
	saga_def   **defs;     /* every definition version loaded (owned) */
	size_t       ndefs;
	saga_def   **current;  /* the current version of each saga */
	size_t       ncurrent;
	saga_store  *st;       /* wr[0].st */
	coord_writer wr[COORD_WRITERS_MAX];
	int          nwr;
	int          target;   /* the writer new sagas stage into */
	reader      *rd;
	reader      *lrd;   /* leases: renew, take over, cancels */
	timer_ent    lease;
	bool         lease_busy;
	saga_id     *adopt; /* owned in the log, not in memory: take back */
	unsigned     id_taken; /* lease rounds that found our id another's */
	size_t       nadopt;
	saga_id     *suspect; /* not in memory at the last lease round */
	size_t       nsuspect;
	uint64_t     lease_round; /* lease rounds with a renewal read */
	uint64_t     lease_jobs;  /* lease jobs submitted */
	/* Sagas claimed that cannot be loaded (coord_unloadable): to give
	 * back at the next lease round, and never to claim again. */
	reader_giveback *giveback;
	size_t           ngiveback;
	saga_id         *unloadable;
	size_t           nunloadable;
	claim_wait      *claims; /* repairs' claims in flight */
	char         instance[128];
	dispatch    *disp;
	rpc_server  *api;
	/* Two clocks: timers holds the sagas' wake times, which are wall
	 * clock times kept in the log (deadlines, retry times); mtimers
	 * the durations (client waits, lease rounds, reconnects), on the
	 * monotonic clock, which a step of the wall clock does not move
	 * (stepped back 30 s, the lease rounds stopped for 30 s, and another
	 * instance took over this one's sagas). */
	timer_heap   timers;
	timer_heap   mtimers;
	timer_ent    reconnect;
	int64_t      reconnect_backoff;
	char         reconnect_why[512]; /* last reconnect failure logged */
	bool         db_up;
	uint64_t     gen;
	uint64_t     copies; /* sagas put in memory, for saga_rt.copy */
	saga_rt    **byid;
	size_t       byid_cap;
	saga_rt    **bykey;
	size_t       bykey_cap;
	size_t       nsagas;
	/* Lease rounds take no saga of another instance before this time
	 * (coord_claim_limit; coord_mono_ms). */
	int64_t      takeover_from_ms;
	proto_obj   *ctx_root;
	proto_obj   *ctx_steps;
	proto_buf    sendbuf;
	uint64_t     rng;
	int64_t      max_timeout_ms;
	proto_limits in_lim;  /* a START's input: what a COMMAND carries */
	proto_limits out_lim; /* a step's output: the same */
	proto_limits ctx_lim; /* a context read back from the log */
	metrics     *m;
	int64_t      gauges_at;   /* next refresh of the gauges */
	unsigned long api_refused; /* connections refused, counted */
	int64_t      failed_at;   /* next count of FAILED sagas */
	bool         failed_busy; /* a count is running */
	size_t       reloads_pending;
};

static volatile sig_atomic_t coord_sig_term;
static volatile sig_atomic_t coord_sig_hup;
static coord_queue          *coord_sig_queue;

static void
coord_fatal(const char *what, int rv)
{
	log_error("fatal: %s: %s", what, saga_strerror(rv));
	exit(1);
}

/* CLOCK_MONOTONIC in microseconds: the clock of the queue's stamps. */
static int64_t
coord_now_us(void)
{
	return (coord_queue_now_us());
}

static int64_t
coord_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* The clock of c->mtimers. */
static int64_t
coord_mono_ms(void)
{
	return (coord_queue_now_us() / 1000);
}

/* xorshift64*: the random numbers handed to the engine (jitter). */
static uint32_t
coord_rand(coord *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return ((uint32_t) ((c->rng * 2685821657736338717ULL) >> 32));
}

static void
coord_random_bytes(void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);

		if (got < 0) {
			if (errno == EINTR) {
				continue;
			}
			coord_fatal("getrandom", SAGA_EINTERNAL);
		}
		p += got;
		n -= (size_t) got;
	}
}

/* Hash tables. The id's last bytes are random (UUIDv7). */
static size_t
coord_id_hash(const saga_id *id)
{
	uint64_t h;

	memcpy(&h, id->b + 8, sizeof(h));
	return ((size_t) h);
}

static size_t
coord_str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h = (h ^ (uint8_t) *s) * 1099511628211ULL;
	}
	return ((size_t) h);
}

static saga_rt *
coord_find(coord *c, const saga_id *id)
{
	saga_rt *s = c->byid[coord_id_hash(id) & (c->byid_cap - 1)];

	while (s != NULL && !saga_id_equal(&s->inst.id, id)) {
		s = s->hnext;
	}
	return (s);
}

/* The saga in memory started with key, not counting one being dropped
 * (fenced): the log says who has the key then. */
static saga_rt *
coord_find_key(coord *c, const char *key)
{
	saga_rt *s = c->bykey[coord_str_hash(key) & (c->bykey_cap - 1)];

	while (s != NULL && (s->fenced || strcmp(s->key, key) != 0)) {
		s = s->knext;
	}
	return (s);
}

static void
coord_grow(coord *c)
{
	size_t    cap = c->byid_cap * 2;
	saga_rt **nid = calloc(cap, sizeof(*nid));
	saga_rt **nk  = calloc(cap, sizeof(*nk));

	if (nid == NULL || nk == NULL) {
		coord_fatal("growing the saga table", SAGA_ENOMEM);
	}
	for (size_t i = 0; i < c->byid_cap; i++) {
		saga_rt *s, *nx;

		for (s = c->byid[i]; s != NULL; s = nx) {
			size_t h = coord_id_hash(&s->inst.id) & (cap - 1);

			nx       = s->hnext;
			s->hnext = nid[h];
			nid[h]   = s;
		}
		for (s = c->bykey[i]; s != NULL; s = nx) {
			size_t h = coord_str_hash(s->key) & (cap - 1);

			nx       = s->knext;
			s->knext = nk[h];
			nk[h]    = s;
		}
	}
	free(c->byid);
	free(c->bykey);
	c->byid     = nid;
	c->bykey    = nk;
	c->byid_cap = c->bykey_cap = cap;
}

static void
coord_insert(coord *c, saga_rt *s)
{
	size_t h;

	if (c->nsagas + 1 > c->byid_cap) {
		coord_grow(c);
	}
	h          = coord_id_hash(&s->inst.id) & (c->byid_cap - 1);
	s->hnext   = c->byid[h];
	c->byid[h] = s;
	if (s->key != NULL) {
		h           = coord_str_hash(s->key) & (c->bykey_cap - 1);
		s->knext    = c->bykey[h];
		c->bykey[h] = s;
	}
	c->nsagas++;
}

static void
coord_unlink(coord *c, saga_rt *s)
{
	saga_rt **pp = &c->byid[coord_id_hash(&s->inst.id) & (c->byid_cap - 1)];

	while (*pp != s) {
		pp = &(*pp)->hnext;
	}
	*pp = s->hnext;
	if (s->key != NULL) {
		pp = &c->bykey[coord_str_hash(s->key) & (c->bykey_cap - 1)];
		while (*pp != s) {
			pp = &(*pp)->knext;
		}
		*pp = s->knext;
	}
	c->nsagas--;
}

static void
coord_saga_free(saga_rt *s)
{
	if (s == NULL) {
		return;
	}
	if (s->inst.outputs != NULL) {
		for (size_t i = 0; i < s->inst.def->nsteps; i++) {
			free((void *) s->inst.outputs[i].ptr);
		}
	}
	free(s->inst.outputs);
	free((void *) s->inst.input.ptr);
	free(s->trace);
	free(s->business_key);
	free(s->key);
	proto_buf_fini(&s->context);
	free(s);
}

/* A new saga in memory, numbered: a saga dropped (fenced) and taken back
 * later is a new copy, and the outcomes of commands the old copy sent
 * must not reach it (coord_command_done). */
static saga_rt *
coord_saga_alloc(coord *c, const saga_def *def)
{
	saga_rt *s = calloc(1, sizeof(*s));

	if (s == NULL ||
	    (s->inst.outputs = calloc(def->nsteps ? def->nsteps : 1,
	         sizeof(proto_raw))) == NULL) {
		free(s);
		return (NULL);
	}
	s->copy     = ++c->copies;
	s->inst.def = def;
	timer_ent_init(&s->timer, TK_SAGA);
	proto_buf_init(&s->context);
	return (s);
}

/* Rebuilds the context bytes of s into out. */
static int
coord_context_build(coord *c, const saga_rt *s, proto_buf *out)
{
	const saga_def *def = s->inst.def;
	int             rv;

	proto_obj_reset(c->ctx_root);
	proto_obj_reset(c->ctx_steps);
	for (size_t i = 0; i < def->nsteps; i++) {
		if (s->inst.outputs[i].len > 0 &&
		    (rv = proto_obj_put_raw(c->ctx_steps, def->steps[i].name,
		         s->inst.outputs[i])) != 0) {
			return (rv);
		}
	}
	if ((rv = proto_obj_put_raw(c->ctx_root, "input", s->inst.input)) !=
	        0 ||
	    (rv = proto_obj_put_obj(c->ctx_root, "steps", c->ctx_steps)) != 0) {
		return (rv);
	}
	proto_buf_reset(out);
	return (proto_obj_encode(c->ctx_root, out));
}

static const saga_def *
coord_current(coord *c, const char *name, size_t len)
{
	for (size_t i = 0; i < c->ncurrent; i++) {
		if (strlen(c->current[i]->name) == len &&
		    memcmp(c->current[i]->name, name, len) == 0) {
			return (c->current[i]);
		}
	}
	return (NULL);
}

static const saga_def *
coord_def_version(coord *c, const char *name, int version)
{
	for (size_t i = 0; i < c->ndefs; i++) {
		if (c->defs[i]->version == version &&
		    strcmp(c->defs[i]->name, name) == 0) {
			return (c->defs[i]);
		}
	}
	return (NULL);
}

/* nng's REQ resend time that def needs: above its longest attempt
 * timeout, so that nng never resends within an attempt. */
static int64_t
coord_def_resend_ms(const saga_def *def)
{
	int64_t max = 0;

	for (size_t j = 0; j < def->nsteps; j++) {
		if (def->steps[j].timeout_ms > max) {
			max = def->steps[j].timeout_ms;
		}
	}
	return (max * 2 + 1000);
}

/* Adds d to the registry (taking ownership) unless that version is known;
 * returns the registry's definition. */
static const saga_def *
coord_def_add(coord *c, saga_def *d)
{
	const saga_def *have = coord_def_version(c, d->name, d->version);
	saga_def      **nd;

	if (have != NULL) {
		saga_def_free(d);
		return (have);
	}
	if ((nd = realloc(c->defs, (c->ndefs + 1) * sizeof(*nd))) == NULL) {
		coord_fatal("registering a definition", SAGA_ENOMEM);
	}
	c->defs             = nd;
	c->defs[c->ndefs++] = d;
	/* A version loaded from the log (recovery, a takeover, a request)
	 * may have a longer timeout than any configured: nng's resend
	 * time must stay above it. */
	if (c->disp != NULL && coord_def_resend_ms(d) > c->resend_ms) {
		c->resend_ms = coord_def_resend_ms(d);
		dispatch_set_resend(c->disp, c->resend_ms);
	}
	return (d);
}

/* Warns of each participant endpoint that other hosts can reach without
 * TLS (as of a listener: coord_main's INSECURE line): its commands, with
 * the sagas' data, cross the network in the clear, and whoever answers
 * there is taken for the participant (a tls: block does not secure a
 * tcp:// endpoint). */
static void
coord_warn_plain(const coord_defs *cfg)
{
	for (size_t i = 0; i < cfg->nparticipants; i++) {
		const saga_participant_def *p = cfg->participants[i];

		for (size_t j = 0; j < p->nendpoints; j++) {
			const char *u = p->endpoints[j];
			char        why[256];
			bool        local = false;

			if (saga_tls_url(u) ||
			    saga_listen_url_check(u, &local, why,
			        sizeof(why)) != 0 ||
			    local) {
				continue;
			}
			log_warn("INSECURE participant %s at %s without TLS: "
			         "its commands cross the network in the "
			         "clear, and whoever answers there is taken "
			         "for it; use tls+tcp://",
			    p->name, u);
		}
	}
}

/* Makes the definitions of cfg (already registered: versions set) the
 * current ones; cfg keeps its participants, the registry takes the
 * definitions. */
static void
coord_defs_install(coord *c, coord_defs *cfg)
{
	saga_def **cur = calloc(cfg->nsagas ? cfg->nsagas : 1, sizeof(*cur));

	if (cur == NULL) {
		coord_fatal("installing definitions", SAGA_ENOMEM);
	}
	for (size_t i = 0; i < cfg->nsagas; i++) {
		/* file points into cfg, which a reload frees. */
		cfg->sagas[i]->file = NULL;
		cur[i] = (saga_def *) coord_def_add(c, cfg->sagas[i]);
		cfg->sagas[i] = NULL;
	}
	free(c->current);
	c->current  = cur;
	c->ncurrent = cfg->nsagas;
	cfg->nsagas = 0;
	if (c->cfg != cfg) { /* start-up installs c->cfg itself */
		coord_defs_free(c->cfg);
	}
	c->cfg = cfg;
	coord_warn_plain(cfg);
}

/* nng's REQ resend time for the participants' sockets: what cfg and
 * every definition version loaded (sagas still running on an older one
 * included) need. */
static int64_t
coord_resend_ms(const coord *c, const coord_defs *cfg)
{
	int64_t max = 1000, t;

	for (size_t i = 0; i < cfg->nsagas; i++) {
		if ((t = coord_def_resend_ms(cfg->sagas[i])) > max) {
			max = t;
		}
	}
	for (size_t i = 0; i < c->ndefs; i++) {
		if ((t = coord_def_resend_ms(c->defs[i])) > max) {
			max = t;
		}
	}
	return (max);
}

/* Answers. */
static void
coord_answer_saga(coord *c, rpc_req *r, const saga_rt *s, bool created)
{
	proto_msg m;

	(void) c;
	proto_msg_init(&m);
	m.type        = PROTO_T_SAGA;
	m.id          = s->inst.id;
	m.saga        = proto_str_c(s->inst.def->name);
	m.state       = proto_str_c(saga_state_name(s->cstate));
	m.step        = (uint32_t) (s->cstep < 0 ? 0 : s->cstep);
	m.step_name   = proto_str_c(s->cstep >= 0 &&
                (size_t) s->cstep < s->inst.def->nsteps
	          ? s->inst.def->steps[s->cstep].name
	          : NULL);
	m.error       = proto_str_c(s->cerror[0] ? s->cerror : NULL);
	m.created     = created;
	m.def_version = (uint32_t) s->inst.def->version;
	m.deadline_ms = s->inst.deadline_ms;
	if (s->trace != NULL) {
		m.traceparent = proto_str_c(s->trace);
	}
	rpc_req_reply(r, &m);
}

/* Whether one more request may be held until a saga ends: at most half
 * of the client API's contexts, so that a client sending WAITs (or
 * STARTs with timeout_ms) for long sagas, or leaving without reading
 * their answers, cannot hold every context and shut the API to the
 * others. */
static bool
coord_park_ok(const coord *c)
{
	/* --api-contexts is at least 2: one may wait. */
	return (c->nparked < c->o.api_contexts / 2);
}

/* A WAIT refused for want of room (coord_park_ok). */
static void
coord_park_refuse(coord *c, rpc_req *r)
{
	rpc_req_error(r, SAGA_EOVERLOAD,
	    "%zu requests already wait for sagas to end, the most with "
	    "--api-contexts %zu; try again later",
	    c->nparked, c->o.api_contexts);
}

static int coord_waiter_add(coord *c, saga_rt *s, rpc_req *r,
    int64_t timeout_ms, bool dup_start, bool created);

/* How long request m waits (its timeout_ms, at most COORD_WAIT_MAX_MS;
 * dflt without one). */
static int64_t
coord_wait_ms(const proto_msg *m, int64_t dflt)
{
	if (m->timeout_ms == 0) {
		return (dflt);
	}
	return (m->timeout_ms > (uint64_t) COORD_WAIT_MAX_MS
	        ? COORD_WAIT_MAX_MS
	        : (int64_t) m->timeout_ms);
}

/* Answers START request r about saga s (created: by this START), or,
 * when the START asks for it (timeout_ms) and s is not final yet, waits
 * for the end first. */
static void
coord_answer_start(coord *c, rpc_req *r, saga_rt *s, bool created)
{
	const proto_msg *m = rpc_req_msg(r);

	if (m->type != PROTO_T_START || m->timeout_ms == 0 ||
	    saga_state_terminal(s->cstate) || !coord_park_ok(c)) {
		/* Without room to wait (coord_park_ok), the state as it is:
		 * the client WAITs if it wants the end. */
		coord_answer_saga(c, r, s, created);
	} else if (coord_waiter_add(c, s, r, coord_wait_ms(m, 0), false,
	               created) != 0) {
		rpc_req_error(r, SAGA_ENOMEM, "out of memory");
	}
}

static void
coord_answer_row(rpc_req *r, const saga_row *row, const saga_def *def)
{
	proto_msg m;

	proto_msg_init(&m);
	m.type        = PROTO_T_SAGA;
	m.id          = row->id;
	m.saga        = proto_str_c(row->saga_name);
	m.state       = proto_str_c(saga_state_name(row->state));
	m.step        = (uint32_t) (row->current_step < 0 ? 0
	                                                  : row->current_step);
	if (def != NULL && row->current_step >= 0 &&
	    (size_t) row->current_step < def->nsteps) {
		m.step_name = proto_str_c(def->steps[row->current_step].name);
	}
	m.error       = proto_str_c(row->last_error);
	m.def_version = (uint32_t) row->saga_version;
	m.deadline_ms = row->deadline_ms;
	if (row->traceparent != NULL &&
	    proto_traceparent_valid(proto_str_c(row->traceparent))) {
		m.traceparent = proto_str_c(row->traceparent);
	}
	rpc_req_reply(r, &m);
}

/* Waiters. */

static void
coord_waiter_free(coord *c, waiter *w)
{
	if (w->until_final) {
		c->nparked--;
	}
	free(w);
}

static void
coord_waiter_remove(coord *c, waiter *w)
{
	waiter **pp = &w->saga->waiters;

	while (*pp != w) {
		pp = &(*pp)->next;
	}
	*pp = w->next;
	timer_cancel(&c->mtimers, &w->timer);
	coord_waiter_free(c, w);
}

static void
coord_waiters_answer(coord *c, saga_rt *s, bool all, int err)
{
	waiter **pp = &s->waiters;

	while (*pp != NULL) {
		waiter *w = *pp;

		if (!all && ((w->until_final &&
		                 !saga_state_terminal(s->cstate)) ||
		                (w->dup_start && !s->created) ||
		                (w->refusal != 0 && s->pending > 0))) {
			pp = &w->next;
			continue;
		}
		if (!all && w->dup_start &&
		    rpc_req_msg(w->req)->timeout_ms > 0 &&
		    !saga_state_terminal(s->cstate) && coord_park_ok(c) &&
		    timer_arm(&c->mtimers, &w->timer,
		        coord_mono_ms() +
		            coord_wait_ms(rpc_req_msg(w->req), 0)) == 0) {
			/* A duplicate START that asks to wait: the first
			 * one's commit made the saga; now its end. */
			w->dup_start   = false;
			w->until_final = true;
			c->nparked++;
			pp             = &w->next;
			continue;
		}
		*pp = w->next;
		timer_cancel(&c->mtimers, &w->timer);
		if (w->refusal != 0 && err == 0) {
			/* Its transitions committed: the refusal stands.
			 * Not committed (another instance took the saga, or
			 * an outage: err, below): nothing was done, and the
			 * request may go again. */
			if (s->fenced) {
				rpc_req_error(w->req, SAGA_EUNAVAIL,
				    "another sagad instance took saga %s "
				    "over; ask again",
				    s->id_text);
			} else {
				rpc_req_error(w->req, w->refusal, "%s",
				    w->refusal_text);
			}
		} else if (w->refusal == 0 && err != 0 && s->created &&
		    rpc_req_msg(w->req)->type == PROTO_T_START) {
			/* A START whose saga exists: its committed state,
			 * as when its timeout_ms passes. An ERROR would
			 * say that nothing started, and the START has no
			 * id for the ERROR to echo. */
			coord_answer_saga(c, w->req, s, w->created);
		} else if (err == SAGA_EUNAVAIL && w->dup_start) {
			/* It waited for the first START's commit, which the
			 * outage may have cut after it was made: START again
			 * with the key (it has one) to find out. */
			rpc_req_error(w->req, SAGA_EUNKNOWN,
			    "database unavailable while the first START with "
			    "this key was being committed; START again with "
			    "the key");
		} else if (err != 0) {
			rpc_req_error(w->req, err, "%s",
			    err == SAGA_EUNAVAIL
			        ? "database unavailable; try again later"
			        : "sagad is shutting down");
		} else {
			coord_answer_saga(c, w->req, s, w->created);
		}
		coord_waiter_free(c, w);
	}
}

static int
coord_waiter_add(coord *c, saga_rt *s, rpc_req *r, int64_t timeout_ms,
    bool dup_start, bool created)
{
	waiter *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		return (SAGA_ENOMEM);
	}
	if (!dup_start) {
		c->nparked++;
		/* A START whose saga exists waits for its end with its
		 * input's bytes (a duplicate START is compared with them),
		 * not the tree of it (some 24 bytes a value: a 64 KiB input
		 * of nils held 1.5 MB for as long as it waited). Not one
		 * that waits for another START's commit: if that START loses
		 * its key, this one is run again (coord_restart), business
		 * key and all. */
		rpc_req_drop_vals(r);
	}
	timer_ent_init(&w->timer, TK_WAIT);
	w->req         = r;
	w->saga        = s;
	w->dup_start   = dup_start;
	w->until_final = !dup_start;
	w->created     = created;
	w->next      = s->waiters;
	s->waiters   = w;
	if (timeout_ms > 0 &&
	    timer_arm(&c->mtimers, &w->timer, coord_mono_ms() + timeout_ms) !=
	        0) {
		coord_waiter_remove(c, w);
		return (SAGA_ENOMEM);
	}
	return (0);
}

static void coord_rwait(
    coord *c, rpc_req *r, const saga_id *id, int64_t until_ms);

/* The requests waiting for the end of saga s, which another instance took
 * over (s is fenced): what this copy says is not the saga's state any
 * more. Each keeps its deadline and reads the log until the end, as a
 * WAIT for a saga owned elsewhere does (answered from the copy, a WAIT
 * got RUNNING long before its timeout_ms, for a saga already over). */
static void
coord_waiters_to_log(coord *c, saga_rt *s)
{
	waiter **pp = &s->waiters;

	while (*pp != NULL) {
		waiter  *w = *pp;
		rpc_req *r = w->req;
		int64_t  until;

		if (!w->until_final) {
			pp = &w->next;
			continue;
		}
		until = w->timer.idx != SIZE_MAX ? w->timer.at_ms
		                                  : coord_mono_ms();
		*pp   = w->next;
		timer_cancel(&c->mtimers, &w->timer);
		coord_waiter_free(c, w);
		coord_rwait(c, r, &s->inst.id, until);
	}
}

/* Drops s from memory once it is terminal and nothing refers to it. */
static void
coord_maybe_drop(coord *c, saga_rt *s)
{
	if (s->pending > 0 ||
	    (!s->fenced &&
	        (!saga_state_terminal(s->inst.state) || !s->created))) {
		return;
	}
	if (s->fenced) {
		coord_waiters_to_log(c, s);
	}
	coord_waiters_answer(c, s, true, 0);
	timer_cancel(&c->timers, &s->timer);
	coord_unlink(c, s);
	coord_saga_free(s);
}

static void
coord_rearm(coord *c, saga_rt *s)
{
	int64_t at = saga_engine_wake_at(&s->inst);

	if (at == 0) {
		timer_cancel(&c->timers, &s->timer);
	} else if (timer_arm(&c->timers, &s->timer, at) != 0) {
		coord_fatal("arming a timer", SAGA_ENOMEM);
	}
}

/* Makes room for one more element in the array *v of n elements of size
 * bytes (*cap allocated; the first allocation holds first): doubles it
 * when full. False when out of memory, *v unchanged. */
static bool
coord_room(void **v, size_t n, size_t *cap, size_t size, size_t first)
{
	size_t nc;
	void  *nv;

	if (n < *cap) {
		return (true);
	}
	nc = *cap ? *cap * 2 : first;
	if ((nv = realloc(*v, nc * size)) == NULL) {
		return (false);
	}
	*v   = nv;
	*cap = nc;
	return (true);
}

static coord_entry *
coord_entry_new(entry_list *l)
{
	if (!coord_room((void **) &l->v, l->n, &l->cap, sizeof(*l->v), 256)) {
		coord_fatal("staging a transition", SAGA_ENOMEM);
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return (&l->v[l->n++]);
}

/* Logs the operational events of a committed transition. */
static void
coord_log_notes(const saga_rt *s, const saga_log *notes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const saga_log *l = &notes[i];
		const char     *tag;

		switch (l->type) {
		case SAGA_LOG_STARTED:
			tag = "SAGA-START";
			break;
		case SAGA_LOG_COMPENSATING:
			tag = "SAGA-COMPENSATE";
			break;
		case SAGA_LOG_COMPLETED:
			tag = "SAGA-COMPLETE";
			break;
		case SAGA_LOG_COMPENSATED:
			tag = "SAGA-COMPENSATED";
			break;
		case SAGA_LOG_PARKED:
			tag = "SAGA-FAILED";
			break;
		case SAGA_LOG_FAILED:
			tag = "STEP-FAILED";
			break;
		case SAGA_LOG_GAVE_UP:
			tag = "STEP-GAVE-UP";
			break;
		case SAGA_LOG_RESOLVED:
			tag = "SAGA-RESOLVED";
			break;
		case SAGA_LOG_SKIPPED:
			tag = "STEP-SKIPPED";
			break;
		case SAGA_LOG_CANCEL:
			tag = "SAGA-CANCEL";
			break;
		case SAGA_LOG_OP_RETRY:
			tag = "SAGA-RETRY";
			break;
		case SAGA_LOG_CANCEL_REFUSED:
			tag = "CANCEL-REFUSED";
			break;
		case SAGA_LOG_RETRY:
			slog(LOG_DEBUG, s->id_text, l->step, s->trace,
			    "STEP-RETRY %s attempt %u: %s",
			    l->kind == SAGA_KIND_COMP ? "compensation"
			                              : "action",
			    l->attempt, l->error);
			continue;
		default:
			continue;
		}
		if (l->type == SAGA_LOG_PARKED || l->type == SAGA_LOG_GAVE_UP ||
		    l->type == SAGA_LOG_FAILED ||
		    l->type == SAGA_LOG_CANCEL_REFUSED) {
			slog(LOG_WARN, s->id_text, l->step, s->trace, "%s %s %s",
			    tag, s->inst.def->name, l->error);
		} else {
			slog(LOG_INFO, s->id_text, l->step, s->trace, "%s %s%s%s",
			    tag, s->inst.def->name, l->error[0] ? " " : "",
			    l->error);
		}
	}
}

/* The metric families of sagad (docs/operations.md). */
static void
coord_metrics_init(coord *c)
{
	static const double batch_buckets[] = { 1, 2, 4, 8, 16, 32, 64, 128,
		256, 512, 1024, 2048, 4096 };
	static const double wait_buckets[] = { 0.00001, 0.000025,
		0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
		0.025, 0.05, 0.1, 0.25, 0.5, 1 };
	static const struct {
		const char   *name;
		metric_type   type;
		const char   *help;
		const double *buckets;
		size_t        nbuckets;
	} fams[] = {
		{ "saga_started_total", METRIC_COUNTER, "Sagas started.", NULL,
		    0 },
		{ "saga_finished_total", METRIC_COUNTER,
		    "Sagas that reached a final state (FAILED: parked).", NULL,
		    0 },
		{ "saga_step_attempts_total", METRIC_COUNTER,
		    "Attempts of steps and compensations, by outcome.", NULL,
		    0 },
		{ "saga_step_retries_total", METRIC_COUNTER,
		    "Attempts that will be tried again after a backoff.", NULL,
		    0 },
		{ "saga_compensations_total", METRIC_COUNTER,
		    "Sagas that started compensating.", NULL, 0 },
		{ "saga_step_duration_seconds", METRIC_HISTOGRAM,
		    "Time from handing a command to nng to its outcome.", NULL,
		    0 },
		{ "saga_duration_seconds", METRIC_HISTOGRAM,
		    "Time from start to a final state.", NULL, 0 },
		{ "saga_active", METRIC_GAUGE,
		    "Sagas in memory (unfinished, or finishing).", NULL, 0 },
		{ "saga_api_waiting", METRIC_GAUGE,
		    "Client requests held until a saga ends (WAIT, START "
		    "with timeout_ms); at most half of --api-contexts.",
		    NULL, 0 },
		{ "saga_oldest_unfinished_seconds", METRIC_GAUGE,
		    "Age of the oldest unfinished saga (0 when none).", NULL,
		    0 },
		{ "saga_failed", METRIC_GAUGE,
		    "Sagas parked FAILED in the log, waiting for an operator.",
		    NULL, 0 },
		{ "saga_commands_in_flight", METRIC_GAUGE,
		    "Commands handed to nng and not answered, by participant.",
		    NULL, 0 },
		{ "saga_commands_waiting", METRIC_GAUGE,
		    "Commands waiting for a free slot (bulkhead), by "
		    "participant.",
		    NULL, 0 },
		{ "saga_command_batch_size", METRIC_HISTOGRAM,
		    "Commands per message sent to a participant (1: alone, "
		    "more: a BATCH), by participant.",
		    batch_buckets,
		    sizeof(batch_buckets) / sizeof(batch_buckets[0]) },
		{ "saga_db_batch_rows", METRIC_HISTOGRAM,
		    "Rows (sagas and events) per committed batch.",
		    batch_buckets,
		    sizeof(batch_buckets) / sizeof(batch_buckets[0]) },
		{ "saga_db_commit_seconds", METRIC_HISTOGRAM,
		    "Time from sending a batch to reading its COMMIT.", NULL,
		    0 },
		{ "saga_engine_wait_seconds", METRIC_HISTOGRAM,
		    "Time an event (a participant's answer, a client request, "
		    "a log read) waited for the engine thread.",
		    wait_buckets,
		    sizeof(wait_buckets) / sizeof(wait_buckets[0]) },
		{ "saga_db_reconnects_total", METRIC_COUNTER,
		    "Times sagad got the database back after an outage.", NULL,
		    0 },
		{ "saga_api_connections", METRIC_GAUGE,
		    "Client connections open to the API.", NULL, 0 },
		{ "saga_api_connections_refused_total", METRIC_COUNTER,
		    "Client connections made beyond --api-max-connections "
		    "(kept and answered EOVERLOAD, or closed).",
		    NULL, 0 },
	};

	if (metrics_alloc(&c->m) != 0) {
		coord_fatal("metrics", SAGA_ENOMEM);
	}
	for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		if (metrics_family(c->m, fams[i].name, fams[i].type,
		        fams[i].help, fams[i].buckets, fams[i].nbuckets) != 0) {
			coord_fatal("metrics", SAGA_ENOMEM);
		}
	}
	metrics_add(c->m, "saga_db_reconnects_total", NULL, 0);
	metrics_add(c->m, "saga_api_connections_refused_total", NULL, 0);
}

/* Counts what one committed transition decided; state is the saga's
 * state after it. */
static void
coord_metrics_notes(coord *c, const saga_rt *s, saga_state state,
    const saga_log *notes, size_t n, int64_t now)
{
	const saga_def *def = s->inst.def;
	char            lab[512];

	for (size_t i = 0; i < n; i++) {
		const saga_log *l = &notes[i];
		const char     *step =
                    l->step >= 0 && (size_t) l->step < def->nsteps
		        ? def->steps[l->step].name
		        : "";
		const char *kind = l->kind == SAGA_KIND_COMP ? "compensation"
		                                             : "action";

		switch (l->type) {
		case SAGA_LOG_STARTED:
			metrics_add(c->m, "saga_started_total",
			    metrics_labels(lab, sizeof(lab), "saga", def->name,
			        NULL),
			    1);
			break;
		case SAGA_LOG_OK:
		case SAGA_LOG_FAILED:
		case SAGA_LOG_RETRY:
		case SAGA_LOG_GAVE_UP:
			metrics_add(c->m, "saga_step_attempts_total",
			    metrics_labels(lab, sizeof(lab), "saga", def->name,
			        "step", step, "kind", kind, "outcome",
			        saga_outcome_name(l->outcome), NULL),
			    1);
			if (l->duration_us >= 0) {
				metrics_observe(c->m,
				    "saga_step_duration_seconds",
				    metrics_labels(lab, sizeof(lab), "saga",
				        def->name, "step", step, "kind", kind,
				        NULL),
				    (double) l->duration_us / 1e6);
			}
			if (l->type == SAGA_LOG_RETRY) {
				metrics_add(c->m, "saga_step_retries_total",
				    metrics_labels(lab, sizeof(lab), "saga",
				        def->name, "step", step, "kind", kind,
				        NULL),
				    1);
			}
			break;
		case SAGA_LOG_COMPENSATING:
			metrics_add(c->m, "saga_compensations_total",
			    metrics_labels(lab, sizeof(lab), "saga", def->name,
			        NULL),
			    1);
			break;
		case SAGA_LOG_COMPLETED:
		case SAGA_LOG_COMPENSATED:
		case SAGA_LOG_PARKED:
		case SAGA_LOG_RESOLVED: {
			const char *st = saga_state_name(state);

			metrics_add(c->m, "saga_finished_total",
			    metrics_labels(lab, sizeof(lab), "saga", def->name,
			        "state", st, NULL),
			    1);
			/* Wall clock times, the start's maybe of another
			 * instance's clock: never below 0 (a step back made
			 * the sum go down). */
			metrics_observe(c->m, "saga_duration_seconds",
			    metrics_labels(lab, sizeof(lab), "saga", def->name,
			        "state", st, NULL),
			    now > s->inst.created_ms
			        ? (double) (now - s->inst.created_ms) / 1e3
			        : 0.0);
			break;
		}
		default:
			break;
		}
	}
}

/* Keeps the events of fx that coord_log_notes or coord_metrics_notes
 * use, in l, for the entry e; not their outputs, which neither reads. */
static void
coord_notes_add(note_list *l, coord_entry *e, const saga_fx *fx)
{
	e->note0  = l->n;
	e->nnotes = 0;
	for (size_t i = 0; i < fx->nlogs; i++) {
		saga_log_type t = fx->logs[i].type;

		if (t == SAGA_LOG_SENT || t == SAGA_LOG_DEADLINE ||
		    t == SAGA_LOG_LOAD_FAILED) {
			continue;
		}
		if (!coord_room((void **) &l->v, l->n, &l->cap,
		        sizeof(*l->v), 256)) {
			coord_fatal("staging a transition", SAGA_ENOMEM);
		}
		l->v[l->n]        = fx->logs[i];
		l->v[l->n].output = (proto_raw) { NULL, 0 };
		l->n++;
		e->nnotes++;
	}
}

/* The writer of s's next transition: the one that holds its pending
 * entries, so that its transitions commit in order; with none pending,
 * the target, one writer as long as its batches commit (so that they
 * stay as large as one writer makes them: a second writer taking every
 * transition that arrives while the first commits halves the batches
 * and costs PostgreSQL more per saga, docs/PERFORMANCE.md entry 5). A
 * target whose batch has been in flight for COORD_WRITER_STALL_US (a
 * lock wait, a stalled disk) hands over to a writer without a batch in
 * flight: the sagas in the stalled batch wait, the others go on. */
static coord_writer *
coord_writer_of(coord *c, saga_rt *s)
{
	coord_writer *t = &c->wr[c->target];

	if (s->pending > 0) {
		return (&c->wr[s->wr]);
	}
	if (c->nwr > 1 && saga_store_in_flight(t->st) &&
	    coord_now_us() - t->flush_us > COORD_WRITER_STALL_US) {
		for (int i = 0; i < c->nwr; i++) {
			if (!saga_store_in_flight(c->wr[i].st)) {
				log_info("WRITER %d has had a batch in flight "
				         "for %lld ms: new transitions go to "
				         "writer %d",
				    c->target,
				    (long long) (coord_now_us() - t->flush_us) /
				        1000,
				    i);
				c->target = i;
				break;
			}
		}
	}
	s->wr = c->target;
	return (&c->wr[s->wr]);
}

/* Refuses request r about s with code and text: at once if s has no
 * transition waiting for its commit, else once they committed (a
 * refusal judged on a transition that then failed would describe what
 * never happened: a second RETRY told "saga is COMPENSATING" while the
 * first one's batch failed and the saga is still FAILED). */
static void
coord_refuse(saga_rt *s, rpc_req *r, int code, const char *text)
{
	waiter *w;

	if (s->pending == 0 || (w = calloc(1, sizeof(*w))) == NULL) {
		rpc_req_error(r, code, "%s", text);
		return;
	}
	timer_ent_init(&w->timer, TK_WAIT);
	w->req     = r;
	w->saga    = s;
	w->refusal = code;
	snprintf(w->refusal_text, sizeof(w->refusal_text), "%s", text);
	w->next    = s->waiters;
	s->waiters = w;
	slog(LOG_DEBUG, s->id_text, s->inst.step, s->trace,
	    "REFUSAL-DEFERRED %s until the saga's pending transitions "
	    "commit",
	    saga_errname(code));
}

/* Stages the transition fx of s (persist, then effects after commit) and
 * re-arms its timer. answer, if not NULL, is the request to answer after
 * the commit (or now, when nothing changed). */
static void
coord_apply(coord *c, saga_rt *s, const saga_fx *fx, rpc_req *answer,
    bool created)
{
	coord_writer *w;
	coord_entry  *e;
	int64_t       now = coord_now_ms();
	int           rv  = 0;
	bool          clears;

	if (fx->answer != 0 && answer != NULL) {
		coord_refuse(s, answer, fx->answer, fx->answer_text);
		answer = NULL;
	}
	if (!fx->changed && !s->clear_cancel) {
		if (answer != NULL) {
			coord_answer_saga(c, answer, s, false);
		}
		coord_rearm(c, s);
		return;
	}
	/* A new saga's first transition goes to the writer that staged its
	 * INSERT (coord_start_new): chosen again, the target could have
	 * moved meanwhile, and the other writer's batch would drop the
	 * events of a saga it does not insert and release the first
	 * command before the INSERT is known to have committed. */
	w = created ? &c->wr[s->wr] : coord_writer_of(c, s);
	clears = !created && s->clear_cancel;
	if (!created) {
		rv = saga_store_stage_update(w->st, &s->inst,
		    fx->context_changed ? proto_buf_raw(&s->context)
		                        : (proto_raw) { NULL, 0 },
		    now, s->epoch, s->clear_cancel);
		s->clear_cancel = false;
	}
	for (size_t i = 0; i < fx->nlogs && rv == 0; i++) {
		rv = saga_store_stage_log(w->st, &s->inst.id, &fx->logs[i]);
	}
	if (rv != 0) {
		coord_fatal("staging a transition", rv);
	}
	e           = coord_entry_new(&w->staged);
	e->saga     = s;
	e->created  = created;
	e->send     = fx->send;
	e->finished = fx->finished;
	e->clears   = clears;
	s->clearing += clears;
	e->step     = s->inst.step;
	e->kind     = saga_engine_kind(&s->inst);
	e->attempt  = s->inst.attempt;
	e->state    = s->inst.state;
	e->answer   = answer;
	snprintf(e->error, sizeof(e->error), "%s", s->inst.last_error);
	coord_notes_add(&w->snotes, e, fx);
	s->pending++;
	coord_rearm(c, s);
}

/* Sends command (step, kind, attempt) of s now. */
static void coord_feed(coord *c, saga_rt *s, const saga_ev *ev, rpc_req *r);
static void coord_command_done(void *arg, disp_done *dp);

static void
coord_send(coord *c, saga_rt *s, int32_t step, uint32_t kind,
    uint32_t attempt)
{
	const saga_def      *def = s->inst.def;
	const saga_step_def *sd  = &def->steps[step];
	proto_msg            m;
	disp_tag             tag;
	int                  rv;

	proto_msg_init(&m);
	m.type        = PROTO_T_COMMAND;
	m.id          = s->inst.id;
	m.step        = (uint32_t) step;
	m.attempt     = attempt;
	m.kind        = kind;
	m.traceparent = proto_str_c(s->trace);
	m.deadline_ms = s->inst.deadline_ms;
	m.saga        = proto_str_c(def->name);
	m.step_name   = proto_str_c(sd->name);
	m.action      = proto_str_c(
            kind == SAGA_KIND_COMP ? sd->compensation : sd->action);
	m.context = proto_buf_raw(&s->context);
	proto_buf_reset(&c->sendbuf);
	if ((rv = proto_msg_encode(&m, &c->sendbuf)) != 0) {
		coord_fatal("encoding a command", rv);
	}
	tag.id      = s->inst.id;
	tag.step    = step;
	tag.kind    = kind;
	tag.attempt = attempt;
	tag.gen     = c->gen;
	tag.copy    = s->copy;
	rv = dispatch_send(c->disp, sd->participant, &tag,
	    proto_buf_raw(&c->sendbuf), sd->timeout_ms);
	if (rv == SAGA_ENOTFOUND) {
		saga_ev ev;
		char    text[200];

		/* The pinned definition names a participant that the
		 * current configuration no longer has: a transient error,
		 * retried with backoff until the configuration is fixed. */
		snprintf(text, sizeof(text),
		    "participant %s is not in the configuration",
		    sd->participant);
		memset(&ev, 0, sizeof(ev));
		ev.type    = SAGA_EV_ERROR;
		ev.now_ms  = coord_now_ms();
		ev.rnd     = coord_rand(c);
		ev.step    = step;
		ev.kind    = kind;
		ev.attempt = attempt;
		ev.text    = text;
		slog(LOG_ERROR, s->id_text, step, s->trace, "SEND-FAILED %s",
		    text);
		coord_feed(c, s, &ev, NULL);
	} else if (rv != 0) {
		coord_fatal("sending a command", rv);
	}
}

static void
coord_feed(coord *c, saga_rt *s, const saga_ev *ev, rpc_req *r)
{
	saga_fx fx;

	if (s->fenced) {
		if (r != NULL) {
			rpc_req_error(r, SAGA_EUNAVAIL,
			    "another sagad instance took saga %s over; ask "
			    "again",
			    s->id_text);
		}
		return;
	}
	memset(&fx, 0, sizeof(fx));
	saga_engine_event(&s->inst, ev, &fx);
	coord_apply(c, s, &fx, r, false);
}

static void coord_api_start(coord *c, rpc_req *r);

/* A START whose saga lost its key to another START (saga_store_lost):
 * asked again, it finds the key's saga in the log, and is answered as a
 * repeated START. */
static void
coord_restart(coord *c, rpc_req *r)
{
	if (rpc_req_msg(r)->type == PROTO_T_START) {
		coord_api_start(c, r);
	} else {
		rpc_req_error(r, SAGA_EUNAVAIL, "the saga is gone; ask again");
	}
}

/* Releases the effects of the batch that just committed, in order. */
static void
coord_release(coord *c, coord_writer *w)
{
	entry_list     l     = w->flight;
	note_list      notes = w->fnotes;
	int64_t        now   = coord_now_ms();
	const saga_id *fenced, *lost;
	size_t         nfenced = saga_store_fenced(w->st, &fenced);
	size_t         nlost   = saga_store_lost(w->st, &lost);

	/* New sagas whose key another START committed first (through
	 * another instance): the batch took them out of the log again;
	 * their STARTs, and those waiting on them, are asked again. */
	for (size_t i = 0; i < nlost; i++) {
		saga_rt *s = coord_find(c, &lost[i]);

		if (s != NULL && !s->fenced) {
			s->fenced   = true;
			s->key_lost = true;
			slog(LOG_WARN, s->id_text, s->inst.step, s->trace,
			    "START-KEY-TAKEN another START with key %s "
			    "committed first; answering from its saga",
			    s->key != NULL ? s->key : "");
			while (s->waiters != NULL) {
				waiter *wt = s->waiters;

				s->waiters = wt->next;
				timer_cancel(&c->mtimers, &wt->timer);
				coord_restart(c, wt->req);
				coord_waiter_free(c, wt);
			}
		}
	}

	/* Sagas another instance took over while this batch was on its way:
	 * their transitions did not happen; nothing of them leaves. */
	for (size_t i = 0; i < nfenced; i++) {
		saga_rt *s = coord_find(c, &fenced[i]);

		if (s != NULL && !s->fenced) {
			s->fenced = true;
			slog(LOG_WARN, s->id_text, s->inst.step, s->trace,
			    "FENCED another instance owns this saga now (its "
			    "lease expired); dropping it");
		}
	}
	w->flight = (entry_list) { NULL, 0, 0 };
	w->fnotes = (note_list) { NULL, 0, 0 };
	for (size_t i = 0; i < l.n; i++) {
		coord_entry *e = &l.v[i];
		saga_rt     *s = e->saga;

		s->pending--;
		e->last = s->pending == 0;
		if (e->clears) {
			s->clearing--;
			s->cleared_job = c->lease_jobs;
		}
		if (s->fenced) {
			if (e->answer != NULL && s->key_lost) {
				coord_restart(c, e->answer);
			} else if (e->answer != NULL) {
				rpc_req_error(e->answer, SAGA_EUNAVAIL,
				    "another sagad instance took saga %s "
				    "over; ask again",
				    s->id_text);
			}
			continue;
		}
		if (e->created) {
			s->created = true;
		}
		if (e->send) {
			coord_send(c, s, e->step, e->kind, e->attempt);
		}
	}
	/* The commands leave first: the log lines and counts are a write()
	 * each, and before the commands they made every step wait for
	 * them. The clients are answered after the lines are written, so
	 * that a saga's end is in the log (and counted) when its client
	 * hears of it. */
	(void) dispatch_flush(c->disp);
	for (size_t i = 0; i < l.n; i++) {
		coord_entry *e = &l.v[i];
		saga_rt     *s = e->saga;

		if (s->fenced) {
			continue;
		}
		s->cstate = e->state;
		s->cstep  = e->step;
		snprintf(s->cerror, sizeof(s->cerror), "%s", e->error);
		coord_log_notes(s, &notes.v[e->note0], e->nnotes);
		coord_metrics_notes(
		    c, s, e->state, &notes.v[e->note0], e->nnotes, now);
		if (e->created && e->answer != NULL) {
			coord_answer_start(c, e->answer, s, true);
			e->answer = NULL;
		}
		if (e->answer != NULL) {
			coord_answer_saga(c, e->answer, s, false);
		}
		coord_waiters_answer(c, s, false, 0);
	}
	/* Each saga once, at its last entry: dropping frees it. */
	for (size_t i = 0; i < l.n; i++) {
		if (l.v[i].last) {
			coord_maybe_drop(c, l.v[i].saga);
		}
	}
	if (w->flight.v == NULL) {
		l.n       = 0;
		w->flight = l;
	} else {
		free(l.v);
	}
	if (w->fnotes.v == NULL) {
		notes.n   = 0;
		w->fnotes = notes;
	} else {
		free(notes.v);
	}
}

/* Materialises a saga from its row (recovery, or an operator's request
 * for a saga not in memory). On an error, why (len bytes) says what went
 * wrong. */
static int
coord_saga_from_row(coord *c, saga_row *row, const saga_def *def,
    saga_rt **out, char *why, size_t len)
{
	saga_rt         *s;
	proto_doc       *doc = NULL;
	const proto_val *root, *input, *steps;
	proto_buf        b;
	proto_error      perr;
	int              rv;

	snprintf(why, len, "out of memory");
	if ((s = coord_saga_alloc(c, def)) == NULL) {
		return (SAGA_ENOMEM);
	}
	proto_buf_init(&b);
	s->inst.id             = row->id;
	s->inst.state          = row->state;
	s->inst.step           = row->current_step;
	s->inst.attempt        = row->attempt;
	s->inst.phase_attempt0 = row->phase_attempt0;
	s->inst.max_sent       = row->max_sent;
	s->inst.phase_start_ms = row->phase_started_ms;
	s->inst.deadline_ms    = row->deadline_ms;
	s->inst.created_ms     = row->created_ms;
	s->inst.seq            = row->event_seq;
	s->inst.next_at_ms     = row->next_attempt_ms;
	s->inst.in_flight = !saga_state_terminal(row->state) &&
	    row->next_attempt_ms == 0 && row->attempt > 0;
	snprintf(s->inst.last_error, sizeof(s->inst.last_error), "%s",
	    row->last_error ? row->last_error : "");
	saga_id_format(&s->inst.id, s->id_text);
	s->cstate  = s->inst.state;
	s->cstep   = s->inst.step;
	s->created = true;
	s->epoch   = row->epoch;
	snprintf(s->cerror, sizeof(s->cerror), "%s", s->inst.last_error);
	/* The context holds the input and every output so far. It is read
	 * with the limits this sagad runs with (--max-message-bytes), not
	 * the protocol's defaults: a context that grew past 1 MiB under
	 * raised limits must come back after a restart or a takeover. */
	memset(&perr, 0, sizeof(perr));
	if ((rv = proto_doc_parse(&doc, proto_buf_raw(&row->context),
	         &c->ctx_lim, &perr)) != 0) {
		snprintf(why, len,
		    "its context (%zu bytes) cannot be read within this "
		    "sagad's limits: %s: %s",
		    row->context.len, saga_errname(rv),
		    perr.msg[0] ? perr.msg : saga_strerror(rv));
		goto fail;
	}
	root  = proto_doc_root(doc);
	input = proto_val_get(root, "input");
	steps = proto_val_get(root, "steps");
	if (input == NULL || (rv = proto_val_encode(input, &b)) != 0) {
		rv = rv ? rv : SAGA_EPROTO;
		snprintf(why, len, "its context has no input: %s",
		    saga_strerror(rv));
		goto fail;
	}
	s->inst.input = proto_buf_raw(&b);
	proto_buf_init(&b);
	for (size_t i = 0; i < def->nsteps; i++) {
		const proto_val *o = proto_val_get(steps, def->steps[i].name);

		if (o == NULL) {
			continue;
		}
		if ((rv = proto_val_encode(o, &b)) != 0) {
			snprintf(why, len, "the output of step %s: %s",
			    def->steps[i].name, saga_strerror(rv));
			goto fail;
		}
		s->inst.outputs[i] = proto_buf_raw(&b);
		proto_buf_init(&b);
	}
	proto_doc_free(doc);
	doc             = NULL;
	s->context      = row->context;
	s->trace        = row->traceparent;
	s->business_key = row->business_key;
	row->traceparent = row->business_key = NULL;
	proto_buf_init(&row->context);
	*out = s;
	return (0);
fail:
	proto_doc_free(doc);
	proto_buf_fini(&b);
	coord_saga_free(s);
	return (rv);
}

/* Starts a new saga for request r. */
static void
coord_start_new(coord *c, rpc_req *r, const saga_def *def)
{
	const proto_msg *m   = rpc_req_msg(r);
	int64_t          now = coord_now_ms();
	saga_rt         *s;
	saga_fx          fx;
	saga_store_new   nw;
	uint8_t          rnd[10];
	uint8_t         *in;
	bool             bk_lost = false; /* out of memory copying it */
	int              rv;

	if ((s = coord_saga_alloc(c, def)) == NULL ||
	    (in = malloc(m->input.len)) == NULL) {
		coord_saga_free(s);
		rpc_req_error(r, SAGA_ENOMEM, "out of memory");
		return;
	}
	memcpy(in, m->input.ptr, m->input.len);
	s->inst.input.ptr = in;
	s->inst.input.len = m->input.len;
	coord_random_bytes(rnd, sizeof(rnd));
	saga_id_make_v7(&s->inst.id, now, rnd);
	saga_id_format(&s->inst.id, s->id_text);
	s->inst.created_ms  = now;
	s->inst.deadline_ms = def->deadline_ms ? now + def->deadline_ms : 0;
	s->epoch            = 1;
	if (m->traceparent.len > 0) {
		s->trace = proto_str_dup(m->traceparent);
	} else {
		uint8_t b[24];
		char    tp[PROTO_TRACEPARENT_LEN + 1];
		int     n = 0;

		coord_random_bytes(b, sizeof(b));
		n += snprintf(tp + n, sizeof(tp) - (size_t) n, "00-");
		for (int i = 0; i < 16; i++) {
			n += snprintf(tp + n, sizeof(tp) - (size_t) n, "%02x",
			    b[i]);
		}
		n += snprintf(tp + n, sizeof(tp) - (size_t) n, "-");
		for (int i = 16; i < 24; i++) {
			n += snprintf(tp + n, sizeof(tp) - (size_t) n, "%02x",
			    b[i]);
		}
		snprintf(tp + n, sizeof(tp) - (size_t) n, "-01");
		s->trace = strdup(tp);
	}
	if (m->key.len > 0) {
		s->key = proto_str_dup(m->key);
	}
	if (def->business_key != NULL) {
		const proto_val *v =
		    proto_val_get(m->input_val, def->business_key);
		int64_t          iv;

		if (proto_val_type_of(v) == PROTO_VAL_STR) {
			s->business_key = proto_val_strdup(v);
			bk_lost         = s->business_key == NULL;
		} else if (proto_val_int(v, &iv) == 0) {
			char buf[32];

			snprintf(buf, sizeof(buf), "%lld", (long long) iv);
			s->business_key = strdup(buf);
			bk_lost         = s->business_key == NULL;
		}
	}
	if (s->trace == NULL || (m->key.len > 0 && s->key == NULL) || bk_lost ||
	    (rv = coord_context_build(c, s, &s->context)) != 0) {
		coord_saga_free(s);
		rpc_req_error(r, SAGA_ENOMEM, "out of memory");
		return;
	}
	memset(&fx, 0, sizeof(fx));
	saga_engine_start(&s->inst, now, &fx);
	memset(&nw, 0, sizeof(nw));
	nw.saga_name    = def->name;
	nw.saga_version = def->version;
	nw.context      = proto_buf_raw(&s->context);
	nw.business_key = s->business_key;
	nw.traceparent  = s->trace;
	nw.key          = s->key;
	nw.input        = s->inst.input;
	if ((rv = saga_store_stage_insert(coord_writer_of(c, s)->st, &s->inst,
	         &nw)) != 0) {
		coord_fatal("staging a new saga", rv);
	}
	/* (writers_test holds this line's write to move the writers'
	 * target before coord_apply: the saga's first transition must
	 * still go with its INSERT.) */
	slog(LOG_DEBUG, s->id_text, -1, s->trace, "SAGA-STAGED %s (writer %d)",
	    def->name, s->wr);
	coord_insert(c, s);
	coord_apply(c, s, &fx, r, true);
}

static void
coord_reader_submit(coord *c, reader_job *job)
{
	reader_submit(c->rd, job);
}

/* Refuses START r while sagad stops; tells whether it did. */
static bool
coord_start_stopping(rpc_req *r)
{
	if (!coord_sig_term) {
		return (false);
	}
	rpc_req_error(r, SAGA_ECLOSED,
	    "sagad is shutting down and takes no new sagas");
	return (true);
}

/* Refuses START r when --max-active-sagas are in memory; tells whether
 * it did. */
static bool
coord_start_full(const coord *c, rpc_req *r)
{
	if (c->nsagas < c->o.max_active) {
		return (false);
	}
	rpc_req_error(r, SAGA_EOVERLOAD,
	    "%zu sagas active (max_active_sagas); try again later",
	    c->nsagas);
	return (true);
}

static void
coord_api_start(coord *c, rpc_req *r)
{
	const proto_msg *m   = rpc_req_msg(r);
	const saga_def  *def = coord_current(c, m->saga.ptr, m->saga.len);

	if (def == NULL) {
		rpc_req_error(r, SAGA_ENOTFOUND, "unknown saga \"%.*s\"",
		    (int) m->saga.len, m->saga.ptr);
		return;
	}
	if (coord_start_stopping(r)) {
		return;
	}
	if (!c->db_up) {
		rpc_req_error(r, SAGA_EUNAVAIL,
		    "database unavailable; try again later");
		return;
	}
	if (m->input.len > c->o.max_context) {
		rpc_req_error(r, SAGA_ETOOBIG,
		    "input of %zu bytes exceeds max_context_bytes (%zu)",
		    m->input.len, c->o.max_context);
		return;
	}
	if (proto_raw_validate(m->input, &c->in_lim, NULL) != 0) {
		rpc_req_error(r, SAGA_EDEPTH,
		    "input nests deeper than %d levels, the most a COMMAND "
		    "can carry",
		    PROTO_INPUT_MAX_DEPTH);
		return;
	}
	if (coord_start_full(c, r)) {
		return;
	}
	if (m->key.len > 0 && memchr(m->key.ptr, '\0', m->key.len)) {
		rpc_req_error(r, SAGA_EINVAL,
		    "the idempotency key holds a NUL byte");
		return;
	}
	if (m->key.len > COORD_KEY_MAX) {
		rpc_req_error(r, SAGA_EINVAL,
		    "the idempotency key is %zu bytes, at most %d",
		    m->key.len, COORD_KEY_MAX);
		return;
	}
	if (def->business_key != NULL) {
		proto_str bk = { NULL, 0 };

		if (proto_val_str(proto_val_get(m->input_val,
		                      def->business_key),
		        &bk) == 0 &&
		    bk.len > COORD_KEY_MAX) {
			rpc_req_error(r, SAGA_EINVAL,
			    "the business key (input field \"%s\") is %zu "
			    "bytes, at most %d",
			    def->business_key, bk.len, COORD_KEY_MAX);
			return;
		}
		/* Kept as a C string (and PostgreSQL's text holds no NUL):
		 * "ab\0x" was stored as "ab", another saga's key. */
		if (bk.len > 0 && memchr(bk.ptr, '\0', bk.len) != NULL) {
			rpc_req_error(r, SAGA_EINVAL,
			    "the business key (input field \"%s\") holds a "
			    "NUL byte",
			    def->business_key);
			return;
		}
	}
	if (m->key.len > 0) {
		char       *key = proto_str_dup(m->key);
		saga_rt    *s;
		reader_job *job;

		if (key == NULL) {
			rpc_req_error(r, SAGA_ENOMEM, "out of memory");
			return;
		}
		if ((s = coord_find_key(c, key)) != NULL) {
			free(key);
			if (s->inst.def->name != def->name &&
			    strcmp(s->inst.def->name, def->name) != 0) {
				goto conflict;
			}
			if (!proto_raw_equal(s->inst.input, m->input)) {
				goto conflict;
			}
			if (s->created) {
				coord_answer_start(c, r, s, false);
			} else if (coord_waiter_add(c, s, r, 0, true, false) !=
			    0) {
				rpc_req_error(r, SAGA_ENOMEM, "out of memory");
			} else {
				slog(LOG_DEBUG, s->id_text, -1, s->trace,
				    "START-DUPLICATE key %.*s: waits for the "
				    "first START's commit",
				    (int) m->key.len, m->key.ptr);
			}
			return;
		}
		if ((job = calloc(1, sizeof(*job))) == NULL) {
			free(key);
			rpc_req_error(r, SAGA_ENOMEM, "out of memory");
			return;
		}
		job->op        = READER_KEY;
		job->user      = r;
		job->key       = key;
		job->saga_name = strdup(def->name);
		proto_buf_init(&job->input);
		if (job->saga_name == NULL ||
		    proto_buf_append(&job->input, m->input.ptr,
		        m->input.len) != 0) {
			reader_job_free(job);
			rpc_req_error(r, SAGA_ENOMEM, "out of memory");
			return;
		}
		coord_reader_submit(c, job);
		return;
	}
	coord_start_new(c, r, def);
	return;
conflict:
	rpc_req_error(r, SAGA_ECONFLICT,
	    "idempotency key \"%.*s\" was already used to start a saga "
	    "with a different saga name or input",
	    (int) m->key.len, m->key.ptr);
}

/* Handles a request about one saga that is in memory. */
/* The first step of d whose participant cfg lacks, or NULL. */
static const saga_step_def *
coord_def_lacking(const coord_defs *cfg, const saga_def *d)
{
	for (size_t k = 0; k < d->nsteps; k++) {
		if (coord_defs_participant(cfg, d->steps[k].participant) ==
		    NULL) {
			return (&d->steps[k]);
		}
	}
	return (NULL);
}

/* Whether a step of d has a participant that the configuration lacks
 * (why says which). Such a saga cannot be run here: each command would
 * fail to send, spend the step's attempts in a second and compensate
 * towards the same missing participant, for compensation_timeout, with
 * nothing sent. A reload refuses such a configuration only for the
 * sagas running here (coord_reload_refusal); a restart, a takeover, or
 * a repair of a FAILED saga meets it. */
static bool
coord_def_unrunnable(const coord *c, const saga_def *d, char *why,
    size_t len)
{
	const saga_step_def *st = coord_def_lacking(c->cfg, d);

	if (st != NULL) {
		snprintf(why, len,
		    "participant %s of step %s (%s version %d) is not in the "
		    "configuration",
		    st->participant, st->name, d->name, d->version);
	}
	return (st != NULL);
}

static void
coord_api_saga(coord *c, rpc_req *r, saga_rt *s)
{
	const proto_msg *m = rpc_req_msg(r);
	saga_ev          ev;
	char             note[512];
	char             step_name[COORD_CONFIG_NAME_MAX + 1];
	char             why[300];

	if (!s->created) {
		rpc_req_error(r, SAGA_ENOTFOUND, "no saga %s", s->id_text);
		return;
	}
	/* A repair that sends commands again, of a saga whose participant
	 * the configuration lost (a reload checks only the sagas running
	 * here): each would fail to send, and the saga compensate towards
	 * the same missing participant. */
	if ((m->type == PROTO_T_RETRY || m->type == PROTO_T_SKIP) &&
	    coord_def_unrunnable(c, s->inst.def, why, sizeof(why))) {
		rpc_req_error(r, SAGA_EUNAVAIL,
		    "%s; add it back (and reload), then repeat the repair",
		    why);
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.now_ms = coord_now_ms();
	ev.rnd    = coord_rand(c);
	snprintf(note, sizeof(note), "%.*s", (int) m->note.len,
	    m->note.ptr ? m->note.ptr : "");
	proto_utf8_trim(note);
	ev.text = note;
	switch (m->type) {
	case PROTO_T_STATUS:
		coord_answer_saga(c, r, s, false);
		return;
	case PROTO_T_WAIT:
		if (saga_state_terminal(s->cstate)) {
			coord_answer_saga(c, r, s, false);
		} else if (!coord_park_ok(c)) {
			coord_park_refuse(c, r);
		} else if (coord_waiter_add(c, s, r, coord_wait_ms(m, 30000),
		               false, false) != 0) {
			rpc_req_error(r, SAGA_ENOMEM, "out of memory");
		}
		return;
	case PROTO_T_CANCEL:
		ev.type = SAGA_EV_CANCEL;
		break;
	case PROTO_T_RETRY:
		ev.type = SAGA_EV_RETRY;
		break;
	case PROTO_T_RESOLVE:
		ev.type = SAGA_EV_RESOLVE;
		break;
	case PROTO_T_SKIP:
		ev.type = SAGA_EV_SKIP;
		snprintf(step_name, sizeof(step_name), "%.*s",
		    (int) m->step_name.len, m->step_name.ptr);
		ev.step_name = step_name;
		break;
	default:
		rpc_req_error(r, SAGA_EINVAL, "unexpected request");
		return;
	}
	if (!c->db_up) {
		rpc_req_error(r, SAGA_EUNAVAIL,
		    "database unavailable; try again later");
		coord_maybe_drop(c, s);
		return;
	}
	coord_feed(c, s, &ev, r);
	coord_maybe_drop(c, s);
}

/* The claim in flight of saga id, if any (claim_wait). */
static claim_wait *
coord_claim_find(coord *c, const saga_id *id)
{
	for (claim_wait *w = c->claims; w != NULL; w = w->next) {
		if (saga_id_equal(&w->id, id)) {
			return (w);
		}
	}
	return (NULL);
}

/* Holds r until the claim w is done. */
static void
coord_claim_park(claim_wait *w, rpc_req *r)
{
	if (!coord_room((void **) &w->reqs, w->n, &w->cap, sizeof(*w->reqs),
	        4)) {
		rpc_req_error(r, SAGA_ENOMEM, "out of memory");
		return;
	}
	w->reqs[w->n++] = r;
}

static void coord_api(coord *c, rpc_req *r);

/* The claim of saga id is done (its load answered, or failed): the
 * requests that waited for it go again. */
static void
coord_claim_done(coord *c, const saga_id *id)
{
	claim_wait **pp = &c->claims;
	claim_wait  *w;

	while (*pp != NULL && !saga_id_equal(&(*pp)->id, id)) {
		pp = &(*pp)->next;
	}
	if ((w = *pp) == NULL) {
		return;
	}
	*pp = w->next;
	for (size_t i = 0; i < w->n; i++) {
		coord_api(c, w->reqs[i]);
	}
	free(w->reqs);
	free(w);
}

/* Frees the claims left at shutdown (their requests are the API's). */
static void
coord_claims_free(coord *c)
{
	while (c->claims != NULL) {
		claim_wait *w = c->claims;

		c->claims = w->next;
		free(w->reqs);
		free(w);
	}
}

static void
coord_api(coord *c, rpc_req *r)
{
	const proto_msg *m = rpc_req_msg(r);
	saga_rt         *s;
	reader_job      *job;
	claim_wait      *w = NULL;
	bool             claim;

	switch (m->type) {
	case PROTO_T_START:
		coord_api_start(c, r);
		return;
	case PROTO_T_STATUS:
	case PROTO_T_WAIT:
	case PROTO_T_CANCEL:
	case PROTO_T_RETRY:
	case PROTO_T_RESOLVE:
	case PROTO_T_SKIP:
		break;
	default:
		rpc_req_error(r, SAGA_EINVAL,
		    "sagad does not serve %s messages on its client API",
		    proto_type_name(m->type));
		return;
	}
	/* Kept as C strings (and as PostgreSQL text, which has no NUL):
	 * cut at a NUL, "m2\0x" would name step m2. */
	if (m->note.len > 0 && memchr(m->note.ptr, '\0', m->note.len)) {
		rpc_req_error(r, SAGA_EINVAL, "the note holds a NUL byte");
		return;
	}
	if (m->type == PROTO_T_SKIP &&
	    (m->step_name.len > COORD_CONFIG_NAME_MAX ||
	        (m->step_name.len > 0 &&
	            memchr(m->step_name.ptr, '\0', m->step_name.len)))) {
		rpc_req_error(r, SAGA_ESTATE,
		    "step_name is no step's name (more than %d bytes, or a "
		    "NUL byte)",
		    COORD_CONFIG_NAME_MAX);
		return;
	}
	if ((s = coord_find(c, &m->id)) != NULL) {
		coord_api_saga(c, r, s);
		return;
	}
	/* A repair takes the (FAILED) saga over from whoever had it. */
	claim = m->type == PROTO_T_RETRY || m->type == PROTO_T_RESOLVE ||
	    m->type == PROTO_T_SKIP;
	if (claim && (w = coord_claim_find(c, &m->id)) != NULL) {
		coord_claim_park(w, r);
		return;
	}
	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (claim && (w = calloc(1, sizeof(*w))) == NULL)) {
		free(job);
		rpc_req_error(r, SAGA_ENOMEM, "out of memory");
		return;
	}
	if (claim) {
		w->id     = m->id;
		w->next   = c->claims;
		c->claims = w;
	}
	job->op    = READER_LOAD;
	job->user  = r;
	job->id    = m->id;
	job->claim = claim;
	proto_buf_init(&job->input);
	coord_reader_submit(c, job);
}

/* Whether the engine would refuse a cancel of the saga as its row shows
 * it (def: its definition, or NULL when it cannot be loaded here), and
 * why (len bytes). */
static bool
coord_row_cancel_refused(
    const saga_row *row, const saga_def *def, char *why, size_t len)
{
	saga_inst inst;

	/* A saga that is not RUNNING is refused whatever its definition. */
	if (row->state == SAGA_ST_RUNNING &&
	    (def == NULL || row->current_step < 0 ||
	        (size_t) row->current_step >= def->nsteps)) {
		return (false);
	}
	memset(&inst, 0, sizeof(inst));
	inst.def     = def;
	inst.state   = row->state;
	inst.step    = row->current_step;
	inst.attempt = row->attempt;
	return (saga_engine_cancel_refused(&inst, why, len));
}

/* A CANCEL for a RUNNING saga that another instance owns: the request is
 * written to the saga's row for its owner to carry out, and acknowledged
 * once that write committed (the answer: the saga as its row stands,
 * RUNNING). What the engine refuses (past the pivot, a pivot without
 * compensation in progress) is refused here already when the row shows
 * it; the owner, whose memory can be a step ahead of its row, refuses the
 * rest and writes why into the saga's log (cancel_refused). */
static void
coord_cancel_elsewhere(
    coord *c, rpc_req *r, const saga_row *row, const saga_def *def)
{
	const proto_msg *m = rpc_req_msg(r);
	reader_job      *job;
	char             why[160];

	if (coord_row_cancel_refused(row, def, why, sizeof(why))) {
		rpc_req_error(r, SAGA_ESTATE, "%s", why);
		return;
	}
	if ((job = calloc(1, sizeof(*job))) == NULL) {
		rpc_req_error(r, SAGA_ENOMEM, "out of memory");
		return;
	}
	job->op   = READER_CANCEL;
	job->user = r;
	job->id   = row->id;
	job->note = m->note.len > 0 ? proto_str_dup(m->note) : strdup("");
	proto_buf_init(&job->input);
	if (job->note == NULL) {
		reader_job_free(job);
		rpc_req_error(r, SAGA_ENOMEM, "out of memory");
		return;
	}
	coord_reader_submit(c, job);
}

/* A WAIT for a saga another instance owns: read the log again every
 * 100 ms until it ends or until until_ms. */
static void
coord_rwait(coord *c, rpc_req *r, const saga_id *id, int64_t until_ms)
{
	rwaiter *w;

	if (!coord_park_ok(c)) {
		coord_park_refuse(c, r);
		return;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		rpc_req_error(r, SAGA_ENOMEM, "out of memory");
		return;
	}
	timer_ent_init(&w->timer, TK_RWAIT);
	w->req      = r;
	w->id       = *id;
	w->until_ms = until_ms;
	if (timer_arm(&c->mtimers, &w->timer, coord_mono_ms() + 100) != 0) {
		free(w);
		rpc_req_error(r, SAGA_ENOMEM, "out of memory");
		return;
	}
	c->nparked++;
}

/* A saga row the reader loaded for request r. */
static void
coord_reader_loaded(coord *c, rpc_req *r, reader_job *job)
{
	const proto_msg *m = rpc_req_msg(r);
	const saga_def  *def;
	saga_def        *nd;
	saga_rt         *s;
	char             err[256];
	char             why[300];

	if ((s = coord_find(c, &job->row.id)) != NULL) {
		/* Loaded meanwhile (or started): memory wins. */
		if (m->type == PROTO_T_START) {
			coord_answer_start(c, r, s, false);
		} else {
			coord_api_saga(c, r, s);
		}
		return;
	}
	def = coord_def_version(c, job->row.saga_name, job->row.saga_version);
	if (def == NULL && job->def_json != NULL &&
	    coord_def_from_json(job->def_json, &nd, err, sizeof(err)) == 0) {
		nd->version = job->row.saga_version;
		def         = coord_def_add(c, nd);
	}
	if (m->type == PROTO_T_START || m->type == PROTO_T_STATUS ||
	    m->type == PROTO_T_WAIT || m->type == PROTO_T_CANCEL ||
	    job->row.state != SAGA_ST_FAILED || def == NULL) {
		if (def == NULL && m->type != PROTO_T_STATUS &&
		    m->type != PROTO_T_START && m->type != PROTO_T_WAIT &&
		    m->type != PROTO_T_CANCEL) {
			rpc_req_error(r, SAGA_EINTERNAL,
			    "definition %s version %d of saga %s cannot be "
			    "loaded",
			    job->row.saga_name, job->row.saga_version,
			    saga_id_format(&job->row.id, err));
			return;
		}
		if ((m->type == PROTO_T_RETRY || m->type == PROTO_T_RESOLVE ||
		        m->type == PROTO_T_SKIP) &&
		    job->row.state != SAGA_ST_FAILED) {
			rpc_req_error(r, SAGA_ESTATE,
			    "saga is %s; only a FAILED saga can be repaired",
			    saga_state_name(job->row.state));
			return;
		}
		if (m->type == PROTO_T_CANCEL) {
			/* Refused as the engine refuses it (not RUNNING, past
			 * the pivot...), else requested from its owner. */
			coord_cancel_elsewhere(c, r, &job->row, def);
			return;
		}
		if (m->type == PROTO_T_WAIT &&
		    !saga_state_terminal(job->row.state)) {
			coord_rwait(c, r, &job->row.id,
			    coord_mono_ms() + coord_wait_ms(m, 30000));
			return;
		}
		/* A START repeated with its key and a timeout_ms waits as
		 * the first one did, here by reading the log, as a WAIT
		 * does (without room to wait: the state as it is, as
		 * coord_answer_start answers). */
		if (m->type == PROTO_T_START && m->timeout_ms > 0 &&
		    !saga_state_terminal(job->row.state) && coord_park_ok(c)) {
			coord_rwait(c, r, &job->row.id,
			    coord_mono_ms() + coord_wait_ms(m, 0));
			return;
		}
		coord_answer_row(r, &job->row, def);
		return;
	}
	/* An operator repairs a FAILED saga: bring it into memory. */
	if (coord_saga_from_row(c, &job->row, def, &s, why, sizeof(why)) !=
	    0) {
		rpc_req_error(r, SAGA_EINTERNAL, "cannot load saga %s: %s",
		    saga_id_format(&job->row.id, err), why);
		return;
	}
	coord_insert(c, s);
	coord_api_saga(c, r, s);
}

static void coord_db_cancel(coord *c, const saga_id *id, const char *note);
static void coord_adopt(coord *c, reader_claimed *cl);

/* The other way round from coord_lease_orphans: a saga in memory that the
 * lease round did not find owned by this instance (renewed, or owned with
 * its row locked), although it runs here, committed and with nothing
 * pending, is no longer this instance's (another took it over while this
 * one was paused or cut off). Until its next write is fenced, which may
 * be an attempt's timeout later, STATUS and WAIT here would answer from
 * this stale copy, and it would count against --max-active-sagas: after
 * two such rounds in a row (one could be a saga that started or was
 * taken back after the round's read) it is dropped as fenced. Were it
 * still this instance's, the orphan check would take it back. */
static void
coord_lease_stale(coord *c)
{
	size_t n = 0;

	for (size_t i = 0; c->byid != NULL && i < c->byid_cap; i++) {
		saga_rt *s, *next;

		for (s = c->byid[i]; s != NULL; s = next) {
			next = s->hnext;
			if (s->fenced || !s->created || s->pending > 0 ||
			    (s->cstate != SAGA_ST_RUNNING &&
			        s->cstate != SAGA_ST_COMPENSATING) ||
			    s->renewed_round == c->lease_round) {
				s->unrenewed = 0;
				continue;
			}
			if (++s->unrenewed < 2) {
				continue;
			}
			s->fenced = true;
			n++;
			slog(LOG_WARN, s->id_text, s->inst.step, s->trace,
			    "FENCED this instance's lease rounds did not find "
			    "this saga its own twice (another instance took "
			    "it over); dropping it");
			coord_maybe_drop(c, s);
		}
	}
	if (n > 0) {
		log_warn("LEASE %zu saga(s) in memory are another instance's "
		         "now: dropped",
		    n);
	}
}

/* The lease round renewed sagas this instance owns in the log; one not in
 * memory would never run again and, its lease renewed forever, no other
 * instance would take it. A saga can be missing for a moment (it ended and
 * left memory after the renewal read it, or a load is bringing it in), so
 * only one missing in two rounds in a row is taken back, by the next. */
static void
coord_lease_orphans(coord *c, reader_job *job)
{
	size_t   n = 0, nadopt = 0;
	saga_id *adopt = NULL;

	c->lease_round++;
	for (size_t i = 0; i < job->nrenewed; i++) {
		saga_rt *s = coord_find(c, &job->renewed[i]);

		if (s == NULL) {
			job->renewed[n++] = job->renewed[i];
		} else {
			s->renewed_round = c->lease_round;
		}
	}
	for (size_t i = 0; i < job->nlocked; i++) {
		saga_rt *s = coord_find(c, &job->locked[i]);

		if (s != NULL) {
			s->renewed_round = c->lease_round;
		}
	}
	coord_lease_stale(c);
	/* c->adopt: last round's suspects missing again, in an array of
	 * their own (written into the suspects while they are searched,
	 * one could be overwritten before it was compared; without
	 * memory, the next round adopts them). */
	if (n > 0 && c->nsuspect > 0 &&
	    (adopt = calloc(n, sizeof(*adopt))) != NULL) {
		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; j < c->nsuspect; j++) {
				if (saga_id_equal(&job->renewed[i],
				        &c->suspect[j])) {
					adopt[nadopt++] = job->renewed[i];
					break;
				}
			}
		}
	}
	free(c->adopt);
	c->adopt  = NULL;
	c->nadopt = 0;
	if (nadopt > 0) {
		log_warn("LEASE %zu owned saga(s) not in memory: taking them "
		         "back",
		    nadopt);
		c->adopt  = adopt;
		c->nadopt = nadopt;
	} else {
		free(adopt);
	}
	free(c->suspect);
	c->suspect    = job->renewed;
	c->nsuspect   = n;
	job->renewed  = NULL;
	job->nrenewed = 0;
}

/* Why the configuration cfg must not replace the running one, in why
 * (len bytes), or NULL when it may. A SIGHUP with an empty or half-written
 * file (or one that dropped a participant by mistake) installed it:
 * every unfinished saga whose steps use a participant no longer
 * configured had its commands fail to send, gave up and parked FAILED,
 * and no saga could start. So a configuration that defines no saga, or
 * lacks a participant that a saga in memory (unfinished) still uses, is
 * refused, and so is any while the database is down (the sagas are not
 * in memory then); to retire a participant, let its sagas end first. */
static const char *
coord_reload_refusal(const coord *c, const coord_defs *cfg, char *why,
    size_t len)
{
	size_t n = 0;

	if (!c->db_up) {
		/* Its sagas are not in memory: nothing to check against. */
		snprintf(why, len,
		    "the database is down; reload again when it is back");
		return (why);
	}
	if (cfg->nsagas == 0) {
		snprintf(why, len,
		    "the configuration defines no saga (an empty or "
		    "half-written file?)");
		return (why);
	}
	for (size_t i = 0; c->byid != NULL && i < c->byid_cap; i++) {
		for (saga_rt *s = c->byid[i]; s != NULL; s = s->hnext) {
			const saga_def      *d = s->inst.def;
			const saga_step_def *st;

			if (saga_state_terminal(s->inst.state) || s->fenced ||
			    (st = coord_def_lacking(cfg, d)) == NULL) {
				continue;
			}
			if (n++ == 0) {
				snprintf(why, len,
				    "participant %s is not in the new "
				    "configuration, but saga %s (%s version "
				    "%d) still uses it",
				    st->participant, s->id_text, d->name,
				    d->version);
			}
		}
	}
	if (n > 1) {
		size_t l = strlen(why);

		snprintf(why + l, len - l, ", and %zu other unfinished "
		    "saga(s) use a participant it lacks", n - 1);
	}
	return (n > 0 ? why : NULL);
}

/* A lease round found this instance's id registered to another process
 * (holder): two sagad processes run with one id, which start-up refuses
 * (saga_store_register) but which a database away longer than the lease,
 * or a sagad without that check, lets happen. Nothing is renewed or
 * claimed under the id meanwhile; say so loudly, at once and every 20
 * rounds (10 s with the default lease). */
static void
coord_id_taken(coord *c, const char *holder)
{
	if (c->id_taken++ % 20 == 0) {
		log_error("LEASE instance id \"%s\" is registered to another "
		          "sagad (%s): two processes run with this id; this "
		          "one renews and claims nothing; stop one of them",
		    c->instance, holder);
	}
}

static void
coord_reader_done(coord *c, reader_job *job)
{
	rpc_req         *r = job->user;
	const proto_msg *m;
	char             idt[SAGA_ID_STRLEN + 1];

	if (job->op == READER_COUNT_FAILED) {
		c->failed_busy = false;
		if (job->rv == 0) {
			metrics_set(c->m, "saga_failed", NULL,
			    (double) job->count);
		}
		reader_job_free(job);
		return;
	}
	if (job->op == READER_LEASE) {
		c->lease_busy = false;
		if (job->rv == 0 && job->ngiveback > 0) {
			/* Given back: the first ones of the list (entries are
			 * only appended, and one lease job runs at a time),
			 * but those whose row was locked: the next round. */
			size_t kept = 0;

			for (size_t i = 0; i < job->ngiveback; i++) {
				if (job->giveback[i].locked) {
					c->giveback[kept++] = c->giveback[i];
				}
			}
			memmove(c->giveback + kept,
			    c->giveback + job->ngiveback,
			    (c->ngiveback - job->ngiveback) *
			        sizeof(*c->giveback));
			c->ngiveback -= job->ngiveback - kept;
		}
		if (job->rv != 0) {
			log_warn("LEASE renewal failed: %s", job->err[0]
			        ? job->err
			        : saga_strerror(job->rv));
		} else if (job->id_holder[0] != '\0') {
			coord_id_taken(c, job->id_holder);
		} else if (c->db_up) {
			if (c->id_taken > 0) {
				log_info("LEASE instance id \"%s\" is this "
				         "process's again",
				    c->instance);
				c->id_taken = 0;
			}
			for (size_t i = 0; i < job->nclaimed; i++) {
				coord_adopt(c, &job->claimed[i]);
			}
			coord_lease_orphans(c, job);
			for (size_t i = 0; i < job->ncancels; i++) {
				coord_db_cancel(c, &job->cancel_ids[i],
				    job->cancel_notes[i]);
			}
		}
		reader_job_free(job);
		return;
	}
	if (job->rwait != NULL) {
		rwaiter *w = job->rwait;

		if (job->rv == 0 && !saga_state_terminal(job->row.state) &&
		    coord_mono_ms() < w->until_ms) {
			if (timer_arm(&c->mtimers, &w->timer,
			        coord_mono_ms() + 100) == 0) {
				reader_job_free(job);
				return;
			}
		}
		if (job->rv == 0) {
			coord_answer_row(w->req, &job->row,
			    coord_def_version(c, job->row.saga_name,
			        job->row.saga_version));
		} else {
			/* As the other reads answer: EDB is EUNAVAIL to a
			 * client (ask again), which protocol.md lists. */
			rpc_req_error(w->req,
			    job->rv == SAGA_EDB ? SAGA_EUNAVAIL : job->rv,
			    "reading the saga log: %s",
			    job->err[0] ? job->err : saga_strerror(job->rv));
		}
		c->nparked--;
		free(w);
		reader_job_free(job);
		return;
	}
	if (job->op == READER_CANCEL) {
		const saga_def *def = job->rv != 0 ? NULL
		    : coord_def_version(c, job->row.saga_name,
		          job->row.saga_version);
		char            why[160];

		if (job->rv == 0 && coord_row_cancel_refused(&job->row, def,
		                        why, sizeof(why))) {
			/* The saga moved on between the read and the write:
			 * its owner will refuse the note (and log it). */
			rpc_req_error(r, SAGA_ESTATE, "%s", why);
		} else if (job->rv == 0) {
			/* Committed: the owner carries it out. */
			coord_answer_row(r, &job->row, def);
		} else if (job->rv == SAGA_ENOTFOUND) {
			rpc_req_error(r, SAGA_ESTATE,
			    "saga %s is no longer RUNNING; see its status",
			    saga_id_format(&job->id, idt));
		} else {
			/* The note's UPDATE may have committed before its
			 * connection broke (the reader tries it twice). */
			rpc_req_error(r, SAGA_EUNKNOWN,
			    "recording the cancel: %s; it may have been "
			    "recorded: see the saga's status",
			    job->err[0] ? job->err : saga_strerror(job->rv));
		}
		reader_job_free(job);
		return;
	}
	if (job->op == READER_REGISTER) {
		coord_defs *cfg = job->user;

		c->reloads_pending--;
		if (job->rv != 0) {
			log_error("reload: cannot register definitions: %s",
			    job->err);
			log_error(
			    "reload failed: keeping the old configuration");
			coord_defs_free(cfg);
		} else {
			char err[512];

			/* Again: sagas started while the definitions were
			 * being registered. */
			if (coord_reload_refusal(c, cfg, err, sizeof(err)) !=
			    NULL) {
				log_error("reload: %s", err);
				log_error("reload failed: keeping the old "
				          "configuration");
				coord_defs_free(cfg);
				free(job->defs);
				reader_job_free(job);
				return;
			}
			c->resend_ms = coord_resend_ms(c, cfg);
			if (dispatch_configure(c->disp, cfg->participants,
			        cfg->nparticipants, c->resend_ms,
			        coord_command_done, c, err, sizeof(err)) != 0) {
				log_error("reload: %s", err);
				log_error("reload failed: keeping the old "
				          "configuration");
				coord_defs_free(cfg);
			} else {
				coord_defs_install(c, cfg);
				log_info("CONFIG-RELOADED %zu sagas",
				    c->ncurrent);
			}
		}
		free(job->defs);
		reader_job_free(job);
		return;
	}
	m = rpc_req_msg(r);
	if (job->rv == SAGA_ENOTFOUND ||
	    (job->op == READER_KEY && job->rv == 0 && !job->found)) {
		if (job->op == READER_KEY) {
			const saga_def *def =
			    coord_current(c, m->saga.ptr, m->saga.len);
			saga_rt *s = coord_find_key(c, job->key);

			if (s != NULL) {
				/* Another START with this key got here
				 * first; answer as for a duplicate. */
				reader_job_free(job);
				coord_api_start(c, r);
				return;
			}
			/* The key's lookup took a while: what START
			 * checked before it may have changed (other STARTs
			 * filled --max-active-sagas, SIGTERM came). */
			if (def == NULL) {
				/* A reload removed it meanwhile: asking again
				 * would not help. */
				rpc_req_error(r, SAGA_ENOTFOUND,
				    "unknown saga \"%.*s\" (removed by a "
				    "reload)",
				    (int) m->saga.len, m->saga.ptr);
			} else if (!c->db_up) {
				rpc_req_error(r, SAGA_EUNAVAIL,
				    "try again later");
			} else if (!coord_start_stopping(r) &&
			    !coord_start_full(c, r)) {
				coord_start_new(c, r, def);
			}
		} else {
			rpc_req_error(r, SAGA_ENOTFOUND, "no saga %s",
			    saga_id_format(&job->id, idt));
		}
	} else if (job->rv != 0) {
		rpc_req_error(r, job->rv == SAGA_EDB ? SAGA_EUNAVAIL : job->rv,
		    "reading the saga log: %s",
		    job->err[0] ? job->err : saga_strerror(job->rv));
	} else if (job->op == READER_KEY && !job->same) {
		rpc_req_error(r, SAGA_ECONFLICT,
		    "idempotency key \"%s\" was already used to start a saga "
		    "with a different saga name or input",
		    job->key);
	} else {
		coord_reader_loaded(c, r, job);
	}
	if (job->op == READER_LOAD && job->claim) {
		coord_claim_done(c, &job->id);
	}
	reader_job_free(job);
}

/* A command finished: feed its outcome to the engine. */
static void
coord_command_done(void *arg, disp_done *dp)
{
	coord      *c = arg;
	disp_done   d = *dp;
	saga_rt    *s;
	saga_ev     ev;
	proto_msg   m;
	proto_error perr;
	char        text[512];
	uint8_t    *out = NULL;
	proto_buf   ctx;
	int         rv;

	if (d.batch_index == 0) {
		char lab[256];

		metrics_observe(c->m, "saga_command_batch_size",
		    metrics_labels(lab, sizeof(lab), "participant",
		        d.participant, NULL),
		    (double) d.batch_size);
	}
	proto_msg_init(&m);
	/* Not for a copy of the saga that did not send it: one fenced
	 * away and taken back meanwhile resends its attempt, and a timeout
	 * or error of the old command would cut the new one short. */
	if (d.tag.gen != c->gen || (s = coord_find(c, &d.tag.id)) == NULL ||
	    s->fenced || d.tag.copy != s->copy) {
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.now_ms      = coord_now_ms();
	ev.rnd         = coord_rand(c);
	ev.step        = d.tag.step;
	ev.kind        = d.tag.kind;
	ev.attempt     = d.tag.attempt;
	ev.duration_us = d.duration_us;
	ev.text        = text;
	text[0]        = '\0';
	if (d.result == SAGA_ETIMEDOUT) {
		ev.type = SAGA_EV_TIMEOUT;
		snprintf(text, sizeof(text), "%s", d.errtext);
	} else if (d.result != 0) {
		ev.type = SAGA_EV_ERROR;
		snprintf(text, sizeof(text), "%s", d.errtext);
	} else if ((rv = proto_msg_decode(d.reply.ptr, d.reply.len, &c->o.lim,
	                &m, &perr)) != 0) {
		ev.type = SAGA_EV_ERROR;
		snprintf(text, sizeof(text), "malformed reply from %s: %s: %s",
		    d.participant, saga_errname(rv), perr.msg);
	} else if (m.type == PROTO_T_ERROR) {
		ev.type = SAGA_EV_ERROR;
		snprintf(text, sizeof(text), "%s answered %s: %.*s",
		    d.participant, saga_errname((int) m.code),
		    (int) m.message.len, m.message.ptr);
	} else if (m.type != PROTO_T_REPLY ||
	    !saga_id_equal(&m.id, &d.tag.id) ||
	    m.step != (uint32_t) d.tag.step || m.kind != d.tag.kind ||
	    m.attempt != d.tag.attempt) {
		ev.type = SAGA_EV_ERROR;
		snprintf(text, sizeof(text),
		    "%s answered with a %s that does not match the command",
		    d.participant, proto_type_name(m.type));
	} else {
		ev.type    = SAGA_EV_REPLY;
		ev.outcome = m.outcome;
		snprintf(text, sizeof(text), "%.*s", (int) m.error.len,
		    m.error.ptr ? m.error.ptr : "");
	}
	/* A participant's text cut to fit: not inside a character. */
	proto_utf8_trim(text);
	if (ev.type == SAGA_EV_REPLY && ev.outcome == PROTO_OUTCOME_OK &&
	    s->inst.state == SAGA_ST_RUNNING && ev.step == s->inst.step &&
	    ev.kind == SAGA_KIND_ACTION) {
		proto_raw o = m.output.len > 0 ? m.output : PROTO_RAW_EMPTY_MAP;
		proto_raw saved = s->inst.outputs[ev.step];

		if ((out = malloc(o.len)) == NULL) {
			coord_fatal("keeping an output", SAGA_ENOMEM);
		}
		memcpy(out, o.ptr, o.len);
		ev.output.ptr = out;
		ev.output.len = o.len;
		/* Would the context with this output still fit? */
		proto_buf_init(&ctx);
		s->inst.outputs[ev.step] = ev.output;
		rv = coord_context_build(c, s, &ctx);
		s->inst.outputs[ev.step] = saved;
		if (rv != 0) {
			coord_fatal("building a context", rv);
		}
		ev.output_too_big  = ctx.len > c->o.max_context;
		ev.output_too_deep = proto_raw_validate(o, &c->out_lim,
		                         NULL) != 0;
		{
			saga_fx fx;

			memset(&fx, 0, sizeof(fx));
			saga_engine_event(&s->inst, &ev, &fx);
			if (fx.output_taken) {
				free((void *) saved.ptr);
				proto_buf_fini(&s->context);
				s->context = ctx;
				out        = NULL;
			} else {
				proto_buf_fini(&ctx);
			}
			coord_apply(c, s, &fx, NULL, false);
		}
		free(out);
	} else {
		coord_feed(c, s, &ev, NULL);
	}
	proto_msg_fini(&m);
}

static void
coord_timer(coord *c, timer_ent *t);

/* Closes every writer's connection. */
static void
coord_writers_close(coord *c)
{
	for (int i = 0; i < COORD_WRITERS_MAX; i++) {
		saga_store_free(c->wr[i].st);
		c->wr[i].st = NULL;
	}
	c->st     = NULL;
	c->target = 0;
}

/* Forgets every saga in memory (timers, indexes, the saga itself); with
 * err, their waiting clients are answered that error first. */
static void
coord_sagas_drop(coord *c, int err)
{
	for (size_t i = 0; c->byid != NULL && i < c->byid_cap; i++) {
		saga_rt *s;

		while ((s = c->byid[i]) != NULL) {
			if (err != 0) {
				coord_waiters_answer(c, s, true, err);
			}
			timer_cancel(&c->timers, &s->timer);
			coord_unlink(c, s);
			coord_saga_free(s);
		}
	}
}

/* Database outage: forget every saga and reconnect with backoff. */
static void
coord_outage(coord *c, const char *why)
{
	log_error("DB-DOWN %s; sagas are paused until the database is back",
	    why);
	c->db_up = false;
	c->gen++;
	for (int w = 0; w < c->nwr; w++) {
		entry_list *lists[2] = { &c->wr[w].flight, &c->wr[w].staged };

		for (int i = 0; i < 2; i++) {
			for (size_t j = 0; j < lists[i]->n; j++) {
				if (lists[i]->v[j].answer == NULL) {
					continue;
				}
				/* In flight: its COMMIT may have been
				 * made. Staged: never sent. */
				if (i == 0) {
					rpc_req_error(lists[i]->v[j].answer,
					    SAGA_EUNKNOWN,
					    "database unavailable; the "
					    "request may or may not have "
					    "been applied: check the saga's "
					    "status later");
				} else {
					rpc_req_error(lists[i]->v[j].answer,
					    SAGA_EUNAVAIL,
					    "database unavailable; try again "
					    "later");
				}
			}
			lists[i]->n = 0;
		}
		c->wr[w].snotes.n = 0;
		c->wr[w].fnotes.n = 0;
	}
	coord_sagas_drop(c, SAGA_EUNAVAIL);
	dispatch_drop_waiting(c->disp);
	coord_writers_close(c);
	if (timer_arm(&c->mtimers, &c->reconnect,
	        coord_mono_ms() + c->reconnect_backoff) != 0) {
		coord_fatal("arming a timer", SAGA_ENOMEM);
	}
}

/* A saga this instance claimed (row) but cannot load: its definition or
 * its context cannot be read here (the limits were lowered since it
 * started, a definition this build cannot read, ...). Held, it would never
 * run, and its lease, renewed with the others', would keep every other
 * instance away from it for good, while the orphan check took it back
 * every round. So it is given back at the next lease round (no owner, no
 * lease, a load_failed event with why), for an instance that can load it
 * to take over (or this one after a restart with the right options), and
 * this process never claims it again. Its state, step and attempt stay as
 * they are: the saga is not moved on, it waits, and nothing is lost
 * (unlike parking it FAILED, whose retry would compensate a saga that was
 * running forward before its pivot). */
static void
coord_unloadable(
    coord *c, const saga_row *row, const char *tag, const char *why)
{
	char             idt[SAGA_ID_STRLEN + 1];
	reader_giveback *g;
	saga_id         *u;
	size_t           i;

	slog(LOG_ERROR, saga_id_format(&row->id, idt), row->current_step,
	    row->traceparent, "%s %s; giving it back to the instances that "
	    "can load it", tag, why);
	if ((g = realloc(c->giveback, (c->ngiveback + 1) * sizeof(*g))) ==
	    NULL) {
		coord_fatal("keeping a saga to give back", SAGA_ENOMEM);
	}
	c->giveback = g;
	g           = &c->giveback[c->ngiveback++];
	g->id       = row->id;
	g->epoch    = row->epoch;
	snprintf(g->why, sizeof(g->why), "%s", why);
	proto_utf8_trim(g->why);
	for (i = 0; i < c->nunloadable; i++) {
		if (saga_id_equal(&c->unloadable[i], &row->id)) {
			return;
		}
	}
	if ((u = realloc(c->unloadable,
	         (c->nunloadable + 1) * sizeof(*u))) == NULL) {
		coord_fatal("keeping a saga to give back", SAGA_ENOMEM);
	}
	c->unloadable                   = u;
	c->unloadable[c->nunloadable++] = row->id;
}

static int
coord_load_cb(void *arg, saga_row *row)
{
	coord          *c = arg;
	const saga_def *def;
	saga_def       *nd;
	saga_rt        *s;
	char           *json = NULL;
	char            err[256];
	char            why[300];
	int             rv;

	def = coord_def_version(c, row->saga_name, row->saga_version);
	if (def == NULL) {
		snprintf(err, sizeof(err), "not in the log");
		if ((rv = saga_store_def_load(c->st, row->saga_name,
		         row->saga_version, &json)) != 0 ||
		    (rv = coord_def_from_json(json, &nd, err, sizeof(err))) !=
		        0) {
			free(json);
			if (rv == SAGA_EDB || rv == SAGA_ENOMEM) {
				log_error("recovery: definition %s version "
				          "%d: %s",
				    row->saga_name, row->saga_version,
				    rv == SAGA_EDB ? saga_store_error(c->st)
				                   : saga_strerror(rv));
				saga_row_fini(row);
				return (rv);
			}
			snprintf(why, sizeof(why),
			    "definition %s version %d cannot be loaded: %s",
			    row->saga_name, row->saga_version, err);
			coord_unloadable(c, row, "RECOVERY-FAILED", why);
			saga_row_fini(row);
			return (0);
		}
		free(json);
		nd->version = row->saga_version;
		def         = coord_def_add(c, nd);
	}
	if ((s = coord_find(c, &row->id)) != NULL) {
		/* Still in memory (this instance's lease lapsed and nobody
		 * else took it): keep the memory, hold the new epoch. A copy
		 * older than the log (another instance wrote meanwhile) is
		 * replaced once nothing of it is pending. */
		if (s->pending == 0 && row->event_seq != s->inst.seq) {
			s->fenced = true;
			coord_maybe_drop(c, s);
		} else {
			s->epoch  = row->epoch;
			s->fenced = false;
			saga_row_fini(row);
			return (0);
		}
	}
	if (coord_def_unrunnable(c, def, why, sizeof(why))) {
		coord_unloadable(c, row, "RECOVERY-FAILED", why);
		saga_row_fini(row);
		return (0);
	}
	rv = coord_saga_from_row(c, row, def, &s, why, sizeof(why));
	if (rv == SAGA_ENOMEM) {
		/* Not the saga's fault: the connect fails and is tried
		 * again. */
		char idt[SAGA_ID_STRLEN + 1];

		slog(LOG_ERROR, saga_id_format(&row->id, idt),
		    row->current_step, row->traceparent, "RECOVERY-FAILED %s",
		    why);
	} else if (rv != 0) {
		coord_unloadable(c, row, "RECOVERY-FAILED", why);
		rv = 0;
	} else {
		coord_insert(c, s);
	}
	saga_row_fini(row);
	return (rv);
}

/* A cancel asked through the database for a saga this instance owns (by
 * a client of another instance, already answered): carried out, or, when
 * the engine refuses it, the refusal goes into the saga's log
 * (cancel_refused) and sagad's (CANCEL-REFUSED). Either way the note is
 * cleared with the transition. */
static void
coord_db_cancel(coord *c, const saga_id *id, const char *note)
{
	saga_rt *s = coord_find(c, id);
	saga_ev  ev;

	/* The note is the one a transition of the saga carries out (or
	 * refuses) and clears, while that transition is not committed, and
	 * in the result of a lease job that was in flight when it
	 * committed (its read may come before the commit): taken twice, it
	 * was refused in the saga's log as if the cancel had not happened.
	 * Any other note is taken, whatever else is pending: a saga that
	 * ends meanwhile refuses it (below), where left for a later round it
	 * would never be read again (only unfinished sagas' notes are). */
	if (s == NULL || s->fenced || s->clearing > 0 ||
	    s->cleared_job == c->lease_jobs) {
		return;
	}
	if (saga_state_terminal(s->inst.state)) {
		saga_fx fx;

		/* It ended, or was parked FAILED, meanwhile (its batch not
		 * committed when the note was read): its log ends with that
		 * event, and a refusal would come after it. The refusal is
		 * said here, and the note cleared (left, a RETRY of a FAILED
		 * saga would find it). */
		slog(LOG_WARN, s->id_text, s->inst.step, s->trace,
		    "CANCEL-REFUSED saga is %s; the cancel's note: %s; "
		    "cleared",
		    saga_state_name(s->inst.state), note ? note : "");
		memset(&fx, 0, sizeof(fx));
		s->clear_cancel = true;
		coord_apply(c, s, &fx, NULL, false);
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.type         = SAGA_EV_CANCEL;
	ev.now_ms       = coord_now_ms();
	ev.rnd          = coord_rand(c);
	ev.text         = note;
	ev.remote       = true;
	s->clear_cancel = true;
	coord_feed(c, s, &ev, NULL);
}

/* Adopts a saga this instance just took over (a lease round): as at
 * recovery, its last committed attempt is resent unchanged. */
static void
coord_adopt(coord *c, reader_claimed *cl)
{
	const saga_def *def;
	saga_def       *nd;
	saga_rt        *s;
	char            err[256];
	char            why[300];
	int             rv;

	def = coord_def_version(c, cl->row.saga_name, cl->row.saga_version);
	snprintf(err, sizeof(err), "not in the log");
	if (def == NULL && cl->def_json != NULL &&
	    coord_def_from_json(cl->def_json, &nd, err, sizeof(err)) == 0) {
		nd->version = cl->row.saga_version;
		def         = coord_def_add(c, nd);
	}
	if (def == NULL) {
		snprintf(why, sizeof(why),
		    "definition %s version %d cannot be loaded: %s",
		    cl->row.saga_name, cl->row.saga_version, err);
		coord_unloadable(c, &cl->row, "TAKEOVER-FAILED", why);
		return;
	}
	/* Not through coord_load_cb's store lookups: the definition came
	 * with the row. */
	if ((s = coord_find(c, &cl->row.id)) != NULL) {
		/* A claim no newer than the one s runs under (a lease job's
		 * answer that a reconnect's claim overtook): old news. */
		if (cl->row.epoch <= s->epoch) {
			return;
		}
		/* This instance claimed its own saga (its lease ran out). The
		 * same transitions in memory as in the row: go on under the
		 * new epoch. */
		if (s->pending == 0 && cl->row.event_seq == s->inst.seq) {
			s->epoch  = cl->row.epoch;
			s->fenced = false;
			return;
		}
		/* Otherwise what is in memory is not what the row holds: drop
		 * it. With transitions pending, their batches are fenced (the
		 * claim moved the epoch), and the saga leaves memory once
		 * they are back; as an owned saga missing from memory it is
		 * then taken back from the row (coord_lease_orphans). Kept
		 * under the new epoch instead, its next batch would commit
		 * after a fenced one, leaving a gap in its log. */
		s->fenced = true;
		if (s->pending > 0) {
			return;
		}
		coord_maybe_drop(c, s);
	}
	if (coord_def_unrunnable(c, def, why, sizeof(why))) {
		coord_unloadable(c, &cl->row, "TAKEOVER-FAILED", why);
		return;
	}
	if ((rv = coord_saga_from_row(c, &cl->row, def, &s, why,
	         sizeof(why))) == SAGA_ENOMEM) {
		char idt[SAGA_ID_STRLEN + 1];

		/* Not the saga's fault: still owned here and not in
		 * memory, the orphan check takes it back in a round or
		 * two. */
		slog(LOG_ERROR, saga_id_format(&cl->row.id, idt),
		    cl->row.current_step, cl->row.traceparent,
		    "TAKEOVER-FAILED %s", why);
		return;
	}
	if (rv != 0) {
		coord_unloadable(c, &cl->row, "TAKEOVER-FAILED", why);
		return;
	}
	coord_insert(c, s);
	slog(LOG_INFO, s->id_text, s->inst.step, s->trace,
	    "TAKEOVER %s (epoch %lld)", def->name, (long long) s->epoch);
	if (s->inst.in_flight) {
		coord_send(c, s, s->inst.step, saga_engine_kind(&s->inst),
		    s->inst.attempt);
	}
	coord_rearm(c, s);
}

/* Logs what a new connection put right (saga_store_warning), once per
 * connection. */
static void
coord_store_warn(const saga_store *st)
{
	const char *w = saga_store_warning(st);

	if (w != NULL) {
		log_warn("%s", w);
	}
}

/* Says why a connection (or the registration of the id on it) failed:
 * at start-up, or a refusal that needs the operator (the schema too
 * old, the id another live process's), an error; at a reconnect, why
 * the database stays away (authentication, too many clients, a
 * timeout) each new reason once at warn, not at every attempt, until
 * the next DB-UP. An id held by another process is refused at every
 * reconnect too: said as error when it changes, at debug between. */
static void
coord_connect_failed(coord *c, bool first, bool refused, const char *err)
{
	if (first) {
		log_error("%s", err);
	} else if (strcmp(err, c->reconnect_why) != 0) {
		if (refused) {
			log_error("%s", err);
		} else {
			log_warn("DB-RECONNECT-FAILED %s; retrying (said "
			         "again only when the reason changes)",
			    err);
		}
		snprintf(c->reconnect_why, sizeof(c->reconnect_why), "%s",
		    err);
	} else {
		log_debug("DB-RECONNECT-FAILED %s", err);
	}
}

/* At a reconnect, the current definitions again: the database may have
 * lost their rows (a failover that lost the last commits, a restore, a
 * schema made again under a running sagad), and every START of a saga
 * whose row is gone failed its whole batch (a foreign key) as if the
 * database were down, again and again. Registering is idempotent. A
 * definition that the log now holds under another version number is
 * refused: this process's sagas would name the wrong one. */
static int
coord_defs_reregister(coord *c)
{
	for (size_t i = 0; i < c->ncurrent; i++) {
		const saga_def *d = c->current[i];
		char            hash[65];
		int             v = 0;
		int             rv;

		if ((rv = saga_store_def_register(
		         c->st, d->name, d->json, &v, hash)) != 0) {
			coord_connect_failed(c, false, false,
			    saga_store_error(c->st));
			return (rv);
		}
		if (v != d->version) {
			char err[512];

			snprintf(err, sizeof(err),
			    "definition %s: the saga log holds it as version "
			    "%d, this process as version %d (was the database "
			    "restored?); staying paused: restart sagad",
			    d->name, v, d->version);
			coord_connect_failed(c, false, true, err);
			return (SAGA_ESTATE);
		}
	}
	return (0);
}

/* Connects, loads every unfinished saga and resumes it. Returns 0 or an
 * error (the database is still away). */
static int
coord_connect(coord *c, bool first)
{
	char   err[512];
	size_t resent = 0;
	int    rv;

	if ((rv = saga_store_open(&c->wr[0].st, c->o.conninfo, c->instance,
	         c->o.lease_ms, err, sizeof(err))) != 0) {
		coord_connect_failed(c, first, rv == SAGA_ESTATE, err);
		return (rv);
	}
	coord_store_warn(c->wr[0].st);
	c->st = c->wr[0].st;
	/* The id first: a process refused it must write nothing, not even
	 * a definition. At a reconnect the row is still this process's,
	 * unless another took the id while the database was away and this
	 * one's heartbeat aged past the lease: this one then stays paused,
	 * retrying, while that one lives. */
	if ((rv = saga_store_register(c->st, c->o.listen)) != 0) {
		coord_connect_failed(c, first, rv == SAGA_EEXIST,
		    saga_store_error(c->st));
		goto fail;
	}
	if (first) {
		for (size_t i = 0; i < c->cfg->nsagas; i++) {
			saga_def *d = c->cfg->sagas[i];

			if ((rv = saga_store_def_register(c->st, d->name,
			         d->json, &d->version, d->hash)) != 0) {
				log_error("%s", saga_store_error(c->st));
				goto fail;
			}
			log_info("DEFINITION %s version %d (%.12s)", d->name,
			    d->version, d->hash);
		}
		coord_defs_install(c, c->cfg);
	} else if ((rv = coord_defs_reregister(c)) != 0) {
		goto fail;
	}
	{
		long claimed;

		/* The unfinished sagas this instance id owns (epoch + 1),
		 * and at start-up those whose lease expired. Not at a
		 * reconnect: every lease expired during the outage, and the
		 * first instance back took every saga of every instance (a
		 * review: a 3 s restart of PostgreSQL moved 40 sagas of two
		 * instances to one). The lease rounds take others' sagas
		 * over from COORD_TAKEOVER_GRACE_MS after DB-UP: the others,
		 * reconnecting with the same backoff, take theirs first. */
		if ((rv = saga_store_claim(c->st, true, first, LONG_MAX,
		         c->unloadable, c->nunloadable, coord_load_cb, c,
		         &claimed)) != 0) {
			log_error("loading unfinished sagas: %s",
			    saga_store_error(c->st));
			goto fail;
		}
		if (!first) {
			c->takeover_from_ms = coord_mono_ms() + c->o.lease_ms +
			    COORD_TAKEOVER_GRACE_MS;
		}
	}
	if ((rv = saga_store_pipeline_start(c->st)) != 0) {
		log_error("%s", saga_store_error(c->st));
		goto fail;
	}
	/* The other writers: the same instance, more batches in flight. */
	for (int i = 1; i < c->nwr; i++) {
		if ((rv = saga_store_open(&c->wr[i].st, c->o.conninfo,
		         c->instance, c->o.lease_ms, err, sizeof(err))) != 0) {
			log_error("%s", err);
			goto fail;
		}
		coord_store_warn(c->wr[i].st);
		if ((rv = saga_store_pipeline_start(c->wr[i].st)) != 0) {
			log_error("%s", saga_store_error(c->wr[i].st));
			goto fail;
		}
	}
	c->db_up             = true;
	c->reconnect_backoff = 100;
	if (!first) {
		metrics_add(c->m, "saga_db_reconnects_total", NULL, 1);
	}
	for (size_t i = 0; i < c->byid_cap; i++) {
		for (saga_rt *s = c->byid[i]; s != NULL; s = s->hnext) {
			if (s->inst.in_flight) {
				/* The last committed attempt, unchanged. */
				coord_send(c, s, s->inst.step,
				    saga_engine_kind(&s->inst),
				    s->inst.attempt);
				resent++;
			}
			coord_rearm(c, s);
		}
	}
	log_info("%s: %zu unfinished sagas resumed (%zu commands resent)",
	    first ? "RECOVERY" : "DB-UP", c->nsagas, resent);
	c->reconnect_why[0] = '\0';
	return (0);
fail:
	coord_sagas_drop(c, 0);
	coord_writers_close(c);
	return (rv);
}

/* Gives a lease job copies of the sagas to give back and of those never
 * to claim. Returns 0 or SAGA_ENOMEM. */
static int
coord_lease_lists(coord *c, reader_job *job)
{
	if (c->ngiveback > 0) {
		size_t n = c->ngiveback * sizeof(*c->giveback);

		if ((job->giveback = malloc(n)) == NULL) {
			return (SAGA_ENOMEM);
		}
		memcpy(job->giveback, c->giveback, n);
		job->ngiveback = c->ngiveback;
	}
	if (c->nunloadable > 0) {
		size_t n = c->nunloadable * sizeof(*c->unloadable);

		if ((job->skip_ids = malloc(n)) == NULL) {
			return (SAGA_ENOMEM);
		}
		memcpy(job->skip_ids, c->unloadable, n);
		job->nskip = c->nunloadable;
	}
	return (0);
}

/* How many sagas of other instances (expired leases) a lease round may
 * take over: 1,000, none in the grace after a reconnect. (Not bounded by
 * --max-active-sagas: with every instance full of sagas that do not end,
 * a dead one's sagas would wait for ever.) */
static long
coord_claim_limit(const coord *c)
{
	return (coord_mono_ms() < c->takeover_from_ms ? 0 : 1000);
}

static void
coord_timer(coord *c, timer_ent *t)
{
	switch (t->kind) {
	case TK_SAGA: {
		saga_rt *s = container_of(t, saga_rt, timer);
		saga_ev  ev;

		memset(&ev, 0, sizeof(ev));
		ev.type = SAGA_EV_TIMER;
		/* A timer that fired is due: if the clock stepped back since
		 * the loop read it, the engine would find it early, ignore
		 * it and arm it again at the same time, and the loop, whose
		 * time is the old one, pop it again, for as long as the step
		 * (no client, reply or lease round meanwhile). */
		ev.now_ms = coord_now_ms();
		if (ev.now_ms < t->at_ms) {
			ev.now_ms = t->at_ms;
		}
		ev.rnd = coord_rand(c);
		coord_feed(c, s, &ev, NULL);
		return;
	}
	case TK_WAIT: {
		waiter *w = container_of(t, waiter, timer);

		/* The wait timed out: answer with the state as it is. */
		coord_answer_saga(c, w->req, w->saga, w->created);
		coord_waiter_remove(c, w);
		return;
	}
	case TK_LEASE:
		if (c->db_up && !c->lease_busy && c->lrd != NULL) {
			reader_job *job = calloc(1, sizeof(*job));

			if (job != NULL) {
				proto_buf_init(&job->input);
			}
			/* Out of memory: no round this time; the next try
			 * comes with the timer. */
			if (job != NULL && coord_lease_lists(c, job) != 0) {
				reader_job_free(job);
				job = NULL;
			}
			if (job != NULL) {
				job->op          = READER_LEASE;
				job->adopt_ids   = c->adopt;
				job->nadopt      = c->nadopt;
				job->claim_limit = coord_claim_limit(c);
				c->adopt       = NULL;
				c->nadopt      = 0;
				c->lease_busy  = true;
				c->lease_jobs++;
				reader_submit(c->lrd, job);
			}
		}
		/* Renew well within the lease; take over within a second. */
		if (timer_arm(&c->mtimers, &c->lease,
		        coord_mono_ms() +
		            saga_store_renew_every_ms(c->o.lease_ms)) != 0) {
			coord_fatal("arming a timer", SAGA_ENOMEM);
		}
		return;
	case TK_RWAIT: {
		rwaiter    *w   = container_of(t, rwaiter, timer);
		reader_job *job = calloc(1, sizeof(*job));

		if (job == NULL) {
			rpc_req_error(w->req, SAGA_ENOMEM, "out of memory");
			c->nparked--;
			free(w);
			return;
		}
		job->op    = READER_LOAD;
		job->id    = w->id;
		job->rwait = w;
		proto_buf_init(&job->input);
		coord_reader_submit(c, job);
		return;
	}
	case TK_RECONNECT:
		if (coord_connect(c, false) != 0) {
			c->reconnect_backoff = c->reconnect_backoff * 2 > 5000
			    ? 5000
			    : c->reconnect_backoff * 2;
			if (timer_arm(&c->mtimers, &c->reconnect,
			        coord_mono_ms() + c->reconnect_backoff) != 0) {
				coord_fatal("arming a timer", SAGA_ENOMEM);
			}
		}
		return;
	}
}

static void
coord_reload(coord *c)
{
	coord_defs *cfg = NULL;
	coord_errs  errs;
	reader_job *job;
	struct stat sb;

	/* The engine thread reads the files: a FIFO (or a device) could
	 * block it, and every saga with it, until someone writes. Start-up
	 * reads them (--config <(...)); a reload reads regular files. */
	for (size_t i = 0; i < c->o.nconfigs; i++) {
		if (stat(c->o.configs[i], &sb) == 0 && !S_ISREG(sb.st_mode)) {
			log_error("reload: %s is not a regular file",
			    c->o.configs[i]);
			log_error(
			    "reload failed: keeping the old configuration");
			return;
		}
	}
	memset(&errs, 0, sizeof(errs));
	if (coord_defs_load(c->o.configs, c->o.nconfigs, &cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++) {
			log_error("reload: %s", errs.msgs[i]);
		}
		log_error("reload failed: keeping the old configuration");
		coord_errs_fini(&errs);
		return;
	}
	coord_errs_fini(&errs);
	{
		char err[512];

		if (coord_reload_refusal(c, cfg, err, sizeof(err)) != NULL) {
			log_error("reload: %s", err);
			log_error(
			    "reload failed: keeping the old configuration");
			coord_defs_free(cfg);
			return;
		}
		/* Before the new definitions are registered: a participant
		 * whose TLS files nng would refuse, or take and then fail
		 * with, fails the reload as a whole. */
		if (dispatch_check_tls(&c->o.tls, cfg->participants,
		        cfg->nparticipants, err, sizeof(err)) != 0) {
			log_error("reload: %s", err);
			log_error(
			    "reload failed: keeping the old configuration");
			coord_defs_free(cfg);
			return;
		}
	}
	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (job->defs = calloc(cfg->nsagas ? cfg->nsagas : 1,
	         sizeof(saga_def *))) == NULL) {
		free(job);
		coord_defs_free(cfg);
		log_error("reload failed: out of memory");
		return;
	}
	job->op = READER_REGISTER;
	for (size_t i = 0; i < cfg->nsagas; i++) {
		job->defs[i] = cfg->sagas[i];
	}
	job->ndefs = cfg->nsagas;
	job->user  = cfg;
	proto_buf_init(&job->input);
	c->reloads_pending++;
	coord_reader_submit(c, job);
}

static void
coord_sig_cb(int sig)
{
	if (sig == SIGHUP) {
		coord_sig_hup = 1;
	} else {
		coord_sig_term = 1;
	}
	if (coord_sig_queue != NULL) {
		coord_queue_wake(coord_sig_queue);
	}
}

static void
coord_events(coord *c)
{
	coord_event *ev = coord_queue_take(&c->q);

	while (ev != NULL) {
		coord_event *next = ev->next;

		/* How long it waited for this thread: the engine's lag.
		 * Read before handling it, which may free it. */
		metrics_observe(c->m, "saga_engine_wait_seconds", NULL,
		    (double) (coord_now_us() - ev->pushed_us) / 1e6);

		switch (ev->type) {
		case COORD_EV_DISPATCH:
			dispatch_event(c->disp, ev, &c->o.lim,
			    coord_command_done, c);
			break;
		case COORD_EV_API:
			coord_api(c, ev->obj);
			break;
		case COORD_EV_READER:
			coord_reader_done(c, ev->obj);
			break;
		}
		ev = next;
	}
}

static void
coord_gauge_part_cb(void *arg, const char *name, size_t busy, size_t waiting)
{
	coord *c = arg;
	char   lab[256];

	metrics_labels(lab, sizeof(lab), "participant", name, NULL);
	metrics_set(c->m, "saga_commands_in_flight", lab, (double) busy);
	metrics_set(c->m, "saga_commands_waiting", lab, (double) waiting);
}

/* Lets go of the requests held until a saga ends (WAIT, START with
 * timeout_ms) whose client has gone: each held a context of the API, and
 * counted against the half of them that may wait, until its timeout (up
 * to 7 days); with half of them held so, every WAIT was refused
 * (EOVERLOAD). A remote WAIT whose read of the log is in flight is let go
 * at the next sweep. Called once a second while any request is held. */
static void
coord_waiters_sweep(coord *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->byid_cap; i++) {
		for (saga_rt *s = c->byid[i]; s != NULL; s = s->hnext) {
			waiter **pp = &s->waiters;

			while (*pp != NULL) {
				waiter *w = *pp;

				if (!w->until_final ||
				    !rpc_req_client_gone(w->req)) {
					pp = &w->next;
					continue;
				}
				*pp = w->next;
				timer_cancel(&c->mtimers, &w->timer);
				rpc_req_error(w->req, SAGA_ECLOSED,
				    "the client has gone");
				coord_waiter_free(c, w);
				n++;
			}
		}
	}
	/* The heap changes as entries leave: from its end, so that each
	 * index is read once; an entry that a removal sifts into an index
	 * already read waits for the next sweep. */
	for (size_t i = c->mtimers.n; i-- > 0;) {
		timer_ent *t = i < c->mtimers.n ? c->mtimers.ents[i] : NULL;
		rwaiter   *w;

		if (t == NULL || t->kind != TK_RWAIT) {
			continue;
		}
		w = container_of(t, rwaiter, timer);
		if (rpc_req_client_gone(w->req)) {
			timer_cancel(&c->mtimers, t);
			rpc_req_error(w->req, SAGA_ECLOSED,
			    "the client has gone");
			c->nparked--;
			free(w);
			n++;
		}
	}
	if (n > 0) {
		log_debug("API: %zu held requests let go: their clients have "
		          "gone",
		    n);
	}
}

/* Refreshes the gauges (every second) and, through the reader, the count
 * of FAILED sagas (every ten); now and mnow are the turn's wall clock and
 * monotonic clock (which schedules both). */
static void
coord_gauges(coord *c, int64_t now, int64_t mnow)
{
	int64_t       oldest = 0;
	size_t        conns;
	unsigned long refused;

	if (mnow < c->gauges_at) {
		return;
	}
	c->gauges_at = mnow + 1000;
	for (size_t i = 0; i < c->byid_cap; i++) {
		for (saga_rt *s = c->byid[i]; s != NULL; s = s->hnext) {
			if (!saga_state_terminal(s->inst.state) &&
			    (oldest == 0 || s->inst.created_ms < oldest)) {
				oldest = s->inst.created_ms;
			}
		}
	}
	if (c->nparked > 0) {
		coord_waiters_sweep(c);
	}
	metrics_set(c->m, "saga_active", NULL, (double) c->nsagas);
	metrics_set(c->m, "saga_api_waiting", NULL, (double) c->nparked);
	rpc_server_conns(c->api, &conns, &refused);
	metrics_set(c->m, "saga_api_connections", NULL, (double) conns);
	metrics_add(c->m, "saga_api_connections_refused_total", NULL,
	    (double) (refused - c->api_refused));
	c->api_refused = refused;
	metrics_set(c->m, "saga_oldest_unfinished_seconds", NULL,
	    oldest == 0 ? 0.0 : (double) (now - oldest) / 1e3);
	dispatch_stats(c->disp, coord_gauge_part_cb, c);
	if (mnow >= c->failed_at && !c->failed_busy && c->rd != NULL) {
		reader_job *job = calloc(1, sizeof(*job));

		c->failed_at = mnow + 10000;
		if (job != NULL) {
			job->op = READER_COUNT_FAILED;
			proto_buf_init(&job->input);
			c->failed_busy = true;
			reader_submit(c->rd, job);
		}
	}
}

/* Tells whether no writer has a batch in flight or staged. */
static bool
coord_writers_idle(const coord *c)
{
	for (int i = 0; i < c->nwr; i++) {
		if (saga_store_in_flight(c->wr[i].st) ||
		    saga_store_staged(c->wr[i].st) > 0) {
			return (false);
		}
	}
	return (true);
}

/* Sends what each writer without a batch in flight has staged; stops at
 * an outage. */
static void
coord_flush(coord *c)
{
	for (int i = 0; i < c->nwr; i++) {
		coord_writer *w = &c->wr[i];
		entry_list    tmp;
		note_list     ntmp;
		int           rv;

		if (saga_store_in_flight(w->st) ||
		    saga_store_staged(w->st) == 0) {
			continue;
		}
		tmp         = w->flight;
		w->flush_us = coord_now_us();
		rv          = saga_store_flush(w->st);
		/* A flush that failed after its COMMIT was queued may have
		 * committed: its requests are in flight, answered EUNKNOWN
		 * by the outage, not EUNAVAIL (never sent). */
		if (rv == 0 || saga_store_commit_sent(w->st)) {
			w->flight   = w->staged;
			w->staged   = tmp;
			w->staged.n = 0;
			ntmp        = w->fnotes;
			w->fnotes   = w->snotes;
			w->snotes   = ntmp;
			w->snotes.n = 0;
		}
		if (rv != 0) {
			coord_outage(c, saga_store_error(w->st));
			return;
		}
	}
}

static void
coord_loop(coord *c)
{
	int64_t stop_at = 0;

	for (;;) {
		struct pollfd fds[1 + COORD_WRITERS_MAX];
		int           nfds = 1;
		int           timeout = 1000;
		int           ready;
		timer_ent    *t;
		int64_t       now  = coord_now_ms();
		int64_t       mnow = coord_mono_ms();
		bool          down = false;

		if (coord_sig_hup) {
			coord_sig_hup = 0;
			log_info("SIGHUP: reloading the configuration");
			coord_reload(c);
		}
		if (coord_sig_term && stop_at == 0) {
			log_info("SIGTERM: no new sagas; finishing commits in "
			         "progress");
			stop_at = mnow + 10000;
		}
		if (stop_at != 0 &&
		    (!c->db_up || coord_writers_idle(c) || mnow > stop_at)) {
			break;
		}
		if ((t = timer_next(&c->timers)) != NULL) {
			int64_t d = t->at_ms - now;

			timeout = d < 0 ? 0 : d < 1000 ? (int) d : 1000;
		}
		if ((t = timer_next(&c->mtimers)) != NULL) {
			int64_t d = t->at_ms - mnow;

			if (d < timeout) {
				timeout = d < 0 ? 0 : (int) d;
			}
		}
		/* What this turn decided to send, in as few messages as
		 * the participants' max_batch allow. */
		if (dispatch_flush(c->disp) != 0) {
			log_warn("out of memory sending commands; trying again");
			timeout = 10;
		}
		fds[0].fd     = c->q.efd;
		fds[0].events = POLLIN;
		for (int i = 0; c->db_up && i < c->nwr; i++) {
			fds[nfds].fd     = saga_store_fd(c->wr[i].st);
			fds[nfds].events = POLLIN |
			    (saga_store_want_write(c->wr[i].st) ? POLLOUT : 0);
			nfds++;
		}
		/* Only a writer whose socket poll found ready is read:
		 * saga_store_poll reads all there is each time, so a quiet
		 * socket has nothing new, and each read of one is a system
		 * call that finds nothing. After an interrupted poll, every
		 * writer is read. */
		if ((ready = poll(fds, (nfds_t) nfds, timeout)) < 0 &&
		    errno != EINTR) {
			coord_fatal("poll", SAGA_EIO);
		}
		for (int i = 0; c->db_up && i < c->nwr && !down; i++) {
			coord_writer *w = &c->wr[i];

			if (ready >= 0 && fds[1 + i].revents == 0) {
				continue;
			}
			switch (saga_store_poll(w->st)) {
			case SAGA_STORE_COMMITTED:
				metrics_observe(c->m, "saga_db_commit_seconds",
				    NULL,
				    (double) (coord_now_us() - w->flush_us) /
				        1e6);
				metrics_observe(c->m, "saga_db_batch_rows", NULL,
				    (double) saga_store_batch_size(w->st));
				coord_release(c, w);
				break;
			case SAGA_STORE_FAILED:
				coord_outage(c, saga_store_error(w->st));
				down = true;
				break;
			case SAGA_STORE_PENDING:
				break;
			}
		}
		coord_events(c);
		/* Sent before the gauges are read, so that they count only
		 * what the bulkheads hold back. */
		(void) dispatch_flush(c->disp);
		now  = coord_now_ms();
		mnow = coord_mono_ms();
		coord_gauges(c, now, mnow);
		/* The count of a burst of warnings about clients, once its
		 * second is over (the poll above waits at most 1 s). */
		rpc_server_warn_flush(c->api);
		while ((t = timer_pop(&c->timers, now)) != NULL) {
			coord_timer(c, t);
		}
		while ((t = timer_pop(&c->mtimers, mnow)) != NULL) {
			coord_timer(c, t);
		}
		if (c->db_up) {
			coord_flush(c);
		}
	}
}

static void
coord_usage(FILE *f)
{
	fprintf(f,
	    "Usage: sagad --config FILE [options]\n"
	    "\n"
	    "The saga coordinator: drives the sagas defined in FILE through\n"
	    "their participants and keeps their log in PostgreSQL.\n"
	    "\n"
	    "Options:\n"
	    "  -c, --config FILE          saga definitions (YAML); repeatable\n"
	    "      --check                validate the configuration, print\n"
	    "                             every error and exit (1 on errors)\n"
	    "      --db CONNINFO          PostgreSQL connection (default:\n"
	    "                             $DATABASE_URL, else libpq's PG*\n"
	    "                             variables)\n"
	    "      --migrate              apply the database migrations and "
	    "exit\n"
	    "  -l, --listen URL           client API endpoint\n"
	    "                             (default tcp://127.0.0.1:7100)\n"
	    "      --max-active-sagas N   start requests beyond N sagas in\n"
	    "                             memory are refused (default 10000)\n"
	    "      --max-context-bytes N  bound of a saga's context\n"
	    "                             (default 65536)\n"
	    "      --max-message-bytes N  largest message accepted\n"
	    "                             (default 1048576)\n"
	    "      --api-contexts N       concurrent client requests\n"
	    "                             (default 1024); at most half of\n"
	    "                             them wait for sagas to end (WAIT,\n"
	    "                             START with timeout_ms)\n"
	    "      --api-max-connections N\n"
	    "                             client connections open at once\n"
	    "                             (default 1000); a request on one\n"
	    "                             more is answered EOVERLOAD\n"
	    "      --log-level LEVEL      error, warn, info (default), debug\n"
	    "      --log-format FORMAT    text (default) or json (one object\n"
	    "                             per line)\n"
	    "      --instance-id ID       this instance's name among several\n"
	    "                             sharing the database (default\n"
	    "                             HOST:PID); the id of a live\n"
	    "                             instance is refused; a restarted\n"
	    "                             instance with the same id takes\n"
	    "                             its sagas back at once, others\n"
	    "                             wait for the lease\n"
	    "      --db-writers N         database connections writing\n"
	    "                             batches, each with one in flight\n"
	    "                             (1..4, default 2)\n"
	    "      --lease DUR            how long an instance owns its sagas\n"
	    "                             without renewing (default 5s):\n"
	    "                             after a crash the others begin to\n"
	    "                             take them over within DUR + 1s,\n"
	    "                             1,000 a round of DUR/3 (at most\n"
	    "                             500 ms) each\n"
	    "      --tls-ca FILE          CA (PEM) that signs every peer: with\n"
	    "                             tls+tcp:// URLs, clients and\n"
	    "                             participants must present a\n"
	    "                             certificate it signed\n"
	    "      --tls-cert FILE        this sagad's certificate (PEM)\n"
	    "      --tls-key FILE         its private key (PEM)\n"
	    "      --metrics-listen ADDR  serve Prometheus metrics at\n"
	    "                             http://ADDR/metrics (HOST:PORT)\n"
	    "  -h, --help                 this help\n"
	    "  -V, --version              print the version\n"
	    "\n"
	    "Signals: SIGHUP reloads the configuration files (a bad file\n"
	    "keeps the old definitions); SIGTERM stops taking new sagas,\n"
	    "finishes the commits in progress, hands its leases over and\n"
	    "exits 0.\n");
}

/* Descriptors sagad may hold besides its clients' connections taken:
 * those kept beyond the most (RPC_SERVER_OVER_MAX), those still in their
 * handshakes (counted by nothing: nng gives one 10 s), the database's,
 * the participants' sockets, the metrics' clients, files. */
#define COORD_FD_OWN (256 + RPC_SERVER_OVER_MAX)

/* Makes room for conns client connections: the soft limit of open files
 * (ulimit -n, often 1,024) is raised towards the hard one when it is
 * short. When the hard one is short too, a warning says so: connections
 * beyond it are not accepted (nng retries the accept), and whatever
 * sagad opens then (a file, a database connection) may fail. */
static void
coord_fd_room(size_t conns)
{
	struct rlimit rl;
	rlim_t        want = (rlim_t) conns + COORD_FD_OWN;
	rlim_t        cur;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
	    rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) {
		return;
	}
	cur         = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
	    ? want
	    : rl.rlim_max;
	if (rl.rlim_cur > cur && setrlimit(RLIMIT_NOFILE, &rl) == 0) {
		cur = rl.rlim_cur;
	}
	if (cur < want) {
		log_warn("the open-file limit (%llu, ulimit -n) leaves room "
		         "for about %llu client connections, fewer than "
		         "--api-max-connections %zu: connections beyond it "
		         "fail; raise the limit (LimitNOFILE= in a systemd "
		         "unit) or lower --api-max-connections",
		    (unsigned long long) cur,
		    cur > COORD_FD_OWN
		        ? (unsigned long long) (cur - COORD_FD_OWN)
		        : 0ULL,
		    conns);
	}
}

static int
coord_parse_size(const char *opt, const char *v, size_t min, size_t max,
    size_t *out)
{
	char              *end;
	unsigned long long n;

	errno = 0;
	n     = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || *v == '\0' || *v == '-' ||
	    n < min || n > max) {
		fprintf(stderr,
		    "sagad: invalid value \"%s\" for %s (expected %zu..%zu)\n",
		    v, opt, min, max);
		return (-1);
	}
	*out = (size_t) n;
	return (0);
}

static int
coord_parse_args(int argc, char **argv, coord_opts *o)
{
	enum {
		O_CHECK = 256,
		O_DB,
		O_MIGRATE,
		O_MAX_ACTIVE,
		O_MAX_CONTEXT,
		O_MAX_MSG,
		O_API_CTX,
		O_API_CONNS,
		O_LOG_LEVEL,
		O_METRICS,
		O_LOG_FORMAT,
		O_TLS_CA,
		O_TLS_CERT,
		O_TLS_KEY,
		O_INSTANCE,
		O_LEASE,
		O_WRITERS,
	};
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, O_CHECK },
		{ "db", required_argument, NULL, O_DB },
		{ "migrate", no_argument, NULL, O_MIGRATE },
		{ "listen", required_argument, NULL, 'l' },
		{ "max-active-sagas", required_argument, NULL, O_MAX_ACTIVE },
		{ "max-context-bytes", required_argument, NULL,
		    O_MAX_CONTEXT },
		{ "max-message-bytes", required_argument, NULL, O_MAX_MSG },
		{ "api-contexts", required_argument, NULL, O_API_CTX },
		{ "api-max-connections", required_argument, NULL,
		    O_API_CONNS },
		{ "log-level", required_argument, NULL, O_LOG_LEVEL },
		{ "metrics-listen", required_argument, NULL, O_METRICS },
		{ "log-format", required_argument, NULL, O_LOG_FORMAT },
		{ "instance-id", required_argument, NULL, O_INSTANCE },
		{ "lease", required_argument, NULL, O_LEASE },
		{ "db-writers", required_argument, NULL, O_WRITERS },
		{ "tls-ca", required_argument, NULL, O_TLS_CA },
		{ "tls-cert", required_argument, NULL, O_TLS_CERT },
		{ "tls-key", required_argument, NULL, O_TLS_KEY },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int    ch;
	size_t n;

	o->listen       = "tcp://127.0.0.1:7100";
	o->writers      = 2;
	o->lease_ms     = 5000;
	o->max_active   = 10000;
	o->max_context  = 65536;
	o->api_contexts = 1024;
	o->api_conns    = 1000;
	o->lim          = proto_limits_default();
	if ((o->configs = calloc((size_t) argc, sizeof(char *))) == NULL) {
		return (1);
	}
	while ((ch = getopt_long(argc, argv, "c:l:hV", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			o->configs[o->nconfigs++] = optarg;
			break;
		case O_CHECK:
			o->check = true;
			break;
		case O_DB:
			o->conninfo = optarg;
			break;
		case O_MIGRATE:
			o->migrate = true;
			break;
		case 'l':
			o->listen = optarg;
			break;
		case O_MAX_ACTIVE:
			if (coord_parse_size("--max-active-sagas", optarg, 1,
			        10000000, &o->max_active) != 0) {
				return (2);
			}
			break;
		case O_MAX_CONTEXT:
			if (coord_parse_size("--max-context-bytes", optarg, 64,
			        64 * 1024 * 1024, &o->max_context) != 0) {
				return (2);
			}
			break;
		case O_MAX_MSG:
			if (coord_parse_size("--max-message-bytes", optarg,
			        1024, 256 * 1024 * 1024,
			        &o->lim.max_msg_bytes) != 0) {
				return (2);
			}
			break;
		case O_API_CTX:
			if (coord_parse_size("--api-contexts", optarg, 2, 65536,
			        &o->api_contexts) != 0) {
				return (2);
			}
			break;
		case O_API_CONNS:
			if (coord_parse_size("--api-max-connections", optarg,
			        1, 1000000, &o->api_conns) != 0) {
				return (2);
			}
			break;
		case O_METRICS:
			o->metrics_listen = optarg;
			break;
		case O_WRITERS:
			if (coord_parse_size("--db-writers", optarg, 1,
			        COORD_WRITERS_MAX, &n) != 0) {
				return (2);
			}
			o->writers = (int) n;
			break;
		case O_INSTANCE:
			if (optarg[0] == '\0' || strlen(optarg) > 100) {
				fprintf(stderr,
				    "sagad: invalid value \"%s\" for "
				    "--instance-id (expected 1 to 100 "
				    "characters)\n",
				    optarg);
				return (2);
			}
			o->instance_id = optarg;
			break;
		case O_LEASE:
			if (coord_duration_parse(optarg, &o->lease_ms) != 0 ||
			    o->lease_ms < 500 || o->lease_ms > 3600000) {
				fprintf(stderr,
				    "sagad: invalid value \"%s\" for --lease "
				    "(expected a duration 500ms..1h)\n",
				    optarg);
				return (2);
			}
			break;
		case O_TLS_CA:
			o->tls.ca = optarg;
			break;
		case O_TLS_CERT:
			o->tls.cert = optarg;
			break;
		case O_TLS_KEY:
			o->tls.key = optarg;
			break;
		case O_LOG_FORMAT:
			if (log_set_format(optarg) != 0) {
				fprintf(stderr,
				    "sagad: invalid value \"%s\" for "
				    "--log-format (expected text or json)\n",
				    optarg);
				return (2);
			}
			break;
		case O_LOG_LEVEL:
			if (log_set_level(optarg) != 0) {
				fprintf(stderr,
				    "sagad: invalid value \"%s\" for "
				    "--log-level (expected error, warn, info "
				    "or debug)\n",
				    optarg);
				return (2);
			}
			break;
		case 'h':
			coord_usage(stdout);
			exit(0);
		case 'V':
			printf("sagad %s (protocol %d)\n", SAGA_VERSION_STRING,
			    PROTO_VERSION);
			exit(0);
		default:
			fprintf(stderr, "Try 'sagad --help'.\n");
			return (2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sagad: unexpected argument \"%s\"\n",
		    argv[optind]);
		return (2);
	}
	if (o->conninfo == NULL) {
		o->conninfo = getenv("DATABASE_URL");
	}
	if (o->conninfo == NULL) {
		o->conninfo = "";
	}
	if (o->migrate && o->check) {
		/* --migrate went first, and a check wrote to the database. */
		fprintf(stderr,
		    "sagad: --check and --migrate go separately: --check "
		    "reads the configuration only, --migrate changes the "
		    "database\n");
		return (2);
	}
	if (!o->migrate && o->nconfigs == 0) {
		fprintf(stderr,
		    "sagad: no configuration: give --config FILE "
		    "(see docs/sagas.md)\n");
		return (2);
	}
	{
		char why[512];

		if (saga_listen_url_check(o->listen, &o->listen_local, why,
		        sizeof(why)) != 0) {
			fprintf(stderr, "sagad: --listen %s\n", why);
			return (2);
		}
		if (o->metrics_listen != NULL &&
		    metrics_addr_check(o->metrics_listen, why, sizeof(why)) !=
		        0) {
			fprintf(stderr, "sagad: %s\n", why);
			return (2);
		}
		if (o->tls.cert != NULL && o->tls.key != NULL &&
		    saga_tls_check_pair(o->tls.cert, o->tls.key, why,
		        sizeof(why)) != 0) {
			fprintf(stderr, "sagad: --tls-cert, --tls-key: %s\n",
			    why);
			return (2);
		}
	}
	if (o->max_context + 4096 > o->lim.max_msg_bytes) {
		fprintf(stderr,
		    "sagad: --max-context-bytes (%zu) must stay 4096 bytes "
		    "below --max-message-bytes (%zu)\n",
		    o->max_context, o->lim.max_msg_bytes);
		return (2);
	}
	return (0);
}

static int
coord_migrate(const coord_opts *o)
{
	PGconn     *conn = sql_conn_open(o->conninfo, "sagad");
	const char *level;
	bool        raised;
	char        err[512];
	int         applied = 0;
	int         rv;

	if (conn == NULL) {
		fprintf(stderr, "sagad: out of memory\n");
		return (1);
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "sagad: cannot connect to PostgreSQL: %s",
		    PQerrorMessage(conn));
		PQfinish(conn);
		return (1);
	}
	/* A migration's COMMIT must not be lost once reported applied. */
	if (sql_conn_utf8_check(conn, err, sizeof(err)) != 0 ||
	    sql_durable_check(conn, &level, &raised, err, sizeof(err)) != 0) {
		fprintf(stderr, "sagad: %s\n", err);
		PQfinish(conn);
		return (1);
	}
	if (raised) {
		fprintf(stderr,
		    "sagad: synchronous_commit is off for this database, role "
		    "or options; set to on for this session (see "
		    "docs/operations.md)\n");
	}
	rv = sql_migrate_apply(conn, "coordinator", coordinator_migrations,
	    coordinator_migrations_count, &applied, err, sizeof(err));
	PQfinish(conn);
	if (rv != 0) {
		fprintf(stderr, "sagad: %s\n", err);
		return (1);
	}
	printf("sagad: %d migration(s) applied; the schema is at version "
	       "%d\n",
	    applied,
	    coordinator_migrations[coordinator_migrations_count - 1].version);
	return (0);
}

/* The watchdog of the shutdown, from the end of the engine loop on: each
 * part has its own time, and a part that has not ended in time is logged
 * and the process exits 0 without the rest of the clean-up. Nothing that
 * matters is lost: the last commits are done, and leases not handed over
 * expire as after a kill -9.
 *
 * The hand-over (stopping the readers, connecting, releasing the leases)
 * gets COORD_HANDOVER_WAIT_S: a connection's connect_timeout (10 s by
 * default, sql_conn.h) and the release's own bound (4 s,
 * SAGA_STORE_RELEASE_WAIT). Until 2026-12-07 it had none: a session
 * holding one of the instance's rows locked held sagad as long, and
 * a reader stuck in a query held it for good.
 *
 * The closing of the nng sockets gets COORD_CLOSE_WAIT_S: libnng 1.5.2
 * can hang in nng_close for good (the main thread waits there for the
 * socket's pipes to go, nng's reaper thread for an operation of one of
 * them; seen when a SIGTERM came while commands were in flight;
 * nanomsg/nng issue 1813 reports such a hang). */
#define COORD_HANDOVER_WAIT_S 15
#define COORD_CLOSE_WAIT_S 5

typedef struct coord_watchdog {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	clockid_t       clk; /* the condition's clock */
	pthread_t       thr;
	struct timespec until; /* the end of the current part */
	char            msg[200]; /* logged if it comes first */
	bool            done;
	bool            running;
} coord_watchdog;

static void *
coord_watchdog_main(void *arg)
{
	coord_watchdog *w = arg;
	struct timespec now;
	bool            late = false;

	pthread_mutex_lock(&w->mtx);
	while (!w->done) {
		int rc = pthread_cond_timedwait(&w->cv, &w->mtx, &w->until);

		/* Woken: done, or the next part (a new time). */
		if (rc == 0) {
			continue;
		}
		/* A time out just as the next part began: not late. */
		clock_gettime(w->clk, &now);
		if (rc == ETIMEDOUT && (now.tv_sec < w->until.tv_sec ||
		        (now.tv_sec == w->until.tv_sec &&
		            now.tv_nsec < w->until.tv_nsec))) {
			continue;
		}
		/* Any other error of the wait counts as the time being
		 * up. */
		late = true;
		break;
	}
	pthread_mutex_unlock(&w->mtx);
	if (late) {
		log_warn("%s", w->msg);
		fflush(stderr);
		_exit(0);
	}
	return (NULL);
}

/* Starts the next part of the shutdown: it has secs seconds, after which
 * msg (a format with one %d, the seconds) is logged and the process
 * exits. */
static void
coord_watchdog_part(coord_watchdog *w, int secs, const char *msg)
{
	pthread_mutex_lock(&w->mtx);
	clock_gettime(w->clk, &w->until);
	w->until.tv_sec += secs;
	snprintf(w->msg, sizeof(w->msg), msg, secs);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mtx);
}

/* Starts the watchdog with its first part (coord_watchdog_part); without
 * a thread (out of resources) the shutdown simply goes on unwatched. */
static void
coord_watchdog_start(coord_watchdog *w, int secs, const char *msg)
{
	pthread_condattr_t ca;

	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mtx, NULL);
	pthread_condattr_init(&ca);
	w->clk = CLOCK_MONOTONIC;
	if (pthread_condattr_setclock(&ca, w->clk) != 0) {
		w->clk = CLOCK_REALTIME; /* the condition's default clock */
	}
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	coord_watchdog_part(w, secs, msg);
	w->running =
	    pthread_create(&w->thr, NULL, coord_watchdog_main, w) == 0;
}

static void
coord_watchdog_stop(coord_watchdog *w)
{
	pthread_mutex_lock(&w->mtx);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mtx);
	if (w->running) {
		pthread_join(w->thr, NULL);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mtx);
}

/* Hands the leases over (SIGTERM): the other instances take these sagas
 * at once instead of after the lease. The loop has ended and the
 * readers are stopped, so nothing writes to them any more. */
static void
coord_handover(coord *c)
{
	saga_store *rel = NULL;
	char        err[512];
	long        released, left;

	/* The writers first: nothing reads their results any more, and
	 * their connections would only take server slots. A batch still
	 * in flight is not undone by this (the server runs what it was
	 * sent): the release skips the rows it holds. */
	coord_writers_close(c);
	if (saga_store_open(&rel, c->o.conninfo, c->instance, c->o.lease_ms,
	        err, sizeof(err)) != 0) {
		log_warn("LEASES not released: %s; they expire within the "
		         "lease",
		    err);
		return;
	}
	coord_store_warn(rel);
	if (saga_store_release(rel, &released, &left) != 0) {
		log_warn("LEASES not released: %s; they expire within the "
		         "lease",
		    saga_store_error(rel));
	} else if (left > 0) {
		log_warn("LEASES released (%ld); %ld leases left to expire: "
		         "their rows are locked by another session",
		    released, left);
	} else {
		log_info("LEASES released (%ld)", released);
	}
	saga_store_free(rel);
}

/* Drops the events still queued (the readers and everything else that
 * posts are stopped): a reader's job is freed with what it holds, the
 * other events live inside their objects. */
static void
coord_queue_drop(coord *c)
{
	coord_event *ev = coord_queue_take(&c->q);

	while (ev != NULL) {
		coord_event *next = ev->next;

		if (ev->type == COORD_EV_READER) {
			reader_job *job = ev->obj;

			if (job->op == READER_REGISTER) {
				coord_defs_free(job->user);
				free(job->defs);
			}
			free(job->rwait);
			reader_job_free(job);
		}
		ev = next;
	}
}

/* Frees everything main made, whatever was started of it: the API and
 * the participants' sockets stopped (what they post is dropped from the
 * queue) and closed, the sagas still in memory, the remote waits still
 * armed, the writers, the metrics (their HTTP server is nng's too), the
 * definitions. Used by the shutdown and by a failure at start-up, so that
 * LeakSanitizer finds nothing on either. */
static void
coord_fini(coord *c)
{
	timer_ent *t;

	rpc_server_stop(c->api);
	dispatch_stop(c->disp);
	coord_queue_drop(c);
	coord_sagas_drop(c, 0);
	rpc_server_free(c->api);
	dispatch_free(c->disp);
	free(c->adopt);
	free(c->suspect);
	free(c->giveback);
	free(c->unloadable);
	coord_claims_free(c);
	while ((t = timer_next(&c->timers)) != NULL) {
		timer_cancel(&c->timers, t);
	}
	while ((t = timer_next(&c->mtimers)) != NULL) {
		timer_cancel(&c->mtimers, t);
		if (t->kind == TK_RWAIT) {
			free(container_of(t, rwaiter, timer));
		}
	}
	coord_writers_close(c);
	metrics_free(c->m);
	coord_queue_fini(&c->q);
	for (size_t i = 0; i < c->ndefs; i++) {
		saga_def_free(c->defs[i]);
	}
	free(c->defs);
	free(c->current);
	coord_defs_free(c->cfg);
	for (int i = 0; i < COORD_WRITERS_MAX; i++) {
		free(c->wr[i].staged.v);
		free(c->wr[i].flight.v);
		free(c->wr[i].snotes.v);
		free(c->wr[i].fnotes.v);
	}
	free(c->byid);
	free(c->bykey);
	proto_obj_free(c->ctx_root);
	proto_obj_free(c->ctx_steps);
	proto_buf_fini(&c->sendbuf);
	timer_heap_fini(&c->timers);
	timer_heap_fini(&c->mtimers);
	free(c->o.configs);
}

/* A failure at start-up: frees what main made (the readers, if started,
 * are stopped by the caller) and returns 1, the exit status. */
static int
coord_start_failed(coord *c)
{
	coord_fini(c);
	return (1);
}

int
main(int argc, char **argv)
{
	coord            c;
	coord_errs       errs;
	coord_watchdog   wd;
	struct sigaction sa;
	char             err[512];
	int              rv;

	memset(&c, 0, sizeof(c));
	log_set_program("sagad");
	if ((rv = coord_parse_args(argc, argv, &c.o)) != 0) {
		free(c.o.configs);
		return (rv);
	}
	c.nwr = c.o.writers;
	if (c.o.migrate) {
		free(c.o.configs);
		return (coord_migrate(&c.o));
	}
	memset(&errs, 0, sizeof(errs));
	coord_config_url_check = saga_tls_dial_url_ok;
	if (coord_defs_load(c.o.configs, c.o.nconfigs, &c.cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++) {
			fprintf(stderr, "%s\n", errs.msgs[i]);
		}
		fprintf(stderr, "sagad: %zu error(s) in the configuration\n",
		    errs.n);
		coord_errs_fini(&errs);
		free(c.o.configs);
		return (1);
	}
	coord_errs_fini(&errs);
	if (c.o.check) {
		/* What the loader cannot see: the participants' TLS
		 * files as nng will take them. */
		if (dispatch_check_tls(&c.o.tls, c.cfg->participants,
		        c.cfg->nparticipants, err, sizeof(err)) != 0) {
			fprintf(stderr, "sagad: %s\n", err);
			coord_defs_free(c.cfg);
			free(c.o.configs);
			return (1);
		}
		printf("configuration OK: %zu participant(s), %zu saga(s)\n",
		    c.cfg->nparticipants, c.cfg->nsagas);
		coord_defs_free(c.cfg);
		free(c.o.configs);
		return (0);
	}
	coord_random_bytes(&c.rng, sizeof(c.rng));
	c.rng |= 1;
	if (c.o.instance_id != NULL) {
		snprintf(c.instance, sizeof(c.instance), "%s", c.o.instance_id);
	} else {
		char host[64];

		if (gethostname(host, sizeof(host)) != 0) {
			snprintf(host, sizeof(host), "sagad");
		}
		host[sizeof(host) - 1] = '\0';
		snprintf(c.instance, sizeof(c.instance), "%s:%d", host,
		    (int) getpid());
	}
	timer_ent_init(&c.lease, TK_LEASE);
	c.byid_cap = c.bykey_cap = 1024;
	c.byid                   = calloc(c.byid_cap, sizeof(saga_rt *));
	c.bykey                  = calloc(c.bykey_cap, sizeof(saga_rt *));
	c.reconnect_backoff      = 100;
	timer_heap_init(&c.timers);
	timer_heap_init(&c.mtimers);
	timer_ent_init(&c.reconnect, TK_RECONNECT);
	proto_buf_init(&c.sendbuf);
	c.in_lim            = c.o.lim;
	c.in_lim.max_depth  = PROTO_INPUT_MAX_DEPTH;
	c.out_lim           = c.o.lim;
	c.out_lim.max_depth = PROTO_OUTPUT_MAX_DEPTH;
	c.ctx_lim           = c.o.lim;
	c.ctx_lim.max_depth = PROTO_CONTEXT_MAX_DEPTH;
	if (c.byid == NULL || c.bykey == NULL ||
	    proto_obj_alloc(&c.ctx_root) != 0 ||
	    proto_obj_alloc(&c.ctx_steps) != 0 ||
	    coord_queue_init(&c.q) != 0 ||
	    dispatch_alloc(&c.disp, &c.q, &c.o.tls, c.o.lim.max_msg_bytes) !=
	        0) {
		coord_fatal("start-up", SAGA_ENOMEM);
	}
	coord_metrics_init(&c);
	if (c.o.metrics_listen != NULL &&
	    metrics_serve(c.m, c.o.metrics_listen, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return (coord_start_failed(&c));
	}
	/* What nng takes and then fails with at every handshake (a
	 * participant's certificate with another key), as --check does. */
	if (dispatch_check_tls(&c.o.tls, c.cfg->participants,
	        c.cfg->nparticipants, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return (coord_start_failed(&c));
	}
	c.resend_ms = coord_resend_ms(&c, c.cfg);
	if ((rv = dispatch_configure(c.disp, c.cfg->participants,
	         c.cfg->nparticipants, c.resend_ms,
	         coord_command_done, &c, err, sizeof(err))) != 0) {
		log_error("%s", err);
		return (coord_start_failed(&c));
	}
	if ((rv = coord_connect(&c, true)) != 0) {
		return (coord_start_failed(&c));
	}
	if (reader_start(&c.rd, c.o.conninfo, c.instance, c.o.lease_ms,
	        &c.q) != 0 ||
	    reader_start(&c.lrd, c.o.conninfo, c.instance, c.o.lease_ms,
	        &c.q) != 0) {
		coord_fatal("starting the readers", SAGA_ENOMEM);
	}
	if (timer_arm(&c.mtimers, &c.lease, coord_mono_ms()) != 0) {
		coord_fatal("arming a timer", SAGA_ENOMEM);
	}
	if (!saga_tls_url(c.o.listen) && !c.o.listen_local) {
		log_warn("INSECURE listening on %s without TLS: any host that "
		         "reaches it can start and cancel sagas; use tls+tcp:// "
		         "with --tls-ca, --tls-cert and --tls-key",
		    c.o.listen);
	}
	coord_fd_room(c.o.api_conns);
	if ((rv = rpc_server_start(&c.api, c.o.listen, c.o.api_contexts,
	         c.o.api_conns, &c.o.lim, "sagad", &c.o.tls, &c.q, err,
	         sizeof(err))) != 0) {
		log_error("%s", err);
		reader_stop(c.rd);
		reader_stop(c.lrd);
		return (coord_start_failed(&c));
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = coord_sig_cb;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags     = SA_RESTART;
	coord_sig_queue = &c.q;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_info("READY listening on %s (%zu sagas defined, instance %s, "
	         "lease %lld ms)",
	    c.o.listen, c.ncurrent, c.instance, (long long) c.o.lease_ms);
	coord_loop(&c);
	coord_watchdog_start(&wd, COORD_HANDOVER_WAIT_S,
	    "SHUTDOWN: the hand-over of the leases has not ended after %d s "
	    "(a database that does not answer); exiting without it: the "
	    "leases expire");
	/* Shut down: clients still waiting are told so. */
	coord_sagas_drop(&c, SAGA_ECLOSED);
	/* The readers first: once they are stopped no lease job runs, so
	 * none renews a lease after the hand-over below. */
	reader_stop(c.rd);
	reader_stop(c.lrd);
	/* Before nng is closed, which may not return. */
	if (c.db_up && c.id_taken > 0) {
		/* The leases under the id are the other process's. */
		log_warn("LEASES not released: instance id \"%s\" is another "
		         "sagad's now; its leases are that one's",
		    c.instance);
	} else if (c.db_up) {
		coord_handover(&c);
	}
	coord_watchdog_part(&wd, COORD_CLOSE_WAIT_S,
	    "SHUTDOWN: nng has not closed its sockets after %d s (a hang "
	    "inside libnng); exiting without them");
	coord_fini(&c);
	coord_watchdog_stop(&wd);
	log_info("STOPPED");
	return (0);
}
