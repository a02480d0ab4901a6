/* SPDX-License-Identifier: MIT */
/*
 * saga_id: the 128-bit saga identifier (a UUIDv7, RFC 9562).
 *
 * Ids are made by sagad from the clock and a random source, never from a
 * database sequence, so that a reset or restored database cannot hand out an
 * id that a participant's barrier has already seen. On the wire an id is a
 * 16-byte msgpack bin; in text it is the canonical 36-character UUID form.
 */
#ifndef PROTOCOL_SAGA_ID_H
#define PROTOCOL_SAGA_ID_H

#include <stdbool.h>
#include <stdint.h>

typedef struct saga_id {
	uint8_t b[16];
} saga_id;

/* SAGA_ID_STRLEN is the length of the text form, without the NUL. */
#define SAGA_ID_STRLEN 36

/* saga_id_make_v7 builds a UUIDv7 from a Unix time in milliseconds and ten
 * random bytes. Pure: the caller supplies the clock and the randomness. */
void saga_id_make_v7(saga_id *out, int64_t unix_ms, const uint8_t rnd[10]);

/* saga_id_format writes the canonical lower-case text form of id into buf,
 * which must hold SAGA_ID_STRLEN + 1 bytes. Returns buf. */
char *saga_id_format(const saga_id *id, char *buf);

/* saga_id_parse reads the canonical text form (either case). Returns 0, or
 * SAGA_EINVAL if text is not a UUID; out is assigned only on success. */
int saga_id_parse(saga_id *out, const char *text);

/* saga_id_equal tells whether a and b are the same id. */
bool saga_id_equal(const saga_id *a, const saga_id *b);

/* saga_id_is_nil tells whether id is all zero bytes (no id). */
bool saga_id_is_nil(const saga_id *id);

/* saga_id_unix_ms returns the creation time a UUIDv7 carries. */
int64_t saga_id_unix_ms(const saga_id *id);

#endif /* PROTOCOL_SAGA_ID_H */
