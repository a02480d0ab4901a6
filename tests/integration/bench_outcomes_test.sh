#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench_outcomes_test.sh BUILD_DIR: saga_bench counts the sagas that end
# otherwise than their input makes them, which bench.sh reports (and
# exits 3 for).
#
# In the demo, the --fail-pct orders (bob's) compensate and the others
# complete; bench.sh runs saga_bench with --expect-demo there, and its
# --quick run in bench_test finds none unexpected. Here the coordinator
# drives the saga to the database-free noop participant, which completes
# every saga: without --expect-demo none is unexpected; with it, bob's
# orders are, each of them (counted in the log by business key), and
# saga_bench says so.
# Needs PostgreSQL (libpq's PG* variables, as scripts/test.sh sets them).

set -euo pipefail

build=$(cd "${1:?usage: bench_outcomes_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d /tmp/saga-bench-outcomes-test.XXXXXX)
sagad=$build/coordinator/sagad
sagactl=$build/coordinator/sagactl
noop=$build/tests/noop_participant
bench=$build/tests/saga_bench
db=bench_outcomes_test_$$
pids=()
# shellcheck source=tests/support/proc.sh
source "$repo/tests/support/proc.sh"

cleanup() {
	saga_kill_children KILL "${pids[@]}"
	saga_dropdb "$db"
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	saga_fail bench_outcomes_test 12 "$*" "$tmp"/*.log
}

for f in "$sagad" "$sagactl" "$noop" "$bench"; do
	[[ -x $f ]] || fail "$f is not built"
done
saga_createdb "$db" || fail "no PostgreSQL server"
conninfo="host=${PGHOST:-localhost} port=${PGPORT:-5432} user=${PGUSER:-postgres} dbname=$db"
q() { psql -X -q -tA -d "$db" -v ON_ERROR_STOP=1 -c "$1"; }

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
p0=
saga_ports_reserve p0 2 || fail "no free ports"
api=tcp://127.0.0.1:$p0
part=tcp://127.0.0.1:$((p0 + 1))

"$noop" --listen "$part" >"$tmp/noop.log" 2>&1 &
pids+=($!)
cat >"$tmp/sagas.yaml" <<YAML
participants:
  p: {endpoints: ["$part"]}
sagas:
  - name: create_order
    business_key: customer_id
    steps:
      - {name: s1, participant: p, action: s1.do, compensation: s1.undo}
      - {name: s2, participant: p, action: s2.do, kind: pivot}
YAML
"$sagad" --migrate --db "$conninfo" >/dev/null
"$sagad" --config "$tmp/sagas.yaml" --db "$conninfo" --listen "$api" \
	>"$tmp/sagad.log" 2>&1 &
pids+=($!)
saga_answers "$sagactl" "$api" $! || fail "sagad does not answer"

# run NAME [saga_bench options]: 200 sagas, 40% of them bob's; the
# result's assignments in $tmp/NAME.env.
run() {
	local name=$1
	shift
	"$bench" --coordinator "$api" --sagas 200 --concurrency 8 \
		--fail-pct 40 --env "$tmp/$name.env" "$@" \
		>"$tmp/$name.log" 2>&1 ||
		fail "saga_bench ($name) failed: $(tail -n 3 "$tmp/$name.log")"
}

bob_done() {
	q "SELECT count(*) FROM saga_instance WHERE business_key = 'bob' AND state = 'COMPLETED'"
}

run plain
# shellcheck disable=SC1091 # written by saga_bench
source "$tmp/plain.env"
# shellcheck disable=SC2154 # sb_* set by saga_bench's assignments
((sb_completed == 200)) || fail "the noop participant did not complete every saga: $sb_completed"
# shellcheck disable=SC2154
((sb_unexpected == 0)) || fail "$sb_unexpected saga(s) unexpected without --expect-demo"

before=$(bob_done)
run demo --expect-demo
# shellcheck disable=SC1091
source "$tmp/demo.env"
bobs=$(($(bob_done) - before))
((bobs > 0)) || fail "no order of bob's in the run"
((sb_unexpected == bobs)) ||
	fail "saga_bench --expect-demo counted $sb_unexpected unexpected, the log has $bobs of bob's orders COMPLETED"
grep -q "saga_bench: $bobs saga(s) ended otherwise than their input makes them (bob's orders compensate, the others complete)" "$tmp/demo.log" ||
	fail "saga_bench did not say so: $(tail -n 2 "$tmp/demo.log")"
echo "bench_outcomes_test: without --expect-demo none of 200 unexpected; with it the $bobs orders of bob's that completed"
