/* SPDX-License-Identifier: MIT */
/*
 * proto_internal: helpers shared by the files of protocol/ and nobody else.
 */
#ifndef PROTOCOL_PROTO_INTERNAL_H
#define PROTOCOL_PROTO_INTERNAL_H

#include <msgpack.h>

#include "proto_val.h"

/* PROTO_SCAN_BIN_AT_TOP allows bin values directly inside the root map (the
 * envelope's saga id); everywhere else bin is refused, as are ext types. */
#define PROTO_SCAN_BIN_AT_TOP 0x1

/* proto_scan walks one msgpack value at p without building anything and
 * checks it against lim: complete, well-formed, JSON data model (string map
 * keys, no ext), depth, string and container sizes. On success stores the
 * offset just past the value in *end. Returns 0 or a decode error described
 * in err.
 *
 * msgpack-c 4.0's C unpacker has no limits (the C++ API has unpack_limit):
 * a 5-byte array header claiming 2^32 elements makes it allocate 100 GB
 * before it notices the data is missing. This pass runs first so that
 * msgpack_unpack_next only ever sees bounded, well-formed input. */
int proto_scan(const uint8_t *p, size_t len, const proto_limits *lim,
    unsigned flags, size_t *end, proto_error *err);

/* proto_utf8_valid tells whether the len bytes at s are well-formed UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
bool proto_utf8_valid(const uint8_t *s, size_t len);

/* proto_seterr fills err (if not NULL) and returns code. */
int proto_seterr(proto_error *err, int code, size_t offset, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

/* proto_buf_write_cb is a msgpack_packer write callback appending to the
 * proto_buf passed as data. */
int proto_buf_write_cb(void *data, const char *buf, size_t len);

/* proto_val_obj and proto_obj_val convert between the public opaque node
 * and msgpack-c's object. */
static inline const msgpack_object *
proto_val_obj(const proto_val *v)
{
	return ((const msgpack_object *) (const void *) v);
}

static inline const proto_val *
proto_obj_val(const msgpack_object *o)
{
	return ((const proto_val *) (const void *) o);
}

#endif /* PROTOCOL_PROTO_INTERNAL_H */
