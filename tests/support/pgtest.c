/* SPDX-License-Identifier: MIT */
/*
 * pgtest: per-test databases on a real PostgreSQL server, and small query
 * helpers that print what went wrong. See pgtest.h.
 *
 * The administrative connection (to the database postgres) lives only as
 * long as one create or drop: tests are short, and a connection per call
 * keeps the helpers free of global state except the name counter.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgtest.h"

/* The longest name PostgreSQL keeps without truncating it. */
#define PGTEST_NAME_MAX 63

static atomic_uint pgtest_counter;

/* Administrative commands (DROP ... IF EXISTS) report harmless notices;
 * keep them out of the test output. */
static void
pgtest_notice_quiet_cb(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

static bool
pgtest_require_pg(void)
{
	const char *v = getenv("SAGA_TEST_REQUIRE_PG");

	return (v != NULL && strcmp(v, "1") == 0);
}

/* Appends " key='value'" to buf (a conninfo), quoting value as libpq
 * wants. Returns 0, or -1 when buf (len bytes) is too small. */
static int
pgtest_conninfo_add(char *buf, size_t len, const char *key, const char *value)
{
	size_t n = strlen(buf);
	int    w;

	if (value == NULL || value[0] == '\0') {
		return (0);
	}
	w = snprintf(buf + n, len - n, "%s%s='", n > 0 ? " " : "", key);
	if (w < 0 || (size_t) w >= len - n) {
		return (-1);
	}
	n += (size_t) w;
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\'' || *p == '\\') {
			if (n + 1 >= len) {
				return (-1);
			}
			buf[n++] = '\\';
		}
		if (n + 1 >= len) {
			return (-1);
		}
		buf[n++] = *p;
	}
	if (n + 2 > len) {
		return (-1);
	}
	buf[n++] = '\'';
	buf[n]   = '\0';
	return (0);
}

/* Connects to the database postgres of the server named by conninfo (or
 * by the environment alone when conninfo is NULL). Returns the connection
 * whatever its status: the caller checks it. */
static PGconn *
pgtest_admin_connect(const char *conninfo)
{
	const char *keys[4];
	const char *vals[4];
	int         i = 0;
	PGconn     *c;

	if (conninfo != NULL) {
		/* The first dbname is expanded as a conninfo; the later
		 * entries override what it says. */
		keys[i]   = "dbname";
		vals[i++] = conninfo;
	}
	keys[i]   = "dbname";
	vals[i++] = "postgres";
	keys[i]   = "connect_timeout";
	vals[i++] = "10";
	keys[i]   = NULL;
	vals[i]   = NULL;
	c         = PQconnectdbParams(keys, vals, 1);
	if (c != NULL && PQstatus(c) == CONNECTION_OK) {
		PQsetNoticeProcessor(c, pgtest_notice_quiet_cb, NULL);
	}
	return (c);
}

int
pgtest_db_create(const char *prefix, char *conninfo, size_t len)
{
	char    name[PGTEST_NAME_MAX + 1];
	char    sql[256];
	char   *ident = NULL;
	PGconn *admin = NULL;
	int     n;

	for (const char *p = prefix; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		        || (*p >= '0' && *p <= '9') || *p == '_')) {
			fprintf(stderr,
			    "pgtest: database prefix \"%s\": use letters, "
			    "digits and '_'\n",
			    prefix);
			return (-1);
		}
	}
	n = snprintf(name, sizeof(name), "%s_%ld_%u", prefix, (long) getpid(),
	    atomic_fetch_add(&pgtest_counter, 1) + 1);
	if (n < 0 || (size_t) n >= sizeof(name)) {
		fprintf(stderr, "pgtest: database prefix \"%s\" is too long\n",
		    prefix);
		return (-1);
	}

	admin = pgtest_admin_connect(NULL);
	if (admin == NULL || PQstatus(admin) != CONNECTION_OK) {
		/* No server (or none we may use): skip, or fail in CI. */
		const char *why = admin != NULL ? PQerrorMessage(admin)
		                                : "out of memory\n";

		if (pgtest_require_pg()) {
			fprintf(stderr,
			    "pgtest: cannot connect to PostgreSQL (and "
			    "SAGA_TEST_REQUIRE_PG=1): %s",
			    why);
			PQfinish(admin);
			return (-1);
		}
		fprintf(stderr,
		    "SKIP: no PostgreSQL server (start one with scripts/pg.sh "
		    "start and eval \"$(scripts/pg.sh env)\")\n"
		    "pgtest: connection error: %s",
		    why);
		PQfinish(admin);
		exit(77);
	}

	if ((ident = PQescapeIdentifier(admin, name, strlen(name))) == NULL) {
		fprintf(stderr, "pgtest: quoting %s: %s", name,
		    PQerrorMessage(admin));
		goto fail;
	}
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
	    ident);
	if (pgtest_exec(admin, sql) != 0) {
		goto fail;
	}
	/* template0: nobody is ever connected to it, so parallel tests
	 * cannot make CREATE DATABASE fail with "being accessed by other
	 * users". */
	snprintf(
	    sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0", ident);
	if (pgtest_exec(admin, sql) != 0) {
		goto fail;
	}

	/* Name the server we actually reached, so that the conninfo does
	 * not depend on the environment any more. */
	conninfo[0] = '\0';
	if (pgtest_conninfo_add(conninfo, len, "dbname", name) != 0
	    || pgtest_conninfo_add(conninfo, len, "host", PQhost(admin)) != 0
	    || pgtest_conninfo_add(conninfo, len, "port", PQport(admin)) != 0
	    || pgtest_conninfo_add(conninfo, len, "user", PQuser(admin))
	        != 0) {
		fprintf(stderr,
		    "pgtest: conninfo for %s needs more than %zu "
		    "bytes\n",
		    name, len);
		snprintf(sql, sizeof(sql), "DROP DATABASE %s", ident);
		(void) pgtest_exec(admin, sql);
		goto fail;
	}
	PQfreemem(ident);
	PQfinish(admin);
	return (0);

fail:
	if (len > 0) {
		conninfo[0] = '\0';
	}
	PQfreemem(ident);
	PQfinish(admin);
	return (-1);
}

void
pgtest_db_drop(const char *conninfo)
{
	PQconninfoOption *opts  = NULL;
	PGconn           *admin = NULL;
	char             *ident = NULL;
	char             *err   = NULL;
	const char       *name  = NULL;
	char              sql[256];

	if (conninfo == NULL || conninfo[0] == '\0') {
		return;
	}
	if ((opts = PQconninfoParse(conninfo, &err)) == NULL) {
		fprintf(stderr, "pgtest: bad conninfo \"%s\": %s", conninfo,
		    err != NULL ? err : "out of memory\n");
		goto done;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "dbname") == 0) {
			name = o->val;
		}
	}
	if (name == NULL || name[0] == '\0' || strcmp(name, "postgres") == 0) {
		/* Never drop the administrative database. */
		fprintf(
		    stderr, "pgtest: no test database in \"%s\"\n", conninfo);
		goto done;
	}
	admin = pgtest_admin_connect(conninfo);
	if (admin == NULL || PQstatus(admin) != CONNECTION_OK) {
		fprintf(stderr, "pgtest: dropping %s: %s", name,
		    admin != NULL ? PQerrorMessage(admin) : "out of memory\n");
		goto done;
	}
	if ((ident = PQescapeIdentifier(admin, name, strlen(name))) == NULL) {
		fprintf(stderr, "pgtest: quoting %s: %s", name,
		    PQerrorMessage(admin));
		goto done;
	}
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
	    ident);
	(void) pgtest_exec(admin, sql);

done:
	PQfreemem(ident);
	PQfinish(admin);
	PQconninfoFree(opts);
	PQfreemem(err);
}

PGconn *
pgtest_connect(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	if (c == NULL) {
		fprintf(stderr, "pgtest: connecting to %s: out of memory\n",
		    conninfo);
		return (NULL);
	}
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pgtest: connecting to %s: %s", conninfo,
		    PQerrorMessage(c));
		PQfinish(c);
		return (NULL);
	}
	return (c);
}

int
pgtest_exec(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	int       rv  = 0;

	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_EMPTY_QUERY:
		break;
	default:
		fprintf(stderr, "pgtest: %s: %s", sql,
		    res != NULL ? PQresultErrorMessage(res)
		                : PQerrorMessage(c));
		rv = -1;
		break;
	}
	PQclear(res);
	return (rv);
}

int
pgtest_query_int(PGconn *c, const char *sql, long long *out)
{
	PGresult   *res = PQexec(c, sql);
	const char *v;
	char       *end;
	long long   n;
	int         rv = -1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pgtest: %s: %s", sql,
		    res != NULL ? PQresultErrorMessage(res)
		                : PQerrorMessage(c));
		goto done;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 1) {
		fprintf(stderr,
		    "pgtest: %s: expected 1 row of 1 column, got %d of %d\n",
		    sql, PQntuples(res), PQnfields(res));
		goto done;
	}
	if (PQgetisnull(res, 0, 0)) {
		fprintf(stderr, "pgtest: %s: got NULL\n", sql);
		goto done;
	}
	v = PQgetvalue(res, 0, 0);
	n = strtoll(v, &end, 10);
	if (end == v || *end != '\0') {
		fprintf(
		    stderr, "pgtest: %s: \"%s\" is not an integer\n", sql, v);
		goto done;
	}
	*out = n;
	rv   = 0;

done:
	PQclear(res);
	return (rv);
}
