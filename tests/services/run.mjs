// The lock services (js/services-api.js, issue #9) against the built dist/, in headless
// Chromium, across tabs and a dedicated worker: acquire() and its handle (await using,
// renew, leases, steals), holder labels in query() and status(), timeouts, LockHeldError,
// deadlock reports (acquire() and spec request()), LockService and LockBackend, the
// interplay with navigator.locks.request() on the same names, crash release of a leased
// lock, bad input. Each test runs in a browser context of its own (its own SharedWorker
// and storage). `node tests/services/run.mjs [--filter text]`.
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { serve } from "../../scripts/server.mjs";
import { launchOptions } from "../browser.mjs";
import { record } from "../results.mjs";

const root = new URL("../..", import.meta.url).pathname;
const argv = process.argv.slice(2);
const filter = argv.includes("--filter") ? argv[argv.indexOf("--filter") + 1] : null;
const results = [];
const TEST_TIMEOUT_MS = 60000;

const server = await serve(root);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());

async function test(name, fn) {
  if (filter && !name.includes(filter)) return;
  const ctx = await browser.newContext();
  const errors = [];
  ctx.on("weberror", (e) => errors.push(String(e.error())));
  let timer;
  const t0 = Date.now();
  try {
    await Promise.race([
      fn(ctx),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${TEST_TIMEOUT_MS} ms`)), TEST_TIMEOUT_MS))),
    ]);
    assert.deepEqual(errors, [], "uncaught errors in the pages");
    results.push([name, "pass"]);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, "FAIL", e && e.stack ? e.stack : String(e)]);
    console.log(`FAIL ${name}\n${e && e.stack ? e.stack : e}`);
  } finally {
    clearTimeout(timer);
    await ctx.close().catch(() => {});
  }
}

/**
 * A tab with the polyfill: `classic` deletes the native Web Locks API and loads
 * dist/web-locks.js (so navigator.locks is ours, and `S` is self.WebLocksWasm); otherwise
 * `S` is the ESM module web-locks-wasm/services and `L` the polyfill's manager (ours,
 * whatever the browser has).
 */
async function tab(ctx, { classic = true } = {}) {
  const page = await ctx.newPage();
  await page.goto(`${base}/tests/entry/blank.html`);
  await page.evaluate(async (classic) => {
    if (classic) {
      delete Navigator.prototype.locks;
      delete globalThis.LockManager;
      delete globalThis.Lock;
      await new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = "/dist/web-locks.js";
        s.onload = resolve;
        s.onerror = reject;
        document.head.appendChild(s);
      });
      window.S = self.WebLocksWasm;
      window.L = navigator.locks;
    } else {
      window.S = await import("/dist/services.js");
      window.L = (await import("/dist/index.js")).polyfill.locks;
    }
    await window.L.ready;
  }, classic);
  return page;
}

const until = async (page, fn, arg, ms = 5000) => {
  const end = Date.now() + ms;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms: ${fn}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

// ---- acquire() and its handle ----------------------------------------------------------

await test("acquire: a handle with name, mode, holder, held and signal; release settles after the release", async (ctx) => {
  for (const classic of [true, false]) {
    const a = await tab(ctx, { classic });
    const r = await a.evaluate(async () => {
      const h = await S.acquire("x", { holder: "Desk 1" });
      const before = { name: h.name, mode: h.mode, holder: h.holder, held: h.held, aborted: h.signal.aborted };
      const q1 = await L.query();
      const p = h.release();
      const heldAfterCall = h.held;
      await p;
      const again = await h.release(); // idempotent
      const q2 = await L.query();
      const shared = await S.acquire("y", { mode: "shared" });
      const noLabel = shared.holder;
      await shared.release();
      return { before, heldAfterCall, again: again === undefined, q1, q2: q2.held.length, noLabel, aborted: h.signal.aborted };
    });
    assert.deepEqual(r.before, { name: "x", mode: "exclusive", holder: "Desk 1", held: true, aborted: false });
    assert.equal(r.heldAfterCall, false);
    assert.ok(r.again);
    assert.equal(r.q1.held.length, 1);
    assert.deepEqual(Object.keys(r.q1.held[0]), ["clientId", "holder", "mode", "name"]);
    assert.equal(r.q1.held[0].holder, "Desk 1");
    assert.equal(r.q2, 0);
    assert.equal(r.noLabel, null);
    assert.equal(r.aborted, false, "release() does not abort the signal");
    await a.close();
  }
});

await test("acquire: `await using` releases at the end of the block; Symbol.dispose starts the release", async (ctx) => {
  const a = await tab(ctx);
  const r = await a.evaluate(`(async () => {
    let inside;
    {
      await using lock = await S.acquire("disposable");
      inside = (await L.query()).held.map((e) => e.name);
    }
    const after = (await L.query()).held.length;
    let h2;
    {
      using lock2 = await S.acquire("sync-disposable");
      h2 = lock2;
    }
    const heldAfterSync = h2.held;
    await new Promise((r) => setTimeout(r, 50));
    const after2 = (await L.query()).held.length;
    return { inside, after, heldAfterSync, after2 };
  })()`);
  assert.deepEqual(r, { inside: ["disposable"], after: 0, heldAfterSync: false, after2: 0 });
});

await test("acquire and navigator.locks.request() exclude each other on one name, across tabs and a worker", async (ctx) => {
  const a = await tab(ctx);
  const b = await tab(ctx);
  // a holds "x" through acquire(); b's request() and a worker's acquire() wait for it.
  await a.evaluate(async () => (window.h = await S.acquire("x", { holder: "A" })));
  await b.evaluate(() => {
    window.log = [];
    navigator.locks.request("x", async () => {
      log.push("b-request-start");
      await new Promise((r) => setTimeout(r, 100));
      log.push("b-request-end");
    });
    const w = new Worker(URL.createObjectURL(new Blob([`
      importScripts(${JSON.stringify(location.origin + "/dist/web-locks.js")});
      (async () => {
        const h = await self.WebLocksWasm.acquire("x", { holder: "worker" });
        postMessage("worker-acquired");
        await new Promise((r) => setTimeout(r, 50));
        await h.release();
        postMessage("worker-released");
      })();
    `], { type: "text/javascript" })));
    w.onmessage = (e) => log.push(e.data);
  });
  await until(b, () => new Promise((r) => navigator.locks.query().then((q) => r(q.pending.length === 2))));
  const q = await b.evaluate(() => navigator.locks.query());
  assert.deepEqual(q.held.map((e) => [e.name, e.holder]), [["x", "A"]]);
  assert.deepEqual(q.pending.map((e) => e.holder ?? null).sort(), [null, "worker"].sort());
  assert.deepEqual(await b.evaluate(() => log), []);
  await a.evaluate(() => h.release());
  await until(b, () => log.length === 4);
  const log = await b.evaluate(() => log);
  // FIFO: whichever came first runs to its end before the other starts.
  const i = log.indexOf("b-request-start");
  assert.ok(
    (i === 0 && log[1] === "b-request-end") || (i === 2 && log[0] === "worker-acquired" && log[1] === "worker-released"),
    JSON.stringify(log),
  );
  // and the reverse: request() holds, acquire(ifAvailable) is refused.
  const r = await a.evaluate(async () => {
    let release;
    navigator.locks.request("y", () => new Promise((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 20));
    let err;
    try {
      await S.acquire("y", { ifAvailable: true });
    } catch (e) {
      err = [e.name, e.code, e.holder, e instanceof S.LockHeldError, e instanceof Error];
    }
    release();
    return err;
  });
  assert.deepEqual(r, ["LockHeldError", "LOCK_HELD", null, true, true]);
});

await test("ifAvailable: LockHeldError names the holder's label", async (ctx) => {
  const a = await tab(ctx);
  const b = await tab(ctx, { classic: false });
  await a.evaluate(async () => (window.h = await S.acquire("fader-1", { holder: "Desk 2" })));
  const r = await b.evaluate(async () => {
    try {
      await S.acquire("fader-1", { ifAvailable: true, holder: "Desk 3" });
      return "granted";
    } catch (e) {
      return { name: e.name, code: e.code, lockName: e.lockName, holder: e.holder, message: e.message };
    }
  });
  assert.deepEqual(r, { name: "LockHeldError", code: "LOCK_HELD", lockName: "fader-1", holder: "Desk 2", message: 'The lock "fader-1" is held by "Desk 2".' });
  const after = await b.evaluate(() => L.query());
  assert.equal(after.pending.length, 0, "nothing left in the queue");
});

await test("status(): locked, mode, holder, holders, pending, expiresIn", async (ctx) => {
  const a = await tab(ctx);
  const r = await a.evaluate(async () => {
    const free = await S.status("s");
    const h1 = await S.acquire("s", { mode: "shared", holder: "R1", ttl: 10000 });
    const h2 = await S.acquire("s", { mode: "shared", ttl: 5000 });
    const w = S.acquire("s", { holder: "W" });
    await new Promise((r) => setTimeout(r, 20));
    const busy = await S.status("s");
    await h1.release();
    await h2.release();
    await (await w).release();
    return { free, busy };
  });
  assert.deepEqual(r.free, { locked: false, mode: null, holder: null, holders: 0, pending: 0, expiresIn: null });
  assert.equal(r.busy.locked, true);
  assert.equal(r.busy.mode, "shared");
  assert.equal(r.busy.holder, "R1");
  assert.equal(r.busy.holders, 2);
  assert.equal(r.busy.pending, 1);
  assert.ok(r.busy.expiresIn > 4500 && r.busy.expiresIn <= 5000, `expiresIn ${r.busy.expiresIn}`);
});

// ---- leases ---------------------------------------------------------------------------

await test("lease: expires while its holder lives; the next waiter is granted within ttl + 50 ms; the handle's signal aborts with TimeoutError", async (ctx) => {
  const a = await tab(ctx);
  const b = await tab(ctx);
  const TTL = 300;
  const t0 = await a.evaluate(async (ttl) => {
    window.h = await S.acquire("lease", { ttl, holder: "A" });
    window.abortedAt = null;
    h.signal.addEventListener("abort", () => (abortedAt = performance.timeOrigin + performance.now()));
    return performance.timeOrigin + performance.now();
  }, TTL);
  const r = await b.evaluate(async () => {
    await new Promise((r) => navigator.locks.request("lease", r));
    return performance.timeOrigin + performance.now();
  });
  const waited = r - t0;
  // From the grant as tab A saw it (the arbiter granted a little earlier, and the lease
  // runs from there): never early by more than that, at most 50 ms late.
  assert.ok(waited >= TTL - 20 && waited <= TTL + 50, `granted ${waited.toFixed(1)} ms after the acquire (ttl ${TTL})`);
  const s = await a.evaluate(() => ({ held: h.held, reason: h.signal.reason && h.signal.reason.name, abortedAt, renewed: null }));
  assert.equal(s.held, false);
  assert.equal(s.reason, "TimeoutError");
  assert.ok(s.abortedAt !== null);
  assert.equal(await a.evaluate(() => h.renew(1000)), false, "renew() on an expired handle: false");
  await a.evaluate(() => h.release()); // harmless
});

await test("lease: renew() extends it from now; renew() without a lease changes nothing; renew(ttl) starts one", async (ctx) => {
  const a = await tab(ctx);
  const r = await a.evaluate(async () => {
    const h = await S.acquire("r", { ttl: 200 });
    const out = [];
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 120));
      out.push(await h.renew());
    }
    const stillHeld = h.held;
    const left = (await S.status("r")).expiresIn;
    const plain = await S.acquire("p");
    const noLease = await plain.renew();
    const noLeaseStatus = (await S.status("p")).expiresIn;
    const started = await plain.renew(150);
    const startedStatus = (await S.status("p")).expiresIn;
    await new Promise((r) => setTimeout(r, 250));
    const plainHeld = plain.held;
    await h.release();
    return { out, stillHeld, left, noLease, noLeaseStatus, started, startedStatus, plainHeld };
  });
  assert.deepEqual(r.out, [true, true, true, true]);
  assert.equal(r.stillHeld, true, "held 480 ms with a 200 ms lease renewed every 120 ms");
  assert.ok(r.left > 150 && r.left <= 200, `left ${r.left}`);
  assert.equal(r.noLease, true);
  assert.equal(r.noLeaseStatus, null);
  assert.equal(r.started, true);
  assert.ok(r.startedStatus > 100 && r.startedStatus <= 150, `started ${r.startedStatus}`);
  assert.equal(r.plainHeld, false, "the lease renew(150) started ran out");
});

await test("lease: a holder that crashes while holding a leased lock is released as fast as an ordinary one", async (ctx) => {
  const samples = [];
  for (const ttl of [60000, undefined]) {
    const a = await tab(ctx);
    const b = await tab(ctx);
    await a.evaluate(async (ttl) => (window.h = await S.acquire(`crash-${ttl}`, { ttl })), ttl);
    await b.evaluate((name) => {
      window.granted = null;
      navigator.locks.request(name, () => (granted = performance.timeOrigin + performance.now()));
    }, `crash-${ttl}`);
    await until(b, () => new Promise((r) => navigator.locks.query().then((q) => r(q.pending.length === 1))));
    const cdp = await ctx.newCDPSession(a);
    const crashedAt = await b.evaluate(() => performance.timeOrigin + performance.now());
    cdp.send("Page.crash").catch(() => {});
    await until(b, () => granted !== null, undefined, 10000);
    samples.push((await b.evaluate(() => granted)) - crashedAt);
    await b.close();
  }
  // Both are released by the crash (the lease is a minute): within the same few tens of ms.
  assert.ok(samples.every((ms) => ms < 2000), JSON.stringify(samples));
  console.log(`     crash release: leased ${samples[0].toFixed(1)} ms, ordinary ${samples[1].toFixed(1)} ms`);
});

// ---- timeouts -------------------------------------------------------------------------

await test("timeout: rejects with TimeoutError and leaves no queue entry; never granted afterwards", async (ctx) => {
  const a = await tab(ctx);
  const b = await tab(ctx);
  await a.evaluate(async () => (window.h = await S.acquire("t")));
  const r = await b.evaluate(async () => {
    const t0 = performance.now();
    let err;
    try {
      await S.acquire("t", { timeout: 150 });
    } catch (e) {
      err = e;
    }
    const waited = performance.now() - t0;
    const q = await L.query();
    return { name: err && err.name, isDom: err instanceof DOMException, waited, pending: q.pending.length };
  });
  assert.equal(r.name, "TimeoutError");
  assert.ok(r.isDom);
  assert.ok(r.waited >= 145 && r.waited < 1000, `waited ${r.waited}`);
  assert.equal(r.pending, 0);
  await a.evaluate(() => h.release());
  const q = await a.evaluate(() => L.query());
  assert.deepEqual([q.held.length, q.pending.length], [0, 0], "the timed-out request was never granted");
});

// ---- deadlocks ------------------------------------------------------------------------

await test("deadlock: an A/B cycle across two tabs rejects one acquire() with DeadlockError, then both finish", async (ctx) => {
  const a = await tab(ctx);
  const b = await tab(ctx);
  await a.evaluate(async () => (window.hx = await S.acquire("x", { holder: "A" })));
  await b.evaluate(async () => (window.hy = await S.acquire("y", { holder: "B" })));
  await a.evaluate(() => {
    window.ay = S.acquire("y", { holder: "A" }).then(
      (h) => (h.release(), hx.release(), "granted"),
      (e) => e.name,
    );
  });
  await until(a, () => new Promise((r) => L.query().then((q) => r(q.pending.length === 1))));
  const r = await b.evaluate(async () => {
    try {
      await S.acquire("x", { holder: "B" });
      return "granted";
    } catch (e) {
      hy.release();
      return { name: e.name, isError: e instanceof S.DeadlockError, cycle: e.cycle };
    }
  });
  assert.equal(r.name, "DeadlockError");
  assert.ok(r.isError);
  assert.deepEqual(
    r.cycle.map((m) => [m.name, m.holder, m.mode]),
    [["x", "B", "exclusive"], ["x", "A", "exclusive"], ["y", "A", "exclusive"], ["y", "B", "exclusive"]],
  );
  assert.equal(await a.evaluate(() => ay), "granted");
  const q = await b.evaluate(() => L.query());
  assert.deepEqual([q.held.length, q.pending.length], [0, 0]);
});

await test("deadlock: a spec request() that closes a cycle keeps waiting; its context gets a weblocksdeadlock event", async (ctx) => {
  const a = await tab(ctx);
  const b = await tab(ctx);
  for (const [p, mine, other] of [[a, "x", "y"], [b, "y", "x"]]) {
    await p.evaluate(([mine]) => {
      window.events = [];
      addEventListener("weblocksdeadlock", (e) => events.push(e.detail.cycle.map((m) => m.name)));
      window.release = {};
      navigator.locks.request(mine, () => new Promise((r) => (release[mine] = r)));
    }, [mine, other]);
  }
  await until(b, () => new Promise((r) => navigator.locks.query().then((q) => r(q.held.length === 2))));
  await a.evaluate(() => void navigator.locks.request("y", () => {}));
  await until(a, () => new Promise((r) => navigator.locks.query().then((q) => r(q.pending.length === 1))));
  await b.evaluate(() => void navigator.locks.request("x", () => {}));
  await until(b, () => events.length === 1);
  assert.deepEqual(await b.evaluate(() => events), [["x", "x", "y", "y"]]);
  assert.deepEqual(await a.evaluate(() => events), [], "only the context that closed the cycle is told");
  const q = await b.evaluate(() => navigator.locks.query());
  assert.equal(q.pending.length, 2, "the spec request keeps waiting");
  // The app breaks the cycle itself: both finish.
  await a.evaluate(() => release.x());
  const empty = () => new Promise((r) => navigator.locks.query().then((q) => r(q.pending.length + q.held.length === 0)));
  const yOnly = () =>
    new Promise((r) => navigator.locks.query().then((q) => r(q.held.length === 1 && q.held[0].name === "y" && q.pending.length === 1)));
  await until(b, yOnly); // b got x, ran, released it; a still waits for y
  await b.evaluate(() => release.y());
  await until(b, empty);
});

// ---- LockService and LockBackend --------------------------------------------------------

await test("LockService: two tabs hand out 1,000 ticket numbers from an IndexedDB counter, no gap, no duplicate", async (ctx) => {
  const pages = [await tab(ctx), await tab(ctx)];
  const N = 500;
  const runs = pages.map((p) =>
    p.evaluate(async (n) => {
      const db = await new Promise((resolve, reject) => {
        const r = indexedDB.open("tickets", 1);
        r.onupgradeneeded = () => r.result.createObjectStore("c");
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      const tx = (mode, fn) =>
        new Promise((resolve, reject) => {
          const t = db.transaction("c", mode);
          const req = fn(t.objectStore("c"));
          t.oncomplete = () => resolve(req.result);
          t.onerror = () => reject(t.error);
        });
      const got = [];
      for (let i = 0; i < n; i++) {
        const lock = S.LockService.getScriptLock();
        await lock.waitLock(30000);
        if (!lock.hasLock()) throw new Error("waitLock resolved without the lock");
        const v = (await tx("readonly", (s) => s.get("n"))) || 0;
        await tx("readwrite", (s) => s.put(v + 1, "n"));
        got.push(v + 1);
        lock.releaseLock();
        if (lock.hasLock()) throw new Error("hasLock() after releaseLock()");
      }
      return got;
    }, N),
  );
  const all = (await Promise.all(runs)).flat().sort((x, y) => x - y);
  assert.equal(all.length, 2 * N);
  assert.deepEqual(all, Array.from({ length: 2 * N }, (_, i) => i + 1));
});

await test("LockService: tryLock(ms) true/false, waitLock's TimeoutError, each Lock object its own owner", async (ctx) => {
  const a = await tab(ctx);
  const r = await a.evaluate(async () => {
    const l1 = S.LockService.getLock("ls");
    const l2 = S.LockService.getLock("ls");
    const t1 = await l1.tryLock(0);
    const again = await l1.tryLock(0); // already held by this object
    const t2 = await l2.tryLock(50); // another owner, same context
    let wait;
    try {
      await l2.waitLock(30);
    } catch (e) {
      wait = [e.name, e.message];
    }
    const has = [l1.hasLock(), l2.hasLock()];
    l1.releaseLock();
    l1.releaseLock(); // no effect
    const t3 = await l2.tryLock(1000);
    l2.releaseLock();
    const pending = (await L.query()).pending.length;
    return { t1, again, t2, wait, has, t3, pending, script: S.LockService.getScriptLock() !== S.LockService.getScriptLock() };
  });
  assert.deepEqual(r, {
    t1: true,
    again: true,
    t2: false,
    wait: ["TimeoutError", "Lock timeout: another process was holding the lock for too long."],
    has: [true, false],
    t3: true,
    pending: 0,
    script: true,
  });
});

await test("LockBackend: acquire never waits and renews; lock ids; lockMayBeAvailable; wait; release/releaseAll; a stale lease never blocks", async (ctx) => {
  const a = await tab(ctx);
  const b = await tab(ctx);
  await a.evaluate(() => (window.be = new S.LockBackend()));
  const r1 = await a.evaluate(async () => {
    const first = await be.acquire("cron", 0.3);
    await new Promise((r) => setTimeout(r, 200));
    const renewed = await be.acquire("cron", 0.3); // renews to 300 ms from now
    return { first, renewed, id: be.getLockId(), holder: (await S.status("cron")).holder };
  });
  assert.deepEqual([r1.first, r1.renewed], [true, true]);
  assert.equal(r1.holder, r1.id, "the lock id is the holder's label");
  const r2 = await b.evaluate(async () => {
    const other = new S.LockBackend();
    const t0 = performance.now();
    const refused = await other.acquire("cron", 1);
    const quick = performance.now() - t0;
    const may = await other.lockMayBeAvailable("cron");
    const stillHeld = await other.wait("cron", 0.05); // the lease has >= 100 ms left
    const t1 = performance.now();
    const freed = await other.wait("cron", 5); // false once the lease ran out
    const waited = performance.now() - t1;
    const got = await other.acquire("cron", 1); // the stale lock never blocks
    const ids = other.getLockId() !== "" && typeof other.getLockId() === "string";
    await other.acquire("a");
    await other.acquire("b");
    await other.releaseAll();
    const after = (await L.query()).held.length;
    return { refused, quick, may, stillHeld, freed, waited, got, ids, after };
  });
  assert.equal(r2.refused, false);
  assert.ok(r2.quick < 200, `acquire() answered in ${r2.quick} ms`);
  assert.equal(r2.may, false);
  assert.equal(r2.stillHeld, true);
  assert.equal(r2.freed, false);
  assert.ok(r2.waited < 1000, `the lease ended, wait() returned after ${r2.waited} ms`);
  assert.equal(r2.got, true);
  assert.ok(r2.ids);
  assert.equal(r2.after, 0, "releaseAll released cron, a and b");
  // a's own lease ran out meanwhile: its backend acquires the lock anew.
  assert.equal(await a.evaluate(() => be.acquire("cron", 1)), true);
  assert.equal(await b.evaluate(async () => (await S.status("cron")).holder), r1.id);
});

// ---- bad input ------------------------------------------------------------------------

await test("bad input: TypeError and RangeError for every extra; request()'s own errors in its order; dead handles harmless", async (ctx) => {
  const a = await tab(ctx);
  const r = await a.evaluate(async () => {
    const err = async (fn) => {
      try {
        await fn();
        return "ok";
      } catch (e) {
        return e.name;
      }
    };
    const out = {
      noArgs: await err(() => S.acquire()),
      optionsNotObject: await err(() => S.acquire("x", 5)),
      holderNumber: await err(() => S.acquire("x", { holder: 5 })),
      holderTooLong: await err(() => S.acquire("x", { holder: "h".repeat(1025) })),
      holderMax: await err(() => S.acquire("x", { holder: "h".repeat(1024) }).then((h) => h.release())),
      timeoutNegative: await err(() => S.acquire("x", { timeout: -1 })),
      timeoutNaN: await err(() => S.acquire("x", { timeout: NaN })),
      timeoutInfinite: await err(() => S.acquire("x", { timeout: Infinity })),
      ttlZero: await err(() => S.acquire("x", { ttl: 0 })),
      ttlNegative: await err(() => S.acquire("x", { ttl: -5 })),
      ttlInfinite: await err(() => S.acquire("x", { ttl: Infinity })),
      mode: await err(() => S.acquire("x", { mode: "bogus" })),
      signal: await err(() => S.acquire("x", { signal: {} })),
      dash: await err(() => S.acquire("-x")),
      stealIfAvailable: await err(() => S.acquire("x", { steal: true, ifAvailable: true })),
      stealShared: await err(() => S.acquire("x", { steal: true, mode: "shared" })),
      aborted: await err(() => S.acquire("x", { signal: AbortSignal.abort() })),
      renewBad: await err(async () => {
        const h = await S.acquire("x");
        try {
          await h.renew(-1);
        } finally {
          await h.release();
        }
      }),
    };
    const h = await S.acquire("x");
    await h.release();
    out.deadRenew = await h.renew(100);
    out.deadRelease = (await h.release()) === undefined;
    out.left = (await L.query()).held.length + (await L.query()).pending.length;
    return out;
  });
  assert.deepEqual(r, {
    noArgs: "TypeError",
    optionsNotObject: "TypeError",
    holderNumber: "TypeError",
    holderTooLong: "RangeError",
    holderMax: "ok",
    timeoutNegative: "RangeError",
    timeoutNaN: "RangeError",
    timeoutInfinite: "RangeError",
    ttlZero: "RangeError",
    ttlNegative: "RangeError",
    ttlInfinite: "RangeError",
    mode: "TypeError",
    signal: "TypeError",
    dash: "NotSupportedError",
    stealIfAvailable: "NotSupportedError",
    stealShared: "NotSupportedError",
    aborted: "AbortError",
    renewBad: "RangeError",
    deadRenew: false,
    deadRelease: true,
    left: 0,
  });
});

await test("steal: the handle's signal aborts with AbortError and held turns false", async (ctx) => {
  const a = await tab(ctx);
  const b = await tab(ctx);
  await a.evaluate(async () => (window.h = await S.acquire("st")));
  await b.evaluate(() => void navigator.locks.request("st", { steal: true }, () => {}));
  await until(a, () => !h.held);
  assert.deepEqual(await a.evaluate(() => [h.held, h.signal.reason.name]), [false, "AbortError"]);
});

const chromiumVersion = browser.version();
await browser.close();
server.close();
const failed = results.filter((r) => r[1] !== "pass");
console.log(`services: ${results.length - failed.length} passed, ${failed.length} failed`);
record("services", { engine: "Chromium", version: `Chromium ${chromiumVersion}`, rows: { "lock services across tabs": `${failed.length ? "fail" : "pass"} (${results.length} checks)` } });
process.exit(failed.length ? 1 : 0);
