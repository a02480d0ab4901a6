#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# fuzz.sh: builds the libFuzzer target proto_fuzz (tests/fuzz/proto_fuzz.c,
# the protocol decoder under ASan and UBSan) with clang into build-fuzz/,
# runs it for a while in one process, and prints one summary line:
# executions, executions per second, crashes found (0 or 1).
#
# The corpus grows in build-fuzz/corpus, seeded from tests/fuzz/corpus/
# when that exists; a crashing input is written to build-fuzz/artifacts/
# and its path printed. The full libFuzzer output is in build-fuzz/fuzz.log.
# Exit status: 0 if nothing was found, 1 if an input crashed (or leaked,
# or timed out), 2 on a usage, build or run error.

set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bdir=$repo/build-fuzz
corpus=$bdir/corpus
artifacts=$bdir/artifacts
log=$bdir/fuzz.log
seconds=60

usage() {
	cat <<EOF
usage: $prog [SECONDS] [--help]

Builds proto_fuzz (clang, -DCOORD_FUZZ=ON) in build-fuzz/ and fuzzes the
protocol decoder for SECONDS seconds (default $seconds), inputs up to 4096
bytes. Corpus: build-fuzz/corpus (seeded from tests/fuzz/corpus/).
Crashes: build-fuzz/artifacts/. Log: build-fuzz/fuzz.log.

Reproduce a crash with: build-fuzz/tests/proto_fuzz CRASH_FILE
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 2
}

case ${1:-} in
-h | --help)
	usage
	exit 0
	;;
"") ;;
*[!0-9]* | 0)
	echo "$prog: SECONDS must be a positive whole number, not '$1'" >&2
	usage >&2
	exit 2
	;;
*) seconds=$1 ;;
esac
(($# <= 1)) || die "too many arguments (see --help)"

command -v clang >/dev/null ||
    die "clang is needed for libFuzzer (apt-get install clang libclang-rt-14-dev)"
[[ -f $repo/tests/fuzz/proto_fuzz.c ]] ||
    die "no fuzz target: tests/fuzz/proto_fuzz.c does not exist"

# Warnings are policed by the gcc build of scripts/test.sh; a clang-only
# warning must not stop the fuzzer from running.
echo "$prog: building proto_fuzz in $bdir"
mkdir -p "$bdir"
if ! CC=clang cmake -S "$repo" -B "$bdir" -DCMAKE_C_COMPILER=clang \
    -DCOORD_FUZZ=ON -DCOORD_WERROR=OFF -DCOORD_SANITIZER= \
    >"$bdir/configure.log" 2>&1; then
	cat "$bdir/configure.log" >&2
	die "configuring $bdir failed"
fi
cmake --build "$bdir" --target proto_fuzz -j2 ||
    die "building proto_fuzz failed"
bin=$bdir/tests/proto_fuzz
[[ -x $bin ]] || die "built, but $bin is not there"

mkdir -p "$corpus" "$artifacts"
if [[ -d $repo/tests/fuzz/corpus ]]; then
	find "$repo/tests/fuzz/corpus" -maxdepth 1 -type f \
	    -exec cp -n -t "$corpus" {} +
fi
extra=()
if [[ -f $repo/tests/fuzz/proto_fuzz.dict ]]; then
	extra+=("-dict=$repo/tests/fuzz/proto_fuzz.dict")
fi

# UBSan is recoverable in the fuzz build: make a report fatal, so that
# libFuzzer counts it as a crash and keeps the input.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

echo "$prog: fuzzing for $seconds s (corpus $corpus, log $log)"
rc=0
"$bin" "$corpus" -max_len=4096 -max_total_time="$seconds" -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "${extra[@]}" \
    >"$log" 2>&1 || rc=$?

stat() {
	sed -n "s/^stat::$1: *\([0-9][0-9]*\).*/\1/p" "$log" | tail -n 1
}

runs=$(stat number_of_executed_units)
speed=$(stat average_exec_per_sec)
if [[ -z $runs ]]; then
	# No final statistics: fall back on the last status line.
	runs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
	speed=$(sed -n 's/^#.* exec\/s: \([0-9][0-9]*\).*/\1/p' "$log" |
	    tail -n 1)
fi
crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
units=$(find "$corpus" -type f | wc -l)

if [[ -n $crash ]]; then
	tail -n 40 "$log" >&2
	echo "$prog: proto_fuzz: ${runs:-?} executions, ${speed:-?} exec/s," \
	    "crashes found: 1"
	echo "$prog: crash input: $crash"
	echo "$prog: reproduce with: $bin $crash"
	exit 1
fi
if ((rc != 0)); then
	tail -n 40 "$log" >&2
	die "proto_fuzz failed (status $rc) without a crash input; see $log"
fi
echo "$prog: proto_fuzz: ${runs:-?} executions, ${speed:-?} exec/s," \
    "crashes found: 0 (corpus: $units inputs)"
