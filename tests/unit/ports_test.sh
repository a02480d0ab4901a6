#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# ports_test.sh: scripts/ports.sh hands each shell a block of ports that
# no other holds and that nothing uses.
#   1. two shells that reserve at once from a range of two blocks get
#      the two blocks, and a third, while they hold them, gets none;
#   2. a block is free again once its holder has exited;
#   3. a block where a socket listens is never handed out;
#   4. a bad SAGA_PORT_RANGE or N is refused.
# Runs in its own lock directory (TMPDIR), so other tests do not interfere.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d /tmp/saga-ports-test.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf -- "$tmp"
}
trap cleanup EXIT
fail() {
	echo "ports_test: FAIL: $*" >&2
	exit 1
}
export TMPDIR=$tmp

# A range of two blocks that nothing uses now: 64-aligned, below the
# ephemeral range.
range=
for lo in $(seq 12800 128 20000); do
	if [[ -z $(ss -Htan "( sport >= :$lo and sport < :$((lo + 128)) )" 2>/dev/null) ]]; then
		range=$lo-$((lo + 128))
		break
	fi
done
[[ -n $range ]] || fail "no two free blocks to test with"
export SAGA_PORT_RANGE=$range

# holder NAME: reserves a block, writes it to $tmp/NAME, waits until
# $tmp/NAME.done appears (holding the block), then exits.
holder() {
	# shellcheck source=scripts/ports.sh
	source "$repo/scripts/ports.sh"
	local b
	if saga_ports_reserve b 64; then
		echo "$b" >"$tmp/$1"
	else
		echo none >"$tmp/$1"
	fi
	while [[ ! -e $tmp/$1.done ]]; do
		sleep 0.05
	done
}
wait_file() {
	for _ in $(seq 1 200); do
		[[ -s $tmp/$1 ]] && return 0
		sleep 0.05
	done
	fail "holder $1 did not answer"
}

# 1. Two at once, then a third.
holder a &
pids+=($!)
holder b &
pids+=($!)
wait_file a
wait_file b
a=$(cat "$tmp/a") b=$(cat "$tmp/b")
[[ $a != none && $b != none ]] || fail "a got $a, b got $b: both should have a block"
[[ $a != "$b" ]] || fail "a and b were both given block $a"
holder c 2>"$tmp/c.err" &
pids+=($!)
wait_file c
[[ $(cat "$tmp/c") == none ]] || fail "c was given block $(cat "$tmp/c") while a ($a) and b ($b) held both"
touch "$tmp/c.done"

# 2. a exits: its block is free again.
touch "$tmp/a.done"
wait "${pids[0]}"
holder d &
pids+=($!)
wait_file d
[[ $(cat "$tmp/d") == "$a" ]] || fail "d got $(cat "$tmp/d"), not a's freed block $a"
touch "$tmp/b.done" "$tmp/d.done"
wait

# 3. A listener in one block: only the other is handed out.
lport=$((${range%-*} + 70))
nngcat --pull0 --listen "tcp://127.0.0.1:$lport" >/dev/null 2>"$tmp/nngcat.log" &
pids+=($!)
for _ in $(seq 1 100); do
	[[ -n $(ss -Hltn "sport = :$lport") ]] && break
	sleep 0.05
done
[[ -n $(ss -Hltn "sport = :$lport") ]] ||
    fail "the listener on $lport did not start: $(cat "$tmp/nngcat.log")"
# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
for _ in 1 2 3 4 5; do
	(
		saga_ports_reserve p 64 || exit 1
		[[ $p == "${range%-*}" ]] || fail "given block $p, where port $lport listens"
	) || fail "no block given, though ${range%-*} is free"
done

# 4. Bad arguments.
if SAGA_PORT_RANGE=100-50 saga_ports_reserve p 4 2>"$tmp/err"; then
	fail "SAGA_PORT_RANGE=100-50 accepted"
fi
grep -q "SAGA_PORT_RANGE=100-50" "$tmp/err" || fail "no clear error for SAGA_PORT_RANGE=100-50: $(cat "$tmp/err")"
if saga_ports_reserve p 65 2>/dev/null; then
	fail "N=65 accepted"
fi
echo "ports_test: ok (blocks $a and $b of $range)"
