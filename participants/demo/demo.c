/* SPDX-License-Identifier: MIT */
/*
 * demo: the shared main of the demo services. See demo.h.
 */
#define _POSIX_C_SOURCE 200809L /* sigaction */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

static saga_participant *demo_p;
static bool              demo_json; /* --log-format json */

static void
demo_on_signal(int sig)
{
	(void) sig;
	saga_participant_stop(demo_p);
}

int
demo_str(saga_call *call, const char *name, char *buf, size_t len)
{
	proto_str s;

	if (proto_val_str(proto_val_get(saga_call_input(call), name), &s) !=
	        0 ||
	    s.len == 0 || s.len >= len || memchr(s.ptr, '\0', s.len) != NULL) {
		saga_call_fail(call,
		    "input.%s: expected a non-empty string of at most %zu "
		    "bytes, without NUL",
		    name, len - 1);
		return (-1);
	}
	memcpy(buf, s.ptr, s.len);
	buf[s.len] = '\0';
	return (0);
}

int
demo_int(saga_call *call, const char *name, int64_t max, int64_t *out)
{
	if (proto_val_int(proto_val_get(saga_call_input(call), name), out) !=
	        0 ||
	    *out <= 0 || *out > max) {
		saga_call_fail(call,
		    "input.%s: expected an integer from 1 to %lld", name,
		    (long long) max);
		return (-1);
	}
	return (0);
}

int
demo_address(saga_call *call, char *buf, size_t len)
{
	const proto_val *v = proto_val_get(saga_call_input(call), "address");
	proto_str        s;

	if (proto_val_type_of(v) == PROTO_VAL_NIL ||
	    (proto_val_str(v, &s) == 0 && s.len == 0)) {
		snprintf(buf, len, "%s", "(to be confirmed)");
		return (0);
	}
	return (demo_str(call, "address", buf,
	    len < DEMO_ADDRESS_MAX + 1 ? len : DEMO_ADDRESS_MAX + 1));
}

/* Tells whether res failed with SQLSTATE code. */
static bool
demo_sqlstate(const PGresult *res, const char *code)
{
	const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return (st != NULL && strcmp(st, code) == 0);
}

/* A statement's result, or NULL after logging its error. */
static PGresult *
demo_result(saga_call *call, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		/* Through the library's log: a line about the command, in
		 * the service's log format. */
		saga_call_log(call, SAGA_PARTICIPANT_LOG_WARN, "%s",
		    res != NULL ? PQresultErrorMessage(res)
		                : PQerrorMessage(saga_call_db(call)));
		PQclear(res);
		return (NULL);
	}
	return (res);
}

PGresult *
demo_sql(saga_call *call, const char *sql, int n, const char *const *params)
{
	return (demo_result(call, PQexecParams(saga_call_db(call), sql, n,
	                              NULL, params, NULL, NULL, 0)));
}

/* The statements prepared on this worker thread's connection. A worker
 * owns one connection at a time; after a reconnect (another session:
 * another backend pid, or another PGconn) the list starts again. */
#define DEMO_PREPARED_MAX 16
static _Thread_local struct {
	PGconn     *db;
	int         pid;
	int         n;
	const char *names[DEMO_PREPARED_MAX];
} demo_prepared;

PGresult *
demo_sql_named(saga_call *call, const char *name, const char *sql, int n,
    const char *const *params)
{
	PGconn   *db  = saga_call_db(call);
	int       pid = PQbackendPID(db);
	PGresult *res;
	int       i;

	if (demo_prepared.db != db || demo_prepared.pid != pid) {
		demo_prepared.db  = db;
		demo_prepared.pid = pid;
		demo_prepared.n   = 0;
	}
	for (i = 0; i < demo_prepared.n; i++) {
		if (strcmp(demo_prepared.names[i], name) == 0) {
			break;
		}
	}
	if (i == demo_prepared.n) {
		if (i == DEMO_PREPARED_MAX) {
			return (demo_sql(call, sql, n, params));
		}
		/* A statement prepared in a transaction stays when it rolls
		 * back. One that the session has already (42P05: the same
		 * name, so the same statement, as names are the demo's own)
		 * is recorded, but its error has aborted the command's
		 * transaction: this call fails (retry), the next one runs. */
		res = PQprepare(db, name, sql, n, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			if (demo_sqlstate(res, "42P05")) {
				demo_prepared.names[demo_prepared.n++] = name;
			}
			return (demo_result(call, res));
		}
		PQclear(res);
		demo_prepared.names[demo_prepared.n++] = name;
	}
	res = PQexecPrepared(db, name, n, params, NULL, NULL, 0);
	if (demo_sqlstate(res, "26000")) {
		/* Not in this session after all: prepared again next time. */
		demo_prepared.names[i] = demo_prepared.names[--demo_prepared.n];
	}
	return (demo_result(call, res));
}

/* Reports a fatal error once the participant exists: in JSON mode as a
 * line of its log (stderr stays JSON lines), else as a plain line. */
static void
demo_error(const demo_service *svc, const char *msg)
{
	if (demo_json) {
		saga_participant_log(demo_p, SAGA_PARTICIPANT_LOG_ERROR, "%s",
		    msg);
	} else {
		fprintf(stderr, "saga-%s: %s\n", svc->name, msg);
	}
}

/* The participant library's bound on workers (participant.c,
 * PART_MAX_WORKERS); above it saga_participant_new would refuse. */
#define DEMO_MAX_WORKERS 1024

/* Reads --workers' value: a whole number from 1 to DEMO_MAX_WORKERS, all
 * of the text (atoi made "0", "x" and "4x" the library's default, 4, or
 * 4). Returns 0, or -1 after a one-line message on stderr. */
static int
demo_workers_parse(const demo_service *svc, const char *text, int *out)
{
	char *end;
	long  n;

	errno = 0;
	n     = strtol(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || errno != 0 || *end != '\0' ||
	    n < 1 || n > DEMO_MAX_WORKERS) {
		fprintf(stderr,
		    "saga-%s: invalid value \"%s\" for --workers (expected "
		    "a whole number from 1 to %d)\n",
		    svc->name, text, DEMO_MAX_WORKERS);
		return (-1);
	}
	*out = (int) n;
	return (0);
}

/* The most --listen options: the URLs that one service serves on. */
#define DEMO_LISTEN_MAX 8

/* The options followed by a value. */
static const char *const demo_value_opts[] = {
	"--listen",
	"--db",
	"--workers",
	"--tls-ca",
	"--tls-cert",
	"--tls-key",
	"--log-format",
	"--metrics-listen",
	NULL,
};

/* Tells whether option opt is followed by a value. */
static bool
demo_opt_has_value(const char *opt)
{
	for (int i = 0; demo_value_opts[i] != NULL; i++) {
		if (strcmp(opt, demo_value_opts[i]) == 0) {
			return (true);
		}
	}
	return (false);
}

static void
demo_usage(FILE *f, const demo_service *svc)
{
	fprintf(f,
	    "Usage: saga-%s --listen URL --db CONNINFO [--workers N] "
	    "[--log-format F]\n"
	    "       saga-%s --migrate --db CONNINFO\n"
	    "%s\n"
	    "  --listen URL   nng URL to serve on (repeatable, at most %d)\n"
	    "  --db CONNINFO  libpq conninfo of its own database "
	    "(default $DATABASE_URL)\n"
	    "  --workers N    handler threads, 1 to %d (default 1: the "
	    "demo's\n"
	    "                 handlers update a few hot rows; one worker "
	    "running\n"
	    "                 them in batches beats several waiting on "
	    "each\n"
	    "                 other's row locks)\n"
	    "  --tls-ca F, --tls-cert F, --tls-key F\n"
	    "                 mutual TLS for tls+tcp:// URLs (PEM files)\n"
	    "  --metrics-listen ADDR\n"
	    "                 serve Prometheus metrics at "
	    "http://ADDR/metrics\n"
	    "  --log-format text|json\n"
	    "                 log lines as plain text (default) or as one "
	    "JSON object\n"
	    "                 per line\n"
	    "  --migrate      apply the barrier and %s schemas and exit\n",
	    svc->name, svc->name, svc->about, DEMO_LISTEN_MAX,
	    DEMO_MAX_WORKERS, svc->name);
}

int
demo_main(int argc, char **argv, const demo_service *svc)
{
	const char             *listen[DEMO_LISTEN_MAX + 1] = { NULL };
	int                     nlisten                     = 0;
	bool                    migrate                     = false;
	saga_participant_config cfg;
	struct sigaction        sa;
	char                    err[512];
	int                     applied = 0;
	int                     rv;

	memset(&cfg, 0, sizeof(cfg));
	cfg.name     = svc->name;
	cfg.conninfo = getenv("DATABASE_URL");
	/* One worker: every demo handler updates one of a few rows (a SKU's
	 * stock, a customer's balance), so that several workers mostly wait
	 * for each other's row locks; one worker batching the commands
	 * (group commit) ran the benchmark's demo at C=64 at 645 sagas/s
	 * against 478 with four (docs/PERFORMANCE.md, entry 4). */
	cfg.workers  = 1;
	for (int i = 1; i < argc; i++) {
		/* An option without its value, or a --listen too many, is
		 * named as such: both were "unknown option". */
		if (demo_opt_has_value(argv[i]) && i + 1 == argc) {
			fprintf(stderr, "saga-%s: %s needs a value\n",
			    svc->name, argv[i]);
			return (2);
		}
		if (strcmp(argv[i], "--listen") == 0) {
			if (nlisten == DEMO_LISTEN_MAX) {
				fprintf(stderr,
				    "saga-%s: too many --listen (at most "
				    "%d)\n",
				    svc->name, DEMO_LISTEN_MAX);
				return (2);
			}
			listen[nlisten++] = argv[++i];
		} else if (strcmp(argv[i], "--db") == 0) {
			cfg.conninfo = argv[++i];
		} else if (strcmp(argv[i], "--workers") == 0) {
			if (demo_workers_parse(svc, argv[++i], &cfg.workers) !=
			    0) {
				return (2);
			}
		} else if (strcmp(argv[i], "--migrate") == 0) {
			migrate = true;
		} else if (strcmp(argv[i], "--tls-ca") == 0) {
			cfg.tls_ca = argv[++i];
		} else if (strcmp(argv[i], "--tls-cert") == 0) {
			cfg.tls_cert = argv[++i];
		} else if (strcmp(argv[i], "--tls-key") == 0) {
			cfg.tls_key = argv[++i];
		} else if (strcmp(argv[i], "--log-format") == 0) {
			/* saga_participant_new checks it. */
			cfg.log_format = argv[++i];
			demo_json      = strcmp(cfg.log_format, "json") == 0;
		} else if (strcmp(argv[i], "--metrics-listen") == 0) {
			cfg.metrics_listen = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			demo_usage(stdout, svc);
			return (0);
		} else {
			fprintf(stderr, "saga-%s: unknown option \"%s\"\n",
			    svc->name, argv[i]);
			demo_usage(stderr, svc);
			return (2);
		}
	}
	if (cfg.conninfo == NULL) {
		fprintf(stderr, "saga-%s: no database: give --db CONNINFO\n",
		    svc->name);
		return (2);
	}
	if (!migrate && nlisten == 0) {
		fprintf(stderr, "saga-%s: give --listen URL (or --migrate)\n",
		    svc->name);
		return (2);
	}
	if (migrate) {
		static const char *none[] = { "inproc://migrate", NULL };

		cfg.listen = none;
	} else {
		cfg.listen = listen;
	}
	if ((rv = saga_participant_new(&demo_p, &cfg, err, sizeof(err))) !=
	    0) {
		fprintf(stderr, "saga-%s: %s\n", svc->name, err);
		return (1);
	}
	if (migrate) {
		/* The layouts of sql_migration and saga_migration are the
		 * same: {version, name, sql}. */
		if ((rv = saga_participant_migrate(demo_p, err, sizeof(err))) !=
		        0 ||
		    (rv = saga_participant_migrate_set(demo_p, svc->name,
		         (const saga_migration *) (const void *) svc->migs,
		         svc->nmigs, &applied, err, sizeof(err))) != 0) {
			demo_error(svc, err);
			saga_participant_free(demo_p);
			return (1);
		}
		printf("saga-%s: schema up to date (%d migration(s) "
		       "applied)\n",
		    svc->name, applied);
		saga_participant_free(demo_p);
		return (0);
	}
	if ((rv = svc->setup(demo_p)) != 0) {
		demo_error(svc, saga_strerror(rv));
		saga_participant_free(demo_p);
		return (1);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = demo_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rv = saga_participant_serve(demo_p, err, sizeof(err));
	/* SAGA_ETIMEDOUT: stopped, but libnng kept its socket (the library
	 * logged it); every answer sent was committed, so this is a clean
	 * stop: exit 0. */
	if (rv == SAGA_ETIMEDOUT) {
		rv = 0;
	} else if (rv != 0) {
		demo_error(svc, err);
	}
	saga_participant_free(demo_p);
	return (rv == 0 ? 0 : 1);
}
