// Cases of this crate's own polyfill (feature `polyfill`), shared by tests/api_polyfill.rs
// (a window) and tests/api_polyfill_worker.rs (a dedicated worker).

// This test crate's copy of the snippet: its URL is what a second context loads.
#[wasm_bindgen(module = "/gen/polyfill.js")]
extern "C" {
    #[wasm_bindgen(js_name = moduleUrl)]
    fn snippet_url() -> String;
}

#[wasm_bindgen(inline_js = r#"
// A second context of the app: a module worker that loads the snippet and takes locks with
// navigator.locks.request() on it, driven by messages; each answer resolves `ask`.
export function spawn(url) {
  const src = `import { ours } from ${JSON.stringify(url)};
const locks = ours();
let release = null;
onmessage = (e) => {
  const [op, name] = e.data;
  if (op === "try") locks.request(name, { ifAvailable: true }, (l) => void postMessage(l ? "granted" : "unavailable"));
  else if (op === "wait") {
    locks.request(name, (l) => new Promise((r) => { release = r; postMessage("granted"); }));
    postMessage("asked");
  } else if (op === "release") { release(); release = null; postMessage("released"); }
};
postMessage("ready");`;
  const w = new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" })), { type: "module" });
  w.answers = [];
  w.waiting = [];
  w.onmessage = (e) => (w.waiting.length ? w.waiting.shift()(e.data) : w.answers.push(e.data));
  w.onerror = (e) => { const m = "worker error: " + (e.message || e); w.waiting.length ? w.waiting.shift()(m) : w.answers.push(m); };
  return w;
}
export function next(w) {
  return w.answers.length ? Promise.resolve(w.answers.shift()) : new Promise((r) => w.waiting.push(r));
}
export function send(w, op, name) { w.postMessage([op, name]); }
export function deleteNative() {
  const proto = Object.getPrototypeOf(navigator);
  const had = !!navigator.locks;
  delete proto.locks;
  return had && !navigator.locks;
}
export function connection() {
  return navigator.locks.ready.then((d) => `${d.mode}/${d.client ? d.client.via : "none"}`);
}
export function navigatorIsOurs() { return !!navigator.locks && "ready" in navigator.locks; }
"#)]
extern "C" {
    fn spawn(url: &str) -> JsValue;
    fn next(w: &JsValue) -> js_sys::Promise;
    fn send(w: &JsValue, op: &str, name: &str);
    #[wasm_bindgen(js_name = deleteNative)]
    fn delete_native() -> bool;
    fn connection() -> js_sys::Promise;
    #[wasm_bindgen(js_name = navigatorIsOurs)]
    fn navigator_is_ours() -> bool;
}

async fn answer(w: &JsValue) -> String {
    JsFuture::from(next(w)).await.unwrap().as_string().unwrap_or_default()
}

#[wasm_bindgen_test]
async fn a_guard_excludes_navigator_locks_request_in_a_second_context() {
    let locks = locks();
    let name = n("cross", "x");
    let g = locks.lock(&name).await.unwrap();
    let w = spawn(&snippet_url());
    assert_eq!(answer(&w).await, "ready");
    send(&w, "try", &name);
    assert_eq!(answer(&w).await, "unavailable", "the second context got the lock this guard holds");
    send(&w, "wait", &name);
    assert_eq!(answer(&w).await, "asked");
    // The second context's request shows in this context's query(), under its own client.
    let mut seen = None;
    for _ in 0..200 {
        let s = locks.query().await.unwrap();
        seen = s.pending.iter().find(|i| i.name == name).cloned();
        if seen.is_some() {
            break;
        }
        wait(10).await;
    }
    let pending = seen.expect("the second context's request in query()");
    let holder = locks.query().await.unwrap().held.into_iter().find(|i| i.name == name).expect("held");
    assert_ne!(pending.client_id, holder.client_id);
    drop(g);
    assert_eq!(answer(&w).await, "granted", "granted once the guard was dropped");
    assert!(locks.try_lock(&name).await.unwrap().is_none(), "the second context holds it now");
    send(&w, "release", &name);
    assert_eq!(answer(&w).await, "released");
    let g = locks.lock(&name).await.unwrap();
    assert!(g.is_held());
    g.release().await;
    assert_eq!(mine(&locks, "cross").await, (0, 0));
}

#[wasm_bindgen_test]
async fn get_installs_the_polyfill_where_the_global_has_no_manager() {
    assert!(delete_native(), "the browser's own manager was there, and is gone");
    let locks = LockManager::get().unwrap();
    assert!(!locks.is_local());
    assert!(navigator_is_ours(), "get() installed this crate's polyfill on navigator.locks");
    let g = locks.lock(&n("installed", "x")).await.unwrap();
    // The same manager as polyfill(): one client, one lock space.
    assert!(LockManager::polyfill().unwrap().try_lock(&n("installed", "x")).await.unwrap().is_none());
    g.release().await;
    assert_eq!(mine(&locks, "installed").await, (0, 0));
    // Shared with the origin's other contexts (not local mode): through the arbiter's
    // SharedWorker (this snippet as a module worker) in a window, over the bus in a worker.
    let via = JsFuture::from(connection()).await.unwrap().as_string().unwrap();
    wasm_bindgen_test::console_log!("connection: {via}");
    assert!(via == "shared/port" || via == "shared/bus", "{via}");
}
