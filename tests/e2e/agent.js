// End-to-end test agent: one classic script that runs in every kind of context of the origin
// (a window through page.html, a dedicated or nested worker, a user SharedWorker, a service
// worker through sw.js) and does what the Node harness (harness.mjs) asks of it:
// request/hold/release/abort locks, record every request's timeline, query(), spawn
// sub-contexts (iframes and workers of every kind) and forward calls to them.
//
// URL parameters (of page.html, or of this script when it is a worker's script):
//   target=ours|native   ours: delete the native Web Locks API, then load /dist/web-locks.js
//   nosw=1               delete SharedWorker first (the polyfill's no-SharedWorker mode)
//   label=TEXT           a name for this context in reports
//
// Every timestamp is performance.timeOrigin + performance.now(), comparable across contexts.
(function () {
  "use strict";
  const g = self;
  const AGENT = "/tests/e2e/agent.js";
  const now = () => performance.timeOrigin + performance.now();
  const isWindow = typeof document !== "undefined";
  const kind = isWindow
    ? "window"
    : typeof ServiceWorkerGlobalScope === "function" && g instanceof ServiceWorkerGlobalScope
      ? "service"
      : typeof SharedWorkerGlobalScope === "function" && g instanceof SharedWorkerGlobalScope
        ? "shared"
        : "worker";
  const params = new URLSearchParams(location.search);
  const target = params.get("target") || "ours";
  const nosw = params.get("nosw") === "1";
  const label = params.get("label") || kind;
  // dist=build/dist-trace: another build of the package (the chaos runner's trace build).
  const dist = /^[\w/-]+$/.test(params.get("dist") || "") ? params.get("dist") : null;
  const POLYFILL = `/${dist || "dist"}/web-locks.js`;

  // ---- installing the target ---------------------------------------------------------
  function removeNative() {
    if (typeof Navigator === "function") delete Navigator.prototype.locks;
    if (typeof WorkerNavigator === "function") delete WorkerNavigator.prototype.locks;
    delete g.LockManager;
    delete g.Lock;
    if ("locks" in navigator) throw new Error("could not delete the native navigator.locks");
  }
  let installed;
  if (nosw) delete g.SharedWorker;
  if (target === "ours") {
    removeNative();
    if (isWindow) {
      installed = new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = POLYFILL;
        s.onload = resolve;
        s.onerror = () => reject(new Error("cannot load " + POLYFILL));
        document.head.append(s);
      });
    } else {
      importScripts(POLYFILL); // synchronous: a service worker may only import at start
      installed = Promise.resolve();
    }
  } else {
    installed = Promise.resolve();
  }
  const ready = installed.then(() => (navigator.locks.ready ? navigator.locks.ready : null));
  let debug = null;
  ready.then((d) => (debug = d));

  // ---- requests and their timeline -----------------------------------------------------
  const records = []; // in request order
  let requestCalls = 0; // navigator.locks.request() calls made here (see chaos())
  const byKey = new Map();
  let seq = 0;
  let frozen = false; // after snapshotForKill(): nothing is released or requested any more

  function publicRecord(r) {
    const { _release, _ac, _reason, _settledP, _grantedP, ...rest } = r;
    return rest;
  }

  /**
   * Requests `name`. opts: mode, ifAvailable, steal, abortable (an AbortSignal is passed;
   * abort(key) fires it), hold (ms: release automatically; else release(key) does).
   * Returns at once; the record fills in: start/end (callback start, release call),
   * settled, outcome (pending|held|released|unavailable|aborted|stolen|rejected).
   */
  function acquire(key, name, opts = {}) {
    if (byKey.has(key)) throw new Error("duplicate key " + key);
    const o = {};
    if (opts.mode) o.mode = opts.mode;
    if (opts.ifAvailable) o.ifAvailable = true;
    if (opts.steal) o.steal = true;
    const r = {
      key,
      ctx: label,
      name,
      mode: opts.mode || "exclusive",
      steal: !!opts.steal,
      ifAvailable: !!opts.ifAvailable,
      seq: ++seq,
      t0: now(),
      start: null,
      end: null,
      settled: null,
      outcome: "pending",
      error: null,
    };
    if (opts.abortable) {
      r._ac = new AbortController();
      o.signal = r._ac.signal;
    }
    let release;
    const held = new Promise((res) => (release = res));
    r._release = () => {
      if (frozen) return;
      if (r.start !== null && r.end === null) r.end = now();
      release();
    };
    let granted;
    r._grantedP = new Promise((res) => (granted = res));
    records.push(r);
    byKey.set(key, r);
    r.id = ++requestCalls; // ours numbers this context's requests 1, 2, ... in call order
    r._settledP = navigator.locks
      .request(name, o, async (lock) => {
        r.start = now();
        granted();
        if (!lock) {
          r.end = r.start;
          r.outcome = "unavailable";
          return "null";
        }
        r.outcome = "held";
        if (opts.hold !== undefined) setTimeout(r._release, opts.hold);
        await held;
        return "done";
      })
      .then(
        (v) => {
          r.settled = now();
          r.outcome = v === "null" ? "unavailable" : "released";
        },
        (e) => {
          r.settled = now();
          r.error = e && e.name ? `${e.name}: ${e.message}` : String(e);
          if (r._reason !== undefined && e === r._reason) r.outcome = "aborted";
          else if (e && e.name === "AbortError") r.outcome = "stolen";
          else r.outcome = "rejected";
          granted();
        },
      );
    return publicRecord(r);
  }

  function get(key) {
    const r = byKey.get(key);
    if (!r) throw new Error("no request " + key);
    return r;
  }
  function withTimeout(p, ms, what) {
    let t;
    return Promise.race([
      p,
      new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`${label}: ${what} not within ${ms} ms`)), ms))),
    ]).finally(() => clearTimeout(t));
  }
  function abortReason() {
    return new DOMException("e2e abort", "AbortError");
  }

  const lifecycle = []; // page lifecycle events seen here: [type, time, visibilityState]
  if (isWindow) {
    for (const type of ["freeze", "resume", "visibilitychange"]) {
      document.addEventListener(type, () => lifecycle.push([type, now(), document.visibilityState]));
    }
    addEventListener("pagehide", (e) => {
      lifecycle.push(["pagehide", now(), document.visibilityState]);
      // Survives the navigation: tells the harness whether this page went into the bfcache.
      try {
        localStorage.setItem(`e2e-pagehide-${label}`, JSON.stringify({ persisted: e.persisted, t: now() }));
      } catch {}
    });
  }

  // ---- sub-contexts --------------------------------------------------------------------
  const handles = new Map();
  let nextHandle = 0;
  function remote(post) {
    const pending = new Map();
    let n = 0;
    return {
      call(m, a) {
        return new Promise((resolve, reject) => {
          const id = ++n;
          pending.set(id, { resolve, reject });
          post({ __rpc: id, m, a });
        });
      },
      reply(d) {
        if (!d || d.__reply === undefined) return;
        const p = pending.get(d.__reply);
        if (!p) return;
        pending.delete(d.__reply);
        d.ok ? p.resolve(d.v) : p.reject(new Error(d.e));
      },
    };
  }
  function agentUrl(script, sub) {
    const u = new URL(script, location.origin);
    u.searchParams.set("target", target);
    if (nosw) u.searchParams.set("nosw", "1");
    if (dist) u.searchParams.set("dist", dist);
    u.searchParams.set("label", sub);
    return u.href;
  }

  async function spawn(what, sub) {
    const h = ++nextHandle;
    let entry;
    if (what === "worker") {
      const w = new Worker(agentUrl(AGENT, sub));
      const r = remote((m) => w.postMessage(m));
      w.onmessage = (e) => r.reply(e.data);
      entry = { call: r.call, kill: () => w.terminate() };
    } else if (what === "nested") {
      const mid = await spawn("worker", sub + "-outer");
      const inner = await handles.get(mid).call("spawn", ["worker", sub]);
      const m = handles.get(mid);
      entry = { call: (fn, a) => m.call("call", [inner, fn, a]), kill: () => m.call("kill", [inner]), outer: mid };
    } else if (what === "shared") {
      const w = new SharedWorker(agentUrl(AGENT, sub), { name: "e2e-user-" + sub });
      const r = remote((m) => w.port.postMessage(m));
      w.port.onmessage = (e) => r.reply(e.data);
      w.port.start();
      entry = { call: r.call, kill: () => w.port.close() };
    } else if (what === "service") {
      const reg = await navigator.serviceWorker.register(agentUrl("/tests/e2e/sw.js", sub), { scope: "/tests/e2e/" });
      const sw = reg.installing || reg.waiting || reg.active;
      if (sw.state !== "activated") {
        await new Promise((res) => sw.addEventListener("statechange", () => sw.state === "activated" && res()));
      }
      const r = remote((m) => sw.postMessage(m));
      navigator.serviceWorker.addEventListener("message", (e) => r.reply(e.data));
      entry = { call: r.call, kill: () => reg.unregister() };
    } else if (what === "frame") {
      const f = document.createElement("iframe");
      f.src = `/tests/e2e/page.html?target=${target}${nosw ? "&nosw=1" : ""}${dist ? `&dist=${dist}` : ""}&label=${encodeURIComponent(sub)}`;
      await new Promise((res, rej) => {
        f.onload = res;
        f.onerror = rej;
        document.body.append(f);
      });
      const win = f.contentWindow;
      // Values cross realms as JSON, like every other channel here.
      entry = { call: async (fn, a) => JSON.parse(JSON.stringify(await win.E2E.call(fn, a))), kill: () => f.remove() };
    } else throw new Error("unknown kind " + what);
    handles.set(h, entry);
    await withTimeout(entry.call("init", []), 10000, `${what} ${sub} init`);
    return h;
  }

  function arbiterInfo(a) {
    const out = { epoch: a.epoch, clients: a.conns ? a.conns.size : null };
    try {
      out.recovering = a.host.recovering;
      out.rejected = a.host.rejected;
    } catch (e) {
      out.stale = String(e); // the host was freed (the arbiter stepped down) but is still shown
    }
    return out;
  }

  const chaosState = { running: false, dirty: new Set(), done: null };

  /** A seeded generator of floats in [0, 1) (mulberry32). */
  function seeded(seed) {
    let s = seed >>> 0;
    return () => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  // ---- the API the harness calls -------------------------------------------------------
  // ---- clock probe ------------------------------------------------------------------------
  // Each context has its own timeOrigin, and two renderer processes can disagree on it by
  // more than the 0.1 ms coarsening (seen: 0.3 ms on a freshly booted CI machine). To bound
  // that, contexts broadcast their clock every 20 ms; a receiver keeps, per sender, the
  // smallest (receive stamp - send stamp). A message takes >= 0 ms, so that minimum bounds
  // how far the sender's clock can run behind the receiver's (see harness checkExclusion).
  const clockMin = {};
  let clockTimer = null;
  let clockBus = null;
  function clockStart() {
    if (clockBus || typeof BroadcastChannel !== "function") return;
    clockBus = new BroadcastChannel("e2e-clock");
    clockBus.onmessage = (e) => {
      const t = now();
      const [from, sent] = e.data;
      if (from !== label) clockMin[from] = Math.min(clockMin[from] ?? Infinity, t - sent);
    };
    clockTimer = setInterval(() => clockBus.postMessage([label, now()]), 20);
  }

  const api = {
    /** Starts broadcasting and receiving clock stamps (clock() reads what was received). */
    clockProbe() {
      clockStart();
      return true;
    },
    /** {sender label: smallest (receive - send) ms seen here} since clockProbe(). */
    clock() {
      return { ...clockMin };
    },
    async init() {
      await withTimeout(ready, 10000, "navigator.locks.ready");
      return api.info();
    },
    info() {
      const d = debug;
      return {
        kind,
        label,
        target,
        clientId: d && d.client ? d.client.clientId : null,
        epoch: d && d.client ? d.client.epoch : null,
        via: d && d.client ? d.client.via : null,
        version: d && d.client ? d.client.version || null : null,
        incompatible: d && d.client ? d.client.incompatible || null : null,
        mode: d ? d.mode : "native",
        arbiter: d && d.arbiter ? arbiterInfo(d.arbiter) : null,
        stats: d ? { ...d.stats } : null,
        visibility: isWindow ? document.visibilityState : null,
      };
    },
    now,
    acquire,
    release(key) {
      get(key)._release();
      return publicRecord(get(key));
    },
    abort(key) {
      const r = get(key);
      if (!r._ac) throw new Error("not abortable: " + key);
      r._reason = abortReason();
      r._ac.abort(r._reason);
      return publicRecord(r);
    },
    record: (key) => publicRecord(get(key)),
    records: () => records.map(publicRecord),
    async waitGranted(key, ms = 10000) {
      await withTimeout(get(key)._grantedP, ms, `grant of ${key}`);
      return publicRecord(get(key));
    },
    async waitSettled(key, ms = 10000) {
      await withTimeout(get(key)._settledP, ms, `settling of ${key}`);
      return publicRecord(get(key));
    },
    /** Resolves when every request made so far settled (or rejects after `ms`). */
    async settleAll(ms = 10000) {
      await withTimeout(Promise.all(records.map((r) => r._settledP)), ms, "settling of every request").catch(() => {});
      return records.map(publicRecord);
    },
    /** Stops all activity (no release, no new request) and returns the records: what a context holds now it holds until it dies. */
    snapshotForKill() {
      frozen = true;
      return { t: now(), records: records.map(publicRecord), clock: { ...clockMin } };
    },
    /** `n` requests on `name` at once, each held `hold` ms; resolves once all settled. */
    async burst(prefix, name, n, opts = {}) {
      const keys = [];
      for (let i = 0; i < n; i++) {
        const mode = opts.sharedEvery && i % opts.sharedEvery !== 0 ? "shared" : "exclusive";
        acquire(`${prefix}${i}`, name, { mode, hold: opts.hold ?? 2 });
        keys.push(`${prefix}${i}`);
      }
      await withTimeout(Promise.all(keys.map((k) => get(k)._settledP)), opts.timeout ?? 20000, `burst ${prefix}`);
      return keys.map((k) => publicRecord(get(k)));
    },
    /**
     * `n` requests on `name` one after the other (each awaited before the next), each held
     * `hold` ms; a fraction `sharedRatio` of them shared. Several tabs running this at
     * once contend like real clients do. Resolves to the records once all settled.
     */
    async loop(prefix, name, n, opts = {}) {
      let s = (opts.seed ?? 1) >>> 0;
      const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) / 16777216;
      const keys = [];
      for (let i = 0; i < n && !frozen; i++) {
        const mode = rnd() < (opts.sharedRatio || 0) ? "shared" : "exclusive";
        const key = `${prefix}${i}`;
        acquire(key, name, { mode, hold: opts.hold ?? 2 });
        keys.push(key);
        await withTimeout(get(key)._settledP, opts.timeout ?? 10000, `loop ${key}`);
      }
      return keys.map((k) => publicRecord(get(k)));
    },
    /**
     * A hostile same-origin script: posts `count` junk messages on each channel in
     * `channels`, `perTick` at a time. Returns how many were posted.
     */
    async post(channel, msgs) {
      const c = new BroadcastChannel(channel);
      for (const m of msgs) c.postMessage(m);
      c.close();
      return msgs.length;
    },
    async hostile(channels, count, perTick = 20, shaped = false) {
      const chans = channels.map((n) => new BroadcastChannel(n));
      const r = () => Math.random();
      const word = () => (r() * 65536) | 0;
      const junkWords = () => {
        const u = new Uint16Array((r() * 24) | 0);
        for (let i = 0; i < u.length; i++) u[i] = word();
        if (u.length && r() < 0.5) u[0] = 1; // the protocol version: the decoder must look deeper
        return u;
      };
      const huge = () => [1e308, -1e308, 2 ** 53, 2 ** 64, -(2 ** 31), 4294967297, NaN, Infinity, -0][(r() * 9) | 0];
      const junk = () => {
        switch ((r() * 10) | 0) {
          case 0: return "garbage " + r();
          case 1: return huge();
          case 2: return junkWords();
          case 3: return [Math.random().toString(16).slice(2), junkWords()]; // (no randomUUID on insecure origins)
          case 4: return [huge(), junkWords()];
          case 5: return [huge(), "x", null];
          case 6: return Array.from({ length: (r() * 6) | 0 }, () => [r(), "s", null, {}, [], junkWords()][(r() * 6) | 0]);
          case 7: return { 0: "A", 1: 5, length: 2 };
          case 8: {
            // Any one-letter tag but the protocol's own (those are h2's business).
            const tag = String.fromCharCode(word());
            return ["A", "C", "?", "H", "L"].includes(tag) ? ["Z", huge()] : [tag, huge()];
          }
          default: return null;
        }
      };
      // Protocol-shaped: known tags with impossible values.
      const shapedJunk = () => [["A", huge()], ["A", -1], ["A", "7"], ["?"], ["C"], ["H", 42], ["L", huge()], [huge(), new Uint16Array([1, word(), word()])]][(r() * 8) | 0];
      let sent = 0;
      while (sent < count) {
        for (let i = 0; i < perTick && sent < count; i++, sent++) for (const c of chans) c.postMessage(shaped ? shapedJunk() : junk());
        await new Promise((res) => setTimeout(res, 1));
      }
      chans.forEach((c) => c.close());
      return sent;
    },
    lifecycle: () => lifecycle.slice(),
    /** Hides `pagehide` from every later listener (the polyfill's goodbye included). */
    noGoodbye() {
      addEventListener("pagehide", (e) => e.stopImmediatePropagation(), true);
      return true;
    },
    /**
     * A random workload: `ops` requests on `names`, at most `conc` at a time, each with a
     * random mode/flags, held 0..maxHold ms, some aborted after a random delay.
     */
    async random(cfg) {
      const rnd = seeded(cfg.seed);
      const inflight = new Set();
      for (let i = 0; i < cfg.ops && !frozen; i++) {
        while (inflight.size >= cfg.conc) await Promise.race(inflight);
        if (frozen) break;
        const name = cfg.names[Math.floor(rnd() * cfg.names.length)];
        const x = rnd();
        const opts = { hold: Math.floor(rnd() * (cfg.maxHold + 1)) };
        if (x < cfg.pSteal) opts.steal = true;
        else if (x < cfg.pSteal + cfg.pIfAvailable) opts.ifAvailable = true;
        else if (x < cfg.pSteal + cfg.pIfAvailable + cfg.pAbort) opts.abortable = true;
        if (!opts.steal && rnd() < cfg.pShared) opts.mode = "shared";
        const key = `${cfg.prefix}${i}`;
        acquire(key, name, opts);
        const r = get(key);
        if (opts.abortable) setTimeout(() => frozen || api.abort(key), Math.floor(rnd() * cfg.maxAbortDelay));
        const p = r._settledP.then(() => inflight.delete(p));
        inflight.add(p);
      }
      await api.settleAll(cfg.settleMs ?? 10000);
      return { issued: records.length };
    },
    /**
     * The chaos runner's workload (tests/chaos/run.mjs): `cfg.loops` loops, each making one
     * request after another on `cfg.names` until `cfg.until` (this context's clock) or
     * chaosStop(): mode, flags and hold drawn from a seeded generator. Returns at once;
     * chaosDrain() hands over the records changed since its last call. Each record carries
     * `id`, this context's count of request() calls (ours numbers requests 1, 2, ... in
     * call order, the ids its arbiter's decision log uses), and this context's `clientId`.
     */
    async chaos(cfg) {
      const d = await ready;
      const clientId = d && d.client ? d.client.clientId : label;
      const rnd = seeded(cfg.seed);
      chaosState.running = true;
      // Clock calibration (tests/chaos/observer.html pings, every context answers with its
      // own clock), so that stamps from different processes can be compared.
      if (!chaosState.clock) {
        chaosState.clock = new BroadcastChannel(cfg.clockChannel);
        chaosState.clock.onmessage = (e) => e.data.length === 2 && e.data[1] === label && chaosState.clock.postMessage([e.data[0], label, now()]);
      }
      const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
      const loop = async () => {
        while (chaosState.running && !frozen && now() < cfg.until) {
          let name = cfg.names[Math.floor(rnd() * cfg.names.length)];
          // A name this context mostly uses alone (its home), now and then a tab's.
          if (cfg.pPrivate && rnd() < cfg.pPrivate) name = `chaos-home-${rnd() < 0.95 ? label : `T${Math.floor(rnd() * cfg.tabs)}`}`;
          const x = rnd();
          const o = {};
          let abortAfter = -1;
          if (x < cfg.pSteal) o.steal = true;
          else if (x < cfg.pSteal + cfg.pIfAvailable) o.ifAvailable = true;
          else if (x < cfg.pSteal + cfg.pIfAvailable + cfg.pAbort) abortAfter = Math.floor(rnd() * (cfg.maxAbortDelay + 1));
          if (!o.steal && rnd() < cfg.pShared) o.mode = "shared";
          const hold = rnd() * cfg.maxHold;
          const r = { ctx: label, clientId, id: ++requestCalls, name, mode: o.mode || "exclusive", steal: !!o.steal, ifAvailable: !!o.ifAvailable, abortable: abortAfter >= 0, t0: now(), start: null, end: null, settled: null, outcome: "pending" };
          const touch = () => chaosState.dirty.add(r);
          let ac = null;
          if (abortAfter >= 0) {
            ac = new AbortController();
            o.signal = ac.signal;
          }
          touch();
          // A lease (the lock services' acquire() with a ttl, cfg.pLease of the plain
          // requests): held for `hold` ms unless the lease runs out first (the arbiter then
          // takes it: an "expired" decision), which the handle's signal tells.
          if (cfg.pLease && abortAfter < 0 && !o.steal && !o.ifAvailable && g.WebLocksWasm && rnd() < cfg.pLease) {
            const ttl = 1 + rnd() * cfg.maxHold * 1.5;
            r.lease = ttl;
            await g.WebLocksWasm.acquire(name, { mode: r.mode, ttl }).then(
              async (h) => {
                r.start = now();
                r.outcome = "held";
                touch();
                const lost = new Promise((res) => h.signal.addEventListener("abort", () => res(h.signal.reason), { once: true }));
                const reason = await Promise.race([sleep(hold).then(() => null), lost]);
                r.end = now();
                touch();
                if (reason) r.outcome = reason.name === "TimeoutError" ? "expired" : "stolen";
                else {
                  await h.release();
                  r.outcome = h.signal.aborted ? "expired" : "released";
                }
              },
              // DeadlockError: the lock services report a context that waits for what it
              // holds (the other loop's lease); TimeoutError: the lease ran out before the
              // grant reached this context.
              (e) => (r.outcome = { AbortError: "stolen", DeadlockError: "deadlock", TimeoutError: "expired" }[e && e.name] || `rejected: ${e}`),
            );
            r.settled = now();
            touch();
            continue;
          }
          const p = navigator.locks.request(name, o, async (lock) => {
            r.start = now();
            if (!lock) {
              r.end = r.start;
              r.outcome = "unavailable";
              touch();
              return;
            }
            r.outcome = "held";
            touch();
            if (hold >= 0.5) await sleep(hold);
            r.end = now(); // stamped before the callback returns
            touch();
          });
          if (ac) setTimeout(() => ac.abort(new DOMException("chaos abort", "AbortError")), abortAfter);
          await p.then(
            () => (r.outcome = r.outcome === "unavailable" ? "unavailable" : "released"),
            (e) => (r.outcome = e && e.message === "chaos abort" ? "aborted" : e && e.name === "AbortError" ? "stolen" : `rejected: ${e}`),
          );
          r.settled = now();
          touch();
        }
      };
      const loops = [];
      for (let i = 0; i < cfg.loops; i++) loops.push(loop());
      chaosState.done = Promise.all(loops);
      return { clientId, label };
    },
    chaosDrain() {
      const out = [...chaosState.dirty].map((r) => ({ ...r }));
      chaosState.dirty.clear();
      return out;
    },
    /** Stops the loops (no new request); resolves when every loop's last request settled. */
    async chaosStop(ms = 15000) {
      chaosState.running = false;
      await withTimeout(chaosState.done || Promise.resolve(), ms, "the chaos loops to finish");
      return api.chaosDrain();
    },
    async query() {
      const q = await navigator.locks.query();
      return JSON.parse(JSON.stringify(q));
    },
    async spawn(what, sub) {
      return spawn(what, sub);
    },
    async call(h, m, a) {
      const e = handles.get(h);
      if (!e) throw new Error("no handle " + h);
      return e.call(m, a || []);
    },
    /** Kills a sub-context (terminate(), iframe removal, …); returns the time just before. */
    kill(h) {
      const t = now();
      handles.get(h).kill();
      return t;
    },
  };

  async function dispatch(d, reply) {
    if (!d || d.__rpc === undefined) return;
    try {
      const f = api[d.m];
      if (typeof f !== "function") throw new Error("no method " + d.m);
      reply({ __reply: d.__rpc, ok: true, v: await f(...(d.a || [])) });
    } catch (e) {
      reply({ __reply: d.__rpc, ok: false, e: String(e && e.stack ? e.stack : e) });
    }
  }

  g.E2E = { api, ready, call: (m, a) => api[m](...(a || [])), kind, label };
  if (kind === "worker") g.onmessage = (e) => dispatch(e.data, (r) => g.postMessage(r));
  else if (kind === "shared") {
    g.onconnect = (e) => {
      const port = e.ports[0];
      port.onmessage = (ev) => dispatch(ev.data, (r) => port.postMessage(r));
    };
  } else if (kind === "service") {
    g.addEventListener("install", () => g.skipWaiting());
    g.addEventListener("activate", (e) => e.waitUntil(g.clients.claim()));
    g.addEventListener("message", (e) => {
      const src = e.source;
      e.waitUntil(dispatch(e.data, (r) => src.postMessage(r)));
    });
  }
})();
