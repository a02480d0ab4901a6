/* SPDX-License-Identifier: MIT */
/*
 * sagactl_db: connecting and querying. See sagactl_db.h.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sagactl_db.h"
#include "sql_conn.h"
#include "sql_durable.h"
#include "sql_migrate.h"

static const int               sagactl_intr_sigs[2] = { SIGINT, SIGTERM };
static volatile sig_atomic_t   sagactl_intr_sig; /* caught; 0: none */
static PGcancel *volatile      sagactl_intr_cancel;
static struct sigaction        sagactl_intr_old[2];
static bool                    sagactl_intr_on;

/* PQcancel connects to the server and may block there (a silent
 * network): the handler is reset to the default at its entry
 * (SA_RESETHAND) and the signal is not blocked while it runs
 * (SA_NODEFER), so that a second one kills at once. */
static void
sagactl_intr_cb(int sig)
{
	PGcancel *c = sagactl_intr_cancel;
	char      err[256];

	sagactl_intr_sig = sig;
	if (c != NULL) {
		(void) PQcancel(c, err, sizeof(err));
	}
}

void
sagactl_intr_begin(PGconn *db)
{
	struct sigaction sa;

	sagactl_intr_sig    = 0;
	sagactl_intr_cancel = db != NULL ? PQgetCancel(db) : NULL;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sagactl_intr_cb;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_RESETHAND | SA_NODEFER;
	for (int i = 0; i < 2; i++) {
		(void) sigaction(sagactl_intr_sigs[i], NULL,
		    &sagactl_intr_old[i]);
		/* Ignored (a background job of a script): stays so. */
		if (sagactl_intr_old[i].sa_handler != SIG_IGN) {
			(void) sigaction(sagactl_intr_sigs[i], &sa, NULL);
		}
	}
	sagactl_intr_on = true;
}

void
sagactl_intr_end(void)
{
	PGcancel *c = sagactl_intr_cancel;

	if (!sagactl_intr_on) {
		return;
	}
	/* The handlers go first: none may read the cancel freed below
	 * (sagactl's one thread that talks to PostgreSQL is this one). */
	for (int i = 0; i < 2; i++) {
		(void) sigaction(sagactl_intr_sigs[i], &sagactl_intr_old[i],
		    NULL);
	}
	sagactl_intr_cancel = NULL;
	sagactl_intr_on     = false;
	PQfreeCancel(c);
}

bool
sagactl_interrupted(void)
{
	return (sagactl_intr_sig != 0);
}

int
sagactl_intr_signal(void)
{
	return ((int) sagactl_intr_sig);
}

/* The first line of a libpq message, without "ERROR:  " or "FATAL:  ". */
static void
sagactl_db_line(const char *msg, char *buf, size_t len)
{
	static const char *const prefixes[] = { "ERROR:  ", "FATAL:  " };
	size_t                   n;

	for (size_t i = 0; i < 2; i++) {
		if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0) {
			msg += strlen(prefixes[i]);
		}
	}
	n = strcspn(msg, "\n");
	snprintf(buf, len, "%.*s", (int) n, msg);
}

/* Refuses a saga log whose schema is older than this sagactl's queries
 * (they would fail on a missing column with "query failed"). A newer one
 * is read: migrations only add. */
static int
sagactl_db_schema(const sagactl_ctx *ctx, PGconn *c)
{
	int  want = coordinator_migrations[coordinator_migrations_count - 1]
	               .version;
	int  have = 0;
	char line[512];

	if (sql_migrate_version(c, "coordinator", &have, line, sizeof(line))
	    != 0) {
		return (sagactl_error(
		    ctx, "cannot read the schema version: %s", line));
	}
	if (have == 0) {
		return (sagactl_error(ctx,
		    "the database has no saga log; check --db, or create the "
		    "schema with sagad --migrate"));
	}
	if (have < want) {
		return (sagactl_error(ctx,
		    "the saga log's schema is at version %d, this sagactl "
		    "needs %d: run sagad --migrate with the sagad of this "
		    "release",
		    have, want));
	}
	return (0);
}

int
sagactl_db_open(const sagactl_ctx *ctx, bool writable, PGconn **out)
{
	const char *conninfo = ctx->db;
	const char *from     = "--db";
	char        line[512];
	PGconn     *c;

	if (conninfo == NULL && (conninfo = getenv("DATABASE_URL")) != NULL) {
		from = "DATABASE_URL";
	}
	if (conninfo == NULL) {
		conninfo = "";
		from     = "PGHOST/PGPORT/PGDATABASE";
	}
	/* sagad's bounded waits (docs/operations.md, "Database
	 * connections"), which the conninfo may override. */
	if ((c = sql_conn_open(conninfo, "sagactl")) == NULL) {
		return (sagactl_error(ctx, "out of memory"));
	}
	if (PQstatus(c) != CONNECTION_OK) {
		sagactl_db_line(PQerrorMessage(c), line, sizeof(line));
		PQfinish(c);
		return (sagactl_error(ctx,
		    "cannot connect to PostgreSQL: %s; check that the server "
		    "is up and %s%s",
		    line, from,
		    ctx->db != NULL ? "" : " (or give --db CONNINFO)"));
	}
	if (sagactl_db_schema(ctx, c) != 0) {
		PQfinish(c);
		return (1);
	}
	if (!writable) {
		PGresult *r
		    = PQexec(c, "SET default_transaction_read_only = on");

		PQclear(r);
	} else {
		const char *level;
		bool        raised;

		/* What this connection deletes (purge) must stay deleted
		 * once sagactl says so: with synchronous_commit off, a
		 * server crash can bring back rows it reported purged. */
		if (sql_durable_check(
		        c, &level, &raised, line, sizeof(line))
		    != 0) {
			PQfinish(c);
			return (sagactl_error(ctx, "%s", line));
		}
		if (raised) {
			sagactl_note(ctx,
			    "synchronous_commit is off for this database, "
			    "role or PGOPTIONS; set to on for this session "
			    "(see docs/operations.md)");
		}
	}
	*out = c;
	return (0);
}

PGresult *
sagactl_db_query(const sagactl_ctx *ctx, PGconn *c, const char *sql, int n,
    const char *const *params)
{
	PGresult      *r;
	ExecStatusType st;
	const char    *code;
	bool           no_table, lock_wait;
	char           line[512];

	r  = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(r);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		return (r);
	}
	/* The SQLSTATE lives in r: read before PQclear. */
	code = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	no_table  = code != NULL && strcmp(code, "42P01") == 0;
	lock_wait = code != NULL && strcmp(code, "55P03") == 0;
	sagactl_db_line(
	    r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c), line,
	    sizeof(line));
	PQclear(r);
	if (sagactl_interrupted()) {
		sagactl_error(ctx,
		    "interrupted: the statement in flight was cancelled (%s)",
		    line);
	} else if (lock_wait) {
		sagactl_error(ctx,
		    "%s: another session holds a lock this statement needs "
		    "(on a table, or on rows it must change: see pg_locks and "
		    "pg_stat_activity); it changed nothing: try again",
		    line);
	} else if (no_table) {
		sagactl_error(ctx,
		    "the database has no saga log (%s); check --db, or create "
		    "the schema with sagad --migrate",
		    line);
	} else if (PQstatus(c) != CONNECTION_OK) {
		sagactl_error(ctx,
		    "lost the connection to PostgreSQL: %s; try again", line);
	} else {
		sagactl_error(ctx, "query failed: %s", line);
	}
	return (NULL);
}

const char *
sagactl_db_str(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col)) {
		return (NULL);
	}
	return (PQgetvalue(r, row, col));
}

int64_t
sagactl_db_i64(const PGresult *r, int row, int col, int64_t dflt)
{
	if (PQgetisnull(r, row, col)) {
		return (dflt);
	}
	return ((int64_t) strtoll(PQgetvalue(r, row, col), NULL, 10));
}

double
sagactl_db_f64(const PGresult *r, int row, int col, double dflt)
{
	if (PQgetisnull(r, row, col)) {
		return (dflt);
	}
	return (strtod(PQgetvalue(r, row, col), NULL));
}

unsigned char *
sagactl_db_bytea(const PGresult *r, int row, int col, size_t *len)
{
	if (PQgetisnull(r, row, col)) {
		return (NULL);
	}
	return (PQunescapeBytea(
	    (const unsigned char *) PQgetvalue(r, row, col), len));
}
