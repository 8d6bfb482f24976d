// Where a cold start's time goes (ours): script loaded, module ready, first arbiter epoch
// adopted (SharedWorker compiled and elected), first lock granted; and, for comparison, how
// long an empty classic script takes to load, an empty SharedWorker to start and the first
// IndexedDB open. Fresh browser context per repetition.   node bench/cold.mjs [reps]
import { chromium } from "playwright-core";
import { serve } from "../scripts/server.mjs";
import { launchOptions } from "../tests/browser.mjs";

const reps = Number(process.argv[2] || 5);
const server = await serve(new URL("..", import.meta.url).pathname);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());

/** Runs `fn(arg)` in a blank page of a fresh browser context, `reps` times; the results. */
async function fresh(fn, arg) {
  const out = [];
  for (let r = 0; r < reps; r++) {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(`${base}/tests/entry/blank.html`);
    out.push(await p.evaluate(fn, arg));
    await ctx.close();
  }
  return out;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

const rows = await fresh(async () => {
  const t = {};
  const T0 = performance.now();
  delete Navigator.prototype.locks;
  delete globalThis.LockManager;
  delete globalThis.Lock;
  await new Promise((res) => {
    const s = document.createElement("script");
    s.src = "/dist/web-locks.js";
    s.onload = res;
    document.head.append(s);
  });
  t.scriptLoaded = performance.now() - T0;
  const dbg = await navigator.locks.ready;
  t.moduleReady = performance.now() - T0;
  while (!dbg.client.epoch) await new Promise((r) => setTimeout(r, 1));
  t.arbiterAdopted = performance.now() - T0;
  await navigator.locks.request("a", () => {});
  t.firstGrant = performance.now() - T0;
  return t;
});
// The floor under any polyfill loaded by a script: how long an empty classic script takes
// from insertion to its load event (fresh context, same server).
const emptyScript = await fresh(async () => {
  const t0 = performance.now();
  await new Promise((res) => {
    const s = document.createElement("script");
    s.src = "/bench/empty.js";
    s.onload = res;
    document.head.append(s);
  });
  return performance.now() - t0;
});
// The floor under any SharedWorker-hosted arbiter: how long the browser takes to start a
// SharedWorker whose script does nothing but answer (fresh context, same origin).
const SW_SRC = "onconnect = (e) => e.ports[0].postMessage(performance.timeOrigin + performance.now());";
const swStart = await fresh(async (src) => {
  const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
  const t0 = performance.timeOrigin + performance.now();
  const w = new SharedWorker(url, { name: "bench-empty" });
  const started = await new Promise((res) => (w.port.onmessage = (e) => res(e.data)));
  return started - t0;
}, SW_SRC);
// And the first IndexedDB open in a fresh profile (every context opens its probe database
// before it can register; the arbiter's election is IndexedDB too).
const idbOpen = await fresh(async () => {
  const t0 = performance.now();
  const db = await new Promise((res, rej) => {
    const req = indexedDB.open("bench-cold-first-open", 1);
    req.onsuccess = () => res(req.result);
    req.onerror = () => rej(req.error);
  });
  const ms = performance.now() - t0;
  db.close();
  indexedDB.deleteDatabase("bench-cold-first-open");
  return ms;
});
await browser.close();
server.close();
console.log(`cold start, ms since the script was inserted (median of ${reps}):`);
for (const k of ["scriptLoaded", "moduleReady", "arbiterAdopted", "firstGrant"]) console.log(`  ${k.padEnd(15)} ${median(rows.map((x) => x[k])).toFixed(1)}`);
console.log(`an empty classic script: inserted → loaded, ms (median of ${reps}): ${median(emptyScript).toFixed(1)}`);
console.log(`an empty SharedWorker: constructor → its script runs, ms (median of ${reps}): ${median(swStart).toFixed(1)}`);
console.log(`the first indexedDB.open() in a fresh profile, ms (median of ${reps}): ${median(idbOpen).toFixed(1)}`);
