/* SPDX-License-Identifier: MIT */
/*
 * metrics_test: the exposition text stays what a Prometheus scraper
 * takes when values are long. A label value cut to fit its buffer ends
 * on a whole UTF-8 character (a cut inside one made the scraper refuse
 * the whole exposition), and a series line longer than the renderer's
 * line buffer is written whole, with its line feed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"
#include "proto_val.h"

/* Whether the n bytes at s are well-formed UTF-8. */
static bool
utf8_ok(const char *s, size_t n)
{
	const uint8_t *u = (const uint8_t *) s;

	for (size_t i = 0, k; i < n; i += k) {
		if ((k = proto_utf8_char(u + i, n - i)) == 0) {
			return (false);
		}
	}
	return (true);
}

/* An action name that sagad's configuration takes (1..255 bytes): 100
 * quotes, escaped to two bytes each, then 51 three-byte characters. */
static void
long_action(char *buf, size_t len)
{
	size_t n = 0;

	for (int i = 0; i < 100; i++) {
		buf[n++] = '"';
	}
	for (int i = 0; i < 51 && n + 4 < len; i++) {
		memcpy(buf + n, "\xe2\x82\xac", 3); /* the euro sign */
		n += 3;
	}
	buf[n] = '\0';
}

static void
test_metrics_labels_cut_whole_chars(void **state)
{
	char action[256], labels[320];
	size_t n;

	(void) state;
	long_action(action, sizeof(action));
	assert_int_equal(strlen(action), 253);
	/* Every size of buffer: the cut falls at each byte in turn. */
	for (size_t len = 16; len <= sizeof(labels); len++) {
		metrics_labels(labels, len, "action", action, NULL);
		n = strlen(labels);
		assert_true(n < len);
		assert_true(utf8_ok(labels, n));
		assert_int_equal(labels[n - 1], '"');
	}
	/* Room for all of it: all of it. */
	{
		char big[1024];

		metrics_labels(big, sizeof(big), "action", action, NULL);
		assert_int_equal(
		    strlen(big), strlen("action=\"\"") + 200 + 153);
	}
}

static void
test_metrics_long_line_whole(void **state)
{
	metrics  *m = NULL;
	proto_buf out;
	char      action[256], labels[1024], *text, *line;

	(void) state;
	assert_int_equal(metrics_alloc(&m), 0);
	assert_int_equal(metrics_family(m, "part_commands_total",
	                     METRIC_COUNTER, "commands", NULL, 0),
	    0);
	assert_int_equal(metrics_family(m, "part_batches_total",
	                     METRIC_COUNTER, "batches", NULL, 0),
	    0);
	long_action(action, sizeof(action));
	/* Three labels of 353 bytes each: a line of more than 1,024. */
	metrics_add(m, "part_commands_total",
	    metrics_labels(labels, sizeof(labels), "a", action, "b", action,
	        "c", action, NULL),
	    1);
	metrics_add(m, "part_batches_total", "", 2);
	proto_buf_init(&out);
	assert_int_equal(metrics_render(m, &out), 0);
	assert_non_null(text = calloc(1, out.len + 1));
	memcpy(text, out.data, out.len);
	/* The long series whole, on its own line, then the next family. */
	assert_non_null(line = strstr(text, "part_commands_total{"));
	assert_true(strlen(line) > 1024);
	assert_non_null(strstr(line, "\"} 1\n# HELP part_batches_total"));
	assert_non_null(strstr(text, "\npart_batches_total 2\n"));
	free(text);
	proto_buf_fini(&out);
	metrics_free(m);
}

/* A counter past 10^10 is written to the unit, and so is a histogram's
 * sum: with ten significant digits, 12,345,678,901 was written
 * 1.23456789e+10, and the rate of a counter that large came out as
 * steps of 10. */
static void
test_metrics_large_values_exact(void **state)
{
	static const double b[] = { 1.0 };
	metrics            *m   = NULL;
	proto_buf           out;
	char               *text;

	(void) state;
	assert_int_equal(metrics_alloc(&m), 0);
	assert_int_equal(metrics_family(m, "big_total", METRIC_COUNTER,
	                     "a large counter", NULL, 0),
	    0);
	assert_int_equal(metrics_family(m, "big_seconds", METRIC_HISTOGRAM,
	                     "a large sum", b, 1),
	    0);
	metrics_add(m, "big_total", "", 12345678901.0);
	metrics_observe(m, "big_seconds", "", 98765432109.0);
	metrics_observe(m, "big_seconds", "", 0.25);
	proto_buf_init(&out);
	assert_int_equal(metrics_render(m, &out), 0);
	assert_non_null(text = calloc(1, out.len + 1));
	memcpy(text, out.data, out.len);
	assert_non_null(strstr(text, "\nbig_total 12345678901\n"));
	assert_non_null(strstr(text, "\nbig_seconds_sum 98765432109.25\n"));
	free(text);
	proto_buf_fini(&out);
	metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_labels_cut_whole_chars),
		cmocka_unit_test(test_metrics_long_line_whole),
		cmocka_unit_test(test_metrics_large_values_exact),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
