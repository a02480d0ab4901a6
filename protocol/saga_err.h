/* SPDX-License-Identifier: MIT */
/*
 * saga_err: the error codes shared by every module and by the wire.
 *
 * Fallible functions return int: 0 on success, else one of these values.
 * The numbers are part of the wire contract (an ERROR message carries one in
 * its "code" field, see docs/protocol.md): never renumber, only add.
 */
#ifndef PROTOCOL_SAGA_ERR_H
#define PROTOCOL_SAGA_ERR_H

typedef enum saga_err {
	SAGA_OK = 0,
	/* General errors. */
	SAGA_ENOMEM = 1,     /* out of memory */
	SAGA_EINVAL = 2,     /* invalid argument or request */
	SAGA_EPROTO = 3,     /* protocol violation (not a decode error) */
	SAGA_EDB = 4,        /* database error */
	SAGA_ETIMEDOUT = 5,  /* timed out */
	SAGA_ESTATE = 6,     /* not allowed in the saga's current state */
	SAGA_ECLOSED = 7,    /* object closed or shutting down */
	SAGA_ENOTFOUND = 8,  /* no such saga, definition or step */
	SAGA_ECONFLICT = 9,  /* idempotency key reused with another request */
	SAGA_EOVERLOAD = 10, /* too many active sagas; try again later */
	SAGA_EUNAVAIL = 11,  /* database unavailable; try again later */
	SAGA_EDENIED = 12,   /* not authorized */
	SAGA_EIO = 13,       /* transport (nng) error */
	SAGA_EINTERNAL = 14, /* internal error (a bug) */
	SAGA_ECONFIG = 15,   /* invalid configuration */
	SAGA_EEXIST = 16,    /* already exists */
	SAGA_EUNKNOWN = 17,  /* outcome unknown: may have been applied */
	/* Decode errors: each class of malformed message has its own code. */
	SAGA_ETRUNC = 20,     /* message ends inside a value */
	SAGA_ETRAILING = 21,  /* bytes after the envelope */
	SAGA_ETOOBIG = 22,    /* message, container or string above a limit */
	SAGA_EDEPTH = 23,     /* nesting deeper than the limit */
	SAGA_ESTRLEN = 24,    /* string longer than the limit */
	SAGA_ETYPE = 25,      /* value of the wrong type */
	SAGA_EMISSING = 26,   /* required field missing */
	SAGA_EMSGTYPE = 27,   /* unknown message type */
	SAGA_EVERSION = 28,   /* unsupported protocol version */
	SAGA_EMALFORMED = 29, /* not valid msgpack, or duplicate key */
	SAGA_ERANGE = 30,     /* value of the right type but out of range */
} saga_err;

/* saga_strerror returns a static English description of err. */
const char *saga_strerror(int err);

/* saga_errname returns the stable symbolic name of err ("ETRUNC"), the form
 * used in logs and in ERROR messages; "EUNLISTED" for a value this build
 * does not know (a newer peer's). */
const char *saga_errname(int err);

#endif /* PROTOCOL_SAGA_ERR_H */
