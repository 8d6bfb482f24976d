// An app that imports the package through a bundler (Vite, webpack, esbuild, Rollup,
// Parcel): the SharedWorker script and the wasm files must be found through
// `new URL(..., import.meta.url)` after bundling, and a dedicated module worker that
// imports the package too must join the same lock space. `polyfill.locks` is used on
// purpose: Chromium has its own navigator.locks, and this checks ours.
import { polyfill } from "web-locks-wasm";

window.L = polyfill.locks;
window.appReady = polyfill.locks.ready;
window.workerErrors = [];

// The dedicated worker is started on demand (only by the tab that asks for it), and
// driven by [id, op, name] messages; see worker.js.
let worker = null;
let next = 0;
const waiting = new Map();
window.inWorker = (op, name) => {
  if (!worker) {
    worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    worker.onmessage = ({ data: [id, ok, value] }) => {
      const w = waiting.get(id);
      waiting.delete(id);
      ok ? w.resolve(value) : w.reject(new Error(`in the worker: ${value}`));
    };
    // An error event (the script not found, not runnable, or an uncaught error in it)
    // fails every call still waiting for an answer.
    const fail = (what) => {
      window.workerErrors.push(what);
      for (const w of waiting.values()) w.reject(new Error(`worker: ${what}`));
      waiting.clear();
    };
    worker.onerror = (e) => fail(e.message || "error event (script not found or not runnable?)");
    worker.onmessageerror = () => fail("messageerror");
  }
  const id = ++next;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    worker.postMessage([id, op, name]);
  });
};
