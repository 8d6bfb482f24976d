// Entry of dist/web-locks.js, the classic script for `<script src>` and `importScripts()`:
// installs the polyfill synchronously where `navigator.locks` is missing. The wasm bytes are
// inlined, so the one file works in windows and workers alike; calls made before the module
// is instantiated are queued in order (`navigator.locks.ready` resolves when it is).
//
// The same file is the arbiter's SharedWorker script: started as a SharedWorker named
// PREFIX, it hosts the origin's lock manager instead.
import { configure, install, setLoader } from "./core.js";
import { PREFIX, runArbiter } from "./coord.js";
import initWasm, * as glue from "../build/pkg/web_locks_wasm.js";

const load = async () => {
  const text = atob(__WASM_BASE64__);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  await initWasm({ module_or_path: bytes });
  return glue;
};

const g = globalThis;
if (typeof g.SharedWorkerGlobalScope === "function" && g instanceof g.SharedWorkerGlobalScope && g.name === PREFIX) {
  // Register for connections synchronously, or the first one is lost; serve once ready.
  const pending = [];
  let sink = null;
  g.onconnect = (e) => (sink ? sink(e.ports[0]) : pending.push(e.ports[0]));
  const ports = {
    set onport(fn) {
      sink = fn;
      pending.splice(0).forEach(fn);
    },
  };
  load().then((wasm) => runArbiter(wasm, { preferred: true, ports }));
} else {
  setLoader(load);
  const script = g.document && g.document.currentScript;
  if (script && script.src) configure({ workerUrl: script.src });
  install();
}
