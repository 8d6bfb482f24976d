// The npm tarball, as a consumer installs it (issue #14). Run after `node scripts/build.mjs`.
//
// `npm pack` makes the tarball; a scratch app outside the repo (a new temp folder, no
// workspace links, no access to the repo's files) installs it; then:
// - the tarball holds exactly dist/ plus README.md, the license files and package.json;
// - every `exports` entry resolves in Node's ESM, and importing the ponyfill and the auto
//   entry under Node (no `navigator`) does not throw or touch any global;
// - the declarations type-check against lib.dom with `moduleResolution` `bundler` and
//   `node16` (the repo's TypeScript, run on the scratch app);
// - publint and @arethetypeswrong/cli (`attw --pack`) find no problem.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = (name) => join(root, "node_modules/.bin", name);
const sh = (cmd, args, cwd, opts = {}) => execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...opts });
let passed = 0;
let failed = 0;
const check = (ok, what, detail = "") => {
  if (ok) passed++;
  else {
    failed++;
    console.log(`FAIL ${what}${detail ? `\n${detail}` : ""}`);
  }
};
const attempt = (what, fn) => {
  try {
    fn();
    check(true, what);
  } catch (e) {
    check(false, what, String((e.stdout || "") + (e.stderr || "") || e.message).slice(0, 3000));
  }
};

const scratch = mkdtempSync(join(tmpdir(), "web-locks-consumer-"));
try {
  // 1. The tarball and what is in it.
  const [info] = JSON.parse(sh("npm", ["pack", "--json", "--pack-destination", scratch], root));
  const tarball = join(scratch, info.filename);
  const files = info.files.map((f) => f.path).sort();
  const extra = files.filter((f) => !f.startsWith("dist/") && !["README.md", "package.json", "LICENSE-MIT", "LICENSE-APACHE"].includes(f));
  check(extra.length === 0, "the tarball holds only dist/, README.md, the license files and package.json", extra.join("\n"));
  for (const f of ["README.md", "package.json", "LICENSE-MIT", "LICENSE-APACHE", "dist/index.js", "dist/web-locks.js", "dist/index.d.ts"]) {
    check(files.includes(f), `the tarball holds ${f}`);
  }
  console.log(`tarball: ${info.filename}, ${files.length} files, ${info.size} B packed, ${info.unpackedSize} B unpacked`);

  // 2. A scratch app installs it, from the tarball alone.
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  sh("npm", ["install", "--no-audit", "--no-fund", "--offline", tarball], scratch);
  const pkg = JSON.parse(readFileSync(join(scratch, "node_modules/web-locks-wasm/package.json"), "utf8"));

  // 3. Node's ESM: every exports entry resolves; the ponyfill and auto imports do not throw.
  writeFileSync(
    join(scratch, "node.mjs"),
    `const entries = ${JSON.stringify(Object.keys(pkg.exports))};
const out = {};
for (const e of entries) out[e] = import.meta.resolve("web-locks-wasm" + e.slice(1));
const before = Object.getOwnPropertyNames(globalThis).sort().join();
const m = await import("web-locks-wasm");
await import("web-locks-wasm/auto");
const after = Object.getOwnPropertyNames(globalThis).sort().join();
const { default: p } = await import("web-locks-wasm/package.json", { with: { type: "json" } });
console.log(JSON.stringify({ resolved: out, exports: Object.keys(m).sort(), sameGlobals: before === after, locksIsNull: m.locks === null || m.locks === undefined, name: p.name }));
`,
  );
  attempt("every exports entry resolves in Node's ESM, and the ponyfill and auto entries import under Node without touching globals", () => {
    const r = JSON.parse(sh(process.execPath, ["node.mjs"], scratch).trim().split("\n").pop());
    for (const [e, url] of Object.entries(r.resolved)) if (!url.includes("/node_modules/web-locks-wasm/")) throw new Error(`${e} resolved to ${url}`);
    for (const name of ["Lock", "LockManager", "install", "locks", "polyfill"]) if (!r.exports.includes(name)) throw new Error(`no export ${name}: ${r.exports}`);
    if (!r.sameGlobals) throw new Error("importing changed globalThis");
    if (r.name !== "web-locks-wasm") throw new Error("package.json export");
  });

  // 4. TypeScript, against lib.dom, in both module resolutions a consumer uses.
  writeFileSync(
    join(scratch, "check.ts"),
    `import { locks, install, polyfill, LockManager, Lock } from "web-locks-wasm";
import "web-locks-wasm/auto";
const m: globalThis.LockManager = polyfill.locks;
const p: Promise<number> = locks.request("x", { mode: "shared" }, (l: globalThis.Lock | null) => (l ? l.name.length : 0));
const q: Promise<LockManagerSnapshot> = m.query();
const i: globalThis.LockManager | null = install({ force: false });
export { p, q, i, LockManager, Lock };
`,
  );
  for (const [module, resolution] of [["esnext", "bundler"], ["node16", "node16"]]) {
    writeFileSync(
      join(scratch, `tsconfig.${resolution}.json`),
      JSON.stringify({ compilerOptions: { strict: true, noEmit: true, target: "es2020", lib: ["es2020", "dom"], module, moduleResolution: resolution, skipLibCheck: false, types: [] }, files: ["check.ts"] }),
    );
    attempt(`the declarations type-check with moduleResolution ${resolution}`, () => sh(bin("tsc"), ["-p", `tsconfig.${resolution}.json`], scratch));
  }

  // 5. publint and arethetypeswrong, on the tarball as published.
  attempt("publint finds nothing", () => {
    const out = sh(bin("publint"), ["run", join(scratch, "node_modules/web-locks-wasm"), "--strict"], scratch);
    if (/error|warning|suggestion/i.test(out)) throw Object.assign(new Error("publint"), { stdout: out });
  });
  attempt("@arethetypeswrong/cli finds no problem", () => sh(bin("attw"), [tarball, "--profile", "esm-only", "--format", "table-flipped"], scratch));
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`package: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
