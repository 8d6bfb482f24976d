// A service worker with the polyfill that is slow to start (1.5 s of script) and has no
// fetch handler, so that the navigation does not start it: the page's question is answered
// after the page registered with the arbiter, and the page becomes its Client.id later,
// once idle. The page asks for its Client.id over a MessageChannel of its own ("whoami").
const t0 = Date.now();
while (Date.now() - t0 < 1500);
importScripts("/dist/web-locks.js");
self.addEventListener("message", (e) => {
  if (e.data === "whoami") e.ports[0].postMessage(e.source.id);
});
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
