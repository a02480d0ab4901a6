/* SPDX-License-Identifier: MIT */
/*
 * proto_msg: the wire contract of the system. Every message exchanged by
 * sagad, the participants, sagactl and the tests is one msgpack map, the
 * envelope, described field by field in docs/protocol.md.
 *
 * Decoding is strict and bounded: the limits of proto_limits, trailing
 * bytes, wrong types, missing fields, unknown message types and versions
 * each fail with their own saga_err code and a message naming the field.
 * Unknown keys are ignored, so that a newer peer of the same major version
 * can add fields; a peer accepts versions PROTO_VERSION_MIN..PROTO_VERSION
 * (N-1 and N), which is what makes a rolling upgrade work.
 *
 * DESIGN: proto_msg is a flat struct holding every field any message type
 * uses; a table in proto_msg.c says which fields each type requires and
 * allows. Strings and values in a decoded message borrow the decoded
 * buffer's bytes (or the message's own memory): keep the buffer alive until
 * proto_msg_fini.
 */
#ifndef PROTOCOL_PROTO_MSG_H
#define PROTOCOL_PROTO_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "proto_val.h"
#include "saga_id.h"

/* How deep a saga's input and a step's output may nest (maps and arrays,
 * the value itself counting as one level) so that a COMMAND can carry
 * them: its context is at level 3 of the message, the input inside it at
 * level 4 and a step's output (context.steps.NAME) at level 5, all within
 * PROTO_MAX_DEPTH_CAP. A START or an ok REPLY alone could nest one or two
 * levels deeper (docs/protocol.md). */
#define PROTO_INPUT_MAX_DEPTH (PROTO_MAX_DEPTH_CAP - 3)
#define PROTO_OUTPUT_MAX_DEPTH (PROTO_MAX_DEPTH_CAP - 4)
/* How deep the context itself may nest: one level above the input. */
#define PROTO_CONTEXT_MAX_DEPTH (PROTO_MAX_DEPTH_CAP - 2)

/* The protocol version this build speaks, and the oldest it accepts. */
#define PROTO_VERSION 1
#define PROTO_VERSION_MIN 1

/* Message types. The numbers are the wire values. */
typedef enum proto_type {
	/* client -> sagad */
	PROTO_T_START   = 1,
	PROTO_T_STATUS  = 2,
	PROTO_T_WAIT    = 3,
	PROTO_T_CANCEL  = 4,
	PROTO_T_RETRY   = 5,
	PROTO_T_RESOLVE = 6,
	PROTO_T_SKIP    = 7,
	PROTO_T_PING    = 8, /* any peer -> any endpoint */
	/* sagad -> client */
	PROTO_T_SAGA = 20,
	PROTO_T_PONG = 21,
	/* sagad -> participant, and back */
	PROTO_T_COMMAND = 40,
	PROTO_T_REPLY   = 41,
	/* several COMMANDs in one message, and their answers in order */
	PROTO_T_BATCH       = 42,
	PROTO_T_BATCH_REPLY = 43,
	/* any endpoint, for a request it cannot read or refuses */
	PROTO_T_ERROR = 60,
} proto_type;

/* Kind of a command. */
typedef enum proto_kind {
	PROTO_KIND_ACTION       = 0,
	PROTO_KIND_COMPENSATION = 1,
} proto_kind;

/* Outcome of a participant's reply. */
typedef enum proto_outcome {
	PROTO_OUTCOME_OK     = 0, /* done; output holds the step's output */
	PROTO_OUTCOME_FAILED = 1, /* business failure: do not retry */
	PROTO_OUTCOME_RETRY  = 2, /* transient: try again later */
} proto_outcome;

/* PROTO_TRACEPARENT_LEN is the length of a W3C traceparent (version 00). */
#define PROTO_TRACEPARENT_LEN 55

/* proto_msg is one message. Zero it (or proto_msg_init) before filling it
 * in to encode. Optional fields are sent when non-zero / non-empty. */
typedef struct proto_msg {
	/* Envelope. */
	uint32_t  version; /* 0 when encoding means PROTO_VERSION */
	uint32_t  type;    /* proto_type */
	saga_id   id;      /* all-zero means absent */
	uint32_t  step;    /* step index, from 0 */
	uint32_t  attempt; /* from 1 */
	uint32_t  kind;    /* proto_kind */
	proto_str traceparent;
	int64_t   deadline_ms; /* absolute, Unix ms; 0 = none */
	proto_raw msgs; /* BATCH, BATCH_REPLY: whole messages, one after
	                   another (proto_batch_next reads them) */
	/* Payload fields; which ones a type uses: docs/protocol.md. */
	proto_str saga;       /* saga (definition) name */
	proto_str key;        /* START: idempotency key */
	proto_str note;       /* RESOLVE, SKIP, CANCEL: operator's note */
	proto_str step_name;  /* SKIP, COMMAND, SAGA */
	proto_str action;     /* COMMAND: action or compensation name */
	proto_str state;      /* SAGA: saga state name */
	proto_str error;      /* REPLY, SAGA: error text */
	proto_str message;    /* ERROR: what was wrong */
	proto_str service;    /* PONG: who answered */
	uint32_t  outcome;    /* REPLY: proto_outcome */
	uint32_t  code;       /* ERROR: saga_err */
	uint32_t  def_version; /* SAGA: definition version */
	uint64_t  timeout_ms; /* WAIT */
	bool      created;    /* SAGA: START made a new saga */
	proto_raw input;      /* START: map */
	proto_raw output;     /* REPLY: map */
	proto_raw context;    /* COMMAND: map */
	/* Decoded trees of input, output and context (decode only). */
	const proto_val *input_val;
	const proto_val *output_val;
	const proto_val *context_val;
	/* Private to proto_msg.c. */
	void *priv;
} proto_msg;

/* proto_msg_init zeroes m. */
void proto_msg_init(proto_msg *m);

/* proto_msg_fini frees what a decode attached to m; NULL-safe; m may be
 * reused afterwards. */
void proto_msg_fini(proto_msg *m);

/* proto_msg_detach makes the decoded message m independent of the bytes it
 * was decoded from, which the caller may then free, and frees the msgpack
 * tree the decoder built of the whole message (about 24 bytes for each
 * value, unknown keys' included: up to some 24 MiB for a message of 1
 * MiB): it keeps a copy of its strings and bins and a tree of its input,
 * output or context only. For what is kept longer than it takes to answer
 * it (sagad's client API). Returns 0, SAGA_ENOMEM (m as it was) or
 * SAGA_EINVAL (m was not decoded). */
int proto_msg_detach(proto_msg *m);

/* proto_msg_drop_vals frees the trees that proto_msg_detach kept of m's
 * input, output and context (some 24 bytes a value), for a message kept
 * after they were read: the fields' bytes stay, input_val, output_val and
 * context_val become NULL. Does nothing to a message not detached. */
void proto_msg_drop_vals(proto_msg *m);

/* proto_msg_encode appends the encoding of m to out. Checks that the type
 * is known and its required fields are set, and refuses what a decoder
 * would reject (a string that is not UTF-8, an invalid traceparent, ...:
 * SAGA_EINVAL). Returns 0, SAGA_ENOMEM, SAGA_EMSGTYPE, SAGA_EMISSING or
 * SAGA_EINVAL. */
int proto_msg_encode(const proto_msg *m, proto_buf *out);

/* proto_msg_decode decodes one message from buf (len bytes) under lim (NULL
 * means the defaults) into out, which it initialises. On failure returns the
 * decode error and describes it in err (may be NULL); out is left
 * initialised and empty. */
int proto_msg_decode(const void *buf, size_t len, const proto_limits *lim,
    proto_msg *out, proto_error *err);

/* proto_batch_next reads the next message of msgs (the field of a BATCH
 * or BATCH_REPLY) from *off, which starts at 0: on success *one holds its
 * bytes (empty at the end) and *off is past it. Each message is checked
 * to be one well-formed msgpack value under lim (NULL: the defaults);
 * decode it with proto_msg_decode. More than lim's max_container_len
 * messages is ETOOBIG, counted in *count (start it at 0). Returns 0 or
 * the decode error, described in err. */
int proto_batch_next(proto_raw msgs, size_t *off, size_t *count,
    const proto_limits *lim, proto_raw *one, proto_error *err);

/* proto_msg_error_init fills m as an ERROR message for code and a message,
 * echoing the saga id, step, attempt and kind of req when it is not NULL.
 * The message is borrowed. */
void proto_msg_error_init(
    proto_msg *m, const proto_msg *req, int code, const char *message);

/* proto_type_name returns "START", "COMMAND", ... or "UNKNOWN". */
const char *proto_type_name(uint32_t type);

/* proto_kind_name returns "action" or "compensation". */
const char *proto_kind_name(uint32_t kind);

/* proto_outcome_name returns "ok", "failed" or "retry". */
const char *proto_outcome_name(uint32_t outcome);

/* proto_traceparent_valid tells whether s is a well-formed W3C traceparent
 * (version 00: 2-32-16-2 lower-case hex, ids not all zero). */
bool proto_traceparent_valid(proto_str s);

/* proto_str_eq tells whether s equals the C string c. */
bool proto_str_eq(proto_str s, const char *c);

/* proto_str_c makes a slice of a C string (NULL gives an empty slice). */
proto_str proto_str_c(const char *c);

/* proto_str_dup returns a malloc'd NUL-terminated copy, or NULL. */
char *proto_str_dup(proto_str s);

#endif /* PROTOCOL_PROTO_MSG_H */
