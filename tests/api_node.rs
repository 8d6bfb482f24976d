//! The Rust API tests of tests/api.rs, in Node (`wasm-pack test --node -- --test
//! api_node`): no `navigator.locks` there, so `LockManager::get()` is local mode.
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

/// The manager under test: this global's own.
fn locks() -> LockManager {
    LockManager::get().unwrap()
}
const POLYFILL: bool = false;

include!("common/api_cases.rs");

#[wasm_bindgen_test]
fn node_has_no_navigator_locks_so_get_is_local_mode() {
    assert!(LockManager::get().unwrap().is_local());
}
