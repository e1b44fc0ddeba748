#!/usr/bin/env bash
# Makes a CA and certificates for a local rdb cluster with Debian's openssl:
#   scripts/gen-certs.sh DIR [NAME...]
# DIR/ca.pem (+ ca.key), and for each NAME (default: pd store client) NAME.pem and
# NAME.key, signed by the CA, common name NAME, valid for 127.0.0.1 and localhost.
# Every daemon and tool then takes: --ca DIR/ca.pem --cert DIR/NAME.pem --key DIR/NAME.key
set -euo pipefail
dir=${1:?usage: gen-certs.sh DIR [NAME...]}
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(pd store client)
command -v openssl >/dev/null || { echo "gen-certs: openssl is missing (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
if [ ! -f ca.pem ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -subj "/CN=rdb-ca" 2>/dev/null
fi
for n in "${names[@]}"; do
  openssl req -newkey rsa:2048 -nodes -keyout "$n.key" -out "$n.csr" -subj "/CN=$n" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$n.ext"
  openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$n.pem" -days 825 \
    -extfile "$n.ext" 2>/dev/null
  rm -f "$n.csr" "$n.ext"
  chmod 600 "$n.key"
done
echo "gen-certs: CA and certificates for ${names[*]} in $(pwd)"
