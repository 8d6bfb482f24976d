// Vite build of the test app (`vite build --config tests/bundler/vite.config.mjs`).
// Vite 8 needs no config for the package: `new URL("./x", import.meta.url)` is emitted as
// an asset (wasm files, web-locks-arbiter.js as it ships) and the dedicated worker is
// bundled. Vite 7 and older (Rollup inside) stop on the worker, which imports the package
// and so has dynamic imports: "Invalid value "iife" for option "worker.format" - UMD and
// IIFE output formats are not supported for code-splitting builds". The one line they
// need (checked once by hand with Vite 7.3.8; run.mjs runs the Vite 8 this repo pins):
//   worker: { format: "es" },
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));
export default {
  root,
  logLevel: "warn",
  resolve: { alias: { "web-locks-wasm": fileURLToPath(new URL("../../dist/index.js", import.meta.url)) } },
  build: { outDir: fileURLToPath(new URL("../../build/bundler", import.meta.url)), emptyOutDir: true },
};
