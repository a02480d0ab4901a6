# shellcheck shell=bash
# ports.sh: TCP ports for the listeners that the scripts and the tests
# start (sagad, the services, proxies, metrics, PostgreSQL). Source it; it
# defines saga_ports_reserve.
#
# saga_ports_reserve VAR [N]
#   Sets VAR to the first of N (default 16, at most 64) consecutive ports
#   that no TCP socket on this machine uses, in any state, and keeps them
#   for this shell and its children until they all exit.
#
# Why not any free port: the kernel hands the ports of its ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default) to
# outgoing connections at any moment, and a connection there, or its
# TIME_WAIT, keeps a listener from binding the port: "Address in use",
# although nothing listened when the port was picked. So the ports come
# from below that range, in blocks of 64 from 10240 up. Two scripts that
# run at once could still pick one block between the check and the bind:
# each block has a lock file, and the shell that takes a block holds its
# lock (flock on a descriptor that its children inherit).
#
# SAGA_PORT_RANGE=LO-HI sets the range to pick from instead (LO and HI
# multiples of 64 apart), where a firewall allows only some ports.

saga_ports_reserve() {
	local _var=$1 _n=${2:-16} _lo=10240 _hi=32768 _eph _blocks _b _p _f _fd
	local _used _dir _i _ok

	if ((_n < 1 || _n > 64)); then
		echo "saga_ports_reserve: N must be 1-64, not $_n" >&2
		return 1
	fi
	if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
		read -r _eph _ </proc/sys/net/ipv4/ip_local_port_range
		((_eph < _hi)) && _hi=$_eph
	fi
	# A machine whose ephemeral range starts low: take ports above it
	# instead when there is room, else any (the check below still holds).
	if ((_hi - _lo < 64 * 16)); then
		_lo=10240
		_hi=65472
	fi
	if [[ -n ${SAGA_PORT_RANGE:-} ]]; then
		if ! [[ $SAGA_PORT_RANGE =~ ^([0-9]+)-([0-9]+)$ ]] ||
		    ((BASH_REMATCH[1] < 1024 || BASH_REMATCH[2] > 65536 ||
		    BASH_REMATCH[2] - BASH_REMATCH[1] < 64)); then
			echo "saga_ports_reserve: SAGA_PORT_RANGE=$SAGA_PORT_RANGE: want LO-HI, 1024 <= LO, LO + 64 <= HI <= 65536" >&2
			return 1
		fi
		_lo=${BASH_REMATCH[1]}
		_hi=${BASH_REMATCH[2]}
	fi
	_blocks=$(((_hi - _lo) / 64))
	_dir=${TMPDIR:-/tmp}/saga-ports-$(id -u)
	mkdir -p "$_dir" 2>/dev/null || _dir=

	for ((_i = 0; _i < 200; _i++)); do
		_b=$((_lo + 64 * ((RANDOM * 32768 + RANDOM) % _blocks)))
		_fd=
		if [[ -n $_dir ]] && command -v flock >/dev/null; then
			_f=$_dir/$_b.lock
			exec {_fd}>>"$_f" || continue
			if ! flock -n "$_fd"; then
				exec {_fd}>&-
				continue
			fi
		fi
		_ok=1
		if command -v ss >/dev/null; then
			# Every TCP socket whose local port is in the block.
			_used=$(ss -Htan "( sport >= :$_b and sport < :$((_b + _n)) )" \
			    2>/dev/null | head -n 1)
			[[ -z $_used ]] || _ok=0
		else
			for ((_p = _b; _p < _b + _n; _p++)); do
				if (exec 3<>"/dev/tcp/127.0.0.1/$_p") 2>/dev/null; then
					_ok=0
					break
				fi
			done
		fi
		if ((_ok)); then
			printf -v "$_var" '%s' "$_b"
			return 0
		fi
		[[ -z $_fd ]] || exec {_fd}>&-
	done
	echo "saga_ports_reserve: found no $_n free ports in $_lo-$_hi" >&2
	return 1
}
