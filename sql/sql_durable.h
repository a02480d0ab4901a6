/* SPDX-License-Identifier: MIT */
/*
 * sql_durable: a COMMIT that returns only once its WAL is flushed.
 *
 * sagad sends a command only after the transition that decided it
 * committed, and a participant answers only after the COMMIT that holds
 * its barrier row (DESIGN.md, write-ahead). Both rely on COMMIT returning
 * after the local WAL flush, which PostgreSQL does unless
 * synchronous_commit is off: then a server crash can lose a COMMIT that
 * was acknowledged. The setting can come from the server, the database
 * (ALTER DATABASE ... SET), the role (ALTER ROLE ... SET) or the client
 * (PGOPTIONS), so every connection checks it once, right after it is
 * made (sql_durable_check), and a transaction that runs code of others
 * (a participant's handler) sets it again just before its COMMIT
 * (sql_durable_set_local).
 *
 * Every value but off flushes the local WAL before COMMIT returns; they
 * are kept as they are (remote_apply is stronger than on, not weaker).
 */
#ifndef SQL_SQL_DURABLE_H
#define SQL_SQL_DURABLE_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

/* sql_durable_check runs SHOW synchronous_commit on conn (idle, outside
 * a transaction) and, when it is off, SET synchronous_commit = on for the
 * session. Stores in *level the session's value from then on, a static
 * string among "on", "local", "remote_write" and "remote_apply", and in
 * *raised whether it was off (the caller logs that: the database, role or
 * client asked for commits a crash can lose). Returns 0, or SAGA_EDB with
 * the reason in err (the query failed, or the value is none of these). */
int sql_durable_check(PGconn *conn, const char **level, bool *raised,
    char *err, size_t errlen);

/* sql_durable_set_local returns the statement "SET LOCAL
 * synchronous_commit = <level>" (static) for a level stored by
 * sql_durable_check, or NULL for any other string. */
const char *sql_durable_set_local(const char *level);

#endif /* SQL_SQL_DURABLE_H */
