// `import { acquire, status, LockService, LockBackend, LockHeldError, DeadlockError } from
// "web-locks-wasm/services"`: the lock services (js/services-api.js). Importing it touches
// no global and loads nothing; it makes this context's polyfill load the client module
// that has the services (a page that never imports this keeps the smaller one).
import "./index.js";
import { setLoader } from "./core.js";
import { installServicesHost } from "./services-host.js";

const load = async (full) => {
  const glue = full ? await import("./web_locks_wasm.js") : await import("./web_locks_services.js");
  const url = full
    ? new URL("./web_locks_wasm_bg.wasm", import.meta.url)
    : new URL("./web_locks_services_bg.wasm", import.meta.url);
  installServicesHost();
  await glue.default({ module_or_path: url });
  return glue;
};
setLoader(load, () => import("./arbiter.js").then((m) => m.runArbiter));

export * from "./services-api.js";
