#!/usr/bin/env bash
# shellcheck disable=SC2317 # the do_* functions run through stage()
# SPDX-License-Identifier: MIT
#
# test.sh: the project's test command (README and .ci/run call it).
#
# Stages, each reported on one line with its elapsed seconds:
#   packages    install missing Debian packages (as root; else say which)
#   build       configure and build build/ (-DCOORD_WERROR=ON)
#   build-asan  configure and build build-asan/ (-DCOORD_SANITIZER=address)
#   postgres    start a throwaway cluster (scripts/pg.sh, its own env file
#               build/test-pg.env, pg_stat_statements preloaded), stopped
#               again on exit
#   tests       ctest in build/, with SAGA_TEST_REQUIRE_PG=1
#   tests-asan  ctest in build-asan/, leaks detected, UBSan fatal
#   fuzz        scripts/fuzz.sh 30, when clang is there
#
# The three long serial tests run in one tree each, so that the whole run
# stays near ten minutes: bench_test (a check of the benchmark harness)
# and chaos_test (one sagad) in build/, chaos_test_two_instances (the
# same faults with two sagad instances, so every kill and recovery path)
# in build-asan/. With --quick, build/ runs all three.
#
# A failed package, build or postgres stage stops the run; the test and
# fuzz stages all run, and the exit status is non-zero if any failed.

set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# shellcheck source=scripts/deps.sh
source "$repo/scripts/deps.sh"
fuzz_seconds=30
quick=0

usage() {
	cat <<EOF
usage: $prog [--quick] [--help]

Installs what is missing (as root), builds, starts a throwaway PostgreSQL
and runs every test, then a ${fuzz_seconds} s fuzz smoke test.

  --quick   only the normal build and its tests (no ASan build, no fuzz)
  --help    this text

Build directories: build/ and build-asan/ (and build-fuzz/ for the fuzz
smoke test). The PostgreSQL cluster is recorded in build/test-pg.env and
stopped when this script exits.
EOF
}

while (($# > 0)); do
	case $1 in
	--quick) quick=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "$prog: unknown option '$1'" >&2
		usage >&2
		exit 2
		;;
	esac
	shift
done

t_start=$SECONDS
failed=()
stage_rc=0

# stage NAME COMMAND...: runs COMMAND with errexit in force, in a subshell
# so that any failing command inside stops the stage, prints one summary
# line and leaves COMMAND's status in stage_rc. It must not be called in a
# condition (if, ||, &&): bash ignores errexit in everything run from
# there, even after set -e.
stage() {
	local name=$1 t0=$SECONDS
	shift

	echo "==> $name"
	set +e
	(
		set -e
		"$@"
	)
	stage_rc=$?
	set -e
	if ((stage_rc == 0)); then
		printf '%s: %-10s ok (%d s)\n' "$prog" "$name" $((SECONDS - t0))
	else
		printf '%s: %-10s FAILED, status %d (%d s)\n' "$prog" "$name" \
		    "$stage_rc" $((SECONDS - t0))
		failed+=("$name")
	fi
}

skip() {
	printf '%s: %-10s skipped (%s)\n' "$prog" "$1" "$2"
}

finish() {
	if ((${#failed[@]} > 0)); then
		echo "$prog: FAILED: ${failed[*]} ($((SECONDS - t_start)) s)"
		exit 1
	fi
	echo "$prog: all stages passed ($((SECONDS - t_start)) s)"
	exit 0
}

# A stage that the next ones need: stop at once when it fails.
must() {
	stage "$@"
	((stage_rc == 0)) || finish
}

do_packages() {
	ensure_packages
}

do_build() {
	local dir=$1
	shift

	cmake -S "$repo" -B "$repo/$dir" "$@"
	cmake --build "$repo/$dir" -j2
}

pg_env_file=$repo/build/test-pg.env

stop_pg() {
	SAGA_PG_ENV=$pg_env_file bash "$repo/scripts/pg.sh" stop >/dev/null ||
	    echo "$prog: stopping PostgreSQL failed (see above)" >&2
}

# pg_stat_statements: store_test counts how often sagad's statements are
# planned.
do_postgres() {
	SAGA_PG_ENV=$pg_env_file SAGA_PG_PRELOAD=pg_stat_statements \
		bash "$repo/scripts/pg.sh" start
}

do_ctest() {
	local dir=$1
	shift

	cd "$repo/$dir"
	ctest --output-on-failure -j2 "$@"
}

do_ctest_asan() {
	# stage runs this in a subshell: the exports end with it.
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	do_ctest build-asan -E '^(bench_test|chaos_test)$'
}

do_fuzz() {
	bash "$repo/scripts/fuzz.sh" "$fuzz_seconds"
}

must packages do_packages
must build do_build build -DCOORD_WERROR=ON -DCOORD_SANITIZER= -DCOORD_FUZZ=OFF
if ((quick)); then
	skip build-asan "--quick"
else
	must build-asan do_build build-asan -DCOORD_SANITIZER=address \
	    -DCOORD_FUZZ=OFF
fi

# From here on a cluster may run: stop it however the script ends.
trap stop_pg EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# A cluster left over from an interrupted run of this script: replace it.
if [[ -f $pg_env_file ]]; then
	stop_pg
fi
must postgres do_postgres
eval "$(SAGA_PG_ENV=$pg_env_file bash "$repo/scripts/pg.sh" env)"
export SAGA_TEST_REQUIRE_PG=1

if ((quick)); then
	stage tests do_ctest build
else
	stage tests do_ctest build -E '^chaos_test_two_instances$'
fi
if ((quick)); then
	skip tests-asan "--quick"
else
	stage tests-asan do_ctest_asan
fi

if ((quick)); then
	skip fuzz "--quick"
elif ! command -v clang >/dev/null; then
	skip fuzz "no clang"
elif [[ ! -f $repo/tests/fuzz/proto_fuzz.c ]]; then
	skip fuzz "no tests/fuzz/proto_fuzz.c yet"
else
	stage fuzz do_fuzz
fi

finish
