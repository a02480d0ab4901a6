/* SPDX-License-Identifier: MIT */
/*
 * clock_step: an LD_PRELOAD library for clock_test. clock_gettime of
 * CLOCK_REALTIME returns the real time plus the milliseconds written in
 * the file SAGA_TEST_CLOCK_FILE (a signed integer, read at each call), as
 * a step of the wall clock (NTP, an operator's date -s, a resumed virtual
 * machine) moves it for the process. Without the variable, or the file,
 * every clock is libc's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int (*real_gettime)(clockid_t, struct timespec *);

/* Read at each call: a call made after the test wrote the file sees the
 * step. */
static int64_t
clock_step_offset(void)
{
	const char *path = getenv("SAGA_TEST_CLOCK_FILE");
	long long   v    = 0;
	FILE       *f;

	if (path == NULL || (f = fopen(path, "r")) == NULL) {
		return (0);
	}
	if (fscanf(f, "%lld", &v) != 1) {
		v = 0;
	}
	fclose(f);
	return ((int64_t) v);
}

int
clock_gettime(clockid_t clk, struct timespec *ts)
{
	int64_t off, ns;
	int     rv;

	if (real_gettime == NULL) {
		*(void **) &real_gettime = dlsym(RTLD_NEXT, "clock_gettime");
	}
	if ((rv = real_gettime(clk, ts)) != 0 || clk != CLOCK_REALTIME ||
	    (off = clock_step_offset()) == 0) {
		return (rv);
	}
	ns = (int64_t) ts->tv_sec * 1000000000 + ts->tv_nsec +
	    off * 1000000;
	ts->tv_sec  = (time_t) (ns / 1000000000);
	ts->tv_nsec = (long) (ns % 1000000000);
	return (0);
}
