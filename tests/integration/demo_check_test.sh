#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo_check_test.sh BUILD_DIR: scripts/demo-check.sh, the demo's
# consistency check, fails on inconsistent data. Runs scripts/demo.sh
# --keep on the already built tree (own PostgreSQL, free ports, state in
# a temporary directory), expects the check to pass on what the demo
# left, then, one at a time, corrupts the data, expects the check to fail
# with the reason, undoes the corruption and expects it to pass again.
# Each corruption keeps the grand totals (stock units, money) unchanged,
# which is all the demo's check compared before:
#   shuffle   1 widget and 5 gizmos moved from available to reserved,
#             35.00 from carol's account to alice's;
#   undone    order 1 (COMPLETED) rejected, its stock released, its
#             payment refunded, its shipment deleted, as if compensated;
#   deleted   order 2 (COMPENSATED: the payment failed) loses its order
#             and its reservation, REJECTED and RELEASED, whose actions
#             the log records as done (step_ok): "none" was accepted;
#   empty keys  a stock row with SKU '' and an account of customer '':
#             reported (an empty index of a bash array ended the script
#             without a verdict);
#   oversize  order 4's reservation and payment made larger than the
#             order, the stock and the balance moved to match;
#   rewrite   order 4 and every row of it made 2 gizmos for 30.00, stock
#             and money to match: only the saga's input tells.
# Before the rewrite, orders whose input holds what separated the fields
# and the rows that the check reads ('|' and a newline):
#   separators  customer "dave|x" (no account) and customer "erin\nx"
#             buying SKU "WID|GET" (no such SKU), both COMPENSATED: the
#             check passes (it read "5|REJECTED" as the order's state);
#             then dave's order made customer "dave", SKU "x|WIDGET": it
#             fails (joined with '|', both read "dave|x|WIDGET").
#   long log  order 4's payment, retried once in the demo, retried 300
#             more times (copies of the attempt and its timeout in the
#             saga's log): sagactl show --json, over 128 KiB, did not fit
#             in one argument of psql, and the check reported the input
#             unreadable; it must pass (and the rewrite below reads the
#             input of that log).
#   address   orders whose address holds '|' and a newline, is null or
#             "" (shipped to "(to be confirmed)") pass; then order 1's
#             shipment sent to another address, and order 4's, which had
#             none, to order 1's: the address was never compared.
# Also, after the demo, docs/sagas.md against what the demo runs: its
# complete example (the first yaml block) is
# participants/examples/create_order.yaml from "participants:" on, and
# its canonical JSON of the demo's saga is the definition that sagad
# stored (up to its first step); both had other retry policies.

set -euo pipefail

build=$(cd "${1:?usage: demo_check_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state=$(mktemp -d /tmp/saga-demo-check-test.XXXXXX)

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"

base=
saga_ports_reserve base 5 || { echo "demo_check_test: no free ports" >&2; exit 1; }
export SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/cluster SAGA_PORT_BASE=$base

cleanup() {
	"$repo/scripts/cluster.sh" stop >/dev/null 2>&1 || true
	rm -rf "$state"
}
trap cleanup EXIT

fail() {
	echo "demo_check_test: $*" >&2
	[[ -f $state/check.log ]] && cat "$state/check.log" >&2
	exit 1
}

NO_COLOR=1 "$repo/scripts/demo.sh" --no-build --keep >"$state/demo.log" 2>&1 ||
	{ tail -n 60 "$state/demo.log" >&2; fail "demo.sh exited $?"; }
# shellcheck disable=SC1091
source "$SAGA_CLUSTER_DIR/cluster.env"

# sql DB STATEMENT...: runs the statements on DB (a cluster.env conninfo)
# in one transaction.
sql() {
	local db=$1
	shift
	{
		echo "BEGIN;"
		printf '%s;\n' "$@"
		echo "COMMIT;"
	} | psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null
}

# check_passes WHEN: demo-check.sh exits 0.
check_passes() {
	"$repo/scripts/demo-check.sh" >"$state/check.log" 2>&1 ||
		fail "$1: demo-check.sh failed on consistent data"
}

# check_fails WHAT REASON...: demo-check.sh exits 1 and prints each
# REASON.
check_fails() {
	local what=$1 rc=0 r
	shift
	"$repo/scripts/demo-check.sh" >"$state/check.log" 2>&1 || rc=$?
	((rc == 1)) || fail "$what: demo-check.sh exited $rc, expected 1"
	grep -q '^verdict: INCONSISTENT' "$state/check.log" ||
		fail "$what: no INCONSISTENT verdict"
	for r in "$@"; do
		grep -qF -- "    - $r" "$state/check.log" ||
			fail "$what: missing the reason: $r"
	done
}

check_passes "after the demo"

doc=$repo/docs/sagas.md
doc_yaml=$(awk '/^```yaml$/ && !n++ { on = 1; next } on && /^```$/ { exit } on' \
    "$doc")
shipped=$(sed -n '/^participants:$/,$p' \
    "$repo/participants/examples/create_order.yaml")
[[ $doc_yaml == "$shipped" ]] ||
	fail "docs/sagas.md's complete example is not the shipped file:
$(diff <(printf '%s\n' "$doc_yaml") <(printf '%s\n' "$shipped"))"
doc_json=$(grep '^{"name": "create_order", ' "$doc" | sed 's/, \.\.\.\]}$/]}/')
[[ -n $doc_json ]] || fail "docs/sagas.md has no canonical JSON of create_order"
same=$(printf '%s\n' "SELECT jsonb_set(definition, '{steps}',
    jsonb_build_array(definition->'steps'->0)) = \$d\$$doc_json\$d\$::jsonb
    FROM saga_definition WHERE name = 'create_order'" |
    psql -X -tA -v ON_ERROR_STOP=1 -d "$DATABASE_URL")
[[ $same == t ]] ||
	fail "docs/sagas.md's canonical JSON is not the demo's definition: $(psql -X -tA -d "$DATABASE_URL" -c "SELECT definition->'steps'->0 FROM saga_definition WHERE name = 'create_order'")"
mapfile -t ids < <(psql -X -tA -d "$DATABASE_URL" \
    -c "SELECT id FROM saga_instance ORDER BY created_at, id")
((${#ids[@]} == 4)) || fail "expected the demo's 4 sagas, found ${#ids[@]}"
o1=${ids[0]}
o2=${ids[1]}
o4=${ids[3]}

# shuffle
sql "$INVENTORY_DB" \
    "UPDATE stock SET available = available - 1, reserved = reserved + 1 WHERE sku = 'WIDGET'" \
    "UPDATE stock SET available = available - 5, reserved = reserved + 5 WHERE sku = 'GIZMO'"
sql "$PAYMENTS_DB" \
    "UPDATE accounts SET balance = balance - 3500 WHERE customer_id = 'carol'" \
    "UPDATE accounts SET balance = balance + 3500 WHERE customer_id = 'alice'"
check_fails shuffle \
    "3 reserved, but its RESERVED reservations hold 2" \
    "6 reserved, but its RESERVED reservations hold 1" \
    "0 cents gone since the seed, but its CHARGED payments hold 3500" \
    "3500 cents gone since the seed, but its CHARGED payments hold 0"
sql "$INVENTORY_DB" \
    "UPDATE stock SET available = available + 1, reserved = reserved - 1 WHERE sku = 'WIDGET'" \
    "UPDATE stock SET available = available + 5, reserved = reserved - 5 WHERE sku = 'GIZMO'"
sql "$PAYMENTS_DB" \
    "UPDATE accounts SET balance = balance + 3500 WHERE customer_id = 'carol'" \
    "UPDATE accounts SET balance = balance - 3500 WHERE customer_id = 'alice'"
check_passes "shuffle undone"

# undone
address=$(psql -X -tA -d "$SHIPPING_DB" \
    -c "SELECT address FROM shipments WHERE saga_id = '$o1'")
[[ -n $address ]] || fail "order 1 has no shipment"
sql "$ORDERS_DB" "UPDATE orders SET state = 'REJECTED' WHERE order_id = '$o1'"
sql "$INVENTORY_DB" \
    "UPDATE reservations SET state = 'RELEASED' WHERE saga_id = '$o1'" \
    "UPDATE stock SET available = available + 2, reserved = reserved - 2 WHERE sku = 'WIDGET'"
sql "$PAYMENTS_DB" \
    "UPDATE payments SET state = 'REFUNDED' WHERE saga_id = '$o1'" \
    "UPDATE accounts SET balance = balance + 2000 WHERE customer_id = 'alice'"
sql "$SHIPPING_DB" "DELETE FROM shipments WHERE saga_id = '$o1'"
check_fails undone \
    "the saga is COMPLETED, but the order is REJECTED" \
    "the saga is COMPLETED, but the reservation is RELEASED" \
    "the saga is COMPLETED, but the payment is REFUNDED" \
    "the saga is COMPLETED, but there is no shipment"
sql "$ORDERS_DB" "UPDATE orders SET state = 'APPROVED' WHERE order_id = '$o1'"
sql "$INVENTORY_DB" \
    "UPDATE reservations SET state = 'RESERVED' WHERE saga_id = '$o1'" \
    "UPDATE stock SET available = available - 2, reserved = reserved + 2 WHERE sku = 'WIDGET'"
sql "$PAYMENTS_DB" \
    "UPDATE payments SET state = 'CHARGED' WHERE saga_id = '$o1'" \
    "UPDATE accounts SET balance = balance - 2000 WHERE customer_id = 'alice'"
sql "$SHIPPING_DB" "INSERT INTO shipments (saga_id, sku, qty, address, state)
    VALUES ('$o1', 'WIDGET', 2, '$address', 'SCHEDULED')"
check_passes "undone undone"

# deleted
sql "$ORDERS_DB" \
    "CREATE TABLE deleted AS SELECT * FROM orders WHERE order_id = '$o2'" \
    "DELETE FROM orders WHERE order_id = '$o2'"
sql "$INVENTORY_DB" \
    "CREATE TABLE deleted AS
        SELECT * FROM reservations WHERE saga_id = '$o2'" \
    "DELETE FROM reservations WHERE saga_id = '$o2'"
check_fails deleted \
    "the saga is COMPENSATED and its log has order.create done, but there is no order" \
    "the saga is COMPENSATED and its log has stock.reserve done, but there is no reservation"
sql "$ORDERS_DB" "INSERT INTO orders SELECT * FROM deleted" "DROP TABLE deleted"
sql "$INVENTORY_DB" "INSERT INTO reservations SELECT * FROM deleted" \
    "DROP TABLE deleted"
check_passes "deleted undone"

# empty keys: a SKU and a customer id of '' (the schema allows them)
# are reported, not the end of the script ("bad array subscript").
sql "$INVENTORY_DB" "INSERT INTO stock VALUES ('', 0, 0)"
sql "$PAYMENTS_DB" "INSERT INTO accounts VALUES ('', 0)"
check_fails "empty keys" "not in the seed data"
grep -qF 'stock : 0 available' "$state/check.log" &&
	grep -qF 'money : 0 cents' "$state/check.log" ||
	fail "empty keys: no line for the empty SKU or customer: $(cat "$state/check.log")"
sql "$INVENTORY_DB" "DELETE FROM stock WHERE sku = ''"
sql "$PAYMENTS_DB" "DELETE FROM accounts WHERE customer_id = ''"
check_passes "empty keys undone"

# oversize
sql "$INVENTORY_DB" \
    "UPDATE reservations SET qty = 2 WHERE saga_id = '$o4'" \
    "UPDATE stock SET available = available - 1, reserved = reserved + 1 WHERE sku = 'GIZMO'"
sql "$PAYMENTS_DB" \
    "UPDATE payments SET amount = 2500 WHERE saga_id = '$o4'" \
    "UPDATE accounts SET balance = balance - 1000 WHERE customer_id = 'alice'"
check_fails oversize \
    "the reservation holds 2 GIZMO; the order is 1 GIZMO" \
    "the payment is 2500 cents from alice; the order is 1500 cents from alice"
sql "$INVENTORY_DB" \
    "UPDATE reservations SET qty = 1 WHERE saga_id = '$o4'" \
    "UPDATE stock SET available = available + 1, reserved = reserved - 1 WHERE sku = 'GIZMO'"
sql "$PAYMENTS_DB" \
    "UPDATE payments SET amount = 1500 WHERE saga_id = '$o4'" \
    "UPDATE accounts SET balance = balance + 1000 WHERE customer_id = 'alice'"
check_passes "oversize undone"

# order INPUT: starts create_order with INPUT, waits for its end (up to
# 30 s) and prints the saga id.
order() {
	local out id
	out=$("$build/coordinator/sagactl" start create_order --input "$1" \
	    --wait --timeout 30s 2>&1) || true
	id=$(printf '%s\n' "$out" | head -n 1)
	[[ $id =~ ^[0-9a-f-]{36}$ ]] || fail "no saga started: $out"
	echo "$id"
}
# ended ID STATE: saga ID ended in STATE.
ended() {
	local st
	st=$(psql -X -tA -d "$DATABASE_URL" \
	    -c "SELECT state FROM saga_instance WHERE id = '$1'")
	[[ $st == "$2" ]] || fail "saga $1 is $st, expected $2"
}

# separators
dave=$(order '{"customer_id": "dave|x", "sku": "WIDGET", "qty": 1, "amount": 5}')
ended "$dave" COMPENSATED
erin=$(order '{"customer_id": "erin\nx", "sku": "WID|GET", "qty": 1, "amount": 5}')
ended "$erin" COMPENSATED
check_passes "separators"
sql "$ORDERS_DB" "UPDATE orders SET customer_id = 'dave', sku = 'x|WIDGET'
    WHERE order_id = '$dave'"
check_fails separators \
    "the order is dave, 1 x|WIDGET, 5 cents; the saga asked dave|x, 1 WIDGET, 5 cents"
sql "$ORDERS_DB" "UPDATE orders SET customer_id = 'dave|x', sku = 'WIDGET'
    WHERE order_id = '$dave'"
check_passes "separators undone"

# long log
retried=300
r=$(psql -X -tA -d "$DATABASE_URL" -c "SELECT min(seq) FROM saga_event
    WHERE saga_id = '$o4' AND event = 'step_retry'")
[[ -n $r && $(psql -X -tA -d "$DATABASE_URL" -c "SELECT event FROM saga_event
    WHERE saga_id = '$o4' AND seq = $r - 1") == step_sent ]] ||
	fail "long log: order 4 has no attempt that timed out"
sql "$DATABASE_URL" \
    "UPDATE saga_event SET seq = seq + 2 * $retried
        WHERE saga_id = '$o4' AND seq > $r" \
    "UPDATE saga_event SET attempt = attempt + $retried
        WHERE saga_id = '$o4' AND seq > $r AND kind = 0
        AND step = (SELECT step FROM saga_event
                    WHERE saga_id = '$o4' AND seq = $r)" \
    "INSERT INTO saga_event (saga_id, seq, at, step, kind, attempt, event,
        outcome, error, duration_us, writer)
        SELECT saga_id, seq + 2 * g, at, step, kind, attempt + g, event,
            outcome, error, duration_us, writer
        FROM saga_event, generate_series(1, $retried) g
        WHERE saga_id = '$o4' AND seq IN ($r - 1, $r)" \
    "UPDATE saga_instance SET event_seq = event_seq + 2 * $retried
        WHERE id = '$o4'"
len=$("$build/coordinator/sagactl" show "$o4" --json | wc -c)
((len > 131072)) ||
	fail "long log: sagactl show --json is $len bytes, not over 128 KiB"
check_passes "long log"

# address
for a in '"1 Main St|Apt 2\nSpringfield"' null '""'; do
	ended "$(order "{\"customer_id\": \"alice\", \"sku\": \"WIDGET\",
	    \"qty\": 1, \"amount\": 100, \"address\": $a}")" COMPLETED
done
check_passes "address"
sql "$SHIPPING_DB" \
    "UPDATE shipments SET address = '2 Main St' WHERE saga_id = '$o1'" \
    "UPDATE shipments SET address = '$address' WHERE saga_id = '$o4'"
check_fails address \
    "the shipment goes to \"2 Main St\"; the saga asked \"$address\"" \
    "the shipment goes to \"$address\"; the saga asked \"(to be confirmed)\""
sql "$SHIPPING_DB" \
    "UPDATE shipments SET address = '$address' WHERE saga_id = '$o1'" \
    "UPDATE shipments SET address = '(to be confirmed)'
        WHERE saga_id = '$o4'"
check_passes "address undone"

# rewrite
sql "$ORDERS_DB" "UPDATE orders SET qty = 2, amount = 3000 WHERE order_id = '$o4'"
sql "$INVENTORY_DB" \
    "UPDATE reservations SET qty = 2 WHERE saga_id = '$o4'" \
    "UPDATE stock SET available = available - 1, reserved = reserved + 1 WHERE sku = 'GIZMO'"
sql "$PAYMENTS_DB" \
    "UPDATE payments SET amount = 3000 WHERE saga_id = '$o4'" \
    "UPDATE accounts SET balance = balance - 1500 WHERE customer_id = 'alice'"
sql "$SHIPPING_DB" "UPDATE shipments SET qty = 2 WHERE saga_id = '$o4'"
check_fails rewrite \
    "the order is alice, 2 GIZMO, 3000 cents; the saga asked alice, 1 GIZMO, 1500 cents"

# A service database that cannot be read (here payments': a database
# that does not exist) is exit 2, "cannot read", not a verdict: it was
# exit 1, INCONSISTENT ("seeded with 500000 cents, gone from the
# accounts"), as if the data were wrong.
sed "s/^export PAYMENTS_DB=.*/export PAYMENTS_DB='dbname=demo_check_no_such_db'/" \
	"$SAGA_CLUSTER_DIR/cluster.env" >"$state/unreadable.env"
grep -q demo_check_no_such_db "$state/unreadable.env" ||
	fail "unreadable: cluster.env has no PAYMENTS_DB line to replace"
rc=0
"$repo/scripts/demo-check.sh" "$state/unreadable.env" >"$state/check.log" 2>&1 ||
	rc=$?
((rc == 2)) || fail "unreadable: demo-check.sh exited $rc, expected 2"
grep -q 'cannot read demo_check_no_such_db' "$state/check.log" ||
	fail "unreadable: no \"cannot read\""
if grep -q '^verdict:' "$state/check.log"; then
	fail "unreadable: a verdict on data it could not read"
fi

echo "demo_check_test: the check passed on the demo's data, on inputs with '|' and newlines, on a long log and on addresses, and failed on each of 8 corruptions"
