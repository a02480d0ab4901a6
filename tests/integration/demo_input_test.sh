#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo_input_test.sh BUILD_DIR: the demo services' input checks, on the
# demo cluster (scripts/cluster.sh on this build: its own PostgreSQL,
# free ports, state in a temporary directory).
#   1. an address of 200 two-byte characters (400 bytes): the order
#      completes and the shipment holds the whole address (it was cut at
#      255 bytes, inside a character, which PostgreSQL refused: the
#      shipment, past the pivot, was retried for ever);
#   2. an address of 600 bytes, above DEMO_ADDRESS_MAX: order.create
#      fails at its first attempt, before the pivot; the saga is
#      COMPENSATED and nobody was charged;
#   3. a qty above 2^31-1: the same (it was retried as a database error
#      until the step gave up);
#   4. a second cluster on the same ports refuses to start, and stops the
#      PostgreSQL it had started (it used to report itself up while its
#      services had exited, and sagactl reached the first cluster);
#   0. (first, without the cluster) each service refuses a --workers that
#      is not a whole number from 1 to 1024: exit 2, one line (atoi made
#      "0" and "x" the library's default, 4 workers, without a word); an
#      option that takes a value given last, without it ("--db needs a
#      value"), and a ninth --listen ("too many --listen (at most 8)"),
#      which were both 'unknown option "--db"' (or "--listen"); --help
#      tells the limit of 8.

set -euo pipefail

build=$(cd "${1:?usage: demo_input_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state=$(mktemp -d /tmp/saga-demo-input-test.XXXXXX)
sagactl=$build/coordinator/sagactl

if ! command -v initdb >/dev/null &&
    ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	if [[ ${SAGA_TEST_REQUIRE_PG:-0} == 1 ]]; then
		echo "demo_input_test: no PostgreSQL server binaries" >&2
		exit 1
	fi
	echo "SKIP: demo_input_test needs PostgreSQL's server binaries"
	exit 77
fi

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
# shellcheck source=tests/support/proc.sh
source "$repo/tests/support/proc.sh"

base=
saga_ports_reserve base 5 ||
	{ echo "demo_input_test: no free ports" >&2; exit 1; }
cluster() {
	SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/cluster \
	    SAGA_PORT_BASE=$base "$repo/scripts/cluster.sh" "$@"
}
cleanup() {
	cluster stop >/dev/null 2>&1 || true
	SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/second \
	    "$repo/scripts/cluster.sh" stop >/dev/null 2>&1 || true
	rm -rf "$state"
}
trap cleanup EXIT
fail() {
	saga_fail demo_input_test 15 "$*" "$state"/cluster/logs/*.log
}

# 0. --workers: refused before any connection (a database that does not
# exist, a port no one dials), within seconds (a service that took it
# would serve until the timeout).
for svc in orders inventory payments shipping; do
	for w in 0 x 4x -1 1025 ""; do
		rc=0
		timeout 10 "$build/participants/saga-$svc" \
		    --listen tcp://127.0.0.1:1 --db host=/nonexistent \
		    --workers "$w" >"$state/workers.out" 2>"$state/workers.err" ||
			rc=$?
		want="saga-$svc: invalid value \"$w\" for --workers (expected a whole number from 1 to 1024)"
		[[ $rc == 2 && $(cat "$state/workers.err") == "$want" &&
		    ! -s $state/workers.out ]] ||
			fail "saga-$svc --workers '$w': exit $rc, stderr: $(head -c 300 "$state/workers.err")"
	done
done
echo "demo_input_test: --workers 0, x, 4x, -1, 1025 and \"\" refused by the four services"

# refuses SVC WANT ARG...: saga-SVC with ARGs exits 2 within seconds,
# printing the one line WANT on stderr and nothing on stdout.
refuses() {
	local svc=$1 want=$2 rc=0
	shift 2
	timeout 10 "$build/participants/saga-$svc" "$@" \
	    >"$state/opt.out" 2>"$state/opt.err" || rc=$?
	[[ $rc == 2 && $(cat "$state/opt.err") == "$want" &&
	    ! -s $state/opt.out ]] ||
		fail "saga-$svc $*: exit $rc, stderr: $(head -c 300 "$state/opt.err")"
}
nine=()
for i in $(seq 1 9); do
	nine+=(--listen "tcp://127.0.0.1:$i")
done
for svc in orders inventory payments shipping; do
	for opt in --listen --db --workers --tls-ca --tls-cert --tls-key \
	    --log-format --metrics-listen; do
		refuses "$svc" "saga-$svc: $opt needs a value" \
		    --listen tcp://127.0.0.1:1 "$opt"
	done
	refuses "$svc" "saga-$svc: too many --listen (at most 8)" \
	    --db host=/nonexistent "${nine[@]}"
	"$build/participants/saga-$svc" --help | grep -qF -- \
	    "--listen URL   nng URL to serve on (repeatable, at most 8)" ||
		fail "saga-$svc --help does not tell the limit of --listen"
done
echo "demo_input_test: an option without its value and a ninth --listen named as such by the four services"

cluster start >"$state/start.log" 2>&1 ||
	fail "the cluster did not start: $(tail -n 5 "$state/start.log")"
# shellcheck disable=SC1091
source "$state/cluster/cluster.env"
q() {
	psql -X -Atq -d "$1" -c "$2"
}
# order INPUT: starts create_order, waits up to 30 s for its end, prints
# the saga id.
order() {
	local out
	out=$("$sagactl" start create_order --input "$1" --wait \
	    --timeout 30s 2>&1) || true
	id=$(printf '%s\n' "$out" | head -n 1 | awk '{print $1}')
	[[ $id =~ ^[0-9a-f-]{36}$ ]] || fail "no saga started: $out"
	echo "$id"
}
state_of() {
	q saga_coordinator "SELECT state FROM saga_instance WHERE id = '$1'"
}

addr=$(printf 'é%.0s' $(seq 1 200))
id=$(order "{\"customer_id\": \"alice\", \"sku\": \"WIDGET\", \"qty\": 1, \"amount\": 100, \"address\": \"$addr\"}")
st=$(state_of "$id")
[[ $st == COMPLETED ]] ||
	fail "a 400-byte address: $st, not COMPLETED ($(q saga_coordinator "SELECT last_error FROM saga_instance WHERE id = '$id'"))"
[[ $(q saga_shipping "SELECT address FROM shipments WHERE saga_id = '$id'") == "$addr" ]] ||
	fail "a 400-byte address: the shipment does not hold it whole"
echo "demo_input_test: an address of 200 two-byte characters shipped whole"

# refused NAME INPUT WHY: the order is COMPENSATED, its first step failed
# at its first attempt with WHY, and no money or stock moved.
refused() {
	local id st
	id=$(order "$2")
	st=$(state_of "$id")
	[[ $st == COMPENSATED ]] || fail "$1: $st, not COMPENSATED"
	[[ $(q saga_coordinator "SELECT count(*) FROM saga_event WHERE saga_id = '$id' AND step = 0 AND kind = 0 AND event = 'step_failed' AND attempt = 1") == 1 ]] ||
		fail "$1: order.create did not fail at its first attempt: $(q saga_coordinator "SELECT string_agg(event || '/' || step || '/' || attempt, ' ' ORDER BY seq) FROM saga_event WHERE saga_id = '$id'")"
	q saga_coordinator "SELECT last_error FROM saga_instance WHERE id = '$id'" |
	    grep -qF "$3" ||
		fail "$1: the error does not say $3: $(q saga_coordinator "SELECT last_error FROM saga_instance WHERE id = '$id'")"
	[[ $(q saga_payments "SELECT count(*) FROM payments WHERE saga_id = '$id'") == 0 &&
		$(q saga_inventory "SELECT count(*) FROM reservations WHERE saga_id = '$id'") == 0 ]] ||
		fail "$1: money or stock moved"
	echo "demo_input_test: $1: refused by order.create, COMPENSATED"
}
long=$(printf 'é%.0s' $(seq 1 300))
refused "a 600-byte address" \
    "{\"customer_id\": \"alice\", \"sku\": \"WIDGET\", \"qty\": 1, \"amount\": 100, \"address\": \"$long\"}" \
    "input.address"
refused "qty 2^31" \
    '{"customer_id": "alice", "sku": "WIDGET", "qty": 2147483648, "amount": 100}' \
    "input.qty"

rc=0
SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/second SAGA_PORT_BASE=$base \
    "$repo/scripts/cluster.sh" start >"$state/second.log" 2>&1 || rc=$?
((rc == 1)) && grep -q "port $((base + 1)) for orders is taken by another process" \
    "$state/second.log" ||
	fail "a second cluster on the same ports: exit $rc: $(tail -n 3 "$state/second.log")"
[[ ! -e $state/second/pg.env ]] ||
	fail "the second cluster left its PostgreSQL running"
echo "demo_input_test: a second cluster on the same ports refused to start"
