// Entry of dist/web-locks-arbiter.js, the second classic script, which sits next to
// dist/web-locks.js: the full wasm module (client and arbiter, inlined) and the arbiter's
// glue (arbiter.js).
// - Started as a SharedWorker named PREFIX (the package's windows start it so), it hosts
//   the origin's arbiter.
// - Loaded by web-locks.js in a context that has to host the arbiter, it hands web-locks.js
//   `{ load, runArbiter }` under HOOK, and its arbiter.js uses web-locks.js's coord.js
//   (scripts/build.mjs resolves "./coord.js" to the one found under HOOK, or its own).
import { hostSharedWorker, runArbiter } from "./arbiter.js";
import { fromHex, HOOK } from "./hex.js";
import initWasm, * as glue from "../build/pkg/web_locks_wasm.js";

let loading = null;
const load = () =>
  loading ||
  (loading = Promise.resolve().then(async () => {
    // After the caller's synchronous part: the SharedWorker registers for connections and
    // starts its election before spending milliseconds here.
    await initWasm({ module_or_path: fromHex(__WASM_HEX__) });
    return glue;
  }));

const g = globalThis;
const hook = g[HOOK];
if (hook) hook.full = { load, runArbiter };
else hostSharedWorker(load);
