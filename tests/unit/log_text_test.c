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

/* An input of log_text_escape and the text it must give. */
typedef struct {
	const char *in, *out;
} esc_case;

/* escapes_to checks that log_text_escape turns in into out, with room to
 * spare. */
static void
escapes_to(const char *in, const char *out)
{
	char   buf[128];
	size_t n = log_text_escape(buf, sizeof(buf), in);

	assert_string_equal(buf, out);
	assert_int_equal(n, strlen(out));
}

/* Unicode's line breaks past ASCII are escaped too: NEL (U+0085, with
 * every C1 control) and the LINE and PARAGRAPH SEPARATORs (U+2028,
 * U+2029), which a reader splitting lines as Python's str.splitlines()
 * does takes for the end of a line. Other UTF-8 is kept. */
static void
test_log_text_escape_unicode_breaks(void **state)
{
	static const esc_case cases[] = {
		{ "card declined\xc2\x85"
		  "2026-12-07T00:00:00.000Z sagad INFO  SAGA-COMPLETE x",
		    "card declined\\u0085"
		    "2026-12-07T00:00:00.000Z sagad INFO  SAGA-COMPLETE x" },
		{ "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", "a\\u2028b\\u2029c" },
		{ "\xc2\x80\xc2\x9b\xc2\x9f", "\\u0080\\u009b\\u009f" },
		/* Their neighbours are not breaks: NBSP, U+2027, U+202F. */
		{ "\xc2\xa0\xe2\x80\xa7\xe2\x80\xaf",
		    "\xc2\xa0\xe2\x80\xa7\xe2\x80\xaf" },
		{ "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", /* é 中 😀 */
		    "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80" },
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		escapes_to(cases[i].in, cases[i].out);
	}
}

/* A byte that is not part of a well-formed UTF-8 character is written
 * \xNN, whatever follows it, so that the line is UTF-8 and no malformed
 * sequence can hide a break from a lenient decoder. */
static void
test_log_text_escape_bad_utf8(void **state)
{
	static const esc_case cases[] = {
		{ "latin1 caf\xe9!", "latin1 caf\\xe9!" },
		{ "raw NEL \x85 x", "raw NEL \\x85 x" }, /* ISO 8859-1 NEL */
		{ "lone \x80 \xbf \xff \xfe", "lone \\x80 \\xbf \\xff \\xfe" },
		{ "cut \xe2\x82", "cut \\xe2\\x82" }, /* truncated € */
		{ "cut LS \xe2\x80x", "cut LS \\xe2\\x80x" },
		{ "overlong \xc0\xaf", "overlong \\xc0\\xaf" }, /* '/' */
		{ "overlong NEL \xe0\x82\x85",
		    "overlong NEL \\xe0\\x82\\x85" },
		{ "overlong LS \xf0\x82\x80\xa8",
		    "overlong LS \\xf0\\x82\\x80\\xa8" },
		{ "surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80" },
		{ "too big \xf4\x90\x80\x80", "too big \\xf4\\x90\\x80\\x80" },
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		escapes_to(cases[i].in, cases[i].out);
	}
}

/* Cut to fit before a character or an escape that does not fit whole:
 * never inside a UTF-8 character, a \uNNNN or a \xNN. */
static void
test_log_text_escape_cut_whole(void **state)
{
	char buf[16];

	(void) state;
	/* "ab" + "\u0085" is 8 bytes: 9 with the NUL. */
	assert_int_equal(log_text_escape(buf, 9, "ab\xc2\x85z"), 8);
	assert_string_equal(buf, "ab\\u0085");
	assert_int_equal(log_text_escape(buf, 8, "ab\xc2\x85z"), 2);
	assert_string_equal(buf, "ab");
	assert_int_equal(log_text_escape(buf, 8, "ab\xe2\x80\xa8z"), 2);
	assert_string_equal(buf, "ab");
	assert_int_equal(log_text_escape(buf, 6, "ab\xffz"), 2);
	assert_string_equal(buf, "ab");
	/* A character is kept whole or not at all. */
	assert_int_equal(log_text_escape(buf, 4, "ab\xc3\xa9"), 2);
	assert_string_equal(buf, "ab");
	assert_int_equal(log_text_escape(buf, 6, "ab\xf0\x9f\x98\x80"), 2);
	assert_string_equal(buf, "ab");
	assert_int_equal(log_text_escape(buf, 7, "ab\xf0\x9f\x98\x80"), 6);
	assert_string_equal(buf, "ab\xf0\x9f\x98\x80");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_tag_len),
		cmocka_unit_test(test_log_utf8_fix),
		cmocka_unit_test(test_log_text_escape),
		cmocka_unit_test(test_log_text_escape_unicode_breaks),
		cmocka_unit_test(test_log_text_escape_bad_utf8),
		cmocka_unit_test(test_log_text_escape_cut_whole),
		cmocka_unit_test(test_log_put_str_renders),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
