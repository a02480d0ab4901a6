/* SPDX-License-Identifier: MIT */
/*
 * sagactl_db: sagactl's connection to the saga log in PostgreSQL.
 *
 * The read-only commands read the log directly, so that they work while
 * sagad is down; their session is read-only (default_transaction_read_only)
 * so that a mistake here cannot write. Every query is parameterised
 * (PQexecParams, text parameters cast in the SQL), and every failure is
 * printed as one line that says what to do.
 */
#ifndef COORDINATOR_SAGACTL_DB_H
#define COORDINATOR_SAGACTL_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "sagactl.h"

/* Times are read as Unix ms, (extract(epoch FROM col) * 1000)::bigint,
 * and passed as Unix ms, to_timestamp($n::bigint / 1000.0): no time zone
 * of the session is involved. */

/* sagactl_db_open connects to ctx->db (else DATABASE_URL, else libpq's
 * PG* variables), read-only unless writable. Returns 0 and sets *out, or
 * SAGACTL_EXIT_FAIL after printing why. */
int sagactl_db_open(const sagactl_ctx *ctx, bool writable, PGconn **out);

/* sagactl_db_query runs sql with n text parameters (NULL entries are SQL
 * NULL). Returns the result (PQclear it), or NULL after printing the
 * error. */
PGresult *sagactl_db_query(const sagactl_ctx *ctx, PGconn *c, const char *sql,
    int n, const char *const *params);

/* sagactl_intr_begin makes Ctrl-C (SIGINT) and SIGTERM, until
 * sagactl_intr_end, stop a long command at its next step instead of
 * killing it, so that it says what it did: the statement in flight on db
 * (if not NULL) is cancelled (PQcancel, which a signal handler may call),
 * and sagactl_interrupted tells the command to stop. A second signal
 * kills at once (the first's cancel may hang on a silent network); one
 * that was ignored stays ignored. Once the command has said what it did,
 * main raises the signal again (sagactl_intr_signal), so that sagactl
 * ends killed by it, as a shell's loop expects. NULL-safe; _end is a
 * no-op without _begin. */
void sagactl_intr_begin(PGconn *db);
void sagactl_intr_end(void);
bool sagactl_interrupted(void);
int  sagactl_intr_signal(void);

/* What a command that stopped so returns (128 + SIGINT), if sagactl
 * cannot die of the signal. */
#define SAGACTL_EXIT_INTR 130

/* sagactl_db_str returns the text of a column, or NULL when it is NULL. */
const char *sagactl_db_str(const PGresult *r, int row, int col);

/* sagactl_db_i64 returns an integer column, or dflt when it is NULL. */
int64_t sagactl_db_i64(const PGresult *r, int row, int col, int64_t dflt);

/* sagactl_db_f64 returns a number column, or dflt when it is NULL. */
double sagactl_db_f64(const PGresult *r, int row, int col, double dflt);

/* sagactl_db_bytea decodes a bytea column (text format) into a malloc'd
 * buffer (free with PQfreemem) and its length. Returns NULL when the
 * column is NULL or cannot be decoded. */
unsigned char *sagactl_db_bytea(
    const PGresult *r, int row, int col, size_t *len);

#endif /* COORDINATOR_SAGACTL_DB_H */
