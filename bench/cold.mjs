// Where a cold start's time goes (ours): script loaded, module ready, first arbiter epoch
// adopted (SharedWorker compiled and elected), first lock granted. Fresh browser context
// per repetition.   node bench/cold.mjs [reps]
import { chromium } from "playwright-core";
import { serve } from "../scripts/server.mjs";
import { launchOptions } from "../tests/browser.mjs";

const reps = Number(process.argv[2] || 5);
const server = await serve(new URL("..", import.meta.url).pathname);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());
const rows = [];
for (let r = 0; r < reps; r++) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await p.goto(`${base}/tests/entry/blank.html`);
  rows.push(
    await p.evaluate(async () => {
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
    }),
  );
  await ctx.close();
}
await browser.close();
server.close();
const med = (k) => rows.map((x) => x[k]).sort((a, b) => a - b)[Math.floor((rows.length - 1) / 2)];
console.log(`cold start, ms since the script was inserted (median of ${reps}):`);
for (const k of ["scriptLoaded", "moduleReady", "arbiterAdopted", "firstGrant"]) console.log(`  ${k.padEnd(15)} ${med(k).toFixed(1)}`);
