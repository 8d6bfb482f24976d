// Size budget: the bytes a user's browser downloads from the built package, raw and
// gzipped (zlib level 9, each file on its own, as a server sends them). Builds nothing:
// run `node scripts/build.mjs` first.
//
//   node scripts/size.mjs [dir] [--breakdown]
//
// dir: the built package (default dist/). Writes build/size.json, prints a Markdown table,
// and exits 1 when any figure exceeds size-budget.json (repo root). --breakdown also lists
// the largest wasm items with twiggy, when twiggy is on PATH, from the copy with names that
// the build keeps in build/names/<dir>/.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const breakdown = args.includes("--breakdown");
const dir = resolve(args.find((a) => !a.startsWith("--")) ?? join(root, "dist"));

// What each kind of context downloads. A window loads either the ESM entry (with its
// imports, a glue module and its wasm) or the classic script; a worker loads the classic
// script with importScripts(). The ESM entry loads the client half of the wasm where the
// arbiter runs in the SharedWorker, the full module (which has the lock services, and
// their half of the host) where this context may host it. A page that imports
// web-locks-wasm/services loads the client half with the services. The classic script
// carries the services' client half; web-locks-arbiter.js, next to it, the full module:
// the SharedWorker's script, also fetched by a classic context that hosts the arbiter.
const ESM = ["index.js", "frames.js", "core.js", "coord.js"];
const FULL = ["web_locks_wasm.js", "services-host.js", "web_locks_wasm_bg.wasm"];
const PATHS = [
  {
    key: "page_esm",
    label: "window, ESM (`import \"web-locks-wasm\"`), arbiter in the SharedWorker",
    files: [...ESM, "web_locks_client.js", "web_locks_client_bg.wasm"],
  },
  {
    key: "page_esm_services",
    label: "window, ESM with the lock services (`web-locks-wasm/services`), arbiter in the SharedWorker",
    files: [...ESM, "services.js", "services-api.js", "services-host.js", "web_locks_services.js", "web_locks_services_bg.wasm"],
  },
  {
    key: "page_esm_full",
    label: "window or module worker, ESM, local mode (the arbiter in the wasm, no coordination)",
    files: [...ESM, ...FULL],
  },
  {
    key: "esm_host",
    label: "module worker, or window without SharedWorker, ESM, hosting the origin's arbiter",
    files: [...ESM, "arbiter.js", ...FULL],
  },
  { key: "page_classic", label: "window, classic script (`<script src>`), arbiter in the SharedWorker", files: ["web-locks.js"] },
  {
    key: "classic_host",
    label: "worker (`importScripts`), or window without SharedWorker, classic script, hosting the origin's arbiter",
    files: ["web-locks.js", "web-locks-arbiter.js"],
  },
  { key: "shared_worker", label: "the arbiter's SharedWorker", files: ["web-locks-arbiter.js"] },
];

const measured = new Map();
function measure(file) {
  if (!measured.has(file)) {
    const path = join(dir, file);
    if (!existsSync(path)) {
      console.error(`size: ${relative(process.cwd(), path)} is missing (run \`node scripts/build.mjs\` first)`);
      process.exit(2);
    }
    const bytes = readFileSync(path);
    measured.set(file, { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });
  }
  return measured.get(file);
}

const budgetFile = join(root, "size-budget.json");
const budget = existsSync(budgetFile) ? JSON.parse(readFileSync(budgetFile, "utf8")) : {};
const report = { dir: relative(root, dir) || ".", paths: {}, files: {}, over: [] };
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const lines = [
  "| what is loaded | files | raw | gzipped | budget (raw / gzipped) |",
  "|---|---|---:|---:|---|",
];
for (const p of PATHS) {
  const sizes = p.files.map(measure);
  const total = { raw: 0, gzip: 0 };
  for (const s of sizes) {
    total.raw += s.raw;
    total.gzip += s.gzip;
  }
  const limit = budget[p.key];
  const marks = [];
  for (const unit of ["raw", "gzip"]) {
    if (limit && typeof limit[unit] === "number" && total[unit] > limit[unit]) {
      report.over.push(`${p.key}.${unit}: ${total[unit]} B > budget ${limit[unit]} B`);
      marks.push(unit);
    }
  }
  report.paths[p.key] = { ...total, files: p.files, budget: limit ?? null };
  const lim = limit ? `${limit.raw} B / ${limit.gzip} B${marks.length ? ` **OVER (${marks.join(", ")})**` : ""}` : "none";
  lines.push(`| ${p.label} | ${p.files.join(" + ")} | ${total.raw} B (${kb(total.raw)}) | ${total.gzip} B (${kb(total.gzip)}) | ${lim} |`);
}
for (const [f, s] of measured) report.files[f] = s;
lines.push("", "| file | raw | gzipped |", "|---|---:|---:|");
for (const [f, s] of measured) lines.push(`| ${f} | ${s.raw} B | ${s.gzip} B |`);

mkdirSync(join(root, "build"), { recursive: true });
writeFileSync(join(root, "build/size.json"), `${JSON.stringify(report, null, 2)}\n`);
console.log(lines.join("\n"));

if (breakdown) {
  let twiggy = true;
  try {
    execFileSync("twiggy", ["--version"], { stdio: "ignore" });
  } catch {
    twiggy = false;
    console.log("\n(--breakdown: twiggy is not on PATH; `cargo install twiggy` to see the largest wasm items)");
  }
  if (twiggy) {
    const named = join(root, "build/names", basename(dir));
    for (const f of [...measured.keys()].filter((f) => f.endsWith(".wasm"))) {
      const withNames = join(named, f);
      const src = existsSync(withNames) ? withNames : join(dir, f);
      console.log(`\n### ${f}: largest items (${relative(root, src)}${src === withNames ? ", same build before the import renaming, names kept" : ", no names"})\n`);
      console.log(execFileSync("twiggy", ["top", "-n", "25", src], { encoding: "utf8" }).trimEnd());
    }
  }
}

if (report.over.length) {
  console.error(`\nsize: over budget (${relative(root, budgetFile)}):\n  ${report.over.join("\n  ")}`);
  process.exit(1);
}
console.log(existsSync(budgetFile) ? "\nsize: within budget" : "\nsize: no size-budget.json, nothing to compare");
