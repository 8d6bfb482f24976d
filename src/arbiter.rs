//! The arbiter: owns the origin's one [`Engine`], maps connected clients onto it and turns
//! engine effects into messages for the clients they concern. Sans-IO: the host feeds
//! messages in and sends what comes out.
//!
//! In the single-context build the arbiter lives in the calling context itself (the
//! degenerate arbiter); cross-context hosts feed it the same [`ClientMsg`]s.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use alloc::rc::Rc;
use alloc::vec::Vec;

use crate::engine::{ClientId, Effect, Engine, LockInfo, RequestKey};
#[cfg(feature = "trace")]
use crate::engine::{LockMode, RequestId};
use crate::map::{IdMap, NameMap};
use crate::protocol::{ArbiterMsg, ClientMsg, WireLockInfo};

/// One decision of the arbiter, in the order it made them (feature `trace`, test builds
/// only). `client` is the public `clientId` of the context concerned.
#[cfg(feature = "trace")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A client registered (its restored requests follow as [`Decision::Restored`]).
    Hello { client: Rc<[u16]> },
    /// A request re-registered after an arbiter restart: held, or queued at a position.
    Restored { client: Rc<[u16]>, id: RequestId, name: Rc<[u16]>, mode: LockMode, held: bool },
    /// The lock is now held by this request; its client is told `Granted`.
    Granted { client: Rc<[u16]>, id: RequestId, name: Rc<[u16]>, mode: LockMode },
    /// `ifAvailable` and not available.
    Unavailable { client: Rc<[u16]>, id: RequestId },
    /// A held lock evicted by a steal; its client is told `Stolen`.
    Stolen { client: Rc<[u16]>, id: RequestId },
    /// A held lock released by its client's `Release`.
    Released { client: Rc<[u16]>, id: RequestId },
    /// A queued request withdrawn by its client's `Release` (abort, or an unused grant).
    Withdrawn { client: Rc<[u16]>, id: RequestId },
    /// The client is gone (death, goodbye, closed connection): its waiting requests are
    /// dropped and its locks released.
    Gone { client: Rc<[u16]> },
    /// Recovery is over: the grants that follow may use every restored queue.
    Recovered,
}

/// Owns one engine and the clients connected to it.
///
/// ```text
///   new() ──► Serving ◄──────────────────────────────┐
///   begin_recovery(live clients) ──► Recovering ──────┘ every listed client said Hello
///                                    (requests buffered,  or is gone
///                                     nothing granted)
/// ```
#[derive(Debug, Default)]
pub struct Arbiter {
    engine: Engine,
    /// Connected clients and their public `clientId` (UTF-16), once they said Hello.
    clients: IdMap<ClientId, Rc<[u16]>>,
    by_label: NameMap<ClientId>,
    /// Connections not yet closed. Anything arriving on a closed one is refused, so a
    /// message still in flight from a dead context can never register it again.
    open: IdMap<ClientId, ()>,
    /// `clientId`s known to be dead; a late Hello under one of them is refused.
    dead: NameMap<()>,
    next_client: u32,
    /// Recovering: the `clientId`s of live contexts that have not re-registered yet.
    /// While any is missing nothing is granted, since it may hold any lock.
    waiting: NameMap<()>,
    recovering: bool,
    /// Messages that arrived while recovering, replayed in order afterwards.
    buffered: Vec<(ClientId, ClientMsg)>,
    effects: Vec<Effect>,
    /// Messages refused (duplicate ids, impossible flags, unknown clients): counted, not fatal.
    pub rejected: u64,
    /// The decision log (feature `trace`); drained by [`Arbiter::take_trace`].
    #[cfg(feature = "trace")]
    trace: Vec<Decision>,
}

impl Arbiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// An arbiter that replaces another: it grants nothing until [`Arbiter::begin_recovery`]
    /// has said which live clients to wait for and each of them re-registered or is gone.
    pub fn recovering() -> Self {
        Arbiter { recovering: true, ..Self::default() }
    }

    /// A new connection. It becomes a client with its first [`ClientMsg::Hello`].
    pub fn connect(&mut self) -> ClientId {
        let id = ClientId(self.next_client);
        self.next_client = self.next_client.wrapping_add(1);
        self.open.insert(id, ());
        id
    }

    /// The connection of the client with this public `clientId`, if it said Hello.
    pub fn client(&self, label: &[u16]) -> Option<ClientId> {
        self.by_label.get(label).copied()
    }

    /// This arbiter replaces one that is gone: `live` are the `clientId`s of contexts
    /// that may hold locks or wait for them. Until each has re-registered (Hello) or is
    /// known to be gone ([`Arbiter::gone`]), requests are buffered and nothing is granted.
    pub fn begin_recovery(&mut self, live: impl IntoIterator<Item = Vec<u16>>, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        for label in live {
            if !self.by_label.contains_key(&label) && !self.dead.contains_key(&label) {
                self.waiting.insert(label.into(), ());
            }
        }
        self.recovering = true;
        self.finish_recovery(out);
    }

    /// Whether grants are held back until live clients have re-registered.
    pub fn is_recovering(&self) -> bool {
        self.recovering
    }

    /// A context is known to be dead (e.g. its IndexedDB probe fired): its requests are
    /// dropped and its locks released (R-80, R-81).
    pub fn gone(&mut self, label: &[u16], out: &mut Vec<(ClientId, ArbiterMsg)>) {
        self.dead.insert(label.into(), ());
        if let Some(client) = self.client(label) {
            self.disconnect(client, out);
        }
        if self.waiting.remove(label).is_some() {
            #[cfg(feature = "trace")]
            self.trace.push(Decision::Gone { client: label.into() });
            self.finish_recovery(out);
        }
    }

    /// The connection is closed: the client's requests are dropped, its locks released.
    pub fn disconnect(&mut self, client: ClientId, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        self.open.remove(client);
        self.buffered.retain(|(c, _)| *c != client);
        if let Some(label) = self.clients.remove(client) {
            #[cfg(feature = "trace")]
            self.trace.push(Decision::Gone { client: label.clone() });
            self.by_label.remove(&label);
            if self.recovering {
                // A client that has not re-registered yet may hold what this would grant:
                // only remove; `finish_recovery` grants once everybody is in.
                self.engine.remove_client(client);
            } else {
                self.engine.terminate(client, &mut self.effects);
                self.flush(out);
            }
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The decisions made since the last call, in order (feature `trace`).
    #[cfg(feature = "trace")]
    pub fn take_trace(&mut self) -> Vec<Decision> {
        core::mem::take(&mut self.trace)
    }

    #[cfg(feature = "trace")]
    fn label(&self, client: ClientId) -> Rc<[u16]> {
        self.clients.get(client).cloned().unwrap_or_else(|| Rc::from(&[][..]))
    }

    /// Handles one message from `client`; replies (to it and to others) go to `out`.
    pub fn handle(&mut self, client: ClientId, msg: ClientMsg, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        if !self.open.contains_key(client) {
            self.rejected += 1;
            return;
        }
        match msg {
            ClientMsg::Hello { client: label, restore } => self.hello(client, label, restore, out),
            ClientMsg::Goodbye => self.disconnect(client, out),
            _ if self.recovering => self.buffered.push((client, msg)),
            _ if !self.clients.contains_key(client) => self.rejected += 1,
            ClientMsg::Request { id, name, mode, flags } => {
                let key = RequestKey { client, request: id };
                if self.engine.request(key, name.into(), mode, flags, &mut self.effects).is_err() {
                    self.rejected += 1;
                }
            }
            ClientMsg::Release { id } => {
                let key = RequestKey { client, request: id };
                #[cfg(feature = "trace")]
                let held = self.engine.is_held(key);
                #[cfg_attr(not(feature = "trace"), allow(unused_variables))]
                let known = self.engine.release(key, &mut self.effects);
                #[cfg(feature = "trace")]
                if known {
                    let client = self.label(client);
                    self.trace.push(if held {
                        Decision::Released { client, id }
                    } else {
                        Decision::Withdrawn { client, id }
                    });
                }
            }
            ClientMsg::Query { id } => {
                let snap = self.engine.snapshot();
                // Runs of entries mostly share a client: look each run's label up once.
                let mut last: Option<(ClientId, Vec<u16>)> = None;
                let mut wire = |i: &LockInfo| {
                    let client = match &last {
                        Some((id, label)) if *id == i.client => label.clone(),
                        _ => {
                            let label = self.clients.get(i.client).map(|c| c.to_vec()).unwrap_or_default();
                            last = Some((i.client, label.clone()));
                            label
                        }
                    };
                    WireLockInfo { name: i.name.to_vec(), mode: i.mode, client }
                };
                let held = snap.held.iter().map(&mut wire).collect();
                let pending = snap.pending.iter().map(&mut wire).collect();
                out.push((client, ArbiterMsg::Snapshot { id, held, pending }));
            }
        }
        self.flush(out);
    }

    fn hello(
        &mut self,
        client: ClientId,
        label: Vec<u16>,
        restore: Vec<crate::protocol::Restored>,
        out: &mut Vec<(ClientId, ArbiterMsg)>,
    ) {
        if self.clients.contains_key(client) || self.by_label.contains_key(&label) || self.dead.contains_key(&label) {
            self.rejected += 1;
            return;
        }
        let label: Rc<[u16]> = label.into();
        self.clients.insert(client, label.clone());
        self.by_label.insert(label.clone(), client);
        #[cfg(feature = "trace")]
        self.trace.push(Decision::Hello { client: label.clone() });
        for r in restore {
            let key = RequestKey { client, request: r.id };
            let name: Rc<[u16]> = r.name.into();
            #[cfg(feature = "trace")]
            let traced = (name.clone(), r.mode, r.position.is_none());
            let result = match r.position {
                None => self.engine.restore_held(key, name, r.mode),
                Some(p) => self.engine.restore_queued(key, name, r.mode, p),
            };
            if result.is_err() {
                self.rejected += 1;
            }
            #[cfg(feature = "trace")]
            if result.is_ok() {
                let (name, mode, held) = traced;
                self.trace.push(Decision::Restored { client: label.clone(), id: r.id, name, mode, held });
            }
        }
        if self.waiting.remove(&label).is_some() || !self.recovering {
            self.finish_recovery(out);
        }
    }

    /// Once nobody is missing: grant what the restored queues allow, then replay what
    /// arrived meanwhile, in order.
    fn finish_recovery(&mut self, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        if !self.waiting.is_empty() {
            return;
        }
        if self.recovering {
            self.recovering = false;
            #[cfg(feature = "trace")]
            self.trace.push(Decision::Recovered);
            self.engine.process_all(&mut self.effects);
            self.flush(out);
        }
        for (client, msg) in core::mem::take(&mut self.buffered) {
            self.handle(client, msg, out);
        }
    }

    fn flush(&mut self, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        #[cfg(feature = "trace")]
        for e in &self.effects {
            let decision = match *e {
                Effect::Granted(k) => {
                    let Some((name, mode)) = self.engine.lookup(k) else { continue };
                    Decision::Granted { client: self.label(k.client), id: k.request, name: name.clone(), mode }
                }
                Effect::Unavailable(k) => Decision::Unavailable { client: self.label(k.client), id: k.request },
                Effect::Stolen(k) => Decision::Stolen { client: self.label(k.client), id: k.request },
                Effect::Queued(..) => continue,
            };
            self.trace.push(decision);
        }
        out.extend(self.effects.drain(..).map(|e| match e {
            Effect::Granted(k) => (k.client, ArbiterMsg::Granted { id: k.request }),
            Effect::Unavailable(k) => (k.client, ArbiterMsg::Unavailable { id: k.request }),
            Effect::Stolen(k) => (k.client, ArbiterMsg::Stolen { id: k.request }),
            Effect::Queued(k, position) => (k.client, ArbiterMsg::Queued { id: k.request, position }),
        }));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::engine::{LockMode, RequestFlags, RequestId};
    use crate::protocol::Restored;

    fn req(id: u64, name: &str, mode: LockMode) -> ClientMsg {
        ClientMsg::Request {
            id: RequestId(id),
            name: name.encode_utf16().collect(),
            mode,
            flags: RequestFlags::default(),
        }
    }

    fn hello(a: &mut Arbiter, label: &str, restore: Vec<Restored>, out: &mut Vec<(ClientId, ArbiterMsg)>) -> ClientId {
        let c = a.connect();
        a.handle(c, ClientMsg::Hello { client: label.encode_utf16().collect(), restore }, out);
        c
    }

    fn granted(out: &[(ClientId, ArbiterMsg)]) -> Vec<(ClientId, u64)> {
        out.iter()
            .filter_map(|(c, m)| match m {
                ArbiterMsg::Granted { id } => Some((*c, id.0)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn routes_effects_to_their_clients_and_reports_client_ids() {
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        let c1 = hello(&mut a, "1", vec![], &mut out);
        let c2 = hello(&mut a, "2", vec![], &mut out);
        a.handle(c1, req(1, "x", LockMode::Exclusive), &mut out);
        a.handle(c2, req(1, "x", LockMode::Exclusive), &mut out);
        assert_eq!(
            out,
            vec![
                (c1, ArbiterMsg::Granted { id: RequestId(1) }),
                (c2, ArbiterMsg::Queued { id: RequestId(1), position: 1 })
            ]
        );
        out.clear();
        a.handle(c2, ClientMsg::Query { id: 5 }, &mut out);
        let ArbiterMsg::Snapshot { id: 5, held, pending } = &out[0].1 else { panic!("{out:?}") };
        assert_eq!(held[0].client, vec![0x31]);
        assert_eq!(pending[0].client, vec![0x32]);
        out.clear();
        a.disconnect(c1, &mut out);
        assert_eq!(granted(&out), [(c2, 1)]);
        out.clear();
        a.handle(c2, ClientMsg::Goodbye, &mut out);
        assert!(a.engine().is_empty() && out.is_empty());
    }

    #[test]
    fn unknown_clients_and_duplicates_are_counted_not_fatal() {
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        a.handle(ClientId(42), ClientMsg::Query { id: 1 }, &mut out);
        let c = hello(&mut a, "", vec![], &mut out);
        a.handle(c, ClientMsg::Hello { client: vec![], restore: vec![] }, &mut out);
        a.handle(c, req(1, "x", LockMode::Exclusive), &mut out);
        a.handle(c, req(1, "y", LockMode::Exclusive), &mut out);
        let steal_shared = ClientMsg::Request {
            id: RequestId(2),
            name: vec![],
            mode: LockMode::Shared,
            flags: RequestFlags { steal: true, if_available: false },
        };
        a.handle(c, steal_shared, &mut out);
        assert_eq!(a.rejected, 4);
        assert_eq!(out, vec![(c, ArbiterMsg::Granted { id: RequestId(1) })]);
    }

    #[test]
    fn recovery_grants_nothing_until_every_live_client_re_registered() {
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        a.begin_recovery(["holder", "waiter", "dead"].map(|s| s.encode_utf16().collect()), &mut out);
        // A newcomer's request waits: "holder" may hold "x".
        let newcomer = hello(&mut a, "new", vec![], &mut out);
        a.handle(newcomer, req(1, "x", LockMode::Exclusive), &mut out);
        a.handle(newcomer, ClientMsg::Query { id: 1 }, &mut out);
        assert!(out.is_empty() && a.is_recovering());
        let waiter = hello(
            &mut a,
            "waiter",
            vec![Restored {
                id: RequestId(7),
                name: "x".encode_utf16().collect(),
                mode: LockMode::Exclusive,
                position: Some(1),
            }],
            &mut out,
        );
        let holder = hello(
            &mut a,
            "holder",
            vec![Restored {
                id: RequestId(3),
                name: "x".encode_utf16().collect(),
                mode: LockMode::Exclusive,
                position: None,
            }],
            &mut out,
        );
        assert!(out.is_empty(), "still waiting for 'dead': {out:?}");
        a.gone(&"dead".encode_utf16().collect::<Vec<_>>(), &mut out);
        assert!(!a.is_recovering());
        // The holder still holds; the newcomer queued behind the restored waiter.
        assert!(granted(&out).is_empty(), "{out:?}");
        out.clear();
        a.handle(holder, ClientMsg::Release { id: RequestId(3) }, &mut out);
        assert_eq!(granted(&out), [(waiter, 7)]);
        out.clear();
        a.handle(waiter, ClientMsg::Release { id: RequestId(7) }, &mut out);
        assert_eq!(granted(&out), [(newcomer, 1)]);
    }

    #[test]
    fn a_client_that_dies_while_awaited_is_not_awaited() {
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        a.begin_recovery([vec![0x61]], &mut out);
        let c = hello(&mut a, "b", vec![], &mut out);
        a.handle(c, req(1, "x", LockMode::Exclusive), &mut out);
        assert!(out.is_empty());
        a.gone(&[0x61], &mut out);
        assert_eq!(granted(&out), [(c, 1)]);
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod recovery_edge_tests {
    use super::*;

    #[test]
    fn recovery_with_nobody_to_wait_for_ends_at_once() {
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        a.begin_recovery([], &mut out);
        assert!(!a.is_recovering());
    }
}

#[cfg(all(test, feature = "trace", not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod trace_tests {
    use super::*;
    use crate::engine::{LockMode, RequestFlags, RequestId};
    use crate::protocol::Restored;

    fn u(s: &str) -> Rc<[u16]> {
        s.encode_utf16().collect::<Vec<_>>().into()
    }

    fn req(id: u64, name: &str, steal: bool) -> ClientMsg {
        ClientMsg::Request {
            id: RequestId(id),
            name: name.encode_utf16().collect(),
            mode: LockMode::Exclusive,
            flags: RequestFlags { steal, if_available: false },
        }
    }

    fn hello(a: &mut Arbiter, label: &str, restore: Vec<Restored>, out: &mut Vec<(ClientId, ArbiterMsg)>) -> ClientId {
        let c = a.connect();
        a.handle(c, ClientMsg::Hello { client: label.encode_utf16().collect(), restore }, out);
        c
    }

    #[test]
    fn the_log_has_every_decision_in_the_order_made() {
        use Decision as D;
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        let ca = hello(&mut a, "a", vec![], &mut out);
        let cb = hello(&mut a, "b", vec![], &mut out);
        a.handle(ca, req(1, "x", false), &mut out);
        a.handle(cb, req(1, "x", false), &mut out);
        a.handle(cb, req(2, "x", true), &mut out);
        a.handle(cb, ClientMsg::Release { id: RequestId(1) }, &mut out);
        a.handle(cb, ClientMsg::Release { id: RequestId(2) }, &mut out);
        a.handle(cb, ClientMsg::Release { id: RequestId(2) }, &mut out); // nothing: not logged
        a.handle(ca, req(3, "y", false), &mut out);
        a.handle(cb, req(4, "y", false), &mut out);
        a.gone(&[0x61], &mut out);
        let x = || u("x");
        let y = || u("y");
        let ex = LockMode::Exclusive;
        assert_eq!(
            a.take_trace(),
            vec![
                D::Hello { client: u("a") },
                D::Hello { client: u("b") },
                D::Granted { client: u("a"), id: RequestId(1), name: x(), mode: ex },
                // b's steal evicts a's lock and takes it; b's queued request 1 stays queued.
                D::Stolen { client: u("a"), id: RequestId(1) },
                D::Granted { client: u("b"), id: RequestId(2), name: x(), mode: ex },
                D::Withdrawn { client: u("b"), id: RequestId(1) },
                D::Released { client: u("b"), id: RequestId(2) },
                D::Granted { client: u("a"), id: RequestId(3), name: y(), mode: ex },
                D::Gone { client: u("a") },
                D::Granted { client: u("b"), id: RequestId(4), name: y(), mode: ex },
            ]
        );
        assert!(a.take_trace().is_empty());
    }

    #[test]
    fn recovery_logs_restores_and_the_deaths_it_waited_for() {
        use Decision as D;
        let mut a = Arbiter::recovering();
        let mut out = Vec::new();
        a.begin_recovery([u("h").to_vec(), u("dead").to_vec()], &mut out);
        let restore =
            vec![Restored { id: RequestId(7), name: u("x").to_vec(), mode: LockMode::Shared, position: None }];
        hello(&mut a, "h", restore, &mut out);
        a.gone(&u("dead"), &mut out);
        assert_eq!(
            a.take_trace(),
            vec![
                D::Hello { client: u("h") },
                D::Restored { client: u("h"), id: RequestId(7), name: u("x"), mode: LockMode::Shared, held: true },
                D::Gone { client: u("dead") },
                D::Recovered,
            ]
        );
    }
}
