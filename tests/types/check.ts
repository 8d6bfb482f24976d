// Type-checks the published declarations against TypeScript's own lib.dom types:
// `tsc -p tests/types` must pass (it is run by the README's test command).
import { install, Lock, locks, LockManager, polyfill } from "../../dist/index.js";
import type { LockManagerSnapshot, LockOptions } from "../../dist/index.js";
import "../../dist/auto.js";

const asDom: globalThis.LockManager = locks;
const fromDom: LockManager = navigator.locks;
const ours: globalThis.LockManager = polyfill.locks;
const ready: Promise<void> = polyfill.locks.ready;
const options: LockOptions = { mode: "shared", ifAvailable: true };
const n: Promise<number> = locks.request("a", options, (lock: Lock | null) => (lock ? lock.name.length : 0));
const s: Promise<string> = locks.request("b", (lock) => (lock === null ? "" : lock.mode));
const q: Promise<LockManagerSnapshot> = locks.query();
const installed: globalThis.LockManager | null = install({ force: true });
const isLock = (x: unknown): x is Lock => x instanceof Lock;
const isManager = (x: unknown): x is LockManager => x instanceof LockManager;
// @ts-expect-error mode is a LockMode
locks.request("c", { mode: "bogus" }, () => {});
// @ts-expect-error force is a boolean
install({ force: "yes" });
install({ frames: false, workerUrl: new URL("https://example.test/web-locks-arbiter.js"), nonce: "n" });
install({ frames: "/static/web-locks.js" });
// @ts-expect-error frames is a URL string or a boolean
install({ frames: 1 });

export { asDom, fromDom, ours, ready, n, s, q, installed, isLock, isManager };
