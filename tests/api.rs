//! Browser tests of the Rust API (src/api.rs; `wasm-pack test --headless --chrome`), over
//! the browser's own `navigator.locks` in a window (tests/api_worker.rs: in a dedicated
//! worker; the cases are in tests/common/api_cases.rs).
#![cfg(all(target_arch = "wasm32", feature = "api"))]

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use wasm_bindgen_test::*;
use web_locks_wasm::{LockError, LockManager, LockMode, LockOptions};

wasm_bindgen_test_configure!(run_in_browser);

/// The manager under test: this global's own.
fn locks() -> LockManager {
    LockManager::get().unwrap()
}
const POLYFILL: bool = false;

include!("common/api_cases.rs");

#[wasm_bindgen_test]
fn a_window_has_the_browsers_own_manager() {
    assert!(!LockManager::get().unwrap().is_local());
}
