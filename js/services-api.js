// The lock services (README, "Lock services"): locks held outside a callback (`acquire()`
// and its handle), with a holder's label, a lease, a wait limit, deadlock reports, and the
// Apps Script (`LockService`) and Drupal (`LockBackend`) shapes over it. All on the one
// lock space of the polyfill's `navigator.locks` (always the polyfill's manager, also
// where the browser has its own); the arbiter (src/arbiter.rs) does the work.
import { call, polyfillManager } from "./core.js";
import { DeadlockError, EXPIRES, installServicesHost, LockHeldError } from "./services-host.js";

export { DeadlockError, LockHeldError };

const STATE = new WeakMap(); // LockHandle -> its state
const illegal = () => new TypeError("Illegal constructor");

/** Milliseconds from an option: `undefined` → -1 (none); `RangeError` unless `ok(n)`. */
function millis(v, what, ok) {
  if (v === undefined) return -1;
  const n = Number(v);
  if (!Number.isFinite(n) || !ok(n)) throw new RangeError(`${what} must be a finite number of milliseconds${ok(0) ? " >= 0" : " > 0"}`);
  return n;
}

/** A lock held outside a callback, until `release()` (or a steal, its lease, its context's end). */
export class LockHandle {
  constructor() {
    throw illegal();
  }
  get name() {
    return STATE.get(this).name;
  }
  get mode() {
    return STATE.get(this).mode;
  }
  get holder() {
    return STATE.get(this).holder;
  }
  get held() {
    return STATE.get(this).held;
  }
  get signal() {
    return STATE.get(this).ac.signal;
  }
  /** Releases the lock; settles once the release has been processed. Idempotent. */
  release() {
    const s = STATE.get(this);
    if (s.held) {
      s.held = false;
      call(polyfillManager(), "done", [s.id, true, undefined]);
    }
    return s.ended;
  }
  /** Extends the lease to `ttl` ms from now; `false` (and no change) once not held. */
  renew(ttl) {
    const s = STATE.get(this);
    let ms;
    try {
      ms = millis(ttl, "ttl", (n) => n > 0);
    } catch (e) {
      return Promise.reject(e);
    }
    if (!s.held) return Promise.resolve(false);
    return call(polyfillManager(), "renew", [s.id, ms]);
  }
}
const proto = LockHandle.prototype;
if (typeof Symbol.asyncDispose === "symbol") {
  proto[Symbol.asyncDispose] = function () {
    return this.release();
  };
}
if (typeof Symbol.dispose === "symbol") {
  proto[Symbol.dispose] = function () {
    this.release();
  };
}

/**
 * Requests a lock and resolves to a `LockHandle` once it is granted. Options: those of
 * `navigator.locks.request()` (mode, ifAvailable, steal, signal), and `holder` (a label),
 * `timeout` (ms to wait at most: `TimeoutError`), `ttl` (a lease in ms).
 */
export function acquire(name, options) {
  let n, clean, holder, timeout, ttl;
  try {
    if (arguments.length < 1) throw new TypeError("1 argument required");
    n = `${name}`;
    // Each member read once, in Web IDL's (lexicographic) order; the extras are checked
    // here, the rest by request()'s own conversion and checks, in its order.
    if (options !== undefined && options !== null) {
      if (typeof options !== "object" && typeof options !== "function") throw new TypeError("options is not an object");
      holder = options.holder;
      if (holder !== undefined && typeof holder !== "string") throw new TypeError("holder is not a string");
      if (holder !== undefined && holder.length > 1024) throw new RangeError("holder is longer than 1024 UTF-16 code units");
      clean = { ifAvailable: options.ifAvailable, mode: options.mode, signal: options.signal, steal: options.steal };
      timeout = options.timeout;
      ttl = options.ttl;
    }
    timeout = millis(timeout, "timeout", (x) => x >= 0);
    ttl = millis(ttl, "ttl", (x) => x > 0);
  } catch (e) {
    return Promise.reject(e);
  }
  installServicesHost();
  return new Promise((resolve, reject) => {
    let handle = null;
    let ended;
    const ends = new Promise((r) => (ended = r));
    const granted = (lockName, mode, id) => {
      handle = Object.create(proto);
      const ac = new AbortController();
      STATE.set(handle, { name: lockName, mode, holder: holder === undefined ? null : holder, held: true, id, ac, ended: ends });
      resolve(handle);
    };
    let p;
    try {
      p = call(polyfillManager(), "acquire", [n, clean, granted, holder, timeout, ttl]);
    } catch {
      // The page loaded the client module without the services before importing them.
      p = Promise.reject(
        new DOMException("web-locks-wasm/services must be imported before the first lock request of this context.", "NotSupportedError"),
      );
    }
    p.then(
      () => ended(),
      (e) => {
        if (!handle) return reject(e);
        // Taken away after the grant: a steal (AbortError) or the lease (TimeoutError).
        const s = STATE.get(handle);
        s.held = false;
        s.ac.abort(e);
        call(polyfillManager(), "done", [s.id, false, e]);
        ended();
      },
    );
  });
}

/** One name's state across the origin. */
export function status(name) {
  let n;
  try {
    if (arguments.length < 1) throw new TypeError("1 argument required");
    n = `${name}`;
  } catch (e) {
    return Promise.reject(e);
  }
  installServicesHost();
  return call(polyfillManager(), "query", []).then((snap) => {
    const held = snap.held.filter((e) => e.name === n);
    const left = held.map((e) => EXPIRES.get(e)).filter((x) => x !== undefined);
    return {
      locked: held.length > 0,
      mode: held.length ? held[0].mode : null,
      holder: held.length && held[0].holder !== undefined ? held[0].holder : null,
      holders: held.length,
      pending: snap.pending.filter((e) => e.name === n).length,
      expiresIn: left.length ? Math.min(...left) : null,
    };
  });
}

// ---- Google Apps Script's LockService ---------------------------------------------------

const LOCKS = new WeakMap(); // Lock object -> { name, handle, busy }
/** The one name of `LockService.getScriptLock()`. */
export const SCRIPT_LOCK = "web-locks-wasm:script-lock";

class ServiceLock {
  /** Waits up to `ms` for the lock: `true` once held (at once if this object holds it). */
  tryLock(ms) {
    const s = LOCKS.get(this);
    // One request at a time per object: a second call waits for the first.
    const run = () => {
      if (s.handle && s.handle.held) return true;
      return acquire(s.name, { timeout: ms }).then(
        (h) => ((s.handle = h), true),
        (e) => {
          if (e && e.name === "TimeoutError") return false;
          throw e;
        },
      );
    };
    const next = s.busy.then(run, run);
    s.busy = next.catch(() => {});
    return next;
  }
  /** As `tryLock`, but rejects with a `TimeoutError` when the time runs out. */
  waitLock(ms) {
    return this.tryLock(ms).then((ok) => {
      if (!ok) throw new DOMException("Lock timeout: another process was holding the lock for too long.", "TimeoutError");
    });
  }
  hasLock() {
    const h = LOCKS.get(this).handle;
    return !!h && h.held;
  }
  releaseLock() {
    const s = LOCKS.get(this);
    const h = s.handle;
    s.handle = null;
    if (h) h.release();
  }
}
const newLock = (name) => {
  const l = Object.create(ServiceLock.prototype);
  LOCKS.set(l, { name, handle: null, busy: Promise.resolve() });
  return l;
};

/** Apps Script's `LockService`: each `Lock` object is an owner of its own. */
export const LockService = {
  getScriptLock: () => newLock(SCRIPT_LOCK),
  getLock: (name) => newLock(`${name}`),
};

// ---- Drupal's lock backend ----------------------------------------------------------------

const BACKENDS = new WeakMap(); // LockBackend -> { id, locks: Map<name, LockHandle> }
let backends = 0;

/** Drupal's lock API: one owner, leases in seconds, never blocks in `acquire()`. */
export class LockBackend {
  constructor() {
    const c = globalThis.crypto;
    const id = c && typeof c.randomUUID === "function" ? c.randomUUID() : `${Date.now().toString(36)}-${++backends}-${Math.random().toString(36).slice(2)}`;
    BACKENDS.set(this, { id, locks: new Map() });
  }
  getLockId() {
    return BACKENDS.get(this).id;
  }
  /** `true` when acquired or renewed (a lease of `timeout` s from now); `false` when held by another. */
  async acquire(name, timeout = 30) {
    const s = BACKENDS.get(this);
    const n = `${name}`;
    const t = Number(timeout);
    if (!Number.isFinite(t) || t < 0.001) throw new RangeError("timeout must be a finite number of seconds >= 0.001");
    const ttl = t * 1000;
    const mine = s.locks.get(n);
    if (mine && mine.held && (await mine.renew(ttl))) return true;
    try {
      s.locks.set(n, await acquire(n, { ifAvailable: true, holder: s.id, ttl }));
      return true;
    } catch (e) {
      if (e instanceof LockHeldError) return false;
      throw e;
    }
  }
  /** `true` when nobody holds `name`. */
  async lockMayBeAvailable(name) {
    return !(await status(name)).locked;
  }
  /**
   * Waits at most `delay` s for `name` to be free, without acquiring it: `false` as soon as
   * it may be available, `true` if it is still held when the delay runs out.
   */
  async wait(name, delay = 30) {
    const end = performance.now() + Number(delay) * 1000;
    let pause = 25;
    for (;;) {
      if (await this.lockMayBeAvailable(name)) return false;
      const left = end - performance.now();
      if (!(left > 0)) return true;
      await new Promise((r) => setTimeout(r, Math.min(pause, left)));
      pause = Math.min(pause * 2, 500);
    }
  }
  async release(name) {
    const s = BACKENDS.get(this);
    const n = `${name}`;
    const h = s.locks.get(n);
    s.locks.delete(n);
    if (h) await h.release();
  }
  async releaseAll() {
    const s = BACKENDS.get(this);
    await Promise.all([...s.locks.keys()].map((n) => this.release(n)));
  }
}
