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

size_t
log_text_escape(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	if (cap == 0) {
		return (0);
	}
	for (const uint8_t *u = (const uint8_t *) src; *u != '\0'; u++) {
		char   esc[8];
		size_t k;

		if (*u == '\\') {
			k = (size_t) snprintf(esc, sizeof(esc), "\\\\");
		} else if (*u == '\n') {
			k = (size_t) snprintf(esc, sizeof(esc), "\\n");
		} else if (*u == '\r') {
			k = (size_t) snprintf(esc, sizeof(esc), "\\r");
		} else if ((*u < 0x20 && *u != '\t') || *u == 0x7f) {
			k = (size_t) snprintf(esc, sizeof(esc), "\\x%02x", *u);
		} else {
			esc[0] = (char) *u;
			k      = 1;
		}
		if (n + k > cap - 1) {
			break;
		}
		memcpy(dst + n, esc, k);
		n += k;
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
