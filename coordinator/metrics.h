/* SPDX-License-Identifier: MIT */
/*
 * metrics: counters, gauges and histograms with labels, rendered in the
 * Prometheus text exposition format (version 0.0.4) and served over HTTP
 * with nng's HTTP server at /metrics.
 *
 * Families are registered once with their type and help text; a series is
 * a family plus a label set, written as the exposition format writes it
 * (`saga="create_order",state="COMPLETED"`, made with metrics_labels,
 * which escapes the values). Every call is thread-safe (one mutex): the
 * engine thread updates, the HTTP server's thread renders.
 */
#ifndef COORDINATOR_METRICS_H
#define COORDINATOR_METRICS_H

#include <stddef.h>

#include "proto_val.h"

typedef struct metrics metrics;

typedef enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
} metric_type;

/* metrics_alloc makes an empty registry. Returns 0 or SAGA_ENOMEM. */
int metrics_alloc(metrics **out);

/* metrics_free stops serving and frees everything; NULL-safe. */
void metrics_free(metrics *m);

/* metrics_family registers a family. Histograms get the buckets given
 * (upper bounds, increasing; NULL: latency buckets from 1 ms to 60 s).
 * Returns 0, SAGA_ENOMEM or SAGA_EEXIST. */
int metrics_family(metrics *m, const char *name, metric_type type,
    const char *help, const double *buckets, size_t nbuckets);

/* metrics_add adds v to a counter (or a gauge). */
void metrics_add(metrics *m, const char *name, const char *labels, double v);

/* metrics_set sets a gauge. */
void metrics_set(metrics *m, const char *name, const char *labels, double v);

/* metrics_observe records one observation of a histogram. */
void metrics_observe(
    metrics *m, const char *name, const char *labels, double v);

/* metrics_labels writes a label set into buf from NULL-terminated pairs of
 * name and value ("saga", "create_order", NULL), escaping the values as
 * the exposition format requires. Returns buf. */
char *metrics_labels(char *buf, size_t len, ...);

/* metrics_render appends the exposition text of every series to out.
 * Returns 0 or SAGA_ENOMEM. */
int metrics_render(metrics *m, proto_buf *out);

/* metrics_addr_check tells whether metrics_serve would take addr
 * (HOST:PORT or http://HOST:PORT). Returns 0 or SAGA_EINVAL with the
 * reason in err. */
int metrics_addr_check(const char *addr, char *err, size_t errlen);

/* metrics_serve serves GET /metrics on addr ("127.0.0.1:9100" or
 * "http://127.0.0.1:9100"). Returns 0, or SAGA_EINVAL / SAGA_EIO with the
 * reason in err. */
int metrics_serve(metrics *m, const char *addr, char *err, size_t errlen);

#endif /* COORDINATOR_METRICS_H */
