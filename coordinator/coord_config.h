/* SPDX-License-Identifier: MIT */
/*
 * coord_config: saga definitions and participants from YAML files, checked
 * and turned into the in-memory definitions of saga_def.h.
 *
 * The format is described in docs/sagas.md. Several files may each hold
 * participants, defaults and sagas; participants and sagas are merged
 * across files, and a file's defaults apply to the sagas of that file only.
 * Every problem is reported as "file:line:column: message" (1-based), and
 * loading goes on after an error so that one run reports all of them.
 *
 * Each saga also gets its canonical JSON (saga_def.json): every field
 * explicit, defaults resolved, always the same bytes for the same
 * definition. The database stores that text, and coord_def_from_json
 * rebuilds a pinned definition from it.
 *
 * DESIGN: one recursive-descent pass over libfyaml's document tree per
 * file. Each value is checked where it is read; rules that need a whole
 * saga (pivot placement) run when the saga is complete, and the ones that
 * need every file (unknown participant) run at the end. Errors are kept
 * with their position and sorted by file and position before they are
 * handed to the caller.
 */
#ifndef COORDINATOR_COORD_CONFIG_H
#define COORDINATOR_COORD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "saga_def.h"
#include "saga_err.h"

/* coord_defs is the result of coord_defs_load: every saga and participant
 * of the files, in the order of the files and of each file. */
typedef struct coord_defs {
	saga_def             **sagas;
	size_t                 nsagas;
	saga_participant_def **participants;
	size_t                 nparticipants;
	/* Copies of the file names; saga_def.file points at one of them. */
	char  **files;
	size_t  nfiles;
} coord_defs;

/* coord_errs holds error messages, each "file:line:column: message". The
 * caller zeroes it before use ({0}) and frees it with coord_errs_fini. */
typedef struct coord_errs {
	char  **msgs;
	size_t  n;
} coord_errs;

/* Defaults of the format (docs/sagas.md). */
#define COORD_CONFIG_MAX_IN_FLIGHT_DEFAULT 256
#define COORD_CONFIG_MAX_IN_FLIGHT_MAX 65536
/* Commands per BATCH message to one participant (1: no BATCH). The
 * most is what a participant of this release accepts. */
#define COORD_CONFIG_MAX_BATCH_DEFAULT 32
#define COORD_CONFIG_MAX_BATCH_MAX 1024
#define COORD_CONFIG_MAX_ATTEMPTS_MAX 1000000
#define COORD_CONFIG_NAME_MAX 128   /* saga, step and participant names */
#define COORD_CONFIG_STRING_MAX 255 /* actions, compensations, keys, URLs */
/* The longest duration (10 years): deadlines and waits are added to the
 * clock in milliseconds, and backoffs go through a double. */
#define COORD_CONFIG_DURATION_MAX_MS (3650LL * 24 * 3600 * 1000)
/* The longest step timeout (7 days): nng counts a timeout in
 * milliseconds in an int32, and sagad sets the sockets' resend time to
 * twice the longest timeout plus one second. */
#define COORD_CONFIG_TIMEOUT_MAX_MS (7LL * 24 * 3600 * 1000)

/* coord_config_url_check, when set, is asked about each participant
 * endpoint that passed the loader's own checks: it returns false, with
 * the reason in why, for a URL the transport cannot dial, which is then
 * reported at its file:line:column. sagad and sagactl set it to nng's
 * (saga_tls_dial_url_ok); the pure code (the simulator) leaves it NULL. */
extern bool (*coord_config_url_check)(
    const char *url, char *why, size_t whylen);

/* coord_defs_load reads the nfiles YAML files, checks them and builds
 * their definitions. On success it returns 0 and sets *out (free it with
 * coord_defs_free). On invalid input it returns SAGA_ECONFIG and appends
 * every error found, in every file, to errs (errs may be NULL); *out is
 * left alone. SAGA_ENOMEM when out of memory (the errors found so far are
 * appended). A file that cannot be read gives "file: cannot read: <why>".
 * SAGA_EINTERNAL if the canonical JSON fails the writer's own checks (a
 * bug: no definition is loaded with strings that would not read back). */
int coord_defs_load(const char *const *files, size_t nfiles,
    coord_defs **out, coord_errs *errs);

/* coord_defs_free frees d and every definition it holds; NULL-safe. */
void coord_defs_free(coord_defs *d);

/* coord_errs_fini frees the messages of e and zeroes it; NULL-safe. */
void coord_errs_fini(coord_errs *e);

/* coord_defs_find returns the saga named name, or NULL. */
const saga_def *coord_defs_find(const coord_defs *d, const char *name);

/* coord_defs_participant returns the participant named name, or NULL. */
const saga_participant_def *coord_defs_participant(
    const coord_defs *d, const char *name);

/* coord_def_from_json rebuilds one pinned definition from its canonical
 * JSON (saga_def.json). Every field must be present; the checks are those
 * of the YAML loader except that participants are not looked up. The new
 * definition's json is the canonical JSON re-emitted (identical to the
 * input when the input is canonical), file is NULL, line, version 0 and
 * hash empty. Returns 0 and sets *out, SAGA_ECONFIG with the first error
 * ("json:line:column: message") in err (errlen bytes, may be 0),
 * SAGA_ENOMEM, or SAGA_EINTERNAL (as for coord_defs_load). */
int coord_def_from_json(
    const char *json, saga_def **out, char *err, size_t errlen);

/* coord_duration_parse reads a duration: a decimal number and a unit, ms,
 * s, m, h or d ("250ms", "2s", "1.5s", "5m", "1h", "1d"), that is a whole
 * number of milliseconds. Returns 0 and sets *ms, SAGA_EINVAL (no unit,
 * a sign, spaces, a fraction of a millisecond) or SAGA_ERANGE (more
 * milliseconds than an int64_t holds). */
int coord_duration_parse(const char *s, int64_t *ms);

#endif /* COORDINATOR_COORD_CONFIG_H */
