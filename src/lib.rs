//! web-locks-wasm: a spec-exact Web Locks API (`navigator.locks`) for every tab, frame and
//! worker of an origin, also where the browser has none.
//!
//! Layers (see the README's "How it works"):
//! - [`engine`]: the spec's lock manager, pure Rust (no clock, no I/O, no panics);
//! - [`protocol`]: the messages between a context and the arbiter that owns the engine;
//! - [`arbiter`]: owns one engine and maps connected clients onto it, sans-IO;
//! - `bindings` (wasm32 only): the `LockManager` that script calls;
//! - `api` (wasm32, feature `api`): the async Rust API for Rust wasm apps: `LockManager`,
//!   `LockGuard`, `LockOptions`, `LockError`.

// The package's wasm module (feature `slim`, see Cargo.toml) links no standard library:
// panics then trap at once instead of formatting a message nobody reads.
#![cfg_attr(all(target_arch = "wasm32", feature = "slim", not(feature = "api")), no_std)]

extern crate alloc;

pub mod arbiter;
#[cfg(feature = "services")]
pub mod deadlock;
#[cfg_attr(not(any(test, feature = "bindings")), allow(dead_code))]
pub mod delegate;
pub mod engine;
#[cfg_attr(not(all(target_arch = "wasm32", feature = "slim", not(feature = "api"))), allow(dead_code))]
mod heap;
mod map;
pub mod protocol;

#[cfg(all(target_arch = "wasm32", feature = "bindings"))]
pub mod bindings;

#[cfg(all(target_arch = "wasm32", feature = "api"))]
pub mod api;
#[cfg(all(target_arch = "wasm32", feature = "polyfill"))]
pub use api::set_worker_url;
#[cfg(all(target_arch = "wasm32", feature = "api"))]
pub use api::{LockError, LockGuard, LockInfo, LockManager, LockOptions, LockSnapshot};
#[cfg(all(target_arch = "wasm32", feature = "api"))]
pub use engine::LockMode;

#[cfg(all(target_arch = "wasm32", feature = "slim", not(feature = "api")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
