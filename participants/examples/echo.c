/* SPDX-License-Identifier: MIT */
/*
 * echo: a complete participant built on the participant library.
 *
 *   action       echo.say    records input.text in its table echo_said and
 *                            answers {"said": <text>, "id": <row id>};
 *                            an empty text is a business failure
 *   compensation echo.unsay  deletes the row that its action recorded
 *
 * Its own schema is the migration set "echo" below, applied with the
 * barrier's by --migrate. Exactly-once effect comes from the library:
 * however often sagad delivers echo.say for one step of one saga, one row
 * is inserted, and the compensation deletes it (or does nothing if the
 * action never ran).
 *
 * Build, once the library is installed (cmake --install):
 *   cc -o echo echo.c $(pkg-config --cflags --libs saga-participant)
 * Run:
 *   ./echo --listen tcp://127.0.0.1:7101 --db "dbname=echo" --migrate
 * and name it in a saga definition (docs/sagas.md):
 *   participants:
 *     echo:
 *       endpoints: ["tcp://127.0.0.1:7101"]
 *   sagas:
 *     - name: greet
 *       steps:
 *         - name: say
 *           participant: echo
 *           action: echo.say
 *           compensation: echo.unsay
 */
#define _POSIX_C_SOURCE 200809L /* sigaction */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <saga/participant.h>

/* The service's own schema: forward-only, never edited once released. */
static const saga_migration echo_migrations[] = {
	{ 1, "001_echo_said.sql",
	    "CREATE TABLE echo_said ("
	    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	    " saga_id uuid NOT NULL,"
	    " step integer NOT NULL,"
	    " text text NOT NULL,"
	    " said_at timestamptz NOT NULL DEFAULT now())" },
};

static saga_participant *echo_p;

/* echo.say: runs inside the transaction that also holds the barrier row;
 * everything done through saga_call_db commits with it, or not at all. */
static int
echo_say(saga_call *call, void *arg)
{
	const proto_val *text = proto_val_get(saga_call_input(call), "text");
	proto_str        s;
	char             step[16];
	const char      *params[3];
	int              lens[3] = { 0, 0, 0 };
	int              fmts[3] = { 0, 0, 0 };
	PGresult        *res;
	proto_obj       *out;
	int              rv;

	(void) arg;
	if (proto_val_str(text, &s) != 0) {
		/* Bad input will not get better: a business failure. */
		return (saga_call_fail(call, "input.text: expected a string"));
	}
	if (s.len == 0) {
		return (saga_call_fail(call, "nothing to say"));
	}
	snprintf(step, sizeof(step), "%u", saga_call_step(call));
	params[0] = saga_call_id_text(call);
	params[1] = step;
	params[2] = s.ptr; /* not NUL-terminated: binary format, length */
	lens[2]   = (int) s.len;
	fmts[2]   = 1;
	res = PQexecParams(saga_call_db(call),
	    "INSERT INTO echo_said (saga_id, step, text) "
	    "VALUES ($1, $2, convert_from($3, 'UTF8')) RETURNING id",
	    3, NULL, params, lens, fmts, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		/* The transaction is aborted now: whatever we answer, the
		 * library answers retry and commits nothing. */
		PQclear(res);
		return (saga_call_retry(call, "insert failed"));
	}
	if ((out = saga_call_output(call)) == NULL) {
		PQclear(res);
		return (SAGA_ENOMEM);
	}
	if ((rv = proto_obj_put_strn(out, "said", s.ptr, s.len)) != 0 ||
	    (rv = proto_obj_put_int(out, "id",
	         strtoll(PQgetvalue(res, 0, 0), NULL, 10))) != 0) {
		PQclear(res);
		return (rv);
	}
	PQclear(res);
	return (saga_call_ok(call, out));
}

/* echo.unsay: runs only if echo.say committed ok for this step; its
 * output (the row id) is what the barrier recorded. */
static int
echo_unsay(saga_call *call, void *arg)
{
	int64_t     id = 0;
	char        idt[32];
	const char *params[1] = { idt };
	PGresult   *res;

	(void) arg;
	if (proto_val_int(proto_val_get(saga_call_action_output(call), "id"),
	        &id) != 0) {
		return (saga_call_retry(call, "the action recorded no id"));
	}
	snprintf(idt, sizeof(idt), "%lld", (long long) id);
	res = PQexecParams(saga_call_db(call),
	    "DELETE FROM echo_said WHERE id = $1", 1, NULL, params, NULL,
	    NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		PQclear(res);
		return (saga_call_retry(call, "delete failed"));
	}
	PQclear(res);
	return (saga_call_ok(call, NULL));
}

static void
echo_on_signal(int sig)
{
	(void) sig;
	saga_participant_stop(echo_p); /* async-signal-safe */
}

static void
echo_usage(FILE *f)
{
	fprintf(f,
	    "Usage: echo --listen URL [--listen URL]... --db CONNINFO\n"
	    "            [--workers N] [--metrics-listen ADDR] [--migrate]\n"
	    "An example saga participant: action echo.say, compensation "
	    "echo.unsay.\n"
	    "  --listen URL   nng URL to serve on (tcp://127.0.0.1:7101)\n"
	    "  --db CONNINFO  libpq conninfo of its database "
	    "(default $DATABASE_URL)\n"
	    "  --workers N    handler threads (default 4)\n"
	    "  --metrics-listen ADDR\n"
	    "                 serve Prometheus metrics at "
	    "http://ADDR/metrics\n"
	    "  --migrate      apply the barrier and echo schemas first\n");
}

int
main(int argc, char **argv)
{
	const char             *listen[9] = { NULL };
	int                     nlisten   = 0;
	bool                    migrate   = false;
	saga_participant_config cfg;
	struct sigaction        sa;
	char                    err[512];
	int                     rv;

	memset(&cfg, 0, sizeof(cfg));
	cfg.name     = "echo";
	cfg.conninfo = getenv("DATABASE_URL");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc &&
		    nlisten < 8) {
			listen[nlisten++] = argv[++i];
		} else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
			cfg.conninfo = argv[++i];
		} else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
			cfg.workers = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--metrics-listen") == 0 &&
		           i + 1 < argc) {
			cfg.metrics_listen = argv[++i];
		} else if (strcmp(argv[i], "--migrate") == 0) {
			migrate = true;
		} else if (strcmp(argv[i], "--help") == 0) {
			echo_usage(stdout);
			return (0);
		} else {
			echo_usage(stderr);
			return (2);
		}
	}
	cfg.listen = listen;
	if ((rv = saga_participant_new(&echo_p, &cfg, err, sizeof(err))) !=
	    0) {
		fprintf(stderr, "echo: %s\n", err);
		return (1);
	}
	if ((rv = saga_participant_on_action(
	         echo_p, "echo.say", echo_say, NULL)) != 0 ||
	    (rv = saga_participant_on_compensation(
	         echo_p, "echo.unsay", echo_unsay, NULL)) != 0) {
		fprintf(stderr, "echo: %s\n", saga_strerror(rv));
		goto fail;
	}
	if (migrate &&
	    ((rv = saga_participant_migrate(echo_p, err, sizeof(err))) != 0 ||
	        (rv = saga_participant_migrate_set(echo_p, "echo",
	             echo_migrations,
	             sizeof(echo_migrations) / sizeof(echo_migrations[0]),
	             NULL, err, sizeof(err))) != 0)) {
		fprintf(stderr, "echo: %s\n", err);
		goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = echo_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* SAGA_ETIMEDOUT: stopped, but libnng kept its socket (logged);
	 * nothing is lost, the process just ends. */
	if ((rv = saga_participant_serve(echo_p, err, sizeof(err))) != 0 &&
	    rv != SAGA_ETIMEDOUT) {
		fprintf(stderr, "echo: %s\n", err);
		goto fail;
	}
	saga_participant_free(echo_p);
	return (0);

fail:
	saga_participant_free(echo_p);
	return (1);
}
