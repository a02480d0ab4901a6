#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# multi_test.sh BUILD_DIR: several sagad instances on one database.
#
# Three instances (a, b, c; lease 2 s) share one database and one scripted
# participant whose steps take 300 ms, under a steady load of sagas
# started on all three.
#   1. kill -9 of b: every saga b owned is taken over by a or c within the
#      lease plus one second (measured in the database's clock: from the
#      kill to the first event another instance wrote) and finishes;
#   2. SIGSTOP of a past its lease, then SIGCONT: a makes no write to the
#      sagas it lost (no event by a after the takeover), and logs FENCED;
#   3. SIGTERM of c hands its leases over at once;
#   4. a saga owned by a in the log but not in its memory (an orphan) is
#      taken back by a and finished;
# and over everything: every saga COMPLETED, each step took effect once
# at the participant (its record: one "run" per saga, step and kind),
# every saga's event log gap-free; sagactl instances lists the three.
# Needs PostgreSQL (libpq's PG* variables, as scripts/test.sh sets them).

set -euo pipefail

build=$(cd "${1:?usage: multi_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d /tmp/saga-multi-test.XXXXXX)
sagad=$build/coordinator/sagad
sagactl=$build/coordinator/sagactl
tp=$build/tests/test_participant
db=multi_test_$$
lease_ms=2000
declare -A pid
pids=()

cleanup() {
	for p in "${pids[@]}"; do
		kill -CONT "$p" 2>/dev/null || true
		kill -KILL "$p" 2>/dev/null || true
	done
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
		>/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "multi_test: $*" >&2
	for f in "$tmp"/*.log; do
		[[ -f $f ]] || continue
		echo "---- $f" >&2
		tail -n 12 "$f" >&2
	done
	exit 1
}

if ! psql -X -q -d postgres -c "CREATE DATABASE $db" >/dev/null 2>&1; then
	[[ ${SAGA_TEST_REQUIRE_PG:-} == 1 ]] && fail "no PostgreSQL server"
	echo "SKIP: no PostgreSQL server (start one with scripts/pg.sh start)"
	exit 77
fi
conninfo="host=${PGHOST:-localhost} port=${PGPORT:-5432} user=${PGUSER:-postgres} dbname=$db"
q() {
	psql -X -tA -d "$db" -c "$1"
}

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
saga_ports_reserve p0 16 || fail "no free ports"
nport=1
ppart=$p0
"$tp" --listen "tcp://127.0.0.1:$ppart" --record "$tmp/record.txt" \
	--rule s1.do=delay:300 --rule s2.do=delay:300 --rule s3.do=delay:300 \
	>"$tmp/participant.log" 2>&1 &
pids+=($!)
cat >"$tmp/sagas.yaml" <<YAML
participants:
  p:
    endpoints: ["tcp://127.0.0.1:$ppart"]
    max_in_flight: 512
defaults:
  timeout: 3s
  retry: {max_attempts: 5, initial_backoff: 50ms, max_backoff: 200ms}
sagas:
  - name: m
    steps:
      - {name: s1, participant: p, action: s1.do, compensation: s1.undo}
      - {name: s2, participant: p, action: s2.do, compensation: s2.undo}
      - {name: s3, participant: p, action: s3.do, compensation: s3.undo}
YAML
"$sagad" --migrate --db "$conninfo" >/dev/null
declare -A url
start_instance() {
	local name=$1
	url[$name]=${url[$name]:-tcp://127.0.0.1:$((p0 + nport++))}
	"$sagad" --config "$tmp/sagas.yaml" --db "$conninfo" \
		--listen "${url[$name]}" --instance-id "$name" \
		--lease "${lease_ms}ms" >>"$tmp/sagad-$name.log" 2>&1 &
	pid[$name]=$!
	pids+=($!)
	for _ in $(seq 1 100); do
		"$sagactl" ping --coordinator "${url[$name]}" --timeout 200ms \
			>/dev/null 2>&1 && return
		sleep 0.05
	done
	fail "instance $name does not answer"
}
for n in a b c; do
	start_instance "$n"
done

# A steady load: sagas started on every instance, a few at a time.
started=0
load() {
	local rounds=$1
	shift
	for _ in $(seq 1 "$rounds"); do
		for n in "$@"; do
			"$sagactl" start m --input '{"x": 1}' \
				--coordinator "${url[$n]}" >>"$tmp/ids.txt" \
				2>>"$tmp/start.err" && started=$((started + 1))
		done
	done
}

# 1. kill -9 of b while it owns sagas in flight.
load 8 a b c
owned_b=$(q "SELECT count(*) FROM saga_instance WHERE owner = 'b' AND state = 'RUNNING'")
((owned_b > 0)) || fail "b owns no running saga to lose"
kill -KILL "${pid[b]}"
kill_at=$(q "SELECT extract(epoch FROM now())")
q "CREATE TABLE lost_b AS SELECT id FROM saga_instance WHERE owner = 'b' AND state IN ('RUNNING', 'COMPENSATING')" >/dev/null
load 4 a c
wait_done() {
	for _ in $(seq 1 600); do
		[[ $(q "SELECT count(*) FROM saga_instance WHERE state IN ('RUNNING', 'COMPENSATING')") == 0 ]] && return
		sleep 0.1
	done
	fail "sagas still unfinished: $(q "SELECT string_agg(id || ' ' || state || ' owner ' || coalesce(owner, '-'), ', ') FROM saga_instance WHERE state IN ('RUNNING', 'COMPENSATING')")"
}
wait_done
worst=$(q "SELECT max(t) FROM (SELECT min(extract(epoch FROM e.at)) - $kill_at AS t
	FROM lost_b l JOIN saga_event e ON e.saga_id = l.id
	WHERE e.writer <> 'b' AND extract(epoch FROM e.at) >= $kill_at
	GROUP BY l.id) x")
[[ -n $worst ]] || fail "no saga of b was taken over"
awk -v w="$worst" -v l="$lease_ms" 'BEGIN { exit !(w <= l / 1000.0 + 1.0) }' ||
	fail "takeover after ${worst}s, more than the lease (${lease_ms} ms) plus 1 s"
echo "multi_test: $owned_b sagas of b taken over, the last after ${worst}s (lease ${lease_ms} ms)"

# 2. a paused past its lease, then continued: fenced. c takes a's sagas
# over, then c is paused too, so that nothing else writes them while a
# wakes up with the replies that arrived during its pause: without
# fencing, a's stale transitions would be written then.
load 6 a c
sleep 0.1
q "CREATE TABLE paused_a AS SELECT id FROM saga_instance WHERE owner = 'a' AND state = 'RUNNING'" >/dev/null
[[ $(q "SELECT count(*) FROM paused_a") -gt 0 ]] || fail "a owns no running saga to lose"
kill -STOP "${pid[a]}"
for _ in $(seq 1 100); do
	[[ $(q "SELECT count(*) FROM saga_instance s JOIN paused_a p USING (id) WHERE s.owner = 'a' AND s.state = 'RUNNING'") == 0 ]] && break
	sleep 0.1
done
[[ $(q "SELECT count(*) FROM saga_instance s JOIN paused_a p USING (id) WHERE s.owner = 'a' AND s.state = 'RUNNING'") == 0 ]] ||
	fail "a's sagas were not taken over while it was stopped"
kill -STOP "${pid[c]}"
q "CREATE TABLE taken AS SELECT p.id, coalesce(max(e.seq), 0) AS seq FROM paused_a p LEFT JOIN saga_event e ON e.saga_id = p.id GROUP BY p.id" >/dev/null
kill -CONT "${pid[a]}"
# a's pending replies and timers fire now; give it time to try.
for _ in $(seq 1 50); do
	grep -q "FENCED" "$tmp/sagad-a.log" && break
	sleep 0.1
done
sleep 0.5
bad=$(q "SELECT count(*) FROM taken t WHERE EXISTS (SELECT 1 FROM saga_event e
	WHERE e.saga_id = t.id AND e.seq > t.seq AND e.writer = 'a')")
[[ $bad == 0 ]] || fail "a wrote to $bad sagas after losing them"
grep -q "FENCED" "$tmp/sagad-a.log" || fail "a did not notice it lost its sagas"
kill -CONT "${pid[c]}"
wait_done

# 3. SIGTERM of c hands its leases over at once.
load 4 c
held=$(q "SELECT count(*) FROM saga_instance WHERE owner = 'c' AND state = 'RUNNING'")
kill -TERM "${pid[c]}"
wait "${pid[c]}" || fail "c did not exit 0 on SIGTERM"
grep -q "LEASES released" "$tmp/sagad-c.log" || fail "c did not release its leases"
wait_done

# 4. An orphan: a saga that a owns in the log but does not hold in memory
# (here b ran it, and its row is handed to a behind both backs: b's next
# write is fenced and b drops it). a renews its lease with all of a's,
# so no instance would ever take it over: a must notice and take it back.
start_instance b
orphan=$("$sagactl" start m --input '{"x": 2}' --coordinator "${url[b]}") ||
	fail "starting a saga on b failed"
started=$((started + 1))
q "UPDATE saga_instance SET owner = 'a' WHERE id = '$orphan'" >/dev/null
wait_done
grep -q "owned saga(s) not in memory: taking them back" "$tmp/sagad-a.log" ||
	fail "a did not take back the saga it owned but did not run"
[[ $(q "SELECT count(*) FROM saga_event WHERE saga_id = '$orphan' AND writer = 'a'") -gt 0 ]] ||
	fail "the orphan was not finished by a"
echo "multi_test: an owned saga missing from memory was taken back and finished"

# Over everything.
[[ $(q "SELECT count(*) FROM saga_instance WHERE state <> 'COMPLETED'") == 0 ]] ||
	fail "not every saga completed: $(q "SELECT string_agg(state, ',') FROM saga_instance WHERE state <> 'COMPLETED'")"
twice=$(awk '$7 == "run" { k = $1 " " $2 " " $3; if (seen[k]++) print k }' "$tmp/record.txt")
[[ -z $twice ]] || fail "a step took effect twice: $twice"
[[ $(q "SELECT count(*) FROM (SELECT saga_id FROM saga_event GROUP BY saga_id HAVING count(*) <> max(seq) OR min(seq) <> 1) x") == 0 ]] ||
	fail "an event log has a gap"
n=$(q "SELECT count(*) FROM saga_instance")
"$sagactl" instances --db "$conninfo" >"$tmp/instances.txt" ||
	fail "sagactl instances failed"
for i in a b c; do
	grep -q "^$i " "$tmp/instances.txt" || fail "sagactl instances does not list $i"
done
grep -q "stopped" "$tmp/instances.txt" || fail "sagactl instances does not show c stopped"
echo "multi_test: $n sagas completed over 3 instances; kill -9, SIGSTOP and SIGTERM survived; $held leases handed over on SIGTERM"
