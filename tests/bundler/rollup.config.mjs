// Rollup 4 build of the test app: `rollup --config tests/bundler/rollup.config.mjs`.
// Rollup leaves `new URL("./x", import.meta.url)` alone (it neither emits the file nor
// rewrites the URL) and has no notion of workers. So:
//  - the one line this package needs is @web/rollup-plugin-import-meta-assets, limited
//    to the package's files: it emits the two wasm files and web-locks-arbiter.js as
//    assets (as they are) and points the URLs at them:
//      importMetaAssets({ include: "**/node_modules/web-locks-wasm/dist/*.js" }),
//    (here the package is this repo's dist/, so the pattern is that folder). Limited,
//    because on the app's own `new URL("./worker.js", import.meta.url)` it would copy
//    the worker's unbundled source as an asset;
//  - the worker is a second input, written as worker.js next to main.js, where
//    main.js's `new URL("./worker.js", import.meta.url)` finds it.
import alias from "@rollup/plugin-alias";
import { importMetaAssets } from "@web/rollup-plugin-import-meta-assets";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const dist = fileURLToPath(new URL("../../dist", import.meta.url));

export default {
  input: { main: `${here}main.js`, worker: `${here}worker.js` },
  output: { dir: fileURLToPath(new URL("../../build/bundler-rollup", import.meta.url)), format: "es", entryFileNames: "[name].js" },
  plugins: [
    // As in the other configs: the package name points at the built dist/ of this repo
    // (an app that installed web-locks-wasm uses @rollup/plugin-node-resolve instead).
    alias({ entries: { "web-locks-wasm": `${dist}/index.js` } }),
    importMetaAssets({ include: `${dist}/*.js` }),
    {
      name: "index-html",
      buildStart() {
        this.emitFile({ type: "asset", fileName: "index.html", source: `<!doctype html>\n<meta charset="utf-8">\n<title>bundled app</title>\n<script type="module" src="./main.js"></script>\n` });
      },
    },
  ],
};
