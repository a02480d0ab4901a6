/* SPDX-License-Identifier: MIT */
/*
 * saga-shipping: the demo shipping service (database saga_shipping).
 *
 *   shipment.schedule  action  records the shipment (after the payment:
 *                              a retriable step, never compensated)
 */
#include <stdio.h>
#include <string.h>

#include "demo.h"

extern const sql_migration shipping_migrations[];
extern const size_t        shipping_migrations_count;

static int
shipping_schedule(saga_call *call, void *arg)
{
	char        sku[128], qtys[24], address[DEMO_ADDRESS_MAX + 1];
	int64_t     qty;
	const char *params[4];
	PGresult   *res;
	proto_obj  *out;

	(void) arg;
	if (demo_str(call, "sku", sku, sizeof(sku)) != 0 ||
	    demo_int(call, "qty", INT32_MAX, &qty) != 0 ||
	    demo_address(call, address, sizeof(address)) != 0) {
		return (0);
	}
	snprintf(qtys, sizeof(qtys), "%lld", (long long) qty);
	params[0] = saga_call_id_text(call);
	params[1] = sku;
	params[2] = qtys;
	params[3] = address;
	res = demo_sql_named(call, "demo_shipment",
	    "INSERT INTO shipments (saga_id, sku, qty, address, state)"
	    " VALUES ($1, $2, $3, $4, 'SCHEDULED')",
	    4, params);
	if (res == NULL) {
		return (saga_call_retry(call, "scheduling failed"));
	}
	PQclear(res);
	if ((out = saga_call_output(call)) == NULL ||
	    proto_obj_put_str(out, "shipment_id", saga_call_id_text(call)) !=
	        0) {
		return (SAGA_ENOMEM);
	}
	return (saga_call_ok(call, out));
}

static int
shipping_setup(saga_participant *p)
{
	return (saga_participant_on_action(
	    p, "shipment.schedule", shipping_schedule, NULL));
}

int
main(int argc, char **argv)
{
	demo_service svc = {
		.name  = "shipping",
		.about = "The demo shipping service: shipment.schedule.",
		.migs  = shipping_migrations,
		.setup = shipping_setup,
	};

	svc.nmigs = shipping_migrations_count;
	return (demo_main(argc, argv, &svc));
}
