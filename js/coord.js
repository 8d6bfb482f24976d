// Cross-context coordination, the client's half: how a context reaches whichever arbiter
// leads, and keeps the probe database by which the arbiter learns that it is gone. The
// arbiter's half (election, probes, recovery) is in arbiter.js, loaded only by a context
// that runs for arbiter. Pure I/O glue around the wasm exports; the decisions that matter
// for correctness are in Rust (src/arbiter.rs). See the README's "How it works".
//
// Names. They are the same for every release of the package, and must stay so: all
// releases on an origin meet here, in one lock space (one election, one arbiter). The
// protocol version is in every message instead, and in the announcements below: a client
// speaks the newest version that it and the arbiter both speak, and waits (it never goes
// its own way) while the arbiter speaks none of its versions.
//   BroadcastChannel  PREFIX            the bus: announcements and candidacies (rare)
//   BroadcastChannel  PREFIX:a          client → arbiter (only the arbiter listens);
//                                       [clientId, batch, epoch of the arbiter it is for]
//   BroadcastChannel  PREFIX:<clientId> arbiter → that client
//   IndexedDB         PREFIX-leader     the election: the leader keeps a connection open
//   IndexedDB         PREFIX-c-<id>     one per client: open while the client lives
//   IndexedDB         PREFIX-a-<epoch>  open while the arbiter of that epoch lives
//   SharedWorker name PREFIX            the preferred arbiter host

export const PREFIX = "web-locks-wasm";
export const idb = () => globalThis.indexedDB;

/** Bus messages other than client envelopes. */
export const ANNOUNCE = "A"; // [A, epoch, preferred, versions]: I am the arbiter of this epoch
export const WHO = "?"; // [?]: who is the arbiter? (the arbiter re-announces)
export const CANDIDATE = "C"; // [C, versions]: a preferred host (SharedWorker) waits to take over
/** How windows start the arbiter's SharedWorker (the Rust crate's copy adds `type: "module"`). */
export const workerOptions = { name: PREFIX };

/** Counters, visible through `navigator.locks.debug` for tests and the demo. */
export const stats = { garbage: 0, misaddressed: 0, elections: 0, recoveries: 0, deaths: 0, abdications: 0, handovers: 0, incompatible: 0, sent: 0 };

/**
 * The protocol version to speak with an arbiter that speaks `theirs` (a module's
 * `versions()`: oldest << 16 | newest), if this module (`mine`) speaks one of them: the
 * newest both speak. Announcements of releases before versioning carry none: version 2.
 */
export function common(mine, theirs) {
  const t = Number.isInteger(theirs) ? theirs : 0x20002;
  const v = Math.min(mine & 0xffff, t & 0xffff);
  return v >= Math.max(mine >>> 16, t >>> 16) ? v : 0;
}

export function open(name, version) {
  return version === undefined ? idb().open(name) : idb().open(name, version);
}

/**
 * Keeps `name` open at version 1 for as long as this context lives; the arbiter's probe
 * (an open at version 2) stays blocked until then. Resolves to the connection, or to a
 * string that says why IndexedDB is unusable (blocked storage, exhausted quota, …).
 */
export function holdProbe(clientId) {
  return new Promise((resolve) => {
    const fail = (e) => resolve(`IndexedDB failed: ${(e && (e.name || e.message)) || e}`);
    try {
      const req = open(`${PREFIX}-c-${clientId}`, 1);
      req.onsuccess = () => resolve(keepOpen(req.result));
      req.onerror = () => fail(req.error);
      req.onblocked = () => fail("blocked");
    } catch (e) {
      fail(e);
    }
  });
}

// Connections that must stay open for as long as this context lives. An IDBDatabase that
// nothing references can be garbage-collected, and that closes its connection: the
// arbiter would then take a live context for dead.
export const held = new Set();
export function keepOpen(db) {
  held.add(db);
  db.onversionchange = () => {}; // ignore: the probe must stay blocked while we live
  return db;
}

/**
 * Starts what can start before the wasm module is ready: this context's probe database
 * and, in a window, the SharedWorker (it compiles and wins its election meanwhile).
 * `clientId` may be a promise (the probe waits for it; the SharedWorker does not).
 * Resolves to `{ probe, worker, id }`; `probe` is null where IndexedDB is unusable, and
 * `reason` then says why.
 */
export function preconnect(clientId, workerUrl) {
  let worker = null;
  if (workerUrl && typeof SharedWorker === "function" && typeof document !== "undefined") {
    try {
      worker = new SharedWorker(workerUrl, workerOptions);
    } catch {}
  }
  return Promise.resolve(clientId).then((id) =>
    holdProbe(id).then((p) => (typeof p === "string" ? { probe: null, reason: p, worker, id } : { probe: p, worker, id })),
  );
}

/**
 * Messages sent in one task travel as one postMessage: a Uint16Array of frames, each a
 * 32-bit length (two words) and the message's words. A burst of 10,000 requests is then
 * one message instead of 10,000 (which can take the browser down). `add(words)` queues
 * one message; `add.framed(batch)` queues a batch framed already (the client's outbox,
 * src/protocol.rs `push_frame`), which it then owns.
 */
export function batcher(send) {
  let queue = []; // framed chunks
  let size = 0;
  const flush = () => {
    let batch = queue[0];
    if (queue.length > 1) {
      batch = new Uint16Array(size);
      let at = 0;
      for (const c of queue) (batch.set(c, at), (at += c.length));
    }
    queue = [];
    size = 0;
    send(batch);
  };
  const framed = (chunk) => {
    if (!queue.length) queueMicrotask(flush);
    queue.push(chunk);
    size += chunk.length;
  };
  const add = (words) => {
    const c = new Uint16Array(words.length + 2);
    c[0] = words.length & 0xffff;
    c[1] = words.length >>> 16;
    c.set(words, 2);
    framed(c);
  };
  add.framed = framed;
  return add;
}

/** How many frames a well-formed batch has. */
function frames(batch) {
  let n = 0;
  for (let at = 0; at < batch.length; at += 2 + (batch[at] | (batch[at + 1] << 16))) n++;
  return n;
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
 * every new arbiter so that the client re-registers what it holds and waits for. Should
 * this context have to host the arbiter, `arbiter()` fetches what that takes: it resolves
 * to `[exports, runArbiter]`, the full module's exports (this one's, if it is the full
 * module) and the arbiter's half of the glue (arbiter.js), which most windows never need.
 */
export function connectClient(wasm, clientId, { workerUrl, worker, probe, candidate, arbiter, receiving = (fn) => fn() }) {
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

  // A bus envelope names the arbiter (epoch) it is for: whichever arbiter listens on
  // PREFIX:a when it arrives serves it only if it is that one. Otherwise a Hello sent to an
  // arbiter that stepped down meanwhile would register this client with its successor
  // with a stale state, and the successor would then refuse the client's own Hello and
  // ignore its releases (its locks stuck until it dies).
  const sendBus = batcher((batch) =>
    (toArbiter || (toArbiter = new BroadcastChannel(`${PREFIX}:a`))).postMessage([clientId, batch, epoch]),
  );
  const sendPort = batcher((batch) => port.postMessage(batch));
  const receive = (d) => {
    let ok = false;
    if (Array.isArray(d) && typeof d[0] === "number" && d[1] instanceof Uint16Array) receiving(() => (ok = wasm.clientReceive(d[0], d[1])));
    if (ok) return;
    stats.garbage++;
  };
  const mine = wasm.versions();
  const adopt = (e, viaPort, theirs) => {
    if (!Number.isInteger(e) || e < 1 || e > 0xffffffff || e <= epoch) return;
    // An arbiter of another release that speaks none of our versions: wait for the next
    // one (it excludes us all the same: it is the origin's only arbiter).
    const v = common(mine, theirs);
    if (!v) return void (stats.incompatible++, (state.incompatible = e));
    epoch = e;
    state.version = v;
    send = viaPort ? sendPort : sendBus;
    wasm.clientSwitch(e, v);
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
    const theirs = d[3];
    if (!Number.isInteger(e2) || e2 <= epoch) return;
    if (e2 !== portEpoch) {
      // An announcement on the bus is only a claim: an arbiter keeps its database
      // PREFIX-a-<epoch> open for its whole life, so one that has none does not exist.
      arbiterExists(e2).then(
        (yes) => yes && (port ? setTimeout(() => adopt(e2, e2 === portEpoch, theirs), 50) : adopt(e2, false, theirs)),
      );
      return;
    }
    if (!port || e2 === portEpoch) return adopt(e2, e2 === portEpoch, theirs);
    // Our SharedWorker usually is the arbiter and tells us so through the port, which is
    // the faster path; give it a moment before settling for the bus.
    setTimeout(() => adopt(e2, e2 === portEpoch, theirs), 50);
  };

  const startPort = (early) => {
    if (!workerUrl || typeof SharedWorker !== "function") return false;
    try {
      const w = early || new SharedWorker(workerUrl, workerOptions);
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
          } else if (portEpoch > 0 && d[1] !== portEpoch) {
            // Another arbiter on the same port: the SharedWorker died and a new instance
            // took this port over (WebKit re-attaches a dead shared worker's ports to its
            // successor). It knows nothing of this port yet: introduce ourselves again,
            // or it drops what we send and waits for our re-registration for ever.
            p.postMessage(["H", clientId]);
          }
          portEpoch = d[1];
          adopt(d[1], true, d[2]);
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
    arbiter().then(
      ([full, runArbiter]) => runArbiter(full, { preferred: false }),
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
    /** Sends the client's outbox, a batch of frames (sent: messages to the arbiter). */
    post: (batch) => send && ((stats.sent += frames(batch)), send.framed(batch)),
    goodbye() {
      if (send) send(wasm.goodbyeWords());
    },
    /** Leaves the lock space (after a goodbye): every channel, the port and the probe closed. */
    close() {
      epoch = 0xffffffff; // adopt nothing more
      send = null;
      for (const c of [bus, inbox, toArbiter, port]) c && c.close();
      if (probe) (probe.close(), held.delete(probe));
    },
  };
}
