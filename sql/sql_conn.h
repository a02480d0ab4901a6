/* SPDX-License-Identifier: MIT */
/*
 * sql_conn: how sagad, sagactl and the participant library open their
 * connections to PostgreSQL.
 *
 * libpq waits without a bound unless told otherwise: PQconnectdb on a path
 * that accepts TCP but never answers (a hung proxy or pooler, a half-open
 * network) blocks for ever, and an established connection whose peer
 * vanished without a RST waits for a result as long as the kernel's TCP
 * defaults (hours). Every connection sagad makes (its writers, its
 * readers, the hand-over at SIGTERM, --migrate), sagactl's and the
 * participant library's go through sql_conn_open, which gives these
 * settings defaults:
 *
 *   connect_timeout      SQL_CONN_CONNECT_TIMEOUT seconds per host
 *   keepalives           1
 *   keepalives_idle      SQL_CONN_KEEPALIVES_IDLE seconds
 *   keepalives_interval  SQL_CONN_KEEPALIVES_INTERVAL seconds
 *   keepalives_count     SQL_CONN_KEEPALIVES_COUNT probes
 *   tcp_user_timeout     SQL_CONN_TCP_USER_TIMEOUT milliseconds
 *
 * A value in the conninfo (key = value or URL parameter) wins over the
 * default, and so does PGCONNECT_TIMEOUT for connect_timeout, as for any
 * libpq program. client_encoding is UTF8 whatever the conninfo, the
 * role, the database or PGCLIENTENCODING say: every text these programs
 * send and read is UTF-8 (the protocol's strings are). The defaults are
 * passed as explicit parameters, so a service file (service=, PGSERVICE)
 * does not override them: put such values in the conninfo itself.
 * docs/operations.md, "Database connections".
 */
#ifndef SQL_SQL_CONN_H
#define SQL_SQL_CONN_H

#include <libpq-fe.h>

#define SQL_CONN_CONNECT_TIMEOUT "10"
#define SQL_CONN_KEEPALIVES_IDLE "10"
#define SQL_CONN_KEEPALIVES_INTERVAL "5"
#define SQL_CONN_KEEPALIVES_COUNT "3"
#define SQL_CONN_TCP_USER_TIMEOUT "25000"

/* sql_conn_open connects (blocking, at most connect_timeout per host) to
 * conninfo, a key = value string or a URL ("" for libpq's PG*
 * variables), with the defaults above under whatever conninfo sets, and
 * app (or NULL) as the fallback_application_name (PGAPPNAME or the
 * conninfo's application_name win). Returns the connection, whose
 * PQstatus the caller checks (and PQfinish in any case), or NULL when
 * out of memory. */
PGconn *sql_conn_open(const char *conninfo, const char *app);

/* sql_conn_utf8_check tells whether the server's encoding (of conn's
 * database) can hold any UTF-8 text: UTF8, or SQL_ASCII (bytes kept as
 * they are). Returns 0, or 1 with the reason in err (errlen bytes). A
 * database in another encoding refuses some characters (a business key,
 * a participant's error text), and the batch that holds them. */
int sql_conn_utf8_check(PGconn *conn, char *err, size_t errlen);

#endif /* SQL_SQL_CONN_H */
