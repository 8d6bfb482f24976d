// An app that imports the package through a bundler (Vite): the SharedWorker script and
// the wasm files must be found through `new URL(..., import.meta.url)` after bundling.
import { polyfill } from "web-locks-wasm";

window.L = polyfill.locks;
window.appReady = polyfill.locks.ready;
