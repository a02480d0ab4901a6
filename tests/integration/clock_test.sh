#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# clock_test.sh BUILD_DIR: a step back of an instance's wall clock does
# not stop its lease rounds.
#
# Two sagad instances, a and b (lease 1 s), share one database. a runs
# under the LD_PRELOAD library clock_step (tests/support/clock_step.c),
# whose CLOCK_REALTIME the test steps back 60 s while a runs a saga held
# at its step. sagad's timers of durations (lease rounds, reconnects,
# client waits) run on the monotonic clock: a goes on renewing its lease,
# and b takes nothing. Until 2026-12-07 they ran on the wall clock: a's
# next lease round came 60 s late, and b took a's saga over a lease
# later (a live instance's saga; fencing kept it safe).
#
# Checks: the step reached a (its log's time goes back); a's heartbeat,
# on the database's clock, is renewed for 4 s (4 leases) after the step;
# the saga is still a's, at the same epoch; b logged no TAKEOVER; a saga
# that began before the step and ended after it has a duration of at
# least 0 in the metrics (saga_duration_seconds_sum went down by 60 s).
# Needs PostgreSQL (libpq's PG* variables, as scripts/test.sh sets them).

set -euo pipefail

build=$(cd "${1:?usage: clock_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d /tmp/saga-clock-test.XXXXXX)
sagad=$build/coordinator/sagad
sagactl=$build/coordinator/sagactl
tp=$build/tests/test_participant
shim=$build/tests/libclock_step.so
db=clock_test_$$
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
	saga_fail clock_test 12 "$*" "$tmp"/*.log
}

for f in "$sagad" "$sagactl" "$tp" "$shim"; do
	[[ -x $f || -f $f ]] || fail "$f is not built"
done
saga_createdb "$db" || fail "no PostgreSQL server"
conninfo="host=${PGHOST:-localhost} port=${PGPORT:-5432} user=${PGUSER:-postgres} dbname=$db"
q() { psql -X -q -tA -d "$db" -v ON_ERROR_STOP=1 -c "$1"; }

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
p0=
saga_ports_reserve p0 4 || fail "no free ports"
part=tcp://127.0.0.1:$p0
api_a=tcp://127.0.0.1:$((p0 + 1))
api_b=tcp://127.0.0.1:$((p0 + 2))
metrics_a=127.0.0.1:$((p0 + 3))

"$tp" --listen "$part" --rule w.do=delay:120000 --rule q.do=delay:1500 \
	>"$tmp/participant.log" 2>&1 &
pids+=($!)
cat >"$tmp/sagas.yaml" <<YAML
participants:
  p: {endpoints: ["$part"]}
sagas:
  - name: held
    steps:
      - {name: w, participant: p, action: w.do, compensation: w.undo, timeout: 300s}
  - name: quick
    steps:
      - {name: q, participant: p, action: q.do, compensation: q.undo}
YAML
"$sagad" --migrate --db "$conninfo" >/dev/null
echo 0 >"$tmp/offset"
SAGA_TEST_CLOCK_FILE=$tmp/offset LD_PRELOAD=$shim \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	"$sagad" --config "$tmp/sagas.yaml" --db "$conninfo" --listen "$api_a" \
	--instance-id a --lease 1s --metrics-listen "$metrics_a" \
	>"$tmp/sagad-a.log" 2>&1 &
pids+=($!)
saga_answers "$sagactl" "$api_a" $! || fail "sagad a does not answer"
"$sagad" --config "$tmp/sagas.yaml" --db "$conninfo" --listen "$api_b" \
	--instance-id b --lease 1s >"$tmp/sagad-b.log" 2>&1 &
pids+=($!)
saga_answers "$sagactl" "$api_b" $! || fail "sagad b does not answer"

id=$("$sagactl" start held --input '{}' --coordinator "$api_a") ||
	fail "cannot start the saga"
for _ in $(seq 1 100); do
	[[ $(q "SELECT count(*) FROM saga_event WHERE event = 'step_sent'") == 1 ]] &&
		break
	sleep 0.1
done
[[ $(q "SELECT owner || ' ' || epoch FROM saga_instance") == "a 1" ]] ||
	fail "the saga is not a's: $(q "SELECT owner, epoch FROM saga_instance")"

# quick ends after the step: its duration, from a start before the step
# to an end after it, came out 60 s below 0.
quick=$("$sagactl" start quick --input '{}' --coordinator "$api_a") ||
	fail "cannot start quick"

# The step, then a line in a's log from after it.
t0=$(q "SELECT now()")
echo -60000 >"$tmp/offset"
"$sagactl" start held --input '{"n": 2}' --coordinator "$api_a" >/dev/null ||
	fail "cannot start the second saga"
if ! awk '{ if (prev != "" && $1 < prev) back = 1; prev = $1 }
	END { exit !back }' "$tmp/sagad-a.log"; then
	fail "the time in a's log never went back: the clock did not step"
fi

# Four leases of renewals after the step, on the database's clock. With
# the lease rounds on the wall clock, the next one came 60 s later.
renewed=0
for _ in $(seq 1 200); do
	if [[ $(q "SELECT heartbeat_at > '$t0'::timestamptz + interval '4 s'
		FROM saga_coordinator WHERE instance_id = 'a'") == t ]]; then
		renewed=1
		break
	fi
	sleep 0.1
done
((renewed)) || fail "a's heartbeat stopped after its clock stepped back: $(q "SELECT now() - heartbeat_at FROM saga_coordinator WHERE instance_id = 'a'") old"
got=$(q "SELECT owner || ' ' || epoch FROM saga_instance WHERE id = '$id'")
[[ $got == "a 1" ]] || fail "b took a's saga over: owner and epoch $got"
if grep -q TAKEOVER "$tmp/sagad-b.log"; then
	fail "b took over: $(grep -m1 TAKEOVER "$tmp/sagad-b.log")"
fi
end=$("$sagactl" wait "$quick" --timeout 30s --coordinator "$api_a") ||
	fail "quick did not end: $end"
[[ $end == *COMPLETED* ]] || fail "quick did not complete: $end"
# Else its duration did not span the step, and tested nothing: its last
# event, written in a's time, is then older than its first.
[[ $(q "SELECT (SELECT at FROM saga_event WHERE saga_id = '$quick'
	ORDER BY seq DESC LIMIT 1) < (SELECT at FROM saga_event
	WHERE saga_id = '$quick' ORDER BY seq LIMIT 1)") == t ]] ||
	fail "quick ended before the step: its 1.5 s were too short here"
sum=
for _ in $(seq 1 50); do
	sum=$(curl -sf --max-time 5 "http://$metrics_a/metrics" |
		awk '$1 ~ /^saga_duration_seconds_sum\{saga="quick"/ { print $2 }')
	[[ -n $sum ]] && break
	sleep 0.1
done
[[ -n $sum ]] || fail "no saga_duration_seconds_sum of quick at a's metrics"
awk -v s="$sum" 'BEGIN { exit !(s >= 0) }' ||
	fail "quick's duration was counted below 0: saga_duration_seconds_sum $sum"
echo "clock_test: a's clock stepped back 60 s; its lease was renewed, and its saga stayed its own"
