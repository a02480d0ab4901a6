#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench.sh: the throughput and latency benchmark of sagad, on one machine,
# with full durability (fsync on, synchronous_commit on). See
# docs/PERFORMANCE.md for what each figure means and for the results.
#
# For each mode and each concurrency C it:
#   1. measures the machine's durable-write limit: pgbench for 20 s at C
#      clients with a custom script (one UPDATE by primary key of a
#      100,000-row table plus one ~100-byte INSERT, in one transaction);
#   2. runs N sagas at concurrency C through sagad with saga_bench (after
#      a warm-up that is not measured), a progress line every second;
#   3. reports sagas/s, step transitions/s and their ratio to the pgbench
#      limit, saga latency (p50/p95/p99/max), database transactions and
#      WAL bytes per saga, CPU seconds per saga of every process (sagad,
#      each participant, all of PostgreSQL, the load generator), sagad's
#      peak memory; a summary table at the end, and --json FILE.
# Modes:
#   demo  the demo cluster (scripts/cluster.sh): PostgreSQL, sagad and the
#         four demo services, the create_order saga (5 steps), 10% of the
#         orders failing at payment and compensating;
#   noop  coordinator only: sagad with its own durable database, and the
#         four participants served by noop_participant (no database:
#         every command answered ok at once); then the memory probe
#         (sagad's resident memory per saga in flight).
# --prefill N makes a second coordinator database holding N finished
# sagas and runs everything on both logs, alternately (sagad restarted on
# one, then the other), to show whether throughput falls as the log
# grows.
# --instances LIST runs each configuration with that many sagad instances
# sharing the coordinator's database (the first is the mode's sagad; the
# others are started and stopped here, each with its own ports and a
# fixed --instance-id), saga_bench spreading its clients over all of
# them; the instance counts alternate within each repetition.

set -euo pipefail

prog=${0##*/}
command_line="$0 $*"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SAGA_BUILD_DIR:-$repo/build-bench}

sagas=20000
max_c=0 # the largest concurrency of the runs
conc_args=()
modes=demo,noop
prefill=0
json=
tsv=
quick=0
do_build=1
pgbench_s=20
seed=1
keep=0
memprobe=1
client_extra=() # --start-wait
repeat=1
warmup=
profile_dir=
syscalls=0
statements=0
probe_points="2000 8000"
spread=2
probe_delay_ms=60000
inst_arg=1

usage() {
	cat <<EOF
usage: $prog [options]

Benchmarks sagad on this machine (see docs/PERFORMANCE.md).
  --sagas N            sagas per run at C >= 8 (default $sagas); runs at
                       C < 8 use N/10 (at least 100) unless C:N is given
  --concurrency LIST   comma-separated C or C:N items, repeatable
                       (default 64,1)
  --mode MODE          demo, noop or all (default all: demo then noop)
  --prefill N          also run everything on a log holding N finished
                       sagas, alternating with the empty log (log growth)
  --repeat R           run each configuration R times (medians reported)
  --instances LIST     sagad instances sharing the coordinator's database,
                       comma-separated counts 1..16 (default 1; e.g.
                       1,2,3): every run is made with each count, the
                       counts alternating within each repetition; each
                       instance has its own --listen and --metrics-listen
                       ports, a fixed --instance-id (bench-1, bench-2...)
                       and the same configuration and options; saga_bench
                       spreads its clients over all of them (client k on
                       instance k mod n). sagad's CPU is summed over the
                       instances, its peak memory (VmHWM) is the largest
                       instance's (RSS: the first's), its metrics are
                       summed
  --warmup N           unmeasured sagas before each run (default N/20,
                       50..1000)
  --pgbench-seconds S  length of each pgbench run (default $pgbench_s)
  --seed S             seed of the input mix (default $seed)
  --customers K        paying customers and SKUs in the mix (default 2:
                       alice and carol buying WIDGET and GIZMO, as in the
                       demo); K > 2 adds customers and SKUs, so that
                       payments and inventory do not serialise on two
                       rows each (2..64)
  --no-memprobe        skip the memory probe of the noop mode
  --start-wait         each client's START waits for the saga's end (one
                       round trip; without it, START then WAIT)
  --probe "K1 K2"      sagas in flight at the two points of the memory
                       probe (default "$probe_points")
  --profile DIR        perf record -g sagad during each run, reports in DIR
                       (also the whole machine by process, and PostgreSQL
                       by function)
                       (the first instance only, with --instances)
  --syscalls           count the system calls and context switches of
                       sagad and of each participant during each run
                       (perf stat on the syscall tracepoints; counts,
                       not times, so they compare across runs on a noisy
                       machine; a participant's sendto calls are its
                       round trips to PostgreSQL)
  --statements         PostgreSQL's statements during each run, by
                       database: calls, plans, planning and execution
                       time per saga (pg_stat_statements, preloaded into
                       the clusters this script starts; the 10 that took
                       longest in each database in the JSON, the first 8
                       of all printed)
  --json FILE          write every figure as JSON to FILE
  --tsv FILE           write the figures of each run to FILE, one per
                       line, tab-separated: mode, log, C, instances,
                       repetition, figure, value (what
                       scripts/bench-compare.sh reads)
  --quick              a small run for CI: N=200 at C=8, both modes,
                       5 s of pgbench, a small memory probe, 2 s (not
                       11 s) for PostgreSQL's statistics: it checks that
                       everything runs; its figures are not measurements
  --no-build           use the existing build (SAGA_BUILD_DIR, default
                       build-bench/); else configure and build it Release
  --keep               leave the clusters running and the state directory
  -h, --help           this help
Environment: SAGA_BUILD_DIR (build tree), SAGA_BENCH_DIR (state
directory, default a new /tmp/saga-bench.XXXXXX), SAGA_PORT_BASE (fixed
ports: the demo cluster from it, the noop mode from it + 10, the demo's
extra instances from it + 20, the noop mode's from it + 52, two ports
each; default free ports picked at random), SAGA_BENCH_SAGAD_ARGS
(extra sagad options, both modes), SAGA_BENCH_COMMIT (the commit to
report when the tree is not a git checkout).
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

say() {
	printf '%s: %s\n' "$prog" "$*" >&2
}

while (($# > 0)); do
	case $1 in
	--sagas) sagas=${2:?}; shift ;;
	--concurrency) conc_args+=("${2:?}"); shift ;;
	--mode) modes=${2:?}; shift ;;
	--prefill) prefill=${2:?}; shift ;;
	--repeat) repeat=${2:?}; shift ;;
	--instances) inst_arg=${2:?}; shift ;;
	--warmup) warmup=${2:?}; shift ;;
	--pgbench-seconds) pgbench_s=${2:?}; shift ;;
	--seed) seed=${2:?}; shift ;;
	--customers) spread=${2:?}; shift ;;
	--no-memprobe) memprobe=0 ;;
	--start-wait) client_extra=(--start-wait) ;;
	--probe) probe_points=${2:?}; shift ;;
	--profile) profile_dir=${2:?}; shift ;;
	--syscalls) syscalls=1 ;;
	--statements) statements=1 ;;
	--json) json=${2:?}; shift ;;
	--tsv) tsv=${2:?}; shift ;;
	--quick) quick=1 ;;
	--no-build) do_build=0 ;;
	--keep) keep=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option '$1'" ;;
	esac
	shift
done

if ((quick)); then
	sagas=200
	((${#conc_args[@]} > 0)) || conc_args=(8)
	pgbench_s=5
	probe_points="100 300"
	[[ -n $warmup ]] || warmup=20
	# The transaction counters of pg_stat_database may then lack the last
	# second's transactions: --quick checks that everything runs, its
	# figures are not measurements.
	stats_wait=2
fi
((${#conc_args[@]} > 0)) || conc_args=('64,1')
case $modes in
all | demo,noop) modes="demo noop" ;;
noop,demo) modes="noop demo" ;;
demo | noop) ;;
*) die "--mode: expected demo, noop or all, got '$modes'" ;;
esac
for v in "$sagas" "$prefill" "$repeat" "$pgbench_s" "$seed" "$spread" ${warmup:+"$warmup"}; do
	[[ $v =~ ^[0-9]+$ ]] || die "expected a number, got '$v'"
done
((sagas > 0 && repeat > 0 && pgbench_s > 0)) ||
	die "--sagas, --repeat and --pgbench-seconds must be positive"
((spread >= 2 && spread <= 64)) || die "--customers: expected 2..64"
# The instance counts, in the order given.
inst_list=()
IFS=, read -ra _items <<<"$inst_arg"
for it in "${_items[@]}"; do
	[[ $it =~ ^[0-9]+$ ]] && ((it >= 1 && it <= 16)) ||
		die "--instances: expected counts 1..16, comma-separated, got '$inst_arg'"
	inst_list+=("$it")
done
((${#inst_list[@]} > 0)) || die "--instances: expected counts 1..16"
unset _items
# The paying customers and the SKUs of the mix.
mix_customers=alice,carol
mix_skus=WIDGET,GIZMO
for ((i = 3; i <= spread; i++)); do
	mix_customers+=$(printf ',bench%02d' "$i")
	mix_skus+=$(printf ',SKU%02d' "$i")
done

# The runs: "C N" pairs.
runs=()
for arg in "${conc_args[@]}"; do
	IFS=, read -ra items <<<"$arg"
	for it in "${items[@]}"; do
		c=${it%%:*}
		if [[ $it == *:* ]]; then
			n=${it#*:}
		elif ((c < 8)); then
			n=$((sagas / 10 > 100 ? sagas / 10 : 100))
			((n <= sagas)) || n=$sagas
		else
			n=$sagas
		fi
		[[ $c =~ ^[0-9]+$ && $n =~ ^[0-9]+$ ]] && ((c > 0 && n > 0)) ||
			die "--concurrency: expected C or C:N, got '$it'"
		runs+=("$c $n")
		((c <= max_c)) || max_c=$c
		# pgbench runs at the same client count: the clusters must
		# take that many connections besides the system's own.
		((c + 60 <= ${SAGA_PG_MAX_CONNECTIONS:-200})) ||
			export SAGA_PG_MAX_CONNECTIONS=$((c + 60))
	done
done

# ---------------------------------------------------------------------
# Build, state, ports.

# shellcheck source=scripts/deps.sh
source "$repo/scripts/deps.sh"
if ((do_build)); then
	ensure_packages >&2 || die "missing packages (see above)"
	say "building Release into $build"
	cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$build" -j2 --target sagad sagactl saga-orders \
		saga-inventory saga-payments saga-shipping saga_bench \
		noop_participant >/dev/null
fi
sagad_bin=$build/coordinator/sagad
sagactl_bin=$build/coordinator/sagactl
bench_bin=$build/tests/saga_bench
noop_bin=$build/tests/noop_participant
for b in "$sagad_bin" "$sagactl_bin" "$bench_bin" "$noop_bin"; do
	[[ -x $b ]] || die "$b is missing: build first (or drop --no-build)"
done
# Whether this build's saga_bench checks the demo's outcomes saga by
# saga (--expect-demo; builds before dd2472b do not).
sb_expects=0
[[ $("$bench_bin" --help 2>&1) != *--expect-demo* ]] || sb_expects=1
command -v pgbench >/dev/null || die "pgbench is missing (package postgresql-client)"
command -v psql >/dev/null || die "psql is missing (package postgresql-client)"

if [[ -n ${SAGA_BENCH_DIR:-} ]]; then
	state=$SAGA_BENCH_DIR
	mkdir -p "$state"
else
	state=$(mktemp -d /tmp/saga-bench.XXXXXX)
fi
chmod 755 "$state"
[[ -z $profile_dir ]] || mkdir -p "$profile_dir"

# The events --syscalls counts, in sagad's processes: every system call
# (raw_syscalls:sys_enter), context switches, and the calls that carry
# its messages, wake its threads and talk to PostgreSQL.
# A system call this architecture lacks (arm64 has no poll) is left out.
sc_events=raw_syscalls:sys_enter,context-switches
if ((syscalls)); then
	command -v perf >/dev/null ||
		die "--syscalls needs perf (apt-get install linux-perf)"
	perf stat -x, -e "$sc_events" -o /dev/null -- true 2>"$state/perf-check.log" ||
		die "--syscalls: perf cannot count syscall tracepoints here: $(head -n 3 "$state/perf-check.log")"
	for sc in futex read write readv writev sendmsg recvmsg sendto recvfrom poll epoll_wait; do
		if perf stat -x, -e "syscalls:sys_enter_$sc" -o /dev/null -- true 2>/dev/null; then
			sc_events+=,syscalls:sys_enter_$sc
		fi
	done
fi

# --statements: the clusters started below preload pg_stat_statements
# (scripts/pg.sh); statements_setup checks that they did.
if ((statements)); then
	export SAGA_PG_PRELOAD=pg_stat_statements
fi

# Ports: picked right before they are used, each set in a block of its
# own (scripts/ports.sh); a start that finds one taken meanwhile is tried
# again on others.
# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
fixed_base=${SAGA_PORT_BASE:-}
base=$fixed_base
if [[ -z $base ]]; then
	saga_ports_reserve base 6 || die "no 6 free ports found"
fi

clk_tck=$(getconf CLK_TCK)
our_pids=()
# perf processes of the run under way (--syscalls): stopped by cleanup
# too, with --keep as well, if the run ends early.
perf_pids=()
# The sagad instances, 1..inst_up running now (1 is the mode's sagad,
# pid_of[sagad]), ninst wanted by the runs: pid, client URL, metrics URL.
ninst=${inst_list[0]}
inst_up=0
inst_pid=()
inst_url=()
inst_murl=()
coord_args=()
noop_pg_env=$state/noop/pg.env
demo_up=0

cleanup() {
	local p
	if ((${#perf_pids[@]} > 0)); then
		kill -INT "${perf_pids[@]}" 2>/dev/null || true
		wait "${perf_pids[@]}" 2>/dev/null || true
	fi
	if ((keep)); then
		say "--keep: clusters left running; state in $state"
		if ((inst_up > 1)); then
			say "--keep: extra sagad instances left running too (not stopped by cluster.sh stop): pids ${inst_pid[*]:1}"
		fi
		return
	fi
	for p in "${our_pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${our_pids[@]}"; do
		for _ in $(seq 1 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
	done
	if ((demo_up)); then
		SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/demo \
			SAGA_PORT_BASE=$base "$repo/scripts/cluster.sh" stop \
			>/dev/null 2>&1 || true
	fi
	if [[ -f $noop_pg_env ]]; then
		SAGA_PG_ENV=$noop_pg_env "$repo/scripts/pg.sh" stop \
			>/dev/null 2>&1 || true
	fi
	case $state in
	/tmp/saga-bench.*) rm -rf -- "$state" ;;
	esac
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------
# Helpers.

calc() { # calc EXPR [DECIMALS]
	awk "BEGIN { v = ($1); printf \"%.${2:-3}f\", v }"
}

q() { # q DB SQL: one value or rows, unaligned
	psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# statements_setup: with --statements, once the mode's cluster is up:
# planning time counted too. statements_on stays 0 (and the runs report
# no statements) when the server has no pg_stat_statements.
statements_on=0
statements_setup() {
	statements_on=0
	((statements)) || return 0
	if [[ $(q postgres "SHOW shared_preload_libraries") != *pg_stat_statements* ]]; then
		say "warning: --statements: this PostgreSQL has no pg_stat_statements; no statement figures"
		return 0
	fi
	if ! q postgres "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null ||
		! q postgres "ALTER SYSTEM SET pg_stat_statements.track_planning = on" >/dev/null ||
		! q postgres "SELECT pg_reload_conf()" >/dev/null; then
		say "warning: --statements: pg_stat_statements could not be set up; no statement figures"
		return 0
	fi
	statements_on=1
}

# statements_read DIR: right after the run and its snapshot (before the
# wait for the statistics), the statements that ran 10 times or more
# since the reset before it (the script's own queries run once each):
# in each database, the 10 that took the most planning and execution
# time, into DIR/statements.txt (empty when the query fails).
statements_read() {
	q postgres "SELECT d.datname, s.calls, s.plans,
		round(s.total_plan_time::numeric, 3), round(s.total_exec_time::numeric, 3),
		left(regexp_replace(s.query, '\s+', ' ', 'g'), 200)
		FROM (SELECT *, row_number() OVER (PARTITION BY dbid
		    ORDER BY total_plan_time + total_exec_time DESC) AS r
		    FROM pg_stat_statements WHERE calls >= 10) s
		JOIN pg_database d ON d.oid = s.dbid
		WHERE s.r <= 10
		ORDER BY s.total_plan_time + s.total_exec_time DESC" \
		>"$1/statements.txt" 2>"$1/statements.err" || {
		say "warning: --statements: reading pg_stat_statements failed: $(head -n 1 "$1/statements.err")"
		: >"$1/statements.txt"
	}
}

# statements_report DIR N: prints the first 8 of DIR/statements.txt and
# sets st_json (figures per saga of N); leaves it null when the read
# failed.
statements_report() {
	local dir=$1 n=$2 db calls plans pms ems query k=0
	[[ -s $dir/statements.txt ]] || return 0
	st_json=
	say "  PostgreSQL statements (database: calls, plans, planning + execution ms, per saga):"
	while IFS='|' read -r db calls plans pms ems query; do
		[[ -n $db ]] || continue
		st_json+="${st_json:+, }{\"database\": $(json_str "$db"), \"calls\": $(calc "$calls / $n" 3), \"plans\": $(calc "$plans / $n" 3), \"plan_ms\": $(calc "$pms / $n" 4), \"exec_ms\": $(calc "$ems / $n" 4), \"query\": $(json_str "$query")}"
		if ((k++ < 8)); then
			say "    $db: $(calc "$calls / $n" 2), $(calc "$plans / $n" 2), $(calc "$pms / $n" 3) + $(calc "$ems / $n" 3): ${query:0:70}"
		fi
	done <"$dir/statements.txt"
	st_json="[$st_json]"
}

# proc_ticks PID: utime + stime of a live process, in clock ticks.
proc_ticks() {
	local line
	line=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	line=${line##*) }
	awk '{ print $12 + $13 }' <<<"$line"
}

# pg_procs: PostgreSQL's CPU in one pass over its processes (server
# $pg_data), one line "pid database ticks" each: the postmaster's own
# time and that of its children already reaped (cutime, cstime) as
# "0 postmaster_and_ended", every live backend under the database its
# title names ("postgres: user database host(port) state", or "[local]"
# for the host), any other process (WAL writer, checkpointer,
# autovacuum, parallel workers) as "background". One pass gives both the
# total (pg_ticks) and its parts (pg_db_json), so that they agree.
pg_procs() {
	local pm line k title
	local -a w
	pm=$(head -n 1 "$pg_data/postmaster.pid" 2>/dev/null) || return 0
	line=$(cat "/proc/$pm/stat" 2>/dev/null) || return 0
	line=${line##*) }
	awk '{ print "0 postmaster_and_ended", $12 + $13 + $14 + $15 }' <<<"$line"
	for k in $(ps -o pid= --ppid "$pm" 2>/dev/null || true); do
		title=$(tr '\0' ' ' <"/proc/$k/cmdline" 2>/dev/null) || continue
		read -r -a w <<<"$title"
		# With cluster_name set, the title starts "postgres: name:".
		[[ ${w[1]:-} != *: ]] || w=("${w[0]}" "${w[@]:2}")
		case ${w[3]:-} in
		*\(*\) | '[local]') echo "$k ${w[2]} $(proc_ticks "$k")" ;;
		*) echo "$k background $(proc_ticks "$k")" ;;
		esac
	done
}

# pg_ticks PROCS: the total of a pg_procs snapshot.
pg_ticks() {
	awk '{ t += $3 } END { print t + 0 }' <<<"$1"
}

# pg_db_json A B: from two pg_procs snapshots, PostgreSQL's CPU ms per
# saga by database, as JSON members, the largest first; they add up to
# the total. A process that started during the run counts whole. One that
# ended during it is in "postmaster_and_ended" (the postmaster's reaped
# children), less what it had used before the run.
pg_db_json() {
	awk -v tck="$clk_tck" -v n="$sb_done" '
		FNR == NR { t0[$1] = $3; next }
		{ d[$2] += $3 - ($1 in t0 ? t0[$1] : 0); seen[$1] = 1 }
		END {
			for (p in t0) {
				if (p != "" && !(p in seen)) {
					d["postmaster_and_ended"] -= t0[p]
				}
			}
			for (k in d) {
				printf "%.4f %s\n", d[k] / tck / n * 1000, k
			}
		}' <(printf '%s\n' "$1") <(printf '%s\n' "$2") |
		sort -k1,1nr |
		awk '{ printf "%s\"%s\": %s", (NR > 1 ? ", " : ""), $2, $1 }'
}

# sagad_ticks: proc_ticks summed over the running sagad instances.
sagad_ticks() {
	local k sum=0
	for ((k = 1; k <= inst_up; k++)); do
		sum=$((sum + $(proc_ticks "${inst_pid[k]}")))
	done
	echo "$sum"
}

# machine_busy: CPU ticks of the whole machine not idle (nor iowait).
machine_busy() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

status_kib() { # status_kib PID FIELD: the value, 0 when it is not there
	local v
	v=$(awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/status" 2>/dev/null) || true
	echo "${v:-0}"
}

# db_stats: "datname commits rollbacks" of the databases in $dbs.
db_stats() {
	local list
	list=$(printf "'%s'," $dbs)
	q postgres "SELECT datname, xact_commit, xact_rollback
		FROM pg_stat_database WHERE datname IN (${list%,})
		ORDER BY datname"
}

# row_stats: "updates hot_updates" of saga_instance in the coordinator's
# database: how many of its row updates were HOT (no index touched; see
# docs/operations.md).
row_stats() {
	q "$coord_db" "SELECT n_tup_upd || ' ' || n_tup_hot_upd
		FROM pg_stat_user_tables WHERE relname = 'saga_instance'"
}

ping_url() {
	"$sagactl_bin" ping --coordinator "$1" --timeout 200ms >/dev/null 2>&1
}

# sagad's own metrics (when it serves them): sums and counts of its
# histograms, to tell the time spent committing from the rest; summed
# over the instances.
metrics_urls=()
sagad_metrics_args=()
if "$sagad_bin" --help 2>&1 | grep -q -- --metrics-listen &&
	command -v curl >/dev/null; then
	have_metrics=1
else
	have_metrics=0
fi
# Extra sagad options for experiments (both modes). sagad holds at most
# half of its client contexts for waiting requests (a WAIT, or a START
# with timeout_ms): above that it refuses them (EOVERLOAD) and saga_bench
# retries after a pause, which opens the closed loop. Above 512 sagas in
# flight the default 1024 contexts are raised to hold them all (the
# experiments' own options, after it, win).
sagad_extra=()
if ((max_c > 512)); then
	sagad_extra+=(--api-contexts $((max_c * 2 + 64 > 65536 ? 65536 : max_c * 2 + 64)))
fi
read -ra sagad_user <<<"${SAGA_BENCH_SAGAD_ARGS:-}"
sagad_extra+=("${sagad_user[@]}")

metrics_scrape() { # metrics_scrape: "name value" of the sums and counts
	((${#metrics_urls[@]} > 0)) || return 0
	local u
	for u in "${metrics_urls[@]}"; do
		curl -fsS --max-time 5 "$u" 2>/dev/null ||
			say "warning: no metrics from $u: the sums lack that instance"
	done | awk '
		/^saga_(db_commit_seconds|db_batch_rows|step_duration_seconds|duration_seconds|command_batch_size|engine_wait_seconds)_(sum|count)[{ ]/ {
			n = $1; sub(/[{].*/, "", n); v[n] += $NF }
		END { for (n in v) printf "%s %.6f\n", n, v[n] }'
}

metrics_delta() { # metrics_delta BEFORE AFTER NAME
	awk -v n="$3" 'NR == FNR { if ($1 == n) a = $2; next }
		$1 == n { b = $2 } END { printf "%.6f", b - a }' \
		<(echo "$1") <(echo "$2")
}

wait_up() { # wait_up URL PID: 0 once URL answers, 1 if PID exits first
	for _ in $(seq 1 150); do
		ping_url "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

wait_ping() { # wait_ping URL PID LOG
	wait_up "$1" "$2" && return 0
	tail -n 20 "$3" >&2
	die "nothing answers on $1 (process $2, log $3)"
}

# syscalls_json CSV N: the counts of perf stat -x, (lines count,unit,
# event,...) divided by N, as a JSON object: "all" (every system call),
# "context-switches", and one per system call counted.
syscalls_json() {
	printf '{%s}' "$(awk -F, -v n="$2" '
		$3 ~ /^(raw_)?syscalls:|^context-switches(:u)?$/ && $1 ~ /^[0-9]+$/ {
			e = $3
			sub(/^raw_syscalls:sys_enter$/, "all", e)
			sub(/^syscalls:sys_enter_/, "", e)
			sub(/:u$/, "", e)
			printf "%s\"%s\": %.2f", (k++ ? ", " : ""), e, $1 / n
		}' "$1")"
}

json_str() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

median() { # median V...
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print 0; exit }
		if (NR % 2) print v[(NR + 1) / 2];
		else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ---------------------------------------------------------------------
# Machine.

# bench_commit: the commit benchmarked (SAGA_BENCH_COMMIT for a tree that
# is not a git checkout, such as a git archive export).
bench_commit() {
	if [[ -n ${SAGA_BENCH_COMMIT:-} ]]; then
		echo "$SAGA_BENCH_COMMIT"
	else
		git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown
	fi
}

machine_json() {
	local model cores mem disk kernel commit dirty pgver
	model=$(awk -F: '/^model name/ { sub(/^ +/, "", $2); print $2; exit }' /proc/cpuinfo)
	cores=$(nproc)
	mem=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
	kernel=$(uname -r)
	disk=$(df -P /tmp | awk 'NR == 2 { print $1 }')
	disk="$disk $(lsblk -dno ROTA,MODEL "/dev/$(lsblk -no PKNAME "$disk" 2>/dev/null | head -n 1)" 2>/dev/null |
		awk '{ print ($1 == 1 ? "rotational" : "non-rotational") }' || true)"
	commit=$(bench_commit)
	dirty=$(git -C "$repo" status --porcelain 2>/dev/null | grep -c . || true)
	pgver=$(pgbench --version | awk '{ print $3 }')
	printf '{"cpu": %s, "cores": %s, "mem_kib": %s, "kernel": %s, "tmp_disk": %s, "commit": %s, "uncommitted_files": %s, "postgresql": %s}' \
		"$(json_str "$model")" "$cores" "$mem" "$(json_str "$kernel")" \
		"$(json_str "$disk")" "$(json_str "$commit")" "$dirty" "$(json_str "$pgver")"
}

# ---------------------------------------------------------------------
# pgbench: the durable-write limit at C clients.

declare -A pgbench_tps=()
pgbench_json=()

pgbench_init() {
	if [[ -z $(q postgres "SELECT 1 FROM pg_database WHERE datname = 'bench_pgbench'") ]]; then
		q postgres "CREATE DATABASE bench_pgbench" >/dev/null
		pgbench -i -q -s 1 bench_pgbench >"$state/pgbench-init.log" 2>&1 ||
			{ cat "$state/pgbench-init.log" >&2; die "pgbench -i failed"; }
		q bench_pgbench "CREATE TABLE bench_log (aid integer NOT NULL,
			payload text NOT NULL)" >/dev/null
	fi
	cat >"$state/pgbench.sql" <<'EOF'
\set aid random(1, 100000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
INSERT INTO bench_log (aid, payload) VALUES (:aid, repeat('x', 100));
END;
EOF
}

run_pgbench() { # run_pgbench MODE C
	local mode=$1 c=$2 j out tps lat
	pgbench_init
	j=$((c < 2 ? c : 2))
	q postgres "CHECKPOINT" >/dev/null
	say "$mode: pgbench, $c clients, ${pgbench_s} s (UPDATE by key + 100-byte INSERT per transaction)"
	out=$(pgbench -n -M prepared -f "$state/pgbench.sql" -c "$c" -j "$j" \
		-T "$pgbench_s" bench_pgbench 2>&1) ||
		{ echo "$out" >&2; die "pgbench failed"; }
	tps=$(awk '/^tps = / { print $3; exit }' <<<"$out")
	lat=$(awk '/^latency average = / { print $4; exit }' <<<"$out")
	[[ -n $tps ]] || {
		echo "$out" >&2
		die "pgbench measured nothing at $c clients in $pgbench_s s" \
			"(connecting that many can take longer: raise --pgbench-seconds)"
	}
	pgbench_tps[$mode:$c]=$tps
	say "$mode: pgbench limit at $c clients: $tps tps (latency average $lat ms)"
	pgbench_json+=("{\"mode\": \"$mode\", \"clients\": $c, \"seconds\": $pgbench_s, \"tps\": $tps, \"latency_ms_avg\": ${lat:-0}}")
	# bench_log only grows: keep it from weighing on later runs. And
	# the tens of thousands of updates pgbench made would get
	# autovacuum (and its WAL) into the next measured run: vacuum now.
	q bench_pgbench "TRUNCATE bench_log" >/dev/null
	q bench_pgbench "VACUUM (ANALYZE) pgbench_accounts, bench_log" >/dev/null
}

# ---------------------------------------------------------------------
# The demo cluster.

demo_start() {
	local try
	for try in 1 2 3; do
		if ((try > 1)); then
			saga_ports_reserve base 6 || die "no 6 free ports found"
		fi
		export SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/demo SAGA_PORT_BASE=$base
		say "demo: starting the cluster (ports $base-$((base + 5)), state $state/demo)"
		demo_up=1
		if "$repo/scripts/cluster.sh" start >"$state/demo-start.log" 2>&1; then
			break
		fi
		"$repo/scripts/cluster.sh" stop >/dev/null 2>&1 || true
		if ((try == 3)) || [[ -n $fixed_base ]] ||
			! grep -q 'in use\|does not answer\|exited during' "$state/demo-start.log"; then
			cat "$state/demo-start.log" >&2
			die "cluster.sh start failed"
		fi
		say "demo: a port was taken meanwhile; trying others"
	done
	# shellcheck disable=SC1091
	source "$state/demo/cluster.env"
	pg_data=$(awk -F"'" '/^SAGA_PG_DIR=/ { print $2 }' "$state/demo/pg.env")/data
	coord_url=$SAGA_COORDINATOR
	procs=(sagad orders inventory payments shipping)
	declare -gA pid_of=()
	local p
	for p in "${procs[@]}"; do
		pid_of[$p]=$(cat "$state/demo/pids/$p.pid")
	done
	unset SAGA_PORT_BASE SAGA_CLUSTER_DIR
	# sagad again, as cluster.sh runs it, plus its metrics endpoint and
	# SAGA_BENCH_SAGAD_ARGS (cluster.sh stop still finds it by its pid
	# file), so that the runs can also point it at another database.
	part_dbs="saga_orders saga_inventory saga_payments saga_shipping"
	sagad_cfg=$state/demo/create_order.yaml
	sagad_log=$state/demo/logs/sagad.log
	sagad_metrics_port=$((base + 5))
	sagad_pidfile=$state/demo/pids/sagad.pid
	extra_port0_off=20
	sagad_start saga_coordinator
	statements_setup
}

demo_stop() {
	sagad_stop_all
	SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/demo SAGA_PORT_BASE=$base \
		"$repo/scripts/cluster.sh" stop >/dev/null 2>&1 || true
	demo_up=0
}

# demo_topup N: enough stock and money for N more orders (each at most
# one unit and 999 cents) for every customer and SKU of the mix (made
# first when --customers adds some).
demo_topup() {
	local c k
	for c in ${mix_customers//,/ }; do
		q saga_payments "INSERT INTO accounts (customer_id, balance)
			VALUES ('$c', 0) ON CONFLICT DO NOTHING" >/dev/null
	done
	for k in ${mix_skus//,/ }; do
		q saga_inventory "INSERT INTO stock (sku, available, reserved)
			VALUES ('$k', 0, 0) ON CONFLICT DO NOTHING" >/dev/null
	done
	q saga_payments "UPDATE accounts SET balance = balance + $1 * 1000
		WHERE customer_id <> 'bob'" >/dev/null
	q saga_inventory "UPDATE stock SET available = available + $1
		WHERE sku <> 'GADGET'" >/dev/null
}

# ---------------------------------------------------------------------
# The coordinator-only set-up: its own PostgreSQL, sagad, noop_participant.

noop_port0=
noop_config() { # noop_config FILE TIMEOUT MAX_IN_FLIGHT
	local u=tcp://127.0.0.1
	cat >"$1" <<EOF
# Written by scripts/bench.sh: create_order's shape (5 steps, the pivot
# third), every participant served by noop_participant.
participants:
  orders: {endpoints: ["$u:$((noop_port0 + 1))"], max_in_flight: $3}
  inventory: {endpoints: ["$u:$((noop_port0 + 2))"], max_in_flight: $3}
  payments: {endpoints: ["$u:$((noop_port0 + 3))"], max_in_flight: $3}
  shipping: {endpoints: ["$u:$((noop_port0 + 4))"], max_in_flight: $3}
defaults:
  timeout: $2
sagas:
  - name: create_order
    deadline: 10m
    business_key: customer_id
    steps:
      - {name: create_order, participant: orders, action: order.create, compensation: order.reject}
      - {name: reserve_stock, participant: inventory, action: stock.reserve, compensation: stock.release}
      - {name: charge_payment, participant: payments, action: payment.charge, compensation: payment.refund, kind: pivot}
      - {name: schedule_shipment, participant: shipping, action: shipment.schedule, kind: retriable}
      - {name: approve_order, participant: orders, action: order.approve, kind: retriable}
EOF
}

noop_part_pid=
sagad_cfg=
sagad_log=
sagad_metrics_port=
sagad_pidfile=
part_dbs=
extra_port0_off=

noop_start_part() { # noop_start_part [noop_participant options...]
	local u=tcp://127.0.0.1
	"$noop_bin" --listen "$u:$((noop_port0 + 1))" --listen "$u:$((noop_port0 + 2))" \
		--listen "$u:$((noop_port0 + 3))" --listen "$u:$((noop_port0 + 4))" \
		"$@" >>"$state/noop/noop.log" 2>&1 </dev/null &
	noop_part_pid=$!
	our_pids+=("$noop_part_pid")
	wait_ping "$u:$((noop_port0 + 1))" "$noop_part_pid" "$state/noop/noop.log"
}

# noop_ports: picks the noop mode's six ports (sagad, the four
# participants, sagad's metrics) and starts noop_participant on them,
# trying other ports when one was taken meanwhile.
noop_ports() {
	local try u=tcp://127.0.0.1
	for try in 1 2 3; do
		if [[ -n $fixed_base ]]; then
			noop_port0=$((fixed_base + 10))
		else
			saga_ports_reserve noop_port0 6 || die "no 6 free ports found"
		fi
		"$noop_bin" --listen "$u:$((noop_port0 + 1))" --listen "$u:$((noop_port0 + 2))" \
			--listen "$u:$((noop_port0 + 3))" --listen "$u:$((noop_port0 + 4))" \
			--contexts 256 >>"$state/noop/noop.log" 2>&1 </dev/null &
		noop_part_pid=$!
		our_pids+=("$noop_part_pid")
		if wait_up "$u:$((noop_port0 + 1))" "$noop_part_pid"; then
			return 0
		fi
		stop_pid "$noop_part_pid"
		((try < 3)) && [[ -z $fixed_base ]] ||
			{ tail -n 5 "$state/noop/noop.log" >&2; die "noop_participant did not start"; }
		say "noop: a port was taken meanwhile; trying others"
	done
}

# sagad_start DB [sagad options...]: (re)starts sagad on the
# coordinator database DB, with the mode's configuration ($sagad_cfg),
# its metrics endpoint, --instance-id bench-1 and SAGA_BENCH_SAGAD_ARGS;
# then the extra instances up to $ninst on the same database (the
# options given here are the first instance's only: the memory probe's).
sagad_start() {
	local db=$1
	shift
	sagad_stop_all
	local murl=
	sagad_metrics_args=()
	if ((have_metrics)); then
		sagad_metrics_args=(--metrics-listen "127.0.0.1:$sagad_metrics_port")
		murl=http://127.0.0.1:$sagad_metrics_port/metrics
	fi
	"$sagad_bin" --config "$sagad_cfg" --listen "$coord_url" \
		--db "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$db" \
		--instance-id bench-1 \
		"${sagad_metrics_args[@]}" "${sagad_extra[@]}" "$@" \
		>>"$sagad_log" 2>&1 </dev/null &
	pid_of[sagad]=$!
	our_pids+=("$!")
	[[ -z $sagad_pidfile ]] || echo "$!" >"$sagad_pidfile"
	inst_pid=([1]=$!)
	inst_url=([1]=$coord_url)
	inst_murl=([1]=$murl)
	inst_up=1
	wait_ping "$coord_url" "${pid_of[sagad]}" "$sagad_log"
	coord_db=$db
	# shellcheck disable=SC2086
	dbs=$(echo $db $part_dbs)
	instances_set "$ninst"
}

# extra_start K: starts sagad instance K (2..16) on $coord_db: the first
# instance's configuration and options (SAGA_BENCH_SAGAD_ARGS included),
# its own client and metrics ports (SAGA_PORT_BASE + $extra_port0_off +
# 2 (K - 2) and the next, or two free ones picked at random), the fixed
# id bench-K; its log beside the first instance's.
extra_start() {
	local k=$1 try port url murl pid log margs=()
	log=${sagad_log%.log}-$k.log
	for try in 1 2 3; do
		if [[ -n $fixed_base ]]; then
			port=$((fixed_base + extra_port0_off + 2 * (k - 2)))
		else
			saga_ports_reserve port 2 || die "no 2 free ports found"
		fi
		url=tcp://127.0.0.1:$port
		murl=
		margs=()
		if ((have_metrics)); then
			margs=(--metrics-listen "127.0.0.1:$((port + 1))")
			murl=http://127.0.0.1:$((port + 1))/metrics
		fi
		"$sagad_bin" --config "$sagad_cfg" --listen "$url" \
			--db "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$coord_db" \
			"${margs[@]}" "${sagad_extra[@]}" --instance-id "bench-$k" \
			>>"$log" 2>&1 </dev/null &
		pid=$!
		our_pids+=("$pid")
		if wait_up "$url" "$pid"; then
			inst_pid[k]=$pid
			inst_url[k]=$url
			inst_murl[k]=$murl
			return 0
		fi
		stop_pid "$pid"
		if ((try == 3)) || [[ -n $fixed_base ]]; then
			tail -n 20 "$log" >&2
			die "sagad instance $k did not start on $url (log $log)"
		fi
		say "sagad instance $k: a port was taken meanwhile; trying others"
	done
}

# instances_set K: K sagad instances from now on (when sagad runs: the
# extra ones started or stopped, the last first, to match), and the
# client URLs and metrics URLs of the runs.
instances_set() {
	local k
	ninst=$1
	if ((inst_up > 0)); then
		for ((k = inst_up; k > ninst; k--)); do
			stop_pid "${inst_pid[k]}"
			unset 'inst_pid[k]' 'inst_url[k]' 'inst_murl[k]'
		done
		for ((k = inst_up + 1; k <= ninst; k++)); do
			extra_start "$k"
			inst_up=$k
		done
		inst_up=$ninst
	fi
	coord_args=()
	metrics_urls=()
	for ((k = 1; k <= inst_up; k++)); do
		coord_args+=(--coordinator "${inst_url[k]}")
		[[ -z ${inst_murl[k]:-} ]] || metrics_urls+=("${inst_murl[k]}")
	done
	((inst_up <= 1)) || say "$inst_up sagad instances on $coord_db: ${inst_url[*]}"
}

# sagad_stop_all: every sagad instance, the extra ones first (SIGTERM:
# each hands its leases over).
sagad_stop_all() {
	local k
	for ((k = inst_up; k >= 2; k--)); do
		stop_pid "${inst_pid[k]:-}"
	done
	stop_pid "${pid_of[sagad]:-}"
	inst_up=0
	inst_pid=()
	inst_url=()
	inst_murl=()
}

stop_pid() {
	local p keepers=()
	[[ -n $1 ]] || return 0
	for p in "${our_pids[@]}"; do
		[[ $p == "$1" ]] || keepers+=("$p")
	done
	our_pids=("${keepers[@]}")
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -KILL "$1" 2>/dev/null || true
}

noop_start() {
	mkdir -p "$state/noop"
	say "noop: starting PostgreSQL, sagad and noop_participant"
	SAGA_PG_ENV=$noop_pg_env "$repo/scripts/pg.sh" start >"$state/noop/pg-start.log" 2>&1 ||
		{ cat "$state/noop/pg-start.log" >&2; die "pg.sh start failed"; }
	eval "$(SAGA_PG_ENV=$noop_pg_env "$repo/scripts/pg.sh" env)"
	pg_data=$SAGA_PG_DIR/data
	q postgres "CREATE DATABASE saga_coordinator" >/dev/null
	noop_conninfo="host=$PGHOST port=$PGPORT user=$PGUSER dbname=saga_coordinator"
	"$sagad_bin" --migrate --db "$noop_conninfo" >>"$state/noop/sagad.log" 2>&1 ||
		die "sagad --migrate failed (log $state/noop/sagad.log)"
	procs=(sagad noop)
	declare -gA pid_of=()
	noop_ports
	coord_url=tcp://127.0.0.1:$noop_port0
	say "noop: ports $noop_port0-$((noop_port0 + 5))"
	noop_config "$state/noop/noop.yaml" 10s 256
	part_dbs=
	sagad_cfg=$state/noop/noop.yaml
	sagad_log=$state/noop/sagad.log
	sagad_metrics_port=$((noop_port0 + 5))
	sagad_pidfile=
	extra_port0_off=52
	sagad_start saga_coordinator
	pid_of[noop]=$noop_part_pid
	statements_setup
}

noop_stop() {
	sagad_stop_all
	stop_pid "$noop_part_pid"
	SAGA_PG_ENV=$noop_pg_env "$repo/scripts/pg.sh" stop >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------
# One measured run.

run_json=()
summary=()
tsv_rows=()
runs_with_errors=0 # runs whose client had errors (exit 3 at the end)

# tsv_put KEY FIGURE VALUE: one line of --tsv (KEY: the run's first five
# columns, tab-separated).
tsv_put() {
	tsv_rows+=("$1"$'\t'"$2"$'\t'"$3")
}

# tsv_flat KEY PREFIX PAIRS: one line per "name": number of PAIRS (the
# flat objects this script writes into its JSON, without nesting, with
# names that hold no colon), as figure PREFIX.name.
tsv_flat() {
	local name value
	while IFS=: read -r name value; do
		name=${name//[\" \{]/}
		value=${value//[ \}]/}
		[[ -n $name && $value =~ ^-?[0-9.]+$ ]] || continue
		tsv_put "$1" "$2.$name" "$value"
	done < <(tr ',' '\n' <<<"$3")
}
declare -A med_sps=() med_p50=() med_p99=() med_tps=()

# snapshot VAR: CPU ticks of every process and of the machine, WAL
# position and next transaction id, taken right before and right after
# the measured run.
# shellcheck disable=SC2154
snapshot() {
	local -n s=$1
	local p
	for p in "${procs[@]}"; do
		if [[ $p == sagad ]]; then
			s[cpu_$p]=$(sagad_ticks)
		else
			s[cpu_$p]=$(proc_ticks "${pid_of[$p]}")
		fi
	done
	s[pgdb]=$(pg_procs)
	s[cpu_postgres]=$(pg_ticks "${s[pgdb]}")
	s[busy]=$(machine_busy)
	s[wal]=$(q postgres "SELECT pg_current_wal_lsn()")
	s[xid]=$(q postgres "SELECT pg_snapshot_xmax(pg_current_snapshot())")
}

# stats_settle: a backend publishes its transaction counters at most
# once a second, and one that goes idle less than a second after its
# last report waits 10 s (PGSTAT_IDLE_INTERVAL, PostgreSQL 15): wait
# that long before reading pg_stat_database.
stats_settle() {
	sleep "${stats_wait:-11}"
}

rss_sampler() { # rss_sampler PID OUTFILE: max VmRSS every 100 ms
	# Builtins only: on two cores a fork per sample (awk, sleep) took
	# a tenth of a core from what is measured. The wait is a read that
	# times out on a pipe held open at both ends, which never has data.
	local pid=$1 out=$2 max=0 k v _ tick
	exec {tick}<> <(:)
	while kill -0 "$pid" 2>/dev/null; do
		v=0
		while read -r k v _; do
			[[ $k == VmRSS: ]] && break
			v=0
		done <"/proc/$pid/status" 2>/dev/null || true
		if ((v > max)); then
			max=$v
			# Whole or not at all: the sampler is killed at any
			# moment, and a truncated file is an empty number.
			echo "$max" >"$out.tmp" && mv -f "$out.tmp" "$out"
		fi
		read -r -t 0.1 -u "$tick" _ || true
	done
}

# measure MODE LABEL C N REP PREFILLED
measure() {
	local mode=$1 label=$2 c=$3 n=$4 rep=$5 prefilled=$6
	local dir=$state/runs/$mode-$label-c$c-i$ninst-r$rep w sb_rc=0 key
	local -A a=() b=()
	mkdir -p "$dir"
	if [[ -n $warmup ]]; then
		w=$warmup
	else
		w=$((n / 20))
		((w >= 50)) || w=50
		((w <= 1000)) || w=1000
	fi

	[[ $mode != demo ]] || demo_topup $((n + w))
	if ((w > 0)); then
		"$bench_bin" "${coord_args[@]}" --sagas "$w" --concurrency "$c" \
			"${client_extra[@]}" \
			--customers "$mix_customers" --skus "$mix_skus" \
			--seed $((seed + 1000 + rep)) --quiet >"$dir/warmup.log" 2>&1 ||
			{ cat "$dir/warmup.log" >&2; die "the warm-up run failed"; }
	fi
	q postgres "CHECKPOINT" >/dev/null
	stats_settle
	local db_a db_b bg0 bg1 bg rows_a rows_b
	db_a=$(db_stats)
	rows_a=$(row_stats)
	# What the machine does without us: a benchmark on a busy machine
	# is noise. Measured over one idle second, reported, warned about.
	bg0=$(machine_busy)
	sleep 1
	bg1=$(machine_busy)
	bg=$(calc "($bg1 - $bg0) / $clk_tck" 2)
	if (($(calc "$bg > 0.25 ? 1 : 0" 0))); then
		say "warning: the machine is busy without the benchmark: $bg cores in use (other processes); figures will be low"
	fi
	# Every instance's peak from here (the largest is reported).
	for ((k = 1; k <= inst_up; k++)); do
		echo 5 >"/proc/${inst_pid[k]}/clear_refs" 2>/dev/null || true
	done
	local rss_idle
	rss_idle=$(status_kib "${pid_of[sagad]}" VmRSS)
	echo "$rss_idle" >"$dir/rss_max"
	rss_sampler "${pid_of[sagad]}" "$dir/rss_max" &
	local sampler=$!
	local perf_pid='' perf_all=''
	if [[ -n $profile_dir ]] && command -v perf >/dev/null; then
		perf record -F 499 -g -o "$dir/perf.data" -p "${pid_of[sagad]}" \
			>"$dir/perf.log" 2>&1 &
		perf_pid=$!
		# And the whole machine, to see which process takes the CPU.
		perf record -F 99 -a -o "$dir/perf-all.data" \
			>"$dir/perf-all.log" 2>&1 &
		perf_all=$!
	fi

	say "$mode ($label): $n sagas at concurrency $c, $ninst sagad instance(s) (run $rep of $repeat)"
	local m_a m_b
	m_a=$(metrics_scrape)
	snapshot a
	# The syscalls of the run alone: counted from after the snapshot
	# and the scrape to before the next ones.
	local sc_pid='' sc_pids sc_part_pids=() p
	if ((syscalls)); then
		sc_pids=$(IFS=,; echo "${inst_pid[*]:1:inst_up}")
		perf stat -x, -e "$sc_events" -p "$sc_pids" -o "$dir/syscalls.csv" \
			>/dev/null 2>"$dir/syscalls.log" &
		sc_pid=$!
		# Each participant on its own: their round trips to PostgreSQL
		# are their sendto calls (libpq's).
		for p in "${procs[@]:1}"; do
			perf stat -x, -e "$sc_events" -p "${pid_of[$p]}" \
				-o "$dir/syscalls-$p.csv" \
				>/dev/null 2>"$dir/syscalls-$p.log" &
			sc_part_pids+=($!)
		done
		perf_pids=("$sc_pid" "${sc_part_pids[@]}")
		# perf prints nothing once attached; give it time to.
		sleep 0.3
	fi
	if ((statements_on)); then
		q postgres "SELECT pg_stat_statements_reset()" >/dev/null
	fi
	# In demo mode bob's orders compensate (payments refuses them);
	# saga_bench counts the sagas that end otherwise (a saga_bench
	# older than --expect-demo, as bench-compare.sh runs old builds
	# with this script, does not check it).
	local expect=()
	[[ $mode != demo ]] || ((!sb_expects)) || expect=(--expect-demo)
	"$bench_bin" "${coord_args[@]}" --sagas "$n" --concurrency "$c" \
		"${client_extra[@]}" "${expect[@]}" \
		--customers "$mix_customers" --skus "$mix_skus" \
		--seed $((seed + rep - 1)) --json "$dir/client.json" \
		--env "$dir/client.env" || sb_rc=$?
	if [[ -n $sc_pid ]]; then
		kill -INT "$sc_pid" "${sc_part_pids[@]}" 2>/dev/null || true
		wait "$sc_pid" "${sc_part_pids[@]}" 2>/dev/null || true
		perf_pids=()
	fi
	snapshot b
	m_b=$(metrics_scrape)
	if ((statements_on)); then
		statements_read "$dir"
	fi

	if [[ -n $perf_pid ]]; then
		kill -INT "$perf_pid" "$perf_all" 2>/dev/null || true
		wait "$perf_pid" 2>/dev/null || true
		wait "$perf_all" 2>/dev/null || true
		perf report -i "$dir/perf-all.data" --stdio --sort comm,dso \
			2>/dev/null | grep -v '^#' | grep . | head -n 40 \
			>"$profile_dir/$mode-$label-c$c-r$rep-machine.txt" || true
		perf report -i "$dir/perf-all.data" --stdio --comm postgres \
			--sort sym 2>/dev/null | grep -v '^#' | grep . | head -n 60 \
			>"$profile_dir/$mode-$label-c$c-r$rep-postgres.txt" || true
		perf report -i "$dir/perf.data" --stdio --no-children \
			--percent-limit 0.5 2>/dev/null | head -n 400 \
			>"$profile_dir/$mode-$label-c$c-r$rep-sagad.txt" || true
		perf report -i "$dir/perf.data" --stdio --no-children --sort dso \
			2>/dev/null | grep -v '^#' | grep . | head -n 20 \
			>"$profile_dir/$mode-$label-c$c-r$rep-sagad-dso.txt" || true
	fi
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	# The peak of the largest instance.
	local hwm=0 h k
	for ((k = 1; k <= inst_up; k++)); do
		h=$(status_kib "${inst_pid[k]}" VmHWM)
		((h <= hwm)) || hwm=$h
	done
	stats_settle
	db_b=$(db_stats)
	rows_b=$(row_stats)
	[[ -f $dir/client.env ]] || die "saga_bench wrote no result"
	# shellcheck disable=SC1091
	source "$dir/client.env"
	((sb_done > 0)) || die "no saga finished (see $dir)"
	# A run with client errors (a START or WAIT that failed or timed
	# out): its time includes the waits, its latencies leave the failed
	# sagas out. Its figures are written, marked, and bench.sh exits 3.
	if ((sb_rc != 0 || sb_errors > 0)); then
		say "warning: saga_bench exited $sb_rc with $sb_errors client error(s) (see $dir): this run's figures are not comparable"
		runs_with_errors=$((runs_with_errors + 1))
	fi
	# Requests sagad refused (EOVERLOAD, EUNAVAIL) and saga_bench sent
	# again after 20 ms: meanwhile fewer than C sagas ran, and the
	# latencies hold the pauses. Sagas that did not end as the workload
	# makes them (FAILED or RESOLVED; COMPLETED or COMPENSATED otherwise
	# than their input makes them: in demo mode bob's orders compensate
	# and the others complete, in noop mode every saga completes):
	# another workload's figures.
	local odd=""
	# shellcheck disable=SC2154 # set by saga_bench's assignments
	((${sb_refused:-0} == 0)) ||
		odd+="${odd:+; }$sb_refused request(s) refused by sagad and sent again"
	# shellcheck disable=SC2154
	((sb_failed == 0)) || odd+="${odd:+; }$sb_failed saga(s) FAILED or RESOLVED"
	# shellcheck disable=SC2154
	((${sb_unexpected:-0} == 0)) ||
		odd+="${odd:+; }$sb_unexpected saga(s) ended otherwise than their input makes them"
	if [[ -n $odd ]]; then
		say "warning: $odd (see $dir): this run's figures are not comparable"
		runs_with_errors=$((runs_with_errors + 1))
	fi

	# Step transitions: committed outcomes of step attempts (actions
	# and compensations) of this run's sagas.
	local ev steps events_json="" xact_json="" cpu_json="" util_json=""
	ev=$(q "$coord_db" "SELECT event, count(*) FROM saga_event
		WHERE at >= to_timestamp($sb_t0_unix - 0.005)
		AND at <= to_timestamp($sb_t1_unix + 0.005) GROUP BY event ORDER BY event")
	steps=$(awk -F'|' '$1 ~ /^step_(ok|failed|retry|gave_up)$/ { s += $2 } END { print s + 0 }' <<<"$ev")
	local e cnt
	while IFS='|' read -r e cnt; do
		[[ -n $e ]] || continue
		events_json+="${events_json:+, }\"$e\": $(calc "$cnt / $sb_done" 3)"
	done <<<"$ev"
	# Which instance started this run's sagas (the writer of their first
	# event): how saga_bench spread the load.
	local by_inst_json="" wr
	while IFS='|' read -r wr cnt; do
		[[ -n $wr ]] || continue
		by_inst_json+="${by_inst_json:+, }$(json_str "$wr"): $cnt"
	done < <(q "$coord_db" "SELECT coalesce(writer, '?'), count(*) FROM saga_event
		WHERE seq = 1 AND at >= to_timestamp($sb_t0_unix - 0.005)
		GROUP BY 1 ORDER BY 1")
	((ninst == 1)) || say "  sagas started by instance: $(sed 's/"//g' <<<"$by_inst_json")"

	# Transactions per database, write transactions, WAL.
	local commits=0 rollbacks=0 d c1 r1 c0 r0
	while IFS='|' read -r d c1 r1; do
		[[ -n $d ]] || continue
		c0=$(awk -F'|' -v d="$d" '$1 == d { print $2 }' <<<"$db_a")
		r0=$(awk -F'|' -v d="$d" '$1 == d { print $3 }' <<<"$db_a")
		commits=$((commits + c1 - c0))
		rollbacks=$((rollbacks + r1 - r0))
		xact_json+="${xact_json:+, }\"$d\": $(calc "($c1 - $c0) / $sb_done" 3)"
	done <<<"$db_b"
	local wal xids upd hot upd0 hot0
	wal=$(q postgres "SELECT pg_wal_lsn_diff('${b[wal]}', '${a[wal]}')")
	read -r upd hot <<<"$rows_b"
	read -r upd0 hot0 <<<"$rows_a"
	upd=$((upd - upd0))
	hot=$((hot - hot0))
	xids=$((b[xid] - a[xid]))

	# CPU.
	local p dt total_cpu=0 busy
	for p in "${procs[@]}" postgres; do
		dt=$(calc "(${b[cpu_$p]} - ${a[cpu_$p]}) / $clk_tck" 3)
		total_cpu=$(calc "$total_cpu + $dt" 3)
		cpu_json+="${cpu_json:+, }\"$p\": $(calc "$dt / $sb_done * 1000" 4)"
		util_json+="${util_json:+, }\"$p\": $(calc "$dt / $sb_wall_s" 3)"
	done
	total_cpu=$(calc "$total_cpu + $sb_client_cpu_s" 3)
	cpu_json+=", \"client\": $(calc "$sb_client_cpu_s / $sb_done * 1000" 4)"
	util_json+=", \"client\": $(calc "$sb_client_cpu_s / $sb_wall_s" 3)"
	busy=$(calc "(${b[busy]} - ${a[busy]}) / $clk_tck" 3)
	local pgdb_json
	pgdb_json=$(pg_db_json "${a[pgdb]}" "${b[pgdb]}")

	# --tsv: the run's key (its first five columns).
	local tk=$mode$'\t'$label$'\t'$c$'\t'$ninst$'\t'$rep
	local sc_json=null sc_part_json=null sc_one sc_line=
	if ((syscalls)) && ! grep -q '^[0-9]' "$dir/syscalls.csv" 2>/dev/null; then
		say "warning: perf stat counted nothing (see $dir/syscalls.log)"
	elif ((syscalls)); then
		sc_json=$(syscalls_json "$dir/syscalls.csv" "$sb_done")
		tsv_flat "$tk" syscalls.sagad "$sc_json"
		say "  sagad system calls per saga: $(sed 's/[{}"]//g' <<<"$sc_json")"
		sc_part_json=
		for p in "${procs[@]:1}"; do
			sc_one=null
			if grep -q '^[0-9]' "$dir/syscalls-$p.csv" 2>/dev/null; then
				sc_one=$(syscalls_json "$dir/syscalls-$p.csv" "$sb_done")
				tsv_flat "$tk" "syscalls.$p" "$sc_one"
				# The line shows three; the JSON has them all.
				sc_line+="${sc_line:+; }$p $(tr -d '{}"' <<<"$sc_one" |
					tr ',' '\n' | awk -F': ' '
					$1 ~ /^ ?(all|context-switches|sendto)$/ {
						sub(/^ /, "", $1)
						printf "%s%s %s", (k++ ? ", " : ""), $1, $2
					}')"
			fi
			sc_part_json+="${sc_part_json:+, }\"$p\": $sc_one"
		done
		sc_part_json="{$sc_part_json}"
		say "  participants' system calls per saga: $sc_line"
	fi

	local st_json=null
	if ((statements_on)); then
		statements_report "$dir" "$sb_done"
	fi

	local metrics_json=null batches
	if [[ -n $m_b ]]; then
		batches=$(metrics_delta "$m_a" "$m_b" saga_db_commit_seconds_count)
		local bsum rsum ssum scnt dsum dcnt msum mcnt wsum wcnt
		wsum=$(metrics_delta "$m_a" "$m_b" saga_engine_wait_seconds_sum)
		wcnt=$(metrics_delta "$m_a" "$m_b" saga_engine_wait_seconds_count)
		msum=$(metrics_delta "$m_a" "$m_b" saga_command_batch_size_sum)
		mcnt=$(metrics_delta "$m_a" "$m_b" saga_command_batch_size_count)
		bsum=$(metrics_delta "$m_a" "$m_b" saga_db_commit_seconds_sum)
		rsum=$(metrics_delta "$m_a" "$m_b" saga_db_batch_rows_sum)
		ssum=$(metrics_delta "$m_a" "$m_b" saga_step_duration_seconds_sum)
		scnt=$(metrics_delta "$m_a" "$m_b" saga_step_duration_seconds_count)
		dsum=$(metrics_delta "$m_a" "$m_b" saga_duration_seconds_sum)
		dcnt=$(metrics_delta "$m_a" "$m_b" saga_duration_seconds_count)
		metrics_json="{\"batches\": $(calc "$batches" 0), \"batches_per_saga\": $(calc "$batches / $sb_done" 3),
    \"commit_ms_mean\": $(calc "$batches > 0 ? $bsum / $batches * 1000 : 0" 3),
    \"commit_busy_fraction\": $(calc "$bsum / $sb_wall_s" 3),
    \"rows_per_batch\": $(calc "$batches > 0 ? $rsum / $batches : 0" 1),
    \"step_ms_mean\": $(calc "$scnt > 0 ? $ssum / $scnt * 1000 : 0" 3),
    \"saga_ms_mean\": $(calc "$dcnt > 0 ? $dsum / $dcnt * 1000 : 0" 3),
    \"command_messages_per_saga\": $(calc "$mcnt / $sb_done" 3),
    \"commands_per_message\": $(calc "$mcnt > 0 ? $msum / $mcnt : 0" 2),
    \"engine_wait_ms_mean\": $(calc "$wcnt > 0 ? $wsum / $wcnt * 1000 : 0" 3)}"
		say "  sagad: $(calc "$batches" 0) batches ($(calc "$batches / $sb_done" 2) per saga)," \
			"$(calc "$batches > 0 ? $rsum / $batches : 0" 1) rows each, commit $(calc "$batches > 0 ? $bsum / $batches * 1000 : 0" 2) ms on average" \
			"($(calc "$bsum / $sb_wall_s" 2) batches in flight on average);" \
			"command to outcome $(calc "$scnt > 0 ? $ssum / $scnt * 1000 : 0" 2) ms on average;" \
			"$(calc "$mcnt > 0 ? $msum / $mcnt : 0" 2) commands per message to participants ($(calc "$mcnt / $sb_done" 2) messages per saga);" \
			"events waited $(calc "$wcnt > 0 ? $wsum / $wcnt * 1000 : 0" 3) ms on average for the engine thread"
	fi

	local rss_max tps steps_s ratio sps
	rss_max=$(cat "$dir/rss_max")
	[[ $rss_max =~ ^[0-9]+$ ]] || rss_max=$rss_idle
	tps=${pgbench_tps[$mode:$c]:-0}
	steps_s=$(calc "$steps / $sb_wall_s" 1)
	ratio=$(calc "$tps > 0 ? $steps_s / $tps : 0" 3)
	sps=$sb_sagas_per_s

	key=$mode:$label:$c:i$ninst
	med_sps[$key]+=" $sps"
	med_p50[$key]+=" $sb_p50_ms"
	med_p99[$key]+=" $sb_p99_ms"
	med_tps[$key]+=" $steps_s"

	say "$mode ($label) C=$c, $ninst instance(s): $sps sagas/s, $steps_s step transitions/s = $ratio of pgbench's $tps tps;" \
		"latency p50 $sb_p50_ms p95 $sb_p95_ms p99 $sb_p99_ms max $sb_max_ms ms"
	say "  per saga: $(calc "$commits / $sb_done" 2) transactions," \
		"$(calc "$wal / $sb_done" 0) WAL bytes, $(calc "$upd / $sb_done" 2) updates of saga_instance" \
		"($(calc "$upd > 0 ? $hot / $upd * 100 : 0" 0)% HOT); CPU ms per saga: $(sed 's/"//g' <<<"$cpu_json");" \
		"machine busy $busy s of $(calc "$sb_wall_s * $(nproc)" 1) s ($(calc "$busy - $total_cpu" 2) s not accounted for)"
	say "  PostgreSQL CPU ms per saga by database: $(sed 's/"//g' <<<"$pgdb_json")"
	tsv_put "$tk" sagas_per_s "$sps"
	tsv_put "$tk" client_errors "$sb_errors"
	tsv_put "$tk" client_refused "${sb_refused:-0}"
	tsv_put "$tk" sagas_failed "$sb_failed"
	tsv_put "$tk" step_transitions_per_s "$steps_s"
	tsv_put "$tk" ratio_to_pgbench "$ratio"
	tsv_put "$tk" p50_ms "$sb_p50_ms"
	tsv_put "$tk" p95_ms "$sb_p95_ms"
	tsv_put "$tk" p99_ms "$sb_p99_ms"
	tsv_put "$tk" max_ms "$sb_max_ms"
	# shellcheck disable=SC2154 # set by saga_bench's assignments
	tsv_put "$tk" mean_ms "$sb_mean_ms"
	# shellcheck disable=SC2154
	tsv_put "$tk" start_p50_ms "$sb_start_p50_ms"
	tsv_put "$tk" step_transitions_per_saga "$(calc "$steps / $sb_done" 3)"
	tsv_put "$tk" transactions_per_saga "$(calc "$commits / $sb_done" 3)"
	tsv_flat "$tk" transactions_per_saga "$xact_json"
	tsv_put "$tk" rollbacks_per_saga "$(calc "$rollbacks / $sb_done" 3)"
	tsv_put "$tk" write_xids_per_saga "$(calc "$xids / $sb_done" 3)"
	tsv_put "$tk" wal_bytes_per_saga "$(calc "$wal / $sb_done" 0)"
	tsv_put "$tk" saga_instance_updates_per_saga "$(calc "$upd / $sb_done" 2)"
	tsv_put "$tk" saga_instance_hot_fraction \
		"$(calc "$upd > 0 ? $hot / $upd : 0" 3)"
	tsv_flat "$tk" events_per_saga "$events_json"
	[[ $metrics_json == null ]] || tsv_flat "$tk" sagad "$metrics_json"
	tsv_put "$tk" cpu_ms_per_saga "$(calc "$total_cpu / $sb_done * 1000" 4)"
	tsv_flat "$tk" cpu_ms "$cpu_json"
	tsv_flat "$tk" postgres_cpu_ms "$pgdb_json"
	tsv_put "$tk" sagad_hwm_mib "$(calc "$hwm / 1024" 1)"
	summary+=("$(printf '%-5s %-14s %4s %4s %7s %3s %9s %10s %6s %8s %8s %8s %9s %7s %8s %9s %7s' \
		"$mode" "$label" "$c" "$ninst" "$sb_done" "$rep" "$sps" "$steps_s" "$ratio" \
		"$sb_p50_ms" "$sb_p95_ms" "$sb_p99_ms" "$sb_max_ms" \
		"$(calc "$commits / $sb_done" 2)" "$(calc "$wal / $sb_done" 0)" \
		"$(calc "$total_cpu / $sb_done * 1000" 2)" "$(calc "$hwm / 1024" 1)")")

	run_json+=("$(cat <<EOF
{
  "mode": "$mode", "label": "$label", "concurrency": $c, "sagas": $n, "repeat": $rep,
  "sagad_instances": $ninst,
  "sagas_started_by_instance": {$by_inst_json},
  "prefilled_sagas": $prefilled, "warmup_sagas": $w,
  "pgbench_tps": $tps,
  "wall_s": $sb_wall_s, "done": $sb_done, "sagas_per_s": $sps,
  "outcomes": {"COMPLETED": $sb_completed, "COMPENSATED": $sb_compensated, "FAILED": $sb_failed, "unexpected": ${sb_unexpected:-0}, "errors": $sb_errors},
  "step_transitions": $steps,
  "step_transitions_per_saga": $(calc "$steps / $sb_done" 3),
  "step_transitions_per_s": $steps_s,
  "ratio_to_pgbench": $ratio,
  "latency_ms": {"p50": $sb_p50_ms, "p95": $sb_p95_ms, "p99": $sb_p99_ms, "max": $sb_max_ms, "mean": $sb_mean_ms},
  "start_latency_ms": {"p50": $sb_start_p50_ms, "p99": $sb_start_p99_ms},
  "db": {
    "xact_commit_per_saga": $(calc "$commits / $sb_done" 3),
    "xact_rollback_per_saga": $(calc "$rollbacks / $sb_done" 3),
    "xact_commit_per_saga_by_db": {$xact_json},
    "write_xids_per_saga": $(calc "$xids / $sb_done" 3),
    "wal_bytes_per_saga": $(calc "$wal / $sb_done" 0),
    "wal_bytes": $wal,
    "saga_instance_updates_per_saga": $(calc "$upd / $sb_done" 2),
    "saga_instance_hot_fraction": $(calc "$upd > 0 ? $hot / $upd : 0" 3),
    "events_per_saga": {$events_json}
  },
  "sagad_metrics": $metrics_json,
  "cpu_ms_per_saga": {$cpu_json},
  "postgres_cpu_ms_per_saga_by_database": {$pgdb_json},
  "sagad_syscalls_per_saga": $sc_json,
  "participants_syscalls_per_saga": $sc_part_json,
  "pg_statements_per_saga": $st_json,
  "cpu_cores_used": {$util_json},
  "cpu_s_total_measured": $total_cpu,
  "machine_busy_cpu_s": $busy,
  "background_cpu_cores_before": $bg,
  "sagad_memory_kib": {"note": "idle and sampled RSS: the first instance; peak_hwm: the largest instance's", "idle_rss": $rss_idle, "max_rss_sampled": $rss_max, "peak_hwm": $hwm,
    "rough_bytes_per_in_flight_saga": $(calc "($rss_max - $rss_idle) * 1024 / $c" 0)},
  "client": $(cat "$dir/client.json")
}
EOF
)")
}

# ---------------------------------------------------------------------
# Prefill: N finished sagas in the log of DB, copied from its own finished
# sagas (9 completed for 1 compensated), ids that sort before every real
# one; then VACUUM ANALYZE and a checkpoint, as a log that grew over time
# would have had.

prefill_log() { # prefill_log DB N
	local coord_db=$1 n=$2 done_id comp_id icols ecols icols_t ecols_t from=1 chunk=100000 t0=$SECONDS
	done_id=$(q "$coord_db" "SELECT id FROM saga_instance WHERE state = 'COMPLETED' ORDER BY created_at DESC LIMIT 1")
	comp_id=$(q "$coord_db" "SELECT id FROM saga_instance WHERE state = 'COMPENSATED' ORDER BY created_at DESC LIMIT 1")
	[[ -n $done_id ]] || die "prefill: no finished saga to copy"
	[[ -n $comp_id ]] || comp_id=$done_id
	icols=$(q "$coord_db" "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
		FROM information_schema.columns WHERE table_name = 'saga_instance' AND column_name <> 'id'")
	ecols=$(q "$coord_db" "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
		FROM information_schema.columns WHERE table_name = 'saga_event' AND column_name <> 'saga_id'")
	icols_t=$(tr -d ' ' <<<"$icols" | awk -F, '{ for (i = 1; i <= NF; i++) printf "%st.%s", (i > 1 ? ", " : ""), $i }')
	ecols_t=$(tr -d ' ' <<<"$ecols" | awk -F, '{ for (i = 1; i <= NF; i++) printf "%st.%s", (i > 1 ? ", " : ""), $i }')
	local idexpr="('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid"
	local pick="CASE WHEN g % 10 = 0 THEN '$comp_id'::uuid ELSE '$done_id'::uuid END"
	say "prefill: inserting $n finished sagas into the log (copies of $done_id and $comp_id)"
	while ((from <= n)); do
		local to=$((from + chunk - 1))
		((to <= n)) || to=$n
		q "$coord_db" "BEGIN;
			INSERT INTO saga_instance (id, $icols)
			SELECT $idexpr, $icols_t FROM generate_series($from, $to) g
			JOIN saga_instance t ON t.id = $pick;
			INSERT INTO saga_event (saga_id, $ecols)
			SELECT $idexpr, $ecols_t FROM generate_series($from, $to) g
			JOIN saga_event t ON t.saga_id = $pick;
			COMMIT;" >/dev/null
		printf '\r%s: prefill: %d/%d sagas (%d s)' "$prog" "$to" "$n" $((SECONDS - t0)) >&2
		from=$((to + 1))
	done
	echo >&2
	q "$coord_db" "VACUUM (ANALYZE) saga_instance" >/dev/null
	q "$coord_db" "VACUUM (ANALYZE) saga_event" >/dev/null
	q postgres "CHECKPOINT" >/dev/null
	prefill_s=$((SECONDS - t0))
	say "prefill: done in $prefill_s s; log: $(q "$coord_db" "SELECT count(*) FROM saga_instance") sagas," \
		"$(q "$coord_db" "SELECT count(*) FROM saga_event") events," \
		"$(q "$coord_db" "SELECT pg_size_pretty(pg_database_size('$coord_db'))")"
}

# ---------------------------------------------------------------------
# Memory probe: sagad's resident memory with K sagas in flight, at two
# values of K. For each: a fresh sagad (default settings, the bulkhead
# of 256 commands per participant) on an empty log, a fresh
# noop_participant that holds back the answer to the first step for
# $probe_delay_ms ms, K STARTs (no client waits: only the sagas
# themselves are in sagad), VmRSS once every START is answered minus
# VmRSS idle. Per saga: the slope between the two points, which cancels
# what does not grow with K. Then both processes are stopped and the
# log emptied (the probe comes after every measured run of the mode).

probe_json=
memory_probe() {
	local k pts=() rss0 rss1 inflight
	say "memory probe: sagad's resident memory with $probe_points sagas in flight"
	sagad_stop_all
	ninst=1
	stop_pid "$noop_part_pid"
	noop_config "$state/noop/probe.yaml" 600s 256
	sagad_cfg=$state/noop/probe.yaml
	local maxk=0
	for k in $probe_points; do
		((k <= maxk)) || maxk=$k
	done
	for k in $probe_points; do
		q "$coord_db" "TRUNCATE saga_instance, saga_event, saga_start_key" >/dev/null
		noop_start_part --contexts 512 --delay-ms "$probe_delay_ms" \
			--delay-action order.create
		sagad_start saga_coordinator --max-active-sagas $((maxk * 2 + 1000))
		sleep 1
		rss0=$(status_kib "${pid_of[sagad]}" VmRSS)
		"$bench_bin" --coordinator "$coord_url" --sagas "$k" --concurrency 64 \
			--start-only --quiet --seed "$seed" >"$state/noop/probe-$k.log" 2>&1 ||
			{ cat "$state/noop/probe-$k.log" >&2; die "probe: saga_bench failed"; }
		rss1=$(status_kib "${pid_of[sagad]}" VmRSS)
		inflight=$(q "$coord_db" "SELECT count(*) FROM saga_instance
			WHERE state IN ('RUNNING', 'COMPENSATING')")
		say "memory probe: $inflight sagas in flight: sagad VmRSS $rss1 KiB (idle $rss0 KiB)"
		pts+=("$inflight $rss0 $rss1")
		sagad_stop_all
		stop_pid "$noop_part_pid"
	done
	q "$coord_db" "TRUNCATE saga_instance, saga_event, saga_start_key" >/dev/null
	local k1 a1 b1 k2 a2 b2 slope per1 per2
	read -r k1 a1 b1 <<<"${pts[0]}"
	read -r k2 a2 b2 <<<"${pts[${#pts[@]} - 1]}"
	per1=$(calc "$k1 > 0 ? ($b1 - $a1) * 1024 / $k1 : 0" 0)
	per2=$(calc "$k2 > 0 ? ($b2 - $a2) * 1024 / $k2 : 0" 0)
	slope=$(calc "$k2 != $k1 ? (($b2 - $a2) - ($b1 - $a1)) * 1024 / ($k2 - $k1) : $per2" 0)
	say "memory probe: $slope bytes per saga in flight (slope); $per1 and $per2 bytes (growth / K)"
	probe_mem=$slope
	probe_json=$(cat <<EOF
{"method": "fresh sagad (default settings) per point on an empty log; START only, no client waiting; the answer to step 0 held back $probe_delay_ms ms by noop_participant; VmRSS after every START was answered minus VmRSS idle; per saga = slope between the two points",
   "points": [{"in_flight": $k1, "idle_rss_kib": $a1, "rss_kib": $b1, "bytes_per_saga": $per1},
              {"in_flight": $k2, "idle_rss_kib": $a2, "rss_kib": $b2, "bytes_per_saga": $per2}],
   "bytes_per_in_flight_saga": $slope}
EOF
)
}

# ---------------------------------------------------------------------
# Main.

t_start=$SECONDS
started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
machine=$(machine_json)
prefill_s=0
probe_mem=
say "state in $state; modes: $modes; runs (C N): ${runs[*]}; prefill $prefill"

# run_all MODE: every run of the mode. With --prefill, each repetition
# runs on the empty log and then on the prefilled one (sagad restarted on
# the other database in between), so that a machine whose load drifts
# affects both alike.
run_all() {
	local r c n k
	for r in "${runs[@]}"; do
		read -r c n <<<"$r"
		[[ -n ${pgbench_tps[$1:$c]:-} ]] || run_pgbench "$1" "$c"
		for rep in $(seq 1 "$repeat"); do
			for k in "${inst_list[@]}"; do
				if ((prefill > 0)); then
					ninst=$k
					sagad_start saga_coordinator
				else
					instances_set "$k"
				fi
				measure "$1" "empty log" "$c" "$n" "$rep" 0
				if ((prefill > 0)); then
					sagad_start saga_coordinator_prefilled
					measure "$1" "prefilled" "$c" "$n" "$rep" "$prefill"
				fi
			done
		done
	done
}

# prefill_db MODE: the database saga_coordinator_prefilled, a copy of the
# coordinator's (schema, definitions and a few finished sagas to copy)
# with --prefill finished sagas added.
prefill_db() {
	say "prefill: a few sagas to copy, then a copy of the coordinator's database"
	[[ $1 != demo ]] || demo_topup 200
	"$bench_bin" --coordinator "$coord_url" --sagas 200 --concurrency 8 \
		--customers "$mix_customers" --skus "$mix_skus" --quiet \
		>"$state/prefill-seed.log" 2>&1 ||
		{ cat "$state/prefill-seed.log" >&2; die "prefill: seeding failed"; }
	sagad_stop_all
	q postgres "CREATE DATABASE saga_coordinator_prefilled TEMPLATE saga_coordinator" >/dev/null
	prefill_log saga_coordinator_prefilled "$prefill"
	sagad_start saga_coordinator
}

for mode in $modes; do
	if [[ $mode == demo ]]; then
		demo_start
	else
		noop_start
	fi
	((prefill == 0)) || prefill_db "$mode"
	run_all "$mode"
	if [[ $mode == noop ]] && ((memprobe)); then
		memory_probe
	fi
	if [[ $mode == demo ]]; then
		((keep)) || demo_stop
	else
		((keep)) || noop_stop
	fi
done

# ---------------------------------------------------------------------
# Report.

{
	echo
	echo "== saga benchmark: $started_at, $(nproc) cores, commit $(bench_commit)"
	for k in "${!pgbench_tps[@]}"; do
		echo "pgbench limit ($k clients): ${pgbench_tps[$k]} tps"
	done | sort
	printf '%-5s %-14s %4s %4s %7s %3s %9s %10s %6s %8s %8s %8s %9s %7s %8s %9s %7s\n' \
		mode log C inst N rep sagas/s steps/s ratio p50_ms p95_ms p99_ms max_ms xact/sg WAL_B/sg cpu_ms/sg hwm_MiB
	printf '%s\n' "${summary[@]}"
	if ((repeat > 1)); then
		echo "medians of $repeat runs:"
		for k in "${!med_sps[@]}"; do
			# shellcheck disable=SC2086
			printf '  %-28s %9s sagas/s %10s steps/s  p50 %8s  p99 %8s ms\n' "$k" \
				"$(median ${med_sps[$k]})" "$(median ${med_tps[$k]})" \
				"$(median ${med_p50[$k]})" "$(median ${med_p99[$k]})"
		done | sort
	fi
	if ((prefill > 0)); then
		echo "log growth ($prefill sagas prefilled in $prefill_s s), sagas/s prefilled / empty:"
		for k in "${!med_sps[@]}"; do
			[[ $k == *":empty log:"* ]] || continue
			kp=${k/:empty log:/:prefilled:}
			[[ -n ${med_sps[$kp]:-} ]] || continue
			# shellcheck disable=SC2086
			printf '  %-20s %s\n' "${k/:empty log:/ C=}" \
				"$(calc "$(median ${med_sps[$kp]}) / $(median ${med_sps[$k]})" 3)"
		done | sort
	fi
	if ((${#inst_list[@]} > 1)); then
		echo "several sagad instances: median sagas/s (ratio to ${inst_list[0]} instance(s))"
		for k in "${!med_sps[@]}"; do
			[[ $k == *":i${inst_list[0]}" ]] || continue
			line="  ${k%:i*}:"
			# shellcheck disable=SC2086
			b=$(median ${med_sps[$k]})
			for i in "${inst_list[@]}"; do
				ki=${k%:i*}:i$i
				[[ -n ${med_sps[$ki]:-} ]] || continue
				# shellcheck disable=SC2086
				m=$(median ${med_sps[$ki]})
				line+="  $i: $m ($(calc "$b > 0 ? $m / $b : 0" 2))"
			done
			echo "$line"
		done | sort
	fi
	if [[ -n $probe_mem ]]; then
		echo "sagad memory per saga in flight (noop probe): $probe_mem bytes"
	fi
	echo "total time: $((SECONDS - t_start)) s"
}

if [[ -n $json ]]; then
	{
		echo "{"
		echo "  \"tool\": \"scripts/bench.sh\", \"schema\": 1,"
		echo "  \"started_at\": \"$started_at\","
		echo "  \"command\": $(json_str "$command_line"),"
		echo "  \"machine\": $machine,"
		echo "  \"options\": {\"modes\": $(json_str "$modes"), \"runs\": $(json_str "${runs[*]}"), \"repeat\": $repeat, \"instances\": $(json_str "$inst_arg"), \"prefill\": $prefill, \"pgbench_seconds\": $pgbench_s, \"customers\": $spread, \"seed\": $seed, \"quick\": $quick, \"start_wait\": $( ((${#client_extra[@]} > 0)) && echo true || echo false), \"syscalls\": $( ((syscalls)) && echo true || echo false), \"statements\": $( ((statements)) && echo true || echo false)},"
		echo "  \"definitions\": {\"step_transition\": \"a saga_event row step_ok, step_failed, step_retry or step_gave_up: one committed outcome of one attempt of a step's action or compensation\", \"pgbench_script\": \"UPDATE pgbench_accounts (100000 rows) by aid + INSERT of a 100-byte row, one transaction, -M prepared\"},"
		echo "  \"pgbench\": [$(IFS=,; echo "${pgbench_json[*]}")],"
		echo "  \"runs\": ["
		for i in "${!run_json[@]}"; do
			((i == 0)) || echo ","
			printf '%s' "${run_json[$i]}"
		done
		echo
		echo "  ],"
		echo "  \"prefill_seconds\": $prefill_s,"
		echo "  \"memory_probe\": ${probe_json:-null},"
		echo "  \"total_s\": $((SECONDS - t_start))"
		echo "}"
	} >"$json"
	say "JSON written to $json"
fi
if [[ -n $tsv ]]; then
	{
		printf 'mode\tlog\tconcurrency\tinstances\trepeat\tfigure\tvalue\n'
		printf '%s\n' "${tsv_rows[@]}"
	} >"$tsv"
	say "TSV written to $tsv"
fi
if ((runs_with_errors > 0)); then
	say "$runs_with_errors run(s) had client errors, refusals or sagas that did not end as expected (see the warnings above): exit 3"
	exit 3
fi
