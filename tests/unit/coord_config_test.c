/* SPDX-License-Identifier: MIT */
/*
 * coord_config_test: loading saga definitions from YAML.
 *
 * The YAML of each case is written next to its assertions, as a C string,
 * to a file in a temporary directory that the tests run in (so that the
 * messages carry short, exact names like "kinds.yaml:12:52: ..."). Every
 * rule of docs/sagas.md is checked through its exact message, which pins
 * the position too. Then: merging of files, defaults per file, syntax
 * errors, unreadable files, durations, the canonical JSON (round trip,
 * determinism, escaping, and coord_def_from_json's own errors), and the
 * redact list (its errors, its JSON, which leaves the bytes of the
 * definitions without it unchanged).
 */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "coord_config.h"
#include "proto_val.h" /* proto_utf8_char */
#include "saga_def.h"
#include "saga_err.h"

static char test_dir[] = "/tmp/coord_config_test.XXXXXX";
static char test_cwd[PATH_MAX];

/* The tests run in a fresh temporary directory. */
static int
test_setup(void **state)
{
	(void) state;
	if (getcwd(test_cwd, sizeof(test_cwd)) == NULL ||
	    mkdtemp(test_dir) == NULL || chdir(test_dir) != 0) {
		return (-1);
	}
	return (0);
}

/* Removes the directory and every file the tests wrote. */
static int
test_teardown(void **state)
{
	DIR           *dir;
	struct dirent *de;

	(void) state;
	if ((dir = opendir(".")) != NULL) {
		while ((de = readdir(dir)) != NULL) {
			if (strcmp(de->d_name, ".") != 0 &&
			    strcmp(de->d_name, "..") != 0) {
				unlink(de->d_name);
			}
		}
		closedir(dir);
	}
	if (chdir(test_cwd) != 0) {
		return (-1);
	}
	return (rmdir(test_dir));
}

/* Writes text to the file name. */
static void
put(const char *name, const char *text)
{
	FILE *f = fopen(name, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Writes the len bytes at data to the file name (NUL bytes included). */
static void
put_n(const char *name, const char *data, size_t len)
{
	FILE *f = fopen(name, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Prints the messages (before an assertion fails). */
static void
print_errs(const coord_errs *e)
{
	for (size_t i = 0; i < e->n; i++) {
		print_message("  got: %s\n", e->msgs[i]);
	}
}

/* Checks that loading files fails with exactly the messages expected (a
 * NULL-terminated list), in that order; prints both lists otherwise. */
static void
expect_files_errs(const char *const *files, size_t nfiles, ...)
{
	coord_defs *d = NULL;
	coord_errs  e = { 0 };
	const char *want[64];
	size_t      n = 0;
	bool        same;
	va_list     ap;
	int         rv;

	va_start(ap, nfiles);
	while ((want[n] = va_arg(ap, const char *)) != NULL) {
		n++;
		assert_true(n < sizeof(want) / sizeof(want[0]));
	}
	va_end(ap);
	rv   = coord_defs_load(files, nfiles, &d, &e);
	same = e.n == n;
	for (size_t i = 0; same && i < n; i++) {
		same = strcmp(e.msgs[i], want[i]) == 0;
	}
	if (!same) {
		print_errs(&e);
		for (size_t i = 0; i < n; i++) {
			print_message(" want: %s\n", want[i]);
		}
	}
	assert_int_equal(rv, SAGA_ECONFIG);
	assert_null(d);
	for (size_t i = 0; i < n && i < e.n; i++) {
		assert_string_equal(e.msgs[i], want[i]);
	}
	assert_int_equal(e.n, n);
	coord_errs_fini(&e);
	assert_null(e.msgs);
	assert_int_equal(e.n, 0);
}

/* Loads files and checks that it works. */
static coord_defs *
load_ok(const char *const *files, size_t nfiles)
{
	coord_defs *d = NULL;
	coord_errs  e = { 0 };
	int         rv;

	rv = coord_defs_load(files, nfiles, &d, &e);
	if (rv != 0) {
		print_errs(&e);
	}
	assert_int_equal(rv, 0);
	assert_int_equal(e.n, 0);
	assert_non_null(d);
	return (d);
}

static coord_defs *
load_text_ok(const char *name, const char *text)
{
	const char *files[] = { name };

	put(name, text);
	return (load_ok(files, 1));
}

/* The saga of the demo (docs/sagas.md). */
static const char demo_yaml[] =
    "# The demo's order saga.\n"                                     /* 1 */
    "participants:\n"                                                /* 2 */
    "  orders:\n"                                                    /* 3 */
    "    endpoints: [\"tcp://127.0.0.1:7101\"]\n"                    /* 4 */
    "  inventory:\n"                                                 /* 5 */
    "    endpoints: [\"tcp://127.0.0.1:7102\"]\n"                    /* 6 */
    "    max_in_flight: 128\n"                                       /* 7 */
    "  payments:\n"                                                  /* 8 */
    "    endpoints:\n"                                               /* 9 */
    "      - tcp://127.0.0.1:7103\n"                                 /* 10 */
    "      - tls+tcp://pay.example:7443\n"                           /* 11 */
    "  shipping:\n"                                                  /* 12 */
    "    endpoints: [\"ipc:///tmp/shipping.ipc\"]\n"                 /* 13 */
    "\n"                                                             /* 14 */
    "defaults:\n"                                                    /* 15 */
    "  timeout: 3s\n"                                                /* 16 */
    "  retry: {max_attempts: 4, initial_backoff: 200ms, "
    "multiplier: 1.5, max_backoff: 10s, jitter: 0.1}\n"              /* 17 */
    "  compensation_retry: {max_backoff: 2m}\n"                      /* 18 */
    "  compensation_timeout: 12h\n"                                  /* 19 */
    "\n"                                                             /* 20 */
    "sagas:\n"                                                       /* 21 */
    "  - name: create_order\n"                                       /* 22 */
    "    deadline: 60s\n"                                            /* 23 */
    "    business_key: customer_id\n"                                /* 24 */
    "    steps:\n"                                                   /* 25 */
    "      - name: create_order\n"                                   /* 26 */
    "        participant: orders\n"                                  /* 27 */
    "        action: order.create\n"                                 /* 28 */
    "        compensation: order.reject\n"                           /* 29 */
    "      - name: reserve_stock\n"                                  /* 30 */
    "        participant: inventory\n"                               /* 31 */
    "        action: stock.reserve\n"                                /* 32 */
    "        compensation: stock.release\n"                          /* 33 */
    "        timeout: 1s\n"                                          /* 34 */
    "        retry: {max_attempts: 3}\n"                             /* 35 */
    "        compensation_retry: {max_attempts: 10, jitter: 0}\n"    /* 36 */
    "        compensation_timeout: 1h\n"                             /* 37 */
    "      - name: charge_payment\n"                                 /* 38 */
    "        participant: payments\n"                                /* 39 */
    "        action: payment.charge\n"                               /* 40 */
    "        compensation: payment.refund\n"                         /* 41 */
    "        kind: pivot\n"                                          /* 42 */
    "      - name: schedule_shipment\n"                              /* 43 */
    "        participant: shipping\n"                                /* 44 */
    "        action: shipment.schedule\n"                            /* 45 */
    "        kind: retriable\n"                                      /* 46 */
    "      - name: approve_order\n"                                  /* 47 */
    "        participant: orders\n"                                  /* 48 */
    "        action: order.approve\n"                                /* 49 */
    "        kind: retriable\n"                                      /* 50 */
    "        retry: {initial_backoff: 1.5s, max_attempts: 100}\n"    /* 51 */
    "  - name: ping\n"                                               /* 52 */
    "    steps:\n"                                                   /* 53 */
    "      - {name: ping, participant: orders, action: ping, "
    "kind: pivot}\n";                                                /* 54 */

/* Checks a retry policy. */
static void
check_retry(const saga_retry *r, uint32_t max_attempts, int64_t initial,
    double multiplier, int64_t max, double jitter)
{
	assert_int_equal(r->max_attempts, max_attempts);
	assert_int_equal(r->initial_backoff_ms, initial);
	assert_true(r->multiplier == multiplier);
	assert_int_equal(r->max_backoff_ms, max);
	assert_true(r->jitter == jitter);
}

static void
test_coord_config_full_example_loads(void **state)
{
	coord_defs                 *d;
	const saga_def             *s;
	const saga_participant_def *p;
	const saga_step_def        *st;

	(void) state;
	d = load_text_ok("demo.yaml", demo_yaml);
	assert_int_equal(d->nparticipants, 4);
	assert_int_equal(d->nsagas, 2);

	p = coord_defs_participant(d, "orders");
	assert_non_null(p);
	assert_int_equal(p->nendpoints, 1);
	assert_string_equal(p->endpoints[0], "tcp://127.0.0.1:7101");
	assert_int_equal(p->max_in_flight, 256);
	assert_int_equal(p->max_batch, 32);
	p = coord_defs_participant(d, "inventory");
	assert_int_equal(p->max_in_flight, 128);
	p = coord_defs_participant(d, "payments");
	assert_int_equal(p->nendpoints, 2);
	assert_string_equal(p->endpoints[0], "tcp://127.0.0.1:7103");
	assert_string_equal(p->endpoints[1], "tls+tcp://pay.example:7443");
	p = coord_defs_participant(d, "shipping");
	assert_string_equal(p->endpoints[0], "ipc:///tmp/shipping.ipc");
	assert_null(coord_defs_participant(d, "billing"));

	s = coord_defs_find(d, "create_order");
	assert_non_null(s);
	assert_ptr_equal(s, d->sagas[0]);
	assert_null(coord_defs_find(d, "create"));
	assert_string_equal(s->name, "create_order");
	assert_int_equal(s->version, 0);
	assert_string_equal(s->hash, "");
	assert_non_null(s->json);
	assert_int_equal(s->deadline_ms, 60000);
	assert_string_equal(s->business_key, "customer_id");
	assert_int_equal(s->nsteps, 5);
	assert_int_equal(s->pivot, 2);
	assert_string_equal(s->file, "demo.yaml");
	assert_ptr_equal(s->file, d->files[0]);
	assert_int_equal(s->line, 22);

	/* create_order: every value from the file's defaults. */
	st = &s->steps[0];
	assert_string_equal(st->name, "create_order");
	assert_string_equal(st->participant, "orders");
	assert_string_equal(st->action, "order.create");
	assert_string_equal(st->compensation, "order.reject");
	assert_int_equal(st->kind, SAGA_STEP_COMPENSATABLE);
	assert_int_equal(st->timeout_ms, 3000);
	check_retry(&st->retry, 4, 200, 1.5, 10000, 0.1);
	check_retry(&st->comp_retry, 0, 100, 2.0, 120000, 0.2);
	assert_int_equal(st->comp_budget_ms, 12 * 3600 * 1000);

	/* reserve_stock: its own keys merge over the defaults. */
	st = &s->steps[1];
	assert_int_equal(st->kind, SAGA_STEP_COMPENSATABLE);
	assert_int_equal(st->timeout_ms, 1000);
	check_retry(&st->retry, 3, 200, 1.5, 10000, 0.1);
	check_retry(&st->comp_retry, 10, 100, 2.0, 120000, 0.0);
	assert_int_equal(st->comp_budget_ms, 3600 * 1000);

	/* charge_payment: the pivot keeps its compensation. */
	st = &s->steps[2];
	assert_int_equal(st->kind, SAGA_STEP_PIVOT);
	assert_string_equal(st->compensation, "payment.refund");
	check_retry(&st->retry, 4, 200, 1.5, 10000, 0.1);

	/* Retriable steps: unlimited attempts, 30s cap, unless they say. */
	st = &s->steps[3];
	assert_int_equal(st->kind, SAGA_STEP_RETRIABLE);
	assert_null(st->compensation);
	check_retry(&st->retry, 0, 200, 1.5, 30000, 0.1);
	st = &s->steps[4];
	assert_string_equal(st->name, "approve_order");
	assert_int_equal(st->kind, SAGA_STEP_RETRIABLE);
	check_retry(&st->retry, 100, 1500, 1.5, 30000, 0.1);
	assert_int_equal(saga_def_step_find(s, "approve_order"), 4);

	s = coord_defs_find(d, "ping");
	assert_non_null(s);
	assert_int_equal(s->deadline_ms, 0);
	assert_null(s->business_key);
	assert_int_equal(s->pivot, 0);
	assert_null(s->steps[0].compensation);
	assert_int_equal(s->line, 52);
	coord_defs_free(d);
}

static void
test_coord_config_builtin_defaults(void **state)
{
	coord_defs          *d;
	const saga_step_def *st;

	(void) state;
	d = load_text_ok("builtin.yaml",
	    "participants:\n"
	    "  p: {endpoints: [\"inproc://p\"]}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    deadline: null\n"
	    "    business_key: ~\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, compensation: y}\n"
	    "      - {name: b, participant: p, action: x, kind: pivot}\n"
	    "      - {name: c, participant: p, action: x, kind: retriable}\n");
	assert_int_equal(d->sagas[0]->deadline_ms, 0);
	assert_null(d->sagas[0]->business_key);
	assert_int_equal(d->participants[0]->max_in_flight, 256);
	st = &d->sagas[0]->steps[0];
	assert_int_equal(st->timeout_ms, 2000);
	check_retry(&st->retry, 5, 100, 2.0, 5000, 0.2);
	check_retry(&st->comp_retry, 0, 100, 2.0, 60000, 0.2);
	assert_int_equal(st->comp_budget_ms, 24LL * 3600 * 1000);
	st = &d->sagas[0]->steps[2];
	check_retry(&st->retry, 0, 100, 2.0, 30000, 0.2);
	assert_int_equal(d->sagas[0]->pivot, 1);
	coord_defs_free(d);
}

static void
test_coord_config_unknown_keys(void **state)
{
	const char *files[] = { "unknown.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p:\n"
	    "    endpoints: [\"tcp://h:1\"]\n"
	    "    colour: red\n"
	    "defaults:\n"
	    "  timeout: 1s\n"
	    "  retries: 3\n"
	    "  retry: {max_attempts: 2, backof: 1s}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - name: a\n"
	    "        participant: p\n"
	    "        action: x\n"
	    "        compensation: y\n"
	    "        comp: y\n"
	    "    owner: me\n"
	    "extra: 1\n");
	expect_files_errs(files, 1,
	    "unknown.yaml:4:5: unknown key \"colour\" in a participant "
	    "(allowed: endpoints, max_in_flight, tls, max_batch)",
	    "unknown.yaml:7:3: unknown key \"retries\" in defaults (allowed: "
	    "timeout, retry, compensation_retry, compensation_timeout)",
	    "unknown.yaml:8:28: unknown key \"backof\" in a retry policy "
	    "(allowed: max_attempts, initial_backoff, multiplier, "
	    "max_backoff, jitter)",
	    "unknown.yaml:16:9: unknown key \"comp\" in a step (allowed: "
	    "name, participant, action, compensation, kind, timeout, retry, "
	    "compensation_retry, compensation_timeout)",
	    "unknown.yaml:17:5: unknown key \"owner\" in a saga (allowed: "
	    "name, deadline, business_key, redact, steps)",
	    "unknown.yaml:18:1: unknown key \"extra\" at the top level "
	    "(allowed: participants, defaults, sagas)",
	    NULL);
}

static void
test_coord_config_wrong_types(void **state)
{
	const char *files[] = { "types.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p:\n"
	    "    endpoints: \"tcp://h:1\"\n"
	    "    max_in_flight: lots\n"
	    "  q: [1]\n"
	    "  r:\n"
	    "sagas:\n"
	    "  - name: [s]\n"
	    "    steps: {a: 1}\n"
	    "  - just a string\n"
	    "  - name: t\n"
	    "    business_key: {k: v}\n"
	    "    steps:\n"
	    "      - name: a\n"
	    "        participant: p\n"
	    "        action: {do: it}\n"
	    "        compensation: \"\"\n"
	    "        retry: 3\n"
	    "        kind: [pivot]\n"
	    "      - 42\n");
	expect_files_errs(files, 1,
	    "types.yaml:3:17: endpoints: expected a list of URLs, got "
	    "\"tcp://h:1\"",
	    "types.yaml:4:20: max_in_flight: expected an integer 1..65536, "
	    "got \"lots\"",
	    "types.yaml:5:7: participant \"q\": expected a mapping, got a "
	    "list",
	    "types.yaml:6:3: participant \"r\": expected a mapping, got "
	    "nothing",
	    "types.yaml:8:12: name: expected a name of 1..128 characters A-Z "
	    "a-z 0-9 _ . -, got a list",
	    "types.yaml:9:13: steps: expected a list of steps, got a mapping",
	    "types.yaml:10:5: saga: expected a mapping, got \"just a string\"",
	    "types.yaml:12:20: business_key: expected a string of 1..255 "
	    "bytes, got a mapping",
	    "types.yaml:16:18: action: expected a string of 1..255 bytes, got "
	    "a mapping",
	    "types.yaml:17:24: compensation: expected a string of 1..255 "
	    "bytes, got \"\"",
	    "types.yaml:18:16: retry: expected a mapping, got \"3\"",
	    "types.yaml:19:16: kind: expected a string of 1..255 bytes, got a "
	    "list",
	    "types.yaml:20:9: step: expected a mapping, got \"42\"",
	    NULL);
}

/* An action, compensation, business key or redacted field that starts or
 * ends with a line break or tab is refused: participants and inputs are
 * matched exactly, and "order.create\n", what a folded > scalar gives,
 * made every attempt of its step go unanswered (no handler has that
 * name) while --check said the configuration was OK. Inside a string
 * and spaces at its ends are kept (test_coord_config_json_escapes,
 * test_coord_config_json_edge_spaces). */
static void
test_coord_config_edge_line_breaks(void **state)
{
	const char *files[] = { "breaks.yaml" };

	(void) state;
	put(files[0],
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n" /* 1 */
	    "sagas:\n"                                           /* 2 */
	    "  - name: s\n"                                      /* 3 */
	    "    business_key: \"\\tcustomer\"\n"                /* 4 */
	    "    redact: [\"card\\n\", cvv]\n"                   /* 5 */
	    "    steps:\n"                                       /* 6 */
	    "      - name: a\n"                                  /* 7 */
	    "        participant: p\n"                           /* 8 */
	    "        action: >\n"                                /* 9 */
	    "          order.create\n"                           /* 10 */
	    "        compensation: \"order.reject\\r\"\n"        /* 11 */
	    "      - {name: b, participant: p, action: x, kind: pivot}\n");
	expect_files_errs(files, 1,
	    "breaks.yaml:4:20: business_key: \"\\x09customer\" starts or "
	    "ends with a line break or tab (a folded > scalar ends with "
	    "one); it is matched exactly",
	    "breaks.yaml:5:15: redact: \"card\\x0a\" starts or ends with a "
	    "line break or tab (a folded > scalar ends with one); it is "
	    "matched exactly",
	    "breaks.yaml:10:11: action: \"order.create\\x0a\" starts or ends "
	    "with a line break or tab (a folded > scalar ends with one); it "
	    "is matched exactly",
	    "breaks.yaml:11:24: compensation: \"order.reject\\x0d\" starts or "
	    "ends with a line break or tab (a folded > scalar ends with "
	    "one); it is matched exactly",
	    NULL);
}

/* A definition stored before that rule, read back from the log, still
 * loads: its sagas must be recoverable and repairable. */
static void
test_coord_config_edge_line_breaks_stored(void **state)
{
	coord_defs *d;
	saga_def   *back = NULL;
	char        err[256];
	char       *json, *at;

	(void) state;
	d = load_text_ok("stored.yaml",
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, compensation: "
	    "undo}\n"
	    "      - {name: b, participant: p, action: y, kind: pivot}\n");
	/* The JSON as an older sagad stored it: "undo\n". */
	assert_non_null(json = malloc(strlen(d->sagas[0]->json) + 3));
	assert_non_null(at = strstr(d->sagas[0]->json, "\"undo\""));
	snprintf(json, strlen(d->sagas[0]->json) + 3, "%.*s\"undo\\n\"%s",
	    (int) (at - d->sagas[0]->json), d->sagas[0]->json, at + 6);
	assert_int_equal(
	    coord_def_from_json(json, &back, err, sizeof(err)), 0);
	assert_string_equal(back->steps[0].compensation, "undo\n");
	saga_def_free(back);
	free(json);
	coord_defs_free(d);
}

static void
test_coord_config_section_types(void **state)
{
	const char *files[] = { "sections.yaml", "sections2.yaml" };

	(void) state;
	put(files[0],
	    "participants: [a]\n"
	    "defaults: 5s\n"
	    "sagas: {name: s}\n");
	put(files[1], "- a\n- b\n");
	expect_files_errs(files, 2,
	    "sections.yaml:1:16: participants: expected a mapping of names to "
	    "participants, got a list",
	    "sections.yaml:2:11: defaults: expected a mapping, got \"5s\"",
	    "sections.yaml:3:9: sagas: expected a list of sagas, got a "
	    "mapping",
	    "sections2.yaml:1:3: top level: expected a mapping with "
	    "participants, defaults, sagas, got a list",
	    NULL);
}

static void
test_coord_config_bad_durations(void **state)
{
	const char *files[] = { "durations.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "defaults:\n"
	    "  timeout: 2\n"
	    "  compensation_timeout: 0s\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    deadline: 1.5\n"
	    "    steps:\n"
	    "      - name: a\n"
	    "        participant: p\n"
	    "        action: x\n"
	    "        compensation: y\n"
	    "        timeout: 0ms\n"
	    "        compensation_timeout: forever\n"
	    "        retry: {initial_backoff: -1s, max_backoff: 1.0001ms}\n"
	    "        compensation_retry: {max_backoff: 5 s}\n"
	    "  - name: t\n"
	    "    deadline: 0s\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot, "
	    "timeout: \"\"}\n");
	expect_files_errs(files, 1,
	    "durations.yaml:4:12: defaults.timeout: expected a duration like "
	    "500ms, 2s, 1m, got \"2\"",
	    "durations.yaml:5:25: defaults.compensation_timeout: expected a "
	    "duration > 0, got \"0s\"",
	    "durations.yaml:8:15: deadline: expected a duration like 500ms, "
	    "2s, 1m, got \"1.5\"",
	    "durations.yaml:14:18: timeout: expected a duration > 0, got "
	    "\"0ms\"",
	    "durations.yaml:15:31: compensation_timeout: expected a duration "
	    "like 500ms, 2s, 1m, got \"forever\"",
	    "durations.yaml:16:34: retry.initial_backoff: expected a duration "
	    "like 500ms, 2s, 1m, got \"-1s\"",
	    "durations.yaml:16:52: retry.max_backoff: expected a duration "
	    "like 500ms, 2s, 1m, got \"1.0001ms\"",
	    "durations.yaml:17:43: compensation_retry.max_backoff: expected a "
	    "duration like 500ms, 2s, 1m, got \"5 s\"",
	    "durations.yaml:19:15: deadline: expected a duration > 0, got "
	    "\"0s\"",
	    "durations.yaml:21:69: timeout: expected a duration like 500ms, "
	    "2s, 1m, got \"\"",
	    NULL);
}

/* Durations above what sagad can count: a step timeout above 7 days
 * (nng's int32 of milliseconds would wrap, and every attempt time out
 * at once), anything else above 10 years (a deadline or a backoff added
 * to the clock would overflow). The limits themselves are accepted. */
static void
test_coord_config_durations_too_long(void **state)
{
	const char *files[] = { "long.yaml" };
	coord_defs *d    = NULL;
	coord_errs  errs = { 0 };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "defaults:\n"
	    "  timeout: 25d\n"
	    "  compensation_timeout: 3651d\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    deadline: 106751991167d\n"
	    "    steps:\n"
	    "      - name: a\n"
	    "        participant: p\n"
	    "        action: x\n"
	    "        compensation: y\n"
	    "        timeout: 604800001ms\n"
	    "        retry: {max_backoff: 9223372036854775807ms}\n"
	    "        compensation_timeout: 99999999999999999999d\n");
	expect_files_errs(files, 1,
	    "long.yaml:4:12: defaults.timeout: expected a duration of at most "
	    "7d, got \"25d\"",
	    "long.yaml:5:25: defaults.compensation_timeout: expected a "
	    "duration of at most 3650d, got \"3651d\"",
	    "long.yaml:8:15: deadline: expected a duration of at most 3650d, "
	    "got \"106751991167d\"",
	    "long.yaml:14:18: timeout: expected a duration of at most 7d, "
	    "got \"604800001ms\"",
	    "long.yaml:15:30: retry.max_backoff: expected a duration of at "
	    "most 3650d, got \"9223372036854775807ms\"",
	    "long.yaml:16:31: compensation_timeout: expected a duration of "
	    "at most 3650d, got \"99999999999999999999d\"",
	    NULL);
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "defaults:\n"
	    "  timeout: 7d\n"
	    "  compensation_timeout: 3650d\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    deadline: 3650d\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, compensation: y,"
	    " timeout: 168h, retry: {max_backoff: 3650d}}\n");
	if (coord_defs_load(files, 1, &d, &errs) != 0) {
		print_errs(&errs);
	}
	assert_non_null(d);
	assert_int_equal(d->sagas[0]->steps[0].timeout_ms,
	    COORD_CONFIG_TIMEOUT_MAX_MS);
	assert_int_equal(d->sagas[0]->deadline_ms,
	    COORD_CONFIG_DURATION_MAX_MS);
	coord_defs_free(d);
	coord_errs_fini(&errs);
}

static void
test_coord_config_out_of_range(void **state)
{
	const char *files[] = { "ranges.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"], max_in_flight: 0, max_batch: 0}\n"
	    "  q: {endpoints: [\"tcp://h:1\"], max_in_flight: 65537, max_batch: 1025}\n"
	    "defaults:\n"
	    "  retry: {max_attempts: -1, multiplier: 0.9, jitter: 1.5}\n"
	    "  compensation_retry: {initial_backoff: 2m, max_backoff: 1m}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - name: a\n"
	    "        participant: p\n"
	    "        action: x\n"
	    "        compensation: y\n"
	    "        retry: {initial_backoff: 10s}\n"
	    "        compensation_retry: {jitter: -0.1, multiplier: .inf}\n"
	    "      - name: b\n"
	    "        participant: p\n"
	    "        action: x\n"
	    "        compensation: y\n"
	    "        retry: {max_attempts: 1000001, multiplier: 1e400}\n");
	expect_files_errs(files, 1,
	    "ranges.yaml:2:48: max_in_flight: expected an integer 1..65536, "
	    "got \"0\"",
	    "ranges.yaml:2:62: max_batch: expected an integer 1..1024, "
	    "got \"0\"",
	    "ranges.yaml:3:48: max_in_flight: expected an integer 1..65536, "
	    "got \"65537\"",
	    "ranges.yaml:3:66: max_batch: expected an integer 1..1024, "
	    "got \"1025\"",
	    "ranges.yaml:5:25: defaults.retry.max_attempts: expected an "
	    "integer 0..1000000, got \"-1\"",
	    "ranges.yaml:5:41: defaults.retry.multiplier: expected a number "
	    ">= 1, got \"0.9\"",
	    "ranges.yaml:5:54: defaults.retry.jitter: expected a number 0..1, "
	    "got \"1.5\"",
	    "ranges.yaml:6:3: defaults.compensation_retry: initial_backoff "
	    "(120000ms) is above max_backoff (60000ms)",
	    "ranges.yaml:14:9: retry: initial_backoff (10000ms) is above "
	    "max_backoff (5000ms)",
	    "ranges.yaml:15:38: compensation_retry.jitter: expected a number "
	    "0..1, got \"-0.1\"",
	    "ranges.yaml:15:56: compensation_retry.multiplier: expected a "
	    "number >= 1, got \".inf\"",
	    "ranges.yaml:20:31: retry.max_attempts: expected an integer "
	    "0..1000000, got \"1000001\"",
	    "ranges.yaml:20:52: retry.multiplier: expected a number >= 1, got "
	    "\"1e400\"",
	    NULL);
}

/* A retriable step's cap is 30 s or the defaults' when longer: never
 * below the file's backoffs (a 1m default cap with a 40s initial backoff
 * gave every retriable step without a retry of its own an error, "40000ms
 * is above max_backoff (30000ms)", about a retry it did not have). Its
 * own retry can still set an initial backoff above that cap. */
static void
test_coord_config_retriable_backoff_cap(void **state)
{
	const char *files[] = { "cap.yaml" };
	coord_defs *d;

	(void) state;
	d = load_text_ok("cap.yaml",
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "defaults:\n"
	    "  retry: {initial_backoff: 40s, max_backoff: 1m}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n"
	    "      - {name: b, participant: p, action: x, kind: retriable}\n"
	    "      - {name: c, participant: p, action: x, kind: retriable,\n"
	    "         retry: {max_backoff: 2m}}\n");
	check_retry(&d->sagas[0]->steps[1].retry, 0, 40000, 2.0, 60000, 0.2);
	check_retry(&d->sagas[0]->steps[2].retry, 0, 40000, 2.0, 120000, 0.2);
	coord_defs_free(d);
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n"
	    "      - {name: b, participant: p, action: x, kind: retriable,\n"
	    "         retry: {initial_backoff: 40s}}\n");
	expect_files_errs(files, 1,
	    "cap.yaml:8:10: retry: initial_backoff (40000ms) is above "
	    "max_backoff (30000ms)",
	    NULL);
}

static void
test_coord_config_missing_keys(void **state)
{
	const char *files[] = { "missing.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p: {max_in_flight: 3}\n"
	    "sagas:\n"
	    "  - deadline: 1s\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - participant: p\n"
	    "        action: x\n"
	    "        compensation: y\n"
	    "      - name: b\n"
	    "        compensation: y\n"
	    "  - {}\n");
	/* An empty {} has no position of its own in libfyaml's tree: it
	 * borrows the one of the key holding the list. */
	expect_files_errs(files, 1,
	    "missing.yaml:2:3: participant \"p\": missing required key "
	    "\"endpoints\"",
	    "missing.yaml:3:1: saga: missing required key \"name\"",
	    "missing.yaml:3:1: saga: missing required key \"steps\"",
	    "missing.yaml:4:5: saga: missing required key \"name\"",
	    "missing.yaml:4:5: saga: missing required key \"steps\"",
	    "missing.yaml:7:9: step 1: missing required key \"name\"",
	    "missing.yaml:10:9: step \"b\": missing required key "
	    "\"participant\"",
	    "missing.yaml:10:9: step \"b\": missing required key \"action\"",
	    NULL);
}

/* A long name of two-byte characters in a message's subject is cut on
 * a whole character: it was cut inside one, the message was not UTF-8,
 * and sagactl validate --json printed no error at all. */
static void
test_coord_config_long_names_cut_whole(void **state)
{
	const char *files[] = { "longnames.yaml" };
	char        name[301], text[1200];
	coord_defs *d = NULL;
	coord_errs  e = { 0 };

	(void) state;
	for (int i = 0; i < 150; i++) {
		memcpy(name + 2 * i, "\xc3\xa9", 2);
	}
	name[300] = '\0';
	snprintf(text, sizeof(text),
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://127.0.0.1:1\"]}\n"
	    "sagas:\n"
	    "  - name: %s\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: a%s, action: x, kind: pivot}\n",
	    name, name);
	put(files[0], text);
	assert_int_equal(coord_defs_load(files, 1, &d, &e), SAGA_ECONFIG);
	assert_true(e.n >= 2);
	for (size_t i = 0; i < e.n; i++) {
		const char *m = e.msgs[i];

		for (size_t k = 0, c; m[k] != '\0'; k += c) {
			c = proto_utf8_char((const uint8_t *) m + k,
			    strlen(m + k));
			if (c == 0) {
				fail_msg("not UTF-8 at byte %zu: %s", k, m);
			}
		}
	}
	assert_non_null(strstr(e.msgs[0], "missing required key \"steps\""));
	coord_errs_fini(&e);
}

/* A file that does not parse declares no participant: a step of another
 * file that uses one of its participants is reported as unknown, and the
 * error says that the file that could not be read may declare it (it
 * sent the reader to a declaration that is there). */
static void
test_coord_config_unread_file_refs(void **state)
{
	const char *files[] = { "unread-a.yaml", "unread-b.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://127.0.0.1:1\"]}\n"
	    "sagas: [\n");
	put(files[1],
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps: [{name: a, participant: p, action: x, "
	    "kind: pivot}]\n");
	expect_files_errs(files, 2,
	    "unread-a.yaml:4:1: flow sequence without a closing bracket",
	    "unread-b.yaml:3:36: participant: unknown participant \"p\" "
	    "(define it under participants:; or a file that could not be "
	    "read declares it)",
	    NULL);
	/* A file that cannot be read: the same. */
	files[0] = "unread-none.yaml";
	expect_files_errs(files, 2,
	    "unread-none.yaml: cannot read: No such file or directory",
	    "unread-b.yaml:3:36: participant: unknown participant \"p\" "
	    "(define it under participants:; or a file that could not be "
	    "read declares it)",
	    NULL);
}

static void
test_coord_config_duplicate_names(void **state)
{
	const char *files[] = { "dups.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, compensation: y}\n"
	    "      - {name: b, participant: p, action: x, compensation: y}\n"
	    "      - {name: a, participant: p, action: x, compensation: y}\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, compensation: y}\n");
	expect_files_errs(files, 1,
	    "dups.yaml:8:16: saga \"s\": duplicate step \"a\" (first defined "
	    "at dups.yaml:6:16)",
	    "dups.yaml:9:11: duplicate saga \"s\" (first defined at "
	    "dups.yaml:4:11)",
	    NULL);
}

static void
test_coord_config_unknown_participant(void **state)
{
	const char *files[] = { "nobody.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: a, participant: nope, action: x, compensation: "
	    "y}\n"
	    "      - {name: b, participant: P, action: x, compensation: y}\n"
	    "      - {name: c, participant: p, action: x, compensation: y}\n");
	expect_files_errs(files, 1,
	    "nobody.yaml:6:32: participant: unknown participant \"nope\" "
	    "(define it under participants:)",
	    "nobody.yaml:7:32: participant: unknown participant \"P\" (define "
	    "it under participants:)",
	    NULL);
}

static void
test_coord_config_kind_rules(void **state)
{
	const char *files[] = { "kinds.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "sagas:\n"
	    "  - name: no_comp\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x}\n"
	    "      - {name: b, participant: p, action: x, compensation: "
	    "null}\n"
	    "      - {name: c, participant: p, action: x, kind: sometimes}\n"
	    "  - name: two_pivots\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n"
	    "      - {name: b, participant: p, action: x, kind: pivot}\n"
	    "  - name: comp_after_pivot\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n"
	    "      - {name: b, participant: p, action: x, compensation: y}\n"
	    "  - name: retriable_with_comp\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n"
	    "      - {name: b, participant: p, action: x, compensation: y, "
	    "kind: retriable}\n"
	    "  - name: retriable_first\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: retriable}\n"
	    "      - {name: b, participant: p, action: x, kind: pivot}\n"
	    "  - name: no_pivot\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, compensation: y}\n"
	    "      - {name: b, participant: p, action: x, kind: retriable}\n"
	    "  - name: empty\n"
	    "    steps: []\n");
	expect_files_errs(files, 1,
	    "kinds.yaml:6:10: step \"a\": a compensatable step needs a "
	    "compensation (or kind pivot or retriable)",
	    "kinds.yaml:7:60: step \"b\": a compensatable step needs a "
	    "compensation (or kind pivot or retriable)",
	    "kinds.yaml:8:52: kind: expected compensatable, pivot or "
	    "retriable, got \"sometimes\"",
	    "kinds.yaml:12:52: saga \"two_pivots\": more than one pivot (step "
	    "\"a\" is the pivot, at kinds.yaml:11:52)",
	    "kinds.yaml:16:10: saga \"comp_after_pivot\": step \"b\" after "
	    "the "
	    "pivot \"a\" must be retriable, not compensatable",
	    "kinds.yaml:20:60: step \"b\": a retriable step cannot have a "
	    "compensation (it is never compensated)",
	    "kinds.yaml:23:52: saga \"retriable_first\": retriable step \"a\" "
	    "needs a pivot before it",
	    "kinds.yaml:28:52: saga \"no_pivot\": retriable step \"b\" needs "
	    "a "
	    "pivot before it",
	    "kinds.yaml:30:5: steps: expected at least one step",
	    NULL);
}

static void
test_coord_config_bad_names_and_urls(void **state)
{
	const char *files[] = { "names.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  \"bad participant\": {endpoints: [\"tcp://h:1\"]}\n"
	    "  ok: {endpoints: [\"tcp://h\", \"tcp://:1\", \"tcp://h:0\", "
	    "\"ipc://\", \"inproc://x\", \"ipc:///tmp/s\", "
	    "\"tls+tcp://h:443\", \"tcp://h:1 \", \"http://h:1\"]}\n"
	    "  none: {endpoints: []}\n"
	    "sagas:\n"
	    "  - name: \"bad/saga\"\n"
	    "    steps:\n"
	    "      - {name: \"step one\", participant: ok, action: x, "
	    "compensation: y}\n"
	    "      - {name: \"\", participant: \"bad participant\", "
	    "action: x, compensation: y}\n"
	    "  - name: "
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "x\n"
	    "    steps:\n"
	    "      - {name: a, participant: ok, action: x, compensation: "
	    "y}\n");
	expect_files_errs(files, 1,
	    "names.yaml:2:4: participants: expected a name of 1..128 "
	    "characters A-Z a-z 0-9 _ . -, got \"bad participant\"",
	    "names.yaml:3:21: endpoints: expected a URL tcp://host:port, "
	    "tls+tcp://host:port, ipc://path or inproc://name, got "
	    "\"tcp://h\"",
	    "names.yaml:3:32: endpoints: expected a URL tcp://host:port, "
	    "tls+tcp://host:port, ipc://path or inproc://name, got "
	    "\"tcp://:1\"",
	    "names.yaml:3:44: endpoints: expected a URL tcp://host:port, "
	    "tls+tcp://host:port, ipc://path or inproc://name, got "
	    "\"tcp://h:0\"",
	    "names.yaml:3:57: endpoints: expected a URL tcp://host:port, "
	    "tls+tcp://host:port, ipc://path or inproc://name, got "
	    "\"ipc://\"",
	    "names.yaml:3:116: endpoints: expected a URL tcp://host:port, "
	    "tls+tcp://host:port, ipc://path or inproc://name, got "
	    "\"tcp://h:1 \"",
	    "names.yaml:3:130: endpoints: expected a URL tcp://host:port, "
	    "tls+tcp://host:port, ipc://path or inproc://name, got "
	    "\"http://h:1\"",
	    "names.yaml:4:10: endpoints: expected at least one URL",
	    "names.yaml:6:12: name: expected a name of 1..128 characters A-Z "
	    "a-z 0-9 _ . -, got \"bad/saga\"",
	    "names.yaml:8:17: name: expected a name of 1..128 characters A-Z "
	    "a-z 0-9 _ . -, got \"step one\"",
	    "names.yaml:9:17: name: expected a name of 1..128 characters A-Z "
	    "a-z 0-9 _ . -, got \"\"",
	    "names.yaml:9:34: participant: expected a name of 1..128 "
	    "characters A-Z a-z 0-9 _ . -, got \"bad participant\"",
	    "names.yaml:10:11: name: expected a name of 1..128 characters A-Z "
	    "a-z 0-9 _ . -, got "
	    "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "...\"",
	    NULL);
}

/* Many problems in one file: each is reported, sorted by position, and
 * one bad value does not hide the next. */
static void
test_coord_config_many_errors_one_file(void **state)
{
	const char *files[] = { "many.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  inventory:\n"
	    "    endpoints: [\"http://x\"]\n"
	    "    max_in_flight: lots\n"
	    "    colour: red\n"
	    "sagas:\n"
	    "  - name: bad saga\n"
	    "    deadline: 5\n"
	    "    steps:\n"
	    "      - name: a\n"
	    "        participant: nobody\n"
	    "        action: x\n"
	    "      - name: a\n"
	    "        participant: inventory\n"
	    "        action: y\n"
	    "        compensation: z\n"
	    "        kind: pivot\n"
	    "        retry: {max_attempts: -1, multiplier: 0.5, jitter: 2}\n"
	    "      - name: c\n"
	    "        participant: inventory\n"
	    "        action: y\n"
	    "        compensation: z\n");
	expect_files_errs(files, 1,
	    "many.yaml:3:18: endpoints: expected a URL tcp://host:port, "
	    "tls+tcp://host:port, ipc://path or inproc://name, got "
	    "\"http://x\"",
	    "many.yaml:4:20: max_in_flight: expected an integer 1..65536, got "
	    "\"lots\"",
	    "many.yaml:5:5: unknown key \"colour\" in a participant (allowed: "
	    "endpoints, max_in_flight, tls, max_batch)",
	    "many.yaml:7:11: name: expected a name of 1..128 characters A-Z "
	    "a-z 0-9 _ . -, got \"bad saga\"",
	    "many.yaml:8:15: deadline: expected a duration like 500ms, 2s, "
	    "1m, got \"5\"",
	    "many.yaml:10:9: step \"a\": a compensatable step needs a "
	    "compensation (or kind pivot or retriable)",
	    "many.yaml:11:22: participant: unknown participant \"nobody\" "
	    "(define it under participants:)",
	    "many.yaml:13:15: saga \"bad saga\": duplicate step \"a\" (first "
	    "defined at many.yaml:10:15)",
	    "many.yaml:18:31: retry.max_attempts: expected an integer "
	    "0..1000000, got \"-1\"",
	    "many.yaml:18:47: retry.multiplier: expected a number >= 1, got "
	    "\"0.5\"",
	    "many.yaml:18:60: retry.jitter: expected a number 0..1, got \"2\"",
	    "many.yaml:19:9: saga \"bad saga\": step \"c\" after the pivot "
	    "\"a\" must be retriable, not compensatable",
	    NULL);
}

/* Participants and sagas merge across files; each file has its own
 * defaults; a saga may use a participant of another file. */
/* A participant's own TLS files: relative names from the YAML file's
 * directory, the rest left to sagad's flags; a file that cannot be read,
 * a cert without its key and an unknown key are errors at their place. */
static void
test_coord_config_participant_tls(void **state)
{
	const char *files[] = { "sub/tls.yaml" };
	const char *bad[]   = { "tlsbad.yaml" };
	coord_defs *d;

	(void) state;
	assert_int_equal(mkdir("sub", 0755), 0);
	put("sub/ca.pem", "x");
	put("sub/me.pem", "x");
	put("sub/me.key", "x");
	put(files[0],
	    "participants:\n"
	    "  a:\n"
	    "    endpoints: [\"tls+tcp://h:1\"]\n"
	    "    tls: {ca: ca.pem, cert: me.pem, key: me.key}\n"
	    "  b: {endpoints: [\"tls+tcp://h:2\"], tls: {ca: ca.pem}}\n"
	    "  c: {endpoints: [\"tcp://h:3\"]}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: x, participant: a, action: x, kind: pivot}\n");
	d = load_ok(files, 1);
	assert_string_equal(d->participants[0]->tls_ca, "sub/ca.pem");
	assert_string_equal(d->participants[0]->tls_cert, "sub/me.pem");
	assert_string_equal(d->participants[0]->tls_key, "sub/me.key");
	assert_string_equal(d->participants[1]->tls_ca, "sub/ca.pem");
	assert_null(d->participants[1]->tls_cert);
	assert_null(d->participants[2]->tls_ca);
	coord_defs_free(d);

	put(bad[0],
	    "participants:\n"
	    "  a:\n"
	    "    endpoints: [\"tls+tcp://h:1\"]\n"
	    "    tls:\n"
	    "      ca: nosuch.pem\n"
	    "      cert: sub/me.pem\n"
	    "      colour: red\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: x, participant: a, action: x, kind: pivot}\n");
	expect_files_errs(bad, 1,
	    "tlsbad.yaml:4:5: tls: cert and key go together (one of them "
	    "is missing)",
	    "tlsbad.yaml:5:11: tls.ca: cannot read nosuch.pem: No such file "
	    "or directory",
	    "tlsbad.yaml:7:7: unknown key \"colour\" in a participant's tls "
	    "(allowed: ca, cert, key)",
	    NULL);
	unlink("sub/tls.yaml");
	unlink("sub/ca.pem");
	unlink("sub/me.pem");
	unlink("sub/me.key");
	assert_int_equal(rmdir("sub"), 0);
}

static void
test_coord_config_files_merge(void **state)
{
	const char *files[] = { "parts.yaml", "orders.yaml", "other.yaml" };
	coord_defs *d;

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  orders: {endpoints: [\"tcp://h:1\"]}\n"
	    "defaults:\n"
	    "  timeout: 9s\n");
	put(files[1],
	    "defaults:\n"
	    "  timeout: 5s\n"
	    "  retry: {max_attempts: 7}\n"
	    "sagas:\n"
	    "  - name: a\n"
	    "    steps:\n"
	    "      - {name: s, participant: orders, action: x, kind: pivot}\n"
	    "      - {name: t, participant: billing, action: x, "
	    "kind: retriable}\n");
	put(files[2],
	    "participants:\n"
	    "  billing: {endpoints: [\"tcp://h:2\"]}\n"
	    "sagas:\n"
	    "  - name: b\n"
	    "    steps:\n"
	    "      - {name: s, participant: billing, action: x, kind: "
	    "pivot}\n");
	d = load_ok(files, 3);
	assert_int_equal(d->nparticipants, 2);
	assert_string_equal(d->participants[0]->name, "orders");
	assert_string_equal(d->participants[1]->name, "billing");
	assert_int_equal(d->nsagas, 2);
	assert_string_equal(d->sagas[0]->name, "a");
	assert_string_equal(d->sagas[0]->file, "orders.yaml");
	assert_int_equal(d->sagas[0]->line, 5);
	assert_int_equal(d->sagas[0]->steps[0].timeout_ms, 5000);
	assert_int_equal(d->sagas[0]->steps[0].retry.max_attempts, 7);
	/* A retriable step ignores the file's max_attempts. */
	assert_int_equal(d->sagas[0]->steps[1].retry.max_attempts, 0);
	assert_string_equal(d->sagas[1]->name, "b");
	assert_string_equal(d->sagas[1]->file, "other.yaml");
	assert_int_equal(d->sagas[1]->steps[0].timeout_ms, 2000);
	assert_int_equal(d->sagas[1]->steps[0].retry.max_attempts, 5);
	coord_defs_free(d);
}

static void
test_coord_config_duplicate_across_files(void **state)
{
	const char *files[] = { "one.yaml", "two.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n");
	put(files[1],
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n"
	    "participants:\n"
	    "  q: {endpoints: [\"tcp://h:1\"]}\n"
	    "  p: {endpoints: [\"tcp://h:2\"]}\n");
	expect_files_errs(files, 2,
	    "two.yaml:2:11: duplicate saga \"s\" (first defined at "
	    "one.yaml:4:11)",
	    "two.yaml:7:3: duplicate participant \"p\" (first defined at "
	    "one.yaml:2:3)",
	    NULL);
}

/* A duplicate participant's body is checked too, as a duplicate saga's
 * is: its errors came one at a time, after each rename. */
static void
test_coord_config_duplicate_participant_body(void **state)
{
	const char *files[] = { "dupbody.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "  p: {endpoints: [\"http://x\"], colour: red}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n");
	expect_files_errs(files, 1,
	    "dupbody.yaml:3:3: duplicate participant \"p\" (first defined "
	    "at dupbody.yaml:2:3)",
	    "dupbody.yaml:3:20: endpoints: expected a URL tcp://host:port, "
	    "tls+tcp://host:port, ipc://path or inproc://name, got "
	    "\"http://x\"",
	    "dupbody.yaml:3:32: unknown key \"colour\" in a participant "
	    "(allowed: endpoints, max_in_flight, tls, max_batch)",
	    NULL);
}

static void
test_coord_config_syntax_errors(void **state)
{
	const char *files[] = { "flow.yaml", "dupkey.yaml", "tab.yaml",
		"quote.yaml", "fine.yaml" };

	(void) state;
	put(files[0], "sagas: [1, 2\n");
	put(files[1],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "  p: {endpoints: [\"tcp://h:2\"]}\n");
	put(files[2], "sagas:\n\t- name: x\n");
	put(files[3],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - name: a\n"
	    "        action: \"x\n");
	/* A good file among bad ones is still checked. */
	put(files[4], "sagas:\n  - name: s\n");
	expect_files_errs(files, 5,
	    "flow.yaml:2:1: flow sequence without a closing bracket",
	    "dupkey.yaml:3:3: duplicate participant \"p\" (first defined "
	    "at dupkey.yaml:2:3)",
	    "tab.yaml:2:1: tab character may not be used as indentation",
	    "quote.yaml:7:18: double-quoted scalar without closing quote",
	    "fine.yaml:2:5: saga \"s\": missing required key \"steps\"",
	    NULL);
}

/* A key twice in one mapping is reported at the second with the first's
 * place, at every level, and the rest of the file is still checked.
 * libfyaml reported "duplicate key" alone and stopped at the first. */
static void
test_coord_config_duplicate_keys(void **state)
{
	const char *files[] = { "dups.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"                                    /* 1 */
	    "  p: {endpoints: [\"tcp://h:1\"], max_in_flight: lots}\n"
	    "defaults:\n"                                        /* 3 */
	    "  timeout: 1s\n"                                    /* 4 */
	    "  timeout: 2s\n"                                    /* 5 */
	    "sagas:\n"                                           /* 6 */
	    "  - name: s\n"                                      /* 7 */
	    "    steps:\n"                                       /* 8 */
	    "      - name: a\n"                                  /* 9 */
	    "        participant: p\n"                           /* 10 */
	    "        action: x\n"                                /* 11 */
	    "        kind: pivot\n"                              /* 12 */
	    "        retry: {max_attempts: 2, max_attempts: 3}\n" /* 13 */
	    "        action: y\n"                                /* 14 */
	    "    name: t\n"                                      /* 15 */
	    "sagas: []\n");                                      /* 16 */
	expect_files_errs(files, 1,
	    "dups.yaml:2:48: max_in_flight: expected an integer 1..65536, got "
	    "\"lots\"",
	    "dups.yaml:5:3: duplicate key \"timeout\" in defaults (first at "
	    "dups.yaml:4:3)",
	    "dups.yaml:13:34: duplicate key \"max_attempts\" in a retry "
	    "policy (first at dups.yaml:13:17)",
	    "dups.yaml:14:9: duplicate key \"action\" in a step (first at "
	    "dups.yaml:11:9)",
	    "dups.yaml:15:5: duplicate key \"name\" in a saga (first at "
	    "dups.yaml:7:5)",
	    "dups.yaml:16:1: duplicate key \"sagas\" at the top level (first "
	    "at dups.yaml:6:1)",
	    NULL);
}

/* A file that is not UTF-8 text is refused at the first bad byte, with
 * its position: libfyaml would end the stream there without an error
 * (the rest of the file unseen: the saga t and the bad key below were
 * dropped, "OK"), and loops for ever on such a byte in a directive. A
 * UTF-8 byte-order mark is fine, and takes no column, as in libfyaml's
 * own positions (bomurl.yaml); a column counts characters, not bytes. */
static void
test_coord_config_not_utf8(void **state)
{
	static const char latin1[] =
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "# r\xe9sum\xe9\n"
	    "sagas:\n"
	    "  - {name: t, steps: [{name: a, participant: p, action: x, "
	    "bogus: 1}]}\n";
	static const char nul[] = "participants: {}\nsagas: []\0bogus: 1\n";
	static const char u16[] = "\xff\xfep\0a\0";
	static const char directive[] = "%FOO\xfe\n";
	static const char bom[] = "\xef\xbb\xbfparticipants: {}\n";
	static const char bomlatin1[] =
	    "\xef\xbb\xbfsagas: [] # \xc3\xa9 \xe9\n";
	const char *files[] = { "latin1.yaml", "nul.yaml", "u16.yaml",
		"directive.yaml", "cut.yaml", "bomlatin1.yaml",
		"bomurl.yaml" };
	coord_defs *d;

	(void) state;
	put_n(files[0], latin1, sizeof(latin1) - 1);
	put_n(files[1], nul, sizeof(nul) - 1);
	put_n(files[2], u16, sizeof(u16) - 1);
	put_n(files[3], directive, sizeof(directive) - 1);
	put(files[4], "sagas: []\r# \xe2\x82");
	put_n(files[5], bomlatin1, sizeof(bomlatin1) - 1);
	put(files[6],
	    "\xef\xbb\xbfparticipants: {p: {endpoints: [\"\xc3\xa9\", "
	    "\"http://x\"]}}\n");
	expect_files_errs(files, 7,
	    "latin1.yaml:3:4: byte 0xe9 is not UTF-8; a configuration is "
	    "UTF-8 text",
	    "nul.yaml:2:10: a NUL byte; a configuration is UTF-8 text "
	    "without NUL (is the file UTF-16?)",
	    "u16.yaml:1:1: the file starts with a UTF-16 or UTF-32 "
	    "byte-order mark; a configuration is UTF-8",
	    "directive.yaml:1:5: byte 0xfe is not UTF-8; a configuration is "
	    "UTF-8 text",
	    "cut.yaml:2:3: byte 0xe2 is not UTF-8; a configuration is UTF-8 "
	    "text",
	    "bomlatin1.yaml:1:15: byte 0xe9 is not UTF-8; a configuration is "
	    "UTF-8 text",
	    "bomurl.yaml:1:33: endpoints: expected a URL tcp://host:port, "
	    "tls+tcp://host:port, ipc://path or inproc://name, got "
	    "\"\xc3\xa9\"",
	    "bomurl.yaml:1:38: endpoints: expected a URL tcp://host:port, "
	    "tls+tcp://host:port, ipc://path or inproc://name, got "
	    "\"http://x\"",
	    NULL);
	put_n("bom.yaml", bom, sizeof(bom) - 1);
	d = load_ok((const char *const[]) { "bom.yaml" }, 1);
	coord_defs_free(d);
}

/* A value written as a block scalar (| or >) is reported at its first
 * character: on its first line that is not empty, after the indentation
 * (the spaces an indentation indicator keeps are the value's), whatever
 * ends the lines; an empty one at its key. libfyaml marks column 0 of the
 * line after the indicator, which was reported as it stood: the next
 * key's line for an empty block, and column 1. */
static void
test_coord_config_block_scalar_positions(void **state)
{
	const char *files[] = { "block.yaml", "crlf.yaml", "cr.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"                                       /* 1 */
	    "  p:\n"                                                /* 2 */
	    "    endpoints:\n"                                      /* 3 */
	    "      - |\n"                                           /* 4 */
	    "        http://x\n"                                    /* 5 */
	    "    max_in_flight: >-\n"                               /* 6 */
	    "\n"                                                    /* 7 */
	    "      lots\n"                                          /* 8 */
	    "    max_batch: |2-\n"                                  /* 9 */
	    "          5x\n"                                        /* 10 */
	    "sagas:\n"                                              /* 11 */
	    "  - name: s\n"                                         /* 12 */
	    "    deadline: |  # five what?\n"                       /* 13 */
	    "      5x\n"                                            /* 14 */
	    "    steps:\n"                                          /* 15 */
	    "      - name: a\n"                                     /* 16 */
	    "        participant: p\n"                              /* 17 */
	    "        action: x\n"                                   /* 18 */
	    "        compensation: y\n"                             /* 19 */
	    "        kind: >\n"                                     /* 20 */
	    "          weird\n"                                     /* 21 */
	    "        timeout: |\n"                                  /* 22 */
	    "  - name: t\n"                                         /* 23 */
	    "    steps: [{name: a, participant: p, action: x, "
	    "kind: pivot}]\n");                                     /* 24 */
	put(files[1],
	    "participants:\r\n"
	    "  q:\r\n"
	    "    endpoints: [\"tcp://h:1\"]\r\n"
	    "    max_in_flight: |\r\n"
	    "\r\n"
	    "      lots\r\n");
	put(files[2],
	    "participants:\r"
	    "  r:\r"
	    "    endpoints: [\"tcp://h:1\"]\r"
	    "    max_in_flight: |\r"
	    "\r"
	    "      lots\r");
	expect_files_errs(files, 3,
	    "block.yaml:5:9: endpoints: expected a URL tcp://host:port, "
	    "tls+tcp://host:port, ipc://path or inproc://name, got "
	    "\"http://x\\x0a\"",
	    "block.yaml:8:7: max_in_flight: expected an integer 1..65536, "
	    "got \"\\x0alots\"",
	    "block.yaml:10:7: max_batch: expected an integer 1..1024, got "
	    "\"    5x\"",
	    "block.yaml:14:7: deadline: expected a duration like 500ms, 2s, "
	    "1m, got \"5x\\x0a\"",
	    "block.yaml:21:11: kind: expected compensatable, pivot or "
	    "retriable, got \"weird\\x0a\"",
	    "block.yaml:22:9: timeout: expected a duration like 500ms, 2s, "
	    "1m, got \"\"",
	    "crlf.yaml:6:7: max_in_flight: expected an integer 1..65536, got "
	    "\"\\x0alots\\x0a\"",
	    "cr.yaml:6:7: max_in_flight: expected an integer 1..65536, got "
	    "\"\\x0alots\\x0a\"",
	    NULL);
}

/* A YAML tag is refused where it stands (the loader reads values by
 * their text: "!!str null" was read as null, "!!binary eA==" as the text
 * "eA=="); a key holding a NUL escape is not the key without it ("kind\0"
 * was read as kind). */
/* libfyaml 0.7.12 reads the lines after an empty block scalar as its
 * text even when they are not indented more than its key or its item's
 * -: the first file loaded with the compensation "timeout: 5s\n" and no
 * timeout, the third with "- cvv\n" redacted instead of cvv. A block
 * scalar whose text is indented loads as before. */
static void
test_coord_config_block_scalar_ends(void **state)
{
	const char *files[] = { "swallow.yaml", "top.yaml", "list.yaml" };
	coord_defs     *d;
	const saga_def *s;

	(void) state;
	put(files[0],
	    "participants:\n"                                       /* 1 */
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"                    /* 2 */
	    "sagas:\n"                                              /* 3 */
	    "  - name: s\n"                                         /* 4 */
	    "    steps:\n"                                          /* 5 */
	    "      - name: a\n"                                     /* 6 */
	    "        participant: p\n"                              /* 7 */
	    "        action: x\n"                                   /* 8 */
	    "        compensation: |\n"                             /* 9 */
	    "        timeout: 5s\n");                               /* 10 */
	put(files[1],
	    "participants:\n"
	    "  q: {endpoints: [\"tcp://h:1\"]}\n"
	    "defaults:\n"
	    "  timeout: >\n"
	    "  max_in_flight: 3\n"
	    "sagas: []\n");
	put(files[2],
	    "participants:\n"
	    "  r: {endpoints: [\"tcp://h:1\"]}\n"
	    "sagas:\n"
	    "  - name: u\n"
	    "    redact:\n"
	    "      - |\n"
	    "      - cvv\n"
	    "    steps: [{name: a, participant: r, action: x, "
	    "kind: pivot}]\n");
	expect_files_errs(files, 3,
	    "swallow.yaml:10:9: compensation: this line is not indented "
	    "more than the key, so it is not the text of its block scalar "
	    "(| or >): indent the text, or write an empty value as \"\"",
	    "top.yaml:5:3: timeout: this line is not indented more than "
	    "the key, so it is not the text of its block scalar (| or >): "
	    "indent the text, or write an empty value as \"\"",
	    "list.yaml:7:7: a list item: this line is not indented more "
	    "than the item's -, so it is not the text of its block scalar "
	    "(| or >): indent the text, or write an empty value as \"\"",
	    NULL);
	d = load_text_ok("indented.yaml",
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - name: a\n"
	    "        participant: p\n"
	    "        action: x\n"
	    "        compensation: |-\n"
	    "         undo\n"
	    "        timeout: 5s\n");
	s = coord_defs_find(d, "s");
	assert_non_null(s);
	assert_string_equal(s->steps[0].compensation, "undo");
	assert_int_equal(s->steps[0].timeout_ms, 5000);
	coord_defs_free(d);
}

static void
test_coord_config_tags_and_nul_keys(void **state)
{
	const char *files[] = { "tags.yaml", "nulkey.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x,\n"
	    "         compensation: !!str null}\n"
	    "      - {name: b, participant: !custom p, action: y,\n"
	    "         compensation: z}\n"
	    "  - name: t\n"
	    "    steps: !!seq\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n");
	put(files[1],
	    "participants:\n"
	    "  q: {endpoints: [\"tcp://h:1\"]}\n"
	    "sagas:\n"
	    "  - name: u\n"
	    "    steps:\n"
	    "      - {name: a, participant: q, action: x, compensation: c}\n"
	    "      - {name: b, participant: q, action: y,"
	    " \"kind\\0\": pivot}\n");
	/* A tagged value is read by its text: "!!str null" as null. */
	expect_files_errs(files, 2,
	    "tags.yaml:7:24: a YAML tag (tag:yaml.org,2002:str) is not "
	    "supported: write the value without it",
	    "tags.yaml:7:30: step \"a\": a compensatable step needs a "
	    "compensation (or kind pivot or retriable)",
	    "tags.yaml:8:32: a YAML tag (!custom) is not supported: write the "
	    "value without it",
	    "tags.yaml:11:12: a YAML tag (tag:yaml.org,2002:seq) is not "
	    "supported: write the value without it",
	    "nulkey.yaml:7:10: step \"b\": a compensatable step needs a "
	    "compensation (or kind pivot or retriable)",
	    "nulkey.yaml:7:47: expected a key in a step (one of: name, "
	    "participant, action, compensation, kind, timeout, retry, "
	    "compensation_retry, compensation_timeout), got \"kind\\x00\"",
	    NULL);
}

/* Whether s is well-formed UTF-8. */
static bool
utf8_ok(const char *s)
{
	size_t len = strlen(s);
	size_t n;

	for (size_t i = 0; i < len; i += n) {
		if ((n = proto_utf8_char((const uint8_t *) s + i, len - i)) ==
		    0) {
			return (false);
		}
	}
	return (true);
}

/* Loads files, expects SAGA_ECONFIG and checks that every message is
 * valid UTF-8 and is exactly the one expected (a NULL-terminated list). */
static void
expect_utf8_errs(const char *const *files, size_t nfiles, ...)
{
	coord_defs *d = NULL;
	coord_errs  e = { 0 };
	const char *want;
	size_t      n = 0;
	va_list     ap;

	assert_int_equal(coord_defs_load(files, nfiles, &d, &e), SAGA_ECONFIG);
	assert_null(d);
	for (size_t i = 0; i < e.n; i++) {
		assert_true(utf8_ok(e.msgs[i]));
	}
	va_start(ap, nfiles);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (n >= e.n || strcmp(e.msgs[n], want) != 0) {
			print_errs(&e);
		}
		assert_true(n < e.n);
		assert_string_equal(e.msgs[n], want);
		n++;
	}
	va_end(ap);
	if (e.n != n) {
		print_errs(&e);
	}
	assert_int_equal(e.n, n);
	coord_errs_fini(&e);
}

/* The excerpts in messages are cut between two characters, never inside
 * one: a message must stay valid UTF-8 (sagactl validate --json could
 * print none of them otherwise); and "..." follows a cut text only. */
static void
test_coord_config_messages_cut_at_characters(void **state)
{
	const char *files[] = { "cutname.yaml", "cutkey.yaml",
		"cutesc.yaml", "uncut.yaml" };
	char        e40[81];
	char        text[512];
	char        want[512];

	(void) state;
	/* 40 x U+00E9, 2 bytes each. */
	for (size_t i = 0; i < 40; i++) {
		memcpy(e40 + 2 * i, "\xc3\xa9", 2);
	}
	e40[80] = '\0';

	/* A "got" excerpt (60 bytes with its opening quote): 29
	 * characters, not 29 and a half. */
	snprintf(text, sizeof(text),
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n"
	    "sagas:\n"
	    "  - name: %s\n"
	    "    steps: [{name: a, participant: p, action: x, "
	    "kind: pivot}]\n",
	    e40);
	put(files[0], text);
	snprintf(want, sizeof(want),
	    "cutname.yaml:3:11: name: expected a name of 1..128 characters "
	    "A-Z a-z 0-9 _ . -, got \"%.58s...\"",
	    e40);
	expect_utf8_errs(files, 1, want, NULL);

	/* The key of a mis-indented block scalar (40 bytes): 'a' and 19
	 * characters, not 19 and a half. */
	snprintf(text, sizeof(text),
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    a%s: |\n"
	    "    steps: [{name: a, participant: p, action: x, "
	    "kind: pivot}]\n",
	    e40);
	put(files[1], text);
	snprintf(want, sizeof(want),
	    "cutkey.yaml:5:5: a%.38s: this line is not indented more than "
	    "the key, so it is not the text of its block scalar (| or >): "
	    "indent the text, or write an empty value as \"\"",
	    e40);
	expect_utf8_errs(files + 1, 1, want, NULL);

	/* An escape is not cut either: the quote, 57 bytes and "\x01"
	 * would pass 60. */
	put(files[2],
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n"
	    "sagas:\n"
	    "  - name: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaa\\x01\"\n"
	    "    steps: [{name: a, participant: p, action: x, "
	    "kind: pivot}]\n");
	expect_utf8_errs(files + 2, 1,
	    "cutesc.yaml:3:12: name: expected a name of 1..128 characters "
	    "A-Z a-z 0-9 _ . -, got \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaa...\"",
	    NULL);

	/* 59 characters fit whole: no "...". */
	put(files[3],
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n"
	    "sagas:\n"
	    "  - name: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaa \"\n"
	    "    steps: [{name: a, participant: p, action: x, "
	    "kind: pivot}]\n");
	expect_utf8_errs(files + 3, 1,
	    "uncut.yaml:3:12: name: expected a name of 1..128 characters "
	    "A-Z a-z 0-9 _ . -, got \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaa \"",
	    NULL);
}

/* A file with a YAML tag is still read: its other errors are reported
 * with the tag's (docs/sagas.md: every error of every file). After a
 * block scalar that swallowed the lines after it, the file is not read
 * further (its unknown key is not reported): those lines would be
 * reported again as its value. */
static void
test_coord_config_tag_and_other_errors(void **state)
{
	const char *files[] = { "tagged.yaml", "swallowed.yaml" };

	(void) state;
	put(files[0],
	    "participants:\n"                                       /* 1 */
	    "  p: {endpoints: [\"tcp://h:1\"], bogus: 1}\n"          /* 2 */
	    "sagas:\n"                                              /* 3 */
	    "  - name: s\n"                                         /* 4 */
	    "    deadline: !!str 5s\n"                              /* 5 */
	    "    steps:\n"                                          /* 6 */
	    "      - name: a\n"                                     /* 7 */
	    "        participant: nobody\n"                         /* 8 */
	    "        action: x\n"                                   /* 9 */
	    "        kind: pivot\n"                                 /* 10 */
	    "        timeout: 5 s\n");                              /* 11 */
	put(files[1],
	    "participants:\n"                                       /* 1 */
	    "  q: {endpoints: [\"tcp://h:1\"], bogus: 1}\n"          /* 2 */
	    "defaults:\n"                                           /* 3 */
	    "  timeout: >\n"                                        /* 4 */
	    "  max_in_flight: 3\n"                                  /* 5 */
	    "sagas: []\n");                                         /* 6 */
	expect_files_errs(files, 2,
	    "tagged.yaml:2:33: unknown key \"bogus\" in a participant "
	    "(allowed: endpoints, max_in_flight, tls, max_batch)",
	    "tagged.yaml:5:15: a YAML tag (tag:yaml.org,2002:str) is not "
	    "supported: write the value without it",
	    "tagged.yaml:8:22: participant: unknown participant \"nobody\" "
	    "(define it under participants:; or a file that could not be "
	    "read declares it)",
	    "tagged.yaml:11:18: timeout: expected a duration like 500ms, 2s, "
	    "1m, got \"5 s\"",
	    "swallowed.yaml:5:3: timeout: this line is not indented more "
	    "than the key, so it is not the text of its block scalar (| or "
	    ">): indent the text, or write an empty value as \"\"",
	    NULL);
}

/* A stand-in for nng's check (coord_config_url_check): refuses URLs
 * with "bad" in them. */
static bool
url_check_stub(const char *url, char *why, size_t whylen)
{
	if (strstr(url, "bad") != NULL) {
		snprintf(why, whylen, "Address invalid");
		return (false);
	}
	return (true);
}

/* With coord_config_url_check set (sagad, sagactl), an endpoint the
 * transport cannot dial is an error at its position; without it (pure
 * code), the loader's own checks only. */
static void
test_coord_config_url_check_hook(void **state)
{
	static const char text[] =
	    "participants:\n"
	    "  p:\n"
	    "    endpoints: [\"tcp://good:1\", \"tcp://bad:2\"]\n";
	const char *files[] = { "hook.yaml" };
	coord_defs *d;

	(void) state;
	put(files[0], text);
	coord_config_url_check = url_check_stub;
	expect_files_errs(files, 1,
	    "hook.yaml:3:34: endpoints: tcp://bad:2 cannot be dialled: "
	    "Address invalid",
	    NULL);
	coord_config_url_check = NULL;
	d = load_ok(files, 1);
	coord_defs_free(d);
}

static void
test_coord_config_missing_file(void **state)
{
	const char *files[] = { "nowhere.yaml", ".", "ok.yaml" };

	(void) state;
	put(files[2], "participants:\n  p: {endpoints: [\"tcp://h:1\"]}\n");
	expect_files_errs(files, 3,
	    "nowhere.yaml: cannot read: No such file or directory",
	    ".: cannot read: Is a directory",
	    NULL);
}

/* Aliases, a second document, empty files. */
static void
test_coord_config_document_shape(void **state)
{
	const char *files[] = { "alias.yaml" };
	const char *empty[] = { "empty.yaml", "comments.yaml", "nulls.yaml" };
	coord_defs *d;

	(void) state;
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - &st {name: a, participant: p, action: x, kind: pivot}\n"
	    "      - *st\n"
	    "---\n"
	    "b: 1\n");
	/* At the '*' (it was one column right), as a value, an item and a
	 * key. */
	expect_files_errs(files, 1,
	    "alias.yaml:7:9: aliases are not supported (*st)",
	    "alias.yaml:9:1: expected one YAML document, found a second one",
	    NULL);
	put(files[0],
	    "participants:\n"
	    "  p: {endpoints: [\"tcp://h:1\"]}\n"
	    "x: &k shop\n"
	    "sagas:\n"
	    "  - name:   *k\n"
	    "    steps: [{name: a, participant: p, action: x, kind: pivot}]\n"
	    "    *k : 1\n");
	expect_files_errs(files, 1,
	    "alias.yaml:3:1: unknown key \"x\" at the top level (allowed: "
	    "participants, defaults, sagas)",
	    "alias.yaml:5:13: aliases are not supported (*k)",
	    "alias.yaml:7:5: aliases are not supported (*k)",
	    NULL);
	/* An empty second document: the position of its --- (it had
	 * none). */
	put(files[0], "participants: {}\n---\n");
	expect_files_errs(files, 1,
	    "alias.yaml:2:1: expected one YAML document, found a second one",
	    NULL);
	put(empty[0], "");
	put(empty[1], "# nothing yet\n---\n");
	put(empty[2], "participants:\ndefaults:\nsagas:\n");
	d = load_ok(empty, 3);
	assert_int_equal(d->nsagas, 0);
	assert_int_equal(d->nparticipants, 0);
	assert_null(coord_defs_find(d, "s"));
	coord_defs_free(d);
	d = load_ok(NULL, 0);
	assert_int_equal(d->nsagas, 0);
	coord_defs_free(d);
}

/* Errors are appended to what errs holds; errs may be NULL. */
static void
test_coord_config_errs_append(void **state)
{
	const char *files[] = { "bad1.yaml" };
	coord_defs *d = NULL;
	coord_errs  e = { 0 };

	(void) state;
	put(files[0], "oops: 1\n");
	assert_int_equal(coord_defs_load(files, 1, &d, &e), SAGA_ECONFIG);
	assert_int_equal(coord_defs_load(files, 1, &d, &e), SAGA_ECONFIG);
	assert_int_equal(e.n, 2);
	assert_string_equal(e.msgs[0], e.msgs[1]);
	assert_int_equal(coord_defs_load(files, 1, &d, NULL), SAGA_ECONFIG);
	assert_null(d);
	coord_errs_fini(&e);
	coord_errs_fini(&e);
	coord_errs_fini(NULL);
	coord_defs_free(NULL);
}

static void
test_coord_config_durations_parse(void **state)
{
	static const struct {
		const char *s;
		int64_t     ms;
	} good[] = {
		{ "250ms", 250 },
		{ "0ms", 0 },
		{ "2s", 2000 },
		{ "1.5s", 1500 },
		{ "1.000s", 1000 },
		{ "0.001s", 1 },
		{ "5m", 300000 },
		{ "1.25m", 75000 },
		{ "1h", 3600000 },
		{ "1d", 86400000 },
		{ "007s", 7000 },
		{ "0.5d", 43200000 },
		{ "9223372036854775807ms", INT64_MAX },
		{ "106751991167d", 106751991167LL * 86400000 },
	};
	static const char *const bad[] = {
		"",
		"2",
		"1.5",
		"s",
		"ms",
		".5s",
		"1.s",
		"2 s",
		" 2s",
		"2s ",
		"-1s",
		"+1s",
		"2S",
		"2sec",
		"2us",
		"1e3ms",
		"0x10s",
		"1.5ms",
		"0.0005s",
		"2ms5",
		"1s2",
		"1.0000000001s",
	};
	/* Well formed, but too long for an int64_t of milliseconds. */
	static const char *const big[] = {
		"9223372036854775808ms",
		"106751991168d",
		"99999999999999999999999s",
	};
	int64_t ms;

	(void) state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = -1;
		if (coord_duration_parse(good[i].s, &ms) != 0 ||
		    ms != good[i].ms) {
			fail_msg("\"%s\" gave %lld", good[i].s,
			    (long long) ms);
		}
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = -1;
		if (coord_duration_parse(bad[i], &ms) != SAGA_EINVAL ||
		    ms != -1) {
			fail_msg("\"%s\" was accepted", bad[i]);
		}
	}
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		ms = -1;
		if (coord_duration_parse(big[i], &ms) != SAGA_ERANGE ||
		    ms != -1) {
			fail_msg("\"%s\" was not out of range", big[i]);
		}
	}
	assert_int_equal(coord_duration_parse(NULL, &ms), SAGA_EINVAL);
}

/* The canonical JSON of the demo, pinned: a change of this text changes
 * every stored definition's hash. */
static const char demo_ping_json[] =
    "{\"name\": \"ping\", \"deadline\": null, \"business_key\": null, "
    "\"steps\": [{\"name\": \"ping\", \"participant\": \"orders\", "
    "\"action\": \"ping\", \"compensation\": null, \"kind\": \"pivot\", "
    "\"timeout\": \"3000ms\", \"retry\": {\"max_attempts\": 4, "
    "\"initial_backoff\": \"200ms\", \"multiplier\": 1.5, "
    "\"max_backoff\": \"10000ms\", \"jitter\": 0.1}, "
    "\"compensation_retry\": {\"max_attempts\": 0, "
    "\"initial_backoff\": \"100ms\", \"multiplier\": 2, "
    "\"max_backoff\": \"120000ms\", \"jitter\": 0.2}, "
    "\"compensation_timeout\": \"43200000ms\"}]}";

/* Checks that two definitions are equal field by field. */
static void
check_same_def(const saga_def *a, const saga_def *b)
{
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->deadline_ms, b->deadline_ms);
	if (a->business_key == NULL) {
		assert_null(b->business_key);
	} else {
		assert_string_equal(a->business_key, b->business_key);
	}
	assert_int_equal(a->nredact, b->nredact);
	for (size_t i = 0; i < a->nredact; i++) {
		assert_string_equal(a->redact[i], b->redact[i]);
	}
	assert_int_equal(a->pivot, b->pivot);
	assert_int_equal(a->nsteps, b->nsteps);
	for (size_t i = 0; i < a->nsteps; i++) {
		const saga_step_def *x = &a->steps[i];
		const saga_step_def *y = &b->steps[i];

		assert_string_equal(x->name, y->name);
		assert_string_equal(x->participant, y->participant);
		assert_string_equal(x->action, y->action);
		if (x->compensation == NULL) {
			assert_null(y->compensation);
		} else {
			assert_string_equal(x->compensation, y->compensation);
		}
		assert_int_equal(x->kind, y->kind);
		assert_int_equal(x->timeout_ms, y->timeout_ms);
		assert_memory_equal(&x->retry, &y->retry, sizeof(x->retry));
		assert_memory_equal(
		    &x->comp_retry, &y->comp_retry, sizeof(x->comp_retry));
		assert_int_equal(x->comp_budget_ms, y->comp_budget_ms);
	}
}

static void
test_coord_config_json_round_trip(void **state)
{
	coord_defs *d;
	saga_def   *back = NULL;
	char        err[256];

	(void) state;
	d = load_text_ok("demo.yaml", demo_yaml);
	assert_string_equal(coord_defs_find(d, "ping")->json, demo_ping_json);
	for (size_t i = 0; i < d->nsagas; i++) {
		assert_int_equal(
		    coord_def_from_json(d->sagas[i]->json, &back, err,
		        sizeof(err)),
		    0);
		assert_string_equal(err, "");
		assert_string_equal(back->json, d->sagas[i]->json);
		check_same_def(d->sagas[i], back);
		assert_null(back->file);
		assert_int_equal(back->line, 0);
		assert_int_equal(back->version, 0);
		assert_string_equal(back->hash, "");
		saga_def_free(back);
		back = NULL;
	}
	coord_defs_free(d);
}

/* Same definition, same bytes: loading twice, and writing the same saga
 * with keys in another order, with the defaults spelled out, and in flow
 * style, gives the same JSON. */
static void
test_coord_config_json_deterministic(void **state)
{
	coord_defs *a;
	coord_defs *b;
	coord_defs *c;

	(void) state;
	a = load_text_ok("demo.yaml", demo_yaml);
	b = load_text_ok("demo.yaml", demo_yaml);
	assert_string_equal(a->sagas[0]->json, b->sagas[0]->json);
	coord_defs_free(b);
	coord_defs_free(a);

	a = load_text_ok("order1.yaml",
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    steps:\n"
	    "      - name: a\n"
	    "        participant: p\n"
	    "        action: x\n"
	    "        compensation: y\n");
	b = load_text_ok("order2.yaml",
	    "sagas:\n"
	    "  - steps:\n"
	    "      - compensation_timeout: 1d\n"
	    "        retry: {jitter: 0.2, max_attempts: 5}\n"
	    "        compensation: 'y'\n"
	    "        action: \"x\"\n"
	    "        kind: compensatable\n"
	    "        participant: p\n"
	    "        timeout: 2000ms\n"
	    "        name: a\n"
	    "    business_key: null\n"
	    "    name: s\n"
	    "participants:\n"
	    "  p:\n"
	    "    endpoints:\n"
	    "      - tcp://h:1\n");
	c = load_text_ok("order3.yaml",
	    "{\"participants\": {\"p\": {\"endpoints\": [\"tcp://h:1\"]}},"
	    " \"sagas\": [{\"name\": \"s\", \"steps\": [{\"name\": \"a\","
	    " \"participant\": \"p\", \"action\": \"x\","
	    " \"compensation\": \"y\", \"retry\": {\"multiplier\": "
	    "2.0}}]}]}\n");
	assert_string_equal(a->sagas[0]->json, b->sagas[0]->json);
	assert_string_equal(a->sagas[0]->json, c->sagas[0]->json);
	coord_defs_free(c);
	coord_defs_free(b);
	coord_defs_free(a);
}

/* Strings that need escaping survive the round trip, through libfyaml's
 * escaping; numbers keep their exact value. */
static void
test_coord_config_json_escapes(void **state)
{
	coord_defs *d;
	saga_def   *back = NULL;
	saga_def   *again = NULL;
	char        err[256];

	(void) state;
	d = load_text_ok("escape.yaml",
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n"
	    "sagas:\n"
	    "  - name: s\n"
	    "    business_key: \"key \\\"quoted\\\" \\\\ back\"\n"
	    "    steps:\n"
	    "      - name: a\n"
	    "        participant: p\n"
	    "        action: \"tab\\there\\nnewline \\u00e9t\\u00e9 \\x01 "
	    "null\"\n"
	    "        compensation: \"true\"\n"
	    "        retry: {multiplier: 1.1, jitter: 0.30000000000000004}\n"
	    "      - {name: b, participant: p, action: '123', kind: pivot}\n");
	assert_string_equal(d->sagas[0]->business_key,
	    "key \"quoted\" \\ back");
	assert_string_equal(d->sagas[0]->steps[0].action,
	    "tab\there\nnewline \xc3\xa9t\xc3\xa9 \x01 null");
	assert_int_equal(coord_def_from_json(d->sagas[0]->json, &back, err,
	                     sizeof(err)),
	    0);
	check_same_def(d->sagas[0], back);
	assert_string_equal(back->steps[0].compensation, "true");
	assert_string_equal(back->steps[1].action, "123");
	assert_true(back->steps[0].retry.multiplier == 1.1);
	assert_true(back->steps[0].retry.jitter == 0.30000000000000004);
	assert_string_equal(back->json, d->sagas[0]->json);
	assert_int_equal(
	    coord_def_from_json(back->json, &again, err, sizeof(err)), 0);
	assert_string_equal(again->json, d->sagas[0]->json);
	saga_def_free(again);
	saga_def_free(back);
	coord_defs_free(d);
}

/* A definition that uses every field and the kinds of strings that the
 * emitter treats apart (escapes, control and non-ASCII characters, a
 * character beyond U+FFFF, inner runs of spaces, text that reads as YAML
 * or JSON, a line longer than libfyaml's default width). */
static const char rich_yaml[] =
    "participants:\n"
    "  p: {endpoints: [\"tcp://h:1\"]}\n"
    "  q-2.x: {endpoints: [\"tcp://h:2\"]}\n"
    "defaults:\n"
    "  timeout: 1.5s\n"
    "  retry: {multiplier: 1.25, max_backoff: 90s}\n"
    "sagas:\n"
    "  - name: rich.Saga-1\n"
    "    deadline: 90m\n"
    "    business_key: \"order \\\"id\\\" / \\\\ \\u00fc \\U0001F600 "
    "tab\\there\"\n"
    "    redact: [zeta, \"card  number\", \"\\u00e9\\tx\", "
    "\"{\\\"x\\\": [1]} # no\", \"true\"]\n"
    "    steps:\n"
    "      - name: reserve\n"
    "        participant: p\n"
    "        action: \"stock.reserve  two  spaces\\u00a0nbsp\"\n"
    "        compensation: \"release\\n2nd line\\r\\x01\\x7f\\u2028"
    "\\ufeff\"\n"
    "        timeout: 250ms\n"
    "        retry: {max_attempts: 7, initial_backoff: 10ms, "
    "multiplier: 1.1, max_backoff: 1s, jitter: 0.30000000000000004}\n"
    "        compensation_retry: {max_attempts: 0, jitter: 0}\n"
    "        compensation_timeout: 2h\n"
    "      - name: charge\n"
    "        participant: q-2.x\n"
    "        action: \"a long action name with many words in it, long "
    "enough to pass the width of eighty columns that libfyaml uses by "
    "default: \\u00e9\\u00e8\\u00ea\"\n"
    "        compensation: \"true\"\n"
    "        kind: pivot\n"
    "      - name: ship\n"
    "        participant: p\n"
    "        action: \"null\"\n"
    "        kind: retriable\n"
    "        retry: {initial_backoff: 1.5s, max_attempts: 100}\n";

/* Its canonical JSON, pinned as the code wrote it before the emitter's
 * output went through proto_json's fix-ups: the bytes (the only input
 * of a definition's hash) of a definition whose strings have no leading
 * or trailing spaces must never change. */
static const char rich_json[] =
    "{\"name\": \"rich.Saga-1\", \"deadline\": \"5400000ms\", "
    "\"business_key\": \"order \\\"id\\\" / \\\\ \xc3\xbc "
    "\\uD83D\\uDE00 tab\\there\", "
    "\"redact\": [\"card  number\", \"true\", \"zeta\", "
    "\"{\\\"x\\\": [1]} # no\", \"\xc3\xa9\\tx\"], "
    "\"steps\": [{\"name\": \"reserve\", \"participant\": \"p\", "
    "\"action\": \"stock.reserve  two  spaces\\u00A0nbsp\", "
    "\"compensation\": \"release\\n2nd line\\r\\u0001\\u007F\\u2028"
    "\\uFEFF\", "
    "\"kind\": \"compensatable\", \"timeout\": \"250ms\", "
    "\"retry\": {\"max_attempts\": 7, \"initial_backoff\": \"10ms\", "
    "\"multiplier\": 1.1, \"max_backoff\": \"1000ms\", "
    "\"jitter\": 0.30000000000000004}, "
    "\"compensation_retry\": {\"max_attempts\": 0, "
    "\"initial_backoff\": \"100ms\", \"multiplier\": 2, "
    "\"max_backoff\": \"60000ms\", \"jitter\": 0}, "
    "\"compensation_timeout\": \"7200000ms\"}, {\"name\": \"charge\", "
    "\"participant\": \"q-2.x\", "
    "\"action\": \"a long action name with many words in it, "
    "long enough to pass the width of eighty columns that libfyaml "
    "uses by default: \xc3\xa9\xc3\xa8\xc3\xaa\", "
    "\"compensation\": \"true\", \"kind\": \"pivot\", "
    "\"timeout\": \"1500ms\", \"retry\": {\"max_attempts\": 5, "
    "\"initial_backoff\": \"100ms\", \"multiplier\": 1.25, "
    "\"max_backoff\": \"90000ms\", \"jitter\": 0.2}, "
    "\"compensation_retry\": {\"max_attempts\": 0, "
    "\"initial_backoff\": \"100ms\", \"multiplier\": 2, "
    "\"max_backoff\": \"60000ms\", \"jitter\": 0.2}, "
    "\"compensation_timeout\": \"86400000ms\"}, {\"name\": \"ship\", "
    "\"participant\": \"p\", \"action\": \"null\", \"compensation\": null, "
    "\"kind\": \"retriable\", \"timeout\": \"1500ms\", "
    "\"retry\": {\"max_attempts\": 100, \"initial_backoff\": \"1500ms\", "
    "\"multiplier\": 1.25, \"max_backoff\": \"90000ms\", \"jitter\": 0.2}, "
    "\"compensation_retry\": {\"max_attempts\": 0, "
    "\"initial_backoff\": \"100ms\", \"multiplier\": 2, "
    "\"max_backoff\": \"60000ms\", \"jitter\": 0.2}, "
    "\"compensation_timeout\": \"86400000ms\"}]}";

/* The canonical JSON of a rich definition is exactly rich_json, and reads
 * back to the same definition and the same bytes. */
static void
test_coord_config_json_pinned(void **state)
{
	coord_defs *d;
	saga_def   *back = NULL;
	char        err[256];

	(void) state;
	d = load_text_ok("rich.yaml", rich_yaml);
	assert_string_equal(d->sagas[0]->json, rich_json);
	assert_int_equal(
	    coord_def_from_json(rich_json, &back, err, sizeof(err)), 0);
	check_same_def(d->sagas[0], back);
	assert_string_equal(back->json, rich_json);
	saga_def_free(back);
	coord_defs_free(d);
}

/* Leading and trailing spaces of strings are part of the definition
 * (libfyaml 0.7.12's emitter dropped them, issue #109): they are in the
 * JSON, which therefore differs from the JSON without them (and so does
 * the hash of it), and they read back; a string of spaces alone too (it
 * was written "", which coord_def_from_json refuses: such a saga could
 * not be recovered). */
static void
test_coord_config_json_edge_spaces(void **state)
{
	coord_defs     *d;
	coord_defs     *plain;
	const saga_def *s;
	saga_def       *back = NULL;
	char            err[256];

	(void) state;
	d = load_text_ok("spaces.yaml",
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n"
	    "sagas:\n"
	    "  - name: pay\n"
	    "    business_key: \" customer id  \"\n"
	    "    redact: [\"card \", \" card\", card, \"  \"]\n"
	    "    steps:\n"
	    "      - name: a\n"
	    "        participant: p\n"
	    "        action: \"charge \"\n"
	    "        compensation: \" undo\"\n"
	    "      - {name: b, participant: p, action: \" \", kind: pivot}\n");
	plain = load_text_ok("nospaces.yaml",
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n"
	    "sagas:\n"
	    "  - name: pay\n"
	    "    business_key: customer id\n"
	    "    redact: [card]\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: charge, "
	    "compensation: undo}\n"
	    "      - {name: b, participant: p, action: x, kind: pivot}\n");
	s = d->sagas[0];
	assert_string_equal(s->business_key, " customer id  ");
	assert_string_equal(s->steps[0].action, "charge ");
	assert_string_equal(s->steps[0].compensation, " undo");
	assert_string_equal(s->steps[1].action, " ");
	assert_string_equal(s->json,
	    "{\"name\": \"pay\", \"deadline\": null, \"business_key\": "
	    "\" customer id  \", \"redact\": [\"  \", \" card\", \"card\", "
	    "\"card \"], \"steps\": [{\"name\": \"a\", \"participant\": "
	    "\"p\", \"action\": \"charge \", \"compensation\": \" undo\", "
	    "\"kind\": \"compensatable\", \"timeout\": \"2000ms\", "
	    "\"retry\": {\"max_attempts\": 5, \"initial_backoff\": "
	    "\"100ms\", \"multiplier\": 2, \"max_backoff\": \"5000ms\", "
	    "\"jitter\": 0.2}, \"compensation_retry\": {\"max_attempts\": 0, "
	    "\"initial_backoff\": \"100ms\", \"multiplier\": 2, "
	    "\"max_backoff\": \"60000ms\", \"jitter\": 0.2}, "
	    "\"compensation_timeout\": \"86400000ms\"}, {\"name\": \"b\", "
	    "\"participant\": \"p\", \"action\": \" \", \"compensation\": "
	    "null, \"kind\": \"pivot\", \"timeout\": \"2000ms\", \"retry\": "
	    "{\"max_attempts\": 5, \"initial_backoff\": \"100ms\", "
	    "\"multiplier\": 2, \"max_backoff\": \"5000ms\", \"jitter\": "
	    "0.2}, \"compensation_retry\": {\"max_attempts\": 0, "
	    "\"initial_backoff\": \"100ms\", \"multiplier\": 2, "
	    "\"max_backoff\": \"60000ms\", \"jitter\": 0.2}, "
	    "\"compensation_timeout\": \"86400000ms\"}]}");
	/* Another definition, other bytes (the hash is of the bytes). */
	assert_string_not_equal(s->json, plain->sagas[0]->json);

	/* What recovery, takeover and sagactl do with the stored text. */
	assert_int_equal(
	    coord_def_from_json(s->json, &back, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	check_same_def(s, back);
	assert_string_equal(back->json, s->json);
	saga_def_free(back);
	coord_defs_free(plain);
	coord_defs_free(d);
}

static void
test_coord_config_from_json_errors(void **state)
{
	saga_def *d = NULL;
	char      err[256];
	char      small[12];

	(void) state;
	/* Every field is required. */
	assert_int_equal(coord_def_from_json("{\"name\": \"s\"}", &d, err,
	                     sizeof(err)),
	    SAGA_ECONFIG);
	assert_null(d);
	assert_string_equal(err,
	    "json:1:3: saga \"s\": missing required key \"deadline\"");
	assert_int_equal(
	    coord_def_from_json(
	        "{\"name\": \"s\", \"deadline\": null, \"business_key\": "
	        "null, "
	        "\"steps\": [{\"name\": \"a\", \"participant\": \"p\", "
	        "\"action\": \"x\", \"compensation\": null, \"kind\": "
	        "\"pivot\", \"timeout\": \"1000ms\", \"retry\": "
	        "{\"max_attempts\": 1}, \"compensation_retry\": "
	        "{\"max_attempts\": 0, \"initial_backoff\": \"100ms\", "
	        "\"multiplier\": 2, \"max_backoff\": \"60000ms\", "
	        "\"jitter\": 0.2}, \"compensation_timeout\": \"1000ms\"}]}",
	        &d, err, sizeof(err)),
	    SAGA_ECONFIG);
	assert_string_equal(err,
	    "json:1:185: retry: missing required key \"initial_backoff\"");
	/* The same rules as YAML; participants are not looked up. */
	assert_int_equal(
	    coord_def_from_json(
	        "{\"name\": \"s\", \"deadline\": null, \"business_key\": "
	        "null, "
	        "\"steps\": [{\"name\": \"a\", \"participant\": \"nobody\", "
	        "\"action\": \"x\", \"compensation\": null, \"kind\": "
	        "\"retriable\", \"timeout\": \"1000ms\", \"retry\": "
	        "{\"max_attempts\": 0, \"initial_backoff\": \"100ms\", "
	        "\"multiplier\": 2, \"max_backoff\": \"60000ms\", "
	        "\"jitter\": 0.2}, \"compensation_retry\": "
	        "{\"max_attempts\": 0, \"initial_backoff\": \"100ms\", "
	        "\"multiplier\": 2, \"max_backoff\": \"60000ms\", "
	        "\"jitter\": 0.2}, \"compensation_timeout\": \"1000ms\"}]}",
	        &d, err, sizeof(err)),
	    SAGA_ECONFIG);
	assert_string_equal(err,
	    "json:1:150: saga \"s\": retriable step \"a\" needs a pivot "
	    "before "
	    "it");
	/* Not JSON, not a saga. */
	assert_int_equal(coord_def_from_json("{\"name\": ", &d, err,
	                     sizeof(err)),
	    SAGA_ECONFIG);
	assert_string_equal(
	    err, "json:2:1: did not find expected node content");
	/* JSON mode: YAML that is not JSON is refused. */
	assert_int_equal(coord_def_from_json("name: s", &d, err, sizeof(err)),
	    SAGA_ECONFIG);
	assert_string_equal(err, "json:1:1: Invalid JSON plain scalar");
	assert_int_equal(
	    coord_def_from_json("[1]", &d, err, sizeof(err)), SAGA_ECONFIG);
	assert_string_equal(
	    err, "json:1:2: saga: expected a mapping, got a list");
	assert_int_equal(
	    coord_def_from_json("", &d, err, sizeof(err)), SAGA_ECONFIG);
	assert_string_equal(
	    err, "json:1:1: JSON does not allow empty root content");
	/* A short buffer gets a cut message; none at all is fine. */
	assert_int_equal(
	    coord_def_from_json("[1]", &d, small, sizeof(small)),
	    SAGA_ECONFIG);
	assert_string_equal(small, "json:1:2: s");
	assert_int_equal(
	    coord_def_from_json("[1]", &d, NULL, 0), SAGA_ECONFIG);
	assert_null(d);
}

/* The redact list: read, sorted, and checked against the input fields
 * it names only by name (any field of the input may be listed). */
static void
test_coord_config_redact_parsed(void **state)
{
	coord_defs     *d;
	const saga_def *s;

	(void) state;
	d = load_text_ok("redact.yaml",
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n"
	    "sagas:\n"
	    "  - name: pay\n"
	    "    business_key: customer_id\n"
	    "    redact: [customer_id, card_number, \"cvv code\"]\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n"
	    "  - name: block\n"
	    "    redact:\n"
	    "      - iban\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n"
	    "  - name: none\n"
	    "    redact: []\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n"
	    "  - name: absent\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n");
	s = coord_defs_find(d, "pay");
	assert_int_equal(s->nredact, 3);
	assert_string_equal(s->redact[0], "card_number");
	assert_string_equal(s->redact[1], "customer_id");
	assert_string_equal(s->redact[2], "cvv code");
	assert_true(saga_def_redacts(s, "card_number", 11));
	assert_true(saga_def_redacts(s, "customer_id", 11));
	assert_true(saga_def_redacts(s, "cvv code", 8));
	assert_false(saga_def_redacts(s, "card", 4));
	assert_false(saga_def_redacts(s, "card_number\0x", 13));
	assert_false(saga_def_redacts(s, "sku", 3));
	s = coord_defs_find(d, "block");
	assert_int_equal(s->nredact, 1);
	assert_string_equal(s->redact[0], "iban");
	s = coord_defs_find(d, "none");
	assert_int_equal(s->nredact, 0);
	assert_null(s->redact);
	assert_false(saga_def_redacts(s, "iban", 4));
	s = coord_defs_find(d, "absent");
	assert_int_equal(s->nredact, 0);
	assert_false(saga_def_redacts(NULL, "iban", 4));
	coord_defs_free(d);
}

/* Every error of redact, at the value at fault. */
static void
test_coord_config_redact_errors(void **state)
{
	const char *files[] = { "redact_bad.yaml" };

	(void) state;
	put(files[0],
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n"     /* 1 */
	    "sagas:\n"                                                /* 2 */
	    "  - name: a\n"                                           /* 3 */
	    "    redact: card_number\n"                               /* 4 */
	    "    steps: [{name: a, participant: p, action: x, "
	    "kind: pivot}]\n"                                         /* 5 */
	    "  - name: b\n"                                           /* 6 */
	    "    redact: [card_number, \"\", {k: v}, [x], ~]\n"      /* 7 */
	    "    steps: [{name: a, participant: p, action: x, "
	    "kind: pivot}]\n"                                         /* 8 */
	    "  - name: c\n"                                           /* 9 */
	    "    redact:\n"                                           /* 10 */
	    "      - card_number\n"                                   /* 11 */
	    "      - cvv\n"                                           /* 12 */
	    "      - \"card_number\"\n"                               /* 13 */
	    "      - cvv\n"                                           /* 14 */
	    "    steps: [{name: a, participant: p, action: x, "
	    "kind: pivot}]\n"                                         /* 15 */
	    "  - name: d\n"                                           /* 16 */
	    "    redact:\n"                                           /* 17 */
	    "    steps: [{name: a, participant: p, action: x, "
	    "kind: pivot}]\n"                                         /* 18 */
	    "  - name: e\n"                                           /* 19 */
	    "    redact: {card_number: true}\n"                       /* 20 */
	    "    steps: [{name: a, participant: p, action: x, "
	    "kind: pivot}]\n"                                         /* 21 */
	    "  - name: f\n"                                           /* 22 */
	    "    redact: [\"nul\\0byte\"]\n"                          /* 23 */
	    "    steps: [{name: a, participant: p, action: x, "
	    "kind: pivot}]\n");                                       /* 24 */
	expect_files_errs(files, 1,
	    "redact_bad.yaml:4:13: redact: expected a list of input field "
	    "names, got \"card_number\"",
	    "redact_bad.yaml:7:28: redact: expected a string of 1..255 bytes, "
	    "got \"\"",
	    "redact_bad.yaml:7:32: redact: expected a string of 1..255 bytes, "
	    "got a mapping",
	    "redact_bad.yaml:7:40: redact: expected a string of 1..255 bytes, "
	    "got a list",
	    "redact_bad.yaml:7:44: redact: expected a string of 1..255 bytes, "
	    "got null",
	    "redact_bad.yaml:13:10: redact: duplicate field \"card_number\" "
	    "(first listed at redact_bad.yaml:11:9)",
	    "redact_bad.yaml:14:9: redact: duplicate field \"cvv\" (first "
	    "listed at redact_bad.yaml:12:9)",
	    "redact_bad.yaml:17:5: redact: expected a list of input field "
	    "names, got nothing",
	    "redact_bad.yaml:20:14: redact: expected a list of input field "
	    "names, got a mapping",
	    "redact_bad.yaml:23:15: redact: expected a string of 1..255 "
	    "bytes, got \"nul\\x00byte\"",
	    NULL);
}

/* The JSON of a definition without redact is what it was before the key
 * existed (demo_ping_json, and no "redact" anywhere); with one, the list
 * comes right after business_key, sorted, and reads back the same. */
static void
test_coord_config_redact_json(void **state)
{
	coord_defs *d;
	saga_def   *back = NULL;
	saga_def   *again = NULL;
	char        err[256];
	const char *json;

	(void) state;
	d = load_text_ok("demo.yaml", demo_yaml);
	assert_string_equal(coord_defs_find(d, "ping")->json, demo_ping_json);
	for (size_t i = 0; i < d->nsagas; i++) {
		assert_null(strstr(d->sagas[i]->json, "redact"));
	}
	coord_defs_free(d);

	d = load_text_ok("redact_json.yaml",
	    "participants: {p: {endpoints: [\"tcp://h:1\"]}}\n"
	    "sagas:\n"
	    "  - name: pay\n"
	    "    business_key: customer_id\n"
	    "    redact: [customer_id, card_number, \"say \\\"hi\\\"\"]\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n"
	    "  - name: empty\n"
	    "    redact: []\n"
	    "    steps:\n"
	    "      - {name: a, participant: p, action: x, kind: pivot}\n");
	json = coord_defs_find(d, "pay")->json;
	assert_string_equal(json,
	    "{\"name\": \"pay\", \"deadline\": null, \"business_key\": "
	    "\"customer_id\", \"redact\": [\"card_number\", \"customer_id\", "
	    "\"say \\\"hi\\\"\"], \"steps\": [{\"name\": \"a\", "
	    "\"participant\": \"p\", \"action\": \"x\", \"compensation\": "
	    "null, \"kind\": \"pivot\", \"timeout\": \"2000ms\", \"retry\": "
	    "{\"max_attempts\": 5, \"initial_backoff\": \"100ms\", "
	    "\"multiplier\": 2, \"max_backoff\": \"5000ms\", \"jitter\": "
	    "0.2}, \"compensation_retry\": {\"max_attempts\": 0, "
	    "\"initial_backoff\": \"100ms\", \"multiplier\": 2, "
	    "\"max_backoff\": \"60000ms\", \"jitter\": 0.2}, "
	    "\"compensation_timeout\": \"86400000ms\"}]}");
	/* An empty list is no list. */
	assert_null(strstr(coord_defs_find(d, "empty")->json, "redact"));

	/* Round trip: the same definition, the same bytes, twice. */
	assert_int_equal(
	    coord_def_from_json(json, &back, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	check_same_def(coord_defs_find(d, "pay"), back);
	assert_string_equal(back->redact[2], "say \"hi\"");
	assert_string_equal(back->json, json);
	assert_int_equal(
	    coord_def_from_json(back->json, &again, err, sizeof(err)), 0);
	assert_string_equal(again->json, json);
	saga_def_free(again);
	saga_def_free(back);
	back = NULL;

	/* The order of the YAML does not matter; jsonb's key order (as the
	 * database gives the text back) neither. */
	assert_int_equal(
	    coord_def_from_json(
	        "{\"name\": \"pay\", \"steps\": [{\"name\": \"a\", "
	        "\"participant\": \"p\", \"action\": \"x\", \"compensation\": "
	        "null, \"kind\": \"pivot\", \"timeout\": \"2000ms\", "
	        "\"retry\": {\"max_attempts\": 5, \"initial_backoff\": "
	        "\"100ms\", \"multiplier\": 2, \"max_backoff\": \"5000ms\", "
	        "\"jitter\": 0.2}, \"compensation_retry\": "
	        "{\"max_attempts\": 0, \"initial_backoff\": \"100ms\", "
	        "\"multiplier\": 2, "
	        "\"max_backoff\": \"60000ms\", \"jitter\": 0.2}, "
	        "\"compensation_timeout\": \"86400000ms\"}], \"redact\": "
	        "[\"say \\\"hi\\\"\", \"customer_id\", \"card_number\"], "
	        "\"deadline\": null, \"business_key\": \"customer_id\"}",
	        &back, err, sizeof(err)),
	    0);
	assert_string_equal(back->json, json);
	saga_def_free(back);
	back = NULL;

	/* redact is optional in the JSON too (every other key is
	 * required), and checked as in YAML. */
	assert_int_equal(
	    coord_def_from_json(
	        "{\"name\": \"s\", \"deadline\": null, \"business_key\": "
	        "null, \"redact\": [\"a\", \"a\"], \"steps\": []}",
	        &back, err, sizeof(err)),
	    SAGA_ECONFIG);
	assert_null(back);
	assert_string_equal(err,
	    "json:1:72: redact: duplicate field \"a\" (first listed at "
	    "json:1:67)");
	assert_int_equal(
	    coord_def_from_json(
	        "{\"name\": \"s\", \"deadline\": null, \"business_key\": "
	        "null, \"redact\": \"a\", \"steps\": []}",
	        &back, err, sizeof(err)),
	    SAGA_ECONFIG);
	assert_string_equal(err,
	    "json:1:66: redact: expected a list of input field names, got "
	    "\"a\"");
	coord_defs_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_coord_config_full_example_loads),
		cmocka_unit_test(test_coord_config_builtin_defaults),
		cmocka_unit_test(test_coord_config_unknown_keys),
		cmocka_unit_test(test_coord_config_wrong_types),
		cmocka_unit_test(test_coord_config_section_types),
		cmocka_unit_test(test_coord_config_bad_durations),
		cmocka_unit_test(test_coord_config_durations_too_long),
		cmocka_unit_test(test_coord_config_out_of_range),
		cmocka_unit_test(test_coord_config_retriable_backoff_cap),
		cmocka_unit_test(test_coord_config_missing_keys),
		cmocka_unit_test(test_coord_config_long_names_cut_whole),
		cmocka_unit_test(test_coord_config_unread_file_refs),
		cmocka_unit_test(test_coord_config_duplicate_names),
		cmocka_unit_test(test_coord_config_unknown_participant),
		cmocka_unit_test(test_coord_config_kind_rules),
		cmocka_unit_test(test_coord_config_bad_names_and_urls),
		cmocka_unit_test(test_coord_config_many_errors_one_file),
		cmocka_unit_test(test_coord_config_files_merge),
		cmocka_unit_test(test_coord_config_participant_tls),
		cmocka_unit_test(test_coord_config_duplicate_across_files),
		cmocka_unit_test(
		    test_coord_config_duplicate_participant_body),
		cmocka_unit_test(test_coord_config_syntax_errors),
		cmocka_unit_test(test_coord_config_not_utf8),
		cmocka_unit_test(test_coord_config_block_scalar_positions),
		cmocka_unit_test(test_coord_config_url_check_hook),
		cmocka_unit_test(test_coord_config_block_scalar_ends),
		cmocka_unit_test(test_coord_config_tags_and_nul_keys),
		cmocka_unit_test(test_coord_config_messages_cut_at_characters),
		cmocka_unit_test(test_coord_config_tag_and_other_errors),
		cmocka_unit_test(test_coord_config_missing_file),
		cmocka_unit_test(test_coord_config_document_shape),
		cmocka_unit_test(test_coord_config_errs_append),
		cmocka_unit_test(test_coord_config_durations_parse),
		cmocka_unit_test(test_coord_config_json_round_trip),
		cmocka_unit_test(test_coord_config_json_deterministic),
		cmocka_unit_test(test_coord_config_json_escapes),
		cmocka_unit_test(test_coord_config_json_pinned),
		cmocka_unit_test(test_coord_config_json_edge_spaces),
		cmocka_unit_test(test_coord_config_from_json_errors),
		cmocka_unit_test(test_coord_config_redact_parsed),
		cmocka_unit_test(test_coord_config_redact_errors),
		cmocka_unit_test(test_coord_config_edge_line_breaks),
		cmocka_unit_test(test_coord_config_edge_line_breaks_stored),
		cmocka_unit_test(test_coord_config_duplicate_keys),
		cmocka_unit_test(test_coord_config_redact_json),
	};

	return (cmocka_run_group_tests(tests, test_setup, test_teardown));
}
