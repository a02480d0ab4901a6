/* SPDX-License-Identifier: MIT */
/*
 * sql_conn: connections with bounded waits (see sql_conn.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql_conn.h"

PGconn *
sql_conn_open(const char *conninfo, const char *app)
{
	const char *keys[10];
	const char *vals[10];
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
	/* After dbname: the conninfo's own value does not win. */
	keys[n]   = "client_encoding";
	vals[n++] = "UTF8";
	keys[n]   = NULL;
	vals[n]   = NULL;
	return (PQconnectdbParams(keys, vals, 1));
}

int
sql_conn_utf8_check(PGconn *conn, char *err, size_t errlen)
{
	const char *enc = PQparameterStatus(conn, "server_encoding");

	if (enc != NULL &&
	    (strcmp(enc, "UTF8") == 0 || strcmp(enc, "SQL_ASCII") == 0)) {
		return (0);
	}
	snprintf(err, errlen,
	    "the database %s is in encoding %s; the saga log needs UTF8 "
	    "(CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0)",
	    PQdb(conn), enc != NULL ? enc : "(unknown)");
	return (1);
}
