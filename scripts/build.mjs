// Builds the npm package into dist/ (exactly what `npm pack` publishes, with package.json
// and README.md): the wasm module, the ESM ponyfill and auto entry, the classic script,
// and the type declarations. Run through `npm run build` (scripts/setup.sh installs the
// toolchain first).
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: "inherit" });
const profile = process.env.WEB_LOCKS_PROFILE || "release";

// 1. Rust → wasm.
run("cargo", ["build", "--lib", "--target", "wasm32-unknown-unknown", `--${profile}`].filter((a) => a !== "--dev"));
const dir = profile === "dev" ? "debug" : profile;
const raw = join(root, "target/wasm32-unknown-unknown", dir, "web_locks_wasm.wasm");

// 2. JS glue (ESM, `--target web`).
const pkg = join(root, "build/pkg");
rmSync(pkg, { recursive: true, force: true });
run("wasm-bindgen", ["--target", "web", "--no-typescript", "--out-dir", pkg, raw]);

// 3. wasm-opt from npm binaryen (Debian's 108 corrupts wasm-bindgen 0.2.130 output).
const wasm = join(pkg, "web_locks_wasm_bg.wasm");
if (profile === "release") {
  const features = ["bulk-memory", "nontrapping-float-to-int", "sign-ext", "mutable-globals", "reference-types", "multivalue"];
  run(join(root, "node_modules/.bin/wasm-opt"), ["-Oz", ...features.map((f) => `--enable-${f}`), "--strip-debug", "--strip-producers", wasm, "-o", wasm]);
}

// 4. dist/: ESM files (minified, one file each), the glue, the wasm, types.
const dist = process.env.WEB_LOCKS_DIST ? join(root, process.env.WEB_LOCKS_DIST) : join(root, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
cpSync(wasm, join(dist, "web_locks_wasm_bg.wasm"));
const minify = profile === "release";
for (const [src, out] of [
  ["js/core.js", "core.js"],
  ["js/coord.js", "coord.js"],
  ["js/index.js", "index.js"],
  ["js/auto.js", "auto.js"],
  ["build/pkg/web_locks_wasm.js", "web_locks_wasm.js"],
]) {
  await esbuild.build({ entryPoints: [join(root, src)], outfile: join(dist, out), format: "esm", minify, target: "es2020", logLevel: "warning" });
}
for (const f of ["index.d.ts", "auto.d.ts"]) cpSync(join(root, "js", f), join(dist, f));

// 5. The classic script, wasm inlined as base64.
await esbuild.build({
  entryPoints: [join(root, "js/classic.js")],
  bundle: true,
  outfile: join(dist, "web-locks.js"),
  format: "iife",
  minify,
  target: "es2020",
  define: { __WASM_BASE64__: JSON.stringify(readFileSync(wasm).toString("base64")), "import.meta.url": '""' },
  logLevel: "warning",
});

const size = (f) => {
  const b = readFileSync(join(dist, f));
  return `${f}: ${b.length} B (${gzipSync(b, { level: 9 }).length} B gzipped)`;
};
for (const f of ["web_locks_wasm_bg.wasm", "web_locks_wasm.js", "core.js", "index.js", "web-locks.js"]) console.log(size(f));
