/* SPDX-License-Identifier: MIT */
/*
 * proto_json: conversion between JSON text and protocol values, through
 * libfyaml (JSON is parsed as YAML in JSON mode and emitted by libfyaml's
 * event emitter with explicit scalar styles, so that the string "123" stays
 * a string). Used by sagactl (--input JSON, show, --json) and the tests.
 *
 * Mapping: JSON null/true/false/number/string/array/object <-> msgpack
 * nil/bool/int or float/str/array/map. An integer literal that fits int64
 * (or uint64) becomes an integer, any other number a float64. Object keys
 * must be strings.
 */
#ifndef PROTOCOL_PROTO_JSON_H
#define PROTOCOL_PROTO_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "proto_val.h"

/* proto_json_to_raw parses JSON text (len bytes) and appends the encoded
 * value to out, checked against lim (NULL: defaults). Returns 0,
 * SAGA_ENOMEM, or SAGA_EINVAL with a message "line:column: what" in errbuf
 * (errlen bytes; may be NULL). */
int proto_json_to_raw(const char *text, size_t len, const proto_limits *lim,
    proto_buf *out, char *errbuf, size_t errlen);

/* proto_raw_to_json renders raw as JSON, on one line or indented, into a
 * malloc'd NUL-terminated string stored in *out (free with free()).
 * Returns 0, SAGA_ENOMEM, or SAGA_EINVAL if raw is not a valid value. */
int proto_raw_to_json(proto_raw raw, bool pretty, char **out);

/* proto_json_list renders the document {"KEY": [ELEMENT, ...], TAIL}
 * (TAIL: the entries of a map, after the array) piece by piece, so that
 * a list too long to hold (sagactl list of a whole log) is written as it
 * is read, in memory bounded by one element: begin writes the text up to
 * the "[", add each element's, end the rest. Every string is written by
 * libfyaml (each element through proto_raw_to_json), and the text is
 * that of proto_raw_to_json of the whole document when every element is
 * an object whose last value is not an empty array or object (where
 * libfyaml puts the "]" on a line of its own: white space differs, not
 * the JSON). */
typedef struct proto_json_list {
	bool   pretty; /* indented, else one line */
	size_t n; /* elements added */
} proto_json_list;

/* proto_json_list_begin starts the document (indented or on one line)
 * whose array is the value of key, appending its text to out. Returns 0,
 * SAGA_ENOMEM or SAGA_EINVAL (key not UTF-8). */
int proto_json_list_begin(
    proto_json_list *l, bool pretty, const char *key, proto_buf *out);

/* proto_json_list_add appends the text of the next element, the encoded
 * value elem. Returns 0, SAGA_ENOMEM or SAGA_EINVAL (elem is not a value
 * of the JSON data model: nothing was appended, and the list goes on). */
int proto_json_list_add(proto_json_list *l, proto_raw elem, proto_buf *out);

/* proto_json_list_end appends the end of the array, the entries of the
 * encoded map tail and the end of the document (no line break, as
 * proto_raw_to_json). Returns 0, SAGA_ENOMEM or SAGA_EINVAL (tail is not
 * a map, or not JSON). */
int proto_json_list_end(proto_json_list *l, proto_raw tail, proto_buf *out);

#endif /* PROTOCOL_PROTO_JSON_H */
