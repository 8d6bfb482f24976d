// esbuild build of the test app: `node tests/bundler/esbuild.config.mjs` (run.mjs does).
// esbuild leaves `new URL("./x", import.meta.url)` alone: it neither emits the file nor
// rewrites the URL, and it does not bundle `new Worker(new URL(...))` either. So:
//  - the worker is a second entry point, written as worker.js next to main.js, where
//    main.js's `new URL("./worker.js", import.meta.url)` finds it;
//  - with `format: "esm"` and `splitting: true`, the package's code lands in chunks in
//    outdir and its `import.meta.url` stays that chunk's URL, so the package's files are
//    looked for next to the bundle. The one line this package needs copies them there:
//      for (const f of PACKAGE_FILES) copyFileSync(join(pkgDist, f), join(outdir, f));
//    (pkgDist = node_modules/web-locks-wasm/dist in an app; add
//    web_locks_services_bg.wasm if the app imports "web-locks-wasm/services").
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const outdir = fileURLToPath(new URL("../../build/bundler-esbuild", import.meta.url));
// As in the other configs: the package name points at the built dist/ of this repo.
const pkgDist = fileURLToPath(new URL("../../dist", import.meta.url));
const PACKAGE_FILES = ["web_locks_client_bg.wasm", "web_locks_wasm_bg.wasm", "web-locks-arbiter.js"];

export const options = {
  absWorkingDir: here,
  entryPoints: { main: "main.js", worker: "worker.js" },
  bundle: true,
  format: "esm",
  splitting: true,
  minify: true,
  outdir,
  alias: { "web-locks-wasm": join(pkgDist, "index.js") },
  logLevel: "warning",
};

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
await esbuild.build(options);
for (const f of PACKAGE_FILES) copyFileSync(join(pkgDist, f), join(outdir, f));
writeFileSync(join(outdir, "index.html"), `<!doctype html>\n<meta charset="utf-8">\n<title>bundled app</title>\n<script type="module" src="./main.js"></script>\n`);
