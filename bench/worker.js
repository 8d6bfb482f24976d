// Dedicated worker for scenario 9: ping-pong with its page on one lock.
const impl = new URL(location.href).searchParams.get("impl");
if (impl === "ours") {
  delete WorkerNavigator.prototype.locks;
  delete self.LockManager;
  delete self.Lock;
  importScripts("/dist/web-locks.js");
}
const now = () => performance.timeOrigin + performance.now();
onmessage = async (e) => {
  const { n, name } = e.data;
  if (navigator.locks.ready) await navigator.locks.ready;
  postMessage({ ready: true });
  const spans = [];
  for (let i = 0; i < n; i++) {
    await navigator.locks.request(name, () => {
      const s = now();
      while (now() - s < 0.3) {}
      spans.push([s, now()]);
    });
  }
  postMessage({ spans });
};
