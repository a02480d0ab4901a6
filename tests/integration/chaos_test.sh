#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# chaos_test.sh BUILD_DIR [INSTANCES]: the short, bounded run of the
# process-level chaos test (scripts/chaos.sh) for ctest: 300 create_order
# sagas over 30 s on the demo cluster with its own PostgreSQL and ports,
# while sagad is killed (kill -9) 3 times, the services 4 times (each
# once), a proxy
# once and PostgreSQL restarted once (an immediate shutdown, like a
# crash), the proxies dropping, duplicating and delaying 5% of the
# messages each; about half of the sagad and service stops are a SIGTERM
# instead of the kill -9, and each must end its process within 30 s. With
# INSTANCES 2 (chaos_test_two_instances), two sagad
# instances share the database, the load goes to both and each kill hits
# one of them: 200 sagas over 20 s, 3 sagad kills, 4 service kills, a
# proxy kill, a PostgreSQL restart. It passes when chaos.sh does: every
# saga settled, no SIGTERM hung and the checker found no violation. About a minute each on
# a 2-core machine.
#
# Without PostgreSQL's server binaries it is skipped (exit 77), unless
# SAGA_TEST_REQUIRE_PG=1. CHAOS_TEST_ARGS adds options (a --seed, say).

set -euo pipefail

build=$(cd "${1:?usage: chaos_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
instances=${2:-1}
if ((instances == 1)); then
	run=(--sagas 300 --duration 30 --seed 7 --kills 3 --participant-kills 4
	    --proxy-kills 1 --pg-restarts 1 --terms 0.5)
else
	run=(--instances "$instances" --sagas 200 --duration 20 --seed 11
	    --kills 3 --participant-kills 4 --proxy-kills 1 --pg-restarts 1
	    --terms 0.5)
fi

if ! command -v initdb >/dev/null &&
    ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	if [[ ${SAGA_TEST_REQUIRE_PG:-0} == 1 ]]; then
		echo "chaos_test: no PostgreSQL server binaries" >&2
		exit 1
	fi
	echo "SKIP: chaos_test needs PostgreSQL's server binaries"
	exit 77
fi

state=$(mktemp -d /tmp/saga-chaos-test.XXXXXX)
log=$state/chaos.log
cleanup() {
	# chaos.sh stops its cluster itself; this is for an interrupted run.
	SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/run/cluster \
	    "$repo/scripts/cluster.sh" stop >/dev/null 2>&1 || true
	# Only what still runs a command line of this run: a pid file's
	# number may be another process's by now.
	for f in "$state"/run/pids/proxy-*.pid "$state"/run/pids/sagad-*.pid; do
		if [[ -f $f && -r /proc/$(cat "$f")/cmdline ]] &&
		    tr '\0' ' ' <"/proc/$(cat "$f")/cmdline" | grep -qF "$state/"; then
			kill -KILL "$(cat "$f")" 2>/dev/null || true
		fi
	done
	rm -rf "$state"
}
trap cleanup EXIT

rc=0
# shellcheck disable=SC2086 # CHAOS_TEST_ARGS: words on purpose
SAGA_BUILD_DIR=$build "$repo/scripts/chaos.sh" --no-build \
    --dir "$state/run" "${run[@]}" --settle 90 ${CHAOS_TEST_ARGS:-} >"$log" 2>&1 || rc=$?

fail() {
	echo "chaos_test: $*" >&2
	grep -v '^VIOLATION' "$log" | tail -n 40 >&2
	grep '^VIOLATION' "$log" | head -n 40 >&2 || true
	for f in "$state"/run/cluster/logs/*.log "$state"/run/logs/*.log; do
		[[ -f $f ]] || continue
		echo "---- $f" >&2
		tail -n 15 "$f" >&2
	done
	exit 1
}
((rc == 0)) || fail "chaos.sh exited $rc"
for want in "chaos: invariant violations: 0" "chaos: PASS"; do
	grep -qF "$want" "$log" || fail "missing from the output: $want"
done
grep '^chaos: ' "$log"
