// Cross-context coordination: which context runs the arbiter, how clients reach it, and
// how everybody learns that a context is gone. Pure I/O glue around the wasm exports; the
// decisions that matter for correctness (what to grant, when recovery is complete) are in
// Rust (src/arbiter.rs). See the README's "How it works".
//
// Names (all carry the protocol version, so two versions never share anything):
//   BroadcastChannel  PREFIX            the bus: announcements and candidacies (rare)
//   BroadcastChannel  PREFIX:a          client → arbiter (only the arbiter listens)
//   BroadcastChannel  PREFIX:<clientId> arbiter → that client
//   IndexedDB         PREFIX-leader     the election: the leader keeps a connection open
//   IndexedDB         PREFIX-c-<id>     one per client: open while the client lives
//   IndexedDB         PREFIX-a-<epoch>  open while the arbiter of that epoch lives
//   SharedWorker name PREFIX            the preferred arbiter host

export const PREFIX = "web-locks-wasm-2";
const idb = () => globalThis.indexedDB;

/** Bus messages other than client envelopes. */
const ANNOUNCE = "A"; // [A, epoch, preferred]: I am the arbiter of this epoch
const WHO = "?"; // [?]: who is the arbiter? (the arbiter re-announces)
const CANDIDATE = "C"; // [C]: a preferred host (SharedWorker) waits to take over

/** Counters, visible through `navigator.locks.debug` for tests and the demo. */
export const stats = { garbage: 0, elections: 0, recoveries: 0, deaths: 0, abdications: 0 };

function open(name, version) {
  return version === undefined ? idb().open(name) : idb().open(name, version);
}

/**
 * Keeps `name` open at version 1 for as long as this context lives; the arbiter's probe
 * (an open at version 2) stays blocked until then. Resolves to the connection, or null
 * where IndexedDB is unusable.
 */
export function holdProbe(clientId) {
  return new Promise((resolve) => {
    try {
      const req = open(`${PREFIX}-c-${clientId}`, 1);
      req.onsuccess = () => resolve(keepOpen(req.result));
      req.onerror = req.onblocked = () => resolve(null);
    } catch {
      resolve(null);
    }
  });
}

// Connections that must stay open for as long as this context lives. An IDBDatabase that
// nothing references can be garbage-collected, and that closes its connection: the
// arbiter would then take a live context for dead.
const held = new Set();
function keepOpen(db) {
  held.add(db);
  db.onversionchange = () => {}; // ignore: the probe must stay blocked while we live
  return db;
}

/** Calls `onDead` once the context holding `${PREFIX}-c-${clientId}` is gone, then deletes it. */
function probe(clientId, onDead) {
  const name = `${PREFIX}-c-${clientId}`;
  let fired = false;
  const dead = () => {
    if (fired) return;
    fired = true;
    try {
      idb().deleteDatabase(name);
    } catch {}
    onDead();
  };
  try {
    const req = open(name, 2);
    // Fires as soon as the client's connection closes (close, crash, navigation,
    // terminate); a frozen client keeps it blocked, rightly, since it still lives.
    req.onupgradeneeded = () => {
      try {
        req.transaction.abort();
      } catch {}
      dead();
    };
    req.onsuccess = () => {
      req.result.close();
      dead();
    };
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
  if (preferred) bus.postMessage([CANDIDATE]);

  let stepDown = () => {};

  const run = () => {
    campaign().then(([leaderDb, epoch]) => {
      stats.elections++;
      if (preferredWaiting && !preferred) {
        // A SharedWorker waits: give way before serving anybody.
        leaderDb.close();
        preferredWaiting = false;
        stats.abdications++;
        return setTimeout(run, 50);
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
    const host = new wasm.ArbiterHost({
      deliver(conn, words) {
        const c = conns.get(conn);
        if (c) c.send(words);
      },
    });
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
        const ok = unbatch(batch, (words) => host.handle(conn, words) || stats.garbage++);
        if (!ok) stats.garbage++;
      });
    const watch = (clientId) => {
      if (probed.has(clientId)) return;
      probed.add(clientId);
      probe(clientId, () =>
        safely(() => {
          stats.deaths++;
          host.gone(units(clientId));
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
    const announce = () => stopped || bus.postMessage([ANNOUNCE, epoch, preferred]);
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
          ids.forEach(watch);
        }),
      () => safely(() => host.beginRecovery(new Uint16Array(0))),
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
      port.postMessage(["L", epoch]);
    };
    portQueue.splice(0).forEach(serve);

    bus.onmessage = (e) => {
      if (stopped) return;
      const d = e.data;
      if (!Array.isArray(d)) return void stats.garbage++;
      if (d[0] === WHO) return bus.postMessage([ANNOUNCE, epoch, preferred]);
      if (d[0] === CANDIDATE) {
        if (!preferred) stepDown();
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
      const [clientId, words] = d;
      if (typeof clientId !== "string" || !(words instanceof Uint16Array)) return void stats.garbage++;
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

    // Stop serving: close the databases that make this the arbiter, so that another is
    // elected. `requeue`: run again as a candidate; otherwise (the module is broken) a
    // SharedWorker ends itself.
    const retire = (requeue) => {
      if (stopped) return;
      stopped = true;
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
      try {
        host.free();
      } catch {}
      if (debug.arbiter && debug.arbiter.host === host) debug.arbiter = null; // no longer hosting
      preferredWaiting = false;
      bus.close();
      if (requeue) setTimeout(() => runArbiter(wasm, { preferred, ports }), 100);
      else if (preferred && typeof globalThis.close === "function") globalThis.close();
    };
    // A non-preferred host gives way to a SharedWorker (and queues again behind it).
    stepDown = () => preferred || retire(true);

    debug.arbiter = { epoch, host, conns };
  }

  run();
}

/**
 * Starts what can start before the wasm module is ready: this context's probe database
 * and, in a window, the SharedWorker (it compiles and wins its election meanwhile).
 * Resolves to `{ probe, worker }`; `probe` is null where IndexedDB is unusable.
 */
export function preconnect(clientId, workerUrl) {
  let worker = null;
  if (workerUrl && typeof SharedWorker === "function" && typeof document !== "undefined") {
    try {
      worker = new SharedWorker(workerUrl, { name: PREFIX });
    } catch {}
  }
  return holdProbe(clientId).then((probe) => ({ probe, worker }));
}

/**
 * Messages sent in one task travel as one postMessage: a Uint16Array of frames, each a
 * 32-bit length (two words) and the message's words. A burst of 10,000 requests is then
 * one message instead of 10,000 (which can take the browser down).
 */
function batcher(send) {
  let queue = [];
  let size = 0;
  const flush = () => {
    const batch = new Uint16Array(size);
    let at = 0;
    for (const w of queue) {
      batch[at] = w.length & 0xffff;
      batch[at + 1] = w.length >>> 16;
      batch.set(w, at + 2);
      at += w.length + 2;
    }
    queue = [];
    size = 0;
    send(batch);
  };
  return (words) => {
    if (!queue.length) queueMicrotask(flush);
    queue.push(words.slice());
    size += words.length + 2;
  };
}

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

async function arbiterExists(epoch) {
  if (typeof idb().databases !== "function") return true;
  try {
    return (await idb().databases()).some((d) => d.name === `${PREFIX}-a-${epoch}`);
  } catch {
    return true;
  }
}

/** What tests and the demo can see (`navigator.locks.debug`). */
export const debug = { stats, arbiter: null, client: null };

export function units(s) {
  const u = new Uint16Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return u;
}

/**
 * Connects this context's client to whichever arbiter leads: through `port` when it is
 * the SharedWorker that leads, else over the bus. Calls `wasm.clientSwitch(epoch)` on
 * every new arbiter so that the client re-registers what it holds and waits for. When
 * `wasm` is the client-only module, `arbiter()` fetches the full one, should this context
 * have to host the arbiter.
 */
export function connectClient(wasm, clientId, { workerUrl, worker, candidate, arbiter, receiving = (fn) => fn() }) {
  const bus = new BroadcastChannel(PREFIX);
  const inbox = new BroadcastChannel(`${PREFIX}:${clientId}`);
  let toArbiter = null; // PREFIX:a, opened on first use
  let epoch = 0; // the arbiter we are registered with
  let port = null;
  let sharedWorker = null;
  let portEpoch = -1; // the epoch our port's SharedWorker leads
  let send = null;
  const state = { clientId, get epoch() { return epoch; }, get via() { return send === sendPort ? "port" : send ? "bus" : "none"; } };
  debug.client = state;

  const sendBus = batcher((batch) =>
    (toArbiter || (toArbiter = new BroadcastChannel(`${PREFIX}:a`))).postMessage([clientId, batch]),
  );
  const sendPort = batcher((batch) => port.postMessage(batch));
  const receive = (d) => {
    let ok = false;
    if (Array.isArray(d) && typeof d[0] === "number") receiving(() => (ok = unbatch(d[1], (w) => wasm.clientReceive(d[0], w))));
    if (ok) return;
    stats.garbage++;
  };
  const adopt = (e, viaPort) => {
    if (!Number.isInteger(e) || e < 1 || e > 0xffffffff || e <= epoch) return;
    epoch = e;
    send = viaPort ? sendPort : sendBus;
    wasm.clientSwitch(e);
    if (port) watchArbiter(e);
  };

  inbox.onmessage = (e) => {
    const d = e.data;
    receive(d);
  };
  bus.onmessage = (e) => {
    const d = e.data;
    if (Array.isArray(d) && d[0] === "E") console.error("web-locks-wasm arbiter error:", d[1]);
    if (!Array.isArray(d) || d[0] !== ANNOUNCE || typeof d[1] !== "number") return;
    const e2 = d[1];
    if (!Number.isInteger(e2) || e2 <= epoch) return;
    if (e2 !== portEpoch) {
      // An announcement on the bus is only a claim: an arbiter keeps its database
      // PREFIX-a-<epoch> open for its whole life, so one that has none does not exist.
      arbiterExists(e2).then((yes) => yes && (port ? setTimeout(() => adopt(e2, e2 === portEpoch), 50) : adopt(e2, false)));
      return;
    }
    if (!port || e2 === portEpoch) return adopt(e2, e2 === portEpoch);
    // Our SharedWorker usually is the arbiter and tells us so through the port, which is
    // the faster path; give it a moment before settling for the bus.
    setTimeout(() => adopt(e2, e2 === portEpoch), 50);
  };

  const startPort = (early) => {
    if (!workerUrl || typeof SharedWorker !== "function") return false;
    try {
      const w = early || new SharedWorker(workerUrl, { name: PREFIX });
      const p = w.port;
      if (!port) (port = p), (sharedWorker = w);
      p.onmessage = (e) => {
        const d = e.data;
        if (Array.isArray(d) && d[0] === "L" && Number.isInteger(d[1])) {
          if (p !== port) {
            // A second port (we thought the arbiter had died): use it only if it leads a
            // newer epoch; the same arbiter still knows us on the old port.
            if (d[1] <= epoch) return p.close();
            port.close();
            port = p;
            sharedWorker = w;
          }
          portEpoch = d[1];
          adopt(d[1], true);
        } else if (p === port) receive(d);
      };
      p.postMessage(["H", clientId]);
      return true;
    } catch {
      return false;
    }
  };

  // A window cannot host the arbiter safely (it may be frozen), so it relies on a
  // SharedWorker and starts a new one when the leader dies.
  const watched = new Set();
  const watchArbiter = (e) => {
    if (watched.has(e)) return;
    watched.add(e);
    try {
      idb().deleteDatabase(`${PREFIX}-a-${e}`).onsuccess = () => {
        if (epoch !== e) return;
        startPort();
        // If no new arbiter shows up (the SharedWorker could not be restarted, e.g. the
        // dying instance was still matched), run for it ourselves: liveness only, the
        // election keeps it safe.
        setTimeout(() => epoch === e && runForArbiter(), 3000);
      };
    } catch {}
  };

  // Without a SharedWorker (or if it fails to start), this context runs for arbiter
  // itself. The election keeps that safe whoever runs; this only restores liveness.
  let running = false;
  const runForArbiter = () => {
    if (running) return;
    running = true;
    // The client-only module has no arbiter in it: fetch the full one to host it.
    (wasm.ArbiterHost ? Promise.resolve(wasm) : arbiter()).then(
      (full) => runArbiter(full, { preferred: false }),
      () => (running = false),
    );
  };
  if (candidate || !startPort(worker)) runForArbiter();
  else {
    sharedWorker.onerror = runForArbiter;
    setTimeout(() => epoch || runForArbiter(), 3000);
  }
  bus.postMessage([WHO]);

  return {
    post: (words) => send && send(words),
    goodbye() {
      if (send) send(wasm.goodbyeWords());
    },
  };
}
