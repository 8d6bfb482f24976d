// Storage failures (issue #12): the polyfill never proceeds in a mode that could grant a
// name twice. Driven in Debian's Chromium:
// 1. storage blocked by the user (the profile's cookie content setting: IndexedDB, the
//    SharedWorker and localStorage are refused): ours and Chromium's own, window and
//    dedicated worker, give the same answers: validation errors first, then
//    SecurityError "The request was denied." for request() (also ifAvailable and steal)
//    and query(); no callback runs. Ours also on a plain-http origin, where the browser
//    has no API of its own; `ready` says mode "denied" and why. The same in Firefox ESR
//    (cookies blocked), where its own refuses too (before validating).
// 2. `indexedDB.open` throws, and `indexedDB` missing, in one tab: that tab refuses the
//    same way, and a normal tab beside it holds and queries as usual; the refused tab
//    leaves no database behind. Where open() works again later, a call a second or more
//    after the last attempt tries again and the tab joins the lock space.
// 3. quota exhausted mid-run (CDP Storage.overrideQuotaForOrigin to 1 byte, then a write
//    that fails with QuotaExceededError): Chromium still creates the polyfill's empty
//    databases, so new tabs and workers join in shared mode and locks stay exact: three
//    tabs and a worker contend on one lock with no overlap, across an arbiter kill.
//
//   node tests/e2e/storage.mjs
import assert from "node:assert/strict";
import { checkExclusion, startHarness, unsettled } from "./harness.mjs";

const results = [];
const figures = {};
async function run(what, fn) {
  try {
    await fn();
    results.push([what, "pass"]);
    console.log(`ok   ${what}`);
  } catch (e) {
    results.push([what, "FAIL"]);
    console.log(`FAIL ${what}\n${e && e.stack ? e.stack : e}`);
  }
}

/** What request() and query() answer in this context (a function run in the page or worker). */
const answers = async () => {
  const out = {};
  let called = 0;
  const cb = () => called++;
  const t = async (k, f) => {
    try {
      await f();
      out[k] = "resolved";
    } catch (e) {
      out[k] = e.name;
    }
  };
  const L = navigator.locks;
  await t("dash", () => L.request("-a", cb));
  await t("steal+ifAvailable", () => L.request("a", { steal: true, ifAvailable: true }, cb));
  await t("shared steal", () => L.request("a", { mode: "shared", steal: true }, cb));
  await t("bad mode", () => L.request("a", { mode: "x" }, cb));
  await t("no callback", () => L.request("a"));
  await t("aborted", () => {
    const c = new AbortController();
    c.abort();
    return L.request("a", { signal: c.signal }, cb);
  });
  await t("request", () => L.request("a", cb));
  await t("ifAvailable", () => L.request("a", { ifAvailable: true }, cb));
  await t("steal", () => L.request("a", { steal: true }, cb));
  await t("shared", () => L.request("a", { mode: "shared" }, cb));
  await t("query", () => L.query());
  out.message = await L.request("a", cb).catch((e) => e.message);
  out.called = called;
  return out;
};
const EXPECTED = {
  dash: "NotSupportedError",
  "steal+ifAvailable": "NotSupportedError",
  "shared steal": "NotSupportedError",
  "bad mode": "TypeError",
  "no callback": "TypeError",
  aborted: "AbortError",
  request: "SecurityError",
  ifAvailable: "SecurityError",
  steal: "SecurityError",
  shared: "SecurityError",
  query: "SecurityError",
  message: "The request was denied.",
  called: 0,
};
const inWorker = (fn) =>
  `(async () => { try { postMessage(await (${fn})()); } catch (e) { postMessage(String(e)); } })()`;

// ---- 1. storage blocked by the user --------------------------------------------------
for (const insecure of [false, true]) {
  const h = await startHarness({ insecure, prefs: { profile: { default_content_setting_values: { cookies: 2 } } } });
  try {
    const where = insecure ? "plain http" : "localhost";
    for (const target of insecure ? ["ours"] : ["native", "ours"]) {
      await run(`storage blocked, ${where}, ${target}: window and dedicated worker refuse as Chromium's own does`, async () => {
        const s = await h.scene({ target, freezable: true }); // the profile's own context: its settings
        const p = await s.context.newPage();
        try {
          await p.goto(s.url("blocked"));
          await p.evaluate(() => globalThis.E2E.ready.then(() => 0));
          const env = await p.evaluate(async () => ({
            secure: isSecureContext,
            idb: await new Promise((r) => {
              const q = indexedDB.open("probe-storage");
              q.onsuccess = () => (q.result.close(), indexedDB.deleteDatabase("probe-storage"), r("ok"));
              q.onerror = () => r(q.error.name);
            }),
          }));
          assert.equal(env.idb, "UnknownError", "the profile blocks storage (IndexedDB refused)");
          assert.equal(env.secure, !insecure);
          assert.deepEqual(await p.evaluate(answers), EXPECTED, "window");
          const worker = await p.evaluate(
            ([src, ours]) =>
              new Promise((resolve) => {
                if (ours) {
                  // The worker loads the polyfill itself; the native API is deleted first.
                  src = `delete WorkerNavigator.prototype.locks; importScripts("${location.origin}/dist/web-locks.js"); ${src}`;
                }
                const w = new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
                w.onmessage = (e) => resolve(e.data);
                w.onerror = (e) => resolve(`worker error ${e.message}`);
              }),
            [inWorker(answers.toString()), target === "ours"],
          );
          assert.deepEqual(worker, EXPECTED, "dedicated worker");
          if (target === "ours") {
            const ready = await p.evaluate(async () => {
              const d = await navigator.locks.ready;
              return { mode: d.mode, reason: d.reason };
            });
            assert.equal(ready.mode, "denied");
            assert.match(ready.reason, /IndexedDB failed: UnknownError/);
            // The lock services refuse the same way (acquire() is a request, status() a query).
            const services = await p.evaluate(async () => {
              const W = globalThis.WebLocksWasm;
              const name = (f) => f().then(() => "resolved", (e) => e.name);
              return { acquire: await name(() => W.acquire("a")), status: await name(() => W.status("a")) };
            });
            assert.deepEqual(services, { acquire: "SecurityError", status: "SecurityError" });
          }
        } finally {
          await p.close();
        }
      });
    }
  } finally {
    await h.close();
  }
}

// ---- 1b. the same in Firefox ESR (cookies blocked: network.cookie.cookieBehavior 2) -----
// Firefox's own refuses before it validates (a name starting with "-" is a SecurityError
// there too); ours validates first, as Chromium does. The refusals themselves agree.
{
  const { default: puppeteer } = await import("puppeteer-core");
  const { serve } = await import("../../scripts/server.mjs");
  const server = await serve(new URL("../..", import.meta.url).pathname);
  const base = `http://localhost:${server.address().port}`;
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
    headless: true,
    extraPrefsFirefox: { "network.cookie.cookieBehavior": 2 },
  });
  try {
    for (const target of ["native", "ours"]) {
      await run(`storage blocked, Firefox ESR, ${target}: request() and query() refused with SecurityError`, async () => {
        const p = await browser.newPage();
        try {
          await p.goto(`${base}/tests/entry/blank.html`);
          const r = await p.evaluate(
            async (ours, answersSrc) => {
              const idb = await new Promise((res) => {
                try {
                  const q = indexedDB.open("probe-storage");
                  q.onsuccess = () => res("ok");
                  q.onerror = () => res(q.error.name);
                } catch (e) {
                  res(e.name);
                }
              });
              let mode = null;
              if (ours) {
                delete Navigator.prototype.locks;
                delete globalThis.LockManager;
                delete globalThis.Lock;
                await new Promise((res, rej) => {
                  const s = document.createElement("script");
                  s.src = "/dist/web-locks.js";
                  s.onload = res;
                  s.onerror = rej;
                  document.head.append(s);
                });
                mode = (await navigator.locks.ready).mode;
              }
              return { idb, mode, ...(await (0, eval)(`(${answersSrc})`)()) };
            },
            target === "ours",
            answers.toString(),
          );
          assert.equal(r.idb, "SecurityError", "the profile blocks storage (IndexedDB refused)");
          for (const k of ["request", "ifAvailable", "steal", "shared", "query"]) assert.equal(r[k], "SecurityError", k);
          assert.equal(r.called, 0, "no callback ran");
          if (target === "ours") {
            assert.equal(r.mode, "denied");
            for (const k of ["dash", "steal+ifAvailable", "shared steal", "bad mode", "no callback", "aborted"]) assert.equal(r[k], EXPECTED[k], k);
          }
        } finally {
          await p.close();
        }
      });
    }
  } finally {
    await browser.close();
    server.close();
  }
}

// ---- 2. indexedDB.open throws; indexedDB missing ----------------------------------------
const h = await startHarness();
try {
  for (const [what, script] of [
    ["indexedDB.open throws", "IDBFactory.prototype.open = function () { throw new DOMException('blocked by the test', 'SecurityError'); };"],
    ["indexedDB missing", "delete Window.prototype.indexedDB; delete self.indexedDB;"],
  ]) {
    await run(`${what}: that tab refuses (SecurityError), a normal tab beside it works, nothing left behind`, async () => {
      const s = await h.scene({ target: "ours" });
      try {
        const ok = await s.tab("ok");
        await ok.call("acquire", "k1", "x", {});
        await ok.call("waitGranted", "k1");
        const p = await s.context.newPage();
        await p.addInitScript(script);
        await p.goto(s.url("refused"));
        await p.evaluate(() => globalThis.E2E.ready.then(() => 0));
        assert.deepEqual(await p.evaluate(answers), EXPECTED);
        const ready = await p.evaluate(async () => {
          const d = await navigator.locks.ready;
          return { mode: d.mode, reason: d.reason, client: d.client && d.client.id };
        });
        assert.equal(ready.mode, "denied");
        assert.match(ready.reason, what.includes("missing") ? /no IndexedDB/ : /IndexedDB failed: SecurityError/);
        // The normal tab holds its lock and sees only its own in query().
        const q = await ok.call("query");
        assert.deepEqual(q.held.map((e) => e.name), ["x"]);
        assert.deepEqual(q.pending, []);
        const dbs = await ok.eval(async () => (await indexedDB.databases()).map((d) => d.name));
        const probes = dbs.filter((n) => n.startsWith("web-locks-wasm-c-"));
        assert.equal(probes.length, 1, `one probe database (the normal tab's): ${dbs}`);
        await ok.call("release", "k1");
      } finally {
        await s.close();
      }
    });
  }

  await run("IndexedDB fails, then works: a call a second later tries again and joins the lock space", async () => {
    const s = await h.scene({ target: "ours" });
    try {
      const ok = await s.tab("ok2");
      const p = await s.context.newPage();
      await p.addInitScript(`self.__blockIDB = true;
        const open = IDBFactory.prototype.open;
        IDBFactory.prototype.open = function (...a) {
          if (self.__blockIDB) throw new DOMException("blocked by the test", "UnknownError");
          return open.apply(this, a);
        };`);
      await p.goto(s.url("later"));
      await p.evaluate(() => globalThis.E2E.ready.then(() => 0));
      const first = await p.evaluate(async () => ({
        mode: (await navigator.locks.ready).mode,
        request: await navigator.locks.request("y", () => "granted").catch((e) => e.name),
      }));
      assert.deepEqual(first, { mode: "denied", request: "SecurityError" });
      // Still blocked a second later: the retry fails, and the call is refused.
      const blocked = await p.evaluate(async () => {
        await new Promise((r) => setTimeout(r, 1100));
        return navigator.locks.request("y", () => "granted").catch((e) => e.name);
      });
      assert.equal(blocked, "SecurityError");
      // Unblocked: within the second, still refused (no new attempt yet); after it, joined.
      const later = await p.evaluate(async () => {
        self.__blockIDB = false;
        const soon = await navigator.locks.request("y", () => "granted").catch((e) => e.name);
        await new Promise((r) => setTimeout(r, 1100));
        let release;
        const held = new Promise((r) => (release = r));
        const granted = await new Promise((res, rej) => navigator.locks.request("y", () => (res("granted"), held)).catch(rej));
        self.__releaseY = release;
        const d = await navigator.locks.ready;
        return { soon, granted, mode: d.mode, client: d.client.clientId };
      });
      assert.equal(later.soon, "SecurityError");
      assert.equal(later.granted, "granted");
      assert.equal(later.mode, "shared");
      const q = await ok.call("query");
      assert.deepEqual(q.held.map((e) => [e.name, e.clientId]), [["y", later.client]], "the other tab sees its lock");
      await p.evaluate(() => self.__releaseY());
    } finally {
      await s.close();
    }
  });

  // ---- 3. quota exhausted mid-run ---------------------------------------------------------
  await run("quota exhausted mid-run: new tabs and workers join shared, exclusion holds across an arbiter kill", async () => {
    const s = await h.scene({ target: "ours" });
    try {
      const a = await s.tab("qa");
      const b = await s.tab("qb");
      const cdp = await a.cdp();
      await cdp.send("Storage.overrideQuotaForOrigin", { origin: h.base, quotaSize: 1 });
      const write = await a.eval(async () => {
        const db = await new Promise((r, j) => {
          const q = indexedDB.open("filler", 1);
          q.onupgradeneeded = () => q.result.createObjectStore("s");
          q.onsuccess = () => r(q.result);
          q.onerror = () => j(q.error);
        });
        const res = await new Promise((r) => {
          const tx = db.transaction("s", "readwrite");
          tx.objectStore("s").put(new Uint8Array(4096), 1);
          tx.oncomplete = () => r("ok");
          tx.onabort = () => r(tx.error.name);
        });
        db.close();
        indexedDB.deleteDatabase("filler");
        return res;
      });
      assert.equal(write, "QuotaExceededError", "the quota is exhausted");
      const c = await s.tab("qc");
      const w = await c.spawn("worker", "qw");
      const modes = [await a.call("info"), await c.call("info"), await w.call("info")].map((i) => i.mode);
      assert.deepEqual(modes, ["shared", "shared", "shared"]);
      const agents = [a, b, c, w];
      await Promise.all(agents.map((x) => x.call("clockProbe")));
      const clock = async () => Object.fromEntries(await Promise.all(agents.map(async (x) => [x.label, await x.call("clock")])));
      const contend = (tag) => Promise.all(agents.map((x, i) => x.call("loop", `${tag}${i}-`, "q-lock", 30, { hold: 1, seed: i + 1 })));
      const before = (await contend("pre")).flat();
      const kill = await s.killArbiter(a);
      const t0 = Date.now();
      const after = (await contend("post")).flat();
      figures["quota: first round after the arbiter kill, ms"] = Date.now() - t0;
      const recs = [...before, ...after];
      assert.deepEqual(checkExclusion(recs, {}, { clock: await clock() }), [], "no overlapping holds");
      assert.equal(unsettled(recs).length, 0, "no lost request");
      assert.ok(recs.every((r) => r.outcome === "released"), "every request granted and released");
      assert.ok((await a.call("info")).epoch > kill.epoch, "a new arbiter leads");
      // query() from one tab shows another's lock.
      await c.call("acquire", "held", "q-seen", {});
      await c.call("waitGranted", "held");
      const q = await b.call("query");
      assert.ok(q.held.some((e) => e.name === "q-seen"), "b sees c's lock");
      await c.call("release", "held");
      await cdp.send("Storage.overrideQuotaForOrigin", { origin: h.base });
    } finally {
      await s.close();
    }
  });
} finally {
  await h.close();
}

for (const [k, v] of Object.entries(figures)) console.log(`     ${k}: ${v}`);
const failed = results.filter(([, r]) => r !== "pass");
console.log(`storage: ${results.length - failed.length}/${results.length} pass`);
process.exit(failed.length ? 1 : 0);
