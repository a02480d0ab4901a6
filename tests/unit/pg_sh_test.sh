#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pg_sh_test.sh: scripts/pg.sh sizes a new cluster's max_connections from
# SAGA_PG_MAX_CONNECTIONS (bench.sh sets it when its clients, and so its
# pgbench run, need more than the default 200), preloads the libraries of
# SAGA_PG_PRELOAD that the server has (test.sh: pg_stat_statements), and
# refuses a bad value before it creates anything; a start stopped by a
# signal stops the server it started.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d /tmp/saga-pgsh-test.XXXXXX)
real=
env_file=$tmp/pg.env
cleanup() {
	local held_dir

	SAGA_PG_ENV=$env_file "$repo/scripts/pg.sh" stop >/dev/null 2>&1 || true
	# The server of the held start below, if pg.sh left it (a failure).
	held_dir=$(cat "$tmp/mark/dir" 2>/dev/null || true)
	if [[ $held_dir == /tmp/saga-pg.* && -d $held_dir/data ]]; then
		(cd "$held_dir" && if ((EUID == 0)); then
			runuser -u postgres -- "$real/pg_ctl" stop -D data -m immediate
		else
			"$real/pg_ctl" stop -D data -m immediate
		fi) >/dev/null 2>&1 || true
		rm -rf -- "$held_dir"
	fi
	rm -rf -- "$tmp"
}
trap cleanup EXIT
fail() {
	echo "pg_sh_test: FAIL: $*" >&2
	exit 1
}

# A bad value: refused with its name, and no cluster is made.
if out=$(SAGA_PG_ENV=$env_file SAGA_PG_MAX_CONNECTIONS=lots \
	"$repo/scripts/pg.sh" start 2>&1); then
	fail "SAGA_PG_MAX_CONNECTIONS=lots was accepted"
fi
grep -q "SAGA_PG_MAX_CONNECTIONS: expected 20..10000, got 'lots'" <<<"$out" ||
	fail "unexpected message: $out"
[[ ! -e $env_file ]] || fail "a refused start left an env file"

if out=$(SAGA_PG_ENV=$env_file SAGA_PG_PRELOAD="pg_stat_statements;x" \
	"$repo/scripts/pg.sh" start 2>&1); then
	fail "SAGA_PG_PRELOAD='pg_stat_statements;x' was accepted"
fi
grep -q "SAGA_PG_PRELOAD: 'pg_stat_statements;x' is not a library name" \
	<<<"$out" || fail "unexpected message: $out"
[[ ! -e $env_file ]] || fail "a refused start left an env file"

# 300 connections and two libraries, one that no server has: what the
# server says it has.
SAGA_PG_ENV=$env_file SAGA_PG_MAX_CONNECTIONS=300 \
	SAGA_PG_PRELOAD=pg_stat_statements,no_such_library \
	"$repo/scripts/pg.sh" start >"$tmp/start.log" 2>&1 ||
	{ cat "$tmp/start.log" >&2; fail "start failed"; }
eval "$(SAGA_PG_ENV=$env_file "$repo/scripts/pg.sh" env)"
got=$(psql -X -qAt -d postgres -c "SHOW max_connections")
[[ $got == 300 ]] || fail "max_connections is $got, expected 300"
grep -q "no no_such_library.so in .*; not loaded" "$tmp/start.log" ||
	fail "no warning for no_such_library: $(cat "$tmp/start.log")"
got=$(psql -X -qAt -d postgres -c "SHOW shared_preload_libraries")
if grep -q "no pg_stat_statements.so" "$tmp/start.log"; then
	[[ -z $got ]] || fail "shared_preload_libraries is '$got', expected ''"
	echo "pg_sh_test: this server has no pg_stat_statements"
else
	[[ $got == pg_stat_statements ]] ||
		fail "shared_preload_libraries is '$got', expected pg_stat_statements"
fi
SAGA_PG_ENV=$env_file "$repo/scripts/pg.sh" stop >/dev/null

# A start stopped (SIGTERM) after its server started and before it wrote
# the env file: pg_ctl runs the server in a session of its own, so that
# only pg.sh itself can stop it then; it does, and removes its directory.
# A pg_ctl of our own in front of the real one holds the start there.
real=$(dirname "$(readlink -f "$(command -v pg_ctl ||
	ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)")")
[[ -x $real/pg_ctl ]] || fail "no pg_ctl found"
mkdir -p "$tmp/bin" "$tmp/mark"
chmod 711 "$tmp"
chmod 755 "$tmp/bin"
chmod 777 "$tmp/mark"
for b in initdb postgres pg_isready; do
	ln -s "$real/$b" "$tmp/bin/$b"
done
cat >"$tmp/bin/pg_ctl" <<SHIM
#!/bin/sh
"$real/pg_ctl" "\$@"
rc=\$?
if [ "\$1" = start ]; then
	pwd >"$tmp/mark/dir"
	sleep 60
fi
exit \$rc
SHIM
chmod 755 "$tmp/bin/pg_ctl"
setsid env PATH="$tmp/bin:$PATH" SAGA_PG_ENV="$env_file" \
	"$repo/scripts/pg.sh" start >"$tmp/held.log" 2>&1 &
held=$!
for _ in $(seq 1 600); do
	[[ -s $tmp/mark/dir ]] && break
	sleep 0.1
done
if [[ ! -s $tmp/mark/dir ]]; then
	kill -KILL -- -"$held" 2>/dev/null || true
	fail "the held start did not start its server: $(cat "$tmp/held.log")"
fi
dir=$(cat "$tmp/mark/dir")
kill -TERM -- -"$held"
rc=0
wait "$held" || rc=$?
((rc == 143)) || fail "the stopped start exited $rc, not 143"
[[ ! -e $env_file ]] || fail "the stopped start wrote an env file"
[[ ! -e $dir ]] || fail "the stopped start left $dir"
# (/proc, not ps: procps may be missing.)
if grep -qsF -- "$dir/data" /proc/[0-9]*/cmdline; then
	fail "the stopped start left its server running ($dir)"
fi
echo "pg_sh_test: SAGA_PG_MAX_CONNECTIONS and SAGA_PG_PRELOAD checked and" \
	"applied; a start stopped by a signal stopped its server"
