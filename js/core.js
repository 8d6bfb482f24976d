// The JS half of web-locks-wasm: the `LockManager` and `Lock` interface objects, the
// queue of calls made before the wasm module is ready, and the `host` object through
// which the Rust bindings (src/bindings) reach the JS world. No work happens at import:
// nothing here touches a global until `install()` is called, and the wasm module is
// only fetched on the first call (or when `ready` is read).
// Cross-context coordination is imported on first use, not at import: a page that never
// calls the API pays nothing (and src/bindings' browser tests load this file alone).
let coord = null;

const LOCKS = new WeakMap(); // Lock -> [name, mode]
const MANAGERS = new WeakSet();
const illegal = () => new TypeError("Illegal constructor");
const invocation = () => new TypeError("Illegal invocation");

// Web IDL attributes and operations are enumerable; class members are not.
function webidl(cls, name) {
  const proto = cls.prototype;
  for (const key of Object.getOwnPropertyNames(proto)) {
    if (key !== "constructor") Object.defineProperty(proto, key, { enumerable: true });
  }
  Object.defineProperty(proto, Symbol.toStringTag, { value: name, configurable: true });
  Object.defineProperty(cls, "name", { value: name, configurable: true }); // survives minifying
  return cls;
}

/** A granted lock: `name` and `mode`, nothing else (spec §1.4). No public constructor. */
export const Lock = webidl(
  class Lock {
    constructor() {
      throw illegal();
    }
    get name() {
      const s = LOCKS.get(this);
      if (!s) throw invocation();
      return s[0];
    }
    get mode() {
      const s = LOCKS.get(this);
      if (!s) throw invocation();
      return s[1];
    }
  },
  "Lock",
);

let api = null; // the wasm exports, once ready
let loading = null; // the promise of api
let loader = null; // (full) => Promise<exports>, set by the entry point
let arbiterLoader = null; // () => Promise<runArbiter>, idem
const backlog = []; // calls made before the module was ready, in call order
const config = { workerUrl: null, mode: "auto" };
let clientId = null;
let link = null; // the connection to a remote arbiter, if any
let denied = null; // why this context refuses requests (see connect), once it does
let retry = null; // () => Promise: a denied context tries its probe again (see connect)
let lastTry = 0;
let retrying = null; // the retry under way, if any

function deny(reason) {
  denied = reason || "IndexedDB is not usable";
}

/**
 * How this context reaches the other contexts of its origin:
 * - "shared": through the arbiter in a SharedWorker (windows) or over BroadcastChannel
 *   (workers, and windows where SharedWorker is missing), with IndexedDB telling who died;
 * - "local": the arbiter runs in this context, so locks are exact but not shared with
 *   other contexts. Used on request, outside browsers (Node), and where BroadcastChannel
 *   is missing;
 * - "denied": a browser context whose IndexedDB is missing or fails (storage blocked,
 *   quota exhausted, private modes): its probe database, by which an arbiter learns that
 *   it died and which the election needs, cannot exist. Going local there could grant a
 *   name that another context holds, so requests and queries reject with SecurityError
 *   (after validation), as Chromium's own do where storage is denied. `reason` says why.
 *   Where the probe failed, a call a second after the last attempt tries again (call()).
 */
function connect([exports, early]) {
  // The probe database must exist before any arbiter hears of us: it is how an arbiter
  // learns that this context died.
  if (early && !early.probe) deny(early.reason);
  const local = !early && !denied;
  // What `ready` shows, derived from `denied` (which a retry or a failed rejoin changes).
  Object.defineProperties(coord.debug, {
    mode: { get: () => (denied ? "denied" : local ? "local" : "shared"), enumerable: true, configurable: true },
    reason: { get: () => denied || undefined, enumerable: true, configurable: true },
  });
  host.local = () => local;
  exports.init(host);
  // The glue's own entry points: the package's wasm has short export names, so those that
  // init() handed over (the module's raw exports, which src/bindings' tests rely on) are
  // not the ones to call here.
  host.wire(exports);
  if (!local) {
    if (!denied) join(exports, early);
    // A probe that failed may work later (a transient IndexedDB error, storage unblocked):
    // a call at least a second after the last attempt tries again first, and joins.
    else if (early) retry = () => coord.preconnect(clientId, workerUrl()).then((again) => {
      if (!again.probe) return void deny(again.reason);
      denied = retry = null; // joined: a later denial (a failed rejoin) does not retry
      join(exports, again);
    });
  }
  return exports;
}

/** The arbiter's SharedWorker script, for a window (other contexts cannot start one). */
const workerUrl = () => (typeof g.document !== "undefined" ? config.workerUrl : null);

/** Connects this context's client to the origin's arbiter (shared mode). */
function join(exports, early) {
  const isWindow = typeof g.document !== "undefined";
  const options = {
    workerUrl: workerUrl(),
    candidate: !isWindow,
    // Hosting the arbiter takes the full module (this one, or fetched now) and the
    // arbiter's half of the glue.
    arbiter: () => Promise.all([exports.ArbiterHost ? exports : loader(true), arbiterLoader()]),
    receiving: host.receiving,
  };
  link = coord.connectClient(exports, clientId, { ...options, worker: early.worker, probe: early.probe });
  // The client's messages of a task go out together, at its end, and before a goodbye.
  host.flushSoon = () => queueMicrotask(exports.clientFlush);
  const goodbye = () => (exports.clientFlush(), link.goodbye());
  // Comes back as a new client `id` (after a goodbye): the client keeps what it holds and
  // waits for (nothing, when idle) and re-registers it with the arbiter it finds.
  const rejoin = (id) => {
    clientId = id;
    exports.clientReset();
    coord.preconnect(clientId, options.workerUrl).then((again) => {
      // Back without a probe database (quota exhausted meanwhile): no arbiter could
      // learn of this context's death, so it stays out (it holds and waits for nothing).
      if (!again.probe) return void deny(again.reason);
      link = coord.connectClient(exports, clientId, { ...options, worker: again.worker, probe: again.probe });
    });
  };
  // The service worker's answer came after this context registered: it becomes that
  // client once it is idle (holds, waits for and queries nothing), as a new client.
  let away = false;
  if (early.late) {
    early.late.then(function swap(id) {
      if (!id || id === clientId || away) return; // away: comes back with a new id anyway
      if (!exports.clientIdle()) return void setTimeout(swap, 100, id);
      goodbye();
      const old = link;
      queueMicrotask(() => (old.close(), rejoin(id)));
    });
  }
  if (isWindow && typeof g.addEventListener === "function") {
    // A page that is really going says goodbye. One entering the back/forward cache
    // that holds and waits for nothing leaves the lock space for now (goodbye; its
    // probe database and channels closed, which would keep it out of the cache) and
    // comes back as a new client when it is restored. One that holds or waits stays:
    // the browser then evicts it and its locks are released, as with its own locks.
    // The same for a page that is frozen (Page Lifecycle): an idle one leaves, so that
    // no arbiter's recovery ever waits for it to re-register while it cannot run.
    const leave = () => {
      // Names this page serves itself go back first: another context must not wait for
      // a page that cannot run (src/delegate.rs).
      if (!away) exports.clientGiveBack();
      if (away || !exports.clientIdle()) return;
      away = true;
      goodbye();
      queueMicrotask(link.close); // once the goodbye went out
    };
    // A new id: the arbiter never takes back one that said goodbye (not even the
    // service worker's Client.id, which stays the same across the cache).
    const back = () => away && ((away = false), rejoin(uuid()));
    g.addEventListener("pagehide", (e) => (e.persisted ? leave() : goodbye()));
    g.addEventListener("pageshow", (e) => e.persisted && back());
    g.document.addEventListener("freeze", leave);
    g.document.addEventListener("resume", back);
  }
}

function load() {
  if (!loading) {
    let active;
    // Not `Promise.resolve().then(...)`: Parcel 2 rewrites the import() inside such a
    // callback into something that breaks (parcel-bundler/parcel#8116; tests/bundler).
    loading = new Promise((r) => r())
      .then(() => {
        if (!loader) throw new Error("web-locks-wasm: no wasm loader configured");
        clientId = uuid();
        // A realm that is no longer fully active (a removed iframe) runs no more tasks, so
        // nothing that waits for one may be started there: its calls only ever reject
        // (InvalidStateError), which the client half does alone, unconnected.
        active = host.active();
        // Outside browsers (Node, say: no document, not a worker) there are no other
        // contexts of an origin: local. A browser context without IndexedDB is denied.
        const browser = typeof g.document !== "undefined" || typeof g.WorkerGlobalScope === "function";
        const wanted = active && config.mode !== "local" && typeof BroadcastChannel === "function";
        const shared = wanted && !!g.indexedDB;
        if (wanted && !shared && browser) deny("no IndexedDB in this context");
        const isWindow = typeof g.document !== "undefined";
        // A window whose arbiter runs in the SharedWorker loads the client half of the
        // wasm only; a context that may host the arbiter (local mode, workers, windows
        // without SharedWorker) loads the full module.
        const clientOnly = !active || !!denied || (shared && isWindow && !!config.workerUrl && typeof SharedWorker === "function");
        // In a page controlled by a service worker that runs the polyfill, the clientId is
        // the page's Client.id (as the spec says), which only the service worker knows: it
        // is asked, and its answer used if it comes before the module is ready; a later
        // one, once this context is idle (see connect).
        const asking = shared && isWindow && askServiceWorker();
        return import("./coord.js").then((m) => {
          coord = m;
          const mod = loader(!clientOnly);
          const id = asking ? Promise.race([asking, mod.then(() => 0, () => 0)]).then((v) => v || clientId) : clientId;
          const early = shared && m.preconnect(id, isWindow && config.workerUrl).then((e) => ((clientId = e.id), (e.late = asking), e));
          return Promise.all([mod, early]);
        });
      })
      // Local after all (no probe database): the in-context arbiter is in the full module.
      .then(([exports, early]) =>
        exports.ArbiterHost || early || denied || !active ? [exports, early] : loader(true).then((full) => [full, early]),
      )
      .then(connect)
      .then(
        (exports) => {
          api = exports;
          // Replay in order, synchronously: nothing can slip in between.
          for (const [method, args, resolve] of backlog.splice(0)) resolve(api[method](...args));
        },
        (err) => {
          for (const [, , , reject] of backlog.splice(0)) reject(err);
          loading = null; // a later call may retry (e.g. after a transient network error)
          throw err;
        },
      );
  }
  return loading;
}

export function call(manager, method, args) {
  if (!MANAGERS.has(manager)) return Promise.reject(invocation());
  if (api) {
    if (denied && retry && !retrying && Date.now() - lastTry >= 1000) {
      lastTry = Date.now();
      retrying = retry()
        .catch(() => {})
        .then(() => void (retrying = null));
    }
    // Calls made while a retry runs wait for it, in order.
    return retrying ? retrying.then(() => api[method](...args)) : api[method](...args);
  }
  return new Promise((resolve, reject) => {
    backlog.push([method, args, resolve, reject]);
    load().catch(() => {});
  });
}

/** The lock manager of this context. No public constructor. */
export const LockManager = webidl(
  class LockManager {
    constructor() {
      throw illegal();
    }
    // eslint-disable-next-line no-unused-vars
    request(name, callback) {
      const n = arguments.length;
      return call(this, "request", [n, arguments[0], arguments[1], arguments[2]]);
    }
    query() {
      return call(this, "query", []);
    }
    /**
     * Not in the spec: resolves once the wasm module is ready (calls made before are
     * queued), to a live view of how this context is connected (`mode`, `client`,
     * `arbiter`, `stats`).
     */
    get ready() {
      if (!MANAGERS.has(this)) throw invocation();
      return load().then(() => coord.debug);
    }
  },
  "LockManager",
);

/**
 * Configures how the wasm module is fetched; called once by each entry point. `fn(full)`
 * resolves to the exports of the full module (client and arbiter) when `full`, else to
 * those of the client-only one, or of the full one where there is no other.
 * `arbiterFn()` resolves to `runArbiter` (arbiter.js), for a context that has to host the
 * arbiter.
 */
export function setLoader(fn, arbiterFn) {
  loader = fn;
  arbiterLoader = arbiterFn;
}

/**
 * Where the arbiter's SharedWorker script is (the package's own `web-locks.js`, a classic
 * script), and the coordination mode ("auto" or "local"). Takes effect before first use.
 */
export function configure({ workerUrl, mode } = {}) {
  if (workerUrl !== undefined) config.workerUrl = workerUrl === null ? null : String(workerUrl);
  if (mode !== undefined) config.mode = mode === "local" ? "local" : "auto";
}

let manager = null;
/** This context's one `LockManager` (created on first use; cheap, no wasm). */
export function polyfillManager() {
  if (!manager) {
    manager = Object.create(LockManager.prototype);
    MANAGERS.add(manager);
  }
  return manager;
}

// ---- the host: what src/bindings calls ------------------------------------------------

let onTask, onDone, onAbort;
const snapClients = new WeakMap(); // snapshot -> the clientId of its next entries
const g = globalThis;

function taskQueue() {
  // A task per step, like the spec's "queue a step on the event loop"; MessageChannel
  // runs sooner than setTimeout, which browsers clamp and throttle.
  const due = [];
  let queue;
  if (typeof MessageChannel === "function") {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => onTask(due.shift());
    queue = (id) => {
      due.push(id);
      ch.port2.postMessage(0);
    };
  } else {
    queue = (id) => {
      due.push(id);
      setTimeout(() => onTask(due.shift()), 0);
    };
  }
  queue.idle = () => !due.length;
  return queue;
}
let post = null;
const queue = (id) => (post || (post = taskQueue()))(id);
let direct = null; // steps queued while a message from the arbiter is handled

function uuid() {
  const c = g.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  // Insecure contexts have getRandomValues but not randomUUID.
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// The service worker's Client.id of this page, asked over a MessageChannel (the page's own
// `navigator.serviceWorker` message handlers see nothing); null where the page is not
// controlled. Each id is claimed once per realm: a second copy of the polyfill in the same
// page (the Rust crate's beside the classic script) keeps a random one.
const ASK = "web-locks-wasm:client-id";
const MINE = Symbol.for(ASK);
function askServiceWorker() {
  let c;
  try {
    c = g.navigator.serviceWorker.controller;
  } catch {} // none, or an opaque origin's SecurityError
  return (
    c &&
    new Promise((resolve) => {
      const { port1, port2 } = new MessageChannel();
      port1.onmessage = ({ data }) => {
        port1.close();
        const ok = typeof data == "string" && /^[!-~]{1,128}$/.test(data) && !g[MINE];
        if (ok) g[MINE] = data;
        resolve(ok ? data : null);
      };
      c.postMessage([ASK], [port2]);
    })
  );
}

/**
 * In a service worker: answers its controlled pages' question with their Client.id, each
 * id once (two realms must never share one). Our message only, stopped there (if this
 * listener comes first); the app's own are untouched.
 */
function answerClients() {
  const SW = g.ServiceWorkerGlobalScope;
  if (!SW || !(g instanceof SW) || g[MINE]) return;
  const given = (g[MINE] = new Set());
  g.addEventListener("message", (e) => {
    const port = e.ports && e.ports[0];
    const id = e.source && e.source.id;
    if (!port || !Array.isArray(e.data) || e.data[0] !== ASK) return;
    e.stopImmediatePropagation();
    port.postMessage(given.has(id) ? null : (given.add(id), id));
  });
}

// What `host.get` reads and `host.error` makes, by the numbers src/bindings uses.
const KEYS = ["ifAvailable", "mode", "signal", "steal"];
const MODES = [null, "exclusive", "shared"];
const ERRORS = [
  "2 arguments required",
  "options is not an object",
  "mode is not a valid LockMode",
  "signal is not an AbortSignal",
  "callback is not a function",
  ["The document is not active.", "InvalidStateError"],
  ["Access to the Locks API is denied in this context.", "SecurityError"],
  ["Names cannot start with '-'.", "NotSupportedError"],
  ["The 'steal' and 'ifAvailable' options cannot be used together.", "NotSupportedError"],
  ["The 'steal' option may only be used with 'exclusive' locks.", "NotSupportedError"],
  ["The 'signal' and 'steal' options cannot be used together.", "NotSupportedError"],
  ["The 'signal' and 'ifAvailable' options cannot be used together.", "NotSupportedError"],
  ["Lock broken by another request with the 'steal' option.", "AbortError"],
  ["The request was denied.", "SecurityError"],
];

export const host = {
  str: (v) => `${v}`,
  units(s) {
    const u = new Uint16Array(s.length);
    for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
    return u;
  },
  fromUnits(u) {
    if (u.length <= 8192) return String.fromCharCode.apply(null, u);
    let s = "";
    for (let i = 0; i < u.length; i += 8192) s += String.fromCharCode.apply(null, u.subarray(i, i + 8192));
    return s;
  },
  get: (o, k) => o[KEYS[k]],
  modeOf(v) {
    const s = `${v}`;
    return s === "exclusive" ? 1 : s === "shared" ? 2 : 0;
  },
  isObject: (v) => (typeof v === "object" && v !== null) || typeof v === "function",
  isSignal(v) {
    try {
      // A brand check that also accepts signals from other realms (iframes).
      Object.getOwnPropertyDescriptor(AbortSignal.prototype, "aborted").get.call(v);
      return true;
    } catch {
      // A detached iframe's platform getters throw even for real signals; the request
      // is rejected with InvalidStateError there anyway, so the tag is enough.
      return !host.active() && Object.prototype.toString.call(v) === "[object AbortSignal]";
    }
  },
  aborted: (s) => s.aborted,
  reason: (s) => s.reason,
  active() {
    // A removed iframe's window is closed; a navigated-away document has no defaultView.
    const d = g.document;
    return !d || (!g.closed && d.defaultView === g);
  },
  // src/bindings CTX_* bits: not fully active 1, opaque origin 2, denied 4.
  context: () => (host.active() ? 0 : 1) | (g.origin === "null" ? 2 : 0) | (denied ? 4 : 0),
  error(code) {
    const e = ERRORS[code];
    return typeof e === "string" ? new TypeError(e) : new DOMException(e[0], e[1]);
  },
  defer() {
    const d = {};
    d.p = new Promise((res, rej) => {
      d.res = res;
      d.rej = rej;
    });
    return d;
  },
  promiseOf: (d) => d.p,
  settle: (d, ok, v) => (ok ? d.res(v) : d.rej(v)),
  rejected: (e) => Promise.reject(e),
  task: (id) => (direct ? direct.push(id) : queue(id)),
  /**
   * Handles one message from the arbiter (`fn` feeds it to the client). That message is
   * a task of its own, so the first callback step it makes runs at its end, in the same
   * task, rather than in one more task (a hop through the event loop on every grant);
   * further steps, or any behind steps queued earlier, get tasks of their own as usual.
   */
  receiving(fn) {
    direct = [];
    try {
      fn();
    } finally {
      const ids = direct;
      direct = null;
      const now = ids.length && (!post || post.idle()) ? ids.shift() : undefined;
      ids.forEach(queue);
      if (now !== undefined) onTask(now);
    }
  },
  listen(signal, id) {
    const f = () => onAbort(id);
    signal.addEventListener("abort", f);
    return f;
  },
  unlisten: (signal, f) => signal.removeEventListener("abort", f),
  invoke(callback, name, mode, id) {
    let arg = null;
    if (mode) {
      arg = Object.create(Lock.prototype);
      LOCKS.set(arg, [name, MODES[mode]]);
    }
    let p;
    try {
      p = Promise.resolve(callback.call(undefined, arg));
    } catch (e) {
      p = Promise.reject(e); // never adopts a thrown thenable
    }
    p.then(
      (v) => onDone(id, true, v),
      (e) => onDone(id, false, e),
    );
  },
  clientId: () => clientId || (clientId = uuid()),
  local: () => true,
  delegates: () => !(typeof g.DedicatedWorkerGlobalScope === "function" && g instanceof g.DedicatedWorkerGlobalScope),
  flushSoon: () => {},
  post: (batch) => link.post(batch.slice()), // a view of the wasm memory: copied
  snapshot: () => ({ held: [], pending: [] }),
  entryClient(snapshot, client) {
    snapClients.set(snapshot, host.fromUnits(client));
  },
  entry(snapshot, pending, name, mode) {
    // Web IDL dictionaries list their members in lexicographic order.
    const e = { clientId: snapClients.get(snapshot), mode: MODES[mode], name: host.fromUnits(name) };
    (pending ? snapshot.pending : snapshot.held).push(e);
  },
  wire(exports) {
    onTask = exports.task;
    onDone = exports.done;
    onAbort = exports.abort;
  },
};

// ---- installation ------------------------------------------------------------------------

function define(target, key, desc) {
  Object.defineProperty(target, key, { configurable: true, ...desc });
}

/**
 * Installs the polyfill on `navigator.locks` (and the `LockManager`/`Lock` globals) where
 * missing, or always with `{ force: true }`. Returns the manager now in force.
 */
export function install({ force = false, workerUrl, mode } = {}) {
  configure({ workerUrl, mode });
  answerClients();
  const nav = g.navigator;
  if (!nav) return null;
  if (nav.locks && !force) return nav.locks;
  const mgr = polyfillManager();
  const proto = Object.getPrototypeOf(nav); // Navigator.prototype or WorkerNavigator.prototype
  const get = {
    get locks() {
      if (this !== nav) throw invocation();
      return mgr;
    },
  };
  const desc = { enumerable: true, get: Object.getOwnPropertyDescriptor(get, "locks").get };
  define(proto, "locks", desc);
  if (Object.getOwnPropertyDescriptor(nav, "locks")) define(nav, "locks", desc);
  define(g, "LockManager", { writable: true, enumerable: false, value: LockManager });
  define(g, "Lock", { writable: true, enumerable: false, value: Lock });
  return mgr;
}
