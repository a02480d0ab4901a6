#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# shutdown_test.sh BUILD_DIR: sagad's SIGTERM when libnng never returns
# from nng_close (libnng 1.5.2 did so now and then in multi_test and under
# a SIGTERM stress: the main thread waiting for a socket's pipes, nng's
# reaper for one of their operations). nng_close is made to hang for good
# with an LD_PRELOAD library (tests/support/nng_hang.c) while a
# command is in flight. sagad must still hand its leases over (its
# saga's lease in the past, its instance marked stopped), then, its
# watchdog having waited, log the hang and exit 0 within the watchdog's
# 5 s and some. The same run without the hang ends with STOPPED and no
# such line: the library changes nothing else.
# Then the participant library, through the echo example: with nng_close
# hanging, a SIGTERM must still end the service (exit 0, within the
# library's 5 s wait and some, the hang logged); a saga started while it
# is down completes once it is back, and each saga's action took effect
# once. Last, with the stop of its metrics' HTTP server hanging instead
# (the same library's SAGA_TEST_NNG_HTTP_STOP_HANG), the same bound and
# exit.
# Needs PostgreSQL (libpq's PG* variables, as scripts/test.sh sets them).

set -euo pipefail

build=$(cd "${1:?usage: shutdown_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
sagad=$build/coordinator/sagad
sagactl=$build/coordinator/sagactl
tp=$build/tests/test_participant
echo_bin=$build/participants/participant_echo
shim=$build/tests/libnng_hang.so
tmp=$(mktemp -d /tmp/saga-shutdown-test.XXXXXX)
db=shutdown_test_$$
edb=${db}_echo
cdb=${db}_coord
pids=()

# shellcheck source=tests/support/proc.sh
source "$repo/tests/support/proc.sh"

cleanup() {
	saga_kill_children KILL "${pids[@]}"
	saga_dropdb "$db" "$edb" "$cdb"
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	saga_fail shutdown_test 15 "$*" "$tmp"/*.log
}

[[ -f $shim ]] || fail "$shim is missing (not built?)"
[[ -x $echo_bin ]] || fail "$echo_bin is missing (not built?)"
if ! psql -X -q -d postgres -c "CREATE DATABASE $db" >/dev/null 2>&1; then
	[[ ${SAGA_TEST_REQUIRE_PG:-} == 1 ]] && fail "no PostgreSQL server"
	echo "SKIP: no PostgreSQL server (start one with scripts/pg.sh start)"
	exit 77
fi
conninfo="host=${PGHOST:-localhost} port=${PGPORT:-5432} user=${PGUSER:-postgres} dbname=$db"
q() {
	psql -X -q -tA -d "$db" -c "$1"
}
"$sagad" --migrate --db "$conninfo" >/dev/null

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
p0=
saga_ports_reserve p0 5 || fail "no free ports"
"$tp" --listen "tcp://127.0.0.1:$p0" --rule s1.do=delay:30000 \
	--record "$tmp/record.txt" >"$tmp/participant.log" 2>&1 &
pids+=($!)
cat >"$tmp/sagas.yaml" <<YAML
participants:
  p:
    endpoints: ["tcp://127.0.0.1:$p0"]
sagas:
  - name: slow
    steps:
      - {name: s1, participant: p, action: s1.do, compensation: s1.undo, timeout: 60s}
YAML

# run NAME [ENV...]: sagad with ENV, one saga left in flight at its
# participant, then SIGTERM; sets rc (exit status) and took (seconds).
run() {
	local name=$1 id p t0
	shift
	env "$@" "$sagad" --config "$tmp/sagas.yaml" --db "$conninfo" \
		--listen "tcp://127.0.0.1:$((p0 + 1))" --instance-id "$name" \
		--lease 2000ms >"$tmp/sagad-$name.log" 2>&1 &
	p=$!
	pids+=("$p")
	for _ in $(seq 1 100); do
		"$sagactl" ping --coordinator "tcp://127.0.0.1:$((p0 + 1))" \
			--timeout 200ms >/dev/null 2>&1 && break
		sleep 0.05
	done
	id=$("$sagactl" start slow --input '{}' \
		--coordinator "tcp://127.0.0.1:$((p0 + 1))") ||
		fail "$name: starting a saga failed"
	# The command is at the participant (its record has it), which
	# holds it for 30 s.
	for _ in $(seq 1 200); do
		grep -q "^$id 0 0 .* s1.do " "$tmp/record.txt" 2>/dev/null &&
			break
		sleep 0.05
	done
	grep -q "^$id 0 0 .* s1.do " "$tmp/record.txt" ||
		fail "$name: the command never reached the participant"
	t0=$EPOCHREALTIME
	kill -TERM "$p"
	saga_exited "$p" 30 || fail "$name: sagad still runs 30 s after SIGTERM"
	rc=0
	wait "$p" || rc=$?
	took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	saga=$id
}

# With nng_close hanging. ASan wants its runtime first among the loaded
# libraries; the preloaded one comes first here, which is harmless.
run hang LD_PRELOAD="$shim" SAGA_TEST_NNG_CLOSE_HANG=1 \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
log=$tmp/sagad-hang.log
((rc == 0)) || fail "hang: sagad exited $rc"
grep -q "SHUTDOWN: nng has not closed its sockets" "$log" ||
	fail "hang: no watchdog line in sagad's log"
grep -q "STOPPED" "$log" && fail "hang: STOPPED logged though nng_close hung"
rel=$(grep -n "LEASES released" "$log" | cut -d: -f1)
wd=$(grep -n "SHUTDOWN: nng has not closed" "$log" | cut -d: -f1)
[[ -n $rel ]] || fail "hang: the leases were not released"
((rel < wd)) || fail "hang: the leases released after the watchdog fired"
awk -v t="$took" 'BEGIN { exit !(t >= 4.5 && t < 25) }' ||
	fail "hang: exit ${took}s after SIGTERM (the watchdog waits 5 s)"
[[ $(q "SELECT lease_until < now() FROM saga_instance WHERE id = '$saga'") == t ]] ||
	fail "hang: the saga's lease was not handed over"
[[ $(q "SELECT stopped_at IS NOT NULL FROM saga_coordinator WHERE instance_id = 'hang'") == t ]] ||
	fail "hang: the instance is not marked stopped"
echo "shutdown_test: nng_close hung; sagad released its leases, then exited 0 ${took}s after SIGTERM"

# Without the hang: the library is loaded but changes nothing.
run clean LD_PRELOAD="$shim" \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
log=$tmp/sagad-clean.log
((rc == 0)) || fail "clean: sagad exited $rc"
grep -q "STOPPED" "$log" || fail "clean: no STOPPED in sagad's log"
grep -q "SHUTDOWN: nng" "$log" && fail "clean: the watchdog fired"
echo "shutdown_test: without the hang sagad stopped cleanly in ${took}s"

# The participant library (participants/participant.c), through the echo
# example, on a database of its own, with a sagad of its own (and its own
# log: the first part's saga, whose participant is gone, stays out).
for d in "$edb" "$cdb"; do
	psql -X -q -d postgres -c "CREATE DATABASE $d" >/dev/null ||
		fail "cannot create $d"
done
econn="host=${PGHOST:-localhost} port=${PGPORT:-5432} user=${PGUSER:-postgres} dbname=$edb"
cconn="host=${PGHOST:-localhost} port=${PGPORT:-5432} user=${PGUSER:-postgres} dbname=$cdb"
"$sagad" --migrate --db "$cconn" >/dev/null
eq() {
	psql -X -q -tA -d "$edb" -c "$1"
}
cat >"$tmp/echo.yaml" <<YAML
participants:
  echo:
    endpoints: ["tcp://127.0.0.1:$((p0 + 2))"]
sagas:
  - name: greet
    steps:
      - {name: say, participant: echo, action: echo.say, compensation: echo.unsay}
YAML
coord=tcp://127.0.0.1:$((p0 + 3))
"$sagad" --config "$tmp/echo.yaml" --db "$cconn" --listen "$coord" \
	--instance-id echo-coord >"$tmp/sagad-echo.log" 2>&1 &
pids+=($!)
saga_answers "$sagactl" "$coord" $! ||
	fail "the echo part's sagad does not answer"

# echo_start NAME [ENV...] [-- ARG...]: echo with ENV and ARGs, serving
# once it answers a ping.
echo_start() {
	local name=$1 envs=()
	shift
	while (($#)) && [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	(($#)) && shift
	env "${envs[@]}" "$echo_bin" --listen "tcp://127.0.0.1:$((p0 + 2))" \
		--db "$econn" --migrate "$@" >"$tmp/echo-$name.log" 2>&1 &
	epid=$!
	pids+=("$epid")
	for _ in $(seq 1 200); do
		"$sagactl" ping "tcp://127.0.0.1:$((p0 + 2))" \
			--timeout 200ms >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "$name: echo does not answer"
}

# echo_stop: SIGTERM; sets rc and took, as run does.
echo_stop() {
	local t0=$EPOCHREALTIME
	kill -TERM "$epid"
	saga_exited "$epid" 30 || fail "echo still runs 30 s after SIGTERM"
	rc=0
	wait "$epid" || rc=$?
	took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
}

# echo_hung WHAT WANT LOG [HANG]: echo, with a libnng call hanging, exited
# WANT (rc) within the library's 5 s wait and some (took), and logged
# "PARTICIPANT-STOP nng has not HANG" (default: closed its socket).
echo_hung() {
	((rc == $2)) || fail "$1: exited $rc, not $2"
	grep -q "PARTICIPANT-STOP nng has not ${4:-closed its socket}" "$3" ||
		fail "$1: the hang is not logged"
	awk -v t="$took" 'BEGIN { exit !(t >= 4.5 && t < 25) }' ||
		fail "$1: exit ${took}s after it was asked (the library waits 5 s)"
}

echo_start hang LD_PRELOAD="$shim" SAGA_TEST_NNG_CLOSE_HANG=1 \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
one=$("$sagactl" start greet --input '{"text": "one"}' --coordinator "$coord") ||
	fail "echo: starting a saga failed"
"$sagactl" wait "$one" --timeout 30s --coordinator "$coord" >/dev/null ||
	fail "echo: saga $one did not complete"
echo_stop
echo_hung "echo (hang)" 0 "$tmp/echo-hang.log"
echo "shutdown_test: nng_close hung in echo; it exited 0 ${took}s after SIGTERM"

# A start that fails (its port is sagad's) while nng_close hangs: the
# teardown of the half-started participant is bounded as well, and echo
# reports the failure and exits 1.
t0=$EPOCHREALTIME
rc=0
env LD_PRELOAD="$shim" SAGA_TEST_NNG_CLOSE_HANG=1 \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	timeout 60 "$echo_bin" --listen "$coord" --db "$econn" \
	>"$tmp/echo-busy.log" 2>&1 || rc=$?
took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
echo_hung "echo (port taken)" 1 "$tmp/echo-busy.log"
echo "shutdown_test: a failed start with nng_close hung ended in ${took}s"

# While echo is down, a saga is started: sagad retries its command.
two=$("$sagactl" start greet --input '{"text": "two"}' --coordinator "$coord") ||
	fail "echo: starting a saga while echo is down failed"
echo_start clean LD_PRELOAD="$shim" \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
"$sagactl" wait "$two" --timeout 60s --coordinator "$coord" >/dev/null ||
	fail "echo: saga $two did not complete once echo was back"
[[ $(eq "SELECT string_agg(text || ':' || saga_id, ',' ORDER BY text) FROM echo_said") == "one:$one,two:$two" ]] ||
	fail "echo: echo_said is not one row per saga: $(eq "SELECT saga_id, text FROM echo_said")"
echo_stop
log=$tmp/echo-clean.log
((rc == 0)) || fail "echo (clean): exited $rc"
grep -q "PARTICIPANT-STOP nng" "$log" && fail "echo (clean): a hang was logged"
awk -v t="$took" 'BEGIN { exit !(t < 4.5) }' ||
	fail "echo (clean): exit ${took}s after SIGTERM"
echo "shutdown_test: without the hang echo stopped in ${took}s"

# The metrics' HTTP server (--metrics-listen), whose stop (libnng's
# nng_http_server_stop, which waits for its connections) hangs: the
# participant library bounds it as well; echo exits 0, the hang logged.
echo_start metrics LD_PRELOAD="$shim" SAGA_TEST_NNG_HTTP_STOP_HANG=1 \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	-- --metrics-listen "127.0.0.1:$((p0 + 4))"
log=$tmp/echo-metrics.log
grep -q "metrics at http://127.0.0.1:$((p0 + 4))/metrics" "$log" ||
	fail "echo (metrics): its metrics are not served"
three=$("$sagactl" start greet --input '{"text": "three"}' --coordinator "$coord") ||
	fail "echo (metrics): starting a saga failed"
"$sagactl" wait "$three" --timeout 30s --coordinator "$coord" >/dev/null ||
	fail "echo (metrics): saga $three did not complete"
echo_stop
echo_hung "echo (metrics)" 0 "$log" "stopped the metrics' HTTP server"
grep -q "PARTICIPANT-STOP nng has not closed its socket" "$log" &&
	fail "echo (metrics): its socket's close was reported hung"
echo "shutdown_test: the metrics' HTTP server stop hung in echo; it exited 0 ${took}s after SIGTERM"
