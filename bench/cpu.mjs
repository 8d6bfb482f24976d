// Where the CPU goes under contention: 8 tabs × 200 requests on one exclusive lock (0.3 ms
// busy holds), or with --readers shared readers and an exclusive writer every 8th request
// (bench scenario 5's mix), native and ours, interleaved. Reads the user+system CPU time of every
// process of the browser from /proc (Linux only) before and after, and reports it per
// grant by process type. On a 2-core machine, CPU per grant bounds throughput.
//   node bench/cpu.mjs [reps] [--readers]
import { readdirSync, readFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { serve } from "../scripts/server.mjs";
import { launchOptions } from "../tests/browser.mjs";

const reps = Number(process.argv.slice(2).find((a) => !a.startsWith("--")) || 2);
const READERS = process.argv.includes("--readers");
const TAG = `--bench-cpu-${process.pid}`; // finds the browser process among all
const TICK_MS = 10; // USER_HZ = 100 on Linux
const server = await serve(new URL("..", import.meta.url).pathname);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions([TAG]));

/** CPU ms and type of every process under the browser process. */
function processes() {
  const all = new Map();
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      all.set(pid, { ppid: f[1], cpu: (Number(f[11]) + Number(f[12])) * TICK_MS, cmd });
    } catch {}
  }
  const root = [...all].find(([, p]) => p.cmd.includes(TAG))?.[0];
  const tree = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, p] of all) if (!tree.has(pid) && tree.has(p.ppid)) (tree.add(pid), (grew = true));
  }
  const out = new Map();
  for (const pid of tree) {
    const p = all.get(pid);
    if (p) out.set(pid, { type: (p.cmd.match(/--type=(\S+)/) || [, "browser"])[1], cpu: p.cpu });
  }
  return out;
}

const HOLDER = `(mode, hold, who, spans) => navigator.locks.request("cpu", { mode }, () => {
  const s = now(); while (now() - s < hold) {} spans.push([s, now(), who]); })`;

const rows = [];
for (let r = 0; r < reps; r++) {
  for (const impl of r % 2 ? ["ours", "native"] : ["native", "ours"]) {
    const ctx = await browser.newContext();
    const pages = [];
    for (let i = 0; i < 8; i++) {
      const p = await ctx.newPage();
      await p.goto(`${base}/bench/page.html?impl=${impl}`);
      await p.evaluate(() => window.ready);
      pages.push(p);
    }
    await new Promise((res) => setTimeout(res, 300));
    const before = processes();
    const at = Date.now() + 300;
    const spans = (
      await Promise.all(
        pages.map((p, who) =>
          p.evaluate(
            async ([hold, at, who, readers]) => {
              while (Date.now() < at) await new Promise((r) => setTimeout(r, 1));
              const spans = [];
              const f = eval(hold);
              for (let i = 0; i < 200; i++) await f(readers && (i + who) % 8 !== 0 ? "shared" : "exclusive", 0.3, who, spans);
              return spans;
            },
            [HOLDER, at, who, READERS],
          ),
        ),
      )
    ).flat();
    const after = processes();
    await ctx.close();
    const byType = {};
    const renderers = [];
    for (const [pid, p] of after) {
      const d = p.cpu - (before.get(pid)?.cpu || 0);
      byType[p.type] = (byType[p.type] || 0) + d;
      if (p.type === "renderer" && d > 0) renderers.push(d);
    }
    const n = spans.length;
    const dur = Math.max(...spans.map((s) => s[1])) - Math.min(...spans.map((s) => s[0]));
    const us = (ms) => Math.round((ms * 1000) / n);
    renderers.sort((a, b) => b - a);
    rows.push({
      impl,
      grantsPerSec: Math.round((n / dur) * 1000),
      total: us(Object.values(byType).reduce((a, b) => a + b, 0)),
      browser: us(byType.browser || 0),
      renderers: us(byType.renderer || 0),
      busiest: us(renderers[0] || 0),
    });
  }
}
await browser.close();
server.close();
console.log(`8 tabs × 200 requests on one ${READERS ? "name, shared readers and a writer every 8th," : "exclusive lock"}: CPU µs per grant (busy 0.3 ms holds included)`);
console.log("impl    grants/s  total  browser process  all renderers  busiest renderer");
for (const r of rows) {
  console.log(
    `${r.impl.padEnd(7)} ${String(r.grantsPerSec).padStart(8)} ${String(r.total).padStart(6)} ${String(r.browser).padStart(16)} ${String(r.renderers).padStart(14)} ${String(r.busiest).padStart(17)}`,
  );
}
console.log("(ours: the busiest renderer is the arbiter's SharedWorker; native's lock manager runs in the browser process)");
