#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# failover.sh [--kills N] [--lease DUR] [--instances N]: measures how long
# the surviving sagad instances take to pick up the sagas of one that is
# killed (kill -9), N times, under a steady load, and prints the
# distribution (min, median, p90, max) next to the lease.
#
# Each round: start sagas on every instance, kill -9 one that owns running
# sagas, note the database's clock, and measure per saga from the kill to
# the first event another instance wrote for it; then restart the killed
# instance (under a new id) for the next round. Needs a build
# (SAGA_BUILD_DIR, default build/); starts its own PostgreSQL.

set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SAGA_BUILD_DIR:-$repo/build}
kills=20
lease=2s
ninst=3

while (($# > 0)); do
	case $1 in
	--kills) kills=$2; shift ;;
	--lease) lease=$2; shift ;;
	--instances) ninst=$2; shift ;;
	-h | --help)
		sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "$prog: unknown option '$1'" >&2
		exit 2
		;;
	esac
	shift
done

sagad=$build/coordinator/sagad
sagactl=$build/coordinator/sagactl
tp=$build/tests/test_participant
for b in "$sagad" "$sagactl" "$tp"; do
	[[ -x $b ]] || { echo "$prog: $b is missing: build first" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/saga-failover.XXXXXX)
export SAGA_PG_ENV=$tmp/pg.env
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	"$repo/scripts/pg.sh" stop >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
"$repo/scripts/pg.sh" start >/dev/null
eval "$("$repo/scripts/pg.sh" env)"
psql -X -q -d postgres -c "CREATE DATABASE failover"
conninfo="host=$PGHOST port=$PGPORT user=$PGUSER dbname=failover"
q() {
	psql -X -tA -d failover -c "$1"
}
# The ports: one block (scripts/ports.sh); the proxy on its first port,
# the rest shared out between the instance slots, and each new instance
# of a slot on the next port of its share, round the share.
# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
port0=
saga_ports_reserve port0 64 || exit 1
per_slot=$((63 / ninst))
((per_slot >= 1)) || { echo "$prog: at most 63 instances" >&2; exit 2; }
pp=$port0
"$tp" --listen "tcp://127.0.0.1:$pp" --rule s1.do=delay:200 \
	--rule s2.do=delay:200 --rule s3.do=delay:200 >"$tmp/tp.log" 2>&1 &
pids+=($!)
cat >"$tmp/sagas.yaml" <<YAML
participants:
  p: {endpoints: ["tcp://127.0.0.1:$pp"], max_in_flight: 512}
defaults:
  timeout: 3s
sagas:
  - name: m
    steps:
      - {name: s1, participant: p, action: s1.do, compensation: s1.undo}
      - {name: s2, participant: p, action: s2.do, compensation: s2.undo}
      - {name: s3, participant: p, action: s3.do, compensation: s3.undo}
YAML
"$sagad" --migrate --db "$conninfo" >/dev/null

declare -A url pid
gen=0
start_instance() {
	local slot=$1
	gen=$((gen + 1))
	url[$slot]=tcp://127.0.0.1:$((port0 + 1 + (slot - 1) * per_slot + gen % per_slot))
	"$sagad" --config "$tmp/sagas.yaml" --db "$conninfo" \
		--listen "${url[$slot]}" --instance-id "i$slot-$gen" \
		--lease "$lease" >>"$tmp/sagad-$slot.log" 2>&1 &
	pid[$slot]=$!
	pids+=($!)
	for _ in $(seq 1 200); do
		"$sagactl" ping --coordinator "${url[$slot]}" --timeout 200ms \
			>/dev/null 2>&1 && return
		sleep 0.05
	done
	echo "$prog: instance $slot does not answer" >&2
	exit 1
}
for s in $(seq 1 "$ninst"); do
	start_instance "$s"
done

times=()
for k in $(seq 1 "$kills"); do
	for _ in 1 2 3 4; do
		for s in $(seq 1 "$ninst"); do
			"$sagactl" start m --input '{"k": 1}' \
				--coordinator "${url[$s]}" >/dev/null
		done
	done
	victim=$(((k - 1) % ninst + 1))
	id=$(q "SELECT instance_id FROM saga_coordinator WHERE instance_id LIKE 'i$victim-%' AND stopped_at IS NULL ORDER BY started_at DESC LIMIT 1")
	kill -KILL "${pid[$victim]}"
	at=$(q "SELECT extract(epoch FROM now())")
	q "UPDATE saga_coordinator SET stopped_at = now() WHERE instance_id = '$id'" >/dev/null
	for _ in $(seq 1 300); do
		[[ $(q "SELECT count(*) FROM saga_instance WHERE state IN ('RUNNING', 'COMPENSATING')") == 0 ]] && break
		sleep 0.1
	done
	t=$(q "SELECT round(max(t)::numeric, 3) FROM (SELECT min(extract(epoch FROM e.at)) - $at AS t
		FROM saga_event e WHERE e.writer <> '$id' AND extract(epoch FROM e.at) >= $at
		AND e.saga_id IN (SELECT saga_id FROM saga_event WHERE writer = '$id')
		AND e.saga_id IN (SELECT id FROM saga_instance WHERE owner <> '$id')
		GROUP BY e.saga_id) x")
	if [[ -n $t ]]; then
		times+=("$t")
		echo "$prog: kill $k: instance $id, its sagas taken over after ${t}s"
	else
		echo "$prog: kill $k: instance $id owned nothing in flight"
	fi
	start_instance "$victim"
done
unfinished=$(q "SELECT count(*) FROM saga_instance WHERE state IN ('RUNNING', 'COMPENSATING')")
printf '%s\n' "${times[@]}" | sort -n >"$tmp/times"
n=$(wc -l <"$tmp/times")
pick() {
	awk -v p="$1" -v n="$n" 'NR == int((n - 1) * p) + 1 { print; exit }' "$tmp/times"
}
echo "$prog: $n kills measured (lease $lease, $ninst instances): min $(pick 0)s, median $(pick 0.5)s, p90 $(pick 0.9)s, max $(pick 1)s; sagas unfinished at the end: $unfinished; completed: $(q "SELECT count(*) FROM saga_instance WHERE state = 'COMPLETED'")"
