// The chaos runner: many contexts hammer a few lock names with random requests while
// contexts are crashed and closed, and an exact checker (check.mjs) joins the arbiter's
// decision log with every callback's holder interval afterwards.
//
// Workload (the defaults reproduce the one that found issue #8): `--tabs` tabs, each with a
// dedicated worker (classic importScripts of the package); in every context `--loops` loops
// make one request after another on `--names` names: exclusive 70 % / shared 30 %,
// ifAvailable 10 %, steal 3 %, aborted after 0–5 ms 10 %, callbacks held 0–5 ms. Every
// 2–4 s a random tab is crashed (Page.crash) or closed, with its worker, and replaced.
// Every kill happens while the tab's loops run: what it holds, it holds until it dies.
//
// The package is built with WEB_LOCKS_TRACE=1 into build/dist-trace (the arbiter posts its
// decisions; dist/ is left alone). An observer tab, which loads no polyfill, collects them.
//
//   node tests/chaos/run.mjs [--seconds 90] [--tabs 8] [--loops 2] [--names 4] [--seed N]
//                            [--trials 1] [--kill-min 2000] [--kill-max 4000] [--no-build]
//                            [--load 0] [--out build/chaos-report.json] [--dump build/chaos]
//                            [--frames 1] [--shared 1] [--leases 0.2] [--kinds crash,close,terminate,remove]
//                            [--mix 1] [--ops N] [--private 0.3]
//
// --mix 1 runs every other tab (with its worker and frame) on the next release's build
// (WEB_LOCKS_NEXT_PROTOCOL=1): two protocol versions in one lock space. --ops N runs until
// N requests were made instead of for --seconds. The million run is 10 trials of
// --ops 100000 (README, Reliability): each trial is checked whole, and memory stays small.
//
// --frames 1 gives every tab a same-origin iframe that runs the workload too, and --shared 1
// a user SharedWorker (its own, named after it: it dies with the tab). --leases P makes a
// fraction P of the plain requests leases of the lock services (acquire() with a ttl of
// 1-7.5 ms against holds of 0-5 ms: some run out, and the arbiter takes the lock back).
// --private P sends a fraction P of the requests to a name that mostly one context uses
// (its home name, after its label; one in 20 of them to a tab's home name instead): what
// delegation serves in the context's own engine, asked back when another context or a
// query wants it.
// --kinds picks
// how contexts die: crash, close and navigate take a whole tab (with its worker and frame),
// terminate a tab's dedicated worker (worker.terminate()), remove its iframe; the tab then
// starts another. arbiter kills the arbiter's SharedWorker (every context lives on). freeze
// freezes a tab (Page.setWebLifecycleState; its iframe and worker with it) for 0.3–1.5 s
// and resumes it; the trial then runs in the browser's default context.
//
// --load N runs N busy processes beside the browser for the whole run (the failures of
// issue #8 showed on a machine with a load average above 10).
//
// Exit code 1 when any trial has a violation (each is printed with the decisions that led
// to it); the report (JSON) keeps every figure and violation.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { getHeapStatistics } from "node:v8";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PREFIX, sleep, startHarness, withTimeout } from "../e2e/harness.mjs";
import { check } from "./check.mjs";
import { decode } from "./trace.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const argv = process.argv.slice(2);
// A long --ops run keeps every record and decision for the final check: about 4 GB per
// million requests, more than Node's default heap. Run again with a bigger one.
const opsArg = argv.indexOf("--ops");
if (opsArg >= 0 && Number(argv[opsArg + 1]) > 200000 && getHeapStatistics().heap_size_limit < 8e9) {
  const r = spawnSync(process.execPath, ["--max-old-space-size=14000", fileURLToPath(import.meta.url), ...argv], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? dflt : typeof dflt === "number" ? Number(argv[i + 1]) : argv[i + 1];
};
const cfg = {
  seconds: opt("seconds", 90),
  tabs: opt("tabs", 8),
  loops: opt("loops", 2),
  names: opt("names", 4),
  trials: opt("trials", 1),
  seed: opt("seed", Date.now() % 1000000),
  killMin: opt("kill-min", 2000),
  killMax: opt("kill-max", 4000),
  out: opt("out", "build/chaos-report.json"),
  load: opt("load", 0),
  frames: opt("frames", 0),
  shared: opt("shared", 0),
  leases: opt("leases", 0),
  private: opt("private", 0),
  kinds: opt("kinds", "crash,close").split(","),
  dump: opt("dump", ""),
  // --mix 1: every other tab (and its worker and frame) runs the next release's build
  // (WEB_LOCKS_NEXT_PROTOCOL=1, trace build too): two releases in one lock space.
  mix: opt("mix", 0),
  // --ops N: run until N requests were made (instead of --seconds), e.g. the million run.
  ops: opt("ops", 0),
};
const DIST = "build/dist-trace";
const MIX = "build/dist-trace-next";
for (const k of cfg.kinds) if (!["crash", "close", "navigate", "terminate", "remove", "arbiter", "freeze"].includes(k)) throw new Error(`--kinds: no such kill ${k}`);
const freezing = cfg.kinds.includes("freeze");
if (cfg.kinds.includes("remove") && !cfg.frames) throw new Error("--kinds remove needs --frames 1");

if (!argv.includes("--no-build")) {
  console.log(`building the trace build into ${DIST} (WEB_LOCKS_TRACE=1)`);
  execFileSync(process.execPath, [join(root, "scripts/build.mjs")], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, WEB_LOCKS_TRACE: "1", WEB_LOCKS_DIST: DIST },
  });
  if (cfg.mix) {
    console.log(`building the next release's trace build into ${MIX} (WEB_LOCKS_NEXT_PROTOCOL=1)`);
    execFileSync(process.execPath, [join(root, "scripts/build.mjs")], {
      cwd: root,
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, WEB_LOCKS_TRACE: "1", WEB_LOCKS_NEXT_PROTOCOL: "1", WEB_LOCKS_DIST: MIX },
    });
  }
}

const burners = Array.from({ length: cfg.load }, () => spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" }));
process.once("exit", () => burners.forEach((b) => b.kill()));

let rs = cfg.seed >>> 0;
const rnd = () => ((rs = (Math.imul(rs, 1103515245) + 12345) >>> 0) >>> 8) / 16777216;

async function trial(h, n) {
  const seed = cfg.seed * 1000 + n;
  // Freezing (Page.setWebLifecycleState) works only in the browser's default context (see
  // tests/e2e/harness.mjs): with --kinds freeze the trial runs there.
  const s = await h.scene({ target: "ours", dist: DIST, freezable: freezing });
  const t0 = Date.now();
  const observer = await s.context.newPage();
  await observer.goto(`${h.base}/tests/chaos/observer.html?channel=${encodeURIComponent(`${PREFIX}:trace`)}&clock=chaos-clock`);
  // Per context label, the calibration sample with the smallest round trip.
  const clocks = new Map();
  // The same, sampled during the run (a few pings per context every kill cycle): the only
  // measure of a context that does not live to the end.
  const during = new Map();
  const calibrate = async (labels, count, into = clocks) => {
    for (const [label, t1, t2, t3] of await observer.evaluate(([l, c]) => window.calibrate(l, c), [labels, count])) {
      const rtt = t3 - t1;
      const best = into.get(label);
      if (!best || rtt < best.rtt) into.set(label, { rtt, offset: t2 - (t1 + t3) / 2 });
    }
  };
  const batches = [];
  const records = new Map();
  const killed = new Map();
  const unexpected = []; // contexts that died (or stopped answering) without being killed
  const kills = {};
  const names = Array.from({ length: cfg.names }, (_, i) => `chaos${i}`);
  let until = 0;
  let next = 0;
  const units = new Set();
  const merge = (list) => {
    for (const r of list) records.set(`${r.clientId}/${r.id}`, r);
  };
  const work = (i) => ({ clockChannel: "chaos-clock", seed: seed * 100 + i, loops: cfg.loops, names, tabs: cfg.tabs, pPrivate: cfg.private, pShared: 0.3, pIfAvailable: 0.1, pSteal: 0.03, pAbort: 0.1, maxHold: 5, maxAbortDelay: 5, pLease: cfg.leases, until });
  // A unit: a tab, and in it a dedicated worker (and, with --frames 1, an iframe); each
  // runs the workload. `subs` maps a kind to the sub-context now running it.
  let subCount = 0;
  const spawnSub = async (u, kind) => {
    const n = subCount++;
    const sub = await u.tab.spawn(kind, `${{ worker: "W", frame: "F", shared: "S" }[kind]}${u.i}.${n}`);
    starting.push(sub);
    sub.id = (await sub.call("chaos", work(1000 + n))).clientId;
    u.subs.set(kind, sub);
    return sub;
  };
  // The clock of the first tab that answers; a tab that does not answer died on its own
  // (`unexpected`), and is replaced like a killed one.
  const clock = async () => {
    for (const u of [...units]) {
      if (u.tab.unexpected) continue;
      const t = await u.tab.now().catch(() => null);
      if (t !== null) return t;
      u.tab.unexpected = "no answer";
    }
    throw new Error("no tab answers");
  };
  // A unit that fails to start (a page or worker that does not answer in time, on a loaded
  // machine) is recorded as unexpected, closed, and started again: a long run must not end
  // on it. Its contexts that did start count as killed from then on.
  const spawnUnit = async (attempt = 0) => {
    try {
      return await startUnit();
    } catch (e) {
      if (attempt >= 3) throw e;
      unexpected.push({ tab: `T${next - 1}`, why: `did not start: ${String(e.message || e).slice(0, 120)}` });
      const t = await clock().catch(() => null);
      for (const c of starting.splice(0)) {
        if (c.id && t !== null) killed.set(c.id, t);
        await (c.kill ? c.kill() : c.close()).catch(() => {});
      }
      return spawnUnit(attempt + 1);
    }
  };
  const starting = []; // the contexts of the unit being started
  const startUnit = async () => {
    starting.length = 0;
    const i = next++;
    const tab = await s.tab(`T${i}`, cfg.mix && i % 2 ? { dist: MIX } : {});
    starting.push(tab);
    // A renderer that dies without being killed (Chromium may put two same-site tabs in one
    // process, and a crash then takes both) is recorded, not a failure of the run.
    tab.page.once("crash", () => tab.dead || (tab.unexpected = "crashed"));
    if (!until) until = (await tab.now()) + (cfg.ops ? 36e6 : cfg.seconds * 1000);
    const u = { i, tab, subs: new Map() };
    tab.id = (await tab.call("chaos", work(2 * i))).clientId;
    await spawnSub(u, "worker");
    if (cfg.frames) await spawnSub(u, "frame");
    // A user SharedWorker of the tab's own (its only client): it dies with the tab.
    if (cfg.shared) await spawnSub(u, "shared");
    units.add(u);
    return u;
  };
  const contexts = (u) => [u.tab, ...u.subs.values()];
  const ids = (u) => contexts(u).map((c) => c.id);
  const drainUnit = async (u) => {
    for (const c of contexts(u)) merge(await c.call("chaosDrain"));
  };
  // One push per batch: a long run's drain can hold more than a call's arguments can.
  const drainObserver = async () => {
    for (const b of await observer.evaluate(() => window.drain())) batches.push(b);
  };

  let running = true;
  let poller = null;
  try {
    return await run();
  } finally {
    running = false;
    await poller?.catch(() => {});
    await observer.close().catch(() => {}); // not among the scene's tabs (default context)
    await s.close();
  }

  async function run() {

    for (let i = 0; i < cfg.tabs; i++) await spawnUnit();
    poller = (async () => {
      while (running) {
        await sleep(300);
        for (const u of [...units]) if (units.has(u)) await drainUnit(u).catch(() => {});
        await drainObserver();
      }
    })();
    // The killer: the victim's records are drained just before, so that little is lost with it.
    // The clock of the first tab that answers; a tab that does not answer died on its own
    // (`unexpected`), and is replaced like a killed one.
    const lost = async (u, why) => {
      units.delete(u);
      u.tab.unexpected = u.tab.unexpected || why;
      const t = await clock();
      unexpected.push({ tab: u.tab.label, why: u.tab.unexpected, crashed: !!u.tab.page.isClosed?.() });
      for (const id of ids(u)) killed.set(id, t);
      await spawnUnit();
    };
    let lastProgress = Date.now();
    for (;;) {
      await sleep(cfg.killMin + rnd() * (cfg.killMax - cfg.killMin));
      await calibrate([...units].flatMap((u) => contexts(u).map((c) => c.label)), 2, during).catch(() => {});
      if (cfg.ops ? records.size >= cfg.ops : (await clock()) > until - 1000) break;
      if (cfg.ops && Date.now() - lastProgress > 60000) {
        lastProgress = Date.now();
        console.log(`  ${records.size} of ${cfg.ops} requests, ${Math.round((Date.now() - t0) / 1000)} s`);
      }
      for (const u of [...units]) if (u.tab.unexpected) await lost(u, u.tab.unexpected);
      const victims = [...units];
      const u = victims[Math.floor(rnd() * victims.length)];
      const how = cfg.kinds[Math.floor(rnd() * cfg.kinds.length)];
      if (how === "arbiter") {
        // The arbiter's SharedWorker (with --mix, each build's) is killed (Target.closeTarget):
        // every context lives on, and a new arbiter recovers from them.
        // Only the arbiter's (not the user SharedWorkers of --shared 1).
        const sws = (await s.sharedWorkers()).filter((w) => w.url.endsWith("/web-locks-arbiter.js"));
        if (!sws.length) continue;
        for (const w of sws) await s.h.bcdp.send("Target.closeTarget", { targetId: w.targetId }).catch(() => {});
        kills[how] = (kills[how] || 0) + 1;
        continue;
      }
      if (how === "freeze") {
        // The tab, with its iframe and worker, is frozen for 0.3–1.5 s, then resumed: it
        // lives on, and keeps what it holds meanwhile (others wait, as with the browser's
        // own locks). A busy context never leaves the lock space on freeze (only an idle
        // one does, and the loops always have a request out), so its client id stays.
        const before = await u.tab.call("lifecycle").catch(() => null);
        if (!before) continue;
        await u.tab.freeze();
        await sleep(300 + rnd() * 1200);
        await u.tab.resume();
        const after = await u.tab.call("lifecycle").catch(() => []);
        const seen = after.slice(before.length).map((e) => e[0]);
        if (!seen.includes("freeze") || !seen.includes("resume")) throw new Error(`${u.tab.label} was not frozen and resumed: ${JSON.stringify(seen)}`);
        const info = await u.tab.call("info");
        if (info.clientId !== u.tab.id) throw new Error(`${u.tab.label} came back as another client (${info.clientId}, was ${u.tab.id})`);
        kills[how] = (kills[how] || 0) + 1;
        continue;
      }
      if (how === "terminate" || how === "remove") {
        // One sub-context dies (worker.terminate(), iframe removal); its tab lives on and
        // starts another.
        const kind = how === "terminate" ? "worker" : "frame";
        const sub = u.subs.get(kind);
        if (!sub) continue;
        await sub.call("chaosDrain").then(merge, () => {});
        const t = await u.tab.now().catch(() => null);
        if (t === null) {
          await lost(u, "no answer");
          continue;
        }
        await sub.kill();
        kills[how] = (kills[how] || 0) + 1;
        killed.set(sub.id, t);
        u.subs.delete(kind);
        starting.length = 0;
        await spawnSub(u, kind).catch(async (e) => {
          for (const c of starting.splice(0)) if (c.id) killed.set(c.id, t);
          await lost(u, `${kind} did not start: ${String(e.message || e).slice(0, 120)}`);
        });
        continue;
      }
      units.delete(u);
      await drainUnit(u).catch(() => {});
      const t = await u.tab.now().catch(() => null);
      if (t === null) {
        units.add(u);
        await lost(u, "no answer");
        continue;
      }
      if (how === "crash") await u.tab.crash();
      else if (how === "navigate") {
        // The tab goes to another page (pagehide, then gone or into the back/forward cache),
        // then is closed.
        await u.tab.page.goto(`${h.base}/tests/e2e/blank.html`).catch(() => {});
        await u.tab.close().catch(() => {});
      } else await u.tab.close();
      kills[how] = (kills[how] || 0) + 1;
      for (const id of ids(u)) killed.set(id, t);
      await spawnUnit();
    }
    if (!cfg.ops) while ((await clock()) < until) await sleep(100);
    running = false;
    await poller;
    // Let every loop's last request settle, then collect everything.
    const stops = await Promise.all([...units].flatMap((u) => contexts(u).map((c) => c.call("chaosStop"))).map((p) => p.catch((e) => ({ error: e.message }))));
    // Calibrate the clocks on a quiet machine (loops stopped, load paused): the offsets a
    // process got when it started, under load, stay; the round trips are short now.
    burners.forEach((b) => b.kill("SIGSTOP"));
    clocks.clear();
    await sleep(300);
    await calibrate([...units].flatMap((u) => contexts(u).map((c) => c.label)), 20);
    burners.forEach((b) => b.kill("SIGCONT"));
    const stalled = stops.filter((x) => x.error).map((x) => x.error);
    // Nothing is left behind: no lock or request in query(), and no probe database of a
    // context that is gone (the arbiter deletes each once it finds the context dead).
    const live = [...units];
    const liveIds = new Set(live.flatMap(ids));
    const q = await live[0].tab.call("query");
    const leftovers = [...q.held, ...q.pending].filter((e) => e.name.startsWith("chaos"));
    let staleDbs = [];
    for (let i = 0; i < 50; i++) {
      const dbs = await live[0].tab.eval(async () => (await indexedDB.databases()).map((d) => d.name));
      staleDbs = dbs.filter((n) => n.startsWith(`${PREFIX}-c-`) && !liveIds.has(n.slice(`${PREFIX}-c-`.length)));
      if (!staleDbs.length) break;
      await sleep(100);
    }
    for (const x of stops) if (Array.isArray(x)) merge(x);
    await sleep(500);
    await drainObserver();
    // An arbiter's clock (its decisions' stamps) against the observer's: a batch arrives
    // after it was sent, so the arbiter's clock minus the observer's is at least
    // max(sent - received), and exceeds it by the fastest batch's latency (well under a
    // millisecond). An arbiter clock off by more than 2 ms (a wall-clock step between the
    // start of its process and the observer's) is corrected by that bound.
    const arbiterOffsets = {};
    for (const [epoch, t, , recv] of batches) if (Number.isFinite(recv)) arbiterOffsets[epoch] = Math.max(arbiterOffsets[epoch] ?? -Infinity, t - recv);
    for (const b of batches) {
      const off = arbiterOffsets[b[0]];
      if (Math.abs(off) > 2) b[1] -= off;
    }
    const decisions = decode(batches);
    // A context's clock that is off by more than the checker's slack (seen: an iframe 3.7 s
    // ahead of every other context, on a loaded machine) is corrected by its measured offset.
    const result = check({ records: [...records.values()], decisions, killed, offsets: new Map([...during, ...clocks]) });
    // How far apart the clocks of the contexts alive at the end were (relative to the
    // observer tab's), each from the ping with the smallest round trip, and how precisely
    // that is known (half of that round trip).
    const offs = [...clocks.values()];
    result.figures.arbiterClocks = Object.fromEntries(Object.entries(arbiterOffsets).map(([e, o]) => [e, Math.round(o * 10) / 10]));
    result.figures.clockOffsets = offs.length
      ? { contexts: offs.length, spreadMs: Math.max(...offs.map((c) => c.offset)) - Math.min(...offs.map((c) => c.offset)), worstUncertaintyMs: Math.max(...offs.map((c) => c.rtt / 2)) }
      : null;
    if (cfg.dump) writeFileSync(resolve(root, `${cfg.dump}-${n}.json`), JSON.stringify({ records: [...records.values()], decisions, killed: [...killed], clocks: [...clocks] }));
    for (const e of stalled) result.violations.push({ kind: "loops did not finish (a request never settled)", detail: e });
    if (result.figures.unsettled) result.violations.push({ kind: "unsettled requests in live contexts", detail: `${result.figures.unsettled}` });
    if (leftovers.length) result.violations.push({ kind: "locks or requests left in query() at the end", detail: JSON.stringify(leftovers.slice(0, 10)) });
    if (staleDbs.length) result.violations.push({ kind: "probe databases of dead contexts left in IndexedDB 5 s after the end", detail: staleDbs.slice(0, 10).join(", ") });
    result.figures.endState = { leftInQuery: leftovers.length, staleProbeDatabases: staleDbs.length };
    return { trial: n, seed, seconds: (Date.now() - t0) / 1000, kills, unexpected, ...result, pageErrors: s.errors.slice(0, 20), contexts: next + subCount };
  }
}

// With --kinds freeze the tabs run in the default context, where only one is visible:
// hidden pages' timers would be throttled to one wake-up a second, which slows the
// workload (a callback's hold is a timer) a hundredfold. Freezing still works.
const h = await startHarness({ args: freezing ? ["--disable-background-timer-throttling", "--disable-renderer-backgrounding"] : [] });
const report = { date: new Date().toISOString(), browser: h.version, cfg, trials: [] };
let bad = 0;
try {
  for (let n = 1; n <= cfg.trials; n++) {
    let r;
    try {
      // With --ops, about 1,000 requests a second on this machine, and room to spare.
      const bound = cfg.ops ? cfg.ops * 5 : cfg.seconds * 1000;
      r = await withTimeout(trial(h, n), bound + 180000, `trial ${n}`);
    } catch (e) {
      // The run itself broke (a hang, a browser failure): a failed trial, not a crash.
      console.log(`trial ${n}: the run failed: ${e && e.stack ? e.stack : e}`);
      report.trials.push({ trial: n, error: String(e) });
      bad++;
      continue;
    }
    report.trials.push(r);
    const f = r.figures;
    console.log(
      `trial ${n} (seed ${r.seed}): ${f.requests} requests, ${f.callbacks} callbacks with a lock, ${r.contexts} contexts, ` +
        `kills ${Object.entries(r.kills).map(([k, n]) => `${n} ${k}`).join(" + ") || "none"}, ${f.arbiters} arbiter(s), ${f.decisions} decisions; ` +
        `overlaps ${r.overlaps.total} (explained: ${r.overlaps.byReason.stolen} by a steal, ${r.overlaps.byReason.gone} by a death, ${r.overlaps.byReason.expired} by a lease's end, ${r.overlaps.byReason.released} by release order within the clock slack, ${r.overlaps.byReason.handback} by a handback); ` +
        `delegation: ${f.ownerships} names owned, ${f.localCallbacks} callbacks granted by their own context's engine; ` +
        `violations ${r.violations.length}; ${r.seconds.toFixed(0)} s`,
    );
    if (r.unexpected.length) console.log(`  died without being killed (replaced): ${JSON.stringify(r.unexpected)}`);
    console.log(`  outcomes: ${JSON.stringify(f.outcomes)}; at the end: ${f.endState.leftInQuery} left in query(), ${f.endState.staleProbeDatabases} probe databases of dead contexts left`);
    console.log(`  clocks: offsets between contexts ${JSON.stringify(f.clockOffsets)}; corrected ${JSON.stringify(f.clockCorrected)}; arbiters' ${JSON.stringify(f.arbiterClocks)}; smallest margins (ms) ${JSON.stringify(f.margins)}; exclusive handoffs across contexts ${f.handoffs.crossContext}, of which ${f.handoffs.negativeGaps} show the next callback starting before the last ended (at most ${(-f.handoffs.smallestGapMs).toFixed(3)} ms)`);
    for (const v of r.violations.slice(0, 10)) {
      console.log(`  VIOLATION ${v.kind}: ${v.detail}`);
      for (const d of (v.decisions || []).slice(-40)) console.log(`      ${d}`);
    }
    if (r.violations.length) bad++;
  }
} finally {
  burners.forEach((b) => b.kill());
  await h.close();
  mkdirSync(dirname(resolve(root, cfg.out)), { recursive: true });
  writeFileSync(resolve(root, cfg.out), JSON.stringify(report, null, 1));
}
console.log(`chaos: ${report.trials.length - bad} passed, ${bad} failed (report: ${cfg.out})`);
process.exit(bad ? 1 : 0);

