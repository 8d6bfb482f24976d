//! Take the lock "demo" in this tab; every open tab shows who holds it and who waits, from
//! `query()` every 250 ms. The page (index.html) calls `take`, `give_back` and `status`.
use std::cell::RefCell;

use std::time::Duration;

use wasm_bindgen::prelude::*;
use web_locks_wasm::{LockGuard, LockManager, LockMode, LockOptions};

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

/// Waits for the lock "demo" as `desk` (its holder's label) with a lease of `ttl_ms`:
/// the lock services of this package's polyfill (`NotSupported` over the browser's own).
/// The lease ends it unless given back first; `status` then shows this tab no longer
/// holds it.
#[wasm_bindgen]
pub async fn take_leased(desk: String, ttl_ms: u32) -> Result<(), JsValue> {
    let options = LockOptions {
        holder: Some(desk),
        ttl: Some(Duration::from_millis(u64::from(ttl_ms))),
        ..LockOptions::default()
    };
    let guard = locks()?.lock_with("demo", &options).await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    GUARD.with(|g| *g.borrow_mut() = guard);
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
    } else if locks.is_polyfill() {
        "this package's polyfill"
    } else {
        "the browser's own"
    };
    let mut out = format!("this tab holds it: {mine} (manager: {manager})\n");
    for (what, list) in [("held by", &snap.held), ("waited for by", &snap.pending)] {
        for i in list.iter().filter(|i| i.name == "demo") {
            let mode = if i.mode == LockMode::Shared { "shared" } else { "exclusive" };
            let holder = i.holder.as_deref().map(|h| format!(", holder {h}")).unwrap_or_default();
            out.push_str(&format!("{what} {} ({mode}{holder})\n", i.client_id));
        }
    }
    Ok(out)
}
