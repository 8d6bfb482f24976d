// Entry of dist/web-locks.js, the classic script for `<script src>` and `importScripts()`:
// installs the polyfill synchronously where `navigator.locks` is missing. The wasm bytes are
// inlined, so the one file works in windows and workers alike; calls made before the module
// is instantiated are queued in order (`navigator.locks.ready` resolves when it is).
//
// The same file is the arbiter's SharedWorker script: started as a SharedWorker named
// PREFIX, it hosts the origin's lock manager instead.
import { configure, install, setLoader } from "./core.js";
import { debug, PREFIX } from "./coord.js";
import { runArbiter } from "./arbiter.js";
import initWasm, * as glue from "../build/pkg/web_locks_wasm.js";

const load = async () => {
  // Decode after the caller's synchronous part: a window constructs the SharedWorker, and
  // the SharedWorker starts its election, before spending milliseconds here.
  await null;
  // Hex, not base64: gzip finds the wasm's repetitions in byte-aligned text, so the
  // script compresses almost as well as the wasm itself (base64 costs a third more).
  const hex = __WASM_HEX__;
  // Native where there is one (Chromium 140+, Firefox 133+, Safari 18.2+): 0.3 ms against
  // 28 ms for the loop, measured cold in Chromium 156, on the path of every cold start.
  let bytes;
  if (typeof Uint8Array.fromHex === "function") bytes = Uint8Array.fromHex(hex);
  else {
    bytes = new Uint8Array(hex.length / 2);
    const nibble = (i) => (hex.charCodeAt(i) & 15) + (hex.charCodeAt(i) > 57 ? 9 : 0);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (nibble(2 * i) << 4) | nibble(2 * i + 1);
  }
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
  runArbiter(load(), { preferred: true, ports });
  g.webLocksDebug = debug; // for DevTools: the arbiter's state and counters
} else {
  setLoader(load);
  const script = g.document && g.document.currentScript;
  if (script && script.src) configure({ workerUrl: script.src });
  install();
}
