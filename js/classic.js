// Entry of dist/web-locks.js, the classic script for `<script src>` and `importScripts()`:
// installs the polyfill synchronously where `navigator.locks` is missing. The wasm bytes are
// inlined, so the one file works in windows and workers alike; calls made before the module
// is instantiated are queued in order (`navigator.locks.ready` resolves when it is).
import { install, setLoader } from "./core.js";
import initWasm, * as glue from "../build/pkg/web_locks_wasm.js";

setLoader(async () => {
  const text = atob(__WASM_BASE64__);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  await initWasm({ module_or_path: bytes });
  return glue;
});

install();
