// The Rust API tests, shared by tests/api.rs (a window), tests/api_worker.rs (a dedicated
// worker), tests/api_polyfill*.rs (the same over this crate's polyfill) and
// tests/api_node.rs: `include!`d after each file's imports and configuration, which define
// `locks()` (the manager under test) and `POLYFILL` (whether it is this package's polyfill).

#[wasm_bindgen(inline_js = r#"
export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
export function controller() { return new AbortController(); }
export function signalOf(c) { return c.signal; }
export function abortWith(c, r) { c.abort(r); }
"#)]
extern "C" {
    fn sleep(ms: u32) -> js_sys::Promise;
    fn controller() -> JsValue;
    #[wasm_bindgen(js_name = signalOf)]
    fn signal_of(c: &JsValue) -> web_sys::AbortSignal;
    #[wasm_bindgen(js_name = abortWith)]
    fn abort_with(c: &JsValue, reason: &JsValue);
}

async fn wait(ms: u32) {
    JsFuture::from(sleep(ms)).await.unwrap();
}

/// Names unique to one test: the tests share the page's lock space.
fn n(test: &str, name: &str) -> String {
    format!("api-{test}-{name}")
}

async fn mine(locks: &LockManager, test: &str) -> (usize, usize) {
    let s = locks.query().await.unwrap();
    let prefix = format!("api-{test}-");
    (
        s.held.iter().filter(|i| i.name.starts_with(&prefix)).count(),
        s.pending.iter().filter(|i| i.name.starts_with(&prefix)).count(),
    )
}

#[wasm_bindgen_test]
async fn a_guard_holds_until_released_and_query_shows_it() {
    let locks = locks();
    let g = locks.lock(&n("basic", "a")).await.unwrap();
    assert_eq!((g.name(), g.mode(), g.is_held()), (n("basic", "a").as_str(), LockMode::Exclusive, true));
    let s = locks.query().await.unwrap();
    let info = s.held.iter().find(|i| i.name == n("basic", "a")).expect("held");
    assert!(!info.client_id.is_empty());
    g.release().await;
    assert_eq!(mine(&locks, "basic").await, (0, 0));
}

#[wasm_bindgen_test]
async fn an_exclusive_guard_excludes_and_drop_hands_over() {
    let locks = locks();
    let g1 = locks.lock(&n("excl", "x")).await.unwrap();
    let got = Rc::new(Cell::new(false));
    let (l2, got2, name) = (locks.clone(), got.clone(), n("excl", "x"));
    spawn_local(async move {
        let g2 = l2.lock(&name).await.unwrap();
        got2.set(true);
        drop(g2);
    });
    wait(50).await;
    assert!(!got.get(), "granted while another guard held the lock");
    assert_eq!(mine(&locks, "excl").await, (1, 1));
    drop(g1);
    wait(50).await;
    assert!(got.get(), "not granted after the first guard was dropped");
    assert_eq!(mine(&locks, "excl").await, (0, 0));
}

#[wasm_bindgen_test]
async fn try_lock_and_shared_mode() {
    let locks = locks();
    let g = locks.try_lock(&n("try", "x")).await.unwrap().expect("free");
    assert!(locks.try_lock(&n("try", "x")).await.unwrap().is_none(), "held: None");
    drop(g);
    let shared = LockOptions { mode: LockMode::Shared, ..LockOptions::default() };
    let r1 = locks.lock_with(&n("try", "s"), &shared).await.unwrap().unwrap();
    let r2 = locks.lock_with(&n("try", "s"), &shared).await.unwrap().unwrap();
    assert_eq!((r1.mode(), r2.mode()), (LockMode::Shared, LockMode::Shared));
    assert!(locks.try_lock(&n("try", "s")).await.unwrap().is_none(), "exclusive beside readers");
    drop((r1, r2));
    wait(20).await;
    assert_eq!(mine(&locks, "try").await, (0, 0));
}

#[wasm_bindgen_test]
async fn a_timeout_gives_up_and_leaves_no_request_behind() {
    let locks = locks();
    let g = locks.lock(&n("timeout", "x")).await.unwrap();
    let o = LockOptions { timeout: Some(Duration::from_millis(40)), ..LockOptions::default() };
    match locks.lock_with(&n("timeout", "x"), &o).await {
        Err(LockError::Timeout) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(mine(&locks, "timeout").await, (1, 0));
    drop(g);
}

#[wasm_bindgen_test]
async fn a_signal_aborts_with_its_reason() {
    let locks = locks();
    let g = locks.lock(&n("signal", "x")).await.unwrap();
    let c = controller();
    let o = LockOptions { signal: Some(signal_of(&c)), ..LockOptions::default() };
    let name = n("signal", "x");
    let c2 = c.clone();
    spawn_local(async move {
        wait(20).await;
        abort_with(&c2, &JsValue::from_str("stop"));
    });
    match locks.lock_with(&name, &o).await {
        Err(LockError::Aborted(r)) => assert_eq!(r.as_string().as_deref(), Some("stop")),
        other => panic!("{other:?}"),
    }
    drop(g);
    wait(20).await;
    assert_eq!(mine(&locks, "signal").await, (0, 0));
}

#[wasm_bindgen_test]
async fn a_dropped_future_withdraws_its_request() {
    let locks = locks();
    let g = locks.lock(&n("dropfut", "x")).await.unwrap();
    {
        let name = n("dropfut", "x");
        let mut fut = pin!(locks.lock(&name));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(fut.as_mut().poll(&mut cx), Poll::Pending));
    } // dropped while waiting
    wait(20).await;
    assert_eq!(mine(&locks, "dropfut").await, (1, 0), "the dropped future's request is gone");
    drop(g);
    wait(20).await;
    assert_eq!(mine(&locks, "dropfut").await, (0, 0));
}

#[wasm_bindgen_test]
async fn a_future_dropped_while_its_grant_is_on_the_way_releases_at_once() {
    let locks = locks();
    {
        let name = n("dropgrant", "x");
        let mut fut = pin!(locks.lock(&name));
        let mut cx = Context::from_waker(Waker::noop());
        let _ = fut.as_mut().poll(&mut cx); // requested; the grant arrives in a later task
    }
    wait(30).await;
    assert_eq!(mine(&locks, "dropgrant").await, (0, 0), "nothing leaks");
    assert!(locks.try_lock(&n("dropgrant", "x")).await.unwrap().is_some());
}

#[wasm_bindgen_test]
async fn a_steal_takes_the_lock_from_a_guard() {
    let locks = locks();
    let g1 = locks.lock(&n("steal", "x")).await.unwrap();
    let o = LockOptions { steal: true, ..LockOptions::default() };
    let g2 = locks.lock_with(&n("steal", "x"), &o).await.unwrap().unwrap();
    wait(10).await;
    assert!(!g1.is_held(), "stolen");
    assert!(g2.is_held());
    drop((g1, g2));
}

#[wasm_bindgen_test]
async fn with_lock_holds_for_the_future_and_releases() {
    let locks = locks();
    let name = n("with", "x");
    let l2 = locks.clone();
    let v = locks
        .with_lock(&name, async move {
            assert_eq!(mine(&l2, "with").await, (1, 0));
            42
        })
        .await
        .unwrap();
    assert_eq!(v, 42);
    assert_eq!(mine(&locks, "with").await, (0, 0));
}

#[wasm_bindgen_test]
async fn spec_errors_and_unsupported_options() {
    let locks = locks();
    assert!(matches!(locks.lock("-dash").await, Err(LockError::NotSupported(_))));
    let o = LockOptions { holder: Some("Desk 2".into()), ..LockOptions::default() };
    if POLYFILL {
        // The lock services of this package's polyfill: the label shows in query().
        let g = locks.lock_with(&n("errors", "x"), &o).await.unwrap().unwrap();
        let s = locks.query().await.unwrap();
        let info = s.held.iter().find(|i| i.name == n("errors", "x")).expect("held");
        assert_eq!(info.holder.as_deref(), Some("Desk 2"));
        g.release().await;
    } else {
        assert!(matches!(locks.lock_with(&n("errors", "x"), &o).await, Err(LockError::NotSupported(_))));
    }
    let o = LockOptions { steal: true, mode: LockMode::Shared, ..LockOptions::default() };
    assert!(matches!(locks.lock_with(&n("errors", "x"), &o).await, Err(LockError::NotSupported(_))));
    assert!(format!("{}", LockError::Timeout).contains("time"));
    if locks.is_local() {
        // No lock manager on this global (Node): the polyfill is the local one too.
        assert!(LockManager::polyfill().unwrap().is_local());
    } else {
        // This crate's own polyfill (feature `polyfill`), over the browser's own or not.
        assert!(LockManager::polyfill().is_ok());
    }
}
