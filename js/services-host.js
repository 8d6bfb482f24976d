// The lock services' half of the host object (js/core.js's `host`), which a wasm module
// built with the services calls (src/bindings, feature `services`): the errors, handing a
// granted lock to acquire(), labels and lease times in snapshots, the deadlock reports,
// and the clock and timer of an arbiter in this context. Loaded with every such module
// (the services entry, the classic script, and every context that loads the full module),
// so that a page that never uses the services nor hosts an arbiter never fetches it.
import { call, host, polyfillManager } from "./core.js";

const g = globalThis;

/** `acquire()` with `ifAvailable` found the lock held. */
export class LockHeldError extends Error {
  constructor(lockName, holder = null) {
    super(`The lock "${lockName}" is held${holder === null ? "" : ` by "${holder}"`}.`);
    this.name = "LockHeldError";
    this.code = "LOCK_HELD";
    this.lockName = lockName;
    this.holder = holder;
  }
}

/** `acquire()` would have closed a cycle of requests waiting for each other. */
export class DeadlockError extends Error {
  constructor(cycle) {
    super(`Deadlock: ${cycle.map((e) => `"${e.name}"`).join(" -> ")}`);
    this.name = "DeadlockError";
    this.cycle = cycle;
  }
}

/** The type of the event that reports a spec `request()` closing a cycle (see README). */
export const DEADLOCK_EVENT = "weblocksdeadlock";

const MODES = [null, "exclusive", "shared"];
/** Snapshot entry -> ms left of its lease (for status()). */
export const EXPIRES = new WeakMap();
const last = new WeakMap(); // snapshot -> [list, index] of the entry appended last
const cycleOf = (snap) => snap.held.map(({ clientId, holder = null, mode, name }) => ({ clientId, holder, mode, name }));

let installed = false;
export function installServicesHost() {
  if (installed) return;
  installed = true;
  const entry = host.entry;
  let timer = 0;
  Object.assign(host, {
    entry(snap, pending, name, mode) {
      entry(snap, pending, name, mode);
      const list = pending ? snap.pending : snap.held;
      last.set(snap, [list, list.length - 1]);
    },
    label(snap, units) {
      const [list, i] = last.get(snap);
      // Web IDL dictionaries list their members in lexicographic order.
      const { clientId, mode, name } = list[i];
      list[i] = { clientId, holder: host.fromUnits(units), mode, name };
    },
    expires(snap, ms) {
      const [list, i] = last.get(snap);
      EXPIRES.set(list[i], ms);
    },
    grant: (callback, name, mode, id) => callback(name, MODES[mode], id),
    serror(code, name, holder, has) {
      if (code === 0) return new DOMException("The lock request timed out.", "TimeoutError");
      if (code === 1) return new DOMException("The lock's lease expired.", "TimeoutError");
      return new LockHeldError(name, has ? host.fromUnits(holder) : null);
    },
    deadlock: (snap) => new DeadlockError(cycleOf(snap)),
    report(snap) {
      const cycle = cycleOf(snap);
      if (typeof g.dispatchEvent === "function" && typeof CustomEvent === "function") {
        g.dispatchEvent(new CustomEvent(DEADLOCK_EVENT, { detail: { cycle } }));
      }
    },
    now: () => performance.now(),
    timer(ms) {
      clearTimeout(timer);
      timer = setTimeout(() => call(polyfillManager(), "tick", []), Math.max(0, ms));
    },
  });
}
