#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# keys_test.sh BUILD_DIR: one idempotency key sent to two sagad
# instances at once makes one saga, and neither instance fails a batch.
#
# Instances a and b share a database. A session holds saga_start_key
# locked (SHARE ROW EXCLUSIVE: reads go on, inserts wait), so that a
# START with key K on a waits in its batch's key insert; the same START
# on b then finds no K in the log either, makes a saga of its own and
# waits in its batch the same way. The lock is let go: one key insert
# goes in, the other meets it. Checks:
#   - both STARTs answer, with the same saga id; exactly one of them
#     says created;
#   - the log holds one saga for K, one start key, and no event of the
#     saga that lost the key;
#   - the losing instance logged START-KEY-TAKEN, and neither logged
#     DB-DOWN (the unique violation used to fail that instance's whole
#     batch: every saga it ran was paused and reloaded, and the START
#     answered with an error);
#   - the saga completes, through its owner.
# Needs PostgreSQL (libpq's PG* variables, as scripts/test.sh sets them).

set -euo pipefail

build=$(cd "${1:?usage: keys_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d /tmp/saga-keys-test.XXXXXX)
sagad=$build/coordinator/sagad
sagactl=$build/coordinator/sagactl
noop=$build/tests/noop_participant
db=keys_test_$$
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
	saga_fail keys_test 12 "$*" "$tmp"/*.log "$tmp"/*.out "$tmp"/*.err
}

for f in "$sagad" "$sagactl" "$noop"; do
	[[ -x $f ]] || fail "$f is not built"
done
saga_createdb "$db" || fail "no PostgreSQL server"
# sagad's sessions are READ COMMITTED whatever the database's default:
# under REPEATABLE READ the key race failed a batch ("could not
# serialize access due to concurrent update"), a DB-DOWN.
psql -X -q -d "$db" -c \
	"ALTER DATABASE $db SET default_transaction_isolation = 'repeatable read'" ||
	fail "cannot set the database's isolation"
conninfo="host=${PGHOST:-localhost} port=${PGPORT:-5432} user=${PGUSER:-postgres} dbname=$db"
q() { psql -X -q -tA -d "$db" -v ON_ERROR_STOP=1 -c "$1"; }

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
p0=
saga_ports_reserve p0 4 || fail "no free ports"
part=tcp://127.0.0.1:$p0
declare -A url=([a]=tcp://127.0.0.1:$((p0 + 1)) [b]=tcp://127.0.0.1:$((p0 + 2)))

"$noop" --listen "$part" >"$tmp/noop.log" 2>&1 &
pids+=($!)
cat >"$tmp/sagas.yaml" <<YAML
participants:
  p: {endpoints: ["$part"]}
defaults:
  timeout: 5s
sagas:
  - name: k
    steps:
      - {name: s1, participant: p, action: s1.do, compensation: s1.undo}
      - {name: s2, participant: p, action: s2.do, compensation: s2.undo}
YAML
"$sagad" --migrate --db "$conninfo" >/dev/null
for n in a b; do
	"$sagad" --config "$tmp/sagas.yaml" --db "$conninfo" \
		--listen "${url[$n]}" --instance-id "$n" \
		>"$tmp/sagad-$n.log" 2>&1 &
	pids+=($!)
	saga_answers "$sagactl" "${url[$n]}" $! ||
		fail "instance $n does not answer"
done

# The lock, held by a psql session kept open until it is let go.
coproc LOCK { exec psql -X -q -tA -d "$db" 2>&1; }
pids+=("$LOCK_PID")
printf '%s\n' "BEGIN;" \
	"LOCK TABLE saga_start_key IN SHARE ROW EXCLUSIVE MODE;" \
	"\\echo locked" >&"${LOCK[1]}"
read -r -t 30 line <&"${LOCK[0]}" || fail "the lock session did not answer"
[[ $line == locked ]] || fail "taking the lock: $line"

# waiting N: waits until N sessions wait for the lock on saga_start_key.
waiting() {
	for _ in $(seq 1 300); do
		[[ $(q "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'saga_start_key'::regclass") -ge $1 ]] &&
			return 0
		sleep 0.05
	done
	fail "fewer than $1 batch(es) wait for the key's lock"
}
key=order-$$
declare -A spid
for n in a b; do
	"$sagactl" start k --input '{"x": 1}' --key "$key" --json \
		--coordinator "${url[$n]}" >"$tmp/start-$n.out" \
		2>"$tmp/start-$n.err" &
	spid[$n]=$!
	[[ $n == a ]] && waiting 1
done
waiting 2
printf '%s\n' "COMMIT;" "\\echo unlocked" >&"${LOCK[1]}"
read -r -t 30 line <&"${LOCK[0]}" || fail "the lock session did not answer"
for n in a b; do
	wait "${spid[$n]}" ||
		fail "START through $n failed: $(cat "$tmp/start-$n.err")"
done

field() { # field FILE NAME: a top-level field of sagactl's JSON
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}
ida=$(field "$tmp/start-a.out" id)
idb=$(field "$tmp/start-b.out" id)
[[ $ida == "$idb" ]] || fail "two sagas for one key: $ida (a) and $idb (b)"
created="$(field "$tmp/start-a.out" created) $(field "$tmp/start-b.out" created)"
[[ $created == "True False" || $created == "False True" ]] ||
	fail "created should be true for exactly one START, got $created"
[[ $(q "SELECT count(*) FROM saga_instance") == 1 ]] ||
	fail "the log holds $(q "SELECT count(*) FROM saga_instance") sagas"
[[ $(q "SELECT saga_id FROM saga_start_key WHERE key = '$key'") == "$ida" ]] ||
	fail "the start key does not name the saga"
[[ $(q "SELECT count(*) FROM saga_event WHERE saga_id <> '$ida'") == 0 ]] ||
	fail "events of the saga that lost the key are in the log"
grep -q START-KEY-TAKEN "$tmp"/sagad-a.log "$tmp"/sagad-b.log ||
	fail "no instance logged START-KEY-TAKEN"
if grep -q DB-DOWN "$tmp"/sagad-a.log "$tmp"/sagad-b.log; then
	fail "an instance failed a batch: $(grep -h -m1 DB-DOWN "$tmp"/sagad-*.log)"
fi
"$sagactl" wait "$ida" --coordinator "${url[a]}" --timeout 30s \
	>"$tmp/wait.out" 2>&1 || fail "the saga did not complete"
grep -q COMPLETED "$tmp/wait.out" || fail "the saga did not complete"
echo "keys_test: one key through two instances at once: one saga ($ida), both STARTs answered, no batch failed"
