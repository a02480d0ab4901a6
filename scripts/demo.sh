#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo.sh: the order workflow demo, from a fresh machine.
#
# Installs what is missing (as root), builds, starts the demo cluster
# (scripts/cluster.sh: PostgreSQL, sagad, and the orders, inventory,
# payments and shipping services, each with its own database), then runs
# and narrates four orders:
#   1. alice buys 2 widgets: it completes;
#   2. bob buys a widget he cannot pay for: payment fails, the stock is
#      released and the order rejected;
#   3. carol buys 5 gadgets, only 1 is in stock: stock fails, the order is
#      rejected;
#   4. alice buys a gizmo; the payments service is killed (kill -9) while
#      the saga waits on its charge, then restarted: the order still
#      completes, charged once.
# For each it prints the saga's outcome and timeline from the log, then the
# participants' data, and checks it against the log and the seed data
# (scripts/demo-check.sh). It stops the cluster at the end unless --keep
# is given.

set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SAGA_BUILD_DIR:-$repo/build}
keep=0
setup=1
tls=

usage() {
	cat <<EOF
usage: $prog [--keep] [--no-build] [--tls] [--help]

Builds everything and runs the order workflow demo on this machine.
  --keep       leave the cluster running afterwards (stop it with
               scripts/cluster.sh stop)
  --no-build   use the existing build (SAGA_BUILD_DIR, default build/);
               install nothing
  --tls        run every link over mutual TLS (scripts/cluster.sh --tls)
SAGA_PORT_BASE and SAGA_CLUSTER_DIR move the cluster (scripts/cluster.sh).
Exit status 0 only if every order ended as narrated and every service's
data is consistent.
EOF
}

while (($# > 0)); do
	case $1 in
	--keep) keep=1 ;;
	--no-build) setup=0 ;;
	--tls) tls=--tls ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "$prog: unknown option '$1'" >&2
		usage >&2
		exit 2
		;;
	esac
	shift
done

if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
	bold=$'\e[1m'
	dim=$'\e[2m'
	off=$'\e[0m'
else
	bold='' dim='' off=''
fi

say() {
	printf '\n%s== %s%s\n' "$bold" "$*" "$off"
}

note() {
	printf '%s%s%s\n' "$dim" "$*" "$off"
}

# shellcheck source=scripts/deps.sh
source "$repo/scripts/deps.sh"

if [[ $setup -eq 1 ]]; then
	say "Setting up (packages, build)"
	ensure_packages "${saga_demo_packages[@]}"
	cmake -S "$repo" -B "$build" >/dev/null
	cmake --build "$build" -j2 >/dev/null
	note "built sagad, sagactl and the four services in build/"
fi

say "Starting the cluster"
# What payments is put through in order 4: frozen (SIGSTOP), then killed,
# then restarted. With --keep the cluster outlives this script, so one
# that ends between the freeze and the restart (a failed command, ^C, a
# kill) thaws or restarts payments rather than leave it frozen or dead.
pay_state=running
on_exit() {
	if [[ $keep -eq 0 ]]; then
		"$repo/scripts/cluster.sh" stop >/dev/null 2>&1 || true
		return
	fi
	case $pay_state in
	frozen) kill -CONT "$pay_pid" 2>/dev/null || true ;;
	killed)
		"$repo/scripts/cluster.sh" restart payments >/dev/null 2>&1 ||
			echo "$prog: could not restart payments" >&2
		;;
	esac
}
# bash runs it also when a signal (^C, SIGTERM) ends the script. No trap
# of those signals: bash would wait for the command in progress (up to
# the 60 s of a start --wait) before running it.
trap on_exit EXIT
"$repo/scripts/cluster.sh" stop >/dev/null 2>&1 || true
"$repo/scripts/cluster.sh" start $tls
cluster_dir=${SAGA_CLUSTER_DIR:-$build/cluster}
# shellcheck disable=SC1091
source "$cluster_dir/cluster.env"
tmp_err=$cluster_dir/logs/demo-sagactl.err
sagactl=$build/coordinator/sagactl
export COLUMNS=${COLUMNS:-110}

# order N TITLE JSON: starts create_order, waits, shows its outcome and
# timeline.
order() {
	local title=$1 input=$2 id state
	say "$title"
	note "input: $input"
	# sagactl start --wait exits 1 when the saga did not complete: here
	# that is part of the story.
	id=$("$sagactl" start create_order --input "$input" --wait \
		--timeout 60s 2>"$tmp_err" | head -n 1 | awk '{print $1}') || true
	if [[ ! $id =~ ^[0-9a-f-]{36}$ ]]; then
		# Not started at all: say why, and count it as an outcome.
		echo "could not start the saga: $(tail -n 1 "$tmp_err")"
		last_state=NOT-STARTED
		return 0
	fi
	state=$("$sagactl" show "$id" --json |
		sed -n 's/.*"state": *"\([A-Z]*\)".*/\1/p' | head -n 1)
	echo "saga $id: $bold$state$off"
	"$sagactl" show "$id"
	last_state=$state
}

# expect WHAT STATE: the saga of the last order ended in STATE.
outcomes=()
expect() {
	if [[ $last_state == "$2" ]]; then
		outcomes+=("$1: $2 as expected")
	else
		outcomes+=("$1: $last_state, expected $2")
		ok=0
	fi
}
ok=1

order "Order 1: alice buys 2 widgets (20.00) — should complete" \
	'{"customer_id": "alice", "sku": "WIDGET", "qty": 2, "amount": 2000, "address": "1 Main St"}'
expect "order 1" COMPLETED

order "Order 2: bob buys a widget for 50.00 with 5.00 on his account — payment fails, stock released, order rejected" \
	'{"customer_id": "bob", "sku": "WIDGET", "qty": 1, "amount": 5000}'
expect "order 2" COMPENSATED

order "Order 3: carol buys 5 gadgets, 1 in stock — reservation fails, order rejected" \
	'{"customer_id": "carol", "sku": "GADGET", "qty": 5, "amount": 10000}'
expect "order 3" COMPENSATED

say "Order 4: alice buys a gizmo; the payments service dies (kill -9) holding its charge"
cdir=${SAGA_CLUSTER_DIR:-$build/cluster}
pay_pid=$(cat "$cdir/pids/payments.pid")
# Frozen (SIGSTOP), payments takes the charge command but cannot act on
# it: the kill below then lands while the saga waits on payments.
pay_state=frozen
kill -STOP "$pay_pid"
note "payments is frozen (SIGSTOP) so that the kill lands mid-saga"
out=$("$sagactl" start create_order --input \
	'{"customer_id": "alice", "sku": "GIZMO", "qty": 1, "amount": 1500}')
order4=$(echo "$out" | awk '{print $1; exit}')
echo "saga $order4 started"
sent=0
for _ in $(seq 1 100); do
	if "$sagactl" show "$order4" --json | tr -d ' \n' |
	    grep -q '"event":"step_sent","step":"charge_payment"'; then
		sent=1
		break
	fi
	sleep 0.1
done
((sent)) || note "(charge_payment was not sent within 10 s)"
# Before: one interrupted halfway is restarted (cluster.sh restart
# stops a frozen one first).
pay_state=killed
"$repo/scripts/cluster.sh" kill payments
note "payments killed (kill -9) with the charge unanswered; the saga is still running"
for _ in $(seq 1 50); do
	if "$sagactl" show "$order4" --json | grep -q '"outcome": *"timeout"'; then
		break
	fi
	sleep 0.2
done
note "sagad keeps retrying charge_payment (the pivot: its outcome must be known):"
"$sagactl" show "$order4" | tail -n 8
"$repo/scripts/cluster.sh" restart payments
pay_state=running
note "payments is back; waiting for the order to finish"
for _ in $(seq 1 150); do
	state=$("$sagactl" show "$order4" --json |
		sed -n 's/.*"state": *"\([A-Z]*\)".*/\1/p' | head -n 1)
	[[ $state == RUNNING ]] || break
	sleep 0.2
done
echo "saga $order4: $bold$state$off"
"$sagactl" show "$order4"
last_state=$state
expect "order 4" COMPLETED

say "What the participants' databases say"
q() {
	psql -X -q -d "$1" -c "$2"
}
note "orders (saga_orders):"
q saga_orders "SELECT order_id, customer_id, sku, qty, amount, state FROM orders ORDER BY created_at"
note "inventory (saga_inventory):"
q saga_inventory "SELECT sku, available, reserved FROM stock ORDER BY sku"
q saga_inventory "SELECT saga_id, sku, qty, state FROM reservations ORDER BY created_at"
note "payments (saga_payments):"
q saga_payments "SELECT customer_id, balance FROM accounts ORDER BY customer_id"
q saga_payments "SELECT saga_id, customer_id, amount, state FROM payments ORDER BY created_at"
note "shipping (saga_shipping):"
q saga_shipping "SELECT saga_id, sku, qty, address, state FROM shipments ORDER BY created_at"

say "Consistency check"
printf '%s\n' "${outcomes[@]}"
# Every saga in the log against the four services' rows, stock per SKU
# and money per customer against the seed (scripts/demo-check.sh).
SAGA_BUILD_DIR=$build "$repo/scripts/demo-check.sh" "$cluster_dir/cluster.env" ||
	ok=0

if [[ $ok -eq 1 ]]; then
	say "Every order is consistent across the four services."
else
	say "INCONSISTENT data: see above."
fi
if [[ $keep -eq 1 ]]; then
	# The commands as they work from here, with the environment that
	# moved the build or the cluster (cluster.sh stop reads it too).
	stop_env=""
	for v in SAGA_BUILD_DIR SAGA_CLUSTER_DIR; do
		if [[ -n ${!v:-} ]]; then
			stop_env+="$v=$(printf '%q' "${!v}") "
		fi
	done
	note "The cluster keeps running: source $cluster_dir/cluster.env and try"
	note "  $build/coordinator/sagactl list"
	note "and check the data again with ${stop_env}$repo/scripts/demo-check.sh."
	note "Stop it with ${stop_env}$repo/scripts/cluster.sh stop."
fi
[[ $ok -eq 1 ]]
