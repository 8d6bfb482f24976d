// `import { locks, LockManager, Lock, install } from "web-locks-wasm"`: a ponyfill.
// `locks` is the browser's own manager where there is one, else ours. Importing touches no
// global and loads no wasm: the module is fetched on the first call.
import {
  configure,
  Lock as OurLock,
  LockManager as OurLockManager,
  install as coreInstall,
  polyfillManager,
  setLoader,
} from "./core.js";
import { propagate } from "./frames.js";

// Two wasm modules: the full one, and the client half for windows whose arbiter runs in
// the SharedWorker (about half the bytes). Literal URLs, so that bundlers copy both.
const load = async (full) => {
  const glue = full ? await import("./web_locks_wasm.js") : await import("./web_locks_client.js");
  const url = full
    ? new URL("./web_locks_wasm_bg.wasm", import.meta.url)
    : new URL("./web_locks_client_bg.wasm", import.meta.url);
  await glue.default({ module_or_path: url });
  return glue;
};
// Hosting the arbiter (a worker, a window without SharedWorker) takes the arbiter's half
// of the glue too (and the full module, `load(true)`), fetched only then.
setLoader(load, () => import("./arbiter.js").then((m) => m.runArbiter));
// The arbiter's SharedWorker is the package's classic arbiter script; bundlers that
// understand `new URL(..., import.meta.url)` copy it along. `install({ workerUrl })`
// overrides it.
const WORKER_URL = new URL("./web-locks-arbiter.js", import.meta.url).href;
configure({ workerUrl: WORKER_URL });

const native = typeof navigator !== "undefined" && navigator && navigator.locks ? navigator.locks : null;

/** The browser's `navigator.locks` where it exists, else the polyfill's manager. */
export const locks = native || polyfillManager();
/** The `LockManager` interface that `locks` is an instance of. */
export const LockManager = native ? Object.getPrototypeOf(native).constructor : OurLockManager;
/** The `Lock` interface of the granted locks. */
export const Lock = native && typeof globalThis.Lock === "function" ? globalThis.Lock : OurLock;

/**
 * Installs the polyfill on `navigator.locks` (and `WorkerNavigator`) where missing;
 * `install({ force: true })` replaces the browser's own. Returns the manager in force.
 */
export function install(options = {}) {
  const mgr = coreInstall(options);
  const doc = globalThis.document;
  if (doc && mgr && mgr === polyfillManager() && options.frames !== false && !framesOn) {
    framesOn = true;
    // Same-origin child realms that never load a script (js/frames.js) get the classic
    // script, web-locks.js: served next to web-locks-arbiter.js unless `frames` says where.
    const base = doc.baseURI;
    const url = (typeof options.frames === "string" ? new URL(options.frames, base) : new URL("web-locks.js", new URL(options.workerUrl || WORKER_URL, base))).href;
    const nonced = doc.querySelector("script[nonce]");
    propagate(globalThis, () => childScript(url), options.nonce || (nonced && nonced.nonce));
  }
  return mgr;
}

let framesOn = false;
let source; // the classic script's text (a string), null when it could not be had
// Fetched synchronously, once, when the page first reaches a child realm: the child must
// have navigator.locks before the page's next statement runs.
function childScript(url) {
  if (source === undefined) {
    source = null;
    try {
      const x = new XMLHttpRequest();
      x.open("GET", url, false);
      x.send();
      if (x.status === 200 && x.responseText.includes("__WEB_LOCKS_SELF__")) source = x.responseText;
    } catch {}
    if (!source) console.warn(`web-locks-wasm: no navigator.locks in child frames: ${url} is not web-locks.js (see install({ frames }))`);
  }
  return source && `self[Symbol.for("web-locks-wasm:from")]=${JSON.stringify(url)};\n${source}`;
}

/** The polyfill's own manager, whether or not the browser has one. */
export const polyfill = {
  get locks() {
    return polyfillManager();
  },
  LockManager: OurLockManager,
  Lock: OurLock,
};
