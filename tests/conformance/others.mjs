// Run in a page of ours by tests/conformance/firefox.mjs and webkit.mjs: a shared worker and
// a service worker (contender.js) contend with this page for the lock "w". Resolves to what
// each saw: `busy` (ifAvailable while the page holds it) and `got` (once it released it).
export async function contendOthers() {
  await new Promise((granted) => navigator.locks.request("w", () => (granted(), new Promise((r) => (window.releaseW = r)))));
  const shared = new SharedWorker("/tests/conformance/contender.js", { name: "contender" }).port;
  const reg = await navigator.serviceWorker.register("/tests/conformance/contender.js", { scope: "/tests/conformance/contender/" });
  const sw = reg.installing || reg.waiting || reg.active;
  if (sw.state !== "activated") await new Promise((r) => sw.addEventListener("statechange", () => sw.state === "activated" && r()));
  const ask = (post, m) =>
    new Promise((r) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = (e) => r(e.data);
      post(m, ch.port2);
    });
  const toShared = (m, p) => shared.postMessage(m, [p]);
  const toService = (m, p) => sw.postMessage(m, [p]);
  const busy = [await ask(toShared, "try"), await ask(toService, "try")];
  const waiting = [ask(toShared, "wait"), ask(toService, "wait")];
  await new Promise((r) => setTimeout(r, 200));
  window.releaseW();
  const got = await Promise.all(waiting);
  await reg.unregister();
  return { busy, got };
}
