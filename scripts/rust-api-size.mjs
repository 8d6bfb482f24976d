// What the Rust API (feature `api`) adds to a Rust wasm app: a minimal app is built in
// build/rust-api-size (release, `opt-level = "z"`, LTO, wasm-bindgen, npm binaryen's
// `wasm-opt -Oz`) taking a lock, querying and releasing through this crate, with the
// crate's default features (`api`, `local` and `polyfill`: the crate's own copy of the
// polyfill, a JS snippet), without `polyfill`, and with `api` alone, and
// once awaiting a promise instead; the gzipped wasm and JS glue are compared.
//
//   node scripts/rust-api-size.mjs
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const app = join(root, "build/rust-api-size");
mkdirSync(join(app, "src"), { recursive: true });
writeFileSync(
  join(app, "Cargo.toml"),
  `[package]
name = "rust-api-size"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[features]
api = ["dep:web-locks-wasm", "web-locks-wasm/api"]
local = ["api", "web-locks-wasm/local"]
polyfill = ["local", "web-locks-wasm/polyfill"]

[dependencies]
wasm-bindgen = "=0.2.130"
wasm-bindgen-futures = "0.4"
js-sys = "0.3"
web-locks-wasm = { path = "../..", optional = true, default-features = false }

[profile.release]
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"

[workspace]
`,
);
writeFileSync(
  join(app, "src/lib.rs"),
  `use wasm_bindgen::prelude::*;

#[cfg(feature = "api")]
#[wasm_bindgen]
pub async fn run(name: String) -> Result<u32, JsValue> {
    let err = |e: web_locks_wasm::LockError| JsValue::from_str(&e.to_string());
    let locks = web_locks_wasm::LockManager::get().map_err(err)?;
    let guard = locks.lock(&name).await.map_err(err)?;
    let held = locks.query().await.map_err(err)?.held.len() as u32;
    guard.release().await;
    Ok(held)
}

#[cfg(not(feature = "api"))]
#[wasm_bindgen(inline_js = "export function later(n) { return Promise.resolve(n); }")]
extern "C" {
    fn later(n: &str) -> js_sys::Promise;
}

#[cfg(not(feature = "api"))]
#[wasm_bindgen]
pub async fn run(name: String) -> Result<u32, JsValue> {
    wasm_bindgen_futures::JsFuture::from(later(&name)).await?;
    Ok(name.len() as u32)
}
`,
);
const run = (cmd, args) => execFileSync(cmd, args, { cwd: app, stdio: ["ignore", "ignore", "inherit"] });
const gz = (f) => gzipSync(readFileSync(f), { level: 9 }).length;
const sizes = {};
const VARIANTS = { without: [], api: ["--features", "api"], local: ["--features", "local"], polyfill: ["--features", "polyfill"] };
// The JS an app loads: its glue, and the snippets wasm-bindgen copies next to it (the
// crate's polyfill, gen/polyfill.js, with feature \`polyfill\`).
const jsFiles = (dir) =>
  readdirSync(dir, { recursive: true })
    .filter((f) => f.endsWith(".js"))
    .map((f) => join(dir, f));
for (const [variant, features] of Object.entries(VARIANTS)) {
  run("cargo", ["build", "-q", "--release", "--target", "wasm32-unknown-unknown", ...features]);
  const out = join(app, `out-${variant}`);
  rmSync(out, { recursive: true, force: true });
  run("wasm-bindgen", ["--target", "web", "--out-dir", out, "--out-name", "app", join(app, "target/wasm32-unknown-unknown/release/rust_api_size.wasm")]);
  const wasmFeatures = ["bulk-memory", "nontrapping-float-to-int", "sign-ext", "mutable-globals", "reference-types", "multivalue"];
  run(join(root, "node_modules/.bin/wasm-opt"), ["-Oz", ...wasmFeatures.map((f) => `--enable-${f}`), "--strip-debug", "--strip-producers", join(out, "app_bg.wasm"), "-o", join(out, "app_bg.wasm")]);
  sizes[variant] = { wasm: gz(join(out, "app_bg.wasm")), js: jsFiles(out).reduce((n, f) => n + gz(f), 0) };
}
const row = (what, v) =>
  console.log(`${what.padEnd(44)} wasm ${String(v.wasm).padStart(6)} B gz (+${v.wasm - sizes.without.wasm}), JS glue ${String(v.js).padStart(5)} B gz (+${v.js - sizes.without.js})`);
row("minimal app without the crate", sizes.without);
row("taking a lock, default features (+polyfill)", sizes.polyfill);
row("taking a lock, features = [\"api\", \"local\"]", sizes.local);
row("taking a lock, features = [\"api\"] only", sizes.api);
