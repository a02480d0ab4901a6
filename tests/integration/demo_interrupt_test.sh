#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo_interrupt_test.sh BUILD_DIR: scripts/demo.sh stopped by a signal
# (SIGTERM) while its order 4 holds the payments service frozen
# (SIGSTOP) leaves no harm behind. Without --keep the cluster is stopped
# (this half held before 2026-12-08 too: it guards the EXIT trap). With
# --keep the cluster stays, and payments runs again, thawed: it was left
# stopped, and every later saga waited on it.
# Each run uses the already built tree with its own cluster (own
# PostgreSQL, free ports, state in a temporary directory).

set -euo pipefail

build=$(cd "${1:?usage: demo_interrupt_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state=$(mktemp -d /tmp/saga-demo-interrupt-test.XXXXXX)

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"

base=
saga_ports_reserve base 5 ||
	{ echo "demo_interrupt_test: no free ports" >&2; exit 1; }
export SAGA_BUILD_DIR=$build SAGA_PORT_BASE=$base

cleanup() {
	for d in "$state"/run-*; do
		[[ -d $d ]] || continue
		SAGA_CLUSTER_DIR=$d/cluster "$repo/scripts/cluster.sh" stop \
		    >/dev/null 2>&1 || true
	done
	rm -rf "$state"
}
trap cleanup EXIT

fail() {
	echo "demo_interrupt_test: $*" >&2
	for f in "$state"/run-*/demo.log; do
		[[ -f $f ]] && { echo "---- $f" >&2; tail -n 30 "$f" >&2; }
	done
	exit 1
}

# pstate PID: the state letter of PID (T: stopped), or "gone" (exited:
# a zombie is gone too, whoever has yet to reap it).
pstate() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo gone; return; }
	stat=${stat##*) }
	stat=${stat%% *}
	[[ $stat == Z ]] && stat=gone
	echo "$stat"
}

# interrupt NAME [--keep]: runs demo.sh in run-NAME until it says that
# payments is frozen, then SIGTERM; waits for demo.sh to end, and checks
# that the signal came before payments was restarted (while it was frozen
# or killed). Sets pids (every cluster process's then, the
# postmaster's among them).
interrupt() {
	local name=$1 dir=$state/run-$1 demo rc=0 pgdir
	shift
	mkdir -p "$dir"
	SAGA_CLUSTER_DIR=$dir/cluster NO_COLOR=1 \
	    "$repo/scripts/demo.sh" --no-build "$@" >"$dir/demo.log" 2>&1 &
	demo=$!
	for _ in $(seq 1 3000); do
		grep -q "payments is frozen" "$dir/demo.log" && break
		kill -0 "$demo" 2>/dev/null ||
			fail "$name: demo.sh ended before payments was frozen"
		sleep 0.02
	done
	grep -q "payments is frozen" "$dir/demo.log" ||
		fail "$name: payments was not frozen within 60 s"
	pgdir=$(sed -n "s/^SAGA_PG_DIR='\(.*\)'\$/\1/p" "$dir/cluster/pg.env")
	pids=()
	for f in "$dir"/cluster/pids/*.pid "$pgdir/data/postmaster.pid"; do
		[[ -f $f ]] && pids+=("$(head -n 1 "$f")")
	done
	kill -TERM "$demo"
	wait "$demo" || rc=$?
	((rc == 143)) || fail "$name: demo.sh exited $rc after SIGTERM, not 143"
	if grep -q "payments is back" "$dir/demo.log"; then
		fail "$name: SIGTERM came after payments was restarted"
	fi
}

# Without --keep: nothing that the demo started is left.
interrupt plain
((${#pids[@]} >= 6)) || fail "plain: ${#pids[@]} cluster processes seen, not 6"
for p in "${pids[@]}"; do
	[[ $(pstate "$p") == gone ]] ||
		fail "plain: process $p ($(tr '\0' ' ' <"/proc/$p/cmdline")) left running"
done

# With --keep: the cluster runs on, payments not frozen, and a saga
# through it completes.
interrupt keep --keep
dir=$state/run-keep
SAGA_CLUSTER_DIR=$dir/cluster "$repo/scripts/cluster.sh" status \
    >"$dir/status.txt" 2>&1 ||
	{ cat "$dir/status.txt" >&2; fail "keep: the cluster does not run"; }
p=$(cat "$dir/cluster/pids/payments.pid")
s=$(pstate "$p")
[[ $s != T && $s != gone ]] || fail "keep: payments is $s after the demo"
# shellcheck disable=SC1091
source "$dir/cluster/cluster.env"
out=$("$build/coordinator/sagactl" start create_order --wait --timeout 30s \
    --input '{"customer_id": "alice", "sku": "WIDGET", "qty": 1, "amount": 100}') ||
	fail "keep: a saga after the demo did not complete: $out"
echo "demo_interrupt_test: stopped cleanly without --keep; with --keep payments runs"
