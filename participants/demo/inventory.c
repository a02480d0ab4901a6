/* SPDX-License-Identifier: MIT */
/*
 * saga-inventory: the demo inventory service (database saga_inventory).
 *
 *   stock.reserve  action        moves qty of sku from available to
 *                                reserved; a business failure when stock
 *                                is short or the SKU unknown
 *   stock.release  compensation  gives the reservation back
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

extern const sql_migration inventory_migrations[];
extern const size_t        inventory_migrations_count;

static int
inventory_reserve(saga_call *call, void *arg)
{
	char        sku[128], qtys[24];
	int64_t     qty;
	const char *params[3];
	PGresult   *res;
	proto_obj  *out;

	(void) arg;
	if (demo_str(call, "sku", sku, sizeof(sku)) != 0 ||
	    demo_int(call, "qty", INT32_MAX, &qty) != 0) {
		return (0);
	}
	snprintf(qtys, sizeof(qtys), "%lld", (long long) qty);
	/* One statement, one round trip: the reservation is written only
	 * if the stock could be taken. */
	params[0] = saga_call_id_text(call);
	params[1] = sku;
	params[2] = qtys;
	res = demo_sql_named(call, "demo_reserve",
	    "WITH s AS (UPDATE stock SET available = available - $3,"
	    " reserved = reserved + $3"
	    " WHERE sku = $2 AND available >= $3 RETURNING sku)"
	    " INSERT INTO reservations (saga_id, sku, qty, state)"
	    " SELECT $1::uuid, s.sku, $3, 'RESERVED' FROM s",
	    3, params);
	if (res == NULL) {
		return (saga_call_retry(call, "reserving stock failed"));
	}
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		PQclear(res);
		params[0] = sku;
		res = demo_sql(call,
		    "SELECT available FROM stock WHERE sku = $1", 1, params);
		if (res == NULL) {
			return (saga_call_retry(call, "reading stock failed"));
		}
		if (PQntuples(res) == 0) {
			PQclear(res);
			return (saga_call_fail(call, "unknown SKU %s", sku));
		}
		saga_call_fail(call,
		    "insufficient stock of %s: %s available, %lld requested",
		    sku, PQgetvalue(res, 0, 0), (long long) qty);
		PQclear(res);
		return (0);
	}
	PQclear(res);
	if ((out = saga_call_output(call)) == NULL ||
	    proto_obj_put_str(out, "sku", sku) != 0 ||
	    proto_obj_put_int(out, "reserved", qty) != 0) {
		return (SAGA_ENOMEM);
	}
	return (saga_call_ok(call, out));
}

static int
inventory_release(saga_call *call, void *arg)
{
	const char *params[3] = { saga_call_id_text(call), NULL, NULL };
	char        sku[128], qty[24];
	PGresult   *res;

	(void) arg;
	res = demo_sql(call,
	    "UPDATE reservations SET state = 'RELEASED', updated_at = now()"
	    " WHERE saga_id = $1 AND state = 'RESERVED' RETURNING sku, qty",
	    1, params);
	if (res == NULL) {
		return (saga_call_retry(call, "releasing failed"));
	}
	if (PQntuples(res) == 0) {
		/* Nothing reserved for this saga: nothing to give back. */
		PQclear(res);
		return (saga_call_ok(call, NULL));
	}
	snprintf(sku, sizeof(sku), "%s", PQgetvalue(res, 0, 0));
	snprintf(qty, sizeof(qty), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	params[0] = sku;
	params[1] = qty;
	res = demo_sql_named(call, "demo_unreserve",
	    "UPDATE stock SET available = available + $2,"
	    " reserved = reserved - $2 WHERE sku = $1",
	    2, params);
	if (res == NULL) {
		return (saga_call_retry(call, "returning stock failed"));
	}
	PQclear(res);
	return (saga_call_ok(call, NULL));
}

static int
inventory_setup(saga_participant *p)
{
	int rv;

	if ((rv = saga_participant_on_action(p, "stock.reserve",
	         inventory_reserve, NULL)) != 0) {
		return (rv);
	}
	return (saga_participant_on_compensation(
	    p, "stock.release", inventory_release, NULL));
}

int
main(int argc, char **argv)
{
	demo_service svc = {
		.name  = "inventory",
		.about = "The demo inventory service: stock.reserve, "
		         "stock.release.",
		.migs  = inventory_migrations,
		.setup = inventory_setup,
	};

	svc.nmigs = inventory_migrations_count;
	return (demo_main(argc, argv, &svc));
}
