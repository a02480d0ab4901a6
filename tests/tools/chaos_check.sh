#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# chaos_check.sh: the checker of the process-level chaos test
# (scripts/chaos.sh). After a run has settled, it reads the five databases
# of the demo cluster (the coordinator's saga log and the four services'
# tables and barriers), copies what it needs into a scratch database on the
# same server (saga_chaos_check, made afresh) and checks, in SQL, every
# invariant of docs/RELIABILITY.md ("Process-level chaos"):
#
#   terminal     every saga is COMPLETED or COMPENSATED (FAILED only as
#                many as --allow-failed, the permanent compensation
#                failures a test injected: none by default);
#   starts       every order of the load generator has its saga (the one
#                its idempotency key names) and every saga is one of its
#                orders; orders designed to fail never COMPLETED; every
#                COMPENSATED saga's log gives a reason the run allows (its
#                order's designed failure, a step that gave up, the
#                deadline); at least half of the orders designed to
#                succeed COMPLETED;
#   orders       per saga across the services: COMPLETED <=> the order is
#                APPROVED, with exactly one RESERVED reservation, one
#                CHARGED payment and one SCHEDULED shipment matching it;
#                COMPENSATED <=> the order is REJECTED (or was never
#                created), with no RESERVED reservation, no CHARGED
#                payment and no shipment; no business row without a saga;
#   conservation stock per SKU and money per customer conserved against
#                the baseline taken before the load: what left is exactly
#                what the RESERVED reservations and CHARGED payments hold;
#   barrier      each service's saga_barrier agrees with its tables (an
#                action's 'ok' row <=> its business row; compensated
#                action <=> released, refunded, rejected); no 'failed' row
#                but its order's designed business failure (a poor
#                order's charge, a scarce order's reservation); no
#                compensation of a retriable step; every barrier row
#                answers a command that the saga log says was sent
#                (write-ahead); every answer the log acted on is the one
#                the barrier recorded (an action's step_ok or
#                step_failed, a compensation's step_ok);
#   log          each saga's events are seq 1..n without gaps, n being the
#                instance's event_seq, their times non-decreasing with seq,
#                starting with saga_started and ending with the one
#                terminal event that matches the state.
#
# It prints every violation (check, saga, detail), the counts, and a last
# line "violations: N". Exit status 0 only when N is 0.
#
#   chaos_check.sh --load FILE --baseline DIR [--allow-failed N]
#
# --load is chaos_load's output; --baseline holds stock.csv and
# accounts.csv, the services' stock and accounts before the load. The
# server is the one of PGHOST, PGPORT and PGUSER.

set -euo pipefail

prog=${0##*/}
load=
baseline=
allow_failed=0
check_db=saga_chaos_check

usage() {
	sed -n '3,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

while (($# > 0)); do
	case $1 in
	--load)
		load=$2
		shift
		;;
	--baseline)
		baseline=$2
		shift
		;;
	--allow-failed)
		allow_failed=$2
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "$prog: unknown option '$1'" >&2
		exit 2
		;;
	esac
	shift
done
[[ -f $load && -f $baseline/stock.csv && -f $baseline/accounts.csv ]] || {
	echo "$prog: give --load FILE and --baseline DIR (stock.csv," \
	    "accounts.csv)" >&2
	exit 2
}
[[ $allow_failed =~ ^[0-9]+$ ]] || {
	echo "$prog: --allow-failed: expected a count" >&2
	exit 2
}

q() {
	psql -X -q -v ON_ERROR_STOP=1 "$@"
}

# Each database is read in one REPEATABLE READ transaction, so that its
# tables agree with each other even if something still runs (an unsettled
# run); across databases only a settled system is consistent.
tmp=$(mktemp -d /tmp/chaos-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"

# dump DB NAME QUERY [NAME QUERY...]: writes each QUERY's rows to
# $tmp/NAME.csv from one snapshot of DB.
dump() {
	local db=$1
	shift
	{
		echo "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
		while (($# > 0)); do
			echo "\\copy ($2) TO '$tmp/$1.csv' WITH (FORMAT csv)"
			shift 2
		done
		echo "COMMIT;"
	} | q -d "$db"
}

q -d postgres -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS $check_db" >/dev/null
q -d postgres -c "CREATE DATABASE $check_db" >/dev/null
q -d "$check_db" <<'EOF'
CREATE TABLE si (id uuid PRIMARY KEY, saga_name text, state text,
    event_seq integer, last_error text);
CREATE TABLE ev (saga_id uuid, seq integer, at timestamptz, step integer,
    kind smallint, attempt integer, event text, outcome text);
CREATE TABLE sk (key text PRIMARY KEY, saga_id uuid);
CREATE TABLE ord (order_id uuid PRIMARY KEY, customer_id text, sku text,
    qty integer, amount bigint, state text);
CREATE TABLE res (saga_id uuid PRIMARY KEY, sku text, qty integer,
    state text);
CREATE TABLE stk (sku text PRIMARY KEY, available integer,
    reserved integer);
CREATE TABLE pay (saga_id uuid PRIMARY KEY, customer_id text,
    amount bigint, state text);
CREATE TABLE acc (customer_id text PRIMARY KEY, balance bigint);
CREATE TABLE shp (saga_id uuid PRIMARY KEY, sku text, qty integer,
    state text);
-- The four barriers; svc names the service, error is why a failed
-- action failed.
CREATE TABLE bar (svc text, saga_id uuid, step integer, kind smallint,
    outcome text, error text, PRIMARY KEY (svc, saga_id, step, kind));
-- The business failures the load designed (chaos_load.c), by kind of
-- order: where the order fails, and why. Every other order has more stock
-- and money than the load can use (chaos.sh tops them up).
CREATE TABLE design (kind text PRIMARY KEY, svc text, step integer,
    why text);
INSERT INTO design VALUES
    ('poor', 'payments', 2, 'bob cannot pay'),
    ('scarce', 'inventory', 1, 'there is one gadget');
-- The steps of create_order (participants/examples/create_order.yaml).
CREATE TABLE stp (step integer PRIMARY KEY, name text);
INSERT INTO stp VALUES (0, 'create_order'), (1, 'reserve_stock'),
    (2, 'charge_payment'), (3, 'schedule_shipment'), (4, 'approve_order');
CREATE TABLE base_stk (sku text PRIMARY KEY, available integer,
    reserved integer);
CREATE TABLE base_acc (customer_id text PRIMARY KEY, balance bigint);
-- chaos_load's lines: INDEX KEY SAGA_ID KIND CUSTOMER SKU QTY AMOUNT
-- CREATED.
CREATE TABLE ld (idx bigint, key text, saga_id uuid, kind text,
    customer_id text, sku text, qty integer, amount bigint,
    created boolean);
CREATE TABLE violation (chk text, saga_id uuid, detail text);
EOF

dump saga_coordinator \
    si "SELECT id, saga_name, state, event_seq, last_error FROM saga_instance" \
    ev "SELECT saga_id, seq, at, step, kind, attempt, event, outcome FROM saga_event" \
    sk "SELECT key, saga_id FROM saga_start_key"
dump saga_orders \
    ord "SELECT order_id, customer_id, sku, qty, amount, state FROM orders" \
    bar_orders "SELECT 'orders', saga_id, step, kind, outcome, error FROM saga_barrier"
dump saga_inventory \
    res "SELECT saga_id, sku, qty, state FROM reservations" \
    stk "SELECT sku, available, reserved FROM stock" \
    bar_inventory "SELECT 'inventory', saga_id, step, kind, outcome, error FROM saga_barrier"
dump saga_payments \
    pay "SELECT saga_id, customer_id, amount, state FROM payments" \
    acc "SELECT customer_id, balance FROM accounts" \
    bar_payments "SELECT 'payments', saga_id, step, kind, outcome, error FROM saga_barrier"
dump saga_shipping \
    shp "SELECT saga_id, sku, qty, state FROM shipments" \
    bar_shipping "SELECT 'shipping', saga_id, step, kind, outcome, error FROM saga_barrier"
for t in si ev sk ord res stk pay acc shp; do
	q -d "$check_db" -c "\\copy $t FROM '$tmp/$t.csv' WITH (FORMAT csv)"
done
for svc in orders inventory payments shipping; do
	q -d "$check_db" -c "\\copy bar FROM '$tmp/bar_$svc.csv' WITH (FORMAT csv)"
done
q -d "$check_db" -c "\\copy base_stk FROM '$baseline/stock.csv' WITH (FORMAT csv)"
q -d "$check_db" -c "\\copy base_acc FROM '$baseline/accounts.csv' WITH (FORMAT csv)"
# The load file is space-separated; t/f for created.
q -d "$check_db" -c "\\copy ld FROM '$load' WITH (FORMAT text, DELIMITER ' ')"

q -d "$check_db" -v allow_failed="$allow_failed" <<'EOF'
CREATE INDEX ON ev (saga_id, seq);
CREATE INDEX ON ld (saga_id);
ANALYZE;

-- terminal ------------------------------------------------------------
INSERT INTO violation
SELECT 'terminal', id, 'saga is ' || state || coalesce(' (' || last_error || ')', '')
FROM si WHERE state NOT IN ('COMPLETED', 'COMPENSATED', 'FAILED');
INSERT INTO violation
SELECT 'terminal', NULL, n || ' FAILED sagas, ' || :allow_failed || ' permanent compensation failures injected'
FROM (SELECT count(*) AS n FROM si WHERE state = 'FAILED') f
WHERE n > :allow_failed;

-- starts ---------------------------------------------------------------
INSERT INTO violation
SELECT 'starts', l.saga_id, 'order ' || l.key || ' answered with a saga the log does not hold'
FROM ld l WHERE NOT EXISTS (SELECT 1 FROM si WHERE si.id = l.saga_id);
INSERT INTO violation
SELECT 'starts', l.saga_id, 'key ' || l.key || ' names saga ' || coalesce(k.saga_id::text, 'none') || ' in the log'
FROM ld l LEFT JOIN sk k ON k.key = l.key
WHERE k.saga_id IS DISTINCT FROM l.saga_id;
INSERT INTO violation
SELECT 'starts', NULL, 'key ' || key || ' answered with ' || count(DISTINCT saga_id) || ' different sagas'
FROM ld GROUP BY key HAVING count(DISTINCT saga_id) > 1;
INSERT INTO violation
SELECT 'starts', si.id, 'saga of no order of the load (key ' || coalesce(k.key, 'none') || ')'
FROM si LEFT JOIN sk k ON k.saga_id = si.id
WHERE NOT EXISTS (SELECT 1 FROM ld WHERE ld.saga_id = si.id);
INSERT INTO violation
SELECT 'starts', l.saga_id, 'order designed to fail (' || l.kind || ') COMPLETED'
FROM ld l JOIN si ON si.id = l.saga_id
WHERE l.kind <> 'ok' AND si.state = 'COMPLETED';
-- Every COMPENSATED saga's log says why, and the reason is one the run
-- allows: its order's designed failure (the step_failed of the designed
-- step; the barrier checks below tie it to a 'failed' row with the
-- business reason), a step that gave up (its attempts spent under the
-- faults) or the deadline (the engine compensates only after one of
-- these, or a cancel, and chaos.sh cancels nothing). So an order designed
-- to fail that compensated failed where its design says, unless the
-- faults turned it around before it got there, and an order designed to
-- succeed never compensated for a business reason.
INSERT INTO violation
SELECT 'starts', l.saga_id, 'order designed ' || l.kind || ' (' || l.customer_id ||
    ' buys ' || l.sku || ' x' || l.qty || ' for ' || l.amount || ') COMPENSATED, but its log ' ||
    coalesce('holds no step_failed of ' || d.svc || ' step ' || d.step || ' (' || d.why || '), ',
        'holds ') || 'no step_gave_up and no deadline_passed; last error: ' ||
    coalesce(si.last_error, 'none')
FROM (SELECT DISTINCT ON (saga_id) * FROM ld) l
JOIN si ON si.id = l.saga_id
LEFT JOIN design d ON d.kind = l.kind
WHERE si.state = 'COMPENSATED'
    AND NOT EXISTS (SELECT 1 FROM ev WHERE ev.saga_id = l.saga_id
        AND (ev.event IN ('step_gave_up', 'deadline_passed')
          OR (ev.event = 'step_failed' AND ev.kind = 0 AND ev.step = d.step)));
-- Most orders designed to succeed did: the check above lets any number
-- of them give up under the faults (a coordinator that gave up on every
-- saga would pass every other check).
INSERT INTO violation
SELECT 'starts', NULL, 'only ' || count(*) FILTER (WHERE si.state = 'COMPLETED') ||
    ' of the ' || count(*) || ' orders designed to succeed COMPLETED (fewer than half)'
FROM (SELECT DISTINCT ON (saga_id) kind, saga_id FROM ld) l JOIN si ON si.id = l.saga_id
WHERE l.kind = 'ok'
HAVING count(*) FILTER (WHERE si.state = 'COMPLETED') * 2 < count(*);
INSERT INTO violation
SELECT 'starts', l.saga_id, 'order ' || l.key || ' recorded as ' || coalesce(o.customer_id || ' ' || o.sku || ' x' || o.qty || ' for ' || o.amount, '?')
FROM (SELECT DISTINCT ON (saga_id) * FROM ld) l JOIN ord o ON o.order_id = l.saga_id
WHERE (o.customer_id, o.sku, o.qty, o.amount) <> (l.customer_id, l.sku, l.qty, l.amount);

-- orders: per saga, across the services ---------------------------------
INSERT INTO violation
SELECT 'orders', si.id,
    'COMPLETED but order ' || coalesce(o.state, 'missing') ||
    ', reservation ' || coalesce(r.state, 'missing') ||
    ', payment ' || coalesce(p.state, 'missing') ||
    ', shipment ' || coalesce(s.state, 'missing')
FROM si
LEFT JOIN ord o ON o.order_id = si.id
LEFT JOIN res r ON r.saga_id = si.id
LEFT JOIN pay p ON p.saga_id = si.id
LEFT JOIN shp s ON s.saga_id = si.id
WHERE si.state = 'COMPLETED' AND NOT (o.state IS NOT DISTINCT FROM 'APPROVED'
    AND r.state IS NOT DISTINCT FROM 'RESERVED'
    AND p.state IS NOT DISTINCT FROM 'CHARGED'
    AND s.state IS NOT DISTINCT FROM 'SCHEDULED');
INSERT INTO violation
SELECT 'orders', si.id,
    si.state || ' but order ' || coalesce(o.state, 'none') ||
    ', reservation ' || coalesce(r.state, 'none') ||
    ', payment ' || coalesce(p.state, 'none') ||
    ', shipment ' || coalesce(s.state, 'none')
FROM si
LEFT JOIN ord o ON o.order_id = si.id
LEFT JOIN res r ON r.saga_id = si.id
LEFT JOIN pay p ON p.saga_id = si.id
LEFT JOIN shp s ON s.saga_id = si.id
WHERE si.state = 'COMPENSATED' AND NOT (coalesce(o.state, 'REJECTED') = 'REJECTED'
    AND coalesce(r.state, 'RELEASED') = 'RELEASED'
    AND coalesce(p.state, 'REFUNDED') = 'REFUNDED'
    AND s.saga_id IS NULL);
-- The other direction: a business state that its saga does not explain.
INSERT INTO violation
SELECT 'orders', o.order_id, 'order ' || o.state || ' but saga ' || coalesce(si.state, 'missing')
FROM ord o LEFT JOIN si ON si.id = o.order_id
WHERE si.id IS NULL OR o.state = 'PENDING'
    OR (o.state = 'APPROVED') <> (si.state = 'COMPLETED')
    OR (o.state = 'REJECTED' AND si.state <> 'COMPENSATED');
INSERT INTO violation
SELECT 'orders', r.saga_id, 'reservation ' || r.state || ' without a saga' FROM res r
WHERE NOT EXISTS (SELECT 1 FROM si WHERE si.id = r.saga_id);
INSERT INTO violation
SELECT 'orders', p.saga_id, 'payment ' || p.state || ' without a saga' FROM pay p
WHERE NOT EXISTS (SELECT 1 FROM si WHERE si.id = p.saga_id);
INSERT INTO violation
SELECT 'orders', s.saga_id, 'shipment ' || s.state || ' without a saga' FROM shp s
WHERE NOT EXISTS (SELECT 1 FROM si WHERE si.id = s.saga_id);
-- Each service's row is for the order's own goods and money.
INSERT INTO violation
SELECT 'orders', o.order_id, 'reservation of ' || r.sku || ' x' || r.qty || ' for an order of ' || o.sku || ' x' || o.qty
FROM ord o JOIN res r ON r.saga_id = o.order_id WHERE (r.sku, r.qty) <> (o.sku, o.qty);
INSERT INTO violation
SELECT 'orders', o.order_id, 'payment of ' || p.amount || ' by ' || p.customer_id || ' for an order of ' || o.amount || ' by ' || o.customer_id
FROM ord o JOIN pay p ON p.saga_id = o.order_id WHERE (p.amount, p.customer_id) <> (o.amount, o.customer_id);
INSERT INTO violation
SELECT 'orders', o.order_id, 'shipment of ' || s.sku || ' x' || s.qty || ' for an order of ' || o.sku || ' x' || o.qty
FROM ord o JOIN shp s ON s.saga_id = o.order_id WHERE (s.sku, s.qty) <> (o.sku, o.qty);

-- conservation ---------------------------------------------------------
INSERT INTO violation
SELECT 'conservation', NULL, 'stock of ' || coalesce(b.sku, s.sku) || ': ' ||
    coalesce(b.available + b.reserved, 0) || ' units before, ' ||
    coalesce(s.available + s.reserved, 0) || ' after'
FROM base_stk b FULL JOIN stk s ON s.sku = b.sku
WHERE coalesce(b.available + b.reserved, -1) <> coalesce(s.available + s.reserved, -1);
INSERT INTO violation
SELECT 'conservation', NULL, 'stock of ' || b.sku || ': ' || (s.reserved - b.reserved) ||
    ' units reserved since the start, RESERVED reservations hold ' || coalesce(r.qty, 0)
FROM base_stk b JOIN stk s ON s.sku = b.sku
LEFT JOIN (SELECT sku, sum(qty) AS qty FROM res WHERE state = 'RESERVED' GROUP BY sku) r ON r.sku = b.sku
WHERE s.reserved - b.reserved <> coalesce(r.qty, 0);
INSERT INTO violation
SELECT 'conservation', NULL, 'account of ' || coalesce(b.customer_id, a.customer_id) || ': ' ||
    coalesce(b.balance, 0) || ' before, ' || coalesce(a.balance, 0) ||
    ' after, CHARGED payments hold ' || coalesce(p.amount, 0)
FROM base_acc b FULL JOIN acc a ON a.customer_id = b.customer_id
LEFT JOIN (SELECT customer_id, sum(amount) AS amount FROM pay WHERE state = 'CHARGED' GROUP BY customer_id) p
    ON p.customer_id = coalesce(b.customer_id, a.customer_id)
WHERE coalesce(b.balance, -1) - coalesce(a.balance, -1) <> coalesce(p.amount, 0);

-- barrier: each service's barrier against its tables ---------------------
-- Steps of create_order: 0 create_order (orders), 1 reserve_stock
-- (inventory), 2 charge_payment (payments), 3 schedule_shipment
-- (shipping), 4 approve_order (orders). kind 0 action, 1 compensation.
CREATE VIEW bk AS
SELECT svc, saga_id, step,
    max(outcome) FILTER (WHERE kind = 0) AS act,
    bool_or(kind = 1) AS comp
FROM bar GROUP BY svc, saga_id, step;

INSERT INTO violation
SELECT 'barrier', coalesce(b.saga_id, o.order_id),
    'orders: order.create barrier ' || coalesce(b.act, 'none') || ', order ' || coalesce(o.state, 'none')
FROM (SELECT * FROM bk WHERE svc = 'orders' AND step = 0) b
FULL JOIN ord o ON o.order_id = b.saga_id
WHERE (b.act IS NOT DISTINCT FROM 'ok') <> (o.order_id IS NOT NULL);
INSERT INTO violation
SELECT 'barrier', coalesce(b.saga_id, o.order_id),
    'orders: order.reject barrier ' || CASE WHEN coalesce(b.comp, false) THEN 'ok' ELSE 'none' END ||
    ' (action ' || coalesce(b.act, 'none') || '), order ' || coalesce(o.state, 'none')
FROM (SELECT * FROM bk WHERE svc = 'orders' AND step = 0) b
FULL JOIN ord o ON o.order_id = b.saga_id
WHERE (coalesce(b.comp, false) AND b.act = 'ok') <> (o.state IS NOT DISTINCT FROM 'REJECTED');
INSERT INTO violation
SELECT 'barrier', coalesce(b.saga_id, o.order_id),
    'orders: order.approve barrier ' || coalesce(b.act, 'none') || ', order ' || coalesce(o.state, 'none')
FROM (SELECT * FROM bk WHERE svc = 'orders' AND step = 4) b
FULL JOIN ord o ON o.order_id = b.saga_id
WHERE (b.act IS NOT DISTINCT FROM 'ok') <> (o.state IS NOT DISTINCT FROM 'APPROVED');
INSERT INTO violation
SELECT 'barrier', coalesce(b.saga_id, r.saga_id),
    'inventory: stock.reserve barrier ' || coalesce(b.act, 'none') ||
    CASE WHEN coalesce(b.comp, false) THEN ', stock.release ok' ELSE '' END ||
    ', reservation ' || coalesce(r.state, 'none')
FROM (SELECT * FROM bk WHERE svc = 'inventory' AND step = 1) b
FULL JOIN res r ON r.saga_id = b.saga_id
WHERE (b.act IS NOT DISTINCT FROM 'ok') <> (r.saga_id IS NOT NULL)
    OR (coalesce(b.comp, false) AND b.act = 'ok') <> (r.state IS NOT DISTINCT FROM 'RELEASED');
INSERT INTO violation
SELECT 'barrier', coalesce(b.saga_id, p.saga_id),
    'payments: payment.charge barrier ' || coalesce(b.act, 'none') ||
    CASE WHEN coalesce(b.comp, false) THEN ', payment.refund ok' ELSE '' END ||
    ', payment ' || coalesce(p.state, 'none')
FROM (SELECT * FROM bk WHERE svc = 'payments' AND step = 2) b
FULL JOIN pay p ON p.saga_id = b.saga_id
WHERE (b.act IS NOT DISTINCT FROM 'ok') <> (p.saga_id IS NOT NULL)
    OR (coalesce(b.comp, false) AND b.act = 'ok') <> (p.state IS NOT DISTINCT FROM 'REFUNDED');
INSERT INTO violation
SELECT 'barrier', coalesce(b.saga_id, s.saga_id),
    'shipping: shipment.schedule barrier ' || coalesce(b.act, 'none') ||
    CASE WHEN coalesce(b.comp, false) THEN ', compensated (retriable step!)' ELSE '' END ||
    ', shipment ' || coalesce(s.state, 'none')
FROM (SELECT * FROM bk WHERE svc = 'shipping' AND step = 3) b
FULL JOIN shp s ON s.saga_id = b.saga_id
WHERE (b.act IS NOT DISTINCT FROM 'ok') <> (s.saga_id IS NOT NULL) OR coalesce(b.comp, false);
-- Rows of a step the service does not run.
INSERT INTO violation
SELECT 'barrier', saga_id, svc || ': barrier row for step ' || step || ' kind ' || kind
FROM bar
WHERE (svc, step) NOT IN (('orders', 0), ('orders', 4), ('inventory', 1),
    ('payments', 2), ('shipping', 3))
    OR (kind = 1 AND step IN (3, 4));
-- The only business failures are those the load designed: a poor
-- order's charge and a scarce order's reservation (table design). A fault
-- never writes a 'failed' row: a handler that crashes, deadlocks, loses
-- its database or is cut short commits nothing and answers retry, and
-- the failed answers of a refused late action or of an expired saga
-- commit no row of theirs; only a handler's own business failure commits
-- one (barrier_settle's COMMIT_FAILED, participants/participant.c). So
-- every 'failed' row is its order's design, whatever the faults did.
INSERT INTO violation
SELECT 'barrier', b.saga_id, b.svc || ': step ' || b.step ||
    coalesce(' (' || s.name || ')', '') ||
    CASE WHEN b.kind = 1 THEN ' compensation' ELSE '' END || ' failed for ' ||
    coalesce('an order designed ' || l.kind || ' (' || l.customer_id || ' buys ' ||
        l.sku || ' x' || l.qty || ' for ' || l.amount || ')' ||
        coalesce(', designed to fail at ' || d.svc || ' step ' || d.step, ''),
        'a saga of no order') ||
    ': ' || coalesce(b.error, 'no reason recorded')
FROM bar b
LEFT JOIN stp s ON s.step = b.step
LEFT JOIN (SELECT DISTINCT ON (saga_id) * FROM ld) l ON l.saga_id = b.saga_id
LEFT JOIN design d ON d.kind = l.kind
WHERE b.outcome = 'failed'
    AND (b.kind <> 0 OR (d.svc, d.step) IS DISTINCT FROM (b.svc, b.step));
-- Write-ahead: a participant saw only commands that the log says were
-- sent (an 'aborted' action row is written by its compensation).
INSERT INTO violation
SELECT 'barrier', b.saga_id, b.svc || ': barrier row (step ' || b.step || ', kind ' || b.kind ||
    ', ' || b.outcome || ') but no step_sent in the log'
FROM bar b
WHERE NOT EXISTS (SELECT 1 FROM ev
    WHERE ev.saga_id = b.saga_id AND ev.event = 'step_sent' AND ev.step = b.step
      AND ev.kind = CASE WHEN b.outcome = 'aborted' THEN 1 ELSE b.kind END);
-- The log acted on what the participant recorded: a step_ok or
-- step_failed of an action, a step_ok of a compensation, has the row of
-- that step and kind with the same outcome (a null compensation's own
-- row holds ok too).
INSERT INTO violation
SELECT 'barrier', e.saga_id, 'log: ' || e.event || ' of step ' || e.step ||
    ' kind ' || e.kind || ' (seq ' || e.seq || '), barrier row: ' ||
    coalesce(b.svc || ' ' || b.outcome, 'none')
FROM ev e
LEFT JOIN bar b ON b.saga_id = e.saga_id AND b.step = e.step AND b.kind = e.kind
WHERE e.event IN ('step_ok', 'step_failed')
    AND b.outcome IS DISTINCT FROM
        CASE WHEN e.event = 'step_ok' THEN 'ok' ELSE 'failed' END;
INSERT INTO violation
SELECT 'barrier', b.saga_id, b.svc || ': barrier row for a saga the log does not hold'
FROM (SELECT DISTINCT svc, saga_id FROM bar) b
WHERE NOT EXISTS (SELECT 1 FROM si WHERE si.id = b.saga_id);

-- log ------------------------------------------------------------------
INSERT INTO violation
SELECT 'log', saga_id, 'event ' || seq || ' (' || event || ') follows ' || coalesce(prev_seq::text, 'nothing')
FROM (SELECT saga_id, seq, event, lag(seq) OVER w AS prev_seq FROM ev
      WINDOW w AS (PARTITION BY saga_id ORDER BY seq)) e
WHERE seq <> coalesce(prev_seq, 0) + 1;
INSERT INTO violation
SELECT 'log', saga_id, 'event ' || seq || ' (' || event || ') at ' || at || ' is before event ' || (seq - 1) || ' at ' || prev_at
FROM (SELECT saga_id, seq, event, at, lag(at) OVER w AS prev_at FROM ev
      WINDOW w AS (PARTITION BY saga_id ORDER BY seq)) e
WHERE at < prev_at;
INSERT INTO violation
SELECT 'log', si.id, 'event_seq ' || si.event_seq || ' but ' || coalesce(e.n, 0) ||
    ' events up to seq ' || coalesce(e.hi, 0)
FROM si LEFT JOIN (SELECT saga_id, count(*) AS n, max(seq) AS hi FROM ev GROUP BY saga_id) e
    ON e.saga_id = si.id
WHERE coalesce(e.n, 0) <> si.event_seq OR coalesce(e.hi, 0) <> si.event_seq;
INSERT INTO violation
SELECT 'log', ev.saga_id, 'events of a saga the log does not hold'
FROM (SELECT DISTINCT saga_id FROM ev) ev
WHERE NOT EXISTS (SELECT 1 FROM si WHERE si.id = ev.saga_id);
INSERT INTO violation
SELECT 'log', si.id, 'first event ' || coalesce(f.event, 'none') || ', not saga_started'
FROM si LEFT JOIN ev f ON f.saga_id = si.id AND f.seq = 1
WHERE f.event IS DISTINCT FROM 'saga_started';
INSERT INTO violation
SELECT 'log', si.id, si.state || ' but last event ' || coalesce(l.event, 'none') ||
    ', terminal events ' || (SELECT count(*) FROM ev WHERE ev.saga_id = si.id
        AND ev.event IN ('saga_completed', 'saga_compensated', 'saga_failed'))
FROM si LEFT JOIN ev l ON l.saga_id = si.id AND l.seq = si.event_seq
WHERE si.state IN ('COMPLETED', 'COMPENSATED', 'FAILED') AND (
    l.event IS DISTINCT FROM CASE si.state WHEN 'COMPLETED' THEN 'saga_completed'
        WHEN 'COMPENSATED' THEN 'saga_compensated' ELSE 'saga_failed' END
    OR (SELECT count(*) FROM ev WHERE ev.saga_id = si.id
        AND ev.event IN ('saga_completed', 'saga_compensated')) > 1);
INSERT INTO violation
SELECT 'log', si.id, 'COMPLETED with a compensation sent'
FROM si WHERE si.state = 'COMPLETED' AND EXISTS (SELECT 1 FROM ev
    WHERE ev.saga_id = si.id AND ev.event = 'step_sent' AND ev.kind = 1);
EOF

# The report: every violation (the first 500), then the counts.
out=$(q -d "$check_db" -At <<'EOF'
SELECT 'VIOLATION ' || chk || ' ' || coalesce(saga_id::text, '-') || ': ' || detail
FROM violation ORDER BY chk, saga_id, detail LIMIT 500;
SELECT 'sagas: ' || (SELECT count(*) FROM si) || ' (' ||
    coalesce((SELECT string_agg(state || ' ' || n, ', ' ORDER BY state)
              FROM (SELECT state, count(*) AS n FROM si GROUP BY state) s), 'none') || ')';
SELECT 'orders by design: ' || coalesce(string_agg(kind || ' ' || st || ' ' || n, ', ' ORDER BY kind, st), 'none')
FROM (SELECT l.kind, coalesce(si.state, 'missing') AS st, count(*) AS n
      FROM (SELECT DISTINCT ON (saga_id) kind, saga_id FROM ld) l
      LEFT JOIN si ON si.id = l.saga_id GROUP BY 1, 2) k;
SELECT 'ok orders COMPENSATED because: ' || string_agg(n || ' x ' || why, '; ' ORDER BY n DESC)
FROM (SELECT left(coalesce(si.last_error, '?'), 100) AS why, count(*) AS n
      FROM (SELECT DISTINCT ON (saga_id) kind, saga_id FROM ld) l
      JOIN si ON si.id = l.saga_id
      WHERE l.kind = 'ok' AND si.state = 'COMPENSATED'
      GROUP BY 1 ORDER BY 2 DESC LIMIT 5) w
HAVING count(*) > 0;
SELECT 'stock units: ' || (SELECT sum(available + reserved) FROM base_stk) || ' before, ' ||
    (SELECT sum(available + reserved) FROM stk) || ' after (' ||
    coalesce((SELECT sum(qty) FROM res WHERE state = 'RESERVED'), 0) || ' reserved by orders); money: ' ||
    (SELECT sum(balance) FROM base_acc) || ' cents before, ' ||
    ((SELECT sum(balance) FROM acc) + coalesce((SELECT sum(amount) FROM pay WHERE state = 'CHARGED'), 0)) ||
    ' after (' || coalesce((SELECT sum(amount) FROM pay WHERE state = 'CHARGED'), 0) || ' charged)';
SELECT 'compensations: ' || sum(n_ok) || ' undid an effect (' ||
    string_agg(svc || ' ' || n_ok, ', ' ORDER BY svc) || '), ' ||
    sum(n_null) || ' null (the action had failed or never ran)'
FROM (SELECT svc, count(*) FILTER (WHERE act = 'ok') AS n_ok,
             count(*) FILTER (WHERE act IS DISTINCT FROM 'ok') AS n_null
      FROM bk WHERE comp GROUP BY svc) c;
SELECT 'events: ' || count(*) || ' in the log, ' || count(*) FILTER (WHERE event = 'step_sent') ||
    ' commands sent; barrier rows: ' || (SELECT count(*) FROM bar)
FROM ev;
SELECT 'violations: ' || count(*) ||
    coalesce(' (' || (SELECT string_agg(chk || ' ' || n, ', ' ORDER BY chk)
                      FROM (SELECT chk, count(*) AS n FROM violation GROUP BY chk) c) || ')', '')
FROM violation;
EOF
)
echo "$out"
n=$(echo "$out" | sed -n 's/^violations: \([0-9]*\).*/\1/p')
[[ $n == 0 ]]
