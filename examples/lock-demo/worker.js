// The same Rust code (lock_demo.js) in a dedicated module worker of the page: over the
// crate's own polyfill with ?crate (the browser's own deleted first), over the JS package's
// with ?polyfill (the ESM polyfill installed: a worker cannot load the classic script into
// a module worker), else over the browser's own. The page sends "take", "give" and "status".
const params = new URL(location.href).searchParams;
if (params.has("crate") || params.has("polyfill")) {
  delete WorkerNavigator.prototype.locks;
  delete self.LockManager;
  delete self.Lock;
}
// ?crate: the Rust code's LockManager::get() installs the crate's own polyfill.
if (params.has("polyfill")) {
  const { install } = await import("/dist/index.js");
  install();
  await navigator.locks.ready;
}
const { default: init, take, give_back, status } = await import("/build/lock-demo/lock_demo.js");
await init({ module_or_path: "/build/lock-demo/lock_demo_bg.wasm" });
onmessage = async (e) => {
  try {
    if (e.data === "take") await take();
    else if (e.data === "give") await give_back();
    postMessage({ what: e.data, status: await status() });
  } catch (err) {
    postMessage({ what: e.data, error: String(err) });
  }
};
postMessage({ what: "ready", status: await status() });
