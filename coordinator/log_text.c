/* SPDX-License-Identifier: MIT */
/*
 * log_text: the pieces of a JSON log line that sagad's log and the
 * participant library share (log_text.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log_text.h"
#include "proto_json.h"
#include "saga_err.h"

size_t
log_tag_len(const char *msg)
{
	size_t n = 0;

	while ((msg[n] >= 'A' && msg[n] <= 'Z') || msg[n] == '-' ||
	    (n > 0 && msg[n] >= '0' && msg[n] <= '9')) {
		n++;
	}
	if (n < 2 || (msg[n] != ' ' && msg[n] != '\0') || msg[n - 1] == '-') {
		return (0);
	}
	return (n);
}

/* The room for how one character appears in a text log line: the
 * longest is "\u2028" and its NUL. */
#define LOG_TEXT_ESC_MAX 8

/* Writes to esc (LOG_TEXT_ESC_MAX bytes, no NUL needed) how the k
 * bytes at u appear in a text log line: a well-formed UTF-8 character
 * (proto_utf8_char), or, when k is 0, a byte that starts none. Returns
 * the length written. */
static size_t
log_text_char(char *esc, const uint8_t *u, size_t k)
{
	if (k == 0) {
		/* Not UTF-8: the byte, so that the line stays UTF-8. */
		return ((size_t) snprintf(
		    esc, LOG_TEXT_ESC_MAX, "\\x%02x", (unsigned) *u));
	}
	if (*u == '\\') {
		return ((size_t) snprintf(esc, LOG_TEXT_ESC_MAX, "\\\\"));
	}
	if (*u == '\n') {
		return ((size_t) snprintf(esc, LOG_TEXT_ESC_MAX, "\\n"));
	}
	if (*u == '\r') {
		return ((size_t) snprintf(esc, LOG_TEXT_ESC_MAX, "\\r"));
	}
	if ((*u < 0x20 && *u != '\t') || *u == 0x7f) {
		return ((size_t) snprintf(
		    esc, LOG_TEXT_ESC_MAX, "\\x%02x", (unsigned) *u));
	}
	if (k == 2 && u[0] == 0xc2 && u[1] <= 0x9f) {
		/* A C1 control (U+0080..U+009F): NEL (U+0085) is a line
		 * break to Unicode. */
		return ((size_t) snprintf(
		    esc, LOG_TEXT_ESC_MAX, "\\u%04x", (unsigned) u[1]));
	}
	if (k == 3 && u[0] == 0xe2 && u[1] == 0x80 &&
	    (u[2] == 0xa8 || u[2] == 0xa9)) {
		/* LINE SEPARATOR (U+2028), PARAGRAPH SEPARATOR (U+2029). */
		return ((size_t) snprintf(esc, LOG_TEXT_ESC_MAX, "\\u%04x",
		    u[2] == 0xa8 ? 0x2028u : 0x2029u));
	}
	memcpy(esc, u, k);
	return (k);
}

size_t
log_text_escape(char *dst, size_t cap, const char *src)
{
	const uint8_t *u    = (const uint8_t *) src;
	size_t         left = strlen(src);
	size_t         n    = 0;

	if (cap == 0) {
		return (0);
	}
	while (left > 0) {
		char   esc[LOG_TEXT_ESC_MAX];
		size_t c = proto_utf8_char(u, left);
		size_t k = log_text_char(esc, u, c);

		/* Cut before a character or an escape that does not fit
		 * whole. */
		if (n + k > cap - 1) {
			break;
		}
		memcpy(dst + n, esc, k);
		n += k;
		c = c > 0 ? c : 1;
		u += c;
		left -= c;
	}
	dst[n] = '\0';
	return (n);
}

void
log_utf8_fix(char *s, size_t n)
{
	uint8_t *u = (uint8_t *) s;
	size_t   i = 0;

	while (i < n) {
		size_t k = proto_utf8_char(u + i, n - i);

		if (k == 0) {
			u[i++] = '?';
		} else {
			i += k;
		}
	}
}

int
log_put_str(proto_obj *o, const char *key, const char *v, size_t n)
{
	char  stack[256];
	char *s = n < sizeof(stack) ? stack : malloc(n + 1);
	int   rv;

	if (s == NULL) {
		return (SAGA_ENOMEM);
	}
	memcpy(s, v, n);
	s[n] = '\0';
	log_utf8_fix(s, n);
	rv = proto_obj_put_strn(o, key, s, n);
	if (s != stack) {
		free(s);
	}
	return (rv);
}

int
log_emit_json(proto_obj *o, const char *msg)
{
	size_t    tag = log_tag_len(msg);
	proto_buf b;
	char     *out = NULL;
	int       rv  = 0;

	if (tag > 0) {
		rv |= proto_obj_put_strn(o, "event", msg, tag);
		msg += tag;
		msg += *msg == ' ' ? 1 : 0;
	}
	rv |= log_put_str(o, "msg", msg, strlen(msg));
	if (rv != 0) {
		return (SAGA_ENOMEM);
	}
	proto_buf_init(&b);
	if ((rv = proto_obj_encode(o, &b)) == 0 &&
	    (rv = proto_raw_to_json(proto_buf_raw(&b), false, &out)) == 0) {
		size_t n = strlen(out);

		/* One write per line, so that threads do not interleave. */
		out[n] = '\n';
		(void) !write(STDERR_FILENO, out, n + 1);
		out[n] = '\0';
	}
	free(out);
	proto_buf_fini(&b);
	return (rv);
}
