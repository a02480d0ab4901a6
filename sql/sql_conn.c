/* SPDX-License-Identifier: MIT */
/*
 * sql_conn: connections with bounded waits (see sql_conn.h).
 */
#include <stdlib.h>

#include "sql_conn.h"

PGconn *
sql_conn_open(const char *conninfo, const char *app)
{
	const char *keys[9];
	const char *vals[9];
	int         n = 0;

	/* PQconnectdbParams takes the keys in order and a later one wins;
	 * with expand_dbname, "dbname" is expanded in its place. So the
	 * defaults come first and what conninfo sets overrides them. An
	 * explicit parameter also beats the environment: connect_timeout
	 * is left out when PGCONNECT_TIMEOUT is set, so that it applies. */
	if (app != NULL) {
		keys[n]   = "fallback_application_name";
		vals[n++] = app;
	}
	if (getenv("PGCONNECT_TIMEOUT") == NULL) {
		keys[n]   = "connect_timeout";
		vals[n++] = SQL_CONN_CONNECT_TIMEOUT;
	}
	keys[n]   = "keepalives";
	vals[n++] = "1";
	keys[n]   = "keepalives_idle";
	vals[n++] = SQL_CONN_KEEPALIVES_IDLE;
	keys[n]   = "keepalives_interval";
	vals[n++] = SQL_CONN_KEEPALIVES_INTERVAL;
	keys[n]   = "keepalives_count";
	vals[n++] = SQL_CONN_KEEPALIVES_COUNT;
	keys[n]   = "tcp_user_timeout";
	vals[n++] = SQL_CONN_TCP_USER_TIMEOUT;
	keys[n]   = "dbname";
	vals[n++] = conninfo;
	keys[n]   = NULL;
	vals[n]   = NULL;
	return (PQconnectdbParams(keys, vals, 1));
}
