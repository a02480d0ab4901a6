#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pg.sh: a throwaway PostgreSQL cluster for the tests, the demo and by-hand
# work. The cluster lives in a fresh /tmp/saga-pg.XXXXXX directory (data,
# Unix socket and server log), listens on 127.0.0.1 on a free port (never
# assumed to be 5432), trusts local connections, and keeps fsync on: the
# saga log's durability is part of what the tests check. Its location is
# recorded as shell assignments in an env file (build/pg.env, or
# $SAGA_PG_ENV, so that several clusters can coexist).
#
# As root, the server runs as the postgres user through runuser (PostgreSQL
# refuses to run as root, and runuser cannot enter /root, hence /tmp).

set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
env_file=${SAGA_PG_ENV:-$repo/build/pg.env}

usage() {
	cat <<EOF
usage: $prog start|stop|status|env|--help

Manages a throwaway PostgreSQL cluster for the saga coordinator's tests.

  start    create and start a cluster in /tmp/saga-pg.XXXXXX on a free
           127.0.0.1 port, and record it in the env file; does nothing if
           the recorded cluster already answers
  stop     stop the cluster (fast shutdown), remove its directory and the
           env file; does nothing if none is recorded
  status   say whether the recorded cluster runs, and where
           (exit 0 if it runs, 3 if not)
  env      print export lines for the cluster:
             eval "\$($prog env)"
           sets SAGA_PG_DIR, PGHOST, PGPORT, PGUSER and DATABASE_URL, and
           SAGA_PG_CTL (the cluster's pg_ctl, for tests that restart it)

Environment:
  SAGA_PG_ENV  env file to use (default: $repo/build/pg.env)
  SAGA_PG_MAX_CONNECTIONS
               max_connections of a new cluster (default 200)
  SAGA_PG_PRELOAD
               comma-separated libraries a new cluster preloads
               (shared_preload_libraries), e.g. pg_stat_statements, which
               the tests use; one that the server does not have is left
               out with a warning (default: none)

The server binaries are taken from PATH (initdb, pg_ctl, postgres), else
from the newest /usr/lib/postgresql/*/bin. As root the server runs as the
postgres user.
EOF
}

die() {
	printf '%s: %s\n' "$prog" "$*" >&2
	exit 1
}

say() {
	printf '%s: %s\n' "$prog" "$*"
}

is_root() {
	[[ $(id -u) -eq 0 ]]
}

# runuser lives in /usr/sbin, which a non-login root shell may lack on PATH.
runuser=$(command -v runuser || true)
for d in /usr/sbin /sbin; do
	if [[ -z $runuser && -x $d/runuser ]]; then
		runuser=$d/runuser
	fi
done

# find_bin sets initdb, pg_ctl and pg_isready (pg_isready may stay empty:
# then psql, or at least the socket file, answers the readiness question).
find_bin() {
	local d best="" ver bestver=-1

	initdb="" pg_ctl="" pg_isready=""
	if command -v initdb >/dev/null && command -v pg_ctl >/dev/null &&
	    command -v postgres >/dev/null; then
		initdb=$(command -v initdb)
		pg_ctl=$(command -v pg_ctl)
	else
		for d in /usr/lib/postgresql/*/bin; do
			[[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] ||
			    continue
			ver=${d#/usr/lib/postgresql/}
			ver=${ver%%/*}
			ver=${ver%%.*}
			[[ $ver =~ ^[0-9]+$ ]] || continue
			if ((ver > bestver)); then
				bestver=$ver
				best=$d
			fi
		done
		if [[ -n $best ]]; then
			initdb=$best/initdb
			pg_ctl=$best/pg_ctl
		fi
	fi
	if [[ -n $pg_ctl ]]; then
		# Prefer the pg_isready of the server's own version; Debian's
		# /usr/bin one is a wrapper that may pick another cluster.
		d=$(dirname "$(readlink -f "$pg_ctl")")
		if [[ -x $d/pg_isready ]]; then
			pg_isready=$d/pg_isready
		elif command -v pg_isready >/dev/null; then
			pg_isready=$(command -v pg_isready)
		fi
	fi
}

need_bin() {
	find_bin
	if [[ -z $initdb || -z $pg_ctl ]]; then
		die "no PostgreSQL server binaries (initdb, pg_ctl, postgres)" \
		    "on PATH or in /usr/lib/postgresql/*/bin; install the" \
		    "'postgresql' package (apt-get install postgresql;" \
		    "scripts/test.sh installs it when run as root)"
	fi
}

# as_pg runs a command as the cluster's owner: the postgres user when we
# are root, else ourselves. It runs from the cluster directory because
# runuser keeps the working directory, which postgres may not enter.
as_pg() {
	if is_root; then
		(cd "$dir" && "$runuser" -u postgres -- "$@")
	else
		(cd "$dir" && "$@")
	fi
}

# load_env reads the env file into dir, host, port, ctl; returns 1 if there is
# none or it is unusable.
load_env() {
	# The file also sets these: keep them from leaking into our
	# environment.
	# shellcheck disable=SC2034
	local PGUSER="" DATABASE_URL=""
	local SAGA_PG_DIR="" PGHOST="" PGPORT="" SAGA_PG_CTL=""

	[[ -f $env_file ]] || return 1
	# shellcheck disable=SC1090
	. "$env_file" || return 1
	dir=$SAGA_PG_DIR host=$PGHOST port=$PGPORT ctl=$SAGA_PG_CTL
	[[ -n $dir && -n $host && -n $port ]]
}

# answers: does a server accept connections at host:port?
answers() {
	local h=$1 p=$2

	find_bin
	if [[ -n $pg_isready ]]; then
		"$pg_isready" -q -h "$h" -p "$p" -U postgres -d postgres -t 3 \
		    >/dev/null 2>&1
	elif command -v psql >/dev/null; then
		psql -h "$h" -p "$p" -U postgres -d postgres -Atqc 'SELECT 1' \
		    >/dev/null 2>&1
	else
		[[ -S $h/.s.PGSQL.$p ]]
	fi
}

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"

# q quotes a value for sh: 'value', with any ' inside escaped.
q() {
	local s=${1//\'/\'\\\'\'}

	printf "'%s'" "$s"
}

write_env() {
	local tmp

	mkdir -p "$(dirname "$env_file")"
	tmp=$env_file.tmp.$$
	{
		echo "# Written by scripts/pg.sh start; removed by scripts/pg.sh stop."
		echo "SAGA_PG_DIR=$(q "$dir")"
		echo "PGHOST=$(q "$dir")"
		echo "PGPORT=$(q "$port")"
		echo "PGUSER=$(q postgres)"
		echo "DATABASE_URL=$(q "postgresql:///postgres?host=$dir&port=$port")"
		echo "SAGA_PG_CTL=$(q "$(readlink -f "$pg_ctl")")"
	} >"$tmp"
	mv -f "$tmp" "$env_file"
}

log_tail() {
	local log=$1

	if [[ -f $log ]]; then
		echo "--- last lines of $log ---" >&2
		tail -n 30 "$log" >&2
		echo "---" >&2
	fi
}

# remove_dir deletes a cluster directory, but only one of ours.
remove_dir() {
	local d=$1

	case $d in
	/tmp/saga-pg.*) rm -rf -- "$d" ;;
	*) say "not removing $d: not a /tmp/saga-pg.* directory" >&2 ;;
	esac
}

# pg_start_abort: the EXIT trap of a start that has not written its env
# file yet (a failure, die, or a signal). pg_ctl runs the server in a
# session of its own, so a start stopped there would leave a server that
# nothing can find; this stops it and removes its directory.
pg_start_dir=
pg_start_abort() {
	local dir=$pg_start_dir

	[[ -n $dir ]] || return 0
	pg_start_dir=
	if [[ -d $dir/data ]]; then
		as_pg "$pg_ctl" stop -D "$dir/data" -m immediate \
		    >/dev/null 2>&1 || true
	fi
	remove_dir "$dir"
}

cmd_start() {
	local dir host port ctl log ok=0

	if load_env; then
		if answers "$host" "$port"; then
			say "already running: $dir, port $port (env file $env_file)"
			return 0
		fi
		say "the cluster recorded in $env_file does not answer;" \
		    "cleaning it up and starting a new one"
		cmd_stop >/dev/null || true
	fi
	need_bin
	if is_root; then
		id -u postgres >/dev/null 2>&1 ||
		    die "running as root needs the postgres user (install the" \
		    "'postgresql' package)"
		[[ -n $runuser ]] ||
		    die "running as root needs runuser (util-linux)"
	fi

	local max_conn=${SAGA_PG_MAX_CONNECTIONS:-200}
	[[ $max_conn =~ ^[0-9]+$ ]] && ((max_conn >= 20 && max_conn <= 10000)) ||
		die "SAGA_PG_MAX_CONNECTIONS: expected 20..10000, got '$max_conn'"
	local preload="" lib ld bindir libdirs=() libs=()
	IFS=, read -ra libs <<<"${SAGA_PG_PRELOAD:-}"
	for lib in "${libs[@]}"; do
		[[ $lib =~ ^[a-z0-9_]+$ ]] ||
			die "SAGA_PG_PRELOAD: '$lib' is not a library name"
	done
	if ((${#libs[@]} > 0)); then
		# Where the server's libraries are: what the pg_config beside
		# its binaries says, the lib directory beside them
		# (/usr/lib/postgresql/N/lib), what pg_config on PATH says.
		bindir=$(dirname "$(readlink -f "$initdb")")
		if [[ -x $bindir/pg_config ]]; then
			libdirs+=("$("$bindir/pg_config" --pkglibdir 2>/dev/null || true)")
		fi
		libdirs+=("$bindir/../lib")
		if command -v pg_config >/dev/null; then
			libdirs+=("$(pg_config --pkglibdir 2>/dev/null || true)")
		fi
	fi
	for lib in "${libs[@]}"; do
		for ld in "${libdirs[@]}" ''; do
			[[ -z $ld || ! -e $ld/$lib.so ]] || break
		done
		if [[ -n $ld ]]; then
			preload+=${preload:+,}$lib
		else
			say "warning: SAGA_PG_PRELOAD: no $lib.so in ${libdirs[*]}; not loaded" >&2
		fi
	done
	dir=$(mktemp -d /tmp/saga-pg.XXXXXX)
	pg_start_dir=$dir
	trap pg_start_abort EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# The server's socket is $dir/.s.PGSQL.<port>: stay below the 107
	# bytes of sun_path.
	if ((${#dir} + 18 > 107)); then
		die "socket directory $dir is too long for a Unix socket"
	fi
	log=$dir/postgres.log
	if is_root; then
		chown postgres: "$dir"
	fi
	chmod 700 "$dir"

	# --no-sync only skips initdb's own final fsync: the server keeps
	# fsync on.
	if ! as_pg "$initdb" -D "$dir/data" -A trust -U postgres -E UTF8 \
	    --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		die "initdb failed"
	fi
	as_pg sh -c "cat >>'$dir/data/postgresql.conf'" <<EOF

# Added by scripts/pg.sh. fsync stays on (the default).
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = $max_conn
include_if_exists = 'saga_port.conf'
shared_preload_libraries = '$preload'
EOF

	# Another cluster may grab the port between our check and the bind:
	# try a few ports.
	for _ in 1 2 3 4 5; do
		saga_ports_reserve port 1 || die "found no free TCP port"
		echo "port = $port" | as_pg sh -c "cat >'$dir/data/saga_port.conf'"
		if as_pg "$pg_ctl" start -w -t 60 -D "$dir/data" -l "$log" \
		    >"$dir/pg_ctl.log" 2>&1; then
			ok=1
			break
		fi
		if ! grep -qs 'could not bind\|Address already in use' "$log"; then
			break
		fi
		say "port $port was taken meanwhile; trying another"
	done
	if ((ok)); then
		ok=0
		for _ in $(seq 1 60); do
			if answers "$dir" "$port"; then
				ok=1
				break
			fi
			sleep 0.5
		done
	fi
	if ((!ok)); then
		cat "$dir/pg_ctl.log" >&2 || true
		log_tail "$log"
		die "the PostgreSQL server did not start"
	fi
	write_env
	pg_start_dir=
	trap - EXIT HUP INT TERM
	say "started PostgreSQL in $dir on 127.0.0.1:$port (log $log)"
	if [[ -n ${SAGA_PG_ENV:-} ]]; then
		say "env file $env_file; use it with:" \
		    "eval \"\$(SAGA_PG_ENV=$(q "$env_file") $0 env)\""
	else
		say "env file $env_file; use it with: eval \"\$($0 env)\""
	fi
}

cmd_stop() {
	local dir host port ctl

	if ! load_env; then
		if [[ -f $env_file ]]; then
			rm -f -- "$env_file"
			say "removed unusable env file $env_file"
		else
			say "not running (no $env_file)"
		fi
		return 0
	fi
	if [[ -d $dir/data ]]; then
		find_bin
		if [[ -n $pg_ctl ]] &&
		    as_pg "$pg_ctl" status -D "$dir/data" >/dev/null 2>&1; then
			if ! as_pg "$pg_ctl" stop -D "$dir/data" -m fast -w \
			    -t 60 >/dev/null; then
				log_tail "$dir/postgres.log"
				die "pg_ctl stop failed; $dir is left in place"
			fi
		fi
	fi
	[[ -d $dir ]] && remove_dir "$dir"
	rm -f -- "$env_file"
	say "stopped; removed $dir and $env_file"
}

cmd_status() {
	local dir host port ctl

	if ! load_env; then
		say "not running (no $env_file)"
		return 3
	fi
	if answers "$host" "$port"; then
		say "running: $dir, socket dir $host, 127.0.0.1:$port," \
		    "log $dir/postgres.log (env file $env_file)"
		return 0
	fi
	say "not running: $env_file names $dir, port $port, but nothing" \
	    "answers there (scripts/pg.sh stop cleans up)"
	return 3
}

cmd_env() {
	local dir host port ctl

	if ! load_env; then
		echo "$prog: no cluster recorded in $env_file;" \
		    "start one with: scripts/pg.sh start" >&2
		return 3
	fi
	echo "export SAGA_PG_DIR=$(q "$dir")"
	echo "export PGHOST=$(q "$host")"
	echo "export PGPORT=$(q "$port")"
	echo "export PGUSER=$(q postgres)"
	echo "export DATABASE_URL=$(q "postgresql:///postgres?host=$host&port=$port")"
	if [[ -n $ctl ]]; then
		echo "export SAGA_PG_CTL=$(q "$ctl")"
	fi
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
-h | --help | help) usage ;;
"")
	usage >&2
	exit 2
	;;
*)
	echo "$prog: unknown command '$1'" >&2
	usage >&2
	exit 2
	;;
esac
