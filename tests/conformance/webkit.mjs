#!/usr/bin/env node
// Cross-engine check in WebKitGTK (Debian's MiniBrowser, driven by WebKitWebDriver over plain
// W3C WebDriver; MiniBrowser has no headless mode, hence Xvfb). Run by the test command (scripts/setup.sh installs both):
//   apt-get install webkit2gtk-driver xvfb xauth
//   xvfb-run -a node tests/conformance/webkit.mjs      (after the build)
//
// Runs our conformance suite (tests/conformance/page.html) against WebKit's native
// navigator.locks and ours, in a window and in a dedicated worker. Exit code 1 if ours fails
// a test.
import { spawn } from "node:child_process";
import { serve } from "../../scripts/server.mjs";

const MINIBROWSER = process.env.MINIBROWSER || "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
const root = new URL("../..", import.meta.url).pathname;
const server = await serve(root);
const base = `http://localhost:${server.address().port}`;
const port = 4444 + Math.floor(Math.random() * 1000);
const driver = spawn("WebKitWebDriver", [`--port=${port}`], { stdio: "ignore" });

/** One W3C WebDriver command; resolves to its `value`. */
async function wd(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        body: body ? JSON.stringify(body) : undefined,
      });
      const { value } = await res.json();
      if (value && value.error) throw new Error(`${path}: ${value.error}: ${value.message}`);
      return value;
    } catch (e) {
      // The driver takes a moment to listen.
      if (attempt < 20 && e.cause && e.cause.code === "ECONNREFUSED") await new Promise((r) => setTimeout(r, 250));
      else throw e;
    }
  }
}
const script = (s) => wd("POST", `/session/${session.sessionId}/execute/sync`, { script: s, args: [] });

const session = await wd("POST", "/session", {
  capabilities: { alwaysMatch: { "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation"] } } },
});
let failed = 0;
try {
  for (const scope of ["window", "worker"]) {
    for (const target of ["native", "ours"]) {
      await wd("POST", `/session/${session.sessionId}/url`, { url: `${base}/tests/conformance/page.html?target=${target}&scope=${scope}` });
      const t0 = Date.now();
      while (!(await script("return self.__done === true"))) {
        if (Date.now() - t0 > 300000) throw new Error(`${target}/${scope}: the suite did not finish`);
        await new Promise((r) => setTimeout(r, 500));
      }
      const r = JSON.parse(await script("return JSON.stringify({ results: self.__results, fatal: self.__fatal || null, ua: navigator.userAgent })"));
      const count = (s) => r.results.filter((t) => t.status === s).length;
      console.log(`${target}/${scope}: ${count("pass")} passed, ${count("fail")} failed, ${count("skip")} skipped${r.fatal ? ` (harness: ${r.fatal})` : ""}`);
      for (const t of r.results.filter((t) => t.status === "fail")) {
        console.log(`  fails: [${t.list}] ${t.name}: ${String(t.error).slice(0, 160)}`);
        if (target === "ours") failed++;
      }
      if (target === "ours" && scope === "worker") console.log(`webkit: ${failed ? `${failed} failure(s) of ours` : "ours passes"} (${r.ua})`);
    }
  }
} finally {
  await wd("DELETE", `/session/${session.sessionId}`).catch(() => {});
  driver.kill();
  server.close();
}
process.exit(failed ? 1 : 0);
