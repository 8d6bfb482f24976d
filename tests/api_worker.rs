//! The Rust API tests of tests/api.rs, in a dedicated worker (`WorkerNavigator.locks`).
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

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// The manager under test: this global's own.
fn locks() -> LockManager {
    LockManager::get().unwrap()
}
const POLYFILL: bool = false;

include!("common/api_cases.rs");

#[wasm_bindgen_test]
fn a_worker_has_the_browsers_own_manager() {
    assert!(!LockManager::get().unwrap().is_local());
}
