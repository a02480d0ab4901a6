/* SPDX-License-Identifier: MIT */
/*
 * sagactl: what the modules of the command-line tool share: the context of
 * one run (connection settings, output), the command table, option
 * parsing, one-line errors, the saga filters of list and of the bulk
 * repairs, and the confirmation prompt.
 *
 * The tool is split by what a command touches: sagactl_read.c (list,
 * defs, stats, validate) and sagactl_show.c (show) only read the log from
 * PostgreSQL, so that they work while sagad is down; sagactl_ops.c (start
 * and the repairs) goes through sagad's API, so that the write-ahead rule
 * holds, except purge, which deletes finished sagas that sagad no longer
 * holds. sagactl_out.c formats (tables, colour, times, JSON),
 * sagactl_db.c connects and queries, sagactl_chart.c draws the Gantt
 * chart of show.
 *
 * Exit status: 0 success, 1 not found or failed, 2 usage error, 3 (start
 * --wait) the saga was started but waiting for its end failed. Every
 * error is one line on stderr that says what to do.
 */
#ifndef COORDINATOR_SAGACTL_H
#define COORDINATOR_SAGACTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saga_tls.h"
#include "sagactl_out.h"

#define SAGACTL_EXIT_OK    0
#define SAGACTL_EXIT_FAIL  1
#define SAGACTL_EXIT_USAGE 2
/* start --wait: the saga was started (its id was printed), then waiting
 * for its end failed: it must not be started again. */
#define SAGACTL_EXIT_WAIT 3
/* The same status for a request that reached sagad whose answer was lost
 * (the connection closed, or no answer in time): a START may have
 * started its saga, a repair may have been applied. */
#define SAGACTL_EXIT_UNKNOWN 3
/* Returned by sagactl_parse when --help was printed: exit 0. */
#define SAGACTL_EXIT_HELP (-1)

/* sagad's default client API endpoint (sagad --listen). */
#define SAGACTL_COORDINATOR_DEFAULT "tcp://127.0.0.1:7100"

typedef struct sagactl_ctx sagactl_ctx;

/* sagactl_cmd is one subcommand: its name, what runs it and its help. */
typedef struct sagactl_cmd {
	const char *name;
	int (*run)(sagactl_ctx *ctx, int argc, char **argv);
	const char *summary; /* one line, for sagactl --help */
	const char *help; /* the whole --help text */
	bool        changes; /* changes sagas (exit 3 if its output is lost) */
} sagactl_cmd;

/* sagactl_ctx is the context of one run. */
struct sagactl_ctx {
	const char        *db; /* conninfo; "" = libpq's PG* vars */
	const char        *coordinator; /* sagad's API URL */
	saga_tls_opts      tls; /* for a tls+tcp:// coordinator */
	bool               json; /* --json */
	const sagactl_cmd *cmd; /* the subcommand running */
	sagactl_out        out; /* stdout */
	int64_t            now_ms; /* when the command started */
	/* A command that changes sagas carried out something (or may
	 * have: a lost answer): an output then not written is exit 3. */
	bool               applied;
};

/* Common option ids (above any character). */
enum {
	SAGACTL_O_DB = 1000,
	SAGACTL_O_COORDINATOR,
	SAGACTL_O_TLS_CA,
	SAGACTL_O_TLS_CERT,
	SAGACTL_O_TLS_KEY,
	SAGACTL_O_JSON,
	SAGACTL_O_WIDE,
	SAGACTL_O_HELP,
	/* Filters. */
	SAGACTL_O_STATE,
	SAGACTL_O_SAGA,
	SAGACTL_O_KEY,
	SAGACTL_O_SINCE,
	SAGACTL_O_LIMIT,
	/* First id free for a command's own options. */
	SAGACTL_O_CMD,
};

/* sagactl_opt_cb handles one of a command's own options (ch is the id
 * from its table, arg the argument or NULL). Returns 0, or an exit status
 * after printing a usage error. */
typedef int (*sagactl_opt_cb)(
    sagactl_ctx *ctx, int ch, const char *arg, void *arg_state);

/* sagactl_parse parses argv (argv[0] is the subcommand) with the common
 * options (--db, --coordinator, --json, --wide, --help) and opts
 * (terminated by a zero entry; may be NULL), calling cb for the command's
 * own. Options and operands may come in any order; "--" ends the options.
 * On success the operands are left in argv[*first..argc-1] and it returns
 * 0; else SAGACTL_EXIT_HELP (help printed) or SAGACTL_EXIT_USAGE (error
 * printed). */
int sagactl_parse(sagactl_ctx *ctx, int argc, char **argv,
    const struct option *opts, sagactl_opt_cb cb, void *arg_state, int *first);

/* sagactl_error prints "sagactl: <message>" on one line on stderr (line
 * breaks in the message become "; ") and returns SAGACTL_EXIT_FAIL. */
int sagactl_error(const sagactl_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* sagactl_usage prints "sagactl CMD: <message>; see 'sagactl CMD --help'"
 * on stderr and returns SAGACTL_EXIT_USAGE. */
int sagactl_usage(const sagactl_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* sagactl_note prints "sagactl: <message>" on stderr: information that is
 * not the command's output (no effect on the exit status). */
void sagactl_note(const sagactl_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* sagactl_filter selects sagas: list, and the bulk forms of retry and
 * cancel. Unset fields select everything. */
typedef struct sagactl_filter {
	const char *states[6]; /* state names, upper case */
	size_t      nstates;
	const char *saga; /* definition name */
	const char *key; /* business key */
	int64_t     since_ms; /* created at or after (Unix ms); 0 = any */
	long        limit; /* at most; 0 = no limit */
	bool        given; /* any filter option was given */
	bool        selects; /* one that selects sagas (not --limit) */
} sagactl_filter;

/* sagactl_filter_opts are the long options of the filters, to put in a
 * command's option table (SAGACTL_FILTER_OPTS). */
#define SAGACTL_FILTER_OPTS                                        \
	{ "state", required_argument, NULL, SAGACTL_O_STATE },     \
	    { "saga", required_argument, NULL, SAGACTL_O_SAGA },   \
	    { "key", required_argument, NULL, SAGACTL_O_KEY },     \
	    { "since", required_argument, NULL, SAGACTL_O_SINCE }, \
	{                                                          \
		"limit", required_argument, NULL, SAGACTL_O_LIMIT  \
	}

/* sagactl_filter_opt handles a filter option for a command's option
 * callback. Returns 1 if ch was not a filter option, 0 if it was and was
 * valid, else SAGACTL_EXIT_USAGE (printed). The strings are borrowed from
 * argv. */
int sagactl_filter_opt(
    sagactl_ctx *ctx, sagactl_filter *f, int ch, const char *arg);

/* sagactl_filter_describe writes the filters in words ("state FAILED,
 * saga create_order") into buf. */
void sagactl_filter_describe(const sagactl_filter *f, char *buf, size_t len);

/* sagactl_parse_id checks that text is a saga id and writes its canonical
 * form into id (SAGA_ID_STRLEN + 1 bytes). Returns 0 or
 * SAGACTL_EXIT_USAGE (printed). */
int sagactl_parse_id(const sagactl_ctx *ctx, const char *text, char *id);

/* sagactl_parse_duration reads a duration (coord_duration_parse: "90s",
 * "5m", "1h", "7d") for option opt. Returns 0 or SAGACTL_EXIT_USAGE
 * (printed). */
int sagactl_parse_duration(
    const sagactl_ctx *ctx, const char *opt, const char *arg, int64_t *ms);

/* sagactl_parse_time reads an absolute time: "2026-11-24",
 * "2026-11-24T15:04", "2026-11-24T15:04:05[.123]" with "Z" or "+02:00"
 * (none means UTC), into Unix ms. Returns 0 or -1. */
int sagactl_parse_time(const char *s, int64_t *ms);

/* sagactl_confirm asks question (a y/N prompt on the terminal) unless yes
 * is set. Returns 0 to go on, SAGACTL_EXIT_FAIL if the operator said no
 * (printed), SAGACTL_EXIT_USAGE if there is no terminal to ask on
 * (printed: use --yes). */
int sagactl_confirm(const sagactl_ctx *ctx, bool yes, const char *question);

/* sagactl_now_ms returns the wall clock in Unix ms. */
int64_t sagactl_now_ms(void);

#endif /* COORDINATOR_SAGACTL_H */
