/* SPDX-License-Identifier: MIT */
/*
 * sagactl_read: list, defs, stats and validate. See sagactl_read.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_config.h"
#include "proto_json.h"
#include "saga_engine.h"
#include "saga_err.h"
#include "saga_tls.h"
#include "sagactl_db.h"
#include "sagactl_read.h"

/* The query of list, built together with its parameters so that every
 * value is a parameter. */
typedef struct sagactl_query {
	char        sql[8192];
	size_t      len;
	bool        overflow; /* sql was too small: a bug */
	const char *params[16];
	char        store[2][64];
	int         n;
} sagactl_query;

static void
sagactl_query_add(sagactl_query *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sagactl_query_add(sagactl_query *q, const char *fmt, ...)
{
	va_list ap;
	int     w;

	va_start(ap, fmt);
	w = vsnprintf(q->sql + q->len, sizeof(q->sql) - q->len, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t) w >= sizeof(q->sql) - q->len) {
		q->overflow = true;
		return;
	}
	q->len += (size_t) w;
}

/* Returns the number of the parameter $N that holds value. */
static int
sagactl_query_param(sagactl_query *q, const char *value)
{
	q->params[q->n] = value;
	return (++q->n);
}

/* The distinct states of f, in the order given, into states. Returns how
 * many. */
static size_t
sagactl_read_states_of(const sagactl_filter *f, const char **states)
{
	size_t n = 0;

	for (size_t i = 0; i < f->nstates; i++) {
		size_t k = 0;

		while (k < n && strcmp(states[k], f->states[i]) != 0) {
			k++;
		}
		if (k == n) {
			states[n++] = f->states[i];
		}
	}
	return (n);
}

/* The sagas in the state of parameter $pstate (any state when 0) that
 * match the other conditions cond ("" for none), newest first, at most
 * limit (parameter $plim, no limit when 0). In that order, a state's
 * sagas are the first entries of the index (state, created_at), and all
 * sagas those of (created_at, id) read backwards (migration 004): the
 * scan stops after limit rows, whatever the size of the log. */
static void
sagactl_read_branch(sagactl_query *q, int pstate, const char *cond, int plim)
{
	sagactl_query_add(q,
	    "SELECT i.id, i.saga_name, i.saga_version, i.state,"
	    " i.current_step, i.attempt, i.business_key, i.last_error,"
	    " i.created_at, i.updated_at FROM saga_instance i");
	if (pstate > 0) {
		sagactl_query_add(q, " WHERE i.state = $%d%s%s", pstate,
		    cond[0] != '\0' ? " AND " : "", cond);
	} else if (cond[0] != '\0') {
		sagactl_query_add(q, " WHERE %s", cond);
	}
	sagactl_query_add(q, " ORDER BY i.created_at DESC, i.id DESC");
	if (plim > 0) {
		sagactl_query_add(q, " LIMIT $%d::bigint", plim);
	}
}

/* Appends to cond (len bytes) the condition fmt on parameter $p. */
static void
sagactl_read_cond(char *cond, size_t len, const char *fmt, int p)
{
	size_t n = strlen(cond);

	if (n > 0) {
		n += (size_t) snprintf(cond + n, len - n, " AND ");
	}
	if (n < len) {
		snprintf(cond + n, len - n, fmt, p);
	}
}

/* Builds into q the query of list for the filters f, newest first, at
 * most limit rows (0: all), after the text before ("" or a DECLARE).
 * Returns 0, or SAGACTL_EXIT_FAIL after printing the error. */
static int
sagactl_read_build(const sagactl_ctx *ctx, const sagactl_filter *f,
    long limit, const char *before, sagactl_query *q)
{
	const char *states[6];
	size_t      nstates;
	int         pstate[6], plim = 0, masked;
	char        cond[256] = "";

	memset(q, 0, sizeof(*q));
	sagactl_query_add(q, "%s", before);
	nstates = sagactl_read_states_of(f, states);
	/* Every state: no condition on the state at all. */
	if (nstates == 6) {
		nstates = 0;
	}
	for (size_t i = 0; i < nstates; i++) {
		pstate[i] = sagactl_query_param(q, states[i]);
	}
	if (f->saga != NULL) {
		sagactl_read_cond(cond, sizeof(cond), "i.saga_name = $%d",
		    sagactl_query_param(q, f->saga));
	}
	if (f->key != NULL) {
		sagactl_read_cond(cond, sizeof(cond), "i.business_key = $%d",
		    sagactl_query_param(q, f->key));
	}
	if (f->since_ms > 0) {
		snprintf(q->store[0], sizeof(q->store[0]), "%lld",
		    (long long) f->since_ms);
		sagactl_read_cond(cond, sizeof(cond),
		    "i.created_at >= to_timestamp($%d::double precision / "
		    "1000)",
		    sagactl_query_param(q, q->store[0]));
	}
	if (limit > 0) {
		snprintf(q->store[1], sizeof(q->store[1]), "%ld", limit);
		plim = sagactl_query_param(q, q->store[1]);
	}
	masked = sagactl_query_param(q, SAGA_DEF_REDACTED);
	/* The inner query finds the sagas through the indexes (see
	 * sagactl_read_branch; several states: the newest of each, merged);
	 * the outer one adds the step's name and kind for those rows only,
	 * and masks the business key of the sagas whose pinned definition
	 * redacts its field. */
	sagactl_query_add(q,
	    "SELECT s.id::text, s.saga_name, s.saga_version, s.state,"
	    " s.current_step, d.definition->'steps'->s.current_step->>'name',"
	    " (SELECT e.kind FROM saga_event e WHERE e.saga_id = s.id"
	    "  AND e.step IS NOT NULL ORDER BY e.seq DESC LIMIT 1),"
	    " s.attempt,"
	    " CASE WHEN s.business_key IS NOT NULL"
	    "  AND d.definition->'redact' ? (d.definition->>'business_key')"
	    "  THEN $%d::text"
	    "  ELSE s.business_key END,"
	    " s.last_error,"
	    " (extract(epoch FROM s.created_at) * 1000)::bigint,"
	    " (extract(epoch FROM s.updated_at) * 1000)::bigint"
	    " FROM (",
	    masked);
	if (nstates <= 1) {
		sagactl_read_branch(
		    q, nstates == 1 ? pstate[0] : 0, cond, plim);
	} else {
		/* An IN list (or = ANY) would read the index in no order:
		 * every saga of those states, then a sort. */
		sagactl_query_add(q, "SELECT u.* FROM (");
		for (size_t i = 0; i < nstates; i++) {
			sagactl_query_add(
			    q, "%s(", i > 0 ? " UNION ALL " : "");
			sagactl_read_branch(q, pstate[i], cond, plim);
			sagactl_query_add(q, ")");
		}
		sagactl_query_add(
		    q, ") u ORDER BY u.created_at DESC, u.id DESC");
		if (plim > 0) {
			sagactl_query_add(q, " LIMIT $%d::bigint", plim);
		}
	}
	sagactl_query_add(q,
	    ") s"
	    " LEFT JOIN saga_definition d ON d.name = s.saga_name"
	    "  AND d.version = s.saga_version"
	    " ORDER BY s.created_at DESC, s.id DESC");
	if (q->overflow) {
		return (sagactl_error(
		    ctx, "internal error: the query of list is too long"));
	}
	return (0);
}

PGresult *
sagactl_read_select(
    const sagactl_ctx *ctx, PGconn *c, const sagactl_filter *f, long limit)
{
	sagactl_query q;

	if (sagactl_read_build(ctx, f, limit, "", &q) != 0) {
		return (NULL);
	}
	return (sagactl_db_query(ctx, c, q.sql, q.n, q.params));
}

/* The STEP cell of list: the step name, "(comp)" for a compensation;
 * nothing for a saga whose steps are all done. */
static void
sagactl_read_step_text(const PGresult *r, int row, char *buf, size_t len)
{
	const char *state = sagactl_db_str(r, row, SAGACTL_COL_STATE);
	const char *name  = sagactl_db_str(r, row, SAGACTL_COL_STEP_NAME);
	int64_t     kind  = sagactl_db_i64(r, row, SAGACTL_COL_KIND, -1);

	if (strcmp(state, "COMPLETED") == 0
	    || strcmp(state, "COMPENSATED") == 0) {
		snprintf(buf, len, "-");
		return;
	}
	if (name == NULL) {
		snprintf(buf, len, "#%s",
		    PQgetvalue(r, row, SAGACTL_COL_STEP_INDEX));
	} else {
		snprintf(buf, len, "%s", name);
	}
	if (kind == SAGA_KIND_COMP) {
		size_t n = strlen(buf);

		snprintf(buf + n, len - n, " (comp)");
	}
}

static const char *
sagactl_read_kind_name(int64_t kind)
{
	return (kind == SAGA_KIND_COMP     ? "compensation"
	        : kind == SAGA_KIND_ACTION ? "action"
	                                   : NULL);
}

/* One saga of list as a JSON object. */
static int
sagactl_read_list_obj(
    const sagactl_ctx *ctx, const PGresult *r, int row, proto_obj *o)
{
	const char *state = sagactl_db_str(r, row, SAGACTL_COL_STATE);
	bool        done  = strcmp(state, "COMPLETED") == 0
	    || strcmp(state, "COMPENSATED") == 0;
	int64_t created = sagactl_db_i64(r, row, SAGACTL_COL_CREATED, 0);
	int     rv      = 0;

	proto_obj_reset(o);
	rv |= proto_obj_put_str(
	    o, "id", sagactl_db_str(r, row, SAGACTL_COL_ID));
	rv |= proto_obj_put_str(
	    o, "saga", sagactl_db_str(r, row, SAGACTL_COL_SAGA));
	rv |= proto_obj_put_int(
	    o, "version", sagactl_db_i64(r, row, SAGACTL_COL_VERSION, 0));
	rv |= proto_obj_put_str(o, "state", state);
	if (done) {
		rv |= proto_obj_put_nil(o, "step");
		rv |= proto_obj_put_nil(o, "step_index");
		rv |= proto_obj_put_nil(o, "kind");
	} else {
		int64_t kind = sagactl_db_i64(r, row, SAGACTL_COL_KIND, -1);

		rv |= sagactl_out_put_str(
		    o, "step", sagactl_db_str(r, row, SAGACTL_COL_STEP_NAME));
		rv |= proto_obj_put_int(o, "step_index",
		    sagactl_db_i64(r, row, SAGACTL_COL_STEP_INDEX, 0));
		rv |= sagactl_out_put_str(
		    o, "kind", sagactl_read_kind_name(kind));
	}
	rv |= proto_obj_put_int(
	    o, "attempt", sagactl_db_i64(r, row, SAGACTL_COL_ATTEMPT, 0));
	rv |= sagactl_out_put_str(
	    o, "business_key", sagactl_db_str(r, row, SAGACTL_COL_KEY));
	rv |= sagactl_out_put_str(
	    o, "last_error", sagactl_db_str(r, row, SAGACTL_COL_ERROR));
	rv |= sagactl_out_put_time(o, "created_at", created);
	rv |= sagactl_out_put_time(
	    o, "updated_at", sagactl_db_i64(r, row, SAGACTL_COL_UPDATED, 0));
	rv |= proto_obj_put_int(o, "age_ms", ctx->now_ms - created);
	return (rv != 0 ? SAGA_ENOMEM : 0);
}

/* How many rows list reads at a time, whatever --limit says: its memory
 * is bounded by one page (a row takes a few hundred bytes). */
#define SAGACTL_READ_PAGE 1000
#define SAGACTL_READ_STR_(x) #x
#define SAGACTL_READ_STR(x) SAGACTL_READ_STR_(x)

/* What list has printed so far, page after page. */
typedef struct sagactl_read_lister {
	const sagactl_ctx *ctx;
	sagactl_table     *t; /* human: made with the first row */
	sagactl_jlist      jl; /* --json: opened with the first page */
	bool               jopen;
	proto_obj         *o; /* --json: one saga */
	long               rows; /* printed */
} sagactl_read_lister;

/* Adds row i of r to the human table. */
static int
sagactl_read_list_row(const sagactl_ctx *ctx, sagactl_table *t,
    const PGresult *r, int i)
{
	const char *state = sagactl_db_str(r, i, SAGACTL_COL_STATE);
	char        step[256], age[32];
	int         rv = 0;

	sagactl_read_step_text(r, i, step, sizeof(step));
	sagactl_out_age(
	    ctx->now_ms - sagactl_db_i64(r, i, SAGACTL_COL_CREATED, 0), age,
	    sizeof(age));
	rv |= sagactl_table_add(
	    t, sagactl_db_str(r, i, SAGACTL_COL_ID), SAGACTL_S_NONE);
	rv |= sagactl_table_add(
	    t, sagactl_db_str(r, i, SAGACTL_COL_SAGA), SAGACTL_S_NONE);
	rv |= sagactl_table_add(t, state, sagactl_out_state_style(state));
	rv |= sagactl_table_add(t, step, SAGACTL_S_NONE);
	rv |= sagactl_table_add(t, age, SAGACTL_S_NONE);
	rv |= sagactl_table_add(
	    t, sagactl_db_str(r, i, SAGACTL_COL_KEY), SAGACTL_S_NONE);
	rv |= sagactl_table_add(t, sagactl_db_str(r, i, SAGACTL_COL_ERROR),
	    strcmp(state, "FAILED") == 0 ? SAGACTL_S_RED : SAGACTL_S_NONE);
	return (rv != 0 ? SAGA_ENOMEM : 0);
}

/* Prints the first rows of the page r: human, in the table whose widths
 * the first page sets (sagactl_table_flush); --json, in the document
 * opened at the first page (even an empty one: {"sagas": [], ...}). */
static int
sagactl_read_list_page(sagactl_read_lister *l, const PGresult *r, int rows)
{
	static const char *const head[]
	    = { "ID", "SAGA", "STATE", "STEP", "AGE", "KEY", "ERROR" };
	const sagactl_ctx *ctx = l->ctx;
	int                rv  = 0;

	if (ctx->json) {
		if (!l->jopen) {
			l->jopen = true;
			if ((rv = proto_obj_alloc(&l->o)) != 0
			    || (rv = sagactl_jlist_open(
			            &l->jl, &ctx->out, "sagas"))
			        != 0) {
				return (rv);
			}
		}
		for (int i = 0; i < rows; i++) {
			if ((rv = sagactl_read_list_obj(ctx, r, i, l->o)) != 0
			    || (rv = sagactl_jlist_add_obj(&l->jl, l->o))
			        != 0) {
				return (rv);
			}
			l->rows++;
		}
		return (0);
	}
	if (rows == 0) {
		return (0);
	}
	if (l->t == NULL) {
		if ((rv = sagactl_table_alloc(&l->t, 7, head)) != 0) {
			return (rv);
		}
		sagactl_table_right(l->t, 4);
	}
	for (int i = 0; i < rows && rv == 0; i++) {
		rv = sagactl_read_list_row(ctx, l->t, r, i);
	}
	if (rv == 0 && (rv = sagactl_table_flush(l->t, &ctx->out)) == 0) {
		l->rows += rows;
	}
	return (rv);
}

/* Ends the --json document: "more" comes after the array, as before
 * (it is known only once the last page is read). */
static int
sagactl_read_list_end(sagactl_read_lister *l, bool more)
{
	proto_obj *tail = NULL;
	int        rv;

	if (!l->ctx->json) {
		return (0);
	}
	if ((rv = proto_obj_alloc(&tail)) == 0
	    && (rv = proto_obj_put_bool(tail, "more", more)) == 0) {
		rv = sagactl_jlist_close(&l->jl, tail);
	}
	proto_obj_free(tail);
	return (rv);
}

static void
sagactl_read_lister_fini(sagactl_read_lister *l)
{
	if (l->jopen) {
		sagactl_jlist_fini(&l->jl);
	}
	proto_obj_free(l->o);
	sagactl_table_free(l->t);
}

/* Runs sql (no parameters) on c, for its status only. Returns 0, or
 * SAGACTL_EXIT_FAIL after printing the error. */
static int
sagactl_read_exec(const sagactl_ctx *ctx, PGconn *c, const char *sql)
{
	PGresult *r = sagactl_db_query(ctx, c, sql, 0, NULL);

	PQclear(r);
	return (r != NULL ? 0 : SAGACTL_EXIT_FAIL);
}

/* The largest --limit of list: it asks for one more than the limit. */
#define SAGACTL_READ_LIMIT_MAX 1000000000L

static int
sagactl_read_list_opt(
    sagactl_ctx *ctx, int ch, const char *arg, void *arg_state)
{
	int rv = sagactl_filter_opt(ctx, arg_state, ch, arg);

	return (rv == 1 ? sagactl_usage(ctx, "unexpected option") : rv);
}

int
sagactl_read_list(sagactl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		SAGACTL_FILTER_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	static const char fetch[] = "FETCH " SAGACTL_READ_STR(
	    SAGACTL_READ_PAGE) " FROM sagactl_list";
	sagactl_filter      f;
	sagactl_query       q;
	sagactl_read_lister l;
	PGconn             *c = NULL;
	PGresult           *r = NULL;
	char                what[512];
	int                 first, rows, rv;
	bool                more = false, last = false;

	memset(&f, 0, sizeof(f));
	memset(&l, 0, sizeof(l));
	l.ctx   = ctx;
	f.limit = 50;
	if ((rv = sagactl_parse(
	         ctx, argc, argv, opts, sagactl_read_list_opt, &f, &first))
	    != 0) {
		return (rv);
	}
	if (first < argc) {
		return (sagactl_usage(ctx,
		    "unexpected argument \"%s\" (to see one saga: sagactl "
		    "show ID)",
		    argv[first]));
	}
	if (f.limit > SAGACTL_READ_LIMIT_MAX) {
		return (sagactl_usage(ctx,
		    "--limit %ld: at most %ld, 0 for no limit", f.limit,
		    SAGACTL_READ_LIMIT_MAX));
	}
	/* One row more than asked tells whether there are more. */
	if ((rv = sagactl_read_build(ctx, &f, f.limit ? f.limit + 1 : 0,
	         "DECLARE sagactl_list NO SCROLL CURSOR FOR ", &q))
	    != 0) {
		return (rv);
	}
	if ((rv = sagactl_db_open(ctx, false, &c)) != 0) {
		return (rv);
	}
	/* The rows come a page at a time from a cursor: one query, so one
	 * snapshot (no saga twice or left out while sagad writes) and the
	 * plan of the query with its LIMIT, read as far as it is fetched.
	 * A cursor lives in a transaction. PostgreSQL plans a cursor for
	 * its first tenth of rows (cursor_tuple_fraction 0.1), which can
	 * turn list --state into a walk of the (created_at, id) index that
	 * filters on the state, row by row, where a FAILED among a million
	 * COMPLETED sagas is at the end of it: planned for all its rows,
	 * the cursor gets the plan of the query alone. */
	if ((rv = sagactl_read_exec(ctx, c, "BEGIN READ ONLY")) != 0 ||
	    (rv = sagactl_read_exec(
	         ctx, c, "SET LOCAL cursor_tuple_fraction = 1")) != 0) {
		goto done;
	}
	if ((r = sagactl_db_query(ctx, c, q.sql, q.n, q.params)) == NULL) {
		rv = SAGACTL_EXIT_FAIL;
		goto done;
	}
	PQclear(r);
	while (!last) {
		if ((r = sagactl_db_query(ctx, c, fetch, 0, NULL)) == NULL) {
			/* Midway (the connection lost): what was printed
			 * stays, a --json document not closed. */
			rv = SAGACTL_EXIT_FAIL;
			goto done;
		}
		rows = PQntuples(r);
		last = rows < SAGACTL_READ_PAGE;
		if (f.limit > 0 && l.rows + rows > f.limit) {
			more = true;
			last = true;
			rows = (int) (f.limit - l.rows);
		}
		rv = sagactl_read_list_page(&l, r, rows);
		PQclear(r);
		r = NULL;
		if (rv != 0) {
			goto fail_print;
		}
		/* A page at a time for whoever reads the output too; an
		 * output that cannot be written (a full disk) stops the
		 * list: its exit status must say it is incomplete. */
		if (fflush(ctx->out.f) != 0) {
			rv = sagactl_error(
			    ctx, "writing the output: %s", strerror(errno));
			goto done;
		}
	}
	/* Ends the transaction (and the cursor) before the document: a
	 * failure is a failure of the whole list. */
	if ((rv = sagactl_read_exec(ctx, c, "COMMIT")) != 0) {
		goto done;
	}
	if ((rv = sagactl_read_list_end(&l, more)) != 0) {
		goto fail_print;
	}
	if (!ctx->json && l.rows == 0) {
		sagactl_filter_describe(&f, what, sizeof(what));
		sagactl_note(ctx, "no saga matches (%s)", what);
	} else if (!ctx->json && more) {
		sagactl_note(ctx,
		    "showing the %ld newest; --limit N shows more, --limit 0 "
		    "all",
		    f.limit);
	}
	goto done;
fail_print:
	fflush(ctx->out.f);
	rv = sagactl_error(
	    ctx, "cannot print the list: %s", saga_strerror(rv));
done:
	sagactl_read_lister_fini(&l);
	PQfinish(c);
	return (rv);
}

/*
 * defs
 */

enum {
	SAGACTL_DEF_NAME,
	SAGACTL_DEF_VERSION,
	SAGACTL_DEF_HASH,
	SAGACTL_DEF_CREATED,
	SAGACTL_DEF_NSTEPS,
	SAGACTL_DEF_JSON,
};

/* A retry policy in words: "5 attempts, 100ms..5.00s". */
static void
sagactl_read_retry_text(const saga_retry *r, char *buf, size_t len)
{
	char a[32], b[32];

	sagactl_out_dur(r->initial_backoff_ms, a, sizeof(a));
	sagactl_out_dur(r->max_backoff_ms, b, sizeof(b));
	if (r->max_attempts == 0) {
		snprintf(buf, len, "unlimited, %s..%s", a, b);
	} else {
		snprintf(buf, len, "%u attempts, %s..%s",
		    (unsigned) r->max_attempts, a, b);
	}
}

static int
sagactl_read_defs_json(const sagactl_ctx *ctx, const PGresult *r)
{
	proto_obj   *root = NULL, *o = NULL;
	proto_buf    def;
	sagactl_jarr arr;
	char         err[256];
	int          rv;

	sagactl_jarr_init(&arr);
	proto_buf_init(&def);
	if ((rv = proto_obj_alloc(&root)) != 0
	    || (rv = proto_obj_alloc(&o)) != 0) {
		goto done;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		const char *json = PQgetvalue(r, i, SAGACTL_DEF_JSON);

		proto_obj_reset(o);
		proto_buf_reset(&def);
		rv |= proto_obj_put_str(
		    o, "name", PQgetvalue(r, i, SAGACTL_DEF_NAME));
		rv |= proto_obj_put_int(o, "version",
		    sagactl_db_i64(r, i, SAGACTL_DEF_VERSION, 0));
		rv |= proto_obj_put_str(
		    o, "hash", PQgetvalue(r, i, SAGACTL_DEF_HASH));
		rv |= sagactl_out_put_time(o, "created_at",
		    sagactl_db_i64(r, i, SAGACTL_DEF_CREATED, 0));
		if (PQgetisnull(r, i, SAGACTL_DEF_NSTEPS)) {
			rv |= proto_obj_put_nil(o, "steps");
		} else {
			rv |= proto_obj_put_int(o, "steps",
			    sagactl_db_i64(r, i, SAGACTL_DEF_NSTEPS, 0));
		}
		if (rv == 0
		    && proto_json_to_raw(
		           json, strlen(json), NULL, &def, err, sizeof(err))
		        == 0) {
			rv = proto_obj_put_raw(
			    o, "definition", proto_buf_raw(&def));
		} else if (rv == 0) {
			rv = proto_obj_put_nil(o, "definition");
		}
		if (rv != 0 || (rv = sagactl_jarr_add_obj(&arr, o)) != 0) {
			rv = SAGA_ENOMEM;
			goto done;
		}
	}
	if ((rv = sagactl_jarr_put(&arr, root, "definitions")) == 0) {
		rv = sagactl_out_json(&ctx->out, root);
	}
done:
	proto_buf_fini(&def);
	sagactl_jarr_fini(&arr);
	proto_obj_free(o);
	proto_obj_free(root);
	return (rv);
}

/* Every version, one line each. */
static int
sagactl_read_defs_list(const sagactl_ctx *ctx, const PGresult *r)
{
	static const char *const head[]
	    = { "NAME", "VERSION", "STEPS", "PIVOT", "REGISTERED", "HASH" };
	sagactl_table *t = NULL;
	int            rv;

	if ((rv = sagactl_table_alloc(&t, 6, head)) != 0) {
		return (rv);
	}
	sagactl_table_right(t, 1);
	sagactl_table_right(t, 2);
	for (int i = 0; i < PQntuples(r); i++) {
		saga_def *d = NULL;
		char      when[40], err[256];

		(void) coord_def_from_json(
		    PQgetvalue(r, i, SAGACTL_DEF_JSON), &d, err, sizeof(err));
		rv |= sagactl_table_add(
		    t, PQgetvalue(r, i, SAGACTL_DEF_NAME), SAGACTL_S_BOLD);
		rv |= sagactl_table_addf(t, SAGACTL_S_NONE, "v%s",
		    PQgetvalue(r, i, SAGACTL_DEF_VERSION));
		rv |= sagactl_table_add(t,
		    PQgetisnull(r, i, SAGACTL_DEF_NSTEPS)
		        ? "?"
		        : PQgetvalue(r, i, SAGACTL_DEF_NSTEPS),
		    SAGACTL_S_NONE);
		rv |= sagactl_table_add(t,
		    d != NULL && d->pivot >= 0 ? d->steps[d->pivot].name : "-",
		    SAGACTL_S_NONE);
		rv |= sagactl_table_add(t,
		    sagactl_out_time(
		        sagactl_db_i64(r, i, SAGACTL_DEF_CREATED, 0), when,
		        sizeof(when)),
		    SAGACTL_S_NONE);
		rv |= sagactl_table_addf(t, SAGACTL_S_DIM, "%.12s",
		    PQgetvalue(r, i, SAGACTL_DEF_HASH));
		saga_def_free(d);
	}
	if (rv == 0) {
		sagactl_table_print(t, &ctx->out);
	}
	sagactl_table_free(t);
	return (rv != 0 ? SAGA_ENOMEM : 0);
}

/* Each version of one saga with its steps. */
static int
sagactl_read_defs_detail(const sagactl_ctx *ctx, const PGresult *r)
{
	static const char *const head[]
	    = { "#", "STEP", "KIND", "PARTICIPANT", "ACTION", "COMPENSATION",
		      "TIMEOUT", "RETRY", "COMPENSATION RETRY" };
	FILE *f  = ctx->out.f;
	int   rv = 0;

	for (int i = 0; i < PQntuples(r) && rv == 0; i++) {
		saga_def      *d = NULL;
		sagactl_table *t = NULL;
		char           when[40], err[256], dl[32];

		if (i > 0) {
			fputc('\n', f);
		}
		/* Text from the log (names, keys, a reader's error) is
		 * escaped, as everywhere in human output: a business key
		 * holding an ESC sequence must not reach the terminal. */
		fputs(sagactl_out_style_on(&ctx->out, SAGACTL_S_BOLD), f);
		sagactl_out_puts(f, PQgetvalue(r, i, SAGACTL_DEF_NAME));
		fprintf(f, " v%s%s  registered %s  hash ",
		    PQgetvalue(r, i, SAGACTL_DEF_VERSION),
		    sagactl_out_style_off(&ctx->out, SAGACTL_S_BOLD),
		    sagactl_out_time(
		        sagactl_db_i64(r, i, SAGACTL_DEF_CREATED, 0), when,
		        sizeof(when)));
		sagactl_out_write(f, PQgetvalue(r, i, SAGACTL_DEF_HASH),
		    strnlen(PQgetvalue(r, i, SAGACTL_DEF_HASH), 12));
		fputc('\n', f);
		if (coord_def_from_json(PQgetvalue(r, i, SAGACTL_DEF_JSON), &d,
		        err, sizeof(err))
		    != 0) {
			fputs("  (cannot read the stored definition: ", f);
			sagactl_out_puts(f, err);
			fputs(")\n", f);
			continue;
		}
		fprintf(f, "  deadline %s, business key ",
		    d->deadline_ms > 0
		        ? sagactl_out_dur(d->deadline_ms, dl, sizeof(dl))
		        : "none");
		sagactl_out_puts(
		    f, d->business_key ? d->business_key : "none");
		fputc('\n', f);
		if (d->nredact > 0) {
			fprintf(f, "  redacted input fields:");
			for (size_t k = 0; k < d->nredact; k++) {
				fputs(k > 0 ? ", " : " ", f);
				sagactl_out_puts(f, d->redact[k]);
			}
			fputc('\n', f);
		}
		if ((rv = sagactl_table_alloc(&t, 9, head)) != 0) {
			saga_def_free(d);
			break;
		}
		sagactl_table_indent(t, 2);
		sagactl_table_right(t, 0);
		for (size_t k = 0; k < d->nsteps; k++) {
			const saga_step_def *s = &d->steps[k];
			char                 to[32], re[128], cre[128];

			sagactl_read_retry_text(&s->retry, re, sizeof(re));
			sagactl_read_retry_text(
			    &s->comp_retry, cre, sizeof(cre));
			rv |= sagactl_table_addf(t, SAGACTL_S_NONE, "%zu", k);
			rv |= sagactl_table_add(t, s->name, SAGACTL_S_BOLD);
			rv |= sagactl_table_add(t,
			    saga_step_kind_name(s->kind),
			    s->kind == SAGA_STEP_PIVOT ? SAGACTL_S_YELLOW
			                               : SAGACTL_S_NONE);
			rv |= sagactl_table_add(
			    t, s->participant, SAGACTL_S_NONE);
			rv |= sagactl_table_add(t, s->action, SAGACTL_S_NONE);
			rv |= sagactl_table_add(
			    t, s->compensation, SAGACTL_S_NONE);
			rv |= sagactl_table_add(t,
			    sagactl_out_dur(s->timeout_ms, to, sizeof(to)),
			    SAGACTL_S_NONE);
			rv |= sagactl_table_add(t, re, SAGACTL_S_NONE);
			rv |= sagactl_table_add(
			    t, s->compensation ? cre : NULL, SAGACTL_S_NONE);
		}
		if (rv == 0) {
			sagactl_table_print(t, &ctx->out);
		}
		sagactl_table_free(t);
		saga_def_free(d);
	}
	return (rv != 0 ? SAGA_ENOMEM : 0);
}

int
sagactl_read_defs(sagactl_ctx *ctx, int argc, char **argv)
{
	PGconn     *c = NULL;
	PGresult   *r = NULL;
	const char *name;
	int         first, rv;

	if ((rv = sagactl_parse(ctx, argc, argv, NULL, NULL, NULL, &first))
	    != 0) {
		return (rv);
	}
	if (argc - first > 1) {
		return (sagactl_usage(
		    ctx, "unexpected argument \"%s\"", argv[first + 1]));
	}
	name = first < argc ? argv[first] : NULL;
	if ((rv = sagactl_db_open(ctx, false, &c)) != 0) {
		return (rv);
	}
	r = sagactl_db_query(ctx, c,
	    "SELECT name, version, content_hash,"
	    " (extract(epoch FROM created_at) * 1000)::bigint,"
	    /* A definition a newer sagad wrote may shape steps otherwise:
	     * its count unknown (NULL), the rest of the list still shown
	     * (jsonb_array_length of a non-array failed the query). */
	    " CASE jsonb_typeof(definition->'steps') WHEN 'array'"
	    " THEN jsonb_array_length(definition->'steps') END,"
	    " definition::text"
	    " FROM saga_definition WHERE $1::text IS NULL OR name = $1"
	    " ORDER BY name, version DESC",
	    1, (const char *const[]) { name });
	if (r == NULL) {
		PQfinish(c);
		return (SAGACTL_EXIT_FAIL);
	}
	if (name != NULL && PQntuples(r) == 0) {
		rv = sagactl_error(ctx,
		    "no definition \"%s\" in the saga log; see sagactl defs "
		    "for the known ones",
		    name);
	} else if (ctx->json) {
		rv = sagactl_read_defs_json(ctx, r);
	} else if (name != NULL) {
		rv = sagactl_read_defs_detail(ctx, r);
	} else if (PQntuples(r) == 0) {
		sagactl_note(ctx,
		    "no definition in the saga log yet (sagad registers them "
		    "when it starts)");
	} else {
		rv = sagactl_read_defs_list(ctx, r);
	}
	if (rv > SAGACTL_EXIT_FAIL) {
		rv = sagactl_error(ctx, "cannot print the definitions: %s",
		    saga_strerror(rv));
	}
	PQclear(r);
	PQfinish(c);
	return (rv);
}

/*
 * stats
 */

static const char *const sagactl_read_states[] = { "RUNNING", "COMPENSATING",
	"COMPLETED", "COMPENSATED", "FAILED", "RESOLVED" };

enum {
	SAGACTL_ST_SAGA,
	SAGACTL_ST_STEP,
	SAGACTL_ST_KIND,
	SAGACTL_ST_OK,
	SAGACTL_ST_FAILED,
	SAGACTL_ST_RETRIED,
	SAGACTL_ST_P50,
	SAGACTL_ST_P90,
	SAGACTL_ST_P99,
	SAGACTL_ST_MAX,
};

/* A latency in microseconds in words. */
static char *
sagactl_read_us(double us, char *buf, size_t len)
{
	if (us < 0) {
		snprintf(buf, len, "-");
	} else if (us < 1000) {
		snprintf(buf, len, "%.0fus", us);
	} else {
		sagactl_out_dur((int64_t) (us / 1000 + 0.5), buf, len);
	}
	return (buf);
}

/* Counts by saga and state, one row per saga. */
typedef struct sagactl_stat_row {
	const char *saga;
	long long   n[6];
	long long   total;
} sagactl_stat_row;

static size_t
sagactl_read_stat_rows(const PGresult *r, sagactl_stat_row *rows)
{
	size_t n = 0;

	for (int i = 0; i < PQntuples(r); i++) {
		const char *saga  = PQgetvalue(r, i, 0);
		const char *state = PQgetvalue(r, i, 1);
		long long   count = (long long) sagactl_db_i64(r, i, 2, 0);

		if (n == 0 || strcmp(rows[n - 1].saga, saga) != 0) {
			memset(&rows[n], 0, sizeof(rows[n]));
			rows[n++].saga = saga;
		}
		for (size_t k = 0; k < 6; k++) {
			if (strcmp(state, sagactl_read_states[k]) == 0) {
				rows[n - 1].n[k] += count;
			}
		}
		rows[n - 1].total += count;
	}
	return (n);
}

static int
sagactl_read_stats_json(const sagactl_ctx *ctx, const PGresult *counts,
    const PGresult *lat, int64_t since_ms)
{
	sagactl_stat_row *rows
	    = calloc((size_t) PQntuples(counts) + 1, sizeof(*rows));
	proto_obj   *root = NULL, *o = NULL, *st = NULL;
	sagactl_jarr sagas, steps;
	size_t       n;
	int          rv;

	sagactl_jarr_init(&sagas);
	sagactl_jarr_init(&steps);
	if (rows == NULL || (rv = proto_obj_alloc(&root)) != 0
	    || (rv = proto_obj_alloc(&o)) != 0
	    || (rv = proto_obj_alloc(&st)) != 0) {
		rv = SAGA_ENOMEM;
		goto done;
	}
	n  = sagactl_read_stat_rows(counts, rows);
	rv = sagactl_out_put_time(root, "since", since_ms);
	for (size_t i = 0; i < n && rv == 0; i++) {
		proto_obj_reset(o);
		proto_obj_reset(st);
		for (size_t k = 0; k < 6; k++) {
			rv |= proto_obj_put_int(
			    st, sagactl_read_states[k], rows[i].n[k]);
		}
		rv |= proto_obj_put_str(o, "saga", rows[i].saga);
		rv |= proto_obj_put_obj(o, "states", st);
		rv |= proto_obj_put_int(o, "total", rows[i].total);
		rv |= sagactl_jarr_add_obj(&sagas, o);
	}
	for (int i = 0; i < PQntuples(lat) && rv == 0; i++) {
		static const char *const pk[]
		    = { "p50_us", "p90_us", "p99_us", "max_us" };

		proto_obj_reset(o);
		rv |= proto_obj_put_str(
		    o, "saga", PQgetvalue(lat, i, SAGACTL_ST_SAGA));
		rv |= proto_obj_put_str(
		    o, "step", PQgetvalue(lat, i, SAGACTL_ST_STEP));
		rv |= sagactl_out_put_str(o, "kind",
		    sagactl_read_kind_name(
		        sagactl_db_i64(lat, i, SAGACTL_ST_KIND, -1)));
		rv |= proto_obj_put_int(
		    o, "ok", sagactl_db_i64(lat, i, SAGACTL_ST_OK, 0));
		rv |= proto_obj_put_int(
		    o, "failed", sagactl_db_i64(lat, i, SAGACTL_ST_FAILED, 0));
		rv |= proto_obj_put_int(o, "retried",
		    sagactl_db_i64(lat, i, SAGACTL_ST_RETRIED, 0));
		for (int k = 0; k < 4; k++) {
			double v
			    = sagactl_db_f64(lat, i, SAGACTL_ST_P50 + k, -1);

			rv |= v < 0
			    ? proto_obj_put_nil(o, pk[k])
			    : proto_obj_put_int(o, pk[k], (int64_t) (v + 0.5));
		}
		rv |= sagactl_jarr_add_obj(&steps, o);
	}
	if (rv != 0 || (rv = sagactl_jarr_put(&sagas, root, "sagas")) != 0
	    || (rv = sagactl_jarr_put(&steps, root, "steps")) != 0) {
		rv = rv == SAGA_EINTERNAL ? rv : SAGA_ENOMEM;
		goto done;
	}
	rv = sagactl_out_json(&ctx->out, root);
done:
	sagactl_jarr_fini(&sagas);
	sagactl_jarr_fini(&steps);
	proto_obj_free(st);
	proto_obj_free(o);
	proto_obj_free(root);
	free(rows);
	return (rv);
}

static int
sagactl_read_stats_human(const sagactl_ctx *ctx, const PGresult *counts,
    const PGresult *lat, int64_t since_ms)
{
	static const char *const h1[] = { "SAGA", "RUNNING", "COMPENSATING",
		"COMPLETED", "COMPENSATED", "FAILED", "RESOLVED", "TOTAL" };
	static const char *const h2[] = { "SAGA", "STEP", "KIND", "OK",
		"FAILED", "RETRIED", "P50", "P90", "P99", "MAX" };
	sagactl_stat_row        *rows
	    = calloc((size_t) PQntuples(counts) + 1, sizeof(*rows));
	sagactl_table *t = NULL;
	char           when[40];
	size_t         n;
	int            rv = 0;

	if (rows == NULL) {
		return (SAGA_ENOMEM);
	}
	n = sagactl_read_stat_rows(counts, rows);
	if (since_ms > 0) {
		fprintf(ctx->out.f, "Since %s\n\n",
		    sagactl_out_time(since_ms, when, sizeof(when)));
	}
	if (n == 0) {
		fprintf(ctx->out.f, "No saga%s.\n",
		    since_ms > 0 ? " started since then" : " in the log");
	} else if ((rv = sagactl_table_alloc(&t, 8, h1)) == 0) {
		for (size_t k = 1; k < 8; k++) {
			sagactl_table_right(t, k);
		}
		for (size_t i = 0; i < n; i++) {
			rv |= sagactl_table_add(
			    t, rows[i].saga, SAGACTL_S_BOLD);
			for (size_t k = 0; k < 6; k++) {
				rv |= sagactl_table_addf(t,
				    rows[i].n[k] > 0 ? sagactl_out_state_style(
				        sagactl_read_states[k])
				                     : SAGACTL_S_DIM,
				    "%lld", rows[i].n[k]);
			}
			rv |= sagactl_table_addf(
			    t, SAGACTL_S_NONE, "%lld", rows[i].total);
		}
		if (rv == 0) {
			sagactl_table_print(t, &ctx->out);
		}
		sagactl_table_free(t);
		t = NULL;
	}
	if (rv == 0 && PQntuples(lat) > 0
	    && (rv = sagactl_table_alloc(&t, 10, h2)) == 0) {
		fputc('\n', ctx->out.f);
		for (size_t k = 3; k < 10; k++) {
			sagactl_table_right(t, k);
		}
		for (int i = 0; i < PQntuples(lat); i++) {
			int64_t fails
			    = sagactl_db_i64(lat, i, SAGACTL_ST_FAILED, 0);

			rv |= sagactl_table_add(t,
			    PQgetvalue(lat, i, SAGACTL_ST_SAGA),
			    SAGACTL_S_BOLD);
			rv |= sagactl_table_add(t,
			    PQgetvalue(lat, i, SAGACTL_ST_STEP),
			    SAGACTL_S_NONE);
			rv |= sagactl_table_add(t,
			    sagactl_read_kind_name(
			        sagactl_db_i64(lat, i, SAGACTL_ST_KIND, -1)),
			    SAGACTL_S_NONE);
			rv |= sagactl_table_add(t,
			    PQgetvalue(lat, i, SAGACTL_ST_OK), SAGACTL_S_NONE);
			rv |= sagactl_table_add(t,
			    PQgetvalue(lat, i, SAGACTL_ST_FAILED),
			    fails > 0 ? SAGACTL_S_RED : SAGACTL_S_NONE);
			rv |= sagactl_table_add(t,
			    PQgetvalue(lat, i, SAGACTL_ST_RETRIED),
			    SAGACTL_S_NONE);
			for (int k = 0; k < 4; k++) {
				char buf[32];

				rv |= sagactl_table_add(t,
				    sagactl_read_us(
				        sagactl_db_f64(
				            lat, i, SAGACTL_ST_P50 + k, -1),
				        buf, sizeof(buf)),
				    SAGACTL_S_NONE);
			}
		}
		if (rv == 0) {
			sagactl_table_print(t, &ctx->out);
		}
		sagactl_table_free(t);
	}
	free(rows);
	return (rv != 0 ? SAGA_ENOMEM : 0);
}

static int
sagactl_read_stats_opt(
    sagactl_ctx *ctx, int ch, const char *arg, void *arg_state)
{
	if (ch != SAGACTL_O_SINCE) {
		return (sagactl_usage(ctx, "unexpected option"));
	}
	return (sagactl_filter_opt(ctx, arg_state, ch, arg));
}

int
sagactl_read_stats(sagactl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, SAGACTL_O_SINCE },
		{ NULL, 0, NULL, 0 },
	};
	sagactl_filter f;
	PGconn        *c      = NULL;
	PGresult      *counts = NULL, *lat = NULL;
	char           since[32];
	const char    *p[1];
	int            first, rv;

	memset(&f, 0, sizeof(f));
	if ((rv = sagactl_parse(
	         ctx, argc, argv, opts, sagactl_read_stats_opt, &f, &first))
	    != 0) {
		return (rv);
	}
	if (first < argc) {
		return (sagactl_usage(
		    ctx, "unexpected argument \"%s\"", argv[first]));
	}
	snprintf(since, sizeof(since), "%lld", (long long) f.since_ms);
	p[0] = f.since_ms > 0 ? since : NULL;
	if ((rv = sagactl_db_open(ctx, false, &c)) != 0) {
		return (rv);
	}
	/* With --since, the sagas started since then are found through
	 * the index (created_at, id) and the events through the BRIN index
	 * on their time (migration 004). The parameter is a value when the
	 * query is planned, so that "$1 IS NULL OR" goes away. */
	counts = sagactl_db_query(ctx, c,
	    "SELECT saga_name, state, count(*) FROM saga_instance"
	    " WHERE $1::bigint IS NULL"
	    "  OR created_at >= to_timestamp($1::bigint / 1000.0)"
	    " GROUP BY saga_name, state ORDER BY saga_name, state",
	    1, p);
	if (counts != NULL) {
		/* Latencies of the attempts that were answered (ok or failed);
		 * retries, timeouts and errors counted apart. */
		lat = sagactl_db_query(ctx, c,
		    "SELECT i.saga_name,"
		    " coalesce(d.definition->'steps'->e.step->>'name',"
		    "  '#' || e.step) AS step_name, e.kind,"
		    " count(*) FILTER (WHERE e.event = 'step_ok'),"
		    " count(*) FILTER (WHERE e.event = 'step_failed'),"
		    " count(*) FILTER (WHERE e.event IN ('step_retry',"
		    "  'step_gave_up')),"
		    " percentile_cont(0.5) WITHIN GROUP (ORDER BY "
		    "e.duration_us)"
		    "  FILTER (WHERE e.event IN ('step_ok', 'step_failed')),"
		    " percentile_cont(0.9) WITHIN GROUP (ORDER BY "
		    "e.duration_us)"
		    "  FILTER (WHERE e.event IN ('step_ok', 'step_failed')),"
		    " percentile_cont(0.99) WITHIN GROUP (ORDER BY "
		    "e.duration_us)"
		    "  FILTER (WHERE e.event IN ('step_ok', 'step_failed')),"
		    " max(e.duration_us)"
		    "  FILTER (WHERE e.event IN ('step_ok', 'step_failed'))"
		    " FROM saga_event e"
		    " JOIN saga_instance i ON i.id = e.saga_id"
		    " LEFT JOIN saga_definition d ON d.name = i.saga_name"
		    "  AND d.version = i.saga_version"
		    " WHERE e.event IN ('step_ok', 'step_failed', "
		    "'step_retry',"
		    "  'step_gave_up')"
		    "  AND ($1::bigint IS NULL"
		    "   OR e.at >= to_timestamp($1::bigint / 1000.0))"
		    " GROUP BY i.saga_name, step_name, e.kind"
		    " ORDER BY i.saga_name, min(e.step), e.kind",
		    1, p);
	}
	if (counts == NULL || lat == NULL) {
		rv = SAGACTL_EXIT_FAIL;
	} else if ((rv = ctx->json ? sagactl_read_stats_json(
	                     ctx, counts, lat, f.since_ms)
	                           : sagactl_read_stats_human(
	                               ctx, counts, lat, f.since_ms))
	    != 0) {
		rv = sagactl_error(
		    ctx, "cannot print the stats: %s", saga_strerror(rv));
	}
	PQclear(counts);
	PQclear(lat);
	PQfinish(c);
	return (rv);
}

/*
 * validate
 */

static int
sagactl_read_validate_json(const sagactl_ctx *ctx, char **files, size_t nfiles,
    const coord_defs *d, const coord_errs *errs)
{
	proto_obj   *root = NULL;
	sagactl_jarr f, e, s, p;
	int          rv;

	sagactl_jarr_init(&f);
	sagactl_jarr_init(&e);
	sagactl_jarr_init(&s);
	sagactl_jarr_init(&p);
	if ((rv = proto_obj_alloc(&root)) != 0) {
		goto done;
	}
	for (size_t i = 0; i < nfiles && rv == 0; i++) {
		rv = sagactl_jarr_add_str(&f, files[i]);
	}
	for (size_t i = 0; i < errs->n && rv == 0; i++) {
		rv = sagactl_jarr_add_str(&e, errs->msgs[i]);
	}
	for (size_t i = 0; d != NULL && i < d->nsagas && rv == 0; i++) {
		rv = sagactl_jarr_add_str(&s, d->sagas[i]->name);
	}
	for (size_t i = 0; d != NULL && i < d->nparticipants && rv == 0; i++) {
		rv = sagactl_jarr_add_str(&p, d->participants[i]->name);
	}
	if (rv != 0 || (rv = proto_obj_put_bool(root, "valid", d != NULL)) != 0
	    || (rv = sagactl_jarr_put(&f, root, "files")) != 0
	    || (rv = sagactl_jarr_put(&e, root, "errors")) != 0
	    || (rv = sagactl_jarr_put(&s, root, "sagas")) != 0
	    || (rv = sagactl_jarr_put(&p, root, "participants")) != 0) {
		goto done;
	}
	rv = sagactl_out_json(&ctx->out, root);
done:
	sagactl_jarr_fini(&f);
	sagactl_jarr_fini(&e);
	sagactl_jarr_fini(&s);
	sagactl_jarr_fini(&p);
	proto_obj_free(root);
	return (rv);
}

int
sagactl_read_validate(sagactl_ctx *ctx, int argc, char **argv)
{
	coord_defs *d = NULL;
	coord_errs  errs;
	size_t      nfiles;
	int         first, rv, lrv;

	if ((rv = sagactl_parse(ctx, argc, argv, NULL, NULL, NULL, &first))
	    != 0) {
		return (rv);
	}
	if (first >= argc) {
		return (sagactl_usage(ctx, "give the YAML files to check"));
	}
	nfiles = (size_t) (argc - first);
	memset(&errs, 0, sizeof(errs));
	coord_config_url_check = saga_tls_dial_url_ok; /* as sagad does */
	lrv = coord_defs_load(
	    (const char *const *) (argv + first), nfiles, &d, &errs);
	if (lrv == SAGA_ENOMEM) {
		coord_errs_fini(&errs);
		return (sagactl_error(ctx, "out of memory"));
	}
	if (ctx->json) {
		if ((rv = sagactl_read_validate_json(
		         ctx, argv + first, nfiles, d, &errs))
		    != 0) {
			rv = sagactl_error(ctx, "cannot print the result: %s",
			    saga_strerror(rv));
		}
	} else if (d != NULL) {
		fprintf(ctx->out.f,
		    "configuration OK: %zu participant(s), %zu saga(s)\n",
		    d->nparticipants, d->nsagas);
	} else {
		/* As sagad --check: every error, then the count. */
		for (size_t i = 0; i < errs.n; i++) {
			fprintf(stderr, "%s\n", errs.msgs[i]);
		}
	}
	if (rv == 0 && d == NULL) {
		rv = sagactl_error(ctx,
		    "%zu error(s) in the configuration; fix them and run "
		    "sagactl validate again",
		    errs.n);
	}
	coord_defs_free(d);
	coord_errs_fini(&errs);
	return (rv);
}
