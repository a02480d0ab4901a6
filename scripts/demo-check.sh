#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo-check.sh: the consistency check of the demo cluster's data. demo.sh
# runs it after its four orders; after demo.sh --keep it can be run again
# at any time (tests/integration/demo_check_test.sh runs it on data it
# corrupts). It reads the saga log (the coordinator's database) and the
# four services' databases, as the cluster's cluster.env names them, and
# checks:
#
#   orders  per create_order saga in the log, against the services' rows
#           of that saga id: COMPLETED <=> the order is APPROVED, with a
#           RESERVED reservation, a CHARGED payment and a SCHEDULED
#           shipment; COMPENSATED <=> the order is REJECTED, its
#           reservation RELEASED, its payment REFUNDED, no shipment, where
#           a row may be missing only when the log has no step_ok of its
#           action (order.create, stock.reserve, payment.charge: the
#           action failed, was never sent, or lost its answer). The order
#           is what the saga's input asked (customer, SKU, quantity,
#           amount, from sagactl show), the reservation and the shipment
#           are of its SKU and quantity, the payment of its customer and
#           amount (those of the input when there is no order); the
#           shipment's address is the input's, "(to be confirmed)" when
#           it has none (missing, null or "", as saga-shipping stores
#           it). No order, reservation, payment or shipment without its
#           saga.
#   stock   per SKU: reserved = the quantity of its RESERVED reservations,
#           available + reserved = the seeded stock.
#   money   per customer: seeded balance - balance = the amount of its
#           CHARGED payments.
#
# One line per order, SKU and account, ending in "consistent" or
# "INCONSISTENT" (each reason on a line below it), then the verdict.
# Exit status 0 only when everything is consistent, 1 when something is
# not, 2 when the data cannot be read.
#
#   scripts/demo-check.sh [CLUSTER_ENV]
#
# CLUSTER_ENV is cluster.sh's cluster.env (default: the one in
# SAGA_CLUSTER_DIR, else in SAGA_BUILD_DIR/cluster, else build/cluster).

set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SAGA_BUILD_DIR:-$repo/build}
env_file=${1:-${SAGA_CLUSTER_DIR:-$build/cluster}/cluster.env}
sagactl=$build/coordinator/sagactl

case ${1:-} in
-h | --help)
	sed -n '3,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
	exit 0
	;;
esac
die() {
	echo "$prog: $*" >&2
	exit 2
}
[[ -f $env_file ]] || die "no $env_file: start the cluster (scripts/cluster.sh start)"
[[ -x $sagactl ]] || die "$sagactl is missing: build first"
# shellcheck disable=SC1090
source "$env_file"
for v in DATABASE_URL ORDERS_DB INVENTORY_DB PAYMENTS_DB SHIPPING_DB; do
	[[ -n ${!v:-} ]] || die "$env_file does not set $v"
done

# The seed data of sql/inventory/001_inventory.sql and
# sql/payments/001_payments.sql: what the demo starts from.
declare -A seed_stock=([GADGET]=1 [GIZMO]=500 [WIDGET]=1000)
declare -A seed_balance=([alice]=1000000 [bob]=500 [carol]=500000)

# The rows that the queries read, one file each in this directory.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/demo-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# rows FILE DB SQL: the rows of SQL into $tmp/FILE, each field ended by a
# NUL byte, which no text value can hold: the fields of a row and the
# rows are told apart whatever the values hold ('|' between fields and a
# newline between rows were also in customer ids, SKUs and addresses of
# the input). Exits 2 when DB cannot be read.
rows() {
	psql -X -q -tA -z -0 -v ON_ERROR_STOP=1 -d "$2" -c "$3" \
	    >"$tmp/$1" || die "cannot read ${2##*dbname=}"
}

# fields VAR...: the next field of stdin (up to its NUL) into each VAR,
# "" past the end; fails when a field was missing (the end of the rows).
fields() {
	local _f _rc=0
	for _f in "$@"; do
		IFS= read -r -d '' "$_f" || _rc=1
	done
	return "$_rc"
}

bad=0     # inconsistent lines
why=()    # the reasons of the line being built
# problem REASON...: adds a reason, on one line (a newline of a value
# shown as \n).
problem() {
	local r=$*
	why+=("${r//$'\n'/\\n}")
}
# verdict LINE: prints LINE with its verdict, then the reasons.
verdict() {
	local r
	if ((${#why[@]} == 0)); then
		echo "$1 consistent"
	else
		echo "$1 INCONSISTENT"
		for r in "${why[@]}"; do
			echo "    - $r"
		done
		bad=$((bad + 1))
	fi
	why=()
}

# ---- orders ------------------------------------------------------------

# by_id FILE ARRAY...: the rows of $tmp/FILE, keyed by their first field
# (a saga id), into the associative ARRAYs, one per further field.
by_id() {
	local file=$1 id a v
	shift
	while fields id; do
		for a in "$@"; do
			fields v
			printf -v "${a}[$id]" '%s' "$v"
		done
	done <"$tmp/$file"
}

# Each service's rows, by saga id: an array per column; the one of the
# state tells which saga ids have a row.
declare -A ord_cust ord_sku ord_qty ord_amount ord_st res_sku res_qty res_st
declare -A pay_cust pay_amount pay_st shp_sku shp_qty shp_addr shp_st
rows orders "$ORDERS_DB" \
    "SELECT order_id, customer_id, sku, qty, amount, state FROM orders"
by_id orders ord_cust ord_sku ord_qty ord_amount ord_st
rows reservations "$INVENTORY_DB" \
    "SELECT saga_id, sku, qty, state FROM reservations"
by_id reservations res_sku res_qty res_st
rows payments "$PAYMENTS_DB" \
    "SELECT saga_id, customer_id, amount, state FROM payments"
by_id payments pay_cust pay_amount pay_st
rows shipments "$SHIPPING_DB" \
    "SELECT saga_id, sku, qty, address, state FROM shipments"
by_id shipments shp_sku shp_qty shp_addr shp_st

# input_of ID: the saga's input (customer, SKU, quantity, amount, and
# the address that saga-shipping makes of it: demo_address() in
# participants/demo/demo.c) into $tmp/input, as rows() writes it, from
# sagactl show --json, read by PostgreSQL's JSON parser. The document
# goes to psql on its stdin, in a dollar-quoted literal whose tag it does
# not hold: as an argument (psql -v j=...) a long log did not fit in the
# kernel's 128 KiB for one argument (about 350 events), and a saga
# retried that often was reported INCONSISTENT, its input unreadable.
# Nothing in $tmp/input when the input cannot be read.
input_of() {
	local j tag=j
	: >"$tmp/input"
	j=$("$sagactl" show "$1" --json 2>/dev/null) || return 0
	while [[ $j == *"\$$tag\$"* ]]; do
		tag+=j
	done
	printf '%s\n' "SELECT i->>'customer_id', i->>'sku', i->>'qty',
	    i->>'amount', CASE WHEN coalesce(i->>'address', '') = ''
	        THEN '(to be confirmed)' ELSE i->>'address' END
	    FROM (SELECT (\$$tag\$$j\$$tag\$::jsonb)->'input' AS i) s;" |
	    psql -X -q -tA -z -0 -v ON_ERROR_STOP=1 -d "$DATABASE_URL" \
	    >"$tmp/input" 2>/dev/null || :
}

# want WHAT ROW_STATE OK...: the row's state is one of OK ("none": no
# row); else a reason naming the saga's state.
want() {
	local what=$1 st=$2 s
	shift 2
	for s in "$@"; do
		[[ $st == "$s" ]] && return 0
	done
	if [[ $st == none ]]; then
		problem "the saga is $state, but there is no $what"
	else
		problem "the saga is $state, but the $what is $st"
	fi
}

# ran["ID ACTION"]: saga ID's log records ACTION as done (a step_ok of
# the action, not of its compensation), the action's name from the
# saga's definition.
declare -A ran
id='' action=''
rows ran "$DATABASE_URL" "SELECT e.saga_id,
    d.definition->'steps'->e.step->>'action'
    FROM saga_event e JOIN saga_instance i ON i.id = e.saga_id
    JOIN saga_definition d
        ON d.name = i.saga_name AND d.version = i.saga_version
    WHERE i.saga_name = 'create_order' AND e.event = 'step_ok'
        AND e.kind = 0"
while fields id action; do
	ran["$id $action"]=1
done <"$tmp/ran"

# undone WHAT ACTION ROW_STATE STATE: the row of a compensatable step of
# a compensated saga is in STATE, as the compensation leaves it; it may
# be missing only when the log does not record ACTION as done.
undone() {
	if [[ -z ${ran["$id $2"]:-} ]]; then
		want "$1" "$3" "$4" none
	elif [[ $3 == none ]]; then
		problem "the saga is $state and its log has $2 done, but there is no $1"
	else
		want "$1" "$3" "$4"
	fi
}

declare -A in_log
norders=0
state='' i_addr='' # set by fields, like the other variables it reads
rows log "$DATABASE_URL" "SELECT id, state FROM saga_instance
    WHERE saga_name = 'create_order' ORDER BY created_at, id"
while fields id state <&3; do
	in_log[$id]=1
	norders=$((norders + 1))
	input_of "$id"
	fields i_cust i_sku i_qty i_amount i_addr <"$tmp/input" || :
	o_cust=${ord_cust[$id]:-} o_sku=${ord_sku[$id]:-}
	o_qty=${ord_qty[$id]:-} o_amount=${ord_amount[$id]:-}
	o_st=${ord_st[$id]:-none}
	r_sku=${res_sku[$id]:-} r_qty=${res_qty[$id]:-}
	r_st=${res_st[$id]:-none}
	p_cust=${pay_cust[$id]:-} p_amount=${pay_amount[$id]:-}
	p_st=${pay_st[$id]:-none}
	s_sku=${shp_sku[$id]:-} s_qty=${shp_qty[$id]:-}
	s_addr=${shp_addr[$id]:-} s_st=${shp_st[$id]:-none}

	case $state in
	COMPLETED)
		want order "$o_st" APPROVED
		want reservation "$r_st" RESERVED
		want payment "$p_st" CHARGED
		want shipment "$s_st" SCHEDULED
		;;
	COMPENSATED)
		undone order order.create "$o_st" REJECTED
		undone reservation stock.reserve "$r_st" RELEASED
		undone payment payment.charge "$p_st" REFUNDED
		want shipment "$s_st" none
		;;
	*) problem "the saga is $state: not finished" ;;
	esac
	if [[ -z $i_cust || -z $i_sku || -z $i_qty || -z $i_amount ]]; then
		problem "cannot read the saga's input (sagactl show $id --json)"
	elif [[ $s_st != none && $s_addr != "$i_addr" ]]; then
		problem "the shipment goes to \"$s_addr\"; the saga asked \"$i_addr\""
	fi
	asked="$i_cust, $i_qty $i_sku, $i_amount cents"
	if [[ $o_st != none && ($o_cust != "$i_cust" || $o_sku != "$i_sku" ||
	    $o_qty != "$i_qty" || $o_amount != "$i_amount") ]]; then
		problem "the order is $o_cust, $o_qty $o_sku, $o_amount cents; the saga asked $asked"
	fi
	# The other rows against the order (the saga's input if there is
	# none).
	if [[ $o_st == none ]]; then
		ref="the saga asked" c=$i_cust k=$i_sku n=$i_qty a=$i_amount
	else
		ref="the order is" c=$o_cust k=$o_sku n=$o_qty a=$o_amount
	fi
	if [[ $r_st != none && ($r_sku != "$k" || $r_qty != "$n") ]]; then
		problem "the reservation holds $r_qty $r_sku; $ref $n $k"
	fi
	if [[ $p_st != none && ($p_cust != "$c" || $p_amount != "$a") ]]; then
		problem "the payment is $p_amount cents from $p_cust; $ref $a cents from $c"
	fi
	if [[ $s_st != none && ($s_sku != "$k" || $s_qty != "$n") ]]; then
		problem "the shipment is of $s_qty $s_sku; $ref $n $k"
	fi
	echo "saga $id $state: ${asked//$'\n'/\\n}"
	verdict "  order $o_st, reservation $r_st, payment $p_st, shipment $s_st:"
done 3<"$tmp/log"

# The other way: a service's row of no saga in the log.
for what in order reservation payment shipment; do
	case $what in
	order) ids=("${!ord_st[@]}") ;;
	reservation) ids=("${!res_st[@]}") ;;
	payment) ids=("${!pay_st[@]}") ;;
	shipment) ids=("${!shp_st[@]}") ;;
	esac
	for id in "${ids[@]}"; do
		[[ -n ${in_log[$id]:-} ]] && continue
		problem "no saga $id in the log"
		verdict "$what $id:"
	done
done

# ---- stock -------------------------------------------------------------

declare -A seen
sku='' avail='' reserved='' held=''
rows stock "$INVENTORY_DB" "SELECT s.sku, s.available, s.reserved,
    coalesce(sum(r.qty) FILTER (WHERE r.state = 'RESERVED'), 0)
    FROM stock s LEFT JOIN reservations r ON r.sku = s.sku
    GROUP BY s.sku, s.available, s.reserved ORDER BY s.sku"
while fields sku avail reserved held; do
	# An empty SKU is no index of an array (bash: bad array subscript,
	# and the script ended without a verdict).
	seeded=
	if [[ -n $sku ]]; then
		seen[$sku]=1
		seeded=${seed_stock[$sku]:-}
	fi
	if [[ -z $seeded ]]; then
		problem "not in the seed data"
	elif ((avail + reserved != seeded)); then
		problem "$((avail + reserved)) units in all, $seeded seeded"
	fi
	((reserved == held)) ||
	    problem "$reserved reserved, but its RESERVED reservations hold $held"
	verdict "stock $sku: $avail available + $reserved reserved (seeded ${seeded:-none}), reservations hold $held:"
done <"$tmp/stock"
for sku in "${!seed_stock[@]}"; do
	[[ -n ${seen[$sku]:-} ]] && continue
	problem "seeded with ${seed_stock[$sku]}, gone from the stock table"
	verdict "stock $sku:"
done

# ---- money -------------------------------------------------------------

seen=()
cust='' balance='' charged=''
rows money "$PAYMENTS_DB" "SELECT a.customer_id, a.balance,
    coalesce(sum(p.amount) FILTER (WHERE p.state = 'CHARGED'), 0)
    FROM accounts a LEFT JOIN payments p ON p.customer_id = a.customer_id
    GROUP BY a.customer_id, a.balance ORDER BY a.customer_id"
while fields cust balance charged; do
	seeded=
	if [[ -n $cust ]]; then
		seen[$cust]=1
		seeded=${seed_balance[$cust]:-}
	fi
	if [[ -z $seeded ]]; then
		problem "not in the seed data"
	elif ((seeded - balance != charged)); then
		problem "$((seeded - balance)) cents gone since the seed, but its CHARGED payments hold $charged"
	fi
	verdict "money $cust: $balance cents + $charged charged (seeded ${seeded:-none}):"
done <"$tmp/money"
for cust in "${!seed_balance[@]}"; do
	[[ -n ${seen[$cust]:-} ]] && continue
	problem "seeded with ${seed_balance[$cust]} cents, gone from the accounts"
	verdict "money $cust:"
done

if ((bad == 0)); then
	echo "verdict: consistent ($norders orders, ${#seed_stock[@]} SKUs, ${#seed_balance[@]} accounts)"
	exit 0
fi
echo "verdict: INCONSISTENT ($bad of the lines above)"
exit 1
