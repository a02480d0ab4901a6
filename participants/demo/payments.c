/* SPDX-License-Identifier: MIT */
/*
 * saga-payments: the demo payments service (database saga_payments).
 *
 *   payment.charge  action        takes amount from the customer's
 *                                 balance and records the payment; a
 *                                 business failure when funds are short
 *   payment.refund  compensation  gives the money back
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

extern const sql_migration payments_migrations[];
extern const size_t        payments_migrations_count;

static int
payments_charge(saga_call *call, void *arg)
{
	char        customer[128], amounts[24];
	int64_t     amount;
	const char *params[3];
	PGresult   *res;
	proto_obj  *out;
	int64_t     balance;

	(void) arg;
	if (demo_str(call, "customer_id", customer, sizeof(customer)) != 0 ||
	    demo_int(call, "amount", INT64_MAX, &amount) != 0) {
		return (0);
	}
	snprintf(amounts, sizeof(amounts), "%lld", (long long) amount);
	/* One statement, one round trip: the payment is written only if
	 * the balance could be charged. */
	params[0] = saga_call_id_text(call);
	params[1] = customer;
	params[2] = amounts;
	res = demo_sql_named(call, "demo_charge",
	    "WITH a AS (UPDATE accounts SET balance = balance - $3"
	    " WHERE customer_id = $2 AND balance >= $3"
	    " RETURNING customer_id, balance)"
	    " INSERT INTO payments (saga_id, customer_id, amount, state)"
	    " SELECT $1::uuid, a.customer_id, $3, 'CHARGED' FROM a"
	    " RETURNING (SELECT balance FROM a)",
	    3, params);
	if (res == NULL) {
		return (saga_call_retry(call, "charging failed"));
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		params[0] = customer;
		res = demo_sql(call,
		    "SELECT balance FROM accounts WHERE customer_id = $1", 1,
		    params);
		if (res == NULL) {
			return (saga_call_retry(call, "reading the account "
			                              "failed"));
		}
		if (PQntuples(res) == 0) {
			PQclear(res);
			return (saga_call_fail(call, "no account for %s",
			    customer));
		}
		saga_call_fail(call,
		    "insufficient funds: %s has %s cents, %lld needed",
		    customer, PQgetvalue(res, 0, 0), (long long) amount);
		PQclear(res);
		return (0);
	}
	balance = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if ((out = saga_call_output(call)) == NULL ||
	    proto_obj_put_int(out, "charged", amount) != 0 ||
	    proto_obj_put_int(out, "balance", balance) != 0) {
		return (SAGA_ENOMEM);
	}
	return (saga_call_ok(call, out));
}

static int
payments_refund(saga_call *call, void *arg)
{
	const char *params[2] = { saga_call_id_text(call), NULL };
	char        customer[128], amount[24];
	PGresult   *res;

	(void) arg;
	res = demo_sql(call,
	    "UPDATE payments SET state = 'REFUNDED', updated_at = now()"
	    " WHERE saga_id = $1 AND state = 'CHARGED'"
	    " RETURNING customer_id, amount",
	    1, params);
	if (res == NULL) {
		return (saga_call_retry(call, "refunding failed"));
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		return (saga_call_ok(call, NULL));
	}
	snprintf(customer, sizeof(customer), "%s", PQgetvalue(res, 0, 0));
	snprintf(amount, sizeof(amount), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	params[0] = customer;
	params[1] = amount;
	res = demo_sql_named(call, "demo_refund",
	    "UPDATE accounts SET balance = balance + $2"
	    " WHERE customer_id = $1",
	    2, params);
	if (res == NULL) {
		return (saga_call_retry(call, "crediting failed"));
	}
	PQclear(res);
	return (saga_call_ok(call, NULL));
}

static int
payments_setup(saga_participant *p)
{
	int rv;

	if ((rv = saga_participant_on_action(p, "payment.charge",
	         payments_charge, NULL)) != 0) {
		return (rv);
	}
	return (saga_participant_on_compensation(
	    p, "payment.refund", payments_refund, NULL));
}

int
main(int argc, char **argv)
{
	demo_service svc = {
		.name  = "payments",
		.about = "The demo payments service: payment.charge, "
		         "payment.refund.",
		.migs  = payments_migrations,
		.setup = payments_setup,
	};

	svc.nmigs = payments_migrations_count;
	return (demo_main(argc, argv, &svc));
}
