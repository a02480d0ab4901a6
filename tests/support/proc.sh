# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# proc.sh: process helpers of the shell integration tests (sourced).

# saga_exited PID SECONDS: waits up to SECONDS for the child PID to end.
# Returns 0 once it has (the caller reaps it with wait for its status),
# 1 if it still runs then, after printing every one of its threads'
# stacks to stderr (gdb, when installed): where it is stuck.
saga_exited() {
	local p=$1 i st
	for ((i = 0; i < $2 * 10; i++)); do
		st=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) || st=Z
		[[ $st == Z ]] && return 0
		sleep 0.1
	done
	if command -v gdb >/dev/null; then
		gdb -p "$p" -batch -ex 'thread apply all bt' 2>&1 |
			grep -E '^(Thread|#)' >&2 || true
	fi
	return 1
}

# saga_kill_children SIGNAL PID...: sends SIGNAL to each PID that is
# still a child of this shell. A child that ended was reaped by bash at
# once, and its number may be another process's by now (pid_max is 32768
# on the CI machines, and a test run starts thousands of processes): a
# cleanup that killed it took down a PostgreSQL backend of the server the
# other tests share.
saga_kill_children() {
	local sig=$1 p stat ppid
	shift
	for p in "$@"; do
		{ read -r stat <"/proc/$p/stat"; } 2>/dev/null || continue
		# The fields after the command name, which may hold spaces.
		read -r _ ppid _ <<<"${stat##*) }"
		if [[ $ppid == "$$" ]]; then
			kill "-$sig" "$p" 2>/dev/null || true
		fi
	done
}

# saga_answers SAGACTL URL PID: waits up to 10 s for the sagad at URL,
# process PID, to answer sagactl ping. Returns 0 once it does, 1 if it
# does not by then, 2 as soon as PID has exited (a refused start-up).
saga_answers() {
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$3" 2>/dev/null || return 2
		"$1" ping --coordinator "$2" --timeout 200ms >/dev/null 2>&1 &&
			return 0
		sleep 0.1
	done
	return 1
}

# saga_createdb DB: creates database DB on the PostgreSQL of libpq's PG*
# variables. Without a server, the test is skipped (exit 77), unless
# SAGA_TEST_REQUIRE_PG=1: then it returns 1 for the caller to fail.
saga_createdb() {
	psql -X -q -d postgres -c "CREATE DATABASE $1" >/dev/null 2>&1 &&
		return 0
	[[ ${SAGA_TEST_REQUIRE_PG:-} == 1 ]] && return 1
	echo "SKIP: no PostgreSQL server (start one with scripts/pg.sh start)"
	exit 77
}

# saga_dropdb DB...: drops each database DB (its sessions closed), if it
# exists; errors are ignored (a cleanup's).
saga_dropdb() {
	local d
	for d in "$@"; do
		psql -X -q -d postgres \
			-c "DROP DATABASE IF EXISTS $d WITH (FORCE)" \
			>/dev/null 2>&1 || true
	done
}

# saga_fail NAME LINES MESSAGE FILE...: prints "NAME: MESSAGE" on stderr,
# then the last LINES lines of each FILE that exists (the logs that say
# why), and exits 1.
saga_fail() {
	local name=$1 lines=$2 msg=$3 f
	shift 3
	echo "$name: $msg" >&2
	for f in "$@"; do
		[[ -f $f ]] || continue
		echo "---- $f" >&2
		tail -n "$lines" "$f" >&2
	done
	exit 1
}
