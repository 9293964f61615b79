#!/usr/bin/env bash
# Installs what the integration tests run for real: Pebble (+ pebble-challtestsrv), Redis and openssl,
# from Debian's packages, when they are missing. Needs root (or sudo) and apt-get.
set -euo pipefail
missing=()
command -v pebble >/dev/null || missing+=(pebble)
command -v pebble-challtestsrv >/dev/null || missing+=(pebble)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
# Caddy's ACME server is the second CA of the suite (test/caddy-acme.test.ts); unshare/ip make its namespace.
command -v caddy >/dev/null || missing+=(caddy)
command -v unshare >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || missing+=(iproute2)
# `autotls trust` is tested against a copy of the system store and an NSS database (test/cli-trust.test.ts).
command -v update-ca-certificates >/dev/null || missing+=(ca-certificates)
command -v certutil >/dev/null || missing+=(libnss3-tools)
# BIND 9 is the RFC 2136 server of the DNS-01 tests (test/support/bind.ts); dig reads what it serves.
command -v named >/dev/null || missing+=(bind9)
command -v dig >/dev/null || missing+=(bind9-dnsutils)
# Knot DNS and PowerDNS run the same RFC 2136 provider suite, configured as docs/dns-01.md says.
command -v knotd >/dev/null || missing+=(knot)
command -v pdns_server >/dev/null || missing+=(pdns-server)
[ -e /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql ] || missing+=(pdns-backend-sqlite3)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
# The examples are checked the way their output tells a user to: curl --cacert (test/examples.test.ts).
command -v curl >/dev/null || missing+=(curl)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v apt-get >/dev/null; then
  echo "The tests need: ${missing[*]} (Debian/Ubuntu packages). Install them, then run the tests again." >&2
  exit 1
fi
echo "Installing test dependencies: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
# Debian's caddy package enables a system service on ports 80/443; the tests run their own Caddy only.
if [[ " ${missing[*]} " == *" caddy "* ]] && command -v systemctl >/dev/null; then
  $sudo systemctl disable --now caddy >/dev/null 2>&1 || true
fi
# Debian's bind9, knot and pdns-server packages enable a system DNS server on port 53; the tests run their own.
for service in named:bind9 knot:knot pdns:pdns-server; do
  if [[ " ${missing[*]} " == *" ${service#*:} "* ]] && command -v systemctl >/dev/null; then
    $sudo systemctl disable --now "${service%%:*}" >/dev/null 2>&1 || true
  fi
done
