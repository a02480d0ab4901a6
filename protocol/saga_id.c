/* SPDX-License-Identifier: MIT */
/*
 * saga_id: UUIDv7 construction and the canonical text form.
 */
#include <string.h>

#include "saga_err.h"
#include "saga_id.h"

void
saga_id_make_v7(saga_id *out, int64_t unix_ms, const uint8_t rnd[10])
{
	uint64_t ms = (uint64_t) unix_ms & 0xffffffffffffULL;

	for (int i = 0; i < 6; i++) {
		out->b[i] = (uint8_t) (ms >> (8 * (5 - i)));
	}
	memcpy(&out->b[6], rnd, 10);
	out->b[6] = (uint8_t) (0x70 | (out->b[6] & 0x0f)); /* version 7 */
	out->b[8] = (uint8_t) (0x80 | (out->b[8] & 0x3f)); /* variant 10 */
}

char *
saga_id_format(const saga_id *id, char *buf)
{
	static const char hex[] = "0123456789abcdef";
	char             *p     = buf;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10) {
			*p++ = '-';
		}
		*p++ = hex[id->b[i] >> 4];
		*p++ = hex[id->b[i] & 0xf];
	}
	*p = '\0';
	return (buf);
}

static int
saga_id_hexval(char c)
{
	if (c >= '0' && c <= '9') {
		return (c - '0');
	}
	if (c >= 'a' && c <= 'f') {
		return (c - 'a' + 10);
	}
	if (c >= 'A' && c <= 'F') {
		return (c - 'A' + 10);
	}
	return (-1);
}

int
saga_id_parse(saga_id *out, const char *text)
{
	saga_id id;
	size_t  n = 0;

	if (text == NULL || strlen(text) != SAGA_ID_STRLEN) {
		return (SAGA_EINVAL);
	}
	for (size_t i = 0; i < SAGA_ID_STRLEN; i++) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (text[i] != '-') {
				return (SAGA_EINVAL);
			}
			continue;
		}
		hi = saga_id_hexval(text[i]);
		lo = saga_id_hexval(text[i + 1]);
		if (hi < 0 || lo < 0) {
			return (SAGA_EINVAL);
		}
		id.b[n++] = (uint8_t) (hi << 4 | lo);
		i++;
	}
	*out = id;
	return (0);
}

bool
saga_id_equal(const saga_id *a, const saga_id *b)
{
	return (memcmp(a->b, b->b, sizeof(a->b)) == 0);
}

bool
saga_id_is_nil(const saga_id *id)
{
	static const saga_id nil;

	return (saga_id_equal(id, &nil));
}

int64_t
saga_id_unix_ms(const saga_id *id)
{
	uint64_t ms = 0;

	for (int i = 0; i < 6; i++) {
		ms = ms << 8 | id->b[i];
	}
	return ((int64_t) ms);
}
