// The show-control mixer demo (www/mixer.html) in headless Chromium: two tabs of one browser
// context are two operator desks ("Desk 1", "Desk 2", set by ?desk=). Real mouse drags take
// a fader's lock (acquire() with ifAvailable, holder and a lease); the other desk shows it
// "in use by Desk 1" with the lease left, is refused naming Desk 1, sees the value move, and
// takes the fader once it is let go or its tab closes; moves renew the lease, standing still
// loses it; the keyboard and the window.mixer hooks; a screenshot (build/mixer.png) that is
// not blank. Each test runs in a browser context of its own (its own SharedWorker). Any page
// error, or console error on a mixer page, fails the test. `node tests/mixer/run.mjs [--filter text]`.
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { chromium } from "playwright-core";
import { serve } from "../../scripts/server.mjs";
import { launchOptions } from "../browser.mjs";

const root = new URL("../..", import.meta.url).pathname;
const argv = process.argv.slice(2);
const filter = argv.includes("--filter") ? argv[argv.indexOf("--filter") + 1] : null;
const results = [];
const TEST_TIMEOUT_MS = 60000;
// This machine is small and shared: conditions are polled, with generous limits.
const WAIT_MS = 8000;

const server = await serve(root);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());

async function test(name, fn) {
  if (filter && !name.includes(filter)) return;
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const errors = [];
  ctx.on("weberror", (e) => errors.push(`weberror: ${e.error()}`));
  ctx.on("page", (page) => {
    page.on("pageerror", (e) => errors.push(`pageerror in ${page.url()}: ${e.stack || e}`));
    // (console errors count on the mixer's pages only: the demo page has no favicon)
    page.on("console", (m) => m.type() === "error" && page.url().includes("/mixer.html") && errors.push(`console.error in ${page.url()}: ${m.text()}`));
  });
  let timer;
  const t0 = Date.now();
  try {
    const note = await Promise.race([
      fn(ctx),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${TEST_TIMEOUT_MS} ms`)), TEST_TIMEOUT_MS))),
    ]);
    assert.deepEqual(errors, [], "errors in the pages");
    results.push([name, "pass"]);
    console.log(`ok   ${name} (${Date.now() - t0} ms${note ? `; ${note}` : ""})`);
  } catch (e) {
    if (errors.length) e.message += `\npage errors:\n  ${errors.join("\n  ")}`;
    results.push([name, "FAIL"]);
    console.log(`FAIL ${name}\n${e && e.stack ? e.stack : e}`);
  } finally {
    clearTimeout(timer);
    await ctx.close().catch(() => {});
  }
}

/** A tab of the mixer as the desk `name`; `query` adds to the query string. */
async function desk(ctx, name, query = "") {
  const page = await ctx.newPage();
  await page.goto(`${base}/www/mixer.html?desk=${encodeURIComponent(name)}${query}`);
  await waitFor(`${name}: the mixer is up`, () => page.evaluate(() => !!window.mixer && document.querySelectorAll(".strip").length));
  return page;
}

/** Resolves once `fn()` is truthy (its value); throws after `ms` with the last value seen. */
async function waitFor(what, fn, ms = WAIT_MS) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The text of one part of fader i's strip: "state", "lease", "note", "readout", "name". */
const shown = (page, i, part) => page.locator(`[data-fader="${i}"] .${part}`).innerText();
const waitShown = (page, i, part, want, ms) =>
  waitFor(`fader ${i} ${part} ${want}`, async () => {
    const t = await shown(page, i, part);
    return (typeof want === "string" ? t === want : want.test(t)) && t;
  }, ms);
const value = async (page, i) => Number(await shown(page, i, "readout"));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Presses the mouse on fader i's cap (and keeps it down); returns the point. */
async function pressCap(page, i) {
  const box = await page.locator(`[data-fader="${i}"] .cap`).boundingBox();
  const at = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  await page.mouse.move(at.x, at.y);
  await page.mouse.down();
  return at;
}

/** The lease shown ("lease 12.3 s left") in ms. */
function leaseMs(text) {
  const m = /^lease (\d+\.\d) s left$/.exec(text);
  assert.ok(m, `lease text: ${JSON.stringify(text)}`);
  return Number(m[1]) * 1000;
}

// ---- the page --------------------------------------------------------------------------

await test("page: four free faders, the desk from ?desk=, the lock services loaded, linked from the demo", async (ctx) => {
  const page = await ctx.newPage();
  await page.goto(`${base}/www/`);
  await page.click('a[href="/www/mixer.html"]');
  await waitFor("the mixer opened from the demo's link", () => page.evaluate(() => location.pathname === "/www/mixer.html" && !!window.mixer));
  const defaultDesk = await page.inputValue("#desk");
  assert.match(defaultDesk, /^Desk \d+$/);

  const a = await desk(ctx, "Desk 7");
  assert.equal(await a.inputValue("#desk"), "Desk 7");
  assert.match(await a.title(), /^Desk 7 · /);
  assert.equal(await a.locator(".strip").count(), 4);
  for (let i = 0; i < 4; i++) {
    await waitShown(a, i, "state", "free");
    assert.equal(await shown(a, i, "lease"), "");
  }
  assert.deepEqual(await Promise.all([0, 1, 2, 3].map((i) => value(a, i))), [70, 55, 80, 40]);
  assert.deepEqual(await Promise.all([0, 1, 2, 3].map((i) => shown(a, i, "name"))), ["1 Vocals", "2 Guitar", "3 Keys", "4 Drums"]);
  assert.equal(await a.evaluate(() => typeof self.WebLocksWasm.acquire), "function");
});

// ---- two desks, one fader --------------------------------------------------------------

await test("drag in Desk 1 (mouse): Desk 2 sees 'in use by Desk 1' and the lease, is refused naming Desk 1, sees the value move", async (ctx) => {
  const a = await desk(ctx, "Desk 1");
  const b = await desk(ctx, "Desk 2");
  const at = await pressCap(a, 0);
  await a.mouse.move(at.x, at.y - 50, { steps: 5 }); // up: louder
  await waitShown(a, 0, "state", "yours (Desk 1)");
  const moved = await value(a, 0);
  assert.ok(moved > 70, `the drag moved the fader up: ${moved}`);

  await waitShown(b, 0, "state", "in use by Desk 1");
  assert.equal(await b.locator('[data-fader="0"]').getAttribute("class"), "strip busy");
  assert.equal(await b.locator('[data-fader="0"] .fader').getAttribute("aria-disabled"), "true");
  const lease1 = leaseMs(await waitShown(b, 0, "lease", /^lease /));
  assert.ok(lease1 > 15000 && lease1 <= 30000, `lease left: ${lease1} ms`);
  await waitFor("Desk 2 sees the value", async () => (await value(b, 0)) === moved);
  // The lease counts down while Desk 1 stands still (a renewal of the drag's last moves may
  // still land after the first reading: polled, not compared once).
  await waitFor(`the lease counts down from ${lease1} ms`, async () => leaseMs(await shown(b, 0, "lease")) < lease1 - 500);
  // Desk 1 shows its own lease too.
  leaseMs(await waitShown(a, 0, "lease", /^lease /));

  // Desk 2 tries to grab it, and drags: refused, naming Desk 1; nothing moves.
  const bt = await pressCap(b, 0);
  await b.mouse.move(bt.x, bt.y + 60, { steps: 4 });
  await waitShown(b, 0, "note", "refused: in use by Desk 1");
  await b.mouse.up();
  assert.equal(await b.evaluate(() => mixer.state(0).phase), "idle");
  assert.equal(await value(b, 0), moved);
  assert.equal(await value(a, 0), moved);
  assert.equal(await shown(a, 0, "state"), "yours (Desk 1)");
  assert.equal(await a.evaluate(() => mixer.state(0).phase), "held");
  const s = await b.evaluate(() => WebLocksWasm.status("fader-1"));
  assert.deepEqual({ locked: s.locked, holder: s.holder, holders: s.holders }, { locked: true, holder: "Desk 1", holders: 1 });
  await a.mouse.up();
});

await test("letting go in Desk 1 (mouse up) frees the fader: Desk 2 takes it with the mouse and moves it", async (ctx) => {
  const a = await desk(ctx, "Desk 1");
  const b = await desk(ctx, "Desk 2");
  const at = await pressCap(a, 0);
  await a.mouse.move(at.x, at.y - 20, { steps: 3 });
  await waitShown(a, 0, "state", "yours (Desk 1)");
  await waitShown(b, 0, "state", "in use by Desk 1");
  await a.mouse.up();
  await waitShown(a, 0, "state", "free");
  await waitShown(b, 0, "state", "free");
  assert.equal(await shown(b, 0, "lease"), "");

  const before = await value(b, 0);
  const bt = await pressCap(b, 0);
  await b.mouse.move(bt.x, bt.y + 40, { steps: 4 }); // down: quieter
  await waitShown(b, 0, "state", "yours (Desk 2)");
  const moved = await value(b, 0);
  assert.ok(moved < before, `Desk 2 moved it down: ${before} -> ${moved}`);
  await waitShown(a, 0, "state", "in use by Desk 2");
  await waitFor("Desk 1 sees Desk 2's value", async () => (await value(a, 0)) === moved);
  await b.mouse.up();
  await waitShown(a, 0, "state", "free");
  await waitShown(b, 0, "state", "free");
});

await test("closing Desk 1 while it holds fader 2 frees it for Desk 2 within seconds", async (ctx) => {
  const a = await desk(ctx, "Desk 1");
  const b = await desk(ctx, "Desk 2");
  const at = await pressCap(a, 1);
  await a.mouse.move(at.x, at.y - 10, { steps: 2 });
  await waitShown(a, 1, "state", "yours (Desk 1)");
  await waitShown(b, 1, "state", "in use by Desk 1");
  const t0 = Date.now();
  await a.close();
  await waitShown(b, 1, "state", "free", 5000); // the lease has 30 s: only the tab's end frees it this early
  const freedAfter = Date.now() - t0;
  assert.equal(await b.evaluate(() => mixer.grab(1)), true, "Desk 2 takes it");
  await waitShown(b, 1, "state", "yours (Desk 2)");
  assert.ok(freedAfter < 5000, `freed after ${freedAfter} ms`);
  return `Desk 2 saw it free ${freedAfter} ms after the close`;
});

// ---- the lease -------------------------------------------------------------------------

await test("lease (?ttl=2000): moving renews it past the ttl; standing still loses it ('lease expired') and stops the drag", async (ctx) => {
  const a = await desk(ctx, "Desk 1", "&ttl=2000");
  const b = await desk(ctx, "Desk 2");
  const at = await pressCap(a, 2);
  await waitShown(a, 2, "state", "yours (Desk 1)");
  // Keep moving for 1.75 times the lease; meanwhile Desk 2 sees it in use, with the lease.
  const until = Date.now() + 3500;
  let seen = null;
  for (let k = 0; Date.now() < until; k++) {
    await a.mouse.move(at.x, at.y - 10 - (k % 2) * 6);
    await sleep(250);
    const [state, lease] = [await shown(b, 2, "state"), await shown(b, 2, "lease")];
    if (state === "in use by Desk 1" && lease) seen = leaseMs(lease);
  }
  const still = Date.now();
  assert.equal(await shown(a, 2, "state"), "yours (Desk 1)", "still held after 1.75 ttl of moves");
  assert.ok(seen !== null && seen <= 2000, `Desk 2 saw it in use by Desk 1 with a lease of at most 2 s: ${seen}`);

  // Standing still: lost within the ttl (plus slack), and the drag is over.
  await waitShown(a, 2, "note", "lease expired: fader released", 2000 + WAIT_MS);
  const expiredAfter = Date.now() - still;
  assert.ok(expiredAfter > 1000, `expired ${expiredAfter} ms after the moves stopped: too early for a 2 s lease`);
  assert.equal(await shown(a, 2, "state"), "free");
  const after = await value(a, 2);
  await a.mouse.move(at.x, at.y - 80, { steps: 4 }); // the mouse is still down
  await sleep(300);
  assert.equal(await value(a, 2), after, "a move after the lease expired moves nothing");
  assert.equal(await a.evaluate(() => mixer.state(2).phase), "idle");
  await waitShown(b, 2, "state", "free");
  await a.mouse.up();
  assert.equal(await b.evaluate(() => mixer.grab(2)), true, "Desk 2 takes the expired fader");
  return `expired ${expiredAfter} ms after the moves stopped`;
});

// ---- keyboard and hooks ----------------------------------------------------------------

await test("keyboard and window.mixer hooks: each key press grabs, moves and lets go; hooks refuse a busy fader", async (ctx) => {
  const a = await desk(ctx, "Desk 1");
  const b = await desk(ctx, "Desk 2");
  await a.focus('[data-fader="2"] .fader');
  for (let k = 0; k < 3; k++) await a.keyboard.press("ArrowUp");
  await a.keyboard.press("PageDown");
  await waitFor("Desk 1 at 73", async () => (await value(a, 2)) === 73);
  await waitFor("Desk 2 at 73", async () => (await value(b, 2)) === 73);
  await waitShown(a, 2, "state", "free"); // every key up let go
  await waitShown(b, 2, "state", "free");
  await a.keyboard.press("End"); // the top, not beyond
  await waitFor("Desk 2 at 100", async () => (await value(b, 2)) === 100);
  assert.equal(await value(a, 2), 100);
  await waitShown(a, 2, "state", "free");

  assert.equal(await a.evaluate(() => mixer.grab(3)), true);
  await waitShown(b, 3, "state", "in use by Desk 1");
  assert.equal(await b.evaluate(() => mixer.grab(3)), false);
  assert.equal(await shown(b, 3, "note"), "refused: in use by Desk 1");
  assert.equal(await b.evaluate(() => mixer.move(3, 5)), false, "Desk 2 cannot move it");
  assert.equal(await a.evaluate(() => mixer.move(3, 12)), true);
  await waitFor("Desk 2 sees 12", async () => (await value(b, 3)) === 12);
  const st = await b.evaluate(() => mixer.state(3));
  assert.equal(st.busy, true);
  assert.equal(st.holder, "Desk 1");
  assert.ok(st.expiresIn > 0 && st.expiresIn <= 30000, `expiresIn ${st.expiresIn}`);
  await a.evaluate(() => mixer.letGo(3));
  await waitShown(b, 3, "state", "free");
  assert.equal(await b.evaluate(() => mixer.grab(3)), true);
});

// ---- screenshot ------------------------------------------------------------------------

/** Decodes a PNG in a page: its size, distinct colours, the most common colour's share, and pixels near given colours. */
async function analyse(ctx, png, colours) {
  const page = await ctx.newPage();
  await page.goto(`${base}/tests/entry/blank.html`);
  const r = await page.evaluate(
    async ([b64, colours]) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const c = document.createElement("canvas");
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const g = c.getContext("2d");
      g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      const counts = new Map();
      const near = colours.map(() => 0);
      const rgb = colours.map((h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16)));
      for (let p = 0; p < d.length; p += 4) {
        const key = (d[p] << 16) | (d[p + 1] << 8) | d[p + 2];
        counts.set(key, (counts.get(key) || 0) + 1);
        rgb.forEach(([r, g2, b], k) => {
          if (Math.abs(d[p] - r) <= 12 && Math.abs(d[p + 1] - g2) <= 12 && Math.abs(d[p + 2] - b) <= 12) near[k]++;
        });
      }
      const top = Math.max(...counts.values());
      return { width: c.width, height: c.height, distinct: counts.size, topShare: top / (c.width * c.height), near };
    },
    [png.toString("base64"), colours],
  );
  await page.close();
  return r;
}

await test("screenshot of Desk 2 (build/mixer.png) is not blank: many colours, the four channel colours", async (ctx) => {
  const a = await desk(ctx, "Desk 1");
  const b = await desk(ctx, "Desk 2");
  const at = await pressCap(a, 1);
  await a.mouse.move(at.x, at.y - 30, { steps: 3 });
  const bt = await pressCap(b, 0);
  await b.mouse.move(bt.x, bt.y + 30, { steps: 3 });
  await waitShown(b, 0, "state", "yours (Desk 2)");
  await waitShown(b, 1, "state", "in use by Desk 1");
  await waitShown(b, 1, "lease", /^lease /);
  await waitShown(b, 0, "lease", /^lease /);
  const png = await b.screenshot();
  await mkdir(new URL("../../build/", import.meta.url), { recursive: true });
  await writeFile(new URL("../../build/mixer.png", import.meta.url), png);

  const blank = await ctx.newPage();
  await blank.goto(`${base}/tests/entry/blank.html`);
  const blankPng = await blank.screenshot();
  await blank.close();

  const channels = ["#ff5d8f", "#ffb000", "#47c7ff", "#8f7bff"];
  const shot = await analyse(ctx, png, channels);
  const empty = await analyse(ctx, blankPng, channels);
  assert.deepEqual([shot.width, shot.height], [1000, 800]);
  assert.ok(empty.distinct <= 2, `the blank page has ${empty.distinct} colours`); // the check itself tells blank from not
  assert.ok(shot.distinct >= 200, `distinct colours: ${shot.distinct}`);
  assert.ok(shot.topShare < 0.9, `one colour covers ${(shot.topShare * 100).toFixed(1)}%`);
  shot.near.forEach((n, k) => assert.ok(n >= 20, `channel colour ${channels[k]}: ${n} pixels`));
  assert.ok(png.length > 5 * blankPng.length, `PNG ${png.length} B against blank ${blankPng.length} B`);
  await a.mouse.up();
  await b.mouse.up();
});

await browser.close();
server.close();

const failed = results.filter(([, s]) => s !== "pass").length;
console.log(`mixer: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
