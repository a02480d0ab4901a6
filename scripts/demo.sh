#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo.sh: for now, a short tour of what the project has. It builds in
# build/ and shows the protocol library, the migration runner and how to
# run the tests. The order workflow demo (sagad driving the participant
# services) replaces this when the participant services exist.

set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$repo/build

usage() {
	cat <<EOF
usage: $prog [--help]

Builds the project in build/ and gives a short tour of what exists so far.
The order workflow demo arrives with the participant services.
EOF
}

case ${1:-} in
-h | --help)
	usage
	exit 0
	;;
"") ;;
*)
	echo "$prog: unknown argument '$1'" >&2
	usage >&2
	exit 2
	;;
esac

echo "==> building in $build"
cmake -S "$repo" -B "$build" >/dev/null
cmake --build "$build" -j2

rel() {
	local p=${1#"$repo"/}

	if [[ -e $1 ]]; then
		echo "$p"
	else
		echo "$p (not built)"
	fi
}

cat <<EOF

==> What exists so far

The wire protocol: $(rel "$build/protocol/libsaga_protocol.a")
  Every message between sagad, the participants and the clients is one
  strictly decoded msgpack envelope (protocol/proto_msg.h), carrying
  values (proto_val.h) that convert to and from JSON (proto_json.h),
  with 128-bit UUIDv7 saga ids (saga_id.h) and the shared error codes
  (saga_err.h).

The migration runner: $(rel "$build/sql/libsaga_sql.a")
  Applies numbered, forward-only SQL migrations, each in its own
  transaction under an advisory lock, and refuses edited ones
  (sql/sql_migrate.h). The coordinator's schema, the saga log:
EOF
for f in "$repo"/sql/coordinator/*.sql; do
	[[ -e $f ]] && echo "    sql/coordinator/${f##*/}"
done

cat <<EOF

The tests ($(cd "$build" && ctest -N 2>/dev/null | sed -n 's/^Total Tests: //p') registered with ctest):
EOF
(cd "$build" && ctest -N 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: /    /p')

cat <<EOF

  Everything (packages, builds, PostgreSQL, ASan, fuzzing):
    scripts/test.sh            (scripts/test.sh --quick: normal build only)
  Unit tests only:
    ctest --test-dir build -L unit
  Integration tests, against a throwaway PostgreSQL:
    scripts/pg.sh start
    eval "\$(scripts/pg.sh env)"
    ctest --test-dir build -L integration
    scripts/pg.sh stop
  Fuzz the protocol decoder for 60 s (clang):
    scripts/fuzz.sh 60

==> Not yet here

The order workflow demo (sagad, sagactl and the participant services,
each with its own database) arrives with the participant services; this
script will then run an order saga end to end, including a compensation.
EOF
