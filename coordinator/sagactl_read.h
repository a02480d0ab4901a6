/* SPDX-License-Identifier: MIT */
/*
 * sagactl_read: the read-only commands that work on many sagas or on the
 * definitions: list, defs, stats, validate. They read the saga log
 * directly from PostgreSQL (validate reads files only), so they work
 * while sagad is down.
 */
#ifndef COORDINATOR_SAGACTL_READ_H
#define COORDINATOR_SAGACTL_READ_H

#include <libpq-fe.h>

#include "sagactl.h"

/* Columns of sagactl_read_select's result. */
enum {
	SAGACTL_COL_ID,
	SAGACTL_COL_SAGA,
	SAGACTL_COL_VERSION,
	SAGACTL_COL_STATE,
	SAGACTL_COL_STEP_INDEX,
	SAGACTL_COL_STEP_NAME,
	SAGACTL_COL_KIND,
	SAGACTL_COL_ATTEMPT,
	SAGACTL_COL_KEY,
	SAGACTL_COL_ERROR,
	SAGACTL_COL_CREATED,
	SAGACTL_COL_UPDATED,
};

/* sagactl_read_select runs the query of list for the filters f, newest
 * first, with at most limit rows (0: all). Returns the result (columns
 * above), or NULL after printing the error. */
PGresult *sagactl_read_select(
    const sagactl_ctx *ctx, PGconn *c, const sagactl_filter *f, long limit);

/* sagactl_read_list: sagactl list. Returns the exit status. */
int sagactl_read_list(sagactl_ctx *ctx, int argc, char **argv);

/* sagactl_read_defs: sagactl defs [NAME]. */
int sagactl_read_defs(sagactl_ctx *ctx, int argc, char **argv);

/* sagactl_read_stats: sagactl stats. */
int sagactl_read_stats(sagactl_ctx *ctx, int argc, char **argv);

/* sagactl_read_validate: sagactl validate FILE... */
int sagactl_read_validate(sagactl_ctx *ctx, int argc, char **argv);

#endif /* COORDINATOR_SAGACTL_READ_H */
