// Hosting the arbiter: the election, death probes, recovery and serving clients. Loaded
// only by a context that runs for arbiter (the SharedWorker, a worker, a window without
// SharedWorker, or one whose SharedWorker failed to come back); a window whose arbiter runs
// in the SharedWorker never fetches it. Pure I/O glue around the wasm exports; the
// decisions that matter for correctness (what to grant, when recovery is complete) are in
// Rust (src/arbiter.rs). Names: see coord.js.
import {
  ANNOUNCE,
  batcher,
  CANDIDATE,
  debug,
  held,
  idb,
  keepOpen,
  open,
  PREFIX,
  stats,
  units,
  WHO,
} from "./coord.js";

/** Calls `each(frame)` for every frame of a batch; returns false if it is malformed. */
function unbatch(batch, each) {
  if (!(batch instanceof Uint16Array)) return false;
  for (let at = 0; at < batch.length; ) {
    const len = batch[at] | (batch[at + 1] << 16);
    if (len < 0 || at + 2 + len > batch.length) return false;
    each(batch.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  return true;
}

// WEB_LOCKS_TRACE is a build-time constant (scripts/build.mjs defines it): true in test
// builds (WEB_LOCKS_TRACE=1), which post the arbiter's decision log; the package is built
// with false, and esbuild drops that code. Load this file through the build only.
/* global WEB_LOCKS_TRACE */

/**
 * Test builds only (feature `trace`): posts the arbiter's decision log, stamped with this
 * context's clock, on a channel the chaos runner's observer listens to (tests/chaos).
 * `traced()` sends what was decided since the last call; `traced(mark)` a marker.
 */
const tracer =
  WEB_LOCKS_TRACE &&
  ((host, epoch) => {
    const trace = host.takeTrace && new BroadcastChannel(`${PREFIX}:trace`);
    return (mark) => {
      const w = trace && (mark || host.takeTrace());
      if (w && w.length) trace.postMessage([epoch, performance.timeOrigin + performance.now(), w]);
    };
  });

/**
 * Calls `onDead` once the context holding `${PREFIX}-c-${clientId}` is gone; the database
 * goes with it. A deletion waits for every connection to close, and the client's ignores
 * `versionchange`: it goes through as soon as the client's connection closes (close,
 * crash, navigation, terminate), and a frozen client keeps it waiting, rightly, since it
 * still lives. Unlike an open at a higher version (an upgrade, which runs in the opener's
 * context), a deletion needs nothing from this context to complete: one left pending by an
 * arbiter that stopped running (handed over, then frozen) never holds up the next one's.
 */
function probe(clientId, onDead) {
  let fired = false;
  try {
    const req = idb().deleteDatabase(`${PREFIX}-c-${clientId}`);
    req.onsuccess = () => fired || ((fired = true), onDead());
    // Any other failure says nothing about the client: never release on it; ask again.
    req.onerror = (e) => {
      e.preventDefault();
      if (!fired) setTimeout(() => probe(clientId, onDead), 1000);
    };
  } catch {
    // No IndexedDB here: liveness then rests on goodbyes.
  }
}

/** Client ids of every probe database in this origin (stale ones from a crash included). */
async function listedClients() {
  if (typeof idb().databases !== "function") return [];
  const dbs = await idb().databases();
  const head = `${PREFIX}-c-`;
  return dbs.map((d) => d.name).filter((n) => n && n.startsWith(head)).map((n) => n.slice(head.length));
}

/**
 * Runs for leadership: resolves with [connection, epoch] when this context holds the
 * leader database. Only one context holds it at a time: a candidate's version upgrade
 * stays blocked while the leader's connection is open and goes through the moment it
 * closes (the leader died or stepped down).
 */
function campaign() {
  const name = `${PREFIX}-leader`;
  return new Promise((resolve) => {
    const attempt = (version) => {
      const req = open(name, version);
      let upgraded = false;
      req.onupgradeneeded = () => {
        upgraded = true;
      };
      req.onsuccess = () => {
        const db = req.result;
        if (upgraded && version !== undefined) {
          resolve([keepOpen(db), db.version]); // a leader ignores the candidates it blocks
        } else {
          // Someone else took this version, or we only read the current one: queue for
          // the next; it stays blocked while that leader lives.
          const next = db.version + 1;
          db.close();
          attempt(next);
        }
      };
      req.onerror = (e) => {
        e.preventDefault();
        setTimeout(() => attempt(undefined), 5); // VersionError: read the version again
      };
    };
    attempt(undefined);
  });
}

const doc = globalThis.document;
/** A window that cannot be relied on to run: hidden (background pages get suspended). */
const hidden = () => !!doc && doc.visibilityState === "hidden";
/** Calls `fn` once this window is visible again (or resumed, or shown), or after 250 ms. */
function whenAwake(fn) {
  const AWAKE = [
    [doc, "visibilitychange"],
    [doc, "resume"],
    [globalThis, "pageshow"],
  ];
  const go = () => {
    clearTimeout(t);
    for (const [target, type] of AWAKE) target.removeEventListener(type, ready);
    fn();
  };
  const ready = () => !hidden() && go();
  const t = setTimeout(go, 250);
  for (const [target, type] of AWAKE) target.addEventListener(type, ready);
}

/**
 * Makes this context a candidate arbiter host; once elected, runs the arbiter until the
 * context dies or steps down (for a preferred host). `wasm` is the full module's exports
 * or a promise of them (the campaign starts at once). `ports` is an event target of
 * MessagePorts (a SharedWorker's connections).
 */
export function runArbiter(wasm, { preferred, ports }) {
  const bus = new BroadcastChannel(PREFIX);
  const portQueue = [];
  let serve = null; // set once elected
  if (ports) {
    ports.onport = (port) => (serve ? serve(port) : portQueue.push(port));
  }
  let preferredWaiting = false;

  bus.onmessage = (e) => {
    const d = e.data;
    if (Array.isArray(d) && d[0] === CANDIDATE && !preferred) {
      preferredWaiting = true;
      if (serve) stepDown();
    }
  };
  // With the protocol versions it speaks: an arbiter of an older release gives way to a
  // newer one's SharedWorker (see lead()).
  if (preferred) Promise.resolve(wasm).then((w) => bus.postMessage([CANDIDATE, w.versions()]), () => {});

  let stepDown = () => {};

  const run = (force) => {
    campaign().then(([leaderDb, epoch]) => {
      stats.elections++;
      if (preferredWaiting && !preferred) {
        // A SharedWorker waits: give way before serving anybody.
        leaderDb.close();
        preferredWaiting = false;
        stats.abdications++;
        return setTimeout(run, 50);
      }
      // A hidden window gives the election to the next candidate (a visible window, a
      // worker), and runs again once visible, or after 250 ms: then it leads even if
      // still hidden (every window may be hidden, and somebody has to serve).
      if (!preferred && !force && hidden()) {
        leaderDb.close();
        held.delete(leaderDb);
        stats.abdications++;
        return whenAwake(() => run(true));
      }
      // The election ran while the module compiled (a cold start's critical path). A
      // module that fails to load cannot serve: give the election back.
      Promise.resolve(wasm).then(
        (w) => lead(w, leaderDb, epoch),
        () => {
          leaderDb.close();
          held.delete(leaderDb);
          if (preferred && typeof globalThis.close === "function") globalThis.close();
        },
      );
    });
  };

  function lead(wasm, leaderDb, epoch) {
    const conns = new Map(); // connection -> { post, clientId }
    const busConns = new Map(); // clientId -> connection
    const probed = new Set();
    let stopped = false;
    let timer = 0;
    const host = new wasm.ArbiterHost({
      deliver(conn, words) {
        const c = conns.get(conn);
        if (c) c.send(words);
      },
      // Leases and waits of the lock services (services.js): the arbiter's clock and its
      // one timer.
      now: () => performance.now(),
      timer(at) {
        clearTimeout(timer);
        // (Test builds: what advance() decided, lease expiries and the grants after them,
        // goes out to the trace now, stamped now, not with the next message's decisions.)
        timer = setTimeout(() => safely(() => (host.advance(), WEB_LOCKS_TRACE && traced())), Math.max(0, at - performance.now()));
      },
    });
    const traced = WEB_LOCKS_TRACE && tracer(host, epoch);
    WEB_LOCKS_TRACE && traced("lead");
    const connection = (post, close) => {
      const c = { send: batcher((batch) => post([epoch, batch])), close };
      return c;
    };
    // A wasm trap leaves the module unusable. Rather than hold the election for ever and
    // answer nobody, this arbiter then retires; another is elected (a SharedWorker closes
    // itself, and the windows start a fresh one) and the clients re-register with it.
    const safely = (fn) => {
      if (stopped) return;
      try {
        fn();
      } catch (e) {
        bus.postMessage(["E", String(e && e.stack ? e.stack : e)]);
        retire(false);
      }
    };
    const feed = (conn, batch) =>
      safely(() => {
        const ok = unbatch(batch, (words) => {
          host.handle(conn, words) || stats.garbage++;
          WEB_LOCKS_TRACE && traced();
        });
        if (!ok) stats.garbage++;
      });
    const watch = (clientId) => {
      // This context's own client dies with this arbiter: no probe (a probe left pending
      // here would hold up the next arbiter's, should this context stop running).
      if (probed.has(clientId) || (debug.client && debug.client.clientId === clientId)) return;
      probed.add(clientId);
      probe(clientId, () =>
        safely(() => {
          stats.deaths++;
          host.gone(units(clientId));
          WEB_LOCKS_TRACE && traced();
          const conn = busConns.get(clientId);
          if (conn !== undefined) {
            busConns.delete(clientId);
            conns.get(conn)?.close?.();
            conns.delete(conn);
          }
        }),
      );
    };
    // Keep a database open for as long as this arbiter lives, so that windows can
    // notice its death (their blocked deleteDatabase goes through) and start another.
    // Announce once the database that proves this arbiter alive exists: clients ignore
    // announcements of epochs that have none (a forged message cannot divert them).
    // With the protocol versions this arbiter speaks (see coord.js's `common`).
    const versions = wasm.versions();
    const announce = () => stopped || bus.postMessage([ANNOUNCE, epoch, preferred, versions]);
    try {
      const req = open(`${PREFIX}-a-${epoch}`, 1);
      req.onsuccess = () => {
        keepOpen(req.result);
        announce();
      };
      req.onerror = announce;
    } catch {
      announce();
    }

    // Recovery: every context that may hold a lock has a probe database. Until each of
    // them re-registered or is found dead, nothing is granted (Rust side).
    stats.recoveries++;
    listedClients().then(
      (ids) =>
        safely(() => {
          host.beginRecovery(units(ids.join("\0")));
          WEB_LOCKS_TRACE && traced();
          ids.forEach(watch);
        }),
      () => safely(() => (host.beginRecovery(new Uint16Array(0)), WEB_LOCKS_TRACE && traced())),
    );

    serve = (port) => {
      let conn = -1;
      port.onmessage = (e) => {
        if (stopped) return;
        const d = e.data;
        if (Array.isArray(d) && d[0] === "H" && typeof d[1] === "string" && conn < 0) {
          conn = host.connect();
          conns.set(conn, connection((m) => port.postMessage(m)));
          watch(d[1]);
        } else if (d instanceof Uint16Array && conn >= 0) feed(conn, d);
        else stats.garbage++;
      };
      port.postMessage(["L", epoch, versions]);
    };
    portQueue.splice(0).forEach(serve);

    bus.onmessage = (e) => {
      if (stopped) return;
      const d = e.data;
      if (!Array.isArray(d)) return void stats.garbage++;
      if (d[0] === WHO) return announce();
      if (d[0] === CANDIDATE) {
        if (!preferred) stepDown();
        // A newer release's SharedWorker: give way to it, through recovery, if every
        // client of ours speaks one of its versions (each re-registers with it).
        else if (Number.isInteger(d[1]) && (d[1] & 0xffff) > (versions & 0xffff) && host.servedWithin(d[1])) {
          retire(true);
        }
      } else if (d[0] === ANNOUNCE) {
        // Another arbiter of a later epoch: we lost the database without noticing
        // (cannot happen while our connection is open); stop serving to be safe.
        // Nothing to do: while our connection to the leader database is open, nobody
        // else can lead; a later epoch announced here is stale or forged.
      } else stats.garbage++;
    };
    // Clients without a port (workers, or no SharedWorker) write here; only the arbiter
    // listens, so requests are not fanned out to every context of the origin.
    const inbox = new BroadcastChannel(`${PREFIX}:a`);
    inbox.onmessage = (e) => {
      if (stopped) return;
      const d = e.data;
      if (!Array.isArray(d)) return void stats.garbage++;
      const [clientId, words, to] = d;
      if (typeof clientId !== "string" || !(words instanceof Uint16Array)) return void stats.garbage++;
      // Sent to an earlier arbiter (which stepped down or died): not ours to serve. The
      // client re-sends what still matters in its Hello to us.
      if (to !== epoch) return void stats.misaddressed++;
      let conn = busConns.get(clientId);
      if (conn === undefined) {
        conn = host.connect();
        busConns.set(clientId, conn);
        const ch = new BroadcastChannel(`${PREFIX}:${clientId}`);
        conns.set(
          conn,
          connection(
            (m) => ch.postMessage(m),
            () => ch.close(),
          ),
        );
        watch(clientId);
      }
      feed(conn, words);
    };

    // A window that hosts the arbiter (no SharedWorker, or its fallback) hands it over
    // before it may stop running: when it is hidden (browsers suspend background pages,
    // mobile ones soonest, and freeze them later), frozen (Page Lifecycle `freeze`), or
    // going into the back/forward cache. It retires through the recovery path: the next
    // candidate (a visible window or a worker, already queued) is elected, and every
    // client re-registers with it, this window's too while it still runs; the election
    // keeps it to one arbiter at a time. It runs again once awake (see run()).
    let unwatch = () => {};
    if (doc && !preferred && typeof doc.addEventListener === "function") {
      const handOver = () => retire(true, true);
      const onVisibility = () => hidden() && handOver();
      const onPagehide = (e) => e.persisted && handOver();
      doc.addEventListener("freeze", handOver);
      doc.addEventListener("visibilitychange", onVisibility);
      globalThis.addEventListener("pagehide", onPagehide);
      unwatch = () => {
        doc.removeEventListener("freeze", handOver);
        doc.removeEventListener("visibilitychange", onVisibility);
        globalThis.removeEventListener("pagehide", onPagehide);
      };
    }
    const again = () => runArbiter(wasm, { preferred, ports });

    // Stop serving: close the databases that make this the arbiter, so that another is
    // elected. `requeue`: run again as a candidate (`handedOver`: once this window is
    // awake again); otherwise (the module is broken) a SharedWorker ends itself.
    const retire = (requeue, handedOver) => {
      if (stopped) return;
      stopped = true;
      unwatch();
      if (handedOver) stats.handovers++;
      WEB_LOCKS_TRACE && traced("retire");
      stats.abdications++;
      serve = null;
      leaderDb.close();
      held.delete(leaderDb);
      for (const db of held) if (db.name === `${PREFIX}-a-${epoch}`) (db.close(), held.delete(db));
      try {
        idb().deleteDatabase(`${PREFIX}-a-${epoch}`);
      } catch {}
      bus.onmessage = null;
      inbox.close();
      for (const c of conns.values()) c.close?.();
      clearTimeout(timer);
      try {
        host.free();
      } catch {}
      if (debug.arbiter && debug.arbiter.host === host) debug.arbiter = null; // no longer hosting
      preferredWaiting = false;
      bus.close();
      if (requeue) handedOver ? whenAwake(again) : setTimeout(again, 100);
      else if (preferred && typeof globalThis.close === "function") globalThis.close();
    };
    // A non-preferred host gives way to a SharedWorker (and queues again behind it).
    stepDown = () => preferred || retire(true);

    debug.arbiter = { epoch, host, conns };
  }

  run();
}

/**
 * In the arbiter's SharedWorker (named PREFIX): registers for connections at once (or the
 * first one is lost) and hosts the arbiter, the preferred host, once `wasm` (a promise of
 * the full module's exports) is ready. Returns whether this global is that SharedWorker.
 */
export function hostSharedWorker(wasm) {
  const g = globalThis;
  if (typeof g.SharedWorkerGlobalScope !== "function" || !(g instanceof g.SharedWorkerGlobalScope) || g.name !== PREFIX) return false;
  const pending = [];
  let sink = null;
  g.onconnect = (e) => (sink ? sink(e.ports[0]) : pending.push(e.ports[0]));
  const ports = {
    set onport(fn) {
      sink = fn;
      pending.splice(0).forEach(fn);
    },
  };
  runArbiter(wasm(), { preferred: true, ports });
  g.webLocksDebug = debug; // for DevTools: the arbiter's state and counters
  return true;
}
