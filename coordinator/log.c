/* SPDX-License-Identifier: MIT */
/*
 * log: formatting of log lines. One write(2) per line so that lines of
 * several threads never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "saga_err.h"

log_level          log_level_current = LOG_INFO;
static const char *log_program       = "saga";

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

void
log_set_program(const char *name)
{
	log_program = name;
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
	va_start(ap, fmt);
	w = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (w < 0) {
		w = 0;
	}
	n += (size_t) w;
	if (n > sizeof(line) - 2) {
		n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	(void) !write(STDERR_FILENO, line, n);
}
