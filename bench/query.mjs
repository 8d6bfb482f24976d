// query() with 1,000 held + 1,000 pending in one page: shared mode (the snapshot crosses
// from the SharedWorker), local mode (the arbiter in the page), and native; the median of the
// first 7 queries (code still warming up) and of all 41.
//   node bench/query.mjs
import { chromium } from "playwright-core";
import { serve } from "../scripts/server.mjs";
import { launchOptions } from "../tests/browser.mjs";
const server = await serve(new URL("..", import.meta.url).pathname);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());
for (const mode of ["auto", "local", "native"]) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await p.goto(`${base}/tests/entry/blank.html`);
  const r = await p.evaluate(async (mode) => {
    let L = navigator.locks;
    if (mode !== "native") { const m = await import("/dist/index.js"); m.install({ force: true, mode }); L = navigator.locks; await L.ready; }
    const release = [];
    const held = Array.from({ length: 1000 }, (_, i) => L.request(`q${i}`, () => new Promise((r) => release.push(r))));
    const pend = Array.from({ length: 1000 }, (_, i) => L.request(`q${i}`, () => {}));
    while (release.length < 1000) await new Promise((r) => setTimeout(r, 5));
    const times = [];
    for (let i = 0; i < 41; i++) { const t0 = performance.now(); await L.query(); times.push(performance.now() - t0); }
    release.forEach((r) => r()); await Promise.all([...held, ...pend]);
    const median = (xs) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];
    return [median(times.slice(0, 7)), median(times)];
  }, mode);
  console.log(`${(mode === "auto" ? "shared" : mode).padEnd(6)}: first 7 queries ${r[0].toFixed(1)} ms, all 41 ${r[1].toFixed(1)} ms (medians)`);
  await ctx.close();
}
await browser.close(); server.close();
