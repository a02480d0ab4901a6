/* SPDX-License-Identifier: MIT */
/*
 * saga-orders: the demo orders service (database saga_orders).
 *
 *   order.create   action        inserts the order, state PENDING; the
 *                                order id is the saga id
 *   order.reject   compensation  PENDING -> REJECTED
 *   order.approve  action        PENDING -> APPROVED (after the payment:
 *                                a retriable step)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

extern const sql_migration orders_migrations[];
extern const size_t        orders_migrations_count;

static int
orders_create(saga_call *call, void *arg)
{
	char        customer[128], sku[128], qtys[24], amounts[24];
	char        address[DEMO_ADDRESS_MAX + 1];
	int64_t     qty, amount;
	const char *params[5];
	PGresult   *res;
	proto_obj  *out;

	(void) arg;
	if (demo_str(call, "customer_id", customer, sizeof(customer)) != 0 ||
	    demo_str(call, "sku", sku, sizeof(sku)) != 0 ||
	    demo_int(call, "qty", INT32_MAX, &qty) != 0 ||
	    demo_int(call, "amount", INT64_MAX, &amount) != 0 ||
	    demo_address(call, address, sizeof(address)) != 0) {
		/* The shipment, past the pivot, needs the address: a bad
		 * one fails the order here, where it can be undone. */
		return (0);
	}
	snprintf(qtys, sizeof(qtys), "%lld", (long long) qty);
	snprintf(amounts, sizeof(amounts), "%lld", (long long) amount);
	params[0] = saga_call_id_text(call);
	params[1] = customer;
	params[2] = sku;
	params[3] = qtys;
	params[4] = amounts;
	res = demo_sql_named(call, "demo_order",
	    "INSERT INTO orders (order_id, customer_id, sku, qty, amount,"
	    " state) VALUES ($1, $2, $3, $4, $5, 'PENDING')",
	    5, params);
	if (res == NULL) {
		return (saga_call_retry(call, "inserting the order failed"));
	}
	PQclear(res);
	if ((out = saga_call_output(call)) == NULL ||
	    proto_obj_put_str(out, "order_id", saga_call_id_text(call)) != 0) {
		return (SAGA_ENOMEM);
	}
	return (saga_call_ok(call, out));
}

/* Moves the order from PENDING to state; an order already there is
 * fine (the barrier makes this rare, an operator's SQL might not). */
static int
orders_move(saga_call *call, const char *state)
{
	const char *params[2] = { saga_call_id_text(call), state };
	PGresult   *res;
	int         n;

	res = demo_sql(call,
	    "UPDATE orders SET state = $2, updated_at = now()"
	    " WHERE order_id = $1 AND state IN ('PENDING', $2)",
	    2, params);
	if (res == NULL) {
		return (saga_call_retry(call, "updating the order failed"));
	}
	n = atoi(PQcmdTuples(res));
	PQclear(res);
	if (n == 0) {
		return (saga_call_fail(call, "order %s is not PENDING",
		    saga_call_id_text(call)));
	}
	return (saga_call_ok(call, NULL));
}

static int
orders_approve(saga_call *call, void *arg)
{
	(void) arg;
	return (orders_move(call, "APPROVED"));
}

static int
orders_reject(saga_call *call, void *arg)
{
	(void) arg;
	return (orders_move(call, "REJECTED"));
}

static int
orders_setup(saga_participant *p)
{
	int rv;

	if ((rv = saga_participant_on_action(p, "order.create", orders_create,
	         NULL)) != 0 ||
	    (rv = saga_participant_on_action(p, "order.approve",
	         orders_approve, NULL)) != 0) {
		return (rv);
	}
	return (saga_participant_on_compensation(
	    p, "order.reject", orders_reject, NULL));
}

int
main(int argc, char **argv)
{
	demo_service svc = {
		.name  = "orders",
		.about = "The demo orders service: order.create, "
		         "order.approve, order.reject.",
		.migs  = orders_migrations,
		.nmigs = 0,
		.setup = orders_setup,
	};

	svc.nmigs = orders_migrations_count;
	return (demo_main(argc, argv, &svc));
}
