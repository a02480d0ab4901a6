/* SPDX-License-Identifier: MIT */
/*
 * saga_err: names and descriptions of the shared error codes.
 */
#include <stddef.h>

#include "saga_err.h"

static const struct {
	int         code;
	const char *name;
	const char *text;
} saga_err_table[] = {
	{ SAGA_OK, "OK", "success" },
	{ SAGA_ENOMEM, "ENOMEM", "out of memory" },
	{ SAGA_EINVAL, "EINVAL", "invalid argument" },
	{ SAGA_EPROTO, "EPROTO", "protocol error" },
	{ SAGA_EDB, "EDB", "database error" },
	{ SAGA_ETIMEDOUT, "ETIMEDOUT", "timed out" },
	{ SAGA_ESTATE, "ESTATE", "not allowed in the current state" },
	{ SAGA_ECLOSED, "ECLOSED", "closed" },
	{ SAGA_ENOTFOUND, "ENOTFOUND", "not found" },
	{ SAGA_ECONFLICT, "ECONFLICT",
	    "idempotency key already used with a different request" },
	{ SAGA_EOVERLOAD, "EOVERLOAD", "overloaded, try again later" },
	{ SAGA_EUNAVAIL, "EUNAVAIL", "unavailable, try again later" },
	{ SAGA_EDENIED, "EDENIED", "permission denied" },
	{ SAGA_EIO, "EIO", "transport error" },
	{ SAGA_EINTERNAL, "EINTERNAL", "internal error" },
	{ SAGA_ECONFIG, "ECONFIG", "invalid configuration" },
	{ SAGA_EEXIST, "EEXIST", "already exists" },
	{ SAGA_EUNKNOWN, "EUNKNOWN",
	    "outcome unknown: the request may have been applied" },
	{ SAGA_ETRUNC, "ETRUNC", "message truncated" },
	{ SAGA_ETRAILING, "ETRAILING", "trailing bytes after message" },
	{ SAGA_ETOOBIG, "ETOOBIG", "message or value too large" },
	{ SAGA_EDEPTH, "EDEPTH", "message nested too deeply" },
	{ SAGA_ESTRLEN, "ESTRLEN", "string too long" },
	{ SAGA_ETYPE, "ETYPE", "value of the wrong type" },
	{ SAGA_EMISSING, "EMISSING", "required field missing" },
	{ SAGA_EMSGTYPE, "EMSGTYPE", "unknown message type" },
	{ SAGA_EVERSION, "EVERSION", "unsupported protocol version" },
	{ SAGA_EMALFORMED, "EMALFORMED", "malformed message" },
	{ SAGA_ERANGE, "ERANGE", "value out of range" },
};

#define SAGA_ERR_COUNT (sizeof(saga_err_table) / sizeof(saga_err_table[0]))

const char *
saga_strerror(int err)
{
	for (size_t i = 0; i < SAGA_ERR_COUNT; i++) {
		if (saga_err_table[i].code == err) {
			return (saga_err_table[i].text);
		}
	}
	return ("unknown error");
}

const char *
saga_errname(int err)
{
	for (size_t i = 0; i < SAGA_ERR_COUNT; i++) {
		if (saga_err_table[i].code == err) {
			return (saga_err_table[i].name);
		}
	}
	/* Not "EUNKNOWN": that is code 17 (the outcome is not known). */
	return ("EUNLISTED");
}
