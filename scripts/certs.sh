#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# certs.sh DIR [NAME...]: a throwaway certificate authority and one
# certificate per process, for running the demo over mutual TLS
# (scripts/cluster.sh --tls) and for the TLS tests. Not for production:
# keys are not encrypted and live 30 days.
#
# Writes DIR/ca.crt and DIR/ca.key, and for each NAME (default: sagad
# orders inventory payments shipping client) DIR/NAME.crt and
# DIR/NAME.key, signed by that CA, with subject CN=NAME and the names
# localhost and 127.0.0.1 (also as a DNS name, which mbedtls 2.28, under
# nng, can match). A second CA (DIR/other-ca.*) signs DIR/stranger.crt: a
# certificate that the cluster must refuse. DIR/elsewhere.crt is signed
# by the first CA but names only the host elsewhere.example: a client
# dialling localhost must refuse it.

set -euo pipefail

prog=${0##*/}
if [[ ${1:-} == -h || ${1:-} == --help || $# -lt 1 ]]; then
	sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'
	[[ $# -ge 1 ]] && exit 0
	exit 2
fi
command -v openssl >/dev/null ||
	{ echo "$prog: openssl is missing (apt-get install openssl)" >&2; exit 1; }
dir=$1
shift
names=("$@")
((${#names[@]} > 0)) || names=(sagad orders inventory payments shipping client)
mkdir -p "$dir"
cd "$dir"

ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$1.key" -out "$1.crt" -days 30 \
		-subj "/CN=$2" 2>/dev/null
}

cert() {
	local name=$1 ca=$2 cn=${3:-$1}
	local san=${4:-DNS:localhost,IP:127.0.0.1,DNS:127.0.0.1}
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$name.key" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' \
		"$san" >"$name.ext"
	openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" \
		-CAcreateserial -out "$name.crt" -days 30 -extfile "$name.ext" \
		2>/dev/null
	rm -f "$name.csr" "$name.ext"
}

ca ca "saga demo CA"
for n in "${names[@]}"; do
	cert "$n" ca
done
ca other-ca "some other CA"
cert stranger other-ca
cert elsewhere ca elsewhere.example DNS:elsewhere.example
rm -f ./*.srl
chmod 600 ./*.key
echo "$prog: CA and certificates for ${names[*]} (and a stranger, and elsewhere) in $dir"
