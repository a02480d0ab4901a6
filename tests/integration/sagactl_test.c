/* SPDX-License-Identifier: MIT */
/*
 * sagactl_test: the command-line tool against a real PostgreSQL server
 * and a real sagad.
 *
 * Three groups. The read group fills a fresh, migrated database with
 * sagas in every state (rows inserted directly, with known events and
 * times) and checks list and show (human and --json, parsed back), the
 * filters, defs, stats, validate, purge, unknown ids, bad flags and a
 * database that is down. The redact group does the same with a
 * definition that redacts input fields (the business key's among them)
 * and checks that list and show print "***" for them, and their values
 * nowhere, while a saga without redaction shows its own. The ops group
 * runs sagad and test_participant on a fresh database and drives every
 * repair end to end: start (--wait, keys), retry, cancel, resolve, skip,
 * the bulk forms with and without --yes, an unknown id and a coordinator
 * that is down.
 *
 * sagactl runs with stdin from /dev/null (no terminal: confirmations
 * refuse without --yes) and stdout to a file (no colour). Without a
 * PostgreSQL server the tests are skipped (tests/support/pgtest.h).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "coord_config.h"
#include "pgtest.h"
#include "proc.h"
#include "proto_json.h"
#include "proto_msg.h"
#include "proto_val.h"
#include "saga_err.h"
#include "sql_migrate.h"

#ifndef SAGACTL_PATH
#error "SAGACTL_PATH must name the sagactl binary"
#endif

/* Saga ids of the read group, and their business keys. */
#define ID_COMPLETED    "01900000-0000-7000-8000-000000000001"
#define ID_COMPENSATED  "01900000-0000-7000-8000-000000000002"
#define ID_LONG         "01900000-0000-7000-8000-0000000000aa"
#define ID_FAILED       "01900000-0000-7000-8000-000000000003"
#define ID_RUNNING      "01900000-0000-7000-8000-000000000004"
#define ID_COMPENSATING "01900000-0000-7000-8000-000000000005"
#define ID_RESOLVED     "01900000-0000-7000-8000-000000000006"
#define ID_REFUND       "01900000-0000-7000-8000-000000000007"
#define ID_OLD          "01900000-0000-7000-8000-000000000008"
#define ID_UNKNOWN      "01900000-0000-7000-8000-0000000000ff"

/* Saga ids of the redact group, and the values that must not show. */
#define ID_SECRET  "01900000-0000-7000-8000-000000000101"
#define ID_PLAIN   "01900000-0000-7000-8000-000000000102"
#define ID_DUP     "01900000-0000-7000-8000-000000000103"
#define ID_FUTURE  "01900000-0000-7000-8000-000000000104"
#define KEY_SECRET "cust-secret-77"
#define KEY_FUTURE "cust-future-99"
#define CARD_SECRET "4111111111111111"
#define CARD_PLAIN  "5500000000000004"
#define CARD_DUP    "4000000000000002"
#define CARD_FUTURE "4242424242424242"

#define TRACE "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

typedef struct fixture {
	char  conninfo[1024];
	char  explain_db[1400]; /* conninfo with auto_explain (plan group) */
	bool  explain; /* ctl uses explain_db */
	char  url[64]; /* sagad's API (ops group) */
	char  dir[512]; /* scratch files */
	char  yaml[600]; /* saga definitions */
	char  sagad_log[600];
	char  tp_log[600];
	proc *sagad;
	proc *tp;
	char *out; /* of the last sagactl run */
	char *err;
	/* A test's own sagad on its own database, and sagactls run in the
	 * background: stopped (if a test failed) and dropped at teardown. */
	char  own_conninfo[1024];
	proc *own_sagad;
	proc *bg[2];
} fixture;

static int
scale(void)
{
	return (test_timeout_scale());
}

/* Runs sagactl with --db (and --coordinator when set), then args (NULL
 * terminated); keeps stdout and stderr in f. Returns the exit status. */
static int
ctl(fixture *f, ...)
{
	char   *argv[64];
	int     n = 0;
	va_list ap;
	char   *a;

	free(f->out);
	free(f->err);
	f->out = f->err = NULL;
	argv[n++]       = SAGACTL_PATH;
	argv[n++]       = "--db";
	argv[n++]       = f->explain ? f->explain_db : f->conninfo;
	if (f->url[0] != '\0') {
		argv[n++] = "--coordinator";
		argv[n++] = f->url;
	}
	va_start(ap, f);
	while ((a = va_arg(ap, char *)) != NULL && n < 63) {
		argv[n++] = a;
	}
	va_end(ap);
	argv[n] = NULL;
	n       = proc_run(argv, 60000 * scale(), &f->out, &f->err);
	if (f->out == NULL) {
		f->out = strdup("");
	}
	if (f->err == NULL) {
		f->err = strdup("");
	}
	return (n);
}

static bool
has(const char *text, const char *needle)
{
	if (strstr(text, needle) == NULL) {
		fprintf(stderr, "expected \"%s\" in:\n%s\n", needle, text);
		return (false);
	}
	return (true);
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		n += *s == '\n';
	}
	return (n);
}

/* An error is one line on stderr, "sagactl...: ...". */
static void
assert_one_line_error(const fixture *f)
{
	if (count_lines(f->err) != 1 || strncmp(f->err, "sagactl", 7) != 0) {
		fprintf(stderr, "expected a one-line error, got:\n%s", f->err);
		fail();
	}
}

/* Parses JSON text (libfyaml, through the protocol library) into a
 * tree; raw keeps the bytes the tree borrows. */
static proto_doc *
json_parse(const char *text, proto_buf *raw)
{
	proto_limits lim = {
		.max_msg_bytes     = 64 * 1024 * 1024,
		.max_depth         = 64,
		.max_str_bytes     = 1024 * 1024,
		.max_container_len = 1000000,
	};
	proto_doc *doc = NULL;
	char       err[256];

	proto_buf_init(raw);
	if (proto_json_to_raw(text, strlen(text), &lim, raw, err, sizeof(err))
	        != 0
	    || proto_doc_parse(&doc, proto_buf_raw(raw), &lim, NULL) != 0) {
		fprintf(stderr, "not JSON (%s):\n%s\n", err, text);
		return (NULL);
	}
	return (doc);
}

/* The string at path, or "" (NULL values give "null"). */
static const char *
jstr(const proto_val *v, const char *path, char *buf, size_t len)
{
	const proto_val *x = proto_val_path(v, path);
	proto_str        s;

	if (proto_val_type_of(x) == PROTO_VAL_NIL) {
		snprintf(buf, len, "%s", x == NULL ? "(absent)" : "null");
	} else if (proto_val_str(x, &s) == 0) {
		snprintf(buf, len, "%.*s", (int) s.len, s.ptr);
	} else {
		snprintf(buf, len, "(not a string)");
	}
	return (buf);
}

static int64_t
jint(const proto_val *v, const char *path)
{
	int64_t n = -999;

	(void) proto_val_int(proto_val_path(v, path), &n);
	return (n);
}

static bool
jnull(const proto_val *v, const char *path)
{
	const proto_val *x = proto_val_path(v, path);

	return (x != NULL && proto_val_type_of(x) == PROTO_VAL_NIL);
}

static void
put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static long long
query_int(const fixture *f, const char *sql)
{
	PGconn   *c = pgtest_connect(f->conninfo);
	long long n = -1;

	assert_non_null(c);
	assert_int_equal(pgtest_query_int(c, sql, &n), 0);
	PQfinish(c);
	return (n);
}

static int
migrate(const fixture *f)
{
	char *argv[]
	    = { SAGAD_PATH, "--migrate", "--db", (char *) f->conninfo, NULL };
	char *out = NULL, *err = NULL;
	int   rv = proc_run(argv, 60000 * scale(), &out, &err);

	if (rv != 0) {
		fprintf(stderr, "sagad --migrate: %s%s", out ? out : "",
		    err ? err : "");
	}
	free(out);
	free(err);
	return (rv);
}

/*
 * The read group: rows inserted directly.
 */

static const char read_yaml[]
    = "participants:\n"
      "  shop: {endpoints: [\"tcp://127.0.0.1:1\"]}\n"
      "sagas:\n"
      "  - name: create_order\n"
      "    business_key: customer_id\n"
      "    steps:\n"
      "      - {name: create_order, participant: shop, action: order.create,"
      " compensation: order.reject}\n"
      "      - {name: reserve_stock, participant: shop, action: stock.reserve,"
      " compensation: stock.release}\n"
      "      - {name: charge, participant: shop, action: pay.charge,"
      " compensation: pay.refund}\n"
      "  - name: refund\n"
      "    steps:\n"
      "      - {name: refund, participant: shop, action: pay.refund_all,"
      " kind: pivot}\n";

/* One event row: -1 / 0 / NULL are SQL NULL. */
typedef struct tev {
	int         at_ms;
	int         step;
	int         kind;
	int         attempt;
	const char *event;
	const char *outcome;
	const char *error;
	long        dur_us;
	bool        output;
} tev;

/* One saga row and its events. */
typedef struct tsaga {
	const char *id;
	const char *saga;
	const char *state;
	int         step;
	int         attempt;
	const char *key;
	const char *last_error;
	long long   age_ms; /* created this long ago */
	long long   updated_ms; /* updated this long ago */
	long long   next_in_ms; /* next_attempt_at from now; 0 = NULL */
	const tev  *evs;
	size_t      nevs;
	const char *start_key; /* idempotency key, or NULL */
} tsaga;

/* What the redact group adds to a saga row. */
typedef struct tinput {
	const char *card; /* the input's card_number, or NULL */
	bool        dup; /* an input with a key twice (CARD_DUP) */
	int         version; /* of the definition */
} tinput;

static const tev ev_completed[] = {
	{ 0, -1, -1, 0, "saga_started", NULL, NULL, -1, false },
	{ 1, 0, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 20, 0, 0, 1, "step_ok", "ok", NULL, 19000, true },
	{ 21, 1, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 40, 1, 0, 1, "step_ok", "ok", NULL, 19000, true },
	{ 41, 2, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 90, 2, 0, 1, "step_ok", "ok", NULL, 49000, true },
	{ 91, -1, -1, 0, "saga_completed", NULL, NULL, -1, false },
};

static const tev ev_compensated[] = {
	{ 0, -1, -1, 0, "saga_started", NULL, NULL, -1, false },
	{ 1, 0, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 10, 0, 0, 1, "step_ok", "ok", NULL, 9000, true },
	{ 11, 1, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 2011, 1, 0, 1, "step_retry", "timeout",
	    "timeout: no reply from shop within 2000 ms", 2000000, false },
	{ 2111, 1, 0, 2, "step_sent", NULL, NULL, -1, false },
	{ 2130, 1, 0, 2, "step_ok", "ok", NULL, 19000, true },
	{ 2131, 2, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 2150, 2, 0, 1, "step_failed", "failed", "card declined", 19000,
	    false },
	{ 2150, -1, -1, 0, "saga_compensating", NULL,
	    "step charge failed: card declined", -1, false },
	{ 2151, 2, 1, 1, "step_sent", NULL, NULL, -1, false },
	{ 2160, 2, 1, 1, "step_ok", "ok", NULL, 9000, false },
	{ 2161, 1, 1, 1, "step_sent", NULL, NULL, -1, false },
	{ 2170, 1, 1, 1, "step_ok", "ok", NULL, 9000, false },
	{ 2171, 0, 1, 1, "step_sent", NULL, NULL, -1, false },
	{ 2180, 0, 1, 1, "step_ok", "ok", NULL, 9000, false },
	{ 2181, -1, -1, 0, "saga_compensated", NULL, NULL, -1, false },
};

static const tev ev_failed[] = {
	{ 0, -1, -1, 0, "saga_started", NULL, NULL, -1, false },
	{ 1, 0, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 10, 0, 0, 1, "step_ok", "ok", NULL, 9000, true },
	{ 11, 1, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 20, 1, 0, 1, "step_ok", "ok", NULL, 9000, true },
	{ 21, 2, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 30, 2, 0, 1, "step_failed", "failed", "card declined", 9000, false },
	{ 30, -1, -1, 0, "saga_compensating", NULL,
	    "step charge failed: card declined", -1, false },
	{ 31, 2, 1, 1, "step_sent", NULL, NULL, -1, false },
	{ 40, 2, 1, 1, "step_ok", "ok", NULL, 9000, false },
	{ 41, 1, 1, 1, "step_sent", NULL, NULL, -1, false },
	{ 50, 1, 1, 1, "step_retry", "error",
	    "error: inventory answered EUNAVAIL", 9000, false },
	{ 150, 1, 1, 2, "step_sent", NULL, NULL, -1, false },
	{ 160, 1, 1, 2, "step_gave_up", "retry", "retry: warehouse offline",
	    9000, false },
	{ 160, 1, 1, 2, "saga_failed", NULL,
	    "compensation of step reserve_stock gave up: retry: warehouse "
	    "offline",
	    -1, false },
};

static const tev ev_running[] = {
	{ 0, -1, -1, 0, "saga_started", NULL, NULL, -1, false },
	{ 1, 0, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 10, 0, 0, 1, "step_ok", "ok", NULL, 9000, true },
	{ 11, 1, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 2011, 1, 0, 1, "step_retry", "timeout",
	    "timeout: no reply from shop within 2000 ms", 2000000, false },
	{ 2111, 1, 0, 2, "step_sent", NULL, NULL, -1, false },
};

static const tev ev_compensating[] = {
	{ 0, -1, -1, 0, "saga_started", NULL, NULL, -1, false },
	{ 1, 0, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 10, 0, 0, 1, "step_ok", "ok", NULL, 9000, true },
	{ 11, 1, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 20, 1, 0, 1, "step_failed", "failed", "out of stock", 9000, false },
	{ 20, -1, -1, 0, "saga_compensating", NULL,
	    "step reserve_stock failed: out of stock", -1, false },
	{ 21, 1, 1, 1, "step_sent", NULL, NULL, -1, false },
	{ 30, 1, 1, 1, "step_ok", "ok", NULL, 9000, false },
	{ 31, 0, 1, 1, "step_sent", NULL, NULL, -1, false },
	{ 40, 0, 1, 1, "step_retry", "error",
	    "error: orders answered EUNAVAIL", 9000, false },
};

static const tev ev_resolved[] = {
	{ 0, -1, -1, 0, "saga_started", NULL, NULL, -1, false },
	{ 1, 0, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 10, 0, 0, 1, "step_ok", "ok", NULL, 9000, true },
	{ 11, 1, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 20, 1, 0, 1, "step_failed", "failed", "out of stock", 9000, false },
	{ 20, -1, -1, 0, "saga_compensating", NULL,
	    "step reserve_stock failed: out of stock", -1, false },
	{ 21, 1, 1, 1, "step_sent", NULL, NULL, -1, false },
	{ 30, 1, 1, 1, "step_failed", "failed", "cannot release", 9000,
	    false },
	{ 30, 1, 1, 1, "saga_failed", NULL,
	    "compensation of step reserve_stock failed: cannot release", -1,
	    false },
	{ 60000, -1, -1, 0, "saga_resolved", NULL, "released by hand in WMS",
	    -1, false },
};

static const tev ev_refund[] = {
	{ 0, -1, -1, 0, "saga_started", NULL, NULL, -1, false },
	{ 1, 0, 0, 1, "step_sent", NULL, NULL, -1, false },
	{ 5, 0, 0, 1, "step_ok", "ok", NULL, 4000, true },
	{ 6, -1, -1, 0, "saga_completed", NULL, NULL, -1, false },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const tsaga read_sagas[] = {
	{ ID_COMPLETED, "create_order", "COMPLETED", 2, 1, "c-1", NULL,
	    3600000, 3599000, 0, ev_completed, N(ev_completed), "key-1" },
	{ ID_COMPENSATED, "create_order", "COMPENSATED", 0, 1, "c-2",
	    "step charge failed: card declined", 3000000, 2997000, 0,
	    ev_compensated, N(ev_compensated), NULL },
	{ ID_FAILED, "create_order", "FAILED", 1, 2, "c-3",
	    "compensation of step reserve_stock gave up: retry: warehouse "
	    "offline",
	    2400000, 2399000, 0, ev_failed, N(ev_failed), NULL },
	{ ID_RUNNING, "create_order", "RUNNING", 1, 2, "c-4",
	    "step reserve_stock: timeout: no reply from shop within 2000 ms",
	    30000, 27000, 0, ev_running, N(ev_running), NULL },
	{ ID_COMPENSATING, "create_order", "COMPENSATING", 0, 1, "c-5",
	    "step create_order: error: orders answered EUNAVAIL", 20000, 19000,
	    3600000, ev_compensating, N(ev_compensating), NULL },
	{ ID_RESOLVED, "create_order", "RESOLVED", 1, 1, "c-6",
	    "compensation of step reserve_stock failed: cannot release",
	    600000, 540000, 0, ev_resolved, N(ev_resolved), NULL },
	{ ID_REFUND, "refund", "COMPLETED", 0, 1, NULL, NULL, 300000, 299000,
	    0, ev_refund, N(ev_refund), NULL },
	{ ID_OLD, "create_order", "COMPLETED", 2, 1, "c-8", NULL,
	    3LL * 86400000, 3LL * 86400000 - 1000, 0, ev_completed,
	    N(ev_completed), NULL },
};

/* Newest first. */
static const char *const read_order[]
    = { ID_COMPENSATING, ID_RUNNING, ID_REFUND, ID_RESOLVED, ID_FAILED,
	      ID_COMPENSATED, ID_COMPLETED, ID_OLD };

/* Encodes a map {"k": v} of strings and one integer into out. */
static void
encode_output(proto_buf *out, const char *step)
{
	proto_obj *o = NULL;

	assert_int_equal(proto_obj_alloc(&o), 0);
	assert_int_equal(proto_obj_put_str(o, "done", step), 0);
	assert_int_equal(proto_obj_put_int(o, "order", 42), 0);
	assert_int_equal(proto_obj_encode(o, out), 0);
	proto_obj_free(o);
}

/* The context of a saga: its input and the outputs so far; x (or NULL)
 * adds to the input. */
static void
encode_context(proto_buf *out, const tsaga *s, const tinput *x)
{
	proto_obj *root = NULL, *in = NULL, *steps = NULL;
	proto_buf  ob;

	assert_int_equal(proto_obj_alloc(&root), 0);
	assert_int_equal(proto_obj_alloc(&in), 0);
	assert_int_equal(proto_obj_alloc(&steps), 0);
	if (s->key != NULL) {
		assert_int_equal(
		    proto_obj_put_str(in, "customer_id", s->key), 0);
	}
	if (x != NULL && x->card != NULL) {
		assert_int_equal(
		    proto_obj_put_str(in, "card_number", x->card), 0);
	}
	assert_int_equal(proto_obj_put_str(in, "sku", "A1"), 0);
	assert_int_equal(proto_obj_put_int(in, "qty", 2), 0);
	for (size_t i = 0; i < s->nevs; i++) {
		static const char *const names[]
		    = { "create_order", "reserve_stock", "charge" };
		const char *name;

		if (!s->evs[i].output) {
			continue;
		}
		name = strcmp(s->saga, "refund") == 0 ? "refund"
		                                      : names[s->evs[i].step];
		proto_buf_init(&ob);
		encode_output(&ob, name);
		assert_int_equal(
		    proto_obj_put_raw(steps, name, proto_buf_raw(&ob)), 0);
		proto_buf_fini(&ob);
	}
	if (x != NULL && x->dup) {
		/* {"sku": "A1", "sku": "A2", "card_number": CARD_DUP}: msgpack
		 * allows a key twice (the map builder does not). */
		static const char dup[] = "\x83\xa3"
					  "sku"
					  "\xa2"
					  "A1"
					  "\xa3"
					  "sku"
					  "\xa2"
					  "A2"
					  "\xab"
					  "card_number"
					  "\xb0" CARD_DUP;

		assert_int_equal(proto_obj_put_raw(root, "input",
		                     (proto_raw) { (const uint8_t *) dup,
		                         sizeof(dup) - 1 }),
		    0);
	} else {
		assert_int_equal(proto_obj_put_obj(root, "input", in), 0);
	}
	assert_int_equal(proto_obj_put_obj(root, "steps", steps), 0);
	assert_int_equal(proto_obj_encode(root, out), 0);
	proto_obj_free(steps);
	proto_obj_free(in);
	proto_obj_free(root);
}

static void
exec_params(PGconn *c, const char *sql, int n, const char *const *v,
    const int *lens, const int *fmts)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, v, lens, fmts, 0);

	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
		fail();
	}
	PQclear(r);
}

/* Registers the definitions of yaml (version 1). */
static void
insert_defs(PGconn *c, const char *yaml)
{
	const char *files[] = { yaml };
	coord_defs *d       = NULL;
	coord_errs  errs;

	memset(&errs, 0, sizeof(errs));
	assert_int_equal(coord_defs_load(files, 1, &d, &errs), 0);
	for (size_t i = 0; i < d->nsagas; i++) {
		const char *v[2] = { d->sagas[i]->name, d->sagas[i]->json };

		/* The hash as sagad computes it (saga_store). */
		exec_params(c,
		    "INSERT INTO saga_definition (name, version, content_hash,"
		    " definition) VALUES ($1, 1,"
		    " encode(sha256(convert_to($2, 'UTF8')), 'hex'),"
		    " $2::jsonb)",
		    2, v, NULL, NULL);
	}
	coord_defs_free(d);
	coord_errs_fini(&errs);
}

/* Inserts the row of s and its events; x (or NULL) adds to the input
 * and gives the version of the definition (else 1). */
static void
insert_saga_x(PGconn *c, const tsaga *s, const tinput *x)
{
	char      step[16], att[16], max[16], age[32], upd[32], next[32];
	char      seq[32], ver[16];
	proto_buf ctx;
	int       maxs = -1;

	for (size_t i = 0; i < s->nevs; i++) {
		if (s->evs[i].kind == 0 && s->evs[i].step > maxs) {
			maxs = s->evs[i].step;
		}
	}
	snprintf(step, sizeof(step), "%d", s->step);
	snprintf(att, sizeof(att), "%d", s->attempt);
	snprintf(max, sizeof(max), "%d", maxs);
	snprintf(age, sizeof(age), "%lld", s->age_ms);
	snprintf(upd, sizeof(upd), "%lld", s->updated_ms);
	snprintf(next, sizeof(next), "%lld", s->next_in_ms);
	snprintf(seq, sizeof(seq), "%zu", s->nevs);
	snprintf(ver, sizeof(ver), "%d", x != NULL ? x->version : 1);
	proto_buf_init(&ctx);
	encode_context(&ctx, s, x);
	{
		const char *v[15] = { s->id, s->saga, s->state, step, att, max,
			(const char *) ctx.data, s->key, TRACE, s->last_error,
			age, upd, s->next_in_ms ? next : NULL, seq, ver };
		int         lens[15] = { 0 };
		int         fmts[15] = { 0 };

		lens[6] = (int) ctx.len;
		fmts[6] = 1;
		exec_params(c,
		    "INSERT INTO saga_instance (id, saga_name, saga_version,"
		    " state, current_step, attempt, max_sent_step, context,"
		    " business_key, traceparent, last_error, created_at,"
		    " updated_at, next_attempt_at, event_seq, finished_at)"
		    " VALUES ($1::uuid, $2, $15::int, $3, $4::int, $5::int,"
		    " $6::int, $7::bytea, $8, $9, $10,"
		    " now() - $11::bigint * interval '1 millisecond',"
		    " now() - $12::bigint * interval '1 millisecond',"
		    " now() + $13::bigint * interval '1 millisecond', "
		    "$14::int,"
		    " CASE WHEN $3 IN ('COMPLETED', 'COMPENSATED', 'RESOLVED')"
		    " THEN now() - $12::bigint * interval '1 millisecond' END)",
		    15, v, lens, fmts);
	}
	proto_buf_fini(&ctx);
	for (size_t i = 0; i < s->nevs; i++) {
		const tev  *e = &s->evs[i];
		char        sq[32], at[16], st[16], kd[16], ap[16], du[32];
		proto_buf   ob;
		const char *v[11];
		int         lens[11] = { 0 };
		int         fmts[11] = { 0 };

		proto_buf_init(&ob);
		if (e->output) {
			encode_output(&ob, "x");
		}
		snprintf(sq, sizeof(sq), "%zu", i + 1);
		snprintf(at, sizeof(at), "%d", e->at_ms);
		snprintf(st, sizeof(st), "%d", e->step);
		snprintf(kd, sizeof(kd), "%d", e->kind);
		snprintf(ap, sizeof(ap), "%d", e->attempt);
		snprintf(du, sizeof(du), "%ld", e->dur_us);
		v[0]    = s->id;
		v[1]    = sq;
		v[2]    = at;
		v[3]    = e->step >= 0 ? st : NULL;
		v[4]    = e->kind >= 0 ? kd : NULL;
		v[5]    = e->attempt > 0 ? ap : NULL;
		v[6]    = e->event;
		v[7]    = e->outcome;
		v[8]    = e->output ? (const char *) ob.data : NULL;
		v[9]    = e->error;
		v[10]   = e->dur_us >= 0 ? du : NULL;
		lens[8] = (int) ob.len;
		fmts[8] = 1;
		exec_params(c,
		    "INSERT INTO saga_event (saga_id, seq, at, step, kind,"
		    " attempt, event, outcome, output, error, duration_us)"
		    " SELECT $1::uuid, $2::int,"
		    " i.created_at + $3::bigint * interval '1 millisecond',"
		    " $4::int, $5::int::smallint, $6::int, $7, $8, $9::bytea,"
		    " $10, $11::bigint FROM saga_instance i"
		    " WHERE i.id = $1::uuid",
		    11, v, lens, fmts);
		proto_buf_fini(&ob);
	}
	if (s->start_key != NULL) {
		const char *v[2] = { s->start_key, s->id };

		exec_params(c,
		    "INSERT INTO saga_start_key (key, saga_id, request_hash)"
		    " VALUES ($1, $2::uuid, '\\x00'::bytea)",
		    2, v, NULL, NULL);
	}
}

static void
insert_saga(PGconn *c, const tsaga *s)
{
	insert_saga_x(c, s, NULL);
}

static void
fill(fixture *f, const tsaga *sagas, size_t n)
{
	PGconn *c = pgtest_connect(f->conninfo);

	assert_non_null(c);
	insert_defs(c, f->yaml);
	for (size_t i = 0; i < n; i++) {
		insert_saga(c, &sagas[i]);
	}
	PQfinish(c);
}

static int
read_setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (f == NULL
	    || pgtest_db_create("sagactl", f->conninfo, sizeof(f->conninfo))
	        != 0
	    || migrate(f) != 0) {
		free(f);
		return (-1);
	}
	snprintf(f->dir, sizeof(f->dir), "%s", test_tmpdir());
	snprintf(f->yaml, sizeof(f->yaml), "%s/read.yaml", f->dir);
	put_file(f->yaml, read_yaml);
	*state = f;
	fill(f, read_sagas, N(read_sagas));
	return (0);
}

static int
group_teardown(void **state)
{
	fixture *f = *state;

	if (f == NULL) {
		return (0);
	}
	if (f->sagad != NULL && proc_running(f->sagad)) {
		proc_signal(f->sagad, SIGTERM);
		(void) proc_wait(f->sagad, 10000 * scale(), NULL);
	}
	proc_free(f->sagad);
	proc_free(f->tp);
	proc_free(f->own_sagad);
	proc_free(f->bg[0]);
	proc_free(f->bg[1]);
	if (f->own_conninfo[0] != '\0') {
		pgtest_db_drop(f->own_conninfo);
	}
	pgtest_db_drop(f->conninfo);
	free(f->out);
	free(f->err);
	free(f);
	return (0);
}

/* list prints one aligned line per saga, newest first, without colour
 * when not on a terminal. */
static void
test_sagactl_list_human(void **state)
{
	fixture    *f = *state;
	const char *prev;

	assert_int_equal(ctl(f, "list", NULL), 0);
	assert_true(has(f->out, "ID"));
	assert_true(has(f->out, "STATE"));
	assert_true(has(f->out, "ERROR"));
	assert_int_equal(count_lines(f->out), 1 + N(read_sagas));
	assert_null(strchr(f->out, '\033'));
	prev = f->out;
	for (size_t i = 0; i < N(read_order); i++) {
		const char *at = strstr(f->out, read_order[i]);

		assert_non_null(at);
		assert_true(at > prev);
		prev = at;
	}
	/* The stuck compensation, its step and its error. */
	assert_true(has(f->out, "FAILED"));
	assert_true(has(f->out, "reserve_stock (comp)"));
	assert_true(has(f->out,
	    "compensation of step reserve_stock gave up: retry: warehouse "
	    "offline"));
	assert_true(has(f->out, "c-3"));
	assert_string_equal(f->err, "");
}

/* An output that cannot be written (here /dev/full) makes every read
 * command exit 1, saying so: only the exit status tells a script that a
 * list is cut short. list in human form flushed each page without
 * looking, and its last flush had nothing left to fail on: exit 0. */
static void
test_sagactl_full_output(void **state)
{
	fixture          *f = *state;
	static const char sh[] =
	    "exec \"$0\" --db \"$1\" \"$2\" $3 >/dev/full";
	const char *const cmds[][2] = { { "list", "" }, { "list", "--json" },
		{ "defs", "" }, { "stats", "" } };

	for (size_t i = 0; i < N(cmds); i++) {
		char *argv[] = { "/bin/sh", "-c", (char *) sh, SAGACTL_PATH,
			f->conninfo, (char *) cmds[i][0], (char *) cmds[i][1],
			NULL };
		char *out = NULL, *err = NULL;

		assert_int_equal(proc_run(argv, 60000 * scale(), &out, &err),
		    1);
		assert_non_null(err);
		if (!has(err, "writing the output")) {
			fail_msg("sagactl %s %s: %s", cmds[i][0], cmds[i][1],
			    err);
		}
		free(out);
		free(err);
	}
}

/* list --json: the documented fields, parsed back. */
static void
test_sagactl_list_json(void **state)
{
	fixture         *f = *state;
	proto_buf        raw;
	proto_doc       *doc;
	const proto_val *sagas, *s;
	char             b[256];
	bool             more = true;

	assert_int_equal(ctl(f, "list", "--json", NULL), 0);
	assert_non_null(doc = json_parse(f->out, &raw));
	sagas = proto_val_get(proto_doc_root(doc), "sagas");
	assert_int_equal(proto_val_len(sagas), N(read_sagas));
	assert_int_equal(
	    proto_val_bool(proto_val_get(proto_doc_root(doc), "more"), &more),
	    0);
	assert_false(more);
	for (size_t i = 0; i < N(read_order); i++) {
		assert_string_equal(
		    jstr(proto_val_at(sagas, i), "id", b, sizeof(b)),
		    read_order[i]);
	}
	/* The FAILED one: index 4 in the order above. */
	s = proto_val_at(sagas, 4);
	assert_string_equal(jstr(s, "state", b, sizeof(b)), "FAILED");
	assert_string_equal(jstr(s, "saga", b, sizeof(b)), "create_order");
	assert_int_equal(jint(s, "version"), 1);
	assert_string_equal(jstr(s, "step", b, sizeof(b)), "reserve_stock");
	assert_int_equal(jint(s, "step_index"), 1);
	assert_string_equal(jstr(s, "kind", b, sizeof(b)), "compensation");
	assert_int_equal(jint(s, "attempt"), 2);
	assert_string_equal(jstr(s, "business_key", b, sizeof(b)), "c-3");
	assert_true(has(jstr(s, "last_error", b, sizeof(b)), "gave up"));
	assert_true(has(jstr(s, "created_at", b, sizeof(b)), "Z"));
	assert_true(has(jstr(s, "updated_at", b, sizeof(b)), "T"));
	assert_true(jint(s, "age_ms") >= 2400000);
	/* A finished saga has no current step; the refund no key. */
	s = proto_val_at(sagas, 2);
	assert_string_equal(jstr(s, "state", b, sizeof(b)), "COMPLETED");
	assert_true(jnull(s, "step"));
	assert_true(jnull(s, "kind"));
	assert_true(jnull(s, "business_key"));
	assert_true(jnull(s, "last_error"));
	proto_doc_free(doc);
	proto_buf_fini(&raw);
}

/* Returns how many sagas list --json gives for the filter args. */
static size_t
list_count(
    fixture *f, const char *a1, const char *a2, const char *a3, const char *a4)
{
	proto_buf  raw;
	proto_doc *doc;
	size_t     n;

	assert_int_equal(ctl(f, "list", "--json", a1, a2, a3, a4, NULL), 0);
	assert_non_null(doc = json_parse(f->out, &raw));
	n = proto_val_len(proto_val_get(proto_doc_root(doc), "sagas"));
	proto_doc_free(doc);
	proto_buf_fini(&raw);
	return (n);
}

/* The filters of list, alone and together. */
static void
test_sagactl_list_filters(void **state)
{
	fixture  *f = *state;
	char      since[64];
	time_t    now = time(NULL) - 7200;
	struct tm tm;

	assert_int_equal(list_count(f, "--state", "FAILED", NULL, NULL), 1);
	assert_int_equal(ctl(f, "list", "--state", "FAILED", NULL), 0);
	assert_true(has(f->out, ID_FAILED));
	assert_null(strstr(f->out, ID_RUNNING));
	/* Case-insensitive, several at once. */
	assert_int_equal(
	    list_count(f, "--state", "running,compensating", NULL, NULL), 2);
	assert_int_equal(list_count(f, "--state", "COMPLETED", NULL, NULL), 3);
	/* A state given twice counts once, and fills no room: the filter
	 * kept 6 entries, duplicates included, and dropped COMPLETED. */
	assert_int_equal(list_count(f, "--state",
	                     "FAILED,FAILED,failed,FAILED,Failed,FAILED,"
	                     "FAILED,COMPLETED",
	                     NULL, NULL),
	    4);
	/* Each --state adds to the others: the last one was all. */
	assert_int_equal(
	    list_count(f, "--state", "FAILED", "--state", "COMPLETED"), 4);
	assert_int_equal(list_count(f, "--state", "FAILED,COMPLETED",
	                     "--state", "completed"),
	    4);
	assert_int_equal(list_count(f, "--state",
	                     "RUNNING,COMPENSATING,COMPLETED,COMPENSATED,"
	                     "FAILED,RESOLVED,running",
	                     NULL, NULL),
	    N(read_sagas));
	/* retry's bulk form takes FAILED only: FAILED twice is FAILED (it
	 * was refused, exit 2; here no saga of that name matches: nothing
	 * to do). */
	assert_int_equal(ctl(f, "retry", "--state", "FAILED,failed", "--saga",
	                     "nosuch", "--yes", NULL),
	    0);
	assert_int_equal(count_lines(f->err), 1);
	assert_true(has(f->err, "no saga matches"));
	assert_int_equal(list_count(f, "--saga", "refund", NULL, NULL), 1);
	assert_int_equal(
	    list_count(f, "--saga", "create_order", "--state", "COMPLETED"),
	    2);
	assert_int_equal(list_count(f, "--key", "c-2", NULL, NULL), 1);
	assert_int_equal(list_count(f, "--key", "nobody", NULL, NULL), 0);
	/* --since DUR and --since TIME leave out the 3-day-old saga. */
	assert_int_equal(list_count(f, "--since", "1d", NULL, NULL), 7);
	assert_int_equal(list_count(f, "--since", "1m", NULL, NULL), 2);
	gmtime_r(&now, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	assert_int_equal(list_count(f, "--since", since, NULL, NULL), 7);
	/* --limit: at most a billion (rows are counted in an int, and list
	 * asks for one more); the largest long was an overflow. */
	assert_int_equal(
	    ctl(f, "list", "--limit", "9223372036854775807", NULL), 2);
	assert_one_line_error(f);
	assert_true(has(f->err, "--limit 9223372036854775807: at most "
	                        "1000000000, 0 for no limit"));
	assert_int_equal(ctl(f, "list", "--limit", "1000000001", NULL), 2);
	assert_int_equal(list_count(f, "--limit", "1000000000", NULL, NULL),
	    N(read_sagas));
	/* --limit: the newest, and a note that there are more. */
	assert_int_equal(list_count(f, "--limit", "2", NULL, NULL), 2);
	assert_int_equal(ctl(f, "list", "--limit", "2", NULL), 0);
	assert_int_equal(count_lines(f->out), 3);
	assert_true(has(f->out, ID_COMPENSATING));
	assert_true(has(f->err, "--limit"));
	assert_int_equal(ctl(f, "list", "--limit", "2", "--json", NULL), 0);
	assert_true(has(f->out, "\"more\": true"));
	/* Nothing matches: exit 0, a note on stderr, nothing on stdout. */
	assert_int_equal(ctl(f, "list", "--saga", "nosuch", NULL), 0);
	assert_string_equal(f->out, "");
	assert_true(has(f->err, "no saga matches"));
}

/* show of a compensated saga: the header says why, the steps how each
 * ended, the timeline has one row per event beside the chart. */
static void
test_sagactl_show_compensated(void **state)
{
	fixture *f     = *state;
	size_t   rows  = 0;
	bool     in_tl = false;
	char    *line, *save = NULL;

	/* Wide enough for the 100 ms backoff wait to take cells. */
	setenv("COLUMNS", "200", 1);
	assert_int_equal(ctl(f, "show", ID_COMPENSATED, NULL), 0);
	unsetenv("COLUMNS");
	assert_true(has(f->out, "Saga         " ID_COMPENSATED));
	assert_true(has(f->out, "create_order v1 (3 steps)"));
	assert_true(has(f->out, "State        COMPENSATED"));
	assert_true(
	    has(f->out, "Because      step charge failed: card declined"));
	assert_true(has(f->out, "Business key c-2"));
	assert_true(has(f->out, "4bf92f3577b34da6a3ce929d0e0e4736"));
	assert_true(has(f->out, "Started"));
	assert_true(has(f->out, "Finished"));
	assert_true(has(f->out, "\"customer_id\": \"c-2\""));
	/* Steps. */
	assert_true(has(f->out, "ok after 2 attempts"));
	assert_true(has(f->out, "failed: card declined"));
	assert_true(
	    has(f->out, "{\"done\": \"create_order\", \"order\": 42}"));
	/* Timeline: header, one row per event, chart and legend. */
	assert_true(has(f->out, "TIME"));
	assert_true(has(f->out, "OFFSET"));
	assert_true(has(f->out, "ATT"));
	assert_true(has(f->out, "OUTCOME"));
	assert_true(has(f->out, "DURATION"));
	assert_true(has(f->out, "timeout: no reply from shop within 2000 ms"));
	assert_true(has(f->out, "compensating"));
	assert_true(has(f->out, "Chart: = action  ~ compensation"));
	assert_true(has(f->out, "backoff wait"));
	for (line = strtok_r(f->out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "  TIME", 6) == 0) {
			in_tl = true;
			continue;
		}
		if (in_tl && strncmp(line, "  ", 2) == 0 && line[2] >= '0'
		    && line[2] <= '9') {
			rows++;
		} else if (in_tl) {
			in_tl = false;
		}
	}
	assert_int_equal(rows, N(ev_compensated));
}

/* show of a FAILED saga says where it is stuck and how to repair it;
 * a RUNNING one has an attempt in flight in the chart. */
static void
test_sagactl_show_failed_and_running(void **state)
{
	fixture *f = *state;

	assert_int_equal(ctl(f, "show", ID_FAILED, NULL), 0);
	assert_true(has(f->out,
	    "FAILED: parked at compensation of step reserve_stock (attempt "
	    "2)"));
	assert_true(has(f->out,
	    "Because      compensation of step "
	    "reserve_stock gave up"));
	assert_true(has(f->out, "sagactl retry " ID_FAILED));
	assert_true(has(f->out,
	    "sagactl skip " ID_FAILED " --step reserve_stock --note TEXT"));
	assert_true(has(f->out, "sagactl resolve " ID_FAILED " --note TEXT"));
	assert_true(has(f->out, "gave up after 2: retry: warehouse offline"));
	assert_true(has(f->out, "FAILED, parked"));

	assert_int_equal(ctl(f, "show", ID_RUNNING, NULL), 0);
	assert_true(
	    has(f->out, "RUNNING at step reserve_stock: attempt 2 in flight"));
	assert_true(has(f->out, "attempt 2 in flight"));
	assert_true(has(f->out, ">"));
	assert_true(has(f->out, "> in flight"));

	assert_int_equal(ctl(f, "show", ID_COMPENSATING, NULL), 0);
	assert_true(has(f->out,
	    "COMPENSATING at compensation of step "
	    "create_order: attempt 1 failed, next attempt"));
	assert_true(has(f->out,
	    "Because      step reserve_stock failed: out "
	    "of stock"));

	assert_int_equal(ctl(f, "show", ID_RESOLVED, NULL), 0);
	assert_true(has(f->out,
	    "RESOLVED by an operator: released by hand in "
	    "WMS"));
	assert_true(has(f->out,
	    "Was          compensation of step "
	    "reserve_stock failed: cannot release"));
}

/* Runs one SQL command on the test's database. */
static void
sql_exec(const fixture *f, const char *sql)
{
	PGconn   *c = pgtest_connect(f->conninfo);
	PGresult *r;

	assert_non_null(c);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
		fail();
	}
	PQclear(r);
	PQfinish(c);
}

/* The ACTION and COMPENSATION cells of show's Steps table follow the
 * rule of every cut cell (docs/cli.md): an error there is whole when
 * piped and with --wide, and cut (to 40 columns) only on a terminal. They
 * were cut to 40 columns always. */
static void
test_sagactl_show_step_errors_whole(void **state)
{
	fixture    *f = *state;
	const char *why = "insufficient funds: bob has 500 cents, 100000 "
	                  "needed";
	const char *comp = "retry: warehouse offline since 04:00, ticket "
	                   "WMS-1234 open";
	char        sql[512], want[256], cmd[2048];
	char       *argv[] = { "/usr/bin/script", "-qec", cmd, "/dev/null",
		      NULL };
	char       *out = NULL;

	snprintf(sql, sizeof(sql),
	    "UPDATE saga_event SET error = '%s' WHERE saga_id = '%s' AND "
	    "event = 'step_failed';"
	    "UPDATE saga_event SET error = '%s' WHERE saga_id = '%s' AND "
	    "event = 'step_gave_up'",
	    why, ID_COMPENSATED, comp, ID_FAILED);
	sql_exec(f, sql);

	for (int wide = 0; wide < 2; wide++) {
		assert_int_equal(ctl(f, "show", ID_COMPENSATED,
		                     wide ? "--wide" : NULL, NULL),
		    0);
		snprintf(want, sizeof(want), "  failed: %s  ", why);
		assert_true(has(f->out, want));
		assert_int_equal(ctl(f, "show", ID_FAILED,
		                     wide ? "--wide" : NULL, NULL),
		    0);
		snprintf(want, sizeof(want), "  gave up after 2: %s  ", comp);
		assert_true(has(f->out, want));
	}

	/* On a terminal (script(1) gives sagactl one), cut to 40 columns
	 * with "...", unless --wide. */
	if (access(argv[0], X_OK) == 0) {
		for (int wide = 0; wide < 2; wide++) {
			snprintf(cmd, sizeof(cmd),
			    "COLUMNS=300 %s --db '%s' show %s %s",
			    SAGACTL_PATH, f->conninfo, ID_COMPENSATED,
			    wide ? "--wide" : "");
			assert_int_equal(
			    proc_run(argv, 60000 * scale(), &out, NULL), 0);
			if (wide) {
				snprintf(want, sizeof(want), "  failed: %s  ",
				    why);
			} else {
				snprintf(want, sizeof(want),
				    "  failed: %.37s...  ", why);
			}
			assert_true(has(out, want));
			free(out);
		}
	}

	snprintf(sql, sizeof(sql),
	    "UPDATE saga_event SET error = 'card declined' WHERE saga_id = "
	    "'%s' AND event = 'step_failed';"
	    "UPDATE saga_event SET error = 'retry: warehouse offline' WHERE "
	    "saga_id = '%s' AND event = 'step_gave_up'",
	    ID_COMPENSATED, ID_FAILED);
	sql_exec(f, sql);
}

/* The time finished_at holds for saga id, in ms as sagactl reads it and
 * written as sagactl prints times, or "null". */
static void
finished_at(const fixture *f, const char *id, char *buf, size_t len)
{
	PGconn   *c = pgtest_connect(f->conninfo);
	PGresult *r;
	char      sql[256];
	long long ms;
	time_t    t;
	struct tm tm;

	assert_non_null(c);
	snprintf(sql, sizeof(sql),
	    "SELECT (extract(epoch FROM finished_at) * 1000)::bigint"
	    " FROM saga_instance WHERE id = '%s'",
	    id);
	r = PQexec(c, sql);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(r), 1);
	if (PQgetisnull(r, 0, 0)) {
		snprintf(buf, len, "null");
	} else {
		ms = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		t  = (time_t) (ms / 1000);
		assert_non_null(gmtime_r(&t, &tm));
		assert_true(strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm) > 0);
		snprintf(buf + strlen(buf), len - strlen(buf), ".%03dZ",
		    (int) (ms % 1000));
	}
	PQclear(r);
	PQfinish(c);
}

/* A FAILED saga is parked, not finished: show has no Finished line and
 * --json no finished_at, as the log has none. The final states (COMPLETED,
 * COMPENSATED, RESOLVED) show the log's finished_at. */
static void
test_sagactl_show_finished(void **state)
{
	static const char *const final[]
	    = { ID_COMPLETED, ID_COMPENSATED, ID_RESOLVED };
	fixture         *f = *state;
	proto_buf        raw;
	proto_doc       *doc;
	char             b[256], at[64], line[128];

	finished_at(f, ID_FAILED, at, sizeof(at));
	assert_string_equal(at, "null");
	assert_int_equal(ctl(f, "show", ID_FAILED, NULL), 0);
	assert_null(strstr(f->out, "Finished"));
	assert_true(has(f->out, "\nUpdated      "));
	assert_true(has(f->out, "(parked for "));
	assert_int_equal(ctl(f, "show", "--json", ID_FAILED, NULL), 0);
	assert_non_null(doc = json_parse(f->out, &raw));
	assert_true(jnull(proto_doc_root(doc), "finished_at"));
	assert_true(has(jstr(proto_doc_root(doc), "updated_at", b, sizeof(b)),
	    "Z"));
	proto_doc_free(doc);
	proto_buf_fini(&raw);

	for (size_t i = 0; i < N(final); i++) {
		finished_at(f, final[i], at, sizeof(at));
		assert_int_not_equal(strcmp(at, "null"), 0);
		assert_int_equal(ctl(f, "show", final[i], NULL), 0);
		snprintf(line, sizeof(line), "\nFinished     %s  (took ", at);
		assert_true(has(f->out, line));
		assert_null(strstr(f->out, "\nUpdated"));
		assert_int_equal(ctl(f, "show", "--json", final[i], NULL), 0);
		assert_non_null(doc = json_parse(f->out, &raw));
		assert_string_equal(
		    jstr(proto_doc_root(doc), "finished_at", b, sizeof(b)), at);
		proto_doc_free(doc);
		proto_buf_fini(&raw);
	}

	/* The time is the log's finished_at, not the last update; without
	 * one (a saga ended by a sagad older than migration 003) it is the
	 * last update, as purge takes it. The row is put back after. */
	sql_exec(f,
	    "UPDATE saga_instance SET finished_at = updated_at"
	    " - interval '250 milliseconds' WHERE id = '" ID_REFUND "'");
	finished_at(f, ID_REFUND, at, sizeof(at));
	assert_int_equal(ctl(f, "show", ID_REFUND, NULL), 0);
	snprintf(line, sizeof(line), "\nFinished     %s  (took 750ms)\n", at);
	assert_true(has(f->out, line));
	sql_exec(f,
	    "UPDATE saga_instance SET finished_at = NULL"
	    " WHERE id = '" ID_REFUND "'");
	assert_int_equal(ctl(f, "show", ID_REFUND, NULL), 0);
	sql_exec(f,
	    "UPDATE saga_instance SET finished_at = updated_at"
	    " WHERE id = '" ID_REFUND "'");
	finished_at(f, ID_REFUND, at, sizeof(at));
	snprintf(line, sizeof(line), "\nFinished     %s  (took 1.00s)\n", at);
	assert_true(has(f->out, line));
}

/* show --json: header, steps and events with the documented fields. */
static void
test_sagactl_show_json(void **state)
{
	fixture         *f = *state;
	proto_buf        raw;
	proto_doc       *doc;
	const proto_val *r, *evs, *e, *steps, *s;
	char             b[256];

	assert_int_equal(ctl(f, "show", "--json", ID_COMPENSATED, NULL), 0);
	assert_non_null(doc = json_parse(f->out, &raw));
	r = proto_doc_root(doc);
	assert_string_equal(jstr(r, "id", b, sizeof(b)), ID_COMPENSATED);
	assert_string_equal(jstr(r, "saga", b, sizeof(b)), "create_order");
	assert_int_equal(jint(r, "version"), 1);
	assert_string_equal(jstr(r, "state", b, sizeof(b)), "COMPENSATED");
	assert_true(jnull(r, "step"));
	assert_string_equal(jstr(r, "business_key", b, sizeof(b)), "c-2");
	assert_string_equal(jstr(r, "traceparent", b, sizeof(b)), TRACE);
	assert_string_equal(jstr(r, "trace_id", b, sizeof(b)),
	    "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(jstr(r, "compensated_because", b, sizeof(b)),
	    "step charge failed: card declined");
	assert_true(has(jstr(r, "created_at", b, sizeof(b)), "Z"));
	assert_true(has(jstr(r, "finished_at", b, sizeof(b)), "Z"));
	assert_true(jnull(r, "deadline_at"));
	assert_int_equal(jint(r, "duration_ms"), 2181);
	assert_string_equal(jstr(r, "input.customer_id", b, sizeof(b)), "c-2");
	assert_int_equal(jint(r, "input.qty"), 2);

	steps = proto_val_get(r, "steps");
	assert_int_equal(proto_val_len(steps), 3);
	s = proto_val_at(steps, 1);
	assert_string_equal(jstr(s, "name", b, sizeof(b)), "reserve_stock");
	assert_string_equal(jstr(s, "kind", b, sizeof(b)), "compensatable");
	assert_string_equal(jstr(s, "participant", b, sizeof(b)), "shop");
	assert_string_equal(jstr(s, "action_status", b, sizeof(b)), "ok");
	assert_int_equal(jint(s, "action_attempts"), 2);
	assert_string_equal(
	    jstr(s, "compensation_status", b, sizeof(b)), "ok");
	assert_int_equal(jint(s, "output.order"), 42);
	s = proto_val_at(steps, 2);
	assert_string_equal(jstr(s, "action_status", b, sizeof(b)), "failed");
	assert_true(jnull(s, "output"));

	evs = proto_val_get(r, "events");
	assert_int_equal(proto_val_len(evs), N(ev_compensated));
	e = proto_val_at(evs, 4);
	assert_int_equal(jint(e, "seq"), 5);
	assert_string_equal(jstr(e, "event", b, sizeof(b)), "step_retry");
	assert_string_equal(jstr(e, "step", b, sizeof(b)), "reserve_stock");
	assert_int_equal(jint(e, "step_index"), 1);
	assert_string_equal(jstr(e, "kind", b, sizeof(b)), "action");
	assert_int_equal(jint(e, "attempt"), 1);
	assert_string_equal(jstr(e, "outcome", b, sizeof(b)), "timeout");
	assert_int_equal(jint(e, "duration_us"), 2000000);
	assert_int_equal(jint(e, "offset_ms"), 2011);
	assert_true(has(jstr(e, "error", b, sizeof(b)), "no reply"));
	assert_true(jnull(e, "output"));
	e = proto_val_at(evs, 2);
	assert_string_equal(jstr(e, "event", b, sizeof(b)), "step_ok");
	assert_int_equal(jint(e, "output.order"), 42);
	e = proto_val_at(evs, 0);
	assert_string_equal(jstr(e, "event", b, sizeof(b)), "saga_started");
	assert_true(jnull(e, "step"));
	assert_true(jnull(e, "kind"));
	assert_true(jnull(e, "attempt"));
	e = proto_val_at(evs, 10);
	assert_string_equal(jstr(e, "kind", b, sizeof(b)), "compensation");
	proto_doc_free(doc);
	proto_buf_fini(&raw);

	/* A FAILED saga: its current step and kind. */
	assert_int_equal(ctl(f, "show", ID_FAILED, "--json", NULL), 0);
	assert_non_null(doc = json_parse(f->out, &raw));
	r = proto_doc_root(doc);
	assert_string_equal(jstr(r, "step", b, sizeof(b)), "reserve_stock");
	assert_string_equal(jstr(r, "kind", b, sizeof(b)), "compensation");
	assert_string_equal(jstr(proto_val_at(proto_val_get(r, "steps"), 1),
	                        "compensation_status", b, sizeof(b)),
	    "gave_up");
	proto_doc_free(doc);
	proto_buf_fini(&raw);
}

/* An id that is not in the log: exit 1, one line that says what to do;
 * not an id at all: a usage error. */
static void
test_sagactl_show_unknown_id(void **state)
{
	fixture *f = *state;

	assert_int_equal(ctl(f, "show", ID_UNKNOWN, NULL), 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "no saga " ID_UNKNOWN));
	assert_true(has(f->err, "sagactl list"));
	assert_string_equal(f->out, "");
	assert_int_equal(ctl(f, "show", "--json", ID_UNKNOWN, NULL), 1);
	assert_string_equal(f->out, "");
	assert_int_equal(ctl(f, "show", "not-an-id", NULL), 2);
	assert_one_line_error(f);
	assert_true(has(f->err, "is not a saga id"));
}

/* Bad flags and arguments: exit 2, one line naming --help. */
static void
test_sagactl_bad_flags(void **state)
{
	fixture                 *f          = *state;
	static const char *const cases[][7] = {
		{ "list", "--bogus", NULL },
		{ "list", "--limit", "x", NULL },
		{ "list", "--limit", NULL },
		{ "list", "--state", "SLEEPING", NULL },
		{ "list", "--since", "yesterday", NULL },
		{ "status", "00000000-0000-0000-0000-000000000000", NULL },
		{ "wait", "00000000-0000-0000-0000-000000000000", NULL },
		{ "list", "--since", "2026-02-30", NULL },
		{ "list", "--since", "2026-04-31T10:00Z", NULL },
		{ "list", "--since", "2026-11-24T15:00+99:99", NULL },
		{ "list", "--since", "2026-11-24T15:00+02:75", NULL },
		{ "list", "--state", "", NULL },
		{ "cancel", "--state", "", "--yes", NULL },
		{ "cancel", "--limit", "0", "--yes", NULL },
		{ "retry", "--limit", "5", "--yes", NULL },
		{ "list", "extra", NULL },
		{ "frobnicate", NULL },
		{ "show", NULL },
		{ "show", ID_FAILED, ID_RUNNING, NULL },
		{ "start", "create_order", NULL },
		{ "start", "create_order", "--input", "{bad", NULL },
		{ "start", "create_order", "--input", "[1, 2]", NULL },
		{ "start", "create_order", "--input", "{}", "--timeout", "5s",
		    NULL },
		{ "retry", NULL },
		{ "retry", ID_FAILED, "--state", "FAILED", NULL },
		{ "retry", "--state", "RUNNING", NULL },
		{ "cancel", "--state", "FAILED", NULL },
		{ "resolve", ID_FAILED, NULL },
		{ "skip", ID_FAILED, "--note", "x", NULL },
		{ "purge", NULL },
		{ "purge", "--older-than", "soon", NULL },
		{ "validate", NULL },
		{ "stats", "--state", "FAILED", NULL },
	};

	for (size_t i = 0; i < N(cases); i++) {
		int rv = ctl(f, cases[i][0], cases[i][1], cases[i][2],
		    cases[i][3], cases[i][4], cases[i][5], cases[i][6]);

		if (rv != 2) {
			fprintf(stderr, "case %zu (%s %s): exit %d\n%s", i,
			    cases[i][0], cases[i][1] ? cases[i][1] : "", rv,
			    f->err);
		}
		assert_int_equal(rv, 2);
		assert_one_line_error(f);
		assert_true(has(f->err, "--help"));
	}
	assert_int_equal(ctl(f, "--bogus", "list", NULL), 2);
	assert_one_line_error(f);
	/* A leap day is a day. */
	assert_int_equal(ctl(f, "list", "--since", "2024-02-29", NULL), 0);
}

/* --help on every command; sagactl without a command names every
 * command that --help lists (it left out instances, status, wait and
 * ping). */
static void
test_sagactl_help(void **state)
{
	fixture                 *f = *state;
	static const char *const cmds[]
	    = { "list", "show", "start", "retry", "cancel", "resolve", "skip",
		      "purge", "defs", "validate", "stats", "instances",
		      "status", "wait", "ping" };
	char                    *help, *l;
	char                     want[512];
	size_t                   n = 0;

	assert_int_equal(ctl(f, "--help", NULL), 0);
	assert_true(has(f->out, "Usage: sagactl"));
	for (size_t i = 0; i < N(cmds); i++) {
		assert_int_equal(ctl(f, cmds[i], "--help", NULL), 0);
		assert_true(has(f->out, "Usage: sagactl"));
		assert_true(has(f->out, cmds[i]));
		assert_int_equal(ctl(f, "help", cmds[i], NULL), 0);
		assert_true(has(f->out, "Usage: sagactl"));
	}

	/* The commands of --help: the lines "  NAME  summary" after
	 * "Commands:", up to the blank line. */
	assert_int_equal(ctl(f, "--help", NULL), 0);
	assert_non_null(help = strdup(f->out));
	assert_non_null(l = strstr(help, "Commands:\n"));
	assert_int_equal(ctl(f, NULL), 2);
	assert_one_line_error(f);
	snprintf(want, sizeof(want), "sagactl: give a command (");
	for (l = strchr(l, '\n') + 1; strncmp(l, "  ", 2) == 0;
	     l = strchr(l, '\n') + 1) {
		char name[32];

		assert_int_equal(sscanf(l, "%31s", name), 1);
		snprintf(want + strlen(want), sizeof(want) - strlen(want),
		    "%s%s", n++ == 0 ? "" : ", ", name);
	}
	snprintf(want + strlen(want), sizeof(want) - strlen(want), ");");
	if (!has(f->err, want)) {
		fail_msg("expected \"%s\", got: %s", want, f->err);
	}
	assert_int_equal(n, N(cmds));
	free(help);
}

/* The database is down (nothing listens): exit 1, one clear line. */
static void
test_sagactl_db_down(void **state)
{
	fixture                 *f = *state;
	char                     ci[128];
	static const char *const cmds[][3] = {
		{ "list", NULL },
		{ "show", ID_FAILED, NULL },
		{ "stats", NULL },
		{ "defs", NULL },
		{ "purge", "--older-than", "1d" },
	};

	snprintf(ci, sizeof(ci),
	    "host=127.0.0.1 port=%d dbname=x user=x connect_timeout=5",
	    test_free_port());
	for (size_t i = 0; i < N(cmds); i++) {
		assert_int_equal(ctl(f, cmds[i][0], "--db", ci, cmds[i][1],
		                     cmds[i][2], NULL),
		    1);
		assert_one_line_error(f);
		assert_true(has(f->err, "cannot connect to PostgreSQL"));
		assert_true(has(f->err, "check that the server is up"));
		assert_string_equal(f->out, "");
	}
}

/* A database without the saga log, and one whose schema is older than
 * sagactl's: every command that reads the log says so and what to run.
 * On the old schema, show and stats said "query failed: column ... does
 * not exist", and instances "the database has no saga log". */
static void
test_sagactl_old_schema(void **state)
{
	fixture                 *f = *state;
	char                     ci[2][512], err[256];
	PGconn                  *c;
	int                      applied = 0;
	static const char *const cmds[][3] = {
		{ "list", NULL },
		{ "show", ID_FAILED, NULL },
		{ "stats", NULL },
		{ "defs", NULL },
		{ "instances", NULL },
		{ "purge", "--older-than", "1d" },
	};

	(void) f;
	assert_int_equal(pgtest_db_create("sagactl_empty", ci[0], 512), 0);
	assert_int_equal(pgtest_db_create("sagactl_old", ci[1], 512), 0);
	/* The first two migrations only: the schema of an older sagad. */
	assert_non_null(c = pgtest_connect(ci[1]));
	assert_int_equal(sql_migrate_apply(c, "coordinator",
	                     coordinator_migrations, 2, &applied, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(applied, 2);
	PQfinish(c);
	for (size_t i = 0; i < N(cmds); i++) {
		for (int k = 0; k < 2; k++) {
			assert_int_equal(ctl(f, cmds[i][0], "--db", ci[k],
			                     cmds[i][1], cmds[i][2], NULL),
			    1);
			assert_one_line_error(f);
			assert_string_equal(f->out, "");
			assert_true(has(f->err, "sagad --migrate"));
			assert_true(has(f->err,
			    k == 0 ? "the database has no saga log"
			           : "the saga log's schema is at version 2"));
		}
	}
}

/* defs: every version, one saga's steps, an unknown one, --json. */
static void
test_sagactl_defs(void **state)
{
	fixture         *f = *state;
	proto_buf        raw;
	proto_doc       *doc;
	const proto_val *defs;
	char             b[128];

	assert_int_equal(ctl(f, "defs", NULL), 0);
	assert_true(has(f->out, "create_order"));
	assert_true(has(f->out, "refund"));
	assert_true(has(f->out, "v1"));
	assert_int_equal(ctl(f, "defs", "create_order", NULL), 0);
	assert_true(has(f->out, "create_order v1"));
	assert_true(has(f->out, "business key customer_id"));
	assert_true(has(f->out, "reserve_stock"));
	assert_true(has(f->out, "stock.release"));
	assert_true(has(f->out, "5 attempts"));
	assert_int_equal(ctl(f, "defs", "nosuch", NULL), 1);
	assert_one_line_error(f);
	assert_int_equal(ctl(f, "defs", "--json", NULL), 0);
	assert_non_null(doc = json_parse(f->out, &raw));
	defs = proto_val_get(proto_doc_root(doc), "definitions");
	assert_int_equal(proto_val_len(defs), 2);
	assert_string_equal(
	    jstr(proto_val_at(defs, 0), "name", b, sizeof(b)), "create_order");
	assert_int_equal(jint(proto_val_at(defs, 0), "version"), 1);
	assert_int_equal(jint(proto_val_at(defs, 0), "steps"), 3);
	assert_string_equal(jstr(proto_val_at(defs, 0),
	                        "definition.business_key", b, sizeof(b)),
	    "customer_id");
	assert_int_equal(
	    strlen(jstr(proto_val_at(defs, 0), "hash", b, sizeof(b))), 64);
	proto_doc_free(doc);
	proto_buf_fini(&raw);
}

/* A stored definition that this sagactl cannot read (steps not a list,
 * as a newer sagad might write them) leaves the rest of defs: it failed
 * the whole query ("cannot get array length of a non-array"). And one
 * whose business key holds control characters is printed escaped: they
 * went to the terminal as they were. The rows are removed before the
 * checks, which the other tests' counts need. */
static void
test_sagactl_defs_odd(void **state)
{
	fixture *f = *state;
	PGconn  *c = pgtest_connect(f->conninfo);
	int      rv[4];
	char    *out[4];

	assert_non_null(c);
	assert_int_equal(pgtest_exec(c,
	                     "INSERT INTO saga_definition (name, version, "
	                     "content_hash, definition) VALUES ('weird', 1, "
	                     "'h1', '{\"name\": \"weird\", \"steps\": {}}')"),
	    0);
	/* create_order v1's JSON with an ESC and a BEL in its key. */
	assert_int_equal(pgtest_exec(c,
	                     "INSERT INTO saga_definition (name, version, "
	                     "content_hash, definition) SELECT 'escapes', 1, "
	                     "'h2', jsonb_set(jsonb_set(definition, "
	                     "'{name}', '\"escapes\"'), '{business_key}', "
	                     "to_jsonb(E'cust\\x1b[31mX\\x07'::text)) FROM "
	                     "saga_definition WHERE name = 'create_order' "
	                     "AND version = 1"),
	    0);
	rv[0]  = ctl(f, "defs", NULL);
	out[0] = strdup(f->out);
	rv[1]  = ctl(f, "defs", "--json", NULL);
	out[1] = strdup(f->out);
	rv[2]  = ctl(f, "defs", "weird", NULL);
	out[2] = strdup(f->out);
	rv[3]  = ctl(f, "defs", "escapes", NULL);
	out[3] = strdup(f->out);
	assert_int_equal(pgtest_exec(c,
	                     "DELETE FROM saga_definition WHERE name IN "
	                     "('weird', 'escapes')"),
	    0);
	PQfinish(c);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(rv[i], 0);
		assert_non_null(out[i]);
	}
	assert_true(has(out[0], "create_order"));
	assert_true(has(out[0], "weird"));
	assert_true(has(out[1], "\"steps\": null"));
	assert_true(has(out[2], "(cannot read the stored definition: "));
	assert_null(strchr(out[3], '\033'));
	assert_null(strchr(out[3], '\a'));
	assert_true(has(out[3], "business key cust\\x1b[31mX\\x07"));
	for (int i = 0; i < 4; i++) {
		free(out[i]);
	}
}

/* A step name of 128 characters, the most a configuration takes, is
 * shown whole in show's steps and timeline: the timeline cut it at 95. */
static void
test_sagactl_show_long_step_name(void **state)
{
	fixture *f = *state;
	PGconn  *c = pgtest_connect(f->conninfo);
	char     name[129], sql[1024], row[160];
	int      rv;
	char    *out, *line, *save = NULL;
	size_t   rows = 0;

	assert_non_null(c);
	memset(name, 'n', 128);
	name[0]   = 's';
	name[127] = 'e';
	name[128] = '\0';
	snprintf(sql, sizeof(sql),
	    "INSERT INTO saga_definition (name, version, content_hash, "
	    "definition) SELECT 'longnames', 1, 'h3', jsonb_set(jsonb_set("
	    "definition, '{name}', '\"longnames\"'), '{steps,0,name}', "
	    "'\"%s\"') FROM saga_definition WHERE name = 'create_order' "
	    "AND version = 1",
	    name);
	assert_int_equal(pgtest_exec(c, sql), 0);
	/* ID_COMPENSATED's row and events, as a saga of longnames. */
	assert_int_equal(pgtest_exec(c,
	                     "INSERT INTO saga_instance (id, saga_name, "
	                     "saga_version, state, current_step, attempt, "
	                     "max_sent_step, context, business_key, "
	                     "created_at, updated_at, event_seq, finished_at) "
	                     "SELECT '" ID_LONG "', 'longnames', 1, state, "
	                     "current_step, attempt, max_sent_step, context, "
	                     "business_key, created_at, updated_at, "
	                     "event_seq, finished_at FROM saga_instance "
	                     "WHERE id = '"
	                     ID_COMPENSATED "'; INSERT INTO saga_event ("
	                     "saga_id, seq, at, step, kind, attempt, event, "
	                     "outcome, output, error, duration_us) SELECT '"
	                     ID_LONG "', seq, at, step, kind, attempt, event, "
	                     "outcome, output, error, duration_us FROM "
	                     "saga_event WHERE saga_id = '" ID_COMPENSATED
	                     "'"),
	    0);
	setenv("COLUMNS", "400", 1);
	rv = ctl(f, "show", ID_LONG, NULL);
	unsetenv("COLUMNS");
	out = strdup(f->out);
	assert_int_equal(pgtest_exec(c,
	                     "DELETE FROM saga_event WHERE saga_id = '"
	                     ID_LONG "'; DELETE FROM saga_instance WHERE id "
	                     "= '" ID_LONG "'; DELETE FROM saga_definition "
	                     "WHERE name = 'longnames'"),
	    0);
	PQfinish(c);
	assert_int_equal(rv, 0);
	assert_non_null(out);
	/* The timeline's rows of step 0 start with the time and offset,
	 * then the name. */
	snprintf(row, sizeof(row), "  %s  ", name);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, row) != NULL
		    && strstr(line, "action") != NULL) {
			rows++;
		}
	}
	assert_true(rows >= 2);
	free(out);
}

/* stats: counts by saga and state, latencies per step. */
static void
test_sagactl_stats(void **state)
{
	fixture         *f = *state;
	proto_buf        raw;
	proto_doc       *doc;
	const proto_val *r, *s, *st;
	char             b[128];
	bool             found = false;

	assert_int_equal(ctl(f, "stats", NULL), 0);
	assert_true(has(f->out, "COMPENSATED"));
	assert_true(has(f->out, "P50"));
	assert_true(has(f->out, "P99"));
	assert_true(has(f->out, "reserve_stock"));
	assert_int_equal(ctl(f, "stats", "--json", NULL), 0);
	assert_non_null(doc = json_parse(f->out, &raw));
	r = proto_doc_root(doc);
	assert_true(jnull(r, "since"));
	s = proto_val_at(proto_val_get(r, "sagas"), 0);
	assert_string_equal(jstr(s, "saga", b, sizeof(b)), "create_order");
	assert_int_equal(jint(s, "states.RUNNING"), 1);
	assert_int_equal(jint(s, "states.COMPENSATING"), 1);
	assert_int_equal(jint(s, "states.COMPLETED"), 2);
	assert_int_equal(jint(s, "states.COMPENSATED"), 1);
	assert_int_equal(jint(s, "states.FAILED"), 1);
	assert_int_equal(jint(s, "states.RESOLVED"), 1);
	assert_int_equal(jint(s, "total"), 7);
	st = proto_val_get(r, "steps");
	for (size_t i = 0; i < proto_val_len(st); i++) {
		const proto_val *x = proto_val_at(st, i);

		if (strcmp(jstr(x, "step", b, sizeof(b)), "charge") == 0
		    && strcmp(jstr(x, "kind", b, sizeof(b)), "action") == 0) {
			/* ok: c-1, c-8 (49 ms); failed: c-2, c-3 (19, 9). */
			assert_int_equal(jint(x, "ok"), 2);
			assert_int_equal(jint(x, "failed"), 2);
			assert_int_equal(jint(x, "max_us"), 49000);
			assert_true(jint(x, "p50_us") > 9000);
			found = true;
		}
	}
	assert_true(found);
	proto_doc_free(doc);
	proto_buf_fini(&raw);
	/* --since 2h: the 3-day-old saga is not counted. */
	assert_int_equal(ctl(f, "stats", "--since", "2h", "--json", NULL), 0);
	assert_true(has(f->out, "\"total\": 6"));
}

/* validate: the checks of sagad --check, with positions. */
static void
test_sagactl_validate(void **state)
{
	fixture *f = *state;
	char     bad[600];

	assert_int_equal(ctl(f, "validate", f->yaml, NULL), 0);
	assert_true(has(f->out,
	    "configuration OK: 1 participant(s), 2 "
	    "saga(s)"));
	snprintf(bad, sizeof(bad), "%s/bad.yaml", f->dir);
	put_file(bad,
	    "sagas:\n"
	    "  - name: x\n"
	    "    steps:\n"
	    "      - {name: a, participant: nobody, action: y}\n");
	assert_int_equal(ctl(f, "validate", bad, NULL), 1);
	assert_true(has(f->err, "bad.yaml:4:"));
	assert_true(has(f->err, "nobody"));
	assert_true(has(f->err, "error(s) in the configuration"));
	assert_int_equal(ctl(f, "validate", "--json", bad, NULL), 1);
	assert_true(has(f->out, "\"valid\": false"));
	assert_true(has(f->out, "bad.yaml:4:"));
	assert_int_equal(ctl(f, "validate", "--json", f->yaml, NULL), 0);
	assert_true(has(f->out, "\"valid\": true"));
	assert_true(has(f->out, "\"refund\""));
	/* A message quoting a long text of 2-byte characters is cut
	 * between two of them: valid UTF-8, so --json prints it. */
	snprintf(bad, sizeof(bad), "%s/utf8.yaml", f->dir);
	put_file(bad,
	    "sagas:\n"
	    "  - name: \"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
	    "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
	    "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
	    "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
	    "\u00e9\u00e9\u00e9\u00e9\u00e9\"\n"
	    "    steps:\n"
	    "      - {name: a, participant: nobody, action: y}\n");
	assert_int_equal(ctl(f, "validate", "--json", bad, NULL), 1);
	assert_true(has(f->out, "\"valid\": false"));
	assert_true(has(f->out, "utf8.yaml:2:12: name: expected a name"));
	assert_true(has(f->out, "\xc3\xa9...\\\""));
	assert_true(has(f->out, "utf8.yaml:4:"));
	assert_int_equal(ctl(f, "validate", "/nonexistent.yaml", NULL), 1);
	assert_true(has(f->err, "cannot read"));
}

/* validate does not make sagad --check's TLS checks of participants
 * (it does not know sagad's --tls-* options), and its help says so: a
 * tls+tcp:// participant without a CA passes validate, and sagad --check
 * refuses it. Before, the help said "exactly as sagad --check does". */
static void
test_sagactl_validate_tls(void **state)
{
	fixture *f = *state;
	char     path[600], *out = NULL, *err = NULL;
	char    *argv[] = { SAGAD_PATH, "--check", "--config", path, NULL };

	snprintf(path, sizeof(path), "%s/tls.yaml", f->dir);
	put_file(path,
	    "participants:\n"
	    "  p0: {endpoints: [\"tls+tcp://127.0.0.1:1\"]}\n"
	    "sagas:\n"
	    "  - name: x\n"
	    "    steps:\n"
	    "      - {name: a, participant: p0, action: y, compensation: "
	    "z}\n");
	assert_int_equal(ctl(f, "validate", path, NULL), 0);
	assert_true(has(f->out, "configuration OK"));
	assert_int_equal(proc_run(argv, 60000 * scale(), &out, &err), 1);
	assert_non_null(err);
	assert_true(has(err,
	    "participant p0: a tls+tcp:// URL needs a CA (--tls-ca FILE) "
	    "to verify peers"));
	free(out);
	free(err);
	/* The help tells which checks validate leaves to sagad --check. */
	assert_int_equal(ctl(f, "validate", "--help", NULL), 0);
	assert_null(strstr(f->out, "exactly as sagad --check"));
	assert_true(has(f->out, "Not checked here: the TLS of participants "
	                        "with a tls+tcp://"));
	assert_true(has(f->out, "Run sagad --check"));
	assert_int_equal(ctl(f, "--help", NULL), 0);
	assert_true(has(f->out, "(sagad --check minus TLS)"));
}

/* purge deletes finished sagas past the retention with their events and
 * start keys, in batches, keeps FAILED ones and says so; it asks first. */
static void
test_sagactl_purge(void **state)
{
	fixture           *rf = *state;
	fixture            f;
	static const tsaga sagas[] = {
		{ "01900000-0000-7000-8000-0000000000a1", "create_order",
		    "COMPLETED", 2, 1, "p-1", NULL, 864000000, 863000000, 0,
		    ev_completed, N(ev_completed), "pkey-1" },
		{ "01900000-0000-7000-8000-0000000000a2", "create_order",
		    "COMPENSATED", 0, 1, "p-2", "x", 864000000, 863000000, 0,
		    ev_compensated, N(ev_compensated), NULL },
		{ "01900000-0000-7000-8000-0000000000a3", "create_order",
		    "RESOLVED", 1, 1, "p-3", "x", 864000000, 863000000, 0,
		    ev_resolved, N(ev_resolved), NULL },
		{ "01900000-0000-7000-8000-0000000000a4", "create_order",
		    "FAILED", 1, 2, "p-4", "x", 864000000, 863000000, 0,
		    ev_failed, N(ev_failed), NULL },
		{ "01900000-0000-7000-8000-0000000000a5", "create_order",
		    "COMPLETED", 2, 1, "p-5", NULL, 3600000, 3500000, 0,
		    ev_completed, N(ev_completed), "pkey-5" },
	};

	memset(&f, 0, sizeof(f));
	memcpy(f.yaml, rf->yaml, sizeof(f.yaml));
	assert_int_equal(
	    pgtest_db_create("sagactl_purge", f.conninfo, sizeof(f.conninfo)),
	    0);
	assert_int_equal(migrate(&f), 0);
	fill(&f, sagas, N(sagas));
	/* The RESOLVED one as a sagad older than migration 003 ends a saga:
	 * without finished_at. */
	{
		PGconn *c = pgtest_connect(f.conninfo);

		assert_non_null(c);
		assert_int_equal(pgtest_exec(c,
		                     "UPDATE saga_instance SET finished_at ="
		                     " NULL WHERE id = '01900000-0000-7000-8000-"
		                     "0000000000a3'"),
		    0);
		PQfinish(c);
	}

	/* No terminal and no --yes: refused, nothing deleted. */
	assert_int_equal(ctl(&f, "purge", "--older-than", "7d", NULL), 2);
	assert_true(has(f.err, "--yes"));
	assert_int_equal(
	    query_int(&f, "SELECT count(*) FROM saga_instance"), 5);
	/* --dry-run counts. */
	assert_int_equal(
	    ctl(&f, "purge", "--older-than", "7d", "--dry-run", NULL), 0);
	assert_true(has(f.out, "3 finished sagas"));
	assert_true(has(f.err, "1 FAILED saga older than 7d is kept"));
	/* A retention reaching before 1970 (and past PostgreSQL's
	 * timestamps, which gave a query error): nothing matches. */
	assert_int_equal(ctl(&f, "purge", "--older-than", "106751991167d",
	                     "--dry-run", NULL),
	    0);
	assert_true(has(f.out, "0 finished sagas ended before "
	                       "1970-01-01T00:00:00.000Z"));
	/* And --json says that time: it said "before": null. */
	assert_int_equal(ctl(&f, "purge", "--older-than", "106751991167d",
	                     "--dry-run", "--json", NULL),
	    0);
	assert_true(
	    has(f.out, "\"before\": \"1970-01-01T00:00:00.000Z\""));
	assert_int_equal(
	    query_int(&f, "SELECT count(*) FROM saga_instance"), 5);
	/* A purge whose batch fails (its DELETE waits behind a lock past
	 * the session's statement_timeout): exit 1 with the error on
	 * stderr, and with --json still one JSON document, "complete"
	 * false (it printed a line of text). The stamp before the batches
	 * went in. */
	{
		PGconn *c = pgtest_connect(f.conninfo);
		char    db[1200];
		int     rv;

		assert_non_null(c);
		snprintf(db, sizeof(db),
		    "%s options='-c statement_timeout=300'", f.conninfo);
		assert_int_equal(pgtest_exec(c,
		                     "BEGIN; LOCK TABLE saga_event IN ACCESS "
		                     "EXCLUSIVE MODE"),
		    0);
		rv = ctl(&f, "purge", "--older-than", "7d", "--yes", "--json",
		    "--db", db, NULL);
		assert_int_equal(pgtest_exec(c, "ROLLBACK"), 0);
		PQfinish(c);
		if (rv != 1 || !has(f.out, "\"complete\": false")) {
			fprintf(stderr, "purge exited %d\n--- out\n%s--- err\n%s",
			    rv, f.out, f.err);
		}
		assert_int_equal(rv, 1);
		assert_true(has(f.out, "\"complete\": false"));
		assert_true(has(f.out, "\"sagas\": 0"));
		assert_true(has(f.out, "\"stamped\": 1"));
		assert_false(has(f.out, "purged"));
		assert_true(has(f.err, "statement timeout"));
		assert_true(has(f.err, "1 finished saga had no finish time"));
	}
	/* The purge, two per batch, a progress line after each batch but
	 * the last (whose count the result gives). */
	assert_int_equal(ctl(&f, "purge", "--older-than", "7d", "--batch", "2",
	                     "--progress", "0s", "--yes", "--json", NULL),
	    0);
	assert_true(has(f.err, "sagactl purge: 2 of 3 sagas deleted (66%) in "
	                       "1 batch, "));
	assert_false(has(f.err, "3 of 3 sagas deleted"));
	assert_true(has(f.out, "\"complete\": true"));
	assert_true(has(f.out, "\"sagas\": 3"));
	assert_true(has(f.out, "\"batches\": 2"));
	assert_true(has(f.out, "\"start_keys\": 1"));
	assert_true(has(f.out, "\"failed_kept\": 1"));
	assert_true(has(f.out, "\"stamped\": 0"));
	assert_true(has(f.err, "FAILED"));
	assert_int_equal(
	    query_int(&f, "SELECT count(*) FROM saga_instance"), 2);
	assert_int_equal(query_int(&f,
	                     "SELECT count(*) FROM saga_instance WHERE state "
	                     "= 'FAILED'"),
	    1);
	assert_int_equal(query_int(&f,
	                     "SELECT count(*) FROM saga_event WHERE saga_id "
	                     "NOT IN (SELECT id FROM saga_instance)"),
	    0);
	assert_int_equal(query_int(&f, "SELECT count(*) FROM saga_event"),
	    (long long) (N(ev_failed) + N(ev_completed)));
	assert_int_equal(
	    query_int(&f, "SELECT count(*) FROM saga_start_key"), 1);
	/* Again: nothing left to purge. */
	assert_int_equal(
	    ctl(&f, "purge", "--older-than", "7d", "--yes", NULL), 0);
	assert_true(has(f.out, "purged 0 sagas"));
	pgtest_db_drop(f.conninfo);
	free(f.out);
	free(f.err);
}

static char *slurp(const char *path);

/* Waits up to 10 s for sql (one integer) to read want on f's database. */
static bool
wait_int(const fixture *f, const char *sql, long long want)
{
	for (int i = 0; i < 1000; i++) {
		if (query_int(f, sql) == want) {
			return (true);
		}
		poll(NULL, 0, 10);
	}
	return (false);
}

#define T_PURGE_WAITING                                                     \
	"SELECT count(*) FROM pg_stat_activity WHERE query LIKE "          \
	"'WITH victims%' AND wait_event_type = 'Lock'"
#define T_PURGE_RUNNING                                                     \
	"SELECT count(*) FROM pg_stat_activity WHERE query LIKE "          \
	"'WITH victims%' AND pid <> pg_backend_pid()"

/* A purge whose batch waits on a lock (another session holds a table it
 * must delete from): ^C cancels that statement and stops with what was
 * done (--json "complete": false), then sagactl dies of the signal;
 * killed at once, it left its DELETE waiting in the server, which
 * deleted once the lock went. Without ^C (or with SIGINT ignored, as a
 * script's background job starts), the batch gives up after 10 s
 * (lock_timeout) with a line that says why; it waited as long as the
 * lock was held, printing nothing. */
static void
test_sagactl_purge_interrupted(void **state)
{
	fixture           *rf = *state;
	fixture            f;
	proc              *p;
	PGconn            *c;
	char              *argv[12], log[PATH_MAX], *text;
	int                st;
	static const tsaga sagas[] = {
		{ "01900000-0000-7000-8000-0000000000c1", "create_order",
		    "COMPLETED", 2, 1, "p-1", NULL, 864000000, 863000000, 0,
		    ev_completed, N(ev_completed), "ikey-1" },
		{ "01900000-0000-7000-8000-0000000000c2", "create_order",
		    "COMPENSATED", 0, 1, "p-2", "x", 864000000, 863000000, 0,
		    ev_compensated, N(ev_compensated), NULL },
	};

	memset(&f, 0, sizeof(f));
	memcpy(f.yaml, rf->yaml, sizeof(f.yaml));
	assert_int_equal(pgtest_db_create(
	                     "sagactl_purge_intr", f.conninfo,
	                     sizeof(f.conninfo)),
	    0);
	assert_int_equal(migrate(&f), 0);
	fill(&f, sagas, N(sagas));
	assert_non_null(c = pgtest_connect(f.conninfo));
	assert_int_equal(pgtest_exec(c,
	                     "BEGIN; LOCK TABLE saga_event IN ACCESS "
	                     "EXCLUSIVE MODE"),
	    0);

	snprintf(log, sizeof(log), "/tmp/sagactl-purge-intr.%d.log",
	    (int) getpid());
	(void) unlink(log);
	argv[0] = SAGACTL_PATH;
	argv[1] = "--db";
	argv[2] = f.conninfo;
	argv[3] = "--json";
	argv[4] = "purge";
	argv[5] = "--older-than";
	argv[6] = "7d";
	argv[7] = "--yes";
	argv[8] = NULL;
	assert_int_equal(proc_start(&p, argv, log), 0);
	assert_true(wait_int(&f, T_PURGE_WAITING, 1));
	assert_int_equal(proc_signal(p, SIGINT), 0);
	assert_int_equal(proc_wait(p, 10000 * scale(), &st), 0);
	proc_free(p);
	/* It dies of the signal once it has said what it did (so that a
	 * shell's loop stops too). */
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGINT);
	/* Cancelled, not left waiting for the lock. */
	assert_true(wait_int(&f, T_PURGE_RUNNING, 0));
	assert_int_equal(pgtest_exec(c, "ROLLBACK"), 0);
	assert_non_null(text = slurp(log));
	(void) unlink(log);
	assert_true(has(text, "interrupted: the statement in flight was "
	                      "cancelled"));
	assert_true(has(text, "\"complete\": false"));
	assert_true(has(text, "\"sagas\": 0"));
	free(text);
	assert_int_equal(
	    query_int(&f, "SELECT count(*) FROM saga_instance"), 2);

	/* Left to wait: it gives up after 10 s, having deleted nothing.
	 * Started with SIGINT ignored (a script's background job), it
	 * stays ignored: a SIGINT while it waits does nothing (it was
	 * taken as ^C). */
	assert_int_equal(pgtest_exec(c,
	                     "BEGIN; LOCK TABLE saga_event IN ACCESS "
	                     "EXCLUSIVE MODE"),
	    0);
	{
		char *sh[] = { "/bin/sh", "-c",
			"trap '' INT; exec \"$0\" --db \"$1\" purge "
			"--older-than 7d --yes",
			SAGACTL_PATH, f.conninfo, NULL };

		(void) unlink(log);
		assert_int_equal(proc_start(&p, sh, log), 0);
		assert_true(wait_int(&f, T_PURGE_WAITING, 1));
		assert_int_equal(proc_signal(p, SIGINT), 0);
		assert_int_equal(proc_wait(p, 30000 * scale(), &st), 0);
		proc_free(p);
	}
	assert_int_equal(pgtest_exec(c, "ROLLBACK"), 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	assert_non_null(text = slurp(log));
	(void) unlink(log);
	assert_true(has(text, "canceling statement due to lock timeout: "
	                      "another session holds a lock this "
	                      "statement needs"));
	assert_true(has(text, "purged 0 sagas"));
	assert_false(has(text, "interrupted"));
	free(text);
	assert_int_equal(
	    query_int(&f, "SELECT count(*) FROM saga_instance"), 2);
	PQfinish(c);
	pgtest_db_drop(f.conninfo);
	free(f.out);
	free(f.err);
}

/* On a database whose default is synchronous_commit = off, sagad
 * --migrate and purge turn it on for their sessions and say so: a purge
 * reported done must not come back after a server crash. What each
 * COMMIT ran with is recorded at COMMIT time by a deferred constraint
 * trigger on saga_instance's deletes. */
static void
test_sagactl_purge_durable(void **state)
{
	fixture           *rf = *state;
	fixture            f;
	char              *argv[] = { SAGAD_PATH, "--migrate", "--db", NULL,
                     NULL };
	char              *out = NULL, *err = NULL;
	PGconn            *c;
	static const tsaga sagas[] = {
		{ "01900000-0000-7000-8000-0000000000b1", "create_order",
		    "COMPLETED", 2, 1, "p-1", NULL, 864000000, 863000000, 0,
		    ev_completed, N(ev_completed), NULL },
	};

	memset(&f, 0, sizeof(f));
	memcpy(f.yaml, rf->yaml, sizeof(f.yaml));
	assert_int_equal(pgtest_db_create("sagactl_purge_durable",
	                     f.conninfo, sizeof(f.conninfo)),
	    0);
	assert_non_null(c = pgtest_connect(f.conninfo));
	assert_int_equal(pgtest_exec(c,
	                     "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I "
	                     "SET synchronous_commit = off', "
	                     "current_database()); END $$"),
	    0);
	PQfinish(c);
	argv[3] = f.conninfo;
	assert_int_equal(proc_run(argv, 60000 * scale(), &out, &err), 0);
	assert_non_null(err);
	assert_true(has(err, "synchronous_commit is off"));
	free(out);
	free(err);
	fill(&f, sagas, N(sagas));
	assert_non_null(c = pgtest_connect(f.conninfo));
	assert_int_equal(pgtest_exec(c,
	                     "CREATE TABLE sync_seen (sync text NOT NULL);"
	                     "CREATE FUNCTION sync_seen_f() RETURNS trigger "
	                     "LANGUAGE plpgsql AS $$ BEGIN INSERT INTO "
	                     "sync_seen VALUES (current_setting("
	                     "'synchronous_commit')); RETURN NULL; END $$;"
	                     "CREATE CONSTRAINT TRIGGER sync_seen_t AFTER "
	                     "DELETE ON saga_instance DEFERRABLE INITIALLY "
	                     "DEFERRED FOR EACH ROW EXECUTE FUNCTION "
	                     "sync_seen_f()"),
	    0);
	PQfinish(c);
	assert_int_equal(
	    ctl(&f, "purge", "--older-than", "7d", "--yes", NULL), 0);
	assert_true(has(f.out, "purged 1 saga"));
	assert_true(has(f.err, "synchronous_commit is off"));
	assert_int_equal(query_int(&f,
	                     "SELECT count(*) FROM sync_seen WHERE sync = "
	                     "'on'"),
	    1);
	assert_int_equal(query_int(&f, "SELECT count(*) FROM sync_seen"), 1);
	/* A reading command does not check (its connection is read-only)
	 * and so does not warn. */
	assert_int_equal(ctl(&f, "list", NULL), 0);
	assert_false(has(f.err, "synchronous_commit"));
	pgtest_db_drop(f.conninfo);
	free(f.out);
	free(f.err);
}

/*
 * The redact group: a definition that redacts input fields.
 */

static const char redact_yaml[]
    = "participants:\n"
      "  shop: {endpoints: [\"tcp://127.0.0.1:1\"]}\n"
      "sagas:\n"
      "  - name: checkout\n"
      "    business_key: customer_id\n"
      "    redact: [card_number, customer_id]\n"
      "    steps:\n"
      "      - {name: create_order, participant: shop, action: order.create,"
      " kind: pivot}\n"
      "  - name: checkout_plain\n"
      "    business_key: customer_id\n"
      "    steps:\n"
      "      - {name: create_order, participant: shop, action: order.create,"
      " kind: pivot}\n";

static const tsaga redact_sagas[] = {
	{ ID_SECRET, "checkout", "COMPLETED", 0, 1, KEY_SECRET, NULL, 40000,
	    39000, 0, ev_refund, N(ev_refund), NULL },
	{ ID_PLAIN, "checkout_plain", "COMPLETED", 0, 1, "cust-plain-42",
	    NULL, 30000, 29000, 0, ev_refund, N(ev_refund), NULL },
	{ ID_DUP, "checkout", "COMPLETED", 0, 1, NULL, NULL, 20000, 19000, 0,
	    ev_refund, N(ev_refund), NULL },
	{ ID_FUTURE, "checkout", "COMPLETED", 0, 1, KEY_FUTURE, NULL, 10000,
	    9000, 0, ev_refund, N(ev_refund), NULL },
};

/* Their inputs' card numbers; ID_FUTURE is pinned to version 2. */
static const tinput redact_inputs[] = {
	{ CARD_SECRET, false, 1 },
	{ CARD_PLAIN, false, 1 },
	{ NULL, true, 1 },
	{ CARD_FUTURE, false, 2 },
};

/* Registers version 2 of checkout as a newer sagad could write it: with
 * a key this sagactl does not know, so that it cannot read it. */
static void
insert_future_def(PGconn *c, const char *yaml)
{
	const char *files[] = { yaml };
	coord_defs *d       = NULL;
	coord_errs  errs;
	char        json[4096];
	const char *v[1];

	memset(&errs, 0, sizeof(errs));
	assert_int_equal(coord_defs_load(files, 1, &d, &errs), 0);
	snprintf(json, sizeof(json), "{\"format\": 99, %s",
	    coord_defs_find(d, "checkout")->json + 1);
	v[0] = json;
	exec_params(c,
	    "INSERT INTO saga_definition (name, version, content_hash,"
	    " definition) VALUES ('checkout', 2,"
	    " encode(sha256(convert_to($1, 'UTF8')), 'hex'), $1::jsonb)",
	    1, v, NULL, NULL);
	coord_defs_free(d);
	coord_errs_fini(&errs);
}

static int
redact_setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	PGconn  *c;

	if (f == NULL
	    || pgtest_db_create(
	           "sagactl_redact", f->conninfo, sizeof(f->conninfo))
	        != 0
	    || migrate(f) != 0) {
		free(f);
		return (-1);
	}
	snprintf(f->dir, sizeof(f->dir), "%s", test_tmpdir());
	snprintf(f->yaml, sizeof(f->yaml), "%s/redact.yaml", f->dir);
	put_file(f->yaml, redact_yaml);
	*state = f;
	if ((c = pgtest_connect(f->conninfo)) == NULL) {
		return (-1);
	}
	insert_defs(c, f->yaml);
	insert_future_def(c, f->yaml);
	for (size_t i = 0; i < N(redact_sagas); i++) {
		insert_saga_x(c, &redact_sagas[i], &redact_inputs[i]);
	}
	PQfinish(c);
	return (0);
}

/* None of the redacted values is in text. */
static bool
no_secret(const char *text)
{
	static const char *const secrets[] = { KEY_SECRET, CARD_SECRET,
		CARD_DUP, KEY_FUTURE, CARD_FUTURE };

	for (size_t i = 0; i < N(secrets); i++) {
		if (strstr(text, secrets[i]) != NULL) {
			fprintf(stderr, "\"%s\" should not be in:\n%s\n",
			    secrets[i], text);
			return (false);
		}
	}
	return (true);
}

/* show: "***" for the redacted fields and the business key, their
 * values nowhere; the other fields as they are. */
static void
test_sagactl_redact_show(void **state)
{
	fixture *f = *state;

	assert_int_equal(ctl(f, "show", ID_SECRET, NULL), 0);
	assert_true(has(f->out, "Business key ***"));
	assert_true(has(f->out,
	    "Input        {\"customer_id\": \"***\", \"card_number\": "
	    "\"***\", \"sku\": \"A1\", \"qty\": 2}"));
	/* Step outputs are the participants' business. */
	assert_true(
	    has(f->out, "{\"done\": \"create_order\", \"order\": 42}"));
	assert_true(no_secret(f->out));
	assert_string_equal(f->err, "");
}

static void
test_sagactl_redact_show_json(void **state)
{
	fixture         *f = *state;
	proto_buf        raw;
	proto_doc       *doc;
	const proto_val *r;
	char             b[256];

	assert_int_equal(ctl(f, "show", "--json", ID_SECRET, NULL), 0);
	assert_true(no_secret(f->out));
	assert_non_null(doc = json_parse(f->out, &raw));
	r = proto_doc_root(doc);
	assert_string_equal(jstr(r, "business_key", b, sizeof(b)), "***");
	assert_string_equal(jstr(r, "input.customer_id", b, sizeof(b)), "***");
	assert_string_equal(jstr(r, "input.card_number", b, sizeof(b)), "***");
	assert_string_equal(jstr(r, "input.sku", b, sizeof(b)), "A1");
	assert_int_equal(jint(r, "input.qty"), 2);
	assert_int_equal(proto_val_len(proto_val_get(r, "input")), 4);
	assert_int_equal(jint(proto_val_at(proto_val_get(r, "steps"), 0),
	                     "output.order"),
	    42);
	proto_doc_free(doc);
	proto_buf_fini(&raw);
}

/* A saga whose definition redacts nothing shows every value. */
static void
test_sagactl_redact_plain_saga(void **state)
{
	fixture         *f = *state;
	proto_buf        raw;
	proto_doc       *doc;
	const proto_val *r;
	char             b[256];

	assert_int_equal(ctl(f, "show", ID_PLAIN, NULL), 0);
	assert_true(has(f->out, "Business key cust-plain-42"));
	assert_true(has(f->out,
	    "Input        {\"customer_id\": \"cust-plain-42\", "
	    "\"card_number\": \"" CARD_PLAIN "\", \"sku\": \"A1\", "
	    "\"qty\": 2}"));
	assert_null(strstr(f->out, "***"));
	assert_int_equal(ctl(f, "show", "--json", ID_PLAIN, NULL), 0);
	assert_non_null(doc = json_parse(f->out, &raw));
	r = proto_doc_root(doc);
	assert_string_equal(
	    jstr(r, "business_key", b, sizeof(b)), "cust-plain-42");
	assert_string_equal(
	    jstr(r, "input.card_number", b, sizeof(b)), CARD_PLAIN);
	proto_doc_free(doc);
	proto_buf_fini(&raw);
}

/* An input that cannot be rebuilt field by field (a key twice) is masked
 * as a whole; a saga whose definition redacts but is of a format this
 * sagactl cannot read has every value of its input masked. */
static void
test_sagactl_redact_whole_input(void **state)
{
	fixture         *f = *state;
	proto_buf        raw;
	proto_doc       *doc;
	const proto_val *r;
	char             b[256];

	assert_int_equal(ctl(f, "show", ID_DUP, NULL), 0);
	assert_true(has(f->out, "Input        \"***\""));
	assert_true(has(f->out, "Business key -"));
	assert_true(no_secret(f->out));
	assert_int_equal(ctl(f, "show", "--json", ID_DUP, NULL), 0);
	assert_true(no_secret(f->out));
	assert_non_null(doc = json_parse(f->out, &raw));
	r = proto_doc_root(doc);
	assert_string_equal(jstr(r, "input", b, sizeof(b)), "***");
	assert_true(jnull(r, "business_key"));
	proto_doc_free(doc);
	proto_buf_fini(&raw);

	assert_int_equal(ctl(f, "show", ID_FUTURE, NULL), 0);
	assert_true(has(f->out, "checkout v2"));
	assert_true(has(f->out,
	    "Input        {\"customer_id\": \"***\", \"card_number\": "
	    "\"***\", \"sku\": \"***\", \"qty\": \"***\"}"));
	assert_true(has(f->out, "Business key ***"));
	assert_true(no_secret(f->out));
	assert_int_equal(ctl(f, "show", "--json", ID_FUTURE, NULL), 0);
	assert_true(no_secret(f->out));
	assert_non_null(doc = json_parse(f->out, &raw));
	r = proto_doc_root(doc);
	assert_string_equal(jstr(r, "input.card_number", b, sizeof(b)), "***");
	assert_string_equal(jstr(r, "input.qty", b, sizeof(b)), "***");
	assert_string_equal(jstr(r, "business_key", b, sizeof(b)), "***");
	proto_doc_free(doc);
	proto_buf_fini(&raw);
}

/* list masks the business key of the sagas whose definition redacts its
 * field (human and --json); --key still finds them by the real value. */
static void
test_sagactl_redact_list(void **state)
{
	fixture         *f = *state;
	proto_buf        raw;
	proto_doc       *doc;
	const proto_val *sagas, *s;
	char             b[256], id[64];
	size_t           masked = 0;

	assert_int_equal(ctl(f, "list", NULL), 0);
	assert_true(has(f->out, ID_SECRET));
	assert_true(has(f->out, "***"));
	assert_true(has(f->out, "cust-plain-42"));
	assert_true(no_secret(f->out));
	assert_int_equal(ctl(f, "list", "--json", NULL), 0);
	assert_true(no_secret(f->out));
	assert_non_null(doc = json_parse(f->out, &raw));
	sagas = proto_val_get(proto_doc_root(doc), "sagas");
	assert_int_equal(proto_val_len(sagas), N(redact_sagas));
	for (size_t i = 0; i < proto_val_len(sagas); i++) {
		s = proto_val_at(sagas, i);
		jstr(s, "id", id, sizeof(id));
		jstr(s, "business_key", b, sizeof(b));
		if (strcmp(id, ID_SECRET) == 0 || strcmp(id, ID_FUTURE) == 0) {
			assert_string_equal(b, "***");
			masked++;
		} else if (strcmp(id, ID_PLAIN) == 0) {
			assert_string_equal(b, "cust-plain-42");
		} else {
			/* No key at all stays null. */
			assert_string_equal(id, ID_DUP);
			assert_string_equal(b, "null");
		}
	}
	assert_int_equal(masked, 2);
	proto_doc_free(doc);
	proto_buf_fini(&raw);

	assert_int_equal(
	    ctl(f, "list", "--key", KEY_SECRET, "--json", NULL), 0);
	assert_non_null(doc = json_parse(f->out, &raw));
	sagas = proto_val_get(proto_doc_root(doc), "sagas");
	assert_int_equal(proto_val_len(sagas), 1);
	assert_string_equal(
	    jstr(proto_val_at(sagas, 0), "id", b, sizeof(b)), ID_SECRET);
	assert_string_equal(
	    jstr(proto_val_at(sagas, 0), "business_key", b, sizeof(b)),
	    "***");
	proto_doc_free(doc);
	proto_buf_fini(&raw);
}

/* defs names the redacted fields (names are not secrets). */
static void
test_sagactl_redact_defs(void **state)
{
	fixture *f = *state;

	assert_int_equal(ctl(f, "defs", "checkout", NULL), 0);
	assert_true(
	    has(f->out, "redacted input fields: card_number, customer_id"));
	assert_true(has(f->out, "cannot read the stored definition"));
	assert_int_equal(ctl(f, "defs", "checkout_plain", NULL), 0);
	assert_null(strstr(f->out, "redacted"));
}

/*
 * The plan group: a log of PLAN_SAGAS generated sagas, and the plans that
 * PostgreSQL runs for sagactl (auto_explain, in sagactl's session, with
 * the rows that each node read). A query of list must read its sagas in
 * order from an index and stop at the limit, whatever the log's size; its
 * results must be those of the plain query.
 */

#define PLAN_SAGAS 50000

/* Three sagas a second up to now (created_at ties, broken by the id), ids
 * in no time order; 92% COMPLETED, 2% each FAILED, COMPENSATED and
 * RUNNING, 1% each COMPENSATING and RESOLVED; a quarter are refunds;
 * business keys c-0 to c-999; three events each, in time order. */
static const char plan_fill_sql[]
    = "INSERT INTO saga_instance (id, saga_name, saga_version, state,"
      " current_step, attempt, max_sent_step, context, business_key,"
      " created_at, updated_at, event_seq)"
      " SELECT md5(g::text)::uuid,"
      "  CASE WHEN g % 4 = 0 THEN 'refund' ELSE 'create_order' END, 1,"
      "  CASE WHEN g % 50 = 1 THEN 'FAILED'"
      "   WHEN g % 50 = 2 THEN 'COMPENSATED'"
      "   WHEN g % 50 = 3 THEN 'RUNNING'"
      "   WHEN g % 100 = 5 THEN 'COMPENSATING'"
      "   WHEN g % 100 = 55 THEN 'RESOLVED' ELSE 'COMPLETED' END,"
      "  0, 1, 0, '\\x80'::bytea, 'c-' || g % 1000,"
      "  date_trunc('second', now())"
      "   - ((50000 - g) / 3) * interval '1 second', now(), 3"
      " FROM generate_series(1, 50000) g;"
      "INSERT INTO saga_event (saga_id, seq, at, step, kind, attempt,"
      " event, outcome, duration_us)"
      " SELECT i.id, k, i.created_at + k * interval '1 millisecond',"
      "  CASE WHEN k > 1 THEN 0 END, CASE WHEN k > 1 THEN 0 END,"
      "  CASE WHEN k > 1 THEN 1 END,"
      "  (ARRAY['saga_started', 'step_sent', 'step_ok'])[k],"
      "  CASE WHEN k = 3 THEN 'ok' END, CASE WHEN k = 3 THEN 1500 END"
      " FROM saga_instance i, generate_series(1, 3) k"
      " ORDER BY i.created_at, k;";

static int
plan_setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	PGconn  *c;
	int      rv;

	if (f == NULL
	    || pgtest_db_create(
	           "sagactl_plan", f->conninfo, sizeof(f->conninfo))
	        != 0
	    || migrate(f) != 0) {
		free(f);
		return (-1);
	}
	/* Every query's plan as a NOTICE on sagactl's stderr, with the rows
	 * each node read (auto_explain: a superuser setting, as the test
	 * clusters' user is). */
	snprintf(f->explain_db, sizeof(f->explain_db),
	    "%s options='-c session_preload_libraries=auto_explain"
	    " -c auto_explain.log_min_duration=0"
	    " -c auto_explain.log_level=notice"
	    " -c auto_explain.log_format=json"
	    " -c auto_explain.log_analyze=on"
	    " -c auto_explain.log_timing=off'",
	    f->conninfo);
	snprintf(f->dir, sizeof(f->dir), "%s", test_tmpdir());
	snprintf(f->yaml, sizeof(f->yaml), "%s/plan.yaml", f->dir);
	put_file(f->yaml, read_yaml);
	*state = f;
	if ((c = pgtest_connect(f->conninfo)) == NULL) {
		return (-1);
	}
	insert_defs(c, f->yaml);
	/* VACUUM as autovacuum would have done on a log that grew. */
	rv = pgtest_exec(c, plan_fill_sql) != 0
	        || pgtest_exec(c, "VACUUM ANALYZE saga_instance") != 0
	        || pgtest_exec(c, "VACUUM ANALYZE saga_event") != 0
	    ? -1
	    : 0;
	PQfinish(c);
	return (rv);
}

/* What the plans of one sagactl run read from one table. */
typedef struct plan_reads {
	int       plans; /* plans in the run's stderr */
	long long rows; /* rows that its scans read (returned or removed) */
	int       seq; /* its sequential scans */
} plan_reads;

static void
plan_walk(const proto_val *node, const char *rel, plan_reads *pr)
{
	static const char *const read[] = { "Actual Rows",
		"Rows Removed by Filter", "Rows Removed by Index Recheck" };
	const proto_val *plans = proto_val_get(node, "Plans");
	char             b[64];

	if (strcmp(jstr(node, "Relation Name", b, sizeof(b)), rel) == 0) {
		double rows = 0, loops = 0, x;

		for (size_t i = 0; i < N(read); i++) {
			if (proto_val_float(proto_val_get(node, read[i]), &x)
			    == 0) {
				rows += x;
			}
		}
		(void) proto_val_float(
		    proto_val_get(node, "Actual Loops"), &loops);
		pr->rows += (long long) (rows * loops + 0.5);
		if (strcmp(jstr(node, "Node Type", b, sizeof(b)), "Seq Scan")
		    == 0) {
			pr->seq++;
		}
	}
	for (size_t i = 0; i < proto_val_len(plans); i++) {
		plan_walk(proto_val_at(plans, i), rel, pr);
	}
}

/* The length of the JSON object at s, up to its closing brace. */
static size_t
json_object_len(const char *s)
{
	size_t i = 0;
	int    depth = 0;
	bool   str = false;

	for (; s[i] != '\0'; i++) {
		if (str) {
			if (s[i] == '\\' && s[i + 1] != '\0') {
				i++;
			} else if (s[i] == '"') {
				str = false;
			}
		} else if (s[i] == '"') {
			str = true;
		} else if (s[i] == '{') {
			depth++;
		} else if (s[i] == '}' && --depth == 0) {
			return (i + 1);
		}
	}
	return (i);
}

/* Reads the plans that auto_explain wrote in err: all (nth < 0) or the
 * nth only, from 0; pr->plans counts them all, but that of the schema
 * check. */
static void
plan_reads_of(const char *err, const char *rel, int nth, plan_reads *pr)
{
	const char *p = err;
	char        q[4096];

	memset(pr, 0, sizeof(*pr));
	while ((p = strstr(p, "plan:\n{")) != NULL) {
		const char *start = strchr(p, '{');
		size_t      n     = json_object_len(start);
		char       *text  = malloc(n + 1);
		proto_buf   raw;
		proto_doc  *doc;

		assert_non_null(text);
		memcpy(text, start, n);
		text[n] = '\0';
		assert_non_null(doc = json_parse(text, &raw));
		jstr(proto_doc_root(doc), "Query Text", q, sizeof(q));
		/* sagactl's check of the schema version is not counted. */
		if (strstr(q, "schema_migrations") == NULL) {
			if (nth < 0 || nth == pr->plans) {
				plan_walk(proto_val_get(proto_doc_root(doc),
				              "Plan"),
				    rel, pr);
			}
			pr->plans++;
		}
		proto_doc_free(doc);
		proto_buf_fini(&raw);
		free(text);
		p = start + n;
	}
}

/* Runs sagactl list with args (at most 6, NULL-terminated) under
 * auto_explain and checks that it read at most max rows of
 * saga_instance, none of them by a sequential scan. */
static void
plan_check_list(fixture *f, const char *const *args, long long max)
{
	plan_reads pr;

	f->explain = true;
	assert_int_equal(ctl(f, "list", "--json", args[0], args[1], args[2],
	                     args[3], args[4], args[5], NULL),
	    0);
	f->explain = false;
	plan_reads_of(f->err, "saga_instance", -1, &pr);
	if (pr.plans != 1 || pr.seq != 0 || pr.rows > max) {
		fprintf(stderr,
		    "list %s %s %s %s: %d plan(s), %d sequential scan(s) and "
		    "%lld rows of saga_instance read (at most %lld "
		    "expected):\n%s",
		    args[0] ? args[0] : "", args[1] ? args[1] : "",
		    args[2] ? args[2] : "", args[3] ? args[3] : "", pr.plans,
		    pr.seq, pr.rows, max, f->err);
		fail();
	}
}

/* list --state: each state's newest sagas, in order, from the index
 * (state, created_at); one state or several; never a read of every saga
 * of those states (an IN list or = ANY reads the index in no order). */
static void
test_sagactl_plan_list_state(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *args[7];
		int         branches; /* distinct states */
		long long   limit;
	} cases[] = {
		{ { "--state", "COMPLETED", NULL }, 1, 50 },
		{ { "--state", "FAILED", NULL }, 1, 50 },
		{ { "--state", "failed,compensated", NULL }, 2, 50 },
		{ { "--state", "FAILED,failed", "--limit", "20", NULL }, 1,
		    20 },
		{ { "--state", "RUNNING,COMPENSATING,RESOLVED", "--limit",
		      "10", NULL },
		    3, 10 },
		{ { "--state", "FAILED,COMPLETED", "--key", "c-7", NULL }, 2,
		    50 },
	};

	for (size_t i = 0; i < N(cases); i++) {
		/* limit + 1 rows, and the rest of a tie in created_at. */
		plan_check_list(f, cases[i].args,
		    2 * cases[i].branches * (cases[i].limit + 1) + 10);
	}
}

/* list without --state, and --since: the newest sagas, in order, from
 * the index (created_at, id) read backwards (migration 004). */
static void
test_sagactl_plan_list_time(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *args[7];
		long long   limit;
	} cases[] = {
		{ { NULL }, 50 },
		{ { "--limit", "500", NULL }, 500 },
		{ { "--since", "10m", NULL }, 50 },
		{ { "--since", "10m", "--state", "COMPENSATED", NULL }, 50 },
		{ { "--state",
		      "RUNNING,COMPENSATING,COMPLETED,COMPENSATED,FAILED,"
		      "RESOLVED",
		      "--limit", "20", NULL },
		    20 },
	};

	for (size_t i = 0; i < N(cases); i++) {
		plan_check_list(
		    f, cases[i].args, 2 * (cases[i].limit + 1) + 10);
	}
}

/* stats --since 10m: its first query counts the sagas started since
 * then, found through the index (created_at, id); its second reads their
 * events through the BRIN index on at (migration 004), whole ranges of
 * 128 pages (here a tenth of the table). How the second joins the events'
 * sagas is the planner's choice (here, a hash join on every saga; on a
 * log of a million, a look-up by id). */
static void
test_sagactl_plan_stats_since(void **state)
{
	fixture   *f = *state;
	plan_reads in, ev;

	f->explain = true;
	assert_int_equal(ctl(f, "stats", "--since", "10m", "--json", NULL), 0);
	f->explain = false;
	plan_reads_of(f->err, "saga_instance", 0, &in);
	plan_reads_of(f->err, "saga_event", 1, &ev);
	/* 1,800 sagas and 5,400 events in the last 10 minutes. */
	if (in.plans != 2 || in.seq != 0 || in.rows > PLAN_SAGAS / 10
	    || ev.seq != 0 || ev.rows > 3 * PLAN_SAGAS / 2) {
		fprintf(stderr,
		    "stats --since 10m: %d sequential scan(s) and %lld rows "
		    "of saga_instance read by the counts (a tenth at most "
		    "expected), %d and %lld of saga_event by the latencies "
		    "(half at most):\n%s",
		    in.seq, in.rows, ev.seq, ev.rows, f->err);
		fail();
	}
	assert_true(has(f->out, "\"step\": \"create_order\""));
}

/* Returns the ids that sql gives (one column), joined by commas. */
static char *
query_ids(const fixture *f, const char *sql)
{
	PGconn   *c = pgtest_connect(f->conninfo);
	PGresult *r;
	char     *ids;

	assert_non_null(c);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
		fail();
	}
	ids = strdup(PQgetvalue(r, 0, 0));
	assert_non_null(ids);
	PQclear(r);
	PQfinish(c);
	return (ids);
}

/* The ids of list --json with args, joined by commas. */
static char *
list_ids(fixture *f, const char *const *args)
{
	proto_buf        raw;
	proto_doc       *doc;
	const proto_val *sagas;
	size_t           len = 1, n = 0;
	char            *ids, b[64];

	assert_int_equal(ctl(f, "list", "--json", args[0], args[1], args[2],
	                     args[3], args[4], args[5], args[6], args[7],
	                     NULL),
	    0);
	assert_non_null(doc = json_parse(f->out, &raw));
	sagas = proto_val_get(proto_doc_root(doc), "sagas");
	len += proto_val_len(sagas) * 37;
	assert_non_null(ids = malloc(len));
	ids[0] = '\0';
	for (size_t i = 0; i < proto_val_len(sagas); i++) {
		n += (size_t) snprintf(ids + n, len - n, "%s%s", i ? "," : "",
		    jstr(proto_val_at(sagas, i), "id", b, sizeof(b)));
	}
	proto_doc_free(doc);
	proto_buf_fini(&raw);
	return (ids);
}

/* list gives the sagas of the plain query (every condition in one WHERE,
 * sorted, cut), in its order: ties in created_at by id, a state given
 * twice once, every state as no state. */
static void
test_sagactl_plan_same_rows(void **state)
{
	fixture    *f = *state;
	char       *since, sql[1024], *want, *got;
	const char *p;
	struct {
		const char *args[9];
		const char *where;
		int         limit; /* 0: none */
	} cases[] = {
		{ { NULL }, "true", 50 },
		{ { "--limit", "7", NULL }, "true", 7 },
		{ { "--state", "FAILED,RESOLVED", "--limit", "0", NULL },
		    "state IN ('FAILED', 'RESOLVED')", 0 },
		{ { "--state", "failed,FAILED,compensated", "--limit", "120",
		      NULL },
		    "state IN ('FAILED', 'COMPENSATED')", 120 },
		{ { "--state",
		      "RUNNING,COMPENSATING,COMPLETED,COMPENSATED,FAILED,"
		      "RESOLVED",
		      "--limit", "30", NULL },
		    "true", 30 },
		{ { "--state", "COMPLETED,RUNNING", "--saga", "refund",
		      "--limit", "40", NULL },
		    "state IN ('COMPLETED', 'RUNNING')"
		    " AND saga_name = 'refund'",
		    40 },
		{ { "--state", "FAILED,COMPLETED", "--key", "c-7", "--limit",
		      "0", NULL },
		    "state IN ('FAILED', 'COMPLETED') AND business_key = 'c-7'",
		    0 },
		{ { "--since", "", "--state", "COMPENSATED,FAILED,RUNNING",
		      "--limit", "0", NULL },
		    "state IN ('COMPENSATED', 'FAILED', 'RUNNING')"
		    " AND created_at >= '%s'",
		    0 },
		{ { "--since", "", "--limit", "100", NULL },
		    "created_at >= '%s'", 100 },
	};

	/* A whole second 10 minutes before the newest saga: a tie. */
	since = query_ids(f,
	    "SELECT to_char((max(created_at) - interval '10 minutes')"
	    " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	    " FROM saga_instance");
	for (size_t i = 0; i < N(cases); i++) {
		char where[512], lim[32] = "";

		if (cases[i].args[0] != NULL
		    && strcmp(cases[i].args[0], "--since") == 0) {
			cases[i].args[1] = since;
		}
		snprintf(where, sizeof(where), cases[i].where, since);
		if (cases[i].limit > 0) {
			snprintf(lim, sizeof(lim), " LIMIT %d",
			    cases[i].limit);
		}
		snprintf(sql, sizeof(sql),
		    "SELECT coalesce(string_agg(id::text, ','"
		    " ORDER BY created_at DESC, id DESC), '') FROM"
		    " (SELECT id, created_at FROM saga_instance WHERE %s"
		    " ORDER BY created_at DESC, id DESC%s) x",
		    where, lim);
		want = query_ids(f, sql);
		got  = list_ids(f, cases[i].args);
		/* Not trivially equal: rows, and ties among them. */
		assert_true(strlen(want) > 36);
		if (strcmp(want, got) != 0) {
			p = cases[i].args[1];
			fprintf(stderr, "case %zu (%s %s): list gave\n%s\nnot\n"
			    "%s\n",
			    i, cases[i].args[0] ? cases[i].args[0] : "",
			    p ? p : "", got, want);
			fail();
		}
		free(want);
		free(got);
	}
	free(since);
}

/* Runs argv (argv[0] a path) with its output thrown away, and prints
 * its peak memory (max RSS, KB) on stdout. Returns the exit status: 0,
 * or 1 if it failed. The tests run it as "sagactl_test --maxrss ARGV..."
 * (maxrss_of): a process forked from the test itself would count the
 * test's own memory (a fork starts with its parent's pages, and
 * ru_maxrss keeps the high-water mark of every image the process ran),
 * one forked from this small one does not. */
static int
maxrss_main(char **argv)
{
	struct rusage ru;
	int           status, fd;
	pid_t         pid;

	if ((pid = fork()) == 0) {
		if ((fd = open("/dev/null", O_WRONLY)) >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || wait4(pid, &status, 0, &ru) != pid
	    || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		return (1);
	}
	printf("%ld\n", ru.ru_maxrss);
	return (0);
}

/* Runs sagactl with --db, then args (NULL-terminated), its output thrown
 * away. Returns its peak memory (max RSS, KB), or -1 if it failed. */
static long
ctl_maxrss(fixture *f, ...)
{
	char   *argv[20], *out = NULL, *err = NULL;
	int     n = 0;
	va_list ap;
	char   *a;
	long    kb = -1;

	argv[n++] = "/proc/self/exe";
	argv[n++] = "--maxrss";
	argv[n++] = SAGACTL_PATH;
	argv[n++] = "--db";
	argv[n++] = f->conninfo;
	va_start(ap, f);
	while ((a = va_arg(ap, char *)) != NULL && n < 19) {
		argv[n++] = a;
	}
	va_end(ap);
	argv[n] = NULL;
	if (proc_run(argv, 120000 * scale(), &out, &err) == 0 && out != NULL) {
		kb = strtol(out, NULL, 10);
	}
	free(out);
	free(err);
	return (kb > 0 ? kb : -1);
}

/* The header line of the output of the last run. */
static char *
first_line(const fixture *f)
{
	size_t n    = strcspn(f->out, "\n");
	char  *line = strndup(f->out, n);

	assert_non_null(line);
	return (line);
}

/* list --limit 0 over more sagas than list reads at a time (a page of
 * 1,000): every saga once, in order, valid JSON; every row in the human
 * form, whose columns are as wide as the first page's (printed before
 * the next page is read: the rows of a page are the only ones held); and
 * the memory of the whole list is that of one page. */
static void
test_sagactl_plan_list_all_pages(void **state)
{
	fixture    *f      = *state;
	const char *all[9] = { "--limit", "0", NULL };
	char       *want, *got, *head0, *head1, *head;
	const char *line;
	proto_buf   raw;
	proto_doc  *doc;
	bool        more = true;
	size_t      i, n;
	long        page, whole;

	want = query_ids(f,
	    "SELECT string_agg(id::text, ',' ORDER BY created_at DESC,"
	    " id DESC) FROM saga_instance");
	got = list_ids(f, all);
	assert_int_equal(strlen(got), PLAN_SAGAS * 37 - 1);
	if (strcmp(want, got) != 0) {
		fprintf(stderr, "list --limit 0 --json: not every saga once, "
		                "in order\n");
		fail();
	}
	free(got);
	assert_int_equal(ctl(f, "list", "--limit", "0", "--json", NULL), 0);
	assert_non_null(doc = json_parse(f->out, &raw));
	assert_int_equal(
	    proto_val_bool(proto_val_get(proto_doc_root(doc), "more"), &more),
	    0);
	assert_false(more);
	proto_doc_free(doc);
	proto_buf_fini(&raw);

	/* The human form: a header, then each saga's line in order. */
	assert_int_equal(ctl(f, "list", "--limit", "1000", NULL), 0);
	head0 = first_line(f);
	assert_int_equal(ctl(f, "list", "--limit", "0", NULL), 0);
	head = first_line(f);
	assert_int_equal(count_lines(f->out), 1 + PLAN_SAGAS);
	assert_string_equal(f->err, "");
	line = strchr(f->out, '\n') + 1;
	for (i = 0, n = 0; i < PLAN_SAGAS; i++) {
		assert_memory_equal(line, want + n, 36);
		n += 37;
		line = strchr(line, '\n') + 1;
	}
	assert_int_equal(ctl(f, "list", "--limit", "1000", NULL), 0);
	head1 = first_line(f);
	/* Later rows are older: their ages are wider ("16m40s") than the
	 * first page's; the widths are the first page's all the same (an
	 * age that widened between the runs would change head1 too). */
	if (strcmp(head0, head1) == 0) {
		assert_string_equal(head, head0);
	}
	free(head0);
	free(head1);
	free(head);
	free(want);

	/* Memory: the whole list as much as one page. Not under the
	 * sanitizers, whose quarantine keeps the pages that were freed. */
	if (scale() > 1) {
		return;
	}
	page  = ctl_maxrss(f, "list", "--limit", "1000", "--json", NULL);
	whole = ctl_maxrss(f, "list", "--limit", "0", "--json", NULL);
	fprintf(stderr, "list --json max RSS: one page %ld KB, %d sagas "
	                "%ld KB\n",
	    page, PLAN_SAGAS, whole);
	assert_true(page > 0 && whole > 0);
	assert_true(whole < page + 8192);
	page  = ctl_maxrss(f, "list", "--limit", "1000", NULL);
	whole = ctl_maxrss(f, "list", "--limit", "0", NULL);
	fprintf(stderr, "list max RSS: one page %ld KB, %d sagas %ld KB\n",
	    page, PLAN_SAGAS, whole);
	assert_true(page > 0 && whole > 0);
	assert_true(whole < page + 8192);
}

/*
 * The ops group: a real sagad and test_participant.
 */

/* Sagas of the ops group: three steps a, b, c of participant tp, action
 * P.a / P.b / P.c and compensations P.ua / P.ub / P.uc for prefix P. */
/* A participant's error text with what a terminal would act on: an OSC
 * that sets the window title (ended by BEL), a C1 OSC (U+009D, as UTF-8)
 * and a DEL; and how sagactl shows it. */
#define ESC_ERROR      "\033]0;pwned\007card\302\235declined\177"
#define ESC_ERROR_SHOWN "\\x1b]0;pwned\\x07card\\u009ddeclined\\x7f"
/* A business key with a CSI (colour) and a C1 CSI (U+009B: clear the
 * screen), as the JSON input gives it, as stored, and as shown. */
#define ESC_KEY_JSON  "c\\u001b[31mRED\\u009b2J"
#define ESC_KEY       "c\033[31mRED\302\2332J"
#define ESC_KEY_SHOWN "c\\x1b[31mRED\\u009b2J"

static void
ops_saga_yaml(FILE *y, const char *name, const char *p, const char *b_timeout)
{
	fprintf(y,
	    "  - name: %s\n"
	    "    business_key: id\n"
	    "    steps:\n"
	    "      - {name: a, participant: tp, action: %s.a, compensation: "
	    "%s.ua}\n"
	    "      - {name: b, participant: tp, action: %s.b, compensation: "
	    "%s.ub%s%s}\n"
	    "      - {name: c, participant: tp, action: %s.c, compensation: "
	    "%s.uc}\n",
	    name, p, p, p, p, b_timeout ? ", timeout: " : "",
	    b_timeout ? b_timeout : "", p, p);
}

static int
ops_setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char     tp_url[64];
	FILE    *y;
	int      api, tpp;

	if (f == NULL
	    || pgtest_db_create(
	           "sagactl_ops", f->conninfo, sizeof(f->conninfo))
	        != 0
	    || migrate(f) != 0) {
		free(f);
		return (-1);
	}
	*state = f;
	snprintf(f->dir, sizeof(f->dir), "%s", test_tmpdir());
	snprintf(f->yaml, sizeof(f->yaml), "%s/ops.yaml", f->dir);
	snprintf(f->sagad_log, sizeof(f->sagad_log), "%s/sagad.log", f->dir);
	snprintf(f->tp_log, sizeof(f->tp_log), "%s/tp.log", f->dir);
	api = test_free_port();
	tpp = test_free_port();
	while (tpp == api) {
		tpp = test_free_port();
	}
	snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%d", api);
	snprintf(tp_url, sizeof(tp_url), "tcp://127.0.0.1:%d", tpp);
	if ((y = fopen(f->yaml, "w")) == NULL) {
		return (-1);
	}
	fprintf(y,
	    "participants:\n"
	    "  tp: {endpoints: [\"%s\"]}\n"
	    "defaults:\n"
	    "  timeout: 5s\n"
	    "  retry: {max_attempts: 2, initial_backoff: 10ms, max_backoff: "
	    "20ms}\n"
	    "  compensation_retry: {max_attempts: 2, initial_backoff: 10ms, "
	    "max_backoff: 20ms}\n"
	    "sagas:\n",
	    tp_url);
	ops_saga_yaml(y, "ok_order", "ok", NULL);
	ops_saga_yaml(y, "fail_order", "f", NULL);
	ops_saga_yaml(y, "park_retry", "pr", NULL);
	ops_saga_yaml(y, "park_resolve", "ps", NULL);
	ops_saga_yaml(y, "park_skip", "pk", NULL);
	ops_saga_yaml(y, "park_bulk", "pb", NULL);
	ops_saga_yaml(y, "slow_order", "s", "60s");
	ops_saga_yaml(y, "slow_bulk", "sb", "60s");
	ops_saga_yaml(y, "esc_order", "e", NULL);
	/* Its step b never answers, nor, once cancelled, the
	 * compensation of a (that of b is a null compensation: b never
	 * ran): it stays COMPENSATING. */
	fprintf(y,
	    "  - name: slow_undo\n"
	    "    business_key: id\n"
	    "    steps:\n"
	    "      - {name: a, participant: tp, action: su.a, compensation: "
	    "su.ua, timeout: 60s}\n"
	    "      - {name: b, participant: tp, action: su.b, compensation: "
	    "su.ub, timeout: 60s}\n");
	fclose(y);
	{
		/* A business failure at c; the compensation of b answers
		 * retry twice (its policy: 2 attempts), so the saga parks
		 * FAILED, and the next attempt (an operator's retry) is ok.
		 * The slow sagas' step b never answers. */
		char *tpargv[] = { TEST_PARTICIPANT_PATH, "--listen", tp_url,
			"--rule", "f.c=fail:card declined", "--rule",
			"pr.c=fail:card declined", "--rule", "pr.ub=retry:2",
			"--rule", "ps.c=fail:card declined", "--rule",
			"ps.ub=retry:2", "--rule", "pk.c=fail:card declined",
			"--rule", "pk.ub=retry:2", "--rule",
			"pb.c=fail:card declined", "--rule", "pb.ub=retry:2",
			"--rule", "s.b=timeout", "--rule", "sb.b=timeout",
			"--rule", "e.c=fail:" ESC_ERROR, "--rule",
			"su.b=timeout", "--rule", "su.ua=timeout", NULL };
		char *sagadargv[] = { SAGAD_PATH, "-c", f->yaml, "-l", f->url,
			"--db", f->conninfo, NULL };

		if (proc_start(&f->tp, tpargv, f->tp_log) != 0
		    || proc_start(&f->sagad, sagadargv, f->sagad_log) != 0
		    || test_ping(f->url, 20000 * scale()) != 0) {
			proc_dump_log(f->sagad_log, 40);
			proc_dump_log(f->tp_log, 40);
			return (-1);
		}
	}
	return (0);
}

/* The state of saga id in the log. */
static bool
state_is(fixture *f, const char *id, const char *state)
{
	char    sql[256];
	PGconn *c  = pgtest_connect(f->conninfo);
	bool    is = false;

	if (c == NULL) {
		return (false);
	}
	snprintf(sql, sizeof(sql),
	    "SELECT state FROM saga_instance WHERE id = '%s'", id);
	{
		PGresult *r = PQexec(c, sql);

		is = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
		    && strcmp(PQgetvalue(r, 0, 0), state) == 0;
		PQclear(r);
	}
	PQfinish(c);
	return (is);
}

typedef struct wait_arg {
	fixture    *f;
	const char *id;
	const char *state;
	const char *sql;
} wait_arg;

static bool
wait_state_cb(void *arg)
{
	wait_arg *w = arg;

	return (state_is(w->f, w->id, w->state));
}

static void
wait_state(fixture *f, const char *id, const char *state)
{
	wait_arg w = { f, id, state, NULL };

	if (!test_wait_until(wait_state_cb, &w, 20000 * scale())) {
		fprintf(stderr, "saga %s never became %s\n", id, state);
		proc_dump_log(f->sagad_log, 40);
		fail();
	}
}

static bool
wait_sql_cb(void *arg)
{
	wait_arg *w = arg;
	PGconn   *c = pgtest_connect(w->f->conninfo);
	long long n = 0;

	if (c == NULL) {
		return (false);
	}
	(void) pgtest_query_int(c, w->sql, &n);
	PQfinish(c);
	return (n > 0);
}

/* Starts saga name with input {"id": key} without waiting; the id goes
 * into id. */
static void
start_saga(fixture *f, const char *name, const char *key, char *id)
{
	char input[128];

	snprintf(input, sizeof(input), "{\"id\": \"%s\"}", key);
	assert_int_equal(ctl(f, "start", name, "--input", input, NULL), 0);
	assert_int_equal(strlen(f->out), 37);
	memcpy(id, f->out, 36);
	id[36] = '\0';
}

/* Starts a saga that ends FAILED (start --wait says so: exit 1). */
static void
start_failed(fixture *f, const char *name, const char *key, char *id)
{
	char input[128];

	snprintf(input, sizeof(input), "{\"id\": \"%s\"}", key);
	assert_int_equal(
	    ctl(f, "start", name, "--input", input, "--wait", NULL), 1);
	assert_true(has(f->out, "FAILED"));
	assert_true(has(f->err, "ended FAILED"));
	memcpy(id, f->out, 36);
	id[36] = '\0';
	assert_true(state_is(f, id, "FAILED"));
}

/*
 * A TCP proxy in front of sagad that loses answers: the requests reach
 * sagad, and sagactl does not learn what came of them.
 */

typedef enum lossy_mode {
	LOSSY_RESET, /* each faulty connection: the answer dropped, closed */
	LOSSY_SWALLOW, /* every answer dropped, the connection kept */
	LOSSY_SWALLOW_ONE, /* the first answer dropped, the rest kept */
} lossy_mode;

typedef struct lossy {
	int         lfd;
	int         port;
	int         target; /* sagad's port */
	lossy_mode  mode;
	atomic_int  faulty; /* connections still to be faulty (RESET) */
	atomic_int  dropped; /* answers dropped */
	atomic_bool stop;
	pthread_t   acceptor;
	pthread_t   conns[32];
	atomic_int  nconns;
} lossy;

typedef struct lossy_conn {
	lossy *p;
	int    cfd; /* sagactl's side */
	int    sfd; /* sagad's side */
	bool   faulty;
} lossy_conn;

static bool
lossy_write(int fd, const char *b, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w <= 0) {
			return (false);
		}
		b += w;
		n -= (size_t) w;
	}
	return (true);
}

/* Forwards both ways; from sagad, only the 8 bytes of the SP handshake
 * when the connection is faulty, then (RESET) it closes both sides at
 * the answer, or (SWALLOW) drops every answer. */
static void *
lossy_conn_main(void *arg)
{
	lossy_conn   *lc   = arg;
	lossy        *p    = lc->p;
	size_t        from = 0; /* bytes from sagad */
	struct pollfd pf[2];

	while (!atomic_load(&p->stop)) {
		char    b[65536];
		ssize_t n;

		pf[0] = (struct pollfd) { lc->cfd, POLLIN, 0 };
		pf[1] = (struct pollfd) { lc->sfd, POLLIN, 0 };
		if (poll(pf, 2, 100) <= 0) {
			continue;
		}
		if (pf[0].revents != 0) {
			if ((n = recv(lc->cfd, b, sizeof(b), 0)) <= 0
			    || !lossy_write(lc->sfd, b, (size_t) n)) {
				break;
			}
		}
		if (pf[1].revents != 0) {
			size_t keep;

			if ((n = recv(lc->sfd, b, sizeof(b), 0)) <= 0) {
				break;
			}
			keep = !lc->faulty ? (size_t) n
			    : from >= 8    ? 0
			    : (size_t) n < 8 - from ? (size_t) n
			                            : 8 - from;
			from += (size_t) n;
			if (keep > 0 && !lossy_write(lc->cfd, b, keep)) {
				break;
			}
			if (keep < (size_t) n) {
				atomic_fetch_add(&p->dropped, 1);
				if (p->mode == LOSSY_RESET) {
					break;
				}
				lc->faulty = p->mode != LOSSY_SWALLOW_ONE;
			}
		}
	}
	close(lc->cfd);
	close(lc->sfd);
	free(lc);
	return (NULL);
}

static void *
lossy_accept_main(void *arg)
{
	lossy *p = arg;

	while (!atomic_load(&p->stop)) {
		struct pollfd      pf = { p->lfd, POLLIN, 0 };
		struct sockaddr_in sa;
		lossy_conn        *lc;
		int                n;

		if (poll(&pf, 1, 100) <= 0) {
			continue;
		}
		if ((lc = calloc(1, sizeof(*lc))) == NULL) {
			break;
		}
		lc->p   = p;
		lc->cfd = accept(p->lfd, NULL, NULL);
		lc->sfd = socket(AF_INET, SOCK_STREAM, 0);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family      = AF_INET;
		sa.sin_port        = htons((uint16_t) p->target);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		n                  = atomic_load(&p->nconns);
		if (lc->cfd < 0 || lc->sfd < 0 || n >= 32
		    || connect(lc->sfd, (struct sockaddr *) &sa, sizeof(sa))
		        != 0) {
			if (lc->cfd >= 0) {
				close(lc->cfd);
			}
			if (lc->sfd >= 0) {
				close(lc->sfd);
			}
			free(lc);
			continue;
		}
		lc->faulty = p->mode != LOSSY_RESET
		    || atomic_fetch_sub(&p->faulty, 1) > 0;
		if (pthread_create(&p->conns[n], NULL, lossy_conn_main, lc)
		    != 0) {
			close(lc->cfd);
			close(lc->sfd);
			free(lc);
			continue;
		}
		atomic_store(&p->nconns, n + 1);
	}
	return (NULL);
}

/* Starts a proxy to sagad at url (tcp://127.0.0.1:PORT); its own URL
 * goes into purl. RESET: the first `faulty` connections lose their
 * first answer. */
static void
lossy_start(lossy *p, const char *url, lossy_mode mode, int faulty,
    char *purl, size_t len)
{
	struct sockaddr_in sa;
	socklen_t          sl = sizeof(sa);
	int                one = 1;

	memset(p, 0, sizeof(*p));
	p->mode   = mode;
	p->target = atoi(strrchr(url, ':') + 1);
	atomic_store(&p->faulty, faulty);
	assert_true((p->lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	(void) setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family      = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(
	    bind(p->lfd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	assert_int_equal(listen(p->lfd, 16), 0);
	assert_int_equal(
	    getsockname(p->lfd, (struct sockaddr *) &sa, &sl), 0);
	p->port = ntohs(sa.sin_port);
	snprintf(purl, len, "tcp://127.0.0.1:%d", p->port);
	assert_int_equal(
	    pthread_create(&p->acceptor, NULL, lossy_accept_main, p), 0);
}

static void
lossy_stop(lossy *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->acceptor, NULL);
	for (int i = 0; i < atomic_load(&p->nconns); i++) {
		pthread_join(p->conns[i], NULL);
	}
	close(p->lfd);
}

/* How many sagas have business key key (input {"id": key}). */
static long long
sagas_with_key(fixture *f, const char *key)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM saga_instance WHERE business_key = '%s'",
	    key);
	return (query_int(f, sql));
}

/* The saga that idempotency key key started, into id ("" if none). */
static void
saga_of_start_key(fixture *f, const char *key, char *id)
{
	PGconn   *c = pgtest_connect(f->conninfo);
	PGresult *r;
	char      sql[256];

	assert_non_null(c);
	snprintf(sql, sizeof(sql),
	    "SELECT saga_id FROM saga_start_key WHERE key = '%s'", key);
	r = PQexec(c, sql);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	snprintf(id, 40, "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	PQfinish(c);
}

/* Runs sagactl with args (NULL terminated) through a lossy proxy in
 * front of sagad (mode, faulty as lossy_start), then stops the proxy,
 * so that a failed test leaves the fixture's URL as it was. Returns the
 * exit status; *dropped gets how many answers the proxy dropped. */
static int
ctl_lossy(fixture *f, lossy_mode mode, int faulty, int *dropped, ...)
{
	lossy   p;
	char    keep[64];
	char   *args[16] = { NULL };
	int     n = 0, rv;
	va_list ap;

	va_start(ap, dropped);
	while (n < 15 && (args[n] = va_arg(ap, char *)) != NULL) {
		n++;
	}
	va_end(ap);
	args[n] = NULL;
	memcpy(keep, f->url, sizeof(keep));
	lossy_start(&p, keep, mode, faulty, f->url, sizeof(f->url));
	rv = ctl(f, args[0], args[1], args[2], args[3], args[4], args[5],
	    args[6], args[7], args[8], args[9], args[10], args[11], args[12],
	    args[13], args[14], NULL);
	lossy_stop(&p);
	memcpy(f->url, keep, sizeof(keep));
	*dropped = atomic_load(&p.dropped);
	if (rv != (mode == LOSSY_RESET ? 0 : 3)) {
		fprintf(stderr, "%s through the proxy: exit %d\nstdout:\n%s"
		                "stderr:\n%s",
		    args[0], rv, f->out, f->err);
	}
	return (rv);
}

/* start whose answer is lost after sagad got the START: the connection
 * closes (Connection reset) before the answer reaches sagactl. Before,
 * sagactl said "Connection reset" with exit 1 and nothing on stdout,
 * which docs/cli.md read as "was not started", though the saga was
 * started (and completed): a script that tried again started it twice.
 * Now sagactl's START always has an idempotency key (its own when
 * --key is not given) and goes again with it: sagad answers the saga
 * the first one started. Exactly one saga, its id on stdout, exit 0;
 * the same with the user's --key (created false: the key's saga
 * existed when the second START came). */
static void
test_sagactl_start_answer_lost(void **state)
{
	fixture *f = *state;
	char     id[40], kid[40];
	int      dropped;

	assert_int_equal(ctl_lossy(f, LOSSY_RESET, 1, &dropped, "start",
	                     "ok_order", "--input", "{\"id\": \"al-1\"}",
	                     NULL),
	    0);
	assert_int_equal(dropped, 1);
	assert_int_equal(strlen(f->out), 37);
	memcpy(id, f->out, 36);
	id[36] = '\0';
	assert_true(has(f->err, "answer to the first START was lost"));
	assert_true(has(f->err, "started once"));
	assert_true(has(f->err, "sagactl-"));
	assert_int_equal(sagas_with_key(f, "al-1"), 1);
	wait_state(f, id, "COMPLETED");

	/* The user's key: the same, and sagad says the key's saga was
	 * there already (created false). */
	assert_int_equal(ctl_lossy(f, LOSSY_RESET, 1, &dropped, "start",
	                     "ok_order", "--input", "{\"id\": \"al-2\"}",
	                     "--key", "al-key-2", "--json", NULL),
	    0);
	assert_int_equal(dropped, 1);
	assert_true(has(f->out, "\"created\": false"));
	assert_true(has(f->err, "al-key-2\": saga "));
	assert_true(has(f->err, "already started"));
	assert_int_equal(sagas_with_key(f, "al-2"), 1);
	saga_of_start_key(f, "al-key-2", kid);
	assert_true(has(f->out, kid));
}

typedef struct ctl_start_arg {
	fixture *f;
	int      rv;
} ctl_start_arg;

static void *
ctl_start_main(void *arg)
{
	ctl_start_arg *a = arg;

	a->rv = ctl(a->f, "start", "ok_order", "--input", "{\"id\": \"du-1\"}",
	    NULL);
	return (NULL);
}

/* sagad's database goes away while the START's commit is in flight:
 * sagad answers EUNKNOWN, and start sends the START again with its key,
 * as for a lost answer: the saga starts once, its id printed. It said
 * "nothing was changed; try again later" (exit 1) to an EUNAVAIL that
 * said the opposite, and an operator who did so started it twice. */
static void
test_sagactl_start_db_lost_in_commit(void **state)
{
	fixture      *f = *state;
	ctl_start_arg a = { f, -1 };
	pthread_t     th;
	PGconn       *lk;
	int           i;

	assert_non_null(lk = pgtest_connect(f->conninfo));
	assert_int_equal(pgtest_exec(lk,
	                     "BEGIN; LOCK TABLE saga_start_key IN SHARE ROW "
	                     "EXCLUSIVE MODE"),
	    0);
	assert_int_equal(pthread_create(&th, NULL, ctl_start_main, &a), 0);
	for (i = 0; i < 1500 &&
	     query_int(f,
	         "SELECT count(*) FROM pg_stat_activity WHERE datname = "
	         "current_database() AND wait_event_type = 'Lock' AND query "
	         "LIKE '%INSERT INTO saga_start_key%'")
	         < 1;
	     i++) {
		poll(NULL, 0, 10);
	}
	/* sagad's sessions end; the lock goes with this one. */
	assert_true(query_int(f,
	                "SELECT count(pg_terminate_backend(pid)) FROM "
	                "pg_stat_activity WHERE datname = current_database() "
	                "AND application_name = 'sagad'")
	    > 0);
	PQfinish(lk);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(i < 1500);
	if (a.rv != 0) {
		fail_msg("start exited %d:\n%s%s", a.rv, f->out, f->err);
	}
	assert_int_equal(strlen(f->out), 37);
	assert_true(has(f->err, "answer to the first START was lost"));
	assert_int_equal(sagas_with_key(f, "du-1"), 1);
}

/* start --wait --timeout bounds the whole command: a START whose first
 * answer is lost (swallowed, the connection kept: sagactl waits out a
 * request's 5 s and sends it again) leaves the wait what is left of the
 * --timeout, not a --timeout of its own. slow_order never ends. */
static void
test_sagactl_start_wait_timeout_whole(void **state)
{
	fixture        *f = *state;
	struct timespec a, b;
	int64_t         ms;
	int             dropped;

	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(ctl_lossy(f, LOSSY_SWALLOW_ONE, 0, &dropped,
	                     "start", "slow_order", "--input",
	                     "{\"id\": \"tw-1\"}", "--wait", "--timeout",
	                     "7s", NULL),
	    1);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (int64_t) (b.tv_sec - a.tv_sec) * 1000 +
	    (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_int_equal(dropped, 1);
	assert_true(has(f->err, "answer to the first START was lost"));
	/* The 7 s from the first send; 5 s more on the old code. */
	if (ms < 6500 || ms > 10000) {
		fail_msg("start --wait --timeout 7s took %lld ms",
		    (long long) ms);
	}
}

/* start and resolve whose every answer is lost (sagad gets each
 * request, the proxy drops what it answers): no answer within the
 * request's 5 s. start exits 3, not 1, with nothing on stdout (with
 * --json, a document with the key and no id), and says that the saga
 * may have been started and the key to start it with, once: the same
 * start with that --key, through sagad itself, answers the saga that
 * the lost START started. A resolve says that it may have been
 * applied, exit 3. */
static void
test_sagactl_start_outcome_unknown(void **state)
{
	fixture   *f = *state;
	proto_buf  raw;
	proto_doc *doc;
	char       key[128], id[40], kid[40];
	int        dropped;

	start_failed(f, "park_resolve", "ou-r", id);
	assert_int_equal(ctl_lossy(f, LOSSY_SWALLOW, 0, &dropped, "start",
	                     "ok_order", "--input", "{\"id\": \"ou-1\"}",
	                     "--json", NULL),
	    3);
	assert_true(dropped >= 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "got the request but did not answer"));
	assert_true(has(f->err, "may have been started"));
	assert_non_null(doc = json_parse(f->out, &raw));
	assert_true(jnull(proto_doc_root(doc), "id"));
	jstr(proto_doc_root(doc), "key", key, sizeof(key));
	proto_doc_free(doc);
	proto_buf_fini(&raw);
	assert_int_equal(strncmp(key, "sagactl-", 8), 0);
	assert_true(has(f->err, key));
	/* Without --json: nothing on stdout. */
	assert_int_equal(ctl_lossy(f, LOSSY_SWALLOW, 0, &dropped, "resolve",
	                     id, "--note", "by hand", NULL),
	    3);
	assert_string_equal(f->out, "");
	assert_one_line_error(f);
	assert_true(has(f->err, "the resolve may have been applied"));
	wait_state(f, id, "RESOLVED");

	/* sagad did start it, once, under the key that sagactl gave. */
	assert_int_equal(sagas_with_key(f, "ou-1"), 1);
	saga_of_start_key(f, key, kid);
	assert_int_equal(strlen(kid), 36);
	assert_int_equal(ctl(f, "start", "ok_order", "--input",
	                     "{\"id\": \"ou-1\"}", "--key", key, NULL),
	    0);
	assert_true(has(f->out, kid));
	assert_true(has(f->err, "already started"));
	assert_int_equal(sagas_with_key(f, "ou-1"), 1);
}

/* A command that changes sagas and then cannot write its output (here
 * /dev/full) was carried out: it exits 3 ("the outcome is not known"
 * to the caller: do not repeat it blindly), not 1, which says that it
 * failed; a script that started the saga again made a second one. And
 * --help to an output that cannot be written exits 1, not 0. */
static void
test_sagactl_output_lost(void **state)
{
	fixture          *f = *state;
	static const char sh[] =
	    "exec \"$0\" --db \"$1\" --coordinator \"$2\" start ok_order "
	    "--input '{\"id\": \"ol-1\"}' >/dev/full";
	static const char fsh[] =
	    "exec \"$0\" --db \"$1\" --coordinator \"$2\" start fail_order "
	    "--input '{\"id\": \"ol-2\"}' --wait >/dev/full";
	static const char help[] = "exec \"$0\" list --help >/dev/full";
	char *argv[] = { "/bin/sh", "-c", (char *) sh, SAGACTL_PATH,
		f->conninfo, f->url, NULL };
	char *fargv[] = { "/bin/sh", "-c", (char *) fsh, SAGACTL_PATH,
		f->conninfo, f->url, NULL };
	char *hargv[] = { "/bin/sh", "-c", (char *) help, SAGACTL_PATH, NULL };
	char *out = NULL, *err = NULL;

	assert_int_equal(proc_run(argv, 60000 * scale(), &out, &err), 3);
	assert_non_null(err);
	assert_true(has(err, "writing the output: "));
	assert_true(has(err, "the command was carried out"));
	assert_int_equal(sagas_with_key(f, "ol-1"), 1);
	free(out);
	free(err);
	out = err = NULL;
	/* start --wait of a saga that fails (exit 1 with its output) whose
	 * output is lost: 3 too; 1 with nothing on stdout says that
	 * nothing was started. */
	assert_int_equal(proc_run(fargv, 60000 * scale(), &out, &err), 3);
	assert_true(has(err, "the command was carried out"));
	assert_int_equal(sagas_with_key(f, "ol-2"), 1);
	free(out);
	free(err);
	out = err = NULL;
	assert_int_equal(proc_run(hargv, 60000 * scale(), &out, &err), 1);
	assert_non_null(err);
	assert_true(has(err, "writing the output: "));
	free(out);
	free(err);
	/* A command that changes sagas and changed none: 1, as any failed
	 * write (it said "carried out, at least in part", exit 3). */
	{
		static const char nsh[] =
		    "exec \"$0\" --db \"$1\" --coordinator \"$2\" --json "
		    "retry --saga nosuch --yes >/dev/full";
		static const char psh[] =
		    "exec \"$0\" --db \"$1\" --json purge --older-than "
		    "36500d --yes >/dev/full";
		char *nargv[] = { "/bin/sh", "-c", (char *) nsh, SAGACTL_PATH,
			f->conninfo, f->url, NULL };
		char *pargv[] = { "/bin/sh", "-c", (char *) psh, SAGACTL_PATH,
			f->conninfo, NULL };

		char **runs[] = { nargv, pargv };

		for (size_t i = 0; i < 2; i++) {
			out = err = NULL;
			assert_int_equal(
			    proc_run(runs[i], 60000 * scale(), &out, &err), 1);
			assert_true(has(err, "writing the output: "));
			assert_false(has(err, "carried out"));
			free(out);
			free(err);
		}
	}
}


/* Runs sagactl args (NULL-terminated, at most 8) with stdout a pipe
 * whose read end is closed (a pipeline whose reader quit: | head) and
 * SIGPIPE at its default, as a shell leaves it; stderr to errpath.
 * Returns its wait status. */
static int
ctl_into_closed_pipe(fixture *f, const char *errpath, ...)
{
	char   *argv[16];
	int     n = 0, fds[2], st = -1, fd;
	va_list ap;
	char   *a;
	pid_t   pid;

	argv[n++] = SAGACTL_PATH;
	argv[n++] = "--db";
	argv[n++] = f->conninfo;
	va_start(ap, errpath);
	while ((a = va_arg(ap, char *)) != NULL && n < 15) {
		argv[n++] = a;
	}
	va_end(ap);
	argv[n] = NULL;
	assert_int_equal(pipe(fds), 0);
	close(fds[0]);
	if ((pid = fork()) == 0) {
		signal(SIGPIPE, SIG_DFL);
		dup2(fds[1], 1);
		if ((fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >=
		    0) {
			dup2(fd, 2);
		}
		execv(SAGACTL_PATH, argv);
		_exit(127);
	}
	close(fds[1]);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return (st);
}

/* A reader that quits (sagactl list | head) is a write error: exit 1
 * (3 for a command that changed sagas) with a message, not a SIGPIPE
 * that killed sagactl with status 141, a bulk repair halfway. */
static void
test_sagactl_closed_pipe(void **state)
{
	fixture *f = *state;
	char     errpath[600], *err;
	int      st;

	snprintf(errpath, sizeof(errpath), "%s/closed-pipe.err", f->dir);
	st = ctl_into_closed_pipe(f, errpath, "list", "--limit", "0", NULL);
	assert_false(WIFSIGNALED(st));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	assert_non_null(err = slurp(errpath));
	assert_true(has(err, "writing the output: Broken pipe"));
	free(err);
}

/* start --wait: the id, the outcome, and the exit status. */
static void
test_sagactl_start_wait(void **state)
{
	fixture *f = *state;
	char     id[40];

	assert_int_equal(ctl(f, "start", "ok_order", "--input",
	                     "{\"id\": \"o-1\"}", "--wait", NULL),
	    0);
	assert_int_equal(count_lines(f->out), 2);
	assert_true(has(f->out, "\nCOMPLETED\n"));
	memcpy(id, f->out, 36);
	id[36] = '\0';
	assert_true(state_is(f, id, "COMPLETED"));

	assert_int_equal(ctl(f, "start", "fail_order", "--input",
	                     "{\"id\": \"o-2\"}", "--wait", NULL),
	    1);
	assert_true(has(f->out, "COMPENSATED: step c failed: card declined"));
	assert_one_line_error(f);
	assert_true(has(f->err, "ended COMPENSATED"));
	assert_true(has(f->err, "sagactl show"));

	/* show reads what sagad wrote: the story of the compensation. */
	memcpy(id, f->out, 36);
	assert_int_equal(ctl(f, "show", id, NULL), 0);
	assert_true(has(f->out, "Because      step c failed: card declined"));
	assert_true(has(f->out, "compensated"));

	/* --json, from an input file. */
	{
		char path[600];

		snprintf(path, sizeof(path), "@%s/input.json", f->dir);
		put_file(path + 1, "{\"id\": \"o-3\", \"n\": [1, 2.5, null]}");
		assert_int_equal(ctl(f, "start", "ok_order", "--input", path,
		                     "--wait", "--json", NULL),
		    0);
		assert_true(has(f->out, "\"state\": \"COMPLETED\""));
		assert_true(has(f->out, "\"created\": true"));
	}
}

/* The value of gauge name (no labels) at the metrics endpoint url (read
 * with curl), or -1. */
static double
gauge(const char *url, const char *name)
{
	char  *argv[] = { "/usr/bin/env", "curl", "-sf", "--max-time", "5",
		 (char *) url, NULL };
	char  *out    = NULL, *line;
	size_t n      = strlen(name);
	double v      = -1;

	if (proc_run(argv, 10000 * scale(), &out, NULL) == 0 && out != NULL) {
		for (line = out; line != NULL && *line != '\0';) {
			if (strncmp(line, name, n) == 0 && line[n] == ' ') {
				v = strtod(line + n + 1, NULL);
				break;
			}
			line = strchr(line, '\n');
			line = line != NULL ? line + 1 : NULL;
		}
	}
	free(out);
	return (v);
}

static bool
two_waiting_cb(void *murl)
{
	return (gauge(murl, "saga_api_waiting") == 2.0);
}

static char *
slurp(const char *path)
{
	FILE  *fp = fopen(path, "r");
	char  *buf;
	size_t n;

	assert_non_null(fp);
	assert_non_null(buf = calloc(1, 65536));
	n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return (buf);
}

/* start --wait, with and without --json, whose wait fails after sagad
 * answered the START: sagad stops (SIGTERM) while both wait (its gauge
 * saga_api_waiting counts them), and answers their WAITs ECLOSED. Each
 * sagactl must say that the saga was started and that waiting for it
 * failed, with exit status 3, the id printed (the line, or the JSON
 * document of the saga as last answered) and in the error; never that
 * sagad refused, nor to try again: before, the error had the START's
 * wording ("sagad refused: ...; try again when it is back"), exit 1, and
 * with --json no id at all, so that whoever followed the advice started
 * the saga twice. Runs its own sagad, on its own database. */
static void
test_sagactl_start_wait_fails(void **state)
{
	fixture    *f = *state;
	fixture     g;
	char        url[64], maddr[32], murl[64], log[600];
	char        outp[2][600], errp[2][600], sql[256];
	const char *input[2] = { "{\"id\": \"wf-1\"}", "{\"id\": \"wf-2\"}" };
	int         mport, status;

	memset(&g, 0, sizeof(g));
	assert_int_equal(pgtest_db_create("sagactl_wait_fails",
	                     f->own_conninfo, sizeof(f->own_conninfo)),
	    0);
	memcpy(g.conninfo, f->own_conninfo, sizeof(g.conninfo));
	assert_int_equal(migrate(&g), 0);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", test_free_port());
	mport = test_free_port();
	snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", mport);
	snprintf(murl, sizeof(murl), "http://%s/metrics", maddr);
	snprintf(log, sizeof(log), "%s/wait-fails-sagad.log", f->dir);
	{
		char *argv[] = { SAGAD_PATH, "-c", f->yaml, "-l", url, "--db",
			f->own_conninfo, "--metrics-listen", maddr, NULL };

		assert_int_equal(proc_start(&f->own_sagad, argv, log), 0);
		assert_int_equal(test_ping(url, 20000 * scale()), 0);
	}
	/* slow_order's step b never answers: both wait until sagad
	 * stops. */
	for (int i = 0; i < 2; i++) {
		char  bglog[600], cmd[4096];
		char *argv[] = { "/bin/sh", "-c", cmd, NULL };

		snprintf(outp[i], sizeof(outp[i]), "%s/wait-fails-%d.out",
		    f->dir, i);
		snprintf(errp[i], sizeof(errp[i]), "%s/wait-fails-%d.err",
		    f->dir, i);
		snprintf(bglog, sizeof(bglog), "%s/wait-fails-%d.log", f->dir,
		    i);
		snprintf(cmd, sizeof(cmd),
		    "exec '%s' --db '%s' --coordinator '%s' start slow_order "
		    "--input '%s' --wait %s >'%s' 2>'%s'",
		    SAGACTL_PATH, f->own_conninfo, url, input[i],
		    i == 1 ? "--json" : "", outp[i], errp[i]);
		assert_int_equal(proc_start(&f->bg[i], argv, bglog), 0);
	}
	if (!test_wait_until(two_waiting_cb, murl, 20000 * scale())) {
		proc_dump_log(log, 40);
		fail_msg("saga_api_waiting never reached 2 (%g)",
		    gauge(murl, "saga_api_waiting"));
	}
	assert_int_equal(proc_signal(f->own_sagad, SIGTERM), 0);
	for (int i = 0; i < 2; i++) {
		char *out, *err, id[40];

		assert_int_equal(proc_wait(f->bg[i], 20000 * scale(), &status),
		    0);
		out = slurp(outp[i]);
		err = slurp(errp[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 3) {
			fprintf(stderr,
			    "start --wait%s: status %#x, stdout:\n%s"
			    "stderr:\n%s",
			    i == 1 ? " --json" : "", status, out, err);
		}
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 3);
		if (i == 0) {
			/* The id, alone on its line. */
			assert_int_equal(strlen(out), 37);
			memcpy(id, out, 36);
		} else {
			proto_buf  raw;
			proto_doc *doc;
			char       b[64];

			assert_non_null(doc = json_parse(out, &raw));
			assert_string_equal(
			    jstr(proto_doc_root(doc), "state", b, sizeof(b)),
			    "RUNNING");
			assert_true(
			    jint(proto_doc_root(doc), "version") >= 1);
			jstr(proto_doc_root(doc), "id", id, sizeof(id));
			proto_doc_free(doc);
			proto_buf_fini(&raw);
		}
		id[36] = '\0';
		snprintf(sql, sizeof(sql),
		    "saga %s was started, but waiting for it to end failed: "
		    "sagad answered ECLOSED",
		    id);
		assert_true(has(err, sql));
		assert_true(has(err, "do not start it again"));
		assert_true(count_lines(err) == 1);
		assert_null(strstr(err, "refused"));
		assert_null(strstr(err, "try again"));
		assert_null(strstr(err, "nothing was changed"));
		/* Started once, and still running in the log. */
		snprintf(sql, sizeof(sql),
		    "SELECT count(*) FROM saga_instance WHERE id = '%s' AND "
		    "state = 'RUNNING'",
		    id);
		{
			PGconn   *c = pgtest_connect(f->own_conninfo);
			long long n = -1;

			assert_non_null(c);
			assert_int_equal(pgtest_query_int(c, sql, &n), 0);
			PQfinish(c);
			assert_int_equal(n, 1);
		}
		free(out);
		free(err);
	}
	assert_int_equal(proc_wait(f->own_sagad, 20000 * scale(), &status),
	    0);
}

/* --timeout as long as it can be written (9223372036854775807ms) waits
 * for the end. sagactl added it to the clock: a signed overflow, which
 * UBSan stops sagactl at (CI runs these tests under it); unchecked, the
 * overflow happened to wrap back when the time left was computed. */
static void
test_sagactl_wait_longest_timeout(void **state)
{
	fixture    *f   = *state;
	const char *max = "9223372036854775807ms";
	char        id[40], line[128];
	int         rv;

	rv = ctl(f, "start", "ok_order", "--input", "{\"id\": \"lt-1\"}",
	    "--wait", "--timeout", max, NULL);
	if (rv != 0) {
		fprintf(stderr, "start --wait --timeout %s: exit %d: %s%s",
		    max, rv, f->out, f->err);
	}
	assert_int_equal(rv, 0);
	assert_true(has(f->out, "\nCOMPLETED\n"));
	assert_string_equal(f->err, "");
	memcpy(id, f->out, 36);
	id[36] = '\0';
	rv = ctl(f, "wait", id, "--timeout", max, NULL);
	if (rv != 0) {
		fprintf(stderr, "wait --timeout %s: exit %d: %s%s", max, rv,
		    f->out, f->err);
	}
	assert_int_equal(rv, 0);
	snprintf(line, sizeof(line), "%s COMPLETED\n", id);
	assert_string_equal(f->out, line);
	assert_string_equal(f->err, "");
}

/* The same idempotency key gives the same saga, not a second one. */
static void
test_sagactl_start_key(void **state)
{
	fixture *f = *state;
	char     id[40];

	assert_int_equal(ctl(f, "start", "ok_order", "--input",
	                     "{\"id\": \"k-1\"}", "--key", "order-k-1", NULL),
	    0);
	memcpy(id, f->out, 36);
	id[36] = '\0';
	assert_int_equal(
	    ctl(f, "start", "ok_order", "--input", "{\"id\": \"k-1\"}",
	        "--key", "order-k-1", "--json", NULL),
	    0);
	assert_true(has(f->out, id));
	assert_true(has(f->out, "\"created\": false"));
	assert_true(has(f->err, "already started"));
	/* The same key with another input: a conflict. */
	assert_int_equal(ctl(f, "start", "ok_order", "--input",
	                     "{\"id\": \"k-2\"}", "--key", "order-k-1", NULL),
	    1);
	assert_one_line_error(f);
	assert_true(has(f->err, "ECONFLICT"));
	/* An unknown saga. */
	assert_int_equal(ctl(f, "start", "nosuch", "--input", "{}", NULL), 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "sagactl defs"));
	/* One whose name, echoed in sagad's ERROR, is cut to fit its 512
	 * bytes inside a character: sagad cuts it before the character.
	 * Before, the message ended inside an "é" and sagactl read
	 * "malformed reply: string at byte 27 is not valid UTF-8". */
	{
		char name[601];

		for (int i = 0; i < 300; i++) {
			memcpy(name + 2 * i, "\xc3\xa9", 2);
		}
		name[600] = '\0';
		assert_int_equal(
		    ctl(f, "start", name, "--input", "{}", NULL), 1);
		assert_one_line_error(f);
		assert_true(has(f->err, "unknown saga"));
		assert_true(has(f->err, "ENOTFOUND"));
	}
}

/* start --trace: the caller's W3C traceparent is the saga's (in the log,
 * as show prints it); a malformed one is refused before anything is
 * sent. */
static void
test_sagactl_start_trace(void **state)
{
	fixture         *f = *state;
	const char      *tp =
	    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
	proto_buf        raw;
	proto_doc       *doc;
	char             id[40], b[256];

	assert_int_equal(ctl(f, "start", "ok_order", "--input",
	                     "{\"id\": \"t-1\"}", "--trace", tp, "--wait",
	                     NULL),
	    0);
	memcpy(id, f->out, 36);
	id[36] = '\0';
	assert_int_equal(ctl(f, "show", "--json", id, NULL), 0);
	assert_non_null(doc = json_parse(f->out, &raw));
	assert_string_equal(
	    jstr(proto_doc_root(doc), "traceparent", b, sizeof(b)), tp);
	assert_string_equal(jstr(proto_doc_root(doc), "trace_id", b, sizeof(b)),
	    "0af7651916cd43dd8448eb211c80319c");
	proto_doc_free(doc);
	proto_buf_fini(&raw);

	assert_int_equal(ctl(f, "start", "ok_order", "--input",
	                     "{\"id\": \"t-2\"}", "--trace", "00-nothex-01",
	                     NULL),
	    2);
	assert_one_line_error(f);
	assert_true(has(f->err, "W3C traceparent"));
}

/* retry: a FAILED saga resumes its compensation now, and finishes. */
static void
test_sagactl_retry(void **state)
{
	fixture *f = *state;
	char     id[40];

	start_failed(f, "park_retry", "r-1", id);
	assert_int_equal(ctl(f, "show", id, NULL), 0);
	assert_true(has(f->out, "parked at compensation of step b"));
	assert_int_equal(
	    ctl(f, "retry", id, "--note", "inventory is back", NULL), 0);
	assert_true(has(f->out, id));
	assert_true(has(f->out, "retried"));
	wait_state(f, id, "COMPENSATED");
	assert_int_equal(ctl(f, "show", id, NULL), 0);
	assert_true(has(f->out, "operator retry"));
	assert_true(has(f->out, "inventory is back"));
	/* Not FAILED any more: refused, exit 1. */
	assert_int_equal(ctl(f, "retry", id, NULL), 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "ESTATE"));
}

/* resolve: a FAILED saga becomes RESOLVED with the note in the log. */
static void
test_sagactl_resolve(void **state)
{
	fixture *f = *state;
	char     id[40], sql[256];

	start_failed(f, "park_resolve", "s-1", id);
	assert_int_equal(ctl(f, "resolve", id, "--note",
	                     "stock released by hand in the WMS", NULL),
	    0);
	assert_true(has(f->out, "resolved: now RESOLVED"));
	assert_true(state_is(f, id, "RESOLVED"));
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM saga_event WHERE saga_id = '%s' AND event "
	    "= 'saga_resolved' AND error = 'stock released by hand in the "
	    "WMS'",
	    id);
	assert_int_equal(query_int(f, sql), 1);
	assert_int_equal(ctl(f, "list", "--state", "RESOLVED", NULL), 0);
	assert_true(has(f->out, id));
	assert_int_equal(ctl(f, "resolve", id, "--note", "again", NULL), 1);
	assert_one_line_error(f);
}

/* skip: the stuck compensation is marked done by hand and the saga goes
 * on with the next one; another step than the stuck one is refused. */
static void
test_sagactl_skip(void **state)
{
	fixture *f = *state;
	char     id[40], sql[256];

	start_failed(f, "park_skip", "k-1", id);
	assert_int_equal(
	    ctl(f, "skip", id, "--step", "a", "--note", "x", NULL), 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "the stuck step is b"));
	assert_true(state_is(f, id, "FAILED"));
	assert_int_equal(ctl(f, "skip", id, "--step", "b", "--note",
	                     "released by hand", NULL),
	    0);
	assert_true(has(f->out, "step skipped"));
	wait_state(f, id, "COMPENSATED");
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM saga_event WHERE saga_id = '%s' AND event "
	    "= 'step_skipped' AND step = 1 AND error = 'released by hand'",
	    id);
	assert_int_equal(query_int(f, sql), 1);
	assert_int_equal(ctl(f, "show", id, "--json", NULL), 0);
	assert_true(has(f->out, "\"compensation_status\": \"skipped\""));
}

/* cancel: a running saga stops and compensates. */
static void
test_sagactl_cancel(void **state)
{
	fixture *f = *state;
	char     id[40], sql[256];
	wait_arg w = { f, NULL, NULL, sql };

	start_saga(f, "slow_order", "c-1", id);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM saga_event WHERE saga_id = '%s' AND event "
	    "= 'step_sent' AND step = 1",
	    id);
	assert_true(test_wait_until(wait_sql_cb, &w, 20000 * scale()));
	assert_int_equal(ctl(f, "list", "--state", "RUNNING", NULL), 0);
	assert_true(has(f->out, id));
	assert_int_equal(ctl(f, "show", id, NULL), 0);
	assert_true(has(f->out, "attempt 1 in flight"));
	assert_int_equal(
	    ctl(f, "cancel", id, "--note", "customer asked", NULL), 0);
	assert_true(has(f->out, "cancelled"));
	wait_state(f, id, "COMPENSATED");
	assert_int_equal(ctl(f, "show", id, NULL), 0);
	assert_true(has(f->out, "cancelled: customer asked"));
	/* Already over: sagad refuses, nothing changes. */
	assert_int_equal(ctl(f, "cancel", id, NULL), 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "not cancelled: saga is COMPENSATED"));
}

/* A cancel that changes nothing is not reported as done: a second cancel
 * of a saga that compensates (its note would be lost: no second
 * cancel_requested event), a cancel of a FAILED saga (parked, not
 * ended). Each says "not cancelled: saga is STATE", exit 1. Before, the
 * second cancel printed "cancelled: now COMPENSATING", exit 0, and the
 * FAILED saga "already ended FAILED". */
static void
test_sagactl_cancel_changes_nothing(void **state)
{
	fixture *f = *state;
	char     id[40], parked[40], sql[256];
	wait_arg w = { f, NULL, NULL, sql };

	start_saga(f, "slow_undo", "cn-1", id);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM saga_event WHERE saga_id = '%s' AND event "
	    "= 'step_sent' AND step = 1",
	    id);
	assert_true(test_wait_until(wait_sql_cb, &w, 20000 * scale()));
	assert_int_equal(
	    ctl(f, "cancel", id, "--note", "first note", NULL), 0);
	assert_true(has(f->out, "cancelled: now COMPENSATING"));
	/* The compensation of a is sent, and never answered. */
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM saga_event WHERE saga_id = '%s' AND event "
	    "= 'step_sent' AND step = 0 AND kind = 1",
	    id);
	assert_true(test_wait_until(wait_sql_cb, &w, 20000 * scale()));
	assert_true(state_is(f, id, "COMPENSATING"));
	assert_int_equal(
	    ctl(f, "cancel", id, "--note", "second note", NULL), 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "not cancelled: saga is COMPENSATING"));
	assert_true(has(f->err, "ESTATE"));
	assert_string_equal(f->out, "");
	assert_int_equal(ctl(f, "cancel", id, "--json", NULL), 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "not cancelled: saga is COMPENSATING"));
	assert_string_equal(f->out, "");
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM saga_event WHERE saga_id = '%s' AND event "
	    "= 'cancel_requested'",
	    id);
	assert_int_equal(query_int(f, sql), 1);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM saga_event WHERE saga_id = '%s' AND event "
	    "= 'cancel_requested' AND error = 'first note'",
	    id);
	assert_int_equal(query_int(f, sql), 1);

	/* FAILED: parked for an operator, not ended. */
	start_failed(f, "park_retry", "cn-2", parked);
	assert_int_equal(ctl(f, "cancel", parked, NULL), 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "not cancelled: saga is FAILED"));
	assert_null(strstr(f->err, "ended"));
	assert_true(state_is(f, parked, "FAILED"));
}

/* status and wait ask sagad: a running saga's state and step, a wait
 * that runs out (exit 1, still RUNNING), a wait that sees it end
 * (COMPENSATED: exit 1; COMPLETED: exit 0), an unknown id, a bad one. */
static void
test_sagactl_status_wait(void **state)
{
	fixture *f = *state;
	char     id[40], done[40], sql[256], line[128];
	wait_arg w = { f, NULL, NULL, sql };

	start_saga(f, "slow_order", "sw-1", id);
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM saga_event WHERE saga_id = '%s' AND event "
	    "= 'step_sent' AND step = 1",
	    id);
	assert_true(test_wait_until(wait_sql_cb, &w, 20000 * scale()));
	assert_int_equal(ctl(f, "status", id, NULL), 0);
	snprintf(line, sizeof(line), "%s RUNNING step b\n", id);
	assert_string_equal(f->out, line);
	assert_int_equal(ctl(f, "status", id, "--json", NULL), 0);
	assert_true(has(f->out, "\"state\": \"RUNNING\""));
	assert_true(has(f->out, "\"step\": \"b\""));
	assert_int_equal(ctl(f, "wait", id, "--timeout", "300ms", NULL), 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "still RUNNING after 300ms"));

	assert_int_equal(ctl(f, "cancel", id, "--note", "changed mind", NULL),
	    0);
	assert_int_equal(ctl(f, "wait", id, "--timeout", "20s", NULL), 1);
	snprintf(line, sizeof(line),
	    "%s COMPENSATED: cancelled: changed mind\n", id);
	assert_string_equal(f->out, line);
	assert_true(has(f->err, "ended COMPENSATED"));

	assert_int_equal(ctl(f, "start", "ok_order", "--input",
	                     "{\"id\": \"sw-2\"}", NULL),
	    0);
	memcpy(done, f->out, 36);
	done[36] = '\0';
	assert_int_equal(ctl(f, "wait", done, NULL), 0);
	snprintf(line, sizeof(line), "%s COMPLETED\n", done);
	assert_string_equal(f->out, line);

	assert_int_equal(ctl(f, "status",
	                     "01a20ff2-8d88-7300-8000-0000000000ff", NULL),
	    1);
	assert_one_line_error(f);
	assert_true(has(f->err, "ENOTFOUND"));
	assert_int_equal(ctl(f, "status", "not-an-id", NULL), 2);
	assert_true(has(f->err, "not a saga id"));
}

/* Whether text (human output) holds no byte that a terminal acts on but
 * the line breaks: no C0 control, no DEL, no C1 control (U+0080..U+009F,
 * C2 80..C2 9F in UTF-8). */
static bool
no_controls(const char *what, const char *text)
{
	const unsigned char *p = (const unsigned char *) text;

	for (size_t i = 0; p[i] != '\0'; i++) {
		if ((p[i] < 0x20 && p[i] != '\n') || p[i] == 0x7f
		    || (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)) {
			fprintf(stderr, "%s: byte 0x%02x at %zu in:\n%s\n",
			    what, p[i], i, text);
			return (false);
		}
	}
	return (true);
}

/* A business key and a participant's error holding escape sequences and
 * C1 controls reach list and show (the header, the steps, the timeline)
 * escaped, never raw; --json keeps the text as it is (JSON escapes it). */
static void
test_sagactl_escape_controls(void **state)
{
	fixture         *f = *state;
	char             id[40], b[256];
	proto_buf        raw;
	proto_doc       *doc;

	assert_int_equal(ctl(f, "start", "esc_order", "--input",
	                     "{\"id\": \"" ESC_KEY_JSON "\"}", NULL),
	    0);
	memcpy(id, f->out, 36);
	id[36] = '\0';
	wait_state(f, id, "COMPENSATED");

	assert_int_equal(ctl(f, "list", "--saga", "esc_order", NULL), 0);
	assert_true(no_controls("list", f->out));
	assert_true(has(f->out, ESC_KEY_SHOWN));
	assert_true(has(f->out, "step c failed: " ESC_ERROR_SHOWN));
	/* Escapes count as wide as they print: the header's columns line
	 * up with the row's. */
	assert_true(strstr(f->out, "ERROR") - f->out
	    == strstr(f->out, "step c failed") - strchr(f->out, '\n') - 1);

	/* status and wait print sagad's answer: its error escaped too. */
	assert_int_equal(ctl(f, "status", id, NULL), 0);
	assert_true(no_controls("status", f->out));
	assert_true(has(f->out, "COMPENSATED: step c failed: " ESC_ERROR_SHOWN
	    "\n"));
	assert_int_equal(ctl(f, "wait", id, NULL), 1);
	assert_true(no_controls("wait", f->out));
	assert_true(has(f->out, ESC_ERROR_SHOWN "\n"));

	assert_int_equal(ctl(f, "show", id, NULL), 0);
	assert_true(no_controls("show", f->out));
	assert_true(has(f->out, "Business key " ESC_KEY_SHOWN "\n"));
	assert_true(
	    has(f->out, "Because      step c failed: " ESC_ERROR_SHOWN "\n"));
	assert_true(has(f->out, "failed: \\x1b]0;pwned"));
	/* The timeline's error column, and the input (JSON's escapes). */
	assert_true(has(f->out, "  " ESC_ERROR_SHOWN "\n"));
	assert_true(has(f->out, "\"id\": \"c\\u001B[31mRED"));

	/* --json: the text itself. */
	assert_int_equal(ctl(f, "show", "--json", id, NULL), 0);
	assert_non_null(doc = json_parse(f->out, &raw));
	assert_string_equal(
	    jstr(proto_doc_root(doc), "business_key", b, sizeof(b)), ESC_KEY);
	assert_string_equal(jstr(proto_doc_root(doc), "compensated_because",
	                        b, sizeof(b)),
	    "step c failed: " ESC_ERROR);
	proto_doc_free(doc);
	proto_buf_fini(&raw);
}

/* show prints a long input and business key whole (they went through a
 * 2048-byte buffer, cut without a mark, even piped). sagad takes business
 * keys of 1,024 bytes at most since 2026-12-07; a longer one, as an older
 * sagad stored it, is written into the row. */
static void
test_sagactl_show_long_input(void **state)
{
	fixture *f = *state;
	char     id[40], input[3200], want[3200], sql[3300];
	char     big[3001];
	PGconn  *c;

	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(input, sizeof(input),
	    "{\"id\": \"long\", \"note\": \"%sEND\"}", big);
	assert_int_equal(ctl(f, "start", "esc_order", "--input", input, NULL),
	    0);
	memcpy(id, f->out, 36);
	id[36] = '\0';
	wait_state(f, id, "COMPENSATED");
	assert_non_null(c = pgtest_connect(f->conninfo));
	snprintf(sql, sizeof(sql),
	    "UPDATE saga_instance SET business_key = '%sEND' WHERE id = '%s'",
	    big, id);
	assert_int_equal(pgtest_exec(c, sql), 0);
	PQfinish(c);
	assert_int_equal(ctl(f, "show", id, NULL), 0);
	snprintf(want, sizeof(want),
	    "Input        {\"id\": \"long\", \"note\": \"%sEND\"}\n", big);
	assert_true(has(f->out, want));
	snprintf(want, sizeof(want), "Business key %sEND\n", big);
	assert_true(has(f->out, want));
}

/* A "sagad" at url that answers every request EOVERLOAD (full: at its
 * --api-max-connections), counting them, until its socket is closed. */
typedef struct t_full {
	nng_socket sock;
	atomic_int answered;
} t_full;

static void *
t_full_main(void *arg)
{
	t_full   *t = arg;
	nng_msg  *m;
	proto_msg e;
	proto_buf b;

	proto_msg_error_init(&e, NULL, SAGA_EOVERLOAD, "sagad is full");
	proto_buf_init(&b);
	if (proto_msg_encode(&e, &b) != 0) {
		return (NULL);
	}
	while (nng_recvmsg(t->sock, &m, 0) == 0) {
		nng_msg_clear(m);
		if (nng_msg_append(m, b.data, b.len) != 0 ||
		    nng_sendmsg(t->sock, m, 0) != 0) {
			nng_msg_free(m);
		}
		atomic_fetch_add(&t->answered, 1);
	}
	proto_buf_fini(&b);
	return (NULL);
}

/* Bulk retry: how many match, refused without a terminal or --yes, then
 * every match with --yes. Bulk cancel likewise. */
static void
test_sagactl_bulk(void **state)
{
	fixture *f = *state;
	char     a[40], b[40], c[40], d[40], sql[256];
	wait_arg w = { f, NULL, NULL, sql };

	start_failed(f, "park_bulk", "b-1", a);
	start_failed(f, "park_bulk", "b-2", b);
	assert_int_equal(
	    ctl(f, "retry", "--state", "FAILED", "--saga", "park_bulk", NULL),
	    2);
	assert_true(has(f->err, "2 sagas match"));
	assert_true(has(f->err, "--yes"));
	assert_true(state_is(f, a, "FAILED"));
	assert_true(state_is(f, b, "FAILED"));
	/* An unusable --coordinator: a usage error, said once (it was a
	 * failure of each saga, exit 1). */
	{
		char keep[sizeof(f->url)];

		memcpy(keep, f->url, sizeof(keep));
		snprintf(f->url, sizeof(f->url), "bogus://x");
		assert_int_equal(ctl(f, "retry", "--saga", "park_bulk",
		                     "--yes", NULL),
		    2);
		memcpy(f->url, keep, sizeof(keep));
		assert_true(has(f->err, "cannot use coordinator URL "
		                        "\"bogus://x\""));
		assert_false(has(f->err, "sagas done"));
		assert_false(has(f->err, a));
		/* No sagad there: the first saga fails and the others are
		 * not tried (each waited for its own timeout, 5 s a saga,
		 * when sagad died halfway through). */
		snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%d",
		    test_free_port());
		assert_int_equal(ctl(f, "retry", "--saga", "park_bulk",
		                     "--yes", "--json", NULL),
		    1);
		memcpy(f->url, keep, sizeof(keep));
		assert_true(has(f->err, "cannot connect to sagad"));
		assert_true(has(f->err, "1 saga not tried: sagad stopped "
		                        "answering"));
		assert_true(has(f->err, "0 of 2 sagas done, 1 failed, 1 not "
		                        "tried"));
		assert_true(has(f->out, "\"failed\": 1"));
		assert_true(has(f->out, "\"not_tried\": 1"));
		assert_false(has(f->err, a) && has(f->err, b));
		/* A "sagad" that takes requests and never answers (stopped,
		 * or its network silent): the same after the first, whose
		 * outcome is unknown. It went on, 5 s a saga, and a sagad
		 * woken later carried out every one. */
		{
			nng_socket hung;

			snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%d",
			    test_free_port());
			assert_int_equal(nng_rep0_open(&hung), 0);
			assert_int_equal(nng_listen(hung, f->url, NULL, 0), 0);
			assert_int_equal(ctl(f, "retry", "--saga", "park_bulk",
			                     "--yes", "--json", NULL),
			    3);
			assert_true(has(f->err,
			    "got the request but did not answer"));
			assert_true(has(f->err, "1 saga not tried: sagad "
			                        "stopped answering"));
			assert_true(has(f->out, "\"failed\": 1"));
			assert_true(has(f->out, "\"not_tried\": 1"));
			assert_true(has(f->out, "\"outcome_unknown\": true"));
			/* ^C while it waits: the summary all the same, and
			 * exit 130 (it died of the signal, saying nothing of
			 * what it had done). */
			{
				char *argv[] = { SAGACTL_PATH, "--db",
					f->conninfo, "--coordinator", f->url,
					"--json", "retry", "--saga",
					"park_bulk", "--yes", NULL };
				char     log[PATH_MAX], *text;
				proc    *p;
				nng_msg *m;
				int      st;

				/* A new one: nothing of the run above left
				 * in it. */
				nng_close(hung);
				snprintf(f->url, sizeof(f->url),
				    "tcp://127.0.0.1:%d", test_free_port());
				assert_int_equal(nng_rep0_open(&hung), 0);
				assert_int_equal(
				    nng_listen(hung, f->url, NULL, 0), 0);
				snprintf(log, sizeof(log),
				    "/tmp/sagactl-bulk-intr.%d.log",
				    (int) getpid());
				(void) unlink(log);
				assert_int_equal(proc_start(&p, argv, log), 0);
				assert_int_equal(nng_recvmsg(hung, &m, 0), 0);
				nng_msg_free(m);
				assert_int_equal(proc_signal(p, SIGINT), 0);
				assert_int_equal(
				    proc_wait(p, 20000 * scale(), &st), 0);
				proc_free(p);
				assert_true(WIFSIGNALED(st));
				assert_int_equal(WTERMSIG(st), SIGINT);
				assert_non_null(text = slurp(log));
				(void) unlink(log);
				assert_true(has(text, "interrupted: 0 of 2 "
				                      "sagas done"));
				assert_true(has(text, "\"not_tried\": 1"));
				free(text);
			}
			nng_close(hung);
		}
		/* A full one (EOVERLOAD each time): the same after the
		 * first, refused; each of the others would have been. */
		{
			t_full    full;
			pthread_t th;

			snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%d",
			    test_free_port());
			atomic_init(&full.answered, 0);
			assert_int_equal(nng_rep0_open(&full.sock), 0);
			assert_int_equal(
			    nng_listen(full.sock, f->url, NULL, 0), 0);
			assert_int_equal(pthread_create(&th, NULL,
			                     t_full_main, &full),
			    0);
			assert_int_equal(ctl(f, "retry", "--saga", "park_bulk",
			                     "--yes", "--json", NULL),
			    1);
			nng_close(full.sock);
			assert_int_equal(pthread_join(th, NULL), 0);
			assert_int_equal(atomic_load(&full.answered), 1);
			assert_true(has(f->err, "1 saga not tried: sagad is "
			                        "overloaded"));
			assert_true(has(f->out, "\"failed\": 1"));
			assert_true(has(f->out, "\"not_tried\": 1"));
		}
		memcpy(f->url, keep, sizeof(keep));
	}
	assert_int_equal(
	    ctl(f, "retry", "--saga", "park_bulk", "--yes", NULL), 0);
	assert_true(has(f->out, a));
	assert_true(has(f->out, b));
	assert_true(has(f->err, "2 of 2 sagas done"));
	wait_state(f, a, "COMPENSATED");
	wait_state(f, b, "COMPENSATED");
	/* Nothing left to retry: not a failure (it exited 1, and --json
	 * printed nothing), one line on stderr, and the document. */
	assert_int_equal(
	    ctl(f, "retry", "--saga", "park_bulk", "--yes", NULL), 0);
	assert_int_equal(count_lines(f->err), 1);
	assert_true(has(f->err, "no saga matches"));
	assert_string_equal(f->out, "");
	assert_int_equal(ctl(f, "retry", "--saga", "park_bulk", "--yes",
	                     "--json", NULL),
	    0);
	assert_true(has(f->out, "\"matched\": 0"));
	assert_true(has(f->out, "\"results\": []"));

	start_saga(f, "slow_bulk", "sb-1", c);
	start_saga(f, "slow_bulk", "sb-2", d);
	snprintf(sql, sizeof(sql),
	    "SELECT (count(*) = 2)::int FROM saga_event e JOIN saga_instance "
	    "i ON i.id = e.saga_id WHERE i.saga_name = 'slow_bulk' AND "
	    "e.event = 'step_sent' AND e.step = 1");
	assert_true(test_wait_until(wait_sql_cb, &w, 20000 * scale()));
	assert_int_equal(
	    ctl(f, "cancel", "--saga", "slow_bulk", "--yes", "--json", NULL),
	    0);
	assert_true(has(f->out, "\"matched\": 2"));
	assert_true(has(f->out, "\"failed\": 0"));
	wait_state(f, c, "COMPENSATED");
	wait_state(f, d, "COMPENSATED");
}

/* A repair of an id that does not exist: exit 1, one line. */
static void
test_sagactl_repair_unknown_id(void **state)
{
	fixture *f = *state;

	assert_int_equal(ctl(f, "retry", ID_UNKNOWN, NULL), 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "no saga " ID_UNKNOWN));
	assert_true(has(f->err, "ENOTFOUND"));
	assert_int_equal(ctl(f, "cancel", ID_UNKNOWN, NULL), 1);
	assert_one_line_error(f);
	assert_int_equal(
	    ctl(f, "resolve", ID_UNKNOWN, "--note", "x", NULL), 1);
	assert_one_line_error(f);
	assert_int_equal(
	    ctl(f, "skip", ID_UNKNOWN, "--step", "b", "--note", "x", NULL), 1);
	assert_one_line_error(f);
}

/* A note, key or step that is not UTF-8, and a note longer than the log
 * keeps: usage errors (exit 2, one line), before anything is asked of
 * sagad. They were errors "talking to sagad" (exit 1), once per saga of
 * a bulk repair, and a long note was cut to 255 bytes without a word. */
static void
test_sagactl_bad_text_options(void **state)
{
	fixture *f = *state;
	char     note[300];

	assert_int_equal(
	    ctl(f, "retry", ID_UNKNOWN, "--note", "caf\xe9", NULL), 2);
	assert_one_line_error(f);
	assert_true(has(f->err, "--note is not UTF-8 text (byte 4 of 4"));
	assert_int_equal(ctl(f, "retry", "--saga", "park_bulk", "--yes",
	                     "--note", "\xff", NULL),
	    2);
	assert_one_line_error(f);
	assert_int_equal(ctl(f, "skip", ID_UNKNOWN, "--step", "b\xc3",
	                     "--note", "x", NULL),
	    2);
	assert_true(has(f->err, "--step is not UTF-8 text"));
	assert_int_equal(ctl(f, "start", "ok_order", "--key", "k\xff",
	                     "--input", "{}", NULL),
	    2);
	assert_true(has(f->err, "--key is not UTF-8 text"));
	memset(note, 'n', sizeof(note) - 1);
	note[sizeof(note) - 1] = '\0';
	assert_int_equal(
	    ctl(f, "resolve", ID_UNKNOWN, "--note", note, NULL), 2);
	assert_one_line_error(f);
	assert_true(has(f->err, "--note is 299 bytes long; the saga log "
	                        "keeps at most 255 bytes"));
	/* 255 bytes pass the check (and reach sagad: no such saga). */
	note[255] = '\0';
	assert_int_equal(
	    ctl(f, "resolve", ID_UNKNOWN, "--note", note, NULL), 1);
	assert_true(has(f->err, "ENOTFOUND"));
}

/* sagad is down: exit 1, one line naming the URL. Reads still work. */
static void
test_sagactl_sagad_down(void **state)
{
	fixture *f = *state;
	char     url[64], keep[64];

	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", test_free_port());
	memcpy(keep, f->url, sizeof(keep));
	memcpy(f->url, url, sizeof(url));
	/* Refused at once, not after the call's timeout. */
	assert_int_equal(ctl(f, "retry", ID_UNKNOWN, NULL), 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "cannot connect to sagad"));
	assert_true(has(f->err, url));
	assert_int_equal(ctl(f, "ping", NULL), 1);
	assert_one_line_error(f);
	assert_true(has(f->err, "does not answer"));
	assert_int_equal(
	    ctl(f, "start", "ok_order", "--input", "{\"id\": \"x\"}", NULL),
	    1);
	assert_one_line_error(f);
	assert_int_equal(ctl(f, "list", NULL), 0);
	assert_int_equal(ctl(f, "stats", NULL), 0);
	memcpy(f->url, keep, sizeof(keep));
	/* And the running sagad answers ping. */
	assert_int_equal(ctl(f, "ping", NULL), 0);
	assert_true(has(f->out, "sagad (protocol 1) answered in"));
	/* The answer is read before the client is freed (AddressSanitizer
	 * found the JSON read after it, a heap use after free). */
	assert_int_equal(ctl(f, "ping", "--json", NULL), 0);
	assert_true(has(f->out, "\"service\": \"sagad\""));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest read_tests[] = {
		cmocka_unit_test(test_sagactl_list_human),
		cmocka_unit_test(test_sagactl_full_output),
		cmocka_unit_test(test_sagactl_list_json),
		cmocka_unit_test(test_sagactl_list_filters),
		cmocka_unit_test(test_sagactl_show_compensated),
		cmocka_unit_test(test_sagactl_show_failed_and_running),
		cmocka_unit_test(test_sagactl_show_json),
		cmocka_unit_test(test_sagactl_show_finished),
		cmocka_unit_test(test_sagactl_show_step_errors_whole),
		cmocka_unit_test(test_sagactl_show_unknown_id),
		cmocka_unit_test(test_sagactl_bad_flags),
		cmocka_unit_test(test_sagactl_help),
		cmocka_unit_test(test_sagactl_db_down),
		cmocka_unit_test(test_sagactl_old_schema),
		cmocka_unit_test(test_sagactl_defs),
		cmocka_unit_test(test_sagactl_defs_odd),
		cmocka_unit_test(test_sagactl_show_long_step_name),
		cmocka_unit_test(test_sagactl_stats),
		cmocka_unit_test(test_sagactl_validate),
		cmocka_unit_test(test_sagactl_validate_tls),
		cmocka_unit_test(test_sagactl_purge),
		cmocka_unit_test(test_sagactl_purge_interrupted),
		cmocka_unit_test(test_sagactl_purge_durable),
	};
	const struct CMUnitTest redact_tests[] = {
		cmocka_unit_test(test_sagactl_redact_show),
		cmocka_unit_test(test_sagactl_redact_show_json),
		cmocka_unit_test(test_sagactl_redact_plain_saga),
		cmocka_unit_test(test_sagactl_redact_whole_input),
		cmocka_unit_test(test_sagactl_redact_list),
		cmocka_unit_test(test_sagactl_redact_defs),
	};
	const struct CMUnitTest plan_tests[] = {
		cmocka_unit_test(test_sagactl_plan_list_state),
		cmocka_unit_test(test_sagactl_plan_list_time),
		cmocka_unit_test(test_sagactl_plan_stats_since),
		cmocka_unit_test(test_sagactl_plan_same_rows),
		cmocka_unit_test(test_sagactl_plan_list_all_pages),
	};
	const struct CMUnitTest ops_tests[] = {
		cmocka_unit_test(test_sagactl_start_wait),
		cmocka_unit_test(test_sagactl_output_lost),
		cmocka_unit_test(test_sagactl_closed_pipe),
		cmocka_unit_test(test_sagactl_start_wait_fails),
		cmocka_unit_test(test_sagactl_wait_longest_timeout),
		cmocka_unit_test(test_sagactl_start_key),
		cmocka_unit_test(test_sagactl_start_answer_lost),
		cmocka_unit_test(test_sagactl_start_db_lost_in_commit),
		cmocka_unit_test(test_sagactl_start_wait_timeout_whole),
		cmocka_unit_test(test_sagactl_start_outcome_unknown),
		cmocka_unit_test(test_sagactl_start_trace),
		cmocka_unit_test(test_sagactl_retry),
		cmocka_unit_test(test_sagactl_resolve),
		cmocka_unit_test(test_sagactl_skip),
		cmocka_unit_test(test_sagactl_cancel),
		cmocka_unit_test(test_sagactl_cancel_changes_nothing),
		cmocka_unit_test(test_sagactl_status_wait),
		cmocka_unit_test(test_sagactl_bulk),
		cmocka_unit_test(test_sagactl_bad_text_options),
		cmocka_unit_test(test_sagactl_repair_unknown_id),
		cmocka_unit_test(test_sagactl_escape_controls),
		cmocka_unit_test(test_sagactl_show_long_input),
		cmocka_unit_test(test_sagactl_sagad_down),
	};
	int fails = 0;

	if (argc > 2 && strcmp(argv[1], "--maxrss") == 0) {
		return (maxrss_main(argv + 2));
	}
	/* No terminal for sagactl: confirmations must refuse. */
	if (freopen("/dev/null", "r", stdin) == NULL) {
		return (1);
	}
	/* The outputs checked here are the defaults: no colour, and the
	 * connection only from --db. */
	setenv("NO_COLOR", "1", 1);
	unsetenv("DATABASE_URL");
	unsetenv("SAGA_COORDINATOR");
	unsetenv("COLUMNS");
	fails += cmocka_run_group_tests_name(
	    "sagactl_read", read_tests, read_setup, group_teardown);
	fails += cmocka_run_group_tests_name(
	    "sagactl_redact", redact_tests, redact_setup, group_teardown);
	fails += cmocka_run_group_tests_name(
	    "sagactl_plan", plan_tests, plan_setup, group_teardown);
	fails += cmocka_run_group_tests_name(
	    "sagactl_ops", ops_tests, ops_setup, group_teardown);
	return (fails);
}
