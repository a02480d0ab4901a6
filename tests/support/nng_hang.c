/* SPDX-License-Identifier: MIT */
/*
 * nng_hang: an LD_PRELOAD library for shutdown_test. With
 * SAGA_TEST_NNG_CLOSE_HANG set in the environment, nng_close never
 * returns, as libnng 1.5.2's does now and then when a socket is closed
 * while its pipes are busy; with SAGA_TEST_NNG_HTTP_STOP_HANG,
 * nng_http_server_stop never returns (it waits for the server's
 * connections as nng_close waits for a socket's pipes). Without them,
 * both are libnng's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

static void
nng_hang_if(const char *var)
{
	if (getenv(var) != NULL) {
		for (;;) {
			pause();
		}
	}
}

int
nng_close(nng_socket s)
{
	int (*real)(nng_socket);

	nng_hang_if("SAGA_TEST_NNG_CLOSE_HANG");
	*(void **) &real = dlsym(RTLD_NEXT, "nng_close");
	return (real != NULL ? real(s) : NNG_EINVAL);
}

void
nng_http_server_stop(nng_http_server *srv)
{
	void (*real)(nng_http_server *);

	nng_hang_if("SAGA_TEST_NNG_HTTP_STOP_HANG");
	*(void **) &real = dlsym(RTLD_NEXT, "nng_http_server_stop");
	if (real != NULL) {
		real(srv);
	}
}
