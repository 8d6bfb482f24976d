// The lock services' latency against the spec API, in one run (issue #9): sequential
// uncontended `await request("a", () => {})` (ours and Chromium's own) against
// `await (await acquire("a")).release()` and acquire+release with a lease and a holder,
// in one tab of the polyfill (classic script), interleaved repetitions, medians.
// Writes bench/services.md.
//
//   node bench/services.mjs [--reps 5] [--n 2000]
import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { serve } from "../scripts/server.mjs";
import { launchOptions } from "../tests/browser.mjs";

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(`--${name}`) ? Number(argv[argv.indexOf(`--${name}`) + 1]) : dflt);
const REPS = opt("reps", 5);
const N = opt("n", 2000);
const root = new URL("..", import.meta.url).pathname;
const server = await serve(root);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

const pages = {};
for (const impl of ["native", "ours"]) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await p.goto(`${base}/bench/page.html?impl=${impl}`);
  await p.evaluate(() => window.ready);
  pages[impl] = p;
}

const SCENARIOS = [
  ["native request()", "native", "(n) => { const t = performance.now(); let p = Promise.resolve(); for (let i = 0; i < n; i++) p = p.then(() => navigator.locks.request('a', () => {})); return p.then(() => (performance.now() - t) * 1000 / n); }"],
  ["ours request()", "ours", "(n) => { const t = performance.now(); let p = Promise.resolve(); for (let i = 0; i < n; i++) p = p.then(() => navigator.locks.request('a', () => {})); return p.then(() => (performance.now() - t) * 1000 / n); }"],
  ["ours acquire() + release()", "ours", "(n) => { const t = performance.now(); let p = Promise.resolve(); for (let i = 0; i < n; i++) p = p.then(() => WebLocksWasm.acquire('a')).then((h) => h.release()); return p.then(() => (performance.now() - t) * 1000 / n); }"],
  ["ours acquire({ holder, ttl }) + release()", "ours", "(n) => { const t = performance.now(); let p = Promise.resolve(); for (let i = 0; i < n; i++) p = p.then(() => WebLocksWasm.acquire('a', { holder: 'Desk 1', ttl: 30000 })).then((h) => h.release()); return p.then(() => (performance.now() - t) * 1000 / n); }"],
];
const samples = SCENARIOS.map(() => []);
for (let r = 0; r < REPS; r++) {
  for (const [i, [, impl, src]] of SCENARIOS.entries()) {
    samples[i].push(await pages[impl].evaluate(([src, n]) => (0, eval)(`(${src})`)(n), [src, N]));
  }
}
const base0 = median(samples[0]);
const lines = [
  `# Lock services latency (\`node bench/services.mjs --reps ${REPS} --n ${N}\`)`,
  "",
  `One tab, uncontended, ${N} sequential operations per sample, ${REPS} interleaved samples, median µs per operation (lock + release). Plain page (not cross-origin isolated). ${new Date().toISOString().slice(0, 10)}, headless Chromium, ${(await browser.version())}.`,
  "",
  "| operation | µs/op | vs native request() |",
  "|---|---:|---:|",
  ...SCENARIOS.map(([name], i) => `| ${name} | ${median(samples[i]).toFixed(1)} | ${(median(samples[i]) / base0).toFixed(2)}× |`),
  "",
];
writeFileSync(`${root}bench/services.md`, lines.join("\n"));
console.log(lines.join("\n"));
await browser.close();
server.close();
