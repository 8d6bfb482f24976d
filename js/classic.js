// Entry of dist/web-locks.js, the classic script for `<script src>` and `importScripts()`:
// installs the polyfill synchronously where `navigator.locks` is missing. It carries the
// client half of the wasm, inlined, which is all that a window whose arbiter runs in the
// SharedWorker ever needs; calls made before the module is instantiated are queued in
// order (`navigator.locks.ready` resolves when it is).
//
// Hosting the arbiter takes the full module and arbiter.js: they are in the second classic
// script, dist/web-locks-arbiter.js, which must sit next to this one. It is the
// SharedWorker's script, and this one fetches it (a <script> element in a window,
// importScripts() in a worker) only where this context has to host the arbiter: a window
// without SharedWorker, a worker, local mode.
import { configure, host, install, polyfillManager, setLoader } from "./core.js";
import { propagate } from "./frames.js";
import * as coord from "./coord.js";
import { fromHex, HOOK } from "./hex.js";
import { installServicesHost } from "./services-host.js";
import * as services from "./services-api.js";
import initWasm, * as glue from "../build/pkg/web_locks_services.js";

/* global __WEB_LOCKS_SELF__, __WEB_LOCKS_FROM__ */
const g = globalThis;
const doc = g.document;
// scripts/build.mjs wraps this script in `(function __WEB_LOCKS_SELF__(__WEB_LOCKS_FROM__)
// {...})()`: in a child realm that a parent's copy set up (js/frames.js), the parent's
// script URL comes in as __WEB_LOCKS_FROM__, and this realm gets the polyfill in force.
// A parent that runs the ESM entry (index.js install()) injects this script's text, with its
// URL under FROM on the global, read once here.
const FROM = Symbol.for("web-locks-wasm:from");
const inherited = typeof __WEB_LOCKS_FROM__ === "string" ? __WEB_LOCKS_FROM__ : typeof g[FROM] === "string" ? g[FROM] : null;
delete g[FROM];
const script = doc && doc.currentScript;

// This script's own URL, read while it runs: `document.currentScript` in a window; in a
// worker (importScripts) the stack of an error made now, whose innermost frame is here.
let own = inherited || (script ? script.src : null);
if (!doc) {
  const m = /(?:https?|file|blob):[^\s()@]+?(?=:\d+:\d+)/.exec(String(new Error().stack));
  own = m && m[0];
}
const arbiterUrl = own ? new URL("web-locks-arbiter.js", own).href : null;

let client = null;
const loadClient = () =>
  client ||
  (client = Promise.resolve().then(async () => {
    // After the caller's synchronous part: a window constructs the SharedWorker first.
    const bytes = fromHex(__WASM_HEX__);
    // A realm that is no longer fully active (a removed iframe) runs no more tasks, so an
    // asynchronous instantiation would never finish there; its calls must still reject.
    if (host.active()) await initWasm({ module_or_path: bytes });
    else glue.initSync({ module: bytes });
    return glue;
  }));

// The arbiter script, loaded once. It finds this script's coordination module (coord.js)
// under HOOK, so that both halves share one state, and leaves `{ load, runArbiter }` there.
let addon = null;
const loadAddon = () =>
  addon ||
  (addon = new Promise((resolve, reject) => {
    if (!arbiterUrl) throw new Error("web-locks-wasm: cannot tell where web-locks-arbiter.js is");
    const hook = (g[HOOK] = { coord });
    const done = (err) => {
      delete g[HOOK];
      hook.full ? resolve(hook.full) : reject(err || new Error(`web-locks-wasm: ${arbiterUrl} did not load`));
    };
    if (!doc) {
      try {
        g.importScripts(arbiterUrl);
        done();
      } catch (e) {
        done(e);
      }
      return;
    }
    const s = doc.createElement("script");
    s.src = arbiterUrl;
    const nonce = doc.currentScript && doc.currentScript.nonce;
    if (nonce) s.nonce = nonce;
    s.onload = () => done();
    s.onerror = () => done();
    (doc.head || doc.documentElement).appendChild(s);
  }));

// Both wasm modules here have the lock services, whose half of the host they call.
setLoader(
  (full) => (installServicesHost(), full ? loadAddon().then((a) => a.load()) : loadClient()),
  () => loadAddon().then((a) => a.runArbiter),
);
// A service worker may call importScripts() only while its script first runs: fetch the
// arbiter script now (every other context fetches it on first use, if at all).
if (typeof g.ServiceWorkerGlobalScope === "function" && g instanceof g.ServiceWorkerGlobalScope && arbiterUrl) {
  loadAddon().catch(() => {});
}
if (arbiterUrl) configure({ workerUrl: arbiterUrl });
const inForce = install({ force: !!inherited });
// Where the polyfill is in force in a window, its same-origin child realms get it too
// (js/frames.js), unless the script tag says `data-frames="off"`.
if (doc && inForce === polyfillManager() && own && !(script && script.dataset && script.dataset.frames === "off")) {
  propagate(g, () => `(${String(__WEB_LOCKS_SELF__)})(${JSON.stringify(own)});`, script && script.nonce);
}
// The lock services (web-locks-wasm/services) on one global, as the ESM entry exports them.
g.WebLocksWasm = {
  acquire: services.acquire,
  status: services.status,
  LockService: services.LockService,
  LockBackend: services.LockBackend,
  LockHeldError: services.LockHeldError,
  DeadlockError: services.DeadlockError,
  LockHandle: services.LockHandle,
  SCRIPT_LOCK: services.SCRIPT_LOCK,
};
