# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# deps.sh: the Debian packages the project needs, and ensure_packages,
# which installs the missing ones (as root: apt-get update once, then a
# non-interactive apt-get install -y). Sourced by test.sh and demo.sh.

# What building and running the demo needs (demo.sh): the libraries, the
# PostgreSQL server, ss (iproute2: cluster.sh checks its ports), runuser
# (util-linux: the server as postgres when root) and openssl (certs.sh,
# demo.sh --tls). cmocka because the default build has the tests.
saga_demo_packages=(build-essential cmake pkg-config libpq-dev libnng-dev
	libmsgpack-dev libcmocka-dev libfyaml-dev postgresql iproute2
	util-linux openssl)
# And the tests (test.sh): nngcat (nng-utils), clang and its runtime for
# the fuzzer, valgrind; curl reads the metrics endpoints (ops_test,
# bench.sh, sagad_test); python3 checks the benchmark's JSON (bench_test)
# and plays a client that does not read (badinput_test).
saga_packages=("${saga_demo_packages[@]}" nng-utils clang curl python3
	libclang-rt-14-dev valgrind)

# ensure_packages [PACKAGE...]: installs what is missing of the given
# packages (default: saga_packages). Returns 1 when something is missing
# and this is not root.
ensure_packages() {
	local p missing=() want=("$@")

	((${#want[@]} > 0)) || want=("${saga_packages[@]}")
	if ! command -v dpkg >/dev/null; then
		echo "no dpkg: not a Debian system; make sure these are" \
		    "installed: ${want[*]}"
		return 0
	fi
	for p in "${want[@]}"; do
		if ! dpkg -s "$p" 2>/dev/null |
		    grep -q '^Status: install ok installed'; then
			missing+=("$p")
		fi
	done
	if ((${#missing[@]} == 0)); then
		echo "all ${#want[@]} packages are installed"
		return 0
	fi
	if [[ $(id -u) -ne 0 ]]; then
		echo "missing packages: ${missing[*]}" >&2
		echo "install them as root:" \
		    "apt-get update && apt-get install -y ${missing[*]}" >&2
		return 1
	fi
	echo "installing: ${missing[*]}"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}
