// The Rust example page (examples/lock-demo, built by scripts/build-example.mjs) in two
// tabs of headless Chromium: tab A takes the lock, tab B waits for it and sees A hold it;
// A gives it back and B gets it. Run after `node scripts/build-example.mjs`.
import { chromium } from "playwright-core";
import { serve } from "../../scripts/server.mjs";
import { launchOptions } from "../browser.mjs";

const root = new URL("../..", import.meta.url).pathname;
const server = await serve(root);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());
let failed = 0;
let passed = 0;
const check = (ok, what) => (ok ? passed++ : (failed++, console.log(`FAIL ${what}`)));
try {
  const context = await browser.newContext();
  const [a, b] = [await context.newPage(), await context.newPage()];
  for (const p of [a, b]) {
    p.on("pageerror", (e) => check(false, `page error: ${e.message}`));
    await p.goto(`${base}/examples/lock-demo/`);
  }
  const status = (p) => p.textContent("#status");
  const until = async (p, re, what) => {
    for (let i = 0; i < 100; i++) {
      if (re.test(await status(p))) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    check(false, `${what} (status: ${JSON.stringify(await status(p))})`);
    return false;
  };
  await a.click("#take");
  check(await until(a, /this tab holds it: true/, "tab A holds the lock"), "A holds");
  await b.click("#take");
  check(await until(b, /this tab holds it: false[\s\S]*held by [\s\S]*waited for by/, "tab B waits while A holds"), "B waits");
  check(!/local mode/.test(await status(a)), "the browser's own manager is used, not local mode");
  await a.click("#give");
  check(await until(b, /this tab holds it: true/, "tab B gets it once A gives it back"), "B holds");
  check(await until(a, /this tab holds it: false/, "tab A no longer holds it"), "A released");
} finally {
  await browser.close();
  server.close();
}
console.log(`example: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
