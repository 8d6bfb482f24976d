// Entry-point tests against the built dist/: the ponyfill import leaves globals untouched,
// auto installs only where missing, install({force}) replaces, the classic script serves
// calls made before the wasm is ready in order (window and worker), and importing under
// Node does not throw.
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { serve } from "../../scripts/server.mjs";
import { launchOptions } from "../browser.mjs";

const root = new URL("../..", import.meta.url).pathname;
const results = [];
// A test that hangs (a page that never answers) fails after this long instead of stalling
// the whole run.
const TEST_TIMEOUT_MS = 60000;
async function test(name, fn) {
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${TEST_TIMEOUT_MS} ms`)), TEST_TIMEOUT_MS))),
    ]);
    results.push([name, "pass"]);
  } catch (e) {
    results.push([name, "FAIL", e && e.stack ? e.stack : String(e)]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- Node ----
await test("node: importing the ponyfill does not throw or touch globals", async () => {
  const before = Object.getOwnPropertyNames(globalThis).sort().join();
  const m = await import("../../dist/index.js");
  assert.equal(Object.getOwnPropertyNames(globalThis).sort().join(), before);
  assert.equal(typeof m.locks.request, "function");
  assert.equal(typeof m.install, "function");
  assert.ok(m.locks instanceof m.LockManager);
  assert.throws(() => new m.LockManager(), TypeError);
  assert.throws(() => new m.Lock(), TypeError);
});

// ---- browser ----
const server = await serve(root);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());
const DELETE_NATIVE = `delete Navigator.prototype.locks; delete globalThis.LockManager; delete globalThis.Lock;`;

async function inPage(fn, arg) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base}/tests/entry/blank.html`);
  try {
    return await page.evaluate(fn, arg);
  } finally {
    await page.close();
    assert.deepEqual(errors, []);
  }
}

function globalsSnapshot() {
  return `() => JSON.stringify({
    names: Object.getOwnPropertyNames(globalThis).sort(),
    nav: String(Object.getOwnPropertyDescriptor(Navigator.prototype, "locks")?.get),
    LockManager: String(globalThis.LockManager), Lock: String(globalThis.Lock),
  })`;
}

for (const native of [true, false]) {
  const label = native ? "with native" : "without native";
  await test(`ponyfill import leaves globals untouched (${label})`, async () => {
    const r = await inPage(
      async ([native, snap]) => {
        if (!native) {
          delete Navigator.prototype.locks;
          delete globalThis.LockManager;
          delete globalThis.Lock;
        }
        const take = eval(snap);
        const nativeLocks = navigator.locks;
        const before = take();
        const m = await import("/dist/index.js");
        const after = take();
        const out = { same: before === after, isNative: m.locks === nativeLocks, hasLocks: "locks" in navigator };
        // Our manager works without being installed.
        out.value = await m.locks.request("x", (l) => `${l.name}/${l.mode}/${l instanceof m.Lock}`);
        out.instance = m.locks instanceof m.LockManager;
        return out;
      },
      [native, globalsSnapshot()],
    );
    assert.equal(r.same, true, "globals changed");
    assert.equal(r.isNative, native);
    assert.equal(r.value, "x/exclusive/true");
    assert.equal(r.instance, true);
  });

  await test(`auto installs only where missing (${label})`, async () => {
    const r = await inPage(async (native) => {
      if (!native) {
        delete Navigator.prototype.locks;
        delete globalThis.LockManager;
        delete globalThis.Lock;
      }
      const nativeLocks = navigator.locks;
      await import("/dist/auto.js");
      const m = await import("/dist/index.js");
      const l = navigator.locks;
      return {
        kept: l === nativeLocks,
        ours: l === m.polyfill.locks,
        accessor: typeof Object.getOwnPropertyDescriptor(Navigator.prototype, "locks")?.get,
        globals: globalThis.LockManager === Object.getPrototypeOf(l).constructor,
        value: await l.request("y", { mode: "shared" }, (lock) => lock.mode),
      };
    }, native);
    assert.equal(r.kept, native);
    assert.equal(r.ours, !native);
    assert.equal(r.accessor, "function");
    assert.equal(r.globals, true);
    assert.equal(r.value, "shared");
  });
}

await test("install({ force: true }) replaces the native manager", async () => {
  const r = await inPage(async () => {
    const nativeLocks = navigator.locks;
    const m = await import("/dist/index.js");
    const notForced = m.install();
    const forced = m.install({ force: true });
    return {
      notForced: notForced === nativeLocks,
      forced: forced === m.polyfill.locks && navigator.locks === forced && navigator.locks !== nativeLocks,
      lockIsOurs: await navigator.locks.request("z", (l) => l instanceof globalThis.Lock && !("released" in l)),
    };
  });
  assert.deepEqual(r, { notForced: true, forced: true, lockIsOurs: true });
});

const CLASSIC_BEFORE_READY = async () => {
  const order = [];
  const L = navigator.locks;
  // Issued synchronously after the script ran, before the wasm module can be ready.
  const ps = [
    L.request("q", async (l) => { order.push("1:" + l.mode); }),
    L.request("q", { mode: "shared" }, (l) => { order.push("2:" + l.mode); }),
    L.query().then((s) => order.push("query:" + s.held.length + "/" + s.pending.length)),
    L.request("q", { ifAvailable: true }, (l) => { order.push("3:" + (l ? "lock" : "null")); }),
    L.request("-bad", () => {}).catch((e) => order.push("4:" + e.name)),
  ];
  const readyIsPromise = L.ready instanceof Promise;
  await Promise.all(ps);
  await L.ready;
  return { order, readyIsPromise };
};

/** In a fresh page without the native API: runs `prep`, loads the classic script, returns `body()`. */
function withClassic(prep, body) {
  return inPage(
    async ([del, prep, body]) => {
      (0, eval)(del);
      (0, eval)(prep);
      await new Promise((res, rej) => {
        const s = document.createElement("script");
        s.src = "/dist/web-locks.js";
        s.onload = res;
        s.onerror = rej;
        document.head.append(s);
      });
      return (0, eval)(`(${body})`)();
    },
    [DELETE_NATIVE, prep, body.toString()],
  );
}

await test("classic script: calls before ready are served in order (window)", async () => {
  const r = await withClassic("", CLASSIC_BEFORE_READY);
  assert.equal(r.readyIsPromise, true);
  assert.deepEqual([...r.order].sort(), ["1:exclusive", "2:shared", "3:null", "4:NotSupportedError", "query:1/1"]);
  // Grant order is request order; the query saw the first held and the second pending.
  assert.ok(r.order.indexOf("1:exclusive") < r.order.indexOf("2:shared"), r.order.join());
});

await test("classic script: importScripts in a dedicated worker, calls before ready in order", async () => {
  const r = await inPage(async (body) => {
    const src = `
      delete WorkerNavigator.prototype.locks; delete self.LockManager; delete self.Lock;
      importScripts(${JSON.stringify(location.origin + "/dist/web-locks.js")});
      (${body})().then((r) => postMessage(r), (e) => postMessage({ error: String(e) }));`;
    const w = new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
    return new Promise((res) => (w.onmessage = (e) => res(e.data)));
  }, CLASSIC_BEFORE_READY.toString());
  assert.equal(r.error, undefined);
  assert.equal(r.readyIsPromise, true);
  assert.ok(r.order.indexOf("1:exclusive") < r.order.indexOf("2:shared"), r.order.join());
  assert.ok(r.order.includes("query:1/1") && r.order.includes("3:null") && r.order.includes("4:NotSupportedError"), r.order.join());
});

await test("ESM in a module worker: the worker hosts the arbiter (arbiter.js, full wasm) and a page shares its locks", async () => {
  const r = await inPage(async () => {
    const src = `
      import { polyfill } from ${JSON.stringify(location.origin + "/dist/index.js")};
      const L = polyfill.locks;
      const order = [];
      const dbg = await L.ready;
      await L.request("m", async () => {
        postMessage({ holding: true, hosts: !!dbg.arbiter }); // before any window joins
        await new Promise((r) => (onmessage = r)); // until the page asked for the same name
        order.push("worker");
      });
      postMessage({ order, mode: dbg.mode });`;
    const w = new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" })), { type: "module" });
    const msgs = [];
    const next = () => new Promise((res) => w.addEventListener("message", (e) => res(e.data), { once: true }));
    msgs.push(await next()); // holding
    // The page joins through the ESM ponyfill's own manager: it must wait for the worker.
    // (Its SharedWorker then takes the arbiter over: the worker steps down, and the lock
    // it holds is re-registered, not lost.)
    const { polyfill } = await import("/dist/index.js");
    const pageOrder = [];
    const asked = polyfill.locks.request("m", () => pageOrder.push("page"));
    while ((await polyfill.locks.query()).pending.length !== 1) await new Promise((res) => setTimeout(res, 5));
    w.postMessage("go");
    const done = await next();
    await asked;
    return { done, pageOrder, first: msgs[0] };
  });
  assert.deepEqual(r.first, { holding: true, hosts: true }, "the module worker hosts the arbiter");
  assert.deepEqual(r.done.order, ["worker"]);
  assert.deepEqual(r.pageOrder, ["page"]);
  assert.equal(r.done.mode, "shared");
});

await test("classic script: decodes its wasm without Uint8Array.fromHex (older browsers)", async () => {
  const r = await withClassic("delete Uint8Array.fromHex;", () => navigator.locks.request("hex", (l) => l && l.name));
  assert.equal(r, "hex");
});

await test("classic script: does nothing where navigator.locks exists", async () => {
  const r = await inPage(async () => {
    const nativeLocks = navigator.locks;
    await new Promise((res) => {
      const s = document.createElement("script");
      s.src = "/dist/web-locks.js";
      s.onload = res;
      document.head.append(s);
    });
    return navigator.locks === nativeLocks && !("ready" in navigator.locks);
  });
  assert.equal(r, true);
});

// Child realms under the ESM entry: install() hands an about:blank iframe the classic script
// (web-locks.js, fetched once); install({ frames: url }) says where it is; a wrong URL leaves
// children alone with a console warning; frames: false turns it off. The child's manager is
// ours when it shares this page's lock space (the browser's own, left in the child, does not).
for (const [label, opts, expect] of [
  ["install() default: web-locks.js next to web-locks-arbiter.js", {}, "shared"],
  ["install({ frames: url })", { frames: "/dist/web-locks.js" }, "shared"],
  ["install({ frames: wrong url }) warns and leaves children alone", { frames: "/dist/nothing-here.js" }, "separate"],
  ["install({ frames: false })", { frames: false }, "separate"],
]) {
  await test(`ESM child realms: ${label}`, async () => {
    const page = await browser.newPage();
    const warnings = [];
    page.on("console", (m) => m.type() === "warning" && warnings.push(m.text()));
    await page.goto(`${base}/tests/entry/blank.html`);
    const seen = await page.evaluate(
      async ([del, opts]) => {
        (0, eval)(del);
        const m = await import("/dist/index.js");
        m.install({ force: true, ...opts });
        const f = document.createElement("iframe");
        document.body.append(f);
        const w = f.contentWindow;
        let release;
        const held = new Promise((r) => (release = r));
        let granted;
        const got = new Promise((r) => (granted = r));
        const p = navigator.locks.request("entry-child", () => (granted(), held));
        await got;
        const r = await w.navigator.locks.request("entry-child", { ifAvailable: true }, w.eval("(function (l) { return l ? 'granted' : 'unavailable'; })"));
        release();
        await p;
        f.remove();
        return r === "unavailable" ? "shared" : "separate";
      },
      [DELETE_NATIVE, opts],
    );
    await page.close();
    assert.equal(seen, expect);
    const warned = warnings.some((t) => t.includes("no navigator.locks in child frames"));
    assert.equal(warned, opts.frames === "/dist/nothing-here.js", `console warning: ${warnings.join(" | ")}`);
  });
}

await browser.close();
server.close();

let failed = 0;
for (const [name, status, detail] of results) {
  console.log(`${status === "pass" ? "ok  " : "FAIL"} ${name}${detail ? "\n" + detail : ""}`);
  if (status !== "pass") failed++;
}
console.log(`entry-point tests: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
