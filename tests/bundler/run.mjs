// Builds the same small app (tests/bundler/main.js + worker.js) with Vite, webpack 5,
// esbuild, Rollup and Parcel, each from its own config in this folder, against the built
// dist/ (issue #3, #14), serves each output, and checks in headless Chromium that:
//  - the SharedWorker script that the bundler emitted is found, runs, and is
//    dist/web-locks-arbiter.js byte for byte (a classic script, served as JS);
//  - the wasm files are found (client wasm in the tabs, full wasm in the dedicated worker)
//    and served as application/wasm, and nothing the app asks for is missing;
//  - two tabs share one lock space through that SharedWorker (via "port");
//  - a dedicated module worker (bundled by the bundler) takes locks in the same space.
// Usage: node tests/bundler/run.mjs [--no-build] [vite] [webpack] [esbuild] [rollup] [parcel]
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { record } from "../results.mjs";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { serve } from "../../scripts/server.mjs";
import { launchOptions } from "../browser.mjs";

const root = new URL("../..", import.meta.url).pathname;
const here = `${root}tests/bundler/`;
const run = promisify(execFile);
const sh = (cmd, args, opts = {}) => run(cmd, args, { cwd: root, maxBuffer: 1 << 26, ...opts });

// How each bundler is run on its config (the configs are what a user would write).
const BUNDLERS = {
  vite: {
    out: "build/bundler",
    build: () => sh(`${root}node_modules/.bin/vite`, ["build", "--config", `${here}vite.config.mjs`]),
  },
  webpack: {
    out: "build/bundler-webpack",
    async build() {
      const { default: webpack } = await import("webpack");
      const { default: config } = await import("./webpack.config.mjs");
      const stats = await new Promise((ok, no) => webpack(config, (e, s) => (e ? no(e) : ok(s))));
      if (stats.hasErrors()) throw new Error(stats.toString({ all: false, errors: true }));
      if (stats.hasWarnings()) console.log(stats.toString({ all: false, warnings: true }));
    },
  },
  esbuild: {
    out: "build/bundler-esbuild",
    build: () => sh(process.execPath, [`${here}esbuild.config.mjs`]),
  },
  rollup: {
    out: "build/bundler-rollup",
    build: () => sh(`${root}node_modules/.bin/rollup`, ["--config", `${here}rollup.config.mjs`, "--silent"]),
  },
  parcel: {
    out: "build/bundler-parcel",
    note:
      "if the tabs show '<x>.then is not a function': Parcel's JS transformer rewrites an import() inside a `Promise.resolve().then(...)` " +
      "callback (parcel-bundler/parcel#8116); load() in js/core.js must start its chain another way, see tests/bundler/README.md",
    // From this folder, so that Parcel takes tests/bundler/package.json (the app's) for the
    // targets and the "web-locks-wasm" alias, not the package's own package.json.
    build: () =>
      sh(`${root}node_modules/.bin/parcel`, ["build", "index.html", "--config", "./.parcelrc", "--dist-dir", `${root}build/bundler-parcel`, "--cache-dir", `${root}build/.parcel-cache`, "--log-level", "warn"], { cwd: here }),
  },
};

// --no-build: check the outputs already in build/ (e.g. after editing one by hand).
const noBuild = process.argv.includes("--no-build");
const only = process.argv.slice(2).filter((a) => a !== "--no-build");
for (const n of only) if (!BUNDLERS[n]) throw new Error(`unknown bundler ${n}; known: ${Object.keys(BUNDLERS)}`);
const names = only.length ? only : Object.keys(BUNDLERS);

const sha = (buf) => createHash("sha256").update(buf).digest("hex");
// What the package ships, read right before each build: the bundled copies must match it.
const shippedNow = () => ({
  arbiter: sha(readFileSync(`${root}dist/web-locks-arbiter.js`)),
  clientWasm: sha(readFileSync(`${root}dist/web_locks_client_bg.wasm`)),
  fullWasm: sha(readFileSync(`${root}dist/web_locks_wasm_bg.wasm`)),
});

const within = (ms, what, p) => {
  let t;
  return Promise.race([p, new Promise((_, no) => (t = setTimeout(() => no(new Error(`timed out (${ms} ms): ${what}`)), ms)))]).finally(() => clearTimeout(t));
};

async function until(what, f, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out (${ms} ms) waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function check(browser, name, dir, shipped) {
  const server = await serve(dir);
  const served = [];
  server.on("request", (req, res) => {
    // (this listener runs right after the server's own, before it answers)
    const writeHead = res.writeHead;
    res.writeHead = function (status, headers) {
      served.push({ path: new URL(req.url, "http://x").pathname, status, type: String((headers && headers["content-type"]) || "") });
      return writeHead.apply(this, arguments);
    };
  });
  const base = `http://localhost:${server.address().port}`;
  const ctx = await browser.newContext();
  const cdp = await browser.newBrowserCDPSession();
  const errors = [];
  // An uncaught error in a tab ends the check at once (rather than at a step's timeout).
  let broke;
  const broken = new Promise((_, no) => (broke = no));
  broken.catch(() => {});
  try {
    const [a, b] = [await ctx.newPage(), await ctx.newPage()];
    for (const [tab, p] of [["A", a], ["B", b]]) {
      p.on("pageerror", (e) => (errors.push(`tab ${tab}: ${e.message}`), broke(new Error(`uncaught error in tab ${tab}: ${e.message}`))));
      // (a failed fetch is logged too; those are checked against what was served below,
      // where Chromium's own /favicon.ico request is let through)
      p.on("console", (m) => m.type() === "error" && !/^Failed to load resource/.test(m.text()) && errors.push(`tab ${tab} console: ${m.text()}`));
      await p.goto(`${base}/`);
    }
    const ev = (p, what, f, arg) => Promise.race([within(15000, what, p.evaluate(f, arg)), broken]);
    const state = (p, tab) => ev(p, `tab ${tab} ready`, async () => {
      const d = await window.appReady;
      return { mode: d.mode, via: d.client ? d.client.via : "none (no client)", clientId: d.client && d.client.clientId };
    });

    // Tab A holds "bundled" until told to release it.
    await ev(a, "tab A takes 'bundled'", () =>
      new Promise((granted) => L.request("bundled", () => new Promise((release) => ((window.releaseBundled = release), granted())))),
    );
    const sa = await state(a, "A");
    const r = await ev(b, "tab B asks for 'bundled'", async () => ({
      other: await L.request("bundled", { ifAvailable: true }, (lock) => lock),
      held: (await L.query()).held,
    }));
    const sb = await state(b, "B");
    assert.equal(sa.mode, "shared", "tab A is in shared mode");
    assert.equal(sa.via, "port", "tab A reaches the arbiter through the bundled SharedWorker");
    assert.equal(sb.via, "port", "tab B reaches the arbiter through the bundled SharedWorker");
    assert.equal(r.other, null, "tab B sees tab A's lock");
    assert.deepEqual(r.held, [{ name: "bundled", mode: "exclusive", clientId: sa.clientId }], "tab B's query shows tab A's lock");

    // The SharedWorker that runs is the script the bundler emitted for web-locks-arbiter.js.
    const { targetInfos } = await cdp.send("Target.getTargets");
    const shared = targetInfos.filter((t) => t.type === "shared_worker" && t.url.startsWith(base));
    assert.equal(shared.length, 1, `one SharedWorker runs (targets: ${JSON.stringify(targetInfos.map((t) => [t.type, t.url]))})`);
    const sharedPath = new URL(shared[0].url).pathname;

    // A dedicated module worker, started by tab B, in the same lock space.
    const w0 = await ev(b, "worker ready", () => inWorker("ready"));
    assert.equal(w0.mode, "shared", "the worker is in shared mode");
    assert.ok(w0.clientId && w0.clientId !== sa.clientId && w0.clientId !== sb.clientId, "the worker is a client of its own");
    assert.equal(await ev(b, "worker asks for 'bundled'", () => inWorker("try", "bundled")), null, "the worker sees tab A's lock");
    assert.equal(await ev(b, "worker takes 'from-worker'", () => inWorker("hold", "from-worker")), "from-worker");
    const qa = await ev(a, "tab A query", () => L.query());
    assert.deepEqual(qa.held.filter((l) => l.name === "from-worker"), [{ name: "from-worker", mode: "exclusive", clientId: w0.clientId }], "tab A sees the worker's lock");
    await ev(b, "worker waits for 'bundled'", () => void (window.waitBundled = inWorker("wait", "bundled")));
    await until("the worker's request for 'bundled' to be queued", () =>
      a.evaluate((id) => L.query().then((q) => q.pending.some((l) => l.name === "bundled" && l.clientId === id)), w0.clientId),
    );
    await ev(a, "tab A releases 'bundled'", () => window.releaseBundled());
    assert.equal(await ev(b, "worker granted 'bundled' after tab A released it", () => window.waitBundled), "bundled");
    await ev(b, "worker releases 'from-worker'", () => inWorker("release", "from-worker"));
    // The worker's release goes to the arbiter over its BroadcastChannel, and its answer
    // to tab B over another channel, so tab B's query can arrive first (README, Limits: "A
    // release reaches the arbiter after the releasing context's request() promise
    // settles"). It must arrive all the same, and nothing else may be left.
    let early = 0;
    const end = await until("the worker's release to reach the arbiter", async () => {
      const q = await ev(b, "tab B query", () => L.query());
      return q.held.some((l) => l.name === "from-worker") ? (early++, null) : q;
    }, 2000);
    if (early) console.log(`  ${name}: tab B's query came before the worker's release ${early} time(s) (50 ms apart)`);
    assert.deepEqual(end, { held: [], pending: [] }, "nothing left held or pending");
    const w1 = await ev(b, "worker state", () => inWorker("ready"));
    assert.notEqual(w1.via, "none", "the worker is connected to the arbiter");
    const workerUrl = b.workers().map((w) => new URL(w.url()).pathname);

    // What was served: nothing missing, the wasm files as the package ships them.
    errors.push(...(await b.evaluate(() => window.workerErrors)).map((e) => `worker: ${e}`));
    assert.deepEqual(errors, [], "no errors in the tabs or the worker");
    const missing = served.filter((s) => s.status !== 200 && s.path !== "/favicon.ico");
    assert.deepEqual(missing, [], "every file the app asked for was there");
    const ok = [];
    for (const s of served.filter((s) => s.status === 200)) ok.push({ ...s, sha: sha(await readFile(join(dir, s.path === "/" ? "index.html" : s.path))) });
    for (const [what, h] of [["client wasm (tabs)", shipped.clientWasm], ["full wasm (worker)", shipped.fullWasm]]) {
      const hits = ok.filter((s) => s.sha === h);
      assert.ok(hits.length > 0, `the ${what} was fetched`);
      for (const s of hits) assert.equal(s.type, "application/wasm", `${s.path} is served as application/wasm`);
    }
    const arb = ok.filter((s) => s.path === sharedPath);
    assert.ok(arb.length && arb.every((s) => s.type.startsWith("text/javascript")), `${sharedPath} is served as JavaScript`);
    // Last, as the one check that can fail while everything runs: the bundler emitted the
    // package's classic script as it is (not wrapped, transpiled or minified again).
    assert.equal(sha(await readFile(join(dir, sharedPath))), shipped.arbiter, `the SharedWorker script ${sharedPath} is dist/web-locks-arbiter.js byte for byte`);
    return `SharedWorker ${sharedPath}, dedicated worker ${workerUrl.join(" ") || "?"}, ${new Set(ok.map((s) => s.path)).size} files fetched, two tabs and the worker share one lock space`;
  } catch (e) {
    // What the browser said and what was missing tell why a step timed out.
    const missing = served.filter((s) => s.status !== 200 && s.path !== "/favicon.ico").map((s) => `${s.status} ${s.path}`);
    const ws = await Promise.all(ctx.pages().map((p) => p.evaluate(() => window.workerErrors).catch(() => null)));
    if (errors.length || missing.length || ws.some((w) => w && w.length))
      e.message += `\n  errors: ${JSON.stringify(errors)}\n  worker errors: ${JSON.stringify(ws)}\n  not served: ${JSON.stringify(missing)}`;
    throw e;
  } finally {
    await cdp.detach().catch(() => {});
    await ctx.close();
    server.close();
  }
}

const t0 = Date.now();
const browser = await chromium.launch(launchOptions());
let failed = 0;
try {
  for (const name of names) {
    const { out, build } = BUNDLERS[name];
    const t = Date.now();
    let built = false;
    try {
      const shipped = shippedNow();
      if (!noBuild) {
        rmSync(`${root}${out}`, { recursive: true, force: true });
        await build();
      }
      built = true;
      const builtMs = Date.now() - t;
      const what = await check(browser, name, `${root}${out}`, shipped);
      const took = `${noBuild ? "not rebuilt" : `build ${(builtMs / 1000).toFixed(1)} s`}, total ${((Date.now() - t) / 1000).toFixed(1)} s`;
      console.log(`ok   ${name}: ${what} (${took})`);
    } catch (e) {
      failed++;
      const msg = e instanceof Error ? e.message : String(e);
      const extra = e && (e.stderr || e.stdout) ? `\n${e.stdout || ""}${e.stderr || ""}` : "";
      const note = BUNDLERS[name].note ? `\n  note: ${BUNDLERS[name].note}` : "";
      console.log(`FAIL ${name}: ${built ? "" : "build failed: "}${msg}${extra}${note}`);
    }
  }
} finally {
  await browser.close();
}
console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s in all)`);
console.log(`bundlers: ${names.length - failed} passed, ${failed} failed`);
record("bundlers", { engine: "Chromium", version: "", rows: { "built with Vite, webpack, esbuild, Rollup and Parcel": `${failed ? "fail" : "pass"} (${names.length - failed}/${names.length})` } });
process.exit(failed ? 1 : 0);
