/* SPDX-License-Identifier: MIT */
/*
 * sagactl_out_test: how sagactl's human output shows text from outside
 * (coordinator/sagactl_out.h): controls escaped, widths counted as
 * printed, text cut at whole characters, and bytes that are not UTF-8
 * shown one by one rather than read past.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto_val.h"
#include "sagactl_out.h"

/* escape(in) is sagactl_out_escape of in, whole (static buffer). */
static const char *
escape(const char *in)
{
	static char buf[256];
	size_t      n = sagactl_out_escape(in, strlen(in), buf, sizeof(buf));

	assert_int_equal(n, strlen(buf));
	return (buf);
}

static void
test_sagactl_out_escape_controls(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain ascii ~ \\x1b", "plain ascii ~ \\x1b" },
		/* Line breaks and tabs: one line. */
		{ "a\nb\r\nc\td", "a b  c d" },
		/* C0 controls and DEL. */
		{ "\033[31mred\033[0m", "\\x1b[31mred\\x1b[0m" },
		{ "\033]52;c;cHduZWQ=\007", "\\x1b]52;c;cHduZWQ=\\x07" },
		{ "\x01\x1f\x7f", "\\x01\\x1f\\x7f" },
		/* C1 controls: CSI, NEL, OSC; U+00A0 (C2 A0) is not one. */
		{ "\xc2\x9b"
		  "2J\xc2\x85\xc2\x9d\xc2\x80\xc2\x9f\xc2\xa0",
		    "\\u009b2J\\u0085\\u009d\\u0080\\u009f\xc2\xa0" },
		/* Bidirectional overrides and isolates (U+202A..U+202E,
		 * U+2066..U+2069): a key could make its line read
		 * backwards. Their neighbours U+2029, U+202F, U+2065 and
		 * U+206A as they are. */
		{ "abc\xe2\x80\xae"
		  "dcba \xe2\x80\xaa\xe2\x81\xa6\xe2\x81\xa9",
		    "abc\\u202edcba \\u202a\\u2066\\u2069" },
		{ "\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa",
		    "\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa" },
		/* Valid UTF-8 as it is: é € 😀. */
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		/* Not UTF-8: byte by byte. A lone 0x9b, a truncated €, an
		 * overlong '/', a surrogate, past U+10FFFF, a stray
		 * continuation byte. */
		{ "\x9b"
		  "2J",
		    "\\x9b2J" },
		{ "cut \xe2\x82", "cut \\xe2\\x82" },
		{ "\xc0\xaf", "\\xc0\\xaf" },
		{ "\xed\xa0\x80", "\\xed\\xa0\\x80" },
		{ "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80" },
		{ "\xe2\x28\xa1", "\\xe2(\\xa1" },
		{ "\xff", "\\xff" },
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(escape(cases[i].in), cases[i].out);
		/* Escaping what was escaped changes nothing. */
		assert_string_equal(escape(cases[i].out), cases[i].out);
	}
}

/* A NUL inside the n bytes is a control like any other. */
static void
test_sagactl_out_escape_nul(void **state)
{
	char buf[32];

	(void) state;
	assert_int_equal(sagactl_out_escape("a\0b", 3, buf, sizeof(buf)), 6);
	assert_string_equal(buf, "a\\x00b");
	/* A sequence that the n bytes cut: not read past n. */
	assert_int_equal(
	    sagactl_out_escape("\xc3\xa9", 1, buf, sizeof(buf)), 4);
	assert_string_equal(buf, "\\xc3");
}

/* A short buffer: whole characters and escapes only, the length of the
 * whole text returned (as snprintf does). */
static void
test_sagactl_out_escape_short(void **state)
{
	char buf[8];

	(void) state;
	memset(buf, 'z', sizeof(buf));
	assert_int_equal(
	    sagactl_out_escape("ab\033cd", 5, buf, sizeof(buf)), 8);
	assert_string_equal(buf, "ab\\x1bc");
	assert_int_equal(
	    sagactl_out_escape("abcde\033", 6, buf, sizeof(buf)), 9);
	assert_string_equal(buf, "abcde");
	assert_int_equal(sagactl_out_escape(
	                     "abcde\xe2\x82\xac", 8, buf, sizeof(buf)),
	    8);
	assert_string_equal(buf, "abcde");
	assert_int_equal(sagactl_out_escape("\033", 1, NULL, 0), 4);
	buf[0] = 'z';
	assert_int_equal(sagactl_out_escape("x", 1, buf, 1), 1);
	assert_string_equal(buf, "");
}

/* Widths: one column per character, an escape as wide as it prints. */
static void
test_sagactl_out_textwidth(void **state)
{
	(void) state;
	assert_int_equal(sagactl_out_textwidth(""), 0);
	assert_int_equal(sagactl_out_textwidth("abc"), 3);
	assert_int_equal(sagactl_out_textwidth("caf\xc3\xa9"), 4);
	assert_int_equal(sagactl_out_textwidth("\033[31mRED"), 4 + 7);
	assert_int_equal(sagactl_out_textwidth("\xc2\x9b"), 6);
	assert_int_equal(sagactl_out_textwidth("a\nb"), 3);
	assert_int_equal(sagactl_out_textwidth("\xe2\x82"), 8);
	for (const char *s = "x\033y\xc2\x85z\xff"; *s != '\0'; s++) {
		assert_int_equal(
		    sagactl_out_textwidth(s), strlen(escape(s)));
	}
}

/* cut escapes too, and never splits a character or an escape. */
static void
test_sagactl_out_cut(void **state)
{
	char buf[64];

	(void) state;
	assert_string_equal(
	    sagactl_out_cut("short\nline", 40, buf, sizeof(buf)),
	    "short line");
	assert_string_equal(
	    sagactl_out_cut("\033]0;title\007", 40, buf, sizeof(buf)),
	    "\\x1b]0;title\\x07");
	/* 12 columns: 9 and "...". */
	assert_string_equal(
	    sagactl_out_cut("abcdefgh\033[31mRED", 12, buf, sizeof(buf)),
	    "abcdefgh...");
	assert_string_equal(
	    sagactl_out_cut("ab\xc2\x9b"
	                    "cdefghijk",
	        12, buf, sizeof(buf)),
	    "ab\\u009bc...");
	/* 5 columns of 6 characters: 2 and "...". */
	assert_string_equal(sagactl_out_cut("\xc3\xa9\xc3\xa9\xc3\xa9"
	                                    "\xc3\xa9\xc3\xa9\xc3\xa9",
	                        5, buf, sizeof(buf)),
	    "\xc3\xa9\xc3\xa9...");
	assert_true(sagactl_out_textwidth(sagactl_out_cut(
	                "\033\033\033\033\033\033", 20, buf, sizeof(buf)))
	    <= 20);
	/* A buffer that fills before the columns (two-byte characters,
	 * escapes): cut with "..." all the same. It ended early without
	 * it, 31 of 42 characters shown as if the text were whole. */
	{
		char in[200], small[16];

		for (int i = 0; i < 42; i++) {
			memcpy(in + 2 * i, "\xc3\x84", 2);
		}
		in[84] = '\0';
		assert_string_equal(sagactl_out_cut(in, 40, small,
		                        sizeof(small)),
		    "\xc3\x84\xc3\x84\xc3\x84\xc3\x84\xc3\x84\xc3\x84...");
		assert_string_equal(sagactl_out_cut("\033\033\033\033", 40,
		                        small, sizeof(small)),
		    "\\x1b\\x1b\\x1b...");
		/* Cut by the buffer where the columns held it all: the
		 * "..." within the columns all the same (it went 1 past). */
		assert_string_equal(sagactl_out_cut("abcdefgh\xc3\x84\xc3\x84",
		                        10, small, 12),
		    "abcdefg...");
		/* Whole when it fits, to the last byte. */
		assert_string_equal(sagactl_out_cut("\033\033\033", 40,
		                        small, sizeof(small)),
		    "\\x1b\\x1b\\x1b");
	}
}

/* A table: cells escaped and aligned by their printed width. */
static void
test_sagactl_out_table(void **state)
{
	static const char *const head[] = { "KEY", "ERROR" };
	sagactl_table           *t      = NULL;
	sagactl_out              o;
	char                    *text = NULL;
	size_t                   len  = 0;
	FILE                    *f;

	(void) state;
	assert_non_null(f = open_memstream(&text, &len));
	sagactl_out_init(&o, f);
	assert_false(o.color);
	assert_int_equal(sagactl_table_alloc(&t, 2, head), 0);
	assert_int_equal(sagactl_table_add(t, "c\033[31mR", SAGACTL_S_NONE), 0);
	assert_int_equal(sagactl_table_add(t, "e\xc2\x9d", SAGACTL_S_NONE), 0);
	assert_int_equal(sagactl_table_add(t, "k", SAGACTL_S_NONE), 0);
	assert_int_equal(sagactl_table_add(t, "x", SAGACTL_S_NONE), 0);
	sagactl_table_print(t, &o);
	sagactl_table_free(t);
	fclose(f);
	assert_string_equal(text,
	    "KEY         ERROR\n"
	    "c\\x1b[31mR  e\\u009d\n"
	    "k           x\n");
	free(text);
}

/* The text (malloc'd) of a table of cells (3 a row, NULL-terminated),
 * printed whole, or flushed after every per rows. */
static char *
table_text(const char *const *cells, size_t per, bool flush)
{
	static const char *const head[] = { "ID", "N", "ERROR" };
	sagactl_table           *t      = NULL;
	sagactl_out              o;
	char                    *text = NULL;
	size_t                   len  = 0, i;
	FILE                    *f;

	assert_non_null(f = open_memstream(&text, &len));
	sagactl_out_init(&o, f);
	assert_int_equal(sagactl_table_alloc(&t, 3, head), 0);
	sagactl_table_right(t, 1);
	for (i = 0; cells[i] != NULL; i++) {
		assert_int_equal(sagactl_table_add(t, cells[i], SAGACTL_S_NONE),
		    0);
		if (flush && (i + 1) % (3 * per) == 0) {
			assert_int_equal(sagactl_table_flush(t, &o), 0);
		}
	}
	assert_int_equal(sagactl_table_rows(t), i / 3);
	if (flush) {
		assert_int_equal(sagactl_table_flush(t, &o), 0);
		assert_int_equal(sagactl_table_rows(t), i / 3);
	} else {
		sagactl_table_print(t, &o);
	}
	sagactl_table_free(t);
	fclose(f);
	return (text);
}

/* A table printed in pieces: flushed once, it is the table printed
 * whole; in several, the first piece's widths hold and a longer cell
 * later pushes the rest of its line right, cut nowhere. */
static void
test_sagactl_out_table_flush(void **state)
{
	static const char *const cells[] = { "a", "1", "x", "bb", "22", "y",
		"a-much-longer-id", "333", "z", "c", "4", "", NULL };
	char *whole, *once, *pieces;

	(void) state;
	whole = table_text(cells, 100, false);
	once  = table_text(cells, 100, true);
	assert_string_equal(once, whole);
	pieces = table_text(cells, 2, true);
	assert_string_equal(pieces,
	    "ID   N  ERROR\n"
	    "a    1  x\n"
	    "bb  22  y\n"
	    "a-much-longer-id  333  z\n"
	    "c    4  -\n");
	free(whole);
	free(once);
	free(pieces);
}

/* A list printed element by element is the document sagactl_out_json
 * prints, byte for byte; empty too. */
static void
test_sagactl_out_jlist(void **state)
{
	proto_obj    *o = NULL, *root = NULL, *tail = NULL;
	sagactl_jarr  arr;
	sagactl_jlist l;
	sagactl_out   out;
	char         *a = NULL, *b = NULL;
	size_t        alen = 0, blen = 0;
	FILE         *fa, *fb;

	(void) state;
	assert_int_equal(proto_obj_alloc(&o), 0);
	assert_int_equal(proto_obj_alloc(&root), 0);
	assert_int_equal(proto_obj_alloc(&tail), 0);
	assert_int_equal(proto_obj_put_bool(tail, "more", true), 0);
	for (int n = 0; n < 3; n++) {
		assert_non_null(fa = open_memstream(&a, &alen));
		assert_non_null(fb = open_memstream(&b, &blen));
		sagactl_jarr_init(&arr);
		proto_obj_reset(root);
		sagactl_out_init(&out, fb);
		assert_int_equal(sagactl_jlist_open(&l, &out, "sagas"), 0);
		for (int i = 0; i < n; i++) {
			proto_obj_reset(o);
			assert_int_equal(
			    proto_obj_put_str(o, "id", i ? " x\t\"" : "y "), 0);
			assert_int_equal(proto_obj_put_int(o, "n", i), 0);
			assert_int_equal(proto_obj_put_nil(o, "step"), 0);
			assert_int_equal(sagactl_jarr_add_obj(&arr, o), 0);
			assert_int_equal(sagactl_jlist_add_obj(&l, o), 0);
		}
		assert_int_equal(sagactl_jlist_close(&l, tail), 0);
		sagactl_jlist_fini(&l);
		assert_int_equal(sagactl_jarr_put(&arr, root, "sagas"), 0);
		assert_int_equal(proto_obj_put_bool(root, "more", true), 0);
		sagactl_out_init(&out, fa);
		assert_int_equal(sagactl_out_json(&out, root), 0);
		sagactl_jarr_fini(&arr);
		fclose(fa);
		fclose(fb);
		assert_string_equal(b, a);
		free(a);
		free(b);
		a = b = NULL;
	}
	proto_obj_free(o);
	proto_obj_free(root);
	proto_obj_free(tail);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sagactl_out_escape_controls),
		cmocka_unit_test(test_sagactl_out_escape_nul),
		cmocka_unit_test(test_sagactl_out_escape_short),
		cmocka_unit_test(test_sagactl_out_textwidth),
		cmocka_unit_test(test_sagactl_out_cut),
		cmocka_unit_test(test_sagactl_out_table),
		cmocka_unit_test(test_sagactl_out_table_flush),
		cmocka_unit_test(test_sagactl_out_jlist),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
