//! tests/api_polyfill.rs in a dedicated worker: the Rust API tests over this crate's own polyfill (feature `polyfill`:
//! gen/polyfill.js, started by `LockManager::polyfill()`), in a dedicated worker, beside the
//! browser's own manager; and across contexts: a second context (a nested module worker that
//! loads the same snippet, as another tab of the app would) shares its lock space.
#![cfg(all(target_arch = "wasm32", feature = "polyfill"))]

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

/// The manager under test: this crate's polyfill.
fn locks() -> LockManager {
    LockManager::polyfill().unwrap()
}
const POLYFILL: bool = true;

include!("common/api_cases.rs");

include!("common/api_polyfill_cases.rs");
