//! The `LockManager` that script calls: Web IDL argument conversion, the spec's checks in
//! order (R-18), promises, callbacks and `AbortSignal`, over an arbiter.
//!
//! The only module that touches JS. Everything JS-specific it needs (string conversion,
//! `DOMException`, `Lock` objects, tasks, signal listeners) comes from a small `Host`
//! object that `js/core.js` passes to [`init`], so that this code runs unchanged in
//! windows and every kind of worker, and so that no `web-sys` is linked.
//!
//! A request moves through these phases on the client side:
//!
//! ```text
//!  request() ──► Queued ──Granted──► Granted ──task──► Running ──settled──► (release, settle)
//!                  │                   │ abort           ▲
//!                  │ abort / stolen    ▼                 │ Unavailable: task runs callback(null)
//!                  └───────────────► (rejected; a Release withdraws it at the arbiter)
//! ```
//!
//! In this build the arbiter runs in the calling context itself (the degenerate arbiter);
//! the client only ever talks to it through [`ClientMsg`]/[`ArbiterMsg`], so the arbiter
//! can move to another context without touching the client logic.

use alloc::vec::Vec;
#[cfg(feature = "arbiter")]
use alloc::{boxed::Box, vec};
use core::cell::RefCell;

use wasm_bindgen::prelude::*;

#[cfg(feature = "arbiter")]
use crate::arbiter::Arbiter;
#[cfg(feature = "arbiter")]
use crate::engine::ClientId;
use crate::engine::{LockMode, RequestFlags, RequestId};
// The client's maps: the full module has the engine's tree anyway; the client-only one
// has no other map, and its keys are handed out in increasing order.
use crate::delegate::Delegation;
#[cfg(feature = "arbiter")]
use crate::map::IdMap as ClientMap;
#[cfg(not(feature = "arbiter"))]
use crate::map::SeqMap as ClientMap;
use crate::protocol::{self, ArbiterMsg, ClientMsg, Extras, Restored, DELEGATION, MIN_VERSION, VERSION};

#[cfg(feature = "arbiter")]
mod host;
#[cfg(feature = "arbiter")]
pub use host::ArbiterHost;

#[wasm_bindgen]
extern "C" {
    /// The JS half of the bindings: `host` in `js/core.js`.
    pub type Host;

    /// Web IDL `DOMString` conversion: `${v}` (ToString; throws on a Symbol).
    #[wasm_bindgen(method, catch, js_name = str)]
    fn to_dom_string(this: &Host, v: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method)]
    fn units(this: &Host, s: &JsValue) -> Vec<u16>;
    /// `obj[key]`, running getters (which may throw); `key` indexes the option names
    /// (`KEY_*`), so that no string crosses.
    #[wasm_bindgen(method, catch)]
    fn get(this: &Host, obj: &JsValue, key: u8) -> Result<JsValue, JsValue>;
    /// A `mode` option converted to a `DOMString` (may throw) and looked up: `MODE_*`, or
    /// `MODE_NULL` when it names no `LockMode`.
    #[wasm_bindgen(method, catch, js_name = modeOf)]
    fn mode_of(this: &Host, v: &JsValue) -> Result<u8, JsValue>;
    #[wasm_bindgen(method, js_name = isObject)]
    fn is_object(this: &Host, v: &JsValue) -> bool;
    /// A brand check: a real `AbortSignal`, from any realm.
    #[wasm_bindgen(method, js_name = isSignal)]
    fn is_signal(this: &Host, v: &JsValue) -> bool;
    #[wasm_bindgen(method)]
    fn aborted(this: &Host, signal: &JsValue) -> bool;
    #[wasm_bindgen(method)]
    fn reason(this: &Host, signal: &JsValue) -> JsValue;
    /// This context's state, in one call (`CTX_*` bits): its global's document is not
    /// fully active (R-10); its origin is opaque, so no lock manager can be obtained (R-11);
    /// it cannot join its origin's lock space safely (IndexedDB missing or failing:
    /// storage blocked, quota exhausted), so requests and queries are refused, after
    /// validation, as Chromium's own refuses them where storage is denied.
    #[wasm_bindgen(method)]
    fn context(this: &Host) -> u8;
    /// The `TypeError` or `DOMException` numbered `code` (`ERR_*`; the messages are in JS).
    #[wasm_bindgen(method)]
    fn error(this: &Host, code: u8) -> JsValue;
    /// A new `{promise, resolve, reject}` record.
    #[wasm_bindgen(method)]
    fn defer(this: &Host) -> JsValue;
    #[wasm_bindgen(method, js_name = promiseOf)]
    fn promise_of(this: &Host, deferred: &JsValue) -> JsValue;
    #[wasm_bindgen(method)]
    fn settle(this: &Host, deferred: &JsValue, ok: bool, value: &JsValue);
    #[wasm_bindgen(method)]
    fn rejected(this: &Host, reason: &JsValue) -> JsValue;
    /// Runs `done(id)` later, in a task of its own (the spec's "queue a step").
    #[wasm_bindgen(method)]
    fn task(this: &Host, id: f64);
    /// Subscribes `abort(id)` to the signal's `abort` event; returns the token to unlisten.
    #[wasm_bindgen(method)]
    fn listen(this: &Host, signal: &JsValue, id: f64) -> JsValue;
    #[wasm_bindgen(method)]
    fn unlisten(this: &Host, signal: &JsValue, token: &JsValue);
    /// Invokes `callback(lock or null)`; when the result settles, calls `done(id, ok, v)`.
    /// A thrown value rejects as-is (a thrown thenable is not adopted, R-33).
    #[wasm_bindgen(method)]
    fn invoke(this: &Host, callback: &JsValue, name: &JsValue, mode: u8, id: f64);
    #[wasm_bindgen(method, js_name = clientId)]
    fn client_id(this: &Host) -> JsValue;
    /// A new, empty `LockManagerSnapshot`.
    #[wasm_bindgen(method)]
    fn snapshot(this: &Host) -> JsValue;
    /// Appends `{ clientId, mode, name }` to the snapshot's `held` (or `pending`) list,
    /// with the `clientId` last given to `entryClient` for this snapshot.
    #[wasm_bindgen(method)]
    fn entry(this: &Host, snapshot: &JsValue, pending: bool, name: &[u16], mode: u8);
    /// The `clientId` of the snapshot's next entries (passed once per run of entries).
    #[wasm_bindgen(method, js_name = entryClient)]
    fn entry_client(this: &Host, snapshot: &JsValue, client: &[u16]);
    /// Hands the host this module's exports, whose `task`, `done` and `abort` it calls.
    #[wasm_bindgen(method)]
    fn wire(this: &Host, exports: JsValue);
    /// `true`: the arbiter runs in this context (no cross-context coordination).
    #[wasm_bindgen(method)]
    fn local(this: &Host) -> bool;
    /// `false` where this context must not serve names itself (delegation): a dedicated
    /// worker, which its page's freezing stops without telling it, so it could not give
    /// its names back (src/delegate.rs).
    #[wasm_bindgen(method)]
    fn delegates(this: &Host) -> bool;
    /// Messages to the arbiter are waiting in the outbox: in a microtask, call
    /// [`client_flush`].
    #[wasm_bindgen(method, js_name = flushSoon)]
    fn flush_soon(this: &Host);
    /// Sends a batch of [`ClientMsg`] frames to the current arbiter (copying `batch`).
    #[wasm_bindgen(method)]
    fn post(this: &Host, batch: &[u16]);

    // The lock services' half of the host (js/services.js adds it; feature `services`).
    /// A lock service request was granted: hand `callback` (the services' own) the lock.
    #[cfg(feature = "services")]
    #[wasm_bindgen(method)]
    fn grant(this: &Host, callback: &JsValue, name: &JsValue, mode: u8, id: f64);
    /// The services' errors: 0 `TimeoutError` (a wait ran out), 1 `TimeoutError` (a lease
    /// ran out); 2 a `LockHeldError` on `name` held by `holder` (`has` false: no label).
    #[cfg(feature = "services")]
    #[wasm_bindgen(method, js_name = serror)]
    fn service_error(this: &Host, code: u8, name: &JsValue, holder: &[u16], has: bool) -> JsValue;
    /// A `DeadlockError` whose cycle is the snapshot's `held` list.
    #[cfg(feature = "services")]
    #[wasm_bindgen(method, js_name = deadlock)]
    fn deadlock_error(this: &Host, snapshot: &JsValue) -> JsValue;
    /// A spec request closed a cycle and keeps waiting: report it (the snapshot's `held`).
    #[cfg(feature = "services")]
    #[wasm_bindgen(method)]
    fn report(this: &Host, snapshot: &JsValue);
    /// The last entry appended to the snapshot was made with this label (`holder`).
    #[cfg(feature = "services")]
    #[wasm_bindgen(method)]
    fn label(this: &Host, snapshot: &JsValue, label: &[u16]);
    /// The last entry appended to the snapshot is a lease with `ms` left.
    #[cfg(feature = "services")]
    #[wasm_bindgen(method)]
    fn expires(this: &Host, snapshot: &JsValue, ms: u32);
    /// This context's clock, in ms (`performance.now()`).
    #[cfg(feature = "services")]
    #[wasm_bindgen(method)]
    fn now(this: &Host) -> f64;
    /// Call the export `tick()` in `ms` ms (replacing the last such timer).
    #[cfg(feature = "services")]
    #[wasm_bindgen(method)]
    fn timer(this: &Host, ms: f64);
}

/// `Lock.mode` as the host's `invoke` receives it: 0 = none (callback(null)).
const MODE_NULL: u8 = 0;
const MODE_EXCLUSIVE: u8 = 1;
const MODE_SHARED: u8 = 2;

/// The option names that `Host::get` reads (`KEYS` in js/core.js).
const KEY_IF_AVAILABLE: u8 = 0;
const KEY_MODE: u8 = 1;
const KEY_SIGNAL: u8 = 2;
const KEY_STEAL: u8 = 3;

/// The errors that `Host::error` makes (`ERRORS` in js/core.js, same order).
const ERR_ARGUMENTS: u8 = 0; // TypeError: 2 arguments required
const ERR_OPTIONS: u8 = 1; // TypeError: options is not an object
const ERR_MODE: u8 = 2; // TypeError: mode is not a valid LockMode
const ERR_SIGNAL: u8 = 3; // TypeError: signal is not an AbortSignal
const ERR_CALLBACK: u8 = 4; // TypeError: callback is not a function
const ERR_NOT_ACTIVE: u8 = 5; // InvalidStateError
const ERR_OPAQUE: u8 = 6; // SecurityError
const ERR_DASH: u8 = 7; // NotSupportedError: names cannot start with '-'
const ERR_STEAL_IF_AVAILABLE: u8 = 8; // NotSupportedError
const ERR_STEAL_SHARED: u8 = 9; // NotSupportedError
const ERR_SIGNAL_STEAL: u8 = 10; // NotSupportedError
const ERR_SIGNAL_IF_AVAILABLE: u8 = 11; // NotSupportedError
const ERR_STOLEN: u8 = 12; // AbortError: broken by a steal
const ERR_DENIED: u8 = 13; // SecurityError: the request was denied (no safe lock space)

fn mode_code(mode: LockMode) -> u8 {
    match mode {
        LockMode::Exclusive => MODE_EXCLUSIVE,
        LockMode::Shared => MODE_SHARED,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Sent; waiting for the arbiter.
    Queued,
    /// Granted; the callback step is queued as a task.
    Granted,
    /// Not available (`ifAvailable`); the `callback(null)` step is queued.
    Unavailable,
    /// The callback was invoked; waiting for its promise to settle.
    Running { held: bool },
    /// The request promise was rejected (stolen) while the callback ran or was queued.
    Broken,
}

struct Request {
    /// The name exactly as converted: `Lock.name` returns this very string (R-08).
    name: JsValue,
    /// The same name as UTF-16 code units, to re-send it to a new arbiter.
    units: Vec<u16>,
    mode: LockMode,
    flags: RequestFlags,
    /// The queue position the arbiter acknowledged (restored after an arbiter restart).
    position: Option<i64>,
    callback: JsValue,
    deferred: JsValue,
    /// The signal and the token of our abort listener, until the callback is invoked.
    signal: Option<(JsValue, JsValue)>,
    phase: Phase,
    /// A lock service request (`acquire()`): its extras, and when its lease or its wait
    /// ends on this context's clock (for a new arbiter, which gets what is left).
    #[cfg(feature = "services")]
    service: Option<Service>,
}

#[cfg(feature = "services")]
struct Service {
    extras: Extras,
    ends: f64,
}

/// A duration in ms as the protocol carries it: rounded up (a lease never ends early),
/// saturated; `None` for a negative one (not given).
#[cfg(feature = "services")]
fn ms(v: f64) -> Option<u32> {
    if v.is_nan() || v < 0.0 {
        return None;
    }
    let t = v as u32;
    Some(if f64::from(t) < v { t.saturating_add(1) } else { t })
}

/// Where the arbiter is.
enum Transport {
    /// In this context: no other context shares the lock space. (Only in the full module:
    /// js/core.js never loads the client-only one in local mode.)
    #[cfg(feature = "arbiter")]
    Local(Box<Arbiter>, ClientId),
    /// Elsewhere, reached through `host.post`; `epoch` identifies the arbiter instance
    /// this client registered with (0: none yet, requests wait for one), `version` the
    /// protocol version this client speaks with it.
    Remote { epoch: u32, version: u16 },
}

struct Client {
    host: Host,
    transport: Transport,
    client_id: JsValue,
    next_request: u64,
    next_query: u32,
    requests: ClientMap<u64, Request>,
    queries: ClientMap<u32, JsValue>,
    #[cfg(feature = "arbiter")]
    inbox: Vec<(ClientId, ArbiterMsg)>,
    /// `renew()`s waiting for the arbiter's answer, in the order sent: id, ttl, deferred.
    #[cfg(feature = "services")]
    renews: Vec<(u64, u32, JsValue)>,
    /// The names this context serves itself (src/delegate.rs), with a remote arbiter.
    deleg: Delegation,
    /// A task to give idle owned names back is queued (`host.task(IDLE)`).
    idle_task: bool,
    /// This context may ask for names (`host.delegates()`).
    delegates: bool,
    /// Messages to the arbiter sent in this task, as one batch of frames
    /// ([`protocol::push_frame`]): they cross to JavaScript in one call ([`client_flush`])
    /// rather than one call per message.
    outbox: Vec<u16>,
}

/// The task id that gives idle owned names back (request ids start at 1).
const IDLE: u64 = 0;

/// This context's client. A plain static rather than `thread_local!`, which needs std.
struct Global(RefCell<Option<Client>>);

// Sound only in a module with one thread: wasm32 without the `atomics` target feature.
// (With it, this impl is missing and the static below does not compile.)
#[cfg(not(target_feature = "atomics"))]
unsafe impl Sync for Global {}

static CLIENT: Global = Global(RefCell::new(None));

fn with<R>(f: impl FnOnce(&mut Client) -> R) -> Option<R> {
    CLIENT.0.try_borrow_mut().ok()?.as_mut().map(f)
}

/// Connects this context. Idempotent; call once before anything else.
#[wasm_bindgen]
pub fn init(host: Host) {
    if with(|_| ()).is_some() {
        return;
    }
    // The host calls back through this module's exports (`task`, `done`, `abort`), not
    // through closures, whose glue costs more than the calls themselves.
    host.wire(wasm_bindgen::exports());
    let client_id = host.client_id();
    let transport = local(&host, &client_id).unwrap_or(Transport::Remote { epoch: 0, version: VERSION });
    let client = Client {
        transport,
        client_id,
        next_request: 1,
        next_query: 1,
        requests: ClientMap::default(),
        queries: ClientMap::default(),
        #[cfg(feature = "arbiter")]
        inbox: Vec::new(),
        #[cfg(feature = "services")]
        renews: Vec::new(),
        deleg: Delegation::new(),
        idle_task: false,
        outbox: Vec::new(),
        delegates: host.delegates(),
        host,
    };
    if let Ok(mut c) = CLIENT.0.try_borrow_mut() {
        *c = Some(client);
    }
}

/// The arbiter in this context, when the host asks for one.
#[cfg(feature = "arbiter")]
fn local(host: &Host, client_id: &JsValue) -> Option<Transport> {
    if !host.local() {
        return None;
    }
    let mut arbiter = Box::new(Arbiter::new());
    let me = arbiter.connect();
    let mut ignored = Vec::new();
    arbiter.handle(me, ClientMsg::Hello { client: host.units(client_id), restore: vec![] }, &mut ignored);
    Some(Transport::Local(arbiter, me))
}

#[cfg(not(feature = "arbiter"))]
fn local(_: &Host, _: &JsValue) -> Option<Transport> {
    None
}

/// A (new) arbiter of this `epoch` is reachable through `host.post`, speaking `version`
/// (js/coord.js picked it from the arbiter's announced range and [`versions`]): register
/// with it, re-registering what this context holds and waits for, in its original queue
/// order, then (re)send what the previous arbiter never acknowledged.
#[wasm_bindgen(js_name = clientSwitch)]
pub fn client_switch(epoch: u32, version: u16) {
    with(|c| c.switch(epoch, version));
}

/// Whether this context neither holds nor waits for a lock, nor waits for a query's
/// answer: it may then leave the lock space for a while (the back/forward cache).
#[wasm_bindgen(js_name = clientIdle)]
pub fn client_idle() -> bool {
    with(|c| c.requests.iter().next().is_none() && c.queries.iter().next().is_none()).unwrap_or(true)
}

/// This context left the lock space (an idle page entering the back/forward cache) and
/// comes back as a new client: a new `clientId` (from the host), no arbiter until the
/// next [`client_switch`].
#[wasm_bindgen(js_name = clientReset)]
#[cfg_attr(not(feature = "arbiter"), allow(irrefutable_let_patterns))]
pub fn client_reset() {
    with(|c| {
        if let Transport::Remote { epoch, .. } = &mut c.transport {
            *epoch = 0;
            c.client_id = c.host.client_id();
            c.deleg.reset();
            c.outbox.clear();
        }
    });
}

/// The protocol versions this module speaks: `MIN_VERSION << 16 | VERSION`.
#[wasm_bindgen]
pub fn versions() -> u32 {
    u32::from(MIN_VERSION) << 16 | u32::from(VERSION)
}

/// A batch of messages from the arbiter of `epoch` (frames, [`protocol::each_frame`]), handled
/// in order. Messages of any other epoch are stale and dropped, as are undecodable ones.
/// `false` if the batch is malformed (its whole frames before that were handled).
#[wasm_bindgen(js_name = clientReceive)]
pub fn client_receive(epoch: u32, batch: &[u16]) -> bool {
    with(|c| {
        protocol::each_frame(batch, |words| {
            if matches!(c.transport, Transport::Remote { epoch: e, .. } if e == epoch && e != 0) {
                if let Ok(msg) = ArbiterMsg::decode(words) {
                    c.receive(msg);
                }
            }
        })
    })
    .unwrap_or(false)
}

/// Sends the messages waiting for the arbiter (`host.post`), as one batch of frames, after
/// `host.flushSoon()`.
#[wasm_bindgen(js_name = clientFlush)]
pub fn client_flush() {
    with(|c| {
        if !c.outbox.is_empty() {
            c.host.post(&c.outbox);
            c.outbox.clear();
        }
    });
}

/// This context is about to be frozen or cached: it gives back every name it serves
/// itself (with what it holds and queues on them), so that no other context waits for it
/// while it cannot run.
#[wasm_bindgen(js_name = clientGiveBack)]
pub fn client_give_back() {
    with(|c| c.give_back(Delegation::give_back_all));
}

/// The encoded goodbye a context sends when it unloads.
#[wasm_bindgen(js_name = goodbyeWords)]
pub fn goodbye_words() -> Vec<u16> {
    let version = with(|c| match c.transport {
        Transport::Remote { version, .. } => version,
        #[cfg(feature = "arbiter")]
        Transport::Local(..) => VERSION,
    });
    ClientMsg::Goodbye.encode_in(version.unwrap_or(VERSION))
}

struct Args {
    name: JsValue,
    mode: LockMode,
    flags: RequestFlags,
    signal: Option<JsValue>,
    callback: JsValue,
}

/// Web IDL overload resolution and conversion (step 0): `TypeError`s, and whatever a
/// user's `toString` or getter throws, in argument order and then in the dictionary's
/// member order (ifAvailable, mode, signal, steal).
fn convert(host: &Host, argc: u32, a0: &JsValue, a1: &JsValue, a2: &JsValue) -> Result<Args, JsValue> {
    if argc < 2 {
        return Err(host.error(ERR_ARGUMENTS));
    }
    let name = host.to_dom_string(a0)?;
    let (options, callback) = if argc == 2 { (&JsValue::UNDEFINED, a1) } else { (a1, a2) };
    let mut args =
        Args { name, mode: LockMode::Exclusive, flags: RequestFlags::default(), signal: None, callback: JsValue::NULL };
    if !options.is_undefined() && !options.is_null() {
        if !host.is_object(options) {
            return Err(host.error(ERR_OPTIONS));
        }
        args.flags.if_available = host.get(options, KEY_IF_AVAILABLE)?.is_truthy();
        let mode = host.get(options, KEY_MODE)?;
        if !mode.is_undefined() {
            args.mode = match host.mode_of(&mode)? {
                MODE_EXCLUSIVE => LockMode::Exclusive,
                MODE_SHARED => LockMode::Shared,
                _ => return Err(host.error(ERR_MODE)),
            };
        }
        let signal = host.get(options, KEY_SIGNAL)?;
        if !signal.is_undefined() {
            if !host.is_signal(&signal) {
                return Err(host.error(ERR_SIGNAL));
            }
            args.signal = Some(signal);
        }
        args.flags.steal = host.get(options, KEY_STEAL)?.is_truthy();
    }
    if !callback.is_function() {
        return Err(host.error(ERR_CALLBACK));
    }
    args.callback = callback.clone();
    Ok(args)
}

/// `host.context()` bits: the document is not fully active, the origin is opaque, this
/// context is denied the lock space.
const CTX_INACTIVE: u8 = 1;
const CTX_OPAQUE: u8 = 2;
const CTX_DENIED: u8 = 4;

/// Spec request() steps 3–4 (also query()'s): `InvalidStateError`, `SecurityError`.
fn check_context(host: &Host, state: u8) -> Result<(), JsValue> {
    if state & CTX_INACTIVE != 0 {
        return Err(host.error(ERR_NOT_ACTIVE));
    }
    if state & CTX_OPAQUE != 0 {
        return Err(host.error(ERR_OPAQUE));
    }
    Ok(())
}

/// After the spec's checks: a context that could not join its origin's lock space safely
/// refuses (`SecurityError`), where Chromium's own refuses when storage is denied.
fn check_denied(host: &Host, state: u8) -> Result<(), JsValue> {
    if state & CTX_DENIED != 0 {
        return Err(host.error(ERR_DENIED));
    }
    Ok(())
}

/// Spec request() steps 3–9, in order (R-18), then the refusal of a denied context.
fn validate(host: &Host, args: &Args, units: &[u16]) -> Result<(), JsValue> {
    let state = host.context();
    check_context(host, state)?;
    let not_supported = |code| Err(host.error(code));
    if units.first() == Some(&0x2D) {
        return not_supported(ERR_DASH);
    }
    if args.flags.steal && args.flags.if_available {
        return not_supported(ERR_STEAL_IF_AVAILABLE);
    }
    if args.flags.steal && args.mode != LockMode::Exclusive {
        return not_supported(ERR_STEAL_SHARED);
    }
    if let Some(signal) = &args.signal {
        if args.flags.steal {
            return not_supported(ERR_SIGNAL_STEAL);
        }
        if args.flags.if_available {
            return not_supported(ERR_SIGNAL_IF_AVAILABLE);
        }
        if host.aborted(signal) {
            return Err(host.reason(signal));
        }
    }
    check_denied(host, state)
}

/// `LockManager.request(name, [options], callback)`; `argc` is `arguments.length`.
/// Every failure is a rejected promise (R-17).
#[wasm_bindgen]
pub fn request(argc: u32, a0: JsValue, a1: JsValue, a2: JsValue) -> JsValue {
    let Some(host) = with(|c| c.host.clone().unchecked_into::<Host>()) else {
        return JsValue::UNDEFINED;
    };
    // Conversion runs user code (toString, getters): no borrow is held across it.
    let args = match convert(&host, argc, &a0, &a1, &a2) {
        Ok(args) => args,
        Err(e) => return host.rejected(&e),
    };
    let units = host.units(&args.name);
    if let Err(e) = validate(&host, &args, &units) {
        return host.rejected(&e);
    }
    with(|c| c.start(args, units)).unwrap_or_default()
}

/// `LockManager.query()`.
#[wasm_bindgen]
pub fn query() -> JsValue {
    let Some(host) = with(|c| c.host.clone().unchecked_into::<Host>()) else {
        return JsValue::UNDEFINED;
    };
    let state = host.context();
    if let Err(e) = check_context(&host, state).and_then(|()| check_denied(&host, state)) {
        return host.rejected(&e);
    }
    with(|c| {
        let deferred = c.host.defer();
        let id = c.next_query;
        c.next_query = c.next_query.wrapping_add(1);
        c.queries.insert(id, deferred.clone());
        c.send(query_msg(id));
        c.host.promise_of(&deferred)
    })
    .unwrap_or_default()
}

/// A query: with labels and lease times where this client knows the lock services.
fn query_msg(id: u32) -> ClientMsg {
    #[cfg(feature = "services")]
    return ClientMsg::QueryLabeled { id };
    #[cfg(not(feature = "services"))]
    ClientMsg::Query { id }
}

/// `acquire(name, options, callback, holder, timeout, ttl)` of js/services.js: a request
/// (the same conversion and checks as `request()`, which js/services.js has run on the
/// options already, in Web IDL order, with the extras) with a label (`holder`: a string,
/// or undefined), a wait limit and a lease (ms; negative: none). `callback` is the
/// services' own, called through `host.grant`. The promise settles after the release,
/// or rejects (`TimeoutError`, `AbortError`, `LockHeldError`, `DeadlockError`).
#[cfg(feature = "services")]
#[wasm_bindgen]
pub fn acquire(name: JsValue, options: JsValue, callback: JsValue, holder: JsValue, timeout: f64, ttl: f64) -> JsValue {
    let Some(host) = with(|c| c.host.clone().unchecked_into::<Host>()) else {
        return JsValue::UNDEFINED;
    };
    let args = match convert(&host, 3, &name, &options, &callback) {
        Ok(args) => args,
        Err(e) => return host.rejected(&e),
    };
    let units = host.units(&args.name);
    if let Err(e) = validate(&host, &args, &units) {
        return host.rejected(&e);
    }
    let label = if holder.is_undefined() { None } else { Some(host.units(&holder)) };
    let extras = Extras { label, ttl: ms(ttl), timeout: ms(timeout) };
    let ends = host.now() + timeout;
    with(|c| c.start_with(args, units, Some(Service { extras, ends }))).unwrap_or_default()
}

/// `LockHandle.renew(ttl)` of js/services.js (`ttl` negative: the lease's own): resolves
/// to whether the lock was still held, and then runs its lease `ttl` ms from now.
#[cfg(feature = "services")]
#[wasm_bindgen]
pub fn renew(id: f64, ttl: f64) -> JsValue {
    let id = id as u64;
    with(|c| {
        let deferred = c.host.defer();
        let promise = c.host.promise_of(&deferred);
        let ttl = match c.requests.get(id) {
            Some(Request { phase: Phase::Granted | Phase::Running { held: true }, service: Some(s), .. }) => {
                match ms(ttl).or(s.extras.ttl) {
                    Some(t) => Some(t.max(1)),
                    // No lease, none asked for: nothing changes.
                    None => {
                        c.host.settle(&deferred, true, &JsValue::TRUE);
                        return promise;
                    }
                }
            }
            _ => None,
        };
        match ttl {
            Some(ttl) => {
                c.renews.push((id, ttl, deferred));
                c.send(ClientMsg::Renew { id: RequestId(id), ttl });
            }
            None => c.host.settle(&deferred, true, &JsValue::FALSE),
        }
        promise
    })
    .unwrap_or_default()
}

/// The timer that `host.timer` set: leases and waits of the arbiter in this context.
#[cfg(all(feature = "services", feature = "arbiter"))]
#[wasm_bindgen]
pub fn tick() {
    with(|c| c.deliver_local(None));
}

impl Client {
    fn start(&mut self, args: Args, units: Vec<u16>) -> JsValue {
        self.start_with(
            args,
            units,
            #[cfg(feature = "services")]
            None,
        )
    }

    fn start_with(
        &mut self,
        args: Args,
        units: Vec<u16>,
        #[cfg(feature = "services")] service: Option<Service>,
    ) -> JsValue {
        let id = self.next_request;
        self.next_request += 1;
        let deferred = self.host.defer();
        let signal = args.signal.map(|s| {
            let token = self.host.listen(&s, id as f64);
            (s, token)
        });
        #[cfg(feature = "services")]
        let msg = match &service {
            Some(s) => ClientMsg::Acquire {
                id: RequestId(id),
                name: units.clone(),
                mode: args.mode,
                flags: args.flags,
                extras: s.extras.clone(),
            },
            None => ClientMsg::Request { id: RequestId(id), name: units.clone(), mode: args.mode, flags: args.flags },
        };
        #[cfg(not(feature = "services"))]
        let msg = ClientMsg::Request { id: RequestId(id), name: units.clone(), mode: args.mode, flags: args.flags };
        self.requests.insert(
            id,
            Request {
                name: args.name,
                units,
                mode: args.mode,
                flags: args.flags,
                position: None,
                callback: args.callback,
                deferred: deferred.clone(),
                signal,
                phase: Phase::Queued,
                #[cfg(feature = "services")]
                service,
            },
        );
        self.send(msg);
        self.host.promise_of(&deferred)
    }

    /// Delivers a message to the arbiter; a local one answers at once. With no arbiter
    /// yet, nothing is sent: [`Client::switch`] sends the state when one appears.
    fn send(&mut self, msg: ClientMsg) {
        match &mut self.transport {
            #[cfg(feature = "arbiter")]
            Transport::Local(..) => self.deliver_local(Some(msg)),
            Transport::Remote { epoch: 0, .. } => {}
            &mut Transport::Remote { version, .. } => {
                let (mut send, mut local) = (Vec::new(), Vec::new());
                self.deleg.outgoing(msg, self.delegates && version >= DELEGATION, &mut send, &mut local);
                self.after(version, send, local);
            }
        }
    }

    /// Posts what delegation sends, then handles what the local engine answered.
    fn after(&mut self, version: u16, send: Vec<ClientMsg>, local: Vec<ArbiterMsg>) {
        if self.outbox.is_empty() && !send.is_empty() {
            self.host.flush_soon();
        }
        for m in send {
            protocol::push_frame(&mut self.outbox, &m.encode_in(version));
        }
        for a in local {
            self.answer(a);
        }
        if self.deleg.maybe_idle() && !self.idle_task {
            self.idle_task = true;
            self.host.task(IDLE as f64);
        }
    }

    /// Gives back the owned names nothing holds or waits for (a task after a release).
    fn give_back_idle(&mut self) {
        self.idle_task = false;
        self.give_back(Delegation::give_back_idle);
    }

    /// Sends what `which` gives back to a connected arbiter.
    #[cfg_attr(not(feature = "arbiter"), allow(irrefutable_let_patterns))]
    fn give_back(&mut self, which: fn(&mut Delegation, &mut Vec<ClientMsg>)) {
        if let Transport::Remote { version, epoch } = self.transport {
            if epoch != 0 {
                let mut send = Vec::new();
                which(&mut self.deleg, &mut send);
                self.after(version, send, Vec::new());
            }
        }
    }

    /// Feeds the arbiter in this context (`msg`, or only the clock) and delivers what it
    /// answers to this client.
    #[cfg(feature = "arbiter")]
    fn deliver_local(&mut self, msg: Option<ClientMsg>) {
        let Transport::Local(arbiter, me) = &mut self.transport else { return };
        let me = *me;
        let mut inbox = core::mem::take(&mut self.inbox);
        // The clock first: a lease runs from its grant, on the clock as it is then.
        #[cfg(feature = "services")]
        let now = self.host.now();
        #[cfg(feature = "services")]
        arbiter.advance(now as u64, &mut inbox);
        if let Some(msg) = msg {
            arbiter.handle(me, msg, &mut inbox);
        }
        #[cfg(feature = "services")]
        if let Some(due) = arbiter.poll_timeout() {
            self.host.timer(due as f64 - now);
        }
        for (to, msg) in inbox.drain(..) {
            if to == me {
                self.receive(msg);
            }
        }
        self.inbox = inbox;
    }

    /// What a lock service request re-registers: its extras, with what is left of its
    /// lease (held) or of its wait (queued) on this context's clock.
    #[cfg(feature = "services")]
    fn left(&self, r: &Request, held: bool) -> Extras {
        let Some(s) = &r.service else { return Extras::default() };
        let left = ms((s.ends - self.host.now()).max(0.0));
        let mut x = s.extras.clone();
        if held {
            x.ttl = x.ttl.and(left);
            x.timeout = None;
        } else {
            x.timeout = x.timeout.and(left);
        }
        x
    }

    #[cfg_attr(not(feature = "arbiter"), allow(irrefutable_let_patterns))]
    fn switch(&mut self, epoch: u32, version: u16) {
        let Transport::Remote { epoch: current, version: speaking } = &mut self.transport else { return };
        if !(MIN_VERSION..=VERSION).contains(&version) {
            return;
        }
        *current = epoch;
        *speaking = version;
        // What is still unsent was for the previous arbiter: everything it stood for is
        // sent again below (registration, unacknowledged requests, queries, renewals).
        self.outbox.clear();
        // A new arbiter knows no owners: what the local engine holds and queues is
        // re-registered below like the rest (each request has its phase and position).
        self.deleg.reset();
        let mut restore = Vec::new();
        let mut resend = Vec::new();
        for (id, r) in self.requests.iter() {
            let position = match (r.phase, r.position) {
                (Phase::Granted | Phase::Running { held: true }, _) => None,
                (Phase::Queued, Some(p)) => Some(p),
                (Phase::Queued, None) => {
                    #[cfg(feature = "services")]
                    if r.service.is_some() {
                        resend.push(ClientMsg::Acquire {
                            id: RequestId(id),
                            name: r.units.clone(),
                            mode: r.mode,
                            flags: r.flags,
                            extras: self.left(r, false),
                        });
                        continue;
                    }
                    resend.push(ClientMsg::Request {
                        id: RequestId(id),
                        name: r.units.clone(),
                        mode: r.mode,
                        flags: r.flags,
                    });
                    continue;
                }
                _ => continue,
            };
            restore.push(Restored {
                id: RequestId(id),
                name: r.units.clone(),
                mode: r.mode,
                position,
                #[cfg(feature = "services")]
                extras: self.left(r, position.is_none()),
                // Spec requests carry none (a unit struct without the lock services).
                #[cfg(not(feature = "services"))]
                #[allow(clippy::default_constructed_unit_structs)]
                extras: Extras::default(),
            });
        }
        let client = self.host.units(&self.client_id);
        self.send(ClientMsg::Hello { client, restore });
        for msg in resend {
            self.send(msg);
        }
        let queries: Vec<u32> = self.queries.iter().map(|(id, _)| id).collect();
        for id in queries {
            self.send(query_msg(id));
        }
        #[cfg(feature = "services")]
        for (id, ttl) in self.renews.iter().map(|&(id, ttl, _)| (id, ttl)).collect::<Vec<_>>() {
            self.send(ClientMsg::Renew { id: RequestId(id), ttl });
        }
    }

    #[cfg_attr(not(feature = "arbiter"), allow(irrefutable_let_patterns))]
    fn receive(&mut self, msg: ArbiterMsg) {
        if let Transport::Remote { version, .. } = self.transport {
            let (mut send, mut local) = (Vec::new(), Vec::new());
            let rest = self.deleg.incoming(msg, self.delegates && version >= DELEGATION, &mut send, &mut local);
            self.after(version, send, local);
            if let Some(msg) = rest {
                self.answer(msg);
            }
        } else {
            self.answer(msg);
        }
    }

    /// An answer to a request, from the arbiter or from this context's own engine.
    fn answer(&mut self, msg: ArbiterMsg) {
        match msg {
            ArbiterMsg::Queued { id, position } => {
                if let Some(r) = self.requests.get_mut(id.0) {
                    r.position = Some(position);
                }
            }
            ArbiterMsg::Granted { id } => match self.requests.get_mut(id.0) {
                Some(r) if r.phase == Phase::Queued => {
                    r.phase = Phase::Granted;
                    // A lease runs from the grant: seen here, it ends no earlier than at
                    // the arbiter.
                    #[cfg(feature = "services")]
                    if let Some(s) = &mut r.service {
                        s.ends = self.host.now() + s.extras.ttl.map_or(0.0, f64::from);
                    }
                    self.host.task(id.0 as f64);
                }
                // Aborted meanwhile (or unknown): give the grant straight back.
                _ => self.send(ClientMsg::Release { id }),
            },
            ArbiterMsg::Unavailable { id } => {
                if let Some(r) = self.requests.get_mut(id.0) {
                    r.phase = Phase::Unavailable;
                    self.host.task(id.0 as f64);
                }
            }
            ArbiterMsg::Stolen { id } => {
                if let Some(r) = self.requests.get_mut(id.0) {
                    r.phase = Phase::Broken;
                    let e = self.host.error(ERR_STOLEN);
                    self.host.settle(&r.deferred, false, &e);
                }
            }
            // The lock services' answers.
            #[cfg(feature = "services")]
            ArbiterMsg::Expired { id } => {
                if let Some(r) = self.requests.get_mut(id.0) {
                    if matches!(r.phase, Phase::Granted | Phase::Running { held: true }) {
                        r.phase = Phase::Broken;
                        let e = self.host.service_error(1, &r.name, &[], false);
                        self.host.settle(&r.deferred, false, &e);
                    }
                }
            }
            #[cfg(feature = "services")]
            ArbiterMsg::TimedOut { id } => {
                let e = self.host.service_error(0, &JsValue::UNDEFINED, &[], false);
                self.withdrawn(id.0, &e);
            }
            #[cfg(feature = "services")]
            ArbiterMsg::Busy { id, holder } => {
                if let Some(r) = self.requests.get(id.0) {
                    let e = self.host.service_error(2, &r.name, holder.as_deref().unwrap_or(&[]), holder.is_some());
                    self.withdrawn(id.0, &e);
                }
            }
            #[cfg(feature = "services")]
            ArbiterMsg::Deadlock { id, cycle } => {
                let e = self.host.deadlock_error(&self.snapshot(&cycle, &[]));
                self.withdrawn(id.0, &e);
            }
            #[cfg(feature = "services")]
            ArbiterMsg::DeadlockReport { cycle, .. } => {
                self.host.report(&self.snapshot(&cycle, &[]));
            }
            #[cfg(feature = "services")]
            ArbiterMsg::Renewed { id, held } => {
                if let Some(i) = self.renews.iter().position(|&(r, _, _)| r == id.0) {
                    let (_, ttl, deferred) = self.renews.remove(i);
                    if held {
                        if let Some(Request { service: Some(s), .. }) = self.requests.get_mut(id.0) {
                            s.ends = self.host.now() + f64::from(ttl);
                        }
                    }
                    self.host.settle(&deferred, true, &JsValue::from_bool(held));
                }
            }
            ArbiterMsg::Snapshot { id, held, pending } => {
                if let Some(deferred) = self.queries.remove(id) {
                    let snap = self.snapshot(&held, &pending);
                    self.host.settle(&deferred, true, &snap);
                }
            }
            // Delegation's own messages (src/delegate.rs handled them).
            ArbiterMsg::Owned { .. } | ArbiterMsg::Revoke { .. } => {}
        }
    }

    /// A `LockManagerSnapshot` of these entries (with `holder`s, and lease times for the
    /// services, where the arbiter sent them).
    fn snapshot(&self, held: &[crate::protocol::WireLockInfo], pending: &[crate::protocol::WireLockInfo]) -> JsValue {
        let snap = self.host.snapshot();
        let mut client: Option<&[u16]> = None;
        for (pending, list) in [(false, held), (true, pending)] {
            for i in list.iter() {
                if client != Some(&i.client[..]) {
                    self.host.entry_client(&snap, &i.client);
                    client = Some(&i.client);
                }
                self.host.entry(&snap, pending, &i.name, mode_code(i.mode));
                #[cfg(feature = "services")]
                {
                    if let Some(label) = &i.label {
                        self.host.label(&snap, label);
                    }
                    if let Some(ms) = i.expires_in {
                        self.host.expires(&snap, ms);
                    }
                }
            }
        }
        snap
    }

    /// A waiting lock service request that the arbiter withdrew (timeout, `ifAvailable`,
    /// deadlock): it rejects with `error`.
    #[cfg(feature = "services")]
    fn withdrawn(&mut self, id: u64, error: &JsValue) {
        if !matches!(self.requests.get(id), Some(r) if r.phase == Phase::Queued) {
            return;
        }
        if let Some(r) = self.requests.remove(id) {
            if let Some((signal, token)) = &r.signal {
                self.host.unlisten(signal, token);
            }
            self.host.settle(&r.deferred, false, error);
        }
    }
}

/// The spec's callback step, run in a task of its own after a grant or an unavailable
/// (`host.task(id)` calls it).
#[doc(hidden)]
#[wasm_bindgen(js_name = task)]
pub fn run_task(id: f64) {
    let id = id as u64;
    if id == IDLE {
        with(|c| c.give_back_idle());
        return;
    }
    let call = with(|c| {
        let r = c.requests.get_mut(id)?;
        let (mode, held) = match r.phase {
            Phase::Granted => (mode_code(r.mode), true),
            Phase::Unavailable => (MODE_NULL, false),
            // Stolen before its callback ran: the promise is already rejected, and the
            // callback is skipped (spec gap 5: a lock no longer held is never handed out).
            Phase::Broken => {
                c.requests.remove(id);
                return None;
            }
            _ => return None,
        };
        r.phase = Phase::Running { held };
        // From here on the signal is ignored (R-62).
        if let Some((signal, token)) = r.signal.take() {
            c.host.unlisten(&signal, &token);
        }
        #[cfg(feature = "services")]
        let service = r.service.is_some();
        #[cfg(not(feature = "services"))]
        let service = false;
        Some((c.host.clone().unchecked_into::<Host>(), r.callback.clone(), r.name.clone(), mode, service))
    })
    .flatten();
    // User code runs with no borrow held: it may call request() again.
    if let Some((host, callback, name, mode, service)) = call {
        #[cfg(feature = "services")]
        if service {
            host.grant(&callback, &name, mode, id as f64);
            return;
        }
        let _ = service;
        host.invoke(&callback, &name, mode, id as f64);
    }
}

/// The callback's promise settled: release (if held), then settle the request's promise
/// with the same outcome, so that it settles after the release was processed (R-34).
#[doc(hidden)]
#[wasm_bindgen]
pub fn done(id: f64, ok: bool, value: JsValue) {
    let id = id as u64;
    with(|c| {
        let Some(r) = c.requests.remove(id) else {
            return;
        };
        // Stolen while running (Broken): the promise was rejected already and the arbiter
        // has forgotten the lock; nothing more to do (R-53).
        if let Phase::Running { held } = r.phase {
            if held {
                c.send(ClientMsg::Release { id: RequestId(id) });
            }
            c.host.settle(&r.deferred, ok, &value);
        }
    });
}

/// The request's signal fired: before the callback runs, reject with `signal.reason`
/// and withdraw the request (R-60, R-61); afterwards it is ignored (R-62, R-63).
#[doc(hidden)]
#[wasm_bindgen]
pub fn abort(id: f64) {
    let id = id as u64;
    with(|c| {
        let Some(r) = c.requests.get(id) else { return };
        if !matches!(r.phase, Phase::Queued | Phase::Granted) {
            return;
        }
        let Some(r) = c.requests.remove(id) else {
            return;
        };
        if let Some((signal, token)) = &r.signal {
            c.host.unlisten(signal, token);
            let reason = c.host.reason(signal);
            c.host.settle(&r.deferred, false, &reason);
        }
        c.send(ClientMsg::Release { id: RequestId(id) });
    });
}
