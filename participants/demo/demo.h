/* SPDX-License-Identifier: MIT */
/*
 * demo: what the four demo services (orders, inventory, payments,
 * shipping) share: command-line handling, migrations, signals, and small
 * helpers for reading the saga input and running SQL inside the call's
 * transaction.
 */
#ifndef PARTICIPANTS_DEMO_DEMO_H
#define PARTICIPANTS_DEMO_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include <saga/participant.h>

#include "sql_migrate.h"

/* demo_service describes one service. */
typedef struct demo_service {
	const char          *name;  /* "orders" */
	const char          *about; /* one line for --help */
	const sql_migration *migs;  /* its schema (sql/<name>/) */
	size_t               nmigs;
	/* setup registers the handlers. Returns 0 or a saga_err. */
	int (*setup)(saga_participant *p);
} demo_service;

/* demo_main parses the command line, applies migrations (--migrate) or
 * serves until SIGTERM/SIGINT. Returns the process exit status. */
int demo_main(int argc, char **argv, const demo_service *svc);

/* demo_str reads input field name, a non-empty string shorter than len
 * bytes without NUL, into buf. Returns 0, or -1 after answering the call
 * failed (bad input does not get better with retries). */
int demo_str(saga_call *call, const char *name, char *buf, size_t len);

/* demo_int reads input field name as an integer in 1..max, like
 * demo_str. */
int demo_int(saga_call *call, const char *name, int64_t max, int64_t *out);

/* The longest shipping address, in bytes. */
#define DEMO_ADDRESS_MAX 512

/* demo_address reads the optional input field "address" into buf (at
 * least DEMO_ADDRESS_MAX + 1 bytes): "(to be confirmed)" when it is
 * missing, null or empty; else like demo_str. order.create checks it,
 * before the pivot, so that the shipment after it never meets an address
 * it cannot store. */
int demo_address(saga_call *call, char *buf, size_t len);

/* demo_sql runs a parameterised statement (text parameters) in the call's
 * transaction. Returns the result (PGRES_COMMAND_OK or TUPLES_OK; the
 * caller clears it), or NULL after logging the error: the transaction is
 * aborted and the library will answer retry. */
PGresult *demo_sql(saga_call *call, const char *sql, int n,
    const char *const *params);

/* demo_sql_named is demo_sql with the statement prepared under name (a
 * string literal starting with "demo_", one per statement: the library's
 * own are saga_barrier_*) on the worker's connection, the first time it
 * runs there: it is parsed once, and PostgreSQL plans it with its values
 * for its first 5 executions, then keeps a generic plan if that costs no
 * more, instead of parsing and planning it at every call. For statements
 * that read no table (an INSERT's values) or a table that stays small
 * (stock, accounts): a generic plan made while a growing table is small
 * can scan it for as long as it is kept, so a lookup in orders,
 * reservations, payments or shipments stays with demo_sql
 * (docs/PERFORMANCE.md, entry 10). */
PGresult *demo_sql_named(saga_call *call, const char *name, const char *sql,
    int n, const char *const *params);

#endif /* PARTICIPANTS_DEMO_DEMO_H */
