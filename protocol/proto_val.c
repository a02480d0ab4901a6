/* SPDX-License-Identifier: MIT */
/*
 * proto_val: byte buffers, the bounded msgpack scanner, decoded trees and
 * the map builder. See proto_val.h.
 *
 * DESIGN: decoding is two passes. proto_scan checks the bytes against the
 * limits without allocating; only then does msgpack-c build a tree, whose
 * nodes are handed out as opaque proto_val pointers. Strings in the tree
 * point into the caller's bytes (msgpack-c does not copy them).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack/unpack_define.h>

#include "proto_internal.h"
#include "proto_val.h"
#include "saga_err.h"

_Static_assert(PROTO_MAX_DEPTH_CAP <= MSGPACK_EMBED_STACK_SIZE,
    "msgpack-c cannot build trees as deep as the scanner accepts");

static const uint8_t proto_empty_map_byte = 0x80;
const proto_raw      PROTO_RAW_EMPTY_MAP  = { &proto_empty_map_byte, 1 };

proto_limits
proto_limits_default(void)
{
	proto_limits l = {
		.max_msg_bytes     = PROTO_MAX_MSG_BYTES_DEFAULT,
		.max_depth         = PROTO_MAX_DEPTH_DEFAULT,
		.max_str_bytes     = PROTO_MAX_STR_BYTES_DEFAULT,
		.max_container_len = PROTO_MAX_CONTAINER_LEN_DEFAULT,
	};
	return (l);
}

int
proto_seterr(proto_error *err, int code, size_t offset, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		err->code   = code;
		err->offset = offset;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return (code);
}

void
proto_buf_init(proto_buf *b)
{
	b->data = NULL;
	b->len  = 0;
	b->cap  = 0;
}

void
proto_buf_fini(proto_buf *b)
{
	if (b != NULL) {
		free(b->data);
		proto_buf_init(b);
	}
}

void
proto_buf_reset(proto_buf *b)
{
	b->len = 0;
}

int
proto_buf_append(proto_buf *b, const void *data, size_t len)
{
	if (len == 0) {
		return (0);
	}
	if (b->cap - b->len < len) {
		size_t   cap = b->cap ? b->cap : 256;
		uint8_t *nd;

		while (cap - b->len < len) {
			if (cap > SIZE_MAX / 2) {
				return (SAGA_ENOMEM);
			}
			cap *= 2;
		}
		if ((nd = realloc(b->data, cap)) == NULL) {
			return (SAGA_ENOMEM);
		}
		b->data = nd;
		b->cap  = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return (0);
}

proto_raw
proto_buf_raw(const proto_buf *b)
{
	proto_raw r = { b->data, b->len };

	return (r);
}

int
proto_buf_write_cb(void *data, const char *buf, size_t len)
{
	return (proto_buf_append(data, buf, len) == 0 ? 0 : -1);
}

/* Reads a big-endian unsigned integer of n bytes. */
static uint64_t
proto_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		v = v << 8 | p[i];
	}
	return (v);
}

typedef struct proto_frame {
	uint64_t remaining; /* items (keys and values) left */
	bool     is_map;
	bool     key_next; /* next item of a map is a key */
} proto_frame;

int
proto_scan(const uint8_t *p, size_t len, const proto_limits *lim,
    unsigned flags, size_t *end, proto_error *err)
{
	proto_limits defl = proto_limits_default();
	proto_frame  stack[PROTO_MAX_DEPTH_CAP];
	size_t       depth = 0;
	size_t       off   = 0;
	size_t       max_depth;

	if (lim == NULL) {
		lim = &defl;
	}
	max_depth = lim->max_depth < PROTO_MAX_DEPTH_CAP ? lim->max_depth
	                                                 : PROTO_MAX_DEPTH_CAP;
	for (;;) {
		uint8_t  b;
		size_t   hdr  = 1; /* header bytes */
		uint64_t body = 0; /* payload bytes after the header */
		uint64_t n    = 0; /* container elements */
		int      cont = 0; /* 1 array, 2 map */
		int      str  = 0; /* 1 str, 2 bin */
		bool     is_key;

		if (off >= len) {
			return (proto_seterr(err, SAGA_ETRUNC, off,
			    "message truncated at byte %zu", off));
		}
		is_key = depth > 0 && stack[depth - 1].is_map &&
		    stack[depth - 1].key_next;
		b = p[off];
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 ||
		    b == 0xc3) {
			/* fixint, nil, bool: header only */
		} else if (b >= 0x80 && b <= 0x8f) {
			cont = 2;
			n    = b & 0x0f;
		} else if (b >= 0x90 && b <= 0x9f) {
			cont = 1;
			n    = b & 0x0f;
		} else if (b >= 0xa0 && b <= 0xbf) {
			str  = 1;
			body = b & 0x1f;
		} else {
			switch (b) {
			case 0xc1:
				return (proto_seterr(err, SAGA_EMALFORMED, off,
				    "invalid msgpack byte 0xc1 at byte %zu",
				    off));
			case 0xc4:
			case 0xc5:
			case 0xc6:
				str = 2;
				hdr = 1 + ((size_t) 1 << (b - 0xc4));
				break;
			case 0xc7:
			case 0xc8:
			case 0xc9:
			case 0xd4:
			case 0xd5:
			case 0xd6:
			case 0xd7:
			case 0xd8:
				return (proto_seterr(err, SAGA_ETYPE, off,
				    "msgpack ext type at byte %zu: only the "
				    "JSON data model is allowed",
				    off));
			case 0xca:
				body = 4;
				break;
			case 0xcb:
				body = 8;
				break;
			case 0xcc:
			case 0xcd:
			case 0xce:
			case 0xcf:
				body = (uint64_t) 1 << (b - 0xcc);
				break;
			case 0xd0:
			case 0xd1:
			case 0xd2:
			case 0xd3:
				body = (uint64_t) 1 << (b - 0xd0);
				break;
			case 0xd9:
			case 0xda:
			case 0xdb:
				str = 1;
				hdr = 1 + ((size_t) 1 << (b - 0xd9));
				break;
			case 0xdc:
			case 0xdd:
				cont = 1;
				hdr  = 1 + ((size_t) 2 << (b - 0xdc));
				break;
			case 0xde:
			case 0xdf:
				cont = 2;
				hdr  = 1 + ((size_t) 2 << (b - 0xde));
				break;
			}
		}
		if (len - off < hdr) {
			return (proto_seterr(err, SAGA_ETRUNC, off,
			    "message truncated at byte %zu (inside a header)",
			    len));
		}
		if (hdr > 1) {
			uint64_t v = proto_be(p + off + 1, hdr - 1);

			if (str != 0) {
				body = v;
			} else {
				n = v;
			}
		}
		if (is_key && str != 1) {
			return (proto_seterr(err, SAGA_ETYPE, off,
			    "map key at byte %zu is not a string", off));
		}
		/* Directly in the envelope: in the top map, not in a top
		 * array (which rule 4 refuses later, ETYPE either way, but
		 * rule 2 comes first). */
		if (str == 2 &&
		    !(depth == 1 && stack[0].is_map &&
		        (flags & PROTO_SCAN_BIN_AT_TOP))) {
			return (proto_seterr(err, SAGA_ETYPE, off,
			    "binary value at byte %zu: only the JSON data "
			    "model is allowed",
			    off));
		}
		/* A bin (only ever at the top of an envelope: an id, or a
		 * batch's messages) is bounded by the message's size. */
		if (str == 1 && body > lim->max_str_bytes) {
			return (proto_seterr(err, SAGA_ESTRLEN, off,
			    "string of %llu bytes at byte %zu exceeds the "
			    "limit of %zu",
			    (unsigned long long) body, off,
			    lim->max_str_bytes));
		}
		if (body > len - off - hdr) {
			return (proto_seterr(err, SAGA_ETRUNC, off,
			    "message truncated at byte %zu (value at byte %zu "
			    "needs %llu more bytes)",
			    len, off, (unsigned long long) body));
		}
		/* A msgpack str is UTF-8; one that is not would be refused
		 * by PostgreSQL wherever it is kept as text (an error, a
		 * key, a note), failing a whole batch there. */
		if (str == 1 &&
		    !proto_utf8_valid(p + off + hdr, (size_t) body)) {
			return (proto_seterr(err, SAGA_EMALFORMED, off,
			    "string at byte %zu is not valid UTF-8", off));
		}
		off += hdr + (size_t) body;
		if (depth > 0) {
			proto_frame *f = &stack[depth - 1];

			f->remaining--;
			if (f->is_map) {
				f->key_next = !f->key_next;
			}
		}
		if (cont != 0) {
			uint64_t items = cont == 2 ? n * 2 : n;

			if (depth + 1 > max_depth) {
				return (proto_seterr(err, SAGA_EDEPTH,
				    off - hdr,
				    "nesting deeper than the limit of %zu at "
				    "byte %zu",
				    max_depth, off - hdr));
			}
			if (n > lim->max_container_len) {
				return (proto_seterr(err, SAGA_ETOOBIG,
				    off - hdr,
				    "%s of %llu elements at byte %zu exceeds "
				    "the limit of %zu",
				    cont == 2 ? "map" : "array",
				    (unsigned long long) n, off - hdr,
				    lim->max_container_len));
			}
			if (items > len - off) {
				return (proto_seterr(err, SAGA_ETRUNC,
				    off - hdr,
				    "message truncated: %s at byte %zu "
				    "declares %llu elements, %zu bytes left",
				    cont == 2 ? "map" : "array", off - hdr,
				    (unsigned long long) n, len - off));
			}
			if (items > 0) {
				stack[depth].remaining = items;
				stack[depth].is_map    = cont == 2;
				stack[depth].key_next  = true;
				depth++;
				continue;
			}
		}
		while (depth > 0 && stack[depth - 1].remaining == 0) {
			depth--;
		}
		if (depth == 0) {
			*end = off;
			return (0);
		}
	}
}

size_t
proto_utf8_char(const uint8_t *s, size_t n)
{
	size_t  len;
	uint8_t lo = 0x80, hi = 0xbf;

	if (n == 0) {
		return (0);
	}
	if (s[0] < 0x80) {
		return (1);
	}
	/* The second byte's range rules out overlong forms, surrogates
	 * (U+D800..U+DFFF) and code points above U+10FFFF. */
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		lo  = s[0] == 0xe0 ? 0xa0 : 0x80;
		hi  = s[0] == 0xed ? 0x9f : 0xbf;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		lo  = s[0] == 0xf0 ? 0x90 : 0x80;
		hi  = s[0] == 0xf4 ? 0x8f : 0xbf;
	} else {
		return (0);
	}
	if (n < len || s[1] < lo || s[1] > hi ||
	    (len > 2 && (s[2] & 0xc0) != 0x80) ||
	    (len > 3 && (s[3] & 0xc0) != 0x80)) {
		return (0);
	}
	return (len);
}

bool
proto_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t k;

		if (s[i] < 0x80) {
			i++;
		} else if ((k = proto_utf8_char(s + i, len - i)) == 0) {
			return (false);
		} else {
			i += k;
		}
	}
	return (true);
}

char *
proto_utf8_trim(char *s)
{
	size_t n = strlen(s), i = n, need;

	/* Back over up to three continuation bytes to the lead byte. */
	while (i > 0 && n - i < 3 && ((uint8_t) s[i - 1] & 0xc0) == 0x80) {
		i--;
	}
	if (i == 0 || (uint8_t) s[i - 1] < 0xc0) {
		return (s);
	}
	need = (uint8_t) s[i - 1] >= 0xf0 ? 4
	    : (uint8_t) s[i - 1] >= 0xe0  ? 3
	                                   : 2;
	if (n - (i - 1) < need) {
		s[i - 1] = '\0';
	}
	return (s);
}

int
proto_raw_validate(proto_raw raw, const proto_limits *lim, proto_error *err)
{
	proto_limits defl = proto_limits_default();
	size_t       end;
	int          rv;

	if (lim == NULL) {
		lim = &defl;
	}
	if (raw.len > lim->max_msg_bytes) {
		return (proto_seterr(err, SAGA_ETOOBIG, 0,
		    "value of %zu bytes exceeds the limit of %zu", raw.len,
		    lim->max_msg_bytes));
	}
	if ((rv = proto_scan(raw.ptr, raw.len, lim, 0, &end, err)) != 0) {
		return (rv);
	}
	if (end != raw.len) {
		return (proto_seterr(err, SAGA_ETRAILING, end,
		    "%zu trailing bytes after the value", raw.len - end));
	}
	return (0);
}

bool
proto_raw_is_map(proto_raw raw)
{
	if (raw.len == 0) {
		return (false);
	}
	return ((raw.ptr[0] >= 0x80 && raw.ptr[0] <= 0x8f) ||
	    raw.ptr[0] == 0xde || raw.ptr[0] == 0xdf);
}

bool
proto_raw_equal(proto_raw a, proto_raw b)
{
	return (a.len == b.len &&
	    (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0));
}

struct proto_doc {
	msgpack_unpacked result;
};

int
proto_doc_parse(proto_doc **out, proto_raw raw, const proto_limits *lim,
    proto_error *err)
{
	proto_doc *doc;
	size_t     off = 0;
	int        rv;

	if ((rv = proto_raw_validate(raw, lim, err)) != 0) {
		return (rv);
	}
	if ((doc = malloc(sizeof(*doc))) == NULL) {
		return (proto_seterr(err, SAGA_ENOMEM, 0, "out of memory"));
	}
	msgpack_unpacked_init(&doc->result);
	if (msgpack_unpack_next(&doc->result, (const char *) raw.ptr,
	        raw.len, &off) != MSGPACK_UNPACK_SUCCESS) {
		proto_doc_free(doc);
		return (proto_seterr(err, SAGA_ENOMEM, 0,
		    "out of memory decoding %zu bytes", raw.len));
	}
	*out = doc;
	return (0);
}

const proto_val *
proto_doc_root(const proto_doc *doc)
{
	return (proto_obj_val(&doc->result.data));
}

void
proto_doc_free(proto_doc *doc)
{
	if (doc != NULL) {
		msgpack_unpacked_destroy(&doc->result);
		free(doc);
	}
}

proto_val_type
proto_val_type_of(const proto_val *v)
{
	const msgpack_object *o = proto_val_obj(v);

	if (o == NULL) {
		return (PROTO_VAL_NIL);
	}
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return (PROTO_VAL_NIL);
	case MSGPACK_OBJECT_BOOLEAN:
		return (PROTO_VAL_BOOL);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return (o->via.u64 > INT64_MAX ? PROTO_VAL_UINT
		                               : PROTO_VAL_INT);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return (PROTO_VAL_INT);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return (PROTO_VAL_FLOAT);
	case MSGPACK_OBJECT_STR:
		return (PROTO_VAL_STR);
	case MSGPACK_OBJECT_ARRAY:
		return (PROTO_VAL_ARRAY);
	case MSGPACK_OBJECT_MAP:
		return (PROTO_VAL_MAP);
	default:
		return (PROTO_VAL_OTHER);
	}
}

static const proto_val *
proto_val_getn(const proto_val *m, const char *key, size_t klen)
{
	const msgpack_object *o = proto_val_obj(m);

	if (o == NULL || o->type != MSGPACK_OBJECT_MAP) {
		return (NULL);
	}
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == klen &&
		    memcmp(kv->key.via.str.ptr, key, klen) == 0) {
			return (proto_obj_val(&kv->val));
		}
	}
	return (NULL);
}

const proto_val *
proto_val_get(const proto_val *m, const char *key)
{
	return (proto_val_getn(m, key, strlen(key)));
}

const proto_val *
proto_val_path(const proto_val *v, const char *path)
{
	while (v != NULL && *path != '\0') {
		const char *dot = strchr(path, '.');
		size_t      n   = dot ? (size_t) (dot - path) : strlen(path);

		v    = proto_val_getn(v, path, n);
		path = dot ? dot + 1 : path + n;
	}
	return (v);
}

int
proto_val_int(const proto_val *v, int64_t *out)
{
	const msgpack_object *o = proto_val_obj(v);

	if (o == NULL) {
		return (SAGA_ETYPE);
	}
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > INT64_MAX) {
			return (SAGA_ERANGE);
		}
		*out = (int64_t) o->via.u64;
		return (0);
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = o->via.i64;
		return (0);
	}
	return (SAGA_ETYPE);
}

int
proto_val_float(const proto_val *v, double *out)
{
	const msgpack_object *o = proto_val_obj(v);

	if (o == NULL) {
		return (SAGA_ETYPE);
	}
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*out = (double) o->via.u64;
		return (0);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*out = (double) o->via.i64;
		return (0);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*out = o->via.f64;
		return (0);
	default:
		return (SAGA_ETYPE);
	}
}

int
proto_val_bool(const proto_val *v, bool *out)
{
	const msgpack_object *o = proto_val_obj(v);

	if (o == NULL || o->type != MSGPACK_OBJECT_BOOLEAN) {
		return (SAGA_ETYPE);
	}
	*out = o->via.boolean;
	return (0);
}

int
proto_val_str(const proto_val *v, proto_str *out)
{
	const msgpack_object *o = proto_val_obj(v);

	if (o == NULL || o->type != MSGPACK_OBJECT_STR) {
		return (SAGA_ETYPE);
	}
	out->ptr = o->via.str.ptr;
	out->len = o->via.str.size;
	return (0);
}

char *
proto_val_strdup(const proto_val *v)
{
	proto_str s;
	char     *c;

	if (proto_val_str(v, &s) != 0 || (c = malloc(s.len + 1)) == NULL) {
		return (NULL);
	}
	if (s.len > 0) {
		memcpy(c, s.ptr, s.len);
	}
	c[s.len] = '\0';
	return (c);
}

size_t
proto_val_len(const proto_val *v)
{
	const msgpack_object *o = proto_val_obj(v);

	if (o == NULL) {
		return (0);
	}
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		return (o->via.array.size);
	}
	if (o->type == MSGPACK_OBJECT_MAP) {
		return (o->via.map.size);
	}
	return (0);
}

const proto_val *
proto_val_at(const proto_val *a, size_t i)
{
	const msgpack_object *o = proto_val_obj(a);

	if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY ||
	    i >= o->via.array.size) {
		return (NULL);
	}
	return (proto_obj_val(&o->via.array.ptr[i]));
}

int
proto_val_map_entry(
    const proto_val *m, size_t i, proto_str *key, const proto_val **val)
{
	const msgpack_object *o = proto_val_obj(m);

	if (o == NULL || o->type != MSGPACK_OBJECT_MAP ||
	    i >= o->via.map.size ||
	    o->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR) {
		return (SAGA_EINVAL);
	}
	key->ptr = o->via.map.ptr[i].key.via.str.ptr;
	key->len = o->via.map.ptr[i].key.via.str.size;
	*val     = proto_obj_val(&o->via.map.ptr[i].val);
	return (0);
}

int
proto_val_encode(const proto_val *v, proto_buf *out)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, out, proto_buf_write_cb);
	if (v == NULL) {
		/* A missing value (proto_val_get found nothing) is nil. */
		return (msgpack_pack_nil(&pk) != 0 ? SAGA_ENOMEM : 0);
	}
	if (msgpack_pack_object(&pk, *proto_val_obj(v)) != 0) {
		return (SAGA_ENOMEM);
	}
	return (0);
}

/*
 * The map builder keeps the encoded entries (key then value, back to back)
 * in body and the key offsets in keys, so that a duplicate key is refused.
 * Maps built here are small (a handler's output, the saga context), so the
 * duplicate check is a linear scan.
 */
struct proto_obj {
	proto_buf body;
	size_t   *keys; /* offset in body of each key's string bytes */
	size_t   *klens;
	size_t    count;
	size_t    cap;
};

int
proto_obj_alloc(proto_obj **out)
{
	proto_obj *o;

	if ((o = calloc(1, sizeof(*o))) == NULL) {
		return (SAGA_ENOMEM);
	}
	proto_buf_init(&o->body);
	*out = o;
	return (0);
}

void
proto_obj_free(proto_obj *o)
{
	if (o != NULL) {
		proto_buf_fini(&o->body);
		free(o->keys);
		free(o->klens);
		free(o);
	}
}

void
proto_obj_reset(proto_obj *o)
{
	proto_buf_reset(&o->body);
	o->count = 0;
}

size_t
proto_obj_count(const proto_obj *o)
{
	return (o->count);
}

/* Appends key to the body after checking it is new; the caller then
 * appends exactly one value. On failure the body is unchanged. */
static int
proto_obj_key(proto_obj *o, const char *key)
{
	size_t         klen = strlen(key);
	msgpack_packer pk;
	size_t         mark = o->body.len;

	for (size_t i = 0; i < o->count; i++) {
		if (o->klens[i] == klen &&
		    memcmp(o->body.data + o->keys[i], key, klen) == 0) {
			return (SAGA_EEXIST);
		}
	}
	if (o->count == o->cap) {
		size_t  cap = o->cap ? o->cap * 2 : 8;
		size_t *nk, *nl;

		if ((nk = realloc(o->keys, cap * sizeof(*nk))) == NULL) {
			return (SAGA_ENOMEM);
		}
		o->keys = nk;
		if ((nl = realloc(o->klens, cap * sizeof(*nl))) == NULL) {
			return (SAGA_ENOMEM);
		}
		o->klens = nl;
		o->cap   = cap;
	}
	msgpack_packer_init(&pk, &o->body, proto_buf_write_cb);
	if (msgpack_pack_str(&pk, klen) != 0 ||
	    msgpack_pack_str_body(&pk, key, klen) != 0) {
		o->body.len = mark;
		return (SAGA_ENOMEM);
	}
	o->keys[o->count]  = o->body.len - klen;
	o->klens[o->count] = klen;
	return (0);
}

/* Commits the entry begun by proto_obj_key when rv is 0, else rolls the
 * body back to mark. */
static int
proto_obj_done(proto_obj *o, size_t mark, int rv)
{
	if (rv != 0) {
		o->body.len = mark;
		return (rv == SAGA_EEXIST || rv == SAGA_EINVAL ? rv
		                                               : SAGA_ENOMEM);
	}
	o->count++;
	return (0);
}

#define PROTO_OBJ_PUT(o, key, packexpr)                                  \
	do {                                                             \
		size_t         mark_ = (o)->body.len;                    \
		msgpack_packer pk;                                       \
		int            rv_;                                      \
		if ((rv_ = proto_obj_key((o), (key))) != 0) {            \
			return (rv_);                                    \
		}                                                        \
		msgpack_packer_init(&pk, &(o)->body, proto_buf_write_cb); \
		rv_ = (packexpr) != 0 ? SAGA_ENOMEM : 0;                  \
		return (proto_obj_done((o), mark_, rv_));                \
	} while (0)

int
proto_obj_put_nil(proto_obj *o, const char *key)
{
	PROTO_OBJ_PUT(o, key, msgpack_pack_nil(&pk));
}

int
proto_obj_put_bool(proto_obj *o, const char *key, bool v)
{
	PROTO_OBJ_PUT(o, key,
	    v ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
}

int
proto_obj_put_int(proto_obj *o, const char *key, int64_t v)
{
	PROTO_OBJ_PUT(o, key, msgpack_pack_int64(&pk, v));
}

int
proto_obj_put_float(proto_obj *o, const char *key, double v)
{
	PROTO_OBJ_PUT(o, key, msgpack_pack_double(&pk, v));
}

int
proto_obj_put_strn(proto_obj *o, const char *key, const char *v, size_t n)
{
	PROTO_OBJ_PUT(o, key,
	    (msgpack_pack_str(&pk, n) || msgpack_pack_str_body(&pk, v, n)));
}

int
proto_obj_put_str(proto_obj *o, const char *key, const char *v)
{
	return (proto_obj_put_strn(o, key, v, strlen(v)));
}

int
proto_obj_put_val(proto_obj *o, const char *key, const proto_val *v)
{
	if (v == NULL) {
		return (proto_obj_put_nil(o, key));
	}
	PROTO_OBJ_PUT(o, key, msgpack_pack_object(&pk, *proto_val_obj(v)));
}

int
proto_obj_put_raw(proto_obj *o, const char *key, proto_raw raw)
{
	size_t mark = o->body.len;
	size_t end;
	int    rv;

	if (raw.len == 0 || proto_scan(raw.ptr, raw.len, NULL, 0, &end,
	                        NULL) != 0 || end != raw.len) {
		return (SAGA_EINVAL);
	}
	if ((rv = proto_obj_key(o, key)) != 0) {
		return (rv);
	}
	rv = proto_buf_append(&o->body, raw.ptr, raw.len);
	return (proto_obj_done(o, mark, rv));
}

int
proto_obj_put_obj(proto_obj *o, const char *key, const proto_obj *child)
{
	size_t mark = o->body.len;
	int    rv;

	if (child == o) {
		return (SAGA_EINVAL);
	}
	if ((rv = proto_obj_key(o, key)) != 0) {
		return (rv);
	}
	rv = proto_obj_encode(child, &o->body);
	return (proto_obj_done(o, mark, rv));
}

int
proto_obj_encode(const proto_obj *o, proto_buf *out)
{
	msgpack_packer pk;
	size_t         mark = out->len;

	msgpack_packer_init(&pk, out, proto_buf_write_cb);
	if (msgpack_pack_map(&pk, o->count) != 0 ||
	    proto_buf_append(out, o->body.data, o->body.len) != 0) {
		out->len = mark;
		return (SAGA_ENOMEM);
	}
	return (0);
}

/* The array builder: encoded elements back to back, and their count. */
struct proto_arr {
	proto_buf body;
	size_t    count;
};

int
proto_arr_alloc(proto_arr **out)
{
	proto_arr *a;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		return (SAGA_ENOMEM);
	}
	proto_buf_init(&a->body);
	*out = a;
	return (0);
}

void
proto_arr_free(proto_arr *a)
{
	if (a != NULL) {
		proto_buf_fini(&a->body);
		free(a);
	}
}

size_t
proto_arr_count(const proto_arr *a)
{
	return (a->count);
}

int
proto_arr_push_str(proto_arr *a, const char *v)
{
	size_t         n    = strlen(v);
	size_t         mark = a->body.len;
	msgpack_packer pk;

	msgpack_packer_init(&pk, &a->body, proto_buf_write_cb);
	if (msgpack_pack_str(&pk, n) != 0 ||
	    msgpack_pack_str_body(&pk, v, n) != 0) {
		a->body.len = mark;
		return (SAGA_ENOMEM);
	}
	a->count++;
	return (0);
}

int
proto_arr_push_raw(proto_arr *a, proto_raw raw)
{
	size_t end;
	int    rv;

	if (raw.len == 0 || proto_scan(raw.ptr, raw.len, NULL, 0, &end,
	                        NULL) != 0 || end != raw.len) {
		return (SAGA_EINVAL);
	}
	if ((rv = proto_buf_append(&a->body, raw.ptr, raw.len)) != 0) {
		return (rv);
	}
	a->count++;
	return (0);
}

int
proto_arr_push_obj(proto_arr *a, const proto_obj *o)
{
	int rv;

	if ((rv = proto_obj_encode(o, &a->body)) != 0) {
		return (rv);
	}
	a->count++;
	return (0);
}

int
proto_arr_encode(const proto_arr *a, proto_buf *out)
{
	msgpack_packer pk;
	size_t         mark = out->len;

	msgpack_packer_init(&pk, out, proto_buf_write_cb);
	if (msgpack_pack_array(&pk, a->count) != 0 ||
	    proto_buf_append(out, a->body.data, a->body.len) != 0) {
		out->len = mark;
		return (SAGA_ENOMEM);
	}
	return (0);
}

int
proto_obj_put_arr(proto_obj *o, const char *key, const proto_arr *a)
{
	size_t mark = o->body.len;
	int    rv;

	if ((rv = proto_obj_key(o, key)) != 0) {
		return (rv);
	}
	rv = proto_arr_encode(a, &o->body);
	return (proto_obj_done(o, mark, rv));
}
