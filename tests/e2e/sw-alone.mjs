// A service worker with no window open still gets locks (issue #3, item 2): it cannot
// start a SharedWorker, so it elects itself arbiter. Run by scripts/test.sh.
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { serve } from "../../scripts/server.mjs";
import { launchOptions } from "../browser.mjs";

const server = await serve(new URL("../..", import.meta.url).pathname);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());
let failed = false;
try {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/tests/e2e/blank.html`);
  const swPromise = ctx.waitForEvent("serviceworker");
  await page.evaluate(async () => {
    await navigator.serviceWorker.register("/tests/e2e/sw.js?target=ours&label=SW-alone", { scope: "/tests/e2e/" });
    await navigator.serviceWorker.ready;
  });
  const sw = ctx.serviceWorkers()[0] || (await swPromise);
  await page.close(); // no window of the origin is left
  assert.equal(ctx.pages().length, 0);
  const hang = new Promise((_, rej) => setTimeout(() => rej(new Error("no grant within 15 s")), 15000));
  const r = await Promise.race([hang, sw.evaluate(async () => {
    const dbg = await navigator.locks.ready;
    const order = [];
    const a = navigator.locks.request("sw-alone", async (l) => {
      order.push("a:" + l.mode);
      await new Promise((res) => setTimeout(res, 50));
    });
    const b = navigator.locks.request("sw-alone", { mode: "shared" }, (l) => order.push("b:" + l.mode));
    const q = await navigator.locks.query();
    await Promise.all([a, b]);
    return {
      order,
      held: q.held.length,
      pending: q.pending.length,
      mode: dbg.mode,
      hostsArbiter: !!dbg.arbiter,
      sharedWorker: typeof SharedWorker,
    };
  })]);
  assert.deepEqual(r.order, ["a:exclusive", "b:shared"]);
  assert.equal(r.held, 1);
  assert.equal(r.pending, 1);
  assert.equal(r.mode, "shared");
  assert.equal(r.hostsArbiter, true, "the service worker elected itself arbiter");
  console.log(`ok   service worker with no window: granted in order, query truthful (${JSON.stringify(r)})`);
} catch (e) {
  failed = true;
  console.log(`FAIL service worker with no window: ${e && e.stack ? e.stack : e}`);
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
