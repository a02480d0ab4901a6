#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pg_sh_test.sh: scripts/pg.sh sizes a new cluster's max_connections from
# SAGA_PG_MAX_CONNECTIONS (bench.sh sets it when its clients, and so its
# pgbench run, need more than the default 200), preloads the libraries of
# SAGA_PG_PRELOAD that the server has (test.sh: pg_stat_statements), and
# refuses a bad value before it creates anything.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d /tmp/saga-pgsh-test.XXXXXX)
env_file=$tmp/pg.env
cleanup() {
	SAGA_PG_ENV=$env_file "$repo/scripts/pg.sh" stop >/dev/null 2>&1 || true
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
echo "pg_sh_test: SAGA_PG_MAX_CONNECTIONS and SAGA_PG_PRELOAD checked and applied"
