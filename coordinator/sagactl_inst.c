/* SPDX-License-Identifier: MIT */
/*
 * sagactl_inst: `sagactl instances`, the sagad instances sharing the
 * database: their heartbeats and the leases they hold (docs/cli.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saga_err.h"
#include "sagactl.h"
#include "sagactl_db.h"
#include "sagactl_inst.h"
#include "sagactl_out.h"

enum {
	INST_ID,
	INST_HOST,
	INST_PID,
	INST_LISTEN,
	INST_STARTED,
	INST_HEARTBEAT,
	INST_AGE_MS,
	INST_STOPPED,
	INST_LEASES,
	INST_EXPIRED,
};

static int
inst_json(const sagactl_ctx *ctx, const PGresult *r)
{
	proto_obj   *root = NULL, *o = NULL;
	sagactl_jarr arr;
	int          rv;

	sagactl_jarr_init(&arr);
	if ((rv = proto_obj_alloc(&root)) != 0 ||
	    (rv = proto_obj_alloc(&o)) != 0) {
		goto done;
	}
	for (int i = 0; i < PQntuples(r) && rv == 0; i++) {
		proto_obj_reset(o);
		rv |= proto_obj_put_str(o, "id", PQgetvalue(r, i, INST_ID));
		rv |= sagactl_out_put_str(o, "host", sagactl_db_str(r, i, INST_HOST));
		rv |= proto_obj_put_int(
		    o, "pid", sagactl_db_i64(r, i, INST_PID, 0));
		rv |= sagactl_out_put_str(
		    o, "listen", sagactl_db_str(r, i, INST_LISTEN));
		rv |= sagactl_out_put_time(
		    o, "started_at", sagactl_db_i64(r, i, INST_STARTED, 0));
		rv |= sagactl_out_put_time(
		    o, "heartbeat_at", sagactl_db_i64(r, i, INST_HEARTBEAT, 0));
		rv |= proto_obj_put_float(o, "heartbeat_age_s",
		    (double) sagactl_db_i64(r, i, INST_AGE_MS, 0) / 1e3);
		rv |= sagactl_out_put_time(
		    o, "stopped_at", sagactl_db_i64(r, i, INST_STOPPED, 0));
		rv |= proto_obj_put_int(
		    o, "leases", sagactl_db_i64(r, i, INST_LEASES, 0));
		rv |= proto_obj_put_int(o, "leases_expired",
		    sagactl_db_i64(r, i, INST_EXPIRED, 0));
		rv |= sagactl_jarr_add_obj(&arr, o);
	}
	if (rv == 0 && (rv = sagactl_jarr_put(&arr, root, "instances")) == 0) {
		rv = sagactl_out_json(&ctx->out, root);
	}
done:
	sagactl_jarr_fini(&arr);
	proto_obj_free(o);
	proto_obj_free(root);
	return (rv);
}

static int
inst_table(const sagactl_ctx *ctx, const PGresult *r)
{
	static const char *head[] = { "INSTANCE", "HOST", "PID", "LISTEN",
		"HEARTBEAT", "LEASES", "STATUS" };
	sagactl_table *t = NULL;
	int            rv;

	if ((rv = sagactl_table_alloc(&t, 7, head)) != 0) {
		return (rv);
	}
	sagactl_table_right(t, 2);
	sagactl_table_right(t, 5);
	for (int i = 0; i < PQntuples(r); i++) {
		char        age[32];
		int64_t     hb      = sagactl_db_i64(r, i, INST_AGE_MS, 0);
		bool        stopped = !PQgetisnull(r, i, INST_STOPPED);
		const char *status;
		sagactl_style st;

		if (stopped) {
			status = "stopped";
			st     = SAGACTL_S_DIM;
		} else if (sagactl_db_i64(r, i, INST_EXPIRED, 0) > 0) {
			status = "leases expired";
			st     = SAGACTL_S_RED;
		} else if (hb > 10000) {
			status = "silent";
			st     = SAGACTL_S_YELLOW;
		} else {
			status = "live";
			st     = SAGACTL_S_GREEN;
		}
		rv |= sagactl_table_add(t, PQgetvalue(r, i, INST_ID),
		    SAGACTL_S_BOLD);
		rv |= sagactl_table_add(t, PQgetvalue(r, i, INST_HOST),
		    SAGACTL_S_NONE);
		rv |= sagactl_table_add(t, PQgetvalue(r, i, INST_PID),
		    SAGACTL_S_NONE);
		rv |= sagactl_table_add(t, PQgetvalue(r, i, INST_LISTEN),
		    SAGACTL_S_NONE);
		rv |= sagactl_table_addf(t, SAGACTL_S_NONE, "%s ago",
		    sagactl_out_dur(hb, age, sizeof(age)));
		rv |= sagactl_table_add(t, PQgetvalue(r, i, INST_LEASES),
		    SAGACTL_S_NONE);
		rv |= sagactl_table_add(t, status, st);
	}
	if (rv == 0) {
		sagactl_table_print(t, &ctx->out);
	}
	sagactl_table_free(t);
	return (rv != 0 ? SAGA_ENOMEM : 0);
}

int
sagactl_inst_run(sagactl_ctx *ctx, int argc, char **argv)
{
	PGconn   *c = NULL;
	PGresult *r;
	int       first, rv;

	if ((rv = sagactl_parse(ctx, argc, argv, NULL, NULL, NULL, &first)) !=
	    0) {
		return (rv);
	}
	if (first < argc) {
		return (sagactl_usage(
		    ctx, "unexpected argument \"%s\"", argv[first]));
	}
	if ((rv = sagactl_db_open(ctx, false, &c)) != 0) {
		return (rv);
	}
	r = sagactl_db_query(ctx, c,
	    "SELECT i.instance_id, i.host, i.pid, i.listen,"
	    " (extract(epoch FROM i.started_at) * 1000)::bigint,"
	    " (extract(epoch FROM i.heartbeat_at) * 1000)::bigint,"
	    " (extract(epoch FROM now() - i.heartbeat_at) * 1000)::bigint,"
	    " (extract(epoch FROM i.stopped_at) * 1000)::bigint,"
	    " count(s.id), count(s.id) FILTER (WHERE s.lease_until < now())"
	    " FROM saga_coordinator i LEFT JOIN saga_instance s"
	    " ON s.owner = i.instance_id"
	    " AND s.state IN ('RUNNING', 'COMPENSATING')"
	    " GROUP BY i.instance_id ORDER BY i.stopped_at IS NOT NULL,"
	    " i.heartbeat_at DESC",
	    0, NULL);
	if (r == NULL) {
		PQfinish(c);
		return (SAGACTL_EXIT_FAIL);
	}
	if (ctx->json) {
		rv = inst_json(ctx, r);
	} else if (PQntuples(r) == 0) {
		sagactl_note(ctx, "no sagad instance has registered yet");
	} else {
		rv = inst_table(ctx, r);
	}
	if (rv > SAGACTL_EXIT_FAIL) {
		rv = sagactl_error(ctx, "cannot print the instances: %s",
		    saga_strerror(rv));
	}
	PQclear(r);
	PQfinish(c);
	return (rv);
}
