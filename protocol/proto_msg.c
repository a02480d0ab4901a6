/* SPDX-License-Identifier: MIT */
/*
 * proto_msg: encoding and strict decoding of the envelope. See proto_msg.h
 * and docs/protocol.md.
 *
 * DESIGN: one table (proto_fields) names every field, its level (envelope
 * or payload), its wire type and where it lives in proto_msg; a second
 * (proto_types) gives, per message type, the fields it requires and the
 * fields it allows. Encoder and decoder are both driven by these tables, so
 * they cannot disagree. A known field that a type does not allow is treated
 * like an unknown key: ignored.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proto_internal.h"
#include "proto_msg.h"
#include "saga_err.h"

typedef enum proto_wire {
	W_U32,   /* unsigned integer that fits 32 bits */
	W_U64,   /* unsigned integer */
	W_I64,   /* signed integer */
	W_STR,   /* string */
	W_BOOL,  /* bool */
	W_MAP,   /* map in the JSON data model, kept as raw + tree */
	W_ID,    /* 16-byte bin */
	W_TRACE, /* W3C traceparent string */
	W_BIN,   /* bin at the top of the envelope, kept as raw bytes */
} proto_wire;

/* Field identifiers: bit numbers in the masks below. */
enum {
	F_ID,
	F_STEP,
	F_ATTEMPT,
	F_KIND,
	F_TRACE,
	F_DEADLINE,
	F_MSGS,
	F_PAYLOAD_FIRST,
	F_SAGA = F_PAYLOAD_FIRST,
	F_KEY,
	F_NOTE,
	F_STEP_NAME,
	F_ACTION,
	F_STATE,
	F_ERROR,
	F_MESSAGE,
	F_SERVICE,
	F_OUTCOME,
	F_CODE,
	F_DEF_VERSION,
	F_TIMEOUT,
	F_CREATED,
	F_INPUT,
	F_OUTPUT,
	F_CONTEXT,
	F_COUNT,
};

#define B(f) (1u << (f))

typedef struct proto_field {
	const char *name;
	proto_wire  wire;
	size_t      off;  /* offset of the value in proto_msg */
	size_t      voff; /* W_MAP: offset of the tree pointer */
} proto_field;

#define FLD(id, nm, w, member)                                           \
	[id] = { nm, w, offsetof(proto_msg, member), 0 }
#define MAPFLD(id, nm, member)                                           \
	[id] = { nm, W_MAP, offsetof(proto_msg, member),                 \
		offsetof(proto_msg, member##_val) }

static const proto_field proto_fields[F_COUNT] = {
	FLD(F_ID, "id", W_ID, id),
	FLD(F_STEP, "step", W_U32, step),
	FLD(F_ATTEMPT, "attempt", W_U32, attempt),
	FLD(F_KIND, "kind", W_U32, kind),
	FLD(F_TRACE, "traceparent", W_TRACE, traceparent),
	FLD(F_DEADLINE, "deadline", W_I64, deadline_ms),
	FLD(F_MSGS, "msgs", W_BIN, msgs),
	FLD(F_SAGA, "saga", W_STR, saga),
	FLD(F_KEY, "key", W_STR, key),
	FLD(F_NOTE, "note", W_STR, note),
	FLD(F_STEP_NAME, "step_name", W_STR, step_name),
	FLD(F_ACTION, "action", W_STR, action),
	FLD(F_STATE, "state", W_STR, state),
	FLD(F_ERROR, "error", W_STR, error),
	FLD(F_MESSAGE, "message", W_STR, message),
	FLD(F_SERVICE, "service", W_STR, service),
	FLD(F_OUTCOME, "outcome", W_U32, outcome),
	FLD(F_CODE, "code", W_U32, code),
	FLD(F_DEF_VERSION, "def_version", W_U32, def_version),
	FLD(F_TIMEOUT, "timeout_ms", W_U64, timeout_ms),
	FLD(F_CREATED, "created", W_BOOL, created),
	MAPFLD(F_INPUT, "input", input),
	MAPFLD(F_OUTPUT, "output", output),
	MAPFLD(F_CONTEXT, "context", context),
};

typedef struct proto_typespec {
	uint32_t    type;
	const char *name;
	uint32_t    required;
	uint32_t    optional;
} proto_typespec;

#define CMD_ENV (B(F_ID) | B(F_STEP) | B(F_ATTEMPT) | B(F_KIND))

static const proto_typespec proto_types[] = {
	{ PROTO_T_START, "START", B(F_SAGA) | B(F_INPUT),
	    B(F_KEY) | B(F_TRACE) | B(F_TIMEOUT) },
	{ PROTO_T_STATUS, "STATUS", B(F_ID), 0 },
	{ PROTO_T_WAIT, "WAIT", B(F_ID), B(F_TIMEOUT) },
	{ PROTO_T_CANCEL, "CANCEL", B(F_ID), B(F_NOTE) },
	{ PROTO_T_RETRY, "RETRY", B(F_ID), B(F_NOTE) },
	{ PROTO_T_RESOLVE, "RESOLVE", B(F_ID) | B(F_NOTE), 0 },
	{ PROTO_T_SKIP, "SKIP", B(F_ID) | B(F_STEP_NAME) | B(F_NOTE), 0 },
	{ PROTO_T_PING, "PING", 0, 0 },
	{ PROTO_T_SAGA, "SAGA", B(F_ID) | B(F_SAGA) | B(F_STATE),
	    B(F_STEP) | B(F_STEP_NAME) | B(F_ERROR) | B(F_CREATED) |
	        B(F_DEF_VERSION) | B(F_TRACE) | B(F_DEADLINE) },
	{ PROTO_T_PONG, "PONG", B(F_SERVICE), 0 },
	{ PROTO_T_COMMAND, "COMMAND",
	    CMD_ENV | B(F_SAGA) | B(F_STEP_NAME) | B(F_ACTION) |
	        B(F_CONTEXT),
	    B(F_TRACE) | B(F_DEADLINE) },
	{ PROTO_T_REPLY, "REPLY", CMD_ENV | B(F_OUTCOME),
	    B(F_OUTPUT) | B(F_ERROR) | B(F_TRACE) },
	{ PROTO_T_BATCH, "BATCH", B(F_MSGS), 0 },
	{ PROTO_T_BATCH_REPLY, "BATCH_REPLY", B(F_MSGS), 0 },
	{ PROTO_T_ERROR, "ERROR", B(F_CODE) | B(F_MESSAGE),
	    CMD_ENV | B(F_TRACE) },
};

#define PROTO_NTYPES (sizeof(proto_types) / sizeof(proto_types[0]))

static const proto_typespec *
proto_typespec_find(uint32_t type)
{
	for (size_t i = 0; i < PROTO_NTYPES; i++) {
		if (proto_types[i].type == type) {
			return (&proto_types[i]);
		}
	}
	return (NULL);
}

const char *
proto_type_name(uint32_t type)
{
	const proto_typespec *ts = proto_typespec_find(type);

	return (ts ? ts->name : "UNKNOWN");
}

const char *
proto_kind_name(uint32_t kind)
{
	return (kind == PROTO_KIND_COMPENSATION ? "compensation" : "action");
}

const char *
proto_outcome_name(uint32_t outcome)
{
	switch (outcome) {
	case PROTO_OUTCOME_OK:
		return ("ok");
	case PROTO_OUTCOME_FAILED:
		return ("failed");
	case PROTO_OUTCOME_RETRY:
		return ("retry");
	default:
		return ("unknown");
	}
}

bool
proto_str_eq(proto_str s, const char *c)
{
	size_t n = strlen(c);

	return (s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0));
}

proto_str
proto_str_c(const char *c)
{
	proto_str s = { c, c ? strlen(c) : 0 };

	return (s);
}

char *
proto_str_dup(proto_str s)
{
	char *c;

	if ((c = malloc(s.len + 1)) == NULL) {
		return (NULL);
	}
	if (s.len > 0) {
		memcpy(c, s.ptr, s.len);
	}
	c[s.len] = '\0';
	return (c);
}

static bool
proto_is_lhex(const char *p, size_t n, bool *allzero)
{
	*allzero = true;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return (false);
		}
		if (c != '0') {
			*allzero = false;
		}
	}
	return (true);
}

bool
proto_traceparent_valid(proto_str s)
{
	const char *p = s.ptr;
	bool        z;

	if (s.len != PROTO_TRACEPARENT_LEN || p[2] != '-' || p[35] != '-' ||
	    p[52] != '-') {
		return (false);
	}
	if (!proto_is_lhex(p, 2, &z) || (p[0] == 'f' && p[1] == 'f')) {
		return (false);
	}
	if (!proto_is_lhex(p + 3, 32, &z) || z) {
		return (false);
	}
	if (!proto_is_lhex(p + 36, 16, &z) || z) {
		return (false);
	}
	return (proto_is_lhex(p + 53, 2, &z));
}

void
proto_msg_init(proto_msg *m)
{
	memset(m, 0, sizeof(*m));
}

/* What a decode attaches to a message. */
typedef struct proto_msg_priv {
	msgpack_unpacked result;
	proto_buf        maps; /* re-encoded input/output/context */
	/* After proto_msg_detach: the strings and bins, and the trees of
	 * the maps (result is then empty). */
	uint8_t   *own;
	proto_doc *docs[F_COUNT];
} proto_msg_priv;

void
proto_msg_fini(proto_msg *m)
{
	proto_msg_priv *pv;

	if (m == NULL) {
		return;
	}
	if ((pv = m->priv) != NULL) {
		msgpack_unpacked_destroy(&pv->result);
		proto_buf_fini(&pv->maps);
		free(pv->own);
		for (int f = 0; f < F_COUNT; f++) {
			proto_doc_free(pv->docs[f]);
		}
		free(pv);
	}
	proto_msg_init(m);
}

void
proto_msg_error_init(
    proto_msg *m, const proto_msg *req, int code, const char *message)
{
	proto_msg_init(m);
	m->type    = PROTO_T_ERROR;
	m->code    = (uint32_t) code;
	m->message = proto_str_c(message);
	if (req != NULL) {
		m->id          = req->id;
		m->step        = req->step;
		m->attempt     = req->attempt;
		m->kind        = req->kind;
		m->traceparent = req->traceparent;
	}
}

/* Tells whether field f of m holds a value worth sending. */
static bool
proto_field_present(const proto_msg *m, int f)
{
	const proto_field *fd = &proto_fields[f];
	const char        *p  = (const char *) m + fd->off;

	switch (fd->wire) {
	case W_U32:
		return (*(const uint32_t *) (const void *) p != 0);
	case W_U64:
		return (*(const uint64_t *) (const void *) p != 0);
	case W_I64:
		return (*(const int64_t *) (const void *) p != 0);
	case W_STR:
	case W_TRACE:
		return (((const proto_str *) (const void *) p)->len != 0);
	case W_BOOL:
		return (*(const bool *) (const void *) p);
	case W_MAP:
	case W_BIN:
		return (((const proto_raw *) (const void *) p)->len != 0);
	case W_ID:
		return (!saga_id_is_nil((const saga_id *) (const void *) p));
	}
	return (false);
}

static int
proto_field_pack(msgpack_packer *pk, proto_buf *out, const proto_msg *m,
    int f)
{
	const proto_field *fd = &proto_fields[f];
	const char        *p  = (const char *) m + fd->off;
	size_t             nl = strlen(fd->name);
	int                rv = 0;

	if (msgpack_pack_str(pk, nl) != 0 ||
	    msgpack_pack_str_body(pk, fd->name, nl) != 0) {
		return (SAGA_ENOMEM);
	}
	switch (fd->wire) {
	case W_U32:
		rv = msgpack_pack_uint32(pk, *(const uint32_t *) (const void *) p);
		break;
	case W_U64:
		rv = msgpack_pack_uint64(pk, *(const uint64_t *) (const void *) p);
		break;
	case W_I64:
		rv = msgpack_pack_int64(pk, *(const int64_t *) (const void *) p);
		break;
	case W_BOOL:
		rv = *(const bool *) (const void *) p ? msgpack_pack_true(pk)
		                                      : msgpack_pack_false(pk);
		break;
	case W_STR:
	case W_TRACE: {
		const proto_str *s = (const proto_str *) (const void *) p;

		rv = msgpack_pack_str(pk, s->len) ||
		    msgpack_pack_str_body(pk, s->ptr, s->len);
		break;
	}
	case W_ID:
		rv = msgpack_pack_bin(pk, 16) ||
		    msgpack_pack_bin_body(pk, p, 16);
		break;
	case W_BIN: {
		const proto_raw *r = (const proto_raw *) (const void *) p;

		rv = msgpack_pack_bin(pk, r->len) ||
		    msgpack_pack_bin_body(pk, r->ptr, r->len);
		break;
	}
	case W_MAP: {
		const proto_raw *r = (const proto_raw *) (const void *) p;

		if (!proto_raw_is_map(*r)) {
			return (SAGA_EINVAL);
		}
		return (proto_buf_append(out, r->ptr, r->len));
	}
	}
	return (rv != 0 ? SAGA_ENOMEM : 0);
}

static int
proto_pack_key(msgpack_packer *pk, const char *name)
{
	size_t n = strlen(name);

	return (msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, name, n)
	        ? SAGA_ENOMEM
	        : 0);
}

/* What the encoder checks of input, output and context: well-formed and
 * in the JSON data model; sizes are the receiver's business. */
static const proto_limits proto_encode_limits = {
	.max_msg_bytes     = SIZE_MAX,
	.max_depth         = PROTO_MAX_DEPTH_CAP,
	.max_str_bytes     = SIZE_MAX,
	.max_container_len = SIZE_MAX,
};

int
proto_msg_encode(const proto_msg *m, proto_buf *out)
{
	const proto_typespec *ts = proto_typespec_find(m->type);
	msgpack_packer        pk;
	uint32_t              send = 0;
	size_t                mark = out->len;
	size_t                nenv, npay = 0;
	int                   rv;

	if (ts == NULL) {
		return (SAGA_EMSGTYPE);
	}
	for (int f = 0; f < F_COUNT; f++) {
		bool have = proto_field_present(m, f);

		/* Required ids, maps and strings must be there (an empty
		 * string counts as missing, as in the decoder); required
		 * integers and bools are sent as they are (0, false). */
		if ((ts->required & B(f)) && !have &&
		    proto_fields[f].wire != W_U32 &&
		    proto_fields[f].wire != W_U64 &&
		    proto_fields[f].wire != W_I64 &&
		    proto_fields[f].wire != W_BOOL) {
			return (SAGA_EMISSING);
		}
		if ((ts->required & B(f)) || ((ts->optional & B(f)) && have)) {
			send |= B(f);
		}
	}
	/* Refuse what the decoder would refuse: never put a message on the
	 * wire that its receiver cannot read. */
	if ((send & B(F_TRACE)) && !proto_traceparent_valid(m->traceparent)) {
		return (SAGA_EINVAL);
	}
	if (((send & B(F_KIND)) && m->kind > PROTO_KIND_COMPENSATION) ||
	    ((send & B(F_OUTCOME)) && m->outcome > PROTO_OUTCOME_RETRY) ||
	    ((ts->required & B(F_ATTEMPT)) && m->attempt == 0) ||
	    ((send & B(F_DEADLINE)) && m->deadline_ms < 0)) {
		return (SAGA_EINVAL);
	}
	for (int f = 0; f < F_COUNT; f++) {
		const proto_str *s;

		/* The decoder rejects a string that is not UTF-8 (an
		 * ERROR's message cut inside a character was one). */
		if (!(send & B(f)) || proto_fields[f].wire != W_STR) {
			continue;
		}
		s = (const proto_str *) (const void *) ((const char *) m +
		    proto_fields[f].off);
		if (!proto_utf8_valid((const uint8_t *) s->ptr, s->len)) {
			return (SAGA_EINVAL);
		}
	}
	for (int f = F_PAYLOAD_FIRST; f < F_COUNT; f++) {
		const proto_raw *r;

		if (!(send & B(f)) || proto_fields[f].wire != W_MAP) {
			continue;
		}
		r = (const proto_raw *) (const void *) ((const char *) m +
		    proto_fields[f].off);
		if (!proto_raw_is_map(*r) ||
		    proto_raw_validate(*r, &proto_encode_limits, NULL) != 0) {
			return (SAGA_EINVAL);
		}
	}
	for (int f = F_PAYLOAD_FIRST; f < F_COUNT; f++) {
		npay += (send & B(f)) ? 1 : 0;
	}
	nenv = 2 + (npay > 0 ? 1 : 0);
	for (int f = 0; f < F_PAYLOAD_FIRST; f++) {
		nenv += (send & B(f)) ? 1 : 0;
	}
	msgpack_packer_init(&pk, out, proto_buf_write_cb);
	if (msgpack_pack_map(&pk, nenv) != 0 || proto_pack_key(&pk, "v") ||
	    msgpack_pack_uint32(&pk, m->version ? m->version : PROTO_VERSION) ||
	    proto_pack_key(&pk, "type") || msgpack_pack_uint32(&pk, m->type)) {
		rv = SAGA_ENOMEM;
		goto fail;
	}
	for (int f = 0; f < F_PAYLOAD_FIRST; f++) {
		if ((send & B(f)) &&
		    (rv = proto_field_pack(&pk, out, m, f)) != 0) {
			goto fail;
		}
	}
	if (npay > 0) {
		if (proto_pack_key(&pk, "payload") != 0 ||
		    msgpack_pack_map(&pk, npay) != 0) {
			rv = SAGA_ENOMEM;
			goto fail;
		}
		for (int f = F_PAYLOAD_FIRST; f < F_COUNT; f++) {
			if ((send & B(f)) &&
			    (rv = proto_field_pack(&pk, out, m, f)) != 0) {
				goto fail;
			}
		}
	}
	return (0);
fail:
	out->len = mark;
	return (rv);
}

static const char *
proto_objtype_name(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return ("nil");
	case MSGPACK_OBJECT_BOOLEAN:
		return ("bool");
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return ("unsigned integer");
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return ("negative integer");
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return ("float");
	case MSGPACK_OBJECT_STR:
		return ("string");
	case MSGPACK_OBJECT_BIN:
		return ("binary");
	case MSGPACK_OBJECT_ARRAY:
		return ("array");
	case MSGPACK_OBJECT_MAP:
		return ("map");
	default:
		return ("ext");
	}
}

static const char *
proto_wire_name(proto_wire w)
{
	switch (w) {
	case W_U32:
		return ("unsigned 32-bit integer");
	case W_U64:
		return ("unsigned integer");
	case W_I64:
		return ("integer");
	case W_STR:
	case W_TRACE:
		return ("string");
	case W_BOOL:
		return ("bool");
	case W_MAP:
		return ("map");
	case W_ID:
		return ("16-byte binary");
	case W_BIN:
		return ("binary");
	}
	return ("?");
}

/* Decoding state. */
typedef struct proto_dec {
	proto_msg      *m;
	proto_msg_priv *pv;
	proto_error    *err;
	uint32_t        seen;
	size_t          map_off[F_COUNT]; /* W_MAP: offset in pv->maps */
	size_t          map_len[F_COUNT];
} proto_dec;

static int
proto_dec_type_err(proto_dec *d, const char *field, proto_wire want,
    const msgpack_object *o)
{
	return (proto_seterr(d->err, SAGA_ETYPE, 0,
	    "field \"%s\": expected %s, got %s", field, proto_wire_name(want),
	    proto_objtype_name(o)));
}

/* Stores value o of field f into the message. */
static int
proto_dec_field(proto_dec *d, int f, const msgpack_object *o)
{
	const proto_field *fd = &proto_fields[f];
	char              *p  = (char *) d->m + fd->off;

	switch (fd->wire) {
	case W_U32:
	case W_U64:
		if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
			return (proto_dec_type_err(d, fd->name, fd->wire, o));
		}
		if (fd->wire == W_U32) {
			if (o->via.u64 > UINT32_MAX) {
				return (proto_seterr(d->err, SAGA_ERANGE, 0,
				    "field \"%s\": %llu does not fit 32 bits",
				    fd->name,
				    (unsigned long long) o->via.u64));
			}
			*(uint32_t *) (void *) p = (uint32_t) o->via.u64;
		} else {
			*(uint64_t *) (void *) p = o->via.u64;
		}
		break;
	case W_I64:
		if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
			*(int64_t *) (void *) p = o->via.i64;
		} else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    o->via.u64 <= INT64_MAX) {
			*(int64_t *) (void *) p = (int64_t) o->via.u64;
		} else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			return (proto_seterr(d->err, SAGA_ERANGE, 0,
			    "field \"%s\": %llu does not fit 64 signed bits",
			    fd->name, (unsigned long long) o->via.u64));
		} else {
			return (proto_dec_type_err(d, fd->name, fd->wire, o));
		}
		break;
	case W_BOOL:
		if (o->type != MSGPACK_OBJECT_BOOLEAN) {
			return (proto_dec_type_err(d, fd->name, fd->wire, o));
		}
		*(bool *) (void *) p = o->via.boolean;
		break;
	case W_STR:
	case W_TRACE: {
		proto_str *s = (proto_str *) (void *) p;

		if (o->type != MSGPACK_OBJECT_STR) {
			return (proto_dec_type_err(d, fd->name, fd->wire, o));
		}
		s->ptr = o->via.str.ptr;
		s->len = o->via.str.size;
		if (fd->wire == W_TRACE && !proto_traceparent_valid(*s)) {
			return (proto_seterr(d->err, SAGA_ERANGE, 0,
			    "field \"traceparent\": not a W3C traceparent "
			    "(00-<32 hex>-<16 hex>-<2 hex>)"));
		}
		break;
	}
	case W_ID:
		if (o->type != MSGPACK_OBJECT_BIN) {
			return (proto_dec_type_err(d, fd->name, fd->wire, o));
		}
		if (o->via.bin.size != 16) {
			return (proto_seterr(d->err, SAGA_ERANGE, 0,
			    "field \"id\": expected 16 bytes, got %u",
			    o->via.bin.size));
		}
		memcpy(p, o->via.bin.ptr, 16);
		if (saga_id_is_nil(&d->m->id)) {
			return (proto_seterr(d->err, SAGA_ERANGE, 0,
			    "field \"id\": the nil UUID is not a saga id"));
		}
		break;
	case W_BIN: {
		proto_raw *r = (proto_raw *) (void *) p;

		if (o->type != MSGPACK_OBJECT_BIN) {
			return (proto_dec_type_err(d, fd->name, fd->wire, o));
		}
		r->ptr = (const uint8_t *) o->via.bin.ptr;
		r->len = o->via.bin.size;
		break;
	}
	case W_MAP: {
		msgpack_packer pk;

		if (o->type != MSGPACK_OBJECT_MAP) {
			return (proto_dec_type_err(d, fd->name, fd->wire, o));
		}
		d->map_off[f] = d->pv->maps.len;
		msgpack_packer_init(&pk, &d->pv->maps, proto_buf_write_cb);
		if (msgpack_pack_object(&pk, *o) != 0) {
			return (proto_seterr(d->err, SAGA_ENOMEM, 0,
			    "out of memory"));
		}
		d->map_len[f] = d->pv->maps.len - d->map_off[f];
		*(const proto_val **) (void *) ((char *) d->m + fd->voff) =
		    proto_obj_val(o);
		break;
	}
	}
	return (0);
}

/* Decodes the entries of map o that are fields of the given level (0 =
 * envelope, 1 = payload) allowed by ts; ignores unknown keys. */
static int
proto_dec_map(proto_dec *d, const msgpack_object *o, int level,
    const proto_typespec *ts, const msgpack_object **payload)
{
	uint32_t allowed = ts->required | ts->optional;
	int      lo      = level == 0 ? 0 : F_PAYLOAD_FIRST;
	int      hi      = level == 0 ? F_PAYLOAD_FIRST : F_COUNT;
	int      rv;

	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		const char           *ks = k->via.str.ptr;
		uint32_t              kl = k->via.str.size;

		if (level == 0 && kl == 7 && memcmp(ks, "payload", 7) == 0) {
			if (*payload != NULL) {
				return (proto_seterr(d->err, SAGA_EMALFORMED,
				    0, "duplicate key \"payload\""));
			}
			if (v->type != MSGPACK_OBJECT_MAP) {
				return (proto_seterr(d->err, SAGA_ETYPE, 0,
				    "field \"payload\": expected map, got %s",
				    proto_objtype_name(v)));
			}
			*payload = v;
			continue;
		}
		for (int f = lo; f < hi; f++) {
			if (strlen(proto_fields[f].name) != kl ||
			    memcmp(proto_fields[f].name, ks, kl) != 0) {
				continue;
			}
			if (!(allowed & B(f))) {
				break; /* not used by this type: ignore */
			}
			if (d->seen & B(f)) {
				return (proto_seterr(d->err, SAGA_EMALFORMED,
				    0, "duplicate key \"%s\"",
				    proto_fields[f].name));
			}
			if ((rv = proto_dec_field(d, f, v)) != 0) {
				return (rv);
			}
			d->seen |= B(f);
			break;
		}
	}
	return (0);
}

/* Finds key name in the root map; returns NULL if absent, sets *dup when it
 * appears twice. */
static const msgpack_object *
proto_dec_find(const msgpack_object *root, const char *name, bool *dup)
{
	const msgpack_object *found = NULL;
	size_t                nl    = strlen(name);

	*dup = false;
	for (uint32_t i = 0; i < root->via.map.size; i++) {
		const msgpack_object *k = &root->via.map.ptr[i].key;

		if (k->via.str.size == nl &&
		    memcmp(k->via.str.ptr, name, nl) == 0) {
			if (found != NULL) {
				*dup = true;
			}
			found = &root->via.map.ptr[i].val;
		}
	}
	return (found);
}

/* Reads the "v" or "type" key of the root map as an unsigned integer. */
static int
proto_dec_header(proto_dec *d, const msgpack_object *root, const char *name,
    uint32_t *out)
{
	const msgpack_object *o;
	bool                  dup;

	if ((o = proto_dec_find(root, name, &dup)) == NULL) {
		return (proto_seterr(d->err, SAGA_EMISSING, 0,
		    "missing required field \"%s\"", name));
	}
	if (dup) {
		return (proto_seterr(d->err, SAGA_EMALFORMED, 0,
		    "duplicate key \"%s\"", name));
	}
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		return (proto_seterr(d->err, SAGA_ETYPE, 0,
		    "field \"%s\": expected unsigned integer, got %s", name,
		    proto_objtype_name(o)));
	}
	*out = o->via.u64 > UINT32_MAX ? UINT32_MAX : (uint32_t) o->via.u64;
	return (0);
}

/* Checks the values that have the right type but may be out of range. */
static int
proto_dec_check(proto_dec *d, const proto_typespec *ts)
{
	proto_msg *m = d->m;

	if ((d->seen & B(F_KIND)) && m->kind > PROTO_KIND_COMPENSATION) {
		return (proto_seterr(d->err, SAGA_ERANGE, 0,
		    "field \"kind\": %u is neither 0 (action) nor 1 "
		    "(compensation)",
		    m->kind));
	}
	if ((d->seen & B(F_OUTCOME)) && m->outcome > PROTO_OUTCOME_RETRY) {
		return (proto_seterr(d->err, SAGA_ERANGE, 0,
		    "field \"outcome\": %u is not 0 (ok), 1 (failed) or 2 "
		    "(retry)",
		    m->outcome));
	}
	if ((ts->required & B(F_ATTEMPT)) && m->attempt == 0) {
		return (proto_seterr(d->err, SAGA_ERANGE, 0,
		    "field \"attempt\": attempts count from 1"));
	}
	if ((d->seen & B(F_DEADLINE)) && m->deadline_ms < 0) {
		return (proto_seterr(d->err, SAGA_ERANGE, 0,
		    "field \"deadline\": negative time"));
	}
	return (0);
}

int
proto_msg_decode(const void *buf, size_t len, const proto_limits *lim,
    proto_msg *out, proto_error *err)
{
	proto_limits          defl = proto_limits_default();
	proto_dec             d;
	const proto_typespec *ts;
	const msgpack_object *root;
	const msgpack_object *payload = NULL;
	uint32_t              version, type, missing;
	size_t                end, off = 0;
	int                   rv;

	proto_msg_init(out);
	if (lim == NULL) {
		lim = &defl;
	}
	memset(&d, 0, sizeof(d));
	d.m   = out;
	d.err = err;
	if (len > lim->max_msg_bytes) {
		return (proto_seterr(err, SAGA_ETOOBIG, 0,
		    "message of %zu bytes exceeds the limit of %zu", len,
		    lim->max_msg_bytes));
	}
	if ((rv = proto_scan(buf, len, lim, PROTO_SCAN_BIN_AT_TOP, &end,
	         err)) != 0) {
		return (rv);
	}
	if (end != len) {
		return (proto_seterr(err, SAGA_ETRAILING, end,
		    "%zu trailing bytes after the message (it ends at byte "
		    "%zu)",
		    len - end, end));
	}
	if ((d.pv = calloc(1, sizeof(*d.pv))) == NULL) {
		return (proto_seterr(err, SAGA_ENOMEM, 0, "out of memory"));
	}
	out->priv = d.pv;
	msgpack_unpacked_init(&d.pv->result);
	proto_buf_init(&d.pv->maps);
	if (msgpack_unpack_next(&d.pv->result, buf, len, &off) !=
	    MSGPACK_UNPACK_SUCCESS) {
		rv = proto_seterr(err, SAGA_ENOMEM, 0, "out of memory");
		goto fail;
	}
	root = &d.pv->result.data;
	if (root->type != MSGPACK_OBJECT_MAP) {
		rv = proto_seterr(err, SAGA_ETYPE, 0,
		    "message is a %s, expected a map (the envelope)",
		    proto_objtype_name(root));
		goto fail;
	}
	/* The version first: a message of another version may have any
	 * shape, and the error must say that it is the version. */
	if ((rv = proto_dec_header(&d, root, "v", &version)) != 0) {
		goto fail;
	}
	if (version < PROTO_VERSION_MIN || version > PROTO_VERSION) {
		rv = proto_seterr(err, SAGA_EVERSION, 0,
		    "protocol version %u not supported (this peer accepts "
		    "%d to %d)",
		    version, PROTO_VERSION_MIN, PROTO_VERSION);
		goto fail;
	}
	if ((rv = proto_dec_header(&d, root, "type", &type)) != 0) {
		goto fail;
	}
	if ((ts = proto_typespec_find(type)) == NULL) {
		rv = proto_seterr(err, SAGA_EMSGTYPE, 0,
		    "unknown message type %u", type);
		goto fail;
	}
	out->version = version;
	out->type    = type;
	if ((rv = proto_dec_map(&d, root, 0, ts, &payload)) != 0) {
		goto fail;
	}
	if (payload != NULL &&
	    (rv = proto_dec_map(&d, payload, 1, ts, &payload)) != 0) {
		goto fail;
	}
	for (int f = 0; f < F_COUNT; f++) {
		if ((ts->required & B(f)) && (d.seen & B(f)) &&
		    (proto_fields[f].wire == W_STR ||
		        proto_fields[f].wire == W_TRACE ||
		        proto_fields[f].wire == W_BIN) &&
		    (proto_fields[f].wire == W_BIN
		            ? ((proto_raw *) (void *) ((char *) out +
		                  proto_fields[f].off))
		                  ->len
		            : ((proto_str *) (void *) ((char *) out +
		                  proto_fields[f].off))
		                  ->len) == 0) {
			rv = proto_seterr(err, SAGA_EMISSING, 0,
			    "%s: required field \"%s\" is empty", ts->name,
			    proto_fields[f].name);
			goto fail;
		}
	}
	if ((missing = ts->required & ~d.seen) != 0) {
		int f = __builtin_ctz(missing);

		/* The first in table order: an envelope field before the
		 * payload, named as such only if a payload field is the
		 * first missing because the payload itself is absent. */
		if (f >= F_PAYLOAD_FIRST && payload == NULL) {
			rv = proto_seterr(err, SAGA_EMISSING, 0,
			    "%s: missing required field \"payload\"",
			    ts->name);
		} else {
			rv = proto_seterr(err, SAGA_EMISSING, 0,
			    "%s: missing required field \"%s\"", ts->name,
			    proto_fields[f].name);
		}
		goto fail;
	}
	if ((rv = proto_dec_check(&d, ts)) != 0) {
		goto fail;
	}
	/* The re-encoded maps are in place: hand out their slices. */
	for (int f = F_PAYLOAD_FIRST; f < F_COUNT; f++) {
		if (proto_fields[f].wire == W_MAP && (d.seen & B(f))) {
			proto_raw *r = (proto_raw *) (void *) ((char *) out +
			    proto_fields[f].off);

			r->ptr = d.pv->maps.data + d.map_off[f];
			r->len = d.map_len[f];
		}
	}
	return (0);
fail:
	proto_msg_fini(out);
	return (rv);
}

/* The trees of the maps are rebuilt from their re-encoded bytes, which
 * a decode checked already: only the shape is bounded here. */
static const proto_limits proto_detach_limits = {
	.max_msg_bytes     = SIZE_MAX,
	.max_depth         = PROTO_MAX_DEPTH_CAP,
	.max_str_bytes     = SIZE_MAX,
	.max_container_len = SIZE_MAX,
};

int
proto_msg_detach(proto_msg *m)
{
	proto_msg_priv *pv = m->priv;
	proto_doc      *docs[F_COUNT] = { NULL };
	uint8_t        *own = NULL;
	size_t          n   = 0;

	if (pv == NULL) {
		return (SAGA_EINVAL);
	}
	if (pv->result.zone == NULL) {
		return (0); /* detached already */
	}
	for (int f = 0; f < F_COUNT; f++) {
		const void *p = (const char *) m + proto_fields[f].off;

		if (proto_fields[f].wire == W_STR ||
		    proto_fields[f].wire == W_TRACE) {
			n += ((const proto_str *) p)->len;
		} else if (proto_fields[f].wire == W_BIN) {
			n += ((const proto_raw *) p)->len;
		}
	}
	if (n > 0 && (own = malloc(n)) == NULL) {
		return (SAGA_ENOMEM);
	}
	for (int f = 0; f < F_COUNT; f++) {
		const proto_field *fd = &proto_fields[f];
		const proto_raw   *r;

		if (fd->wire != W_MAP ||
		    *(const proto_val **) (const void *) ((const char *) m +
		        fd->voff) == NULL) {
			continue;
		}
		r = (const proto_raw *) (const void *) ((const char *) m +
		    fd->off);
		if (proto_doc_parse(&docs[f], *r, &proto_detach_limits,
		        NULL) != 0) {
			for (int g = 0; g < F_COUNT; g++) {
				proto_doc_free(docs[g]);
			}
			free(own);
			return (SAGA_ENOMEM);
		}
	}
	/* Nothing can fail from here: move everything over. */
	n = 0;
	for (int f = 0; f < F_COUNT; f++) {
		const proto_field *fd = &proto_fields[f];
		void              *p  = (char *) m + fd->off;

		if (fd->wire == W_STR || fd->wire == W_TRACE) {
			proto_str *str = p;

			if (str->len > 0) {
				memcpy(own + n, str->ptr, str->len);
				str->ptr = (const char *) own + n;
				n += str->len;
			}
		} else if (fd->wire == W_BIN) {
			proto_raw *raw = p;

			if (raw->len > 0) {
				memcpy(own + n, raw->ptr, raw->len);
				raw->ptr = own + n;
				n += raw->len;
			}
		} else if (fd->wire == W_MAP && docs[f] != NULL) {
			*(const proto_val **) (void *) ((char *) m +
			    fd->voff) = proto_doc_root(docs[f]);
			pv->docs[f] = docs[f];
		}
	}
	pv->own = own;
	msgpack_unpacked_destroy(&pv->result);
	msgpack_unpacked_init(&pv->result);
	return (0);
}

void
proto_msg_drop_vals(proto_msg *m)
{
	proto_msg_priv *pv = m->priv;

	if (pv == NULL || pv->result.zone != NULL) {
		return; /* not decoded, or not detached */
	}
	for (int f = 0; f < F_COUNT; f++) {
		if (pv->docs[f] != NULL) {
			proto_doc_free(pv->docs[f]);
			pv->docs[f] = NULL;
			*(const proto_val **) (void *) ((char *) m +
			    proto_fields[f].voff) = NULL;
		}
	}
}

int
proto_batch_next(proto_raw msgs, size_t *off, size_t *count,
    const proto_limits *lim, proto_raw *one, proto_error *err)
{
	proto_limits defl = proto_limits_default();
	size_t       end;
	int          rv;

	one->ptr = NULL;
	one->len = 0;
	if (lim == NULL) {
		lim = &defl;
	}
	if (*off >= msgs.len) {
		return (0);
	}
	if (*count >= lim->max_container_len) {
		return (proto_seterr(err, SAGA_ETOOBIG, *off,
		    "more than %zu messages in one batch",
		    lim->max_container_len));
	}
	if ((rv = proto_scan(msgs.ptr + *off, msgs.len - *off, lim,
	         PROTO_SCAN_BIN_AT_TOP, &end, err)) != 0) {
		if (err != NULL) {
			err->offset += *off;
		}
		return (rv);
	}
	one->ptr = msgs.ptr + *off;
	one->len = end;
	*off += end;
	(*count)++;
	return (0);
}
