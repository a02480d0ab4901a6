/* SPDX-License-Identifier: MIT */
/*
 * coord_config: loading saga definitions from YAML (libfyaml), checking
 * them, and their canonical JSON.
 *
 * DESIGN: a loader (coord_config_ld) carries the state of one load: the
 * file being read, its defaults, the definitions built so far, the
 * participant references still to resolve and the errors. Readers of
 * values never stop at an error: they report it with the value's position
 * and leave the built-in default in place, so that the rest of the file
 * is still checked. Running out of memory sets a sticky flag that every
 * step checks; the load then returns SAGA_ENOMEM. Positions come from
 * libfyaml's token marks (0-based, reported 1-based; a block scalar's is
 * moved to its first character); a mapping's position is its first key's,
 * a list's its first item's, and an empty one borrows the position of the
 * key that holds it.
 */
#include <errno.h>
#include <math.h> /* INFINITY, isfinite (macros: no libm) */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h> /* access */

#include <libfyaml.h>

#include "coord_config.h"
#include "proto_json.h" /* proto_json_emitter */
#include "proto_val.h"  /* proto_utf8_char */

/* Built-in defaults (docs/sagas.md). */
#define COORD_CONFIG_TIMEOUT_MS 2000
#define COORD_CONFIG_COMP_BUDGET_MS (24LL * 3600 * 1000)
#define COORD_CONFIG_RETRIABLE_MAX_BACKOFF_MS 30000

static const saga_retry coord_config_retry_builtin = {
	.max_attempts       = 5,
	.initial_backoff_ms = 100,
	.multiplier         = 2.0,
	.max_backoff_ms     = 5000,
	.jitter             = 0.2,
};

static const saga_retry coord_config_comp_retry_builtin = {
	.max_attempts       = 0,
	.initial_backoff_ms = 100,
	.multiplier         = 2.0,
	.max_backoff_ms     = 60000,
	.jitter             = 0.2,
};

/* A position: index of the file in the loader, 1-based line and column;
 * line 0 when unknown. */
typedef struct coord_config_pos {
	int file;
	int line;
	int col;
} coord_config_pos;

/* One error, kept with its position for sorting. */
typedef struct coord_config_err {
	coord_config_pos pos;
	size_t           seq;
	char            *msg;
} coord_config_err;

/* The defaults of one file. */
typedef struct coord_config_dflt {
	int64_t    timeout_ms;
	saga_retry retry;
	saga_retry comp_retry;
	int64_t    comp_budget_ms;
} coord_config_dflt;

/* A step's reference to a participant, checked once every file is read. */
typedef struct coord_config_ref {
	const char      *name; /* the step's participant (owned by the def) */
	coord_config_pos pos;
} coord_config_ref;

/* One key of a mapping: what the reader allows, and what it found. A key
 * marked optional may be left out even of the canonical JSON (strict
 * mode), where every other key is required: keys added to the format
 * later are written only when they say something, so that the JSON (and
 * the hash) of the definitions that do not use them stays the same. */
typedef struct coord_config_field {
	const char     *key;
	bool            required;
	bool            optional;
	struct fy_node *val;
	coord_config_pos pos; /* of the key */
	bool            seen;
} coord_config_field;

/* The state of one load. */
typedef struct coord_config_ld {
	bool              nomem;
	/* A file was not read whole (cannot be read, or does not parse):
	 * the participants it declares are unknown. */
	bool              unread;
	bool              strict; /* canonical JSON: every key required */
	coord_config_err *errs;
	size_t            nerrs;
	size_t            caperrs;
	char            **files; /* names, for messages and saga_def.file */
	size_t            nfiles;
	int               file; /* index of the file being read */
	const char       *text; /* its bytes, while its document lives */
	size_t            textlen;
	coord_config_dflt dflt; /* of the file being read */
	saga_def        **sagas;
	size_t            nsagas;
	size_t            capsagas;
	coord_config_pos *saga_pos; /* of each saga's name */
	size_t            capsaga_pos;
	saga_participant_def **parts;
	size_t                 nparts;
	size_t                 capparts;
	coord_config_pos      *part_pos; /* of each participant's name */
	size_t                 cappart_pos;
	coord_config_ref      *refs;
	size_t                 nrefs;
	size_t                 caprefs;
} coord_config_ld;

/* What the saga-level checks need to know about each step. */
typedef struct coord_config_stepinfo {
	bool             kind_ok; /* kind was read without error */
	coord_config_pos pos;     /* of the step */
	coord_config_pos name_pos;
	coord_config_pos kind_pos; /* of kind's value, else the step's */
} coord_config_stepinfo;

static const char coord_config_name_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";

/*
 * Memory and errors.
 */

/* Grows *arr (of elsize elements, *cap allocated) to hold n + 1. */
static bool
coord_config_grow(coord_config_ld *ld, void **arr, size_t *cap, size_t n,
    size_t elsize)
{
	size_t ncap;
	void  *p;

	if (n < *cap) {
		return (true);
	}
	ncap = *cap ? *cap * 2 : 8;
	if ((p = realloc(*arr, ncap * elsize)) == NULL) {
		ld->nomem = true;
		return (false);
	}
	*arr = p;
	*cap = ncap;
	return (true);
}

static char *
coord_config_strdup(coord_config_ld *ld, const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL) {
		ld->nomem = true;
	}
	return (p);
}

/* Formats into a new string; NULL when out of memory. */
static char *
coord_config_vfmt(const char *fmt, va_list ap)
{
	va_list ap2;
	int     n;
	char   *s;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || (s = malloc((size_t) n + 1)) == NULL) {
		return (NULL);
	}
	vsnprintf(s, (size_t) n + 1, fmt, ap);
	return (s);
}

static char *
coord_config_fmt(const char *fmt, ...)
{
	va_list ap;
	char   *s;

	va_start(ap, fmt);
	s = coord_config_vfmt(fmt, ap);
	va_end(ap);
	return (s);
}

/* Records an error at pos: "file:line:col: message", or "file: message"
 * when the position is unknown. */
static void
coord_config_err_at(coord_config_ld *ld, coord_config_pos pos,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
coord_config_err_at(
    coord_config_ld *ld, coord_config_pos pos, const char *fmt, ...)
{
	va_list     ap;
	char       *msg;
	char       *full;
	const char *file = ld->files[pos.file];

	va_start(ap, fmt);
	msg = coord_config_vfmt(fmt, ap);
	va_end(ap);
	if (msg == NULL) {
		ld->nomem = true;
		return;
	}
	if (pos.line > 0) {
		full = coord_config_fmt(
		    "%s:%d:%d: %s", file, pos.line, pos.col, msg);
	} else {
		full = coord_config_fmt("%s: %s", file, msg);
	}
	free(msg);
	if (full == NULL || !coord_config_grow(ld, (void **) &ld->errs,
	                        &ld->caperrs, ld->nerrs, sizeof(*ld->errs))) {
		free(full);
		ld->nomem = true;
		return;
	}
	ld->errs[ld->nerrs].pos = pos;
	ld->errs[ld->nerrs].seq = ld->nerrs;
	ld->errs[ld->nerrs].msg = full;
	ld->nerrs++;
}

static int
coord_config_err_cmp(const void *a, const void *b)
{
	const coord_config_err *x = a;
	const coord_config_err *y = b;

	if (x->pos.file != y->pos.file) {
		return (x->pos.file < y->pos.file ? -1 : 1);
	}
	if (x->pos.line != y->pos.line) {
		return (x->pos.line < y->pos.line ? -1 : 1);
	}
	if (x->pos.col != y->pos.col) {
		return (x->pos.col < y->pos.col ? -1 : 1);
	}
	return (x->seq < y->seq ? -1 : x->seq > y->seq);
}

/* Sorts the errors by file and position and moves them to errs (or frees
 * them when errs is NULL). */
static void
coord_config_errs_flush(coord_config_ld *ld, coord_errs *errs)
{
	char **msgs;

	if (ld->nerrs > 0) {
		qsort(ld->errs, ld->nerrs, sizeof(*ld->errs),
		    coord_config_err_cmp);
	}
	if (errs != NULL && ld->nerrs > 0) {
		msgs = realloc(
		    errs->msgs, (errs->n + ld->nerrs) * sizeof(*msgs));
		if (msgs != NULL) {
			errs->msgs = msgs;
			for (size_t i = 0; i < ld->nerrs; i++) {
				msgs[errs->n++] = ld->errs[i].msg;
				ld->errs[i].msg = NULL;
			}
		} else {
			ld->nomem = true;
		}
	}
	for (size_t i = 0; i < ld->nerrs; i++) {
		free(ld->errs[i].msg);
	}
	free(ld->errs);
	ld->errs    = NULL;
	ld->nerrs   = 0;
	ld->caperrs = 0;
}

/* Frees everything the loader still owns. */
static void
coord_config_ld_fini(coord_config_ld *ld)
{
	coord_config_errs_flush(ld, NULL);
	for (size_t i = 0; i < ld->nsagas; i++) {
		saga_def_free(ld->sagas[i]);
	}
	free(ld->sagas);
	free(ld->saga_pos);
	for (size_t i = 0; i < ld->nparts; i++) {
		saga_participant_def_free(ld->parts[i]);
	}
	free(ld->parts);
	free(ld->part_pos);
	free(ld->refs);
	for (size_t i = 0; i < ld->nfiles; i++) {
		free(ld->files[i]);
	}
	free(ld->files);
}

/*
 * Nodes: positions, text, and what a value is.
 */

/* The position of libfyaml's mark m (0-based) in the file being read; fb
 * when there is none. */
static coord_config_pos
coord_config_mark_pos(const coord_config_ld *ld, const struct fy_mark *m,
    coord_config_pos fb)
{
	coord_config_pos pos = { .file = ld->file };

	if (m == NULL) {
		return (fb);
	}
	pos.line = m->line + 1;
	pos.col  = m->column + 1;
	return (pos);
}

/* Finds the first line of the block scalar tok (| or >) that is not
 * empty: *m is moved to that line (column unchanged), *rs set to the
 * spaces that start it in the file and *vs to those that start it in the
 * value (an indentation indicator keeps some). libfyaml 0.7.12 marks a
 * block scalar at column 0 of the line after the indicator; the value's
 * leading line breaks are its empty lines. Returns 1, 0 when the value
 * has no character, -1 when its mark or text is not at hand. */
static int
coord_config_block_line(const coord_config_ld *ld, struct fy_token *tok,
    struct fy_mark *m, size_t *rs, size_t *vs)
{
	const struct fy_mark *sm = fy_token_start_mark(tok);
	const char           *t  = ld->text;
	const char           *v;
	size_t                vlen, i = 0, p;

	if (sm == NULL || t == NULL ||
	    (v = fy_token_get_text(tok, &vlen)) == NULL) {
		return (-1);
	}
	*m = *sm;
	p  = m->input_pos;
	for (; i < vlen && v[i] == '\n'; i++) {
		/* Past one empty line, ended by \n, \r\n or a lone \r. */
		while (p < ld->textlen && t[p] != '\n' && t[p] != '\r') {
			p++;
		}
		if (p + 1 < ld->textlen && t[p] == '\r' && t[p + 1] == '\n') {
			p++;
		}
		p++;
		m->line++;
	}
	if (i == vlen) {
		return (0);
	}
	*rs = *vs = 0;
	while (p + *rs < ld->textlen && t[p + *rs] == ' ') {
		(*rs)++;
	}
	while (i + *vs < vlen && v[i + *vs] == ' ') {
		(*vs)++;
	}
	return (1);
}

/* The position of the block scalar tok: its first character on its first
 * line that is not empty, after the indentation (the line's spaces less
 * the value's own). fb when the value has no character. */
static coord_config_pos
coord_config_block_pos(
    const coord_config_ld *ld, struct fy_token *tok, coord_config_pos fb)
{
	struct fy_mark m;
	size_t         rs, vs;

	switch (coord_config_block_line(ld, tok, &m, &rs, &vs)) {
	case -1:
		return (coord_config_mark_pos(ld, fy_token_start_mark(tok), fb));
	case 0:
		return (fb);
	}
	m.column = rs > vs ? (int) (rs - vs) : 0;
	return (coord_config_mark_pos(ld, &m, fb));
}

/* The position of the alias tok: its '*'. libfyaml 0.7.12 marks an alias
 * at its name, the character after the '*'. */
static coord_config_pos
coord_config_alias_pos(
    const coord_config_ld *ld, struct fy_token *tok, coord_config_pos fb)
{
	const struct fy_mark *sm = fy_token_start_mark(tok);
	struct fy_mark        m;

	if (sm == NULL) {
		return (fb);
	}
	m = *sm;
	if (ld->text != NULL && m.input_pos > 0 && m.column > 0 &&
	    m.input_pos <= ld->textlen && ld->text[m.input_pos - 1] == '*') {
		m.input_pos--;
		m.column--;
	}
	return (coord_config_mark_pos(ld, &m, fb));
}

/* The position of node n; fb when it has none (an empty value or an
 * empty collection). */
static coord_config_pos
coord_config_node_pos(
    const coord_config_ld *ld, struct fy_node *n, coord_config_pos fb)
{
	struct fy_token     *tok;
	struct fy_node_pair *pair;
	struct fy_node      *item;
	void                *it = NULL;

	if (n == NULL) {
		return (fb);
	}
	switch (fy_node_get_type(n)) {
	case FYNT_SCALAR:
		tok = fy_node_get_scalar_token(n);
		if (tok != NULL && fy_node_is_alias(n)) {
			return (coord_config_alias_pos(ld, tok, fb));
		}
		if (tok != NULL &&
		    (fy_token_scalar_style(tok) == FYSS_LITERAL ||
		        fy_token_scalar_style(tok) == FYSS_FOLDED)) {
			return (coord_config_block_pos(ld, tok, fb));
		}
		return (coord_config_mark_pos(ld,
		    tok != NULL ? fy_token_start_mark(tok) : NULL, fb));
	case FYNT_MAPPING:
		if ((pair = fy_node_mapping_iterate(n, &it)) == NULL) {
			return (fb);
		}
		return (coord_config_node_pos(ld, fy_node_pair_key(pair), fb));
	case FYNT_SEQUENCE:
		if ((item = fy_node_sequence_iterate(n, &it)) == NULL) {
			return (fb);
		}
		return (coord_config_node_pos(ld, item, fb));
	}
	return (fb);
}

/* The text of a scalar (NUL-terminated, owned by the document), or NULL
 * when n is not a scalar. */
static const char *
coord_config_text(struct fy_node *n)
{
	if (n == NULL || fy_node_get_type(n) != FYNT_SCALAR ||
	    fy_node_is_alias(n)) {
		return (NULL);
	}
	return (fy_node_get_scalar0(n));
}

/* Whether the scalar holds a NUL byte (a "\0" escape). */
static bool
coord_config_has_nul(struct fy_node *n)
{
	const char *t = coord_config_text(n);

	return (t != NULL && strlen(t) != fy_node_get_scalar_length(n));
}

/* Whether n is a YAML null: no value, or a plain ~ / null. */
static bool
coord_config_is_null(struct fy_node *n)
{
	const char *t;

	if (n == NULL) {
		return (true);
	}
	if (fy_node_get_style(n) != FYNS_PLAIN ||
	    (t = coord_config_text(n)) == NULL) {
		return (false);
	}
	return (strcmp(t, "") == 0 || strcmp(t, "~") == 0 ||
	    strcmp(t, "null") == 0 || strcmp(t, "Null") == 0 ||
	    strcmp(t, "NULL") == 0);
}

/* The length of the longest start of the len bytes at s that holds at
 * most max bytes and does not split a UTF-8 character (a malformed byte
 * counts as one): messages are cut there, so that they stay valid UTF-8
 * (sagactl validate --json cannot print them otherwise). */
static size_t
coord_config_cut(const char *s, size_t len, size_t max)
{
	size_t n = 0;

	while (n < len) {
		size_t c = proto_utf8_char((const uint8_t *) s + n, len - n);

		if (n + (c > 0 ? c : 1) > max) {
			break;
		}
		n += c > 0 ? c : 1;
	}
	return (n);
}

/* Describes what n is, for "got ..." in messages: a quoted excerpt of a
 * scalar (control characters and malformed bytes escaped, text longer
 * than the excerpt cut between two characters and followed by "..."),
 * "nothing", "null", "a mapping" or "a list". */
static void
coord_config_got(struct fy_node *n, char *buf, size_t len)
{
	const char *t;
	size_t      o   = 0;
	size_t      i   = 0;
	size_t      tl;
	size_t      max = 60;

	if (n == NULL || (coord_config_is_null(n) &&
	                     strcmp(coord_config_text(n), "") == 0)) {
		snprintf(buf, len, "nothing");
		return;
	}
	if (coord_config_is_null(n)) {
		snprintf(buf, len, "null");
		return;
	}
	switch (fy_node_get_type(n)) {
	case FYNT_MAPPING:
		snprintf(buf, len, "a mapping");
		return;
	case FYNT_SEQUENCE:
		snprintf(buf, len, "a list");
		return;
	case FYNT_SCALAR:
		break;
	}
	t  = fy_node_get_scalar0(n);
	tl = fy_node_get_scalar_length(n);
	if (t == NULL || len < max + 16) {
		snprintf(buf, len, "a value");
		return;
	}
	buf[o++] = '"';
	/* One character (or its escape) at a time, while it fits. */
	while (i < tl) {
		unsigned char c = (unsigned char) t[i];
		char          piece[8];
		size_t        plen;
		size_t        cl = 1;

		if (c >= 0x80) {
			/* 0 for a malformed byte: escaped. */
			cl = proto_utf8_char((const uint8_t *) t + i, tl - i);
		}
		if (c == '"' || c == '\\') {
			piece[0] = '\\';
			piece[1] = (char) c;
			plen     = 2;
		} else if (c < 0x20 || c == 0x7f || cl == 0) {
			cl   = 1;
			plen = (size_t) snprintf(
			    piece, sizeof(piece), "\\x%02x", c);
		} else {
			memcpy(piece, t + i, cl);
			plen = cl;
		}
		if (o + plen > max) {
			break;
		}
		memcpy(buf + o, piece, plen);
		o += plen;
		i += cl;
	}
	if (i < tl) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o]   = '\0';
}

/* Reports an alias (anchors are allowed, aliases are not: they would make
 * positions ambiguous and let a small file expand without bound). */
static bool
coord_config_alias(
    coord_config_ld *ld, struct fy_node *n, coord_config_pos fb)
{
	if (n == NULL || !fy_node_is_alias(n)) {
		return (false);
	}
	coord_config_err_at(ld, coord_config_node_pos(ld, n, fb),
	    "aliases are not supported (*%s)", fy_node_get_scalar0(n));
	return (true);
}

/* Checks that f's value is a collection of type want; reports "path:
 * expected <what>, got ..." otherwise. */
static bool
coord_config_want(coord_config_ld *ld, const coord_config_field *f,
    enum fy_node_type want, const char *path, const char *what)
{
	char got[96];

	if (coord_config_alias(ld, f->val, f->pos)) {
		return (false);
	}
	if (f->val != NULL && !coord_config_is_null(f->val) &&
	    fy_node_get_type(f->val) == want) {
		return (true);
	}
	coord_config_got(f->val, got, sizeof(got));
	coord_config_err_at(ld, coord_config_node_pos(ld, f->val, f->pos),
	    "%s: expected %s, got %s", path, what, got);
	return (false);
}

/* A field standing for a node that no key holds (a list item, a root). */
static coord_config_field
coord_config_item(
    const coord_config_ld *ld, struct fy_node *n, coord_config_pos fb)
{
	coord_config_field f = { .key = NULL };

	f.val  = n;
	f.pos  = coord_config_node_pos(ld, n, fb);
	f.seen = true;
	return (f);
}

/* Reads the keys of mapping map into fields (nf of them): unknown keys are
 * errors that list the allowed ones ("in <where>"). Missing keys are
 * checked by coord_config_missing once the caller knows its subject. */
static void
coord_config_fields(coord_config_ld *ld, struct fy_node *map,
    coord_config_field *fields, size_t nf, const char *where,
    coord_config_pos fb)
{
	struct fy_node_pair *pair;
	void                *it = NULL;
	char                 allowed[512];
	size_t               o = 0;

	allowed[0] = '\0';
	for (size_t i = 0; i < nf; i++) {
		o += (size_t) snprintf(allowed + o, sizeof(allowed) - o,
		    "%s%s", i ? ", " : "", fields[i].key);
		if (o >= sizeof(allowed)) {
			o = sizeof(allowed) - 1;
		}
	}
	while ((pair = fy_node_mapping_iterate(map, &it)) != NULL) {
		struct fy_node  *k = fy_node_pair_key(pair);
		coord_config_pos kp = coord_config_node_pos(ld, k, fb);
		const char      *t;
		size_t           i;
		char             got[96];

		if (coord_config_alias(ld, k, fb)) {
			continue;
		}
		if ((t = coord_config_text(k)) == NULL ||
		    coord_config_is_null(k) || coord_config_has_nul(k)) {
			coord_config_got(k, got, sizeof(got));
			coord_config_err_at(ld, kp,
			    "expected a key %s (one of: %s), got %s", where,
			    allowed, got);
			continue;
		}
		for (i = 0; i < nf; i++) {
			if (strcmp(t, fields[i].key) == 0) {
				break;
			}
		}
		if (i == nf) {
			coord_config_got(k, got, sizeof(got));
			coord_config_err_at(ld, kp,
			    "unknown key %s %s (allowed: %s)", got, where,
			    allowed);
			continue;
		}
		if (fields[i].seen) {
			/* The parser lets duplicate keys through
			 * (coord_config_parse), so that this names both
			 * places and the rest of the file is checked. */
			coord_config_pos fp = fields[i].pos;

			coord_config_err_at(ld, kp,
			    "duplicate key \"%s\" %s (first at %s:%d:%d)",
			    fields[i].key, where, ld->files[fp.file], fp.line,
			    fp.col);
			continue;
		}
		fields[i].val  = fy_node_pair_value(pair);
		fields[i].pos  = kp;
		fields[i].seen = true;
	}
}

/* Reports the required keys (every key in strict mode) that are missing,
 * at pos: "<subject>: missing required key "k"". */
static void
coord_config_missing(coord_config_ld *ld, const coord_config_field *fields,
    size_t nf, const char *subject, coord_config_pos pos)
{
	for (size_t i = 0; i < nf; i++) {
		if (!fields[i].seen &&
		    (fields[i].required ||
		        (ld->strict && !fields[i].optional))) {
			coord_config_err_at(ld, pos,
			    "%s: missing required key \"%s\"", subject,
			    fields[i].key);
		}
	}
}

/*
 * Values.
 */

/* Flags of coord_config_str. */
#define COORD_CONFIG_NULLABLE 1 /* null stands for "none" (NULL) */
#define COORD_CONFIG_NAME 2     /* [A-Za-z0-9_.-], 1..NAME_MAX */
/* No line break or tab at either end: a name another program looks up
 * exactly (an action, an input field), where "order.create\n", what a
 * folded > scalar gives, is not order.create. (Spaces at the ends are
 * kept, as every other character: they are the definition's.) */
#define COORD_CONFIG_TOKEN 4

/* Whether s is a valid name. */
static bool
coord_config_name_ok(const char *s)
{
	size_t n = strlen(s);

	return (n > 0 && n <= COORD_CONFIG_NAME_MAX &&
	    strspn(s, coord_config_name_chars) == n);
}

/* Whether s has no line break or tab at either end (COORD_CONFIG_TOKEN). */
static bool
coord_config_token_ok(const char *s)
{
	static const char edge[] = "\n\r\t\v\f";
	size_t            n      = strlen(s);

	return (n > 0 && strchr(edge, s[0]) == NULL &&
	    strchr(edge, s[n - 1]) == NULL);
}

/* Reads a string. Returns true (and sets *out, NULL for an allowed null)
 * when the value is valid; reports it and returns false otherwise. */
static bool
coord_config_str(coord_config_ld *ld, const coord_config_field *f,
    const char *path, int flags, char **out)
{
	const char *t;
	char        got[96];
	bool        ok;

	*out = NULL;
	if (coord_config_alias(ld, f->val, f->pos)) {
		return (false);
	}
	if ((flags & COORD_CONFIG_NULLABLE) && coord_config_is_null(f->val)) {
		return (true);
	}
	t = coord_config_is_null(f->val) ? NULL : coord_config_text(f->val);
	if ((flags & COORD_CONFIG_NAME) != 0) {
		ok = t != NULL && coord_config_name_ok(t) &&
		    !coord_config_has_nul(f->val);
	} else {
		ok = t != NULL && t[0] != '\0' &&
		    strlen(t) <= COORD_CONFIG_STRING_MAX &&
		    !coord_config_has_nul(f->val);
	}
	/* Not for a definition read back from the log (strict): one
	 * stored before the rule must still load, or its sagas could not
	 * be recovered, taken over or repaired. */
	if (ok && (flags & COORD_CONFIG_TOKEN) != 0 && !ld->strict &&
	    !coord_config_token_ok(t)) {
		coord_config_got(f->val, got, sizeof(got));
		coord_config_err_at(ld,
		    coord_config_node_pos(ld, f->val, f->pos),
		    "%s: %s starts or ends with a line break or tab (a "
		    "folded > scalar ends with one); it is matched exactly",
		    path, got);
		return (false);
	}
	if (!ok) {
		coord_config_got(f->val, got, sizeof(got));
		coord_config_err_at(ld,
		    coord_config_node_pos(ld, f->val, f->pos),
		    (flags & COORD_CONFIG_NAME) != 0
		        ? "%s: expected a name of 1..%d characters "
		          "A-Z a-z 0-9 _ . -, got %s"
		        : "%s: expected a string of 1..%d bytes, got %s",
		    path,
		    (flags & COORD_CONFIG_NAME) != 0 ? COORD_CONFIG_NAME_MAX
		                                     : COORD_CONFIG_STRING_MAX,
		    got);
		return (false);
	}
	*out = coord_config_strdup(ld, t);
	return (*out != NULL);
}

/* Whether s is a decimal integer: [-+]?[0-9]+. */
static bool
coord_config_is_int(const char *s)
{
	if (*s == '-' || *s == '+') {
		s++;
	}
	return (*s != '\0' && strspn(s, "0123456789") == strlen(s));
}

/* Reads an integer in min..max. */
static bool
coord_config_int(coord_config_ld *ld, const coord_config_field *f,
    const char *path, long long min, long long max, long long *out)
{
	const char *t;
	long long   v = 0;
	char       *end;
	char        got[96];

	if (coord_config_alias(ld, f->val, f->pos)) {
		return (false);
	}
	t = coord_config_is_null(f->val) ? NULL : coord_config_text(f->val);
	if (t != NULL && coord_config_is_int(t)) {
		errno = 0;
		v     = strtoll(t, &end, 10);
		if (errno == 0 && *end == '\0' && v >= min && v <= max) {
			*out = v;
			return (true);
		}
	}
	coord_config_got(f->val, got, sizeof(got));
	coord_config_err_at(ld, coord_config_node_pos(ld, f->val, f->pos),
	    "%s: expected an integer %lld..%lld, got %s", path, min, max, got);
	return (false);
}

/* Whether s is a decimal number as YAML 1.2 writes floats, without
 * .inf and .nan: [-+]?([0-9]+(.[0-9]*)?|.[0-9]+)([eE][-+]?[0-9]+)?. */
static bool
coord_config_is_num(const char *s)
{
	size_t n;
	size_t f = 0;

	if (*s == '-' || *s == '+') {
		s++;
	}
	n = strspn(s, "0123456789");
	s += n;
	if (*s == '.') {
		s++;
		f = strspn(s, "0123456789");
		s += f;
	}
	if (n == 0 && f == 0) {
		return (false);
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+') {
			s++;
		}
		if ((n = strspn(s, "0123456789")) == 0) {
			return (false);
		}
		s += n;
	}
	return (*s == '\0');
}

/* Reads a finite number in min..max (max may be INFINITY); what says
 * which range ("a number >= 1"). */
static bool
coord_config_num(coord_config_ld *ld, const coord_config_field *f,
    const char *path, double min, double max, const char *what,
    double *out)
{
	const char *t;
	double      v;
	char        got[96];

	if (coord_config_alias(ld, f->val, f->pos)) {
		return (false);
	}
	t = coord_config_is_null(f->val) ? NULL : coord_config_text(f->val);
	if (t != NULL && coord_config_is_num(t)) {
		v = strtod(t, NULL);
		if (isfinite(v) && v >= min && v <= max) {
			*out = v;
			return (true);
		}
	}
	coord_config_got(f->val, got, sizeof(got));
	coord_config_err_at(ld, coord_config_node_pos(ld, f->val, f->pos),
	    "%s: expected %s, got %s", path, what, got);
	return (false);
}

/* Reads a duration of at most max ms; positive says whether 0 is
 * refused. With nullable, null gives 0 ("none"). */
static bool
coord_config_dur(coord_config_ld *ld, const coord_config_field *f,
    const char *path, bool positive, bool nullable, int64_t max,
    int64_t *out)
{
	const char *t;
	int64_t     v = 0;
	int         rv;
	char        got[96];

	if (coord_config_alias(ld, f->val, f->pos)) {
		return (false);
	}
	if (nullable && coord_config_is_null(f->val)) {
		*out = 0;
		return (true);
	}
	t = coord_config_is_null(f->val) ? NULL : coord_config_text(f->val);
	coord_config_got(f->val, got, sizeof(got));
	rv = t == NULL || coord_config_has_nul(f->val)
	    ? SAGA_EINVAL
	    : coord_duration_parse(t, &v);
	if (rv == SAGA_ERANGE) {
		v = INT64_MAX; /* too long: said below */
	} else if (rv != 0) {
		coord_config_err_at(ld,
		    coord_config_node_pos(ld, f->val, f->pos),
		    "%s: expected a duration like 500ms, 2s, 1m, got %s", path,
		    got);
		return (false);
	}
	if (positive && v == 0) {
		coord_config_err_at(ld,
		    coord_config_node_pos(ld, f->val, f->pos),
		    "%s: expected a duration > 0, got %s", path, got);
		return (false);
	}
	if (v > max) {
		coord_config_err_at(ld,
		    coord_config_node_pos(ld, f->val, f->pos),
		    "%s: expected a duration of at most %lldd, got %s", path,
		    (long long) (max / (24 * 3600 * 1000)), got);
		return (false);
	}
	*out = v;
	return (true);
}

bool (*coord_config_url_check)(const char *url, char *why, size_t whylen);

/* Whether s is an endpoint URL nng can dial: tcp://host:port,
 * tls+tcp://host:port, ipc://path or inproc://name, without spaces. */
static bool
coord_config_url_ok(const char *s)
{
	static const char *const schemes[] = { "tcp://", "tls+tcp://",
		"ipc://", "inproc://" };
	const char *rest = NULL;
	const char *colon;
	size_t      i;
	long        port;
	char       *end;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strncmp(s, schemes[i], strlen(schemes[i])) == 0) {
			rest = s + strlen(schemes[i]);
			break;
		}
	}
	if (rest == NULL || *rest == '\0' ||
	    strlen(s) > COORD_CONFIG_STRING_MAX) {
		return (false);
	}
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char) *p <= ' ' || *p == 0x7f) {
			return (false);
		}
	}
	if (i >= 2) {
		return (true);
	}
	/* tcp: a host, then :port with port 1..65535. */
	if ((colon = strrchr(rest, ':')) == NULL || colon == rest ||
	    colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
		return (false);
	}
	port = strtol(colon + 1, &end, 10);
	return (port >= 1 && port <= 65535);
}

/* Reads a retry policy from f (a mapping): base with the given keys
 * changed. path prefixes the keys in messages ("retry",
 * "defaults.retry"). Returns false when something was reported. */
static bool
coord_config_retry(coord_config_ld *ld, const coord_config_field *f,
    const char *path, const saga_retry *base, saga_retry *out)
{
	coord_config_field fields[] = {
		{ .key = "max_attempts" },
		{ .key = "initial_backoff" },
		{ .key = "multiplier" },
		{ .key = "max_backoff" },
		{ .key = "jitter" },
	};
	const size_t nf = sizeof(fields) / sizeof(fields[0]);
	saga_retry   r  = *base;
	long long    ll;
	bool         ok = true;
	char         p[96];

	if (!coord_config_want(ld, f, FYNT_MAPPING, path, "a mapping")) {
		return (false);
	}
	coord_config_fields(ld, f->val, fields, nf, "in a retry policy",
	    f->pos);
	coord_config_missing(ld, fields, nf, path,
	    coord_config_node_pos(ld, f->val, f->pos));
	if (fields[0].seen) {
		snprintf(p, sizeof(p), "%s.max_attempts", path);
		if (coord_config_int(ld, &fields[0], p, 0,
		        COORD_CONFIG_MAX_ATTEMPTS_MAX, &ll)) {
			r.max_attempts = (uint32_t) ll;
		} else {
			ok = false;
		}
	}
	if (fields[1].seen) {
		snprintf(p, sizeof(p), "%s.initial_backoff", path);
		ok &= coord_config_dur(ld, &fields[1], p, false, false,
		    COORD_CONFIG_DURATION_MAX_MS, &r.initial_backoff_ms);
	}
	if (fields[2].seen) {
		snprintf(p, sizeof(p), "%s.multiplier", path);
		ok &= coord_config_num(ld, &fields[2], p, 1.0, INFINITY,
		    "a number >= 1", &r.multiplier);
	}
	if (fields[3].seen) {
		snprintf(p, sizeof(p), "%s.max_backoff", path);
		ok &= coord_config_dur(ld, &fields[3], p, false, false,
		    COORD_CONFIG_DURATION_MAX_MS, &r.max_backoff_ms);
	}
	if (fields[4].seen) {
		snprintf(p, sizeof(p), "%s.jitter", path);
		ok &= coord_config_num(ld, &fields[4], p, 0.0, 1.0,
		    "a number 0..1", &r.jitter);
	}
	*out = r;
	return (ok);
}

/* Checks initial_backoff <= max_backoff of a merged policy. */
static bool
coord_config_retry_check(coord_config_ld *ld, const saga_retry *r,
    const char *path, coord_config_pos pos)
{
	if (r->initial_backoff_ms <= r->max_backoff_ms) {
		return (true);
	}
	coord_config_err_at(ld, pos,
	    "%s: initial_backoff (%lldms) is above max_backoff (%lldms)", path,
	    (long long) r->initial_backoff_ms, (long long) r->max_backoff_ms);
	return (false);
}

/*
 * Sections.
 */

/* Reads the defaults of a file into ld->dflt (which holds the built-in
 * ones); a bad value keeps the built-in one. */
static void
coord_config_defaults(coord_config_ld *ld, const coord_config_field *f)
{
	coord_config_field fields[] = {
		{ .key = "timeout" },
		{ .key = "retry" },
		{ .key = "compensation_retry" },
		{ .key = "compensation_timeout" },
	};
	const size_t nf = sizeof(fields) / sizeof(fields[0]);
	saga_retry   r;
	int64_t      v;

	if (!coord_config_want(ld, f, FYNT_MAPPING, "defaults", "a mapping")) {
		return;
	}
	coord_config_fields(ld, f->val, fields, nf, "in defaults", f->pos);
	if (fields[0].seen &&
	    coord_config_dur(ld, &fields[0], "defaults.timeout", true, false,
	        COORD_CONFIG_TIMEOUT_MAX_MS, &v)) {
		ld->dflt.timeout_ms = v;
	}
	if (fields[1].seen &&
	    coord_config_retry(ld, &fields[1], "defaults.retry",
	        &ld->dflt.retry, &r) &&
	    coord_config_retry_check(
	        ld, &r, "defaults.retry", fields[1].pos)) {
		ld->dflt.retry = r;
	}
	if (fields[2].seen &&
	    coord_config_retry(ld, &fields[2], "defaults.compensation_retry",
	        &ld->dflt.comp_retry, &r) &&
	    coord_config_retry_check(ld, &r, "defaults.compensation_retry",
	        fields[2].pos)) {
		ld->dflt.comp_retry = r;
	}
	if (fields[3].seen &&
	    coord_config_dur(ld, &fields[3], "defaults.compensation_timeout",
	        true, false, COORD_CONFIG_DURATION_MAX_MS, &v)) {
		ld->dflt.comp_budget_ms = v;
	}
}

/* Reads a file name of a participant's tls mapping into *out: a relative
 * name is taken from the directory of the YAML file that gives it. The
 * file must be readable now (sagad --check says so), though it is read
 * only when the participant is dialled. */
static void
coord_config_tls_file(coord_config_ld *ld, const coord_config_field *f,
    const char *path, char **out)
{
	char       *name;
	const char *yaml = ld->files[f->pos.file];
	const char *slash;

	if (!coord_config_str(ld, f, path, 0, &name)) {
		return;
	}
	if (name[0] != '/' && (slash = strrchr(yaml, '/')) != NULL) {
		size_t dl = (size_t) (slash - yaml) + 1;
		char  *full = malloc(dl + strlen(name) + 1);

		if (full == NULL) {
			ld->nomem = true;
			free(name);
			return;
		}
		memcpy(full, yaml, dl);
		strcpy(full + dl, name);
		free(name);
		name = full;
	}
	if (access(name, R_OK) != 0) {
		coord_config_err_at(ld,
		    coord_config_node_pos(ld, f->val, f->pos),
		    "%s: cannot read %s: %s", path, name, strerror(errno));
		free(name);
		return;
	}
	free(*out);
	*out = name;
}

/* Reads a participant's tls mapping: the CA that signs its certificate,
 * and the certificate and key sagad presents to it; what is left out is
 * sagad's own (--tls-ca, --tls-cert, --tls-key). */
static void
coord_config_participant_tls(coord_config_ld *ld, saga_participant_def *p,
    const coord_config_field *f)
{
	coord_config_field fields[] = {
		{ .key = "ca", .optional = true },
		{ .key = "cert", .optional = true },
		{ .key = "key", .optional = true },
	};
	const size_t nf = sizeof(fields) / sizeof(fields[0]);

	if (!coord_config_want(ld, f, FYNT_MAPPING, "tls", "a mapping")) {
		return;
	}
	coord_config_fields(
	    ld, f->val, fields, nf, "in a participant's tls", f->pos);
	if (fields[0].seen) {
		coord_config_tls_file(ld, &fields[0], "tls.ca", &p->tls_ca);
	}
	if (fields[1].seen) {
		coord_config_tls_file(ld, &fields[1], "tls.cert", &p->tls_cert);
	}
	if (fields[2].seen) {
		coord_config_tls_file(ld, &fields[2], "tls.key", &p->tls_key);
	}
	if (fields[1].seen != fields[2].seen) {
		coord_config_err_at(ld, f->pos,
		    "tls: cert and key go together (one of them is missing)");
	}
}

/* Reads the body f of participant p (its name at kf) into p. */
static void
coord_config_participant_body(coord_config_ld *ld, saga_participant_def *p,
    const coord_config_field *kf, const coord_config_field *f)
{
	coord_config_field fields[] = {
		{ .key = "endpoints", .required = true },
		{ .key = "max_in_flight" },
		{ .key = "tls", .optional = true },
		{ .key = "max_batch" },
	};
	const size_t    nf = sizeof(fields) / sizeof(fields[0]);
	char            subject[200];
	long long       ll;
	struct fy_node *item;
	void           *it = NULL;
	size_t          n;

	/* Cut on a whole character (a long non-ASCII name cut inside one
	 * made the message invalid UTF-8: validate --json printed none). */
	snprintf(subject, sizeof(subject), "participant \"%.*s\"",
	    (int) coord_config_cut(p->name, strlen(p->name), 100), p->name);
	if (!coord_config_want(ld, f, FYNT_MAPPING, subject, "a mapping")) {
		return;
	}
	coord_config_fields(
	    ld, f->val, fields, nf, "in a participant", f->pos);
	coord_config_missing(ld, fields, nf, subject, kf->pos);
	if (fields[1].seen &&
	    coord_config_int(ld, &fields[1], "max_in_flight", 1,
	        COORD_CONFIG_MAX_IN_FLIGHT_MAX, &ll)) {
		p->max_in_flight = (uint32_t) ll;
	}
	if (fields[2].seen) {
		coord_config_participant_tls(ld, p, &fields[2]);
	}
	if (fields[3].seen &&
	    coord_config_int(ld, &fields[3], "max_batch", 1,
	        COORD_CONFIG_MAX_BATCH_MAX, &ll)) {
		p->max_batch = (uint32_t) ll;
	}
	if (!fields[0].seen ||
	    !coord_config_want(ld, &fields[0], FYNT_SEQUENCE, "endpoints",
	        "a list of URLs")) {
		return;
	}
	if ((n = (size_t) fy_node_sequence_item_count(fields[0].val)) == 0) {
		coord_config_err_at(ld, fields[0].pos,
		    "endpoints: expected at least one URL");
		return;
	}
	if ((p->endpoints = calloc(n, sizeof(*p->endpoints))) == NULL) {
		ld->nomem = true;
		return;
	}
	while ((item = fy_node_sequence_iterate(fields[0].val, &it)) != NULL) {
		coord_config_field itf =
		    coord_config_item(ld, item, fields[0].pos);
		char *url;
		char  got[96], why[128];

		if (!coord_config_str(ld, &itf, "endpoints", 0, &url)) {
			continue;
		}
		if (!coord_config_url_ok(url)) {
			coord_config_got(item, got, sizeof(got));
			coord_config_err_at(ld, itf.pos,
			    "endpoints: expected a URL tcp://host:port, "
			    "tls+tcp://host:port, ipc://path or "
			    "inproc://name, got %s",
			    got);
			free(url);
			continue;
		}
		if (coord_config_url_check != NULL &&
		    !coord_config_url_check(url, why, sizeof(why))) {
			coord_config_err_at(ld, itf.pos,
			    "endpoints: %s cannot be dialled: %s", url, why);
			free(url);
			continue;
		}
		p->endpoints[p->nendpoints++] = url;
	}
}

/* Reads one participant: key k (its name) and value f. A duplicate is
 * reported, and its body still checked, into a definition thrown away:
 * its errors came one at a time, after each rename (as a duplicate
 * saga's do not). */
static void
coord_config_participant(coord_config_ld *ld, const coord_config_field *kf,
    const coord_config_field *f)
{
	saga_participant_def *p   = NULL;
	bool                  dup = false;
	char                 *name;

	if (!coord_config_str(ld, kf, "participants", COORD_CONFIG_NAME,
	        &name)) {
		/* Keep the name anyway, so that the steps naming it do not
		 * report it as unknown as well. */
		const char *t = coord_config_text(kf->val);

		if (t == NULL || (name = coord_config_strdup(ld, t)) == NULL) {
			return;
		}
	}
	for (size_t i = 0; i < ld->nparts && !dup; i++) {
		if (strcmp(ld->parts[i]->name, name) == 0) {
			coord_config_pos fp = ld->part_pos[i];

			coord_config_err_at(ld, kf->pos,
			    "duplicate participant \"%s\" (first defined at "
			    "%s:%d:%d)",
			    name, ld->files[fp.file], fp.line, fp.col);
			dup = true;
		}
	}
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (!dup &&
	        (!coord_config_grow(ld, (void **) &ld->parts, &ld->capparts,
	             ld->nparts, sizeof(*ld->parts)) ||
	            !coord_config_grow(ld, (void **) &ld->part_pos,
	                &ld->cappart_pos, ld->nparts,
	                sizeof(*ld->part_pos))))) {
		ld->nomem = true;
		free(p);
		free(name);
		return;
	}
	p->name          = name;
	p->max_in_flight = COORD_CONFIG_MAX_IN_FLIGHT_DEFAULT;
	p->max_batch     = COORD_CONFIG_MAX_BATCH_DEFAULT;
	if (!dup) {
		ld->parts[ld->nparts]    = p;
		ld->part_pos[ld->nparts] = kf->pos;
		ld->nparts++;
	}
	coord_config_participant_body(ld, p, kf, f);
	if (dup) {
		saga_participant_def_free(p);
	}
}

/* Reads one step into d->steps[i]; si gets what the saga checks need. */
static void
coord_config_step(coord_config_ld *ld, saga_def *d, size_t i,
    struct fy_node *n, coord_config_pos fb, coord_config_stepinfo *si)
{
	coord_config_field fields[] = {
		{ .key = "name", .required = true },
		{ .key = "participant", .required = true },
		{ .key = "action", .required = true },
		{ .key = "compensation" },
		{ .key = "kind" },
		{ .key = "timeout" },
		{ .key = "retry" },
		{ .key = "compensation_retry" },
		{ .key = "compensation_timeout" },
	};
	const size_t       nf = sizeof(fields) / sizeof(fields[0]);
	saga_step_def     *s  = &d->steps[i];
	coord_config_field sf = coord_config_item(ld, n, fb);
	char               subject[200];
	char              *kind    = NULL;
	bool               comp_ok = true;
	saga_retry         base;
	coord_config_pos   rpos;

	s->kind           = SAGA_STEP_COMPENSATABLE;
	s->timeout_ms     = ld->dflt.timeout_ms;
	s->retry          = ld->dflt.retry;
	s->comp_retry     = ld->dflt.comp_retry;
	s->comp_budget_ms = ld->dflt.comp_budget_ms;
	si->pos           = sf.pos;
	si->name_pos      = sf.pos;
	si->kind_pos      = sf.pos;
	si->kind_ok       = false;
	if (!coord_config_want(ld, &sf, FYNT_MAPPING, "step", "a mapping")) {
		return;
	}
	coord_config_fields(ld, n, fields, nf, "in a step", sf.pos);
	if (fields[0].seen) {
		si->name_pos = coord_config_node_pos(ld, fields[0].val,
		    fields[0].pos);
		if (!coord_config_str(ld, &fields[0], "name",
		        COORD_CONFIG_NAME, &s->name)) {
			/* Keep a bad name for the duplicate check. */
			const char *t = coord_config_text(fields[0].val);

			if (t != NULL &&
			    !coord_config_is_null(fields[0].val)) {
				s->name = coord_config_strdup(ld, t);
			}
		}
	}
	if (s->name != NULL) {
		snprintf(subject, sizeof(subject), "step \"%.*s\"",
		    (int) coord_config_cut(s->name, strlen(s->name), 100),
		    s->name);
	} else {
		snprintf(subject, sizeof(subject), "step %zu", i + 1);
	}
	coord_config_missing(ld, fields, nf, subject, sf.pos);
	if (fields[1].seen &&
	    coord_config_str(ld, &fields[1], "participant", COORD_CONFIG_NAME,
	        &s->participant) &&
	    !ld->strict &&
	    coord_config_grow(ld, (void **) &ld->refs, &ld->caprefs,
	        ld->nrefs, sizeof(*ld->refs))) {
		ld->refs[ld->nrefs].name = s->participant;
		ld->refs[ld->nrefs].pos  = coord_config_node_pos(
		    ld, fields[1].val, fields[1].pos);
		ld->nrefs++;
	}
	if (fields[2].seen) {
		coord_config_str(ld, &fields[2], "action", COORD_CONFIG_TOKEN,
		    &s->action);
	}
	if (fields[3].seen) {
		comp_ok = coord_config_str(ld, &fields[3], "compensation",
		    COORD_CONFIG_NULLABLE | COORD_CONFIG_TOKEN,
		    &s->compensation);
	}
	if (fields[4].seen) {
		si->kind_pos = coord_config_node_pos(ld, fields[4].val,
		    fields[4].pos);
		if (coord_config_str(ld, &fields[4], "kind", 0, &kind)) {
			char got[96];

			si->kind_ok = true;
			if (strcmp(kind, "compensatable") == 0) {
				s->kind = SAGA_STEP_COMPENSATABLE;
			} else if (strcmp(kind, "pivot") == 0) {
				s->kind = SAGA_STEP_PIVOT;
			} else if (strcmp(kind, "retriable") == 0) {
				s->kind = SAGA_STEP_RETRIABLE;
			} else {
				si->kind_ok = false;
				coord_config_got(fields[4].val, got,
				    sizeof(got));
				coord_config_err_at(ld, si->kind_pos,
				    "kind: expected compensatable, pivot or "
				    "retriable, got %s",
				    got);
			}
			free(kind);
		}
	} else {
		si->kind_ok = true;
	}
	if (fields[5].seen) {
		coord_config_dur(ld, &fields[5], "timeout", true, false,
		    COORD_CONFIG_TIMEOUT_MAX_MS, &s->timeout_ms);
	}
	/* A retriable step retries without end and with a longer cap
	 * unless it says otherwise. */
	base = ld->dflt.retry;
	if (s->kind == SAGA_STEP_RETRIABLE && base.max_backoff_ms <
	        COORD_CONFIG_RETRIABLE_MAX_BACKOFF_MS) {
		/* Longer, never shorter, than the defaults' cap (a shorter
		 * one could fall below their initial_backoff). */
		base.max_backoff_ms = COORD_CONFIG_RETRIABLE_MAX_BACKOFF_MS;
	}
	if (s->kind == SAGA_STEP_RETRIABLE) {
		base.max_attempts = 0;
	}
	s->retry = base;
	rpos     = fields[6].seen ? fields[6].pos : si->kind_pos;
	if (fields[6].seen) {
		if (coord_config_retry(ld, &fields[6], "retry", &base,
		        &s->retry)) {
			coord_config_retry_check(ld, &s->retry, "retry", rpos);
		}
	} else {
		coord_config_retry_check(ld, &s->retry, "retry", rpos);
	}
	if (fields[7].seen &&
	    coord_config_retry(ld, &fields[7], "compensation_retry",
	        &ld->dflt.comp_retry, &s->comp_retry)) {
		coord_config_retry_check(ld, &s->comp_retry,
		    "compensation_retry", fields[7].pos);
	}
	if (fields[8].seen) {
		coord_config_dur(ld, &fields[8], "compensation_timeout", true,
		    false, COORD_CONFIG_DURATION_MAX_MS, &s->comp_budget_ms);
	}
	/* Rules of one step (the order of steps is the saga's business). */
	if (si->kind_ok && comp_ok && s->kind == SAGA_STEP_COMPENSATABLE &&
	    s->compensation == NULL) {
		coord_config_err_at(ld,
		    fields[3].seen ? coord_config_node_pos(ld, fields[3].val,
		                         fields[3].pos)
		                   : si->pos,
		    "%s: a compensatable step needs a compensation (or kind "
		    "pivot or retriable)",
		    subject);
	}
	if (si->kind_ok && s->kind == SAGA_STEP_RETRIABLE &&
	    s->compensation != NULL) {
		coord_config_err_at(ld,
		    coord_config_node_pos(ld, fields[3].val, fields[3].pos),
		    "%s: a retriable step cannot have a compensation (it is "
		    "never compensated)",
		    subject);
	}
}

/* The saga-level rules: step names unique, at most one pivot, only
 * compensatable steps (and the pivot) before it, only retriable ones
 * after it. Sets d->pivot. */
static void
coord_config_saga_rules(coord_config_ld *ld, saga_def *d,
    const coord_config_stepinfo *si, const char *subject)
{
	int pivot = -1;

	for (size_t i = 0; i < d->nsteps; i++) {
		const saga_step_def *s = &d->steps[i];

		for (size_t j = 0; s->name != NULL && j < i; j++) {
			if (d->steps[j].name != NULL &&
			    strcmp(d->steps[j].name, s->name) == 0) {
				coord_config_err_at(ld, si[i].name_pos,
				    "%s: duplicate step \"%s\" (first defined "
				    "at %s:%d:%d)",
				    subject, s->name,
				    ld->files[si[j].name_pos.file],
				    si[j].name_pos.line, si[j].name_pos.col);
				break;
			}
		}
		if (!si[i].kind_ok) {
			continue;
		}
		switch (s->kind) {
		case SAGA_STEP_PIVOT:
			if (pivot >= 0) {
				coord_config_err_at(ld, si[i].kind_pos,
				    "%s: more than one pivot (step \"%s\" is "
				    "the pivot, at %s:%d:%d)",
				    subject,
				    d->steps[pivot].name ? d->steps[pivot].name
				                         : "?",
				    ld->files[si[pivot].kind_pos.file],
				    si[pivot].kind_pos.line,
				    si[pivot].kind_pos.col);
			} else {
				pivot = (int) i;
			}
			break;
		case SAGA_STEP_COMPENSATABLE:
			if (pivot >= 0) {
				coord_config_err_at(ld, si[i].kind_pos,
				    "%s: step \"%s\" after the pivot \"%s\" "
				    "must be retriable, not compensatable",
				    subject, s->name ? s->name : "?",
				    d->steps[pivot].name ? d->steps[pivot].name
				                         : "?");
			}
			break;
		case SAGA_STEP_RETRIABLE:
			if (pivot < 0) {
				coord_config_err_at(ld, si[i].kind_pos,
				    "%s: retriable step \"%s\" needs a pivot "
				    "before it",
				    subject, s->name ? s->name : "?");
			}
			break;
		}
	}
	d->pivot = pivot;
}

static int
coord_config_redact_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *) a, *(char *const *) b));
}

/* Reads redact (f: a list of names of input fields) into d->redact,
 * sorted (the canonical JSON does not depend on the order of the YAML).
 * Bad items and duplicates are reported and left out. */
static void
coord_config_redact(
    coord_config_ld *ld, saga_def *d, const coord_config_field *f)
{
	coord_config_pos *pos = NULL;
	struct fy_node   *item;
	void             *it = NULL;
	size_t            n;

	if (!coord_config_want(ld, f, FYNT_SEQUENCE, "redact",
	        "a list of input field names")) {
		return;
	}
	/* An empty list redacts nothing. */
	if ((n = (size_t) fy_node_sequence_item_count(f->val)) == 0) {
		return;
	}
	if ((d->redact = calloc(n, sizeof(*d->redact))) == NULL ||
	    (pos = calloc(n, sizeof(*pos))) == NULL) {
		ld->nomem = true;
		free(pos);
		return;
	}
	while ((item = fy_node_sequence_iterate(f->val, &it)) != NULL) {
		coord_config_field itf  = coord_config_item(ld, item, f->pos);
		char              *name = NULL;
		size_t             j;

		if (!coord_config_str(
		        ld, &itf, "redact", COORD_CONFIG_TOKEN, &name)) {
			continue;
		}
		for (j = 0; j < d->nredact; j++) {
			if (strcmp(d->redact[j], name) == 0) {
				break;
			}
		}
		if (j < d->nredact) {
			coord_config_err_at(ld, itf.pos,
			    "redact: duplicate field \"%s\" (first listed at "
			    "%s:%d:%d)",
			    name, ld->files[pos[j].file], pos[j].line,
			    pos[j].col);
			free(name);
			continue;
		}
		pos[d->nredact]         = itf.pos;
		d->redact[d->nredact++] = name;
	}
	free(pos);
	if (d->nredact > 1) {
		qsort(d->redact, d->nredact, sizeof(*d->redact),
		    coord_config_redact_cmp);
	}
}

/* Reads one saga (a mapping) and appends it to ld->sagas. */
static void
coord_config_saga(coord_config_ld *ld, struct fy_node *n, coord_config_pos fb)
{
	coord_config_field fields[] = {
		{ .key = "name", .required = true },
		{ .key = "deadline" },
		{ .key = "business_key" },
		{ .key = "redact", .optional = true },
		{ .key = "steps", .required = true },
	};
	const size_t           nf  = sizeof(fields) / sizeof(fields[0]);
	coord_config_field     sf  = coord_config_item(ld, n, fb);
	coord_config_stepinfo *si  = NULL;
	saga_def              *d   = NULL;
	coord_config_pos       npos;
	char                   subject[200];
	struct fy_node        *item;
	void                  *it = NULL;
	size_t                 ns;

	if (!coord_config_want(ld, &sf, FYNT_MAPPING, "saga", "a mapping")) {
		return;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    !coord_config_grow(ld, (void **) &ld->sagas, &ld->capsagas,
	        ld->nsagas, sizeof(*ld->sagas)) ||
	    !coord_config_grow(ld, (void **) &ld->saga_pos, &ld->capsaga_pos,
	        ld->nsagas, sizeof(*ld->saga_pos))) {
		ld->nomem = true;
		free(d);
		return;
	}
	d->pivot = -1;
	d->file  = ld->strict ? NULL : ld->files[ld->file];
	d->line  = ld->strict ? 0 : sf.pos.line;
	coord_config_fields(ld, n, fields, nf, "in a saga", sf.pos);
	npos = fields[0].seen
	    ? coord_config_node_pos(ld, fields[0].val, fields[0].pos)
	    : sf.pos;
	if (fields[0].seen &&
	    !coord_config_str(
	        ld, &fields[0], "name", COORD_CONFIG_NAME, &d->name)) {
		const char *t = coord_config_text(fields[0].val);

		if (t != NULL && !coord_config_is_null(fields[0].val)) {
			d->name = coord_config_strdup(ld, t);
		}
	}
	ld->sagas[ld->nsagas]    = d;
	ld->saga_pos[ld->nsagas] = npos;
	ld->nsagas++;
	if (d->name != NULL) {
		snprintf(subject, sizeof(subject), "saga \"%.*s\"",
		    (int) coord_config_cut(d->name, strlen(d->name), 100),
		    d->name);
		for (size_t i = 0; i + 1 < ld->nsagas; i++) {
			coord_config_pos fp = ld->saga_pos[i];

			if (ld->sagas[i]->name != NULL &&
			    strcmp(ld->sagas[i]->name, d->name) == 0) {
				coord_config_err_at(ld, npos,
				    "duplicate saga \"%s\" (first defined at "
				    "%s:%d:%d)",
				    d->name, ld->files[fp.file], fp.line,
				    fp.col);
				break;
			}
		}
	} else {
		snprintf(subject, sizeof(subject), "saga");
	}
	coord_config_missing(ld, fields, nf, subject, sf.pos);
	if (fields[1].seen) {
		coord_config_dur(ld, &fields[1], "deadline", true, true,
		    COORD_CONFIG_DURATION_MAX_MS, &d->deadline_ms);
	}
	if (fields[2].seen) {
		coord_config_str(ld, &fields[2], "business_key",
		    COORD_CONFIG_NULLABLE | COORD_CONFIG_TOKEN,
		    &d->business_key);
	}
	if (fields[3].seen) {
		coord_config_redact(ld, d, &fields[3]);
	}
	if (!fields[4].seen ||
	    !coord_config_want(ld, &fields[4], FYNT_SEQUENCE, "steps",
	        "a list of steps")) {
		return;
	}
	if ((ns = (size_t) fy_node_sequence_item_count(fields[4].val)) == 0) {
		coord_config_err_at(ld, fields[4].pos,
		    "steps: expected at least one step");
		return;
	}
	if ((d->steps = calloc(ns, sizeof(*d->steps))) == NULL ||
	    (si = calloc(ns, sizeof(*si))) == NULL) {
		ld->nomem = true;
		return;
	}
	d->nsteps = ns;
	for (size_t i = 0; i < ns; i++) {
		item = fy_node_sequence_iterate(fields[4].val, &it);
		coord_config_step(ld, d, i, item, fields[4].pos, &si[i]);
	}
	coord_config_saga_rules(ld, d, si, subject);
	free(si);
}

/* Reads the root mapping of one YAML file. */
static void
coord_config_root(coord_config_ld *ld, struct fy_node *root)
{
	coord_config_field fields[] = {
		{ .key = "participants" },
		{ .key = "defaults" },
		{ .key = "sagas" },
	};
	const size_t       nf  = sizeof(fields) / sizeof(fields[0]);
	coord_config_pos   top = { .file = ld->file, .line = 1, .col = 1 };
	coord_config_field rf  = coord_config_item(ld, root, top);
	struct fy_node_pair *pair;
	struct fy_node      *item;
	void                *it = NULL;

	ld->dflt.timeout_ms     = COORD_CONFIG_TIMEOUT_MS;
	ld->dflt.retry          = coord_config_retry_builtin;
	ld->dflt.comp_retry     = coord_config_comp_retry_builtin;
	ld->dflt.comp_budget_ms = COORD_CONFIG_COMP_BUDGET_MS;
	if (root == NULL || coord_config_is_null(root)) {
		/* An empty file defines nothing. */
		return;
	}
	if (!coord_config_want(ld, &rf, FYNT_MAPPING, "top level",
	        "a mapping with participants, defaults, sagas")) {
		return;
	}
	coord_config_fields(ld, root, fields, nf, "at the top level", top);
	/* Defaults first: they apply to the whole file. */
	if (fields[1].seen && !coord_config_is_null(fields[1].val)) {
		coord_config_defaults(ld, &fields[1]);
	}
	if (fields[0].seen && !coord_config_is_null(fields[0].val) &&
	    coord_config_want(ld, &fields[0], FYNT_MAPPING, "participants",
	        "a mapping of names to participants")) {
		while ((pair = fy_node_mapping_iterate(fields[0].val, &it)) !=
		    NULL) {
			coord_config_field kf = coord_config_item(
			    ld, fy_node_pair_key(pair), fields[0].pos);
			coord_config_field vf = coord_config_item(
			    ld, fy_node_pair_value(pair), kf.pos);

			if (ld->nomem) {
				return;
			}
			vf.pos = kf.pos;
			coord_config_participant(ld, &kf, &vf);
		}
	}
	it = NULL;
	if (fields[2].seen && !coord_config_is_null(fields[2].val) &&
	    coord_config_want(ld, &fields[2], FYNT_SEQUENCE, "sagas",
	        "a list of sagas")) {
		while ((item = fy_node_sequence_iterate(fields[2].val, &it)) !=
		    NULL) {
			if (ld->nomem) {
				return;
			}
			coord_config_saga(ld, item, fields[2].pos);
		}
	}
}

/*
 * Parsing.
 */

static void
coord_config_diag_output_cb(
    struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	/* Errors are collected, not printed. */
	(void) diag;
	(void) user;
	(void) buf;
	(void) len;
}

/* A parsed file: the document and what it needs alive. */
typedef struct coord_config_doc {
	struct fy_diag     *diag;
	struct fy_parser   *fyp;
	struct fy_document *fyd; /* the first document, or NULL */
} coord_config_doc;

static void
coord_config_doc_fini(coord_config_doc *doc)
{
	if (doc->fyd != NULL) {
		fy_parse_document_destroy(doc->fyp, doc->fyd);
	}
	if (doc->fyp != NULL) {
		fy_parser_destroy(doc->fyp);
	}
	if (doc->diag != NULL) {
		fy_diag_destroy(doc->diag);
	}
	memset(doc, 0, sizeof(*doc));
}

/* Tells whether buf (len bytes) is text libfyaml can be given, after
 * reporting where it is not. libfyaml 0.7.12 ends the stream without an
 * error at a NUL byte or at a byte that is not UTF-8, so the rest of the
 * file would be dropped unseen, and loops for ever on such a byte in a
 * directive ("%FOO\xfe"), which would hang a reload. */
static bool
coord_config_text_ok(coord_config_ld *ld, const char *buf, size_t len)
{
	const uint8_t   *u   = (const uint8_t *) buf;
	coord_config_pos pos = { .file = ld->file, .line = 1, .col = 1 };
	size_t           i   = 0, k;

	if (len >= 2 && ((u[0] == 0xfe && u[1] == 0xff) ||
	                    (u[0] == 0xff && u[1] == 0xfe))) {
		coord_config_err_at(ld, pos,
		    "the file starts with a UTF-16 or UTF-32 byte-order mark; "
		    "a configuration is UTF-8");
		return (false);
	}
	if (len >= 3 && u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf) {
		/* A UTF-8 byte-order mark takes no column, as in libfyaml. */
		i = 3;
	}
	while (i < len) {
		if (u[i] == '\0') {
			coord_config_err_at(ld, pos,
			    "a NUL byte; a configuration is UTF-8 text "
			    "without NUL (is the file UTF-16?)");
			return (false);
		}
		if ((k = proto_utf8_char(u + i, len - i)) == 0) {
			coord_config_err_at(ld, pos,
			    "byte 0x%02x is not UTF-8; a configuration is "
			    "UTF-8 text",
			    u[i]);
			return (false);
		}
		/* A line ends at \n, \r\n or a lone \r, as libfyaml counts
		 * lines. */
		if (u[i] == '\n' ||
		    (u[i] == '\r' && (i + 1 == len || u[i + 1] != '\n'))) {
			pos.line++;
			pos.col = 1;
		} else if (u[i] != '\r') {
			pos.col++;
		}
		i += k;
	}
	return (true);
}

/* Parses buf (len bytes, kept alive by the caller until
 * coord_config_doc_fini; ld->text points at it, for the positions of
 * block scalars) as the file ld->file into doc. Returns false after
 * reporting syntax errors (or when out of memory); true with doc->fyd
 * NULL for an empty stream. A second document is an error, but the first
 * one is still checked. */
static bool
coord_config_parse(coord_config_ld *ld, const char *buf, size_t len,
    bool json, coord_config_doc *doc)
{
	struct fy_diag_cfg    dc;
	struct fy_parse_cfg   pc;
	struct fy_document   *fyd;
	struct fy_diag_error *de;
	void                 *it     = NULL;
	size_t                ndocs  = 0;
	size_t                before = ld->nerrs;
	coord_config_pos      pos    = { .file = ld->file };

	memset(doc, 0, sizeof(*doc));
	ld->text    = buf;
	ld->textlen = len;
	if (!coord_config_text_ok(ld, buf, len)) {
		return (false);
	}
	fy_diag_cfg_default(&dc);
	dc.fp        = NULL;
	dc.output_fn = coord_config_diag_output_cb;
	dc.colorize  = false;
	if ((doc->diag = fy_diag_create(&dc)) == NULL) {
		ld->nomem = true;
		return (false);
	}
	fy_diag_set_collect_errors(doc->diag, true);
	memset(&pc, 0, sizeof(pc));
	/* Duplicate keys are reported by the loader (coord_config_fields,
	 * and the duplicate participant check), with both places: libfyaml
	 * said only "duplicate key", and stopped there. */
	pc.flags = FYPCF_QUIET | FYPCF_ALLOW_DUPLICATE_KEYS |
	    (json ? FYPCF_JSON_FORCE : FYPCF_JSON_NONE);
	pc.diag  = doc->diag;
	if ((doc->fyp = fy_parser_create(&pc)) == NULL ||
	    fy_parser_set_string(doc->fyp, buf, len) != 0) {
		ld->nomem = true;
		return (false);
	}
	while ((fyd = fy_parse_load_document(doc->fyp)) != NULL) {
		if (++ndocs == 1) {
			doc->fyd = fyd;
			continue;
		}
		if (ndocs == 2) {
			/* Where the document starts (its ---), for one with
			 * no node to point at. */
			struct fy_document_state *ds =
			    fy_document_get_document_state(fyd);
			coord_config_pos at = coord_config_mark_pos(ld,
			    ds != NULL ? fy_document_state_start_mark(ds) : NULL,
			    pos);

			coord_config_err_at(ld,
			    coord_config_node_pos(
			        ld, fy_document_root(fyd), at),
			    "expected one YAML document, found a second one");
		}
		fy_parse_document_destroy(doc->fyp, fyd);
	}
	while ((de = fy_diag_errors_iterate(doc->diag, &it)) != NULL) {
		if (de->type < FYET_ERROR) {
			continue;
		}
		/* libfyaml's collected positions are already 1-based. */
		pos.line = de->line > 0 ? de->line : 0;
		pos.col  = de->column > 0 ? de->column : 0;
		coord_config_err_at(
		    ld, pos, "%s", de->msg ? de->msg : "error");
	}
	if (!fy_diag_got_error(doc->diag) &&
	    !fy_parser_get_stream_error(doc->fyp)) {
		return (true);
	}
	if (ld->nerrs == before) {
		pos.line = 0;
		coord_config_err_at(ld, pos, "invalid YAML");
	}
	return (false);
}

/* Reads the whole file path; NULL (errno set) on failure. */
static char *
coord_config_read(const char *path, size_t *lenp)
{
	FILE  *f;
	char  *buf = NULL;
	char  *nb;
	size_t len = 0;
	size_t cap = 0;
	size_t n;
	int    e;

	if ((f = fopen(path, "rb")) == NULL) {
		return (NULL);
	}
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if ((nb = realloc(buf, cap)) == NULL) {
				e = ENOMEM;
				goto fail;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0) {
			break;
		}
	}
	if (ferror(f)) {
		e = errno ? errno : EIO;
		goto fail;
	}
	fclose(f);
	buf[len] = '\0';
	*lenp    = len;
	return (buf);

fail:
	free(buf);
	fclose(f);
	errno = e;
	return (NULL);
}

/* The spaces that start the line before the one of mark m: for a block
 * scalar's mark (coord_config_block_line), its indicator's line. */
static bool
coord_config_prev_indent(
    const coord_config_ld *ld, const struct fy_mark *m, size_t *indent)
{
	const char *t = ld->text;
	size_t      p = m->input_pos;

	if (t == NULL || p == 0 || p > ld->textlen) {
		return (false);
	}
	p--;
	if (p > 0 && t[p] == '\n' && t[p - 1] == '\r') {
		p--;
	}
	while (p > 0 && t[p - 1] != '\n' && t[p - 1] != '\r') {
		p--;
	}
	for (*indent = 0; p + *indent < ld->textlen && t[p + *indent] == ' ';
	     (*indent)++) {
	}
	return (true);
}

/* Reports val, the value of the key key or (key NULL) an item of a list,
 * when it is a block scalar (| or >) whose text is not indented more than
 * the key, or than the item's line. YAML ends such a value at the first
 * line that is not, but libfyaml 0.7.12 takes the lines after an empty
 * block scalar as its text even when they are the mapping's next keys or
 * the list's next items: "compensation: |" followed by "timeout: 5s" in
 * the key's column gave the compensation "timeout: 5s" and no timeout,
 * and "- |" followed by "- cvv" a redact list without cvv; the file
 * loaded. Returns whether it is not such a value. */
static bool
coord_config_block_ok(coord_config_ld *ld, struct fy_node *key,
    struct fy_node *val, coord_config_pos fb)
{
	struct fy_token      *kt = NULL, *vt;
	const struct fy_mark *km = NULL;
	struct fy_mark        m;
	const char           *k  = "a list item";
	size_t                klen = strlen(k), rs, vs, ref;

	if (val == NULL || !fy_node_is_scalar(val) ||
	    (vt = fy_node_get_scalar_token(val)) == NULL ||
	    (fy_token_scalar_style(vt) != FYSS_LITERAL &&
	        fy_token_scalar_style(vt) != FYSS_FOLDED)) {
		return (true);
	}
	if (key != NULL &&
	    (!fy_node_is_scalar(key) ||
	        (kt = fy_node_get_scalar_token(key)) == NULL ||
	        (km = fy_token_start_mark(kt)) == NULL ||
	        (k = fy_token_get_text(kt, &klen)) == NULL)) {
		return (true);
	}
	if (fy_token_start_mark(vt) == NULL ||
	    (km == NULL &&
	        !coord_config_prev_indent(ld, fy_token_start_mark(vt), &ref)) ||
	    coord_config_block_line(ld, vt, &m, &rs, &vs) != 1) {
		return (true);
	}
	if (km != NULL) {
		ref = (size_t) km->column;
	}
	if (rs > ref) {
		return (true);
	}
	coord_config_err_at(ld, coord_config_block_pos(ld, vt, fb),
	    "%.*s: this line is not indented more than %s, so it is not "
	    "the text of its block scalar (| or >): indent the text, or "
	    "write an empty value as \"\"",
	    (int) coord_config_cut(k, klen, 40), k,
	    km != NULL ? "the key" : "the item's -");
	return (false);
}

/* Reports every node of the tree n that has a YAML tag (!!str, !!binary,
 * !custom): the loader reads values by their text and would drop the tag
 * without a word ("!!str null" read as null); and every block scalar
 * that libfyaml read past its end (coord_config_block_ok). Returns
 * whether it found no such block scalar: a tag leaves the tree readable
 * (its value is read by its text, the tag reported), but such a block
 * scalar holds keys or items of the file as its text (see
 * coord_config_block_ok), and reading the tree would report them again,
 * wrongly: as the value of that key ("defaults.timeout: expected a
 * duration ..., got \"max_in_flight: 3\x0a\"") or as missing. */
static bool
coord_config_tree_ok(coord_config_ld *ld, struct fy_node *n,
    coord_config_pos fb)
{
	struct fy_node_pair *pair;
	struct fy_node      *item;
	const char          *tag;
	void                *it = NULL;
	size_t               len;
	bool                 ok = true;

	if (n == NULL || fy_node_is_alias(n)) {
		return (true);
	}
	if ((tag = fy_node_get_tag(n, &len)) != NULL) {
		/* At the tag itself: a collection's own position is its
		 * first entry's. */
		struct fy_token *tt = fy_node_get_tag_token(n);

		coord_config_err_at(ld,
		    coord_config_mark_pos(ld,
		        tt != NULL ? fy_token_start_mark(tt) : NULL,
		        coord_config_node_pos(ld, n, fb)),
		    "a YAML tag (%.*s) is not supported: write the value "
		    "without it",
		    (int) coord_config_cut(tag, len, 40), tag);
	}
	switch (fy_node_get_type(n)) {
	case FYNT_MAPPING:
		while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
			ok &= coord_config_tree_ok(ld, fy_node_pair_key(pair),
			    fb);
			ok &= coord_config_tree_ok(ld,
			    fy_node_pair_value(pair), fb);
			ok &= coord_config_block_ok(ld, fy_node_pair_key(pair),
			    fy_node_pair_value(pair), fb);
		}
		break;
	case FYNT_SEQUENCE:
		while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
			ok &= coord_config_tree_ok(ld, item, fb);
			ok &= coord_config_block_ok(ld, NULL, item, fb);
		}
		break;
	default:
		break;
	}
	return (ok);
}

/* Loads one file into ld. */
static void
coord_config_file(coord_config_ld *ld, const char *path)
{
	coord_config_doc doc;
	coord_config_pos pos = { .file = ld->file };
	char            *buf;
	size_t           len;

	if ((buf = coord_config_read(path, &len)) == NULL) {
		if (errno == ENOMEM) {
			ld->nomem = true;
			return;
		}
		coord_config_err_at(
		    ld, pos, "cannot read: %s", strerror(errno));
		ld->unread = true;
		return;
	}
	/* Tags are reported and the file is still read, so that its other
	 * errors are reported too; not after a block scalar that swallowed
	 * the lines after it (coord_config_tree_ok). */
	if (coord_config_parse(ld, buf, len, false, &doc) &&
	    coord_config_tree_ok(ld,
	        doc.fyd ? fy_document_root(doc.fyd) : NULL, pos)) {
		coord_config_root(
		    ld, doc.fyd ? fy_document_root(doc.fyd) : NULL);
	} else {
		ld->unread = true;
	}
	coord_config_doc_fini(&doc);
	free(buf);
}

/* Checks that every step names a known participant. When a file was not
 * read whole, the error says that it may declare it: "unknown
 * participant" alone, next to a file's syntax error, sent the reader to
 * a declaration that is there. */
static void
coord_config_refs_check(coord_config_ld *ld)
{
	for (size_t i = 0; i < ld->nrefs; i++) {
		const char *name = ld->refs[i].name;
		size_t      j;

		for (j = 0; j < ld->nparts; j++) {
			if (strcmp(ld->parts[j]->name, name) == 0) {
				break;
			}
		}
		if (j == ld->nparts) {
			coord_config_err_at(ld, ld->refs[i].pos,
			    "participant: unknown participant \"%s\" (define "
			    "it under participants:%s)",
			    ld->refs[i].name,
			    ld->unread ? "; or a file that could not be "
			                 "read declares it"
			               : "");
		}
	}
}

/*
 * Canonical JSON.
 *
 * Written through proto_json's emitter, which gives back the leading and
 * trailing spaces of strings that libfyaml 0.7.12's emitter drops (issue
 * #109): without it, "charge " and "charge" had the same JSON (and hash),
 * and " " was stored as "", which coord_def_from_json refuses. For every
 * other string the bytes are what libfyaml writes with these flags, so
 * that the JSON (and the hash) of existing definitions did not change.
 */

/* The emitter of one definition and its first error. */
typedef struct coord_config_out {
	proto_json_emitter *j;
	int                 rv;
} coord_config_out;

/* Keeps the first error; false. */
static bool
coord_config_out_fail(coord_config_out *o, int rv)
{
	if (o->rv == 0) {
		o->rv = rv;
	}
	return (false);
}

/* Emits one structural event; false on failure (or an earlier one). */
static bool
coord_config_ev(coord_config_out *o, enum fy_event_type type, ...)
{
	struct fy_event *ev;
	va_list          ap;
	int              rv;

	if (o->rv != 0) {
		return (false);
	}
	va_start(ap, type);
	ev = fy_emit_event_vcreate(proto_json_emitter_fy(o->j), type, ap);
	va_end(ap);
	if ((rv = proto_json_emitter_event(o->j, ev)) != 0) {
		return (coord_config_out_fail(o, rv));
	}
	return (true);
}

/* A string (libfyaml escapes it, proto_json keeps its edge spaces), or
 * null for NULL. */
static bool
coord_config_ev_str(coord_config_out *o, const char *s)
{
	int rv;

	if (o->rv != 0) {
		return (false);
	}
	rv = s == NULL ? proto_json_emitter_plain(o->j, "null")
	               : proto_json_emitter_str(o->j, s, strlen(s));
	if (rv != 0) {
		return (coord_config_out_fail(o, rv));
	}
	return (true);
}

/* A number, written by the caller. */
static bool
coord_config_ev_num(coord_config_out *o, const char *s)
{
	int rv;

	if (o->rv != 0) {
		return (false);
	}
	if ((rv = proto_json_emitter_plain(o->j, s)) != 0) {
		return (coord_config_out_fail(o, rv));
	}
	return (true);
}

static bool
coord_config_ev_kv(coord_config_out *o, const char *k, const char *v)
{
	return (coord_config_ev_str(o, k) && coord_config_ev_str(o, v));
}

/* A duration: "<n>ms". */
static bool
coord_config_ev_dur(coord_config_out *o, const char *k, int64_t ms)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lldms", (long long) ms);
	return (coord_config_ev_kv(o, k, buf));
}

/* A double in the shortest form that reads back to the same value;
 * integral values without a fraction ("2"). */
static void
coord_config_fmt_double(double v, char *buf, size_t len)
{
	/* (No libm: the cast tests integrality within the range.) */
	if (v > -1e15 && v < 1e15 && v == (double) (long long) v) {
		snprintf(buf, len, "%lld", (long long) v);
		return;
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(buf, len, "%.*g", p, v);
		if (strtod(buf, NULL) == v) {
			return;
		}
	}
}

static bool
coord_config_ev_retry(coord_config_out *o, const char *k, const saga_retry *r)
{
	char buf[64];
	bool ok;

	ok = coord_config_ev_str(o, k) &&
	    coord_config_ev(o, FYET_MAPPING_START, FYNS_ANY, NULL, NULL);
	snprintf(buf, sizeof(buf), "%u", (unsigned) r->max_attempts);
	ok = ok && coord_config_ev_str(o, "max_attempts") &&
	    coord_config_ev_num(o, buf);
	ok = ok && coord_config_ev_dur(o, "initial_backoff",
	               r->initial_backoff_ms);
	coord_config_fmt_double(r->multiplier, buf, sizeof(buf));
	ok = ok && coord_config_ev_str(o, "multiplier") &&
	    coord_config_ev_num(o, buf);
	ok = ok && coord_config_ev_dur(o, "max_backoff", r->max_backoff_ms);
	coord_config_fmt_double(r->jitter, buf, sizeof(buf));
	ok = ok && coord_config_ev_str(o, "jitter") &&
	    coord_config_ev_num(o, buf);
	return (ok && coord_config_ev(o, FYET_MAPPING_END));
}

/* Sets d->json to the canonical JSON of d. Returns 0, SAGA_ENOMEM, or
 * SAGA_EINTERNAL if proto_json's emitter refuses its own output (a bug:
 * the definition is not loaded rather than stored with altered
 * strings). */
static int
coord_config_json(saga_def *d)
{
	coord_config_out o = { NULL, 0 };
	bool             ok;
	char            *out = NULL;

	/* The flags (and the default width) of the first release: they
	 * are part of the bytes. */
	if ((o.rv = proto_json_emitter_alloc(&o.j,
	         FYECF_MODE_JSON_ONELINE | FYECF_NO_ENDING_NEWLINE)) != 0) {
		return (o.rv);
	}
	ok = coord_config_ev(&o, FYET_MAPPING_START, FYNS_ANY, NULL, NULL) &&
	    coord_config_ev_kv(&o, "name", d->name);
	if (d->deadline_ms > 0) {
		ok = ok && coord_config_ev_dur(&o, "deadline", d->deadline_ms);
	} else {
		ok = ok && coord_config_ev_kv(&o, "deadline", NULL);
	}
	ok = ok && coord_config_ev_kv(&o, "business_key", d->business_key);
	/* Only when there is one: a definition without redact keeps the
	 * bytes (and the hash) it had before the key existed. */
	if (d->nredact > 0) {
		ok = ok && coord_config_ev_str(&o, "redact") &&
		    coord_config_ev(
		        &o, FYET_SEQUENCE_START, FYNS_ANY, NULL, NULL);
		for (size_t i = 0; ok && i < d->nredact; i++) {
			ok = coord_config_ev_str(&o, d->redact[i]);
		}
		ok = ok && coord_config_ev(&o, FYET_SEQUENCE_END);
	}
	ok = ok && coord_config_ev_str(&o, "steps") &&
	    coord_config_ev(&o, FYET_SEQUENCE_START, FYNS_ANY, NULL, NULL);
	for (size_t i = 0; ok && i < d->nsteps; i++) {
		const saga_step_def *s = &d->steps[i];

		ok = coord_config_ev(&o, FYET_MAPPING_START, FYNS_ANY, NULL,
		         NULL) &&
		    coord_config_ev_kv(&o, "name", s->name) &&
		    coord_config_ev_kv(&o, "participant", s->participant) &&
		    coord_config_ev_kv(&o, "action", s->action) &&
		    coord_config_ev_kv(&o, "compensation", s->compensation) &&
		    coord_config_ev_kv(
		        &o, "kind", saga_step_kind_name(s->kind)) &&
		    coord_config_ev_dur(&o, "timeout", s->timeout_ms) &&
		    coord_config_ev_retry(&o, "retry", &s->retry) &&
		    coord_config_ev_retry(
		        &o, "compensation_retry", &s->comp_retry) &&
		    coord_config_ev_dur(
		        &o, "compensation_timeout", s->comp_budget_ms) &&
		    coord_config_ev(&o, FYET_MAPPING_END);
	}
	ok = ok && coord_config_ev(&o, FYET_SEQUENCE_END) &&
	    coord_config_ev(&o, FYET_MAPPING_END);
	if (ok) {
		o.rv = proto_json_emitter_collect(o.j, &out, NULL);
	} else if (o.rv == 0) {
		o.rv = SAGA_EINTERNAL; /* a helper failed without a code */
	}
	proto_json_emitter_free(o.j);
	if (o.rv != 0) {
		return (o.rv);
	}
	free(d->json);
	d->json = out;
	return (0);
}

/*
 * The API.
 */

int
coord_defs_load(const char *const *files, size_t nfiles, coord_defs **out,
    coord_errs *errs)
{
	coord_config_ld ld;
	coord_defs     *d = NULL;
	int             rv;

	memset(&ld, 0, sizeof(ld));
	if (nfiles > 0 &&
	    (ld.files = calloc(nfiles, sizeof(*ld.files))) == NULL) {
		return (SAGA_ENOMEM);
	}
	for (size_t i = 0; i < nfiles; i++) {
		if ((ld.files[i] = strdup(files[i])) == NULL) {
			ld.nfiles = i;
			coord_config_ld_fini(&ld);
			return (SAGA_ENOMEM);
		}
	}
	ld.nfiles = nfiles;
	for (size_t i = 0; i < nfiles && !ld.nomem; i++) {
		ld.file = (int) i;
		coord_config_file(&ld, files[i]);
	}
	if (!ld.nomem) {
		coord_config_refs_check(&ld);
	}
	if (ld.nomem) {
		rv = SAGA_ENOMEM;
		goto fail;
	}
	if (ld.nerrs > 0) {
		rv = SAGA_ECONFIG;
		goto fail;
	}
	for (size_t i = 0; i < ld.nsagas; i++) {
		if ((rv = coord_config_json(ld.sagas[i])) != 0) {
			goto fail;
		}
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		rv = SAGA_ENOMEM;
		goto fail;
	}
	d->sagas         = ld.sagas;
	d->nsagas        = ld.nsagas;
	d->participants  = ld.parts;
	d->nparticipants = ld.nparts;
	d->files         = ld.files;
	d->nfiles        = ld.nfiles;
	ld.sagas         = NULL;
	ld.nsagas        = 0;
	ld.parts         = NULL;
	ld.nparts        = 0;
	ld.files         = NULL;
	ld.nfiles        = 0;
	coord_config_ld_fini(&ld);
	*out = d;
	return (0);

fail:
	coord_config_errs_flush(&ld, errs);
	coord_config_ld_fini(&ld);
	return (ld.nomem ? SAGA_ENOMEM : rv);
}

void
coord_defs_free(coord_defs *d)
{
	if (d == NULL) {
		return;
	}
	for (size_t i = 0; i < d->nsagas; i++) {
		saga_def_free(d->sagas[i]);
	}
	free(d->sagas);
	for (size_t i = 0; i < d->nparticipants; i++) {
		saga_participant_def_free(d->participants[i]);
	}
	free(d->participants);
	for (size_t i = 0; i < d->nfiles; i++) {
		free(d->files[i]);
	}
	free(d->files);
	free(d);
}

void
coord_errs_fini(coord_errs *e)
{
	if (e == NULL) {
		return;
	}
	for (size_t i = 0; i < e->n; i++) {
		free(e->msgs[i]);
	}
	free(e->msgs);
	e->msgs = NULL;
	e->n    = 0;
}

const saga_def *
coord_defs_find(const coord_defs *d, const char *name)
{
	for (size_t i = 0; d != NULL && i < d->nsagas; i++) {
		if (strcmp(d->sagas[i]->name, name) == 0) {
			return (d->sagas[i]);
		}
	}
	return (NULL);
}

const saga_participant_def *
coord_defs_participant(const coord_defs *d, const char *name)
{
	for (size_t i = 0; d != NULL && i < d->nparticipants; i++) {
		if (strcmp(d->participants[i]->name, name) == 0) {
			return (d->participants[i]);
		}
	}
	return (NULL);
}

int
coord_def_from_json(const char *json, saga_def **out, char *err, size_t errlen)
{
	coord_config_ld  ld;
	coord_config_doc doc;
	saga_def        *d = NULL;
	int              rv;

	memset(&ld, 0, sizeof(ld));
	ld.strict              = true;
	ld.dflt.timeout_ms     = COORD_CONFIG_TIMEOUT_MS;
	ld.dflt.retry          = coord_config_retry_builtin;
	ld.dflt.comp_retry     = coord_config_comp_retry_builtin;
	ld.dflt.comp_budget_ms = COORD_CONFIG_COMP_BUDGET_MS;
	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	if ((ld.files = calloc(1, sizeof(*ld.files))) == NULL ||
	    (ld.files[0] = strdup("json")) == NULL) {
		free(ld.files);
		return (SAGA_ENOMEM);
	}
	ld.nfiles = 1;
	if (coord_config_parse(&ld, json, strlen(json), true, &doc)) {
		coord_config_pos   top = { .file = 0, .line = 1, .col = 1 };
		struct fy_node    *root;
		coord_config_field rf;

		root = doc.fyd ? fy_document_root(doc.fyd) : NULL;
		rf   = coord_config_item(&ld, root, top);
		if (coord_config_want(&ld, &rf, FYNT_MAPPING, "saga",
		        "a mapping")) {
			coord_config_saga(&ld, root, top);
		}
	}
	coord_config_doc_fini(&doc);
	if (ld.nomem) {
		rv = SAGA_ENOMEM;
		goto fail;
	}
	if (ld.nerrs > 0 || ld.nsagas != 1) {
		rv = SAGA_ECONFIG;
		goto fail;
	}
	d = ld.sagas[0];
	if ((rv = coord_config_json(d)) != 0) {
		goto fail;
	}
	ld.nsagas = 0;
	coord_config_ld_fini(&ld);
	*out = d;
	return (0);

fail:
	if (ld.nerrs > 0) {
		qsort(ld.errs, ld.nerrs, sizeof(*ld.errs),
		    coord_config_err_cmp);
	}
	if (err != NULL && errlen > 0) {
		snprintf(err, errlen, "%s",
		    ld.nerrs > 0            ? ld.errs[0].msg
		        : rv == SAGA_ECONFIG ? "json: not a saga"
		                             : saga_strerror(rv));
	}
	coord_config_ld_fini(&ld);
	return (rv);
}

/* The milliseconds of a duration unit, or 0. */
static int64_t
coord_config_unit_ms(const char *u)
{
	static const struct {
		const char *name;
		int64_t     ms;
	} units[] = {
		{ "ms", 1 },
		{ "s", 1000 },
		{ "m", 60 * 1000 },
		{ "h", 3600 * 1000 },
		{ "d", 24 * 3600 * 1000 },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(u, units[i].name) == 0) {
			return (units[i].ms);
		}
	}
	return (0);
}

int
coord_duration_parse(const char *s, int64_t *ms)
{
	int64_t ip = 0;
	int64_t fp = 0;
	int64_t scale = 1;
	int64_t unit;
	size_t  n;
	size_t  fn;

	/* Integer part: digits, exactly computed. */
	if (s == NULL || (n = strspn(s, "0123456789")) == 0) {
		return (SAGA_EINVAL);
	}
	for (size_t i = 0; i < n; i++) {
		int64_t digit = s[i] - '0';

		if (ip > (INT64_MAX - digit) / 10) {
			return (SAGA_ERANGE);
		}
		ip = ip * 10 + digit;
	}
	s += n;
	/* Fraction: at most 9 digits once trailing zeros are dropped. */
	if (*s == '.') {
		s++;
		if ((fn = strspn(s, "0123456789")) == 0) {
			return (SAGA_EINVAL);
		}
		n = fn;
		while (n > 0 && s[n - 1] == '0') {
			n--;
		}
		if (n > 9) {
			return (SAGA_EINVAL);
		}
		for (size_t i = 0; i < n; i++) {
			fp = fp * 10 + (s[i] - '0');
			scale *= 10;
		}
		s += fn;
	}
	if ((unit = coord_config_unit_ms(s)) == 0) {
		return (SAGA_EINVAL);
	}
	/* A whole number of milliseconds, without overflow (fp * unit is
	 * below 10^9 * 86400000). */
	if ((fp * unit) % scale != 0) {
		return (SAGA_EINVAL);
	}
	if (ip > INT64_MAX / unit ||
	    ip * unit > INT64_MAX - (fp * unit) / scale) {
		return (SAGA_ERANGE);
	}
	*ms = ip * unit + (fp * unit) / scale;
	return (0);
}
