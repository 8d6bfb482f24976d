//! web-locks-wasm: a spec-exact Web Locks API (`navigator.locks`) for every tab, frame and
//! worker of an origin, also where the browser has none.
//!
//! Layers (see the README's "How it works"):
//! - [`engine`]: the spec's lock manager, pure Rust (no clock, no I/O, no panics);
//! - [`protocol`]: the messages between a context and the arbiter that owns the engine;
//! - [`arbiter`]: owns one engine and maps connected clients onto it, sans-IO;
//! - `bindings` (wasm32 only): the `LockManager` that script calls.

pub mod arbiter;
pub mod engine;
pub mod protocol;

#[cfg(target_arch = "wasm32")]
pub mod bindings;
