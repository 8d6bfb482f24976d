// An app's service worker that loads the polyfill (issue #11): it answers its pages' question
// for their Client.id. The app's own message and fetch handlers come after it, as usual.
importScripts("/dist/web-locks.js");
let appMessages = 0;
self.addEventListener("message", () => appMessages++);
self.addEventListener("fetch", (e) => {
  const path = new URL(e.request.url).pathname;
  if (path.endsWith("/whoami")) e.respondWith(new Response(e.clientId));
  else if (path.endsWith("/app-messages")) e.respondWith(new Response(String(appMessages)));
});
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
