// Benchmarks: ours vs Chromium's own navigator.locks, side by side in the same run, in
// plain pages and in cross-origin-isolated ones, interleaved repetitions, medians and the
// ratio to native. Every scenario that grants locks also checks mutual exclusion (disjoint
// holder intervals), so a fast wrong answer cannot win.
//
//   node bench/run.mjs [--reps 3] [--only 1,3,6] [--quick] [--plain | --isolated]
//
// Each repetition runs native and ours in plain pages, then in pages served with COOP +
// COEP (cross-origin isolated: finer timers, and a different cost per postMessage).
// Writes bench/report.{md,json} (plain), bench/report-isolated.{md,json} and, with both
// kinds, bench/summary.md (both side by side, as in the README). --plain or --isolated
// runs one kind only.
//
// Needs a built package (node scripts/build.mjs). Timestamps are
// performance.timeOrigin + performance.now(), comparable across tabs and workers.
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";
import { serve } from "../scripts/server.mjs";
import { launchOptions } from "../tests/browser.mjs";

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const QUICK = argv.includes("--quick");
const REPS = Number(opt("reps", QUICK ? 1 : 3));
const ONLY = opt("only", "")
  .split(",")
  .filter(Boolean)
  .map(Number);
const KINDS = argv.includes("--isolated") ? ["isolated"] : argv.includes("--plain") ? ["plain"] : ["plain", "isolated"];
const root = new URL("..", import.meta.url).pathname;
const servers = {};
for (const kind of KINDS) servers[kind] = await serve(root, 0, { isolated: kind === "isolated" });
// The page kind the scenarios run in now (`use(kind)`): its server, and whether isolated.
let ISOLATED = false;
let base = "";
const use = (kind) => {
  ISOLATED = kind === "isolated";
  base = `http://localhost:${servers[kind].address().port}`;
};
const browser = await chromium.launch(launchOptions());
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};

// ---- helpers -----------------------------------------------------------------------------

async function tabs(impl, n, query = "") {
  const ctx = await browser.newContext();
  const pages = [];
  for (let i = 0; i < n; i++) {
    const p = await ctx.newPage();
    await p.goto(`${base}/bench/page.html?impl=${impl}${query}`);
    await p.evaluate(() => window.ready);
    if (ISOLATED && !(await p.evaluate(() => self.crossOriginIsolated))) throw new Error("--isolated: the page is not cross-origin isolated");
    pages.push(p);
  }
  return { ctx, pages };
}

/** Runs `fn` in every page at the same moment; returns their results. */
async function together(pages, fn, arg) {
  const at = Date.now() + 300;
  return Promise.all(
    pages.map((p, i) =>
      p.evaluate(
        async ([src, at, arg, i]) => {
          while (Date.now() < at) await new Promise((r) => setTimeout(r, 1));
          return (0, eval)(`(${src})`)(arg, i);
        },
        [fn.toString(), at, arg, i],
      ),
    ),
  );
}

// performance.timeOrigin is computed per process, so timestamps from different tabs can
// disagree by a fraction of a millisecond, and timers are coarsened (100 µs with jitter in
// plain pages, 5 µs cross-origin isolated). Multi-tab scenarios measure each tab's clock
// offset against the first tab after the run (`oneClock`) and check exclusion on the
// corrected spans, with a slack of the offset's error bound plus two timer steps. Elsewhere
// (one page, or a page and its worker) the slack is fixed.
const CLOCK_SLACK_MS = 0.25;
const timerStep = () => (ISOLATED ? 0.005 : 0.1);

/**
 * Puts every tab's spans on the first tab's clock. NTP-style over a BroadcastChannel: the
 * first tab pings each other tab 30 times; the exchange with the shortest round trip gives
 * the offset, give or take half that round trip. Returns the corrected spans and the slack.
 */
async function oneClock(pages, perPage) {
  const CH = `bench-clock-${Math.random()}`;
  for (let i = 1; i < pages.length; i++)
    await pages[i].evaluate(([CH, i]) => {
      const bc = new BroadcastChannel(CH);
      bc.onmessage = (e) => e.data.to === i && bc.postMessage({ k: e.data.k, t: now() });
    }, [CH, i]);
  const offs = await pages[0].evaluate(async ([CH, n]) => {
    const bc = new BroadcastChannel(CH);
    const out = [{ off: 0, err: 0 }];
    for (let i = 1; i < n; i++) {
      let best = null;
      for (let k = 0; k < 30; k++) {
        const t0 = now();
        const t = await new Promise((res) => {
          bc.onmessage = (e) => e.data.k === k && res(e.data.t);
          bc.postMessage({ to: i, k });
        });
        const t1 = now();
        if (!best || t1 - t0 < 2 * best.err) best = { off: t - (t0 + t1) / 2, err: (t1 - t0) / 2 };
      }
      out.push(best);
    }
    bc.close();
    return out;
  }, [CH, pages.length]);
  const spans = perPage.flatMap((spans, i) => spans.map(([s, e, ...rest]) => [s - offs[i].off, e - offs[i].off, ...rest]));
  return { spans, slack: Math.max(...offs.map((o) => o.err)) + 2 * timerStep() };
}

/**
 * Mutual exclusion check over [start, end, mode, who] spans on one name: overlaps beyond
 * `slack` ms between an exclusive span and any other. Returns their count, the largest
 * overlap, and the most shared holders seen at once.
 */
function check(spans, slack = CLOCK_SLACK_MS) {
  const s = [...spans].sort((a, b) => a[0] - b[0]);
  let violations = 0;
  let worst = 0;
  let maxReaders = 0;
  const open = []; // spans still open at the current start
  for (const span of s) {
    for (let i = open.length - 1; i >= 0; i--) if (open[i][1] <= span[0] + slack) open.splice(i, 1);
    const clash = open.filter((o) => o[2] === "exclusive" || span[2] === "exclusive");
    if (clash.length) violations++;
    for (const o of clash) worst = Math.max(worst, Math.min(o[1], span[1]) - span[0]);
    open.push(span);
    if (span[2] === "shared") maxReaders = Math.max(maxReaders, open.filter((o) => o[2] === "shared").length);
  }
  return { violations, worst, maxReaders, slack };
}

/** The report's words for an exclusion check: its slack, and any violation's largest overlap. */
const clashes = (c) => `slack ${c.slack.toFixed(2)} ms` + (c.violations ? `, worst overlap ${c.worst.toFixed(3)} ms` : "");

/** Median gap between the end of one holder and the start of the next, when they differ. */
function handoffs(spans) {
  const s = [...spans].sort((a, b) => a[0] - b[0]);
  const gaps = [];
  for (let i = 1; i < s.length; i++) if (s[i][3] !== s[i - 1][3]) gaps.push(s[i][0] - s[i - 1][1]);
  const dur = s[s.length - 1][1] - s[0][0];
  return { median: median(gaps), perSec: (gaps.length / dur) * 1000 };
}

// A callback body that holds the lock for `hold` ms (busy) and records its span.
const HOLDER = `(name, mode, hold, who, spans) => navigator.locks.request(name, { mode }, () => {
  const s = now(); while (now() - s < hold) {} spans.push([s, now(), mode, who]); })`;

// ---- scenarios: each returns { value (the headline), unit, extra, violations } -----------

const scenarios = {
  1: {
    title: "uncontended sequential `await request()`",
    unit: "µs/op",
    lower: true,
    run: (impl) => sequential(impl, false),
  },
  "1b": {
    title: "uncontended sequential `await request()`, async callback",
    unit: "µs/op",
    lower: true,
    run: (impl) => sequential(impl, true),
  },
  "2a": {
    title: "1,000 requests queued at once on one name",
    unit: "ms",
    lower: true,
    async run(impl) {
      const { ctx, pages } = await tabs(impl, 1);
      const r = await pages[0].evaluate(async (hold) => {
        const spans = [];
        const f = eval(hold);
        const t0 = performance.now();
        await Promise.all(Array.from({ length: 1000 }, (_, i) => f("one", "exclusive", 0, i, spans)));
        return { ms: performance.now() - t0, spans };
      }, HOLDER);
      await ctx.close();
      const c = check(r.spans);
      return { value: r.ms, extra: clashes(c), violations: c.violations };
    },
  },
  "2b": {
    title: "1,000 requests on 1,000 distinct names",
    unit: "ms",
    lower: true,
    async run(impl) {
      const { ctx, pages } = await tabs(impl, 1);
      const r = await pages[0].evaluate(async () => {
        const t0 = performance.now();
        await Promise.all(Array.from({ length: 1000 }, (_, i) => navigator.locks.request(`n${i}`, () => {})));
        return performance.now() - t0;
      });
      await ctx.close();
      return { value: r, violations: 0 };
    },
  },
  3: {
    title: "two tabs ping-pong one exclusive lock (0.3 ms holds): median handoff",
    unit: "ms",
    lower: true,
    async run(impl) {
      const { ctx, pages } = await tabs(impl, 2);
      const res = await together(
        pages,
        async ([hold, n], who) => {
          const spans = [];
          const f = eval(hold);
          for (let i = 0; i < n; i++) await f("pp", "exclusive", 0.3, who, spans);
          return spans;
        },
        [HOLDER, QUICK ? 200 : 500],
      );
      const { spans, slack } = await oneClock(pages, res);
      await ctx.close();
      const h = handoffs(spans);
      const c = check(spans, slack);
      return { value: h.median, extra: `${h.perSec.toFixed(0)} handoffs/s, ${clashes(c)}`, violations: c.violations };
    },
  },
  4: {
    title: "8 tabs × 100 requests on one exclusive lock (0.3 ms holds)",
    unit: "grants/s",
    lower: false,
    run: (impl) => eightTabs(impl, false),
  },
  5: {
    title: "8 tabs shared readers, exclusive writer every 8th request (0.3 ms holds)",
    unit: "grants/s",
    lower: false,
    run: (impl) => eightTabs(impl, true),
  },
  "6a": {
    title: "holder tab closed → waiter granted",
    unit: "ms",
    lower: true,
    run: (impl) => death(impl, "close"),
  },
  "6b": {
    title: "holder tab crashed → waiter granted",
    unit: "ms",
    lower: true,
    run: (impl) => death(impl, "crash"),
  },
  7: {
    title: "`query()` with 1,000 held + 1,000 pending",
    unit: "ms",
    lower: true,
    async run(impl) {
      const { ctx, pages } = await tabs(impl, 1);
      const r = await pages[0].evaluate(async () => {
        const L = navigator.locks;
        const release = [];
        const held = Array.from({ length: 1000 }, (_, i) => L.request(`q${i}`, () => new Promise((r) => release.push(r))));
        const pend = Array.from({ length: 1000 }, (_, i) => L.request(`q${i}`, () => {}));
        while (release.length < 1000) await new Promise((r) => setTimeout(r, 5));
        await L.query();
        const times = [];
        let snap;
        for (let i = 0; i < 5; i++) {
          const t0 = performance.now();
          snap = await L.query();
          times.push(performance.now() - t0);
        }
        release.forEach((r) => r());
        await Promise.all([...held, ...pend]);
        times.sort((a, b) => a - b);
        return { ms: times[2], held: snap.held.length, pending: snap.pending.length };
      });
      await ctx.close();
      const ok = r.held === 1000 && r.pending === 1000;
      return { value: r.ms, violations: ok ? 0 : 1 };
    },
  },
  8: {
    title: "navigation start → first lock granted, cold",
    unit: "ms",
    lower: true,
    async run(impl) {
      const ctx = await browser.newContext();
      const p = await ctx.newPage();
      await p.goto(`${base}/bench/page.html?impl=${impl}&cold=1`);
      await p.waitForFunction(() => window.firstGrant !== undefined, null, { timeout: 10000 });
      const v = await p.evaluate(() => window.firstGrant);
      await ctx.close();
      return { value: v, violations: 0 };
    },
  },
  9: {
    title: "dedicated worker ↔ its page ping-pong: median handoff",
    unit: "ms",
    lower: true,
    async run(impl) {
      const { ctx, pages } = await tabs(impl, 1);
      const spans = await pages[0].evaluate(
        async ([impl, hold, n]) => {
          const w = new Worker(`/bench/worker.js?impl=${impl}`);
          const msg = () => new Promise((r) => w.addEventListener("message", (e) => r(e.data), { once: true }));
          w.postMessage({ n, name: "wp" });
          await msg(); // worker ready
          const f = eval(hold);
          const mine = [];
          const theirs = msg();
          for (let i = 0; i < n; i++) await f("wp", "exclusive", 0.3, "page", mine);
          const { spans } = await theirs;
          w.terminate();
          return [...mine, ...spans.map(([s, e]) => [s, e, "exclusive", "worker"])];
        },
        [impl, HOLDER, QUICK ? 200 : 500],
      );
      await ctx.close();
      const h = handoffs(spans);
      const c = check(spans);
      return { value: h.median, extra: `${h.perSec.toFixed(0)} handoffs/s, ${clashes(c)}`, violations: c.violations };
    },
  },
  10: {
    title: "scale: per-request cost draining n queued requests on one name (1k / 10k / 100k)",
    unit: "µs/op",
    lower: true,
    async run(impl) {
      const { ctx, pages } = await tabs(impl, 1);
      const sizes = impl === "native" ? [1000, 10000] : [1000, 10000, 100000];
      const curve = [];
      for (const n of sizes) {
        curve.push(
          await pages[0].evaluate(async (n) => {
            const L = navigator.locks;
            let release;
            let held;
            const got = new Promise((r) => (held = r));
            const first = L.request("scale", () => new Promise((r) => {
              release = r;
              held();
            }));
            const all = Array.from({ length: n }, () => L.request("scale", () => {}));
            await got;
            await L.query(); // everything is queued
            const t0 = performance.now();
            release();
            await Promise.all([first, ...all]);
            return ((performance.now() - t0) * 1000) / n;
          }, n),
        );
      }
      await ctx.close();
      return { value: curve[curve.length - 1], extra: sizes.map((n, i) => `${n / 1000}k: ${curve[i].toFixed(1)}`).join(", "), violations: 0 };
    },
  },
};

/** Scenarios 1 and 1b: µs per uncontended sequential request, after 200 to warm up. */
async function sequential(impl, asyncCallback) {
  const { ctx, pages } = await tabs(impl, 1);
  const r = await pages[0].evaluate(
    async ([n, asyncCallback]) => {
      const L = navigator.locks;
      const cb = asyncCallback ? async () => {} : () => {};
      for (let i = 0; i < 200; i++) await L.request("warm", cb);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await L.request("a", cb);
      return ((performance.now() - t0) * 1000) / n;
    },
    [QUICK ? 2000 : 10000, asyncCallback],
  );
  await ctx.close();
  return { value: r, violations: 0 };
}

/** Scenarios 4 and 5: 8 tabs × 100 requests on one name, all exclusive or readers/writer. */
async function eightTabs(impl, readers) {
  const { ctx, pages } = await tabs(impl, 8);
  const res = await together(
    pages,
    async ([hold, readers], who) => {
      const spans = [];
      const f = eval(hold);
      for (let i = 0; i < 100; i++) {
        const mode = readers && (i + who) % 8 !== 0 ? "shared" : "exclusive";
        await f("eight", mode, 0.3, who, spans);
      }
      return spans;
    },
    [HOLDER, readers],
  );
  const { spans, slack } = await oneClock(pages, res);
  await ctx.close();
  const dur = Math.max(...spans.map((s) => s[1])) - Math.min(...spans.map((s) => s[0]));
  const c = check(spans, slack);
  return { value: (spans.length / dur) * 1000, extra: (readers ? `max ${c.maxReaders} readers at once, ` : "") + clashes(c), violations: c.violations };
}

async function death(impl, how) {
  const { ctx, pages } = await tabs(impl, 2);
  const [a, b] = pages;
  await a.evaluate(() => {
    navigator.locks.request("d", () => new Promise(() => {}));
  });
  await a.waitForFunction(async () => (await navigator.locks.query()).held.length === 1);
  await b.evaluate(() => {
    window.granted = null;
    navigator.locks.request("d", () => {
      window.granted = now();
    });
  });
  await b.waitForFunction(async () => (await navigator.locks.query()).pending.length === 1);
  // Ours: the arbiter instance before and after (in plain pages Chromium may run the
  // SharedWorker in the holder tab's process, and a crash then takes it down too).
  const epoch = () => b.evaluate(async (ours) => (ours ? (await navigator.locks.ready).client.epoch : 0), impl === "ours");
  const before = await epoch();
  const t0 = Date.now();
  if (how === "close") await a.close();
  else {
    const cdp = await ctx.newCDPSession(a);
    cdp.send("Page.crash").catch(() => {});
  }
  await b.waitForFunction(() => window.granted !== null, null, { timeout: 10000 });
  const v = (await b.evaluate(() => window.granted)) - t0;
  const restarted = (await epoch()) !== before;
  await ctx.close();
  return { value: v, violations: 0, tally: restarted ? "the arbiter restarted" : "" };
}

// ---- run ---------------------------------------------------------------------------------

const rows = Object.fromEntries(KINDS.map((k) => [k, []]));
let totalViolations = 0;
for (const [id, sc] of Object.entries(scenarios)) {
  if (ONLY.length && !ONLY.includes(Number.parseInt(id, 10))) continue;
  const per = Object.fromEntries(
    KINDS.map((k) => [k, { got: { native: [], ours: [] }, extra: { native: "", ours: "" }, violations: 0, clashed: { native: [], ours: [] }, tally: { native: {}, ours: {} } }]),
  );
  for (let r = 0; r < REPS; r++) {
    for (const kind of KINDS) {
      use(kind);
      const { got, extra, clashed } = per[kind]; // clashed: the repetitions with violations
      for (const impl of r % 2 ? ["ours", "native"] : ["native", "ours"]) {
        try {
          const res = await sc.run(impl);
          got[impl].push(res.value);
          extra[impl] = res.extra || "";
          if (impl === "ours") per[kind].violations += res.violations;
          if (res.violations) clashed[impl].push(`rep ${r + 1}: ${res.violations} violations ${res.extra}`);
          // A scenario's note on what happened in a repetition, counted over them.
          if (res.tally) per[kind].tally[impl][res.tally] = (per[kind].tally[impl][res.tally] || 0) + 1;
        } catch (e) {
          got[impl].push(NaN);
          extra[impl] = `error: ${String(e.message || e).split("\n")[0]}`;
        }
      }
    }
  }
  for (const kind of KINDS) {
    const { got, extra, violations, clashed, tally } = per[kind];
    for (const impl of ["native", "ours"]) if (clashed[impl].length) extra[impl] += ` [${clashed[impl].join("; ")}]`;
    for (const impl of ["native", "ours"])
      for (const [what, n] of Object.entries(tally[impl])) extra[impl] += `${extra[impl] ? "; " : ""}${what} in ${n} of ${got[impl].length} repetitions`;
    const native = median(got.native);
    const ours = median(got.ours);
    totalViolations += violations;
    const ratio = ours / native;
    rows[kind].push({ id, title: sc.title, unit: sc.unit, lower: sc.lower, native, ours, ratio, violations, extra, samples: got });
    console.log(`${id} ${kind}: ${sc.title}: native ${native.toFixed(2)} ours ${ours.toFixed(2)} ${sc.unit} (${ratio.toFixed(2)}×) violations ${violations} ${extra.ours}`);
  }
}

// Scale of the engine itself (native Rust, counting allocator): memory and time per op.
let scale = "";
if (!ONLY.length || ONLY.includes(10)) {
  try {
    scale = execFileSync("cargo", ["run", "-q", "--release", "--example", "scale"], { cwd: root, encoding: "utf8" });
  } catch (e) {
    scale = `(cargo run --example scale failed: ${e.message})`;
  }
}

const version = browser.version();
await browser.close();
for (const server of Object.values(servers)) server.close();

const date = new Date().toISOString();
const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}`;
const fmt = (v) => (Number.isFinite(v) ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) : "—");
const times = (r) => (Number.isFinite(r.ratio) ? r.ratio.toFixed(2) + "×" : "—");
const scaleMd = scale ? "Engine scale (native Rust, `cargo run --release --example scale`):\n\n```\n" + scale.trim() + "\n```\n" : "";
const command = `node bench/run.mjs${KINDS.length === 1 ? ` --${KINDS[0]}` : ""}`;
const said = `${date.slice(0, 10)}, ${machine}, Chromium ${version}, headless`;
for (const kind of KINDS) {
  const isolated = kind === "isolated";
  const report = { date, machine, browser: `Chromium ${version}`, crossOriginIsolated: isolated, reps: REPS, rows: rows[kind], scale };
  const OUT = isolated ? "report-isolated" : "report";
  writeFileSync(new URL(`${OUT}.json`, import.meta.url), JSON.stringify(report, null, 2) + "\n");
  const md = [
    `Reproduce: \`${command}\` (after \`node scripts/build.mjs\`). ${said}, pages ${isolated ? "cross-origin isolated (COOP + COEP)" : "not cross-origin isolated"}; medians of ${REPS} interleaved repetitions.`,
    "",
    "| # | scenario | unit | native | ours | ours / native | better is | ME violations | notes (ours) |",
    "|---|---|---|---:|---:|---:|---|---:|---|",
    ...rows[kind].map(
      (r) =>
        `| ${r.id} | ${r.title} | ${r.unit} | ${fmt(r.native)} | ${fmt(r.ours)} | ${times(r)} | ${r.lower ? "lower" : "higher"} | ${r.violations} | ${r.extra.ours}${r.extra.native ? ` · native: ${r.extra.native}` : ""} |`,
    ),
    "",
    scaleMd,
  ].join("\n");
  writeFileSync(new URL(`${OUT}.md`, import.meta.url), md);
  console.log("\n" + md);
}
if (KINDS.length === 2) {
  // Both page kinds side by side, row by row (the README's table).
  const iso = new Map(rows.isolated.map((r) => [r.id, r]));
  const summary = [
    `Reproduce: \`${command}\` (after \`node scripts/build.mjs\`). ${said}; medians of ${REPS} repetitions, each running native and ours in plain pages, then in cross-origin-isolated ones (COOP + COEP).`,
    "",
    "| # | scenario | unit | better is | plain: native | ours | ours / native | isolated: native | ours | ours / native | ME violations |",
    "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.plain.map((r) => {
      const i = iso.get(r.id);
      return `| ${r.id} | ${r.title} | ${r.unit} | ${r.lower ? "lower" : "higher"} | ${fmt(r.native)} | ${fmt(r.ours)} | ${times(r)} | ${fmt(i.native)} | ${fmt(i.ours)} | ${times(i)} | ${r.violations + i.violations} |`;
    }),
    "",
  ].join("\n");
  writeFileSync(new URL("summary.md", import.meta.url), summary);
  console.log("\n" + summary);
}
process.exit(totalViolations ? 1 : 0);
