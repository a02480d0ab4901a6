/* SPDX-License-Identifier: MIT */
/*
 * saga_tls_check: what nng's TLS configuration does not check of a
 * certificate and its key (for sagad and the participant library, which
 * then links mbedx509 and mbedcrypto: mbedtls, which nng's TLS is built
 * on, does the work).
 */
#ifndef COORDINATOR_SAGA_TLS_CHECK_H
#define COORDINATOR_SAGA_TLS_CHECK_H

#include <stddef.h>

/* saga_tls_check_pair tells whether the PEM private key in file key
 * belongs to the certificate in file cert. nng takes a mismatched pair
 * without a word, and then every handshake fails ("Cryptographic error"
 * at the peer, nothing in the log of sagad or of the participant).
 * Returns 0, or SAGA_EINVAL with the reason in err (naming both files
 * for a mismatch). */
int saga_tls_check_pair(
    const char *cert, const char *key, char *err, size_t errlen);

#endif /* COORDINATOR_SAGA_TLS_CHECK_H */
