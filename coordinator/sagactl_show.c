/* SPDX-License-Identifier: MIT */
/*
 * sagactl_show: the story of one saga. See sagactl_show.h.
 *
 * DESIGN: the instance row and the events are read in one REPEATABLE
 * READ transaction (sagad writes them together), so the header, the step
 * summary and the timeline always agree. Everything shown is derived
 * from that snapshot: a step's status is the last outcome of its
 * attempts in the log, the reason a saga compensated is the error of its
 * saga_compensating event, outputs come from the saga context and are
 * rendered as JSON by proto_raw_to_json.
 *
 * Redaction: the input fields that the saga's pinned definition lists
 * under redact show "***" instead of their value, and so does the
 * business key when its field is one of them. The input as shown is
 * built once, when the saga is loaded, and both outputs print that copy,
 * never the stored one. Step outputs are shown as the participants
 * returned them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_config.h"
#include "proto_json.h"
#include "proto_msg.h"
#include "saga_engine.h"
#include "saga_err.h"
#include "saga_id.h"
#include "sagactl_chart.h"
#include "sagactl_db.h"
#include "sagactl_show.h"

/* Columns of the instance query. */
enum {
	SHOW_I_ID,
	SHOW_I_SAGA,
	SHOW_I_VERSION,
	SHOW_I_STATE,
	SHOW_I_STEP,
	SHOW_I_ATTEMPT,
	SHOW_I_MAX_SENT,
	SHOW_I_CONTEXT,
	SHOW_I_KEY,
	SHOW_I_TRACE,
	SHOW_I_ERROR,
	SHOW_I_CREATED,
	SHOW_I_UPDATED,
	SHOW_I_DEADLINE,
	SHOW_I_NEXT,
	SHOW_I_DEF,
	SHOW_I_REDACTS, /* the stored definition has a redact key */
	SHOW_I_FINISHED,
};

/* Columns of the event query. */
enum {
	SHOW_E_SEQ,
	SHOW_E_AT,
	SHOW_E_STEP,
	SHOW_E_KIND,
	SHOW_E_ATTEMPT,
	SHOW_E_EVENT,
	SHOW_E_OUTCOME,
	SHOW_E_OUTPUT,
	SHOW_E_ERROR,
	SHOW_E_DURATION,
};

/* How one step's action or compensation ended, from the log. */
typedef enum show_status {
	SHOW_ST_NOT_RUN,
	SHOW_ST_OK,
	SHOW_ST_FAILED,
	SHOW_ST_GAVE_UP,
	SHOW_ST_SKIPPED,
	SHOW_ST_IN_FLIGHT,
	SHOW_ST_WAITING,
	SHOW_ST_NO_OUTCOME,
	SHOW_ST_NONE, /* the step has no compensation */
} show_status;

static const char *const show_status_names[] = {
	[SHOW_ST_NOT_RUN]    = "not_run",
	[SHOW_ST_OK]         = "ok",
	[SHOW_ST_FAILED]     = "failed",
	[SHOW_ST_GAVE_UP]    = "gave_up",
	[SHOW_ST_SKIPPED]    = "skipped",
	[SHOW_ST_IN_FLIGHT]  = "in_flight",
	[SHOW_ST_WAITING]    = "waiting",
	[SHOW_ST_NO_OUTCOME] = "no_outcome",
	[SHOW_ST_NONE]       = "none",
};

typedef struct show_stat {
	show_status status;
	int         attempts;
	const char *error;
} show_stat;

typedef struct show {
	sagactl_ctx      *ctx;
	PGresult         *inst;
	PGresult         *evr;
	saga_def         *def; /* NULL if the definition is unreadable */
	char              id[SAGA_ID_STRLEN + 1];
	const char       *state;
	bool              terminal; /* not moving: FAILED too, see show_load */
	int64_t           finished; /* when it reached a final state, or 0 */
	int32_t           step; /* current step */
	int32_t           kind; /* of the current command, -1 unknown */
	int64_t           created;
	int64_t           end; /* last event, or now while running */
	unsigned char    *context;
	size_t            context_len;
	proto_doc        *ctxdoc;
	const proto_val  *input;
	const proto_val  *outputs; /* the context's "steps" map */
	bool              redact_all; /* def unreadable but it redacts */
	proto_buf         shown; /* the input as shown: redacted */
	proto_doc        *shown_doc;
	const proto_val  *shown_val; /* its tree, or NULL: no input */
	sagactl_chart_ev *cevs;
	size_t            n;
} show;

static void
show_fini(show *s)
{
	PQclear(s->inst);
	PQclear(s->evr);
	saga_def_free(s->def);
	proto_doc_free(s->ctxdoc);
	proto_doc_free(s->shown_doc);
	proto_buf_fini(&s->shown);
	if (s->context != NULL) {
		PQfreemem(s->context);
	}
	free(s->cevs);
}

/* The name of step i, or "#i" in buf. */
static const char *
show_step_name(const show *s, int64_t i, char *buf, size_t len)
{
	if (i < 0) {
		return (NULL);
	}
	if (s->def != NULL && (size_t) i < s->def->nsteps) {
		return (s->def->steps[i].name);
	}
	snprintf(buf, len, "#%lld", (long long) i);
	return (buf);
}

/* Renders a value as one-line JSON (malloc'd) or NULL. */
static char *
show_val_json(const proto_val *v)
{
	proto_buf b;
	char     *text = NULL;

	if (v == NULL) {
		return (NULL);
	}
	proto_buf_init(&b);
	if (proto_val_encode(v, &b) != 0
	    || proto_raw_to_json(proto_buf_raw(&b), false, &text) != 0) {
		text = NULL;
	}
	proto_buf_fini(&b);
	return (text);
}

static const char *
show_ev_str(const show *s, size_t i, int col)
{
	return (sagactl_db_str(s->evr, (int) i, col));
}

/* Encodes into b the saga's input as show prints it: the value of every
 * top-level field that the definition redacts replaced by "***", the key
 * kept so that people see the field is there. When the definition cannot
 * be read but redacts something (redact_all), every value is replaced.
 * An input that cannot be rebuilt field by field (not a map while
 * redact_all, a key holding a NUL byte, a key twice: the protocol allows
 * both, the map builder does not) is replaced as a whole by the string
 * "***". Returns 0 or SAGA_ENOMEM. */
static int
show_redact_input(const show *s, proto_buf *b)
{
	static const char masked[] = "\"" SAGA_DEF_REDACTED "\"";
	proto_obj        *o        = NULL;
	size_t            n;
	int               rv = 0;
	char              err[128];

	if (!s->redact_all
	    && (s->def == NULL || s->def->nredact == 0
	        || proto_val_type_of(s->input) != PROTO_VAL_MAP)) {
		return (proto_val_encode(s->input, b));
	}
	if (proto_val_type_of(s->input) != PROTO_VAL_MAP) {
		goto whole;
	}
	if ((rv = proto_obj_alloc(&o)) != 0) {
		return (rv);
	}
	n = proto_val_len(s->input);
	for (size_t i = 0; i < n && rv == 0; i++) {
		proto_str        k;
		const proto_val *v;
		char            *key;

		if (proto_val_map_entry(s->input, i, &k, &v) != 0
		    || (k.len > 0 && memchr(k.ptr, '\0', k.len) != NULL)) {
			rv = SAGA_EINVAL;
			break;
		}
		if ((key = strndup(k.len > 0 ? k.ptr : "", k.len)) == NULL) {
			rv = SAGA_ENOMEM;
			break;
		}
		rv = s->redact_all || saga_def_redacts(s->def, key, k.len)
		    ? proto_obj_put_str(o, key, SAGA_DEF_REDACTED)
		    : proto_obj_put_val(o, key, v);
		free(key);
	}
	if (rv == 0) {
		rv = proto_obj_encode(o, b);
	}
	proto_obj_free(o);
	if (rv != SAGA_EINVAL && rv != SAGA_EEXIST) {
		return (rv);
	}
	proto_buf_reset(b);
whole:
	/* (The text is valid JSON: only memory can fail.) */
	if (proto_json_to_raw(masked, strlen(masked), NULL, b, err,
	        sizeof(err))
	    != 0) {
		return (SAGA_ENOMEM);
	}
	return (0);
}

/* The business key as show prints it: "***" when the definition redacts
 * its field, NULL when the saga has none. */
static const char *
show_key(const show *s)
{
	const char *key = sagactl_db_str(s->inst, 0, SHOW_I_KEY);
	const char *bk  = s->def != NULL ? s->def->business_key : NULL;

	if (key != NULL
	    && (s->redact_all
	        || (bk != NULL && saga_def_redacts(s->def, bk, strlen(bk))))) {
		return (SAGA_DEF_REDACTED);
	}
	return (key);
}

static int
show_load(show *s, PGconn *c)
{
	const char *p[1] = { s->id };
	char        err[256];
	const char *json;
	PGresult   *r;

	if ((r = sagactl_db_query(s->ctx, c,
	         "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL))
	    == NULL) {
		return (SAGACTL_EXIT_FAIL);
	}
	PQclear(r);
	s->inst = sagactl_db_query(s->ctx, c,
	    "SELECT i.id::text, i.saga_name, i.saga_version, i.state,"
	    " i.current_step, i.attempt, i.max_sent_step, i.context,"
	    " i.business_key, i.traceparent, i.last_error,"
	    " (extract(epoch FROM i.created_at) * 1000)::bigint,"
	    " (extract(epoch FROM i.updated_at) * 1000)::bigint,"
	    " (extract(epoch FROM i.deadline_at) * 1000)::bigint,"
	    " (extract(epoch FROM i.next_attempt_at) * 1000)::bigint,"
	    " d.definition::text, coalesce(d.definition ? 'redact', false),"
	    " (extract(epoch FROM i.finished_at) * 1000)::bigint"
	    " FROM saga_instance i LEFT JOIN saga_definition d"
	    "  ON d.name = i.saga_name AND d.version = i.saga_version"
	    " WHERE i.id = $1::uuid",
	    1, p);
	if (s->inst == NULL) {
		return (SAGACTL_EXIT_FAIL);
	}
	if (PQntuples(s->inst) == 0) {
		return (sagactl_error(s->ctx,
		    "no saga %s in the saga log; check the id with sagactl "
		    "list (or --db: is this the right database?)",
		    s->id));
	}
	s->evr = sagactl_db_query(s->ctx, c,
	    "SELECT seq, (extract(epoch FROM at) * 1000)::bigint, step, kind,"
	    " attempt, event,"
	    " outcome, output, error, duration_us"
	    " FROM saga_event WHERE saga_id = $1::uuid ORDER BY seq",
	    1, p);
	if (s->evr == NULL) {
		return (SAGACTL_EXIT_FAIL);
	}
	PQclear(PQexec(c, "COMMIT"));

	s->state    = PQgetvalue(s->inst, 0, SHOW_I_STATE);
	s->step     = (int32_t) sagactl_db_i64(s->inst, 0, SHOW_I_STEP, 0);
	s->created  = sagactl_db_i64(s->inst, 0, SHOW_I_CREATED, 0);
	/* Nothing runs: no attempt is in flight and the chart ends with the
	 * last event. That includes FAILED, which is parked, not final. */
	s->terminal = strcmp(s->state, "RUNNING") != 0
	    && strcmp(s->state, "COMPENSATING") != 0;
	/* Final: the states a saga never leaves. finished_at is set by the
	 * write that ended it; a saga ended by a sagad older than migration
	 * 003 has none, and its last update is that time (as purge takes
	 * it). */
	if (strcmp(s->state, "COMPLETED") == 0
	    || strcmp(s->state, "COMPENSATED") == 0
	    || strcmp(s->state, "RESOLVED") == 0) {
		s->finished = sagactl_db_i64(s->inst, 0, SHOW_I_FINISHED, 0);
		if (s->finished == 0) {
			s->finished
			    = sagactl_db_i64(s->inst, 0, SHOW_I_UPDATED, 0);
		}
	}
	if ((json = sagactl_db_str(s->inst, 0, SHOW_I_DEF)) != NULL
	    && coord_def_from_json(json, &s->def, err, sizeof(err)) != 0) {
		s->def = NULL;
	}
	/* A definition this sagactl cannot read (a newer format) may still
	 * redact fields: then no value of the input is shown. */
	s->redact_all = s->def == NULL
	    && strcmp(PQgetvalue(s->inst, 0, SHOW_I_REDACTS), "t") == 0;
	s->context
	    = sagactl_db_bytea(s->inst, 0, SHOW_I_CONTEXT, &s->context_len);
	if (s->context != NULL) {
		/* sagad bounds the context (max_context_bytes, up to 64 MiB),
		 * not the protocol's default limits. */
		proto_limits lim = {
			.max_msg_bytes     = s->context_len + 1,
			.max_depth         = PROTO_MAX_DEPTH_CAP,
			.max_str_bytes     = s->context_len + 1,
			.max_container_len = s->context_len + 1,
		};
		proto_raw raw = { s->context, s->context_len };

		if (proto_doc_parse(&s->ctxdoc, raw, &lim, NULL) == 0) {
			s->input = proto_val_get(
			    proto_doc_root(s->ctxdoc), "input");
			s->outputs = proto_val_get(
			    proto_doc_root(s->ctxdoc), "steps");
		}
	}
	if (s->input != NULL) {
		proto_limits lim;

		if (show_redact_input(s, &s->shown) != 0) {
			return (sagactl_error(s->ctx, "out of memory"));
		}
		/* Bounded by its own size, as the context is (it may be a
		 * little larger than the input: "***" for a number). */
		lim.max_msg_bytes     = s->shown.len + 1;
		lim.max_depth         = PROTO_MAX_DEPTH_CAP;
		lim.max_str_bytes     = s->shown.len + 1;
		lim.max_container_len = s->shown.len + 1;
		if (proto_doc_parse(&s->shown_doc, proto_buf_raw(&s->shown),
		        &lim, NULL)
		    != 0) {
			return (sagactl_error(s->ctx, "out of memory"));
		}
		s->shown_val = proto_doc_root(s->shown_doc);
	}

	s->n    = (size_t) PQntuples(s->evr);
	s->kind = -1;
	s->end  = s->created;
	if ((s->cevs = calloc(s->n + 1, sizeof(*s->cevs))) == NULL) {
		return (sagactl_error(s->ctx, "out of memory"));
	}
	for (size_t i = 0; i < s->n; i++) {
		sagactl_chart_ev *e = &s->cevs[i];

		e->at_ms = sagactl_db_i64(s->evr, (int) i, SHOW_E_AT, 0);
		e->step  = (int32_t) sagactl_db_i64(
		     s->evr, (int) i, SHOW_E_STEP, -1);
		e->kind = (int32_t) sagactl_db_i64(
		    s->evr, (int) i, SHOW_E_KIND, -1);
		e->attempt = (int32_t) sagactl_db_i64(
		    s->evr, (int) i, SHOW_E_ATTEMPT, 0);
		e->type
		    = sagactl_chart_log_type(show_ev_str(s, i, SHOW_E_EVENT));
		e->outcome
		    = sagactl_chart_outcome(show_ev_str(s, i, SHOW_E_OUTCOME));
		if (e->step >= 0 && e->kind >= 0) {
			s->kind = e->kind;
		}
		if (e->at_ms > s->end) {
			s->end = e->at_ms;
		}
	}
	if (!s->terminal && s->ctx->now_ms > s->end) {
		s->end = s->ctx->now_ms;
	}
	return (0);
}

/* How (step, kind) went, from its events. */
static show_stat
show_step_stat(const show *s, int32_t step, int32_t kind)
{
	show_stat st = { SHOW_ST_NOT_RUN, 0, NULL };

	for (size_t i = 0; i < s->n; i++) {
		const sagactl_chart_ev *e = &s->cevs[i];

		if (e->step != step || e->kind != kind) {
			continue;
		}
		switch (e->type) {
		case SAGA_LOG_SENT:
			if (e->attempt > st.attempts) {
				st.attempts = e->attempt;
			}
			st.status = SHOW_ST_IN_FLIGHT;
			break;
		case SAGA_LOG_OK:
			st.status = SHOW_ST_OK;
			st.error  = NULL;
			break;
		case SAGA_LOG_FAILED:
			st.status = SHOW_ST_FAILED;
			st.error  = show_ev_str(s, i, SHOW_E_ERROR);
			break;
		case SAGA_LOG_GAVE_UP:
			st.status = SHOW_ST_GAVE_UP;
			st.error  = show_ev_str(s, i, SHOW_E_ERROR);
			break;
		case SAGA_LOG_SKIPPED:
			st.status = SHOW_ST_SKIPPED;
			st.error  = show_ev_str(s, i, SHOW_E_ERROR);
			break;
		case SAGA_LOG_RETRY:
			st.status = SHOW_ST_WAITING;
			st.error  = show_ev_str(s, i, SHOW_E_ERROR);
			break;
		default:
			break;
		}
	}
	/* An attempt still open counts only for the command the saga is
	 * on; any other lost its answer (cancel, deadline, restart). */
	if ((st.status == SHOW_ST_IN_FLIGHT || st.status == SHOW_ST_WAITING)
	    && (s->terminal || step != s->step || kind != s->kind)) {
		st.status = SHOW_ST_NO_OUTCOME;
	}
	return (st);
}

/* The error of the last event of a type, or NULL. */
static const char *
show_last_error(const show *s, int type)
{
	for (size_t i = s->n; i > 0; i--) {
		if (s->cevs[i - 1].type == type) {
			return (show_ev_str(s, i - 1, SHOW_E_ERROR));
		}
	}
	return (NULL);
}

/*
 * JSON.
 */

static const char *
show_kind_name(int64_t kind)
{
	return (kind == SAGA_KIND_COMP     ? "compensation"
	        : kind == SAGA_KIND_ACTION ? "action"
	                                   : NULL);
}

static int
show_json_steps(const show *s, proto_obj *root)
{
	proto_obj   *o = NULL;
	sagactl_jarr arr;
	int          rv;

	sagactl_jarr_init(&arr);
	if ((rv = proto_obj_alloc(&o)) != 0) {
		return (rv);
	}
	for (size_t i = 0; s->def != NULL && i < s->def->nsteps && rv == 0;
	     i++) {
		const saga_step_def *d   = &s->def->steps[i];
		show_stat            a   = show_step_stat(s, (int32_t) i, 0);
		show_stat            c   = show_step_stat(s, (int32_t) i, 1);
		const proto_val     *out = proto_val_get(s->outputs, d->name);

		if (d->compensation == NULL && c.attempts == 0) {
			c.status = SHOW_ST_NONE;
		}
		proto_obj_reset(o);
		rv |= proto_obj_put_int(o, "index", (int64_t) i);
		rv |= proto_obj_put_str(o, "name", d->name);
		rv |= proto_obj_put_str(o, "kind", saga_step_kind_name(d->kind));
		rv |= proto_obj_put_str(o, "participant", d->participant);
		rv |= proto_obj_put_str(o, "action", d->action);
		rv |= sagactl_out_put_str(o, "compensation", d->compensation);
		rv |= proto_obj_put_str(
		    o, "action_status", show_status_names[a.status]);
		rv |= proto_obj_put_int(o, "action_attempts", a.attempts);
		rv |= proto_obj_put_str(
		    o, "compensation_status", show_status_names[c.status]);
		rv |= proto_obj_put_int(
		    o, "compensation_attempts", c.attempts);
		rv |= out != NULL ? proto_obj_put_val(o, "output", out)
		                  : proto_obj_put_nil(o, "output");
		if (rv == 0) {
			rv = sagactl_jarr_add_obj(&arr, o);
		}
	}
	if (rv == 0) {
		rv = sagactl_jarr_put(&arr, root, "steps");
	}
	sagactl_jarr_fini(&arr);
	proto_obj_free(o);
	return (rv);
}

static int
show_json_events(const show *s, proto_obj *root)
{
	proto_obj   *o = NULL;
	sagactl_jarr arr;
	int          rv;

	sagactl_jarr_init(&arr);
	if ((rv = proto_obj_alloc(&o)) != 0) {
		return (rv);
	}
	for (size_t i = 0; i < s->n && rv == 0; i++) {
		const sagactl_chart_ev *e = &s->cevs[i];
		char                    nb[32];
		unsigned char          *out;
		size_t                  olen = 0;
		int                     row  = (int) i;

		proto_obj_reset(o);
		rv |= proto_obj_put_int(
		    o, "seq", sagactl_db_i64(s->evr, row, SHOW_E_SEQ, 0));
		rv |= sagactl_out_put_time(o, "at", e->at_ms);
		rv |= proto_obj_put_int(o, "offset_ms", e->at_ms - s->created);
		rv |= proto_obj_put_str(
		    o, "event", show_ev_str(s, i, SHOW_E_EVENT));
		rv |= sagactl_out_put_str(
		    o, "step", show_step_name(s, e->step, nb, sizeof(nb)));
		rv |= e->step >= 0
		    ? proto_obj_put_int(o, "step_index", e->step)
		    : proto_obj_put_nil(o, "step_index");
		rv |= sagactl_out_put_str(o, "kind", show_kind_name(e->kind));
		rv |= e->attempt > 0
		    ? proto_obj_put_int(o, "attempt", e->attempt)
		    : proto_obj_put_nil(o, "attempt");
		rv |= sagactl_out_put_str(
		    o, "outcome", show_ev_str(s, i, SHOW_E_OUTCOME));
		rv |= PQgetisnull(s->evr, row, SHOW_E_DURATION)
		    ? proto_obj_put_nil(o, "duration_us")
		    : proto_obj_put_int(o, "duration_us",
		        sagactl_db_i64(s->evr, row, SHOW_E_DURATION, 0));
		rv |= sagactl_out_put_str(
		    o, "error", show_ev_str(s, i, SHOW_E_ERROR));
		out = sagactl_db_bytea(s->evr, row, SHOW_E_OUTPUT, &olen);
		if (out != NULL
		    && proto_obj_put_raw(
		           o, "output", (proto_raw) { out, olen })
		        == 0) {
			/* put */
		} else {
			rv |= proto_obj_put_nil(o, "output");
		}
		if (out != NULL) {
			PQfreemem(out);
		}
		if (rv == 0) {
			rv = sagactl_jarr_add_obj(&arr, o);
		}
	}
	if (rv == 0) {
		rv = sagactl_jarr_put(&arr, root, "events");
	}
	sagactl_jarr_fini(&arr);
	proto_obj_free(o);
	return (rv);
}

static int
show_json(const show *s)
{
	const PGresult *r     = s->inst;
	proto_obj      *root  = NULL;
	const char     *trace = sagactl_db_str(r, 0, SHOW_I_TRACE);
	char            nb[32], tid[33];
	int             rv = 0;

	if ((rv = proto_obj_alloc(&root)) != 0) {
		return (rv);
	}
	rv |= proto_obj_put_str(root, "id", s->id);
	rv |= proto_obj_put_str(root, "saga", PQgetvalue(r, 0, SHOW_I_SAGA));
	rv |= proto_obj_put_int(
	    root, "version", sagactl_db_i64(r, 0, SHOW_I_VERSION, 0));
	rv |= proto_obj_put_str(root, "state", s->state);
	if (strcmp(s->state, "COMPLETED") == 0
	    || strcmp(s->state, "COMPENSATED") == 0) {
		/* Every step is done: no current one. */
		rv |= proto_obj_put_nil(root, "step");
		rv |= proto_obj_put_nil(root, "step_index");
		rv |= proto_obj_put_nil(root, "kind");
	} else {
		rv |= sagactl_out_put_str(
		    root, "step", show_step_name(s, s->step, nb, sizeof(nb)));
		rv |= proto_obj_put_int(root, "step_index", s->step);
		rv |= sagactl_out_put_str(
		    root, "kind", show_kind_name(s->kind));
	}
	rv |= proto_obj_put_int(
	    root, "attempt", sagactl_db_i64(r, 0, SHOW_I_ATTEMPT, 0));
	rv |= sagactl_out_put_str(root, "business_key", show_key(s));
	rv |= sagactl_out_put_str(root, "traceparent", trace);
	if (trace != NULL && strlen(trace) == PROTO_TRACEPARENT_LEN) {
		snprintf(tid, sizeof(tid), "%.32s", trace + 3);
		rv |= proto_obj_put_str(root, "trace_id", tid);
	} else {
		rv |= proto_obj_put_nil(root, "trace_id");
	}
	rv |= sagactl_out_put_str(
	    root, "last_error", sagactl_db_str(r, 0, SHOW_I_ERROR));
	rv |= sagactl_out_put_str(root, "compensated_because",
	    show_last_error(s, SAGA_LOG_COMPENSATING));
	rv |= sagactl_out_put_str(
	    root, "resolution", show_last_error(s, SAGA_LOG_RESOLVED));
	rv |= sagactl_out_put_time(root, "created_at", s->created);
	rv |= sagactl_out_put_time(
	    root, "updated_at", sagactl_db_i64(r, 0, SHOW_I_UPDATED, 0));
	rv |= sagactl_out_put_time(root, "finished_at", s->finished);
	rv |= sagactl_out_put_time(
	    root, "deadline_at", sagactl_db_i64(r, 0, SHOW_I_DEADLINE, 0));
	rv |= sagactl_out_put_time(
	    root, "next_attempt_at", sagactl_db_i64(r, 0, SHOW_I_NEXT, 0));
	rv |= proto_obj_put_int(root, "duration_ms", s->end - s->created);
	rv |= proto_obj_put_val(root, "input", s->shown_val);
	if (rv != 0) {
		rv = SAGA_ENOMEM;
	}
	if (rv == 0 && (rv = show_json_steps(s, root)) == 0
	    && (rv = show_json_events(s, root)) == 0) {
		rv = sagactl_out_json(&s->ctx->out, root);
	}
	proto_obj_free(root);
	return (rv);
}

/*
 * Human output.
 */

/* Prints "Label       text" with the label in bold, the text escaped
 * (sagactl_out_escape): it holds keys, errors and notes from outside. */
static void show_field(const show *s, const char *label, sagactl_style st,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
show_field(
    const show *s, const char *label, sagactl_style st, const char *fmt, ...)
{
	const sagactl_out *o    = &s->ctx->out;
	char              *text = NULL;
	va_list            ap;

	/* Whole, however long (an input of a saga may be 64 KiB and more):
	 * piped output is never cut. */
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0) {
		text = NULL;
	}
	va_end(ap);
	fprintf(o->f, "%s%-13s%s%s", sagactl_out_style_on(o, SAGACTL_S_BOLD),
	    label, sagactl_out_style_off(o, SAGACTL_S_BOLD),
	    sagactl_out_style_on(o, st));
	if (text != NULL) {
		sagactl_out_puts(o->f, text);
	} else {
		fputs("... (out of memory)", o->f);
	}
	fprintf(o->f, "%s\n", sagactl_out_style_off(o, st));
	free(text);
}

/* "step charge" or "compensation of step charge". */
static const char *
show_where(const show *s, char *buf, size_t len)
{
	char nb[32];

	snprintf(buf, len, "%s%s",
	    s->kind == SAGA_KIND_COMP ? "compensation of step " : "step ",
	    show_step_name(s, s->step, nb, sizeof(nb)));
	return (buf);
}

static void
show_header(const show *s)
{
	const PGresult *r     = s->inst;
	const char     *key   = show_key(s);
	const char     *trace = sagactl_db_str(r, 0, SHOW_I_TRACE);
	const char     *err   = sagactl_db_str(r, 0, SHOW_I_ERROR);
	int64_t         upd   = sagactl_db_i64(r, 0, SHOW_I_UPDATED, 0);
	int64_t         dl    = sagactl_db_i64(r, 0, SHOW_I_DEADLINE, 0);
	int64_t         next  = sagactl_db_i64(r, 0, SHOW_I_NEXT, 0);
	int64_t         att   = sagactl_db_i64(r, 0, SHOW_I_ATTEMPT, 0);
	sagactl_style   st    = sagactl_out_state_style(s->state);
	char            t1[40], t2[40], d1[32], where[192];
	char           *input;

	show_field(s, "Saga", SAGACTL_S_NONE, "%s", s->id);
	if (s->def != NULL) {
		show_field(s, "Definition", SAGACTL_S_NONE,
		    "%s v%s (%zu steps%s%s)", PQgetvalue(r, 0, SHOW_I_SAGA),
		    PQgetvalue(r, 0, SHOW_I_VERSION), s->def->nsteps,
		    s->def->pivot >= 0 ? ", pivot " : "",
		    s->def->pivot >= 0 ? s->def->steps[s->def->pivot].name
		                       : "");
	} else {
		show_field(s, "Definition", SAGACTL_S_NONE, "%s v%s",
		    PQgetvalue(r, 0, SHOW_I_SAGA),
		    PQgetvalue(r, 0, SHOW_I_VERSION));
	}
	show_where(s, where, sizeof(where));
	if (strcmp(s->state, "RUNNING") == 0
	    || strcmp(s->state, "COMPENSATING") == 0) {
		if (next > 0) {
			show_field(s, "State", st,
			    "%s at %s: attempt %lld failed, next attempt at "
			    "%s (in %s)",
			    s->state, where, (long long) att,
			    sagactl_out_clock(next, t1, sizeof(t1)),
			    sagactl_out_dur(
			        next - s->ctx->now_ms, d1, sizeof(d1)));
		} else {
			show_field(s, "State", st,
			    "%s at %s: attempt %lld in "
			    "flight",
			    s->state, where, (long long) att);
		}
		if (strcmp(s->state, "COMPENSATING") == 0
		    && show_last_error(s, SAGA_LOG_COMPENSATING) != NULL) {
			show_field(s, "Because", SAGACTL_S_NONE, "%s",
			    show_last_error(s, SAGA_LOG_COMPENSATING));
		}
		if (err != NULL) {
			show_field(s, "Last error", SAGACTL_S_NONE, "%s", err);
		}
	} else if (strcmp(s->state, "COMPLETED") == 0) {
		show_field(s, "State", st, "COMPLETED");
	} else if (strcmp(s->state, "COMPENSATED") == 0) {
		const char *why = show_last_error(s, SAGA_LOG_COMPENSATING);

		show_field(s, "State", st, "COMPENSATED");
		show_field(s, "Because", SAGACTL_S_NONE, "%s",
		    why ? why : (err ? err : "(no reason recorded)"));
	} else if (strcmp(s->state, "FAILED") == 0) {
		char nb[32];

		show_field(s, "State", st,
		    "FAILED: parked at %s (attempt %lld); it waits for an "
		    "operator",
		    where, (long long) att);
		show_field(s, "Because", SAGACTL_S_NONE, "%s",
		    err ? err : "(no reason recorded)");
		if (show_last_error(s, SAGA_LOG_COMPENSATING) != NULL
		    && s->kind == SAGA_KIND_COMP) {
			show_field(s, "Compensating", SAGACTL_S_NONE,
			    "because %s",
			    show_last_error(s, SAGA_LOG_COMPENSATING));
		}
		show_field(s, "Repair", SAGACTL_S_NONE,
		    "sagactl retry %s   (try it again now)", s->id);
		show_field(s, "", SAGACTL_S_NONE,
		    "sagactl skip %s --step %s --note TEXT   (it was done by "
		    "hand: go on)",
		    s->id, show_step_name(s, s->step, nb, sizeof(nb)));
		show_field(s, "", SAGACTL_S_NONE,
		    "sagactl resolve %s --note TEXT   (all was handled by "
		    "hand: close it)",
		    s->id);
	} else {
		const char *note = show_last_error(s, SAGA_LOG_RESOLVED);

		show_field(s, "State", st, "%s by an operator: %s", s->state,
		    note ? note : "(no note)");
		if (err != NULL) {
			show_field(s, "Was", SAGACTL_S_NONE, "%s", err);
		}
	}
	show_field(s, "Business key", SAGACTL_S_NONE, "%s", key ? key : "-");
	if (trace != NULL && strlen(trace) == PROTO_TRACEPARENT_LEN) {
		show_field(s, "Trace id", SAGACTL_S_NONE, "%.32s  (%s)",
		    trace + 3, trace);
	} else {
		show_field(
		    s, "Trace id", SAGACTL_S_NONE, "%s", trace ? trace : "-");
	}
	show_field(s, "Started", SAGACTL_S_NONE, "%s  (%s ago)",
	    sagactl_out_time(s->created, t1, sizeof(t1)),
	    sagactl_out_age(s->ctx->now_ms - s->created, d1, sizeof(d1)));
	if (s->finished != 0) {
		show_field(s, "Finished", SAGACTL_S_NONE, "%s  (took %s)",
		    sagactl_out_time(s->finished, t2, sizeof(t2)),
		    sagactl_out_dur(s->finished - s->created, d1, sizeof(d1)));
	} else if (s->terminal) {
		/* FAILED: parked since its last update, until an operator
		 * acts. */
		show_field(s, "Updated", SAGACTL_S_NONE, "%s  (parked for %s)",
		    sagactl_out_time(upd, t2, sizeof(t2)),
		    sagactl_out_dur(s->ctx->now_ms - upd, d1, sizeof(d1)));
	} else {
		show_field(s, "Updated", SAGACTL_S_NONE,
		    "%s  (running for %s)",
		    sagactl_out_time(upd, t2, sizeof(t2)),
		    sagactl_out_dur(
		        s->ctx->now_ms - s->created, d1, sizeof(d1)));
	}
	if (dl > 0) {
		show_field(s, "Deadline",
		    dl < s->ctx->now_ms && !s->terminal ? SAGACTL_S_RED
		                                        : SAGACTL_S_NONE,
		    "%s", sagactl_out_time(dl, t1, sizeof(t1)));
	}
	/* The redacted copy, never s->input itself. */
	input = show_val_json(s->shown_val);
	show_field(s, "Input", SAGACTL_S_NONE, "%s", input ? input : "-");
	free(input);
}

/* A status cell of the steps table, malloc'd (NULL when out of memory).
 * An error in it is cut to 40 columns on a terminal, so that the OUTPUT
 * column after it stays in sight; piped or with --wide it is whole, as
 * every cut cell (docs/cli.md: "Piped output is never cut"). */
static char *
show_stat_text(const sagactl_out *o, show_stat st, sagactl_style *style)
{
	char        cut[320]; /* 40 columns, of 4-byte characters at most */
	const char *why = st.error ? st.error : "";
	size_t      len;
	char       *buf;

	if (o->tty && !o->wide) {
		why = sagactl_out_cut(why, 40, cut, sizeof(cut));
	}
	len = strlen(why) + 64;
	if ((buf = malloc(len)) == NULL) {
		return (NULL);
	}
	*style = SAGACTL_S_NONE;
	switch (st.status) {
	case SHOW_ST_NOT_RUN:
		snprintf(buf, len, "-");
		*style = SAGACTL_S_DIM;
		break;
	case SHOW_ST_NONE:
		snprintf(buf, len, "(none)");
		*style = SAGACTL_S_DIM;
		break;
	case SHOW_ST_OK:
		if (st.attempts > 1) {
			snprintf(
			    buf, len, "ok after %d attempts", st.attempts);
		} else {
			snprintf(buf, len, "ok");
		}
		*style = SAGACTL_S_GREEN;
		break;
	case SHOW_ST_FAILED:
		snprintf(buf, len, "failed: %s", why);
		*style = SAGACTL_S_RED;
		break;
	case SHOW_ST_GAVE_UP:
		snprintf(buf, len, "gave up after %d: %s", st.attempts, why);
		*style = SAGACTL_S_RED;
		break;
	case SHOW_ST_SKIPPED:
		snprintf(buf, len, "skipped by hand");
		*style = SAGACTL_S_MAGENTA;
		break;
	case SHOW_ST_IN_FLIGHT:
		snprintf(buf, len, "attempt %d in flight", st.attempts);
		*style = SAGACTL_S_CYAN;
		break;
	case SHOW_ST_WAITING:
		snprintf(
		    buf, len, "retrying (%d attempts so far)", st.attempts);
		*style = SAGACTL_S_YELLOW;
		break;
	case SHOW_ST_NO_OUTCOME:
		snprintf(buf, len, "no outcome (attempt %d)", st.attempts);
		*style = SAGACTL_S_DIM;
		break;
	}
	return (buf);
}

static int
show_steps(const show *s)
{
	static const char *const head[] = { "#", "STEP", "KIND", "PARTICIPANT",
		"ACTION", "COMPENSATION", "OUTPUT" };
	sagactl_table *t = NULL;
	int            rv;

	if (s->def == NULL) {
		fprintf(s->ctx->out.f,
		    "\n(The definition of this saga cannot be read: steps are "
		    "shown by number.)\n");
		return (0);
	}
	if ((rv = sagactl_table_alloc(&t, 7, head)) != 0) {
		return (rv);
	}
	sagactl_table_indent(t, 2);
	sagactl_table_right(t, 0);
	for (size_t i = 0; i < s->def->nsteps; i++) {
		const saga_step_def *d = &s->def->steps[i];
		show_stat            a = show_step_stat(s, (int32_t) i, 0);
		show_stat            c = show_step_stat(s, (int32_t) i, 1);
		char                *at, *ct;
		sagactl_style        as = SAGACTL_S_NONE, cs = SAGACTL_S_NONE;
		char                *out;

		if (d->compensation == NULL && c.attempts == 0) {
			c.status = SHOW_ST_NONE;
		}
		at  = show_stat_text(&s->ctx->out, a, &as);
		ct  = show_stat_text(&s->ctx->out, c, &cs);
		out = show_val_json(proto_val_get(s->outputs, d->name));
		if (at == NULL || ct == NULL) {
			rv = SAGA_ENOMEM;
		}
		rv |= sagactl_table_addf(t, SAGACTL_S_NONE, "%zu", i);
		rv |= sagactl_table_add(t, d->name,
		    (int32_t) i == s->step && !s->terminal ? SAGACTL_S_BOLD
		                                           : SAGACTL_S_NONE);
		rv |= sagactl_table_add(t, saga_step_kind_name(d->kind),
		    d->kind == SAGA_STEP_PIVOT ? SAGACTL_S_YELLOW
		                               : SAGACTL_S_NONE);
		rv |= sagactl_table_add(t, d->participant, SAGACTL_S_NONE);
		rv |= sagactl_table_add(t, at, as);
		rv |= sagactl_table_add(t, ct, cs);
		rv |= sagactl_table_add(t, out, SAGACTL_S_DIM);
		free(at);
		free(ct);
		free(out);
	}
	if (rv == 0) {
		fprintf(s->ctx->out.f, "\n%sSteps%s\n",
		    sagactl_out_style_on(&s->ctx->out, SAGACTL_S_BOLD),
		    sagactl_out_style_off(&s->ctx->out, SAGACTL_S_BOLD));
		sagactl_table_print(t, &s->ctx->out);
	}
	sagactl_table_free(t);
	return (rv != 0 ? SAGA_ENOMEM : 0);
}

/* Short names of the log's events, for the timeline. */
static const char *
show_event_label(int type, const char *name, sagactl_style *st)
{
	*st = SAGACTL_S_NONE;
	switch (type) {
	case SAGA_LOG_STARTED:
		return ("started");
	case SAGA_LOG_SENT:
		*st = SAGACTL_S_DIM;
		return ("sent");
	case SAGA_LOG_OK:
		*st = SAGACTL_S_GREEN;
		return ("ok");
	case SAGA_LOG_FAILED:
		*st = SAGACTL_S_RED;
		return ("failed");
	case SAGA_LOG_RETRY:
		*st = SAGACTL_S_MAGENTA;
		return ("retry");
	case SAGA_LOG_GAVE_UP:
		*st = SAGACTL_S_RED;
		return ("gave up");
	case SAGA_LOG_COMPENSATING:
		*st = SAGACTL_S_YELLOW;
		return ("compensating");
	case SAGA_LOG_COMPLETED:
		*st = SAGACTL_S_GREEN;
		return ("completed");
	case SAGA_LOG_COMPENSATED:
		*st = SAGACTL_S_YELLOW;
		return ("compensated");
	case SAGA_LOG_PARKED:
		*st = SAGACTL_S_RED_BOLD;
		return ("FAILED, parked");
	case SAGA_LOG_CANCEL:
		*st = SAGACTL_S_BOLD;
		return ("cancel");
	case SAGA_LOG_OP_RETRY:
		*st = SAGACTL_S_BOLD;
		return ("operator retry");
	case SAGA_LOG_RESOLVED:
		*st = SAGACTL_S_BOLD;
		return ("resolved");
	case SAGA_LOG_SKIPPED:
		*st = SAGACTL_S_BOLD;
		return ("skipped");
	case SAGA_LOG_DEADLINE:
		*st = SAGACTL_S_RED;
		return ("deadline");
	case SAGA_LOG_LOAD_FAILED:
		*st = SAGACTL_S_RED;
		return ("not loaded");
	case SAGA_LOG_CANCEL_REFUSED:
		*st = SAGACTL_S_BOLD;
		return ("cancel refused");
	default:
		return (name);
	}
}

#define SHOW_TL_COLS   8 /* timeline columns before the chart */
#define SHOW_CHART_MIN 24 /* cells of the chart, at least */
#define SHOW_CHART_MAX 120
/* A timeline cell holds a step name whole (the loader takes names of up
 * to COORD_CONFIG_NAME_MAX characters) or a short fixed text. */
#define SHOW_TL_CELL (COORD_CONFIG_NAME_MAX + 32)

/* The text cells of timeline row i. */
static void
show_timeline_cells(
    const show *s, size_t i, char cells[][SHOW_TL_CELL], sagactl_style *styles)
{
	const sagactl_chart_ev *e       = &s->cevs[i];
	const char             *outcome = show_ev_str(s, i, SHOW_E_OUTCOME);
	char                    nb[32], d[32];

	memset(styles, 0, SHOW_TL_COLS * sizeof(*styles));
	sagactl_out_clock(e->at_ms, cells[0], SHOW_TL_CELL);
	snprintf(cells[1], SHOW_TL_CELL, "+%s",
	    sagactl_out_dur(e->at_ms - s->created, d, sizeof(d)));
	snprintf(cells[2], SHOW_TL_CELL, "%s",
	    e->step >= 0 ? show_step_name(s, e->step, nb, sizeof(nb)) : "");
	snprintf(cells[3], SHOW_TL_CELL, "%s",
	    e->kind == SAGA_KIND_COMP         ? "comp"
	        : e->kind == SAGA_KIND_ACTION ? "action"
	                                      : "");
	if (e->attempt > 0) {
		snprintf(cells[4], SHOW_TL_CELL, "%d", e->attempt);
	} else {
		cells[4][0] = '\0';
	}
	snprintf(cells[5], SHOW_TL_CELL, "%s",
	    show_event_label(
	        e->type, show_ev_str(s, i, SHOW_E_EVENT), &styles[5]));
	snprintf(cells[6], SHOW_TL_CELL, "%s", outcome ? outcome : "");
	if (PQgetisnull(s->evr, (int) i, SHOW_E_DURATION)) {
		cells[7][0] = '\0';
	} else {
		int64_t us
		    = sagactl_db_i64(s->evr, (int) i, SHOW_E_DURATION, 0);

		if (us < 1000) {
			snprintf(cells[7], SHOW_TL_CELL, "%lldus",
			    (long long) us);
		} else {
			sagactl_out_dur(us / 1000, cells[7], SHOW_TL_CELL);
		}
	}
	if (e->kind == SAGA_KIND_COMP) {
		styles[3] = SAGACTL_S_YELLOW;
	}
	if (outcome != NULL && strcmp(outcome, "ok") != 0) {
		styles[6] = SAGACTL_S_RED;
	}
}

static int
show_timeline(const show *s)
{
	static const char *const names[] = { "TIME", "OFFSET", "STEP", "KIND",
		"ATT", "EVENT", "OUTCOME", "DURATION", "", "ERROR" };
	const sagactl_out       *o       = &s->ctx->out;
	char                     cells[SHOW_TL_COLS][SHOW_TL_CELL];
	sagactl_style            styles[SHOW_TL_COLS];
	size_t                   w[SHOW_TL_COLS];
	size_t                   fixed  = 2, chart_w;
	bool                     errors = false;
	sagactl_chart            chart;
	sagactl_table           *t = NULL;
	char                     axis[256], legend[512];
	const char              *hp[SHOW_TL_COLS + 2];
	int                      rv;

	if (s->n == 0) {
		fprintf(o->f, "\n(No event in the log.)\n");
		return (0);
	}
	/* The chart takes the room that the other columns leave. */
	for (size_t c = 0; c < SHOW_TL_COLS; c++) {
		w[c] = strlen(names[c]);
	}
	for (size_t i = 0; i < s->n; i++) {
		show_timeline_cells(s, i, cells, styles);
		for (size_t c = 0; c < SHOW_TL_COLS; c++) {
			size_t cw = sagactl_out_textwidth(cells[c]);

			if (cw > w[c]) {
				w[c] = cw;
			}
		}
		if (show_ev_str(s, i, SHOW_E_ERROR) != NULL) {
			errors = true;
		}
	}
	for (size_t c = 0; c < SHOW_TL_COLS; c++) {
		fixed += w[c] + 2;
	}
	/* At least SHOW_CHART_MIN cells, even if the lines get long;
	 * errors, last, keep some room when there is room. */
	chart_w
	    = (size_t) o->width > fixed + (errors ? 20 : 0) + SHOW_CHART_MIN
	    ? (size_t) o->width - fixed - (errors ? 20 : 0)
	    : SHOW_CHART_MIN;
	if (chart_w > SHOW_CHART_MAX) {
		chart_w = SHOW_CHART_MAX;
	}
	sagactl_chart_init(&chart, s->cevs, s->n, s->created, s->ctx->now_ms,
	    !s->terminal, chart_w);
	sagactl_chart_axis(&chart, axis, sizeof(axis));
	for (size_t c = 0; c < SHOW_TL_COLS + 2; c++) {
		hp[c] = c == SHOW_TL_COLS ? axis : names[c];
	}
	if ((rv = sagactl_table_alloc(&t, SHOW_TL_COLS + 2, hp)) != 0) {
		return (rv);
	}
	sagactl_table_indent(t, 2);
	sagactl_table_blank(t);
	sagactl_table_right(t, 1);
	sagactl_table_right(t, 4);
	sagactl_table_right(t, 7);
	for (size_t i = 0; i < s->n; i++) {
		char        raw[256], styled[4096];
		const char *err = show_ev_str(s, i, SHOW_E_ERROR);

		show_timeline_cells(s, i, cells, styles);
		for (size_t c = 0; c < SHOW_TL_COLS; c++) {
			rv |= sagactl_table_add(t, cells[c], styles[c]);
		}
		sagactl_chart_row(&chart, i, raw);
		if (err == NULL) {
			/* Nothing after the chart: no trailing blanks. */
			size_t k = strlen(raw);

			while (k > 0 && raw[k - 1] == ' ') {
				raw[--k] = '\0';
			}
		}
		sagactl_chart_render(o, raw, styled, sizeof(styled));
		rv |= sagactl_table_add_styled(t, styled, strlen(raw));
		rv |= sagactl_table_add(t, err,
		    s->cevs[i].outcome > 0
		            || s->cevs[i].type == SAGA_LOG_PARKED
		        ? SAGACTL_S_RED
		        : SAGACTL_S_NONE);
	}
	if (rv == 0) {
		fprintf(o->f, "\n%sTimeline%s\n",
		    sagactl_out_style_on(o, SAGACTL_S_BOLD),
		    sagactl_out_style_off(o, SAGACTL_S_BOLD));
		sagactl_table_print(t, o);
		sagactl_chart_legend(&chart, legend, sizeof(legend));
		fprintf(o->f, "\n  Chart: %s\n", legend);
	}
	sagactl_table_free(t);
	return (rv != 0 ? SAGA_ENOMEM : 0);
}

int
sagactl_show_run(sagactl_ctx *ctx, int argc, char **argv)
{
	show    s;
	PGconn *c = NULL;
	int     first, rv;

	memset(&s, 0, sizeof(s));
	s.ctx = ctx;
	proto_buf_init(&s.shown);
	if ((rv = sagactl_parse(ctx, argc, argv, NULL, NULL, NULL, &first))
	    != 0) {
		return (rv);
	}
	if (first >= argc) {
		return (sagactl_usage(ctx, "give the saga id to show"));
	}
	if (argc - first > 1) {
		return (sagactl_usage(ctx,
		    "one saga at a time; unexpected "
		    "argument \"%s\"",
		    argv[first + 1]));
	}
	if ((rv = sagactl_parse_id(ctx, argv[first], s.id)) != 0) {
		return (rv);
	}
	if ((rv = sagactl_db_open(ctx, false, &c)) != 0) {
		return (rv);
	}
	if ((rv = show_load(&s, c)) == 0) {
		if (ctx->json) {
			rv = show_json(&s);
		} else {
			show_header(&s);
			if ((rv = show_steps(&s)) == 0) {
				rv = show_timeline(&s);
			}
		}
		if (rv != 0) {
			rv = sagactl_error(ctx, "cannot print saga %s: %s",
			    s.id, saga_strerror(rv));
		}
	}
	show_fini(&s);
	PQfinish(c);
	return (rv);
}
