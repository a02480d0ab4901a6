/* SPDX-License-Identifier: MIT */
/*
 * sagactl_out: tables, colour, times and JSON documents of sagactl. See
 * sagactl_out.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "proto_json.h"
#include "saga_err.h"
#include "sagactl_out.h"

#define SAGACTL_OUT_WIDTH_DEFAULT 100
/* The least of a cut column that is worth showing. */
#define SAGACTL_OUT_CUT_MIN 16

void
sagactl_out_init(sagactl_out *o, FILE *f)
{
	const char    *cols = getenv("COLUMNS");
	const char    *nc   = getenv("NO_COLOR");
	const char    *term = getenv("TERM");
	struct winsize ws;
	char          *end;
	long           w = 0;

	memset(o, 0, sizeof(*o));
	o->f   = f;
	o->tty = isatty(fileno(f)) == 1;
	/* https://no-color.org: set (to anything) means no colour. */
	o->color = o->tty && nc == NULL
	    && !(term != NULL && strcmp(term, "dumb") == 0);
	if (cols != NULL && *cols != '\0') {
		w = strtol(cols, &end, 10);
		if (*end != '\0') {
			w = 0;
		}
	}
	if (w <= 0 && o->tty && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0) {
		w = ws.ws_col;
	}
	if (w <= 0) {
		w = SAGACTL_OUT_WIDTH_DEFAULT;
	}
	if (w < 40) {
		w = 40;
	}
	if (w > 1000) {
		w = 1000;
	}
	o->width = (int) w;
}

static const char *const sagactl_out_codes[] = {
	[SAGACTL_S_NONE]     = "",
	[SAGACTL_S_BOLD]     = "\033[1m",
	[SAGACTL_S_DIM]      = "\033[2m",
	[SAGACTL_S_RED]      = "\033[31m",
	[SAGACTL_S_GREEN]    = "\033[32m",
	[SAGACTL_S_YELLOW]   = "\033[33m",
	[SAGACTL_S_BLUE]     = "\033[34m",
	[SAGACTL_S_MAGENTA]  = "\033[35m",
	[SAGACTL_S_CYAN]     = "\033[36m",
	[SAGACTL_S_RED_BOLD] = "\033[1;31m",
};

const char *
sagactl_out_style_on(const sagactl_out *o, sagactl_style s)
{
	if (!o->color
	    || (unsigned) s
	        >= sizeof(sagactl_out_codes) / sizeof(sagactl_out_codes[0])) {
		return ("");
	}
	return (sagactl_out_codes[s]);
}

const char *
sagactl_out_style_off(const sagactl_out *o, sagactl_style s)
{
	return (o->color && s != SAGACTL_S_NONE ? "\033[0m" : "");
}

sagactl_style
sagactl_out_state_style(const char *state)
{
	if (state == NULL) {
		return (SAGACTL_S_NONE);
	}
	if (strcmp(state, "COMPLETED") == 0) {
		return (SAGACTL_S_GREEN);
	}
	if (strcmp(state, "COMPENSATED") == 0
	    || strcmp(state, "COMPENSATING") == 0) {
		return (SAGACTL_S_YELLOW);
	}
	if (strcmp(state, "FAILED") == 0) {
		return (SAGACTL_S_RED_BOLD);
	}
	if (strcmp(state, "RUNNING") == 0) {
		return (SAGACTL_S_CYAN);
	}
	if (strcmp(state, "RESOLVED") == 0) {
		return (SAGACTL_S_BLUE);
	}
	return (SAGACTL_S_NONE);
}

/*
 * Escaping. Human output must not hand the terminal anything it would act
 * on: an escape sequence from a business key or a participant's error
 * could recolour the screen, move the cursor over what the operator reads,
 * set the window title or, through OSC 52, the clipboard.
 */

/* The longest escape: "\u009b". */
#define SAGACTL_OUT_ESC_MAX 7

/* How the character at s (n > 0 bytes left) is shown. Returns the bytes
 * of s that it takes; rep gets the text shown for them, or "" when they
 * are shown as they are (printable ASCII, a valid UTF-8 character that is
 * not a C1 control nor a bidirectional override or isolate). */
static size_t
sagactl_out_char(const unsigned char *s, size_t n, char *rep)
{
	unsigned char c    = s[0];
	unsigned char lo   = 0x80, hi = 0xbf;
	size_t        need = 0;

	rep[0] = '\0';
	if (c == '\t' || c == '\n' || c == '\r') {
		/* One line: a break would break a table or a field. */
		memcpy(rep, " ", 2);
		return (1);
	}
	if (c < 0x20 || c == 0x7f) {
		snprintf(rep, SAGACTL_OUT_ESC_MAX, "\\x%02x", c);
		return (1);
	}
	if (c < 0x80) {
		return (1);
	}
	/* UTF-8 (RFC 3629): no overlong form, no surrogate, <= U+10FFFF. */
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		lo   = c == 0xe0 ? 0xa0 : 0x80;
		hi   = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		lo   = c == 0xf0 ? 0x90 : 0x80;
		hi   = c == 0xf4 ? 0x8f : 0xbf;
	}
	if (need == 0 || n <= need || s[1] < lo || s[1] > hi) {
		goto stray;
	}
	for (size_t i = 2; i <= need; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf) {
			goto stray;
		}
	}
	if (c == 0xc2 && s[1] <= 0x9f) {
		/* A C1 control: 0x9b is CSI, 0x9d OSC on some terminals. */
		snprintf(rep, SAGACTL_OUT_ESC_MAX, "\\u%04x", (unsigned) s[1]);
	} else if (c == 0xe2 && ((s[1] == 0x80 && s[2] >= 0xaa &&
	                             s[2] <= 0xae) ||
	                            (s[1] == 0x81 && s[2] >= 0xa6 &&
	                                s[2] <= 0xa9))) {
		/* A bidirectional override or isolate (U+202A..U+202E,
		 * U+2066..U+2069): shown as it is, a key or an error could
		 * make the rest of its line read backwards. */
		unsigned cp = 0x2000u | (unsigned) (s[1] & 0x3f) << 6 |
		    (unsigned) (s[2] & 0x3f);

		snprintf(rep, SAGACTL_OUT_ESC_MAX, "\\u%04x", cp);
	}
	return (need + 1);
stray:
	/* Not UTF-8 (PostgreSQL's checks make it rare): byte by byte. */
	snprintf(rep, SAGACTL_OUT_ESC_MAX, "\\x%02x", c);
	return (1);
}

size_t
sagactl_out_escape(const char *s, size_t n, char *buf, size_t len)
{
	const unsigned char *p   = (const unsigned char *) s;
	size_t               out = 0;
	bool                 cut = len == 0;
	char                 rep[SAGACTL_OUT_ESC_MAX];

	for (size_t i = 0; i < n;) {
		size_t      k = sagactl_out_char(p + i, n - i, rep);
		const char *t = rep[0] != '\0' ? rep : s + i;
		size_t      m = rep[0] != '\0' ? strlen(rep) : k;

		if (!cut && out + m < len) {
			memcpy(buf + out, t, m);
		} else if (!cut) {
			buf[out] = '\0';
			cut      = true;
		}
		out += m;
		i += k;
	}
	if (!cut) {
		buf[out] = '\0';
	}
	return (out);
}

void
sagactl_out_write(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *) s;
	char                 rep[SAGACTL_OUT_ESC_MAX];

	for (size_t i = 0; i < n;) {
		size_t k = sagactl_out_char(p + i, n - i, rep);

		if (rep[0] != '\0') {
			fputs(rep, f);
		} else {
			fwrite(s + i, 1, k, f);
		}
		i += k;
	}
}

void
sagactl_out_puts(FILE *f, const char *s)
{
	sagactl_out_write(f, s, strlen(s));
}

/* The escaped copy of s (malloc'd), or NULL without memory. */
static char *
sagactl_out_escape_dup(const char *s)
{
	size_t n   = strlen(s);
	size_t len = sagactl_out_escape(s, n, NULL, 0) + 1;
	char  *buf = malloc(len);

	if (buf != NULL) {
		sagactl_out_escape(s, n, buf, len);
	}
	return (buf);
}

size_t
sagactl_out_textwidth(const char *s)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t               n = strlen(s), w = 0;
	char                 rep[SAGACTL_OUT_ESC_MAX];

	for (size_t i = 0; i < n;) {
		i += sagactl_out_char(p + i, n - i, rep);
		w += rep[0] != '\0' ? strlen(rep) : 1;
	}
	return (w);
}

char *
sagactl_out_time(int64_t ms, char *buf, size_t len)
{
	time_t    t = (time_t) (ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	struct tm tm;
	int       frac = (int) (ms - (int64_t) t * 1000);
	size_t    n;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "?");
		return (buf);
	}
	/* strftime, so that the compiler does not have to prove that the
	 * year fits (it cannot, and -Wformat-truncation fails a release
	 * build). */
	if ((n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
		snprintf(buf, len, "?");
		return (buf);
	}
	snprintf(buf + n, len - n, ".%03dZ", frac);
	return (buf);
}

char *
sagactl_out_clock(int64_t ms, char *buf, size_t len)
{
	time_t    t = (time_t) (ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	struct tm tm;
	int       frac = (int) (ms - (int64_t) t * 1000);

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "?");
		return (buf);
	}
	snprintf(buf, len, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min,
	    tm.tm_sec, frac);
	return (buf);
}

char *
sagactl_out_dur(int64_t ms, char *buf, size_t len)
{
	const char *sign = "";

	if (ms < 0) {
		sign = "-";
		ms   = -ms;
	}
	if (ms < 1000) {
		snprintf(buf, len, "%s%lldms", sign, (long long) ms);
	} else if (ms < 10000) {
		snprintf(buf, len, "%s%lld.%02llds", sign,
		    (long long) (ms / 1000), (long long) (ms % 1000 / 10));
	} else if (ms < 60000) {
		snprintf(buf, len, "%s%lld.%llds", sign,
		    (long long) (ms / 1000), (long long) (ms % 1000 / 100));
	} else {
		/* A major unit and, unless it is 0, the next one. */
		static const struct {
			int64_t     ms;
			const char *name;
			int64_t     next_ms;
			const char *next;
		} u[] = {
			{ 86400000, "d", 3600000, "h" },
			{ 3600000, "h", 60000, "m" },
			{ 60000, "m", 1000, "s" },
		};
		size_t  i    = ms >= 86400000 ? 0 : ms >= 3600000 ? 1 : 2;
		int64_t rest = ms % u[i].ms / u[i].next_ms;

		if (rest == 0) {
			snprintf(buf, len, "%s%lld%s", sign,
			    (long long) (ms / u[i].ms), u[i].name);
		} else {
			snprintf(buf, len, "%s%lld%s%02lld%s", sign,
			    (long long) (ms / u[i].ms), u[i].name,
			    (long long) rest, u[i].next);
		}
	}
	return (buf);
}

char *
sagactl_out_age(int64_t ms, char *buf, size_t len)
{
	int64_t s = ms < 0 ? 0 : ms / 1000;

	if (s < 60) {
		snprintf(buf, len, "%llds", (long long) s);
	} else if (s < 3600) {
		snprintf(buf, len, "%lldm%llds", (long long) (s / 60),
		    (long long) (s % 60));
	} else if (s < 86400) {
		snprintf(buf, len, "%lldh%lldm", (long long) (s / 3600),
		    (long long) (s % 3600 / 60));
	} else {
		snprintf(buf, len, "%lldd%lldh", (long long) (s / 86400),
		    (long long) (s % 86400 / 3600));
	}
	return (buf);
}

/* Copies s (n bytes) into buf (len bytes, NUL-terminated), escaped,
 * character by character (an escape counts as its length) while it fits
 * in cols columns and in buf, with room in buf for the "..." of a cut.
 * Returns the bytes of s taken, with the bytes and columns written in
 * *o and *w. */
static size_t
sagactl_out_fill(const char *s, size_t n, size_t cols, char *buf,
    size_t len, size_t *o, size_t *w)
{
	const unsigned char *p = (const unsigned char *) s;
	char                 rep[SAGACTL_OUT_ESC_MAX];
	size_t               i = 0;

	*o = 0;
	*w = 0;
	while (i < n) {
		size_t      k  = sagactl_out_char(p + i, n - i, rep);
		const char *t  = rep[0] != '\0' ? rep : s + i;
		size_t      m  = rep[0] != '\0' ? strlen(rep) : k;
		size_t      cw = rep[0] != '\0' ? m : 1;

		if (*w + cw > cols || *o + m + (i + k < n ? 4 : 1) > len) {
			break;
		}
		memcpy(buf + *o, t, m);
		*o += m;
		*w += cw;
		i += k;
	}
	buf[*o] = '\0';
	return (i);
}

char *
sagactl_out_cut(const char *s, size_t cols, char *buf, size_t len)
{
	size_t n = strlen(s), total, room, i, o, w;

	if (len == 0) {
		return (buf);
	}
	total = sagactl_out_textwidth(s);
	room  = total > cols ? (cols > 3 ? cols - 3 : 0) : cols;
	i     = sagactl_out_fill(s, n, room, buf, len, &o, &w);
	/* A buffer that filled before the columns (multi-byte characters,
	 * escapes) cuts the text too: it ended early without "...", as if
	 * it were whole. The "..." then needs its 3 columns as well. */
	if (i < n && w + 3 > cols) {
		room = cols > 3 ? cols - 3 : 0;
		i    = sagactl_out_fill(s, n, room, buf, len, &o, &w);
	}
	if (i < n && o + 4 <= len && room > 0) {
		memcpy(buf + o, "...", 4);
	}
	return (buf);
}

/*
 * Tables.
 */

typedef struct sagactl_cell {
	char         *text;
	size_t        width;
	sagactl_style style;
	bool          styled; /* text carries its own escapes */
} sagactl_cell;

struct sagactl_table {
	size_t        ncols;
	sagactl_cell *cells; /* header row first */
	size_t        n;
	size_t        cap;
	bool         *right;
	size_t        indent;
	bool          blank;
	size_t       *w; /* widths kept by the first flush, or NULL */
	size_t        flushed; /* rows printed and forgotten */
};

static int
sagactl_table_push(
    sagactl_table *t, char *text, size_t width, sagactl_style s, bool styled)
{
	if (text == NULL) {
		return (SAGA_ENOMEM);
	}
	if (t->n == t->cap) {
		size_t        cap = t->cap ? t->cap * 2 : 64;
		sagactl_cell *nc  = realloc(t->cells, cap * sizeof(*nc));

		if (nc == NULL) {
			free(text);
			return (SAGA_ENOMEM);
		}
		t->cells = nc;
		t->cap   = cap;
	}
	t->cells[t->n].text   = text;
	t->cells[t->n].width  = width;
	t->cells[t->n].style  = s;
	t->cells[t->n].styled = styled;
	t->n++;
	return (0);
}

int
sagactl_table_alloc(
    sagactl_table **out, size_t ncols, const char *const *names)
{
	sagactl_table *t;

	if ((t = calloc(1, sizeof(*t))) == NULL
	    || (t->right = calloc(ncols, sizeof(bool))) == NULL) {
		free(t);
		return (SAGA_ENOMEM);
	}
	t->ncols = ncols;
	for (size_t i = 0; i < ncols; i++) {
		if (sagactl_table_add(t, names[i], SAGACTL_S_BOLD) != 0) {
			sagactl_table_free(t);
			return (SAGA_ENOMEM);
		}
	}
	*out = t;
	return (0);
}

void
sagactl_table_free(sagactl_table *t)
{
	if (t == NULL) {
		return;
	}
	for (size_t i = 0; i < t->n; i++) {
		free(t->cells[i].text);
	}
	free(t->cells);
	free(t->right);
	free(t->w);
	free(t);
}

void
sagactl_table_right(sagactl_table *t, size_t col)
{
	if (col < t->ncols) {
		t->right[col] = true;
	}
}

void
sagactl_table_indent(sagactl_table *t, size_t n)
{
	t->indent = n;
}

void
sagactl_table_blank(sagactl_table *t)
{
	t->blank = true;
}

int
sagactl_table_add(sagactl_table *t, const char *text, sagactl_style s)
{
	char *copy;

	if (text == NULL || *text == '\0') {
		text = t->blank ? "" : "-";
	}
	/* Escaped: one line per cell (a line break would break the
	 * alignment) and nothing the terminal would act on. */
	copy = sagactl_out_escape_dup(text);
	return (sagactl_table_push(
	    t, copy, copy ? sagactl_out_textwidth(copy) : 0, s, false));
}

int
sagactl_table_addf(sagactl_table *t, sagactl_style s, const char *fmt, ...)
{
	char    buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return (sagactl_table_add(t, buf, s));
}

int
sagactl_table_add_styled(sagactl_table *t, const char *text, size_t width)
{
	return (
	    sagactl_table_push(t, strdup(text), width, SAGACTL_S_NONE, true));
}

size_t
sagactl_table_rows(const sagactl_table *t)
{
	/* The header is among the cells until the first flush. */
	return (t->flushed + t->n / t->ncols - (t->w == NULL ? 1 : 0));
}

/* The widest cell of each column among t's cells into w. */
static void
sagactl_table_widths(const sagactl_table *t, size_t *w)
{
	for (size_t i = 0; i < t->n; i++) {
		size_t c = i % t->ncols;

		if (t->cells[i].width > w[c]) {
			w[c] = t->cells[i].width;
		}
	}
}

/* Prints t's cells, each column w[c] wide; a cell wider than its column
 * (a row after the first flush) pushes the rest of its line right. */
static void
sagactl_table_print_rows(
    const sagactl_table *t, const sagactl_out *o, const size_t *w)
{
	size_t rows = t->n / t->ncols;

	for (size_t r = 0; r < rows; r++) {
		size_t col   = t->indent;
		size_t ncols = t->ncols;
		size_t room  = (size_t) o->width;

		/* No trailing blanks: the row ends with its last text. */
		while (ncols > 1
		    && t->cells[r * t->ncols + ncols - 1].width == 0) {
			ncols--;
		}
		fprintf(o->f, "%*s", (int) t->indent, "");
		for (size_t c = 0; c < ncols; c++) {
			const sagactl_cell *cell = &t->cells[r * t->ncols + c];
			bool                last = c + 1 == ncols;
			size_t              pad  = 0;
			char                cut[4096];
			const char         *text  = cell->text;
			size_t              width = cell->width;

			if (w[c] > width) {
				pad = w[c] - width;
			}

			/* On a terminal the last column is cut to the width,
			 * unless too little would be left of it to read. */
			if (c + 1 == t->ncols && o->tty && !o->wide
			    && !cell->styled && col + width > room
			    && room >= col + SAGACTL_OUT_CUT_MIN) {
				text = sagactl_out_cut(
				    cell->text, room - col, cut, sizeof(cut));
				width = sagactl_out_textwidth(text);
			}
			if (t->right[c]) {
				fprintf(o->f, "%*s", (int) pad, "");
			}
			if (cell->styled) {
				fputs(text, o->f);
			} else {
				fprintf(o->f, "%s%s%s",
				    sagactl_out_style_on(o, cell->style), text,
				    sagactl_out_style_off(o, cell->style));
			}
			if (!last) {
				fprintf(o->f, "%*s  ",
				    t->right[c] ? 0 : (int) pad, "");
			}
			col += cell->width + pad + 2;
		}
		fputc('\n', o->f);
	}
}

void
sagactl_table_print(const sagactl_table *t, const sagactl_out *o)
{
	size_t *w = calloc(t->ncols, sizeof(size_t));

	if (w == NULL) {
		return;
	}
	sagactl_table_widths(t, w);
	sagactl_table_print_rows(t, o, w);
	free(w);
}

int
sagactl_table_flush(sagactl_table *t, const sagactl_out *o)
{
	size_t rows = t->n / t->ncols;

	if (t->w == NULL) {
		if ((t->w = calloc(t->ncols, sizeof(size_t))) == NULL) {
			return (SAGA_ENOMEM);
		}
		sagactl_table_widths(t, t->w);
		/* The header goes out with the first rows, and is none. */
		rows--;
	}
	sagactl_table_print_rows(t, o, t->w);
	t->flushed += rows;
	for (size_t i = 0; i < t->n; i++) {
		free(t->cells[i].text);
	}
	t->n = 0;
	return (0);
}

/*
 * JSON.
 */

void
sagactl_jarr_init(sagactl_jarr *a)
{
	a->arr = NULL;
	a->err = 0;
}

void
sagactl_jarr_fini(sagactl_jarr *a)
{
	proto_arr_free(a->arr);
	sagactl_jarr_init(a);
}

/* Makes the array on first use. */
static int
sagactl_jarr_make(sagactl_jarr *a)
{
	if (a->arr == NULL && a->err == 0) {
		a->err = proto_arr_alloc(&a->arr);
	}
	return (a->err);
}

int
sagactl_jarr_add_raw(sagactl_jarr *a, proto_raw raw)
{
	int rv;

	if ((rv = sagactl_jarr_make(a)) != 0) {
		return (rv);
	}
	return (proto_arr_push_raw(a->arr, raw));
}

int
sagactl_jarr_add_obj(sagactl_jarr *a, const proto_obj *o)
{
	int rv;

	if ((rv = sagactl_jarr_make(a)) != 0) {
		return (rv);
	}
	return (proto_arr_push_obj(a->arr, o));
}

int
sagactl_jarr_add_str(sagactl_jarr *a, const char *s)
{
	int rv;

	if ((rv = sagactl_jarr_make(a)) != 0) {
		return (rv);
	}
	return (proto_arr_push_str(a->arr, s));
}

int
sagactl_jarr_put(sagactl_jarr *a, proto_obj *o, const char *key)
{
	int rv;

	if ((rv = sagactl_jarr_make(a)) != 0) {
		return (rv);
	}
	return (proto_obj_put_arr(o, key, a->arr));
}

int
sagactl_out_put_str(proto_obj *o, const char *key, const char *s)
{
	return (s != NULL ? proto_obj_put_str(o, key, s)
	                  : proto_obj_put_nil(o, key));
}

int
sagactl_out_put_time(proto_obj *o, const char *key, int64_t ms)
{
	char buf[40];

	if (ms == 0) {
		return (proto_obj_put_nil(o, key));
	}
	return (
	    proto_obj_put_str(o, key, sagactl_out_time(ms, buf, sizeof(buf))));
}

int
sagactl_out_json(const sagactl_out *out, const proto_obj *o)
{
	proto_buf b;
	char     *text = NULL;
	int       rv;

	proto_buf_init(&b);
	if ((rv = proto_obj_encode(o, &b)) == 0
	    && (rv = proto_raw_to_json(proto_buf_raw(&b), true, &text)) == 0) {
		fprintf(out->f, "%s\n", text);
	}
	free(text);
	proto_buf_fini(&b);
	return (rv);
}

/* Prints the text in l->text. */
static void
sagactl_jlist_write(sagactl_jlist *l)
{
	fwrite(l->text.data, 1, l->text.len, l->out->f);
	proto_buf_reset(&l->text);
}

int
sagactl_jlist_open(sagactl_jlist *l, const sagactl_out *out, const char *key)
{
	int rv;

	l->out = out;
	proto_buf_init(&l->b);
	proto_buf_init(&l->text);
	if ((rv = proto_json_list_begin(&l->l, true, key, &l->text)) == 0) {
		sagactl_jlist_write(l);
	}
	return (rv);
}

int
sagactl_jlist_add_obj(sagactl_jlist *l, const proto_obj *o)
{
	int rv;

	proto_buf_reset(&l->b);
	if ((rv = proto_obj_encode(o, &l->b)) == 0
	    && (rv = proto_json_list_add(&l->l, proto_buf_raw(&l->b), &l->text))
	        == 0) {
		sagactl_jlist_write(l);
	}
	return (rv);
}

int
sagactl_jlist_close(sagactl_jlist *l, const proto_obj *tail)
{
	int rv;

	proto_buf_reset(&l->b);
	if ((rv = proto_obj_encode(tail, &l->b)) == 0
	    && (rv = proto_json_list_end(&l->l, proto_buf_raw(&l->b), &l->text))
	        == 0) {
		sagactl_jlist_write(l);
		fputc('\n', l->out->f);
	}
	return (rv);
}

void
sagactl_jlist_fini(sagactl_jlist *l)
{
	proto_buf_fini(&l->b);
	proto_buf_fini(&l->text);
}
