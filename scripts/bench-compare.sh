#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench-compare.sh: two builds on the same benchmark, on one noisy
# machine. Runs scripts/bench.sh --no-build with each build in turn, old,
# new, new, old, ... (each pair reversing the order of the one before, so
# that with an even number of pairs a machine that slows down or speeds
# up during the runs weighs on both builds alike), then prints, for each
# mode, C and figure, every run's value, each build's median, new / old,
# and whether the two builds' runs overlap. Both builds run with this
# tree's scripts; only the binaries differ. See docs/PERFORMANCE.md,
# "Comparing two builds".

set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

old=
new=
old_label=
new_label=
pairs=4
out=
report=
all=0

usage() {
	cat <<EOF
usage: $prog --old DIR --new DIR [options] [--] [bench.sh options]
       $prog --report DIR [--all]

Runs scripts/bench.sh --no-build with the build trees DIR (each built, for
example, with cmake -DCMAKE_BUILD_TYPE=Release) in the order old, new,
new, old, ..., and compares their figures.
  --old DIR            the build tree to compare against
  --new DIR            the build tree under test
  --old-label NAME     its name in the report and in bench.sh's JSON
                       (default: DIR's last component)
  --new-label NAME     the same for --new
  --pairs N            runs of each build (default $pairs); 2N runs in all.
                       An odd N leaves the builds' median runs one run
                       apart in time (old 1,4,5 and new 2,3,6 for N=3)
  --out DIR            keep each run's log, JSON and TSV, and the
                       comparison (compare.tsv), in DIR (default a new
                       /tmp/saga-bench-compare.XXXXXX, kept)
  --report DIR         run nothing: compare again the runs kept in DIR
                       (its run-K-old.tsv and run-K-new.tsv)
  --all                print every figure (default: all but the system
                       calls other than all, context switches, futex and
                       sendto, and the events per saga)
  -h, --help           this help
Every other option goes to bench.sh (see scripts/bench.sh --help), for
example: $prog --old /tmp/b-old --new /tmp/b-new -- --mode demo
--concurrency 64:8000 --concurrency 1:800 --pgbench-seconds 3 --no-memprobe
(not --repeat: the pairs are the repetitions; not --json, --tsv, --keep
or --profile, which each run would overwrite).

Columns: the figure, each build's runs in the order they ran (NA where a
run lacks the figure), their medians, new / old of the medians, and
"apart" when every run of one build is above every run of the other,
"overlap" otherwise (with runs that overlap, the difference is inside
the machine's noise), "-" with a single run of a build, which says
nothing about the noise, "missing" when some run lacks the figure, "only
old" or "only new" when one build never had it. Two builds that do not
differ come out "apart" by chance, figure by figure, in 1 of 3
comparisons with 2 pairs, 1 in 10 with 3, 1 in 35 with 4.
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
	--report) report=${2:?--report needs a directory}; shift ;;
	--all) all=1 ;;
	-h | --help) usage; exit 0 ;;
	--) shift; bench_args+=("$@"); break ;;
	*) bench_args+=("$1") ;;
	esac
	shift
done

# compare OUT: OUT/compare.tsv from OUT/run-K-{old,new}.tsv, the runs in
# the order of K.
compare() {
	local dir=$1 f k w olds='' news='' n=0
	local -a files=()
	for f in "$dir"/run-*-old.tsv "$dir"/run-*-new.tsv; do
		[[ -f $f ]] && files+=("$f")
	done
	((${#files[@]} > 0)) || die "no run-K-old.tsv or run-K-new.tsv in $dir"
	while read -r k w; do
		n=$((n + 1))
		if [[ $w == old ]]; then
			olds+=" $k"
		else
			news+=" $k"
		fi
	done < <(printf '%s\n' "${files[@]##*/}" |
		sed -n 's/^run-\([0-9][0-9]*\)-\(old\|new\)\.tsv$/\1 \2/p' |
		sort -n)
	[[ -n $olds && -n $news ]] ||
		die "$dir holds runs of one build only"
	{
	printf 'mode\tlog\tconcurrency\tinstances\tfigure\told_runs\tnew_runs\told_median\tnew_median\tnew_over_old\tverdict\n'
	{
		for k in $olds; do
			awk -F'\t' -v OFS='\t' -v k="$k" \
				'NR > 1 { print k, $1, $2, $3, $4, $6, $7 }' \
				"$dir/run-$k-old.tsv"
		done
		for k in $news; do
			awk -F'\t' -v OFS='\t' -v k="$k" \
				'NR > 1 { print k, $1, $2, $3, $4, $6, $7 }' \
				"$dir/run-$k-new.tsv"
		done
	} | awk -F'\t' -v OFS='\t' -v olds="$olds" -v news="$news" '
		# fmt: a number without trailing zeros and never in the
		# exponent form awk prints large ones in.
		function fmt(x,    s) {
			s = sprintf("%.4f", x)
			sub(/0+$/, "", s)
			sub(/\.$/, "", s)
			return s == "-0" ? "0" : s
		}
		# side KEY RUNS: the values of KEY in RUNS (run numbers, in
		# order), NA for a run without it; sets got (values found)
		# and vals[1..got] (sorted), lo and hi.
		function side(key, runs,    r, nr, i, j, t, s) {
			nr = split(runs, r, " ")
			got = 0
			s = ""
			for (i = 1; i <= nr; i++) {
				if ((key SUBSEP r[i]) in v) {
					t = v[key, r[i]]
					s = s (s == "" ? "" : " ") t
					vals[++got] = t + 0
				} else {
					s = s (s == "" ? "" : " ") "NA"
				}
			}
			for (i = 2; i <= got; i++) {
				t = vals[i]
				for (j = i - 1; j >= 1 && vals[j] > t; j--) {
					vals[j + 1] = vals[j]
				}
				vals[j + 1] = t
			}
			lo = vals[1]
			hi = vals[got]
			return s
		}
		function median() {
			if (got == 0) return ""
			if (got % 2) return vals[(got + 1) / 2]
			return (vals[got / 2] + vals[got / 2 + 1]) / 2
		}
		BEGIN { nold = split(olds, t1, " "); nnew = split(news, t2, " ") }
		{
			key = $2 OFS $3 OFS $4 OFS $5 OFS $6
			if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
			v[key, $1] = $7
		}
		END {
			for (i = 1; i <= nk; i++) {
				key = order[i]
				o = side(key, olds); go = got; lo_o = lo; hi_o = hi
				mo = median()
				n = side(key, news); gn = got; lo_n = lo; hi_n = hi
				mn = median()
				if (go == 0) {
					verdict = "only new"
				} else if (gn == 0) {
					verdict = "only old"
				} else if (go < nold || gn < nnew) {
					verdict = "missing"
				} else if (go < 2 || gn < 2) {
					verdict = "-"
				} else if (hi_o < lo_n || hi_n < lo_o) {
					verdict = "apart"
				} else {
					verdict = "overlap"
				}
				ratio = "-"
				if (go > 0 && gn > 0 && mo != 0) {
					ratio = sprintf("%.3f", mn / mo)
				}
				print key, o, n, (go ? fmt(mo) : "-"),
				    (gn ? fmt(mn) : "-"), ratio, verdict
			}
		}'
	} >"$dir/compare.tsv"
}

# print_report OUT: the comparison as a table per mode, log, C and
# instances.
print_report() {
	awk -F'\t' -v all="$all" '
		NR == 1 { next }
		!all && $5 ~ /^syscalls\./ &&
		    $5 !~ /\.(all|context-switches|futex|sendto)$/ { next }
		!all && $5 ~ /^events_per_saga\./ { next }
		{
			group = $1 " (" $2 ") C=" $3
			if ($4 > 1) group = group ", " $4 " instances"
			if (!(group in head)) {
				head[group] = sprintf("  %-38s %-26s %-26s %10s %10s %8s", "figure",
				    "old runs", "new runs", "old med", "new med", "new/old")
				groups[++ng] = group
			}
			row = sprintf("  %-38s %-26s %-26s %10s %10s %8s  %s\n",
			    $5, $6, $7, $8, $9, $10, $11)
			# The system calls after the other figures.
			if ($5 ~ /^syscalls\./) {
				sc[group] = sc[group] row
			} else {
				rows[group] = rows[group] row
			}
		}
		END {
			for (i = 1; i <= ng; i++) {
				printf "\n%s\n%s\n%s%s", groups[i], head[groups[i]],
				    rows[groups[i]], sc[groups[i]]
			}
		}' "$1/compare.tsv"
}

if [[ -n $report ]]; then
	[[ -d $report ]] || die "--report: $report is no directory"
	report=$(cd "$report" && pwd)
	compare "$report"
	echo
	echo "== bench-compare: the runs in $report"
	print_report "$report"
	echo
	echo "every figure: $report/compare.tsv"
	exit 0
fi

[[ -n $old && -n $new ]] || { usage >&2; die "--old and --new are required"; }
[[ $pairs =~ ^[0-9]+$ ]] && ((10#$pairs >= 1 && 10#$pairs <= 20)) ||
	die "--pairs: expected 1..20, got '$pairs'"
pairs=$((10#$pairs))
for d in "$old" "$new"; do
	[[ -x $d/coordinator/sagad ]] ||
		die "$d/coordinator/sagad is missing:" \
		    "not a build tree (or not built)"
done
for a in "${bench_args[@]}"; do
	case $a in
	--json | --tsv | --keep | --profile | -h | --help)
		die "$a is for bench.sh alone: each run would overwrite it" ;;
	--repeat)
		die "--repeat: the pairs are the repetitions (--pairs)" ;;
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
if [[ -n $out ]]; then
	mkdir -p "$out"
else
	out=$(mktemp -d /tmp/saga-bench-compare.XXXXXX)
fi
out=$(cd "$out" && pwd)
if compgen -G "$out/run-*.tsv" >/dev/null; then
	die "$out already holds runs: give another --out"
fi

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
	if ((rc != 0)) || ! awk 'NR > 1 && NF { f = 1 } END { exit !f }' \
	    "$base.tsv" 2>/dev/null; then
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

compare "$out"
echo
echo "== bench-compare: old $old_label ($old), new $new_label ($new)"
echo "runs: ${runs[*]}; bench.sh options: ${bench_args[*]:-(defaults)}"
print_report "$out"
echo
echo "every figure: $out/compare.tsv; each run: $out/run-*.{log,json,tsv}"
