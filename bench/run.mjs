// Benchmarks: ours vs Chromium's native navigator.locks, side by side in the same page and
// run, interleaved repetitions, medians and the ratio to native. Writes bench/report.md and
// bench/report.json. Each scenario also checks mutual exclusion, so a fast wrong answer
// cannot win.
//
//   node bench/run.mjs [--reps 5] [--n 10000]
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { chromium } from "playwright-core";
import { serve } from "../scripts/server.mjs";
import { launchOptions } from "../tests/browser.mjs";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const REPS = arg("reps", 5);
const N = arg("n", 10000);
const root = new URL("..", import.meta.url).pathname;
const server = await serve(root);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());
const page = await browser.newPage();
await page.goto(`${base}/tests/entry/blank.html`);
await page.evaluate(async () => {
  const m = await import("/dist/index.js");
  window.__impls = { native: navigator.locks, ours: m.polyfill.locks };
  await m.polyfill.locks.ready;
});

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Scenario 1: sequential uncontended `await request(name, () => {})`, µs per request.
async function uncontended(impl) {
  return page.evaluate(
    async ([impl, n]) => {
      const L = window.__impls[impl];
      let inside = 0;
      let violations = 0;
      const cb = () => {
        if (++inside > 1) violations++;
        inside--;
      };
      for (let i = 0; i < 200; i++) await L.request("warm", cb);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await L.request("a", cb);
      return { us: ((performance.now() - t0) * 1000) / n, violations };
    },
    [impl, N],
  );
}

const rows = [];
const samples = { native: [], ours: [] };
let violations = 0;
for (let r = 0; r < REPS; r++) {
  for (const impl of r % 2 ? ["ours", "native"] : ["native", "ours"]) {
    const res = await uncontended(impl);
    samples[impl].push(res.us);
    violations += res.violations;
  }
}
const nat = median(samples.native);
const ours = median(samples.ours);
rows.push({ scenario: `1 uncontended sequential request() (${N}×), µs/op`, native: nat, ours, ratio: ours / nat, violations });

await browser.close();
server.close();

const version = browser.version ? browser.version() : "";
const report = {
  date: new Date().toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}`,
  browser: `Chromium ${version}`,
  reps: REPS,
  rows,
};
writeFileSync(new URL("report.json", import.meta.url), JSON.stringify(report, null, 2) + "\n");
const md = [
  `Benchmark report — ${report.date.slice(0, 10)}, ${report.machine}, ${report.browser}, medians of ${REPS} interleaved reps`,
  "",
  "| scenario | native | ours | ours/native | mutual-exclusion violations |",
  "|---|---:|---:|---:|---:|",
  ...rows.map((r) => `| ${r.scenario} | ${r.native.toFixed(1)} | ${r.ours.toFixed(1)} | ${r.ratio.toFixed(2)}× | ${r.violations} |`),
  "",
].join("\n");
writeFileSync(new URL("report.md", import.meta.url), md);
console.log(md);
if (violations) process.exit(1);
