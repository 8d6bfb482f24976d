//! Browser tests of the wasm bindings (`wasm-pack test --headless --chrome`): the Rust
//! `request`/`query` exports driven through the real JS host of `js/core.js`.
#![cfg(all(target_arch = "wasm32", feature = "bindings"))]

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_locks_wasm::bindings::{self, Host};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(module = "/js/core.js")]
extern "C" {
    #[wasm_bindgen(thread_local_v2, js_name = host)]
    static HOST: Host;
}

#[wasm_bindgen(inline_js = r#"
export function recorder() { return []; }
export function cb(log, tag, ret) {
  return (lock) => { log.push(tag + ":" + (lock ? lock.name + "/" + lock.mode : "null")); return ret; };
}
export function held(log, tag) {
  let release;
  const p = new Promise((r) => (release = r));
  return [(lock) => { log.push(tag); return p; }, () => release(tag)];
}
export function thrower(v) { return () => { throw v; }; }
export function joined(log) { return log.join(" "); }
export function obj(json) { return JSON.parse(json); }
export function withSignal(o, s) { o.signal = s; return o; }
export function controller() { return new AbortController(); }
export function signalOf(c) { return c.signal; }
export function abortWith(c, r) { c.abort(r); }
export function errName(e) { return e instanceof DOMException ? "DOMException:" + e.name : e instanceof TypeError ? "TypeError" : String(e); }
export function same(a, b) { return Object.is(a, b); }
export function later() { return new Promise((r) => setTimeout(r, 5)); }
export function snapshotText(s) { return JSON.stringify({ held: s.held.map((i) => [i.name, i.mode]), pending: s.pending.map((i) => [i.name, i.mode]) }); }
export function nameOk(v) { return v === "\uD800x\u0000"; }
"#)]
extern "C" {
    fn recorder() -> JsValue;
    fn cb(log: &JsValue, tag: &str, ret: &JsValue) -> JsValue;
    fn held(log: &JsValue, tag: &str) -> js_sys::Array;
    fn thrower(v: &JsValue) -> JsValue;
    fn joined(log: &JsValue) -> String;
    fn obj(json: &str) -> JsValue;
    #[wasm_bindgen(js_name = withSignal)]
    fn with_signal(o: JsValue, s: &JsValue) -> JsValue;
    fn controller() -> JsValue;
    #[wasm_bindgen(js_name = signalOf)]
    fn signal_of(c: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = abortWith)]
    fn abort_with(c: &JsValue, r: &JsValue);
    #[wasm_bindgen(js_name = errName)]
    fn err_name(e: &JsValue) -> String;
    fn same(a: &JsValue, b: &JsValue) -> bool;
    fn later() -> js_sys::Promise;
    #[wasm_bindgen(js_name = snapshotText)]
    fn snapshot_text(s: &JsValue) -> String;
    #[wasm_bindgen(js_name = nameOk)]
    fn name_ok(v: &JsValue) -> bool;
}

fn setup() {
    bindings::init(HOST.with(|h| JsValue::clone(h).unchecked_into()));
}

async fn wait(p: JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(js_sys::Promise::from(p)).await
}

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

fn req2(name: &str, callback: &JsValue) -> JsValue {
    bindings::request(2, s(name), callback.clone(), JsValue::UNDEFINED)
}

fn req3(name: &str, options: JsValue, callback: &JsValue) -> JsValue {
    bindings::request(3, s(name), options, callback.clone())
}

#[wasm_bindgen_test]
async fn r03_r04_argument_errors_are_rejected_type_errors() {
    setup();
    let e = wait(bindings::request(1, s("a"), JsValue::UNDEFINED, JsValue::UNDEFINED)).await.unwrap_err();
    assert_eq!(err_name(&e), "TypeError");
    let e = wait(req2("a", &s("not callable"))).await.unwrap_err();
    assert_eq!(err_name(&e), "TypeError");
    let log = recorder();
    let e = wait(req3("a", obj(r#"{"mode":"bogus"}"#), &cb(&log, "x", &JsValue::NULL))).await.unwrap_err();
    assert_eq!(err_name(&e), "TypeError", "R-05");
    let e = wait(req3("a", obj(r#"{"signal":{}}"#), &cb(&log, "x", &JsValue::NULL))).await.unwrap_err();
    assert_eq!(err_name(&e), "TypeError", "R-06");
    assert_eq!(joined(&log), "", "no callback ran");
}

#[wasm_bindgen_test]
async fn r12_to_r15_not_supported_in_spec_order() {
    setup();
    let log = recorder();
    let f = cb(&log, "x", &JsValue::NULL);
    let e = wait(req3("-a", obj(r#"{"steal":true,"ifAvailable":true}"#), &f)).await.unwrap_err();
    assert_eq!(err_name(&e), "DOMException:NotSupportedError");
    for opts in [r#"{"steal":true,"ifAvailable":true}"#, r#"{"steal":true,"mode":"shared"}"#] {
        let e = wait(req3("b", obj(opts), &f)).await.unwrap_err();
        assert_eq!(err_name(&e), "DOMException:NotSupportedError", "{opts}");
    }
    let c = controller();
    abort_with(&c, &s("why"));
    let e = wait(req3("b", with_signal(obj(r#"{"ifAvailable":true}"#), &signal_of(&c)), &f)).await.unwrap_err();
    assert_eq!(err_name(&e), "DOMException:NotSupportedError", "R-15 before R-16");
    let e = wait(req3("b", with_signal(obj("{}"), &signal_of(&c)), &f)).await.unwrap_err();
    assert!(same(&e, &s("why")), "R-16: the reason itself");
    assert_eq!(joined(&log), "");
}

#[wasm_bindgen_test]
async fn r20_r22_r24_grants_fifo_shared_together_no_barging() {
    setup();
    let log = recorder();
    let first = held(&log, "1");
    let p1 = req2("fifo", &first.get(0));
    let p2 = req3("fifo", obj(r#"{"mode":"shared"}"#), &cb(&log, "2", &JsValue::NULL));
    let p3 = req3("fifo", obj(r#"{"mode":"shared"}"#), &cb(&log, "3", &JsValue::NULL));
    let p4 = req2("fifo", &cb(&log, "4", &JsValue::NULL));
    JsFuture::from(later()).await.ok();
    assert_eq!(joined(&log), "1");
    js_sys::Function::from(first.get(1)).call0(&JsValue::NULL).ok();
    assert_eq!(wait(p1).await.ok(), Some(s("1")));
    for p in [p2, p3, p4] {
        wait(p).await.ok();
    }
    assert_eq!(joined(&log), "1 2:fifo/shared 3:fifo/shared 4:fifo/exclusive");
}

#[wasm_bindgen_test]
async fn r07_r08_lock_name_is_the_exact_string() {
    setup();
    let log = recorder();
    // A Rust &str cannot hold a lone surrogate: build the name in JS.
    let lone = js_sys::eval(r#""\uD800x\u0000""#).unwrap();
    let f = js_sys::eval("(lock) => lock.name").unwrap();
    let got = wait(bindings::request(2, lone, f, JsValue::UNDEFINED)).await.unwrap();
    assert!(name_ok(&got));
    assert_eq!(joined(&log), "");
}

#[wasm_bindgen_test]
async fn r32_r33_callback_result_and_thrown_values() {
    setup();
    let log = recorder();
    assert_eq!(wait(req2("r", &cb(&log, "a", &s("value")))).await.ok(), Some(s("value")));
    let boom = s("boom");
    let e = wait(req2("r", &thrower(&boom))).await.unwrap_err();
    assert!(same(&e, &boom));
    // The lock was released: an ifAvailable request gets it.
    let got = wait(req3("r", obj(r#"{"ifAvailable":true}"#), &cb(&log, "b", &JsValue::NULL))).await;
    assert!(got.is_ok());
    assert_eq!(joined(&log), "a:r/exclusive b:r/exclusive");
}

#[wasm_bindgen_test]
async fn r41_r50_if_available_null_and_steal_rejects_victim() {
    setup();
    let log = recorder();
    let h = held(&log, "holder");
    let victim = req2("st", &h.get(0));
    JsFuture::from(later()).await.ok();
    wait(req3("st", obj(r#"{"ifAvailable":true}"#), &cb(&log, "try", &JsValue::NULL))).await.ok();
    wait(req3("st", obj(r#"{"steal":true}"#), &cb(&log, "thief", &JsValue::NULL))).await.ok();
    let e = wait(victim).await.unwrap_err();
    assert_eq!(err_name(&e), "DOMException:AbortError");
    assert_eq!(joined(&log), "holder try:null thief:st/exclusive");
    js_sys::Function::from(h.get(1)).call0(&JsValue::NULL).ok();
}

#[wasm_bindgen_test]
async fn r60_abort_while_queued_rejects_with_reason_and_reprocesses() {
    setup();
    let log = recorder();
    let h = held(&log, "holder");
    let p1 = req2("ab", &h.get(0));
    let c = controller();
    let p2 = req3("ab", with_signal(obj("{}"), &signal_of(&c)), &cb(&log, "aborted", &JsValue::NULL));
    let snap = wait(bindings::query()).await.unwrap();
    assert!(snapshot_text(&snap).contains(r#""pending":[["ab","exclusive"]]"#), "{}", snapshot_text(&snap));
    let reason = s("stop");
    abort_with(&c, &reason);
    assert!(same(&wait(p2).await.unwrap_err(), &reason));
    let snap = wait(bindings::query()).await.unwrap();
    assert!(!snapshot_text(&snap).contains(r#""pending":[["ab""#));
    js_sys::Function::from(h.get(1)).call0(&JsValue::NULL).ok();
    wait(p1).await.ok();
    assert_eq!(joined(&log), "holder");
}

#[wasm_bindgen_test]
async fn r61_abort_right_after_request_skips_the_callback() {
    setup();
    let log = recorder();
    let c = controller();
    let p = req3("ab2", with_signal(obj("{}"), &signal_of(&c)), &cb(&log, "never", &JsValue::NULL));
    abort_with(&c, &s("now"));
    assert!(wait(p).await.is_err());
    // The grant was given back: the lock is free again.
    let ok = wait(req3("ab2", obj(r#"{"ifAvailable":true}"#), &cb(&log, "free", &JsValue::NULL))).await;
    assert!(ok.is_ok());
    assert_eq!(joined(&log), "free:ab2/exclusive");
}
