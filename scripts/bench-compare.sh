#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench-compare.sh: two builds on the same benchmark, on one noisy
# machine. Runs scripts/bench.sh --no-build with each build in turn, old,
# new, new, old, ... (each pair reversing the order of the one before, so
# that a machine that slows down or speeds up during the runs weighs on
# both builds alike), then prints, for each mode, C and figure, every
# run's value, each build's median, new / old, and whether the two
# builds' runs overlap. Both builds run with this tree's scripts; only
# the binaries differ. See docs/PERFORMANCE.md, "Comparing two builds".

set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

old=
new=
old_label=
new_label=
pairs=3
out=
all=0

usage() {
	cat <<EOF
usage: $prog --old DIR --new DIR [options] [--] [bench.sh options]

Runs scripts/bench.sh --no-build with the build trees DIR (each built, for
example, with cmake -DCMAKE_BUILD_TYPE=Release) in the order old, new,
new, old, ..., and compares their figures.
  --old DIR            the build tree to compare against
  --new DIR            the build tree under test
  --old-label NAME     its name in the report and in bench.sh's JSON
                       (default: DIR's last component)
  --new-label NAME     the same for --new
  --pairs N            runs of each build (default $pairs); 2N runs in all
  --out DIR            keep each run's log, JSON and TSV, and the
                       comparison (compare.tsv), in DIR (default a new
                       /tmp/saga-bench-compare.XXXXXX, kept)
  --all                print every figure (default: throughput, latency,
                       CPU, WAL, transactions, and of the system calls
                       only all, context switches, futex and sendto)
  -h, --help           this help
Every other option goes to bench.sh (see scripts/bench.sh --help), for
example: $prog --old /tmp/b-old --new /tmp/b-new -- --mode demo
--concurrency 64:8000 --concurrency 1:800 --pgbench-seconds 3 --no-memprobe

Columns: the figure, each build's runs in the order they ran, their
medians, new / old of the medians, and "apart" when every run of one
build is above every run of the other, "overlap" otherwise (with runs
that overlap, the difference is inside the machine's noise), "-" with a
single run of a build, which says nothing about the noise. Two builds
that do not differ come out "apart" by chance, figure by figure, in 1 of
3 comparisons with 2 pairs, 1 in 10 with 3, 1 in 35 with 4.
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

say() {
	echo "$prog: $*" >&2
}

bench_args=()
while (($# > 0)); do
	case $1 in
	--old) old=${2:?--old needs a directory}; shift ;;
	--new) new=${2:?--new needs a directory}; shift ;;
	--old-label) old_label=${2:?}; shift ;;
	--new-label) new_label=${2:?}; shift ;;
	--pairs) pairs=${2:?}; shift ;;
	--out) out=${2:?}; shift ;;
	--all) all=1 ;;
	-h | --help) usage; exit 0 ;;
	--) shift; bench_args+=("$@"); break ;;
	*) bench_args+=("$1") ;;
	esac
	shift
done

[[ -n $old && -n $new ]] || { usage >&2; die "--old and --new are required"; }
[[ $pairs =~ ^[0-9]+$ ]] && ((pairs >= 1 && pairs <= 20)) ||
	die "--pairs: expected 1..20, got '$pairs'"
for d in "$old" "$new"; do
	[[ -x $d/coordinator/sagad ]] ||
		die "$d/coordinator/sagad is missing:" \
		    "not a build tree (or not built)"
done
for a in "${bench_args[@]}"; do
	case $a in
	--json | --tsv | --keep | -h | --help)
		die "$a is for bench.sh alone; $prog sets its own" ;;
	esac
done
old=$(cd "$old" && pwd)
new=$(cd "$new" && pwd)
[[ -n $old_label ]] || old_label=${old##*/}
[[ -n $new_label ]] || new_label=${new##*/}
[[ $old_label != "$new_label" ]] || {
	old_label="old:$old_label"
	new_label="new:$new_label"
}
[[ $old_label != *$'\t'* && $new_label != *$'\t'* ]] ||
	die "labels cannot hold tabs"
if [[ -n $out ]]; then
	mkdir -p "$out"
else
	out=$(mktemp -d /tmp/saga-bench-compare.XXXXXX)
fi
out=$(cd "$out" && pwd)

say "old: $old ($old_label); new: $new ($new_label);" \
    "$pairs pair(s); results in $out"
runs=()
for ((i = 1; i <= pairs; i++)); do
	if ((i % 2)); then
		runs+=(old new)
	else
		runs+=(new old)
	fi
done
k=0
for which in "${runs[@]}"; do
	k=$((k + 1))
	if [[ $which == old ]]; then
		dir=$old label=$old_label
	else
		dir=$new label=$new_label
	fi
	base=$out/run-$k-$which
	say "run $k of ${#runs[@]}: $which ($label)"
	rc=0
	SAGA_BUILD_DIR=$dir SAGA_BENCH_COMMIT=$label "$repo/scripts/bench.sh" \
		--no-build --json "$base.json" --tsv "$base.tsv" \
		"${bench_args[@]}" >"$base.log" 2>&1 || rc=$?
	if ((rc != 0)) || [[ ! -s $base.tsv ]]; then
		tail -n 30 "$base.log" >&2
		die "run $k ($which) failed (exit $rc); its log: $base.log"
	fi
	# One line per mode and C: what the run measured.
	awk -F'\t' -v w="$which" '
		NR > 1 && $6 == "sagas_per_s" {
			printf "%s:   %s %s C=%s: %s sagas/s\n", w, $1, $2, $3,
			    $7
		}' "$base.tsv" | sed "s/^/$prog: /" >&2
done

# The comparison: every figure of every run, grouped by mode, log, C and
# instances; the runs of each build in the order they ran.
{
	printf 'mode\tlog\tconcurrency\tinstances\tfigure\told_runs\tnew_runs\told_median\tnew_median\tnew_over_old\tverdict\n'
	k=0
	for which in "${runs[@]}"; do
		k=$((k + 1))
		awk -F'\t' -v OFS='\t' -v w="$which" -v k="$k" \
			'NR > 1 { print k, w, $1, $2, $3, $4, $6, $7 }' \
			"$out/run-$k-$which.tsv"
	done | awk -F'\t' -v OFS='\t' '
		function median(s,    v, n, i, j, t) {
			n = split(s, v, " ")
			for (i = 2; i <= n; i++) {
				t = v[i] + 0
				for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) {
					v[j + 1] = v[j]
				}
				v[j + 1] = t
			}
			if (n == 0) return ""
			if (n % 2) return v[(n + 1) / 2] + 0
			return (v[n / 2] + v[n / 2 + 1]) / 2
		}
		function lo(s,    v, n, i, m) {
			n = split(s, v, " "); m = v[1] + 0
			for (i = 2; i <= n; i++) if (v[i] + 0 < m) m = v[i] + 0
			return m
		}
		function hi(s,    v, n, i, m) {
			n = split(s, v, " "); m = v[1] + 0
			for (i = 2; i <= n; i++) if (v[i] + 0 > m) m = v[i] + 0
			return m
		}
		{
			key = $3 OFS $4 OFS $5 OFS $6 OFS $7
			if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
			sep = vals[key, $2] == "" ? "" : " "
			vals[key, $2] = vals[key, $2] sep $8
		}
		END {
			for (i = 1; i <= nk; i++) {
				key = order[i]
				o = vals[key, "old"]; n = vals[key, "new"]
				if (o == "" || n == "") continue
				mo = median(o); mn = median(n)
				ratio = mo != 0 ? sprintf("%.3f", mn / mo) : "-"
				if (split(o, t1, " ") < 2 ||
				    split(n, t2, " ") < 2) {
					verdict = "-"
				} else if (hi(o) < lo(n) || hi(n) < lo(o)) {
					verdict = "apart"
				} else {
					verdict = "overlap"
				}
				print key, o, n, mo, mn, ratio, verdict
			}
		}'
} >"$out/compare.tsv"

# The report: a table per mode, log, C and instances.
echo
echo "== bench-compare: old $old_label ($old), new $new_label ($new)"
echo "runs: ${runs[*]}; bench.sh options: ${bench_args[*]:-(defaults)}"
awk -F'\t' -v all="$all" '
	NR == 1 { next }
	!all && $5 ~ /^syscalls\./ &&
	    $5 !~ /\.(all|context-switches|futex|sendto)$/ { next }
	{
		group = $1 " (" $2 ") C=" $3
		if ($4 > 1) group = group ", " $4 " instances"
		if (group != last) {
			printf "\n%s\n", group
			printf "  %-38s %-26s %-26s %10s %10s %8s\n", "figure",
			    "old runs", "new runs", "old med", "new med", "new/old"
			last = group
		}
		printf "  %-38s %-26s %-26s %10s %10s %8s  %s\n", $5, $6, $7,
		    $8, $9, $10, $11
	}' "$out/compare.tsv"
echo
echo "every figure: $out/compare.tsv; each run: $out/run-*.{log,json,tsv}"
