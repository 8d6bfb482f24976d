// Type-checks web-locks-wasm/services' declarations (run by tests/types/tsconfig*.json).
import { acquire, DeadlockError, LockBackend, LockHeldError, LockService, SCRIPT_LOCK, status } from "../../dist/services.js";
import type { AcquireOptions, LockHandle, LockStatus } from "../../dist/services.js";

const options: AcquireOptions = { mode: "shared", holder: "Desk 1", ttl: 30000, timeout: 100, signal: new AbortController().signal };
const handle: Promise<LockHandle> = acquire("fader", options);
async function use(): Promise<[boolean, string | null, LockStatus]> {
  const h = await acquire("x");
  const renewed: boolean = await h.renew(1000);
  const s = await status("x");
  await h.release();
  return [renewed && h.held, h.holder, s];
}
const held = new LockHeldError("x", "Desk 2");
const code: "LOCK_HELD" = held.code;
const cycle = new DeadlockError([]).cycle.map((m) => m.clientId);
const lock = LockService.getScriptLock();
const tried: Promise<boolean> = lock.tryLock(100);
const has: boolean = lock.hasLock();
const backend = new LockBackend();
const got: Promise<boolean> = backend.acquire("cron", 30);
const id: string = backend.getLockId();
const script: "web-locks-wasm:script-lock" = SCRIPT_LOCK;
// @ts-expect-error holder is a string
acquire("y", { holder: 5 });

export { handle, use, code, cycle, tried, has, got, id, script };
