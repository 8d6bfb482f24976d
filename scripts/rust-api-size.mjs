// What the Rust API (feature `api`) adds to a Rust wasm app: a minimal app is built twice
// in build/rust-api-size (release, `opt-level = "z"`, LTO, wasm-bindgen, npm binaryen's
// `wasm-opt -Oz`), once taking a lock, querying and releasing through this crate, once
// awaiting a promise instead, and the gzipped wasm and JS glue of both are compared.
//
//   node scripts/rust-api-size.mjs
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
locks = ["dep:web-locks-wasm"]

[dependencies]
wasm-bindgen = "=0.2.130"
wasm-bindgen-futures = "0.4"
js-sys = "0.3"
web-locks-wasm = { path = "../..", optional = true }

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

#[cfg(feature = "locks")]
#[wasm_bindgen]
pub async fn run(name: String) -> Result<u32, JsValue> {
    let err = |e: web_locks_wasm::LockError| JsValue::from_str(&e.to_string());
    let locks = web_locks_wasm::LockManager::get().map_err(err)?;
    let guard = locks.lock(&name).await.map_err(err)?;
    let held = locks.query().await.map_err(err)?.held.len() as u32;
    guard.release().await;
    Ok(held)
}

#[cfg(not(feature = "locks"))]
#[wasm_bindgen(inline_js = "export function later(n) { return Promise.resolve(n); }")]
extern "C" {
    fn later(n: &str) -> js_sys::Promise;
}

#[cfg(not(feature = "locks"))]
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
for (const variant of ["without", "with"]) {
  run("cargo", ["build", "-q", "--release", "--target", "wasm32-unknown-unknown", ...(variant === "with" ? ["--features", "locks"] : [])]);
  const out = join(app, `out-${variant}`);
  rmSync(out, { recursive: true, force: true });
  run("wasm-bindgen", ["--target", "web", "--out-dir", out, "--out-name", "app", join(app, "target/wasm32-unknown-unknown/release/rust_api_size.wasm")]);
  const features = ["bulk-memory", "nontrapping-float-to-int", "sign-ext", "mutable-globals", "reference-types", "multivalue"];
  run(join(root, "node_modules/.bin/wasm-opt"), ["-Oz", ...features.map((f) => `--enable-${f}`), "--strip-debug", "--strip-producers", join(out, "app_bg.wasm"), "-o", join(out, "app_bg.wasm")]);
  sizes[variant] = { wasm: gz(join(out, "app_bg.wasm")), js: gz(join(out, "app.js")) };
}
console.log(`minimal app without the crate: wasm ${sizes.without.wasm} B gz, JS glue ${sizes.without.js} B gz`);
console.log(`the same app taking a lock:     wasm ${sizes.with.wasm} B gz, JS glue ${sizes.with.js} B gz`);
console.log(`the Rust API adds:              wasm ${sizes.with.wasm - sizes.without.wasm} B gz, JS glue ${sizes.with.js - sizes.without.js} B gz`);
