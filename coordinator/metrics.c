/* SPDX-License-Identifier: MIT */
/*
 * metrics: the registry and its exposition. See metrics.h.
 *
 * DESIGN: a family holds its series in a small hash table keyed by the
 * label text; families are few and known at start-up, series are bounded
 * by the definitions (saga x step x outcome). Rendering walks families in
 * registration order and series in creation order, so that the output is
 * stable for the people and tests reading it.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "metrics.h"
#include "saga_err.h"

#define METRICS_MAX_BUCKETS 24

static const double metrics_latency_buckets[] = { 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };

typedef struct metric_series {
	struct metric_series *next;  /* in creation order */
	struct metric_series *hnext; /* hash chain */
	char                 *labels;
	double                value; /* counter, gauge */
	double                sum;   /* histogram */
	unsigned long long    count;
	unsigned long long    buckets[METRICS_MAX_BUCKETS];
} metric_series;

typedef struct metric_family {
	struct metric_family *next;
	char                 *name;
	char                 *help;
	metric_type           type;
	double                bounds[METRICS_MAX_BUCKETS];
	size_t                nbounds;
	metric_series        *first;
	metric_series        *last;
	metric_series        *table[64];
} metric_family;

struct metrics {
	pthread_mutex_t   mtx;
	metric_family    *first;
	metric_family    *last;
	nng_http_server  *srv;
	nng_http_handler *h;
	bool              started; /* srv started by us (it may be shared) */
};

int
metrics_alloc(metrics **out)
{
	metrics *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		return (SAGA_ENOMEM);
	}
	pthread_mutex_init(&m->mtx, NULL);
	*out = m;
	return (0);
}

/* metrics_unserve stops the HTTP server, if any, and frees its handler
 * here and now: the server's own release frees what it holds on nng's
 * reaper thread, later, and a process that exits first leaves it behind.
 * nng shares one server among the holders of an address: a server that
 * this one did not start is not stopped. */
static void
metrics_unserve(metrics *m)
{
	if (m->started) {
		nng_http_server_stop(m->srv);
		m->started = false;
	}
	if (m->h != NULL) {
		/* Deleting it hands the server's reference back to us;
		 * a handler that was never added is ours already. */
		if (m->srv != NULL) {
			(void) nng_http_server_del_handler(m->srv, m->h);
		}
		nng_http_handler_free(m->h);
		m->h = NULL;
	}
	if (m->srv != NULL) {
		nng_http_server_release(m->srv);
		m->srv = NULL;
	}
}

void
metrics_free(metrics *m)
{
	metric_family *f, *fn;

	if (m == NULL) {
		return;
	}
	metrics_unserve(m);
	for (f = m->first; f != NULL; f = fn) {
		metric_series *s, *sn;

		fn = f->next;
		for (s = f->first; s != NULL; s = sn) {
			sn = s->next;
			free(s->labels);
			free(s);
		}
		free(f->name);
		free(f->help);
		free(f);
	}
	pthread_mutex_destroy(&m->mtx);
	free(m);
}

static metric_family *
metrics_find(metrics *m, const char *name)
{
	for (metric_family *f = m->first; f != NULL; f = f->next) {
		if (strcmp(f->name, name) == 0) {
			return (f);
		}
	}
	return (NULL);
}

int
metrics_family(metrics *m, const char *name, metric_type type,
    const char *help, const double *buckets, size_t nbuckets)
{
	metric_family *f;
	int            rv = 0;

	if (buckets == NULL) {
		buckets  = metrics_latency_buckets;
		nbuckets = sizeof(metrics_latency_buckets) / sizeof(double);
	}
	if (nbuckets > METRICS_MAX_BUCKETS) {
		return (SAGA_EINVAL);
	}
	pthread_mutex_lock(&m->mtx);
	if (metrics_find(m, name) != NULL) {
		rv = SAGA_EEXIST;
	} else if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->name = strdup(name)) == NULL ||
	    (f->help = strdup(help)) == NULL) {
		if (f != NULL) {
			free(f->name);
		}
		free(f);
		rv = SAGA_ENOMEM;
	} else {
		f->type    = type;
		f->nbounds = type == METRIC_HISTOGRAM ? nbuckets : 0;
		memcpy(f->bounds, buckets, f->nbounds * sizeof(double));
		if (m->last != NULL) {
			m->last->next = f;
		} else {
			m->first = f;
		}
		m->last = f;
	}
	pthread_mutex_unlock(&m->mtx);
	return (rv);
}

static size_t
metrics_hash(const char *s)
{
	size_t h = 5381;

	for (; *s; s++) {
		h = h * 33 + (unsigned char) *s;
	}
	return (h);
}

/* Finds or makes the series; caller holds the mutex. NULL when the family
 * is unknown or memory ran out (the update is dropped). */
static metric_series *
metrics_series(metrics *m, const char *name, const char *labels)
{
	metric_family *f = metrics_find(m, name);
	metric_series *s;
	size_t         h;

	if (f == NULL) {
		return (NULL);
	}
	if (labels == NULL) {
		labels = "";
	}
	h = metrics_hash(labels) % 64;
	for (s = f->table[h]; s != NULL; s = s->hnext) {
		if (strcmp(s->labels, labels) == 0) {
			return (s);
		}
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->labels = strdup(labels)) == NULL) {
		free(s);
		return (NULL);
	}
	s->hnext    = f->table[h];
	f->table[h] = s;
	if (f->last != NULL) {
		f->last->next = s;
	} else {
		f->first = s;
	}
	f->last = s;
	return (s);
}

void
metrics_add(metrics *m, const char *name, const char *labels, double v)
{
	metric_series *s;

	if (m == NULL) {
		return;
	}
	pthread_mutex_lock(&m->mtx);
	if ((s = metrics_series(m, name, labels)) != NULL) {
		s->value += v;
	}
	pthread_mutex_unlock(&m->mtx);
}

void
metrics_set(metrics *m, const char *name, const char *labels, double v)
{
	metric_series *s;

	if (m == NULL) {
		return;
	}
	pthread_mutex_lock(&m->mtx);
	if ((s = metrics_series(m, name, labels)) != NULL) {
		s->value = v;
	}
	pthread_mutex_unlock(&m->mtx);
}

void
metrics_observe(metrics *m, const char *name, const char *labels, double v)
{
	metric_family *f;
	metric_series *s;

	if (m == NULL) {
		return;
	}
	pthread_mutex_lock(&m->mtx);
	if ((s = metrics_series(m, name, labels)) != NULL &&
	    (f = metrics_find(m, name)) != NULL) {
		for (size_t i = 0; i < f->nbounds; i++) {
			if (v <= f->bounds[i]) {
				s->buckets[i]++;
			}
		}
		s->sum += v;
		s->count++;
	}
	pthread_mutex_unlock(&m->mtx);
}

char *
metrics_labels(char *buf, size_t len, ...)
{
	size_t      n = 0;
	const char *name;
	va_list     ap;

	buf[0] = '\0';
	va_start(ap, len);
	while ((name = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);

		if (v == NULL) {
			v = "";
		}
		size_t start;

		n += (size_t) snprintf(buf + n, n < len ? len - n : 0,
		    "%s%s=\"", n > 0 ? "," : "", name);
		start = n;
		/* The exposition format escapes \, " and line feeds. */
		for (; *v && n + 3 < len; v++) {
			if (*v == '\\' || *v == '"') {
				buf[n++] = '\\';
				buf[n++] = *v;
			} else if (*v == '\n') {
				buf[n++] = '\\';
				buf[n++] = 'n';
			} else {
				buf[n++] = *v;
			}
		}
		if (*v != '\0' && n < len) {
			/* Cut: not inside a UTF-8 character, which would
			 * make the scraper refuse the whole exposition. */
			buf[n] = '\0';
			n      = start + strlen(proto_utf8_trim(buf + start));
		}
		if (n + 1 < len) {
			buf[n++] = '"';
		}
		buf[n < len ? n : len - 1] = '\0';
	}
	va_end(ap);
	return (buf);
}

static int
metrics_printf(proto_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
metrics_printf(proto_buf *out, const char *fmt, ...)
{
	char   *line = NULL;
	va_list ap;
	int     n, rv;

	/* Whole, however long: a line cut to a buffer loses its line
	 * feed, and the next line runs into it. */
	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0) {
		return (SAGA_ENOMEM);
	}
	rv = proto_buf_append(out, line, (size_t) n);
	free(line);
	return (rv);
}

int
metrics_render(metrics *m, proto_buf *out)
{
	static const char *types[] = { "counter", "gauge", "histogram" };
	int                rv      = 0;

	pthread_mutex_lock(&m->mtx);
	for (metric_family *f = m->first; f != NULL && rv == 0; f = f->next) {
		rv |= metrics_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
		    f->name, f->help, f->name, types[f->type]);
		for (metric_series *s = f->first; s != NULL && rv == 0;
		     s = s->next) {
			const char *sep = s->labels[0] ? "," : "";

			/* 15 digits: exact for the integers a counter
			 * reaches (10 wrote 12345678901 as 1.23456789e+10),
			 * without the noise of 17 (0.1 as
			 * 0.10000000000000001). */
			if (f->type != METRIC_HISTOGRAM) {
				rv |= metrics_printf(out, "%s%s%s%s %.15g\n",
				    f->name, s->labels[0] ? "{" : "", s->labels,
				    s->labels[0] ? "}" : "", s->value);
				continue;
			}
			for (size_t i = 0; i < f->nbounds; i++) {
				rv |= metrics_printf(out,
				    "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name,
				    s->labels, sep, f->bounds[i], s->buckets[i]);
			}
			rv |= metrics_printf(out,
			    "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name,
			    s->labels, sep, s->count);
			rv |= metrics_printf(out, "%s_sum%s%s%s %.15g\n",
			    f->name, s->labels[0] ? "{" : "", s->labels,
			    s->labels[0] ? "}" : "", s->sum);
			rv |= metrics_printf(out, "%s_count%s%s%s %llu\n",
			    f->name, s->labels[0] ? "{" : "", s->labels,
			    s->labels[0] ? "}" : "", s->count);
		}
	}
	pthread_mutex_unlock(&m->mtx);
	return (rv == 0 ? 0 : SAGA_ENOMEM);
}

/* Runs on an nng thread for GET /metrics. */
static void
metrics_http_cb(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	metrics          *m = nng_http_handler_get_data(h);
	nng_http_res     *res;
	proto_buf         b;

	proto_buf_init(&b);
	if (metrics_render(m, &b) != 0 || nng_http_res_alloc(&res) != 0) {
		proto_buf_fini(&b);
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_http_res_set_header(
	    res, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	if (nng_http_res_copy_data(res, b.data, b.len) != 0) {
		nng_http_res_free(res);
		proto_buf_fini(&b);
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	proto_buf_fini(&b);
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

/* Parses addr (HOST:PORT or http://HOST:PORT) into *u. Returns 0 or
 * SAGA_EINVAL with the reason in err. */
static int
metrics_addr_parse(const char *addr, nng_url **u, char *err, size_t errlen)
{
	char url[256];
	int  rv;

	snprintf(url, sizeof(url), "%s%s",
	    strstr(addr, "://") != NULL ? "" : "http://", addr);
	if ((rv = nng_url_parse(u, url)) != 0) {
		snprintf(err, errlen, "--metrics-listen %s: %s", addr,
		    nng_strerror(rv));
		return (SAGA_EINVAL);
	}
	if (strcmp((*u)->u_scheme, "http") != 0) {
		/* nng would take https:// and serve nothing: the metrics
		 * server has no TLS configuration. */
		snprintf(err, errlen,
		    "--metrics-listen %s: expected HOST:PORT or "
		    "http://HOST:PORT (plain HTTP only)",
		    addr);
		nng_url_free(*u);
		*u = NULL;
		return (SAGA_EINVAL);
	}
	return (0);
}

int
metrics_addr_check(const char *addr, char *err, size_t errlen)
{
	nng_url *u = NULL;
	int      rv;

	if ((rv = metrics_addr_parse(addr, &u, err, errlen)) == 0) {
		nng_url_free(u);
	}
	return (rv);
}

int
metrics_serve(metrics *m, const char *addr, char *err, size_t errlen)
{
	nng_url *u = NULL;
	int      rv;

	if ((rv = metrics_addr_parse(addr, &u, err, errlen)) != 0) {
		return (rv);
	}
	rv = nng_http_server_hold(&m->srv, u);
	nng_url_free(u);
	if (rv != 0) {
		m->srv = NULL;
		goto fail;
	}
	if ((rv = nng_http_handler_alloc(&m->h, "/metrics", metrics_http_cb)) !=
	    0) {
		m->h = NULL;
		goto fail;
	}
	if ((rv = nng_http_handler_set_data(m->h, m, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(m->srv, m->h)) != 0) {
		goto fail;
	}
	if ((rv = nng_http_server_start(m->srv)) != 0) {
		goto fail;
	}
	m->started = true;
	return (0);

fail:
	snprintf(err, errlen, "--metrics-listen %s: %s", addr,
	    nng_strerror(rv));
	metrics_unserve(m);
	return (SAGA_EIO);
}
