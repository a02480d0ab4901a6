#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# sim.sh: runs the deterministic protocol simulation (tests/sim/saga_sim.c)
# for more seeds than the test suite does.
#
#   scripts/sim.sh [--seeds N] [--first SEED] [--sagas N] [--verbose]
#
# Builds build/ if needed. Prints the seed of any violation, with the
# command that reproduces it; exits 1 if there was one.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SAGA_BUILD_DIR:-$repo/build}

case ${1:-} in
-h | --help)
	sed -n '3,10p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac
if [[ ! -f $build/CMakeCache.txt ]]; then
	cmake -S "$repo" -B "$build" >/dev/null
fi
cmake --build "$build" -j2 --target saga_sim >/dev/null
exec "$build/tests/saga_sim" "$@"
