#!/usr/bin/env node
// Cross-engine check in Firefox ESR (Debian's firefox-esr, driven by puppeteer-core over
// WebDriver BiDi; playwright-core cannot drive it). Run by the test command (scripts/setup.sh installs both):
//   apt-get install firefox-esr && node tests/conformance/firefox.mjs   (after the build)
//
// 1. Our conformance suite (tests/conformance/page.html) against Firefox's native
//    navigator.locks and ours, in a window and in a dedicated worker.
// 2. Two tabs with ours (the classic script, arbiter in the SharedWorker): 2 × 100 requests
//    on one exclusive lock with 5 ms holds must never overlap; then a holder tab closes and
//    the waiter in the other tab must be granted.
// 3. A dedicated worker contends with a tab; the lock services (a holder's label, a
//    lease) across two tabs.
// Exit code 1 if ours fails a test that Firefox's own implementation passes, or part 2 fails.
import { execFileSync } from "node:child_process";
import { record, versionOf } from "../results.mjs";
import puppeteer from "puppeteer-core";
import { serve } from "../../scripts/server.mjs";

const FIREFOX = process.env.FIREFOX || "/usr/bin/firefox-esr";
const root = new URL("../..", import.meta.url).pathname;
const server = await serve(root);
const base = `http://localhost:${server.address().port}`;
// No preallocated content process: a new tab's process is then the one that appears with it
// (the holder-crash check below kills it).
const browser = await puppeteer.launch({ browser: "firefox", executablePath: FIREFOX, headless: true, extraPrefsFirefox: { "dom.ipc.processPrelaunch.enabled": false } });
let failed = 0;

// ---- 1. conformance ----
const runs = {};
for (const scope of ["window", "worker"]) {
  for (const target of ["native", "ours"]) {
    const page = await browser.newPage();
    await page.goto(`${base}/tests/conformance/page.html?target=${target}&scope=${scope}`, { waitUntil: "load" });
    await page.waitForFunction(() => self.__done === true, { timeout: 300000, polling: 200 });
    const r = await page.evaluate(() => ({ results: self.__results, fatal: self.__fatal || null, ua: navigator.userAgent }));
    await page.close();
    runs[`${target}/${scope}`] = r;
    const count = (s) => r.results.filter((t) => t.status === s).length;
    console.log(`${target}/${scope}: ${count("pass")} passed, ${count("fail")} failed, ${count("skip")} skipped${r.fatal ? ` (harness: ${r.fatal})` : ""}`);
  }
  const status = (target) => new Map(runs[`${target}/${scope}`].results.map((t) => [`[${t.list}] ${t.name}`, t]));
  const native = status("native");
  for (const [name, t] of status("ours")) {
    if (t.status !== "fail") continue;
    const n = native.get(name);
    const alsoNative = n && n.status === "fail";
    if (!alsoNative) failed++;
    console.log(`  ${alsoNative ? "fails on native too" : "FAIL (ours only)"}: ${name}: ${String(t.error).slice(0, 160)}`);
  }
}

const rows = {};
for (const scope of ["window", "worker"]) {
  const r = runs[`ours/${scope}`].results;
  const n = runs[`native/${scope}`].results;
  const bad = r.filter((t) => t.status === "fail" && !n.some((x) => x.list === t.list && x.name === t.name && x.status === "fail"));
  rows[`conformance, ${scope === "window" ? "window" : "dedicated worker"}`] = `${bad.length ? "fail" : "pass"} (${r.filter((t) => t.status === "pass").length} tests)`;
}

// ---- 2. two tabs, one lock space ----
const tab = async () => {
  const p = await browser.newPage();
  await p.goto(`${base}/bench/page.html?impl=ours`, { waitUntil: "load" });
  await p.evaluate(() => window.ready);
  return p;
};
const [a, b] = [await tab(), await tab()];
const via = await b.evaluate(async () => (await navigator.locks.ready).client.via);
const spans = (
  await Promise.all(
    [a, b].map((p, who) =>
      p.evaluate(async (who) => {
        const spans = [];
        for (let i = 0; i < 100; i++) {
          await navigator.locks.request("ff", async () => {
            const s = now();
            await new Promise((r) => setTimeout(r, 5));
            spans.push([s, now(), who]);
          });
        }
        return spans;
      }, who),
    ),
  )
)
  .flat()
  .sort((x, y) => x[0] - y[0]);
// Firefox coarsens performance.now() to 1 ms here (not cross-origin isolated), and each
// process has its own timeOrigin: overlaps up to SLACK are clock noise, not double grants;
// holds of 5 ms make a real double grant overlap by several ms.
const SLACK = 2;
let overlaps = 0;
let worst = 0;
for (let i = 1; i < spans.length; i++) {
  const o = spans[i - 1][1] - spans[i][0];
  worst = Math.max(worst, o);
  if (o > SLACK) overlaps++;
}
const interleaved = spans.some((s, i) => i && s[2] !== spans[i - 1][2]);
console.log(`two tabs, 2 × 100 exclusive requests (5 ms holds): ${spans.length} grants, ${overlaps} overlaps beyond ${SLACK} ms (largest apparent overlap ${worst.toFixed(2)} ms), interleaved: ${interleaved}, client via ${via}`);
if (spans.length !== 200 || overlaps || !interleaved) failed++;
rows["two tabs contend on one lock"] = spans.length === 200 && !overlaps && interleaved ? "pass" : "fail";

await a.evaluate(() => {
  navigator.locks.request("held", () => new Promise(() => {})); // held until the tab goes
});
await a.waitForFunction(async () => (await navigator.locks.query()).held.length === 1, { timeout: 10000 });
await b.evaluate(() => {
  window.got = null;
  navigator.locks.request("held", () => (window.got = now()));
});
await b.waitForFunction(async () => (await navigator.locks.query()).pending.length === 1, { timeout: 10000 });
await new Promise((r) => setTimeout(r, 300));
const early = await b.evaluate(() => window.got);
const t0 = Date.now();
await a.close();
await b.waitForFunction(() => window.got !== null, { timeout: 10000 });
const ms = (await b.evaluate(() => window.got)) - t0;
console.log(`holder tab closed → waiter granted: ${early === null ? "not before" : "BEFORE the close (!)"}, then after ${ms.toFixed(1)} ms`);
if (early !== null) failed++;
rows["holder tab closed: the waiter is granted"] = early === null ? "pass" : "fail";

// ---- 3. workers, the lock services, the arbiter's SharedWorker gone ----
// A dedicated worker (importScripts of the classic script, which fetches
// web-locks-arbiter.js next to it: the worker finds that URL from an error's stack, in
// Firefox's format too) shares the tabs' lock space, and so do the lock services.
const c = await tab();
const d = await tab();
const workerSees = await c.evaluate(async () => {
  await new Promise((granted) => navigator.locks.request("w", () => (granted(), new Promise((r) => (window.releaseW = r)))));
  // As the tab did (bench/page.html): ours, not Firefox's own, in the worker too.
  const w = new Worker(URL.createObjectURL(new Blob([`
    delete WorkerNavigator.prototype.locks;
    delete self.LockManager;
    delete self.Lock;
    importScripts(${JSON.stringify(location.origin + "/dist/web-locks.js")});
    onmessage = async (e) => {
      if (e.data === "try") postMessage(await navigator.locks.request("w", { ifAvailable: true }, (l) => !!l));
      else postMessage(await navigator.locks.request("w", (l) => "granted " + !!l));
    };
  `], { type: "text/javascript" })));
  const ask = (m) => new Promise((r) => ((w.onmessage = (e) => r(e.data)), w.postMessage(m)));
  const busy = await ask("try");
  const waiting = ask("wait");
  await new Promise((r) => setTimeout(r, 100));
  window.releaseW();
  return [busy, await waiting];
});
console.log(`dedicated worker: ifAvailable while the tab holds it: ${workerSees[0]}; waiting: ${workerSees[1]}`);
if (workerSees[0] !== false || workerSees[1] !== "granted true") failed++;
rows["a dedicated worker contends with a tab"] = workerSees[0] === false && workerSees[1] === "granted true" ? "pass" : "fail";
const services = await d.evaluate(async () => {
  const h = await WebLocksWasm.acquire("svc", { holder: "Desk 1", ttl: 300 });
  return h.holder;
});
const refused = await c.evaluate(async () => {
  try {
    await WebLocksWasm.acquire("svc", { ifAvailable: true });
    return "granted";
  } catch (e) {
    return `${e.name} ${e.holder}`;
  }
});
const expired = await c.evaluate(async () => {
  const t0 = performance.now();
  const h = await WebLocksWasm.acquire("svc");
  await h.release();
  return performance.now() - t0;
});
console.log(`lock services: held by ${services}, other tab refused (${refused}), lease ended, granted after ${expired.toFixed(0)} ms`);
if (services !== "Desk 1" || refused !== "LockHeldError Desk 1" || !(expired < 1000)) failed++;
rows["lock services across tabs"] = services === "Desk 1" && refused === "LockHeldError Desk 1" && expired < 1000 ? "pass" : "fail";
// A shared worker and a service worker (tests/conformance/contender.js) contend with a tab
// in the same lock space: each sees the tab's lock as unavailable, then waits for it.
const others = await c.evaluate(async () => (await import("/tests/conformance/others.mjs")).contendOthers());
const othersOk = others.busy.every((b) => b === false) && others.got.every((g) => g === "granted true");
console.log(`shared worker, service worker: ifAvailable while the tab holds it: ${others.busy}; waiting: ${others.got}`);
if (!othersOk) failed++;
rows["nested, shared and service workers contend with a tab"] = othersOk ? "pass (shared and service worker)" : "fail";

// Holder crashed: each tab here gets a content process of its own (Fission), so the
// holder's is the one that appeared when it opened; it is killed with SIGKILL (WebDriver
// BiDi has no crash command). Three attempts.
const contentProcesses = () => {
  try {
    return execFileSync("pgrep", ["-f", "contentproc.* tab$"], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
const crash = [];
for (let i = 0; i < 3; i++) {
  try {
    const before = contentProcesses();
    const h = await tab();
    const mine = contentProcesses().filter((p) => !before.includes(p));
    const w = await tab();
    if (mine.length !== 1) throw new Error(`cannot tell the holder's content process (${mine.length} new)`);
    const name = `crash${i}`;
    await h.evaluate((n) => void navigator.locks.request(n, () => new Promise(() => {})), name);
    await h.waitForFunction(async (n) => (await navigator.locks.query()).held.some((l) => l.name === n), { timeout: 10000 }, name);
    await w.evaluate((n) => {
      window.got = null;
      navigator.locks.request(n, () => (window.got = now()));
    }, name);
    await w.waitForFunction(async (n) => (await navigator.locks.query()).pending.some((l) => l.name === n), { timeout: 10000 }, name);
    await new Promise((r) => setTimeout(r, 300));
    if ((await w.evaluate(() => window.got)) !== null) throw new Error("the waiter was granted BEFORE the holder died");
    const t0 = Date.now();
    process.kill(mine[0], "SIGKILL");
    const got = await w.waitForFunction(() => window.got, { timeout: 10000 }).then(() => w.evaluate(() => window.got), () => null);
    crash.push(got === null ? "no grant within 10 s" : Math.round(got - t0));
    await w.close().catch(() => {});
    await h.close().catch(() => {});
  } catch (e) {
    crash.push(`error: ${e.message}`);
  }
}
console.log(`holder tab's content process killed → waiter granted: ${crash.map((x) => (typeof x === "number" ? `${x} ms` : x)).join(", ")}`);
const crashOk = crash.every((x) => typeof x === "number");
if (!crashOk) failed++;
rows["holder tab crashed: the waiter is granted"] = crashOk ? "pass" : "fail";

// Not driven in Firefox: freezing a tab, and killing the SharedWorker (no target for it
// over BiDi).

await browser.close();
server.close();
for (const [what, why] of [
  ["frozen tab keeps its lock", "not drivable: no Page Lifecycle freeze over WebDriver BiDi"],
  ["arbiter SharedWorker killed", "not drivable: no target for the SharedWorker over WebDriver BiDi"],
]) rows[what] = why;
record("firefox", { engine: "Firefox", version: versionOf(runs["ours/window"].ua), rows });
console.log(failed ? `firefox: ${failed} failure(s)` : `firefox: ok (${runs["ours/window"].ua})`);
process.exit(failed ? 1 : 0);
