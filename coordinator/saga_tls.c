/* SPDX-License-Identifier: MIT */
/*
 * saga_tls: nng TLS configurations from PEM files. See saga_tls.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "saga_err.h"
#include "saga_tls.h"

bool
saga_tls_url(const char *url)
{
	return (strncmp(url, "tls+", 4) == 0);
}

/* Whether the parts of u past its host are what nng's tcp dialer and
 * listener take: a port 1..65535 and nothing else (no user, path, query
 * or fragment). */
static bool
saga_tls_tcp_parts_ok(const nng_url *u)
{
	char *end;
	long  port = strtol(u->u_port, &end, 10);

	return (u->u_port[0] != '\0' && *end == '\0' && port >= 1 &&
	    port <= 65535 && u->u_userinfo == NULL && u->u_query == NULL &&
	    u->u_fragment == NULL &&
	    (u->u_path == NULL || strcmp(u->u_path, "") == 0 ||
	        strcmp(u->u_path, "/") == 0));
}

/* Whether url is of nng's TCP transports, with or without TLS: tcp://,
 * tcp4://, tcp6:// and their tls+ forms. */
static bool
saga_tls_tcp_url(const char *url)
{
	static const char *const schemes[] = { "tcp://", "tcp4://",
		"tcp6://", "tls+tcp://", "tls+tcp4://", "tls+tcp6://" };

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strncmp(url, schemes[i], strlen(schemes[i])) == 0) {
			return (true);
		}
	}
	return (false);
}

bool
saga_tls_dial_url_ok(const char *url, char *why, size_t whylen)
{
	nng_url *u = NULL;
	bool     ok;
	int      rv;

	if (strncmp(url, "ipc://", 6) == 0) {
		/* The path goes into a Unix socket's address; nng refuses
		 * longer ones only when it makes the dialer (over 127
		 * bytes) or dials. */
		size_t max = sizeof(((struct sockaddr_un *) 0)->sun_path) - 1;

		if (strlen(url + 6) > max) {
			snprintf(why, whylen,
			    "an ipc:// path is at most %zu bytes (a Unix "
			    "socket's), this one has %zu",
			    max, strlen(url + 6));
			return (false);
		}
		return (true);
	}
	if (!saga_tls_tcp_url(url)) {
		return (true);
	}
	if ((rv = nng_url_parse(&u, url)) != 0) {
		snprintf(why, whylen, "%s", nng_strerror(rv));
		return (false);
	}
	/* A dialler needs a host: not empty, not the wildcard. */
	ok = saga_tls_tcp_parts_ok(u) && u->u_hostname[0] != '\0' &&
	    strcmp(u->u_hostname, "*") != 0;
	nng_url_free(u);
	if (!ok) {
		snprintf(why, whylen,
		    "expected a host and a port 1..65535, and nothing more");
	}
	return (ok);
}

bool
saga_tls_name_of(const char *url, char *name, size_t len)
{
	nng_url        *u = NULL;
	struct in6_addr a6;
	struct in_addr  a4;
	size_t          n;
	bool            ok;

	if (nng_url_parse(&u, url) != 0) {
		return (false);
	}
	snprintf(name, len, "%s", u->u_hostname);
	nng_url_free(u);
	/* A fully qualified name's last dot is not in certificates. */
	if ((n = strlen(name)) > 1 && name[n - 1] == '.') {
		name[n - 1] = '\0';
	}
	ok = name[0] != '\0' && inet_pton(AF_INET, name, &a4) != 1 &&
	    inet_pton(AF_INET6, name, &a6) != 1;
	return (ok);
}

int
saga_listen_url_check(
    const char *url, bool *loopback, char *why, size_t whylen)
{
	nng_url       *u = NULL;
	struct in_addr a4;
	bool           ok;
	int            rv;

	*loopback = false;
	if (strncmp(url, "ipc://", 6) == 0 ||
	    strncmp(url, "inproc://", 9) == 0) {
		*loopback = true;
		return (0);
	}
	if (!saga_tls_tcp_url(url)) {
		snprintf(why, whylen,
		    "%s: expected tcp://HOST:PORT, tls+tcp://HOST:PORT (or "
		    "tcp4, tcp6, tls+tcp4, tls+tcp6), ipc://PATH or "
		    "inproc://NAME",
		    url);
		return (SAGA_EINVAL);
	}
	if ((rv = nng_url_parse(&u, url)) != 0) {
		snprintf(why, whylen, "%s: %s", url, nng_strerror(rv));
		return (SAGA_EINVAL);
	}
	if ((ok = saga_tls_tcp_parts_ok(u))) {
		*loopback = strcmp(u->u_hostname, "localhost") == 0 ||
		    strcmp(u->u_hostname, "::1") == 0 ||
		    (inet_pton(AF_INET, u->u_hostname, &a4) == 1 &&
		        (ntohl(a4.s_addr) >> 24) == 127);
	}
	nng_url_free(u);
	if (!ok) {
		snprintf(why, whylen,
		    "%s: expected tcp://HOST:PORT or tls+tcp://HOST:PORT with "
		    "a port 1..65535 and nothing after it",
		    url);
		return (SAGA_EINVAL);
	}
	return (0);
}

/* Reads a whole file into a NUL-terminated string. */
static char *
saga_tls_read(const char *path, char *err, size_t errlen)
{
	FILE  *f = fopen(path, "rb");
	char  *buf = NULL;
	long   n;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (NULL);
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    n > 1024 * 1024 || fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t) n + 1)) == NULL ||
	    fread(buf, 1, (size_t) n, f) != (size_t) n) {
		snprintf(err, errlen, "%s: cannot read", path);
		free(buf);
		fclose(f);
		return (NULL);
	}
	buf[n] = '\0';
	fclose(f);
	return (buf);
}

int
saga_tls_config(nng_tls_config **out, bool server, const saga_tls_opts *o,
    char *err, size_t errlen)
{
	nng_tls_config *cfg = NULL;
	char           *cert = NULL, *key = NULL;
	int             rv;

	if (o == NULL || o->ca == NULL) {
		snprintf(err, errlen,
		    "a tls+tcp:// URL needs a CA (--tls-ca FILE) to verify "
		    "peers");
		return (SAGA_EINVAL);
	}
	if ((o->cert == NULL) != (o->key == NULL)) {
		snprintf(err, errlen,
		    "give both a certificate and its key (--tls-cert and "
		    "--tls-key)");
		return (SAGA_EINVAL);
	}
	if (server && o->cert == NULL) {
		snprintf(err, errlen,
		    "a TLS listener needs its certificate and key "
		    "(--tls-cert, --tls-key)");
		return (SAGA_EINVAL);
	}
	if ((rv = nng_tls_config_alloc(&cfg,
	         server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT)) != 0) {
		snprintf(err, errlen, "TLS: %s", nng_strerror(rv));
		return (SAGA_EINVAL);
	}
	if ((rv = nng_tls_config_ca_file(cfg, o->ca)) != 0) {
		snprintf(err, errlen, "CA file %s: %s", o->ca,
		    nng_strerror(rv));
		goto fail;
	}
	/* Mutual: both ends verify the other against the CA. */
	if ((rv = nng_tls_config_auth_mode(
	         cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0) {
		snprintf(err, errlen, "TLS: %s", nng_strerror(rv));
		goto fail;
	}
	if (o->cert != NULL) {
		if ((cert = saga_tls_read(o->cert, err, errlen)) == NULL ||
		    (key = saga_tls_read(o->key, err, errlen)) == NULL) {
			goto fail;
		}
		if ((rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) !=
		    0) {
			snprintf(err, errlen,
			    "certificate %s with key %s: %s", o->cert, o->key,
			    nng_strerror(rv));
			goto fail;
		}
	}
	if (!server && o->server_name != NULL &&
	    (rv = nng_tls_config_server_name(cfg, o->server_name)) != 0) {
		snprintf(err, errlen, "TLS server name: %s", nng_strerror(rv));
		goto fail;
	}
	free(cert);
	free(key);
	*out = cfg;
	return (0);
fail:
	free(cert);
	free(key);
	nng_tls_config_free(cfg);
	return (SAGA_EINVAL);
}

int
saga_tls_listen(nng_socket s, const char *url, const saga_tls_opts *tls,
    char *err, size_t errlen)
{
	nng_listener    l;
	nng_tls_config *cfg = NULL;
	int             rv;

	if ((rv = nng_listener_create(&l, s, url)) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", url,
		    nng_strerror(rv));
		return (SAGA_EIO);
	}
	if (saga_tls_url(url)) {
		if ((rv = saga_tls_config(&cfg, true, tls, err, errlen)) !=
		    0) {
			nng_listener_close(l);
			return (rv);
		}
		rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
		nng_tls_config_free(cfg); /* the listener holds it */
		if (rv != 0) {
			snprintf(err, errlen, "%s: %s", url, nng_strerror(rv));
			nng_listener_close(l);
			return (SAGA_EIO);
		}
	}
	if ((rv = nng_listener_start(l, 0)) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", url,
		    nng_strerror(rv));
		nng_listener_close(l);
		return (SAGA_EIO);
	}
	return (0);
}

int
saga_tls_dial(nng_socket s, const char *url, const saga_tls_opts *tls,
    int flags, char *err, size_t errlen)
{
	nng_dialer      d;
	nng_tls_config *cfg = NULL;
	int             rv;

	if ((rv = nng_dialer_create(&d, s, url)) != 0) {
		snprintf(err, errlen, "%s: %s", url, nng_strerror(rv));
		return (rv);
	}
	if (saga_tls_url(url)) {
		saga_tls_opts o = { NULL, NULL, NULL, NULL };
		char          host[256];

		/* The server's certificate must name the host dialled (a
		 * DNS name in its subjectAltName, or its CN): a certificate
		 * of the CA for another host is refused. Not for an address:
		 * see saga_tls_name_of. */
		if (tls != NULL) {
			o = *tls;
		}
		if (o.server_name == NULL &&
		    saga_tls_name_of(url, host, sizeof(host))) {
			o.server_name = host;
		}
		rv = saga_tls_config(&cfg, false, &o, err, errlen);
		if (rv != 0) {
			nng_dialer_close(d);
			return (NNG_EINVAL);
		}
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
		nng_tls_config_free(cfg);
		if (rv != 0) {
			snprintf(err, errlen, "%s: %s", url, nng_strerror(rv));
			nng_dialer_close(d);
			return (rv);
		}
	}
	if ((rv = nng_dialer_start(d, flags)) != 0) {
		snprintf(err, errlen, "%s: %s", url, nng_strerror(rv));
		nng_dialer_close(d);
		return (rv);
	}
	return (0);
}
