#!/bin/sh
# SPDX-License-Identifier: MIT
#
# install_test.sh: `cmake --install` gives a participant outside this
# repository all it needs. Installs the build tree into a temporary prefix
# under it, checks the installed files, then copies the installed example
# participant (echo.c) into a directory outside the repository and builds
# it with nothing but `cc echo.c $(pkg-config --cflags --libs
# saga-participant)`, and runs it.
#
# usage: install_test.sh BUILD_DIR LIBDIR DOCDIR CC EXTRA_CFLAGS EXPECT_SAGACTL
#   LIBDIR, DOCDIR  CMAKE_INSTALL_LIBDIR and _DOCDIR (relative)
#   EXTRA_CFLAGS    the sanitizer flags the build uses ("" for none)
#   EXPECT_SAGACTL  1 if sagactl is built and must be installed

set -eu

build=$1 libdir=$2 docdir=$3 cc=$4 extra=$5 want_sagactl=$6

fail() {
	echo "install_test: FAIL: $*" >&2
	exit 1
}

prefix=$(mktemp -d "$build/install-test.XXXXXX")
work=$(mktemp -d /tmp/saga-participant-example.XXXXXX)
cleanup() {
	rm -rf -- "$prefix" "$work"
}
trap cleanup EXIT

if ! cmake --install "$build" --prefix "$prefix" >"$prefix.log" 2>&1; then
	cat "$prefix.log" >&2
	rm -f -- "$prefix.log"
	fail "cmake --install failed"
fi
rm -f -- "$prefix.log"

for f in bin/sagad "$libdir/libsaga-participant.a" \
    include/saga/participant.h include/saga/proto_val.h \
    include/saga/saga_err.h include/saga/saga_id.h \
    "$libdir/pkgconfig/saga-participant.pc" "$docdir/examples/echo.c"; do
	[ -f "$prefix/$f" ] || fail "$f is not installed"
done
if [ "$want_sagactl" = 1 ]; then
	[ -f "$prefix/bin/sagactl" ] || fail "bin/sagactl is not installed"
fi
[ -x "$prefix/bin/sagad" ] || fail "bin/sagad is not executable"

# Only the installed files: no path into the repository or the build tree
# (the prefix itself lives under the build tree, so look for its sibling
# paths).
src_dir=$(cd "$(dirname "$0")/../.." && pwd)
if grep -rl -- "$src_dir/" "$prefix/include" "$prefix/$libdir/pkgconfig" \
    >/dev/null 2>&1; then
	fail "installed headers or .pc file refer to the source tree"
fi

cp "$prefix/$docdir/examples/echo.c" "$work/"
cd "$work"
flags=$(PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" \
    pkg-config --cflags --libs saga-participant) ||
	fail "pkg-config does not know saga-participant"
echo "install_test: cc echo.c $flags"
# shellcheck disable=SC2086 # flags are words
if ! "$cc" $extra -o echo echo.c $flags >cc.log 2>&1; then
	cat cc.log >&2
	fail "the example does not build with pkg-config alone"
fi
./echo --help >help.txt 2>&1 || {
	cat help.txt >&2
	fail "the example does not run"
}
grep -q "echo.say" help.txt || fail "unexpected --help output"
# Without a database it must say so and exit non-zero, not crash.
set +e
env -u DATABASE_URL ./echo --listen tcp://127.0.0.1:1 >run.txt 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || {
	cat run.txt >&2
	fail "echo without --db exited $rc, expected 1"
}
grep -q conninfo run.txt || fail "echo without --db did not name conninfo"
echo "install_test: ok ($prefix)"
