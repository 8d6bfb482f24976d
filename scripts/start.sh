#!/usr/bin/env bash
# The README's main command: installs what it needs (idempotently), builds the package into
# dist/ (and the Rust example page) and serves the live demo (www/) on
# http://localhost:${PORT:-8080}/www/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
node scripts/build.mjs
node scripts/build-example.mjs # the Rust example page, /examples/lock-demo/
exec node scripts/serve.mjs "${PORT:-8080}"
