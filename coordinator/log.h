/* SPDX-License-Identifier: MIT */
/*
 * log: the coordinator's log lines, on stderr.
 *
 * Plain text by default: "2026-11-24T15:09:37.123Z sagad INFO  saga=<id>
 * step=2 trace=<id> SAGA-COMPENSATE message"; JSON lines with
 * log_set_format("json"): {"ts": ..., "level": "info", "program": "sagad",
 * "saga": ..., "step": 2, "trace_id": ..., "event": "SAGA-COMPENSATE",
 * "msg": ...}, built as a protocol value and rendered by libfyaml (no JSON
 * written by hand). The level is checked before formatting. Lines about
 * one saga go through slog, which adds the saga id, the step and the trace
 * id, so that one order can be followed across processes. A message that
 * starts with an upper-case tag (SAGA-START, SAGA-COMPENSATE, DB-DOWN, ...)
 * names a stable operational event: in JSON it becomes "event".
 */
#ifndef COORDINATOR_LOG_H
#define COORDINATOR_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum log_level {
	LOG_ERROR = 0,
	LOG_WARN  = 1,
	LOG_INFO  = 2,
	LOG_DEBUG = 3,
} log_level;

/* log_level_current is the level below which lines are dropped. */
extern log_level log_level_current;

/* log_set_level sets the level from its name ("error", "warn", "info",
 * "debug"). Returns 0 or SAGA_EINVAL. */
int log_set_level(const char *name);

/* log_set_format chooses "text" (the default) or "json". Returns 0 or
 * SAGA_EINVAL. */
int log_set_format(const char *name);

/* log_set_program names the process in every line ("sagad"). */
void log_set_program(const char *name);

/* log_write formats and writes one line at level; use the macros. */
void log_write(log_level level, const char *saga, int step, const char *trace,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_enabled(lvl) ((lvl) <= log_level_current)

#define log_error(...) log_write(LOG_ERROR, NULL, -1, NULL, __VA_ARGS__)
#define log_warn(...)                                                    \
	do {                                                             \
		if (log_enabled(LOG_WARN))                               \
			log_write(LOG_WARN, NULL, -1, NULL, __VA_ARGS__); \
	} while (0)
#define log_info(...)                                                    \
	do {                                                             \
		if (log_enabled(LOG_INFO))                               \
			log_write(LOG_INFO, NULL, -1, NULL, __VA_ARGS__); \
	} while (0)
#define log_debug(...)                                                   \
	do {                                                             \
		if (log_enabled(LOG_DEBUG))                              \
			log_write(LOG_DEBUG, NULL, -1, NULL, __VA_ARGS__); \
	} while (0)

/* slog(level, id_text, step, trace, fmt, ...) logs a line about a saga. */
#define slog(lvl, id, step, trace, ...)                                  \
	do {                                                             \
		if (log_enabled(lvl))                                    \
			log_write(lvl, id, step, trace, __VA_ARGS__);    \
	} while (0)

#endif /* COORDINATOR_LOG_H */
