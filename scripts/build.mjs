// Builds the npm package into dist/ (exactly what `npm pack` publishes, with package.json
// and README.md): the wasm modules, the ESM ponyfill and auto entry, the classic script,
// and the type declarations. Run through `npm run build` (scripts/setup.sh installs the
// toolchain first).
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: "inherit" });
const profile = process.env.WEB_LOCKS_PROFILE || "release";

// WEB_LOCKS_DIST builds elsewhere (e.g. build/dist-size), leaving dist/ alone.
const dist = process.env.WEB_LOCKS_DIST ? join(root, process.env.WEB_LOCKS_DIST) : join(root, "dist");
const pkg = join(root, "build/pkg");
rmSync(pkg, { recursive: true, force: true });

// 1–3. Three wasm modules: the full one (client and arbiter: local mode, workers, the
// SharedWorker, elected windows) and the client half, for windows whose arbiter runs in
// the SharedWorker. Each is built without the standard library (feature `slim`), in its
// own target dir so that both stay cached, then gets its JS glue (ESM, `--target web`)
// and npm binaryen's wasm-opt (Debian's 108 corrupts wasm-bindgen 0.2.130 output).
// WEB_LOCKS_TRACE=1 (test builds only, with WEB_LOCKS_DIST): the full module keeps the
// arbiter's decision log (feature `trace`), which js/arbiter.js then posts for the chaos
// runner (tests/chaos).
const trace = process.env.WEB_LOCKS_TRACE === "1";
if (trace && !process.env.WEB_LOCKS_DIST) throw new Error("WEB_LOCKS_TRACE=1 needs WEB_LOCKS_DIST: the package in dist/ never traces");
// WEB_LOCKS_NEXT_PROTOCOL=1 (test builds only, with WEB_LOCKS_DIST): every module also
// speaks the next protocol version (feature `next-protocol`), as the next release will:
// two releases on one origin (tests/e2e/versions.mjs).
// WEB_LOCKS_NEXT_PROTOCOL=only: the next version alone (a release that cannot speak to
// today's arbiter).
const next = process.env.WEB_LOCKS_NEXT_PROTOCOL === "1" || process.env.WEB_LOCKS_NEXT_PROTOCOL === "only";
const nextOnly = process.env.WEB_LOCKS_NEXT_PROTOCOL === "only";
if (next && !process.env.WEB_LOCKS_DIST) throw new Error("WEB_LOCKS_NEXT_PROTOCOL=1 needs WEB_LOCKS_DIST");
// The full module always has the lock services (feature `services`: any client may use
// them); of the client halves, one has them (the classic script, and ESM pages that import
// web-locks-wasm/services) and one not (every other ESM page).
const MODULES = [
  trace
    ? { name: "web_locks_wasm", cargo: ["--no-default-features", "--features", "arbiter,slim,services,trace"], targetDir: "target/trace" }
    : { name: "web_locks_wasm", cargo: ["--no-default-features", "--features", "arbiter,slim,services"], targetDir: "target" },
  { name: "web_locks_client", cargo: ["--no-default-features", "--features", "bindings,slim"], targetDir: "target/client" },
  { name: "web_locks_services", cargo: ["--no-default-features", "--features", "bindings,slim,services"], targetDir: "target/services" },
];
if (next) {
  for (const m of MODULES) {
    m.cargo[m.cargo.length - 1] += nextOnly ? ",next-protocol-only" : ",next-protocol";
    // Inside target/ (which git ignores), one dir per module as for the other builds.
    m.targetDir = `target/${nextOnly ? "next-only" : "next"}/${m.targetDir.replace(/^target\/?/, "") || "full"}`;
  }
}
const dir = profile === "dev" ? "debug" : profile;
for (const m of MODULES) {
  const build = ["build", "--lib", "--target", "wasm32-unknown-unknown", "--target-dir", m.targetDir, ...m.cargo];
  run("cargo", profile === "dev" ? build : [...build, `--${profile}`]);
  const raw = join(root, m.targetDir, "wasm32-unknown-unknown", dir, "web_locks_wasm.wasm");
  // No default wasm URL in the glue: every loader passes one (js/index.js, js/classic.js).
  run("wasm-bindgen", ["--target", "web", "--no-typescript", "--omit-default-module-path", "--out-dir", pkg, "--out-name", m.name, raw]);
  const wasm = join(pkg, `${m.name}_bg.wasm`);
  if (profile === "release") {
    const features = ["bulk-memory", "nontrapping-float-to-int", "sign-ext", "mutable-globals", "reference-types", "multivalue"];
    const opt = ["-Oz", ...features.map((f) => `--enable-${f}`)];
    // A copy that keeps the function names, for `node scripts/size.mjs --breakdown`.
    const named = join(root, "build/names", basename(dist));
    mkdirSync(named, { recursive: true });
    run(join(root, "node_modules/.bin/wasm-opt"), [...opt, "-g", wasm, "-o", join(named, `${m.name}_bg.wasm`)]);
    // The target_features section is for tools (wasm-bindgen has run); engines ignore it.
    run(join(root, "node_modules/.bin/wasm-opt"), [...opt, "--strip-debug", "--strip-producers", "--strip-target-features", wasm, "-o", wasm]);
    shortenNames(m.name, features);
  }
}

/**
 * wasm-bindgen names every import after its module file and a 16-digit hash, and each
 * name is in the wasm and again in the glue (about 1.3 KB gzipped per module): wasm-opt
 * renames imports, exports and the import module to a letter or two and prints the
 * mapping, with which the glue is rewritten here. Checked against the module itself.
 */
function shortenNames(name, features) {
  const wasmFile = join(pkg, `${name}_bg.wasm`);
  const glueFile = join(pkg, `${name}.js`);
  const args = [...features.map((f) => `--enable-${f}`), "--minify-imports-and-exports-and-modules", wasmFile, "-o", wasmFile];
  const mapping = JSON.parse(execFileSync(join(root, "node_modules/.bin/wasm-opt"), args, { cwd: root, encoding: "utf8" }));
  const module = new WebAssembly.Module(readFileSync(wasmFile));
  const imports = WebAssembly.Module.imports(module);
  const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  const moduleNames = new Set(imports.map((i) => i.module));
  if (moduleNames.size !== 1) throw new Error(`${name}: expected one import module, got ${[...moduleNames]}`);
  const renamedImports = new Map(mapping.imports.map(([, from, to]) => [from, to]));
  const renamedExports = new Map(mapping.exports);
  let glue = readFileSync(glueFile, "utf8");
  // One pass each, so that a new name is never renamed again.
  glue = glue.replace(/^( {8})(\w+): function/gm, (all, indent, key) =>
    renamedImports.has(key) ? `${indent}${renamedImports.get(key)}: function` : all,
  );
  glue = glue.replace(/\bwasm\.(\w+)\b/g, (all, key) => (renamedExports.has(key) ? `wasm.${renamedExports.get(key)}` : all));
  const moduleKey = `"./${name}_bg.js":`;
  if (!glue.includes(moduleKey)) throw new Error(`${name}: the glue names no import module ${moduleKey}`);
  glue = glue.replace(moduleKey, `${JSON.stringify([...moduleNames][0])}:`);
  // Every export the glue uses exists, and every import it provides is one the module has.
  for (const [, used] of glue.matchAll(/\bwasm\.(\w+)/g)) {
    if (!exports.has(used)) throw new Error(`${name}: the glue uses a missing export ${used}`);
  }
  const provided = new Set([...glue.matchAll(/^ {8}(\w+): function/gm)].map((m) => m[1]));
  for (const i of imports) if (!provided.has(i.name)) throw new Error(`${name}: the glue does not provide import ${i.name}`);
  writeFileSync(glueFile, glue);
}

// 4. dist/: ESM files (minified, one file each), the glue, the wasm, types.
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
for (const m of MODULES) cpSync(join(pkg, `${m.name}_bg.wasm`), join(dist, `${m.name}_bg.wasm`));
const minify = profile === "release";
for (const [src, out] of [
  ["js/core.js", "core.js"],
  ["js/coord.js", "coord.js"],
  ["js/arbiter.js", "arbiter.js"],
  ["js/index.js", "index.js"],
  ["js/frames.js", "frames.js"],
  ["js/auto.js", "auto.js"],
  ["js/services.js", "services.js"],
  ["js/services-api.js", "services-api.js"],
  ["js/services-host.js", "services-host.js"],
]) {
  await esbuild.build({ entryPoints: [join(root, src)], outfile: join(dist, out), format: "esm", minify, target: "es2020", define: { WEB_LOCKS_TRACE: String(trace) }, logLevel: "warning" });
}
// The glue, bundled from an entry that re-exports all of it but `initSync`, which the
// package never calls (js/index.js and js/classic.js use the default export), so that
// esbuild drops it and what only it uses.
for (const m of MODULES) {
  const glue = readFileSync(join(pkg, `${m.name}.js`), "utf8");
  const names = [...glue.matchAll(/^export (?:function|class) (\w+)/gm)].map((x) => x[1]);
  if (!/^export \{ initSync, __wbg_init as default \};$/m.test(glue)) throw new Error(`${m.name}: unexpected glue exports`);
  // The full module has the lock services, whose half of the host (services-host.js) it
  // calls: its glue installs it, so that a page whose windows never load this module
  // does not carry that code (js/index.js).
  const services = m.name === "web_locks_wasm" ? `import { installServicesHost } from "./services-host.js";\ninstallServicesHost();\n` : "";
  await esbuild.build({
    stdin: { contents: `${services}export { ${names.join(", ")}, default } from "./${m.name}.js";`, resolveDir: pkg, sourcefile: `${m.name}-entry.js` },
    external: ["./services-host.js"],
    bundle: true,
    outfile: join(dist, `${m.name}.js`),
    format: "esm",
    minify,
    target: "es2020",
    logLevel: "warning",
  });
}
for (const f of ["index.d.ts", "auto.d.ts", "services.d.ts", "web-locks.d.ts", "web-locks-arbiter.d.ts"]) cpSync(join(root, "js", f), join(dist, f));

// 5. The two classic scripts, each with its wasm inlined as hex (see js/hex.js):
// web-locks.js (the client half, for `<script src>` and importScripts) and, next to it,
// web-locks-arbiter.js (the full module and arbiter.js: the SharedWorker's script, which
// web-locks.js fetches where its context has to host the arbiter). In the latter,
// "./coord.js" is web-locks.js's own instance when it was loaded by web-locks.js (found
// under HOOK, js/hex.js), else its own copy (in the SharedWorker), so that one context
// never has two coordination states.
const hex = (name) => JSON.stringify(readFileSync(join(pkg, `${name}_bg.wasm`)).toString("hex"));
const sharedCoord = {
  name: "shared-coord",
  setup(b) {
    b.onResolve({ filter: /^\.\/coord\.js$/ }, () => ({ path: "coord", namespace: "shared-coord" }));
    b.onLoad({ filter: /.*/, namespace: "shared-coord" }, () => ({
      contents: `const h = globalThis[Symbol.for("web-locks-wasm")];\nmodule.exports = (h && h.coord) || require(${JSON.stringify(join(root, "js/coord.js"))});`,
      resolveDir: join(root, "js"),
    }));
  },
};
for (const [entry, out, name, plugins] of [
  ["js/classic.js", "web-locks.js", "web_locks_services", []],
  ["js/classic-arbiter.js", "web-locks-arbiter.js", "web_locks_wasm", [sharedCoord]],
]) {
  // web-locks.js runs its own source again in same-origin child realms (js/frames.js): it
  // is wrapped in a named function that it can read back, with the parent's script URL as
  // its argument there (nothing in the global scope).
  const wrap = out === "web-locks.js";
  await esbuild.build({
    entryPoints: [join(root, entry)],
    bundle: true,
    outfile: join(dist, out),
    format: "iife",
    minify,
    target: "es2020",
    plugins,
    define: { __WASM_HEX__: hex(name), "import.meta.url": '""', WEB_LOCKS_TRACE: String(trace) },
    logLevel: "warning",
    ...(wrap ? { banner: { js: "(function __WEB_LOCKS_SELF__(__WEB_LOCKS_FROM__){" }, footer: { js: "})();" } } : {}),
  });
}

// 6. The Rust crate's snippet (js/rust.js): the polyfill as one self-contained ES module with
// the full wasm inlined, which src/api.rs imports (cargo feature `polyfill`). It is in git,
// so that the crate builds before (and without) this script; only the package's own
// release build rewrites it. `git diff gen/` after a build shows whether it was current.
if (!process.env.WEB_LOCKS_DIST && profile === "release") {
  await esbuild.build({
    entryPoints: [join(root, "js/rust.js")],
    bundle: true,
    outfile: join(root, "gen/polyfill.js"),
    format: "esm",
    minify,
    target: "es2020",
    define: { __WASM_HEX__: hex("web_locks_wasm"), WEB_LOCKS_TRACE: "false" },
    banner: { js: "// Generated by scripts/build.mjs from js/rust.js and the package's full wasm module: do not edit." },
    logLevel: "warning",
  });
}

const size = (f) => {
  const b = readFileSync(join(dist, f));
  return `${f}: ${b.length} B (${gzipSync(b, { level: 9 }).length} B gzipped)`;
};
for (const f of ["web_locks_wasm_bg.wasm", "web_locks_wasm.js", "web_locks_client_bg.wasm", "web_locks_client.js", "web_locks_services_bg.wasm", "web_locks_services.js", "core.js", "coord.js", "arbiter.js", "index.js", "web-locks.js", "web-locks-arbiter.js"]) {
  console.log(size(f));
}
console.log("(the bytes each kind of context loads: node scripts/size.mjs)");
