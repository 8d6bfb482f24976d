// A shared or service worker that contends for locks with a page (tests/conformance/
// firefox.mjs): the browser's own deleted, the classic script loaded. Each message brings a
// MessagePort and an op: "try" (ifAvailable) or "wait", on the lock "w"; the answer goes
// back on the port.
delete WorkerNavigator.prototype.locks;
delete self.LockManager;
delete self.Lock;
importScripts("/dist/web-locks.js");
const serve = (port) => (e) => {
  const reply = e.ports && e.ports[0] ? e.ports[0] : port;
  if (e.data === "try") navigator.locks.request("w", { ifAvailable: true }, (l) => reply.postMessage(!!l));
  else if (e.data === "wait") navigator.locks.request("w", (l) => reply.postMessage(`granted ${!!l}`));
};
self.onconnect = (e) => (e.ports[0].onmessage = serve(e.ports[0])); // as a shared worker
self.onmessage = serve(null); // as a service worker
