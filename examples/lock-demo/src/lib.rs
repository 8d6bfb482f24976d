//! Take the lock "demo" in this tab; every open tab shows who holds it and who waits, from
//! `query()` every 250 ms. The page (index.html) calls `take`, `give_back` and `status`.
use std::cell::RefCell;

use wasm_bindgen::prelude::*;
use web_locks_wasm::{LockGuard, LockManager, LockMode};

thread_local! {
    static GUARD: RefCell<Option<LockGuard>> = const { RefCell::new(None) };
}

fn locks() -> Result<LockManager, JsValue> {
    LockManager::get().map_err(|e| JsValue::from_str(&e.to_string()))
}

/// Waits for the lock "demo" and keeps it until `give_back`.
#[wasm_bindgen]
pub async fn take() -> Result<(), JsValue> {
    let guard = locks()?.lock("demo").await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    GUARD.with(|g| *g.borrow_mut() = Some(guard));
    Ok(())
}

/// Releases the lock, if this tab holds it.
#[wasm_bindgen]
pub async fn give_back() {
    let guard = GUARD.with(|g| g.borrow_mut().take());
    if let Some(g) = guard {
        g.release().await;
    }
}

/// One line per held lock and waiting request on "demo": who (clientId) and how.
#[wasm_bindgen]
pub async fn status() -> Result<String, JsValue> {
    let locks = locks()?;
    let snap = locks.query().await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    let mine = GUARD.with(|g| g.borrow().as_ref().is_some_and(LockGuard::is_held));
    let manager = if locks.is_local() {
        "local mode: this tab only"
    } else if LockManager::polyfill().is_ok() {
        "this package's polyfill"
    } else {
        "the browser's own"
    };
    let mut out = format!("this tab holds it: {mine} (manager: {manager})\n");
    for (what, list) in [("held by", &snap.held), ("waited for by", &snap.pending)] {
        for i in list.iter().filter(|i| i.name == "demo") {
            let mode = if i.mode == LockMode::Shared { "shared" } else { "exclusive" };
            out.push_str(&format!("{what} {} ({mode})\n", i.client_id));
        }
    }
    Ok(out)
}
