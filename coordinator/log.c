/* SPDX-License-Identifier: MIT */
/*
 * log: formatting of log lines. One write(2) per line so that lines of
 * several threads never interleave.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "log_text.h"
#include "proto_val.h"
#include "saga_err.h"

log_level          log_level_current = LOG_INFO;
static const char *log_program       = "saga";
static bool        log_json;

static const char *const log_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

int
log_set_level(const char *name)
{
	static const char *const lower[] = { "error", "warn", "info",
		"debug" };

	for (int i = 0; i < 4; i++) {
		if (strcmp(name, lower[i]) == 0) {
			log_level_current = (log_level) i;
			return (0);
		}
	}
	return (SAGA_EINVAL);
}

int
log_set_format(const char *name)
{
	if (strcmp(name, "text") == 0) {
		log_json = false;
		return (0);
	}
	if (strcmp(name, "json") == 0) {
		log_json = true;
		return (0);
	}
	return (SAGA_EINVAL);
}

void
log_set_program(const char *name)
{
	log_program = name;
}

/* Writes one JSON line: a map built with the protocol's builder and
 * rendered by libfyaml. */
static void
log_write_json(log_level level, const char *ts, const char *saga, int step,
    const char *trace, const char *msg)
{
	static const char *const levels[] = { "error", "warn", "info",
		"debug" };
	proto_obj *o  = NULL;
	int        rv = 0;

	if (proto_obj_alloc(&o) != 0) {
		return;
	}
	rv |= proto_obj_put_str(o, "ts", ts);
	rv |= proto_obj_put_str(o, "level", levels[level]);
	rv |= proto_obj_put_str(o, "program", log_program);
	if (saga != NULL) {
		rv |= proto_obj_put_str(o, "saga", saga);
		if (step >= 0) {
			rv |= proto_obj_put_int(o, "step", step);
		}
		if (trace != NULL && strlen(trace) >= 35) {
			rv |= proto_obj_put_strn(o, "trace_id", trace + 3, 32);
		}
	}
	if (rv == 0) {
		(void) log_emit_json(o, msg);
	}
	proto_obj_free(o);
}

void
log_write(log_level level, const char *saga, int step, const char *trace,
    const char *fmt, ...)
{
	char            line[2048];
	size_t          n = 0;
	struct timespec ts;
	struct tm       tm;
	va_list         ap;
	int             w;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n += strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_json) {
		char msg[2048];

		snprintf(line + n, sizeof(line) - n, ".%03ldZ",
		    ts.tv_nsec / 1000000);
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		log_write_json(level, line, saga, step, trace, msg);
		return;
	}
	w = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %-5s ",
	    ts.tv_nsec / 1000000, log_program, log_names[level]);
	n += (size_t) w;
	if (saga != NULL) {
		w = snprintf(line + n, sizeof(line) - n, "saga=%s ", saga);
		n += (size_t) w;
		if (step >= 0) {
			w = snprintf(line + n, sizeof(line) - n, "step=%d ",
			    step);
			n += (size_t) w;
		}
		if (trace != NULL && trace[0] != '\0') {
			/* The trace id is the second field of traceparent. */
			w = snprintf(line + n, sizeof(line) - n,
			    "trace=%.32s ",
			    strlen(trace) >= 35 ? trace + 3 : trace);
			n += (size_t) w;
		}
	}
	{
		char msg[2048];

		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		/* One line, whatever the texts from outside hold. */
		if (n < sizeof(line) - 1) {
			n += log_text_escape(
			    line + n, sizeof(line) - 1 - n, msg);
		}
	}
	if (n > sizeof(line) - 2) {
		n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	(void) !write(STDERR_FILENO, line, n);
}
