/* SPDX-License-Identifier: MIT */
/*
 * sagactl_out: sagactl's output: aligned tables, colour (only on a
 * terminal, never with NO_COLOR or TERM=dumb), the terminal width, times
 * and durations in words, and the --json documents.
 *
 * JSON is never written by hand here: a document is built as a protocol
 * value with proto_obj (maps) and proto_arr (arrays, through sagactl_jarr)
 * and rendered by proto_raw_to_json (libfyaml, which does all the
 * escaping).
 */
#ifndef COORDINATOR_SAGACTL_OUT_H
#define COORDINATOR_SAGACTL_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto_json.h"
#include "proto_val.h"

/* sagactl_out is one output stream and how to write to it. */
typedef struct sagactl_out {
	FILE *f;
	bool  tty; /* f is a terminal */
	bool  color; /* write ANSI colours */
	int   width; /* columns: $COLUMNS, else the terminal's, else 100 */
	bool  wide; /* never cut the last column (--wide) */
} sagactl_out;

/* Styles of text. */
typedef enum sagactl_style {
	SAGACTL_S_NONE = 0,
	SAGACTL_S_BOLD,
	SAGACTL_S_DIM,
	SAGACTL_S_RED,
	SAGACTL_S_GREEN,
	SAGACTL_S_YELLOW,
	SAGACTL_S_BLUE,
	SAGACTL_S_MAGENTA,
	SAGACTL_S_CYAN,
	SAGACTL_S_RED_BOLD,
} sagactl_style;

/* sagactl_out_init sets o up for f: terminal, colour, width. */
void sagactl_out_init(sagactl_out *o, FILE *f);

/* sagactl_out_style_on returns the escape sequence that starts style s
 * on o, or "" without colour; sagactl_out_style_off the one that ends
 * it. */
const char *sagactl_out_style_on(const sagactl_out *o, sagactl_style s);
const char *sagactl_out_style_off(const sagactl_out *o, sagactl_style s);

/* sagactl_out_state_style returns the style of a saga state's name. */
sagactl_style sagactl_out_state_style(const char *state);

/* sagactl_out_escape copies the n bytes at s into buf (len bytes; always
 * NUL-terminated when len > 0) as human output shows text that came from
 * outside (business keys, errors, notes, names): so that no byte reaches
 * the terminal that it would act on, a tab or line break becomes a space
 * (one line), any other C0 control or DEL becomes "\x1b" (its code in
 * lower-case hex), a C1 control (U+0080..U+009F) "\u009b", and a byte
 * that does not belong to valid UTF-8 "\xff"; everything else is copied
 * as it is. A character or escape that does not fit whole is left out,
 * with all that follows. Returns the length of the whole escaped text
 * (without the NUL), as snprintf does: len <= the return value means it
 * was cut. */
size_t sagactl_out_escape(const char *s, size_t n, char *buf, size_t len);

/* sagactl_out_write writes the n bytes at s on f, escaped as by
 * sagactl_out_escape (whole: nothing is cut). */
void sagactl_out_write(FILE *f, const char *s, size_t n);

/* sagactl_out_puts writes the string s on f as sagactl_out_write does. */
void sagactl_out_puts(FILE *f, const char *s);

/* sagactl_out_textwidth returns the columns that text takes once escaped
 * (sagactl_out_escape): one per character, the length of the escape for
 * a control or a stray byte. */
size_t sagactl_out_textwidth(const char *s);

/* sagactl_out_time writes Unix ms as "2026-11-24T15:09:37.123Z" (UTC)
 * into buf (32 bytes). Returns buf. */
char *sagactl_out_time(int64_t ms, char *buf, size_t len);

/* sagactl_out_clock writes the time of day of Unix ms, "15:09:37.123"
 * (UTC), into buf. Returns buf. */
char *sagactl_out_clock(int64_t ms, char *buf, size_t len);

/* sagactl_out_dur writes a duration in ms in words: "0ms", "12ms",
 * "1.23s", "12.3s", "3m12s", "2h05m", "3d04h", "7d". Returns buf. */
char *sagactl_out_dur(int64_t ms, char *buf, size_t len);

/* sagactl_out_age writes an age in ms, coarsely: "45s", "3m12s", "2h5m",
 * "4d3h". Returns buf. */
char *sagactl_out_age(int64_t ms, char *buf, size_t len);

/* sagactl_table is a table printed with aligned columns. */
typedef struct sagactl_table sagactl_table;

/* sagactl_table_alloc makes a table of ncols columns whose header row is
 * names. Returns 0 or SAGA_ENOMEM. */
int sagactl_table_alloc(
    sagactl_table **out, size_t ncols, const char *const *names);

/* sagactl_table_free frees t; NULL-safe. */
void sagactl_table_free(sagactl_table *t);

/* sagactl_table_right right-aligns column col. */
void sagactl_table_right(sagactl_table *t, size_t col);

/* sagactl_table_indent sets the spaces before every row. */
void sagactl_table_indent(sagactl_table *t, size_t n);

/* sagactl_table_blank makes empty cells print as nothing rather than
 * "-". */
void sagactl_table_blank(sagactl_table *t);

/* sagactl_table_add appends a cell to the current row (a row is complete
 * after ncols cells), escaped (sagactl_out_escape). text NULL or ""
 * prints as "-" (or nothing, see sagactl_table_blank). Returns 0 or
 * SAGA_ENOMEM. */
int sagactl_table_add(sagactl_table *t, const char *text, sagactl_style s);

/* sagactl_table_addf formats a cell. */
int sagactl_table_addf(sagactl_table *t, sagactl_style s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* sagactl_table_add_styled appends a cell already holding escape
 * sequences, whose visible width is width. It is printed as it is: text
 * must be sagactl's own (escape any text from outside first). */
int sagactl_table_add_styled(sagactl_table *t, const char *text, size_t width);

/* sagactl_table_rows returns the number of rows added (the header not
 * counted), flushed or not. */
size_t sagactl_table_rows(const sagactl_table *t);

/* sagactl_table_print prints the table on o: columns separated by two
 * spaces, the last one not padded and, on a terminal, cut to the width
 * (unless o->wide). */
void sagactl_table_print(const sagactl_table *t, const sagactl_out *o);

/* sagactl_table_flush prints the rows added since the last flush (the
 * header with the first ones) as sagactl_table_print does, and forgets
 * them, so that a table of any length prints in pieces in bounded
 * memory. The columns' widths are those of the first flush, kept: a
 * longer cell later pushes the rest of its line to the right (nothing is
 * cut that sagactl_table_print would not cut). A table flushed once
 * prints as sagactl_table_print prints it. Returns 0 or SAGA_ENOMEM
 * (nothing printed). */
int sagactl_table_flush(sagactl_table *t, const sagactl_out *o);

/* sagactl_out_cut copies s into buf (len bytes), escaped as by
 * sagactl_out_escape (line breaks become spaces), cut to at most cols
 * columns with "..." at the end when it was longer. Returns buf. */
char *sagactl_out_cut(const char *s, size_t cols, char *buf, size_t len);

/* sagactl_jarr builds a JSON array for a document (see above). */
typedef struct sagactl_jarr {
	proto_arr *arr; /* made on the first element */
	int        err; /* the first allocation error */
} sagactl_jarr;

/* sagactl_jarr_init makes an empty array; sagactl_jarr_fini frees it. */
void sagactl_jarr_init(sagactl_jarr *a);
void sagactl_jarr_fini(sagactl_jarr *a);

/* sagactl_jarr_add_obj appends the map o; sagactl_jarr_add_str a string;
 * sagactl_jarr_add_raw any encoded value. Each returns 0, SAGA_ENOMEM or
 * SAGA_EINVAL (the value cannot be JSON: a string not UTF-8). */
int sagactl_jarr_add_obj(sagactl_jarr *a, const proto_obj *o);
int sagactl_jarr_add_str(sagactl_jarr *a, const char *s);
int sagactl_jarr_add_raw(sagactl_jarr *a, proto_raw raw);

/* sagactl_jarr_put puts the array as the value of key in o. Returns 0 or
 * SAGA_ENOMEM. */
int sagactl_jarr_put(sagactl_jarr *a, proto_obj *o, const char *key);

/* sagactl_out_put_strn puts a string, or null when s is NULL. */
int sagactl_out_put_str(proto_obj *o, const char *key, const char *s);

/* sagactl_out_put_time puts Unix ms as a time string, or null when 0. */
int sagactl_out_put_time(proto_obj *o, const char *key, int64_t ms);

/* sagactl_out_json prints the document o, indented, and a line break.
 * Returns 0, SAGA_ENOMEM or SAGA_EINVAL. */
int sagactl_out_json(const sagactl_out *out, const proto_obj *o);

/* sagactl_jlist prints a document {"KEY": [element, ...], more entries}
 * as sagactl_out_json would print it, but element by element as they
 * come (sagactl list of a whole log), in memory bounded by one element
 * (proto_json_list): the text of each is printed when it is added, the
 * entries after the array, known at the end, when it is closed. A list
 * that stops half-way (an error) leaves on out the document so far, not
 * closed: no JSON parser accepts it. */
typedef struct sagactl_jlist {
	const sagactl_out *out;
	proto_json_list    l;
	proto_buf          b; /* an element, encoded */
	proto_buf          text; /* its text */
} sagactl_jlist;

/* sagactl_jlist_open starts the document and its array, the value of
 * key. Returns 0 or SAGA_ENOMEM; sagactl_jlist_fini must follow either
 * way. */
int sagactl_jlist_open(
    sagactl_jlist *l, const sagactl_out *out, const char *key);

/* sagactl_jlist_add_obj adds the map o to the array. Returns 0,
 * SAGA_ENOMEM or SAGA_EINVAL (o cannot be JSON: a string not UTF-8). */
int sagactl_jlist_add_obj(sagactl_jlist *l, const proto_obj *o);

/* sagactl_jlist_close ends the array, puts the entries of tail after it
 * and ends the document with a line break. Returns as
 * sagactl_jlist_add_obj. */
int sagactl_jlist_close(sagactl_jlist *l, const proto_obj *tail);

/* sagactl_jlist_fini frees what l holds, closed or not. */
void sagactl_jlist_fini(sagactl_jlist *l);

#endif /* COORDINATOR_SAGACTL_OUT_H */
