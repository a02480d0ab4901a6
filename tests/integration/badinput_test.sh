#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# badinput_test.sh BUILD_DIR: bad input at every door of the demo cluster
# (its own PostgreSQL and ports). Each endpoint — sagad's client API and
# the four services — is sent, with tests/tools/proto_dump: bytes that are not
# msgpack, a truncated message, a message of an unknown protocol version,
# one of an unknown type, one with a field of the wrong type, one with
# a string that is not UTF-8, one with trailing bytes, an empty message
# and an oversized one (2 MiB). Every
# one must get an ERROR answer naming what was wrong and a line in that
# process's log, every process must still run afterwards, the 20 sagas started just before must complete,
# and an order started afterwards too, with the data consistent (stock
# and money conserved). sagactl gets the same bad messages as replies
# (from nngcat): a clear error and exit 3 each (sagad may have acted). sagad --check and sagactl
# get a bad YAML file and bad JSON: clear errors, exit 1 and 2. Last, a
# client that sends bad requests on one connection, never reading the
# answers, until sagad stops reading them (every context holds an answer
# nobody reads): sagad closes that connection once an answer has waited
# 10 s, and answers another client within 20 s of that stop (before, no
# other client got an answer while the connection stayed); its warnings
# about the refused requests are at most 10 a second, the rest counted
# (before: one line each, tens of thousands). Before that, a burst of
# bad requests then silence, and a burst then a stop of sagad: the count
# of the warnings not written is in the log each time (before: only with
# a next warning), and with the lines written makes every request.

set -euo pipefail

build=$(cd "${1:?usage: badinput_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state=$(mktemp -d /tmp/saga-badinput-test.XXXXXX)
sagactl=$build/coordinator/sagactl

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
# shellcheck source=tests/support/proc.sh
source "$repo/tests/support/proc.sh"

base=
saga_ports_reserve base 6 || { echo "badinput_test: no free ports" >&2; exit 1; }
export SAGA_BUILD_DIR=$build SAGA_CLUSTER_DIR=$state/cluster
export SAGA_PORT_BASE=$base
cleanup() {
	"$repo/scripts/cluster.sh" stop >/dev/null 2>&1 || true
	rm -rf "$state"
}
trap cleanup EXIT
fail() {
	saga_fail badinput_test 10 "$*" "$state"/cluster/logs/*.log
}

"$repo/scripts/cluster.sh" start >"$state/start.log" 2>&1 ||
	{ cat "$state/start.log" >&2; fail "cluster did not start"; }
# shellcheck disable=SC1091
source "$state/cluster/cluster.env"

# The bad messages, as files of bytes.
d=$state/msgs
mkdir -p "$d"
# 0xc1 is a byte msgpack never uses.
printf '\xc1 this is not msgpack' >"$d/garbage"
# {"v": 1, "type": 8} (PING) cut after 5 bytes.
printf '\x82\xa1\x76\x01\xa4' >"$d/truncated"
# {"v": 9, "type": 8}
printf '\x82\xa1\x76\x09\xa4\x74\x79\x70\x65\x08' >"$d/version"
# {"v": 1, "type": 99}
printf '\x82\xa1\x76\x01\xa4\x74\x79\x70\x65\x63' >"$d/msgtype"
# {"v": 1, "type": "PING"}
printf '\x82\xa1\x76\x01\xa4\x74\x79\x70\x65\xa4PING' >"$d/wrongtype"
# {"v": 1, "type": "\xff"}: a string that is not UTF-8 (before its type
# is looked at: the whole message is checked first). Kept as text, such
# a string failed a whole batch of sagad's (an error, a key, a note).
printf '\x82\xa1\x76\x01\xa4\x74\x79\x70\x65\xa1\xff' >"$d/utf8"
# {"v": 1, "type": 8} then one byte more.
printf '\x82\xa1\x76\x01\xa4\x74\x79\x70\x65\x08\xc0' >"$d/trailing"
: >"$d/empty"
# A 2 MiB string inside a map: above the 1 MiB limit.
{
	printf '\x81\xa1\x76\xdb\x00\x20\x00\x00'
	head -c 2097152 /dev/zero | tr '\0' 'x'
} >"$d/oversized"

declare -A want=(
	[garbage]=EMALFORMED [truncated]=ETRUNC [version]=EVERSION
	[msgtype]=EMSGTYPE [wrongtype]=ETYPE [trailing]=ETRAILING
	[empty]=ETRUNC [oversized]=ETOOBIG [utf8]=EMALFORMED
)
declare -A codes=(
	[ETRUNC]=20 [ETRAILING]=21 [ETOOBIG]=22 [ETYPE]=25 [EMSGTYPE]=27
	[EVERSION]=28 [EMALFORMED]=29
)
# Sagas in flight while the bad input arrives: none may be lost.
inflight=20
for ((i = 0; i < inflight; i++)); do
	"$sagactl" start create_order --input \
	    '{"customer_id": "alice", "sku": "WIDGET", "qty": 1, "amount": 100}' \
	    >/dev/null || fail "start $i before the bad input failed"
done
urls=("$SAGA_COORDINATOR" "$ORDERS_URL" "$INVENTORY_URL" "$PAYMENTS_URL"
	"$SHIPPING_URL")
for url in "${urls[@]}"; do
	for m in "${!want[@]}"; do
		out=$("$build/tests/proto_dump" --send "$url" <"$d/$m") ||
			fail "$url: no readable answer to the $m message: $out"
		[[ $out == "ERROR ${codes[${want[$m]}]} ${want[$m]}: "* ]] ||
			fail "$url: the answer to $m is not ERROR ${want[$m]}: $out"
	done
done
"$repo/scripts/cluster.sh" status >"$state/status.txt" ||
	{ cat "$state/status.txt" >&2; fail "a process died on bad input"; }
# And in the log of each (DESIGN.md, invariant 7): a line per kind.
for p in sagad orders inventory payments shipping; do
	for code in "${want[@]}"; do
		grep -q "refused a request: $code: " "$state/cluster/logs/$p.log" ||
			fail "$p did not log the refused $code request"
	done
done

out=$("$sagactl" start create_order --wait --timeout 30s --input \
	'{"customer_id": "alice", "sku": "WIDGET", "qty": 1, "amount": 100}') ||
	fail "an order after the bad input did not complete: $out"
for _ in $(seq 1 300); do
	[[ $(psql -X -tA -d saga_coordinator -c "SELECT count(*) FROM saga_instance WHERE state IN ('RUNNING', 'COMPENSATING')") == 0 ]] && break
	sleep 0.1
done
n=$(psql -X -tA -d saga_coordinator -c "SELECT count(*) FROM saga_instance WHERE state = 'COMPLETED'")
((n == inflight + 1)) ||
	fail "$n sagas COMPLETED, expected $((inflight + 1)): $(psql -X -tA -d saga_coordinator -c "SELECT state, count(*) FROM saga_instance GROUP BY state")"
[[ $(psql -X -tA -d saga_inventory -c "SELECT sum(available + reserved) FROM stock") == 1501 ]] ||
	fail "stock not conserved"
[[ $(psql -X -tA -d saga_payments -c "SELECT (SELECT sum(balance) FROM accounts) + (SELECT coalesce(sum(amount), 0) FROM payments WHERE state = 'CHARGED')") == 1500500 ]] ||
	fail "money not conserved"

# The CLI fed the same bad messages as replies (nngcat answers every
# request with one of the files): a clear error, no crash, and exit 3:
# the START reached the peer, which may have acted on it (the error says
# the saga may have been started and the key to start it with).
declare -A says=(
	[garbage]="invalid msgpack byte" [truncated]="truncated"
	[version]="protocol version 9 not supported" [msgtype]="unknown message type"
	[wrongtype]="expected unsigned integer" [trailing]="trailing bytes"
	[empty]="truncated" [oversized]="exceeds the limit"
	[utf8]="not valid UTF-8"
)
fake=tcp://127.0.0.1:$((base + 5))
for m in "${!says[@]}"; do
	nngcat --rep0 --listen "$fake" --file "$d/$m" >/dev/null 2>&1 &
	fpid=$!
	for _ in $(seq 1 100); do
		[[ -n $(ss -Hltn "sport = :$((base + 5))") ]] && break
		sleep 0.05
	done
	rc=0
	"$sagactl" start create_order --coordinator "$fake" --input '{}' \
	    >"$state/cli.out" 2>&1 || rc=$?
	kill "$fpid" 2>/dev/null || true
	wait "$fpid" 2>/dev/null || true
	((rc == 3)) || fail "sagactl given a $m reply exited $rc: $(cat "$state/cli.out")"
	grep -q "malformed reply: .*${says[$m]}.*may have been started.*--key sagactl-" "$state/cli.out" ||
		fail "sagactl given a $m reply: no clear error: $(cat "$state/cli.out")"
done

# Bad YAML and bad JSON at the command line.
printf 'sagas:\n  - name: x\n    steps: [\n' >"$state/bad.yaml"
rc=0
"$build/coordinator/sagad" --check --config "$state/bad.yaml" \
	>"$state/check.out" 2>&1 || rc=$?
((rc == 1)) || fail "sagad --check of a bad file exited $rc"
grep -q "bad.yaml:[0-9]*:[0-9]*: " "$state/check.out" ||
	fail "sagad --check gave no file:line:column: $(cat "$state/check.out")"
# --check with --migrate: refused, the database left alone (--migrate
# went first, and the check wrote to the database).
rc=0
"$build/coordinator/sagad" --check --migrate --config "$state/bad.yaml" \
	--db "host=/nonexistent" >"$state/checkmig.out" 2>&1 || rc=$?
((rc == 2)) && grep -q "\-\-check and --migrate go separately" "$state/checkmig.out" ||
	fail "sagad --check --migrate: exit $rc: $(cat "$state/checkmig.out")"
# Endpoints that nng cannot dial, which sagad refused only at start-up:
# --check and sagactl validate name each at its line and column.
# (An ipc:// path longer than a Unix socket's address holds, 108 bytes
# here, made sagad fail only at start.)
long_ipc=ipc:///tmp/$(printf 'x%.0s' $(seq 1 103))
printf 'participants:\n  p: {endpoints: ["tcp://h/x:1"]}\n  q: {endpoints: ["tcp://*:1"]}\n  r: {endpoints: ["%s"]}\nsagas: []\n' \
	"$long_ipc" >"$state/urls.yaml"
rc=0
"$build/coordinator/sagad" --check --config "$state/urls.yaml" \
	>"$state/urls.out" 2>&1 || rc=$?
((rc == 1)) &&
	grep -q 'urls.yaml:2:20: endpoints: tcp://h/x:1 cannot be dialled: ' "$state/urls.out" &&
	grep -q 'urls.yaml:3:20: endpoints: tcp://\*:1 cannot be dialled: ' "$state/urls.out" &&
	grep -qF "urls.yaml:4:20: endpoints: $long_ipc cannot be dialled: an ipc:// path is at most 107 bytes (a Unix socket's), this one has 108" "$state/urls.out" ||
	fail "sagad --check of endpoints nng cannot dial: exit $rc: $(cat "$state/urls.out")"
rc=0
"$sagactl" validate "$state/urls.yaml" >"$state/urls.out" 2>&1 || rc=$?
((rc == 1)) &&
	grep -q 'urls.yaml:2:20: endpoints: tcp://h/x:1 cannot be dialled: ' "$state/urls.out" ||
	fail "sagactl validate of endpoints nng cannot dial: exit $rc: $(cat "$state/urls.out")"
rc=0
"$sagactl" start create_order --input '{"customer_id": ' \
	>"$state/json.out" 2>&1 || rc=$?
((rc == 2)) || fail "sagactl with bad JSON exited $rc"
grep -q "1:1[0-9]*:\|line\|column\|--input" "$state/json.out" ||
	fail "sagactl's JSON error does not say where: $(cat "$state/json.out")"
# A burst of bad requests, then silence: the warnings about them are at
# most 10 a second and the rest are counted; the count is written once
# the burst's second is over, and, for a burst just before sagad stops,
# at the stop. Before, it was written only with the next warning, so the
# count of the last burst never was. Every request refused is either on
# a line of its own or in a count: exactly $burst. (A raw SP client over
# TCP, as below, sends them all at once and reads every answer.)
cat >"$state/burst.py" <<'PY'
import socket, struct, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port), timeout=10)
s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
buf = bytearray()
for i in range(n):
    body = struct.pack(">I", 0x80000000 | (i + 1)) + b"\xc1"
    buf += struct.pack(">Q", len(body)) + body
s.sendall(buf)
data, got = bytearray(), 0

def need(k):
    while len(data) < k:
        chunk = s.recv(1 << 16)
        if not chunk:
            print("closed after %d answers" % got, flush=True)
            sys.exit(1)
        data.extend(chunk)

need(8)  # sagad's SP header
del data[:8]
while got < n:
    need(8)
    k = struct.unpack(">Q", data[:8])[0]
    need(8 + k)
    del data[:8 + k]
    got += 1
print(got, flush=True)
PY
sagad_log=$state/cluster/logs/sagad.log
api_port=${SAGA_COORDINATOR##*:}
burst=500
# warn_lines: the warnings about clients sagad wrote, one a line.
warn_lines() {
	grep -c "api: refused a request\|api: a client did not read its answer" \
		"$sagad_log" || true
}
# warn_total: those, plus the ones counted as not written.
warn_total() {
	awk '/api: refused a request|api: a client did not read its answer/ {
		n++
	}
	match($0, /and [0-9]+ such warnings not written/) {
		n += substr($0, RSTART + 4, RLENGTH - 4) + 0
	}
	END { print n + 0 }' "$sagad_log"
}
lines0=$(warn_lines)
total0=$(warn_total)
t0=$SECONDS
out=$(python3 "$state/burst.py" 127.0.0.1 "$api_port" "$burst") &&
	[[ $out == "$burst" ]] ||
	fail "a burst of $burst bad requests was not answered: $out"
# Within 2 s: the burst's second ends, then a turn of sagad's loop (at
# most 1 s apart) writes the count. Waited for up to 10 s.
for _ in $(seq 1 100); do
	(($(warn_total) - total0 >= burst)) && break
	sleep 0.1
done
total=$(($(warn_total) - total0))
lines=$(($(warn_lines) - lines0))
((total == burst)) ||
	fail "a burst of $burst bad requests, then silence: $lines warnings written and $((total - lines)) counted as not written, not $burst in all"
((lines <= 10 * (SECONDS - t0 + 2))) ||
	fail "a burst of $burst bad requests: $lines warnings written in $((SECONDS - t0)) s, more than 10 a second"
stopped0=$(grep -c STOPPED "$sagad_log" || true)
lines0=$(warn_lines)
total0=$(warn_total)
out=$(python3 "$state/burst.py" 127.0.0.1 "$api_port" "$burst") &&
	[[ $out == "$burst" ]] ||
	fail "a burst of $burst bad requests was not answered: $out"
"$repo/scripts/cluster.sh" restart sagad >"$state/restart.log" 2>&1 ||
	{ cat "$state/restart.log" >&2; fail "sagad did not start again"; }
(($(grep -c STOPPED "$sagad_log") > stopped0)) ||
	fail "sagad did not stop cleanly after a burst of bad requests"
total=$(($(warn_total) - total0))
lines=$(($(warn_lines) - lines0))
((total == burst)) ||
	fail "a burst of $burst bad requests, then a stop: $lines warnings written and $((total - lines)) counted as not written, not $burst in all"
lines0=$(warn_lines)
mark=$(wc -l <"$sagad_log")
# A client that never reads (raw SP over TCP: the REQ header, then PINGs
# with request ids; a small receive buffer).
cat >"$state/noread.py" <<'PY'
import os, socket, struct, sys, time
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((host, port))
s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
# Send until sagad stops reading (each of its contexts holds an answer
# this client does not read): "stuck" once a send makes no progress for
# 3 s (the rest of the message it was in stays unsent).
s.settimeout(3)
bad = b"\xc1"  # not msgpack: each is refused, with a warning
stuck = False

def send_all(data):
    global stuck
    view, off = memoryview(data), 0
    while off < len(view):
        try:
            off += s.send(view[off:])
        except socket.timeout:
            stuck = True
            print("stuck", flush=True)
            return True
        except OSError:
            return False
    return True

def closed():
    print("closed" if stuck else "closed before it was held", flush=True)
    sys.exit(0 if stuck else 1)

for chunk in range(2000):
    buf = bytearray()
    for i in range(chunk * 1000, chunk * 1000 + 1000):
        body = struct.pack(">I", 0x80000000 | (i + 1)) + bad
        buf += struct.pack(">Q", len(body)) + body
    if not send_all(buf):
        closed()
    if stuck:
        break
if not stuck:
    print("sagad read every request: nothing held", flush=True)
    sys.exit(1)
# Once told (the file go exists: the test has seen another client
# answered), read what sagad sent: a connection it closed ends (EOF or a
# reset) once its answers are read; one it kept open does not.
t0 = time.time()
while not os.path.exists(sys.argv[3]):
    if time.time() - t0 > 60:
        print("never told to read", flush=True)
        sys.exit(1)
    time.sleep(0.1)
s.settimeout(10)
try:
    while s.recv(1 << 20):
        pass
except socket.timeout:
    print("still open: no end after the answers", flush=True)
    sys.exit(1)
except OSError:
    pass
closed()
PY
python3 "$state/noread.py" 127.0.0.1 "$api_port" "$state/noread.go" \
	>"$state/noread.out" 2>&1 &
noread=$!
for _ in $(seq 1 600); do
	grep -q stuck "$state/noread.out" && break
	kill -0 "$noread" 2>/dev/null ||
		fail "the client that does not read: $(cat "$state/noread.out")"
	sleep 0.1
done
grep -q stuck "$state/noread.out" || fail "sagad never stopped reading the client"
t0=$SECONDS
answered=0
while ((SECONDS - t0 < 20)); do
	if "$sagactl" ping --timeout 2s >/dev/null 2>&1; then
		answered=1
		break
	fi
done
((answered)) || fail "sagad answered no other client for 20 s while one did not read"
touch "$state/noread.go"
wait "$noread" || fail "the client that does not read: $(cat "$state/noread.out")"
grep -q "did not read its answer within 10000 ms; closing its connection" \
    "$state/cluster/logs/sagad.log" || fail "sagad did not say it closed the connection"
warned=$(($(warn_lines) - lines0))
tail -n +"$((mark + 1))" "$sagad_log" >"$state/noread.log"
grep -q "such warnings not written, at most 10 a second" \
    "$state/noread.log" && ((warned < 1000)) ||
	fail "sagad wrote $warned warnings about refused requests, not at most 10 a second"
echo "badinput_test: a client that does not read its answers was cut off; the others were answered"
echo "badinput_test: 8 kinds of bad message at 5 endpoints answered with their error, and given to sagactl as replies; every process up; $inflight sagas in flight meanwhile completed; data consistent"
