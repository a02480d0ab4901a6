/* SPDX-License-Identifier: MIT */
/*
 * saga_store: the saga log in PostgreSQL, through libpq.
 *
 * Two ways to use a connection:
 *  - blocking calls (start-up, recovery, the reader thread): register
 *    definitions, load sagas, look up start keys;
 *  - the write pipeline (engine thread only): transitions of many sagas are
 *    staged, then sent as ONE transaction (BEGIN, the statements, COMMIT,
 *    Sync) in libpq pipeline mode with prepared statements and binary
 *    parameters, and its results are read without blocking. At most one
 *    batch is in flight; what is staged meanwhile waits for the next.
 *
 * DESIGN: write-ahead (DESIGN.md invariant 1) is the caller's rule, made
 * possible here: saga_store_poll reports a batch as committed only after
 * it has read the COMMIT's result as success. Any other end (an error, a
 * broken connection) is reported as failed, and the caller must treat
 * every saga of the batch as unknown and reload it from the log.
 */
#ifndef COORDINATOR_SAGA_STORE_H
#define COORDINATOR_SAGA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto_val.h"
#include "saga_engine.h"
#include "saga_id.h"

typedef struct saga_store saga_store;

/* saga_row is one saga_instance row as loaded. Strings are malloc'd and
 * owned by the row (saga_row_fini). */
typedef struct saga_row {
	saga_id    id;
	char      *saga_name;
	int        saga_version;
	saga_state state;
	int32_t    current_step;
	uint32_t   attempt;
	int32_t    max_sent;
	int64_t    phase_started_ms; /* 0 = NULL */
	proto_buf  context;
	char      *business_key;     /* NULL when none */
	char      *traceparent;      /* NULL when none */
	char      *last_error;       /* NULL when none */
	int64_t    created_ms;
	int64_t    updated_ms;
	int64_t    deadline_ms;      /* 0 = none */
	int64_t    next_attempt_ms;  /* 0 = NULL */
	uint32_t   event_seq;
	uint32_t   phase_attempt0;
	int64_t    epoch;       /* fences writes: see saga_store_claim */
	char      *owner;       /* instance id, or NULL */
	char      *cancel_note; /* a cancel asked through the database */
} saga_row;

/* saga_row_fini frees what the row owns; NULL-safe. */
void saga_row_fini(saga_row *r);

/* saga_store_open connects (blocking, with the bounded waits of
 * sql_conn_open) as instance owner, whose leases last lease_ms, turns
 * synchronous_commit on for the session if it is off
 * (saga_store_warning), and checks that the coordinator schema is
 * migrated up to this build's last migration. New sagas are owned by
 * owner; updates are fenced by owner and the saga's epoch. Returns 0,
 * SAGA_EDB (with the reason in err) or SAGA_ESTATE (schema too old: run
 * sagad --migrate). */
int saga_store_open(saga_store **out, const char *conninfo,
    const char *owner, int64_t lease_ms, char *err, size_t errlen);

/* saga_store_free closes the connection and frees everything; NULL-safe. */
void saga_store_free(saga_store *st);

/* saga_store_ok tells whether the connection is still usable. */
bool saga_store_ok(const saga_store *st);

/* saga_store_warning returns what saga_store_open found wrong but put
 * right, for the caller to log once as a warning, or NULL: the
 * connection had synchronous_commit off (a database's or role's
 * setting, or PGOPTIONS), and set it to on. */
const char *saga_store_warning(const saga_store *st);

/* saga_store_error returns the last error text. */
const char *saga_store_error(const saga_store *st);

/* saga_store_def_register stores a definition's canonical JSON under name
 * (a new version if its content hash is new) and returns its version and
 * hash (65 bytes). Blocking. Returns 0 or SAGA_EDB. */
int saga_store_def_register(saga_store *st, const char *name,
    const char *json, int *version, char *hash);

/* saga_store_def_load fetches the canonical JSON of (name, version) into a
 * malloc'd string. Blocking. Returns 0, SAGA_ENOTFOUND or SAGA_EDB. */
int saga_store_def_load(
    saga_store *st, const char *name, int version, char **json);

/* saga_store_load_active calls cb for every unfinished saga (RUNNING or
 * COMPENSATING), oldest first; cb takes ownership of the row's contents
 * (it must saga_row_fini it) and returns 0 to go on. Blocking. Returns 0,
 * SAGA_EDB, or what cb returned. */
int saga_store_load_active(
    saga_store *st, int (*cb)(void *arg, saga_row *row), void *arg);

/* saga_store_load_one loads one saga. Blocking. Returns 0, SAGA_ENOTFOUND
 * or SAGA_EDB. */
int saga_store_load_one(saga_store *st, const saga_id *id, saga_row *out);

/* saga_store_key_lookup finds the saga started with idempotency key. On 0
 * *id is its saga and *same tells whether the stored request hash equals
 * the hash of (saga_name, input). Blocking. Returns 0, SAGA_ENOTFOUND or
 * SAGA_EDB. */
int saga_store_key_lookup(saga_store *st, const char *key,
    const char *saga_name, proto_raw input, saga_id *id, bool *same);

/* saga_store_count_state counts the sagas in state st. Blocking. Returns
 * 0 or SAGA_EDB. */
int saga_store_count_state(saga_store *st, saga_state state, long long *n);

/* Several instances (DESIGN.md, "Growing past one machine"). Each
 * unfinished saga has an owner, a lease (in the database's clock) and an
 * epoch that fences the writes of an owner that lost it. */

/* saga_store_register records this instance (saga_coordinator) under its
 * id with this process's host and pid and its API URL listen, unless
 * another process holds the id: a row not stopped, whose heartbeat is
 * younger than the lease, of another host, or of this host and a pid that
 * still runs and is not this process's. Check and write are one atomic
 * step (two processes starting with one id cannot both pass). Blocking.
 * Returns 0, SAGA_EEXIST (the id is in use; saga_store_error says by
 * whom, in one line) or SAGA_EDB. */
int saga_store_register(saga_store *st, const char *listen);

/* saga_store_renew_every_ms is how often an instance whose leases last
 * lease_ms renews them (saga_store_renew): a third of the lease, at most
 * 500 ms. A write renews a saga's lease only when less of it is left than
 * lease_ms less half of this (saga_store.c, SAGA_SQL_LEASE). */
int64_t saga_store_renew_every_ms(int64_t lease_ms);

/* saga_store_renew extends the lease of every unfinished saga this
 * instance owns, in one statement that waits for no row lock (a row the
 * engine is writing has its lease extended by that write if it needs
 * it: saga_store_renew_every_ms), and its
 * heartbeat; *ids (malloc'd, n) are the sagas renewed, and *locked
 * (malloc'd, nlocked) the others this instance owned as the statement
 * began (their rows locked, so not renewed). If the id's row names
 * another process (host and pid), nothing is renewed and holder
 * (holderlen bytes) says which ("host H, pid P"); else holder is "".
 * Blocking. Returns 0, SAGA_EDB or SAGA_ENOMEM. */
int saga_store_renew(saga_store *st, saga_id **ids, size_t *n,
    saga_id **locked, size_t *nlocked, char *holder, size_t holderlen);

/* saga_store_claim_ids takes back (epoch + 1) the sagas of ids that this
 * instance owns in the log but does not hold in memory, and calls cb for
 * each row (cb owns it). Blocking. */
int saga_store_claim_ids(saga_store *st, const saga_id *ids, size_t n,
    int (*cb)(void *arg, saga_row *row), void *arg);

/* saga_store_claim takes over up to limit unfinished sagas: with others,
 * those whose lease expired or that have no owner; with mine, those this
 * instance id owns (before a restart, or a reconnect). It bumps their
 * epoch and calls cb for each row (cb owns it). The nskip sagas of skip
 * are left alone. Blocking. Returns 0, SAGA_EDB, SAGA_ENOMEM or what cb
 * returned. */
int saga_store_claim(saga_store *st, bool mine, bool others, long limit,
    const saga_id *skip, size_t nskip, int (*cb)(void *arg, saga_row *row),
    void *arg, long *claimed);

/* saga_store_give_back returns a saga this instance claimed at epoch but
 * cannot run (it cannot load it): no owner, no lease, so that another
 * instance may take it, and a load_failed event saying why (by this
 * instance). Nothing happens if the claim is no longer this instance's,
 * nor if another session holds the row locked: *locked then tells to
 * try again later. Blocking, but never waits for a lock. Returns 0 or
 * SAGA_EDB. */
int saga_store_give_back(saga_store *st, const saga_id *id, int64_t epoch,
    const char *why, bool *locked);

/* saga_store_claim_one takes a FAILED saga for an operator's repair.
 * Returns 0, SAGA_ENOTFOUND (not FAILED) or SAGA_EDB. */
int saga_store_claim_one(saga_store *st, const saga_id *id, saga_row *out);

/* saga_store_request_cancel records a cancel for a RUNNING saga that
 * another instance owns. Returns 0 (out: the row), SAGA_ENOTFOUND (not
 * RUNNING) or SAGA_EDB. */
int saga_store_request_cancel(
    saga_store *st, const saga_id *id, const char *note, saga_row *out);

/* saga_store_cancels calls cb for every cancel request on a saga this
 * instance owns. */
int saga_store_cancels(saga_store *st,
    int (*cb)(void *arg, const saga_id *id, const char *note), void *arg);

/* How long saga_store_release waits for a table lock, and for each of
 * its statements, at most (SQL text). */
#define SAGA_STORE_RELEASE_LOCK_WAIT "'2s'"
#define SAGA_STORE_RELEASE_WAIT "'4s'"

/* saga_store_release gives up this instance's leases (SIGTERM: the others
 * take over at once) and marks it stopped, without waiting for a row
 * that another session holds locked: such a saga keeps its lease until
 * it expires (as after a kill -9), and so may the instance's row. A
 * table lock is waited for SAGA_STORE_RELEASE_LOCK_WAIT at most, each
 * statement runs SAGA_STORE_RELEASE_WAIT at most. Blocking. On 0, *released
 * is the number of leases given up, *left that of those left to expire.
 * Returns 0 or SAGA_EDB (nothing released). */
int saga_store_release(saga_store *st, long *released, long *left);

/* Extra columns of a new saga that the engine does not track. */
typedef struct saga_store_new {
	const char *saga_name;
	int         saga_version;
	proto_raw   context;
	const char *business_key; /* or NULL */
	const char *traceparent;  /* or NULL */
	const char *key;          /* idempotency key, or NULL */
	proto_raw   input;        /* for the key's request hash */
} saga_store_new;

/* saga_store_pipeline_start prepares the statements of a batch and
 * switches the connection to pipeline mode for the engine thread
 * (non-blocking); only such a connection can flush (saga_store_flush
 * returns SAGA_ESTATE on any other). Returns 0 or SAGA_EDB; after an
 * error the store cannot be started again: free it. */
int saga_store_pipeline_start(saga_store *st);

/* saga_store_fd returns the connection's socket, to poll. */
int saga_store_fd(const saga_store *st);

/* saga_store_stage_insert stages the INSERT of a new saga (and of its
 * start key). Returns 0 or SAGA_ENOMEM. */
int saga_store_stage_insert(
    saga_store *st, const saga_inst *inst, const saga_store_new *nw);

/* saga_store_stage_update stages the UPDATE of a saga's row at now_ms,
 * fenced by epoch (the one this instance holds); context is written only
 * when context.len > 0; clear_cancel clears a cancel request the
 * transition carried out. Returns 0 or SAGA_ENOMEM. */
int saga_store_stage_update(saga_store *st, const saga_inst *inst,
    proto_raw context, int64_t now_ms, int64_t epoch, bool clear_cancel);

/* saga_store_fenced returns the sagas of the batch just committed whose
 * update did not happen because this instance no longer owns them at the
 * epoch it held (their events were not written either): the caller drops
 * them and their effects. */
size_t saga_store_fenced(const saga_store *st, const saga_id **ids);

/* saga_store_lost returns the new sagas of the batch just committed that
 * are not in the log: another START committed their idempotency key
 * first (through another instance), so the batch left that key alone and
 * deleted the saga and its events again. The caller drops them and their
 * effects, and answers their STARTs from the saga that has the key. */
size_t saga_store_lost(const saga_store *st, const saga_id **ids);

/* saga_store_stage_log stages the INSERT of one event row. */
int saga_store_stage_log(
    saga_store *st, const saga_id *id, const saga_log *log);

/* saga_store_staged returns the number of statements staged. */
size_t saga_store_staged(const saga_store *st);

/* saga_store_in_flight tells whether a batch awaits its results. */
bool saga_store_in_flight(const saga_store *st);

/* saga_store_flush sends the staged statements as one transaction, if any
 * are staged and no batch is in flight. Returns 0 or SAGA_EDB (the
 * connection is broken). */
int saga_store_flush(saga_store *st);

/* saga_store_commit_sent tells, after a flush that failed, whether its
 * COMMIT had been queued: the server may then have committed the batch
 * (it does not wait for the Sync), and its outcome is unknown. */
bool saga_store_commit_sent(const saga_store *st);

/* saga_store_want_write tells whether libpq has unsent bytes (poll for
 * POLLOUT too). */
bool saga_store_want_write(const saga_store *st);

/* Results of saga_store_poll. */
typedef enum saga_store_result {
	SAGA_STORE_PENDING   = 0, /* nothing finished yet */
	SAGA_STORE_COMMITTED = 1, /* the batch in flight committed */
	SAGA_STORE_FAILED    = 2, /* it did not (or its fate is unknown) */
} saga_store_result;

/* saga_store_poll sends pending bytes, reads what arrived and tells
 * whether the batch in flight finished. Never blocks. */
saga_store_result saga_store_poll(saga_store *st);

/* saga_store_batch_size returns the number of statements of the last batch
 * sent (for metrics and logs). */
size_t saga_store_batch_size(const saga_store *st);

#endif /* COORDINATOR_SAGA_STORE_H */
