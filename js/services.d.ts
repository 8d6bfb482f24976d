// Types of "web-locks-wasm/services" (and of `self.WebLocksWasm` of the classic script).

/** The options of `acquire()`: `request()`'s, and the lock services' own. */
export interface AcquireOptions {
  mode?: LockMode;
  ifAvailable?: boolean;
  steal?: boolean;
  signal?: AbortSignal;
  /** Who holds it: reported by `query()` (`holder`), `status()` and `LockHeldError`. At most 1,024 UTF-16 units. */
  holder?: string;
  /** Stop waiting after this many ms (finite, >= 0): rejects with a `TimeoutError` `DOMException`. */
  timeout?: number;
  /** A lease (ms, > 0): released this long after the grant or the last `renew()`, even though its holder lives. */
  ttl?: number;
}

/** A lock held outside a callback (no public constructor). */
export interface LockHandle {
  readonly name: string;
  readonly mode: LockMode;
  readonly holder: string | null;
  /** `true` until released, stolen, expired, or lost with its context. */
  readonly held: boolean;
  /** Aborted when the lock is taken away without `release()`: `AbortError` (steal) or `TimeoutError` (lease). */
  readonly signal: AbortSignal;
  /** Releases the lock; settles once the release has been processed. Idempotent. */
  release(): Promise<void>;
  /** Runs the lease `ttl` ms from now (default: the ttl it was acquired with); `false` once not held. */
  renew(ttl?: number): Promise<boolean>;
  [Symbol.asyncDispose](): Promise<void>;
  [Symbol.dispose](): void;
}

// `await using` needs these symbols (lib esnext.disposable); declared here too, so that
// projects with an older `lib` type-check (the declarations merge with TypeScript's own).
declare global {
  interface SymbolConstructor {
    readonly asyncDispose: unique symbol;
    readonly dispose: unique symbol;
  }
}

/** The interface object of the handles (`instanceof LockHandle`); not constructible. */
export const LockHandle: { prototype: LockHandle; new (): never };

/** Requests a lock; resolves to its handle once granted. */
export function acquire(name: string, options?: AcquireOptions): Promise<LockHandle>;

export interface LockStatus {
  locked: boolean;
  mode: LockMode | null;
  holder: string | null;
  holders: number;
  pending: number;
  /** ms until the earliest lease deadline among the holders, or `null`. */
  expiresIn: number | null;
}

/** One name's state across the origin. */
export function status(name: string): Promise<LockStatus>;

/** `acquire()` with `ifAvailable` found the lock held. */
export class LockHeldError extends Error {
  constructor(lockName: string, holder?: string | null);
  readonly name: "LockHeldError";
  readonly code: "LOCK_HELD";
  readonly lockName: string;
  /** The label of one current holder, or `null`. */
  readonly holder: string | null;
}

export interface DeadlockMember {
  clientId: string;
  name: string;
  mode: LockMode;
  holder: string | null;
}

/** `acquire()` would have closed a cycle of requests waiting for each other. */
export class DeadlockError extends Error {
  constructor(cycle: DeadlockMember[]);
  readonly name: "DeadlockError";
  /** The cycle, the rejected request first. */
  readonly cycle: DeadlockMember[];
}

/** Apps Script's `Lock`: each object is an owner of its own. */
export interface ServiceLock {
  tryLock(timeoutInMillis: number): Promise<boolean>;
  waitLock(timeoutInMillis: number): Promise<void>;
  hasLock(): boolean;
  releaseLock(): void;
}

/** Apps Script's `LockService`. */
export const LockService: {
  /** A new `Lock` object on the one origin-wide name `SCRIPT_LOCK`. */
  getScriptLock(): ServiceLock;
  getLock(name: string): ServiceLock;
};

/** The name `LockService.getScriptLock()` locks. */
export const SCRIPT_LOCK: "web-locks-wasm:script-lock";

/** Drupal's lock backend: one owner; leases in seconds. */
export class LockBackend {
  constructor();
  getLockId(): string;
  acquire(name: string, timeout?: number): Promise<boolean>;
  lockMayBeAvailable(name: string): Promise<boolean>;
  wait(name: string, delay?: number): Promise<boolean>;
  release(name: string): Promise<void>;
  releaseAll(): Promise<void>;
}
