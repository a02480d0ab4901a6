/* SPDX-License-Identifier: MIT */
/*
 * proto_fuzz: libFuzzer target for the wire decoder (built with
 * -DCOORD_FUZZ=ON and CC=clang; seeds in tests/fuzz/corpus).
 *
 * Each input is decoded as a message under the default limits and under
 * tight ones, and checked as a plain value by proto_raw_validate and
 * proto_doc_parse. Besides "no crash, no leak, no undefined behaviour"
 * (ASan and UBSan are on), it checks properties, and abort()s when one
 * does not hold:
 *  - a decode returns 0 or a decode error (never ENOMEM on these sizes),
 *    and on failure leaves the message empty;
 *  - the tight limits are all below the defaults, so whatever decodes under
 *    them decodes under the defaults, to the same message;
 *  - a decoded message detached from its bytes is the same message;
 *  - a decoded message re-encodes (the only documented refusal is
 *    EMISSING for a required string that was sent empty, which the
 *    decoder accepts), the re-encoding decodes under the same limits to
 *    the same message field by field, and encoding that again gives the
 *    same bytes (the encoding is canonical);
 *  - proto_raw_validate and proto_doc_parse agree, and a parsed tree
 *    re-encodes to a valid value.
 *
 * Run: ./build-fuzz/tests/proto_fuzz -max_total_time=60 -max_len=4096 \
 *          build-fuzz/corpus tests/fuzz/corpus
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_msg.h"
#include "proto_val.h"
#include "saga_err.h"
#include "saga_id.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check aborts with what when cond does not hold. */
static void
check(bool cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "proto_fuzz: property violated: %s\n", what);
		abort();
	}
}

static bool
is_decode_error(int rv)
{
	return (rv >= SAGA_ETRUNC && rv <= SAGA_ERANGE);
}

static bool
str_same(proto_str a, proto_str b)
{
	return (a.len == b.len &&
	    (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0));
}

/* Checks that v is a map whose encoding is raw, or NULL when raw is
 * empty. */
static void
check_tree(const proto_val *v, proto_raw raw, const proto_limits *lim)
{
	proto_buf b;

	if (raw.len == 0) {
		check(v == NULL, "tree without bytes");
		return;
	}
	check(v != NULL, "bytes without tree");
	check(proto_val_type_of(v) == PROTO_VAL_MAP, "value is not a map");
	check(proto_raw_is_map(raw), "raw value is not a map");
	check(proto_raw_validate(raw, lim, NULL) == 0,
	    "decoded value does not validate");
	proto_buf_init(&b);
	check(proto_val_encode(v, &b) == 0, "tree does not encode");
	check(proto_raw_equal(proto_buf_raw(&b), raw),
	    "tree and bytes differ");
	proto_buf_fini(&b);
}

/* Compares every field of two decoded messages. */
static void
check_same(const proto_msg *a, const proto_msg *b)
{
	check(a->version == b->version, "version");
	check(a->type == b->type, "type");
	check(saga_id_equal(&a->id, &b->id), "id");
	check(a->step == b->step, "step");
	check(a->attempt == b->attempt, "attempt");
	check(a->kind == b->kind, "kind");
	check(str_same(a->traceparent, b->traceparent), "traceparent");
	check(a->deadline_ms == b->deadline_ms, "deadline");
	check(proto_raw_equal(a->msgs, b->msgs), "msgs");
	check(str_same(a->saga, b->saga), "saga");
	check(str_same(a->key, b->key), "key");
	check(str_same(a->note, b->note), "note");
	check(str_same(a->step_name, b->step_name), "step_name");
	check(str_same(a->action, b->action), "action");
	check(str_same(a->state, b->state), "state");
	check(str_same(a->error, b->error), "error");
	check(str_same(a->message, b->message), "message");
	check(str_same(a->service, b->service), "service");
	check(a->outcome == b->outcome, "outcome");
	check(a->code == b->code, "code");
	check(a->def_version == b->def_version, "def_version");
	check(a->timeout_ms == b->timeout_ms, "timeout_ms");
	check(a->created == b->created, "created");
	check(proto_raw_equal(a->input, b->input), "input");
	check(proto_raw_equal(a->output, b->output), "output");
	check(proto_raw_equal(a->context, b->context), "context");
	check((a->input_val == NULL) == (b->input_val == NULL), "input_val");
	check((a->output_val == NULL) == (b->output_val == NULL),
	    "output_val");
	check((a->context_val == NULL) == (b->context_val == NULL),
	    "context_val");
}

#define NSTRS 9

/* Points out[] at the payload string fields of m. */
static void
str_fields(proto_msg *m, proto_str *out[NSTRS])
{
	out[0] = &m->saga;
	out[1] = &m->key;
	out[2] = &m->note;
	out[3] = &m->step_name;
	out[4] = &m->action;
	out[5] = &m->state;
	out[6] = &m->error;
	out[7] = &m->message;
	out[8] = &m->service;
}

/* Gives every empty string field of m a one-byte value, so that a
 * message whose required string was sent empty can be re-encoded.
 * Returns a mask of the fields it filled. */
static unsigned
fill_empty_strings(proto_msg *m)
{
	proto_str *s[NSTRS];
	unsigned   filled = 0;

	str_fields(m, s);
	for (int i = 0; i < NSTRS; i++) {
		if (s[i]->len == 0) {
			*s[i]  = proto_str_c("x");
			filled |= 1u << i;
		}
	}
	return (filled);
}

/* A filled field that the type does not send comes back empty: forget
 * the fill in m so that the comparison holds. */
static void
unfill_unsent(proto_msg *m, proto_msg *again, unsigned filled)
{
	proto_str *s[NSTRS], *a[NSTRS];

	str_fields(m, s);
	str_fields(again, a);
	for (int i = 0; i < NSTRS; i++) {
		if ((filled & (1u << i)) && a[i]->len == 0) {
			*s[i] = proto_str_c(NULL);
		}
	}
}

/*
 * Decodes data under lim; on success re-encodes and decodes again and
 * compares. Returns the decode's result; when keep is not NULL and the
 * decode succeeded, leaves the message there (caller finis it).
 */
static int
fuzz_msg(const uint8_t *data, size_t size, const proto_limits *lim,
    proto_msg *keep)
{
	proto_msg    m, m2, again;
	proto_error  err;
	proto_buf    enc, enc2;
	proto_limits lim2;
	unsigned     filled = 0;
	int          rv;

	memset(&err, 0, sizeof(err));
	rv = proto_msg_decode(data, size, lim, &m, &err);
	if (rv != 0) {
		if (!is_decode_error(rv)) {
			fprintf(stderr, "proto_fuzz: decode: %s: %s\n",
			    saga_errname(rv), err.msg);
		}
		check(is_decode_error(rv), "decode returned another error");
		check(err.code == rv, "error code differs from return value");
		check(err.msg[0] != '\0', "error without a message");
		check(memchr(err.msg, '\0', sizeof(err.msg)) != NULL,
		    "error message not terminated");
		check(m.priv == NULL && m.type == 0 && m.input_val == NULL &&
		        m.context_val == NULL && m.output_val == NULL,
		    "failed decode left data in the message");
		proto_msg_fini(&m);
		return (rv);
	}
	check(m.version >= PROTO_VERSION_MIN && m.version <= PROTO_VERSION,
	    "decoded an unsupported version");
	check(strcmp(proto_type_name(m.type), "UNKNOWN") != 0,
	    "decoded an unknown type");
	check(m.kind <= PROTO_KIND_COMPENSATION, "kind out of range");
	check(m.outcome <= PROTO_OUTCOME_RETRY, "outcome out of range");
	check(m.deadline_ms >= 0, "negative deadline");
	check(m.traceparent.len == 0 || proto_traceparent_valid(m.traceparent),
	    "invalid traceparent decoded");
	check_tree(m.input_val, m.input, lim);
	check_tree(m.output_val, m.output, lim);
	check_tree(m.context_val, m.context, lim);
	if (m.type == PROTO_T_BATCH || m.type == PROTO_T_BATCH_REPLY) {
		/* Each message of a batch is read and fuzzed in turn; the
		 * walk ends or fails, and never leaves the field. */
		proto_raw one;
		size_t    off = 0, count = 0;

		check(m.msgs.len > 0, "empty batch decoded");
		while ((rv = proto_batch_next(m.msgs, &off, &count, lim, &one,
		            &err)) == 0 &&
		    one.len > 0) {
			check(one.ptr >= m.msgs.ptr &&
			        one.ptr + one.len <= m.msgs.ptr + m.msgs.len &&
			        off <= m.msgs.len,
			    "a batch's message outside the batch");
			(void) fuzz_msg(one.ptr, one.len, lim, NULL);
		}
		check(rv == 0 || is_decode_error(rv),
		    "a batch's walk returned another error");
	}

	/* Re-encode. */
	m2   = m;
	lim2 = lim != NULL ? *lim : proto_limits_default();
	proto_buf_init(&enc);
	proto_buf_init(&enc2);
	rv = proto_msg_encode(&m2, &enc);
	if (rv == SAGA_EMISSING) {
		/* A required string sent empty: decodable, not encodable. */
		filled = fill_empty_strings(&m2);
		lim2.max_msg_bytes += 128;
		check(enc.len == 0, "failed encode left bytes");
		rv = proto_msg_encode(&m2, &enc);
	}
	check(rv == 0, "a decoded message does not re-encode");
	check(enc.len <= lim2.max_msg_bytes, "re-encoding grew too big");

	/* The re-encoding decodes to the same message. */
	rv = proto_msg_decode(enc.data, enc.len, &lim2, &again, &err);
	if (rv != 0) {
		fprintf(stderr, "proto_fuzz: re-decode: %s: %s\n",
		    saga_errname(rv), err.msg);
	}
	check(rv == 0, "a re-encoded message does not decode");
	unfill_unsent(&m2, &again, filled);
	check_same(&m2, &again);

	/* Detached from its bytes (then overwritten and freed), the
	 * message is the same, its trees included. */
	{
		uint8_t  *copy = malloc(size > 0 ? size : 1);
		proto_msg det;

		check(copy != NULL, "out of memory");
		memcpy(copy, data, size);
		check(proto_msg_decode(copy, size, lim, &det, &err) == 0,
		    "a second decode failed");
		check(proto_msg_detach(&det) == 0, "detach failed");
		memset(copy, 0xee, size);
		free(copy);
		check_same(&m, &det);
		check_tree(det.input_val, det.input, lim);
		check_tree(det.output_val, det.output, lim);
		check_tree(det.context_val, det.context, lim);
		proto_msg_fini(&det);
	}

	/* And encodes to the same bytes again. */
	check(proto_msg_encode(&again, &enc2) == 0, "second encode failed");
	check(proto_raw_equal(proto_buf_raw(&enc), proto_buf_raw(&enc2)),
	    "encoding is not canonical");

	proto_msg_fini(&again);
	proto_buf_fini(&enc2);
	proto_buf_fini(&enc);
	if (keep != NULL) {
		*keep = m;
	} else {
		proto_msg_fini(&m);
	}
	return (0);
}

/* Reads every node of a tree through the accessors. */
static void
walk(const proto_val *v, int depth)
{
	proto_str        s;
	const proto_val *c;
	int64_t          i;
	double           d;
	bool             b;

	check(depth <= PROTO_MAX_DEPTH_CAP, "tree deeper than the cap");
	switch (proto_val_type_of(v)) {
	case PROTO_VAL_BOOL:
		check(proto_val_bool(v, &b) == 0, "bool");
		break;
	case PROTO_VAL_INT:
		check(proto_val_int(v, &i) == 0, "int");
		break;
	case PROTO_VAL_UINT:
		check(proto_val_int(v, &i) == SAGA_ERANGE, "uint");
		check(proto_val_float(v, &d) == 0, "uint as float");
		break;
	case PROTO_VAL_FLOAT:
		check(proto_val_float(v, &d) == 0, "float");
		check(proto_val_int(v, &i) == SAGA_ETYPE, "float as int");
		break;
	case PROTO_VAL_STR:
		check(proto_val_str(v, &s) == 0, "str");
		free(proto_val_strdup(v));
		break;
	case PROTO_VAL_ARRAY:
		for (size_t k = 0; k < proto_val_len(v); k++) {
			walk(proto_val_at(v, k), depth + 1);
		}
		check(proto_val_at(v, proto_val_len(v)) == NULL, "array end");
		break;
	case PROTO_VAL_MAP:
		for (size_t k = 0; k < proto_val_len(v); k++) {
			check(proto_val_map_entry(v, k, &s, &c) == 0, "entry");
			walk(c, depth + 1);
		}
		check(proto_val_map_entry(v, proto_val_len(v), &s, &c) ==
		        SAGA_EINVAL,
		    "map end");
		break;
	case PROTO_VAL_NIL:
		break;
	case PROTO_VAL_OTHER:
		check(false, "bin or ext in a validated tree");
		break;
	}
}

/* Runs the value API over the input under lim. */
static void
fuzz_value(const uint8_t *data, size_t size, const proto_limits *lim)
{
	proto_raw  raw = { data, size };
	proto_doc *doc = NULL, *doc2 = NULL;
	proto_buf  enc, enc2;
	int        rv, rv2;

	rv  = proto_raw_validate(raw, lim, NULL);
	rv2 = proto_doc_parse(&doc, raw, lim, NULL);
	check(rv == 0 || is_decode_error(rv), "validate: non-decode error");
	check(rv == rv2, "validate and doc_parse disagree");
	if (rv2 != 0) {
		return;
	}
	walk(proto_doc_root(doc), 0);
	proto_buf_init(&enc);
	proto_buf_init(&enc2);
	check(proto_val_encode(proto_doc_root(doc), &enc) == 0,
	    "tree does not encode");
	check(proto_raw_validate(proto_buf_raw(&enc), lim, NULL) == 0,
	    "re-encoded tree does not validate");
	check(proto_doc_parse(&doc2, proto_buf_raw(&enc), lim, NULL) == 0,
	    "re-encoded tree does not parse");
	check(proto_val_encode(proto_doc_root(doc2), &enc2) == 0,
	    "second encode failed");
	check(proto_raw_equal(proto_buf_raw(&enc), proto_buf_raw(&enc2)),
	    "value encoding is not canonical");
	proto_doc_free(doc2);
	proto_doc_free(doc);
	proto_buf_fini(&enc2);
	proto_buf_fini(&enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Tight limits: every one at or below its default. */
	static const proto_limits tight = {
		.max_msg_bytes     = 1024,
		.max_depth         = 4,
		.max_str_bytes     = 16,
		.max_container_len = 8,
	};
	proto_msg def, tgt;
	int       rvd, rvt;

	rvd = fuzz_msg(data, size, NULL, &def);
	rvt = fuzz_msg(data, size, &tight, &tgt);
	if (rvt == 0) {
		check(rvd == 0, "decodes under tight limits, not defaults");
		check_same(&def, &tgt);
		proto_msg_fini(&tgt);
	}
	if (rvd == 0) {
		proto_msg_fini(&def);
	}
	fuzz_value(data, size, NULL);
	fuzz_value(data, size, &tight);
	return (0);
}
