/* SPDX-License-Identifier: MIT */
/*
 * proto_val: data values carried by the protocol (saga input, step outputs,
 * the saga context), in the JSON data model: nil, bool, integer, float,
 * string, array and map with string keys.
 *
 * Three shapes, so that nothing outside protocol/ touches msgpack bytes:
 *  - proto_raw: one encoded value, as bytes (what sagad stores and resends);
 *  - proto_doc / proto_val: a read-only tree view of a proto_raw, for code
 *    that reads fields (participant handlers, the business key);
 *  - proto_obj: a builder for maps (handler outputs, the saga context).
 * And proto_buf, the growable byte buffer every encoder writes into.
 */
#ifndef PROTOCOL_PROTO_VAL_H
#define PROTOCOL_PROTO_VAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* proto_buf is a growable byte buffer owned by the caller. */
typedef struct proto_buf {
	uint8_t *data;
	size_t   len;
	size_t   cap;
} proto_buf;

/* proto_raw is one encoded value; borrowed bytes. */
typedef struct proto_raw {
	const uint8_t *ptr;
	size_t         len;
} proto_raw;

/* proto_str is a string slice, not NUL-terminated; borrowed bytes. */
typedef struct proto_str {
	const char *ptr;
	size_t      len;
} proto_str;

/* proto_limits bounds what a decoder accepts. See proto_limits_default. */
typedef struct proto_limits {
	size_t max_msg_bytes;     /* whole message */
	size_t max_depth;         /* nesting of arrays and maps */
	size_t max_str_bytes;     /* one string or key */
	size_t max_container_len; /* elements of one array or map */
} proto_limits;

/* Defaults of proto_limits (documented in docs/protocol.md). */
#define PROTO_MAX_MSG_BYTES_DEFAULT (1024 * 1024)
#define PROTO_MAX_DEPTH_DEFAULT 32
#define PROTO_MAX_STR_BYTES_DEFAULT (64 * 1024)
#define PROTO_MAX_CONTAINER_LEN_DEFAULT 65536
/* PROTO_MAX_DEPTH_CAP is the largest max_depth a decoder honours: msgpack-c
 * builds trees at most 32 containers deep (MSGPACK_EMBED_STACK_SIZE). */
#define PROTO_MAX_DEPTH_CAP 32

/* proto_limits_default returns the default limits. */
proto_limits proto_limits_default(void);

/* proto_error describes why a decode failed: the code (a saga_err), the byte
 * offset where it was found (or 0) and a one-line message naming the field
 * and what was expected. */
typedef struct proto_error {
	int    code;
	size_t offset;
	char   msg[192];
} proto_error;

/* proto_buf_init makes an empty buffer. */
void proto_buf_init(proto_buf *b);

/* proto_buf_fini frees the buffer's memory; NULL-safe. */
void proto_buf_fini(proto_buf *b);

/* proto_buf_reset empties the buffer and keeps its memory. */
void proto_buf_reset(proto_buf *b);

/* proto_buf_append appends len bytes. Returns 0 or SAGA_ENOMEM. */
int proto_buf_append(proto_buf *b, const void *data, size_t len);

/* proto_buf_raw returns the buffer's contents as a proto_raw. */
proto_raw proto_buf_raw(const proto_buf *b);

/* proto_raw_validate checks that raw is exactly one value of the JSON data
 * model within the limits (lim NULL means the defaults). Returns 0 or the
 * decode error, described in err (which may be NULL). */
int proto_raw_validate(
    proto_raw raw, const proto_limits *lim, proto_error *err);

/* proto_utf8_char returns the length (1 to 4) of the well-formed UTF-8
 * character (RFC 3629) at the start of the n bytes at s, or 0 when they
 * do not start with one (or n is 0). */
size_t proto_utf8_char(const uint8_t *s, size_t n);

/* proto_utf8_trim ends the NUL-terminated string s before a character
 * cut short at its end (the first bytes of a multi-byte UTF-8 sequence
 * without the rest), as snprintf leaves a text cut to fit a buffer.
 * Returns s. */
char *proto_utf8_trim(char *s);

/* proto_raw_is_map tells whether raw starts with a msgpack map. */
bool proto_raw_is_map(proto_raw raw);

/* proto_raw_equal tells whether two values have the same bytes. */
bool proto_raw_equal(proto_raw a, proto_raw b);

/* PROTO_RAW_EMPTY_MAP is the encoding of {}. */
extern const proto_raw PROTO_RAW_EMPTY_MAP;

/* Value types of a proto_val. */
typedef enum proto_val_type {
	PROTO_VAL_NIL,
	PROTO_VAL_BOOL,
	PROTO_VAL_INT, /* fits int64_t */
	PROTO_VAL_UINT, /* above INT64_MAX */
	PROTO_VAL_FLOAT,
	PROTO_VAL_STR,
	PROTO_VAL_ARRAY,
	PROTO_VAL_MAP,
	PROTO_VAL_OTHER, /* bin or ext: not in the JSON data model */
} proto_val_type;

/* proto_val is a node of a decoded tree; valid while its proto_doc (or
 * proto_msg) lives. */
typedef struct proto_val proto_val;

/* proto_doc owns a decoded tree. */
typedef struct proto_doc proto_doc;

/* proto_doc_parse validates raw (as proto_raw_validate) and decodes it into
 * a tree. The tree borrows raw's bytes: keep them alive while the doc lives.
 * Returns 0, SAGA_ENOMEM or a decode error described in err. */
int proto_doc_parse(proto_doc **out, proto_raw raw, const proto_limits *lim,
    proto_error *err);

/* proto_doc_root returns the tree's root value. */
const proto_val *proto_doc_root(const proto_doc *doc);

/* proto_doc_free frees the tree; NULL-safe. */
void proto_doc_free(proto_doc *doc);

/* proto_val_type_of returns v's type; NIL for a NULL v. */
proto_val_type proto_val_type_of(const proto_val *v);

/* proto_val_get returns the value of key in map m, or NULL when m is not a
 * map or has no such key. */
const proto_val *proto_val_get(const proto_val *m, const char *key);

/* proto_val_path follows a dotted path of map keys ("input.sku") and
 * returns the value found there, or NULL. */
const proto_val *proto_val_path(const proto_val *v, const char *path);

/* proto_val_int reads an integer. Returns 0, SAGA_ETYPE if v is not an
 * integer, SAGA_ERANGE if it does not fit int64_t. */
int proto_val_int(const proto_val *v, int64_t *out);

/* proto_val_float reads a number (integer or float). Returns 0 or
 * SAGA_ETYPE. */
int proto_val_float(const proto_val *v, double *out);

/* proto_val_bool reads a bool. Returns 0 or SAGA_ETYPE. */
int proto_val_bool(const proto_val *v, bool *out);

/* proto_val_str reads a string (not NUL-terminated). Returns 0 or
 * SAGA_ETYPE. */
int proto_val_str(const proto_val *v, proto_str *out);

/* proto_val_strdup returns a malloc'd NUL-terminated copy of a string
 * value, or NULL if v is not a string or memory ran out. */
char *proto_val_strdup(const proto_val *v);

/* proto_val_len returns the number of elements of an array or map (0 for
 * any other type). */
size_t proto_val_len(const proto_val *v);

/* proto_val_at returns element i of an array, or NULL. */
const proto_val *proto_val_at(const proto_val *a, size_t i);

/* proto_val_map_entry returns entry i of a map: its key and value. Returns
 * 0, or SAGA_EINVAL if m is not a map or i is out of range. */
int proto_val_map_entry(
    const proto_val *m, size_t i, proto_str *key, const proto_val **val);

/* proto_val_encode appends the encoding of v (nil for NULL) to out.
 * Returns 0 or SAGA_ENOMEM. */
int proto_val_encode(const proto_val *v, proto_buf *out);

/* proto_obj builds a map. Keys are unique: a second put of the same key
 * fails with SAGA_EEXIST. */
typedef struct proto_obj proto_obj;

/* proto_obj_alloc makes an empty map builder. Returns 0 or SAGA_ENOMEM. */
int proto_obj_alloc(proto_obj **out);

/* proto_obj_free frees the builder; NULL-safe. */
void proto_obj_free(proto_obj *o);

/* proto_obj_reset empties the builder and keeps its memory. */
void proto_obj_reset(proto_obj *o);

/* proto_obj_count returns the number of entries put so far. */
size_t proto_obj_count(const proto_obj *o);

/* proto_obj_put_* add one entry. Each returns 0, SAGA_ENOMEM, or
 * SAGA_EEXIST when key is already present. */
int proto_obj_put_nil(proto_obj *o, const char *key);
int proto_obj_put_bool(proto_obj *o, const char *key, bool v);
int proto_obj_put_int(proto_obj *o, const char *key, int64_t v);
int proto_obj_put_float(proto_obj *o, const char *key, double v);
int proto_obj_put_str(proto_obj *o, const char *key, const char *v);
int proto_obj_put_strn(proto_obj *o, const char *key, const char *v, size_t n);
/* proto_obj_put_raw adds an already-encoded value; returns SAGA_EINVAL if
 * raw is not exactly one valid value. */
int proto_obj_put_raw(proto_obj *o, const char *key, proto_raw raw);
/* proto_obj_put_val copies a decoded value; a NULL v is put as nil. */
int proto_obj_put_val(proto_obj *o, const char *key, const proto_val *v);
/* proto_obj_put_obj adds the map built by child (not o itself:
 * SAGA_EINVAL). */
int proto_obj_put_obj(proto_obj *o, const char *key, const proto_obj *child);

/* proto_obj_encode appends the map's encoding to out. Returns 0 or
 * SAGA_ENOMEM. */
int proto_obj_encode(const proto_obj *o, proto_buf *out);

/* proto_arr builds an array. */
typedef struct proto_arr proto_arr;

/* proto_arr_alloc makes an empty array builder. Returns 0 or
 * SAGA_ENOMEM. */
int proto_arr_alloc(proto_arr **out);

/* proto_arr_free frees the builder; NULL-safe. */
void proto_arr_free(proto_arr *a);

/* proto_arr_count returns the number of elements pushed so far. */
size_t proto_arr_count(const proto_arr *a);

/* proto_arr_push_* append one element. Each returns 0 or SAGA_ENOMEM;
 * push_raw also SAGA_EINVAL when raw is not exactly one valid value. */
int proto_arr_push_str(proto_arr *a, const char *v);
int proto_arr_push_raw(proto_arr *a, proto_raw raw);
int proto_arr_push_obj(proto_arr *a, const proto_obj *o);

/* proto_arr_encode appends the array's encoding to out. Returns 0 or
 * SAGA_ENOMEM. */
int proto_arr_encode(const proto_arr *a, proto_buf *out);

/* proto_obj_put_arr adds the array built by a under key. */
int proto_obj_put_arr(proto_obj *o, const char *key, const proto_arr *a);

#endif /* PROTOCOL_PROTO_VAL_H */
