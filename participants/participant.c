/* SPDX-License-Identifier: MIT */
/*
 * participant: the participant library. See include/saga/participant.h.
 *
 * DESIGN: serving is split between nng threads and worker threads, as in
 * DESIGN.md (Threads). An nng REP socket with `contexts` contexts; each
 * context is a small state machine (W_RECV, W_WORK, W_SEND) with one aio,
 * as in nng's demo/async server. The aio callback (an nng thread) only
 * decodes: a malformed request, a PING, a request that is not a COMMAND or
 * names no registered handler is answered right there; a COMMAND is
 * pushed onto the work queue. `workers` threads, each with its own
 * database connection, take every context waiting (up to max_batch) and
 * run them as one batch: one transaction, each command's barrier and
 * handler inside a savepoint of its own (barrier_sql.c), one COMMIT; then
 * they encode the replies and send each on its context; the send's
 * completion makes the context receive again. So the number of contexts
 * bounds the commands accepted at once, the number of workers the
 * handlers running at once, and no handler ever runs in an nng callback.
 *
 * Batches are group commit: PostgreSQL makes a COMMIT durable with one
 * WAL flush, and that flush, not the statements, bounds a participant
 * that commits every command alone. A worker never waits to fill a batch
 * (alone, a command is a batch of one, as fast as before); batches grow
 * only from what queues while every worker is busy, that is, under load.
 * The savepoints keep one command's undo (retry, crash, SQL error,
 * deadlock victim) from touching the others; a batch's answers all wait
 * for its COMMIT, and when the transaction is lost they are all retry.
 *
 * A worker whose database is gone answers retry at once, and reconnects
 * (with backoff, 100 ms doubling up to 2 s) when the next batch comes.
 * A purge thread deletes old barrier rows every purge_interval_ms on a
 * connection of its own.
 *
 * Stopping: saga_participant_stop only posts a semaphore (signal-safe).
 * The teardown (serve after the semaphore, or free) sets `stopping`, joins
 * the workers (each finishes the batch it runs and sends its replies),
 * stops every aio (which waits for the callbacks), closes the socket and
 * frees what is left: commands still queued are dropped unanswered, and
 * sagad resends them. libnng 1.5.2 now and then never returns from
 * nng_close (as in sagad, docs/operations.md "Hand-over"), so the aios are
 * stopped and the socket closed on a thread of their own, waited for
 * PART_CLOSE_WAIT_MS: past that the participant is left as it is (nng's
 * threads may still use it), marked nng_hung, and serve says so.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "barrier_decide.h"
#include "barrier_sql.h"
#include "proto_msg.h"
#include "saga/participant.h"
#include "metrics.h"
#include "log_text.h"
#include "saga_tls.h"
#include "saga_tls_check.h"
#include "sql_conn.h"
#include "sql_durable.h"
#include "sql_migrate.h"

/* The barrier's migration set (sql/barrier), compiled in by CMake. */
extern const sql_migration barrier_migrations[];
extern const size_t        barrier_migrations_count;

#define PART_DEFAULT_NAME        "participant"
#define PART_DEFAULT_WORKERS     4
#define PART_DEFAULT_CONTEXTS    64
#define PART_DEFAULT_RETENTION_S (7 * 24 * 3600)
#define PART_DEFAULT_PURGE_MS    60000
#define PART_DEFAULT_MAX_BATCH   64
#define PART_MAX_WORKERS         1024
#define PART_MAX_CONTEXTS        65536
#define PART_MAX_BATCH           4096
/* Reconnect backoff of a worker whose database is gone. */
#define PART_BACKOFF_MIN_MS 100
#define PART_BACKOFF_MAX_MS 2000
/* Sagas per purge statement. */
#define PART_PURGE_BATCH 500
/* Bytes of a reply around its output (envelope, error text). */
#define PART_REPLY_SLACK 4096
/* Longest error text sent in a reply. */
#define PART_ERROR_MAX 1024
/* How long the teardown waits for libnng to stop the aios and close the
 * socket. */
#define PART_CLOSE_WAIT_MS 5000

typedef struct part_handler {
	char        *name;
	uint32_t     kind;
	saga_handler fn;
	void        *arg;
} part_handler;

typedef enum part_state {
	W_RECV,
	W_WORK,
	W_SEND,
} part_state;

typedef struct part_ctx part_ctx;

/* One command to run: a request's COMMAND, or one COMMAND of a BATCH. */
typedef struct part_req part_req;
struct part_req {
	part_ctx           *c;
	proto_msg           msg;
	const part_handler *h;
	part_req           *next;   /* work queue link */
	proto_buf           answer; /* in a BATCH: its encoded answer */
};

/* PART_BATCH_MAX is the most messages a BATCH may hold. */
#define PART_BATCH_MAX 1024

struct part_ctx {
	saga_participant *p;
	nng_ctx           ctx;
	nng_aio          *aio;
	part_state        state;
	nng_msg          *req; /* the request's bytes, borrowed by one.msg
	                          and the items' msg */
	part_req          one; /* the request itself */
	/* A BATCH: its messages, and how many still lack an answer (plus
	 * one while they are being queued). */
	part_req         *items;
	size_t            nitems;
	atomic_size_t     pending;
};

typedef struct part_worker {
	saga_participant *p;
	int               id; /* from 1, in logs */
	pthread_t         thr;
	bool              running;
	PGconn           *db;
	const char       *db_sync; /* db's synchronous_commit (static) */
	bool              db_down; /* logged as lost, not back yet */
	int64_t           next_connect_ms;
	int               backoff_ms;
	char              last_err[256];
	struct part_cmd  *cmds; /* max_batch slots: the batch being run */
} part_worker;

struct saga_participant {
	/* Configuration. */
	char        *name;
	char       **listen;
	size_t       nlisten;
	char        *conninfo;
	char        *tls_ca;
	char        *tls_cert;
	char        *tls_key;
	char        *metrics_listen;
	int          nworkers;
	int          ncontexts;
	int64_t      retention_s;
	int64_t      purge_ms;
	int          max_batch;
	proto_limits lim;
	int          log_level;
	bool         log_json; /* log_format "json" */
	/* Handlers: fixed once started. */
	part_handler *handlers;
	size_t        nhandlers;
	size_t        caphandlers;
	/* Serving. */
	bool            started;
	nng_socket      sock;
	bool            sock_open;
	bool            nng_hung; /* nng_close never returned: left as is */
	part_ctx       *ctxs;
	part_worker    *workers;
	pthread_mutex_t mtx;
	pthread_cond_t  work_cv;  /* queue not empty, or stopping */
	pthread_cond_t  purge_cv; /* stopping (the purge's timer) */
	part_req       *qhead;
	part_req       *qtail;
	size_t          qlen;
	atomic_bool     stopping;
	pthread_t       purge_thr;
	bool            purge_running;
	sem_t           stop_sem;
	/* Counters (saga_participant_stats_get). */
	atomic_ullong st_commands;
	atomic_ullong st_batches;
	atomic_ullong st_batches_lost;
	atomic_ullong st_reruns;
	atomic_uint   st_max_batch;
	/* Prometheus metrics (metrics_listen), or NULL. */
	metrics *metrics;
	bool     metrics_served;
};

struct saga_call {
	saga_participant *p;
	const proto_msg  *cmd;
	PGconn           *db;
	char              id[SAGA_ID_STRLEN + 1];
	char             *action;
	char             *saga;
	char             *step_name;
	char              trace[PROTO_TRACEPARENT_LEN + 1];
	proto_doc        *action_out;
	proto_obj        *out;
	/* The handler's result. */
	bool      set;
	int       outcome;
	proto_buf output;
	char     *error;
};

/* One command of a batch, from the queue to its reply. A worker has
 * max_batch of these. */
typedef struct part_cmd {
	part_req     *r;
	saga_call     call;
	bool          ready; /* call made: the command can run */
	bool          alone; /* the only command of its batch */
	bool          rerun; /* undone in a batch by a lock wait or a
	                        transaction error: run again alone */
	barrier_key   key;
	barrier_begin b;
	/* Its settle, when it waits for the next round trip. */
	barrier_deferred later;
	/* The answer, sent only once the batch's transaction has ended. */
	int         outcome;
	proto_raw   output;
	const char *error;
	const char *decision;
	int64_t     t0_us;
	char        errbuf[512];
} part_cmd;

/* ---- Logging ---- */

static const char *const part_level_names[] = {
	"", "", "ERROR", "WARN ", "INFO ", "DEBUG",
};

/* The names of the levels in JSON lines, as sagad's. */
static const char *const part_level_json[] = {
	"", "", "error", "warn", "info", "debug",
};

/* What a line is about, for its JSON fields (and, for lines about a
 * command other than the command's own line, its text prefix
 * "saga=<id> step=<n>[ action=<name>]: "). Zeroed with step -1 and
 * attempt, duration_us and batch -1: nothing. The command's own line
 * (part_log_command) also sets its answer. */
typedef struct part_about {
	const char *saga;  /* the saga id as text, or NULL: no command */
	int64_t     step;  /* -1: none */
	const char *trace; /* the traceparent, or NULL or "" */
	const char *action;
	/* The command's own line. */
	const char *kind;
	int64_t     attempt;
	const char *outcome;
	const char *barrier;
	int64_t     duration_us;
	int64_t     batch;
	int64_t     batch_size;
	const char *error;
} part_about;

#define PART_ABOUT_NONE                                                  \
	{ NULL, -1, NULL, NULL, NULL, -1, NULL, NULL, -1, -1, -1, NULL }

static bool
part_log_enabled(const saga_participant *p, int level)
{
	return (p->log_level != SAGA_PARTICIPANT_LOG_NONE &&
	    level <= p->log_level);
}

/* Writes one JSON line: a map built with the protocol's builder and
 * rendered by libfyaml (log_emit_json), as sagad's log does; never
 * JSON written by hand. Fields: ts, level, program, then what the line is
 * about (saga, step, trace_id, action, and for a command's own line
 * kind, attempt, outcome, barrier, duration_ms, batch, batch_size,
 * error), event (the message's upper-case tag) and msg. */
static void
part_log_json(const saga_participant *p, int level, const char *ts,
    const part_about *a, const char *msg)
{
	proto_obj *o  = NULL;
	int        rv = 0;

	if (proto_obj_alloc(&o) != 0) {
		return;
	}
	rv |= proto_obj_put_str(o, "ts", ts);
	rv |= proto_obj_put_str(o, "level", part_level_json[level]);
	rv |= log_put_str(o, "program", p->name, strlen(p->name));
	if (a->saga != NULL) {
		rv |= proto_obj_put_str(o, "saga", a->saga);
		if (a->step >= 0) {
			rv |= proto_obj_put_int(o, "step", a->step);
		}
		if (a->trace != NULL && strlen(a->trace) >= 35) {
			/* The trace id is the second field of traceparent. */
			rv |= log_put_str(o, "trace_id", a->trace + 3, 32);
		}
	}
	if (a->kind != NULL) {
		rv |= proto_obj_put_str(o, "kind", a->kind);
	}
	if (a->attempt >= 0) {
		rv |= proto_obj_put_int(o, "attempt", a->attempt);
	}
	if (a->action != NULL) {
		rv |= log_put_str(o, "action", a->action, strlen(a->action));
	}
	if (a->outcome != NULL) {
		rv |= proto_obj_put_str(o, "outcome", a->outcome);
	}
	if (a->barrier != NULL) {
		rv |= proto_obj_put_str(o, "barrier", a->barrier);
	}
	if (a->duration_us >= 0) {
		rv |= proto_obj_put_float(
		    o, "duration_ms", (double) a->duration_us / 1000.0);
	}
	if (a->batch >= 0) {
		rv |= proto_obj_put_int(o, "batch", a->batch);
		rv |= proto_obj_put_int(o, "batch_size", a->batch_size);
	}
	if (a->error != NULL && a->error[0] != '\0') {
		rv |= log_put_str(
		    o, "error", a->error, strcspn(a->error, "\n"));
	}
	if (rv == 0) {
		(void) log_emit_json(o, msg);
	}
	proto_obj_free(o);
}

/* Writes one line about a (may be NULL) with message msg: in text
 * "<time> <LEVEL> <name>: [saga=<id> step=<n>[ action=<name>]: ]<msg>",
 * in one write so that threads do not interleave; in JSON, part_log_json.
 */
static void
part_log_line(const saga_participant *p, int level, const part_about *a,
    const char *msg)
{
	static const part_about none = PART_ABOUT_NONE;
	char                    line[2048];
	struct timespec         ts;
	struct tm               tm;
	size_t                  n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	if (p->log_json) {
		snprintf(line + n, sizeof(line) - n, ".%03ldZ",
		    ts.tv_nsec / 1000000);
		part_log_json(p, level, line, a != NULL ? a : &none, msg);
		return;
	}
	n += (size_t) snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s: ",
	    ts.tv_nsec / 1000000, part_level_names[level], p->name);
	if (n < sizeof(line) && a != NULL && a->saga != NULL) {
		n += (size_t) snprintf(line + n, sizeof(line) - n,
		    "saga=%s step=%lld%s%s: ", a->saga, (long long) a->step,
		    a->action != NULL ? " action=" : "",
		    a->action != NULL ? a->action : "");
	}
	if (n < sizeof(line) - 1) {
		/* One line, whatever a handler's text holds. The line feed's
		 * byte is kept out: cutting for it below would drop the last
		 * byte of an escape or a character. */
		(void) log_text_escape(line + n, sizeof(line) - 1 - n, msg);
	}
	n = strlen(line);
	if (n > sizeof(line) - 2) {
		n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	line[n]   = '\0';
	fputs(line, stderr);
}

/* Formats and writes one line about a (may be NULL). */
static void part_log_about(const saga_participant *p, int level,
    const part_about *a, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
part_log_about(const saga_participant *p, int level, const part_about *a,
    const char *fmt, ...)
{
	char    msg[2048];
	va_list ap;

	if (!part_log_enabled(p, level)) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	part_log_line(p, level, a, msg);
}

/* Writes one line "<time> <LEVEL> <name>: <message>" (or its JSON). */
#define part_log(p, level, ...) part_log_about(p, level, NULL, __VA_ARGS__)

/* The saga id, step, traceparent and action of call, for a line about
 * it. */
static part_about
part_about_call(const saga_call *call, uint32_t step)
{
	part_about a = PART_ABOUT_NONE;

	a.saga   = call->id;
	a.step   = step;
	a.trace  = call->trace;
	a.action = call->action;
	return (a);
}

/* Stores a one-line reason in err and logs it at ERROR. Returns code. */
static int part_fail(const saga_participant *p, char *err, size_t errlen,
    int code, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
part_fail(const saga_participant *p, char *err, size_t errlen, int code,
    const char *fmt, ...)
{
	char    buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	buf[strcspn(buf, "\n")] = '\0';
	if (err != NULL && errlen > 0) {
		snprintf(err, errlen, "%s", buf);
	}
	if (p != NULL) {
		part_log(p, SAGA_PARTICIPANT_LOG_ERROR, "%s", buf);
	}
	return (code);
}

static int64_t
part_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* The wall clock, in Unix ms (saga ids carry their start in it). */
static int64_t
part_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static int64_t
part_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

/* ---- Configuration and registration ---- */

static void
part_free_config(saga_participant *p)
{
	free(p->name);
	for (size_t i = 0; i < p->nlisten; i++) {
		free(p->listen[i]);
	}
	free(p->listen);
	free(p->conninfo);
	free(p->tls_ca);
	free(p->tls_cert);
	free(p->tls_key);
	free(p->metrics_listen);
	metrics_free(p->metrics);
	for (size_t i = 0; i < p->nhandlers; i++) {
		free(p->handlers[i].name);
	}
	free(p->handlers);
}

/* ---- Metrics ---- */

static const double part_batch_buckets[] = { 1, 2, 4, 8, 16, 32, 64, 128,
	256, 512, 1024, 4096 };

/* The registry and its families (saga/participant.h, metrics_listen).
 * Returns 0 or SAGA_ENOMEM. */
static int
part_metrics_init(saga_participant *p)
{
	metrics *m;

	if (metrics_alloc(&p->metrics) != 0) {
		return (SAGA_ENOMEM);
	}
	m = p->metrics;
	if (metrics_family(m, "saga_participant_commands_total",
	        METRIC_COUNTER,
	        "Commands answered, by action, kind and outcome.", NULL,
	        0) != 0 ||
	    metrics_family(m, "saga_participant_barrier_total",
	        METRIC_COUNTER,
	        "Barrier decisions: run, replay (a duplicate), null, refuse, "
	        "retry, none (not reached).",
	        NULL, 0) != 0 ||
	    metrics_family(m, "saga_participant_handler_seconds",
	        METRIC_HISTOGRAM, "Run time of the handlers, by action.", NULL,
	        0) != 0 ||
	    metrics_family(m, "saga_participant_batches_total", METRIC_COUNTER,
	        "Batches: commands run in one transaction.", NULL, 0) != 0 ||
	    metrics_family(m, "saga_participant_batches_lost_total",
	        METRIC_COUNTER,
	        "Batches whose transaction was lost (every command answered "
	        "retry).",
	        NULL, 0) != 0 ||
	    metrics_family(m, "saga_participant_reruns_total", METRIC_COUNTER,
	        "Commands undone in a batch by an SQL error (a lock wait, "
	        "a deadlock) and run again alone.",
	        NULL, 0) != 0 ||
	    metrics_family(m, "saga_participant_batch_size", METRIC_HISTOGRAM,
	        "Commands per batch.", part_batch_buckets,
	        sizeof(part_batch_buckets) / sizeof(part_batch_buckets[0])) !=
	        0 ||
	    metrics_family(m, "saga_participant_queued", METRIC_GAUGE,
	        "Commands waiting for a worker.", NULL, 0) != 0) {
		return (SAGA_ENOMEM);
	}
	/* Present from the start, so that a scrape shows zeros. */
	metrics_add(m, "saga_participant_batches_total", "", 0);
	metrics_add(m, "saga_participant_batches_lost_total", "", 0);
	metrics_add(m, "saga_participant_reruns_total", "", 0);
	metrics_set(m, "saga_participant_queued", "", 0);
	return (0);
}

/* part_metrics_cmd counts one answered command. */
static void
part_metrics_cmd(saga_participant *p, const part_cmd *pc)
{
	const proto_msg *cmd  = &pc->r->msg;
	const char      *kind = proto_kind_name(cmd->kind);
	char             labels[1024]; /* an action of 255 bytes escaped */
	char             action[256];

	snprintf(action, sizeof(action), "%.*s", (int) cmd->action.len,
	    cmd->action.ptr != NULL ? cmd->action.ptr : "");
	metrics_add(p->metrics, "saga_participant_commands_total",
	    metrics_labels(labels, sizeof(labels), "action", action, "kind",
	        kind, "outcome", proto_outcome_name((uint32_t) pc->outcome),
	        NULL),
	    1);
	metrics_add(p->metrics, "saga_participant_barrier_total",
	    metrics_labels(labels, sizeof(labels), "kind", kind, "decision",
	        pc->decision, NULL),
	    1);
}

int
saga_participant_new(saga_participant **out,
    const saga_participant_config *cfg, char *err, size_t errlen)
{
	saga_participant *p = NULL;
	size_t            n = 0;
	int               rv;

	if (cfg == NULL || cfg->conninfo == NULL || cfg->conninfo[0] == '\0') {
		return (part_fail(NULL, err, errlen, SAGA_ECONFIG,
		    "participant: conninfo is required"));
	}
	if (cfg->listen != NULL) {
		while (cfg->listen[n] != NULL) {
			if (cfg->listen[n][0] == '\0') {
				return (part_fail(NULL, err, errlen,
				    SAGA_ECONFIG,
				    "participant: listen URL %zu is empty",
				    n + 1));
			}
			n++;
		}
	}
	if (n == 0) {
		return (part_fail(NULL, err, errlen, SAGA_ECONFIG,
		    "participant: at least one listen URL is required"));
	}
	if (cfg->workers < 0 || cfg->workers > PART_MAX_WORKERS) {
		return (part_fail(NULL, err, errlen, SAGA_ECONFIG,
		    "participant: invalid value %d for workers "
		    "(expected 1..%d, or 0 for %d)",
		    cfg->workers, PART_MAX_WORKERS, PART_DEFAULT_WORKERS));
	}
	if (cfg->contexts < 0 || cfg->contexts > PART_MAX_CONTEXTS) {
		return (part_fail(NULL, err, errlen, SAGA_ECONFIG,
		    "participant: invalid value %d for contexts "
		    "(expected 1..%d, or 0 for %d)",
		    cfg->contexts, PART_MAX_CONTEXTS, PART_DEFAULT_CONTEXTS));
	}
	if (cfg->retention_s < -1 || cfg->purge_interval_ms < 0) {
		return (part_fail(NULL, err, errlen, SAGA_ECONFIG,
		    "participant: invalid retention (%lld s, expected -1 or "
		    "more) or purge interval (%lld ms, expected 0 or more)",
		    (long long) cfg->retention_s,
		    (long long) cfg->purge_interval_ms));
	}
	if (cfg->max_msg_bytes != 0 &&
	    cfg->max_msg_bytes < 2 * PART_REPLY_SLACK) {
		return (part_fail(NULL, err, errlen, SAGA_ECONFIG,
		    "participant: invalid value %zu for max_msg_bytes "
		    "(expected at least %d)",
		    cfg->max_msg_bytes, 2 * PART_REPLY_SLACK));
	}
	if (cfg->max_batch < 0 || cfg->max_batch > PART_MAX_BATCH) {
		return (part_fail(NULL, err, errlen, SAGA_ECONFIG,
		    "participant: invalid value %d for max_batch "
		    "(expected 1..%d, or 0 for %d)",
		    cfg->max_batch, PART_MAX_BATCH, PART_DEFAULT_MAX_BATCH));
	}
	if (cfg->log_level < 0 ||
	    cfg->log_level > SAGA_PARTICIPANT_LOG_DEBUG) {
		return (part_fail(NULL, err, errlen, SAGA_ECONFIG,
		    "participant: invalid log level %d", cfg->log_level));
	}
	if (cfg->log_format != NULL && cfg->log_format[0] != '\0' &&
	    strcmp(cfg->log_format, "text") != 0 &&
	    strcmp(cfg->log_format, "json") != 0) {
		return (part_fail(NULL, err, errlen, SAGA_ECONFIG,
		    "participant: invalid log_format \"%s\" (expected "
		    "\"text\" or \"json\")",
		    cfg->log_format));
	}

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		return (SAGA_ENOMEM);
	}
	p->name = strdup(cfg->name != NULL && cfg->name[0] != '\0'
	        ? cfg->name
	        : PART_DEFAULT_NAME);
	p->conninfo = strdup(cfg->conninfo);
	p->listen   = calloc(n, sizeof(char *));
	if (p->name == NULL || p->conninfo == NULL || p->listen == NULL) {
		goto nomem;
	}
	if ((cfg->tls_ca != NULL &&
	        (p->tls_ca = strdup(cfg->tls_ca)) == NULL) ||
	    (cfg->tls_cert != NULL &&
	        (p->tls_cert = strdup(cfg->tls_cert)) == NULL) ||
	    (cfg->tls_key != NULL &&
	        (p->tls_key = strdup(cfg->tls_key)) == NULL) ||
	    (cfg->metrics_listen != NULL && cfg->metrics_listen[0] != '\0' &&
	        ((p->metrics_listen = strdup(cfg->metrics_listen)) == NULL ||
	            part_metrics_init(p) != 0))) {
		goto nomem;
	}
	for (p->nlisten = 0; p->nlisten < n; p->nlisten++) {
		p->listen[p->nlisten] = strdup(cfg->listen[p->nlisten]);
		if (p->listen[p->nlisten] == NULL) {
			goto nomem;
		}
	}
	p->nworkers  = cfg->workers > 0 ? cfg->workers : PART_DEFAULT_WORKERS;
	p->ncontexts = cfg->contexts > 0 ? cfg->contexts
	                                 : PART_DEFAULT_CONTEXTS;
	if (p->ncontexts < p->nworkers) {
		/* Fewer contexts would leave workers idle for good. */
		p->ncontexts = p->nworkers;
	}
	p->retention_s = cfg->retention_s != 0 ? cfg->retention_s
	                                       : PART_DEFAULT_RETENTION_S;
	p->purge_ms  = cfg->purge_interval_ms > 0 ? cfg->purge_interval_ms
	                                          : PART_DEFAULT_PURGE_MS;
	p->max_batch = cfg->max_batch > 0 ? cfg->max_batch
	                                  : PART_DEFAULT_MAX_BATCH;
	p->lim       = proto_limits_default();
	if (cfg->max_msg_bytes != 0) {
		p->lim.max_msg_bytes = cfg->max_msg_bytes;
	}
	p->log_level = cfg->log_level != SAGA_PARTICIPANT_LOG_DEFAULT
	    ? cfg->log_level
	    : SAGA_PARTICIPANT_LOG_INFO;
	p->log_json = cfg->log_format != NULL &&
	    strcmp(cfg->log_format, "json") == 0;
	atomic_init(&p->stopping, false);
	atomic_init(&p->st_commands, 0);
	atomic_init(&p->st_batches, 0);
	atomic_init(&p->st_batches_lost, 0);
	atomic_init(&p->st_reruns, 0);
	atomic_init(&p->st_max_batch, 0);

	if ((rv = pthread_mutex_init(&p->mtx, NULL)) != 0) {
		goto nomem;
	}
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		/* The purge waits on a monotonic clock. */
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (pthread_cond_init(&p->work_cv, NULL) != 0 ||
		    pthread_cond_init(&p->purge_cv, &ca) != 0 ||
		    sem_init(&p->stop_sem, 0, 0) != 0) {
			/* Not reached on Linux (these do not fail). */
			pthread_condattr_destroy(&ca);
			abort();
		}
		pthread_condattr_destroy(&ca);
	}
	*out = p;
	return (0);

nomem:
	part_free_config(p);
	free(p);
	return (SAGA_ENOMEM);
}

static const part_handler *
part_find(const saga_participant *p, uint32_t kind, proto_str name)
{
	for (size_t i = 0; i < p->nhandlers; i++) {
		if (p->handlers[i].kind == kind &&
		    proto_str_eq(name, p->handlers[i].name)) {
			return (&p->handlers[i]);
		}
	}
	return (NULL);
}

static int
part_register(saga_participant *p, uint32_t kind, const char *name,
    saga_handler fn, void *arg)
{
	part_handler *h;

	if (p == NULL || name == NULL || name[0] == '\0' || fn == NULL) {
		return (SAGA_EINVAL);
	}
	if (p->started) {
		return (SAGA_ESTATE);
	}
	if (part_find(p, kind, proto_str_c(name)) != NULL) {
		return (SAGA_EEXIST);
	}
	if (p->nhandlers == p->caphandlers) {
		size_t cap = p->caphandlers ? p->caphandlers * 2 : 8;

		if ((h = realloc(p->handlers, cap * sizeof(*h))) == NULL) {
			return (SAGA_ENOMEM);
		}
		p->handlers    = h;
		p->caphandlers = cap;
	}
	h = &p->handlers[p->nhandlers];
	if ((h->name = strdup(name)) == NULL) {
		return (SAGA_ENOMEM);
	}
	h->kind = kind;
	h->fn   = fn;
	h->arg  = arg;
	p->nhandlers++;
	return (0);
}

int
saga_participant_on_action(
    saga_participant *p, const char *name, saga_handler fn, void *arg)
{
	return (part_register(p, BARRIER_ACTION, name, fn, arg));
}

int
saga_participant_on_compensation(
    saga_participant *p, const char *name, saga_handler fn, void *arg)
{
	return (part_register(p, BARRIER_COMPENSATION, name, fn, arg));
}

/* ---- Database connections ---- */

/* Server notices (e.g. "there is no transaction in progress") go to the
 * debug log. */
static void
part_notice_cb(void *arg, const char *message)
{
	saga_participant *p = arg;

	if (part_log_enabled(p, SAGA_PARTICIPANT_LOG_DEBUG)) {
		part_log(p, SAGA_PARTICIPANT_LOG_DEBUG, "database: %.*s",
		    (int) strcspn(message, "\n"), message);
	}
}

/* Connects to the participant's database; with prepare, also prepares the
 * barrier's statements. A synchronous_commit of off (the database's, the
 * role's, PGOPTIONS) is turned on for the session, with a warning: an
 * answer must not leave for a COMMIT a crash can lose. Stores the
 * session's synchronous_commit in *sync (may be NULL) for
 * barrier_sql_tx_commit. Returns 0 or SAGA_EUNAVAIL (reason in err). */
static int
part_connect(saga_participant *p, PGconn **out, const char **sync,
    bool prepare, char *err, size_t errlen)
{
	PGconn     *db;
	const char *level;
	bool        raised;

	/* Bounded waits, as sagad's, which the conninfo may override. */
	if ((db = sql_conn_open(p->conninfo, p->name)) == NULL) {
		snprintf(err, errlen, "database: out of memory");
		return (SAGA_EUNAVAIL);
	}
	if (PQstatus(db) != CONNECTION_OK) {
		snprintf(err, errlen, "database unavailable: %s",
		    PQerrorMessage(db));
		err[strcspn(err, "\n")] = '\0';
		PQfinish(db);
		return (SAGA_EUNAVAIL);
	}
	PQsetNoticeProcessor(db, part_notice_cb, p);
	if (sql_durable_check(db, &level, &raised, err, errlen) != 0 ||
	    (prepare && barrier_sql_prepare(db, err, errlen) != 0)) {
		PQfinish(db);
		return (SAGA_EUNAVAIL);
	}
	if (raised) {
		part_log(p, SAGA_PARTICIPANT_LOG_WARN,
		    "PARTICIPANT-SYNC-COMMIT synchronous_commit is off for "
		    "this connection's database, role or options; set to on "
		    "for it (an answer must not leave for a commit a crash "
		    "can lose): see docs/operations.md");
	}
	if (sync != NULL) {
		*sync = level;
	}
	*out = db;
	return (0);
}

/* Makes sure the worker has a usable connection: reconnects when it has
 * none and its backoff allows. Returns 0, or SAGA_EUNAVAIL with the
 * reason in err. */
static int
part_worker_db(part_worker *w, char *err, size_t errlen)
{
	saga_participant *p = w->p;
	int64_t           now;

	if (w->db != NULL && PQstatus(w->db) == CONNECTION_OK) {
		return (0);
	}
	if (w->db != NULL) {
		snprintf(w->last_err, sizeof(w->last_err),
		    "database connection lost: %s", PQerrorMessage(w->db));
		w->last_err[strcspn(w->last_err, "\n")] = '\0';
		PQfinish(w->db);
		w->db = NULL;
	}
	now = part_now_ms();
	if (now < w->next_connect_ms) {
		snprintf(err, errlen, "%s (reconnecting)", w->last_err);
		return (SAGA_EUNAVAIL);
	}
	if (part_connect(p, &w->db, &w->db_sync, true, w->last_err,
	        sizeof(w->last_err)) != 0) {
		w->backoff_ms = w->backoff_ms == 0
		    ? PART_BACKOFF_MIN_MS
		    : (w->backoff_ms * 2 > PART_BACKOFF_MAX_MS
		              ? PART_BACKOFF_MAX_MS
		              : w->backoff_ms * 2);
		w->next_connect_ms = now + w->backoff_ms;
		if (!w->db_down) {
			w->db_down = true;
			part_log(p, SAGA_PARTICIPANT_LOG_WARN,
			    "PARTICIPANT-DB-DOWN %s; answering retry",
			    w->last_err);
		}
		snprintf(err, errlen, "%s", w->last_err);
		return (SAGA_EUNAVAIL);
	}
	if (w->db_down) {
		w->db_down = false;
		part_log(p, SAGA_PARTICIPANT_LOG_WARN,
		    "PARTICIPANT-DB-UP database reachable again");
	}
	w->backoff_ms = 0;
	return (0);
}

/* After a batch: a broken connection is dropped, to be made again at the
 * next command; so is one that is not idle any more (a handler left a
 * COPY or a pipeline open, or the rollback failed): a batch must start on
 * a clean connection. */
static void
part_worker_check(part_worker *w)
{
	if (w->db == NULL) {
		return;
	}
	if (PQstatus(w->db) != CONNECTION_OK) {
		snprintf(w->last_err, sizeof(w->last_err),
		    "database connection lost: %s", PQerrorMessage(w->db));
		w->last_err[strcspn(w->last_err, "\n")] = '\0';
		if (!w->db_down) {
			w->db_down = true;
			part_log(w->p, SAGA_PARTICIPANT_LOG_WARN,
			    "PARTICIPANT-DB-DOWN %s; answering retry",
			    w->last_err);
		}
	} else if (PQtransactionStatus(w->db) != PQTRANS_IDLE ||
	    PQpipelineStatus(w->db) != PQ_PIPELINE_OFF) {
		part_log(w->p, SAGA_PARTICIPANT_LOG_ERROR,
		    "worker %d: the connection was left busy (by a handler?);"
		    " reconnecting",
		    w->id);
	} else {
		return;
	}
	PQfinish(w->db);
	w->db              = NULL;
	w->next_connect_ms = 0;
}

/* ---- Migrations ---- */

static int
part_migrate(saga_participant *p, const char *set, const sql_migration *migs,
    size_t n, int *applied, char *err, size_t errlen)
{
	PGconn *db = NULL;
	char    buf[512];
	int     count = 0;
	int     rv;

	if ((rv = part_connect(p, &db, NULL, false, buf, sizeof(buf))) != 0) {
		return (part_fail(p, err, errlen, SAGA_EDB, "migrate %s: %s",
		    set, buf));
	}
	PQclear(PQexec(db, "SET client_min_messages = warning"));
	rv = sql_migrate_apply(db, set, migs, n, &count, buf, sizeof(buf));
	PQfinish(db);
	if (rv != 0) {
		return (part_fail(p, err, errlen, rv, "migrate %s: %s", set,
		    buf));
	}
	if (count > 0) {
		part_log(p, SAGA_PARTICIPANT_LOG_INFO,
		    "PARTICIPANT-MIGRATE applied %d migration%s of set %s",
		    count, count == 1 ? "" : "s", set);
	}
	if (applied != NULL) {
		*applied = count;
	}
	return (0);
}

int
saga_participant_migrate(saga_participant *p, char *err, size_t errlen)
{
	return (part_migrate(p, "barrier", barrier_migrations,
	    barrier_migrations_count, NULL, err, errlen));
}

int
saga_participant_migrate_set(saga_participant *p, const char *set,
    const saga_migration *migs, size_t n, int *applied, char *err,
    size_t errlen)
{
	sql_migration *copy;
	int            rv;

	if (set == NULL || set[0] == '\0' || strcmp(set, "barrier") == 0) {
		return (part_fail(p, err, errlen, SAGA_EINVAL,
		    "migrate: the set name must be non-empty and not "
		    "\"barrier\" (the library's own)"));
	}
	if (n > 0 && migs == NULL) {
		return (part_fail(p, err, errlen, SAGA_EINVAL,
		    "migrate %s: no migrations given", set));
	}
	for (size_t i = 0; i < n; i++) {
		if (migs[i].name == NULL || migs[i].sql == NULL) {
			return (part_fail(p, err, errlen, SAGA_EINVAL,
			    "migrate %s: migration %zu has no name or SQL",
			    set, i + 1));
		}
	}
	if ((copy = calloc(n + 1, sizeof(*copy))) == NULL) {
		return (SAGA_ENOMEM);
	}
	for (size_t i = 0; i < n; i++) {
		copy[i].version = migs[i].version;
		copy[i].name    = migs[i].name;
		copy[i].sql     = migs[i].sql;
	}
	rv = part_migrate(p, set, copy, n, applied, err, errlen);
	free(copy);
	return (rv);
}

/* ---- Handler calls ---- */

const saga_id *
saga_call_id(const saga_call *call)
{
	return (&call->cmd->id);
}

const char *
saga_call_id_text(const saga_call *call)
{
	return (call->id);
}

uint32_t
saga_call_step(const saga_call *call)
{
	return (call->cmd->step);
}

uint32_t
saga_call_attempt(const saga_call *call)
{
	return (call->cmd->attempt);
}

int
saga_call_kind(const saga_call *call)
{
	return ((int) call->cmd->kind);
}

const char *
saga_call_action(const saga_call *call)
{
	return (call->action);
}

const char *
saga_call_saga(const saga_call *call)
{
	return (call->saga);
}

const char *
saga_call_step_name(const saga_call *call)
{
	return (call->step_name);
}

const char *
saga_call_traceparent(const saga_call *call)
{
	return (call->trace);
}

/* The level of a public log call, or 0 when it is not one to write. */
static int
part_log_public_level(const saga_participant *p, int level)
{
	if (level < SAGA_PARTICIPANT_LOG_ERROR ||
	    level > SAGA_PARTICIPANT_LOG_DEBUG ||
	    !part_log_enabled(p, level)) {
		return (0);
	}
	return (level);
}

void
saga_participant_log(saga_participant *p, int level, const char *fmt, ...)
{
	char    msg[2048];
	va_list ap;

	if (p == NULL || (level = part_log_public_level(p, level)) == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	msg[strcspn(msg, "\n")] = '\0';
	part_log_line(p, level, NULL, msg);
}

void
saga_call_log(const saga_call *call, int level, const char *fmt, ...)
{
	part_about a;
	char       msg[2048];
	va_list    ap;

	if ((level = part_log_public_level(call->p, level)) == 0) {
		return;
	}
	a = part_about_call(call, call->cmd->step);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	msg[strcspn(msg, "\n")] = '\0';
	part_log_line(call->p, level, &a, msg);
}

int64_t
saga_call_deadline_ms(const saga_call *call)
{
	return (call->cmd->deadline_ms);
}

const proto_val *
saga_call_context(const saga_call *call)
{
	return (call->cmd->context_val);
}

const proto_val *
saga_call_input(const saga_call *call)
{
	return (proto_val_get(call->cmd->context_val, "input"));
}

const proto_val *
saga_call_output_of(const saga_call *call, const char *step_name)
{
	/* Two lookups, not proto_val_path: a step name may hold dots. */
	return (proto_val_get(
	    proto_val_get(call->cmd->context_val, "steps"), step_name));
}

const proto_val *
saga_call_action_output(const saga_call *call)
{
	return (call->action_out != NULL ? proto_doc_root(call->action_out)
	                                 : NULL);
}

PGconn *
saga_call_db(const saga_call *call)
{
	return (call->db);
}

proto_obj *
saga_call_output(saga_call *call)
{
	if (call->out == NULL && proto_obj_alloc(&call->out) != 0) {
		return (NULL);
	}
	proto_obj_reset(call->out);
	return (call->out);
}

int
saga_call_ok(saga_call *call, const proto_obj *output)
{
	proto_limits lim;
	int          rv;

	if (call->set) {
		return (SAGA_ESTATE);
	}
	proto_buf_reset(&call->output);
	if (output != NULL && proto_obj_count(output) > 0) {
		if ((rv = proto_obj_encode(output, &call->output)) != 0) {
			proto_buf_reset(&call->output);
			return (rv);
		}
		if (call->output.len + PART_REPLY_SLACK >
		    call->p->lim.max_msg_bytes) {
			proto_buf_reset(&call->output);
			return (SAGA_ETOOBIG);
		}
		/* Refused now, before the barrier records it: an output
		 * that sagad cannot decode in a REPLY, or that a COMMAND
		 * cannot carry in its context, could never be reported,
		 * and every delivery would replay it. */
		lim = call->p->lim;
		if (lim.max_depth > PROTO_OUTPUT_MAX_DEPTH) {
			lim.max_depth = PROTO_OUTPUT_MAX_DEPTH;
		}
		if ((rv = proto_raw_validate(proto_buf_raw(&call->output),
		         &lim, NULL)) != 0) {
			proto_buf_reset(&call->output);
			return (rv);
		}
	}
	call->set     = true;
	call->outcome = PROTO_OUTCOME_OK;
	return (0);
}

static int
saga_call_set_error(saga_call *call, int outcome, const char *fmt, va_list ap)
{
	char *text = NULL;

	if (call->set) {
		return (SAGA_ESTATE);
	}
	if (fmt == NULL || fmt[0] == '\0') {
		text = strdup(outcome == PROTO_OUTCOME_FAILED
		        ? "business failure"
		        : "transient failure");
	} else if (vasprintf(&text, fmt, ap) < 0) {
		text = NULL;
	}
	if (text == NULL) {
		return (SAGA_ENOMEM);
	}
	if (strlen(text) > PART_ERROR_MAX) {
		text[PART_ERROR_MAX] = '\0';
	}
	/* Valid UTF-8, or PostgreSQL refuses it in the barrier row (a
	 * character cut above, a handler's text in another encoding) and
	 * a business failure turns into retry; sagad refuses it too. */
	log_utf8_fix(text, strlen(text));
	free(call->error);
	call->error   = text;
	call->set     = true;
	call->outcome = outcome;
	return (0);
}

int
saga_call_fail(saga_call *call, const char *fmt, ...)
{
	va_list ap;
	int     rv;

	va_start(ap, fmt);
	rv = saga_call_set_error(call, PROTO_OUTCOME_FAILED, fmt, ap);
	va_end(ap);
	return (rv);
}

int
saga_call_retry(saga_call *call, const char *fmt, ...)
{
	va_list ap;
	int     rv;

	va_start(ap, fmt);
	rv = saga_call_set_error(call, PROTO_OUTCOME_RETRY, fmt, ap);
	va_end(ap);
	return (rv);
}

static int
part_call_init(saga_call *call, saga_participant *p, const proto_msg *cmd)
{
	memset(call, 0, sizeof(*call));
	call->p   = p;
	call->cmd = cmd;
	proto_buf_init(&call->output);
	saga_id_format(&cmd->id, call->id);
	snprintf(call->trace, sizeof(call->trace), "%.*s",
	    (int) cmd->traceparent.len,
	    cmd->traceparent.ptr != NULL ? cmd->traceparent.ptr : "");
	call->action    = proto_str_dup(cmd->action);
	call->saga      = proto_str_dup(cmd->saga);
	call->step_name = proto_str_dup(cmd->step_name);
	if (call->action == NULL || call->saga == NULL ||
	    call->step_name == NULL) {
		return (SAGA_ENOMEM);
	}
	return (0);
}

static void
part_call_fini(saga_call *call)
{
	free(call->action);
	free(call->saga);
	free(call->step_name);
	free(call->error);
	proto_doc_free(call->action_out);
	proto_obj_free(call->out);
	proto_buf_fini(&call->output);
}

/* ---- Serving ---- */

/* Frees what c's request holds: its messages, a BATCH's items. */
static void
part_ctx_release(part_ctx *c)
{
	for (size_t i = 0; i < c->nitems; i++) {
		proto_msg_fini(&c->items[i].msg);
		proto_buf_fini(&c->items[i].answer);
	}
	free(c->items);
	c->items  = NULL;
	c->nitems = 0;
	proto_msg_fini(&c->one.msg);
	c->one.h = NULL;
	nng_msg_free(c->req);
	c->req = NULL;
}

/* Encodes reply into buf (an ERROR saying so if it cannot be encoded). */
static void
part_encode_reply(saga_participant *p, const proto_msg *reply, proto_buf *buf)
{
	size_t mark = buf->len;
	int    rv;

	if ((rv = proto_msg_encode(reply, buf)) != 0) {
		proto_msg err;

		part_log(p, SAGA_PARTICIPANT_LOG_ERROR,
		    "cannot encode a %s reply: %s",
		    proto_type_name(reply->type), saga_strerror(rv));
		proto_msg_error_init(&err, NULL, SAGA_EINTERNAL,
		    "internal error encoding the reply");
		buf->len = mark;
		(void) proto_msg_encode(&err, buf);
	}
}

/* Sends the bytes of buf (freed) as the answer to c's request, which is
 * released; c receives again once the send completes. Any thread. */
static void
part_ctx_send(part_ctx *c, proto_buf *buf)
{
	nng_msg *m = NULL;

	part_ctx_release(c);
	if (nng_msg_alloc(&m, 0) != 0 ||
	    nng_msg_append(m, buf->data, buf->len) != 0) {
		/* No memory for a reply: receive the next request; sagad
		 * times out and resends. */
		nng_msg_free(m);
		proto_buf_fini(buf);
		c->state = W_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	proto_buf_fini(buf);
	c->state = W_SEND;
	nng_aio_set_msg(c->aio, m);
	nng_ctx_send(c->ctx, c->aio);
}

/* Encodes reply and sends it on c, which then receives again once the
 * send completes. Frees the request. Any thread. */
static void
part_ctx_reply(part_ctx *c, const proto_msg *reply)
{
	proto_buf buf;

	proto_buf_init(&buf);
	part_encode_reply(c->p, reply, &buf);
	part_ctx_send(c, &buf);
}

/* One more message of c's BATCH has its answer; the last one sends the
 * BATCH_REPLY: every answer, in the order of the BATCH. Any thread. */
static void
part_ctx_batch_done(part_ctx *c)
{
	proto_buf msgs, buf;
	proto_msg r;

	if (atomic_fetch_sub(&c->pending, 1) != 1) {
		return;
	}
	proto_buf_init(&msgs);
	proto_buf_init(&buf);
	for (size_t i = 0; i < c->nitems; i++) {
		if (proto_buf_append(&msgs, c->items[i].answer.data,
		        c->items[i].answer.len) != 0) {
			proto_buf_fini(&msgs);
			proto_msg_error_init(&r, NULL, SAGA_ENOMEM,
			    "out of memory building the BATCH_REPLY");
			part_ctx_reply(c, &r);
			return;
		}
	}
	proto_msg_init(&r);
	r.type = PROTO_T_BATCH_REPLY;
	r.msgs = proto_buf_raw(&msgs);
	part_encode_reply(c->p, &r, &buf);
	proto_buf_fini(&msgs);
	part_ctx_send(c, &buf);
}

/* Answers r with reply: a request alone at once; a message of a BATCH
 * keeps its answer until every message of the BATCH has one. Any
 * thread. */
static void
part_req_reply(part_req *r, const proto_msg *reply)
{
	if (r != &r->c->one) {
		part_encode_reply(r->c->p, reply, &r->answer);
		part_ctx_batch_done(r->c);
		return;
	}
	part_ctx_reply(r->c, reply);
}

/* Answers r with an ERROR; echo tells whether r was decoded (its id,
 * step, attempt and kind are echoed). */
static void
part_req_error(part_req *r, bool echo, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
part_req_error(part_req *r, bool echo, int code, const char *fmt, ...)
{
	char      text[512];
	proto_msg e;
	va_list   ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* A long name echoed may be cut inside a character: the ERROR
	 * would not encode, and EINTERNAL go instead. */
	proto_utf8_trim(text);
	part_log(r->c->p, SAGA_PARTICIPANT_LOG_WARN,
	    "refused a request: %s: %s", saga_errname(code), text);
	proto_msg_error_init(&e, echo ? &r->msg : NULL, code, text);
	part_req_reply(r, &e);
}

/* Forgets c's request without answering (shutting down). */
static void
part_ctx_drop(part_ctx *c)
{
	part_ctx_release(c);
	c->state = W_RECV;
}

/* Checks the decoded COMMAND of r and finds its handler. Returns false
 * when it cannot run, answered with an ERROR. nng thread. */
static bool
part_req_accept(saga_participant *p, part_req *r)
{
	const proto_msg *m = &r->msg;

	/* The decoder refuses an empty required string already (EMISSING,
	 * docs/protocol.md): a guard, with the same code, should it ever
	 * let one through. */
	if (m->action.len == 0 || m->saga.len == 0 || m->step_name.len == 0) {
		part_req_error(r, true, SAGA_EMISSING,
		    "COMMAND: field \"%s\" is empty",
		    m->action.len == 0 ? "action"
		        : m->saga.len == 0 ? "saga"
		                           : "step_name");
		return (false);
	}
	/* The barrier keeps the step as a PostgreSQL integer: a step it
	 * cannot hold would fail its insert at every delivery (retry
	 * without end) instead of being refused. sagad numbers steps from
	 * 0 and never sends one this large. */
	if (m->step > INT32_MAX) {
		part_req_error(r, true, SAGA_ERANGE,
		    "COMMAND: step %u is out of range (at most %d)", m->step,
		    INT32_MAX);
		return (false);
	}
	if ((r->h = part_find(p, m->kind, m->action)) == NULL) {
		bool other = part_find(p, m->kind == BARRIER_ACTION
		                              ? BARRIER_COMPENSATION
		                              : BARRIER_ACTION,
		                 m->action) != NULL;

		/* sagad treats an ERROR like a retry: right for a handler
		 * that is not deployed yet. */
		part_req_error(r, true, SAGA_ENOTFOUND,
		    "%s has no %s named \"%.*s\"%s", p->name,
		    proto_kind_name(m->kind), (int) m->action.len,
		    m->action.ptr,
		    other ? (m->kind == BARRIER_ACTION
		                    ? " (there is a compensation of that name)"
		                    : " (there is an action of that name)")
		          : "");
		return (false);
	}
	return (true);
}

/* Queues the list head..tail of n commands for the workers. Returns
 * false, queueing nothing, when the participant is stopping. */
static bool
part_enqueue(saga_participant *p, part_req *head, part_req *tail, size_t n)
{
	if (n == 0) {
		return (!atomic_load(&p->stopping));
	}
	pthread_mutex_lock(&p->mtx);
	if (atomic_load(&p->stopping)) {
		pthread_mutex_unlock(&p->mtx);
		return (false);
	}
	tail->next = NULL;
	if (p->qtail != NULL) {
		p->qtail->next = head;
	} else {
		p->qhead = head;
	}
	p->qtail = tail;
	p->qlen += n;
	if (p->metrics != NULL) {
		metrics_set(p->metrics, "saga_participant_queued", "",
		    (double) p->qlen);
	}
	if (n > 1) {
		pthread_cond_broadcast(&p->work_cv);
	} else {
		pthread_cond_signal(&p->work_cv);
	}
	pthread_mutex_unlock(&p->mtx);
	return (true);
}

/* c's request is a BATCH: decode its messages, answer at once those that
 * cannot run, queue the others; the BATCH_REPLY leaves when the last one
 * has its answer. nng thread. */
static void
part_ctx_batch(part_ctx *c)
{
	saga_participant *p    = c->p;
	proto_raw         msgs = c->one.msg.msgs;
	proto_raw         one;
	proto_error       perr;
	part_req         *head = NULL, *tail = NULL;
	size_t            off = 0, count = 0, n = 0, queued = 0;
	int               rv;

	/* Count first: a BATCH that cannot be read whole is refused
	 * whole, before anything runs. */
	while ((rv = proto_batch_next(msgs, &off, &count, &p->lim, &one,
	            &perr)) == 0 &&
	    one.len > 0) {
		n++;
	}
	if (rv != 0) {
		part_req_error(&c->one, false, rv, "BATCH, message %zu: %s",
		    n + 1, perr.msg);
		return;
	}
	if (n > PART_BATCH_MAX) {
		part_req_error(&c->one, false, SAGA_ETOOBIG,
		    "a BATCH of %zu messages exceeds the limit of %d", n,
		    PART_BATCH_MAX);
		return;
	}
	if ((c->items = calloc(n, sizeof(*c->items))) == NULL) {
		part_req_error(&c->one, false, SAGA_ENOMEM,
		    "out of memory for a BATCH of %zu messages", n);
		return;
	}
	c->nitems = n;
	c->state  = W_WORK;
	atomic_store(&c->pending, n + 1);
	off = count = 0;
	for (size_t i = 0; i < n; i++) {
		part_req *r = &c->items[i];

		r->c = c;
		proto_buf_init(&r->answer);
		(void) proto_batch_next(
		    msgs, &off, &count, &p->lim, &one, &perr);
		if ((rv = proto_msg_decode(one.ptr, one.len, &p->lim, &r->msg,
		         &perr)) != 0) {
			part_req_error(r, false, rv, "%s", perr.msg);
			continue;
		}
		if (r->msg.type != PROTO_T_COMMAND) {
			part_req_error(r, true, SAGA_EINVAL,
			    "a BATCH holds COMMAND messages, not %s",
			    proto_type_name(r->msg.type));
			continue;
		}
		if (!part_req_accept(p, r)) {
			continue;
		}
		if (tail != NULL) {
			tail->next = r;
		} else {
			head = r;
		}
		tail = r;
		queued++;
	}
	if (!part_enqueue(p, head, tail, queued)) {
		/* Stopping: nothing of it ran; sagad resends. */
		part_ctx_drop(c);
		return;
	}
	part_ctx_batch_done(c);
}

/* A request arrived on c: decode it, answer what needs no handler, queue
 * the rest for the workers. nng thread. */
static void
part_ctx_dispatch(part_ctx *c)
{
	saga_participant *p = c->p;
	proto_error       perr;
	proto_msg         pong;
	int               rv;

	if ((rv = proto_msg_decode(nng_msg_body(c->req), nng_msg_len(c->req),
	         &p->lim, &c->one.msg, &perr)) != 0) {
		part_req_error(&c->one, false, rv, "%s", perr.msg);
		return;
	}
	if (c->one.msg.type == PROTO_T_PING) {
		proto_msg_init(&pong);
		pong.type    = PROTO_T_PONG;
		pong.service = proto_str_c(p->name);
		part_ctx_reply(c, &pong);
		return;
	}
	if (c->one.msg.type == PROTO_T_BATCH) {
		part_ctx_batch(c);
		return;
	}
	if (c->one.msg.type != PROTO_T_COMMAND) {
		part_req_error(&c->one, true, SAGA_EINVAL,
		    "a participant serves COMMAND, BATCH and PING, not %s",
		    proto_type_name(c->one.msg.type));
		return;
	}
	if (!part_req_accept(p, &c->one)) {
		return;
	}
	c->state = W_WORK;
	if (!part_enqueue(p, &c->one, &c->one, 1)) {
		part_ctx_drop(c);
	}
}

/* The aio callback of a context. nng thread. */
static void
part_ctx_cb(void *arg)
{
	part_ctx *c  = arg;
	int       rv = nng_aio_result(c->aio);

	switch (c->state) {
	case W_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(c->aio));
			nng_aio_set_msg(c->aio, NULL);
		}
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
			/* Shutting down. */
			return;
		}
		c->state = W_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	case W_RECV:
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
			return;
		}
		if (rv != 0) {
			nng_ctx_recv(c->ctx, c->aio);
			return;
		}
		c->req = nng_aio_get_msg(c->aio);
		nng_aio_set_msg(c->aio, NULL);
		part_ctx_dispatch(c);
		return;
	case W_WORK:
		/* No operation is pending on the aio while a worker has
		 * the context. */
		return;
	}
}

/* Logs the line of one command; at DEBUG it also names the batch (a
 * number counting every batch of the participant) and its size. */
static void
part_log_command(saga_participant *p, const saga_call *call, int outcome,
    const char *decision, const char *error, int64_t t0_us, uint64_t batch,
    int batch_size)
{
	int level = outcome == PROTO_OUTCOME_RETRY ? SAGA_PARTICIPANT_LOG_WARN
	                                           : SAGA_PARTICIPANT_LOG_INFO;
	const char *trace = call->trace[0] != '\0' ? call->trace + 3 : "-";
	int         tlen  = call->trace[0] != '\0' ? 32 : 1;
	char        batchtxt[64] = "";

	if (!part_log_enabled(p, level)) {
		return;
	}
	if (p->log_json) {
		part_about a = part_about_call(call, call->cmd->step);

		a.kind        = proto_kind_name(call->cmd->kind);
		a.attempt     = call->cmd->attempt;
		a.action      = call->action != NULL ? call->action : "?";
		a.outcome     = proto_outcome_name((uint32_t) outcome);
		a.barrier     = decision;
		a.duration_us = part_now_us() - t0_us;
		a.error       = error;
		if (part_log_enabled(p, SAGA_PARTICIPANT_LOG_DEBUG)) {
			a.batch      = (int64_t) batch;
			a.batch_size = batch_size;
		}
		part_log_about(p, level, &a, "%s %s: %s", a.kind, a.action,
		    a.outcome);
		return;
	}
	if (part_log_enabled(p, SAGA_PARTICIPANT_LOG_DEBUG)) {
		snprintf(batchtxt, sizeof(batchtxt),
		    " batch=%llu batch_size=%d", (unsigned long long) batch,
		    batch_size);
	}
	part_log(p, level,
	    "saga=%s step=%u kind=%s attempt=%u action=%s outcome=%s "
	    "barrier=%s duration_ms=%.3f trace=%.*s%s%s%.*s%s",
	    call->id, call->cmd->step, proto_kind_name(call->cmd->kind),
	    call->cmd->attempt, call->action != NULL ? call->action : "?",
	    proto_outcome_name((uint32_t) outcome), decision,
	    (double) (part_now_us() - t0_us) / 1000.0, tlen, trace, batchtxt,
	    error != NULL && error[0] != '\0' ? " error=\"" : "",
	    error != NULL ? (int) strcspn(error, "\n\"") : 0,
	    error != NULL ? error : "",
	    error != NULL && error[0] != '\0' ? "\"" : "");
}

/* Ends the pipeline mode a handler left on (against the rules): what it
 * queued is run and its results dropped, so that the connection takes
 * the library's next round; the command is then undone to its savepoint.
 * Returns whether the connection is out of pipeline mode. */
static bool
part_pipeline_end(PGconn *db)
{
	int idle = 0;

	if (PQpipelineSync(db) != 1) {
		return (false);
	}
	while (PQexitPipelineMode(db) != 1) {
		PGresult *res;

		if (PQstatus(db) != CONNECTION_OK) {
			return (false);
		}
		/* NULL ends each statement's results; two in a row with the
		 * mode still on: nothing more will come. */
		if ((res = PQgetResult(db)) == NULL) {
			if (++idle > 1) {
				return (false);
			}
			continue;
		}
		idle = 0;
		PQclear(res);
	}
	return (true);
}

/* Runs the handler of a RUN decision and settles the command inside the
 * batch's transaction: its work is kept (RELEASE of its savepoint) or
 * undone (ROLLBACK TO it). Sets the command's answer, which is sent only
 * after the batch's COMMIT. Worker thread. */
static void
part_run_handler(part_worker *w, part_cmd *pc)
{
	saga_participant       *p    = w->p;
	saga_call              *call = &pc->call;
	const barrier_key      *key  = &pc->key;
	const part_handler     *h    = pc->r->h;
	char                   *errbuf = pc->errbuf;
	size_t                  errlen = sizeof(pc->errbuf);
	PGTransactionStatusType st;
	barrier_commit          commit;
	int                     hrv;
	int                     houtcome;
	bool                    aborted, pipeline;
	proto_limits            own;

	call->db = w->db;
	/* Our own row, whatever its size: under the defaults an output above
	 * 1 MiB (taken with a raised max_msg_bytes) was refused, and under
	 * the limits of now one taken before they were lowered; either way
	 * the compensation answered retry for ever. */
	own = p->lim;
	if (pc->b.output.len > own.max_msg_bytes) {
		own.max_msg_bytes = pc->b.output.len;
	}
	if (key->kind == BARRIER_COMPENSATION &&
	    proto_doc_parse(&call->action_out,
	        pc->b.output.len > 0 ? pc->b.output : PROTO_RAW_EMPTY_MAP,
	        &own, NULL) != 0) {
		/* Our own row is unreadable (or no memory): do not run the
		 * compensation blind. */
		snprintf(errbuf, errlen,
		    "the action's recorded output cannot be read");
		barrier_sql_cmd_settle(w->db, key, pc->alone,
		    BARRIER_ROLLBACK_RETRY, (proto_raw) { 0 }, NULL, &pc->later);
		pc->outcome = PROTO_OUTCOME_RETRY;
		pc->error   = errbuf;
		return;
	}
	if (p->metrics != NULL) {
		int64_t t0 = part_now_us();
		char    labels[600]; /* an action of 255 bytes escaped */

		hrv = h->fn(call, h->arg);
		metrics_observe(p->metrics, "saga_participant_handler_seconds",
		    metrics_labels(labels, sizeof(labels), "action",
		        call->action != NULL ? call->action : "?", NULL),
		    (double) (part_now_us() - t0) / 1e6);
	} else {
		hrv = h->fn(call, h->arg);
	}
	if ((pipeline = PQpipelineStatus(w->db) != PQ_PIPELINE_OFF)) {
		(void) part_pipeline_end(w->db);
	}
	st = PQtransactionStatus(w->db);
	/* INERROR: an SQL error the handler did not roll back itself, undone
	 * with the command's savepoint; so is a command whose handler left
	 * pipeline mode on. IDLE, ACTIVE, UNKNOWN: the handler ended the
	 * transaction or left the connection busy; the settle below then
	 * fails, and the batch is lost. */
	aborted  = st != PQTRANS_INTRANS || pipeline;
	houtcome = hrv == 0 && call->set ? call->outcome
	                                 : BARRIER_OUTCOME_NONE;
	commit   = barrier_settle(key->kind, houtcome, aborted);
	if (commit == BARRIER_ROLLBACK_RETRY) {
		/* Say why before the rollback clears the connection's error
		 * message. */
		if (aborted) {
			/* After a pipeline ended here, the text is of the
			 * attempts to end it. */
			const char *pqerr = pipeline ? ""
			                             : PQerrorMessage(w->db);

			/* In a batch this is most often a lock wait cut short
			 * (lock_timeout) or a deadlock: the command runs again
			 * on its own once the batch committed. */
			pc->rerun =
			    !pc->alone && st == PQTRANS_INERROR && !pipeline;

			snprintf(errbuf, errlen, "%s%s%s",
			    pipeline ? "the handler left pipeline mode on"
			    : st == PQTRANS_INERROR
			        ? "the handler's transaction failed"
			        : st == PQTRANS_IDLE
			        ? "the handler ended the transaction itself"
			        : "the handler left the connection unusable",
			    pqerr[0] != '\0' ? ": " : "", pqerr);
			errbuf[strcspn(errbuf, "\n")] = '\0';
			part_about a = part_about_call(call, key->step);

			part_log_about(p,
			    st == PQTRANS_INERROR && !pipeline
			        ? SAGA_PARTICIPANT_LOG_WARN
			        : SAGA_PARTICIPANT_LOG_ERROR,
			    &a, "%s", errbuf);
		} else if (hrv != 0) {
			snprintf(errbuf, errlen, "handler error %s: %s",
			    saga_errname(hrv), saga_strerror(hrv));
		} else if (!call->set) {
			part_about a = part_about_call(call, key->step);

			snprintf(errbuf, errlen, "the handler set no outcome");
			part_log_about(
			    p, SAGA_PARTICIPANT_LOG_ERROR, &a, "%s", errbuf);
		} else {
			snprintf(errbuf, errlen, "%s",
			    call->error != NULL ? call->error : "retry");
		}
	}
	/* Kept: its statements go with the next round trip, and
	 * part_cmd_settled corrects the answer if they fail there. */
	barrier_sql_cmd_settle(w->db, key, pc->alone, commit,
	    proto_buf_raw(&call->output), call->error, &pc->later);
	switch (commit) {
	case BARRIER_COMMIT_OK:
		pc->outcome = PROTO_OUTCOME_OK;
		pc->output  = proto_buf_raw(&call->output);
		return;
	case BARRIER_COMMIT_FAILED:
	case BARRIER_ROLLBACK_FAILED:
		pc->outcome = PROTO_OUTCOME_FAILED;
		pc->error   = call->error;
		return;
	case BARRIER_ROLLBACK_RETRY:
		pc->outcome = PROTO_OUTCOME_RETRY;
		pc->error   = errbuf;
		return;
	}
}

/* The answer of pc once its waiting settle was sent: if that failed,
 * the command was undone, and is answered retry. */
static void
part_cmd_settled(part_cmd *pc)
{
	if (pc->later.sent && pc->later.rv != 0) {
		pc->outcome = PROTO_OUTCOME_RETRY;
		pc->output  = (proto_raw) { 0 };
		pc->error   = pc->later.err;
	}
}

/* Runs one command of the batch in its own savepoint of the open
 * transaction (open: the first, and the transaction is opened with its
 * first statements), and sets its answer. prev (or NULL): the command before
 * it in the transaction, whose settle may wait; its answer is corrected
 * if that fails. Worker thread. */
static void
part_cmd_run(part_worker *w, part_cmd *pc, part_cmd *prev, bool open)
{
	saga_participant *p = w->p;
	int               rv;

	/* A batch does not wait for locks: see part_batch. */
	rv = barrier_sql_cmd_begin(w->db, prev != NULL ? &prev->later : NULL,
	    &pc->key, pc->alone, open,
	    pc->alone ? NULL : "SET LOCAL lock_timeout = '20ms'", &pc->b,
	    pc->errbuf, sizeof(pc->errbuf));
	if (prev != NULL) {
		part_cmd_settled(prev);
	}
	if (rv != 0) {
		/* Undone: retry (or, in a batch, again alone: the barrier's
		 * insert may have waited on a duplicate's row). */
		pc->error = pc->errbuf;
		pc->rerun = !pc->alone;
		return;
	}
	pc->decision = barrier_decision_name(pc->b.decision);
	switch (pc->b.decision) {
	case BARRIER_RUN:
		part_run_handler(w, pc);
		return;
	case BARRIER_REPLAY:
		/* The row may have been written by an earlier command of
		 * this very batch: like every answer, this one leaves only
		 * after the COMMIT. */
		pc->outcome = pc->b.outcome;
		pc->output  = pc->b.output;
		pc->error   = pc->b.error;
		if (pc->output.len > 0 &&
		    proto_raw_validate(pc->output, &p->lim, NULL) != 0) {
			part_about a = part_about_call(&pc->call, pc->key.step);

			a.action = NULL; /* the text names no action here */
			part_log_about(p, SAGA_PARTICIPANT_LOG_ERROR, &a,
			    "the recorded output is not a valid value");
			pc->outcome = PROTO_OUTCOME_RETRY;
			pc->output  = (proto_raw) { 0 };
			pc->error   = "the recorded output cannot be read";
		}
		break;
	case BARRIER_REFUSE:
		pc->outcome = PROTO_OUTCOME_FAILED;
		pc->error   = "refused: the step was compensated before its "
		              "action ran";
		break;
	case BARRIER_NULL:
		pc->outcome = PROTO_OUTCOME_OK;
		break;
	case BARRIER_RETRY:
		pc->outcome = PROTO_OUTCOME_RETRY;
		pc->error   = "the barrier row changed meanwhile (purged?)";
		break;
	case BARRIER_EXPIRED: {
		/* Failed, not retry: a retry would be sent again for ever
		 * (compensation_retry has no limit by default), where failed
		 * parks the saga FAILED for an operator at once (after the
		 * compensation of a failed action, which comes here too). */
		part_about a = part_about_call(&pc->call, pc->key.step);

		pc->outcome = PROTO_OUTCOME_FAILED;
		pc->error   = "refused: the saga is older than the barrier's "
		              "retention and the barrier has no row for this "
		              "command (purged?): an operator must decide";
		part_log_about(p, SAGA_PARTICIPANT_LOG_ERROR, &a,
		    "PARTICIPANT-EXPIRED kind=%s: the barrier has no row "
		    "for this command, and the saga started %lld s ago, "
		    "past the retention (%lld s) less a tenth: its rows "
		    "may have been purged. Not run; answered failed, for "
		    "an operator to decide",
		    proto_kind_name(pc->key.kind),
		    (long long) ((part_wall_ms() -
		                     saga_id_unix_ms(&pc->r->msg.id)) /
		        1000),
		    (long long) p->retention_s);
		break;
	}
	}
	if (barrier_sql_cmd_end(w->db, &pc->b, pc->alone, pc->errbuf,
	        sizeof(pc->errbuf)) != 0) {
		pc->outcome = PROTO_OUTCOME_RETRY;
		pc->output  = (proto_raw) { 0 };
		pc->error   = pc->errbuf;
	}
}

/* Whether the saga of id may have had its barrier rows purged: it started
 * (the time its UUIDv7 carries, by sagad's clock) longer ago than the
 * retention, less a margin (barrier_saga_old). An id that is not a UUIDv7
 * tells no time: never old (sagad makes only v7 ids). */
static bool
part_saga_old(const saga_participant *p, const saga_id *id)
{
	if ((id->b[6] >> 4) != 7) {
		return (false);
	}
	return (barrier_saga_old(
	    saga_id_unix_ms(id), part_wall_ms(), p->retention_s));
}

/* Prepares slot pc (whose context is set) for a batch starting at t0_us,
 * of which it is the only command if alone. */
static void
part_cmd_init(saga_participant *p, part_cmd *pc, int64_t t0_us, bool alone)
{
	const proto_msg *cmd = &pc->r->msg;

	memset(&pc->b, 0, sizeof(pc->b));
	memset(&pc->later, 0, sizeof(pc->later));
	pc->alone    = alone;
	pc->rerun    = false;
	pc->outcome  = PROTO_OUTCOME_RETRY;
	pc->output   = (proto_raw) { 0 };
	pc->error    = NULL;
	pc->decision = "none";
	pc->t0_us    = t0_us;
	pc->ready    = part_call_init(&pc->call, p, cmd) == 0;
	if (!pc->ready) {
		pc->error = "out of memory";
		return;
	}
	memcpy(pc->key.id, pc->call.id, sizeof(pc->key.id));
	pc->key.step = cmd->step;
	pc->key.kind = cmd->kind;
	pc->key.old  = part_saga_old(p, &cmd->id);
}

/* Answers the command of slot pc and frees what it holds. */
static void
part_cmd_reply(saga_participant *p, part_cmd *pc, uint64_t batch,
    int batch_size)
{
	const proto_msg *cmd = &pc->r->msg;
	proto_msg        r;
	char             text[PART_ERROR_MAX + 1];

	proto_msg_init(&r);
	r.type        = PROTO_T_REPLY;
	r.id          = cmd->id;
	r.step        = cmd->step;
	r.attempt     = cmd->attempt;
	r.kind        = cmd->kind;
	r.traceparent = cmd->traceparent;
	r.outcome     = (uint32_t) pc->outcome;
	if (pc->outcome == PROTO_OUTCOME_OK) {
		r.output = pc->output;
	} else {
		/* Valid UTF-8, or the encoder refuses the reply: the library
		 * cuts PostgreSQL's messages into its buffers, maybe inside
		 * a character (a handler's text is fixed when it is set). */
		snprintf(text, sizeof(text), "%s",
		    pc->error != NULL && pc->error[0] != '\0'
		        ? pc->error
		        : (pc->outcome == PROTO_OUTCOME_FAILED
		                  ? "business failure"
		                  : "retry"));
		log_utf8_fix(text, strlen(text));
		r.error = proto_str_c(text);
	}
	if (p->metrics != NULL) {
		part_metrics_cmd(p, pc);
	}
	part_log_command(p, &pc->call, pc->outcome, pc->decision,
	    pc->outcome == PROTO_OUTCOME_OK ? NULL : pc->error, pc->t0_us,
	    batch, batch_size);
	part_req_reply(pc->r, &r);
	barrier_begin_fini(&pc->b);
	part_call_fini(&pc->call);
	pc->r = NULL;
}

/* Runs the n commands in w->cmds as one batch: one transaction, each
 * command in its own savepoint (so that undoing one keeps the others; a
 * command alone needs none, and its undo is a ROLLBACK, as before
 * batches), one COMMIT; then answers them all. No answer leaves before
 * the COMMIT succeeded: a replay may have read a row written earlier in
 * this batch, and an ok is only true once durable. If the transaction
 * is lost (no database, the COMMIT failed, the connection dropped, a
 * handler ended the transaction), nothing of it can be counted on and
 * every command is answered retry. Worker thread. */
static void
part_batch(part_worker *w, int n)
{
	saga_participant *p     = w->p;
	int64_t           t0    = part_now_us();
	uint64_t          batch = atomic_fetch_add(&p->st_batches, 1) + 1;
	unsigned          max   = atomic_load(&p->st_max_batch);
	bool              lost  = false;
	bool              open;
	part_cmd         *last  = NULL; /* its settle may wait */
	int               rv;
	char              why[512];
	char              txerr[640];

	why[0] = '\0';
	for (int i = 0; i < n; i++) {
		part_cmd_init(p, &w->cmds[i], t0, n == 1);
	}
	while ((unsigned) n > max &&
	    !atomic_compare_exchange_weak(&p->st_max_batch, &max,
	        (unsigned) n)) {
	}
	if (part_worker_db(w, why, sizeof(why)) != 0) {
		/* Nothing ran: the reason alone. */
		snprintf(txerr, sizeof(txerr), "%s", why);
		lost = true;
		goto reply;
	}
	/* A batch holds its row locks until its COMMIT: two batches that
	 * touch the same hot rows in another order would deadlock, and
	 * PostgreSQL finds that only after deadlock_timeout (1 s). A batch
	 * does not wait for locks: a command that would wait is undone to
	 * its savepoint and runs again alone after the COMMIT. The first
	 * command opens the transaction (and sets the lock timeout) with
	 * its own first statements, one round trip fewer. A connection
	 * left in a transaction (part_worker_check reconnects after any
	 * batch that leaves one) must not lend it to this batch. */
	if (PQtransactionStatus(w->db) != PQTRANS_IDLE) {
		snprintf(why, sizeof(why), "the connection is not idle");
		lost = true;
		goto end_tx;
	}
	open = true;
	for (int i = 0; i < n; i++) {
		part_cmd *pc = &w->cmds[i];

		if (!pc->ready) {
			continue;
		}
		part_cmd_run(w, pc, last, open);
		open = false;
		last = pc;
		if (pc->alone && PQstatus(w->db) == CONNECTION_OK &&
		    PQtransactionStatus(w->db) == PQTRANS_IDLE) {
			/* Alone, and undone (or a replay, a refusal): its
			 * transaction was rolled back, as it was before
			 * batches; its answer stands. */
			goto end_tx;
		}
		if (!barrier_sql_tx_usable(w->db)) {
			/* Not even the command's savepoint could be
			 * restored: the transaction is gone. */
			snprintf(why, sizeof(why),
			    "saga=%s step=%u broke the transaction: %s",
			    pc->call.id, pc->key.step,
			    pc->error != NULL ? pc->error : "?");
			lost = true;
			goto end_tx;
		}
	}
	if (last == NULL) {
		goto end_tx; /* none could run: no transaction */
	}
	rv = barrier_sql_tx_commit(w->db, &last->later, w->db_sync, why,
	    sizeof(why));
	part_cmd_settled(last);
	if (rv != 0) {
		lost = true;
		goto end_tx;
	}
	/* The batch is durable: its answers leave now, not after the
	 * reruns below, which wait for locks as long as it takes. */
	for (int i = 0; i < n; i++) {
		if (!w->cmds[i].rerun) {
			part_cmd_reply(p, &w->cmds[i], batch, n);
		}
	}
	/* The commands a lock wait undid, each in a transaction of its own
	 * (waiting for locks as long as it takes, like any lone command). */
	for (int i = 0; i < n; i++) {
		part_cmd *pc = &w->cmds[i];

		if (!pc->rerun) {
			continue;
		}
		atomic_fetch_add(&p->st_reruns, 1);
		if (p->metrics != NULL) {
			metrics_add(p->metrics, "saga_participant_reruns_total",
			    "", 1);
		}
		barrier_begin_fini(&pc->b);
		part_call_fini(&pc->call);
		part_cmd_init(p, pc, pc->t0_us, true);
		if (!pc->ready) {
			continue;
		}
		part_cmd_run(w, pc, NULL, true);
		if (PQstatus(w->db) == CONNECTION_OK &&
		    PQtransactionStatus(w->db) == PQTRANS_IDLE) {
			continue; /* undone, rolled back: its answer stands */
		}
		if (!barrier_sql_tx_usable(w->db)) {
			/* Lost: its answer says why (part_cmd_run set it),
			 * or that it was lost. */
			barrier_sql_tx_rollback(w->db);
			pc->outcome = PROTO_OUTCOME_RETRY;
			pc->output  = (proto_raw) { 0 };
			if (pc->error == NULL || pc->error[0] == '\0') {
				pc->error = "the command's transaction was "
				            "lost when it ran again alone";
			}
		} else if (barrier_sql_tx_commit(w->db, &pc->later,
		               w->db_sync, why, sizeof(why)) != 0) {
			barrier_sql_tx_rollback(w->db);
			pc->outcome = PROTO_OUTCOME_RETRY;
			pc->output  = (proto_raw) { 0 };
			snprintf(pc->errbuf, sizeof(pc->errbuf), "%s", why);
			pc->error = pc->errbuf;
		} else {
			part_cmd_settled(pc);
		}
	}

end_tx:
	if (lost) {
		barrier_sql_tx_rollback(w->db);
		snprintf(txerr, sizeof(txerr),
		    "the batch of %d command%s was not committed: %s", n,
		    n == 1 ? "" : "s", why);
		part_log(p, SAGA_PARTICIPANT_LOG_WARN,
		    "worker %d: batch %llu of %d command%s lost, answering "
		    "retry to all: %s",
		    w->id, (unsigned long long) batch, n, n == 1 ? "" : "s",
		    why);
	}
	part_worker_check(w);

reply:
	if (lost) {
		atomic_fetch_add(&p->st_batches_lost, 1);
		if (p->metrics != NULL) {
			metrics_add(p->metrics,
			    "saga_participant_batches_lost_total", "", 1);
		}
		for (int i = 0; i < n; i++) {
			w->cmds[i].outcome = PROTO_OUTCOME_RETRY;
			w->cmds[i].output  = (proto_raw) { 0 };
			w->cmds[i].error   = txerr;
		}
	}
	if (part_log_enabled(p, SAGA_PARTICIPANT_LOG_DEBUG)) {
		part_log(p, SAGA_PARTICIPANT_LOG_DEBUG,
		    "worker %d: batch %llu of %d command%s %s in %.3f ms",
		    w->id, (unsigned long long) batch, n, n == 1 ? "" : "s",
		    lost ? "lost" : last == NULL ? "not run" : "committed",
		    (double) (part_now_us() - t0) / 1000.0);
	}
	atomic_fetch_add(&p->st_commands, (unsigned long long) n);
	if (p->metrics != NULL) {
		metrics_add(p->metrics, "saga_participant_batches_total", "", 1);
		metrics_observe(
		    p->metrics, "saga_participant_batch_size", "", (double) n);
	}
	/* Every reply leaves only now: after the COMMIT holding the
	 * batch's barrier rows (those not answered at that COMMIT: the
	 * reruns, after theirs), or after everything was rolled back. */
	for (int i = 0; i < n; i++) {
		if (w->cmds[i].r != NULL) {
			part_cmd_reply(p, &w->cmds[i], batch, n);
		}
	}
}

static void *
part_worker_main(void *arg)
{
	part_worker      *w = arg;
	saga_participant *p = w->p;
	char              err[256];
	int               n;

	/* Connect early, so that the first command does not wait for it
	 * (a failure is retried when a command comes). */
	(void) part_worker_db(w, err, sizeof(err));
	for (;;) {
		pthread_mutex_lock(&p->mtx);
		while (p->qhead == NULL && !atomic_load(&p->stopping)) {
			pthread_cond_wait(&p->work_cv, &p->mtx);
		}
		if (atomic_load(&p->stopping)) {
			pthread_mutex_unlock(&p->mtx);
			break;
		}
		/* Everything waiting, up to max_batch; never wait for more
		 * to come: a batch is what queued while the workers were
		 * busy. */
		for (n = 0; p->qhead != NULL && n < p->max_batch; n++) {
			w->cmds[n].r = p->qhead;
			p->qhead     = p->qhead->next;
		}
		if (p->qhead == NULL) {
			p->qtail = NULL;
		}
		p->qlen -= (size_t) n;
		if (p->metrics != NULL) {
			metrics_set(p->metrics, "saga_participant_queued", "",
			    (double) p->qlen);
		}
		pthread_mutex_unlock(&p->mtx);
		part_batch(w, n);
	}
	PQfinish(w->db);
	w->db = NULL;
	return (NULL);
}

/* One purge pass on *db (connected on demand, dropped when broken).
 * Returns 0 or SAGA_EDB with the reason in err. */
static int
part_purge_pass(saga_participant *p, PGconn **db, bool background,
    int64_t *deleted, char *err, size_t errlen)
{
	int64_t total = 0;
	int64_t n;
	int     rv = 0;

	if (*db == NULL && part_connect(p, db, NULL, true, err, errlen) != 0) {
		return (SAGA_EDB);
	}
	do {
		n = 0;
		if ((rv = barrier_sql_purge(*db, p->retention_s,
		         PART_PURGE_BATCH, &n, err, errlen)) != 0) {
			if (PQstatus(*db) != CONNECTION_OK) {
				PQfinish(*db);
				*db = NULL;
			}
			break;
		}
		total += n;
	} while (n > 0 && !(background && atomic_load(&p->stopping)));
	if (total > 0) {
		part_log(p, SAGA_PARTICIPANT_LOG_INFO,
		    "PARTICIPANT-PURGE deleted %lld barrier rows older than "
		    "%lld s",
		    (long long) total, (long long) p->retention_s);
	}
	if (deleted != NULL) {
		*deleted = total;
	}
	return (rv);
}

static void *
part_purge_main(void *arg)
{
	saga_participant *p  = arg;
	PGconn           *db = NULL;
	struct timespec   until;
	char              err[512];

	pthread_mutex_lock(&p->mtx);
	while (!atomic_load(&p->stopping)) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += p->purge_ms / 1000;
		until.tv_nsec += (p->purge_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (!atomic_load(&p->stopping) &&
		    pthread_cond_timedwait(&p->purge_cv, &p->mtx, &until) !=
		        ETIMEDOUT) {
		}
		if (atomic_load(&p->stopping)) {
			break;
		}
		pthread_mutex_unlock(&p->mtx);
		if (part_purge_pass(p, &db, true, NULL, err, sizeof(err)) !=
		    0) {
			part_log(p, SAGA_PARTICIPANT_LOG_WARN,
			    "PARTICIPANT-PURGE failed: %s", err);
		}
		pthread_mutex_lock(&p->mtx);
	}
	pthread_mutex_unlock(&p->mtx);
	PQfinish(db);
	return (NULL);
}

int
saga_participant_purge(
    saga_participant *p, int64_t *deleted, char *err, size_t errlen)
{
	PGconn *db = NULL;
	char    buf[512];
	int     rv;

	if (p->retention_s < 0) {
		if (deleted != NULL) {
			*deleted = 0;
		}
		return (0);
	}
	rv = part_purge_pass(p, &db, false, deleted, buf, sizeof(buf));
	PQfinish(db);
	if (rv != 0) {
		return (part_fail(p, err, errlen, SAGA_EDB, "purge: %s", buf));
	}
	return (0);
}

/* The closing of a participant's nng objects (its socket and aios, or
 * its metrics' HTTP server), on a thread of its own. Whichever of the
 * closer and the waiter lets go of it last frees it. */
typedef struct part_closer part_closer;
struct part_closer {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            done;
	bool            abandoned; /* the waiter gave up waiting */
	void (*run)(part_closer *);
	part_ctx  *ctxs;
	int        nctxs;
	nng_socket sock;
	bool       sock_open;
	metrics   *m;
};

static void
part_closer_free(part_closer *k)
{
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mtx);
	free(k);
}

/* Stops every aio (which waits for its callback; any operation started
 * afterwards, a callback's send or receive, fails at once without a
 * callback), then closes the socket. */
static void
part_closer_nng(part_closer *k)
{
	for (int i = 0; k->ctxs != NULL && i < k->nctxs; i++) {
		if (k->ctxs[i].aio != NULL) {
			nng_aio_stop(k->ctxs[i].aio);
		}
	}
	if (k->sock_open) {
		nng_close(k->sock);
	}
}

/* Stops the metrics' HTTP server (which waits for its connections) and
 * frees the registry. */
static void
part_closer_metrics(part_closer *k)
{
	metrics_free(k->m);
}

static void *
part_closer_main(void *arg)
{
	part_closer *k = arg;
	bool         abandoned;

	k->run(k);
	pthread_mutex_lock(&k->mtx);
	k->done   = true;
	abandoned = k->abandoned;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mtx);
	if (abandoned) {
		part_closer_free(k);
	}
	return (NULL);
}

/* Runs k (allocated, filled but for its lock) on a thread of its own and
 * waits PART_CLOSE_WAIT_MS for it; k is then no longer the caller's.
 * Returns whether it finished: if not, it goes on, and what it closes is
 * its own. Without a thread, it runs here, unwatched. */
static bool
part_closer_wait(part_closer *k)
{
	pthread_condattr_t ca;
	pthread_attr_t     ta;
	pthread_t          thr;
	struct timespec    until;
	clockid_t          clk = CLOCK_MONOTONIC;
	bool               done, started;

	pthread_mutex_init(&k->mtx, NULL);
	pthread_condattr_init(&ca);
	if (pthread_condattr_setclock(&ca, clk) != 0) {
		clk = CLOCK_REALTIME; /* the condition's default clock */
	}
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_init(&ta);
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	started = pthread_create(&thr, &ta, part_closer_main, k) == 0;
	pthread_attr_destroy(&ta);
	if (!started) {
		k->run(k);
		part_closer_free(k);
		return (true);
	}
	clock_gettime(clk, &until);
	until.tv_sec += PART_CLOSE_WAIT_MS / 1000;
	until.tv_nsec += (long) (PART_CLOSE_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	/* Any error of the wait counts as the time being up. */
	pthread_mutex_lock(&k->mtx);
	while (!k->done &&
	    pthread_cond_timedwait(&k->cv, &k->mtx, &until) == 0) {
	}
	done         = k->done;
	k->abandoned = !done;
	pthread_mutex_unlock(&k->mtx);
	if (done) {
		part_closer_free(k);
	}
	return (done);
}

/* Stops the aios and closes the socket, waiting PART_CLOSE_WAIT_MS for
 * libnng. Returns 0, or SAGA_ETIMEDOUT when it did not finish: p is then
 * marked nng_hung and must be left as it is. */
static int
part_close_nng(saga_participant *p)
{
	part_closer *k;

	if (p->ctxs == NULL && !p->sock_open) {
		return (0);
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		part_closer stack = { .ctxs = p->ctxs, .nctxs = p->ncontexts,
			.sock = p->sock, .sock_open = p->sock_open };

		/* Out of memory: closed here, unwatched. */
		part_closer_nng(&stack);
		p->sock_open = false;
		return (0);
	}
	k->run       = part_closer_nng;
	k->ctxs      = p->ctxs;
	k->nctxs     = p->ncontexts;
	k->sock      = p->sock;
	k->sock_open = p->sock_open;
	if (!part_closer_wait(k)) {
		p->nng_hung = true;
		part_log(p, SAGA_PARTICIPANT_LOG_ERROR,
		    "PARTICIPANT-STOP nng has not closed its socket after %d "
		    "ms (a hang inside libnng); leaving it (every answer sent "
		    "was committed first)",
		    PART_CLOSE_WAIT_MS);
		return (SAGA_ETIMEDOUT);
	}
	p->sock_open = false;
	return (0);
}

/* Stops the metrics' HTTP server, if it was started, and frees the
 * registry, waiting PART_CLOSE_WAIT_MS for libnng: past that both are
 * left to the closer (the server's handler reads the registry), and the
 * rest of p can go. */
static void
part_free_metrics(saga_participant *p)
{
	part_closer *k;

	if (p->metrics == NULL) {
		return;
	}
	if (!p->metrics_served || (k = calloc(1, sizeof(*k))) == NULL) {
		metrics_free(p->metrics);
		p->metrics = NULL;
		return;
	}
	k->run     = part_closer_metrics;
	k->m       = p->metrics;
	p->metrics = NULL;
	if (!part_closer_wait(k)) {
		part_log(p, SAGA_PARTICIPANT_LOG_ERROR,
		    "PARTICIPANT-STOP nng has not stopped the metrics' HTTP "
		    "server after %d ms (a hang inside libnng); leaving it",
		    PART_CLOSE_WAIT_MS);
	}
}

/* Stops and frees everything start made; safe on a partial start.
 * Returns 0, or SAGA_ETIMEDOUT when libnng did not close the socket: the
 * nng objects and what they point to are then left as they are. */
static int
part_teardown(saga_participant *p)
{
	pthread_mutex_lock(&p->mtx);
	atomic_store(&p->stopping, true);
	pthread_cond_broadcast(&p->work_cv);
	pthread_cond_broadcast(&p->purge_cv);
	pthread_mutex_unlock(&p->mtx);
	for (int i = 0; p->workers != NULL && i < p->nworkers; i++) {
		if (p->workers[i].running) {
			pthread_join(p->workers[i].thr, NULL);
			p->workers[i].running = false;
		}
	}
	if (p->purge_running) {
		pthread_join(p->purge_thr, NULL);
		p->purge_running = false;
	}
	if (part_close_nng(p) != 0) {
		return (SAGA_ETIMEDOUT);
	}
	for (int i = 0; p->ctxs != NULL && i < p->ncontexts; i++) {
		part_ctx *c = &p->ctxs[i];

		if (c->aio != NULL) {
			nng_msg_free(nng_aio_get_msg(c->aio));
			nng_aio_free(c->aio);
			c->aio = NULL;
		}
		if (c->req != NULL) {
			/* Queued, never handled: sagad resends it. */
			part_ctx_drop(c);
		}
	}
	free(p->ctxs);
	p->ctxs = NULL;
	for (int i = 0; p->workers != NULL && i < p->nworkers; i++) {
		free(p->workers[i].cmds);
	}
	free(p->workers);
	p->workers = NULL;
	p->qhead   = NULL;
	p->qtail   = NULL;
	p->qlen    = 0;
	return (0);
}

/* Checks that the database has the barrier schema. A database that does
 * not answer is not an error here: the workers retry. */
static int
part_check_schema(saga_participant *p, char *err, size_t errlen)
{
	PGconn *db = NULL;
	char    buf[512];
	int     version = 0;
	int     want    = 0;

	if (part_connect(p, &db, NULL, false, buf, sizeof(buf)) != 0) {
		part_log(p, SAGA_PARTICIPANT_LOG_WARN,
		    "%s; serving anyway, answering retry until it is back",
		    buf);
		return (0);
	}
	for (size_t i = 0; i < barrier_migrations_count; i++) {
		if (barrier_migrations[i].version > want) {
			want = barrier_migrations[i].version;
		}
	}
	if (sql_migrate_version(db, "barrier", &version, buf, sizeof(buf)) !=
	    0) {
		PQfinish(db);
		return (part_fail(p, err, errlen, SAGA_ECONFIG,
		    "checking the barrier schema: %s", buf));
	}
	PQfinish(db);
	if (version < want) {
		return (part_fail(p, err, errlen, SAGA_ECONFIG,
		    "the database has barrier schema version %d, this "
		    "library needs %d: apply it first "
		    "(saga_participant_migrate)",
		    version, want));
	}
	return (0);
}

/* Checks the TLS files of a participant with a tls+tcp:// listen URL at
 * start, before anything listens: the configuration saga_tls_listen will
 * build (a file missing, or one nng refuses, gives the message it would
 * give), and that tls_key is the key of tls_cert. nng takes a certificate
 * with another's key without a word; the participant then said
 * PARTICIPANT-START and every handshake failed, with nothing in its log.
 * Returns 0, or SAGA_EINVAL with the reason in err, as saga_tls_listen
 * does for a file it cannot read. */
static int
part_tls_check(const saga_participant *p, char *err, size_t errlen)
{
	saga_tls_opts   tls = { p->tls_ca, p->tls_cert, p->tls_key, NULL };
	nng_tls_config *cfg = NULL;
	bool            uses = false;
	int             rv;

	for (size_t i = 0; i < p->nlisten; i++) {
		uses |= saga_tls_url(p->listen[i]);
	}
	/* No TLS listener: the files are not used. */
	if (!uses) {
		return (0);
	}
	if ((rv = saga_tls_config(&cfg, true, &tls, err, errlen)) != 0) {
		return (rv);
	}
	nng_tls_config_free(cfg);
	/* Both are set: saga_tls_config refuses a listener without them. */
	return (saga_tls_check_pair(p->tls_cert, p->tls_key, err, errlen));
}

int
saga_participant_start(saga_participant *p, char *err, size_t errlen)
{
	int rv;

	if (p->started) {
		return (part_fail(p, err, errlen, SAGA_ESTATE,
		    "participant already started"));
	}
	if (p->nng_hung) {
		return (part_fail(p, err, errlen, SAGA_ESTATE,
		    "participant left as it is: libnng never closed its "
		    "socket"));
	}
	if ((rv = part_tls_check(p, err, errlen)) != 0) {
		return (rv);
	}
	if ((rv = part_check_schema(p, err, errlen)) != 0) {
		return (rv);
	}
	if (p->nhandlers == 0) {
		part_log(p, SAGA_PARTICIPANT_LOG_WARN,
		    "no handler registered: every command will be refused");
	}
	if (p->metrics != NULL && !p->metrics_served) {
		if ((rv = metrics_serve(p->metrics, p->metrics_listen, err,
		         errlen)) != 0) {
			part_log(p, SAGA_PARTICIPANT_LOG_ERROR, "%s", err);
			return (rv);
		}
		p->metrics_served = true;
		part_log(p, SAGA_PARTICIPANT_LOG_INFO,
		    "metrics at http://%s/metrics",
		    strstr(p->metrics_listen, "://") != NULL
		        ? strstr(p->metrics_listen, "://") + 3
		        : p->metrics_listen);
	}
	p->started = true;
	atomic_store(&p->stopping, false);
	if ((p->ctxs = calloc((size_t) p->ncontexts, sizeof(part_ctx))) ==
	        NULL ||
	    (p->workers = calloc((size_t) p->nworkers, sizeof(part_worker))) ==
	        NULL) {
		rv = SAGA_ENOMEM;
		goto fail;
	}
	if ((rv = nng_rep0_open(&p->sock)) != 0) {
		rv = part_fail(p, err, errlen, SAGA_EIO, "nng: %s",
		    nng_strerror(rv));
		goto fail;
	}
	/* Above the decoder's limit, so that an oversized command gets an
	 * ETOOBIG answer rather than a dropped connection. */
	nng_socket_set_size(p->sock, NNG_OPT_RECVMAXSZ,
	    p->lim.max_msg_bytes * 4);
	p->sock_open = true;
	for (int i = 0; i < p->ncontexts; i++) {
		part_ctx *c = &p->ctxs[i];

		c->p = p;
		proto_msg_init(&c->one.msg);
		c->one.c = c;
		if ((rv = nng_ctx_open(&c->ctx, p->sock)) != 0 ||
		    (rv = nng_aio_alloc(&c->aio, part_ctx_cb, c)) != 0) {
			rv = part_fail(p, err, errlen, SAGA_ENOMEM, "nng: %s",
			    nng_strerror(rv));
			goto fail;
		}
	}
	for (size_t i = 0; i < p->nlisten; i++) {
		saga_tls_opts tls = { p->tls_ca, p->tls_cert, p->tls_key,
			NULL };

		if ((rv = saga_tls_listen(p->sock, p->listen[i], &tls, err,
		         errlen)) != 0) {
			goto fail;
		}
	}
	for (int i = 0; i < p->nworkers; i++) {
		part_worker *w = &p->workers[i];

		w->p  = p;
		w->id = i + 1;
		if ((w->cmds = calloc((size_t) p->max_batch,
		         sizeof(*w->cmds))) == NULL) {
			rv = SAGA_ENOMEM;
			goto fail;
		}
		if (pthread_create(&w->thr, NULL, part_worker_main, w) != 0) {
			rv = part_fail(p, err, errlen, SAGA_ENOMEM,
			    "cannot start worker %d", i + 1);
			goto fail;
		}
		w->running = true;
	}
	if (p->retention_s >= 0) {
		if (pthread_create(&p->purge_thr, NULL, part_purge_main, p) !=
		    0) {
			rv = part_fail(p, err, errlen, SAGA_ENOMEM,
			    "cannot start the purge thread");
			goto fail;
		}
		p->purge_running = true;
	}
	for (int i = 0; i < p->ncontexts; i++) {
		p->ctxs[i].state = W_RECV;
		nng_ctx_recv(p->ctxs[i].ctx, p->ctxs[i].aio);
	}
	part_log(p, SAGA_PARTICIPANT_LOG_INFO,
	    "PARTICIPANT-START listening on %s%s with %d workers, %d "
	    "contexts, batches of up to %d, %zu handlers",
	    p->listen[0], p->nlisten > 1 ? " (and more)" : "", p->nworkers,
	    p->ncontexts, p->max_batch, p->nhandlers);
	return (0);

fail:
	(void) part_teardown(p);
	p->started = false;
	return (rv);
}

void
saga_participant_stop(saga_participant *p)
{
	/* sem_post is async-signal-safe. */
	(void) sem_post(&p->stop_sem);
}

int
saga_participant_serve(saga_participant *p, char *err, size_t errlen)
{
	int rv;

	if (!p->started &&
	    (rv = saga_participant_start(p, err, errlen)) != 0) {
		return (rv);
	}
	while (sem_wait(&p->stop_sem) != 0 && errno == EINTR) {
	}
	part_log(p, SAGA_PARTICIPANT_LOG_INFO, "PARTICIPANT-STOP stopping");
	if ((rv = part_teardown(p)) != 0 && err != NULL && errlen > 0) {
		snprintf(err, errlen,
		    "nng has not closed the socket after %d ms (a hang inside "
		    "libnng): the participant is left as it is",
		    PART_CLOSE_WAIT_MS);
	}
	return (rv);
}

void
saga_participant_stats_get(saga_participant *p, saga_participant_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->commands     = atomic_load(&p->st_commands);
	st->batches      = atomic_load(&p->st_batches);
	st->batches_lost = atomic_load(&p->st_batches_lost);
	st->reruns       = atomic_load(&p->st_reruns);
	st->max_batch    = atomic_load(&p->st_max_batch);
	pthread_mutex_lock(&p->mtx);
	st->queued = (uint32_t) p->qlen;
	pthread_mutex_unlock(&p->mtx);
}

void
saga_participant_free(saga_participant *p)
{
	/* A participant whose socket libnng never closed stays as it is:
	 * nng's threads may still use it. */
	if (p == NULL || p->nng_hung ||
	    (p->started && part_teardown(p) != 0)) {
		return;
	}
	pthread_cond_destroy(&p->work_cv);
	pthread_cond_destroy(&p->purge_cv);
	pthread_mutex_destroy(&p->mtx);
	sem_destroy(&p->stop_sem);
	part_free_metrics(p);
	part_free_config(p);
	free(p);
}
