/* SPDX-License-Identifier: MIT */
/*
 * write_delay: an LD_PRELOAD library for writers_test. A write(2) to
 * standard error whose bytes hold SAGA_TEST_WRITE_DELAY_MATCH sleeps
 * SAGA_TEST_WRITE_DELAY_MS milliseconds (default 100) before it is
 * made. sagad logs each line with one write(2) (coordinator/log.c), so
 * this stretches the time between two points of its engine thread
 * around a given log line, as a busy machine can. Without the variable,
 * every write is libc's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

ssize_t
write(int fd, const void *buf, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);
	const char    *match = getenv("SAGA_TEST_WRITE_DELAY_MATCH");

	if (real == NULL) {
		*(void **) &real = dlsym(RTLD_NEXT, "write");
	}
	if (fd == STDERR_FILENO && match != NULL && match[0] != '\0' &&
	    memmem(buf, n, match, strlen(match)) != NULL) {
		const char     *ms = getenv("SAGA_TEST_WRITE_DELAY_MS");
		long            d  = ms != NULL ? strtol(ms, NULL, 10) : 100;
		struct timespec ts;

		d  = d < 0 ? 0 : d;
		ts = (struct timespec) { d / 1000, (d % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) != 0) {
		}
	}
	return (real(fd, buf, n));
}
