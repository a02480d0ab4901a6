/* SPDX-License-Identifier: MIT */
/*
 * sql_durable: the check of synchronous_commit made on every connection
 * of sagad and of the participant library (see sql_durable.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "saga_err.h"
#include "sql_durable.h"

/* The values that flush the local WAL before COMMIT returns, each with
 * the statement that sets it for one transaction. */
static const struct {
	const char *level;
	const char *set_local;
} sql_durable_levels[] = {
	{ "on", "SET LOCAL synchronous_commit = on" },
	{ "local", "SET LOCAL synchronous_commit = local" },
	{ "remote_write", "SET LOCAL synchronous_commit = remote_write" },
	{ "remote_apply", "SET LOCAL synchronous_commit = remote_apply" },
};
#define SQL_DURABLE_NLEVELS \
	(sizeof(sql_durable_levels) / sizeof(sql_durable_levels[0]))

/* Runs sql, which must end with status want; else err says why. */
static PGresult *
sql_durable_exec(PGconn *conn, const char *sql, ExecStatusType want,
    char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != want) {
		snprintf(err, errlen, "%s: %s", sql,
		    res != NULL ? PQresultErrorMessage(res)
		                : PQerrorMessage(conn));
		err[strcspn(err, "\n")] = '\0';
		PQclear(res);
		return (NULL);
	}
	return (res);
}

int
sql_durable_check(PGconn *conn, const char **level, bool *raised,
    char *err, size_t errlen)
{
	PGresult   *res;
	const char *v;
	bool        off;

	if ((res = sql_durable_exec(conn, "SHOW synchronous_commit",
	         PGRES_TUPLES_OK, err, errlen)) == NULL) {
		return (SAGA_EDB);
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 1) {
		snprintf(err, errlen, "SHOW synchronous_commit: no value");
		PQclear(res);
		return (SAGA_EDB);
	}
	v   = PQgetvalue(res, 0, 0);
	off = strcmp(v, "off") == 0;
	for (size_t i = 0; i < SQL_DURABLE_NLEVELS; i++) {
		/* off becomes on, the first of the table. */
		if (!off && strcmp(v, sql_durable_levels[i].level) != 0) {
			continue;
		}
		PQclear(res);
		if (off) {
			res = sql_durable_exec(conn,
			    "SET synchronous_commit = on", PGRES_COMMAND_OK,
			    err, errlen);
			if (res == NULL) {
				return (SAGA_EDB);
			}
			PQclear(res);
		}
		*level  = sql_durable_levels[i].level;
		*raised = off;
		return (0);
	}
	/* Unknown to this build: whether COMMIT waits for the flush
	 * cannot be told. */
	snprintf(err, errlen,
	    "synchronous_commit is \"%.64s\", none of on, local, "
	    "remote_write, remote_apply, off",
	    v);
	PQclear(res);
	return (SAGA_EDB);
}

const char *
sql_durable_set_local(const char *level)
{
	for (size_t i = 0; i < SQL_DURABLE_NLEVELS; i++) {
		if (level != NULL &&
		    strcmp(level, sql_durable_levels[i].level) == 0) {
			return (sql_durable_levels[i].set_local);
		}
	}
	return (NULL);
}
