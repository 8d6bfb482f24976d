#!/usr/bin/env bash
# The README's test command: installs what it needs (idempotently), then runs every check
# and every test. Used by CI (.ci/run) and by developers alike.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
step() { printf '\n\033[1;32m==> %s\033[0m (%ss into the run)\n' "$*" "$SECONDS"; }

step "toolchain"
scripts/setup.sh

step "format, lints, docs"
cargo fmt --check
cargo clippy --all-targets -q -- -D warnings
cargo clippy --lib --tests --target wasm32-unknown-unknown --features arbiter -q -- -D warnings
# The package's three wasm modules: no_std (feature slim), with and without the arbiter
# and the lock services, without the Rust API (feature api, for Rust apps; it needs std).
cargo clippy --lib --target wasm32-unknown-unknown --no-default-features --features arbiter,slim,services -q -- -D warnings
cargo clippy --lib --target wasm32-unknown-unknown --no-default-features --features bindings,slim -q -- -D warnings
cargo clippy --lib --target wasm32-unknown-unknown --no-default-features --features bindings,slim,services -q -- -D warnings
cargo clippy --lib --target wasm32-unknown-unknown --no-default-features --features arbiter,slim -q -- -D warnings
# The Rust API without its local mode.
cargo clippy --lib --target wasm32-unknown-unknown --no-default-features --features api -q -- -D warnings
# The chaos runner's test build: the arbiter with its decision log (feature trace).
cargo clippy --all-targets --features trace,services -q -- -D warnings
cargo clippy --lib --target wasm32-unknown-unknown --no-default-features --features arbiter,slim,services,trace -q -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -q
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -q --features trace,services
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -q --target wasm32-unknown-unknown # the Rust API (feature api)

step "purity: engine, protocol, arbiter, delegation and their map and allocator use no browser bindings and no clock"
if grep -rnE 'web_sys|js_sys|wasm_bindgen|Instant::now|SystemTime' src/engine src/protocol.rs src/arbiter.rs src/delegate.rs src/map.rs src/heap.rs; then
  echo "impure code above" >&2
  exit 1
fi

step "native tests (engine unit + model + simulation, protocol, arbiter; with the decision log of test builds and the lock services)"
cargo test -q --features trace,services
cargo test -q --lib

step "JavaScript unit tests: the transport's batching of a task's messages (tests/transport)"
node --test tests/transport/

step "fuzzing: the protocol decoder and the arbiter, 100,000 executions each (scripts/fuzz.sh)"
scripts/fuzz.sh

step "build the package (dist/, and the Rust crate's polyfill snippet gen/polyfill.js)"
node scripts/build.mjs
# gen/polyfill.js is in git (the crate must build without this script); the build above
# rewrote it, and the tests below use that. A difference means the committed copy is stale.
git diff --quiet -- gen/ 2>/dev/null || echo "note: gen/polyfill.js differs from the committed copy (commit the rebuilt one)"

step "wasm bindings and the Rust API (over the browser's own and over the crate's polyfill) in headless Chromium and Firefox, and in Node (wasm-pack test)"
wasm-pack test --headless --chrome --mode no-install -- --features arbiter
# The Rust API in Node: no navigator.locks there, so LockManager::get() is local mode.
wasm-pack test --node --mode no-install -- --test api_node
# The same browser tests in Firefox ESR (over Firefox's own navigator.locks).
wasm-pack test --headless --firefox --geckodriver "$(command -v geckodriver)" --mode no-install -- --features arbiter


step "size budget: the bytes a page and a worker load (size-budget.json)"
node scripts/size.mjs

step "types against lib.dom"
node_modules/.bin/tsc -p tests/types
node_modules/.bin/tsc -p tests/types/tsconfig.esnext.json

step "the npm tarball as a consumer installs it: contents, exports in Node and TypeScript, publint, arethetypeswrong"
node tests/package/run.mjs

step "entry points"
node tests/entry/run.mjs

step "bundlers: the same app built with Vite, webpack, esbuild, Rollup and Parcel (tests/bundler: SharedWorker, wasm, a module worker, one lock space)"
node tests/bundler/run.mjs

step "lock services (web-locks-wasm/services, self.WebLocksWasm) across tabs and a worker (tests/services)"
node tests/services/run.mjs
# The show-control mixer (www/mixer.html): two desks drag faders in two tabs.
node tests/mixer/run.mjs

CHILD_REALM_TESTS='R-01|R-02|R-10|R-27 a lock held in an about:blank iframe'
step "conformance: ours (window + dedicated worker) and the native API, in Chromium, Firefox ESR and WebKitGTK; ours on a real insecure origin (http://intranet.test)"
node tests/conformance/run.mjs
node tests/conformance/run.mjs --insecure
# The ESM entry's install() in a window (import + install(), not the classic script): its
# same-origin child realms (about:blank, srcdoc, document.write, window.open("")) too.
node tests/conformance/run.mjs --target ours-esm --grep "$CHILD_REALM_TESTS"
# Firefox ESR (puppeteer over WebDriver BiDi; also two tabs contending and a holder tab
# closed) and WebKitGTK (MiniBrowser over WebDriver, in Xvfb): ours against each engine's own.
node tests/conformance/firefox.mjs
xvfb-run -a node tests/conformance/webkit.mjs

step "cross-context end-to-end: tabs, frames, workers, crashes, arbiter kills (tests/e2e)"
node tests/e2e/run.mjs
node tests/e2e/sw-alone.mjs
# A page controlled by a service worker that loads the polyfill: its clientId is its Client.id.
node tests/e2e/sw-clientid.mjs
# Two releases on one origin: today's build and the next protocol version's (and one that
# no longer speaks today's), one lock space across an arbiter kill and a crash.
node tests/e2e/versions.mjs
# The back/forward cache: an idle page is restored and rejoins; a holder's lock is released.
node tests/e2e/bfcache.mjs
# Storage blocked, IndexedDB throwing or missing, quota exhausted: refused, never split.
node tests/e2e/storage.mjs
# The same scenarios on a real insecure origin (http://intranet.test; no service workers there).
node tests/e2e/run.mjs --insecure

step "the Rust example page (examples/lock-demo) in two tabs"
node scripts/build-example.mjs
node tests/example/run.mjs

step "chaos: tabs, iframes, dedicated and shared workers with steals, aborts and leases; crashes, closes, navigations, iframe removals, worker terminations, freezes and arbiter kills; checked against the arbiter's decision log (tests/chaos)"
node --test tests/chaos/
# Every other tab runs the next release's build (--mix 1): two protocol versions.
node tests/chaos/run.mjs --seconds 75 --tabs 6 --mix 1 --frames 1 --shared 1 --leases 0.1 --private 0.3 --kinds crash,close,navigate,terminate,remove,arbiter,freeze

step "the README's support table, from the runs above (scripts/support-table.mjs)"
node scripts/support-table.mjs > /dev/null
git diff --quiet -- README.md 2>/dev/null || echo "note: the support table in README.md changed with these runs (commit it)"

step "all tests passed"
