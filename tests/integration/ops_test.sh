#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# ops_test.sh BUILD_DIR: observability end to end on the demo cluster
# (its own PostgreSQL and ports). sagad runs with --metrics-listen and
# --log-format json; after a known workload (3 orders that complete, 2 that
# compensate) the test checks that:
#   - /metrics parses as the Prometheus text format and its counts match
#     the saga log (sagas started and finished by state, step attempts);
#   - every line of sagad's log is a JSON object (PostgreSQL's own parser
#     reads them) with ts, level and msg;
#   - the trace id of a started saga appears in sagad's log and in the
#     logs of the four services that handled its steps, and sagactl show
#     reports it;
#   - each service's /metrics (the participant library's) parses, and
#     the commands the four answered, by outcome, are the step outcomes
#     in the saga log.

set -euo pipefail

build=$(cd "${1:?usage: ops_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state=$(mktemp -d /tmp/saga-ops-test.XXXXXX)
sagactl=$build/coordinator/sagactl

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"

base=
saga_ports_reserve base 10 || { echo "ops_test: no free ports" >&2; exit 1; }
mport=$((base + 5))

export SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/cluster
export SAGA_PORT_BASE=$base SAGA_SERVICE_METRICS_BASE=$((base + 6))
export SAGAD_ARGS="--metrics-listen 127.0.0.1:$mport --log-format json"
cleanup() {
	"$repo/scripts/cluster.sh" stop >/dev/null 2>&1 || true
	rm -rf "$state"
}
trap cleanup EXIT

fail() {
	echo "ops_test: $*" >&2
	for f in "$state"/cluster/logs/*.log; do
		[[ -f $f ]] || continue
		echo "---- $f" >&2
		tail -n 15 "$f" >&2
	done
	exit 1
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

# JSON lines: PostgreSQL parses each one (a bad line fails the query).
psql -X -q -d saga_coordinator -c "CREATE TEMP TABLE l (line text)" \
	-c "\\copy l FROM '$state/cluster/logs/sagad.log' WITH (FORMAT text, DELIMITER E'\\x01')" \
	-c "SELECT count(*) FROM l WHERE (line::jsonb) ? 'ts' AND (line::jsonb) ? 'level' AND (line::jsonb) ? 'msg'" \
	>"$state/json.out" 2>&1 || { cat "$state/json.out" >&2; fail "sagad's log is not JSON lines"; }
lines=$(grep -c . "$state/cluster/logs/sagad.log")
grep -q "^ *$lines\$" "$state/json.out" ||
	{ cat "$state/json.out" >&2; fail "not every one of $lines lines has ts, level and msg"; }
grep -q '"event": "SAGA-START"' "$state/cluster/logs/sagad.log" ||
	fail "no SAGA-START event in the JSON log"

# One trace id, followed across every process.
trace=$("$sagactl" show "${ids[0]}" --json | sed -n 's/.*"trace_id": *"\([0-9a-f]\{32\}\)".*/\1/p' | head -n 1)
[[ -n $trace ]] || fail "sagactl show gives no trace id"
grep -q "\"trace_id\": \"$trace\"" "$state/cluster/logs/sagad.log" ||
	fail "trace $trace not in sagad's log"
for s in orders inventory payments shipping; do
	grep -q "trace=$trace" "$state/cluster/logs/$s.log" ||
		fail "trace $trace not in the $s log"
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

echo "ops_test: metrics match the log, JSON logs parse, trace $trace followed across 5 processes, services' metrics match the log"
