#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# writers_test.sh BUILD_DIR: a new saga's first transition commits with
# its INSERT, through one writer, when the writers' target moves.
#
# sagad (two writers, the default) hands new transitions to the other
# writer once its target's batch has been in flight for 50 ms
# (coord_writer_of). A START stages the saga's INSERT on the target, then
# its first events (saga_started, step_sent) and the entry that sends its
# first command. Were the writer chosen again for those, a target moving
# in between would split them: the other writer's batch drops the events
# of a saga it does not insert, and releases the command before the
# INSERT is known to have committed. To make the target move there, the
# LD_PRELOAD library write_delay holds the write of each SAGA-STAGED log
# line (debug level, made between the two) for 80 ms, while sagas keep
# starting.
#
# Checks: the target moved (sagad logged a WRITER hand-over; else the
# test did not test); every saga COMPLETED; every saga's event log runs
# 1..event_seq with saga_started first; sagad logged no FENCED (with one
# instance, a fenced saga is a write that found no row).
# Needs PostgreSQL (libpq's PG* variables, as scripts/test.sh sets them).

set -euo pipefail

build=$(cd "${1:?usage: writers_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d /tmp/saga-writers-test.XXXXXX)
sagad=$build/coordinator/sagad
sagactl=$build/coordinator/sagactl
noop=$build/tests/noop_participant
bench=$build/tests/saga_bench
shim=$build/tests/libwrite_delay.so
db=writers_test_$$
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
	saga_fail writers_test 12 "$*" "$tmp"/*.log
}

for f in "$sagad" "$sagactl" "$noop" "$bench" "$shim"; do
	[[ -x $f || -f $f ]] || fail "$f is not built"
done
saga_createdb "$db" || fail "no PostgreSQL server"
conninfo="host=${PGHOST:-localhost} port=${PGPORT:-5432} user=${PGUSER:-postgres} dbname=$db"
q() { psql -X -q -tA -d "$db" -v ON_ERROR_STOP=1 -c "$1"; }

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
p0=
saga_ports_reserve p0 4 || fail "no free ports"
api=tcp://127.0.0.1:$p0
part=tcp://127.0.0.1:$((p0 + 1))

"$noop" --listen "$part" >"$tmp/noop.log" 2>&1 &
pids+=($!)
cat >"$tmp/sagas.yaml" <<YAML
participants:
  p: {endpoints: ["$part"], max_in_flight: 256}
defaults:
  timeout: 5s
sagas:
  - name: create_order
    steps:
      - {name: s1, participant: p, action: s1.do, compensation: s1.undo}
      - {name: s2, participant: p, action: s2.do, compensation: s2.undo}
      - {name: s3, participant: p, action: s3.do, compensation: s3.undo}
YAML
"$sagad" --migrate --db "$conninfo" >/dev/null
LD_PRELOAD=$shim SAGA_TEST_WRITE_DELAY_MATCH=SAGA-STAGED \
	SAGA_TEST_WRITE_DELAY_MS=80 \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	"$sagad" --config "$tmp/sagas.yaml" --db "$conninfo" --listen "$api" \
	--db-writers 2 --log-level debug >"$tmp/sagad.log" 2>&1 &
pids+=($!)
saga_answers "$sagactl" "$api" $! || fail "sagad does not answer"

n=60
"$bench" --coordinator "$api" --sagas "$n" --concurrency 8 --quiet \
	--wait-ms 60000 >"$tmp/bench.log" 2>&1 ||
	fail "saga_bench failed: $(tail -n 3 "$tmp/bench.log")"

grep -q 'WRITER [0-9] has had a batch in flight' "$tmp/sagad.log" ||
	fail "sagad never moved its writers' target: nothing was tested"
echo "writers_test: the target moved $(grep -c 'WRITER [0-9] has had' \
	"$tmp/sagad.log") time(s) while sagas started"
[[ $(q "SELECT count(*) FROM saga_instance WHERE state = 'COMPLETED'") == "$n" ]] ||
	fail "not every saga completed: $(q "SELECT string_agg(state, ',') FROM saga_instance WHERE state <> 'COMPLETED'")"
bad=$(q "SELECT count(*) FROM saga_instance s WHERE
	(SELECT count(*) FROM saga_event e WHERE e.saga_id = s.id)
	    <> s.event_seq
	OR (SELECT min(seq) FROM saga_event e WHERE e.saga_id = s.id) <> 1
	OR (SELECT max(seq) FROM saga_event e WHERE e.saga_id = s.id)
	    <> s.event_seq
	OR (SELECT event FROM saga_event e WHERE e.saga_id = s.id
	    ORDER BY seq LIMIT 1) <> 'saga_started'")
[[ $bad == 0 ]] ||
	fail "$bad saga(s) of $n miss events, e.g. $(q "SELECT string_agg(x, '; ') FROM (SELECT s.id || ' event_seq ' || s.event_seq || ', first seq ' || coalesce((SELECT min(seq) FROM saga_event e WHERE e.saga_id = s.id)::text, '-') AS x FROM saga_instance s WHERE (SELECT count(*) FROM saga_event e WHERE e.saga_id = s.id) <> s.event_seq OR (SELECT max(seq) FROM saga_event e WHERE e.saga_id = s.id) <> s.event_seq LIMIT 3) y")"
if grep -q FENCED "$tmp/sagad.log"; then
	fail "sagad fenced a saga of its own: $(grep -m1 FENCED "$tmp/sagad.log")"
fi
echo "writers_test: $n sagas completed, every event log whole from saga_started on"
