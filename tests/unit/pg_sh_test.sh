#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# pg_sh_test.sh: scripts/pg.sh sizes a new cluster's max_connections from
# SAGA_PG_MAX_CONNECTIONS (bench.sh sets it when its clients, and so its
# pgbench run, need more than the default 200), and refuses a bad value
# before it creates anything.

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

# 300 connections: what the server says it has.
SAGA_PG_ENV=$env_file SAGA_PG_MAX_CONNECTIONS=300 "$repo/scripts/pg.sh" start \
	>"$tmp/start.log" 2>&1 || { cat "$tmp/start.log" >&2; fail "start failed"; }
eval "$(SAGA_PG_ENV=$env_file "$repo/scripts/pg.sh" env)"
got=$(psql -X -qAt -d postgres -c "SHOW max_connections")
[[ $got == 300 ]] || fail "max_connections is $got, expected 300"
echo "pg_sh_test: SAGA_PG_MAX_CONNECTIONS checked and applied"
