// Types reuse TypeScript's own lib.dom declarations (LockManager, Lock, LockOptions,
// LockManagerSnapshot), so code written against `navigator.locks` type-checks unchanged.

/** The browser's `navigator.locks` where it exists, else the polyfill's manager. */
export declare const locks: globalThis.LockManager;
/** The `LockManager` interface (no public constructor). */
export declare const LockManager: typeof globalThis.LockManager;
export type LockManager = globalThis.LockManager;
/** The `Lock` interface of granted locks (no public constructor). */
export declare const Lock: typeof globalThis.Lock;
export type Lock = globalThis.Lock;
export type LockOptions = globalThis.LockOptions;
export type LockMode = globalThis.LockMode;
export type LockInfo = globalThis.LockInfo;
export type LockManagerSnapshot = globalThis.LockManagerSnapshot;
export type LockGrantedCallback<T> = globalThis.LockGrantedCallback<T>;

export interface InstallOptions {
  /** Replace the browser's own `navigator.locks` too. Default: only where missing. */
  force?: boolean;
  /** The arbiter's SharedWorker script (`web-locks-arbiter.js`). Default: next to this module. */
  workerUrl?: string | URL;
  /**
   * Same-origin child realms that never load a script (about:blank, srcdoc, document.write,
   * `window.open("")`) get the polyfill from the classic script, `web-locks.js`: its URL
   * (default: next to `web-locks-arbiter.js`), or `false` to leave children alone.
   */
  frames?: boolean | string;
  /** The CSP nonce for the inline script run in child realms. Default: the page's first nonce. */
  nonce?: string;
}

/** Installs the polyfill on `navigator.locks` where missing (or always, with `force`). */
export declare function install(options?: InstallOptions): globalThis.LockManager | null;

/** The polyfill's own implementation, whether or not the browser has one. */
export declare const polyfill: {
  readonly locks: globalThis.LockManager & { readonly ready: Promise<void> };
  readonly LockManager: typeof globalThis.LockManager;
  readonly Lock: typeof globalThis.Lock;
};

declare global {
  interface LockManager {
    /** Only on the polyfill: resolves once its wasm module is ready. */
    readonly ready?: Promise<void>;
  }
}
