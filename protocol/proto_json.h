/* SPDX-License-Identifier: MIT */
/*
 * proto_json: conversion between JSON text and protocol values, through
 * libfyaml (JSON is parsed as YAML in JSON mode and emitted by libfyaml's
 * event emitter with explicit scalar styles, so that the string "123" stays
 * a string). Used by sagactl (--input JSON, show, --json) and the tests;
 * its emitter (proto_json_emitter) also writes the canonical JSON of saga
 * definitions (coord_config).
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

/* proto_json_emitter writes JSON text through libfyaml's event emitter,
 * working around its bugs (see proto_json.c, DESIGN): above all, libfyaml
 * 0.7.12 drops the leading and trailing spaces of double-quoted scalars
 * (libfyaml issue #109). Every string, value or key, must go through
 * proto_json_emitter_str; everything else (numbers, true, false, null:
 * proto_json_emitter_plain; mappings and sequences) through
 * proto_json_emitter_event. The text of a document without strings that
 * start or end with a space is exactly what libfyaml writes with the same
 * flags. */
typedef struct proto_json_emitter proto_json_emitter;

struct fy_emitter;
struct fy_event;

/* proto_json_emitter_alloc creates an emitter writing with libfyaml's
 * emitter flags fy_flags (enum fy_emitter_cfg_flags: a JSON mode, and for
 * instance FYECF_WIDTH_INF or FYECF_NO_ENDING_NEWLINE) and starts a
 * stream and an implicit document: the caller emits exactly one root
 * value. Returns 0 or SAGA_ENOMEM. */
int proto_json_emitter_alloc(proto_json_emitter **out, unsigned fy_flags);

/* proto_json_emitter_fy returns libfyaml's emitter, to create the events
 * (fy_emit_event_create) given to proto_json_emitter_event. */
struct fy_emitter *proto_json_emitter_fy(proto_json_emitter *o);

/* proto_json_emitter_event emits ev, which it takes ownership of (NULL
 * stands for an event that could not be created: SAGA_ENOMEM). It must not
 * be a double-quoted scalar: strings go through proto_json_emitter_str.
 * Returns 0, SAGA_ENOMEM, or SAGA_EINTERNAL when libfyaml refuses the
 * event (a wrong sequence of events: a bug of the caller). */
int proto_json_emitter_event(proto_json_emitter *o, struct fy_event *ev);

/* proto_json_emitter_plain emits the NUL-terminated s as a plain scalar:
 * for a number, true, false or null written by the caller. Returns as
 * proto_json_emitter_event. */
int proto_json_emitter_plain(proto_json_emitter *o, const char *s);

/* proto_json_emitter_str emits the len bytes at s (a value or a key) as a
 * JSON string, spaces included. Returns as proto_json_emitter_event, or
 * SAGA_EINVAL when s is not valid UTF-8 (which JSON cannot carry). */
int proto_json_emitter_str(proto_json_emitter *o, const char *s, size_t len);

/* proto_json_emitter_collect ends the document and the stream and stores
 * the text in *out, a malloc'd NUL-terminated string without a trailing
 * newline (free with free()), and its length in *lenp (if not NULL).
 * Returns 0, SAGA_ENOMEM, or SAGA_EINTERNAL when the events were not one
 * complete value or libfyaml wrote the strings otherwise than the fix-ups
 * expect (rather than give altered strings). Call it once; then only
 * proto_json_emitter_free. */
int proto_json_emitter_collect(
    proto_json_emitter *o, char **out, size_t *lenp);

/* proto_json_emitter_free frees o (NULL is allowed), whether collected or
 * not. */
void proto_json_emitter_free(proto_json_emitter *o);

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
