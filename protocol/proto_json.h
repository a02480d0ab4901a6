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

#endif /* PROTOCOL_PROTO_JSON_H */
