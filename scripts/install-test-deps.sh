#!/usr/bin/env bash
# Installs what the integration tests run for real: Pebble (+ pebble-challtestsrv), Redis and openssl,
# from Debian's packages, when they are missing. Needs root (or sudo) and apt-get.
set -euo pipefail
missing=()
command -v pebble >/dev/null || missing+=(pebble)
command -v pebble-challtestsrv >/dev/null || missing+=(pebble)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
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
