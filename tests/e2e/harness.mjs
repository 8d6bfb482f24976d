// End-to-end harness: one static server, one headless Chromium (Debian's, via playwright-core),
// and for each scenario one browser context whose tabs share the origin's SharedWorker,
// BroadcastChannels and IndexedDB, exactly like the tabs of one browser profile. Tabs load
// tests/e2e/page.html, which runs tests/e2e/agent.js; sub-contexts (iframes, dedicated,
// nested, shared and service workers) are reached through their tab.
//
// Also: CDP helpers (renderer crash, freeze/resume, killing the arbiter's SharedWorker) and
// the checkers (mutual exclusion over recorded intervals, FIFO per name, settlement).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../../scripts/server.mjs";
import { launchOptions } from "../browser.mjs";

export const PREFIX = "web-locks-wasm";
export const LIVENESS_MS = 10000; // a hang fails instead of blocking; never a timing criterion

export function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(t));
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; throws after `ms`. */
export async function until(fn, what, ms = LIVENESS_MS, every = 20) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

/**
 * Starts the static server and Debian's Chromium (launchOptions() of tests/browser.mjs), and
 * connects to it over CDP. Chromium is spawned here rather than through chromium.launch()
 * because Playwright keeps every page of the contexts it creates "captured" (focus
 * emulation), and a captured page ignores Page.setWebLifecycleState {state: "frozen"}:
 * connecting with { noDefaults: true } leaves the pages of the browser's default context
 * alone, so the frozen-tab scenario runs there. Every other scenario gets a fresh context.
 */
export async function startHarness({ headed = false, insecure = false, prefs = null, args: extra = [] } = {}) {
  const root = new URL("../..", import.meta.url).pathname;
  const server = await serve(root);
  // insecure: a real plain-http origin (http://intranet.test, mapped to this machine by
  // Chromium's host resolver), where the browser hides navigator.locks.
  const base = `http://${insecure ? "intranet.test" : "localhost"}:${server.address().port}`;
  const opts = launchOptions([...(insecure ? ["--host-resolver-rules=MAP intranet.test 127.0.0.1"] : []), ...extra]);
  const profile = mkdtempSync(join(tmpdir(), "web-locks-e2e-"));
  // prefs: the profile's preferences (content settings, e.g. storage blocked), before start.
  if (prefs) {
    mkdirSync(join(profile, "Default"));
    writeFileSync(join(profile, "Default", "Preferences"), JSON.stringify(prefs));
  }
  const args = [...(headed ? [] : ["--headless"]), ...opts.args, "--remote-debugging-port=0", `--user-data-dir=${profile}`, "about:blank"];
  const proc = spawn(opts.executablePath, args, { stdio: ["ignore", "ignore", "pipe"] });
  process.once("exit", () => proc.exitCode === null && proc.kill()); // even if the run dies
  const ws = await withTimeout(
    new Promise((resolve, reject) => {
      let err = "";
      proc.stderr.on("data", (d) => {
        err += d;
        const m = err.match(/DevTools listening on (ws:\/\/\S+)/);
        if (m) resolve(m[1]);
      });
      proc.on("exit", (code) => reject(new Error(`chromium exited (${code}): ${err}`)));
    }),
    20000,
    "chromium start",
  );
  proc.stderr.resume();
  const browser = await chromium.connectOverCDP(ws, { noDefaults: true });
  const bcdp = await browser.newBrowserCDPSession();
  await bcdp.send("Target.setDiscoverTargets", { discover: true });
  const destroyed = new Set();
  bcdp.on("Target.targetDestroyed", (e) => destroyed.add(e.targetId));
  const h = new Harness(server, base, browser, bcdp, destroyed);
  h.proc = proc;
  h.profile = profile;
  h.version = (await bcdp.send("Browser.getVersion")).product;
  return h;
}

class Harness {
  constructor(server, base, browser, bcdp, destroyed) {
    Object.assign(this, { server, base, browser, bcdp, destroyed });
  }
  /**
   * A fresh browser context (its own storage: a lock universe of its own) for one
   * scenario; with { freezable: true } the browser's default context instead (see above).
   */
  async scene({ target = "ours", nosw = false, freezable = false, dist = null } = {}) {
    const context = freezable ? this.browser.contexts()[0] : await this.browser.newContext();
    const s = new Scene(this, context, target, nosw, freezable);
    s.dist = dist; // another build of the package than dist/ (e.g. the chaos runner's trace build)
    return s;
  }
  async close() {
    await this.browser.close().catch(() => {});
    this.proc.kill(); // the Chromium this harness spawned, by its own handle
    await new Promise((r) => (this.proc.exitCode !== null ? r() : this.proc.once("exit", r)));
    for (let i = 0; i < 10; i++) {
      try {
        rmSync(this.profile, { recursive: true, force: true });
        break;
      } catch {
        await sleep(200); // a helper process may still be writing there
      }
    }
    this.server.close();
  }
  /** Every target the browser knows of (pages, iframes, workers of every kind). */
  async targets() {
    return (await this.bcdp.send("Target.getTargets")).targetInfos;
  }
}

let tabCounter = 0;

class Scene {
  constructor(h, context, target, nosw, shared) {
    Object.assign(this, { h, context, target, nosw, shared });
    this.tabs = [];
    this.errors = [];
    this.contextId = null;
  }
  url(label, { nosw = this.nosw, dist = this.dist } = {}) {
    return `${this.h.base}/tests/e2e/page.html?target=${this.target}${nosw ? "&nosw=1" : ""}${dist ? `&dist=${dist}` : ""}&label=${encodeURIComponent(label)}`;
  }
  /** Opens a tab on page.html and waits for its `navigator.locks.ready`. */
  async tab(label = `tab${++tabCounter}`, opts = {}) {
    const page = await this.context.newPage();
    const t = new Tab(this, page, label);
    page.on("pageerror", (e) => this.errors.push(`${label}: ${e.message}`));
    await page.goto(this.url(label, opts));
    t.info = await t.call("init");
    this.tabs.push(t);
    if (!this.contextId) {
      const info = await (await t.cdp()).send("Target.getTargetInfo");
      this.contextId = info.targetInfo.browserContextId;
    }
    return t;
  }
  /** Opens `n` tabs labelled prefix0..prefix(n-1), one after the other. */
  async openTabs(n, prefix = "tab") {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await this.tab(`${prefix}${i}`));
    return out;
  }
  /** The SharedWorker targets of this scene's context. */
  async sharedWorkers() {
    return (await this.h.targets()).filter((t) => t.type === "shared_worker" && t.browserContextId === this.contextId);
  }
  /** The arbiter's SharedWorker (the one named PREFIX running the package's web-locks-arbiter.js). */
  async arbiterTarget(dist = this.dist) {
    const sws = await this.sharedWorkers();
    return sws.find((t) => t.url.endsWith(`/${dist || "dist"}/web-locks-arbiter.js`)) || null;
  }
  /**
   * Kills the arbiter's SharedWorker with Target.closeTarget and verifies that its context
   * is really gone: (1) the target is destroyed and no longer listed; (2) the IndexedDB
   * connection the arbiter keeps open for its whole life (`${PREFIX}-a-<epoch>`, on which it
   * ignores versionchange) is closed: a deleteDatabase issued from `clockTab` succeeds,
   * which IndexedDB allows only once every connection to it is closed.
   * (Beware: Chromium 156 answers {success: true} but does NOT terminate a SharedWorker
   * that has a CDP session attached, so nothing attaches to it here.)
   * Returns { targetId, t, epoch } (t: `clockTab`'s clock just before the kill).
   */
  async killArbiter(clockTab, dist = this.dist) {
    const tgt = await this.arbiterTarget(dist);
    if (!tgt) throw new Error("no arbiter SharedWorker target found");
    const epoch = (await clockTab.call("info")).epoch;
    const db = `${PREFIX}-a-${epoch}`;
    const listed = await clockTab.eval(async (db) => (await indexedDB.databases()).some((d) => d.name === db), db);
    if (!listed) throw new Error(`the arbiter's database ${db} is not there before the kill`);
    const { bcdp, destroyed } = this.h;
    const t = await clockTab.now();
    await bcdp.send("Target.closeTarget", { targetId: tgt.targetId });
    await until(() => destroyed.has(tgt.targetId), "the SharedWorker target to be destroyed");
    if ((await this.h.targets()).some((x) => x.targetId === tgt.targetId)) throw new Error("SharedWorker target still listed after Target.closeTarget");
    const closedAfter = await clockTab.eval(
      (db) =>
        new Promise((resolve, reject) => {
          const t0 = performance.now();
          const req = indexedDB.deleteDatabase(db);
          req.onsuccess = () => resolve(performance.now() - t0);
          req.onerror = () => reject(new Error("deleteDatabase failed"));
          setTimeout(() => reject(new Error(`${db} still open 8 s after the kill: the arbiter lives`)), 8000);
        }),
      db,
    );
    return { targetId: tgt.targetId, t, epoch, closedAfter };
  }
  async close() {
    if (this.shared) {
      for (const t of this.tabs) if (!t.page.isClosed()) await t.page.close().catch(() => {});
    } else await this.context.close().catch(() => {});
  }
}

class Tab {
  constructor(scene, page, label) {
    Object.assign(this, { scene, page, label });
    this._cdp = null;
    this.dead = false;
  }
  /** Calls E2E.api[m](...a) in the tab (liveness timeout). */
  call(m, ...a) {
    return withTimeout(
      this.page.evaluate(([m, a]) => globalThis.E2E.call(m, a), [m, a]),
      LIVENESS_MS + 5000,
      `${this.label}.${m}`,
    );
  }
  /** Runs a function in the tab. */
  eval(fn, arg) {
    return withTimeout(this.page.evaluate(fn, arg), LIVENESS_MS + 5000, `${this.label}: evaluate`);
  }
  now() {
    return this.call("now");
  }
  /** A sub-context (frame|worker|nested|shared|service) of this tab: returns a proxy. */
  async spawn(kind, label) {
    const h = await this.call("spawn", kind, label);
    const tab = this;
    return {
      label,
      kind,
      handle: h,
      tab,
      call: (m, ...a) => tab.call("call", h, m, a),
      kill: () => tab.call("kill", h),
    };
  }
  async cdp() {
    if (!this._cdp) this._cdp = await this.scene.context.newCDPSession(this.page);
    return this._cdp;
  }
  /** Page.crash: kills the renderer. Resolves once Playwright saw the crash. */
  async crash() {
    const cdp = await this.cdp();
    const crashed = new Promise((r) => this.page.once("crash", r));
    cdp.send("Page.crash").catch(() => {});
    await withTimeout(crashed, LIVENESS_MS, `${this.label}: crash event`);
    this.dead = true;
  }
  async freeze() {
    await (await this.cdp()).send("Page.setWebLifecycleState", { state: "frozen" });
  }
  async resume() {
    await (await this.cdp()).send("Page.setWebLifecycleState", { state: "active" });
  }
  async close() {
    this.dead = true;
    await this.page.close();
  }
}

// ---- checkers ---------------------------------------------------------------------------

/**
 * performance.now() outside cross-origin isolation is coarsened to 100 µs (with jitter), and
 * each context has its own timeOrigin: two timestamps from different contexts compare only
 * to about two ticks. An "overlap" smaller than that is no evidence of anything.
 */
export const CLOCK_SLACK_MS = 0.25;

/**
 * Mutual exclusion over recorded holds. `records`: agent records (ctx, key, name, mode,
 * steal, start, end, outcome). A hold is [start, end]; `end` null means held until the
 * holder died at `deaths[ctx]` (or, failing that, still held: +Infinity). Exclusive holds
 * must be disjoint from every other hold on the same name; shared holds may overlap shared
 * ones. Right after a steal, holds that may have been its victims are cut back (see
 * below) and, when `excused` (an array) is given, the holds excused are pushed to it.
 * Returns a list of violations (empty = fine).
 */
export function checkExclusion(records, deaths = {}, { slackMs = CLOCK_SLACK_MS, excused = [], clock = null } = {}) {
  // clock (optional): clock[a][b] = the smallest (a's receive stamp - b's send stamp) of b's
  // clock broadcasts that a received (agent clockProbe()). A message takes >= 0 ms, so b's
  // clock is at most that far behind a's. An overlap of holds in two contexts that some
  // clock offset allowed by these bounds turns into no overlap (beyond the coarsening
  // slack) is no evidence; any other is a violation.
  const skew = (a, b) => (clock && clock[a] && Number.isFinite(clock[a][b]) ? Math.max(0, clock[a][b]) : 0);
  const holds = [];
  for (const r of records) {
    if (r.start === null || r.start === undefined) continue;
    if (r.outcome === "unavailable") continue;
    let end = r.end;
    if (end === null || end === undefined) end = deaths[r.ctx] ?? Infinity;
    holds.push({ ...r, s: r.start, e: end });
  }
  const byName = new Map();
  for (const x of holds) (byName.get(x.name) || byName.set(x.name, []).get(x.name)).push(x);
  const violations = [];
  for (const [name, list] of byName) {
    list.sort((a, b) => a.s - b.s);
    // A steal evicts every holder of the name (R-50). The victim learns it only when the
    // steal's AbortError reaches its context, and its grant and its eviction may both be
    // in flight to it at once: its callback may start after the stealer's (R-53), and a
    // short callback may even finish before the news arrives, so that its promise
    // fulfils. Hence, with S a steal on the name:
    //  - a hold that straddles S.start counts only up to S.start;
    //  - a victim that learnt it (outcome "stolen") held the lock from its grant (after
    //    its request, t0) until its eviction (before the stealer started): it counts from
    //    its start up to the first steal that started after its request (maybe nothing);
    //  - a hold requested before S started, whose callback started while S held (or
    //    within 5 ms of S's start), may be an unaware victim granted before S: excused.
    // Every other overlap is a violation.
    const steals = list.filter((x) => x.steal);
    for (const v of list) {
      let cut;
      if (v.outcome === "stolen") cut = steals.find((st) => st !== v && st.s > v.t0);
      else if (steals.some((st) => st !== v && v.t0 < st.s && st.s <= v.s && v.s <= Math.max(st.e, st.s + 5))) v.excused = true;
      else cut = steals.find((st) => st !== v && st.s > v.s && st.s < v.e);
      if (cut) v.e = Math.min(v.e, cut.s);
    }
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i].excused || (list[i].outcome === "stolen" && list[i].e <= list[i].s)) {
        excused.push(list[i]);
        list.splice(i, 1);
      }
    }
    for (let i = 0; i < list.length; i++) {
      const a = list[i];
      for (let j = i + 1; j < list.length; j++) {
        const b = list[j];
        if (b.s >= a.e - slackMs) break; // sorted by start: every later hold starts later still
        if (a.mode === "shared" && b.mode === "shared") continue;
        const overlap = Math.min(a.e, b.e) - b.s; // b.s >= a.s
        if (overlap <= slackMs) continue; // e.g. a 0 ms hold handing over "at the same time"
        // Another context: with b's clock d ms ahead of a's, where the broadcasts allow
        // -clock[a][b] <= d <= clock[b][a], b may really have started after a ended, or
        // ended before a started.
        if (a.ctx !== b.ctx && (a.e - b.s <= slackMs + skew(a.ctx, b.ctx) || b.e - a.s <= slackMs + skew(b.ctx, a.ctx))) continue;
        violations.push({ name, a: brief(a), b: brief(b), overlapMs: overlap, ...(clock ? { clockBoundMs: skew(a.ctx, b.ctx) } : {}) });
      }
    }
  }
  return violations;
}

function brief(x) {
  return `${x.ctx}/${x.key} ${x.mode}${x.steal ? "+steal" : ""} [${x.s.toFixed(2)}, ${Number.isFinite(x.e) ? x.e.toFixed(2) : "∞"}] ${x.outcome}`;
}

/**
 * FIFO per name: for requests of one context on one name, in request order, grants come in
 * request order. Steal requests jump the queue by design and are left out, as are requests
 * that were never granted (aborted, unavailable, dropped by a death).
 */
export function checkFifo(records) {
  const violations = [];
  const groups = new Map();
  for (const r of records) {
    if (r.steal || r.start === null || r.outcome === "unavailable" || r.outcome === "aborted") continue;
    const k = `${r.ctx}\u0000${r.name}`;
    (groups.get(k) || groups.set(k, []).get(k)).push(r);
  }
  for (const list of groups.values()) {
    list.sort((a, b) => a.seq - b.seq);
    for (let i = 1; i < list.length; i++) {
      if (list[i].start < list[i - 1].start) {
        violations.push(`${list[i].ctx}: ${list[i].key} (seq ${list[i].seq}) granted before ${list[i - 1].key} (seq ${list[i - 1].seq}) on ${list[i].name}`);
      }
    }
  }
  return violations;
}

/**
 * How many messages a tab (the polyfill's) sends to the arbiter for `n` sequential requests
 * on `name`, counted by `stats.sent`, including a give-back in the task after the last.
 */
export function messagesFor(tab, name, n) {
  return tab.eval(
    async ([name, n]) => {
      const { stats } = await navigator.locks.ready;
      const before = stats.sent;
      for (let i = 0; i < n; i++) await navigator.locks.request(name, () => {});
      await new Promise((r) => setTimeout(r, 20));
      return stats.sent - before;
    },
    [name, n],
  );
}

/** Requests that never settled. */
export function unsettled(records) {
  return records.filter((r) => r.settled === null).map((r) => `${r.ctx}/${r.key} ${r.outcome}`);
}

export const median = (xs) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
