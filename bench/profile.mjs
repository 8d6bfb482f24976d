// Where the arbiter's time goes under contention: 8 tabs × 200 requests on one exclusive
// lock (0.3 ms busy holds), with the V8 sampling profiler attached to the arbiter's
// SharedWorker (CDP). Prints the SharedWorker's busy time per grant, the part of it spent
// inside postMessage, and the functions with the most self time (wasm functions by their
// Rust names, from build/names). bench/cpu.mjs has the CPU per grant by process.
//   node bench/profile.mjs [--isolated]
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { serve } from "../scripts/server.mjs";
import { launchOptions } from "../tests/browser.mjs";

const root = new URL("..", import.meta.url).pathname;
const TABS = 8;
const EACH = 200;

/** Function index → name, from the name section of the build's named copy of the wasm. */
function wasmNames(path) {
  const names = new Map();
  let bytes;
  try {
    bytes = readFileSync(path);
  } catch {
    return names;
  }
  const sec = WebAssembly.Module.customSections(new WebAssembly.Module(bytes), "name")[0];
  if (!sec) return names;
  const b = new Uint8Array(sec);
  let p = 0;
  const leb = () => {
    let r = 0;
    let s = 0;
    let x;
    do {
      x = b[p++];
      r |= (x & 0x7f) << s;
      s += 7;
    } while (x & 0x80);
    return r >>> 0;
  };
  while (p < b.length) {
    const id = b[p++];
    const end = leb() + p;
    if (id === 1) {
      for (let n = leb(); n > 0; n--) {
        const idx = leb();
        const len = leb();
        names.set(idx, new TextDecoder().decode(b.subarray(p, p + len)).replace(/::h[0-9a-f]{16}$/, ""));
        p += len;
      }
    }
    p = end;
  }
  return names;
}
const names = wasmNames(`${root}build/names/dist/web_locks_wasm_bg.wasm`);

const server = await serve(root, 0, { isolated: process.argv.includes("--isolated") });
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());
const ctx = await browser.newContext();
const pages = [];
for (let i = 0; i < TABS; i++) {
  const p = await ctx.newPage();
  await p.goto(`${base}/bench/page.html?impl=ours`);
  await p.evaluate(() => window.ready);
  pages.push(p);
}

// The SharedWorker is a target of the browser session; its own CDP session is reached
// through Target.sendMessageToTarget.
const cdp = await browser.newBrowserCDPSession();
const { targetInfos } = await cdp.send("Target.getTargets");
const worker = targetInfos.find((t) => t.type === "shared_worker");
if (!worker) throw new Error("no SharedWorker target");
const { sessionId } = await cdp.send("Target.attachToTarget", { targetId: worker.targetId, flatten: false });
let nextId = 0;
const waiting = new Map();
cdp.on("Target.receivedMessageFromTarget", (e) => {
  const m = JSON.parse(e.message);
  if (waiting.has(m.id)) (waiting.get(m.id)(m.result), waiting.delete(m.id));
});
const call = (method, params = {}) => {
  const id = ++nextId;
  const answer = new Promise((res) => waiting.set(id, res));
  cdp.send("Target.sendMessageToTarget", { sessionId, message: JSON.stringify({ id, method, params }) });
  return answer;
};
await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: 50 });
await call("Profiler.start");
const at = Date.now() + 300;
const grants = (
  await Promise.all(
    pages.map((p) =>
      p.evaluate(
        async ([at, n]) => {
          while (Date.now() < at) await new Promise((r) => setTimeout(r, 1));
          let granted = 0;
          for (let i = 0; i < n; i++)
            await navigator.locks.request("profile", () => {
              const s = now();
              while (now() - s < 0.3) {}
              granted++;
            });
          return granted;
        },
        [at, EACH],
      ),
    ),
  )
).reduce((a, b) => a + b, 0);
const { profile } = await call("Profiler.stop");
await browser.close();
server.close();

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
let busy = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const f = byId.get(profile.samples[i]).callFrame;
  const m = f.functionName.match(/^\$?wasm-function\[(\d+)\]$/);
  const name = m ? `wasm ${names.get(Number(m[1])) || f.functionName}` : f.functionName || "(anonymous JS)";
  const dt = profile.timeDeltas[i] || 0;
  self.set(name, (self.get(name) || 0) + dt);
  if (name !== "(idle)") busy += dt;
}
const per = (us) => (us / grants).toFixed(1);
console.log(`${TABS} tabs × ${EACH} requests on one lock: ${grants} grants; the arbiter's SharedWorker, µs per grant (sampled):`);
console.log(`  busy ${per(busy)}, of which in postMessage ${per(self.get("postMessage") || 0)}`);
for (const [k, v] of [...self].filter(([k]) => k !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, 8))
  console.log(`  ${per(v).padStart(7)}  ${k}`);
