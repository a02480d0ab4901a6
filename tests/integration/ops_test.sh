#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# ops_test.sh BUILD_DIR: observability end to end on the demo cluster
# (its own PostgreSQL and ports). sagad runs with --metrics-listen and
# --log-format json, the four services with --log-format json too
# (SAGA_SERVICE_ARGS); after a known workload (3 orders that complete, 2
# that compensate) the test checks that:
#   - /metrics parses as the Prometheus text format and its counts match
#     the saga log (sagas started and finished by state, step attempts);
#   - every line of the five logs (sagad's and the services') is a JSON
#     object (PostgreSQL's own parser reads them) with ts, level, program
#     (its process) and msg;
#   - the trace id of a started saga appears in sagad's log and in the
#     logs of the four services that handled its steps, there on the
#     line of each command with its saga id and step ("trace_id",
#     "saga", "step"), and sagactl show reports it;
#   - each service's /metrics (the participant library's) parses, and
#     the commands the four answered, by outcome, are the step outcomes
#     in the saga log;
#   - the histograms count one duration per finished saga and per
#     answered attempt; saga_failed matches the log; the oldest-unfinished
#     gauge is 0 with every saga done, grows with the age of a saga held
#     up by a stopped payments service, and drops to 0 once it finished.

set -euo pipefail

build=$(cd "${1:?usage: ops_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state=$(mktemp -d /tmp/saga-ops-test.XXXXXX)
sagactl=$build/coordinator/sagactl

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
# shellcheck source=tests/support/proc.sh
source "$repo/tests/support/proc.sh"

base=
saga_ports_reserve base 10 || { echo "ops_test: no free ports" >&2; exit 1; }
mport=$((base + 5))

export SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/cluster
export SAGA_PORT_BASE=$base SAGA_SERVICE_METRICS_BASE=$((base + 6))
export SAGAD_ARGS="--metrics-listen 127.0.0.1:$mport --log-format json"
export SAGA_SERVICE_ARGS="--log-format json"
cleanup() {
	"$repo/scripts/cluster.sh" stop >/dev/null 2>&1 || true
	rm -rf "$state"
}
trap cleanup EXIT

fail() {
	saga_fail ops_test 15 "$*" "$state"/cluster/logs/*.log
}

"$repo/scripts/cluster.sh" start >"$state/start.log" 2>&1 ||
	{ cat "$state/start.log" >&2; fail "cluster did not start"; }
# shellcheck disable=SC1091
source "$state/cluster/cluster.env"

ok='{"customer_id": "alice", "sku": "WIDGET", "qty": 1, "amount": 100}'
poor='{"customer_id": "bob", "sku": "WIDGET", "qty": 1, "amount": 100000}'
ids=()
for input in "$ok" "$ok" "$ok" "$poor" "$poor"; do
	id=$("$sagactl" start create_order --input "$input" --wait \
		--timeout 30s 2>/dev/null | head -n 1) || true
	[[ -n $id ]] || fail "a start failed"
	ids+=("$id")
done

# The Prometheus text format: every sample line is NAME{LABELS} VALUE.
metrics=$(curl -sf "http://127.0.0.1:$mport/metrics") ||
	fail "GET /metrics failed"
bad=$(echo "$metrics" | grep -v '^#' | grep -Ev \
	'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+Inf-]+$' || true)
[[ -z $bad ]] || fail "lines not in the exposition format: $bad"
sample() {
	echo "$metrics" | grep -v '^#' | grep -F "$1 " | awk '{print $NF}' | head -n 1
}
# gauge_zero NAME TRIES: scrapes NAME afresh every 100 ms until it is 0
# (TRIES times at most); prints its last value.
gauge_zero() {
	local v='' i
	for ((i = 0; i < $2; i++)); do
		v=$(curl -sf "http://127.0.0.1:$mport/metrics" |
			awk -v n="$1" '$1 == n {print $2}')
		[[ $v == 0 ]] && break
		sleep 0.1
	done
	echo "$v"
}
db() {
	psql -X -tA -d saga_coordinator -c "$1"
}
[[ $(sample 'saga_started_total{saga="create_order"}') == \
	"$(db "SELECT count(*) FROM saga_event WHERE event = 'saga_started'")" ]] ||
	fail "saga_started_total does not match the log"
[[ $(sample 'saga_finished_total{saga="create_order",state="COMPLETED"}') == 3 &&
	$(db "SELECT count(*) FROM saga_instance WHERE state = 'COMPLETED'") == 3 ]] ||
	fail "completed sagas: metrics and log disagree"
[[ $(sample 'saga_finished_total{saga="create_order",state="COMPENSATED"}') == 2 &&
	$(db "SELECT count(*) FROM saga_instance WHERE state = 'COMPENSATED'") == 2 ]] ||
	fail "compensated sagas: metrics and log disagree"
attempts=$(echo "$metrics" | grep '^saga_step_attempts_total' |
	awk '{s += $NF} END {print s}')
logged=$(db "SELECT count(*) FROM saga_event WHERE event IN
	('step_ok', 'step_failed', 'step_retry', 'step_gave_up')")
[[ $attempts == "$logged" ]] ||
	fail "step attempts: metrics $attempts, log $logged"
[[ $(sample 'saga_compensations_total{saga="create_order"}') == 2 ]] ||
	fail "saga_compensations_total is not 2"
[[ $(sample 'saga_active') =~ ^[0-9]+$ ]] || fail "no saga_active gauge"
# The histograms: one saga duration per finished saga, one step duration
# per answered attempt (ok or failed), and every +Inf bucket equal to
# its count.
[[ $(sample 'saga_duration_seconds_count{saga="create_order",state="COMPLETED"}') == 3 &&
	$(sample 'saga_duration_seconds_count{saga="create_order",state="COMPENSATED"}') == 2 ]] ||
	fail "saga_duration_seconds counts are not 3 and 2"
steps=$(echo "$metrics" | grep '^saga_step_duration_seconds_count' |
	awk '{s += $NF} END {print s}')
answered=$(db "SELECT count(*) FROM saga_event WHERE event IN ('step_ok', 'step_failed')")
[[ $steps == "$answered" ]] ||
	fail "saga_step_duration_seconds: $steps observations, $answered answered attempts in the log"
# The engine's lag: one observation per event it handled; at least each
# START and each answered attempt (the sagas ran one at a time, so every
# command went alone, one answer per message).
waits=$(sample 'saga_engine_wait_seconds_count')
[[ $waits =~ ^[0-9]+$ ]] && ((waits >= 5 + answered)) ||
	fail "saga_engine_wait_seconds: $waits observations, fewer than 5 starts and $answered answers"
[[ $(sample 'saga_engine_wait_seconds_bucket{le="+Inf"}') == "$waits" ]] ||
	fail "saga_engine_wait_seconds: +Inf bucket is not its count"
inf=$(echo "$metrics" | grep '^saga_duration_seconds_bucket.*le="+Inf"' |
	awk '{s += $NF} END {print s}')
((inf == 5)) || fail "saga_duration_seconds +Inf buckets hold $inf, not 5"
# The alert gauges: no FAILED saga; none unfinished now.
[[ $(sample 'saga_failed') == "$(db "SELECT count(*) FROM saga_instance WHERE state = 'FAILED'")" ]] ||
	fail "saga_failed does not match the log"
# The gauges are refreshed every second: the scrape above may predate the
# refresh after the last saga finished; 3 s is three refreshes.
[[ $(gauge_zero saga_oldest_unfinished_seconds 30) == 0 ]] ||
	fail "saga_oldest_unfinished_seconds is not 0 with every saga finished"

# JSON lines: PostgreSQL parses each one (a bad line fails the query).
# The log is loaded as CSV with a delimiter and a quote that never occur,
# so that each line is one field, read as it is (no backslash escapes).
# json_query LOG SQL: runs SQL (a count) over the lines of LOG, table l,
# column line (jsonb); prints the count.
json_query() {
	local out
	out=$(psql -X -q -tA -d saga_coordinator \
		-c "CREATE TEMP TABLE t (line text)" \
		-c "\\copy t FROM '$1' WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')" \
		-c "CREATE TEMP TABLE l AS SELECT line::jsonb AS line FROM t" \
		-c "$2" 2>&1) || { echo "$out" >&2; return 1; }
	echo "$out"
}
json_lines() {
	local log=$1 program=$2 lines n
	lines=$(grep -c . "$log")
	((lines > 0)) || fail "$log is empty"
	n=$(json_query "$log" "SELECT count(*) FROM l WHERE line ? 'ts'
		AND line ? 'level' AND line ? 'msg'
		AND line->>'program' = '$program'") ||
		fail "$log is not JSON lines"
	[[ $n == "$lines" ]] ||
		fail "$log: $n of $lines lines have ts, level, program $program and msg"
}
json_lines "$state/cluster/logs/sagad.log" sagad
grep -q '"event": "SAGA-START"' "$state/cluster/logs/sagad.log" ||
	fail "no SAGA-START event in the JSON log"
for s in orders inventory payments shipping; do
	json_lines "$state/cluster/logs/$s.log" "$s"
	grep -q '"event": "PARTICIPANT-START"' "$state/cluster/logs/$s.log" ||
		fail "no PARTICIPANT-START event in the $s log"
done

# One trace id, followed across every process.
trace=$("$sagactl" show "${ids[0]}" --json | sed -n 's/.*"trace_id": *"\([0-9a-f]\{32\}\)".*/\1/p' | head -n 1)
[[ -n $trace ]] || fail "sagactl show gives no trace id"
grep -q "\"trace_id\": \"$trace\"" "$state/cluster/logs/sagad.log" ||
	fail "trace $trace not in sagad's log"
for s in orders inventory payments shipping; do
	n=$(json_query "$state/cluster/logs/$s.log" "SELECT count(*) FROM l
		WHERE line->>'trace_id' = '$trace' AND line->>'saga' = '${ids[0]}'
		AND line ? 'step' AND line ? 'outcome'") ||
		fail "$s: the log cannot be read"
	((n > 0)) || fail "trace $trace (saga ${ids[0]}) not on a command line of the $s log"
done
# The services' metrics: the commands they answered, by outcome, are the
# outcomes sagad logged (a quiet run: no reply lost, none resent).
svc_metrics=
for k in 0 1 2 3; do
	m=$(curl -sf "http://127.0.0.1:$((base + 6 + k))/metrics") ||
		fail "GET /metrics of service $((k + 1)) failed"
	bad=$(echo "$m" | grep -v '^#' | grep -Ev \
		'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+Inf-]+$' || true)
	[[ -z $bad ]] || fail "service $((k + 1)): lines not in the exposition format: $bad"
	svc_metrics+=$m$'\n'
done
for o in ok failed retry; do
	answered=$(echo "$svc_metrics" | awk -v o="outcome=\"$o\"}" '
		/^saga_participant_commands_total[{]/ && index($1, o) { s += $NF }
		END { print s + 0 }')
	logged=$(db "SELECT count(*) FROM saga_event WHERE event = 'step_$o'")
	[[ $answered == "$logged" ]] ||
		fail "commands answered $o: services' metrics $answered, sagad's log $logged"
done
runs=$(echo "$svc_metrics" | awk '
	/^saga_participant_barrier_total[{]/ && index($1, "decision=\"run\"}") { s += $NF }
	END { print s + 0 }')
((runs > 0)) || fail "the services' metrics show no barrier decision 'run'"

# Last, as it restarts payments (and so its counters): a saga held up
# by a stopped payments service makes the oldest-unfinished gauge grow
# with its age, and it drops back to 0 once the saga has finished.
"$repo/scripts/cluster.sh" kill payments >/dev/null
# Taken before the START: the saga is created after it, so its age can
# never be more than the time since then (sagactl's START round trip,
# slow under ASan, counts in the saga's age).
held_at=$EPOCHREALTIME
held=$("$sagactl" start create_order --input "$ok") || fail "the held start failed"
age=0
for _ in $(seq 1 60); do
	age=$(curl -sf "http://127.0.0.1:$mport/metrics" |
		awk '$1 == "saga_oldest_unfinished_seconds" {print $2}')
	awk -v a="$age" 'BEGIN { exit !(a >= 1.5) }' && break
	sleep 0.1
done
now_age=$(awk -v t0="$held_at" -v t1="$EPOCHREALTIME" 'BEGIN { print t1 - t0 }')
awk -v a="$age" -v n="$now_age" 'BEGIN { exit !(a >= 1.5 && a <= n + 0.1) }' ||
	fail "saga_oldest_unfinished_seconds is $age with a saga held for ${now_age}s"
"$repo/scripts/cluster.sh" restart payments >/dev/null ||
	fail "payments did not come back"
"$sagactl" wait "$held" --timeout 30s >/dev/null || fail "the held saga did not complete"
age=$(gauge_zero saga_oldest_unfinished_seconds 30)
[[ $age == 0 ]] || fail "saga_oldest_unfinished_seconds is $age after the held saga finished"
echo "ops_test: metrics match the log, JSON logs of 5 processes parse, trace $trace followed across them, services' metrics match the log"
