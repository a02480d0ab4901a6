/* SPDX-License-Identifier: MIT */
/*
 * sql_migrate: the forward-only migration runner.
 *
 * A migration set (the coordinator's schema, the participant barrier, each
 * demo service's schema) is a list of numbered SQL files under sql/<set>/,
 * compiled into the program that owns the set (see saga_embed_sql in the
 * top-level CMakeLists.txt). The runner records what it applied in the
 * table schema_migrations (set_name, version, name, checksum, applied_at).
 *
 * Each migration runs in its own transaction together with its
 * schema_migrations row, under a transaction-scoped advisory lock, so a
 * half-applied migration is impossible and two processes migrating the same
 * database at once apply each migration exactly once. Re-running is a
 * no-op. A migration whose text changed after it was applied is refused:
 * released migrations are never edited, only added to.
 */
#ifndef SQL_SQL_MIGRATE_H
#define SQL_SQL_MIGRATE_H

#include <stddef.h>

#include <libpq-fe.h>

/* sql_migration is one embedded migration file. */
typedef struct sql_migration {
	int         version; /* from the file name's number */
	const char *name;    /* file name, "001_init.sql" */
	const char *sql;     /* its text; must not contain BEGIN/COMMIT */
} sql_migration;

/* The coordinator's migration set (sql/coordinator). */
extern const sql_migration coordinator_migrations[];
extern const size_t        coordinator_migrations_count;

/* sql_migrate_apply applies, in version order, every migration of set that
 * the database connected to by conn does not have yet. Stores the number
 * applied by this call in *applied (may be NULL). Returns 0, SAGA_EINVAL
 * (versions not strictly increasing), SAGA_ECONFLICT (an applied migration
 * was edited), or SAGA_EDB; errbuf (errlen bytes, may be NULL) says which
 * migration and why. */
int sql_migrate_apply(PGconn *conn, const char *set,
    const sql_migration *migs, size_t n, int *applied, char *errbuf,
    size_t errlen);

/* sql_migrate_version stores the highest version of set applied to the
 * database in *version (0 when none, or when schema_migrations does not
 * exist). Returns 0 or SAGA_EDB. */
int sql_migrate_version(PGconn *conn, const char *set, int *version,
    char *errbuf, size_t errlen);

#endif /* SQL_SQL_MIGRATE_H */
