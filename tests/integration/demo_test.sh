#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo_test.sh BUILD_DIR [--tls]: the end-to-end test of the demo order
# workflow (with --tls: every link over mutual TLS).
# Runs scripts/demo.sh on the already built tree with its own cluster (own
# PostgreSQL, free ports, state in a temporary directory): an order that
# completes, one that fails at payment, one that fails at stock, and one
# during which payments is killed and restarted. demo.sh exits 0 only if
# every saga ended as expected and the participants' data is consistent
# (scripts/demo-check.sh: each saga of the log against the four
# databases, stock per SKU and money per customer against the seed); this
# test also checks the verdict lines it printed. demo_check_test.sh shows
# that the check fails on inconsistent data.

set -euo pipefail

build=$(cd "${1:?usage: demo_test.sh BUILD_DIR [--tls]}" && pwd)
tls=${2:-}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state=$(mktemp -d /tmp/saga-demo-test.XXXXXX)
log=$state/demo.log

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"

base=
saga_ports_reserve base 5 || { echo "demo_test: no free ports" >&2; exit 1; }

cleanup() {
	SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/cluster \
	    SAGA_PORT_BASE=$base "$repo/scripts/cluster.sh" stop \
	    >/dev/null 2>&1 || true
	rm -rf "$state"
}
trap cleanup EXIT

rc=0
SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/cluster SAGA_PORT_BASE=$base \
    NO_COLOR=1 "$repo/scripts/demo.sh" --no-build $tls >"$log" 2>&1 || rc=$?
fail() {
	echo "demo_test: $*" >&2
	tail -n 80 "$log" >&2
	for f in "$state"/cluster/logs/*.log; do
		[[ -f $f ]] || continue
		echo "---- $f" >&2
		tail -n 20 "$f" >&2
	done
	exit 1
}
((rc == 0)) || fail "demo.sh exited $rc"
for want in "order 1: COMPLETED as expected" \
    "order 2: COMPENSATED as expected" \
    "order 3: COMPENSATED as expected" \
    "order 4: COMPLETED as expected" \
    "Every order is consistent across the four services." \
    "stock WIDGET: 998 available + 2 reserved (seeded 1000), reservations hold 2: consistent" \
    "stock GIZMO: 499 available + 1 reserved (seeded 500), reservations hold 1: consistent" \
    "money alice: 996500 cents + 3500 charged (seeded 1000000): consistent" \
    "verdict: consistent (4 orders, 3 SKUs, 3 accounts)"; do
	grep -qF "$want" "$log" || fail "missing from the output: $want"
done
n=$(grep -c '^  order .*: consistent$' "$log" || true)
((n == 4)) || fail "expected 4 consistent orders, saw $n"
# Order 4: payments was killed while the saga waited on its charge (the
# charge had been sent), and the charge then took effect once.
grep -q "payments killed (kill -9) with the charge unanswered" "$log" ||
	fail "order 4: payments was not killed mid-saga"
grep -q "charge_payment was not sent" "$log" &&
	fail "order 4: the charge was never sent to the frozen payments"
# demo.sh stopped the cluster: no process that it started is left (they
# all inherited SAGA_CLUSTER_DIR; this test's own shell did not).
left=()
for e in /proc/[0-9]*/environ; do
	if tr '\0' '\n' <"$e" 2>/dev/null | grep -qxF "SAGA_CLUSTER_DIR=$state/cluster"; then
		p=${e#/proc/}
		left+=("${p%/environ}: $(tr '\0' ' ' <"/proc/${p%/environ}/cmdline" 2>/dev/null)")
	fi
done
((${#left[@]} == 0)) || fail "left running after the demo: ${left[*]}"
if [[ $tls == --tls ]]; then
	grep -q "READY listening on tls+tcp://127.0.0.1:$base" \
	    "$state/cluster/logs/sagad.log" ||
		fail "sagad did not listen over TLS"
	grep -q "tls+tcp://" "$state/cluster/create_order.yaml" ||
		fail "sagad did not dial the services over TLS"
fi
echo "demo_test: 4 orders as expected, data consistent${tls:+, over mutual TLS}"
