#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# chaos.sh: process-level chaos on the demo cluster (docs/RELIABILITY.md,
# "Process-level chaos").
#
# Starts its own demo cluster (scripts/cluster.sh: PostgreSQL, sagad, the
# orders, inventory, payments and shipping services) with a fault-injecting
# proxy (tests/tools/chaos_proxy.c) between sagad and each service, tops up
# the stock and the accounts for the load, and records them as the
# baseline. Then, while a steady load of create_order sagas runs
# (tests/tools/chaos_load.c; a share designed to fail: bob cannot pay,
# gadgets are scarce), a seeded schedule kill -9s sagad, the services and
# the proxies at random instants and restarts them, and restarts
# PostgreSQL; the proxies drop, duplicate and delay messages all along.
# When the load has been started, the faults stop, the system settles
# (every saga terminal, within --settle seconds) and the checker
# (tests/tools/chaos_check.sh) verifies the invariants over the five
# databases. The last line is the summary; exit status 0 only if the run
# went through and the checker found no violation.
#
#   scripts/chaos.sh [--sagas N] [--duration S] [--seed S] [--kills N] ...
#
# scripts/chaos.sh --help lists the options. Each process's kill times
# form their own lane, so lanes overlap: sagad may be down while a service
# is and while the database restarts. With --terms P, a share P of the
# stops of sagad and the services is a SIGTERM instead: the process must
# exit within 30 s (a graceful stop that hangs fails the run).

set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SAGA_BUILD_DIR:-$repo/build}
dir=
sagas=3000
duration=180
seed=1
kills=10
pkills=12
xkills=2
pg_restarts=1
instances=1
pg_mode=immediate
terms=0
term_wait_s=${SAGA_CHAOS_TERM_WAIT_S:-30}
drop=0.05
dup=0.05
delay=0.05
delay_max=2500
poor=0.1
scarce=0.1
concurrency=32
attempts=3
settle=300
base=
keep=0
do_build=1

usage() {
	cat <<EOF
usage: $prog [options]

Process-level chaos on its own demo cluster: a steady load of create_order
sagas while a seeded schedule kill -9s and restarts sagad, the services and
the fault-injecting proxies, and restarts PostgreSQL; then the system
settles and the checker verifies every invariant over the databases.

  --sagas N            sagas to start (default $sagas)
  --duration S         seconds over which they are started, at a steady
                       rate; the kills happen in this window (default
                       $duration)
  --seed S             seeds the schedule, the orders and the proxies
                       (default $seed)
  --instances N        sagad instances sharing the database, 1..6
                       (default $instances); the load spreads its starts
                       over them; the kills go round them
  --kills N            kill -9 of sagad (default $kills)
  --participant-kills N
                       kill -9 of a service, round the four from a
                       random one: with 4 or more, each is killed
                       (default $pkills)
  --proxy-kills N      kill -9 of a proxy (default $xkills)
  --terms P            share of the stops of sagad and the services that
                       are a SIGTERM instead of a kill -9 (default
                       $terms): the process must exit within
                       $term_wait_s s (SAGA_CHAOS_TERM_WAIT_S), or the
                       run fails
  --pg-restarts N      PostgreSQL restarts (default $pg_restarts)
  --pg-mode MODE       immediate (a crash: pg_ctl stop -m immediate) or
                       fast (default $pg_mode)
  --drop P             share of messages the proxies drop (default $drop)
  --dup P              share they send twice (default $dup)
  --delay P            share they hold back (default $delay)
  --delay-max MS       for up to MS milliseconds (default $delay_max)
  --poor P             share of orders bob cannot pay (default $poor)
  --scarce P           share of orders for scarce gadgets (default $scarce)
  --concurrency N      starts in flight at once (default $concurrency)
  --attempts N         attempts of a step before the pivot before the saga
                       gives up and compensates (the demo's 5 by default
                       here $attempts, so that lost replies make sagas
                       compensate steps that did take effect)
  --settle S           time limit for every saga to end once the load has
                       been started (default $settle)
  --port-base N        sagad on N, services on N+1..N+4, proxies on
                       N+11..N+14, more instances on N+5..N+9, the
                       services' metrics on N+16..N+19 (default: a free
                       range)
  --dir DIR            state: cluster, logs, proxy counts, load, schedule
                       (default BUILD/chaos)
  --no-build           use the build as it is (SAGA_BUILD_DIR, default
                       build/)
  --keep               leave the cluster and the proxies (faults off)
                       running afterwards; end them with
                       SAGA_CLUSTER_DIR=DIR/cluster scripts/cluster.sh stop
                       and kill \$(cat DIR/pids/proxy-*.pid
                       DIR/pids/sagad-*.pid)
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

while (($# > 0)); do
	opt=$1
	case $opt in
	--keep) keep=1 ;;
	--no-build) do_build=0 ;;
	-h | --help)
		usage
		exit 0
		;;
	--sagas | --duration | --seed | --kills | --participant-kills | --instances | \
	--proxy-kills | --pg-restarts | --pg-mode | --terms | --drop | --dup | \
	--delay | --delay-max | --poor | --scarce | --concurrency | \
	--attempts | --settle | --port-base | --dir)
		(($# >= 2)) || die "$opt needs a value"
		val=$2
		shift
		case $opt in
		--sagas) sagas=$val ;;
		--duration) duration=$val ;;
		--seed) seed=$val ;;
		--kills) kills=$val ;;
		--instances) instances=$val ;;
		--participant-kills) pkills=$val ;;
		--proxy-kills) xkills=$val ;;
		--pg-restarts) pg_restarts=$val ;;
		--pg-mode) pg_mode=$val ;;
		--terms) terms=$val ;;
		--drop) drop=$val ;;
		--dup) dup=$val ;;
		--delay) delay=$val ;;
		--delay-max) delay_max=$val ;;
		--poor) poor=$val ;;
		--scarce) scarce=$val ;;
		--concurrency) concurrency=$val ;;
		--attempts) attempts=$val ;;
		--settle) settle=$val ;;
		--port-base) base=$val ;;
		--dir) dir=$val ;;
		esac
		;;
	*)
		echo "$prog: unknown option '$opt'" >&2
		usage >&2
		exit 2
		;;
	esac
	shift
done
for v in sagas duration seed kills pkills xkills pg_restarts delay_max term_wait_s \
    concurrency attempts settle instances; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "--${v//_/-}: expected a whole number, not '${!v}'"
done
((sagas > 0)) || die "--sagas must be at least 1"
((duration > 0)) || die "--duration must be at least 1"
((attempts > 0)) || die "--attempts must be at least 1"
((instances >= 1 && instances <= 6)) || die "--instances: 1 to 6, not $instances"
[[ $pg_mode == immediate || $pg_mode == fast ]] ||
    die "--pg-mode: immediate or fast, not '$pg_mode'"
awk -v p="$terms" 'BEGIN { exit !(p ~ /^[0-9.]+$/ && p >= 0 && p <= 1) }' ||
    die "--terms: a share from 0 to 1, not '$terms'"
term_permille=$(awk -v p="$terms" 'BEGIN { printf "%d", p * 1000 + 0.5 }')
dir=${dir:-$build/chaos}

services=(orders inventory payments shipping)

if ((do_build)); then
	[[ -f $build/CMakeCache.txt ]] || cmake -S "$repo" -B "$build" >/dev/null
	cmake --build "$build" -j2 >/dev/null
fi
proxy_bin=$build/tests/chaos_proxy
load_bin=$build/tests/chaos_load
for b in "$build/coordinator/sagad" "$build/coordinator/sagactl" \
    "$proxy_bin" "$load_bin"; do
	[[ -x $b ]] || die "$b is missing: build first (cmake --build $build)"
done

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
if [[ -z $base ]]; then
	saga_ports_reserve base 20 || die "found no free range of ports"
fi
# cluster.sh moves tcp://127.0.0.1:7101..7104 to the services' ports: a
# proxy there would be bypassed.
for off in 11 12 13 14; do
	case $((base + off)) in
	7101 | 7102 | 7103 | 7104) die "--port-base $base puts a proxy on $((base + off)); choose another" ;;
	esac
done

cdir=$dir/cluster
export SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$cdir SAGA_PORT_BASE=$base
export SAGA_CLUSTER_CONFIG=$dir/create_order.yaml
# The services serve their metrics (cluster.sh), read during the load.
export SAGA_SERVICE_METRICS_BASE=$((base + 16))
cluster() {
	"$repo/scripts/cluster.sh" "$@"
}

svc_index() {
	case $1 in
	orders) echo 1 ;;
	inventory) echo 2 ;;
	payments) echo 3 ;;
	shipping) echo 4 ;;
	esac
}
svc_url() { echo "tcp://127.0.0.1:$((base + $(svc_index "$1")))"; }
metrics_url() { echo "http://127.0.0.1:$((base + 15 + $(svc_index "$1")))/metrics"; }
proxy_url() { echo "tcp://127.0.0.1:$((base + 10 + $(svc_index "$1")))"; }
sagad_url=tcp://127.0.0.1:$base
# The instances beyond the first (cluster.sh's sagad): sagad-2 ... on
# N+5 ..., each with a fixed --instance-id, so that a restarted one takes
# its sagas back at once (cluster.sh's own sagad gets a new id, host:pid,
# at each start: the others take its sagas over when its lease expires).
extra=()
for ((k = 2; k <= instances; k++)); do
	extra+=("sagad-$k")
done
instance_url() { echo "tcp://127.0.0.1:$((base + 3 + ${1#sagad-}))"; }

t0=$(date +%s%N)
elapsed() {
	local now
	now=$(date +%s%N)
	printf '%d.%03d' $(((now - t0) / 1000000000)) $(((now - t0) / 1000000 % 1000))
}
log() {
	echo "[$(elapsed)] $*" | tee -a "$dir/schedule.log"
}
say() {
	echo "$prog: [$(elapsed)] $*"
}

# ---- set-up ------------------------------------------------------------

# ours PID WORD: PID runs a command line holding WORD. A pid file's number
# may belong to another process once ours has ended (pid_max is 32768 on
# the CI machines): never signal it without this check.
ours() {
	[[ -r /proc/$1/cmdline ]] &&
	    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# stop_ours PID WORD: SIGTERM to PID if it is ours (see ours), and SIGKILL
# if it still runs 5 s later.
stop_ours() {
	ours "$1" "$2" || return 0
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 1 50); do
		ours "$1" "$2" || return 0
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
}

# A previous run's cluster, if it was kept: its proxies and its extra
# sagad instances too (--instances), whose pid files the rm below
# deletes: they ran on for good, and one answering on its old port was
# taken for a new instance that could not listen there.
if [[ -d $cdir ]]; then
	cluster stop >/dev/null 2>&1 || true
	for f in "$dir"/pids/proxy-*.pid; do
		if [[ -f $f ]] && ours "$(cat "$f")" "$dir/stats/"; then
			kill -KILL "$(cat "$f")" 2>/dev/null || true
		fi
	done
	for f in "$dir"/pids/sagad-*.pid; do
		if [[ -f $f ]]; then
			n=${f##*/}
			stop_ours "$(cat "$f")" "--instance-id chaos-${n%.pid} "
		fi
	done
fi
# Only a directory of ours is emptied.
if [[ -d $dir && -n $(ls -A "$dir") && ! -f $dir/schedule.log ]]; then
	die "--dir $dir: not empty and not a chaos.sh state directory"
fi
rm -rf "$dir"
mkdir -p "$dir/logs" "$dir/pids" "$dir/stats" "$cdir"
: >"$dir/schedule.log"

# The demo's saga definition, its endpoints pointed at the proxies and
# --attempts attempts for the steps before the pivot (the pivot and the
# steps after it are retried without a limit).
sed -e "s|^\(  retry: {max_attempts: \)5,|\1$attempts,|" \
    -e "s|tcp://127.0.0.1:7101|$(proxy_url orders)|" \
    -e "s|tcp://127.0.0.1:7102|$(proxy_url inventory)|" \
    -e "s|tcp://127.0.0.1:7103|$(proxy_url payments)|" \
    -e "s|tcp://127.0.0.1:7104|$(proxy_url shipping)|" \
    "$repo/participants/examples/create_order.yaml" >"$dir/create_order.yaml"
for s in "${services[@]}"; do
	grep -q "$(proxy_url "$s")" "$dir/create_order.yaml" ||
	    die "the generated configuration does not point $s at its proxy"
done
grep -q "^  retry: {max_attempts: $attempts," "$dir/create_order.yaml" ||
    die "the generated configuration does not set --attempts"

# proxy_start NAME GEN: starts the proxy of service NAME, its GEN-th
# incarnation (its counts go to stats/NAME.GEN).
proxy_start() {
	local name=$1 gen=$2 i
	i=$(svc_index "$name")
	# From a subshell that exits at once, so that no shell reports the
	# proxy's death when the schedule kills it.
	(
		nohup "$proxy_bin" --listen "$(proxy_url "$name")" \
		    --forward "$(svc_url "$name")" \
		    --seed $((seed * 1000 + i * 100 + gen)) --drop "$drop" \
		    --dup "$dup" --delay "$delay" --delay-max "$delay_max" \
		    --stats "$dir/stats/$name.$gen" \
		    >>"$dir/logs/proxy-$name.log" 2>&1 </dev/null &
		echo $! >"$dir/pids/proxy-$name.pid"
	)
}

proxy_stop_all() {
	local f
	for f in "$dir"/pids/proxy-*.pid; do
		[[ -f $f ]] || continue
		stop_ours "$(cat "$f")" "$dir/stats/"
		rm -f "$f"
	done
}

# instance_start NAME: starts instance sagad-K and waits until it
# answers; fails if it exits first (it does while the database is away).
instance_start() {
	local name=$1 url pid
	url=$(instance_url "$name")
	(
		# shellcheck disable=SC2086 # SAGAD_ARGS: words on purpose
		nohup "$build/coordinator/sagad" --config "$dir/create_order.yaml" \
		    --listen "$url" --instance-id "chaos-$name" \
		    --db "host=$PGHOST port=$PGPORT user=$PGUSER dbname=saga_coordinator" \
		    ${SAGAD_ARGS:-} >>"$dir/logs/$name.log" 2>&1 </dev/null &
		echo $! >"$dir/pids/$name.pid"
	)
	pid=$(cat "$dir/pids/$name.pid")
	for _ in $(seq 1 100); do
		if "$build/coordinator/sagactl" ping --coordinator "$url" \
		    --timeout 200ms >/dev/null 2>&1; then
			# Ours, not a process left on that port (ss shows the
			# listener's process), as cluster.sh checks.
			ss -Htlnp "sport = :${url##*:}" 2>/dev/null |
			    grep -q "pid=$pid," && return 0
			log "$name: another process answers on ${url##*:}"
			return 1
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

instance_running() {
	[[ -f $dir/pids/$1.pid ]] && kill -0 "$(cat "$dir/pids/$1.pid")" 2>/dev/null
}

instance_stop_all() {
	local name
	for name in "${extra[@]}"; do
		[[ -f $dir/pids/$name.pid ]] || continue
		stop_ours "$(cat "$dir/pids/$name.pid")" "--instance-id chaos-$name "
		rm -f "$dir/pids/$name.pid"
	done
}

bg_pids=()
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
	local p
	for p in "${bg_pids[@]}"; do
		kill -- "$p" 2>/dev/null || true
	done
	if ((keep == 0)); then
		proxy_stop_all
		instance_stop_all
		cluster stop >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

say "seed $seed: $sagas sagas over $duration s; kills: sagad $kills," \
    "services $pkills, proxies $xkills; PostgreSQL restarts $pg_restarts" \
    "($pg_mode); proxies: drop $drop, dup $dup, delay $delay up to" \
    "$delay_max ms; state in $dir"
for s in "${services[@]}"; do
	proxy_start "$s" 0
done
cluster start >"$dir/logs/cluster-start.log" 2>&1 || {
	cat "$dir/logs/cluster-start.log" >&2
	die "the cluster did not start"
}
# shellcheck disable=SC1091
source "$cdir/pg.env"
export PGHOST PGPORT PGUSER
unset DATABASE_URL PGDATABASE
pg_dir=$SAGA_PG_DIR

psqlc() {
	psql -X -q -v ON_ERROR_STOP=1 -d "$1" -tA -c "$2"
}

# More stock and money than the load can use; bob stays poor and the one
# gadget stays alone. The baseline is what there is now.
psqlc saga_inventory "UPDATE stock SET available = available + $((3 * sagas + 100)) WHERE sku IN ('WIDGET', 'GIZMO')" >/dev/null
psqlc saga_payments "UPDATE accounts SET balance = balance + $((4500 * sagas + 100000)) WHERE customer_id IN ('alice', 'carol')" >/dev/null
mkdir -p "$dir/baseline"
psqlc saga_inventory "\\copy (SELECT sku, available, reserved FROM stock) TO '$dir/baseline/stock.csv' WITH (FORMAT csv)"
psqlc saga_payments "\\copy (SELECT customer_id, balance FROM accounts) TO '$dir/baseline/accounts.csv' WITH (FORMAT csv)"
for name in "${extra[@]}"; do
	instance_start "$name" || {
		tail -n 20 "$dir/logs/$name.log" >&2
		die "$name did not start"
	}
done
load_urls=(--coordinator "$sagad_url")
for name in "${extra[@]}"; do
	load_urls+=(--coordinator "$(instance_url "$name")")
done
say "cluster up (sagad $sagad_url${extra:+ and ${#extra[@]} more instances on $((base + 5))..$((base + 3 + instances))}, services on $((base + 1))..$((base + 4)), proxies on $((base + 11))..$((base + 14)), PostgreSQL $PGHOST:$PGPORT)"

# ---- the schedule ------------------------------------------------------

RANDOM=$seed
# times N LO HI: N sorted random instants (ms) in [LO, HI).
times() {
	local n=$1 lo=$2 hi=$3 i
	for ((i = 0; i < n; i++)); do
		echo $((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
	done | sort -n
}
dur_ms=$((duration * 1000))
lo=$((dur_ms / 20))
hi=$((dur_ms * 19 / 20 + 1))
declare -A lane
if ((instances == 1)); then
	lane[sagad]=$(times "$kills" "$lo" "$hi")
else
	# The kills go round the instances from a random one, so that
	# each is hit (when there are as many kills).
	off=$((RANDOM % instances))
	for ((k = 0; k < kills; k++)); do
		r=$(((off + k) % instances))
		l=sagad
		((r == 0)) || l=sagad-$((r + 1))
		lane[$l]+=" $((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))"
	done
fi
# Participant kills go round the four services the same way: with four
# kills or more, every participant is killed.
off=$((RANDOM % 4))
for ((k = 0; k < pkills; k++)); do
	s=${services[(off + k) % 4]}
	lane[$s]+=" $((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))"
done
for ((k = 0; k < xkills; k++)); do
	s=${services[RANDOM % 4]}
	lane[proxy-$s]+=" $((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))"
done
lane[postgres]=$(times "$pg_restarts" $((dur_ms / 5)) $((dur_ms * 4 / 5 + 1)))
# A lane goes through its times in order.
for l in "${!lane[@]}"; do
	# shellcheck disable=SC2086
	lane[$l]=$(printf '%s\n' ${lane[$l]} | sort -n | tr '\n' ' ')
done
# Each kill's down time, in ms: 100..2000.
down_ms() {
	echo $((100 + RANDOM % 1900))
}
{
	for l in "${!lane[@]}"; do
		for t in ${lane[$l]}; do
			echo "$t $l"
		done
	done
} | sort -n >"$dir/schedule.plan"

sleep_until_ms() {
	local now_ms
	now_ms=$((($(date +%s%N) - load_t0) / 1000000))
	if (($1 > now_ms)); then
		sleep "$(printf '%d.%03d' $((($1 - now_ms) / 1000)) $((($1 - now_ms) % 1000)))"
	fi
}

# restart_proc NAME: cluster.sh restart NAME until it comes up (it does
# not while the database restarts: sagad exits when it cannot connect).
restart_proc() {
	local name=$1 n
	for n in $(seq 1 120); do
		if [[ $name == sagad-* ]]; then
			if instance_start "$name"; then
				log "restarted $name (attempt $n)"
				return 0
			fi
		elif cluster restart "$name" >>"$dir/logs/restarts.log" 2>&1; then
			log "restarted $name (attempt $n)"
			return 0
		fi
		sleep 0.5
	done
	log "FAILED to restart $name"
	return 1
}

pg_ctl_as() {
	local ver pg_ctl
	ver=$(cat "$pg_dir/data/PG_VERSION")
	pg_ctl=/usr/lib/postgresql/$ver/bin/pg_ctl
	[[ -x $pg_ctl ]] || pg_ctl=$(command -v pg_ctl)
	if [[ $(id -u) -eq 0 ]]; then
		(cd "$pg_dir" && PATH=$PATH:/usr/sbin:/sbin runuser -u postgres -- \
		    "$pg_ctl" -D "$pg_dir/data" "$@")
	else
		(cd "$pg_dir" && "$pg_ctl" -D "$pg_dir/data" "$@")
	fi
}

# term_proc NAME PIDFILE: SIGTERM, then up to term_wait_s for the exit.
# Logs "term NAME: exited in N ms", or, if it still runs then, HUNG (and
# kill -9s it).
term_proc() {
	local name=$1 pid t0 ms
	pid=$(cat "$2" 2>/dev/null) || pid=
	if [[ -z $pid ]] || ! kill -TERM "$pid" 2>/dev/null; then
		log "term $name: it was not running"
		return 0
	fi
	t0=$(date +%s%N)
	while kill -0 "$pid" 2>/dev/null; do
		ms=$((($(date +%s%N) - t0) / 1000000))
		if ((ms > term_wait_s * 1000)); then
			kill -KILL "$pid" 2>/dev/null || true
			log "term $name: HUNG, still running $term_wait_s s after SIGTERM; kill -9"
			return 0
		fi
		sleep 0.05
	done
	log "term $name: exited in $((($(date +%s%N) - t0) / 1000000)) ms"
}

# by_term: whether this stop is a SIGTERM (a share --terms of them, drawn
# from the lane's generator only when --terms is set, so that the
# schedule of a seed without it is as before).
by_term() {
	((term_permille > 0 && RANDOM % 1000 < term_permille))
}

# run_lane NAME TIMES: kills NAME at each time and restarts it after a
# random down time. Runs in the background, one per process.
run_lane() {
	local name=$1 t d gen=0 pid
	shift
	# Each lane has its own sequence of down times.
	RANDOM=$(((seed * 7919 + $(printf '%s' "$name" | cksum | cut -d' ' -f1)) % 32768))
	for t in "$@"; do
		sleep_until_ms "$t"
		d=$(down_ms)
		case $name in
		postgres)
			log "kill postgres (pg_ctl stop -m $pg_mode)"
			pg_ctl_as stop -m "$pg_mode" -w -t 60 >>"$dir/logs/restarts.log" 2>&1 ||
			    log "pg_ctl stop failed"
			sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"
			if pg_ctl_as start -w -t 120 -l "$pg_dir/postgres.log" >>"$dir/logs/restarts.log" 2>&1; then
				log "restarted postgres"
			else
				log "FAILED to restart postgres"
			fi
			;;
		sagad-*)
			if by_term; then
				term_proc "$name" "$dir/pids/$name.pid"
			else
				pid=$(cat "$dir/pids/$name.pid")
				if ours "$pid" "--instance-id chaos-$name "; then
					kill -KILL "$pid" 2>/dev/null || true
				fi
				log "kill -9 $name"
			fi
			sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"
			restart_proc "$name" || true
			;;
		proxy-*)
			pid=$(cat "$dir/pids/$name.pid")
			if ours "$pid" "$dir/stats/"; then
				kill -KILL "$pid" 2>/dev/null || true
			fi
			log "kill -9 $name"
			sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"
			gen=$((gen + 1))
			proxy_start "${name#proxy-}" "$gen"
			log "restarted $name"
			;;
		*)
			if by_term; then
				term_proc "$name" "$cdir/pids/$name.pid"
			elif cluster kill "$name" 2>&1 | tee -a "$dir/logs/restarts.log" |
			    grep -q 'killed'; then
				log "kill -9 $name"
			else
				log "kill -9 $name: it was not running"
			fi
			sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"
			restart_proc "$name" || true
			;;
		esac
	done
}

# ---- the run -----------------------------------------------------------

rate=$(awk -v n="$sagas" -v d="$duration" 'BEGIN { printf "%.3f", n / d }')
say "load: $sagas sagas at $rate/s; schedule: $(wc -l <"$dir/schedule.plan") events (see $dir/schedule.plan)"
load_t0=$(date +%s%N)
"$load_bin" "${load_urls[@]}" --sagas "$sagas" --rate "$rate" \
    --seed "$seed" --concurrency "$concurrency" --poor "$poor" \
    --scarce "$scarce" --prefix "chaos-$seed" --out "$dir/load.txt" \
    --give-up $((duration + settle)) \
    >"$dir/logs/load.log" 2>&1 &
load_pid=$!
bg_pids+=("$load_pid")
# The services' metrics, read as a monitoring system would, every 0.5 s
# while the load runs: their HTTP servers have connections when the
# stops come (a SIGTERM's stop of that server is bounded too,
# docs/participants.md, "Stopping"). Counts the answers that hold the
# library's metrics, per service, in $dir/scrapes.
scrape_metrics() {
	local s rounds=0
	local -A got=()
	while kill -0 "$load_pid" 2>/dev/null; do
		rounds=$((rounds + 1))
		for s in "${services[@]}"; do
			if curl -fsS --max-time 2 "$(metrics_url "$s")" 2>/dev/null |
			    grep -q '^saga_participant_commands_total'; then
				got[$s]=$((${got[$s]:-0} + 1))
			fi
		done
		sleep 0.5
	done
	{
		echo "rounds=$rounds"
		for s in "${services[@]}"; do
			echo "$s=${got[$s]:-0}"
		done
	} >"$dir/scrapes"
}
scrape_pid=
rm -f "$dir/scrapes"
if command -v curl >/dev/null; then
	scrape_metrics &
	scrape_pid=$!
	bg_pids+=("$scrape_pid")
else
	say "no curl: the services' metrics are not read"
fi
lane_pids=()
for l in "${!lane[@]}"; do
	# shellcheck disable=SC2086
	[[ -n ${lane[$l]// /} ]] || continue
	# shellcheck disable=SC2086
	run_lane "$l" ${lane[$l]} &
	lane_pids+=($!)
	bg_pids+=($!)
done

# Progress every 10 s while the load runs.
while kill -0 "$load_pid" 2>/dev/null; do
	for _ in $(seq 1 20); do
		kill -0 "$load_pid" 2>/dev/null || break
		sleep 0.5
	done
	n=$(wc -l <"$dir/load.txt" 2>/dev/null || echo 0)
	active=$(psqlc saga_coordinator "SELECT count(*) FROM saga_instance WHERE state IN ('RUNNING', 'COMPENSATING')" 2>/dev/null || echo '?')
	say "started $n/$sagas, active $active, events done $(grep -c 'kill' "$dir/schedule.log" || true)"
done
load_rc=0
wait "$load_pid" || load_rc=$?
say "$(tail -n 1 "$dir/logs/load.log")"
lanes_rc=0
for p in "${lane_pids[@]}"; do
	wait "$p" || lanes_rc=1
done
[[ -z $scrape_pid ]] || wait "$scrape_pid" || true
bg_pids=()

# ---- settle ------------------------------------------------------------

say "load done; faults off, settling (at most $settle s)"
for f in "$dir"/pids/proxy-*.pid; do
	if ours "$(cat "$f")" "$dir/stats/"; then
		kill -USR1 "$(cat "$f")" 2>/dev/null || true
	fi
done
# Whatever a failed restart left down comes back now.
status=$(cluster status 2>/dev/null || true)
for name in sagad "${services[@]}"; do
	if ! grep -q "^$name: running" <<<"$status"; then
		log "$name is not running after the schedule"
		restart_proc "$name" || true
	fi
done
for name in "${extra[@]}"; do
	if ! instance_running "$name"; then
		log "$name is not running after the schedule"
		restart_proc "$name" || true
	fi
done
settled=0
settle_t0=$SECONDS
while ((SECONDS - settle_t0 < settle)); do
	active=$(psqlc saga_coordinator "SELECT count(*) FROM saga_instance WHERE state IN ('RUNNING', 'COMPENSATING')" 2>/dev/null || echo '?')
	if [[ $active == 0 ]]; then
		settled=1
		break
	fi
	sleep 1
	if (((SECONDS - settle_t0) % 10 == 0)); then
		say "settling: $active sagas still active"
	fi
done
if ((settled)); then
	say "settled in $((SECONDS - settle_t0)) s"
else
	say "NOT settled after $settle s: $active sagas still active"
fi
if ((keep)); then
	# They keep forwarding (faults off); their counts are written
	# every 250 ms.
	sleep 0.5
else
	proxy_stop_all
	instance_stop_all
fi

# ---- check -------------------------------------------------------------

check_rc=0
"$repo/tests/tools/chaos_check.sh" --load "$dir/load.txt" \
    --baseline "$dir/baseline" >"$dir/check.log" 2>&1 || check_rc=$?
cat "$dir/check.log"
violations=$(sed -n 's/^violations: \([0-9]*\).*/\1/p' "$dir/check.log")
violations=${violations:-unknown}
sagas_line=$(sed -n 's/^sagas: //p' "$dir/check.log")

sum_stat() {
	cat "$dir"/stats/* 2>/dev/null | awk -F= -v k="$1" '$1 == k { s += $2 } END { print s + 0 }'
}
received=$(sum_stat received)
dropped=$(sum_stat dropped)
duplicated=$(sum_stat duplicated)
delayed=$(sum_stat delayed)
count() { grep -cE "$1" "$dir/schedule.log" || true; }
# stops WHO: the stops of the processes matched by the ERE WHO: a kill -9,
# or a SIGTERM after which the process ended (on its own, or, hung, by
# the kill -9 that followed).
stops() {
	count "\] (kill -9 ($1)|term ($1): (exited in [0-9]+ ms|HUNG.*))\$"
}
svc_re='orders|inventory|payments|shipping'
k_sagad=$(stops 'sagad(-[0-9]+)?')
r_sagad=$(count '\] restarted sagad(-[0-9]+)? ')
k_svc=$(stops "$svc_re")
r_svc=$(count '\] restarted (orders|inventory|payments|shipping) ')
per_svc=
svc_unkilled=0
for s in "${services[@]}"; do
	n=$(stops "$s")
	per_svc+="${per_svc:+, }$s $n"
	((n > 0)) || svc_unkilled=$((svc_unkilled + 1))
done
t_all=$(count '\] term [a-z0-9-]+: (exited in [0-9]+ ms|HUNG)')
t_hung=$(count '\] term [a-z0-9-]+: HUNG')
t_slowest=$(sed -n 's/.*\] term [a-z0-9-]*: exited in \([0-9]*\) ms$/\1/p' \
    "$dir/schedule.log" | sort -n | tail -n 1)
k_proxy=$(count '\] kill -9 proxy-')
r_proxy=$(count '\] restarted proxy-')
k_pg=$(count '\] kill postgres')
r_pg=$(count '\] restarted postgres$')

ok=1
problems=()
((load_rc == 0)) || { ok=0; problems+=("load generator exit $load_rc"); }
((lanes_rc == 0)) || { ok=0; problems+=("a schedule lane failed"); }
((settled)) || { ok=0; problems+=("did not settle"); }
[[ $violations == 0 ]] || { ok=0; problems+=("checker: $violations violations"); }
((check_rc == 0)) || { ok=0; problems+=("checker exit $check_rc"); }
((r_sagad == k_sagad && r_svc == k_svc && r_pg == k_pg && r_proxy == k_proxy)) ||
    { ok=0; problems+=("not every killed process came back"); }
((pkills < 4 || svc_unkilled == 0)) ||
    { ok=0; problems+=("$svc_unkilled of the four services never killed"); }
((t_hung == 0)) ||
    { ok=0; problems+=("$t_hung processes still ran $term_wait_s s after SIGTERM"); }
# Every fault asked for happened: a lane or a share that never fired
# would let the run pass without testing what it says.
((received > 0)) || { ok=0; problems+=("no message went through the proxies"); }
for f in "drop:$drop:$dropped" "dup:$dup:$duplicated" "delay:$delay:$delayed"; do
	IFS=: read -r what share got <<<"$f"
	if awk -v p="$share" 'BEGIN { exit !(p > 0) }' && ((got == 0)); then
		ok=0
		problems+=("--$what $share, but the proxies never did it")
	fi
done
for f in "sagad:$k_sagad:$kills" "services:$k_svc:$pkills" \
    "proxies:$k_proxy:$xkills" "PostgreSQL:$k_pg:$pg_restarts"; do
	IFS=: read -r what got want <<<"$f"
	((got == want)) ||
	    { ok=0; problems+=("$what stopped $got times of $want planned"); }
done
scrapes=
if [[ -n $scrape_pid ]]; then
	scrape_of() { sed -n "s/^$1=//p" "$dir/scrapes" 2>/dev/null; }
	for s in "${services[@]}"; do
		n=$(scrape_of "$s")
		scrapes+="${scrapes:+, }$s ${n:-?}"
		[[ ${n:-0} -gt 0 ]] ||
		    { ok=0; problems+=("$s never answered a metrics read"); }
	done
	scrapes+=" of $(scrape_of rounds) rounds"
fi

echo
echo "chaos: seed $seed, $sagas sagas in $duration s on $instances sagad instance(s), $(elapsed) s in all"
echo "chaos: sagas run: $sagas_line"
echo "chaos: kills survived: sagad $r_sagad/$k_sagad, services $r_svc/$k_svc ($per_svc), proxies $r_proxy/$k_proxy; PostgreSQL restarts $r_pg/$k_pg ($pg_mode)"
if ((term_permille > 0)); then
	echo "chaos: of those kills of sagad and the services, $t_all were a SIGTERM: $t_hung hung${t_slowest:+, the slowest exit $t_slowest ms}"
fi
echo "chaos: messages through the proxies: $received; dropped $dropped, duplicated $duplicated, delayed $delayed"
[[ -z $scrapes ]] || echo "chaos: the services' metrics read: $scrapes"
echo "chaos: invariant violations: $violations"
if ((ok)); then
	echo "chaos: PASS"
	exit 0
fi
printf -v why '%s; ' "${problems[@]}"
echo "chaos: FAIL (${why%; }); logs in $dir (cluster logs in $cdir/logs)"
exit 1
