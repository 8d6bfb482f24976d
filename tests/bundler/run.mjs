// Builds tests/bundler with Vite against the built dist/, serves the output, and checks
// that two tabs of the bundled app share one lock space through the SharedWorker that
// the bundler emitted (issue #3: "from a bundler via new URL(..., import.meta.url)").
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";
import { serve } from "../../scripts/server.mjs";
import { launchOptions } from "../browser.mjs";

const root = new URL("../..", import.meta.url).pathname;
execFileSync(`${root}node_modules/.bin/vite`, ["build", "--config", `${root}tests/bundler/vite.config.mjs`], { cwd: root, stdio: "inherit" });
const server = await serve(`${root}build/bundler`);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());
let failed = false;
try {
  const ctx = await browser.newContext();
  const errors = [];
  const [a, b] = [await ctx.newPage(), await ctx.newPage()];
  for (const p of [a, b]) {
    p.on("pageerror", (e) => errors.push(e.message));
    await p.goto(`${base}/`);
  }
  const viaA = await a.evaluate(async () => {
    const d = await window.appReady;
    await new Promise((granted) => L.request("bundled", () => (granted(), new Promise(() => {}))));
    return d.client.via;
  });
  const r = await b.evaluate(async () => {
    const d = await window.appReady;
    const other = await L.request("bundled", { ifAvailable: true }, (lock) => lock);
    const q = await L.query();
    return { via: d.client.via, other, held: q.held.map((i) => i.clientId), me: d.client.clientId };
  });
  assert.equal(viaA, "port", "tab A reaches the arbiter through the bundled SharedWorker");
  assert.equal(r.via, "port");
  assert.equal(r.other, null, "tab B sees tab A's lock");
  assert.equal(r.held.length, 1);
  assert.notEqual(r.held[0], r.me);
  assert.deepEqual(errors, []);
  console.log("ok   bundled with Vite: two tabs share one lock space through the emitted SharedWorker");
} catch (e) {
  failed = true;
  console.log(`FAIL bundled with Vite: ${e && e.stack ? e.stack : e}`);
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
