/* SPDX-License-Identifier: MIT */
/*
 * log_text_test: the event tag of a log message, and strings made valid
 * UTF-8 before the JSON renderer sees them (coordinator/log_text.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log_text.h"
#include "proto_json.h"
#include "proto_val.h"

static void
test_log_tag_len(void **state)
{
	(void) state;
	assert_int_equal(log_tag_len("SAGA-START create_order"), 10);
	assert_int_equal(log_tag_len("DB-DOWN"), 7);
	assert_int_equal(log_tag_len("PARTICIPANT-START listening"), 17);
	assert_int_equal(log_tag_len("RETRY2 x"), 6);
	/* Not tags: one letter, a trailing '-', a digit first, lower case
	 * or no space after it. */
	assert_int_equal(log_tag_len("A b"), 0);
	assert_int_equal(log_tag_len("SAGA- x"), 0);
	assert_int_equal(log_tag_len("2SAGA x"), 0);
	assert_int_equal(log_tag_len("recovery: saga x"), 0);
	assert_int_equal(log_tag_len("SAGA:x"), 0);
	assert_int_equal(log_tag_len(""), 0);
}

/* fix(in) runs log_utf8_fix on a copy of in. */
static char *
fix(const char *in)
{
	char *s = strdup(in);

	assert_non_null(s);
	log_utf8_fix(s, strlen(s));
	return (s);
}

static void
test_log_utf8_fix(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain ascii\t\"q\"", "plain ascii\t\"q\"" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* é € 😀 */
		    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "cut \xe2\x82", "cut ??" },             /* truncated € */
		{ "latin1 caf\xe9!", "latin1 caf?!" },    /* ISO 8859-1 é */
		{ "overlong \xc0\xaf", "overlong ??" },   /* '/' in 2 bytes */
		{ "surrogate \xed\xa0\x80", "surrogate ???" },
		{ "too big \xf4\x90\x80\x80", "too big ????" },
		{ "lone \x80 cont", "lone ? cont" },
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = fix(cases[i].in);

		assert_string_equal(s, cases[i].out);
		free(s);
	}
}

/* A field with bytes that are not UTF-8 is still rendered as JSON, with
 * them replaced. */
static void
test_log_put_str_renders(void **state)
{
	proto_obj *o = NULL;
	proto_buf  b;
	char      *json = NULL;

	(void) state;
	proto_buf_init(&b);
	assert_int_equal(proto_obj_alloc(&o), 0);
	assert_int_equal(log_put_str(o, "msg", "bad \xff byte", 10), 0);
	assert_int_equal(proto_obj_encode(o, &b), 0);
	assert_int_equal(proto_raw_to_json(proto_buf_raw(&b), false, &json), 0);
	assert_non_null(strstr(json, "\"msg\": \"bad ? byte\""));
	free(json);
	proto_buf_fini(&b);
	proto_obj_free(o);
}

/* A text log line stays one line: line breaks and other control
 * characters are escaped, the rest (tab, UTF-8) kept; cut to fit. A
 * backslash is escaped too, so that a text holding the two characters
 * \n is not taken for one holding a line break. */
static void
test_log_text_escape(void **state)
{
	char buf[16];

	(void) state;
	assert_int_equal(log_text_escape(buf, sizeof(buf), "a\nb\rc"), 7);
	assert_string_equal(buf, "a\\nb\\rc");
	assert_int_equal(
	    log_text_escape(buf, sizeof(buf), "\t\x01\x7f\xc3\xa9"), 11);
	assert_string_equal(buf, "\t\\x01\\x7f\xc3\xa9");
	assert_int_equal(log_text_escape(buf, sizeof(buf), "a\\nb\\"), 7);
	assert_string_equal(buf, "a\\\\nb\\\\");
	assert_int_equal(log_text_escape(buf, sizeof(buf), "\\x01\\\n"), 9);
	assert_string_equal(buf, "\\\\x01\\\\\\n");
	/* Cut before an escape that does not fit whole. */
	assert_int_equal(log_text_escape(buf, 5, "abc\ndef"), 3);
	assert_string_equal(buf, "abc");
	assert_int_equal(log_text_escape(buf, 5, "abc\\def"), 3);
	assert_string_equal(buf, "abc");
	assert_int_equal(log_text_escape(buf, 1, "abc"), 0);
	assert_string_equal(buf, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_tag_len),
		cmocka_unit_test(test_log_utf8_fix),
		cmocka_unit_test(test_log_text_escape),
		cmocka_unit_test(test_log_put_str_renders),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
