/* SPDX-License-Identifier: MIT */
/*
 * proto_json: JSON text <-> protocol values, through libfyaml. See
 * proto_json.h.
 *
 * JSON -> raw: libfyaml builds a document in forced JSON mode (so it
 * refuses YAML-only syntax: plain or single-quoted keys, anchors, tags,
 * several documents, NaN, ...), then a walk of the tree packs msgpack.
 * Plain scalars are null, true, false or numbers; quoted scalars are
 * strings, so "123" stays a string. Every refusal, whether from libfyaml
 * (syntax) or from the walk (limits), is SAGA_EINVAL with a message
 * "line:column: what" (1-based), the walk reporting through the same
 * libfyaml diagnostic object (fy_node_report) so that containers get a
 * position too. Limits are the caller's proto_limits, checked with a
 * position during the walk and once more on the final bytes by
 * proto_raw_validate (total size). Input over a limit is SAGA_EINVAL, not
 * SAGA_ESTRLEN/SAGA_EDEPTH/SAGA_ETOOBIG: the caller gets a JSON position
 * rather than a msgpack byte offset. libfyaml itself refuses nesting
 * deeper than 64 whatever max_depth says.
 *
 * raw -> JSON: the value is validated, decoded into a proto_doc and
 * replayed as libfyaml emitter events in JSON mode: strings as
 * double-quoted scalars (libfyaml does the escaping), numbers, booleans
 * and null as plain scalars. Floats print with the fewest digits that
 * read back to the same double, and always with a '.' or an exponent so
 * that they parse back as floats (2.0, not 2); NaN and infinities, which
 * JSON cannot carry, become null. A string that is not valid UTF-8 cannot
 * be written as JSON either: the conversion fails with SAGA_EINVAL.
 *
 * DESIGN: libfyaml 0.7.12's event emitter has two bugs that would make
 * the output wrong, both worked around in the output callback, where
 * libfyaml hands over its output chunk by chunk, each with its kind:
 *  - it drops the leading and trailing spaces of a scalar that it judges
 *    "plain-able" (" x " is written "x"), in every mode and style (fixed
 *    upstream after 0.7.12, libfyaml issue #109). Spaces never need
 *    escaping in JSON, so each string goes to the emitter without its
 *    leading and trailing spaces, and the callback writes them back just
 *    inside the quotes of the same scalar: double-quoted scalars come out
 *    in the order of their events, and inside one the only unescaped '"'
 *    is the closing quote;
 *  - a key holding a line break comes out in YAML's explicit-key form,
 *    {? "a\nb" : 1}, even in JSON mode. JSON has no '?' token, so the
 *    callback drops that indicator and the white space up to the ':'.
 * A test round-trips random strings built from the characters that
 * matter to JSON, YAML and the emitter, as values and as keys, to catch
 * any other such case. The emitter with its fix-ups is an API of its own
 * (proto_json_emitter) so that every JSON text written through libfyaml's
 * events gets them: coord_config's canonical JSON of saga definitions
 * uses it too, with its own flags.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfyaml.h>

#include "proto_internal.h"
#include "proto_json.h"
#include "saga_err.h"

/* Room for one refusal message of the walk. */
#define PROTO_JSON_MSG_LEN 200

/* Formats a message into errbuf (errlen bytes), if there is one. */
static void
proto_json_errf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
proto_json_errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf == NULL || errlen == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

/* Returns the first error collected by diag, or NULL. */
static const struct fy_diag_error *
proto_json_diag_first(struct fy_diag *diag)
{
	struct fy_diag_error *e;
	void                 *iter = NULL;

	while ((e = fy_diag_errors_iterate(diag, &iter)) != NULL) {
		if (e->type == FYET_ERROR) {
			return (e);
		}
	}
	return (NULL);
}

/*
 * JSON -> raw.
 */

typedef struct proto_json_in {
	const proto_limits *lim;
	size_t              max_depth;
	msgpack_packer      pk;
	char msg[PROTO_JSON_MSG_LEN]; /* last refusal, if libfyaml lost it */
} proto_json_in;

/* Refuses the input at node n: reports msg on n (libfyaml adds the
 * position) and keeps a copy in case the report could not be collected. */
static int
proto_json_in_fail(proto_json_in *in, struct fy_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
proto_json_in_fail(proto_json_in *in, struct fy_node *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(in->msg, sizeof(in->msg), fmt, ap);
	va_end(ap);
	if (n != NULL) {
		fy_node_report(n, FYET_ERROR, "%s", in->msg);
	}
	return (SAGA_EINVAL);
}

/* Packs a string (a quoted scalar or a key) after checking its length. */
static int
proto_json_in_str(
    proto_json_in *in, struct fy_node *n, const char *s, size_t len)
{
	if (len > in->lim->max_str_bytes) {
		return (proto_json_in_fail(in, n,
		    "string of %zu bytes exceeds the limit of %zu bytes", len,
		    in->lim->max_str_bytes));
	}
	if (msgpack_pack_str(&in->pk, len) != 0 ||
	    msgpack_pack_str_body(&in->pk, s, len) != 0) {
		return (SAGA_ENOMEM);
	}
	return (0);
}

/*
 * Packs a plain scalar that is not null, true or false: a JSON number.
 * libfyaml's JSON mode has already refused other plain scalars; the checks
 * here keep strtod from accepting what JSON does not (hex, inf, nan,
 * leading '+' or '.').
 */
static int
proto_json_in_number(
    proto_json_in *in, struct fy_node *n, const char *s, size_t len)
{
	const char *digits = "0123456789";
	int         shown  = (int) (len < 40 ? len : 40);
	char       *t;
	char       *end;
	bool        integer;
	int         rv;

	/* s is not NUL-terminated: work on a copy. */
	if ((t = malloc(len + 1)) == NULL) {
		return (SAGA_ENOMEM);
	}
	memcpy(t, s, len);
	t[len] = '\0';
	if (len == 0 || strspn(t, "0123456789+-.eE") != len ||
	    (t[0] != '-' && strchr(digits, t[0]) == NULL)) {
		rv = proto_json_in_fail(in, n,
		    "invalid JSON value \"%.*s\" (expected a number, a "
		    "string, true, false or null)",
		    shown, s);
		goto done;
	}
	integer = t[0] == '-' ? len > 1 && strspn(t + 1, digits) == len - 1
	                      : strspn(t, digits) == len;
	if (integer) {
		long long          i;
		unsigned long long u;

		errno = 0;
		i     = strtoll(t, &end, 10);
		if (errno == 0 && *end == '\0') {
			rv = msgpack_pack_int64(&in->pk, i) != 0 ? SAGA_ENOMEM
			                                         : 0;
			goto done;
		}
		if (t[0] != '-') {
			errno = 0;
			u     = strtoull(t, &end, 10);
			if (errno == 0 && *end == '\0') {
				rv = msgpack_pack_uint64(&in->pk, u) != 0
				    ? SAGA_ENOMEM
				    : 0;
				goto done;
			}
		}
		/* Beyond 64 bits: a float, like any other number. */
	}
	{
		double d = strtod(t, &end);

		if (end != t + len) {
			rv = proto_json_in_fail(in, n,
			    "invalid JSON number \"%.*s\"", shown, s);
		} else if (!isfinite(d)) {
			rv = proto_json_in_fail(in, n,
			    "number \"%.*s\" is out of range for a 64-bit "
			    "float",
			    shown, s);
		} else {
			rv = msgpack_pack_double(&in->pk, d) != 0 ? SAGA_ENOMEM
			                                          : 0;
		}
	}
done:
	free(t);
	return (rv);
}

static int
proto_json_in_scalar(proto_json_in *in, struct fy_node *n)
{
	const char *s;
	size_t      len = 0;

	if ((s = fy_node_get_scalar(n, &len)) == NULL) {
		return (SAGA_ENOMEM);
	}
	if (fy_node_get_style(n) != FYNS_PLAIN) {
		return (proto_json_in_str(in, n, s, len));
	}
	if (len == 4 && memcmp(s, "null", 4) == 0) {
		return (msgpack_pack_nil(&in->pk) != 0 ? SAGA_ENOMEM : 0);
	}
	if (len == 4 && memcmp(s, "true", 4) == 0) {
		return (msgpack_pack_true(&in->pk) != 0 ? SAGA_ENOMEM : 0);
	}
	if (len == 5 && memcmp(s, "false", 5) == 0) {
		return (msgpack_pack_false(&in->pk) != 0 ? SAGA_ENOMEM : 0);
	}
	return (proto_json_in_number(in, n, s, len));
}

/* Checks a container's depth and size before it is packed. */
static int
proto_json_in_container(proto_json_in *in, struct fy_node *n, size_t depth,
    int count, const char *what)
{
	if (depth + 1 > in->max_depth) {
		return (proto_json_in_fail(in, n,
		    "nesting deeper than the limit of %zu", in->max_depth));
	}
	if (count < 0) {
		return (proto_json_in_fail(in, n, "cannot count elements"));
	}
	if ((size_t) count > in->lim->max_container_len) {
		return (proto_json_in_fail(in, n,
		    "%s of %d elements exceeds the limit of %zu", what, count,
		    in->lim->max_container_len));
	}
	return (0);
}

/* Packs node n, at nesting level depth (0 for the root). Recursion is
 * bounded by max_depth (and by libfyaml's own limit of 64). */
static int
proto_json_in_node(proto_json_in *in, struct fy_node *n, size_t depth)
{
	struct fy_node      *item;
	struct fy_node_pair *pair;
	void                *iter = NULL;
	int                  count;
	int                  rv;

	if (fy_node_is_alias(n)) {
		/* JSON mode refuses anchors; never trust it blindly. */
		return (proto_json_in_fail(in, n, "aliases are not JSON"));
	}
	switch (fy_node_get_type(n)) {
	case FYNT_SCALAR:
		return (proto_json_in_scalar(in, n));

	case FYNT_SEQUENCE:
		count = fy_node_sequence_item_count(n);
		if ((rv = proto_json_in_container(
		         in, n, depth, count, "array")) != 0) {
			return (rv);
		}
		if (msgpack_pack_array(&in->pk, (size_t) count) != 0) {
			return (SAGA_ENOMEM);
		}
		while ((item = fy_node_sequence_iterate(n, &iter)) != NULL) {
			if ((rv = proto_json_in_node(in, item, depth + 1)) !=
			    0) {
				return (rv);
			}
		}
		return (0);

	case FYNT_MAPPING:
		count = fy_node_mapping_item_count(n);
		if ((rv = proto_json_in_container(
		         in, n, depth, count, "object")) != 0) {
			return (rv);
		}
		if (msgpack_pack_map(&in->pk, (size_t) count) != 0) {
			return (SAGA_ENOMEM);
		}
		while ((pair = fy_node_mapping_iterate(n, &iter)) != NULL) {
			struct fy_node *k = fy_node_pair_key(pair);
			struct fy_node *v = fy_node_pair_value(pair);
			const char     *ks;
			size_t          klen = 0;

			/* A key must be a quoted scalar; a value must
			 * exist. JSON mode ensures both already. */
			if (k == NULL || fy_node_get_type(k) != FYNT_SCALAR ||
			    fy_node_get_style(k) == FYNS_PLAIN) {
				return (proto_json_in_fail(in,
				    k != NULL ? k : n,
				    "object key must be a string"));
			}
			if (v == NULL) {
				return (proto_json_in_fail(
				    in, k, "object member has no value"));
			}
			if ((ks = fy_node_get_scalar(k, &klen)) == NULL) {
				return (SAGA_ENOMEM);
			}
			if ((rv = proto_json_in_str(in, k, ks, klen)) != 0 ||
			    (rv = proto_json_in_node(in, v, depth + 1)) !=
			        0) {
				return (rv);
			}
		}
		return (0);

	default:
		return (proto_json_in_fail(in, n, "unknown node type"));
	}
}

int
proto_json_to_raw(const char *text, size_t len, const proto_limits *lim,
    proto_buf *out, char *errbuf, size_t errlen)
{
	proto_limits                defl = proto_limits_default();
	struct fy_diag_cfg          dcfg;
	struct fy_parse_cfg         pcfg;
	struct fy_diag             *diag = NULL;
	struct fy_document         *fyd  = NULL;
	struct fy_node             *root;
	const struct fy_diag_error *e;
	proto_json_in               in;
	proto_error                 perr;
	proto_raw                   raw;
	size_t                      mark = out->len;
	int                         rv;

	if (lim == NULL) {
		lim = &defl;
	}
	memset(&in, 0, sizeof(in));
	in.lim       = lim;
	in.max_depth = lim->max_depth < PROTO_MAX_DEPTH_CAP
	    ? lim->max_depth
	    : PROTO_MAX_DEPTH_CAP;
	if (text == NULL) {
		/* Only an empty input may come without a pointer. */
		if (len != 0) {
			proto_json_errf(errbuf, errlen, "1:1: no input text");
			return (SAGA_EINVAL);
		}
		text = "";
	}

	/* Collect diagnostics instead of printing them, and never print:
	 * no stream, no colour. */
	fy_diag_cfg_default(&dcfg);
	dcfg.fp       = NULL;
	dcfg.colorize = false;
	if ((diag = fy_diag_create(&dcfg)) == NULL) {
		proto_json_errf(errbuf, errlen, "out of memory");
		return (SAGA_ENOMEM);
	}
	fy_diag_set_collect_errors(diag, true);
	memset(&pcfg, 0, sizeof(pcfg));
	pcfg.flags = FYPCF_JSON_FORCE | FYPCF_QUIET;
	pcfg.diag  = diag;

	/* A syntax error gives no document, or (a second document) a
	 * document and a collected error. */
	fyd = fy_document_build_from_string(&pcfg, text, len);
	if (fyd == NULL || proto_json_diag_first(diag) != NULL) {
		snprintf(in.msg, sizeof(in.msg), "invalid JSON");
		rv = SAGA_EINVAL;
		goto fail;
	}
	if ((root = fy_document_root(fyd)) == NULL) {
		snprintf(in.msg, sizeof(in.msg), "no JSON value in the input");
		rv = SAGA_EINVAL;
		goto fail;
	}
	msgpack_packer_init(&in.pk, out, proto_buf_write_cb);
	if ((rv = proto_json_in_node(&in, root, 0)) != 0) {
		goto fail;
	}

	/* The limits that need the bytes (the total size) and a last check
	 * that what was packed is one valid value. */
	raw.ptr = out->data + mark;
	raw.len = out->len - mark;
	if (proto_raw_validate(raw, lim, &perr) != 0) {
		snprintf(in.msg, sizeof(in.msg), "%s", perr.msg);
		rv = SAGA_EINVAL;
		goto fail;
	}
	fy_document_destroy(fyd);
	fy_diag_destroy(diag);
	return (0);

fail:
	out->len = mark;
	if (rv == SAGA_ENOMEM) {
		proto_json_errf(errbuf, errlen, "out of memory");
	} else if ((e = proto_json_diag_first(diag)) != NULL &&
	    e->line > 0 && e->column > 0) {
		/* libfyaml's positions in collected errors are 1-based. */
		proto_json_errf(errbuf, errlen, "%d:%d: %s", e->line,
		    e->column, e->msg);
	} else {
		proto_json_errf(errbuf, errlen, "1:1: %s", in.msg);
	}
	fy_document_destroy(fyd);
	fy_diag_destroy(diag); /* not fy_diag_unref: it frees the errors */
	return (rv);
}

/*
 * raw -> JSON.
 */

/* The spaces taken off string number nth (0-based, in event order). */
typedef struct proto_json_pad {
	size_t nth;
	size_t lead;
	size_t trail;
} proto_json_pad;

struct proto_json_emitter {
	struct fy_emitter *emit;
	proto_buf          text;   /* what the emitter wrote, fixed up */
	proto_json_pad    *pads;   /* strings that lost spaces, in order */
	size_t             npads;  /* entries used */
	size_t             capads; /* entries allocated */
	size_t             nstr;   /* strings handed to the emitter */
	size_t             nout;   /* strings written out */
	size_t             next;   /* next pad to write back */
	size_t             trail;  /* spaces owed before the closing quote */
	bool               inside; /* inside a double-quoted scalar */
	bool               qkey;   /* between a '?' and its ':' */
	bool               escape; /* after a backslash, inside one */
	bool               nomem;  /* the output callback ran out */
};

/* Appends n spaces to the output. */
static int
proto_json_emitter_spaces(proto_json_emitter *o, size_t n)
{
	static const char spaces[] = "                                ";

	while (n > 0) {
		size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;

		if (proto_buf_append(&o->text, spaces, k) != 0) {
			return (SAGA_ENOMEM);
		}
		n -= k;
	}
	return (0);
}

/*
 * Emitter output callback: appends what libfyaml writes to o->text, puts
 * back, inside the quotes of each double-quoted scalar, the spaces that
 * proto_json_emitter_str took off, and turns explicit keys back into JSON
 * (see DESIGN above). Returns len, or -1
 * when memory ran out (remembered in o->nomem).
 */
static int
proto_json_emitter_out_cb(struct fy_emitter *emit,
    enum fy_emitter_write_type type, const char *str, int len,
    void *userdata)
{
	proto_json_emitter *o     = userdata;
	size_t              n     = len > 0 ? (size_t) len : 0;
	size_t              start = 0;
	int                 rv    = 0;

	(void) emit;
	if (type == fyewt_terminating_zero) {
		return (len);
	}
	if (type == fyewt_indicator && n == 1 && str[0] == '?') {
		/* Explicit key: drop the '?', then the space up to ':'. */
		o->qkey = true;
		return (len);
	}
	if (o->qkey && (type == fyewt_whitespace || type == fyewt_indent ||
	                   type == fyewt_linebreak)) {
		return (len);
	}
	if (o->qkey && type == fyewt_indicator) {
		o->qkey = false;
	}
	if (type == fyewt_double_quoted_scalar ||
	    type == fyewt_double_quoted_scalar_key) {
		for (size_t i = 0; i < n && rv == 0; i++) {
			if (!o->inside) {
				if (str[i] != '"') {
					continue;
				}
				/* Opening quote: write it, then the lead. */
				o->inside = true;
				o->escape = false;
				o->trail  = 0;
				rv = proto_buf_append(&o->text, str + start,
				    i + 1 - start);
				start = i + 1;
				if (rv == 0 && o->next < o->npads &&
				    o->pads[o->next].nth == o->nout) {
					rv = proto_json_emitter_spaces(
					    o, o->pads[o->next].lead);
					o->trail = o->pads[o->next].trail;
					o->next++;
				}
			} else if (o->escape) {
				o->escape = false;
			} else if (str[i] == '\\') {
				o->escape = true;
			} else if (str[i] == '"') {
				/* Closing quote: the trail goes before it. */
				o->inside = false;
				o->nout++;
				rv = proto_buf_append(
				    &o->text, str + start, i - start);
				start = i;
				if (rv == 0) {
					rv = proto_json_emitter_spaces(
					    o, o->trail);
				}
			}
		}
	}
	if (rv == 0) {
		rv = proto_buf_append(&o->text, str + start, n - start);
	}
	if (rv != 0) {
		o->nomem = true;
		return (-1);
	}
	return (len);
}

int
proto_json_emitter_event(proto_json_emitter *o, struct fy_event *ev)
{
	if (ev == NULL) {
		return (SAGA_ENOMEM);
	}
	if (fy_emit_event(o->emit, ev) != 0) {
		/* Either our callback ran out of memory or the event
		 * sequence is wrong, which would be a bug of the caller. */
		return (o->nomem ? SAGA_ENOMEM : SAGA_EINTERNAL);
	}
	return (0);
}

int
proto_json_emitter_alloc(proto_json_emitter **out, unsigned fy_flags)
{
	struct fy_emitter_cfg ecfg;
	proto_json_emitter   *o;
	int                   rv;

	if ((o = calloc(1, sizeof(*o))) == NULL) {
		return (SAGA_ENOMEM);
	}
	proto_buf_init(&o->text);
	memset(&ecfg, 0, sizeof(ecfg));
	ecfg.flags    = (enum fy_emitter_cfg_flags) fy_flags;
	ecfg.output   = proto_json_emitter_out_cb;
	ecfg.userdata = o;
	if ((o->emit = fy_emitter_create(&ecfg)) == NULL) {
		proto_json_emitter_free(o);
		return (SAGA_ENOMEM);
	}
	if ((rv = proto_json_emitter_event(o,
	         fy_emit_event_create(o->emit, FYET_STREAM_START))) != 0 ||
	    (rv = proto_json_emitter_event(o,
	         fy_emit_event_create(o->emit, FYET_DOCUMENT_START, 1,
	             (const struct fy_version *) NULL,
	             (const struct fy_tag *const *) NULL))) != 0) {
		proto_json_emitter_free(o);
		return (rv);
	}
	*out = o;
	return (0);
}

struct fy_emitter *
proto_json_emitter_fy(proto_json_emitter *o)
{
	return (o->emit);
}

int
proto_json_emitter_plain(proto_json_emitter *o, const char *s)
{
	return (proto_json_emitter_event(o,
	    fy_emit_event_create(o->emit, FYET_SCALAR, FYSS_PLAIN, s,
	        strlen(s), (const char *) NULL, (const char *) NULL)));
}

int
proto_json_emitter_str(proto_json_emitter *o, const char *s, size_t len)
{
	const char *p     = len > 0 ? s : "";
	size_t      lead  = 0;
	size_t      trail = 0;

	/* libfyaml would write the bytes of a malformed sequence as \xNN
	 * escapes, which are not JSON. */
	if (!proto_utf8_valid((const uint8_t *) p, len)) {
		return (SAGA_EINVAL);
	}
	while (lead < len && p[lead] == ' ') {
		lead++;
	}
	while (trail < len - lead && p[len - 1 - trail] == ' ') {
		trail++;
	}
	if (lead + trail > 0) {
		if (o->npads == o->capads) {
			size_t          cap = o->capads ? o->capads * 2 : 8;
			proto_json_pad *np;

			if ((np = realloc(o->pads, cap * sizeof(*np))) ==
			    NULL) {
				return (SAGA_ENOMEM);
			}
			o->pads   = np;
			o->capads = cap;
		}
		o->pads[o->npads].nth   = o->nstr;
		o->pads[o->npads].lead  = lead;
		o->pads[o->npads].trail = trail;
		o->npads++;
	}
	o->nstr++;
	return (proto_json_emitter_event(o,
	    fy_emit_event_create(o->emit, FYET_SCALAR, FYSS_DOUBLE_QUOTED,
	        p + lead, len - lead - trail, (const char *) NULL,
	        (const char *) NULL)));
}

int
proto_json_emitter_collect(proto_json_emitter *o, char **out, size_t *lenp)
{
	int rv;

	if ((rv = proto_json_emitter_event(o,
	         fy_emit_event_create(o->emit, FYET_DOCUMENT_END, 1))) != 0 ||
	    (rv = proto_json_emitter_event(o,
	         fy_emit_event_create(o->emit, FYET_STREAM_END))) != 0) {
		return (rv);
	}
	if (o->nomem) {
		return (SAGA_ENOMEM);
	}
	if (o->inside || o->qkey || o->nout != o->nstr ||
	    o->next != o->npads) {
		/* libfyaml wrote strings differently than the fix-ups
		 * expect: refuse rather than print altered strings. */
		return (SAGA_EINTERNAL);
	}
	/* No trailing newline (libfyaml ends the document with one, in
	 * some versions even when asked not to). */
	while (o->text.len > 0 && o->text.data[o->text.len - 1] == '\n') {
		o->text.len--;
	}
	if (proto_buf_append(&o->text, "", 1) != 0) {
		return (SAGA_ENOMEM);
	}
	if (lenp != NULL) {
		*lenp = o->text.len - 1;
	}
	*out         = (char *) o->text.data;
	o->text.data = NULL;
	o->text.len  = 0;
	return (0);
}

void
proto_json_emitter_free(proto_json_emitter *o)
{
	if (o == NULL) {
		return;
	}
	fy_emitter_destroy(o->emit);
	free(o->pads);
	proto_buf_fini(&o->text);
	free(o);
}

/* Formats a finite double with the fewest significant digits that read
 * back to the same value, positional up to 1e17 ("100.0", not "1e+02"),
 * and with a '.' or an exponent so that it reads back as a float ("2.0",
 * "1e+20", "-0.0"). */
static void
proto_json_out_float(double d, char *buf, size_t len)
{
	const char *e;

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, d);
		if (strtod(buf, NULL) == d) {
			break;
		}
	}
	if ((e = strchr(buf, 'e')) != NULL) {
		int exp = atoi(e + 1);

		/* More digits than needed, so it still reads back. */
		if (exp >= 0 && exp < 17) {
			snprintf(buf, len, "%.*g", exp + 1, d);
		}
	}
	if (strspn(buf, "-0123456789") == strlen(buf)) {
		size_t n = strlen(buf);

		snprintf(buf + n, len - n, ".0");
	}
}

/* Emits v and everything under it. Recursion is bounded by the depth that
 * proto_raw_validate allowed (PROTO_MAX_DEPTH_CAP at most). */
static int
proto_json_out_val(proto_json_emitter *o, const proto_val *v)
{
	char      num[48];
	proto_str s;
	bool      b;
	int64_t   i;
	double    d;
	int       rv;

	switch (proto_val_type_of(v)) {
	case PROTO_VAL_NIL:
		return (proto_json_emitter_plain(o, "null"));

	case PROTO_VAL_BOOL:
		(void) proto_val_bool(v, &b);
		return (proto_json_emitter_plain(o, b ? "true" : "false"));

	case PROTO_VAL_INT:
		(void) proto_val_int(v, &i);
		snprintf(num, sizeof(num), "%lld", (long long) i);
		return (proto_json_emitter_plain(o, num));

	case PROTO_VAL_UINT:
		/* Above INT64_MAX: proto_val_int refuses it, read it raw. */
		snprintf(num, sizeof(num), "%llu",
		    (unsigned long long) proto_val_obj(v)->via.u64);
		return (proto_json_emitter_plain(o, num));

	case PROTO_VAL_FLOAT:
		(void) proto_val_float(v, &d);
		if (!isfinite(d)) {
			return (proto_json_emitter_plain(o, "null"));
		}
		proto_json_out_float(d, num, sizeof(num));
		return (proto_json_emitter_plain(o, num));

	case PROTO_VAL_STR:
		(void) proto_val_str(v, &s);
		return (proto_json_emitter_str(o, s.ptr, s.len));

	case PROTO_VAL_ARRAY:
		if ((rv = proto_json_emitter_event(o,
		         fy_emit_event_create(o->emit, FYET_SEQUENCE_START,
		             FYNS_ANY, (const char *) NULL,
		             (const char *) NULL))) != 0) {
			return (rv);
		}
		for (size_t k = 0; k < proto_val_len(v); k++) {
			if ((rv = proto_json_out_val(
			         o, proto_val_at(v, k))) != 0) {
				return (rv);
			}
		}
		return (proto_json_emitter_event(
		    o, fy_emit_event_create(o->emit, FYET_SEQUENCE_END)));

	case PROTO_VAL_MAP:
		if ((rv = proto_json_emitter_event(o,
		         fy_emit_event_create(o->emit, FYET_MAPPING_START,
		             FYNS_ANY, (const char *) NULL,
		             (const char *) NULL))) != 0) {
			return (rv);
		}
		for (size_t k = 0; k < proto_val_len(v); k++) {
			const proto_val *val;

			if (proto_val_map_entry(v, k, &s, &val) != 0) {
				return (SAGA_EINVAL);
			}
			if ((rv = proto_json_emitter_str(
			         o, s.ptr, s.len)) != 0 ||
			    (rv = proto_json_out_val(o, val)) != 0) {
				return (rv);
			}
		}
		return (proto_json_emitter_event(
		    o, fy_emit_event_create(o->emit, FYET_MAPPING_END)));

	default:
		/* bin or ext: proto_raw_validate refuses them. */
		return (SAGA_EINVAL);
	}
}

int
proto_raw_to_json(proto_raw raw, bool pretty, char **out)
{
	/* Any value of the JSON data model renders, however large: the
	 * limits that matter here are the ones that keep decoding safe. */
	proto_limits lim = {
		.max_msg_bytes     = SIZE_MAX,
		.max_depth         = PROTO_MAX_DEPTH_CAP,
		.max_str_bytes     = SIZE_MAX,
		.max_container_len = SIZE_MAX,
	};
	proto_json_emitter *o   = NULL;
	proto_doc          *doc = NULL;
	int                 rv;

	if (proto_raw_validate(raw, &lim, NULL) != 0) {
		return (SAGA_EINVAL);
	}
	if ((rv = proto_doc_parse(&doc, raw, &lim, NULL)) != 0) {
		/* Validated already: only memory can be missing. */
		rv = rv == SAGA_ENOMEM ? SAGA_ENOMEM : SAGA_EINVAL;
		goto done;
	}
	if ((rv = proto_json_emitter_alloc(&o,
	         (pretty ? FYECF_MODE_JSON : FYECF_MODE_JSON_ONELINE) |
	             FYECF_WIDTH_INF)) == 0 &&
	    (rv = proto_json_out_val(o, proto_doc_root(doc))) == 0) {
		rv = proto_json_emitter_collect(o, out, NULL);
	}

done:
	proto_json_emitter_free(o);
	proto_doc_free(doc);
	return (rv);
}

/*
 * A list piece by piece.
 *
 * One emitter per element, not one for the whole document: libfyaml
 * 0.7.12's emitter keeps every token that it has written (a few hundred
 * bytes per scalar) until it is destroyed, so that one emitter for a
 * list of a million sagas grew to 5 GB. The text around the elements is
 * the emitter's layout, which is regular: nesting indents by two
 * columns, an array's elements follow "[" on their own lines, separated
 * by ",", and the "]" follows an element that is an object ending with a
 * scalar on its own closing line ("}]"). Strings (the key, every value)
 * are written by libfyaml.
 */

/* The indentation of list's elements in the indented document. */
#define PROTO_JSON_LIST_INDENT "    "

/* Appends text to out with ind after every line break. */
static int
proto_json_list_indent(proto_buf *out, const char *text, const char *ind)
{
	const char *nl;
	int         rv = 0;

	while (rv == 0 && (nl = strchr(text, '\n')) != NULL) {
		if ((rv = proto_buf_append(out, text, (size_t) (nl + 1 - text)))
		        == 0) {
			rv = proto_buf_append(out, ind, strlen(ind));
		}
		text = nl + 1;
	}
	return (rv != 0 ? rv : proto_buf_append(out, text, strlen(text)));
}

/* Appends s to out, NUL-terminated ones only. */
static int
proto_json_list_put(proto_buf *out, const char *s)
{
	return (proto_buf_append(out, s, strlen(s)));
}

int
proto_json_list_begin(
    proto_json_list *l, bool pretty, const char *key, proto_buf *out)
{
	proto_json_emitter *o    = NULL;
	char               *text = NULL;
	int                 rv;

	l->pretty = pretty;
	l->n      = 0;
	/* The key as a JSON string, by libfyaml. */
	if ((rv = proto_json_emitter_alloc(&o,
	         FYECF_MODE_JSON_ONELINE | FYECF_WIDTH_INF)) == 0 &&
	    (rv = proto_json_emitter_str(o, key, strlen(key))) == 0 &&
	    (rv = proto_json_emitter_collect(o, &text, NULL)) == 0 &&
	    (rv = proto_json_list_put(out, pretty ? "{\n  " : "{")) == 0 &&
	    (rv = proto_json_list_put(out, text)) == 0) {
		rv = proto_json_list_put(out, ": [");
	}
	free(text);
	proto_json_emitter_free(o);
	return (rv);
}

int
proto_json_list_add(proto_json_list *l, proto_raw elem, proto_buf *out)
{
	char *text = NULL;
	int   rv;

	if ((rv = proto_raw_to_json(elem, l->pretty, &text)) != 0) {
		return (rv);
	}
	if (l->pretty) {
		if ((rv = proto_json_list_put(out,
		         l->n > 0 ? ",\n" PROTO_JSON_LIST_INDENT
		                  : "\n" PROTO_JSON_LIST_INDENT)) == 0) {
			rv = proto_json_list_indent(
			    out, text, PROTO_JSON_LIST_INDENT);
		}
	} else if ((rv = proto_json_list_put(out, l->n > 0 ? ", " : "")) ==
	    0) {
		rv = proto_json_list_put(out, text);
	}
	free(text);
	l->n += rv == 0;
	return (rv);
}

int
proto_json_list_end(proto_json_list *l, proto_raw tail, proto_buf *out)
{
	char *text = NULL;
	int   rv;

	if (!proto_raw_is_map(tail)) {
		return (SAGA_EINVAL);
	}
	if ((rv = proto_raw_to_json(tail, l->pretty, &text)) != 0) {
		return (rv);
	}
	/* tail's entries come after the array: its own "{" gives way to
	 * the ", " (or ",\n") after the "]". */
	if ((rv = proto_json_list_put(out, "]")) == 0) {
		if (strcmp(text, "{}") == 0) {
			rv = proto_json_list_put(out, l->pretty ? "\n}" : "}");
		} else if ((rv = proto_json_list_put(
		                out, l->pretty ? "," : ", ")) == 0) {
			rv = proto_json_list_put(out, text + 1);
		}
	}
	free(text);
	return (rv);
}
