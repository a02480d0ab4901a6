/* SPDX-License-Identifier: MIT */
/*
 * nng_close_hang: an LD_PRELOAD library for shutdown_test. With
 * SAGA_TEST_NNG_CLOSE_HANG set in the environment, nng_close never
 * returns, as libnng 1.5.2's does now and then when a socket is closed
 * while its pipes are busy; without it, nng_close is libnng's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <nng/nng.h>

int
nng_close(nng_socket s)
{
	int (*real)(nng_socket);

	if (getenv("SAGA_TEST_NNG_CLOSE_HANG") != NULL) {
		for (;;) {
			pause();
		}
	}
	*(void **) &real = dlsym(RTLD_NEXT, "nng_close");
	return (real != NULL ? real(s) : NNG_EINVAL);
}
