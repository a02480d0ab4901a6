/* SPDX-License-Identifier: MIT */
/*
 * log_text: what sagad's log (log.c) and the participant library's share
 * to build a JSON log line: the stable event tag a message starts with,
 * and strings made valid UTF-8 for the JSON renderer.
 */
#ifndef COORDINATOR_LOG_TEXT_H
#define COORDINATOR_LOG_TEXT_H

#include <stddef.h>

#include "proto_val.h"

/* log_tag_len returns the length of the upper-case event tag msg starts
 * with (SAGA-START, PARTICIPANT-START, DB-DOWN, ...), or 0: two or more
 * of A-Z, '-' and (not first) 0-9, not ending in '-', then a space or the
 * end. */
size_t log_tag_len(const char *msg);

/* log_text_escape copies the NUL-terminated src to dst (cap bytes, NUL
 * included, cut if need be, never inside a character or an escape) for a
 * text log line: a line break or another control character (below 0x20
 * but tab, and 0x7f) becomes \\n, \\r or \\xNN, a C1 control (U+0080
 * to U+009F, NEL among them) or a LINE or PARAGRAPH SEPARATOR (U+2028,
 * U+2029) becomes \\uNNNN, so that a text from outside (a participant's
 * error, a client's note) cannot end the line and forge the next, even
 * for a reader that splits lines at Unicode's line breaks; a byte that is
 * not part of a well-formed UTF-8 character (RFC 3629) becomes \\xNN, so
 * that the line is UTF-8; a backslash becomes \\\\, so that such a text
 * cannot forge an escape either (each backslash it writes starts one).
 * The rest (tab, printable ASCII, any other UTF-8 character) is kept.
 * Returns the length written. */
size_t log_text_escape(char *dst, size_t cap, const char *src);

/* log_utf8_fix replaces, in place, every byte of s (n bytes) that is not
 * part of well-formed UTF-8 (RFC 3629) with '?': a line cut in the middle
 * of a character, or a message in another encoding, must still be written
 * as JSON rather than dropped. Control characters are left to the
 * emitter, which escapes them. */
void log_utf8_fix(char *s, size_t n);

/* log_put_str adds the string field key = v (its first n bytes) to o,
 * made valid UTF-8. Returns 0 or SAGA_ENOMEM. */
int log_put_str(proto_obj *o, const char *key, const char *v, size_t n);

/* log_emit_json adds msg to o (its event tag, if any, as "event", the
 * rest as "msg"), renders o as one JSON line (libfyaml) and writes it to
 * stderr in one write(2). Returns 0, or an error and writes nothing. */
int log_emit_json(proto_obj *o, const char *msg);

#endif /* COORDINATOR_LOG_TEXT_H */
