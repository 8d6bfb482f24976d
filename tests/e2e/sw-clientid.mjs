// Service-worker client ids (issue #11): a page controlled by a service worker that loads
// the polyfill reports its Client.id as its clientId in query(), in its own tab and in
// another tab; the id equals the service worker's FetchEvent.clientId for that page. The
// app's own message handlers (the service worker's and the page's) see nothing of it. A
// page whose service worker does not load the polyfill keeps a random id, and gets its
// first lock as fast.
//
//   node tests/e2e/sw-clientid.mjs
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { serve } from "../../scripts/server.mjs";
import { launchOptions } from "../browser.mjs";

const server = await serve(new URL("../..", import.meta.url).pathname);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());
const results = [];
const check = (ok, what, detail = "") => {
  results.push(ok);
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${detail ? `: ${detail}` : ""}`);
};

/**
 * A controlled page at `dir`: registers `dir/sw.js`, then reloads under its control. With
 * `stopped`, every service worker is stopped before the reload (CDP), so that one without
 * a fetch handler only starts when the page first messages it.
 */
async function controlled(ctx, dir, { stopped = false } = {}) {
  const p = await ctx.newPage();
  p.on("pageerror", (e) => check(false, `page error in ${dir}`, e.message));
  await p.goto(`${base}${dir}page.html`);
  await p.evaluate(async () => {
    await navigator.serviceWorker.register("sw.js", { scope: "./" });
    await navigator.serviceWorker.ready;
  });
  if (stopped) {
    const cdp = await ctx.newCDPSession(p);
    await cdp.send("ServiceWorker.enable");
    await cdp.send("ServiceWorker.stopAllWorkers");
    await cdp.detach();
  }
  await p.reload();
  assert.ok(await p.evaluate(() => !!navigator.serviceWorker.controller), `${dir}: controlled after reload`);
  return p;
}

// In the page: the time to the first grant, the clientId query() reports for the lock it
// holds, and the service worker's FetchEvent.clientId for this page.
const hold = (p, name) =>
  p.evaluate(async (name) => {
    const t0 = performance.now();
    let release;
    const held = new Promise((r) => navigator.locks.request(name, () => (r(performance.now() - t0), new Promise((x) => (release = x)))));
    const ms = await held;
    const snap = await navigator.locks.query();
    const entry = snap.held.find((e) => e.name === name);
    const whoami = await (await fetch("whoami")).text();
    window.releaseHeld = release;
    return { ms, clientId: entry && entry.clientId, whoami };
  }, name);

try {
  const ctx = await browser.newContext();
  const a = await controlled(ctx, "/tests/e2e/sw-id/");
  const ra = await hold(a, "sw-id-a");
  check(ra.clientId === ra.whoami, "a controlled page's clientId in query() is its FetchEvent.clientId", `${ra.clientId} / ${ra.whoami}`);
  console.log(`     first grant after ${ra.ms.toFixed(1)} ms`);

  // Another tab of the same service worker sees both pages by their Client.id.
  const b = await ctx.newPage();
  await b.goto(`${base}/tests/e2e/sw-id/page.html`);
  const rb = await hold(b, "sw-id-b");
  check(rb.clientId === rb.whoami && rb.clientId !== ra.clientId, "a second controlled tab: its own Client.id", rb.clientId);
  const seen = await b.evaluate(async () => (await navigator.locks.query()).held.map((e) => [e.name, e.clientId]));
  check(
    seen.some(([n, id]) => n === "sw-id-a" && id === ra.whoami),
    "the second tab's query() reports the first tab's lock under the first tab's Client.id",
    JSON.stringify(seen),
  );

  // Nothing of ours reached the app's own handlers.
  const appMessages = await a.evaluate(async () => (await fetch("app-messages")).text());
  check(appMessages === "0", "the service worker's own message handler saw none of our messages", appMessages);
  const pageMessages = await a.evaluate(() => window.pageMessages);
  check(pageMessages === 0, "the page's navigator.serviceWorker message handler saw nothing", String(pageMessages));
  await a.evaluate(() => window.releaseHeld());
  await b.evaluate(() => window.releaseHeld());

  // A service worker that answers late (slow to start): the page first registers with a
  // random id, then becomes its Client.id once idle, and keeps working throughout.
  const s = await controlled(ctx, "/tests/e2e/sw-id/slow/", { stopped: true });
  const rs = await s.evaluate(async () => {
    const whoami = () =>
      new Promise((r) => {
        const ch = new MessageChannel();
        ch.port1.onmessage = (e) => r(e.data);
        navigator.serviceWorker.controller.postMessage("whoami", [ch.port2]);
      });
    const ids = [];
    const t0 = performance.now();
    await navigator.locks.request("sw-id-s", async () => ids.push((await navigator.locks.query()).held[0].clientId));
    const first = performance.now() - t0;
    const own = await whoami();
    for (let i = 0; i < 100 && ids[ids.length - 1] !== own; i++) {
      await new Promise((r) => setTimeout(r, 20));
      await navigator.locks.request("sw-id-s", async () => ids.push((await navigator.locks.query()).held.find((e) => e.name === "sw-id-s").clientId));
    }
    return { ids, own, first };
  });
  check(rs.ids[0] !== rs.own, "a late answer: the first grant did not wait for the service worker", `${rs.first.toFixed(1)} ms, id ${rs.ids[0]}`);
  check(rs.ids[rs.ids.length - 1] === rs.own, "then the page became its Client.id, and kept taking locks", `after ${rs.ids.length} grants: ${rs.ids[rs.ids.length - 1]}`);
  await s.evaluate(async () => {
    let release;
    navigator.locks.request("sw-id-s2", () => new Promise((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 50));
    window.releaseS2 = () => release();
  });
  const seen2 = await b.evaluate(async () => (await navigator.locks.query()).held.filter((e) => e.name === "sw-id-s2").map((e) => e.clientId));
  check(seen2.length === 1 && seen2[0] === rs.own, "another tab sees its lock under its Client.id", JSON.stringify(seen2));
  await s.evaluate(() => window.releaseS2());

  // A service worker without the polyfill: a random id (not its Client.id), at once.
  const c = await controlled(ctx, "/tests/e2e/sw-id/plain/");
  const rc = await hold(c, "sw-id-c");
  check(!!rc.clientId && rc.clientId !== rc.whoami, "a page whose service worker lacks the polyfill keeps a random clientId", rc.clientId);
  console.log(`     first grant after ${rc.ms.toFixed(1)} ms`);
  await c.evaluate(() => window.releaseHeld());

  // For comparison, the browser's own locks in a controlled page (reported, not checked).
  const n = await controlled(ctx, "/tests/e2e/sw-id/native/");
  const rn = await hold(n, "sw-id-n");
  console.log(`     the browser's own: clientId ${rn.clientId}, FetchEvent.clientId ${rn.whoami}: ${rn.clientId === rn.whoami ? "equal" : "different"}`);
  await n.evaluate(() => window.releaseHeld());
  await ctx.close();
} finally {
  await browser.close();
  server.close();
}
const failed = results.filter((r) => !r).length;
console.log(`sw-clientid: ${results.length - failed}/${results.length} passed`);
process.exit(failed ? 1 : 0);
