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
configure({ workerUrl: new URL("./web-locks-arbiter.js", import.meta.url).href });

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
export function install(options) {
  return coreInstall(options);
}

/** The polyfill's own manager, whether or not the browser has one. */
export const polyfill = {
  get locks() {
    return polyfillManager();
  },
  LockManager: OurLockManager,
  Lock: OurLock,
};
