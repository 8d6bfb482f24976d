// Entry of gen/polyfill.js: the polyfill as the Rust crate ships it, a wasm-bindgen snippet
// (`#[wasm_bindgen(module = "/gen/polyfill.js")]` in src/api.rs), so that a Rust wasm app
// gets the cross-tab polyfill from `cargo add web-locks-wasm` alone. wasm-bindgen copies
// this one file next to the app's glue (`snippets/web-locks-wasm-<hash>/gen/polyfill.js`),
// and nothing else: it is self-contained, with the full wasm module (client, arbiter and
// lock services) inlined as hex (js/hex.js).
//
// The same file is the arbiter's SharedWorker script (a module worker: it has exports):
// started so, it hosts the origin's arbiter. Its default URL is this module's own, which
// is right wherever the snippet is served as wasm-bindgen wrote it (`wasm-pack build
// --target web`, trunk, the wasm-pack test server); `setWorkerUrl()` overrides it (a
// bundler that merges the snippet into the app's bundle). Where the worker does not start
// (no module SharedWorker, a bad URL), the error event makes a tab host the arbiter at once.
//
// Importing it does nothing but configure: nothing touches a global, no wasm is compiled
// until the Rust API first calls `ours()` or `installOurs()` and makes a request.
import { configure, host, install, polyfillManager, setLoader } from "./core.js";
import { hostSharedWorker, runArbiter } from "./arbiter.js";
import { workerOptions } from "./coord.js";
import { fromHex } from "./hex.js";
import { installServicesHost } from "./services-host.js";
import { acquire } from "./services-api.js";
import initWasm, * as glue from "../build/pkg/web_locks_wasm.js";

const g = globalThis;
let loading = null;
const load = () =>
  loading ||
  (loading = new Promise((r) => r()).then(async () => {
    const bytes = fromHex(__WASM_HEX__);
    installServicesHost();
    // A realm that is no longer fully active runs no more tasks (see js/classic.js).
    if (host.active()) await initWasm({ module_or_path: bytes });
    else glue.initSync({ module: bytes });
    return glue;
  }));
setLoader(load, () => Promise.resolve(runArbiter));
workerOptions.type = "module";
configure({ workerUrl: import.meta.url });

// Started as the arbiter's SharedWorker: host the origin's arbiter.
hostSharedWorker(load);

/** The polyfill's manager of this context, installed nowhere. */
export const ours = () => polyfillManager();
/** Installs ours on `navigator.locks` where the global has none; the manager in force. */
export const installOurs = () => install();
/** The lock services (holder labels, leases) over ours. */
export const services = () => ({ acquire });
/** Where the arbiter's SharedWorker script is; before first use. */
export const setWorkerUrl = (url) => configure({ workerUrl: url });
/**
 * Whether ours belongs here (else local mode): where it can reach other contexts. In a
 * browser context without IndexedDB too: it then refuses requests (mode "denied"), since
 * local mode there could grant a name another context holds.
 */
export const shareable = () =>
  typeof BroadcastChannel === "function" &&
  !!g.navigator &&
  (!!g.indexedDB || typeof g.document !== "undefined" || typeof g.WorkerGlobalScope === "function");
/** This module's URL (what another context loads to share the lock space; tests). */
export const moduleUrl = () => import.meta.url;
