// Two releases of the package on one origin (issue #12): today's build (dist/, protocol
// versions 2 and 3) beside one built as the next release will be (WEB_LOCKS_NEXT_PROTOCOL=1
// into build/dist-next: versions 2 to 4), and beside one that speaks only version 4
// (WEB_LOCKS_NEXT_PROTOCOL=only into build/dist-next-only). Each tab loads its own build's
// classic script; each build has its own SharedWorker script, and all of them meet in one
// election and one lock space.
//
//   node tests/e2e/versions.mjs [--no-build]
//
// 1. Compatible releases: tabs of both contend on one lock and see each other's locks in
//    query(); each speaks the newest version the arbiter speaks; the arbiter's
//    SharedWorker is killed, and the locks held across the recoveries stay exclusive; a
//    holder tab crashes and its lock goes to the other release's waiter.
// 2. A release that cannot speak to the arbiter: its tab waits (it never goes its own
//    way, not even for a free name) while today's arbiter leads, and is served, in the
//    same lock space, once today's tabs are gone.
// 3. A newer release appears: its SharedWorker takes over from today's arbiter through
//    recovery (today's clients speak version 3 with it), locks held across it.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { messagesFor, sleep, startHarness } from "./harness.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const NEXT = "build/dist-next";
const ONLY = "build/dist-next-only";
if (!process.argv.includes("--no-build")) {
  for (const [v, dist] of [["1", NEXT], ["only", ONLY]]) {
    console.log(`building ${dist} (WEB_LOCKS_NEXT_PROTOCOL=${v})`);
    execFileSync(process.execPath, [join(root, "scripts/build.mjs")], {
      cwd: root,
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, WEB_LOCKS_NEXT_PROTOCOL: v, WEB_LOCKS_DIST: dist },
    });
  }
}

const results = [];
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, "pass"]);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, "FAIL"]);
    console.log(`FAIL ${name}\n${e && e.stack ? e.stack : e}`);
  }
}

const h = await startHarness();

/** Holds `name` in the tab until `release(name)`; resolves once granted. */
const hold = (tab, name) =>
  tab.eval(
    (name) =>
      new Promise((granted) => {
        window.releases = window.releases || {};
        navigator.locks.request(name, () => new Promise((r) => ((window.releases[name] = r), granted(true))));
      }),
    name,
  );
const release = (tab, name) => tab.eval((name) => window.releases[name](), name);
const tryLock = (tab, name) => tab.eval((name) => navigator.locks.request(name, { ifAvailable: true }, (l) => !!l), name);
const heldBy = (tab) => tab.eval(async () => (await navigator.locks.query()).held.map((e) => [e.name, e.clientId]));
const waitFor = async (fn, what, ms = 10000) => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
};

await test("two compatible releases share one lock space, across an arbiter kill and a crash", async () => {
  const s = await h.scene({ target: "ours" });
  const a = await s.tab("today", { dist: null });
  const b = await s.tab("next", { dist: NEXT });
  const c = await s.tab("next2", { dist: NEXT });
  // Today's SharedWorker started first; the next release's gives it a newer arbiter,
  // which speaks 3 (with today's client) and 4 (with its own).
  const sameArbiter = async () => {
    const is = await Promise.all([a, b, c].map((t) => t.call("info")));
    return is.every((i) => i.epoch && i.epoch === is[0].epoch) && is;
  };
  const infos = await waitFor(async () => {
    const is = await sameArbiter();
    return is && is[1].version === 4 && is;
  }, "one arbiter, the newer one");
  assert.deepEqual(infos.map((i) => i.version), [3, 4, 4], JSON.stringify(infos));
  await hold(a, "x");
  assert.equal(await tryLock(b, "x"), false, "the next release sees today's lock");
  await hold(b, "y");
  assert.equal(await tryLock(a, "y"), false, "today's release sees the next one's lock");
  const q = await heldBy(a);
  assert.deepEqual(q.map(([n]) => n).sort(), ["x", "y"]);
  assert.ok(q.some(([n, id]) => n === "y" && id === infos[1].clientId), "today's query() shows the next release's client");
  const qb = await heldBy(b);
  assert.ok(qb.some(([n, id]) => n === "x" && id === infos[0].clientId), "the next release's query() shows today's client");
  // The arbiter (the next release's SharedWorker) dies: every client re-registers with
  // the next arbiter (today's SharedWorker, until the next release's windows have started
  // theirs again, which then takes over once more), and the locks held across it stay.
  await s.killArbiter(a, NEXT);
  const after = await waitFor(async () => {
    const is = await sameArbiter();
    return is && is[0].epoch > infos[0].epoch && is[1].version === 4 && is;
  }, "a new arbiter for all, the newer release's again");
  assert.deepEqual(after.map((i) => i.version), [3, 4, 4], JSON.stringify(after.map((i) => [i.version, i.epoch])));
  assert.equal(await tryLock(c, "x"), false, "x still held after the arbiter's death");
  assert.equal(await tryLock(a, "y"), false, "y still held after the arbiter's death");
  // Today's holder crashes: x goes to the next release's waiter.
  const waiting = c.eval(() => navigator.locks.request("x", () => "granted"));
  await waitFor(async () => (await c.eval(async () => (await navigator.locks.query()).pending.length)) === 1, "c waits for x");
  await a.crash();
  assert.equal(await waiting, "granted");
  await release(b, "y");
  assert.equal(await tryLock(c, "y"), true);
  assert.deepEqual(s.errors, []);
  await s.close();
});

await test("a release that cannot speak to the arbiter waits, then is served in the same lock space", async () => {
  const s = await h.scene({ target: "ours" });
  const a = await s.tab("today", { dist: null });
  await waitFor(async () => (await a.call("info")).epoch, "today registered");
  await hold(a, "x");
  const d = await s.tab("next-only", { dist: ONLY });
  // It must not proceed on its own: neither the held name nor a free one.
  await d.eval(() => {
    window.got = [];
    navigator.locks.request("x", () => window.got.push("x"));
    navigator.locks.request("free", () => window.got.push("free"));
  });
  await sleep(1500);
  assert.deepEqual(await d.eval(() => window.got), [], "nothing granted while today's arbiter leads");
  const info = await d.call("info");
  assert.equal(info.epoch, 0, "not registered with any arbiter");
  assert.ok(info.incompatible > 0 && info.stats.incompatible > 0, `it saw the arbiter and waits: ${JSON.stringify(info)}`);
  // Today's tab goes (and with it today's SharedWorker): the next-only release's
  // SharedWorker is elected and serves it; x is free now (its holder is gone).
  await a.page.close();
  await waitFor(async () => (await d.eval(() => window.got.length)) === 2, "the waiting requests granted", 15000);
  assert.deepEqual((await d.eval(() => window.got)).sort(), ["free", "x"]);
  assert.equal((await d.call("info")).version, 4);
  assert.deepEqual(s.errors, []);
  await s.close();
});

await test("a newer release's SharedWorker takes over from an older arbiter whose clients it can serve", async () => {
  const s = await h.scene({ target: "ours" });
  const a = await s.tab("today", { dist: null });
  const first = await waitFor(async () => (await a.call("info")).epoch && a.call("info"), "today registered");
  assert.equal(first.version, 3);
  await hold(a, "x");
  // The next release's tab starts its SharedWorker, which asks today's arbiter to give
  // way: every client of today's arbiter speaks version 3, which the newer one speaks.
  const b = await s.tab("next", { dist: NEXT });
  await waitFor(async () => {
    const [ia, ib] = [await a.call("info"), await b.call("info")];
    return ib.version === 4 && ia.epoch === ib.epoch;
  }, "the newer arbiter leads, for both (b speaks 4 with it)");
  const [ia] = [await a.call("info")];
  assert.ok(ia.epoch > first.epoch, "a new arbiter");
  assert.equal(ia.version, 3, "today's client speaks 3 with it");
  assert.equal(await tryLock(b, "x"), false, "x held across the handover");
  await release(a, "x");
  assert.equal(await tryLock(b, "x"), true);
  assert.deepEqual(s.errors, []);
  await s.close();
});

await test("the previous release (protocol 2 only) and today's share one lock space; today's pages serve their own names", async () => {
  const PREV = "tests/e2e/releases/protocol-2";
  const s = await h.scene({ target: "ours" });
  const a = await s.tab("previous", { dist: PREV });
  await waitFor(async () => (await a.call("info")).epoch, "the previous release registered");
  assert.equal((await a.call("info")).version, 2);
  const b = await s.tab("today", { dist: null });
  // Today's SharedWorker takes over (it speaks 2 as well): a speaks 2 with it, b 3.
  const [ia, ib] = await waitFor(async () => {
    const is = [await a.call("info"), await b.call("info")];
    return is[0].epoch && is[0].epoch === is[1].epoch && is[1].version === 3 && is;
  }, "today's arbiter leads, for both");
  assert.equal(ia.version, 2);
  // Messages today's page sends for 30 sequential requests on a name nobody else uses: it
  // serves the name itself after its first request (an Ask, then a Handback once idle).
  const sb = await messagesFor(b, "b-only", 30);
  assert.ok(sb <= 4, `today's page sent ${sb} messages for 30 requests`);
  for (let i = 0; i < 30; i++) assert.equal(await tryLock(a, "a-only"), true);
  // A name today's page serves itself: the previous release's page sees its lock in
  // query(), cannot take it, and gets it once released.
  await hold(b, "x");
  const q = await heldBy(a);
  assert.ok(q.some(([n, id]) => n === "x" && id === ib.clientId), `the previous release's query() shows today's lock: ${JSON.stringify(q)}`);
  assert.equal(await tryLock(a, "x"), false);
  const waiting = a.eval(() => navigator.locks.request("x", () => "granted"));
  await release(b, "x");
  assert.equal(await waiting, "granted");
  // Held across an arbiter kill, by the page that served the name itself.
  await hold(b, "y");
  await s.killArbiter(a, null);
  await waitFor(async () => {
    const is = [await a.call("info"), await b.call("info")];
    return is[0].epoch > ia.epoch && is[0].epoch === is[1].epoch && is;
  }, "a new arbiter for both");
  assert.equal(await tryLock(a, "y"), false, "y still held after the arbiter's death");
  await release(b, "y");
  assert.equal(await tryLock(a, "y"), true);
  assert.deepEqual(s.errors, []);
  await s.close();
});

await h.close();
const failed = results.filter((r) => r[1] !== "pass");
console.log(`versions: ${results.length - failed.length} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
