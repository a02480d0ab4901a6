/* SPDX-License-Identifier: MIT */
/*
 * saga/participant.h: the participant library, the only header a
 * participant includes.
 *
 * A participant is a service that runs the steps of sagas: sagad sends it
 * COMMAND messages (run action A, or compensation C, for step S of saga
 * X) and it answers ok (with an output map), failed (a business failure)
 * or retry. This library does the serving (nng, worker threads with one
 * database connection each), the idempotency barrier (DESIGN.md,
 * invariant 2) and the housekeeping; the service only registers a handler
 * per action and compensation name:
 *
 *     saga_participant_config cfg = { .name = "inventory",
 *         .listen = urls, .conninfo = "dbname=inventory" };
 *     saga_participant_new(&p, &cfg, err, sizeof(err));
 *     saga_participant_on_action(p, "stock.reserve", reserve, NULL);
 *     saga_participant_on_compensation(p, "stock.release", release, NULL);
 *     saga_participant_migrate(p, err, sizeof(err));
 *     saga_participant_serve(p, err, sizeof(err));
 *
 * A handler runs on a worker thread inside an open transaction on the
 * participant's database (saga_call_db). The library has already written
 * the barrier row of (saga id, step, kind) in that same transaction, and
 * commits the handler's work and the row together before it replies, so
 * that every command takes effect exactly once however often it is
 * delivered:
 *  - a duplicate (same saga, step and kind, any attempt) gets the recorded
 *    outcome and output; the handler does not run again;
 *  - a compensation of an action that never ran (or failed) answers ok
 *    without running the compensation handler, and that action, should it
 *    arrive later, is refused (answered failed) without running;
 *  - the compensation handler runs only after its action committed ok, and
 *    sees the output that action recorded (saga_call_action_output);
 *  - two deliveries at the same time: one runs, the other waits for it
 *    and replays its outcome.
 *
 * Batches (group commit): a worker takes every command waiting in the
 * queue, up to max_batch, and runs them in one transaction, each command
 * inside a savepoint of its own, with one COMMIT for all; it never waits
 * for a batch to fill. A command whose work must be undone (retry, crash,
 * SQL error, a compensation's failure) is rolled back to its savepoint
 * alone and the others commit; no command of a batch is answered before
 * the batch's COMMIT succeeded, and if the transaction is lost (COMMIT
 * failed, connection dropped) every command of the batch is answered
 * retry. So a handler's transaction may hold other commands' work before
 * and after its own.
 *
 * Handler rules:
 *  - do the business work with saga_call_db(call), in the transaction that
 *    is open: never BEGIN, COMMIT or ROLLBACK it yourself (SAVEPOINTs of
 *    your own are fine); what lasts until the end of the transaction (SET
 *    LOCAL, advisory xact locks, row locks, deferred constraint checks)
 *    lasts until the batch's COMMIT, and now() is the batch's start;
 *  - end with one of saga_call_ok (output map), saga_call_fail (business
 *    failure: the work is rolled back, the failure is recorded and
 *    replayed to duplicates) or saga_call_retry (transient: nothing is
 *    recorded, sagad tries again later), and return its result:
 *        return saga_call_ok(call, out);
 *  - a handler that returns non-zero, sets no outcome, or leaves the
 *    transaction aborted (an SQL error it did not roll back itself, such as
 *    a deadlock or a serialization failure) commits nothing and answers
 *    retry, never failed;
 *  - a compensation must not fail for business reasons: its failure commits
 *    nothing, parks the saga FAILED for an operator, and runs again when
 *    the saga is retried;
 *  - handlers run concurrently on several threads (one per worker); the
 *    argument registered with a handler is shared by them.
 *
 * Reading and building data: the saga context and outputs are read through
 * the proto_val API of "proto_val.h" (proto_val_get, proto_val_str,
 * proto_val_int, ...) and outputs are built with proto_obj (proto_obj_put_*).
 * Error codes are the saga_err values of "saga_err.h" (SAGA_EINVAL, ...,
 * saga_strerror). Both headers are installed next to this one and included
 * by it.
 *
 * Errors: fallible calls return 0 or a saga_err value; those that fail for
 * external reasons (configuration, database, network) also write a
 * one-line reason into err (errlen bytes; err may be NULL) and log it.
 * Strings passed in are borrowed: the library keeps copies.
 *
 * Logs go to stderr: one line per command (saga id, step, kind, attempt,
 * action, outcome, barrier decision, duration, trace id) and one per
 * operational event (database lost and back, purge). Plain text by
 * default; with log_format "json", one JSON object per line, as sagad's
 * --log-format json: {"ts": ..., "level": "info", "program": <name>,
 * "saga": ..., "step": 2, "trace_id": ..., "event": "PARTICIPANT-START",
 * "msg": ...}. A service writes lines of its own in the same format with
 * saga_participant_log and saga_call_log.
 */
#ifndef SAGA_PARTICIPANT_H
#define SAGA_PARTICIPANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Installed next to this header; plain C headers without C++ guards of
 * their own, hence inside the extern "C" block. */
#include "proto_val.h"
#include "saga_err.h"
#include "saga_id.h"

/* SAGA_PARTICIPANT_VERSION is the version of this library. */
#define SAGA_PARTICIPANT_VERSION "0.1.0"

typedef struct saga_participant saga_participant;

/* saga_call is one command being handled; valid only during the handler
 * call it is given to. */
typedef struct saga_call saga_call;

/* saga_handler handles one command: it does the work in the open
 * transaction of saga_call_db(call) and returns the result of
 * saga_call_ok, saga_call_fail or saga_call_retry (0), or an error code
 * (the command is then answered retry). arg is the pointer given at
 * registration. Runs on a worker thread. */
typedef int (*saga_handler)(saga_call *call, void *arg);

/* Log levels of saga_participant_config.log_level. */
enum {
	SAGA_PARTICIPANT_LOG_DEFAULT = 0, /* INFO */
	SAGA_PARTICIPANT_LOG_NONE,
	SAGA_PARTICIPANT_LOG_ERROR,
	SAGA_PARTICIPANT_LOG_WARN,
	SAGA_PARTICIPANT_LOG_INFO, /* + one line per command */
	SAGA_PARTICIPANT_LOG_DEBUG,
};

/* saga_participant_config configures a participant. Zero a struct and set
 * what you need: every zero field takes its default. */
typedef struct saga_participant_config {
	/* Service name: in logs, PONG answers and the database's
	 * application_name. Default "participant". */
	const char *name;
	/* nng URLs to listen on ("tcp://0.0.0.0:7001"), NULL-terminated;
	 * at least one. */
	const char *const *listen;
	/* libpq conninfo (key=value or URI) of the participant's own
	 * database. Required. */
	const char *conninfo;
	/* Worker threads, each with its own database connection: how many
	 * handlers run at once. Default 4. */
	int workers;
	/* Requests accepted at once (nng contexts); more wait in nng.
	 * Default 64 (at least workers). */
	int contexts;
	/* Barrier rows are kept this many seconds after the newest row of
	 * their saga, then purged in the background. Must exceed the longest
	 * time a saga can stay unfinished (including a FAILED saga waiting
	 * for an operator): a purged barrier forgets. So a command of a saga
	 * older than this less a tenth (by its id's time) that finds no row
	 * is not run and answered failed, for an operator (docs/
	 * participants.md, retention). Default 7 days; -1 never purges. */
	int64_t retention_s;
	/* How often the purge runs, in milliseconds. Default 60000. */
	int64_t purge_interval_ms;
	/* Largest message accepted, in bytes. Default the protocol's
	 * (1 MiB); keep it equal to sagad's. */
	size_t max_msg_bytes;
	/* SAGA_PARTICIPANT_LOG_*. */
	int log_level;
	/* "text" (the default, also for NULL or "") or "json": one JSON
	 * object per line, with ts, level, program (name), msg, and on the
	 * lines about a command its saga id (saga), step and trace id
	 * (trace_id, from its traceparent); the command's own line also has
	 * kind, attempt, action, outcome, barrier, duration_ms and error,
	 * and an operational event its tag (event: PARTICIPANT-START, ...).
	 * Anything else: saga_participant_new fails with SAGA_ECONFIG. */
	const char *log_format;
	/* The largest number of commands run in one transaction (a batch,
	 * one COMMIT): a worker takes every command waiting, up to this
	 * many, and never waits to fill a batch. 1 runs every command in a transaction of its own.
	 * Default 64; at most 4096 (and, in effect, contexts). */
	int max_batch;
	/* Mutual TLS for tls+tcp:// listen URLs: PEM files of the CA that
	 * signs sagad's certificate (peers without one signed by it are
	 * refused), and of this participant's certificate and key (start
	 * fails if the key is not the certificate's). */
	const char *tls_ca;
	const char *tls_cert;
	const char *tls_key;
	/* When set ("127.0.0.1:9101" or "http://HOST:PORT"), serves
	 * Prometheus metrics at GET /metrics on that address (nng's HTTP
	 * server; plain HTTP: keep it on a private address):
	 *   saga_participant_commands_total{action,kind,outcome}
	 *       commands answered (ok, failed, retry);
	 *   saga_participant_barrier_total{kind,decision}
	 *       the barrier's decisions: run (the handler ran), replay (a
	 *       duplicate answered from the record), null (a compensation
	 *       of an action that never ran), refuse (an action after its
	 *       compensation), retry, expired (older than the
	 *       retention, answered failed), none (not reached);
	 *   saga_participant_handler_seconds{action}
	 *       histogram of the handlers' run time;
	 *   saga_participant_batches_total, _batches_lost_total,
	 *   _reruns_total, saga_participant_batch_size (histogram) and
	 *   saga_participant_queued (commands waiting for a worker).
	 * Default NULL: no metrics. */
	const char *metrics_listen;
} saga_participant_config;

/* saga_participant_stats are a participant's counters since it was made,
 * for metrics (saga_participant_stats_get). */
typedef struct saga_participant_stats {
	/* Commands run by the workers (each answered with a REPLY). */
	uint64_t commands;
	/* Batches: groups of commands taken from the queue together and run
	 * in one transaction. commands / batches is the mean batch size. */
	uint64_t batches;
	/* Batches whose transaction was lost (no database, COMMIT failed,
	 * connection dropped): each of their commands was answered retry. */
	uint64_t batches_lost;
	/* Commands of a batch undone by an SQL error (a lock wait: a batch
	 * does not wait for row locks; a deadlock; a failed barrier
	 * statement) and run again alone after its COMMIT. */
	uint64_t reruns;
	/* The largest batch so far. */
	uint32_t max_batch;
	/* Commands waiting for a worker now. */
	uint32_t queued;
} saga_participant_stats;

/* saga_migration is one migration of a service's own schema, for
 * saga_participant_migrate_set: a version (strictly increasing within a
 * set), a file-like name ("001_init.sql") and the SQL text, which must not
 * contain BEGIN or COMMIT. */
typedef struct saga_migration {
	int         version;
	const char *name;
	const char *sql;
} saga_migration;

/* Command kinds (saga_call_kind). */
#define SAGA_CALL_ACTION       0
#define SAGA_CALL_COMPENSATION 1

/* saga_participant_new validates cfg and makes a participant (not serving
 * yet). Returns 0, SAGA_ENOMEM, or SAGA_ECONFIG with the reason in err. */
int saga_participant_new(saga_participant **out,
    const saga_participant_config *cfg, char *err, size_t errlen);

/* saga_participant_free stops a participant started with
 * saga_participant_start (stops receiving, waits for the handlers running
 * to finish and answer) and frees it; NULL-safe. Not from a handler. With
 * saga_participant_serve: call saga_participant_stop, and free once serve
 * has returned. A participant whose socket libnng did not close (see
 * saga_participant_serve) is not freed: nng's threads may still use it.
 * The metrics' HTTP server (metrics_listen) is stopped here, on a thread
 * waited for 5 s at most: past that the hang is logged, the server and
 * its metrics stay with that thread, and the rest is freed. */
void saga_participant_free(saga_participant *p);

/* saga_participant_on_action registers fn (with arg) as the handler of
 * the action named name. Before start only. Returns 0, SAGA_EINVAL (name
 * empty, fn NULL), SAGA_EEXIST (name already has an action handler),
 * SAGA_ESTATE (already started) or SAGA_ENOMEM. */
int saga_participant_on_action(
    saga_participant *p, const char *name, saga_handler fn, void *arg);

/* saga_participant_on_compensation registers fn as the handler of the
 * compensation named name; as saga_participant_on_action. */
int saga_participant_on_compensation(
    saga_participant *p, const char *name, saga_handler fn, void *arg);

/* saga_participant_migrate applies the barrier schema (table
 * saga_barrier) to the participant's database; applying it again is a
 * no-op, and concurrent instances apply it once. Returns 0, SAGA_EDB or
 * SAGA_ECONFLICT with the reason in err. */
int saga_participant_migrate(saga_participant *p, char *err, size_t errlen);

/* saga_participant_migrate_set applies the service's own migration set
 * (n migrations) to the participant's database with the same runner:
 * forward-only, each in its own transaction, recorded in
 * schema_migrations under set, an edited migration refused. Stores the
 * number applied by this call in *applied (may be NULL). Returns 0,
 * SAGA_EINVAL (set empty or "barrier", versions out of order), SAGA_EDB,
 * SAGA_ECONFLICT or SAGA_ENOMEM, with the reason in err. */
int saga_participant_migrate_set(saga_participant *p, const char *set,
    const saga_migration *migs, size_t n, int *applied, char *err,
    size_t errlen);

/* saga_participant_start starts serving in the background: listens on
 * every URL, starts the workers (each connects to the database, and
 * reconnects with backoff whenever it is lost) and the purge. If the
 * database answers and lacks the barrier schema, start fails (call
 * saga_participant_migrate first); if it does not answer, start succeeds
 * and commands are answered retry until it does. With a tls+tcp:// URL,
 * the TLS files are read and tls_key checked to be the key of tls_cert
 * first (nng takes another's key, and every handshake then fails).
 * Returns 0, SAGA_ESTATE (already started), SAGA_ECONFIG (no barrier
 * schema), SAGA_EINVAL (a TLS file missing or refused, or a key not the
 * certificate's), SAGA_EIO (cannot listen) or SAGA_ENOMEM, with the
 * reason in err. */
int saga_participant_start(saga_participant *p, char *err, size_t errlen);

/* saga_participant_stop asks a participant started by
 * saga_participant_serve to stop: serve then stops receiving, lets the
 * handlers running finish and returns. Returns at once; safe from a
 * signal handler and from any thread. */
void saga_participant_stop(saga_participant *p);

/* saga_participant_serve starts (unless started) and blocks until
 * saga_participant_stop, then stops serving. Commands not answered by
 * then are dropped (sagad resends them). Returns 0 or the error of
 * saga_participant_start; or SAGA_ETIMEDOUT when the participant stopped
 * but libnng did not close its socket within 5 s (libnng 1.5.2 now and
 * then never returns from nng_close): every answer sent was committed
 * first, the participant is left as it is (saga_participant_free then
 * frees nothing), and the process should simply end. */
int saga_participant_serve(saga_participant *p, char *err, size_t errlen);

/* saga_participant_purge runs one purge now, on its own connection:
 * deletes the barrier rows of every saga whose newest row is older than
 * the retention, and stores the number of rows deleted in *deleted (may be
 * NULL). The background purge does the same every purge_interval_ms.
 * Returns 0 or SAGA_EDB with the reason in err. */
int saga_participant_purge(
    saga_participant *p, int64_t *deleted, char *err, size_t errlen);

/* saga_participant_stats_get stores p's counters in *st. Any thread,
 * including handlers; not after saga_participant_free. */
void saga_participant_stats_get(
    saga_participant *p, saga_participant_stats *st);

/* saga_participant_log writes a line of the service's own to the
 * participant's log (stderr, in its log_format) at level (a
 * SAGA_PARTICIPANT_LOG_* from _ERROR to _DEBUG), if the log level lets it
 * through; printf-style, one line (cut at the first newline). Any thread.
 */
void saga_participant_log(saga_participant *p, int level, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* saga_call_log writes a line about the command being handled, as
 * saga_participant_log: in text "saga=<id> step=<n> action=<name>:
 * <message>", in JSON with the fields saga, step, trace_id and action.
 * From the handler only. */
void saga_call_log(const saga_call *call, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* saga_call_id returns the saga id. */
const saga_id *saga_call_id(const saga_call *call);

/* saga_call_id_text returns the saga id as text ("017f22e2-79b0-..."),
 * the form a uuid column takes. */
const char *saga_call_id_text(const saga_call *call);

/* saga_call_step returns the step index (from 0). */
uint32_t saga_call_step(const saga_call *call);

/* saga_call_attempt returns the attempt number (from 1). The barrier is
 * keyed without it: every attempt gets the same outcome. */
uint32_t saga_call_attempt(const saga_call *call);

/* saga_call_kind returns SAGA_CALL_ACTION or SAGA_CALL_COMPENSATION. */
int saga_call_kind(const saga_call *call);

/* saga_call_action returns the action or compensation name. */
const char *saga_call_action(const saga_call *call);

/* saga_call_saga returns the saga (definition) name. */
const char *saga_call_saga(const saga_call *call);

/* saga_call_step_name returns the step's name. */
const char *saga_call_step_name(const saga_call *call);

/* saga_call_traceparent returns the W3C traceparent, or "" when none. */
const char *saga_call_traceparent(const saga_call *call);

/* saga_call_deadline_ms returns the saga's deadline (Unix ms, sagad's
 * clock: past it, a saga before its pivot compensates), or 0 when its
 * definition sets none. */
int64_t saga_call_deadline_ms(const saga_call *call);

/* saga_call_context returns the saga context, a map {"input": {...},
 * "steps": {"<step name>": {...output...}, ...}}. */
const proto_val *saga_call_context(const saga_call *call);

/* saga_call_input returns the saga's input map (context.input), or NULL.
 */
const proto_val *saga_call_input(const saga_call *call);

/* saga_call_output_of returns the output map of an earlier step by name
 * (context.steps.<step_name>), or NULL if it has none. */
const proto_val *saga_call_output_of(
    const saga_call *call, const char *step_name);

/* saga_call_action_output returns, in a compensation, the output its
 * action recorded in this participant's barrier (an empty map if it had
 * none); NULL in an action. */
const proto_val *saga_call_action_output(const saga_call *call);

/* saga_call_db returns the participant's database connection, with the
 * batch's transaction open (READ COMMITTED) inside the command's
 * savepoint. */
PGconn *saga_call_db(const saga_call *call);

/* saga_call_output returns an empty map builder owned by the call (freed
 * after the handler), for saga_call_ok; NULL when out of memory. */
proto_obj *saga_call_output(saga_call *call);

/* saga_call_ok sets the outcome ok with output (NULL or empty: {}),
 * encoded at once (output stays the caller's). Returns 0, SAGA_ESTATE (an
 * outcome was set already), SAGA_ETOOBIG (the output would not fit in a
 * reply, or holds a map or array of more than max_container_len
 * elements), SAGA_ESTRLEN (a string or key above max_str_bytes),
 * SAGA_EDEPTH (nested more than 28 levels, the most a COMMAND can carry
 * in its context) or SAGA_ENOMEM. Nothing is recorded then: the handler
 * may answer otherwise (saga_call_fail, for one). */
int saga_call_ok(saga_call *call, const proto_obj *output);

/* saga_call_fail sets the outcome failed (a business failure: the
 * handler's work is rolled back, the failure recorded) with a reason,
 * printf-style. Returns 0, SAGA_ESTATE or SAGA_ENOMEM. */
int saga_call_fail(saga_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* saga_call_retry sets the outcome retry (transient: nothing is recorded)
 * with a reason, printf-style. Returns 0, SAGA_ESTATE or SAGA_ENOMEM. */
int saga_call_retry(saga_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif /* SAGA_PARTICIPANT_H */
