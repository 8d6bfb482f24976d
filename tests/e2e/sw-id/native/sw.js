// The service worker of the native comparison page (the browser's own locks).
self.addEventListener("fetch", (e) => {
  if (new URL(e.request.url).pathname.endsWith("/whoami")) e.respondWith(new Response(e.clientId));
});
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
