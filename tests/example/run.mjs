// The Rust example page (examples/lock-demo, built by scripts/build-example.mjs) in two
// tabs of headless Chromium, over the browser's own manager, over this package's JS
// polyfill (`?polyfill`: the native one deleted, dist/web-locks.js loaded), over the crate's
// own (`?crate`: the native one deleted, no JS polyfill: the Rust code starts the one the
// crate carries, gen/polyfill.js), and one tab of each of the last two: tab A takes the
// lock, tab B waits for it and sees A hold it; A gives it back and B gets it. Run after
// `node scripts/build.mjs` and `node scripts/build-example.mjs`.
import { chromium } from "playwright-core";
import { serve } from "../../scripts/server.mjs";
import { launchOptions } from "../browser.mjs";

const root = new URL("../..", import.meta.url).pathname;
const server = await serve(root);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());
let failed = 0;
let passed = 0;
const check = (ok, what, detail = "") => (ok ? passed++ : (failed++, console.log(`FAIL ${what} ${detail}`)));
try {
  // native: the browser's own; polyfill: the JS package's (dist/web-locks.js); crate: the
  // crate's own, which the Rust code starts (no JS polyfill loaded); mixed: tab A over the
  // crate's, tab B over the JS package's, one lock space.
  for (const [variant, qa, qb] of [
    ["native", "", ""],
    ["polyfill", "?polyfill", "?polyfill"],
    ["crate", "?crate", "?crate"],
    ["mixed", "?crate", "?polyfill"],
  ]) {
    console.log(`-- ${variant}`);
    const context = await browser.newContext();
    const [a, b] = [await context.newPage(), await context.newPage()];
    for (const [p, q] of [[a, qa], [b, qb]]) {
      p.on("pageerror", (e) => check(false, `page error: ${e.message}`));
      await p.goto(`${base}/examples/lock-demo/${q}`);
      // The buttons work once the module has loaded the Rust app, which is when the status
      // first shows (a click before that does nothing; slow on a loaded machine).
      await p.waitForFunction(() => document.getElementById("status").textContent !== "loading…", null, { timeout: 30000 });
    }
    const status = (p) => p.textContent("#status");
    const until = async (p, re, what) => {
      for (let i = 0; i < 100; i++) {
        if (re.test(await status(p))) return true;
        await new Promise((r) => setTimeout(r, 50));
      }
      check(false, `${what} (status: ${JSON.stringify(await status(p))})`);
      return false;
    };
    await a.click("#take");
    check(await until(a, /this tab holds it: true/, "tab A holds the lock"), "A holds");
    if (variant === "crate" || variant === "mixed") {
      // The Rust code's LockManager::get() installed the crate's polyfill on the page's
      // navigator.locks, shared with the origin's other contexts (not local mode).
      const via = await a.evaluate(async () => {
        const d = await navigator.locks.ready;
        return `${d.mode}/${d.client.via}`;
      });
      console.log(`   tab A's connection: ${via}`);
      check(variant === "crate" ? via === "shared/port" : via.startsWith("shared/"), `${variant}: tab A connected to the arbiter`, via);
    }
    await b.click("#take");
    check(await until(b, /this tab holds it: false[\s\S]*held by [\s\S]*waited for by/, "tab B waits while A holds"), "B waits");
    const expected = variant === "native" ? "manager: the browser's own" : "manager: this package's polyfill";
    check((await status(a)).includes(expected), `${variant}: ${expected}`, await status(a));
    await a.click("#give");
    check(await until(b, /this tab holds it: true/, "tab B gets it once A gives it back"), "B holds");
    check(await until(a, /this tab holds it: false/, "tab A no longer holds it"), "A released");
    // The lock services through the Rust API (holder and ttl): over this package's
    // polyfill, B takes it as "Desk B" with a 3 s lease; A sees the holder's label; the
    // lease ends it while B's guard lives. Over the browser's own: NotSupported.
    await b.click("#give");
    await until(b, /this tab holds it: false/, "tab B gave it back");
    await b.fill("#desk", "Desk B");
    await b.click("#lease");
    if (variant !== "native") {
      check(await until(b, /this tab holds it: true/, "tab B holds it with a lease"), "B leased");
      check(await until(a, /held by [^\n]*holder Desk B/, "tab A sees the holder's label"), "label");
      const t0 = Date.now();
      check(await until(b, /this tab holds it: false/, "the lease ends B's hold"), "lease ended");
      const ended = Date.now() - t0;
      check(ended > 1500, `the lease ended after ${ended} ms (3 s lease)`);
    } else {
      for (let i = 0; i < 100 && !(await b.textContent("#error")); i++) await new Promise((r) => setTimeout(r, 50));
      const err = await b.textContent("#error");
      check(/not supported/.test(err), "native: holder and ttl are NotSupported", err);
    }
    // The Rust API in a dedicated worker of tab A, over the same manager: it waits while
    // tab B holds, and gets the lock once B gives it back.
    const wstatus = (p) => p.textContent("#wstatus");
    const wuntil = async (p, re, what) => {
      for (let i = 0; i < 100; i++) {
        if (re.test(await wstatus(p))) return true;
        await new Promise((r) => setTimeout(r, 50));
      }
      check(false, `${what} (worker status: ${JSON.stringify(await wstatus(p))})`);
      return false;
    };
    await b.click("#take");
    check(await until(b, /this tab holds it: true/, "tab B holds it again"), "B holds again");
    // The worker answers once its Rust app has loaded (a message before is not handled).
    await a.waitForFunction(() => document.getElementById("wstatus").textContent !== "starting the worker…", null, { timeout: 30000 });
    await a.click("#wtake");
    check(await wuntil(a, /this tab holds it: false[\s\S]*held by [\s\S]*waited for by/, "the worker waits while B holds"), "worker waits");
    check((await wstatus(a)).includes(expected), `worker: ${expected}`, await wstatus(a));
    await b.click("#give");
    check(await wuntil(a, /this tab holds it: true/, "the worker gets it once B gives it back"), "worker holds");
    check(await until(b, /held by/, "tab B sees the worker hold it"), "B sees the worker");
    await a.click("#wgive");
    check(await wuntil(a, /this tab holds it: false/, "the worker gave it back"), "worker released");
    await context.close();
  }
} finally {
  await browser.close();
  server.close();
}
console.log(`example: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
