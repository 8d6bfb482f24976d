// The dedicated module worker of the bundled app: it imports the package like the page
// does (the bundler must bundle it as a worker, and the full wasm module, which a worker
// loads to be able to host the arbiter, must be found from the worker's bundle).
import { polyfill } from "web-locks-wasm";

const L = polyfill.locks;
const releases = new Map();
const ops = {
  async ready() {
    const d = await L.ready;
    return { mode: d.mode, via: d.client && d.client.via, clientId: d.client && d.client.clientId };
  },
  // null when someone else holds `name`, else the name (released at once).
  try: (name) => L.request(name, { ifAvailable: true }, (lock) => lock && lock.name),
  // Waits for `name`, then releases it.
  wait: (name) => L.request(name, (lock) => lock.name),
  // Resolves once `name` is granted; it stays held until "release".
  hold: (name) =>
    new Promise((granted, failed) => {
      L.request(name, () => new Promise((release) => (releases.set(name, release), granted(name)))).catch(failed);
    }),
  release(name) {
    releases.get(name)();
    releases.delete(name);
    return name;
  },
  query: () => L.query(),
};
self.onmessage = async ({ data: [id, op, name] }) => {
  try {
    self.postMessage([id, true, await ops[op](name)]);
  } catch (e) {
    self.postMessage([id, false, String(e && e.stack ? e.stack : e)]);
  }
};
