// Raw transport round trips in Chromium, to explain the worker path's handoff latency:
// a page ↔ dedicated worker ping-pong over a MessagePort vs over BroadcastChannel.
//   node bench/transport.mjs
import { chromium } from "playwright-core";
import { serve } from "../scripts/server.mjs";
import { launchOptions } from "../tests/browser.mjs";

const server = await serve(new URL("..", import.meta.url).pathname);
const base = `http://localhost:${server.address().port}`;
const browser = await chromium.launch(launchOptions());
const page = await browser.newPage();
await page.goto(`${base}/tests/entry/blank.html`);
const r = await page.evaluate(async () => {
  const src = `
    const bc = new BroadcastChannel("rtt");
    bc.onmessage = (e) => bc.postMessage(e.data);
    onmessage = (e) => { if (e.data === "port") { const p = e.ports[0]; p.onmessage = (m) => p.postMessage(m.data); } };`;
  const w = new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
  const ch = new MessageChannel();
  w.postMessage("port", [ch.port2]);
  const bc = new BroadcastChannel("rtt");
  const rtt = async (send, on, n) => {
    const times = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await new Promise((res) => {
        on(res);
        send(i);
      });
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  };
  const port = ch.port1;
  const out = {};
  for (let rep = 0; rep < 2; rep++) {
    out.port = await rtt((i) => port.postMessage(i), (res) => (port.onmessage = res), 500);
    out.broadcastChannel = await rtt((i) => bc.postMessage(i), (res) => (bc.onmessage = res), 500);
  }
  return out;
});
console.log(`page ↔ dedicated worker round trip, median of 500 (ms): MessagePort ${r.port.toFixed(3)}, BroadcastChannel ${r.broadcastChannel.toFixed(3)}`);
await browser.close();
server.close();
