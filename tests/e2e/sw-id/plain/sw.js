// An app's service worker without the polyfill: its pages keep random clientIds.
self.addEventListener("fetch", (e) => {
  if (new URL(e.request.url).pathname.endsWith("/whoami")) e.respondWith(new Response(e.clientId));
});
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
