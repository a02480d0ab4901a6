#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench_compare_test.sh: scripts/bench-compare.sh's comparison, on made-up
# runs (--report DIR over run-K-old.tsv and run-K-new.tsv written here),
# so that no benchmark runs: the runs in the order of K, numeric medians
# (odd and even counts), new / old, every verdict, figures that some runs
# or one build lack, large numbers, and the refusals.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cmp=$repo/scripts/bench-compare.sh
tmp=$(mktemp -d /tmp/saga-bench-compare-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "bench_compare_test: $*" >&2
	exit 1
}

# run K WHICH FIGURE=VALUE...: one made-up run of the noop mode at C=8.
run() {
	local k=$1 which=$2 fv
	shift 2
	{
		printf 'mode\tlog\tconcurrency\tinstances\trepeat\tfigure\tvalue\n'
		for fv in "$@"; do
			printf 'noop\tempty log\t8\t1\t1\t%s\t%s\n' "${fv%%=*}" "${fv#*=}"
		done
	} >"$tmp/r/run-$k-$which.tsv"
}

# row FIGURE: the comparison's row of FIGURE, its columns from old_runs on.
row() {
	awk -F'\t' -v f="$1" -v OFS='|' '$5 == f { print $6, $7, $8, $9, $10, $11 }' \
		"$tmp/r/compare.tsv"
}

expect() {
	local got
	got=$(row "$1")
	[[ $got == "$2" ]] || fail "$1: expected '$2', got '$got'"
}

mkdir -p "$tmp/r"
# Two pairs: old, new, new, old.
run 1 old sps=10 p50=9.5 same=5 gap=1 one=3 big=1234567.5 zero=0
run 2 new sps=12 p50=10 same=5 gap=2 big=2469135 neg=-1
run 3 new sps=13 p50=9.5 same=6 gap=2 big=2469135 neg=-3
run 4 old sps=9.5 p50=10 same=6 gap=1 big=1234567.5 zero=0

"$cmp" --report "$tmp/r" >"$tmp/out.log" 2>&1 ||
	fail "--report failed: $(cat "$tmp/out.log")"
# The runs in the order they ran (old: runs 1 and 4); medians of two
# values, compared as numbers (9.5 < 10, which text would not say).
expect sps "10 9.5|12 13|9.75|12.5|1.282|apart"
expect p50 "9.5 10|10 9.5|9.75|9.75|1.000|overlap"
expect same "5 6|5 6|5.5|5.5|1.000|overlap"
expect gap "1 1|2 2|1|2|2.000|apart"
expect one "3 NA|NA NA|3|-|-|only old"
expect neg "NA NA|-1 -3|-|-2|-|only new"
expect big "1234567.5 1234567.5|2469135 2469135|1234567.5|2469135|2.000|apart"
expect zero "0 0|NA NA|0|-|-|only old"
grep -q "noop (empty log) C=8" "$tmp/out.log" || fail "no group in the report"
grep -q "big " "$tmp/out.log" || fail "no row of big in the report"

# Three runs of each build: the middle value is the median; one run
# missing a figure; a single run of a build.
rm -f "$tmp/r"/run-*
run 1 old sps=1 part=1
run 2 new sps=7 part=2
run 3 new sps=8
run 4 old sps=3 part=1
run 5 old sps=2 part=1
run 6 new sps=9 part=2
"$cmp" --report "$tmp/r" >"$tmp/out.log" 2>&1 ||
	fail "--report failed: $(cat "$tmp/out.log")"
expect sps "1 3 2|7 8 9|2|8|4.000|apart"
expect part "1 1 1|2 NA 2|1|2|2.000|missing"
rm -f "$tmp/r"/run-*
run 1 old sps=1
run 2 new sps=2
"$cmp" --report "$tmp/r" >"$tmp/out.log" 2>&1 ||
	fail "--report failed: $(cat "$tmp/out.log")"
expect sps "1|2|1|2|2.000|-"

# Refusals: runs of one build only; options each run would overwrite or
# repeat; a directory that is no build tree.
rm -f "$tmp/r"/run-*
run 1 old sps=1
if "$cmp" --report "$tmp/r" >"$tmp/err.log" 2>&1 ||
    ! grep -q "runs of one build only" "$tmp/err.log"; then
	fail "one build's runs compared: $(cat "$tmp/err.log")"
fi
mkdir -p "$tmp/b/coordinator"
printf '#!/bin/sh\n' >"$tmp/b/coordinator/sagad"
chmod +x "$tmp/b/coordinator/sagad"
for opt in --json --tsv --keep --profile --repeat; do
	if "$cmp" --old "$tmp/b" --new "$tmp/b" -- "$opt" x >"$tmp/err.log" 2>&1 ||
	    ! grep -q -- "$opt" "$tmp/err.log"; then
		fail "$opt passed on to bench.sh: $(cat "$tmp/err.log")"
	fi
done
if "$cmp" --old "$tmp/none" --new "$tmp/b" >"$tmp/err.log" 2>&1 ||
    ! grep -q "not a build tree" "$tmp/err.log"; then
	fail "a directory that is no build tree taken: $(cat "$tmp/err.log")"
fi
if "$cmp" --old "$tmp/b" --new "$tmp/b" --pairs 0 >"$tmp/err.log" 2>&1 ||
    ! grep -q "expected 1..20" "$tmp/err.log"; then
	fail "--pairs 0 taken: $(cat "$tmp/err.log")"
fi
echo "bench_compare_test: medians, verdicts and refusals as expected"
