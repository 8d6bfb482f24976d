// webpack 5 build of the test app (run by tests/bundler/run.mjs through webpack's Node
// API; `webpack --config tests/bundler/webpack.config.mjs` with webpack-cli is the same).
// webpack finds the package's files by itself: its default rule for URL dependencies
// turns `new URL("./x", import.meta.url)` into an asset/resource, so the two wasm files
// and web-locks-arbiter.js (the SharedWorker's classic script) are emitted as files, and
// `new Worker(new URL("./worker.js", import.meta.url), { type: "module" })` is bundled
// as a worker chunk. The one rule below only keeps web-locks-arbiter.js as it ships.
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const out = fileURLToPath(new URL("../../build/bundler-webpack", import.meta.url));

// The page; in an app, html-webpack-plugin would write it.
class IndexHtml {
  apply(compiler) {
    compiler.hooks.thisCompilation.tap("IndexHtml", (compilation) =>
      compilation.hooks.processAssets.tap({ name: "IndexHtml", stage: compiler.webpack.Compilation.PROCESS_ASSETS_STAGE_ADDITIONAL }, () =>
        compilation.emitAsset(
          "index.html",
          new compiler.webpack.sources.RawSource(`<!doctype html>\n<meta charset="utf-8">\n<title>bundled app</title>\n<script defer src="main.js"></script>\n`),
        ),
      ),
    );
  }
}

export default {
  mode: "production",
  context: here,
  entry: { main: "./main.js" },
  output: { path: out, filename: "[name].js", clean: true },
  // As in the other configs: the package name points at the built dist/ of this repo
  // (an app that installed web-locks-wasm needs no alias).
  resolve: { alias: { "web-locks-wasm": fileURLToPath(new URL("../../dist/index.js", import.meta.url)) } },
  module: {
    rules: [
      // The one line this package needs: keep web-locks-arbiter.js as it ships. Without
      // it the build works all the same, but webpack's production minimizer minifies
      // this already-minified 140 kB classic script again (every .js asset goes through
      // it); marking the asset `minimized` makes the minimizer skip it.
      { test: /web-locks-arbiter\.js$/, type: "asset/resource", generator: { filename: (_, info) => ((info.minimized = true), "[name].[contenthash:8].js") } },
    ],
  },
  devtool: false,
  performance: { hints: false },
  plugins: [new IndexHtml()],
};
