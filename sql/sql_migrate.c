/* SPDX-License-Identifier: MIT */
/*
 * sql_migrate: applies numbered migrations, each in its own transaction.
 * See sql_migrate.h.
 *
 * The checksum of a migration is computed by the server (md5 of its text),
 * so that the runner needs no hashing of its own.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saga_err.h"
#include "sql_migrate.h"

/* The advisory lock key serialising migrators: "sagamig" in ASCII. */
#define SQL_MIGRATE_LOCK "7526725375210343"

static int
sql_migrate_err(char *errbuf, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
sql_migrate_err(char *errbuf, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (errbuf != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
		/* libpq messages end in a newline: drop it. */
		errbuf[strcspn(errbuf, "\n")] = '\0';
	}
	return (code);
}

/* Runs one command that returns no rows; on error rolls back. */
static int
sql_migrate_exec(PGconn *conn, const char *sql, char *errbuf, size_t errlen,
    const char *what)
{
	PGresult *res = PQexec(conn, sql);
	int       rv  = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		rv = sql_migrate_err(errbuf, errlen, SAGA_EDB, "%s: %s", what,
		    PQresultErrorMessage(res));
	}
	PQclear(res);
	return (rv);
}

static void
sql_migrate_rollback(PGconn *conn)
{
	PQclear(PQexec(conn, "ROLLBACK"));
}

static const char sql_migrate_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " set_name text NOT NULL,"
    " version integer NOT NULL,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (set_name, version))";

int
sql_migrate_apply(PGconn *conn, const char *set, const sql_migration *migs,
    size_t n, int *applied, char *errbuf, size_t errlen)
{
	int count = 0;
	int rv;

	for (size_t i = 1; i < n; i++) {
		if (migs[i].version <= migs[i - 1].version) {
			return (sql_migrate_err(errbuf, errlen, SAGA_EINVAL,
			    "migration set %s: %s does not come after %s", set,
			    migs[i].name, migs[i - 1].name));
		}
	}
	for (size_t i = 0; i < n; i++) {
		const sql_migration *m = &migs[i];
		char                 ver[16];
		const char          *params[4];
		PGresult            *res;
		char                 what[160];

		snprintf(ver, sizeof(ver), "%d", m->version);
		snprintf(what, sizeof(what), "migration %s/%s", set, m->name);
		if ((rv = sql_migrate_exec(conn, "BEGIN", errbuf, errlen,
		         what)) != 0) {
			return (rv);
		}
		/* Quiet: CREATE TABLE IF NOT EXISTS notices are noise. */
		if ((rv = sql_migrate_exec(conn,
		         "SET LOCAL client_min_messages = warning", errbuf,
		         errlen, what)) != 0 ||
		    (rv = sql_migrate_exec(conn,
		         "SELECT pg_advisory_xact_lock(" SQL_MIGRATE_LOCK ")",
		         errbuf, errlen, what)) != 0 ||
		    (rv = sql_migrate_exec(conn, sql_migrate_table, errbuf,
		         errlen, what)) != 0) {
			goto fail;
		}
		params[0] = set;
		params[1] = ver;
		params[2] = m->sql;
		res       = PQexecParams(conn,
                    "SELECT checksum = md5($3) FROM schema_migrations"
		          " WHERE set_name = $1 AND version = $2::integer",
                    3, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rv = sql_migrate_err(errbuf, errlen, SAGA_EDB, "%s: %s",
			    what, PQresultErrorMessage(res));
			PQclear(res);
			goto fail;
		}
		if (PQntuples(res) == 1) {
			bool same = strcmp(PQgetvalue(res, 0, 0), "t") == 0;

			PQclear(res);
			sql_migrate_rollback(conn);
			if (!same) {
				return (sql_migrate_err(errbuf, errlen,
				    SAGA_ECONFLICT,
				    "%s was changed after it was applied to "
				    "this database: migrations are never "
				    "edited, add a new one instead",
				    what));
			}
			continue;
		}
		PQclear(res);
		if ((rv = sql_migrate_exec(conn, m->sql, errbuf, errlen,
		         what)) != 0) {
			goto fail;
		}
		params[2] = m->name;
		params[3] = m->sql;
		res       = PQexecParams(conn,
                    "INSERT INTO schema_migrations"
		          " (set_name, version, name, checksum)"
		          " VALUES ($1, $2::integer, $3, md5($4))",
                    4, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rv = sql_migrate_err(errbuf, errlen, SAGA_EDB, "%s: %s",
			    what, PQresultErrorMessage(res));
			PQclear(res);
			goto fail;
		}
		PQclear(res);
		if ((rv = sql_migrate_exec(conn, "COMMIT", errbuf, errlen,
		         what)) != 0) {
			return (rv);
		}
		count++;
	}
	if (applied != NULL) {
		*applied = count;
	}
	return (0);
fail:
	sql_migrate_rollback(conn);
	return (rv);
}

int
sql_migrate_version(PGconn *conn, const char *set, int *version,
    char *errbuf, size_t errlen)
{
	const char *params[1] = { set };
	PGresult   *res;
	bool        exists;

	res = PQexec(conn,
	    "SELECT to_regclass('schema_migrations') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return (sql_migrate_err(errbuf, errlen, SAGA_EDB,
		    "looking for schema_migrations: %s",
		    PQerrorMessage(conn)));
	}
	exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!exists) {
		*version = 0;
		return (0);
	}
	res = PQexecParams(conn,
	    "SELECT coalesce(max(version), 0) FROM schema_migrations"
	    " WHERE set_name = $1",
	    1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return (sql_migrate_err(errbuf, errlen, SAGA_EDB,
		    "reading schema_migrations: %s", PQerrorMessage(conn)));
	}
	*version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return (0);
}
