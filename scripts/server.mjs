// A tiny static file server for the demo, the tests and the benchmarks (localhost is a
// secure context, so the browser's own navigator.locks exists there to compare against).
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".css": "text/css",
  ".map": "application/json",
  ".md": "text/markdown; charset=utf-8",
};

/**
 * Serves `root` on 127.0.0.1:`port` (0 = any free port). Resolves to the http.Server.
 * `isolated`: every response carries COOP same-origin and COEP require-corp, so that pages
 * (and their workers) are cross-origin isolated.
 */
export function serve(root, port = 0, { index = "index.html", isolated = false } = {}) {
  const server = createServer(async (req, res) => {
    try {
      let path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
      if (path.includes("..")) throw Object.assign(new Error("bad path"), { code: "ENOENT" });
      let file = join(root, path);
      if ((await stat(file)).isDirectory()) file = join(file, index);
      const body = await readFile(file);
      // no-store keeps every test on the files just built; a page asked for with
      // ?bfcache=1 gets no-cache instead, which leaves it eligible for the back/forward
      // cache (Chromium does not keep no-store pages there).
      const cache = /[?&]bfcache=1(&|$)/.test(req.url) ? "no-cache" : "no-store";
      const coi = isolated ? { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" } : {};
      res.writeHead(200, { "content-type": TYPES[extname(file)] || "application/octet-stream", "cache-control": cache, ...coi });
      res.end(body);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
    }
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}
