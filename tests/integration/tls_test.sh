#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tls_test.sh BUILD_DIR: mutual TLS on every link of sagad. With a
# throwaway CA (scripts/certs.sh), sagad listens on tls+tcp:// and dials a
# participant on tls+tcp://; the test checks that:
#   - a client with a certificate from the CA starts a saga that completes
#     (sagad <-> participant over TLS too);
#   - a client without a certificate, one with a certificate from another
#     CA, and one that does not trust sagad's CA are all refused;
#   - a participant whose certificate comes from another CA never gets a
#     command: its saga does not complete; the same participant with its
#     CA given in the YAML (participants: NAME: tls: {ca: FILE}) does;
#   - a participant whose certificate is of the CA but for another host
#     (elsewhere.example, dialled as localhost) gets no command either,
#     and sagactl refuses to ping it; one dialled by address is checked
#     against the CA only, and sagad logs TLS-NAME-UNCHECKED;
#   - a service built on the participant library (the demo's orders)
#     answers a client with the CA's certificate and refuses one without
#     a certificate and one with another CA's, and refuses to start
#     (exit 1, naming both files) with a key that is not its
#     certificate's;
#   - sagad warns when it listens on a non-loopback address without TLS.
# Needs PostgreSQL (libpq's PG* variables, as scripts/test.sh sets them).

set -euo pipefail

build=$(cd "${1:?usage: tls_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d /tmp/saga-tls-test.XXXXXX)
sagad=$build/coordinator/sagad
sagactl=$build/coordinator/sagactl
tp=$build/tests/test_participant
pids=()
db=tls_test_$$

# shellcheck source=tests/support/proc.sh
source "$repo/tests/support/proc.sh"

cleanup() {
	saga_kill_children TERM "${pids[@]}"
	saga_dropdb "$db" "${db}_orders"
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	saga_fail tls_test 15 "$*" "$tmp"/*.log
}

saga_createdb "$db" || fail "no PostgreSQL server"
conninfo="host=${PGHOST:-localhost} port=${PGPORT:-5432} user=${PGUSER:-postgres} dbname=$db"

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"
p0=
saga_ports_reserve p0 7 || fail "no free ports"

"$repo/scripts/certs.sh" "$tmp/certs" sagad good client >/dev/null
c=$tmp/certs
api=$p0
good=$((p0 + 1))
bad=$((p0 + 2))
elsewhere=$((p0 + 5))

"$tp" --listen "tls+tcp://127.0.0.1:$good" --tls-ca "$c/ca.crt" \
	--tls-cert "$c/good.crt" --tls-key "$c/good.key" >"$tmp/good.log" 2>&1 &
pids+=($!)
"$tp" --listen "tls+tcp://127.0.0.1:$bad" --tls-ca "$c/ca.crt" \
	--tls-cert "$c/stranger.crt" --tls-key "$c/stranger.key" \
	>"$tmp/bad.log" 2>&1 &
pids+=($!)
cat >"$tmp/sagas.yaml" <<YAML
participants:
  good:
    endpoints: ["tls+tcp://127.0.0.1:$good"]
  bad:
    endpoints: ["tls+tcp://127.0.0.1:$bad"]
  # The same stranger, vouched for in the YAML: its own CA file.
  vouched:
    endpoints: ["tls+tcp://127.0.0.1:$bad"]
    tls: {ca: certs/other-ca.crt}
  # By name: an address is checked against the CA only.
  elsewhere:
    endpoints: ["tls+tcp://localhost:$elsewhere"]
defaults:
  timeout: 500ms
  retry: {max_attempts: 3, initial_backoff: 50ms, max_backoff: 100ms}
sagas:
  - name: trusted
    steps:
      - {name: one, participant: good, action: one.do, compensation: one.undo}
  - name: untrusted
    steps:
      - {name: two, participant: bad, action: two.do, compensation: two.undo}
  - name: vouched
    steps:
      - {name: three, participant: vouched, action: three.do, compensation: three.undo}
  - name: misnamed
    steps:
      - {name: four, participant: elsewhere, action: four.do, compensation: four.undo}
YAML
# Of the CA, but for another host.
"$tp" --listen "tls+tcp://127.0.0.1:$elsewhere" --tls-ca "$c/ca.crt" \
	--tls-cert "$c/elsewhere.crt" --tls-key "$c/elsewhere.key" \
	>"$tmp/elsewhere.log" 2>&1 &
pids+=($!)
"$sagad" --migrate --db "$conninfo" >/dev/null
"$sagad" --config "$tmp/sagas.yaml" --db "$conninfo" \
	--listen "tls+tcp://127.0.0.1:$api" --tls-ca "$c/ca.crt" \
	--tls-cert "$c/sagad.crt" --tls-key "$c/sagad.key" >"$tmp/sagad.log" 2>&1 &
pids+=($!)

url=tls+tcp://127.0.0.1:$api
trusted=(--coordinator "$url" --tls-ca "$c/ca.crt" --tls-cert "$c/client.crt"
	--tls-key "$c/client.key")
for _ in $(seq 1 100); do
	"$sagactl" ping "${trusted[@]}" --timeout 200ms >/dev/null 2>&1 && break
	sleep 0.05
done
"$sagactl" ping "${trusted[@]}" >/dev/null || fail "sagad does not answer a trusted client"

out=$("$sagactl" start trusted --input '{"n": 1}' --wait --timeout 20s "${trusted[@]}") ||
	fail "the trusted saga did not complete: $out"
[[ $(echo "$out" | tail -n 1) == COMPLETED ]] || fail "expected COMPLETED, got: $out"

# Refused clients: no certificate, another CA's certificate, and a client
# that does not trust sagad's CA.
"$sagactl" ping --coordinator "$url" --tls-ca "$c/ca.crt" --timeout 1s \
	>/dev/null 2>&1 && fail "a client without a certificate was accepted"
"$sagactl" ping --coordinator "$url" --tls-ca "$c/ca.crt" \
	--tls-cert "$c/stranger.crt" --tls-key "$c/stranger.key" --timeout 1s \
	>/dev/null 2>&1 && fail "a certificate from another CA was accepted"
"$sagactl" ping --coordinator "$url" --tls-ca "$c/other-ca.crt" \
	--tls-cert "$c/client.crt" --tls-key "$c/client.key" --timeout 1s \
	>/dev/null 2>&1 && fail "a client that distrusts sagad's CA got an answer"
"$sagactl" start trusted --input '{"n": 2}' --coordinator "$url" \
	--tls-ca "$c/ca.crt" >/dev/null 2>&1 &&
	fail "a saga was started without a client certificate"

# The participants dialled by address are checked against the CA only,
# and sagad says so.
grep -q "TLS-NAME-UNCHECKED participant=good: tls+tcp://127.0.0.1:$good is an address" \
	"$tmp/sagad.log" || fail "no TLS-NAME-UNCHECKED line for good"

# refused SAGA N: starts SAGA, whose participant sagad must refuse to
# talk to: the saga gives up its action and keeps retrying the
# compensation (compensations are never dropped). Sets id.
refused() {
	local st
	id=$("$sagactl" start "$1" --input "{\"n\": $2}" "${trusted[@]}" | head -n 1)
	for _ in $(seq 1 200); do
		st=$(psql -X -tA -d "$db" -c "SELECT state FROM saga_instance WHERE id = '$id'")
		[[ $st == COMPENSATING ]] && return 0
		sleep 0.05
	done
	fail "saga $1 should be compensating, it is $st"
}

# A participant with a stranger's certificate: nothing it sent was ever
# answered.
refused untrusted 3
psql -X -tA -d "$db" -c "SELECT last_error FROM saga_instance WHERE id = '$id'" |
	grep -q "step two gave up: timeout: no reply from bad" ||
	fail "the untrusted saga does not say why it gave up"
[[ $(psql -X -tA -d "$db" -c "SELECT count(*) FROM saga_event WHERE event = 'step_ok'") == 1 ]] ||
	fail "only the trusted saga's step may have succeeded"

# A participant whose certificate is of the CA but names another host:
# refused like the stranger, and by sagactl.
refused misnamed 5
[[ $(psql -X -tA -d "$db" -c "SELECT count(*) FROM saga_event WHERE event = 'step_ok'") == 1 ]] ||
	fail "the misnamed participant answered a command"
"$sagactl" ping "tls+tcp://localhost:$elsewhere" --tls-ca "$c/ca.crt" \
	--tls-cert "$c/client.crt" --tls-key "$c/client.key" --timeout 1s \
	>/dev/null 2>&1 && fail "sagactl accepted a certificate for another host"
"$sagactl" ping "tls+tcp://localhost:$good" --tls-ca "$c/ca.crt" \
	--tls-cert "$c/client.crt" --tls-key "$c/client.key" --timeout 5s \
	>/dev/null || fail "sagactl refused a certificate that names localhost"

# The stranger's CA given for one participant in the YAML (tls: {ca:
# ...}, relative to the YAML file): sagad verifies that participant with
# it, and the saga completes.
out=$("$sagactl" start vouched --input '{"n": 4}' --wait --timeout 20s \
	"${trusted[@]}") || fail "the vouched saga did not complete: $out"

# A service built on the participant library (the demo's orders) over
# mutual TLS: a client with the CA's certificate gets PONG; one without a
# certificate, and one with another CA's, are refused.
psql -X -q -d postgres -c "CREATE DATABASE ${db}_orders" >/dev/null
orders_db="host=${PGHOST:-localhost} port=${PGPORT:-5432} user=${PGUSER:-postgres} dbname=${db}_orders"
"$build/participants/saga-orders" --migrate --db "$orders_db" >/dev/null 2>&1 ||
	fail "saga-orders --migrate failed"
ourl=tls+tcp://127.0.0.1:$((p0 + 4))
"$build/participants/saga-orders" --listen "$ourl" --db "$orders_db" \
	--tls-ca "$c/ca.crt" --tls-cert "$c/good.crt" --tls-key "$c/good.key" \
	>"$tmp/orders.log" 2>&1 &
pids+=($!)
up=0
for _ in $(seq 1 100); do
	if "$sagactl" ping "$ourl" --tls-ca "$c/ca.crt" --tls-cert "$c/client.crt" \
	    --tls-key "$c/client.key" --timeout 200ms >/dev/null 2>&1; then
		up=1
		break
	fi
	sleep 0.1
done
((up)) || fail "the TLS orders service does not answer a client of its CA"
"$sagactl" ping "$ourl" --tls-ca "$c/ca.crt" --timeout 1s >/dev/null 2>&1 &&
	fail "the orders service accepted a client without a certificate"
"$sagactl" ping "$ourl" --tls-ca "$c/ca.crt" --tls-cert "$c/stranger.crt" \
	--tls-key "$c/stranger.key" --timeout 1s >/dev/null 2>&1 &&
	fail "the orders service accepted a certificate from another CA"
# The same service given another certificate's key: nng takes the pair,
# and the service said PARTICIPANT-START and then failed every handshake
# with nothing in its log. The library refuses it at start.
rc=0
timeout 20 "$build/participants/saga-orders" --db "$orders_db" \
	--listen "tls+tcp://127.0.0.1:$((p0 + 6))" --tls-ca "$c/ca.crt" \
	--tls-cert "$c/good.crt" --tls-key "$c/elsewhere.key" \
	>"$tmp/orders-pair.log" 2>&1 || rc=$?
((rc == 1)) && ! grep -q PARTICIPANT-START "$tmp/orders-pair.log" &&
	grep -q "key .*/elsewhere.key is not the key of certificate .*/good.crt" \
		"$tmp/orders-pair.log" ||
	fail "saga-orders with a key of another certificate: exit $rc: $(cat "$tmp/orders-pair.log")"

# A plain listener on a non-loopback address gets a warning; so does a
# participant endpoint other hosts reach without TLS (a tls: block does
# not secure it), not one on this machine.
awk '{ print }
	/^participants:$/ && !done {
		print "  far:"
		print "    endpoints: [\"tcp://192.0.2.1:7101\"]"
		print "    tls: {ca: certs/ca.crt}"
		print "  near: {endpoints: [\"tcp://127.0.0.1:7102\"]}"
		done = 1
	}' "$tmp/sagas.yaml" >"$tmp/plain.yaml"
"$sagad" --config "$tmp/plain.yaml" --db "$conninfo" \
	--listen "tcp://0.0.0.0:$((p0 + 3))" --tls-ca "$c/ca.crt" \
	--tls-cert "$c/sagad.crt" --tls-key "$c/sagad.key" >"$tmp/plain.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	grep -qs "READY" "$tmp/plain.log" && break
	sleep 0.05
done
grep -q "INSECURE listening on tcp://0.0.0.0" "$tmp/plain.log" ||
	fail "no warning for a non-loopback listener without TLS"
grep -q "INSECURE participant far at tcp://192.0.2.1:7101 without TLS" "$tmp/plain.log" ||
	fail "no warning for a participant reached without TLS"
if grep -q "INSECURE participant near" "$tmp/plain.log"; then
	fail "a warning for a participant on this machine"
fi
# sagad --check reads each participant's TLS files as start-up would: a
# CA file that is not a certificate is an error (it passed --check, and
# sagad refused to start).
printf 'not a certificate\n' >"$tmp/junk-ca.pem"
cat >"$tmp/junk.yaml" <<YAML
participants:
  junk:
    endpoints: ["tls+tcp://127.0.0.1:$good"]
    tls: {ca: junk-ca.pem}
sagas: []
YAML
rc=0
"$sagad" --check --config "$tmp/junk.yaml" >"$tmp/junk.out" 2>&1 || rc=$?
((rc == 1)) && grep -q "participant junk: CA file .*junk-ca.pem: " "$tmp/junk.out" ||
	fail "sagad --check of a junk CA file: exit $rc: $(cat "$tmp/junk.out")"

# A tls+tcp:// participant, and no client certificate to show it: every
# handshake failed (participants require one), with nothing in sagad's
# log. --check refuses it.
cat >"$tmp/nocert.yaml" <<YAML
participants:
  good:
    endpoints: ["tls+tcp://127.0.0.1:$good"]
sagas: []
YAML
rc=0
"$sagad" --check --config "$tmp/nocert.yaml" --tls-ca "$c/ca.crt" >"$tmp/nocert.out" 2>&1 || rc=$?
((rc == 1)) && grep -q "participant good: a tls+tcp:// endpoint needs a client certificate" "$tmp/nocert.out" ||
	fail "sagad --check of a TLS participant without a client certificate: exit $rc: $(cat "$tmp/nocert.out")"

# A certificate with another certificate's key: nng takes the pair, and
# every handshake then failed with nothing in sagad's log. sagad refuses
# its own such pair at start-up (exit 2), and --check a participant's.
rc=0
timeout 20 "$sagad" --config "$tmp/sagas.yaml" --db "$conninfo" \
	--listen "tls+tcp://127.0.0.1:$((p0 + 3))" --tls-ca "$c/ca.crt" \
	--tls-cert "$c/sagad.crt" --tls-key "$c/client.key" >"$tmp/pair.log" 2>&1 || rc=$?
((rc == 2)) && grep -q "client.key is not the key of certificate .*sagad.crt" "$tmp/pair.log" ||
	fail "sagad with a key of another certificate: exit $rc: $(cat "$tmp/pair.log")"
cat >"$tmp/pair.yaml" <<YAML
participants:
  good:
    endpoints: ["tls+tcp://127.0.0.1:$good"]
    tls: {cert: certs/good.crt, key: certs/client.key}
sagas: []
YAML
rc=0
"$sagad" --check --config "$tmp/pair.yaml" --tls-ca "$c/ca.crt" >"$tmp/pair.out" 2>&1 || rc=$?
((rc == 1)) && grep -q "participant good: key .*client.key is not the key of certificate" "$tmp/pair.out" ||
	fail "sagad --check of a participant's mismatched pair: exit $rc: $(cat "$tmp/pair.out")"

# A listener sagad would not secure as asked is refused at start-up, not
# served in the clear or not at all: a scheme other than tcp, tls+tcp,
# ipc and inproc (wss:// went without TLS, and TLS+TCP:// ignored the
# TLS options), and a metrics endpoint over https (nng took it and
# answered nothing). Each is refused before it binds a port.
for u in "wss://127.0.0.1:$((p0 + 3))/api" "TLS+TCP://127.0.0.1:$((p0 + 3))"; do
	rc=0
	timeout 20 "$sagad" --config "$tmp/sagas.yaml" --db "$conninfo" --listen "$u" \
		--tls-ca "$c/ca.crt" --tls-cert "$c/sagad.crt" \
		--tls-key "$c/sagad.key" >"$tmp/scheme.log" 2>&1 || rc=$?
	((rc == 2)) && grep -q "expected tcp://HOST:PORT, tls+tcp://HOST:PORT" \
		"$tmp/scheme.log" || fail "sagad --listen $u: exit $rc: $(cat "$tmp/scheme.log")"
done
# The forms nng takes are taken: tcp4, tcp6 and their tls+ forms, and a
# final slash.
for u in "tcp6://[::1]:$((p0 + 3))" "tls+tcp4://127.0.0.1:$((p0 + 3))" \
    "tcp://127.0.0.1:$((p0 + 3))/"; do
	"$sagad" --check --config "$tmp/sagas.yaml" --listen "$u" \
		--tls-ca "$c/ca.crt" --tls-cert "$c/sagad.crt" \
		--tls-key "$c/sagad.key" >"$tmp/scheme.log" 2>&1 ||
		fail "sagad --listen $u refused: $(cat "$tmp/scheme.log")"
done
rc=0
timeout 20 "$sagad" --config "$tmp/sagas.yaml" --db "$conninfo" \
	--listen "tls+tcp://127.0.0.1:$((p0 + 3))" --tls-ca "$c/ca.crt" \
	--tls-cert "$c/sagad.crt" --tls-key "$c/sagad.key" \
	--metrics-listen "https://127.0.0.1:$((p0 + 4))" >"$tmp/https.log" 2>&1 || rc=$?
((rc == 2)) && grep -q "plain HTTP only" "$tmp/https.log" ||
	fail "sagad --metrics-listen https://: exit $rc: $(cat "$tmp/https.log")"
echo "tls_test: mutual TLS on the API and to participants; strangers refused"
