// Builds the Rust example page (examples/lock-demo: a Rust wasm app over the crate's Rust
// API) into build/lock-demo, served by scripts/serve.mjs at /examples/lock-demo/.
import { execFileSync } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const app = join(root, "examples/lock-demo");
const run = (cmd, args) => execFileSync(cmd, args, { cwd: app, stdio: "inherit" });
run("cargo", ["build", "-q", "--release", "--target", "wasm32-unknown-unknown", "--target-dir", join(root, "target/lock-demo")]);
run("wasm-bindgen", ["--target", "web", "--no-typescript", "--out-dir", join(root, "build/lock-demo"), join(root, "target/lock-demo/wasm32-unknown-unknown/release/lock_demo.wasm")]);
console.log("Rust example: /examples/lock-demo/ (build/lock-demo)");
