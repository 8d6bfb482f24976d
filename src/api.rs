//! The Rust API (feature `api`, on `wasm32`): the origin's locks for Rust wasm apps, with
//! RAII guards, over the manager of this global (`navigator.locks`, in a window or a
//! worker): the browser's own, or this package's polyfill where it is installed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), web_locks_wasm::LockError> {
//! use web_locks_wasm::{LockManager, LockMode, LockOptions};
//!
//! let locks = LockManager::get()?;
//! let guard = locks.lock("settings").await?; // exclusive; waits its turn
//! // ... read, change and save the settings ...
//! drop(guard); // released (`guard.release().await` waits until it is)
//!
//! let readers = LockOptions { mode: LockMode::Shared, ..LockOptions::default() };
//! if let Some(g) = locks.lock_with("cache", &readers).await? {
//!     assert!(g.is_held());
//! }
//! # Ok(()) }
//! ```
//!
//! The callback-scoped JS API becomes a guard as follows: the lock's callback returns a
//! promise that settles when the guard is released or dropped. A future dropped before
//! its lock was granted aborts its request; one dropped while the grant is on its way
//! releases the lock as soon as it arrives. Nothing is left in `query()` once every guard
//! and future is gone.
//!
//! With the cargo feature `polyfill` (on by default), the crate carries this package's
//! polyfill as a wasm-bindgen snippet (`gen/polyfill.js`, the full wasm module inlined):
//! [`LockManager::polyfill`] starts it, and [`LockManager::get`] installs it where the
//! global has no lock manager, so that every tab, frame and worker of the origin shares one
//! lock space with no extra step from the app. Its arbiter's SharedWorker is that same
//! file (a module worker) at the URL wasm-bindgen gave it; [`set_worker_url`] moves it.
//! `holder` and `ttl` (the lock services) work over this polyfill, and are refused with
//! [`LockError::NotSupported`] over the browser's own manager and in local mode.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;
#[cfg(feature = "local")]
use core::cell::RefCell;
use core::fmt;
use core::future::Future;
#[cfg(feature = "local")]
use core::pin::Pin;
#[cfg(feature = "local")]
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use js_sys::{Array, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::engine::LockMode;
#[cfg(feature = "local")]
use crate::engine::{ClientId, Effect, Engine, RequestFlags, RequestId, RequestKey};
#[cfg(feature = "local")]
use crate::map::IdMap;

// The polyfill itself (feature `polyfill`): js/rust.js, built into gen/polyfill.js by
// scripts/build.mjs, with the package's full wasm module inlined.
#[cfg(feature = "polyfill")]
#[wasm_bindgen(module = "/gen/polyfill.js")]
extern "C" {
    fn ours() -> JsValue;
    #[wasm_bindgen(js_name = installOurs)]
    fn install_ours() -> JsValue;
    #[wasm_bindgen(js_name = services)]
    fn our_services() -> JsValue;
    #[wasm_bindgen(js_name = setWorkerUrl)]
    fn set_worker_url_js(url: Option<String>);
    fn shareable() -> bool;
}

/// Where the arbiter's SharedWorker script is, for this crate's polyfill (feature
/// `polyfill`); call it before the first lock. By default it is the polyfill's own snippet
/// file, `snippets/web-locks-wasm-<hash>/gen/polyfill.js` next to the app's JS glue, which
/// is served as is by `wasm-pack build --target web` layouts and the wasm-pack test server
/// (and trunk, which copies snippets the same way). A bundler that merges the snippet into the app's bundle needs this call, with
/// the URL where it serves a copy of that file. `None`: no SharedWorker (a tab hosts the
/// arbiter, elected among the tabs).
///
/// ```no_run
/// web_locks_wasm::set_worker_url(Some("/static/web-locks-polyfill.js"));
/// ```
#[cfg(feature = "polyfill")]
pub fn set_worker_url(url: Option<&str>) {
    set_worker_url_js(url.map(String::from));
}

#[wasm_bindgen(inline_js = r#"
export function manager() {
  const n = globalThis.navigator;
  return n && n.locks ? n.locks : null;
}
export function isPolyfill(m) {
  return m !== null && "ready" in m;
}
// One request, driven from Rust: `granted` resolves to the Lock (or null with
// ifAvailable); `done` is request()'s own promise; release() ends a held lock; cancel()
// withdraws a waiting request, or releases the lock at once if the grant is on its way.
// The request's options, with `ctl` (our cancel) merged into its signal, and `extra`
// signals (a timeout) too. The spec refuses a signal with steal or ifAvailable: pass the
// app's own, if any, so that it gets the spec's error; never add ours there.
function options(shared, ifAvailable, steal, signal, ctl, extra) {
  const opts = { mode: shared ? "shared" : "exclusive", ifAvailable, steal };
  if (steal || ifAvailable) {
    if (signal) opts.signal = signal;
  } else {
    const parts = [ctl.signal, ...(signal ? [signal] : []), ...extra];
    opts.signal = parts.length > 1 ? AbortSignal.any(parts) : ctl.signal;
  }
  return opts;
}
export function start(locks, name, shared, ifAvailable, steal, signal, timeout) {
  const h = { held: false, cancelled: false, release: null };
  const ctl = new AbortController();
  const opts = options(shared, ifAvailable, steal, signal, ctl, timeout >= 0 ? [AbortSignal.timeout(timeout)] : []);
  let grant;
  h.granted = new Promise((res) => (grant = res));
  h.done = locks.request(name, opts, (lock) => {
    if (!lock) return void grant(null);
    if (h.cancelled) return undefined;
    h.held = true;
    return new Promise((res) => {
      h.release = () => {
        h.held = false;
        res();
      };
      grant(lock);
    });
  });
  const over = () => (h.held = false);
  h.done.then(over, over);
  h.first = Promise.race([h.granted, h.done.then(() => null)]);
  h.cancel = () => {
    h.cancelled = true;
    if (h.release) h.release();
    else ctl.abort(new DOMException("The lock future was dropped.", "AbortError"));
  };
  return h;
}
// The same shape over the lock services of this package's polyfill (the classic script's
// `self.WebLocksWasm.acquire`), for `holder` and `ttl`.
export function services(locks) {
  const s = globalThis.WebLocksWasm;
  return isPolyfill(locks) && s && typeof s.acquire === "function" ? s : null;
}
export function startService(s, name, shared, ifAvailable, steal, signal, timeout, holder, ttl) {
  const h = { cancelled: false, handle: null };
  const ctl = new AbortController();
  // The services have their own wait limit (`timeout`: TimeoutError, as here).
  const opts = options(shared, ifAvailable, steal, signal, ctl, []);
  if (typeof holder === "string") opts.holder = holder;
  if (ttl >= 0) opts.ttl = ttl;
  if (timeout >= 0) opts.timeout = timeout;
  let over;
  h.done = new Promise((r) => (over = r));
  h.first = s.acquire(name, opts).then(
    (handle) => {
      if (h.cancelled) {
        handle.release().then(over);
        return null;
      }
      h.handle = handle;
      // Taken away (a steal, the lease): the guard is no longer held.
      handle.signal.addEventListener("abort", () => over(), { once: true });
      return handle;
    },
    (e) => {
      over();
      if (e && e.name === "LockHeldError") return null;
      throw e;
    },
  );
  Object.defineProperty(h, "held", { get: () => !!h.handle && h.handle.held });
  h.release = () => h.handle && h.handle.release().then(over);
  h.cancel = () => {
    h.cancelled = true;
    if (h.handle) h.release();
    else ctl.abort(new DOMException("The lock future was dropped.", "AbortError"));
  };
  return h;
}
export function release(h) {
  if (h.release) h.release();
  return h.done.then(() => {}, () => {});
}
export function cancel(h) { h.cancel(); }
export function held(h) { return h.held; }
export function first(h) { return h.first; }
export function lockMode(lock) { return lock.mode; }
export function after(ms, f) { return setTimeout(f, ms); }
export function clearAfter(t) { clearTimeout(t); }
export function onAbort(signal, f) { signal.addEventListener("abort", f, { once: true }); return f; }
export function offAbort(signal, f) { signal.removeEventListener("abort", f); }
export function errorName(e) { return e instanceof DOMException || (e && e.name === "DeadlockError") ? e.name : ""; }
export function errorMessage(e) { return e && typeof e.message === "string" ? e.message : String(e); }
"#)]
extern "C" {
    fn manager() -> JsValue;
    #[wasm_bindgen(js_name = isPolyfill)]
    fn is_polyfill(m: &JsValue) -> bool;
    fn start(
        locks: &JsValue,
        name: &str,
        shared: bool,
        if_available: bool,
        steal: bool,
        signal: Option<web_sys::AbortSignal>,
        timeout: f64,
    ) -> JsValue;
    fn services(locks: &JsValue) -> JsValue;
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = startService)]
    fn start_service(
        services: &JsValue,
        name: &str,
        shared: bool,
        if_available: bool,
        steal: bool,
        signal: Option<web_sys::AbortSignal>,
        timeout: f64,
        holder: Option<String>,
        ttl: f64,
    ) -> JsValue;
    fn release(h: &JsValue) -> Promise;
    fn cancel(h: &JsValue);
    fn held(h: &JsValue) -> bool;
    fn first(h: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = lockMode)]
    fn lock_mode(lock: &JsValue) -> String;
    #[cfg(feature = "local")]
    fn after(ms: f64, f: &Closure<dyn FnMut()>) -> JsValue;
    #[cfg(feature = "local")]
    #[wasm_bindgen(js_name = clearAfter)]
    fn clear_after(t: &JsValue);
    #[cfg(feature = "local")]
    #[wasm_bindgen(js_name = onAbort)]
    fn on_abort(signal: &web_sys::AbortSignal, f: &Closure<dyn FnMut()>) -> JsValue;
    #[cfg(feature = "local")]
    #[wasm_bindgen(js_name = offAbort)]
    fn off_abort(signal: &web_sys::AbortSignal, f: &JsValue);
    #[wasm_bindgen(js_name = errorName)]
    fn error_name(e: &JsValue) -> String;
    #[wasm_bindgen(js_name = errorMessage)]
    fn error_message(e: &JsValue) -> String;
}

/// Why a lock could not be had.
///
/// ```no_run
/// # async fn demo(locks: web_locks_wasm::LockManager) {
/// use web_locks_wasm::LockError;
/// match locks.lock("-reserved").await {
///     Err(LockError::NotSupported(msg)) => assert!(msg.contains("-")),
///     other => panic!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LockError {
    /// No lock manager can be reached from this global.
    Unsupported,
    /// The spec's `NotSupportedError` (a name starting with `-`, a mode not allowed with
    /// `steal`, …), or an option this manager cannot honour (`holder`, `ttl`).
    NotSupported(String),
    /// The spec's `InvalidStateError`: this document is not fully active.
    InvalidState,
    /// The spec's `SecurityError`: no lock manager for this (opaque) origin; or storage
    /// is denied here (the browser's own refuses then, and so does the polyfill, whose
    /// lock space needs IndexedDB: see the README's "Limits and pitfalls").
    Security,
    /// The request's signal aborted it before it was granted; its reason.
    Aborted(JsValue),
    /// `LockOptions::timeout` ran out before the lock was granted.
    Timeout,
    /// The lock was stolen (`steal`) before it could be used.
    Stolen,
    /// A deadlock was reported (lock services only).
    Deadlock,
    /// Anything else the manager threw or rejected with.
    Js(JsValue),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Unsupported => f.write_str("no lock manager is available here"),
            LockError::NotSupported(m) => write!(f, "not supported: {m}"),
            LockError::InvalidState => f.write_str("the document is not fully active"),
            LockError::Security => f.write_str("locks are not available to this origin"),
            LockError::Aborted(_) => f.write_str("the request was aborted"),
            LockError::Timeout => f.write_str("the lock was not granted in time"),
            LockError::Stolen => f.write_str("the lock was stolen"),
            LockError::Deadlock => f.write_str("deadlock"),
            LockError::Js(e) => write!(f, "{}", error_message(e)),
        }
    }
}

impl core::error::Error for LockError {}

impl LockError {
    fn from_js(e: JsValue, signal: Option<&web_sys::AbortSignal>) -> LockError {
        match error_name(&e).as_str() {
            "NotSupportedError" => LockError::NotSupported(error_message(&e)),
            "InvalidStateError" => LockError::InvalidState,
            "SecurityError" => LockError::Security,
            "TimeoutError" => LockError::Timeout,
            "DeadlockError" => LockError::Deadlock,
            _ if signal.is_some_and(|s| s.aborted() && s.reason() == e) => LockError::Aborted(e),
            _ => LockError::Js(e),
        }
    }
}

/// How to ask for a lock: the spec's `LockOptions`, plus a timeout, and the lock services'
/// `holder` and `ttl` (over this package's polyfill only, see [`LockError::NotSupported`]).
///
/// ```
/// use web_locks_wasm::{LockMode, LockOptions};
/// let shared = LockOptions { mode: LockMode::Shared, ..LockOptions::default() };
/// assert!(!shared.if_available && shared.timeout.is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct LockOptions {
    pub mode: LockMode,
    /// Grant only if available at once; else `lock_with` resolves to `None`.
    pub if_available: bool,
    /// Take the lock from its holders (exclusive only).
    pub steal: bool,
    /// Aborts the request while it waits ([`LockError::Aborted`]).
    pub signal: Option<web_sys::AbortSignal>,
    /// Stop waiting after this long ([`LockError::Timeout`]).
    pub timeout: Option<Duration>,
    /// The holder's label (lock services: over this package's polyfill only).
    pub holder: Option<String>,
    /// A lease (lock services: over this package's polyfill only): the lock is released
    /// this long after the grant even though the guard lives; `is_held()` then turns false.
    pub ttl: Option<Duration>,
}

/// One entry of a [`LockSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    pub name: String,
    pub mode: LockMode,
    pub client_id: String,
    /// The request's label, when it was made with one (`LockOptions::holder`, the lock
    /// services); `None` otherwise, and always over the browser's own manager.
    pub holder: Option<String>,
}

/// What [`LockManager::query`] returns: held locks and waiting requests, origin-wide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockSnapshot {
    pub held: Vec<LockInfo>,
    pub pending: Vec<LockInfo>,
}

/// A granted lock, held until [`LockGuard::release`] or drop.
///
/// ```no_run
/// # async fn demo(locks: web_locks_wasm::LockManager) -> Result<(), web_locks_wasm::LockError> {
/// let g = locks.lock("a").await?;
/// assert_eq!(g.name(), "a");
/// g.release().await; // settles once the manager has processed the release
/// # Ok(()) }
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    name: String,
    mode: LockMode,
    held: Held,
    released: Rc<Cell<bool>>,
}

/// What a guard holds: a request of a JS `LockManager`, or a lock of the local engine.
enum Held {
    Js(JsValue),
    #[cfg(feature = "local")]
    Local(Rc<RefCell<Local>>, RequestKey),
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").field("name", &self.name).field("mode", &self.mode).finish()
    }
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lock's mode.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// Whether the lock is still held: `false` once released, or stolen by another
    /// request with `steal`.
    pub fn is_held(&self) -> bool {
        !self.released.get()
            && match &self.held {
                Held::Js(h) => held(h),
                #[cfg(feature = "local")]
                Held::Local(local, key) => local.borrow().engine.is_held(*key),
            }
    }

    /// Releases the lock and waits until the manager has processed it.
    pub async fn release(self) {
        self.released.set(true);
        match &self.held {
            Held::Js(h) => {
                let _ = JsFuture::from(release(h)).await;
            }
            #[cfg(feature = "local")]
            Held::Local(local, key) => Local::release(local, *key),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released.replace(true) {
            match &self.held {
                Held::Js(h) => {
                    let _ = release(h);
                }
                #[cfg(feature = "local")]
                Held::Local(local, key) => Local::release(local, *key),
            }
        }
    }
}

/// Cancels a request whose future was dropped before it completed.
struct Pending {
    handle: JsValue,
    armed: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.armed {
            cancel(&self.handle);
        }
    }
}

/// The lock manager of this global (window or worker).
///
/// ```no_run
/// # async fn demo() -> Result<(), web_locks_wasm::LockError> {
/// let locks = web_locks_wasm::LockManager::get()?;
/// let n = locks.with_lock("counter", async { 41 + 1 }).await?;
/// assert_eq!(n, 42);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LockManager {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    /// A JS `LockManager`: the browser's own, or the package's polyfill.
    Js(JsValue),
    /// The engine of this crate, in this context only (local mode).
    #[cfg(feature = "local")]
    Local(Rc<RefCell<Local>>),
}

impl fmt::Debug for LockManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_local() { "LockManager(local)" } else { "LockManager(navigator.locks)" })
    }
}

#[cfg(feature = "local")]
std::thread_local! {
    /// This context's local lock space (local mode): one for every manager of the context.
    static LOCAL: Rc<RefCell<Local>> = Rc::new(RefCell::new(Local::default()));
}

impl LockManager {
    /// This global's `navigator.locks`: the browser's own, or a polyfill the page
    /// installed. Where there is neither, this crate's polyfill (feature `polyfill`),
    /// installed on the global so that the page's JS shares it, where it can reach the
    /// origin's other contexts (`BroadcastChannel`; in a browser without usable IndexedDB
    /// it refuses requests with [`LockError::Security`] rather than risk two holders);
    /// else this crate's engine in local mode (Node): exact locks among this context's own
    /// requests, shared with no other context ([`LockManager::is_local`]).
    pub fn get() -> Result<LockManager, LockError> {
        let locks = manager();
        if !locks.is_null() {
            return Ok(LockManager { backend: Backend::Js(locks) });
        }
        #[cfg(feature = "polyfill")]
        if shareable() {
            return Ok(LockManager { backend: Backend::Js(install_ours()) });
        }
        #[cfg(feature = "local")]
        return Ok(LockManager { backend: Backend::Local(LOCAL.with(Rc::clone)) });
        #[cfg(not(feature = "local"))]
        Err(LockError::Unsupported)
    }

    /// This package's polyfill, also where the browser has its own: the same lock space as
    /// the JS package's polyfill in every other tab, frame and worker. The one the page
    /// installed on this global, if any (`dist/web-locks.js`, or `install()` of the npm
    /// package); else this crate's own (feature `polyfill`; not installed on the global),
    /// where it can reach other contexts; else, where the global has no lock manager at
    /// all, local mode as with [`LockManager::get`]; else [`LockError::Unsupported`].
    pub fn polyfill() -> Result<LockManager, LockError> {
        let locks = manager();
        if !locks.is_null() && is_polyfill(&locks) {
            return Ok(LockManager { backend: Backend::Js(locks) });
        }
        #[cfg(feature = "polyfill")]
        if shareable() {
            return Ok(LockManager { backend: Backend::Js(ours()) });
        }
        if locks.is_null() {
            return LockManager::get();
        }
        Err(LockError::Unsupported)
    }

    /// Whether this manager is this package's polyfill (the page's, or this crate's own),
    /// rather than the browser's own or local mode.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), web_locks_wasm::LockError> {
    /// let locks = web_locks_wasm::LockManager::get()?;
    /// let kind = if locks.is_polyfill() { "polyfill" } else if locks.is_local() { "local" } else { "native" };
    /// # Ok(()) }
    /// ```
    pub fn is_polyfill(&self) -> bool {
        match &self.backend {
            Backend::Js(locks) => is_polyfill(locks),
            #[cfg(feature = "local")]
            Backend::Local(_) => false,
        }
    }

    /// Whether this manager is local: its locks exclude this context's other requests
    /// only (no other tab, frame or worker sees them).
    pub fn is_local(&self) -> bool {
        #[cfg(feature = "local")]
        return matches!(self.backend, Backend::Local(_));
        #[cfg(not(feature = "local"))]
        false
    }

    /// An exclusive lock on `name`; waits until it is granted.
    pub async fn lock(&self, name: &str) -> Result<LockGuard, LockError> {
        match self.lock_with(name, &LockOptions::default()).await? {
            Some(g) => Ok(g),
            None => Err(LockError::Js(JsValue::NULL)), // unreachable: not if_available
        }
    }

    /// An exclusive lock on `name` if it is available now (`ifAvailable`), else `None`.
    pub async fn try_lock(&self, name: &str) -> Result<Option<LockGuard>, LockError> {
        self.lock_with(name, &LockOptions { if_available: true, ..LockOptions::default() }).await
    }

    /// A lock on `name` as `options` say; `None` only with `if_available`.
    #[cfg_attr(not(feature = "local"), allow(clippy::infallible_destructuring_match))]
    pub async fn lock_with(&self, name: &str, options: &LockOptions) -> Result<Option<LockGuard>, LockError> {
        let service = options.holder.is_some() || options.ttl.is_some();
        let refused = || {
            Err(LockError::NotSupported(String::from(
                "holder and ttl need the lock services of this package's polyfill",
            )))
        };
        let locks = match &self.backend {
            Backend::Js(locks) => locks,
            #[cfg(feature = "local")]
            Backend::Local(_) if service => return refused(),
            #[cfg(feature = "local")]
            Backend::Local(local) => return Local::lock(local, name, options).await,
        };
        let timeout = options.timeout.map_or(-1.0, |t| t.as_secs_f64() * 1000.0);
        let shared = options.mode == LockMode::Shared;
        let handle = if service {
            #[cfg(feature = "polyfill")]
            let s = if js_sys::Object::is(locks, &ours()) { our_services() } else { services(locks) };
            #[cfg(not(feature = "polyfill"))]
            let s = services(locks);
            if s.is_null() {
                return refused();
            }
            let ttl = options.ttl.map_or(-1.0, |t| t.as_secs_f64() * 1000.0);
            start_service(
                &s,
                name,
                shared,
                options.if_available,
                options.steal,
                options.signal.clone(),
                timeout,
                options.holder.clone(),
                ttl,
            )
        } else {
            start(locks, name, shared, options.if_available, options.steal, options.signal.clone(), timeout)
        };
        let mut pending = Pending { handle, armed: true };
        let lock = JsFuture::from(first(&pending.handle)).await;
        pending.armed = false;
        let lock = lock.map_err(|e| LockError::from_js(e, options.signal.as_ref()))?;
        if lock.is_null() || lock.is_undefined() {
            return Ok(None);
        }
        let mode = if lock_mode(&lock) == "shared" { LockMode::Shared } else { LockMode::Exclusive };
        Ok(Some(LockGuard {
            name: String::from(name),
            mode,
            held: Held::Js(pending.handle.clone()),
            released: Rc::new(Cell::new(false)),
        }))
    }

    /// Runs `f` holding an exclusive lock on `name`; releases it when `f` is done.
    pub async fn with_lock<T, F: Future<Output = T>>(&self, name: &str, f: F) -> Result<T, LockError> {
        let guard = self.lock(name).await?;
        let v = f.await;
        guard.release().await;
        Ok(v)
    }

    /// The origin's held locks and waiting requests (`navigator.locks.query()`).
    #[cfg_attr(not(feature = "local"), allow(clippy::infallible_destructuring_match))]
    pub async fn query(&self) -> Result<LockSnapshot, LockError> {
        let locks = match &self.backend {
            Backend::Js(locks) => locks,
            #[cfg(feature = "local")]
            Backend::Local(local) => return Ok(local.borrow().snapshot()),
        };
        let query: js_sys::Function = Reflect::get(locks, &"query".into()).map_err(LockError::Js)?.into();
        let p: Promise = query.call0(locks).map_err(|e| LockError::from_js(e, None))?.into();
        let snap = JsFuture::from(p).await.map_err(|e| LockError::from_js(e, None))?;
        let list = |key: &str| -> Vec<LockInfo> {
            let arr: Array = Reflect::get(&snap, &key.into()).map(|v| Array::from(&v)).unwrap_or_default();
            arr.iter()
                .map(|i| {
                    let s = |k: &str| Reflect::get(&i, &k.into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
                    LockInfo {
                        name: s("name"),
                        mode: if s("mode") == "shared" { LockMode::Shared } else { LockMode::Exclusive },
                        client_id: s("clientId"),
                        holder: Reflect::get(&i, &"holder".into()).ok().and_then(|v| v.as_string()),
                    }
                })
                .collect()
        };
        Ok(LockSnapshot { held: list("held"), pending: list("pending") })
    }
}

// ---- local mode: this crate's engine, in this context -----------------------------------

#[cfg(feature = "local")]
/// The local lock space: the engine, and how each waiting request ended.
#[derive(Default)]
struct Local {
    engine: Engine,
    next: u64,
    /// Requests not yet answered: what happened to them, and who waits to know.
    slots: IdMap<u64, Slot>,
}

#[cfg(feature = "local")]
#[derive(Default)]
struct Slot {
    outcome: Option<Outcome>,
    waker: Option<Waker>,
}

#[cfg(feature = "local")]
enum Outcome {
    Granted,
    Unavailable,
    Failed(LockError),
}

#[cfg(feature = "local")]
const ME: ClientId = ClientId(0);

#[cfg(feature = "local")]
impl Local {
    fn key(id: u64) -> RequestKey {
        RequestKey { client: ME, request: RequestId(id) }
    }

    /// Applies what an engine operation decided: grants and `ifAvailable` answers wake
    /// their futures (a steal's victims learn it from `LockGuard::is_held`).
    fn apply(&mut self, effects: Vec<Effect>) {
        for e in effects {
            let (k, outcome) = match e {
                Effect::Granted(k) => (k, Outcome::Granted),
                Effect::Unavailable(k) => (k, Outcome::Unavailable),
                Effect::Stolen(_) | Effect::Queued(..) => continue,
            };
            if let Some(slot) = self.slots.get_mut(k.request.0) {
                slot.outcome = Some(outcome);
                if let Some(w) = slot.waker.take() {
                    w.wake();
                }
            }
        }
    }

    fn release(local: &Rc<RefCell<Local>>, key: RequestKey) {
        let mut l = local.borrow_mut();
        let mut effects = Vec::new();
        l.engine.release(key, &mut effects);
        l.apply(effects);
    }

    /// Ends a request that still waits (its timeout ran out, or its signal fired).
    fn fail(local: &Rc<RefCell<Local>>, id: u64, error: LockError) {
        let mut l = local.borrow_mut();
        if !l.engine.is_queued(Local::key(id)) {
            return;
        }
        let mut effects = Vec::new();
        l.engine.release(Local::key(id), &mut effects);
        if let Some(slot) = l.slots.get_mut(id) {
            slot.outcome = Some(Outcome::Failed(error));
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
        l.apply(effects);
    }

    fn snapshot(&self) -> LockSnapshot {
        let snap = self.engine.snapshot();
        let info = |i: &crate::engine::LockInfo| LockInfo {
            name: String::from_utf16_lossy(&i.name),
            mode: i.mode,
            client_id: String::from("local"),
            holder: None,
        };
        LockSnapshot { held: snap.held.iter().map(info).collect(), pending: snap.pending.iter().map(info).collect() }
    }

    /// `request()` on the local engine, with the spec's checks in order (R-18).
    async fn lock(local: &Rc<RefCell<Local>>, name: &str, o: &LockOptions) -> Result<Option<LockGuard>, LockError> {
        let not_supported = |m: &str| Err(LockError::NotSupported(String::from(m)));
        if name.starts_with('-') {
            return not_supported("Names cannot start with '-'.");
        }
        if o.steal && o.if_available {
            return not_supported("The 'steal' and 'ifAvailable' options cannot be used together.");
        }
        if o.steal && o.mode != LockMode::Exclusive {
            return not_supported("The 'steal' option may only be used with 'exclusive' locks.");
        }
        if o.signal.is_some() && o.steal {
            return not_supported("The 'signal' and 'steal' options cannot be used together.");
        }
        if o.signal.is_some() && o.if_available {
            return not_supported("The 'signal' and 'ifAvailable' options cannot be used together.");
        }
        if let Some(signal) = &o.signal {
            if signal.aborted() {
                return Err(LockError::Aborted(signal.reason()));
            }
        }
        let id = {
            let mut l = local.borrow_mut();
            l.next += 1;
            let id = l.next;
            l.slots.insert(id, Slot::default());
            let units: Vec<u16> = name.encode_utf16().collect();
            let flags = RequestFlags { if_available: o.if_available, steal: o.steal };
            let mut effects = Vec::new();
            let _ = l.engine.request(Local::key(id), units.into(), o.mode, flags, &mut effects);
            l.apply(effects);
            id
        };
        let mut wait = LocalWait { local: local.clone(), id, done: false, timer: None, listener: None };
        if let Some(t) = o.timeout {
            let l2 = local.clone();
            let fired = Closure::once(move || Local::fail(&l2, id, LockError::Timeout));
            let token = after(t.as_secs_f64() * 1000.0, &fired);
            wait.timer = Some((token, fired));
        }
        if let Some(signal) = &o.signal {
            let (l2, s2) = (local.clone(), signal.clone());
            let fired = Closure::once(move || Local::fail(&l2, id, LockError::Aborted(s2.reason())));
            let token = on_abort(signal, &fired);
            wait.listener = Some((signal.clone(), token, fired));
        }
        match (&mut wait).await {
            Outcome::Granted => Ok(Some(LockGuard {
                name: String::from(name),
                mode: o.mode,
                held: Held::Local(local.clone(), Local::key(id)),
                released: Rc::new(Cell::new(false)),
            })),
            Outcome::Unavailable => Ok(None),
            Outcome::Failed(e) => Err(e),
        }
    }
}

#[cfg(feature = "local")]
type Callback = Closure<dyn FnMut()>;

#[cfg(feature = "local")]
/// A local request's future. Dropped before it is answered, it withdraws the request (or
/// gives back a grant that was not picked up).
struct LocalWait {
    local: Rc<RefCell<Local>>,
    id: u64,
    done: bool,
    /// The timeout's timer, and its callback (kept alive while it may fire).
    timer: Option<(JsValue, Callback)>,
    /// The signal's abort listener, and its callback.
    listener: Option<(web_sys::AbortSignal, JsValue, Callback)>,
}

#[cfg(feature = "local")]
impl Future for &mut LocalWait {
    type Output = Outcome;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        let mut l = this.local.borrow_mut();
        let Some(slot) = l.slots.get_mut(this.id) else {
            return Poll::Ready(Outcome::Failed(LockError::Js(JsValue::NULL)));
        };
        match slot.outcome.take() {
            Some(o) => {
                l.slots.remove(this.id);
                this.done = true;
                Poll::Ready(o)
            }
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(feature = "local")]
impl Drop for LocalWait {
    fn drop(&mut self) {
        if let Some((token, _)) = &self.timer {
            clear_after(token);
        }
        if let Some((signal, token, _)) = &self.listener {
            off_abort(signal, token);
        }
        if !self.done {
            self.local.borrow_mut().slots.remove(self.id);
            Local::release(&self.local, Local::key(self.id));
        }
    }
}
