/* SPDX-License-Identifier: MIT */
/*
 * saga_tls: TLS configurations for nng links (tls+tcp:// URLs), mutual by
 * default: with a CA configured, a server refuses a peer whose certificate
 * is not signed by that CA, and a client refuses a server the same way and
 * presents its own certificate.
 */
#ifndef COORDINATOR_SAGA_TLS_H
#define COORDINATOR_SAGA_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

/* saga_tls_opts names the PEM files of one process: the CA that signs its
 * peers, and its own certificate and private key. */
typedef struct saga_tls_opts {
	const char *ca;
	const char *cert;
	const char *key;
	const char *server_name; /* client: the name to verify; NULL = none */
} saga_tls_opts;

/* saga_tls_url tells whether url is a TLS transport (tls+tcp://...). */
bool saga_tls_url(const char *url);

/* saga_tls_name_of sets name (len bytes) to the host of url that a
 * client checks the server's certificate against, without a final dot,
 * and returns true; false when there is none to check: the host is an
 * address, which mbedtls 2.28 (nng's TLS on Debian 12) cannot match
 * against a certificate's IP addresses, only against its DNS names and
 * CN. Such an endpoint is verified against the CA only. */
bool saga_tls_name_of(const char *url, char *name, size_t len);

/* saga_tls_dial_url_ok tells whether nng can dial url: parsed by nng,
 * and for tcp:// and tls+tcp:// a host (not the wildcard) and a port
 * 1..65535 and nothing more, which nng's dialer wants and its parser does
 * not check (tcp://h/x:1, tcp://user@h:1); for ipc:// a path that fits
 * a Unix socket's address. False with the reason in why. Opens no
 * socket. For coord_config_url_check. */
bool saga_tls_dial_url_ok(const char *url, char *why, size_t whylen);

/* saga_listen_url_check checks url for a listener: tcp://HOST:PORT or
 * tls+tcp://HOST:PORT (HOST a name, an address, [IPv6], or empty or * for
 * every address), ipc://PATH or inproc://NAME, schemes in lower case as
 * the rest of the project reads them. *loopback tells whether only this
 * machine can reach it (ipc, inproc, 127.0.0.0/8, ::1, localhost).
 * Returns 0, or SAGA_EINVAL with the reason in why. */
int saga_listen_url_check(
    const char *url, bool *loopback, char *why, size_t whylen);

/* saga_tls_config builds a configuration for a server (mutual: client
 * certificates required and verified against o->ca) or a client (the
 * server verified against o->ca, o->cert presented). Returns 0, or
 * SAGA_EINVAL with the reason in err (a file that cannot be read, a
 * certificate or key nng rejects, a CA missing). */
int saga_tls_config(nng_tls_config **out, bool server,
    const saga_tls_opts *o, char *err, size_t errlen);

/* saga_tls_listen listens on url with tls (when url is tls+tcp). Returns 0,
 * SAGA_EINVAL or SAGA_EIO (err says why). */
int saga_tls_listen(nng_socket s, const char *url, const saga_tls_opts *tls,
    char *err, size_t errlen);

/* saga_tls_dial dials url (flags as nng_dial) with tls when url is
 * tls+tcp. Returns 0 or the nng error (err says why). */
int saga_tls_dial(nng_socket s, const char *url, const saga_tls_opts *tls,
    int flags, char *err, size_t errlen);

#endif /* COORDINATOR_SAGA_TLS_H */
