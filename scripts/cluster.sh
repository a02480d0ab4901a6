#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# cluster.sh: the demo cluster on this machine — a throwaway PostgreSQL with
# five databases (the coordinator's and one per service), sagad and the four
# demo services (orders, inventory, payments, shipping), each a separate
# process with its own database.
#
#   scripts/cluster.sh start [--tls]  start everything, wait until it answers
#                                     (--tls: every link over mutual TLS,
#                                     certificates from scripts/certs.sh)
#   scripts/cluster.sh stop           stop exactly what start started
#   scripts/cluster.sh status         what runs, where
#   scripts/cluster.sh kill NAME      kill -9 one process (sagad, orders, ...)
#   scripts/cluster.sh restart NAME   start it again (after a kill)
#
# Everything lives under build/cluster/: logs/, pids/, the generated
# configuration, and cluster.env (DATABASE_URL, SAGA_COORDINATOR and each
# service's database) for other tools to source, linked from
# build/cluster.env.

set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SAGA_BUILD_DIR:-$repo/build}
dir=${SAGA_CLUSTER_DIR:-$build/cluster}
base=${SAGA_PORT_BASE:-7100}
services=(orders inventory payments shipping)
starting=0 # do_start has not finished a start from scratch

usage() {
	cat <<EOF
usage: $prog start [--tls]|stop|status|kill NAME|restart NAME

start --tls runs every link (clients and sagad, sagad and the services)
over mutual TLS with a throwaway CA (scripts/certs.sh, in the state
directory); cluster.env then carries SAGA_TLS_* for sagactl.

Runs the demo cluster: PostgreSQL (scripts/pg.sh), sagad on
tcp://127.0.0.1:$base and the services orders, inventory, payments and
shipping on the next four ports. SAGA_PORT_BASE moves the ports,
SAGA_BUILD_DIR the build tree (default build/), SAGA_CLUSTER_DIR the
state (default build/cluster/: logs, pids, cluster.env),
SAGA_CLUSTER_CONFIG the saga configuration sagad gets (default
participants/examples/create_order.yaml; its tcp://127.0.0.1:7101..7104
endpoints are moved to the services' ports either way), SAGAD_ARGS more
options for sagad (--metrics-listen ADDR --log-format json),
SAGA_SERVICE_ARGS more options for the four services (--workers N),
SAGA_SERVICE_METRICS_BASE=P the services' metrics endpoints
(http://127.0.0.1:P/metrics for orders, P+1 inventory, P+2 payments, P+3
shipping; when a service is started).
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

port_of() {
	case $1 in
	sagad) echo "$base" ;;
	orders) echo $((base + 1)) ;;
	inventory) echo $((base + 2)) ;;
	payments) echo $((base + 3)) ;;
	shipping) echo $((base + 4)) ;;
	*) die "unknown process '$1' (sagad, ${services[*]})" ;;
	esac
}

# metrics_args NAME: sets the array margs to --metrics-listen for service
# NAME when SAGA_SERVICE_METRICS_BASE is set (orders on it, inventory on
# the next port, then payments, shipping).
metrics_args() {
	margs=()
	[[ -n ${SAGA_SERVICE_METRICS_BASE:-} ]] || return 0
	margs=(--metrics-listen "127.0.0.1:$((SAGA_SERVICE_METRICS_BASE + $(port_of "$1") - base - 1))")
}

tls_on() {
	[[ -f $dir/tls ]]
}

url_of() {
	if tls_on; then
		echo "tls+tcp://127.0.0.1:$(port_of "$1")"
	else
		echo "tcp://127.0.0.1:$(port_of "$1")"
	fi
}

# tls_args NAME: sets the array targs to the TLS options of process NAME,
# when TLS is on (one word per option and file, so that a state directory
# with a space in its name works).
tls_args() {
	targs=()
	if tls_on; then
		targs=(--tls-ca "$dir/certs/ca.crt" --tls-cert "$dir/certs/$1.crt"
			--tls-key "$dir/certs/$1.key")
	fi
}

bin_of() {
	case $1 in
	sagad) echo "$build/coordinator/sagad" ;;
	*) echo "$build/participants/saga-$1" ;;
	esac
}

db_of() {
	case $1 in
	sagad) echo saga_coordinator ;;
	*) echo "saga_$1" ;;
	esac
}

pg_env() {
	[[ -f $dir/pg.env ]] ||
		die "no cluster in $dir (start one with scripts/cluster.sh start)"
	# shellcheck disable=SC1090
	source "$dir/pg.env"
	export PGHOST PGPORT PGUSER
}

conninfo_of() {
	echo "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$(db_of "$1")"
}

# alive NAME: NAME's recorded process is alive.
alive() {
	local pidfile=$dir/pids/$1.pid
	[[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# running NAME: NAME's recorded process is alive and is still NAME's
# program (a pid file can outlive its process, and the pid be reused by
# another: stop and kill must end only what start started). Its command
# line names the program: as argv[0], or as argv[1] while nohup, which
# start runs it under, has not exec'd it yet.
running() {
	local pid argv=()
	alive "$1" || return 1
	pid=$(cat "$dir/pids/$1.pid")
	if [[ -r /proc/$pid/cmdline ]]; then
		mapfile -d '' -t argv <"/proc/$pid/cmdline" 2>/dev/null || return 1
		[[ ${argv[0]:-} == "$(bin_of "$1")" ||
			${argv[1]:-} == "$(bin_of "$1")" ]] || return 1
	fi
	return 0
}

ping_url() {
	local targs
	tls_args client
	"$build/coordinator/sagactl" ping --coordinator "$1" --timeout 200ms \
		"${targs[@]}" >/dev/null 2>&1
}

# port_free PORT: nothing listens on 127.0.0.1:PORT (or on every address).
port_free() {
	[[ -z $(ss -Htln "sport = :$1" 2>/dev/null) ]]
}

# wait_ping NAME: waits until NAME answers a ping on its URL; dies if it
# exits first, or if the answer came from another process on its port.
wait_ping() {
	local name=$1 url pid port
	url=$(url_of "$1")
	pid=$(cat "$dir/pids/$name.pid")
	port=$(port_of "$name")
	for _ in $(seq 1 100); do
		if ping_url "$url"; then
			# Ours, not another cluster's on the same port: ss shows
			# the listener's process (our own, so no root needed).
			if ! alive "$name" ||
			    ! ss -Htlnp "sport = :$port" 2>/dev/null |
			    grep -q "pid=$pid,"; then
				tail -n 20 "$dir/logs/$name.log" >&2 || true
				die "$name: another process answers on port $port" \
				    "(another cluster? SAGA_PORT_BASE moves this one)"
			fi
			return 0
		fi
		# Alive is enough here: the process was just started, and
		# may not have exec'd its program yet.
		if ! alive "$name"; then
			tail -n 20 "$dir/logs/$name.log" >&2 || true
			die "$name exited during start-up (log above: $dir/logs/$name.log)"
		fi
		sleep 0.1
	done
	tail -n 20 "$dir/logs/$name.log" >&2 || true
	die "$name does not answer on $url"
}

start_one() {
	local name=$1 bin
	bin=$(bin_of "$name")
	[[ -x $bin ]] || die "$bin is missing: build first (cmake --build build)"
	if running "$name"; then
		echo "$prog: $name already runs (pid $(cat "$dir/pids/$name.pid"))"
		return 0
	fi
	port_free "$(port_of "$name")" ||
		die "port $(port_of "$name") for $name is taken by another" \
		    "process (another cluster? SAGA_PORT_BASE moves this one)"
	local targs margs
	tls_args "$name"
	if [[ $name == sagad ]]; then
		# shellcheck disable=SC2086 # SAGAD_ARGS: words on purpose
		nohup "$bin" --config "$dir/create_order.yaml" \
			--listen "$(url_of sagad)" --db "$(conninfo_of sagad)" \
			"${targs[@]}" ${SAGAD_ARGS:-} \
			>>"$dir/logs/sagad.log" 2>&1 </dev/null &
	else
		metrics_args "$name"
		# shellcheck disable=SC2086 # SAGA_SERVICE_ARGS: words on purpose
		nohup "$bin" --listen "$(url_of "$name")" \
			--db "$(conninfo_of "$name")" "${targs[@]}" \
			"${margs[@]}" ${SAGA_SERVICE_ARGS:-} \
			>>"$dir/logs/$name.log" 2>&1 </dev/null &
	fi
	echo $! >"$dir/pids/$name.pid"
	wait_ping "$name"
	echo "$prog: $name runs (pid $(cat "$dir/pids/$name.pid"), $(url_of "$name"))"
}

write_config() {
	sed -e "s|tcp://127.0.0.1:7101|$(url_of orders)|" \
		-e "s|tcp://127.0.0.1:7102|$(url_of inventory)|" \
		-e "s|tcp://127.0.0.1:7103|$(url_of payments)|" \
		-e "s|tcp://127.0.0.1:7104|$(url_of shipping)|" \
		"${SAGA_CLUSTER_CONFIG:-$repo/participants/examples/create_order.yaml}" \
		>"$dir/create_order.yaml"
}

write_env() {
	{
		echo "# Written by scripts/cluster.sh start."
		echo "export PGHOST='$PGHOST' PGPORT='$PGPORT' PGUSER='$PGUSER'"
		echo "export DATABASE_URL='postgresql:///saga_coordinator?host=$PGHOST&port=$PGPORT&user=$PGUSER'"
		echo "export SAGA_COORDINATOR='$(url_of sagad)'"
		if tls_on; then
			echo "export SAGA_TLS_CA='$dir/certs/ca.crt'"
			echo "export SAGA_TLS_CERT='$dir/certs/client.crt'"
			echo "export SAGA_TLS_KEY='$dir/certs/client.key'"
		fi
		for s in "${services[@]}"; do
			local up=${s^^}
			echo "export ${up}_DB='$(conninfo_of "$s")'"
			echo "export ${up}_URL='$(url_of "$s")'"
		done
	} >"$dir/cluster.env"
	# The default place also has build/cluster.env, for `source`.
	if [[ -z ${SAGA_CLUSTER_DIR:-} ]]; then
		ln -sfn cluster/cluster.env "$build/cluster.env"
	fi
}

do_start() {
	local want_tls=0 have_tls=0 any=0
	case ${1:-} in
	--tls) want_tls=1 ;;
	"") ;;
	*) die "start: unknown option '$1' (--tls)" ;;
	esac
	mkdir -p "$dir/logs" "$dir/pids"
	for name in sagad "${services[@]}"; do
		if running "$name"; then
			any=1
		fi
	done
	if ((any)); then
		# Running processes keep their mode and certificates: a new
		# CA would not be trusted by them.
		tls_on && have_tls=1
		((want_tls == have_tls)) ||
			die "the cluster in $dir runs with TLS" \
			    "$( ((have_tls)) && echo on || echo off); stop it" \
			    "first (scripts/cluster.sh stop) to change that"
	else
		rm -f "$dir/tls"
		if ((want_tls)); then
			"$repo/scripts/certs.sh" "$dir/certs" >/dev/null
			touch "$dir/tls"
		fi
		# A start that fails half-way stops what it started.
		trap 'if ((starting)); then do_stop >/dev/null 2>&1 || true; fi' EXIT
		starting=1
	fi
	SAGA_PG_ENV=$dir/pg.env "$repo/scripts/pg.sh" start
	pg_env
	for name in sagad "${services[@]}"; do
		local db
		db=$(db_of "$name")
		if [[ -z $(psql -d postgres -tAc \
			"SELECT 1 FROM pg_database WHERE datname = '$db'") ]]; then
			psql -q -d postgres -c "CREATE DATABASE $db" >/dev/null
		fi
		"$(bin_of "$name")" --migrate --db "$(conninfo_of "$name")" \
			>>"$dir/logs/$name-migrate.log" 2>&1 ||
			die "migrating $db failed (see $dir/logs/$name-migrate.log)"
	done
	write_config
	write_env
	for name in "${services[@]}" sagad; do
		start_one "$name"
	done
	# shellcheck disable=SC2034 # read by the trap of do_start
	starting=0
	echo "$prog: cluster up; environment in $dir/cluster.env"
}

stop_one() {
	local name=$1 pidfile=$dir/pids/$1.pid pid
	[[ -f $pidfile ]] || return 0
	pid=$(cat "$pidfile")
	if running "$name"; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

do_stop() {
	for name in sagad "${services[@]}"; do
		stop_one "$name"
	done
	if [[ -f $dir/pg.env ]]; then
		SAGA_PG_ENV=$dir/pg.env "$repo/scripts/pg.sh" stop
	fi
	rm -f "$dir/cluster.env"
	if [[ -z ${SAGA_CLUSTER_DIR:-} ]]; then
		rm -f "$build/cluster.env"
	fi
	echo "$prog: cluster stopped"
}

do_status() {
	local rc=0
	if [[ -f $dir/pg.env ]]; then
		SAGA_PG_ENV=$dir/pg.env "$repo/scripts/pg.sh" status || rc=3
	else
		echo "postgres: not running"
		rc=3
	fi
	for name in sagad "${services[@]}"; do
		if running "$name"; then
			echo "$name: running (pid $(cat "$dir/pids/$name.pid"), $(url_of "$name"))"
		else
			echo "$name: not running"
			rc=3
		fi
	done
	return $rc
}

case ${1:-} in
start) do_start "${2:-}" ;;
stop) do_stop ;;
status) do_status ;;
kill)
	[[ -n ${2:-} ]] || die "kill needs a name (sagad, ${services[*]})"
	port_of "$2" >/dev/null
	if running "$2"; then
		kill -KILL "$(cat "$dir/pids/$2.pid")"
		echo "$prog: killed $2 (kill -9)"
	else
		echo "$prog: $2 does not run"
	fi
	;;
restart)
	[[ -n ${2:-} ]] || die "restart needs a name (sagad, ${services[*]})"
	port_of "$2" >/dev/null
	pg_env
	stop_one "$2"
	start_one "$2"
	;;
-h | --help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
