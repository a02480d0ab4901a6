/* SPDX-License-Identifier: MIT */
/*
 * sagactl: start, inspect and operate sagas from the command line.
 *
 * git-style subcommands (sagactl list, sagactl show ID, ...), psql-style
 * connection options (--db CONNINFO, else DATABASE_URL, else libpq's PG*
 * variables), and --json on every read command with the schemas of
 * docs/cli.md. Read-only commands read the saga log directly from
 * PostgreSQL, so they work while sagad is down; commands that change a
 * saga go through sagad's API (--coordinator URL, else SAGA_COORDINATOR),
 * so that the write-ahead rule holds.
 *
 * This file holds the command table, the help texts, option parsing and
 * what the commands share (errors, filters, times, confirmation); the
 * commands live in sagactl_read.c, sagactl_show.c and sagactl_ops.c.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coord_config.h"
#include "proto_msg.h"
#include "saga_engine.h"
#include "saga_err.h"
#include "saga_id.h"
#include "sagactl.h"
#include "sagactl_db.h"
#include "sagactl_inst.h"
#include "sagactl_ops.h"
#include "sagactl_read.h"
#include "sagactl_show.h"

#ifndef SAGA_VERSION_STRING
#define SAGA_VERSION_STRING "0.1.0"
#endif

/* The help texts, as they print (not reflowed by clang-format). */
/* clang-format off */
#define SAGACTL_COMMON_HELP                                              \
	"Common options:\n"                                              \
	"      --db CONNINFO        PostgreSQL connection (default:\n"   \
	"                           $DATABASE_URL, else libpq's PG*\n"  \
	"                           variables)\n"                        \
	"      --coordinator URL    sagad's API (default:\n"             \
	"                           $SAGA_COORDINATOR, else\n"           \
	"                           " SAGACTL_COORDINATOR_DEFAULT ")\n"  \
	"      --tls-ca FILE        with a tls+tcp:// coordinator: the CA\n" \
	"                           that signed it ($SAGA_TLS_CA)\n"     \
	"      --tls-cert FILE      this client's certificate\n"         \
	"                           ($SAGA_TLS_CERT)\n"                  \
	"      --tls-key FILE       its key ($SAGA_TLS_KEY)\n"           \
	"      --json               machine-readable output (schemas in\n" \
	"                           docs/cli.md)\n"                      \
	"      --wide               on a terminal, do not cut long lines\n" \
	"  -h, --help               this help\n"

#define SAGACTL_FILTER_HELP                                              \
	"Filters:\n"                                                     \
	"      --state S[,S...]     RUNNING, COMPENSATING, COMPLETED,\n" \
	"                           COMPENSATED, FAILED, RESOLVED\n"     \
	"      --saga NAME          saga definition\n"                   \
	"      --key BUSINESS_KEY   business key\n"                      \
	"      --since DUR|TIME     started in the last DUR (30m, 2h, 7d)\n" \
	"                           or at/after TIME (2026-11-24T15:00Z)\n"

static const char sagactl_help_list[] =
    "Usage: sagactl list [filters] [--limit N] [--json]\n"
    "\n"
    "One line per saga, newest first: id, saga, state, current step\n"
    "(\"(comp)\" when it is a compensation), age, business key and\n"
    "last error. Reads the saga log directly: works while sagad is\n"
    "down.\n"
    "\n"
    SAGACTL_FILTER_HELP
    "      --limit N            at most N sagas (default 50; 0 = all)\n"
    "\n"
    SAGACTL_COMMON_HELP
    "\n"
    "Examples:\n"
    "  sagactl list --state FAILED\n"
    "  sagactl list --saga create_order --since 1h --json\n"
    "  sagactl list --key customer-42\n";

static const char sagactl_help_show[] =
    "Usage: sagactl show ID [--json]\n"
    "\n"
    "The saga's header (definition and version, state and why, input,\n"
    "business key, trace id, times), its steps (how each action and\n"
    "compensation ended, outputs) and its timeline: one row per event\n"
    "with time, offset from the start, step, action or compensation,\n"
    "attempt, outcome, duration and error, beside a chart of every\n"
    "attempt on one time axis:\n"
    "  = action attempt   ~ compensation attempt   o ok   X failed\n"
    "  ! retry/timeout/error   . backoff wait   > in flight\n"
    "  ? no outcome recorded   @ operator or cancel   * saga event\n"
    "The chart takes the terminal's width ($COLUMNS, default 100).\n"
    "Reads the saga log directly: works while sagad is down.\n"
    "\n"
    SAGACTL_COMMON_HELP;

static const char sagactl_help_start[] =
    "Usage: sagactl start SAGA --input JSON [--key KEY]\n"
    "                     [--trace TRACEPARENT] [--wait [--timeout DUR]]\n"
    "\n"
    "Starts saga SAGA through sagad and prints its id. With --wait,\n"
    "waits until it ends and prints its final state too; the exit\n"
    "status is 0 only if it COMPLETED, 1 if it ended otherwise or\n"
    "still runs after --timeout, and 3 if it was started but waiting\n"
    "for it failed (sagad stopped): do not start it again, follow it\n"
    "with sagactl wait ID. With --json, the id is in the document.\n"
    "Without --key, sagactl makes a key of its own (sagactl-UUID).\n"
    "If sagad got the START but its answer was lost, the same START\n"
    "goes again with the same key (sagad answers the saga, or starts\n"
    "it once); if no answer comes in time, exit 3 with nothing on\n"
    "stdout: the saga may have been started; start it again only\n"
    "with the key printed, --key KEY.\n"
    "\n"
    "Options:\n"
    "      --input JSON         the saga's input, a JSON object;\n"
    "                           @FILE reads it from FILE, - from stdin\n"
    "      --key KEY            idempotency key: the same key and input\n"
    "                           give the same saga, never a second one\n"
    "      --trace TRACEPARENT  W3C traceparent to carry\n"
    "      --wait               wait for the saga to end\n"
    "      --timeout DUR        how long to wait (default 60s)\n"
    "\n"
    SAGACTL_COMMON_HELP
    "\n"
    "Example:\n"
    "  sagactl start create_order --input '{\"customer_id\": \"c-42\"}' "
    "--wait\n";

static const char sagactl_help_retry[] =
    "Usage: sagactl retry ID [--note TEXT]\n"
    "       sagactl retry filters [--note TEXT] [--yes]\n"
    "\n"
    "A FAILED saga resumes now where it stopped: its stuck\n"
    "compensation (or its parked step after the pivot) gets a new\n"
    "attempt. With filters instead of an id, every matching FAILED\n"
    "saga is retried, after showing how many match and asking.\n"
    "\n"
    "Options:\n"
    "      --note TEXT          kept in the saga log\n"
    "  -y, --yes                do not ask for confirmation\n"
    "\n"
    SAGACTL_FILTER_HELP
    "      --limit N            at most N sagas\n"
    "\n"
    SAGACTL_COMMON_HELP
    "\n"
    "Example:\n"
    "  sagactl retry --state FAILED --saga create_order\n";

static const char sagactl_help_cancel[] =
    "Usage: sagactl cancel ID [--note TEXT]\n"
    "       sagactl cancel filters [--note TEXT] [--yes]\n"
    "\n"
    "A RUNNING saga stops and compensates the steps that may have\n"
    "happened. A saga past its pivot cannot be cancelled, nor one\n"
    "whose pivot without a compensation is in progress, nor one that\n"
    "is not RUNNING (compensating, FAILED or finished): sagad\n"
    "changes nothing, the note is not kept, and it says \"not\n"
    "cancelled: saga is STATE\" (exit 1). Through an instance that\n"
    "does not run the saga the cancel is requested (\"cancel\n"
    "requested: now RUNNING\"): the instance that runs it carries it\n"
    "out, or refuses it in the saga's log. With filters instead of\n"
    "an id, every matching RUNNING saga is cancelled, after showing\n"
    "how many match and asking.\n"
    "\n"
    "Options:\n"
    "      --note TEXT          why, kept in the saga log\n"
    "  -y, --yes                do not ask for confirmation\n"
    "\n"
    SAGACTL_FILTER_HELP
    "      --limit N            at most N sagas\n"
    "\n"
    SAGACTL_COMMON_HELP;

static const char sagactl_help_resolve[] =
    "Usage: sagactl resolve ID --note TEXT\n"
    "\n"
    "An operator who repaired a FAILED saga's effects by hand closes\n"
    "it: it becomes RESOLVED, and the note is kept in its log.\n"
    "\n"
    "Options:\n"
    "      --note TEXT          what was done (required)\n"
    "\n"
    SAGACTL_COMMON_HELP;

static const char sagactl_help_skip[] =
    "Usage: sagactl skip ID --step NAME --note TEXT\n"
    "\n"
    "The stuck compensation (or parked step after the pivot) NAME of\n"
    "a FAILED saga was done by hand: it is marked so in the log and\n"
    "the saga goes on with the next one. NAME must be the stuck step\n"
    "(see sagactl show ID).\n"
    "\n"
    "Options:\n"
    "      --step NAME          the stuck step (required)\n"
    "      --note TEXT          what was done (required)\n"
    "\n"
    SAGACTL_COMMON_HELP;

static const char sagactl_help_purge[] =
    "Usage: sagactl purge --older-than DUR [--batch N] [--dry-run]\n"
    "                     [--progress DUR] [--yes]\n"
    "\n"
    "Deletes COMPLETED, COMPENSATED and RESOLVED sagas that finished\n"
    "more than DUR ago, with their events and start keys, in\n"
    "batches (one transaction each), and reports how many. FAILED\n"
    "sagas are never purged: they wait for an operator (retry,\n"
    "skip or resolve them first). After a purge, the idempotency key\n"
    "of a purged saga may start a new one.\n"
    "\n"
    "Options:\n"
    "      --older-than DUR     retention, e.g. 30d (required)\n"
    "      --batch N            sagas per transaction (default 1000)\n"
    "      --dry-run            only count\n"
    "      --progress DUR       a progress line on stderr every DUR\n"
    "                           (default 2s when stderr is a\n"
    "                           terminal, else none; 0s: after\n"
    "                           every batch)\n"
    "  -y, --yes                do not ask for confirmation\n"
    "\n"
    SAGACTL_COMMON_HELP;

static const char sagactl_help_defs[] =
    "Usage: sagactl defs [NAME] [--json]\n"
    "\n"
    "Every definition version stored in the log, newest first; with\n"
    "NAME, the steps of each version of that saga.\n"
    "\n"
    SAGACTL_COMMON_HELP;

static const char sagactl_help_validate[] =
    "Usage: sagactl validate FILE... [--json]\n"
    "\n"
    "Checks YAML saga definitions with sagad's loader, as sagad\n"
    "--check does, and prints every error as file:line:column:\n"
    "message. Exit status 1 if there is any.\n"
    "\n"
    "Not checked here: the TLS of participants with a tls+tcp://\n"
    "endpoint. sagad --check also loads each one's CA, certificate\n"
    "and key (from its tls: in the file, else sagad's --tls-ca,\n"
    "--tls-cert, --tls-key, which validate does not know) and refuses\n"
    "one without a CA, a file it cannot use, or a certificate with\n"
    "another's key. Run sagad --check with sagad's options for those.\n"
    "\n"
    SAGACTL_COMMON_HELP;

static const char sagactl_help_stats[] =
    "Usage: sagactl stats [--since DUR|TIME] [--json]\n"
    "\n"
    "Counts of sagas by saga and state (started since DUR), and per\n"
    "saga and step: answers ok and failed, retries, and the latency\n"
    "percentiles (p50, p90, p99, max) of the attempts that were\n"
    "answered ok or failed (since DUR).\n"
    "\n"
    "Options:\n"
    "      --since DUR|TIME     only since then (default: all)\n"
    "\n"
    SAGACTL_COMMON_HELP;

static const char sagactl_help_instances[] =
    "Usage: sagactl instances [--json]\n"
    "\n"
    "The sagad instances that share the database: their host, pid and\n"
    "API URL, the age of their last heartbeat, how many unfinished\n"
    "sagas each owns (its leases), and a status: live, silent (no\n"
    "heartbeat for 10 s), leases expired (the others take its sagas\n"
    "over) or stopped. Reads the saga log directly.\n"
    "\n"
    SAGACTL_COMMON_HELP;

static const char sagactl_help_status[] =
    "Usage: sagactl status ID [--json]\n"
    "\n"
    "Asks sagad for the saga's state: \"ID STATE [step NAME][: error]\".\n"
    "Any sagad instance answers for any saga (one that does not own it\n"
    "reads the log). Unlike show, it goes through sagad: it tells\n"
    "whether sagad answers, and sees a saga as its owner has it.\n"
    "\n"
    SAGACTL_COMMON_HELP;

static const char sagactl_help_wait[] =
    "Usage: sagactl wait ID [--timeout DUR] [--json]\n"
    "\n"
    "Waits until the saga has ended (asking any sagad instance), then\n"
    "prints it as status does. Exit status 0 only if it COMPLETED; 1 if\n"
    "it ended otherwise or is still running when --timeout (default\n"
    "60s) has passed.\n"
    "\n"
    "Options:\n"
    "      --timeout DUR        how long to wait\n"
    "\n"
    SAGACTL_COMMON_HELP;

static const char sagactl_help_ping[] =
    "Usage: sagactl ping [URL] [--timeout DUR]\n"
    "\n"
    "Asks an endpoint for PONG: sagad (the default: --coordinator,\n"
    "$SAGA_COORDINATOR) or a participant service, and prints who\n"
    "answered and how fast. Exit status 0 when it answered, 1 when\n"
    "not within --timeout (default 2s). For health checks and\n"
    "start-up scripts.\n"
    "\n"
    "Options:\n"
    "      --timeout DUR        how long to wait for the answer\n"
    "\n"
    SAGACTL_COMMON_HELP;

/* clang-format on */

static const sagactl_cmd sagactl_cmds[] = {
	{ "list", sagactl_read_list, "list sagas, newest first",
	    sagactl_help_list, false },
	{ "show", sagactl_show_run,
	    "a saga's header, steps and timeline, with a Gantt chart",
	    sagactl_help_show, false },
	{ "start", sagactl_ops_start, "start a saga", sagactl_help_start,
	    true },
	{ "retry", sagactl_ops_retry, "resume a FAILED saga now",
	    sagactl_help_retry, true },
	{ "cancel", sagactl_ops_cancel, "stop a running saga and compensate",
	    sagactl_help_cancel, true },
	{ "resolve", sagactl_ops_resolve,
	    "mark a FAILED saga as handled by hand", sagactl_help_resolve,
	    true },
	{ "skip", sagactl_ops_skip,
	    "mark a FAILED saga's stuck step as done by hand",
	    sagactl_help_skip, true },
	{ "purge", sagactl_ops_purge, "delete finished sagas past a retention",
	    sagactl_help_purge, true },
	{ "defs", sagactl_read_defs, "saga definitions and their versions",
	    sagactl_help_defs, false },
	{ "validate", sagactl_read_validate,
	    "check saga definition files (sagad --check minus TLS)",
	    sagactl_help_validate, false },
	{ "stats", sagactl_read_stats,
	    "counts by saga and state, step latency percentiles",
	    sagactl_help_stats, false },
	{ "instances", sagactl_inst_run,
	    "sagad instances, their heartbeats and leases",
	    sagactl_help_instances, false },
	{ "status", sagactl_ops_status, "ask sagad for a saga's state",
	    sagactl_help_status, false },
	{ "wait", sagactl_ops_wait, "wait until a saga has ended",
	    sagactl_help_wait, false },
	{ "ping", sagactl_ops_ping,
	    "check that sagad or a participant answers",
	    sagactl_help_ping, false },
};

#define SAGACTL_NCMDS (sizeof(sagactl_cmds) / sizeof(sagactl_cmds[0]))

static void
sagactl_help(FILE *f)
{
	fprintf(f,
	    "Usage: sagactl [--db CONNINFO] [--coordinator URL] COMMAND "
	    "[ARGS]\n"
	    "\n"
	    "Start, inspect and operate sagas.\n"
	    "\n"
	    "Commands:\n");
	for (size_t i = 0; i < SAGACTL_NCMDS; i++) {
		fprintf(f, "  %-10s %s\n", sagactl_cmds[i].name,
		    sagactl_cmds[i].summary);
	}
	fprintf(f,
	    "\n"
	    "list, show, defs and stats read the saga log in PostgreSQL\n"
	    "and work while sagad is down; start, retry, cancel, resolve,\n"
	    "skip, status and wait go through sagad.\n"
	    "\n" SAGACTL_COMMON_HELP
	    "  -V, --version            print the version\n"
	    "\n"
	    "'sagactl COMMAND --help' tells more. Exit status: 0 success,\n"
	    "1 not found or failed, 2 usage error, 3 outcome not known\n"
	    "(start --wait: started but the wait failed; start or a repair:\n"
	    "sagad got the request, its answer was lost). ^C (or SIGTERM)\n"
	    "stops a purge or a bulk repair at its next step: it says what\n"
	    "it did, then dies of the signal; a second one kills at once.\n"
	    "Colour only on a terminal and never with NO_COLOR set. Times\n"
	    "are UTC.\n");
}

int64_t
sagactl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Prints "sagactl[ CMD]: " and the message on one line. */
static void
sagactl_vline(const sagactl_ctx *ctx, const char *fmt, va_list ap)
{
	char buf[2048];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* One line: trailing breaks go, inner ones become "; ". */
	for (size_t n = strlen(buf);
	     n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '); n--) {
		buf[n - 1] = '\0';
	}
	fprintf(stderr, "sagactl%s%s: ", ctx->cmd ? " " : "",
	    ctx->cmd ? ctx->cmd->name : "");
	for (const char *p = buf; *p != '\0'; p++) {
		if (*p == '\n') {
			fputs("; ", stderr);
			while (p[1] == '\t' || p[1] == ' ') {
				p++;
			}
		} else {
			fputc(*p, stderr);
		}
	}
	fputc('\n', stderr);
}

int
sagactl_error(const sagactl_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sagactl_vline(ctx, fmt, ap);
	va_end(ap);
	return (SAGACTL_EXIT_FAIL);
}

void
sagactl_note(const sagactl_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sagactl_vline(ctx, fmt, ap);
	va_end(ap);
}

int
sagactl_usage(const sagactl_ctx *ctx, const char *fmt, ...)
{
	char    buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (ctx->cmd != NULL) {
		fprintf(stderr, "sagactl %s: %s; see 'sagactl %s --help'\n",
		    ctx->cmd->name, buf, ctx->cmd->name);
	} else {
		fprintf(stderr, "sagactl: %s; see 'sagactl --help'\n", buf);
	}
	return (SAGACTL_EXIT_USAGE);
}

/* The option as the user wrote it, for messages. */
static const char *
sagactl_opt_text(char **argv, int optind_now, char *buf, size_t len)
{
	const char *a = optind_now > 0 ? argv[optind_now - 1] : "";

	snprintf(buf, len, "%.*s", (int) strcspn(a, "="), a);
	return (buf);
}

int
sagactl_parse(sagactl_ctx *ctx, int argc, char **argv,
    const struct option *opts, sagactl_opt_cb cb, void *arg_state, int *first)
{
	static const struct option common[] = {
		{ "db", required_argument, NULL, SAGACTL_O_DB },
		{ "coordinator", required_argument, NULL,
		    SAGACTL_O_COORDINATOR },
		{ "tls-ca", required_argument, NULL, SAGACTL_O_TLS_CA },
		{ "tls-cert", required_argument, NULL, SAGACTL_O_TLS_CERT },
		{ "tls-key", required_argument, NULL, SAGACTL_O_TLS_KEY },
		{ "json", no_argument, NULL, SAGACTL_O_JSON },
		{ "wide", no_argument, NULL, SAGACTL_O_WIDE },
		{ "help", no_argument, NULL, SAGACTL_O_HELP },
	};
	size_t         nc = sizeof(common) / sizeof(common[0]);
	size_t         no = 0;
	struct option *all;
	char           shorts[64] = ":h";
	char           text[128];
	int            ch, rv = 0;

	while (opts != NULL && opts[no].name != NULL) {
		if (opts[no].val > 0 && opts[no].val < 128
		    && strlen(shorts) + 3 < sizeof(shorts)) {
			size_t k = strlen(shorts);

			shorts[k]     = (char) opts[no].val;
			shorts[k + 1] = opts[no].has_arg ? ':' : '\0';
			shorts[k + 2] = '\0';
		}
		no++;
	}
	if ((all = calloc(nc + no + 1, sizeof(*all))) == NULL) {
		return (sagactl_error(ctx, "out of memory"));
	}
	memcpy(all, common, sizeof(common));
	if (no > 0) {
		memcpy(all + nc, opts, no * sizeof(*all));
	}
	opterr = 0;
	optind = 0; /* GNU: start over, with argv[0] the command */
	while (rv == 0
	    && (ch = getopt_long(argc, argv, shorts, all, NULL)) != -1) {
		switch (ch) {
		case 'h':
		case SAGACTL_O_HELP:
			fputs(ctx->cmd->help, stdout);
			rv = SAGACTL_EXIT_HELP;
			break;
		case SAGACTL_O_DB:
			ctx->db = optarg;
			break;
		case SAGACTL_O_COORDINATOR:
			ctx->coordinator = optarg;
			break;
		case SAGACTL_O_TLS_CA:
			ctx->tls.ca = optarg;
			break;
		case SAGACTL_O_TLS_CERT:
			ctx->tls.cert = optarg;
			break;
		case SAGACTL_O_TLS_KEY:
			ctx->tls.key = optarg;
			break;
		case SAGACTL_O_JSON:
			ctx->json = true;
			break;
		case SAGACTL_O_WIDE:
			ctx->out.wide = true;
			break;
		case ':':
			if (optopt > 0 && optopt < 128) {
				rv = sagactl_usage(
				    ctx, "option -%c needs a value", optopt);
			} else {
				rv = sagactl_usage(ctx,
				    "option %s needs a value",
				    sagactl_opt_text(
				        argv, optind, text, sizeof(text)));
			}
			break;
		case '?':
			if (optopt > 0 && optopt < 128) {
				rv = sagactl_usage(
				    ctx, "unknown option -%c", optopt);
			} else {
				rv = sagactl_usage(ctx, "unknown option %s",
				    sagactl_opt_text(
				        argv, optind, text, sizeof(text)));
			}
			break;
		default:
			rv = cb != NULL
			    ? cb(ctx, ch, optarg, arg_state)
			    : sagactl_usage(ctx, "unexpected option");
			break;
		}
	}
	free(all);
	*first = optind;
	return (rv);
}

/* Whether the filter already holds state name. Both come from
 * saga_state_name (upper case), whatever case the user wrote. */
static bool
sagactl_filter_has(const sagactl_filter *f, const char *name)
{
	for (size_t i = 0; i < f->nstates; i++) {
		if (strcmp(f->states[i], name) == 0) {
			return (true);
		}
	}
	return (false);
}

int
sagactl_filter_opt(
    sagactl_ctx *ctx, sagactl_filter *f, int ch, const char *arg)
{
	int64_t ms;

	switch (ch) {
	case SAGACTL_O_STATE: {
		const char *p = arg;

		/* --state "" (an unset variable in a script) selects
		 * nothing: not "every state". */
		if (*arg == '\0') {
			return (sagactl_usage(ctx,
			    "--state \"\": expected states separated by "
			    "commas"));
		}
		/* Each --state adds to those before it, as its list does:
		 * "--state FAILED --state RUNNING" is both (the second one
		 * replaced the first). */
		while (*p != '\0') {
			size_t     n = strcspn(p, ",");
			char       name[32];
			saga_state st;

			if (n == 0 || n >= sizeof(name)) {
				return (sagactl_usage(ctx,
				    "--state \"%s\": expected states "
				    "separated "
				    "by commas",
				    arg));
			}
			for (size_t i = 0; i < n; i++) {
				name[i] = (char) toupper((unsigned char) p[i]);
			}
			name[n] = '\0';
			if (saga_state_parse(name, &st) != 0) {
				return (sagactl_usage(ctx,
				    "unknown state \"%s\" (expected RUNNING, "
				    "COMPENSATING, COMPLETED, COMPENSATED, "
				    "FAILED or RESOLVED)",
				    name));
			}
			/* A state given twice counts once; a new one past
			 * the array's room (more states than there are)
			 * is an error, never dropped. */
			if (!sagactl_filter_has(f, saga_state_name(st))) {
				if (f->nstates ==
				    sizeof(f->states) / sizeof(f->states[0])) {
					return (sagactl_usage(ctx,
					    "--state \"%s\": too many states",
					    arg));
				}
				f->states[f->nstates++] = saga_state_name(st);
			}
			p += n;
			if (*p == ',') {
				p++;
			}
		}
		break;
	}
	case SAGACTL_O_SAGA:
		f->saga = arg;
		break;
	case SAGACTL_O_KEY:
		f->key = arg;
		break;
	case SAGACTL_O_SINCE:
		if (coord_duration_parse(arg, &ms) == 0) {
			f->since_ms = ctx->now_ms - ms;
		} else if (sagactl_parse_time(arg, &ms) == 0) {
			f->since_ms = ms;
		} else {
			return (sagactl_usage(ctx,
			    "--since \"%s\": expected a duration (30m, 2h, "
			    "7d) "
			    "or a time (2026-11-24T15:00:00Z)",
			    arg));
		}
		if (f->since_ms <= 0) {
			f->since_ms = 1;
		}
		break;
	case SAGACTL_O_LIMIT: {
		char *end;
		long  n;

		errno = 0;
		n     = strtol(arg, &end, 10);
		if (errno != 0 || *end != '\0' || *arg == '\0' || n < 0) {
			return (sagactl_usage(ctx,
			    "--limit \"%s\": expected a number, 0 for no "
			    "limit",
			    arg));
		}
		f->limit = n;
		/* A bound, not a selection: bulk repairs need one of the
		 * others (--limit 0 alone would take every saga). */
		f->given = true;
		return (0);
	}
	default:
		return (1);
	}
	f->given   = true;
	f->selects = true;
	return (0);
}

void
sagactl_filter_describe(const sagactl_filter *f, char *buf, size_t len)
{
	size_t n = 0;
	char   t[40];

#define SAGACTL_APPEND(...)                                       \
	do {                                                      \
		int w_ = snprintf(buf + n, len - n, __VA_ARGS__); \
		if (w_ > 0 && (size_t) w_ < len - n) {            \
			n += (size_t) w_;                         \
		}                                                 \
	} while (0)
	buf[0] = '\0';
	if (f->nstates > 0) {
		SAGACTL_APPEND("state ");
		for (size_t i = 0; i < f->nstates; i++) {
			SAGACTL_APPEND("%s%s", i ? "," : "", f->states[i]);
		}
	}
	if (f->saga != NULL) {
		SAGACTL_APPEND("%ssaga %s", n ? ", " : "", f->saga);
	}
	if (f->key != NULL) {
		SAGACTL_APPEND("%skey %s", n ? ", " : "", f->key);
	}
	if (f->since_ms > 0) {
		SAGACTL_APPEND("%sstarted since %s", n ? ", " : "",
		    sagactl_out_time(f->since_ms, t, sizeof(t)));
	}
	if (n == 0) {
		SAGACTL_APPEND("all sagas");
	}
#undef SAGACTL_APPEND
}

int
sagactl_parse_id(const sagactl_ctx *ctx, const char *text, char *id)
{
	saga_id sid;

	if (saga_id_parse(&sid, text) != 0 || saga_id_is_nil(&sid)) {
		return (sagactl_usage(ctx,
		    "\"%s\" is not a saga id (expected a UUID such as "
		    "0190f3a2-79b0-7cc3-98c4-dc0c0c07398f; see sagactl list)",
		    text));
	}
	saga_id_format(&sid, id);
	return (0);
}

int
sagactl_parse_duration(
    const sagactl_ctx *ctx, const char *opt, const char *arg, int64_t *ms)
{
	if (coord_duration_parse(arg, ms) != 0) {
		return (sagactl_usage(ctx,
		    "%s \"%s\": expected a duration such as 500ms, 30s, 5m, "
		    "2h or 7d",
		    opt, arg));
	}
	return (0);
}

/* Reads exactly n digits at *p. */
static int
sagactl_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char) (*p)[i])) {
			return (-1);
		}
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return (0);
}

int
sagactl_parse_time(const char *s, int64_t *ms)
{
	struct tm   tm;
	const char *p = s;
	int         y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
	time_t      t;

	memset(&tm, 0, sizeof(tm));
	if (sagactl_digits(&p, 4, &y) != 0 || *p++ != '-'
	    || sagactl_digits(&p, 2, &mo) != 0 || *p++ != '-'
	    || sagactl_digits(&p, 2, &d) != 0) {
		return (-1);
	}
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (sagactl_digits(&p, 2, &h) != 0 || *p++ != ':'
		    || sagactl_digits(&p, 2, &mi) != 0) {
			return (-1);
		}
		if (*p == ':') {
			p++;
			if (sagactl_digits(&p, 2, &sec) != 0) {
				return (-1);
			}
			if (*p == '.') {
				int scale = 100;

				p++;
				if (!isdigit((unsigned char) *p)) {
					return (-1);
				}
				for (; isdigit((unsigned char) *p); p++) {
					frac += (*p - '0') * scale;
					scale /= 10;
				}
			}
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '-' ? -1 : 1;
			int oh, om = 0;

			if (sagactl_digits(&p, 2, &oh) != 0) {
				return (-1);
			}
			if (*p == ':') {
				p++;
			}
			if (*p != '\0' && sagactl_digits(&p, 2, &om) != 0) {
				return (-1);
			}
			if (oh > 23 || om > 59) {
				return (-1);
			}
			off = sign * (oh * 60 + om);
		}
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59
	    || sec > 60) {
		return (-1);
	}
	/* A day the month has: timegm would move 2026-02-30 to March 2. */
	{
		static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31,
			31, 30, 31, 30, 31 };
		bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

		if (d > mdays[mo - 1] + (mo == 2 && leap ? 1 : 0)) {
			return (-1);
		}
	}
	tm.tm_year = y - 1900;
	tm.tm_mon  = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min  = mi;
	tm.tm_sec  = sec;
	if ((t = timegm(&tm)) == (time_t) -1) {
		return (-1);
	}
	*ms = ((int64_t) t - (int64_t) off * 60) * 1000 + frac;
	return (0);
}

int
sagactl_confirm(const sagactl_ctx *ctx, bool yes, const char *question)
{
	char line[64];

	if (yes) {
		return (0);
	}
	if (!isatty(STDIN_FILENO)) {
		return (sagactl_usage(ctx,
		    "%s: no terminal to confirm on; add --yes to go ahead",
		    question));
	}
	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL
	    || (line[0] != 'y' && line[0] != 'Y')) {
		return (
		    sagactl_error(ctx, "not confirmed; nothing was changed"));
	}
	return (0);
}

static const sagactl_cmd *
sagactl_find(const char *name)
{
	for (size_t i = 0; i < SAGACTL_NCMDS; i++) {
		if (strcmp(sagactl_cmds[i].name, name) == 0) {
			return (&sagactl_cmds[i]);
		}
	}
	return (NULL);
}

int
main(int argc, char **argv)
{
	static const struct option global[] = {
		{ "db", required_argument, NULL, SAGACTL_O_DB },
		{ "coordinator", required_argument, NULL,
		    SAGACTL_O_COORDINATOR },
		{ "tls-ca", required_argument, NULL, SAGACTL_O_TLS_CA },
		{ "tls-cert", required_argument, NULL, SAGACTL_O_TLS_CERT },
		{ "tls-key", required_argument, NULL, SAGACTL_O_TLS_KEY },
		{ "json", no_argument, NULL, SAGACTL_O_JSON },
		{ "wide", no_argument, NULL, SAGACTL_O_WIDE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	sagactl_ctx ctx;
	char        text[128];
	int         ch, rv;

	/* An output that closes early (| head) is a write error, reported
	 * and counted in the exit status, not a SIGPIPE that kills a bulk
	 * repair halfway with a status of 141. */
	(void) signal(SIGPIPE, SIG_IGN);
	memset(&ctx, 0, sizeof(ctx));
	sagactl_out_init(&ctx.out, stdout);
	ctx.now_ms = sagactl_now_ms();
	opterr     = 0;
	while ((ch = getopt_long(argc, argv, "+:hV", global, NULL)) != -1) {
		switch (ch) {
		case SAGACTL_O_DB:
			ctx.db = optarg;
			break;
		case SAGACTL_O_COORDINATOR:
			ctx.coordinator = optarg;
			break;
		case SAGACTL_O_TLS_CA:
			ctx.tls.ca = optarg;
			break;
		case SAGACTL_O_TLS_CERT:
			ctx.tls.cert = optarg;
			break;
		case SAGACTL_O_TLS_KEY:
			ctx.tls.key = optarg;
			break;
		case SAGACTL_O_JSON:
			ctx.json = true;
			break;
		case SAGACTL_O_WIDE:
			ctx.out.wide = true;
			break;
		case 'h':
			sagactl_help(stdout);
			return (SAGACTL_EXIT_OK);
		case 'V':
			printf("sagactl %s (protocol %d)\n",
			    SAGA_VERSION_STRING, PROTO_VERSION);
			return (SAGACTL_EXIT_OK);
		case ':':
			return (sagactl_usage(&ctx, "option %s needs a value",
			    sagactl_opt_text(
			        argv, optind, text, sizeof(text))));
		default:
			return (sagactl_usage(&ctx, "unknown option %s",
			    sagactl_opt_text(
			        argv, optind, text, sizeof(text))));
		}
	}
	if (optind >= argc) {
		char   names[256];
		size_t off = 0;

		/* From the table --help prints, so that it names them all. */
		names[0] = '\0';
		for (size_t i = 0; i < SAGACTL_NCMDS && off < sizeof(names);
		     i++) {
			off += (size_t) snprintf(names + off,
			    sizeof(names) - off, "%s%s", i > 0 ? ", " : "",
			    sagactl_cmds[i].name);
		}
		return (sagactl_usage(&ctx, "give a command (%s)", names));
	}
	if (strcmp(argv[optind], "help") == 0) {
		const sagactl_cmd *c = optind + 1 < argc
		    ? sagactl_find(argv[optind + 1])
		    : NULL;

		if (optind + 1 < argc && c == NULL) {
			return (sagactl_usage(
			    &ctx, "unknown command \"%s\"", argv[optind + 1]));
		}
		if (c != NULL) {
			fputs(c->help, stdout);
		} else {
			sagactl_help(stdout);
		}
		return (SAGACTL_EXIT_OK);
	}
	if ((ctx.cmd = sagactl_find(argv[optind])) == NULL) {
		return (sagactl_usage(
		    &ctx, "unknown command \"%s\"", argv[optind]));
	}
	if (ctx.coordinator == NULL) {
		ctx.coordinator = getenv("SAGA_COORDINATOR");
	}
	ctx.tls.ca   = ctx.tls.ca ? ctx.tls.ca : getenv("SAGA_TLS_CA");
	ctx.tls.cert = ctx.tls.cert ? ctx.tls.cert : getenv("SAGA_TLS_CERT");
	ctx.tls.key  = ctx.tls.key ? ctx.tls.key : getenv("SAGA_TLS_KEY");
	rv = ctx.cmd->run(&ctx, argc - optind, argv + optind);
	if (sagactl_intr_signal() != 0) {
		/* Stopped by ^C or SIGTERM, having said what it did: it
		 * dies of the signal, so that a shell's loop stops too (an
		 * exit 130 reads as a signal the command handled). */
		int sig = sagactl_intr_signal();

		(void) fflush(stdout);
		(void) fflush(stderr);
		(void) signal(sig, SIG_DFL);
		(void) raise(sig);
	}
	/* A write that failed before (its errno is gone) is not reported
	 * by a last flush with nothing left to write: ferror. */
	errno = 0;
	if ((rv == SAGACTL_EXIT_OK || rv == SAGACTL_EXIT_HELP ||
	        (rv == SAGACTL_EXIT_FAIL && ctx.cmd->changes)) &&
	    (fflush(stdout) != 0 || ferror(stdout))) {
		const char *why = errno != 0 ? strerror(errno) : "failed";

		/* Only when something was: a bulk repair whose every saga
		 * was refused, a purge with nothing to delete, said exit 3
		 * as well. */
		if (ctx.cmd->changes && ctx.applied &&
		    rv != SAGACTL_EXIT_HELP) {
			/* It was carried out, or some of it was (start
			 * --wait of a saga that failed, a bulk repair with
			 * a refusal): exit 3, as for a lost answer, so that
			 * a script does not do it again (exit 1 with an
			 * empty stdout says that start started nothing). */
			(void) sagactl_error(&ctx,
			    "writing the output: %s; the command was carried "
			    "out, at least in part: see sagactl list or show "
			    "before repeating it",
			    why);
			return (SAGACTL_EXIT_UNKNOWN);
		}
		return (sagactl_error(&ctx, "writing the output: %s", why));
	}
	return (rv == SAGACTL_EXIT_HELP ? SAGACTL_EXIT_OK : rv);
}
